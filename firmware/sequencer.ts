// The processing sequencer (document 003, unit 103): one state machine per command, advanced a
// step at a time from the channel IOP's poll, so many commands are in flight at once and none
// blocks another. Command handlers (scsi/) decide what a command does; this module moves it
// through data transfer, cache, persistence and status:
//
//   dispatch -> READ:        stage what is missing (disk IOP), send data from cache slots -> RESPOND
//            -> WRITE_BUFFER -> (XFER_RDY) WRITE_DATA -> WRITE_COMMIT (cache + NV) -> NV_WAIT
//                            -> [FUA: FLUSH] -> RESPOND
//            -> SEND_BUFFER: generated data-in (INQUIRY, lists) -> RESPOND
//            -> PARAM_DATA -> dispatch again with the parameter list (management OUT)
//
// A step that lacks a resource (buffer memory, a cache slot, room in a ring) leaves the command
// where it is; the next poll tries again. A command waiting for the cache only looks again when
// the cache's event counter has moved.
import {
  STAT_COMMANDS, STAT_READS, STAT_WRITES, STAT_READ_BYTES, STAT_WRITE_BYTES, STAT_READ_HITS,
  STAT_READ_MISSES, STAT_ERRORS, STAT_LATENCY_NS, STAT_BUSY, STAT_ABORTED, TRACE_COMMAND, CPORT_KIND, STAT_NV_REFUSED,
  STAT_PINS, STAT_PIN_WAITS, STAT_THIN_FULL,
  SLOT_BYTES, CFG_FLAGS,
  CFGF_TRACE_COMMANDS,
} from "./abi";
import { cfg32, cfgPort } from "./config";
import { gNow, gPrivate, wakeAt } from "./iop";
import { byteRingRead } from "./ring";
import {
  CX_STATE, CX_PORT, CX_SESSION, CX_KIND, CX_TAG, CX_LUN, CX_VOLUME, CX_LBA, CX_BLOCKS, CX_EXPECTED, CX_LENGTH,
  CX_CURSOR, CX_WIN_START, CX_WIN_LEN, CX_WIN_RECEIVED, CX_PRODUCED, CX_FLAGS, CX_START_NS, CX_DEADLINE_NS,
  CX_FLUSH_SEQ, CX_NV_PENDING, CX_DATA_ADDR, CX_STATUS, CX_SENSE_KEY, CX_ASC, CX_PEER, CX_OPCODE,
  CX_CDB_LEN, CX_CDB, CX_EVENT_SEEN, CX_WAIT_SLOT, CX_FIRST_SLOT, CX_LAST_SLOT, CX_ID, CX_SESSION_GEN,
  ST_DISPATCH, ST_READ, ST_WRITE_BUFFER, ST_WRITE_DATA, ST_WRITE_COMMIT, ST_NV_WAIT, ST_FLUSH, ST_SEND_BUFFER,
  ST_RESPOND, ST_PARAM_DATA, ST_TAPE, CXF_DATA_OUT, CXF_DATA_IN, CXF_FUA, CXF_MISS, CXF_IMMED, CXF_RESPONDED,
  CXF_PARAM, CXF_FLUSH_POSTED, CXF_NV_FAILED, CXF_SINK_COMPARE, CXF_SINK_DISCARD, CXF_REDISPATCH, CXF_AFTER_PERSIST, CXF_FROM_BUFFER,
  CXF_PAIR_WAIT, ctxBufferBytes, MAX_WINDOW_BYTES, NO_VOLUME16, CX_TASK_ATTR, CX_PIN_SLOT, WIN_RETRY,
  CX_NEXT, CX_PREV, CX_TRANSPORT,
  WIN_ARRIVED, ctxAlloc, ctxFree, ctxIndex, activeAdd, activeRemove, activeFirst, activeNext, ctxCheck, ctxInfo,
  ST_ORDER_WAIT, CX_ORDER, CXF_ORDERED, CP_ORDER_SEQ, CP_ORDERED, TA_ORDERED, TA_HEAD_OF_QUEUE,
  ctxBuffer, ctxBufferRelease, ctxBufferAddr, CX_GATHER, ctxGatherBuffer, ctxGatherAddr, ctxGatherRelease, ctxGatherToBuffer,
} from "./ctx";
import { tagFind, tagInsert, tagRemove, sessionOutstandingAdd, SESSION_QUEUE_DEPTH } from "./channel";
import { txData, txRespond, txDirect, windowOpen, windowBase, transportRetire } from "./comm/transport";
import {
  cacheLookup, allocate, sectorsValid, slotFlags, slotSetFlags, slotClearFlags, missingRun, slotData, touch,
  writeSectors, cacheEvent, currentSeq, oldestDirty, slotErrorSector, slotVolume, slotNumber, F_WRITE_ERROR, F_NV_FAILED, slotVerdictNs, cacheCount, CS_READ_HITS,
  CS_READ_MISSES, CS_WRITE_HITS, CS_WRITE_MISSES, F_STAGING, F_READ_ERROR, F_NOT_READY, ANY_VOLUME,
  markUrgent, pin, unpin, WRITE_NV_ENTRIES, poisonedSector, fillBlank, volumeFenced,
} from "./cache";
import { volumeChunkBlank } from "./initmap";
import { thinEnsure } from "./thin";
import { postToDisk, MB_STAGE, MB_FLUSH } from "./mailbox";
import { nvRoom, nvId, NVK_CONTEXT, nvDegraded } from "./nv";
import { blockSize, volumeAtLun } from "./volume";
import { statInc, statAdd } from "./stats";
import { log, LOG_ERROR } from "./hal";
import { trace } from "./trace";
import { dispatchScsi } from "./scsi/dispatch";
import { tapeStep, tapeAbort } from "./tape/command";
import { tapeDeviceAtLun } from "./tape/device";
import { xcopyCommandGone } from "./xcopy/command";
import { pairReadVolume, pairBeforeWrite, PW_WAIT, PW_REFUSE, PW_PERSISTED } from "./pair/io";
import { remoteWindow, remoteWait, ST_REMOTE } from "./remote/mirror";
import { remoteBeforeWrite } from "./remote/async";

/** A write waiting for a pair's copy of its track fails after this (ABORTED COMMAND, 85h/06h). */
const PAIR_WAIT_NS: f64 = 30e9;

/** True (and the command failed) when it has waited for a pair copy longer than PAIR_WAIT_NS. */
function pairWaitExpired(c: usize): bool { return waitExpired(c, PAIR_WAIT_NS, 0x85, 0x06); }

/**
 * A command's bounded wait: the first call starts the bound (CXF_PAIR_WAIT, CX_DEADLINE_NS) and
 * every call asks for a poll at its end; true (the command failed ABORTED COMMAND asc/ascq, which
 * names what it waited for) once it has waited longer than boundNs.
 */
export function waitExpired(c: usize, boundNs: f64, asc: u32, ascq: u32): bool {
  const f = load<u32>(c + CX_FLAGS);
  if ((f & CXF_PAIR_WAIT) == 0) {
    store<u32>(c + CX_FLAGS, f | CXF_PAIR_WAIT);
    store<f64>(c + CX_DEADLINE_NS, gNow + boundNs);
    wakeAt(gNow + boundNs);
    return false;
  }
  if (gNow < load<f64>(c + CX_DEADLINE_NS)) { wakeAt(load<f64>(c + CX_DEADLINE_NS)); return false; }
  ctxBufferRelease(c);
  fail(c, 0x0B, asc, ascq);
  return true;
}

/**
 * A write that is not a window's commit (COMPARE AND WRITE's one step) waits for a pair's copy of a
 * track: until the cache changes, bounded as commitStep's wait is. False when it waited too long (failed).
 */
export function pairCopyWait(c: usize): bool {
  if (pairWaitExpired(c)) return false;
  waitCache(c);
  return true;
}

/** A data-out burst the host does not complete within this time fails the command (4Bh/00h). */
export const DATA_OUT_TIMEOUT_NS: f64 = 30e9;
/** A flush (FUA, SYNCHRONIZE CACHE) whose oldest slot stays off its medium this long fails (2Eh/02h). */
export const FLUSH_STALL_NS: f64 = 60e9;
/** Slots a read asks the disk IOP to stage ahead of the one it is sending. */
const STAGE_AHEAD_SLOTS: u32 = 16;

// ---- Arrival ---------------------------------------------------------------------------------

/** A command arrived (frame or queue entry). Starts it, or answers at once when it cannot run. */
export function cmdStart(
  port: u32, s: u32, tag: u32, lun: u32, cdb: usize, cdbLen: u32, dataOut: bool, dataIn: bool,
  expected: u32, dataAddr: u32, peer: u32, attr: u32,
): void {
  const c = cmdBegin(port, s, tag, lun, cdb, cdbLen, dataOut, dataIn, expected, dataAddr, peer, attr);
  if (c != 0) cmdDispatch(c);
}

/**
 * Takes a command in: a context with its tag in the session's table, not yet dispatched (a
 * transport may hold it back, as iSCSI does for CmdSN order). Returns 0 when it was answered at
 * once instead: bad entry, tag in use, or TASK SET FULL.
 */
export function cmdBegin(
  port: u32, s: u32, tag: u32, lun: u32, cdb: usize, cdbLen: u32, dataOut: bool, dataIn: bool,
  expected: u32, dataAddr: u32, peer: u32, attr: u32,
): usize {
  if (cdbLen == 0) { txDirect(port, s, tag, peer, 0x02, 0x05, 0x24, 0x00, expected); statInc(STAT_ERRORS); return 0; }
  if (tagFind(port, s, tag) != 0) { txDirect(port, s, tag, peer, 0x02, 0x05, 0x4E, 0x00, expected); statInc(STAT_ERRORS); return 0; }
  const c: usize = sessionOutstandingAdd(port, s, 0) >= SESSION_QUEUE_DEPTH ? 0 : ctxAlloc();
  if (c == 0) { txDirect(port, s, tag, peer, 0x28, 0, 0, 0, expected); statInc(STAT_BUSY); return 0; }
  store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
  store<u8>(c + CX_PORT, <u8>port);
  store<u8>(c + CX_SESSION, <u8>s);
  store<u8>(c + CX_KIND, load<u8>(cfgPort(port) + CPORT_KIND));
  store<u32>(c + CX_TAG, tag);
  store<u16>(c + CX_LUN, <u16>lun);
  store<u32>(c + CX_EXPECTED, expected);
  store<u32>(c + CX_FLAGS, (dataOut ? CXF_DATA_OUT : 0) | (dataIn ? CXF_DATA_IN : 0));
  store<f64>(c + CX_START_NS, gNow);
  store<u32>(c + CX_DATA_ADDR, dataAddr);
  store<u16>(c + CX_PEER, <u16>peer);
  store<u8>(c + CX_OPCODE, load<u8>(cdb));
  store<u8>(c + CX_CDB_LEN, <u8>cdbLen);
  memory.copy(c + CX_CDB, cdb, cdbLen);
  store<u16>(c + CX_VOLUME, <u16>NO_VOLUME16);
  store<u8>(c + CX_TASK_ATTR, <u8>attr);
  tagInsert(port, s, tag, ctxIndex(c) + 1);
  sessionOutstandingAdd(port, s, 1);
  activeAdd(c);
  return c;
}

/** Runs a command taken in by cmdBegin, in its place among the task attributes (taskOrder). */
export function cmdDispatch(c: usize): void {
  statInc(STAT_COMMANDS);
  const seq = load<u32>(gPrivate + CP_ORDER_SEQ) + 1;
  store<u32>(gPrivate + CP_ORDER_SEQ, seq);
  store<u32>(c + CX_ORDER, seq);
  if (<u32>load<u8>(c + CX_TASK_ATTR) == TA_ORDERED) {
    store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_ORDERED);
    store<u32>(gPrivate + CP_ORDERED, load<u32>(gPrivate + CP_ORDERED) + 1);
  }
  if (mustWait(c)) { store<u8>(c + CX_STATE, <u8>ST_ORDER_WAIT); return; }
  ctxStep(c);
}

// ---- Task attributes (SAM-5 8.5, 8.6) ------------------------------------------------------------
// One task set per logical unit (control mode page TST=000b) on this channel IOP, in dispatch order
// (for iSCSI, CmdSN order): a SIMPLE command does not start while an older ORDERED one to its unit
// has not ended; an ORDERED one does not start while any older command to its unit has not ended;
// HEAD OF QUEUE starts at once, before the commands that wait. (Commands that reach one unit through
// ports of different channel IOPs are ordered within each IOP only.) ACA is refused (dispatch.ts).

/** Must the command wait for older ones to its logical unit? */
function mustWait(c: usize): bool {
  const attr = <u32>load<u8>(c + CX_TASK_ATTR);
  if (attr == TA_HEAD_OF_QUEUE) return false;
  const ordered = attr == TA_ORDERED;
  if (!ordered && load<u32>(gPrivate + CP_ORDERED) == 0) return false; // the usual case: nothing to scan
  const mine = load<u32>(c + CX_ORDER);
  const lu = ctxLogicalUnit(c);
  let o = activeFirst();
  while (o != 0) {
    const seq = load<u32>(o + CX_ORDER);
    if (o != c && seq != 0 && <i32>(seq - mine) < 0 && (ordered || (load<u32>(o + CX_FLAGS) & CXF_ORDERED) != 0)
      && (load<u32>(o + CX_FLAGS) & CXF_RESPONDED) == 0 && ctxLogicalUnit(o) == lu) return true;
    o = activeNext(o);
  }
  return false;
}

function orderStep(c: usize): void {
  if (mustWait(c)) return;
  store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
  dispatchScsi(c);
}

/**
 * Runs another command in a context whose command has just ended GOOD, in place of its status (a
 * transport's request that takes several commands: NBD's WRITE_ZEROES and TRIM beyond one command's
 * length). Identity, tag and place on the active list are kept; what the last command did is
 * cleared. Its transport's respond step calls this and answers "not sent": the next poll dispatches.
 */
export function cmdRearm(c: usize, cdb: usize, cdbLen: u32, expected: u32): void {
  assert(load<u32>(c + CX_PIN_SLOT) == 0 && load<u32>(c + CX_NV_PENDING) == 0, "sequencer: rearming a command that holds a pin or waits for NV");
  ctxBufferRelease(c);
  ctxGatherRelease(c);
  // An ORDERED command stays counted in CP_ORDERED until it retires; its place in order (CX_ORDER) is kept.
  const dir = load<u32>(c + CX_FLAGS) & (CXF_DATA_OUT | CXF_DATA_IN | CXF_ORDERED);
  const start = load<f64>(c + CX_START_NS);
  const next = load<u32>(c + CX_NEXT);
  const prev = load<u32>(c + CX_PREV);
  const id = load<u32>(c + CX_ID);
  const peer = load<u16>(c + CX_PEER);
  const attr = load<u8>(c + CX_TASK_ATTR);
  memory.fill(c + CX_LBA, 0, CX_TRANSPORT - CX_LBA);
  store<u32>(c + CX_FLAGS, dir);
  store<f64>(c + CX_START_NS, start);
  store<u32>(c + CX_NEXT, next);
  store<u32>(c + CX_PREV, prev);
  store<u32>(c + CX_ID, id);
  store<u16>(c + CX_PEER, peer);
  store<u8>(c + CX_TASK_ATTR, attr);
  store<u32>(c + CX_EXPECTED, expected);
  store<u8>(c + CX_OPCODE, load<u8>(cdb));
  store<u8>(c + CX_CDB_LEN, <u8>cdbLen);
  memory.copy(c + CX_CDB, cdb, cdbLen);
  store<u16>(c + CX_VOLUME, <u16>NO_VOLUME16);
  store<u8>(c + CX_STATUS, 0);
  store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
}

// ---- Stepping ---------------------------------------------------------------------------------

/** Advances a command as far as it can go now. Returns 1 if it made progress. */
export function ctxStep(c: usize): i32 {
  const before = load<u8>(c + CX_STATE);
  const cursor = load<u32>(c + CX_CURSOR);
  switch (<u32>before) {
    case ST_DISPATCH: dispatchScsi(c); break;
    case ST_READ: readStep(c); break;
    case ST_WRITE_BUFFER: windowStep(c); break;
    case ST_WRITE_DATA:
    case ST_PARAM_DATA: dataTimeout(c); break;
    case ST_WRITE_COMMIT: commitStep(c); break;
    case ST_NV_WAIT: nvWaitStep(c); break;
    case ST_FLUSH: flushStep(c); break;
    case ST_SEND_BUFFER: sendBufferStep(c); break;
    case ST_ORDER_WAIT: orderStep(c); break;
    case ST_TAPE: tapeStep(c); break;
    case ST_REMOTE: remoteWait(c); break; // a remote pair's first hop (remote/mirror.ts)
    default: break;
  }
  if (<u32>load<u8>(c + CX_STATE) == ST_RESPOND) {
    if ((load<u32>(c + CX_FLAGS) & CXF_RESPONDED) != 0 || txRespond(c)) { release(c); return 1; }
  }
  return load<u8>(c + CX_STATE) != before || load<u32>(c + CX_CURSOR) != cursor ? 1 : 0;
}

/** Marks the command done with GOOD status. */
export function good(c: usize): void {
  store<u8>(c + CX_STATUS, 0);
  store<u8>(c + CX_STATE, <u8>ST_RESPOND);
}

/** Marks the command done with CHECK CONDITION. */
export function fail(c: usize, key: u32, asc: u32, ascq: u32): void {
  ctxCheck(c, key, asc, ascq);
  ctxBufferRelease(c);
  ctxGatherRelease(c);
  store<u8>(c + CX_STATE, <u8>ST_RESPOND);
}

/**
 * A thin volume's media have no chunk free for the write: DATA PROTECT, SPACE ALLOCATION FAILED
 * WRITE PROTECT (27h/07h, SBC-4 4.7.3.6). What was acknowledged before keeps its chunks.
 */
export function spaceAllocationFailed(c: usize): void {
  statInc(STAT_THIN_FULL);
  fail(c, 0x07, 0x27, 0x07);
}

/** Marks the command done with a status other than GOOD and CHECK CONDITION (BUSY, ...). */
export function finishStatus(c: usize, status: u32): void {
  store<u8>(c + CX_STATUS, <u8>status);
  store<u8>(c + CX_STATE, <u8>ST_RESPOND);
}

/** The handler lacked a resource: run it again on the next poll. */
export function retryLater(c: usize): void { store<u8>(c + CX_STATE, <u8>ST_DISPATCH); }

// ---- Pins: the slot a command waits for or sends from cannot be evicted -------------------------
// A command holds at most one pin, and never while it waits for a slot to be allocated, so pinned
// slots always belong to commands that can make progress: pins cannot deadlock the cache.

/** Pins `slot` for the command (dropping the pin it held on another). */
function holdSlot(c: usize, slot: u32): void {
  const held = load<u32>(c + CX_PIN_SLOT);
  if (held == slot + 1) return;
  if (held != 0) unpin(held - 1);
  pin(slot);
  statInc(STAT_PINS);
  store<u32>(c + CX_PIN_SLOT, slot + 1);
}

/** Drops the command's pin, if it holds one. */
function dropSlot(c: usize): void {
  const held = load<u32>(c + CX_PIN_SLOT);
  if (held == 0) return;
  unpin(held - 1);
  store<u32>(c + CX_PIN_SLOT, 0);
}

function release(c: usize): void {
  if ((load<u32>(c + CX_FLAGS) & CXF_RESPONDED) == 0) account(c);
  retire(c);
}

/**
 * Ends a command wherever it is, without a status: waiting for data-out, staging, waiting for NV
 * or a flush, sending data-in, held by its transport. Its buffer memory, pin and tag are given back
 * at once; what it asked others for needs no undoing: a stage still fills its slot for whoever reads
 * it next, an NV completion or a flush for a context that has moved on is ignored (ctxById checks
 * the generation). abortWhere applies it to a scope (task management, session close, volume delete).
 */
export function abortCommand(c: usize): void {
  retire(c);
  statInc(STAT_ABORTED);
}

/** Every way a command ends, answered or aborted, comes here: what it holds goes back. */
function retire(c: usize): void {
  dropSlot(c);
  if ((load<u32>(c + CX_FLAGS) & CXF_ORDERED) != 0) store<u32>(gPrivate + CP_ORDERED, load<u32>(gPrivate + CP_ORDERED) - 1);
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  if ((load<u32>(c + CX_FLAGS) & CXF_RESPONDED) == 0) {
    tagRemove(port, s, load<u32>(c + CX_TAG));
    sessionOutstandingAdd(port, s, -1);
  }
  tapeAbort(c); // a tape device it holds is given back (a request in flight is reaped by the next user)
  xcopyCommandGone(c); // an EXTENDED COPY that ends before its copy: the copy manager stops it
  ctxBufferRelease(c);
  ctxGatherRelease(c);
  transportRetire(c);
  activeRemove(c);
  ctxFree(c);
}

// ---- Abort scopes (task management, session close, volume delete) ----------------------------

export const ANY: u32 = 0xFFFFFFFF;
/** Logical unit numbers as ctxLogicalUnit gives them: a volume number, or one of these. */
export const LU_COMMAND_DEVICE: u32 = 0x10000;
export const LU_NONE: u32 = 0x10001;
/** A tape device of the library (docs/tape.md): LU_TAPE_BASE + device. */
export const LU_TAPE_BASE: u32 = 0x10100;

/** The logical unit a command addresses: its volume, LU_COMMAND_DEVICE (LUN 0), a tape device, LU_NONE (nothing mapped). */
export function ctxLogicalUnit(c: usize): u32 {
  const v = <u32>load<u16>(c + CX_VOLUME);
  if (v != NO_VOLUME16) return v;
  return logicalUnitAt(<u32>load<u8>(c + CX_PORT), <u32>load<u16>(c + CX_LUN));
}

/** The logical unit at `lun` of `port`, as ctxLogicalUnit numbers it (task management names units by LUN). */
export function logicalUnitAt(port: u32, lun: u32): u32 {
  if (lun == 0) return LU_COMMAND_DEVICE;
  const tape = tapeDeviceAtLun(lun);
  if (tape >= 0) return LU_TAPE_BASE + <u32>tape;
  const m = volumeAtLun(port, lun);
  return m < 0 ? LU_NONE : <u32>m;
}

/** How abortWhere ends what it matches: with no status (task management, session close)... */
export const ABORT_SILENT: u32 = 0;
/**
 * ...or with CHECK CONDITION and this sense (volume delete: ABORTED COMMAND, TARGET OPERATING
 * CONDITIONS HAVE CHANGED), sent through the command's transport like any status.
 */
export function abortSense(key: u32, asc: u32, ascq: u32): u32 { return 0x1000000 | (key << 16) | (asc << 8) | ascq; }

/**
 * Ends every command of port `port` and session `s` that addresses logical unit `lu` (ANY in a
 * field matches everything) the way `how` says: ABORT_SILENT (abortCommand), or an abortSense,
 * which a command whose status is on its way already keeps. Returns how many it ended.
 */
export function abortWhere(port: u32, s: u32, lu: u32, how: u32): u32 {
  let n: u32 = 0;
  let c = activeFirst();
  while (c != 0) {
    const next = activeNext(c);
    if ((port == ANY || <u32>load<u8>(c + CX_PORT) == port) && (s == ANY || <u32>load<u8>(c + CX_SESSION) == s)
      && (lu == ANY || ctxLogicalUnit(c) == lu)) {
      if (how == ABORT_SILENT) { abortCommand(c); n++; }
      else if (<u32>load<u8>(c + CX_STATE) != ST_RESPOND) {
        fail(c, (how >> 16) & 0xFF, (how >> 8) & 0xFF, how & 0xFF);
        ctxStep(c); // answered now if its transport has room, else as soon as it has
        n++;
      }
    }
    c = next;
  }
  return n;
}

// Residual (SAM-5, FCP-4, RFC 7143 11.4.5): what the command wanted to move against what the
// initiator expected. Low 32 bits: the count; RESID_* says which kind.
export const RESID_UNDERFLOW: u64 = <u64>1 << 32;
export const RESID_OVERFLOW: u64 = <u64>1 << 33;

/**
 * Overflow when the command needed more than the expected length (CX_PRODUCED, set by handlers to
 * the bytes the CDB asks for, also when they refuse the command for it); else underflow when less
 * moved than expected; else 0.
 */
export function residual(c: usize): u64 { return residualAt(c, load<u32>(c + CX_CURSOR)); }

/** The residual once `moved` bytes have moved (a transport that sends status with the last data knows it first). */
export function residualAt(c: usize, moved: u32): u64 {
  const expected = load<u32>(c + CX_EXPECTED);
  const wanted = load<u32>(c + CX_PRODUCED);
  if (wanted > expected) return RESID_OVERFLOW | <u64>(wanted - expected);
  if (expected > moved) return RESID_UNDERFLOW | <u64>(expected - moved);
  return 0;
}

/** The residual's kind as the framed RSP and queue completions flag it: bit 0 underflow, bit 1 overflow. */
export function residualFlags(r: u64): u32 { return (r & RESID_OVERFLOW) != 0 ? 2 : (r & RESID_UNDERFLOW) != 0 ? 1 : 0; }

function account(c: usize): void {
  const op = <u32>load<u8>(c + CX_OPCODE);
  const status = <u32>load<u8>(c + CX_STATUS);
  const latency = gNow - load<f64>(c + CX_START_NS);
  statAdd(STAT_LATENCY_NS, <u64>max<f64>(latency, 0));
  if (status != 0) statInc(STAT_ERRORS);
  const moved = <u64>load<u32>(c + CX_CURSOR);
  if (isRead(op)) {
    statInc(STAT_READS);
    statAdd(STAT_READ_BYTES, moved);
    if (status == 0) {
      const miss = (load<u32>(c + CX_FLAGS) & CXF_MISS) != 0;
      statInc(miss ? STAT_READ_MISSES : STAT_READ_HITS);
      cacheCount(miss ? CS_READ_MISSES : CS_READ_HITS);
    }
  } else if (isWrite(op)) {
    statInc(STAT_WRITES);
    statAdd(STAT_WRITE_BYTES, moved);
  }
  if ((cfg32(CFG_FLAGS) & CFGF_TRACE_COMMANDS) != 0) {
    const who = (<u32>load<u8>(c + CX_PORT) << 24) | (<u32>load<u8>(c + CX_SESSION) << 16) | <u32>load<u16>(c + CX_LUN);
    const what = (op << 24) | (status << 16) | (<u32>load<u8>(c + CX_SENSE_KEY) << 8) | <u32>load<u8>(c + CX_ASC);
    trace(TRACE_COMMAND, who, what, load<u32>(c + CX_BLOCKS), <u32>(latency / 1000));
  }
}

/** READ (6), (10), (12), (16): what the read statistics count. */
// @ts-ignore: decorator
@inline function isRead(op: u32): bool { return op == 0x08 || op == 0x28 || op == 0xA8 || op == 0x88; }
/** Commands that write volume data: WRITE (6/10/12/16), WRITE AND VERIFY, WRITE SAME, COMPARE AND WRITE. */
// @ts-ignore: decorator
@inline function isWrite(op: u32): bool {
  return op == 0x0A || op == 0x2A || op == 0xAA || op == 0x8A || op == 0x2E || op == 0xAE || op == 0x8E
    || op == 0x41 || op == 0x93 || op == 0x89 || op == 0x8B;
}

/** True while nothing in the cache has changed since this command last found nothing to do. */
function cacheUnchanged(c: usize): bool { return load<u32>(c + CX_EVENT_SEEN) == cacheEvent() + 1; }
function waitCache(c: usize): void { store<u32>(c + CX_EVENT_SEEN, cacheEvent() + 1); }
function clearWait(c: usize): void { store<u32>(c + CX_EVENT_SEEN, 0); }

// ---- Volume reads -------------------------------------------------------------------------------

/** Starts a read of `blocks` blocks at `lba` of the context's volume. */
export function startRead(c: usize, lba: u64, blocks: u32): void {
  const bytes = <u64>blocks * <u64>blockSize(load<u16>(c + CX_VOLUME));
  store<u64>(c + CX_LBA, lba);
  store<u32>(c + CX_BLOCKS, blocks);
  store<u32>(c + CX_PRODUCED, <u32>bytes);
  store<u32>(c + CX_LENGTH, <u32>min<u64>(bytes, <u64>load<u32>(c + CX_EXPECTED)));
  store<u8>(c + CX_STATE, <u8>ST_READ);
  if (load<u32>(c + CX_LENGTH) == 0) good(c);
}

function readStep(c: usize): void {
  if (cacheUnchanged(c)) return;
  clearWait(c);
  const volume = <u32>load<u16>(c + CX_VOLUME);
  const base = load<u64>(c + CX_LBA) * <u64>blockSize(volume);
  const total = load<u32>(c + CX_LENGTH);
  let cursor = load<u32>(c + CX_CURSOR);
  while (cursor < total) {
    const off = base + <u64>cursor;
    const slotNo = <u32>(off >> 16);
    const within = <u32>(off & 0xFFFF);
    const n = min<u32>(total - cursor, SLOT_BYTES - within);
    // A pair's target reads the source where the track is not copied yet (004's instant split).
    const slot = readySlot(c, pairReadVolume(volume, slotNo), slotNo, within >> 9, (within + n + 511) / 512 - (within >> 9));
    if (slot < 0) return;
    holdSlot(c, <u32>slot); // until it is sent: the transmit ring may take it over several polls
    if (total - cursor > n) stageAhead(c, volume, slotNo + 1, base, total);
    const sent = sinkData(c, slotData(<u32>slot) + within, n, total, cursor);
    if (sent < 0) return; // miscompare: the command has failed
    touch(<u32>slot);
    cursor += <u32>sent;
    store<u32>(c + CX_CURSOR, cursor);
    if (<u32>sent < n) return; // the session's transmit ring is full: go on next poll
    dropSlot(c);
  }
  readDone(c);
}

/**
 * Where a read's bytes go: to the initiator (READ), compared with the data-out in the command's
 * buffer (VERIFY with BYTCHK: MISCOMPARE at the first differing byte, -1), or nowhere (VERIFY
 * without BYTCHK, PRE-FETCH: the blocks are staged and their errors reported). Returns the bytes taken.
 */
function sinkData(c: usize, src: usize, n: u32, total: u32, cursor: u32): i32 {
  const flags = load<u32>(c + CX_FLAGS);
  if ((flags & CXF_SINK_COMPARE) != 0) {
    const at = firstDifference(src, ctxBufferAddr(c) + cursor, n);
    if (at >= 0) { miscompare(c, cursor + <u32>at); return -1; }
    return <i32>n;
  }
  if ((flags & CXF_SINK_DISCARD) != 0) return <i32>n;
  return <i32>txData(c, src, n, total, cursor + n == total);
}

/** The offset of the first byte where a and b differ over n bytes, or -1. */
export function firstDifference(a: usize, b: usize, n: u32): i32 {
  let i: u32 = 0;
  while (i + 8 <= n && load<u64>(a + i) == load<u64>(b + i)) i += 8;
  while (i < n) {
    if (load<u8>(a + i) != load<u8>(b + i)) return <i32>i;
    i++;
  }
  return -1;
}

/** MISCOMPARE (0Eh), MISCOMPARE DURING VERIFY OPERATION (1Dh/00h), INFORMATION = offset into the data-out. */
export function miscompare(c: usize, offset: u32): void {
  fail(c, 0x0E, 0x1D, 0x00);
  ctxInfo(c, offset);
}

function readDone(c: usize): void {
  const flags = load<u32>(c + CX_FLAGS);
  if ((flags & (CXF_SINK_COMPARE | CXF_SINK_DISCARD)) == 0) { good(c); return; }
  dropSlot(c);
  // From the initiator's side only the data-out moved (VERIFY BYTCHK=1), or nothing.
  store<u32>(c + CX_CURSOR, (flags & CXF_SINK_COMPARE) != 0 ? load<u32>(c + CX_PRODUCED) : 0);
  store<u32>(c + CX_FLAGS, flags & ~(CXF_SINK_COMPARE | CXF_SINK_DISCARD));
  if ((flags & CXF_REDISPATCH) != 0) retryLater(c); else { ctxBufferRelease(c); good(c); }
}

/**
 * Reads `blocks` blocks at `lba` without sending them: `compare` against the command's buffer
 * (from its first byte), else only staged so that errors show. With `redispatch` the handler runs
 * again when the blocks are in (its CX_ARG says where it is), else the command ends GOOD.
 */
export function startInternalRead(c: usize, lba: u64, blocks: u32, compare: bool, redispatch: bool): void {
  const bytes = blocks * blockSize(load<u16>(c + CX_VOLUME));
  store<u64>(c + CX_LBA, lba);
  store<u32>(c + CX_BLOCKS, blocks);
  store<u32>(c + CX_LENGTH, bytes);
  store<u32>(c + CX_CURSOR, 0);
  let f = load<u32>(c + CX_FLAGS) & ~(CXF_SINK_COMPARE | CXF_SINK_DISCARD | CXF_REDISPATCH);
  f |= (compare ? CXF_SINK_COMPARE : CXF_SINK_DISCARD) | (redispatch ? CXF_REDISPATCH : 0);
  store<u32>(c + CX_FLAGS, f);
  store<u8>(c + CX_STATE, <u8>ST_READ);
  if (bytes == 0) { readDone(c); return; }
  readStep(c);
}

/**
 * The slot holding sectors [first, first + count) of (volume, slotNo), all valid; or -1 after
 * arranging for them (stage request, wait) or failing the command on a medium error.
 */
function readySlot(c: usize, volume: u32, slotNo: u32, first: u32, count: u32): i32 {
  let slot = cacheLookup(volume, slotNo);
  if (slot < 0) {
    dropSlot(c); // never hold a pin while waiting for a slot to evict
    slot = allocateFor(volume, slotNo);
    if (slot < 0) { statInc(STAT_PIN_WAITS); waitCache(c); return -1; }
    store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_MISS); // not cached: a miss, staged or not
  }
  const i = <u32>slot;
  holdSlot(c, i); // the stage it may ask for must not be evicted before this command reads it
  const bad = poisonedSector(i, first, count);
  if (bad >= 0) { mediumErrorAt(c, slotNo, <u32>bad); return -1; } // dropped at recovery: no bytes to vouch for
  if (sectorsValid(i, first, count)) return slot;
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_MISS);
  const f = slotFlags(i);
  if ((f & F_STAGING) != 0) { store<u32>(c + CX_WAIT_SLOT, i + 1); waitCache(c); return -1; }
  if ((f & (F_READ_ERROR | F_NOT_READY)) != 0 && load<u32>(c + CX_WAIT_SLOT) == i + 1) {
    // A stage another command asked for may have failed on a sector this one does not read: then
    // this one stages its own sectors (the error of a stage lies in its run, so this ends).
    const e = slotErrorSector(i);
    if ((f & F_NOT_READY) != 0 || (e >= first && e < first + count)) { readFailed(c, i, slotNo, f); return -1; }
  }
  if (requestStage(i, first, count)) { store<u32>(c + CX_WAIT_SLOT, i + 1); waitCache(c); }
  return -1;
}

function requestStage(slot: u32, first: u32, count: u32): bool {
  const run = missingRun(slot, first, count);
  slotClearFlags(slot, F_READ_ERROR | F_NOT_READY);
  slotSetFlags(slot, F_STAGING);
  if (postToDisk(MB_STAGE, slot, run >> 16, run & 0xFFFF, 0)) return true;
  slotClearFlags(slot, F_STAGING); // the mailbox is full: ask again next poll
  return false;
}

function readFailed(c: usize, slot: u32, slotNo: u32, flags: u32): void {
  if ((flags & F_NOT_READY) != 0) { fail(c, 0x02, 0x04, 0x03); return; }
  mediumErrorAt(c, slotNo, slotErrorSector(slot));
}

/** MEDIUM ERROR, UNRECOVERED READ ERROR with the volume LBA of the sector in the INFORMATION field. */
function mediumErrorAt(c: usize, slotNo: u32, sectorInSlot: u32): void {
  const volume = <u32>load<u16>(c + CX_VOLUME);
  const sector = (<u64>slotNo << 7) + <u64>sectorInSlot;
  fail(c, 0x03, 0x11, 0x00);
  ctxInfo(c, <u32>((sector << 9) / <u64>blockSize(volume)));
}

/**
 * A slot for (volume, slotNo) with nothing valid, or -1; when the chunk under it was never written
 * (initmap.ts) the slot is zeros, all valid: no stage, and nothing of its previous owner shows.
 */
export function allocateFor(volume: u32, slotNo: u32): i32 { return allocateToWrite(volume, slotNo, 0, 0); }

/**
 * allocateFor for a write of sectors [first, first + count) that the caller makes next: on a never
 * written chunk only the other sectors are zeroed; those stay invalid until the write lands (an
 * invalid sector of a blank chunk stages as zeros, so none of the slot's old bytes can show).
 */
function allocateToWrite(volume: u32, slotNo: u32, first: u32, count: u32): i32 {
  const slot = allocate(volume, slotNo);
  if (slot >= 0 && volumeChunkBlank(volume, slotNo)) fillBlank(<u32>slot, first, count);
  return slot;
}

/** Starts staging the next slots of a long read so the media work while data goes out. */
function stageAhead(c: usize, volume: u32, from: u32, base: u64, total: u32): void {
  const lastSlot = <u32>((base + <u64>total - 1) >> 16);
  const until = min<u32>(lastSlot, from + STAGE_AHEAD_SLOTS - 1);
  for (let n = from; n <= until; n++) {
    const start = max<u64>(<u64>n << 16, base);
    const end = min<u64>((<u64>n + 1) << 16, base + <u64>total);
    const first = <u32>((start >> 9) & 127);
    const count = <u32>((end - start + 511) >> 9);
    let slot = cacheLookup(volume, n);
    if (slot < 0) {
      slot = allocateFor(volume, n);
      if (slot < 0) return;
    }
    const i = <u32>slot;
    if (sectorsValid(i, first, count) || (slotFlags(i) & F_STAGING) != 0) continue;
    if (!requestStage(i, first, count)) return;
  }
}

// ---- Volume writes ----------------------------------------------------------------------------

/**
 * Starts a write of `blocks` blocks at `lba` from the command's own buffer (WRITE SAME): the
 * buffer's whole granules are written again and again, so it must hold a whole number of blocks
 * repeated; the data-out is not asked for.
 */
export function startWriteFromBuffer(c: usize, lba: u64, blocks: u32, fua: bool): void {
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_FROM_BUFFER);
  store<u32>(c + CX_CURSOR, 0);
  startWrite(c, lba, blocks, fua);
}

/** Starts a write of `blocks` blocks at `lba`; data-out comes in windows of buffer memory. */
export function startWrite(c: usize, lba: u64, blocks: u32, fua: bool): void {
  const bytes = blocks * blockSize(load<u16>(c + CX_VOLUME));
  store<u64>(c + CX_LBA, lba);
  store<u32>(c + CX_BLOCKS, blocks);
  store<u32>(c + CX_LENGTH, bytes);
  store<u32>(c + CX_PRODUCED, bytes);
  if (fua) store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_FUA);
  store<u8>(c + CX_STATE, <u8>ST_WRITE_BUFFER);
  if (bytes == 0) { good(c); return; }
  windowStep(c);
}

/** Starts receiving a management parameter list of `bytes` bytes. */
export function startParameterList(c: usize, bytes: u32): void {
  store<u32>(c + CX_LENGTH, bytes);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_PARAM);
  store<u8>(c + CX_STATE, <u8>ST_WRITE_BUFFER);
  windowStep(c);
}

/**
 * Starts receiving `bytes` of data-out that the handler then reads whole with parameterList, however
 * many windows the transport brings it in (they are gathered in buffer memory taken now). When
 * buffer memory is short the handler runs again later.
 */
export function startDataOut(c: usize, bytes: u32): void {
  if (load<u32>(c + CX_GATHER) == 0 && !ctxGatherBuffer(c, bytes)) { retryLater(c); return; }
  startParameterList(c, bytes);
}

/** The parameter list has arrived? Then its address; else 0. */
export function parameterList(c: usize): usize {
  if (load<u8>(c + CX_STATE) != <u8>ST_DISPATCH || (load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) return 0;
  if (load<u32>(c + CX_CURSOR) < load<u32>(c + CX_LENGTH)) return 0;
  return windowBase(c);
}

/** Opens the next data-out window: the transport asks the initiator for it, or finds it in place already. */
function windowStep(c: usize): void {
  const cursor = load<u32>(c + CX_CURSOR);
  const remaining = load<u32>(c + CX_LENGTH) - cursor;
  const param = (load<u32>(c + CX_FLAGS) & CXF_PARAM) != 0;
  if ((load<u32>(c + CX_FLAGS) & CXF_FROM_BUFFER) != 0) {
    // The command's buffer is the window, at every cursor: nothing to ask the initiator for.
    const n = min<u32>(remaining, ctxBufferBytes(c));
    store<u32>(c + CX_WIN_START, cursor);
    store<u32>(c + CX_WIN_LEN, n);
    store<u32>(c + CX_WIN_RECEIVED, n);
    store<u8>(c + CX_STATE, <u8>ST_WRITE_COMMIT);
    return;
  }
  const r = windowOpen(c, cursor, min<u32>(remaining, MAX_WINDOW_BYTES));
  if (r == WIN_RETRY) return;
  if (r == WIN_ARRIVED) { windowArrived(c, param); return; }
  store<f64>(c + CX_DEADLINE_NS, gNow + DATA_OUT_TIMEOUT_NS);
  wakeAt(gNow + DATA_OUT_TIMEOUT_NS);
  store<u8>(c + CX_STATE, <u8>(param ? ST_PARAM_DATA : ST_WRITE_DATA));
}

function windowArrived(c: usize, param: bool): void {
  if (param) {
    const start = load<u32>(c + CX_WIN_START);
    const length = load<u32>(c + CX_LENGTH);
    const gather = load<u32>(c + CX_GATHER) != 0;
    if (start == 0 && load<u32>(c + CX_WIN_LEN) >= length) {
      if (gather) ctxGatherRelease(c); // all of it in one window: nothing to gather
    } else {
      if (!gather) { fail(c, 0x0B, 0x4B, 0x00); return; } // a list too long for one window, not expected so
      const n = load<u32>(c + CX_WIN_LEN);
      memory.copy(ctxGatherAddr(c) + start, windowBase(c) + start, n);
      ctxBufferRelease(c);
      store<u32>(c + CX_CURSOR, start + n);
      if (start + n < length) { store<u8>(c + CX_STATE, <u8>ST_WRITE_BUFFER); windowStep(c); return; }
      ctxGatherToBuffer(c);
      store<u32>(c + CX_WIN_START, 0);
    }
    store<u32>(c + CX_CURSOR, length);
    store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
  } else {
    store<u8>(c + CX_STATE, <u8>ST_WRITE_COMMIT);
  }
  ctxStep(c);
}

function dataTimeout(c: usize): void {
  const deadline = load<f64>(c + CX_DEADLINE_NS);
  if (gNow >= deadline) fail(c, 0x0B, 0x4B, 0x00);
  else wakeAt(deadline);
}

/**
 * Data-out for the command's open window: `length` bytes at `at` past the head of the byte ring
 * rx, which belong at relOffset of the command's data. False when they are not the next bytes of
 * the window (the transport answers that its own way); when the window is complete the command
 * goes on.
 */
export function windowData(c: usize, rx: usize, at: u32, length: u32, relOffset: u32): bool {
  const received = load<u32>(c + CX_WIN_RECEIVED);
  const winStart = load<u32>(c + CX_WIN_START);
  if (relOffset != winStart + received || received + length > load<u32>(c + CX_WIN_LEN)) return false;
  byteRingRead(rx, at, windowBase(c) + relOffset, length);
  store<u32>(c + CX_WIN_RECEIVED, received + length);
  if (received + length == load<u32>(c + CX_WIN_LEN)) windowArrived(c, <u32>load<u8>(c + CX_STATE) == ST_PARAM_DATA);
  return true;
}

/** True while the command waits for data-out of an open window. */
export function windowOpenNow(c: usize): bool {
  const st = <u32>load<u8>(c + CX_STATE);
  return st == ST_WRITE_DATA || st == ST_PARAM_DATA;
}

/** Copies the window into cache slots, persisting each piece (data, then descriptor). */
function commitStep(c: usize): void {
  if (cacheUnchanged(c)) return;
  clearWait(c);
  const volume = <u32>load<u16>(c + CX_VOLUME);
  const base = load<u64>(c + CX_LBA) * <u64>blockSize(volume);
  const winStart = load<u32>(c + CX_WIN_START);
  const winEnd = winStart + load<u32>(c + CX_WIN_LEN);
  const fromBuffer = (load<u32>(c + CX_FLAGS) & CXF_FROM_BUFFER) != 0;
  const src = fromBuffer ? ctxBufferAddr(c) - <usize>winStart : windowBase(c);
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  let cursor = load<u32>(c + CX_CURSOR);
  if (nvDegraded()) { ctxBufferRelease(c); nvRefuse(c); return; }
  if (volumeFenced(volume)) { fail(c, 0x0B, 0x3F, 0x00); return; } // deleted under it: nothing reaches the cache
  // The cache takes whole 512-byte sectors. A window that starts or ends inside one (an iSCSI
  // initiator's unsolicited data that stopped short there) cannot be placed: nothing of it is
  // written, INVALID FIELD IN COMMAND INFORMATION UNIT, as for a transfer cut inside a block.
  if (((winStart | winEnd) & 511) != 0) { ctxBufferRelease(c); fail(c, 0x05, 0x0E, 0x03); return; }
  while (cursor < winEnd) {
    if (!nvRoom(WRITE_NV_ENTRIES + 2)) return;
    const off = base + <u64>cursor;
    const slotNo = <u32>(off >> 16);
    const within = <u32>(off & 0xFFFF);
    const n = min<u32>(winEnd - cursor, SLOT_BYTES - within);
    // A pair's difference bit goes to the NV ring before the data (write intent), or the write waits
    // for the copy of the track's old data (copy before write), or is refused (the pair's state).
    const intent = pairBeforeWrite(volume, slotNo, id);
    if (intent == PW_WAIT) { if (pairWaitExpired(c)) return; waitCache(c); return; }
    if (intent == PW_REFUSE) { ctxBufferRelease(c); fail(c, 0x07, 0x27, 0x00); return; }
    if (intent == PW_PERSISTED) store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + 1);
    // A remote primary's difference bit, the same way (remote/async.ts: write intent for resume).
    const remoteIntent = remoteBeforeWrite(volume, slotNo, id);
    if (remoteIntent < 0) return;
    if (remoteIntent > 0) store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + 1);
    let slot = cacheLookup(volume, slotNo);
    if (slot < 0) {
      slot = allocateToWrite(volume, slotNo, within >> 9, n >> 9);
      if (slot < 0) { statInc(STAT_PIN_WAITS); waitCache(c); return; }
      cacheCount(CS_WRITE_MISSES);
    } else {
      cacheCount(CS_WRITE_HITS);
    }
    if ((slotFlags(<u32>slot) & F_STAGING) != 0) { waitCache(c); return; }
    // A thin chunk no write has reached takes a medium chunk now, or the write stops here (thin.ts).
    if (!thinEnsure(volume, slotNo, <u32>slot)) { ctxBufferRelease(c); spaceAllocationFailed(c); return; }
    writeSectors(<u32>slot, within >> 9, n >> 9, src + cursor, gNow, id);
    store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + WRITE_NV_ENTRIES);
    cursor += n;
    store<u32>(c + CX_CURSOR, cursor);
  }
  const more = cursor < load<u32>(c + CX_LENGTH);
  if (!fromBuffer || !more) ctxBufferRelease(c); // WRITE SAME writes its buffer again for the next window
  if (remoteWindow(c, winStart, winEnd - winStart)) return; // the window goes to a remote pair's first hop first
  commitNext(c);
}

/** The window is committed (and sent where a remote pair needs it): the next window, or the wait for NV. */
export function commitNext(c: usize): void {
  const more = load<u32>(c + CX_CURSOR) < load<u32>(c + CX_LENGTH);
  store<u8>(c + CX_STATE, <u8>(more ? ST_WRITE_BUFFER : ST_NV_WAIT));
  if (more) windowStep(c);
}

function nvWaitStep(c: usize): void {
  if (load<u32>(c + CX_NV_PENDING) != 0) return;
  if ((load<u32>(c + CX_FLAGS) & CXF_NV_FAILED) != 0) { nvRefuse(c); return; }
  // What it persisted is in the NV file: a handler that goes on after that runs again (thin provisioning's frees).
  if ((load<u32>(c + CX_FLAGS) & CXF_AFTER_PERSIST) != 0) { store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_AFTER_PERSIST); retryLater(c); return; }
  if ((load<u32>(c + CX_FLAGS) & CXF_FUA) != 0) {
    const volume = <u32>load<u16>(c + CX_VOLUME);
    const base = load<u64>(c + CX_LBA) * <u64>blockSize(volume);
    const firstSlot = <u32>(base >> 16);
    const lastSlot = <u32>((base + <u64>load<u32>(c + CX_LENGTH) - 1) >> 16);
    // FUA: only this command's slots are forced out, not older write-back data of other ranges.
    markUrgent(volume, firstSlot, lastSlot);
    store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_FLUSH_POSTED);
    startFlush(c, firstSlot, lastSlot, false);
    return;
  }
  good(c);
}

/**
 * What the command changed may not be in the NV file (an NV write failed, or the file is failing):
 * HARDWARE ERROR, WRITE ERROR (0Ch/00h) for a WRITE, INTERNAL TARGET FAILURE (44h/00h) for a
 * management change. Nothing is acknowledged that the NV file may not hold.
 */
export function nvRefuse(c: usize): void {
  statInc(STAT_NV_REFUSED);
  if (isWrite(<u32>load<u8>(c + CX_OPCODE))) fail(c, 0x04, 0x0C, 0x00);
  else fail(c, 0x04, 0x44, 0x00);
}

// ---- Write-through: FUA and SYNCHRONIZE CACHE -------------------------------------------------

/**
 * Waits until every dirty slot of the context's volume in [firstSlot, lastSlot] that was dirtied
 * before now is on its medium. With `immediate` the status goes out first (SYNCHRONIZE CACHE IMMED).
 */
export function startFlush(c: usize, firstSlot: u32, lastSlot: u32, immediate: bool): void {
  store<u64>(c + CX_FLUSH_SEQ, currentSeq());
  store<u32>(c + CX_WAIT_SLOT, 0);
  store<f64>(c + CX_DEADLINE_NS, 0);
  store<u32>(c + CX_FIRST_SLOT, firstSlot);
  store<u32>(c + CX_LAST_SLOT, lastSlot);
  store<u8>(c + CX_STATE, <u8>ST_FLUSH);
  if (immediate && txRespondNow(c)) store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_IMMED);
  flushStep(c);
}

/** Sends GOOD now and lets the command go on without its tag (the host may reuse it). */
function txRespondNow(c: usize): bool {
  store<u8>(c + CX_STATUS, 0);
  if (!txRespond(c)) return false;
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  account(c);
  tagRemove(port, s, load<u32>(c + CX_TAG));
  sessionOutstandingAdd(port, s, -1);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_RESPONDED);
  return true;
}

/**
 * Waits for the range's oldest dirty slot (of those dirtied before the flush began) to reach its
 * medium, then the next. It fails with what that slot met: a write error (MEDIUM ERROR, WRITE
 * ERROR), no medium to write to (NOT READY, MANUAL INTERVENTION REQUIRED), an NV file that could
 * not take its chunk's init map mark (HARDWARE ERROR, WRITE ERROR, as a WRITE the NV file refuses:
 * the array's own memory failed, not the medium, which a MEDIUM ERROR would blame), or no progress for
 * FLUSH_STALL_NS: ABORTED COMMAND, COMMAND TIMEOUT DURING PROCESSING (2Eh/02h), with the first LBA
 * of the slot it waited for in INFORMATION and the volume and slot in the log. The data stays
 * dirty (and in NV) and is destaged when its medium lets it.
 */
function flushStep(c: usize): void {
  if ((load<u32>(c + CX_FLAGS) & CXF_FLUSH_POSTED) == 0) {
    if (!postToDisk(MB_FLUSH, 0, 0, 0, load<u64>(c + CX_FLUSH_SEQ))) return;
    store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_FLUSH_POSTED);
  }
  const deadline = load<f64>(c + CX_DEADLINE_NS);
  if (cacheUnchanged(c) && gNow < deadline) { wakeAt(deadline); return; }
  clearWait(c);
  const v = <u32>load<u16>(c + CX_VOLUME);
  const slot = oldestDirty(v == NO_VOLUME16 ? ANY_VOLUME : v, load<u32>(c + CX_FIRST_SLOT), load<u32>(c + CX_LAST_SLOT),
    load<u64>(c + CX_FLUSH_SEQ));
  if (slot < 0) { good(c); return; }
  const i = <u32>slot;
  // A verdict from before the command began may be stale (the medium was being labelled, a write
  // error since healed): the disk IOP tries the slot again for this flush.
  const verdict = slotVerdictNs(i);
  const f = verdict != 0 && verdict >= load<f64>(c + CX_START_NS) ? slotFlags(i) : 0;
  if ((f & F_NOT_READY) != 0) { fail(c, 0x02, 0x04, 0x03); return; }
  if ((f & F_WRITE_ERROR) != 0) { fail(c, 0x03, 0x0C, 0x00); return; }
  if ((f & F_NV_FAILED) != 0) { fail(c, 0x04, 0x0C, 0x00); return; }
  if (load<u32>(c + CX_WAIT_SLOT) != i + 1 || deadline == 0) {
    // A slot it had not waited for yet: the one before it is on its medium (progress).
    store<u32>(c + CX_WAIT_SLOT, i + 1);
    store<f64>(c + CX_DEADLINE_NS, gNow + FLUSH_STALL_NS);
  } else if (gNow >= deadline) {
    log(LOG_ERROR, "flush: a dirty slot did not reach its medium within the bound; the command fails (volume, slot number)", slotVolume(i), slotNumber(i));
    fail(c, 0x0B, 0x2E, 0x02);
    ctxInfo(c, <u32>((<u64>slotNumber(i) << 16) / <u64>blockSize(slotVolume(i))));
    return;
  }
  wakeAt(load<f64>(c + CX_DEADLINE_NS));
  waitCache(c);
}

// ---- Generated data-in --------------------------------------------------------------------------

/** Buffer memory for `bytes` of generated data-in, zeroed; 0 when none is free (the handler retries). */
export function dataInBuffer(c: usize, bytes: u32): usize {
  if (!ctxBuffer(c, max<u32>(bytes, 1), true)) { retryLater(c); return 0; }
  return ctxBufferAddr(c);
}

/** The handler wrote `produced` bytes into its buffer; at most the host's expected length is sent. */
export function sendBuffer(c: usize, produced: u32): void {
  store<u32>(c + CX_PRODUCED, produced);
  sendBufferThen(c, produced);
}

/**
 * Sends `bytes` of the buffer, at most the host's expected length, then the status prepared: GOOD,
 * or the CHECK CONDITION the handler set with ctxCheck (a tape READ's FILEMARK or ILI goes with the
 * data read). CX_PRODUCED, what the CDB asked for, is the handler's.
 */
export function sendBufferThen(c: usize, bytes: u32): void {
  store<u32>(c + CX_LENGTH, min<u32>(bytes, load<u32>(c + CX_EXPECTED)));
  store<u8>(c + CX_STATE, <u8>ST_SEND_BUFFER);
  sendBufferStep(c);
}

function sendBufferStep(c: usize): void {
  const total = load<u32>(c + CX_LENGTH);
  const ok = load<u8>(c + CX_STATUS) == 0; // a CHECK CONDITION's sense needs a response of its own
  let cursor = load<u32>(c + CX_CURSOR);
  const buf = ctxBufferAddr(c);
  while (cursor < total) {
    const sent = txData(c, buf + cursor, total - cursor, total, ok);
    if (sent == 0) return;
    cursor += sent;
    store<u32>(c + CX_CURSOR, cursor);
  }
  ctxBufferRelease(c);
  if (ok) good(c); else store<u8>(c + CX_STATE, <u8>ST_RESPOND);
}

/** Waits for the context's NV persists, then GOOD. */
export function waitPersisted(c: usize): void {
  store<u8>(c + CX_STATE, <u8>ST_NV_WAIT);
  nvWaitStep(c);
}

/** Waits until what the command persisted is in the NV file, then runs its handler again (its CX_ARG says where it is). */
export function persistThenRedispatch(c: usize): void {
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_AFTER_PERSIST);
  waitPersisted(c);
}

export function nvPending(c: usize, n: u32): void { store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + n); }

