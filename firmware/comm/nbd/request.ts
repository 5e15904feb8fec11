// NBD transmission (proto.md "Transmission"): each request is checked here (flags, alignment to the
// export's block size, range, size, the access list's read-only), then runs as SCSI commands of the
// export's LUN through the sequencer: READ(16), WRITE(16) with FUA, SYNCHRONIZE CACHE(16) of the
// whole volume for FLUSH, WRITE(16) of zeros made here for WRITE_ZEROES. On a thin volume, TRIM and
// WRITE_ZEROES without NO_HOLE are WRITE SAME(16) with UNMAP and NDOB: the blocks are deallocated
// (their chunks go back to the media) and read zeros. On a thick volume TRIM is a hint the array has
// no use for (its space is all allocated when it is made): it is checked as a write is and
// answered here, changing nothing (docs/nbd.md). What the sequencer
// answers becomes a simple reply, or structured reply chunks when the client negotiated them; SCSI
// sense becomes the errno proto.md names (docs/nbd.md has the table).
// A WRITE's payload follows its header in the stream: it is read into the command's data-out windows
// as they open, and read past when the command has already failed.
import {
  STAT_NBD_REQUESTS, STAT_NBD_ERRORS, TRACE_NBD_ERROR, NERR_REQUEST_MAGIC, NERR_REQUEST, NERR_READ_FAILED,
  SES_STATE, SESS_OPEN,
} from "../../abi";
import { ringUsed, ringRelease, ringFree, ringPublish, byteRingRead, byteRingWrite } from "../../ring";
import {
  CX_PORT, CX_SESSION, CX_STATE, CX_STATUS, CX_SENSE_KEY, CX_ASC, CX_ASCQ, CX_CURSOR, CX_WIN_START, CX_WIN_LEN,
  CX_WIN_RECEIVED, ST_WRITE_DATA, ST_RESPOND, MAX_WINDOW_BYTES, WIN_RETRY, WIN_ASKED, WIN_ARRIVED, TA_SIMPLE, ctxAt,
  ctxIndex, ctxAvailable, ctxBuffer,
} from "../../ctx";
import { sessionDesc, scratch, markTx, tagFind, sessionOutstandingAdd, SESSION_QUEUE_DEPTH } from "../../channel";
import { cmdBegin, cmdDispatch, cmdRearm, windowData } from "../../sequencer";
import { statInc } from "../../stats";
import { trace } from "../../trace";
import { getBe16, getBe32, getBe64, putBe32, putBe64, putHex } from "../../util";
import { putLit } from "../iscsi/text";
import {
  NbdSession, session, task, NP_CLOSING, REQUEST_MAGIC, REQUEST_BYTES, CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH,
  CMD_TRIM, CMD_WRITE_ZEROES, CMD_FLAG_FUA, CMD_FLAG_NO_HOLE, REPLY_FLAG_DONE, REPLY_TYPE_NONE,
  REPLY_TYPE_OFFSET_DATA, NBD_EPERM, NBD_EIO, NBD_EINVAL, NBD_ENOSPC, NBD_EOVERFLOW, MAX_PAYLOAD, TK_HEADER_SENT,
  TK_DONE_SENT, TK_ZEROES, TK_UNMAP, CMD_BLOCK_STATUS, CMD_FLAG_REQ_ONE, REPLY_TYPE_BLOCK_STATUS, META_ALLOCATION_ID,
  STATE_HOLE, STATE_ZERO, NbdTask,
} from "./state";
import { hdr, txRing, txRoom, simpleReply, chunkHeader, errorChunk, send, textArea } from "./wire";
import { drop } from "./nbd";
import { volumeAtLun, volumeThin, VOLE_ID } from "../../volume";
import { volumeEntry } from "../../nv";
import { accessOf, ACC_NONE, ACC_RO } from "../access";

/** Room kept in the tx ring before a request is taken: any answer made without a context fits. */
const REPLY_ROOM: u32 = 256;

const OP_READ16: u8 = 0x88;
const OP_WRITE16: u8 = 0x8A;
const OP_SYNC_CACHE16: u8 = 0x91;
const OP_WRITE_SAME16: u8 = 0x93;
const OP_SERVICE_ACTION_IN16: u8 = 0x9E;
const SA_GET_LBA_STATUS: u8 = 0x12;
/** GET LBA STATUS's allocation length for a BLOCK_STATUS: its header and 64 descriptors (scsi/thin.ts's most). */
const LBA_STATUS_BYTES: u32 = 8 + 64 * 16;

// @ts-ignore: decorator
@inline function cdbArea(): usize { return scratch() + 448; }

/** Takes the next request in, if it has all come and there is room to answer it. */
export function requestStep(port: u32, s: u32, sess: NbdSession, rx: usize): bool {
  if (ringUsed(rx) < REQUEST_BYTES || txRoom(port, s) < REPLY_ROOM || sess.txBusy != 0) return false;
  // No TASK SET FULL for NBD (it has no busy status): the stream waits instead. One place is kept
  // for a long request's next command (cmdRearm reuses its context, so none is needed from the pool).
  if (!ctxAvailable() || sessionOutstandingAdd(port, s, 0) >= SESSION_QUEUE_DEPTH) return false;
  const h = hdr() + 64;
  byteRingRead(rx, 0, h, REQUEST_BYTES);
  if (getBe32(h) != REQUEST_MAGIC) { drop(port, s, NERR_REQUEST_MAGIC, 0, getBe32(h)); return false; }
  ringRelease(rx, REQUEST_BYTES);
  statInc(STAT_NBD_REQUESTS);
  const flags = getBe16(h + 4);
  const type = getBe16(h + 6);
  const handle = getBe64(h + 8);
  const offset = getBe64(h + 16);
  const length = getBe32(h + 24);
  sess.handle = handle;
  let err = check(sess, type, flags, offset, length);
  if (err == 0 && type != CMD_DISC && !exportBound(port, sess)) err = NBD_EIO; // the export's volume is gone (deleted, unmapped)
  if (err != 0) {
    badRequest(port, s, sess, type, handle, err);
    if (type == CMD_WRITE) sess.skip = length; // its payload is read past
    return true;
  }
  if (type == CMD_DISC) { sess.phase = NP_CLOSING; return true; }
  if (length == 0 && type != CMD_FLUSH) { answer(port, s, sess, handle, 0); return true; } // proto.md: SHOULD NOT disconnect
  if (type == CMD_TRIM && !volumeThin(sess.volume)) {
    const refused = trimCheck(port, s, sess);
    if (refused != 0) badRequest(port, s, sess, type, handle, refused); else answer(port, s, sess, handle, 0);
    return true;
  }
  start(port, s, sess, type, flags, handle, offset, length);
  return true;
}

/** The errno proto.md names for a request that cannot run, or 0. */
function check(sess: NbdSession, type: u32, flags: u32, offset: u64, length: u32): u32 {
  let allowed: u32 = CMD_FLAG_FUA;
  if (type == CMD_WRITE_ZEROES) allowed |= CMD_FLAG_NO_HOLE;
  else if (type == CMD_DISC) allowed = 0;
  else if (type == CMD_BLOCK_STATUS) { if (sess.meta == 0) return NBD_EINVAL; allowed = CMD_FLAG_REQ_ONE; } // only once base:allocation is selected
  else if (type != CMD_READ && type != CMD_WRITE && type != CMD_FLUSH && type != CMD_TRIM) return NBD_EINVAL; // unknown, or not offered (CACHE)
  if ((flags & ~allowed) != 0) return NBD_EINVAL;
  if (type == CMD_DISC) return 0;
  if (type == CMD_BLOCK_STATUS && length == 0) return NBD_EINVAL;
  if (type == CMD_FLUSH) return offset != 0 || length != 0 ? NBD_EINVAL : 0;
  if ((type == CMD_READ || type == CMD_WRITE) && length > MAX_PAYLOAD) return type == CMD_READ && sess.structured != 0 ? NBD_EOVERFLOW : NBD_EINVAL;
  const bs = <u64>sess.blockSize;
  // BLOCK_STATUS may name any bytes (libnbd asks for up to 2^31 - 1): its extents begin at the offset asked for.
  if (type != CMD_BLOCK_STATUS && (offset % bs != 0 || <u64>length % bs != 0)) return NBD_EINVAL;
  const writes = type == CMD_WRITE || type == CMD_WRITE_ZEROES;
  if (offset > sess.exportBytes || <u64>length > sess.exportBytes - offset) return writes ? NBD_ENOSPC : NBD_EINVAL;
  if (sess.readOnly != 0 && type != CMD_READ && type != CMD_BLOCK_STATUS) return NBD_EPERM;
  return 0;
}

/**
 * TRIM frees nothing and writes nothing (docs/nbd.md): proto.md lets a server ignore it, and the
 * contents of the range stay what they were. It is refused as a write to the export would be now:
 * EIO when the volume is no longer this connection's (deleted, unmapped, hidden by its access
 * list), EPERM when the list made it read-only since the handshake.
 */
function trimCheck(port: u32, s: u32, sess: NbdSession): u32 {
  const mode = accessOf(sess.volume, port, s);
  return mode == ACC_NONE ? NBD_EIO : mode == ACC_RO ? NBD_EPERM : 0;
}

/**
 * Is the export's LUN still the volume the handshake bound, the same one (its VOLE_ID), not a volume
 * created since under its name at its number and LUN? NBD has no unit attention to say the LUN
 * changed (docs/scsi.md, "Unit attentions"): the connection's requests end EIO instead.
 */
function exportBound(port: u32, sess: NbdSession): bool {
  return volumeAtLun(port, sess.lun) == <i32>sess.volume && load<u32>(volumeEntry(sess.volume) + VOLE_ID) == sess.volumeId;
}

function badRequest(port: u32, s: u32, sess: NbdSession, type: u32, handle: u64, err: u32): void {
  statInc(STAT_NBD_ERRORS);
  trace(TRACE_NBD_ERROR, (port << 16) | s, NERR_REQUEST, type, err);
  answer(port, s, sess, handle, err);
}

/** A reply without data: a simple reply, or for an error a structured error chunk when negotiated. */
function answer(port: u32, s: u32, sess: NbdSession, handle: u64, err: u32): bool {
  if (err == 0 || sess.structured == 0) return simpleReply(port, s, err, handle);
  const t = textArea();
  let n = putLit(t, "sanbox: ");
  n += putLit(t + n, err == NBD_EPERM ? "read-only export" : err == NBD_EIO ? "the export is no longer there for this client"
    : err == NBD_ENOSPC ? "beyond the end of the export"
    : err == NBD_EOVERFLOW ? "longer than the maximum payload" : "invalid request (flags, type, alignment or range)");
  return errorChunk(port, s, handle, err, t, n);
}

function start(port: u32, s: u32, sess: NbdSession, type: u32, flags: u32, handle: u64, offset: u64, length: u32): void {
  let tag = sess.tagNext;
  while (tag == 0 || tagFind(port, s, tag) != 0) tag++;
  sess.tagNext = tag + 1;
  // A hole where one may be punched: WRITE SAME with UNMAP on a thin volume (TK_UNMAP).
  const unmap = volumeThin(sess.volume) && (type == CMD_TRIM || (type == CMD_WRITE_ZEROES && (flags & CMD_FLAG_NO_HOLE) == 0));
  const piece = type == CMD_WRITE_ZEROES || type == CMD_TRIM ? min<u32>(length, MAX_PAYLOAD) : length;
  const cdb = cdbArea();
  buildCdb(cdb, type, flags, offset / <u64>sess.blockSize, piece / sess.blockSize, unmap);
  const dataOut = type == CMD_WRITE || (type == CMD_WRITE_ZEROES && !unmap);
  const expected = type == CMD_BLOCK_STATUS ? LBA_STATUS_BYTES : type == CMD_FLUSH || unmap ? 0 : piece;
  if (type == CMD_WRITE) { sess.payloadTag = tag; sess.payloadLeft = length; sess.payloadAt = 0; }
  const dataIn = type == CMD_READ || type == CMD_BLOCK_STATUS;
  const c = cmdBegin(port, s, tag, sess.lun, cdb, 16, dataOut, dataIn, expected, 0, 0, TA_SIMPLE);
  if (c == 0) { // answered already (nbdDirect)
    if (type == CMD_WRITE) { sess.payloadLeft = 0; sess.skip = length; }
    return;
  }
  const t = task(c);
  t.handle = handle;
  t.type = type;
  t.cmdFlags = flags;
  t.flags = unmap ? TK_UNMAP : type == CMD_WRITE_ZEROES ? TK_ZEROES : 0;
  t.start = offset;
  t.offset = offset + <u64>piece;
  t.left = type == CMD_BLOCK_STATUS ? 0 : <u64>(length - piece);
  cmdDispatch(c);
}

function buildCdb(p: usize, type: u32, flags: u32, lba: u64, blocks: u32, unmap: bool): void {
  memory.fill(p, 0, 16);
  const fua: u8 = (flags & CMD_FLAG_FUA) != 0 ? 0x08 : 0;
  if (unmap) { store<u8>(p, OP_WRITE_SAME16); store<u8>(p + 1, 0x08 | 0x01); } // UNMAP, NDOB: no data-out
  else if (type == CMD_READ) store<u8>(p, OP_READ16);
  else if (type == CMD_BLOCK_STATUS) { // GET LBA STATUS from the first block, its 64 descriptors at most
    store<u8>(p, OP_SERVICE_ACTION_IN16);
    store<u8>(p + 1, SA_GET_LBA_STATUS);
    putBe64(p + 2, lba);
    putBe32(p + 10, LBA_STATUS_BYTES);
    return;
  }
  else if (type == CMD_WRITE || type == CMD_WRITE_ZEROES) { store<u8>(p, OP_WRITE16); store<u8>(p + 1, fua); }
  else { store<u8>(p, OP_SYNC_CACHE16); return; } // FLUSH: LBA 0, 0 blocks: the whole volume
  putBe64(p + 2, lba);
  putBe32(p + 10, blocks);
}

/** Moves WRITE payload from the rx ring into the command's open window. Returns 0 when it must wait. */
export function payloadStep(port: u32, s: u32, sess: NbdSession, rx: usize): u32 {
  const avail = ringUsed(rx);
  if (avail == 0) return 0;
  const i = tagFind(port, s, sess.payloadTag);
  const c: usize = i == 0 ? 0 : ctxAt(i - 1);
  if (c == 0 || <u32>load<u8>(c + CX_STATE) == ST_RESPOND) {
    // The write ended before its data did (refused, a fault, the data-out timeout): the rest is read past.
    sess.skip = sess.payloadLeft;
    sess.payloadLeft = 0;
    return 1;
  }
  if (<u32>load<u8>(c + CX_STATE) != ST_WRITE_DATA) return 0; // its next window is not open yet
  const room = load<u32>(c + CX_WIN_LEN) - load<u32>(c + CX_WIN_RECEIVED);
  const n = min<u32>(min<u32>(avail, room), sess.payloadLeft);
  if (n == 0) return 0;
  const at = sess.payloadAt;
  sess.payloadAt += n;
  sess.payloadLeft -= n;
  const ok = windowData(c, rx, 0, n, at); // a full window goes on to the cache at once
  ringRelease(rx, n);
  assert(ok, "nbd: payload out of step with the command's window");
  return n;
}

// ---- The transport seam (comm/transport.ts) ------------------------------------------------------------

/** Data-in: OFFSET_DATA chunks (structured), or the simple reply's header and then the data. */
export function nbdData(c: usize, src: usize, n: u32, total: u32, final: bool): u32 {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sess = session(port, s);
  const t = task(c);
  const tx = txRing(port, s);
  const room = ringFree(tx);
  const cursor = load<u32>(c + CX_CURSOR);
  const h = hdr();
  if (t.type == CMD_BLOCK_STATUS) return blockStatusChunk(port, s, t, src, n, room);
  if (sess.structured != 0) {
    if (room <= 28) return 0;
    const take = min<u32>(n, room - 28);
    const done = final && take == n;
    chunkHeader(h, done ? REPLY_FLAG_DONE : 0, REPLY_TYPE_OFFSET_DATA, t.handle, 8 + take);
    putBe64(h + 20, t.start + <u64>cursor);
    send(port, s, h, 28, src, take);
    if (done) t.flags |= TK_DONE_SENT;
    return take;
  }
  const me = ctxIndex(c) + 1;
  if (sess.txBusy != 0 && sess.txBusy != me) return 0; // another read's simple reply is going out
  let head: u32 = 0;
  if ((t.flags & TK_HEADER_SENT) == 0) {
    if (room <= 16) return 0;
    putBe32(h, 0x67446698);
    putBe32(h + 4, 0);
    putBe64(h + 8, t.handle);
    head = 16;
    t.flags |= TK_HEADER_SENT | TK_DONE_SENT; // the header said success: a later failure must close the connection
    sess.txBusy = me;
  }
  const take = min<u32>(n, room - head);
  if (head > 0) byteRingWrite(tx, 0, h, head);
  byteRingWrite(tx, head, src, take);
  ringPublish(tx, head + take);
  markTx(port, s);
  if (cursor + take == total) sess.txBusy = 0;
  return take;
}

/**
 * NBD_CMD_BLOCK_STATUS's answer from GET LBA STATUS's parameter data (all of it, `n` bytes at src,
 * in the command's buffer): one NBD_REPLY_TYPE_BLOCK_STATUS chunk for base:allocation, an extent per
 * descriptor (mapped: flags 0; deallocated: NBD_STATE_HOLE | NBD_STATE_ZERO, as LBPRZ says), cut at
 * the end of the range asked for, and one extent only with NBD_CMD_FLAG_REQ_ONE. The extents are
 * written over the descriptors (each 8 bytes where the descriptor had 16). 0 until the chunk fits.
 */
function blockStatusChunk(port: u32, s: u32, t: NbdTask, src: usize, n: u32, room: u32): u32 {
  const descriptors: u32 = n < 8 ? 0 : (n - 8) / 16;
  if (room < 24 + descriptors * 8) return 0;
  const bs = <u64>session(port, s).blockSize;
  const end = t.offset; // the request's offset + length
  let at = t.start;
  let extents: u32 = 0;
  for (let i: u32 = 0; i < descriptors && at < end; i++) {
    const r = src + 8 + i * 16;
    const lba = getBe64(r);
    const blocks = <u64>getBe32(r + 8);
    const deallocated = (load<u8>(r + 12) & 0x0F) == 1;
    const stop = min<u64>((lba + blocks) * bs, end);
    if (stop <= at) break;
    const e = src + 4 + extents * 8;
    putBe32(e, <u32>(stop - at));
    putBe32(e + 4, deallocated ? STATE_HOLE | STATE_ZERO : 0);
    extents++;
    at = stop;
    if ((t.cmdFlags & CMD_FLAG_REQ_ONE) != 0) break;
  }
  putBe32(src, META_ALLOCATION_ID);
  const h = hdr();
  chunkHeader(h, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, t.handle, 4 + extents * 8);
  send(port, s, h, 20, src, 4 + extents * 8);
  t.flags |= TK_DONE_SENT;
  return n;
}

/** A data-out window: zeros made here (WRITE_ZEROES), or buffer memory for the payload to come. */
export function nbdWindow(c: usize, offset: u32, length: u32): u32 {
  const win = min<u32>(length, MAX_WINDOW_BYTES);
  const zeroes = (task(c).flags & TK_ZEROES) != 0;
  if (!ctxBuffer(c, win, zeroes)) return WIN_RETRY;
  store<u32>(c + CX_WIN_START, offset);
  store<u32>(c + CX_WIN_LEN, win);
  store<u32>(c + CX_WIN_RECEIVED, zeroes ? win : 0);
  return zeroes ? WIN_ARRIVED : WIN_ASKED;
}

/** The command's status as the reply; a long request's next command instead while it goes well. */
export function nbdRespond(c: usize): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sess = session(port, s);
  const t = task(c);
  const status = <u32>load<u8>(c + CX_STATUS);
  if (status == 0) {
    if (t.left > 0) { nextPiece(c, sess); return false; }
    if ((t.flags & TK_DONE_SENT) != 0) return true;
    if (sess.structured != 0 && t.type == CMD_READ) {
      const h = hdr();
      chunkHeader(h, REPLY_FLAG_DONE, REPLY_TYPE_NONE, t.handle, 0);
      return send(port, s, h, 20, 0, 0);
    }
    return sess.txBusy == 0 && simpleReply(port, s, 0, t.handle);
  }
  const err = errnoOf(c, t.type);
  if (sess.structured == 0) {
    if ((t.flags & TK_HEADER_SENT) != 0) { drop(port, s, NERR_READ_FAILED, t.type, <u32>t.handle); return true; }
    return sess.txBusy == 0 && simpleReply(port, s, err, t.handle);
  }
  const m = textArea();
  let n = putLit(m, "sanbox: SCSI status ");
  putHex(m + n, status, 2);
  n += 2;
  if (status == 0x02) {
    n += putLit(m + n, ", sense ");
    putHex(m + n, <u32>load<u8>(c + CX_SENSE_KEY), 1);
    store<u8>(m + n + 1, 0x2F);
    putHex(m + n + 2, <u32>load<u8>(c + CX_ASC), 2);
    store<u8>(m + n + 4, 0x2F);
    putHex(m + n + 5, <u32>load<u8>(c + CX_ASCQ), 2);
    n += 7;
  }
  return errorChunk(port, s, t.handle, err, m, n);
}

function nextPiece(c: usize, sess: NbdSession): void {
  const t = task(c);
  const piece = <u32>min<u64>(t.left, <u64>MAX_PAYLOAD);
  const cdb = cdbArea();
  const unmap = (t.flags & TK_UNMAP) != 0;
  buildCdb(cdb, t.type, t.cmdFlags, t.offset / <u64>sess.blockSize, piece / sess.blockSize, unmap);
  t.offset += <u64>piece;
  t.left -= <u64>piece;
  cmdRearm(c, cdb, 16, unmap ? 0 : piece);
}

/**
 * proto.md's errno for a SCSI outcome: SPACE ALLOCATION FAILED (a thin volume's media full) is ENOSPC;
 * other DATA PROTECT and RESERVATION CONFLICT are EPERM; LBA out of
 * range is ENOSPC for a write, EINVAL otherwise; other ILLEGAL REQUESTs EINVAL, except a LUN that
 * went away (deleted, access withdrawn) and everything else (medium, NV, not ready, aborted): EIO.
 */
function errnoOf(c: usize, type: u32): u32 {
  const status = <u32>load<u8>(c + CX_STATUS);
  if (status == 0x18) return NBD_EPERM;
  if (status != 0x02) return NBD_EIO;
  return senseErrno(<u32>load<u8>(c + CX_SENSE_KEY), <u32>load<u8>(c + CX_ASC), <u32>load<u8>(c + CX_ASCQ), type == CMD_WRITE || type == CMD_WRITE_ZEROES);
}

function senseErrno(key: u32, asc: u32, ascq: u32, writes: bool): u32 {
  if (key == 0x07 && asc == 0x27 && ascq == 0x07) return NBD_ENOSPC; // SPACE ALLOCATION FAILED: a thin volume's media are full
  if (key == 0x07) return NBD_EPERM;
  if (key != 0x05) return NBD_EIO;
  if (asc == 0x21) return writes ? NBD_ENOSPC : NBD_EINVAL;
  return asc == 0x25 ? NBD_EIO : NBD_EINVAL;
}

/** A status for a request that got no context (cmdBegin refused it): for the request being taken in. */
export function nbdDirect(port: u32, s: u32, tag: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const sess = session(port, s);
  const err = status == 0x02 ? senseErrno(key, asc, ascq, false) : status == 0x18 ? NBD_EPERM : NBD_EIO;
  return answer(port, s, sess, sess.handle, err);
}

/** A read whose simple reply was half sent ends without the rest: the stream cannot go on. */
export function nbdRetire(c: usize): void {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sess = session(port, s);
  if (sess.txBusy != ctxIndex(c) + 1) return;
  sess.txBusy = 0;
  if (atomic.load<u32>(sessionDesc(port, s) + SES_STATE) == SESS_OPEN) drop(port, s, NERR_READ_FAILED, CMD_READ, <u32>task(c).handle);
}
