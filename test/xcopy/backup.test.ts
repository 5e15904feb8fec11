// Server-free backup and restore through the real firmware: `backupVolume` writes an ECMA-13
// labelled set by one EXTENDED COPY (labels and the volume information as inline data, tapemarks,
// the blocks by segments 00h), which tapemap and hetmap list; `restoreVolume` brings it back by
// segments 01h, byte-identical.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { backupVolume, restoreVolume } from '../../host/backup';
import { libraryDir } from '../tape/env';
import { rig, volumeData, BLOCKS } from './env';

const TAPEMAP = ['/usr/bin/tapemap', '/usr/local/bin/tapemap'].find((p) => fs.existsSync(p));

test('backup of a volume to a labelled tape by EXTENDED COPY, listed by tapemap and hetmap, restored byte-identical', async (t) => {
  const r = await rig('xcopy-backup');
  try {
    const progress: number[] = [];
    const res = await backupVolume(r.c, r.lib, { volume: r.src, tape: 'SB0001L5', host: 'client101', mountPoint: '/data', pause: () => r.emu.advance(5), onProgress: (b) => progress.push(b) });
    t.is(res.bytes, BLOCKS * 512);
    t.false(res.split, 'a volume in no pair is copied as it is');
    t.is(progress[progress.length - 1], BLOCKS * 512, 'COPY STATUS counted every byte');
    const info = await restoreVolume(r.c, r.lib, { tape: 'SB0001L5', volume: r.spare });
    t.is(info.name, 'src');
    t.is(info.host, 'client101');
    t.is(info.blocks, BLOCKS);
    t.true((await volumeData(r.s, 3)).equals(r.ref), 'the restored volume is byte-identical');
  } finally { await r.emu.stop(); }
  if (!TAPEMAP) { t.log('tapemap (Debian package hercules) is not installed: the listing by an AWS tool is not checked'); return; }
  const image = path.join(libraryDir(r.dir), 'SB0001L5.aws');
  const out = execFileSync(TAPEMAP, [image], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  t.deepEqual(out.trim().split('\n').filter((l) => /^File|^End/.test(l)), [
    'File 1: Blocks=3, block size min=80, max=80', 'File 2: Blocks=1, block size min=512, max=512',
    'File 3: Blocks=2, block size min=80, max=80', 'File 4: Blocks=2, block size min=80, max=80',
    'File 5: Blocks=256, block size min=32768, max=32768', 'File 6: Blocks=2, block size min=80, max=80',
    'File 7: Blocks=0, block size min=0, max=0', 'End of tape.',
  ], out);
  const labels = execFileSync('hetmap', ['-a', image], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  t.regex(labels, /Volume Serial\s*: 'SB0001'/);
  t.deepEqual([...labels.matchAll(/Dataset ID\s*: '(\S+)\s*'/g)].map((m) => m[1]), ['VOLINFO', 'VOLINFO', 'SRC', 'SRC']);
  t.deepEqual([...labels.matchAll(/Block Count Low\s*: '(\d+)'/g)].map((m) => m[1]), ['000000', '000001', '000000', '000256']);
});
