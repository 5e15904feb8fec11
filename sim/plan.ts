// What a run is, as a function of its seed: a random topology (docs/topology.md) and a list of
// steps. A step names only its kind and a seed of its own; what it does concretely (which volume,
// which LBAs, which fault) is drawn when it runs, from that seed and the state the model is in. So
// a run with some steps left out (the shrinker's cut-downs, `--steps`) is still a valid run, and
// the steps kept do what they would do in any run that reaches the same state.
import * as path from 'path';
import { Prng } from '../hal/prng';

export type StepKind =
  | 'io' // every initiator issues a burst of commands at once
  | 'mgmt' // one management change (create, delete, map, unmap, reinitialize)
  | 'busyMgmt' // I/O in flight, then a management change of a volume it addresses (delete, unmap)
  | 'faultMedia' // a medium fault injected (read/write error, slow, dead) while I/O runs
  | 'faultNv' // an NV fault armed (error, ENOSPC, torn, power loss after n writes) while I/O runs
  | 'heal' // faults healed; the array must come back within a bound
  | 'session' // a session closed with commands in flight, another opened
  | 'crash' // power fails while I/O runs; restart on the same directory
  | 'stop' // graceful stop, maybe images deleted or replaced; restart
  | 'flush' // a flush of the whole cache; its result checked
  | 'verify'; // every block of every volume read back and checked

export interface Step { index: number; kind: StepKind; seed: number }

export interface Plan { seed: number; topology: SimTopology; steps: Step[] }

export interface SimTopology {
  channels: number;
  media: Array<{ name: string; kind: 'ram' | 'file'; size: number; scheduler: string; queueDepth?: number; timing?: object }>;
  cacheBytes: number;
  destageIntervalMs: number;
  destageAgeMs: number;
  dirtyHighPercent: number;
  nvSync: boolean;
  contexts: number;
  /** Inproc ports: channel IOP of each. */
  ports: number[];
  sessions: number;
  /** Initiators issuing I/O (the administrator is one more session, on port 0). */
  initiators: number;
}

export const DEFAULT_STEPS = 60;
const MiB = 1 << 20;

function pick<T>(r: Prng, xs: readonly T[]): T { return xs[Math.floor(r.next() * xs.length)]; }
export function between(r: Prng, lo: number, hi: number): number { return lo + Math.floor(r.next() * (hi - lo + 1)); }

export function randomTopology(r: Prng): SimTopology {
  const channels = between(r, 1, 3);
  const mediaCount = between(r, 2, 4);
  const media: SimTopology['media'] = [];
  for (let i = 0; i < mediaCount; i++) {
    const kind = r.next() < 0.5 ? 'ram' : 'file';
    const m: SimTopology['media'][number] = { name: `m${i}`, kind, size: between(r, 4, 16) * MiB, scheduler: pick(r, ['fifo', 'sstf', 'clook', 'deadline']) };
    if (r.next() < 0.3) {
      m.timing = { seekMs: { track: 0.2 + r.next(), average: 2 + 6 * r.next(), full: 8 + 8 * r.next() }, rpm: pick(r, [5400, 7200, 10000, 15000]), transferMBps: between(r, 50, 400) };
    } else if (r.next() < 0.5) {
      m.queueDepth = between(r, 1, 8);
    }
    media.push(m);
  }
  const ports: number[] = [];
  for (let c = 0; c < channels; c++) ports.push(c);
  if (r.next() < 0.3) ports.push(between(r, 0, channels - 1)); // two ports on one channel IOP
  return {
    channels,
    media,
    // Small enough that the volumes' working set does not fit: eviction and destage pressure.
    cacheBytes: between(r, 16, 40) * 65536,
    destageIntervalMs: pick(r, [1, 2, 5, 10]),
    destageAgeMs: pick(r, [2, 5, 20, 100, 1000]),
    dirtyHighPercent: between(r, 30, 90),
    nvSync: r.next() < 0.3,
    contexts: pick(r, [64, 128, 256]),
    ports,
    sessions: 6,
    initiators: between(r, 2, 4),
  };
}

const WEIGHTS: Array<[StepKind, number]> = [
  ['io', 30], ['mgmt', 10], ['busyMgmt', 6], ['faultMedia', 7], ['faultNv', 6], ['heal', 6], ['session', 5],
  ['crash', 5], ['stop', 3], ['flush', 4], ['verify', 4],
];

export function makePlan(seed: number, steps = DEFAULT_STEPS): Plan {
  const r = new Prng(seed);
  const topology = randomTopology(r.fork('topology'));
  const k = r.fork('steps');
  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);
  const out: Step[] = [];
  for (let i = 0; i < steps; i++) {
    // The first steps make volumes to work on.
    let kind: StepKind;
    if (i < 3) kind = 'mgmt';
    else {
      let x = k.next() * total;
      kind = WEIGHTS.find(([, w]) => (x -= w) < 0)![0];
    }
    out.push({ index: i, kind, seed: k.u32() });
  }
  return { seed, topology, steps: out };
}

/** The topology document (docs/topology.md) of a run, in directory `dir`. */
export function topologyDocument(t: SimTopology, dir: string, seed: number): object {
  return {
    mode: 'deterministic',
    seed,
    metricsIntervalMs: 3_600_000,
    arrays: [{
      name: 'sim',
      dir: path.join(dir, 'array'),
      cache: { size: t.cacheBytes, destageIntervalMs: t.destageIntervalMs, destageAgeMs: t.destageAgeMs, dirtyHighPercent: t.dirtyHighPercent },
      nv: { sync: t.nvSync },
      contexts: t.contexts,
      iops: [...Array.from({ length: t.channels }, () => ({ role: 'channel' })), { role: 'disk' }],
      media: t.media.map((m) => ({
        name: m.name, kind: m.kind, size: m.size, scheduler: m.scheduler,
        ...(m.queueDepth ? { queueDepth: m.queueDepth } : {}), ...(m.timing ? { timing: m.timing } : {}),
      })),
      ports: t.ports.map((iop, i) => ({ name: `p${i}`, iop, transport: 'inproc', sessions: t.sessions, queueEntries: 64, dataBytes: '1MiB' })),
    }],
  };
}

/** "0,3,5-9" -> [0, 3, 5, 6, 7, 8, 9]. */
export function parseStepList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`--steps: expected indexes such as 0,3,5-9, got ${JSON.stringify(s)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`--steps: ${part} is an empty range`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

/** The shortest "0,3,5-9" for a sorted list of indexes. */
export function formatStepList(xs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : String(xs[i]));
    i = j + 1;
  }
  return parts.join(',');
}
