// Runs of the simulator: one seed, many seeds with a summary, and the cut-down of a failing run
// to fewer steps that still fail the same check (delta debugging over the plan's steps).
import { Simulation, type SimOptions, type RunResult, type Violation, type Sabotage } from './sim';
import { DEFAULT_STEPS, formatStepList } from './plan';

export function runSeed(o: SimOptions): Promise<RunResult> {
  return new Simulation(o).run();
}

/** The command that replays a run exactly. */
export function replayCommand(seed: number, steps: number, only?: number[]): string {
  return `npm run sim -- --seed ${seed} --runs 1${steps !== DEFAULT_STEPS ? ` --steps ${steps}` : ''}${only ? ` --only ${formatStepList(only)}` : ''} --replay`;
}

export interface Shrunk { only: number[]; violation: Violation; attempts: number }

/**
 * Delta debugging (ddmin) over the steps up to the failing one: removes chunks of steps, then
 * single steps, keeping a cut-down when it still fails with the same check. At most `budget`
 * runs. The failing step's own index stays: what it does depends on the state before it only.
 */
export async function shrink(seed: number, steps: number, failed: Violation, budget = 200, log: (l: string) => void = () => undefined, sabotage?: Sabotage): Promise<Shrunk> {
  let keep = Array.from({ length: Math.min(failed.step + 1, steps) }, (_, i) => i);
  let best: Violation = failed;
  let attempts = 0;
  const fails = async (only: number[]): Promise<Violation | undefined> => {
    attempts++;
    const r = await runSeed({ seed, steps, only, sabotage });
    return r.violations.find((v) => v.check === failed.check);
  };
  let n = 2;
  while (keep.length >= 2 && attempts < budget) {
    const size = Math.ceil(keep.length / n);
    let reduced = false;
    for (let i = 0; i < keep.length && attempts < budget; i += size) {
      const candidate = [...keep.slice(0, i), ...keep.slice(i + size)];
      if (candidate.length === 0) continue;
      const v = await fails(candidate);
      if (v) {
        keep = candidate;
        best = v;
        n = Math.max(n - 1, 2);
        reduced = true;
        log(`shrink: ${keep.length} steps still fail (${v.check})`);
        break;
      }
    }
    if (!reduced) {
      if (size === 1) break;
      n = Math.min(n * 2, keep.length);
    }
  }
  return { only: keep, violation: best, attempts };
}

export interface Summary {
  firstSeed: number;
  seeds: number;
  steps: number;
  seconds: number;
  seedsPerMinute: number;
  stepsRun: number;
  boots: number;
  virtualSeconds: number;
  faults: Record<string, number>;
  faultsTotal: number;
  commands: Record<string, number>;
  violations: Array<Violation & { seed: number; replay: string; shrunk?: { steps: string; replay: string; detail: string; attempts: number } }>;
}

export interface ManyOptions {
  seed: number;
  runs: number;
  steps?: number;
  /** Stop starting new seeds after this long (wall clock; the long runs of docs/reliability.md). */
  minutes?: number;
  shrink?: boolean;
  log?: (line: string) => void;
}

export async function runMany(o: ManyOptions): Promise<Summary> {
  const steps = o.steps ?? DEFAULT_STEPS;
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const s: Summary = {
    firstSeed: o.seed, seeds: 0, steps, seconds: 0, seedsPerMinute: 0, stepsRun: 0, boots: 0, virtualSeconds: 0,
    faults: {}, faultsTotal: 0, commands: {}, violations: [],
  };
  for (let i = 0; i < o.runs; i++) {
    if (o.minutes !== undefined && Date.now() - started > o.minutes * 60_000) break;
    const seed = (o.seed + i) >>> 0;
    const r = await runSeed({ seed, steps });
    s.seeds++;
    s.stepsRun += r.stepsRun;
    s.boots += r.boots;
    s.virtualSeconds += r.virtualSeconds;
    for (const [k, v] of Object.entries(r.faults)) s.faults[k] = (s.faults[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.commands)) s.commands[k] = (s.commands[k] ?? 0) + v;
    log(`sim: seed ${seed}: ${r.stepsRun} steps, ${r.boots} boots, ${r.violations.length === 0 ? 'ok' : `VIOLATION ${r.violations[0].check}: ${r.violations[0].detail}`}`);
    for (const v of r.violations.slice(0, 1)) {
      const entry: Summary['violations'][number] = { ...v, seed, replay: replayCommand(seed, steps) };
      if (o.shrink) {
        const k = await shrink(seed, steps, v, 200, log);
        entry.shrunk = { steps: formatStepList(k.only), replay: replayCommand(seed, steps, k.only), detail: k.violation.detail, attempts: k.attempts };
      }
      s.violations.push(entry);
    }
  }
  s.faultsTotal = Object.values(s.faults).reduce((a, b) => a + b, 0);
  s.seconds = Math.round((Date.now() - started) / 100) / 10;
  s.seedsPerMinute = Math.round((s.seeds / Math.max(s.seconds, 0.001)) * 60 * 10) / 10;
  s.virtualSeconds = Math.round(s.virtualSeconds);
  return s;
}
