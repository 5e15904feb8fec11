// Test image: the controller image plus direct handles on its units, so unit tests can drive the
// IO scheduler and the cache through the compiled firmware without a whole command path.
// Built by scripts/build.js as build/testing.debug.wasm only; never flashed into an array.
export { layout, boot, poll } from "./main";
// The redundancy unit of document 003's embodiments 5 and 6 (remote/redundancy.ts), driven by
// test/remote/rdnode.ts over the link model until the array's link unit calls it.
export {
  rdLayout, rdPoll, rdWrite, rdRelease, rdTakeNext, rdRxRing, rdTxRing, rdStat, rdWakeAt, rdActive, rdSlotState,
  rdSlotStatus, rdSlotCmdId, rdSlotLba, rdSlotBytes, rdSlotData,
} from "./remote/redundancy";
import { MAP_ADDR, MAP_IOP_TABLE, MAP_IOP_BYTES, MIOP_PRIVATE } from "./abi";
import {
  schedInit, schedRegister, selectNext, schedDispatch, schedMatch, schedRetire, schedQueued, schedInflight,
  reqLba, reqArg,
} from "./scheduler";
import {
  cacheLookup, allocate, writeSectors, sectorsValid, destageBegin, destagingRun, destageDone, listCount,
  listFirst, listNext, slotDirtySeq, slotVolume, slotNumber, slotData, stageDone, pin, unpin, missingRun,
  dirtyAtOrBefore, currentSeq, cacheRecover, slotFlags, touch, slotSetFlags, slotClearFlags,
} from "./cache";
import { setIdentity } from "./iop";
import { volumeEntry } from "./nv";

/** The private area of IOP i (a disk IOP's holds its scheduler). */
export function privateArea(i: u32): usize { return load<u32>(MAP_ADDR + MAP_IOP_TABLE + i * MAP_IOP_BYTES + MIOP_PRIVATE); }
export function useIop(role: u32, index: u32): void { setIdentity(role, index); }

export function testSchedInit(sa: usize): void { schedInit(sa); }
export function testSchedRegister(sa: usize, type: u32, medium: u32, lba: f64, sectors: u32, tag: u32, now: f64): u32 {
  return schedRegister(sa, type, medium, <u64>lba, sectors, 0, 0, tag, 0, now);
}
/** The tag of the request the medium's policy would pick now, or -1 when its queue is empty. */
export function testSchedPeek(sa: usize, medium: u32, now: f64): i32 {
  if (schedQueued(sa, medium) == 0) return -1;
  return <i32>reqArg(sa, selectNext(sa, medium, now));
}
export function testSchedDispatch(sa: usize, now: f64): u32 { return schedDispatch(sa, now); }
export function testSchedComplete(sa: usize, id: u32): i32 {
  const i = schedMatch(sa, id);
  if (i < 0) return -1;
  const tag = <i32>reqArg(sa, <u32>i);
  schedRetire(sa, <u32>i);
  return tag;
}
export function testSchedQueued(sa: usize, medium: u32): u32 { return schedQueued(sa, medium); }
export function testSchedInflight(sa: usize, medium: u32): u32 { return schedInflight(sa, medium); }
export function testReqLba(sa: usize, id: u32): f64 { return <f64>reqLba(sa, id & 0xFFFF); }

export function testLookup(volume: u32, slotNo: u32): i32 { return cacheLookup(volume, slotNo); }
export function testAllocate(volume: u32, slotNo: u32): i32 { return allocate(volume, slotNo); }
export function testWrite(slot: u32, first: u32, count: u32, src: usize, now: f64, image: usize): void {
  writeSectors(slot, first, count, src, now, 0);
}
export function testValid(slot: u32, first: u32, count: u32): bool { return sectorsValid(slot, first, count); }
export function testMissingRun(slot: u32, first: u32, count: u32): u32 { return missingRun(slot, first, count); }
export function testStageDone(slot: u32, first: u32, count: u32, ok: bool): void { stageDone(slot, first, count, ok, first, false); }
export function testDestageBegin(slot: u32): bool { return destageBegin(slot); }
export function testDestagingRun(slot: u32, from: u32): u32 { return destagingRun(slot, from); }
export function testDestageDone(slot: u32, ok: bool, image: usize): bool { return destageDone(slot, ok, 0, 0, 0); }
export function testListCount(list: u32): u32 { return listCount(list); }
export function testListFirst(list: u32): i32 { return listFirst(list); }
export function testListNext(slot: u32): i32 { return listNext(slot); }
export function testDirtySeq(slot: u32): f64 { return <f64>slotDirtySeq(slot); }
export function testSlotVolume(slot: u32): u32 { return slotVolume(slot); }
export function testSlotNumber(slot: u32): u32 { return slotNumber(slot); }
export function testSlotData(slot: u32): usize { return slotData(slot); }
export function testSlotFlags(slot: u32): u32 { return slotFlags(slot); }
export function testSetFlags(slot: u32, f: u32): void { slotSetFlags(slot, f); }
export function testClearFlags(slot: u32, f: u32): void { slotClearFlags(slot, f); }
export function testPin(slot: u32): void { pin(slot); }
export function testTouch(slot: u32): void { touch(slot); }
export function testUnpin(slot: u32): void { unpin(slot); }
export function testDirtyAtOrBefore(volume: u32, first: u32, last: u32, seq: f64): u32 { return dirtyAtOrBefore(volume, first, last, <u64>seq); }
export function testCurrentSeq(): f64 { return <f64>currentSeq(); }
export function testRecover(scratch: usize): u32 { return cacheRecover(scratch); }
/** Marks volume v in use in the volume table (recovery keeps only the slots of volumes in use). */
export function testVolumeInUse(v: u32): void { store<u8>(volumeEntry(v), 1); }

// ---- Frames (test/protocol/golden.test.ts) ---------------------------------------------------------
import { RING_DATA } from "./abi";
import { ringInit, ringUsed } from "./ring";
import { emitFrame } from "./comm/frame";

/**
 * Emits one frame with the firmware's own emitFrame into a fresh 4096-byte byte ring formatted at
 * `dst`, with emitFrame's 24 bytes of scratch after it (RING_DATA + 4096 + 24 bytes in all). The
 * frame's bytes start at dst + RING_DATA. Returns its length, 0 if it did not fit.
 */
export function testEmitFrame(
  dst: usize, type: u32, flags: u32, tag: u32, source: u32, destination: u32, sequence: u32, offset: u32,
  parameter: u32, payload: usize, length: u32,
): u32 {
  ringInit(dst, 4096, 1, 0);
  if (!emitFrame(dst, dst + RING_DATA + 4096, type, flags, tag, source, destination, sequence, offset, parameter, payload, length)) return 0;
  return ringUsed(dst);
}

// ---- iSCSI (test/firmware/iscsi.test.ts) -------------------------------------------------------------
import { md5 } from "./comm/iscsi/md5";
import { parseBinary, textNext, parseNumber } from "./comm/iscsi/text";

/** MD5 of n bytes at src into dst (16 bytes); `work` is 80 bytes of scratch. */
export function testMd5(dst: usize, src: usize, n: u32, work: usize): void { md5(dst, src, n, work); }
/** A 0x-hex or 0b-base64 value decoded into dst: the byte count, or -1. */
export function testParseBinary(p: usize, n: u32, dst: usize, max: u32): i32 { return parseBinary(p, n, dst, max); }
/** A decimal or 0x number, or -1. */
export function testParseNumber(p: usize, n: u32): f64 { return <f64>parseNumber(p, n); }
/** The next key=value pair of [at, end): 1 with its position at out (5 u32s), 0 at the end, -1 malformed. */
export function testTextNext(at: usize, end: usize, out: usize): i32 { return textNext(at, end, out); }
