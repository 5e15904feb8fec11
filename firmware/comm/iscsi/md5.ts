// MD5 (RFC 1321), for CHAP with algorithm 5 (RFC 1994, RFC 7143 12.1.3): the response is
// MD5(identifier || secret || challenge). CHAP needs MD5 for its protocol, not for any strength of
// its own; test/firmware/md5.test.ts checks it against RFC 1321's test suite.

// Per-round shift amounts and the sines table T[i] = floor(2^32 * |sin(i + 1)|).
const SHIFTS: usize = memory.data<u8>([
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
]);
const SINES: usize = memory.data<u32>([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);

/** Folds one 64-byte block at p into the state (four u32 at st). */
function block(st: usize, p: usize): void {
  const a0 = load<u32>(st);
  const b0 = load<u32>(st + 4);
  const c0 = load<u32>(st + 8);
  const d0 = load<u32>(st + 12);
  let a = a0;
  let b = b0;
  let c = c0;
  let d = d0;
  for (let i: u32 = 0; i < 64; i++) {
    let f: u32;
    let g: u32;
    if (i < 16) { f = (b & c) | (~b & d); g = i; }
    else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
    else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
    else { f = c ^ (b | ~d); g = (7 * i) & 15; }
    const sum = a + f + load<u32>(SINES + (<usize>i << 2)) + load<u32>(p + (<usize>g << 2));
    a = d;
    d = c;
    c = b;
    b = b + rotl<u32>(sum, <u32>load<u8>(SHIFTS + i));
  }
  store<u32>(st, a0 + a);
  store<u32>(st + 4, b0 + b);
  store<u32>(st + 8, c0 + c);
  store<u32>(st + 12, d0 + d);
}

/**
 * The MD5 digest of the n bytes at src, written as 16 bytes at dst. `work` is 80 bytes of scratch
 * (state and the last, padded block). The input may be anywhere; it is read in place.
 */
export function md5(dst: usize, src: usize, n: u32, work: usize): void {
  const st = work;
  const last = work + 16;
  store<u32>(st, 0x67452301);
  store<u32>(st + 4, 0xefcdab89);
  store<u32>(st + 8, 0x98badcfe);
  store<u32>(st + 12, 0x10325476);
  let at: u32 = 0;
  for (; at + 64 <= n; at += 64) block(st, src + at);
  const rest = n - at;
  memory.fill(last, 0, 64);
  memory.copy(last, src + at, rest);
  store<u8>(last + rest, 0x80);
  if (rest >= 56) { block(st, last); memory.fill(last, 0, 64); }
  store<u64>(last + 56, <u64>n << 3); // the message length in bits, little-endian
  block(st, last);
  memory.copy(dst, st, 16);
}
