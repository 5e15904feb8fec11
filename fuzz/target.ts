// The array under fuzzing: the real firmware (the debug image, with its assertions) booted in
// process on a virtual clock that the fuzzer alone moves, and stream sessions whose rings the
// fuzzer fills and empties itself — no socket, no Duplex, nothing between the bytes and the
// controller's parser. A firmware abort (env.abort, a trap) stops the array; every step reports it.
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../hal/abi';
import { ArrayController } from '../harness/array';
import { parseTopology, type ArraySpec } from '../harness/topology';
import { TraceWriter } from '../harness/trace';
import { ROUND_NS } from '../harness/driver';
import { ByteRing } from '../hal/ring';
import { SessionSlot } from '../hal/channels/session';
import { FrameDecoder, type FrameSink } from '../lib/protocol';

/** Port 0 is the fuzzer's; port 1 (another channel IOP) holds the canary volumes. */
export const FUZZ_PORT = 0;
export const CANARY_PORT = 1;
export const PORT_ADDRESS = [1, 2];
export const HOST_ADDRESS = 0x0100;

/** A TRACE_COMMAND record: who sent what, and how it ended. */
export interface CommandRecord {
  port: number; session: number; lun: number; opcode: number; status: number; senseKey: number; asc: number;
}

/** Keeps the firmware's command records in memory instead of writing a file. */
class CommandCapture extends TraceWriter {
  readonly commands: CommandRecord[] = [];
  constructor() { super(''); }
  override get enabled(): boolean { return true; }
  override write(r: object): void {
    const x = r as Record<string, number | string>;
    if (x.type !== 'command') return;
    this.commands.push({
      port: x.port as number, session: x.session as number, lun: x.lun as number, opcode: x.opcode as number,
      status: x.status as number, senseKey: x.senseKey as number, asc: x.asc as number,
    });
  }
  override flush(): void { /* nothing is written */ }
  override close(): void { /* nothing to close */ }
}

export function fuzzTopology(dir: string, seed: number): object {
  return {
    mode: 'deterministic',
    seed,
    metricsIntervalMs: 3_600_000,
    arrays: [{
      name: 'fuzz',
      dir,
      cache: { size: '8MiB', destageIntervalMs: 2, destageAgeMs: 5 },
      traceCommands: true,
      iops: [{ role: 'channel' }, { role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'd0', kind: 'ram', size: '64MiB' }, { name: 'd1', kind: 'ram', size: '64MiB' }],
      ports: [
        { name: 'fz', iop: 0, transport: 'tcp', host: '127.0.0.1', port: 0, sessions: 4, address: PORT_ADDRESS[0] },
        { name: 'cn', iop: 1, transport: 'tcp', host: '127.0.0.1', port: 0, sessions: 2, address: PORT_ADDRESS[1] },
      ],
    }],
  };
}

/** A transmit ring read where its bytes lie: a decoder copies only what it keeps. */
class TxRing extends ByteRing {
  drainInPlace(f: (b: Buffer) => void): number {
    const n = this.used();
    if (n === 0) return 0;
    const start = this.head() & this.mask;
    const first = Math.min(n, this.capacity - start);
    const buffer = this.mem.u8.buffer as ArrayBuffer;
    f(Buffer.from(buffer, this.data + start, first));
    if (first < n) f(Buffer.from(buffer, this.data, n - first));
    this.setHead(this.head() + n);
    return n;
  }
}

/** A session slot whose rings the fuzzer reads and writes directly. */
export class Link {
  readonly slot: SessionSlot;
  readonly rx: ByteRing;
  readonly tx: TxRing;
  private readonly decoder = new FrameDecoder();
  private outbox: Buffer[] = [];
  closed = false;
  /** Why the controller asked for this connection to be closed (HANGUP_*), once it has. */
  hungUp = A.HANGUP_NONE;

  constructor(readonly target: FuzzTarget, readonly port: number, readonly index: number, private readonly sink: FrameSink,
    private readonly onHangUp?: (why: number) => void) {
    this.slot = new SessionSlot(target.array.mem, port, index);
    this.rx = new ByteRing(target.array.mem, this.slot.ring(A.SES_RX));
    this.tx = new TxRing(target.array.mem, this.slot.ring(A.SES_TX));
    this.slot.open([this.rx, this.tx]);
  }

  /** Hands what the controller sent, frame by frame and where it lies, to the sink; then frees it. */
  drain(): number {
    return this.tx.drainInPlace((b) => this.decoder.feed(b, this.sink));
  }

  /** Bytes into the rx ring now, as many as fit; the caller runs the controller. */
  write(bytes: Buffer): number { return this.rx.write(bytes); }

  /** Bytes to go into the rx ring before the next rounds, as the ring makes room. */
  queue(bytes: Buffer): void { this.outbox.push(bytes); }

  /** Moves queued bytes into the rx ring. Returns the bytes moved. */
  pumpOut(): number {
    let moved = 0;
    while (this.outbox.length > 0) {
      const b = this.outbox[0];
      const n = this.rx.write(b);
      moved += n;
      if (n < b.length) { this.outbox[0] = b.subarray(n); break; }
      this.outbox.shift();
    }
    return moved;
  }

  /**
   * The controller asked for the connection to be closed (an idle session, a protocol end): as a
   * binding does (hal/channels/stream.ts), the fuzzer closes it at once, its output already taken,
   * and tells the owner, who can send nothing more on it. Returns 1 when it closed.
   */
  honourHangUp(): number {
    const why = this.slot.hangupRequest;
    if (this.closed || why === A.HANGUP_NONE) return 0;
    this.hungUp = why;
    this.closed = true;
    this.outbox = [];
    this.slot.hangUp();
    this.target.unlink(this);
    this.onHangUp?.(why);
    return 1;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.slot.hangUp();
    this.target.unlink(this);
    for (let i = 0; i < 1000 && !this.slot.free && !this.target.failed; i++) this.target.runIdle();
  }
}

export class FuzzTarget {
  now = 0;
  private readonly links = new Set<Link>();

  private constructor(readonly array: ArrayController, private readonly capture: CommandCapture, readonly dir: string,
    private readonly ownDir: boolean) {}

  /** Boots the array of fuzzTopology() in `dir` (a new temporary directory if none). */
  static async boot(seed: number, dir?: string): Promise<FuzzTarget> {
    const own = dir === undefined;
    const d = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-fuzz-'));
    const topo = parseTopology(fuzzTopology(path.join(d, 'array'), seed), d);
    const capture = new CommandCapture();
    const array = await ArrayController.create(topo.arrays[0] as ArraySpec, {
      mode: 'deterministic', seed, debug: true, trace: capture, metricsIntervalMs: topo.metricsIntervalMs, log: () => undefined,
      io: 'inline', // the rounds run synchronously here: NV writes must end inside them
    });
    await array.closePorts(); // no listening sockets: the fuzzer opens session slots itself
    const t = new FuzzTarget(array, capture, d, own);
    t.runIdle();
    return t;
  }

  get failed(): Error | undefined { return this.array.failed; }

  /**
   * Opens a session on a free slot of `port`; the controller's frames go to `sink`, and `onHangUp`
   * hears when the controller closes the session (the link is closed by then).
   */
  open(port: number, sink: FrameSink, onHangUp?: (why: number) => void): Link {
    const sessions = this.array.spec.ports[port].sessions;
    for (let s = 0; s < sessions; s++) {
      if ([...this.links].some((l) => l.port === port && l.index === s)) continue;
      if (!new SessionSlot(this.array.mem, port, s).free) continue;
      const l = new Link(this, port, s, sink, onHangUp);
      this.links.add(l);
      this.runIdle();
      return l;
    }
    throw new Error(`port ${port}: no free session slot`);
  }

  unlink(l: Link): void { this.links.delete(l); }

  /** One round of every IOP at the current time; the sessions' output is taken. Returns work done. */
  round(): number {
    let work = 0;
    for (const l of this.links) work += l.pumpOut();
    work += this.array.round(this.now);
    for (const l of this.links) work += l.drain();
    for (const l of [...this.links]) work += l.honourHangUp();
    return work;
  }

  /** Rounds until nothing is runnable at the current time (a busy round takes ROUND_NS). */
  runIdle(): void {
    for (let i = 0; i < 1_000_000; i++) {
      if (this.round() === 0 || this.failed) return;
      this.now += ROUND_NS;
    }
    throw new Error('the array never went idle in 10^6 rounds');
  }

  nextTimerNs(): number { return this.array.nextTimerNs(); }

  /** Moves the clock to `t` (never back), running what is due on the way. */
  jumpTo(t: number): void {
    this.now = Math.max(this.now + ROUND_NS, t);
    this.runIdle();
  }

  /**
   * Runs, jumping the clock to each next timer, until `done()` or `boundNs` of virtual time
   * passed; then throws with `what` in the message.
   */
  until(done: () => boolean, what: string, boundNs = 120e9): void {
    const start = this.now;
    this.runIdle();
    while (!done()) {
      if (this.failed) throw this.failed;
      const next = this.nextTimerNs();
      if (next === Infinity || next - start > boundNs) {
        throw new Error(`${what}: not done within ${(boundNs / 1e9).toFixed(0)} s of virtual time`);
      }
      this.jumpTo(next);
    }
  }

  stats(): number[] { return this.array.stats(); }

  /** The command records since the last call. */
  takeCommands(): CommandRecord[] { return this.capture.commands.splice(0); }

  async close(): Promise<void> {
    for (const l of [...this.links]) if (!this.failed) l.close();
    await this.array.release();
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
