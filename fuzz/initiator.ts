// A well-behaved initiator on a session of the fuzz target: one command at a time, data-out sent
// as the controller asks for it. The fuzzer uses it to set up the canaries, to audit the array
// from a fresh session after each batch, and to read the canaries back.
import * as P from '../lib/protocol';
import * as scsi from '../lib/scsi';
import { FuzzTarget, Link, HOST_ADDRESS, PORT_ADDRESS } from './target';
import { T } from './wire';

export interface Result { status: number; sense: Buffer; data: Buffer }

export class Initiator {
  readonly link: Link;
  private tag = 1;
  private current?: { tag: number; out?: Buffer; data: Buffer; received: number; result?: Result };
  private pong?: Buffer;
  /** Anything the controller sent that a correct controller would not: malformed or unasked-for frames. */
  readonly errors: string[] = [];

  constructor(readonly target: FuzzTarget, readonly port: number) {
    this.link = target.open(port, {
      frame: (f) => this.frame(f),
      error: (e) => this.errors.push(`malformed frame from the controller: ${e.error}`),
    });
  }

  private frame(f: P.FrameView): void {
    const c = this.current;
    if (f.type === T.PONG) { this.pong = Buffer.from(f.bytes.subarray(f.payloadAt, f.payloadAt + f.length)); return; }
    if (!c || f.tag !== c.tag) { this.errors.push(`frame type ${f.type} for tag ${f.tag}, no such command`); return; }
    if (f.type === T.XFER_RDY) {
      const out = c.out ?? Buffer.alloc(0);
      for (let at = f.offset; at < f.offset + f.parameter; at += P.MAX_PAYLOAD) {
        const end = Math.min(at + P.MAX_PAYLOAD, f.offset + f.parameter);
        const payload = Buffer.alloc(end - at);
        out.copy(payload, 0, at, Math.min(end, out.length));
        this.link.queue(P.encodeFrame(this.header(T.DATA_OUT, c.tag, end === f.offset + f.parameter ? P.FLAG_LAST : 0, at), payload));
      }
    } else if (f.type === T.DATA_IN) {
      if (f.offset + f.length > c.data.length) { this.errors.push(`DATA_IN beyond the expected length (tag ${f.tag})`); return; }
      f.bytes.copy(c.data, f.offset, f.payloadAt, f.payloadAt + f.length);
      c.received = Math.max(c.received, f.offset + f.length);
    } else if (f.type === T.RSP) {
      const r = P.decodeResponseAt(f.bytes, f.payloadAt, f.length);
      if (!r) { this.errors.push(`RSP payload too short (tag ${f.tag})`); return; }
      c.result = { status: r.status, sense: r.sense, data: c.data.subarray(0, c.received) };
    } else {
      this.errors.push(`unexpected frame type ${f.type} (tag ${f.tag})`);
    }
  }

  private header(type: number, tag: number, flags = 0, offset = 0): P.FrameHeader {
    return { type, flags, tag, source: HOST_ADDRESS, destination: PORT_ADDRESS[this.port], sequence: 0, offset, parameter: 0 };
  }

  /** Runs one command to its status (bounded in virtual time). */
  command(lun: number, cdb: Buffer, io: { out?: Buffer; inLength?: number } = {}): Result {
    const tag = this.tag;
    this.tag = (this.tag + 1) & 0xffff;
    const expected = io.out ? io.out.length : io.inLength ?? 0;
    this.current = { tag, out: io.out, data: Buffer.alloc(io.inLength ?? 0), received: 0 };
    this.link.queue(P.encodeFrame(this.header(T.CMD, tag), P.encodeCommand({
      lun, taskAttribute: 'simple', dataOut: io.out !== undefined, dataIn: (io.inLength ?? 0) > 0, expectedLength: expected, cdb,
    })));
    const what = `command ${cdb.toString('hex')} at LUN ${lun} on port ${this.port}`;
    this.target.until(() => this.current?.result !== undefined || this.link.closed, what);
    this.closedCheck(what);
    const r = this.current.result!;
    this.current = undefined;
    return r;
  }

  /** Runs a command that must end GOOD; throws with the sense in words otherwise. */
  ok(lun: number, cdb: Buffer, io: { out?: Buffer; inLength?: number } = {}): Buffer {
    const r = this.command(lun, cdb, io);
    if (r.status !== 0) throw new scsi.ScsiError(r.status, r.sense.length > 0 ? scsi.decodeSense(r.sense) : undefined, cdb[0]);
    return r.data;
  }

  ping(payload: Buffer): Buffer | undefined {
    this.pong = undefined;
    this.link.queue(P.encodeFrame(this.header(T.PING, 0xfffe), payload));
    this.target.until(() => this.pong !== undefined || this.link.closed, `PING on port ${this.port}`, 10e9);
    if (this.pong === undefined) this.closedCheck(`PING on port ${this.port}`);
    return this.pong;
  }

  /** Throws when the controller closed the session before `what` was answered. */
  private closedCheck(what: string): void {
    if (this.current?.result !== undefined || !this.link.closed) return;
    throw new Error(`${what}: the controller closed the session (hang-up reason ${this.link.hungUp}) before answering`);
  }

  close(): void { this.link.close(); }
}
