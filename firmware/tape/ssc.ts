// A tape drive (SSC-3): the commands a backup application or Linux st issues. What needs the
// mechanism becomes one request to the binding (command.ts: tapeBegin); what the drive knows already
// (block limits, mode, position, readiness, as the binding's status word says) is answered at once.
//
// Senses follow SSC-3 4.2: a READ that meets a filemark is CHECK CONDITION, NO SENSE, FILEMARK,
// 00h/01h; one that meets the end of data BLANK CHECK 00h/05h; a record of another length than asked
// sets ILI (unless SILI and shorter); writes past the early-warning point succeed with NO SENSE,
// EOM, 00h/02h; a write the tape has no room for is VOLUME OVERFLOW, EOM, 00h/02h. INFORMATION holds
// the residue: bytes (variable) or blocks (fixed) asked for and not moved, signed for SPACE.
import {
  CONFIG_ADDR, CFG_TAPE, CTP_MAX_BLOCK, CTP_DENSITY, TDST_MASK, TDST_EMPTY, TDST_UNLOADED, TDST_LOADING, TDST_READY,
  TDST_OFFLINE, TDSF_WRITE_PROTECT, TDSF_BOT, TDSF_EW, TOP_READ, TOP_WRITE, TOP_WRITE_MARKS, TOP_SPACE_BLOCKS,
  TOP_SPACE_MARKS, TOP_SPACE_EOD, TOP_REWIND, TOP_LOAD, TOP_UNLOAD, TOP_ERASE, TCQ_STATUS, TCQ_FLAGS, TCQ_LENGTH,
  TCQ_DONE, TST_OK, TST_TAPEMARK, TST_EOD, TST_BOT, TST_EOM, TST_WRITE_ERROR, TST_READ_ERROR, TST_NO_MEDIUM,
  TST_NOT_LOADED, TST_OFFLINE, TST_PROTECTED,
} from "../abi";
import { CX_EXPECTED, CX_PRODUCED, ctxField } from "../ctx";
import { fail, good, dataInBuffer, sendBuffer, startParameterList, parameterList } from "../sequencer";
import { MAX_WINDOW_BYTES } from "../ctx";
import { getBe16, putBe16, putBe32 } from "../util";
import { cdb, invalidField, invalidOpcode } from "../scsi/dispatch";
import { tapeStatus, tapePosition, tapeState, TDS_BLOCK_SIZE } from "./device";
import { tapeBegin, tapeSense, tapeSendThen, TX_OP, TX_COUNT, TX_ARG } from "./command";

const OP_TEST_UNIT_READY: u32 = 0x00;
const OP_REWIND: u32 = 0x01;
const OP_READ_BLOCK_LIMITS: u32 = 0x05;
const OP_READ6: u32 = 0x08;
const OP_WRITE6: u32 = 0x0A;
const OP_WRITE_FILEMARKS6: u32 = 0x10;
const OP_SPACE6: u32 = 0x11;
const OP_MODE_SELECT6: u32 = 0x15;
const OP_ERASE6: u32 = 0x19;
const OP_MODE_SENSE6: u32 = 0x1A;
const OP_LOAD_UNLOAD: u32 = 0x1B;
const OP_READ_POSITION: u32 = 0x34;
const OP_MODE_SELECT10: u32 = 0x55;
const OP_MODE_SENSE10: u32 = 0x5A;

const FILEMARK: u32 = 0x80;
const EOM: u32 = 0x40;
const ILI: u32 = 0x20;

export function driveCommand(c: usize, dev: u32, op: u32): void {
  switch (op) {
    case OP_TEST_UNIT_READY: if (ready(c, dev)) good(c); return;
    case OP_READ_BLOCK_LIMITS: readBlockLimits(c); return;
    case OP_READ6: read6(c, dev); return;
    case OP_WRITE6: write6(c, dev); return;
    case OP_WRITE_FILEMARKS6: writeFilemarks(c, dev); return;
    case OP_SPACE6: space(c, dev); return;
    case OP_REWIND: if (immedOnly(c) && ready(c, dev)) tapeBegin(c, dev, TOP_REWIND, 0, 0, 0, 0); return;
    case OP_ERASE6: erase(c, dev); return;
    case OP_LOAD_UNLOAD: loadUnload(c, dev); return;
    case OP_READ_POSITION: readPosition(c, dev); return;
    case OP_MODE_SENSE6: case OP_MODE_SENSE10: modeSense(c, dev, op == OP_MODE_SENSE10); return;
    case OP_MODE_SELECT6: case OP_MODE_SELECT10: modeSelect(c, dev, op == OP_MODE_SELECT10); return;
    default: invalidOpcode(c);
  }
}

/** The largest record: the library's, within one buffer window. */
export function maxBlock(): u32 { return min<u32>(load<u32>(CONFIG_ADDR + CFG_TAPE + CTP_MAX_BLOCK), MAX_WINDOW_BYTES); }

/** NOT READY and why, from the binding's status word; true when the drive is ready. */
function ready(c: usize, dev: u32): bool {
  const st = tapeStatus(dev) & TDST_MASK;
  if (st == TDST_READY) return true;
  if (st == TDST_EMPTY) fail(c, 0x02, 0x3A, 0x00); // MEDIUM NOT PRESENT
  else if (st == TDST_UNLOADED) fail(c, 0x02, 0x04, 0x02); // INITIALIZING COMMAND REQUIRED: LOAD it
  else if (st == TDST_LOADING) fail(c, 0x02, 0x04, 0x01); // BECOMING READY
  else fail(c, 0x02, 0x04, 0x12); // OFFLINE
  return false;
}

function writable(c: usize, dev: u32): bool {
  if (!ready(c, dev)) return false;
  if ((tapeStatus(dev) & TDSF_WRITE_PROTECT) != 0) { fail(c, 0x07, 0x27, 0x00); return false; }
  return true;
}

/** IMMED is accepted and the status goes out when the operation is done (allowed: it only asks for earlier). */
function immedOnly(c: usize): bool {
  if ((load<u8>(cdb(c) + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return false; }
  return true;
}

function readBlockLimits(c: usize): void {
  if ((load<u8>(cdb(c) + 1) & 0x1F) != 0) { invalidField(c, 1, 0); return; }
  const d = dataInBuffer(c, 6);
  if (d == 0) return;
  putBe32(d, maxBlock()); // byte 0: granularity 0; bytes 1-3: maximum block length
  putBe16(d + 4, 1);
  sendBuffer(c, 6);
}

// ---- READ(6), WRITE(6) ------------------------------------------------------------------------------

/** Bytes a READ/WRITE(6) moves, or -1 after failing it. Fixed mode: blocks of the MODE SELECT size. */
function transferBytes(c: usize, dev: u32, write: bool): i64 {
  const p = cdb(c);
  const flags = <u32>load<u8>(p + 1);
  const fixed = (flags & 1) != 0;
  if ((flags & (write ? 0xFE : 0xFC)) != 0) { invalidField(c, 1, write ? 1 : 2); return -1; }
  if (fixed && (flags & 2) != 0) { invalidField(c, 1, 1); return -1; } // SILI with FIXED
  const length = (<u32>load<u8>(p + 2) << 16) | <u32>getBe16(p + 3);
  const bs = load<u32>(tapeState(dev) + TDS_BLOCK_SIZE);
  if (fixed && bs == 0) { invalidField(c, 1, 0); return -1; } // fixed without a block size
  const bytes = fixed ? <u64>length * <u64>bs : <u64>length;
  store<u32>(c + CX_PRODUCED, <u32>min<u64>(bytes, 0xFFFFFFFF));
  if (bytes > <u64>(fixed ? MAX_WINDOW_BYTES : maxBlock())) { invalidField(c, 2, -1); return -1; }
  return <i64>bytes;
}

function read6(c: usize, dev: u32): void {
  const bytes = transferBytes(c, dev, false);
  if (bytes < 0 || !ready(c, dev)) return;
  if (bytes == 0) { good(c); return; }
  const d = dataInBuffer(c, <u32>bytes);
  if (d == 0) return;
  const fixed = (load<u8>(cdb(c) + 1) & 1) != 0;
  tapeBegin(c, dev, TOP_READ, <i32>bytes, d, fixed ? load<u32>(tapeState(dev) + TDS_BLOCK_SIZE) : 0, 0);
}

function write6(c: usize, dev: u32): void {
  const bytes = transferBytes(c, dev, true);
  if (bytes < 0 || !writable(c, dev)) return;
  if (bytes == 0) { good(c); return; }
  const expected = load<u32>(c + CX_EXPECTED);
  if (expected < <u32>bytes) { fail(c, 0x05, 0x0E, 0x03); return; } // a record cut short cannot be written
  const list = parameterList(c);
  if (list == 0) { startParameterList(c, <u32>bytes); return; }
  const fixed = (load<u8>(cdb(c) + 1) & 1) != 0;
  tapeBegin(c, dev, TOP_WRITE, <i32>bytes, list, fixed ? load<u32>(tapeState(dev) + TDS_BLOCK_SIZE) : 0, 0);
}

function writeFilemarks(c: usize, dev: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; } // WSMK: no setmarks
  const count = (<u32>load<u8>(p + 2) << 16) | <u32>getBe16(p + 3);
  if (!writable(c, dev)) return;
  if (count == 0) { good(c); return; } // nothing buffered to flush: writes are on the tape when acknowledged
  tapeBegin(c, dev, TOP_WRITE_MARKS, <i32>count, 0, 0, 0);
}

function space(c: usize, dev: u32): void {
  const p = cdb(c);
  const code = <u32>load<u8>(p + 1) & 0x0F;
  if ((load<u8>(p + 1) & 0xF0) != 0) { invalidField(c, 1, 4); return; }
  const raw = (<u32>load<u8>(p + 2) << 16) | <u32>getBe16(p + 3);
  const count: i32 = (raw & 0x800000) != 0 ? <i32>(raw | 0xFF000000) : <i32>raw;
  if (code != 0 && code != 1 && code != 3) { invalidField(c, 1, 3); return; } // sequential filemarks, setmarks: no
  if (!ready(c, dev)) return;
  if (code == 3) { tapeBegin(c, dev, TOP_SPACE_EOD, 0, 0, 0, 0); return; }
  if (count == 0) { good(c); return; }
  tapeBegin(c, dev, code == 0 ? TOP_SPACE_BLOCKS : TOP_SPACE_MARKS, count, 0, 0, 0);
}

function erase(c: usize, dev: u32): void {
  if ((load<u8>(cdb(c) + 1) & 0xFC) != 0) { invalidField(c, 1, 2); return; }
  if (!writable(c, dev)) return;
  tapeBegin(c, dev, TOP_ERASE, 0, 0, 0, 0);
}

function loadUnload(c: usize, dev: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; }
  const how = <u32>load<u8>(p + 4);
  if ((how & 0xFC) != 0) { invalidField(c, 4, 2); return; } // EOT, hold: not supported
  const st = tapeStatus(dev) & TDST_MASK;
  if (st == TDST_EMPTY) { fail(c, 0x02, 0x3A, 0x00); return; }
  if (st == TDST_OFFLINE) { fail(c, 0x02, 0x04, 0x12); return; }
  tapeBegin(c, dev, (how & 1) != 0 ? TOP_LOAD : TOP_UNLOAD, 0, 0, 0, 0);
}

// ---- What the request came back with ------------------------------------------------------------------

/** The binding answered the drive's request: the status, sense and data of the command. */
export function driveDone(c: usize, dev: u32, e: usize): void {
  const status = <u32>load<u16>(e + TCQ_STATUS);
  const op = load<u32>(c + TX_OP);
  if (status == TST_NO_MEDIUM) { fail(c, 0x02, 0x3A, 0x00); return; }
  if (status == TST_NOT_LOADED) { fail(c, 0x02, 0x04, 0x02); return; }
  if (status == TST_OFFLINE) { fail(c, 0x02, 0x04, 0x12); return; }
  if (status == TST_PROTECTED) { fail(c, 0x07, 0x27, 0x00); return; }
  if (op == TOP_READ) { readDone(c, e, status); return; }
  if (op == TOP_WRITE || op == TOP_WRITE_MARKS) { writeDone(c, e, status); return; }
  if (op == TOP_SPACE_BLOCKS || op == TOP_SPACE_MARKS || op == TOP_SPACE_EOD) { spaceDone(c, e, status); return; }
  if (status != TST_OK) { fail(c, 0x03, 0x11, 0x00); return; } // rewind, load, unload, erase: a medium fault
  good(c);
}

function readDone(c: usize, e: usize, status: u32): void {
  const asked = <u32>load<i32>(c + TX_COUNT);
  const bs = load<u32>(c + TX_ARG);
  const done = load<u32>(e + TCQ_DONE);
  const record = load<u32>(e + TCQ_LENGTH);
  const units = bs == 0 ? asked : asked / bs; // what INFORMATION counts: bytes or blocks
  const got = bs == 0 ? (done != 0 ? min<u32>(record, asked) : 0) : done * bs;
  const left = <i32>(units - (bs == 0 ? (done != 0 ? min<u32>(record, asked) : 0) : done));
  if (status == TST_TAPEMARK) tapeSense(c, 0x00, 0x00, 0x01, FILEMARK, left);
  else if (status == TST_EOD) tapeSense(c, 0x08, 0x00, 0x05, 0, left);
  else if (status == TST_READ_ERROR) tapeSense(c, 0x03, 0x11, 0x00, 0, left);
  else if (status != TST_OK) tapeSense(c, 0x04, 0x44, 0x00, 0, left);
  else if (bs == 0 && record != asked && (record > asked || !silI(c))) tapeSense(c, 0x00, 0x00, 0x00, ILI, <i32>asked - <i32>record);
  else if (bs != 0 && done < units) tapeSense(c, 0x00, 0x00, 0x00, ILI, left); // a record of another length
  tapeSendThen(c, got);
}

function silI(c: usize): bool { return (load<u8>(cdb(c) + 1) & 2) != 0; }

function writeDone(c: usize, e: usize, status: u32): void {
  const bs = load<u32>(c + TX_ARG);
  const asked = <u32>load<i32>(c + TX_COUNT);
  const done = load<u32>(e + TCQ_DONE);
  const marks = load<u32>(c + TX_OP) == TOP_WRITE_MARKS;
  // INFORMATION: blocks (fixed), filemarks, or bytes (variable) not written.
  const left = <i32>(marks ? asked - done : bs != 0 ? asked / bs - done : (done != 0 ? 0 : asked));
  if (status == TST_EOM) { tapeSense(c, 0x0D, 0x00, 0x02, EOM, left); respond(c); return; }
  if (status == TST_WRITE_ERROR) { tapeSense(c, 0x03, 0x0C, 0x00, 0, left); respond(c); return; }
  if (status != TST_OK) { tapeSense(c, 0x04, 0x44, 0x00, 0, left); respond(c); return; }
  if (((<u32>load<u16>(e + TCQ_FLAGS) << 8) & TDSF_EW) != 0) { tapeSense(c, 0x00, 0x00, 0x02, EOM, 0); respond(c); return; }
  good(c);
}

function spaceDone(c: usize, e: usize, status: u32): void {
  const count = load<i32>(c + TX_COUNT);
  const done = <i32>load<u32>(e + TCQ_DONE);
  const left: i32 = count - (count < 0 ? -done : done);
  if (status == TST_OK) { good(c); return; }
  if (status == TST_TAPEMARK) tapeSense(c, 0x00, 0x00, 0x01, FILEMARK, left);
  else if (status == TST_EOD) tapeSense(c, 0x08, 0x00, 0x05, 0, left);
  else if (status == TST_BOT) tapeSense(c, 0x00, 0x00, 0x04, EOM, left);
  else tapeSense(c, 0x03, 0x11, 0x00, 0, left);
  respond(c);
}

/** Sense is set: the status goes out with no data. */
function respond(c: usize): void { tapeSendThen(c, 0); }

// ---- READ POSITION, MODE SENSE/SELECT -------------------------------------------------------------------

function readPosition(c: usize, dev: u32): void {
  const sa = <u32>load<u8>(cdb(c) + 1) & 0x1F;
  if (sa > 1) { invalidField(c, 1, 4); return; } // short form only (block id or vendor: the same here)
  if (!ready(c, dev)) return;
  const d = dataInBuffer(c, 20);
  if (d == 0) return;
  const st = tapeStatus(dev);
  store<u8>(d, <u8>(((st & TDSF_BOT) != 0 ? 0x80 : 0) | ((st & TDSF_EW) != 0 ? 0x40 : 0))); // BOP, EOP
  putBe32(d + 4, tapePosition(dev)); // first block location
  putBe32(d + 8, tapePosition(dev)); // last: nothing is buffered
  sendBuffer(c, 20);
}

function modeSense(c: usize, dev: u32, ten: bool): void {
  const p = cdb(c);
  const dbd = (load<u8>(p + 1) & 0x08) != 0;
  const pc = <u32>load<u8>(p + 2) >> 6;
  const page = <u32>load<u8>(p + 2) & 0x3F;
  if (pc == 3) { fail(c, 0x05, 0x39, 0x00); return; }
  if (page != 0x00 && page != 0x0F && page != 0x10 && page != 0x3F) { invalidField(c, 2, 5); return; }
  if (load<u8>(p + 3) != 0) { invalidField(c, 3, -1); return; }
  const d = dataInBuffer(c, 128);
  if (d == 0) return;
  const header: u32 = ten ? 8 : 4;
  let n = header;
  const wp = (tapeStatus(dev) & TDSF_WRITE_PROTECT) != 0 && pc == 0;
  store<u8>(d + (ten ? 3 : 2), wp ? 0x80 : 0x00); // device-specific: WP; buffered mode 0: acknowledged writes are on the tape
  if (!dbd) {
    const bs = pc == 1 ? 0xFFFFFF : pc == 2 ? 0 : load<u32>(tapeState(dev) + TDS_BLOCK_SIZE);
    store<u8>(d + n, pc == 1 ? 0 : load<u8>(CONFIG_ADDR + CFG_TAPE + CTP_DENSITY));
    putBe32(d + n + 4, bs & 0xFFFFFF);
    if (ten) putBe16(d + 6, 8); else store<u8>(d + 3, 8);
    n += 8;
  }
  if (page == 0x0F || page == 0x3F) { memory.fill(d + n, 0, 16); store<u8>(d + n, 0x0F); store<u8>(d + n + 1, 0x0E); n += 16; }
  if (page == 0x10 || page == 0x3F) {
    memory.fill(d + n, 0, 16);
    store<u8>(d + n, 0x10);
    store<u8>(d + n + 1, 0x0E);
    if (pc != 1) store<u8>(d + n + 10, 0x18); // EEG: end of data is written; SEW: data is on the tape at early warning
    n += 16;
  }
  if (ten) putBe16(d, n - 2); else store<u8>(d, <u8>(n - 1));
  sendBuffer(c, min<u32>(n, ten ? getBe16(p + 7) : <u32>load<u8>(p + 4)));
}

/** MODE SELECT: the block descriptor sets the block length (0: variable); pages 0Fh (no compression) and 10h are taken as they are. */
function modeSelect(c: usize, dev: u32, ten: bool): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0x01) != 0) { invalidField(c, 1, 0); return; } // SP: nothing is saved
  const length = ten ? getBe16(p + 7) : <u32>load<u8>(p + 4);
  const header: u32 = ten ? 8 : 4;
  if (length == 0) { good(c); return; }
  if (length < header) { fail(c, 0x05, 0x1A, 0x00); return; }
  const list = parameterList(c);
  if (list == 0) { startParameterList(c, length); return; }
  const descLen = ten ? getBe16(list + 6) : <u32>load<u8>(list + 3);
  if ((descLen != 0 && descLen != 8) || header + descLen > length) { fieldInList(c, ten ? 6 : 3); return; }
  let bs = load<u32>(tapeState(dev) + TDS_BLOCK_SIZE);
  if (descLen == 8) {
    const density = <u32>load<u8>(list + header);
    bs = (<u32>load<u8>(list + header + 5) << 16) | getBe16(list + header + 6);
    if (density != 0 && density != <u32>load<u8>(CONFIG_ADDR + CFG_TAPE + CTP_DENSITY)) { fieldInList(c, header); return; }
    if (bs > maxBlock()) { fieldInList(c, header + 5); return; }
  }
  let at = header + descLen;
  while (at < length) {
    const page = <u32>load<u8>(list + at) & 0x3F;
    const plen = at + 1 < length ? <u32>load<u8>(list + at + 1) : 0;
    if (at + 2 + plen > length || (page != 0x0F && page != 0x10)) { fieldInList(c, at); return; }
    if (page == 0x0F && (load<u8>(list + at + 2) & 0x80) != 0) { fieldInList(c, at + 2); return; } // DCE: no compression here
    at += 2 + plen;
  }
  store<u32>(tapeState(dev) + TDS_BLOCK_SIZE, bs);
  good(c);
}

/** INVALID FIELD IN PARAMETER LIST at byte `at`. */
function fieldInList(c: usize, at: u32): void {
  fail(c, 0x05, 0x26, 0x00);
  ctxField(c, false, at, -1);
}
