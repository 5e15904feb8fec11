// Receiving frames from a stream session's rx ring (docs/protocol.md). The parser works in the
// ring itself: it hunts for SOF, checks length, EOF and CRC, then hands the frame to the
// processing sequencer, copying only what must outlive the ring bytes (a CMD payload; DATA_OUT
// straight into its buffer). Every malformed frame is answered with a REJECT or skipped with a
// counted reason; nothing a peer sends can stop the session or the controller.
import {
  SES_RX, SES_TX, STAT_FRAMES_RX, STAT_FERR_BAD_CRC, STAT_FERR_TRUNCATED, STAT_FERR_OVERSIZE,
  STAT_FERR_UNKNOWN_TYPE, STAT_FERR_UNKNOWN_TAG, STAT_FERR_BAD_SOF, STAT_FERR_PROTOCOL, STAT_FERR_WRONG_DESTINATION, STAT_FRAMES_TX,
  TRACE_FRAME_ERROR,
} from "../abi";
import { ringUsed, ringFree, ringRelease, byteAt, byteRingRead, byteRingSpan } from "../ring";
import { gNow, wakeAt } from "../iop";
import { statInc, statAdd } from "../stats";
import { trace } from "../trace";
import { getBe16, getBe32 } from "../util";
import { ringCrc32c } from "./crc";
import {
  SOF_WORD, EOF_WORD, SOF_BYTE0, MAX_FRAME, MAX_PAYLOAD, FRAME_OVERHEAD, HEADER_END, FH_TYPE, FH_FLAGS, FH_TAG,
  FH_SOURCE, FH_DESTINATION, FH_LENGTH, FH_OFFSET, FT_CMD, FT_DATA_OUT, FT_PING, FT_PONG, FT_REJECT, FT_XFER_RDY,
  FT_DATA_IN, FT_RSP, RJ_BAD_CRC, RJ_TRUNCATED, RJ_OVERSIZE, RJ_UNKNOWN_TYPE, RJ_PROTOCOL,
  RJ_WRONG_DESTINATION, RJ_UNKNOWN_TAG, BROADCAST, FF_RESET, emitFrame,
} from "./frame";
import {
  sessionDesc, sessionState, portAddress, scratch, markTx, identityName, sessionRestart, SS_RX_SEEN, SS_LAST_RX_NS,
} from "../channel";
import { cmdStart } from "../sequencer";
import { dataOutFrame, dataOutCrcError, framedIdentity } from "./framed";
import { decodeLun } from "./lun";
import { TA_ACA } from "../ctx";

/** A partial frame followed by this much silence is dropped as truncated. */
export const FRAME_TIMEOUT_NS: f64 = 2e9;

const RX_HEADER: u32 = 512; // scratch offsets (emitFrame owns [0, 24), responses [64, 256)): the header being parsed
const RX_PAYLOAD: u32 = 1024; // a CMD or PING payload copied out of the ring
const TX_PAYLOAD: u32 = 3200; // a REJECT payload

export function streamReset(port: u32, s: u32): void {
  const ss = sessionState(port, s);
  store<u32>(ss + SS_RX_SEEN, 0);
  store<f64>(ss + SS_LAST_RX_NS, gNow);
}

/** Parses and handles every complete frame waiting on the session. Returns frames handled. */
export function streamReceive(port: u32, s: u32): i32 {
  const d = sessionDesc(port, s);
  const rx: usize = load<u32>(d + SES_RX);
  const tx: usize = load<u32>(d + SES_TX);
  let work: i32 = 0;
  while (true) {
    const avail = ringUsed(rx);
    if (avail == 0) { noteProgress(port, s, 0); break; }
    if (ringFree(tx) < MAX_FRAME) break; // room for any answer first: the peer reads its tx
    if (!atSof(rx, avail)) { skipToSof(rx, avail, true); continue; }
    if (avail < HEADER_END) { if (!waitMore(port, s, rx, avail)) continue; break; }
    const h = scratch() + RX_HEADER;
    byteRingRead(rx, 0, h, HEADER_END);
    const length = getBe16(h + FH_LENGTH);
    if (length > MAX_PAYLOAD) { reject(port, s, h, RJ_OVERSIZE, STAT_FERR_OVERSIZE); skipToSof(rx, avail, false); work++; continue; }
    const total = length + FRAME_OVERHEAD;
    if (avail < total) { if (!waitMore(port, s, rx, avail)) continue; break; }
    if (word(rx, HEADER_END + length + 4) != EOF_WORD) {
      reject(port, s, h, RJ_TRUNCATED, STAT_FERR_TRUNCATED);
      skipToSof(rx, avail, false);
      work++;
      continue;
    }
    if (!crcMatches(rx, length)) {
      const tag = getBe16(h + FH_TAG);
      reject(port, s, h, RJ_BAD_CRC, STAT_FERR_BAD_CRC);
      dataOutCrcError(port, s, tag);
      ringRelease(rx, total);
      work++;
      continue;
    }
    statInc(STAT_FRAMES_RX);
    handleFrame(port, s, rx, h, length);
    ringRelease(rx, total);
    noteProgress(port, s, ringUsed(rx));
    work++;
  }
  return work;
}

function atSof(rx: usize, avail: u32): bool {
  if (byteAt(rx, 0) != SOF_BYTE0) return false;
  if (avail < 4) return true; // could still become one
  return word(rx, 0) == SOF_WORD;
}

/**
 * Skips to the next SOF (or to bytes at the end that could still become one). Bytes skipped while
 * hunting are counted as bad SOF; the rest of a frame already rejected (oversize, truncated) is
 * not counted twice.
 */
function skipToSof(rx: usize, avail: u32, count: bool): void {
  let n: u32 = 1;
  while (n < avail) {
    if (byteAt(rx, n) == SOF_BYTE0 && (avail - n < 4 || word(rx, n) == SOF_WORD)) break;
    n++;
  }
  ringRelease(rx, n);
  if (count) statAdd(STAT_FERR_BAD_SOF, n);
}

// @ts-ignore: decorator
@inline function word(rx: usize, offset: u32): u32 {
  const w = scratch() + 4088;
  byteRingRead(rx, offset, w, 4);
  return load<u32>(w);
}

function crcMatches(rx: usize, length: u32): bool {
  const crc = ringCrc32c(rx, 4, HEADER_END - 4 + length, 0);
  const w = scratch() + 4088;
  byteRingRead(rx, HEADER_END + length, w, 4);
  return crc == getBe32(w);
}

/**
 * A frame is incomplete. Waits for more bytes unless the session has been silent for
 * FRAME_TIMEOUT_NS with the same bytes waiting: then they are dropped as truncated.
 * Returns true to keep waiting, false when it dropped bytes (parse again).
 */
function waitMore(port: u32, s: u32, rx: usize, avail: u32): bool {
  const ss = sessionState(port, s);
  if (load<u32>(ss + SS_RX_SEEN) != avail) { noteProgress(port, s, avail); return true; }
  const since = load<f64>(ss + SS_LAST_RX_NS);
  if (gNow - since < FRAME_TIMEOUT_NS) { wakeAt(since + FRAME_TIMEOUT_NS); return true; }
  const h = scratch() + RX_HEADER;
  memory.fill(h, 0, HEADER_END);
  byteRingRead(rx, 0, h, min<u32>(avail, HEADER_END));
  reject(port, s, h, RJ_TRUNCATED, STAT_FERR_TRUNCATED);
  ringRelease(rx, avail);
  noteProgress(port, s, 0);
  return false;
}

function noteProgress(port: u32, s: u32, avail: u32): void {
  const ss = sessionState(port, s);
  store<u32>(ss + SS_RX_SEEN, avail);
  store<f64>(ss + SS_LAST_RX_NS, gNow);
  if (avail > 0) wakeAt(gNow + FRAME_TIMEOUT_NS);
}

function handleFrame(port: u32, s: u32, rx: usize, h: usize, length: u32): void {
  const type = <u32>load<u8>(h + FH_TYPE);
  const destination = getBe16(h + FH_DESTINATION);
  if (destination != portAddress(port) && destination != BROADCAST) {
    reject(port, s, h, RJ_WRONG_DESTINATION, STAT_FERR_WRONG_DESTINATION);
    return;
  }
  const tag = getBe16(h + FH_TAG);
  if (type == FT_CMD) { command(port, s, rx, h, length); return; }
  if (type == FT_DATA_OUT) {
    const reason = dataOutFrame(port, s, tag, rx, HEADER_END, length, getBe32(h + FH_OFFSET), <u32>load<u8>(h + FH_FLAGS));
    if (reason != 0) reject(port, s, h, reason, reason == RJ_UNKNOWN_TAG ? STAT_FERR_UNKNOWN_TAG : STAT_FERR_PROTOCOL);
    return;
  }
  if (type == FT_PING) { pong(port, s, rx, h, length); return; }
  if (type == FT_PONG || type == FT_REJECT) return; // the peer's answers to us: nothing to do
  if (type == FT_XFER_RDY || type == FT_DATA_IN || type == FT_RSP) {
    reject(port, s, h, RJ_PROTOCOL, STAT_FERR_PROTOCOL);
    return;
  }
  reject(port, s, h, RJ_UNKNOWN_TYPE, STAT_FERR_UNKNOWN_TYPE);
}

/** CMD payload: LUN (8), task attribute, flags, CDB length, reserved, expected length (4), CDB. */
function command(port: u32, s: u32, rx: usize, h: usize, length: u32): void {
  const p = scratch() + RX_PAYLOAD;
  if (length < 16) { reject(port, s, h, RJ_PROTOCOL, STAT_FERR_PROTOCOL); return; }
  byteRingRead(rx, HEADER_END, p, min<u32>(length, 48));
  const cdbLen = <u32>load<u8>(p + 10);
  if (cdbLen < 6 || cdbLen > 32 || length < 16 + cdbLen) { reject(port, s, h, RJ_PROTOCOL, STAT_FERR_PROTOCOL); return; }
  const flags = <u32>load<u8>(p + 9);
  if (load<u8>(identityName(port, s)) == 0) framedIdentity(port, s, getBe16(h + FH_SOURCE));
  cmdStart(port, s, getBe16(h + FH_TAG), decodeLun(p), p + 16, cdbLen, (flags & 1) != 0, (flags & 2) != 0,
    getBe32(p + 12), 0, getBe16(h + FH_SOURCE), min<u32>(<u32>load<u8>(p + 8), TA_ACA));
}

/** Echoes a PING; one with RESET first drops every command of the session (a new initiator on the line). */
function pong(port: u32, s: u32, rx: usize, h: usize, length: u32): void {
  const reset = <u32>load<u8>(h + FH_FLAGS) & FF_RESET;
  if (reset != 0) sessionRestart(port, s);
  const p = scratch() + RX_PAYLOAD;
  byteRingRead(rx, HEADER_END, p, length);
  const tx: usize = load<u32>(sessionDesc(port, s) + SES_TX);
  if (emitFrame(tx, scratch(), FT_PONG, reset, getBe16(h + FH_TAG), portAddress(port), getBe16(h + FH_SOURCE), 0, 0, 0, p, length)) {
    markTx(port, s);
    statInc(STAT_FRAMES_TX);
  }
}

/** Answers a bad frame with REJECT (reason, and its header as received) and counts the reason. */
function reject(port: u32, s: u32, h: usize, reason: u32, stat: u32): void {
  statInc(stat);
  const tag = getBe16(h + FH_TAG);
  trace(TRACE_FRAME_ERROR, (port << 16) | s, reason, tag, 0);
  const p = scratch() + TX_PAYLOAD;
  memory.fill(p, 0, 24);
  store<u8>(p, <u8>reason);
  memory.copy(p + 4, h + 4, 20);
  const tx: usize = load<u32>(sessionDesc(port, s) + SES_TX);
  if (emitFrame(tx, scratch(), FT_REJECT, 0, tag, portAddress(port), getBe16(h + FH_SOURCE), 0, 0, 0, p, 24)) {
    markTx(port, s);
    statInc(STAT_FRAMES_TX);
  }
}
