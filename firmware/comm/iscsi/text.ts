// iSCSI text keys (RFC 7143 6.1): "key=value" pairs, each ended by a NUL, in the data segment of
// Login and Text PDUs. Keys are compared against static strings (UTF-16 in the image: one ASCII
// character per u16), so nothing is allocated. Numbers are decimal, or 0x-hex; binary values are
// 0x-hex or 0b-base64.

/** A key name is 1-63 characters of letters, digits, '.', '-', '+', '@' and '_'. */
export const KEY_MAX: u32 = 63;
/** The longest value accepted: a CHAP_R or CHAP_C of 1024 bytes in hex, and room to spare. */
export const VALUE_MAX: u32 = 4096;

// Results of textNext.
export const TEXT_END: i32 = 0;
export const TEXT_PAIR: i32 = 1;
export const TEXT_MALFORMED: i32 = -1;

/**
 * The next pair of the text [at, end): key at keyAt/keyLen, value at valueAt/valueLen (through
 * out: 4 u32s), and where the next pair starts (out + 16). TEXT_MALFORMED for a pair without '=',
 * a bad key name, a value too long, or text not ended by a NUL.
 */
export function textNext(at: usize, end: usize, out: usize): i32 {
  while (at < end && load<u8>(at) == 0) at++; // tolerated: stray NULs between pairs (padding some initiators send)
  if (at >= end) return TEXT_END;
  let p = at;
  while (p < end && load<u8>(p) != 0x3D) {
    if (!keyChar(load<u8>(p))) return TEXT_MALFORMED;
    p++;
  }
  const keyLen = <u32>(p - at);
  if (p >= end || keyLen == 0 || keyLen > KEY_MAX) return TEXT_MALFORMED;
  const valueAt = p + 1;
  let q = valueAt;
  while (q < end && load<u8>(q) != 0) q++;
  if (q >= end) return TEXT_MALFORMED;
  const valueLen = <u32>(q - valueAt);
  if (valueLen > VALUE_MAX) return TEXT_MALFORMED;
  store<u32>(out, <u32>at);
  store<u32>(out + 4, keyLen);
  store<u32>(out + 8, <u32>valueAt);
  store<u32>(out + 12, valueLen);
  store<u32>(out + 16, <u32>(q + 1));
  return TEXT_PAIR;
}

function keyChar(c: u8): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    || c == 0x2E || c == 0x2D || c == 0x2B || c == 0x40 || c == 0x5F;
}

/** Do the n bytes at p spell the static string lit exactly? */
export function bytesEq(p: usize, n: u32, lit: string): bool {
  const s = changetype<usize>(lit);
  const len = <u32>(load<u32>(s - 4) >> 1);
  if (len != n) return false;
  for (let i: u32 = 0; i < n; i++) if (<u32>load<u8>(p + i) != <u32>load<u16>(s + (<usize>i << 1))) return false;
  return true;
}

/** Are the n bytes at a and at b the same? */
export function sameBytes(a: usize, b: usize, n: u32): bool {
  for (let i: u32 = 0; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

/** Writes the static ASCII string lit at dst; returns its length. */
export function putLit(dst: usize, lit: string): u32 {
  const s = changetype<usize>(lit);
  const len = <u32>(load<u32>(s - 4) >> 1);
  for (let i: u32 = 0; i < len; i++) store<u8>(dst + i, <u8>load<u16>(s + (<usize>i << 1)));
  return len;
}

/** Writes v in decimal at dst; returns the digits written. */
export function putDecimal(dst: usize, v: u32): u32 {
  let n: u32 = 1;
  for (let x = v; x >= 10; x /= 10) n++;
  let x = v;
  for (let i = n; i > 0; i--) { store<u8>(dst + i - 1, <u8>(0x30 + x % 10)); x /= 10; }
  return n;
}

/** A decimal (or 0x-hex) number of at most 32 bits, or -1 when the value is not one. */
export function parseNumber(p: usize, n: u32): i64 {
  if (n == 0) return -1;
  let v: u64 = 0;
  if (n > 2 && load<u8>(p) == 0x30 && (load<u8>(p + 1) | 0x20) == 0x78) {
    if (n > 10) return -1;
    for (let i: u32 = 2; i < n; i++) {
      const d = hexDigit(load<u8>(p + i));
      if (d < 0) return -1;
      v = (v << 4) | <u64>d;
    }
    return <i64>v;
  }
  if (n > 10) return -1;
  for (let i: u32 = 0; i < n; i++) {
    const c = <u32>load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + <u64>(c - 0x30);
  }
  return v > 0xFFFFFFFF ? -1 : <i64>v;
}

function hexDigit(c: u8): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return <i32>l - 0x61 + 10;
  return -1;
}

function base64Digit(c: u8): i32 {
  if (c >= 0x41 && c <= 0x5A) return <i32>c - 0x41;
  if (c >= 0x61 && c <= 0x7A) return <i32>c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return <i32>c - 0x30 + 52;
  if (c == 0x2B) return 62;
  if (c == 0x2F) return 63;
  return -1;
}

/**
 * A binary value (RFC 7143 6.1: "0x" hex or "0b" base64) decoded into dst (at most max bytes).
 * Returns the bytes, or -1 when the value is not one or does not fit.
 */
export function parseBinary(p: usize, n: u32, dst: usize, max: u32): i32 {
  if (n < 3 || load<u8>(p) != 0x30) return -1;
  const form = load<u8>(p + 1) | 0x20;
  if (form == 0x78) {
    const digits = n - 2;
    const bytes = (digits + 1) >> 1;
    if (bytes > max) return -1;
    let out: u32 = 0;
    let i: u32 = 2;
    if ((digits & 1) != 0) { // an odd count: the first digit stands alone
      const d = hexDigit(load<u8>(p + 2));
      if (d < 0) return -1;
      store<u8>(dst, <u8>d);
      out = 1;
      i = 3;
    }
    for (; i < n; i += 2) {
      const hi = hexDigit(load<u8>(p + i));
      const lo = hexDigit(load<u8>(p + i + 1));
      if (hi < 0 || lo < 0) return -1;
      store<u8>(dst + out, <u8>((hi << 4) | lo));
      out++;
    }
    return <i32>out;
  }
  if (form == 0x62) {
    let acc: u32 = 0;
    let bits: u32 = 0;
    let out: u32 = 0;
    let pad: u32 = 0;
    for (let i: u32 = 2; i < n; i++) {
      const c = load<u8>(p + i);
      if (c == 0x3D) { pad++; continue; }
      if (pad > 0) return -1; // '=' only at the end
      const d = base64Digit(c);
      if (d < 0) return -1;
      acc = (acc << 6) | <u32>d;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        if (out >= max) return -1;
        store<u8>(dst + out, <u8>(acc >> bits));
        out++;
      }
    }
    return pad > 2 ? -1 : <i32>out;
  }
  return -1;
}

/** Writes n bytes at src as "0x" and upper-case hex at dst; returns the characters written. */
export function putHexBytes(dst: usize, src: usize, n: u32): u32 {
  store<u8>(dst, 0x30);
  store<u8>(dst + 1, 0x78);
  for (let i: u32 = 0; i < n; i++) {
    const b = <u32>load<u8>(src + i);
    const hi = b >> 4;
    const lo = b & 15;
    store<u8>(dst + 2 + i * 2, <u8>(hi < 10 ? 0x30 + hi : 0x37 + hi));
    store<u8>(dst + 3 + i * 2, <u8>(lo < 10 ? 0x30 + lo : 0x37 + lo));
  }
  return 2 + n * 2;
}

// ---- Building key text -----------------------------------------------------------------------------
// A builder is the address of a u32 length followed by a u32 capacity, then the text. Writes that
// would not fit are dropped and the builder marked full (length = capacity + 1), so a caller checks
// once at the end.

export function textInit(b: usize, capacity: u32): void { store<u32>(b, 0); store<u32>(b + 4, capacity); }
// @ts-ignore: decorator
@inline export function textLength(b: usize): u32 { return load<u32>(b); }
// @ts-ignore: decorator
@inline export function textData(b: usize): usize { return b + 8; }
export function textFull(b: usize): bool { return load<u32>(b) > load<u32>(b + 4); }

function room(b: usize, n: u32): usize {
  const len = load<u32>(b);
  if (len > load<u32>(b + 4) || len + n > load<u32>(b + 4)) { store<u32>(b, load<u32>(b + 4) + 1); return 0; }
  return b + 8 + len;
}

/** Appends "key=" (the caller appends the value and textEnd). */
export function textKey(b: usize, key: string): void {
  const s = changetype<usize>(key);
  const n = <u32>(load<u32>(s - 4) >> 1) + 1;
  const p = room(b, n);
  if (p == 0) return;
  putLit(p, key);
  store<u8>(p + n - 1, 0x3D);
  store<u32>(b, load<u32>(b) + n);
}

/** Appends the n bytes at src. */
export function textBytes(b: usize, src: usize, n: u32): void {
  const p = room(b, n);
  if (p == 0) return;
  memory.copy(p, src, n);
  store<u32>(b, load<u32>(b) + n);
}

/** Appends a static string. */
export function textLit(b: usize, lit: string): void {
  const s = changetype<usize>(lit);
  const n = <u32>(load<u32>(s - 4) >> 1);
  const p = room(b, n);
  if (p == 0) return;
  putLit(p, lit);
  store<u32>(b, load<u32>(b) + n);
}

export function textDecimal(b: usize, v: u32): void {
  const p = room(b, 10);
  if (p == 0) return;
  store<u32>(b, load<u32>(b) + putDecimal(p, v));
}

/** Ends a pair with its NUL. */
export function textEnd(b: usize): void {
  const p = room(b, 1);
  if (p == 0) return;
  store<u8>(p, 0);
  store<u32>(b, load<u32>(b) + 1);
}

/** "key=value\0" with a static value. */
export function textPair(b: usize, key: string, value: string): void { textKey(b, key); textLit(b, value); textEnd(b); }

/** "key=<decimal>\0". */
export function textPairNumber(b: usize, key: string, v: u32): void { textKey(b, key); textDecimal(b, v); textEnd(b); }

/** "key=" and the offered key's own bytes, for answers that echo what they do not understand. */
export function textPairBytes(b: usize, key: usize, keyLen: u32, value: string): void {
  textBytes(b, key, keyLen);
  textLit(b, "=");
  textLit(b, value);
  textEnd(b);
}
