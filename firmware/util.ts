// Small memory helpers: big-endian fields (SCSI and frame headers are network order, wasm is
// little-endian), zeroing and copying. All inline; nothing allocates.

// @ts-ignore: decorator
@inline export function getBe16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
// @ts-ignore: decorator
@inline export function getBe32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
// @ts-ignore: decorator
@inline export function getBe64(p: usize): u64 { return bswap<u64>(load<u64>(p)); }
// @ts-ignore: decorator
@inline export function putBe16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
// @ts-ignore: decorator
@inline export function putBe32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }
// @ts-ignore: decorator
@inline export function putBe64(p: usize, v: u64): void { store<u64>(p, bswap<u64>(v)); }

// @ts-ignore: decorator
@inline export function zero(p: usize, n: usize): void { memory.fill(p, 0, n); }
// @ts-ignore: decorator
@inline export function copy(dst: usize, src: usize, n: usize): void { memory.copy(dst, src, n); }

// @ts-ignore: decorator
@inline export function alignUp(v: usize, a: usize): usize { return (v + a - 1) & ~(a - 1); }

/** Copies an ASCII field of `n` bytes, padding with `pad` (space for SCSI strings, 0 for names). */
export function copyPadded(dst: usize, src: usize, n: usize, pad: u8): void {
  let i: usize = 0;
  for (; i < n; i++) {
    const c = load<u8>(src + i);
    if (c == 0) break;
    store<u8>(dst + i, c);
  }
  for (; i < n; i++) store<u8>(dst + i, pad);
}

/** Compares two NUL-terminated byte strings of at most n bytes. */
export function namesEqual(a: usize, b: usize, n: usize): bool {
  for (let i: usize = 0; i < n; i++) {
    const x = load<u8>(a + i);
    if (x != load<u8>(b + i)) return false;
    if (x == 0) return true;
  }
  return true;
}

/** Writes v as `digits` upper-case hex digits. */
export function putHex(dst: usize, v: u32, digits: u32): void {
  for (let i: u32 = 0; i < digits; i++) {
    const nib = (v >> ((digits - 1 - i) * 4)) & 0xF;
    store<u8>(dst + i, <u8>(nib < 10 ? 0x30 + nib : 0x37 + nib));
  }
}
