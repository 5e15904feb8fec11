// Frames as bytes, for a fuzzer that must also write the frames no encoder would: a header is put
// down field by field and a frame is closed (CRC and EOF) where it lies, at whatever length its
// bytes have, whatever its length field says. docs/protocol.md is the layout.
import { endFrame, HEADER_END, FRAME_OVERHEAD, MAX_PAYLOAD } from '../lib/protocol';

export { HEADER_END, FRAME_OVERHEAD, MAX_PAYLOAD };
export const SOF_WORD = 0xbcb55656;
export const EOF_WORD = 0xbc957575;
export const SOF_BYTE = 0xbc;

export const T = { CMD: 1, XFER_RDY: 2, DATA_OUT: 3, DATA_IN: 4, RSP: 5, REJECT: 6, PING: 7, PONG: 8 } as const;
export const R = { BAD_CRC: 1, TRUNCATED: 2, OVERSIZE: 3, UNKNOWN_TYPE: 4, UNKNOWN_TAG: 5, PROTOCOL: 6, WRONG_DESTINATION: 7 } as const;
export const REASON_NAMES: Record<number, string> = {
  1: 'BAD_CRC', 2: 'TRUNCATED', 3: 'OVERSIZE', 4: 'UNKNOWN_TYPE', 5: 'UNKNOWN_TAG', 6: 'PROTOCOL', 7: 'WRONG_DESTINATION', 8: 'PORT_FULL',
};
/** Flags bit 1 on a PING: the session's commands are dropped before the PONG, which echoes it. */
export const FLAG_RESET = 0x02;

// Header field offsets from the start of a frame.
export const H = { TYPE: 4, FLAGS: 5, TAG: 6, SOURCE: 8, DESTINATION: 10, SEQUENCE: 12, LENGTH: 14, OFFSET: 16, PARAMETER: 20 } as const;

export interface Header {
  type: number; flags: number; tag: number; source: number; destination: number; sequence: number;
  length: number; offset: number; parameter: number;
}

/** Writes SOF and header at `at`. */
export function putHeader(b: Buffer, at: number, h: Header): void {
  b.writeUInt32BE(SOF_WORD, at);
  b[at + H.TYPE] = h.type;
  b[at + H.FLAGS] = h.flags;
  b.writeUInt16BE(h.tag & 0xffff, at + H.TAG);
  b.writeUInt16BE(h.source & 0xffff, at + H.SOURCE);
  b.writeUInt16BE(h.destination & 0xffff, at + H.DESTINATION);
  b.writeUInt16BE(h.sequence & 0xffff, at + H.SEQUENCE);
  b.writeUInt16BE(h.length & 0xffff, at + H.LENGTH);
  b.writeUInt32BE(h.offset >>> 0, at + H.OFFSET);
  b.writeUInt32BE(h.parameter >>> 0, at + H.PARAMETER);
}

/** CRC over header and the `bytes` payload bytes that follow it, then EOF. Returns the end. */
export const closeFrame = endFrame;

/** The 20 header bytes of the frame at `at` (frame bytes 4-23), copied. */
export function headerBytes(b: Buffer, at: number): Buffer {
  return Buffer.from(b.subarray(at + 4, at + HEADER_END));
}

/** SAM single-level LUN as the controller decodes it (firmware/comm/stream.ts): 0xFFFF for other formats. */
export function decodeLun(b: Buffer, at: number): number {
  for (let i = 2; i < 8; i++) if (b[at + i] !== 0) return 0xffff;
  const b0 = b[at];
  if (b0 >> 6 === 0) return b0 === 0 ? b[at + 1] : 0xffff;
  if (b0 >> 6 === 1) return ((b0 & 0x3f) << 8) | b[at + 1];
  return 0xffff;
}
