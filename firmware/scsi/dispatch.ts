// SCSI command handlers (SPC-4, SBC-3): decode and check the CDB, then either answer from what the
// controller knows or hand the command to the sequencer's data paths. docs/scsi.md lists them.
import {
  CX_CDB, CX_LUN, CX_PORT, CX_SESSION, CX_VOLUME, CX_OPCODE, CX_TASK_ATTR, CX_FLAGS, CXF_PARAM, CXF_DEALLOC, TA_ACA, ctxField,
  senseFixed,
} from "../ctx";
import { fail, good, startFlush, dataInBuffer, sendBuffer } from "../sequencer";
import { volumeFenced } from "../cache";
import { volumeAtLun, volumeReady, volumeNotReady, capacityBlocks, blockSize } from "../volume";
import { MEDS_LOST, MEDS_BECOMING_READY, MEDS_UNKNOWN } from "../abi";
import { sessionState, SS_SENSE, SS_SENSE_LUN, SS_SENSE_VALID } from "../channel";
import { getBe16, getBe32, getBe64, putBe32, putBe64 } from "../util";
import { inquiry } from "./inquiry";
import { modeSense, modeSelect } from "./mode";
import { reportLuns } from "./luns";
import { management } from "./mgmt";
import {
  readWrite, verify, prefetch, writeSame, atomicWrite, OP_ORWRITE, OP_READ6, OP_WRITE6, OP_READ12, OP_WRITE12, OP_WRITE_VERIFY10,
  OP_WRITE_VERIFY12, OP_WRITE_VERIFY16, OP_VERIFY10, OP_VERIFY12, OP_VERIFY16, OP_PREFETCH10, OP_PREFETCH16, OP_WRITE_SAME10,
  OP_WRITE_SAME16, OP_COMPARE_AND_WRITE, startStopUnit, stoppedRefuses,
} from "./sbc";
import { maintenanceIn } from "./opcodes";
import { reservationConflict, persistentReserveIn, persistentReserveOut, reserve, release } from "./pr";
import { uaTake } from "./ua";
import { getLbaStatus, unmap, deallocateStep, capacityProvisioning, OP_UNMAP } from "./thin";
import { tapeDeviceAtLun } from "../tape/device";
import { tapeCommand } from "../tape/command";
import { accessOf, accessAllows, tapeAccessOf, tapeChangesMedium, modeAllows, ACC_NONE } from "../comm/access";
import { extendedCopy, receiveCopyResults, OP_EXTENDED_COPY, OP_RECEIVE_COPY_RESULTS } from "../xcopy/command";

/** The largest transfer one READ or WRITE may ask for (VPD B0h says so). */
export const MAX_TRANSFER_BYTES: u32 = 32 << 20;

export const OP_TEST_UNIT_READY: u32 = 0x00;
export const OP_REQUEST_SENSE: u32 = 0x03;
export const OP_INQUIRY: u32 = 0x12;
export const OP_MODE_SELECT6: u32 = 0x15;
export const OP_MODE_SENSE6: u32 = 0x1A;
export const OP_MODE_SELECT10: u32 = 0x55;
export const OP_START_STOP_UNIT: u32 = 0x1B;
export const OP_MODE_SENSE10: u32 = 0x5A;
export const OP_READ_CAPACITY10: u32 = 0x25;
export const OP_READ10: u32 = 0x28;
export const OP_WRITE10: u32 = 0x2A;
export const OP_SYNC_CACHE10: u32 = 0x35;
export const OP_READ16: u32 = 0x88;
export const OP_WRITE16: u32 = 0x8A;
export const OP_SYNC_CACHE16: u32 = 0x91;
export const OP_SERVICE_ACTION_IN16: u32 = 0x9E;
export const OP_REPORT_LUNS: u32 = 0xA0;
export const OP_MAINTENANCE_IN: u32 = 0xA3;
export const OP_RESERVE6: u32 = 0x16;
export const OP_RELEASE6: u32 = 0x17;
export const OP_RESERVE10: u32 = 0x56;
export const OP_RELEASE10: u32 = 0x57;
export const OP_PERSISTENT_RESERVE_IN: u32 = 0x5E;
export const OP_PERSISTENT_RESERVE_OUT: u32 = 0x5F;
export const OP_MANAGEMENT_IN: u32 = 0xC0;
export const OP_MANAGEMENT_OUT: u32 = 0xC1;

// @ts-ignore: decorator
@inline export function cdb(c: usize): usize { return c + CX_CDB; }

export function dispatchScsi(c: usize): void {
  const op = <u32>load<u8>(c + CX_OPCODE);
  const lun = <u32>load<u16>(c + CX_LUN);
  const tape = tapeDeviceAtLun(lun);
  // The library's devices (tape/, docs/tape.md), as the initiator's access lets it (comm/access.ts);
  // one it may not see is answered below as a LUN with nothing behind it.
  const tapeMode = tape < 0 ? ACC_NONE : tapeAccessOf(<u32>tape, load<u8>(c + CX_PORT), load<u8>(c + CX_SESSION));
  if (tapeMode != ACC_NONE) {
    if (taskAccepted(c, op) && modeAllows(c, tapeMode, tapeChangesMedium(<u32>tape, op))) tapeCommand(c, <u32>tape, op);
    return;
  }
  // NACA and ACA are refused by a logical unit that exists; one that does not answers as before.
  const mapped = lun == 0 || volumeAtLun(load<u8>(c + CX_PORT), lun) >= 0;
  if (mapped && !taskAccepted(c, op)) return;
  if (op == OP_INQUIRY) {
    const v = lun == 0 ? -1 : volumeAtLun(load<u8>(c + CX_PORT), lun);
    const hidden = v >= 0 && accessOf(<u32>v, load<u8>(c + CX_PORT), load<u8>(c + CX_SESSION)) == ACC_NONE;
    inquiry(c, lun != 0 && (v < 0 || hidden) ? -2 : v); // -2: nothing mapped, or not for this initiator (peripheral qualifier 011b)
    return;
  }
  if (op == OP_REPORT_LUNS) { reportLuns(c); return; }
  if (op == OP_REQUEST_SENSE) { requestSense(c); return; }
  if (lun == 0) { commandDevice(c, op); return; }
  const v = volumeAtLun(load<u8>(c + CX_PORT), lun);
  if (v < 0 || volumeFenced(<u32>v)) { fail(c, 0x05, 0x25, 0x00); return; } // none, or being deleted
  if (!accessAllows(c, <u32>v, op)) return; // LUN security (comm/access.ts)
  store<u16>(c + CX_VOLUME, <u16>v);
  if ((load<u32>(c + CX_FLAGS) & (CXF_PARAM | CXF_DEALLOC)) == 0) { // once its data-out has come (or it runs on) it was checked already
    // A pending unit attention first (SAM-5 5.14), then the reservations (SPC-5 5.14).
    const ua = uaTake(c, <u32>v, lun);
    if (ua != 0) { fail(c, 0x06, ua >> 8, ua & 0xFF); return; }
    if (reservationConflict(c, <u32>v, op, <u32>load<u8>(cdb(c) + 1) & 0x1F)) return;
    if (stoppedRefuses(c, <u32>v, op)) return;
  }
  if (op == OP_EXTENDED_COPY) { extendedCopy(c); return; } // the copy manager (xcopy/), on every LU
  if (op == OP_RECEIVE_COPY_RESULTS) { receiveCopyResults(c); return; }
  volumeCommand(c, op, <u32>v);
}

/** The CDB's CONTROL byte: the last of its length, by the opcode's group (vendor groups 6, 7: 16 bytes). */
export function controlByteAt(op: u32): u32 {
  const group = op >> 5;
  return group == 0 ? 5 : group <= 2 ? 9 : group == 4 ? 15 : group == 5 ? 11 : group == 3 ? 0 : 15;
}

/**
 * No ACA (SAM-5 5.9): a CONTROL byte with NACA set is INVALID FIELD IN CDB (bit 2 of it), as is
 * the ACA task attribute, which only an established ACA condition admits (it never is).
 */
function taskAccepted(c: usize, op: u32): bool {
  if (<u32>load<u8>(c + CX_TASK_ATTR) == TA_ACA) { invalidField(c, controlByteAt(op), 2); return false; }
  const at = controlByteAt(op);
  if (at != 0 && (load<u8>(cdb(c) + at) & 0x04) != 0) { invalidField(c, at, 2); return false; }
  return true;
}

function commandDevice(c: usize, op: u32): void {
  if (op == OP_TEST_UNIT_READY) { good(c); return; }
  if (op == OP_MAINTENANCE_IN) { maintenanceIn(c, true); return; }
  if (op == OP_MANAGEMENT_IN || op == OP_MANAGEMENT_OUT) { management(c, op); return; }
  if (op == OP_EXTENDED_COPY) { extendedCopy(c); return; }
  if (op == OP_RECEIVE_COPY_RESULTS) { receiveCopyResults(c); return; }
  invalidOpcode(c);
}

function volumeCommand(c: usize, op: u32, v: u32): void {
  if ((load<u32>(c + CX_FLAGS) & CXF_DEALLOC) != 0) { deallocateStep(c, v); return; } // UNMAP, WRITE SAME going on
  switch (op) {
    case OP_TEST_UNIT_READY: if (volumeReady(v)) good(c); else notReady(c, v); return;
    case OP_READ6: case OP_READ10: case OP_READ12: case OP_READ16: readWrite(c, v, op, false, false); return;
    case OP_WRITE6: case OP_WRITE10: case OP_WRITE12: case OP_WRITE16: readWrite(c, v, op, true, false); return;
    case OP_WRITE_VERIFY10: case OP_WRITE_VERIFY12: case OP_WRITE_VERIFY16: readWrite(c, v, op, true, true); return;
    case OP_VERIFY10: case OP_VERIFY12: case OP_VERIFY16: verify(c, v, op); return;
    case OP_PREFETCH10: case OP_PREFETCH16: prefetch(c, v, op); return;
    case OP_WRITE_SAME10: case OP_WRITE_SAME16: writeSame(c, v, op); return;
    case OP_COMPARE_AND_WRITE: atomicWrite(c, v, false); return;
    case OP_UNMAP: unmap(c, v); return;
    case OP_ORWRITE: atomicWrite(c, v, true); return;
    case OP_MAINTENANCE_IN: maintenanceIn(c, false); return;
    case OP_START_STOP_UNIT: startStopUnit(c, v); return;
    case OP_PERSISTENT_RESERVE_IN: persistentReserveIn(c, v); return;
    case OP_PERSISTENT_RESERVE_OUT: persistentReserveOut(c, v); return;
    case OP_RESERVE6: case OP_RESERVE10: reserve(c, v, op == OP_RESERVE10); return;
    case OP_RELEASE6: case OP_RELEASE10: release(c, v, op == OP_RELEASE10); return;
    case OP_SYNC_CACHE10: case OP_SYNC_CACHE16: synchronizeCache(c, v, op == OP_SYNC_CACHE16); return;
    case OP_READ_CAPACITY10: readCapacity10(c, v); return;
    case OP_SERVICE_ACTION_IN16: serviceActionIn16(c, v); return;
    case OP_MODE_SENSE6: case OP_MODE_SENSE10: modeSense(c, v, op == OP_MODE_SENSE10); return;
    case OP_MODE_SELECT6: case OP_MODE_SELECT10: modeSelect(c, v, op == OP_MODE_SELECT10); return;
    default: invalidOpcode(c);
  }
}

/**
 * NOT READY, and why: 31h/00h MEDIUM FORMAT CORRUPTED when a medium under the volume lost what the
 * array wrote (blank or replaced: REINITIALIZE MEDIUM accepts the loss), 04h/01h BECOMING READY
 * while its label is checked, 04h/03h MANUAL INTERVENTION REQUIRED when it is dead or gone.
 */
export function notReady(c: usize, v: u32): void {
  const why = volumeNotReady(v);
  if (why == MEDS_LOST) fail(c, 0x02, 0x31, 0x00);
  else if (why == MEDS_BECOMING_READY || why == MEDS_UNKNOWN) fail(c, 0x02, 0x04, 0x01);
  else fail(c, 0x02, 0x04, 0x03);
}

export function invalidOpcode(c: usize): void {
  fail(c, 0x05, 0x20, 0x00);
  ctxField(c, true, 0, -1);
}

/** ILLEGAL REQUEST, INVALID FIELD IN CDB, pointing at byte `at` (bit `bit`, or -1). */
export function invalidField(c: usize, at: u32, bit: i32): void {
  fail(c, 0x05, 0x24, 0x00);
  ctxField(c, true, at, bit);
}

// ---- SYNCHRONIZE CACHE ---------------------------------------------------------------------------

function synchronizeCache(c: usize, v: u32, sixteen: bool): void {
  const p = cdb(c);
  const lba: u64 = sixteen ? getBe64(p + 2) : <u64>getBe32(p + 2);
  const blocks: u64 = sixteen ? <u64>getBe32(p + 10) : <u64>getBe16(p + 7);
  const capacity = capacityBlocks(v);
  if (lba > capacity || blocks > capacity - lba) { fail(c, 0x05, 0x21, 0x00); return; }
  const bs = <u64>blockSize(v);
  const end = blocks == 0 ? capacity : lba + blocks;
  const immediate = (load<u8>(p + 1) & 0x02) != 0;
  startFlush(c, <u32>((lba * bs) >> 16), <u32>(((end * bs) - 1) >> 16), immediate);
}

// ---- READ CAPACITY -----------------------------------------------------------------------------

function readCapacity10(c: usize, v: u32): void {
  const p = cdb(c);
  if (getBe32(p + 2) != 0) { invalidField(c, 2, -1); return; }
  if ((load<u8>(p + 8) & 1) != 0) { invalidField(c, 8, 0); return; }
  const d = dataInBuffer(c, 8);
  if (d == 0) return;
  const last = capacityBlocks(v) - 1;
  putBe32(d, last > 0xFFFFFFFF ? 0xFFFFFFFF : <u32>last);
  putBe32(d + 4, blockSize(v));
  sendBuffer(c, 8);
}

function serviceActionIn16(c: usize, v: u32): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  if (sa == 0x12) { getLbaStatus(c, v); return; }
  if (sa != 0x10) { invalidField(c, 1, 4); return; }
  const d = dataInBuffer(c, 32);
  if (d == 0) return;
  putBe64(d, capacityBlocks(v) - 1);
  putBe32(d + 8, blockSize(v));
  store<u8>(d + 14, <u8>capacityProvisioning(v)); // LBPME, LBPRZ (thin)
  sendBuffer(c, min<u32>(32, getBe32(p + 10)));
}

// ---- REQUEST SENSE -------------------------------------------------------------------------------

/** The session's last sense for this LUN, then cleared; NO SENSE otherwise. Fixed format only. */
export function requestSense(c: usize): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 1) != 0) { invalidField(c, 1, 0); return; }
  const d = dataInBuffer(c, 18);
  if (d == 0) return;
  const ss = sessionState(load<u8>(c + CX_PORT), load<u8>(c + CX_SESSION));
  const lun = <u32>load<u16>(c + CX_LUN);
  const v = lun == 0 ? -1 : volumeAtLun(load<u8>(c + CX_PORT), lun);
  const ua = v < 0 ? 0 : uaTake(c, <u32>v, lun);
  if (ua != 0) {
    senseFixed(d, 0x06, ua >> 8, ua & 0xFF, 0, false, 0); // the unit attention is the sense, and is cleared (SPC-5 5.14)
  } else if (load<u8>(ss + SS_SENSE_VALID) != 0 && load<u16>(ss + SS_SENSE_LUN) == load<u16>(c + CX_LUN)) {
    memory.copy(d, ss + SS_SENSE, 18);
    store<u8>(ss + SS_SENSE_VALID, 0);
  } else {
    senseFixed(d, 0, 0, 0, 0, false, 0);
  }
  sendBuffer(c, min<u32>(18, <u32>load<u8>(p + 4)));
}

