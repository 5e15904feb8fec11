// NV faults for the simulator (docs/topology.md "Faults while running", docs/hal.md "Non-volatile
// memory"): write errors, a torn write, a power loss after N writes, heal — injected with the
// console's words through ArrayController.inject() on an array running the real firmware, and
// checked in what reaches the NV file, what the harness reports, and what the next boot finds.
// (What the firmware answers a host whose write failed in NV is the firmware's business: these
// tests look at the binding and the harness.)
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { parseTopology } from '../../harness';
import { tempDir, startSmall, createVolume, read, write, pattern, smallTopology } from './env';
import type { SmallOptions } from './env';

const VOLUME = { name: 'v', blocks: 65536, blockSize: 512 as const, placement: 'striped' as const };

async function boot(label: string, extra: Partial<SmallOptions> = {}) {
  const dir = tempDir(label);
  const lines: string[] = [];
  const o: SmallOptions = { dir, mode: 'deterministic', cache: { destageAgeMs: 60_000 }, ...extra };
  const emu = await startSmall(o, { log: (l) => lines.push(l) });
  const s = emu.connect();
  await createVolume(s, VOLUME, 1);
  await emu.settle();
  const nvFile = path.join(dir, 'a0', 'nvram.bin');
  return { emu, s, a: emu.array(), lines, nvFile, o };
}

/** Where `needle` is in the NV file, or -1. */
function find(nvFile: string, needle: Buffer): number { return fs.readFileSync(nvFile).indexOf(needle); }

test('nv error ENOSPC: every NV write fails until heal, nothing reaches the file, the harness logs it once and counts each', async (t) => {
  const { emu, s, a, lines, nvFile } = await boot('nvf-enospc');
  t.teardown(() => emu.stop());
  t.deepEqual(a.inject('nv error ENOSPC'), { type: 'error', errno: 28 });
  const errors = a.nv.counters.errors;
  const p1 = pattern(4096, 11);
  const p2 = pattern(4096, 12);
  await write(s, 1, 0, p1).catch(() => undefined);
  await write(s, 1, 8, p1).catch(() => undefined);
  await emu.settle();
  t.is(find(nvFile, p1), -1, 'the data did not reach the NV file');
  t.true(a.nv.counters.errors - errors >= 4, 'two writes, each a data range and a descriptor');
  t.is(lines.filter((l) => /nv: NV write failed: ENOSPC/.test(l)).length, 1, lines.join('\n'));
  t.is(a.inject('nv heal'), undefined);
  await emu.advance(5000); // time for a firmware that refuses writes after an NV failure to recover
  await write(s, 1, 1024, p2);
  await emu.settle();
  t.true(find(nvFile, p2) >= 0, 'after heal the next write lands');
});

test('nv error EIO count 2: exactly the next two NV writes fail', async (t) => {
  const { emu, s, a, nvFile } = await boot('nvf-eio');
  t.teardown(() => emu.stop());
  t.deepEqual(a.inject('nv error EIO count 2'), { type: 'error', errno: 5, count: 2 });
  const errors = a.nv.counters.errors;
  const written = a.nv.counters.written;
  const p1 = pattern(4096, 13);
  const p2 = pattern(4096, 14);
  await write(s, 1, 0, p1).catch(() => undefined); // its first two NV writes fail
  await emu.settle();
  t.is(a.nv.counters.errors - errors, 2);
  await emu.advance(5000); // time for a firmware that refuses writes after an NV failure to recover
  await write(s, 1, 1024, p2);
  await emu.settle();
  t.is(a.nv.counters.errors - errors, 2, 'no more failures');
  t.true(find(nvFile, p2) >= 0);
  t.true(a.nv.counters.written - written >= 2);
});

for (const sync of [false, true]) {
test(`nv torn bytes 100: the next NV write lands as its first 100 bytes, then the power fails; the stop after it writes nothing more (nv.sync ${sync})`, async (t) => {
  const { emu, s, a, lines, nvFile, o } = await boot('nvf-torn', { nv: { sync } });
  const p = pattern(4096, 15);
  t.deepEqual(a.inject('nv torn bytes 100'), { type: 'torn', bytes: 100 });
  const err = await t.throwsAsync(write(s, 1, 0, p));
  t.regex(err!.message, /power failed: NV fault: torn write \(100 of 4096 bytes landed\)/);
  t.regex(a.failed?.message ?? '', /power failed/);
  t.true(lines.some((l) => /a0: power failed \(NV fault: torn write/.test(l)));
  const at = find(nvFile, p.subarray(0, 100));
  t.true(at >= 0, 'the first 100 bytes landed');
  t.true(fs.readFileSync(nvFile).subarray(at + 100, at + 4096).equals(Buffer.alloc(3996)), 'the rest did not');
  // The harness treats the array as powered off: a graceful stop writes nothing (no flush, no clean mark).
  const image = fs.readFileSync(nvFile);
  await emu.stop();
  t.true(fs.readFileSync(nvFile).equals(image));
  const again = await startSmall(o);
  t.teardown(() => again.stop());
  t.deepEqual(await read(again.connect(), 1, 0, 8), Buffer.alloc(4096), 'the torn write was never acknowledged and is not served');
  if (sync) t.is(again.array().nv.counters.replayedRecords, 0, 'the journal held nothing to write over the tear');
});
}

test('nv torn bytes 30 after n writes: the n writes before it land whole, then the torn one (a WRITE\'s last NV write: its descriptor)', async (t) => {
  const { emu, s, a, lines, nvFile } = await boot('nvf-torn-after');
  const entries = a.nv.counters.entries;
  await write(s, 1, 2048, pattern(4096, 20));
  const k = a.nv.counters.entries - entries;
  const written = a.nv.counters.written;
  t.deepEqual(a.inject(`nv torn bytes 30 after ${k - 1} writes`), { type: 'torn', bytes: 30, afterWrites: k - 1 });
  const p = pattern(4096, 21);
  await t.throwsAsync(write(s, 1, 0, p), { message: /power failed: NV fault: torn write \(30 of \d+ bytes landed\)/ });
  t.is(a.nv.counters.written - written, k - 1);
  t.true(find(nvFile, p) >= 0, 'the data before the torn write landed whole');
  t.true(lines.some((l) => /torn write \(30 of/.test(l)));
  await emu.stop();
});

test('nv torn without a byte count: the cut is drawn from the seed (same seed, same cut)', async (t) => {
  const cuts: number[] = [];
  for (let i = 0; i < 2; i++) {
    const { emu, s, a, lines } = await boot(`nvf-torn-seed${i}`, { seed: 99 });
    a.inject('nv torn');
    await write(s, 1, 0, pattern(4096, 16)).catch(() => undefined);
    await emu.stop();
    const m = lines.map((l) => /torn write \((\d+) of (\d+) bytes landed\)/.exec(l)).find((x) => x);
    t.truthy(m, lines.join('\n'));
    t.is(Number(m![2]), 4096);
    cuts.push(Number(m![1]));
  }
  t.is(cuts[0], cuts[1]);
  t.true(cuts[0] >= 1 && cuts[0] < 4096);
});

for (const sync of [false, true]) {
test(`nv power loss after n writes: n NV writes land and none after; the next boot finds exactly those (nv.sync ${sync})`, async (t) => {
  const { emu, s, a, lines, nvFile, o } = await boot('nvf-powerloss', { nv: { sync } });
  const p0 = pattern(4096, 16);
  const p1 = pattern(4096, 17);
  const p2 = pattern(4096, 18);
  const entries = a.nv.counters.entries;
  await write(s, 1, 2048, p0);
  const k = a.nv.counters.entries - entries; // NV writes of one 4 KiB WRITE: its data first, its descriptor last
  t.true(k >= 2);
  // The first WRITE's k writes land (it is acknowledged), then the second's data, and nothing after.
  t.deepEqual(a.inject(`nv power loss after ${k + 1} writes`), { type: 'powerLoss', afterWrites: k + 1 });
  await write(s, 1, 0, p1);
  const err = await t.throwsAsync(write(s, 1, 1024, p2));
  t.regex(err!.message, /power failed/);
  t.true(lines.some((l) => /power failed \(NV fault: power loss/.test(l)));
  t.true(find(nvFile, p2) >= 0, 'the second command\'s data landed');
  await emu.stop();
  const again = await startSmall(o);
  t.teardown(() => again.stop());
  const s2 = again.connect();
  t.deepEqual(await read(s2, 1, 0, 8), p1, 'the acknowledged write is back');
  t.deepEqual(await read(s2, 1, 1024, 8), Buffer.alloc(4096), 'no descriptor claims the data of the unacknowledged one');
});
}

test('nv power loss after 0 writes cuts the power at once; heal disarms faults that have not fired', async (t) => {
  const { emu, s, a, nvFile } = await boot('nvf-heal');
  t.teardown(() => emu.stop());
  a.inject('nv torn bytes 10');
  a.inject('nv power loss after 1 write');
  a.inject('nv heal');
  const p = pattern(4096, 19);
  await write(s, 1, 0, p);
  await emu.settle();
  t.is(a.failed, undefined);
  t.true(find(nvFile, p) >= 0);
  a.inject('nv power loss after 0 writes');
  t.regex(a.failed?.message ?? '', /power failed: NV fault: power loss/);
  await t.throwsAsync(write(s, 1, 8, p), { message: /power failed|stopped|closed/ });
});

test('bad NV fault commands and topology entries are refused with what was expected', async (t) => {
  const { emu, a } = await boot('nvf-bad');
  t.teardown(() => emu.stop());
  t.throws(() => a.inject('nv error ENOSUCH'), { message: /errno.*ENOSPC.*got "ENOSUCH"/ });
  t.throws(() => a.inject('nv torn bytes x'), { message: /cannot parse fault "nv torn bytes x": expected "nv error/ });
  t.throws(() => a.inject('nv power loss'), { message: /cannot parse fault/ });
  t.throws(() => a.inject('nv explode'), { message: /cannot parse fault/ });
  t.throws(() => a.inject('nv error EIO count 0'), { message: /count: expected 1 to/ });
  const dir = tempDir('nvf-topology');
  const topo = (nv: object, media?: object[]) => parseTopology(smallTopology({ dir, media, nv } as SmallOptions), dir);
  t.throws(() => topo({ faults: [{ type: 'torn', bytes: -1 }] }), { message: /arrays\[0\]\.nv\.faults\[0\]\.bytes: expected 0 to/ });
  t.throws(() => topo({ faults: [{ type: 'melt' }] }), { message: /arrays\[0\]\.nv\.faults\[0\]\.type: expected one of "error", "torn", "powerLoss"/ });
  t.throws(() => topo({ faults: [{ type: 'error' }] }), { message: /arrays\[0\]\.nv\.faults\[0\]\.errno: expected an errno name/ });
  t.throws(() => topo({}, [{ name: 'nv', kind: 'ram', size: '1MiB' }]), { message: /media\[0\]\.name: "nv" names the NV memory/ });
  t.deepEqual(topo({ faults: [{ type: 'error', errno: 'ENOSPC', count: 3 }, { type: 'powerLoss', afterWrites: 7 }] }).arrays[0].nv.faults,
    [{ type: 'error', errno: 28, count: 3 }, { type: 'powerLoss', afterWrites: 7 }]);
});

test('NV faults from the topology apply from boot: the first NV write of the boot fails', async (t) => {
  const dir = tempDir('nvf-boot');
  const lines: string[] = [];
  const emu = await startSmall({ dir, mode: 'deterministic', nv: { faults: [{ type: 'error', errno: 'EIO', count: 1 }] } }, { log: (l) => lines.push(l) });
  t.teardown(() => emu.stop());
  await emu.settle();
  t.is(emu.array().nv.counters.errors, 1);
  t.true(lines.some((l) => /nv: NV write failed: EIO/.test(l)), lines.join('\n'));
});
