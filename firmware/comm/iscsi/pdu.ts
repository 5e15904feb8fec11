// iSCSI PDUs (RFC 7143 11): a 48-byte Basic Header Segment, optional AHS, an optional header
// digest, a data segment padded to 4 bytes and an optional data digest. Digests are CRC32C (the
// kernel's), sent least significant byte first. Fields are big-endian.
//
// PDUs leave through the session's tx ring, built in place: the BHS in scratch, the data segment
// read where it lies (a cache slot, buffer memory, the session's text area) and copied once, into
// the ring.
import { SES_TX, STAT_PDUS_TX } from "../../abi";
import { ringFree, ringPublish, byteRingWrite } from "../../ring";
import { sessionDesc, scratch, markTx, sessionOutstandingAdd, SESSION_QUEUE_DEPTH } from "../../channel";
import { statInc } from "../../stats";
import { putBe32 } from "../../util";
import { crc32c } from "../crc";
import { IscsiSession, snLess } from "./state";

export const BHS_BYTES: u32 = 48;
export const DIGEST_BYTES: u32 = 4;

// Initiator opcodes.
export const OP_NOP_OUT: u32 = 0x00;
export const OP_SCSI_COMMAND: u32 = 0x01;
export const OP_TASK_MGMT: u32 = 0x02;
export const OP_LOGIN: u32 = 0x03;
export const OP_TEXT: u32 = 0x04;
export const OP_DATA_OUT: u32 = 0x05;
export const OP_LOGOUT: u32 = 0x06;
export const OP_SNACK: u32 = 0x10;
// Target opcodes.
export const OP_NOP_IN: u32 = 0x20;
export const OP_SCSI_RESPONSE: u32 = 0x21;
export const OP_TASK_MGMT_RESPONSE: u32 = 0x22;
export const OP_LOGIN_RESPONSE: u32 = 0x23;
export const OP_TEXT_RESPONSE: u32 = 0x24;
export const OP_DATA_IN: u32 = 0x25;
export const OP_LOGOUT_RESPONSE: u32 = 0x26;
export const OP_R2T: u32 = 0x31;
export const OP_ASYNC: u32 = 0x32;
export const OP_REJECT: u32 = 0x3F;

/** The reserved tag value: no ITT (a target's ping), no TTT (unsolicited data, no answer wanted). */
export const NO_TAG: u32 = 0xFFFFFFFF;

export const IMMEDIATE: u32 = 0x40; // byte 0
export const FINAL: u32 = 0x80; // byte 1

// BHS field offsets.
export const B_OPCODE: u32 = 0;
export const B_FLAGS: u32 = 1;
export const B_AHS_LENGTH: u32 = 4;
export const B_DATA_LENGTH: u32 = 5; // 3 bytes
export const B_LUN: u32 = 8;
export const B_ITT: u32 = 16;
export const B_TTT: u32 = 20; // also a SCSI command's expected data transfer length
export const B_CMDSN: u32 = 24; // also StatSN in target PDUs
export const B_EXP_STATSN: u32 = 28; // also ExpCmdSN in target PDUs
export const B_MAX_CMDSN: u32 = 32;
export const B_DATASN: u32 = 36;
export const B_OFFSET: u32 = 40;
export const B_LENGTH: u32 = 44; // desired data transfer length (R2T), residual (responses)
export const B_CDB: u32 = 32;

// Reject reasons (RFC 7143 11.17.1).
export const REJECT_DATA_DIGEST: u32 = 0x02;
export const REJECT_PROTOCOL: u32 = 0x04;
export const REJECT_NOT_SUPPORTED: u32 = 0x05;
export const REJECT_INVALID_FIELD: u32 = 0x09;
export const REJECT_OUT_OF_RESOURCES: u32 = 0x0A; // "long operation reject": may be sent again

/** Scratch for the BHS being built: [0, 52). The receive side keeps its copy elsewhere (RX_BHS). */
// @ts-ignore: decorator
@inline export function txBhs(): usize { return scratch(); }
/** Where the receive loop copies the BHS (and AHS, header digest) of the PDU it handles. */
// @ts-ignore: decorator
@inline export function rxBhs(): usize { return scratch() + 1024; }
/** A 16-byte scratch line for digests and small values: [56, 72). */
// @ts-ignore: decorator
@inline function word(): usize { return scratch() + 56; }

// @ts-ignore: decorator
@inline export function getBe24(p: usize): u32 { return (<u32>load<u8>(p) << 16) | (<u32>load<u8>(p + 1) << 8) | <u32>load<u8>(p + 2); }
// @ts-ignore: decorator
@inline export function putBe24(p: usize, v: u32): void {
  store<u8>(p, <u8>(v >> 16));
  store<u8>(p + 1, <u8>(v >> 8));
  store<u8>(p + 2, <u8>v);
}

/** A zeroed BHS in scratch with its opcode and flags byte. */
export function bhsBegin(opcode: u32, flags: u32): usize {
  const b = txBhs();
  memory.fill(b, 0, BHS_BYTES);
  store<u8>(b + B_OPCODE, <u8>opcode);
  store<u8>(b + B_FLAGS, <u8>flags);
  return b;
}

/** A Target Transfer Tag of the session's: never 0 (our "none") nor FFFFFFFFh. */
export function newTtt(sess: IscsiSession): u32 {
  let ttt = sess.tttNext++;
  if (ttt == NO_TAG || ttt == 0) { ttt = 1; sess.tttNext = 2; }
  return ttt;
}

/** Bytes a PDU with a data segment of n bytes takes on the wire in this session. */
export function pduBytes(sess: IscsiSession, n: u32): u32 {
  let total = BHS_BYTES + ((n + 3) & ~3);
  if (sess.headerDigest != 0) total += DIGEST_BYTES;
  if (sess.dataDigest != 0 && n > 0) total += DIGEST_BYTES;
  return total;
}

/**
 * MaxCmdSN for the next PDU: ExpCmdSN - 1 + the commands the session may still start, never
 * below what was advertised before (RFC 7143 4.2.2.1: the window only opens).
 */
export function windowTop(port: u32, s: u32, sess: IscsiSession): u32 {
  const outstanding = sessionOutstandingAdd(port, s, 0);
  const credit = outstanding >= SESSION_QUEUE_DEPTH ? 0 : SESSION_QUEUE_DEPTH - outstanding;
  const top = sess.expCmdSN - 1 + credit;
  if (snLess(sess.maxCmdSN, top)) sess.maxCmdSN = top;
  return sess.maxCmdSN;
}

/**
 * Sends the BHS at b (its StatSN, ExpCmdSN and MaxCmdSN filled in here) with n bytes of data at
 * `data`. `status`: the PDU carries a status, so StatSN advances once it is sent. False, with
 * nothing sent, when the tx ring lacks room.
 */
export function pduSend(port: u32, s: u32, sess: IscsiSession, b: usize, data: usize, n: u32, status: bool): bool {
  const tx: usize = load<u32>(sessionDesc(port, s) + SES_TX);
  const total = pduBytes(sess, n);
  if (ringFree(tx) < total) return false;
  putBe24(b + B_DATA_LENGTH, n);
  putBe32(b + B_CMDSN, sess.statSN);
  putBe32(b + B_EXP_STATSN, sess.expCmdSN);
  putBe32(b + B_MAX_CMDSN, windowTop(port, s, sess));
  byteRingWrite(tx, 0, b, BHS_BYTES);
  let at = BHS_BYTES;
  const w = word();
  if (sess.headerDigest != 0) {
    store<u32>(w, crc32c(b, BHS_BYTES, 0));
    byteRingWrite(tx, at, w, DIGEST_BYTES);
    at += DIGEST_BYTES;
  }
  if (n > 0) {
    byteRingWrite(tx, at, data, n);
    at += n;
    const pad = ((n + 3) & ~3) - n;
    store<u32>(w + 4, 0);
    if (pad > 0) { byteRingWrite(tx, at, w + 4, pad); at += pad; }
    if (sess.dataDigest != 0) {
      store<u32>(w, crc32c(w + 4, pad, crc32c(data, n, 0)));
      byteRingWrite(tx, at, w, DIGEST_BYTES);
      at += DIGEST_BYTES;
    }
  }
  ringPublish(tx, total);
  if (status) sess.statSN++;
  statInc(STAT_PDUS_TX);
  markTx(port, s);
  return true;
}
