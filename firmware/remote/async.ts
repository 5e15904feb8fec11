// Document 004's asynchronous remote copy applied in update order, consistency groups, and the
// difference bitmap that lets `resume` copy only what changed (docs/remote.md, "Asynchronous copy").
//
// Primary, mode RM_ASYNC. A host write is acknowledged once it is in this array's cache and NV (as a
// write with no pair); in the same step its window is copied from the cache into the **journal** in
// buffer memory with the next issuing ID of its order (the pair's, or its consistency group's: one
// counter for every pair of the group, remote/pair.ts remoteIssue). The journal is a ring of entries
// in issuing-ID order; a background step on the pair's copy IOP sends them in that order, at most
// ASYNC_DEPTH per order at once, each a send command of the link unit whose DATA comes from the
// entry (comm/link.ts linkSendJournal). The secondary applies them in issuing-ID order with gaps held
// back (the existing rule of comm/link.ts, made group-wide: sameGroup), so the secondary volumes of
// a group are always at a state the primary had at some instant.
//
// The journal is volatile (buffer memory). What survives a restart or a suspension is the pair's
// **difference bitmap** in NV (NVT_REMOTE_DIFF, one bit per track, as firmware/pair/ keeps its
// bitmaps): every write of a primary sets its tracks' bits and queues that word to NV before its data
// enters the NV ring (write intent), in every state. While the pair is current, the bits are cleared
// once it has had nothing in flight and nothing journaled for the pair's bound (so a write between
// its bit and its send cannot be passed over). So after a suspension (the link, a full journal, the
// user) or a kill -9, the bitmap covers every track the secondary may lack: what was written while
// suspended, what was in flight, what was journaled. `resume` (and create, with every bit set)
// copies exactly the tracks whose bit is set (remote/mirror.ts remoteCopyStep).
//
// A full journal (entries or data) does not block the host and loses nothing: the pair (with its
// group) is suspended, reason `journal`, and its writes are in the bitmap already.
import { LINK_MAX_COMMAND_BYTES, linkSendJournal } from "../comm/link";
import { gNow, gIndex } from "../iop";
import { CX_FLAGS } from "../ctx";
import { SLOT_BYTES, SLOT_SHIFT } from "../abi";
import { blockSize, capacityBlocks } from "../volume";
import { cacheLookup, slotData, sectorsValid } from "../cache";
import { nvBase, nvPersistRange, nvRoom, nvId, newer, NVK_NONE, REMOTE_DIFF_OFFSET, REMOTE_DIFF_BYTES, REMOTE_DIFFS_BYTES } from "../nv";
import { bitmapSetRange, bitmapClearRange, bitmapCount, bitmapFindNextSet, bitmapFindNextClear } from "../kernels/bitmap";
import {
  remote, remoteOfVolume, remoteSuspend, linked, remoteIssue, remoteLeaseReadyAll, remoteJournalAt, sameGroup,
  REMOTE_PAIRS, RR_PRIMARY, RR_SECONDARY, RS_PAIR, RS_COPY, RM_ASYNC, RSR_JOURNAL, RSR_USER,
  JOURNAL_ENTRIES, JOURNAL_ENTRY_BYTES, JOURNAL_HEADER_BYTES, JOURNAL_DATA_BYTES,
} from "./pair";

/** Send commands of one order (a group, or a pair outside groups) in flight at once: below the secondary's HELD_MAX. */
export const ASYNC_DEPTH: u32 = 8;
/** Tracks per difference bitmap. */
export const DIFF_TRACKS: u32 = REMOTE_DIFF_BYTES * 8;
const TRACK_SHIFT_MIN: u32 = 16;

// Journal entry states.
const J_FREE: u8 = 0;
const J_QUEUED: u8 = 1; // waiting to be sent
const J_SENDING: u8 = 2; // a send command carries it (cmdId)
const J_DONE: u8 = 3; // acknowledged, or dropped (its pair stopped sending: the bitmap has it); freed at the tail

@unmanaged class JournalHead {
  head: u32; // entries given out (monotonic; entry = head % JOURNAL_ENTRIES)
  tail: u32; // the oldest entry not freed
  dataHead: u32; // data bytes given out (monotonic)
  dataTail: u32; // data bytes freed
  appended: u64; // entries ever queued
  fullSuspends: u32; // pairs suspended because the journal was full
  highWater: u32; // most data bytes ever held at once
  heldEarly: u32; // secondary: WRITEs that came before their predecessor and were held back (a gap)
}

@unmanaged class Entry {
  state: u8;
  pair: u8;
  reserved: u16;
  issuingId: u32;
  bytes: u32;
  dataAt: u32; // monotonic data offset of its first byte (never wraps inside an entry)
  byteOffset: u64; // on the primary volume
  serial: u32; // the pair's serial when journaled: a resumed pair drops what an older incarnation left
  cmdId: u32; // J_SENDING: its send command
}

// @ts-ignore: decorator
@inline function jh(): JournalHead { return changetype<JournalHead>(remoteJournalAt()); }
// @ts-ignore: decorator
@inline function idleAt(p: u32): usize { return remoteJournalAt() + 64 + <usize>p * 8; }
// @ts-ignore: decorator
@inline function baseAt(p: u32): usize { return remoteJournalAt() + 192 + <usize>p * 4; } // the issuing ID of p's last CREATE
/** Pair p's writes open: counted from their first remoteBeforeWrite to their command's end (u32, atomic; zeroed only at boot, so a stale end still balances). */
// @ts-ignore: decorator
@inline function openAt(p: u32): usize { return remoteJournalAt() + 256 + <usize>p * 4; }
// @ts-ignore: decorator
@inline function entry(i: u32): Entry { return changetype<Entry>(remoteJournalAt() + JOURNAL_HEADER_BYTES + <usize>(i % JOURNAL_ENTRIES) * JOURNAL_ENTRY_BYTES); }
// @ts-ignore: decorator
@inline function dataBase(): usize { return remoteJournalAt() + JOURNAL_HEADER_BYTES + <usize>JOURNAL_ENTRIES * JOURNAL_ENTRY_BYTES; }

/** Where the data of journal entry i is (comm/link.ts sends from it). */
export function journalData(i: u32): usize { return dataBase() + <usize>(entry(i).dataAt % JOURNAL_DATA_BYTES); }

// ---- The difference bitmap ------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function diffAt(p: u32): usize { return nvBase() + REMOTE_DIFF_OFFSET + <usize>p * REMOTE_DIFF_BYTES; }

function volumeBytes(p: u32): u64 { const v = <u32>remote(p).volume; return capacityBlocks(v) * <u64>blockSize(v); }

/** Pair p's track size as a shift: 64 KiB, or larger so that the volume fits DIFF_TRACKS tracks. */
export function diffShift(p: u32): u32 {
  const r = remote(p);
  if (r.trackShift == 0) {
    let s = TRACK_SHIFT_MIN;
    while ((volumeBytes(p) + (<u64>1 << s) - 1) >> s > <u64>DIFF_TRACKS) s++;
    r.trackShift = <u8>s;
  }
  return <u32>r.trackShift;
}

export function diffTracks(p: u32): u32 { const s = diffShift(p); return <u32>((volumeBytes(p) + (<u64>1 << s) - 1) >> s); }

/** Tracks of pair p whose bit is set. */
export function diffCount(p: u32): u32 {
  const n = bitmapCount(diffAt(p), <u64>DIFF_TRACKS, 0, <u64>diffTracks(p));
  return n < 0 ? 0 : <u32>n;
}

/** Bytes a copy of the set tracks sends (the last track may be short). */
export function diffBytes(p: u32): u64 {
  const s = diffShift(p);
  const tracks = diffTracks(p);
  let n = <u64>diffCount(p) << s;
  if (tracks > 0 && nextDiff(p, <u64>(tracks - 1) << s) < volumeBytes(p)) n -= (<u64>tracks << s) - volumeBytes(p);
  return n;
}

/** The first byte at or after `from` whose track is set (from itself when its track is), or the volume's end. */
export function nextDiff(p: u32, from: u64): u64 {
  const s = diffShift(p);
  const end = volumeBytes(p);
  if (from >= end) return end;
  const t = bitmapFindNextSet(diffAt(p), <u64>diffTracks(p), from >> s);
  if (t < 0) return end;
  const at = <u64>t << s;
  return at > from ? min<u64>(at, end) : from;
}

/** The end of the run of set tracks that holds byte `at` (the copy sends a run in commands as long as the link takes). */
export function diffRunEnd(p: u32, at: u64): u64 {
  const s = diffShift(p);
  const t = bitmapFindNextClear(diffAt(p), <u64>diffTracks(p), at >> s);
  return t < 0 ? volumeBytes(p) : min<u64>(<u64>t << s, volumeBytes(p));
}

function persistWords(p: u32, first: u32, last: u32, id: u32): bool {
  const from = <usize>(first >> 6) << 3;
  const to = (<usize>(last >> 6) << 3) + 8;
  return nvPersistRange(diffAt(p) + from, <u32>(to - from), id);
}

/** Sets the tracks of [byteOffset, byteOffset + bytes) and queues them to NV. Needs 1 NV entry. */
export function diffMark(p: u32, byteOffset: u64, bytes: u64, id: u32): bool {
  if (bytes == 0) return true;
  const s = diffShift(p);
  const first = <u32>(byteOffset >> s);
  const last = min<u32>(<u32>((byteOffset + bytes - 1) >> s), diffTracks(p) - 1);
  bitmapSetRange(diffAt(p), <u64>DIFF_TRACKS, <u64>first, <u64>(last - first + 1));
  remote(p).diffDirty = 1;
  store<f64>(idleAt(p), gNow);
  return persistWords(p, first, last, id);
}

/** Every track set (create: the initial copy sends the whole volume), persisted. Needs 1 NV entry. */
export function diffAll(p: u32, id: u32): bool {
  memory.fill(diffAt(p), 0, REMOTE_DIFF_BYTES);
  return diffMark(p, 0, volumeBytes(p), id);
}

/**
 * The write hook (sequencer commitStep, sbc atomicStep) before a piece of a write of volume v's slot
 * slotNo enters the cache and NV: 1 when a bit was queued to NV (the command waits for one more NV
 * entry), 0 when v is no remote primary, -1 when the NV ring had no room (the caller tries again).
 */
export function remoteBeforeWrite(c: usize, v: u32, slotNo: u32, id: u32): i32 {
  const pr = remoteOfVolume(v);
  if (pr < 0 || remote(<u32>pr).role != RR_PRIMARY) return 0;
  const p = <u32>pr;
  if (<u64>slotNo << SLOT_SHIFT >= volumeBytes(p)) return 0;
  // The command counts as open before its bit is set, until it ends (remoteWriteEnded): a sync write
  // ends once its sends are acknowledged (or failed), an async one once journaled (then its entries
  // count). idleClear never clears while one is open, however long its commit stalls.
  const f = load<u32>(c + CX_FLAGS);
  if ((f & CXF_REMOTE_OPEN) == 0) {
    atomic.add<u32>(openAt(p), 1);
    store<u32>(c + CX_FLAGS, f | CXF_REMOTE_OPEN | (p << OPEN_PAIR_SHIFT));
  }
  // Persisted every time, as pair/io.ts does: a bit set by an earlier write may still be on its way.
  return diffMark(p, <u64>slotNo << SLOT_SHIFT, SLOT_BYTES, id) ? 1 : -1;
}

/** In CX_FLAGS: the command is counted in its pair's open writes (openAt); the pair's index in bits 28-31. */
const CXF_REMOTE_OPEN: u32 = 0x4000000;
const OPEN_PAIR_SHIFT: u32 = 28;

/** Command c ends (sequencer retire, cmdRearm): it no longer counts in its pair's open writes. */
export function remoteWriteEnded(c: usize): void {
  const f = load<u32>(c + CX_FLAGS);
  if ((f & CXF_REMOTE_OPEN) == 0) return;
  atomic.sub<u32>(openAt(f >> OPEN_PAIR_SHIFT), 1);
  store<u32>(c + CX_FLAGS, f & ~(CXF_REMOTE_OPEN | (<u32>0xF << OPEN_PAIR_SHIFT)));
}

/** A blank bitmap table (a new image, or one from before it): every bit set when pairs survived (their differences are unknown). */
export function remoteDiffFormat(pairsKept: bool): void {
  memory.fill(nvBase() + REMOTE_DIFF_OFFSET, pairsKept ? 0xFF : 0, REMOTE_DIFFS_BYTES);
  nvPersistRange(nvBase() + REMOTE_DIFF_OFFSET, REMOTE_DIFFS_BYTES, nvId(NVK_NONE, 0));
}

// ---- The journal (primary) ------------------------------------------------------------------------

/** Journal entries of pair p not yet acknowledged. */
export function journalQueued(p: u32): u32 {
  const j = jh();
  let n: u32 = 0;
  for (let i = j.tail; i != j.head; i++) {
    const e = entry(i);
    if (<u32>e.pair == p && e.serial == remote(p).serial && (e.state == J_QUEUED || e.state == J_SENDING)) n++;
  }
  return n;
}

/** Data bytes the journal holds now. */
export function journalBytes(): u32 { return jh().dataHead - jh().dataTail; }
export function journalHighWater(): u32 { return jh().highWater; }
export function journalFullSuspends(): u32 { return jh().fullSuspends; }
/** Secondary: a WRITE came ahead of its turn and is held (comm/link.ts hold). */
export function heldEarly(): void { if (linked()) jh().heldEarly++; }
export function heldEarlyCount(): u32 { return linked() ? jh().heldEarly : 0; }

function sending(p: u32): bool { const r = remote(p); return r.used != 0 && r.role == RR_PRIMARY && (r.state == RS_PAIR || r.state == RS_COPY); }

/**
 * The write hook for an RM_ASYNC primary (remote/mirror.ts remoteWindow): the window's bytes
 * [start, end) of the volume, in the cache now, go into the journal with their issuing IDs, in
 * pieces of at most LINK_MAX_COMMAND_BYTES. A journal that cannot take them suspends the pair
 * (RSR_JOURNAL): their tracks are in the bitmap already (remoteBeforeWrite). Never waits.
 */
export function asyncWindow(p: u32, start: u64, end: u64): void {
  const r = remote(p);
  const v = <u32>r.volume;
  const bs = <u64>blockSize(v);
  const from = start / bs * bs;
  const to = min<u64>((end + bs - 1) / bs * bs, volumeBytes(p));
  for (let at = from; at < to;) {
    const n = <u32>min<u64>(<u64>LINK_MAX_COMMAND_BYTES, to - at);
    if (!append(p, at, n)) {
      jh().fullSuspends++;
      remoteSuspend(p, RSR_JOURNAL, 0);
      return;
    }
    at += <u64>n;
  }
}

function append(p: u32, at: u64, n: u32): bool {
  const j = jh();
  if (j.head - j.tail >= JOURNAL_ENTRIES || !remoteLeaseReadyAll(p)) return false;
  let d = j.dataHead;
  if (d % JOURNAL_DATA_BYTES + n > JOURNAL_DATA_BYTES) d += JOURNAL_DATA_BYTES - d % JOURNAL_DATA_BYTES; // never wrap inside an entry
  if (d + n - j.dataTail > JOURNAL_DATA_BYTES) return false;
  // The bytes from the cache (the window was just written there; bytes around it in its first and
  // last block are the volume's current ones, valid or the piece cannot be journaled).
  const v = <u32>remote(p).volume;
  const dst = dataBase() + <usize>(d % JOURNAL_DATA_BYTES);
  for (let k: u32 = 0; k < n;) {
    const off = at + <u64>k;
    const within = <u32>(off & <u64>(SLOT_BYTES - 1));
    const m = min<u32>(n - k, SLOT_BYTES - within);
    const slot = cacheLookup(v, <u32>(off >> SLOT_SHIFT));
    if (slot < 0 || !sectorsValid(<u32>slot, within >> 9, m >> 9)) return false;
    memory.copy(dst + k, slotData(<u32>slot) + within, m);
    k += m;
  }
  const e = entry(j.head);
  e.state = J_QUEUED;
  e.pair = <u8>p;
  e.issuingId = remoteIssue(p);
  e.bytes = n;
  e.dataAt = d;
  e.byteOffset = at;
  e.serial = remote(p).serial;
  e.cmdId = 0;
  j.head++;
  j.dataHead = d + n;
  j.appended++;
  if (j.dataHead - j.dataTail > j.highWater) j.highWater = j.dataHead - j.dataTail;
  return true;
}

/** A send command of journal entry i ended (comm/link.ts finish): acknowledged or not, it is done here. */
export function journalFinished(i: u32, cmdId: u32, ok: bool): void {
  const e = entry(i);
  if (e.state != J_SENDING || e.cmdId != cmdId) return;
  e.state = J_DONE;
  if (!ok) orphaned(<u32>e.pair, e.issuingId);
}

/** Is (pair a, pair b) one order: the same pair, or pairs of one consistency group? */
function sameOrder(a: u32, b: u32): bool { return a == b || sameGroup(a, b); }

/**
 * The background step of each channel IOP (comm/link.ts linkReceive): drops what stopped pairs left
 * in the journal, frees the acknowledged tail, sends queued entries in order (ASYNC_DEPTH per order,
 * on the IOP that runs the pair's copy), and clears the bitmaps of pairs idle for their bound.
 */
export function asyncStep(): i32 {
  let work: i32 = 0;
  if (linked()) {
    const j = jh();
    let blocked: u32 = 0; // pairs whose order has an entry waiting: later ones of that order wait too
    for (let i = j.tail; i != j.head; i++) {
      const e = entry(i);
      if (e.state != J_QUEUED) continue;
      const p = <u32>e.pair;
      if (!sending(p) || e.serial != remote(p).serial) { e.state = J_DONE; orphaned(p, e.issuingId); work++; continue; } // the bitmap has it
      if ((blocked & (<u32>1 << p)) != 0 || <u32>remote(p).copyIop != gIndex) { blocked |= orderMask(p); continue; }
      if (inFlight(p) >= ASYNC_DEPTH) { blocked |= orderMask(p); continue; }
      const id = linkSendJournal(p, i % JOURNAL_ENTRIES, e.issuingId, e.byteOffset, e.bytes);
      if (id == 0) { blocked |= orderMask(p); continue; }
      e.state = J_SENDING;
      e.cmdId = id;
      work++;
    }
    while (j.tail != j.head && entry(j.tail).state == J_DONE) {
      const e = entry(j.tail);
      e.state = J_FREE;
      j.dataTail = e.dataAt + e.bytes;
      j.tail++;
      work++;
    }
    if (j.tail == j.head) j.dataTail = j.dataHead;
  }
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) work += idleClear(p);
  return work;
}

/**
 * Issuing ID `id` of pair p's group will never reach the secondary (its entry was dropped unsent, or
 * its send ended unanswered): a gap in the group's order there. A pair suspended by the link has its
 * group suspended already; a pair deleted while the group sends has not, and the group's later writes
 * would wait at the secondary for ever: every member that sends in an order from before `id` (its
 * last CREATE's base is below it) is suspended (resume starts the order again past the gap).
 */
function orphaned(p: u32, id: u32): void {
  const r = remote(p);
  if (r.group == 0) return;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) {
    const m = remote(q);
    if (m.group == r.group && m.peerNode == r.peerNode && sending(q) && newer(id, load<u32>(baseAt(q)))) remoteSuspend(q, RSR_USER, 0);
  }
}

function orderMask(p: u32): u32 {
  let m: u32 = <u32>1 << p;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (sameGroup(p, q)) m |= <u32>1 << q;
  return m;
}

function inFlight(p: u32): u32 {
  const j = jh();
  let n: u32 = 0;
  for (let i = j.tail; i != j.head; i++) if (entry(i).state == J_SENDING && sameOrder(p, <u32>entry(i).pair)) n++;
  return n;
}

/**
 * A current pair with nothing in flight, journaled or open (a write between its bit and its end:
 * remoteBeforeWrite) for its bound (timeout x (retries + 1)): every write that set a bit is at the
 * secondary (sync: acknowledged there; async: every entry answered), so its bitmap is cleared. A
 * write that opens on another IOP while this clears is seen by the look after the clear: every bit
 * is set again (a full copy at the next resume rather than one track missed). Needs 2 NV entries.
 */
function idleClear(p: u32): i32 {
  const r = remote(p);
  if (r.used == 0 || r.role != RR_PRIMARY || r.diffDirty == 0) return 0;
  if (r.state != RS_PAIR || r.inFlight != 0 || r.copyActive != 0 || <u32>r.copyIop != gIndex || journalQueued(p) != 0 || atomic.load<u32>(openAt(p)) != 0) {
    store<f64>(idleAt(p), gNow);
    return 0;
  }
  if (gNow - load<f64>(idleAt(p)) < <f64>r.timeoutUs * 1000 * <f64>(<u32>r.retries + 1) || !nvRoom(2)) return 0;
  bitmapClearRange(diffAt(p), <u64>DIFF_TRACKS, 0, <u64>DIFF_TRACKS);
  r.diffDirty = 0;
  if (atomic.load<u32>(openAt(p)) != 0) { memory.fill(diffAt(p), 0xFF, REMOTE_DIFF_BYTES); r.diffDirty = 1; } // opened meanwhile: its bit may be gone
  nvPersistRange(diffAt(p), REMOTE_DIFF_BYTES, nvId(NVK_NONE, 0));
  return 1;
}

/** When pair p's bitmap may next be cleared (the harness keeps time running until then). */
export function asyncIdleDue(p: u32): f64 {
  const r = remote(p);
  return load<f64>(idleAt(p)) + <f64>r.timeoutUs * 1000 * <f64>(<u32>r.retries + 1);
}

// ---- The secondary: one order per consistency group ---------------------------------------------

/** Pair pi applied issuing ID `id` (S586): its order's next may go — every member of its group. */
export function orderApplied(pi: u32, id: u32): void {
  remote(pi).issued = id;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (sameGroup(pi, q)) remote(q).issued = id;
}

/** Is context-pair a in the same order as pair b (the apply-one-at-a-time rule, group-wide)? */
export function orderShared(a: u32, b: u32): bool { return sameOrder(a, b); }

/**
 * A CREATE for secondary pair pi of group `group` with base `base`. When another member of the
 * group is current here its order goes on (a pair joining a running group: the writes below the
 * base are that member's, still coming); otherwise the whole group's order starts at the base.
 */
export function orderCreate(pi: u32, group: u32, base: u32, join: bool): void {
  const r = remote(pi);
  r.group = <u8>group;
  r.issued = base;
  if (group == 0) return;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) {
    if (q == pi || !sameGroup(pi, q) || remote(q).role != RR_SECONDARY) continue;
    if (join && remote(q).state == RS_PAIR && remote(q).broken == 0) { r.issued = remote(q).issued; return; }
  }
  orderApplied(pi, base);
}

export function isAsync(p: u32): bool { return remote(p).mode == RM_ASYNC; }

/** The CREATE's `total` (comm/link.ts): the group, and 0x100 when another member sends now (it joins that order). */
export function createWord(p: u32): u32 {
  store<u32>(baseAt(p), remote(p).issued); // the base the CREATE carries
  let join: u32 = 0;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (q != p && sameGroup(p, q) && sending(q)) join = 0x100;
  return <u32>remote(p).group | join;
}
