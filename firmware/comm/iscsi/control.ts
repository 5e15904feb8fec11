// The iSCSI PDUs that are not SCSI commands (RFC 7143 11): Reject, NOP-Out/NOP-In both ways,
// Text (SendTargets, MaxRecvDataSegmentLength), Logout, Async Message, and Task Management.
import { logicalUnitReset } from "../../scsi/reset";
import {
  STAT_ISCSI_REJECTS, STAT_TASK_MGMT, TRACE_PDU_ERROR, TRACE_TASK_MGMT, PORT_ISCSI, PERR_PROTOCOL, PERR_TIMEOUT,
  PERR_FIELD, PERR_CMDSN, MAX_LUNS, SES_TX,
} from "../../abi";
import { byteRingRead, ringHead } from "../../ring";
import { gNow, wakeAt } from "../../iop";
import { portCount } from "../../config";
import { CX_PORT, CX_SESSION, CX_LUN, ctxAt, bufAlloc, bufFree, bufAddr, BUFFER_GRANULE_BYTES } from "../../ctx";
import { portKind, portSessions, tagFind, sessionHangUp, abortSession, sessionDesc } from "../../channel";
import { abortCommand, abortWhere, logicalUnitAt, ANY, LU_COMMAND_DEVICE, LU_NONE, LU_TAPE_BASE, ABORT_SILENT } from "../../sequencer";
import { tapeDevices } from "../../tape/device";
import { tapeReset } from "../../tape/command";
import { xcopyUnitReset } from "../../xcopy/command";
import { volumeAtLun } from "../../volume";
import { logicalUnitVisible } from "../access";
import { statInc, statAdd } from "../../stats";
import { trace } from "../../trace";
import { getBe16, getBe32, putBe16, putBe32 } from "../../util";
import { decodeLun, NO_LUN } from "../lun";
import {
  IscsiSession, session, sessionAt, PH_FULL, PH_DEAD, SESSION_DISCOVERY, SESSION_NORMAL, ISS_REQ, ISS_RESP, ISS_TMF, ISS_BAD, ISS_PAIR,
  TEXT_BYTES, snLess,
} from "./state";
import {
  bhsBegin, pduSend, OP_NOP_IN, OP_TEXT_RESPONSE, OP_LOGOUT_RESPONSE, OP_REJECT, OP_ASYNC, OP_TASK_MGMT_RESPONSE,
  B_FLAGS, B_LUN, B_ITT, B_TTT, B_CMDSN, B_OFFSET, FINAL, IMMEDIATE, BHS_BYTES, rxBhs, NO_TAG, newTtt,
  REJECT_PROTOCOL, REJECT_INVALID_FIELD, REJECT_OUT_OF_RESOURCES,
} from "./pdu";
import {
  textNext, TEXT_PAIR, TEXT_MALFORMED, bytesEq, parseNumber, textInit, textLength, textData, textKey, textBytes,
  textLit, textEnd, textPairBytes, textDecimal,
} from "./text";
import { isLoginKey } from "./login";
import { targetName, targetNameLen, isTargetName, hostText, hostWildcard, listenPort, localAddress, localAddressLen, strLen } from "./port";
import { cmdsnPlace, cmdsnMarkAhead, cmdsnAdvance, drop, SN_IN_ORDER, SN_AHEAD, SN_OUTSIDE } from "./command";

const CONTINUE: u32 = 0x40;

// ---- Reject (RFC 7143 11.17) -----------------------------------------------------------------------------

/** Answers a bad PDU with a Reject carrying its header, counts and traces it. */
export function reject(port: u32, s: u32, sess: IscsiSession, reason: u32, bad: usize, perr: u32): void {
  statInc(STAT_ISCSI_REJECTS);
  trace(TRACE_PDU_ERROR, (port << 16) | s, perr, <u32>load<u8>(bad) & 0x3F, getBe32(bad + B_ITT));
  const copy = sessionAt(port, s) + ISS_BAD; // the bad header, out of the way of the BHS being built
  memory.copy(copy, bad, BHS_BYTES);
  const b = bhsBegin(OP_REJECT, FINAL);
  store<u8>(b + 2, <u8>reason);
  putBe32(b + B_ITT, NO_TAG);
  pduSend(port, s, sess, b, copy, BHS_BYTES, true);
}

/**
 * Takes a non-immediate request's CmdSN: false when it is outside the window (dropped, counted).
 * A request ahead of a gap is taken and marked; SCSI commands have their own path (command.ts).
 */
function takeCmdSN(port: u32, s: u32, sess: IscsiSession, b: usize): bool {
  if ((load<u8>(b) & IMMEDIATE) != 0) return true;
  const cmdsn = getBe32(b + B_CMDSN);
  const place = cmdsnPlace(sess, cmdsn);
  if (place == SN_OUTSIDE) { drop(port, s, PERR_CMDSN, b); return false; }
  if (place == SN_AHEAD) cmdsnMarkAhead(sess, cmdsn);
  else cmdsnAdvance(port, s, sess);
  return true;
}

// ---- NOP (RFC 7143 11.18, 11.19) -------------------------------------------------------------------------

/** A NOP-Out: a ping to answer (data echoed, StatSN advances), our ping's answer, or an ExpStatSN update. */
export function nopOut(port: u32, s: u32, sess: IscsiSession, b: usize, rx: usize, at: u32, len: u32): void {
  const itt = getBe32(b + B_ITT);
  const ttt = getBe32(b + B_TTT);
  if (itt == NO_TAG) {
    if (ttt != NO_TAG && ttt == sess.pingTtt) sess.pingTtt = 0;
    return; // nothing to answer (RFC 7143 11.18.3)
  }
  if (ttt != NO_TAG) { reject(port, s, sess, REJECT_INVALID_FIELD, b, PERR_FIELD); return; } // a ping carries no TTT of ours
  if (!takeCmdSN(port, s, sess, b)) return;
  const n = min<u32>(len, sess.sendLimit);
  let first: u32 = 0;
  const granules = (n + BUFFER_GRANULE_BYTES - 1) / BUFFER_GRANULE_BYTES;
  if (n > 0) {
    first = bufAlloc(granules);
    if (first == 0) { reject(port, s, sess, REJECT_OUT_OF_RESOURCES, b, PERR_PROTOCOL); return; }
    byteRingRead(rx, at, bufAddr(first), n);
  }
  const r = bhsBegin(OP_NOP_IN, FINAL);
  memory.copy(r + B_LUN, b + B_LUN, 8);
  putBe32(r + B_ITT, itt);
  putBe32(r + B_TTT, NO_TAG);
  pduSend(port, s, sess, r, n > 0 ? bufAddr(first) : 0, n, true);
  if (first != 0) bufFree(first, granules);
}

/**
 * Pings an idle initiator (NOP-In with a TTT of ours, ITT FFFFFFFFh: StatSN does not advance);
 * one unanswered for as long again ends the connection. A ping that finds no room in the tx ring
 * ends it too when the initiator takes nothing from the ring for as long again: it reads nothing of
 * what it asked for, and its commands would hold their cache slots for ever. Returns true when it ended.
 */
export function pingCheck(port: u32, s: u32, sess: IscsiSession, interval: f64): bool {
  if (interval <= 0) return false;
  if (sess.pingTtt != 0) {
    if (gNow - sess.pingSentNs >= interval && gNow - sess.lastRxNs >= interval) {
      trace(TRACE_PDU_ERROR, (port << 16) | s, PERR_TIMEOUT, 0, sess.pingTtt);
      return true;
    }
    lazyWake(max<f64>(sess.pingSentNs, sess.lastRxNs) + interval, interval);
    return false;
  }
  if (gNow - sess.lastRxNs < interval) { sess.pingBlockedNs = 0; lazyWake(sess.lastRxNs + interval, interval); return false; }
  const ttt = newTtt(sess);
  const b = bhsBegin(OP_NOP_IN, FINAL);
  putBe32(b + B_ITT, NO_TAG);
  putBe32(b + B_TTT, ttt);
  if (!pduSend(port, s, sess, b, 0, 0, false)) {
    // A slow reader behind a long Data-In stream still takes bytes: only a ring it takes none of counts.
    const head = ringHead(<usize>load<u32>(sessionDesc(port, s) + SES_TX));
    if (sess.pingBlockedNs == 0 || head != sess.pingBlockedHead) { sess.pingBlockedNs = gNow; sess.pingBlockedHead = head; }
    if (gNow - sess.pingBlockedNs >= interval) {
      trace(TRACE_PDU_ERROR, (port << 16) | s, PERR_TIMEOUT, 0, 0);
      return true;
    }
    lazyWake(sess.pingBlockedNs + interval, interval);
    return false;
  }
  sess.pingBlockedNs = 0;
  sess.pingTtt = ttt;
  sess.pingSentNs = gNow;
  lazyWake(gNow + interval, interval);
  return false;
}

/**
 * Asks for a poll at `at`, rounded up to an eighth of the interval: a busy session moves its ping
 * time with every PDU, and a wake-up time that moved every poll would make the harness re-arm its
 * timer for every command. A ping goes at most an eighth late.
 */
function lazyWake(at: f64, interval: f64): void {
  const quantum = interval / 8;
  wakeAt(Math.ceil(at / quantum) * quantum);
}

// ---- Text (RFC 7143 11.10, 11.11; SendTargets: Appendix C) -----------------------------------------------

export function textRequest(port: u32, s: u32, sess: IscsiSession, b: usize, rx: usize, at: u32, len: u32): void {
  const flags = <u32>load<u8>(b + B_FLAGS);
  const ttt = getBe32(b + B_TTT);
  if (!takeCmdSN(port, s, sess, b)) return;
  const itt = getBe32(b + B_ITT);
  if (ttt != NO_TAG) {
    // The initiator asks for the rest of our answer.
    if (ttt != sess.respTtt || itt != sess.respItt) { reject(port, s, sess, REJECT_INVALID_FIELD, b, PERR_FIELD); return; }
    textSendPart(port, s, sess, b);
    return;
  }
  const req = sessionAt(port, s) + ISS_REQ;
  if (sess.reqLen + len > TEXT_BYTES) { sess.reqLen = 0; reject(port, s, sess, REJECT_PROTOCOL, b, PERR_PROTOCOL); return; }
  byteRingRead(rx, at, req + sess.reqLen, len);
  sess.reqLen += len;
  const resp = sessionAt(port, s) + ISS_RESP;
  textInit(resp, TEXT_BYTES - 8);
  sess.respItt = itt;
  sess.respOff = 0;
  if ((flags & CONTINUE) != 0) { // more request text to come: an empty answer asks for it
    sess.respLen = 0;
    sess.respTtt = newTtt(sess);
    textSendPart(port, s, sess, b);
    return;
  }
  const n = sess.reqLen;
  sess.reqLen = 0;
  if (!answerText(port, s, sess, req, n, resp)) { reject(port, s, sess, REJECT_PROTOCOL, b, PERR_PROTOCOL); return; }
  sess.respLen = textLength(resp);
  sess.respTtt = NO_TAG;
  textSendPart(port, s, sess, b);
}

/** Sends the next piece of the prepared answer, at most the initiator's MaxRecvDataSegmentLength; C and a TTT when more remains. */
function textSendPart(port: u32, s: u32, sess: IscsiSession, req: usize): void {
  const resp = sessionAt(port, s) + ISS_RESP;
  const left = sess.respLen - sess.respOff;
  const n = min<u32>(left, sess.sendLimit);
  const more = n < left || sess.respLen == 0 && sess.respTtt != NO_TAG;
  if (more && sess.respTtt == NO_TAG) sess.respTtt = newTtt(sess);
  const b = bhsBegin(OP_TEXT_RESPONSE, more ? CONTINUE : FINAL);
  memory.copy(b + B_LUN, req + B_LUN, 8);
  putBe32(b + B_ITT, sess.respItt);
  putBe32(b + B_TTT, more ? sess.respTtt : NO_TAG);
  if (!pduSend(port, s, sess, b, textData(resp) + sess.respOff, n, true)) return;
  sess.respOff += n;
  if (!more) { sess.respTtt = NO_TAG; sess.respLen = 0; sess.respOff = 0; }
}

/** Answers the keys of a Text Request; false for malformed text. */
function answerText(port: u32, s: u32, sess: IscsiSession, text: usize, n: u32, resp: usize): bool {
  const pair = sessionAt(port, s) + ISS_PAIR;
  let at = text;
  const end = text + n;
  while (true) {
    const r = textNext(at, end, pair);
    if (r == TEXT_MALFORMED) return false;
    if (r != TEXT_PAIR) break;
    const k = <usize>load<u32>(pair);
    const kn = load<u32>(pair + 4);
    const v = <usize>load<u32>(pair + 8);
    const vn = load<u32>(pair + 12);
    if (bytesEq(k, kn, "SendTargets")) sendTargets(port, s, sess, v, vn, resp);
    else if (bytesEq(k, kn, "MaxRecvDataSegmentLength")) {
      const x = parseNumber(v, vn);
      if (x < 512 || x > 0xFFFFFF) return false;
      sess.sendLimit = <u32>x; // declarative: in force at once, nothing to answer
    } else if (isLoginKey(k, kn)) textPairBytes(resp, k, kn, "Irrelevant"); // negotiated at login only
    else textPairBytes(resp, k, kn, "NotUnderstood");
    at = <usize>load<u32>(pair + 16);
  }
  return true;
}

/**
 * SendTargets: All (discovery sessions) lists every iSCSI port of the array with its portal; a
 * target name lists that one; an empty value the session's own target. "All" in a normal session
 * is refused (RFC 7143 12.3 allows it in discovery sessions only).
 */
function sendTargets(port: u32, s: u32, sess: IscsiSession, v: usize, vn: u32, resp: usize): void {
  const all = bytesEq(v, vn, "All");
  if (all && sess.sessionType != SESSION_DISCOVERY) { textKey(resp, "SendTargets"); textLit(resp, "Reject"); textEnd(resp); return; }
  for (let p: u32 = 0; p < portCount(); p++) {
    if (portKind(p) != PORT_ISCSI) continue;
    const nameLen = targetNameLen(p);
    if (!all) {
      if (vn == 0) { if (p != port) continue; }
      else if (!isTargetName(p, v, vn)) continue;
    }
    textKey(resp, "TargetName");
    textBytes(resp, targetName(p), nameLen);
    textEnd(resp);
    portal(port, s, p, resp);
  }
}

/** TargetAddress=<host>:<tcp port>,<portal group tag>; a wildcard host is the address the initiator reached us at. */
function portal(port: u32, s: u32, p: u32, resp: usize): void {
  const tcp = listenPort(p);
  if (tcp == 0) return;
  const wild = hostWildcard(p);
  const h = wild ? localAddress(port, s) : hostText(p);
  const hn = wild ? localAddressLen(port, s) : strLen(h, 64);
  if (hn == 0) return;
  let v6 = false;
  for (let i: u32 = 0; i < hn; i++) if (load<u8>(h + i) == 0x3A) v6 = true;
  textKey(resp, "TargetAddress");
  if (v6) textLit(resp, "[");
  textBytes(resp, h, hn);
  if (v6) textLit(resp, "]");
  textLit(resp, ":");
  textDecimal(resp, tcp);
  textLit(resp, ",1");
  textEnd(resp);
}

// ---- Logout (RFC 7143 11.14, 11.15) -----------------------------------------------------------------------

export function logoutRequest(port: u32, s: u32, sess: IscsiSession, b: usize): void {
  if (!takeCmdSN(port, s, sess, b)) return;
  const reason = <u32>load<u8>(b + B_FLAGS) & 0x7F;
  let response: u32 = 0; // closed successfully
  if (reason == 2) response = 2; // remove the connection for recovery: ErrorRecoveryLevel 0 has none
  else if (reason == 1 && getBe16(b + 20) != sess.cid) response = 1; // CID not found
  else if (reason > 2) { reject(port, s, sess, REJECT_INVALID_FIELD, b, PERR_FIELD); return; }
  const r = bhsBegin(OP_LOGOUT_RESPONSE, FINAL);
  store<u8>(r + 2, <u8>response);
  putBe32(r + B_ITT, getBe32(b + B_ITT));
  putBe16(r + 40, response == 0 ? sess.time2Wait : 0);
  putBe16(r + 42, 0);
  if (response != 0) { pduSend(port, s, sess, r, 0, 0, true); return; }
  // The session ends: its tasks are aborted (no status), the response goes, then the connection.
  abortSession(port, s);
  pduSend(port, s, sess, r, 0, 0, true);
  sess.phase = PH_DEAD;
  sessionHangUp(port, s);
}

// ---- Async Message (RFC 7143 11.9) ----------------------------------------------------------------------

/** AsyncEvent 3: the target drops all the session's connections (with Time2Wait and Time2Retain). */
export function asyncDropAll(port: u32, s: u32, sess: IscsiSession): void {
  const b = bhsBegin(OP_ASYNC, FINAL);
  putBe32(b + B_ITT, NO_TAG);
  store<u8>(b + 36, 3);
  putBe16(b + 40, sess.time2Wait);
  putBe16(b + 42, 0);
  pduSend(port, s, sess, b, 0, 0, true);
}

// ---- Task management (RFC 7143 11.5, 11.6; 4.2.3) ---------------------------------------------------------

const TMF_ABORT_TASK: u32 = 1;
const TMF_ABORT_TASK_SET: u32 = 2;
const TMF_CLEAR_ACA: u32 = 3;
const TMF_CLEAR_TASK_SET: u32 = 4;
const TMF_LUN_RESET: u32 = 5;
const TMF_TARGET_WARM_RESET: u32 = 6;
const TMF_TARGET_COLD_RESET: u32 = 7;
const TMF_TASK_REASSIGN: u32 = 8;

const TMR_COMPLETE: u32 = 0;
const TMR_NO_TASK: u32 = 1;
const TMR_NO_LUN: u32 = 2;
const TMR_REASSIGN_UNSUPPORTED: u32 = 4;
const TMR_NOT_SUPPORTED: u32 = 5;
const TMR_REJECTED: u32 = 255;

/**
 * A Task Management Function Request. Functions that act on several tasks wait until every
 * command before them in CmdSN order has arrived (RFC 7143 4.2.3.3): with a gap open, the request
 * is kept (one at a time) and runs when the gap closes. Aborted tasks get no status; the response
 * is sent once they are gone.
 */
export function taskManagement(port: u32, s: u32, sess: IscsiSession, b: usize): void {
  const fn = <u32>load<u8>(b + B_FLAGS) & 0x7F;
  if (!takeCmdSN(port, s, sess, b)) return;
  const many = fn == TMF_ABORT_TASK_SET || fn == TMF_CLEAR_TASK_SET || fn == TMF_LUN_RESET
    || fn == TMF_TARGET_WARM_RESET || fn == TMF_TARGET_COLD_RESET;
  if (many && snLess(sess.expCmdSN, getBe32(b + B_CMDSN))) {
    if (sess.tmfPending != 0) { tmfRespond(port, s, sess, b, TMR_REJECTED, fn, 0); return; }
    memory.copy(sessionAt(port, s) + ISS_TMF, b, BHS_BYTES);
    sess.tmfPending = 1;
    return;
  }
  performTmf(port, s, sess, b, fn);
}

/** The CmdSN gap before a kept task management request has closed: it runs now. */
export function tmfGapClosed(port: u32, s: u32, sess: IscsiSession): void {
  if (sess.tmfPending == 0) return;
  const b = sessionAt(port, s) + ISS_TMF;
  if (snLess(sess.expCmdSN, getBe32(b + B_CMDSN))) return;
  sess.tmfPending = 0;
  performTmf(port, s, sess, b, <u32>load<u8>(b + B_FLAGS) & 0x7F);
}

function performTmf(port: u32, s: u32, sess: IscsiSession, b: usize, fn: u32): void {
  const lun = decodeLun(b + B_LUN);
  const named = lun == NO_LUN ? LU_NONE : logicalUnitAt(port, lun);
  const lu = logicalUnitVisible(named, port, s) ? named : LU_NONE; // LUN security: not there for this initiator
  const luExists = lu != LU_NONE;
  let response = TMR_COMPLETE;
  let aborted: u32 = 0;
  if (fn == TMF_ABORT_TASK) {
    const i = tagFind(port, s, getBe32(b + B_TTT)); // Referenced Task Tag
    if (i != 0) { abortCommand(ctxAt(i - 1)); aborted = 1; }
    else response = abortUnseen(port, s, sess, getBe32(b + 32)); // RefCmdSN
  } else if (fn == TMF_ABORT_TASK_SET) {
    if (!luExists) response = TMR_NO_LUN; else aborted = abortWhere(port, s, lu, ABORT_SILENT);
  } else if (fn == TMF_CLEAR_TASK_SET || fn == TMF_LUN_RESET) {
    // One task set per logical unit for every initiator (control mode page TST=000b): every
    // session's tasks on it go, whichever port they came through.
    if (!luExists) response = TMR_NO_LUN; else aborted = abortWhere(ANY, ANY, lu, ABORT_SILENT);
    // A volume's reset: its SCSI-2 reservation goes, the other nexuses get 29h/03h (scsi/reset.ts).
    if (luExists && fn == TMF_LUN_RESET && lu < LU_COMMAND_DEVICE) logicalUnitReset(lu, port, s);
    // A tape device's reset: its reservation, PREVENT and mode go, the other nexuses get 29h/03h (tape/command.ts).
    if (luExists && fn == TMF_LUN_RESET && lu >= LU_TAPE_BASE) tapeReset(lu - LU_TAPE_BASE, port, s);
    if (luExists && fn == TMF_LUN_RESET) xcopyUnitReset(lu); // its copy manager's copies stop, background ones too
  } else if (fn == TMF_TARGET_WARM_RESET || fn == TMF_TARGET_COLD_RESET) {
    aborted = abortWhere(ANY, ANY, LU_COMMAND_DEVICE, ABORT_SILENT);
    xcopyUnitReset(LU_COMMAND_DEVICE);
    for (let l: u32 = 1; l < MAX_LUNS; l++) { // the units this initiator can see (comm/access.ts)
      const v = volumeAtLun(port, l);
      if (v < 0 || !logicalUnitVisible(<u32>v, port, s)) continue;
      aborted += abortWhere(ANY, ANY, <u32>v, ABORT_SILENT);
      logicalUnitReset(<u32>v, port, s);
      xcopyUnitReset(<u32>v);
    }
    for (let d: u32 = 0; d < tapeDevices(); d++) {
      if (!logicalUnitVisible(LU_TAPE_BASE + d, port, s)) continue;
      aborted += abortWhere(ANY, ANY, LU_TAPE_BASE + d, ABORT_SILENT);
      tapeReset(d, port, s);
    }
  } else if (fn == TMF_CLEAR_ACA) {
    response = TMR_NOT_SUPPORTED; // no ACA: the control byte's NACA bit is not supported
  } else if (fn == TMF_TASK_REASSIGN) {
    response = TMR_REASSIGN_UNSUPPORTED; // ErrorRecoveryLevel 0
  } else {
    response = TMR_REJECTED;
  }
  if (response == TMR_COMPLETE) statInc(STAT_TASK_MGMT);
  tmfRespond(port, s, sess, b, response, fn, aborted);
  if (fn == TMF_TARGET_COLD_RESET) coldReset(port);
}

/**
 * ABORT TASK for a task not found: if its CmdSN is in the window and has not arrived, it is taken
 * as arrived and aborted (the gap it leaves is plugged, RFC 7143 6.9): Function complete. Otherwise
 * it completed already: Task does not exist.
 */
function abortUnseen(port: u32, s: u32, sess: IscsiSession, refCmdSN: u32): u32 {
  const place = cmdsnPlace(sess, refCmdSN);
  if (place == SN_OUTSIDE) return TMR_NO_TASK;
  if (place == SN_IN_ORDER) cmdsnAdvance(port, s, sess);
  else cmdsnMarkAhead(sess, refCmdSN);
  return TMR_COMPLETE;
}

function tmfRespond(port: u32, s: u32, sess: IscsiSession, req: usize, response: u32, fn: u32, aborted: u32): void {
  const r = bhsBegin(OP_TASK_MGMT_RESPONSE, FINAL);
  store<u8>(r + 2, <u8>response);
  putBe32(r + B_ITT, getBe32(req + B_ITT));
  pduSend(port, s, sess, r, 0, 0, true);
  trace(TRACE_TASK_MGMT, (port << 16) | s, fn, response, aborted);
}

/** TARGET COLD RESET: after the response, every connection to the target goes (with an Async Message first). */
function coldReset(port: u32): void {
  const n = portSessions(port);
  for (let i: u32 = 0; i < n; i++) {
    const o = session(port, i);
    if (o.phase != PH_FULL) continue;
    asyncDropAll(port, i, o);
    abortSession(port, i);
    o.phase = PH_DEAD;
    sessionHangUp(port, i);
  }
}
