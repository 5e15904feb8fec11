// CRC-32C of frames: the kernel (firmware/kernels/crc32c.ts) without its bounds check, which the
// frame paths do not need (they only ever pass ring and slot addresses the map laid out).
// crc32c(ptr, len, previous) continues a CRC: crc32c(b, n, crc32c(a, m, 0)) is the CRC of a then b.
import { crc32cUpdate } from "../kernels/crc32c";

// @ts-ignore: decorator
@inline export function crc32c(p: usize, len: usize, previous: u32): u32 {
  return ~crc32cUpdate(~previous, p, len);
}
