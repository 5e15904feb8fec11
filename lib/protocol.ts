// The frame codec of the command protocol on byte streams (docs/protocol.md, normative; pinned by
// test/golden/frames.json). Both ends use it: the host's FramedTransport, and test targets that
// play the array. The firmware's own side is firmware/comm/; the two must agree byte for byte.
//
// Frames are encoded in place into the caller's Buffer (encodeFrameInto, or beginFrame/endFrame
// around a payload written there) and checked where they lie (frameCrc). The decoder hunts for
// SOF with Buffer.indexOf and hands out frames in place (feed: views, no copy) or as frames of
// their own (push: the payload copied once); it never stops on bad input, it reports it: every
// malformed frame becomes a counted DecodeError, as the controller counts them.

import { Kernels } from './kernels';

export const SOF = Buffer.from([0xbc, 0xb5, 0x56, 0x56]);
export const EOF = Buffer.from([0xbc, 0x95, 0x75, 0x75]);
const SOF_BYTE = SOF[0];
const SOF_WORD = SOF.readUInt32BE(0);
const EOF_WORD = EOF.readUInt32BE(0);
export const HEADER_END = 24; // SOF 4 + header 20: where the payload starts
export const FRAME_OVERHEAD = 32; // SOF, header, CRC, EOF
export const MAX_PAYLOAD = 2112;
export const MAX_FRAME = MAX_PAYLOAD + FRAME_OVERHEAD;
/** Data bytes per DATA_IN frame the controller sends. */
export const DATA_IN_CHUNK = 2048;
export const BROADCAST = 0xffff;
/** The source address the client library uses unless told otherwise. */
export const HOST_ADDRESS = 0x0100;
/** The controller port address a topology gives by default. */
export const ARRAY_ADDRESS = 0x0001;
export const FLAG_LAST = 0x01;
/** On a PING: the host starts afresh; the array drops the session's commands before it answers (echoed on the PONG). */
export const FLAG_RESET = 0x02;
/** Bytes of data-out the controller asks for at most in one XFER_RDY burst. */
export const MAX_BURST = 256 * 1024;

export const FrameType = {
  CMD: 0x01,
  XFER_RDY: 0x02,
  DATA_OUT: 0x03,
  DATA_IN: 0x04,
  RSP: 0x05,
  REJECT: 0x06,
  PING: 0x07,
  PONG: 0x08,
} as const;
export type FrameTypeName = keyof typeof FrameType;

export const RejectReason = {
  BAD_CRC: 1,
  TRUNCATED: 2,
  OVERSIZE: 3,
  UNKNOWN_TYPE: 4,
  UNKNOWN_TAG: 5,
  PROTOCOL: 6,
  WRONG_DESTINATION: 7,
  PORT_FULL: 8,
} as const;
export type RejectReasonName = keyof typeof RejectReason;

export function frameTypeName(type: number): FrameTypeName | undefined {
  return nameOf(FrameType, type);
}

export function rejectReasonName(reason: number): RejectReasonName | undefined {
  return nameOf(RejectReason, reason);
}

function nameOf<K extends string>(table: Record<K, number>, value: number): K | undefined {
  return (Object.keys(table) as K[]).find((k) => table[k] === value);
}

/** The 20-byte header, less `length` (the payload's length). */
export interface FrameHeader {
  type: number;
  flags: number;
  tag: number;
  source: number;
  destination: number;
  sequence: number;
  offset: number;
  parameter: number;
}

export interface Frame extends FrameHeader {
  payload: Buffer;
}

// ---- CRC ------------------------------------------------------------------------------------------

// Short frames (CMD, RSP, XFER_RDY: up to JS_CRC_MAX_BYTES from type to the end of the payload)
// are done here by slicing-by-8: handing bytes to the wasm kernel costs more than their CRC
// (measured: 54 bytes 80 ns here against 255 ns copied into the kernel memory and the kernel
// called; 256 bytes 330 against 414 ns). Longer ones (DATA_IN, DATA_OUT) go to the firmware's own
// kernel (lib/kernels.ts, loaded synchronously on first use): 2072 bytes in 1.45 us with the copy,
// against 2.1 us for this loop.

const JS_CRC_MAX_BYTES = 256;
const CASTAGNOLI_REFLECTED = 0x82f63b78;

/** Slice s of the slicing-by-8 table at [256 s, 256 s + 256). */
const CRC_SLICES = ((): Int32Array => {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REFLECTED : c >>> 1;
    t[b] = c;
  }
  for (let i = 256; i < t.length; i++) t[i] = (t[i - 256] >>> 8) ^ t[t[i - 256] & 0xff];
  return t;
})();

let kernels: Kernels | undefined;

/** CRC-32C (Castagnoli) of data. */
export function crc32c(data: Uint8Array): number {
  return frameCrc(data, 0, data.length);
}

/** CRC-32C of b[start, end), where it lies. */
export function frameCrc(b: Uint8Array, start: number, end: number): number {
  if (end - start > JS_CRC_MAX_BYTES) {
    kernels ??= Kernels.load({ initialPages: 1 });
    return kernels.crc32c(b.subarray(start, end));
  }
  return scriptCrc(b, start, end);
}

/**
 * CRC-32C of b[start, end) by this loop alone, whatever the length: code apart from the firmware's
 * kernel, for a peer that checks the firmware's CRCs (host/iscsi.ts's digests).
 */
export function scriptCrc(b: Uint8Array, start = 0, end = b.length): number {
  const t = CRC_SLICES;
  let crc = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = crc ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
    crc = t[1792 + (low & 0xff)] ^ t[1536 + ((low >>> 8) & 0xff)] ^ t[1280 + ((low >>> 16) & 0xff)] ^ t[1024 + (low >>> 24)]
      ^ t[768 + b[i + 4]] ^ t[512 + b[i + 5]] ^ t[256 + b[i + 6]] ^ t[b[i + 7]];
  }
  for (; i < end; i++) crc = (crc >>> 8) ^ t[(crc ^ b[i]) & 0xff];
  return ~crc >>> 0;
}

// ---- Encoding -------------------------------------------------------------------------------------

/** One frame as a new Buffer of 32 + payload.length bytes. */
export function encodeFrame(header: FrameHeader, payload: Uint8Array = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_OVERHEAD + payload.length);
  encodeFrameInto(frame, 0, header, payload);
  return frame;
}

/** Writes one frame into target at `at`; returns the offset just past it. */
export function encodeFrameInto(target: Buffer, at: number, header: FrameHeader, payload: Uint8Array = EMPTY): number {
  beginFrame(target, at, header, payload.length);
  target.set(payload, at + HEADER_END);
  return endFrame(target, at, payload.length);
}

/**
 * Writes the SOF and header of a frame at `at` whose `length` payload bytes the caller puts at
 * at + HEADER_END, then closes with endFrame: frames encoded in place, without a payload Buffer.
 */
export function beginFrame(target: Buffer, at: number, header: FrameHeader, length: number): void {
  if (length > MAX_PAYLOAD) throw new RangeError(`frame payload of ${length} bytes exceeds ${MAX_PAYLOAD}`);
  target.writeUInt32BE(SOF_WORD, at);
  writeHeader(target, at + 4, header, length);
}

/** Writes the CRC and EOF of the frame begun at `at` with `length` payload bytes; returns the offset past it. */
export function endFrame(target: Buffer, at: number, length: number): number {
  const end = at + HEADER_END + length;
  target.writeUInt32BE(frameCrc(target, at + 4, end), end);
  target.writeUInt32BE(EOF_WORD, end + 4);
  return end + 8;
}

/** The 20 header bytes (frame bytes 4-23) of a header with a payload of `length` bytes. */
export function encodeHeader(header: FrameHeader, length: number): Buffer {
  const b = Buffer.alloc(20);
  writeHeader(b, 0, header, length);
  return b;
}

function writeHeader(b: Buffer, at: number, h: FrameHeader, length: number): void {
  b[at] = h.type;
  b[at + 1] = h.flags;
  b.writeUInt16BE(h.tag, at + 2);
  b.writeUInt16BE(h.source, at + 4);
  b.writeUInt16BE(h.destination, at + 6);
  b.writeUInt16BE(h.sequence, at + 8);
  b.writeUInt16BE(length, at + 10);
  b.writeUInt32BE(h.offset, at + 12);
  b.writeUInt32BE(h.parameter, at + 16);
}

/** Parses 20 header bytes (frame bytes 4-23); `length` is the payload length they announce. */
export function decodeHeader(b: Uint8Array): FrameHeader & { length: number } {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return {
    type: v[0],
    flags: v[1],
    tag: v.readUInt16BE(2),
    source: v.readUInt16BE(4),
    destination: v.readUInt16BE(6),
    sequence: v.readUInt16BE(8),
    length: v.readUInt16BE(10),
    offset: v.readUInt32BE(12),
    parameter: v.readUInt32BE(16),
  };
}

const EMPTY = Buffer.alloc(0);

// ---- Decoding -------------------------------------------------------------------------------------

export type DecodeErrorKind = 'badCrc' | 'truncated' | 'oversize' | 'unknownType' | 'badSof';

export interface DecodeError {
  error: DecodeErrorKind;
  /** The offending header bytes (frame bytes 4-23) as received, zero-filled where missing; absent for badSof. */
  header?: Buffer;
  /** Bytes dropped: the whole frame for badCrc and unknownType, the skipped bytes for badSof, 1 otherwise. */
  bytes: number;
}

export type DecodeEvent = Frame | DecodeError;

export function isDecodeError(e: DecodeEvent): e is DecodeError {
  return 'error' in e;
}

/**
 * A frame as the decoder found it, in place: the header's fields, and the payload as
 * bytes[payloadAt, payloadAt + length). Valid only during the sink's call (the bytes are the
 * chunk being fed or the decoder's own buffer, and the object itself is reused): copy what must
 * outlive it (copyFrame).
 */
export interface FrameView extends FrameHeader {
  bytes: Buffer;
  payloadAt: number;
  length: number;
}

/** Where FrameDecoder.feed delivers, in stream order. */
export interface FrameSink {
  frame(f: FrameView): void;
  error(e: DecodeError): void;
}

/** A Frame of its own (payload copied) from a view. */
export function copyFrame(f: FrameView): Frame {
  return {
    type: f.type, flags: f.flags, tag: f.tag, source: f.source, destination: f.destination, sequence: f.sequence,
    offset: f.offset, parameter: f.parameter, payload: Buffer.from(f.bytes.subarray(f.payloadAt, f.payloadAt + f.length)),
  };
}

/**
 * A streaming frame parser with the controller's rules (firmware/comm/stream.ts): bytes before a
 * SOF are skipped and counted; a length over 2112 is OVERSIZE and a missing EOF is TRUNCATED, both
 * dropping one byte and hunting for the next SOF; a bad CRC or a reserved type drops the frame.
 * Frames may arrive split at any byte boundary.
 *
 * It parses in place: frames inside a chunk are handed out as views of it; only a frame split
 * between chunks is assembled, in a buffer of the decoder's own, from its held head and at most
 * MAX_FRAME bytes of the next chunk — never a chunk copied whole.
 */
export class FrameDecoder {
  readonly counts: Record<DecodeErrorKind, number> = { badCrc: 0, truncated: 0, oversize: 0, unknownType: 0, badSof: 0 };
  /** An incomplete frame's bytes (< MAX_FRAME), then room for the MAX_FRAME that complete any frame. */
  private readonly held = Buffer.alloc(2 * MAX_FRAME);
  private heldBytes = 0;
  private readonly view: FrameView = {
    type: 0, flags: 0, tag: 0, source: 0, destination: 0, sequence: 0, offset: 0, parameter: 0, bytes: EMPTY, payloadAt: 0, length: 0,
  };
  private feeding = false;

  /** Bytes held while a frame is incomplete. */
  get buffered(): number {
    return this.heldBytes;
  }

  /** Feeds bytes; returns the frames (payloads copied) and errors they complete, in stream order. */
  push(chunk: Uint8Array): DecodeEvent[] {
    const events: DecodeEvent[] = [];
    this.feed(chunk, { frame: (f) => events.push(copyFrame(f)), error: (e) => events.push(e) });
    return events;
  }

  /**
   * Feeds bytes; the frames and errors they complete go to the sink as they are parsed, frames as
   * views valid during the call only. The sink must not feed this decoder again.
   */
  feed(chunk: Uint8Array, sink: FrameSink): void {
    if (this.feeding) throw new Error('FrameDecoder.feed re-entered from its sink');
    this.feeding = true;
    try {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let at = this.heldBytes > 0 ? this.completeHeld(buf, sink) : 0;
      if (at < 0) return;
      while (at < buf.length) {
        const step = this.next(buf, at, buf.length, sink);
        if (step === 0) break;
        at += step;
      }
      // Keep only the unparsed tail (copied: the chunk may be reused by its owner).
      if (at < buf.length) this.heldBytes = buf.copy(this.held, 0, at);
    } finally {
      this.feeding = false;
    }
  }

  /**
   * Parses the held bytes joined by the head of `chunk`: MAX_FRAME bytes more complete any frame
   * that starts in them. Returns where parsing goes on in the chunk, or -1 when the chunk was all
   * taken and is still not enough.
   */
  private completeHeld(chunk: Buffer, sink: FrameSink): number {
    const held = this.heldBytes;
    const end = held + chunk.copy(this.held, held, 0, Math.min(chunk.length, MAX_FRAME));
    let at = 0;
    while (at < held) {
      const step = this.next(this.held, at, end, sink);
      if (step === 0) {
        this.held.copyWithin(0, at, end);
        this.heldBytes = end - at;
        return -1;
      }
      at += step;
    }
    this.heldBytes = 0;
    return at - held;
  }

  /** The stream ended or went silent: whatever is held is a truncated frame. */
  flush(): DecodeEvent[] {
    if (this.heldBytes === 0) return [];
    const header = Buffer.alloc(20);
    this.held.copy(header, 0, 4, Math.max(4, Math.min(this.heldBytes, HEADER_END)));
    const error: DecodeError = { error: 'truncated', header, bytes: this.heldBytes };
    this.counts.truncated++;
    this.heldBytes = 0;
    return [error];
  }

  /** Parses at `at` (bytes up to `end`): returns the bytes consumed, or 0 when it needs more input. */
  private next(buf: Buffer, at: number, end: number, sink: FrameSink): number {
    const avail = end - at;
    if (buf[at] !== SOF_BYTE || (avail >= 4 && buf.readUInt32BE(at) !== SOF_WORD)) {
      let found = buf.indexOf(SOF_BYTE, at + 1);
      if (found < 0 || found > end) found = end;
      const skipped = found - at;
      this.counts.badSof += skipped;
      sink.error({ error: 'badSof', bytes: skipped });
      return skipped;
    }
    if (avail < HEADER_END) return 0;
    const length = buf.readUInt16BE(at + 14);
    if (length > MAX_PAYLOAD) return this.fail(sink, 'oversize', buf, at, 1);
    const total = length + FRAME_OVERHEAD;
    if (avail < total) return 0;
    const crcAt = at + HEADER_END + length;
    if (buf.readUInt32BE(crcAt + 4) !== EOF_WORD) return this.fail(sink, 'truncated', buf, at, 1);
    if (frameCrc(buf, at + 4, crcAt) !== buf.readUInt32BE(crcAt)) return this.fail(sink, 'badCrc', buf, at, total);
    const type = buf[at + 4];
    if (type < FrameType.CMD || type > FrameType.PONG) return this.fail(sink, 'unknownType', buf, at, total);
    const v = this.view;
    v.type = type;
    v.flags = buf[at + 5];
    v.tag = buf.readUInt16BE(at + 6);
    v.source = buf.readUInt16BE(at + 8);
    v.destination = buf.readUInt16BE(at + 10);
    v.sequence = buf.readUInt16BE(at + 12);
    v.offset = buf.readUInt32BE(at + 16);
    v.parameter = buf.readUInt32BE(at + 20);
    v.bytes = buf;
    v.payloadAt = at + HEADER_END;
    v.length = length;
    sink.frame(v);
    return total;
  }

  /** Reports the frame at `at` (its header copied) as `error`; returns the bytes to drop. */
  private fail(sink: FrameSink, error: DecodeErrorKind, buf: Buffer, at: number, bytes: number): number {
    this.counts[error]++;
    sink.error({ error, header: Buffer.from(buf.subarray(at + 4, at + HEADER_END)), bytes });
    return bytes;
  }
}

// ---- CMD payload ------------------------------------------------------------------------------------

export const TaskAttributeCode = { simple: 0, headOfQueue: 1, ordered: 2 } as const;
export type TaskAttributeName = keyof typeof TaskAttributeCode;

export interface CommandDescriptor {
  lun: number;
  taskAttribute: TaskAttributeName;
  dataOut: boolean;
  dataIn: boolean;
  /** Expected data transfer length in bytes. */
  expectedLength: number;
  cdb: Buffer;
}

export const MAX_LUN = 16383;

/** SAM single-level LUN: peripheral addressing below 256, flat space up to 16383. */
export function encodeLun(lun: number): Buffer {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) throw new RangeError(`LUN must be 0-${MAX_LUN}, got ${lun}`);
  const b = Buffer.alloc(8);
  if (lun < 256) b[1] = lun;
  else b.writeUInt16BE(0x4000 | lun, 0);
  return b;
}

/** The LUN of an 8-byte SAM LUN field, or -1 for a format this protocol does not carry. */
export function decodeLun(b: Uint8Array): number {
  if (b.subarray(2, 8).some((x) => x !== 0)) return -1;
  const method = b[0] >> 6;
  if (method === 0) return b[0] === 0 ? b[1] : -1;
  if (method === 1) return ((b[0] & 0x3f) << 8) | b[1];
  return -1;
}

/** A command descriptor to encode: the CDB may be any Uint8Array. */
export type CommandFields = Omit<CommandDescriptor, 'cdb'> & { cdb: Uint8Array };

export function encodeCommand(c: CommandFields): Buffer {
  const b = Buffer.alloc(16 + c.cdb.length);
  encodeCommandInto(b, 0, c);
  return b;
}

/** Throws RangeError for a CDB length outside 6-32 or a LUN outside 0-16383, as encoding would. */
export function checkCommand(c: CommandFields): void {
  if (c.cdb.length < 6 || c.cdb.length > 32) throw new RangeError(`CDB length must be 6-32, got ${c.cdb.length}`);
  if (!Number.isInteger(c.lun) || c.lun < 0 || c.lun > MAX_LUN) throw new RangeError(`LUN must be 0-${MAX_LUN}, got ${c.lun}`);
}

/**
 * Writes the CMD payload (16 + CDB length bytes) at `at`; returns its length. Checks the command
 * (checkCommand) before writing anything.
 */
export function encodeCommandInto(b: Buffer, at: number, c: CommandFields): number {
  checkCommand(c);
  const { lun, cdb } = c;
  b.fill(0, at, at + 16);
  if (lun < 256) b[at + 1] = lun;
  else b.writeUInt16BE(0x4000 | lun, at);
  b[at + 8] = TaskAttributeCode[c.taskAttribute];
  b[at + 9] = (c.dataOut ? 1 : 0) | (c.dataIn ? 2 : 0);
  b[at + 10] = cdb.length;
  b.writeUInt32BE(c.expectedLength, at + 12);
  b.set(cdb, at + 16);
  return 16 + cdb.length;
}

/** A CMD payload, or null when it breaks the rules (the controller's PROTOCOL reject). */
export function decodeCommand(p: Buffer): CommandDescriptor | null {
  if (p.length < 16) return null;
  const cdbLength = p[10];
  const taskAttribute = nameOf(TaskAttributeCode, p[8]);
  if (cdbLength < 6 || cdbLength > 32 || p.length < 16 + cdbLength || taskAttribute === undefined) return null;
  return {
    lun: decodeLun(p.subarray(0, 8)),
    taskAttribute,
    dataOut: (p[9] & 1) !== 0,
    dataIn: (p[9] & 2) !== 0,
    expectedLength: p.readUInt32BE(12),
    cdb: Buffer.from(p.subarray(16, 16 + cdbLength)),
  };
}

// ---- RSP payload ----------------------------------------------------------------------------------

export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
} as const;

export interface Response {
  status: number;
  underflow: boolean;
  overflow: boolean;
  /** Residual count in bytes. */
  residual: number;
  sense: Buffer;
}

export function encodeResponse(r: Response): Buffer {
  const b = Buffer.alloc(8 + r.sense.length);
  b[0] = r.status;
  b[1] = (r.underflow ? 1 : 0) | (r.overflow ? 2 : 0);
  b.writeUInt16BE(r.sense.length, 2);
  b.writeUInt32BE(r.residual, 4);
  r.sense.copy(b, 8);
  return b;
}

/** An RSP payload, or null when it is too short for what it announces. */
export function decodeResponse(p: Buffer): Response | null {
  return decodeResponseAt(p, 0, p.length);
}

/** The RSP payload of `length` bytes at `at` in b (a frame in place); the sense is copied out. */
export function decodeResponseAt(b: Buffer, at: number, length: number): Response | null {
  if (length < 8) return null;
  const senseLength = b.readUInt16BE(at + 2);
  if (length < 8 + senseLength) return null;
  return {
    status: b[at],
    underflow: (b[at + 1] & 1) !== 0,
    overflow: (b[at + 1] & 2) !== 0,
    residual: b.readUInt32BE(at + 4),
    sense: senseLength > 0 ? Buffer.from(b.subarray(at + 8, at + 8 + senseLength)) : EMPTY,
  };
}

// ---- REJECT payload -------------------------------------------------------------------------------

export interface Reject {
  reason: number;
  /** The offending frame's header bytes 4-23 as received (zeros where not received). */
  header: Buffer;
  /** Words for the user after the header (UTF-8), e.g. why a connection was refused. */
  text?: string;
}

/** Bytes of text a REJECT carries at most: the rest of the largest payload. */
export const MAX_REJECT_TEXT = MAX_PAYLOAD - 24;

export function encodeReject(r: Reject): Buffer {
  const text = r.text === undefined ? EMPTY : Buffer.from(r.text, 'utf8').subarray(0, MAX_REJECT_TEXT);
  const b = Buffer.alloc(24 + text.length);
  b[0] = r.reason;
  r.header.copy(b, 4, 0, 20);
  text.copy(b, 24);
  return b;
}

export function decodeReject(p: Buffer): Reject | null {
  if (p.length < 24) return null;
  const r: Reject = { reason: p[0], header: Buffer.from(p.subarray(4, 24)) };
  if (p.length > 24) r.text = p.subarray(24).toString('utf8');
  return r;
}
