// Vendor-unique pair commands of the command device (docs/scsi.md, "Volume pairs"): create, split,
// resync, reverse resync, delete, the target's read-only attribute, a priority copy of a range, and
// the pair status list. Each change is made in the working pair record, persisted (bitmaps first,
// then the record) and answered once every NV write has completed.
//
// Split is one record write whatever the pending difference (001: the source reads "pair split" at
// once, the target "split pending" while the update copy of what was pending goes on): its latency
// does not grow with the difference, which test/scenario/001-pairs.test.ts and bench pairs measure.
import { MAX_VOLUMES } from "../abi";
import { CX_ID, CX_ARG, CX_DEADLINE_NS, ctxField } from "../ctx";
import { fail, good, dataInBuffer, sendBuffer, waitPersisted, nvPending, retryLater } from "../sequencer";
import { gNow, wakeAt } from "../iop";
import { nvRoom, nvId, NVK_CONTEXT, MAX_PAIRS, volumeEntry } from "../nv";
import { bumpEvent } from "../cache";
import { volumeInUse, blockSize, capacityBlocks, volumeThin, VOLE_CHUNKS } from "../volume";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "../util";
import {
  rec, runtime, pairInUse, pairOfVolume, setState, pairPersist, pairClear, mergeDifferences, allPending, bitsCount,
  nextSet, PS_DUPLEX_PENDING, PS_DUPLEX, PS_SPLIT_PENDING, PS_SPLIT, PS_REVERSE, PS_SUSPENDED, BM_PENDING, BM_SOURCE,
  BM_TARGET, PF_TARGET_READ_ONLY, TRACK_SHIFT_MIN, TRACK_SHIFT_MAX, PAIR_MAX_TRACKS,
} from "../pair/table";
import { pairTargetReadOnly } from "../pair/io";
import { pairBackedUp } from "../xcopy/table";

export const SA_PAIR_CREATE: u32 = 0x07;
export const SA_PAIR_SPLIT: u32 = 0x08;
export const SA_PAIR_RESYNC: u32 = 0x09;
export const SA_PAIR_REVERSE: u32 = 0x0A;
export const SA_PAIR_DELETE: u32 = 0x0B;
export const SA_PAIR_ATTRIBUTE: u32 = 0x0C;
export const SA_PAIR_COPY_RANGE: u32 = 0x0D;
export const SA_PAIR_STATUS: u32 = 0x17;
export const PAIR_CREATE_LIST_BYTES: u32 = 16;
export const PAIR_RANGE_LIST_BYTES: u32 = 16;
const STATUS_ENTRY_BYTES: u32 = 64;
/** COPY RANGE with WAIT gives up after this (ABORTED COMMAND, 85h/06h), naming what it waited for. */
const RANGE_WAIT_NS: f64 = 60e9;

// Vendor ASCQs under ASC 85h (ILLEGAL REQUEST unless said).
const PE_NO_PAIR: u32 = 0x00; // the volume is in no pair
const PE_IN_PAIR: u32 = 0x01; // CREATE: a volume is in a pair already
const PE_STATE: u32 = 0x02; // the pair's state does not allow this transition
const PE_TABLE_FULL: u32 = 0x03;
const PE_MISMATCH: u32 = 0x04; // block sizes differ, or the target is smaller than the source
const PE_TRACKS: u32 = 0x05; // the track size is not a power of two in 64 KiB..1 MiB, or too small for the volume
// 0x06: a wait for a pair copy did not end in time (ABORTED COMMAND): sequencer.ts and COPY RANGE

function pairError(c: usize, ascq: u32, field: i32, inCdb: bool): void {
  fail(c, 0x05, 0x85, ascq);
  if (field >= 0) ctxField(c, inCdb, <u32>field, -1);
}

function persistRecord(c: usize, p: u32): void {
  if (pairPersist(p, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)))) nvPending(c, 1);
}

/** The pair named by volume v (either side), or -1 after answering NO SUCH PAIR. */
function pairNamed(c: usize, v: u32): i32 {
  const p = v < MAX_VOLUMES ? pairOfVolume(v) : -1;
  if (p < 0) pairError(c, PE_NO_PAIR, 2, true);
  return p;
}

// ---- OUT ------------------------------------------------------------------------------------------

/** 06h: source, target, track size: duplex pending (001 (2)), the creation copy starts. */
export function pairCreate(c: usize, list: usize): void {
  if (!nvRoom(4)) { retryLater(c); return; }
  const s = getBe16(list);
  const t = getBe16(list + 2);
  const kib = getBe32(list + 4);
  if (!volumeInUse(s) || !volumeInUse(t) || s == t) { fail(c, 0x05, 0x80, 0x02); ctxField(c, false, volumeInUse(s) ? 2 : 0, -1); return; }
  if (pairOfVolume(s) >= 0 || pairOfVolume(t) >= 0) { pairError(c, PE_IN_PAIR, pairOfVolume(s) >= 0 ? 0 : 2, false); return; }
  if (blockSize(s) != blockSize(t) || capacityBlocks(t) < capacityBlocks(s)) { pairError(c, PE_MISMATCH, 2, false); return; }
  // A thin volume takes its chunks as writes reach them; the pair copy writes whole tracks and could
  // not be refused space midway: pairs are made of thick volumes only.
  if (volumeThin(s) || volumeThin(t)) { pairError(c, PE_MISMATCH, volumeThin(s) ? 0 : 2, false); return; }
  const bytes = kib == 0 ? <u32>65536 : kib << 10;
  const shift = <u32>ctz(bytes);
  const chunks = load<u32>(volumeEntry(s) + VOLE_CHUNKS);
  const spt: u32 = 1 << (shift - 16);
  if (kib > 1024 || (bytes & (bytes - 1)) != 0 || shift < TRACK_SHIFT_MIN || shift > TRACK_SHIFT_MAX
    || (chunks + spt - 1) / spt > PAIR_MAX_TRACKS) { pairError(c, PE_TRACKS, 4, false); return; }
  let p: i32 = -1;
  for (let i: u32 = 0; i < MAX_PAIRS; i++) if (!pairInUse(i)) { p = <i32>i; break; }
  if (p < 0) { pairError(c, PE_TABLE_FULL, -1, false); return; }
  const q = <u32>p;
  pairClear(q);
  const r = rec(q);
  r.used = 1;
  r.source = <u16>s;
  r.target = <u16>t;
  r.trackShift = <u8>shift;
  r.tracks = (chunks + spt - 1) / spt;
  setState(q, PS_DUPLEX_PENDING);
  allPending(q, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)));
  nvPending(c, 3);
  persistRecord(c, q);
  bumpEvent();
  waitPersisted(c);
}

/**
 * 07h SPLIT (001 FIG. 4 steps 2-3): the source's state becomes "pair split" and the target's "split
 * pending" in one record write, answered when it is in NV; the update copy of what was pending goes
 * on in the background. From duplex or duplex pending (004: the data need not be copied yet).
 */
export function pairSplit(c: usize, v: u32): void {
  const p = pairNamed(c, v);
  if (p < 0) return;
  const st = <u32>rec(<u32>p).state;
  if (st != PS_DUPLEX && st != PS_DUPLEX_PENDING) { pairError(c, PE_STATE, 2, true); return; }
  if (!nvRoom(1)) { retryLater(c); return; }
  setState(<u32>p, PS_SPLIT_PENDING); // the disk IOP makes it split once nothing is pending
  rec(<u32>p).splitAtNs = gNow;
  persistRecord(c, <u32>p);
  bumpEvent();
  waitPersisted(c);
}

/** 08h RESYNC, 09h REVERSE: copies only the tracks written on either side since the split. */
export function pairResync(c: usize, v: u32, reverse: bool): void {
  const p = pairNamed(c, v);
  if (p < 0) return;
  const q = <u32>p;
  const st = <u32>rec(q).state;
  const ok = reverse ? st == PS_SPLIT : st == PS_SPLIT || st == PS_SPLIT_PENDING || st == PS_SUSPENDED;
  // 004: a backup of the pair reads the target (the split image): no resync overwrites it until the backup ends.
  if (!ok || pairBackedUp(q)) { pairError(c, PE_STATE, 2, true); return; }
  if (!nvRoom(4)) { retryLater(c); return; }
  mergeDifferences(q, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)));
  nvPending(c, 3);
  setState(q, reverse ? PS_REVERSE : PS_DUPLEX_PENDING);
  rec(q).reason = 0;
  const rt = runtime(q);
  rt.cursor = 0;
  rt.priorityFirst = 0;
  rt.priorityEnd = 0;
  persistRecord(c, q);
  bumpEvent();
  waitPersisted(c);
}

/**
 * 0Ah DELETE from any state: the record goes (simplex) at once; a copy in flight finds its pair gone
 * (serial) and ends without touching anything, so nothing waits for it. The target keeps its data.
 */
export function pairDelete(c: usize, v: u32): void {
  const p = pairNamed(c, v);
  if (p < 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  pairClear(<u32>p);
  persistRecord(c, <u32>p);
  bumpEvent(); // writes waiting for a copy look again: the pair is gone
  waitPersisted(c);
}

/** 0Bh: flags bit 0 sets (1) or clears (0) the target's read-only attribute (004). */
export function pairAttribute(c: usize, v: u32, flags: u32): void {
  const p = pairNamed(c, v);
  if (p < 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  const r = rec(<u32>p);
  r.flags = <u8>((flags & 1) != 0 ? (<u32>r.flags | PF_TARGET_READ_ONLY) : (<u32>r.flags & ~PF_TARGET_READ_ONLY));
  persistRecord(c, <u32>p);
  waitPersisted(c);
}

/**
 * 0Ch COPY RANGE (001, embodiment 1): the pending tracks of [lba, lba + blocks) of the source are
 * copied before any other; with WAIT (flags bit 0, embodiment 2) GOOD comes once all of them are
 * reflected on the target, else at once.
 */
export function pairCopyRange(c: usize, v: u32, list: usize, wait: bool): void {
  const p = pairNamed(c, v);
  if (p < 0) return;
  const q = <u32>p;
  const r = rec(q);
  const lba = getBe64(list);
  const blocks = getBe64(list + 8);
  const cap = capacityBlocks(<u32>r.source);
  if (lba > cap || blocks > cap - lba) { fail(c, 0x05, 0x21, 0x00); ctxField(c, false, 0, -1); return; }
  const bs = <u64>blockSize(<u32>r.source);
  const first = <u32>((lba * bs) >> <u64>r.trackShift);
  const end = blocks == 0 ? first : <u32>(((lba + blocks) * bs + (<u64>1 << <u64>r.trackShift) - 1) >> <u64>r.trackShift);
  if (load<u32>(c + CX_ARG) == 0) {
    const rt = runtime(q);
    rt.priorityFirst = first;
    rt.priorityEnd = min<u32>(end, r.tracks);
    store<u32>(c + CX_ARG, 1);
    store<f64>(c + CX_DEADLINE_NS, gNow + RANGE_WAIT_NS);
  }
  if (!wait || pairRangeReflected(q, first, end)) { good(c); return; }
  const st = <u32>r.state;
  if (st == PS_SUSPENDED || st == PS_SPLIT) { pairError(c, PE_STATE, 2, true); return; } // nothing will copy it
  if (gNow >= load<f64>(c + CX_DEADLINE_NS)) { fail(c, 0x0B, 0x85, 0x06); return; }
  wakeAt(load<f64>(c + CX_DEADLINE_NS));
  retryLater(c);
}

/** Are tracks [first, end) of pair p all reflected (no PENDING bit)? (embodiment 2) */
export function pairRangeReflected(p: u32, first: u32, end: u32): bool {
  const e = min<u32>(end, rec(p).tracks);
  return nextSet(p, BM_PENDING, first, e) >= e;
}

// ---- IN: status -------------------------------------------------------------------------------------

/** 16h PAIR STATUS: one 64-byte entry per pair (docs/scsi.md). */
export function pairStatus(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + MAX_PAIRS * STATUS_ENTRY_BYTES);
  if (d == 0) return;
  let n: u32 = 0;
  for (let p: u32 = 0; p < MAX_PAIRS; p++) {
    if (!pairInUse(p)) continue;
    statusEntry(d + 8 + n * STATUS_ENTRY_BYTES, p);
    n++;
  }
  putBe32(d, n * STATUS_ENTRY_BYTES);
  putBe16(d + 4, STATUS_ENTRY_BYTES);
  putBe16(d + 6, n);
  sendBuffer(c, min<u32>(8 + n * STATUS_ENTRY_BYTES, alloc));
}

function statusEntry(e: usize, p: u32): void {
  const r = rec(p);
  const rt = runtime(p);
  const pending = bitsCount(p, BM_PENDING);
  store<u8>(e, <u8>p);
  store<u8>(e + 1, r.state);
  store<u8>(e + 2, r.sourceState);
  store<u8>(e + 3, r.targetState);
  store<u8>(e + 4, <u8>(<u32>r.flags | (pairTargetReadOnly(p) ? PF_TARGET_READ_ONLY : 0)));
  store<u8>(e + 5, r.reason);
  putBe16(e + 6, 1 << (<u32>r.trackShift - 10));
  putBe16(e + 8, r.source);
  putBe16(e + 10, r.target);
  putBe32(e + 12, r.tracks);
  putBe32(e + 16, pending);
  putBe32(e + 20, bitsCount(p, BM_SOURCE));
  putBe32(e + 24, bitsCount(p, BM_TARGET));
  putBe32(e + 28, rt.jobs);
  putBe64(e + 32, rt.copiedTracks);
  putBe64(e + 40, rt.copiedBytes);
  // Estimate: pending tracks at the average time a track copy has taken so far (unknown before one).
  const perTrack = rt.copiedTracks == 0 ? -1.0 : rt.copyNs / <f64>rt.copiedTracks;
  putBe32(e + 48, pending == 0 ? 0 : perTrack < 0 ? 0xFFFFFFFF : <u32>min<f64>(<f64>pending * perTrack / 1e6, 4294967294.0));
  putBe32(e + 52, r.splitAtNs == 0 ? 0 : <u32>min<f64>((gNow - r.splitAtNs) / 1e6, 4294967295.0));
}
