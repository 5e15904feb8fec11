// Linked arrays and relays on one clock (docs/remote.md, "Virtual time with several nodes"). Without
// links each array keeps a driver of its own (harness/driver.ts); once a link joins nodes, a packet
// must not arrive before it was sent, so every array and the network (relays, links) run in one
// World: a round polls every array in topology order, then the network (relays, then the wires).
//
// Deterministic: one virtual clock. A round that does work advances it by ROUND_NS; when nothing is
// runnable and something is under way (a host waits on an array, packets are on a wire, a relay
// holds a command, a remote pair copies or has commands in flight) it jumps to the earliest timer of
// any node or link. After a round that started I/O the world waits for all of it, as
// DeterministicDriver does, so a run stays a function of topology, seed and inputs.
// Real-time: now is the monotonic clock; rounds run while there is work, then a timer is armed for
// the earliest due time of any node or link.
import * as A from '../hal/abi';
import type { ArrayController } from './array';
import type { Driver } from './driver';
import { DELIVERY_BOUND_MS, ROUND_NS, SETTLE_BOUND_MS, WakeTimer } from './driver';
import { ArrayLinks, type Network } from './network';

const YIELD_ROUNDS = 64;

export class World {
  private virtualNs = 0;
  private horizonNs = 0;
  private readonly origin = process.hrtime.bigint();
  private scheduled = false;
  private running = false;
  private again = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  /** How long an answer may take to reach an in-process host before its array is stopped (wall ms). */
  deliveryBoundMs = DELIVERY_BOUND_MS;
  private readonly wake = new WakeTimer(() => this.kick());
  readonly drivers: Driver[];

  constructor(readonly arrays: ArrayController[], readonly network: Network, readonly deterministic: boolean) {
    this.drivers = arrays.map((a) => new WorldDriver(this, a));
    for (const a of arrays) a.kick = () => this.kick();
    network.kick = () => this.kick();
    for (const a of arrays) network.attach(new ArrayLinks(a));
  }

  now(): number { return this.deterministic ? this.virtualNs : Number(process.hrtime.bigint() - this.origin); }

  kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; void this.start(); });
  }

  private async start(): Promise<void> {
    if (this.stopped || this.running) { if (this.running) this.again = true; return; }
    this.again = false;
    this.running = true;
    try {
      if (this.deterministic) await this.runVirtual(); else this.runReal();
    } finally {
      this.running = false;
      if (this.again) this.kick();
    }
  }

  /** Something a host or a node waits for is under way: time may be advanced to get it done. */
  private get underWay(): boolean {
    return this.live.some((a) => !a.failed && (a.hostWaiting || remoteBusy(a))) || this.network.busy;
  }

  nextTimerNs(): number {
    let t = this.network.nextTimerNs();
    for (const a of this.live) if (!a.failed) t = Math.min(t, a.nextTimerNs());
    return t;
  }

  /** Arrays no longer driven (stopped by the emulator: released, or powered off). */
  readonly excluded = new Set<ArrayController>();
  private get live(): ArrayController[] { return this.arrays.filter((a) => !this.excluded.has(a)); }

  private round(now: number): number {
    let work = 0;
    for (const a of this.live) work += a.round(now);
    return work + this.network.round(now);
  }

  private async runVirtual(): Promise<void> {
    let yielded = false;
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS * 16) { this.again = true; return; }
      if (await this.step()) { yielded = false; continue; }
      if (this.stopped) return;
      const next = this.nextTimerNs();
      if (next === Infinity) break;
      if (!this.underWay && next > this.horizonNs) break;
      // Before time jumps, the hosts run: a command answered in this round may be followed at once by
      // the next one (its promise chain settles in the event loop), and must not find the clock moved
      // on by what other nodes wait for (a relay's forward to the far site).
      if (!yielded) { yielded = true; await new Promise<void>((r) => setImmediate(r)); continue; }
      yielded = false;
      this.virtualNs = Math.max(this.virtualNs + ROUND_NS, next);
    }
    this.idle();
  }

  private async step(): Promise<boolean> {
    const live = this.live;
    const starts = live.reduce((n, a) => n + a.ioStarts, 0);
    let work = this.round(this.virtualNs);
    if (live.reduce((n, a) => n + a.ioStarts, 0) !== starts || live.some((a) => a.ioBusy)) {
      await new Promise<void>((r) => setImmediate(r));
      await Promise.all(live.map((a) => a.ioSettled()));
      work++;
    }
    // As the deterministic driver: the clock holds while an answer is on its way to an in-process
    // host (harness/array.ts, handOver), so the host's next command is taken in the next round.
    if (live.some((a) => a.hostDeliveries > 0)) {
      await this.delivered(live);
      work++;
    }
    if (work > 0) this.virtualNs += ROUND_NS;
    return work > 0;
  }

  /**
   * Waits until the answers handed to in-process hosts have been delivered (one turn of the event
   * loop). An array whose answers are not delivered within deliveryBoundMs (wall time, a last-resort
   * guard as DeterministicDriver's) is stopped with an error naming the sessions it waited for; the
   * other nodes go on, so the world never holds its clock for ever.
   */
  private async delivered(live: ArrayController[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), this.deliveryBoundMs); });
    const ok = await Promise.race([Promise.all(live.map((a) => a.hostDelivered())).then(() => true), late]);
    clearTimeout(timer);
    if (ok) return;
    for (const a of live) {
      if (a.hostDeliveries === 0) continue;
      a.fail(new Error(`array ${a.name}: the linked nodes' virtual time held for ${this.deliveryBoundMs} ms (wall) waiting for `
        + `the delivery of ${a.undelivered().join(', ')}`), 'an answer never delivered');
    }
  }

  private runReal(): void {
    for (let rounds = 0; ; rounds++) {
      if (rounds === YIELD_ROUNDS) { this.kick(); return; }
      if (this.round(this.now()) === 0) break;
    }
    this.wake.arm(this.nextTimerNs(), this.now());
    if (!this.underWay) this.idle();
  }

  private idle(): void { for (const w of this.idleWaiters.splice(0)) w(); }

  /** Resolves when nothing is under way. Real time: rejects after boundMs, naming what was. */
  settle(boundMs = SETTLE_BOUND_MS): Promise<void> {
    const p = new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => { if (timer) clearTimeout(timer); resolve(); };
      if (!this.deterministic) {
        timer = setTimeout(() => {
          this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
          reject(new Error(`the linked nodes did not settle within ${boundMs} ms; under way: ${this.waitingFor().join(', ') || 'nothing named'}`));
        }, boundMs);
      }
      this.idleWaiters.push(done);
    });
    this.kick();
    return p;
  }

  async advance(ms: number): Promise<void> {
    if (!this.deterministic) { await new Promise((r) => setTimeout(r, ms)); return; }
    this.horizonNs = this.virtualNs + ms * 1e6;
    await this.settle();
    this.virtualNs = Math.max(this.virtualNs, this.horizonNs);
  }

  waitingFor(): string[] {
    return [...this.live.flatMap((a) => a.waitingFor().map((w) => `${a.name}: ${w}`)), ...this.network.underWay()];
  }

  stop(): void {
    this.stopped = true;
    this.wake.cancel();
    this.network.close();
    this.idle();
  }
}

/** One array's view of the world: the Driver the emulator and the tests use. */
class WorldDriver implements Driver {
  private stopped = false;
  constructor(readonly world: World, readonly array: ArrayController) {}
  now(): number { return this.world.now(); }
  kick(): void { if (!this.stopped) this.world.kick(); }
  settle(boundMs?: number): Promise<void> { return this.world.settle(boundMs); }
  advance(ms: number): Promise<void> { return this.world.advance(ms); }
  /** The array stops being driven (the emulator stopped or released it); the others go on. */
  stop(): void { this.stopped = true; this.world.excluded.add(this.array); }
}

/** A remote pair of the array creates, copies or has commands in flight (RPR_* of abi.ts). */
export function remoteBusy(a: ArrayController): boolean {
  const m = a.mem;
  const base = m.u32(A.MAP_ADDR + A.MAP_REMOTE_TABLE);
  if (base === 0) return false;
  for (let p = 0; p < A.REMOTE_PAIRS_MAX; p++) {
    const r = base + p * A.RPR_BYTES;
    if (m.u8At(r + A.RPR_USED) === 0) continue;
    const state = m.u8At(r + A.RPR_STATE);
    if (state === 1 || state === 5 || m.u32(r + A.RPR_IN_FLIGHT) > 0) return true; // RS_COPY, RS_CREATING
  }
  return false;
}
