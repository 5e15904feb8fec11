// Shared helpers of the kernel tests: one Kernels per test file, and placing buffers at chosen
// (unaligned) offsets in its memory so the raw pointer API can be driven directly.

import { Kernels } from '../../lib/kernels';

export const kernels = Kernels.load({ maximumPages: 16384 });

/** Copies data into the arena at an address with the given offset from a 64-byte boundary. */
export function place(data: Uint8Array, offset = 0): number {
  const base = kernels.arena.alloc(data.length + offset + 64, 64);
  const ptr = base + offset;
  kernels.arena.bytes(ptr, data.length).set(data);
  return ptr;
}

/** A zeroed buffer of `bytes` at the given offset from a 64-byte boundary. */
export function space(bytes: number, offset = 0): number {
  return place(new Uint8Array(bytes), offset);
}

export function read(ptr: number, bytes: number): Uint8Array {
  return Uint8Array.from(kernels.arena.bytes(ptr, bytes));
}

/** Runs fn with the arena released afterwards (property runs would otherwise pile up). */
export function scoped<T>(fn: () => T): T {
  const mark = kernels.arena.mark();
  try {
    return fn();
  } finally {
    kernels.arena.release(mark);
  }
}

/** The end of the memory: a pointer whose buffers reach past it. */
export function memoryEnd(): number {
  return kernels.memory.buffer.byteLength;
}

export function seededBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Lengths that cross the 16-byte SIMD boundary, plus anything up to max. */
export const EDGE_LENGTHS = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65];
