// Flush and stop finish within a bound and name what they could not destage (issue 7, defect 4),
// through the real firmware: dirty data whose medium is gone from the topology or dead stays in NV,
// and Emulator.flush()/stop() say where it belongs instead of waiting for it for ever.
import test from 'ava';
import { describeControl } from '../../harness';
import { startSmall, tempDir, createVolume, write, read, pattern } from './env';

const both = [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }];

test('restarted without a medium: flush and stop report the stuck slots (volume, LBA range, medium) and keep them in NV', async (t) => {
  const dir = tempDir('flush-absent');
  const o = { dir, mode: 'deterministic' as const, cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } };
  const first = await startSmall({ ...o, media: both });
  let s = first.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'striped' }, 1);
  const data = pattern(4 * 65536, 3);
  await write(s, 1, 0, data); // chunks 0..3: 0 and 2 on d0, 1 and 3 on d1
  await first.stop('powerFail');

  const second = await startSmall({ ...o, media: [both[0]] }); // d1 is gone
  const [r] = await second.flush();
  t.is(r.dirtyLeft, 2, describeControl(r));
  t.deepEqual(r.stuck.map((x) => [x.volume, x.lba, x.blocks, x.medium, x.reason]), [
    [0, 128, 128, null, 'medium not in the topology'],
    [0, 384, 128, null, 'medium not in the topology'],
  ]);
  t.regex(describeControl(r), /2 dirty cache slot\(s\) could not be destaged; they stay in NV/);
  const [stopped] = await second.stop('graceful');
  t.is(stopped.dirtyLeft, 2);
  t.false(stopped.nvClean);

  // With d1 back the data is all there: it stayed in NV.
  const third = await startSmall({ ...o, media: both });
  t.teardown(() => third.stop());
  s = third.connect();
  t.true((await read(s, 1, 0, 512)).equals(data));
  const [after] = await third.flush();
  t.is(after.dirtyLeft, 0, describeControl(after));
});

test('a dead medium: flush reports its slots as "medium dead" and finishes', async (t) => {
  const dir = tempDir('flush-dead');
  const emu = await startSmall({ dir, mode: 'deterministic', cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } });
  t.teardown(() => emu.stop('powerFail'));
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'striped' }, 1);
  await write(s, 1, 0, pattern(2 * 65536, 4));
  emu.array().inject('d1 dead');
  const [r] = await emu.flush();
  t.is(r.dirtyLeft, 1);
  t.deepEqual(r.stuck.map((x) => [x.lba, x.medium, x.reason]), [[128, 'd1', 'medium dead']]);
});

test('a flush that makes no progress is an error naming what it waits for (virtual time)', async (t) => {
  const dir = tempDir('flush-stall');
  const emu = await startSmall({ dir, mode: 'deterministic', cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } });
  t.teardown(() => emu.stop('powerFail'));
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'striped' }, 1);
  await write(s, 1, 0, pattern(2 * 65536, 5));
  emu.array().inject('d1 slow 1000000'); // a write takes 100 s of virtual time
  const e = await t.throwsAsync(emu.flush());
  t.regex(e!.message, /array a0: flush made no progress for 60000 ms: .*medium d1/);
});
