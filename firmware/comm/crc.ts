// CRC-32C of frames: the kernel (firmware/kernels/crc32c.ts) without its bounds check, which the
// frame paths do not need (they only ever pass ring and slot addresses the map laid out).
// crc32c(ptr, len, previous) continues a CRC: crc32c(b, n, crc32c(a, m, 0)) is the CRC of a then b.
import { crc32cUpdate } from "../kernels/crc32c";
import { byteRingSpan } from "../ring";

// @ts-ignore: decorator
@inline export function crc32c(p: usize, len: usize, previous: u32): u32 {
  return ~crc32cUpdate(~previous, p, len);
}

/** CRC-32C of n bytes at `offset` past the head of byte ring r, read in place across the wrap. */
export function ringCrc32c(r: usize, offset: u32, n: u32, previous: u32): u32 {
  let crc = previous;
  while (n > 0) {
    const span = byteRingSpan(r, offset, n);
    const len = <u32>(span >> 32);
    crc = crc32c(<usize>(span & 0xFFFFFFFF), len, crc);
    offset += len;
    n -= len;
  }
  return crc;
}
