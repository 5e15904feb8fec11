// Redundancy-processed writes (document 003, embodiments 5 and 6; docs/remote.md, "Redundancy").
// The redundancy processing unit 202 and the restoration unit 203 of Fig. 14 in one module: a
// sender splits a block in N data parts, adds m Reed-Solomon parity parts (kernels/rs.ts) and sends
// each part as a packet of its own, spread over the unit's links (Fig. 17: separate networks); a
// receiver rebuilds the block from the first N parts that arrive, whichever they are, and drops
// the rest. Nothing is sent again unless more than m parts are lost; then the receiver asks for as
// many missing parts as it lacks, naming them (a part mask), a bounded number of times.
//
// A unit is one structure in common memory at the address the caller gives (RdUnit, then its link
// rings, slot table, buffer memory and the kernel's scratch): it holds no module state. Sender
// steps (Fig. 15 / Fig. 18): S301/S344 rdWrite queues the redundancy-processed WRITE (LF_REDUNDANT,
// offset = N | m << 8) -> S303/S347 READY arrives -> S304/S348 rsEncode into the slot's parity parts
// -> S305/S349 one DATA packet per part (offset = part | N << 8 | m << 16, length = part bytes)
// -> S306/S350 RECEIVED. Receiver steps (Fig. 16): S320 a slot of buffer memory -> S321 READY ->
// S322/S323 parts into the slot by part index -> S324 fewer than N? wait -> S325 rsReconstruct the
// missing data parts -> S326 RECEIVED -> S327 the block is handed to the caller (rdTake), who
// stores it. Parts of a command that has passed S325 are dropped ([0136]); a repeated WRITE is
// answered again (READY or RECEIVED), never started twice: commands are known by (source node,
// source queue, command identifier) while their slot is held.
import {
  LINK_ENTRY_BYTES, LINK_HEADER_BYTES, LINK_PAYLOAD_BYTES, LINK_RING_ENTRIES, LT_WRITE, LT_READY, LT_DATA,
  LT_RECEIVED, LF_LAST, LF_REDUNDANT, DB_LINK_TX_BASE, PAGE_BYTES, REGION_ALIGN,
} from "../abi";
import { ringInit, ringBytes, ringRelease } from "../ring";
import { alignUp } from "../util";
import { pkt, pktBegin, pktSend, pktNext, pktLba, pktSetLba } from "./packet";
import { rsEncode, rsReconstruct } from "../kernels/rs";
import { KERR_OK, RS_MAX_M, RS_SCRATCH_BYTES } from "../kernels/codes";

/** Parts of one command at most: the masks are u32. */
export const RD_MAX_PARTS: u32 = 32;
export const RD_MAX_LINKS: u32 = 8;
export const RD_MAX_SLOTS: u32 = 256;

// Statistics (u64 each, RdUnit.stats + i * 8).
export const RDS_WRITES: u32 = 0; // commands issued (sender)
export const RDS_DONE: u32 = 1; // commands acknowledged GOOD (sender)
export const RDS_FAILED: u32 = 2; // commands given up after their retries (sender)
export const RDS_PARTS_SENT: u32 = 3; // part packets sent, first time
export const RDS_PARTS_RESENT: u32 = 4; // part packets sent again on a retransmission request
export const RDS_COMMANDS: u32 = 5; // commands taken in (receiver)
export const RDS_REBUILT: u32 = 6; // commands whose data needed rsReconstruct (a data part missing at S325)
export const RDS_SURPLUS: u32 = 7; // parts dropped: their command had passed S325 (or ended)
export const RDS_DUPLICATES: u32 = 8; // a part or WRITE received twice
export const RDS_BAD: u32 = 9; // packets dropped: CRC, magic, length, part index, unknown command
export const RDS_NO_BUFFER: u32 = 10; // WRITEs left unanswered: no free slot (the sender repeats)
export const RDS_RESEND_REQUESTS: u32 = 11; // READYs naming missing parts (more than m lost)
export const RDS_GIVEN_UP: u32 = 12; // commands the receiver dropped after its retries
export const RDS_REPEATS: u32 = 13; // WRITEs sent again after a timeout (sender)
const RDS_COUNT: u32 = 16;

// Slot roles and states.
export const RD_FREE: u8 = 0;
export const RD_SEND_WRITE: u8 = 1; // S301: WRITE owed or sent, waiting for READY (S303)
export const RD_SEND_PARTS: u8 = 2; // S305: parts going out, then waiting for RECEIVED (S306)
export const RD_SEND_DONE: u8 = 3; // RECEIVED came (status), or given up: the caller reads rdStatus and frees
export const RD_RECV_GATHER: u8 = 4; // S321-S324: READY owed or sent, parts arriving
export const RD_RECV_READY: u8 = 5; // S325-S326 done: the block is whole in the slot, for rdTake (S327)
export const RD_RECV_KEPT: u8 = 6; // taken; the identity stays until its deadline to answer repeats
export const RD_SEND_FILL: u8 = 7; // rdBegin: the caller copies the block in (rdFill), then rdArm sends it (S301)
export const RD_RECV_STORING: u8 = 8; // rdTake: the caller is storing the block (S327); rdRelease answers
/** Peer of a link that reaches any node (a unit laid out with its own rings, as the test image runs it). */
export const RD_ANY_PEER: u32 = 0xFFFF;

// Owed sends (RdSlot.owe).
const OWE_WRITE: u32 = 1;
const OWE_READY: u32 = 2;
const OWE_RECEIVED: u32 = 4;

/** Status of a command that was given up: CHECK CONDITION, ABORTED COMMAND, 0Bh/08h/01h (timeout). */
export const RD_STATUS_TIMEOUT: u32 = (0x02 << 24) | (0x0B << 16) | (0x08 << 8) | 0x01;

@unmanaged export class RdUnit {
  node: u16;
  links: u8;
  dataParts: u8; // N of the commands this unit sends
  parityParts: u8; // m
  queue: u8; // this unit's queue on its links (srcQueue of what it sends: answers come back here)
  slots: u16;
  retries: u32;
  nextCmd: u32;
  timeoutNs: f64;
  wakeAtNs: f64; // poll again by then (0: no timer)
  nowNs: f64; // the poll in progress
  rings: u32; // links x (rx, tx) ring addresses, u32 each; then links x (u16 peer node, u16 tag)
  slotTable: u32;
  buffer: u32; // slots x RD_MAX_PARTS parts of LINK_PAYLOAD_BYTES
  scratch: u32; // RS_SCRATCH_BYTES, then the part pointer list (RD_MAX_PARTS u32)
  stats: u32; // RDS_COUNT u64
  end: u32; // first byte after the unit
}

@unmanaged export class RdSlot {
  state: u8;
  tries: u8;
  parts: u8; // N + m of this command
  n: u8;
  peerNode: u16;
  peerQueue: u8;
  link: u8; // the link a receiver answers on
  cmdId: u32;
  total: u32; // data bytes
  partBytes: u32;
  lbaLo: u32;
  lbaHi: u32;
  got: u32; // receiver: parts held; sender: parts sent in the current round
  want: u32; // sender: parts asked for (READY); receiver: unused
  owe: u32; // OWE_*
  status: u32; // status << 24 | key << 16 | asc << 8 | ascq: of RECEIVED (sender), of the store (receiver)
  rounds: u32; // sender: rounds of parts sent (the first is all N + m, later ones what READY named)
  seen: u32; // highest number + 1 acted on: receiver, of the WRITE's attempts; sender, of the READYs
  asked: u32; // WRITEs (sender) or READYs (receiver) issued: each copy of one carries the same number
  deadlineNs: f64;
  issuingId: u32; // carried by the WRITE (003 [0178]): the receiver applies a pair's blocks in this order
  volume0: u32; // the target volume's name (LPK_VOLUME, 12 bytes), carried by the WRITE
  volume1: u32;
  volume2: u32;
  timeoutNs: f64; // this command's bound (the pair's timeout on a sender, the unit's on a receiver)
  retries: u32;
}
const SLOT_BYTES: u32 = <u32>offsetof<RdSlot>();
const HEADER_BYTES: u32 = <u32>alignUp(offsetof<RdUnit>(), 64);

// @ts-ignore: decorator
@inline function unit(u: usize): RdUnit { return changetype<RdUnit>(u); }
// @ts-ignore: decorator
@inline function slot(u: usize, i: u32): RdSlot { return changetype<RdSlot>(<usize>unit(u).slotTable + <usize>i * SLOT_BYTES); }
function rxRing(u: usize, l: u32): usize { return <usize>load<u32>(<usize>unit(u).rings + <usize>l * 8); }
function txRing(u: usize, l: u32): usize { return <usize>load<u32>(<usize>unit(u).rings + <usize>l * 8 + 4); }
function peerOf(u: usize, l: u32): u32 { return <u32>load<u16>(<usize>unit(u).rings + RD_MAX_LINKS * 8 + <usize>l * 4); }
function statAt(u: usize, i: u32): usize { return <usize>unit(u).stats + <usize>i * 8; }
function statAdd(u: usize, i: u32, n: u64): void { store<u64>(statAt(u, i), load<u64>(statAt(u, i)) + n); }
function partAt(u: usize, i: u32, part: u32): usize {
  return <usize>unit(u).buffer + (<usize>i * RD_MAX_PARTS + <usize>part) * LINK_PAYLOAD_BYTES;
}
function maskOf(count: u32): u32 { return count >= 32 ? 0xFFFFFFFF : (<u32>1 << count) - 1; }

/**
 * Lays a unit out at u: `links` link queue pairs (tx doorbells DB_LINK_TX_BASE + link), `slots`
 * command slots with buffer memory for RD_MAX_PARTS parts each, sending N data + m parity parts.
 * Grows memory as needed. Returns the unit's size in bytes, or a negative error: -1 a count out of
 * range (links 1..8, slots 1..256, N >= 1, m <= RS_MAX_M, N + m <= 32), -2 memory cannot grow.
 */
export function rdLayout(u: usize, node: u32, links: u32, n: u32, m: u32, slots: u32, timeoutUs: u32, retries: u32): i32 {
  return layoutUnit(u, node, links, n, m, slots, timeoutUs, retries, true);
}

/**
 * The same without rings of its own: the caller binds each link to rings it has (rdBindLink; an
 * array binds its link ports' session rings, remote/rdlink.ts). Memory must hold rdBytes already.
 */
export function rdLayoutBound(u: usize, node: u32, links: u32, slots: u32, timeoutUs: u32, retries: u32): i32 {
  return layoutUnit(u, node, links, 1, 0, slots, timeoutUs, retries, false);
}

/** Bytes a unit of `links` links and `slots` slots takes from u (REGION_ALIGN aligned), with or without its own rings. */
export function rdBytes(links: u32, slots: u32, ownRings: bool): usize {
  return layoutEnd(0, links, slots, ownRings);
}

function layoutEnd(u: usize, links: u32, slots: u32, ownRings: bool): usize {
  const ringB = alignUp(ringBytes(LINK_RING_ENTRIES, LINK_ENTRY_BYTES), REGION_ALIGN);
  let at = alignUp(u + HEADER_BYTES, REGION_ALIGN);
  if (ownRings) at += <usize>links * 2 * ringB;
  at = alignUp(at + <usize>slots * SLOT_BYTES, REGION_ALIGN);
  at += <usize>slots * RD_MAX_PARTS * LINK_PAYLOAD_BYTES;
  at += RS_SCRATCH_BYTES + RD_MAX_PARTS * 4;
  at += RDS_COUNT * 8 + RD_MAX_LINKS * 8 + RD_MAX_LINKS * 4; // the ring table and the peer table below
  return alignUp(at, REGION_ALIGN);
}

function layoutUnit(u: usize, node: u32, links: u32, n: u32, m: u32, slots: u32, timeoutUs: u32, retries: u32, ownRings: bool): i32 {
  if (links < 1 || links > RD_MAX_LINKS || slots < 1 || slots > RD_MAX_SLOTS) return -1;
  if (n < 1 || m > <u32>RS_MAX_M || n + m > RD_MAX_PARTS) return -1;
  const ringB = alignUp(ringBytes(LINK_RING_ENTRIES, LINK_ENTRY_BYTES), REGION_ALIGN);
  let at = alignUp(u + HEADER_BYTES, REGION_ALIGN);
  const rings = at;
  if (ownRings) at += <usize>links * 2 * ringB;
  const table = at;
  at = alignUp(at + <usize>slots * SLOT_BYTES, REGION_ALIGN);
  const buffer = at;
  at += <usize>slots * RD_MAX_PARTS * LINK_PAYLOAD_BYTES;
  const scratch = at;
  at += RS_SCRATCH_BYTES + RD_MAX_PARTS * 4;
  const stats = at;
  at = layoutEnd(u, links, slots, ownRings);
  const have = <usize>memory.size() * PAGE_BYTES;
  if (at > have && memory.grow(<i32>((at - have + PAGE_BYTES - 1) / PAGE_BYTES)) < 0) return -2;
  memory.fill(u, 0, HEADER_BYTES);
  const x = unit(u);
  x.node = <u16>node;
  x.links = <u8>links;
  x.dataParts = <u8>n;
  x.parityParts = <u8>m;
  x.slots = <u16>slots;
  x.retries = retries;
  x.nextCmd = 1;
  x.timeoutNs = <f64>timeoutUs * 1000;
  x.rings = <u32>(stats + RDS_COUNT * 8);
  x.slotTable = <u32>table;
  x.buffer = <u32>buffer;
  x.scratch = <u32>scratch;
  x.stats = <u32>stats;
  x.end = <u32>at;
  memory.fill(<usize>x.rings, 0, RD_MAX_LINKS * 8);
  let r = rings;
  for (let l: u32 = 0; l < links; l++) {
    store<u16>(<usize>x.rings + RD_MAX_LINKS * 8 + <usize>l * 4, <u16>RD_ANY_PEER);
    store<u16>(<usize>x.rings + RD_MAX_LINKS * 8 + <usize>l * 4 + 2, 0);
    if (!ownRings) continue;
    store<u32>(<usize>x.rings + <usize>l * 8, <u32>r);
    ringInit(r, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, 0);
    r += ringB;
    store<u32>(<usize>x.rings + <usize>l * 8 + 4, <u32>r);
    ringInit(r, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, DB_LINK_TX_BASE + l);
    r += ringB;
  }
  memory.fill(table, 0, <usize>slots * SLOT_BYTES);
  memory.fill(stats, 0, RDS_COUNT * 8);
  return <i32>(at - u);
}

/**
 * Link l of the unit sends on tx and receives on rx (rings the caller serves), and reaches node
 * `peer` (RD_ANY_PEER: any); `tag` is the caller's (an array: the link port). A command to a node
 * goes only on the links that reach it (Fig. 17: the separate networks between two units).
 */
export function rdBindLink(u: usize, l: u32, rx: usize, tx: usize, peer: u32, tag: u32): void {
  const x = unit(u);
  store<u32>(<usize>x.rings + <usize>l * 8, <u32>rx);
  store<u32>(<usize>x.rings + <usize>l * 8 + 4, <u32>tx);
  store<u16>(<usize>x.rings + RD_MAX_LINKS * 8 + <usize>l * 4, <u16>peer);
  store<u16>(<usize>x.rings + RD_MAX_LINKS * 8 + <usize>l * 4 + 2, <u16>tag);
}
export function rdLinkTag(u: usize, l: u32): u32 { return <u32>load<u16>(<usize>unit(u).rings + RD_MAX_LINKS * 8 + <usize>l * 4 + 2); }
/** The unit's link whose receive ring is rx, or -1. */
export function rdLinkOfRx(u: usize, rx: usize): i32 {
  for (let l: u32 = 0; l < <u32>unit(u).links; l++) if (rxRing(u, l) == rx) return <i32>l;
  return -1;
}
/** Links of the unit that reach node `peer`. */
export function rdLinksToward(u: usize, peer: u32): u32 {
  let n: u32 = 0;
  for (let l: u32 = 0; l < <u32>unit(u).links; l++) if (reaches(u, l, peer)) n++;
  return n;
}
export function rdSetQueue(u: usize, q: u32): void { unit(u).queue = <u8>q; }
function reaches(u: usize, l: u32, peer: u32): bool { const p = peerOf(u, l); return p == RD_ANY_PEER || p == peer; }
/** The k-th (mod their count) link of the unit that reaches `peer`; link 0 if none does. */
function linkToward(u: usize, peer: u32, k: u32): u32 {
  const n = rdLinksToward(u, peer);
  if (n == 0) return 0;
  let want = k % n;
  for (let l: u32 = 0; l < <u32>unit(u).links; l++) {
    if (!reaches(u, l, peer)) continue;
    if (want == 0) return l;
    want--;
  }
  return 0;
}
/** Position of link l among the links that reach `peer`. */
function rankOf(u: usize, peer: u32, l: u32): u32 {
  let n: u32 = 0;
  for (let k: u32 = 0; k < l; k++) if (reaches(u, k, peer)) n++;
  return n;
}

export function rdRxRing(u: usize, l: u32): usize { return rxRing(u, l); }
export function rdTxRing(u: usize, l: u32): usize { return txRing(u, l); }
export function rdStat(u: usize, i: u32): u64 { return load<u64>(statAt(u, i)); }
export function rdWakeAt(u: usize): f64 { return unit(u).wakeAtNs; }
export function rdSlotState(u: usize, i: u32): u32 { return i < <u32>unit(u).slots ? <u32>slot(u, i).state : 0; }
export function rdSlotStatus(u: usize, i: u32): u32 { return slot(u, i).status; }
export function rdSlotCmdId(u: usize, i: u32): u32 { return slot(u, i).cmdId; }
export function rdSlotLba(u: usize, i: u32): u64 { return (<u64>slot(u, i).lbaHi << 32) | <u64>slot(u, i).lbaLo; }
export function rdSlotBytes(u: usize, i: u32): u32 { return slot(u, i).total; }
/** Receiver: where the whole block of a RD_RECV_READY slot is (data parts are contiguous). */
export function rdSlotData(u: usize, i: u32): usize { return partAt(u, i, 0); }

/** Commands the unit holds now (sending or gathering; a block waiting for rdTake counts). */
export function rdActive(u: usize): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < <u32>unit(u).slots; i++) {
    const s = slot(u, i).state;
    if (s != RD_FREE && s != RD_SEND_DONE && s != RD_RECV_KEPT) n++;
  }
  return n;
}

/**
 * S301 (S344): a redundancy-processed write of `bytes` at `src` (at most N parts of a packet each)
 * to block `lba` on node `dstNode`, queue `dstQueue`. The data is copied into the slot's buffer
 * memory and split into N equal parts (the last padded with zeros). Returns the slot, or -1 when
 * no slot is free, -2 when bytes is 0 or more than N packets.
 */
export function rdWrite(u: usize, dstNode: u32, dstQueue: u32, lba: u64, src: usize, bytes: u32): i32 {
  const x = unit(u);
  const i = rdBegin(u, dstNode, dstQueue, lba, bytes, <u32>x.dataParts, <u32>x.parityParts, <u32>(x.timeoutNs / 1000), x.retries);
  if (i < 0) return i;
  rdFill(u, <u32>i, 0, src, bytes);
  rdArm(u, <u32>i);
  return i;
}

/**
 * S301 (S344) in steps, for a caller whose block arrives in pieces (an array's read path): a slot
 * for `bytes` to block `lba` of node `dstNode`, as N data + m parity parts, with its own bound
 * (timeoutUs, retries). The data parts are zero (the padding); rdFill copies the block in and
 * rdArm sends the WRITE. Returns the slot (RD_SEND_FILL), or -1 when no slot is free, -2 when a
 * count is out of range (bytes 0 or more than N packets; N + m > 32; m > RS_MAX_M).
 */
export function rdBegin(u: usize, dstNode: u32, dstQueue: u32, lba: u64, bytes: u32, n: u32, m: u32, timeoutUs: u32, retries: u32): i32 {
  const x = unit(u);
  if (n < 1 || m > <u32>RS_MAX_M || n + m > RD_MAX_PARTS) return -2;
  if (bytes == 0 || bytes > n * LINK_PAYLOAD_BYTES) return -2;
  const i = freeSlot(u);
  if (i < 0) return -1;
  const s = slot(u, <u32>i);
  memory.fill(changetype<usize>(s), 0, SLOT_BYTES);
  s.state = RD_SEND_FILL;
  s.n = <u8>n;
  s.parts = <u8>(n + m);
  s.peerNode = <u16>dstNode;
  s.peerQueue = <u8>dstQueue;
  s.cmdId = x.nextCmd++;
  s.total = bytes;
  s.partBytes = (bytes + n - 1) / n;
  s.lbaLo = <u32>lba;
  s.lbaHi = <u32>(lba >> 32);
  s.timeoutNs = <f64>timeoutUs * 1000;
  s.retries = retries;
  for (let p: u32 = 0; p < n; p++) memory.fill(partAt(u, <u32>i, p), 0, s.partBytes);
  return i;
}

/** Bytes [offset, offset + n) of the block of a RD_SEND_FILL slot, from src, into their parts. */
export function rdFill(u: usize, i: u32, offset: u32, src: usize, n: u32): void {
  const s = slot(u, i);
  if (s.state != RD_SEND_FILL || offset >= s.total) return;
  partCopy(u, i, offset, src, min<u32>(n, s.total - offset), true);
}

/** The block of slot i is whole: the WRITE goes out at the next poll (S301). */
export function rdArm(u: usize, i: u32): void {
  const s = slot(u, i);
  if (s.state != RD_SEND_FILL) return;
  s.state = RD_SEND_WRITE;
  s.owe = OWE_WRITE;
  s.deadlineNs = unit(u).nowNs + s.timeoutNs;
  statAdd(u, RDS_WRITES, 1);
}

/** The issuing ID and target volume name (12 bytes at name) a sender's WRITE carries. */
export function rdTag(u: usize, i: u32, issuingId: u32, name: usize): void {
  const s = slot(u, i);
  s.issuingId = issuingId;
  s.volume0 = load<u32>(name);
  s.volume1 = load<u32>(name, 4);
  s.volume2 = load<u32>(name, 8);
}

/** Receiver: bytes [offset, offset + n) of a rebuilt block (RD_RECV_READY or taken) to dst. */
export function rdCopyOut(u: usize, i: u32, offset: u32, dst: usize, n: u32): void {
  const s = slot(u, i);
  if (offset >= s.total) return;
  partCopy(u, i, offset, dst, min<u32>(n, s.total - offset), false);
}

/** Copies between a block's bytes and its data parts (part k holds bytes k * partBytes ...). */
function partCopy(u: usize, i: u32, offset: u32, buf: usize, n: u32, into: bool): void {
  const pb = slot(u, i).partBytes;
  let done: u32 = 0;
  while (done < n) {
    const at = offset + done;
    const k = at / pb;
    const within = at % pb;
    const len = min<u32>(pb - within, n - done);
    const part = partAt(u, i, k) + <usize>within;
    if (into) memory.copy(part, buf + <usize>done, len); else memory.copy(buf + <usize>done, part, len);
    done += len;
  }
}

/** Receiver: the caller takes a RD_RECV_READY block to store it (S327); rdRelease answers. */
export function rdTake(u: usize, i: u32): void {
  if (slot(u, i).state == RD_RECV_READY) slot(u, i).state = RD_RECV_STORING;
}

export function rdSlotIssuing(u: usize, i: u32): u32 { return slot(u, i).issuingId; }
/** The target volume name (12 bytes) a received WRITE carried. */
export function rdSlotVolume(u: usize, i: u32): usize { return changetype<usize>(slot(u, i)) + offsetof<RdSlot>("volume0"); }
export function rdSlotPeer(u: usize, i: u32): u32 { return <u32>slot(u, i).peerNode; }
export function rdSlotLink(u: usize, i: u32): u32 { return <u32>slot(u, i).link; }

/**
 * The caller has read a RD_SEND_DONE slot's status; or it has stored a RD_RECV_READY slot's block
 * (S327) with `status` (0 GOOD, else status << 24 | key << 16 | asc << 8 | ascq), which RECEIVED
 * (S326) carries back: the sender hears GOOD only for a block that is kept. (003 sends S326 before
 * S327; an acknowledgement that the store may still fail is one the primary could not rely on.)
 */
export function rdRelease(u: usize, i: u32, status: u32): void {
  const s = slot(u, i);
  if (s.state == RD_SEND_DONE || s.state == RD_SEND_FILL) { s.state = RD_FREE; return; } // FILL: abandoned before S301
  if (s.state == RD_RECV_READY || s.state == RD_RECV_STORING) {
    s.state = RD_RECV_KEPT; // the identity stays: a repeated WRITE is answered RECEIVED, late parts dropped
    s.status = status;
    s.owe |= OWE_RECEIVED;
    s.deadlineNs = unit(u).nowNs + s.timeoutNs * <f64>(s.retries + 2);
  }
}

/** A receiver slot whose block is whole (RD_RECV_READY), or -1. */
export function rdTakeNext(u: usize): i32 {
  for (let i: u32 = 0; i < <u32>unit(u).slots; i++) if (slot(u, i).state == RD_RECV_READY) return <i32>i;
  return -1;
}

/** One poll: every received packet, then every slot's owed sends and timers. Returns the work done. */
export function rdPoll(u: usize, now: f64): i32 {
  const x = unit(u);
  x.nowNs = now;
  let work: i32 = 0;
  for (let l: u32 = 0; l < <u32>x.links; l++) {
    const rx = rxRing(u, l);
    for (let p = pktNext(rx, statAt(u, RDS_BAD)); p != 0; p = pktNext(rx, statAt(u, RDS_BAD))) {
      receive(u, l, p);
      ringRelease(rx, 1);
      work++;
    }
  }
  return work + rdTick(u, now);
}

/**
 * A packet with LF_REDUNDANT that the caller took from link l's receive ring (its CRC checked; a
 * bad one counted with rdCountBad): an array's link unit hands them over, it keeps the ring.
 */
export function rdReceive(u: usize, l: u32, p: usize, now: f64): void {
  unit(u).nowNs = now;
  receive(u, l, p);
}
export function rdCountBad(u: usize): void { statAdd(u, RDS_BAD, 1); }

/** Every slot's owed sends and timers (rdPoll without the receive rings). Returns the work done. */
export function rdTick(u: usize, now: f64): i32 {
  const x = unit(u);
  x.nowNs = now;
  x.wakeAtNs = 0;
  let work: i32 = 0;
  for (let i: u32 = 0; i < <u32>x.slots; i++) {
    if (slot(u, i).state == RD_FREE) continue;
    work += emit(u, i) + timers(u, i);
  }
  return work;
}

function wakeAt(u: usize, t: f64): void {
  const x = unit(u);
  if (x.wakeAtNs == 0 || t < x.wakeAtNs) x.wakeAtNs = t;
}

/**
 * A free slot; failing that, the kept identity (RD_RECV_KEPT, its RECEIVED sent) nearest its end:
 * identities are kept only to answer repeats, and must not starve new commands of buffer memory.
 */
function freeSlot(u: usize): i32 {
  let kept: i32 = -1;
  for (let i: u32 = 0; i < <u32>unit(u).slots; i++) {
    const s = slot(u, i);
    if (s.state == RD_FREE) return <i32>i;
    if (s.state == RD_RECV_KEPT && s.owe == 0 && (kept < 0 || s.deadlineNs < slot(u, <u32>kept).deadlineNs)) kept = <i32>i;
  }
  return kept;
}

// ---- Receiving ----------------------------------------------------------------------------------

function receive(u: usize, l: u32, p: usize): void {
  const h = pkt(p);
  if ((<u32>h.flags & LF_REDUNDANT) == 0) { statAdd(u, RDS_BAD, 1); return; }
  const type = <u32>h.type;
  if (type == LT_WRITE) { remoteWrite(u, l, p); return; }
  if (type == LT_DATA) { remotePart(u, p); return; }
  const i = senderSlot(u, h.cmdId);
  if (i < 0) { statAdd(u, RDS_SURPLUS, 1); return; } // an answer for a command that has ended
  if (type == LT_READY) ready(u, <u32>i, p);
  else if (type == LT_RECEIVED) received(u, <u32>i, p);
  else statAdd(u, RDS_BAD, 1);
}

function senderSlot(u: usize, cmdId: u32): i32 {
  for (let i: u32 = 0; i < <u32>unit(u).slots; i++) {
    const s = slot(u, i);
    if ((s.state == RD_SEND_WRITE || s.state == RD_SEND_PARTS) && s.cmdId == cmdId) return <i32>i;
  }
  return -1;
}

function isReceiver(st: u8): bool { return st == RD_RECV_GATHER || st == RD_RECV_READY || st == RD_RECV_KEPT || st == RD_RECV_STORING; }

function receiverSlot(u: usize, node: u32, queue: u32, cmdId: u32): i32 {
  for (let i: u32 = 0; i < <u32>unit(u).slots; i++) {
    const s = slot(u, i);
    if (isReceiver(s.state) && s.cmdId == cmdId && <u32>s.peerNode == node && <u32>s.peerQueue == queue) return <i32>i;
  }
  return -1;
}

/** S320-S321: a redundancy-processed WRITE. A repeated one is answered again, not started twice. */
function remoteWrite(u: usize, l: u32, p: usize): void {
  const h = pkt(p);
  const attempt = h.offset >> 16;
  const dup = receiverSlot(u, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId);
  if (dup >= 0) {
    statAdd(u, RDS_DUPLICATES, 1);
    const s = slot(u, <u32>dup);
    if (attempt < s.seen) return; // a copy of a WRITE already answered (another network's, or the wire's)
    s.seen = attempt + 1; // a repeat: the sender missed the answer
    s.link = <u8>l;
    if (s.state == RD_RECV_GATHER) s.owe |= OWE_READY;
    else if (s.state == RD_RECV_KEPT) s.owe |= OWE_RECEIVED; // RD_RECV_READY: RECEIVED follows the store
    return;
  }
  const n = h.offset & 0xFF;
  const m = (h.offset >> 8) & 0xFF;
  if (n < 1 || m > <u32>RS_MAX_M || n + m > RD_MAX_PARTS || h.total == 0 || h.total > n * LINK_PAYLOAD_BYTES) {
    statAdd(u, RDS_BAD, 1);
    return;
  }
  const i = freeSlot(u);
  if (i < 0) { statAdd(u, RDS_NO_BUFFER, 1); return; } // S320 cannot hold it: the sender repeats the WRITE
  const s = slot(u, <u32>i);
  memory.fill(changetype<usize>(s), 0, SLOT_BYTES);
  s.state = RD_RECV_GATHER;
  s.n = <u8>n;
  s.parts = <u8>(n + m);
  s.peerNode = h.srcNode;
  s.peerQueue = h.srcQueue;
  s.link = <u8>l;
  s.cmdId = h.cmdId;
  s.total = h.total;
  s.partBytes = (h.total + n - 1) / n;
  const lba = pktLba(p);
  s.lbaLo = <u32>lba;
  s.lbaHi = <u32>(lba >> 32);
  s.owe = OWE_READY; // S321
  s.seen = attempt + 1;
  s.issuingId = h.issuingId;
  s.volume0 = h.volume0;
  s.volume1 = h.volume1;
  s.volume2 = h.volume2;
  s.timeoutNs = unit(u).timeoutNs;
  s.retries = unit(u).retries;
  s.deadlineNs = unit(u).nowNs + s.timeoutNs;
  statAdd(u, RDS_COMMANDS, 1);
}

/** S322-S325: a part into its place in the slot; at the N-th, the block is rebuilt and acknowledged. */
function remotePart(u: usize, p: usize): void {
  const h = pkt(p);
  const i = receiverSlot(u, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId);
  if (i < 0) { statAdd(u, RDS_SURPLUS, 1); return; } // its command has ended
  const s = slot(u, <u32>i);
  const part = h.offset & 0xFF;
  if (part >= <u32>s.parts || (h.offset >> 8) != ((<u32>s.n) | ((<u32>s.parts - <u32>s.n) << 8)) || <u32>h.length != s.partBytes) {
    statAdd(u, RDS_BAD, 1);
    return;
  }
  if (s.state != RD_RECV_GATHER) { statAdd(u, RDS_SURPLUS, 1); return; } // past S325: not needed ([0136])
  if ((s.got & (<u32>1 << part)) != 0) { statAdd(u, RDS_DUPLICATES, 1); return; }
  memory.copy(partAt(u, <u32>i, part), p + LINK_HEADER_BYTES, <usize>s.partBytes); // S323
  s.got |= <u32>1 << part;
  s.deadlineNs = unit(u).nowNs + s.timeoutNs;
  s.tries = 0;
  if (<u32>popcnt<u32>(s.got) < <u32>s.n) return; // S324: fewer than N, wait for more (S322)
  rebuild(u, <u32>i);
}

/** S325: the data parts that did not come are computed from the N that did; S326 RECEIVED is owed. */
function rebuild(u: usize, i: u32): void {
  const s = slot(u, i);
  const n = <u32>s.n;
  const m = <u32>s.parts - n;
  const missing = ~s.got & maskOf(n);
  if (missing != 0) {
    const list = <usize>unit(u).scratch + RS_SCRATCH_BYTES;
    for (let k: u32 = 0; k < <u32>s.parts; k++) store<u32>(list + <usize>k * 4, <u32>partAt(u, i, k));
    const rc = rsReconstruct(<i32>n, <i32>m, list, <u64>s.got, <u64>missing, <usize>s.partBytes, <usize>unit(u).scratch);
    if (rc != KERR_OK) { // cannot happen with N parts of a Cauchy code; never acknowledge what is not rebuilt
      statAdd(u, RDS_BAD, 1);
      s.state = RD_FREE;
      return;
    }
    statAdd(u, RDS_REBUILT, 1);
  }
  s.state = RD_RECV_READY; // RECEIVED (S326) once the caller has stored it: rdRelease
  s.owe &= ~OWE_READY;
  s.deadlineNs = unit(u).nowNs + s.timeoutNs * <f64>(s.retries + 2); // a block no caller takes by then is dropped
}

/** S303 (S347): READY; its `total` names the parts wanted (all of them the first time). */
function ready(u: usize, i: u32, p: usize): void {
  const s = slot(u, i);
  const number = pkt(p).offset >> 16;
  if (number < s.seen) { statAdd(u, RDS_DUPLICATES, 1); return; } // a copy of a READY acted on
  s.seen = number + 1;
  const want = pkt(p).total & maskOf(<u32>s.parts);
  if (s.state == RD_SEND_WRITE) {
    const x = unit(u);
    const n = <u32>s.n;
    const m = <u32>s.parts - n;
    if (m > 0) { // S304 (S348): the parity parts from the N data parts
      const data = <usize>x.scratch + RS_SCRATCH_BYTES;
      const parity = data + <usize>n * 4;
      for (let k: u32 = 0; k < <u32>s.parts; k++) store<u32>(data + <usize>k * 4, <u32>partAt(u, i, k));
      const rc = rsEncode(<i32>n, <i32>m, data, parity, <usize>s.partBytes, <usize>x.scratch);
      if (rc != KERR_OK) { giveUp(u, i); return; }
    }
    s.state = RD_SEND_PARTS;
    s.owe &= ~OWE_WRITE;
    s.got = 0;
    s.want = want;
    s.tries = 0;
  } else if (s.rounds > s.retries) { // asked again and again: the bound of the command
    giveUp(u, i);
    return;
  } else {
    s.want |= want; // a retransmission request: these parts again
    s.got &= ~want;
  }
  s.deadlineNs = unit(u).nowNs + 2 * s.timeoutNs;
}

/** The command failed: the caller reads the timeout status and tells its host. */
function giveUp(u: usize, i: u32): void {
  const s = slot(u, i);
  s.state = RD_SEND_DONE;
  s.status = RD_STATUS_TIMEOUT;
  s.owe = 0;
  statAdd(u, RDS_FAILED, 1);
}

/** S306 (S350): RECEIVED — the command is done with its status. */
function received(u: usize, i: u32, p: usize): void {
  const s = slot(u, i);
  const h = pkt(p);
  s.status = (<u32>h.status << 24) | (<u32>h.senseKey << 16) | (<u32>h.asc << 8) | <u32>h.ascq;
  s.state = RD_SEND_DONE;
  s.owe = 0;
  statAdd(u, h.status == 0 ? RDS_DONE : RDS_FAILED, 1);
}

// ---- Sending ------------------------------------------------------------------------------------

function emit(u: usize, i: u32): i32 {
  const s = slot(u, i);
  let n: i32 = 0;
  if ((s.owe & OWE_WRITE) != 0 && sendWrite(u, i)) { s.owe &= ~OWE_WRITE; n++; }
  if ((s.owe & OWE_READY) != 0 && s.state == RD_RECV_GATHER && answer(u, i, LT_READY)) { s.owe &= ~OWE_READY; n++; }
  if ((s.owe & OWE_RECEIVED) != 0 && answer(u, i, LT_RECEIVED)) { s.owe &= ~OWE_RECEIVED; n++; }
  if (s.state == RD_SEND_PARTS && (s.want & ~s.got) != 0) n += sendParts(u, i);
  return n;
}

/**
 * A packet of slot i's command begun in tx: the redundancy flag, both ends, the command identifier
 * and `offset` = N | m << 8 (a part's packet shifts it to make room: part | N << 8 | m << 16).
 * `origin`: the node that issued the command. 0 when the ring is full.
 */
function begin(u: usize, i: u32, tx: usize, type: u32, origin: u32): usize {
  const s = slot(u, i);
  const p = pktBegin(tx, type);
  if (p == 0) return 0;
  const h = pkt(p);
  h.flags = <u8>LF_REDUNDANT;
  h.srcNode = unit(u).node;
  h.srcQueue = unit(u).queue;
  h.dstNode = s.peerNode;
  h.issuingId = s.issuingId;
  h.dstQueue = s.peerQueue;
  h.cmdId = s.cmdId;
  h.origin = <u16>origin;
  h.offset = <u32>s.n | ((<u32>s.parts - <u32>s.n) << 8);
  h.total = s.total;
  return p;
}

/**
 * Control packets (WRITE, READY, RECEIVED) of a command with parity go out on every link, copies
 * as 003's redundant data may be ([0137]): losing one would stall the command for a timeout, which
 * the parts' parity cannot repair. Each copy carries the same number (the WRITE's attempt, the
 * READY's request), so the far end acts on one and drops the rest. Without parity, one link.
 */
function copies(u: usize, i: u32): u32 { return <u32>slot(u, i).parts > <u32>slot(u, i).n ? max<u32>(1, rdLinksToward(u, <u32>slot(u, i).peerNode)) : 1; }

/** The WRITE, first on link (attempt mod links): a repeat starts on the next network. */
function sendWrite(u: usize, i: u32): bool {
  const s = slot(u, i);
  for (let c: u32 = 0; c < copies(u, i); c++) {
    const tx = txRing(u, linkToward(u, <u32>s.peerNode, s.asked + c));
    const p = begin(u, i, tx, LT_WRITE, <u32>unit(u).node);
    if (p == 0) { if (c == 0) return false; break; } // a full ring: the copies sent do
    pkt(p).offset |= s.asked << 16;
    pkt(p).volume0 = s.volume0;
    pkt(p).volume1 = s.volume1;
    pkt(p).volume2 = s.volume2;
    pktSetLba(p, (<u64>s.lbaHi << 32) | <u64>s.lbaLo);
    pktSend(tx, p, 0);
  }
  s.asked++;
  return true;
}

/**
 * S321 READY (numbered; naming the parts wanted: all while none came, else those lacking) or S326
 * RECEIVED, first on the link the WRITE came by.
 */
function answer(u: usize, i: u32, type: u32): bool {
  const s = slot(u, i);
  const first = rankOf(u, <u32>s.peerNode, <u32>s.link);
  for (let c: u32 = 0; c < copies(u, i); c++) {
    const tx = txRing(u, linkToward(u, <u32>s.peerNode, first + c));
    const p = begin(u, i, tx, type, <u32>s.peerNode);
    if (p == 0) { if (c == 0) return false; break; }
    const h = pkt(p);
    if (type == LT_READY) {
      h.total = s.got == 0 ? maskOf(<u32>s.parts) : wanted(s);
      h.offset |= s.asked << 16;
    }
    if (type == LT_RECEIVED) {
      h.status = <u8>(s.status >> 24);
      h.senseKey = <u8>(s.status >> 16);
      h.asc = <u8>(s.status >> 8);
      h.ascq = <u8>s.status;
    }
    pktSend(tx, p, 0);
  }
  if (type == LT_READY) s.asked++;
  return true;
}

/**
 * The parts a retransmission request names: as many missing parts as are lacking to reach N (data
 * parts first, which need no rebuilding), so the repair sends no more than it must.
 */
function wanted(s: RdSlot): u32 {
  let need = <i32>s.n - <i32>popcnt<u32>(s.got);
  let mask: u32 = 0;
  for (let k: u32 = 0; k < <u32>s.parts && need > 0; k++) {
    if ((s.got & (<u32>1 << k)) != 0) continue;
    mask |= <u32>1 << k;
    need--;
  }
  return mask;
}

/** S305 (S349): each wanted part as a packet of its own, part k on link (k + round) mod links: a part asked for again takes another network. */
function sendParts(u: usize, i: u32): i32 {
  const x = unit(u);
  const s = slot(u, i);
  let sent: i32 = 0;
  for (let k: u32 = 0; k < <u32>s.parts; k++) {
    const bit = <u32>1 << k;
    if ((s.want & bit) == 0 || (s.got & bit) != 0) continue;
    const tx = txRing(u, linkToward(u, <u32>s.peerNode, k + s.rounds));
    const p = begin(u, i, tx, LT_DATA, <u32>x.node);
    if (p == 0) break; // the ring is full: the rest next poll
    const h = pkt(p);
    h.offset = k | (h.offset << 8);
    if (k + 1 == <u32>s.parts) h.flags = <u8>(LF_REDUNDANT | LF_LAST);
    memory.copy(p + LINK_HEADER_BYTES, partAt(u, i, k), <usize>s.partBytes);
    pktSend(tx, p, s.partBytes);
    s.got |= bit;
    sent++;
  }
  statAdd(u, s.rounds == 0 ? RDS_PARTS_SENT : RDS_PARTS_RESENT, <u64>sent);
  if ((s.want & ~s.got) == 0) { // this round is out; a READY naming parts starts another
    s.want = 0;
    s.got = 0;
    s.rounds++;
  }
  return sent;
}

// ---- Bounded waits ------------------------------------------------------------------------------

function timers(u: usize, i: u32): i32 {
  const x = unit(u);
  const s = slot(u, i);
  if (s.state == RD_SEND_DONE || s.state == RD_SEND_FILL || s.state == RD_RECV_STORING) return 0;
  if (s.state == RD_RECV_KEPT || s.state == RD_RECV_READY) {
    // KEPT: the identity's time is up. READY: a block its caller never took (its turn never came:
    // the sender gave the command up long ago) is dropped unanswered, so buffer memory is not held for ever.
    if (x.nowNs < s.deadlineNs) { wakeAt(u, s.deadlineNs); return 0; }
    if (s.state == RD_RECV_READY) statAdd(u, RDS_GIVEN_UP, 1);
    s.state = RD_FREE;
    return 0;
  }
  if (x.nowNs < s.deadlineNs) { wakeAt(u, s.deadlineNs); return 0; }
  if (<u32>s.tries >= s.retries) {
    if (s.state == RD_RECV_GATHER) { statAdd(u, RDS_GIVEN_UP, 1); s.state = RD_FREE; return 1; }
    giveUp(u, i);
    return 1;
  }
  s.tries++;
  s.deadlineNs = x.nowNs + (s.state == RD_SEND_PARTS ? 2 : 1) * s.timeoutNs;
  wakeAt(u, s.deadlineNs);
  if (s.state == RD_RECV_GATHER) { // more than m lost: ask for the parts still lacking
    s.owe |= OWE_READY;
    statAdd(u, RDS_RESEND_REQUESTS, 1);
  } else { // no READY, or no RECEIVED: the WRITE again (answered READY naming parts, or RECEIVED)
    s.owe |= OWE_WRITE;
    statAdd(u, RDS_REPEATS, 1);
  }
  return 1;
}

// ---- For the trace (trace10): which receiver slot a packet belongs to, and what it holds ---------

/** The receiver slot of (sender node, queue, command identifier), or -1. */
export function rdFindReceiver(u: usize, node: u32, queue: u32, cmdId: u32): i32 { return receiverSlot(u, node, queue, cmdId); }
/** Receiver: the mask of the parts that came; N and m of the command (N | m << 8). */
export function rdSlotGot(u: usize, i: u32): u32 { return slot(u, i).got; }
export function rdSlotShape(u: usize, i: u32): u32 { return <u32>slot(u, i).n | ((<u32>slot(u, i).parts - <u32>slot(u, i).n) << 8); }
