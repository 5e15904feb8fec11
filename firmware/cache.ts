// The cache in common memory (document 001: the common memory/cache that channel IOPs fill and
// the disk IOP polls and destages).
//
// Model. The cache is an array of 64 KiB slots, each caching one 64 KiB-aligned piece of one
// volume, with per-sector (512 B) valid, dirty and destaging bits (128 sectors: two u64 each).
// A directory entry per slot holds its identity, state and list links; a hash over
// (volume, slot number) finds a slot. Every slot is on exactly one list:
//   free   never used since boot or emptied;
//   clean  holds valid data that is on the medium; LRU order, evicted from the head;
//   dirty  holds data not yet on the medium; ordered by the write sequence at which the slot
//          became dirty (dirtySeq), so the head is the oldest dirty data. A slot stays in place
//          while destaging and when re-dirtied during a destage, which keeps the order true.
// Writes go to the slot and are persisted (data range, then an inline descriptor image) in the
// NV region before the channel IOP acknowledges them (nv.ts). Reads that miss are staged by the
// disk IOP; the channel IOP waits on the slot's flags. The "event" counter moves whenever a stage
// or destage ends, so waiters only look again when something changed.
//
// Single writer per field is not guaranteed across IOPs: today all IOPs of an array run on one
// thread (docs/hal.md). A parallel mode would need a lock per hash bucket and per list.
import { SLOT_SECTORS, MAX_VOLUMES, MAP_ADDR, MAP_CACHE_STATE, STAT_NV_DROPPED, TRACE_NV_DROPPED } from "./abi";
import { volumeInUse } from "./volume";
import { statAdd } from "./stats";
import { trace } from "./trace";
import { log, LOG_WARN } from "./hal";
import {
  slotDataBase, descCopy, sectorCrcs, seal, sealed, blank, newer, DESC_BYTES, DESC_STATE, DESC_VOLUME,
  DESC_SLOT_NO, DESC_SEQ, DESC_DIRTY, DESC_POISON, DESC_GEN, DESC_CRC, DESC_USED, nvPersistRange, nvPersistInline,
} from "./nv";
import { crc32c } from "./comm/crc";

// Directory entry.
export const DIR_BYTES: u32 = 160;
const DIR_HASH_NEXT: u32 = 0; // u32: slot + 1 of the next entry in the bucket, 0 = end
const DIR_PREV: u32 = 4; // u32: slot + 1 on the list, 0 = none
const DIR_NEXT: u32 = 8;
const DIR_LIST: u32 = 12; // u8: LIST_*
const DIR_FLAGS: u32 = 13; // u8: F_*
const DIR_PINS: u32 = 14; // u16: commands using the slot
const DIR_VOLUME: u32 = 16; // u32, NO_VOLUME when the slot has no identity
const DIR_SLOT_NO: u32 = 20; // u32
const DIR_VALID: u32 = 24; // 2 x u64
const DIR_DIRTY: u32 = 40; // 2 x u64
const DIR_DESTAGING: u32 = 56; // 2 x u64
const DIR_DIRTY_SEQ: u32 = 72; // u64: write sequence when the slot went from clean to dirty
const DIR_DIRTY_NS: u32 = 80; // f64: time it did
const DIR_ERROR_SECTOR: u32 = 88; // u32: sector (in the slot) of the last medium error
const DIR_DESTAGE_OPS: u32 = 92; // u16: medium writes in flight for this slot
const DIR_SEQ: u32 = 96; // u64: write sequence of the last write, persisted in the descriptor
const DIR_RETRY_NS: u32 = 104; // f64: a failed destage is not retried before this
const DIR_FLUSH_NEXT: u32 = 112; // u32: slot + 1 of the next slot waiting for the same medium flush
const DIR_DESC_GEN: u32 = 116; // u32: generation of the descriptor copy last persisted
const DIR_POISON: u32 = 120; // 2 x u64: sectors whose NV data failed its CRC at recovery; reads fail until written
const DIR_VERDICT_NS: u32 = 136; // f64: when a destage last failed or found no medium (F_VERDICTS)
const DIR_THIN: u32 = 144; // u32: a thin volume's unmapped chunk: the medium chunk taken for the data written to it (thinmap.ts entry; 0: none)

export const LIST_FREE: u32 = 0;
export const LIST_CLEAN: u32 = 1;
export const LIST_DIRTY: u32 = 2;
export const LIST_HELD: u32 = 3; // a copy engine's own slot between chunks: no identity, out of circulation (slotHold)

export const F_STAGING: u32 = 1; // a medium read into the slot is in flight
export const F_DESTAGING: u32 = 2; // a medium write from the slot is in flight
export const F_READ_ERROR: u32 = 4; // the last stage failed (DIR_ERROR_SECTOR)
export const F_WRITE_ERROR: u32 = 8; // the last destage failed; data stays dirty, retried later
export const F_NOT_READY: u32 = 16; // the last medium request found the medium dead
export const F_URGENT: u32 = 32; // a write-through command waits for this slot: destage it now, whatever its age
// The last destage could not end for the NV file, not the medium: the chunk's init map mark failed
// there, or the file was degraded (being rewritten). Data stays dirty; tried again once it is whole.
export const F_NV_FAILED: u32 = 64;
/** A destage's verdicts: what a flush waiting for the slot reports. */
export const F_VERDICTS: u32 = F_WRITE_ERROR | F_NOT_READY | F_NV_FAILED;

const NO_VOLUME: u32 = 0xFFFFFFFF;

// Cache state block (shared).
export const CACHE_STATE_BYTES: u32 = 4096 + MAX_VOLUMES * 8;
const CS_FREE: u32 = 0; // list: head u32, tail u32, count u32
const CS_CLEAN: u32 = 12;
const CS_DIRTY: u32 = 24;
const CS_EVENT: u32 = 40; // u32
const CS_URGENT: u32 = 44; // u32: slots marked F_URGENT
const CS_SEQ: u32 = 48; // u64: last write sequence handed out
const CS_FLUSH_SEQ: u32 = 56; // u64: the disk IOP destages every slot with dirtySeq <= this
export const CS_READ_HITS: u32 = 64;
export const CS_READ_MISSES: u32 = 72;
export const CS_WRITE_HITS: u32 = 80;
export const CS_WRITE_MISSES: u32 = 88;
const CS_SLOTS: u32 = 96;
const CS_BUCKET_MASK: u32 = 100;
const CS_DIR: u32 = 104;
const CS_BUCKETS: u32 = 108;
const CS_DATA: u32 = 112;
const CS_FENCE_GEN: u32 = 116; // u32: bumped when a volume is fenced
const CS_HELD: u32 = 120; // list of LIST_HELD slots: head u32, tail u32, count u32
const CS_COPY_WANT: u32 = 132; // u32: a copy engine found no slot; the next allocation keeps one for it (slotForCopy)
const CS_COPY_GIFT: u32 = 136; // u32: slot + 1 kept (pinned, LIST_HELD) for the next copy that asks; 0 none
const CS_VOL_DIRTY: u32 = 4096; // u32 per volume: its dirty slots
const CS_FENCE: u32 = 4096 + MAX_VOLUMES * 4; // u32 per volume: FENCE_ON | channel IOPs that purged it

// @ts-ignore: decorator
@inline function cs(): usize { return load<u32>(MAP_ADDR + MAP_CACHE_STATE); }
// @ts-ignore: decorator
@inline export function slotCount(): u32 { return load<u32>(cs() + CS_SLOTS); }
// @ts-ignore: decorator
@inline function dir(slot: u32): usize { return <usize>load<u32>(cs() + CS_DIR) + <usize>slot * DIR_BYTES; }
// @ts-ignore: decorator
@inline export function slotData(slot: u32): usize { return <usize>load<u32>(cs() + CS_DATA) + (<usize>slot << 16); }
// @ts-ignore: decorator
@inline function poisoned(d: usize): bool { return (load<u64>(d + DIR_POISON) | load<u64>(d + DIR_POISON + 8)) != 0; }

export function hashBuckets(slots: u32): u32 {
  let b: u32 = 1;
  while (b < slots) b <<= 1;
  return b;
}

/** Bytes of the volatile directory (state block, entries, buckets) for `slots` slots. */
export function cacheDirBytes(slots: u32): usize {
  return <usize>CACHE_STATE_BYTES + <usize>slots * DIR_BYTES + <usize>hashBuckets(slots) * 4;
}

/** Layout time: records where everything is. */
export function cacheLayout(stateAddr: usize, slots: u32): void {
  store<u32>(MAP_ADDR + MAP_CACHE_STATE, <u32>stateAddr);
  const s = stateAddr;
  store<u32>(s + CS_SLOTS, slots);
  store<u32>(s + CS_BUCKET_MASK, hashBuckets(slots) - 1);
  store<u32>(s + CS_DIR, <u32>(s + CACHE_STATE_BYTES));
  store<u32>(s + CS_BUCKETS, <u32>(s + CACHE_STATE_BYTES + <usize>slots * DIR_BYTES));
  store<u32>(s + CS_DATA, <u32>slotDataBase());
}

// ---- Lists --------------------------------------------------------------------------------------

function listUnlink(slot: u32): void {
  const d = dir(slot);
  const l = cs() + listOffset(load<u8>(d + DIR_LIST));
  assert(load<u32>(l + 8) > 0, "cache: unlink from an empty list");
  const prev = load<u32>(d + DIR_PREV);
  const next = load<u32>(d + DIR_NEXT);
  if (prev != 0) store<u32>(dir(prev - 1) + DIR_NEXT, next); else store<u32>(l, next);
  if (next != 0) store<u32>(dir(next - 1) + DIR_PREV, prev); else store<u32>(l + 4, prev);
  store<u32>(l + 8, load<u32>(l + 8) - 1);
  store<u32>(d + DIR_PREV, 0);
  store<u32>(d + DIR_NEXT, 0);
}

function listAppend(slot: u32, list: u32): void {
  const d = dir(slot);
  const l = cs() + listOffset(list);
  const tail = load<u32>(l + 4);
  store<u8>(d + DIR_LIST, <u8>list);
  store<u32>(d + DIR_PREV, tail);
  store<u32>(d + DIR_NEXT, 0);
  if (tail != 0) store<u32>(dir(tail - 1) + DIR_NEXT, slot + 1); else store<u32>(l, slot + 1);
  store<u32>(l + 4, slot + 1);
  store<u32>(l + 8, load<u32>(l + 8) + 1);
}

function listMove(slot: u32, list: u32): void { listUnlink(slot); listAppend(slot, list); }

// @ts-ignore: decorator
@inline function listOffset(list: u32): u32 { return list == LIST_FREE ? CS_FREE : list == LIST_CLEAN ? CS_CLEAN : list == LIST_DIRTY ? CS_DIRTY : CS_HELD; }

export function listCount(list: u32): u32 { return load<u32>(cs() + listOffset(list) + 8); }
/** First slot of a list, or -1. */
export function listFirst(list: u32): i32 { return <i32>load<u32>(cs() + listOffset(list)) - 1; }
/** Next slot after `slot` on its list, or -1. */
export function listNext(slot: u32): i32 { return <i32>load<u32>(dir(slot) + DIR_NEXT) - 1; }

// ---- Hash ---------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function bucket(volume: u32, slotNo: u32): usize {
  const h = (volume * 0x9E3779B1) ^ (slotNo * 0x85EBCA77);
  return <usize>load<u32>(cs() + CS_BUCKETS) + (<usize>((h ^ (h >> 15)) & load<u32>(cs() + CS_BUCKET_MASK)) << 2);
}

/** The slot caching (volume, slotNo), or -1. */
export function cacheLookup(volume: u32, slotNo: u32): i32 {
  let i = load<u32>(bucket(volume, slotNo));
  while (i != 0) {
    const d = dir(i - 1);
    if (load<u32>(d + DIR_VOLUME) == volume && load<u32>(d + DIR_SLOT_NO) == slotNo) return <i32>(i - 1);
    i = load<u32>(d + DIR_HASH_NEXT);
  }
  return -1;
}

function hashInsert(slot: u32): void {
  const d = dir(slot);
  const b = bucket(load<u32>(d + DIR_VOLUME), load<u32>(d + DIR_SLOT_NO));
  store<u32>(d + DIR_HASH_NEXT, load<u32>(b));
  store<u32>(b, slot + 1);
}

function hashRemove(slot: u32): void {
  const d = dir(slot);
  let p = bucket(load<u32>(d + DIR_VOLUME), load<u32>(d + DIR_SLOT_NO));
  while (load<u32>(p) != 0) {
    const i = load<u32>(p);
    if (i == slot + 1) { store<u32>(p, load<u32>(d + DIR_HASH_NEXT)); break; }
    p = dir(i - 1) + DIR_HASH_NEXT;
  }
  store<u32>(d + DIR_HASH_NEXT, 0);
}

// ---- Boot ---------------------------------------------------------------------------------------

/** Empties the directory: every slot free, no identity. */
export function cacheReset(): void {
  const s = cs();
  const slots = slotCount();
  memory.fill(s, 0, CS_SLOTS);
  memory.fill(s + CS_HELD, 0, CS_COPY_GIFT + 4 - CS_HELD);
  memory.fill(s + CS_VOL_DIRTY, 0, MAX_VOLUMES * 8);
  memory.fill(load<u32>(s + CS_DIR), 0, <usize>slots * DIR_BYTES);
  memory.fill(load<u32>(s + CS_BUCKETS), 0, <usize>hashBuckets(slots) * 4);
  for (let i: u32 = 0; i < slots; i++) {
    store<u32>(dir(i) + DIR_VOLUME, NO_VOLUME);
    listAppend(i, LIST_FREE);
  }
}

/**
 * Rebuilds the directory from the NV slot descriptors after a crash: every slot whose current
 * descriptor is dirty goes back on the dirty list, in write-sequence order, with only its dirty
 * sectors valid. Each dirty sector is checked against its sector CRC first: one that fails was
 * torn by the crash (its write was never acknowledged whole, nor can the bytes before it be
 * vouched for) and is dropped, and its LBA is poisoned: reads fail with a medium error until it
 * is written again. Returns the number of dirty slots recovered. `scratch` has room for slots u32s.
 */
export function cacheRecover(scratch: usize): u32 {
  cacheReset();
  let n: u32 = 0;
  let seqMax: u64 = 0;
  let torn: u32 = 0;
  for (let i: u32 = 0; i < slotCount(); i++) {
    const p = currentDescriptor(i);
    if (p == 0) { if (!blank(descCopy(i, 0), DESC_BYTES) || !blank(descCopy(i, 1), DESC_BYTES)) torn++; continue; }
    if (!sealed(descCopy(i, 0), DESC_CRC) && !blank(descCopy(i, 0), DESC_BYTES)) torn++;
    else if (!sealed(descCopy(i, 1), DESC_CRC) && !blank(descCopy(i, 1), DESC_BYTES)) torn++;
    store<u32>(dir(i) + DIR_DESC_GEN, load<u32>(p + DESC_GEN));
    const seq = load<u64>(p + DESC_SEQ);
    if (seq > seqMax) seqMax = seq;
    if ((load<u64>(p + DESC_DIRTY) | load<u64>(p + DESC_DIRTY + 8) | load<u64>(p + DESC_POISON) | load<u64>(p + DESC_POISON + 8)) == 0) continue;
    const volume = <u32>load<u16>(p + DESC_VOLUME);
    if (!volumeInUse(volume)) {
      log(LOG_WARN, "nv: a dirty cache slot of a volume no longer in the table was dropped (volume, slot number)", volume, load<u32>(p + DESC_SLOT_NO));
      continue;
    }
    const other = cacheLookup(volume, load<u32>(p + DESC_SLOT_NO));
    if (other >= 0) {
      // Two dirty descriptors for one piece of a volume cannot arise from ordered persists;
      // keep the newer write rather than trust either blindly.
      if (load<u64>(dir(<u32>other) + DIR_SEQ) > seq) continue;
      forget(<u32>other);
    }
    adopt(i, p);
    if (load<u8>(dir(i) + DIR_LIST) == LIST_DIRTY) {
      store<u32>(scratch + (<usize>n << 2), i);
      n++;
    }
  }
  if (torn > 0) log(LOG_WARN, "nv: slot descriptor copies that failed their CRC were ignored (copies)", torn, 0);
  store<u64>(cs() + CS_SEQ, seqMax);
  sortBySeq(scratch, n);
  for (let k: u32 = 0; k < n; k++) {
    const slot = load<u32>(scratch + (<usize>k << 2));
    if (load<u8>(dir(slot) + DIR_LIST) == LIST_DIRTY) listMove(slot, LIST_DIRTY);
  }
  return dirtyCountAll();
}

/** The newer of a slot's two descriptor copies that is whole (used, CRC good), or 0. */
function currentDescriptor(slot: u32): usize { return newerDescriptor(descCopy(slot, 0), descCopy(slot, 1)); }

/** The newer whole one of two descriptor copies a and b (used, CRC good), or 0. */
export function newerDescriptor(a: usize, b: usize): usize {
  const va = load<u32>(a + DESC_STATE) == DESC_USED && sealed(a, DESC_CRC);
  const vb = load<u32>(b + DESC_STATE) == DESC_USED && sealed(b, DESC_CRC);
  if (va && vb) return newer(load<u32>(b + DESC_GEN), load<u32>(a + DESC_GEN)) ? b : a;
  return va ? a : vb ? b : 0;
}

function adopt(slot: u32, p: usize): void {
  const d = dir(slot);
  const volume = <u32>load<u16>(p + DESC_VOLUME);
  const slotNo = load<u32>(p + DESC_SLOT_NO);
  store<u32>(d + DIR_VOLUME, volume);
  store<u32>(d + DIR_SLOT_NO, slotNo);
  store<u64>(d + DIR_DIRTY, load<u64>(p + DESC_DIRTY));
  store<u64>(d + DIR_DIRTY + 8, load<u64>(p + DESC_DIRTY + 8));
  store<u64>(d + DIR_POISON, load<u64>(p + DESC_POISON));
  store<u64>(d + DIR_POISON + 8, load<u64>(p + DESC_POISON + 8));
  const dropped = verifySectors(slot, volume, slotNo);
  if (dropped > 0) {
    statAdd(STAT_NV_DROPPED, dropped);
    log(LOG_WARN, "nv: dirty sectors whose NV data failed its CRC were dropped; reads of them fail (sectors, volume)", dropped, volume);
  }
  store<u64>(d + DIR_VALID, load<u64>(d + DIR_DIRTY));
  store<u64>(d + DIR_VALID + 8, load<u64>(d + DIR_DIRTY + 8));
  store<u64>(d + DIR_SEQ, load<u64>(p + DESC_SEQ));
  store<u64>(d + DIR_DIRTY_SEQ, load<u64>(p + DESC_SEQ));
  hashInsert(slot);
  if ((load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DIRTY + 8)) != 0) {
    listMove(slot, LIST_DIRTY);
    volDirtyAdd(volume, 1);
  } else {
    listMove(slot, LIST_CLEAN); // only poison left: kept (never evicted) so that reads of it fail
  }
}

/** Checks the slot's dirty sectors against their sector CRCs; moves those that fail to poison. */
function verifySectors(slot: u32, volume: u32, slotNo: u32): u32 {
  const d = dir(slot);
  const data = slotData(slot);
  const crcs = sectorCrcs(slot);
  let dropped: u32 = 0;
  for (let s: u32 = 0; s < SLOT_SECTORS; s++) {
    const word = d + DIR_DIRTY + ((s >> 6) << 3);
    const bit = <u64>1 << (<u64>s & 63);
    if ((load<u64>(word) & bit) == 0) continue;
    if (crc32c(data + (<usize>s << 9), 512, 0) == load<u32>(crcs + (<usize>s << 2))) continue;
    store<u64>(word, load<u64>(word) & ~bit);
    const pw = d + DIR_POISON + ((s >> 6) << 3);
    store<u64>(pw, load<u64>(pw) | bit);
    trace(TRACE_NV_DROPPED, volume, slotNo, s, 0);
    dropped++;
  }
  return dropped;
}

function forget(slot: u32): void {
  const d = dir(slot);
  volDirtyAdd(load<u32>(d + DIR_VOLUME), -1);
  clearUrgent(slot);
  hashRemove(slot);
  store<u32>(d + DIR_VOLUME, NO_VOLUME);
  memory.fill(d + DIR_VALID, 0, 48);
  memory.fill(d + DIR_POISON, 0, 16);
  listMove(slot, LIST_FREE);
}

/** Heap sort of slot numbers by their descriptors' write sequence; no allocation. */
function sortBySeq(a: usize, n: u32): void {
  if (n < 2) return;
  for (let i = <i32>(n / 2) - 1; i >= 0; i--) siftDown(a, <u32>i, n);
  for (let end = n - 1; end > 0; end--) {
    swap(a, 0, end);
    siftDown(a, 0, end);
  }
}

function siftDown(a: usize, start: u32, n: u32): void {
  let root = start;
  while (<u32>2 * root + 1 < n) {
    let child: u32 = 2 * root + 1;
    if (child + 1 < n && seqOf(a, child) < seqOf(a, child + 1)) child++;
    if (seqOf(a, root) >= seqOf(a, child)) return;
    swap(a, root, child);
    root = child;
  }
}

// @ts-ignore: decorator
@inline function seqOf(a: usize, i: u32): u64 { return load<u64>(dir(load<u32>(a + (<usize>i << 2))) + DIR_DIRTY_SEQ); }
// @ts-ignore: decorator
@inline function swap(a: usize, i: u32, j: u32): void {
  const t = load<u32>(a + (<usize>i << 2));
  store<u32>(a + (<usize>i << 2), load<u32>(a + (<usize>j << 2)));
  store<u32>(a + (<usize>j << 2), t);
}

// ---- Sector bit masks ---------------------------------------------------------------------------

/** Mask of sectors [first, first + count) within a slot: low word. */
// @ts-ignore: decorator
@inline export function maskLo(first: u32, count: u32): u64 { return rangeBits(first, count, 0); }
// @ts-ignore: decorator
@inline export function maskHi(first: u32, count: u32): u64 { return rangeBits(first, count, 64); }

function rangeBits(first: u32, count: u32, base: u32): u64 {
  const lo = max<i32>(<i32>first - <i32>base, 0);
  const hi = min<i32>(<i32>(first + count) - <i32>base, 64);
  if (hi <= lo) return 0;
  const width = <u64>(hi - lo);
  const ones = width == 64 ? u64.MAX_VALUE : (<u64>1 << width) - 1;
  return ones << <u64>lo;
}

// ---- Slot access --------------------------------------------------------------------------------

export function slotFlags(slot: u32): u32 { return load<u8>(dir(slot) + DIR_FLAGS); }
export function slotSetFlags(slot: u32, f: u32): void { store<u8>(dir(slot) + DIR_FLAGS, <u8>(slotFlags(slot) | f)); }
export function slotClearFlags(slot: u32, f: u32): void { store<u8>(dir(slot) + DIR_FLAGS, <u8>(slotFlags(slot) & ~f)); }
/**
 * A dirty slot that cannot be destaged now (no medium to write to: lost, being labelled, gone; or
 * an NV file that cannot take its chunk's init map mark): given `verdict` with the time, and the
 * cache event moved, so a flush waiting for it looks again and reports it instead of waiting for a
 * write that will not be tried (a flag set without the event was a lost wake-up). A verdict given
 * at or after `sinceNs` (the last flush request), and not withdrawn by markUrgent, is not given
 * again. True when it was given now.
 */
export function slotMarkVerdict(slot: u32, verdict: u32, nowNs: f64, sinceNs: f64): bool {
  const v = slotVerdictNs(slot);
  if ((slotFlags(slot) & verdict) != 0 && v != 0 && v >= sinceNs) return false;
  slotDestageFailed(slot, verdict, nowNs);
  bumpEvent();
  return true;
}

/**
 * A destage of the slot failed, or could not begin, and when: F_NOT_READY (the medium did not
 * answer), F_WRITE_ERROR (it refused the write) or F_NV_FAILED (the NV file could not take the
 * chunk's init map mark). The medium verdicts of one destage's runs add up; the NV verdict is given
 * for a try whose medium writes succeeded or were not made, and replaces any older one, as a
 * medium verdict replaces an older NV one: a flush reports what its own try met.
 */
export function slotDestageFailed(slot: u32, verdict: u32, nowNs: f64): void {
  slotClearFlags(slot, verdict == F_NV_FAILED ? F_VERDICTS : F_NV_FAILED);
  slotSetFlags(slot, verdict);
  store<f64>(dir(slot) + DIR_VERDICT_NS, nowNs);
}

/**
 * When the slot's verdict (F_VERDICTS) was given. A flush counts only a verdict given
 * after it began: an older one may be stale (the medium was being labelled at boot, a write error
 * healed since), and the slot is tried again for the flush.
 */
export function slotVerdictNs(slot: u32): f64 { return load<f64>(dir(slot) + DIR_VERDICT_NS); }
export function slotVolume(slot: u32): u32 { return load<u32>(dir(slot) + DIR_VOLUME); }
/** The medium chunk a thin volume's unmapped chunk was given for the data written into this slot (thin.ts), or 0. */
export function slotThinChunk(slot: u32): u32 { return load<u32>(dir(slot) + DIR_THIN); }
export function setSlotThinChunk(slot: u32, t: u32): void { store<u32>(dir(slot) + DIR_THIN, t); }
export function slotNumber(slot: u32): u32 { return load<u32>(dir(slot) + DIR_SLOT_NO); }
export function slotList(slot: u32): u32 { return load<u8>(dir(slot) + DIR_LIST); }
export function slotPins(slot: u32): u32 { return load<u16>(dir(slot) + DIR_PINS); }
export function slotErrorSector(slot: u32): u32 { return load<u32>(dir(slot) + DIR_ERROR_SECTOR); }
export function slotDirtySeq(slot: u32): u64 { return load<u64>(dir(slot) + DIR_DIRTY_SEQ); }
export function slotDirtyNs(slot: u32): f64 { return load<f64>(dir(slot) + DIR_DIRTY_NS); }
export function slotRetryNs(slot: u32): f64 { return load<f64>(dir(slot) + DIR_RETRY_NS); }
/** The disk IOP's list of slots written to a medium and waiting for its flush (slot + 1, 0 = end). */
export function slotFlushNext(slot: u32): u32 { return load<u32>(dir(slot) + DIR_FLUSH_NEXT); }
export function setSlotFlushNext(slot: u32, next: u32): void { store<u32>(dir(slot) + DIR_FLUSH_NEXT, next); }

export function pin(slot: u32): void { const d = dir(slot); store<u16>(d + DIR_PINS, load<u16>(d + DIR_PINS) + 1); }
export function unpin(slot: u32): void {
  const d = dir(slot);
  const pins = load<u16>(d + DIR_PINS);
  assert(pins > 0, "cache: unpin of a slot nobody pinned");
  store<u16>(d + DIR_PINS, pins - 1);
  if (pins == 1 && load<u8>(d + DIR_LIST) == <u8>LIST_HELD) listMove(slot, LIST_FREE); // a copy's held slot back in circulation
  if (pins == 1) bumpEvent(); // a slot waiters might evict became free to go
}

/**
 * A chunk that was never written (initmap.ts): the slot's sectors that are not valid become zeros
 * and valid, so nothing of a slot's previous owner can reach a reader or the medium. Sectors
 * [skipFirst, skipFirst + skipCount) are left as they are: a write about to cover them passes
 * them here so they are not zeroed only to be overwritten (they stay invalid until it does).
 */
export function fillBlank(slot: u32, skipFirst: u32, skipCount: u32): void {
  const d = dir(slot);
  const data = slotData(slot);
  const skipEnd = skipFirst + skipCount;
  let s: u32 = 0;
  while (s < SLOT_SECTORS) {
    if (bitAt(d + DIR_VALID, s) || (s >= skipFirst && s < skipEnd)) { s++; continue; }
    let e = s + 1; // one fill per run of sectors to zero
    while (e < SLOT_SECTORS && !bitAt(d + DIR_VALID, e) && !(e >= skipFirst && e < skipEnd)) e++;
    memory.fill(data + (<usize>s << 9), 0, <usize>(e - s) << 9);
    s = e;
  }
  // A poisoned sector stays invalid: it reads MEDIUM ERROR until written, not the zeros put there.
  const lo = maskLo(skipFirst, skipCount);
  const hi = maskHi(skipFirst, skipCount);
  store<u64>(d + DIR_VALID, (load<u64>(d + DIR_VALID) | ~lo) & ~load<u64>(d + DIR_POISON));
  store<u64>(d + DIR_VALID + 8, (load<u64>(d + DIR_VALID + 8) | ~hi) & ~load<u64>(d + DIR_POISON + 8));
}

/** All of sectors [first, first + count) valid? */
export function sectorsValid(slot: u32, first: u32, count: u32): bool {
  const d = dir(slot);
  const lo = maskLo(first, count);
  const hi = maskHi(first, count);
  return (load<u64>(d + DIR_VALID) & lo) == lo && (load<u64>(d + DIR_VALID + 8) & hi) == hi;
}

/**
 * The next medium read a stage should make for [first, first + count), as first << 16 | count
 * (0: all valid). It starts at the first invalid sector and reaches the last invalid one, taking
 * clean valid sectors in between along (the medium holds the same bytes) but stopping before a
 * dirty or destaging sector: the binding writes the whole run into the slot, and those sectors
 * hold data the medium does not have yet. What lies beyond is staged by the next request.
 */
export function missingRun(slot: u32, first: u32, count: u32): u32 {
  const d = dir(slot);
  let a: i32 = -1;
  let b: i32 = -1;
  for (let s = first; s < first + count; s++) {
    const word = <usize>((s >> 6) << 3);
    const bit = <u64>s & 63;
    const valid = ((load<u64>(d + DIR_VALID + word) >> bit) & 1) != 0;
    if (!valid) { if (a < 0) a = <i32>s; b = <i32>s; continue; }
    if (a >= 0 && (((load<u64>(d + DIR_DIRTY + word) | load<u64>(d + DIR_DESTAGING + word)) >> bit) & 1) != 0) break;
  }
  if (a < 0) return 0;
  return (<u32>a << 16) | <u32>(b - a + 1);
}

/** Dirty sectors of the slot in [first, first + count)? */
export function sectorsDirty(slot: u32, first: u32, count: u32): bool {
  const d = dir(slot);
  const lo = maskLo(first, count);
  const hi = maskHi(first, count);
  return ((load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DESTAGING)) & lo) != 0
    || ((load<u64>(d + DIR_DIRTY + 8) | load<u64>(d + DIR_DESTAGING + 8)) & hi) != 0;
}

/** First and last dirty (or destaging) sector of the slot, as first << 8 | last; 0xFFFF when none. */
export function slotDirtyRange(slot: u32): u32 {
  const d = dir(slot);
  const lo = load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DESTAGING);
  const hi = load<u64>(d + DIR_DIRTY + 8) | load<u64>(d + DIR_DESTAGING + 8);
  if ((lo | hi) == 0) return 0xFFFF;
  const first = lo != 0 ? <u32>ctz(lo) : 64 + <u32>ctz(hi);
  const last = hi != 0 ? 127 - <u32>clz(hi) : 63 - <u32>clz(lo);
  return (first << 8) | last;
}

export function slotIsDirty(slot: u32): bool { return load<u8>(dir(slot) + DIR_LIST) == LIST_DIRTY; }

/** Moves a clean slot to the most-recently-used end. */
export function touch(slot: u32): void {
  if (load<u8>(dir(slot) + DIR_LIST) == LIST_CLEAN) listMove(slot, LIST_CLEAN);
}

/**
 * A slot for (volume, slotNo) with nothing valid: a free one, or the least recently used clean
 * slot that nobody is using. -1 when every slot is dirty, pinned or busy. When a copy engine
 * found none (CS_COPY_WANT), the first slot found is held for it instead (slotForCopy), and the
 * caller gets the next one if there is one: under a destage-bound host load the copy would
 * otherwise never win a slot, since the waiting writers take each one a destage frees first.
 * The copy keeps that slot for its whole run, so this costs the hosts one slot per copy.
 */
export function allocate(volume: u32, slotNo: u32): i32 {
  let slot = takeable();
  if (slot >= 0 && load<u32>(cs() + CS_COPY_WANT) != 0 && load<u32>(cs() + CS_COPY_GIFT) == 0) {
    store<u32>(cs() + CS_COPY_WANT, 0);
    store<u32>(cs() + CS_COPY_GIFT, <u32>slot + 1);
    withoutIdentity(<u32>slot);
    pin(<u32>slot);
    listMove(<u32>slot, LIST_HELD);
    slot = takeable();
  }
  if (slot < 0) return -1;
  identify(<u32>slot, volume, slotNo);
  return slot;
}

function takeable(): i32 {
  const slot = listFirst(LIST_FREE);
  return slot >= 0 ? slot : evictable();
}

/** Gives an unused slot (no pins but its holder's, clean or free or held) the identity (volume, slotNo), nothing valid, on the clean list. */
function identify(slot: u32, volume: u32, slotNo: u32): void {
  const d = dir(slot);
  withoutIdentity(slot);
  store<u32>(d + DIR_VOLUME, volume);
  store<u32>(d + DIR_SLOT_NO, slotNo);
  hashInsert(slot);
  listMove(slot, LIST_CLEAN);
}

function withoutIdentity(slot: u32): void {
  const d = dir(slot);
  if (load<u32>(d + DIR_VOLUME) != NO_VOLUME) hashRemove(slot);
  store<u32>(d + DIR_VOLUME, NO_VOLUME);
  store<u8>(d + DIR_FLAGS, 0);
  memory.fill(d + DIR_VALID, 0, 48);
  memory.fill(d + DIR_POISON, 0, 16);
  assert(load<u32>(d + DIR_THIN) == 0, "cache: a slot given a thin chunk was reused before it was mapped or given back");
}

/**
 * A copy engine's slot for (volume, slotNo) when allocate found none: the slot an allocation held
 * for it since it last asked (pinned for the caller, who unpins it), or -1 and the next allocation
 * holds one. A copy asks only while it holds no slot of its own (slotHold keeps it between
 * chunks), so the hosts give up at most one slot per copy, once per run.
 */
export function slotForCopy(volume: u32, slotNo: u32): i32 {
  const gift = load<u32>(cs() + CS_COPY_GIFT);
  if (gift == 0) { store<u32>(cs() + CS_COPY_WANT, 1); return -1; }
  store<u32>(cs() + CS_COPY_GIFT, 0);
  identify(gift - 1, volume, slotNo);
  return <i32>(gift - 1);
}

/**
 * No copy engine runs any more: a wish left by one that ended before an allocation answered it is
 * dropped, and a slot kept for it (pinned, LIST_HELD) goes back to circulation. Without this a
 * copy that asked and then ended kept one slot out of the cache until the next copy asked.
 */
export function slotForCopyCancel(): void {
  store<u32>(cs() + CS_COPY_WANT, 0);
  const gift = load<u32>(cs() + CS_COPY_GIFT);
  if (gift == 0) return;
  store<u32>(cs() + CS_COPY_GIFT, 0);
  unpin(gift - 1); // held, its only pin: back on the free list
}

/**
 * Keeps a copy engine's pinned slot (pinned by it alone, clean, no medium request in flight, no
 * poison) for its next chunk: the slot loses its identity and leaves circulation (LIST_HELD),
 * still pinned. False (nothing changed) when the slot is not such a slot.
 */
export function slotHold(slot: u32): bool {
  const d = dir(slot);
  if (load<u16>(d + DIR_PINS) != 1 || load<u8>(d + DIR_LIST) != <u8>LIST_CLEAN || (load<u8>(d + DIR_FLAGS) & (F_STAGING | F_DESTAGING)) != 0
    || poisoned(d) || load<u32>(d + DIR_THIN) != 0) return false;
  withoutIdentity(slot);
  listMove(slot, LIST_HELD);
  return true;
}

/** A held slot (slotHold) given the identity (volume, slotNo), nothing valid, still pinned by its holder. */
export function slotReuse(slot: u32, volume: u32, slotNo: u32): void {
  assert(load<u8>(dir(slot) + DIR_LIST) == <u8>LIST_HELD, "cache: slotReuse of a slot that is not held");
  identify(slot, volume, slotNo);
}

function evictable(): i32 {
  let i = listFirst(LIST_CLEAN);
  while (i >= 0) {
    const d = dir(<u32>i);
    if (load<u16>(d + DIR_PINS) == 0 && (load<u8>(d + DIR_FLAGS) & (F_STAGING | F_DESTAGING)) == 0 && !poisoned(d)) return i;
    i = listNext(<u32>i);
  }
  return -1;
}

/**
 * Drops a slot of a deleted volume: dirty data is discarded and, if it was dirty, its descriptor is
 * persisted clean (needs 1 free NV entry; returns true when it queued one).
 */
export function dropSlot(slot: u32, nvIdValue: u32): bool {
  const d = dir(slot);
  assert(load<u32>(d + DIR_THIN) == 0, "cache: a slot holding a thin chunk dropped without giving it back (thin.ts, thinDropSlot)");
  const volume = load<u32>(d + DIR_VOLUME);
  let queued = false;
  if (load<u8>(d + DIR_LIST) == LIST_DIRTY || poisoned(d)) {
    if (load<u8>(d + DIR_LIST) == LIST_DIRTY) volDirtyAdd(volume, -1);
    memory.fill(d + DIR_DIRTY, 0, 32);
    memory.fill(d + DIR_POISON, 0, 16);
    queued = persistDescriptor(slot, nvIdValue);
  }
  clearUrgent(slot);
  hashRemove(slot);
  store<u32>(d + DIR_VOLUME, NO_VOLUME);
  memory.fill(d + DIR_VALID, 0, 48);
  listMove(slot, LIST_FREE);
  bumpEvent();
  return queued;
}

export function slotsOfVolumeBusy(volume: u32): bool {
  for (let i: u32 = 0; i < slotCount(); i++) {
    const d = dir(i);
    if (load<u32>(d + DIR_VOLUME) == volume && (load<u16>(d + DIR_PINS) != 0 || (load<u8>(d + DIR_FLAGS) & (F_STAGING | F_DESTAGING)) != 0)) return true;
  }
  return false;
}

// ---- Writes (channel IOP) -----------------------------------------------------------------------

/** NV entries one writeSectors queues: data, sector CRCs, descriptor. */
export const WRITE_NV_ENTRIES: u32 = 3;

/**
 * Copies `count` sectors from src into the slot at sector `first`, marks them valid and dirty,
 * and queues their persistence: the data range, its sector CRCs, then the descriptor (recovery
 * trusts a dirty sector only if its data matches its CRC). Needs WRITE_NV_ENTRIES free NV entries.
 */
export function writeSectors(slot: u32, first: u32, count: u32, src: usize, nowNs: f64, nvIdValue: u32): void {
  // A write of no sector would put the slot on the dirty list with nothing to destage: a flush would wait for it for ever.
  assert(count > 0 && first + count <= SLOT_SECTORS, "cache: a write of no sectors, or past its slot");
  const d = dir(slot);
  const dst = slotData(slot) + (<usize>first << 9);
  memory.copy(dst, src, <usize>count << 9);
  const crcs = sectorCrcs(slot) + (<usize>first << 2);
  for (let s: u32 = 0; s < count; s++) store<u32>(crcs + (<usize>s << 2), crc32c(dst + (<usize>s << 9), 512, 0));
  const lo = maskLo(first, count);
  const hi = maskHi(first, count);
  store<u64>(d + DIR_POISON, load<u64>(d + DIR_POISON) & ~lo); // written again: the LBA reads what was written
  store<u64>(d + DIR_POISON + 8, load<u64>(d + DIR_POISON + 8) & ~hi);
  store<u64>(d + DIR_VALID, load<u64>(d + DIR_VALID) | lo);
  store<u64>(d + DIR_VALID + 8, load<u64>(d + DIR_VALID + 8) | hi);
  store<u64>(d + DIR_DIRTY, load<u64>(d + DIR_DIRTY) | lo);
  store<u64>(d + DIR_DIRTY + 8, load<u64>(d + DIR_DIRTY + 8) | hi);
  const seq = nextSeq();
  store<u64>(d + DIR_SEQ, seq);
  if (load<u8>(d + DIR_LIST) != LIST_DIRTY) {
    store<u64>(d + DIR_DIRTY_SEQ, seq);
    store<f64>(d + DIR_DIRTY_NS, nowNs);
    store<f64>(d + DIR_RETRY_NS, 0);
    listMove(slot, LIST_DIRTY);
    volDirtyAdd(load<u32>(d + DIR_VOLUME), 1);
  }
  nvPersistRange(dst, count << 9, nvIdValue);
  nvPersistRange(crcs, count << 2, nvIdValue);
  persistDescriptor(slot, nvIdValue);
}

/**
 * Persists the slot's descriptor (dirty = dirty | destaging) into the copy the last one did not
 * use, so a torn write leaves the previous record whole. The record is built in the NV region
 * itself (so a rewrite of the whole region carries it) and queued as an inline image of now.
 */
export function persistDescriptor(slot: u32, nvIdValue: u32): bool {
  const d = dir(slot);
  const gen = load<u32>(d + DIR_DESC_GEN) + 1;
  store<u32>(d + DIR_DESC_GEN, gen);
  const p = descCopy(slot, gen & 1);
  memory.fill(p, 0, DESC_BYTES);
  store<u32>(p + DESC_STATE, DESC_USED);
  store<u16>(p + DESC_VOLUME, <u16>load<u32>(d + DIR_VOLUME));
  store<u32>(p + DESC_SLOT_NO, load<u32>(d + DIR_SLOT_NO));
  store<u32>(p + DESC_GEN, gen);
  store<u64>(p + DESC_SEQ, load<u64>(d + DIR_SEQ));
  store<u64>(p + DESC_DIRTY, load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DESTAGING));
  store<u64>(p + DESC_DIRTY + 8, load<u64>(d + DIR_DIRTY + 8) | load<u64>(d + DIR_DESTAGING + 8));
  store<u64>(p + DESC_POISON, load<u64>(d + DIR_POISON));
  store<u64>(p + DESC_POISON + 8, load<u64>(d + DIR_POISON + 8));
  seal(p, DESC_CRC);
  return nvPersistInline(p, p, DESC_BYTES, nvIdValue);
}

/** The first poisoned sector of [first, first + count), or -1 (docs/scsi.md: reads of it fail). */
export function poisonedSector(slot: u32, first: u32, count: u32): i32 {
  const d = dir(slot);
  if (!poisoned(d)) return -1;
  for (let s = first; s < first + count; s++) if (bitAt(d + DIR_POISON, s)) return <i32>s;
  return -1;
}

function nextSeq(): u64 {
  const p = cs() + CS_SEQ;
  const s = load<u64>(p) + 1;
  store<u64>(p, s);
  return s;
}

export function currentSeq(): u64 { return load<u64>(cs() + CS_SEQ); }

// ---- Staging and destaging (disk IOP) -----------------------------------------------------------

export function stageDone(slot: u32, first: u32, count: u32, ok: bool, errorSector: u32, notReady: bool): void {
  const d = dir(slot);
  if (ok) {
    // A staged run may cross poisoned sectors (a read staging ahead): they stay invalid.
    store<u64>(d + DIR_VALID, load<u64>(d + DIR_VALID) | (maskLo(first, count) & ~load<u64>(d + DIR_POISON)));
    store<u64>(d + DIR_VALID + 8, load<u64>(d + DIR_VALID + 8) | (maskHi(first, count) & ~load<u64>(d + DIR_POISON + 8)));
    slotClearFlags(slot, F_STAGING | F_READ_ERROR | F_NOT_READY);
  } else {
    store<u32>(d + DIR_ERROR_SECTOR, errorSector);
    slotClearFlags(slot, F_STAGING);
    slotSetFlags(slot, notReady ? F_NOT_READY : F_READ_ERROR);
  }
  bumpEvent();
}

/** Starts a destage: the dirty sectors become destaging. Returns their masks' union is nonzero. */
export function destageBegin(slot: u32): bool {
  const d = dir(slot);
  const lo = load<u64>(d + DIR_DIRTY);
  const hi = load<u64>(d + DIR_DIRTY + 8);
  if ((lo | hi) == 0) return false;
  store<u64>(d + DIR_DESTAGING, lo);
  store<u64>(d + DIR_DESTAGING + 8, hi);
  store<u64>(d + DIR_DIRTY, 0);
  store<u64>(d + DIR_DIRTY + 8, 0);
  slotSetFlags(slot, F_DESTAGING);
  return true;
}

/** Destaging sectors as runs: the next run at or after `from`, as first << 16 | count (0: none). */
export function destagingRun(slot: u32, from: u32): u32 {
  const d = dir(slot);
  let s = from;
  while (s < SLOT_SECTORS && !bitAt(d + DIR_DESTAGING, s)) s++;
  if (s >= SLOT_SECTORS) return 0;
  let e = s;
  while (e < SLOT_SECTORS && bitAt(d + DIR_DESTAGING, e)) e++;
  return (s << 16) | (e - s);
}

// @ts-ignore: decorator
@inline function bitAt(p: usize, s: u32): bool { return ((load<u64>(p + ((s >> 6) << 3)) >> (<u64>s & 63)) & 1) != 0; }

export function destageOpsAdd(slot: u32, n: i32): u32 {
  const p = dir(slot) + DIR_DESTAGE_OPS;
  assert(<i32>load<u16>(p) + n >= 0, "cache: more destage completions than writes");
  const v = <u32>(<i32>load<u16>(p) + n);
  store<u16>(p, <u16>v);
  return v;
}

/**
 * A destage of the slot ended (all its runs). On success the slot turns clean unless it was
 * written meanwhile; on failure its sectors are dirty again and retried after `retryNs`.
 * Queues the descriptor (needs 1 free NV entry). Returns true when the slot turned clean.
 */
export function destageDone(slot: u32, ok: bool, errorSector: u32, retryNs: f64, nvIdValue: u32): bool {
  const d = dir(slot);
  slotClearFlags(slot, F_DESTAGING);
  let clean = false;
  if (ok) {
    slotClearFlags(slot, F_VERDICTS);
    memory.fill(d + DIR_DESTAGING, 0, 16);
    if ((load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DIRTY + 8)) == 0) {
      listMove(slot, LIST_CLEAN);
      volDirtyAdd(load<u32>(d + DIR_VOLUME), -1);
      clearUrgent(slot);
      clean = true;
    }
  } else {
    store<u64>(d + DIR_DIRTY, load<u64>(d + DIR_DIRTY) | load<u64>(d + DIR_DESTAGING));
    store<u64>(d + DIR_DIRTY + 8, load<u64>(d + DIR_DIRTY + 8) | load<u64>(d + DIR_DESTAGING + 8));
    memory.fill(d + DIR_DESTAGING, 0, 16);
    store<u32>(d + DIR_ERROR_SECTOR, errorSector);
    store<f64>(d + DIR_RETRY_NS, retryNs);
  }
  persistDescriptor(slot, nvIdValue);
  bumpEvent();
  return clean;
}

// ---- Write-through urgency (FUA) ------------------------------------------------------------------

/**
 * Marks the dirty slots of `volume` in [firstSlot, lastSlot] F_URGENT: the disk IOP destages them
 * at its next scan whatever their age, and leaves the rest of the dirty list alone. The mark goes
 * when the slot turns clean (or is dropped), so a failed destage keeps it for the retry. Their
 * last destage verdicts are withdrawn: the flush counts only the outcome of a new try.
 */
export function markUrgent(volume: u32, firstSlot: u32, lastSlot: u32): void {
  for (let n = firstSlot; n <= lastSlot; n++) {
    const i = cacheLookup(volume, n);
    if (i < 0) continue;
    const slot = <u32>i;
    if (load<u8>(dir(slot) + DIR_LIST) != LIST_DIRTY) continue;
    store<f64>(dir(slot) + DIR_VERDICT_NS, 0); // withdrawn: the FUA's flush waits for a fresh one
    if ((slotFlags(slot) & F_URGENT) != 0) continue;
    slotSetFlags(slot, F_URGENT);
    const p = cs() + CS_URGENT;
    store<u32>(p, load<u32>(p) + 1);
  }
}

function clearUrgent(slot: u32): void {
  if ((slotFlags(slot) & F_URGENT) == 0) return;
  slotClearFlags(slot, F_URGENT);
  const p = cs() + CS_URGENT;
  store<u32>(p, load<u32>(p) - 1);
}

/** Slots marked F_URGENT and not clean yet. */
export function urgentSlots(): u32 { return load<u32>(cs() + CS_URGENT); }

// ---- Counters -----------------------------------------------------------------------------------

export function bumpEvent(): void { const p = cs() + CS_EVENT; store<u32>(p, load<u32>(p) + 1); }
export function cacheEvent(): u32 { return load<u32>(cs() + CS_EVENT); }

export function flushSeq(): u64 { return load<u64>(cs() + CS_FLUSH_SEQ); }
export function raiseFlushSeq(seq: u64): void {
  const p = cs() + CS_FLUSH_SEQ;
  if (seq > load<u64>(p)) store<u64>(p, seq);
}

export function cacheCount(counter: u32): void { const p = cs() + counter; store<u64>(p, load<u64>(p) + 1); }
export function cacheCounter(counter: u32): u64 { return load<u64>(cs() + counter); }

function volDirtyAdd(volume: u32, n: i32): void {
  if (volume >= MAX_VOLUMES) return;
  const p = cs() + CS_VOL_DIRTY + (volume << 2);
  store<u32>(p, <u32>(<i32>load<u32>(p) + n));
}

export function volumeDirtySlots(volume: u32): u32 {
  return volume < MAX_VOLUMES ? load<u32>(cs() + CS_VOL_DIRTY + (volume << 2)) : 0;
}

export function dirtyCountAll(): u32 { return listCount(LIST_DIRTY); }

export function pinnedCount(): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < slotCount(); i++) if (load<u16>(dir(i) + DIR_PINS) != 0) n++;
  return n;
}

/**
 * Is there dirty data of `volume` (all volumes when NO_VOLUME) in slots [firstSlot, lastSlot]
 * that was dirtied at or before `seq`? Also reports a failed destage among them: returns 0 none,
 * 1 still dirty, 2 a destage of such a slot failed (write error), 3 its medium is dead, 4 the NV
 * file could not take its chunk's init map mark.
 */
export function dirtyAtOrBefore(volume: u32, firstSlot: u32, lastSlot: u32, seq: u64): u32 {
  const i = oldestDirty(volume, firstSlot, lastSlot, seq);
  if (i < 0) return 0;
  const f = slotFlags(<u32>i);
  if ((f & F_NOT_READY) != 0) return 3;
  if ((f & F_WRITE_ERROR) != 0) return 2;
  if ((f & F_NV_FAILED) != 0) return 4;
  return 1;
}

/**
 * The oldest dirty slot of `volume` (or ANY_VOLUME) in [firstSlot, lastSlot] dirtied at or before
 * `seq`, or -1: what a flush of that range waits for first.
 */
export function oldestDirty(volume: u32, firstSlot: u32, lastSlot: u32, seq: u64): i32 {
  let i = listFirst(LIST_DIRTY);
  while (i >= 0) {
    const d = dir(<u32>i);
    if (load<u64>(d + DIR_DIRTY_SEQ) > seq) return -1;
    const v = load<u32>(d + DIR_VOLUME);
    const n = load<u32>(d + DIR_SLOT_NO);
    if ((volume == NO_VOLUME || v == volume) && n >= firstSlot && n <= lastSlot) return i;
    i = listNext(<u32>i);
  }
  return -1;
}

export const ANY_VOLUME: u32 = NO_VOLUME;

// ---- Volume fences: a volume being deleted (scsi/mgmt.ts) ----------------------------------------
// A fenced volume takes no new command (LOGICAL UNIT NOT SUPPORTED), and each channel IOP aborts
// the commands of it that it has in flight (a WRITE waiting for its data-out included) and says so
// by setting its bit; the delete goes on once every channel IOP has, so nothing of the volume can
// reach the cache after its slots are dropped.

const FENCE_ON: u32 = 0x80000000;

export function fenceVolume(v: u32): void {
  store<u32>(cs() + CS_FENCE + (v << 2), FENCE_ON);
  const g = cs() + CS_FENCE_GEN;
  store<u32>(g, load<u32>(g) + 1);
}
export function unfenceVolume(v: u32): void { store<u32>(cs() + CS_FENCE + (v << 2), 0); }
// @ts-ignore: decorator
@inline export function volumeFenced(v: u32): bool { return v < MAX_VOLUMES && (load<u32>(cs() + CS_FENCE + (v << 2)) & FENCE_ON) != 0; }
export function fenceGeneration(): u32 { return load<u32>(cs() + CS_FENCE_GEN); }
/** Channel IOP `iop` has no command of fenced volume v left. */
export function fenceAck(v: u32, iop: u32): void { const p = cs() + CS_FENCE + (v << 2); store<u32>(p, load<u32>(p) | (1 << iop)); }
export function fenceAcked(v: u32, iop: u32): bool { return (load<u32>(cs() + CS_FENCE + (v << 2)) & (1 << iop)) != 0; }
/** Every IOP in `mask` has purged fenced volume v? */
export function fenceComplete(v: u32, mask: u32): bool { return (load<u32>(cs() + CS_FENCE + (v << 2)) & mask) == mask; }

// ---- Invariants (docs/hal.md, "Assertions") -------------------------------------------------------

/**
 * Checks the whole directory: every slot on exactly one list and the lists' links and counts
 * consistent, every slot with an identity in its hash chain and found there, no slot without one
 * hashed, dirty slots (and only they) counted per volume, the urgent count. O(slots): the debug
 * image runs it every DIR_CHECK_POLLS polls of the disk IOP, after recovery and when a control
 * request completes; a failure aborts the IOP with this file and line.
 */
export function cacheCheck(): void {
  const slots = slotCount();
  let seen: u32 = 0;
  for (let list: u32 = LIST_FREE; list <= LIST_HELD; list++) {
    const l = cs() + listOffset(list);
    let n: u32 = 0;
    let prev: u32 = 0;
    let i = load<u32>(l);
    while (i != 0) {
      assert(i <= slots && n < slots, "cache: a list runs past the slots (a cycle or a bad link)");
      const d = dir(i - 1);
      assert(<u32>load<u8>(d + DIR_LIST) == list, "cache: a slot is on a list its entry does not name");
      assert(load<u32>(d + DIR_PREV) == prev, "cache: a list's back link is wrong");
      prev = i;
      i = load<u32>(d + DIR_NEXT);
      n++;
    }
    assert(load<u32>(l + 4) == prev, "cache: a list's tail is not its last slot");
    assert(load<u32>(l + 8) == n, "cache: a list's count differs from its length");
    seen += n;
  }
  assert(seen == slots, "cache: not every slot is on exactly one list");
  let urgent: u32 = 0;
  for (let i: u32 = 0; i < slots; i++) {
    const d = dir(i);
    const v = load<u32>(d + DIR_VOLUME);
    if (v == NO_VOLUME) {
      const list = load<u8>(d + DIR_LIST);
      assert(list == <u8>LIST_FREE || (list == <u8>LIST_HELD && load<u16>(d + DIR_PINS) == 1), "cache: a slot without identity is neither free nor held by one copy");
      continue;
    }
    assert(cacheLookup(v, load<u32>(d + DIR_SLOT_NO)) == <i32>i, "cache: a slot is not found through its hash chain");
    for (let w: u32 = 0; w < 16; w += 8) {
      const valid = load<u64>(d + DIR_VALID + w);
      const pending = load<u64>(d + DIR_DIRTY + w) | load<u64>(d + DIR_DESTAGING + w);
      assert((pending & ~valid) == 0, "cache: dirty or destaging sectors that are not valid");
      assert((load<u64>(d + DIR_POISON + w) & valid) == 0, "cache: a poisoned sector is also valid");
      if (load<u8>(d + DIR_LIST) == <u8>LIST_CLEAN) assert(pending == 0, "cache: a clean slot holds dirty sectors");
    }
    if ((load<u8>(d + DIR_FLAGS) & <u8>F_URGENT) != 0) urgent++;
  }
  assert(urgent == load<u32>(cs() + CS_URGENT), "cache: the urgent count differs from the marked slots");
  let dirty: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) dirty += load<u32>(cs() + CS_VOL_DIRTY + (v << 2));
  assert(dirty == listCount(LIST_DIRTY), "cache: per-volume dirty counts do not add up to the dirty list");
}

export const DIR_CHECK_POLLS: u32 = 64;
