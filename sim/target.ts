// The array under simulation: the real firmware (debug image, assertions on) booted in process by
// the harness's ArrayController, with NV and file-medium I/O inline (blocking calls inside the
// round: no thread can answer late), on a virtual clock that only the simulator moves. Between two
// rounds the simulator yields to the event loop once, so the initiators' code (which runs in
// promise continuations) submits its next commands before the next round: a run is a function of
// the plan alone. The clock goes on across restarts.
import * as A from '../hal/abi';
import { ArrayController, type ControlResult } from '../harness/array';
import { parseTopology, type ArraySpec } from '../harness/topology';
import { TraceWriter } from '../harness/trace';
import { ROUND_NS } from '../harness/driver';

export type RunOutcome = 'done' | 'stalled' | 'timeout' | 'failed';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SimTarget {
  now = 0;
  array!: ArrayController;
  boots = 0;
  rounds = 0;

  constructor(readonly spec: ArraySpec, readonly seed: number, readonly log: (line: string) => void = () => undefined) {}

  static specOf(doc: object, baseDir: string): ArraySpec {
    return parseTopology(doc, baseDir).arrays[0];
  }

  /** Boots the array (again: on the same directory) with `spec` overrides such as media faults. */
  async boot(spec: ArraySpec = this.spec): Promise<void> {
    this.boots++;
    this.array = await ArrayController.create(spec, {
      mode: 'deterministic', seed: (this.seed + this.boots * 7919) >>> 0, debug: true, trace: new TraceWriter(''),
      metricsIntervalMs: 3_600_000, log: this.log, io: 'inline',
    });
  }

  get failed(): Error | undefined { return this.array.failed; }

  /**
   * Runs rounds, jumping the clock to the next timer when nothing is runnable, until `done()`.
   * 'stalled': nothing is runnable and no timer is set, yet not done (a hang); 'timeout': boundNs
   * of virtual time passed; 'failed': the array stopped (power cut, firmware abort).
   */
  async runUntil(done: () => boolean, boundNs: number): Promise<RunOutcome> {
    const start = this.now;
    let idle = 0;
    for (;;) {
      if (done()) return 'done';
      if (this.array.failed) return 'failed';
      const work = this.array.round(this.now);
      this.rounds++;
      await tick();
      if (work > 0) { idle = 0; this.now += ROUND_NS; continue; }
      // Idle: once more at the same time, for what the initiators submitted while we yielded.
      if (++idle < 2) continue;
      if (done()) return 'done';
      const next = this.array.nextTimerNs();
      if (next === Infinity) return 'stalled';
      if (next - start > boundNs) return 'timeout';
      this.now = Math.max(this.now + ROUND_NS, next);
      idle = 0;
    }
  }

  /** Exactly n rounds (to stop the power or inject a fault at a chosen point). */
  async step(n: number): Promise<void> {
    for (let i = 0; i < n && !this.array.failed; i++) {
      const work = this.array.round(this.now);
      this.rounds++;
      await tick();
      this.now += work > 0 ? ROUND_NS : Math.max(ROUND_NS, Math.min(this.array.nextTimerNs() - this.now, 1e6));
    }
  }

  /** Runs until idle: no host waiting and nothing due before now + ms of virtual time. */
  async advance(ms: number): Promise<void> {
    const until = this.now + ms * 1e6;
    await this.runUntil(() => this.array.nextTimerNs() > until && !this.array.hostWaiting, ms * 1e6 + 1);
    this.now = Math.max(this.now, until);
  }

  /** Waits for every medium's label check (Emulator.start does the same). */
  async labelsChecked(boundNs: number): Promise<RunOutcome> {
    return this.runUntil(() => this.array.mediaBecomingReady() === 0, boundNs);
  }

  /** A flush (CTL_FLUSH) or shutdown request, run to its end. Rejections (a stall, a failed array) are returned. */
  async control(op: number, boundNs: number): Promise<{ result?: ControlResult; error?: Error; outcome: RunOutcome }> {
    let result: ControlResult | undefined;
    let error: Error | undefined;
    this.array.control(op).then((r) => { result = r; }, (e: Error) => { error = e; });
    const outcome = await this.runUntil(() => result !== undefined || error !== undefined, boundNs);
    return { result, error, outcome };
  }

  /** The power fails now: nothing more reaches NV or the media; the array's files are closed. */
  async powerFail(): Promise<void> {
    this.array.powerFail();
    await this.array.closePorts();
    await this.array.release();
  }

  /** Graceful stop: sessions closed, the cache destaged, the NV image marked clean when nothing is left. */
  async shutdown(boundNs: number): Promise<{ result?: ControlResult; error?: Error; outcome: RunOutcome }> {
    await this.array.closePorts();
    const r = this.array.failed ? { error: this.array.failed, outcome: 'failed' as RunOutcome } : await this.control(A.CTL_SHUTDOWN, boundNs);
    await this.array.release();
    return r;
  }

  async release(): Promise<void> {
    await this.array.closePorts();
    await this.array.release();
  }
}
