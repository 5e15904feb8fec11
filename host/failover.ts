// The host's side of document 003's embodiment 7 (docs/remote.md, "The host's part"): the
// restart-enabling-point notification an application calls when its data is consistent, and the host
// monitoring unit that watches the operation array and, when it stops answering, tells the standby to
// fail over (S480-S485: the standby discards what no restart point confirmed and serves hosts).
import type { ScsiClient } from './client';

/**
 * The restart enabling point of one volume (a primary of a `delayed` pair): GOOD once the standby has
 * every write issued before it on its volume (REMOTE CHANGE restart point, S440/S441 -> S468).
 */
export async function restartPoint(client: ScsiClient, volume: number): Promise<void> {
  await client.remoteChange(volume, 'restart-point');
}

/**
 * Every `delayed` pair whose primary is on this array, one after another (each its own restart point:
 * pairs are not a consistency group). Returns the volumes.
 */
export async function restartPointAll(client: ScsiClient): Promise<number[]> {
  const pairs = (await client.remoteStatus()).filter((p) => p.role === 'primary' && (p.mode === 'delayed' || p.mode === 'snapshot') && p.state === 'pair');
  for (const p of pairs) await restartPoint(client, p.volume);
  return pairs.map((p) => p.volume);
}

export interface MonitorOptions {
  /** Between heartbeats (default 100 ms). */
  intervalMs?: number;
  /** A heartbeat not answered within this is a miss (default 50 ms). */
  timeoutMs?: number;
  /** Consecutive misses that mean the operation array is lost (default 3). */
  misses?: number;
  /** Heartbeats at most before run() gives up watching (default: no bound). */
  maxBeats?: number;
  /** The clock: real time by default; a test gives the emulator's virtual time. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface FailoverReport {
  /** Why the monitor failed over: the last heartbeat's error. */
  reason: string;
  /** Time (of `now`) of the first of the consecutive misses, and of the failover. */
  lostAt: number;
  failedOverAt: number;
  beats: number;
  /** The standby's volumes that failed over. */
  volumes: number[];
}

/**
 * The host monitoring unit: a heartbeat (TEST UNIT READY on the operation array's command device)
 * every intervalMs, each bounded by timeoutMs; after `misses` in a row the standby's volumes fail over.
 * Every wait is bounded: a heartbeat that never answers is a miss after timeoutMs.
 */
export class FailoverMonitor {
  private stopped = false;
  private readonly o: Required<Omit<MonitorOptions, 'maxBeats'>> & { maxBeats: number };

  constructor(private readonly operation: ScsiClient, private readonly standby: ScsiClient, private readonly volumes: number[], o: MonitorOptions = {}) {
    if (volumes.length === 0) throw new Error('failover monitor: no standby volume to fail over');
    this.o = {
      intervalMs: o.intervalMs ?? 100, timeoutMs: o.timeoutMs ?? 50, misses: o.misses ?? 3, maxBeats: o.maxBeats ?? Infinity,
      now: o.now ?? (() => performance.now()), sleep: o.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms))),
    };
    for (const k of ['intervalMs', 'timeoutMs', 'misses'] as const) {
      if (!(this.o[k] > 0)) throw new Error(`failover monitor: ${k} must be positive, got ${this.o[k]}`);
    }
  }

  stop(): void { this.stopped = true; }

  /** One heartbeat: undefined when answered in time, else what went wrong. */
  async beat(): Promise<string | undefined> {
    let timer = false;
    const late = this.o.sleep(this.o.timeoutMs).then(() => { timer = true; return `no answer to TEST UNIT READY within ${this.o.timeoutMs} ms`; });
    const answer = this.operation.testUnitReady().then(() => undefined, (e: Error) => e.message);
    const r = await Promise.race([answer, late]);
    if (!timer) await late; // the interval counts from the beat's start either way
    return r;
  }

  /** Watches until the operation array is lost (then fails over) or stop(); undefined when stopped. */
  async run(): Promise<FailoverReport | undefined> {
    let missed = 0;
    let lostAt = 0;
    let reason = '';
    for (let beats = 1; !this.stopped && beats <= this.o.maxBeats; beats++) {
      const started = this.o.now();
      const err = await this.beat();
      if (err === undefined) { missed = 0; } else {
        if (missed === 0) lostAt = started;
        missed++;
        reason = err;
        if (missed >= this.o.misses) {
          for (const v of this.volumes) await this.standby.remoteChange(v, 'failover');
          return { reason, lostAt, failedOverAt: this.o.now(), beats, volumes: [...this.volumes] };
        }
      }
      const rest = this.o.intervalMs - (this.o.now() - started);
      if (rest > 0) await this.o.sleep(rest);
    }
    return undefined;
  }
}
