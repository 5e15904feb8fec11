// SCSI commands over iSCSI (RFC 7143 3.2, 11.2-11.8): the SCSI Command PDU with its immediate
// data, unsolicited and solicited (R2T) Data-Out, Data-In with the status in its last PDU when it
// is GOOD, and the SCSI Response with sense and residuals. Commands run in CmdSN order: one that
// arrives ahead of a gap is held (ST_HELD) until the gap closes, within a bound.
//
// How a write's data meets the sequencer's windows: unsolicited data (immediate, then Data-Out with
// TTT FFFFFFFFh up to FirstBurstLength) may come before the command is even dispatched, so it is
// kept in buffer memory of its own (IscsiTask.ubuf*); the first window the sequencer opens takes
// that buffer over. Every later window is asked for with one R2T of at most MaxBurstLength
// (MaxOutstandingR2T=1). Data the command does not take (beyond its transfer length, after it
// failed) is read past. A status never goes out while the initiator still owes Data-Out with the
// F bit (RFC 7143 11.17: wait for the last expected Data-Out), bounded by DATA_OUT_TIMEOUT_NS.
import {
  STAT_ISCSI_DROPPED, STAT_ISCSI_DIGEST_ERRORS, TRACE_PDU_ERROR, PERR_CMDSN, PERR_NO_TASK, PERR_DATA_DIGEST,
  PERR_PROTOCOL, PERR_FIELD, PERR_OPCODE, MAX_CDB_BYTES, STAT_BUSY,
} from "../../abi";
import { byteRingRead } from "../../ring";
import { gNow, wakeAt } from "../../iop";
import {
  CX_PORT, CX_SESSION, CX_TAG, CX_LUN, CX_STATUS, CX_STATE, CX_CURSOR, CX_BUF_FIRST, CX_BUF_COUNT, CX_WIN_START,
  CX_WIN_LEN, CX_WIN_RECEIVED, ST_HELD, ST_DISPATCH, ST_RESPOND, WIN_RETRY, WIN_ASKED, WIN_ARRIVED, TA_SIMPLE, TA_ORDERED,
  TA_HEAD_OF_QUEUE, TA_ACA, ctxAt, ctxBuffer, ctxBufferRelease, bufAlloc, bufFree, bufAddr, activeFirst, activeNext,
  BUFFER_GRANULE_BYTES,
} from "../../ctx";
import { scratch, tagFind, responseSense, directSense } from "../../channel";
import {
  cmdBegin, cmdDispatch, fail, finishStatus, ctxStep, windowData, windowOpenNow, abortCommand, residual, residualAt,
  RESID_OVERFLOW, RESID_UNDERFLOW, DATA_OUT_TIMEOUT_NS,
} from "../../sequencer";
import { statInc } from "../../stats";
import { trace } from "../../trace";
import { getBe32, putBe16, putBe32 } from "../../util";
import { decodeLun } from "../lun";
import {
  IscsiSession, IscsiTask, session, task, TF_UNSOL_OPEN, TF_R2T_OPEN, TF_STATUS_SENT, TF_HELD, TF_DATA_ERROR, TF_BUSY,
  snLess,
} from "./state";
import {
  bhsBegin, pduSend, OP_DATA_IN, OP_R2T, OP_SCSI_RESPONSE, B_FLAGS, B_LUN, B_ITT, B_TTT, B_CMDSN, B_DATASN,
  B_OFFSET, B_LENGTH, B_CDB, FINAL, IMMEDIATE, BHS_BYTES, REJECT_PROTOCOL, REJECT_INVALID_FIELD, REJECT_DATA_DIGEST,
  REJECT_NOT_SUPPORTED, NO_TAG, newTtt,
} from "./pdu";
import { reject, tmfGapClosed } from "./control";

const F_READ: u32 = 0x40;
const F_WRITE: u32 = 0x20;
const S_BIT: u32 = 0x01;
const U_BIT: u32 = 0x02;
const O_BIT: u32 = 0x04;
const STATUS_BUSY: u32 = 0x08;
/** A CmdSN gap that holds commands back this long is not going to close: the connection is dropped (ERL 0). */
export const CMDSN_GAP_TIMEOUT_NS: f64 = 10e9;
const SENSE_AT: u32 = 80; // scratch: 2-byte SenseLength, then the sense data

// ---- CmdSN order (RFC 7143 4.2.2.1, 3.2.2.1) ----------------------------------------------------------
// IscsiSession.ahead: bit k says CmdSN expCmdSN + k arrived (k >= 1: ahead of a gap).

export const SN_IN_ORDER: u32 = 0;
export const SN_AHEAD: u32 = 1;
export const SN_OUTSIDE: u32 = 2;

/** Where a non-immediate request's CmdSN falls: the next one, ahead of a gap in the window, or outside (dropped). */
export function cmdsnPlace(sess: IscsiSession, cmdsn: u32): u32 {
  if (cmdsn == sess.expCmdSN) return SN_IN_ORDER;
  if (snLess(sess.expCmdSN, cmdsn) && !snLess(sess.maxCmdSN, cmdsn) && cmdsn - sess.expCmdSN < 128) {
    return aheadBit(sess, cmdsn - sess.expCmdSN) ? SN_OUTSIDE : SN_AHEAD; // a second copy is a duplicate
  }
  return SN_OUTSIDE;
}

function aheadBit(sess: IscsiSession, k: u32): bool {
  return k < 64 ? ((sess.ahead >> <u64>k) & 1) != 0 : ((sess.ahead2 >> <u64>(k - 64)) & 1) != 0;
}

/** Records a request that arrived ahead of a gap. */
export function cmdsnMarkAhead(sess: IscsiSession, cmdsn: u32): void {
  const k = cmdsn - sess.expCmdSN;
  if (k < 64) sess.ahead |= <u64>1 << <u64>k; else sess.ahead2 |= <u64>1 << <u64>(k - 64);
  if (sess.gapSinceNs == 0) sess.gapSinceNs = gNow;
}

/** The request with CmdSN expCmdSN was taken: moves on, and releases what waited behind it. */
export function cmdsnAdvance(port: u32, s: u32, sess: IscsiSession): void {
  cmdsnTake(sess);
  cmdsnRelease(port, s, sess);
}

/**
 * Runs, in CmdSN order, what arrived ahead and now comes next. ExpCmdSN moves past each before it
 * runs, so its response already acknowledges it.
 */
function cmdsnRelease(port: u32, s: u32, sess: IscsiSession): void {
  while ((sess.ahead & 1) != 0) {
    const cmdsn = sess.expCmdSN;
    cmdsnTake(sess);
    if (sess.held > 0) releaseHeld(port, s, sess, cmdsn);
  }
  if (sess.ahead == 0 && sess.ahead2 == 0) sess.gapSinceNs = 0;
  tmfGapClosed(port, s, sess);
}

/** ExpCmdSN moves past the request that had it. */
function cmdsnTake(sess: IscsiSession): void {
  sess.expCmdSN++;
  sess.ahead = (sess.ahead >> 1) | (sess.ahead2 << 63);
  sess.ahead2 >>= 1;
}

function releaseHeld(port: u32, s: u32, sess: IscsiSession, cmdsn: u32): void {
  let c = activeFirst();
  while (c != 0) {
    const next = activeNext(c);
    const t = task(c);
    if ((t.flags & TF_HELD) != 0 && t.cmdSN == cmdsn && <u32>load<u8>(c + CX_PORT) == port && <u32>load<u8>(c + CX_SESSION) == s) {
      t.flags &= ~TF_HELD;
      sess.held--;
      store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
      dispatchTask(c);
      return;
    }
    c = next;
  }
}

/** Checked every poll: a gap open too long ends the connection. Returns true when it did. */
export function cmdsnGapExpired(sess: IscsiSession): bool {
  if (sess.gapSinceNs == 0) return false;
  if (gNow - sess.gapSinceNs >= CMDSN_GAP_TIMEOUT_NS) return true;
  wakeAt(sess.gapSinceNs + CMDSN_GAP_TIMEOUT_NS);
  return false;
}

// ---- SCSI Command ---------------------------------------------------------------------------------------

function taskAttribute(attr: u32): u32 {
  if (attr == 2) return TA_ORDERED;
  if (attr == 3) return TA_HEAD_OF_QUEUE;
  if (attr == 4) return TA_ACA;
  return TA_SIMPLE; // 0 untagged, 1 simple
}

/** CDB length: 16 bytes in the BHS, more in an Extended CDB AHS (type 1) that follows it at b + 48. */
function cdbLength(b: usize, ahsBytes: u32): u32 {
  if (ahsBytes < 4 || load<u8>(b + BHS_BYTES + 2) != 1) return 16;
  const ahsLen = (<u32>load<u8>(b + BHS_BYTES) << 8) | <u32>load<u8>(b + BHS_BYTES + 1);
  const extra = ahsLen - 1; // the AHS length counts its reserved byte
  if (ahsLen == 0 || <u32>16 + extra > MAX_CDB_BYTES || ahsBytes < <u32>4 + extra) return 0;
  memory.copy(b + B_CDB + 16, b + BHS_BYTES + 4, extra); // the CDB made whole in place (the AHS is not needed after)
  return 16 + extra;
}

/**
 * A SCSI Command PDU (BHS at b, its AHS behind it; `len` immediate data bytes at `at` past the head
 * of rx, checked already if digests are on).
 */
export function scsiCommandPdu(port: u32, s: u32, sess: IscsiSession, b: usize, ahsBytes: u32, rx: usize, at: u32, len: u32): void {
  const flags = <u32>load<u8>(b + B_FLAGS);
  const itt = getBe32(b + B_ITT);
  const edtl = getBe32(b + B_TTT);
  const cmdsn = getBe32(b + B_CMDSN);
  const immediate = (load<u8>(b) & IMMEDIATE) != 0;
  const write = (flags & F_WRITE) != 0;
  const final = (flags & FINAL) != 0;
  let place = SN_IN_ORDER;
  if (!immediate) {
    place = cmdsnPlace(sess, cmdsn);
    if (place == SN_OUTSIDE) { drop(port, s, PERR_CMDSN, b); return; } // RFC 7143 3.2.2.1: silently ignored
  }
  // Rules of the PDU itself: a break is a Reject, and the CmdSN stays a gap (RFC 7143 6.3) the
  // initiator plugs by retrying or aborting the task.
  const cdbLen = cdbLength(b, ahsBytes);
  const unsol = write ? (final ? len : min<u32>(sess.firstBurst, edtl)) : 0;
  if (cdbLen == 0 || (!write && len > 0) || (len > 0 && sess.immediateData == 0) || (!final && (sess.initialR2T != 0 || !write))
    || len > unsol) {
    reject(port, s, sess, REJECT_PROTOCOL, b, PERR_PROTOCOL);
    return;
  }
  if ((flags & F_READ) != 0 && write) { reject(port, s, sess, REJECT_NOT_SUPPORTED, b, PERR_OPCODE); return; } // bidirectional
  const c = cmdBegin(port, s, itt, decodeLun(b + B_LUN), b + B_CDB, cdbLen, write, (flags & F_READ) != 0, edtl, 0, 0,
    taskAttribute(flags & 7));
  if (c == 0) {
    // Answered already (tag in use, task set full): its unsolicited data is read past as it comes.
    if (write && !final) sess.drainItt = itt;
  } else {
    const t = task(c);
    t.cmdSN = cmdsn;
    if (unsol > 0 && !takeUnsolicited(c, t, rx, at, len, unsol)) t.flags |= TF_BUSY;
    if (!final) t.flags |= TF_UNSOL_OPEN;
  }
  if (immediate) { if (c != 0) dispatchTask(c); return; }
  if (place == SN_AHEAD) {
    cmdsnMarkAhead(sess, cmdsn);
    if (c != 0) { task(c).flags |= TF_HELD; store<u8>(c + CX_STATE, <u8>ST_HELD); sess.held++; }
    return;
  }
  cmdsnTake(sess); // before it runs: its response acknowledges it
  if (c != 0) dispatchTask(c);
  cmdsnRelease(port, s, sess);
}

/** Runs a command whose CmdSN turn has come: BUSY when it found no buffer for its unsolicited data, failed when its Data-Out broke the rules while it waited. */
function dispatchTask(c: usize): void {
  const t = task(c);
  if ((t.flags & TF_DATA_ERROR) != 0) fail(c, 0x0B, 0x4B, 0x00);
  else if ((t.flags & TF_BUSY) != 0) { finishStatus(c, STATUS_BUSY); statInc(STAT_BUSY); }
  cmdDispatch(c);
}

/** Buffer memory for the unsolicited data, with the immediate data copied in. False when none is free. */
function takeUnsolicited(c: usize, t: IscsiTask, rx: usize, at: u32, len: u32, unsol: u32): bool {
  const count = (unsol + BUFFER_GRANULE_BYTES - 1) / BUFFER_GRANULE_BYTES;
  const first = bufAlloc(count);
  t.unsolExpected = unsol;
  t.unsolReceived = len; // received, kept or not: the Data-Out that follows is checked against it
  if (first == 0) return false; // the command ends BUSY; its data is read past
  t.ubufFirst = first;
  t.ubufCount = count;
  if (len > 0) byteRingRead(rx, at, bufAddr(first), len);
  return true;
}

// ---- Data-Out (RFC 7143 11.7) ---------------------------------------------------------------------------

/** A Data-Out PDU; `digestOk` false when its data digest failed. */
export function dataOutPdu(port: u32, s: u32, sess: IscsiSession, b: usize, rx: usize, at: u32, len: u32, digestOk: bool): void {
  const itt = getBe32(b + B_ITT);
  const ttt = getBe32(b + B_TTT);
  const final = (load<u8>(b + B_FLAGS) & FINAL) != 0;
  const i = tagFind(port, s, itt);
  if (i == 0) {
    // Data for a task that is gone (aborted, answered at arrival): read past, counted (RFC 7143 4.2.3.3).
    if (itt == sess.drainItt) { if (final) sess.drainItt = NO_TAG; return; }
    if (!digestOk) { reject(port, s, sess, REJECT_DATA_DIGEST, b, PERR_DATA_DIGEST); return; }
    drop(port, s, PERR_NO_TASK, b);
    return;
  }
  const c = ctxAt(i - 1);
  const t = task(c);
  const dataSN = getBe32(b + B_DATASN);
  const offset = getBe32(b + B_OFFSET);
  if (ttt == NO_TAG) {
    if ((t.flags & TF_UNSOL_OPEN) == 0) { dataError(c, t, 0x0C, 0x0C); return; } // unexpected unsolicited data
    if (final) t.flags &= ~TF_UNSOL_OPEN;
    if (dataSN != t.outDataSN || offset != t.unsolReceived || offset + len > t.unsolExpected) { dataError(c, t, 0x4B, offset != t.unsolReceived ? 0x05 : 0x00); return; }
    t.outDataSN++;
    t.unsolReceived += len;
    if (!digestOk) { digestError(port, s, sess, c, t, b); return; }
    if (final && t.unsolReceived != t.unsolExpected) { dataError(c, t, 0x0C, 0x0D); return; } // incorrect amount of data
    deliver(c, t, rx, at, len, offset); // last: it may complete the command, and its context with it
    return;
  }
  if ((t.flags & TF_R2T_OPEN) == 0 || ttt != t.ttt) { reject(port, s, sess, REJECT_INVALID_FIELD, b, PERR_FIELD); return; }
  if (final) t.flags &= ~TF_R2T_OPEN;
  if (dataSN != t.outDataSN || offset != t.burstNext || offset + len > t.burstEnd) { dataError(c, t, 0x4B, offset != t.burstNext ? 0x05 : 0x00); return; }
  t.outDataSN++;
  t.burstNext += len;
  if (!digestOk) { digestError(port, s, sess, c, t, b); return; }
  if (final && t.burstNext != t.burstEnd) { dataError(c, t, 0x0C, 0x0D); return; }
  deliver(c, t, rx, at, len, offset);
}

/** Puts Data-Out bytes where the command takes them: its open window, or the unsolicited buffer before it has one. */
function deliver(c: usize, t: IscsiTask, rx: usize, at: u32, len: u32, offset: u32): void {
  if (windowOpenNow(c)) {
    const winEnd = load<u32>(c + CX_WIN_START) + load<u32>(c + CX_WIN_LEN);
    if (offset >= winEnd) return; // beyond what the command takes: read past
    windowData(c, rx, at, min<u32>(len, winEnd - offset), offset);
    return;
  }
  if (t.ubufFirst != 0) byteRingRead(rx, at, bufAddr(t.ubufFirst) + offset, len);
}

/** A Data-Out broke the rules: the task ends with CHECK CONDITION, ABORTED COMMAND (once its Data-Out has all come). */
function dataError(c: usize, t: IscsiTask, asc: u32, ascq: u32): void {
  if ((t.flags & TF_DATA_ERROR) != 0) return;
  t.flags |= TF_DATA_ERROR;
  if (<u32>load<u8>(c + CX_STATE) == ST_HELD) return; // failed when its turn comes (cmdDispatch sees the flag)
  fail(c, 0x0B, asc, ascq);
  ctxStep(c);
}

function digestError(port: u32, s: u32, sess: IscsiSession, c: usize, t: IscsiTask, b: usize): void {
  statInc(STAT_ISCSI_DIGEST_ERRORS);
  reject(port, s, sess, REJECT_DATA_DIGEST, b, PERR_DATA_DIGEST);
  dataError(c, t, 0x47, 0x05); // PROTOCOL SERVICE CRC ERROR (RFC 7143 11.4.7.2)
}

/** A PDU dropped as the RFC says (no answer), counted and traced. */
export function drop(port: u32, s: u32, perr: u32, b: usize): void {
  statInc(STAT_ISCSI_DROPPED);
  trace(TRACE_PDU_ERROR, (port << 16) | s, perr, <u32>load<u8>(b) & 0x3F, getBe32(b + B_ITT));
}

// ---- The transport seam's iSCSI side ------------------------------------------------------------------

// @ts-ignore: decorator
@inline function sessionOf(c: usize): IscsiSession { return session(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION)); }

function putLun(b: usize, lun: u32): void {
  if (lun < 256) store<u8>(b + B_LUN + 1, <u8>lun);
  else { store<u8>(b + B_LUN, <u8>(0x40 | (lun >> 8))); store<u8>(b + B_LUN + 1, <u8>lun); }
}

/**
 * Data-In PDUs of at most the initiator's MaxRecvDataSegmentLength, F at the end of every
 * MaxBurstLength sequence; with `final`, the last one carries the status GOOD (phase collapse).
 */
export function iscsiData(c: usize, src: usize, n: u32, total: u32, final: bool): u32 {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sess = session(port, s);
  const t = task(c);
  const cursor = load<u32>(c + CX_CURSOR);
  let sent: u32 = 0;
  while (sent < n) {
    const chunk = min<u32>(min<u32>(n - sent, sess.sendLimit), sess.maxBurst - t.seqBytes);
    const offset = cursor + sent;
    const last = offset + chunk == total;
    const endSeq = last || t.seqBytes + chunk == sess.maxBurst;
    const collapse = last && final;
    let flags: u32 = endSeq ? FINAL : 0;
    const b = bhsBegin(OP_DATA_IN, 0);
    if (collapse) {
      const r = residualAt(c, total);
      flags |= S_BIT | ((r & RESID_OVERFLOW) != 0 ? O_BIT : (r & RESID_UNDERFLOW) != 0 ? U_BIT : 0);
      putBe32(b + B_LENGTH, <u32>r);
    }
    store<u8>(b + B_FLAGS, <u8>flags);
    putLun(b, <u32>load<u16>(c + CX_LUN));
    putBe32(b + B_ITT, load<u32>(c + CX_TAG));
    putBe32(b + B_TTT, NO_TAG);
    putBe32(b + B_DATASN, t.dataSN);
    putBe32(b + B_OFFSET, offset);
    if (!pduSend(port, s, sess, b, src + sent, chunk, collapse)) break;
    t.dataSN++;
    t.seqBytes = endSeq ? 0 : t.seqBytes + chunk;
    if (collapse) t.flags |= TF_STATUS_SENT;
    sent += chunk;
  }
  return sent;
}

/**
 * Opens a data-out window. The first one is the unsolicited data's, when there is some: no R2T,
 * the buffer that holds it becomes the window's. Every other one is one R2T of at most MaxBurstLength.
 */
export function iscsiWindow(c: usize, offset: u32, length: u32): u32 {
  const t = task(c);
  if (offset == 0 && t.ubufFirst != 0 && load<u16>(c + CX_BUF_FIRST) == 0) {
    const win = min<u32>(length, t.unsolExpected);
    store<u16>(c + CX_BUF_FIRST, <u16>t.ubufFirst);
    store<u16>(c + CX_BUF_COUNT, <u16>t.ubufCount);
    t.ubufFirst = 0;
    t.ubufCount = 0;
    let have = min<u32>(t.unsolReceived, win);
    store<u32>(c + CX_WIN_START, 0);
    store<u32>(c + CX_WIN_RECEIVED, have);
    if ((t.flags & TF_UNSOL_OPEN) == 0 && have < win) {
      if (have == 0) { ctxBufferRelease(c); return r2t(c, t, offset, length); } // the initiator sent none after all
      store<u32>(c + CX_WIN_LEN, have); // it ended short: the rest is asked for with an R2T
      return WIN_ARRIVED;
    }
    store<u32>(c + CX_WIN_LEN, win);
    return have == win ? WIN_ARRIVED : WIN_ASKED;
  }
  // Unsolicited data still on its way comes first (DataSequenceInOrder): ask for more after it.
  if ((t.flags & TF_UNSOL_OPEN) != 0) return WIN_RETRY;
  return r2t(c, t, offset, length);
}

function r2t(c: usize, t: IscsiTask, offset: u32, length: u32): u32 {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sess = session(port, s);
  const win = min<u32>(length, sess.maxBurst);
  if (!ctxBuffer(c, win, false)) return WIN_RETRY;
  const ttt = newTtt(sess);
  const b = bhsBegin(OP_R2T, FINAL);
  putLun(b, <u32>load<u16>(c + CX_LUN));
  putBe32(b + B_ITT, load<u32>(c + CX_TAG));
  putBe32(b + B_TTT, ttt);
  putBe32(b + B_DATASN, t.dataSN); // R2TSN
  putBe32(b + B_OFFSET, offset);
  putBe32(b + B_LENGTH, win);
  if (!pduSend(port, s, sess, b, 0, 0, false)) { ctxBufferRelease(c); return WIN_RETRY; }
  t.dataSN++;
  t.ttt = ttt;
  t.burstNext = offset;
  t.burstEnd = offset + win;
  t.outDataSN = 0;
  t.flags |= TF_R2T_OPEN;
  store<u32>(c + CX_WIN_START, offset);
  store<u32>(c + CX_WIN_LEN, win);
  store<u32>(c + CX_WIN_RECEIVED, 0);
  return WIN_ASKED;
}

/** The SCSI Response: status, sense (with its 2-byte length), residual, ExpDataSN. */
export function iscsiRespond(c: usize): bool {
  const t = task(c);
  if ((t.flags & TF_STATUS_SENT) != 0) return true;
  if ((t.flags & (TF_UNSOL_OPEN | TF_R2T_OPEN)) != 0) {
    // The initiator still owes Data-Out with the F bit: the status waits for it, within a bound.
    if (t.deadlineNs == 0) t.deadlineNs = gNow + DATA_OUT_TIMEOUT_NS;
    if (gNow < t.deadlineNs) { wakeAt(t.deadlineNs); return false; }
  }
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sense = scratch() + SENSE_AT;
  const senseLen = responseSense(c, sense + 2);
  putBe16(sense, senseLen);
  return respond(port, s, load<u32>(c + CX_TAG), <u32>load<u8>(c + CX_STATUS), residual(c), t.dataSN, sense, senseLen);
}

/** A status for a command that got no context. */
export function iscsiDirect(port: u32, s: u32, tag: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const sense = scratch() + SENSE_AT;
  const senseLen = directSense(sense + 2, status, key, asc, ascq);
  putBe16(sense, senseLen);
  return respond(port, s, tag, status, expected > 0 ? RESID_UNDERFLOW | <u64>expected : 0, 0, sense, senseLen);
}

function respond(port: u32, s: u32, itt: u32, status: u32, r: u64, expDataSN: u32, sense: usize, senseLen: u32): bool {
  const b = bhsBegin(OP_SCSI_RESPONSE, FINAL | ((r & RESID_OVERFLOW) != 0 ? O_BIT : (r & RESID_UNDERFLOW) != 0 ? U_BIT : 0));
  store<u8>(b + 3, <u8>status);
  putBe32(b + B_ITT, itt);
  putBe32(b + B_DATASN, expDataSN);
  putBe32(b + B_LENGTH, <u32>r);
  return pduSend(port, s, session(port, s), b, sense, senseLen > 0 ? senseLen + 2 : 0, true);
}

/** The command ends (answered or aborted): buffer memory it still holds for unsolicited data goes back. */
export function iscsiRetire(c: usize): void {
  const t = task(c);
  if (t.ubufFirst != 0) { bufFree(t.ubufFirst, t.ubufCount); t.ubufFirst = 0; }
  if ((t.flags & TF_HELD) != 0) { sessionOf(c).held--; t.flags &= ~TF_HELD; }
}
