// The array's redundancy unit (document 003, embodiments 5 and 6; docs/remote.md, "Redundancy-processed
// writes"): each channel IOP that ends a link has one unit of remote/redundancy.ts in its part of the
// memory map, whose links are the IOP's link ports (their session rings), each knowing the node it
// reaches, so a block's parts cross every network between the two arrays (Fig. 17). comm/link.ts
// hands it the packets flagged LF_REDUNDANT and calls it from its poll; a send command of a pair
// created with redundancy fills a slot from the read path instead of sending DATA itself.
//
//   sender (Figs. 15, 18): rdSendBegin reserves a slot before the command takes an issuing ID (IDs
//     must stay consecutive: the secondary applies them in order); the read path fills it (rdFill),
//     rdArm sends the WRITE (S301/S344); the unit encodes at READY (S304/S348), sends the parts
//     (S305/S349) and waits for RECEIVED (S306/S350); the send command ends with its status.
//   receiver (Fig. 16): a block rebuilt from any N parts (S320-S325) waits in its slot for its turn
//     by issuing ID; then it is applied as a WRITE of the named volume through the ordinary write
//     path (S327: cache and NV) and only then is RECEIVED (S326) sent, with the write's status.
import { LT_DATA, LT_WRITE, TRACE_REMOTE_REBUILT, RDROP_SURPLUS, RDROP_PART_AGAIN, RDROP_WRITE_AGAIN } from "../abi";
import { MAP_ADDR, MAP_IOP_TABLE, MAP_IOP_BYTES, CPORT_KIND, CPORT_IOP, CPORT_LINK_PEER, CPORT_LINK_QUEUE, PORT_LINK, SES_RX, SES_TX, LINK_PAYLOAD_BYTES } from "../abi";
import { cfgPort, portCount } from "../config";
import { gIndex, gNow, wakeAt } from "../iop";
import { myNode, remote, remoteOfVolume } from "./pair";
import { sessionDesc } from "../channel";
import { blockSize } from "../volume";
import {
  rdBytes, rdLayoutBound, rdBindLink, rdSetQueue, rdTick, rdReceive, rdLinkOfRx, rdLinksToward, rdBegin, rdTake,
  rdRelease, rdSlotState, rdSlotVolume, rdSlotPeer, rdSlotIssuing, rdSlotBytes, rdSlotLba, rdSlotLink, rdLinkTag,
  rdWakeAt, rdCountBad, RD_MAX_LINKS, RD_MAX_PARTS, RD_ANY_PEER, RD_RECV_READY,
  RD_RECV_GATHER, RDS_SURPLUS, RDS_DUPLICATES, rdStat, rdFindReceiver, rdSlotGot, rdSlotShape,
} from "./redundancy";
import { pkt } from "./packet";
import { trace } from "../trace";
import { RS_MAX_M } from "../kernels/codes";
import { writeVerdict, WV_APPLY, WV_HOLD, volumeOfName, linkApplyBlock, traceDropped } from "../comm/link";

/** Command slots of an IOP's unit: each holds buffer memory for 32 parts (256 KiB). */
export const RD_ARRAY_SLOTS: u32 = 16;
/** A receiver's bound: parts asked again after this without one arriving, given up after the retries. */
export const RD_RECV_TIMEOUT_US: u32 = 5000;
export const RD_RECV_RETRIES: u32 = 8;
/** In the IOP's map entry (MAP_IOP_TABLE): u32, the address of its redundancy unit (0: none). */
const MIOPX_RD: u32 = 44;

function linkPort(port: u32, iop: u32): bool {
  const c = cfgPort(port);
  return <u32>load<u8>(c + CPORT_KIND) == PORT_LINK && <u32>load<u8>(c + CPORT_IOP) == iop;
}

/** Link ports of IOP iop (the unit takes the first RD_MAX_LINKS). */
function linkPorts(iop: u32): u32 {
  let n: u32 = 0;
  for (let p: u32 = 0; p < portCount(); p++) if (linkPort(p, iop)) n++;
  return min<u32>(n, RD_MAX_LINKS);
}

/** Bytes of channel IOP iop's unit in the memory map (0: it ends no link). */
export function rdArrayBytes(iop: u32): usize {
  const n = linkPorts(iop);
  return n == 0 ? 0 : rdBytes(n, RD_ARRAY_SLOTS, false);
}

/** layout.ts: IOP iop's unit at `at` (rdArrayBytes of room). Its links are bound by rdArrayBind. */
export function rdArrayLayout(at: usize, iop: u32): void {
  const e = MAP_ADDR + MAP_IOP_TABLE + iop * MAP_IOP_BYTES + MIOPX_RD;
  const n = linkPorts(iop);
  if (n == 0) { store<u32>(e, 0); return; }
  rdLayoutBound(at, myNode(), n, RD_ARRAY_SLOTS, RD_RECV_TIMEOUT_US, RD_RECV_RETRIES);
  store<u32>(e, <u32>at);
}

/** layout.ts, once the ports' sessions are laid out: each unit's links are its IOP's link ports. */
export function rdArrayBind(iops: u32): void {
  for (let iop: u32 = 0; iop < iops; iop++) {
    const u = <usize>load<u32>(MAP_ADDR + MAP_IOP_TABLE + iop * MAP_IOP_BYTES + MIOPX_RD);
    if (u == 0) continue;
    let l: u32 = 0;
    for (let p: u32 = 0; p < portCount() && l < RD_MAX_LINKS; p++) {
      if (!linkPort(p, iop)) continue;
      const d = sessionDesc(p, 0);
      const peer = load<u32>(cfgPort(p) + CPORT_LINK_PEER);
      rdBindLink(u, l, <usize>load<u32>(d + SES_RX), <usize>load<u32>(d + SES_TX), peer == 0 ? RD_ANY_PEER : peer - 1, p);
      if (l == 0) rdSetQueue(u, load<u32>(cfgPort(p) + CPORT_LINK_QUEUE));
      l++;
    }
  }
}

/** This IOP's unit, or 0. */
export function rdUnitHere(): usize { return <usize>load<u32>(MAP_ADDR + MAP_IOP_TABLE + gIndex * MAP_IOP_BYTES + MIOPX_RD); }

/** A packet flagged LF_REDUNDANT on link port `port` (its CRC checked): the unit takes it. */
export function rdLinkPacket(port: u32, p: usize): void {
  const u = rdUnitHere();
  if (u == 0) return;
  const l = rdLinkOfRx(u, <usize>load<u32>(sessionDesc(port, 0) + SES_RX));
  if (l < 0) { rdCountBad(u); return; } // a link port beyond the unit's RD_MAX_LINKS
  const h = pkt(p);
  const surplus = rdStat(u, RDS_SURPLUS);
  const again = rdStat(u, RDS_DUPLICATES);
  const before = rdFindReceiver(u, <u32>h.srcNode, <u32>h.srcQueue, h.cmdId);
  const was = before < 0 ? 0 : rdSlotState(u, <u32>before);
  rdReceive(u, <u32>l, p, gNow);
  traceReceived(u, p, before, was, surplus, again);
}

/**
 * trace10: what the unit did with a packet of a write (docs/remote.md, "Trace"): the block rebuilt
 * (TRACE_REMOTE_REBUILT, S325: which parts came, so which data parts were computed) or the packet
 * dropped as surplus or repeated (TRACE_REMOTE_DROPPED). Read from the unit's counters and slot
 * around rdReceive, so the unit itself stays free of the array's trace.
 */
function traceReceived(u: usize, p: usize, before: i32, was: u32, surplus: u64, again: u64): void {
  const h = pkt(p);
  const type = <u32>h.type;
  if (type != LT_DATA && type != LT_WRITE) return;
  const part = type == LT_DATA ? h.offset & 0xFF : 0;
  if (rdStat(u, RDS_SURPLUS) != surplus) traceDropped(p, RDROP_SURPLUS, 0xFFFF, part);
  else if (rdStat(u, RDS_DUPLICATES) != again) traceDropped(p, type == LT_DATA ? RDROP_PART_AGAIN : RDROP_WRITE_AGAIN, 0xFFFF, part);
  else if (before >= 0 && was == <u32>RD_RECV_GATHER && rdSlotState(u, <u32>before) == <u32>RD_RECV_READY) {
    trace(TRACE_REMOTE_REBUILT, (<u32>h.srcNode << 16) | rdSlotShape(u, <u32>before), h.cmdId, h.issuingId, rdSlotGot(u, <u32>before));
  }
}

/** Links of this IOP's unit toward node n (0: no unit, or none reaches it). */
export function rdLinksHere(n: u32): u32 {
  const u = rdUnitHere();
  return u == 0 ? 0 : rdLinksToward(u, n);
}

/**
 * REMOTE CREATE with redundancy N+m toward node `peer`: N >= 1, m <= RS_MAX_M, N + m <= 32; direct
 * (a relay forwards whole commands, not parts) and over at least one link of this IOP's unit.
 */
export function rdCreateAllowed(n: u32, m: u32, peer: u32, viaRelay: bool): bool {
  if (n < 1 || m > <u32>RS_MAX_M || n + m > RD_MAX_PARTS || viaRelay) return false;
  return rdLinksHere(peer) > 0;
}

/** The longest send command of pair p: N packets with redundancy (one block per command), else `plain`. */
export function rdMaxBytes(p: u32, plain: u32): u32 {
  const n = <u32>remote(p).rdData;
  return n == 0 ? plain : n * LINK_PAYLOAD_BYTES;
}

/**
 * A slot for a send command of pair p (bytes from volume byte byteOffset), before the command takes
 * its issuing ID. Returns the slot, or -1 (no unit, no free slot: the caller tries again later).
 */
export function rdSendBegin(p: u32, byteOffset: u64, bytes: u32): i32 {
  const u = rdUnitHere();
  if (u == 0) return -1;
  const r = remote(p);
  const bs = <u64>blockSize(<u32>r.volume);
  const i = rdBegin(u, <u32>r.peerNode, 0, byteOffset / bs, bytes, <u32>r.rdData, <u32>r.rdParity, r.timeoutUs, <u32>r.retries);
  return i < 0 ? -1 : i;
}

/**
 * The unit's poll, from the link port's: owed sends and timers; then rebuilt blocks whose turn has
 * come are applied (S327), those of no pair here or refused answered at once, the rest held.
 */
export function rdLinkService(): i32 {
  const u = rdUnitHere();
  if (u == 0) return 0;
  let work = rdTick(u, gNow);
  for (let i: u32 = 0; i < RD_ARRAY_SLOTS; i++) {
    const st = rdSlotState(u, i);
    if (st != <u32>RD_RECV_READY) continue;
    const v = volumeOfName(rdSlotVolume(u, i));
    const bytes = rdSlotBytes(u, i);
    const lba = rdSlotLba(u, i);
    const w = writeVerdict(v, rdSlotPeer(u, i), rdSlotIssuing(u, i), bytes, lba);
    if (w == WV_HOLD) continue; // its predecessors by issuing ID first (S586)
    if (w != WV_APPLY) { rdRelease(u, i, w); work++; continue; } // applied already (GOOD again), or refused
    const port = rdLinkTag(u, rdSlotLink(u, i));
    if (!linkApplyBlock(port, <u32>v, <u32>remoteOfVolume(<u32>v), lba, bytes, i)) continue; // no context now
    rdTake(u, i);
    work++;
  }
  const t = rdWakeAt(u);
  if (t != 0) wakeAt(t);
  return work;
}
