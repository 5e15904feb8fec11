// Views of an array's common memory for the TypeScript side of the HAL.
//
// The memory is a shared WebAssembly memory: growing it gives memory.buffer a new, longer
// SharedArrayBuffer but never detaches the old one, so views made after layout() (which grows it
// once, to its final size) stay valid for the life of the array.

export interface WasmMemoryLike {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}

export class CommonMemory {
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** For Atomics on ring indices (4-byte aligned addresses only). */
  readonly i32: Int32Array;

  constructor(readonly memory: WasmMemoryLike) {
    this.u8 = new Uint8Array(memory.buffer);
    this.view = new DataView(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
  }

  get byteLength(): number { return this.u8.byteLength; }

  u32(addr: number): number { return this.view.getUint32(addr, true); }
  setU32(addr: number, v: number): void { this.view.setUint32(addr, v, true); }
  u16(addr: number): number { return this.view.getUint16(addr, true); }
  setU16(addr: number, v: number): void { this.view.setUint16(addr, v, true); }
  u8At(addr: number): number { return this.u8[addr]; }
  setU8(addr: number, v: number): void { this.u8[addr] = v; }
  f64(addr: number): number { return this.view.getFloat64(addr, true); }
  u64(addr: number): number { return Number(this.view.getBigUint64(addr, true)); }

  /** Atomic load/store of a u32 (ring heads and tails, session states). */
  load32(addr: number): number { return Atomics.load(this.i32, addr >> 2) >>> 0; }
  store32(addr: number, v: number): void { Atomics.store(this.i32, addr >> 2, v | 0); }

  /** A view (no copy) of [addr, addr + length). */
  bytes(addr: number, length: number): Uint8Array { return this.u8.subarray(addr, addr + length); }

  /** An AssemblyScript static string at ptr (UTF-16LE, byte length at ptr - 4). */
  asString(ptr: number): string {
    if (ptr < 4 || ptr >= this.byteLength) return `<string at ${ptr}>`;
    const length = this.u32(ptr - 4);
    return Buffer.from(this.u8.buffer, ptr, Math.min(length, 4096)).toString('utf16le');
  }
}
