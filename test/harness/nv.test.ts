// The NV file failing under the firmware (issue 7, defect 2), through the real firmware: a WRITE
// whose NV persist failed is not acknowledged, the controller says why (log, stats), refuses writes
// and management changes until the file has been rewritten whole, and then takes writes again.
import test from 'ava';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { startSmall, tempDir, createVolume, write, read, pattern, senseOf, run } from './env';

const ENOSPC = 28;

test('NV writes failing (ENOSPC): WRITE is HARDWARE ERROR, logged and counted; writes refused until the file is rewritten whole', async (t) => {
  const dir = tempDir('nv-enospc');
  const lines: string[] = [];
  const o = { dir, mode: 'deterministic' as const, cache: { destageAgeMs: 60_000, destageIntervalMs: 1000 } };
  const emu = await startSmall(o, { log: (l) => lines.push(l) });
  const a = emu.array();
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, 1);
  const before = pattern(4096, 1);
  await write(s, 1, 0, before);

  a.nv.inject({ type: 'error', errno: ENOSPC });
  const failed = await senseOf(write(s, 1, 8, pattern(4096, 2)));
  t.deepEqual([failed.key, failed.asc, failed.ascq], [4, 0x0C, 0x00], failed.text); // HARDWARE ERROR, WRITE ERROR
  t.true(lines.some((l) => /nv: a write to the NV file failed .*\(28, /.test(l)), lines.join('\n'));
  t.true(a.stats()[A.STAT_NV_ERRORS] > 0);

  // Degraded: a further write and a management change are refused before anything changes.
  const refused = await senseOf(write(s, 1, 16, pattern(4096, 3)));
  t.deepEqual([refused.key, refused.asc], [4, 0x0C]);
  const mgmt = await senseOf(run(s, 0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64),
    { out: scsi.createVolumeParameters({ name: 'w', blocks: 64, blockSize: 512, placement: 'linear' }) }));
  t.deepEqual([mgmt.key, mgmt.asc, mgmt.ascq], [4, 0x44, 0x00], mgmt.text); // INTERNAL TARGET FAILURE
  t.true(a.stats()[A.STAT_NV_REFUSED] >= 3);
  // Reads go on.
  t.true((await read(s, 1, 0, 8)).equals(before));

  // The rewrite is retried while the file fails; once it takes writes the array accepts writes again.
  await emu.advance(3000);
  t.true((await senseOf(write(s, 1, 16, pattern(4096, 4)))).key === 4, 'still refused while the file fails');
  a.nv.heal();
  await emu.advance(5000);
  t.true(lines.some((l) => /nv: the NV file was rewritten whole/.test(l)), lines.join('\n'));
  const after = pattern(4096, 5);
  await write(s, 1, 24, after);

  // What was acknowledged survives a power loss; the refused writes were never acknowledged.
  await emu.stop('powerFail');
  const again = await startSmall(o);
  t.teardown(() => again.stop());
  const s2 = again.connect();
  t.true((await read(s2, 1, 0, 8)).equals(before));
  t.true((await read(s2, 1, 24, 8)).equals(after));
});

test('one NV write failing (count 1) fails the WRITE that depended on it, and only that one', async (t) => {
  const dir = tempDir('nv-once');
  const emu = await startSmall({ dir, mode: 'deterministic' });
  t.teardown(() => emu.stop());
  const a = emu.array();
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, 1);
  a.nv.inject({ type: 'error', errno: 5, count: 1 });
  const sense = await senseOf(write(s, 1, 0, pattern(4096, 1)));
  t.is(sense.key, 4);
  t.is(a.stats()[A.STAT_NV_ERRORS], 1);
  await emu.advance(2000); // the rewrite lands: write-back again
  const data = pattern(4096, 2);
  await write(s, 1, 0, data);
  t.true((await read(s, 1, 0, 8)).equals(data));
});
