// The device side of one medium (docs/hal.md, Media): takes requests off the medium's submission
// ring, moves the data between the store and the cache slot named in the request, and posts a
// completion with the request's id. Optional layers, in the order they apply:
//   timing  a service time from a seek curve, rotational latency and transfer rate, one request
//           at a time like one head; completions are posted when that time (virtual or real) is due
//   faults  read/write errors at chosen sectors, a latency factor, a dead medium; set in the
//           topology or injected while running
// A request's data moves when it is due (the store call; a file store's runs on libuv's pool) and
// its completion is posted when that call has ended. A flush starts only when every request
// before it has ended, so it covers every write completed before it.
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { EntryRing } from '../ring';
import { Prng } from '../prng';
import type { MediumStore, IoDone } from './store';
import type { FaultSpec, TimingSpec } from '../../harness/topology';

/** Service time of a request when the medium has no timing model but a "slow" fault: 100 µs × factor. */
const NOMINAL_SERVICE_NS = 100_000;
/**
 * Calls a threaded store may have in flight at once: libuv's pool has four threads for the whole
 * process, and a slow medium must leave some of them to the others.
 */
const MAX_THREADED_CALLS = 2;

const WAITING = 0; // not yet due, or due and waiting for its turn
const IN_IO = 1; // the store is moving its data
const DONE = 2; // the completion can be posted

interface Request { op: number; id: number; lba: number; sectors: number; addr: number }
interface Pending { r: Request; dueNs: number; state: number; status: number; errLba: number }

export class MediumBinding {
  readonly sq: EntryRing;
  readonly cq: EntryRing;
  readonly sectors: number;
  private readonly faults: FaultSpec[];
  private readonly pending: Pending[] = [];
  /** Store calls in flight (or held by the gate). */
  private calls = 0;
  /** Store calls started, also those that ended at once: the deterministic driver yields after a round that made one. */
  callsStarted = 0;
  /** Set by powerFail(): nothing more reaches the store. */
  private severed = false;
  private idleWaiters: Array<() => void> = [];
  /** Where the head is after the last request (timing model). */
  private headLba = 0;
  /** When the head is free again (timing model: one request at a time). */
  private busyUntilNs = 0;
  /** Told when a store call ends (the driver runs a round to post its completion). */
  onDone: () => void = () => undefined;
  /** Every store call's end passes through here before it counts: tests hold or delay them. */
  gate: (resume: () => void) => void = (resume) => resume();

  constructor(
    private readonly mem: CommonMemory,
    readonly index: number,
    readonly name: string,
    readonly store: MediumStore,
    bytes: number,
    private readonly timing: TimingSpec | undefined,
    faults: FaultSpec[],
    private readonly prng: Prng,
  ) {
    const entry = A.MAP_ADDR + A.MAP_MEDIA_TABLE + index * A.MAP_MEDIUM_BYTES;
    this.sq = new EntryRing(mem, mem.u32(entry + A.MMED_SQ));
    this.cq = new EntryRing(mem, mem.u32(entry + A.MMED_CQ));
    this.sectors = bytes / A.SECTOR_BYTES;
    this.faults = [...faults];
  }

  inject(f: FaultSpec): void { this.faults.push(f); }
  heal(): void { this.faults.length = 0; }

  /**
   * The start of a round: posts the completions of requests whose calls have ended, then takes
   * new requests and starts the calls that are due. Returns the work done.
   */
  service(nowNs: number): number {
    return this.reap() + this.take(nowNs);
  }

  /**
   * Posts the completions of requests whose calls have ended. Only at the start of a round: a call
   * that ends at once (a RAM store) is posted in the next round, as one that ends on another thread
   * is, so when a call ends never decides the round its completion is posted in.
   */
  reap(): number {
    let work = 0;
    for (let i = 0; i < this.pending.length;) {
      const p = this.pending[i];
      if (p.state !== DONE) { i++; continue; }
      const e = this.cq.reserve();
      if (e < 0) break; // the disk IOP has not drained its completions yet
      this.post(p, e);
      this.cq.publish();
      this.pending.splice(i, 1);
      work++;
    }
    return work;
  }

  /** Takes new requests and starts the calls that are due (in order: a request waits for the one before it). */
  take(nowNs: number): number {
    let work = 0;
    for (let e = this.sq.peek(); e >= 0; e = this.sq.peek()) {
      const m = this.mem;
      const r: Request = {
        op: m.u8At(e + A.MSQ_OPCODE), id: m.u32(e + A.MSQ_ID),
        lba: m.u32(e + A.MSQ_LBA_LO) + m.u32(e + A.MSQ_LBA_HI) * 2 ** 32,
        sectors: m.u32(e + A.MSQ_SECTORS), addr: m.u32(e + A.MSQ_ADDR),
      };
      this.sq.release();
      this.pending.push({ r, dueNs: this.dueTime(r, nowNs), state: WAITING, status: A.MST_OK, errLba: 0 });
      work++;
    }
    for (const p of this.pending) {
      if (p.state !== WAITING) continue;
      if (p.dueNs > nowNs || !this.mayStart(p)) break;
      this.start(p);
      work++;
    }
    return work;
  }

  /** When a call is due to start, Infinity when none is (a call that ends wakes the driver). */
  nextStartNs(): number {
    for (const p of this.pending) if (p.state === WAITING) return this.mayStart(p) ? p.dueNs : Infinity;
    return Infinity;
  }

  /** When this binding next needs service(): 0 when it has work now, Infinity when it waits for its store. */
  nextTimerNs(): number {
    let t = Infinity;
    for (const p of this.pending) {
      if (p.state === DONE) return 0;
      if (p.state === WAITING && t === Infinity) t = this.mayStart(p) ? p.dueNs : Infinity;
    }
    return t;
  }
  get busy(): boolean { return this.pending.length > 0; }
  /** Store calls in flight: the deterministic driver waits for them before its next round. */
  get ioBusy(): boolean { return this.calls > 0; }

  /** A flush waits for every request before it; a threaded store has a bounded share of the pool. */
  private mayStart(p: Pending): boolean {
    if (this.severed) return false;
    if (p.r.op === A.MOP_FLUSH) {
      for (const q of this.pending) {
        if (q === p) break;
        if (q.state !== DONE) return false;
      }
    }
    return !this.store.threaded || this.calls < MAX_THREADED_CALLS;
  }

  private dueTime(r: Request, nowNs: number): number {
    const slow = this.faults.reduce((f, x) => (x.type === 'slow' ? f * x.factor : f), 1);
    if (!this.timing && slow === 1) return nowNs;
    const start = Math.max(nowNs, this.busyUntilNs);
    const service = (this.timing ? this.serviceNs(r) : NOMINAL_SERVICE_NS) * slow;
    this.busyUntilNs = start + service;
    return this.busyUntilNs;
  }

  /** Seek over the distance from the head, a random share of a rotation, and the transfer. */
  private serviceNs(r: Request): number {
    const t = this.timing!;
    if (r.op === A.MOP_FLUSH) return 0;
    const distance = Math.abs(r.lba - this.headLba);
    this.headLba = r.lba + r.sectors;
    let seekMs = 0;
    if (distance > 0) {
      // Short seeks are limited by acceleration, long ones by coasting: a square-root curve from
      // the track-to-track time to the average time at a third of the stroke (the mean distance
      // between random positions), then a straight line to the full-stroke time.
      const third = this.sectors / 3;
      seekMs = distance <= third
        ? t.trackMs + (t.averageMs - t.trackMs) * Math.sqrt(distance / third)
        : t.averageMs + (t.fullMs - t.averageMs) * ((distance - third) / (this.sectors - third));
    }
    const rotationMs = t.rpm > 0 ? this.prng.next() * (60_000 / t.rpm) : 0;
    const transferMs = (r.sectors * A.SECTOR_BYTES) / (t.transferMBps * 1e3);
    return (seekMs + rotationMs + transferMs) * 1e6;
  }

  /** Checks the request and starts its store call, or settles it at once (fault, dead medium, range). */
  private start(p: Pending): void {
    const { r } = p;
    const bytes = r.sectors * A.SECTOR_BYTES;
    p.state = DONE;
    if (this.faults.some((f) => f.type === 'dead')) {
      p.status = A.MST_NOT_READY;
    } else if (r.op === A.MOP_FLUSH) {
      this.call(p, A.MST_WRITE_ERROR, (done) => this.store.flush(done));
    } else if (r.lba + r.sectors > this.sectors || r.addr + bytes > this.mem.byteLength || (r.op !== A.MOP_READ && r.op !== A.MOP_WRITE)) {
      p.status = A.MST_RANGE;
    } else {
      const read = r.op === A.MOP_READ;
      const hit = this.firstFault(read ? 'readError' : 'writeError', r.lba, r.sectors);
      if (hit >= 0) {
        p.status = read ? A.MST_READ_ERROR : A.MST_WRITE_ERROR;
        p.errLba = hit;
      } else {
        const at = r.lba * A.SECTOR_BYTES;
        this.call(p, read ? A.MST_READ_ERROR : A.MST_WRITE_ERROR,
          (done) => (read ? this.store.read(this.mem.u8, r.addr, at, bytes, done) : this.store.write(this.mem.u8, r.addr, at, bytes, done)));
      }
    }
  }

  /** Runs a store call; the request is done when it ends (an error fails the whole request). */
  private call(p: Pending, errorStatus: number, io: (done: IoDone) => void): void {
    p.state = IN_IO;
    this.calls++;
    this.callsStarted++;
    io((error) => this.gate(() => {
      this.calls--;
      p.state = DONE;
      if (error) {
        p.status = errorStatus;
        p.errLba = p.r.lba;
      }
      if (this.calls === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.onDone();
    }));
  }

  private post(p: Pending, e: number): void {
    const m = this.mem;
    m.u8.fill(0, e, e + A.MCQ_BYTES);
    m.setU32(e + A.MCQ_ID, p.r.id);
    m.setU16(e + A.MCQ_STATUS, p.status);
    m.setU32(e + A.MCQ_ERR_LBA_LO, p.errLba % 2 ** 32);
    m.setU32(e + A.MCQ_ERR_LBA_HI, Math.floor(p.errLba / 2 ** 32));
  }

  /** From now on nothing more reaches the store; calls already made may still land. */
  powerFail(): void { this.severed = true; }

  /** Resolves when no store call is in flight (then the store may be closed). */
  idle(): Promise<void> {
    return this.calls === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  /** The first sector of [lba, lba + n) under a fault of this type, or -1. */
  private firstFault(type: 'readError' | 'writeError', lba: number, n: number): number {
    let first = -1;
    for (const f of this.faults) {
      if (f.type !== type) continue;
      const lo = Math.max(lba, f.lba);
      if (lo < Math.min(lba + n, f.lba + f.count) && (first < 0 || lo < first)) first = lo;
    }
    return first;
  }
}
