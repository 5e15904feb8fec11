// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and our frames.
//
// Model: slicing-by-8. Eight 256-entry u32 tables (8 KiB of literal static data, tables.ts) let
// the loop fold eight input bytes per step with eight independent table look-ups; WebAssembly has
// no carry-less multiply, so table slicing is the fastest portable software method we found
// (docs/kernels.md has the measurements).
//
// Incremental: crc32c(p, n, crc32c(q, m, 0)) equals the CRC of q[0..m) followed by p[0..n).
// The pre- and post-inversion are applied inside, so `previous` is a finished CRC value.

import { inMemory } from './bounds';
import { KERR_BOUNDS } from './codes';
import { CRC_TABLES } from './tables';

@inline function table(slice: u32, index: u32): u32 {
  return load<u32>(CRC_TABLES + (((slice << 8) | index) << 2));
}

@inline function bytewise(crc: u32, ptr: usize, end: usize): u32 {
  while (ptr < end) {
    crc = (crc >>> 8) ^ table(0, (crc ^ load<u8>(ptr)) & 0xff);
    ptr++;
  }
  return crc;
}

@inline function fold8(crc: u32, word: u64): u32 {
  const lo = crc ^ <u32>word;
  const hi = <u32>(word >>> 32);
  return (
    table(7, lo & 0xff) ^ table(6, (lo >>> 8) & 0xff) ^
    table(5, (lo >>> 16) & 0xff) ^ table(4, lo >>> 24) ^
    table(3, hi & 0xff) ^ table(2, (hi >>> 8) & 0xff) ^
    table(1, (hi >>> 16) & 0xff) ^ table(0, hi >>> 24)
  );
}

// The raw (pre-inverted, not post-inverted) CRC register over [ptr, ptr + bytes). No checks.
export function crc32cUpdate(crc: u32, ptr: usize, bytes: usize): u32 {
  const end = ptr + bytes;
  if (bytes >= 16) {
    const aligned = (ptr + 7) & ~(<usize>7);
    crc = bytewise(crc, ptr, aligned);
    ptr = aligned;
    while (ptr + 16 <= end) {
      crc = fold8(crc, load<u64>(ptr));
      crc = fold8(crc, load<u64>(ptr, 8));
      ptr += 16;
    }
    if (ptr + 8 <= end) {
      crc = fold8(crc, load<u64>(ptr));
      ptr += 8;
    }
  }
  return bytewise(crc, ptr, end);
}

// CRC-32C of [ptr, ptr + bytes), continuing from `previous` (0 to start). Returns the CRC as an
// unsigned value in the low 32 bits of an i64, or KERR_BOUNDS (negative) when the buffer
// reaches past the memory.
export function crc32c(ptr: usize, bytes: usize, previous: u32): i64 {
  if (!inMemory(ptr, bytes)) return KERR_BOUNDS;
  return <i64>(~crc32cUpdate(~previous, ptr, bytes));
}
