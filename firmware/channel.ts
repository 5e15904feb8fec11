// A channel IOP (document 001, I/O processors 501-503) and its communication unit (document 003,
// unit 102): it serves the ports the topology gives it, one session per connection, takes commands
// off stream sessions (framed, comm/stream.ts) and queue sessions (command entries), hands them to
// the processing sequencer, and sends data and status back the way they came.
import {
  MAP_ADDR, MAP_PORT_TABLE, MAP_PORT_BYTES, MPORT_SESSIONS_ADDR, MPORT_SESSIONS, SESSION_BYTES, SES_STATE,
  SES_GENERATION, SES_FW_GENERATION, SES_RX, SES_TX, SES_SQ, SES_CQ, SES_DATA, SES_DATA_BYTES, SESS_OPEN,
  SESS_CLOSING, SESS_CLOSED, CPORT_IOP, CPORT_KIND, CPORT_ADDRESS, PORT_STREAM, PORT_QUEUE, MAX_SESSIONS,
  CFG_CONTEXTS, CFG_BUFFER_CHUNKS, BUFFER_CHUNK_BYTES, QSQ_TAG, QSQ_LUN, QSQ_CDB_LEN, QSQ_FLAGS,
  QSQ_DATA_ADDR, QSQ_DATA_LEN, QSQ_CDB, QF_DATA_OUT, QF_DATA_IN, QCQ_TAG, QCQ_STATUS, QCQ_SENSE_LEN,
  QCQ_FLAGS, QCQ_RESIDUAL, QCQ_TRANSFERRED, QCQ_SENSE, QCQ_BYTES, STAT_SESSIONS_OPENED, STAT_ABORTED, STAT_FRAMES_TX,
  TRACE_SESSION, NCQ_ID, NCQ_STATUS, MAX_CDB_BYTES, MAX_VOLUMES, CPORT_IDLE_MS, SES_HANGUP, HANGUP_NONE, HANGUP_IDLE, RING_TAIL,
} from "./abi";
import { cfg32, cfgPort, portCount } from "./config";
import { gIndex, gPrivate, gNvCq, gNow, wakeAt } from "./iop";
import { ringPeek, ringRelease, ringReserve, ringPublish, ringRing } from "./ring";
import {
  CTX_BYTES, CP_CTX_BASE, CP_BUF_BASE, CP_SESS_BASE, CP_SCRATCH, CP_IMAGE, CP_HEADER_BYTES, ctxInit,
  ctxById, activeFirst, activeNext, CX_PORT, CX_SESSION, CX_NV_PENDING, CX_SESSION_GEN, CX_TAG, CX_PEER,
  CX_TX_SEQ, CX_DATA_ADDR, CX_CURSOR, CX_EXPECTED, CX_STATUS, CX_PRODUCED, CX_FLAGS, CXF_DATA_OUT, CX_KIND,
  ctxSense, senseFixed, CX_LUN, CXF_NV_FAILED, CX_VOLUME, CX_STATE, ST_RESPOND, CP_FENCE_GEN,
} from "./ctx";
import { emitFrame, FT_DATA_IN, FT_RSP, FT_XFER_RDY, FF_LAST, DATA_CHUNK } from "./comm/frame";
import { streamReceive, streamReset } from "./comm/stream";
import { cmdStart, ctxStep, abortContext, fail } from "./sequencer";
import { fenceGeneration, volumeFenced, fenceAck, fenceAcked } from "./cache";
import { nvKick, nvCompletionFailed, NVK_CONTEXT } from "./nv";
import { statInc, statAdd } from "./stats";
import { trace } from "./trace";
import { putBe16, putBe32 } from "./util";

// Per-session state in the channel IOP's private area.
export const SS_BYTES: u32 = 1280;
export const SS_OPEN: u32 = 0; // u32: 1 while the firmware serves the session
export const SS_LAST_RX_NS: u32 = 8; // f64: when the rx ring last gained bytes (partial-frame timeout)
export const SS_RX_SEEN: u32 = 16; // u32: rx bytes waiting when last looked
export const SS_OUTSTANDING: u32 = 20; // u32: commands in flight
export const SS_TX_PENDING: u32 = 24; // u32: output produced since the last doorbell
export const SS_SENSE: u32 = 32; // 18 bytes: last sense, for REQUEST SENSE
export const SS_SENSE_LUN: u32 = 50; // u16
export const SS_SENSE_VALID: u32 = 52; // u8
export const SS_ACTIVE_NS: u32 = 56; // f64: when the session last received a byte or had a command in flight (idle timeout)
export const SS_RX_TAIL: u32 = 64; // u32: the rx ring's tail when last looked
export const SS_TAGS: u32 = 256; // TAG_SLOTS x (tag u16, context index + 1 u16)
const TAG_SLOTS: u32 = 256;

/** Commands one session may have in flight; beyond it: TASK SET FULL. */
export const SESSION_QUEUE_DEPTH: u32 = 128;

// @ts-ignore: decorator
@inline export function sessionDesc(port: u32, s: u32): usize {
  return <usize>load<u32>(MAP_ADDR + MAP_PORT_TABLE + port * MAP_PORT_BYTES + MPORT_SESSIONS_ADDR) + <usize>s * SESSION_BYTES;
}
// @ts-ignore: decorator
@inline export function sessionState(port: u32, s: u32): usize {
  return <usize>load<u32>(gPrivate + CP_SESS_BASE) + <usize>(port * MAX_SESSIONS + s) * SS_BYTES;
}
// @ts-ignore: decorator
@inline export function portSessions(port: u32): u32 {
  return load<u32>(MAP_ADDR + MAP_PORT_TABLE + port * MAP_PORT_BYTES + MPORT_SESSIONS);
}
// @ts-ignore: decorator
@inline export function portAddress(port: u32): u32 { return load<u16>(cfgPort(port) + CPORT_ADDRESS); }
// @ts-ignore: decorator
@inline export function portKind(port: u32): u32 { return load<u8>(cfgPort(port) + CPORT_KIND); }
// @ts-ignore: decorator
@inline export function scratch(): usize { return load<u32>(gPrivate + CP_SCRATCH); }
// @ts-ignore: decorator
@inline export function image(): usize { return load<u32>(gPrivate + CP_IMAGE); }

export function channelPrivateBytes(): usize {
  return <usize>CP_HEADER_BYTES + <usize>cfg32(CFG_CONTEXTS) * CTX_BYTES
    + <usize>min<u32>(cfg32(CFG_BUFFER_CHUNKS), 64) * BUFFER_CHUNK_BYTES
    + <usize>portCount() * MAX_SESSIONS * SS_BYTES + 4096 + 64;
}

export function channelBoot(): void {
  let p = gPrivate + CP_HEADER_BYTES;
  store<u32>(gPrivate + CP_CTX_BASE, <u32>p);
  p += <usize>cfg32(CFG_CONTEXTS) * CTX_BYTES;
  store<u32>(gPrivate + CP_BUF_BASE, <u32>p);
  p += <usize>min<u32>(cfg32(CFG_BUFFER_CHUNKS), 64) * BUFFER_CHUNK_BYTES;
  store<u32>(gPrivate + CP_SESS_BASE, <u32>p);
  memory.fill(p, 0, <usize>portCount() * MAX_SESSIONS * SS_BYTES);
  p += <usize>portCount() * MAX_SESSIONS * SS_BYTES;
  store<u32>(gPrivate + CP_SCRATCH, <u32>p);
  store<u32>(gPrivate + CP_IMAGE, <u32>(p + 4096));
  ctxInit();
}

export function channelPoll(): i32 {
  let work: i32 = 0;
  for (let port: u32 = 0; port < portCount(); port++) {
    if (<u32>load<u8>(cfgPort(port) + CPORT_IOP) != gIndex) continue;
    const n = portSessions(port);
    for (let s: u32 = 0; s < n; s++) work += serveSession(port, s);
  }
  work += drainNv();
  work += purgeFenced();
  work += stepActive();
  ringTxDoorbells();
  nvKick();
  return work;
}

function serveSession(port: u32, s: u32): i32 {
  const d = sessionDesc(port, s);
  const ss = sessionState(port, s);
  const state = atomic.load<u32>(d + SES_STATE);
  if (state == SESS_OPEN) {
    const gen = atomic.load<u32>(d + SES_GENERATION);
    if (gen != load<u32>(d + SES_FW_GENERATION)) openSession(port, s, gen);
    return portKind(port) == PORT_STREAM ? streamReceive(port, s) + idleCheck(port, s) : queueReceive(port, s);
  }
  if (state == SESS_CLOSING) {
    closeSession(port, s);
    atomic.store<u32>(d + SES_STATE, SESS_CLOSED);
    return 1;
  }
  return 0;
}

function openSession(port: u32, s: u32, gen: u32): void {
  const ss = sessionState(port, s);
  if (load<u32>(ss + SS_OPEN) != 0) closeSession(port, s);
  memory.fill(ss, 0, SS_BYTES);
  store<u32>(ss + SS_OPEN, 1);
  store<f64>(ss + SS_LAST_RX_NS, gNow);
  store<f64>(ss + SS_ACTIVE_NS, gNow);
  store<u32>(sessionDesc(port, s) + SES_FW_GENERATION, gen);
  streamReset(port, s);
  statInc(STAT_SESSIONS_OPENED);
  trace(TRACE_SESSION, (port << 16) | s, 1, 0, 0);
}

function closeSession(port: u32, s: u32): void {
  const aborted = dropCommands(port, s);
  store<u32>(sessionState(port, s) + SS_OPEN, 0);
  trace(TRACE_SESSION, (port << 16) | s, 0, aborted, load<u32>(sessionDesc(port, s) + SES_HANGUP));
}

/**
 * The host starts afresh on a session that stays open (a PING with RESET, docs/protocol.md): its
 * commands are dropped as on a hang-up and their tags are free again, so nothing of an initiator
 * that went away (a killed program on a serial line) answers or collides with the next one.
 */
export function sessionRestart(port: u32, s: u32): void {
  const ss = sessionState(port, s);
  const aborted = dropCommands(port, s);
  memory.fill(ss + SS_TAGS, 0, TAG_SLOTS * 4);
  store<u32>(ss + SS_OUTSTANDING, 0);
  store<u8>(ss + SS_SENSE_VALID, 0);
  trace(TRACE_SESSION, (port << 16) | s, 1, aborted, 0);
}

/** Drops the session's commands, no status sent: acknowledged writes are in the cache already; the rest may or may not apply. */
function dropCommands(port: u32, s: u32): u32 {
  let aborted: u32 = 0;
  let c = activeFirst();
  while (c != 0) {
    const next = activeNext(c);
    if (<u32>load<u8>(c + CX_PORT) == port && <u32>load<u8>(c + CX_SESSION) == s) { abortContext(c); aborted++; }
    c = next;
  }
  statAdd(STAT_ABORTED, aborted);
  return aborted;
}

/**
 * Asks the binding to hang up a stream session that has had no command in flight and received
 * nothing for the port's idle time, so idle or half-sent connections cannot hold every session of
 * a port (docs/hal.md, Channels). Returns 1 when it asked.
 */
function idleCheck(port: u32, s: u32): i32 {
  const limitMs = load<u32>(cfgPort(port) + CPORT_IDLE_MS);
  const d = sessionDesc(port, s);
  if (limitMs == 0 || load<u32>(d + SES_HANGUP) != HANGUP_NONE) return 0;
  const ss = sessionState(port, s);
  const tail = atomic.load<u32>(<usize>load<u32>(d + SES_RX) + RING_TAIL);
  if (tail != load<u32>(ss + SS_RX_TAIL) || load<u32>(ss + SS_OUTSTANDING) != 0) {
    store<u32>(ss + SS_RX_TAIL, tail);
    store<f64>(ss + SS_ACTIVE_NS, gNow);
  }
  const until = load<f64>(ss + SS_ACTIVE_NS) + <f64>limitMs * 1e6;
  if (gNow < until) { wakeAt(until); return 0; }
  store<u32>(d + SES_HANGUP, HANGUP_IDLE);
  markTx(port, s); // the tx doorbell tells the binding
  return 1;
}

/**
 * A volume was fenced for deletion: this IOP's commands of it end now with ABORTED COMMAND,
 * TARGET OPERATING CONDITIONS HAVE CHANGED (3Fh/00h), whatever step they are at; then the IOP
 * says it holds none (the delete waits for every channel IOP).
 */
function purgeFenced(): i32 {
  const gen = fenceGeneration();
  if (gen == load<u32>(gPrivate + CP_FENCE_GEN)) return 0;
  store<u32>(gPrivate + CP_FENCE_GEN, gen);
  let work: i32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    if (!volumeFenced(v) || fenceAcked(v, gIndex)) continue;
    let c = activeFirst();
    while (c != 0) {
      const next = activeNext(c);
      if (<u32>load<u16>(c + CX_VOLUME) == v && <u32>load<u8>(c + CX_STATE) != ST_RESPOND) {
        fail(c, 0x0B, 0x3F, 0x00);
        ctxStep(c);
        work++;
      }
      c = next;
    }
    fenceAck(v, gIndex);
  }
  return work;
}

function stepActive(): i32 {
  let work: i32 = 0;
  let c = activeFirst();
  while (c != 0) {
    const next = activeNext(c);
    work += ctxStep(c);
    c = next;
  }
  return work;
}

function drainNv(): i32 {
  let n: i32 = 0;
  let e = ringPeek(gNvCq);
  while (e != 0) {
    const id = load<u32>(e + NCQ_ID);
    const status = load<u32>(e + NCQ_STATUS);
    if (status != 0) nvCompletionFailed(status, id);
    const c = ctxById(id & 0x0FFFFFFF);
    if (c != 0 && (id >> 28) == NVK_CONTEXT) {
      const p = load<u32>(c + CX_NV_PENDING);
      if (p > 0) store<u32>(c + CX_NV_PENDING, p - 1);
      if (status != 0) store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_NV_FAILED);
    }
    ringRelease(gNvCq, 1);
    n++;
    e = ringPeek(gNvCq);
  }
  return n;
}

function ringTxDoorbells(): void {
  for (let port: u32 = 0; port < portCount(); port++) {
    if (<u32>load<u8>(cfgPort(port) + CPORT_IOP) != gIndex) continue;
    const n = portSessions(port);
    for (let s: u32 = 0; s < n; s++) {
      const ss = sessionState(port, s);
      if (load<u32>(ss + SS_TX_PENDING) == 0) continue;
      store<u32>(ss + SS_TX_PENDING, 0);
      const d = sessionDesc(port, s);
      ringRing(load<u32>(d + (portKind(port) == PORT_STREAM ? SES_TX : SES_CQ)));
    }
  }
}

// ---- Queue sessions (in-process initiators) ----------------------------------------------------

function queueReceive(port: u32, s: u32): i32 {
  const d = sessionDesc(port, s);
  const sq: usize = load<u32>(d + SES_SQ);
  let work: i32 = 0;
  let e = ringPeek(sq);
  while (e != 0) {
    const flags = <u32>load<u8>(e + QSQ_FLAGS);
    const addr = load<u32>(e + QSQ_DATA_ADDR);
    const len = load<u32>(e + QSQ_DATA_LEN);
    const cdbLen = min<u32>(<u32>load<u8>(e + QSQ_CDB_LEN), MAX_CDB_BYTES);
    const base = load<u32>(d + SES_DATA);
    const inside = len == 0 || (addr >= base && <u64>addr + <u64>len <= <u64>base + <u64>load<u32>(d + SES_DATA_BYTES));
    // A buffer outside the session's data area would let an initiator aim the controller's
    // copies anywhere in common memory: refuse it as a bad field, move nothing.
    cmdStart(port, s, load<u32>(e + QSQ_TAG), <u32>load<u16>(e + QSQ_LUN), e + QSQ_CDB, inside ? cdbLen : 0,
      (flags & QF_DATA_OUT) != 0, (flags & QF_DATA_IN) != 0, inside ? len : 0, addr, 0);
    ringRelease(sq, 1);
    work++;
    e = ringPeek(sq);
  }
  return work;
}

// ---- Output, whichever way the session carries it ----------------------------------------------

/** Sends n data-in bytes from src at the context's cursor. Returns the bytes taken (may be fewer: tx full). */
export function txData(c: usize, src: usize, n: u32, total: u32): u32 {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const cursor = load<u32>(c + CX_CURSOR);
  if (<u32>load<u8>(c + CX_KIND) == PORT_QUEUE) {
    memory.copy(<usize>load<u32>(c + CX_DATA_ADDR) + cursor, src, n);
    return n;
  }
  const tx: usize = load<u32>(sessionDesc(port, s) + SES_TX);
  let sent: u32 = 0;
  while (sent < n) {
    const chunk = min<u32>(n - sent, DATA_CHUNK);
    const last = cursor + sent + chunk == total ? FF_LAST : 0;
    const seq = <u32>load<u16>(c + CX_TX_SEQ);
    if (!emitFrame(tx, scratch(), FT_DATA_IN, last, load<u32>(c + CX_TAG), portAddress(port), load<u16>(c + CX_PEER),
      seq, cursor + sent, 0, src + sent, chunk)) break;
    store<u16>(c + CX_TX_SEQ, <u16>(seq + 1));
    statInc(STAT_FRAMES_TX);
    sent += chunk;
  }
  if (sent > 0) markTx(port, s);
  return sent;
}

/** Asks a stream initiator for the data-out burst [offset, offset + length). */
export function txXferRdy(c: usize, offset: u32, length: u32): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const seq = <u32>load<u16>(c + CX_TX_SEQ);
  if (!emitFrame(load<u32>(sessionDesc(port, s) + SES_TX), scratch(), FT_XFER_RDY, 0, load<u32>(c + CX_TAG),
    portAddress(port), load<u16>(c + CX_PEER), seq, offset, length, 0, 0)) return false;
  store<u16>(c + CX_TX_SEQ, <u16>(seq + 1));
  statInc(STAT_FRAMES_TX);
  markTx(port, s);
  return true;
}

/** Sends the context's status (and sense). False when there is no room yet. */
export function txRespond(c: usize): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const status = <u32>load<u8>(c + CX_STATUS);
  const sense = scratch() + 64;
  const senseLen: u32 = status == 0x02 ? 18 : 0;
  if (senseLen > 0) { ctxSense(c, sense); rememberSense(port, s, <u32>load<u16>(c + CX_LUN), sense); }
  const expected = load<u32>(c + CX_EXPECTED);
  const moved = load<u32>(c + CX_CURSOR);
  const produced = (load<u32>(c + CX_FLAGS) & CXF_DATA_OUT) != 0 ? moved : load<u32>(c + CX_PRODUCED);
  let resid: u32 = 0;
  let rflags: u32 = 0;
  if (status == 0 && produced > expected) { resid = produced - expected; rflags = 2; }
  else if (expected > moved) { resid = expected - moved; rflags = 1; }
  const ok = respondRaw(port, s, load<u32>(c + CX_TAG), load<u16>(c + CX_PEER), load<u16>(c + CX_TX_SEQ),
    status, rflags, resid, moved, sense, senseLen);
  return ok;
}

/** A status for a command that never got a context (TASK SET FULL, overlapped tag, ...). */
export function txDirect(port: u32, s: u32, tag: u32, peer: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const sense = scratch() + 64;
  const senseLen: u32 = status == 0x02 ? 18 : 0;
  if (senseLen > 0) senseFixed(sense, key, asc, ascq, 0, false, 0);
  return respondRaw(port, s, tag, peer, 0, status, expected > 0 ? 1 : 0, expected, 0, sense, senseLen);
}

function respondRaw(
  port: u32, s: u32, tag: u32, peer: u32, seq: u32, status: u32, rflags: u32, resid: u32, moved: u32,
  sense: usize, senseLen: u32,
): bool {
  const d = sessionDesc(port, s);
  if (portKind(port) == PORT_QUEUE) {
    const cq: usize = load<u32>(d + SES_CQ);
    const e = ringReserve(cq);
    if (e == 0) return false;
    memory.fill(e, 0, QCQ_BYTES);
    store<u32>(e + QCQ_TAG, tag);
    store<u8>(e + QCQ_STATUS, <u8>status);
    store<u8>(e + QCQ_SENSE_LEN, <u8>senseLen);
    store<u16>(e + QCQ_FLAGS, <u16>rflags);
    store<u32>(e + QCQ_RESIDUAL, resid);
    store<u32>(e + QCQ_TRANSFERRED, moved);
    if (senseLen > 0) memory.copy(e + QCQ_SENSE, sense, senseLen);
    ringPublish(cq, 1);
    markTx(port, s);
    return true;
  }
  const payload = scratch() + 128;
  store<u8>(payload, <u8>status);
  store<u8>(payload + 1, <u8>rflags);
  putBe16(payload + 2, senseLen);
  putBe32(payload + 4, resid);
  if (senseLen > 0) memory.copy(payload + 8, sense, senseLen);
  if (!emitFrame(load<u32>(d + SES_TX), scratch(), FT_RSP, 0, tag, portAddress(port), peer, seq, 0, 0, payload, 8 + senseLen)) return false;
  statInc(STAT_FRAMES_TX);
  markTx(port, s);
  return true;
}

function rememberSense(port: u32, s: u32, lun: u32, sense: usize): void {
  const ss = sessionState(port, s);
  memory.copy(ss + SS_SENSE, sense, 18);
  store<u16>(ss + SS_SENSE_LUN, <u16>lun);
  store<u8>(ss + SS_SENSE_VALID, 1);
}

// @ts-ignore: decorator
@inline export function markTx(port: u32, s: u32): void { store<u32>(sessionState(port, s) + SS_TX_PENDING, 1); }

// ---- Tags -----------------------------------------------------------------------------------------

/** The context index + 1 of a tag in flight on the session, or 0. */
export function tagFind(port: u32, s: u32, tag: u32): u32 {
  const t = sessionState(port, s) + SS_TAGS;
  let i = tag & (TAG_SLOTS - 1);
  for (let probe: u32 = 0; probe < TAG_SLOTS; probe++) {
    const e = load<u32>(t + (<usize>i << 2));
    if (e == 0) return 0;
    if ((e & 0xFFFF) == tag) return e >> 16;
    i = (i + 1) & (TAG_SLOTS - 1);
  }
  return 0;
}

export function tagInsert(port: u32, s: u32, tag: u32, ctx1: u32): void {
  const t = sessionState(port, s) + SS_TAGS;
  let i = tag & (TAG_SLOTS - 1);
  while (load<u32>(t + (<usize>i << 2)) != 0) i = (i + 1) & (TAG_SLOTS - 1);
  store<u32>(t + (<usize>i << 2), (ctx1 << 16) | (tag & 0xFFFF));
}

/** Removes a tag, shifting later entries of its probe run back (no tombstones). */
export function tagRemove(port: u32, s: u32, tag: u32): void {
  const t = sessionState(port, s) + SS_TAGS;
  const mask = TAG_SLOTS - 1;
  let i = tag & mask;
  for (let probe: u32 = 0; probe < TAG_SLOTS; probe++) {
    const e = load<u32>(t + (<usize>i << 2));
    if (e == 0) return;
    if ((e & 0xFFFF) == tag) break;
    i = (i + 1) & mask;
  }
  let hole = i;
  let j = (i + 1) & mask;
  while (true) {
    const e = load<u32>(t + (<usize>j << 2));
    if (e == 0) break;
    const home = (e & 0xFFFF) & mask;
    // Move e into the hole if its home is not in (hole, j] cyclically.
    const between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) { store<u32>(t + (<usize>hole << 2), e); hole = j; }
    j = (j + 1) & mask;
  }
  store<u32>(t + (<usize>hole << 2), 0);
}

export function sessionOutstandingAdd(port: u32, s: u32, n: i32): u32 {
  const p = sessionState(port, s) + SS_OUTSTANDING;
  const v = <u32>(<i32>load<u32>(p) + n);
  store<u32>(p, v);
  return v;
}
