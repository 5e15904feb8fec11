// What an NBD port sends (proto.md): option replies during the handshake, simple replies and
// structured reply chunks in transmission. Each is built in scratch and copied once into the
// session's tx ring; nothing is sent unless the whole message fits (the caller waits for room).
import { SES_TX, SES_RX } from "../../abi";
import { ringFree, ringPublish, byteRingWrite } from "../../ring";
import { sessionDesc, scratch, markTx } from "../../channel";
import { putBe16, putBe32, putBe64 } from "../../util";
import { putLit } from "../iscsi/text";
import {
  OPTION_REPLY_MAGIC, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, REPLY_TYPE_ERROR,
} from "./state";

// Scratch areas (channel.ts scratch(), 4 KiB): [0, 64) headers being built, [64, 128) sense,
// [256, 320) the request or option header read, [512, 640) a name, [640, 1024) message text.
// @ts-ignore: decorator
@inline export function hdr(): usize { return scratch(); }
// @ts-ignore: decorator
@inline export function senseArea(): usize { return scratch() + 64; }
// @ts-ignore: decorator
@inline export function rxHeader(): usize { return scratch() + 256; }
// @ts-ignore: decorator
@inline export function nameArea(): usize { return scratch() + 512; }
// @ts-ignore: decorator
@inline export function textArea(): usize { return scratch() + 640; }

// @ts-ignore: decorator
@inline export function txRing(port: u32, s: u32): usize { return load<u32>(sessionDesc(port, s) + SES_TX); }
// @ts-ignore: decorator
@inline export function rxRing(port: u32, s: u32): usize { return load<u32>(sessionDesc(port, s) + SES_RX); }
export function txRoom(port: u32, s: u32): u32 { return ringFree(txRing(port, s)); }

/** Sends head (hn bytes) then body (bn bytes) as one message; false when it does not fit yet. */
export function send(port: u32, s: u32, head: usize, hn: u32, body: usize, bn: u32): bool {
  const tx = txRing(port, s);
  if (ringFree(tx) < hn + bn) return false;
  byteRingWrite(tx, 0, head, hn);
  if (bn > 0) byteRingWrite(tx, hn, body, bn);
  ringPublish(tx, hn + bn);
  markTx(port, s);
  return true;
}

/** An option reply: magic, option, reply type, length, then `n` bytes at `data`. */
export function optionReply(port: u32, s: u32, option: u32, type: u32, data: usize, n: u32): bool {
  const h = hdr();
  putBe64(h, OPTION_REPLY_MAGIC);
  putBe32(h + 8, option);
  putBe32(h + 12, type);
  putBe32(h + 16, n);
  return send(port, s, h, 20, data, n);
}

/** An option error reply with a message for the user (proto.md: error replies MAY carry one). */
export function optionError(port: u32, s: u32, option: u32, type: u32, message: string): bool {
  const t = textArea();
  return optionReply(port, s, option, type, t, putLit(t, message));
}

/** A simple reply: magic, error, handle (no data follows unless a successful read's). */
export function simpleReply(port: u32, s: u32, error: u32, handle: u64): bool {
  const h = hdr();
  putBe32(h, SIMPLE_REPLY_MAGIC);
  putBe32(h + 4, error);
  putBe64(h + 8, handle);
  return send(port, s, h, 16, 0, 0);
}

/** A structured reply chunk header at h: magic, flags, type, handle, payload length. */
export function chunkHeader(h: usize, flags: u32, type: u32, handle: u64, length: u32): void {
  putBe32(h, STRUCTURED_REPLY_MAGIC);
  putBe16(h + 4, flags);
  putBe16(h + 6, type);
  putBe64(h + 8, handle);
  putBe32(h + 16, length);
}

/** A final NBD_REPLY_TYPE_ERROR chunk: error, message length, message. */
export function errorChunk(port: u32, s: u32, handle: u64, error: u32, message: usize, n: u32): bool {
  const h = hdr();
  chunkHeader(h, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, handle, 6 + n);
  putBe32(h + 20, error);
  putBe16(h + 24, n);
  return send(port, s, h, 26, message, n);
}
