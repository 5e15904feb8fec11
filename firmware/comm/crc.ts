// CRC-32C of frames. Interim byte-table implementation; the SIMD/slicing kernel from
// firmware/kernels replaces it (same signature: crc32c(ptr, len, previous) continues a CRC).
const TABLE: usize = memory.data(1024, 16);

export function crcInit(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78 ^ (c >>> 1) : c >>> 1;
    store<u32>(TABLE + (<usize>n << 2), c);
  }
}

export function crc32c(p: usize, len: usize, previous: u32): u32 {
  let c = ~previous;
  for (let i: usize = 0; i < len; i++) {
    c = load<u32>(TABLE + (<usize>((c ^ load<u8>(p + i)) & 0xFF) << 2)) ^ (c >>> 8);
  }
  return ~c;
}
