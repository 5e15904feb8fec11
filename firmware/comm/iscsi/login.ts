// The login phase (RFC 7143 6): SecurityNegotiation (AuthMethod None or CHAP with MD5, one-way or
// mutual) and LoginOperationalNegotiation, ending in full feature phase with a TSIH; or a Login
// Response with the status class and detail the RFC names, after which the connection is closed.
//
// Each Login PDU's keys are answered in one pass: the request text is gathered (C bit), checked
// pair by pair (a malformed pair or a key given twice fails the login: initiator error), the
// offered values are recorded, and the answers are written in a fixed order afterwards, so that
// results that depend on one another (FirstBurstLength <= MaxBurstLength) are consistent.
import { STAT_ISCSI_LOGINS, STAT_ISCSI_LOGIN_FAILURES, TRACE_LOGIN, SES_GENERATION, CPORT_NAME } from "../../abi";
import { byteRingRead } from "../../ring";
import { gNow } from "../../iop";
import { sessionDesc, scratch, setIdentity, identityName, portSessions, abortSession, sessionHangUp } from "../../channel";
import { prngFill, prngNext } from "../../prng";
import { statInc } from "../../stats";
import { trace } from "../../trace";
import { getBe16, getBe32, putBe16, putBe32 } from "../../util";
import {
  IscsiSession, session, sessionAt, PH_LOGIN, PH_FULL, PH_DEAD, STAGE_SECURITY, STAGE_OPERATIONAL, STAGE_FULL,
  SESSION_UNKNOWN, SESSION_DISCOVERY, SESSION_NORMAL, AUTH_NONE, AUTH_CHOSE_NONE, AUTH_CHAP_OFFERED,
  AUTH_CHAP_CHALLENGED, AUTH_DONE, LF_STARTED, LF_NAME, LF_TARGET, LF_PORTAL_TAG_SENT, LF_MRDSL_SENT, LF_CONTINUED,
  ISS_NAME, ISS_REQ, ISS_RESP, ISS_CHALLENGE, TEXT_BYTES, CHALLENGE_BYTES, P_HEADER_DIGEST, P_DATA_DIGEST,
} from "./state";
import {
  bhsBegin, pduSend, OP_LOGIN_RESPONSE, B_FLAGS, B_ITT, B_CMDSN, B_EXP_STATSN, FINAL,
} from "./pdu";
import {
  textNext, TEXT_PAIR, TEXT_MALFORMED, bytesEq, parseNumber, parseBinary, putHexBytes, textInit, textLength, textData,
  textFull, textKey, textBytes, textLit, textEnd, textPair, textPairNumber, textPairBytes, textDecimal, sameBytes,
} from "./text";
import {
  isTargetName, chapRequired, chapUser, chapSecret, mutualUser, mutualSecret, chapLen, recvLimit,
  OUR_MAX_BURST, OUR_FIRST_BURST, strLen,
} from "./port";
import { cfgPort } from "../../config";
import { md5 } from "./md5";

// Login status (RFC 7143 11.13.5): class << 8 | detail.
export const LS_SUCCESS: u32 = 0x0000;
export const LS_INITIATOR_ERROR: u32 = 0x0200;
export const LS_AUTH_FAILED: u32 = 0x0201;
export const LS_NOT_FOUND: u32 = 0x0203;
export const LS_UNSUPPORTED_VERSION: u32 = 0x0205;
export const LS_TOO_MANY_CONNECTIONS: u32 = 0x0206;
export const LS_MISSING_PARAMETER: u32 = 0x0207;
export const LS_SESSION_TYPE: u32 = 0x0209;
export const LS_NO_SESSION: u32 = 0x020A;
export const LS_INVALID_DURING_LOGIN: u32 = 0x020B;
export const LS_TARGET_ERROR: u32 = 0x0300;

// Keys met in one request (IscsiSession.keys): a second offer is an initiator error.
const K_HEADER_DIGEST: u32 = 1 << 0;
const K_DATA_DIGEST: u32 = 1 << 1;
const K_MAX_CONNECTIONS: u32 = 1 << 2;
const K_INITIAL_R2T: u32 = 1 << 3;
const K_IMMEDIATE_DATA: u32 = 1 << 4;
const K_MRDSL: u32 = 1 << 5;
const K_MAX_BURST: u32 = 1 << 6;
const K_FIRST_BURST: u32 = 1 << 7;
const K_TIME2WAIT: u32 = 1 << 8;
const K_TIME2RETAIN: u32 = 1 << 9;
const K_MAX_R2T: u32 = 1 << 10;
const K_PDU_ORDER: u32 = 1 << 11;
const K_SEQ_ORDER: u32 = 1 << 12;
const K_ERL: u32 = 1 << 13;
const K_IF_MARKER: u32 = 1 << 14;
const K_OF_MARKER: u32 = 1 << 15;
const K_INITIATOR_NAME: u32 = 1 << 16;
const K_TARGET_NAME: u32 = 1 << 17;
const K_SESSION_TYPE: u32 = 1 << 18;
const K_ALIAS: u32 = 1 << 19;
const K_AUTH_METHOD: u32 = 1 << 20;
const K_CHAP_A: u32 = 1 << 21;
const K_CHAP_I: u32 = 1 << 22;
const K_CHAP_C: u32 = 1 << 23;
const K_CHAP_N: u32 = 1 << 24;
const K_CHAP_R: u32 = 1 << 25;
const K_PROTOCOL_LEVEL: u32 = 1 << 26;
const K_MARK_INT: u32 = 1 << 27;
const K_CHAP: u32 = K_CHAP_A | K_CHAP_I | K_CHAP_C | K_CHAP_N | K_CHAP_R;

/** A login that does not reach full feature phase within this long is dropped. */
export const LOGIN_TIMEOUT_NS: f64 = 30e9;

// Offered values of the request being answered, in scratch (Offer.* offsets; 0xFFFFFFFF: invalid value).
const OFFER: u32 = 1536; // scratch offset, after the rx BHS area
const O_HEADER_DIGEST: u32 = 0; // result: 0 None, 1 CRC32C, 2 no common value
const O_DATA_DIGEST: u32 = 4;
const O_MAX_CONNECTIONS: u32 = 8;
const O_INITIAL_R2T: u32 = 12; // 0 No, 1 Yes, 2 invalid
const O_IMMEDIATE_DATA: u32 = 16;
const O_MAX_BURST: u32 = 20;
const O_FIRST_BURST: u32 = 24;
const O_TIME2WAIT: u32 = 28;
const O_TIME2RETAIN: u32 = 32;
const O_MAX_R2T: u32 = 36;
const O_PDU_ORDER: u32 = 40;
const O_SEQ_ORDER: u32 = 44;
const O_ERL: u32 = 48;
const O_IF_MARKER: u32 = 52;
const O_OF_MARKER: u32 = 56;
const O_PROTOCOL_LEVEL: u32 = 60;
const O_AUTH: u32 = 64; // bit 0: None offered, bit 1: CHAP offered, bit 2: something else
const O_CHAP_A: u32 = 68; // 1: MD5 offered
const O_CHAP_I: u32 = 72; // the initiator's identifier for mutual CHAP, or 0xFFFFFFFF
const O_CHAP_N: u32 = 76; // address of the CHAP_N value
const O_CHAP_N_LEN: u32 = 80;
const O_CHAP_R_LEN: u32 = 84; // response bytes decoded at CHAP_R_AT (or 0xFFFFFFFF: not a binary value)
const O_CHAP_C_LEN: u32 = 88; // challenge bytes decoded at CHAP_C_AT
const O_UNKNOWN: u32 = 92; // count of NotUnderstood keys (their answers are written as they come)
const O_BYTES: u32 = 96;
const PAIR: u32 = 1632; // textNext's output (5 u32)
const CHAP_R_AT: u32 = 1664; // 16 bytes: the initiator's response
const CHAP_IN: u32 = 2048; // identifier || secret || challenge, hashed by md5 (1 + 128 + 1024 bytes)
const CHAP_C_AT: u32 = CHAP_IN + 1 + 128; // the initiator's challenge, decoded in place behind the secret's room
const MD5_WORK: u32 = 3400; // 80 bytes
const MD5_OUT: u32 = 3488; // 16 bytes
const MD5_MUTUAL: u32 = 3504; // 16 bytes
const INVALID: u32 = 0xFFFFFFFF;

// @ts-ignore: decorator
@inline function offer(o: u32): usize { return scratch() + OFFER + o; }
// @ts-ignore: decorator
@inline function respBuilder(port: u32, s: u32): usize { return sessionAt(port, s) + ISS_RESP; }

/** A new connection: login from the start. */
export function loginReset(sess: IscsiSession): void {
  sess.phase = PH_LOGIN;
  sess.stage = STAGE_SECURITY;
  sess.sessionType = SESSION_UNKNOWN;
  sess.auth = AUTH_NONE;
  sess.login = 0;
  sess.loginSinceNs = gNow;
  sess.sendLimit = 8192;
  sess.pendingLimit = 8192;
  sess.maxBurst = 262144;
  sess.firstBurst = 65536;
  sess.initialR2T = 1;
  sess.immediateData = 1;
  sess.time2Wait = 2;
  sess.time2Retain = 20;
  sess.headerDigest = 0;
  sess.dataDigest = 0;
  sess.pending = 0;
}

/**
 * A Login PDU: BHS at b, `len` data bytes at `at` past the head of rx. Answers it; on success of the
 * final step the session enters full feature phase.
 */
export function loginPdu(port: u32, s: u32, sess: IscsiSession, b: usize, rx: usize, at: u32, len: u32): void {
  const flags = <u32>load<u8>(b + B_FLAGS);
  const transit = (flags & 0x80) != 0;
  const more = (flags & 0x40) != 0;
  const csg = (flags >> 2) & 3;
  const nsg = flags & 3;
  if ((sess.login & LF_STARTED) == 0) {
    const e = firstPdu(port, s, sess, b);
    if (e != LS_SUCCESS) { loginFail(port, s, sess, e); return; }
  }
  if (csg != sess.stage && !(csg == STAGE_OPERATIONAL && sess.stage == STAGE_SECURITY && (sess.login & LF_CONTINUED) == 0
    && sess.auth == AUTH_NONE)) { loginFail(port, s, sess, LS_INITIATOR_ERROR); return; }
  if (csg == STAGE_OPERATIONAL && sess.stage == STAGE_SECURITY) {
    // Security skipped: only when the port asks for no authentication.
    if (chapRequired(port)) { loginFail(port, s, sess, LS_AUTH_FAILED); return; }
    sess.auth = AUTH_CHOSE_NONE;
    sess.stage = STAGE_OPERATIONAL;
  }
  if (transit && (nsg == 2 || nsg <= csg) || csg == 2 || csg == STAGE_FULL) { loginFail(port, s, sess, LS_INITIATOR_ERROR); return; }
  sess.expCmdSN = getBe32(b + B_CMDSN);
  // Gather the text: a request may span PDUs (C bit); each part is answered with an empty response.
  const req = sessionAt(port, s) + ISS_REQ;
  if (sess.reqLen + len > TEXT_BYTES) { loginFail(port, s, sess, LS_INITIATOR_ERROR); return; }
  byteRingRead(rx, at, req + sess.reqLen, len);
  sess.reqLen += len;
  if (more) {
    sess.login |= LF_CONTINUED;
    respond(port, s, sess, b, false, 0, 0);
    return;
  }
  sess.login &= ~LF_CONTINUED;
  const resp = respBuilder(port, s);
  textInit(resp, TEXT_BYTES - 8);
  const e = answerKeys(port, s, sess, req, sess.reqLen, resp);
  sess.reqLen = 0;
  if (e != LS_SUCCESS) { loginFail(port, s, sess, e); return; }
  if (textFull(resp)) { loginFail(port, s, sess, LS_TARGET_ERROR); return; }
  let go = transit && canTransit(port, sess);
  if (go && nsg == STAGE_FULL) {
    const f = finalChecks(port, sess);
    if (f != LS_SUCCESS) { loginFail(port, s, sess, f); return; }
    answerFinal(port, s, sess, resp);
  }
  if (!respond(port, s, sess, b, go, nsg, LS_SUCCESS)) return;
  if (go) {
    if (nsg == STAGE_FULL) enterFullFeature(port, s, sess);
    else sess.stage = nsg;
  }
}

/** The first Login PDU of the connection: version, session identity, a new session or an existing one. */
function firstPdu(port: u32, s: u32, sess: IscsiSession, b: usize): u32 {
  sess.login |= LF_STARTED;
  sess.isid = (<u64>getBe16(b + 8) << 32) | <u64>getBe32(b + 10);
  sess.loginItt = getBe32(b + B_ITT);
  sess.cid = getBe16(b + 20);
  sess.statSN = getBe32(b + B_EXP_STATSN);
  sess.expCmdSN = getBe32(b + B_CMDSN);
  sess.maxCmdSN = sess.expCmdSN;
  if (<u32>load<u8>(b + 3) > 0) return LS_UNSUPPORTED_VERSION; // Version-min above 0: no version in common
  const tsih = getBe16(b + 14);
  if (tsih != 0) return tsihInUse(port, tsih) ? LS_TOO_MANY_CONNECTIONS : LS_NO_SESSION;
  return LS_SUCCESS;
}

function tsihInUse(port: u32, tsih: u32): bool {
  const n = portSessions(port);
  for (let i: u32 = 0; i < n; i++) {
    const o = session(port, i);
    if (o.phase == PH_FULL && o.tsih == tsih) return true;
  }
  return false;
}

function canTransit(port: u32, sess: IscsiSession): bool {
  if (sess.stage != STAGE_SECURITY) return true;
  if (sess.auth == AUTH_DONE || sess.auth == AUTH_CHOSE_NONE) return true;
  return sess.auth == AUTH_NONE && !chapRequired(port);
}

function finalChecks(port: u32, sess: IscsiSession): u32 {
  if ((sess.login & LF_NAME) == 0) return LS_MISSING_PARAMETER;
  if (sess.sessionType == SESSION_UNKNOWN) sess.sessionType = SESSION_NORMAL;
  if (sess.sessionType == SESSION_NORMAL && (sess.login & LF_TARGET) == 0) return LS_MISSING_PARAMETER;
  if (chapRequired(port) && sess.auth != AUTH_DONE) return LS_AUTH_FAILED;
  return LS_SUCCESS;
}

/** What the target declares once, in the response that ends the login (normal sessions: its portal group tag and alias). */
function answerFinal(port: u32, s: u32, sess: IscsiSession, resp: usize): void {
  if ((sess.login & LF_MRDSL_SENT) == 0) { textPairNumber(resp, "MaxRecvDataSegmentLength", recvLimit(port)); sess.login |= LF_MRDSL_SENT; }
  if (sess.sessionType == SESSION_NORMAL && (sess.login & LF_PORTAL_TAG_SENT) == 0) {
    textPairNumber(resp, "TargetPortalGroupTag", 1);
    textKey(resp, "TargetAlias");
    textBytes(resp, cfgPort(port) + CPORT_NAME, strLen(cfgPort(port) + CPORT_NAME, 31));
    textEnd(resp);
    sess.login |= LF_PORTAL_TAG_SENT;
  }
}

function enterFullFeature(port: u32, s: u32, sess: IscsiSession): void {
  const name = sessionAt(port, s) + ISS_NAME;
  // Session reinstatement (RFC 7143 6.3.5): a new session of the same initiator (name and ISID)
  // to this target ends the old one; its tasks are aborted without status.
  if (sess.sessionType == SESSION_NORMAL) {
    const n = portSessions(port);
    for (let i: u32 = 0; i < n; i++) {
      if (i == s) continue;
      const o = session(port, i);
      if (o.phase != PH_FULL || o.sessionType != SESSION_NORMAL || o.isid != sess.isid) continue;
      if (!sameName(identityName(port, i), name, sess.nameLen)) continue;
      abortSession(port, i);
      o.phase = PH_DEAD;
      sessionHangUp(port, i);
    }
  }
  sess.phase = PH_FULL;
  sess.stage = STAGE_FULL;
  sess.headerDigest = (sess.pending & P_HEADER_DIGEST) != 0 ? 1 : 0;
  sess.dataDigest = (sess.pending & P_DATA_DIGEST) != 0 ? 1 : 0;
  sess.sendLimit = sess.pendingLimit;
  sess.lastRxNs = gNow;
  const isid = scratch() + 3520;
  putBe16(isid, <u32>(sess.isid >> 32));
  putBe32(isid + 2, <u32>sess.isid);
  setIdentity(port, s, name, sess.nameLen, isid);
  statInc(STAT_ISCSI_LOGINS);
  trace(TRACE_LOGIN, (port << 16) | s, 0, sess.sessionType | (sess.headerDigest << 8) | (sess.dataDigest << 9), sess.tsih);
}

function sameName(a: usize, b: usize, n: u32): bool {
  for (let i: u32 = 0; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return load<u8>(a + n) == 0;
}

/** Sends a Login Response; `go`: T bit with next stage nsg. False when the tx ring lacks room (the PDU stays unanswered: rare, the receive loop keeps room). */
function respond(port: u32, s: u32, sess: IscsiSession, req: usize, go: bool, nsg: u32, status: u32): bool {
  const b = bhsBegin(OP_LOGIN_RESPONSE, (go ? FINAL : 0) | (sess.stage << 2) | (go ? nsg : 0));
  putBe16(b + 8, <u32>(sess.isid >> 32));
  putBe32(b + 10, <u32>sess.isid);
  if (go && nsg == STAGE_FULL) {
    sess.tsih = newTsih(port, s);
    putBe16(b + 14, sess.tsih);
  }
  memory.copy(b + B_ITT, req + B_ITT, 4);
  store<u8>(b + 36, <u8>(status >> 8));
  store<u8>(b + 37, <u8>status);
  const resp = respBuilder(port, s);
  const n = status == LS_SUCCESS ? textLength(resp) : 0;
  const ok = pduSend(port, s, sess, b, textData(resp), n, true);
  textInit(resp, TEXT_BYTES - 8);
  return ok;
}

/** A TSIH no other live session of the port has: the slot and its open count, never 0. */
function newTsih(port: u32, s: u32): u32 {
  const gen = load<u32>(sessionDesc(port, s) + SES_GENERATION);
  return (((gen & 0x7FF) << 4) | s) + 1;
}

/** Answers the login with a failure status and closes the connection. */
export function loginFail(port: u32, s: u32, sess: IscsiSession, status: u32): void {
  const b = bhsBegin(OP_LOGIN_RESPONSE, sess.stage << 2);
  putBe16(b + 8, <u32>(sess.isid >> 32));
  putBe32(b + 10, <u32>sess.isid);
  putBe32(b + B_ITT, sess.loginItt);
  store<u8>(b + 36, <u8>(status >> 8));
  store<u8>(b + 37, <u8>status);
  pduSend(port, s, sess, b, 0, 0, true);
  sess.phase = PH_DEAD;
  statInc(STAT_ISCSI_LOGIN_FAILURES);
  trace(TRACE_LOGIN, (port << 16) | s, status, sess.sessionType, 0);
  sessionHangUp(port, s);
}

// ---- Keys -------------------------------------------------------------------------------------------

/** Checks and records every pair of the request, then writes the answers. Returns a login status. */
function answerKeys(port: u32, s: u32, sess: IscsiSession, text: usize, n: u32, resp: usize): u32 {
  memory.fill(offer(0), 0xFF, O_BYTES);
  store<u32>(offer(O_AUTH), 0);
  store<u32>(offer(O_CHAP_A), 0);
  store<u32>(offer(O_UNKNOWN), 0);
  sess.keys = 0;
  const pair = scratch() + PAIR;
  let at = text;
  const end = text + n;
  while (true) {
    const r = textNext(at, end, pair);
    if (r == TEXT_MALFORMED) return LS_INITIATOR_ERROR;
    if (r != TEXT_PAIR) break;
    const e = takeKey(port, s, sess, load<u32>(pair), load<u32>(pair + 4), load<u32>(pair + 8), load<u32>(pair + 12), resp);
    if (e != LS_SUCCESS) return e;
    at = <usize>load<u32>(pair + 16);
  }
  if ((sess.keys & K_CHAP) != 0 || (sess.keys & K_AUTH_METHOD) != 0) {
    const e = answerSecurity(port, s, sess, resp);
    if (e != LS_SUCCESS) return e;
  }
  answerOperational(port, sess, resp);
  return LS_SUCCESS;
}

/** Records one key. Unknown keys are answered NotUnderstood at once; the rest wait for answerKeys' end. */
function takeKey(port: u32, s: u32, sess: IscsiSession, k: usize, kn: u32, v: usize, vn: u32, resp: usize): u32 {
  const bit = keyBit(k, kn);
  if (bit == 0) { textPairBytes(resp, k, kn, "NotUnderstood"); return LS_SUCCESS; }
  if ((sess.keys & bit) != 0) return LS_INITIATOR_ERROR; // the same key twice in one request
  sess.keys |= bit;
  if ((bit & K_CHAP) != 0 || bit == K_AUTH_METHOD) {
    if (sess.stage != STAGE_SECURITY) return LS_INITIATOR_ERROR;
    return takeSecurity(sess, bit, v, vn);
  }
  if (bit == K_INITIATOR_NAME) return takeInitiatorName(port, s, sess, v, vn);
  if (bit == K_TARGET_NAME) {
    if (!isTargetName(port, v, vn)) return LS_NOT_FOUND;
    sess.login |= LF_TARGET;
    return LS_SUCCESS;
  }
  if (bit == K_SESSION_TYPE) {
    if (bytesEq(v, vn, "Discovery")) sess.sessionType = SESSION_DISCOVERY;
    else if (bytesEq(v, vn, "Normal")) sess.sessionType = SESSION_NORMAL;
    else return LS_SESSION_TYPE;
    return LS_SUCCESS;
  }
  if (bit == K_ALIAS) return LS_SUCCESS;
  if (bit == K_MRDSL) {
    const x = parseNumber(v, vn);
    if (x < 512 || x > 0xFFFFFF) return LS_INITIATOR_ERROR; // a declaration cannot be refused by value: the login fails
    sess.pendingLimit = <u32>x;
    if ((sess.login & LF_MRDSL_SENT) == 0) { textPairNumber(resp, "MaxRecvDataSegmentLength", recvLimit(port)); sess.login |= LF_MRDSL_SENT; }
    return LS_SUCCESS;
  }
  takeOperational(bit, v, vn);
  return LS_SUCCESS;
}

function takeInitiatorName(port: u32, s: u32, sess: IscsiSession, v: usize, vn: u32): u32 {
  if (vn == 0 || vn > 223) return LS_INITIATOR_ERROR;
  memory.copy(sessionAt(port, s) + ISS_NAME, v, vn);
  store<u8>(sessionAt(port, s) + ISS_NAME + vn, 0);
  sess.nameLen = vn;
  sess.login |= LF_NAME;
  return LS_SUCCESS;
}

/** A key negotiated or declared at login (in a Text Request it is Irrelevant). */
export function isLoginKey(k: usize, n: u32): bool { return keyBit(k, n) != 0; }

function keyBit(k: usize, n: u32): u32 {
  if (bytesEq(k, n, "HeaderDigest")) return K_HEADER_DIGEST;
  if (bytesEq(k, n, "DataDigest")) return K_DATA_DIGEST;
  if (bytesEq(k, n, "MaxConnections")) return K_MAX_CONNECTIONS;
  if (bytesEq(k, n, "InitialR2T")) return K_INITIAL_R2T;
  if (bytesEq(k, n, "ImmediateData")) return K_IMMEDIATE_DATA;
  if (bytesEq(k, n, "MaxRecvDataSegmentLength")) return K_MRDSL;
  if (bytesEq(k, n, "MaxBurstLength")) return K_MAX_BURST;
  if (bytesEq(k, n, "FirstBurstLength")) return K_FIRST_BURST;
  if (bytesEq(k, n, "DefaultTime2Wait")) return K_TIME2WAIT;
  if (bytesEq(k, n, "DefaultTime2Retain")) return K_TIME2RETAIN;
  if (bytesEq(k, n, "MaxOutstandingR2T")) return K_MAX_R2T;
  if (bytesEq(k, n, "DataPDUInOrder")) return K_PDU_ORDER;
  if (bytesEq(k, n, "DataSequenceInOrder")) return K_SEQ_ORDER;
  if (bytesEq(k, n, "ErrorRecoveryLevel")) return K_ERL;
  if (bytesEq(k, n, "IFMarker")) return K_IF_MARKER;
  if (bytesEq(k, n, "OFMarker")) return K_OF_MARKER;
  if (bytesEq(k, n, "IFMarkInt") || bytesEq(k, n, "OFMarkInt")) return K_MARK_INT;
  if (bytesEq(k, n, "iSCSIProtocolLevel")) return K_PROTOCOL_LEVEL;
  if (bytesEq(k, n, "InitiatorName")) return K_INITIATOR_NAME;
  if (bytesEq(k, n, "TargetName")) return K_TARGET_NAME;
  if (bytesEq(k, n, "SessionType")) return K_SESSION_TYPE;
  if (bytesEq(k, n, "InitiatorAlias")) return K_ALIAS;
  if (bytesEq(k, n, "AuthMethod")) return K_AUTH_METHOD;
  if (bytesEq(k, n, "CHAP_A")) return K_CHAP_A;
  if (bytesEq(k, n, "CHAP_I")) return K_CHAP_I;
  if (bytesEq(k, n, "CHAP_C")) return K_CHAP_C;
  if (bytesEq(k, n, "CHAP_N")) return K_CHAP_N;
  if (bytesEq(k, n, "CHAP_R")) return K_CHAP_R;
  return 0;
}

// ---- Operational keys (RFC 7143 13) -------------------------------------------------------------------

function takeOperational(bit: u32, v: usize, vn: u32): void {
  if (bit == K_HEADER_DIGEST) store<u32>(offer(O_HEADER_DIGEST), digestChoice(v, vn));
  else if (bit == K_DATA_DIGEST) store<u32>(offer(O_DATA_DIGEST), digestChoice(v, vn));
  else if (bit == K_INITIAL_R2T) store<u32>(offer(O_INITIAL_R2T), yesNo(v, vn));
  else if (bit == K_IMMEDIATE_DATA) store<u32>(offer(O_IMMEDIATE_DATA), yesNo(v, vn));
  else if (bit == K_PDU_ORDER) store<u32>(offer(O_PDU_ORDER), yesNo(v, vn));
  else if (bit == K_SEQ_ORDER) store<u32>(offer(O_SEQ_ORDER), yesNo(v, vn));
  else if (bit == K_IF_MARKER) store<u32>(offer(O_IF_MARKER), yesNo(v, vn));
  else if (bit == K_OF_MARKER) store<u32>(offer(O_OF_MARKER), yesNo(v, vn));
  else if (bit == K_MAX_CONNECTIONS) store<u32>(offer(O_MAX_CONNECTIONS), ranged(v, vn, 1, 65535));
  else if (bit == K_MAX_BURST) store<u32>(offer(O_MAX_BURST), ranged(v, vn, 512, 0xFFFFFF));
  else if (bit == K_FIRST_BURST) store<u32>(offer(O_FIRST_BURST), ranged(v, vn, 512, 0xFFFFFF));
  else if (bit == K_TIME2WAIT) store<u32>(offer(O_TIME2WAIT), ranged(v, vn, 0, 3600));
  else if (bit == K_TIME2RETAIN) store<u32>(offer(O_TIME2RETAIN), ranged(v, vn, 0, 3600));
  else if (bit == K_MAX_R2T) store<u32>(offer(O_MAX_R2T), ranged(v, vn, 1, 65535));
  else if (bit == K_ERL) store<u32>(offer(O_ERL), ranged(v, vn, 0, 2));
  else if (bit == K_PROTOCOL_LEVEL) store<u32>(offer(O_PROTOCOL_LEVEL), ranged(v, vn, 0, 31));
}

/** The first value of the offered list we support: 1 CRC32C, 0 None; 2 when none is. */
function digestChoice(v: usize, vn: u32): u32 {
  let start: u32 = 0;
  for (let i: u32 = 0; i <= vn; i++) {
    if (i < vn && load<u8>(v + i) != 0x2C) continue;
    if (bytesEq(v + start, i - start, "CRC32C")) return 1;
    if (bytesEq(v + start, i - start, "None")) return 0;
    start = i + 1;
  }
  return 2;
}

function yesNo(v: usize, vn: u32): u32 {
  if (bytesEq(v, vn, "Yes")) return 1;
  if (bytesEq(v, vn, "No")) return 0;
  return 2;
}

function ranged(v: usize, vn: u32, lo: u32, hi: u32): u32 {
  const x = parseNumber(v, vn);
  return x < <i64>lo || x > <i64>hi ? INVALID : <u32>x;
}

/** Answers the operational keys offered, in a fixed order, with the results now in force. */
function answerOperational(port: u32, sess: IscsiSession, resp: usize): void {
  const keys = sess.keys;
  if ((keys & K_HEADER_DIGEST) != 0) answerDigest(resp, "HeaderDigest", load<u32>(offer(O_HEADER_DIGEST)), sess, P_HEADER_DIGEST);
  if ((keys & K_DATA_DIGEST) != 0) answerDigest(resp, "DataDigest", load<u32>(offer(O_DATA_DIGEST)), sess, P_DATA_DIGEST);
  if ((keys & K_MAX_CONNECTIONS) != 0) answerNumber(resp, "MaxConnections", load<u32>(offer(O_MAX_CONNECTIONS)), 1, true);
  // InitialR2T is OR: we would do without it, so the initiator's wish stands.
  if ((keys & K_INITIAL_R2T) != 0) sess.initialR2T = answerBool(resp, "InitialR2T", load<u32>(offer(O_INITIAL_R2T)), 0, true, sess.initialR2T);
  if ((keys & K_IMMEDIATE_DATA) != 0) sess.immediateData = answerBool(resp, "ImmediateData", load<u32>(offer(O_IMMEDIATE_DATA)), 1, false, sess.immediateData);
  if ((keys & K_MAX_BURST) != 0) {
    const x = load<u32>(offer(O_MAX_BURST));
    // Both are results of "Minimum": ours may be lower. Whole 512-byte sectors (x >= 512), so that
    // every R2T window and every full unsolicited burst ends on a sector the cache can take.
    if (x != INVALID) sess.maxBurst = min<u32>(x, OUR_MAX_BURST) & ~<u32>511;
    answerNumber(resp, "MaxBurstLength", x, sess.maxBurst, false);
  }
  if ((keys & K_FIRST_BURST) != 0) {
    const x = load<u32>(offer(O_FIRST_BURST));
    if (x != INVALID) sess.firstBurst = min<u32>(min<u32>(x, OUR_FIRST_BURST), sess.maxBurst) & ~<u32>511;
    answerNumber(resp, "FirstBurstLength", x, sess.firstBurst, false);
  } else if (sess.firstBurst > sess.maxBurst) {
    sess.firstBurst = sess.maxBurst; // the default FirstBurstLength (64 KiB) above a smaller MaxBurstLength
  }
  if ((keys & K_TIME2WAIT) != 0) {
    const x = load<u32>(offer(O_TIME2WAIT));
    if (x != INVALID) sess.time2Wait = max<u32>(x, 2);
    answerNumber(resp, "DefaultTime2Wait", x, sess.time2Wait, false);
  }
  if ((keys & K_TIME2RETAIN) != 0) {
    // ErrorRecoveryLevel 0 keeps no task for a reconnecting initiator: 0 is our value, min wins.
    const x = load<u32>(offer(O_TIME2RETAIN));
    if (x != INVALID) sess.time2Retain = 0;
    answerNumber(resp, "DefaultTime2Retain", x, 0, false);
  }
  if ((keys & K_MAX_R2T) != 0) answerNumber(resp, "MaxOutstandingR2T", load<u32>(offer(O_MAX_R2T)), 1, true);
  if ((keys & K_PDU_ORDER) != 0) answerBool(resp, "DataPDUInOrder", load<u32>(offer(O_PDU_ORDER)), 1, true, 1);
  if ((keys & K_SEQ_ORDER) != 0) answerBool(resp, "DataSequenceInOrder", load<u32>(offer(O_SEQ_ORDER)), 1, true, 1);
  if ((keys & K_ERL) != 0) answerNumber(resp, "ErrorRecoveryLevel", load<u32>(offer(O_ERL)), 0, true);
  if ((keys & K_IF_MARKER) != 0) answerBool(resp, "IFMarker", load<u32>(offer(O_IF_MARKER)), 0, false, 0);
  if ((keys & K_OF_MARKER) != 0) answerBool(resp, "OFMarker", load<u32>(offer(O_OF_MARKER)), 0, false, 0);
  if ((keys & K_PROTOCOL_LEVEL) != 0) answerNumber(resp, "iSCSIProtocolLevel", load<u32>(offer(O_PROTOCOL_LEVEL)), 1, true);
  // RFC 3720's marker intervals are gone from RFC 7143; with markers off they are irrelevant.
  if ((keys & K_MARK_INT) != 0) { textPair(resp, "IFMarkInt", "Irrelevant"); textPair(resp, "OFMarkInt", "Irrelevant"); }
}

function answerDigest(resp: usize, key: string, choice: u32, sess: IscsiSession, bit: u32): void {
  textKey(resp, key);
  if (choice == 1) { textLit(resp, "CRC32C"); sess.pending |= bit; }
  else if (choice == 0) { textLit(resp, "None"); sess.pending &= ~bit; }
  else textLit(resp, "Reject");
  textEnd(resp);
}

/** A numerical key: Reject for a value out of range; else `result` (with `ours`: min of offer and ours). */
function answerNumber(resp: usize, key: string, offered: u32, result: u32, ours: bool): void {
  textKey(resp, key);
  if (offered == INVALID) textLit(resp, "Reject");
  else textDecimal(resp, ours ? min<u32>(offered, result) : result);
  textEnd(resp);
}

/** A boolean key: OR (or AND) of the offer and our value. Returns the result (or `current` on Reject). */
function answerBool(resp: usize, key: string, offered: u32, ours: u32, or: bool, current: u32): u32 {
  textKey(resp, key);
  let result = current;
  if (offered > 1) textLit(resp, "Reject");
  else {
    result = or ? (offered | ours) : (offered & ours);
    textLit(resp, result != 0 ? "Yes" : "No");
  }
  textEnd(resp);
  return result;
}

// ---- Security (RFC 7143 12.1) --------------------------------------------------------------------------

function takeSecurity(sess: IscsiSession, bit: u32, v: usize, vn: u32): u32 {
  if (bit == K_AUTH_METHOD) {
    let start: u32 = 0;
    let offered: u32 = 0;
    for (let i: u32 = 0; i <= vn; i++) {
      if (i < vn && load<u8>(v + i) != 0x2C) continue;
      if (bytesEq(v + start, i - start, "None")) offered |= 1;
      else if (bytesEq(v + start, i - start, "CHAP")) offered |= 2;
      else offered |= 4;
      start = i + 1;
    }
    store<u32>(offer(O_AUTH), offered);
    return LS_SUCCESS;
  }
  if (bit == K_CHAP_A) {
    let start: u32 = 0;
    for (let i: u32 = 0; i <= vn; i++) {
      if (i < vn && load<u8>(v + i) != 0x2C) continue;
      if (parseNumber(v + start, i - start) == 5) store<u32>(offer(O_CHAP_A), 1);
      start = i + 1;
    }
    return LS_SUCCESS;
  }
  if (bit == K_CHAP_I) { store<u32>(offer(O_CHAP_I), ranged(v, vn, 0, 255)); return LS_SUCCESS; }
  if (bit == K_CHAP_N) { store<u32>(offer(O_CHAP_N), <u32>v); store<u32>(offer(O_CHAP_N_LEN), vn); return LS_SUCCESS; }
  if (bit == K_CHAP_R) {
    const n = parseBinary(v, vn, scratch() + CHAP_R_AT, 16);
    store<u32>(offer(O_CHAP_R_LEN), n < 0 ? INVALID : <u32>n);
    return LS_SUCCESS;
  }
  // CHAP_C: decoded straight behind the room for identifier and secret, where md5 will read it.
  const n = parseBinary(v, vn, scratch() + CHAP_C_AT, 1024);
  store<u32>(offer(O_CHAP_C_LEN), n < 0 ? INVALID : <u32>n);
  return LS_SUCCESS;
}

/** Moves the CHAP exchange on by what this request brought. */
function answerSecurity(port: u32, s: u32, sess: IscsiSession, resp: usize): u32 {
  const keys = sess.keys;
  if ((keys & K_AUTH_METHOD) != 0) {
    if (sess.auth != AUTH_NONE) return LS_INITIATOR_ERROR;
    const offered = load<u32>(offer(O_AUTH));
    if (chapRequired(port)) {
      if ((offered & 2) == 0) { textPair(resp, "AuthMethod", "Reject"); return LS_AUTH_FAILED; }
      textPair(resp, "AuthMethod", "CHAP");
      sess.auth = AUTH_CHAP_OFFERED;
    } else {
      if ((offered & 1) == 0) { textPair(resp, "AuthMethod", "Reject"); return LS_AUTH_FAILED; }
      textPair(resp, "AuthMethod", "None");
      sess.auth = AUTH_CHOSE_NONE;
    }
  }
  if ((keys & K_CHAP_A) != 0) {
    if (sess.auth != AUTH_CHAP_OFFERED) return LS_INITIATOR_ERROR;
    if (load<u32>(offer(O_CHAP_A)) == 0) { textPair(resp, "CHAP_A", "Reject"); return LS_AUTH_FAILED; }
    challenge(port, s, sess, resp);
    sess.auth = AUTH_CHAP_CHALLENGED;
  }
  if ((keys & (K_CHAP_N | K_CHAP_R | K_CHAP_I | K_CHAP_C)) != 0) {
    if (sess.auth != AUTH_CHAP_CHALLENGED) return LS_INITIATOR_ERROR;
    return verify(port, s, sess, resp);
  }
  return LS_SUCCESS;
}

/** CHAP_A=5, CHAP_I and a fresh CHAP_C from the IOP's PRNG. */
function challenge(port: u32, s: u32, sess: IscsiSession, resp: usize): void {
  const c = sessionAt(port, s) + ISS_CHALLENGE;
  sess.chapId = <u32>(prngNext() & 0xFF);
  prngFill(c, CHALLENGE_BYTES);
  textPair(resp, "CHAP_A", "5");
  textPairNumber(resp, "CHAP_I", sess.chapId);
  textKey(resp, "CHAP_C");
  const hex = scratch() + CHAP_IN;
  textBytes(resp, hex, putHexBytes(hex, c, CHALLENGE_BYTES));
  textEnd(resp);
}

/**
 * CHAP_N and CHAP_R: the name is the port's, and the response is MD5(I || secret || C) of our
 * challenge. With CHAP_I and CHAP_C the initiator asks us to prove ourselves too (mutual CHAP).
 */
function verify(port: u32, s: u32, sess: IscsiSession, resp: usize): u32 {
  const keys = sess.keys;
  if ((keys & K_CHAP_N) == 0 || (keys & K_CHAP_R) == 0) return LS_AUTH_FAILED;
  const user = chapUser(port);
  const nameAt = <usize>load<u32>(offer(O_CHAP_N));
  const nameLen = load<u32>(offer(O_CHAP_N_LEN));
  if (nameLen != chapLen(user) || !sameBytes(nameAt, user, nameLen)) return LS_AUTH_FAILED;
  if (load<u32>(offer(O_CHAP_R_LEN)) != 16) return LS_AUTH_FAILED;
  const mutual = (keys & (K_CHAP_I | K_CHAP_C)) != 0;
  const ours = scratch() + MD5_MUTUAL;
  if (mutual) {
    // Our answer to the initiator's challenge first: it is hashed where it was decoded, and the
    // check of the initiator's response below reuses that room.
    const id = load<u32>(offer(O_CHAP_I));
    const clen = load<u32>(offer(O_CHAP_C_LEN));
    if ((keys & K_CHAP_I) == 0 || (keys & K_CHAP_C) == 0 || id == INVALID || clen == INVALID || clen == 0) return LS_AUTH_FAILED;
    if (load<u8>(mutualUser(port)) == 0) return LS_AUTH_FAILED; // no secret of ours to answer with
    // A challenge that is our own sent back would let the initiator use us to answer it (reflection).
    if (clen == CHALLENGE_BYTES && sameBytes(scratch() + CHAP_C_AT, sessionAt(port, s) + ISS_CHALLENGE, clen)) return LS_AUTH_FAILED;
    chapResponse(ours, id, mutualSecret(port), scratch() + CHAP_C_AT, clen);
  } else if (load<u8>(mutualUser(port)) != 0) {
    // The port is set for mutual CHAP: an initiator that does not ask to verify us is refused.
    return LS_AUTH_FAILED;
  }
  const expected = scratch() + MD5_OUT;
  chapResponse(expected, sess.chapId, chapSecret(port), sessionAt(port, s) + ISS_CHALLENGE, CHALLENGE_BYTES);
  if (!sameBytes(expected, scratch() + CHAP_R_AT, 16)) return LS_AUTH_FAILED;
  if (mutual) {
    textKey(resp, "CHAP_N");
    textBytes(resp, mutualUser(port), chapLen(mutualUser(port)));
    textEnd(resp);
    textKey(resp, "CHAP_R");
    const hex = scratch() + CHAP_IN;
    textBytes(resp, hex, putHexBytes(hex, ours, 16));
    textEnd(resp);
  }
  sess.auth = AUTH_DONE;
  return LS_SUCCESS;
}

/** MD5(id || secret || challenge) into dst, assembled at CHAP_IN (the challenge may lie there already: memory.copy moves overlapping bytes safely). */
function chapResponse(dst: usize, id: u32, secret: usize, chal: usize, chalLen: u32): void {
  const input = scratch() + CHAP_IN;
  const sn = chapLen(secret);
  memory.copy(input + 1 + sn, chal, chalLen);
  store<u8>(input, <u8>id);
  memory.copy(input + 1, secret, sn);
  md5(dst, input, 1 + sn + chalLen, scratch() + MD5_WORK);
}
