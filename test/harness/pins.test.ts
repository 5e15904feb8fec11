// Pins (issue 7, defect 5), through the real firmware under cache pressure: a slot staged for a
// READ is pinned until that READ has sent it, so a command of another channel IOP cannot evict it
// in between (and the stage is not wasted); the stats count the pins and the waits for a slot.
//
// The rounds are driven by hand so that the interleaving is exact: channel IOP 1's READs take every
// slot of a 16-slot cache and their stages complete; channel IOP 0, polled first in each round,
// then has READs waiting for a slot to evict.
import test from 'ava';
import * as A from '../../hal/abi';
import { Emulator } from '../../harness';
import { smallTopology, tempDir, createVolume, write, read, pattern } from './env';

test('a staged slot stays pinned for the READ that asked for it: IOP 0 cannot evict IOP 1\'s staged slots before they are read', async (t) => {
  const dir = tempDir('pins');
  const topo = smallTopology({ dir, mode: 'deterministic', cache: { size: '1MiB' },
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 1, transport: 'inproc' }] }) as { arrays: Array<{ iops: object[] }> };
  topo.arrays[0].iops = [{ role: 'channel' }, { role: 'channel' }, { role: 'disk' }];
  const emu = await Emulator.start(topo, { debug: true });
  t.teardown(() => emu.stop('powerFail'));
  const a = emu.array();
  const q0 = emu.connect('a0', 'q0');
  const q1 = emu.connect('a0', 'q1');
  await createVolume(q0, { name: 'v', blocks: 65536, blockSize: 512, placement: 'linear' }, 1);
  const n = 32;
  const data = pattern(n * 65536, 9);
  for (let i = 0; i < n; i++) await write(q0, 1, i * 128, data.subarray(i * 65536, (i + 1) * 65536));
  await emu.flush();
  // Evict what the writes left cached: read 16 other slots.
  for (let i = n; i < n + 16; i++) await read(q0, 1, i * 128, 128);

  const d = emu.driver();
  d.stop(); // from here the test polls the IOPs itself
  let now = d.now();
  const rounds = async (k: number) => { for (let i = 0; i < k; i++) a.round(now += 1000); await new Promise((r) => setImmediate(r)); };
  const before = a.stats();
  const slot = (i: number) => data.subarray(i * 65536, (i + 1) * 65536);
  const r1 = Array.from({ length: 16 }, (_, i) => read(q1, 1, i * 128, 128)); // IOP 1: slots 0-15
  await rounds(1); // IOP 1 allocates all 16 slots and asks for their stages; the media complete them
  const r0 = Array.from({ length: 16 }, (_, i) => read(q0, 1, (16 + i) * 128, 128)); // IOP 0: slots 16-31
  for (let k = 0; k < 200; k++) await rounds(10);
  const got1 = await Promise.all(r1);
  const got0 = await Promise.all(r0);
  for (let i = 0; i < 16; i++) {
    t.true(got1[i].equals(slot(i)), `IOP 1 slot ${i}`);
    t.true(got0[i].equals(slot(16 + i)), `IOP 0 slot ${16 + i}`);
  }
  const after = a.stats();
  const stages = after[A.STAT_STAGES] - before[A.STAT_STAGES];
  t.is(stages, 32, 'each slot staged once: none evicted before its READ sent it');
  t.true(after[A.STAT_PINS] - before[A.STAT_PINS] >= 32);
  t.true(after[A.STAT_PIN_WAITS] > before[A.STAT_PIN_WAITS], 'IOP 0\'s READs waited for an evictable slot');
});
