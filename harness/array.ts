// One controller (array): its common memory, one firmware instance per IOP, and the bindings of
// its media, NV memory and ports. It does no scheduling of its own: a driver (harness/driver.ts)
// calls round(now) and decides what "now" is.
import * as fs from 'fs';
import * as A from '../hal/abi';
import { CommonMemory } from '../hal/memory';
import { allowRelaxedSimd } from '../lib/kernels';
import { EntryRing } from '../hal/ring';
import { NvBinding, NvFault } from '../hal/nv';
import { MediumBinding } from '../hal/media/binding';
import { TapeLibraryBinding } from '../hal/tape/library';
import { MediumStore, RamStore, FileStore } from '../hal/media/store';
import { QueueSession } from '../hal/channels/queue';
import { SessionSlot } from '../hal/channels/session';
import { StreamPort, TcpPort, SerialStreamPort, PtyPort } from '../hal/channels/ports';
import { Prng } from '../hal/prng';
import { packagePath } from '../lib/paths';
import { writeConfig } from './config';
import { TraceWriter, decodeTrace, traceTypeName, isRemoteTrace } from './trace';
import { parseFault, parseNvFault, parseTapeFault, type ArraySpec, type Mode, type FaultSpec, type TapeFault } from './topology';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;

const ERRORS: Record<number, string> = {
  [A.ERR_CONFIG_MAGIC]: 'config block has a bad magic number', [A.ERR_CONFIG_VERSION]: 'config block version differs from the firmware ABI',
  [A.ERR_IOP_COUNT]: 'IOP count out of range', [A.ERR_MEDIA_COUNT]: 'a medium is out of range (count, size, scheduler or queue depth)',
  [A.ERR_PORT_COUNT]: 'port count out of range', [A.ERR_CACHE_SLOTS]: 'cache size out of range',
  [A.ERR_MEMORY]: 'common memory cannot grow to the map size', [A.ERR_STATIC]: 'firmware static data is too large',
  [A.ERR_NV_GEOMETRY]: 'the NV image holds dirty cache data this boot cannot carry over: for another cache size, of more than 14 GiB of media removed, or in a version 3 or 4 image (restore the old cache size and media, or stop the array gracefully with the firmware that wrote it; or remove the NV file to lose the data)',
  [A.ERR_PORT]: 'a port names a bad IOP or kind', [A.ERR_ROLE]: 'IOP roles are wrong (exactly one disk IOP)',
  [A.ERR_NOT_LAID_OUT]: 'boot before layout',
  [A.ERR_NV_VERSION]: 'the NV image was written by another firmware version (detail: its version); this firmware reads NV versions 3 to 8 (upgraded at boot) and 9 and no other: restore the firmware that wrote it, or remove the NV file to start over (its volumes and cached data are lost)',
  [A.ERR_NV_CORRUPT]: 'the NV image is damaged: neither copy of its header is whole, or its table directory does not match (detail: the table); remove the NV file to start over (its volumes and cached data are lost)',
};

/**
 * An assertion failed in the firmware (env.abort): the array stops (its other arrays keep running),
 * and every command waiting on it fails with this error, which names the IOP, file and line.
 */
export class FirmwareAbort extends Error {
  constructor(readonly array: string, readonly iop: number, readonly role: string, readonly assertion: string,
    readonly file: string, readonly line: number, readonly column: number) {
    super(`array ${array}: firmware abort in IOP ${iop} (${role}): ${assertion} at ${file}:${line}:${column}`);
    this.name = 'FirmwareAbort';
  }
}

export class BootError extends Error {
  constructor(readonly array: string, readonly code: number, detail: number, what: string) {
    super(`array ${array}: ${what}: ${ERRORS[code] ?? `error ${code}`} (detail ${detail})`);
    this.name = 'BootError';
  }
}

/** A control request gives up when no destage completes for this long while it is open. */
export const CONTROL_STALL_MS = 60_000;

/** Dirty data a flush could not write, and why; it stays in NV for the next boot. */
export interface StuckSlot { volume: number; lba: number; blocks: number; medium: string | null; reason: string }

/** What a flush or shutdown left behind. */
export interface ControlResult {
  array: string;
  /** Dirty cache slots left (in NV). */
  dirtyLeft: number;
  /** The first CONTROL_STUCK_MAX of them, by volume range and medium. */
  stuck: StuckSlot[];
  /** The errno of a failing NV file (writes refused, nothing marked clean), or null. */
  nvErrno: number | null;
  /** Shutdown only: the NV image was marked clean. */
  nvClean?: boolean;
}

interface ControlWaiter {
  seq: number; op: number; stallNs: number; deadlineNs: number; destages: number;
  resolve(r: ControlResult): void; reject(e: Error): void;
}

export interface ArrayOptions {
  mode: Mode;
  seed: number;
  debug?: boolean;
  trace: TraceWriter;
  metricsIntervalMs: number;
  log: (line: string) => void;
  /**
   * Where NV and file-medium I/O runs: 'threads' (default; off the array's thread), or 'inline'
   * (blocking calls on it, for a driver that runs rounds synchronously and so never lets a thread's
   * answer in, as the fuzzer does). Completions are posted at the start of the next round either
   * way: a deterministic run gives the same trace with both.
   */
  io?: 'threads' | 'inline';
}

interface FirmwareExports { layout(): number; boot(role: number, index: number): number; poll(now: number): number }

const modules = new Map<string, unknown>();
function firmwareModule(debug: boolean): unknown {
  const file = packagePath('build', debug ? 'controller.debug.wasm' : 'controller.wasm');
  let m = modules.get(file);
  if (!m) {
    if (!fs.existsSync(file)) throw new Error(`firmware image ${file} is missing: run npm run build`);
    allowRelaxedSimd(); // the link unit's redundancy calls the RS kernel, built with relaxed SIMD (scripts/build.js)
    m = new Wasm.Module(fs.readFileSync(file));
    modules.set(file, m);
  }
  return m;
}

/** A queue port's sessions, for in-process initiators. */
export class QueuePort {
  readonly sessions: Array<QueueSession | undefined>;
  constructor(private readonly array: ArrayController, readonly index: number, readonly name: string, count: number) {
    this.sessions = new Array(count);
  }
  get target(): string { return `inproc://${this.array.name}/${this.name}`; }

  open(): QueueSession {
    if (this.array.failed) throw new Error(`array ${this.array.name} has stopped: ${this.array.failed.message}`);
    for (let s = 0; s < this.sessions.length; s++) {
      const cur = this.sessions[s];
      if (cur && !cur.closedByHost) continue;
      if (!new SessionSlot(this.array.mem, this.index, s).free) continue;
      const q = new QueueSession(this.array.mem, this.index, s, this.target, () => this.array.kick());
      this.sessions[s] = q;
      return q;
    }
    throw new Error(`port ${this.name}: all ${this.sessions.length} sessions are in use`);
  }
}

export class ArrayController {
  readonly name: string;
  readonly memory: { buffer: SharedArrayBuffer; grow(n: number): number };
  mem!: CommonMemory;
  private readonly fw: FirmwareExports[] = [];
  readonly media: MediumBinding[] = [];
  /** The tape library attached to the array, if the topology has one (docs/tape.md). */
  tape: TapeLibraryBinding | undefined;
  nv!: NvBinding;
  readonly streamPorts: Array<StreamPort | undefined> = [];
  readonly queuePorts: Array<QueuePort | undefined> = [];
  private readonly doorbells: number[] = [];
  /** Link queue ports whose transmit doorbell rang since the network last took their packets. */
  readonly linkTxRung: number[] = [];
  /** NV entries captured at doorbells since the last round counted them. */
  private nvCaptured = 0;
  private ioWaiters: Array<() => void> = [];
  /** Answers handed to in-process hosts and not yet delivered, by session ("port q0 session 1"). */
  private readonly handed = new Map<string, number>();
  private deliveryWaiters: Array<() => void> = [];
  /**
   * When answers handed to an in-process host in a round count as delivered. By default at the next
   * turn of the event loop: every promise job the host chained on them (its next command) has run
   * by then. Tests delay it, as the media's and the NV's gates delay I/O ends.
   */
  deliveryGate: (delivered: () => void) => void = (delivered) => setImmediate(delivered);
  private readonly wakeAddrs: number[] = [];
  private controlWaiters: ControlWaiter[] = [];
  private trace!: EntryRing;
  failed: Error | undefined;
  /** Set by the driver: asks for a round soon (new input arrived). */
  kick: () => void = () => undefined;
  private lastMetricsNs = 0;
  private lastStats: number[] = [];
  bootInfo = { nvLoadedBytes: 0, recoveredSlots: 0 };

  private constructor(readonly spec: ArraySpec, private readonly o: ArrayOptions) {
    this.name = spec.name;
    this.memory = new Wasm.Memory({ initial: (A.REGIONS_ADDR / A.PAGE_BYTES) + 1, maximum: 32768, shared: true });
  }

  /** Lays out the memory, loads the NV image, boots every IOP and starts the ports. */
  static async create(spec: ArraySpec, o: ArrayOptions): Promise<ArrayController> {
    const a = new ArrayController(spec, o);
    try {
      a.boot();
      await a.startPorts();
    } catch (e) {
      await a.release();
      throw e;
    }
    return a;
  }

  private boot(): void {
    const { spec, o } = this;
    fs.mkdirSync(spec.dir, { recursive: true });
    writeConfig(new CommonMemory(this.memory), spec, { mode: o.mode, seed: o.seed });
    const module = firmwareModule(o.debug ?? false);
    for (let i = 0; i < spec.iops.length; i++) {
      const imports = {
        env: {
          memory: this.memory,
          abort: (m: number, f: number, line: number, col: number) => {
            const cm = new CommonMemory(this.memory);
            throw new FirmwareAbort(this.name, i, spec.iops[i], m ? cm.asString(m) : 'abort', f ? cm.asString(f) : '?', line, col);
          },
        },
        hal: {
          // The NV doorbell captures the entries' bytes at once: the firmware may change them after.
          doorbell: (id: number) => { if (id === A.DB_NV) this.nvCaptured += this.nv.capture(); else this.doorbells.push(id); },
          log: (level: number, msg: number, x: number, y: number) => {
            const text = new CommonMemory(this.memory).asString(msg);
            o.log(`${this.name} iop${i} ${['', 'info', 'warn', 'error'][level] ?? level}: ${text} (${x}, ${y})`);
          },
        },
      };
      this.fw.push(new Wasm.Instance(module, imports).exports as FirmwareExports);
    }
    const e = this.fw[0].layout();
    this.mem = new CommonMemory(this.memory); // layout() grew the memory: views of the final size
    if (e !== 0) throw new BootError(this.name, e, this.mem.u32(A.MAP_ADDR + A.MAP_ERROR_DETAIL), 'layout');
    this.nv = new NvBinding(this.mem, spec.nv.path, spec.nv.sync, new Prng(o.seed).fork(`${this.name}/nv`), o.io === 'inline');
    this.nv.onDone = this.ioDone;
    this.nv.onError = (m) => o.log(`${this.name} nv: ${m}`);
    this.nv.onPowerLoss = (why) => {
      o.log(`${this.name}: power failed (${why})`);
      this.powerFail(why);
    };
    this.bootInfo.nvLoadedBytes = this.nv.load();
    this.nv.attach(spec.iops.length);
    for (const f of spec.nv.faults) this.nv.inject(f);
    this.trace = new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.MAP_TRACE_RING));
    const prng = new Prng(o.seed).fork(this.name);
    spec.media.forEach((m, i) => {
      const store: MediumStore = m.kind === 'ram' ? new RamStore(m.bytes) : new FileStore(m.path, m.bytes, o.io === 'inline');
      const b = new MediumBinding(this.mem, i, m.name, store, m.bytes, m.timing, m.faults, prng.fork(m.name));
      b.onDone = this.ioDone;
      this.media.push(b);
    });
    if (spec.library) {
      this.tape = new TapeLibraryBinding(this.mem, spec.library);
      this.tape.log = (m) => o.log(`${this.name} ${spec.library!.name}: ${m}`);
      this.tape.onDone = this.ioDone;
    }
    for (let i = 0; i < spec.iops.length; i++) {
      const r = this.fw[i].boot(spec.iops[i] === 'disk' ? A.ROLE_DISK : A.ROLE_CHANNEL, i);
      if (r !== 0) throw new BootError(this.name, r, this.mem.u32(A.MAP_ADDR + A.MAP_ERROR_DETAIL), `boot of IOP ${i}`);
      this.wakeAddrs.push(A.MAP_ADDR + A.MAP_IOP_TABLE + i * A.MAP_IOP_BYTES + A.MIOP_WAKE_AT_NS);
    }
    this.nv.trim(); // the firmware took the image: the file is cut to the region (hal/nv.ts)
    this.lastStats = this.stats();
    this.dispatch(0);
    this.nv.submit();
  }

  private async startPorts(): Promise<void> {
    const log = (m: string) => this.o.log(`${this.name} ${m}`);
    const kick = () => this.kick();
    for (let i = 0; i < this.spec.ports.length; i++) {
      const p = this.spec.ports[i];
      let sp: StreamPort | undefined;
      if (p.transport === 'tcp') sp = new TcpPort(this.mem, i, p.name, p.sessions, p.host, p.port, kick, log, p.targetName, p.protocol === 'nbd');
      else if (p.transport === 'serial') sp = new SerialStreamPort(this.mem, i, p.name, p.path, p.baudRate, kick, log);
      else if (p.transport === 'pty') sp = new PtyPort(this.mem, i, p.name, p.link, p.baudRate, kick, log);
      else this.queuePorts[i] = new QueuePort(this, i, p.name, p.sessions);
      if (sp) {
        this.streamPorts[i] = sp;
        await sp.start();
      }
    }
  }

  /** Where each port is reached. */
  get targets(): Array<{ port: string; target: string }> {
    return this.spec.ports.map((p, i) => ({ port: p.name, target: (this.streamPorts[i] ?? this.queuePorts[i])!.target }));
  }

  port(name: string): StreamPort | QueuePort {
    const i = this.spec.ports.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`array ${this.name} has no port ${JSON.stringify(name)} (ports: ${this.spec.ports.map((p) => p.name).join(', ')})`);
    return (this.streamPorts[i] ?? this.queuePorts[i])!;
  }

  /** An in-process session on a queue port: a CommandTransport for the client library. */
  openSession(portName?: string): QueueSession {
    const qp = portName ? this.port(portName) : this.queuePorts.find((q) => q);
    if (!(qp instanceof QueuePort)) throw new Error(`array ${this.name}: ${portName ? `port ${portName} is not an inproc port` : 'no inproc port in the topology'}`);
    return qp.open();
  }

  /**
   * One pass: the completions of I/O that has ended, every IOP polled once in index order, then
   * the bindings; NV entries captured in the pass go to the writer as one batch if it is free.
   * Returns the work done.
   */
  round(now: number): number {
    if (this.failed) return 0;
    let work = this.nv.reap();
    for (const m of this.media) if (m.nextTimerNs() <= now) work += m.service(now);
    if (this.tape && this.tape.nextTimerNs() <= now) work += this.tape.service(now);
    try {
      for (let i = 0; i < this.fw.length; i++) {
        work += this.fw[i].poll(now);
        if (this.doorbells.length > 0) work += this.dispatch(now);
      }
    } catch (e) {
      this.fail(e as Error);
      return 0;
    }
    for (const m of this.media) if (m.nextStartNs() <= now) work += m.take(now);
    if (this.nv.submit()) work++;
    work += this.nvCaptured;
    this.nvCaptured = 0;
    for (const p of this.streamPorts) if (p) work += p.pump();
    if (this.trace.used() > 0) this.drainTrace();
    if (this.controlWaiters.length > 0) this.checkControl(now);
    if (this.o.trace.enabled && now - this.lastMetricsNs >= this.o.metricsIntervalMs * 1e6) this.metrics(now);
    return work;
  }

  private dispatch(now: number): number {
    let work = 0;
    const ids = this.doorbells.splice(0);
    for (const id of ids) {
      if (id >= A.DB_MEDIUM_BASE && id < A.DB_MEDIUM_BASE + A.MAX_MEDIA) work += this.media[id - A.DB_MEDIUM_BASE]?.take(now) ?? 0;
      else if (id >= A.DB_TX_BASE && id < A.DB_CQ_BASE) {
        const port = (id - A.DB_TX_BASE) >> 4;
        if (port >= this.spec.ports.length) this.linkTxRung.push(port); // a link queue (harness/network.ts takes its packets)
        else this.streamPorts[port]?.transmit((id - A.DB_TX_BASE) & 15);
      }
      else if (id >= A.DB_CQ_BASE && id < A.DB_TRACE) this.handOver((id - A.DB_CQ_BASE) >> 4, (id - A.DB_CQ_BASE) & 15);
      else if (id === A.DB_TRACE) this.drainTrace();
      else if (id >= A.DB_TAPE_BASE && id < A.DB_TAPE_BASE + A.MAX_TAPE_DEVICES) work += this.tape?.take(id - A.DB_TAPE_BASE, now) ?? 0;
    }
    return work;
  }

  /**
   * Takes a session's completions off its ring (its CQ doorbell): the host's promises settle. In
   * deterministic mode they are counted until delivered (deliveryGate), and the driver keeps the
   * clock where it is until then (docs/hal.md, Time).
   */
  private handOver(port: number, session: number): void {
    const n = this.queuePorts[port]?.sessions[session]?.drain() ?? 0;
    if (n === 0 || this.o.mode !== 'deterministic') return;
    const who = `port ${this.spec.ports[port].name} session ${session}`;
    this.handed.set(who, (this.handed.get(who) ?? 0) + n);
    this.deliveryGate(() => {
      const left = (this.handed.get(who) ?? n) - n;
      if (left > 0) this.handed.set(who, left); else this.handed.delete(who);
      if (this.handed.size === 0) for (const w of this.deliveryWaiters.splice(0)) w();
    });
  }

  /** Answers handed to in-process hosts whose delivery has not come yet (deterministic mode). */
  get hostDeliveries(): number {
    let n = 0;
    for (const k of this.handed.values()) n += k;
    return n;
  }

  /** Resolves when every answer handed to an in-process host has been delivered. */
  hostDelivered(): Promise<void> {
    return this.handed.size === 0 ? Promise.resolve() : new Promise((r) => this.deliveryWaiters.push(r));
  }

  /** The undelivered answers in words ("2 answer(s) to port q0 session 1"), for the error of a bounded wait. */
  undelivered(): string[] {
    return [...this.handed].map(([who, n]) => `${n} answer(s) to ${who}`);
  }

  /** The earliest time something is due without new input: an IOP timer, a medium completion, a metrics record. */
  nextTimerNs(): number {
    let t = Infinity;
    const v = this.mem.view;
    for (const a of this.wakeAddrs) {
      const w = v.getFloat64(a, true);
      if (w > 0 && w < t) t = w;
    }
    for (const m of this.media) t = Math.min(t, m.nextTimerNs());
    if (this.tape) t = Math.min(t, this.tape.nextTimerNs());
    for (const w of this.controlWaiters) if (w.deadlineNs >= 0) t = Math.min(t, w.deadlineNs);
    // A metrics record is due every interval, also while nothing else happens.
    if (this.o.trace.enabled && !this.failed) t = Math.min(t, this.lastMetricsNs + this.o.metricsIntervalMs * 1e6);
    return t;
  }

  /** I/O calls started so far (NV batches, store calls, also those that ended at once). */
  get ioStarts(): number {
    let n = this.nv.counters.batches;
    for (const m of this.media) n += m.callsStarted;
    if (this.tape) n += this.tape.callsStarted;
    return n;
  }

  /** I/O is in flight on other threads (an NV batch, a medium's store call). */
  get ioBusy(): boolean {
    if (this.nv.busy) return true;
    for (const m of this.media) if (m.ioBusy) return true;
    if (this.tape?.ioBusy) return true;
    return false;
  }

  /**
   * Resolves when no I/O is in flight. The deterministic driver waits for this after every round
   * that started I/O, so completions are posted in the next round whatever the threads did meanwhile.
   */
  ioSettled(): Promise<void> {
    return this.ioBusy ? new Promise((r) => this.ioWaiters.push(r)) : Promise.resolve();
  }

  /** A binding's I/O has ended: in real time, a round posts its completion. */
  private readonly ioDone = (): void => {
    if (this.ioWaiters.length > 0 && !this.ioBusy) for (const w of this.ioWaiters.splice(0)) w();
    if (this.o.mode === 'realtime') this.kick();
  };

  /** Something a host waits for is under way: virtual time may be advanced to get it done. */
  get hostWaiting(): boolean {
    if (this.controlWaiters.length > 0 || this.nv.queued > 0 || this.mediaBecomingReady() > 0) return true;
    for (const m of this.media) if (m.busy) return true;
    if (this.tape?.busy) return true;
    for (const q of this.queuePorts) if (q) for (const s of q.sessions) if (s && s.outstanding > 0) return true;
    return false;
  }

  // ---- control: flush, shutdown ----------------------------------------------------------------

  /**
   * Asks the disk IOP to flush (CTL_FLUSH) or flush and mark the NV image clean (CTL_SHUTDOWN).
   * Resolves with what could not be destaged. Rejects when no destage has completed for
   * `stallMs` (array time: virtual in deterministic mode) while the request is open.
   */
  control(op: number, stallMs = CONTROL_STALL_MS): Promise<ControlResult> {
    if (this.failed) return Promise.reject(new Error(`array ${this.name}: ${op === A.CTL_SHUTDOWN ? 'shutdown' : 'flush'} refused: ${this.failed.message}`));
    const seq = (this.mem.u32(A.MAP_ADDR + A.MAP_CONTROL_SEQ) + 1) >>> 0;
    this.mem.setU32(A.MAP_ADDR + A.MAP_CONTROL, op);
    this.mem.store32(A.MAP_ADDR + A.MAP_CONTROL_SEQ, seq);
    const done = new Promise<ControlResult>((resolve, reject) => this.controlWaiters.push({
      seq, op, resolve, reject, stallNs: stallMs * 1e6, deadlineNs: -1, destages: -1,
    }));
    this.kick();
    return done;
  }

  private checkControl(now: number): void {
    const done = this.mem.load32(A.MAP_ADDR + A.MAP_CONTROL_DONE);
    const destages = this.stats()[A.STAT_DESTAGES];
    const open: ControlWaiter[] = [];
    for (const w of this.controlWaiters) {
      if (w.seq === done) { w.resolve(this.controlResult(w.op)); continue; }
      if (w.destages !== destages) { w.destages = destages; w.deadlineNs = now + w.stallNs; } // progress: the bound starts again
      if (now >= w.deadlineNs) {
        const what = w.op === A.CTL_SHUTDOWN ? 'shutdown' : 'flush';
        w.reject(new Error(`array ${this.name}: ${what} made no progress for ${w.stallNs / 1e6} ms: `
          + `no destage completed; waiting for: ${this.waitingFor().join(', ') || 'the disk IOP'}`));
        continue;
      }
      open.push(w);
    }
    this.controlWaiters = open;
  }

  private controlResult(op: number): ControlResult {
    const m = this.mem;
    const stuck: StuckSlot[] = [];
    const n = Math.min(m.u32(A.MAP_ADDR + A.MAP_CONTROL_STUCK), A.CONTROL_STUCK_MAX);
    for (let i = 0; i < n; i++) {
      const e = A.MAP_ADDR + A.MAP_CONTROL_STUCK_LIST + i * A.CSE_BYTES;
      const medium = m.u16(e + A.CSE_MEDIUM);
      const reason = m.u8At(e + A.CSE_REASON);
      stuck.push({
        volume: m.u16(e + A.CSE_VOLUME), lba: m.u64(e + A.CSE_LBA), blocks: m.u32(e + A.CSE_BLOCKS),
        medium: medium === 0xFFFF ? null : (this.spec.media[medium]?.name ?? String(medium)),
        reason: reason === A.CSR_NO_MEDIUM ? 'medium not in the topology' : reason === A.CSR_NOT_READY ? 'medium dead'
          : reason === A.CSR_LOST ? 'medium lost (blank or another array\'s)'
            : reason === A.CSR_NV ? 'NV file failing: the chunk\'s init map mark is not persisted (the medium is fine)' : 'write error',
      });
    }
    const nvErrno = m.u32(A.MAP_ADDR + A.MAP_CONTROL_NV_ERRNO);
    return {
      array: this.name, dirtyLeft: m.u32(A.MAP_ADDR + A.MAP_CONTROL_LEFT), stuck,
      nvErrno: nvErrno === 0 ? null : nvErrno,
      ...(op === A.CTL_SHUTDOWN ? { nvClean: m.u32(A.MAP_ADDR + A.MAP_CONTROL_CLEAN) === 1 } : {}),
    };
  }

  /** Media whose label the disk IOP is still checking (MEDS_BECOMING_READY): their volumes are not ready yet. */
  mediaBecomingReady(): number {
    let n = 0;
    for (let m = 0; m < this.media.length; m++) {
      const st = this.mem.u32(A.MAP_ADDR + A.MAP_MEDIA_TABLE + m * A.MAP_MEDIUM_BYTES + A.MMED_STATE);
      if (st === A.MEDS_BECOMING_READY || st === A.MEDS_UNKNOWN) n++;
    }
    return n;
  }

  /** What a host waiting on this array waits for, in words (for errors of bounded waits). */
  waitingFor(): string[] {
    const out: string[] = [];
    if (this.controlWaiters.length > 0) out.push(`${this.controlWaiters.length} control request(s) (flush or shutdown)`);
    if (this.mediaBecomingReady() > 0) out.push(`${this.mediaBecomingReady()} medium label check(s)`);
    if (this.nv.queued > 0) out.push(`${this.nv.queued} NV write(s)`);
    for (const m of this.media) if (m.busy) out.push(`medium ${m.name}`);
    if (this.tape) out.push(...this.tape.busyNames());
    for (const q of this.queuePorts) {
      if (!q) continue;
      const n = q.sessions.reduce((k, x) => k + (x ? x.outstanding : 0), 0);
      if (n > 0) out.push(`${n} command(s) on port ${q.name}`);
    }
    return out;
  }

  // ---- faults ------------------------------------------------------------------------------------

  /**
   * Injects a fault while running: "disk1 read error at 4096 [count 8]", "disk1 write error at 0",
   * "disk1 slow 20", "disk1 dead", "disk1 heal" (clears the medium's faults); on the NV memory
   * "nv error ENOSPC [count 3]", "nv torn [bytes 100]", "nv power loss after 12 writes", "nv heal".
   */
  inject(text: string): FaultSpec | NvFault | TapeFault | undefined {
    if (/^\s*nv(\s|$)/.test(text)) return this.injectNv(text);
    const first = /^\s*(\S+)/.exec(text)?.[1];
    if (this.tape && first && this.tape.driveNamed(first)) return this.injectTape(text);
    if (this.tape && first === this.tape.spec.name) { this.tape.operator(text); return undefined; } // "library0 import|export <barcode>"

    const m = /^\s*(\S+)\s+(?:(read|write) error at (\d+)(?: count (\d+))?|slow (\d+(?:\.\d+)?)|(dead)|(heal))\s*$/.exec(text);
    if (!m) throw new Error(`cannot parse fault ${JSON.stringify(text)}: expected "<medium> read error at <lba> [count <n>]", "<medium> write error at <lba>", "<medium> slow <factor>", "<medium> dead" or "<medium> heal"`);
    const medium = this.media.find((x) => x.name === m[1]);
    if (!medium) throw new Error(`no medium ${JSON.stringify(m[1])} in array ${this.name} (media: ${this.media.map((x) => x.name).join(', ')})`);
    if (m[7]) { medium.heal(); return undefined; }
    const raw = m[2] ? { type: `${m[2]}Error`, lba: Number(m[3]), count: Number(m[4] ?? 1) } : m[5] ? { type: 'slow', factor: Number(m[5]) } : { type: 'dead' };
    const fault = parseFault(raw, `fault "${text.trim()}"`, medium.sectors);
    medium.inject(fault);
    return fault;
  }

  /**
   * A tape drive's fault: "drive0 write error at 12" (logical object 12), "drive0 read error at 3",
   * "drive0 end of medium at 8MiB", "drive0 offline", "drive0 heal".
   */
  private injectTape(text: string): TapeFault | undefined {
    const m = /^\s*(\S+)\s+(?:(read|write) error at (\d+)|end of medium at (\S+)|(offline)|(heal))\s*$/.exec(text);
    if (!m) throw new Error(`cannot parse fault ${JSON.stringify(text)}: expected "<drive> write error at <block>", "<drive> read error at <block>", "<drive> end of medium at <size>", "<drive> offline" or "<drive> heal"`);
    if (m[6]) { this.tape!.heal(m[1]); return undefined; }
    const raw = m[2] ? { type: `${m[2]}Error`, block: Number(m[3]) } : m[4] ? { type: 'endOfMedium', size: m[4] } : { type: 'offline' };
    const fault = parseTapeFault(raw, `fault "${text.trim()}"`);
    this.tape!.inject(m[1], fault);
    return fault;
  }

  private injectNv(text: string): NvFault | undefined {
    const m = /^\s*nv\s+(?:error\s+(\w+)(?:\s+count\s+(\d+))?|(torn)(?:\s+bytes\s+(\d+))?(?:\s+after\s+(\d+)\s+writes?)?|power\s+loss\s+after\s+(\d+)(?:\s+writes?)?|(heal))\s*$/.exec(text);
    if (!m) throw new Error(`cannot parse fault ${JSON.stringify(text)}: expected "nv error <ENOSPC|EIO|errno> [count <n>]", "nv torn [bytes <n>] [after <n> writes]", "nv power loss after <n> writes" or "nv heal"`);
    if (m[7]) { this.nv.heal(); return undefined; }
    const raw = m[1] ? { type: 'error', errno: m[1], ...(m[2] ? { count: Number(m[2]) } : {}) }
      : m[3] ? { type: 'torn', ...(m[4] ? { bytes: Number(m[4]) } : {}), ...(m[5] ? { afterWrites: Number(m[5]) } : {}) }
        : { type: 'powerLoss', afterWrites: Number(m[6]) };
    const fault = parseNvFault(raw, `fault "${text.trim()}"`);
    this.nv.inject(fault);
    return fault;
  }

  // ---- statistics and trace ----------------------------------------------------------------------

  /** The IOPs' counters summed (STAT_* order). */
  stats(): number[] {
    const out = new Array<number>(A.STAT_COUNT).fill(0);
    for (let i = 0; i < this.fw.length; i++) {
      const base = this.mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + i * A.MAP_IOP_BYTES + A.MIOP_STATS);
      for (let s = 0; s < A.STAT_COUNT; s++) out[s] += this.mem.u64(base + s * 8);
    }
    return out;
  }

  private drainTrace(): void {
    const m = this.mem;
    const w = this.o.trace;
    for (let e = this.trace.peek(); e >= 0; e = this.trace.peek()) {
      if (w.enabled) {
        const type = m.u16(e + A.TR_TYPE);
        w.write({
          t: m.f64(e + A.TR_TIME_NS), array: this.name, iop: m.u8At(e + A.TR_IOP), seq: m.u32(e + A.TR_SEQ),
          // Remote copy's records name the array's node: the sender node of the records at its peers (harness/follow.ts).
          ...(isRemoteTrace(type) && this.spec.linkNode ? { node: this.spec.linkNode.node } : {}),
          type: traceTypeName(type),
          ...decodeTrace(type, m.u32(e + A.TR_A), m.u32(e + A.TR_B), m.u32(e + A.TR_C), m.u32(e + A.TR_D)),
        });
      }
      this.trace.release();
    }
  }

  private metrics(now: number): void {
    const s = this.stats();
    const d = s.map((v, i) => v - (this.lastStats[i] ?? 0));
    const seconds = (now - this.lastMetricsNs) / 1e9;
    const lookups = d[A.STAT_READ_HITS] + d[A.STAT_READ_MISSES];
    this.o.trace.write({
      t: now, array: this.name, type: 'metrics', intervalS: round(seconds, 6),
      iops: round(d[A.STAT_COMMANDS] / seconds, 1), readIops: round(d[A.STAT_READS] / seconds, 1), writeIops: round(d[A.STAT_WRITES] / seconds, 1),
      readMBps: round(d[A.STAT_READ_BYTES] / seconds / 1e6, 3), writeMBps: round(d[A.STAT_WRITE_BYTES] / seconds / 1e6, 3),
      latencyUs: d[A.STAT_COMMANDS] > 0 ? round(d[A.STAT_LATENCY_NS] / d[A.STAT_COMMANDS] / 1e3, 2) : 0,
      cacheHitRate: lookups > 0 ? round(d[A.STAT_READ_HITS] / lookups, 4) : null,
      stages: d[A.STAT_STAGES], destages: d[A.STAT_DESTAGES], nvWrites: d[A.STAT_NV_WRITES], errors: d[A.STAT_ERRORS],
      frameErrors: d[A.STAT_FERR_BAD_CRC] + d[A.STAT_FERR_TRUNCATED] + d[A.STAT_FERR_OVERSIZE] + d[A.STAT_FERR_UNKNOWN_TYPE] + d[A.STAT_FERR_UNKNOWN_TAG] + d[A.STAT_FERR_PROTOCOL] + d[A.STAT_FERR_WRONG_DESTINATION],
    });
    this.lastStats = s;
    this.lastMetricsNs = now;
    this.o.trace.flush(); // the file keeps up with a long run, once per interval
  }

  // ---- stopping ----------------------------------------------------------------------------------

  /** The array stops (a firmware abort, or `why`): every request and command waiting on it fails with e. */
  fail(e: Error, why = 'a firmware fault'): void {
    this.failed = e;
    for (const w of this.controlWaiters.splice(0)) w.reject(new Error(`array ${this.name}: stopped before the request finished: ${e.message}`));
    this.o.log(`${this.name}: stopped by ${why}: ${e.message}`);
    this.handed.clear(); // nothing more is delivered: the driver waits for it no longer
    for (const w of this.deliveryWaiters.splice(0)) w();
    for (const q of this.queuePorts) if (q) for (const s of q.sessions) s?.failAll(e);
    for (const p of this.streamPorts) p?.stop().catch(() => undefined);
  }

  /** Stops taking input: ports closed, sessions hung up. */
  async closePorts(): Promise<void> {
    for (const q of this.queuePorts) if (q) for (const s of q.sessions) s?.close();
    await Promise.all(this.streamPorts.map((p) => p?.stop()));
  }

  /**
   * Releases files and memory; nothing is flushed here (see Emulator.stop). A file is closed only
   * once no call on it is in flight (its descriptor could otherwise be reused under that call);
   * I/O that has not ended within RELEASE_IO_BOUND_MS is named and its files are left open.
   */
  async release(): Promise<void> {
    if (this.trace) this.drainTrace();
    const busy = [...this.media.filter((m) => m.ioBusy).map((m) => m.name), ...(this.nv?.busy ? ['nv'] : []), ...(this.tape?.ioBusy ? this.tape.busyNames() : [])];
    const io = Promise.all([...this.media.map((m) => m.idle()), this.nv?.idle(), this.tape?.idle()]).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), RELEASE_IO_BOUND_MS); });
    const ended = await Promise.race([io, bound]);
    clearTimeout(timer);
    if (!ended) {
      this.o.log(`${this.name}: I/O on ${busy.join(', ')} did not end within ${RELEASE_IO_BOUND_MS / 1000} s of the stop; its files are left open`);
      return;
    }
    for (const m of this.media) m.store.close();
    this.tape?.close();
    await this.nv?.close();
  }

  /** Emulates a loss of power: nothing more reaches the NV file or the media. */
  powerFail(why = 'power failed'): void {
    if (this.failed?.message.startsWith('power failed')) return;
    this.nv.powerFail();
    for (const m of this.media) m.powerFail();
    this.tape?.powerFail();
    this.failed = new Error(why === 'power failed' ? why : `power failed: ${why}`);
    for (const w of this.controlWaiters.splice(0)) w.reject(new Error(`array ${this.name}: power failed before the request finished`));
    for (const q of this.queuePorts) if (q) for (const s of q.sessions) s?.failAll(this.failed);
  }
}

/** How long release() waits for I/O in flight before it leaves the files open. */
const RELEASE_IO_BOUND_MS = 30_000;

function round(x: number, digits: number): number { const f = 10 ** digits; return Math.round(x * f) / f; }

/** A flush or shutdown result in words: "flushed", or what stays dirty in NV and why. */
export function describeControl(r: ControlResult): string {
  const nv = r.nvErrno !== null ? `; the NV file is failing (errno ${r.nvErrno}): writes refused` : '';
  if (r.dirtyLeft === 0) return `${r.array}: flushed${r.nvClean === false ? ' (NV image not marked clean)' : ''}${nv}`;
  const lines = r.stuck.map((x) => `  volume ${x.volume} LBA ${x.lba}+${x.blocks} on ${x.medium ?? 'a medium not in the topology'}: ${x.reason}`);
  const more = r.dirtyLeft > r.stuck.length ? [`  ... and ${r.dirtyLeft - r.stuck.length} more`] : [];
  return [`${r.array}: ${r.dirtyLeft} dirty cache slot(s) could not be destaged; they stay in NV for the next start${nv}`, ...lines, ...more].join('\n');
}
