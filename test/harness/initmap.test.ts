// The init map (docs/hal.md, "Chunks that were never written"; firmware/initmap.ts) when it moves or
// comes from an older image: a chunk a volume wrote still reads back, and a chunk a volume created
// on a deleted one's extents never wrote still reads zeros, not the deleted volume's bytes.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import type { Emulator } from '../../harness';
import { describeControl } from '../../harness/array';
import { ScsiClient } from '../../host/client';
import * as scsi from '../../lib/scsi';
import { toVersion } from './nvimage';
import { startSmall, tempDir, createVolume, write, read, pattern, run, senseOf, type SmallOptions } from './env';

const d = (name: string) => ({ name, kind: 'file', size: '64MiB' });
const base = (dir: string): SmallOptions => ({ dir, mode: 'deterministic', cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } });
const spec = { blocks: 1024, blockSize: 512 as const, placement: 'linear' as const };

/**
 * Volume 0 "a" written and deleted; volume 1 "b" written; volume 0 "c" created on a's chunks and
 * written in its chunk 1 only; all on the medium; a graceful stop. Returns what b and c hold.
 */
async function setUp(label: string, first: Partial<SmallOptions> = {}): Promise<{ dir: string; b: Buffer; c1: Buffer }> {
  const dir = tempDir(label);
  const emu = await startSmall({ ...base(dir), ...first });
  const s = emu.connect();
  await createVolume(s, { name: 'a', ...spec }, 1);
  await createVolume(s, { name: 'b', ...spec }, 2);
  await write(s, 1, 0, pattern(65536, 1)); // a's chunks 0 and 1
  const b = pattern(4096, 2);
  await write(s, 2, 0, b);
  await emu.flush();
  await run(s, 0, scsi.deleteVolume(0, true));
  await createVolume(s, { name: 'c', ...spec }, 1);
  const c1 = pattern(4096, 3);
  await write(s, 1, 128, c1); // c's chunk 1 (a's chunk 1 before)
  await emu.flush();
  await emu.stop('graceful');
  return { dir, b, c1 };
}

async function check(t: ExecutionContext, emu: Emulator, b: Buffer, c1: Buffer, when: string): Promise<void> {
  const s = emu.connect();
  t.true((await read(s, 2, 0, 8)).equals(b), `${when}: b's chunk 0 reads back`);
  t.true((await read(s, 1, 128, 8)).equals(c1), `${when}: c's chunk 1 reads back`);
  t.true((await read(s, 1, 0, 8)).equals(Buffer.alloc(4096)), `${when}: c's chunk 0, never written, reads zeros, not a's bytes`);
}

const cache = (size: string) => ({ cache: { size, destageAgeMs: 600_000, destageIntervalMs: 1000 } });
const changes: Array<[string, Partial<SmallOptions>, Partial<SmallOptions>]> = [
  // The map grows; the cache tables after it move.
  ['a medium added at the end', {}, { media: [d('d0'), d('d1'), d('d2')] }],
  // Also: a cache resize after a graceful stop is accepted (it was refused as "dirty cache data for
  // another cache size": the check read every descriptor copy, and a slot's older copy still said dirty).
  ['a larger cache', {}, cache('16MiB')],
  // NV version 4 had the map last: a shrink cut it off the file, and boot rebuilt it from the
  // volume table, every chunk a volume owns counted as written: c's chunk 0 read a's bytes.
  ['a smaller cache', cache('16MiB'), cache('4MiB')],
];
for (const [what, first, change] of changes) {
  test(`the init map keeps what it said with ${what}: written chunks read back, never-written ones read zeros, also after a power cut`, async (t) => {
    const { dir, b, c1 } = await setUp(`init-move-${what.length}`, first);
    const o = { ...base(dir), ...change };
    const lines: string[] = [];
    const moved = await startSmall(o, { log: (l) => lines.push(l) });
    t.false(lines.some((l) => /rebuilt from the volume table/.test(l)), lines.join('\n'));
    await check(t, moved, b, c1, 'after the change');
    await moved.stop('powerFail'); // the moved map was persisted at its new place
    const again = await startSmall(o);
    t.teardown(() => again.stop('powerFail'));
    await check(t, again, b, c1, 'after a power cut');
  });
}

const lacks = (version: 5 | 6 | 7 | 8) => version === 8 ? 'remote pair records of 256 bytes and remote difference bitmaps' : version === 7 ? 'remote pair table' : version === 6 ? 'thin map and remote pair table' : 'reservation table, thin map and remote pair table';
for (const version of [3, 4, 5, 6, 7, 8] as const) {
test(`an NV image of version ${version} (${version >= 5 ? `no ${lacks(version as 5 | 6 | 7 | 8)}` : `the init map last${version === 3 ? ', one copy' : ''}`}) is upgraded at boot and keeps what its map said`, async (t) => {
  const { dir, b, c1 } = await setUp(`init-v${version}`);
  toVersion(path.join(dir, 'a0', 'nvram.bin'), version);
  const lines: string[] = [];
  const up = await startSmall(base(dir), { log: (l) => lines.push(l) });
  t.true(lines.some((l) => new RegExp(`nv: image upgraded \\(from version, to version\\) \\(${version}, 9\\)`).test(l)), lines.join('\n'));
  t.false(lines.some((l) => /rebuilt from the volume table/.test(l)), lines.join('\n'));
  await check(t, up, b, c1, 'after the upgrade');
  await up.stop('powerFail');
  const again = await startSmall(base(dir));
  t.teardown(() => again.stop('powerFail'));
  await check(t, again, b, c1, 'after a power cut');
});
}

for (const version of [5, 6, 7, 8] as const) {
test(`a version ${version} image with dirty cache data is upgraded: its cache tables move past the new ${lacks(version)} with the dirty slot, which reads back; the tables start empty`, async (t) => {
  const dir = tempDir(`init-v${version}-dirty`);
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'a', ...spec }, 1);
  const dirty = pattern(4096, 7);
  await write(s, 1, 8, dirty); // dirty in NV: the destage age is ten minutes
  await emu.stop('powerFail');
  toVersion(path.join(dir, 'a0', 'nvram.bin'), version);
  const lines: string[] = [];
  const up = await startSmall(base(dir), { log: (l) => lines.push(l) });
  t.teardown(() => up.stop('powerFail'));
  t.true(lines.some((l) => new RegExp(`nv: image upgraded \\(from version, to version\\) \\(${version}, 9\\)`).test(l)), lines.join('\n'));
  t.true(lines.some((l) => /nv: dirty cache slots recovered/.test(l)), lines.join('\n'));
  const u = up.connect();
  t.true((await read(u, 1, 8, 8)).equals(dirty), 'the dirty slot moved with the cache tables');
  const keys = await run(u, 1, Buffer.from([0x5e, 0x00, 0, 0, 0, 0, 0, 0x10, 0x00, 0]), { inLength: 4096 }); // READ KEYS
  t.deepEqual([keys.status, Buffer.from(keys.data).readUInt32BE(4)], [0, 0], 'no registration: the new table is empty');
  // The thin map starts empty: a thin volume made now takes no chunk and reads zeros.
  await createVolume(u, { name: 'th', blocks: 2048, blockSize: 512, placement: 'thin' }, 2);
  t.true((await read(u, 2, 0, 8)).equals(Buffer.alloc(4096)));
  t.is((await new ScsiClient(u).listVolumes()).find((v) => v.name === 'th')!.allocatedBytes, 0);
  // The remote pair table starts empty too: the old init map or cache bytes in its place are no pair.
  t.deepEqual(await new ScsiClient(u).remoteStatus(), []);
});
}

test('a version 4 image with dirty cache data is not upgraded: the boot fails ERR_NV_GEOMETRY and keeps every byte of the file', async (t) => {
  const dir = tempDir('init-v4-dirty');
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'a', ...spec }, 1);
  await write(s, 1, 0, pattern(4096, 1)); // dirty in NV: the destage age is ten minutes
  await emu.stop('powerFail');
  const file = path.join(dir, 'a0', 'nvram.bin');
  toVersion(file, 4);
  const before = fs.readFileSync(file);
  await t.throwsAsync(startSmall(base(dir)), { message: /dirty cache data this boot cannot carry over: .*version 3 or 4 image/ });
  // The harness sizes the file to the region before the boot (zeros after what it held).
  const after = fs.readFileSync(file);
  t.true(after.subarray(0, before.length).equals(before) && after.subarray(before.length).every((x) => x === 0), 'every byte of the NV file kept');
});

// A chunk's first destage ends in its init map mark (firmware/disk.ts, flushRecords, markDone). When
// the NV file cannot take the mark (its write failed, or the file is degraded), the medium took the
// chunk: SYNCHRONIZE CACHE (and FUA, the same flush) answered MEDIUM ERROR, WRITE ERROR and the flush
// report said "write error" on a healthy medium (simulator seed 20251128). They name the NV file.
const EIO = 5;
const key = (x: scsi.Sense) => [x.key, x.asc, x.ascq];

/** A volume whose chunk 1, never written, holds an acknowledged write in the cache: its first destage marks it. */
async function firstWrite(t: ExecutionContext, label: string, seed: number) {
  const dir = tempDir(label);
  const emu = await startSmall(base(dir));
  t.teardown(() => emu.stop('powerFail'));
  const s = emu.connect();
  await createVolume(s, { name: 'v', ...spec }, 1);
  const acked = pattern(4096, seed);
  await write(s, 1, 128, acked);
  return { dir, emu, s, acked };
}

test('a first destage whose init map mark fails in NV: SYNCHRONIZE CACHE answers HARDWARE ERROR, not MEDIUM ERROR; the slot is marked and clean once the file is rewritten', async (t) => {
  const { dir, emu, s, acked } = await firstWrite(t, 'init-mark-verdict', 11);
  const a = emu.array();
  a.nv.inject({ type: 'error', errno: EIO, count: 1 }); // the next NV write: the mark, after the medium flush
  const sense = await senseOf(run(s, 1, scsi.synchronizeCache10()));
  t.deepEqual(key(sense), [4, 0x0C, 0x00], `HARDWARE ERROR, WRITE ERROR, not a medium error: ${sense.text}`);
  t.is(a.stats()[A.STAT_INIT_MARK_FAILURES], 1);
  t.true(a.stats()[A.STAT_DESTAGE_NV_HELD] >= 1);
  // The disk IOP rewrites the NV file (1 s back-off); the flush tries the slot again: written
  // whole, marked, clean. The verdict went with the try.
  const [done] = await emu.flush();
  t.is(done.dirtyLeft, 0, describeControl(done));
  t.is(done.nvErrno, null);
  await run(s, 1, scsi.synchronizeCache10());
  t.is(a.stats()[A.STAT_INIT_MARK_FAILURES], 1, 'the second mark did not fail');
  t.true((await read(s, 1, 128, 8)).equals(acked));
});

test('while the NV file is degraded a first destage is not even written: SYNCHRONIZE CACHE answers HARDWARE ERROR, the flush report names NV, and both go once the file is whole', async (t) => {
  const { dir, emu, s, acked } = await firstWrite(t, 'init-degraded-verdict', 12);
  const a = emu.array();
  a.nv.inject({ type: 'error', errno: EIO }); // every NV write fails until healed
  t.is((await senseOf(write(s, 1, 512, pattern(4096, 13)))).key, 4, 'a WRITE is refused: the file is degraded');
  const destages = a.stats()[A.STAT_DESTAGES];
  const sense = await senseOf(run(s, 1, scsi.synchronizeCache10()));
  t.deepEqual(key(sense), [4, 0x0C, 0x00], sense.text);
  t.is(a.stats()[A.STAT_DESTAGES], destages, 'the chunk was not written: its mark could not follow');
  t.is(a.stats()[A.STAT_INIT_MARK_FAILURES], 0, 'no mark was tried');
  t.true(a.stats()[A.STAT_DESTAGE_NV_HELD] >= 1);
  const [r] = await emu.flush();
  // Chunk 1's slot, and the refused WRITE's (its data is in the cache, never acknowledged): both never written.
  t.deepEqual(r.stuck.map((x) => [x.lba, x.medium, x.reason.slice(0, 16)]), [[128, 'd0', 'NV file failing:'], [512, 'd0', 'NV file failing:']], describeControl(r));
  t.false(/write error/.test(describeControl(r)), describeControl(r));
  t.not(r.nvErrno, null);

  a.nv.heal();
  await emu.advance(5000);
  await run(s, 1, scsi.synchronizeCache10());
  const [done] = await emu.flush();
  t.is(done.dirtyLeft, 0, describeControl(done));
  t.is(done.nvErrno, null);
  await emu.stop('powerFail');
  const again = await startSmall(base(dir));
  t.teardown(() => again.stop('powerFail'));
  t.true((await read(again.connect(), 1, 128, 8)).equals(acked), 'marked written: read from the medium after a power cut');
});

// Two first destages of chunks of one init map record, covered by one medium flush, queued their
// marks back to back: the first wrote the record's older copy, the second the other one, the last
// whole copy. The first failing (nothing written) and the second torn by a power cut left the
// blank copy current: chunk 0, marked before and clean, read zeros after the restart. One mark
// is in flight per medium now; the second waits for the first's completion.
test('two marks of one init map record are never in flight together: the first failing and the next torn by a power cut keep what earlier marks said', async (t) => {
  const { dir, emu, s } = await firstWrite(t, 'init-two-marks', 14); // chunk 1
  const c0 = pattern(4096, 15);
  await write(s, 1, 0, c0); // chunk 0
  t.is((await emu.flush())[0].dirtyLeft, 0, 'chunks 0 and 1 marked written, clean');
  await write(s, 1, 256, pattern(4096, 16)); // chunks 2 and 3, never written: one medium flush covers both
  await write(s, 1, 384, pattern(4096, 17));
  const a = emu.array();
  a.nv.inject({ type: 'error', errno: EIO, count: 1 }); // the next NV write fails: chunk 2's mark
  a.nv.inject({ type: 'torn', bytes: 10, afterWrites: 0 }); // the one after is torn, then the power fails
  await t.throwsAsync(emu.flush(), { message: /power failed/ });
  t.regex(a.failed?.message ?? '', /torn write \(10 of /);
  await emu.stop('powerFail');
  const again = await startSmall(base(dir));
  t.teardown(() => again.stop('powerFail'));
  const s2 = again.connect();
  t.true((await read(s2, 1, 0, 8)).equals(c0), 'chunk 0, marked before and clean, reads back, not zeros');
  t.is((await again.flush())[0].dirtyLeft, 0, 'the rest is destaged and marked');
  t.true((await read(s2, 1, 0, 8)).equals(c0));
});

// DELETE VOLUME clears its extents' bits in their init map records (initClear) on a channel IOP,
// while the disk IOP marks chunks of the same records. A clear queued while a mark of the same
// record was in flight wrote the record's other copy: the mark failing (nothing written) and the
// clear torn by a power cut left neither copy with what the record held before, and a chunk marked
// earlier, whose slot was clean, read zeros after the restart. The clear now waits for its
// medium's init map turn, as a mark does (one init map write in flight per medium), and is not
// made once the mark's failure has made the NV file degraded (the DELETE is refused).
test('a DELETE VOLUME clearing an init map record never has its write in flight with a mark of the same record: the mark failing and the clear torn keep what earlier marks said', async (t) => {
  const dir = tempDir('init-clear-mark');
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'a', ...spec }, 1); // chunks 1-8 of d0
  const vb = await createVolume(s, { name: 'b', ...spec }, 2); // chunks 9-16: the same record
  await write(s, 2, 0, pattern(4096, 21)); // b's chunk 0: marked
  t.is((await emu.flush())[0].dirtyLeft, 0);
  const a0 = pattern(4096, 22);
  await write(s, 1, 0, a0); // a's chunk 0: marked in the record's other copy, and clean
  t.is((await emu.flush())[0].dirtyLeft, 0);
  await write(s, 2, 0, pattern(4096, 23)); // b's chunk 0 dirty again (not a first destage: no mark)
  await write(s, 1, 128, pattern(4096, 24)); // a's chunk 1, never written: its destage ends in a mark
  const a = emu.array();
  // The flush's two medium writes are held until the DELETE is in: it waits for b's slot, which the
  // medium flush covering both writes releases in the round that queues a's mark.
  const held: Array<() => void> = [];
  let begun!: () => void;
  const writing = new Promise<void>((r) => { begun = r; });
  for (const m of a.media) m.gate = (resume) => { held.push(resume); if (held.length === 2) begun(); };
  const flushed = emu.flush();
  flushed.catch(() => undefined);
  await writing;
  const del = run(s, 0, scsi.deleteVolume(vb, true));
  del.catch(() => undefined);
  a.nv.inject({ type: 'error', errno: EIO, count: 2 }); // the next two NV writes: b's clean record and a's mark
  a.nv.inject({ type: 'torn', bytes: 10, afterWrites: 3 }); // after the DELETE's entry, LUN map and reservations: its clear
  for (const m of a.media) m.gate = (resume) => resume();
  for (const r of held.splice(0)) r();
  // The mark fails; the DELETE, which waited for the turn, finds the NV file degraded and is refused
  // (before the fix its clear was written, torn: "torn write (10 of 72 bytes landed)", an init record).
  const outcome = await senseOf(del).catch((e: Error) => e);
  await emu.advance(10_000); // the NV file's rewrite is torn: the power fails
  t.regex(a.failed?.message ?? '', /torn write/);
  await emu.stop('powerFail');
  const again = await startSmall(base(dir));
  t.teardown(() => again.stop('powerFail'));
  const s2 = again.connect();
  const got = await read(s2, 1, 0, 8);
  t.true(got.equals(a0), `a's chunk 0, marked before and clean, reads back, not ${got.equals(Buffer.alloc(4096)) ? 'zeros' : 'other bytes'}`);
  t.deepEqual(outcome instanceof Error ? outcome.message : key(outcome), [4, 0x44, 0x00], 'the DELETE is refused: HARDWARE ERROR, INTERNAL TARGET FAILURE');
  t.is((await again.flush())[0].dirtyLeft, 0, 'the rest is destaged and marked');
  t.true((await read(s2, 1, 0, 8)).equals(a0));
});

// Simulator seed 6025 (a restart with a smaller cache, dirty data in NV): the harness cut the NV
// file to the smaller region before the firmware refused the boot (ERR_NV_GEOMETRY), so the boot
// with the old size, which the refusal asks for, found the slot data at the file's end gone and
// dropped those sectors as torn: the acknowledged writes answered MEDIUM ERROR. The file is cut
// only once the firmware took the image now (hal/nv.ts, trim).
test('a boot with a smaller cache refused for dirty data keeps the NV file whole: the old size boots and every acknowledged write reads back', async (t) => {
  const dir = tempDir('init-shrink-refused');
  const emu = await startSmall({ ...base(dir), ...cache('16MiB') });
  const s = emu.connect();
  await createVolume(s, { name: 'a', blocks: 16384, blockSize: 512, placement: 'linear' }, 1);
  const data = pattern(8 << 20, 31);
  for (let at = 0; at < data.length; at += 1 << 20) await write(s, 1, at / 512, data.subarray(at, at + (1 << 20)));
  await emu.stop('powerFail'); // 128 dirty slots in NV: the destage age is ten minutes
  await t.throwsAsync(startSmall({ ...base(dir), ...cache('4MiB') }), { message: /dirty cache data this boot cannot carry over/ });
  const lines: string[] = [];
  const again = await startSmall({ ...base(dir), ...cache('16MiB') }, { log: (l) => lines.push(l) });
  t.teardown(() => again.stop('powerFail'));
  t.false(lines.some((l) => /failed its CRC were dropped/.test(l)), lines.join('\n'));
  t.true((await read(again.connect(), 1, 0, 16384)).equals(data), 'every acknowledged write reads back');
});
