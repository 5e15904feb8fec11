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
  TOP_SPACE_MARKS, TOP_SPACE_EOD, TOP_REWIND, TOP_LOAD, TOP_UNLOAD, TOP_ERASE, TOP_LOCATE, TOP_SYNC, TCQ_STATUS, TCQ_FLAGS, TCQ_LENGTH,
  TCQ_DONE, TST_OK, TST_TAPEMARK, TST_EOD, TST_BOT, TST_EOM, TST_WRITE_ERROR, TST_READ_ERROR, TST_NO_MEDIUM,
  TST_NOT_LOADED, TST_OFFLINE, TST_PROTECTED, TST_IO_ERROR,
} from "../abi";
import { CX_EXPECTED, CX_PRODUCED, CX_PORT, CX_SESSION, ctxField } from "../ctx";
import { fail, good, dataInBuffer, sendBuffer, sendBufferThen, startParameterList, parameterList } from "../sequencer";
import { MAX_WINDOW_BYTES } from "../ctx";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "../util";
import { cdb, invalidField, invalidOpcode } from "../scsi/dispatch";
import { tapeStatus, tapePosition, tapeFile, tapeState, tapeUaPost, TDS_BLOCK_SIZE, UA_MEDIUM } from "./device";
import { tapeBegin, tapeBeginImmed, tapeSense, TX_OP, TX_COUNT, TX_ARG, TX_ARG2 } from "./command";

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
const OP_LOCATE10: u32 = 0x2B;
const OP_LOCATE16: u32 = 0x92;
const OP_SPACE16: u32 = 0x91;
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
    case OP_SPACE6: space(c, dev, false); return;
    case OP_SPACE16: space(c, dev, true); return;
    case OP_LOCATE10: case OP_LOCATE16: locate(c, dev, op == OP_LOCATE16); return;
    case OP_REWIND: if (immedOnly(c) && ready(c, dev)) tapeBeginImmed(c, dev, TOP_REWIND, 0, 0, 0, 0, immed(c)); return;
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

/** Byte 1 holds nothing but IMMED. */
function immedOnly(c: usize): bool {
  if ((load<u8>(cdb(c) + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return false; }
  return true;
}

/** IMMED (byte 1 bit 0): the status goes as soon as the operation has started (command.ts: tapeBeginImmed). */
function immed(c: usize): bool { return (load<u8>(cdb(c) + 1) & 1) != 0; }

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

/**
 * WRITE FILEMARKS. Records are in the cartridge's image file when acknowledged (buffered mode 1:
 * the host's page cache is the drive's buffer); with IMMED=0 the filemarks are written and then
 * the image is made durable (fdatasync) before the status — the sync point SSC-3 gives a backup
 * application, also with a count of 0. With IMMED=1 the status goes at once and nothing is synced.
 */
function writeFilemarks(c: usize, dev: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; } // WSMK: no setmarks
  const count = (<u32>load<u8>(p + 2) << 16) | <u32>getBe16(p + 3);
  if (!writable(c, dev)) return;
  if (count == 0) {
    if (immed(c)) good(c); else tapeBegin(c, dev, TOP_SYNC, 0, 0, 0, 0);
    return;
  }
  tapeBeginImmed(c, dev, TOP_WRITE_MARKS, <i32>count, 0, immed(c) ? 0 : 1, 0, immed(c));
}

/** SPACE(6) and SPACE(16): blocks, filemarks, end of data; negative counts go towards BOT. */
function space(c: usize, dev: u32, sixteen: bool): void {
  const p = cdb(c);
  const code = <u32>load<u8>(p + 1) & 0x0F;
  if ((load<u8>(p + 1) & 0xF0) != 0) { invalidField(c, 1, 4); return; }
  let count: i32 = 0;
  if (sixteen) {
    const wide = <i64>getBe64(p + 4);
    if (getBe16(p + 12) != 0) { invalidField(c, 12, -1); return; } // no parameter data (partitions, SPACE(16) parameters)
    if (wide <= <i64>i32.MIN_VALUE || wide > <i64>i32.MAX_VALUE) { invalidField(c, 4, -1); return; } // beyond any tape of ours
    count = <i32>wide;
  } else {
    const raw = (<u32>load<u8>(p + 2) << 16) | <u32>getBe16(p + 3);
    count = (raw & 0x800000) != 0 ? <i32>(raw | 0xFF000000) : <i32>raw;
  }
  if (code != 0 && code != 1 && code != 3) { invalidField(c, 1, 3); return; } // sequential filemarks, setmarks: no
  if (!ready(c, dev)) return;
  if (code == 3) { tapeBegin(c, dev, TOP_SPACE_EOD, 0, 0, 0, 0); return; }
  if (count == 0) { good(c); return; }
  tapeBegin(c, dev, code == 0 ? TOP_SPACE_BLOCKS : TOP_SPACE_MARKS, count, 0, 0, 0);
}

/**
 * LOCATE(10) and LOCATE(16) (SSC-3 7.4, 6.4): to a logical object (a block address: the same
 * numbers READ POSITION gives, BT or not), to a logical file, or to the end of data. One
 * partition: CP with a partition other than 0 is refused. Beyond the end of data: BLANK CHECK,
 * positioned at it.
 */
function locate(c: usize, dev: u32, sixteen: bool): void {
  const p = cdb(c);
  const b1 = <u32>load<u8>(p + 1);
  const cp = (b1 & 0x02) != 0;
  let type: u32 = 0; // 0: logical object, 1: logical file, 3: end of data
  let address: u64 = 0;
  let partition: u32 = 0;
  if (sixteen) {
    if ((b1 & 0xE4) != 0) { invalidField(c, 1, 2); return; }
    type = (b1 >> 3) & 3;
    if (type == 2) { invalidField(c, 1, 3); return; } // reserved
    if ((load<u8>(p + 2) & 0x01) != 0) { invalidField(c, 2, 0); return; } // BAM: implicit addresses only
    partition = load<u8>(p + 3);
    address = getBe64(p + 4);
  } else {
    if ((b1 & 0xF8) != 0) { invalidField(c, 1, 3); return; } // BT (bit 2) is allowed: block addresses are logical object numbers
    partition = load<u8>(p + 8);
    address = <u64>getBe32(p + 3);
  }
  if (cp && partition != 0) { invalidField(c, sixteen ? 3 : 8, -1); return; } // one partition
  if (!ready(c, dev)) return;
  const im = immed(c);
  if (type == 3) { tapeBeginImmed(c, dev, TOP_SPACE_EOD, 0, 0, 0, 0, im); return; }
  tapeBeginImmed(c, dev, TOP_LOCATE, <i32>type, 0, <u32>address, <u32>(address >> 32), im);
}

function erase(c: usize, dev: u32): void {
  if ((load<u8>(cdb(c) + 1) & 0xFC) != 0) { invalidField(c, 1, 2); return; }
  if (!writable(c, dev)) return;
  tapeBeginImmed(c, dev, TOP_ERASE, 0, 0, 0, 0, (load<u8>(cdb(c) + 1) & 2) != 0); // ERASE's IMMED is bit 1
}

function loadUnload(c: usize, dev: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; }
  const how = <u32>load<u8>(p + 4);
  if ((how & 0xFC) != 0) { invalidField(c, 4, 2); return; } // EOT, hold: not supported
  const st = tapeStatus(dev) & TDST_MASK;
  if (st == TDST_EMPTY) { fail(c, 0x02, 0x3A, 0x00); return; }
  if (st == TDST_OFFLINE) { fail(c, 0x02, 0x04, 0x12); return; }
  const load_ = (how & 1) != 0;
  // ARG2 of a LOAD: 1 when it makes a not-ready drive ready, a medium change for the other nexuses.
  tapeBeginImmed(c, dev, load_ ? TOP_LOAD : TOP_UNLOAD, 0, 0, 0, load_ && st != TDST_READY ? 1 : 0, immed(c));
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
  if (op == TOP_LOCATE && status == TST_EOD) { fail(c, 0x08, 0x00, 0x05); return; } // beyond the end of data: positioned at it
  if (op == TOP_SYNC && status != TST_OK) { fail(c, 0x03, 0x0C, 0x00); return; } // what was written may not be kept
  if (status == TST_IO_ERROR) { fail(c, 0x04, 0x44, 0x00); return; }
  if (status != TST_OK) { fail(c, 0x03, 0x11, 0x00); return; } // rewind, load, unload, erase, locate: a medium fault
  // A LOAD that made the drive ready: every other nexus hears the medium may have changed (SSC-3 4.2.x, 28h/00h).
  if (op == TOP_LOAD && load<u32>(c + TX_ARG2) != 0) tapeUaPost(dev, UA_MEDIUM, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
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
  sendBufferThen(c, got); // at most the host's expected length, then the status prepared
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
function respond(c: usize): void { sendBufferThen(c, 0); }

// ---- READ POSITION, MODE SENSE/SELECT -------------------------------------------------------------------

/**
 * READ POSITION (SSC-3 7.7): short form (00h block id, 01h vendor: the same numbers), long form
 * (06h: partition, logical object number, logical file identifier) and extended form (08h). The
 * object buffer is always empty: a record is in the image when acknowledged.
 */
function readPosition(c: usize, dev: u32): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  if ((load<u8>(p + 1) & 0xE0) != 0) { invalidField(c, 1, 7); return; }
  if (sa != 0 && sa != 1 && sa != 6 && sa != 8) { invalidField(c, 1, 4); return; }
  if (!ready(c, dev)) return;
  const st = tapeStatus(dev);
  const flags: u32 = ((st & TDSF_BOT) != 0 ? 0x80 : 0) | ((st & TDSF_EW) != 0 ? 0x40 : 0); // BOP, EOP
  const pos = tapePosition(dev);
  const alloc = getBe16(p + 7);
  if (sa <= 1) {
    const d = dataInBuffer(c, 20);
    if (d == 0) return;
    store<u8>(d, <u8>flags);
    putBe32(d + 4, pos); // first block location
    putBe32(d + 8, pos); // last: nothing is buffered
    sendBuffer(c, 20);
    return;
  }
  const d = dataInBuffer(c, 32);
  if (d == 0) return;
  if (sa == 6) {
    store<u8>(d, <u8>flags); // long form: BOP, EOP; LONU and MPU 0: the numbers are valid
    putBe32(d + 4, 0); // partition
    putBe64(d + 8, <u64>pos); // logical object number
    putBe64(d + 16, <u64>tapeFile(dev)); // logical file identifier
  } else {
    store<u8>(d, <u8>flags);
    store<u8>(d + 1, 0); // partition
    putBe16(d + 2, 0x1C); // additional length
    putBe64(d + 8, <u64>pos); // first logical object location
    putBe64(d + 16, <u64>pos); // last
  }
  sendBuffer(c, sa == 8 ? min<u32>(32, alloc) : 32); // the allocation length counts for the extended form only
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
  store<u8>(d + (ten ? 3 : 2), (wp ? 0x80 : 0x00) | 0x10); // device-specific: WP; buffered mode 1: a record acknowledged is in the image, durable at the next WRITE FILEMARKS
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
