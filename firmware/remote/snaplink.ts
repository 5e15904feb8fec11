// Document 003's embodiment 8 on the link (docs/remote.md, "Embodiment 8 on the link"): a remote pair
// of mode RM_SNAPSHOT. Its secondary is a redirect-on-write standby (remote/snapshot.ts): the
// primary's host writes, after the initial copy, go as delay writes flagged LF_SNAPSHOT, and at each
// restart enabling point the host notified (REMOTE CHANGE restart point) a snapshot forming command
// (CONTROL op LOP_REFLECT flagged LF_SNAPSHOT, S562). The secondary's link unit keeps one unit per
// such pair and feeds it:
//
//   WRITE (LF_SNAPSHOT) -> snapAccept (S580) -> READY -> DATA into the hold slot (S583-S585);
//   its turn in issuing-ID order (S586, snapNext) -> snapWriteMap (S540-S546) -> one write per run of
//     consecutive physical blocks through the ordinary write path of the volume (linkApply, S587) ->
//     snapDone (S588) -> the unit's image written to the volume's image place (snapSave) -> RECEIVED
//     GOOD (S589): the primary's host hears GOOD only when the write and the table naming it are in NV;
//   forming (LOP_REFLECT | LF_SNAPSHOT) -> at its turn snapForm ([0255]) -> image -> RECEIVED GOOD;
//   REMOTE CHANGE failover -> snapFailover ([0263]) -> image -> the moves home (a read of the block by a
//     fetch context, a write at its home, snapHomeDone, image), each bounded -> GOOD: hosts read the
//     volume at its last restart point through the ordinary path.
//
// The secondary's volume is larger than the primary's: logical block i (a table block of
// SNAP_BLOCK_BYTES) lives at home on the volume's table block i; the table blocks past the primary's
// capacity are the spare physical blocks redirect-on-write takes; the volume's last bytes are the two
// places of the unit's image (snapSave writes them in turn, so a torn image leaves the other).
// Refusals the sender sees: no unit or hold slot free now (SNAP_FULL) -> BUSY, asked again within its
// retries; no unused block left (SNAP_NO_SPACE) -> DATA PROTECT, SPACE ALLOCATION FAILED (27h/07h),
// the pair is suspended and the standby stays at its restart point; failed over -> DATA PROTECT;
// malformed, or a volume too small for the table -> ILLEGAL REQUEST.
import { LT_READY, LT_RECEIVED, LOP_REFLECT, LINK_HEADER_BYTES, LINK_PAYLOAD_BYTES, REMOTE_PAIRS_MAX } from "../abi";
import { pkt, pktLba } from "./packet";
import { remote, remoteAt, linked, RM_SNAPSHOT, RPR_PEER_BLOCKS, RR_SECONDARY } from "./pair";
import {
  snapLoad, snapBytes, snapLayout, snapUnit, snapAccept, snapData, snapDataIn, snapNext, snapKind, snapLba, snapBlocks, snapIssuing, snapWriteMap,
  snapRuns, snapForm, snapDone, snapFailover, snapHomeNext, snapHomeDone, snapHomeBound, snapSave, snapImageBytes,
  SK_WRITE, SK_FORM, SNAP_NO_SPACE,
} from "./snapshot";
import { linkAnswer, linkApply, linkFetch, linkPortToward } from "../comm/link";
import { blockSize, capacityBlocks } from "../volume";
import { gNow, wakeAt } from "../iop";
import { log, LOG_WARN } from "../hal";
import { standbyRegionEnd, standbyAnswer, standbyRefusal, standbyPacketBit } from "./standby";

/** Snapshot units an array holds at once (RM_SNAPSHOT pairs that are its secondaries). */
export const SNAP_UNITS: u32 = 1;
/** The table block: the unit of redirect-on-write, one link packet (the primary sends whole 8 KiB pieces). */
export const SNAP_BLOCK_BYTES: u32 = LINK_PAYLOAD_BYTES;
/** The most physical table blocks of a secondary volume (32 MiB). */
export const SNAP_MAX_PHYSICAL: u32 = 4096;
/** Commands held out of issuing-ID order, and the longest one (the primary's host writes are cut to it). */
export const SNAP_HOLD: u32 = 8;
export const SNAP_COMMAND_BYTES: u32 = 64 * 1024;
/** A move home's read and write each end within this, or the failover fails naming the move (ABORTED COMMAND 86h/1Ah). */
export const SNAP_MOVE_WAIT_NS: f64 = 5e9;

const META_BYTES: u32 = 1024;
const META_SLOTS: u32 = 128; // SNAP_HOLD x SLOT_META_BYTES: who sent each slot's command
const SLOT_META_BYTES: u32 = 28; // issuingId, srcNode u16 | srcQueue u16, cmdId, origin, got (mask of 8 KiB packets), total, answered
const META_MAP: u32 = 384; // SNAP_COMMAND_BYTES / SNAP_BLOCK_BYTES u32s: the physical block of each table block of the write
const META_RUNS: u32 = 448; // as many runs of 12 bytes
const MAP_MAX: u32 = SNAP_COMMAND_BYTES / SNAP_BLOCK_BYTES;
const ANSWER_GOOD: u32 = 0;
const ANSWER_BUSY: u32 = 0x08 << 24;
const ANSWER_PROTECT: u32 = (0x02 << 24) | (0x07 << 16) | (0x27 << 8); // DATA PROTECT, WRITE PROTECTED: failed over
const ANSWER_NO_SPACE: u32 = (0x02 << 24) | (0x07 << 16) | (0x27 << 8) | 0x07; // DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT
const ANSWER_INVALID: u32 = (0x02 << 24) | (0x05 << 16) | (0x24 << 8); // ILLEGAL REQUEST: not whole table blocks, too long, volume too small
const ANSWER_MEDIUM: u32 = (0x02 << 24) | (0x03 << 16) | (0x0C << 8); // MEDIUM ERROR, WRITE ERROR: a run or the image failed
// Tags of the unit's contexts (linkApply / linkFetch): what ended.
const TAG_RUN: u32 = 0x10000;
const TAG_IMAGE: u32 = 0x20000;
const TAG_HOME_READ: u32 = 0x30000;
const TAG_HOME_WRITE: u32 = 0x40000;
// What the unit does now (SnapMeta.phase).
const PH_IDLE: u32 = 0;
const PH_RUNS: u32 = 1; // a write's runs are in flight
const PH_IMAGE: u32 = 2; // the image is being written; then `after`
const PH_HOME_READ: u32 = 3; // a move home: the block is being read
const PH_HOME_WRITE: u32 = 4; // ... and written at its place
const PH_LOAD: u32 = 5; // after a restart: both image places are being read (snapLoad then)
const AF_ANSWER: u32 = 1; // after the image: RECEIVED for the slot's command
const AF_HOME: u32 = 2; // after the image: the next move home
const AF_END: u32 = 3; // after the image: nothing (homing has ended)

@unmanaged class SnapMeta {
  owner: u32; // the pair + 1; 0: free
  serial: u32; // the pair's serial when the unit was laid out
  port: u32; // the link port its packets arrive on: its contexts run there
  phase: u32; // PH_*
  slot: u32; // PH_RUNS / AF_ANSWER: the hold slot processed
  runs: u32; // runs of the write
  runNext: u32; // the next run to start
  applying: u32; // contexts in flight
  failed: u32; // 1: a context of this step failed
  after: u32; // AF_*
  answer: u32; // AF_ANSWER: the status word
  issuing: u32; // AF_ANSWER: the issuing ID answered
  deadline: f64; // PH_HOME_*: the move's bound
  moveL: u32; // the move home (snapHomeNext)
  moveFrom: u32;
  moveTo: u32;
  homeError: u32; // 1: a move passed its bound or failed: the failover says so
  placeA: u32; // the image places: volume blocks (the volume's block size) of a and b, blocks of each
  placeB: u32;
  placeBlocks: u32;
  imageAt: u32; // buffer memory: a and b (the unit's copies of what it wrote there)
}

// @ts-ignore: decorator
@inline function unitStride(): usize { return <usize>META_BYTES + snapBytes(SNAP_MAX_PHYSICAL, SNAP_MAX_PHYSICAL, SNAP_HOLD, SNAP_COMMAND_BYTES) + 2 * imageBytesMax() + <usize>SNAP_BLOCK_BYTES; }
// @ts-ignore: decorator
@inline function imageBytesMax(): usize { return (snapImageBytes(SNAP_MAX_PHYSICAL, SNAP_MAX_PHYSICAL) + 63) & ~(<usize>63); }
// The region: REMOTE_PAIRS_MAX u64s (each pair's primary capacity from its last CREATE, volatile: a
// unit copies it into the pair record, kept in NV), then the units.
const PEERS_BYTES: u32 = REMOTE_PAIRS_MAX * 8;
function metaAt(i: u32): usize { return standbyRegionEnd() + <usize>PEERS_BYTES + <usize>i * unitStride(); }
// @ts-ignore: decorator
@inline function meta(i: u32): SnapMeta { return changetype<SnapMeta>(metaAt(i)); }
function unitAt(i: u32): usize { return metaAt(i) + META_BYTES; }
function imageA(i: u32): usize { return unitAt(i) + snapBytes(SNAP_MAX_PHYSICAL, SNAP_MAX_PHYSICAL, SNAP_HOLD, SNAP_COMMAND_BYTES); }
function imageB(i: u32): usize { return imageA(i) + imageBytesMax(); }
function moveBuffer(i: u32): usize { return imageB(i) + imageBytesMax(); }
function slotMeta(i: u32, s: u32): usize { return metaAt(i) + META_SLOTS + <usize>s * SLOT_META_BYTES; }
function units(): u32 { return linked() ? SNAP_UNITS : 0; }

/** Bytes after the standby units (remote/standby.ts adds them to its region). */
export function snapLinkBytes(): usize {
  assert(offsetof<SnapMeta>() <= META_SLOTS && META_SLOTS + SNAP_HOLD * SLOT_META_BYTES <= META_MAP && META_MAP + MAP_MAX * 4 <= META_RUNS
    && META_RUNS + MAP_MAX * 12 <= META_BYTES, "snaplink: meta layout");
  return linked() ? <usize>PEERS_BYTES + <usize>SNAP_UNITS * unitStride() : 0;
}
export function snapLinkLayout(): void {
  if (linked()) memory.fill(standbyRegionEnd(), 0, PEERS_BYTES);
  for (let i: u32 = 0; i < units(); i++) memory.fill(metaAt(i), 0, META_BYTES);
}

/** CREATE of secondary pair pi (comm/link.ts): the primary's capacity in blocks, kept until a unit takes it. */
export function snapLinkCreated(pi: u32, peerBlocks: u64): void { if (linked() && pi < REMOTE_PAIRS_MAX) store<u64>(standbyRegionEnd() + <usize>pi * 8, peerBlocks); }

/** The unit of pair pi (of its current incarnation), or -1. */
function unitOf(pi: u32): i32 {
  for (let i: u32 = 0; i < units(); i++) if (meta(i).owner == pi + 1 && meta(i).serial == remote(pi).serial) return <i32>i;
  return -1;
}

/** Does a snapshot unit serve pair pi now? */
export function snapLinkOwns(pi: u32): bool { return unitOf(pi) >= 0; }

/** Pair pi's unit goes (a new CREATE, a DELETE). */
export function snapLinkRelease(pi: u32): void {
  for (let i: u32 = 0; i < units(); i++) if (meta(i).owner == pi + 1 && meta(i).applying == 0) meta(i).owner = 0;
}

/**
 * The geometry of pair pi's unit on its volume: logical table blocks (the primary's capacity, CREATE's),
 * physical ones (the volume less its two image places), the places. False when the volume cannot hold it.
 */
function geometry(pi: u32, m: SnapMeta, out: usize): bool {
  const r = remote(pi);
  const v = <u32>r.volume;
  const bs = <u64>blockSize(v);
  // From the CREATE (this incarnation), else from the record (after a restart); the record keeps it.
  const created = load<u64>(standbyRegionEnd() + <usize>pi * 8);
  if (created != 0) store<u64>(remoteAt(pi) + RPR_PEER_BLOCKS, created);
  const peerBytes = load<u64>(remoteAt(pi) + RPR_PEER_BLOCKS) * bs;
  const capBytes = capacityBlocks(v) * bs;
  const TB = <u64>SNAP_BLOCK_BYTES;
  if (peerBytes == 0 || peerBytes % TB != 0 || peerBytes / TB > <u64>SNAP_MAX_PHYSICAL || TB % bs != 0) return false;
  const logical = <u32>(peerBytes / TB);
  const p0 = <u32>min<u64>(capBytes / TB, <u64>SNAP_MAX_PHYSICAL);
  const area = (<u64>snapImageBytes(logical, p0) + TB - 1) / TB * TB;
  if (capBytes < 2 * area) return false;
  const physical = <u32>min<u64>((capBytes - 2 * area) / TB, <u64>SNAP_MAX_PHYSICAL);
  if (physical <= logical) return false; // no spare block: redirect-on-write has nowhere to go
  m.placeBlocks = <u32>(area / bs);
  m.placeB = <u32>((capBytes - area) / bs);
  m.placeA = <u32>((capBytes - 2 * area) / bs);
  store<u32>(out, logical);
  store<u32>(out + 4, physical);
  return true;
}

/** Lays a unit out for pair pi (base: the last issuing ID it applied, the copy's end); -1: none free, -2: the volume is too small. */
function takeUnit(pi: u32, port: u32): i32 {
  for (let i: u32 = 0; i < units(); i++) {
    if (meta(i).owner != 0) continue;
    const m = meta(i);
    memory.fill(metaAt(i), 0, META_BYTES);
    const g = metaAt(i) + META_MAP; // scratch for the geometry
    if (!geometry(pi, m, g)) return -2;
    const r = remote(pi);
    if (!snapLayout(unitAt(i), load<u32>(g), load<u32>(g + 4), SNAP_BLOCK_BYTES, SNAP_HOLD, SNAP_COMMAND_BYTES, r.issued)) return -2;
    m.owner = pi + 1;
    m.serial = r.serial;
    m.port = port;
    r.mode = RM_SNAPSHOT; // REMOTE STATUS on the standby says so (the CREATE does not carry the mode); kept in NV: a restart loads the image
    r.nvDue = 1;
    return <i32>i;
  }
  return -1;
}

// ---- Arrival (S580-S585) ----------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function answerPacket(port: u32, p: usize, type: u32, a: u32, offset: u32, total: u32): void { standbyAnswer(port, p, type, a, offset, total); }

/** A write or forming command of snapshot pair pi (remote/standby.ts standbyIncoming, LF_SNAPSHOT). */
export function snapLinkIncoming(port: u32, p: usize, pi: u32): void {
  const h = pkt(p);
  let i = unitOf(pi);
  if (i < 0) i = takeUnit(pi, port);
  if (i == -2) { answerPacket(port, p, LT_RECEIVED, ANSWER_INVALID, 0, 0); return; }
  if (i < 0) { answerPacket(port, p, LT_RECEIVED, ANSWER_BUSY, 0, 0); return; } // no unit free: the primary's retries decide
  const m = meta(<u32>i);
  m.port = port;
  const u = unitAt(<u32>i);
  const bs = <u64>blockSize(<u32>remote(pi).volume);
  const form = h.op == <u8>LOP_REFLECT;
  const byte = pktLba(p) * bs;
  if (!form && (byte % <u64>SNAP_BLOCK_BYTES != 0 || h.total % SNAP_BLOCK_BYTES != 0)) { answerPacket(port, p, LT_RECEIVED, ANSWER_INVALID, 0, 0); return; }
  const s = snapAccept(u, form ? <u32>SK_FORM : <u32>SK_WRITE, h.issuingId, byte / <u64>SNAP_BLOCK_BYTES, h.total / SNAP_BLOCK_BYTES); // S580
  if (s < 0) { answerPacket(port, p, LT_RECEIVED, standbyRefusal(s), 0, 0); return; }
  const sm = slotMeta(<u32>i, <u32>s);
  if (load<u32>(sm) != h.issuingId) { store<u32>(sm, h.issuingId); store<u32>(sm + 16, 0); store<u32>(sm + 20, form ? 0 : h.total); }
  // Who hears about it now (a relay gives each attempt a command identifier of its own).
  store<u16>(sm + 4, h.srcNode);
  store<u16>(sm + 6, <u16>h.srcQueue);
  store<u32>(sm + 8, h.cmdId);
  store<u32>(sm + 12, <u32>h.origin);
  if (form) return; // answered at its turn (S563 at the primary then)
  const total = load<u32>(sm + 20);
  const first = min<u32>(<u32>ctz<u32>(~load<u32>(sm + 16)) * LINK_PAYLOAD_BYTES, total);
  if (first >= total) return; // all here: answered at its turn
  answerPacket(port, p, LT_READY, ANSWER_GOOD, first, total - first); // S582: the slot is ready from the first byte missing
}

/** DATA of a snapshot pair's write (no receive context or standby entry took it). */
export function snapLinkData(port: u32, p: usize): void {
  const h = pkt(p);
  for (let i: u32 = 0; i < units(); i++) {
    if (meta(i).owner == 0) continue;
    for (let s: u32 = 0; s < SNAP_HOLD; s++) {
      const sm = slotMeta(i, s);
      if (load<u32>(sm) != h.issuingId || load<u16>(sm + 4) != h.srcNode || load<u32>(sm + 8) != h.cmdId || snapIssuing(unitAt(i), s) != h.issuingId) continue;
      const total = load<u32>(sm + 20);
      const k = standbyPacketBit(p, total);
      if (k < 0) return;
      const got = load<u32>(sm + 16);
      if ((got & (<u32>1 << k)) != 0) return; // a duplicate
      if (!snapDataIn(unitAt(i), s, h.offset, p + LINK_HEADER_BYTES, <u32>h.length)) return; // S584/S585
      store<u32>(sm + 16, got | (<u32>1 << k));
      return;
    }
  }
}

// ---- Processing in issuing-ID order (S586-S589), the image, the moves home ---------------------------

function answerSlot(i: u32, s: u32, a: u32): void {
  const sm = slotMeta(i, s);
  linkAnswer(meta(i).port, LT_RECEIVED, <u32>load<u16>(sm + 4), <u32>load<u16>(sm + 6), load<u32>(sm + 8), load<u32>(sm), load<u32>(sm + 12), a, 0, 0);
}

/** The image goes to its next place through the ordinary write path; then `after`. False: no context now (asked again). */
function writeImage(i: u32, pi: u32, after: u32): bool {
  const m = meta(i);
  const u = unitAt(i);
  const g = snapUnit(u).generation;
  const at = snapSave(u, imageA(i), imageB(i));
  const c = linkApply(m.port, pi, m.serial, TAG_IMAGE, <u32>remote(pi).volume, <u64>(at == imageA(i) ? m.placeA : m.placeB), m.placeBlocks, at);
  if (c == 0) { snapUnit(u).generation = g; return false; } // the same generation next time
  m.applying++;
  m.phase = PH_IMAGE;
  m.after = after;
  return true;
}

/** Every poll of a link port: the units fed through it go on. Returns the work done. */
export function snapLinkStep(port: u32): i32 {
  let work: i32 = 0;
  for (let i: u32 = 0; i < units(); i++) {
    const m = meta(i);
    if (m.owner == 0 || m.port != port) continue;
    const pi = m.owner - 1;
    const r = remote(pi);
    if ((r.used == 0 || r.serial != m.serial) && m.applying == 0) { m.owner = 0; continue; } // the pair went
    work += step(i, pi);
  }
  return work;
}

function step(i: u32, pi: u32): i32 {
  const m = meta(i);
  const u = unitAt(i);
  const r = remote(pi);
  const v = <u32>r.volume;
  if (m.phase == PH_LOAD) return 0; // the failover command takes it on (snapLinkFailover)
  if (m.applying != 0) {
    if ((m.phase == PH_HOME_READ || m.phase == PH_HOME_WRITE) && gNow >= m.deadline && m.homeError == 0) {
      m.homeError = 1;
      log(LOG_WARN, "remote: a move home of the snapshot standby did not end within its bound (pair, logical block)", pi, m.moveL);
    } else if (m.phase == PH_HOME_READ || m.phase == PH_HOME_WRITE) wakeAt(m.deadline);
    return 0;
  }
  if (m.phase == PH_RUNS) {
    if (m.failed != 0) { // S587 failed: not processed; the primary suspends the pair, the snapshot stays restorable
      m.phase = PH_IDLE;
      r.broken = 1;
      answerSlot(i, m.slot, ANSWER_MEDIUM);
      return 1;
    }
    if (m.runNext < m.runs) return startRun(i, pi) ? 1 : 0;
    snapDone(u, m.slot); // S588
    m.issuing = snapIssuing(u, m.slot);
    m.answer = ANSWER_GOOD;
    m.phase = PH_IDLE;
    return writeImage(i, pi, AF_ANSWER) ? 1 : retryImage(m, AF_ANSWER);
  }
  if (m.phase == PH_IMAGE) {
    m.phase = PH_IDLE;
    if (m.failed != 0) { // the image did not reach NV: what it promised is not durable
      m.failed = 0;
      r.broken = 1;
      log(LOG_WARN, "remote: the snapshot standby's image could not be written (pair, generation)", pi, snapUnit(u).generation);
      if (m.after == AF_ANSWER) answerSlot(i, m.slot, ANSWER_MEDIUM);
      if (m.after == AF_HOME) m.homeError = 1;
      m.after = 0;
      return 1;
    }
    const after = m.after;
    m.after = 0;
    if (after == AF_ANSWER) { // S589: the write (or the forming) and the table that names it are in NV
      r.issued = m.issuing;
      r.writes++;
      answerSlot(i, m.slot, m.answer);
    }
    if (after == AF_HOME) return 1 + home(i, pi);
    return 1;
  }
  if (m.phase == PH_IDLE && m.after != 0) return writeImage(i, pi, m.after) ? 1 : 0; // an image that found no context
  if (m.phase == PH_HOME_READ) { // the block is in the move buffer: to its place
    if (m.failed != 0 || m.homeError != 0) { m.homeError = 1; return 0; }
    const per = SNAP_BLOCK_BYTES / blockSize(v);
    const c = linkApply(m.port, pi, m.serial, TAG_HOME_WRITE, v, <u64>m.moveTo * <u64>per, per, moveBuffer(i));
    if (c == 0) return 0;
    m.applying++;
    m.phase = PH_HOME_WRITE;
    m.deadline = gNow + SNAP_MOVE_WAIT_NS;
    wakeAt(m.deadline);
    return 1;
  }
  if (m.phase == PH_HOME_WRITE) {
    if (m.failed != 0 || m.homeError != 0) { m.homeError = 1; return 0; }
    if (!snapHomeDone(u, m.moveL, m.moveFrom, m.moveTo)) { m.homeError = 1; return 0; }
    m.phase = PH_IDLE;
    return writeImage(i, pi, AF_HOME) ? 1 : retryImage(m, AF_HOME);
  }
  if (snapUnit(u).failedOver != 0) return snapUnit(u).homing != 0 && m.homeError == 0 ? home(i, pi) : 0;
  // S586: the command whose turn it is.
  const s = snapNext(u);
  if (s < 0) return 0;
  m.slot = <u32>s;
  if (snapKind(u, <u32>s) == <u32>SK_FORM) {
    snapForm(u); // [0255]
    snapDone(u, <u32>s);
    m.issuing = snapIssuing(u, <u32>s);
    m.answer = ANSWER_GOOD;
    return writeImage(i, pi, AF_ANSWER) ? 1 : retryImage(m, AF_ANSWER);
  }
  const blocks = snapBlocks(u, <u32>s);
  const map = metaAt(i) + META_MAP;
  const got = snapWriteMap(u, <u32>snapLba(u, <u32>s), blocks, map); // S540-S546
  if (got == SNAP_NO_SPACE) {
    log(LOG_WARN, "remote: the snapshot standby has no unused block for a write; the pair's writes are refused (pair, issuing ID)", pi, snapIssuing(u, <u32>s));
    r.broken = 1; // nothing after it may be processed: the standby stays at its restart point
    answerSlot(i, <u32>s, ANSWER_NO_SPACE);
    return 1;
  }
  if (got < 0) { r.broken = 1; answerSlot(i, <u32>s, ANSWER_INVALID); return 1; }
  m.runs = snapRuns(map, blocks, metaAt(i) + META_RUNS);
  m.runNext = 0;
  m.failed = 0;
  m.phase = PH_RUNS;
  return 1 + (startRun(i, pi) ? 1 : 0);
}

/** An image that found no context now: the step asks again (the phase stays idle with `after` set). */
function retryImage(m: SnapMeta, after: u32): i32 { m.after = after; return 1; }

/** S587: the next run of the write in slot m.slot, through the ordinary write path. False: no context now. */
function startRun(i: u32, pi: u32): bool {
  const m = meta(i);
  const v = <u32>remote(pi).volume;
  const per = SNAP_BLOCK_BYTES / blockSize(v);
  const run = metaAt(i) + META_RUNS + <usize>m.runNext * 12;
  const first = load<u32>(run), index = load<u32>(run + 4), n = load<u32>(run + 8);
  const src = snapData(unitAt(i), m.slot) + <usize>index * <usize>SNAP_BLOCK_BYTES;
  if (linkApply(m.port, pi, m.serial, TAG_RUN | m.runNext, v, <u64>first * <u64>per, n * per, src) == 0) return false;
  m.applying++;
  m.runNext++;
  return true;
}

/** The next move home: its block is read into the move buffer (a fetch context). Returns the work done. */
function home(i: u32, pi: u32): i32 {
  const m = meta(i);
  const u = unitAt(i);
  const out = metaAt(i) + META_MAP;
  if (snapHomeNext(u, out) == 0) return writeImage(i, pi, AF_END) ? 1 : retryImage(m, AF_END); // homing ends: the image says so
  const v = <u32>remote(pi).volume;
  const per = SNAP_BLOCK_BYTES / blockSize(v);
  const c = linkFetch(m.port, pi, m.serial, TAG_HOME_READ, v, <u64>load<u32>(out + 4) * <u64>per, per, moveBuffer(i));
  if (c == 0) return 0;
  m.moveL = load<u32>(out);
  m.moveFrom = load<u32>(out + 4);
  m.moveTo = load<u32>(out + 8);
  m.applying++;
  m.failed = 0;
  m.phase = PH_HOME_READ;
  m.deadline = gNow + SNAP_MOVE_WAIT_NS;
  wakeAt(m.deadline);
  return 1;
}

/** A context of the unit of pair pi (serial) ended (remote/standby.ts standbyApplyDone). */
export function snapLinkApplyDone(pi: u32, serial: u32, tag: u32, ok: bool): void {
  const i = unitOf(pi);
  if (i < 0 || meta(<u32>i).serial != serial) return;
  const m = meta(<u32>i);
  if (!ok) m.failed = 1;
  if (m.applying > 0) m.applying--;
}

/**
 * REMOTE CHANGE failover of pair pi on the secondary: 1 when its volume is at the last restart point
 * with every block at home (or the pair has no snapshot unit), 0 while the restoration's image or
 * the moves are under way (the command asks again), -1 when a move did not end within its bound or
 * failed (the command fails naming it; a later failover goes on from the table).
 */
export function snapLinkFailover(pi: u32): i32 {
  let i = unitOf(pi);
  if (i < 0) {
    const r = remote(pi);
    if (r.mode != RM_SNAPSHOT || r.role != RR_SECONDARY) return 1;
    i = loadUnit(pi); // after a restart: the unit comes back from its image first
    return i == -2 ? -2 : 0;
  }
  const m = meta(<u32>i);
  if (m.phase == PH_LOAD) {
    if (m.applying != 0) return 0;
    if (m.failed != 0 || snapLoad(unitAt(<u32>i), imageA(<u32>i), imageB(<u32>i)) == 0) { // neither place whole: not served from a guess
      log(LOG_WARN, "remote: the snapshot standby's image could not be read whole after a restart; the volume is not served (pair, failed)", pi, m.failed);
      m.owner = 0;
      return -2;
    }
    m.phase = PH_IDLE;
  }
  const u = unitAt(<u32>i);
  const s = snapUnit(u);
  if (s.failedOver == 0) {
    if (m.applying != 0 || m.phase != PH_IDLE || m.after != 0) return 0; // a write or image in flight ends first
    snapFailover(u); // [0263]: held commands dropped, the table back at the snapshot
    m.homeError = 0;
    if (!writeImage(<u32>i, pi, AF_HOME)) m.after = AF_HOME;
    return 0;
  }
  if (m.homeError != 0) {
    if (m.applying != 0) return -1;
    m.homeError = 0; // asked again: the moves go on from the table (snapHomeNext is a function of it)
    m.failed = 0;
    m.phase = PH_IDLE;
    m.after = AF_HOME;
    return -1;
  }
  if (s.homing != 0 || m.applying != 0 || m.phase != PH_IDLE || m.after != 0) return 0;
  return 1;
}

/**
 * After a restart (the units are buffer memory): pair pi's unit is laid out again and both image
 * places are read from its volume; snapLinkFailover loads the newer whole one when they are in.
 * Returns the unit, -1 when none is free or no context now (asked again), -2 when it cannot be.
 */
function loadUnit(pi: u32): i32 {
  const r = remote(pi);
  const port = linkPortToward(<u32>r.firstHop);
  if (port < 0) return -1;
  const i = takeUnit(pi, <u32>port);
  if (i < 0) return i;
  const m = meta(<u32>i);
  memory.fill(imageA(<u32>i), 0, imageBytesMax());
  memory.fill(imageB(<u32>i), 0, imageBytesMax());
  const v = <u32>r.volume;
  m.phase = PH_LOAD;
  if (linkFetch(m.port, pi, m.serial, TAG_IMAGE, v, <u64>m.placeA, m.placeBlocks, imageA(<u32>i)) != 0) m.applying++; else m.failed = 1;
  if (linkFetch(m.port, pi, m.serial, TAG_IMAGE, v, <u64>m.placeB, m.placeBlocks, imageB(<u32>i)) != 0) m.applying++; else m.failed = 1;
  return i;
}

/** At most how many moves the failover of pair pi still waits for (0: none). */
export function snapLinkHomeBound(pi: u32): u32 { const i = unitOf(pi); return i < 0 ? 0 : snapHomeBound(unitAt(<u32>i)); }

// ---- The primary -------------------------------------------------------------------------------------

/** Pair p is a snapshot pair. */
export function snapLinkPair(p: u32): bool { return remote(p).mode == RM_SNAPSHOT; }
