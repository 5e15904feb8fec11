// Stream ports: where connections come from. A TCP port accepts connections from a net server,
// one session slot each; a serial port is one session on a serial device (node serialport); a pty
// port is a serial port on the device end of a socat pty pair whose host end the harness links at
// a path, so `sanctl --target serial://<link>` stands where a cable to a devboard would.
import * as net from 'net';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import * as A from '../abi';
import { CommonMemory } from '../memory';
import type { Duplex } from 'stream';
import type { SerialPort } from 'serialport';
import { StreamSession, HangUpReason } from './stream';
import { SessionSlot } from './session';
import { openSerialLine } from '../../lib/serial';
import { encodeFrame, encodeReject, FrameType, RejectReason, BROADCAST } from '../../lib/protocol';

export interface PortLog { (message: string): void }

/** How long a serial port waits before it opens its device again. */
const RETRY_MS = 1000;
/** How long a refused or idle connection may take to read its last frames before it is cut. */
const CLOSE_GRACE_MS = 5000;

export abstract class StreamPort {
  readonly sessions: Array<StreamSession | undefined>;
  protected stopping = false;

  constructor(
    protected readonly mem: CommonMemory,
    readonly index: number,
    readonly name: string,
    sessions: number,
    protected readonly kick: () => void,
    protected readonly log: PortLog,
  ) {
    this.sessions = new Array(sessions);
  }

  /** Where initiators reach the port: tcp://host:port or serial:///dev/... */
  abstract get target(): string;
  abstract start(): Promise<void>;
  protected abstract shut(): Promise<void>;

  /** Puts a new connection on a free slot, or returns false (all slots busy). */
  protected attach(stream: Duplex, localAddress = '', peerAddress = ''): boolean {
    for (let s = 0; s < this.sessions.length; s++) {
      if (this.sessions[s] || !new SessionSlot(this.mem, this.index, s).free) continue;
      this.sessions[s] = new StreamSession(this.mem, this.index, s, stream, this.kick, (x, why) => this.ended(s, x, why),
        (st, why) => this.closeStream(st, why), localAddress, peerAddress);
      this.kick();
      return true;
    }
    return false;
  }

  /** The port's address in frame headers (CPORT_ADDRESS). */
  protected get frameAddress(): number {
    return this.mem.u16(A.CONFIG_ADDR + A.CFG_PORT_TABLE + this.index * A.CFG_PORT_BYTES + A.CPORT_ADDRESS);
  }

  /** Lets go of a connection's stream. */
  protected abstract closeStream(stream: Duplex, reason: HangUpReason): void;

  protected ended(s: number, x: StreamSession, reason: HangUpReason): void {
    if (this.sessions[s] === x) this.sessions[s] = undefined;
    if (reason === 'idle') this.log(`port ${this.name}: session ${s} closed: idle, with no command in flight`);
    if (reason === 'stalled') this.log(`port ${this.name}: session ${s} cut: the peer stopped reading what it was sent`);
  }

  /** The session's tx doorbell rang. */
  transmit(s: number): void { this.sessions[s]?.flushTx(); }

  /** After each poll round: held receive bytes into rings that have room. */
  pump(): number {
    let n = 0;
    for (const s of this.sessions) if (s) n += s.pump();
    return n;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.sessions) s?.hangUp('stopping');
    await this.shut();
  }
}

export class TcpPort extends StreamPort {
  private server?: net.Server;
  private bound = { host: '', port: 0 };
  /** Connections being closed gracefully (closeSocket): a stop destroys them. */
  private readonly closing = new Set<net.Socket>();

  /**
   * `iscsiTarget`: the port speaks iSCSI with this target name (its target is then an iscsi:// URL);
   * `nbd`: the port serves NBD (an nbd:// URL; clients add an export name, a volume's).
   */
  constructor(mem: CommonMemory, index: number, name: string, sessions: number,
    private readonly host: string, private readonly port: number, kick: () => void, log: PortLog,
    private readonly iscsiTarget = '', private readonly nbd = false) {
    super(mem, index, name, sessions, kick, log);
  }

  get target(): string {
    const host = this.bound.host.includes(':') ? `[${this.bound.host}]` : this.bound.host;
    if (this.nbd) return `nbd://${host}:${this.bound.port}`;
    return this.iscsiTarget ? `iscsi://${host}:${this.bound.port}/${this.iscsiTarget}` : `tcp://${host}:${this.bound.port}`;
  }
  get address(): { host: string; port: number } { return this.bound; }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => {
        socket.setNoDelay(true);
        if (this.stopping) socket.destroy();
        else if (!this.attach(socket, socket.localAddress?.replace(/^::ffff:/, '') ?? '', socket.remoteAddress?.replace(/^::ffff:/, '') ?? '')) this.refuse(socket);
      });
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new Error(`port ${this.name}: cannot listen on ${this.host}:${this.port}: ${e.code ?? e.message}`));
      });
      server.listen(this.port, this.host, () => {
        const a = server.address() as net.AddressInfo;
        this.bound = { host: this.host, port: a.port };
        this.server = server;
        // The firmware names its portals (iSCSI SendTargets) with the port it really listens on.
        this.mem.setU32(A.MAP_ADDR + A.MAP_PORT_TABLE + this.index * A.MAP_PORT_BYTES + A.MPORT_LISTEN_PORT, a.port);
        resolve();
      });
    });
  }

  /**
   * No session is free: the peer is told why in a REJECT (PORT_FULL, with the words), the
   * connection is closed after it, and what the peer sends meanwhile is read and dropped (a close
   * with unread input would reset the connection and could lose the REJECT). An iSCSI or NBD port
   * has no message to say it in before a login or a handshake: the connection is closed
   * (docs/iscsi.md, docs/nbd.md).
   */
  private refuse(socket: net.Socket): void {
    const text = `port ${this.name} is full: ${this.sessions.length} of ${this.sessions.length} sessions`;
    this.log(`${text}; refused ${socket.remoteAddress}:${socket.remotePort}`);
    if (this.iscsiTarget || this.nbd) { socket.destroy(); return; }
    const header = { type: FrameType.REJECT, flags: 0, tag: 0, source: this.frameAddress, destination: BROADCAST, sequence: 0, offset: 0, parameter: 0 };
    this.closeSocket(socket, encodeFrame(header, encodeReject({ reason: RejectReason.PORT_FULL, header: Buffer.alloc(20), text })));
  }

  protected closeStream(stream: Duplex, reason: HangUpReason): void {
    if (reason === 'idle' || reason === 'protocol') this.closeSocket(stream as net.Socket);
    else stream.destroy();
  }

  /**
   * Ends a socket after `last` (and anything still queued) has gone, or after CLOSE_GRACE_MS at the
   * latest. What the peer sends meanwhile is read and dropped: a socket left paused (a session
   * stops reading when the firmware's ring is full) would never see the peer's FIN, and a close
   * with unread input would reset the connection. The port keeps it until it closes, so that
   * stopping the port ends it at once: server.close() waits for every connection.
   */
  private closeSocket(socket: net.Socket, last?: Buffer): void {
    this.closing.add(socket);
    const cut = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    cut.unref();
    socket.once('close', () => { clearTimeout(cut); this.closing.delete(socket); });
    socket.on('error', () => socket.destroy());
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    socket.resume();
    if (last) socket.end(last); else socket.end();
  }

  protected shut(): Promise<void> {
    for (const s of this.closing) s.destroy();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A serial device (lib/serial.ts). No modem lines are touched (a pty has none). */
export class SerialStreamPort extends StreamPort {
  private retry?: NodeJS.Timeout;

  constructor(mem: CommonMemory, index: number, name: string,
    protected device: string, private readonly baudRate: number, kick: () => void, log: PortLog) {
    super(mem, index, name, 1, kick, log);
  }

  get target(): string { return `serial://${this.device}`; }

  async start(): Promise<void> { await this.openDevice(); }

  protected async openDevice(): Promise<void> {
    let sp: SerialPort;
    try {
      sp = await openSerialLine({ path: this.device, baudRate: this.baudRate });
    } catch (e) {
      throw new Error(`port ${this.name}: cannot open ${this.device}: ${(e as Error).message}`);
    }
    this.attach(sp);
  }

  protected override ended(s: number, x: StreamSession, reason: HangUpReason): void {
    super.ended(s, x, reason);
    this.scheduleReopen();
  }

  /** SerialPort's destroy() would leave the device open: it is closed. */
  protected closeStream(stream: Duplex): void {
    (stream as SerialPort).close(() => undefined);
  }

  /**
   * A serial line has no "connection": when the device drops, it is opened again (every second
   * until it is back) so that the next peer finds it served.
   */
  private scheduleReopen(): void {
    if (this.stopping || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.stopping) return;
      this.reopen().catch((e) => {
        this.log(`${(e as Error).message}; retrying`);
        this.scheduleReopen();
      });
    }, RETRY_MS);
  }

  protected reopen(): Promise<void> { return this.openDevice(); }

  protected async shut(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
  }
}

/**
 * A socat pty pair: the host end is linked at `link` for initiators, the device end (beside it,
 * `<link>.dev`) is opened as this port's serial device. If socat exits (it does when the host end
 * is closed by the last initiator), the pair is made again at the same paths.
 */
export class PtyPort extends SerialStreamPort {
  private socat?: ChildProcess;

  constructor(mem: CommonMemory, index: number, name: string, private readonly link: string,
    baudRate: number, kick: () => void, log: PortLog) {
    super(mem, index, name, `${link}.dev`, baudRate, kick, log);
  }

  override get target(): string { return `serial://${this.link}`; }

  override async start(): Promise<void> {
    await this.makePair();
    await this.openDevice();
  }

  private async makePair(): Promise<void> {
    fs.mkdirSync(path.dirname(this.link), { recursive: true });
    for (const p of [this.link, this.device]) fs.rmSync(p, { force: true });
    // ignoreeof: socat keeps the pair when an initiator closes the host end, so the next one finds
    // the line as a devboard's cable would be. The shell around it is a watchdog: socat goes when
    // this process goes, even by SIGKILL.
    const watchdog = `socat "$@" & s=$!; trap 'kill $s 2>/dev/null' EXIT; trap 'exit 0' TERM INT; `
      + `while kill -0 ${process.pid} 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 0.5; done`;
    const child = spawn('sh', ['-c', watchdog, 'sh', `pty,raw,echo=0,link=${this.device}`, `pty,raw,echo=0,link=${this.link},ignoreeof`],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    this.socat = child;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(
      new Error(`port ${this.name}: cannot run socat (${(e as Error).message})`))));
    spawnError.catch(() => undefined);
    const deadline = Date.now() + 5000;
    while (!(fs.existsSync(this.link) && fs.existsSync(this.device))) {
      if (child.exitCode !== null) {
        throw new Error(`port ${this.name}: socat exited: ${stderr.trim() || 'is it installed? (apt-get install socat)'}`);
      }
      if (Date.now() > deadline) throw new Error(`port ${this.name}: socat made no pty pair in 5 s`);
      await Promise.race([new Promise((r) => setTimeout(r, 10)), spawnError]);
    }
    child.once('exit', () => { if (this.socat === child) this.socat = undefined; });
  }

  protected override async reopen(): Promise<void> {
    if (!this.socat) await this.makePair();
    await this.openDevice();
  }

  protected override async shut(): Promise<void> {
    await super.shut();
    const child = this.socat;
    this.socat = undefined;
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill();
      await gone;
    }
    for (const p of [this.link, this.device]) fs.rmSync(p, { force: true });
  }
}
