// The transport seam of the communication unit: the one place where the kind of a port decides how
// bytes move. The processing sequencer (sequencer.ts) knows commands, windows and status; each port
// kind knows its wire: the framed protocol (comm/framed.ts, comm/stream.ts), queue pairs
// (comm/queue.ts), iSCSI (comm/iscsi/), NBD (comm/nbd/). A new front end adds a case to each function here and
// nothing to the sequencer. docs/design-notes.md, "The transport seam", says what each promises.
import { PORT_STREAM, PORT_QUEUE, PORT_ISCSI, PORT_NBD, PORT_LINK } from "../abi";
import { CX_KIND, CX_DATA_ADDR, CX_WIN_START, WIN_RETRY, ctxBufferAddr } from "../ctx";
import { portKind } from "../channel";
import { streamReceive, streamReset } from "./stream";
import { framedData, framedWindow, framedRespond, framedDirect } from "./framed";
import { queueReceive, queueOpen, queueData, queueWindow, queueRespond, queueDirect } from "./queue";
import { iscsiOpen, iscsiClose, iscsiReceive, ISCSI_SESSION_BYTES } from "./iscsi/iscsi";
import { iscsiData, iscsiWindow, iscsiRespond, iscsiDirect, iscsiRetire } from "./iscsi/command";
import { nbdOpen, nbdClose, nbdReceive, NBD_SESSION_BYTES } from "./nbd/nbd";
import { nbdData, nbdWindow, nbdRespond, nbdDirect, nbdRetire } from "./nbd/request";
import { linkOpen, linkReceive, linkData, linkWindow, linkRespond, linkDirect, LINK_SESSION_BYTES } from "./link";

// @ts-ignore: decorator
@inline function kindOf(c: usize): u32 { return <u32>load<u8>(c + CX_KIND); }

/** Bytes of kind-specific state each session of a port of this kind keeps (channel.ts lays them out). */
export function transportSessionBytes(kind: u32): u32 {
  return kind == PORT_ISCSI ? ISCSI_SESSION_BYTES : kind == PORT_NBD ? NBD_SESSION_BYTES : kind == PORT_LINK ? LINK_SESSION_BYTES : 0;
}

/** A connection opened on the session slot: reset the kind's per-session state. */
export function transportOpen(port: u32, s: u32): void {
  const kind = portKind(port);
  if (kind == PORT_STREAM) streamReset(port, s);
  else if (kind == PORT_QUEUE) queueOpen(port, s);
  else if (kind == PORT_ISCSI) iscsiOpen(port, s);
  else if (kind == PORT_NBD) nbdOpen(port, s);
  else if (kind == PORT_LINK) linkOpen(port, s);
}

/** The connection closed (its commands are aborted already). */
export function transportClose(port: u32, s: u32): void {
  const kind = portKind(port);
  if (kind == PORT_ISCSI) iscsiClose(port, s);
  else if (kind == PORT_NBD) nbdClose(port, s);
}

/** Parses what arrived on the session and starts its commands. Returns the work done. */
export function transportReceive(port: u32, s: u32): i32 {
  const kind = portKind(port);
  if (kind == PORT_STREAM) return streamReceive(port, s);
  if (kind == PORT_QUEUE) return queueReceive(port, s);
  if (kind == PORT_ISCSI) return iscsiReceive(port, s);
  if (kind == PORT_NBD) return nbdReceive(port, s);
  if (kind == PORT_LINK) return linkReceive(port, s);
  return 0;
}

/**
 * Sends n data-in bytes from src at the command's cursor; `total` is the command's data length.
 * `final`: these bytes end the data and the command ends GOOD right after, so a transport may carry
 * the status with them (iSCSI's phase collapse). Returns the bytes taken: fewer when the way out is full.
 */
export function txData(c: usize, src: usize, n: u32, total: u32, final: bool): u32 {
  const kind = kindOf(c);
  if (kind == PORT_QUEUE) return queueData(c, src, n);
  if (kind == PORT_STREAM) return framedData(c, src, n, total);
  if (kind == PORT_ISCSI) return iscsiData(c, src, n, total, final);
  if (kind == PORT_NBD) return nbdData(c, src, n, total, final);
  if (kind == PORT_LINK) return linkData(c, src, n, total);
  return 0;
}

/**
 * Opens the data-out window [offset, offset + length) (length at most MAX_WINDOW_BYTES): the
 * transport may shorten it, sets CX_WIN_START/LEN/RECEIVED, and answers WIN_* (ctx.ts).
 */
export function windowOpen(c: usize, offset: u32, length: u32): u32 {
  const kind = kindOf(c);
  if (kind == PORT_QUEUE) return queueWindow(c, offset, length);
  if (kind == PORT_STREAM) return framedWindow(c, offset, length);
  if (kind == PORT_ISCSI) return iscsiWindow(c, offset, length);
  if (kind == PORT_NBD) return nbdWindow(c, offset, length);
  if (kind == PORT_LINK) return linkWindow(c, offset, length);
  return WIN_RETRY;
}

/** Where byte x of the command's data-out is while its window is open: windowBase(c) + x. */
export function windowBase(c: usize): usize {
  if (kindOf(c) == PORT_QUEUE) return <usize>load<u32>(c + CX_DATA_ADDR);
  return ctxBufferAddr(c) - <usize>load<u32>(c + CX_WIN_START);
}

/** Sends the command's status (and sense, residual). False when there is no room yet. */
export function txRespond(c: usize): bool {
  const kind = kindOf(c);
  if (kind == PORT_QUEUE) return queueRespond(c);
  if (kind == PORT_STREAM) return framedRespond(c);
  if (kind == PORT_ISCSI) return iscsiRespond(c);
  if (kind == PORT_NBD) return nbdRespond(c);
  if (kind == PORT_LINK) return linkRespond(c);
  return false;
}

/** A status for a command that got no context (TASK SET FULL, overlapped tag, bad entry). */
export function txDirect(port: u32, s: u32, tag: u32, peer: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const kind = portKind(port);
  if (kind == PORT_QUEUE) return queueDirect(port, s, tag, status, key, asc, ascq, expected);
  if (kind == PORT_STREAM) return framedDirect(port, s, tag, peer, status, key, asc, ascq, expected);
  if (kind == PORT_ISCSI) return iscsiDirect(port, s, tag, status, key, asc, ascq, expected);
  if (kind == PORT_NBD) return nbdDirect(port, s, tag, status, key, asc, ascq, expected);
  if (kind == PORT_LINK) return linkDirect(port, s, status, key, asc, ascq);
  return false;
}

/** The command ends, answered or aborted: what the transport keeps for it goes back. */
export function transportRetire(c: usize): void {
  const kind = kindOf(c);
  if (kind == PORT_ISCSI) iscsiRetire(c);
  else if (kind == PORT_NBD) nbdRetire(c);
}
