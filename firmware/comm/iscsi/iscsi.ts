// The iSCSI target (RFC 7143) of a channel IOP's iSCSI ports: PDUs parsed in place in the
// session's rx ring, answered through its tx ring. One connection per session (MaxConnections=1),
// ErrorRecoveryLevel 0: a PDU whose header cannot be trusted (header digest error) ends the
// connection, as the RFC says, since without markers the next PDU cannot be found; every other
// bad PDU gets the Reject or the Login Response status the RFC names, or a counted drop, and the
// session goes on. docs/iscsi.md describes what is negotiated and how it maps to the sequencer.
import {
  SES_RX, SES_TX, STAT_PDUS_RX, STAT_ISCSI_DIGEST_ERRORS, TRACE_PDU_ERROR, PERR_HEADER_DIGEST, PERR_OVERSIZE,
  PERR_PROTOCOL, PERR_OPCODE, PERR_DATA_DIGEST, PERR_TIMEOUT,
} from "../../abi";
import { ringUsed, ringFree, ringRelease, byteRingRead, byteRingSpan } from "../../ring";
import { gNow, wakeAt } from "../../iop";
import { sessionDesc, sessionHangUp, abortSession } from "../../channel";
import { statInc } from "../../stats";
import { trace } from "../../trace";
import { getBe32 } from "../../util";
import { crc32c, ringCrc32c } from "../crc";
import {
  IscsiSession, session, sessionAt, PH_LOGIN, PH_FULL, PH_DEAD, SESSION_DISCOVERY, ISCSI_SESSION_BYTES, iscsiTaskFits,
} from "./state";
import {
  rxBhs, getBe24, BHS_BYTES, DIGEST_BYTES, B_AHS_LENGTH, B_DATA_LENGTH, B_ITT, OP_NOP_OUT, OP_SCSI_COMMAND, OP_TASK_MGMT,
  OP_LOGIN, OP_TEXT, OP_DATA_OUT, OP_LOGOUT, OP_SNACK, REJECT_PROTOCOL, REJECT_NOT_SUPPORTED, REJECT_DATA_DIGEST, NO_TAG,
} from "./pdu";
import { loginReset, loginPdu, loginFail, LS_INVALID_DURING_LOGIN, LOGIN_TIMEOUT_NS } from "./login";
import { scsiCommandPdu, dataOutPdu, cmdsnGapExpired } from "./command";
import { reject, nopOut, pingCheck, textRequest, logoutRequest, taskManagement } from "./control";
import { recvLimit, pingNs, LOGIN_RECV_LIMIT } from "./port";

export { ISCSI_SESSION_BYTES };

/** The largest AHS taken (an Extended CDB of up to 32 bytes needs 20): beyond it the header is not trusted. */
const AHS_MAX: u32 = 256;

export function iscsiOpen(port: u32, s: u32): void {
  assert(iscsiTaskFits());
  memory.fill(sessionAt(port, s), 0, ISCSI_SESSION_BYTES);
  const sess = session(port, s);
  loginReset(sess);
  sess.lastRxNs = gNow;
  sess.tttNext = 1;
  sess.drainItt = NO_TAG;
  sess.respTtt = NO_TAG;
}

export function iscsiClose(port: u32, s: u32): void { session(port, s).phase = PH_DEAD; }

/** Handles every complete PDU waiting on the session, and its timers. Returns PDUs handled. */
export function iscsiReceive(port: u32, s: u32): i32 {
  const sess = session(port, s);
  if (sess.phase == PH_DEAD) return 0;
  if (timersExpired(port, s, sess)) { end(port, s, sess); return 1; }
  const d = sessionDesc(port, s);
  const rx: usize = load<u32>(d + SES_RX);
  const tx: usize = load<u32>(d + SES_TX);
  const reserve = recvLimit(port) + 256; // room for any direct answer (a NOP-In echo is the largest)
  let work: i32 = 0;
  while (sess.phase != PH_DEAD) {
    const avail = ringUsed(rx);
    if (sess.skip > 0) { // the rest of a PDU refused for its size
      const n = min<u32>(sess.skip, avail);
      if (n == 0) break;
      ringRelease(rx, n);
      sess.skip -= n;
      work++;
      continue;
    }
    if (avail < BHS_BYTES || ringFree(tx) < reserve) break;
    const b = rxBhs();
    byteRingRead(rx, 0, b, BHS_BYTES);
    const ahs = <u32>load<u8>(b + B_AHS_LENGTH) * 4;
    const dataLen = getBe24(b + B_DATA_LENGTH);
    const hdrLen = BHS_BYTES + ahs + (sess.headerDigest != 0 ? DIGEST_BYTES : 0);
    if (ahs > AHS_MAX) { headerBroken(port, s, sess, b, PERR_PROTOCOL); break; }
    if (avail < hdrLen) break;
    if (ahs > 0) byteRingRead(rx, BHS_BYTES, b + BHS_BYTES, ahs);
    if (sess.headerDigest != 0) {
      byteRingRead(rx, BHS_BYTES + ahs, b + BHS_BYTES + ahs, DIGEST_BYTES);
      if (crc32c(b, BHS_BYTES + ahs, 0) != load<u32>(b + BHS_BYTES + ahs)) {
        statInc(STAT_ISCSI_DIGEST_ERRORS);
        headerBroken(port, s, sess, b, PERR_HEADER_DIGEST);
        break;
      }
    }
    const dd = sess.dataDigest != 0 && dataLen > 0 ? DIGEST_BYTES : 0;
    const total = hdrLen + ((dataLen + 3) & ~3) + dd;
    if (dataLen > (sess.phase == PH_FULL ? recvLimit(port) : LOGIN_RECV_LIMIT)) {
      // Bigger than we declared we take: refused, and its bytes read past as they come.
      reject(port, s, sess, REJECT_PROTOCOL, b, PERR_OVERSIZE);
      const n = min<u32>(avail, total);
      ringRelease(rx, n);
      sess.skip = total - n;
      work++;
      continue;
    }
    if (avail < total) break;
    let digestOk = true;
    if (dd != 0 && !dataDigestMatches(rx, hdrLen, dataLen)) { digestOk = false; statInc(STAT_ISCSI_DIGEST_ERRORS); }
    sess.lastRxNs = gNow;
    statInc(STAT_PDUS_RX);
    handle(port, s, sess, b, ahs, rx, hdrLen, dataLen, digestOk);
    ringRelease(rx, total);
    work++;
  }
  return work;
}

/** The data segment and its padding against the digest after them. */
function dataDigestMatches(rx: usize, at: u32, dataLen: u32): bool {
  const padded = (dataLen + 3) & ~3;
  const crc = ringCrc32c(rx, at, padded, 0);
  const w = rxBhs() + BHS_BYTES + AHS_MAX + DIGEST_BYTES;
  byteRingRead(rx, at + padded, w, DIGEST_BYTES);
  return crc == load<u32>(w);
}

function handle(port: u32, s: u32, sess: IscsiSession, b: usize, ahs: u32, rx: usize, at: u32, len: u32, digestOk: bool): void {
  const op = <u32>load<u8>(b) & 0x3F;
  if (sess.phase == PH_LOGIN) {
    // Digests are not in force during login; anything but a Login PDU ends it (RFC 7143 6.3).
    if (op == OP_LOGIN) loginPdu(port, s, sess, b, rx, at, len);
    else loginFail(port, s, sess, LS_INVALID_DURING_LOGIN);
    return;
  }
  const discovery = sess.sessionType == SESSION_DISCOVERY;
  if (!digestOk && op != OP_DATA_OUT) {
    // The PDU is discarded; a SCSI command's CmdSN stays a gap the initiator plugs (RFC 7143 7.8).
    reject(port, s, sess, REJECT_DATA_DIGEST, b, PERR_DATA_DIGEST);
    return;
  }
  switch (op) {
    case OP_NOP_OUT: nopOut(port, s, sess, b, rx, at, len); return;
    case OP_TEXT: textRequest(port, s, sess, b, rx, at, len); return;
    case OP_LOGOUT: logoutRequest(port, s, sess, b); return;
    case OP_SCSI_COMMAND:
      if (discovery) break;
      scsiCommandPdu(port, s, sess, b, ahs, rx, at, len);
      return;
    case OP_DATA_OUT:
      if (discovery) break;
      dataOutPdu(port, s, sess, b, rx, at, len, digestOk);
      return;
    case OP_TASK_MGMT:
      if (discovery) break;
      taskManagement(port, s, sess, b);
      return;
    case OP_LOGIN: break; // a second login on a logged-in connection
    case OP_SNACK: break; // ErrorRecoveryLevel 0 has no SNACK
    default:
      reject(port, s, sess, REJECT_NOT_SUPPORTED, b, PERR_OPCODE);
      return;
  }
  reject(port, s, sess, REJECT_PROTOCOL, b, PERR_PROTOCOL); // not allowed here (discovery session, phase)
}

/** A header that cannot be trusted: the connection ends (ERL 0), counted and traced. */
function headerBroken(port: u32, s: u32, sess: IscsiSession, b: usize, perr: u32): void {
  trace(TRACE_PDU_ERROR, (port << 16) | s, perr, <u32>load<u8>(b) & 0x3F, getBe32(b + B_ITT));
  end(port, s, sess);
}

/** The login takes too long, a ping goes unanswered, a CmdSN gap does not close: true to end the connection. */
function timersExpired(port: u32, s: u32, sess: IscsiSession): bool {
  if (sess.phase == PH_LOGIN) {
    if (gNow - sess.loginSinceNs >= LOGIN_TIMEOUT_NS) {
      trace(TRACE_PDU_ERROR, (port << 16) | s, PERR_TIMEOUT, 0x03, sess.loginItt);
      return true;
    }
    wakeAt(sess.loginSinceNs + LOGIN_TIMEOUT_NS);
    return false;
  }
  if (pingCheck(port, s, sess, pingNs(port))) return true;
  if (cmdsnGapExpired(sess)) {
    trace(TRACE_PDU_ERROR, (port << 16) | s, PERR_TIMEOUT, 0x01, sess.expCmdSN);
    return true;
  }
  return false;
}

/** Ends the session at once: its tasks are aborted and the binding closes the connection. */
function end(port: u32, s: u32, sess: IscsiSession): void {
  abortSession(port, s);
  sess.phase = PH_DEAD;
  sessionHangUp(port, s);
}
