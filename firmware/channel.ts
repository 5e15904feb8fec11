// A channel IOP (document 001, I/O processors 501-503) and its communication unit (document 003,
// unit 102): it serves the ports the topology gives it, one session per connection. Each port kind
// (framed stream, queue pair, iSCSI) parses and produces its own wire format behind the transport
// seam (comm/transport.ts); this module owns what every kind shares: session open and close, the
// table of tags in flight, the identity of the initiator on each session, and the poll loop that
// steps the processing sequencer.
import {
  MAP_ADDR, MAP_PORT_TABLE, MAP_PORT_BYTES, MPORT_SESSIONS_ADDR, MPORT_SESSIONS, SESSION_BYTES, SES_STATE,
  SES_GENERATION, SES_FW_GENERATION, SES_RX, SES_TX, SES_CQ, SES_HANGUP, SESS_OPEN, SESS_CLOSING, SESS_CLOSED,
  CPORT_IOP, CPORT_KIND, CPORT_ADDRESS, CPORT_IDLE_MS, PORT_STREAM, PORT_QUEUE, PORT_ISCSI, PORT_NBD, MAX_SESSIONS, CFG_CONTEXTS,
  CFG_BUFFER_CHUNKS, BUFFER_CHUNK_BYTES, STAT_SESSIONS_OPENED, TRACE_SESSION, NCQ_ID, NCQ_STATUS, MAX_PORTS,
  SENSE_BYTES, MIOP_PRIVATE, MAX_VOLUMES, HANGUP_NONE, HANGUP_IDLE, HANGUP_PROTOCOL, RING_TAIL,
} from "./abi";
import { cfg32, cfgPort, portCount } from "./config";
import { gIndex, gPrivate, gNvCq, gNow, iopEntry, wakeAt } from "./iop";
import { ringPeek, ringRelease, ringRing } from "./ring";
import {
  CTX_BYTES, CP_CTX_BASE, CP_BUF_BASE, CP_BUF_MAP, CP_SESS_BASE, CP_SCRATCH, CP_IMAGE, CP_HEADER_BYTES,
  CP_PORT_EXT, CP_FENCE_GEN, BUFFER_MAP_BYTES, ctxInit, ctxById, activeFirst, activeNext, CX_PORT, CX_SESSION,
  CX_NV_PENDING, CX_FLAGS, CXF_NV_FAILED, CX_STATUS, CX_LUN, ctxSense, senseFixed,
} from "./ctx";
import { transportOpen, transportClose, transportReceive, transportSessionBytes } from "./comm/transport";
import { ctxStep, abortWhere, abortSense, ANY, ABORT_SILENT } from "./sequencer";
import { fenceGeneration, volumeFenced, fenceAck, fenceAcked } from "./cache";
import { nvKick, nvCompletionFailed, NVK_CONTEXT, NVK_REMOTE } from "./nv";
import { initTurnsGive, turnOfContext } from "./initmap";
import { remoteNvDone } from "./remote/pair";
import { prngSeed } from "./prng";
import { reservationsNexusLost } from "./scsi/pr";
import { statInc } from "./stats";
import { trace } from "./trace";

// Per-session state in the channel IOP's private area, shared by every port kind.
export const SS_BYTES: u32 = 2816;
export const SS_OPEN: u32 = 0; // u32: 1 while the firmware serves the session
export const SS_LAST_RX_NS: u32 = 8; // f64: when the rx ring last gained bytes (partial-frame timeout)
export const SS_RX_SEEN: u32 = 16; // u32: rx bytes waiting when last looked
export const SS_OUTSTANDING: u32 = 20; // u32: commands in flight
export const SS_TX_PENDING: u32 = 24; // u32: output produced since the last doorbell
export const SS_SENSE: u32 = 32; // 18 bytes: last sense, for REQUEST SENSE
export const SS_SENSE_LUN: u32 = 50; // u16
export const SS_SENSE_VALID: u32 = 52; // u8
export const SS_ACTIVE_NS: u32 = 56; // f64: when the session last received a byte or had a command in flight (idle timeout)
// The initiator on this session (I_T nexus identity): what LUN masking and persistent reservations
// read. iSCSI: the InitiatorName and ISID of the login; framed: "framed:" and the host's frame
// address; queue: "inproc:" and the session slot (docs/design-notes.md, "Initiator identity").
export const SS_IDENTITY: u32 = 64; // IDENTITY_NAME_BYTES: name, NUL-terminated
export const SS_ISID: u32 = 288; // 6 bytes: iSCSI ISID (zero for other kinds)
export const SS_IDENTITY_KIND: u32 = 294; // u8: PORT_* of the transport that set the identity
export const SS_RX_TAIL: u32 = 296; // u32: the rx ring's tail when last looked (idle timeout)
export const SS_TAGS: u32 = 512; // TAG_SLOTS x (tag u32, context index + 1 u32)
export const IDENTITY_NAME_BYTES: u32 = 224;
export const SS_UA: u32 = 2560; // 256 bytes: the I_T nexus's pending unit attentions (scsi/ua.ts)
const TAG_SLOTS: u32 = 256;
const TAG_ENTRY_BYTES: u32 = 8;

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
/** The session state kept by channel IOP `iop` (another IOP's, for the management lists). */
export function sessionStateOf(iop: u32, port: u32, s: u32): usize {
  const priv: usize = load<u32>(iopEntry(iop) + MIOP_PRIVATE);
  return <usize>load<u32>(priv + CP_SESS_BASE) + <usize>(port * MAX_SESSIONS + s) * SS_BYTES;
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
@inline export function portOwned(port: u32): bool { return <u32>load<u8>(cfgPort(port) + CPORT_IOP) == gIndex; }
// @ts-ignore: decorator
@inline export function scratch(): usize { return load<u32>(gPrivate + CP_SCRATCH); }
// @ts-ignore: decorator
@inline export function image(): usize { return load<u32>(gPrivate + CP_IMAGE); }
/** The port kind's own per-session area (comm/transport.ts sizes it), 0 for kinds that keep none. */
// @ts-ignore: decorator
@inline export function portExtState(port: u32, s: u32, bytes: u32): usize {
  const base = load<u32>(gPrivate + CP_PORT_EXT + port * 4);
  return base == 0 ? 0 : <usize>base + <usize>s * bytes;
}

function buffersBytes(): usize { return <usize>min<u32>(cfg32(CFG_BUFFER_CHUNKS), 64) * BUFFER_CHUNK_BYTES; }

function portExtBytes(): usize {
  let bytes: usize = 0;
  for (let port: u32 = 0; port < portCount(); port++) bytes += <usize>transportSessionBytes(portKind(port)) * MAX_SESSIONS;
  return bytes;
}

export function channelPrivateBytes(): usize {
  return <usize>CP_HEADER_BYTES + <usize>cfg32(CFG_CONTEXTS) * CTX_BYTES + buffersBytes() + BUFFER_MAP_BYTES
    + <usize>portCount() * MAX_SESSIONS * SS_BYTES + portExtBytes() + 4096 + 64;
}

export function channelBoot(): void {
  let p = gPrivate + CP_HEADER_BYTES;
  store<u32>(gPrivate + CP_CTX_BASE, <u32>p);
  p += <usize>cfg32(CFG_CONTEXTS) * CTX_BYTES;
  store<u32>(gPrivate + CP_BUF_BASE, <u32>p);
  p += buffersBytes();
  store<u32>(gPrivate + CP_BUF_MAP, <u32>p);
  p += BUFFER_MAP_BYTES;
  store<u32>(gPrivate + CP_SESS_BASE, <u32>p);
  memory.fill(p, 0, <usize>portCount() * MAX_SESSIONS * SS_BYTES);
  p += <usize>portCount() * MAX_SESSIONS * SS_BYTES;
  for (let port: u32 = 0; port < MAX_PORTS; port++) {
    const bytes = port < portCount() ? <usize>transportSessionBytes(portKind(port)) * MAX_SESSIONS : 0;
    store<u32>(gPrivate + CP_PORT_EXT + port * 4, bytes == 0 ? 0 : <u32>p);
    memory.fill(p, 0, bytes);
    p += bytes;
  }
  store<u32>(gPrivate + CP_SCRATCH, <u32>p);
  store<u32>(gPrivate + CP_IMAGE, <u32>(p + 4096));
  ctxInit();
  prngSeed();
}

export function channelPoll(): i32 {
  let work: i32 = 0;
  for (let port: u32 = 0; port < portCount(); port++) {
    if (!portOwned(port)) continue;
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
  const state = atomic.load<u32>(d + SES_STATE);
  if (state == SESS_OPEN) {
    const gen = atomic.load<u32>(d + SES_GENERATION);
    if (gen != load<u32>(d + SES_FW_GENERATION)) openSession(port, s, gen);
    if (load<u32>(d + SES_HANGUP) != HANGUP_NONE) return 0; // closing at our request: nothing more is read
    const kind = portKind(port);
    return transportReceive(port, s) + (kind == PORT_STREAM || kind == PORT_NBD ? idleCheck(port, s) : 0);
  }
  if (state == SESS_CLOSING) {
    closeSession(port, s);
    store<u32>(d + SES_HANGUP, HANGUP_NONE);
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
  store<u32>(sessionDesc(port, s) + SES_HANGUP, HANGUP_NONE);
  transportOpen(port, s);
  statInc(STAT_SESSIONS_OPENED);
  trace(TRACE_SESSION, (port << 16) | s, 1, 0, 0);
}

/** Drops the session's commands: acknowledged writes are in the cache already; the rest may or may not apply. */
function closeSession(port: u32, s: u32): void {
  const aborted = abortSession(port, s);
  reservationsNexusLost(port, s); // RESERVE (6)/(10) reservations end with the nexus
  transportClose(port, s);
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
  const aborted = abortSession(port, s);
  memory.fill(ss + SS_TAGS, 0, TAG_SLOTS * TAG_ENTRY_BYTES);
  store<u32>(ss + SS_OUTSTANDING, 0);
  store<u8>(ss + SS_SENSE_VALID, 0);
  trace(TRACE_SESSION, (port << 16) | s, 1, aborted, 0);
}

/**
 * Asks the binding to hang up a framed or NBD stream session that has had no command in flight and
 * received nothing for the port's idle time, so idle or half-sent connections cannot hold every
 * session of a port (docs/hal.md, Channels). iSCSI ports keep their own liveness (NOP-In pings).
 * Returns 1 when it asked.
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
  sessionHangUp(port, s, HANGUP_IDLE);
  return 1;
}

/** Ends every command of the session without a status (also those already answered that go on). */
export function abortSession(port: u32, s: u32): u32 { return abortWhere(port, s, ANY, ABORT_SILENT); }

/**
 * Asks the binding to close the connection (the tx doorbell tells it): HANGUP_PROTOCOL once what
 * the tx ring holds has gone out (a logout, a failed login, an error after which the byte stream
 * cannot be trusted), HANGUP_IDLE at once. Nothing more is read from it; its commands are dropped
 * when the binding reports the close.
 */
export function sessionHangUp(port: u32, s: u32, why: u32 = HANGUP_PROTOCOL): void {
  store<u32>(sessionDesc(port, s) + SES_HANGUP, why);
  markTx(port, s);
}

/**
 * A volume was fenced for deletion: this IOP's commands of it, on every port and session, end now
 * with ABORTED COMMAND, TARGET OPERATING CONDITIONS HAVE CHANGED (3Fh/00h), whatever step they are
 * at (held by their transport included); then the IOP says it holds none (the delete waits for
 * every channel IOP).
 */
function purgeFenced(): i32 {
  const gen = fenceGeneration();
  if (gen == load<u32>(gPrivate + CP_FENCE_GEN)) return 0;
  store<u32>(gPrivate + CP_FENCE_GEN, gen);
  let work: i32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    if (!volumeFenced(v) || fenceAcked(v, gIndex)) continue;
    work += <i32>abortWhere(ANY, ANY, v, abortSense(0x0B, 0x3F, 0x00));
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
    if ((id >> 28) == NVK_REMOTE) remoteNvDone(id & 0x0FFFFFFF, status); // a remote pair's issuing-ID lease
    const c = ctxById(id & 0x0FFFFFFF);
    if (c != 0 && (id >> 28) == NVK_CONTEXT) {
      const p = load<u32>(c + CX_NV_PENDING);
      if (p > 0) store<u32>(c + CX_NV_PENDING, p - 1);
      if (status != 0) store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_NV_FAILED);
      // A DELETE VOLUME's init map clears are in (a failure has made the file degraded): the turns go.
      if (p <= 1) initTurnsGive(turnOfContext(gIndex, id & 0x0FFFFFFF));
    }
    ringRelease(gNvCq, 1);
    n++;
    e = ringPeek(gNvCq);
  }
  return n;
}

function ringTxDoorbells(): void {
  for (let port: u32 = 0; port < portCount(); port++) {
    if (!portOwned(port)) continue;
    const n = portSessions(port);
    for (let s: u32 = 0; s < n; s++) {
      const ss = sessionState(port, s);
      if (load<u32>(ss + SS_TX_PENDING) == 0) continue;
      store<u32>(ss + SS_TX_PENDING, 0);
      const d = sessionDesc(port, s);
      ringRing(load<u32>(d + (portKind(port) == PORT_QUEUE ? SES_CQ : SES_TX)));
    }
  }
}

// @ts-ignore: decorator
@inline export function markTx(port: u32, s: u32): void { store<u32>(sessionState(port, s) + SS_TX_PENDING, 1); }

/**
 * The command's sense data at dst when its status is CHECK CONDITION, remembered for REQUEST
 * SENSE on its session and LUN. Returns the sense length: SENSE_BYTES, or 0 for other statuses.
 */
export function responseSense(c: usize, dst: usize): u32 {
  if (load<u8>(c + CX_STATUS) != 0x02) return 0;
  ctxSense(c, dst);
  const ss = sessionState(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
  memory.copy(ss + SS_SENSE, dst, SENSE_BYTES);
  store<u16>(ss + SS_SENSE_LUN, load<u16>(c + CX_LUN));
  store<u8>(ss + SS_SENSE_VALID, 1);
  return SENSE_BYTES;
}

/** Sense for a status sent without a context (txDirect): SENSE_BYTES at dst for CHECK CONDITION, else 0. */
export function directSense(dst: usize, status: u32, key: u32, asc: u32, ascq: u32): u32 {
  if (status != 0x02) return 0;
  senseFixed(dst, key, asc, ascq, 0, false, 0);
  return SENSE_BYTES;
}

// ---- Initiator identity -----------------------------------------------------------------------------

/** Sets the session's initiator identity: `length` bytes of name (cut to fit) and an ISID (0: none). */
export function setIdentity(port: u32, s: u32, name: usize, length: u32, isid: usize): void {
  const ss = sessionState(port, s);
  const n = min<u32>(length, IDENTITY_NAME_BYTES - 1);
  memory.copy(ss + SS_IDENTITY, name, n);
  memory.fill(ss + SS_IDENTITY + n, 0, IDENTITY_NAME_BYTES - n);
  if (isid != 0) memory.copy(ss + SS_ISID, isid, 6); else memory.fill(ss + SS_ISID, 0, 6);
  store<u8>(ss + SS_IDENTITY_KIND, <u8>portKind(port));
}

/** The session's initiator name (NUL-terminated), empty until the transport has set it. */
export function identityName(port: u32, s: u32): usize { return sessionState(port, s) + SS_IDENTITY; }

// ---- Tags -----------------------------------------------------------------------------------------
// Open addressing over the session's tags in flight, 32-bit (iSCSI's Initiator Task Tag; framed and
// queue tags are narrower). Fibonacci hashing spreads sequential tags over the table.

// @ts-ignore: decorator
@inline function tagHome(tag: u32): u32 { return (tag * 0x9E3779B1) >> 24; }
// @ts-ignore: decorator
@inline function tagSlot(t: usize, i: u32): usize { return t + <usize>i * TAG_ENTRY_BYTES; }

/** The context index + 1 of a tag in flight on the session, or 0. */
export function tagFind(port: u32, s: u32, tag: u32): u32 {
  const t = sessionState(port, s) + SS_TAGS;
  let i = tagHome(tag);
  for (let probe: u32 = 0; probe < TAG_SLOTS; probe++) {
    const e = tagSlot(t, i);
    const ctx1 = load<u32>(e + 4);
    if (ctx1 == 0) return 0;
    if (load<u32>(e) == tag) return ctx1;
    i = (i + 1) & (TAG_SLOTS - 1);
  }
  return 0;
}

/** Inserts a tag; the caller has checked it is absent and that the session has room (SESSION_QUEUE_DEPTH < TAG_SLOTS). */
export function tagInsert(port: u32, s: u32, tag: u32, ctx1: u32): void {
  const t = sessionState(port, s) + SS_TAGS;
  let i = tagHome(tag);
  while (load<u32>(tagSlot(t, i) + 4) != 0) i = (i + 1) & (TAG_SLOTS - 1);
  store<u32>(tagSlot(t, i), tag);
  store<u32>(tagSlot(t, i) + 4, ctx1);
}

/** Removes a tag, shifting later entries of its probe run back (no tombstones). */
export function tagRemove(port: u32, s: u32, tag: u32): void {
  const t = sessionState(port, s) + SS_TAGS;
  const mask = TAG_SLOTS - 1;
  let i = tagHome(tag);
  let found = false;
  for (let probe: u32 = 0; probe < TAG_SLOTS; probe++) {
    const e = tagSlot(t, i);
    if (load<u32>(e + 4) == 0) return;
    if (load<u32>(e) == tag) { found = true; break; }
    i = (i + 1) & mask;
  }
  if (!found) return;
  let hole = i;
  let j = (i + 1) & mask;
  while (true) {
    const e = tagSlot(t, j);
    if (load<u32>(e + 4) == 0) break;
    const home = tagHome(load<u32>(e));
    // Move e into the hole if its home is not in (hole, j] cyclically.
    const between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) { store<u64>(tagSlot(t, hole), load<u64>(e)); hole = j; }
    j = (j + 1) & mask;
  }
  store<u64>(tagSlot(t, hole), 0);
}

export function sessionOutstandingAdd(port: u32, s: u32, n: i32): u32 {
  const p = sessionState(port, s) + SS_OUTSTANDING;
  const v = <u32>(<i32>load<u32>(p) + n);
  store<u32>(p, v);
  return v;
}

/** True for the port kind whose sessions speak iSCSI. */
// @ts-ignore: decorator
@inline export function isIscsiPort(port: u32): bool { return portKind(port) == PORT_ISCSI; }
