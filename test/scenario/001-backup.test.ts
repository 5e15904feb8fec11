// Document 001's four backup embodiments through the real firmware (deterministic mode, virtual
// time): the client server's I/O, the pair split, the backup server's EXTENDED COPY to a tape drive
// of the library, the copy manager on the disk IOP. Each test names the FIG. and steps it checks;
// what reaches the tape is restored and compared with a reference: the source as it was at the
// split, although the client server writes the backup range again right after the split.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import {
  backupList, backupVolume, restoreVolume, naaOf, CopyStatus, PolicyName, RECORD_BYTES,
} from '../../host/backup';
import { write, pattern } from '../harness/env';
import { rig, volumeData, Rig, BLOCKS, TRACK } from '../xcopy/env';
import { TapeDrive } from '../../host/tape';
import type { DeterministicDriver } from '../../harness/driver';

const SECTORS_PER_TRACK = TRACK / 512;
/** The backup range: the last 16 tracks (1 MiB), the ones the pair copy's cursor reaches last. */
const RANGE = { lba: 112 * SECTORS_PER_TRACK, blocks: 16 * SECTORS_PER_TRACK };
/** Inline bytes the list writes before the volume's blocks: VOL1, HDR1, HDR2, the volume information, EOF1, EOF2, HDR1, HDR2. */
const LEAD_BYTES = 7 * 80 + 512;

interface Sample { copy: CopyStatus; pair: scsi.PairStatus }
/** A copy is sampled after each event of the array, at most this many times. */
const SAMPLES = 40000;

async function until(r: Rig, ok: (p: scsi.PairStatus) => boolean, what: string): Promise<scsi.PairStatus> {
  for (let i = 0; i < 20000; i++) {
    const p = await r.c.pairOf(r.src);
    if (ok(p)) return p;
    await r.emu.advance(2);
  }
  throw new Error(`the pair never reached ${what} in 40 s of virtual time`);
}

/**
 * A duplex pair whose source the client server then rewrites whole (pattern 2): the returned image
 * is the source as the split will see it. Not split yet. The cache size decides how long the update
 * copy after the split takes in virtual time: with 16 MiB the source is all in cache and the copy
 * runs cache to cache at once; with 4 MiB it stages from the disks (8 ms seeks), so reflecting the
 * whole difference takes far longer than the backup of the range, as in 001's FIG. 4 (embodiments 1
 * and 2 show the backup against that); 12 MiB keeps the range's tracks pending past the end of a
 * backup that does not wait (embodiment 3).
 */
async function duplexWithDifference(label: string, cache = '16MiB'): Promise<Rig & { image: Buffer; drive: TapeDrive }> {
  const r = await rig(label, { cache, disks: true });
  await r.c.pairCreate(r.src, r.tgt);
  await until(r, (p) => p.state === 'duplex' && p.pendingTracks === 0, 'duplex');
  // The backup server's drive is assigned first (the robot and the load take seconds, in which the
  // pair copy would catch up with anything written before).
  const drive = await r.lib.assign('SB0001L5');
  const image = pattern(BLOCKS * 512, 2);
  for (let off = 0; off < image.length; off += 1 << 20) await write(r.s, 1, off / 512, image.subarray(off, off + (1 << 20)));
  return { ...r, image, drive };
}

/** After the split the client server resumes its I/O: it writes the backup range again (pattern 3). */
function clientWritesRange(r: Rig): Promise<unknown> {
  return write(r.s, 1, RANGE.lba, pattern(RANGE.blocks * 512, 3));
}

async function listFor(r: Rig, o: { listId: number; policy?: PolicyName; split?: boolean; immed?: boolean; source: number }) {
  const driveLun = 257;
  return backupList({
    source: { lun: o.source, naa: await naaOf(r.c, o.source), blocks: BLOCKS, blockSize: 512 },
    drive: { naa: await naaOf(r.c, driveLun), barcode: 'SB0001L5' },
    info: { name: 'src', host: 'client101', mountPoint: '/data', created: new Date(0), blocks: BLOCKS, blockSize: 512 },
    listId: o.listId, range: RANGE,
    pair: o.policy ? { split: o.split ?? false, immed: true, policy: o.policy } : undefined,
  });
}

/**
 * Runs the copy with IMMED (the status comes at once, so the test can look at the array between
 * steps of virtual time while the copy manager works), sampling COPY STATUS and PAIR STATUS after
 * each event of the array until COPY STATUS says it ended; then the drive goes back.
 */
async function runSampled(r: Rig & { drive: TapeDrive }, list: Awaited<ReturnType<typeof listFor>>, during?: () => Promise<unknown>): Promise<Sample[]> {
  const samples: Sample[] = [];
  try {
    await r.cm.copy(list);
    // The client server's writes start once the range's data moves: a host command outstanding lets
    // the deterministic driver run the array to its next event, which would hide the steps between.
    let extra: Promise<unknown> | undefined;
    for (let i = 0; i < SAMPLES; i++) {
      const s = { copy: await r.cm.status(list.listId), pair: await r.c.pairOf(r.src) };
      samples.push(s);
      if (s.copy.state !== 'in progress') break;
      if (!extra && s.copy.bytes > LEAD_BYTES) extra = during?.();
      // Then on to the array's next event (a medium's or the drive's completion, a timer), and no
      // further: the next sample sees what it changed.
      if (!(await (r.emu.driver() as DeterministicDriver).nextEvent())) throw new Error('the copy is in progress but nothing in the array is due');
    }
    extra ??= during?.();
    const last = samples[samples.length - 1].copy;
    if (last.state !== 'good') throw new Error(`the copy ended ${last.state} at segment ${last.segments}: ${JSON.stringify(await r.cm.failedSegment(list.listId))}`);
    await extra;
  } finally { await r.drive.release(); }
  return samples;
}

/** The range as the tape holds it: restored into the spare volume (LUN 3), at the range's own LBAs, and read back. */
async function tapeRange(r: Rig): Promise<Buffer> {
  await restoreVolume(r.c, r.lib, { tape: 'SB0001L5', volume: r.spare });
  return rangeOf(await volumeData(r.s, 3));
}

function rangeOf(b: Buffer): Buffer { return b.subarray(RANGE.lba * 512, (RANGE.lba + RANGE.blocks) * 512); }

test('001 1st embodiment, FIG. 4: after the split (steps 2-3) the backup (5) has the range\'s differential data copied first with priority (6) and starts without waiting for the whole split; the tape holds the split image (7-8); the update copy then goes on to split', async (t) => {
  const r = await duplexWithDifference('emb1', '4MiB');
  try {
    await r.c.pairSplit(r.src); // steps 2-3: answered at once
    const split = await r.c.pairOf(r.src);
    t.is(split.sourceState, 'split', 'step 2: pair state information (source) 516 is "pair split"');
    t.is(split.targetState, 'split pending', 'step 3: the target 517 stays "split pending"');
    t.true(split.pendingTracks > 16, `the difference at the split is more than the range (${split.pendingTracks} tracks)`);
    const samples = await runSampled(r, await listFor(r, { listId: 1, policy: 'priority', source: 2 }), () => clientWritesRange(r));
    const first = samples.find((s) => s.copy.bytes > LEAD_BYTES + 1024);
    t.truthy(first, 'the copy reported its data moving');
    t.is(first!.pair.state, 'split pending', 'steps 5-7: the backup of the range started while the pair was still split pending');
    t.true(first!.pair.pendingTracks > 0, `the whole difference was not reflected yet (${first!.pair.pendingTracks} tracks pending)`);
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'steps 7-8: the tape holds the range as it was at the split');
    await until(r, (p) => p.state === 'split', 'split (508 copies until the volumes agree)');
    const target = await volumeData(r.s, 2);
    t.true(target.equals(r.image), 'after the backup the update copy made the target the split image');
  } finally { await r.emu.stop(); }
});

test('001 2nd embodiment, FIGs 5-6: the copy manager makes the backup wait until the whole difference is reflected (the pair split), then backs the range up', async (t) => {
  const r = await duplexWithDifference('emb2', '4MiB');
  try {
    await r.c.pairSplit(r.src);
    t.is((await r.c.pairOf(r.src)).targetState, 'split pending');
    const samples = await runSampled(r, await listFor(r, { listId: 1, policy: 'wait', source: 2 }), () => clientWritesRange(r));
    const moving = samples.filter((s) => s.copy.bytes > LEAD_BYTES + 1024);
    t.true(moving.length > 0, 'the copy reported its data moving');
    t.true(moving.every((s) => s.pair.state === 'split'), 'FIG. 6: no data of the range moved before the pair was split');
    t.true(samples.some((s) => s.pair.state === 'split pending' && s.copy.state === 'in progress'), 'the backup command waited while the pair was split pending');
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'the tape holds the split image');
  } finally { await r.emu.stop(); }
});

test('001 2nd embodiment, FIG. 7 variant: the backup server watches the pair state itself (PAIR STATUS) and issues the backup once the target reads "split"', async (t) => {
  const r = await duplexWithDifference('emb2-fig7');
  try {
    await r.c.pairSplit(r.src);
    let polls = 0;
    const ready = await until(r, (p) => { polls++; return p.targetState === 'split'; }, 'split');
    t.true(polls > 1, 'the backup server saw "split pending" before "split"');
    t.is(ready.pendingTracks, 0);
    await clientWritesRange(r); // the client server's I/O goes on: the target keeps the split image
    await runSampled(r, await listFor(r, { listId: 1, policy: 'merge', source: 2 })); // the pair is split: the policy has nothing to do
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'the tape holds the split image');
  } finally { await r.emu.stop(); }
});

test('001 3rd embodiment, FIGs 8-9: not-yet-reflected data is read from the source into the backup data storage area and merged with reflected target data; the backup does not wait for the reflection', async (t) => {
  const r = await duplexWithDifference('emb3', '12MiB');
  try {
    await r.c.pairSplit(r.src);
    const samples = await runSampled(r, await listFor(r, { listId: 1, policy: 'merge', source: 2 }), () => clientWritesRange(r));
    const last = samples[samples.length - 1];
    t.is(last.pair.state, 'split pending', 'FIG. 9: the backup ended before the difference was reflected');
    t.true(last.pair.pendingTracks >= 16, `tracks of the range were still pending on the target (${last.pair.pendingTracks} pending)`);
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'the merged data on tape is the split image');
    await until(r, (p) => p.state === 'split', 'split');
    t.true((await volumeData(r.s, 2)).equals(r.image));
  } finally { await r.emu.stop(); }
});

test('001 3rd embodiment, FIG. 9 track by track: a track of the range not yet reflected is read from the source 601 into 515 (and not written to the target 602), a reflected one from the target; merged, the tape holds the split image', async (t) => {
  const r = await duplexWithDifference('emb3-tracks');
  try {
    await r.c.pairSplit(r.src);
    const half = RANGE.blocks / 2;
    // The range's first 8 tracks are reflected before the backup, and the client server then writes
    // them again on the source: only the target still holds their split image. The last 8 wait for
    // the pair copy: only the source holds theirs (copy before write keeps it there).
    await r.c.pairCopyRange(r.src, RANGE.lba, half, { wait: true });
    await write(r.s, 1, RANGE.lba, pattern(half * 512, 3));
    const list = await listFor(r, { listId: 1, policy: 'merge', source: 2 });
    await r.cm.copy(list); // IMMED
    let st = await r.cm.status(1);
    for (let i = 0; i < 40000 && st.state === 'in progress'; i++) st = await r.cm.status(1); // no advance(): the copy's I/O moves the clock
    t.is(st.state, 'good');
    // At once, before the drive goes back (its unload would let the pair copy finish): the pair is
    // deleted, both volumes keep their data, and the target's own tracks can be read.
    await r.c.pairDelete(r.src);
    await r.drive.release();
    const source = rangeOf(await volumeData(r.s, 1));
    const target = rangeOf(await volumeData(r.s, 2));
    const tape = await tapeRange(r);
    const image = rangeOf(r.image);
    const track = (b: Buffer, k: number): Buffer => b.subarray(k * TRACK, (k + 1) * TRACK);
    for (let k = 0; k < RANGE.blocks / SECTORS_PER_TRACK; k++) {
      const n = RANGE.lba / SECTORS_PER_TRACK + k;
      if (k * SECTORS_PER_TRACK < half) {
        t.false(track(source, k).equals(track(image, k)), `track ${n}: reflected, then rewritten on the source`);
        t.true(track(tape, k).equals(track(image, k)), `track ${n}: reflected: read from the target 602`);
      } else {
        t.true(track(target, k).equals(track(rangeOf(r.ref), k)), `track ${n}: not reflected: the target 602 still holds its data from before the split, the copy did not write it there`);
        t.true(track(tape, k).equals(track(image, k)), `track ${n}: not reflected: read from the source 601 into the area 515`);
      }
    }
  } finally { await r.emu.stop(); }
});

test('001 4th embodiment, FIGs 10-11: split and backup in one command (vendor segment C0h, IMMED): GOOD at the split, the backup server follows with RECEIVE COPY RESULTS', async (t) => {
  const r = await duplexWithDifference('emb4');
  try {
    const list = await listFor(r, { listId: 7, policy: 'priority', split: true, immed: true, source: 2 });
    t.is((await r.c.pairOf(r.src)).state, 'duplex', 'no split before the backup command');
    await r.cm.copy(list); // FIG. 11: the controller responds to the Backup command at the split
    const after = await r.c.pairOf(r.src);
    t.is(after.sourceState, 'split', 'FIG. 11: 516 "pair split" when the command is answered');
    t.is(after.targetState, 'split pending', '517 "split pending"');
    const early = await r.cm.status(7);
    t.is(early.state, 'in progress', 'the backup goes on after the status');
    const writing = clientWritesRange(r); // the client server resumes its I/O
    let st = early;
    for (let i = 0; i < 20000 && st.state === 'in progress'; i++) { await r.emu.advance(1); st = await r.cm.status(7); }
    t.is(st.state, 'good', 'RECEIVE COPY RESULTS (COPY STATUS) reports the end of the backup');
    t.is(st.segments, list.segments.length);
    t.true(st.bytes >= RANGE.blocks * 512);
    await writing;
    await r.drive.release();
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'the tape holds the split image');
    await t.throwsAsync(r.cm.status(7), { message: /INVALID FIELD IN CDB/ }, 'a good copy\'s status is given once');
  } finally { await r.emu.stop(); }
});

test('004\'s read-only attribute for the duration of a backup: while a copy naming the pair (C0h) runs, target writes are DATA PROTECT and a resync is refused; after it, both go through', async (t) => {
  const r = await duplexWithDifference('backup-ro');
  try {
    const list = await listFor(r, { listId: 8, policy: 'wait', split: true, immed: true, source: 2 });
    await r.cm.copy(list); // answered at the split; the copy waits for the whole difference (2nd policy), then backs up
    const during = await r.c.pairOf(r.src);
    t.is(during.targetState, 'split pending');
    t.true(during.targetReadOnly, 'PAIR STATUS shows the target read-only while the backup runs');
    t.is((await r.cm.status(8)).state, 'in progress');
    const w = await r.s.submit({ lun: 2, cdb: scsi.readWrite(true, RANGE.lba, 8), dataOut: pattern(4096, 9) });
    t.deepEqual([w.status, w.sense?.[2]! & 0xf, w.sense?.[12], w.sense?.[13]], [2, 7, 0x27, 0], 'a target write during the backup: DATA PROTECT, WRITE PROTECTED');
    await t.throwsAsync(r.c.pairResync(r.src), { message: /PAIR STATE DOES NOT ALLOW/ }, 'no resync under a running backup');
    await t.throwsAsync(r.c.pairReverse(r.src), { message: /PAIR STATE DOES NOT ALLOW/ }, 'no reverse resync either');
    let st = await r.cm.status(8);
    for (let i = 0; i < 20000 && st.state === 'in progress'; i++) { await r.emu.advance(2); st = await r.cm.status(8); }
    t.is(st.state, 'good');
    await r.drive.release();
    t.true((await tapeRange(r)).equals(rangeOf(r.image)), 'the tape holds the split image, not the refused write');
    const after = await r.c.pairOf(r.src);
    t.false(after.targetReadOnly, 'the attribute goes with the backup');
    const w2 = await r.s.submit({ lun: 2, cdb: scsi.readWrite(true, RANGE.lba, 8), dataOut: pattern(4096, 9) });
    t.is(w2.status, 0, 'a target write after the backup is recorded as usual');
    await r.c.pairResync(r.src);
  } finally { await r.emu.stop(); }
});

for (const [embodiment, policy] of [[1, 1], [2, 2], [3, 0]] as const) {
  test(`sanctl's flow, embodiment ${embodiment} on a duplex pair: the client's PAIR SPLIT (001 steps 2-3) first, then an EXTENDED COPY whose C0h does not split and carries policy ${policy}; the tape restores to the split image`, async (t) => {
    const r = await duplexWithDifference(`emb${embodiment}-flow`);
    try {
      const sent: Array<{ op: number; sa: number; split?: number; policy?: number }> = [];
      const submit = r.c.transport.submit.bind(r.c.transport);
      r.c.transport.submit = (cmd) => {
        const entry: (typeof sent)[number] = { op: cmd.cdb[0], sa: cmd.cdb[1] & 0x1f };
        if (cmd.cdb[0] === 0x83 && cmd.dataOut) { // the C0h segment follows the header and the CSCD descriptors
          const d = Buffer.from(cmd.dataOut);
          const seg = 16 + d.readUInt16BE(2);
          if (d[seg] === 0xc0) { entry.split = d[seg + 6] & 1; entry.policy = d[seg + 7]; }
        }
        sent.push(entry);
        return submit(cmd);
      };
      const res = await backupVolume(r.c, r.lib, { volume: r.src, tape: 'SB0002L5', embodiment, pause: () => r.emu.advance(2) });
      t.true(res.split);
      t.is(res.embodiment, embodiment);
      const split = sent.findIndex((x) => x.op === scsi.Opcode.MANAGEMENT_OUT && x.sa === scsi.Management.PAIR_SPLIT);
      const copy = sent.findIndex((x) => x.op === 0x83);
      t.true(split >= 0 && split < copy, 'PAIR SPLIT before the EXTENDED COPY');
      t.like(sent[copy], { split: 0, policy });
      await restoreVolume(r.c, r.lib, { tape: 'SB0002L5', volume: r.spare });
      t.true((await volumeData(r.s, 3)).equals(r.image));
    } finally { await r.emu.stop(); }
  });
}

test('sanctl\'s flow on a duplex pair: backupVolume splits by the copy (4th embodiment) and the tape restores to the split image', async (t) => {
  const r = await duplexWithDifference('emb4-flow');
  try {
    const res = await backupVolume(r.c, r.lib, { volume: r.src, tape: 'SB0002L5', embodiment: 4, pause: () => r.emu.advance(2) });
    t.true(res.split);
    t.is(res.records, BLOCKS * 512 / RECORD_BYTES);
    await restoreVolume(r.c, r.lib, { tape: 'SB0002L5', volume: r.spare });
    t.true((await volumeData(r.s, 3)).equals(r.image));
  } finally { await r.emu.stop(); }
});
