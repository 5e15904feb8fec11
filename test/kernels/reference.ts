// Small, obviously correct TypeScript references for the kernels, independent of the wasm image:
// property tests compare the kernels against these, and bench/kernels.ts uses the table-driven
// ones as the "plain TypeScript" peers. Nothing here is fast on purpose except where it says so.

// ---- CRC-32C ------------------------------------------------------------------------------------

const CRC32C_POLY = 0x82f63b78;

/** Bit-at-a-time CRC-32C (the definition), continuing from a finished CRC `previous`. */
export function crc32cBitwise(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ CRC32C_POLY : crc >>> 1;
  }
  return ~crc >>> 0;
}

function crcTables(slices: number): Uint32Array[] {
  const t = [new Uint32Array(256)];
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY : c >>> 1;
    t[0][b] = c >>> 0;
  }
  for (let s = 1; s < slices; s++) {
    t.push(new Uint32Array(256));
    for (let b = 0; b < 256; b++) t[s][b] = ((t[s - 1][b] >>> 8) ^ t[0][t[s - 1][b] & 0xff]) >>> 0;
  }
  return t;
}

const T8 = crcTables(8);

/** Plain JavaScript byte-at-a-time table CRC-32C (the classic software method; bench peer). */
export function crc32cTable(data: Uint8Array, previous = 0): number {
  const t = T8[0];
  let crc = ~previous;
  for (let i = 0; i < data.length; i++) crc = (crc >>> 8) ^ t[(crc ^ data[i]) & 0xff];
  return ~crc >>> 0;
}

/** Plain JavaScript slicing-by-8 CRC-32C (a faster JS peer for the benchmark). */
export function crc32cSlicing8(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = T8;
  let crc = ~previous;
  let i = 0;
  const end8 = data.length - 7;
  for (; i < end8; i += 8) {
    const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    crc = t7[lo & 0xff] ^ t6[(lo >>> 8) & 0xff] ^ t5[(lo >>> 16) & 0xff] ^ t4[lo >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < data.length; i++) crc = (crc >>> 8) ^ t0[(crc ^ data[i]) & 0xff];
  return ~crc >>> 0;
}

// ---- GF(2^8), poly 0x11D --------------------------------------------------------------------------

/** Shift-and-add multiplication: the definition of the field. */
export function gfMulSlow(a: number, b: number): number {
  let product = 0;
  for (let i = 0; i < 8; i++) {
    if (b & 1) product ^= a;
    b >>= 1;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return product;
}

export function gfInvSlow(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse');
  for (let x = 1; x < 256; x++) if (gfMulSlow(a, x) === 1) return x;
  throw new Error('unreachable: GF(2^8) is a field');
}

export function gfPowSlow(a: number, e: number): number {
  let r = 1;
  for (let i = 0; i < e; i++) r = gfMulSlow(r, a);
  return r;
}

/** The full 64 KiB product table MUL[a << 8 | b] (for the plain TS peers). */
export const GF_MUL_TABLE: Uint8Array = (() => {
  const t = new Uint8Array(65536);
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) t[(a << 8) | b] = gfMulSlow(a, b);
  return t;
})();

const GF_INV_TABLE = Uint8Array.from({ length: 256 }, (_, a) => (a === 0 ? 0 : gfInvSlow(a)));

export type Matrix = number[][];

/** Gauss-Jordan inverse over GF(2^8); throws when singular. */
export function gfInvert(matrix: Matrix): Matrix {
  const n = matrix.length;
  const a = matrix.map((row) => row.slice());
  const inv: Matrix = a.map((_, r) => a.map((__, c) => (r === c ? 1 : 0)));
  for (let col = 0; col < n; col++) {
    const pivot = a.findIndex((row, r) => r >= col && row[col] !== 0);
    if (pivot < 0) throw new Error('singular matrix');
    [a[col], a[pivot]] = [a[pivot], a[col]];
    [inv[col], inv[pivot]] = [inv[pivot], inv[col]];
    const f = GF_INV_TABLE[a[col][col]];
    a[col] = a[col].map((x) => GF_MUL_TABLE[(f << 8) | x]);
    inv[col] = inv[col].map((x) => GF_MUL_TABLE[(f << 8) | x]);
    for (let r = 0; r < n; r++) {
      const e = a[r][col];
      if (r === col || e === 0) continue;
      a[r] = a[r].map((x, c) => x ^ GF_MUL_TABLE[(e << 8) | a[col][c]]);
      inv[r] = inv[r].map((x, c) => x ^ GF_MUL_TABLE[(e << 8) | inv[col][c]]);
    }
  }
  return inv;
}

export function gfMatMul(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0].map((_, c) => row.reduce((acc, x, j) => acc ^ GF_MUL_TABLE[(x << 8) | b[j][c]], 0)));
}

/** out_r = sum_j coef[r][j] * src_j, a plain byte loop over the 64 KiB table (bench peer too). */
export function gfApply(coef: Matrix, sources: Uint8Array[], bytes: number): Uint8Array[] {
  return coef.map((row) => {
    const out = new Uint8Array(bytes);
    row.forEach((c, j) => {
      const src = sources[j];
      const base = c << 8;
      for (let b = 0; b < bytes; b++) out[b] ^= GF_MUL_TABLE[base | src[b]];
    });
    return out;
  });
}

// ---- Codes ------------------------------------------------------------------------------------------

/** The RS parity rows: ISA-L's gf_gen_cauchy1_matrix, C[i][j] = 1 / ((k + i) ^ j). */
export function cauchyParityRows(k: number, m: number): Matrix {
  return Array.from({ length: m }, (_, i) => Array.from({ length: k }, (__, j) => gfInvSlow((k + i) ^ j)));
}

/** The RAID-6 parity rows: P = all ones, Q = g^j (g = 2). */
export function raid6ParityRows(k: number): Matrix {
  return [Array(k).fill(1), Array.from({ length: k }, (_, j) => gfPowSlow(2, j))];
}

/** Full (k + m) x k systematic generator [I; parityRows]. */
export function generator(k: number, parityRows: Matrix): Matrix {
  const identity: Matrix = Array.from({ length: k }, (_, r) => Array.from({ length: k }, (__, c) => (r === c ? 1 : 0)));
  return [...identity, ...parityRows];
}

/** Rebuilds all shards from the first k present ones (null = missing). */
export function reconstructRef(k: number, parityRows: Matrix, shards: (Uint8Array | null)[]): Uint8Array[] {
  const gen = generator(k, parityRows);
  const present = shards.flatMap((s, i) => (s ? [i] : [])).slice(0, k);
  if (present.length < k) throw new Error('too few shards');
  const bytes = shards[present[0]]!.length;
  const inverse = gfInvert(present.map((i) => gen[i]));
  const data = gfApply(inverse, present.map((i) => shards[i]!), bytes);
  const parity = gfApply(parityRows, data, bytes);
  return [...data, ...parity];
}

/**
 * Backblaze JavaReedSolomon's generator (also klauspost/reedsolomon's default): the
 * Vandermonde matrix V[r][c] = r^c (0^0 = 1) made systematic by V * inverse(top k rows). Its
 * published test: 5+5, data [0,1] [4,5] [2,3] [6,7] [8,9] gives parity [12,13] [10,11]
 * [14,15] [90,91] [94,95].
 */
export function backblazeParityRows(k: number, m: number): Matrix {
  const vandermonde = Array.from({ length: k + m }, (_, r) => Array.from({ length: k }, (__, c) => (c === 0 ? 1 : gfPowSlow(r, c))));
  const systematic = gfMatMul(vandermonde, gfInvert(vandermonde.slice(0, k)));
  return systematic.slice(k);
}

/** RAID-6 P and Q by the definition: P = xor D_i, Q = sum g^i D_i. */
export function raid6Ref(data: Uint8Array[]): { p: Uint8Array; q: Uint8Array } {
  const bytes = data[0].length;
  const p = new Uint8Array(bytes), q = new Uint8Array(bytes);
  data.forEach((d, i) => {
    const g = gfPowSlow(2, i);
    for (let b = 0; b < bytes; b++) {
      p[b] ^= d[b];
      q[b] ^= gfMulSlow(g, d[b]);
    }
  });
  return { p, q };
}

/** XOR of equally long buffers. */
export function xorRef(sources: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(sources[0].length);
  for (const s of sources) for (let b = 0; b < out.length; b++) out[b] ^= s[b];
  return out;
}

// ---- Bitmaps ------------------------------------------------------------------------------------

/** A bitmap as one boolean per bit, with the kernel's operations spelled out. */
export class BitArray {
  readonly bits: boolean[];

  constructor(readonly nbits: number) {
    this.bits = Array(nbits).fill(false);
  }

  static fromWords(bytes: Uint8Array, nbits: number): BitArray {
    const a = new BitArray(nbits);
    for (let i = 0; i < nbits; i++) a.bits[i] = ((bytes[i >> 3] >> (i & 7)) & 1) === 1;
    return a;
  }

  /** The LE u64-word image (bit i = bit i & 7 of byte i >> 3, which is the same thing). */
  toWords(): Uint8Array {
    const out = new Uint8Array(Math.ceil(this.nbits / 64) * 8);
    this.bits.forEach((b, i) => {
      if (b) out[i >> 3] |= 1 << (i & 7);
    });
    return out;
  }

  fill(start: number, count: number, value: boolean): void {
    for (let i = start; i < start + count; i++) this.bits[i] = value;
  }

  count(start: number, count: number): number {
    let n = 0;
    for (let i = start; i < start + count; i++) if (this.bits[i]) n++;
    return n;
  }

  /** First index >= from with bits[i] === value, or -1. */
  findNext(from: number, value: boolean): number {
    for (let i = from; i < this.nbits; i++) if (this.bits[i] === value) return i;
    return -1;
  }

  runs(from: number): { start: number; length: number }[] {
    const out = [];
    let i = from;
    for (;;) {
      const start = this.findNext(i, true);
      if (start < 0) return out;
      let end = this.findNext(start, false);
      if (end < 0) end = this.nbits;
      out.push({ start, length: end - start });
      i = end;
    }
  }
}
