// A tape device's commands (docs/tape.md): the LUN's entry point, what every tape device answers
// alike (INQUIRY, REQUEST SENSE, RESERVE/RELEASE, PREVENT ALLOW MEDIUM REMOVAL), and the state
// machine of a command that needs the mechanism (ST_TAPE):
//
//   CLAIM  take the device (and, for a MOVE MEDIUM, the drives it touches): one user at a time
//   WAIT   the request is at the binding; its completion decides the status (ssc.ts, smc.ts); what
//          a READ got goes out as generated data-in does (sequencer: sendBufferThen), then the status
//          prepared (GOOD, or CHECK CONDITION with FILEMARK/EOM/ILI and the INFORMATION residue)
//
// Reservations (SPC-2 RESERVE/RELEASE) belong to an I_T nexus: port, session and the session's
// generation, so one dies with its connection and never outlives the host that took it. Persistent
// reservations (PERSISTENT RESERVE IN/OUT) are the volumes' (scsi/pr.ts), with the device as unit
// PR_TAPE_UNIT + device: a backup server registers and reserves a drive, and another initiator's
// commands meet RESERVATION CONFLICT (docs/tape.md, Reservations).
import {
  CX_PORT, CX_SESSION, CX_ARG, CX_FIRST_SLOT, CX_LAST_SLOT, CX_WAIT_SLOT, CX_AHEAD, CX_LBA, CX_BLOCKS, CX_FLAGS,
  CX_STATE, CX_SENSE_BITS, CXF_TAPE, ST_TAPE, ST_RESPOND, ST_DISPATCH, CX_FLUSH_SEQ,
  CX_OPCODE, SENSE_DEFERRED, ctxIndex, ctxCheck, ctxInfo,
} from "../ctx";
import {
  SES_GENERATION, SES_STATE, SESS_OPEN, CONFIG_ADDR, CFG_VENDOR, CFG_SERIAL, CFG_DEVICE_ID, TDK_CHANGER, TST_NO_MEDIUM,
  TST_NOT_LOADED, TST_OFFLINE, TST_PROTECTED, TST_EOM, TST_WRITE_ERROR, TST_EOD, TST_BOT, TST_READ_ERROR, TST_IO_ERROR,
  TOP_LOAD,
} from "../abi";
import { good, fail, finishStatus, dataInBuffer, sendBuffer } from "../sequencer";
import { sessionDesc } from "../channel";
import { gIndex } from "../iop";
import { getBe16, putBe16, putBe32, putHex } from "../util";
import { senseFixed } from "../ctx";
import { cdb, invalidField, requestSense } from "../scsi/dispatch";
import { reportLuns } from "../scsi/luns";
import { reservationConflict, persistentReserveIn, persistentReserveOut, persistentlyReserved, PR_TAPE_UNIT } from "../scsi/pr";
import { uaTake } from "../scsi/ua";
import {
  tapeKind, tapeClaim, tapeSubmit, tapeResult, tapeFinish, tapeForget, tapeDetach, tapeOrphaned, tapeDeferredTake,
  tapeUaPost, tapeUaTake, tapeEvents, tapeNaa, tapeState, TDS_RES_PORT, TDS_RES_SESSION, TDS_RES_GEN, TDS_PREVENT,
  TDS_BLOCK_SIZE, TDS_EVENTS_SEEN, UA_RESET, UA_IMPORT_EXPORT, DETACH_READY,
} from "./device";
import { driveCommand, driveDone } from "./ssc";
import { changerCommand, changerDone } from "./smc";

// Context fields of a tape command (the volume fields a tape command never uses).
export const TX_DEV: u32 = CX_ARG; // u32: device + 1
export const TX_OP: u32 = CX_FIRST_SLOT; // u32: TOP_*
export const TX_COUNT: u32 = CX_LAST_SLOT; // i32
export const TX_ADDR: u32 = CX_WAIT_SLOT; // u32: the data buffer
export const TX_ARG: u32 = CX_AHEAD; // u32
export const TX_ARG2: u32 = CX_LBA; // u32
export const TX_MORE: u32 = CX_LBA + 4; // u32: a drive + 1 a MOVE MEDIUM also claims (source)
export const TX_MORE2: u32 = CX_FLUSH_SEQ; // u32: another (destination)
export const TX_PHASE: u32 = CX_BLOCKS; // u32: P_* | P_IMMED
const P_CLAIM: u32 = 0;
const P_WAIT: u32 = 1;
const P_SETTLE: u32 = 3; // waiting for an operation nobody holds (IMMED) to end, then the command runs
const P_IMMED: u32 = 0x100; // status once the request is at the binding; the operation goes on (tapeDetach)

export const OP_RESERVE6: u32 = 0x16;
export const OP_RELEASE6: u32 = 0x17;
export const OP_PREVENT_ALLOW: u32 = 0x1E;
const OP_PR_IN: u32 = 0x5E;
const OP_PR_OUT: u32 = 0x5F;
const OP_INQUIRY: u32 = 0x12;
const OP_REQUEST_SENSE: u32 = 0x03;
const OP_REPORT_LUNS: u32 = 0xA0;
const TYPE_TAPE: u32 = 0x01;
const TYPE_CHANGER: u32 = 0x08;
export const STATUS_RESERVATION_CONFLICT: u32 = 0x18;

/** A command to tape device `dev` (dispatchScsi found its LUN). */
export function tapeCommand(c: usize, dev: u32, op: u32): void {
  if (op == OP_INQUIRY) { tapeInquiry(c, dev); return; }
  if (op == OP_REPORT_LUNS) { reportLuns(c); return; }
  const port = <u32>load<u8>(c + CX_PORT);
  const session = <u32>load<u8>(c + CX_SESSION);
  const gen = nexusGen(c);
  if (tapeKind(dev) == TDK_CHANGER) importExportSeen(dev);
  if (op == OP_REQUEST_SENSE) { tapeRequestSense(c, dev, port, session, gen); return; }
  // An operation left running by IMMED (or by an aborted command) ends first: the drive does one thing at a time.
  if (tapeOrphaned(dev)) { settle(c, dev); return; }
  // A unit attention for this nexus (SAM-5 5.14), then a deferred error of its IMMED operation (SPC-4 4.5.5).
  const ua = tapeUaTake(dev, port, session, gen, false);
  if (ua != 0) { fail(c, 0x06, ua >> 8, ua & 0xFF); return; }
  const unit = PR_TAPE_UNIT + dev;
  const pua = uaTake(c, unit); // a persistent reservation preempted or released (2Ah/03h-05h), queued in the session
  if (pua != 0) { fail(c, 0x06, pua >> 8, pua & 0xFF); return; }
  const deferred = tapeDeferredTake(dev, port, session, gen);
  if (deferred != 0) { deferredError(c, deferred & 0xFFFF); return; }
  if (conflict(c, dev, op)) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return; }
  if (op == OP_PR_IN) { persistentReserveIn(c, unit); return; }
  if (op == OP_PR_OUT) { persistentReserveOut(c, unit); return; }
  if (op == OP_RESERVE6 || op == OP_RELEASE6) {
    // SPC-4 5.13.3: RESERVE and RELEASE conflict while a persistent reservation is held.
    if (persistentlyReserved(unit)) finishStatus(c, STATUS_RESERVATION_CONFLICT); else reserveRelease(c, dev, op == OP_RESERVE6);
    return;
  }
  // PREVENT ALLOW MEDIUM REMOVAL with PREVENT 0 is admitted under every type (SPC-4 table 62).
  const allow = op == OP_PREVENT_ALLOW && (load<u8>(cdb(c) + 4) & 3) == 0;
  if (!allow && reservationConflict(c, unit, op, <u32>load<u8>(cdb(c) + 1) & 0x1F)) return;
  if (op == OP_PREVENT_ALLOW) { preventAllow(c, dev); return; }
  if (tapeKind(dev) == TDK_CHANGER) changerCommand(c, dev, op);
  else driveCommand(c, dev, op);
}

/** REQUEST SENSE: a pending unit attention is its data (and is cleared, SPC-4 6.39); else the session's last sense. */
function tapeRequestSense(c: usize, dev: u32, port: u32, session: u32, gen: u32): void {
  const p = cdb(c);
  const ua = tapeUaTake(dev, port, session, gen, true);
  if (ua == 0 || (load<u8>(p + 1) & 1) != 0) { requestSense(c); return; }
  const d = dataInBuffer(c, 18);
  if (d == 0) return;
  tapeUaTake(dev, port, session, gen, false);
  senseFixed(d, 0x06, ua >> 8, ua & 0xFF, 0, false, 0);
  sendBuffer(c, min<u32>(18, <u32>load<u8>(p + 4)));
}

/** The operator opened an import/export element since the changer last looked: every nexus hears of it (SMC-3 28h/01h). */
function importExportSeen(dev: u32): void {
  const s = tapeState(dev);
  const ev = tapeEvents(dev);
  const seen = load<u32>(s + TDS_EVENTS_SEEN);
  if (ev == seen || atomic.cmpxchg<u32>(s + TDS_EVENTS_SEEN, seen, ev) != seen) return;
  tapeUaPost(dev, UA_IMPORT_EXPORT, 0xFFFFFFFF, 0xFFFFFFFF);
}

/** The sense of a detached request's failure: as the command would have had, with response code 71h (deferred). */
function deferredError(c: usize, status: u32): void {
  if (status == TST_NO_MEDIUM) ctxCheck(c, 0x02, 0x3A, 0x00);
  else if (status == TST_NOT_LOADED) ctxCheck(c, 0x02, 0x04, 0x02);
  else if (status == TST_OFFLINE) ctxCheck(c, 0x02, 0x04, 0x12);
  else if (status == TST_PROTECTED) ctxCheck(c, 0x07, 0x27, 0x00);
  else if (status == TST_EOM) ctxCheck(c, 0x0D, 0x00, 0x02);
  else if (status == TST_WRITE_ERROR) ctxCheck(c, 0x03, 0x0C, 0x00);
  else if (status == TST_EOD) ctxCheck(c, 0x08, 0x00, 0x05);
  else if (status == TST_BOT) ctxCheck(c, 0x00, 0x00, 0x04);
  else if (status == TST_READ_ERROR) ctxCheck(c, 0x03, 0x11, 0x00);
  else if (status == TST_IO_ERROR) ctxCheck(c, 0x04, 0x44, 0x00);
  else ctxCheck(c, 0x03, 0x11, 0x00);
  store<u8>(c + CX_SENSE_BITS, <u8>(SENSE_DEFERRED | (status == TST_EOM || status == TST_BOT ? 0x40 : 0)));
  store<u8>(c + CX_STATE, <u8>ST_RESPOND);
}

/**
 * A LOGICAL UNIT RESET (or a target reset) of a tape device, after its tasks were aborted: the
 * RESERVE reservation is released (SPC-2 5.5.1), PREVENT MEDIUM REMOVAL ends (SPC-4 6.13), the
 * mode parameters return to their defaults (variable blocks), and every other nexus gets a unit
 * attention 29h/03h (SAM-5 6.3.3). An operation under way on the mechanism (a rewind) goes on: the
 * aborted holder left it ORPHAN, and the next command waits for it.
 */
export function tapeReset(dev: u32, port: u32, session: u32): void {
  const s = tapeState(dev);
  store<u16>(s + TDS_RES_PORT, 0);
  store<u32>(s + TDS_PREVENT, 0);
  store<u32>(s + TDS_BLOCK_SIZE, 0);
  tapeUaPost(dev, UA_RESET, port, session);
}

// ---- Reservations ----------------------------------------------------------------------------------

/** The nexus holding the device's reservation is still there? (Otherwise the reservation is gone.) */
export function reservationLive(dev: u32): bool {
  const s = tapeState(dev);
  const port = <u32>load<u16>(s + TDS_RES_PORT);
  if (port == 0) return false;
  const d = sessionDesc(port - 1, load<u16>(s + TDS_RES_SESSION));
  if (atomic.load<u32>(d + SES_STATE) == SESS_OPEN && atomic.load<u32>(d + SES_GENERATION) == load<u32>(s + TDS_RES_GEN)) return true;
  store<u16>(s + TDS_RES_PORT, 0);
  return false;
}

function holder(c: usize, dev: u32): bool {
  const s = tapeState(dev);
  return <u32>load<u16>(s + TDS_RES_PORT) == <u32>load<u8>(c + CX_PORT) + 1
    && <u32>load<u16>(s + TDS_RES_SESSION) == <u32>load<u8>(c + CX_SESSION);
}

/** SPC-2 5.5.1: while another nexus holds the reservation, only these pass. */
function conflict(c: usize, dev: u32, op: u32): bool {
  if (!reservationLive(dev) || holder(c, dev)) return false;
  if (op == OP_RELEASE6) return false; // a RELEASE from another nexus is GOOD and does nothing
  if (op == OP_PREVENT_ALLOW && (load<u8>(cdb(c) + 4) & 3) == 0) return false;
  return true;
}

/** The nexus the command came through (port, session, generation). */
export function nexusGen(c: usize): u32 {
  return atomic.load<u32>(sessionDesc(load<u8>(c + CX_PORT), load<u8>(c + CX_SESSION)) + SES_GENERATION);
}

function reserveRelease(c: usize, dev: u32, reserve: bool): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0x01) != 0) { invalidField(c, 1, 0); return; } // extents: not supported (SPC-2 obsolete)
  const s = tapeState(dev);
  if (!reserve) {
    if (reservationLive(dev) && holder(c, dev)) store<u16>(s + TDS_RES_PORT, 0);
    good(c);
    return;
  }
  store<u16>(s + TDS_RES_PORT, <u16>(load<u8>(c + CX_PORT) + 1));
  store<u16>(s + TDS_RES_SESSION, load<u8>(c + CX_SESSION));
  store<u32>(s + TDS_RES_GEN, nexusGen(c));
  good(c);
}

function preventAllow(c: usize, dev: u32): void {
  const prevent = <u32>load<u8>(cdb(c) + 4) & 3;
  if (prevent > 1) { invalidField(c, 4, 1); return; } // the changer's "prevent" of SMC bit 1 is not kept apart
  store<u32>(tapeState(dev) + TDS_PREVENT, prevent);
  good(c);
}

// ---- The mechanism: claim, request, completion ---------------------------------------------------------

/** The claim token of this command: its IOP and context. */
export function tapeToken(c: usize): u32 { return ((gIndex + 1) << 24) | (ctxIndex(c) + 1); }

/** Starts a request on `dev` for the command: claims, submits, and waits in ST_TAPE. */
export function tapeBegin(c: usize, dev: u32, op: u32, count: i32, addr: usize, arg: u32, arg2: u32): void {
  tapeBeginImmed(c, dev, op, count, addr, arg, arg2, false);
}

/**
 * As tapeBegin; with `immed` the status (GOOD) goes once the request is at the binding and the
 * operation continues (SSC-3 IMMED): later commands to the device wait for it, and its failure is
 * reported to this nexus's next command as a deferred error.
 */
export function tapeBeginImmed(c: usize, dev: u32, op: u32, count: i32, addr: usize, arg: u32, arg2: u32, immed: bool): void {
  store<u32>(c + TX_DEV, dev + 1);
  store<u32>(c + TX_OP, op);
  store<i32>(c + TX_COUNT, count);
  store<u32>(c + TX_ADDR, <u32>addr);
  store<u32>(c + TX_ARG, arg);
  store<u32>(c + TX_ARG2, arg2);
  store<u32>(c + TX_PHASE, P_CLAIM | (immed ? P_IMMED : 0));
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_TAPE);
  store<u8>(c + CX_STATE, <u8>ST_TAPE);
  tapeStep(c);
}

/** Waits (ST_TAPE, P_SETTLE) until the device's orphaned operation has ended, then runs the command. */
function settle(c: usize, dev: u32): void {
  store<u32>(c + TX_DEV, dev + 1);
  store<u32>(c + TX_MORE, 0);
  store<u32>(c + TX_MORE2, 0);
  store<u32>(c + TX_PHASE, P_SETTLE);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_TAPE);
  store<u8>(c + CX_STATE, <u8>ST_TAPE);
  tapeStep(c);
}

/** The sequencer's step of an ST_TAPE command. */
export function tapeStep(c: usize): void {
  const phase = load<u32>(c + TX_PHASE) & 0xFF;
  const dev = load<u32>(c + TX_DEV) - 1;
  const token = tapeToken(c);
  if (phase == P_SETTLE) {
    if (!tapeClaim(dev, token)) return; // reaps the orphan once its completion is there
    tapeFinish(dev, token, false);
    store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_TAPE);
    store<u8>(c + CX_STATE, <u8>ST_DISPATCH);
    tapeCommand(c, dev, <u32>load<u8>(c + CX_OPCODE));
    return;
  }
  if (phase == P_CLAIM) {
    if (!tapeClaim(dev, token) || !claimMore(c, token)) return;
    const op = load<u32>(c + TX_OP);
    if (!tapeSubmit(dev, op, load<i32>(c + TX_COUNT), load<u32>(c + TX_ADDR), load<u32>(c + TX_ARG), load<u32>(c + TX_ARG2))) return;
    if ((load<u32>(c + TX_PHASE) & P_IMMED) != 0) {
      // IMMED: the status goes now. Only drives detach (no MOVE MEDIUM claims other devices), and only requests without a buffer.
      const ready = op == TOP_LOAD && load<u32>(c + TX_ARG2) != 0 ? DETACH_READY : 0;
      tapeDetach(dev, token, op | ready, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION), nexusGen(c));
      store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_TAPE);
      good(c);
      return;
    }
    store<u32>(c + TX_PHASE, P_WAIT);
  }
  const e = tapeResult(dev);
  if (e == 0) return;
  if (tapeKind(dev) == TDK_CHANGER) changerDone(c, dev, e); else driveDone(c, dev, e);
  tapeFinish(dev, token, true);
  releaseMore(c, token);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_TAPE);
}

function claimMore(c: usize, token: u32): bool {
  const a = load<u32>(c + TX_MORE);
  const b = load<u32>(c + TX_MORE2);
  if (a != 0 && !tapeClaim(a - 1, token)) return false;
  return b == 0 || tapeClaim(b - 1, token);
}

function releaseMore(c: usize, token: u32): void {
  const a = load<u32>(c + TX_MORE);
  const b = load<u32>(c + TX_MORE2);
  if (a != 0) tapeFinish(a - 1, token, false);
  if (b != 0) tapeFinish(b - 1, token, false);
}

/** The command ends without a status (abort, session close): its claims go; a request in flight is reaped later. */
export function tapeAbort(c: usize): void {
  if ((load<u32>(c + CX_FLAGS) & CXF_TAPE) == 0) return;
  const token = tapeToken(c);
  tapeForget(load<u32>(c + TX_DEV) - 1, token);
  const a = load<u32>(c + TX_MORE);
  const b = load<u32>(c + TX_MORE2);
  if (a != 0) tapeForget(a - 1, token);
  if (b != 0) tapeForget(b - 1, token);
}

// ---- Ending: the sense a READ's data goes out with ---------------------------------------------------------

/** CHECK CONDITION with the tape flags (FILEMARK 80h, EOM 40h, ILI 20h) and a signed INFORMATION field. */
export function tapeSense(c: usize, key: u32, asc: u32, ascq: u32, bits: u32, info: i32): void {
  ctxCheck(c, key, asc, ascq);
  store<u8>(c + CX_SENSE_BITS, <u8>bits);
  ctxInfo(c, <u32>info);
}

// ---- INQUIRY (SPC-4, SSC-3 6.1, SMC-3) ------------------------------------------------------------------

function tapeInquiry(c: usize, dev: u32): void {
  const p = cdb(c);
  const evpd = (load<u8>(p + 1) & 1) != 0;
  const page = <u32>load<u8>(p + 2);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; }
  if (!evpd && page != 0) { invalidField(c, 2, -1); return; }
  const type = tapeKind(dev) == TDK_CHANGER ? TYPE_CHANGER : TYPE_TAPE;
  const d = dataInBuffer(c, 256);
  if (d == 0) return;
  let n: u32 = 0;
  store<u8>(d, <u8>type);
  if (!evpd) n = standard(d, type);
  else if (page == 0x00) { store<u8>(d + 1, 0); store<u8>(d + 3, 3); store<u8>(d + 5, 0x80); store<u8>(d + 6, 0x83); n = 7; }
  else if (page == 0x80) { store<u8>(d + 1, 0x80); n = serial(d + 4, dev); store<u8>(d + 3, <u8>n); n += 4; }
  else if (page == 0x83) n = identification(d, dev, <u32>load<u8>(c + CX_PORT));
  else { invalidField(c, 2, -1); return; }
  sendBuffer(c, min<u32>(n, getBe16(p + 3)));
}

function standard(d: usize, type: u32): u32 {
  store<u8>(d + 1, 0x80); // RMB: removable medium
  store<u8>(d + 2, 0x06); // SPC-4
  store<u8>(d + 3, 0x02); // response data format 2
  store<u8>(d + 4, 91);
  store<u8>(d + 6, type == TYPE_CHANGER ? 0x08 : 0x00); // MCHNGR is for a drive with its own changer: not ours
  memory.copy(d + 8, CONFIG_ADDR + CFG_VENDOR, 8);
  ascii(d + 16, type == TYPE_CHANGER ? "SANBOX LIBRARY  " : "SANBOX LTO-5    ");
  ascii(d + 32, "0100");
  putBe16(d + 58, 0x00A0); // SAM-5
  putBe16(d + 60, 0x0460); // SPC-4
  putBe16(d + 62, type == TYPE_CHANGER ? 0x04E0 : 0x0500); // SMC-3 / SSC-3
  return 96;
}

/** The array serial (trailing spaces dropped), "-T" and the device in hex. */
function serial(dst: usize, dev: u32): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < 20; i++) {
    const ch = load<u8>(CONFIG_ADDR + CFG_SERIAL + i);
    if (ch == 0 || ch == 0x20) break;
    store<u8>(dst + n++, ch);
  }
  store<u8>(dst + n++, 0x2D);
  store<u8>(dst + n++, 0x54);
  putHex(dst + n, dev, 2);
  return n + 2;
}

function identification(d: usize, dev: u32, port: u32): u32 {
  store<u8>(d + 1, 0x83);
  let p = d + 4;
  p = designator(p, 0x01, 0x03, 16); // logical unit, NAA: the device's own
  tapeNaa(dev, p);
  p += 16;
  const text = p + 4;
  memory.copy(text, CONFIG_ADDR + CFG_VENDOR, 8);
  const n = 8 + serial(text + 8, dev);
  p = designator(p, 0x02, 0x01, n) + n; // logical unit, T10 vendor ID
  p = designator(p, 0x01, 0x94, 4); // target port: relative port identifier
  putBe32(p, port + 1);
  p += 4;
  p = designator(p, 0x01, 0xA3, 16); // target device: the array, the bridge the library is reached through
  memory.copy(p, CONFIG_ADDR + CFG_DEVICE_ID, 16);
  p += 16;
  const length = <u32>(p - d);
  putBe16(d + 2, length - 4);
  return length;
}

function designator(p: usize, codeSet: u32, typeByte: u32, length: u32): usize {
  store<u8>(p, <u8>codeSet);
  store<u8>(p + 1, <u8>typeByte);
  store<u8>(p + 2, 0);
  store<u8>(p + 3, <u8>length);
  return p + 4;
}

/** Stores a static ASCII string's characters as bytes. */
export function ascii(dst: usize, s: string): void {
  for (let i = 0; i < s.length; i++) store<u8>(dst + <usize>i, <u8>s.charCodeAt(i));
}

