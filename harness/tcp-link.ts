// A link whose far end runs in another process, over TCP (docs/remote.md, "Links across
// processes"). The packets are the firmware's own, whole, as the in-process binding moves them
// (hal/link.ts): the sender's binding applies the wire's model and hands each packet due to this
// end, which frames it onto the socket; the receiver's end queues what arrives for its binding's
// next service, which puts it into the receive ring of the queue the packet names.
//
// Frame: magic "SBLK" (4), type (1), 3 reserved, payload length (u32 LE), CRC-32C (u32 LE) of the
// whole frame with this field 0, payload. A frame that fails any check ends the connection: a byte
// stream that lost its framing cannot be trusted to find it again.
//
// The dialling side sends HELLO first (protocol, link name, own node name, every node's name and
// kind in node order), the listening side answers with its own once it accepted it; a peer whose HELLO does not match this topology is refused with a BYE that says why,
// so a wrong address or a file listing the nodes in another order never exchanges a packet (the
// node numbers in the packets would mean other nodes). One connection carries the link: another
// one while it is up is refused. HEARTBEATs every heartbeatMs; a connection silent for 4 of them,
// or without a HELLO by then, is closed. The connecting side retries with a backoff doubling from
// 50 ms up to retryMaxMs. While no connection is up the link is down, as a cut one: packets sent
// are lost (hal/link.ts counts them `cut`), and the pairs over it suspend by their own rules.
import * as net from 'net';
import * as A from '../hal/abi';
import { crc32c } from '../lib/protocol';
import type { RemoteEnd } from '../hal/link';
import type { LinkSpec } from './links';

export const FRAME_MAGIC = 0x53424C4B; // "SBLK" on the wire (big-endian)
export const FRAME_HEADER_BYTES = 16;
export const FT_HELLO = 1;
export const FT_PACKET = 2;
export const FT_HEARTBEAT = 3;
export const FT_BYE = 4;
const CONTROL_MAX_BYTES = 16 * 1024;
const PROTOCOL = 1;
const RETRY_FIRST_MS = 50;
/** Silence (or no HELLO) for this many heartbeats ends a connection. */
const SILENT_BEATS = 4;

export function encodeFrame(type: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  b.writeUInt32BE(FRAME_MAGIC, 0);
  b[4] = type;
  b.writeUInt32LE(payload.length, 8);
  b.set(payload, FRAME_HEADER_BYTES);
  b.writeUInt32LE(crc32c(b), 12);
  return b;
}

export class FrameError extends Error {}

/** Splits a byte stream into frames; throws FrameError at the first that is not one. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): Array<{ type: number; payload: Buffer }> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<{ type: number; payload: Buffer }> = [];
    while (this.buf.length >= FRAME_HEADER_BYTES) {
      const magic = this.buf.readUInt32BE(0);
      if (magic !== FRAME_MAGIC) throw new FrameError(`bad magic 0x${magic.toString(16).padStart(8, '0')} (expected "SBLK")`);
      const type = this.buf[4];
      const length = this.buf.readUInt32LE(8);
      const max = type === FT_PACKET ? A.LINK_ENTRY_BYTES : CONTROL_MAX_BYTES;
      if (type < FT_HELLO || type > FT_BYE) throw new FrameError(`unknown frame type ${type}`);
      if (length > max || (type === FT_PACKET && length < A.LINK_HEADER_BYTES)) throw new FrameError(`frame type ${type} of ${length} bytes (at most ${max})`);
      if (this.buf.length < FRAME_HEADER_BYTES + length) break;
      const frame = Buffer.from(this.buf.subarray(0, FRAME_HEADER_BYTES + length));
      this.buf = this.buf.subarray(FRAME_HEADER_BYTES + length);
      const crc = frame.readUInt32LE(12);
      frame.writeUInt32LE(0, 12);
      if (crc32c(frame) !== crc) throw new FrameError(`frame type ${type} of ${length} bytes fails its CRC`);
      out.push({ type, payload: frame.subarray(FRAME_HEADER_BYTES) });
    }
    return out;
  }
}

export interface TcpLinkCounters {
  /** Connections that became the link (HELLO accepted both ways). */
  connects: number;
  /** Connections refused or closed before they carried the link: garbage, no or wrong HELLO, a second one. */
  refused: number;
  /** Connections that carried the link and ended on a bad frame or silence. */
  dropped: number;
  framesIn: number;
  framesOut: number;
  /** Packet frames with a good frame CRC whose content is not a link packet (dropped). */
  badPackets: number;
}

export interface TcpLinkStatus extends TcpLinkCounters {
  link: string;
  state: 'up' | 'listening' | 'connecting' | 'closed';
  /** The peer's address while up; the address listened on or dialled otherwise. */
  address: string;
  /** Received packets wait beyond the link's queue: the socket reads nothing until the next round takes them. */
  receivePaused: boolean;
}

class Conn {
  readonly reader = new FrameReader();
  helloed = false;
  /** Refused or dropped: its BYE is on the way, nothing more is read from it. */
  ended = false;
  heardAt = Date.now();
  readonly openedAt = Date.now();
  constructor(readonly socket: net.Socket, readonly who: string) {}
}

export class TcpLinkEnd implements RemoteEnd {
  readonly counters: TcpLinkCounters = { connects: 0, refused: 0, dropped: 0, framesIn: 0, framesOut: 0, badPackets: 0 };
  private server?: net.Server;
  private active?: Conn;
  private readonly pending = new Set<Conn>();
  private inbox: Uint8Array[] = [];
  /**
   * Bytes in the inbox: above the link's queue the socket stops reading until the next drain, so a
   * peer faster than this world's rounds meets TCP's flow control and then its own bounded send queue.
   */
  private inboxBytes = 0;
  private closed = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer?: NodeJS.Timeout;
  private readonly beat: NodeJS.Timeout;
  /** The connecting side says it cannot reach the peer once per outage, not at every retry. */
  private quiet = false;
  private listenAddress = '';
  private lastRefusal = '';
  private readonly hello: Buffer;

  /** `nodes`: every node's name and kind in node order (as CFG_REMOTE gives them to the firmware). */
  constructor(readonly spec: LinkSpec, private readonly nodes: Array<[string, string]>, private readonly log: (l: string) => void, private readonly kick: () => void) {
    if (!spec.tcp) throw new Error(`link ${spec.name} has no "tcp"`);
    this.hello = encodeFrame(FT_HELLO, Buffer.from(JSON.stringify({ protocol: PROTOCOL, link: spec.name, node: spec.tcp.local, nodes })));
    this.beat = setInterval(() => this.heartbeat(), spec.tcp.heartbeatMs);
    this.beat.unref();
  }

  private get tcp() { return this.spec.tcp!; }
  get name(): string { return this.spec.name; }
  get connected(): boolean { return this.active !== undefined; }
  /** The address listened on (host:port, the port chosen when the topology said 0); '' when dialling. */
  get listening(): string { return this.listenAddress; }

  /** Listens (resolves once bound, rejects naming the address when it cannot be) or starts dialling. */
  start(): Promise<void> {
    const { listen, connect } = this.tcp;
    if (connect) { this.dial(); return Promise.resolve(); }
    return new Promise((resolve, reject) => {
      const server = net.createServer((s) => this.accept(s));
      this.server = server;
      server.once('error', (e) => reject(new Error(`link ${this.name}: cannot listen on ${listen!.host}:${listen!.port}: ${(e as Error).message}`)));
      server.listen(listen!.port, listen!.host, () => {
        const a = server.address() as net.AddressInfo;
        this.listenAddress = `${a.address}:${a.port}`;
        this.log(`link ${this.name}: listening on ${this.listenAddress} for ${this.tcp.remote}`);
        resolve();
      });
    });
  }

  send(bytes: Uint8Array): boolean {
    const c = this.active;
    if (!c) return false;
    if (c.socket.writableLength + FRAME_HEADER_BYTES + bytes.length > this.spec.queueBytes) return false;
    c.socket.write(encodeFrame(FT_PACKET, bytes));
    this.counters.framesOut++;
    return true;
  }

  drain(): Uint8Array[] {
    if (this.inbox.length === 0) return [];
    this.inboxBytes = 0;
    if (this.active?.socket.isPaused()) {
      this.active.heardAt = Date.now(); // not reading was this side's doing, not the peer's silence
      this.active.socket.resume();
    }
    return this.inbox.splice(0);
  }

  status(): TcpLinkStatus {
    const state = this.closed ? 'closed' : this.active ? 'up' : this.server ? 'listening' : 'connecting';
    const c = this.tcp.connect;
    return {
      link: this.name, state, address: this.active?.who ?? (this.server ? this.listenAddress : `${c!.host}:${c!.port}`),
      receivePaused: this.active?.socket.isPaused() ?? false, ...this.counters,
    };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.beat);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.server?.close();
    for (const c of [...this.pending, ...(this.active ? [this.active] : [])]) c.socket.destroy();
    this.pending.clear();
    this.active = undefined;
  }

  private accept(socket: net.Socket): void {
    if (this.closed) { socket.destroy(); return; }
    this.open(socket, `${socket.remoteAddress}:${socket.remotePort}`, false);
  }

  private dial(): void {
    if (this.closed) return;
    const { host, port } = this.tcp.connect!;
    const socket = net.connect({ host, port });
    const c = this.open(socket, `${host}:${port}`, true);
    socket.once('error', (e) => {
      if (!c.helloed && !this.quiet) {
        this.quiet = true;
        this.log(`link ${this.name}: cannot reach ${c.who} (${(e as NodeJS.ErrnoException).code ?? e.message}); the link is down, retrying up to every ${this.tcp.retryMaxMs} ms`);
      }
    });
  }

  /** The dialling side says HELLO first; the listening side answers with its own once it accepted the caller's. */
  private open(socket: net.Socket, who: string, hello: boolean): Conn {
    const c = new Conn(socket, who);
    this.pending.add(c);
    socket.setNoDelay(true);
    if (hello) socket.write(this.hello);
    socket.on('data', (chunk: Buffer) => this.data(c, chunk));
    socket.on('error', () => undefined); // 'close' follows and says what matters
    socket.once('close', () => this.gone(c));
    return c;
  }

  private data(c: Conn, chunk: Buffer): void {
    if (c.ended || c.socket.destroyed) return;
    c.heardAt = Date.now();
    let frames;
    try {
      frames = c.reader.feed(chunk);
    } catch (e) {
      this.reject(c, (e as Error).message);
      return;
    }
    for (const f of frames) {
      this.counters.framesIn++;
      if (f.type === FT_BYE) {
        const why = f.payload.toString('utf8');
        if (why !== this.lastRefusal) this.log(`link ${this.name}: ${c.who} closed the connection: ${why}`);
        this.lastRefusal = why;
        c.socket.destroy();
        return;
      }
      if (f.type === FT_HELLO) { if (!this.greet(c, f.payload)) return; continue; }
      if (!c.helloed) { this.reject(c, `frame type ${f.type} before its HELLO`); return; }
      if (f.type !== FT_PACKET) continue;
      if (f.payload.readUInt16LE(A.LPK_MAGIC) !== A.LPK_MAGIC_VALUE) { this.counters.badPackets++; continue; }
      this.inbox.push(new Uint8Array(f.payload));
      this.inboxBytes += f.payload.length;
    }
    if (this.inboxBytes > this.spec.queueBytes) c.socket.pause();
    if (this.inbox.length > 0) this.kick();
  }

  /** Checks the peer's HELLO against this topology; false when the connection was refused. */
  private greet(c: Conn, payload: Buffer): boolean {
    let h: { protocol?: unknown; link?: unknown; node?: unknown; nodes?: unknown };
    try { h = JSON.parse(payload.toString('utf8')) as typeof h; } catch { this.reject(c, 'a HELLO that is not JSON'); return false; }
    const ours = JSON.stringify(this.nodes);
    const why = h.protocol !== PROTOCOL ? `protocol ${JSON.stringify(h.protocol)}, this end speaks ${PROTOCOL}`
      : h.link !== this.name ? `it is the end of link ${JSON.stringify(h.link)}, this is link ${this.name}`
        : h.node !== this.tcp.remote ? `it is node ${JSON.stringify(h.node)}; this link's far end is ${this.tcp.remote}`
          : JSON.stringify(h.nodes) !== ours ? `its nodes are ${JSON.stringify(h.nodes)}, here ${ours}: list the arrays (those elsewhere too) and relays in the same order in both topology files, or the node numbers in the packets name other nodes`
            : c.helloed ? 'a second HELLO'
              : this.active ? `the link is already up with ${this.active.who}`
                : undefined;
    if (why !== undefined) { this.reject(c, why); return false; }
    c.helloed = true;
    if (this.server) c.socket.write(this.hello);
    this.pending.delete(c);
    this.active = c;
    this.counters.connects++;
    this.retryMs = RETRY_FIRST_MS;
    this.quiet = false;
    this.lastRefusal = '';
    this.log(`link ${this.name}: up: ${this.tcp.remote} at ${c.who}`);
    this.kick();
    return true;
  }

  /** Ends a connection that broke the protocol, with a BYE that says why and a log line naming it. */
  private reject(c: Conn, why: string): void {
    if (c.ended) return;
    c.ended = true;
    if (c === this.active) {
      this.active = undefined;
      this.counters.dropped++;
      this.log(`link ${this.name}: closing the connection with ${c.who}: ${why} (${this.counters.dropped} dropped so far)`);
    } else {
      this.counters.refused++;
      // A peer that keeps calling with the same fault is named once, not at every retry.
      if (why !== this.lastRefusal) this.log(`link ${this.name}: refused ${c.who}: ${why} (${this.counters.refused} refused so far)`);
      this.lastRefusal = why;
    }
    c.socket.end(encodeFrame(FT_BYE, Buffer.from(why.slice(0, CONTROL_MAX_BYTES), 'utf8')));
    c.socket.destroySoon();
    setTimeout(() => c.socket.destroy(), 1000).unref();
    c.socket.removeAllListeners('data');
  }

  private gone(c: Conn): void {
    this.pending.delete(c);
    if (c === this.active) {
      this.active = undefined;
      this.log(`link ${this.name}: down: the connection with ${this.tcp.remote} at ${c.who} ended; packets sent meanwhile are lost`);
    }
    if (this.tcp.connect && !this.closed && !this.active && this.pending.size === 0) this.retry();
  }

  private retry(): void {
    if (this.retryTimer) return;
    const ms = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.tcp.retryMaxMs);
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.dial(); }, ms);
  }

  private heartbeat(): void {
    const now = Date.now();
    const bound = SILENT_BEATS * this.tcp.heartbeatMs;
    if (this.active) {
      if (now - this.active.heardAt > bound && !this.active.socket.isPaused()) this.reject(this.active, `silent for ${now - this.active.heardAt} ms; packets sent meanwhile are lost`);
      else { this.active.socket.write(encodeFrame(FT_HEARTBEAT, Buffer.alloc(0))); this.counters.framesOut++; }
    }
    for (const c of this.pending) if (now - c.openedAt > bound) this.reject(c, `no HELLO within ${bound} ms`);
  }
}
