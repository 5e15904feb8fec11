// The reference receiver: docs/protocol.md's rules for a byte stream, written a second time, apart
// from the firmware, so that the fuzzer can say what the controller must answer to bytes nobody
// has seen before. It is fed the same arrivals as the session's rx ring (the firmware parses what
// has arrived at each poll, and where a frame's bytes stop matters: the rest of an OVERSIZE frame
// that arrives later is hunted over as bad SOF bytes), and the silence that makes a partial frame
// TRUNCATED. What depends on the state of a command (is a DATA_OUT expected?) is not predicted
// here; the fuzzer learns it from the controller's answers and checks that it is consistent.
import { frameCrc } from '../lib/protocol';
import { SOF_WORD, EOF_WORD, SOF_BYTE, HEADER_END, FRAME_OVERHEAD, MAX_PAYLOAD, H, T, R, FLAG_RESET, decodeLun } from './wire';

/** What the controller must send for a frame, in the order the frames arrived. */
export type Expectation =
  | { kind: 'reject'; reason: number; header: Buffer }
  | { kind: 'pong'; tag: number; destination: number; payload: Buffer; reset: boolean }
  /** A valid DATA_OUT: taken silently, or refused with UNKNOWN_TAG or PROTOCOL and its header. */
  | { kind: 'dataOut'; tag: number; header: Buffer };

export interface Command {
  tag: number;
  lun: number;
  cdb: Buffer;
  flags: number;
  expected: number;
}

export interface ModelCounts {
  framesRx: number;
  badCrc: number;
  truncated: number;
  oversize: number;
  unknownType: number;
  wrongDestination: number;
  /** PROTOCOL rejects the stream alone decides: bad CMD payloads, types a host never sends. */
  protocol: number;
  badSofBytes: number;
  commands: number;
  dataOut: number;
  pings: number;
}

export function zeroCounts(): ModelCounts {
  return {
    framesRx: 0, badCrc: 0, truncated: 0, oversize: 0, unknownType: 0, wrongDestination: 0, protocol: 0,
    badSofBytes: 0, commands: 0, dataOut: 0, pings: 0,
  };
}

export interface ModelSink {
  expect(e: Expectation): void;
  command(c: Command): void;
}

export class ReceiverModel {
  counts = zeroCounts();
  private held: Buffer = Buffer.alloc(0);

  constructor(private readonly address: number, private readonly sink: ModelSink) {}

  /** Bytes waiting for the rest of a frame. */
  get pending(): number { return this.held.length; }

  /**
   * Bytes reached the session's rx ring and the controller polled it. The bytes must not change
   * afterwards: expectations keep views of them.
   */
  arrive(bytes: Buffer): void {
    const b = this.held.length === 0 ? bytes : Buffer.concat([this.held, bytes]);
    let at = 0;
    for (;;) {
      const avail = b.length - at;
      if (avail === 0) break;
      if (!atSof(b, at, avail)) { at += this.skipToSof(b, at, avail, true); continue; }
      if (avail < HEADER_END) break;
      const length = b.readUInt16BE(at + H.LENGTH);
      if (length > MAX_PAYLOAD) {
        this.reject(R.OVERSIZE, b, at, avail);
        this.counts.oversize++;
        at += this.skipToSof(b, at, avail, false);
        continue;
      }
      const total = length + FRAME_OVERHEAD;
      if (avail < total) break;
      const crcAt = at + HEADER_END + length;
      if (b.readUInt32BE(crcAt + 4) !== EOF_WORD) {
        this.reject(R.TRUNCATED, b, at, avail);
        this.counts.truncated++;
        at += this.skipToSof(b, at, avail, false);
        continue;
      }
      if (frameCrc(b, at + 4, crcAt) !== b.readUInt32BE(crcAt)) {
        this.reject(R.BAD_CRC, b, at, avail);
        this.counts.badCrc++;
        at += total;
        continue;
      }
      this.counts.framesRx++;
      this.handle(b, at, length);
      at += total;
    }
    this.held = at === b.length ? Buffer.alloc(0) : Buffer.from(b.subarray(at));
  }

  /** FRAME_TIMEOUT of silence with a partial frame held: it is dropped as TRUNCATED. */
  silence(): void {
    if (this.held.length === 0) return;
    this.reject(R.TRUNCATED, this.held, 0, this.held.length);
    this.counts.truncated++;
    this.held = Buffer.alloc(0);
  }

  private handle(b: Buffer, at: number, length: number): void {
    const type = b[at + H.TYPE];
    const destination = b.readUInt16BE(at + H.DESTINATION);
    if (destination !== this.address && destination !== 0xffff) {
      this.reject(R.WRONG_DESTINATION, b, at, HEADER_END);
      this.counts.wrongDestination++;
      return;
    }
    const tag = b.readUInt16BE(at + H.TAG);
    const p = at + HEADER_END;
    switch (type) {
      case T.CMD: {
        const cdbLength = length >= 16 ? b[p + 10] : 0;
        if (length < 16 || cdbLength < 6 || cdbLength > 32 || length < 16 + cdbLength) {
          this.reject(R.PROTOCOL, b, at, HEADER_END);
          this.counts.protocol++;
          return;
        }
        this.counts.commands++;
        this.sink.command({
          tag, lun: decodeLun(b, p), cdb: b.subarray(p + 16, p + 16 + cdbLength), flags: b[p + 9],
          expected: b.readUInt32BE(p + 12),
        });
        return;
      }
      case T.DATA_OUT:
        this.counts.dataOut++;
        this.sink.expect({ kind: 'dataOut', tag, header: b.subarray(at + 4, at + HEADER_END) });
        return;
      case T.PING:
        this.counts.pings++;
        this.sink.expect({
          kind: 'pong', tag, destination: b.readUInt16BE(at + H.SOURCE), payload: b.subarray(p, p + length),
          reset: (b[at + H.FLAGS] & FLAG_RESET) !== 0,
        });
        return;
      case T.PONG: case T.REJECT:
        return; // a host's answers to the controller: nothing to do
      case T.XFER_RDY: case T.DATA_IN: case T.RSP:
        this.reject(R.PROTOCOL, b, at, HEADER_END);
        this.counts.protocol++;
        return;
      default:
        this.reject(R.UNKNOWN_TYPE, b, at, HEADER_END);
        this.counts.unknownType++;
    }
  }

  /** The REJECT for the frame at `at`: its header as received, zeros where bytes are missing. */
  private reject(reason: number, b: Buffer, at: number, avail: number): void {
    let header: Buffer;
    if (avail >= HEADER_END) header = b.subarray(at + 4, at + HEADER_END);
    else {
      header = Buffer.alloc(20);
      if (avail > 4) b.copy(header, 0, at + 4, at + avail);
    }
    this.sink.expect({ kind: 'reject', reason, header });
  }

  /**
   * Skips to the next SOF, or to bytes at the end that could still become one. Returns the bytes
   * dropped; while hunting (`count`) they are bad SOF bytes, not after a frame already rejected.
   */
  private skipToSof(b: Buffer, at: number, avail: number, count: boolean): number {
    const end = at + avail;
    let i = at + 1;
    for (;;) {
      i = b.indexOf(SOF_BYTE, i);
      if (i < 0 || i >= end) { i = end; break; }
      if (end - i < 4 || b.readUInt32BE(i) === SOF_WORD) break;
      i++;
    }
    const n = i - at;
    if (count) this.counts.badSofBytes += n;
    return n;
  }
}

function atSof(b: Buffer, at: number, avail: number): boolean {
  if (b[at] !== SOF_BYTE) return false;
  return avail < 4 || b.readUInt32BE(at) === SOF_WORD;
}
