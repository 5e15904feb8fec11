// SCSI command handlers (SPC-4, SBC-3): decode and check the CDB, then either answer from what the
// controller knows or hand the command to the sequencer's data paths. docs/scsi.md lists them.
import {
  CX_CDB, CX_LUN, CX_PORT, CX_SESSION, CX_VOLUME, CX_OPCODE, CX_EXPECTED, CX_PRODUCED, ctxField, senseFixed,
} from "../ctx";
import { fail, good, startRead, startWrite, startFlush, dataInBuffer, sendBuffer, nvRefuse } from "../sequencer";
import { nvDegraded } from "../nv";
import { volumeFenced } from "../cache";
import { volumeAtLun, volumeReady, volumeNotReady, capacityBlocks, blockSize } from "../volume";
import { MEDS_LOST, MEDS_BECOMING_READY, MEDS_UNKNOWN } from "../abi";
import { sessionState, SS_SENSE, SS_SENSE_LUN, SS_SENSE_VALID } from "../channel";
import { getBe16, getBe32, getBe64, putBe32, putBe64 } from "../util";
import { inquiry } from "./inquiry";
import { modeSense6 } from "./mode";
import { reportLuns } from "./luns";
import { management } from "./mgmt";
import { pairWriteAllowed } from "../pair/io";
import { remoteWriteAllowed } from "../remote/pair";
import { tapeDeviceAtLun } from "../tape/device";
import { tapeCommand } from "../tape/command";
import { accessOf, accessAllows, tapeAccessOf, tapeChangesMedium, modeAllows, ACC_NONE } from "../comm/access";
import { extendedCopy, receiveCopyResults, OP_EXTENDED_COPY, OP_RECEIVE_COPY_RESULTS } from "../xcopy/command";

/** The largest transfer one READ or WRITE may ask for (VPD B0h says so). */
export const MAX_TRANSFER_BYTES: u32 = 32 << 20;

export const OP_TEST_UNIT_READY: u32 = 0x00;
export const OP_REQUEST_SENSE: u32 = 0x03;
export const OP_INQUIRY: u32 = 0x12;
export const OP_MODE_SENSE6: u32 = 0x1A;
export const OP_READ_CAPACITY10: u32 = 0x25;
export const OP_READ10: u32 = 0x28;
export const OP_WRITE10: u32 = 0x2A;
export const OP_SYNC_CACHE10: u32 = 0x35;
export const OP_READ16: u32 = 0x88;
export const OP_WRITE16: u32 = 0x8A;
export const OP_SYNC_CACHE16: u32 = 0x91;
export const OP_SERVICE_ACTION_IN16: u32 = 0x9E;
export const OP_REPORT_LUNS: u32 = 0xA0;
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
    if (modeAllows(c, tapeMode, tapeChangesMedium(<u32>tape, op))) tapeCommand(c, <u32>tape, op);
    return;
  }
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
  if (op == OP_EXTENDED_COPY) { extendedCopy(c); return; } // the copy manager (xcopy/), on every LU
  if (op == OP_RECEIVE_COPY_RESULTS) { receiveCopyResults(c); return; }
  volumeCommand(c, op, <u32>v);
}

function commandDevice(c: usize, op: u32): void {
  if (op == OP_TEST_UNIT_READY) { good(c); return; }
  if (op == OP_MANAGEMENT_IN || op == OP_MANAGEMENT_OUT) { management(c, op); return; }
  if (op == OP_EXTENDED_COPY) { extendedCopy(c); return; }
  if (op == OP_RECEIVE_COPY_RESULTS) { receiveCopyResults(c); return; }
  invalidOpcode(c);
}

function volumeCommand(c: usize, op: u32, v: u32): void {
  switch (op) {
    case OP_TEST_UNIT_READY: if (volumeReady(v)) good(c); else notReady(c, v); return;
    case OP_READ10: case OP_READ16: readWrite(c, v, op == OP_READ16, false); return;
    case OP_WRITE10: case OP_WRITE16: readWrite(c, v, op == OP_WRITE16, true); return;
    case OP_SYNC_CACHE10: case OP_SYNC_CACHE16: synchronizeCache(c, v, op == OP_SYNC_CACHE16); return;
    case OP_READ_CAPACITY10: readCapacity10(c, v); return;
    case OP_SERVICE_ACTION_IN16: serviceActionIn16(c, v); return;
    case OP_MODE_SENSE6: modeSense6(c, v); return;
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

// ---- READ, WRITE -------------------------------------------------------------------------------

function readWrite(c: usize, v: u32, sixteen: bool, write: bool): void {
  const p = cdb(c);
  const flags = <u32>load<u8>(p + 1);
  if ((flags & 0xE0) != 0) { invalidField(c, 1, 7); return; } // RDPROTECT / WRPROTECT: no protection information
  const lba: u64 = sixteen ? getBe64(p + 2) : <u64>getBe32(p + 2);
  const blocks: u32 = sixteen ? getBe32(p + 10) : getBe16(p + 7);
  const lengthAt: u32 = sixteen ? 10 : 7;
  const bs = blockSize(v);
  if (<u64>blocks * <u64>bs > <u64>MAX_TRANSFER_BYTES) { invalidField(c, lengthAt, -1); return; }
  if (lba > capacityBlocks(v) || <u64>blocks > capacityBlocks(v) - lba) { fail(c, 0x05, 0x21, 0x00); return; }
  if (!volumeReady(v)) { notReady(c, v); return; }
  if (write) {
    // Fewer bytes expected than the CDB asks for (FCP-4 9.4.2, RFC 7143 11.4.5.2): the write is cut
    // to the whole blocks expected, GOOD with the overflow as residual; a cut within a block
    // cannot be written: INVALID FIELD IN COMMAND INFORMATION UNIT, nothing moves.
    const expected = load<u32>(c + CX_EXPECTED);
    const wanted = blocks * bs;
    store<u32>(c + CX_PRODUCED, wanted); // also when refused: the residual says what the CDB asked for
    if (expected < wanted && expected % bs != 0) { fail(c, 0x05, 0x0E, 0x03); return; }
    if (nvDegraded()) { nvRefuse(c); return; } // the NV file could not keep it
    if (!pairWriteAllowed(v) || !remoteWriteAllowed(v)) { fail(c, 0x07, 0x27, 0x00); return; } // DATA PROTECT, WRITE PROTECTED
    if (expected < wanted) {
      startWrite(c, lba, expected / bs, (flags & 0x08) != 0);
      store<u32>(c + CX_PRODUCED, wanted); // startWrite set it to what moves
      return;
    }
    startWrite(c, lba, blocks, (flags & 0x08) != 0);
  } else {
    startRead(c, lba, blocks);
  }
}

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
  if ((load<u8>(p + 1) & 0x1F) != 0x10) { invalidField(c, 1, 4); return; }
  const d = dataInBuffer(c, 32);
  if (d == 0) return;
  putBe64(d, capacityBlocks(v) - 1);
  putBe32(d + 8, blockSize(v));
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
  if (load<u8>(ss + SS_SENSE_VALID) != 0 && load<u16>(ss + SS_SENSE_LUN) == load<u16>(c + CX_LUN)) {
    memory.copy(d, ss + SS_SENSE, 18);
    store<u8>(ss + SS_SENSE_VALID, 0);
  } else {
    senseFixed(d, 0, 0, 0, 0, false, 0);
  }
  sendBuffer(c, min<u32>(18, <u32>load<u8>(p + 4)));
}

