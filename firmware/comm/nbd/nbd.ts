// The NBD server (the NBD project's doc/proto.md) of a channel IOP's NBD ports: fixed newstyle
// handshake and option haggling, then requests parsed in place in the session's rx ring. Each
// export is a volume mapped on this port, named by the volume's name; a request becomes a SCSI
// command of its LUN (comm/nbd/request.ts), so the sequencer's integrity rules, faults and traces
// are the ones every front end has. Oldstyle is never spoken (proto.md: a newstyle port SHOULD
// refuse it) and a client that does not answer FIXED_NEWSTYLE is dropped, counted and traced:
// without it no error could be told it. docs/nbd.md says what is supported and why.
import {
  TRACE_NBD_ERROR, STAT_NBD_DROPPED, STAT_NBD_ERRORS, NERR_CLIENT_FLAGS, NERR_OPTION_MAGIC, NERR_OPTION,
  NERR_EXPORT_NAME, MAX_VOLUMES, MAX_LUNS, SES_PEER_ADDR, SES_PEER_ADDR_BYTES, HANGUP_PROTOCOL,
} from "../../abi";
import { ringUsed, ringRelease, byteRingRead } from "../../ring";
import { sessionDesc, sessionHangUp, setIdentity, scratch, sessionOutstandingAdd } from "../../channel";
import { volumeAtLun, volumeByName, volumeInUse, blockSize, capacityBlocks, VOLE_NAME, VOLE_ID, NAME_BYTES } from "../../volume";
import { volumeEntry } from "../../nv";
import { statInc } from "../../stats";
import { trace } from "../../trace";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "../../util";
import { accessOf, ACC_NONE, ACC_RO } from "../access";
import { strLen } from "../iscsi/port";
import { putLit } from "../iscsi/text";
import {
  NbdSession, session, sessionAt, nbdStateFits, NBD_SESSION_BYTES, NP_GREETING, NP_CLIENT_FLAGS, NP_OPTIONS,
  NP_TRANSMISSION, NP_CLOSING, NP_DEAD, NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES,
  FLAG_C_FIXED_NEWSTYLE, FLAG_C_NO_ZEROES, OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO,
  OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT, REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT, REP_ERR_UNSUP,
  REP_ERR_POLICY, REP_ERR_INVALID, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG, INFO_EXPORT, INFO_NAME, INFO_BLOCK_SIZE,
  TF_HAS_FLAGS, TF_READ_ONLY, TF_SEND_FLUSH, TF_SEND_FUA, TF_SEND_TRIM, TF_SEND_WRITE_ZEROES, TF_CAN_MULTI_CONN,
  OPTION_HEADER_BYTES, OPTION_DATA_MAX, MAX_PAYLOAD, META_ALLOCATION_ID,
} from "./state";
import { send, optionReply, optionError, hdr, rxHeader, nameArea, txRoom, rxRing } from "./wire";
import { requestStep, payloadStep } from "./request";

/** Room kept in the tx ring before an option is taken: its longest answer (a name, a message) fits. */
const OPTION_REPLY_ROOM: u32 = 512;

export { NBD_SESSION_BYTES };

/** A connection opened: the greeting goes out at once (proto.md: the server speaks first). */
export function nbdOpen(port: u32, s: u32): void {
  assert(nbdStateFits());
  memory.fill(sessionAt(port, s), 0, NBD_SESSION_BYTES);
  const sess = session(port, s);
  sess.tagNext = 1;
  nbdIdentity(port, s);
  const h = hdr();
  putBe64(h, NBDMAGIC);
  putBe64(h + 8, IHAVEOPT);
  putBe16(h + 16, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
  sess.phase = send(port, s, h, 18, 0, 0) ? NP_CLIENT_FLAGS : NP_GREETING;
}

export function nbdClose(port: u32, s: u32): void { session(port, s).phase = NP_DEAD; }

/** An NBD client's identity (LUN security): "nbd:" and its IP address as the binding saw it. */
function nbdIdentity(port: u32, s: u32): void {
  const p = scratch() + 3300;
  store<u32>(p, 0x3A64626E); // "nbd:"
  const peer = sessionDesc(port, s) + SES_PEER_ADDR;
  const n = strLen(peer, SES_PEER_ADDR_BYTES - 1);
  memory.copy(p + 4, peer, n);
  setIdentity(port, s, p, 4 + n, 0);
}

/** Handles what arrived on the session. Returns the work done. */
export function nbdReceive(port: u32, s: u32): i32 {
  const sess = session(port, s);
  const rx = rxRing(port, s);
  let work: i32 = 0;
  while (sess.phase != NP_DEAD) {
    if (sess.phase == NP_GREETING) { nbdOpen(port, s); if (sess.phase == NP_GREETING) break; }
    if (sess.skip > 0) {
      const n = min<u32>(sess.skip, ringUsed(rx));
      if (n == 0) break;
      ringRelease(rx, n);
      sess.skip -= n;
      work++;
      continue;
    }
    if (sess.payloadLeft > 0) {
      const n = payloadStep(port, s, sess, rx);
      if (n == 0) break;
      work++;
      continue;
    }
    if (sess.listNext != 0) { if (!listStep(port, s, sess)) break; work++; continue; }
    if (sess.phase == NP_CLOSING) { closeWhenIdle(port, s); break; }
    let more = false;
    if (sess.phase == NP_CLIENT_FLAGS) more = clientFlags(port, s, sess, rx);
    else if (sess.phase == NP_OPTIONS) more = optionStep(port, s, sess, rx);
    else if (sess.phase == NP_TRANSMISSION) more = requestStep(port, s, sess, rx);
    if (!more) break;
    work++;
  }
  return work;
}

/** NBD_CMD_DISC, NBD_OPT_ABORT: the connection closes once every request taken in is answered. */
function closeWhenIdle(port: u32, s: u32): void {
  if (sessionOutstandingAdd(port, s, 0) != 0) return;
  session(port, s).phase = NP_DEAD;
  sessionHangUp(port, s, HANGUP_PROTOCOL);
}

/** A violation after which the byte stream cannot be trusted: counted, traced, the connection closed. */
export function drop(port: u32, s: u32, why: u32, what: u32, value: u32): void {
  statInc(STAT_NBD_DROPPED);
  trace(TRACE_NBD_ERROR, (port << 16) | s, why, what, value);
  session(port, s).phase = NP_DEAD;
  sessionHangUp(port, s, HANGUP_PROTOCOL);
}

function clientFlags(port: u32, s: u32, sess: NbdSession, rx: usize): bool {
  if (ringUsed(rx) < 4) return false;
  const p = rxHeader();
  byteRingRead(rx, 0, p, 4);
  ringRelease(rx, 4);
  const flags = getBe32(p);
  // proto.md: the server MUST close on flags it does not know; without FIXED_NEWSTYLE no option
  // error could be sent, so such a client is refused here, where it is plain why.
  if ((flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0 || (flags & FLAG_C_FIXED_NEWSTYLE) == 0) {
    drop(port, s, NERR_CLIENT_FLAGS, 0, flags);
    return false;
  }
  sess.clientFlags = flags;
  sess.phase = NP_OPTIONS;
  return true;
}

// ---- Options ------------------------------------------------------------------------------------------

function optionStep(port: u32, s: u32, sess: NbdSession, rx: usize): bool {
  const avail = ringUsed(rx);
  if (avail < OPTION_HEADER_BYTES || txRoom(port, s) < OPTION_REPLY_ROOM) return false;
  const h = rxHeader();
  byteRingRead(rx, 0, h, OPTION_HEADER_BYTES);
  if (getBe64(h) != IHAVEOPT) { drop(port, s, NERR_OPTION_MAGIC, 0, <u32>getBe64(h)); return false; }
  const option = getBe32(h + 8);
  const length = getBe32(h + 12);
  if (length > OPTION_DATA_MAX) {
    ringRelease(rx, OPTION_HEADER_BYTES);
    sess.skip = length;
    refuse(port, s, option, REP_ERR_TOO_BIG, "sanbox: option data longer than 4160 bytes");
    return true;
  }
  if (avail < OPTION_HEADER_BYTES + length) return false;
  const data = OPTION_HEADER_BYTES; // the data stays in the ring until the option is answered
  switch (option) {
    case OPT_EXPORT_NAME: exportName(port, s, sess, rx, data, length); break;
    case OPT_ABORT:
      optionReply(port, s, option, REP_ACK, 0, 0);
      sess.phase = NP_CLOSING;
      break;
    case OPT_LIST:
      if (length != 0) refuse(port, s, option, REP_ERR_INVALID, "sanbox: NBD_OPT_LIST carries no data");
      else { sess.listNext = 1; sess.listOption = option; }
      break;
    case OPT_STARTTLS: refuse(port, s, option, REP_ERR_POLICY, "sanbox: no TLS; NBD is served in plain text"); break;
    case OPT_INFO: case OPT_GO: infoOrGo(port, s, sess, rx, data, length, option); break;
    case OPT_STRUCTURED_REPLY:
      if (length != 0) refuse(port, s, option, REP_ERR_INVALID, "sanbox: NBD_OPT_STRUCTURED_REPLY carries no data");
      else { sess.structured = 1; optionReply(port, s, option, REP_ACK, 0, 0); }
      break;
    case OPT_LIST_META_CONTEXT: case OPT_SET_META_CONTEXT: metaContext(port, s, sess, rx, data, length, option); break;
    default: refuse(port, s, option, REP_ERR_UNSUP, "sanbox: option not supported"); break;
  }
  if (sess.phase != NP_DEAD) ringRelease(rx, OPTION_HEADER_BYTES + length);
  return sess.phase != NP_DEAD;
}

function refuse(port: u32, s: u32, option: u32, type: u32, message: string): void {
  statInc(STAT_NBD_ERRORS);
  trace(TRACE_NBD_ERROR, (port << 16) | s, NERR_OPTION, option, type);
  optionError(port, s, option, type, message);
}

/**
 * The LUN on this port of the export named by `n` bytes at rx offset `at`, for this client: a
 * volume of that name mapped on the port whose access list lets the client see it. 0 when none.
 */
function findExport(port: u32, s: u32, rx: usize, at: u32, n: u32): u32 {
  if (n == 0 || n >= NAME_BYTES) return 0;
  const name = nameArea();
  byteRingRead(rx, at, name, n);
  store<u8>(name + n, 0);
  for (let i: u32 = 0; i < n; i++) if (load<u8>(name + i) == 0) return 0;
  const v = volumeByName(name);
  if (v < 0) return 0;
  const lun = lunOf(port, <u32>v);
  if (lun == 0 || accessOf(<u32>v, port, s) == ACC_NONE) return 0;
  return lun;
}

/** The lowest LUN of the port where volume v is mapped, or 0. */
function lunOf(port: u32, v: u32): u32 {
  for (let lun: u32 = 1; lun < MAX_LUNS; lun++) if (volumeAtLun(port, lun) == <i32>v) return lun;
  return 0;
}

/** Fixes the export for transmission; returns its transmission flags. */
function useExport(port: u32, s: u32, sess: NbdSession, lun: u32): u32 {
  const v = <u32>volumeAtLun(port, lun);
  sess.lun = lun;
  sess.volume = v;
  sess.volumeId = load<u32>(volumeEntry(v) + VOLE_ID);
  sess.blockSize = blockSize(v);
  sess.exportBytes = capacityBlocks(v) * <u64>sess.blockSize;
  sess.readOnly = accessOf(v, port, s) == ACC_RO ? 1 : 0;
  if (sess.metaVolume != v + 1) sess.meta = 0; // contexts were selected for another export
  // One cache serves every connection and every port: what a FLUSH or FUA made durable, and
  // every write answered, is what any other connection reads next, so multi-conn is safe.
  let flags = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES | TF_CAN_MULTI_CONN;
  if (sess.readOnly != 0) flags |= TF_READ_ONLY;
  return flags;
}

/** NBD_OPT_EXPORT_NAME: no error can be answered; an export this client may not use ends the session. */
function exportName(port: u32, s: u32, sess: NbdSession, rx: usize, at: u32, n: u32): void {
  const lun = findExport(port, s, rx, at, n);
  if (lun == 0) { drop(port, s, NERR_EXPORT_NAME, OPT_EXPORT_NAME, n); return; }
  const flags = useExport(port, s, sess, lun);
  const h = hdr();
  memory.fill(h, 0, 134);
  putBe64(h, sess.exportBytes);
  putBe16(h + 8, flags);
  send(port, s, h, (sess.clientFlags & FLAG_C_NO_ZEROES) != 0 ? 10 : 134, 0, 0);
  sess.phase = NP_TRANSMISSION;
}

/** NBD_OPT_INFO and NBD_OPT_GO: the export, its name and size constraints; GO then transmits. */
function infoOrGo(port: u32, s: u32, sess: NbdSession, rx: usize, at: u32, length: u32, option: u32): void {
  const f = nameArea() + 64;
  if (length < 6) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: option data too short"); return; }
  byteRingRead(rx, at, f, 4);
  const nameLen = getBe32(f);
  if (nameLen > length - 6) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: name longer than the option"); return; }
  byteRingRead(rx, at + 4 + nameLen, f, 2);
  const requests = getBe16(f);
  if (6 + nameLen + requests * 2 != length) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: information requests do not fill the option"); return; }
  const lun = findExport(port, s, rx, at + 4, nameLen);
  if (lun == 0) {
    refuse(port, s, option, REP_ERR_UNKNOWN, nameLen == 0 ? "sanbox: no default export; name a volume (NBD_OPT_LIST lists them)"
      : "sanbox: no such export for this client");
    return;
  }
  let wantName = false;
  for (let i: u32 = 0; i < requests; i++) {
    byteRingRead(rx, at + 6 + nameLen + i * 2, f, 2);
    if (getBe16(f) == INFO_NAME) wantName = true;
  }
  const flags = useExport(port, s, sess, lun);
  const d = hdr() + 24;
  putBe16(d, INFO_EXPORT);
  putBe64(d + 2, sess.exportBytes);
  putBe16(d + 10, flags);
  optionReply(port, s, option, REP_INFO, d, 12);
  // Sent whether asked or not (proto.md allows it): the minimum is the volume's block size.
  putBe16(d, INFO_BLOCK_SIZE);
  putBe32(d + 2, sess.blockSize);
  putBe32(d + 6, max<u32>(sess.blockSize, 4096));
  putBe32(d + 10, MAX_PAYLOAD);
  optionReply(port, s, option, REP_INFO, d, 14);
  if (wantName) {
    putBe16(d, INFO_NAME);
    const e = volumeEntry(sess.volume) + VOLE_NAME;
    const n = strLen(e, NAME_BYTES - 1);
    memory.copy(d + 2, e, n);
    optionReply(port, s, option, REP_INFO, d, 2 + n);
  }
  optionReply(port, s, option, REP_ACK, 0, 0);
  if (option == OPT_GO) sess.phase = NP_TRANSMISSION;
}

/**
 * NBD_OPT_LIST_META_CONTEXT / SET_META_CONTEXT. One context is served, "base:allocation" (proto.md):
 * NBD_CMD_BLOCK_STATUS then says which extents of the export are holes (a thin volume's deallocated
 * chunks, which read zeros: NBD_STATE_HOLE | NBD_STATE_ZERO) and which hold data (request.ts). LIST
 * with no query, or the query "base:" or "base:allocation", names it; SET selects it when a query
 * names it exactly, and drops what an earlier SET selected. SET's export must be one this client may
 * use (NBD_REP_ERR_UNKNOWN); a GO for another export drops the selection (useExport).
 */
function metaContext(port: u32, s: u32, sess: NbdSession, rx: usize, at: u32, length: u32, option: u32): void {
  if (sess.structured == 0) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: negotiate structured replies first"); return; }
  const f = nameArea() + 64;
  if (length < 8) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: option data too short"); return; }
  byteRingRead(rx, at, f, 4);
  const nameLen = getBe32(f);
  if (nameLen > length - 8) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: name longer than the option"); return; }
  byteRingRead(rx, at + 4 + nameLen, f, 4);
  const queries = getBe32(f);
  let p = at + 8 + nameLen;
  const end = at + length;
  let named = queries == 0 && option == OPT_LIST_META_CONTEXT; // LIST with no query: every context
  for (let i: u32 = 0; i < queries; i++) {
    if (p + 4 > end) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: queries longer than the option"); return; }
    byteRingRead(rx, p, f, 4);
    const q = getBe32(f);
    if (q > end - p - 4) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: queries longer than the option"); return; }
    if (namesAllocation(rx, p + 4, q, option == OPT_LIST_META_CONTEXT)) named = true;
    p += 4 + q;
  }
  if (p != end) { refuse(port, s, option, REP_ERR_INVALID, "sanbox: bytes after the queries"); return; }
  if (option == OPT_SET_META_CONTEXT) {
    const lun = findExport(port, s, rx, at + 4, nameLen);
    if (lun == 0) { refuse(port, s, option, REP_ERR_UNKNOWN, "sanbox: no such export for this client"); return; }
    sess.meta = named ? 1 : 0;
    sess.metaVolume = <u32>volumeAtLun(port, lun) + 1;
  }
  if (named) {
    const d = hdr() + 24;
    putBe32(d, META_ALLOCATION_ID);
    optionReply(port, s, option, REP_META_CONTEXT, d, 4 + putLit(d + 4, "base:allocation"));
  }
  optionReply(port, s, option, REP_ACK, 0, 0);
}

/** Does the query of `n` bytes at rx offset `at` name base:allocation (a LIST's "base:" too)? */
function namesAllocation(rx: usize, at: u32, n: u32, list: bool): bool {
  const q = nameArea() + 80;
  const whole = n == 15;
  if (!whole && !(list && n == 5)) return false;
  byteRingRead(rx, at, q, n);
  const want = nameArea() + 96;
  putLit(want, "base:allocation");
  return memory.compare(q, want, n) == 0;
}

/** NBD_OPT_LIST: one NBD_REP_SERVER per export this client may use, then the ACK; resumes when the tx ring fills. */
function listStep(port: u32, s: u32, sess: NbdSession): bool {
  const d = hdr() + 24;
  while (sess.listNext <= MAX_VOLUMES) {
    const v = sess.listNext - 1;
    const e = volumeEntry(v) + VOLE_NAME;
    const name = strLen(e, NAME_BYTES - 1);
    if (volumeInUse(v) && name > 0 && lunOf(port, v) != 0 && accessOf(v, port, s) != ACC_NONE) {
      putBe32(d, name);
      memory.copy(d + 4, e, name);
      if (!optionReply(port, s, sess.listOption, REP_SERVER, d, 4 + name)) return false;
    }
    sess.listNext++;
  }
  if (!optionReply(port, s, sess.listOption, REP_ACK, 0, 0)) return false;
  sess.listNext = 0;
  return true;
}
