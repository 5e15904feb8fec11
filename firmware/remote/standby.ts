// The standby storage unit of document 003's embodiment 7 on the link (docs/remote.md, "The standby's
// units"): a remote pair of mode RM_DELAYED. The primary sends its host writes as delay writes
// (LF_DELAYED) carrying the pair's synchronization ID, and at each restart enabling point the host
// notified (REMOTE CHANGE restart point, scsi/remote.ts) a delay data reflecting command (CONTROL op
// LOP_REFLECT) that closes the synchronization ID. The secondary's link unit places one buffer for
// synchronization (remote/delayed.ts) per such pair in buffer memory and feeds it:
//
//   WRITE (LF_DELAYED) -> syncWriteBegin (S420) -> READY -> DATA into the entry (S422/S423) ->
//     syncWriteEnd (S424/S425) -> RECEIVED GOOD: held, not on the medium;
//   WRITE (LOP_REFLECT) -> syncReflect (S460): when its turn comes and its writes are all here (S461),
//     its runs (S462-S464) are written through the ordinary write path, cache and NV (comm/link.ts
//     linkApply, S465-S467), and then RECEIVED GOOD (S468) — the primary's RESTART POINT answers then;
//   REMOTE CHANGE failover -> syncDiscard (S480-S485): what no reflect has confirmed is discarded,
//     so the hosts read the volume at the last restart enabling point.
//
// A write the unit cannot take (more writes in a restart interval than it has entries) is answered
// RECEIVED with BUSY: the primary asks again within its retries, then suspends the pair (reason
// remote); nothing is dropped silently. The units live in a region after the remote pair table
// (layout.ts), STANDBY_UNITS of them, taken by a pair at its first delay write and given back at
// failover, at the pair's next CREATE or DELETE. They are volatile: a restart of the standby array
// loses what they held (its pair comes back suspended, remote/pair.ts), and a reflect cut by that
// restart leaves part of its interval on the volume (docs/remote.md says so).
//
// The initial copy and the host writes while it runs are applied directly (they are not a restart
// point); when it has ended and nothing of the pair is in flight, the primary makes synchronization
// ID 1 current and sends delay writes from then on: the unit's base is that instant, the secondary's
// last applied issuing ID (every one before it was acknowledged, so it is there).
import { LT_READY, LT_RECEIVED, LOP_REFLECT, LOP_NONE, LF_DELAYED, LF_SNAPSHOT, TRACE_REMOTE_DELAY, TRACE_REMOTE_REFLECT, TRACE_REMOTE_DISCARD, TRACE_REMOTE_DISCARDED, LINK_HEADER_BYTES, LINK_PAYLOAD_BYTES, MAP_ADDR, MAP_REMOTE_TABLE } from "../abi";
import { pkt, pktLba } from "./packet";
import { remote, remoteStateBytes, linked, RM_DELAYED, RM_SNAPSHOT, RS_PAIR, RS_COPY } from "./pair";
import {
  syncBytes, syncLayout, syncUnit, syncWriteBegin, syncWriteData, syncWriteEnd, syncReflect, syncReflectNext, syncWriteDone,
  syncReflectComplete, syncDiscard, syncEntryHeld, syncEntryIssuing, syncEntrySync, syncEntryBytes, SYNC_RUN_BYTES, RUN_LBA, RUN_DATA, RUN_BLOCKS, RUN_ENTRY, RUN_ISSUING,
  SYNC_APPLIED, SYNC_FULL, SYNC_FAILED_OVER, SYNC_MEDIUM_ERROR, SYNC_PENDING_MAX, RP_WRITING,
} from "./delayed";
import { linkAnswer, linkApply, LINK_MAX_COMMAND_BYTES } from "../comm/link";
import { blockSize, capacityBlocks } from "../volume";
import { trace } from "../trace";
import { snapLinkBytes, snapLinkLayout, snapLinkIncoming, snapLinkData, snapLinkStep, snapLinkOwns, snapLinkApplyDone, snapLinkRelease } from "./snaplink";
import { LXF_COPY } from "../comm/link";

/** Standby units an array can hold at once (pairs of mode RM_DELAYED that are its secondaries). */
export const STANDBY_UNITS: u32 = 2;
/** Delay writes one restart interval may hold (the unit's entries). */
export const STANDBY_ENTRIES: u32 = 24;
/** The longest delay write: the primary sends a delayed pair's host writes in commands of at most this. */
export const STANDBY_COMMAND_BYTES: u32 = 64 * 1024;
/** Runs of a reflect written at once. */
// Several at once keep the issuing-ID order's result on the volume: syncReflectNext gives a write's
// blocks only where no later write of the reflect covers them, and every run of an earlier write is
// taken before any of a later one, so runs in flight never share a block and each block ends with
// its last writer's data, as one at a time would leave it. (Four at once once left a reflect waiting
// for ever: an entry was freed with a run still in flight; remote/delayed.ts syncReflectNext.)
const APPLY_DEPTH: u32 = 4;

const META_BYTES: u32 = 1024;
const META_RUN: u32 = 16; // SYNC_RUN_BYTES: a run taken from the unit that waits for a context
const META_WAITERS: u32 = 64; // WAITERS x WAITER_BYTES: reflecting commands to answer
const WAITERS: u32 = SYNC_PENDING_MAX + 1;
const WAITER_BYTES: u32 = 16; // issuingId u32 (0: free), srcNode u16, srcQueue u16, cmdId u32, origin u32
const META_ENTRIES: u32 = 256; // STANDBY_ENTRIES x ENTRY_META_BYTES: who sends each entry's data
const ENTRY_META_BYTES: u32 = 20; // issuingId, srcNode u16 | srcQueue u16, cmdId, got (mask of 8 KiB packets), total
const ANSWER_GOOD: u32 = 0;
const ANSWER_BUSY: u32 = 0x08 << 24;
const ANSWER_PROTECT: u32 = (0x02 << 24) | (0x07 << 16) | (0x27 << 8); // DATA PROTECT, WRITE PROTECTED: failed over
const ANSWER_INVALID: u32 = (0x02 << 24) | (0x05 << 16) | (0x24 << 8); // ILLEGAL REQUEST: no data, too long, a closed sync ID
const ANSWER_MEDIUM: u32 = (0x02 << 24) | (0x03 << 16) | (0x0C << 8); // MEDIUM ERROR, WRITE ERROR: a run of the reflect failed

@unmanaged class StandbyMeta {
  owner: u32; // the pair + 1; 0: free
  serial: u32; // the pair's serial when the unit was laid out
  port: u32; // the link port the pair's packets arrive on: the apply contexts run there
  runValid: u32; // 1: the run at META_RUN waits for a context
  run0: u64; // META_RUN: SYNC_RUN_BYTES
  run1: u64;
  run2: u64;
  applying: u32; // apply contexts in flight
}

// @ts-ignore: decorator
@inline function unitStride(): usize { return <usize>META_BYTES + syncBytes(STANDBY_ENTRIES, STANDBY_COMMAND_BYTES); }
function regionBase(): usize { return (<usize>load<u32>(MAP_ADDR + MAP_REMOTE_TABLE) + remoteStateBytes() + 63) & ~(<usize>63); }
function metaAt(i: u32): usize { return regionBase() + <usize>i * unitStride(); }
// @ts-ignore: decorator
@inline function meta(i: u32): StandbyMeta { return changetype<StandbyMeta>(metaAt(i)); }
function unitAt(i: u32): usize { return metaAt(i) + META_BYTES; }
function entryMeta(i: u32, e: u32): usize { return metaAt(i) + META_ENTRIES + <usize>e * ENTRY_META_BYTES; }
function units(): u32 { return linked() ? STANDBY_UNITS : 0; }

/** Bytes of the region after the remote pair table (layout.ts): nothing for an array without links. */
export function standbyBytes(): usize {
  assert(offsetof<StandbyMeta>("run0") == META_RUN && offsetof<StandbyMeta>() <= META_WAITERS && META_RUN + SYNC_RUN_BYTES <= 40 && META_ENTRIES + STANDBY_ENTRIES * ENTRY_META_BYTES <= META_BYTES
    && META_WAITERS + WAITERS * WAITER_BYTES <= META_ENTRIES, "standby: meta layout");
  return linked() ? 64 + <usize>STANDBY_UNITS * unitStride() + snapLinkBytes() : 0; // embodiment 8's units after these (remote/snaplink.ts)
}
export function standbyLayout(): void {
  for (let i: u32 = 0; i < units(); i++) memory.fill(metaAt(i), 0, META_BYTES);
  snapLinkLayout();
}
/** Where the snapshot units (remote/snaplink.ts) begin: after the standby units. */
export function standbyRegionEnd(): usize { return (metaAt(STANDBY_UNITS) + 63) & ~(<usize>63); }

/** The unit of pair pi (of its current incarnation), or -1. */
function unitOf(pi: u32): i32 {
  for (let i: u32 = 0; i < units(); i++) if (meta(i).owner == pi + 1 && meta(i).serial == remote(pi).serial) return <i32>i;
  return -1;
}

/** Lays a unit out for pair pi: base = no synchronization ID closed yet, the last issuing ID it applied. */
function takeUnit(pi: u32): i32 {
  for (let i: u32 = 0; i < units(); i++) {
    if (meta(i).owner != 0) continue;
    const r = remote(pi);
    if (!syncLayout(unitAt(i), STANDBY_ENTRIES, STANDBY_COMMAND_BYTES, blockSize(<u32>r.volume), 0, r.issued)) return -1;
    memory.fill(metaAt(i), 0, META_BYTES);
    meta(i).owner = pi + 1;
    meta(i).serial = r.serial;
    r.mode = RM_DELAYED; // REMOTE STATUS on the standby says so (the CREATE does not carry the mode)
    return <i32>i;
  }
  return -1;
}

/** Pair pi's unit goes (a new CREATE, a DELETE): what it held is dropped. */
export function standbyRelease(pi: u32): void {
  for (let i: u32 = 0; i < units(); i++) if (meta(i).owner == pi + 1) meta(i).owner = 0;
  snapLinkRelease(pi);
}

// ---- The secondary: arrival (Fig. 24) and reflecting (Fig. 26) ----------------------------------------

/** An answer of `type` to the sender of packet p (status word `a`; a READY names [offset, offset + total)). */
export function standbyAnswer(port: u32, p: usize, type: u32, a: u32, offset: u32, total: u32): void {
  const h = pkt(p);
  linkAnswer(port, type, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId, h.issuingId, <u32>h.origin, a, offset, total);
}
// @ts-ignore: decorator
@inline function answer(port: u32, p: usize, type: u32, a: u32, offset: u32, total: u32): void { standbyAnswer(port, p, type, a, offset, total); }

/**
 * The status word the sender hears for a unit's refusal: applied already GOOD, full BUSY, failed over
 * DATA PROTECT, else ILLEGAL REQUEST (remote/snapshot.ts's SNAP_* have the same values as SYNC_*).
 */
export function standbyRefusal(got: i32): u32 {
  if (got == SYNC_APPLIED) return ANSWER_GOOD;
  if (got == SYNC_FULL) return ANSWER_BUSY;
  if (got == SYNC_FAILED_OVER) return ANSWER_PROTECT;
  return ANSWER_INVALID;
}

/** A delay write or a reflecting command of pair pi (comm/link.ts, incomingWrite). */
export function standbyIncoming(port: u32, p: usize, pi: u32): void {
  const h = pkt(p);
  if ((<u32>h.flags & LF_SNAPSHOT) != 0) { snapLinkIncoming(port, p, pi); return; } // embodiment 8 (remote/snaplink.ts)
  let i = unitOf(pi);
  if (i < 0) i = takeUnit(pi);
  if (i < 0) { answer(port, p, LT_RECEIVED, ANSWER_BUSY, 0, 0); return; } // no unit free: the primary's retries decide
  meta(<u32>i).port = port;
  const u = unitAt(<u32>i);
  if (h.op == <u8>LOP_REFLECT) {
    const got = syncReflect(u, h.syncId, h.issuingId); // S460
    if (got != 0) { answer(port, p, LT_RECEIVED, standbyRefusal(got), 0, 0); return; }
    if (!addWaiter(<u32>i, p)) answer(port, p, LT_RECEIVED, ANSWER_BUSY, 0, 0);
    return;
  }
  const e = syncWriteBegin(u, h.syncId, h.issuingId, pktLba(p), h.total); // S420
  if (e < 0) {
    if (e != SYNC_APPLIED) trace(TRACE_REMOTE_DELAY, (<u32>h.srcNode << 16) | pi, h.syncId, h.issuingId, <u32>(-e));
    answer(port, p, LT_RECEIVED, standbyRefusal(e), 0, 0);
    return;
  }
  if (syncEntryHeld(u, <u32>e)) { answer(port, p, LT_RECEIVED, ANSWER_GOOD, 0, 0); return; } // its RECEIVED was lost
  const m = entryMeta(<u32>i, <u32>e);
  if (load<u32>(m) != h.issuingId) { store<u32>(m, h.issuingId); store<u32>(m + 12, 0); store<u32>(m + 16, h.total); }
  // Who sends its data now (a relay gives each attempt a command identifier of its own).
  store<u16>(m + 4, h.srcNode);
  store<u16>(m + 6, <u16>h.srcQueue);
  store<u32>(m + 8, h.cmdId);
  const first = min<u32>(<u32>ctz<u32>(~load<u32>(m + 12)) * LINK_PAYLOAD_BYTES, h.total);
  answer(port, p, LT_READY, ANSWER_GOOD, first, h.total - first); // S421: the buffer is ready from the first byte missing
}

/** DATA of a delay write (comm/link.ts, incomingData: no receive context took it). */
export function standbyData(port: u32, p: usize): void {
  const h = pkt(p);
  for (let i: u32 = 0; i < units(); i++) {
    if (meta(i).owner == 0) continue;
    const u = unitAt(i);
    for (let e: u32 = 0; e < STANDBY_ENTRIES; e++) {
      const m = entryMeta(i, e);
      if (load<u32>(m) != h.issuingId || load<u16>(m + 4) != h.srcNode || load<u32>(m + 8) != h.cmdId || syncEntryIssuing(u, e) != h.issuingId) continue;
      if (syncEntryHeld(u, e)) return; // a duplicate after the last packet
      const total = load<u32>(m + 16);
      const k = standbyPacketBit(p, total);
      if (k < 0) return;
      const got = load<u32>(m + 12);
      if ((got & (<u32>1 << k)) != 0) return; // a duplicate
      if (!syncWriteData(u, e, h.offset, p + LINK_HEADER_BYTES, <u32>h.length)) return; // S423
      store<u32>(m + 12, got | (<u32>1 << k));
      const packets = (total + LINK_PAYLOAD_BYTES - 1) / LINK_PAYLOAD_BYTES;
      if ((got | (<u32>1 << k)) != (packets >= 32 ? 0xFFFFFFFF : (<u32>1 << packets) - 1)) return;
      syncWriteEnd(u, e); // S424/S425: held; the data of a write it covers wholly is dropped ([0191])
      trace(TRACE_REMOTE_DELAY, (<u32>h.srcNode << 16) | (meta(i).owner - 1), h.cmdId, h.issuingId, 0);
      linkAnswer(port, LT_RECEIVED, <u32>load<u16>(m + 4), <u32>load<u16>(m + 6), h.cmdId, h.issuingId, <u32>h.origin, ANSWER_GOOD, 0, 0);
      return;
    }
  }
  snapLinkData(port, p); // a snapshot pair's write (embodiment 8)
}

/** The packet number of DATA packet p of a command of `total` bytes, or -1 when it is not a whole packet of it. */
export function standbyPacketBit(p: usize, total: u32): i32 {
  const h = pkt(p);
  if (h.offset % LINK_PAYLOAD_BYTES != 0 || h.offset >= total || <u32>h.length != min<u32>(LINK_PAYLOAD_BYTES, total - h.offset)) return -1;
  return <i32>(h.offset / LINK_PAYLOAD_BYTES);
}

function addWaiter(i: u32, p: usize): bool {
  const h = pkt(p);
  let free: i32 = -1;
  for (let w: u32 = 0; w < WAITERS; w++) {
    const at = metaAt(i) + META_WAITERS + w * WAITER_BYTES;
    if (load<u32>(at) == h.issuingId) { free = <i32>w; break; } // a repeat: answered where it came from last
    if (load<u32>(at) == 0 && free < 0) free = <i32>w;
  }
  if (free < 0) return false;
  const at = metaAt(i) + META_WAITERS + <u32>free * WAITER_BYTES;
  store<u32>(at, h.issuingId);
  store<u16>(at + 4, h.srcNode);
  store<u16>(at + 6, <u16>h.srcQueue);
  store<u32>(at + 8, h.cmdId);
  store<u32>(at + 12, <u32>h.origin);
  return true;
}

/** S468: the reflecting command with issuingId is done: its sender hears `a`. */
function answerWaiter(i: u32, issuingId: u32, a: u32): void {
  for (let w: u32 = 0; w < WAITERS; w++) {
    const at = metaAt(i) + META_WAITERS + w * WAITER_BYTES;
    if (load<u32>(at) != issuingId) continue;
    linkAnswer(meta(i).port, LT_RECEIVED, <u32>load<u16>(at + 4), <u32>load<u16>(at + 6), load<u32>(at + 8), issuingId, load<u32>(at + 12), a, 0, 0);
    store<u32>(at, 0);
  }
}

/**
 * Every poll of a link port: the reflects of the units fed through it go on. S462-S464 runs go to
 * apply contexts (APPLY_DEPTH at once); when the last is on the volume, S468 answers the reflect.
 */
export function standbyStep(port: u32): i32 {
  let work: i32 = 0;
  for (let i: u32 = 0; i < units(); i++) {
    const m = meta(i);
    if (m.owner == 0 || m.port != port) continue;
    const pi = m.owner - 1;
    const r = remote(pi);
    if (r.used == 0 || r.serial != m.serial) { m.owner = 0; continue; } // the pair went
    const u = unitAt(i);
    const run = metaAt(i) + META_RUN;
    while (m.applying < APPLY_DEPTH) {
      if (m.runValid == 0) {
        if (syncReflectNext(u, run) == 0) break;
        m.runValid = 1;
      }
      const c = linkApply(port, pi, m.serial, load<u32>(run + RUN_ENTRY), <u32>r.volume, load<u64>(run + RUN_LBA), load<u32>(run + RUN_BLOCKS), <usize>load<u32>(run + RUN_DATA));
      if (c == 0) break; // no context now: the run waits here
      trace(TRACE_REMOTE_REFLECT, pi, <u32>load<u64>(run + RUN_LBA), load<u32>(run + RUN_ISSUING), load<u32>(run + RUN_BLOCKS));
      m.runValid = 0;
      m.applying++;
      work++;
    }
    if (m.applying != 0 || m.runValid != 0) continue;
    const done = syncReflectComplete(u);
    if (done == 0) continue;
    const s = syncUnit(u);
    r.issued = s.lastIssuing; // REMOTE STATUS shows the restart point reached
    r.writes++;
    answerWaiter(i, s.lastIssuing, done == SYNC_MEDIUM_ERROR ? ANSWER_MEDIUM : ANSWER_GOOD);
    work++;
  }
  return work + snapLinkStep(port);
}

/** An apply context's window: the run's bytes from the unit's entry. */
export function standbyWindow(dst: usize, src: usize, n: u32): void { memory.copy(dst, src, n); }

/** S466/S467: an apply context of pair pi (serial) for entry e ended. */
export function standbyApplyDone(pi: u32, serial: u32, e: u32, ok: bool): void {
  if (snapLinkOwns(pi)) { snapLinkApplyDone(pi, serial, e, ok); return; } // embodiment 8's contexts
  const i = unitOf(pi);
  if (i < 0 || meta(<u32>i).serial != serial) return;
  syncWriteDone(unitAt(<u32>i), e, ok);
  if (meta(<u32>i).applying > 0) meta(<u32>i).applying--;
}

/**
 * REMOTE CHANGE failover on the secondary (S480-S485): the held writes no reflect has begun
 * writing are discarded. False while a reflect is still writing (S484: the command asks again);
 * true when the volume is at its last restart enabling point and the unit is free again.
 */
export function standbyFailover(pi: u32): bool {
  const i = unitOf(pi);
  if (i < 0) return true;
  const s = syncUnit(unitAt(<u32>i));
  traceDiscards(unitAt(<u32>i), pi);
  if (syncDiscard(unitAt(<u32>i)) == 0) return false;
  trace(TRACE_REMOTE_DISCARD, pi, s.discarded, s.lastIssuing, s.lastSync); // the unit counts only failover's discards
  meta(<u32>i).owner = 0;
  return true;
}

/** One TRACE_REMOTE_DISCARDED per write syncDiscard is about to drop (those of the reflect writing stay). */
function traceDiscards(u: usize, pi: u32): void {
  const s = syncUnit(u);
  for (let e: u32 = 0; e < s.entries; e++) {
    const id = syncEntryIssuing(u, e);
    if (id == 0 || (s.phase == RP_WRITING && syncEntrySync(u, e) == s.reflectSync)) continue;
    trace(TRACE_REMOTE_DISCARDED, pi, syncEntrySync(u, e), id, syncEntryBytes(u, e));
  }
}

// ---- The primary -------------------------------------------------------------------------------------

/** A delayed (embodiment 7) or snapshot (embodiment 8) pair: the standby orders its host writes itself. */
function standing(p: u32): bool { return remote(p).mode == RM_DELAYED || remote(p).mode == RM_SNAPSHOT; }

/** Pair p sends its host writes as delay writes (LF_DELAYED). */
export function standbyDelays(p: u32): bool { return standing(p) && remote(p).state == RS_PAIR; }

/**
 * The packet flags (LF_*) of a send command of pair p with `op` and link flags `flags`: a host write of
 * a delayed pair in `pair` LF_DELAYED; of a snapshot pair LF_DELAYED | LF_SNAPSHOT, and its restart
 * points' forming commands LF_SNAPSHOT too (the standby's unit takes them, remote/snaplink.ts).
 */
export function standbyPacketFlags(p: u32, op: u32, flags: u32): u32 {
  if (!standbyDelays(p)) return 0;
  const snap = remote(p).mode == RM_SNAPSHOT ? LF_SNAPSHOT : 0;
  if (op == LOP_NONE && (flags & LXF_COPY) == 0) return LF_DELAYED | snap;
  return op == LOP_REFLECT ? snap : 0;
}

/** The longest send command of pair p's host writes: a delayed or snapshot pair's fit one entry (hold slot) of the standby's unit. */
export function standbyCommandBytes(p: u32): u32 { return standing(p) ? STANDBY_COMMAND_BYTES : LINK_MAX_COMMAND_BYTES; }

/** A delayed pair whose copy has ended but whose last direct writes are still in flight: host sends wait. */
export function standbyHoldsSends(p: u32): bool {
  const r = remote(p);
  // The copy's cursor past the volume's end (remote/mirror.ts: it sends the difference bitmap's runs,
  // which host writes may grow while it runs, so the bytes copied say less than the cursor).
  return standing(p) && r.state == RS_COPY && r.copyActive == 0 && r.copyNext >= capacityBlocks(<u32>r.volume) * <u64>blockSize(<u32>r.volume);
}

/**
 * The copy of pair p has ended: may it be RS_PAIR now? A delayed pair only once nothing is in flight
 * (every direct write is at the standby); then synchronization ID 1 begins.
 */
export function standbyCopyEnds(p: u32): bool {
  const r = remote(p);
  if (!standing(p)) return true;
  if (r.inFlight != 0) return false;
  r.syncId = 1;
  return true;
}

/** REMOTE CHANGE restart point may be taken for pair p. */
export function standbyRestartable(p: u32): bool { return standbyDelays(p); }
