// The array's end of a link (document 003's communication unit between storage units; docs/remote.md,
// "The array's link unit"): a port of kind PORT_LINK, one per channel IOP and link, with one session
// whose rings carry inter-array packets (remote/packet.ts). Behind the transport seam it serves two
// roles, each a command context the processing sequencer steps as it steps a host's:
//
//   receive (the remote unit, 003 [0075]): a WRITE becomes a WRITE of the target volume through the
//     ordinary write path: buffer memory for the window -> READY -> DATA into the window -> commit to
//     cache and NV -> RECEIVED (its status) — so nothing is acknowledged before NV holds it. One
//     pair's writes are applied in issuing-ID order (S586): a WRITE whose predecessor is not applied
//     yet is held (HELD_MAX per pair; beyond, dropped and sent again by its sender); one already
//     applied is answered again, never applied twice.
//   send (the origin, Figs. 4 and 7): a READ of the local volume whose data-in goes out as the DATA of
//     a WRITE to the first hop (remote/mirror.ts starts them): WRITE -> READY -> DATA (the read path
//     stages what is not in cache) -> RECEIVED; through a relay, FORWARDED after (S129). A READY that
//     asks again from an earlier byte rewinds the read. Every wait has a deadline; after the pair's
//     retries the command fails with LOGICAL UNIT COMMUNICATION TIMEOUT and the pair is suspended.
import {
  LINK_HEADER_BYTES, LINK_PAYLOAD_BYTES, LT_WRITE, LT_READY, LT_DATA, LT_RECEIVED, LT_FORWARDED, LF_LAST, LF_REDUNDANT, LF_MIRROR,
  LOP_NONE, LOP_CREATE, LOP_DELETE, LOP_REFLECT, LF_DELAYED, SES_RX, SES_TX, CPORT_LINK_QUEUE, CPORT_LINK_INDEX, CPORT_KIND, CPORT_IOP, PORT_LINK,
  TRACE_REMOTE_SEND, TRACE_REMOTE_ACK, TRACE_REMOTE_APPLY, TRACE_REMOTE_DROPPED, TRACE_REMOTE_PARTS, RDROP_APPLIED, RDROP_APPLYING, LPK_VOLUME_BYTES, LF_STORED,
} from "../abi";
import {
  CX_TRANSPORT, CX_STATE, CX_PORT, CX_SESSION, CX_TAG, CX_ID, CX_VOLUME, CX_CURSOR, CX_LENGTH, CX_FLAGS, CX_STATUS,
  CX_SENSE_KEY, CX_ASC, CX_ASCQ, CX_TRANSPORT_BYTES, CX_WIN_START, CX_WIN_LEN, CX_WIN_RECEIVED, CX_ARG, CXF_RESPONDED, ST_READ,
  ST_WRITE_DATA, ST_WRITE_COMMIT, WIN_RETRY, CX_LBA, WIN_ASKED, WIN_ARRIVED, ctxBuffer, ctxBufferAddr, ctxById, activeFirst, activeNext,
} from "../ctx";
import { cfgPort, portCount } from "../config";
import { gNow, gIndex, wakeAt } from "../iop";
import { sessionDesc, portExtState, scratch, tagRemove, sessionOutstandingAdd } from "../channel";
import { cmdBegin, startRead, startWrite, fail, good } from "../sequencer";
import { nvId, NVK_NONE } from "../nv";
import { Packet, pkt, pktBegin, pktSend, pktNext, pktLba, pktSetLba } from "../remote/packet";
import {
  remote, heldAt, myNode, routeTo, remoteOfVolume, remoteSuspend, remoteSetState, remoteIssue, remoteReset, remoteRelease,
  remoteLeaseReadyAll, remotePersistDue, HELD_MAX, REMOTE_PAIRS, RemotePair,
  RR_SECONDARY, RS_PAIR, RS_FAILOVER, RSR_LINK, RSR_REMOTE, RSR_RELAY, RSR_READ, RSR_NONE,
} from "../remote/pair";
import { volumeByName, blockSize, capacityBlocks, volumeReady } from "../volume";
import { trace } from "../trace";
import { ringRelease } from "../ring";
import { remoteCopyStep, ST_REMOTE } from "../remote/mirror";
import { asyncStep, journalData, journalFinished, orderApplied, orderShared, orderCreate, createWord, diffMark, heldEarly } from "../remote/async";
import { log, LOG_WARN } from "../hal";
import { rdLinkPacket, rdLinkService, rdUnitHere, rdSendBegin, rdMaxBytes } from "../remote/rdlink";
import { rdFill, rdArm, rdRelease, rdTag, rdCopyOut, rdSlotState, rdSlotStatus, rdSlotCmdId, rdSlotPeer, rdSlotIssuing, RD_SEND_DONE, RD_RECV_STORING, RD_STATUS_TIMEOUT } from "../remote/redundancy";
import { routeHop, routeHas, routeTell, routeEnded, routeFailureCounts, routeFirstOk } from "../remote/route";
import { snapLinkCreated } from "../remote/snaplink";
import { standbyIncoming, standbyData, standbyStep, standbyWindow, standbyApplyDone, standbyHoldsSends, standbyPacketFlags, standbyRelease } from "../remote/standby";

// Per-session state of a link port (comm/transport.ts sizes it).
export const LINK_SESSION_BYTES: u32 = 64;
const LS_TAG: u32 = 0; // u32: the last tag given to a context of this session
const LS_CUR: u32 = 4; // u32: the packet being answered while cmdBegin runs (linkDirect answers it), else 0
const LS_BAD: u32 = 8; // u64: packets dropped (CRC, magic, length, unknown command)

// The context's transport area (CX_TRANSPORT) on a link port.
@unmanaged class LinkCmd {
  deadlineNs: f64;
  giveUpNs: f64; // send, waiting for FORWARDED: asked again every timeout until this
  role: u8; // LR_*
  pair: u8;
  op: u8; // send: LOP_*
  retries: u8; // send: repeats so far
  srcNode: u16; // receive: who sent the WRITE (answers go back to it)
  srcQueue: u8;
  waitFor: u8; // send: LW_* — what the deadline is for
  cmdId: u32; // receive: the sender's command identifier; send: this context's CX_ID
  issuingId: u32;
  got: u32; // receive: mask of the packets arrived; send: with LXF_RD the redundancy unit's slot, else the key of its set of stripes or copies (remote/route.ts; 0: none): groupOf
  flags: u32; // LXF_*
  answer: u32; // status << 24 | key << 16 | asc << 8 | ascq: of RECEIVED, FORWARDED or the failure
  parent: u32; // send: the CX_ID of the host command waiting for this one (0: none)
  serial: u32; // send: the pair's serial when issued: an answer for an older incarnation changes nothing
  syncId: u32; // send: the synchronization ID the WRITE carries (the pair's when issued; a repeat keeps it)
  byteOffset: u64; // send: the volume byte offset the WRITE names; apply: the address of its data in buffer memory
}

/** A send command's set key (remote/route.ts; 0: none). Redundancy is direct only, sets are over relays: never both; a journal send is never one of a set. */
// @ts-ignore: decorator
@inline function groupOf(x: LinkCmd): u32 { return (x.flags & (LXF_RD | LXF_JOURNAL)) != 0 ? 0 : x.got; }

const LR_SEND: u8 = 1;
const LR_RECEIVE: u8 = 2;
const LR_APPLY: u8 = 3; // a run of a standby unit written to the volume (remote/standby.ts): no packet answers it
const LR_FETCH: u8 = 4; // a read of the volume into buffer memory for a snapshot unit's move home (remote/snaplink.ts, linkFetch)
const LW_READY: u8 = 1;
const LW_RECEIVED: u8 = 2;
const LW_FORWARDED: u8 = 3;

const LXF_WRITE_DUE: u32 = 1; // send: the WRITE is to be sent (again)
const LXF_READY: u32 = 2; // send: the next hop said READY
const LXF_RECEIVED: u32 = 4; // send: RECEIVED came
const LXF_DONE: u32 = 8; // send: finished, the context ends at its next respond step
const LXF_READY_DUE: u32 = 16; // receive: READY is to be sent (again)
const LXF_BUSY: u32 = 128; // send: the far end answered BUSY (a standby's full buffer): asked again after a timeout
/** send: a command of the initial copy (remote/mirror.ts counts it in the pair). */
export const LXF_COPY: u32 = 32;
/** Redundancy-processed (remote/rdlink.ts): `got` is the unit's slot; the unit sends and receives the packets. */
const LXF_RD: u32 = 64;
// Bits 8 to 15 carry the WRITE's LF_* flags (sendWrite); LXF_* flags go on from bit 16.
/** send: a journal entry of an async pair (remote/async.ts): its data comes from the entry, whose index is in `got`. */
const LXF_JOURNAL: u32 = 0x10000;

/** In the parent's CX_FLAGS: its remote command has ended, well or not (remote/mirror.ts reads them). */
export const CXF_REMOTE_DONE: u32 = 0x1000000;
export const CXF_REMOTE_FAILED: u32 = 0x2000000;

/** The longest command: one window of the secondary, and what a relay takes (32 packets). */
export const LINK_MAX_COMMAND_BYTES: u32 = 32 * LINK_PAYLOAD_BYTES;
/** The longest send command of pair p: with redundancy, one block of N packets. */
export function linkMaxBytes(p: u32): u32 { return rdMaxBytes(p, LINK_MAX_COMMAND_BYTES); }

// @ts-ignore: decorator
@inline function lx(c: usize): LinkCmd { return changetype<LinkCmd>(c + CX_TRANSPORT); }
function sess(port: u32): usize { return portExtState(port, 0, LINK_SESSION_BYTES); }
function rxOf(port: u32): usize { return <usize>load<u32>(sessionDesc(port, 0) + SES_RX); }
function txOf(port: u32): usize { return <usize>load<u32>(sessionDesc(port, 0) + SES_TX); }
function queueOf(port: u32): u32 { return load<u32>(cfgPort(port) + CPORT_LINK_QUEUE); }

/** This IOP's link port toward node n (its queue on the first link of the route), or -1. */
export function linkPortToward(n: u32): i32 {
  const link = routeTo(n);
  if (link == 0xFFFF) return -1;
  for (let port: u32 = 0; port < portCount(); port++) {
    const c = cfgPort(port);
    if (<u32>load<u8>(c + CPORT_KIND) == PORT_LINK && <u32>load<u8>(c + CPORT_IOP) == gIndex && load<u32>(c + CPORT_LINK_INDEX) == link) return <i32>port;
  }
  return -1;
}

export function linkOpen(port: u32, s: u32): void {
  assert(offsetof<LinkCmd>() <= CX_TRANSPORT_BYTES, "link: LinkCmd does not fit the context's transport area");
  memory.fill(portExtState(port, s, LINK_SESSION_BYTES), 0, LINK_SESSION_BYTES);
}

// ---- Receiving -----------------------------------------------------------------------------------

/** Every packet waiting on the link port; then held WRITEs whose turn has come. Returns the work done. */
export function linkReceive(port: u32, s: u32): i32 {
  const rx = rxOf(port);
  let work: i32 = 0;
  for (let p = pktNext(rx, sess(port) + LS_BAD); p != 0; p = pktNext(rx, sess(port) + LS_BAD)) {
    packet(port, p);
    ringReleaseOne(rx);
    work++;
  }
  linkService(port);
  return work + rdLinkService() + startHeld(port) + standbyStep(port) + remoteCopyStep() + asyncStep() + remotePersistDue();
}

function ringReleaseOne(rx: usize): void { ringRelease(rx, 1); }

function packet(port: u32, p: usize): void {
  const h = pkt(p);
  if ((<u32>h.flags & LF_REDUNDANT) != 0) { rdLinkPacket(port, p); return; } // embodiments 5, 6: the redundancy unit's
  const type = <u32>h.type;
  if (type == LT_WRITE) { incomingWrite(port, p); return; }
  if (type == LT_DATA) { incomingData(port, p); return; }
  // Answers to this array's own commands name them by CX_ID.
  const c = ctxById(h.cmdId);
  if (c == 0 && type == LT_FORWARDED && h.status != 0) { storedRefused(p); return; }
  if (c == 0 || <u32>load<u8>(c + CX_PORT) != port || lx(c).role != LR_SEND) return; // late: the command has ended
  // An answer names the issuing ID of what it answers: one for another command that had this CX_ID
  // (before a restart of this array: IDs go on from the lease, remote/pair.ts) changes nothing.
  if (h.issuingId != lx(c).issuingId) return;
  if (type == LT_READY) answerReady(c, p);
  else if (type == LT_RECEIVED) answerReceived(c, p);
  else if (type == LT_FORWARDED) answerForwarded(c, p);
}

/**
 * A FORWARDED with an error for a command that has ended: a relay with NV buffer memory could not
 * deliver a write this array counted done at its RECEIVED (LF_STORED). The pair whose secondary
 * volume it named, routed through that relay, is suspended (reason relay): it lacks an acknowledged write.
 */
function storedRefused(p: usize): void {
  const h = pkt(p);
  for (let pi: u32 = 0; pi < REMOTE_PAIRS; pi++) {
    const r = remote(pi);
    if (r.used == 0 || r.role == RR_SECONDARY || r.viaRelay == 0) continue;
    if (r.peerVolume0 != h.volume0 || r.peerVolume1 != h.volume1 || r.peerVolume2 != h.volume2) continue;
    if (!routeHas(pi, <u32>h.srcNode)) continue;
    log(LOG_WARN, "remote: a relay could not deliver a write it had stored; the pair is suspended (pair, issuing ID)", pi, h.issuingId);
    remoteSuspend(pi, RSR_RELAY, h.cmdId);
  }
}

/** The volume named by the packet (LPK_VOLUME, at most 12 bytes), or -1. */
function packetVolume(p: usize): i32 { return volumeOfName(p + offsetof<Packet>("volume0")); }

/** The volume whose name is the LPK_VOLUME_BYTES at `at` (NUL padded), or -1. */
export function volumeOfName(at: usize): i32 {
  const name = scratch() + 2048;
  memory.fill(name, 0, 32);
  memory.copy(name, at, LPK_VOLUME_BYTES);
  return volumeByName(name);
}

/** writeVerdict: apply the write now; hold it until its predecessors are applied. Else a status word. */
export const WV_APPLY: u32 = 0xFFFFFFFF;
export const WV_HOLD: u32 = 0xFFFFFFFE;
// @ts-ignore: decorator
@inline function checkWord(key: u32, asc: u32, ascq: u32): u32 { return (0x02 << 24) | (key << 16) | (asc << 8) | ascq; }

/**
 * What a remote WRITE of volume v (-1: none) from array `origin` with issuing ID `issuingId` meets
 * here: WV_APPLY, WV_HOLD (S586 order), or the status word of the answer: 0 (applied already,
 * answered again), or CHECK CONDITION with the sense that says why not.
 */
/** Volume v is the secondary of a live pair of `origin`: 0; else the answer (checkWord). */
function secondaryVerdict(v: i32, origin: u32): u32 {
  const pr = v < 0 ? -1 : remoteOfVolume(<u32>v);
  if (pr < 0 || remote(<u32>pr).role != RR_SECONDARY || <u32>remote(<u32>pr).peerNode != origin) return checkWord(0x05, 0x86, 0x00); // ILLEGAL REQUEST: no such remote pair here
  const r = remote(<u32>pr);
  if (r.state == RS_FAILOVER || r.broken != 0) return checkWord(0x07, 0x27, 0x00); // DATA PROTECT
  return 0;
}

export function writeVerdict(v: i32, origin: u32, issuingId: u32, total: u32, lba: u64): u32 {
  const s = secondaryVerdict(v, origin);
  if (s != 0) return s;
  const pi = <u32>remoteOfVolume(<u32>v);
  const r = remote(pi);
  if (issuingId <= r.issued) return 0; // applied already: answered again
  if (applying(pi) != 0 || issuingId != r.issued + 1) return WV_HOLD;
  const bs = blockSize(<u32>v);
  if (total == 0 || total > LINK_MAX_COMMAND_BYTES || total % bs != 0 || lba + <u64>(total / bs) > capacityBlocks(<u32>v)) return checkWord(0x05, 0x21, 0x00); // LOGICAL BLOCK ADDRESS OUT OF RANGE
  if (!volumeReady(<u32>v)) return checkWord(0x02, 0x04, 0x03);
  return WV_APPLY;
}

function incomingWrite(port: u32, p: usize): void {
  const h = pkt(p);
  const v = packetVolume(p);
  if (h.op == <u8>LOP_CREATE) { controlCreate(port, p, v); return; }
  if (h.op == <u8>LOP_DELETE) { controlDelete(port, p, v); return; }
  // Embodiment 7: delay writes and reflecting commands of a secondary go to the pair's standby unit, which orders them itself.
  if (h.op == <u8>LOP_REFLECT || (<u32>h.flags & LF_DELAYED) != 0) {
    const s = secondaryVerdict(v, <u32>h.origin);
    if (s != 0) { answerDirect(port, p, LT_RECEIVED, s >> 24, (s >> 16) & 0xFF, (s >> 8) & 0xFF, s & 0xFF); return; }
    standbyIncoming(port, p, <u32>remoteOfVolume(<u32>v));
    return;
  }
  const w = writeVerdict(v, <u32>h.origin, h.issuingId, h.total, pktLba(p));
  if (w == WV_APPLY) { apply(port, p, <u32>v, <u32>remoteOfVolume(<u32>v)); return; }
  if (w == 0) traceDropped(p, RDROP_APPLIED, <u32>remoteOfVolume(<u32>v), 0); // trace10: a copy or repeat of an applied ID
  if (w != WV_HOLD) { answerDirect(port, p, LT_RECEIVED, w >> 24, (w >> 16) & 0xFF, (w >> 8) & 0xFF, w & 0xFF); return; }
  const pi = <u32>remoteOfVolume(<u32>v);
  const active = applying(pi);
  if (active != 0) {
    const a = lx(active);
    if (a.issuingId == h.issuingId) {
      // The same command again (its READY or our RECEIVED was lost): ask again from what is missing.
      if (a.srcNode == h.srcNode && a.srcQueue == h.srcQueue && a.cmdId == h.cmdId) a.flags |= LXF_READY_DUE;
      else traceDropped(p, RDROP_APPLYING, pi, 0); // trace10: another copy of the set, being applied
      return;
    }
  }
  hold(pi, port, p);
}

/** trace10: a TRACE_REMOTE_DROPPED record of packet p (reason RDROP_*, pair pi on this array or 0xFFFF, part of a redundancy-processed block). */
export function traceDropped(p: usize, reason: u32, pi: u32, part: u32): void {
  const h = pkt(p);
  trace(TRACE_REMOTE_DROPPED, (<u32>h.srcNode << 16) | (reason << 8) | (part & 0xFF), h.cmdId, h.issuingId, pi);
}

/** The receive context applying a write of pair pi now, or 0. */
function applying(pi: u32): usize {
  for (let c = activeFirst(); c != 0; c = activeNext(c)) {
    if (<u32>load<u8>(c + CX_PORT) < portCount() && portKindIs(c) && lx(c).role == LR_RECEIVE && orderShared(<u32>lx(c).pair, pi)) return c; // one at a time per order (a consistency group: remote/async.ts)
  }
  return 0;
}

function portKindIs(c: usize): bool { return <u32>load<u8>(cfgPort(<u32>load<u8>(c + CX_PORT)) + CPORT_KIND) == PORT_LINK; }

/** Keeps a WRITE back until its predecessors are applied (replacing an older copy of it). */
function hold(pi: u32, port: u32, p: usize): void {
  let free: i32 = -1;
  for (let i: u32 = 0; i < HELD_MAX; i++) {
    const e = heldAt(pi, i);
    if (load<u32>(e + 68) == 0) { if (free < 0) free = <i32>i; continue; }
    if (pkt(e).issuingId == pkt(p).issuingId) { memory.copy(e, p, LINK_HEADER_BYTES); store<u32>(e + 64, port); return; }
  }
  if (free < 0) return; // full: dropped; its sender repeats it
  heldEarly(); // a gap: counted for REMOTE STATUS (remote/async.ts)
  const e = heldAt(pi, <u32>free);
  memory.copy(e, p, LINK_HEADER_BYTES);
  store<u32>(e + 64, port);
  store<u32>(e + 68, 1);
}

/** Starts the held WRITE whose turn has come, for pairs whose WRITEs arrive on this IOP's port. */
function startHeld(port: u32): i32 {
  let work: i32 = 0;
  for (let pi: u32 = 0; pi < REMOTE_PAIRS; pi++) {
    const r = remote(pi);
    if (r.used == 0 || r.role != RR_SECONDARY) continue;
    for (let i: u32 = 0; i < HELD_MAX; i++) {
      const e = heldAt(pi, i);
      if (load<u32>(e + 68) == 0 || load<u32>(e + 64) != port) continue;
      const id = pkt(e).issuingId;
      if (id <= r.issued) { store<u32>(e + 68, 0); continue; } // applied meanwhile (a copy of it came)
      if (id != r.issued + 1 || applying(pi) != 0) continue;
      store<u32>(e + 68, 0);
      incomingWrite(port, e);
      work++;
    }
  }
  return work;
}

/** Starts applying a WRITE (writeVerdict said WV_APPLY): a WRITE of the volume through the ordinary write path. */
function apply(port: u32, p: usize, v: u32, pi: u32): void {
  const h = pkt(p);
  const c = begin(port, p, h.total, false);
  if (c == 0) return;
  receiveContext(c, v, pi, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId, h.issuingId, pktLba(p), h.total);
}

function receiveContext(c: usize, v: u32, pi: u32, srcNode: u32, srcQueue: u32, cmdId: u32, issuingId: u32, lba: u64, bytes: u32): void {
  const x = lx(c);
  x.role = LR_RECEIVE;
  x.pair = <u8>pi;
  x.srcNode = <u16>srcNode;
  x.srcQueue = <u8>srcQueue;
  x.cmdId = cmdId;
  x.issuingId = issuingId;
  store<u16>(c + CX_VOLUME, <u16>v);
  startWrite(c, lba, bytes / blockSize(v), false);
}

/**
 * S327 of embodiment 5: the block rebuilt in slot `slot` of this IOP's redundancy unit is applied to
 * volume v of pair pi (writeVerdict said WV_APPLY) as a WRITE on link port `port`; its window is
 * the slot's data (linkWindow), and the respond step answers RECEIVED through the unit. False when
 * no context is free now.
 */
export function linkApplyBlock(port: u32, v: u32, pi: u32, lba: u64, bytes: u32, slot: u32): bool {
  const c = begin(port, 0, bytes, false);
  if (c == 0) return false;
  const u = rdUnitHere();
  lx(c).flags = LXF_RD;
  lx(c).got = slot;
  receiveContext(c, v, pi, rdSlotPeer(u, slot), 0, rdSlotCmdId(u, slot), rdSlotIssuing(u, slot), lba, bytes);
  return true;
}

/** A context on the link port's session for a command of `bytes` (data-in for a send, data-out for a receive). */
function begin(port: u32, p: usize, bytes: u32, dataIn: bool): usize {
  const ls = sess(port);
  const tag = load<u32>(ls + LS_TAG) + 1;
  store<u32>(ls + LS_TAG, tag);
  const cdb = scratch() + 2048 + 64;
  memory.fill(cdb, 0, 16);
  store<u8>(cdb, dataIn ? 0x88 : 0x8A); // READ(16) / WRITE(16): what the context does, for the trace and abort scopes
  store<u32>(ls + LS_CUR, <u32>p);
  const c = cmdBegin(port, 0, tag, 0xFFFF, cdb, 16, !dataIn, dataIn, bytes, 0, 0, 0);
  store<u32>(ls + LS_CUR, 0);
  return c; // ctxAlloc gives it zeroed: its LinkCmd too
}

/** DATA for a receive context: into its window; all there: the window goes to the commit (S585). */
function incomingData(port: u32, p: usize): void {
  const h = pkt(p);
  for (let c = activeFirst(); c != 0; c = activeNext(c)) {
    if (<u32>load<u8>(c + CX_PORT) != port) continue;
    const x = lx(c);
    if (x.role != LR_RECEIVE || x.srcNode != h.srcNode || x.cmdId != h.cmdId) continue;
    if (<u32>load<u8>(c + CX_STATE) != ST_WRITE_DATA) return; // all here already (a duplicate), or not asked yet
    const len = load<u32>(c + CX_WIN_LEN);
    const k = h.offset / LINK_PAYLOAD_BYTES;
    if (h.offset % LINK_PAYLOAD_BYTES != 0 || h.offset >= len || <u32>h.length != min<u32>(LINK_PAYLOAD_BYTES, len - h.offset)) {
      store<u64>(sess(port) + LS_BAD, load<u64>(sess(port) + LS_BAD) + 1);
      return;
    }
    if ((x.got & (<u32>1 << k)) != 0) return;
    memory.copy(ctxBufferAddr(c) + h.offset, p + LINK_HEADER_BYTES, <usize>h.length);
    x.got |= <u32>1 << k;
    store<u32>(c + CX_WIN_RECEIVED, load<u32>(c + CX_WIN_RECEIVED) + <u32>h.length);
    if (load<u32>(c + CX_WIN_RECEIVED) == len) store<u8>(c + CX_STATE, <u8>ST_WRITE_COMMIT);
    return;
  }
  standbyData(port, p); // a delay write's data goes to its standby unit's entry
}

// ---- Control: the secondary's record ----------------------------------------------------------------

/** CREATE (a WRITE of no data): volume v becomes the secondary of the origin's pair; issued = the base. */
function controlCreate(port: u32, p: usize, v: i32): void {
  const h = pkt(p);
  if (v < 0) { answerDirect(port, p, LT_RECEIVED, 0x02, 0x05, 0x86, 0x00); return; } // no such volume
  const vol = <u32>v;
  // offset: the primary's block size; lba: its capacity in blocks.
  if (blockSize(vol) != h.offset || capacityBlocks(vol) < pktLba(p)) { answerDirect(port, p, LT_RECEIVED, 0x02, 0x05, 0x86, 0x01); return; }
  let pr = remoteOfVolume(vol);
  if (pr >= 0) {
    const r = remote(<u32>pr);
    if (r.role != RR_SECONDARY || <u32>r.peerNode != <u32>h.origin) { answerDirect(port, p, LT_RECEIVED, 0x02, 0x05, 0x86, 0x02); return; } // in another pair
    if (r.state == RS_FAILOVER) { answerDirect(port, p, LT_RECEIVED, 0x02, 0x05, 0x86, 0x03); return; } // the hosts' now: delete it here first
  } else {
    pr = freeRecord();
    if (pr < 0) { answerDirect(port, p, LT_RECEIVED, 0x02, 0x05, 0x86, 0x04); return; }
  }
  const pi = <u32>pr;
  const r = remote(pi);
  if (r.used == 0 || r.issued != h.issuingId || r.state != RS_PAIR) {
    standbyRelease(pi); // a new incarnation: what a standby unit held of the old one goes (the copy starts again)
    remoteReset(pi);
    r.used = 1;
    r.role = RR_SECONDARY;
    r.volume = <u16>vol;
    r.peerNode = h.origin;
    r.firstHop = h.srcNode;
    orderCreate(pi, h.total & 0xFF, h.issuingId, ((h.total >> 8) & 1) != 0); // total: the group, and whether it joins a running one
    r.peerVolume0 = h.volume0;
    r.peerVolume1 = h.volume1;
    r.peerVolume2 = h.volume2;
    snapLinkCreated(pi, pktLba(p)); // the primary's capacity: a snapshot pair's logical blocks (remote/snaplink.ts)
    remoteSetState(pi, RS_PAIR, RSR_NONE);
    for (let i: u32 = 0; i < HELD_MAX; i++) store<u32>(heldAt(pi, i) + 68, 0);
  }
  answerDirect(port, p, LT_RECEIVED, 0, 0, 0, 0);
}

function freeRecord(): i32 {
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) if (remote(p).used == 0) return <i32>p;
  return -1;
}

function controlDelete(port: u32, p: usize, v: i32): void {
  const pr = v < 0 ? -1 : remoteOfVolume(<u32>v);
  if (pr >= 0 && remote(<u32>pr).role == RR_SECONDARY && <u32>remote(<u32>pr).peerNode == <u32>pkt(p).origin && remote(<u32>pr).state != RS_FAILOVER) {
    standbyRelease(<u32>pr);
    remoteRelease(<u32>pr);
  }
  answerDirect(port, p, LT_RECEIVED, 0, 0, 0, 0);
}

/** Addresses packet q from this end of `port` to (dstNode, dstQueue), about command cmdId of issuing ID issuingId. */
function address(q: usize, port: u32, dstNode: u32, dstQueue: u32, cmdId: u32, issuingId: u32): Packet {
  const a = pkt(q);
  a.srcNode = <u16>myNode();
  a.srcQueue = <u8>queueOf(port);
  a.dstNode = <u16>dstNode;
  a.dstQueue = <u8>dstQueue;
  a.cmdId = cmdId;
  a.issuingId = issuingId;
  return a;
}

/** An answer to packet p from its sender, without a context. False when the ring is full (the sender repeats). */
function answerDirect(port: u32, p: usize, type: u32, status: u32, key: u32, asc: u32, ascq: u32): bool {
  const h = pkt(p);
  return linkAnswer(port, type, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId, h.issuingId, <u32>h.origin, (status << 24) | (key << 16) | (asc << 8) | ascq, 0, 0);
}

/**
 * An answer of `type` to command cmdId (issuing ID issuingId) of (dstNode, dstQueue), without a
 * context: `answer` is status << 24 | key << 16 | asc << 8 | ascq; a READY names [offset, offset + total).
 */
export function linkAnswer(port: u32, type: u32, dstNode: u32, dstQueue: u32, cmdId: u32, issuingId: u32, origin: u32, answer: u32, offset: u32, total: u32): bool {
  const q = pktBegin(txOf(port), type);
  if (q == 0) return false;
  const a = address(q, port, dstNode, dstQueue, cmdId, issuingId);
  a.origin = <u16>origin;
  a.status = <u8>(answer >> 24);
  a.senseKey = <u8>(answer >> 16);
  a.asc = <u8>(answer >> 8);
  a.ascq = <u8>answer;
  a.offset = offset;
  a.total = total;
  pktSend(txOf(port), q, 0);
  return true;
}

// ---- The transport seam ---------------------------------------------------------------------------

/** A status for a command that got no context (no context free, session queue full): to the packet's sender. */
export function linkDirect(port: u32, s: u32, status: u32, key: u32, asc: u32, ascq: u32): bool {
  const p = <usize>load<u32>(sess(port) + LS_CUR);
  if (p != 0) answerDirect(port, p, LT_RECEIVED, status, key, asc, ascq);
  return true;
}

/** Receive: the window is buffer memory; the sender is told READY for it (S584). Apply: it is the unit's data. */
export function linkWindow(c: usize, offset: u32, length: u32): u32 {
  if (!ctxBuffer(c, length, false)) return WIN_RETRY;
  store<u32>(c + CX_WIN_START, offset);
  store<u32>(c + CX_WIN_LEN, length);
  if ((lx(c).flags & LXF_RD) != 0) { // the rebuilt block is in the unit's slot already
    rdCopyOut(rdUnitHere(), lx(c).got, offset, ctxBufferAddr(c), length);
    store<u32>(c + CX_WIN_RECEIVED, length);
    return WIN_ARRIVED;
  }
  store<u32>(c + CX_WIN_RECEIVED, 0);
  if (lx(c).role == LR_APPLY) {
    standbyWindow(ctxBufferAddr(c), <usize>lx(c).byteOffset + <usize>offset, length);
    store<u32>(c + CX_WIN_RECEIVED, length);
    return WIN_ARRIVED;
  }
  lx(c).flags |= LXF_READY_DUE;
  sendReady(c);
  return WIN_ASKED;
}

function sendReady(c: usize): void {
  const x = lx(c);
  if ((x.flags & LXF_READY_DUE) == 0) return;
  if (<u32>load<u8>(c + CX_STATE) != ST_WRITE_DATA && load<u32>(c + CX_WIN_RECEIVED) != 0) { x.flags &= ~LXF_READY_DUE; return; }
  const port = <u32>load<u8>(c + CX_PORT);
  const q = pktBegin(txOf(port), LT_READY);
  if (q == 0) return;
  const a = address(q, port, x.srcNode, x.srcQueue, x.cmdId, x.issuingId);
  const first = <u32>ctz<u32>(~x.got) * LINK_PAYLOAD_BYTES;
  const len = load<u32>(c + CX_WIN_LEN);
  a.offset = min<u32>(first, len);
  a.total = len - min<u32>(first, len);
  pktSend(txOf(port), q, 0);
  x.flags &= ~LXF_READY_DUE;
}

/**
 * Send: data-in of the read goes out as DATA packets of the command, once the next hop is READY;
 * `n` bytes at the command's cursor. Packets are whole (LINK_PAYLOAD_BYTES, the last one shorter):
 * remote/mirror.ts starts send commands at 8 KiB boundaries, so slot pieces never split a packet.
 */
export function linkData(c: usize, src: usize, n: u32, total: u32): u32 {
  if (lx(c).role == LR_FETCH) { memory.copy(<usize>lx(c).byteOffset + <usize>load<u32>(c + CX_CURSOR), src, n); return n; } // linkFetch
  sendTimers(c);
  const x = lx(c);
  if ((x.flags & LXF_RD) != 0) return rdData(c, src, n, total);
  if ((x.flags & LXF_READY) == 0 || (x.flags & LXF_DONE) != 0) return 0;
  const port = <u32>load<u8>(c + CX_PORT);
  const tx = txOf(port);
  const cursor = load<u32>(c + CX_CURSOR);
  let taken: u32 = 0;
  while (taken < n) {
    const off = cursor + taken;
    const len = min<u32>(LINK_PAYLOAD_BYTES, total - off);
    if (len > n - taken) break;
    const q = pktBegin(tx, LT_DATA);
    if (q == 0) break;
    const a = address(q, port, remote(<u32>x.pair).peerNode, 0, x.cmdId, x.issuingId);
    a.origin = <u16>myNode();
    a.offset = off;
    if (off + len == total) a.flags = <u8>LF_LAST;
    memory.copy(q + LINK_HEADER_BYTES, src + taken, len);
    pktSend(tx, q, len);
    taken += len;
  }
  if (cursor + taken == total && taken > 0) {
    if ((x.flags & LXF_RECEIVED) == 0) x.waitFor = LW_RECEIVED; // (sent again for a relay that forgot it: FORWARDED still awaited)
    x.deadlineNs = gNow + timeoutNs(x);
    wakeAt(x.deadlineNs);
  }
  return taken;
}

/** Respond: receive: RECEIVED with the command's status; send: the context ends when its answers are in. */
export function linkRespond(c: usize): bool {
  const x = lx(c);
  if (x.role == LR_RECEIVE) return receivedSent(c);
  if (x.role == LR_APPLY || x.role == LR_FETCH) {
    standbyApplyDone(<u32>x.pair, x.serial, x.cmdId, load<u8>(c + CX_STATUS) == 0);
    untag(c);
    return true;
  }
  sendTimers(c);
  if ((x.flags & LXF_DONE) == 0 && load<u8>(c + CX_STATUS) != 0) {
    // The read of the primary failed (or the command was failed by a bound): the pair cannot be current.
    if ((x.flags & LXF_RD) != 0) rdRelease(rdUnitHere(), x.got, 0); // the slot is given up with the command
    sendFailed(c, x.answer != 0 ? (x.waitFor == LW_FORWARDED ? RSR_RELAY : RSR_LINK) : RSR_READ);
  }
  if ((x.flags & LXF_DONE) == 0) return false;
  untag(c);
  return true;
}

function receivedSent(c: usize): bool {
  const x = lx(c);
  const port = <u32>load<u8>(c + CX_PORT);
  const status = <u32>load<u8>(c + CX_STATUS);
  if ((x.flags & LXF_RD) != 0) {
    // S326 after S327: the unit answers RECEIVED with the store's status (its slot still this command's: not timed out and reused).
    const u = rdUnitHere();
    const word = status == 0 ? 0 : (status << 24) | (<u32>load<u8>(c + CX_SENSE_KEY) << 16) | (<u32>load<u8>(c + CX_ASC) << 8) | <u32>load<u8>(c + CX_ASCQ);
    if (rdSlotState(u, x.got) == <u32>RD_RECV_STORING && rdSlotCmdId(u, x.got) == x.cmdId && rdSlotPeer(u, x.got) == <u32>x.srcNode) rdRelease(u, x.got, word);
  } else {
    const q = pktBegin(txOf(port), LT_RECEIVED);
    if (q == 0) return false;
    const a = address(q, port, x.srcNode, x.srcQueue, x.cmdId, x.issuingId);
    a.status = <u8>status;
    a.senseKey = load<u8>(c + CX_SENSE_KEY);
    a.asc = load<u8>(c + CX_ASC);
    a.ascq = load<u8>(c + CX_ASCQ);
    pktSend(txOf(port), q, 0);
  }
  const r = remote(<u32>x.pair);
  if (r.used != 0 && r.role == RR_SECONDARY) {
    if (status == 0) {
      orderApplied(<u32>x.pair, x.issuingId); // S586: the next one (of the pair, or of its consistency group) may go
      r.writes++;
      r.bytes += <u64>load<u32>(c + CX_LENGTH);
    } else {
      r.broken = 1; // an acknowledged write of the primary is not here: nothing after it may be applied
      log(LOG_WARN, "remote: a write could not be applied; the secondary refuses the pair's writes until it is created again (pair, issuing ID)", x.pair, x.issuingId);
    }
  }
  trace(TRACE_REMOTE_APPLY, (<u32>x.srcNode << 16) | <u32>x.pair, x.cmdId, x.issuingId, status);
  untag(c);
  return true;
}

/** The context leaves its session's tag table itself (release then skips the host's statistics). */
function untag(c: usize): void {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  tagRemove(port, s, load<u32>(c + CX_TAG));
  sessionOutstandingAdd(port, s, -1);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_RESPONDED);
}

/** Receive contexts: READYs owed (asked again). Called from the sequencer's poll of the port. */
export function linkService(port: u32): void {
  for (let c = activeFirst(); c != 0; c = activeNext(c)) {
    if (<u32>load<u8>(c + CX_PORT) != port || !portKindIs(c)) continue;
    const x = lx(c);
    if (x.role == LR_RECEIVE && (x.flags & LXF_READY_DUE) != 0) sendReady(c);
  }
}

// ---- Sending -------------------------------------------------------------------------------------

/**
 * Starts a send command for pair p: `bytes` of the local volume from byte `byteOffset` (8 KiB
 * aligned, at most LINK_MAX_COMMAND_BYTES), or a control (op, no data). `parent`: the CX_ID of the
 * command that waits for it (0: none). Returns its CX_ID, or 0 when no context or port is free now.
 */
export function linkSend(p: u32, op: u32, byteOffset: u64, bytes: u32, parent: u32, flags: u32): u32 {
  // Controls go to the first hop; data to the hop the pair's route picks (remote/route.ts).
  return linkSendVia(p, op == LOP_NONE ? routeHop(p) : <u32>remote(p).firstHop, op, byteOffset, bytes, parent, flags, 0, 0);
}

/**
 * linkSend through first hop `hop`. `issuing`: the issuing ID to carry (a copy of a set, remote/route.ts;
 * 0: the next); `group`: the key of its set (0xFFFFFFFF: this command's own CX_ID, the set's first; 0: none).
 */
export function linkSendVia(p: u32, hop: u32, op: u32, byteOffset: u64, bytes: u32, parent: u32, flags: u32, issuing: u32, group: u32): u32 {
  const r = remote(p);
  const port = linkPortToward(hop);
  if (port < 0) return 0;
  const issues = op == LOP_NONE || op == LOP_REFLECT; // a write, or a reflecting command, takes the next issuing ID (a copy of a set carries its set's)
  if (issues && issuing == 0 && !remoteLeaseReadyAll(p)) return 0; // the next issuing ID waits for a longer lease in NV (every member's, in a consistency group)
  if (op == LOP_NONE && (flags & LXF_COPY) == 0 && standbyHoldsSends(p)) return 0; // embodiment 7: the copy's end is being settled
  // With redundancy the unit's slot first: a command that could not get one must not take an issuing ID.
  const slot = op == LOP_NONE && r.rdData != 0 ? rdSendBegin(p, byteOffset, bytes) : -1;
  if (op == LOP_NONE && r.rdData != 0 && slot < 0) return 0;
  const c = sendBegin(p, <u32>port, op, bytes, parent, flags);
  if (c == 0) { if (slot >= 0) rdRelease(rdUnitHere(), <u32>slot, 0); return 0; }
  const x = lx(c);
  // The issuing ID: a control carries the last one given (the secondary's base); a write takes the next.
  x.issuingId = !issues ? r.issued : issuing != 0 ? issuing : remoteIssue(p);
  x.got = group == 0xFFFFFFFF ? x.cmdId : group; // the set's key (an LXF_RD command's slot replaces it below: never both)
  // The synchronization ID (003 [0177]): a reflecting command closes the pair's current one.
  x.syncId = r.syncId;
  if (op == LOP_REFLECT) r.syncId++;
  x.byteOffset = byteOffset;
  const bs = <u64>blockSize(<u32>r.volume);
  if (slot >= 0) { // the read fills the unit's slot (linkData), which sends it (S301)
    x.flags = LXF_RD | LXF_READY | flags;
    x.got = <u32>slot;
    x.waitFor = LW_RECEIVED;
    rdTag(rdUnitHere(), <u32>slot, x.issuingId, changetype<usize>(r) + offsetof<RemotePair>("peerVolume0"));
    trace(TRACE_REMOTE_PARTS, p, x.cmdId, x.issuingId, rdSlotCmdId(rdUnitHere(), <u32>slot)); // the parts' identifier on the wire
  }
  startRead(c, byteOffset / bs, bytes / <u32>bs);
  sendWrite(c);
  trace(TRACE_REMOTE_SEND, p, x.cmdId, x.issuingId, bytes);
  return x.cmdId;
}

/**
 * Starts the send command of journal entry `entry` of async pair p (remote/async.ts): its issuing ID
 * was given when the host write was journaled, its data is the entry's. Returns its CX_ID, or 0.
 */
export function linkSendJournal(p: u32, entry: u32, issuingId: u32, byteOffset: u64, bytes: u32): u32 {
  const port = linkPortToward(<u32>remote(p).firstHop);
  if (port < 0) return 0;
  const c = sendBegin(p, <u32>port, LOP_NONE, bytes, 0, LXF_JOURNAL | (LF_MIRROR << 8));
  if (c == 0) return 0;
  const x = lx(c);
  x.issuingId = issuingId;
  x.byteOffset = byteOffset;
  x.got = entry;
  store<u64>(c + CX_LBA, byteOffset / <u64>blockSize(<u32>remote(p).volume));
  store<u32>(c + CX_LENGTH, bytes);
  store<u32>(c + CX_CURSOR, 0);
  store<u8>(c + CX_STATE, <u8>ST_REMOTE); // linkJournalPump sends the entry's data
  sendWrite(c);
  trace(TRACE_REMOTE_SEND, p, x.cmdId, x.issuingId, bytes);
  return x.cmdId;
}

/** ST_REMOTE of a journal send (remote/mirror.ts remoteWait asks first): the entry's data as DATA packets. False: not one. */
export function linkJournalPump(c: usize): bool {
  if (<u32>load<u8>(cfgPort(<u32>load<u8>(c + CX_PORT)) + CPORT_KIND) != PORT_LINK) return false;
  const x = lx(c);
  if (x.role != LR_SEND || (x.flags & LXF_JOURNAL) == 0) return false;
  const total = load<u32>(c + CX_LENGTH);
  const cursor = load<u32>(c + CX_CURSOR);
  if ((x.flags & LXF_DONE) != 0) { store<u32>(c + CX_CURSOR, total); good(c); return true; }
  const taken = linkData(c, journalData(x.got) + cursor, total - cursor, total);
  store<u32>(c + CX_CURSOR, cursor + taken);
  if (cursor + taken == total) good(c); // all sent: the respond step waits for RECEIVED
  return true;
}

/** A context for a send command of pair p on `port` (its issuing ID, offset and data are the caller's). */
function sendBegin(p: u32, port: u32, op: u32, bytes: u32, parent: u32, flags: u32): usize {
  const r = remote(p);
  const c = begin(port, 0, bytes, true);
  if (c == 0) return 0;
  const x = lx(c);
  x.role = LR_SEND;
  x.pair = <u8>p;
  x.op = <u8>op;
  x.cmdId = load<u32>(c + CX_ID);
  x.parent = parent;
  x.serial = r.serial;
  x.flags = LXF_WRITE_DUE | flags;
  x.flags |= standbyPacketFlags(p, op, flags) << 8; // embodiments 7 and 8: LF_DELAYED (LF_SNAPSHOT)
  x.waitFor = LW_READY;
  x.deadlineNs = gNow + timeoutNs(x);
  wakeAt(x.deadlineNs);
  store<u16>(c + CX_VOLUME, r.volume);
  r.inFlight++;
  return c;
}

/** This array's send commands on `port` not yet ended (remote/route.ts: a relay's load). */
export function linkSendsOn(port: u32): u32 {
  let n: u32 = 0;
  for (let c = activeFirst(); c != 0; c = activeNext(c)) {
    if (<u32>load<u8>(c + CX_PORT) == port && portKindIs(c) && lx(c).role == LR_SEND && (lx(c).flags & LXF_DONE) == 0) n++;
  }
  return n;
}

/** The issuing ID of send command `id`. */
export function linkIssuingOf(id: u32): u32 { const c = ctxById(id); return c == 0 ? 0 : lx(c).issuingId; }

/** A send command failed: the pair is suspended (`reason`) unless a copy of its set may still get through. */
function sendFailed(c: usize, reason: u8): void {
  const x = lx(c);
  if (x.serial == remote(<u32>x.pair).serial && (groupOf(x) == 0 || routeFailureCounts(<u32>x.pair, groupOf(x)))) remoteSuspend(<u32>x.pair, reason, x.cmdId);
  finish(c, false);
}

function timeoutNs(x: LinkCmd): f64 { return <f64>remote(<u32>x.pair).timeoutUs * 1000; }

/**
 * How long a send command waits for FORWARDED after the relay's RECEIVED: longer than the relay's
 * own bound for the far side, which the origin does not know; 4 x the pair's bound.
 */
function forwardBoundNs(x: LinkCmd): f64 { return timeoutNs(x) * <f64>(<u32>remote(<u32>x.pair).retries + 1) * 4; }

function sendWrite(c: usize): void {
  const x = lx(c);
  if ((x.flags & LXF_WRITE_DUE) == 0) return;
  const r = remote(<u32>x.pair);
  const port = <u32>load<u8>(c + CX_PORT);
  const q = pktBegin(txOf(port), LT_WRITE);
  if (q == 0) return;
  const a = address(q, port, r.peerNode, 0, x.cmdId, x.issuingId);
  a.syncId = x.syncId;
  a.origin = <u16>myNode();
  a.originQueue = <u8>queueOf(port);
  a.op = x.op;
  a.flags = <u8>((x.flags >> 8) & 0xFF); // LF_MIRROR for host writes
  a.volume0 = r.peerVolume0;
  a.volume1 = r.peerVolume1;
  a.volume2 = r.peerVolume2;
  if (x.op == <u8>LOP_CREATE) {
    a.offset = blockSize(<u32>r.volume); // the secondary checks its geometry against ours
    a.total = createWord(<u32>x.pair); // the consistency group (remote/async.ts)
    pktSetLba(q, capacityBlocks(<u32>r.volume));
  } else {
    a.total = load<u32>(c + CX_LENGTH);
    pktSetLba(q, x.byteOffset / <u64>blockSize(<u32>r.volume));
  }
  pktSend(txOf(port), q, 0);
  x.flags &= ~LXF_WRITE_DUE;
}

/** Every wait of a send command is bounded: repeat after timeoutMs, give up after the pair's retries. */
function sendTimers(c: usize): void {
  const x = lx(c);
  if ((x.flags & LXF_DONE) != 0) return;
  if ((x.flags & LXF_RD) != 0) { rdSent(c); return; } // the unit bounds its own waits
  sendWrite(c);
  if (gNow < x.deadlineNs) { wakeAt(x.deadlineNs); return; }
  const r = remote(<u32>x.pair);
  // Waiting for FORWARDED: the WRITE is repeated every timeout (the relay answers a repeated WRITE of
  // a finished command with FORWARDED again: the first one may have been lost) until the bound.
  if (x.waitFor == LW_FORWARDED ? gNow >= x.giveUpNs : <u32>x.retries >= <u32>r.retries) {
    x.answer = (0x02 << 24) | (0x0B << 16) | (0x08 << 8) | 0x01; // ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIMEOUT
    log(LOG_WARN, "remote: no answer within the pair's bound; the pair is suspended (pair, command identifier)", x.pair, x.cmdId);
    if ((x.flags & LXF_BUSY) != 0) x.answer = (0x08 << 24); // BUSY to the last: the far end had no room
    sendFailed(c, x.waitFor == LW_FORWARDED ? RSR_RELAY : (x.flags & LXF_BUSY) != 0 ? RSR_REMOTE : RSR_LINK);
    if (<u32>load<u8>(c + CX_STATE) == ST_READ || journalSend(c)) fail(c, 0x0B, 0x08, 0x01);
    return;
  }
  x.retries++;
  x.flags |= LXF_WRITE_DUE; // the WRITE (or its READY, or our data, or the RECEIVED) was lost: ask again
  x.deadlineNs = gNow + timeoutNs(x);
  wakeAt(x.deadlineNs);
  sendWrite(c);
}

/** S103/S167: the next hop is ready for the data from `offset`; an earlier offset than sent rewinds the read. */
function answerReady(c: usize, p: usize): void {
  const x = lx(c);
  const h = pkt(p);
  x.flags |= LXF_READY;
  if (x.waitFor == LW_READY) { x.waitFor = LW_RECEIVED; x.deadlineNs = gNow + timeoutNs(x); wakeAt(x.deadlineNs); }
  const total = load<u32>(c + CX_LENGTH);
  // An earlier byte than sent: the next hop lost packets, or (a relay that has forgotten a finished
  // command asked again for its FORWARDED) wants the command again: the read goes back.
  if (h.offset < load<u32>(c + CX_CURSOR) && h.offset < total && (x.flags & LXF_DONE) == 0) {
    store<u32>(c + CX_CURSOR, h.offset);
    store<u8>(c + CX_STATE, <u8>((x.flags & LXF_JOURNAL) != 0 ? ST_REMOTE : ST_READ));
  }
}

/** S105/S169: RECEIVED from the first hop: through a relay, the relay has it all; direct, the secondary applied it. */
function answerReceived(c: usize, p: usize): void {
  const x = lx(c);
  const h = pkt(p);
  if ((x.flags & LXF_RECEIVED) != 0) return;
  const r = remote(<u32>x.pair);
  if (h.status == 0x08 && <u32>x.retries < <u32>r.retries) {
    // BUSY (a standby unit without room for it now): asked again after a timeout, within the pair's retries.
    x.flags |= LXF_BUSY;
    x.waitFor = LW_READY;
    x.deadlineNs = gNow + timeoutNs(x);
    wakeAt(x.deadlineNs);
    return;
  }
  x.flags |= LXF_RECEIVED;
  x.answer = (<u32>h.status << 24) | (<u32>h.senseKey << 16) | (<u32>h.asc << 8) | <u32>h.ascq;
  trace(TRACE_REMOTE_ACK, x.pair, x.cmdId, x.issuingId, 1 | (<u32>h.status << 8));
  if (h.status != 0) {
    sendFailed(c, RSR_REMOTE);
    return;
  }
  // Direct, the secondary has it; a relay with NV buffer memory (LF_STORED) holds a write and forwards it itself (embodiment 4).
  if (r.viaRelay == 0 || (x.op == <u8>LOP_NONE && (<u32>h.flags & LF_STORED) != 0)) { finish(c, true); return; }
  // Through a relay a write is done for its host here (S170); a control waits for the far end.
  if (x.op == <u8>LOP_NONE) notify(c, true);
  x.waitFor = LW_FORWARDED;
  x.retries = 0;
  x.giveUpNs = gNow + forwardBoundNs(x);
  x.deadlineNs = gNow + timeoutNs(x);
  wakeAt(x.deadlineNs);
}

/** S129 at the origin: the relay's next hop has it (or the relay gave it up: the pair is suspended). */
function answerForwarded(c: usize, p: usize): void {
  const x = lx(c);
  const h = pkt(p);
  const r = remote(<u32>x.pair);
  trace(TRACE_REMOTE_ACK, x.pair, x.cmdId, x.issuingId, 2 | (<u32>h.status << 8));
  if (h.status != 0) {
    x.answer = (<u32>h.status << 24) | (<u32>h.senseKey << 16) | (<u32>h.asc << 8) | <u32>h.ascq;
    sendFailed(c, x.op == <u8>LOP_NONE ? RSR_RELAY : RSR_REMOTE);
    return;
  }
  finish(c, true);
}

/** Redundancy: the read's bytes into the unit's slot; the whole block armed (S301/S344). */
function rdData(c: usize, src: usize, n: u32, total: u32): u32 {
  const u = rdUnitHere();
  const cursor = load<u32>(c + CX_CURSOR);
  rdFill(u, lx(c).got, cursor, src, n);
  if (cursor + n >= total) rdArm(u, lx(c).got);
  return n;
}

/** Redundancy: S306/S350 — the unit's RECEIVED (or its bound) ends the send command with that status. */
function rdSent(c: usize): void {
  const x = lx(c);
  const u = rdUnitHere();
  if (rdSlotState(u, x.got) != <u32>RD_SEND_DONE) return;
  const status = rdSlotStatus(u, x.got);
  rdRelease(u, x.got, 0);
  const r = remote(<u32>x.pair);
  trace(TRACE_REMOTE_ACK, x.pair, x.cmdId, x.issuingId, 1 | ((status >> 24) << 8));
  if (status == 0) { finish(c, true); return; }
  x.answer = status;
  if (status == RD_STATUS_TIMEOUT) log(LOG_WARN, "remote: a redundancy-processed write got no answer within the pair's bound; the pair is suspended (pair, command identifier)", x.pair, x.cmdId);
  if (x.serial == r.serial) remoteSuspend(<u32>x.pair, status == RD_STATUS_TIMEOUT ? RSR_LINK : RSR_REMOTE, x.cmdId);
  finish(c, false);
}

/** The command is over: the parent hears (once), the pair counts it, and the context ends at its respond step. */
function finish(c: usize, ok: bool): void {
  const x = lx(c);
  if ((x.flags & LXF_DONE) != 0) return;
  x.flags |= LXF_DONE;
  notify(c, ok);
  const r = remote(<u32>x.pair);
  const group = groupOf(x);
  const first = group == 0 || routeFirstOk(<u32>x.pair, group); // a set of copies is one write
  if (group != 0) routeEnded(<u32>x.pair, group, ok);
  if (x.serial == r.serial) {
    if (r.inFlight > 0) r.inFlight--;
    if ((x.flags & LXF_COPY) != 0) {
      if (r.copyActive > 0) r.copyActive--;
      if (ok) r.copyDone += <u64>load<u32>(c + CX_LENGTH);
    } else if (ok && first && x.op == <u8>LOP_NONE) { r.writes++; r.bytes += <u64>load<u32>(c + CX_LENGTH); }
  }
  if (<u32>load<u8>(c + CX_STATE) == ST_READ) {
    // Ended before its data was all read (a bound, a refusal): the read stops here.
    store<u32>(c + CX_CURSOR, load<u32>(c + CX_LENGTH));
  }
  if ((x.flags & LXF_JOURNAL) != 0) journalFinished(x.got, x.cmdId, ok);
  // What did not arrive is in the difference bitmap (write intent set it; marked again here, since a
  // bitmap cleared while the write waited for its send must not pass over it: remote/async.ts).
  if (!ok && x.op == <u8>LOP_NONE && x.serial == r.serial) diffMark(<u32>x.pair, x.byteOffset, <u64>load<u32>(c + CX_LENGTH), nvId(NVK_NONE, 0));
}

function journalSend(c: usize): bool { return (lx(c).flags & LXF_JOURNAL) != 0 && <u32>load<u8>(c + CX_STATE) == ST_REMOTE; }

function notify(c: usize, ok: bool): void {
  const x = lx(c);
  if (x.parent == 0) return;
  const parent = ctxById(x.parent);
  x.parent = 0;
  const group = groupOf(x);
  const key = group != 0 ? group : x.cmdId; // a stripe's portion or a copy answers for its set
  if (parent == 0 || load<u32>(parent + CX_ARG) != key) return; // the host command has gone (aborted)
  if (group != 0) {
    const tell = routeTell(<u32>x.pair, key, ok);
    if (tell == 0) return;
    ok = tell == 1;
  }
  store<u32>(parent + CX_FLAGS, load<u32>(parent + CX_FLAGS) | (ok ? CXF_REMOTE_DONE : CXF_REMOTE_FAILED));
  if (!ok) store<u32>(parent + CX_ARG, x.answer); // what the far end (or the bound) said, for a REMOTE command's sense
}

/**
 * A run of a standby unit (remote/standby.ts) written to local volume v through the ordinary write
 * path (cache and NV): `blocks` at `lba`, its bytes at `src` in buffer memory. When it ends,
 * standbyApplyDone(pair, serial, tag, ok). Returns 0 when no context is free now.
 */
export function linkApply(port: u32, pair: u32, serial: u32, tag: u32, v: u32, lba: u64, blocks: u32, src: usize): usize {
  return localContext(port, LR_APPLY, pair, serial, tag, v, lba, blocks, src);
}

/**
 * A read of `blocks` of local volume v from lba into buffer memory at dst through the ordinary read
 * path (a snapshot unit's move home, remote/snaplink.ts): when it ends, standbyApplyDone(pair,
 * serial, tag, ok). Returns 0 when no context is free now.
 */
export function linkFetch(port: u32, pair: u32, serial: u32, tag: u32, v: u32, lba: u64, blocks: u32, dst: usize): usize {
  return localContext(port, LR_FETCH, pair, serial, tag, v, lba, blocks, dst);
}

/** A context of a standby unit on the volume: LR_APPLY writes from `at`, LR_FETCH reads into it. */
function localContext(port: u32, role: u8, pair: u32, serial: u32, tag: u32, v: u32, lba: u64, blocks: u32, at: usize): usize {
  const c = begin(port, 0, blocks * blockSize(v), role == LR_FETCH);
  if (c == 0) return 0;
  const x = lx(c);
  x.role = role;
  x.pair = <u8>pair;
  x.serial = serial;
  x.cmdId = tag;
  x.byteOffset = <u64>at;
  store<u16>(c + CX_VOLUME, <u16>v);
  if (role == LR_FETCH) startRead(c, lba, blocks); else startWrite(c, lba, blocks, false);
  return c;
}
