// Server-free backup and restore through the real firmware: `backupVolume` writes an ECMA-13
// labelled set by one EXTENDED COPY (labels and the volume information as inline data, tapemarks,
// the blocks by segments 00h), which tapemap and hetmap list; `restoreVolume` brings it back by
// segments 01h, byte-identical. Over framed TCP, a RECEIVE COPY RESULTS sent right behind its
// EXTENDED COPY overtakes the copy's parameter list (that waits for XFER_RDY): the firmware holds
// it until the list is there. A poll that reaches the array before its copy does at all is
// refused, and backupVolume polls again (bounded).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { backupVolume, restoreVolume, CopyManager, naaOf } from '../../host/backup';
import { ScsiClient } from '../../host/client';
import { TapeLibrary } from '../../host/tape';
import { connect } from '../../host/connect';
import * as scsi from '../../lib/scsi';
import type { CommandTransport, ScsiCommand, ScsiResult } from '../../lib/transport';
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

test('over framed TCP (two channel IOPs): COPY STATUS sent right behind its EXTENDED COPY, which still waits for XFER_RDY, waits for the list instead of denying it; backup and restore over the session', async (t) => {
  const r = await rig('xcopy-tcp', { tcp: true });
  const tr = await connect(r.emu.array().targets.find((x) => x.port === 'fe1')!.target);
  try {
    const c = new ScsiClient(tr);
    const cm = new CopyManager(tr, 1);
    const list = { listId: 4, targets: [{ type: 'block' as const, naa: await naaOf(c, 1), blockBytes: 512 }, { type: 'block' as const, naa: await naaOf(c, 3), blockBytes: 512 }],
      segments: [{ type: 'block-to-block' as const, src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 2048 }] };
    const copying = cm.copy(list);
    const first = await cm.status(4).catch((e: scsi.ScsiError) => e); // its CMD frame follows the copy's; the list's data-out needs a round trip
    t.false(first instanceof Error, `the first COPY STATUS knows list 4: ${first instanceof Error ? first.message : ''}`);
    await copying;
    if (!(first instanceof Error) && first.state === 'in progress') t.is((await cm.status(4)).state, 'good');
    t.true((await volumeData(tr, 3, 2048)).equals(r.ref.subarray(0, 2048 * 512)));
    // sanctl's flow polls right behind its copy too, over the same session.
    const tur = async (): Promise<void> => { await tr.submit({ lun: 0, cdb: scsi.testUnitReady() }); }; // a round trip between polls
    const res = await backupVolume(c, new TapeLibrary(tr), { volume: r.src, tape: 'SB0001L5', pause: tur });
    t.is(res.bytes, BLOCKS * 512);
    await restoreVolume(c, new TapeLibrary(tr), { tape: 'SB0001L5', volume: r.tgt });
    t.true((await volumeData(tr, 2)).equals(r.ref), 'restored over TCP, byte-identical');
  } finally { await tr.close(); await r.emu.stop(); }
});

/**
 * A transport that sends the EXTENDED COPY only once the first RECEIVE COPY RESULTS sent after it
 * has its answer: the status poll overtakes its copy, as on a network that carries commands in
 * parallel (the array never saw the copy when it answered the poll). `first` is that answer.
 */
function pollOvertakesCopy(inner: CommandTransport): CommandTransport & { first?: ScsiResult } {
  let answered!: () => void;
  const polled = new Promise<void>((r) => { answered = r; });
  const t: CommandTransport & { first?: ScsiResult } = {
    queueDepth: inner.queueDepth, target: inner.target, close: () => inner.close(),
    async submit(c: ScsiCommand): Promise<ScsiResult> {
      if (c.cdb[0] === 0x83 && t.first === undefined) { await polled; return inner.submit(c); }
      const r = await inner.submit(c);
      if (c.cdb[0] === 0x84 && c.cdb[1] === 0x00 && t.first === undefined) { t.first = r; answered(); }
      return r;
    },
  };
  return t;
}

test('backupVolume: a COPY STATUS that overtakes its EXTENDED COPY (refused: INVALID FIELD IN CDB, byte 2) is polled again, bounded, and the backup completes', async (t) => {
  const r = await rig('xcopy-overtake');
  try {
    const tr = pollOvertakesCopy(r.s);
    const res = await backupVolume(new ScsiClient(tr), r.lib, { volume: r.src, tape: 'SB0001L5', pause: () => r.emu.advance(5) });
    t.is(tr.first?.status, 2, 'the first poll reached the array before its copy');
    const sense = scsi.decodeSense(tr.first!.sense);
    t.deepEqual([sense.key, sense.asc, sense.field?.inCdb, sense.field?.byte], [scsi.SenseKey.ILLEGAL_REQUEST, 0x24, true, 2], 'no copy of the nexus held list 1 yet');
    t.is(res.bytes, BLOCKS * 512);
    await restoreVolume(r.c, r.lib, { tape: 'SB0001L5', volume: r.spare });
    t.true((await volumeData(r.s, 3)).equals(r.ref), 'the copy that came late wrote the whole volume');
  } finally { await r.emu.stop(); }
});
