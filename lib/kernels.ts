// TypeScript wrapper of the firmware kernels (build/kernels.wasm, built from firmware/kernels).
//
// Model: one Kernels object owns one shared WebAssembly memory and one instance of the kernels
// image over it. Callers either work in place (arena-allocated views into that memory, then the
// pointer functions named *At, which copy nothing), or hand in Buffers/Uint8Arrays to the
// convenience functions, which copy into the arena, call the kernel and copy the result out.
// Every kernel result code is turned into a thrown error with a message that says what was wrong
// (RangeError for sizes, counts and positions; Error for overlaps and unrecoverable erasures).
// Not thread-safe: one Kernels per thread (the firmware's IOPs call the kernels directly).

import * as fs from 'fs';
import * as codes from '../firmware/kernels/codes';
import { packagePath } from './paths';

export { codes };

// Node provides WebAssembly at run time, but the project's tsconfig (lib ES2022, no DOM) declares
// no types for it, so this file declares the little it uses.
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly __wasmModule?: never;
}
export interface WasmModuleDescriptor {
  module: string;
  name: string;
  kind: string;
}
type WasmImports = Record<string, Record<string, unknown>>;
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: {
    new (bytes: Uint8Array): WasmModule;
    imports(module: WasmModule): WasmModuleDescriptor[];
    exports(module: WasmModule): { name: string; kind: string }[];
  };
  Instance: new (module: WasmModule, imports: WasmImports) => { exports: Record<string, unknown> };
  instantiate(bytes: Uint8Array, imports: WasmImports): Promise<{ module: WasmModule; instance: { exports: Record<string, unknown> } }>;
  validate(bytes: Uint8Array): boolean;
}
/** The WebAssembly global, typed. */
export const Wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The raw exports of build/kernels.wasm (u64 parameters are BigInt, as WebAssembly requires). */
export interface KernelExports {
  staticEnd(): number;
  crc32c(ptr: number, bytes: number, previous: number): bigint;
  xorBlocks(dst: number, srcList: number, count: number, bytes: number): number;
  gfMul(a: number, b: number): number;
  gfInv(a: number): number;
  rsEncode(k: number, m: number, dataList: number, parityList: number, bytes: number, scratch: number): number;
  rsReconstruct(k: number, m: number, shardList: number, present: bigint, targets: bigint, bytes: number, scratch: number): number;
  raid6Gen(k: number, dataList: number, p: number, q: number, bytes: number): number;
  raid6Reconstruct(k: number, shardList: number, present: bigint, targets: bigint, bytes: number, scratch: number): number;
  gfMatrixApply(rows: number, k: number, coef: number, srcList: number, dstList: number, bytes: number, scratch: number): number;
  bitmapSetRange(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapClearRange(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapAtomicSetRange(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapAtomicClearRange(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapAtomicSet(bm: number, nbits: bigint, bit: bigint): number;
  bitmapAtomicClear(bm: number, nbits: bigint, bit: bigint): number;
  bitmapTest(bm: number, nbits: bigint, bit: bigint): number;
  bitmapFindNextSet(bm: number, nbits: bigint, from: bigint): bigint;
  bitmapFindNextClear(bm: number, nbits: bigint, from: bigint): bigint;
  bitmapAnySet(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapAllSet(bm: number, nbits: bigint, start: bigint, count: bigint): number;
  bitmapCount(bm: number, nbits: bigint, start: bigint, count: bigint): bigint;
  bitmapNextRun(bm: number, nbits: bigint, from: bigint, out: number): number;
  bitmapCollectRuns(bm: number, nbits: bigint, from: bigint, out: number, maxRuns: number): number;
  bitmapOr(dst: number, a: number, b: number, nbits: bigint): number;
  bitmapAnd(dst: number, a: number, b: number, nbits: bigint): number;
  bitmapAndNot(dst: number, a: number, b: number, nbits: bigint): number;
}

export interface LoadOptions {
  /** The image to load; default build/kernels.wasm beside this package. */
  wasmPath?: string;
  /** Initial size of the memory in 64 KiB pages beyond the static data (default 16). */
  initialPages?: number;
  /** Maximum size in pages (default and upper bound 65536 = 4 GiB, the image's declared maximum). */
  maximumPages?: number;
}

export interface Run {
  start: number; // first set bit
  length: number; // bits
}

/** The smallest module with a relaxed SIMD instruction: (func (param v128 v128) (result v128) i8x16.relaxed_swizzle). */
const RELAXED_PROBE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x07, 0x01, 0x60, 0x02, 0x7b, 0x7b, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00, 0x0a, 0x0b, 0x01, 0x09, 0x00, 0x20, 0x00, 0x20, 0x01, 0xfd, 0x80, 0x02, 0x0b,
]);

/**
 * The kernels image uses relaxed SIMD (i8x16.relaxed_swizzle in the RS kernel). Node 22 and later
 * have it on; Node 20 (V8 11.3) has it behind --experimental-wasm-relaxed-simd, which this sets
 * for the whole process (workers included) before any image is compiled. Throws, naming the
 * engine, when the engine cannot run it at all.
 */
export function allowRelaxedSimd(): void {
  if (Wasm.validate(RELAXED_PROBE)) return;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  require('v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
  if (!Wasm.validate(RELAXED_PROBE)) {
    throw new Error(`kernels: this engine (V8 ${process.versions.v8}) has no WebAssembly relaxed SIMD, which build/kernels.wasm needs`);
  }
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536;
const DEFAULT_WASM = packagePath('build', 'kernels.wasm');

const ERROR_NAMES: Record<number, string> = {
  [codes.KERR_BOUNDS]: 'KERR_BOUNDS',
  [codes.KERR_ALIGN]: 'KERR_ALIGN',
  [codes.KERR_RANGE]: 'KERR_RANGE',
  [codes.KERR_OVERLAP]: 'KERR_OVERLAP',
  [codes.KERR_K]: 'KERR_K',
  [codes.KERR_M]: 'KERR_M',
  [codes.KERR_TOO_FEW]: 'KERR_TOO_FEW',
  [codes.KERR_SHARDS]: 'KERR_SHARDS',
  [codes.KERR_COUNT]: 'KERR_COUNT',
  [codes.KERR_SINGULAR]: 'KERR_SINGULAR',
};

const ERROR_TEXT: Record<number, string> = {
  [codes.KERR_BOUNDS]: 'a buffer reaches past the end of the kernel memory (or an output lies over its static data)',
  [codes.KERR_ALIGN]: 'the bitmap (or out area) is not 8-byte aligned',
  [codes.KERR_RANGE]: 'the bit position or range lies beyond the bitmap',
  [codes.KERR_OVERLAP]: 'an output buffer overlaps an input, another output, a pointer list or the scratch',
  [codes.KERR_K]: `the number of data shards k is out of range (1..${codes.RS_MAX_K})`,
  [codes.KERR_M]: `the number of parity shards m is out of range (1..${codes.RS_MAX_M})`,
  [codes.KERR_TOO_FEW]: 'fewer than k shards survive: the data cannot be reconstructed',
  [codes.KERR_SHARDS]: 'a shard mask names a shard beyond k + m, or a shard that is both present and a target',
  [codes.KERR_COUNT]: 'a source, row or run count is out of range',
  [codes.KERR_SINGULAR]: 'the coefficient matrix of the survivors is singular',
};

/** An error returned by a kernel: `code` is the KERR_* value, `codeName` its name. */
export interface KernelError extends Error {
  code: number;
  codeName: string;
  kernel: string;
}

/** The thrown error for a kernel result code (RangeError for sizes/counts/positions). */
export function kernelError(kernel: string, code: number, detail?: string): KernelError {
  const text = ERROR_TEXT[code] ?? `unknown kernel result code ${code}`;
  const message = `${kernel}: ${text}${detail ? ` (${detail})` : ''}`;
  const isRange = code !== codes.KERR_OVERLAP && code !== codes.KERR_TOO_FEW && code !== codes.KERR_SINGULAR;
  const err = (isRange ? new RangeError(message) : new Error(message)) as KernelError;
  err.code = code;
  err.codeName = ERROR_NAMES[code] ?? 'KERR_UNKNOWN';
  err.kernel = kernel;
  return err;
}

function check(kernel: string, rc: number | bigint, detail?: () => string): number {
  const n = Number(rc);
  if (n < 0) throw kernelError(kernel, n, detail?.());
  return n;
}

function maskOf(indices: Iterable<number>): bigint {
  let mask = 0n;
  for (const i of indices) mask |= 1n << BigInt(i);
  return mask;
}

function requireInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/**
 * Bump allocator over the kernel memory above the image's static data. alloc() grows the memory
 * when needed; mark()/release() free in LIFO order. Pointers stay valid until released; views
 * (bytes()) must be re-taken after the memory grows.
 */
export class Arena {
  readonly base: number;
  private top: number;

  constructor(private readonly memory: WasmMemory, base: number) {
    this.base = base;
    this.top = base;
  }

  /** Allocates `bytes` at a multiple of `align` (a power of two); returns the address. */
  alloc(bytes: number, align = 16): number {
    requireInt('alloc bytes', bytes, 0, 2 ** 32);
    const ptr = (this.top + align - 1) & ~(align - 1);
    const end = ptr + bytes;
    if (end > 2 ** 32) throw new RangeError(`arena: ${bytes} bytes do not fit in the 4 GiB kernel memory`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      try {
        this.memory.grow(pages);
      } catch {
        throw new RangeError(`arena: cannot grow the kernel memory by ${pages} pages for ${bytes} bytes`);
      }
    }
    this.top = end;
    return ptr;
  }

  /** The current top, to release() back to. */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    if (mark < this.base || mark > this.top) throw new RangeError(`arena: bad mark ${mark}`);
    this.top = mark;
  }

  reset(): void {
    this.top = this.base;
  }

  /** A view of [ptr, ptr + bytes) of the kernel memory (no copy). */
  bytes(ptr: number, bytes: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, bytes);
  }

  /** Allocates and fills a list of u32 pointers; returns its address. */
  pointerList(ptrs: ArrayLike<number>): number {
    const list = this.alloc(Math.max(ptrs.length, 1) * 4, 4);
    const view = new Uint32Array(this.memory.buffer, list, ptrs.length);
    for (let i = 0; i < ptrs.length; i++) view[i] = ptrs[i];
    return list;
  }

  /** Allocates a copy of data; returns its address. */
  copyIn(data: Uint8Array, align = 16): number {
    const ptr = this.alloc(data.length, align);
    new Uint8Array(this.memory.buffer, ptr, data.length).set(data);
    return ptr;
  }

  /** A copy (in ordinary memory) of [ptr, ptr + bytes). */
  copyOut(ptr: number, bytes: number): Buffer {
    return Buffer.from(new Uint8Array(this.memory.buffer, ptr, bytes));
  }
}

/** Bytes crc32c() stages in a region of its own; longer data goes through the arena. */
const CRC_STAGE_BYTES = 8192;

export class Kernels {
  readonly arena: Arena;
  /** RS_SCRATCH_BYTES owned by this wrapper for the matrix kernels. */
  readonly scratch: number;
  /** CRC_STAGE_BYTES + 8 owned by crc32c() for its input: no arena allocation per call. */
  private readonly crcStage: number;
  private crcStageView: Uint8Array;

  private constructor(readonly memory: WasmMemory, readonly raw: KernelExports) {
    this.arena = new Arena(memory, (raw.staticEnd() + 63) & ~63);
    this.scratch = this.arena.alloc(codes.RS_SCRATCH_BYTES, 64);
    this.crcStage = this.arena.alloc(CRC_STAGE_BYTES + 8, 64);
    this.crcStageView = this.arena.bytes(this.crcStage, CRC_STAGE_BYTES + 8);
  }

  /** Compiles and instantiates the kernels image synchronously. */
  static load(options: LoadOptions = {}): Kernels {
    allowRelaxedSimd();
    const module = new Wasm.Module(fs.readFileSync(options.wasmPath ?? DEFAULT_WASM));
    const memory = Kernels.newMemory(options);
    const instance = new Wasm.Instance(module, Kernels.imports(memory));
    return new Kernels(memory, instance.exports as unknown as KernelExports);
  }

  static async loadAsync(options: LoadOptions = {}): Promise<Kernels> {
    const bytes = await fs.promises.readFile(options.wasmPath ?? DEFAULT_WASM);
    allowRelaxedSimd();
    const memory = Kernels.newMemory(options);
    const { instance } = await Wasm.instantiate(bytes, Kernels.imports(memory));
    return new Kernels(memory, instance.exports as unknown as KernelExports);
  }

  private static newMemory(options: LoadOptions): WasmMemory {
    const maximum = options.maximumPages ?? MAX_PAGES;
    requireInt('maximumPages', maximum, 1, MAX_PAGES);
    const initial = Math.min(maximum, 16 + (options.initialPages ?? 16)); // static data < 1 MiB
    return new Wasm.Memory({ initial, maximum, shared: true });
  }

  private static imports(memory: WasmMemory): WasmImports {
    const abort = (_msg: number, _file: number, line: number, column: number): never => {
      throw new Error(`kernels: abort at ${line}:${column} (a kernel bug: bad input must return a code)`);
    };
    return { env: { memory, abort } };
  }

  /** Size of the kernel memory in bytes. */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  // ---- CRC-32C --------------------------------------------------------------------------------

  /** CRC-32C of [ptr, ptr + bytes) of the kernel memory, continuing from `previous`. */
  crc32cAt(ptr: number, bytes: number, previous = 0): number {
    return check('crc32c', this.raw.crc32c(ptr, bytes, previous | 0), () => `[${ptr}, ${ptr + bytes}) of ${this.memoryBytes}`);
  }

  /**
   * CRC-32C of data, continuing from `previous` (0 to start). Copies data into the kernel memory:
   * up to CRC_STAGE_BYTES into a region kept for it (the per-frame case: a copy and a call, nothing
   * allocated), longer data into the arena.
   */
  crc32c(data: Uint8Array, previous = 0): number {
    if (data.length <= CRC_STAGE_BYTES) {
      // A view of a shared memory outlives growth; one of an unshared memory is detached by it.
      if (this.crcStageView.byteLength === 0) this.crcStageView = this.arena.bytes(this.crcStage, CRC_STAGE_BYTES + 8);
      // Staged at the data's own alignment: a copy into shared memory goes a word at a time only
      // between equally aligned addresses, else a byte at a time (2 KiB: 0.26 us against 1.2 us).
      const skew = data.byteOffset & 7;
      this.crcStageView.set(data, skew);
      const crc = Number(this.raw.crc32c(this.crcStage + skew, data.length, previous | 0));
      if (crc < 0) throw kernelError('crc32c', crc, `${data.length} bytes staged at ${this.crcStage + skew}`);
      return crc;
    }
    const mark = this.arena.mark();
    try {
      return this.crc32cAt(this.arena.copyIn(data), data.length, previous);
    } finally {
      this.arena.release(mark);
    }
  }

  // ---- XOR ------------------------------------------------------------------------------------

  /** dst = XOR of the buffers at srcPtrs, each `bytes` long, all in the kernel memory. */
  xorAt(dst: number, srcPtrs: ArrayLike<number>, bytes: number): void {
    const mark = this.arena.mark();
    try {
      const list = this.arena.pointerList(srcPtrs);
      check('xorBlocks', this.raw.xorBlocks(dst, list, srcPtrs.length, bytes), () => `${srcPtrs.length} sources of ${bytes} bytes`);
    } finally {
      this.arena.release(mark);
    }
  }

  /** XOR of equally long sources, as a new Buffer. */
  xor(sources: Uint8Array[]): Buffer {
    const bytes = sameLength('xor', sources);
    const mark = this.arena.mark();
    try {
      const ptrs = sources.map((s) => this.arena.copyIn(s));
      const dst = this.arena.alloc(bytes);
      this.xorAt(dst, ptrs, bytes);
      return this.arena.copyOut(dst, bytes);
    } finally {
      this.arena.release(mark);
    }
  }

  // ---- GF(2^8) ----------------------------------------------------------------------------------

  gfMul(a: number, b: number): number {
    return this.raw.gfMul(a & 0xff, b & 0xff);
  }

  gfInv(a: number): number {
    return this.raw.gfInv(a & 0xff);
  }

  /** dst_r = sum_j coef[r * k + j] * src_j over GF(2^8) for r < rows (= dstPtrs.length). */
  gfMatrixApplyAt(coef: Uint8Array, srcPtrs: ArrayLike<number>, dstPtrs: ArrayLike<number>, bytes: number): void {
    const rows = dstPtrs.length, k = srcPtrs.length;
    if (coef.length !== rows * k) throw new RangeError(`gfMatrixApply: coef has ${coef.length} bytes, rows x k = ${rows * k}`);
    const mark = this.arena.mark();
    try {
      const coefPtr = this.arena.copyIn(coef, 1);
      const src = this.arena.pointerList(srcPtrs), dst = this.arena.pointerList(dstPtrs);
      check('gfMatrixApply', this.raw.gfMatrixApply(rows, k, coefPtr, src, dst, bytes, this.scratch), () => `rows ${rows}, k ${k}`);
    } finally {
      this.arena.release(mark);
    }
  }

  // ---- Reed-Solomon -----------------------------------------------------------------------------

  /** Parity shards (m, pointers) from data shards (k = dataPtrs.length), each `bytes` long. */
  rsEncodeAt(dataPtrs: ArrayLike<number>, parityPtrs: ArrayLike<number>, bytes: number): void {
    const k = dataPtrs.length, m = parityPtrs.length;
    const mark = this.arena.mark();
    try {
      const data = this.arena.pointerList(dataPtrs), parity = this.arena.pointerList(parityPtrs);
      check('rsEncode', this.raw.rsEncode(k, m, data, parity, bytes, this.scratch), () => `k ${k}, m ${m}, ${bytes} bytes`);
    } finally {
      this.arena.release(mark);
    }
  }

  /**
   * Rebuilds shards `targets` (indices: data 0..k-1, parity k..k+m-1) from shards `present`;
   * shardPtrs has k + m entries (those in neither list are not read; pass 0).
   */
  rsReconstructAt(k: number, m: number, shardPtrs: ArrayLike<number>, present: Iterable<number>, targets: Iterable<number>, bytes: number): void {
    this.reconstructAt('rsReconstruct', k, m, shardPtrs, present, targets, bytes);
  }

  /** The m parity shards of k = data.length equally long data shards, as new Buffers. */
  rsEncode(data: Uint8Array[], m: number): Buffer[] {
    const bytes = sameLength('rsEncode', data);
    const mark = this.arena.mark();
    try {
      const dataPtrs = data.map((d) => this.arena.copyIn(d));
      const parityPtrs = Array.from({ length: m }, () => this.arena.alloc(bytes));
      this.rsEncodeAt(dataPtrs, parityPtrs, bytes);
      return parityPtrs.map((p) => this.arena.copyOut(p, bytes));
    } finally {
      this.arena.release(mark);
    }
  }

  /**
   * Given the k + m shards with the missing ones null/undefined, returns all k + m shards
   * (present ones as given, missing ones rebuilt). Throws when fewer than k are present.
   */
  rsReconstruct(k: number, m: number, shards: (Uint8Array | null | undefined)[]): Uint8Array[] {
    return this.reconstruct('rsReconstruct', k, m, shards);
  }

  // ---- RAID-6 -----------------------------------------------------------------------------------

  /** P (XOR) and Q (sum of 2^j D_j) of k = dataPtrs.length data shards. */
  raid6GenAt(dataPtrs: ArrayLike<number>, p: number, q: number, bytes: number): void {
    const mark = this.arena.mark();
    try {
      const list = this.arena.pointerList(dataPtrs);
      check('raid6Gen', this.raw.raid6Gen(dataPtrs.length, list, p, q, bytes), () => `k ${dataPtrs.length}, ${bytes} bytes`);
    } finally {
      this.arena.release(mark);
    }
  }

  raid6Gen(data: Uint8Array[]): { p: Buffer; q: Buffer } {
    const bytes = sameLength('raid6Gen', data);
    const mark = this.arena.mark();
    try {
      const ptrs = data.map((d) => this.arena.copyIn(d));
      const p = this.arena.alloc(bytes), q = this.arena.alloc(bytes);
      this.raid6GenAt(ptrs, p, q, bytes);
      return { p: this.arena.copyOut(p, bytes), q: this.arena.copyOut(q, bytes) };
    } finally {
      this.arena.release(mark);
    }
  }

  /** As rsReconstructAt for a k+2 P+Q set: shard k is P, shard k + 1 is Q. */
  raid6ReconstructAt(k: number, shardPtrs: ArrayLike<number>, present: Iterable<number>, targets: Iterable<number>, bytes: number): void {
    this.reconstructAt('raid6Reconstruct', k, 2, shardPtrs, present, targets, bytes);
  }

  /** As rsReconstruct for the k + 2 shards D_0..D_{k-1}, P, Q of a RAID-6 stripe. */
  raid6Reconstruct(k: number, shards: (Uint8Array | null | undefined)[]): Uint8Array[] {
    return this.reconstruct('raid6Reconstruct', k, 2, shards);
  }

  private reconstructAt(kernel: 'rsReconstruct' | 'raid6Reconstruct', k: number, m: number, shardPtrs: ArrayLike<number>, present: Iterable<number>, targets: Iterable<number>, bytes: number): void {
    const presentList = [...present], targetList = [...targets];
    for (const s of [...presentList, ...targetList]) requireInt(`${kernel}: shard index`, s, 0, 63);
    const mark = this.arena.mark();
    try {
      const list = this.arena.pointerList(shardPtrs);
      const pm = maskOf(presentList), tm = maskOf(targetList);
      const rc = kernel === 'rsReconstruct'
        ? this.raw.rsReconstruct(k, m, list, pm, tm, bytes, this.scratch)
        : this.raw.raid6Reconstruct(k, list, pm, tm, bytes, this.scratch);
      check(kernel, rc, () => `k ${k}, m ${m}, present [${presentList}], targets [${targetList}]`);
    } finally {
      this.arena.release(mark);
    }
  }

  private reconstruct(kernel: 'rsReconstruct' | 'raid6Reconstruct', k: number, m: number, shards: (Uint8Array | null | undefined)[]): Uint8Array[] {
    if (shards.length !== k + m) throw new RangeError(`${kernel}: expected k + m = ${k + m} shards, got ${shards.length}`);
    const given = shards.filter((s): s is Uint8Array => s != null);
    if (given.length === 0) throw kernelError(kernel, codes.KERR_TOO_FEW, `0 of ${k + m} shards present, k = ${k}`);
    const bytes = sameLength(kernel, given);
    const mark = this.arena.mark();
    try {
      const ptrs = shards.map((s) => (s ? this.arena.copyIn(s) : this.arena.alloc(bytes)));
      const present = shards.flatMap((s, i) => (s ? [i] : []));
      const targets = shards.flatMap((s, i) => (s ? [] : [i]));
      if (present.length < k) throw kernelError(kernel, codes.KERR_TOO_FEW, `${present.length} of ${k + m} shards present, k = ${k}`);
      this.reconstructAt(kernel, k, m, ptrs, present, targets, bytes);
      return shards.map((s, i) => s ?? this.arena.copyOut(ptrs[i], bytes));
    } finally {
      this.arena.release(mark);
    }
  }

  // ---- Bitmaps ----------------------------------------------------------------------------------

  /** A new all-clear bitmap of nbits bits in the arena (until the arena is released past it). */
  bitmap(nbits: number): Bitmap {
    requireInt('bitmap nbits', nbits, 0, codes.BITMAP_MAX_BITS);
    const bytes = Math.ceil(nbits / 64) * 8;
    const ptr = this.arena.alloc(bytes, 64);
    this.arena.bytes(ptr, bytes).fill(0);
    return new Bitmap(this, ptr, nbits);
  }

  /** A Bitmap over nbits bits already at ptr in the kernel memory. */
  bitmapAt(ptr: number, nbits: number): Bitmap {
    return new Bitmap(this, ptr, nbits);
  }
}

/** A differential bitmap in the kernel memory: u64 LE words, bit i = bit (i & 63) of word i >> 6. */
export class Bitmap {
  private readonly n: bigint;

  constructor(readonly kernels: Kernels, readonly ptr: number, readonly nbits: number) {
    this.n = BigInt(nbits);
  }

  get byteLength(): number {
    return Math.ceil(this.nbits / 64) * 8;
  }

  /** A view of the bitmap's words (no copy). */
  bytes(): Uint8Array {
    return this.kernels.arena.bytes(this.ptr, this.byteLength);
  }

  private get raw(): KernelExports {
    return this.kernels.raw;
  }

  private detail(start: number, count: number): () => string {
    return () => `bitmap of ${this.nbits} bits at ${this.ptr}, bits [${start}, ${start + count})`;
  }

  setRange(start: number, count = 1): void {
    check('bitmapSetRange', this.raw.bitmapSetRange(this.ptr, this.n, big(start), big(count)), this.detail(start, count));
  }

  clearRange(start: number, count = 1): void {
    check('bitmapClearRange', this.raw.bitmapClearRange(this.ptr, this.n, big(start), big(count)), this.detail(start, count));
  }

  atomicSetRange(start: number, count = 1): void {
    check('bitmapAtomicSetRange', this.raw.bitmapAtomicSetRange(this.ptr, this.n, big(start), big(count)), this.detail(start, count));
  }

  atomicClearRange(start: number, count = 1): void {
    check('bitmapAtomicClearRange', this.raw.bitmapAtomicClearRange(this.ptr, this.n, big(start), big(count)), this.detail(start, count));
  }

  /** Atomically sets a bit; returns whether it was already set. */
  atomicSet(bit: number): boolean {
    return check('bitmapAtomicSet', this.raw.bitmapAtomicSet(this.ptr, this.n, big(bit)), this.detail(bit, 1)) === 1;
  }

  /** Atomically clears a bit; returns whether it was set. */
  atomicClear(bit: number): boolean {
    return check('bitmapAtomicClear', this.raw.bitmapAtomicClear(this.ptr, this.n, big(bit)), this.detail(bit, 1)) === 1;
  }

  test(bit: number): boolean {
    return check('bitmapTest', this.raw.bitmapTest(this.ptr, this.n, big(bit)), this.detail(bit, 1)) === 1;
  }

  anySet(start = 0, count = this.nbits - start): boolean {
    return check('bitmapAnySet', this.raw.bitmapAnySet(this.ptr, this.n, big(start), big(count)), this.detail(start, count)) === 1;
  }

  allSet(start = 0, count = this.nbits - start): boolean {
    return check('bitmapAllSet', this.raw.bitmapAllSet(this.ptr, this.n, big(start), big(count)), this.detail(start, count)) === 1;
  }

  count(start = 0, count = this.nbits - start): number {
    return check('bitmapCount', this.raw.bitmapCount(this.ptr, this.n, big(start), big(count)), this.detail(start, count));
  }

  /** The first set bit at or after `from`, or -1. */
  findNextSet(from = 0): number {
    const r = check('bitmapFindNextSet', this.raw.bitmapFindNextSet(this.ptr, this.n, big(from)), this.detail(from, 0));
    return r === this.nbits ? -1 : r;
  }

  /** The first clear bit at or after `from`, or -1. */
  findNextClear(from = 0): number {
    const r = check('bitmapFindNextClear', this.raw.bitmapFindNextClear(this.ptr, this.n, big(from)), this.detail(from, 0));
    return r === this.nbits ? -1 : r;
  }

  /** The first run of set bits at or after `from` (clipped to start at `from`), or null. */
  nextRun(from = 0): Run | null {
    const arena = this.kernels.arena;
    const mark = arena.mark();
    try {
      const out = arena.alloc(codes.RUN_BYTES, 8);
      const found = check('bitmapNextRun', this.raw.bitmapNextRun(this.ptr, this.n, big(from), out), this.detail(from, 0));
      if (found === 0) return null;
      const words = new BigUint64Array(arena.bytes(out, codes.RUN_BYTES).slice().buffer);
      return { start: Number(words[0]), length: Number(words[1]) };
    } finally {
      arena.release(mark);
    }
  }

  /** Every run of set bits from `from` on, fetched `batch` at a time (bitmapCollectRuns). */
  *runs(from = 0, batch = 256): Generator<Run> {
    requireInt('runs batch', batch, 1, 1 << 20);
    let pos = from;
    for (;;) {
      const got = this.collect(pos, batch);
      for (const run of got) yield run;
      if (got.length < batch) return;
      const last = got[got.length - 1];
      pos = last.start + last.length;
    }
  }

  private collect(from: number, maxRuns: number): Run[] {
    const arena = this.kernels.arena;
    const mark = arena.mark();
    try {
      const out = arena.alloc(maxRuns * codes.RUN_BYTES, 8);
      const n = check('bitmapCollectRuns', this.raw.bitmapCollectRuns(this.ptr, this.n, big(from), out, maxRuns), this.detail(from, 0));
      const words = new BigUint64Array(arena.bytes(out, n * codes.RUN_BYTES).slice().buffer);
      const runs: Run[] = [];
      for (let i = 0; i < n; i++) runs.push({ start: Number(words[2 * i]), length: Number(words[2 * i + 1]) });
      return runs;
    } finally {
      arena.release(mark);
    }
  }

  /** this = this | other (or into dst). Bitmaps must have the same nbits. */
  or(other: Bitmap, dst: Bitmap = this): void {
    this.binary('bitmapOr', other, dst);
  }

  and(other: Bitmap, dst: Bitmap = this): void {
    this.binary('bitmapAnd', other, dst);
  }

  /** this = this & ~other (or into dst). */
  andNot(other: Bitmap, dst: Bitmap = this): void {
    this.binary('bitmapAndNot', other, dst);
  }

  private binary(kernel: 'bitmapOr' | 'bitmapAnd' | 'bitmapAndNot', other: Bitmap, dst: Bitmap): void {
    if (other.nbits !== this.nbits || dst.nbits !== this.nbits) {
      throw new RangeError(`${kernel}: bitmaps differ in size (${this.nbits}, ${other.nbits}, ${dst.nbits} bits)`);
    }
    check(kernel, this.raw[kernel](dst.ptr, this.ptr, other.ptr, this.n), () => `bitmaps at ${dst.ptr}, ${this.ptr}, ${other.ptr}`);
  }
}

function big(n: number): bigint {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`bit positions and counts must be non-negative integers, got ${n}`);
  return BigInt(n);
}

function sameLength(kernel: string, buffers: Uint8Array[]): number {
  if (buffers.length === 0) throw new RangeError(`${kernel}: no buffers given`);
  const bytes = buffers[0].length;
  for (const b of buffers) {
    if (b.length !== bytes) throw new RangeError(`${kernel}: buffers differ in length (${bytes} and ${b.length} bytes)`);
  }
  return bytes;
}
