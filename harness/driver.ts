// What "now" is, and when an array runs (docs/hal.md, Time).
//
// Real-time: now is the monotonic clock. Input (a submitted command, bytes from a socket) kicks
// the driver, which runs rounds until the array is idle, yielding to the event loop every
// YIELD_ROUNDS rounds so that sockets and timers are served; idle, it sleeps until the array's
// next timer or the next kick.
//
// Deterministic: now is a virtual clock on one thread. A round that does work advances it by
// ROUND_NS; an idle array whose host is waiting for something (a command, a flush, a medium
// completion) jumps it to the next timer. A run is then a function of topology, seed and inputs.
import type { ArrayController } from './array';

const YIELD_ROUNDS = 64;
/** Virtual time one busy round takes in deterministic mode. */
export const ROUND_NS = 1000;
/** Real-time settle() gives up after this long (a last-resort guard: tests wait on events). */
export const SETTLE_BOUND_MS = 120_000;

export interface Driver {
  readonly array: ArrayController;
  now(): number;
  kick(): void;
  /** Resolves when the array is idle (nothing runnable, no host waiting). */
  settle(boundMs?: number): Promise<void>;
  /** Deterministic: runs the array's timers up to now + ms of virtual time. Real-time: waits ms. */
  advance(ms: number): Promise<void>;
  stop(): void;
}

abstract class DriverBase implements Driver {
  protected scheduled = false;
  protected stopped = false;
  protected idleWaiters: Array<() => void> = [];

  constructor(readonly array: ArrayController) {
    array.kick = () => this.kick();
  }

  abstract now(): number;
  protected abstract run(): void;
  abstract advance(ms: number): Promise<void>;

  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; if (!this.stopped) this.run(); });
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
}

export class RealtimeDriver extends DriverBase {
  protected readonly bounded = true;
  private readonly origin = process.hrtime.bigint();
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;

  now(): number { return Number(process.hrtime.bigint() - this.origin); }

  protected run(): void {
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS) { this.kick(); return; }
      if (this.array.round(this.now()) === 0) break;
    }
    // The armed timer stays when the next due time has not moved: busy traffic runs this many
    // times between two timers, and re-arming each time would cost a timer per command.
    const next = this.array.nextTimerNs();
    if (next !== this.timerAt) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = next;
      if (next < Infinity) {
        this.timer = setTimeout(() => { this.timer = undefined; this.timerAt = Infinity; this.kick(); }, Math.max(0, (next - this.now()) / 1e6));
      }
    }
    if (!this.array.hostWaiting || this.array.failed) this.idle();
  }

  async advance(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  override stop(): void {
    super.stop();
    if (this.timer) clearTimeout(this.timer);
  }
}

export class DeterministicDriver extends DriverBase {
  protected readonly bounded = false;
  private virtualNs = 0;
  /** Deterministic runs stop at this virtual time unless a host waits (advance()). */
  private horizonNs = 0;

  now(): number { return this.virtualNs; }

  protected run(): void {
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS * 16) { this.kick(); return; } // let completions' continuations submit more
      if (this.array.round(this.virtualNs) > 0) { this.virtualNs += ROUND_NS; continue; }
      if (this.array.failed) break;
      const next = this.array.nextTimerNs();
      const waiting = this.array.hostWaiting;
      if (next === Infinity) break;
      if (!waiting && next > this.horizonNs) break;
      this.virtualNs = Math.max(this.virtualNs + ROUND_NS, next);
    }
    this.idle();
  }

  async advance(ms: number): Promise<void> {
    this.horizonNs = this.virtualNs + ms * 1e6;
    await this.settle();
    this.virtualNs = Math.max(this.virtualNs, this.horizonNs);
  }
}
