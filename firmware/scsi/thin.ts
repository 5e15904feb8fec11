// Logical block provisioning (SBC-4 4.7): what VPD B0h and B2h and READ CAPACITY (16) say of it,
// GET LBA STATUS, UNMAP, and WRITE SAME with UNMAP. A thick volume (linear, striped) is fully
// provisioned: every chunk is its from creation, UNMAP is not offered. A thin one (thinmap.ts,
// thin.ts) is thin provisioned with LBPRZ: a deallocated block reads zeros.
//
// Deallocation works on whole chunks (64 KiB, the OPTIMAL UNMAP GRANULARITY of VPD B0h): a chunk the
// range covers whole loses its cache slot (dirty data too: the initiator asked for it to go) and its
// thin map entry; the blocks of a chunk it covers in part are written with zeros, so that every
// block UNMAP names reads zeros after it, as LBPRZ promises. The medium chunks given back go to the
// media only once the cleared entries are in the NV file (a batch at a time): until then another
// volume could take one, write it, and a crash leave the old entry naming its bytes. UNMAP answers
// GOOD once everything it changed is in the NV file.
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "../util";
import {
  CX_ARG, CX_LBA, CX_BLOCKS, CX_CURSOR, CX_FLAGS, CX_ID, CX_EXPECTED, CX_DEADLINE_NS, CX_VOLUME, CXF_PARAM, CXF_DEALLOC,
  ctxBufferAddr, ctxField,
} from "../ctx";
import {
  fail, good, dataInBuffer, sendBuffer, startDataOut, parameterList, retryLater, nvRefuse, nvPending, waitPersisted,
  persistThenRedispatch, allocateFor,
} from "../sequencer";
import { capacityBlocks, blockSize, volumeThin, volumeReady, thinChunkRelease } from "../volume";
import { cacheLookup, slotPins, slotFlags, slotThinChunk, writeSectors, slotData, volumeFenced, F_STAGING, F_DESTAGING, WRITE_NV_ENTRIES } from "../cache";
import { thinEntry, thinSetEntry } from "../thinmap";
import { thinDropSlot } from "../thin";
import { nvDegraded, nvRoom, nvId, NVK_CONTEXT } from "../nv";
import { SLOT_BYTES } from "../abi";
import { gNow } from "../iop";
import { log, LOG_WARN } from "../hal";
import { remoteOfVolume, remoteWriteAllowed } from "../remote/pair";
import { cdb, invalidField, notReady } from "./dispatch";
import { listIntoBuffer } from "./sbc";

/** UNMAP block descriptors one command may carry (VPD B0h MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT). */
export const MAX_UNMAP_DESCRIPTORS: u32 = 256;
/**
 * Bytes one UNMAP may name in all (VPD B0h MAXIMUM UNMAP LBA COUNT, in blocks): 256 MiB, 4096
 * chunks, 4 batches of NV waits (libiscsi's Inquiry.BlockLimits holds a target to 1M blocks).
 */
const MAX_UNMAP_BYTES: u64 = 256 << 20;
/** Chunks given back per NV wait: the cleared entries' medium chunks, held in the command's buffer. */
const BATCH: u32 = 1024;
/** A chunk busy with other commands (a read sending it, a stage, a destage) is waited for this long, then ABORTED COMMAND. */
const BUSY_WAIT_NS: f64 = 60e9;

// The command's buffer while it deallocates: the ranges (16 bytes each, as UNMAP's descriptors), then the batch.
const BATCH_AT: u32 = MAX_UNMAP_DESCRIPTORS * 16;
const WORK_BYTES: u32 = BATCH_AT + BATCH * 4;
export const OP_UNMAP: u32 = 0x42;

// ---- What the device says of itself ------------------------------------------------------------------

/** VPD B0h bytes 20-35: UNMAP's limits and granularity for a thin volume; zero (none) for a thick one. */
export function provisioningLimits(d: usize, volume: u32): void {
  if (!volumeThin(volume)) return;
  const bs = blockSize(volume);
  putBe32(d + 20, <u32>(MAX_UNMAP_BYTES / <u64>bs)); // MAXIMUM UNMAP LBA COUNT
  putBe32(d + 24, MAX_UNMAP_DESCRIPTORS); // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  putBe32(d + 28, SLOT_BYTES / bs); // OPTIMAL UNMAP GRANULARITY: one chunk
  putBe32(d + 32, 0x80000000); // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
}

/**
 * Logical Block Provisioning (B2h). Thin: LBPU (UNMAP), LBPWS (WRITE SAME (16) with UNMAP), LBPWS10,
 * LBPRZ 001b (deallocated blocks read zeros), PROVISIONING TYPE 010b. Thick: fully provisioned, none.
 */
export function logicalBlockProvisioning(d: usize, volume: u32): u32 {
  store<u8>(d, 0x00);
  store<u8>(d + 1, 0xB2);
  putBe16(d + 2, 4);
  if (volumeThin(volume)) {
    store<u8>(d + 5, 0x80 | 0x40 | 0x20 | 0x04);
    store<u8>(d + 6, 0x02);
  }
  return 8;
}

/** READ CAPACITY (16) byte 14: LBPME and LBPRZ for a thin volume. */
export function capacityProvisioning(volume: u32): u32 { return volumeThin(volume) ? 0xC0 : 0x00; }

/** Does the volume's chunk hold (or is about to hold) data: mapped, or given a chunk for a dirty slot? */
function chunkMapped(v: u32, chunk: u32): bool {
  if (thinEntry(v, chunk) != 0) return true;
  const slot = cacheLookup(v, chunk);
  return slot >= 0 && slotThinChunk(<u32>slot) != 0;
}

/**
 * GET LBA STATUS (SBC-4 5.8): descriptors from the LBA asked for, each a run of blocks with one
 * provisioning status (0 mapped, 1 deallocated), as many as the allocation length reaches (at most
 * 64), the last one ending where the volume does. A thick volume is mapped to its end.
 */
export function getLbaStatus(c: usize, v: u32): void {
  const p = cdb(c);
  const lba = getBe64(p + 2);
  const alloc = getBe32(p + 10);
  const capacity = capacityBlocks(v);
  if (lba >= capacity) { fail(c, 0x05, 0x21, 0x00); return; }
  // The descriptors the allocation length reaches into, the last perhaps cut (SPC-5 4.2.5.6: the
  // transfer ends at the allocation length, not at the last whole descriptor); at least one.
  const room: u32 = alloc <= 8 ? 1 : min<u32>(64, (alloc - 8 + 15) / 16);
  const d = dataInBuffer(c, 8 + room * 16);
  if (d == 0) return;
  const perChunk = <u64>(SLOT_BYTES / blockSize(v));
  const thin = volumeThin(v);
  let at = lba;
  let n: u32 = 0;
  while (at < capacity && n < room) {
    const mapped = !thin || chunkMapped(v, <u32>(at / perChunk));
    let end = thin ? (at / perChunk + 1) * perChunk : capacity;
    while (thin && end < capacity && chunkMapped(v, <u32>(end / perChunk)) == mapped) end += perChunk;
    end = min<u64>(min<u64>(end, capacity), at + 0xFFFFFFFF);
    const r = d + 8 + n * 16;
    putBe64(r, at);
    putBe32(r + 8, <u32>(end - at));
    store<u8>(r + 12, mapped ? 0 : 1);
    store<u8>(r + 13, 0);
    putBe16(r + 14, 0);
    n++;
    at = end;
  }
  putBe32(d, 4 + n * 16); // parameter data length: the 4 reserved bytes after it and the descriptors
  putBe32(d + 4, 0);
  sendBuffer(c, min<u32>(8 + n * 16, alloc));
}

// ---- UNMAP ---------------------------------------------------------------------------------------------

/**
 * UNMAP (SBC-4 5.32): a thin volume's blocks named by the block descriptors are deallocated (they
 * read zeros). ANCHOR is not supported (ANC_SUP 0). A thick volume does not offer it.
 */
export function unmap(c: usize, v: u32): void {
  if (!volumeThin(v)) { fail(c, 0x05, 0x20, 0x00); return; } // fully provisioned: no UNMAP (LBPU 0)
  // A deallocation is not sent over a link: a remote pair's secondary is written only from its
  // primary (DATA PROTECT, WRITE PROTECTED, as a WRITE), and a primary's would leave the secondary's
  // bytes behind (VOLUME IS IN A REMOTE PAIR). WRITE SAME with UNMAP writes the zeros instead.
  if (!remoteWriteAllowed(v)) { fail(c, 0x07, 0x27, 0x00); return; }
  if (remoteOfVolume(v) >= 0) { fail(c, 0x05, 0x86, 0x11); return; }
  const p = cdb(c);
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) {
    if ((load<u8>(p + 1) & 0x01) != 0) { invalidField(c, 1, 0); return; } // ANCHOR
    const length = getBe16(p + 7);
    if (length == 0) { good(c); return; }
    if (length < 8) { fail(c, 0x05, 0x1A, 0x00); return; } // PARAMETER LIST LENGTH ERROR
    if (load<u32>(c + CX_EXPECTED) < length) { fail(c, 0x05, 0x0E, 0x03); return; }
    if (!volumeReady(v)) { notReady(c, v); return; }
    startDataOut(c, length);
    return;
  }
  const list = parameterList(c);
  if (list == 0) return;
  const length = getBe16(p + 7);
  const descriptors = min<u32>(getBe16(list + 2), length - 8) / 16;
  if (descriptors > MAX_UNMAP_DESCRIPTORS) { listError(c, 2); return; }
  const capacity = capacityBlocks(v);
  let total: u64 = 0;
  for (let i: u32 = 0; i < descriptors; i++) {
    const lba = getBe64(list + 8 + i * 16);
    const n = <u64>getBe32(list + 8 + i * 16 + 8);
    if (lba > capacity || n > capacity - lba) { fail(c, 0x05, 0x21, 0x00); return; }
    total += n;
  }
  if (total > MAX_UNMAP_BYTES / <u64>blockSize(v)) { listError(c, 2); return; } // beyond MAXIMUM UNMAP LBA COUNT
  if (total == 0) { good(c); return; }
  if (!listIntoBuffer(c, list + 8, descriptors * 16, WORK_BYTES)) return;
  deallocateStart(c, descriptors);
}

function listError(c: usize, at: u32): void {
  fail(c, 0x05, 0x26, 0x00);
  ctxField(c, false, at, -1);
}

/**
 * WRITE SAME with UNMAP on a thin volume: the range is deallocated as UNMAP would (SBC-4: a thin
 * provisioned logical unit should deallocate each LBA; the Data-Out block, if any, is not written:
 * with LBPRZ the blocks read zeros after it). False on a thick volume.
 */
export function writeSameUnmap(c: usize, v: u32, lba: u64, blocks: u32): bool {
  if (!volumeThin(v) || remoteOfVolume(v) >= 0) return false; // a remote pair's volume: its zeros are written, and sent
  if (!listIntoBuffer(c, 0, 0, WORK_BYTES)) return true; // no buffer memory yet: the handler runs again
  const range = ctxBufferAddr(c);
  putBe64(range, lba);
  putBe32(range + 8, blocks);
  deallocateStart(c, 1);
  return true;
}

// ---- The deallocation engine --------------------------------------------------------------------------

/** Starts deallocating the first `ranges` ranges of the command's buffer. */
function deallocateStart(c: usize, ranges: u32): void {
  store<u32>(c + CX_FLAGS, (load<u32>(c + CX_FLAGS) & ~CXF_PARAM) | CXF_DEALLOC);
  store<u32>(c + CX_ARG, ranges << 16); // ranges << 16 | A_* | the range it is at
  store<u32>(c + CX_CURSOR, 0); // chunks in the batch
  store<f64>(c + CX_DEADLINE_NS, 0);
  loadRange(c, 0);
  deallocateStep(c, <u32>load<u16>(c + CX_VOLUME));
}

// In CX_ARG while deallocating, beside the ranges (<< 16) and the range it is at (low bits).
const A_GIVE_BACK: u32 = 0x8000; // an NV wait for the batch's cleared entries: when it ends, the batch goes back
const A_FINISHED: u32 = 0x4000; // and then the command is done
const A_RANGE: u32 = 0x3FFF;

function loadRange(c: usize, i: u32): void {
  const r = ctxBufferAddr(c) + i * 16;
  store<u64>(c + CX_LBA, getBe64(r));
  store<u32>(c + CX_BLOCKS, getBe32(r + 8));
}

const PIECE_DONE: u32 = 0;
const PIECE_WAIT: u32 = 1; // busy, or no NV room or cache slot: the handler runs again
const PIECE_BATCH_FULL: u32 = 2;

/** Runs the engine until it waits, the batch is full (NV wait, then the chunks go back), or all is done. */
export function deallocateStep(c: usize, v: u32): void {
  if (nvDegraded()) { nvRefuse(c); return; }
  if (volumeFenced(v)) { fail(c, 0x0B, 0x3F, 0x00); return; } // deleted under it
  const arg = load<u32>(c + CX_ARG);
  if ((arg & A_GIVE_BACK) != 0) { // its NV wait ended: the entries are cleared in the file
    giveBackBatch(c);
    if ((arg & A_FINISHED) != 0) { store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_DEALLOC); good(c); return; }
    store<u32>(c + CX_ARG, arg & ~A_GIVE_BACK);
  }
  const ranges = load<u32>(c + CX_ARG) >> 16;
  const perChunk = <u64>(SLOT_BYTES / blockSize(v));
  const spb = blockSize(v) >> 9;
  for (;;) {
    let blocks = load<u32>(c + CX_BLOCKS);
    if (blocks == 0) {
      const next = (load<u32>(c + CX_ARG) & A_RANGE) + 1;
      if (next >= ranges) break;
      store<u32>(c + CX_ARG, (ranges << 16) | next);
      loadRange(c, next);
      continue;
    }
    const lba = load<u64>(c + CX_LBA);
    const chunk = <u32>(lba / perChunk);
    const first = <u32>(lba % perChunk);
    const count = <u32>min<u64>(<u64>blocks, perChunk - <u64>first);
    const r = deallocatePiece(c, v, chunk, first * spb, count * spb, count == <u32>perChunk);
    if (r == PIECE_BATCH_FULL) { store<u32>(c + CX_ARG, load<u32>(c + CX_ARG) | A_GIVE_BACK); persistThenRedispatch(c); return; }
    if (r == PIECE_WAIT) { busyWait(c, v, chunk); return; }
    store<f64>(c + CX_DEADLINE_NS, 0);
    store<u64>(c + CX_LBA, lba + <u64>count);
    store<u32>(c + CX_BLOCKS, blocks - count);
  }
  // All done: GOOD once every change is in the NV file, the last batch going back after it.
  if (load<u32>(c + CX_CURSOR) == 0) { store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~CXF_DEALLOC); waitPersisted(c); return; }
  store<u32>(c + CX_ARG, load<u32>(c + CX_ARG) | A_GIVE_BACK | A_FINISHED);
  persistThenRedispatch(c);
}

function busyWait(c: usize, v: u32, chunk: u32): void {
  const deadline = load<f64>(c + CX_DEADLINE_NS);
  if (deadline == 0) store<f64>(c + CX_DEADLINE_NS, gNow + BUSY_WAIT_NS);
  else if (gNow >= deadline) {
    log(LOG_WARN, "thin: a chunk to deallocate stayed busy (a read, stage or destage of it) too long (volume, chunk)", v, chunk);
    fail(c, 0x0B, 0x2E, 0x02); // COMMAND TIMEOUT DURING PROCESSING
    return;
  }
  retryLater(c);
}

/**
 * One chunk's part of a range: sectors [first, first + count) of volume v's chunk, `whole` when
 * that is all of it (then the chunk is deallocated; else its sectors are written with zeros).
 */
function deallocatePiece(c: usize, v: u32, chunk: u32, first: u32, count: u32, whole: bool): u32 {
  if (!nvRoom(WRITE_NV_ENTRIES + 2)) return PIECE_WAIT;
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  let slot = cacheLookup(v, chunk);
  if (whole) {
    const t = thinEntry(v, chunk);
    if (t != 0 && load<u32>(c + CX_CURSOR) >= BATCH) return PIECE_BATCH_FULL;
    if (slot >= 0) {
      if (slotPins(<u32>slot) != 0 || (slotFlags(<u32>slot) & (F_STAGING | F_DESTAGING)) != 0) return PIECE_WAIT;
      if (thinDropSlot(<u32>slot, id)) nvPending(c, 1);
    }
    if (t == 0) return PIECE_DONE;
    thinSetEntry(v, chunk, 0, id);
    nvPending(c, 1);
    const n = load<u32>(c + CX_CURSOR);
    store<u32>(ctxBufferAddr(c) + BATCH_AT + n * 4, t);
    store<u32>(c + CX_CURSOR, n + 1);
    return PIECE_DONE;
  }
  // In part: nothing to do where no data is (an unmapped chunk reads zeros); else zeros written.
  if (thinEntry(v, chunk) == 0 && (slot < 0 || slotThinChunk(<u32>slot) == 0)) return PIECE_DONE;
  if (slot < 0) slot = allocateFor(v, chunk);
  if (slot < 0 || (slotFlags(<u32>slot) & F_STAGING) != 0) return PIECE_WAIT;
  const at = slotData(<u32>slot) + (<usize>first << 9);
  memory.fill(at, 0, <usize>count << 9);
  writeSectors(<u32>slot, first, count, at, gNow, id);
  nvPending(c, WRITE_NV_ENTRIES);
  return PIECE_DONE;
}

/** The batch's cleared entries are in the NV file: their medium chunks go back. */
function giveBackBatch(c: usize): void {
  const n = load<u32>(c + CX_CURSOR);
  const b = ctxBufferAddr(c) + BATCH_AT;
  for (let i: u32 = 0; i < n; i++) thinChunkRelease(load<u32>(b + i * 4));
  store<u32>(c + CX_CURSOR, 0);
}
