// Failover trials of document 003's embodiment 7 (docs/remote.md, "Failover trials"): for each seed,
// A is killed at a random virtual instant, B fails over, and B must equal the last restart point.
// Prints one JSON summary (share of trials that hold, bytes lost). Usage:
//   npm run -s trials:standby -- [--count=N] [--first=SEED] [--relay] [--horizon=MS] [--verbose]
import { standbyTrials } from '../test/remote/standby-trials';

function option(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  if (!a) return fallback;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a whole number, got ${JSON.stringify(a)}`);
  return n;
}

async function main(): Promise<void> {
  const count = option('count', 20);
  const first = option('first', 1);
  const relay = process.argv.includes('--relay');
  const verbose = process.argv.includes('--verbose');
  const horizon = option('horizon', 40);
  // A trial whose virtual clock has nothing left to run leaves no timer: node would exit 0 with no
  // output. Say which trial never ended, and fail.
  let done = 0;
  let finished = false;
  process.on('beforeExit', () => {
    if (finished) return;
    process.stderr.write(`trials:standby: trial seed ${first + done} never ended (nothing left to run on its clock: a wait with no wake-up)\n`);
    process.exit(3);
  });
  const summary = await standbyTrials(first, count, { relay, horizonMs: horizon }, (r) => {
    done++;
    if (verbose || !r.held) process.stderr.write(`${JSON.stringify(r)}\n`);
  });
  finished = true;
  const { results, ...rest } = summary;
  process.stdout.write(`${JSON.stringify({ command: `trials:standby --count=${count} --first=${first} --horizon=${horizon}${relay ? ' --relay' : ''}`, ...rest,
    killAtMs: { min: Math.min(...results.map((r) => r.killAtMs)), max: Math.max(...results.map((r) => r.killAtMs)) },
    restartPoints: results.reduce((n, r) => n + r.restartPoints, 0), writes: results.reduce((n, r) => n + r.writes, 0) }, null, 2)}\n`);
  if (summary.held !== summary.trials) process.exitCode = 1;
}

main().catch((e) => { process.stderr.write(`trials:standby: ${(e as Error).stack ?? e}\n`); process.exitCode = 2; });
