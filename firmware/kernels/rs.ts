// Erasure codes over GF(2^8) (poly 0x11D): P+Q (RAID-6) and systematic Reed-Solomon k+m.
//
// Model: a code is a generator matrix whose top k rows are the identity (the data shards are
// stored as they are) and whose m parity rows say how each parity shard combines the data:
//   RS     parity row i, column j: 1 / ((k + i) ^ j), the Cauchy matrix of ISA-L's
//          gf_gen_cauchy1_matrix (and klauspost/reedsolomon's WithCauchyMatrix). Any square
//          submatrix of a Cauchy matrix is invertible, so [I; C] is MDS: every k of the k + m
//          shards determine the data. Valid for k + m <= 256; we allow k <= 32, m <= 8.
//   RAID6  P row all ones (XOR), Q row g^j with g = 2: Q = sum of 2^j * D_j (H. P. Anvin, "The
//          mathematics of RAID-6"; Linux md). Every 2x2 and kxk choice is invertible for k <= 255;
//          we allow k <= 32 (the reconstruction matrix lives in a 32x32 scratch).
// Reconstruction takes the first k surviving shards, inverts their k x k generator submatrix
// (Gauss-Jordan), and computes each wanted shard as one row of coefficients over the survivors,
// so data and parity are rebuilt in one pass over the survivors.
//
// Kernel: dst_r = sum_j coef[r][j] * src_j for up to four rows at once. Each 16-byte source vector
// is split into low and high nibbles once, and each product is two swizzle look-ups into the
// coefficient's split-nibble tables (gf256.ts). Scalar tail for bytes % 16. The swizzles are the
// relaxed ones: their indices are nibbles (< 16), where relaxed and strict swizzle agree on every
// engine, and V8 then emits a lone pshufb instead of a saturating add before each one (the add
// that maps indices >= 16 to 0, which never occur here).
//
// Shards are named by lists of u32 pointers in memory (no copying). Scratch: the caller gives
// RS_SCRATCH_BYTES of memory private to the calling IOP (there is no heap, and globals are per
// instance but memory is shared, so no static scratch would be safe).

import { inMemory, overlaps, ptrAt, writable } from './bounds';
import {
  KERR_BOUNDS, KERR_COUNT, KERR_K, KERR_M, KERR_OK, KERR_OVERLAP, KERR_SHARDS, KERR_SINGULAR,
  KERR_TOO_FEW, RAID6_MAX_K, RS_MAX_K, RS_MAX_M, RS_SCRATCH_BYTES,
} from './codes';
import { gfInvRaw, gfMulRaw, gfNibbles, gfPow2Raw } from './gf256';

// Scratch layout (bytes). Matrices are stored with a row stride of 32 bytes.
const ROW_STRIDE: usize = 32;
const SCR_MATRIX: usize = 0; // 32 x 32: the survivors' generator submatrix, reduced in place
const SCR_INVERSE: usize = 1024; // 32 x 32: its inverse
const SCR_COEF: usize = 2048; // up to 32 rows of output coefficients
const SCR_SRC_LIST: usize = 3072; // up to 32 u32 source pointers
const SCR_DST_LIST: usize = 3200; // up to 32 u32 destination pointers
const MAX_ROWS = 32;

const CODE_RS = 0;
const CODE_RAID6 = 1;

// ---- The dot-product kernel ---------------------------------------------------------------------

@inline function mulVec(coef: u32, lo: v128, hi: v128): v128 {
  const t = gfNibbles(coef);
  return v128.xor(i8x16.relaxed_swizzle(v128.load(t), lo), i8x16.relaxed_swizzle(v128.load(t, 16), hi));
}

// acc ^ (c*x) where tl/th are c's nibble tables and lo/hi x's nibbles.
@inline function mac(acc: v128, tl: v128, th: v128, lo: v128, hi: v128): v128 {
  return v128.xor(acc, v128.xor(i8x16.relaxed_swizzle(tl, lo), i8x16.relaxed_swizzle(th, hi)));
}

@inline function loNibbles(v: v128): v128 {
  return v128.and(v, i8x16.splat(0x0f));
}

@inline function hiNibbles(v: v128): v128 {
  return v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
}

function dot4(k: i32, coef: usize, srcList: usize, dstList: usize, vecBytes: usize): void {
  const d0 = ptrAt(dstList, 0), d1 = ptrAt(dstList, 1), d2 = ptrAt(dstList, 2), d3 = ptrAt(dstList, 3);
  let p: usize = 0;
  for (; p + 32 <= vecBytes; p += 32) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcList, j) + p;
      const v = v128.load(s), w = v128.load(s, 16);
      const vlo = loNibbles(v), vhi = hiNibbles(v), wlo = loNibbles(w), whi = hiNibbles(w);
      const c = coef + <usize>j;
      let t = gfNibbles(load<u8>(c));
      let tl = v128.load(t), th = v128.load(t, 16);
      a0 = mac(a0, tl, th, vlo, vhi);
      b0 = mac(b0, tl, th, wlo, whi);
      t = gfNibbles(load<u8>(c, 32));
      tl = v128.load(t); th = v128.load(t, 16);
      a1 = mac(a1, tl, th, vlo, vhi);
      b1 = mac(b1, tl, th, wlo, whi);
      t = gfNibbles(load<u8>(c, 64));
      tl = v128.load(t); th = v128.load(t, 16);
      a2 = mac(a2, tl, th, vlo, vhi);
      b2 = mac(b2, tl, th, wlo, whi);
      t = gfNibbles(load<u8>(c, 96));
      tl = v128.load(t); th = v128.load(t, 16);
      a3 = mac(a3, tl, th, vlo, vhi);
      b3 = mac(b3, tl, th, wlo, whi);
    }
    v128.store(d0 + p, a0); v128.store(d0 + p, b0, 16);
    v128.store(d1 + p, a1); v128.store(d1 + p, b1, 16);
    v128.store(d2 + p, a2); v128.store(d2 + p, b2, 16);
    v128.store(d3 + p, a3); v128.store(d3 + p, b3, 16);
  }
  for (; p < vecBytes; p += 16) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let j = 0; j < k; j++) {
      const v = v128.load(ptrAt(srcList, j) + p);
      const lo = loNibbles(v), hi = hiNibbles(v);
      const c = coef + <usize>j;
      a0 = v128.xor(a0, mulVec(load<u8>(c), lo, hi));
      a1 = v128.xor(a1, mulVec(load<u8>(c, 32), lo, hi));
      a2 = v128.xor(a2, mulVec(load<u8>(c, 64), lo, hi));
      a3 = v128.xor(a3, mulVec(load<u8>(c, 96), lo, hi));
    }
    v128.store(d0 + p, a0);
    v128.store(d1 + p, a1);
    v128.store(d2 + p, a2);
    v128.store(d3 + p, a3);
  }
}

function dot3(k: i32, coef: usize, srcList: usize, dstList: usize, vecBytes: usize): void {
  const d0 = ptrAt(dstList, 0), d1 = ptrAt(dstList, 1), d2 = ptrAt(dstList, 2);
  let p: usize = 0;
  for (; p + 32 <= vecBytes; p += 32) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0, b0 = a0, b1 = a0, b2 = a0;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcList, j) + p;
      const v = v128.load(s), w = v128.load(s, 16);
      const vlo = loNibbles(v), vhi = hiNibbles(v), wlo = loNibbles(w), whi = hiNibbles(w);
      const c = coef + <usize>j;
      let t = gfNibbles(load<u8>(c));
      let tl = v128.load(t), th = v128.load(t, 16);
      a0 = mac(a0, tl, th, vlo, vhi);
      b0 = mac(b0, tl, th, wlo, whi);
      t = gfNibbles(load<u8>(c, 32));
      tl = v128.load(t); th = v128.load(t, 16);
      a1 = mac(a1, tl, th, vlo, vhi);
      b1 = mac(b1, tl, th, wlo, whi);
      t = gfNibbles(load<u8>(c, 64));
      tl = v128.load(t); th = v128.load(t, 16);
      a2 = mac(a2, tl, th, vlo, vhi);
      b2 = mac(b2, tl, th, wlo, whi);
    }
    v128.store(d0 + p, a0); v128.store(d0 + p, b0, 16);
    v128.store(d1 + p, a1); v128.store(d1 + p, b1, 16);
    v128.store(d2 + p, a2); v128.store(d2 + p, b2, 16);
  }
  for (; p < vecBytes; p += 16) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0;
    for (let j = 0; j < k; j++) {
      const v = v128.load(ptrAt(srcList, j) + p);
      const lo = loNibbles(v), hi = hiNibbles(v);
      const c = coef + <usize>j;
      a0 = v128.xor(a0, mulVec(load<u8>(c), lo, hi));
      a1 = v128.xor(a1, mulVec(load<u8>(c, 32), lo, hi));
      a2 = v128.xor(a2, mulVec(load<u8>(c, 64), lo, hi));
    }
    v128.store(d0 + p, a0);
    v128.store(d1 + p, a1);
    v128.store(d2 + p, a2);
  }
}

// Two rows, four vectors (64 bytes) per step: eight accumulators, like dot4's two vectors.
function dot2(k: i32, coef: usize, srcList: usize, dstList: usize, vecBytes: usize): void {
  const d0 = ptrAt(dstList, 0), d1 = ptrAt(dstList, 1);
  let p: usize = 0;
  for (; p + 64 <= vecBytes; p += 64) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcList, j) + p;
      const c = coef + <usize>j;
      const t0 = gfNibbles(load<u8>(c)), t1 = gfNibbles(load<u8>(c, 32));
      const t0l = v128.load(t0), t0h = v128.load(t0, 16), t1l = v128.load(t1), t1h = v128.load(t1, 16);
      let v = v128.load(s), lo = loNibbles(v), hi = hiNibbles(v);
      a0 = mac(a0, t0l, t0h, lo, hi);
      b0 = mac(b0, t1l, t1h, lo, hi);
      v = v128.load(s, 16); lo = loNibbles(v); hi = hiNibbles(v);
      a1 = mac(a1, t0l, t0h, lo, hi);
      b1 = mac(b1, t1l, t1h, lo, hi);
      v = v128.load(s, 32); lo = loNibbles(v); hi = hiNibbles(v);
      a2 = mac(a2, t0l, t0h, lo, hi);
      b2 = mac(b2, t1l, t1h, lo, hi);
      v = v128.load(s, 48); lo = loNibbles(v); hi = hiNibbles(v);
      a3 = mac(a3, t0l, t0h, lo, hi);
      b3 = mac(b3, t1l, t1h, lo, hi);
    }
    v128.store(d0 + p, a0); v128.store(d0 + p, a1, 16); v128.store(d0 + p, a2, 32); v128.store(d0 + p, a3, 48);
    v128.store(d1 + p, b0); v128.store(d1 + p, b1, 16); v128.store(d1 + p, b2, 32); v128.store(d1 + p, b3, 48);
  }
  for (; p < vecBytes; p += 16) {
    let a0 = i8x16.splat(0), a1 = a0;
    for (let j = 0; j < k; j++) {
      const v = v128.load(ptrAt(srcList, j) + p);
      const lo = loNibbles(v), hi = hiNibbles(v);
      const c = coef + <usize>j;
      a0 = v128.xor(a0, mulVec(load<u8>(c), lo, hi));
      a1 = v128.xor(a1, mulVec(load<u8>(c, 32), lo, hi));
    }
    v128.store(d0 + p, a0);
    v128.store(d1 + p, a1);
  }
}

// One row, four vectors (64 bytes) per step.
function dot1(k: i32, coef: usize, srcList: usize, dstList: usize, vecBytes: usize): void {
  const d0 = ptrAt(dstList, 0);
  let p: usize = 0;
  for (; p + 64 <= vecBytes; p += 64) {
    let a0 = i8x16.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let j = 0; j < k; j++) {
      const s = ptrAt(srcList, j) + p;
      const t = gfNibbles(load<u8>(coef + <usize>j));
      const tl = v128.load(t), th = v128.load(t, 16);
      let v = v128.load(s);
      a0 = mac(a0, tl, th, loNibbles(v), hiNibbles(v));
      v = v128.load(s, 16);
      a1 = mac(a1, tl, th, loNibbles(v), hiNibbles(v));
      v = v128.load(s, 32);
      a2 = mac(a2, tl, th, loNibbles(v), hiNibbles(v));
      v = v128.load(s, 48);
      a3 = mac(a3, tl, th, loNibbles(v), hiNibbles(v));
    }
    v128.store(d0 + p, a0); v128.store(d0 + p, a1, 16); v128.store(d0 + p, a2, 32); v128.store(d0 + p, a3, 48);
  }
  for (; p < vecBytes; p += 16) {
    let a0 = i8x16.splat(0);
    for (let j = 0; j < k; j++) {
      const v = v128.load(ptrAt(srcList, j) + p);
      a0 = v128.xor(a0, mulVec(load<u8>(coef + <usize>j), loNibbles(v), hiNibbles(v)));
    }
    v128.store(d0 + p, a0);
  }
}

function dotTail(rows: i32, k: i32, coef: usize, srcList: usize, dstList: usize, from: usize, bytes: usize): void {
  for (let r = 0; r < rows; r++) {
    const row = coef + <usize>r * ROW_STRIDE;
    const dst = ptrAt(dstList, r);
    for (let p = from; p < bytes; p++) {
      let acc: u32 = 0;
      for (let j = 0; j < k; j++) acc ^= gfMulRaw(load<u8>(row + <usize>j), load<u8>(ptrAt(srcList, j) + p));
      store<u8>(dst + p, <u8>acc);
    }
  }
}

// dst_r = sum_j coef[r][j] * src_j for r < rows: rows in groups of four, three, two or one.
function applyRows(rows: i32, k: i32, coef: usize, srcList: usize, dstList: usize, bytes: usize): void {
  const vecBytes = bytes & ~(<usize>15);
  let r = 0;
  while (r < rows) {
    const n = min(rows - r, 4);
    const c = coef + <usize>r * ROW_STRIDE;
    const d = dstList + (<usize>r << 2);
    if (n == 4) dot4(k, c, srcList, d, vecBytes);
    else if (n == 3) dot3(k, c, srcList, d, vecBytes);
    else if (n == 2) dot2(k, c, srcList, d, vecBytes);
    else dot1(k, c, srcList, d, vecBytes);
    dotTail(n, k, c, srcList, d, vecBytes, bytes);
    r += n;
  }
}

// ---- Argument checks ------------------------------------------------------------------------------

// True when [ptr, ptr + ptrBytes) overlaps a shard of the list selected by mask, except shard skip.
function clashesWithShards(ptr: usize, ptrBytes: u64, list: usize, mask: u64, count: i32, bytes: usize, skip: i32): bool {
  for (let s = 0; s < count; s++) {
    if (s == skip || ((mask >> <u64>s) & 1) == 0) continue;
    if (overlaps(ptr, ptrBytes, ptrAt(list, s), bytes)) return true;
  }
  return false;
}

function shardsInMemory(list: usize, mask: u64, count: i32, bytes: usize): bool {
  if (!inMemory(list, <u64>count << 2)) return false;
  for (let s = 0; s < count; s++) {
    if (((mask >> <u64>s) & 1) != 0 && !inMemory(ptrAt(list, s), bytes)) return false;
  }
  return true;
}

// Output shards (and the scratch) must also lie above the static data.
function shardsWritable(list: usize, mask: u64, count: i32, bytes: usize): bool {
  for (let s = 0; s < count; s++) {
    if (((mask >> <u64>s) & 1) != 0 && !writable(ptrAt(list, s), bytes)) return false;
  }
  return true;
}

// Outputs (shards of outList in outMask) must overlap no input, no other output, no pointer list
// and not the scratch; the scratch must overlap no shard and no list.
function outputsClash(
  outList: usize, outMask: u64, outCount: i32, inList: usize, inMask: u64, inCount: i32,
  bytes: usize, scratch: usize, scratchBytes: u64,
): bool {
  const outListBytes = <u64>outCount << 2, inListBytes = <u64>inCount << 2;
  for (let s = 0; s < outCount; s++) {
    if (((outMask >> <u64>s) & 1) == 0) continue;
    const o = ptrAt(outList, s);
    if (overlaps(o, bytes, outList, outListBytes) || overlaps(o, bytes, inList, inListBytes)) return true;
    if (overlaps(o, bytes, scratch, scratchBytes)) return true;
    if (clashesWithShards(o, bytes, outList, outMask, outCount, bytes, s)) return true;
    if (clashesWithShards(o, bytes, inList, inMask, inCount, bytes, -1)) return true;
  }
  if (overlaps(scratch, scratchBytes, outList, outListBytes) || overlaps(scratch, scratchBytes, inList, inListBytes)) return true;
  return clashesWithShards(scratch, scratchBytes, inList, inMask, inCount, bytes, -1);
}

@inline function allOf(count: i32): u64 {
  return count >= 64 ? ~(<u64>0) : ((<u64>1 << <u64>count) - 1);
}

// ---- Generator matrices and inversion -----------------------------------------------------------

// Coefficient of data shard j in parity shard i.
@inline function parityCoef(code: i32, k: i32, i: i32, j: i32): u32 {
  if (code == CODE_RS) return gfInvRaw(<u32>((k + i) ^ j));
  return i == 0 ? 1 : gfPow2Raw(<u32>j);
}

// Generator row of shard s (data s < k, else parity s - k) into row[0..k).
function generatorRow(row: usize, code: i32, k: i32, s: i32): void {
  for (let j = 0; j < k; j++) {
    const c: u32 = s < k ? <u32>(j == s) : parityCoef(code, k, s - k, j);
    store<u8>(row + <usize>j, <u8>c);
  }
}

function swapRows(mat: usize, a: i32, b: i32, n: i32): void {
  const ra = mat + <usize>a * ROW_STRIDE, rb = mat + <usize>b * ROW_STRIDE;
  for (let c = 0; c < n; c++) {
    const t = load<u8>(ra + <usize>c);
    store<u8>(ra + <usize>c, load<u8>(rb + <usize>c));
    store<u8>(rb + <usize>c, t);
  }
}

// row_dst ^= f * row_src over n columns (f = 1 for scaling is done by scaleRow).
function addScaledRow(mat: usize, dst: i32, src: i32, f: u32, n: i32): void {
  const rd = mat + <usize>dst * ROW_STRIDE, rs = mat + <usize>src * ROW_STRIDE;
  for (let c = 0; c < n; c++) {
    store<u8>(rd + <usize>c, <u8>(<u32>load<u8>(rd + <usize>c) ^ gfMulRaw(f, load<u8>(rs + <usize>c))));
  }
}

function scaleRow(mat: usize, r: i32, f: u32, n: i32): void {
  const row = mat + <usize>r * ROW_STRIDE;
  for (let c = 0; c < n; c++) store<u8>(row + <usize>c, <u8>gfMulRaw(f, load<u8>(row + <usize>c)));
}

function setIdentity(mat: usize, n: i32): void {
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) store<u8>(mat + <usize>r * ROW_STRIDE + <usize>c, <u8>(r == c));
  }
}

// Gauss-Jordan: inv = mat^-1 (n x n, stride 32); mat is destroyed. False when mat is singular.
function invert(mat: usize, inv: usize, n: i32): bool {
  setIdentity(inv, n);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && load<u8>(mat + <usize>pivot * ROW_STRIDE + <usize>col) == 0) pivot++;
    if (pivot == n) return false;
    if (pivot != col) {
      swapRows(mat, pivot, col, n);
      swapRows(inv, pivot, col, n);
    }
    const f = gfInvRaw(load<u8>(mat + <usize>col * ROW_STRIDE + <usize>col));
    scaleRow(mat, col, f, n);
    scaleRow(inv, col, f, n);
    for (let r = 0; r < n; r++) {
      const e: u32 = load<u8>(mat + <usize>r * ROW_STRIDE + <usize>col);
      if (r == col || e == 0) continue;
      addScaledRow(mat, r, col, e, n);
      addScaledRow(inv, r, col, e, n);
    }
  }
  return true;
}

// Coefficients over the k survivors that produce shard s: row s of inv for data, else the parity
// row times inv.
function recoveryRow(row: usize, code: i32, k: i32, s: i32, inv: usize): void {
  for (let c = 0; c < k; c++) {
    let acc: u32 = 0;
    if (s < k) {
      acc = load<u8>(inv + <usize>s * ROW_STRIDE + <usize>c);
    } else {
      for (let j = 0; j < k; j++) {
        acc ^= gfMulRaw(parityCoef(code, k, s - k, j), load<u8>(inv + <usize>j * ROW_STRIDE + <usize>c));
      }
    }
    store<u8>(row + <usize>c, <u8>acc);
  }
}

// ---- Reconstruction (shared by RS and RAID-6) ---------------------------------------------------

function checkMasks(n: i32, k: i32, present: u64, targets: u64): i32 {
  if (((present | targets) & ~allOf(n)) != 0 || (present & targets) != 0) return KERR_SHARDS;
  if (<i32>popcnt<u64>(present) < k) return KERR_TOO_FEW;
  return KERR_OK;
}

function checkReconstruct(n: i32, k: i32, shardList: usize, present: u64, targets: u64, bytes: usize, scratch: usize): i32 {
  const rc = checkMasks(n, k, present, targets);
  if (rc != KERR_OK) return rc;
  if (!shardsInMemory(shardList, present | targets, n, bytes)) return KERR_BOUNDS;
  if (!shardsWritable(shardList, targets, n, bytes) || !writable(scratch, RS_SCRATCH_BYTES)) return KERR_BOUNDS;
  if (outputsClash(shardList, targets, n, shardList, present, n, bytes, scratch, RS_SCRATCH_BYTES)) return KERR_OVERLAP;
  return KERR_OK;
}

function reconstruct(code: i32, k: i32, n: i32, shardList: usize, present: u64, targets: u64, bytes: usize, scratch: usize): i32 {
  let r = 0;
  for (let s = 0; s < n && r < k; s++) {
    if (((present >> <u64>s) & 1) == 0) continue;
    store<u32>(scratch + SCR_SRC_LIST + (<usize>r << 2), ptrAt(shardList, s));
    generatorRow(scratch + SCR_MATRIX + <usize>r * ROW_STRIDE, code, k, s);
    r++;
  }
  if (!invert(scratch + SCR_MATRIX, scratch + SCR_INVERSE, k)) return KERR_SINGULAR;
  let t = 0;
  for (let s = 0; s < n; s++) {
    if (((targets >> <u64>s) & 1) == 0) continue;
    store<u32>(scratch + SCR_DST_LIST + (<usize>t << 2), ptrAt(shardList, s));
    recoveryRow(scratch + SCR_COEF + <usize>t * ROW_STRIDE, code, k, s, scratch + SCR_INVERSE);
    t++;
  }
  applyRows(t, k, scratch + SCR_COEF, scratch + SCR_SRC_LIST, scratch + SCR_DST_LIST, bytes);
  return KERR_OK;
}

// ---- Exported kernels -------------------------------------------------------------------------

// Reed-Solomon k+m: computes the m parity shards (u32 pointers at parityList) from the k data
// shards (u32 pointers at dataList), each `bytes` long. Scratch: RS_SCRATCH_BYTES private bytes.
// Returns KERR_OK, KERR_K, KERR_M, KERR_BOUNDS or KERR_OVERLAP (a parity shard overlapping a data
// shard, another parity shard, a pointer list or the scratch).
export function rsEncode(k: i32, m: i32, dataList: usize, parityList: usize, bytes: usize, scratch: usize): i32 {
  if (k < 1 || k > RS_MAX_K) return KERR_K;
  if (m < 1 || m > RS_MAX_M) return KERR_M;
  if (!shardsInMemory(dataList, allOf(k), k, bytes) || !shardsInMemory(parityList, allOf(m), m, bytes)) return KERR_BOUNDS;
  if (!shardsWritable(parityList, allOf(m), m, bytes) || !writable(scratch, RS_SCRATCH_BYTES)) return KERR_BOUNDS;
  if (outputsClash(parityList, allOf(m), m, dataList, allOf(k), k, bytes, scratch, RS_SCRATCH_BYTES)) return KERR_OVERLAP;
  for (let i = 0; i < m; i++) generatorRow(scratch + SCR_COEF + <usize>i * ROW_STRIDE, CODE_RS, k, k + i);
  applyRows(m, k, scratch + SCR_COEF, dataList, parityList, bytes);
  return KERR_OK;
}

// Reed-Solomon k+m: rebuilds the shards in `targets` (bit s: shard s; data 0..k-1, parity
// k..k+m-1) from those in `present`, all named by the k+m u32 pointers at shardList (pointers of
// shards in neither mask are not read). Returns KERR_OK, KERR_K, KERR_M, KERR_SHARDS (a bit
// beyond k+m, or a target also present), KERR_TOO_FEW (fewer than k present), KERR_BOUNDS or
// KERR_OVERLAP.
export function rsReconstruct(k: i32, m: i32, shardList: usize, present: u64, targets: u64, bytes: usize, scratch: usize): i32 {
  if (k < 1 || k > RS_MAX_K) return KERR_K;
  if (m < 1 || m > RS_MAX_M) return KERR_M;
  const rc = checkReconstruct(k + m, k, shardList, present, targets, bytes, scratch);
  if (rc != KERR_OK) return rc;
  return reconstruct(CODE_RS, k, k + m, shardList, present, targets, bytes, scratch);
}

@inline function mul2(v: v128): v128 {
  const carry = i8x16.lt_s(v, i8x16.splat(0));
  return v128.xor(i8x16.add(v, v), v128.and(carry, i8x16.splat(0x1d)));
}

function raid6Simd(k: i32, dataList: usize, pDst: usize, qDst: usize, vecBytes: usize): void {
  for (let p: usize = 0; p < vecBytes; p += 16) {
    let pp = v128.load(ptrAt(dataList, k - 1) + p), qq = pp;
    for (let j = k - 2; j >= 0; j--) {
      const v = v128.load(ptrAt(dataList, j) + p);
      pp = v128.xor(pp, v);
      qq = v128.xor(mul2(qq), v);
    }
    v128.store(pDst + p, pp);
    v128.store(qDst + p, qq);
  }
}

function raid6Tail(k: i32, dataList: usize, pDst: usize, qDst: usize, from: usize, bytes: usize): void {
  for (let p = from; p < bytes; p++) {
    let pp: u32 = load<u8>(ptrAt(dataList, k - 1) + p), qq = pp;
    for (let j = k - 2; j >= 0; j--) {
      const v: u32 = load<u8>(ptrAt(dataList, j) + p);
      pp ^= v;
      qq = (((qq << 1) ^ (0x11d & (0 - (qq >> 7)))) & 0xff) ^ v;
    }
    store<u8>(pDst + p, <u8>pp);
    store<u8>(qDst + p, <u8>qq);
  }
}

// RAID-6: P = XOR of the k data shards, Q = sum of 2^j * D_j (g = 2, poly 0x11D), each `bytes`
// long. Returns KERR_OK, KERR_K (k not in [1, 32]), KERR_BOUNDS or KERR_OVERLAP.
export function raid6Gen(k: i32, dataList: usize, pDst: usize, qDst: usize, bytes: usize): i32 {
  if (k < 1 || k > RAID6_MAX_K) return KERR_K;
  if (!shardsInMemory(dataList, allOf(k), k, bytes) || !writable(pDst, bytes) || !writable(qDst, bytes)) return KERR_BOUNDS;
  const listBytes = <u64>k << 2;
  if (overlaps(pDst, bytes, qDst, bytes)) return KERR_OVERLAP;
  if (overlaps(pDst, bytes, dataList, listBytes) || overlaps(qDst, bytes, dataList, listBytes)) return KERR_OVERLAP;
  if (clashesWithShards(pDst, bytes, dataList, allOf(k), k, bytes, -1)) return KERR_OVERLAP;
  if (clashesWithShards(qDst, bytes, dataList, allOf(k), k, bytes, -1)) return KERR_OVERLAP;
  const vecBytes = bytes & ~(<usize>15);
  raid6Simd(k, dataList, pDst, qDst, vecBytes);
  raid6Tail(k, dataList, pDst, qDst, vecBytes, bytes);
  return KERR_OK;
}

// RAID-6: rebuilds up to two shards of a k+2 set (shards 0..k-1 data, k = P, k+1 = Q) from any k
// survivors; masks and pointers as rsReconstruct. Same return codes (KERR_K for k > 32).
export function raid6Reconstruct(k: i32, shardList: usize, present: u64, targets: u64, bytes: usize, scratch: usize): i32 {
  if (k < 1 || k > RAID6_MAX_K) return KERR_K;
  const rc = checkReconstruct(k + 2, k, shardList, present, targets, bytes, scratch);
  if (rc != KERR_OK) return rc;
  return reconstruct(CODE_RAID6, k, k + 2, shardList, present, targets, bytes, scratch);
}

// dst_r = sum_j coef[r * k + j] * src_j for r < rows (1..32), j < k (1..32): any matrix over
// GF(2^8), e.g. another code's generator (tests use Backblaze's Vandermonde-derived one). The
// rows x k coefficient bytes at coef are copied into the scratch first. Returns KERR_OK,
// KERR_COUNT (rows), KERR_K, KERR_BOUNDS or KERR_OVERLAP.
export function gfMatrixApply(rows: i32, k: i32, coef: usize, srcList: usize, dstList: usize, bytes: usize, scratch: usize): i32 {
  if (rows < 1 || rows > MAX_ROWS) return KERR_COUNT;
  if (k < 1 || k > RS_MAX_K) return KERR_K;
  if (!inMemory(coef, <u64>rows * <u64>k) || !writable(scratch, RS_SCRATCH_BYTES)) return KERR_BOUNDS;
  if (!shardsInMemory(srcList, allOf(k), k, bytes) || !shardsInMemory(dstList, allOf(rows), rows, bytes)) return KERR_BOUNDS;
  if (!shardsWritable(dstList, allOf(rows), rows, bytes)) return KERR_BOUNDS;
  if (outputsClash(dstList, allOf(rows), rows, srcList, allOf(k), k, bytes, scratch, RS_SCRATCH_BYTES)) return KERR_OVERLAP;
  if (overlaps(scratch, RS_SCRATCH_BYTES, coef, <u64>rows * <u64>k)) return KERR_OVERLAP;
  for (let r = 0; r < rows; r++) {
    memory.copy(scratch + SCR_COEF + <usize>r * ROW_STRIDE, coef + <usize>r * <usize>k, <usize>k);
  }
  applyRows(rows, k, scratch + SCR_COEF, srcList, dstList, bytes);
  return KERR_OK;
}
