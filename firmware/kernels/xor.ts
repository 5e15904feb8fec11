// XOR parity (RAID-5): dst = src_0 ^ src_1 ^ ... ^ src_{count-1}, 16-byte SIMD lanes.
//
// Model: the sources are scattered buffers in common memory (cache slots), named by a list of
// u32 pointers so a caller passes them without copying. The loop walks the buffers once, 64
// bytes per step with four accumulators, so the pointer list is read once per 64 bytes and dst is
// written once (no read-modify-write). dst may be one of the sources exactly (accumulate in
// place: dst ^= others), but must not otherwise overlap a source or the pointer list.

import { inMemory, overlaps, ptrAt, writable } from './bounds';
import { KERR_BOUNDS, KERR_COUNT, KERR_OK, KERR_OVERLAP, XOR_MAX_SOURCES } from './codes';

function xorSimd(dst: usize, srcList: usize, count: i32, vecBytes: usize): void {
  let p: usize = 0;
  for (; p + 64 <= vecBytes; p += 64) {
    const s0 = ptrAt(srcList, 0) + p;
    let a0 = v128.load(s0), a1 = v128.load(s0, 16), a2 = v128.load(s0, 32), a3 = v128.load(s0, 48);
    for (let j = 1; j < count; j++) {
      const s = ptrAt(srcList, j) + p;
      a0 = v128.xor(a0, v128.load(s));
      a1 = v128.xor(a1, v128.load(s, 16));
      a2 = v128.xor(a2, v128.load(s, 32));
      a3 = v128.xor(a3, v128.load(s, 48));
    }
    v128.store(dst + p, a0);
    v128.store(dst + p, a1, 16);
    v128.store(dst + p, a2, 32);
    v128.store(dst + p, a3, 48);
  }
  for (; p < vecBytes; p += 16) {
    let a = v128.load(ptrAt(srcList, 0) + p);
    for (let j = 1; j < count; j++) a = v128.xor(a, v128.load(ptrAt(srcList, j) + p));
    v128.store(dst + p, a);
  }
}

function xorTail(dst: usize, srcList: usize, count: i32, from: usize, bytes: usize): void {
  for (let p = from; p < bytes; p++) {
    let a = load<u8>(ptrAt(srcList, 0) + p);
    for (let j = 1; j < count; j++) a ^= load<u8>(ptrAt(srcList, j) + p);
    store<u8>(dst + p, a);
  }
}

// Checks the arguments of xorBlocks; KERR_OK when they are good.
function xorCheck(dst: usize, srcList: usize, count: i32, bytes: usize): i32 {
  if (count < 1 || count > XOR_MAX_SOURCES) return KERR_COUNT;
  const listBytes = <u64>count << 2;
  if (!inMemory(srcList, listBytes) || !writable(dst, bytes)) return KERR_BOUNDS;
  if (overlaps(dst, bytes, srcList, listBytes)) return KERR_OVERLAP;
  for (let j = 0; j < count; j++) {
    const src = ptrAt(srcList, j);
    if (!inMemory(src, bytes)) return KERR_BOUNDS;
    if (src != dst && overlaps(dst, bytes, src, bytes)) return KERR_OVERLAP;
  }
  return KERR_OK;
}

// dst[0..bytes) = XOR of the count buffers whose u32 addresses are at srcList. Returns KERR_OK,
// KERR_COUNT (count not in [1, 255]), KERR_BOUNDS or KERR_OVERLAP.
export function xorBlocks(dst: usize, srcList: usize, count: i32, bytes: usize): i32 {
  const rc = xorCheck(dst, srcList, count, bytes);
  if (rc != KERR_OK) return rc;
  const vecBytes = bytes & ~(<usize>15);
  xorSimd(dst, srcList, count, vecBytes);
  xorTail(dst, srcList, count, vecBytes, bytes);
  return KERR_OK;
}
