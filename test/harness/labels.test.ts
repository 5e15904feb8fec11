// Media that lose what the array wrote (issue 7, defect 6), through the real firmware: a RAM disk
// comes back blank after a restart, an image file is deleted or replaced. The array reads every
// medium's label at boot; the volumes on a lost one are NOT READY, MEDIUM FORMAT CORRUPTED, never
// silent zeros, until REINITIALIZE MEDIUM accepts the loss. Data the array still holds in NV is kept.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { startSmall, tempDir, createVolume, write, read, pattern, senseOf, run } from './env';

const ram = [{ name: 'd0', kind: 'ram', size: '64MiB' }];

test('a RAM medium is blank after a restart: its volume is NOT READY, MEDIUM FORMAT CORRUPTED until the loss is accepted; NV-held data survives it', async (t) => {
  const dir = tempDir('labels-ram');
  const o = { dir, mode: 'deterministic' as const, media: ram, cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } };
  const first = await startSmall(o);
  let s = first.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, 1);
  await write(s, 1, 0, pattern(65536, 1));
  await first.flush(); // on the RAM disk only
  const held = pattern(4096, 2);
  await write(s, 1, 256, held); // acknowledged, still dirty: in NV
  await first.stop('powerFail');

  const second = await startSmall(o);
  t.teardown(() => second.stop('powerFail'));
  s = second.connect();
  const client = new ScsiClient(s);
  t.is((await client.listMedia())[0].state, 'lost');
  for (const cmd of [read(s, 1, 0, 8), run(s, 1, scsi.testUnitReady()), write(s, 1, 0, pattern(512, 3))]) {
    const sense = await senseOf(cmd);
    t.deepEqual([sense.key, sense.asc, sense.ascq], [scsi.SenseKey.NOT_READY, 0x31, 0x00], sense.text);
  }
  const [r] = await second.flush();
  t.is(r.dirtyLeft, 1, 'the NV-held write is not destaged onto a medium that is not the array\'s');
  t.regex(r.stuck[0].reason, /medium lost/);
  // A medium that is not lost has nothing to accept.
  const bad = await senseOf(run(s, 0, scsi.reinitializeMedium(7)));
  t.deepEqual([bad.key, bad.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x84]);

  await client.reinitializeMedium(0);
  t.is((await client.listMedia())[0].state, 'ok');
  t.true((await read(s, 1, 0, 128)).equals(Buffer.alloc(65536)), 'the lost data reads as zeros, as accepted');
  t.true((await read(s, 1, 256, 8)).equals(held), 'what NV still held is kept');
  const [after] = await second.flush();
  t.is(after.dirtyLeft, 0);
  const again = await senseOf(run(s, 0, scsi.reinitializeMedium(0)));
  t.deepEqual([again.key, again.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x24], 'a medium that is fine is not reinitialized');
});

test('an image file deleted or replaced by another array\'s is lost too; the intact one stays ready', async (t) => {
  const dir = tempDir('labels-file');
  const media = [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }];
  const o = { dir, mode: 'deterministic' as const, media };
  const first = await startSmall(o);
  let s = first.connect();
  await createVolume(s, { name: 'v0', blocks: 8192, blockSize: 512, media: [0] }, 1);
  await createVolume(s, { name: 'v1', blocks: 8192, blockSize: 512, media: [1] }, 2);
  const data = pattern(65536, 4);
  await write(s, 1, 0, data);
  await write(s, 2, 0, data);
  await first.stop();

  // Another array's image in place of d0 (its own label, its own identity); d1 untouched.
  const other = tempDir('labels-other');
  const foreign = await startSmall({ dir: other, mode: 'deterministic', media, seed: 99 });
  await foreign.stop();
  fs.copyFileSync(path.join(other, 'a0', 'd0.img'), path.join(dir, 'a0', 'd0.img'));
  const second = await startSmall(o);
  s = second.connect();
  t.deepEqual((await new ScsiClient(s).listMedia()).map((m) => m.state), ['lost', 'ok']);
  t.is((await senseOf(read(s, 1, 0, 8))).asc, 0x31);
  t.true((await read(s, 2, 0, 128)).equals(data), 'the intact medium serves its volume');
  await second.stop();

  // d1's image deleted: a new blank file takes its place, and it is lost too.
  fs.rmSync(path.join(dir, 'a0', 'd1.img'));
  const third = await startSmall(o);
  t.teardown(() => third.stop());
  s = third.connect();
  t.deepEqual((await new ScsiClient(s).listMedia()).map((m) => m.state), ['lost', 'lost']);
  t.is((await senseOf(read(s, 2, 0, 8))).asc, 0x31);
});
