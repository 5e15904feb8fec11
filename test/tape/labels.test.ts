// Labelled tapes (ECMA-13, document 002: management information first) written through the
// firmware, read back and checked; the image is listed by Hercules' tapemap (an ordinary AWS tool);
// a kill -9 of the emulator in the middle of writing leaves every acknowledged record in the image.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { tempDir, pattern } from '../harness/env';
import { startLibrary, libraryDir, libraryTopology } from './env';
import { TapeLibrary, writeLabelledSet, readLabelledSet, vol1, label1, label2, labelDate } from '../../host/tape';
import { connect } from '../../host/connect';
import { startSanbox } from '../e2e/sanbox';
import { AwsImage } from '../../hal/tape/aws';

const TAPEMAP = ['/usr/bin/tapemap', '/usr/local/bin/tapemap'].find((p) => fs.existsSync(p));

test('labels are 80 ASCII bytes with the fields where ECMA-13 puts them', (t) => {
  const v = vol1('SB0001');
  t.is(v.length, 80);
  t.is(v.toString('ascii', 0, 10), 'VOL1SB0001');
  t.is(v[79], 0x34);
  const f = { name: 'db.dump', sequence: 2, serial: 'SB0001', created: new Date(Date.UTC(2026, 1, 1)), blockBytes: 65536, blocks: 17 };
  const h1 = label1('HDR', f);
  const e1 = label1('EOF', f);
  t.is(h1.toString('ascii', 0, 21), 'HDR1DB.DUMP          ');
  t.is(h1.toString('ascii', 21, 35), 'SB000100010002');
  t.is(h1.toString('ascii', 41, 47), labelDate(f.created));
  t.is(labelDate(f.created), '026032');
  t.is(h1.toString('ascii', 54, 60), '000000');
  t.is(e1.toString('ascii', 54, 60), '000017');
  t.is(label2('HDR', f).toString('ascii', 0, 15), 'HDR2U6553665536');
  t.throws(() => label1('HDR', { ...f, serial: 'TOOLONG' }), { message: /longer than 6/ });
});

test('a labelled file set round trips through the firmware, and tapemap lists the image', async (t) => {
  const dir = tempDir('tape-labels');
  const emu = await startLibrary({ dir });
  const a = pattern(200_000, 7);
  const b = pattern(65_536, 8);
  try {
    const lib = new TapeLibrary(emu.connect());
    const drive = await lib.assign('SB0002L5');
    await writeLabelledSet(drive, [{ name: 'alpha', data: a }, { name: 'beta', data: b }], { blockBytes: 32768 });
    const back = await readLabelledSet(drive);
    t.is(back.serial, 'SB0002');
    t.deepEqual(back.files.map((f) => [f.name, f.sequence, f.blocks]), [['ALPHA', 1, 7], ['BETA', 2, 2]]);
    t.true(back.files[0].data.equals(a));
    t.true(back.files[1].data.equals(b));
    await drive.release();
    t.true((await lib.elements()).find((e) => e.barcode === 'SB0002L5')!.address === 0x1001); // back in its slot
    // A tape with damaged labels: the reader says what it expected.
    const other = await lib.assign('SB0001L5');
    await other.writeRecord(Buffer.alloc(80, 0x41));
    await t.throwsAsync(readLabelledSet(other), { message: /expected a VOL1 label/ });
    await other.release();
  } finally { await emu.stop(); }
  const image = path.join(libraryDir(dir), 'SB0002L5.aws');
  if (!TAPEMAP) { t.log('tapemap (Debian package hercules) is not installed: the listing by an AWS tool is not checked'); return; }
  const out = execFileSync(TAPEMAP, [image], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  // Between tapemarks: VOL1 HDR1 HDR2 | alpha: 6 records of 32 KiB and one of 3392 bytes | EOF1 EOF2
  // | HDR1 HDR2 | beta: two 32 KiB records | EOF1 EOF2 | the second mark.
  t.deepEqual(out.trim().split('\n').filter((l) => /^File|^End/.test(l)), [
    'File 1: Blocks=3, block size min=80, max=80', 'File 2: Blocks=7, block size min=3392, max=32768',
    'File 3: Blocks=2, block size min=80, max=80', 'File 4: Blocks=2, block size min=80, max=80',
    'File 5: Blocks=2, block size min=32768, max=32768', 'File 6: Blocks=2, block size min=80, max=80',
    'File 7: Blocks=0, block size min=0, max=0', 'End of tape.',
  ], out);
  // hetmap (same package) decodes the labels themselves.
  const labels = execFileSync('hetmap', ['-a', image], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  t.regex(labels, /Volume Serial\s*: 'SB0002'/);
  t.deepEqual([...labels.matchAll(/Dataset ID\s*: '(\S+)\s*'/g)].map((m) => m[1]), ['ALPHA', 'ALPHA', 'BETA', 'BETA']);
  t.deepEqual([...labels.matchAll(/Block Count Low\s*: '(\d+)'/g)].map((m) => m[1]), ['000000', '000007', '000000', '000002']);
});

test('kill -9 while a host writes records: every acknowledged record is in the image, which tapemap still lists', async (t) => {
  const dir = tempDir('tape-kill');
  const topo = libraryTopology({ dir, mode: 'realtime', ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }], library: { timing: { loadMs: 1, unloadMs: 1, moveMs: 1, streamMBps: 2000 } } });
  const file = path.join(dir, 'topology.json');
  fs.writeFileSync(file, JSON.stringify(topo));
  const s = await startSanbox(file);
  const acked: number[] = [];
  try {
    const tr = await connect(s.targets.fe0);
    const lib = new TapeLibrary(tr);
    const drive = await lib.assign('SB0001L5');
    // Writes go on until the kill lands; each record says its number.
    let killed = false;
    const writer = (async () => {
      for (let i = 0; !killed && i < 100_000; i++) {
        const rec = pattern(32 * 1024, i);
        rec.writeUInt32BE(i, 0);
        await drive.writeRecord(rec);
        acked.push(i);
        if (i === 40) { killed = true; s.child.kill('SIGKILL'); }
      }
    })().catch(() => undefined);
    await writer;
    await s.exited;
    await tr.close().catch(() => undefined);
  } finally { if (s.child.exitCode === null) s.child.kill('SIGKILL'); }
  const image = path.join(libraryDir(dir), 'SB0001L5.aws');
  const img = await AwsImage.open(image);
  try {
    t.true(img.objects.length >= acked.length, `${img.objects.length} records in the image, ${acked.length} acknowledged`);
    for (const i of acked) {
      const b = await img.readRecord(i, 4);
      t.is(b.readUInt32BE(0), i);
    }
  } finally { img.close(); }
  if (!TAPEMAP) { t.log('tapemap (Debian package hercules) is not installed: the listing is not checked'); return; }
  const r = spawnSync(TAPEMAP, [image], { encoding: 'latin1' });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.notRegex(r.stdout + r.stderr, /error/i);
});
