// The pair table (document 001, FIG. 2: source and target volume numbers 512/513, pair volume
// difference information 514, pair state of the source 516 and of the target 517).
//
// Model. A pair joins a source and a target volume of one array. Its record lives in NV memory in two
// copies (the newer whole one counts, CRC-32C sealed, like slot descriptors), and a working copy in
// common memory that every IOP reads; a change is made in the working copy and persisted into the
// copy the last persist did not use, so a torn write leaves the previous record whole.
//
// Difference information is three bitmaps per pair in NV memory, one bit per track (64 KiB by
// default, a power of two from 64 KiB to 1 MiB, set at create):
//   PENDING  tracks the target (the source, in reverse) lacks: the copy runs from it. At a split it
//            holds the tracks not yet reflected at that instant, which the update copy goes on with.
//   SOURCE   tracks written on the source since the split;
//   TARGET   tracks written on the target since the split. A resync copies PENDING | SOURCE | TARGET.
// A bit is set and persisted before the write that needs it is acknowledged — before that write's
// data even enters the NV ring, so a crash can never bring back data the bitmap does not cover
// (md's write-intent rule) — and cleared only once the copy is in NV (the target cache, which is
// durable). Bitmaps carry no CRC: a torn write of a word mixes old and new bytes, and both hold
// every bit set before it; a clear that tears leaves a bit set, which costs one more copy.
import { MAP_ADDR, MAX_VOLUMES } from "../abi";
import {
  nvBase, nvPersistRange, seal, loadNewerCopy, MAX_PAIRS, PAIR_RECORD_BYTES, PAIR_BITMAPS,
  PAIR_BITMAP_BYTES, PAIR_OFFSET, PAIR_BITMAPS_OFFSET, PAIRS_BYTES, nvId, NVK_NONE,
} from "../nv";
import { log, LOG_WARN } from "../hal";
import { bitmapTest, bitmapFindNextSet, bitmapCount, bitmapOr, bitmapSetRange, bitmapClearRange } from "../kernels/bitmap";

// Pair states (001: (1)-(5)), plus reverse resync and suspended on error. Per side too (516, 517).
export const PS_SIMPLEX: u32 = 0;
export const PS_DUPLEX_PENDING: u32 = 1;
export const PS_DUPLEX: u32 = 2;
export const PS_SPLIT_PENDING: u32 = 3;
export const PS_SPLIT: u32 = 4;
export const PS_REVERSE: u32 = 5;
export const PS_SUSPENDED: u32 = 6;

export const BM_PENDING: u32 = 0;
export const BM_SOURCE: u32 = 1;
export const BM_TARGET: u32 = 2;

export const PF_TARGET_READ_ONLY: u32 = 1; // 004: the target is read-only for the duration of a backup

// Why a pair was suspended (PairRecord.reason).
export const PR_NONE: u32 = 0;
export const PR_SOURCE_NOT_READY: u32 = 1;
export const PR_TARGET_NOT_READY: u32 = 2;
export const PR_READ_ERROR: u32 = 3;
export const PR_NV_ERROR: u32 = 4;
// A medium under the volume stayed "becoming ready" (its label not yet read: at boot, or back from
// the dead) for longer than the copy waits for it (pair/copy.ts READY_WAIT_NS).
export const PR_SOURCE_NOT_READY_IN_TIME: u32 = 5;
export const PR_TARGET_NOT_READY_IN_TIME: u32 = 6;

export const TRACK_SHIFT_MIN: u32 = 16;
export const TRACK_SHIFT_MAX: u32 = 20;
export const PAIR_MAX_TRACKS: u32 = PAIR_BITMAP_BYTES * 8;
const REC_CRC: u32 = PAIR_RECORD_BYTES - 4;

/** A pair record: the working copy in common memory and each NV copy have this layout. */
@unmanaged export class PairRecord {
  used: u8; // 1: a pair; 0: simplex (free)
  state: u8; // PS_*: the pair's state (the target's side, 517, when the two differ)
  sourceState: u8; // PS_*: 516
  targetState: u8; // PS_*: 517
  trackShift: u8; // a track is 1 << trackShift bytes
  flags: u8; // PF_*
  reason: u8; // PR_*: why it is suspended
  reserved: u8;
  source: u16;
  target: u16;
  tracks: u32; // tracks of the source volume
  gen: u32; // NV copy generation: copy gen & 1, the newer whole copy counts
  serial: u32; // bumped at create and delete: a copy started for an older pair is dropped
  splitAtNs: f64; // when the last split was answered (virtual time)
}

// Volatile pair state (layout time): working records, runtime, copy jobs, volume map.
export const RUNTIME_BYTES: u32 = 256;
export const URGENT_MAX: u32 = 32;
export const COPY_JOBS: u32 = 8;
export const JOB_BYTES: u32 = 64;
const ENGINE_BYTES: u32 = 64;
/** Firmware-private map field: the volatile pair state. */
const MAPX_PAIRS: u32 = 128; // (120 and 124 are the tape element table's, abi.ts)

/** What the copy engine and the status command keep per pair (not persisted). */
@unmanaged export class PairRuntime {
  cursor: u32; // the next track the background copy looks at
  jobs: u32; // copy jobs in flight
  priorityFirst: u32; // embodiment 1: tracks [first, end) are copied before any other
  priorityEnd: u32;
  urgentCount: u32; // tracks a waiting host write needs first (the list follows the fields)
  waitingReady: u32; // 1: the copy waits for a volume becoming ready, since readySinceNs

  copiedTracks: u64; // tracks copied since the pair was created
  copiedBytes: u64;
  copyNs: f64; // sum of the copy time of those tracks (the estimate divides by it)
  copyStartNs: f64; // start of the current busy period of the copy
  busyNs: f64; // copy time while there was work, since create
  readySinceNs: f64; // when the copy began to wait for a volume becoming ready (waitingReady)
}
const RT_URGENT: u32 = <u32>offsetof<PairRuntime>(); // URGENT_MAX u32 track numbers

export function pairStateBytes(): usize {
  return <usize>MAX_PAIRS * (PAIR_RECORD_BYTES + RUNTIME_BYTES) + <usize>COPY_JOBS * JOB_BYTES + ENGINE_BYTES + MAX_VOLUMES;
}

export function pairLayout(at: usize): void { store<u32>(MAP_ADDR + MAPX_PAIRS, <u32>at); }

// @ts-ignore: decorator
@inline function base(): usize { return load<u32>(MAP_ADDR + MAPX_PAIRS); }
// @ts-ignore: decorator
@inline export function recordAt(p: u32): usize { return base() + <usize>p * PAIR_RECORD_BYTES; }
// @ts-ignore: decorator
@inline export function rec(p: u32): PairRecord { return changetype<PairRecord>(recordAt(p)); }
// @ts-ignore: decorator
@inline export function runtimeAt(p: u32): usize { return base() + <usize>MAX_PAIRS * PAIR_RECORD_BYTES + <usize>p * RUNTIME_BYTES; }
// @ts-ignore: decorator
@inline export function runtime(p: u32): PairRuntime { return changetype<PairRuntime>(runtimeAt(p)); }
// @ts-ignore: decorator
@inline export function jobAt(j: u32): usize {
  return base() + <usize>MAX_PAIRS * (PAIR_RECORD_BYTES + RUNTIME_BYTES) + <usize>j * JOB_BYTES;
}
// @ts-ignore: decorator
@inline export function engineAt(): usize { return jobAt(COPY_JOBS); }
// @ts-ignore: decorator
@inline function volumeMap(): usize { return engineAt() + ENGINE_BYTES; }
// @ts-ignore: decorator
@inline function nvCopy(p: u32, copy: u32): usize { return nvBase() + PAIR_OFFSET + (<usize>p * 2 + copy) * PAIR_RECORD_BYTES; }

/** Difference bitmap `which` (BM_*) of pair p, in NV memory. */
// @ts-ignore: decorator
@inline export function bitmap(p: u32, which: u32): usize {
  return nvBase() + PAIR_BITMAPS_OFFSET + (<usize>p * PAIR_BITMAPS + which) * PAIR_BITMAP_BYTES;
}

export function pairInUse(p: u32): bool { return p < MAX_PAIRS && rec(p).used != 0; }

/** The pair volume v belongs to, or -1. */
export function pairOfVolume(v: u32): i32 {
  if (v >= MAX_VOLUMES) return -1;
  return <i32>load<u8>(volumeMap() + v) - 1;
}

/** Is v the target of pair p (else its source)? */
export function isTarget(p: u32, v: u32): bool { return <u32>rec(p).target == v; }

function mapVolumes(): void {
  memory.fill(volumeMap(), 0, MAX_VOLUMES);
  for (let p: u32 = 0; p < MAX_PAIRS; p++) {
    if (!pairInUse(p)) continue;
    store<u8>(volumeMap() + rec(p).source, <u8>(p + 1));
    store<u8>(volumeMap() + rec(p).target, <u8>(p + 1));
  }
}

/** Sets state and side states (they are equal but for the split pending of 001: source split). */
export function setState(p: u32, st: u32): void {
  const r = rec(p);
  r.state = <u8>st;
  r.targetState = <u8>st;
  r.sourceState = <u8>(st == PS_SPLIT_PENDING ? PS_SPLIT : st);
}

/** Persists pair p's working record into its other NV copy. Needs 1 free NV entry. */
export function pairPersist(p: u32, id: u32): bool {
  const r = rec(p);
  r.gen = r.gen + 1;
  const copy = nvCopy(p, r.gen & 1);
  memory.copy(copy, recordAt(p), PAIR_RECORD_BYTES);
  seal(copy, REC_CRC);
  mapVolumes();
  return nvPersistRange(copy, PAIR_RECORD_BYTES, id);
}

/** Persists the 8-byte word of `which` holding track t (after a set or clear). Needs 1 NV entry. */
export function persistBit(p: u32, which: u32, t: u32, id: u32): bool {
  return nvPersistRange(bitmap(p, which) + (<usize>(t >> 6) << 3), 8, id);
}

/** Persists the whole of bitmap `which` (create, resync). Needs 1 NV entry. */
export function persistBitmap(p: u32, which: u32, id: u32): bool {
  return nvPersistRange(bitmap(p, which), PAIR_BITMAP_BYTES, id);
}

// @ts-ignore: decorator
@inline export function bitSet(p: u32, which: u32, t: u32): bool {
  return bitmapTest(bitmap(p, which), <u64>rec(p).tracks, <u64>t) > 0;
}

export function bitsCount(p: u32, which: u32): u32 {
  const n = bitmapCount(bitmap(p, which), <u64>rec(p).tracks, 0, <u64>rec(p).tracks);
  return n < 0 ? 0 : <u32>n;
}

/** First set track of `which` in [from, end), or `end`. */
export function nextSet(p: u32, which: u32, from: u32, end: u32): u32 {
  if (from >= end) return end;
  const n = bitmapFindNextSet(bitmap(p, which), <u64>end, <u64>from);
  return n < 0 || n >= <i64>end ? end : <u32>n;
}

/**
 * PENDING |= SOURCE | TARGET, then SOURCE and TARGET empty, all three persisted (resync, reverse,
 * suspend): what either side changed since the split is copied. Needs 3 NV entries. The bitmaps go
 * to the NV ring before the record that names the new state: a crash between them leaves the old
 * state with the union in PENDING, which the next resync takes as it is.
 */
export function mergeDifferences(p: u32, id: u32): void {
  const n = <u64>rec(p).tracks;
  bitmapOr(bitmap(p, BM_PENDING), bitmap(p, BM_PENDING), bitmap(p, BM_SOURCE), n);
  bitmapOr(bitmap(p, BM_PENDING), bitmap(p, BM_PENDING), bitmap(p, BM_TARGET), n);
  bitmapClearRange(bitmap(p, BM_SOURCE), n, 0, n);
  bitmapClearRange(bitmap(p, BM_TARGET), n, 0, n);
  persistBitmap(p, BM_PENDING, id);
  persistBitmap(p, BM_SOURCE, id);
  persistBitmap(p, BM_TARGET, id);
}

/** Sets track t of bitmap `which` (it stays set until a copy or a merge clears it). */
export function setBit(p: u32, which: u32, t: u32): void { bitmapSetRange(bitmap(p, which), <u64>rec(p).tracks, <u64>t, 1); }

/** Every track PENDING, SOURCE and TARGET empty (create), all persisted. Needs 3 NV entries. */
export function allPending(p: u32, id: u32): void {
  const n = <u64>rec(p).tracks;
  memory.fill(bitmap(p, BM_PENDING), 0, PAIR_BITMAP_BYTES);
  memory.fill(bitmap(p, BM_SOURCE), 0, PAIR_BITMAP_BYTES);
  memory.fill(bitmap(p, BM_TARGET), 0, PAIR_BITMAP_BYTES);
  bitmapSetRange(bitmap(p, BM_PENDING), n, 0, n);
  persistBitmap(p, BM_PENDING, id);
  persistBitmap(p, BM_SOURCE, id);
  persistBitmap(p, BM_TARGET, id);
}

/** Slots (64 KiB) per track of pair p. */
// @ts-ignore: decorator
@inline export function slotsPerTrack(p: u32): u32 { return 1 << (<u32>rec(p).trackShift - 16); }
/** The track of pair p that holds volume slot slotNo. */
// @ts-ignore: decorator
@inline export function trackOfSlot(p: u32, slotNo: u32): u32 { return slotNo >> (<u32>rec(p).trackShift - 16); }

/** Urgent tracks: a host write waits for them (copy before write, 004). */
export function urgentAdd(p: u32, t: u32): void {
  const rt = runtime(p);
  const list = runtimeAt(p) + RT_URGENT;
  for (let i: u32 = 0; i < rt.urgentCount; i++) if (load<u32>(list + (i << 2)) == t) return;
  if (rt.urgentCount >= URGENT_MAX) return; // full: the background order reaches it anyway
  store<u32>(list + (rt.urgentCount << 2), t);
  rt.urgentCount = rt.urgentCount + 1;
}

/** Takes the oldest urgent track, or -1. */
export function urgentTake(p: u32): i32 {
  const rt = runtime(p);
  if (rt.urgentCount == 0) return -1;
  const list = runtimeAt(p) + RT_URGENT;
  const t = load<u32>(list);
  memory.copy(list, list + 4, (rt.urgentCount - 1) << 2);
  rt.urgentCount = rt.urgentCount - 1;
  return <i32>t;
}

/** Frees pair p's working record and runtime (the caller persists). */
export function pairClear(p: u32): void {
  const serial = rec(p).serial;
  const gen = rec(p).gen;
  memory.fill(recordAt(p), 0, PAIR_RECORD_BYTES);
  memory.fill(runtimeAt(p), 0, RUNTIME_BYTES);
  rec(p).serial = serial + 1;
  rec(p).gen = gen;
}

// ---- Boot ----------------------------------------------------------------------------------------

/** A blank pair region (a new image, or one from before pairs): persisted empty. */
export function pairsFormat(): void {
  memory.fill(nvBase() + PAIR_OFFSET, 0, PAIRS_BYTES);
  nvPersistRange(nvBase() + PAIR_OFFSET, PAIRS_BYTES, nvId(NVK_NONE, 0));
}

/**
 * Loads every pair's newer whole NV copy into its working record; a record neither copy of which is
 * whole was torn at its creation (never acknowledged) and is dropped, and said so. Runtime and jobs
 * start empty: the background copy picks up from the bitmaps.
 */
export function pairsBoot(): u32 {
  memory.fill(base(), 0, pairStateBytes());
  let n: u32 = 0;
  for (let p: u32 = 0; p < MAX_PAIRS; p++) {
    // The newer whole copy counts, in use or not: a delete is persisted as a whole record with used 0.
    const got = loadNewerCopy(nvCopy(p, 0), nvCopy(p, 1), PAIR_RECORD_BYTES, offsetof<PairRecord>("gen"), recordAt(p));
    if (got < 0) log(LOG_WARN, "pair: a pair record failed its CRC in both copies and was dropped (pair)", p, 0);
    if (got <= 0) continue;
    if (rec(p).used == 0) { pairClear(p); continue; } // pairClear keeps the generation
    n++;
  }
  mapVolumes();
  return n;
}
