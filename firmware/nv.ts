// The non-volatile region (docs/hal.md, "Non-volatile memory"): what survives a crash of the
// emulator. Layout, in order, each part at an offset that does not depend on the cache size, so a
// clean NV image keeps its volume table when the cache is resized:
//   header (4 KiB) | volume table | LUN map | slot descriptors (slots x 64) | slot data (slots x 64 KiB)
// Persisting goes through the array's one NV ring, so the file sees changes in the order they
// were made. A descriptor is persisted as an inline image taken when queued, after the data
// range it describes, so the file never holds a descriptor that claims data it does not hold.
import {
  MAP_ADDR, MAP_NV_ADDR, MAP_NV_SQ, NSQ_ID, NSQ_IOP, NSQ_OP, NSQ_FLAGS, NSQ_ADDR, NSQ_LENGTH, NSQ_INLINE,
  NSQ_INLINE_MAX, NOP_RANGE, NOP_INLINE, MAX_VOLUMES, MAX_PORTS, MAX_LUNS, SLOT_BYTES, STAT_NV_WRITES,
} from "./abi";
import { ringReserve, ringPublish, ringFree, ringRing, ringTail } from "./ring";
import { gIndex, gStats } from "./iop";
import { statInc, NV_KICK_SLOT } from "./stats";
import { STAT_NV_ERRORS } from "./abi";
import { log, LOG_ERROR, LOG_INFO } from "./hal";

export const NV_MAGIC: u32 = 0x564e4253; // "SBNV"
export const NV_VERSION: u32 = 1;
export const NV_HEADER_BYTES: u32 = 4096;
export const NVH_MAGIC: u32 = 0;
export const NVH_VERSION: u32 = 4;
export const NVH_SLOTS: u32 = 8; // cache geometry the descriptors were written for
export const NVH_CLEAN: u32 = 12; // 1: shut down with no dirty slot
export const NVH_BOOTS: u32 = 16; // u64: boot count

export const VOL_BYTES: u32 = 256;
export const VOL_TABLE_OFFSET: u32 = NV_HEADER_BYTES;
export const LUN_MAP_OFFSET: u32 = VOL_TABLE_OFFSET + MAX_VOLUMES * VOL_BYTES;
export const LUN_MAP_BYTES: u32 = MAX_PORTS * MAX_LUNS * 2;
export const DESC_OFFSET: u32 = LUN_MAP_OFFSET + LUN_MAP_BYTES;
export const DESC_BYTES: u32 = 64;

// Slot descriptor: the persisted identity and dirty sectors of a cache slot.
export const DESC_STATE: u32 = 0; // u32, DESC_USED or 0
export const DESC_VOLUME: u32 = 4; // u16
export const DESC_SLOT_NO: u32 = 8; // u32: slot number within the volume (volume byte offset >> 16)
export const DESC_SEQ: u32 = 16; // u64: write sequence, newest wins on recovery
export const DESC_DIRTY: u32 = 24; // 2 x u64: dirty sectors
export const DESC_USED: u32 = 1;

/** Bytes from the NV region's start to the slot data, for a cache of `slots` slots. */
export function nvDataOffset(slots: u32): u32 {
  return (DESC_OFFSET + slots * DESC_BYTES + 4095) & ~4095;
}

export function nvRegionBytes(slots: u32): usize {
  return <usize>nvDataOffset(slots) + <usize>slots * SLOT_BYTES;
}

// @ts-ignore: decorator
@inline export function nvBase(): usize { return load<u32>(MAP_ADDR + MAP_NV_ADDR); }
// @ts-ignore: decorator
@inline export function nvSq(): usize { return load<u32>(MAP_ADDR + MAP_NV_SQ); }
// @ts-ignore: decorator
@inline export function volumeEntry(volume: u32): usize { return nvBase() + VOL_TABLE_OFFSET + volume * VOL_BYTES; }
// @ts-ignore: decorator
@inline export function lunMapEntry(port: u32, lun: u32): usize {
  return nvBase() + LUN_MAP_OFFSET + (port * MAX_LUNS + lun) * 2;
}

/** Room for n more NV requests? Callers check before a sequence that must not be split. */
// @ts-ignore: decorator
@inline export function nvRoom(n: u32): bool { return ringFree(nvSq()) >= n; }

/** Queues a copy of [addr, addr + length) to the NV file. False when the ring is full. */
export function nvPersistRange(addr: usize, length: u32, id: u32): bool {
  const e = nvEntry(id, NOP_RANGE);
  if (e == 0) return false;
  store<u32>(e + NSQ_ADDR, <u32>addr);
  store<u32>(e + NSQ_LENGTH, length);
  ringPublish(nvSq(), 1);
  statInc(STAT_NV_WRITES);
  return true;
}

/** Queues `length` bytes from `image` to be written where `addr` sits in the NV file. */
export function nvPersistInline(addr: usize, image: usize, length: u32, id: u32): bool {
  if (length > <u32>NSQ_INLINE_MAX) return false;
  const e = nvEntry(id, NOP_INLINE);
  if (e == 0) return false;
  store<u32>(e + NSQ_ADDR, <u32>addr);
  store<u32>(e + NSQ_LENGTH, length);
  memory.copy(e + NSQ_INLINE, image, length);
  ringPublish(nvSq(), 1);
  statInc(STAT_NV_WRITES);
  return true;
}

function nvEntry(id: u32, op: u32): usize {
  const e = ringReserve(nvSq());
  if (e == 0) return 0;
  store<u32>(e + NSQ_ID, id);
  store<u8>(e + NSQ_IOP, <u8>gIndex);
  store<u8>(e + NSQ_OP, <u8>op);
  store<u16>(e + NSQ_FLAGS, 0);
  return e;
}

/** Rings the NV doorbell if this IOP queued anything since it last rang. */
export function nvKick(): void {
  const sq = nvSq();
  const tail = ringTail(sq);
  const p = gStats + (<usize>NV_KICK_SLOT << 3);
  if (<u32>load<u64>(p) == tail) return;
  store<u64>(p, <u64>tail);
  ringRing(sq);
}

// NV request ids: the top 4 bits say what the completion means to the submitting IOP.
export const NVK_NONE: u32 = 0; // nothing waits for it
export const NVK_CONTEXT: u32 = 1; // low 28 bits: command context id
// @ts-ignore: decorator
@inline export function nvId(kind: u32, payload: u32): u32 { return (kind << 28) | (payload & 0x0FFFFFFF); }

export const NVK_RESYNC: u32 = 2; // the disk IOP's rewrite of the whole region after NV writes failed

// ---- NV failure (docs/hal.md, "When the NV file fails") ------------------------------------------
// A completion with an error status means the file may lack that entry: a WRITE waiting for it is
// answered HARDWARE ERROR, and from then on the NV file is "degraded": writes and management changes
// are refused (nothing new can be acknowledged) until the disk IOP has rewritten the whole region
// from memory (NVK_RESYNC) and that rewrite completed. The rewrite is what retires the records the
// failed entries left stale (a slot destaged while its "clean" record failed still reads dirty in
// the file); an acknowledgement before it could be overwritten at recovery by such a record.

/** Firmware-private map fields: errno of the first failure while degraded (0: healthy), failures seen. */
export const MAPX_NV_ERRNO: u32 = 72;
export const MAPX_NV_FAILURES: u32 = 76;

// @ts-ignore: decorator
@inline export function nvDegraded(): bool { return load<u32>(MAP_ADDR + MAPX_NV_ERRNO) != 0; }
export function nvFailures(): u32 { return load<u32>(MAP_ADDR + MAPX_NV_FAILURES); }
export function nvErrno(): u32 { return load<u32>(MAP_ADDR + MAPX_NV_ERRNO); }

/** An NV completion carried an error status. */
export function nvCompletionFailed(errno: u32, id: u32): void {
  statInc(STAT_NV_ERRORS);
  store<u32>(MAP_ADDR + MAPX_NV_FAILURES, nvFailures() + 1);
  if (nvDegraded()) return;
  store<u32>(MAP_ADDR + MAPX_NV_ERRNO, errno == 0 ? 5 : errno);
  log(LOG_ERROR, "nv: a write to the NV file failed (errno, request); writes refused until it is rewritten", errno, id);
}

/** The whole region reached the file after the failures counted up to `failures`. */
export function nvResynced(failures: u32): bool {
  if (!nvDegraded() || nvFailures() != failures) return false;
  store<u32>(MAP_ADDR + MAPX_NV_ERRNO, 0);
  log(LOG_INFO, "nv: the NV file was rewritten whole after failed writes; writes accepted again (failures)", failures, 0);
  return true;
}
