// The storage-fault simulator (docs/reliability.md, "Simulator") in the normal suite: a fixed set
// of seeds must run without a violation, a run must be a function of its seed, and each check
// must be able to fail: targets broken on purpose are caught, and a failing run is cut down.
import test from 'ava';
import { runMany, runSeed, shrink } from '../../sim/run';

const SEEDS = 20251128;
const RUNS = 4;

test('the fixed seeds run without a violation, injecting every class of fault', async (t) => {
  const s = await runMany({ seed: SEEDS, runs: RUNS });
  t.deepEqual(s.violations.map((v) => `seed ${v.seed} step ${v.step} ${v.check}: ${v.detail} (${v.replay})`), []);
  t.is(s.seeds, RUNS);
  t.true(s.boots > RUNS, 'restarts happened');
  for (const k of ['power cut (kill)', 'graceful stop', 'deleteWhileBusy', 'session reopened', 'media readError', 'media writeError',
    'media dead', 'nv ENOSPC', 'nv EIO', 'nv torn (armed)', 'ram medium blank after restart']) {
    t.true((s.faults[k] ?? 0) > 0, `faults of class "${k}" injected`);
  }
  for (const k of ['read', 'write', 'writeFua', 'sync', 'mgmtOut', 'verified volumes']) t.true((s.commands[k] ?? 0) > 0, `commands of class ${k} sent`);
});

test('a run is a function of its seed (what --replay relies on)', async (t) => {
  const a = await runSeed({ seed: 77, steps: 25 });
  const b = await runSeed({ seed: 77, steps: 25 });
  t.deepEqual(a.violations, []);
  t.is(a.digest, b.digest);
  t.deepEqual([a.faults, a.boots, a.rounds], [b.faults, b.boots, b.rounds]);
  const c = await runSeed({ seed: 78, steps: 25 });
  t.not(a.digest, c.digest);
});

test('media that acknowledge writes they drop are caught: a block reads older data than an acknowledged write', async (t) => {
  const r = await runSeed({ seed: 2, sabotage: 'media-drop' });
  t.true(r.violations.length > 0);
  t.true(['stale', 'lost-write'].includes(r.violations[0].check), r.violations[0].detail);
});

test('media that read the wrong chunk are caught (bytes of another LBA or volume), and the run is cut down', async (t) => {
  const r = await runSeed({ seed: 2, sabotage: 'cross-read' });
  t.true(r.violations.length > 0);
  const v = r.violations[0];
  t.true(['misplaced', 'leak'].includes(v.check), v.detail);
  const k = await shrink(2, r.stepsPlanned, v, 40, undefined, 'cross-read');
  t.true(k.only.length < v.step + 1, `cut down to ${k.only.length} of ${v.step + 1} steps`);
  const again = await runSeed({ seed: 2, only: k.only, sabotage: 'cross-read' });
  t.is(again.violations[0]?.check, v.check, 'the cut-down fails the same check');
});

test('lists that miss a volume are caught', async (t) => {
  const r = await runSeed({ seed: 1, sabotage: 'stale-list' });
  t.is(r.violations[0]?.check, 'lists');
});
