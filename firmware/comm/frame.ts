// Frames of the command protocol on byte streams (docs/protocol.md): SOF, a 20-byte header,
// 0-2112 payload bytes, CRC-32C over header and payload, EOF. Big-endian fields.
// This module writes frames into a session's tx ring; comm/stream.ts reads them from the rx ring.
import { ringFree, ringPublish, byteRingWrite } from "../ring";
import { crc32c } from "./crc";
import { putBe16, putBe32 } from "../util";

export const SOF_WORD: u32 = 0x5656B5BC; // bytes BC B5 56 56 read as a little-endian u32
export const EOF_WORD: u32 = 0x757595BC; // bytes BC 95 75 75
export const SOF_BYTE0: u8 = 0xBC;
export const FRAME_OVERHEAD: u32 = 32; // SOF 4 + header 20 + CRC 4 + EOF 4
export const HEADER_END: u32 = 24; // payload starts here
export const MAX_PAYLOAD: u32 = 2112;
export const MAX_FRAME: u32 = MAX_PAYLOAD + FRAME_OVERHEAD;
export const DATA_CHUNK: u32 = 2048; // data bytes per DATA_IN frame the controller sends

// Header fields, offsets from the start of the frame.
export const FH_TYPE: u32 = 4;
export const FH_FLAGS: u32 = 5;
export const FH_TAG: u32 = 6;
export const FH_SOURCE: u32 = 8;
export const FH_DESTINATION: u32 = 10;
export const FH_SEQUENCE: u32 = 12;
export const FH_LENGTH: u32 = 14;
export const FH_OFFSET: u32 = 16;
export const FH_PARAMETER: u32 = 20;

export const FT_CMD: u32 = 0x01;
export const FT_XFER_RDY: u32 = 0x02;
export const FT_DATA_OUT: u32 = 0x03;
export const FT_DATA_IN: u32 = 0x04;
export const FT_RSP: u32 = 0x05;
export const FT_REJECT: u32 = 0x06;
export const FT_PING: u32 = 0x07;
export const FT_PONG: u32 = 0x08;

export const FF_LAST: u32 = 1;
export const FF_RESET: u32 = 2; // on a PING: the host starts afresh; the session's commands are dropped before the PONG

export const RJ_BAD_CRC: u32 = 1;
export const RJ_TRUNCATED: u32 = 2;
export const RJ_OVERSIZE: u32 = 3;
export const RJ_UNKNOWN_TYPE: u32 = 4;
export const RJ_UNKNOWN_TAG: u32 = 5;
export const RJ_PROTOCOL: u32 = 6;
export const RJ_WRONG_DESTINATION: u32 = 7;

export const BROADCAST: u32 = 0xFFFF;

/**
 * Writes one frame into tx ring `tx`; `scratch` holds 24 bytes for the SOF and header.
 * The payload is read where it lies (a cache slot, a buffer) and the CRC is computed over it in
 * place: the frame's bytes are copied once, into the ring. False when the ring lacks room.
 */
export function emitFrame(
  tx: usize, scratch: usize, type: u32, flags: u32, tag: u32, source: u32, destination: u32,
  sequence: u32, offset: u32, parameter: u32, payload: usize, length: u32,
): bool {
  const total = length + FRAME_OVERHEAD;
  if (ringFree(tx) < total) return false;
  store<u32>(scratch, SOF_WORD);
  store<u8>(scratch + FH_TYPE, <u8>type);
  store<u8>(scratch + FH_FLAGS, <u8>flags);
  putBe16(scratch + FH_TAG, tag);
  putBe16(scratch + FH_SOURCE, source);
  putBe16(scratch + FH_DESTINATION, destination);
  putBe16(scratch + FH_SEQUENCE, sequence);
  putBe16(scratch + FH_LENGTH, length);
  putBe32(scratch + FH_OFFSET, offset);
  putBe32(scratch + FH_PARAMETER, parameter);
  let crc = crc32c(scratch + 4, HEADER_END - 4, 0);
  if (length > 0) crc = crc32c(payload, length, crc);
  byteRingWrite(tx, 0, scratch, HEADER_END);
  if (length > 0) byteRingWrite(tx, HEADER_END, payload, length);
  putBe32(scratch, crc);
  store<u32>(scratch + 4, EOF_WORD);
  byteRingWrite(tx, HEADER_END + length, scratch, 8);
  ringPublish(tx, total);
  return true;
}
