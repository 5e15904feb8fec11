// The disk IOP (document 001, I/O processor 508): it alone does I/O to the media. It polls the
// common memory's cache directory at an interval and destages dirty slots, stages the slots the
// channel IOPs ask for (mailboxes), and runs the IO scheduler and medium control (document 003).
//
// Destage policy: walk the dirty list from its oldest end; a slot is destaged when a flush asks
// for it (dirtySeq <= flushSeq), when it has been dirty for the destage age, or at once when the
// dirty share of the cache is above the high mark. Writes to one slot within the age coalesce. The
// age adapts to cache pressure (destageAgeNs): while dirty slots are at most half the high mark it
// is the idle age (long: a slot rewritten meanwhile is one medium write, its NV clean record one),
// and it falls linearly to the configured age as they reach the mark, so room for new writes is
// made before the mark forces everything out at once.
// A failed destage keeps the data dirty ("pinned") and is retried after a back-off; a dead
// medium is probed every second until it answers again.
import {
  CFG_DESTAGE_INTERVAL_US, CFG_DESTAGE_AGE_US, CFG_DESTAGE_AGE_IDLE_US, CFG_DIRTY_HIGH_PCT, CFG_STAGE_DEPTH, MAP_ADDR, MAP_MEDIA_TABLE,
  MAP_MEDIUM_BYTES, MMED_CQ, MCQ_ID, MCQ_STATUS, MCQ_ERR_LBA_LO, MCQ_ERR_LBA_HI, MST_OK, MST_NOT_READY,
  MOP_READ, MOP_WRITE, SLOT_SECTORS, MIOP_TO_DISK, ROLE_CHANNEL, MAP_CONTROL, MAP_CONTROL_SEQ,
  MAP_CONTROL_DONE, CTL_FLUSH, CTL_SHUTDOWN, STAT_STAGES, STAT_DESTAGES, STAT_MEDIUM_ERRORS,
  TRACE_STAGE, TRACE_DESTAGE, TRACE_FLUSH, NCQ_ID, NCQ_STATUS, MOP_FLUSH, MAX_MEDIA, STAT_MEDIA_FLUSHES,
  MAP_CONTROL_LEFT, MAP_CONTROL_STUCK, MAP_CONTROL_NV_ERRNO, MAP_CONTROL_CLEAN, MAP_CONTROL_STUCK_LIST,
  CONTROL_STUCK_MAX, CSE_BYTES, CSE_VOLUME, CSE_MEDIUM, CSE_REASON, CSE_LBA, CSE_BLOCKS, CSR_WRITE_ERROR,
  CSR_NOT_READY, CSR_NV, CSR_NO_MEDIUM, CSR_LOST, MEDS_OK, MEDS_LOST, MEDS_BECOMING_READY, TRACE_MEDIUM, STAT_POLLS,
  STAT_INIT_MARK_FAILURES, STAT_DESTAGE_NV_HELD,
} from "./abi";
import { cfg32, mediaCount, iopCount, iopRole } from "./config";
import { gPrivate, gNow, gNvCq, gStats, iopEntry, wakeAt } from "./iop";
import { ringPeek, ringRelease, ringUsed } from "./ring";
import {
  schedInit, schedRegister, schedDispatch, schedMatch, schedRetire, schedPoolFree, reqOrigin, reqArg,
  reqArg2, reqLba, reqMedium, reqSectors, SCHED_BYTES,
} from "./scheduler";
import {
  listFirst, listNext, LIST_DIRTY, slotFlags, slotClearFlags, F_DESTAGING, F_WRITE_ERROR,
  F_NOT_READY, slotDirtySeq, slotDirtyNs, slotRetryNs, slotVolume, slotNumber, slotData, destageBegin,
  destagingRun, destageOpsAdd, destageDone, stageDone, flushSeq, raiseFlushSeq, currentSeq, dirtyCountAll,
  slotCount, F_URGENT, urgentSlots, slotFlushNext, setSlotFlushNext, slotDirtyRange, fillBlank,
  slotList, slotPins, LIST_CLEAN, F_STAGING, dropSlot, bumpEvent, cacheCheck, DIR_CHECK_POLLS, slotMarkVerdict,
  slotDestageFailed, slotVerdictNs, F_NV_FAILED, F_VERDICTS, poisonedSector,
} from "./cache";
import { chunkInitialized, initMark, initUnmark, initClear, initTurnTake, initTurnGive, TURN_RELABEL } from "./initmap";
import { slotMedium, chunkHoldsData, thinMapSlot, thinMapFailed, thinDropSlot, thinDropMedium } from "./thin";
import { slotThinChunk } from "./cache";
import {
  blockSize, chunkToMedium, mediumState, MS_STATE, MS_REGISTERED, MS_ERRORS, MS_LABEL, MEDIUM_DEAD, setMediumState,
  mediumChunks, volumeThin, THIN_UNMAPPED, MS_RELABEL_TICKET, relabelPublish, RLB_LABELED, RLB_DEAD, RLB_WRITE_ERROR,
  RLB_NOT_LOST, RLB_BUSY,
} from "./volume";
import { labelVerdict, labelBuild, labelRecord, labelGeneration, LV_MATCH, LV_LOST } from "./label";
import { log, LOG_ERROR } from "./hal";
import {
  nvKick, nvRoom, nvBase, NVH_CLEAN, nvPersistRange, nvId, NVK_NONE, NVK_RESYNC, nvRegionBytes, nvDegraded,
  nvCompletionFailed, nvResynced, nvFailures, nvErrno, nvHeader, nvHeaderPersist, NVK_LABEL, NVK_PAIR, NVK_XCOPY,
  NVK_INIT_MARK,
} from "./nv";
import { statInc } from "./stats";
import { trace } from "./trace";
import { pairCopyPoll, pairNvDone } from "./pair/copy";
import { xcopyPoll, xcopyNvDone } from "./xcopy/manager";
import { MB_BYTES, MB_TYPE, MB_STAGE, MB_FLUSH, MB_RELABEL, MB_SLOT, MB_FIRST, MB_COUNT, MB_SEQ } from "./mailbox";

// Disk IOP private area.
const DK_SCHED: u32 = 0;
const DK_NEXT_SCAN_NS: u32 = SCHED_BYTES; // f64
const DK_NEXT_PROBE_NS: u32 = DK_NEXT_SCAN_NS + 8; // f64
const DK_CONTROL_SEQ: u32 = DK_NEXT_PROBE_NS + 8; // u32: last control request taken
const DK_CONTROL_OP: u32 = DK_CONTROL_SEQ + 4; // u32: control request in progress (CTL_*), 0 none
const DK_RESYNC_PENDING: u32 = DK_CONTROL_OP + 4; // u32: a whole-region NV rewrite is queued
const DK_RESYNC_FAILURES: u32 = DK_RESYNC_PENDING + 4; // u32: NV failures counted when it was queued
const DK_RESYNC_AT_NS: u32 = DK_RESYNC_FAILURES + 4; // f64: next rewrite attempt
const DK_RESYNC_BACKOFF_NS: u32 = DK_RESYNC_AT_NS + 8; // f64
const DK_FLUSH_ASKED_NS: u32 = DK_RESYNC_BACKOFF_NS + 8; // f64: the last flush request (MB_FLUSH, control)
const DK_CONTROL_AT_NS: u32 = DK_FLUSH_ASKED_NS + 8; // f64: the control request in progress was taken
const DK_PROBE_BUF: u32 = DK_CONTROL_SEQ + 64; // 512 bytes
// Per medium: the slots written to it that wait for a medium flush before their clean record.
const DK_FLUSH: u32 = DK_PROBE_BUF + 512; // MAX_MEDIA x FL_BYTES
const FL_BYTES: u32 = 32;
const FL_WAITING: u32 = 0; // u32: slot + 1, head of the slots whose writes completed since the last flush was sent
const FL_COVERED: u32 = 4; // u32: slot + 1, head of the slots the flush in flight (or just completed) covers
const FL_STATE: u32 = 8; // u32: FLS_*
const FL_STATUS: u32 = 12; // u32: MST_* of the completed flush
const FLS_IDLE: u32 = 0;
const FLS_IN_FLIGHT: u32 = 1;
const FLS_DONE: u32 = 2; // completed; its covered slots get their records as NV room allows
const DK_LABELS: u32 = DK_FLUSH + MAX_MEDIA * FL_BYTES; // MAX_MEDIA x 512: each medium's sector 0
export const DISK_PRIVATE_BYTES: u32 = DK_LABELS + MAX_MEDIA * 512;

// Where the check of a medium's label is (MS_LABEL).
const LBL_UNCHECKED: u32 = 0;
const LBL_READING: u32 = 1;
const LBL_WRITING: u32 = 2; // the array's label is being written (claim, or an accepted loss)
const LBL_FLUSHING: u32 = 3;
const LBL_RECORD: u32 = 4; // on the medium: its NV record is to be persisted
const LBL_PERSISTING: u32 = 5;
const LBL_DONE: u32 = 6;
const LBL_RELABEL: u32 = 7; // REINITIALIZE MEDIUM asked for a new label

const ORIGIN_STAGE: u32 = 1;
const ORIGIN_DESTAGE: u32 = 2;
const ORIGIN_PROBE: u32 = 3;
const ORIGIN_FLUSH: u32 = 4;
const ORIGIN_LABEL: u32 = 5; // arg: medium; arg2: LBL_* the request belongs to

const RETRY_NS: f64 = 1e9; // a failed destage or a dead medium is tried again after a second
const SCAN_LIMIT: u32 = 4096; // dirty slots looked at per scan, to bound a poll

// @ts-ignore: decorator
@inline function sa(): usize { return gPrivate + DK_SCHED; }

export function diskBoot(): void {
  schedInit(sa());
  store<f64>(gPrivate + DK_NEXT_SCAN_NS, 0);
  store<f64>(gPrivate + DK_NEXT_PROBE_NS, 0);
  store<u32>(gPrivate + DK_CONTROL_SEQ, load<u32>(MAP_ADDR + MAP_CONTROL_SEQ));
  store<u32>(gPrivate + DK_CONTROL_OP, 0);
  store<u32>(gPrivate + DK_RESYNC_PENDING, 0);
  store<f64>(gPrivate + DK_RESYNC_AT_NS, 0);
  store<f64>(gPrivate + DK_RESYNC_BACKOFF_NS, 0);
  store<f64>(gPrivate + DK_FLUSH_ASKED_NS, 0);
  store<f64>(gPrivate + DK_CONTROL_AT_NS, 0);
  memory.fill(gPrivate + DK_FLUSH, 0, MAX_MEDIA * FL_BYTES);
}

export function diskPoll(): i32 {
  if (ASC_OPTIMIZE_LEVEL == 0 && <u32>(load<u64>(gStats + (<usize>STAT_POLLS << 3)) % DIR_CHECK_POLLS) == 0) cacheCheck();
  let work: i32 = 0;
  work += drainNvCompletions();
  work += drainCompletions();
  work += drainMailboxes();
  work += control();
  work += checkLabels();
  work += destageScan();
  work += pairCopyPoll();
  work += xcopyPoll();
  work += flushMedia();
  work += probeDeadMedia();
  work += resyncNv();
  work += <i32>schedDispatch(sa(), gNow);
  if (work > 0) nvKick();
  armTimers();
  return work;
}

// ---- Mailboxes from the channel IOPs ------------------------------------------------------------

function drainMailboxes(): i32 {
  let work: i32 = 0;
  for (let i: u32 = 0; i < iopCount(); i++) {
    if (iopRole(i) != ROLE_CHANNEL) continue;
    const mb: usize = load<u32>(iopEntry(i) + MIOP_TO_DISK);
    let m = ringPeek(mb);
    while (m != 0) {
      if (!takeMessage(m)) break; // no room in the scheduler: the message waits for a later poll
      ringRelease(mb, 1);
      work++;
      m = ringPeek(mb);
    }
  }
  return work;
}

/**
 * A flush (a channel IOP's, or the harness's) wants everything dirtied up to `seq` on the media:
 * those slots are due, and each is tried again for it (a verdict older than the request is stale).
 */
function flushAsked(seq: u64): void {
  raiseFlushSeq(seq);
  store<f64>(gPrivate + DK_FLUSH_ASKED_NS, gNow);
}

function flushAskedNs(): f64 { return load<f64>(gPrivate + DK_FLUSH_ASKED_NS); }

function takeMessage(m: usize): bool {
  const type = <u32>load<u8>(m + MB_TYPE);
  if (type == MB_STAGE) return stage(load<u32>(m + MB_SLOT), <u32>load<u16>(m + MB_FIRST), <u32>load<u16>(m + MB_COUNT));
  if (type == MB_FLUSH) { flushAsked(load<u64>(m + MB_SEQ)); return true; }
  if (type == MB_RELABEL) return relabel(load<u32>(m + MB_SLOT), <u32>load<u64>(m + MB_SEQ));
  return true; // unknown messages are dropped: a channel IOP of a newer image
}

/** Registers the medium read for a stage; the channel IOP (or the pair copy) already set the slot's F_STAGING. */
export function stageSlot(slot: u32, first: u32, count: u32): bool { return stage(slot, first, count); }

function stage(slot: u32, first: u32, count: u32): bool {
  const where = slotMedium(slot);
  if (where == u64.MAX_VALUE) { stageDone(slot, first, count, false, first, true); return true; }
  const medium = <u32>(where >> 32);
  if (where == THIN_UNMAPPED || !chunkHoldsData(slotVolume(slot), slotNumber(slot), where)) { // never written: zeros, no medium read
    memory.fill(slotData(slot) + (<usize>first << 9), 0, <usize>count << 9);
    stageDone(slot, first, count, true, 0, false);
    return true;
  }
  if (!schedPoolFree(sa())) return false;
  const lba = ((where & 0xFFFFFFFF) << 7) + <u64>first;
  schedRegister(sa(), MOP_READ, medium, lba, count, slotData(slot) + (<usize>first << 9),
    ORIGIN_STAGE, slot, (first << 16) | count, gNow);
  statInc(STAT_STAGES);
  return true;
}

// ---- Medium completions (medium control) ------------------------------------------------------

function drainCompletions(): i32 {
  let work: i32 = 0;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const cq: usize = load<u32>(MAP_ADDR + MAP_MEDIA_TABLE + m * MAP_MEDIUM_BYTES + MMED_CQ);
    let e = ringPeek(cq);
    while (e != 0) {
      complete(m, load<u32>(e + MCQ_ID), <u32>load<u16>(e + MCQ_STATUS),
        (<u64>load<u32>(e + MCQ_ERR_LBA_HI) << 32) | <u64>load<u32>(e + MCQ_ERR_LBA_LO));
      ringRelease(cq, 1);
      work++;
      e = ringPeek(cq);
    }
  }
  return work;
}

function complete(m: u32, id: u32, status: u32, errLba: u64): void {
  const i = schedMatch(sa(), id);
  if (i < 0) { statInc(STAT_MEDIUM_ERRORS); return; } // not ours: ignore, count
  const r = <u32>i;
  const ms = mediumState(m);
  if (status == MST_NOT_READY) setMediumState(m, MEDIUM_DEAD);
  else if (status == MST_OK && load<u32>(ms + MS_STATE) == MEDIUM_DEAD) {
    // Back from the dead: it may not be the medium it was. Its label is read again first.
    setMediumState(m, MEDS_BECOMING_READY);
    store<u32>(ms + MS_LABEL, LBL_UNCHECKED);
  }
  if (status != MST_OK) { statInc(STAT_MEDIUM_ERRORS); store<u32>(ms + MS_ERRORS, load<u32>(ms + MS_ERRORS) + 1); }
  const origin = reqOrigin(sa(), r);
  const lba = reqLba(sa(), r);
  const sectors = reqSectors(sa(), r);
  if (origin == ORIGIN_STAGE) stageComplete(r, m, status, errLba);
  else if (origin == ORIGIN_DESTAGE) destageComplete(r, m, status);
  else if (origin == ORIGIN_FLUSH) flushComplete(m, status);
  else if (origin == ORIGIN_LABEL) labelComplete(m, reqArg2(sa(), r), status);
  trace(origin == ORIGIN_DESTAGE || origin == ORIGIN_FLUSH ? TRACE_DESTAGE : TRACE_STAGE, m, <u32>lba, sectors, status);
  schedRetire(sa(), r);
}

function stageComplete(r: u32, m: u32, status: u32, errLba: u64): void {
  const slot = reqArg(sa(), r);
  const run = reqArg2(sa(), r);
  const first = run >> 16;
  const count = run & 0xFFFF;
  const base = reqLba(sa(), r) - <u64>first;
  // Within the run (a READ waiting for it fails only on a sector it reads: sequencer.ts).
  const errSector = errLba >= base + <u64>first && errLba < base + <u64>(first + count) ? <u32>(errLba - base) : first;
  stageDone(slot, first, count, status == MST_OK, errSector, status == MST_NOT_READY);
}

/** The verdict of a failed medium request: the medium did not answer, or refused it. */
// @ts-ignore: decorator
@inline function mediumVerdict(status: u32): u32 { return status == MST_NOT_READY ? F_NOT_READY : F_WRITE_ERROR; }

/**
 * The chunk's init map mark could not reach the NV file (it failed, or the file is degraded): the
 * slot stays dirty with the NV verdict, not the medium's (a flush of it answers HARDWARE ERROR),
 * and is destaged whole and marked again once the file is whole. Counted.
 */
function markHeld(slot: u32): void {
  slotDestageFailed(slot, F_NV_FAILED, gNow);
  statInc(STAT_DESTAGE_NV_HELD);
}

function destageComplete(r: u32, m: u32, status: u32): void {
  const slot = reqArg(sa(), r);
  if (status != MST_OK) slotDestageFailed(slot, mediumVerdict(status), gNow);
  if (destageOpsAdd(slot, -1) != 0) return;
  statInc(STAT_DESTAGES);
  if ((slotFlags(slot) & (F_WRITE_ERROR | F_NOT_READY)) != 0) {
    destageDone(slot, false, reqArg2(sa(), r) >> 16, gNow + RETRY_NS, nvId(NVK_NONE, 0));
    return;
  }
  // Written, not yet durable: the slot stays destaging until a flush of its medium completes.
  const fl = flushState(m);
  setSlotFlushNext(slot, load<u32>(fl + FL_WAITING));
  store<u32>(fl + FL_WAITING, slot + 1);
}

// ---- Medium flush: data durable on the medium before the NV record says it is clean ------------
// Order for every destage: medium writes -> medium flush (MOP_FLUSH) -> NV clean record. One flush
// covers every slot whose writes completed before it was sent, so a burst of destages to a medium
// costs one flush, not one per slot.

// @ts-ignore: decorator
@inline function flushState(m: u32): usize { return gPrivate + DK_FLUSH + m * FL_BYTES; }

function flushMedia(): i32 {
  let work: i32 = 0;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const fl = flushState(m);
    const state = load<u32>(fl + FL_STATE);
    if (state == FLS_DONE) work += flushRecords(m);
    else if (state == FLS_IDLE && load<u32>(fl + FL_WAITING) != 0 && schedPoolFree(sa())) {
      store<u32>(fl + FL_COVERED, load<u32>(fl + FL_WAITING));
      store<u32>(fl + FL_WAITING, 0);
      store<u32>(fl + FL_STATE, FLS_IN_FLIGHT);
      schedRegister(sa(), MOP_FLUSH, m, 0, 0, 0, ORIGIN_FLUSH, m, 0, gNow);
      statInc(STAT_MEDIA_FLUSHES);
      work++;
    }
  }
  return work;
}

function flushComplete(m: u32, status: u32): void {
  const fl = flushState(m);
  store<u32>(fl + FL_STATUS, status);
  store<u32>(fl + FL_STATE, FLS_DONE);
  flushRecords(m);
}

/** The slots the completed flush covered get their descriptors (clean, or dirty again for a retry). */
function flushRecords(m: u32): i32 {
  const fl = flushState(m);
  const status = load<u32>(fl + FL_STATUS);
  let work: i32 = 0;
  let next = load<u32>(fl + FL_COVERED);
  while (next != 0 && nvRoom(2)) {
    const slot = next - 1;
    // The chunk's first write is on the medium: it is initialized from now on. The slot's clean
    // record waits for the mark's NV completion (markDone): were the mark lost and the record
    // not, the chunk would read zeros after a crash.
    const thin = slotThinChunk(slot) != 0;
    const where = chunkToMedium(slotVolume(slot), slotNumber(slot));
    const mark = status == MST_OK && (thin || (where != u64.MAX_VALUE && where != THIN_UNMAPPED
      && !volumeThin(slotVolume(slot)) && !chunkInitialized(m, <u32>where)));
    // One init map write in flight per medium (the medium's turn, initmap.ts), so never two of one
    // record: they would write its two copies in turn, and the first failing with the second torn
    // by a power cut left neither copy with the bits of earlier marks, whose slots are clean (their
    // chunks read zeros). The slots left wait for the turn (markDone, or a DELETE VOLUME's clear
    // completing), the flush's order kept.
    if (mark && !nvDegraded() && !initTurnTake(m, slot + 1)) break;
    next = slotFlushNext(slot);
    setSlotFlushNext(slot, 0);
    work++;
    let ok = status == MST_OK;
    if (!ok) slotDestageFailed(slot, mediumVerdict(status), gNow);
    else if (mark) {
      if (!nvDegraded()) {
        // A thin chunk's first write: its map entry, like a mark, before the clean record (thin.ts).
        if (thin) thinMapSlot(slot, nvId(NVK_INIT_MARK, slot));
        else initMark(m, <u32>where, nvId(NVK_INIT_MARK, slot));
        continue;
      }
      // The file's copy of the map may be stale while it is degraded: a new mark could overwrite
      // the only whole copy of its record. The slot stays dirty until the file is rewritten.
      markHeld(slot);
      ok = false;
    }
    destageDone(slot, ok, 0, gNow + RETRY_NS, nvId(NVK_NONE, 0));
  }
  store<u32>(fl + FL_COVERED, next);
  if (next == 0) store<u32>(fl + FL_STATE, FLS_IDLE);
  return work;
}

// ---- Destage ------------------------------------------------------------------------------------

function destageScan(): i32 {
  const first = listFirst(LIST_DIRTY);
  if (first < 0) return 0;
  const marked = urgentSlots();
  const urgent = slotDirtySeq(<u32>first) <= flushSeq() || aboveHighMark() || marked > 0;
  if (!urgent && gNow < load<f64>(gPrivate + DK_NEXT_SCAN_NS)) return 0;
  store<f64>(gPrivate + DK_NEXT_SCAN_NS, gNow + <f64>cfg32(CFG_DESTAGE_INTERVAL_US) * 1000.0);
  const ageNs = destageAgeNs();
  const high = aboveHighMark();
  const target = flushSeq();
  const depth = max<u32>(1, cfg32(CFG_STAGE_DEPTH));
  let started: i32 = 0;
  let looked: u32 = 0;
  let i = first;
  while (i >= 0 && looked < SCAN_LIMIT && nvRoom(2)) {
    const slot = <u32>i;
    i = listNext(slot);
    if ((slotFlags(slot) & F_DESTAGING) != 0 || slotRetryNs(slot) > gNow) continue;
    const due = slotDirtySeq(slot) <= target || high || gNow - slotDirtyNs(slot) >= ageNs
      || (slotFlags(slot) & F_URGENT) != 0;
    // The list is in dirtying order: the rest are younger, and only a write-through mark
    // (FUA) makes one of them due; walk on for those only while there are some.
    if (!due) { if (marked == 0) break; continue; }
    looked++;
    if (destage(slot, depth)) started++;
  }
  return started;
}

/** The destage age for the dirty share now: the idle age up to half the high mark, then linearly
 *  down to the configured age at the mark (above it, age does not matter: everything is due). */
function destageAgeNs(): f64 {
  const floor = <f64>cfg32(CFG_DESTAGE_AGE_US) * 1000.0;
  const idle = <f64>cfg32(CFG_DESTAGE_AGE_IDLE_US) * 1000.0;
  if (idle <= floor) return floor;
  const high = <f64>slotCount() * <f64>cfg32(CFG_DIRTY_HIGH_PCT) / 100.0;
  const dirty = <f64>dirtyCountAll();
  if (dirty * 2.0 <= high) return idle;
  if (dirty >= high) return floor;
  return floor + (idle - floor) * (high - dirty) / (high * 0.5);
}

function aboveHighMark(): bool {
  return <u64>dirtyCountAll() * 100 > <u64>slotCount() * <u64>cfg32(CFG_DIRTY_HIGH_PCT);
}

/** Registers the medium writes of a slot's dirty runs. False when its medium is busy or gone. */
function destage(slot: u32, depth: u32): bool {
  const where = slotMedium(slot);
  // The volume's medium left the topology (or a thin chunk has none: thin.ts found none at boot):
  // the data stays dirty (and in NV), marked so that a flush reports it instead of waiting for it.
  if (where == u64.MAX_VALUE || where == THIN_UNMAPPED) { slotMarkVerdict(slot, F_NOT_READY, gNow, flushAskedNs()); return false; }
  const medium = <u32>(where >> 32);
  const mst = load<u32>(mediumState(medium) + MS_STATE);
  // Never write onto a medium that is not known to be the array's own (blank, replaced, unchecked).
  if (mst == MEDS_LOST || mst == MEDS_BECOMING_READY) { slotMarkVerdict(slot, F_NOT_READY, gNow, flushAskedNs()); return false; }
  const whole = !chunkHoldsData(slotVolume(slot), slotNumber(slot), where);
  // A chunk's first destage ends in its init map mark, which a degraded NV file cannot take
  // (flushRecords): the chunk is not written until the file is whole again; a flush reports it.
  if (whole && nvDegraded()) {
    if (slotMarkVerdict(slot, F_NV_FAILED, gNow, flushAskedNs())) statInc(STAT_DESTAGE_NV_HELD);
    return false;
  }
  if (load<u32>(mediumState(medium) + MS_REGISTERED) >= depth) return false;
  if (!schedPoolFree(sa())) return false;
  slotClearFlags(slot, F_VERDICTS);
  // A chunk's first write covers all of it: the slot's other sectors are zeros. Only the medium
  // write does; the slot's dirty sectors stay those the hosts wrote, so a descriptor persisted
  // meanwhile never claims sectors whose data and CRCs are not in NV (they hold the NV bytes of
  // the slot's previous owner, perhaps another volume's).
  if (whole) fillBlank(slot, 0, 0);
  if (!destageBegin(slot)) return false;
  const base = (where & 0xFFFFFFFF) << 7;
  let from: u32 = 0;
  let run = whole ? SLOT_SECTORS : destagingRun(slot, 0);
  while (run != 0) {
    const s = run >> 16;
    const n = run & 0xFFFF;
    // Pool exhaustion mid-slot is not possible in practice (REQ_COUNT >> runs per slot); if it
    // happens the unregistered runs are simply written by the slot's next destage.
    if (schedRegister(sa(), MOP_WRITE, medium, base + <u64>s, n, slotData(slot) + (<usize>s << 9),
      ORIGIN_DESTAGE, slot, (s << 16) | n, gNow) == 0) break;
    destageOpsAdd(slot, 1);
    from = s + n;
    run = from < SLOT_SECTORS ? destagingRun(slot, from) : 0;
  }
  if (destageOpsAdd(slot, 0) == 0) { destageDone(slot, false, 0, gNow, nvId(NVK_NONE, 0)); return false; }
  return true;
}

// ---- Medium labels (label.ts) -----------------------------------------------------------------
// Each medium's sector 0 is read at boot (and again when a dead medium answers); the verdict makes
// it ready, or lost, or has the array label it (a medium NV has no label for and no volume uses):
// write, flush, then the NV record. A dead medium's label is read again every second.

// @ts-ignore: decorator
@inline function labelBuf(m: u32): usize { return gPrivate + DK_LABELS + (m << 9); }

function checkLabels(): i32 {
  let work: i32 = 0;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const ms = mediumState(m);
    const lbl = load<u32>(ms + MS_LABEL);
    if (lbl == LBL_UNCHECKED) {
      // A relabel not yet written, overtaken by the medium dying and answering again: it gave up nothing.
      if (relabeling(m)) relabelEnded(m, RLB_DEAD);
      if (load<u32>(ms + MS_STATE) == MEDIUM_DEAD && gNow < load<f64>(gPrivate + DK_NEXT_PROBE_NS)) continue;
      if (!labelIo(m, MOP_READ, LBL_READING)) continue;
      work++;
    } else if (lbl == LBL_RELABEL) {
      labelBuild(m, labelGeneration(m) + 1, labelBuf(m));
      if (labelIo(m, MOP_WRITE, LBL_WRITING)) work++;
    } else if (lbl == LBL_RECORD && nvRoom(relabeling(m) ? 4 : 1)) {
      // The clear takes the medium's init map turn (initmap.ts), given back when the label's record,
      // queued after it, completes (labelRecorded).
      if (relabeling(m) && !initTurnTake(m, TURN_RELABEL | m)) continue;
      store<u32>(ms + MS_LABEL, LBL_PERSISTING);
      // REINITIALIZE MEDIUM: the new label is on the medium, so the loss is accepted now: every
      // chunk reads as zeros from here on. The bits go before the label's record in the one NV
      // ring, so no restart finds the new label recorded with the old bits (the lost medium's
      // bytes would read as the volumes' data).
      if (relabeling(m)) {
        initClear(m, 0, mediumChunks(m), nvId(NVK_NONE, 0));
        thinDropMedium(m, nvId(NVK_NONE, 0)); // thin chunks on it are unmapped: they read zeros too
        relabelEnded(m, RLB_LABELED);
      }
      labelRecord(m, labelGeneration(m) + 1, nvId(NVK_LABEL, m));
      work++;
    }
  }
  return work;
}

function labelIo(m: u32, op: u32, next: u32): bool {
  if (!schedPoolFree(sa())) return false;
  schedRegister(sa(), op, m, 0, op == MOP_FLUSH ? 0 : 1, op == MOP_FLUSH ? 0 : labelBuf(m), ORIGIN_LABEL, m, next, gNow);
  store<u32>(mediumState(m) + MS_LABEL, next);
  return true;
}

function labelComplete(m: u32, phase: u32, status: u32): void {
  const ms = mediumState(m);
  if (status != MST_OK) {
    // Dead: read its label again when it answers. A medium that answers but cannot give or take
    // its label cannot be vouched for. A REINITIALIZE MEDIUM that got this far changed nothing,
    // and its command learns why it failed (its medium is lost again: its state cannot say).
    if (relabeling(m)) relabelEnded(m, status == MST_NOT_READY ? RLB_DEAD : RLB_WRITE_ERROR);
    store<u32>(ms + MS_LABEL, LBL_UNCHECKED);
    if (status == MST_NOT_READY) { store<f64>(gPrivate + DK_NEXT_PROBE_NS, gNow + RETRY_NS); return; }
    store<u32>(ms + MS_LABEL, LBL_DONE);
    mediumLost(m, 2);
    return;
  }
  if (phase == LBL_READING) {
    const verdict = labelVerdict(m, labelBuf(m));
    if (verdict == LV_MATCH) { store<u32>(ms + MS_LABEL, LBL_DONE); setMediumState(m, MEDS_OK); trace(TRACE_MEDIUM, m, MEDS_OK, labelGeneration(m), 0); return; }
    if (verdict == LV_LOST) { store<u32>(ms + MS_LABEL, LBL_DONE); mediumLost(m, 1); return; }
    labelBuild(m, 1, labelBuf(m)); // LV_CLAIM: a medium new to the array
    labelIo(m, MOP_WRITE, LBL_WRITING);
    return;
  }
  if (phase == LBL_WRITING) { labelIo(m, MOP_FLUSH, LBL_FLUSHING); return; }
  store<u32>(ms + MS_LABEL, LBL_RECORD); // flushed: checkLabels persists the record
}

/** The NV record of medium m's new label completed: the medium is the array's. */
function labelRecorded(m: u32): void {
  if (m >= mediaCount()) return;
  initTurnGive(m, TURN_RELABEL | m);
  store<u32>(mediumState(m) + MS_LABEL, LBL_DONE);
  setMediumState(m, MEDS_OK);
  trace(TRACE_MEDIUM, m, MEDS_OK, labelGeneration(m), 0);
  bumpEvent();
}

function mediumLost(m: u32, why: u32): void {
  setMediumState(m, MEDS_LOST);
  trace(TRACE_MEDIUM, m, MEDS_LOST, labelGeneration(m), 0);
  log(LOG_ERROR, "medium: blank or not this array's (medium, 1 label / 2 unreadable); its volumes are not ready until REINITIALIZE MEDIUM", m, why);
}

/**
 * REINITIALIZE MEDIUM (ticket t) accepted the loss of medium m: cached clean copies of its old
 * contents go, it gets a new label, and with the label's record every chunk on it reads as zeros
 * (init bits cleared: checkLabels); dirty data the array still holds in NV is then destaged onto
 * it. The bits are not cleared before the label is on the medium: when the label cannot be written
 * (the medium died or refused it), the command fails and nothing is lost; the medium may yet come
 * back as the array's own, with its data (seed 2108: it did, and read zeros where acknowledged
 * writes were). Each attempt ends with an outcome under its ticket (relabelPublish), which is how
 * the command, polling on a channel IOP, tells "not taken yet" from "failed". False (the message
 * waits) when the NV ring lacks room for a dropped poisoned slot's descriptor: the drops already
 * made are not undone, and the next try drops the rest.
 */
function relabel(m: u32, t: u32): bool {
  if (m >= mediaCount()) return true;
  if (relabeling(m)) { relabelPublish(m, t, RLB_BUSY); return true; }
  if (load<u32>(mediumState(m) + MS_STATE) != MEDS_LOST) { relabelPublish(m, t, RLB_NOT_LOST); return true; }
  for (let i: u32 = 0; i < slotCount(); i++) {
    if (slotList(i) != LIST_CLEAN || slotPins(i) != 0 || (slotFlags(i) & F_STAGING) != 0) continue;
    const where = slotMedium(i);
    if (where == u64.MAX_VALUE || where == THIN_UNMAPPED || <u32>(where >> 32) != m) continue;
    if (poisonedSector(i, 0, SLOT_SECTORS) >= 0 && !nvRoom(1)) return false; // its descriptor is persisted
    thinDropSlot(i, nvId(NVK_NONE, 0));
  }
  store<u32>(mediumState(m) + MS_RELABEL_TICKET, t);
  setMediumState(m, MEDS_BECOMING_READY);
  store<u32>(mediumState(m) + MS_LABEL, LBL_RELABEL);
  return true;
}

function relabeling(m: u32): bool { return load<u32>(mediumState(m) + MS_RELABEL_TICKET) != 0; }

function relabelEnded(m: u32, outcome: u32): void {
  relabelPublish(m, load<u32>(mediumState(m) + MS_RELABEL_TICKET), outcome);
  store<u32>(mediumState(m) + MS_RELABEL_TICKET, 0);
}

// ---- Dead media -------------------------------------------------------------------------------

function probeDeadMedia(): i32 {
  if (gNow < load<f64>(gPrivate + DK_NEXT_PROBE_NS)) return 0;
  let work: i32 = 0;
  let dead = false;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const ms = mediumState(m);
    if (load<u32>(ms + MS_STATE) != MEDIUM_DEAD) continue;
    dead = true;
    if (load<u32>(ms + MS_LABEL) != LBL_DONE) continue; // checkLabels reads its label again instead
    if (load<u32>(ms + MS_REGISTERED) != 0 || !schedPoolFree(sa())) continue;
    schedRegister(sa(), MOP_READ, m, 0, 1, gPrivate + DK_PROBE_BUF, ORIGIN_PROBE, m, 0, gNow);
    work++;
  }
  if (dead) store<f64>(gPrivate + DK_NEXT_PROBE_NS, gNow + RETRY_NS);
  return work;
}

// ---- Harness control: flush and shutdown --------------------------------------------------------

function control(): i32 {
  const seq = load<u32>(MAP_ADDR + MAP_CONTROL_SEQ);
  if (seq != load<u32>(gPrivate + DK_CONTROL_SEQ)) {
    store<u32>(gPrivate + DK_CONTROL_SEQ, seq);
    store<u32>(gPrivate + DK_CONTROL_OP, load<u32>(MAP_ADDR + MAP_CONTROL));
    store<f64>(gPrivate + DK_CONTROL_AT_NS, gNow);
    flushAsked(currentSeq());
  }
  const op = load<u32>(gPrivate + DK_CONTROL_OP);
  if (op == 0 || !flushSettled()) return 0;
  if (ASC_OPTIMIZE_LEVEL == 0) cacheCheck();
  const left = dirtyCountAll();
  const clean = op == CTL_SHUTDOWN && left == 0 && !nvDegraded();
  if (clean) markClean();
  reportStuck(left, clean);
  trace(TRACE_FLUSH, left, 0, 0, 0);
  store<u32>(gPrivate + DK_CONTROL_OP, 0);
  store<u32>(MAP_ADDR + MAP_CONTROL_DONE, load<u32>(gPrivate + DK_CONTROL_SEQ));
  return 1;
}

/**
 * Nothing dirty is left that a destage could still write: all clean, or failed (or found no
 * medium) since the request was taken; a verdict from before it may be stale, and is tried again.
 */
function flushSettled(): bool {
  const since = load<f64>(gPrivate + DK_CONTROL_AT_NS);
  let i = listFirst(LIST_DIRTY);
  while (i >= 0) {
    const f = slotFlags(<u32>i);
    const v = slotVerdictNs(<u32>i);
    if ((f & F_DESTAGING) != 0 || (f & F_VERDICTS) == 0 || v == 0 || v < since) return false;
    i = listNext(<u32>i);
  }
  return true;
}

/** The control result: every dirty slot left, with what keeps it from its medium (MAP_CONTROL_*). */
function reportStuck(left: u32, clean: bool): void {
  let n: u32 = 0;
  let i = listFirst(LIST_DIRTY);
  while (i >= 0 && n < CONTROL_STUCK_MAX) {
    const slot = <u32>i;
    i = listNext(slot);
    const e = MAP_ADDR + MAP_CONTROL_STUCK_LIST + n * CSE_BYTES;
    const v = slotVolume(slot);
    const w = slotMedium(slot);
    const where = w == THIN_UNMAPPED ? u64.MAX_VALUE : w; // a thin chunk with none: reported as no medium
    const f = slotFlags(slot);
    const range = slotDirtyRange(slot);
    const bs = <u64>blockSize(v);
    const first = ((<u64>slotNumber(slot) << 16) + (<u64>(range >> 8) << 9)) / bs;
    const end = ((<u64>slotNumber(slot) << 16) + (<u64>((range & 0xFF) + 1) << 9) + bs - 1) / bs;
    memory.fill(e, 0, CSE_BYTES);
    store<u16>(e + CSE_VOLUME, <u16>v);
    store<u16>(e + CSE_MEDIUM, where == u64.MAX_VALUE ? 0xFFFF : <u16>(where >> 32));
    const lost = where != u64.MAX_VALUE && load<u32>(mediumState(<u32>(where >> 32)) + MS_STATE) == MEDS_LOST;
    store<u8>(e + CSE_REASON, <u8>(where == u64.MAX_VALUE ? CSR_NO_MEDIUM : lost ? CSR_LOST
      : (f & F_NOT_READY) != 0 ? CSR_NOT_READY : (f & F_NV_FAILED) != 0 ? CSR_NV : CSR_WRITE_ERROR));
    store<u64>(e + CSE_LBA, first);
    store<u32>(e + CSE_BLOCKS, <u32>(end - first));
    n++;
  }
  store<u32>(MAP_ADDR + MAP_CONTROL_LEFT, left);
  store<u32>(MAP_ADDR + MAP_CONTROL_STUCK, n);
  store<u32>(MAP_ADDR + MAP_CONTROL_NV_ERRNO, nvErrno());
  store<u32>(MAP_ADDR + MAP_CONTROL_CLEAN, clean ? 1 : 0);
}

function markClean(): void {
  store<u32>(nvHeader() + NVH_CLEAN, 1);
  nvHeaderPersist(nvId(NVK_NONE, 0));
  nvKick();
}

// ---- NV completions and timers ----------------------------------------------------------------

/**
 * The disk IOP waits for none of its persists, but reads every status: a failed one degrades the
 * NV file (nv.ts), and the completion of a whole-region rewrite may end that state.
 */
function drainNvCompletions(): i32 {
  let work: i32 = 0;
  let e = ringPeek(gNvCq);
  while (e != 0) {
    const id = load<u32>(e + NCQ_ID);
    const status = load<u32>(e + NCQ_STATUS);
    // A mark's completion queues its slot's record: it waits for room in the ring.
    if ((id >> 28) == NVK_INIT_MARK && !nvRoom(1)) break;
    if (status != 0) nvCompletionFailed(status, id);
    if ((id >> 28) == NVK_LABEL) labelRecorded(id & 0xFF);
    if ((id >> 28) == NVK_PAIR) { pairNvDone(id, status); work++; }
    if ((id >> 28) == NVK_XCOPY) { xcopyNvDone(id, status); work++; }
    if ((id >> 28) == NVK_INIT_MARK) { markDone(id & 0x0FFFFFFF, status); work++; }
    if ((id >> 28) == NVK_RESYNC) {
      store<u32>(gPrivate + DK_RESYNC_PENDING, 0);
      if (status == 0 && nvResynced(load<u32>(gPrivate + DK_RESYNC_FAILURES))) store<f64>(gPrivate + DK_RESYNC_BACKOFF_NS, 0);
      work++;
    }
    ringRelease(gNvCq, 1);
    e = ringPeek(gNvCq);
  }
  return work;
}

/**
 * The init map mark (or thin map entry) of a slot's first destage completed. Written: the slot gets
 * its clean record. Failed: the bit (entry) is cleared again in memory and the slot stays dirty (its
 * NV record says so), to be destaged whole and marked again once the file has been rewritten;
 * counted and logged.
 */
function markDone(slot: u32, status: u32): void {
  for (let m: u32 = 0; m < mediaCount(); m++) initTurnGive(m, slot + 1); // the next may go
  if (status == 0) { destageDone(slot, true, 0, gNow + RETRY_NS, nvId(NVK_NONE, 0)); return; }
  const where = chunkToMedium(slotVolume(slot), slotNumber(slot));
  if (volumeThin(slotVolume(slot))) thinMapFailed(slot);
  else if (where != u64.MAX_VALUE) initUnmark(<u32>(where >> 32), <u32>where);
  statInc(STAT_INIT_MARK_FAILURES);
  log(LOG_ERROR, "destage: the init map mark of a chunk's first write failed in NV (slot, errno); the slot stays dirty", slot, status);
  markHeld(slot);
  destageDone(slot, false, 0, gNow + RETRY_NS, nvId(NVK_NONE, 0));
}

/**
 * While the NV file is degraded, rewrites the whole NV region from memory (the volume table, LUN
 * map, every slot descriptor and the slot data are kept current there), retrying with a back-off
 * from one second to a minute: a full file is not hammered.
 */
function resyncNv(): i32 {
  if (!nvDegraded() || load<u32>(gPrivate + DK_RESYNC_PENDING) != 0) return 0;
  if (gNow < load<f64>(gPrivate + DK_RESYNC_AT_NS)) { wakeAt(load<f64>(gPrivate + DK_RESYNC_AT_NS)); return 0; }
  if (!nvRoom(1)) return 0;
  const backoff = min<f64>(max<f64>(load<f64>(gPrivate + DK_RESYNC_BACKOFF_NS) * 2, RETRY_NS), 60 * RETRY_NS);
  store<f64>(gPrivate + DK_RESYNC_BACKOFF_NS, backoff);
  store<f64>(gPrivate + DK_RESYNC_AT_NS, gNow + backoff);
  store<u32>(gPrivate + DK_RESYNC_FAILURES, nvFailures());
  store<u32>(gPrivate + DK_RESYNC_PENDING, 1);
  nvPersistRange(nvBase(), <u32>nvRegionBytes(slotCount()), nvId(NVK_RESYNC, 0));
  return 1;
}

function armTimers(): void {
  if (dirtyCountAll() > 0) wakeAt(max<f64>(load<f64>(gPrivate + DK_NEXT_SCAN_NS), gNow + 1));
  const probe = load<f64>(gPrivate + DK_NEXT_PROBE_NS);
  if (probe > gNow) wakeAt(probe);
}
