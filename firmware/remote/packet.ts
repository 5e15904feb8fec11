// The inter-array packet (docs/remote.md, "The inter-array protocol"): one per link ring entry, a
// 64-byte header and up to LINK_PAYLOAD_BYTES of payload, sealed by a CRC-32C of both. Shared by the
// array's image (comm/link.ts, remote/) and the relay's (relay/): both build and check packets here.
import {
  LINK_HEADER_BYTES, LINK_PAYLOAD_BYTES, LPK_MAGIC, LPK_MAGIC_VALUE, LPK_LENGTH, LPK_CRC, LPK_TYPE, LT_WRITE,
  LT_FORWARDED,
} from "../abi";
import { crc32c } from "../comm/crc";
import { ringReserve, ringPublish, ringPeek, ringRelease, ringRing } from "../ring";

/** A packet header as a typed view (offsets are the LPK_* of abi.ts). */
@unmanaged export class Packet {
  magic: u16;
  type: u8;
  flags: u8;
  srcNode: u16;
  dstNode: u16;
  srcQueue: u8;
  dstQueue: u8;
  status: u8;
  senseKey: u8;
  asc: u8;
  ascq: u8;
  length: u16;
  cmdId: u32;
  issuingId: u32;
  syncId: u32;
  offset: u32;
  total: u32;
  lbaLo: u32; // LPK_LBA is not 8-aligned in the header: two halves
  lbaHi: u32;
  origin: u16;
  originQueue: u8;
  op: u8;
  volume0: u32; // LPK_VOLUME: 12 bytes
  volume1: u32;
  volume2: u32;
  crc: u32;
}

// @ts-ignore: decorator
@inline export function pkt(p: usize): Packet { return changetype<Packet>(p); }

export function pktLba(p: usize): u64 { return (<u64>pkt(p).lbaHi << 32) | <u64>pkt(p).lbaLo; }
export function pktSetLba(p: usize, lba: u64): void { pkt(p).lbaLo = <u32>lba; pkt(p).lbaHi = <u32>(lba >> 32); }

/** A zeroed header in the next free entry of tx, or 0 when the ring is full. */
export function pktBegin(tx: usize, type: u32): usize {
  const p = ringReserve(tx);
  if (p == 0) return 0;
  memory.fill(p, 0, LINK_HEADER_BYTES);
  pkt(p).magic = <u16>LPK_MAGIC_VALUE;
  pkt(p).type = <u8>type;
  return p;
}

/** Seals the packet begun with pktBegin (payload already at p + LINK_HEADER_BYTES) and sends it. */
export function pktSend(tx: usize, p: usize, length: u32): void {
  pkt(p).length = <u16>length;
  pkt(p).crc = 0;
  pkt(p).crc = crc32c(p, LINK_HEADER_BYTES + length, 0);
  ringPublish(tx, 1);
  ringRing(tx);
}

/** The next received packet whose magic, length and CRC hold; bad ones are released and counted in `bad`. 0 when none. */
export function pktNext(rx: usize, bad: usize): usize {
  for (let p = ringPeek(rx); p != 0; p = ringPeek(rx)) {
    if (pktValid(p)) return p;
    store<u64>(bad, load<u64>(bad) + 1);
    ringRelease(rx, 1);
  }
  return 0;
}

export function pktValid(p: usize): bool {
  if (<u32>load<u16>(p + LPK_MAGIC) != LPK_MAGIC_VALUE) return false;
  const length = <u32>load<u16>(p + LPK_LENGTH);
  const type = <u32>load<u8>(p + LPK_TYPE);
  if (length > LINK_PAYLOAD_BYTES || type < LT_WRITE || type > LT_FORWARDED) return false;
  const crc = load<u32>(p + LPK_CRC);
  store<u32>(p + LPK_CRC, 0);
  const ok = crc32c(p, LINK_HEADER_BYTES + length, 0) == crc;
  store<u32>(p + LPK_CRC, crc);
  return ok;
}

/** Copies the identity fields a command carries along its route (ids, target, origin). */
export function pktCopyCommand(dst: usize, src: usize): void {
  const d = pkt(dst);
  const s = pkt(src);
  d.flags = s.flags;
  d.issuingId = s.issuingId;
  d.syncId = s.syncId;
  d.total = s.total;
  d.offset = s.offset; // a WRITE's offset is 0, a CREATE's the primary's block size (comm/link.ts)
  d.lbaLo = s.lbaLo;
  d.lbaHi = s.lbaHi;
  d.origin = s.origin;
  d.originQueue = s.originQueue;
  d.op = s.op;
  d.volume0 = s.volume0;
  d.volume1 = s.volume1;
  d.volume2 = s.volume2;
  d.dstNode = s.dstNode;
}
