// The framed protocol's side of the transport seam (docs/protocol.md): data-in as DATA_IN frames,
// data-out windows asked for with XFER_RDY into buffer memory, status as RSP. The receiving side,
// the frame parser, is comm/stream.ts.
import { SES_TX, STAT_FRAMES_TX } from "../abi";
import {
  CX_PORT, CX_SESSION, CX_TAG, CX_PEER, CX_TX_SEQ, CX_CURSOR, CX_STATUS, CX_LUN, CX_STATE, CX_WIN_START,
  CX_WIN_LEN, CX_WIN_RECEIVED, ST_WRITE_DATA, ST_PARAM_DATA, ctxAt, ctxBuffer, ctxBufferRelease, ctxBufferAddr,
  ctxSense, senseFixed, MAX_WINDOW_BYTES, WIN_RETRY, WIN_ASKED,
} from "../ctx";
import { sessionDesc, scratch, markTx, portAddress, responseSense, directSense, tagFind, setIdentity } from "../channel";
import { fail, ctxStep, windowData, residual, residualFlags } from "../sequencer";
import { statInc } from "../stats";
import { putBe16, putBe32, putHex } from "../util";
import { emitFrame, FT_DATA_IN, FT_RSP, FT_XFER_RDY, FF_LAST, DATA_CHUNK, RJ_UNKNOWN_TAG, RJ_PROTOCOL } from "./frame";

// @ts-ignore: decorator
@inline function txRing(port: u32, s: u32): usize { return load<u32>(sessionDesc(port, s) + SES_TX); }

/** Sends n data-in bytes from src at the context's cursor as DATA_IN frames. Returns the bytes taken (fewer: tx full). */
export function framedData(c: usize, src: usize, n: u32, total: u32): u32 {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const cursor = load<u32>(c + CX_CURSOR);
  const tx = txRing(port, s);
  let sent: u32 = 0;
  while (sent < n) {
    const chunk = min<u32>(n - sent, DATA_CHUNK);
    const last = cursor + sent + chunk == total ? FF_LAST : 0;
    const seq = <u32>load<u16>(c + CX_TX_SEQ);
    if (!emitFrame(tx, scratch(), FT_DATA_IN, last, load<u32>(c + CX_TAG), portAddress(port), load<u16>(c + CX_PEER),
      seq, cursor + sent, 0, src + sent, chunk)) break;
    store<u16>(c + CX_TX_SEQ, <u16>(seq + 1));
    statInc(STAT_FRAMES_TX);
    sent += chunk;
  }
  if (sent > 0) markTx(port, s);
  return sent;
}

/** Opens a data-out window: buffer memory for it, and an XFER_RDY naming the burst. */
export function framedWindow(c: usize, offset: u32, length: u32): u32 {
  const win = min<u32>(length, MAX_WINDOW_BYTES);
  if (!ctxBuffer(c, win, false)) return WIN_RETRY;
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const seq = <u32>load<u16>(c + CX_TX_SEQ);
  if (!emitFrame(txRing(port, s), scratch(), FT_XFER_RDY, 0, load<u32>(c + CX_TAG), portAddress(port),
    load<u16>(c + CX_PEER), seq, offset, win, 0, 0)) { ctxBufferRelease(c); return WIN_RETRY; }
  store<u16>(c + CX_TX_SEQ, <u16>(seq + 1));
  statInc(STAT_FRAMES_TX);
  markTx(port, s);
  store<u32>(c + CX_WIN_START, offset);
  store<u32>(c + CX_WIN_LEN, win);
  store<u32>(c + CX_WIN_RECEIVED, 0);
  return WIN_ASKED;
}

/** Sends the context's status (and sense) in an RSP frame. False when there is no room yet. */
export function framedRespond(c: usize): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sense = scratch() + 64;
  const senseLen = responseSense(c, sense);
  const r = residual(c);
  return respondRaw(port, s, load<u32>(c + CX_TAG), load<u16>(c + CX_PEER), load<u16>(c + CX_TX_SEQ), load<u8>(c + CX_STATUS),
    residualFlags(r), <u32>r, sense, senseLen);
}

/** A status for a command that never got a context (TASK SET FULL, overlapped tag, ...). */
export function framedDirect(port: u32, s: u32, tag: u32, peer: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const sense = scratch() + 64;
  const senseLen = directSense(sense, status, key, asc, ascq);
  return respondRaw(port, s, tag, peer, 0, status, expected > 0 ? 1 : 0, expected, sense, senseLen);
}

function respondRaw(port: u32, s: u32, tag: u32, peer: u32, seq: u32, status: u32, rflags: u32, resid: u32, sense: usize, senseLen: u32): bool {
  const payload = scratch() + 128;
  store<u8>(payload, <u8>status);
  store<u8>(payload + 1, <u8>rflags);
  putBe16(payload + 2, senseLen);
  putBe32(payload + 4, resid);
  if (senseLen > 0) memory.copy(payload + 8, sense, senseLen);
  if (!emitFrame(txRing(port, s), scratch(), FT_RSP, 0, tag, portAddress(port), peer, seq, 0, 0, payload, 8 + senseLen)) return false;
  statInc(STAT_FRAMES_TX);
  markTx(port, s);
  return true;
}

/**
 * A DATA_OUT frame for tag on the session: its payload is `length` bytes at `offset` past the
 * head of the rx ring. Returns 0, or the REJECT reason.
 */
export function dataOutFrame(port: u32, s: u32, tag: u32, rx: usize, offset: u32, length: u32, relOffset: u32, flags: u32): u32 {
  const i = tagFind(port, s, tag);
  if (i == 0) return RJ_UNKNOWN_TAG;
  const c = ctxAt(i - 1);
  const st = <u32>load<u8>(c + CX_STATE);
  if (st != ST_WRITE_DATA && st != ST_PARAM_DATA) return RJ_UNKNOWN_TAG;
  if (!windowData(c, rx, offset, length, relOffset)) {
    fail(c, 0x0B, 0x4B, 0x00);
    ctxStep(c);
    return RJ_PROTOCOL;
  }
  return 0;
}

/** A frame for tag failed its CRC: a command in its data-out phase cannot complete. */
export function dataOutCrcError(port: u32, s: u32, tag: u32): void {
  const i = tagFind(port, s, tag);
  if (i == 0) return;
  const c = ctxAt(i - 1);
  const st = <u32>load<u8>(c + CX_STATE);
  if (st != ST_WRITE_DATA && st != ST_PARAM_DATA) return;
  fail(c, 0x0B, 0x47, 0x01);
  ctxStep(c);
}

/** The framed host's identity: "framed:" and the frame address it sends from (learnt from its first command). */
export function framedIdentity(port: u32, s: u32, source: u32): void {
  const p = scratch() + 3300; // clear of the frame parser's areas (comm/stream.ts)
  store<u64>(p, 0x3A64656D617266); // "framed:"
  putHex(p + 7, source, 4);
  setIdentity(port, s, p, 11, 0);
}
