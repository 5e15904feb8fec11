// EXTENDED COPY (LID1, 83h/00h) and RECEIVE COPY RESULTS (84h) on the channel IOPs (document 001:
// "the processor 502 receiving the instruction command for backup analyzes [it] and stores the
// results of the analysis in the backup parameter information 511", then the copy is carried out
// by another processor). Here every field of the parameter list is checked, every CSCD descriptor
// is resolved to a volume or a tape device *that the initiator's port can reach* (never a device
// it cannot: the LIO flaw CVE-2020-28374), and the list is handed to the disk IOP's copy manager
// (manager.ts) in a record of the copy table (table.ts). The command then waits for the copy's
// end (SPC-3 LID1: status when the copy is done), or, when the list's vendor segment C0h asks for
// it (IMMED, 001's fourth embodiment), answers once the pair split is in NV and lets the copy run
// on, to be followed with RECEIVE COPY RESULTS.
import {
  CX_PORT, CX_SESSION, CX_STATE, CX_ARG, CX_FLAGS, CX_EXPECTED, CX_OPCODE, CX_ID, CX_INFO, CXF_PARAM, CXF_INFO_VALID,
  CXF_CSI, ST_DISPATCH, ST_WRITE_BUFFER, ST_PARAM_DATA, ctxField, ctxBufferRelease, activeFirst, activeNext, senseFixed,
} from "../ctx";
import { fail, good, retryLater, startParameterList, parameterList, dataInBuffer, sendBuffer, ctxLogicalUnit } from "../sequencer";
import { cdb, invalidField } from "../scsi/dispatch";
import { CONFIG_ADDR, CFG_DEVICE_ID, MAX_LUNS, MAX_VOLUMES, TDK_DRIVE } from "../abi";
import { lunMapEntry } from "../nv";
import { volumeInUse, blockSize, capacityBlocks } from "../volume";
import { volumeFenced } from "../cache";
import { gIndex } from "../iop";
import { getBe16, getBe32, getBe64, putBe16, putBe32 } from "../util";
import { tapeDeviceByNaa, tapeKind, tapeState, TDS_RES_PORT, TDS_RES_SESSION } from "../tape/device";
import { reservationLive } from "../tape/command";
import { reservationAdmits, PR_TAPE_UNIT } from "../scsi/pr";
import { pairOfVolume, rec, PS_DUPLEX, PS_DUPLEX_PENDING } from "../pair/table";
import { sessionAlive, nexusGeneration } from "./nexus";
import { accessOf, tapeAccessOf, ACC_NONE, ACC_RO } from "../comm/access";
import {
  op, opAt, target, opOfList, CopyOp, MAX_COPIES, MAX_TARGETS, MAX_SEGMENTS, MAX_SEGMENT_BYTES, MAX_INLINE_BYTES,
  MAX_LIST_BYTES, STAGE_BYTES, MAX_RECORD_BYTES, HELD_BYTES, OP_SEGMENTS, OP_INLINE, OP_TARGET_SENSE, OP_HELD, OP_HEADER_BYTES, TARGET_BYTES,
  XS_FREE, XS_QUEUED, XS_RUNNING, XS_DONE, XF_NRCR, XF_IMMED, XF_DETACHED, XF_SPLIT_DONE, CMS_GOOD, CMS_IN_PROGRESS, TK_BLOCK,
  TK_STREAM, PP_WAIT,
} from "./table";

export const OP_EXTENDED_COPY: u32 = 0x83;
export const OP_RECEIVE_COPY_RESULTS: u32 = 0x84;

// Segment descriptor type codes (SPC-3 6.3.7) this copy manager implements, and the vendor one.
export const SEG_BLOCK_TO_STREAM: u32 = 0x00;
export const SEG_STREAM_TO_BLOCK: u32 = 0x01;
export const SEG_BLOCK_TO_BLOCK: u32 = 0x02;
export const SEG_INLINE_TO_STREAM: u32 = 0x04;
export const SEG_EMBEDDED_TO_STREAM: u32 = 0x05;
export const SEG_STREAM_TO_DISCARD_HOLD: u32 = 0x0F;
export const SEG_WRITE_FILEMARKS: u32 = 0x10;
export const SEG_PAIR_BACKUP: u32 = 0xC0; // vendor: split the pair first / IMMED / how a split-pending target is read
export const CSCD_IDENTIFICATION: u32 = 0xE4;
/** Segment and CSCD types in OPERATING PARAMETERS' list, one a byte (least significant first). */
const IMPLEMENTED_LO: u64 = 0xC0100F0504020100;
const IMPLEMENTED_HI: u32 = 0xE4;
const IMPLEMENTED_COUNT: u32 = 9;

const SENSE_ILLEGAL: u32 = 0x05;
const SENSE_COPY_ABORTED: u32 = 0x0A;
// What a stopped copy ends with (CopyOp.abort: key << 16 | asc << 8 | ascq).
const STOP_ABORTED: u32 = 0x0B0000; // ABORTED COMMAND: its command was aborted (ABORT TASK, its session closed)
const STOP_RESET: u32 = 0x0B2903; // ABORTED COMMAND, BUS DEVICE RESET FUNCTION OCCURRED: its logical unit was reset

// ---- EXTENDED COPY ----------------------------------------------------------------------------

export function extendedCopy(c: usize): void {
  const p = cdb(c);
  if (load<u32>(c + CX_ARG) != 0) { waitCopy(c); return; }
  if ((load<u8>(p + 1) & 0x1F) != 0) { invalidField(c, 1, 4); return; } // LID4 and the token copies: not here
  const length = getBe32(p + 10);
  if (length == 0) { good(c); return; } // no list: nothing to do (SPC-3)
  if (length < 16) { fail(c, SENSE_ILLEGAL, 0x1A, 0x00); ctxField(c, true, 10, -1); return; }
  if (length > MAX_LIST_BYTES || load<u32>(c + CX_EXPECTED) < length) { invalidField(c, 10, -1); return; }
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) { startParameterList(c, length); return; }
  const list = parameterList(c);
  if (list == 0) return;
  const i = parse(c, list, length);
  ctxBufferRelease(c);
  if (i < 0) return; // answered
  store<u32>(c + CX_ARG, <u32>i + 1);
  retryLater(c);
}

/** The copy runs on the disk IOP: its end (or, IMMED, its split) gives the status. */
function waitCopy(c: usize): void {
  const i = load<u32>(c + CX_ARG) - 1;
  const o = op(i);
  if (o.state == XS_DONE) {
    o.flags |= XF_DETACHED;
    if (o.status == CMS_GOOD) good(c);
    else copyFailed(c, o);
    if ((o.flags & XF_NRCR) != 0) o.state = XS_FREE; // nothing held for RECEIVE COPY RESULTS
    store<u32>(c + CX_ARG, 0);
    return;
  }
  if ((o.flags & (XF_IMMED | XF_SPLIT_DONE)) == (XF_IMMED | XF_SPLIT_DONE)) {
    o.flags |= XF_DETACHED; // 001, FIG. 11: "the controller responds to the Backup command" at the split
    store<u32>(c + CX_ARG, 0);
    good(c);
    return;
  }
  retryLater(c);
}

/** CHECK CONDITION with the copy's sense; COMMAND-SPECIFIC INFORMATION: the segment that failed. */
function copyFailed(c: usize, o: CopyOp): void {
  fail(c, o.senseKey, o.asc, o.ascq);
  store<u32>(c + CX_INFO, o.failedSegment);
  store<u32>(c + CX_FLAGS, (load<u32>(c + CX_FLAGS) & ~CXF_INFO_VALID) | CXF_CSI);
}


/** The command ended without waiting for its copy (task management, its session closed): stop it. */
export function xcopyCommandGone(c: usize): void {
  if (<u32>load<u8>(c + CX_OPCODE) != OP_EXTENDED_COPY) return;
  const arg = load<u32>(c + CX_ARG);
  if (arg == 0) return;
  const o = op(arg - 1);
  if ((o.flags & XF_DETACHED) != 0) return;
  o.flags |= XF_DETACHED;
  if (o.state == XS_DONE) { if ((o.flags & XF_NRCR) != 0) o.state = XS_FREE; return; }
  o.abort = STOP_ABORTED;
  store<u32>(c + CX_ARG, 0);
}

/**
 * A LOGICAL UNIT RESET of `lu` (or a target reset, unit by unit): the copies of its copy manager
 * stop, background ones (IMMED, no command left to abort) included, whichever nexus sent them, as
 * the reset clears every initiator's tasks of the unit. Their results say why (ABORTED COMMAND,
 * 29h/03h in FAILED SEGMENT DETAILS) to the nexus that sent them, which outlives the reset.
 */
export function xcopyUnitReset(lu: u32): void {
  for (let i: u32 = 0; i < MAX_COPIES; i++) {
    const st = atomic.load<u32>(opAt(i));
    if ((st == XS_QUEUED || st == XS_RUNNING) && op(i).unit == lu) op(i).abort = STOP_RESET;
  }
}

// ---- Parsing ----------------------------------------------------------------------------------

/** Checks the list and fills a copy record; its index, or -1 after answering. */
function parse(c: usize, list: usize, length: u32): i32 {
  const flags = <u32>load<u8>(list + 1);
  if ((flags & 0xC8) != 0) return paramError(c, 1, 7); // reserved bits (STR, bit 5, is a hint: accepted)
  const targetBytes = getBe16(list + 2);
  if (getBe32(list + 4) != 0) return paramError(c, 4, -1);
  const segmentBytes = getBe32(list + 8);
  const inlineBytes = getBe32(list + 12);
  if (<u64>16 + <u64>targetBytes + <u64>segmentBytes + <u64>inlineBytes != <u64>length) {
    fail(c, SENSE_ILLEGAL, 0x1A, 0x00); // PARAMETER LIST LENGTH ERROR
    return -1;
  }
  if (targetBytes % 32 != 0) return paramError(c, 2, -1);
  // The descriptors together beyond the MAXIMUM DESCRIPTOR LIST LENGTH of OPERATING PARAMETERS:
  // PARAMETER LIST LENGTH ERROR (SPC-4 6.4.3.5), before either count is looked at.
  if (<u64>targetBytes + <u64>segmentBytes > <u64>(MAX_TARGETS * 32 + MAX_SEGMENT_BYTES)) { fail(c, SENSE_ILLEGAL, 0x1A, 0x00); return -1; }
  if (targetBytes / 32 > MAX_TARGETS) return listError(c, 0x26, 0x06, 2); // TOO MANY TARGET DESCRIPTORS
  if (segmentBytes > MAX_SEGMENT_BYTES) return listError(c, 0x26, 0x08, 8); // TOO MANY SEGMENT DESCRIPTORS
  if (inlineBytes > MAX_INLINE_BYTES) return listError(c, 0x26, 0x0B, 12); // INLINE DATA LENGTH EXCEEDED
  const port = <u32>load<u8>(c + CX_PORT);
  const session = <u32>load<u8>(c + CX_SESSION);
  const gen = nexusGeneration(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
  const id = <u32>load<u8>(list);
  const nrcr = (flags & 0x10) != 0;
  // The same list identifier from this nexus: OPERATION IN PROGRESS while that copy runs; once it has
  // ended, its held results are discarded for the new one (SPC-4 6.4.1: a list identifier names the
  // nexus's latest copy; libiscsi's suite reuses identifiers so).
  const same = nrcr ? -1 : opOfList(port, session, gen, id);
  if (same >= 0) {
    const prev = op(<u32>same);
    if (prev.state != XS_DONE || (prev.flags & XF_DETACHED) == 0) { fail(c, SENSE_ILLEGAL, 0x00, 0x16); return -1; }
    prev.state = XS_FREE;
  }
  const i = freeRecord();
  if (i < 0) { fail(c, SENSE_ILLEGAL, 0x55, 0x03); return -1; } // INSUFFICIENT RESOURCES (copies at once)
  const o = op(<u32>i);
  memory.fill(opAt(<u32>i), 0, OP_HEADER_BYTES);
  o.listId = id;
  o.port = port;
  o.session = session;
  o.sessionGen = gen;
  o.priority = flags & 7;
  o.flags = nrcr ? XF_NRCR : 0;
  o.pair = -1;
  o.targets = targetBytes / 32;
  for (let t: u32 = 0; t < o.targets; t++) if (!cscd(c, <u32>i, t, list + 16 + t * 32, 16 + t * 32)) return -1;
  const segs = list + 16 + targetBytes;
  memory.copy(opAt(<u32>i) + OP_SEGMENTS, segs, segmentBytes);
  memory.copy(opAt(<u32>i) + OP_INLINE, segs + segmentBytes, inlineBytes);
  o.segmentBytes = segmentBytes;
  o.inlineBytes = inlineBytes;
  let at: u32 = 0;
  let n: u32 = 0;
  while (at < segmentBytes) {
    if (n == MAX_SEGMENTS) return listError(c, 0x26, 0x08, 8);
    if (at + 4 > segmentBytes) return paramError(c, 16 + targetBytes + at, -1);
    const len = segment(c, <u32>i, segs + at, 16 + targetBytes + at, segmentBytes - at);
    if (len == 0) return -1;
    at += len;
    n++;
  }
  o.segments = n;
  o.status = CMS_IN_PROGRESS;
  o.cmdCtx = (gIndex << 24) | (load<u32>(c + CX_ID) & 0xFFFFFF);
  o.unit = ctxLogicalUnit(c);
  atomic.store<u32>(opAt(<u32>i), XS_QUEUED); // published: the disk IOP takes it on its next poll
  return i;
}

/** A FREE record, or a finished one whose results nobody can ask for any more (its nexus is gone). */
function freeRecord(): i32 {
  for (let i: u32 = 0; i < MAX_COPIES; i++) if (atomic.load<u32>(opAt(i)) == XS_FREE) return <i32>i;
  for (let i: u32 = 0; i < MAX_COPIES; i++) {
    const o = op(i);
    if (o.state == XS_DONE && (o.flags & XF_DETACHED) != 0 && !sessionAlive(o.port, o.session, o.sessionGen)) return <i32>i;
  }
  return -1;
}

function paramError(c: usize, at: u32, bit: i32): i32 { return listError(c, 0x26, 0x00, at, bit); }

function listError(c: usize, asc: u32, ascq: u32, at: u32, bit: i32 = -1): i32 {
  fail(c, SENSE_ILLEGAL, asc, ascq);
  ctxField(c, false, at, bit);
  return -1;
}

/**
 * A segment's range past its block device: COPY ABORTED with no additional sense code, the
 * sense-key specific segment pointer on the LBA field (the codes libiscsi's suite admits under COPY
 * ABORTED are 00h/00h, 08h/04h and 0Dh/02h; neither unreachable code would be true here).
 */
function outOfRange(c: usize, at: u32): void {
  fail(c, SENSE_COPY_ABORTED, 0x00, 0x00);
  ctxField(c, false, at, -1);
}

/** COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (0Dh/02h), pointing at the descriptor. */
function unreachable(c: usize, at: u32): bool {
  fail(c, SENSE_COPY_ABORTED, 0x0D, 0x02);
  ctxField(c, false, at, -1);
  return false;
}

/**
 * One identification descriptor (E4h): a logical unit NAA designator of 16 bytes naming a volume or
 * a tape drive of this array, with its device type's parameters. The initiator must reach it: a
 * volume mapped at a LUN of the port the command came through (tape drives are on every port), not
 * fenced by a delete, and a drive not reserved by another I_T nexus; a persistent reservation of the
 * unit must admit the initiator (one that admits reads only: a source only); and the unit's access list
 * (004's LUN security, comm/access.ts) must not say none for the initiator (read-only: a source only).
 */
function cscd(c: usize, i: u32, t: u32, d: usize, at: u32): bool {
  if (<u32>load<u8>(d) != CSCD_IDENTIFICATION) { listError(c, 0x26, 0x07, at); return false; } // UNSUPPORTED TARGET DESCRIPTOR TYPE CODE
  const b1 = <u32>load<u8>(d + 1);
  const type = b1 & 0x1F;
  // Bits 7-5 (LU ID TYPE, NUL) are ignored: SPC-4 made NUL obsolete, and the designator, not a LUN, names the unit.
  if (type != 0x00 && type != 0x01) { listError(c, 0x26, 0x0C, at + 1); return false; }
  if ((<u32>load<u8>(d + 4) & 0x0F) != 1) { paramError(c, at + 4, 3); return false; } // code set: binary
  if ((<u32>load<u8>(d + 5) & 0x3F) != 0x03) { paramError(c, at + 5, 5); return false; } // LU, NAA
  if (<u32>load<u8>(d + 7) != 16) { paramError(c, at + 7, -1); return false; }
  const naa = d + 8;
  const port = <u32>load<u8>(c + CX_PORT);
  const tt = target(i, t);
  const params = d + 28;
  const pad = (<u32>load<u8>(params) & 0x04) != 0 ? 1 : 0;
  const length = (<u32>load<u8>(params + 1) << 16) | getBe16(params + 2);
  if (type == 0x01) {
    const dev = tapeDeviceByNaa(naa);
    if (dev < 0 || tapeKind(<u32>dev) != TDK_DRIVE) return unreachable(c, at + 8);
    if (reservedByOther(<u32>dev, c) || !reservationAdmits(c, PR_TAPE_UNIT + <u32>dev, false)) return unreachable(c, at + 8);
    tt.readOnlyReserved = reservationAdmits(c, PR_TAPE_UNIT + <u32>dev, true) ? 0 : 1;
    const access = tapeAccessOf(<u32>dev, port, <u32>load<u8>(c + CX_SESSION)); // the drive's access list, as for its own commands
    if (access == ACC_NONE) return unreachable(c, at + 8);
    tt.access = access;
    const fixed = (<u32>load<u8>(params) & 0x01) != 0;
    if (fixed ? length == 0 || length > MAX_RECORD_BYTES : length != 0) { paramError(c, at + 29, -1); return false; }
    tt.kind = TK_STREAM;
    tt.device = <u32>dev;
    tt.blockBytes = fixed ? length : 0;
  } else {
    if (memory.compare(naa, CONFIG_ADDR + CFG_DEVICE_ID, 14) != 0) return unreachable(c, at + 8);
    const v = getBe16(naa + 14) - 1;
    if (v >= MAX_VOLUMES || !volumeInUse(v) || volumeFenced(v) || !visible(port, v) || !reservationAdmits(c, v, false)) return unreachable(c, at + 8);
    tt.readOnlyReserved = reservationAdmits(c, v, true) ? 0 : 1;
    const access = accessOf(v, port, <u32>load<u8>(c + CX_SESSION)); // LUN security (004): the initiator's own access list
    if (access == ACC_NONE) return unreachable(c, at + 8);
    tt.access = access;
    if (length != blockSize(v)) { paramError(c, at + 29, -1); return false; }
    tt.kind = TK_BLOCK;
    tt.device = v;
    tt.blockBytes = length;
  }
  tt.pad = pad;
  return true;
}

/** Is volume v mapped at some LUN of `port`? (Its access list is checked beside: comm/access.ts.) */
function visible(port: u32, v: u32): bool {
  for (let l: u32 = 1; l < MAX_LUNS; l++) if (<u32>load<u16>(lunMapEntry(port, l)) == v + 1) return true;
  return false;
}

function reservedByOther(dev: u32, c: usize): bool {
  if (!reservationLive(dev)) return false;
  const s = tapeState(dev);
  return <u32>load<u16>(s + TDS_RES_PORT) != <u32>load<u8>(c + CX_PORT) + 1 || <u32>load<u16>(s + TDS_RES_SESSION) != <u32>load<u8>(c + CX_SESSION);
}

/** Checks one segment descriptor at d (list offset `at`, `left` bytes to the list's end). Its length, or 0 after answering. */
function segment(c: usize, i: u32, d: usize, at: u32, left: u32): u32 {
  const type = <u32>load<u8>(d);
  const len: u32 = 4 + getBe16(d + 2);
  if (len > left) { paramError(c, at + 2, -1); return 0; }
  const want: u32 = type == SEG_BLOCK_TO_STREAM || type == SEG_STREAM_TO_BLOCK ? 24 : type == SEG_BLOCK_TO_BLOCK ? 28
    : type == SEG_INLINE_TO_STREAM ? 20 : type == SEG_WRITE_FILEMARKS || type == SEG_STREAM_TO_DISCARD_HOLD || type == SEG_PAIR_BACKUP ? 12
    : type == SEG_EMBEDDED_TO_STREAM ? 16 + ((getBe16(d + 14) + 3) & ~3) : 0;
  if (want == 0) { listError(c, 0x26, 0x09, at); return 0; } // UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE
  if (len != want) { paramError(c, at + 2, -1); return 0; }
  if (type == SEG_PAIR_BACKUP) return pairSegment(c, i, d, at) ? len : 0;
  if ((<u32>load<u8>(d + 1) & 0xFC) != 0 || (type != SEG_BLOCK_TO_BLOCK && (<u32>load<u8>(d + 1) & 0x02) != 0)) {
    paramError(c, at + 1, 7);
    return 0;
  }
  const o = op(i);
  const src: u32 = type <= SEG_BLOCK_TO_BLOCK || type == SEG_STREAM_TO_DISCARD_HOLD ? getBe16(d + 4) : 0xFFFF;
  const dst: u32 = type == SEG_STREAM_TO_DISCARD_HOLD ? 0xFFFF : getBe16(d + 6);
  // A CSCD index beyond the list names no copy target: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE.
  if (src != 0xFFFF && src >= o.targets) { unreachable(c, at + 4); return 0; }
  if (dst != 0xFFFF && dst >= o.targets) { unreachable(c, at + 6); return 0; }
  const srcKind = src == 0xFFFF ? 0xFF : target(i, src).kind;
  const dstKind = dst == 0xFFFF ? 0xFF : target(i, dst).kind;
  const wantSrc: u32 = type == SEG_BLOCK_TO_STREAM || type == SEG_BLOCK_TO_BLOCK ? TK_BLOCK : type == SEG_STREAM_TO_BLOCK || type == SEG_STREAM_TO_DISCARD_HOLD ? TK_STREAM : 0xFF;
  const wantDst: u32 = type == SEG_STREAM_TO_BLOCK || type == SEG_BLOCK_TO_BLOCK ? TK_BLOCK : type == SEG_STREAM_TO_DISCARD_HOLD ? 0xFF : TK_STREAM;
  if (srcKind != wantSrc) { listError(c, 0x26, 0x0C, at + 4); return 0; } // INVALID OPERATION FOR COPY SOURCE OR DESTINATION
  if (dstKind != wantDst) { listError(c, 0x26, 0x0C, at + 6); return 0; }
  // A persistent reservation of another initiator that admits reads only (Write Exclusive): the copy
  // manager acts for this initiator, so it may read the unit but not write it.
  if (dst != 0xFFFF && target(i, dst).readOnlyReserved != 0) { unreachable(c, at + 6); return 0; }
  if (dst != 0xFFFF && target(i, dst).access == ACC_RO) { // read-only for this initiator: never written through a copy (volume or drive)
    fail(c, 0x07, 0x27, 0x00);
    ctxField(c, false, at + 6, -1);
    return 0;
  }
  if (type == SEG_BLOCK_TO_BLOCK) return blockToBlock(c, i, d, at, src, dst) ? len : 0;
  if (type == SEG_WRITE_FILEMARKS) {
    if (<u32>load<u8>(d + 8) != 0) { paramError(c, at + 8, 7); return 0; } // WSMK, IMMED: not here
    return len;
  }
  const streamLength = (<u32>load<u8>(d + 9) << 16) | getBe16(d + 10);
  const stream = target(i, type == SEG_STREAM_TO_BLOCK || type == SEG_STREAM_TO_DISCARD_HOLD ? src : dst);
  let bytes: u64 = 0;
  if (type == SEG_BLOCK_TO_STREAM || type == SEG_STREAM_TO_BLOCK) {
    const blk = target(i, type == SEG_BLOCK_TO_STREAM ? src : dst);
    const blocks = <u64>getBe16(d + 14);
    const lba = getBe64(d + 16);
    if (lba > capacityBlocks(blk.device) || blocks > capacityBlocks(blk.device) - lba) { outOfRange(c, at + 16); return 0; }
    bytes = blocks * <u64>blk.blockBytes;
  } else if (type == SEG_INLINE_TO_STREAM) {
    const offset = <u64>getBe32(d + 12);
    bytes = <u64>getBe32(d + 16);
    if (offset % 4 != 0) { paramError(c, at + 12, -1); return 0; }
    if (offset + bytes > <u64>o.inlineBytes) { listError(c, 0x26, 0x0B, at + 16); return 0; }
  } else if (type == SEG_EMBEDDED_TO_STREAM) {
    bytes = <u64>getBe16(d + 14);
  } else {
    bytes = <u64>streamLength * <u64>(stream.blockBytes == 0 ? 1 : stream.blockBytes);
    if (bytes > <u64>HELD_BYTES) { listError(c, 0x26, 0x0D, at + 9); return 0; }
  }
  const streamBytes = <u64>streamLength * <u64>(stream.blockBytes == 0 ? 1 : stream.blockBytes);
  if (streamBytes != bytes) { listError(c, 0x26, 0x0A, at + 9); return 0; } // UNEXPECTED INEXACT SEGMENT
  if (stream.blockBytes == 0 && bytes > <u64>MAX_RECORD_BYTES) { listError(c, 0x26, 0x0D, at + 9); return 0; } // one record: at most 256 KiB
  return len;
}

function blockToBlock(c: usize, i: u32, d: usize, at: u32, src: u32, dst: u32): bool {
  const s = target(i, src);
  const t = target(i, dst);
  const dc = (<u32>load<u8>(d + 1) & 0x02) != 0;
  const blocks = <u64>getBe16(d + 10);
  const bytes = blocks * <u64>(dc ? t.blockBytes : s.blockBytes);
  if (bytes % <u64>s.blockBytes != 0 || bytes % <u64>t.blockBytes != 0) { listError(c, 0x26, 0x0A, at + 10); return false; }
  const sl = getBe64(d + 12);
  const tl = getBe64(d + 20);
  const sb = bytes / <u64>s.blockBytes;
  const tb = bytes / <u64>t.blockBytes;
  if (sl > capacityBlocks(s.device) || sb > capacityBlocks(s.device) - sl) { outOfRange(c, at + 12); return false; }
  if (tl > capacityBlocks(t.device) || tb > capacityBlocks(t.device) - tl) { outOfRange(c, at + 20); return false; }
  return true;
}

/**
 * Vendor segment C0h (docs/scsi.md, "EXTENDED COPY"): bytes 4-5 the CSCD index of a block device in
 * a pair; byte 6 bit 0 SPLIT (split the pair before the next segment: 001's fourth embodiment),
 * bit 1 IMMED (status once the split is in NV); byte 7 the policy for reading the pair's
 * split-pending target (PP_*: 0 merge, 1 priority copy of the range, 2 wait for the whole split).
 */
function pairSegment(c: usize, i: u32, d: usize, at: u32): bool {
  const o = op(i);
  const t = getBe16(d + 4);
  if (t >= o.targets || target(i, t).kind != TK_BLOCK) { paramError(c, at + 4, -1); return false; }
  const p = pairOfVolume(target(i, t).device);
  if (p < 0) { listError(c, 0x85, 0x00, at + 4); return false; } // the volume is in no pair
  const b6 = <u32>load<u8>(d + 6);
  if ((b6 & 0xFC) != 0 || (<u32>load<u8>(d + 1)) != 0) { paramError(c, at + 6, 7); return false; }
  if (<u32>load<u8>(d + 7) > PP_WAIT) { paramError(c, at + 7, -1); return false; }
  if (getBe32(d + 8) != 0) { paramError(c, at + 8, -1); return false; }
  if ((b6 & 1) != 0) {
    const st = <u32>rec(<u32>p).state;
    if (st != PS_DUPLEX && st != PS_DUPLEX_PENDING) { listError(c, 0x85, 0x02, at + 6); return false; } // no pair to split
  }
  if ((b6 & 2) != 0) o.flags |= XF_IMMED;
  o.pair = p; // from its publication the pair's target is read-only and its resync waits (table.ts pairBackedUp)
  return true;
}

// ---- RECEIVE COPY RESULTS ---------------------------------------------------------------------

export function receiveCopyResults(c: usize): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  const alloc = getBe32(p + 10);
  if (sa == 0x03) { operatingParameters(c, alloc); return; }
  if (sa != 0x00 && sa != 0x01 && sa != 0x04) { invalidField(c, 1, 4); return; }
  const i = opOfList(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION), nexusGeneration(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION)), <u32>load<u8>(p + 2));
  if (i < 0) {
    if (listArriving(c)) { retryLater(c); return; }
    invalidField(c, 2, -1); // no copy of this nexus holds that list identifier
    return;
  }
  const o = op(<u32>i);
  if (sa == 0x00) copyStatus(c, o, alloc);
  else if (sa == 0x01) receiveData(c, <u32>i, alloc);
  else failedSegmentDetails(c, <u32>i, alloc);
}

/**
 * Is an EXTENDED COPY of c's I_T nexus still receiving its parameter list? Its list identifier is
 * in the list, so a RECEIVE COPY RESULTS that overtook the data-out (sent right behind its command,
 * while the list waits for XFER_RDY or R2T) waits for it rather than deny a list sent before it;
 * the copy's data-out timeout bounds the wait. (A closed session's commands are off the active list,
 * so port and session name the nexus here.)
 */
function listArriving(c: usize): bool {
  for (let x = activeFirst(); x != 0; x = activeNext(x)) {
    const st = <u32>load<u8>(x + CX_STATE);
    if (<u32>load<u8>(x + CX_OPCODE) == OP_EXTENDED_COPY && load<u32>(x + CX_ARG) == 0
      && (st == ST_DISPATCH || st == ST_WRITE_BUFFER || st == ST_PARAM_DATA)
      && load<u8>(x + CX_PORT) == load<u8>(c + CX_PORT) && load<u8>(x + CX_SESSION) == load<u8>(c + CX_SESSION)) return true;
  }
  return false;
}

/** 00h: 12 bytes: status, segments processed, transfer count (in KiB: units 01h). */
function copyStatus(c: usize, o: CopyOp, alloc: u32): void {
  const d = dataInBuffer(c, 12);
  if (d == 0) return;
  putBe32(d, 8);
  const done = o.state == XS_DONE;
  store<u8>(d + 4, <u8>(done ? o.status : CMS_IN_PROGRESS));
  putBe16(d + 5, o.segment);
  store<u8>(d + 7, 0x01); // kibibytes
  putBe32(d + 8, <u32>min<u64>(o.transferred >> 10, 0xFFFFFFFF));
  sendBuffer(c, min<u32>(12, alloc));
  // Status of an ended copy is given once; a failed one keeps its details for 04h.
  if (done && o.status == CMS_GOOD && (o.flags & XF_DETACHED) != 0 && o.heldBytes == 0) o.state = XS_FREE;
}

/** 01h: the data held by segments 0Fh (the catalogue a backup application reads back). */
function receiveData(c: usize, i: u32, alloc: u32): void {
  const o = op(i);
  const n = o.state == XS_DONE ? o.heldBytes : 0;
  const d = dataInBuffer(c, 4 + HELD_BYTES);
  if (d == 0) return;
  putBe32(d, n);
  memory.copy(d + 4, opAt(i) + OP_HELD, n);
  sendBuffer(c, min<u32>(4 + n, alloc));
  if (o.state == XS_DONE && (o.flags & XF_DETACHED) != 0) { o.heldBytes = 0; if (o.status == CMS_GOOD) o.state = XS_FREE; }
}

/**
 * 04h: a copy target's CHECK CONDITION, its status and sense; else (the copy manager ended the copy
 * itself: a reset, task management, a bound, a short record) the copy's own CHECK CONDITION and
 * sense, the failed segment in COMMAND-SPECIFIC INFORMATION, as its EXTENDED COPY gave (or, for a
 * background copy, would have). Nothing while the copy runs.
 */
function failedSegmentDetails(c: usize, i: u32, alloc: u32): void {
  const o = op(i);
  const d = dataInBuffer(c, 60 + 32);
  if (d == 0) return;
  memory.fill(d, 0, 60);
  if (o.state != XS_DONE || o.status == CMS_GOOD) { putBe32(d, 0); sendBuffer(c, min<u32>(4, alloc)); return; }
  const own = o.targetSenseLength == 0;
  const senseBytes: u32 = own ? 18 : o.targetSenseLength;
  putBe32(d, 56 + senseBytes);
  store<u8>(d + 56, <u8>(own ? 0x02 : o.targetStatus));
  putBe16(d + 58, senseBytes);
  if (own) {
    senseFixed(d + 60, o.senseKey, o.asc, o.ascq, 0, false, 0);
    putBe32(d + 68, o.failedSegment);
  } else memory.copy(d + 60, opAt(i) + OP_TARGET_SENSE, senseBytes);
  sendBuffer(c, min<u32>(60 + senseBytes, alloc));
  if ((o.flags & XF_DETACHED) != 0) o.state = XS_FREE; // the details are given once
}

/** 03h: what this copy manager can do (SPC-3 7.18.4). */
function operatingParameters(c: usize, alloc: u32): void {
  const n = IMPLEMENTED_COUNT;
  const total = 44 + n;
  const d = dataInBuffer(c, total);
  if (d == 0) return;
  memory.fill(d, 0, total);
  putBe32(d, total - 4);
  putBe16(d + 8, MAX_TARGETS);
  putBe16(d + 10, MAX_SEGMENTS);
  putBe32(d + 12, MAX_TARGETS * 32 + MAX_SEGMENT_BYTES);
  putBe32(d + 16, 32 << 20); // a segment moves at most 65535 blocks: 32 MiB of 512-byte blocks
  putBe32(d + 20, MAX_INLINE_BYTES);
  putBe32(d + 24, HELD_BYTES);
  putBe32(d + 28, MAX_RECORD_BYTES); // the largest stream record
  putBe16(d + 34, MAX_COPIES);
  store<u8>(d + 36, <u8>MAX_COPIES);
  store<u8>(d + 37, 9); // data segments in 512-byte units
  store<u8>(d + 38, 2); // inline data in 4-byte units
  store<u8>(d + 39, 0);
  store<u8>(d + 43, <u8>n);
  store<u64>(d + 44, IMPLEMENTED_LO);
  store<u8>(d + 52, <u8>IMPLEMENTED_HI);
  sendBuffer(c, min<u32>(total, alloc));
}
