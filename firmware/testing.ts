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
  cacheLookup, allocate, slotForCopy, slotForCopyCancel, writeSectors, sectorsValid, destageBegin, destagingRun, destageDone, listCount,
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
export function testSlotForCopy(volume: u32, slotNo: u32): i32 { return slotForCopy(volume, slotNo); }
export function testSlotForCopyCancel(): void { slotForCopyCancel(); }
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

// ---- The standby storage unit of 003's embodiments 7 and 8 (test/remote/standby.test.ts) ---------------
// The units are driven as the link unit drives them (docs/remote.md, "The standby's units"); the
// medium here is a block array in the test's memory, written by memory.copy where the link unit
// registers a write with the IO scheduler (S464, S587).
export {
  syncLayout, syncBytes, syncWriteBegin, syncWriteData, syncWriteEnd, syncReflect, syncStep, syncReflectNext,
  syncWriteDone, syncReflectComplete, syncDiscard, syncData,
} from "./remote/delayed";
export {
  snapLayout, snapBytes, snapAccept, snapDataIn, snapNext, snapDone, snapRead, snapSnapshot, snapChanged, snapForm,
  snapRestore, snapFailover, snapWriteMap, snapHomeNext, snapHomeDone, snapSave, snapLoad, snapImageBytes, snapCheck, snapRuns, snapHomeBound,
} from "./remote/snapshot";
import { syncWriteBegin, syncWriteData, syncWriteEnd, syncReflectNext, syncWriteDone, RUN_LBA, RUN_DATA, RUN_BLOCKS, RUN_ENTRY, RUN_ISSUING, syncUnit } from "./remote/delayed";
import { snapNext, snapKind, snapLba, snapBlocks, snapData, snapWriteMap, snapForm, snapDone, snapRead, snapUnit, snapHomeNext, snapHomeDone, SK_FORM } from "./remote/snapshot";

/** A delay write whose data is all at src: S420 (begin), S423 (data), S424 (end). The entry or a refusal. */
export function testSyncWrite(u: usize, syncId: u32, issuingId: u32, lba: f64, src: usize, bytes: u32): i32 {
  const e = syncWriteBegin(u, syncId, issuingId, <u64>lba, bytes);
  if (e < 0) return e;
  if (!syncWriteData(u, <u32>e, 0, src, bytes)) return -100;
  const r = syncWriteEnd(u, <u32>e);
  return r < 0 ? r : e;
}

/**
 * S462-S467 with a medium at `medium`: hands out up to maxRuns runs, writes each (log: 16 bytes a run:
 * issuing ID, first block, blocks, 0) and, when `complete`, reports it done. The runs handed out.
 */
export function testSyncRun(u: usize, medium: usize, log: usize, maxRuns: u32, complete: bool): u32 {
  const run = log + <usize>maxRuns * 16;
  const bs = <usize>syncUnit(u).blockBytes;
  let n: u32 = 0;
  while (n < maxRuns && syncReflectNext(u, run) != 0) {
    const lba = load<u64>(run + RUN_LBA);
    const blocks = load<u32>(run + RUN_BLOCKS);
    memory.copy(medium + <usize>lba * bs, <usize>load<u32>(run + RUN_DATA), <usize>blocks * bs);
    store<u32>(log + <usize>n * 16, load<u32>(run + RUN_ISSUING));
    store<u32>(log + <usize>n * 16 + 4, <u32>lba);
    store<u32>(log + <usize>n * 16 + 8, blocks);
    store<u32>(log + <usize>n * 16 + 12, load<u32>(run + RUN_ENTRY));
    if (complete) syncWriteDone(u, load<u32>(run + RUN_ENTRY), true);
    n++;
  }
  return n;
}
export function testSyncField(u: usize, offset: u32): u32 { return load<u32>(u + offset); }

/**
 * S586-S589 for every held command whose turn has come, with a medium at `medium`: a write is mapped
 * (Fig. 34) and its blocks written to their physical blocks; a snapshot forming command forms. The
 * commands processed, or the refusal of the first one that could not be (nothing of it changed).
 * `scratch` takes the physical block numbers (4 bytes a block).
 */
export function testSnapRun(u: usize, medium: usize, scratch: usize): i32 {
  const bs = <usize>snapUnit(u).blockBytes;
  let n: i32 = 0;
  for (let i = snapNext(u); i >= 0; i = snapNext(u)) {
    const slot = <u32>i;
    if (snapKind(u, slot) == <u32>SK_FORM) snapForm(u);
    else {
      const blocks = snapBlocks(u, slot);
      const r = snapWriteMap(u, <u32>snapLba(u, slot), blocks, scratch);
      if (r < 0) return r;
      for (let b: u32 = 0; b < blocks; b++) {
        memory.copy(medium + <usize>load<u32>(scratch + <usize>b * 4) * bs, snapData(u, slot) + <usize>b * bs, bs);
      }
    }
    snapDone(u, slot);
    n++;
  }
  return n;
}
/** A host read of logical block lblock after failover ([0244]): its latest physical block into dst. */
export function testSnapReadBlock(u: usize, medium: usize, lblock: u32, dst: usize): void {
  const bs = <usize>snapUnit(u).blockBytes;
  memory.copy(dst, medium + <usize>snapRead(u, lblock) * bs, bs);
}
export function testSnapField(u: usize, offset: u32): u32 { return load<u32>(u + offset); }
/**
 * Moves home after failover with a medium at `medium`: up to maxMoves moves, each block copied from
 * its physical block to the one snapHomeNext names, then snapHomeDone. `log` takes 12 bytes a move
 * (logical, from, to). The moves made; -1 when snapHomeDone refused one.
 */
export function testSnapHome(u: usize, medium: usize, log: usize, maxMoves: u32): i32 {
  const bs = <usize>snapUnit(u).blockBytes;
  let n: u32 = 0;
  while (n < maxMoves) {
    const m = log + <usize>n * 12;
    if (snapHomeNext(u, m) == 0) break;
    memory.copy(medium + <usize>load<u32>(m + 8) * bs, medium + <usize>load<u32>(m + 4) * bs, bs);
    if (!snapHomeDone(u, load<u32>(m), load<u32>(m + 4), load<u32>(m + 8))) return -1;
    n++;
  }
  return <i32>n;
}
