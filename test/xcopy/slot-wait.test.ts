// The copy manager's wait for a cache slot has its own bound (issue 7: every wait has a bound and an
// error that names what it waited for), through the real firmware in virtual time: with every slot
// of a small cache dirty and both media stuck (a medium write takes 100 s), a block-to-block
// EXTENDED COPY into chunks not in the cache fails its segment after cache.slotWaitMs with COPY
// ABORTED, SYSTEM BUFFER FULL (0Ah/55h/01h), which RECEIVE COPY RESULTS reports. Before, the copy
// waited for the next destage (or allocation) however long it took: it ended GOOD after 100 s and
// more, and the test fails on its time.
import test from 'ava';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { CopyManager, naaOf } from '../../host/backup';
import { startSmall, tempDir, createVolume, write, read, pattern } from '../harness/env';

const SLOT_BLOCKS = 128;

test('a copy that finds no cache slot fails its segment at the slot-wait bound, COPY ABORTED 55h/01h, in RECEIVE COPY RESULTS', async (t) => {
  t.timeout(120_000); // last-resort guard (wall)
  const lines: string[] = [];
  const emu = await startSmall({ dir: tempDir('xcopy-slot-wait'), mode: 'deterministic', cache: { size: '1MiB', destageIntervalMs: 2, destageAgeMs: 5, slotWaitMs: 5000 } },
    { log: (l) => lines.push(l) });
  t.teardown(() => emu.stop('powerFail'));
  const s = emu.connect();
  const c = new ScsiClient(s);
  await createVolume(s, { name: 'a', blocks: 16 * SLOT_BLOCKS, blockSize: 512, media: [0] }, 1);
  await createVolume(s, { name: 'b', blocks: 16 * SLOT_BLOCKS, blockSize: 512, media: [1] }, 2);
  emu.array().inject('d0 slow 1000000'); // a medium write takes 100 s of virtual time
  emu.array().inject('d1 slow 1000000');
  for (let k = 0; k < 16; k++) await write(s, 1, k * SLOT_BLOCKS, pattern(65536, k)); // every slot dirty

  const cm = new CopyManager(s, 1);
  const list = {
    listId: 7,
    targets: [{ type: 'block' as const, naa: await naaOf(c, 1), blockBytes: 512 }, { type: 'block' as const, naa: await naaOf(c, 2), blockBytes: 512 }],
    segments: [{ type: 'block-to-block' as const, src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 2 * SLOT_BLOCKS }],
  };
  const before = emu.driver().now();
  const e = await t.throwsAsync(cm.copy(list), { instanceOf: scsi.ScsiError });
  const took = emu.driver().now() - before;
  t.true(took >= 5e9 && took < 6e9, `the copy ended after ${took / 1e9} s of virtual time; the bound is 5 s`);
  const sense = (e as scsi.ScsiError).sense!;
  t.deepEqual([sense.key, sense.asc, sense.ascq], [0x0a, 0x55, 0x01], 'COPY ABORTED, SYSTEM BUFFER FULL');

  t.is((await cm.status(7)).state, 'failed');
  const failed = await cm.failedSegment(7);
  t.deepEqual([failed?.sense?.key, failed?.sense?.asc, failed?.sense?.ascq], [0x0a, 0x55, 0x01], 'RECEIVE COPY RESULTS, FAILED SEGMENT DETAILS');
  t.is(emu.array().stats()[A.STAT_SLOT_WAIT_EXPIRED], 1);
  t.true(lines.some((l) => /xcopy: a copy waited the slot-wait bound/.test(l)), lines.join('\n'));
  // The source is untouched and still reads back from the cache.
  t.true((await read(s, 1, 0, SLOT_BLOCKS)).equals(pattern(65536, 0)));
});
