// In-test targets for the host side, on one end of a stream.duplexPair (no emulator), for the
// transport's own units (framing, tags, timeouts, hang-ups) where a scripted peer shows what the
// firmware would not do on cue. Every sanctl behaviour is also tested against the real firmware in
// test/e2e/sanctl.test.ts.
//
// - FakeTarget: the array end of a framed connection, scripted frame by frame by the test;
// - FakeArray: answers, on as many connections as are opened to it, the SCSI commands the client
//   library sends, from volumes in ordinary memory, with the wire behaviour of docs/protocol.md
//   (XFER_RDY bursts, DATA_IN in 2048-byte pieces with LAST, residuals) and the sense codes of
//   docs/scsi.md.
import { duplexPair, Duplex } from 'stream';
import * as P from '../../lib/protocol';
import * as S from '../../lib/scsi';

export class FakeTarget {
  readonly host: Duplex;
  readonly array: Duplex;
  readonly decoder = new P.FrameDecoder();
  /** Frames from the host not yet taken by next(). */
  private readonly inbox: P.Frame[] = [];
  private wake?: () => void;
  /** When set, frames from the host go here instead of the inbox. */
  handler?: (f: P.Frame) => void;

  constructor(readonly address = P.ARRAY_ADDRESS) {
    [this.host, this.array] = duplexPair();
    this.array.on('data', (chunk: Buffer) => {
      for (const e of this.decoder.push(chunk)) {
        if (P.isDecodeError(e)) throw new Error(`the host sent a bad frame: ${e.error}`);
        if (this.handler) this.handler(e);
        else this.inbox.push(e);
      }
      this.wake?.();
    });
  }

  /** The next frame the host sends. */
  async next(): Promise<P.Frame> {
    while (this.inbox.length === 0) await new Promise<void>((r) => { this.wake = r; });
    return this.inbox.shift()!;
  }

  /** Sends a frame to the host from this target's address. */
  send(type: number, tag: number, payload: Buffer = Buffer.alloc(0), h: Partial<P.FrameHeader> = {}): void {
    this.array.write(P.encodeFrame({ type, flags: 0, tag, source: this.address, destination: P.HOST_ADDRESS, sequence: 0, offset: 0, parameter: 0, ...h }, payload));
  }

  respond(tag: number, r: Partial<P.Response> = {}): void {
    this.send(P.FrameType.RSP, tag, P.encodeResponse({ status: 0, underflow: false, overflow: false, residual: 0, sense: Buffer.alloc(0), ...r }));
  }

  /** DATA_IN frames of at most 2048 bytes from `offset`, LAST on the final one. */
  dataIn(tag: number, data: Buffer, offset = 0): void {
    for (let at = 0; at < data.length; at += P.DATA_IN_CHUNK) {
      const piece = data.subarray(at, at + P.DATA_IN_CHUNK);
      this.send(P.FrameType.DATA_IN, tag, piece, { offset: offset + at, flags: at + piece.length === data.length ? P.FLAG_LAST : 0 });
    }
  }

  xferRdy(tag: number, offset: number, length: number): void {
    this.send(P.FrameType.XFER_RDY, tag, undefined, { offset, parameter: length });
  }

  /** The array end closes the connection, as a TCP peer's FIN does. */
  hangUp(): void {
    this.array.end();
  }
}

/** Fixed-format sense, as the controller builds it. */
export function sense(key: number, asc: number, ascq = 0): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70; b[2] = key; b[7] = 10; b[12] = asc; b[13] = ascq;
  return b;
}

class Check extends Error {
  constructor(readonly key: number, readonly asc: number, readonly ascq = 0) { super(); }
}

interface FakeVolume { number: number; name: string; blockSize: number; blocks: number; data: Buffer }

interface Write { command: P.CommandDescriptor; data: Buffer; received: number }

export class FakeArray {
  readonly volumes: FakeVolume[] = [];
  /** LUN -> volume number, for port 0 (the port of this connection). */
  readonly luns = new Map<number, number>();
  /** The most commands seen outstanding at once. */
  maxOutstanding = 0;
  /** Bytes per XFER_RDY burst. */
  burstBytes = 8192;
  private outstanding = 0;
  /** Data-out being received, per connection and tag. */
  private readonly writes = new Map<FakeTarget, Map<number, Write>>();

  /** A new connection to the array: the host end of a Duplex pair. */
  connect(): Duplex {
    const link = new FakeTarget();
    link.handler = (f) => this.frame(link, f);
    this.writes.set(link, new Map());
    return link.host;
  }

  private frame(link: FakeTarget, f: P.Frame): void {
    if (f.type === P.FrameType.PING) { link.send(P.FrameType.PONG, f.tag, f.payload); return; }
    if (f.type === P.FrameType.DATA_OUT) { this.dataOut(link, f); return; }
    const c = P.decodeCommand(f.payload)!;
    this.maxOutstanding = Math.max(this.maxOutstanding, ++this.outstanding);
    if (c.dataOut) {
      this.writes.get(link)!.set(f.tag, { command: c, data: Buffer.alloc(c.expectedLength), received: 0 });
      link.xferRdy(f.tag, 0, Math.min(this.burstBytes, c.expectedLength));
      return;
    }
    // Answer on a later turn, so that several commands are in flight at once.
    setImmediate(() => this.finish(link, f.tag, c, () => this.execute(c)));
  }

  private dataOut(link: FakeTarget, f: P.Frame): void {
    const w = this.writes.get(link)!.get(f.tag)!;
    f.payload.copy(w.data, f.offset);
    w.received += f.payload.length;
    if (w.received < w.command.expectedLength) {
      if ((f.flags & P.FLAG_LAST) !== 0) link.xferRdy(f.tag, w.received, Math.min(this.burstBytes, w.command.expectedLength - w.received));
      return;
    }
    this.writes.get(link)!.delete(f.tag);
    setImmediate(() => this.finish(link, f.tag, w.command, () => this.execute(w.command, w.data)));
  }

  private finish(link: FakeTarget, tag: number, c: P.CommandDescriptor, run: () => Buffer): void {
    this.outstanding--;
    try {
      const sent = run().subarray(0, c.expectedLength);
      link.dataIn(tag, sent);
      const residual = c.dataIn ? c.expectedLength - sent.length : 0;
      link.respond(tag, { residual, underflow: residual > 0 });
    } catch (e) {
      if (!(e instanceof Check)) throw e;
      link.respond(tag, { status: P.ScsiStatus.CHECK_CONDITION, sense: sense(e.key, e.asc, e.ascq) });
    }
  }

  private execute(c: P.CommandDescriptor, out?: Buffer): Buffer {
    if (c.lun === 0) return this.commandDevice(c, out);
    const v = this.volumes.find((x) => x.number === this.luns.get(c.lun));
    if (!v) throw new Check(5, 0x25);
    const op = c.cdb[0];
    if (op === S.Opcode.READ_CAPACITY10) return Buffer.from([...u32(v.blocks - 1), ...u32(v.blockSize)]);
    if (op === S.Opcode.READ10 || op === S.Opcode.WRITE10 || op === S.Opcode.READ16 || op === S.Opcode.WRITE16) {
      const ten = op === S.Opcode.READ10 || op === S.Opcode.WRITE10;
      const lba = ten ? c.cdb.readUInt32BE(2) : Number(c.cdb.readBigUInt64BE(2));
      const blocks = ten ? c.cdb.readUInt16BE(7) : c.cdb.readUInt32BE(10);
      if (lba + blocks > v.blocks) throw new Check(5, 0x21);
      const at = lba * v.blockSize;
      if (out) { out.copy(v.data, at); return Buffer.alloc(0); }
      return Buffer.from(v.data.subarray(at, at + blocks * v.blockSize));
    }
    if (op === S.Opcode.SYNCHRONIZE_CACHE10 || op === S.Opcode.TEST_UNIT_READY) return Buffer.alloc(0);
    throw new Check(5, 0x20);
  }

  private commandDevice(c: P.CommandDescriptor, out?: Buffer): Buffer {
    const op = c.cdb[0];
    if (op === S.Opcode.TEST_UNIT_READY) return Buffer.alloc(0);
    if (op === S.Opcode.INQUIRY) return this.inquiry(c.cdb);
    if (op === S.Opcode.REPORT_LUNS) {
      const luns = [0, ...[...this.luns.keys()].sort((a, b) => a - b)];
      return Buffer.concat([Buffer.from(u32(luns.length * 8)), Buffer.alloc(4), ...luns.map((l) => P.encodeLun(l))]);
    }
    if (op === S.Opcode.MANAGEMENT_IN) return this.list(c.cdb[1]);
    if (op === S.Opcode.MANAGEMENT_OUT) { this.manage(c.cdb, out); return Buffer.alloc(0); }
    throw new Check(5, 0x20);
  }

  private inquiry(cdb: Buffer): Buffer {
    if ((cdb[1] & 1) === 0) {
      const d = Buffer.alloc(96);
      d[0] = 0x0c; d[2] = 6; d[7] = 2;
      d.write('SANBOX  FAKE ARRAY      0.1 ', 8, 'latin1');
      return d;
    }
    if (cdb[2] === 0x80) return Buffer.concat([Buffer.from([0x0c, 0x80, 0, 6]), Buffer.from('FAKE01')]);
    if (cdb[2] === 0x83) return Buffer.from([0x0c, 0x83, 0, 8, 0x01, 0x94, 0, 4, 0, 0, 0, 1]); // relative target port 1: port 0
    throw new Check(5, 0x24);
  }

  private manage(cdb: Buffer, p?: Buffer): void {
    const sa = cdb[1] & 0x1f;
    if (sa === S.Management.CREATE_VOLUME) {
      const name = p!.toString('latin1', 16, 48).replace(/\0+$/, '');
      if (this.volumes.some((v) => v.name === name)) throw new Check(5, 0x80, 0x00);
      const blockSize = p!.readUInt16BE(2);
      const blocks = Number(p!.readBigUInt64BE(8));
      const number = [...Array(1024).keys()].find((n) => !this.volumes.some((v) => v.number === n))!;
      this.volumes.push({ number, name, blockSize, blocks, data: Buffer.alloc(blocks * blockSize) });
    } else if (sa === S.Management.MAP_VOLUME) {
      if (this.luns.has(p!.readUInt16BE(4))) throw new Check(5, 0x82, 0x00);
      this.luns.set(p!.readUInt16BE(4), p!.readUInt16BE(0));
    } else if (sa === S.Management.DELETE_VOLUME) {
      const i = this.volumes.findIndex((v) => v.number === cdb.readUInt32BE(2));
      if (i < 0) throw new Check(5, 0x80, 0x02);
      this.volumes.splice(i, 1);
    } else {
      throw new Check(5, 0x24);
    }
  }

  private list(sa: number): Buffer {
    const entries = (size: number, rows: Buffer[]): Buffer => Buffer.concat([Buffer.from([...u32(size * rows.length), size >> 8, size & 0xff, 0, rows.length]), ...rows]);
    if (sa === S.Management.LIST_VOLUMES) {
      return entries(96, this.volumes.map((v) => {
        const e = Buffer.alloc(96);
        e.writeUInt16BE(v.number, 0); e.writeUInt16BE(v.blockSize, 2); e[6] = 1; e.writeBigUInt64BE(BigInt(v.blocks), 8); e.write(v.name, 16, 'latin1');
        return e;
      }));
    }
    if (sa === S.Management.LIST_MAPPINGS) return entries(8, [...this.luns].map(([lun, v]) => Buffer.from([0, 0, lun >> 8, lun & 0xff, v >> 8, v & 0xff, 0, 0])));
    if (sa === S.Management.LIST_MEDIA) {
      return entries(64, ['d0', 'd1'].map((name, i) => {
        const e = Buffer.alloc(64);
        e[0] = i; e[2] = 1; e.writeBigUInt64BE(131072n, 4); e.write(name, 32, 'latin1');
        return e;
      }));
    }
    throw new Check(5, 0x24);
  }
}

function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
