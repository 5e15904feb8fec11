// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and our frames.
//
// Model: slicing-by-8 over three interleaved streams. Eight 256-entry u32 tables (8 KiB of
// literal static data, tables.ts) fold eight input bytes per step with eight independent look-ups;
// WebAssembly has no carry-less multiply or CRC instruction, so table slicing is the fastest
// portable method. Buffers of 3 x CRC_STREAM_BYTES (128) and more are cut into blocks of three
// streams folded side by side, whose registers are then combined by multiplying by x^(8n) mod P
// with two 4 KiB byte tables: three independent dependency chains instead of one. The high four
// bytes of each word are looked up with byte loads straight from memory (fewer shifts and masks).
// Measured (docs/kernels.md): plain slicing-by-8 1.44 GB/s; three streams 1.8; with byte loads 2.5.
//
// Incremental: crc32c(p, n, crc32c(q, m, 0)) equals the CRC of q[0..m) followed by p[0..n).
// The pre- and post-inversion are applied inside, so `previous` is a finished CRC value.

import { inMemory } from './bounds';
import { KERR_BOUNDS } from './codes';
import { CRC_SHIFT1, CRC_SHIFT2, CRC_STREAM_BYTES, CRC_TABLES } from './tables';

// Entry `index` of slice `slice`.
@inline function table(slice: u32, index: u32): u32 {
  return load<u32>(CRC_TABLES + (<usize>slice << 10) + (<usize>index << 2));
}

@inline function bytewise(crc: u32, ptr: usize, end: usize): u32 {
  while (ptr < end) {
    crc = (crc >>> 8) ^ table(0, (crc ^ load<u8>(ptr)) & 0xff);
    ptr++;
  }
  return crc;
}

// Folds the eight bytes at p into the register: the low four bytes meet the register, the high
// four are looked up straight from memory (byte loads save the shifts and masks).
@inline function fold8(crc: u32, p: usize): u32 {
  const lo = crc ^ load<u32>(p);
  return (
    table(7, lo & 0xff) ^ table(6, (lo >>> 8) & 0xff) ^
    table(5, (lo >>> 16) & 0xff) ^ table(4, lo >>> 24) ^
    table(3, load<u8>(p, 4)) ^ table(2, load<u8>(p, 5)) ^
    table(1, load<u8>(p, 6)) ^ table(0, load<u8>(p, 7))
  );
}

// The register r shifted past n zero bytes (r * x^(8n) mod P) by the byte tables of that n.
@inline function shift(shiftTables: usize, r: u32): u32 {
  return (
    load<u32>(shiftTables + ((r & 0xff) << 2)) ^
    load<u32>(shiftTables + (((r >>> 8) & 0xff) << 2), 1024) ^
    load<u32>(shiftTables + (((r >>> 16) & 0xff) << 2), 2048) ^
    load<u32>(shiftTables + ((r >>> 24) << 2), 3072)
  );
}

// One block of three streams of CRC_STREAM_BYTES, folded side by side (independent dependency
// chains), then combined: crc(A|B|C) = shift2(crc(A)) ^ shift1(crc0(B)) ^ crc0(C), the CRC
// register being linear in its input.
@inline function threeStreams(crc: u32, ptr: usize): u32 {
  const n = CRC_STREAM_BYTES;
  let a = crc, b: u32 = 0, c: u32 = 0;
  for (let i: usize = 0; i < n; i += 8) {
    a = fold8(a, ptr + i);
    b = fold8(b, ptr + n + i);
    c = fold8(c, ptr + 2 * n + i);
  }
  return shift(CRC_SHIFT2, a) ^ shift(CRC_SHIFT1, b) ^ c;
}

// The raw (pre-inverted, not post-inverted) CRC register over [ptr, ptr + bytes). No checks.
export function crc32cUpdate(crc: u32, ptr: usize, bytes: usize): u32 {
  const end = ptr + bytes;
  if (bytes >= 16) {
    const aligned = (ptr + 7) & ~(<usize>7);
    crc = bytewise(crc, ptr, aligned);
    ptr = aligned;
    while (ptr + 3 * CRC_STREAM_BYTES <= end) {
      crc = threeStreams(crc, ptr);
      ptr += 3 * CRC_STREAM_BYTES;
    }
    while (ptr + 16 <= end) {
      crc = fold8(crc, ptr);
      crc = fold8(crc, ptr + 8);
      ptr += 16;
    }
    if (ptr + 8 <= end) {
      crc = fold8(crc, ptr);
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
