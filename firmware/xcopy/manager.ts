// The copy manager, on the disk IOP (document 001: the I/O processor 503 "backs up the data about
// the range to be backed up to the tape device", with 508's copy of the differential data first).
// It executes the copies the channel IOPs queued in the copy table (table.ts), segment by segment,
// a bounded step per poll, so host I/O and the pair copy go on beside it.
//
// A data segment moves its bytes in rounds through the copy's backup data storage area (515): FILL
// the area from the source (volume slots through the cache, staged by this IOP when missing; a tape
// record; the inline or embedded data), then DRAIN it to the destination (one tape request for
// the round: one variable record, or fixed blocks; or volume slots written into the cache and
// persisted like a host write). A volume write is durable once its NV entries complete; the copy
// reports GOOD only when every one of them has.
//
// Reading a pair's split-pending target (vendor segment C0h's policy, 001's embodiments):
//   PP_MERGE     each slot from where its data is now (pairReadVolume: not-yet-reflected tracks
//                from the source, which keeps them as they were at the split): the area merges
//                source and target data (3rd embodiment, FIGs 8-9)
//   PP_PRIORITY  the segment's tracks are made the pair copy's priority range (508 copies them
//                first) and the round waits until they are reflected, then reads the target
//                (1st embodiment, FIG. 4 steps 6-7)
//   PP_WAIT      the round waits until the whole difference is reflected (the pair is split)
//                (2nd embodiment, FIG. 6)
// Tape drives are claimed per request (a host's command to the drive may come between two records;
// the backup server's RESERVE keeps other hosts off), so an abort never leaves a drive claimed: a
// request in flight is left ORPHAN for the next user to reap (tape/device.ts).
import { SLOT_SECTORS, SLOT_BYTES, TCQ_STATUS, TCQ_DONE, TCQ_LENGTH, TCQ_FLAGS, TOP_WRITE, TOP_READ, TOP_WRITE_MARKS, TST_OK,
  TST_TAPEMARK, TST_EOD, TST_EOM, TST_WRITE_ERROR, TST_READ_ERROR, TST_NO_MEDIUM, TST_NOT_LOADED, TST_OFFLINE, TST_PROTECTED,
} from "../abi";
import { gNow, wakeAt } from "../iop";
import {
  cacheLookup, sectorsValid, slotFlags, slotSetFlags, slotClearFlags, missingRun, slotData, writeSectors, pin, unpin,
  poisonedSector, bumpEvent, volumeFenced, slotHold, slotReuse, slotForCopy, slotForCopyCancel, fillBlank, slotList, LIST_HELD, F_STAGING, F_READ_ERROR, F_NOT_READY, WRITE_NV_ENTRIES,
} from "../cache";
import { volumeChunkBlank } from "../initmap";
import { thinEnsure } from "../thin";
import { volumeReady, volumeInUse, VOLE_CHUNKS } from "../volume";
import { nvRoom, nvId, nvKick, nvDegraded, NVK_XCOPY, volumeEntry } from "../nv";
import { allocateFor, slotWaitNs } from "../sequencer";
import { log, LOG_ERROR } from "../hal";
import { statInc } from "../stats";
import { STAT_SLOT_WAIT_EXPIRED } from "../abi";
import { stageSlot } from "../disk";
import { senseFixed } from "../ctx";
import { getBe16, getBe32, getBe64 } from "../util";
import { tapeClaim, tapeSubmit, tapeResult, tapeFinish, tapeForget } from "../tape/device";
import { rec, runtime, pairOfVolume, isTarget, setState, pairPersist, PS_SPLIT_PENDING, PS_DUPLEX, PS_DUPLEX_PENDING, PS_SPLIT } from "../pair/table";
import { pairReadVolume, pairBeforeWrite, PW_WAIT, PW_REFUSE, PW_PERSISTED } from "../pair/io";
import { pairRangeReflected } from "../scsi/pair";
import { sessionAlive } from "./nexus";
import {
  op, opAt, target, segmentAt, stageArea, MAX_COPIES, STAGE_BYTES, OP_INLINE, OP_HELD, OP_TARGET_SENSE, HELD_BYTES,
  XS_FREE, XS_QUEUED, XS_RUNNING, XS_DONE, XF_DETACHED, XF_NRCR, XF_SPLIT_DONE, CMS_GOOD, CMS_FAILED, PP_MERGE, PP_PRIORITY,
  PP_WAIT,
} from "./table";

/** A copy waiting for a pair copy, a drive or a track gives up after this, naming what it waited for. */
const WAIT_NS: f64 = 120e9;

// Phases of a data segment.
const PH_START: u32 = 0;
const PH_FILL: u32 = 1;
const PH_DRAIN: u32 = 2;

// Segment types (command.ts checked them).
const SEG_BLOCK_TO_STREAM: u32 = 0x00;
const SEG_STREAM_TO_BLOCK: u32 = 0x01;
const SEG_BLOCK_TO_BLOCK: u32 = 0x02;
const SEG_INLINE_TO_STREAM: u32 = 0x04;
const SEG_EMBEDDED_TO_STREAM: u32 = 0x05;
const SEG_STREAM_TO_DISCARD_HOLD: u32 = 0x0F;
const SEG_WRITE_FILEMARKS: u32 = 0x10;
const SEG_PAIR_BACKUP: u32 = 0xC0;

// What a step returns: it moved on (1), waits (0), or the copy ended (2).
const WAIT: i32 = 0;
const MOVED: i32 = 1;
const ENDED: i32 = 2;

// @ts-ignore: decorator
@inline function token(i: u32): u32 { return 0xC0000000 | (i + 1); }

/** The disk IOP's poll: copies are taken in and stepped, a copy of priority p getting 8 - p steps. */
export function xcopyPoll(): i32 {
  let work: i32 = 0;
  let running: u32 = 0;
  for (let i: u32 = 0; i < MAX_COPIES; i++) {
    const o = op(i);
    const st = atomic.load<u32>(opAt(i));
    if (st == XS_QUEUED) { start(i); work++; }
    if (o.state != XS_RUNNING) continue;
    running++;
    for (let k: u32 = 0; k < 8 - o.priority; k++) {
      const r = step(i);
      if (r == WAIT) break;
      work++;
      if (r == ENDED) { running--; break; }
    }
  }
  if (running == 0) slotForCopyCancel(); // nothing left to want a slot kept for it
  return work;
}

function start(i: u32): void {
  const o = op(i);
  o.segment = 0;
  o.phase = PH_START;
  o.startNs = gNow;
  o.slotWaitNs = 0;
  o.seq = (o.seq + 1) & 0xFFFFFF;
  atomic.store<u32>(opAt(i), XS_RUNNING);
}

function step(i: u32): i32 {
  const o = op(i);
  const stop = o.abort;
  if (stop != 0) return fail(i, stop >> 16, (stop >> 8) & 0xFF, stop & 0xFF, 0, 0); // task management, a reset (command.ts)
  if ((o.flags & XF_DETACHED) != 0 && !sessionAlive(o.port, o.session, o.sessionGen)) {
    return fail(i, 0x0B, 0x29, 0x07, 0, 0); // ABORTED COMMAND, I_T NEXUS LOSS OCCURRED: nobody can follow it any more
  }
  if (o.segment >= o.segments) {
    if (o.nvPending != 0) return WAIT;
    if (o.nvFailed != 0) return fail(i, 0x04, 0x44, 0x00, 0, 0); // an NV write of the copied data failed
    return end(i, CMS_GOOD);
  }
  const d = segmentAt(i, o.segment);
  const type = <u32>load<u8>(d);
  let r: i32;
  if (type == SEG_PAIR_BACKUP) r = pairSegment(i, d);
  else if (type == SEG_WRITE_FILEMARKS) r = filemarks(i, d);
  else r = dataSegment(i, d, type);
  return r;
}

function nextSegment(i: u32): i32 {
  const o = op(i);
  o.segment++;
  o.phase = PH_START;
  o.offset = 0;
  o.fill = 0;
  o.drained = 0;
  o.waitNs = 0;
  o.slotWaitNs = 0;
  o.half = 0;
  o.flight = 0;
  return MOVED;
}

// ---- Ending ----------------------------------------------------------------------------------------

function release(i: u32): void {
  const o = op(i);
  if (o.pinned != 0) { unpin(o.pinned - 1); o.pinned = 0; }
  if (o.tape != 0) {
    const dev = o.tape - 1;
    if (o.inFlight != 0) tapeForget(dev, token(i)); // its completion is reaped by the next user
    else tapeFinish(dev, token(i), false);
    o.tape = 0;
    o.inFlight = 0;
  }
}

function end(i: u32, status: u32): i32 {
  const o = op(i);
  release(i);
  o.status = status;
  if (status == CMS_GOOD) o.failedSegment = 0;
  o.seq = (o.seq + 1) & 0xFFFFFF; // NV completions still on their way are not this copy's any more
  o.nvPending = 0;
  bumpEvent();
  // NRCR and no command waiting: nobody will ask for the results, the record is free now. Else they
  // wait for the command, or for RECEIVE COPY RESULTS of the same nexus (command.ts frees them).
  const nobody = (o.flags & XF_NRCR) != 0 && (o.flags & XF_DETACHED) != 0;
  atomic.store<u32>(opAt(i), nobody ? XS_FREE : XS_DONE);
  return ENDED;
}

/** The copy ends with CHECK CONDITION key/asc/ascq; the copy target's status and sense, if any, for FAILED SEGMENT DETAILS. */
function fail(i: u32, key: u32, asc: u32, ascq: u32, targetStatus: u32, targetSense: u32): i32 {
  const o = op(i);
  o.senseKey = key;
  o.asc = asc;
  o.ascq = ascq;
  o.failedSegment = o.segment;
  o.targetStatus = targetStatus;
  o.targetSenseLength = 0;
  if (targetSense != 0) {
    senseFixed(opAt(i) + OP_TARGET_SENSE, (targetSense >> 16) & 0xFF, (targetSense >> 8) & 0xFF, targetSense & 0xFF, 0, false, 0);
    o.targetSenseLength = 18;
  }
  return end(i, CMS_FAILED);
}

/** A copy target failed: COPY ABORTED, THIRD PARTY DEVICE FAILURE; its CHECK CONDITION and sense kept. */
function targetFailed(i: u32, sense: u32): i32 { return fail(i, 0x0A, 0x0D, 0x01, 0x02, sense); }

/** A bounded wait: true while it may go on; else the copy fails, naming what it waited for. */
function waiting(i: u32, ascq: u32): bool {
  const o = op(i);
  if (o.waitNs == 0) o.waitNs = gNow + WAIT_NS;
  if (gNow < o.waitNs) { wakeAt(o.waitNs); return true; }
  fail(i, 0x0A, 0x85, ascq, 0, 0); // COPY ABORTED, 85h/06h a pair copy, 85h/07h a drive, did not come in time
  return false;
}

/**
 * The copy found no cache slot for volume v's chunk slotNo (every slot dirty, pinned or staging),
 * or found it staging: it polls again, at most the array's slot-wait bound (sequencer slotWaitNs)
 * from the first time. At the bound the copy fails its segment COPY ABORTED, SYSTEM BUFFER FULL
 * (55h/01h), as a host command would: RECEIVE COPY RESULTS names the cache and the segment, the log
 * the volume and LBA. True while it may wait.
 */
function slotWaiting(i: u32, v: u32, slotNo: u32): bool {
  const o = op(i);
  if (o.slotWaitNs == 0) o.slotWaitNs = gNow + slotWaitNs();
  if (gNow < o.slotWaitNs) { wakeAt(min<f64>(o.slotWaitNs, gNow + 1e5)); return true; }
  log(LOG_ERROR, "xcopy: a copy waited the slot-wait bound for the cache slot of 64 KiB at (volume, first 512-byte sector) and fails 55h/01h", v, slotNo << 7);
  statInc(STAT_SLOT_WAIT_EXPIRED);
  fail(i, 0x0A, 0x55, 0x01, 0, 0);
  return false;
}

// ---- Vendor segment C0h: split, IMMED, policy ------------------------------------------------------

function pairSegment(i: u32, d: usize): i32 {
  const o = op(i);
  const v = target(i, getBe16(d + 4)).device;
  const p = pairOfVolume(v);
  if (p < 0) return fail(i, 0x05, 0x85, 0x00, 0, 0); // deleted since the list was checked
  const split = (<u32>load<u8>(d + 6) & 1) != 0;
  if (o.phase == PH_START) {
    o.pair = p;
    o.policy = <u32>load<u8>(d + 7);
    if (!split) { o.flags |= XF_SPLIT_DONE; return nextSegment(i); }
    const st = <u32>rec(<u32>p).state;
    if (st != PS_DUPLEX && st != PS_DUPLEX_PENDING) return fail(i, 0x05, 0x85, 0x02, 0, 0);
    if (!nvRoom(1)) return WAIT;
    // 001 FIG. 11: the source's state "pair split", the target's "split pending"; 508 goes on copying.
    setState(<u32>p, PS_SPLIT_PENDING);
    rec(<u32>p).splitAtNs = gNow;
    if (pairPersist(<u32>p, nvId(NVK_XCOPY, (i << 24) | o.seq))) o.nvPending++;
    bumpEvent();
    nvKick();
    o.phase = PH_DRAIN;
    return MOVED;
  }
  if (o.nvPending != 0) return WAIT;
  if (o.nvFailed != 0) return fail(i, 0x04, 0x44, 0x00, 0, 0);
  o.flags |= XF_SPLIT_DONE; // an IMMED command answers now
  return nextSegment(i);
}

// ---- Write filemarks (10h) ----------------------------------------------------------------------------

function filemarks(i: u32, d: usize): i32 {
  const count = (<u32>load<u8>(d + 9) << 16) | getBe16(d + 10);
  const r = tapeRequest(i, target(i, getBe16(d + 6)).device, TOP_WRITE_MARKS, count, 0, 0);
  if (r < 0) return pending(r);
  if (<u32>r != TST_OK) return targetFailed(i, tapeSense(<u32>r));
  return nextSegment(i);
}

// What tapeRequest returns besides a completion's TST_* status.
const REQ_WAIT: i32 = -1; // the request is at the drive (or waits for its ring)
const REQ_SUBMITTED: i32 = -2; // submitted now
const REQ_ENDED: i32 = -3; // the copy ended waiting for the drive

/**
 * The copy's one tape request at a time: submitted (the drive claimed) when none is in flight; its
 * completion's status once it has come (TCQ_DONE and TCQ_LENGTH kept, the claim given back).
 */
function tapeRequest(i: u32, dev: u32, top: u32, count: u32, addr: usize, arg: u32): i32 {
  const o = op(i);
  if (o.inFlight == 0) {
    if (!claim(i, dev)) return o.state == XS_RUNNING ? REQ_WAIT : REQ_ENDED;
    if (!tapeSubmit(dev, top, <i32>count, addr, arg, 0)) return REQ_WAIT;
    o.inFlight = 1;
    return REQ_SUBMITTED;
  }
  const e = tapeResult(dev);
  if (e == 0) return REQ_WAIT;
  const status = <i32>load<u16>(e + TCQ_STATUS);
  o.tapeDone = load<u32>(e + TCQ_DONE);
  o.tapeLength = load<u32>(e + TCQ_LENGTH);
  reap(i, dev);
  return status;
}

/** A step's result while tapeRequest has no completion yet. */
function pending(r: i32): i32 { return r == REQ_ENDED ? ENDED : r == REQ_SUBMITTED ? MOVED : WAIT; }

function claim(i: u32, dev: u32): bool {
  const o = op(i);
  if (tapeClaim(dev, token(i))) { o.tape = dev + 1; o.waitNs = 0; return true; }
  waiting(i, 0x07);
  return false;
}

function reap(i: u32, dev: u32): void {
  const o = op(i);
  tapeFinish(dev, token(i), true);
  o.tape = 0;
  o.inFlight = 0;
}

/** The sense a drive gives for a completion status (docs/tape.md), as key << 16 | asc << 8 | ascq. */
function tapeSense(status: u32): u32 {
  if (status == TST_NO_MEDIUM) return 0x023A00;
  if (status == TST_NOT_LOADED) return 0x020402;
  if (status == TST_OFFLINE) return 0x020412;
  if (status == TST_PROTECTED) return 0x072700;
  if (status == TST_EOM) return 0x0D0002; // VOLUME OVERFLOW, END-OF-PARTITION/MEDIUM DETECTED
  if (status == TST_WRITE_ERROR) return 0x030C00;
  if (status == TST_READ_ERROR) return 0x031100;
  if (status == TST_TAPEMARK) return 0x000001;
  if (status == TST_EOD) return 0x080005;
  return 0x044400;
}

// ---- Data segments -------------------------------------------------------------------------------------

/** Total bytes of a data segment (command.ts checked they agree on both sides). */
function segmentBytes(i: u32, d: usize, type: u32): u64 {
  if (type == SEG_BLOCK_TO_STREAM) return <u64>getBe16(d + 14) * <u64>target(i, getBe16(d + 4)).blockBytes;
  if (type == SEG_STREAM_TO_BLOCK) return <u64>getBe16(d + 14) * <u64>target(i, getBe16(d + 6)).blockBytes;
  if (type == SEG_BLOCK_TO_BLOCK) {
    const dc = (<u32>load<u8>(d + 1) & 0x02) != 0;
    return <u64>getBe16(d + 10) * <u64>target(i, getBe16(d + (dc ? 6 : 4))).blockBytes;
  }
  if (type == SEG_INLINE_TO_STREAM) return <u64>getBe32(d + 16);
  if (type == SEG_EMBEDDED_TO_STREAM) return <u64>getBe16(d + 14);
  const stream = target(i, getBe16(d + 4));
  return <u64>((<u32>load<u8>(d + 9) << 16) | getBe16(d + 10)) * <u64>(stream.blockBytes == 0 ? 1 : stream.blockBytes);
}

/** The bytes one round moves: a whole variable record, whole fixed blocks, or the area. */
function roundBytes(i: u32, d: usize, type: u32, left: u64): u32 {
  let unit: u32 = 512;
  if (type != SEG_BLOCK_TO_BLOCK) {
    const stream = target(i, getBe16(d + (type == SEG_STREAM_TO_BLOCK || type == SEG_STREAM_TO_DISCARD_HOLD ? 4 : 6)));
    if (stream.blockBytes == 0) return <u32>left; // one record (at most the area: command.ts)
    unit = stream.blockBytes;
  }
  const most = STAGE_BYTES / unit * unit;
  return <u32>min<u64>(left, <u64>most);
}

/** The half of the storage area rounds are filled into (0 unless the segment streams in halves). */
// @ts-ignore: decorator
@inline function area(i: u32): usize { return stageArea(i) + <usize>op(i).half * HALF_BYTES; }
const HALF_BYTES: u32 = STAGE_BYTES / 2;

function dataSegment(i: u32, d: usize, type: u32): i32 {
  const o = op(i);
  const total = segmentBytes(i, d, type);
  if (type == SEG_BLOCK_TO_STREAM && target(i, getBe16(d + 6)).blockBytes != 0 && target(i, getBe16(d + 6)).blockBytes <= HALF_BYTES) {
    return streamInHalves(i, d, total);
  }
  if (o.phase == PH_START) {
    if (o.offset >= total) return nextSegment(i);
    if (!policyReady(i, d, type)) return o.state == XS_RUNNING ? WAIT : ENDED;
    o.chunk = roundBytes(i, d, type, total - o.offset);
    o.fill = 0;
    o.drained = 0;
    o.phase = PH_FILL;
    o.waitNs = 0;
  }
  if (o.phase == PH_FILL) {
    const r = fillRound(i, d, type);
    if (r != MOVED || o.fill < o.chunk) return r;
    o.phase = PH_DRAIN;
    o.waitNs = 0;
  }
  const r = drainRound(i, d, type);
  if (r != MOVED || o.drained < o.chunk) return r;
  o.offset += <u64>o.chunk;
  o.transferred += <u64>o.chunk;
  o.phase = PH_START;
  return MOVED;
}

/**
 * Block -> fixed-block stream, the backup's bulk: the area's two halves take turns, one filled from
 * the volume while the drive writes the other, so the drive streams instead of waiting for each
 * fill (the round a request carries is `flight`; the fill reads from offset + flight).
 */
function streamInHalves(i: u32, d: usize, total: u64): i32 {
  const o = op(i);
  const stream = target(i, getBe16(d + 6));
  const dev = stream.device;
  let work: i32 = WAIT;
  if (o.inFlight != 0) {
    const r = tapeRequest(i, dev, TOP_WRITE, 0, 0, 0);
    if (r >= 0) {
      if (<u32>r != TST_OK) return targetFailed(i, tapeSense(<u32>r));
      o.offset += <u64>o.flight;
      o.transferred += <u64>o.flight;
      o.flight = 0;
      work = MOVED;
    }
  }
  const ahead = o.offset + <u64>o.flight;
  if (o.phase == PH_START && ahead < total) {
    if (!policyReady(i, d, SEG_BLOCK_TO_STREAM)) return o.state == XS_RUNNING ? work : ENDED;
    const unit = stream.blockBytes;
    o.chunk = <u32>min<u64>(total - ahead, <u64>(HALF_BYTES / unit * unit));
    o.fill = 0;
    o.phase = PH_FILL;
    o.waitNs = 0;
  }
  if (o.phase == PH_FILL && o.fill < o.chunk) {
    const r = fillRound(i, d, SEG_BLOCK_TO_STREAM);
    if (r == ENDED) return ENDED;
    if (r == MOVED) work = MOVED;
  }
  if (o.phase == PH_FILL && o.fill == o.chunk && o.inFlight == 0) {
    const r = tapeRequest(i, dev, TOP_WRITE, o.chunk, area(i), stream.blockBytes);
    if (r != REQ_SUBMITTED) return r == REQ_ENDED ? ENDED : work;
    o.flight = o.chunk;
    o.half ^= 1; // the next round fills the other half
    o.phase = PH_START;
    return MOVED;
  }
  if (o.inFlight == 0 && o.phase == PH_START && o.offset >= total) return nextSegment(i);
  return work;
}

/**
 * Before a round reads a pair's split-pending target, C0h's policy: the priority copy of the
 * segment's tracks and the wait for them (1st), or the wait for the whole split (2nd); merging
 * (3rd) needs no wait.
 */
function policyReady(i: u32, d: usize, type: u32): bool {
  const o = op(i);
  if (o.pair < 0 || (type != SEG_BLOCK_TO_STREAM && type != SEG_BLOCK_TO_BLOCK) || o.policy == PP_MERGE) return true;
  const p = <u32>o.pair;
  const src = target(i, getBe16(d + 4));
  if (pairOfVolume(src.device) != o.pair || !isTarget(p, src.device) || <u32>rec(p).state != PS_SPLIT_PENDING) return true;
  if (o.policy == PP_WAIT) { waiting(i, 0x06); return false; } // 2nd embodiment (FIG. 6): until the pair is split
  // 1st embodiment (FIG. 4 step 6): 508 copies this segment's differential data first.
  const lba = getBe64(d + (type == SEG_BLOCK_TO_STREAM ? 16 : 12));
  const bytes = segmentBytes(i, d, type);
  const first = <u32>((lba * <u64>src.blockBytes) >> <u64>rec(p).trackShift);
  const endT = <u32>((lba * <u64>src.blockBytes + bytes + (<u64>1 << <u64>rec(p).trackShift) - 1) >> <u64>rec(p).trackShift);
  if (pairRangeReflected(p, first, endT)) return true; // step 7: reflected, the backup of it starts
  const rt = runtime(p);
  rt.priorityFirst = first;
  rt.priorityEnd = min<u32>(endT, rec(p).tracks);
  waiting(i, 0x06);
  return false;
}

// ---- Fill ----------------------------------------------------------------------------------------------

function fillRound(i: u32, d: usize, type: u32): i32 {
  const o = op(i);
  const to = area(i);
  if (type == SEG_INLINE_TO_STREAM || type == SEG_EMBEDDED_TO_STREAM) {
    const from = type == SEG_INLINE_TO_STREAM ? opAt(i) + OP_INLINE + getBe32(d + 12) : d + 16;
    memory.copy(to, from + <usize>o.offset, o.chunk);
    o.fill = o.chunk;
    return MOVED;
  }
  if (type == SEG_STREAM_TO_BLOCK || type == SEG_STREAM_TO_DISCARD_HOLD) return fillFromTape(i, d);
  const src = target(i, getBe16(d + 4));
  const lba = getBe64(d + (type == SEG_BLOCK_TO_STREAM ? 16 : 12));
  const base = lba * <u64>src.blockBytes + o.offset + <u64>o.flight;
  if (o.fill == 0) stageAhead(src.device, <u32>((base + <u64>o.chunk) >> 16), STAGE_AHEAD_SLOTS);
  let work: i32 = WAIT;
  while (o.fill < o.chunk) {
    const at = base + <u64>o.fill;
    const slotNo = <u32>(at >> 16);
    const within = <u32>(at & 0xFFFF);
    const n = min<u32>(o.chunk - o.fill, SLOT_BYTES - within);
    const s = readSlot(i, src.device, slotNo);
    if (s == -1) return work;
    if (s <= -2 && s != -3) return ENDED;
    if (s == -3) memory.fill(to + o.fill, 0, n); // never written: zeros
    else memory.copy(to + o.fill, slotData(<u32>s) + within, n);
    o.fill += n;
    work = MOVED;
  }
  // The copy keeps its slot for the next round (out of circulation, no identity): it need not win
  // one again from a host load that takes every slot a destage frees (docs/xcopy.md).
  if (o.pinned != 0 && !slotHold(o.pinned - 1)) { unpin(o.pinned - 1); o.pinned = 0; }
  return MOVED;
}

/** Slots a round asks the media for beyond its own, so the next round's reads are under way. */
const STAGE_AHEAD_SLOTS: u32 = 16;

/**
 * Asks for the stage of volume v's slots [first, first + n) (where a host read would read them)
 * that are neither in the cache nor on their way; a hint: a slot evicted before its round comes is
 * staged again then.
 */
function stageAhead(v: u32, first: u32, n: u32): void {
  const chunks = load<u32>(volumeEntry(v) + VOLE_CHUNKS);
  for (let k: u32 = 0; k < n && first + k < chunks; k++) {
    const from = pairReadVolume(v, first + k);
    if (cacheLookup(from, first + k) >= 0 || volumeChunkBlank(from, first + k)) continue;
    const s = allocateFor(from, first + k);
    if (s < 0) return;
    const slot = <u32>s;
    if ((slotFlags(slot) & F_STAGING) != 0 || sectorsValid(slot, 0, SLOT_SECTORS)) continue;
    slotSetFlags(slot, F_STAGING);
    if (!stageSlot(slot, 0, SLOT_SECTORS)) { slotClearFlags(slot, F_STAGING); return; }
  }
}

/**
 * The cache slot holding volume v's chunk slotNo as a host read would see it (a pair's target
 * reads not-yet-reflected tracks from its source: the merge of the 3rd embodiment), pinned and
 * valid: its index; -1 wait (a stage, a slot); -2 the copy failed; -3 never written (zeros).
 */
function readSlot(i: u32, v: u32, slotNo: u32): i32 {
  const o = op(i);
  if (!volumeInUse(v) || volumeFenced(v)) { fail(i, 0x0A, 0x0D, 0x02, 0, 0); return -2; } // deleted under the copy
  if (!volumeReady(v)) { targetFailed(i, 0x020403); return -2; }
  const from = pairReadVolume(v, slotNo);
  let s = cacheLookup(from, slotNo);
  const held = o.pinned != 0 && slotList(o.pinned - 1) == LIST_HELD;
  if (s < 0 && (o.pinned == 0 || held) && volumeChunkBlank(from, slotNo)) return -3;
  if (s < 0) s = ownSlot(i, from, slotNo);
  if (s < 0) return slotWaiting(i, from, slotNo) ? -1 : -2;
  o.slotWaitNs = 0;
  const slot = <u32>s;
  if (o.pinned != slot + 1) {
    if (o.pinned != 0) unpin(o.pinned - 1);
    pin(slot);
    o.pinned = slot + 1;
    o.staged = 0;
  }
  if (poisonedSector(slot, 0, SLOT_SECTORS) >= 0) { targetFailed(i, 0x031100); return -2; }
  if (sectorsValid(slot, 0, SLOT_SECTORS)) return s;
  const f = slotFlags(slot);
  if ((f & F_STAGING) != 0) return -1;
  if ((f & (F_READ_ERROR | F_NOT_READY)) != 0 && o.staged != 0) {
    targetFailed(i, (f & F_NOT_READY) != 0 ? 0x020403 : 0x031100);
    return -2;
  }
  const run = missingRun(slot, 0, SLOT_SECTORS);
  slotClearFlags(slot, F_READ_ERROR | F_NOT_READY);
  slotSetFlags(slot, F_STAGING);
  if (!stageSlot(slot, run >> 16, run & 0xFFFF)) { slotClearFlags(slot, F_STAGING); return -1; }
  o.staged = 1;
  return -1;
}

/**
 * A slot for a chunk that is not in the cache: the copy's own slot (its previous chunk's, kept by
 * slotHold when only the copy uses it and it is clean) given the chunk; else a new one, or the one an allocation kept for the copy since its
 * last try (slotForCopy: the hosts' writers cannot take every freed slot first). Pinned by the copy.
 */
function ownSlot(i: u32, from: u32, slotNo: u32): i32 {
  const o = op(i);
  if (o.pinned != 0 && (slotList(o.pinned - 1) == LIST_HELD || slotHold(o.pinned - 1))) {
    const slot = o.pinned - 1;
    slotReuse(slot, from, slotNo);
    o.staged = 0;
    return <i32>slot;
  }
  let s = allocateFor(from, slotNo);
  if (s < 0) {
    s = slotForCopy(from, slotNo); // pinned for us
    if (s < 0) return -1;
    if (o.pinned != 0) unpin(o.pinned - 1);
    o.pinned = <u32>s + 1;
    o.staged = 0;
  }
  if (volumeChunkBlank(from, slotNo)) fillBlank(<u32>s, 0, 0);
  return s;
}

/** One tape request reads the round: one variable record of exactly its length, or its fixed blocks. */
function fillFromTape(i: u32, d: usize): i32 {
  const o = op(i);
  const stream = target(i, getBe16(d + 4));
  const r = tapeRequest(i, stream.device, TOP_READ, o.chunk, stageArea(i), stream.blockBytes);
  if (r < 0) return pending(r);
  const status = <u32>r;
  const done = o.tapeDone;
  const record = o.tapeLength;
  if (status == TST_TAPEMARK || status == TST_EOD) return fail(i, 0x0A, 0x0D, 0x04, 0x02, tapeSense(status)); // DATA UNDERRUN
  if (status != TST_OK) return targetFailed(i, tapeSense(status));
  const got = stream.blockBytes == 0 ? record : done * stream.blockBytes;
  if (got < o.chunk) return fail(i, 0x0A, 0x0D, 0x04, 0x02, 0x000000); // a shorter record: underrun
  if (stream.blockBytes == 0 && record > o.chunk) return fail(i, 0x0A, 0x0D, 0x05, 0x02, 0x000000); // longer: overrun
  o.fill = o.chunk;
  return MOVED;
}

// ---- Drain ---------------------------------------------------------------------------------------------

function drainRound(i: u32, d: usize, type: u32): i32 {
  const o = op(i);
  if (type == SEG_STREAM_TO_DISCARD_HOLD) {
    const n = min<u32>(o.chunk, HELD_BYTES - o.heldBytes);
    memory.copy(opAt(i) + OP_HELD + o.heldBytes, stageArea(i), n);
    o.heldBytes += n;
    o.drained = o.chunk;
    return MOVED;
  }
  if (type == SEG_STREAM_TO_BLOCK || type == SEG_BLOCK_TO_BLOCK) return drainToVolume(i, d, type);
  const stream = target(i, getBe16(d + 6));
  const r = tapeRequest(i, stream.device, TOP_WRITE, o.chunk, stageArea(i), stream.blockBytes);
  if (r < 0) return pending(r);
  if (<u32>r != TST_OK) return targetFailed(i, tapeSense(<u32>r));
  // Past the early warning the record is written (SSC); the copy goes on to the physical end.
  o.drained = o.chunk;
  return MOVED;
}

/** Writes the area into the destination volume's slots, persisted like a host write (pair hooks included). */
function drainToVolume(i: u32, d: usize, type: u32): i32 {
  const o = op(i);
  const dst = target(i, getBe16(d + 6));
  const v = dst.device;
  const lba = getBe64(d + (type == SEG_STREAM_TO_BLOCK ? 16 : 20));
  const base = lba * <u64>dst.blockBytes + o.offset;
  const id = nvId(NVK_XCOPY, (i << 24) | o.seq);
  let work: i32 = WAIT;
  while (o.drained < o.chunk) {
    if (!volumeInUse(v) || volumeFenced(v)) return fail(i, 0x0A, 0x0D, 0x02, 0, 0);
    if (!volumeReady(v)) return targetFailed(i, 0x020403);
    if (nvDegraded()) return fail(i, 0x04, 0x44, 0x00, 0, 0);
    if (!nvRoom(WRITE_NV_ENTRIES + 1)) return work;
    const at = base + <u64>o.drained;
    const slotNo = <u32>(at >> 16);
    const within = <u32>(at & 0xFFFF);
    const n = min<u32>(o.chunk - o.drained, SLOT_BYTES - within);
    const intent = pairBeforeWrite(v, slotNo, id);
    if (intent == PW_WAIT) { if (!waiting(i, 0x06)) return ENDED; return work; }
    if (intent == PW_REFUSE) return targetFailed(i, 0x072700);
    if (intent == PW_PERSISTED) o.nvPending++;
    let slot = cacheLookup(v, slotNo);
    if (slot < 0) slot = allocateFor(v, slotNo);
    if (slot < 0 || (slotFlags(<u32>slot) & F_STAGING) != 0) return slotWaiting(i, v, slotNo) ? work : ENDED;
    o.slotWaitNs = 0;
    if (!thinEnsure(v, slotNo, <u32>slot)) return targetFailed(i, 0x072707); // a thin volume's media are full (27h/07h)
    writeSectors(<u32>slot, within >> 9, n >> 9, stageArea(i) + o.drained, gNow, id);
    o.nvPending += WRITE_NV_ENTRIES;
    o.drained += n;
    work = MOVED;
  }
  nvKick();
  return MOVED;
}

/** An NV completion of the copy manager's (disk.ts). */
export function xcopyNvDone(id: u32, status: u32): void {
  const payload = id & 0x0FFFFFFF;
  const i = payload >> 24;
  if (i >= MAX_COPIES) return;
  const o = op(i);
  if (o.state != XS_RUNNING || o.seq != (payload & 0xFFFFFF) || o.nvPending == 0) return;
  o.nvPending--;
  if (status != 0) o.nvFailed = 1;
}
