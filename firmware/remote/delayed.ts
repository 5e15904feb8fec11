// Embodiment 7 of document 003 on the standby storage unit (302): the buffer memory for
// synchronization (323) and the processing sequencer's steps over it (Figs. 24, 26, 27).
//
// Model. A delay write command carries a synchronization ID and an issuing ID (Fig. 22). Its data is
// held here, never written to the medium on arrival (S420-S425). A delay data reflecting command
// for synchronization ID s (sent by the normal system at a restart enabling point, S440/S441) writes
// every held write of s to the medium in issuing-ID order (S460-S468), each block once: where writes
// of one synchronization ID overlap, only the last by issuing ID is written ([0190]/[0191]). On
// failover the writes whose reflecting command has not come are discarded (S480-S485), so the
// medium is always at a restart enabling point.
//
// Bounds and what happens at them. The unit holds `entries` writes of at most `entryBytes` each,
// laid out once at a mapped address (syncLayout). A write is admitted only when its issuing ID is at
// most `entries` past the last reflected one: then every admitted ID finds a free entry (each ID takes
// at most one), and the write that completes a restart interval can never be shut out by later ones.
// Beyond that bound a write is refused with SYNC_FULL, which the caller turns into a status the sender
// sees (docs/remote.md); nothing is dropped silently. Reflecting commands that arrive ahead of their
// turn wait in a list of SYNC_PENDING_MAX (S460); beyond it they are refused the same way, but the
// one whose turn it is is always taken.
//
// The medium is the caller's: syncReflectNext hands out runs of blocks (S464, "registered in the IO
// scheduler"), the caller writes them and reports each with syncWriteDone (S466/S467). Assumes one
// IOP drives a unit (the link unit's channel IOP for the pair).

/** Refusals and answers of syncWriteBegin / syncReflect (negative; an entry index is >= 0). */
export const SYNC_FAILED_OVER: i32 = -1; // the standby has failed over: nothing more is taken from the link
export const SYNC_APPLIED: i32 = -2; // already reflected or superseded: answer GOOD again, hold nothing
export const SYNC_FULL: i32 = -3; // no room: the issuing ID is more than `entries` past the last restart point
export const SYNC_BAD: i32 = -4; // malformed: no data, too long, not whole blocks, or a sync ID already reflected
/** syncReflectComplete: a write of the reflect failed on the medium (the caller answers MEDIUM ERROR). */
export const SYNC_MEDIUM_ERROR: i32 = -5;

export const SYNC_MAGIC: u32 = 0x434E5953; // "SYNC"
export const SYNC_MAX_ENTRIES: u32 = 256; // the arrived-ID bitmap's width
export const SYNC_PENDING_MAX: u32 = 8;
const HEADER_BYTES: u32 = 256;
const PENDING_AT: u32 = 128; // SYNC_PENDING_MAX x (syncId u32, issuingId u32)
const ARRIVED_AT: u32 = 192; // SYNC_MAX_ENTRIES bits, indexed by issuing ID modulo SYNC_MAX_ENTRIES
const ENTRY_HEADER_BYTES: u32 = 40;

// Reflect phases (S460-S468)
export const RP_NONE: u32 = 0;
export const RP_WAITING: u32 = 1; // S461: some write between the last reflect and this one has not arrived
export const RP_WRITING: u32 = 2; // S462-S467: runs handed to the medium

// Entry states
const ES_FREE: u8 = 0;
const ES_RECEIVING: u8 = 1; // S420-S424: data arriving
const ES_HELD: u8 = 2; // S425: all there, waiting for its reflecting command

@unmanaged export class SyncUnit {
  magic: u32;
  entries: u32; // fixed at layout
  entryBytes: u32; // data bytes an entry holds (whole blocks)
  blockBytes: u32;
  lastSync: u32; // S468: the synchronization ID of the reflecting command processed last
  lastIssuing: u32; // ... and its issuing ID
  failedOver: u32; // S480: 1 once the delay data discarding command came
  phase: u32; // RP_*
  reflectSync: u32; // the reflecting command in progress
  reflectIssuing: u32;
  outstanding: u32; // runs handed to the medium, not done
  reflectStatus: u32; // 0, or 1 when a run failed on the medium
  used: u32; // entries not free
  pending: u32; // reflecting commands waiting (S460)
  refused: u32; // counters: writes and reflects refused for lack of room
  superseded: u32; // entries dropped as overwritten within one synchronization ID ([0191])
  discarded: u32; // entries discarded at failover (S482)
  reflects: u32; // reflecting commands completed (S468)
  blocksWritten: u32; // blocks written to the medium by reflects
  blocksSkipped: u32; // blocks not written because a later write of the same sync ID covers them
}

@unmanaged export class SyncEntry {
  state: u8;
  pad0: u8;
  pad1: u16;
  syncId: u32;
  issuingId: u32;
  blocks: u32;
  lba: u64; // first block on the medium
  received: u32; // bytes stored (S424)
  cursor: u32; // blocks considered for the reflect so far (S462/S463)
  outstanding: u32; // runs of this entry at the medium
}

// @ts-ignore: decorator
@inline function unit(u: usize): SyncUnit { return changetype<SyncUnit>(u); }
function stride(u: usize): usize { return <usize>((ENTRY_HEADER_BYTES + unit(u).entryBytes + 7) & ~<u32>7); }
// @ts-ignore: decorator
@inline function entryAt(u: usize, e: u32): usize { return u + HEADER_BYTES + <usize>e * stride(u); }
// @ts-ignore: decorator
@inline function entry(u: usize, e: u32): SyncEntry { return changetype<SyncEntry>(entryAt(u, e)); }

/** Bytes the unit takes in buffer memory. */
export function syncBytes(entries: u32, entryBytes: u32): usize {
  return <usize>HEADER_BYTES + <usize>entries * <usize>((ENTRY_HEADER_BYTES + entryBytes + 7) & ~<u32>7);
}

/**
 * Formats a unit at `u` (syncBytes long) for a pair whose last restart enabling point had
 * synchronization ID baseSync and issuing ID baseIssuing. False when the sizes cannot work.
 */
export function syncLayout(u: usize, entries: u32, entryBytes: u32, blockBytes: u32, baseSync: u32, baseIssuing: u32): bool {
  assert(offsetof<SyncUnit>() <= PENDING_AT && offsetof<SyncEntry>() <= ENTRY_HEADER_BYTES, "delayed: header layout");
  if (entries < 1 || entries > SYNC_MAX_ENTRIES || blockBytes == 0 || entryBytes < blockBytes || entryBytes % blockBytes != 0) return false;
  memory.fill(u, 0, syncBytes(entries, entryBytes));
  const s = unit(u);
  s.magic = SYNC_MAGIC;
  s.entries = entries;
  s.entryBytes = entryBytes;
  s.blockBytes = blockBytes;
  s.lastSync = baseSync;
  s.lastIssuing = baseIssuing;
  return true;
}

export function syncUnit(u: usize): SyncUnit { return unit(u); }
/** Entry e's issuing ID while it is receiving or held, else 0 (the link unit finds DATA's entry by it). */
export function syncEntryIssuing(u: usize, e: u32): u32 { return e < unit(u).entries && entry(u, e).state != ES_FREE ? entry(u, e).issuingId : 0; }
/** Entry e holds all its data (S425): a repeat of its WRITE is answered at once. */
export function syncEntryHeld(u: usize, e: u32): bool { return e < unit(u).entries && entry(u, e).state == ES_HELD; }
/** Entry e's synchronization ID and its bytes (blocks x block size); 0 for a free entry (the trace's identifiers). */
export function syncEntrySync(u: usize, e: u32): u32 { return e < unit(u).entries && entry(u, e).state != ES_FREE ? entry(u, e).syncId : 0; }
export function syncEntryBytes(u: usize, e: u32): u32 { return e < unit(u).entries && entry(u, e).state != ES_FREE ? entry(u, e).blocks * unit(u).blockBytes : 0; }
/** The data area of entry e (the caller's DMA target, S423). */
export function syncData(u: usize, e: u32): usize { return entryAt(u, e) + ENTRY_HEADER_BYTES; }

// ---- Arrival (Fig. 24) ----------------------------------------------------------------------------

function arrived(u: usize, id: u32): bool {
  const bit = id % SYNC_MAX_ENTRIES;
  return (load<u32>(u + ARRIVED_AT + (bit >> 5) * 4) & (<u32>1 << (bit & 31))) != 0;
}
function markArrived(u: usize, id: u32, on: bool): void {
  const bit = id % SYNC_MAX_ENTRIES;
  const w = u + ARRIVED_AT + (bit >> 5) * 4;
  const m = <u32>1 << (bit & 31);
  store<u32>(w, on ? load<u32>(w) | m : load<u32>(w) & ~m);
}

function entryOf(u: usize, issuingId: u32): i32 {
  for (let e: u32 = 0; e < unit(u).entries; e++) {
    if (entry(u, e).state != ES_FREE && entry(u, e).issuingId == issuingId) return <i32>e;
  }
  return -1;
}

/**
 * S420: a delay write command of `bytes` for medium block `lba`. Returns the entry that takes its
 * data (an entry already receiving or holding the same issuing ID is returned again: a repeat), or
 * a refusal SYNC_*.
 */
export function syncWriteBegin(u: usize, syncId: u32, issuingId: u32, lba: u64, bytes: u32): i32 {
  const s = unit(u);
  if (s.failedOver != 0) return SYNC_FAILED_OVER;
  if (issuingId <= s.lastIssuing) return SYNC_APPLIED;
  if (bytes == 0 || bytes > s.entryBytes || bytes % s.blockBytes != 0 || syncId <= s.lastSync) return SYNC_BAD;
  const held = entryOf(u, issuingId);
  if (held >= 0) return held;
  if (arrived(u, issuingId)) return SYNC_APPLIED; // held once, superseded since ([0191])
  if (issuingId - s.lastIssuing > s.entries) { s.refused++; return SYNC_FULL; }
  for (let e: u32 = 0; e < s.entries; e++) {
    const x = entry(u, e);
    if (x.state != ES_FREE) continue;
    x.state = ES_RECEIVING;
    x.syncId = syncId;
    x.issuingId = issuingId;
    x.blocks = bytes / s.blockBytes;
    x.lba = lba;
    x.received = 0;
    x.cursor = 0;
    x.outstanding = 0;
    s.used++;
    return <i32>e;
  }
  s.refused++; // cannot happen while the window holds (one entry per ID); refused all the same
  return SYNC_FULL;
}

/** S422/S423: n bytes of entry e's data at `offset`. False when out of its range or not receiving. */
export function syncWriteData(u: usize, e: u32, offset: u32, src: usize, n: u32): bool {
  if (e >= unit(u).entries) return false;
  const x = entry(u, e);
  if (x.state == ES_HELD) return true; // a repeat of data held already
  if (x.state != ES_RECEIVING || <u64>offset + <u64>n > <u64>x.blocks * <u64>unit(u).blockBytes) return false;
  memory.copy(syncData(u, e) + offset, src, n);
  x.received += n;
  return true;
}

/**
 * S424/S425: all of entry e's data is stored: the write is held, and counted as arrived for S461.
 * Writes of the same synchronization ID that the other wholly covers are deleted here ([0191]).
 * Returns 0 when held, SYNC_BAD when its data is not all there.
 */
export function syncWriteEnd(u: usize, e: u32): i32 {
  const x = entry(u, e);
  if (x.state == ES_HELD) return 0;
  if (x.state != ES_RECEIVING || x.received < x.blocks * unit(u).blockBytes) return SYNC_BAD;
  x.state = ES_HELD;
  markArrived(u, x.issuingId, true);
  for (let o: u32 = 0; o < unit(u).entries; o++) {
    if (o == e) continue;
    const y = entry(u, o);
    if (y.state != ES_HELD || y.syncId != x.syncId || y.cursor != 0) continue;
    if (y.issuingId < x.issuingId && covers(x, y.lba, <u64>y.blocks)) drop(u, o);
    else if (y.issuingId > x.issuingId && covers(y, x.lba, <u64>x.blocks)) { drop(u, e); return 0; }
  }
  return 0;
}

function covers(x: SyncEntry, lba: u64, blocks: u64): bool { return x.lba <= lba && lba + blocks <= x.lba + <u64>x.blocks; }

function drop(u: usize, e: u32): void {
  entry(u, e).state = ES_FREE;
  unit(u).used--;
  unit(u).superseded++;
}

// ---- Reflecting (Fig. 26) ---------------------------------------------------------------------------

/**
 * A delay data reflecting command for synchronization ID syncId with issuing ID issuingId. Returns 0
 * when taken (it runs when its turn comes, S460), SYNC_APPLIED when it was processed already (answer
 * its completion again), or a refusal.
 */
export function syncReflect(u: usize, syncId: u32, issuingId: u32): i32 {
  const s = unit(u);
  if (s.failedOver != 0) return SYNC_FAILED_OVER;
  if (issuingId <= s.lastIssuing || syncId <= s.lastSync) return SYNC_APPLIED;
  if (s.phase != RP_NONE && s.reflectIssuing == issuingId) return 0;
  for (let i: u32 = 0; i < s.pending; i++) if (load<u32>(u + PENDING_AT + i * 8 + 4) == issuingId) return 0;
  // The next one by sync ID starts at once, so reflects waiting ahead of their turn never shut it out.
  if (s.phase == RP_NONE && syncId == s.lastSync + 1) { beginReflect(u, syncId, issuingId); syncStep(u); return 0; }
  if (s.pending >= SYNC_PENDING_MAX || issuingId - s.lastIssuing > s.entries + SYNC_PENDING_MAX) { s.refused++; return SYNC_FULL; }
  store<u32>(u + PENDING_AT + s.pending * 8, syncId);
  store<u32>(u + PENDING_AT + s.pending * 8 + 4, issuingId);
  s.pending++;
  syncStep(u);
  return 0;
}

/** Advances the reflect: S460 (its turn), S461 (all its writes here). Returns the phase (RP_*). */
export function syncStep(u: usize): u32 {
  const s = unit(u);
  if (s.phase == RP_NONE) {
    for (let i: u32 = 0; i < s.pending; i++) {
      if (load<u32>(u + PENDING_AT + i * 8) != s.lastSync + 1) continue; // S460: not the next one yet
      beginReflect(u, load<u32>(u + PENDING_AT + i * 8), load<u32>(u + PENDING_AT + i * 8 + 4));
      removePending(u, i);
      break;
    }
  }
  if (s.phase == RP_WAITING && allArrived(u)) s.phase = RP_WRITING;
  return s.phase;
}

function beginReflect(u: usize, syncId: u32, issuingId: u32): void {
  const s = unit(u);
  s.reflectSync = syncId;
  s.reflectIssuing = issuingId;
  s.reflectStatus = 0;
  s.phase = RP_WAITING;
}

function removePending(u: usize, i: u32): void {
  const s = unit(u);
  for (let j = i; j + 1 < s.pending; j++) store<u64>(u + PENDING_AT + j * 8, load<u64>(u + PENDING_AT + (j + 1) * 8));
  s.pending--;
}

/** S461: every issuing ID after the last reflect and before this one has arrived (superseded ones included). */
function allArrived(u: usize): bool {
  const s = unit(u);
  for (let id = s.lastIssuing + 1; id < s.reflectIssuing; id++) {
    if (!arrived(u, id) || receiving(u, id)) return false;
  }
  return true;
}

function receiving(u: usize, id: u32): bool {
  const e = entryOf(u, id);
  return e >= 0 && entry(u, <u32>e).state == ES_RECEIVING;
}

/** Run descriptor written by syncReflectNext at `out` (SYNC_RUN_BYTES). */
export const SYNC_RUN_BYTES: u32 = 24;
export const RUN_LBA: u32 = 0; // u64: first block on the medium
export const RUN_DATA: u32 = 8; // u32: address of its data in buffer memory
export const RUN_BLOCKS: u32 = 12; // u32
export const RUN_ENTRY: u32 = 16; // u32: the entry (for syncWriteDone)
export const RUN_ISSUING: u32 = 20; // u32: its issuing ID

/**
 * S462-S464: the next run of blocks to write to the medium, from the held write of the reflecting
 * synchronization ID with the lowest issuing ID; blocks that a later write of the same ID covers are
 * skipped (each block is written once, the last write wins). 1 with the run at `out`, 0 when none now.
 */
export function syncReflectNext(u: usize, out: usize): u32 {
  const s = unit(u);
  if (syncStep(u) != RP_WRITING) return 0;
  for (;;) {
    const e = lowestUnwritten(u);
    if (e < 0) return 0;
    const x = entry(u, <u32>e);
    while (x.cursor < x.blocks && coveredLater(u, x, x.lba + <u64>x.cursor)) { x.cursor++; s.blocksSkipped++; }
    const first = x.cursor;
    while (x.cursor < x.blocks && !coveredLater(u, x, x.lba + <u64>x.cursor)) x.cursor++;
    // The rest is wholly covered by later writes of its ID. The entry is free now only if none of its
    // runs is still on its way to the volume; else the last one's syncWriteDone frees it (freed early,
    // that run's end would find no entry and the unit's outstanding count would never reach 0: the
    // reflect, and a failover waiting for it, would wait for ever).
    if (x.cursor == first) { if (x.outstanding == 0) release(u, <u32>e); continue; }
    store<u64>(out + RUN_LBA, x.lba + <u64>first);
    store<u32>(out + RUN_DATA, <u32>(syncData(u, <u32>e) + <usize>first * <usize>s.blockBytes));
    store<u32>(out + RUN_BLOCKS, x.cursor - first);
    store<u32>(out + RUN_ENTRY, <u32>e);
    store<u32>(out + RUN_ISSUING, x.issuingId);
    x.outstanding++;
    s.outstanding++;
    s.blocksWritten += x.cursor - first;
    return 1;
  }
}

function lowestUnwritten(u: usize): i32 {
  const s = unit(u);
  let best: i32 = -1;
  for (let e: u32 = 0; e < s.entries; e++) {
    const x = entry(u, e);
    if (x.state != ES_HELD || x.syncId != s.reflectSync || x.cursor >= x.blocks) continue;
    if (best < 0 || x.issuingId < entry(u, <u32>best).issuingId) best = <i32>e;
  }
  return best;
}

/** Block lba is written by a later held write of x's synchronization ID. */
function coveredLater(u: usize, x: SyncEntry, lba: u64): bool {
  for (let e: u32 = 0; e < unit(u).entries; e++) {
    const y = entry(u, e);
    if (y.state == ES_HELD && y.syncId == x.syncId && y.issuingId > x.issuingId && covers(y, lba, 1)) return true;
  }
  return false;
}

function release(u: usize, e: u32): void {
  entry(u, e).state = ES_FREE;
  unit(u).used--;
}

/** S466/S467: the medium finished a run of entry e; when its last run is done the entry is free again. */
export function syncWriteDone(u: usize, e: u32, ok: bool): void {
  const s = unit(u);
  const x = entry(u, e);
  if (x.state != ES_HELD || x.outstanding == 0) return;
  x.outstanding--;
  s.outstanding--;
  if (!ok) s.reflectStatus = 1;
  if (x.outstanding == 0 && x.cursor >= x.blocks) release(u, e);
}

/**
 * S465/S468: 1 when the reflect in progress has finished (the caller answers its sender; the
 * synchronization and issuing IDs processed last are now its own), SYNC_MEDIUM_ERROR when it
 * finished but a run failed, 0 while it is not finished.
 */
export function syncReflectComplete(u: usize): i32 {
  const s = unit(u);
  if (syncStep(u) != RP_WRITING || s.outstanding != 0 || lowestUnwritten(u) >= 0 || writingLeft(u)) return 0;
  for (let id = s.lastIssuing + 1; id <= s.reflectIssuing; id++) markArrived(u, id, false);
  s.lastSync = s.reflectSync;
  s.lastIssuing = s.reflectIssuing;
  s.phase = RP_NONE;
  s.reflects++;
  return s.reflectStatus != 0 ? SYNC_MEDIUM_ERROR : 1;
}

function writingLeft(u: usize): bool {
  for (let e: u32 = 0; e < unit(u).entries; e++) {
    const x = entry(u, e);
    if (x.state == ES_HELD && x.syncId == unit(u).reflectSync) return true;
  }
  return false;
}

// ---- Failover (Fig. 27) ---------------------------------------------------------------------------

/**
 * The delay data discarding command: from now on nothing is taken from the link. S480-S482: every
 * held write whose reflecting command has not begun writing is discarded (a reflect still waiting
 * for data at S461 was never answered, so its restart point was never confirmed: it goes too).
 * S483/S484: a reflect already writing finishes first. Returns 1 when done (S485: the caller
 * answers the host), 0 while a reflect is still writing (call again after its runs are done).
 */
export function syncDiscard(u: usize): u32 {
  const s = unit(u);
  s.failedOver = 1;
  s.pending = 0;
  if (s.phase == RP_WAITING) s.phase = RP_NONE;
  for (let e: u32 = 0; e < s.entries; e++) {
    const x = entry(u, e);
    if (x.state == ES_FREE || (s.phase == RP_WRITING && x.syncId == s.reflectSync)) continue;
    x.state = ES_FREE;
    s.used--;
    s.discarded++;
  }
  if (s.phase == RP_WRITING && syncReflectComplete(u) == 0) return 0;
  return 1;
}
