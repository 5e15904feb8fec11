// What "now" is, and when an array runs (docs/hal.md, Time).
//
// Real-time: now is the monotonic clock. Input (a submitted command, bytes from a socket) kicks
// the driver, which runs rounds until the array is idle, yielding to the event loop every
// YIELD_ROUNDS rounds so that sockets and timers are served; idle, it sleeps until the array's
// next timer or the next kick.
//
// Deterministic: now is a virtual clock on one thread. A round that does work advances it by
// ROUND_NS; an idle array whose host is waiting for something (a command, a flush, a medium
// completion) jumps it to the next timer. I/O runs on other threads (NV writer, libuv's pool):
// after a round that started I/O the driver yields to the event loop and waits until all of it
// has ended, so its completions are posted in the next round however long the threads took. It
// yields there whether the I/O ended at once (a RAM store) or not, so the host's code (which runs
// while the driver yields) sees the same rounds either way. A run is then a function of topology,
// seed and inputs. Nor does the clock move while an answer is on its way to an in-process host: after
// a round that handed answers over, the driver waits until they are delivered (the host's promise
// jobs, and so its next command, have run), or the host's next command would find the clock jumped
// on to the next timer and a background task (a pair's copy, a destage) given the time the host
// should have had.
import type { ArrayController } from './array';

const YIELD_ROUNDS = 64;
/** Virtual time one busy round takes in deterministic mode. */
export const ROUND_NS = 1000;
/** Real-time settle() gives up after this long (a last-resort guard: tests wait on events). */
export const SETTLE_BOUND_MS = 120_000;
/**
 * The deterministic driver stops the array after waiting this long (wall time) for an answer to be
 * delivered to an in-process host (a last-resort guard: delivery is one turn of the event loop).
 */
export const DELIVERY_BOUND_MS = 10_000;

export interface Driver {
  readonly array: ArrayController;
  now(): number;
  kick(): void;
  /** Resolves when the array is idle (nothing runnable, no host waiting). */
  settle(boundMs?: number): Promise<void>;
  /** Deterministic: runs the array's timers up to now + ms of virtual time. Real-time: waits ms. */
  advance(ms: number): Promise<void>;
  /**
   * Resolves once the array's clock has reached `ns` (or the driver stopped), without moving it:
   * a host that paces itself by the clock while other hosts' commands move it. Deterministic: the
   * clock moves only while the array has work, so a caller also waits for whatever ends that work.
   * (The driver of linked arrays, harness/world.ts, does not offer it yet.)
   */
  passed?(ns: number): Promise<void>;
  stop(): void;
}

abstract class DriverBase implements Driver {
  protected scheduled = false;
  protected stopped = false;
  protected idleWaiters: Array<() => void> = [];
  /** A run is under way (the deterministic one waits for I/O inside it); a kick meanwhile runs again after it. */
  protected running = false;
  protected again = false;

  constructor(readonly array: ArrayController) {
    array.kick = () => this.kick();
  }

  abstract now(): number;
  protected abstract run(): void | Promise<void>;
  abstract advance(ms: number): Promise<void>;

  kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.start(); });
  }

  private start(): void {
    if (this.running) this.again = true;
    if (this.stopped || this.running) return;
    this.again = false;
    this.running = true;
    let r: void | Promise<void> = undefined;
    try {
      r = this.run();
    } finally {
      if (!r) this.ran();
    }
    if (r) void r.finally(() => this.ran());
  }

  private ran(): void {
    this.running = false;
    this.handoffs.shift()?.();
    if (this.again) this.kick();
  }

  /** exclusive() calls waiting for the run under way to stop after its round. */
  protected handoffs: Array<() => void> = [];

  /**
   * Runs f as a run of the driver: kicks meanwhile run the driver again after it. A run under way
   * (one waiting for an answer's delivery to the host that calls this) stops after its round first.
   */
  protected async exclusive<T>(f: () => Promise<T>): Promise<T> {
    if (this.running) await new Promise<void>((r) => this.handoffs.push(r));
    if (this.running) throw new Error('the driver is already running');
    this.running = true;
    try {
      return await f();
    } finally {
      this.ran();
    }
  }

  /**
   * Resolves when the array is idle. Real-time: rejects after `boundMs` of wall time, naming what
   * the array still waits for (deterministic runs end by themselves: the virtual clock stops when
   * nothing is due).
   */
  settle(boundMs = SETTLE_BOUND_MS): Promise<void> {
    const p = new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => { if (timer) clearTimeout(timer); resolve(); };
      if (this.bounded) {
        timer = setTimeout(() => {
          this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
          reject(new Error(`array ${this.array.name} did not settle within ${boundMs} ms; waiting for: ${this.array.waitingFor().join(', ') || 'nothing named'}`));
        }, boundMs);
      }
      this.idleWaiters.push(done);
    });
    this.kick();
    return p;
  }

  /** Real time passes whether or not the array makes progress: settle() needs a wall-clock bound. */
  protected abstract readonly bounded: boolean;

  protected idle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  stop(): void {
    this.stopped = true;
    this.idle();
  }

  abstract passed(ns: number): Promise<void>;
}

/**
 * The real-time wake-up at the next due time. The armed timer stays when that time has not moved:
 * busy traffic runs many times between two timers, and re-arming each time would cost a timer per command.
 */
export class WakeTimer {
  private timer?: NodeJS.Timeout;
  private at = Infinity;
  constructor(private readonly kick: () => void) {}
  arm(next: number, now: number): void {
    if (next === this.at) return;
    this.cancel();
    this.at = next;
    if (next < Infinity) this.timer = setTimeout(() => { this.timer = undefined; this.at = Infinity; this.kick(); }, Math.max(0, (next - now) / 1e6));
  }
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }
}

export class RealtimeDriver extends DriverBase {
  protected readonly bounded = true;
  private readonly origin = process.hrtime.bigint();
  private readonly wake = new WakeTimer(() => this.kick());

  now(): number { return Number(process.hrtime.bigint() - this.origin); }

  protected run(): void {
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS) { this.kick(); return; }
      if (this.array.round(this.now()) === 0) break;
    }
    this.wake.arm(this.array.nextTimerNs(), this.now());
    if (!this.array.hostWaiting || this.array.failed) this.idle();
  }

  async advance(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  passed(ns: number): Promise<void> {
    return new Promise((r) => setTimeout(r, Math.max(0, (ns - this.now()) / 1e6)));
  }

  override stop(): void {
    super.stop();
    this.wake.cancel();
  }
}

export class DeterministicDriver extends DriverBase {
  protected readonly bounded = false;
  private virtualNs = 0;
  /** Deterministic runs stop at this virtual time unless a host waits (advance()). */
  private horizonNs = 0;
  /** How long an answer may take to be delivered before the array is stopped (DELIVERY_BOUND_MS). */
  deliveryBoundMs = DELIVERY_BOUND_MS;
  /** ... and at this one even if a host waits (nextEvent()). */
  private stopAtNs = Infinity;

  now(): number { return this.virtualNs; }

  protected async run(): Promise<void> {
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS * 16 || this.handoffs.length > 0) { this.again = true; return; } // let completions' continuations submit more; rounds() waits
      if (await this.step()) continue;
      if (this.stopped) return;
      if (this.array.failed) break;
      const next = this.array.nextTimerNs();
      const waiting = this.array.hostWaiting;
      if (next === Infinity) break;
      if (!waiting && next > this.horizonNs) break;
      if (next > this.stopAtNs) break;
      this.virtualNs = Math.max(this.virtualNs + ROUND_NS, next);
    }
    this.idle();
  }

  /** passed() callers, each with the virtual time it waits for. */
  private clockWaiters: Array<{ ns: number; resolve: () => void }> = [];

  passed(ns: number): Promise<void> {
    if (this.virtualNs >= ns || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.clockWaiters.push({ ns, resolve }));
  }

  private clockMoved(): void {
    if (this.clockWaiters.length === 0) return;
    const due = this.clockWaiters.filter((w) => this.stopped || w.ns <= this.virtualNs);
    this.clockWaiters = this.clockWaiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve();
  }

  override stop(): void {
    super.stop();
    this.clockMoved();
  }

  /** One round at the virtual time, then the wait for its I/O. True when it did work (time moved on). */
  private async step(): Promise<boolean> {
    this.clockMoved();
    const starts = this.array.ioStarts;
    let work = this.array.round(this.virtualNs);
    if (this.array.ioStarts !== starts || this.array.ioBusy) {
      await new Promise<void>((r) => setImmediate(r));
      await this.array.ioSettled();
      work++; // the next round posts what ended
    }
    if (this.array.hostDeliveries > 0) {
      await this.delivered();
      work++; // the host's next command, if it sent one, is taken in the next round
    }
    if (work > 0) this.virtualNs += ROUND_NS;
    return work > 0;
  }

  /**
   * Waits until the answers handed to in-process hosts have been delivered. An answer not delivered
   * within DELIVERY_BOUND_MS stops the array with an error naming it: the run would otherwise wait
   * for ever, or go on with a clock the host did not see.
   */
  private async delivered(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), this.deliveryBoundMs); });
    const ok = await Promise.race([this.array.hostDelivered().then(() => true), late]);
    clearTimeout(timer);
    if (ok) return;
    this.array.fail(new Error(`array ${this.array.name}: virtual time held for ${this.deliveryBoundMs} ms (wall) waiting for `
      + `the delivery of ${this.array.undelivered().join(', ')}`), 'an answer never delivered');
  }

  /** Runs exactly n rounds (each waits for its I/O), as a test that stops the power at a chosen round does. */
  rounds(n: number): Promise<void> {
    return this.exclusive(async () => {
      for (let i = 0; i < n && !this.stopped; i++) if (!(await this.step())) this.virtualNs += ROUND_NS;
    });
  }

  /**
   * Runs the array on to its next due time (a medium's or a drive's completion, an IOP's timer) and
   * the rounds there, and stops, even while something is still under way: a test looks at the array
   * between two of its events. Resolves false when nothing was due.
   */
  async nextEvent(): Promise<boolean> {
    await this.settleAt(this.virtualNs); // what is runnable now runs first
    const next = this.array.nextTimerNs();
    if (next === Infinity || this.array.failed) return false;
    await this.settleAt(next);
    return true;
  }

  private async settleAt(ns: number): Promise<void> {
    this.stopAtNs = ns;
    this.horizonNs = Math.max(this.horizonNs, ns);
    try { await this.settle(); } finally { this.stopAtNs = Infinity; }
  }

  async advance(ms: number): Promise<void> {
    this.horizonNs = this.virtualNs + ms * 1e6;
    await this.settle();
    this.virtualNs = Math.max(this.virtualNs, this.horizonNs);
    this.clockMoved();
  }
}
