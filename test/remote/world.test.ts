// harness/world.ts, the one clock of linked nodes: its waits are bounded and name what they waited for.
import test from 'ava';
import { startSites } from './sites';
import { pattern, run } from '../harness/env';

test('an answer never delivered on a linked array stops that array after the bound, naming its session; the other array goes on', async (t) => {
  const s = await startSites('world-undelivered');
  try {
    const world = s.emu.world!;
    world.deliveryBoundMs = 50; // the guard's bound, wall time (10 s by default)
    const conn = s.emu.connect('A');
    s.emu.array('A').deliveryGate = () => undefined; // a delivery that never comes
    t.is((await run(conn, 0, Buffer.alloc(6))).status, 0, 'the host has its answer');
    await s.emu.settle();
    t.regex(s.emu.array('A').failed?.message ?? 'not stopped',
      /array A: the linked nodes' virtual time held for 50 ms \(wall\) waiting for the delivery of 1 answer\(s\) to port q0 session \d/);
    t.is(s.emu.array('B').failed, undefined, 'B is not stopped');
    const data = pattern(4096, 3);
    await s.b.write(1, 0, data);
    t.true((await s.b.read(1, 0, 8)).equals(data), 'B still takes commands: the clock did not hold for ever');
  } finally {
    await s.emu.stop('powerFail');
  }
});
