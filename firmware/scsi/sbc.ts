// The block commands of SBC-4 that move or check volume data: READ and WRITE (6), (10), (12), (16),
// WRITE AND VERIFY, VERIFY, PRE-FETCH, WRITE SAME and COMPARE AND WRITE. Each decodes and checks
// its CDB here, then runs on the sequencer's paths: a read that sends, compares or only stages
// (sequencer.startRead, startInternalRead), a write from data-out or from the command's own buffer
// (startWrite, startWriteFromBuffer). docs/scsi.md says what each does and why.
import {
  CX_EXPECTED, CX_PRODUCED, CX_ARG, CX_FLAGS, CX_LBA, CX_BLOCKS, CX_LENGTH, CX_ID, CX_NV_PENDING, CX_CURSOR, CX_STATE,
  CX_BUF_FIRST, CX_BUF_COUNT, CX_VOLUME, CXF_PARAM, CXF_FUA, ST_NV_WAIT, MAX_WINDOW_BYTES, ctxBuffer, ctxBufferAddr, ctxBufferBytes,
  bufFree,
} from "../ctx";
import {
  fail, good, startRead, startWrite, startWriteFromBuffer, startInternalRead, startDataOut, parameterList,
  nvRefuse, retryLater, miscompare, firstDifference, finishStatus, pairCopyWait, spaceAllocationFailed,
} from "../sequencer";
import { thinEnsureRange } from "../thin";
import { writeSameUnmap } from "./thin";
import { nvDegraded, nvRoom, nvId, NVK_CONTEXT } from "../nv";
import { cacheLookup, sectorsValid, slotFlags, slotData, writeSectors, cacheCount, F_STAGING, WRITE_NV_ENTRIES,
  CS_WRITE_HITS, volumeFenced } from "../cache";
import { volumeReady, capacityBlocks, blockSize, volumeThin } from "../volume";
import { SLOT_BYTES } from "../abi";
import { gNow } from "../iop";
import { getBe16, getBe32, getBe64 } from "../util";
import { cdb, invalidField, notReady, MAX_TRANSFER_BYTES } from "./dispatch";
import { writeThrough } from "./mode";
import { modeFlags, setModeFlags, STATE_STOPPED } from "./pr";
import { pairWriteAllowed, pairBeforeWrite, PW_WAIT, PW_REFUSE, PW_PERSISTED } from "../pair/io";
import { remoteWriteAllowed } from "../remote/pair";
import { remoteWindow } from "../remote/mirror";
import { remoteBeforeWrite } from "../remote/async";

/** The most blocks one COMPARE AND WRITE may name: 64 KiB of them (VPD B0h says so), so the compare and the write fit one step. */
export function maxCompareBlocks(bs: u32): u32 { return min<u32>(255, 65536 / bs); }
/** The most blocks one WRITE SAME may name (VPD B0h MAXIMUM WRITE SAME LENGTH): 32 MiB, as a WRITE. */
export function maxWriteSameBlocks(bs: u32): u32 { return MAX_TRANSFER_BYTES / bs; }
/** PRE-FETCH stages at most this much of a range (the rest is left to the reads): a quarter of a small cache. */
const PREFETCH_MAX_BYTES: u32 = 4 << 20;
export function prefetchMaxBlocks(bs: u32): u32 { return PREFETCH_MAX_BYTES / bs; }
/** How often COMPARE AND WRITE stages its blocks again when one is evicted before the compare; then BUSY. */
const COMPARE_ATTEMPTS: u32 = 16;

export const OP_READ6: u32 = 0x08;
export const OP_WRITE6: u32 = 0x0A;
export const OP_PREFETCH10: u32 = 0x34;
export const OP_WRITE_VERIFY10: u32 = 0x2E;
export const OP_VERIFY10: u32 = 0x2F;
export const OP_WRITE_SAME10: u32 = 0x41;
export const OP_COMPARE_AND_WRITE: u32 = 0x89;
export const OP_ORWRITE: u32 = 0x8B;
export const OP_WRITE_VERIFY16: u32 = 0x8E;
export const OP_VERIFY16: u32 = 0x8F;
export const OP_PREFETCH16: u32 = 0x90;
export const OP_WRITE_SAME16: u32 = 0x93;
export const OP_READ12: u32 = 0xA8;
export const OP_WRITE12: u32 = 0xAA;
export const OP_WRITE_VERIFY12: u32 = 0xAE;
export const OP_VERIFY12: u32 = 0xAF;

// ---- CDB fields by CDB length (the opcode's group) ------------------------------------------------

/** The LOGICAL BLOCK ADDRESS field: 21 bits in a 6-byte CDB, 4 bytes at byte 2 in 10 and 12, 8 in 16. */
export function cdbLba(p: usize, op: u32): u64 {
  const group = op >> 5;
  if (group == 0) return <u64>(((<u32>load<u8>(p + 1) & 0x1F) << 16) | getBe16(p + 2));
  if (group == 4) return getBe64(p + 2);
  return <u64>getBe32(p + 2);
}

/** Where the length field (TRANSFER LENGTH, NUMBER OF LOGICAL BLOCKS, ...) is. */
export function blocksAt(op: u32): u32 {
  if (op == OP_COMPARE_AND_WRITE) return 13;
  const group = op >> 5;
  return group == 0 ? 4 : group == 4 ? 10 : group == 5 ? 6 : 7;
}

export function cdbBlocks(p: usize, op: u32): u32 {
  const at = blocksAt(op);
  if (op == OP_COMPARE_AND_WRITE || op >> 5 == 0) return <u32>load<u8>(p + at);
  if (at == 7) return getBe16(p + at);
  return getBe32(p + at);
}

/** LBA + blocks within the volume? Else LOGICAL BLOCK ADDRESS OUT OF RANGE, and false. */
export function inRange(c: usize, v: u32, lba: u64, blocks: u64): bool {
  const capacity = capacityBlocks(v);
  if (lba <= capacity && blocks <= capacity - lba) return true;
  fail(c, 0x05, 0x21, 0x00);
  return false;
}

/** RDPROTECT, WRPROTECT, VRPROTECT (byte 1, bits 7-5): the volumes keep no protection information. */
function protectSet(c: usize, p: usize, op: u32): bool {
  if (op >> 5 == 0 || (load<u8>(p + 1) & 0xE0) == 0) return false;
  invalidField(c, 1, 7);
  return true;
}

/**
 * Ready, for a change the NV file can keep, and writable in its pair's state (a pair's target being
 * copied to, a source in reverse resync, a remote pair's secondary that has not failed over: DATA
 * PROTECT, WRITE PROTECTED)? Else the command ends here.
 */
function canWrite(c: usize, v: u32): bool {
  if (!volumeReady(v)) { notReady(c, v); return false; }
  if (nvDegraded()) { nvRefuse(c); return false; } // the NV file could not keep it
  if (!pairWriteAllowed(v) || !remoteWriteAllowed(v)) { fail(c, 0x07, 0x27, 0x00); return false; }
  return true;
}

// ---- READ, WRITE, WRITE AND VERIFY ------------------------------------------------------------

/**
 * READ and WRITE of every length, and WRITE AND VERIFY (`verify`): a write that is acknowledged only
 * once its blocks are on the medium (as with FUA), so the verification is the medium's own
 * completion status; with BYTCHK=1 the data compared is the data just written from the same buffer.
 */
export function readWrite(c: usize, v: u32, op: u32, write: bool, verify: bool): void {
  const p = cdb(c);
  if (protectSet(c, p, op)) return;
  const flags = op >> 5 == 0 ? 0 : <u32>load<u8>(p + 1);
  if (verify && (flags & 0x06) > 0x02) { invalidField(c, 1, 2); return; } // BYTCHK 10b, 11b: reserved here
  const lba = cdbLba(p, op);
  let blocks = cdbBlocks(p, op);
  if (op >> 5 == 0 && blocks == 0) blocks = 256; // READ(6), WRITE(6): 0 means 256
  const bs = blockSize(v);
  if (<u64>blocks * <u64>bs > <u64>MAX_TRANSFER_BYTES) { invalidField(c, blocksAt(op), -1); return; }
  if (!inRange(c, v, lba, <u64>blocks)) return;
  if (!volumeReady(v)) { notReady(c, v); return; }
  if (!write) { startRead(c, lba, blocks); return; }
  const fua = verify || (flags & 0x08) != 0 || writeThrough(v);
  // Fewer bytes expected than the CDB asks for (FCP-4 9.4.2, RFC 7143 11.4.5.2): the write is cut
  // to the whole blocks expected, GOOD with the overflow as residual; a cut within a block
  // cannot be written: INVALID FIELD IN COMMAND INFORMATION UNIT, nothing moves.
  const expected = load<u32>(c + CX_EXPECTED);
  const wanted = blocks * bs;
  store<u32>(c + CX_PRODUCED, wanted); // also when refused: the residual says what the CDB asked for
  if (expected < wanted && expected % bs != 0) { fail(c, 0x05, 0x0E, 0x03); return; }
  if (!canWrite(c, v)) return;
  startWrite(c, lba, expected < wanted ? expected / bs : blocks, fua);
  store<u32>(c + CX_PRODUCED, wanted); // startWrite set it to what moves
}

// ---- VERIFY -------------------------------------------------------------------------------------

/**
 * VERIFY (10), (12), (16). BYTCHK 00b: the blocks are read (staged from the medium when not in the
 * cache) and any error reported; 01b: compared with the data-out; 11b: each compared with the one
 * block of data-out. A difference is MISCOMPARE, 1Dh/00h, INFORMATION = its offset in the data-out.
 */
export function verify(c: usize, v: u32, op: u32): void {
  const p = cdb(c);
  const bs = blockSize(v);
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) != 0) { verifyCompare(c, v, bs); return; }
  if (protectSet(c, p, op)) return;
  const bytchk = (<u32>load<u8>(p + 1) >> 1) & 3;
  if (bytchk == 2) { invalidField(c, 1, 2); return; }
  const lba = cdbLba(p, op);
  const blocks = cdbBlocks(p, op);
  if (<u64>blocks * <u64>bs > <u64>MAX_TRANSFER_BYTES) { invalidField(c, blocksAt(op), -1); return; }
  if (!inRange(c, v, lba, <u64>blocks)) return;
  if (!volumeReady(v)) { notReady(c, v); return; }
  store<u64>(c + CX_LBA, lba);
  if (bytchk == 0) { startInternalRead(c, lba, blocks, false, false); return; }
  const bytes = bytchk == 3 ? bs : blocks * bs;
  store<u32>(c + CX_PRODUCED, bytes);
  // The data-out is compared from buffer memory in one piece: at most a window of it.
  if (blocks * bs > MAX_WINDOW_BYTES && bytchk == 1) { invalidField(c, blocksAt(op), -1); return; }
  if (blocks == 0) { good(c); return; }
  if (load<u32>(c + CX_EXPECTED) < bytes) { fail(c, 0x05, 0x0E, 0x03); return; } // the data-out cannot hold it
  store<u32>(c + CX_ARG, bytchk == 3 ? bs : 0);
  store<u32>(c + CX_BLOCKS, blocks); // CX_BLOCKS: kept for the second step
  startDataOut(c, bytes);
}

function verifyCompare(c: usize, v: u32, bs: u32): void {
  const list = parameterList(c);
  if (list == 0) return;
  const blocks = load<u32>(c + CX_BLOCKS);
  const one = load<u32>(c + CX_ARG) != 0;
  if (!listIntoBuffer(c, list, one ? bs : blocks * bs, blocks * bs)) return;
  if (one) repeatBlock(c, bs, blocks * bs); // BYTCHK 11b: the one block, once per block compared
  startInternalRead(c, load<u64>(c + CX_LBA), blocks, true, false);
}

/**
 * Puts the parameter list's first `copy` bytes at the start of buffer memory of at least `need`
 * bytes (a queue port leaves the list in the initiator's data area; WRITE SAME needs room to
 * repeat its block). False when buffer memory is short: the handler runs again.
 */
export function listIntoBuffer(c: usize, list: usize, copy: u32, need: u32): bool {
  const first = load<u16>(c + CX_BUF_FIRST);
  const count = load<u16>(c + CX_BUF_COUNT);
  if (first != 0 && list == ctxBufferAddr(c) && ctxBufferBytes(c) >= need) return true;
  store<u16>(c + CX_BUF_FIRST, 0);
  const got = ctxBuffer(c, need, false);
  if (got) memory.copy(ctxBufferAddr(c), list, copy);
  else { store<u16>(c + CX_BUF_FIRST, first); store<u16>(c + CX_BUF_COUNT, count); retryLater(c); }
  if (got) bufFree(first, count);
  return got;
}

/** Repeats the buffer's first `bs` bytes through `bytes` (at most the buffer). */
function repeatBlock(c: usize, bs: u32, bytes: u32): void {
  const b = ctxBufferAddr(c);
  const n = min<u32>(bytes, ctxBufferBytes(c));
  for (let at = bs; at + bs <= n; at += bs) memory.copy(b + at, b, bs);
}

// ---- PRE-FETCH ----------------------------------------------------------------------------------

/**
 * PRE-FETCH (10), (16): stages the range into the cache (at most PREFETCH_MAX_BYTES of it), GOOD
 * when it is in; with IMMED, GOOD at once and nothing staged (the hint is dropped). Always GOOD, not CONDITION MET: libiscsi's suite,
 * LIO and tgtd read PRE-FETCH that way.
 */
export function prefetch(c: usize, v: u32, op: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFD) != 0) { invalidField(c, 1, -1); return; } // only IMMED (bit 1)
  const lba = cdbLba(p, op);
  const blocks = cdbBlocks(p, op);
  if (!inRange(c, v, lba, <u64>blocks)) return;
  if (!volumeReady(v)) { notReady(c, v); return; }
  const end = blocks == 0 ? capacityBlocks(v) : lba + <u64>blocks; // 0: to the end of the volume
  const n = <u32>min<u64>(end - lba, <u64>(PREFETCH_MAX_BYTES / blockSize(v)));
  if ((load<u8>(p + 1) & 0x02) != 0) { good(c); return; } // IMMED: the hint is dropped, the reads that follow stage
  startInternalRead(c, lba, n, false, false);
}

// ---- WRITE SAME ---------------------------------------------------------------------------------

/**
 * WRITE SAME (10), (16): one block of data-out (or zeros, NDOB) written to every block of the
 * range, from the command's buffer. UNMAP asks for the blocks to be deallocated where the volume is
 * thin (thin.ts); ANCHOR, PBDATA, LBDATA are not supported. NUMBER OF LOGICAL BLOCKS 0 means to the
 * end of the volume (VPD B0h WSNZ=0); more than MAXIMUM WRITE SAME LENGTH is refused.
 */
export function writeSame(c: usize, v: u32, op: u32): void {
  const p = cdb(c);
  const bs = blockSize(v);
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) != 0) { writeSamePattern(c, bs); return; }
  if (protectSet(c, p, op)) return;
  const flags = <u32>load<u8>(p + 1);
  if ((flags & 0x16) != 0) { invalidField(c, 1, (flags & 0x10) != 0 ? 4 : (flags & 0x04) != 0 ? 2 : 1); return; }
  const ndob = op == OP_WRITE_SAME16 && (flags & 0x01) != 0;
  const lba = cdbLba(p, op);
  let blocks = cdbBlocks(p, op);
  if (!inRange(c, v, lba, <u64>blocks)) return;
  // 0 blocks: to the end of the volume (VPD B0h WSNZ=0), within MAXIMUM WRITE SAME LENGTH like any.
  const count: u64 = blocks == 0 ? capacityBlocks(v) - lba : <u64>blocks;
  if (count == 0 || count > <u64>maxWriteSameBlocks(bs)) { invalidField(c, blocksAt(op), -1); return; }
  blocks = <u32>count;
  if (!canWrite(c, v)) return;
  store<u64>(c + CX_LBA, lba);
  store<u32>(c + CX_BLOCKS, blocks);
  // UNMAP: a thin volume deallocates the range (its Data-Out block, taken in first, is not
  // written: the blocks read zeros); a thick one is fully provisioned (VPD B2h LBPWS 0) and refuses it.
  if ((flags & 0x08) != 0 && !volumeThin(v)) { invalidField(c, 1, 3); return; }
  if ((flags & 0x08) != 0 && ndob && writeSameUnmap(c, v, lba, blocks)) return; // else zeros are written (thin.ts)
  const dataOut: u32 = ndob ? 0 : bs;
  store<u32>(c + CX_PRODUCED, dataOut);
  if (load<u32>(c + CX_EXPECTED) < dataOut) { fail(c, 0x05, 0x0E, 0x03); return; }
  if (ndob) {
    if (!ctxBuffer(c, min<u32>(blocks * bs, MAX_WINDOW_BYTES), true)) { retryLater(c); return; }
    startWriteFromBuffer(c, lba, blocks, writeThrough(v));
    store<u32>(c + CX_PRODUCED, 0);
    return;
  }
  startDataOut(c, bs);
}

function writeSamePattern(c: usize, bs: u32): void {
  const list = parameterList(c);
  if (list == 0) return;
  const blocks = load<u32>(c + CX_BLOCKS);
  const v = <u32>load<u16>(c + CX_VOLUME);
  if ((load<u8>(cdb(c) + 1) & 0x08) != 0 && writeSameUnmap(c, v, load<u64>(c + CX_LBA), blocks)) return; // UNMAP: deallocated
  const bytes = min<u32>(blocks * bs, MAX_WINDOW_BYTES);
  if (!listIntoBuffer(c, list, bs, bytes)) return;
  repeatBlock(c, bs, ctxBufferBytes(c));
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_PARAM);
  startWriteFromBuffer(c, load<u64>(c + CX_LBA), blocks, writeThrough(load<u16>(c + CX_VOLUME)));
  store<u32>(c + CX_PRODUCED, bs);
}

// ---- COMPARE AND WRITE ------------------------------------------------------------------------

// CX_ARG phases of COMPARE AND WRITE.
const CAW_DATA: u32 = 0; // receiving the 2 x N blocks of data-out
const CAW_ATTEMPT: u32 = 1; // and up: the blocks were staged; the compare-and-write step, attempt - 1

/**
 * COMPARE AND WRITE (`or` false): the data-out holds N blocks to compare and N to write. ORWRITE
 * (`or` true): N blocks ORed into the volume's. The blocks are staged, then compared (or ORed) and
 * written in one step of the channel IOP, so no other command writes between the read and the
 * write (the harness steps an array's IOPs one after another; a parallel driver would need a range
 * lock here); a block that
 * left the cache meanwhile is staged again (COMPARE_ATTEMPTS, then BUSY). A difference: MISCOMPARE,
 * 1Dh/00h, INFORMATION = its offset in the data-out; nothing is written.
 */
export function atomicWrite(c: usize, v: u32, or: bool): void {
  const bs = blockSize(v);
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) { atomicWriteBegin(c, v, bs, or); return; }
  const phase = load<u32>(c + CX_ARG);
  const lba = load<u64>(c + CX_LBA);
  const blocks = load<u32>(c + CX_BLOCKS);
  const dataOut = (or ? <u32>1 : 2) * blocks * bs;
  if (phase == CAW_DATA) {
    const list = parameterList(c);
    if (list == 0) return;
    if (!listIntoBuffer(c, list, dataOut, dataOut)) return;
  } else if (atomicStep(c, v, lba, blocks, bs, or)) {
    return;
  } else if (phase >= CAW_ATTEMPT + COMPARE_ATTEMPTS) {
    finishStatus(c, 0x08); // BUSY: the cache kept losing the blocks between the stage and the step
    return;
  }
  // Stage the blocks (again), then come back for the step.
  store<u32>(c + CX_ARG, phase == CAW_DATA ? CAW_ATTEMPT : phase + 1);
  startInternalRead(c, lba, blocks, false, true);
}

function atomicWriteBegin(c: usize, v: u32, bs: u32, or: bool): void {
  const p = cdb(c);
  const op = or ? OP_ORWRITE : OP_COMPARE_AND_WRITE;
  if (protectSet(c, p, op)) return;
  if (or && (load<u8>(p + 14) & 0x07) != 0) { invalidField(c, 14, 2); return; } // BMOP: no bitmap operations
  const lba = cdbLba(p, op);
  const blocks = cdbBlocks(p, op);
  const limit = or ? MAX_WINDOW_BYTES / bs : maxCompareBlocks(bs);
  if (blocks > limit) { invalidField(c, blocksAt(op), -1); return; }
  if (!inRange(c, v, lba, <u64>blocks)) return;
  const bytes = (or ? <u32>1 : 2) * blocks * bs;
  store<u32>(c + CX_PRODUCED, bytes);
  const expected = load<u32>(c + CX_EXPECTED);
  if (!or && expected != bytes) { invalidField(c, 13, -1); return; } // the data-out must be the 2 x N blocks
  if (or && expected < bytes) { fail(c, 0x05, 0x0E, 0x03); return; }
  if (blocks == 0) { good(c); return; }
  if (!canWrite(c, v)) return;
  const flags = load<u32>(c + CX_FLAGS);
  if ((<u32>load<u8>(p + 1) & 0x08) != 0 || writeThrough(v)) store<u32>(c + CX_FLAGS, flags | CXF_FUA);
  store<u64>(c + CX_LBA, lba);
  store<u32>(c + CX_BLOCKS, blocks);
  store<u32>(c + CX_ARG, CAW_DATA);
  startDataOut(c, bytes);
}

/**
 * The compare (or OR) and the write, in one step, or false when a block is not in the cache (or is
 * being staged) or the NV ring lacks room for every piece: then nothing was written.
 */
function atomicStep(c: usize, v: u32, lba: u64, blocks: u32, bs: u32, or: bool): bool {
  if (nvDegraded()) { nvRefuse(c); return true; }
  if (volumeFenced(v)) { fail(c, 0x0B, 0x3F, 0x00); return true; }
  const base = lba * <u64>bs;
  const bytes = blocks * bs;
  const buf = ctxBufferAddr(c);
  // Room to persist every piece with its pair bit (a piece per cache slot the range touches).
  const pieces = <u32>(((base + <u64>bytes - 1) >> 16) - (base >> 16)) + 1;
  if (!nvRoom(pieces * (WRITE_NV_ENTRIES + 2))) { store<u32>(c + CX_ARG, load<u32>(c + CX_ARG) - 1); return false; } // not the cache's doing: no attempt spent
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  // A pair's difference bits go to the NV ring before the data (pair/io.ts), before the compare: a
  // track whose old data a split is still copying (copy before write; a target's track not yet
  // copied, whose blocks the stage read from the source) holds the whole step back, nothing
  // compared or written, until the copy is done; then the blocks are staged again.
  for (let at: u32 = 0; at < bytes;) {
    const off = base + <u64>at;
    const intent = pairBeforeWrite(v, <u32>(off >> 16), id);
    if (intent == PW_WAIT) {
      if (!pairCopyWait(c)) return true; // waited too long: failed
      store<u32>(c + CX_ARG, load<u32>(c + CX_ARG) - 1); // staged again once the cache changes, no attempt spent
      return false;
    }
    if (intent == PW_REFUSE) { fail(c, 0x07, 0x27, 0x00); return true; }
    if (intent == PW_PERSISTED) store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + 1);
    if (remoteBeforeWrite(v, <u32>(off >> 16), id) > 0) store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + 1); // a remote primary's difference bit (remote/async.ts)
    at += min<u32>(bytes - at, SLOT_BYTES - <u32>(off & 0xFFFF));
  }
  // Every piece resident and whole.
  for (let at: u32 = 0; at < bytes;) {
    const off = base + <u64>at;
    const within = <u32>(off & 0xFFFF);
    const n = min<u32>(bytes - at, SLOT_BYTES - within);
    const slot = cacheLookup(v, <u32>(off >> 16));
    if (slot < 0 || (slotFlags(<u32>slot) & F_STAGING) != 0 || !sectorsValid(<u32>slot, within >> 9, n >> 9)) return false;
    at += n;
  }
  for (let at: u32 = 0; at < bytes;) {
    const off = base + <u64>at;
    const within = <u32>(off & 0xFFFF);
    const n = min<u32>(bytes - at, SLOT_BYTES - within);
    const data = slotData(<u32>cacheLookup(v, <u32>(off >> 16))) + within;
    if (or) orInto(buf + at, data, n);
    else {
      const d = firstDifference(data, buf + at, n);
      if (d >= 0) { miscompare(c, at + <u32>d); return true; }
    }
    at += n;
  }
  // Thin: each piece's chunk has (or now takes) a medium chunk, or nothing is written (thin.ts).
  if (!thinEnsureRange(v, base, bytes)) { spaceAllocationFailed(c); return true; }
  const src = or ? buf : buf + bytes;
  for (let at: u32 = 0; at < bytes;) {
    const off = base + <u64>at;
    const within = <u32>(off & 0xFFFF);
    const n = min<u32>(bytes - at, SLOT_BYTES - within);
    writeSectors(<u32>cacheLookup(v, <u32>(off >> 16)), within >> 9, n >> 9, src + at, gNow, id);
    cacheCount(CS_WRITE_HITS);
    store<u32>(c + CX_NV_PENDING, load<u32>(c + CX_NV_PENDING) + WRITE_NV_ENTRIES);
    at += n;
  }
  store<u32>(c + CX_LENGTH, bytes); // what FUA forces out
  store<u32>(c + CX_CURSOR, (or ? <u32>1 : 2) * bytes); // the data-out the initiator sent
  // A remote pair's primary: the written blocks go to its first hop before GOOD, as a WRITE's window
  // does (remote/mirror.ts; its end, commitNext, goes on to the NV wait).
  if (!remoteWindow(c, 0, bytes)) store<u8>(c + CX_STATE, <u8>ST_NV_WAIT);
  return true;
}

/** dst |= src over n bytes. */
function orInto(dst: usize, src: usize, n: u32): void {
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + i, load<u64>(dst + i) | load<u64>(src + i));
  for (; i < n; i++) store<u8>(dst + i, load<u8>(dst + i) | load<u8>(src + i));
}

// ---- START STOP UNIT ----------------------------------------------------------------------------

/**
 * START STOP UNIT (SBC-4 5.25): START=0 stops the volume: until a START=1 every command that
 * reaches its blocks (and TEST UNIT READY) is NOT READY, INITIALIZING COMMAND REQUIRED (04h/02h).
 * Nothing spins down: the media stay as they are, and the cache keeps destaging. POWER CONDITION
 * values other than START_VALID (0h) and ACTIVE (1h) are accepted and change nothing; LOEJ is
 * refused (the medium is not removable). Not kept over a restart.
 */
export function startStopUnit(c: usize, v: u32): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, -1); return; }
  if ((load<u8>(p + 3) & 0xF0) != 0) { invalidField(c, 3, -1); return; }
  const b = <u32>load<u8>(p + 4);
  if ((b & 0x0C) != 0) { invalidField(c, 4, (b & 0x08) != 0 ? 3 : 2); return; }
  if ((b & 0x02) != 0) { invalidField(c, 4, 1); return; } // LOEJ: nothing to load or eject
  const condition = b >> 4;
  if (condition != 0 && condition != 1 && condition != 2 && condition != 3 && condition != 7 && condition != 0xA && condition != 0xB) {
    invalidField(c, 4, 7);
    return;
  }
  if (condition == 0 || condition == 1) {
    const stop = condition == 0 && (b & 0x01) == 0;
    const f = modeFlags(v, false);
    setModeFlags(v, stop ? f | STATE_STOPPED : f & ~STATE_STOPPED, modeFlags(v, true));
  }
  good(c);
}

/** Stopped by START STOP UNIT? Then media access is NOT READY, INITIALIZING COMMAND REQUIRED. */
export function stoppedRefuses(c: usize, v: u32, op: u32): bool {
  if ((modeFlags(v, false) & STATE_STOPPED) == 0) return false;
  if (!mediaAccess(op)) return false;
  fail(c, 0x02, 0x04, 0x02);
  return true;
}

function mediaAccess(op: u32): bool {
  return op == 0x00 || op == 0x08 || op == 0x0A || op == 0x25 || op == 0x28 || op == 0x2A || op == 0x2E || op == 0x2F
    || op == 0x34 || op == 0x35 || op == 0x41 || op == 0x42 || op == 0x88 || op == 0x89 || op == 0x8A || op == 0x8B || op == 0x8E
    || op == 0x8F || op == 0x90 || op == 0x91 || op == 0x93 || op == 0x9E || op == 0xA8 || op == 0xAA || op == 0xAE
    || op == 0xAF;
}
