// Differential bitmaps: one bit per region (pair difference, update-position record, change
// tracking for resync and snapshots), N regions with N <= 2^32.
//
// Format: little-endian u64 words; bit i is bit (i & 63) of word (i >> 6). The bitmap occupies
// ceil(nbits / 64) words at an 8-byte aligned address (wasm atomics need natural alignment).
// Bits past nbits in the last word are padding: no kernel reads them as data or changes them.
//
// Concurrency: a channel IOP marks with bitmapAtomicSet/SetRange (atomic.or) while a disk IOP
// scans; the scanner claims work with bitmapAtomicClear/ClearRange (atomic.and, returning what was
// set) before copying, so a mark made during the copy is kept for the next pass. The plain
// (non-atomic) functions are for bitmaps one IOP owns.
//
// Positions and counts are u64 (nbits may be 2^32). Functions returning a position or a count
// return i64: the value, or a negative KERR_* code. "Find next" returns nbits when there is none.
// Scans skip empty (or full) words 64 bytes at a time with SIMD; popcount is i64.popcnt.

import { overlaps, writable } from './bounds';
import { BITMAP_MAX_BITS, KERR_ALIGN, KERR_BOUNDS, KERR_COUNT, KERR_OK, KERR_OVERLAP, KERR_RANGE, RUN_BYTES } from './codes';

const ALL: u64 = ~(<u64>0);

@inline function wordBytes(nbits: u64): u64 {
  return ((nbits + 63) >> 6) << 3;
}

@inline function wordAt(bm: usize, w: u64): usize {
  return bm + (<usize>w << 3);
}

function checkBitmap(bm: usize, nbits: u64): i32 {
  if (nbits > <u64>BITMAP_MAX_BITS) return KERR_RANGE;
  if ((bm & 7) != 0) return KERR_ALIGN;
  if (!writable(bm, wordBytes(nbits))) return KERR_BOUNDS; // bitmaps never live in static data
  return KERR_OK;
}

function checkRange(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkBitmap(bm, nbits);
  if (rc != KERR_OK) return rc;
  if (count > nbits || start > nbits - count) return KERR_RANGE;
  return KERR_OK;
}

// Mask of bits [lo, 64) and of bits [0, hi] within a word.
@inline function maskFrom(bit: u64): u64 {
  return ALL << (bit & 63);
}

@inline function maskThrough(bit: u64): u64 {
  return ALL >> (63 - (bit & 63));
}

// ---- Range set and clear ----------------------------------------------------------------------

@inline function updateWord(addr: usize, mask: u64, set: bool, atomic_: bool): void {
  if (atomic_) {
    if (set) atomic.or<u64>(addr, mask);
    else atomic.and<u64>(addr, ~mask);
  } else {
    const w = load<u64>(addr);
    store<u64>(addr, set ? w | mask : w & ~mask);
  }
}

function updateRange(bm: usize, start: u64, count: u64, set: bool, atomic_: bool): void {
  if (count == 0) return;
  const last = start + count - 1;
  const w0 = start >> 6, w1 = last >> 6;
  if (w0 == w1) {
    updateWord(wordAt(bm, w0), maskFrom(start) & maskThrough(last), set, atomic_);
    return;
  }
  updateWord(wordAt(bm, w0), maskFrom(start), set, atomic_);
  if (atomic_) {
    for (let w = w0 + 1; w < w1; w++) updateWord(wordAt(bm, w), ALL, set, true);
  } else if (w1 > w0 + 1) {
    memory.fill(wordAt(bm, w0 + 1), set ? 0xff : 0, <usize>(w1 - w0 - 1) << 3);
  }
  updateWord(wordAt(bm, w1), maskThrough(last), set, atomic_);
}

// Sets bits [start, start + count). KERR_OK, KERR_RANGE, KERR_ALIGN or KERR_BOUNDS.
export function bitmapSetRange(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc == KERR_OK) updateRange(bm, start, count, true, false);
  return rc;
}

export function bitmapClearRange(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc == KERR_OK) updateRange(bm, start, count, false, false);
  return rc;
}

// Atomic (atomic.or / atomic.and per word): safe against a concurrent scanner or marker.
export function bitmapAtomicSetRange(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc == KERR_OK) updateRange(bm, start, count, true, true);
  return rc;
}

export function bitmapAtomicClearRange(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc == KERR_OK) updateRange(bm, start, count, false, true);
  return rc;
}

// Atomically sets bit `bit`; returns its previous value (0 or 1) or a KERR_* code.
export function bitmapAtomicSet(bm: usize, nbits: u64, bit: u64): i32 {
  const rc = checkRange(bm, nbits, bit, 1);
  if (rc != KERR_OK) return rc;
  const mask = <u64>1 << (bit & 63);
  return <i32>((atomic.or<u64>(wordAt(bm, bit >> 6), mask) & mask) != 0);
}

// Atomically clears bit `bit`; returns its previous value (0 or 1) or a KERR_* code.
export function bitmapAtomicClear(bm: usize, nbits: u64, bit: u64): i32 {
  const rc = checkRange(bm, nbits, bit, 1);
  if (rc != KERR_OK) return rc;
  const mask = <u64>1 << (bit & 63);
  return <i32>((atomic.and<u64>(wordAt(bm, bit >> 6), ~mask) & mask) != 0);
}

// The value (0 or 1) of bit `bit`, or a KERR_* code. An atomic load, so a scanner sees marks.
export function bitmapTest(bm: usize, nbits: u64, bit: u64): i32 {
  const rc = checkRange(bm, nbits, bit, 1);
  if (rc != KERR_OK) return rc;
  return <i32>((atomic.load<u64>(wordAt(bm, bit >> 6)) >> (bit & 63)) & 1);
}

// ---- Scans ------------------------------------------------------------------------------------

// First word index in [w, wEnd) whose value ^ flip is not zero, or wEnd. flip is 0 (skip empty
// words) or all ones (skip full words); 64 bytes per step, then word by word.
@inline function skipWords(bm: usize, w: u64, wEnd: u64, flip: u64): u64 {
  while (w + 8 <= wEnd) {
    const a = wordAt(bm, w);
    if (flip == 0) {
      const any = v128.or(v128.or(v128.load(a), v128.load(a, 16)), v128.or(v128.load(a, 32), v128.load(a, 48)));
      if (v128.any_true(any)) break;
    } else {
      const all = v128.and(v128.and(v128.load(a), v128.load(a, 16)), v128.and(v128.load(a, 32), v128.load(a, 48)));
      if (v128.any_true(v128.not(all))) break;
    }
    w += 8;
  }
  while (w < wEnd && (load<u64>(wordAt(bm, w)) ^ flip) == 0) w++;
  return w;
}

// First bit in [from, limit) whose value ^ (flip & 1) is 1, or limit. flip: 0 finds set bits,
// all ones finds clear bits.
function findNext(bm: usize, from: u64, limit: u64, flip: u64): u64 {
  if (from >= limit) return limit;
  const wEnd = ((limit - 1) >> 6) + 1;
  let w = from >> 6;
  let word = (load<u64>(wordAt(bm, w)) ^ flip) & maskFrom(from);
  while (word == 0) {
    w = skipWords(bm, w + 1, wEnd, flip);
    if (w >= wEnd) return limit;
    word = load<u64>(wordAt(bm, w)) ^ flip;
  }
  const bit = (w << 6) + ctz<u64>(word);
  return bit < limit ? bit : limit;
}

// The first set bit at or after `from`, nbits when there is none, or a KERR_* code.
export function bitmapFindNextSet(bm: usize, nbits: u64, from: u64): i64 {
  const rc = checkRange(bm, nbits, from, 0);
  if (rc != KERR_OK) return rc;
  return <i64>findNext(bm, from, nbits, 0);
}

// The first clear bit at or after `from`, nbits when there is none, or a KERR_* code.
export function bitmapFindNextClear(bm: usize, nbits: u64, from: u64): i64 {
  const rc = checkRange(bm, nbits, from, 0);
  if (rc != KERR_OK) return rc;
  return <i64>findNext(bm, from, nbits, ALL);
}

// 1 when any bit of [start, start + count) is set, else 0 (also for count 0); or a KERR_* code.
export function bitmapAnySet(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc != KERR_OK) return rc;
  return <i32>(findNext(bm, start, start + count, 0) < start + count);
}

// 1 when every bit of [start, start + count) is set (also for count 0), else 0; or a KERR_* code.
export function bitmapAllSet(bm: usize, nbits: u64, start: u64, count: u64): i32 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc != KERR_OK) return rc;
  return <i32>(findNext(bm, start, start + count, ALL) >= start + count);
}

// Population count of words [w, wEnd), four independent sums per step.
function countWords(bm: usize, w: u64, wEnd: u64): u64 {
  let c0: u64 = 0, c1: u64 = 0, c2: u64 = 0, c3: u64 = 0;
  while (w + 4 <= wEnd) {
    const a = wordAt(bm, w);
    c0 += popcnt<u64>(load<u64>(a));
    c1 += popcnt<u64>(load<u64>(a, 8));
    c2 += popcnt<u64>(load<u64>(a, 16));
    c3 += popcnt<u64>(load<u64>(a, 24));
    w += 4;
  }
  while (w < wEnd) c0 += popcnt<u64>(load<u64>(wordAt(bm, w++)));
  return c0 + c1 + c2 + c3;
}

// Number of set bits in [start, start + count), or a KERR_* code.
export function bitmapCount(bm: usize, nbits: u64, start: u64, count: u64): i64 {
  const rc = checkRange(bm, nbits, start, count);
  if (rc != KERR_OK) return rc;
  if (count == 0) return 0;
  const last = start + count - 1;
  const w0 = start >> 6, w1 = last >> 6;
  if (w0 == w1) return <i64>popcnt<u64>(load<u64>(wordAt(bm, w0)) & maskFrom(start) & maskThrough(last));
  let n = popcnt<u64>(load<u64>(wordAt(bm, w0)) & maskFrom(start));
  n += countWords(bm, w0 + 1, w1);
  n += popcnt<u64>(load<u64>(wordAt(bm, w1)) & maskThrough(last));
  return <i64>n;
}

// ---- Runs -------------------------------------------------------------------------------------

@inline function writeRun(out: usize, start: u64, length: u64): void {
  store<u64>(out, start);
  store<u64>(out, length, 8);
}

function checkRuns(bm: usize, nbits: u64, from: u64, out: usize, maxRuns: i32): i32 {
  const rc = checkRange(bm, nbits, from, 0);
  if (rc != KERR_OK) return rc;
  if (maxRuns < 0) return KERR_COUNT;
  const outBytes = <u64>maxRuns * RUN_BYTES;
  if (!writable(out, outBytes)) return KERR_BOUNDS;
  if (overlaps(out, outBytes, bm, wordBytes(nbits))) return KERR_OVERLAP;
  return KERR_OK;
}

// The first run of set bits at or after `from` (a run containing `from` starts at `from`):
// writes u64 start and u64 length (bits) at out and returns 1, or returns 0 when there is none,
// or a KERR_* code. The next run is found from start + length.
export function bitmapNextRun(bm: usize, nbits: u64, from: u64, out: usize): i32 {
  const rc = checkRuns(bm, nbits, from, out, 1);
  if (rc != KERR_OK) return rc;
  return collectRuns(bm, nbits, from, out, 1);
}

// First word index >= w whose value ^ flip is not zero, or wEnd: one word, then 64-byte blocks.
@inline function nextWord(bm: usize, w: u64, wEnd: u64, flip: u64): u64 {
  w++;
  if (w < wEnd && (load<u64>(wordAt(bm, w)) ^ flip) == 0) w = skipWords(bm, w + 1, wEnd, flip);
  return w;
}

// The scan behind bitmapCollectRuns: one pass over the words, carrying the word where a run ends
// into the search for the next run's start (no re-reading, no per-run call).
function collectRuns(bm: usize, nbits: u64, from: u64, out: usize, maxRuns: i32): i32 {
  if (from >= nbits || maxRuns == 0) return 0;
  const wEnd = ((nbits - 1) >> 6) + 1;
  let w = from >> 6;
  let word = load<u64>(wordAt(bm, w)) & maskFrom(from);
  let n = 0;
  while (n < maxRuns) {
    if (word == 0) {
      w = nextWord(bm, w, wEnd, 0);
      if (w >= wEnd) break;
      word = load<u64>(wordAt(bm, w));
    }
    const start = (w << 6) + ctz<u64>(word);
    if (start >= nbits) break;
    let clear = ~word & maskFrom(start);
    if (clear == 0) {
      w = nextWord(bm, w, wEnd, ALL);
      clear = w < wEnd ? ~load<u64>(wordAt(bm, w)) : 0;
    }
    const found = (w << 6) + ctz<u64>(clear); // ctz(0) = 64 past the last word: clamp below
    const end = w >= wEnd || found > nbits ? nbits : found;
    writeRun(out + <usize>n * RUN_BYTES, start, end - start);
    n++;
    if (end >= nbits) break;
    word = load<u64>(wordAt(bm, w)) & maskFrom(end);
  }
  return n;
}

// Up to maxRuns successive runs from `from`, written as (u64 start, u64 length) pairs at out
// (RUN_BYTES each). Returns how many were written (0 when no set bit is left), or a KERR_* code.
// Continue from the end of the last run written.
export function bitmapCollectRuns(bm: usize, nbits: u64, from: u64, out: usize, maxRuns: i32): i32 {
  const rc = checkRuns(bm, nbits, from, out, maxRuns);
  if (rc != KERR_OK) return rc;
  return collectRuns(bm, nbits, from, out, maxRuns);
}

// ---- Two-bitmap operations ------------------------------------------------------------------------

const OP_OR = 0;
const OP_AND = 1;
const OP_ANDNOT = 2;

@inline function opWord(op: i32, a: u64, b: u64): u64 {
  return op == OP_OR ? a | b : op == OP_AND ? a & b : a & ~b;
}

@inline function opVec(op: i32, a: v128, b: v128): v128 {
  return op == OP_OR ? v128.or(a, b) : op == OP_AND ? v128.and(a, b) : v128.andnot(a, b);
}

function checkBinary(dst: usize, a: usize, b: usize, nbits: u64): i32 {
  let rc = checkBitmap(dst, nbits);
  if (rc == KERR_OK) rc = checkBitmap(a, nbits);
  if (rc == KERR_OK) rc = checkBitmap(b, nbits);
  if (rc != KERR_OK) return rc;
  const bytes = wordBytes(nbits);
  if (dst != a && overlaps(dst, bytes, a, bytes)) return KERR_OVERLAP;
  if (dst != b && overlaps(dst, bytes, b, bytes)) return KERR_OVERLAP;
  return KERR_OK;
}

@inline function binary(op: i32, dst: usize, a: usize, b: usize, nbits: u64): i32 {
  const rc = checkBinary(dst, a, b, nbits);
  if (rc != KERR_OK) return rc;
  const fullWords = nbits >> 6;
  const vecBytes = <usize>(fullWords >> 1) << 4;
  for (let p: usize = 0; p < vecBytes; p += 16) {
    v128.store(dst + p, opVec(op, v128.load(a + p), v128.load(b + p)));
  }
  for (let w = <u64>(vecBytes >> 3); w < fullWords; w++) {
    store<u64>(wordAt(dst, w), opWord(op, load<u64>(wordAt(a, w)), load<u64>(wordAt(b, w))));
  }
  if ((nbits & 63) != 0) {
    const keep = maskFrom(nbits); // padding bits of dst stay as they are
    const d = wordAt(dst, fullWords);
    const v = opWord(op, load<u64>(wordAt(a, fullWords)), load<u64>(wordAt(b, fullWords)));
    store<u64>(d, (load<u64>(d) & keep) | (v & ~keep));
  }
  return KERR_OK;
}

// dst = a | b, a & b, a & ~b over nbits. dst may be a or b (in place) but must not partly
// overlap either. KERR_OK, KERR_RANGE, KERR_ALIGN, KERR_BOUNDS or KERR_OVERLAP.
export function bitmapOr(dst: usize, a: usize, b: usize, nbits: u64): i32 {
  return binary(OP_OR, dst, a, b, nbits);
}

export function bitmapAnd(dst: usize, a: usize, b: usize, nbits: u64): i32 {
  return binary(OP_AND, dst, a, b, nbits);
}

export function bitmapAndNot(dst: usize, a: usize, b: usize, nbits: u64): i32 {
  return binary(OP_ANDNOT, dst, a, b, nbits);
}
