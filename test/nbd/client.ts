// A minimal NBD client for the protocol tests (proto.md): it writes exactly the bytes a test asks
// for and parses everything the server sends (greeting, option replies, simple and structured
// replies), so bad input can be sent on purpose and every answer seen.
import * as net from 'net';

export const IHAVEOPT = Buffer.from('IHAVEOPT');
export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8, LIST_META_CONTEXT: 9, SET_META_CONTEXT: 10 };
export const REP = { ACK: 1, SERVER: 2, INFO: 3, ERR_UNSUP: 0x80000001, ERR_POLICY: 0x80000002, ERR_INVALID: 0x80000003, ERR_UNKNOWN: 0x80000006, ERR_TOO_BIG: 0x80000009 };
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };
export const FLAG = { FUA: 1, NO_HOLE: 2, DF: 4 };
export const E = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75 };

export interface OptionReply { option: number; type: number; data: Buffer }
export interface Reply { handle: bigint; error: number; data: Buffer; chunks: number; message?: string }

export class NbdClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  structured = false;
  readonly closedP: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (b) => { this.buf = Buffer.concat([this.buf, b]); this.wake(); });
    this.closedP = new Promise((r) => sock.once('close', () => { this.closed = true; this.wake(); r(); }));
    sock.on('error', () => undefined);
  }

  static connect(port: number, localAddress?: string): Promise<NbdClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => resolve(new NbdClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  /** The next n bytes the server sends; rejects if the connection closes first. */
  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`connection closed with ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  send(b: Buffer): void { this.sock.write(b); }

  /** Greeting, then client flags (FIXED_NEWSTYLE | NO_ZEROES unless told otherwise). Returns the handshake flags. */
  async handshake(clientFlags = 3): Promise<number> {
    const g = await this.take(18);
    if (g.subarray(0, 8).toString() !== 'NBDMAGIC' || !g.subarray(8, 16).equals(IHAVEOPT)) throw new Error('bad greeting');
    const f = Buffer.alloc(4);
    f.writeUInt32BE(clientFlags);
    this.send(f);
    return g.readUInt16BE(16);
  }

  option(option: number, data: Buffer = Buffer.alloc(0), magic = IHAVEOPT): void {
    const h = Buffer.alloc(16);
    magic.copy(h, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.send(Buffer.concat([h, data]));
  }

  async optionReply(): Promise<OptionReply> {
    const h = await this.take(20);
    if (h.readBigUInt64BE(0) !== 0x3e889045565a9n) throw new Error('bad option reply magic');
    const data = await this.take(h.readUInt32BE(16));
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data };
  }

  /** Replies to one option up to and including its final (ACK or error) reply. */
  async optionReplies(): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.optionReply();
      out.push(r);
      if (r.type === REP.ACK || r.type >= 0x80000000) return out;
    }
  }

  /** STRUCTURED_REPLY (if asked), then GO for `name`: returns the size and transmission flags. */
  async go(name: string, structured = true): Promise<{ size: bigint; flags: number; replies: OptionReply[] }> {
    if (structured) {
      this.option(OPT.STRUCTURED_REPLY);
      const r = await this.optionReply();
      if (r.type !== REP.ACK) throw new Error(`structured replies refused: ${r.type}`);
      this.structured = true;
    }
    this.option(OPT.GO, goData(name, [3]));
    const replies = await this.optionReplies();
    const last = replies[replies.length - 1];
    if (last.type !== REP.ACK) throw new Error(`GO refused: ${last.type.toString(16)} ${last.data.toString()}`);
    const info = replies.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 0)!;
    return { size: info.data.readBigUInt64BE(2), flags: info.data.readUInt16BE(10), replies };
  }

  request(type: number, handle: bigint, offset: bigint | number, length: number, flags = 0, payload?: Buffer): void {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(0x25609513, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(handle, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    this.send(payload ? Buffer.concat([h, payload]) : h);
  }

  /**
   * The next whole reply: a simple reply (with `readLength` bytes of data when it is a successful
   * read's), or structured chunks up to the one marked DONE, reassembled.
   */
  async reply(readLength = 0): Promise<Reply> {
    const m = (await this.take(4)).readUInt32BE(0);
    if (m === 0x67446698) {
      const h = await this.take(12);
      const error = h.readUInt32BE(0);
      const handle = h.readBigUInt64BE(4);
      const data = error === 0 && readLength > 0 ? await this.take(readLength) : Buffer.alloc(0);
      return { handle, error, data, chunks: 0 };
    }
    if (m !== 0x668e33ef) throw new Error(`bad reply magic ${m.toString(16)}`);
    let handle = 0n;
    let error = 0;
    let message: string | undefined;
    const parts: Array<{ offset: bigint; data: Buffer }> = [];
    let chunks = 0;
    for (let first = true; ; first = false) {
      if (!first) {
        const mm = (await this.take(4)).readUInt32BE(0);
        if (mm !== 0x668e33ef) throw new Error('interleaved reply in a single-request test');
      }
      const h = await this.take(16);
      const flags = h.readUInt16BE(0);
      const type = h.readUInt16BE(2);
      handle = h.readBigUInt64BE(4);
      const p = await this.take(h.readUInt32BE(12));
      chunks++;
      if (type === 1) parts.push({ offset: p.readBigUInt64BE(0), data: p.subarray(8) });
      else if (type & 0x8000) { error = p.readUInt32BE(0); message = p.subarray(6, 6 + p.readUInt16BE(4)).toString(); }
      if (flags & 1) break;
    }
    parts.sort((a, b) => (a.offset < b.offset ? -1 : 1));
    return { handle, error, data: Buffer.concat(parts.map((x) => x.data)), chunks, message };
  }

  close(): void { this.sock.destroy(); }
}

/** NBD_OPT_GO / NBD_OPT_INFO data: name, then the information requests. */
export function goData(name: string, infos: number[] = []): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + infos.length * 2);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((x, i) => b.writeUInt16BE(x, 6 + n.length + i * 2));
  return b;
}
