// The copy manager's table (document 001, FIG. 2: the backup parameter information 511 and the
// backup data storage area 515), in common memory: one record per EXTENDED COPY, written by the
// channel IOP that parsed the parameter list and executed by the disk IOP (manager.ts), whose
// results the channel IOPs read back for RECEIVE COPY RESULTS (command.ts).
//
// A record is owned by one side at a time, by its `state`: the channel IOP fills a FREE record and
// publishes it QUEUED; the disk IOP alone moves it through RUNNING to DONE; the channel IOPs then
// read it and set it FREE when its results have been taken (or were never to be held: NRCR). The
// only word both write while it runs is `abort`, which the channel IOP sets and the disk IOP obeys.
import { MAP_ADDR } from "../abi";

export const MAX_COPIES: u32 = 4; // copies at once (several initiators), results held included
export const MAX_TARGETS: u32 = 8; // CSCD descriptors per list
export const MAX_SEGMENTS: u32 = 256; // segment descriptors per list
export const MAX_SEGMENT_BYTES: u32 = 8192; // the segment descriptor list
export const MAX_INLINE_BYTES: u32 = 8192; // inline data
export const MAX_LIST_BYTES: u32 = 16 + MAX_TARGETS * 32 + MAX_SEGMENT_BYTES + MAX_INLINE_BYTES;
export const HELD_BYTES: u32 = 4096; // data held for RECEIVE DATA
/** The backup data storage area of one copy (515): what a round of a segment moves (two halves when streaming). */
export const STAGE_BYTES: u32 = 1024 * 1024;
/** The largest tape record (READ BLOCK LIMITS of the drives): a variable-mode segment is one record. */
export const MAX_RECORD_BYTES: u32 = 256 * 1024;

// Record states.
export const XS_FREE: u32 = 0;
export const XS_QUEUED: u32 = 1; // parsed, waiting for the disk IOP
export const XS_RUNNING: u32 = 2;
export const XS_DONE: u32 = 3; // ended (well, with an error, or aborted): results wait to be taken

// Copy manager status (RECEIVE COPY RESULTS, COPY STATUS byte 4).
export const CMS_IN_PROGRESS: u32 = 0;
export const CMS_GOOD: u32 = 1;
export const CMS_FAILED: u32 = 2;

// Flags.
export const XF_NRCR: u32 = 1; // no RECEIVE COPY RESULTS: nothing held after the copy
export const XF_IMMED: u32 = 2; // the command's status was sent once the copy started (vendor segment C0h)
export const XF_DETACHED: u32 = 4; // no command waits for it any more (IMMED sent, or the command is gone)
export const XF_SPLIT_DONE: u32 = 8; // C0h's split is in NV: an IMMED command may answer

// Target (CSCD) kinds.
export const TK_BLOCK: u32 = 0;
export const TK_STREAM: u32 = 1;

// Pair policies of vendor segment C0h: how a split-pending target volume is read (001's embodiments).
export const PP_MERGE: u32 = 0; // 3rd: not-yet-reflected tracks from the source, merged in the area 515
export const PP_PRIORITY: u32 = 1; // 1st: the range's differential data copied first, then read from the target
export const PP_WAIT: u32 = 2; // 2nd: the backup waits until the whole difference is reflected (pair split)

/** A resolved CSCD descriptor. */
@unmanaged export class Target {
  kind: u32; // TK_*
  device: u32; // volume number, or tape device
  blockBytes: u32; // block device: the volume's block size; stream: the fixed block length, 0 variable
  pad: u32;
  access: u32; // the initiator's access to the volume or drive (comm/access.ts ACC_*): a read-only one is never a destination
  readOnlyReserved: u32; // nonzero: a persistent reservation admits the initiator to read the unit only (scsi/pr.ts): never a destination
}
export const TARGET_BYTES: u32 = 32;

/** One copy (EXTENDED COPY parameter list and its progress and results). */
@unmanaged export class CopyOp {
  state: u32; // XS_*
  flags: u32; // XF_*
  abort: u32; // nonzero: stop, ending with this sense (key << 16 | asc << 8 | ascq): task management, a reset
  listId: u32;
  port: u32; // the I_T nexus that sent it
  session: u32;
  sessionGen: u32;
  priority: u32;
  targets: u32;
  segments: u32; // segment descriptors
  segmentBytes: u32;
  inlineBytes: u32;
  // Progress (disk IOP).
  segment: u32; // the segment being processed
  phase: u32; // within it (manager.ts)
  offset: u64; // bytes of the segment done
  fill: u32; // bytes in the stage area
  drained: u32; // of those, bytes written to the destination
  chunk: u32; // bytes this round of the segment moves through the stage area
  staged: u32; // the pinned slot's stage was asked for by this copy
  half: u32; // block -> fixed stream: the half of the area being filled (the other is on its way to the drive)
  flight: u32; // bytes of the segment in the tape request in flight (filled ahead of them: offset + flight)
  tapeDone: u32; // the last tape completion: records or marks done (TCQ_DONE)
  tapeLength: u32; // and the length of the last record read (TCQ_LENGTH)
  pinned: u32; // cache slot + 1 held pinned
  tape: u32; // tape device + 1 the copy holds claimed
  inFlight: u32; // 1 while a tape request is at the binding
  nvPending: u32; // NV entries queued and not completed
  nvFailed: u32;
  seq: u32; // matches NV completions (low 24 bits)
  heldBytes: u32; // data held for RECEIVE DATA
  transferred: u64; // bytes moved (COPY STATUS transfer count)
  policy: u32; // PP_* (vendor segment C0h)
  pair: i32; // the pair of the C0h segment, -1 none
  waitNs: f64; // deadline of a wait (a pair copy, a tape drive)
  startNs: f64;
  // Results.
  status: u32; // CMS_*
  senseKey: u32; // of the EXTENDED COPY (COPY ABORTED, ...)
  asc: u32;
  ascq: u32;
  failedSegment: u32; // command-specific information: the segment that failed
  targetStatus: u32; // the copy target's status (FAILED SEGMENT DETAILS)
  targetSenseLength: u32; // 0 or 18
  cmdCtx: u32; // the channel IOP's context id of the waiting command (iop << 24 | ctx id)
  unit: u32; // the logical unit the EXTENDED COPY addressed (sequencer ctxLogicalUnit): the copy manager a reset of it stops
  slotWaitNs: f64; // when the copy's wait for a cache slot ends in failure (manager.ts slotWaiting); 0 while it does not wait
}
export const OP_HEADER_BYTES: u32 = 256;
export const OP_TARGETS: u32 = OP_HEADER_BYTES; // MAX_TARGETS x TARGET_BYTES
export const OP_TARGET_SENSE: u32 = OP_TARGETS + MAX_TARGETS * TARGET_BYTES; // 32 bytes: the failing target's sense
export const OP_SEGMENTS: u32 = OP_TARGET_SENSE + 32; // the segment descriptors, as sent
export const OP_INLINE: u32 = OP_SEGMENTS + MAX_SEGMENT_BYTES; // the inline data, as sent
export const OP_HELD: u32 = OP_INLINE + MAX_INLINE_BYTES; // data held for RECEIVE DATA
export const OP_BYTES: u32 = OP_HELD + HELD_BYTES;

/** Firmware-private map field: the copy manager's table (pairs use 128; 132 is left for nbd/sbc). */
const MAPX_XCOPY: u32 = 136;

export function xcopyBytes(): usize { return <usize>MAX_COPIES * (OP_BYTES + STAGE_BYTES); }

export function xcopyLayout(at: usize): void {
  store<u32>(MAP_ADDR + MAPX_XCOPY, <u32>at);
  memory.fill(at, 0, <usize>MAX_COPIES * OP_BYTES);
}

// @ts-ignore: decorator
@inline export function opAt(i: u32): usize { return <usize>load<u32>(MAP_ADDR + MAPX_XCOPY) + <usize>i * OP_BYTES; }
// @ts-ignore: decorator
@inline export function op(i: u32): CopyOp { return changetype<CopyOp>(opAt(i)); }
// @ts-ignore: decorator
@inline export function target(i: u32, t: u32): Target { return changetype<Target>(opAt(i) + OP_TARGETS + t * TARGET_BYTES); }
/** The backup data storage area (515) of copy i. */
// @ts-ignore: decorator
@inline export function stageArea(i: u32): usize {
  return <usize>load<u32>(MAP_ADDR + MAPX_XCOPY) + <usize>MAX_COPIES * OP_BYTES + <usize>i * STAGE_BYTES;
}

/** The copy of I_T nexus (port, session, gen) with list identifier `id` that still holds state, or -1. */
export function opOfList(port: u32, session: u32, gen: u32, id: u32): i32 {
  for (let i: u32 = 0; i < MAX_COPIES; i++) {
    const o = op(i);
    if (o.state != XS_FREE && o.port == port && o.session == session && o.sessionGen == gen && o.listId == id) return <i32>i;
  }
  return -1;
}

/**
 * Is a copy naming pair p in its vendor segment C0h queued or running? 004: the pair's target is
 * read-only for the duration of a backup, and its resync waits for the backup's end (pair/io.ts,
 * scsi/pair.ts). Volatile: no copy outlives a restart, so neither does the attribute.
 */
export function pairBackedUp(p: u32): bool {
  for (let i: u32 = 0; i < MAX_COPIES; i++) {
    const o = op(i);
    const st = atomic.load<u32>(opAt(i));
    if ((st == XS_QUEUED || st == XS_RUNNING) && o.pair == <i32>p) return true;
  }
  return false;
}

/** Segment descriptor n's address (the caller knows n < segments). */
export function segmentAt(i: u32, n: u32): usize {
  let p = opAt(i) + OP_SEGMENTS;
  for (let k: u32 = 0; k < n; k++) p += 4 + <usize>((<u32>load<u8>(p + 2) << 8) | <u32>load<u8>(p + 3));
  return p;
}
