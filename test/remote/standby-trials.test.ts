// The failover invariant of embodiment 7 over a few seeds (test/remote/standby-trials.ts): A killed at
// a random virtual instant, B failed over, B equal to the last restart point. The long run is
// `npm run -s trials:standby -- --count=100` (docs/remote.md, "Failover trials").
import test from 'ava';
import { standbyTrial } from './standby-trials';

for (const seed of [1, 2, 3]) {
  test(`failover trial, seed ${seed}: A killed at a random virtual instant, B fails over at the last restart point exactly (S480-S485)`, async (t) => {
    const r = await standbyTrial(seed);
    t.true(r.held, JSON.stringify(r));
    t.true(r.writes > 0 || r.killAtMs < 5, `the host wrote before the kill: ${JSON.stringify(r)}`);
  });
}

test('failover trial through a relay (seed 4)', async (t) => {
  const r = await standbyTrial(4, { relay: true });
  t.true(r.held, JSON.stringify(r));
});
