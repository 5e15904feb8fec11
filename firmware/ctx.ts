// Command contexts: one state machine per command in flight (document 003's processing
// sequencer "supervising the sequences of various processing operations"), identified by the
// host's tag within its session. A fixed pool per channel IOP, set at boot from CFG_CONTEXTS;
// when it is empty the command is answered TASK SET FULL, never queued without bound.
//
// Also the channel IOP's buffer memory (document 003's buffer memory 106): 64 KiB chunks handed
// out as contiguous runs, for data-out windows and generated data-in.
import { BUFFER_CHUNK_BYTES, CFG_CONTEXTS, CFG_BUFFER_CHUNKS, MAX_CDB_BYTES } from "./abi";
import { cfg32 } from "./config";
import { gPrivate } from "./iop";
import { bitmapFindNextClear, bitmapFindNextSet, bitmapSetRange, bitmapClearRange } from "./kernels/bitmap";

export const CTX_BYTES: u32 = 320;
export const CX_STATE: u32 = 0; // u8: ST_*
export const CX_PORT: u32 = 1; // u8
export const CX_SESSION: u32 = 2; // u8
export const CX_KIND: u32 = 3; // u8: PORT_* of the port the command came through
export const CX_TAG: u32 = 4; // u32
export const CX_LUN: u32 = 8; // u16
export const CX_VOLUME: u32 = 10; // u16, NO_VOLUME16 for the command device or an unmapped LUN
export const CX_SESSION_GEN: u32 = 12; // u32: session generation the command arrived in
export const CX_LBA: u32 = 16; // u64
export const CX_BLOCKS: u32 = 24; // u32
export const CX_EXPECTED: u32 = 28; // u32: expected data transfer length (host)
export const CX_LENGTH: u32 = 32; // u32: data bytes this command moves
export const CX_CURSOR: u32 = 36; // u32: data bytes sent (data-in) or committed (data-out)
export const CX_WIN_START: u32 = 40; // u32: data-out window: first byte
export const CX_WIN_LEN: u32 = 44; // u32
export const CX_WIN_RECEIVED: u32 = 48; // u32
export const CX_BUF_FIRST: u32 = 52; // u16: first buffer granule + 1 (0: none)
export const CX_BUF_COUNT: u32 = 54; // u16
export const CX_PRODUCED: u32 = 56; // u32: data-in bytes the command has to give (before the host's limit)
export const CX_FLAGS: u32 = 60; // u32: CXF_*
export const CX_START_NS: u32 = 64; // f64
export const CX_DEADLINE_NS: u32 = 72; // f64: data-out timeout; a flush's stall bound
export const CX_FLUSH_SEQ: u32 = 80; // u64
export const CX_NV_PENDING: u32 = 88; // u32
export const CX_DATA_ADDR: u32 = 92; // u32: queue ports: the initiator's buffer
export const CX_TX_SEQ: u32 = 96; // u16: frame sequence count, array -> host
export const CX_RX_SEQ: u32 = 98; // u16
export const CX_STATUS: u32 = 100; // u8
export const CX_SENSE_KEY: u32 = 101; // u8
export const CX_ASC: u32 = 102; // u8
export const CX_ASCQ: u32 = 103; // u8
export const CX_INFO: u32 = 104; // u32: sense INFORMATION (valid with CXF_INFO_VALID)
export const CX_SKS: u32 = 108; // u32: sense-key-specific bytes (SKSV in bit 23)
export const CX_NEXT: u32 = 112; // u32: index + 1 on the free or active list
export const CX_PREV: u32 = 116; // u32
export const CX_ID: u32 = 120; // u32: index | generation << 16 (NV completion ids)
export const CX_PEER: u32 = 124; // u16: the host's frame address
export const CX_OPCODE: u32 = 126; // u8
export const CX_CDB_LEN: u32 = 127; // u8
export const CX_CDB: u32 = 128; // MAX_CDB_BYTES
export const CX_EVENT_SEEN: u32 = 160; // u32: cache event when the context last found nothing to do
export const CX_WAIT_SLOT: u32 = 164; // u32: slot + 1 whose stage this command asked for, or a flush waits for
export const CX_AHEAD: u32 = 168; // u32: data-in bytes for which stage-ahead was requested
export const CX_FIRST_SLOT: u32 = 172; // u32: flush range, in slot numbers
export const CX_LAST_SLOT: u32 = 176; // u32
export const CX_ARG: u32 = 180; // u32: handler-specific
export const CX_TASK_ATTR: u32 = 184; // u8: TA_* (SAM task attribute, whatever the transport's encoding)
export const CX_SENSE_BITS: u32 = 185; // u8: byte 2 flags of fixed sense a tape command sets: FILEMARK 80h, EOM 40h, ILI 20h; SENSE_DEFERRED
/** In CX_SENSE_BITS: the sense is a deferred error (response code 71h, SPC-4 4.5.5), of an earlier IMMED operation. */
export const SENSE_DEFERRED: u32 = 0x01;
export const CX_PIN_SLOT: u32 = 188; // u32: slot + 1 this command holds pinned (a stage it waits for, a slot it sends)
export const CX_TRANSPORT: u32 = 192; // CX_TRANSPORT_BYTES: the port kind's per-command state (comm/), 8-aligned
export const CX_TRANSPORT_BYTES: u32 = 64;
export const CX_GATHER: u32 = 256; // u32: buffer granules a data-out of several windows is gathered in: first + 1 | count << 16
export const CX_ORDER: u32 = 260; // u32: the command's place in its channel IOP's dispatch order (task attributes)
export const CX_SLOT_WAIT_NS: u32 = 264; // f64: when the command's wait for a cache slot ends in failure (sequencer slotWait); 0 while it does not wait

export const NO_VOLUME16: u32 = 0xFFFF;

// Task attributes (SAM-5), carried from every transport into the context.
export const TA_SIMPLE: u32 = 0;
export const TA_HEAD_OF_QUEUE: u32 = 1;
export const TA_ORDERED: u32 = 2;
export const TA_ACA: u32 = 3;

export const ST_FREE: u32 = 0;
export const ST_DISPATCH: u32 = 1; // the handler runs (again) on the next step: it lacked a resource
export const ST_READ: u32 = 2; // volume data-in: stage and send
export const ST_WRITE_BUFFER: u32 = 3; // data-out: waiting for buffer memory for the next window
export const ST_WRITE_DATA: u32 = 4; // data-out: XFER_RDY sent, DATA_OUT frames arriving
export const ST_WRITE_COMMIT: u32 = 5; // data-out: copying the window into cache slots
export const ST_NV_WAIT: u32 = 6; // waiting for NV persistence
export const ST_FLUSH: u32 = 7; // waiting for dirty data to reach the media (FUA, SYNCHRONIZE CACHE)
export const ST_SEND_BUFFER: u32 = 8; // generated data-in from buffer memory
export const ST_RESPOND: u32 = 9; // status ready, waiting for room to send it
export const ST_PARAM_DATA: u32 = 10; // management OUT: receiving the parameter list
export const ST_TAPE: u32 = 12; // a tape command: waiting for its device, its request, or to send what it read (tape/)
export const ST_HELD: u32 = 11; // taken in but not yet dispatched: its transport holds it (iSCSI CmdSN order)
export const ST_ORDER_WAIT: u32 = 13; // dispatched in order but waiting for older commands (task attributes: ORDERED)

export const CXF_DATA_OUT: u32 = 1; // host said it has data-out
export const CXF_DATA_IN: u32 = 2; // host said it takes data-in
export const CXF_FUA: u32 = 4;
export const CXF_MISS: u32 = 8; // a read needed staging
export const CXF_INFO_VALID: u32 = 16;
export const CXF_IMMED: u32 = 32; // status already sent; the context finishes silently
export const CXF_RESPONDED: u32 = 64;
export const CXF_PARAM: u32 = 128; // the data-out window is a parameter list, not volume data
export const CXF_FLUSH_POSTED: u32 = 256;
export const CXF_TAPE: u32 = 1024; // the command holds a tape device's claim (CX_ARG: device + 1)
export const CXF_NV_FAILED: u32 = 512; // an NV persist of this command completed with an error
export const CXF_PAIR_WAIT: u32 = 2048; // a bounded wait began (sequencer waitExpired; CX_DEADLINE_NS: until when): a pair's copy of a track, a failover's reflect
export const CXF_SINK_COMPARE: u32 = 4096; // a read compares the blocks with the buffer (VERIFY BYTCHK=1)
export const CXF_SINK_DISCARD: u32 = 8192; // a read only stages the blocks (VERIFY BYTCHK=0, PRE-FETCH)
export const CXF_REDISPATCH: u32 = 16384; // when that read is done the handler runs again (COMPARE AND WRITE)
export const CXF_FROM_BUFFER: u32 = 32768; // a write takes its data from the command's buffer (WRITE SAME)
export const CXF_ORDERED: u32 = 65536; // an ORDERED command counted in CP_ORDERED until it ends
export const CXF_DEALLOC: u32 = 0x20000; // the command deallocates a thin volume's range (scsi/thin.ts): its handler goes on where it was
export const CXF_AFTER_PERSIST: u32 = 0x80000; // once what the command persisted is in the NV file its handler runs again (persistThenRedispatch)
export const CXF_CSI: u32 = 0x40000; // CX_INFO is COMMAND-SPECIFIC INFORMATION (sense bytes 8-11), not INFORMATION (EXTENDED COPY)

// Channel IOP private area header (the rest is laid out by channel.ts).
export const CP_CTX_FREE: u32 = 0; // u32: index + 1
export const CP_ACTIVE_HEAD: u32 = 4; // u32: index + 1
export const CP_ACTIVE_TAIL: u32 = 8;
export const CP_CTX_GEN: u32 = 12; // u32
export const CP_BUF_MAP: u32 = 16; // u32: address of the buffer bitmap (BUFFER_MAP_BYTES; bit set = granule in use)
export const CP_CTX_BASE: u32 = 24; // u32: address of the context array
export const CP_BUF_BASE: u32 = 28; // u32: address of the buffer chunks
export const CP_SESS_BASE: u32 = 32; // u32: address of the session states
export const CP_SCRATCH: u32 = 36; // u32: address of a 4 KiB scratch (frame headers, CMD payloads)
export const CP_IMAGE: u32 = 40; // u32: address of a 64-byte descriptor image
export const CP_NV_QUEUED: u32 = 44; // u32: NV entries queued this poll
export const CP_PRNG: u32 = 48; // u64 x 2: the IOP's PRNG state (prng.ts)
export const CP_PORT_EXT: u32 = 64; // MAX_PORTS x u32: each port's kind-specific session area (0: none)
export const CP_FENCE_GEN: u32 = 128; // u32: the volume-fence generation this IOP last purged for
export const CP_ORDER_SEQ: u32 = 132; // u32: the last CX_ORDER given (dispatch order)
export const CP_ORDERED: u32 = 136; // u32: ORDERED commands dispatched and not yet ended
export const CP_HEADER_BYTES: u32 = 192;

// @ts-ignore: decorator
@inline export function ctxAt(i: u32): usize { return <usize>load<u32>(gPrivate + CP_CTX_BASE) + <usize>i * CTX_BYTES; }
// @ts-ignore: decorator
@inline export function ctxIndex(c: usize): u32 { return <u32>((c - <usize>load<u32>(gPrivate + CP_CTX_BASE)) / CTX_BYTES); }
export function contexts(): u32 { return cfg32(CFG_CONTEXTS); }

export function ctxInit(): void {
  const n = contexts();
  store<u32>(gPrivate + CP_CTX_FREE, n > 0 ? 1 : 0);
  store<u32>(gPrivate + CP_ACTIVE_HEAD, 0);
  store<u32>(gPrivate + CP_ACTIVE_TAIL, 0);
  for (let i: u32 = 0; i < n; i++) {
    const c = ctxAt(i);
    memory.fill(c, 0, CTX_BYTES);
    store<u32>(c + CX_NEXT, i + 1 < n ? i + 2 : 0);
  }
  memory.fill(bufMap(), 0, BUFFER_MAP_BYTES);
}

/** A zeroed context, or 0 when the pool is empty. */
export function ctxAlloc(): usize {
  const free = load<u32>(gPrivate + CP_CTX_FREE);
  if (free == 0) return 0;
  const c = ctxAt(free - 1);
  store<u32>(gPrivate + CP_CTX_FREE, load<u32>(c + CX_NEXT));
  const gen = load<u32>(gPrivate + CP_CTX_GEN) + 1;
  store<u32>(gPrivate + CP_CTX_GEN, gen);
  memory.fill(c, 0, CTX_BYTES);
  store<u32>(c + CX_ID, (free - 1) | ((gen & 0xFFF) << 16));
  return c;
}

/** True while the pool has a context to give (a transport that would rather wait than answer TASK SET FULL asks first). */
export function ctxAvailable(): bool { return load<u32>(gPrivate + CP_CTX_FREE) != 0; }

export function ctxFree(c: usize): void {
  assert(load<u8>(c + CX_STATE) != <u8>ST_FREE, "ctx: a context freed twice");
  store<u8>(c + CX_STATE, <u8>ST_FREE);
  store<u32>(c + CX_NEXT, load<u32>(gPrivate + CP_CTX_FREE));
  store<u32>(gPrivate + CP_CTX_FREE, ctxIndex(c) + 1);
}

/** The context an NV completion id names, if it is still that command; else 0. */
export function ctxById(id: u32): usize {
  const i = id & 0xFFFF;
  if (i >= contexts()) return 0;
  const c = ctxAt(i);
  return load<u32>(c + CX_ID) == id && load<u8>(c + CX_STATE) != <u8>ST_FREE ? c : 0;
}

// ---- Active list: contexts that wait for something and are stepped each poll -------------------

export function activeAdd(c: usize): void {
  const i = ctxIndex(c) + 1;
  const tail = load<u32>(gPrivate + CP_ACTIVE_TAIL);
  store<u32>(c + CX_PREV, tail);
  store<u32>(c + CX_NEXT, 0);
  if (tail != 0) store<u32>(ctxAt(tail - 1) + CX_NEXT, i); else store<u32>(gPrivate + CP_ACTIVE_HEAD, i);
  store<u32>(gPrivate + CP_ACTIVE_TAIL, i);
}

export function activeRemove(c: usize): void {
  const prev = load<u32>(c + CX_PREV);
  const next = load<u32>(c + CX_NEXT);
  assert(prev != 0 || load<u32>(gPrivate + CP_ACTIVE_HEAD) == ctxIndex(c) + 1, "ctx: removing a context that is not on the active list");
  if (prev != 0) store<u32>(ctxAt(prev - 1) + CX_NEXT, next); else store<u32>(gPrivate + CP_ACTIVE_HEAD, next);
  if (next != 0) store<u32>(ctxAt(next - 1) + CX_PREV, prev); else store<u32>(gPrivate + CP_ACTIVE_TAIL, prev);
  store<u32>(c + CX_PREV, 0);
  store<u32>(c + CX_NEXT, 0);
}

export function activeFirst(): usize {
  const h = load<u32>(gPrivate + CP_ACTIVE_HEAD);
  return h == 0 ? 0 : ctxAt(h - 1);
}

export function activeNext(c: usize): usize {
  const n = load<u32>(c + CX_NEXT);
  return n == 0 ? 0 : ctxAt(n - 1);
}

// ---- Sense --------------------------------------------------------------------------------------

/** Ends the command with CHECK CONDITION and the given sense (the caller then responds). */
export function ctxCheck(c: usize, key: u32, asc: u32, ascq: u32): void {
  store<u8>(c + CX_STATUS, 0x02);
  store<u8>(c + CX_SENSE_KEY, <u8>key);
  store<u8>(c + CX_ASC, <u8>asc);
  store<u8>(c + CX_ASCQ, <u8>ascq);
}

/** Adds a field pointer: byte `byteOffset` of the CDB (cdb = true) or of the parameter list. */
export function ctxField(c: usize, cdb: bool, byteOffset: u32, bit: i32): void {
  let sks: u32 = 0x800000 | (cdb ? 0x400000 : 0) | (byteOffset & 0xFFFF);
  if (bit >= 0) sks |= 0x080000 | ((<u32>bit & 7) << 16);
  store<u32>(c + CX_SKS, sks);
}

export function ctxInfo(c: usize, info: u32): void {
  store<u32>(c + CX_INFO, info);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) | CXF_INFO_VALID);
}

export function ctxStatus(c: usize, status: u32): void { store<u8>(c + CX_STATUS, <u8>status); }

/** Writes 18 bytes of fixed-format sense for the context's sense fields. */
export function senseFixed(dst: usize, key: u32, asc: u32, ascq: u32, info: u32, infoValid: bool, sks: u32): void {
  memory.fill(dst, 0, 18);
  store<u8>(dst, <u8>(infoValid ? 0xF0 : 0x70));
  store<u8>(dst + 2, <u8>(key & 0xF));
  store<u8>(dst + 3, <u8>(info >> 24));
  store<u8>(dst + 4, <u8>(info >> 16));
  store<u8>(dst + 5, <u8>(info >> 8));
  store<u8>(dst + 6, <u8>info);
  store<u8>(dst + 7, 10);
  store<u8>(dst + 12, <u8>asc);
  store<u8>(dst + 13, <u8>ascq);
  store<u8>(dst + 15, <u8>(sks >> 16));
  store<u8>(dst + 16, <u8>(sks >> 8));
  store<u8>(dst + 17, <u8>sks);
}

export function ctxSense(c: usize, dst: usize): void {
  const csi = (load<u32>(c + CX_FLAGS) & CXF_CSI) != 0;
  senseFixed(dst, load<u8>(c + CX_SENSE_KEY), load<u8>(c + CX_ASC), load<u8>(c + CX_ASCQ), csi ? 0 : load<u32>(c + CX_INFO),
    (load<u32>(c + CX_FLAGS) & CXF_INFO_VALID) != 0, load<u32>(c + CX_SKS));
  if (csi) { const v = load<u32>(c + CX_INFO); store<u32>(dst + 8, (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24)); }
  store<u8>(dst + 2, load<u8>(dst + 2) | (load<u8>(c + CX_SENSE_BITS) & 0xE0));
  if ((load<u8>(c + CX_SENSE_BITS) & SENSE_DEFERRED) != 0) store<u8>(dst, load<u8>(dst) | 0x01); // 70h -> 71h
}

// ---- Buffer memory ------------------------------------------------------------------------------
// Handed out in 4 KiB granules, contiguous runs first fit: a 4 KiB write's immediate data takes one
// granule, a 256 KiB data-out window 64. The bitmap (bit set = in use) is in the private area.

export const BUFFER_GRANULE_BYTES: u32 = 4096;
export const BUFFER_MAP_BYTES: u32 = 128; // room for 64 chunks of 16 granules

export function bufferGranules(): u32 {
  return min<u32>(cfg32(CFG_BUFFER_CHUNKS), 64) * (BUFFER_CHUNK_BYTES / BUFFER_GRANULE_BYTES);
}

// @ts-ignore: decorator
@inline function bufMap(): usize { return <usize>load<u32>(gPrivate + CP_BUF_MAP); }

/** Contiguous run of `n` granules; returns the first index + 1, or 0 when none is free. */
export function bufAlloc(n: u32): u32 {
  const total = <u64>bufferGranules();
  const map = bufMap();
  let from: u64 = 0;
  while (from + <u64>n <= total) {
    const start = bitmapFindNextClear(map, total, from);
    if (start < 0 || <u64>start + <u64>n > total) return 0;
    const end = bitmapFindNextSet(map, total, <u64>start);
    if (end < 0) return 0;
    if (<u64>end - <u64>start >= <u64>n) {
      bitmapSetRange(map, total, <u64>start, <u64>n);
      return <u32>start + 1;
    }
    from = <u64>end;
  }
  return 0;
}

export function bufFree(first: u32, n: u32): void {
  if (first == 0) return;
  bitmapClearRange(bufMap(), <u64>bufferGranules(), <u64>(first - 1), <u64>n);
}

// @ts-ignore: decorator
@inline export function bufAddr(first: u32): usize {
  return <usize>load<u32>(gPrivate + CP_BUF_BASE) + <usize>(first - 1) * BUFFER_GRANULE_BYTES;
}

/** Gives the context buffer memory for `bytes` (at most MAX_WINDOW_BYTES), zeroed if asked. False when none is free. */
export function ctxBuffer(c: usize, bytes: u32, zeroed: bool): bool {
  const n = max<u32>(1, (bytes + BUFFER_GRANULE_BYTES - 1) / BUFFER_GRANULE_BYTES);
  const first = bufAlloc(n);
  if (first == 0) return false;
  store<u16>(c + CX_BUF_FIRST, <u16>first);
  store<u16>(c + CX_BUF_COUNT, <u16>n);
  if (zeroed) memory.fill(bufAddr(first), 0, <usize>bytes);
  return true;
}

/**
 * Buffer memory for a data-out that the handler needs whole (VERIFY, COMPARE AND WRITE, WRITE SAME,
 * PERSISTENT RESERVE OUT...) when its transport delivers it in several windows. False when none is free.
 */
export function ctxGatherBuffer(c: usize, bytes: u32): bool {
  const n = max<u32>(1, (bytes + BUFFER_GRANULE_BYTES - 1) / BUFFER_GRANULE_BYTES);
  const first = bufAlloc(n);
  if (first == 0) return false;
  store<u32>(c + CX_GATHER, first | (n << 16));
  return true;
}

export function ctxGatherAddr(c: usize): usize { return bufAddr(load<u32>(c + CX_GATHER) & 0xFFFF); }

export function ctxGatherRelease(c: usize): void {
  const g = load<u32>(c + CX_GATHER);
  bufFree(g & 0xFFFF, g >> 16);
  store<u32>(c + CX_GATHER, 0);
}

/** The gathered data-out becomes the command's buffer (the window's is given back). */
export function ctxGatherToBuffer(c: usize): void {
  ctxBufferRelease(c);
  const g = load<u32>(c + CX_GATHER);
  store<u16>(c + CX_BUF_FIRST, <u16>(g & 0xFFFF));
  store<u16>(c + CX_BUF_COUNT, <u16>(g >> 16));
  store<u32>(c + CX_GATHER, 0);
}

export function ctxBufferRelease(c: usize): void {
  bufFree(load<u16>(c + CX_BUF_FIRST), load<u16>(c + CX_BUF_COUNT));
  store<u16>(c + CX_BUF_FIRST, 0);
  store<u16>(c + CX_BUF_COUNT, 0);
}

/** Bytes of buffer memory the context holds. */
export function ctxBufferBytes(c: usize): u32 { return <u32>load<u16>(c + CX_BUF_COUNT) * BUFFER_GRANULE_BYTES; }

export function ctxBufferAddr(c: usize): usize { return bufAddr(load<u16>(c + CX_BUF_FIRST)); }

export const MAX_WINDOW_BYTES: u32 = 4 * BUFFER_CHUNK_BYTES;

// What a transport did when the sequencer opened a data-out window (comm/transport.ts windowOpen).
export const WIN_RETRY: u32 = 0; // it lacked a resource (buffer memory, room to ask): ask again next poll
export const WIN_ASKED: u32 = 1; // the initiator was asked; the bytes arrive through windowData
export const WIN_ARRIVED: u32 = 2; // the window's bytes are in place already (queue ports, unsolicited data)
export const CDB_MAX: u32 = MAX_CDB_BYTES;
