// npm run sim -- [--seed N] [--runs M] [--steps K] [--minutes X] [--json] [--no-shrink]
//                [--replay] [--only 0,3,5-9]
// Exit 0: no violation. 1: a violation (each with the command that replays it, and a cut-down).
// 2: bad arguments. With --json the summary is the only thing on stdout.
import { runMany, runSeed, replayCommand, type Summary } from './run';
import { DEFAULT_STEPS, parseStepList } from './plan';

const USAGE = 'usage: npm run sim -- [--seed N] [--runs M] [--steps K] [--minutes X] [--json] [--no-shrink] [--replay] [--only 0,3,5-9]';

interface Args { seed: number; runs: number; steps: number; minutes?: number; json: boolean; shrink: boolean; replay: boolean; only?: number[] }

function parse(argv: string[]): Args {
  const a: Args = { seed: 1, runs: 1, steps: DEFAULT_STEPS, json: false, shrink: true, replay: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (what: string, min: number, max: number): number => {
      const v = argv[++i];
      if (v === undefined || !/^\d+(\.\d+)?$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`${k}: expected ${what} from ${min} to ${max}, got ${v ?? 'nothing'}`);
      return Number(v);
    };
    if (k === '--seed') a.seed = Math.floor(num('an integer', 0, 0xffffffff));
    else if (k === '--runs') a.runs = Math.floor(num('a number of runs', 1, 1e9));
    else if (k === '--steps') a.steps = Math.floor(num('a number of steps', 1, 100_000));
    else if (k === '--minutes') { a.minutes = num('minutes', 0, 1e6); a.runs = Math.max(a.runs, 1e9); }
    else if (k === '--json') a.json = true;
    else if (k === '--no-shrink') a.shrink = false;
    else if (k === '--replay') a.replay = true;
    else if (k === '--only') { const v = argv[++i]; if (!v) throw new Error('--only: expected step indexes such as 0,3,5-9'); a.only = parseStepList(v); }
    else if (k === '--help' || k === '-h') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
    else throw new Error(`unknown argument ${JSON.stringify(k)}`);
  }
  if ((a.replay || a.only) && a.runs !== 1) throw new Error('--replay and --only run one seed: give --runs 1');
  return a;
}

function words(s: Summary): string {
  const faults = Object.entries(s.faults).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    `sim: seeds ${s.firstSeed}-${s.firstSeed + s.seeds - 1} (${s.seeds} runs of ${s.steps} steps): ${s.seconds} s, ${s.seedsPerMinute} seeds/minute, ${s.boots} boots, ${s.virtualSeconds} s of virtual time`,
    `  faults injected (${s.faultsTotal}): ${faults}`,
    `  violations: ${s.violations.length}`,
  ];
  for (const v of s.violations) {
    lines.push(`  seed ${v.seed} step ${v.step} (${v.kind}) ${v.check}: ${v.detail}`, `    replay: ${v.replay}`);
    if (v.shrunk) lines.push(`    cut down to steps ${v.shrunk.steps} (${v.shrunk.attempts} runs): ${v.shrunk.replay}`, `      ${v.shrunk.detail}`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`sim: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const log = (l: string) => { if (!a.json || process.stderr.isTTY) process.stderr.write(`${l}\n`); };
  if (a.replay || a.only) {
    const r = await runSeed({ seed: a.seed, steps: a.steps, only: a.only, verbose: a.replay, log: a.replay ? (l) => process.stderr.write(`${l}\n`) : undefined });
    const out = { ...r, replay: replayCommand(a.seed, a.steps, a.only) };
    process.stdout.write(a.json ? `${JSON.stringify(out)}\n` : `sim: seed ${a.seed}: ${r.stepsRun} steps, digest ${r.digest}: ${r.violations.length === 0 ? 'no violation' : r.violations.map((v) => `step ${v.step} (${v.kind}) ${v.check}: ${v.detail}`).join('\n')}\n`);
    return r.violations.length === 0 ? 0 : 1;
  }
  const s = await runMany({ seed: a.seed, runs: a.runs, steps: a.steps, minutes: a.minutes, shrink: a.shrink, log });
  process.stdout.write(a.json ? `${JSON.stringify(s)}\n` : `${words(s)}\n`);
  return s.violations.length === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`sim: ${(e as Error).stack}\n`); process.exitCode = 1; });
