// The frame codec of the command protocol on byte streams (docs/protocol.md, normative; pinned by
// test/golden/frames.json). Both ends use it: the host's FramedTransport, and test targets that
// play the array. The firmware's own side is firmware/comm/; the two must agree byte for byte.
//
// Frames are encoded whole into one Buffer and checked with the CRC-32C kernel (lib/kernels.ts,
// loaded synchronously once per process on first use). The decoder hunts for SOF with
// Buffer.indexOf and copies each good frame's payload out once; it never stops on bad input,
// it reports it: every malformed frame becomes a counted DecodeError, as the controller counts them.

import { Kernels } from './kernels';

export const SOF = Buffer.from([0xbc, 0xb5, 0x56, 0x56]);
export const EOF = Buffer.from([0xbc, 0x95, 0x75, 0x75]);
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

let kernels: Kernels | undefined;

/** CRC-32C (Castagnoli) of data, by the firmware's own kernel. */
export function crc32c(data: Uint8Array): number {
  kernels ??= Kernels.load({ initialPages: 1 });
  return kernels.crc32c(data);
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
  target.writeUInt32BE(crc32c(target.subarray(at + 4, end)), end);
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
 * A streaming frame parser with the controller's rules (firmware/comm/stream.ts): bytes before a
 * SOF are skipped and counted; a length over 2112 is OVERSIZE and a missing EOF is TRUNCATED, both
 * dropping one byte and hunting for the next SOF; a bad CRC or a reserved type drops the frame.
 * Frames may arrive split at any byte boundary.
 */
export class FrameDecoder {
  readonly counts: Record<DecodeErrorKind, number> = { badCrc: 0, truncated: 0, oversize: 0, unknownType: 0, badSof: 0 };
  private pending: Buffer = EMPTY;

  /** Bytes held while a frame is incomplete. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Feeds bytes; returns the frames and errors they complete, in stream order. */
  push(chunk: Uint8Array): DecodeEvent[] {
    const buf = this.pending.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.pending, chunk]);
    const events: DecodeEvent[] = [];
    let at = 0;
    while (at < buf.length) {
      const step = this.next(buf, at, events);
      if (step === 0) break;
      at += step;
    }
    // Keep only the unparsed tail (copied: it must not pin the caller's chunk).
    this.pending = at === buf.length ? EMPTY : Buffer.from(buf.subarray(at));
    return events;
  }

  /** The stream ended or went silent: whatever is held is a truncated frame. */
  flush(): DecodeEvent[] {
    if (this.pending.length === 0) return [];
    const header = Buffer.alloc(20);
    this.pending.copy(header, 0, 4, HEADER_END);
    const error = this.fail({ error: 'truncated', header, bytes: this.pending.length });
    this.pending = EMPTY;
    return [error];
  }

  /** Parses at `at`: returns the bytes consumed, or 0 when it needs more input. */
  private next(buf: Buffer, at: number, events: DecodeEvent[]): number {
    const avail = buf.length - at;
    if (buf[at] !== SOF[0] || (avail >= 4 && buf.readUInt32BE(at) !== SOF_WORD)) {
      const found = buf.indexOf(SOF[0], at + 1);
      const skipped = (found < 0 ? buf.length : found) - at;
      events.push(this.fail({ error: 'badSof', bytes: skipped }));
      return skipped;
    }
    if (avail < HEADER_END) return 0;
    const header = Buffer.from(buf.subarray(at + 4, at + HEADER_END));
    const length = header.readUInt16BE(10);
    if (length > MAX_PAYLOAD) {
      events.push(this.fail({ error: 'oversize', header, bytes: 1 }));
      return 1;
    }
    const total = length + FRAME_OVERHEAD;
    if (avail < total) return 0;
    const end = at + HEADER_END + length;
    if (buf.readUInt32BE(end + 4) !== EOF_WORD) {
      events.push(this.fail({ error: 'truncated', header, bytes: 1 }));
      return 1;
    }
    if (crc32c(buf.subarray(at + 4, end)) !== buf.readUInt32BE(end)) {
      events.push(this.fail({ error: 'badCrc', header, bytes: total }));
      return total;
    }
    if (frameTypeName(header[0]) === undefined) {
      events.push(this.fail({ error: 'unknownType', header, bytes: total }));
      return total;
    }
    const { length: _, ...fields } = decodeHeader(header);
    events.push({ ...fields, payload: Buffer.from(buf.subarray(at + HEADER_END, end)) });
    return total;
  }

  private fail(e: DecodeError): DecodeError {
    this.counts[e.error] += e.error === 'badSof' ? e.bytes : 1;
    return e;
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
  if (p.length < 8 || p.length < 8 + p.readUInt16BE(2)) return null;
  return {
    status: p[0],
    underflow: (p[1] & 1) !== 0,
    overflow: (p[1] & 2) !== 0,
    residual: p.readUInt32BE(4),
    sense: Buffer.from(p.subarray(8, 8 + p.readUInt16BE(2))),
  };
}

// ---- REJECT payload -------------------------------------------------------------------------------

export interface Reject {
  reason: number;
  /** The offending frame's header bytes 4-23 as received (zeros where not received). */
  header: Buffer;
}

export function encodeReject(r: Reject): Buffer {
  const b = Buffer.alloc(24);
  b[0] = r.reason;
  r.header.copy(b, 4, 0, 20);
  return b;
}

export function decodeReject(p: Buffer): Reject | null {
  if (p.length < 24) return null;
  return { reason: p[0], header: Buffer.from(p.subarray(4, 24)) };
}
