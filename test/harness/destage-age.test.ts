// The destage age adapts to cache pressure (firmware/disk.ts, destageAgeNs; docs/topology.md,
// cache.destageAgeIdleMs): while dirty slots are at most half the high mark a slot waits the idle
// age, so writes to it meanwhile go to the medium as one destage; near the mark it falls to
// destageAgeMs. Deterministic mode: virtual time, the destage counter is the array's own.
import test from 'ava';
import * as A from '../../hal/abi';
import { tempDir, startSmall, createVolume, write, read, pattern } from './env';
import type { Emulator } from '../../harness';

const SLOT_BLOCKS = 128;
// 8 MiB cache: 128 slots; high mark 50 %: 64 dirty slots, half of it 32.
const cache = { size: '8MiB', destageIntervalMs: 2, destageAgeMs: 5, destageAgeIdleMs: 1000, dirtyHighPercent: 50 };

async function array(t: any, c: object): Promise<{ emu: Emulator; s: ReturnType<Emulator['connect']> }> {
  const emu = await startSmall({ dir: tempDir('destage-age'), mode: 'deterministic', cache: c });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 256 * SLOT_BLOCKS, blockSize: 512, placement: 'striped' }, 1);
  await emu.advance(50); // whatever creating the volume left to do
  return { emu, s };
}

const destages = (emu: Emulator) => emu.array().stats()[A.STAT_DESTAGES];

/** Writes 4 KiB into each of `slots` slots, from slot `from`. */
async function dirty(s: ReturnType<Emulator['connect']>, from: number, slots: number, seed: number): Promise<void> {
  for (let i = 0; i < slots; i++) await write(s, 1, (from + i) * SLOT_BLOCKS + 8, pattern(4096, seed + i));
}

test('with the cache nearly clean, a slot written twice within the idle age is destaged once, after it', async (t) => {
  const { emu, s } = await array(t, cache);
  const d0 = destages(emu);
  await dirty(s, 0, 1, 1);
  await emu.advance(100); // twenty times destageAgeMs
  t.is(destages(emu), d0, 'not destaged at destageAgeMs while the cache has room');
  await dirty(s, 0, 1, 2);
  for (let i = 0; i < 12 && destages(emu) === d0; i++) await emu.advance(100);
  t.is(destages(emu) - d0, 1, 'both writes went out in one destage');
  t.true((await read(s, 1, 8, 8)).equals(pattern(4096, 2)));
});

test('near the high mark the age falls towards destageAgeMs: the dirty slots are destaged well before the idle age', async (t) => {
  const { emu, s } = await array(t, cache);
  const d0 = destages(emu);
  await dirty(s, 0, 60, 10); // 60 of the mark's 64: the age is 5 + 995 * 4 / 32 = 129 ms
  await emu.advance(300);
  t.true(destages(emu) - d0 > 0, 'destaged before the idle age');
});

test('a topology that sets only destageAgeMs keeps the age fixed', async (t) => {
  const { emu, s } = await array(t, { size: '8MiB', destageIntervalMs: 2, destageAgeMs: 5 });
  const d0 = destages(emu);
  await dirty(s, 0, 1, 1);
  await emu.advance(100);
  t.is(destages(emu) - d0, 1);
});
