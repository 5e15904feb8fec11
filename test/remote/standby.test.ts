// The standby storage unit of document 003, embodiments 7 and 8, through the compiled firmware's
// units (firmware/remote/delayed.ts, firmware/remote/snapshot.ts) in the test image: held delayed
// writes applied at restart enabling points (Figs. 22, 24, 26, 27), and the redirect-on-write
// standby with its address table, unused block table and issuing-ID order (Figs. 30, 31, 34, 36).
// The medium is a block array in the image's memory; the units do not know it (the link unit writes
// through the IO scheduler where the test image copies).
import test from 'ava';
import { Rig } from '../firmware/rig';

const BS = 512;

// SyncUnit fields (firmware/remote/delayed.ts), u32 each, in order.
const SU = ['magic', 'entries', 'entryBytes', 'blockBytes', 'lastSync', 'lastIssuing', 'failedOver', 'phase', 'reflectSync',
  'reflectIssuing', 'outstanding', 'reflectStatus', 'used', 'pending', 'refused', 'superseded', 'discarded', 'reflects',
  'blocksWritten', 'blocksSkipped'] as const;
// SnapUnit fields (firmware/remote/snapshot.ts).
const SN = ['magic', 'logicalBlocks', 'physicalBlocks', 'blockBytes', 'holdMax', 'holdBytes', 'processed', 'failedOver',
  'unused', 'held', 'refused', 'formed', 'restored', 'released', 'redirected', 'discarded'] as const;

const SYNC_FAILED_OVER = -1, SYNC_APPLIED = -2, SYNC_FULL = -3, SYNC_BAD = -4;
const RP_NONE = 0, RP_WAITING = 1, RP_WRITING = 2;
const SNAP_FAILED_OVER = -1, SNAP_APPLIED = -2, SNAP_FULL = -3, SNAP_BAD = -4, SNAP_NO_SPACE = -5;
const SK_WRITE = 1, SK_FORM = 2;

/** A rig with one scratch area cut into the unit, a medium, a source buffer and a log. */
function bench(size: (fw: Rig['fw']) => number, mediumBlocks: number) {
  const rig = new Rig();
  const unitBytes = size(rig.fw);
  const total = unitBytes + mediumBlocks * BS + 64 * 1024 + 64 * 1024;
  const base = rig.scratch(total);
  const unit = base;
  const medium = (base + unitBytes + 7) & ~7;
  const src = medium + mediumBlocks * BS;
  const log = src + 64 * 1024;
  return { rig, fw: rig.fw, unit, medium, src, log };
}

type Bench = ReturnType<typeof bench>;

/** Fills the source buffer with `blocks` blocks of byte `fill` (a block's data names who wrote it). */
function data(b: Bench, fill: number, blocks: number): number {
  b.rig.bytes.fill(fill, b.src, b.src + blocks * BS);
  return b.src;
}

/** The first byte of each medium block from `first`, `n` blocks. */
function mediumBlocks(b: Bench, first: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => b.rig.bytes[b.medium + (first + i) * BS]);
}

// ---- Embodiment 7 ------------------------------------------------------------------------------------

function syncBench(entries = 8, entryBytes = 8 * BS, baseSync = 23, baseIssuing = 71) {
  const b = bench((fw) => fw.syncBytes(entries, entryBytes), 64);
  if (!b.fw.syncLayout(b.unit, entries, entryBytes, BS, baseSync, baseIssuing)) throw new Error('syncLayout refused');
  const field = (name: (typeof SU)[number]) => b.fw.testSyncField(b.unit, SU.indexOf(name) * 4) as number;
  /** A delay write of `blocks` blocks of byte `fill` at lba. */
  const write = (sync: number, issuing: number, lba: number, blocks: number, fill: number) =>
    b.fw.testSyncWrite(b.unit, sync, issuing, lba, data(b, fill, blocks), blocks * BS) as number;
  /** S462-S467 to the end; the runs as [issuing ID, first block, blocks]. */
  const run = (complete = true, max = 64) => {
    const n = b.fw.testSyncRun(b.unit, b.medium, b.log, max, complete) as number;
    return Array.from({ length: n }, (_, i) => [b.rig.u32(b.log + i * 16), b.rig.u32(b.log + i * 16 + 4), b.rig.u32(b.log + i * 16 + 8)]);
  };
  return { ...b, field, write, run };
}

test('S420-S425 and S460-S468: writes arriving out of order are held, not applied, then written in issuing-ID order at the reflecting command (Fig. 22: sync 24, IDs 72-75, reflect 76)', (t) => {
  const s = syncBench();
  // Arrival order 74, 72, then the reflecting command, then 75, 73 ([0179]: data need not follow the issuing order).
  t.true(s.write(24, 74, 16, 2, 0x74) >= 0);
  t.true(s.write(24, 72, 0, 2, 0x72) >= 0);
  t.deepEqual(mediumBlocks(s, 0, 24), new Array(24).fill(0), 'S425: held in the buffer for synchronization, the medium untouched');
  t.is(s.fw.syncReflect(s.unit, 24, 76), 0);
  t.is(s.field('phase'), RP_WAITING, 'S461: 73 and 75 have not arrived: the reflect waits');
  t.deepEqual(s.run(), [], 'S461: nothing is written while a write of the interval is missing');
  t.true(s.write(24, 75, 24, 1, 0x75) >= 0);
  t.true(s.write(24, 73, 8, 2, 0x73) >= 0);
  t.is(s.fw.syncStep(s.unit), RP_WRITING, 'S461: all of 72-75 are in the buffer');
  t.deepEqual(s.run(), [[72, 0, 2], [73, 8, 2], [74, 16, 2], [75, 24, 1]], 'S462-S464: issuing-ID order');
  t.is(s.fw.syncReflectComplete(s.unit), 1, 'S468: completion to the normal system');
  t.deepEqual(mediumBlocks(s, 0, 25).filter((x) => x !== 0), [0x72, 0x72, 0x73, 0x73, 0x74, 0x74, 0x75]);
  t.is(s.field('lastSync'), 24);
  t.is(s.field('lastIssuing'), 76, 'S468: the IDs of the reflect processed last');
  t.is(s.field('used'), 0, 'S467: the buffer areas are free again');
});

test('S460: a reflecting command for sync 25 that arrives first waits for the one for sync 24', (t) => {
  const s = syncBench();
  t.true(s.write(24, 72, 0, 1, 0xA1) >= 0);
  t.true(s.write(25, 74, 0, 1, 0xB1) >= 0);
  t.is(s.fw.syncReflect(s.unit, 25, 75), 0);
  t.is(s.field('phase'), RP_NONE, 'S460: 25 is not the next after 23');
  t.deepEqual(s.run(), []);
  t.deepEqual(mediumBlocks(s, 0, 1), [0]);
  t.is(s.fw.syncReflect(s.unit, 24, 73), 0);
  t.deepEqual(s.run(), [[72, 0, 1]]);
  t.is(s.fw.syncReflectComplete(s.unit), 1);
  t.deepEqual(mediumBlocks(s, 0, 1), [0xA1], 'restart point 24: the write of 25 is not on the medium');
  t.deepEqual(s.run(), [[74, 0, 1]], 'then S461 ff. for 25');
  t.is(s.fw.syncReflectComplete(s.unit), 1);
  t.deepEqual(mediumBlocks(s, 0, 1), [0xB1]);
  t.is(s.field('lastIssuing'), 75);
});

test('[0190]/[0191]: overlapping writes of one sync ID are written once, the last by issuing ID wins, whatever the arrival order', (t) => {
  const s = syncBench();
  // 72: blocks 0-7 (A); 73: blocks 4-11 (B); 74: blocks 0-7 (C), covering 72 whole. Arrival: 74, 73, 72.
  t.true(s.write(24, 74, 0, 8, 0xCC) >= 0);
  t.true(s.write(24, 73, 4, 8, 0xBB) >= 0);
  t.true(s.write(24, 72, 0, 8, 0xAA) >= 0);
  t.is(s.field('superseded'), 1, '[0191]: 72 is deleted from the buffer on arrival (74 covers it)');
  t.is(s.write(24, 72, 0, 8, 0xAA), SYNC_APPLIED, 'a repeat of 72 after that is answered, not held again');
  t.is(s.field('used'), 2);
  // A write of the next sync ID over the same blocks is not merged into this one.
  t.true(s.write(25, 76, 0, 2, 0xDD) >= 0);
  t.is(s.fw.syncReflect(s.unit, 24, 75), 0);
  const runs = s.run();
  t.deepEqual(runs, [[73, 8, 4], [74, 0, 8]], 'blocks 4-7 of 73 are skipped: 74 writes them');
  const written = runs.reduce((n, r) => n + r[2], 0);
  t.is(written, 12, 'each of the 12 blocks once');
  t.is(s.field('blocksSkipped'), 4);
  t.is(s.fw.syncReflectComplete(s.unit), 1);
  t.deepEqual(mediumBlocks(s, 0, 12), [...new Array(8).fill(0xCC), ...new Array(4).fill(0xBB)]);
  t.is(s.field('used'), 1, 'the write of sync 25 stays held');
});

test('S480-S485: failover discards the writes whose reflecting command has not come; the medium stays at the restart point', (t) => {
  const s = syncBench();
  t.true(s.write(24, 72, 0, 2, 0x11) >= 0);
  t.is(s.fw.syncReflect(s.unit, 24, 73), 0);
  s.run();
  t.is(s.fw.syncReflectComplete(s.unit), 1);
  const restartPoint = mediumBlocks(s, 0, 8);
  t.true(s.write(25, 74, 0, 1, 0x22) >= 0);
  t.true(s.write(25, 75, 4, 2, 0x23) >= 0);
  t.is(s.fw.syncDiscard(s.unit), 1, 'S485: no reflect writing: answered at once');
  t.is(s.field('discarded'), 2, 'S482: both unreflected writes');
  t.is(s.field('used'), 0);
  t.deepEqual(mediumBlocks(s, 0, 8), restartPoint);
  t.is(s.write(25, 76, 0, 1, 0x33), SYNC_FAILED_OVER, 'nothing more is taken from the link');
  t.is(s.fw.syncReflect(s.unit, 25, 77), SYNC_FAILED_OVER);
  t.deepEqual(s.run(), []);
  t.deepEqual(mediumBlocks(s, 0, 8), restartPoint);
});

test('S480-S485: a reflect still waiting for data (S461) is discarded too; a reflect writing (S483/S484) finishes before the answer', (t) => {
  const waiting = syncBench();
  t.true(waiting.write(24, 72, 0, 1, 0x44) >= 0);
  t.is(waiting.fw.syncReflect(waiting.unit, 24, 74), 0); // 73 never arrives
  t.is(waiting.field('phase'), RP_WAITING);
  t.is(waiting.fw.syncDiscard(waiting.unit), 1);
  t.is(waiting.field('phase'), RP_NONE);
  t.deepEqual(mediumBlocks(waiting, 0, 1), [0], 'the unconfirmed restart point never reached the medium');
  t.is(waiting.field('lastSync'), 23);

  const writing = syncBench();
  t.true(writing.write(24, 72, 0, 1, 0x55) >= 0);
  t.true(writing.write(24, 73, 2, 1, 0x56) >= 0);
  t.true(writing.write(25, 75, 4, 1, 0x57) >= 0);
  t.is(writing.fw.syncReflect(writing.unit, 24, 74), 0);
  const runs = writing.run(false, 1); // one run at the medium, not finished
  t.deepEqual(runs, [[72, 0, 1]]);
  t.is(writing.fw.syncDiscard(writing.unit), 0, 'S484: waits for the reflect in progress');
  t.is(writing.field('discarded'), 1, 'S482: the write of sync 25 is gone already');
  writing.fw.syncWriteDone(writing.unit, writing.rig.u32(writing.log + 12), true);
  t.deepEqual(writing.run(), [[73, 2, 1]], 'the reflect goes on to its end');
  t.is(writing.fw.syncDiscard(writing.unit), 1, 'S485');
  t.deepEqual(mediumBlocks(writing, 0, 5), [0x55, 0, 0x56, 0, 0], 'restart point 24 whole, nothing of 25');
  t.is(writing.field('lastSync'), 24);
});

test('S462-S467 with runs in flight together (the link applies four at once): a write whose rest is covered by a later one stays held until its run in flight is done; the reflect and a failover then end', (t) => {
  const s = syncBench();
  // 72: blocks 0-7; 73: blocks 4-7, covering 72's second half.
  t.true(s.write(24, 72, 0, 8, 0xAA) >= 0);
  t.true(s.write(24, 73, 4, 4, 0xBB) >= 0);
  t.is(s.fw.syncReflect(s.unit, 24, 74), 0);
  // Both runs are taken before either is done, as APPLY_DEPTH > 1 does (standbyStep).
  const runs = s.run(false, 2);
  t.deepEqual(runs, [[72, 0, 4], [73, 4, 4]], "72's blocks 4-7 are skipped while its first run is still in flight");
  t.is(s.field('outstanding'), 2);
  t.is(s.field('used'), 2, '72 is not freed under its run in flight');
  t.is(s.fw.syncReflectComplete(s.unit), 0);
  // The runs end in the other order (their contexts are independent).
  s.fw.syncWriteDone(s.unit, s.rig.u32(s.log + 16 + 12), true);
  s.fw.syncWriteDone(s.unit, s.rig.u32(s.log + 12), true);
  t.is(s.field('outstanding'), 0, 'every run that ended is counted: nothing waits for a run that is gone');
  t.is(s.field('used'), 0);
  t.is(s.fw.syncDiscard(s.unit), 1, 'S485: a failover after it is answered');
  t.deepEqual(mediumBlocks(s, 0, 8), [0xAA, 0xAA, 0xAA, 0xAA, 0xBB, 0xBB, 0xBB, 0xBB], 'as in issuing-ID order');
  t.is(s.field('lastIssuing'), 74);
});

test('a full buffer refuses with SYNC_FULL (the sender sees it), drops nothing held, and takes writes again after a reflect', (t) => {
  const s = syncBench(4, 2 * BS);
  for (let id = 72; id <= 75; id++) t.true(s.write(24, id, id - 72, 1, id) >= 0);
  t.is(s.write(24, 76, 8, 1, 0x76), SYNC_FULL, 'a fifth write past the last restart point: no room');
  t.is(s.write(24, 76, 8, 1, 0x76), SYNC_FULL, 'repeated: refused again, never taken half');
  t.is(s.field('refused'), 2);
  t.is(s.field('used'), 4, 'the four held writes are intact');
  t.is(s.fw.syncReflect(s.unit, 24, 76), 0);
  t.deepEqual(s.run().map((r) => r[0]), [72, 73, 74, 75]);
  t.is(s.fw.syncReflectComplete(s.unit), 1);
  t.deepEqual(mediumBlocks(s, 0, 4), [72, 73, 74, 75]);
  for (let id = 77; id <= 80; id++) t.true(s.write(25, id, 0, 1, id) >= 0, `room again for ${id}`);
  t.is(s.write(25, 81, 0, 1, 0), SYNC_FULL);
});

test('reflecting commands: a repeat is answered again, more than SYNC_PENDING_MAX ahead of their turn are refused, a failed medium write is reported (SYNC_MEDIUM_ERROR)', (t) => {
  const s = syncBench();
  // Eight reflects for sync IDs 25..32 arrive ahead of 24's: they wait (S460); a ninth is refused.
  for (let k = 0; k < 8; k++) t.is(s.fw.syncReflect(s.unit, 25 + k, 74 + k), 0);
  t.is(s.fw.syncReflect(s.unit, 25, 74), 0, 'a repeat of a waiting reflect: taken once');
  t.is(s.field('pending'), 8);
  t.is(s.fw.syncReflect(s.unit, 33, 82), SYNC_FULL, 'the ninth waiting reflect: refused');
  t.true(s.write(24, 72, 0, 1, 0x61) >= 0);
  t.is(s.fw.syncReflect(s.unit, 24, 73), 0, 'the reflect whose turn it is is taken even with the list full');
  const runs = s.run(false);
  t.deepEqual(runs, [[72, 0, 1]]);
  t.is(s.fw.syncReflectComplete(s.unit), 0, 'S465: a run is still at the medium');
  s.fw.syncWriteDone(s.unit, s.rig.u32(s.log + 12), false);
  t.is(s.fw.syncReflectComplete(s.unit), -5, 'SYNC_MEDIUM_ERROR: the caller answers the normal system an error');
  t.is(s.fw.syncReflect(s.unit, 24, 73), SYNC_APPLIED, 'a repeat of a processed reflect: its completion is answered again');
});

test('bad delay writes and repeats get their own answers and change nothing', (t) => {
  const s = syncBench();
  t.is(s.fw.syncWriteBegin(s.unit, 24, 72, 0n, 0), SYNC_BAD, 'no data');
  t.is(s.fw.syncWriteBegin(s.unit, 24, 72, 0n, 100), SYNC_BAD, 'not whole blocks');
  t.is(s.fw.syncWriteBegin(s.unit, 24, 72, 0n, 9 * BS), SYNC_BAD, 'longer than an entry');
  t.is(s.fw.syncWriteBegin(s.unit, 23, 72, 0n, BS), SYNC_BAD, 'a sync ID already reflected');
  t.is(s.fw.syncWriteBegin(s.unit, 24, 71, 0n, BS), SYNC_APPLIED, 'an issuing ID already reflected: answered again');
  const e = s.fw.syncWriteBegin(s.unit, 24, 72, 0n, 2 * BS);
  t.true(e >= 0);
  t.is(s.fw.syncWriteBegin(s.unit, 24, 72, 0n, 2 * BS), e, 'a repeat of a write receiving: the same entry');
  t.is(s.fw.syncWriteData(s.unit, e, BS, data(s, 1, 2), 2 * BS), 0, 'data past its end');
  t.is(s.fw.syncWriteEnd(s.unit, e), SYNC_BAD, 'S424: not all of it is here');
  t.is(s.field('used'), 1);
  t.deepEqual(mediumBlocks(s, 0, 2), [0, 0]);
});

// ---- Embodiment 8 ------------------------------------------------------------------------------------

function snap(logical = 16, physical = 24, holdMax = 4, holdBytes = 4 * BS, base = 10) {
  const b = bench((fw) => fw.snapBytes(logical, physical, holdMax, holdBytes), physical);
  if (!b.fw.snapLayout(b.unit, logical, physical, BS, holdMax, holdBytes, base)) throw new Error('snapLayout refused');
  t0(b);
  const field = (name: (typeof SN)[number]) => b.fw.testSnapField(b.unit, SN.indexOf(name) * 4) as number;
  const scratch = b.log;
  /** S580-S585: a write of `blocks` blocks of byte `fill`; the slot or a refusal. */
  const write = (issuing: number, lba: number, blocks: number, fill: number) => {
    const slot = b.fw.snapAccept(b.unit, SK_WRITE, issuing, BigInt(lba), blocks) as number;
    if (slot < 0) return slot;
    if (!b.fw.snapDataIn(b.unit, slot, 0, data(b, fill, blocks), blocks * BS)) throw new Error('data refused');
    return slot;
  };
  const form = (issuing: number) => b.fw.snapAccept(b.unit, SK_FORM, issuing, BigInt(0), 0) as number;
  const process = () => b.fw.testSnapRun(b.unit, b.medium, scratch) as number;
  /** What a host reads of logical block l (its latest physical block's first byte). */
  const read = (l: number) => { b.fw.testSnapReadBlock(b.unit, b.medium, l, b.src); return b.rig.bytes[b.src]; };
  return { ...b, field, write, form, process, read };
}

/** The medium at layout: logical block i on physical block i, holding byte 0xF0 + i (the data before the pair). */
function t0(b: Bench): void { for (let i = 0; i < 16; i++) b.rig.bytes.fill(0xF0 + i, b.medium + i * BS, b.medium + (i + 1) * BS); }

test('Fig. 34 (S540-S546) and Fig. 31: the first write after a restart point is redirected to an unused block, later ones land there; the snapshot block keeps its data', (t) => {
  const s = snap();
  t.is(s.write(11, 3, 1, 0xA3), 0);
  t.is(s.process(), 1, 'S586-S589');
  const latest = s.fw.snapRead(s.unit, 3);
  t.not(latest, 3, 'S543: an unused block (Fig. 31c: aaa -> bbb)');
  t.is(s.fw.snapSnapshot(s.unit, 3), 3, 'the snapshot address space still names aaa');
  t.is(s.fw.snapChanged(s.unit, 3), 1, 'S545: changed');
  t.is(s.field('unused'), 7);
  t.is(s.rig.bytes[s.medium + 3 * BS], 0xF3, 'aaa keeps the data of the restart point');
  t.is(s.write(12, 3, 1, 0xB3), 0);
  t.is(s.process(), 1);
  t.is(s.fw.snapRead(s.unit, 3), latest, 'S542 -> S546: already changed, written in place');
  t.is(s.field('redirected'), 1);
  t.is(s.read(3), 0xB3);
  t.is(s.form(13), 0);
  t.is(s.process(), 1);
  t.is(s.fw.snapSnapshot(s.unit, 3), latest, '[0255]: latest -> snapshot (Fig. 31d)');
  t.is(s.fw.snapChanged(s.unit, 3), 0, '[0255]: not changed');
  t.is(s.field('unused'), 8, '[0255]: aaa is an unused block again');
  t.is(s.field('processed'), 13, '[0279]: the forming command\'s issuing ID');
});

test('S586: commands arriving in reverse are processed in issuing-ID order; a write issued after a forming command is not in that snapshot', (t) => {
  const s = snap();
  // 11: write block 0 (A), 12: write block 1 (B), 13: snapshot forming, 14: write block 0 (C). Arrival: 14, 13, 12, 11.
  t.true(s.write(14, 0, 1, 0xC0) >= 0);
  t.is(s.process(), 0, 'S586: 11-13 not processed yet');
  t.true(s.form(13) >= 0);
  t.true(s.write(12, 1, 1, 0xB1) >= 0);
  t.is(s.process(), 0);
  t.is(s.field('held'), 3);
  t.is(s.read(0), 0xF0, 'nothing applied while 11 is missing');
  t.true(s.write(11, 0, 1, 0xA0) >= 0);
  t.is(s.process(), 4, '11, 12, 13, 14 in order');
  t.is(s.field('processed'), 14);
  t.is(s.rig.bytes[s.medium + s.fw.snapSnapshot(s.unit, 0) * BS], 0xA0, 'the snapshot of 13 holds 11');
  t.is(s.rig.bytes[s.medium + s.fw.snapSnapshot(s.unit, 1) * BS], 0xB1, '... and 12');
  t.is(s.read(0), 0xC0, 'the latest holds 14');
  t.is(s.fw.snapChanged(s.unit, 0), 1);
  t.is(s.fw.snapChanged(s.unit, 1), 0);
});

test('[0260]-[0265]: failover restores the snapshot, frees the blocks written since, drops held commands and refuses the link', (t) => {
  const s = snap(16, 24, 8);
  t.true(s.write(11, 0, 2, 0xA0) >= 0);
  t.true(s.form(12) >= 0);
  t.true(s.write(13, 1, 2, 0xC0) >= 0);
  t.true(s.write(15, 5, 1, 0xE0) >= 0); // 14 never arrives
  t.is(s.process(), 3);
  t.deepEqual([s.read(0), s.read(1), s.read(2), s.read(5)], [0xA0, 0xC0, 0xC0, 0xF5]);
  const unusedBefore = s.field('unused');
  t.is(s.fw.snapFailover(s.unit), 2, '[0263]: the two entries changed since the snapshot go back');
  t.deepEqual([s.read(0), s.read(1), s.read(2), s.read(5)], [0xA0, 0xA0, 0xF2, 0xF5], 'the restart point of 12: 11 is in, 13 is not');
  t.is(s.field('unused'), unusedBefore + 2, '[0263]: their blocks are unused again');
  t.is(s.field('discarded'), 1, 'the held 15 is dropped');
  t.is(s.field('held'), 0);
  t.is(s.fw.snapChanged(s.unit, 1), 0);
  t.is(s.write(14, 0, 1, 0), SNAP_FAILED_OVER, 'nothing more is taken from the link');
  t.is(s.form(16), SNAP_FAILED_OVER);
});

test('bounded gaps: a command more than holdMax past the processed one is refused (SNAP_FULL); the one that closes the gap always finds a slot', (t) => {
  const s = snap();
  t.is(s.write(15, 0, 1, 1), SNAP_FULL, '15 - 10 > holdMax 4');
  t.is(s.field('refused'), 1);
  for (const id of [14, 13, 12]) t.true(s.write(id, id - 12, 1, id) >= 0);
  t.true(s.write(11, 5, 1, 11) >= 0, '11 closes the gap: a slot is free for it');
  t.is(s.process(), 4);
  t.true(s.write(15, 0, 1, 15) >= 0, 'room again once they are processed');
});

test('a write needing more unused blocks than are left is refused whole (SNAP_NO_SPACE) and changes nothing', (t) => {
  const s = snap(16, 18);
  t.true(s.write(11, 0, 3, 0x77) >= 0);
  const before = [0, 1, 2].map((l) => s.fw.snapRead(s.unit, l));
  t.is(s.process(), SNAP_NO_SPACE, '3 unchanged blocks, 2 unused');
  t.deepEqual([0, 1, 2].map((l) => s.fw.snapRead(s.unit, l)), before);
  t.is(s.field('unused'), 2);
  t.is(s.field('processed'), 10, 'not processed: the caller answers the sender an error');
  t.deepEqual([s.read(0), s.read(1), s.read(2)], [0xF0, 0xF1, 0xF2]);
});

test('bad standby commands and repeats get their own answers', (t) => {
  const s = snap();
  t.is(s.fw.snapAccept(s.unit, SK_WRITE, 11, BigInt(15), 2), SNAP_BAD, 'beyond the volume');
  t.is(s.fw.snapAccept(s.unit, SK_WRITE, 11, BigInt(0), 0), SNAP_BAD, 'no blocks');
  t.is(s.fw.snapAccept(s.unit, SK_WRITE, 11, BigInt(0), 5), SNAP_BAD, 'longer than a hold slot');
  t.is(s.fw.snapAccept(s.unit, 9, 11, BigInt(0), 1), SNAP_BAD, 'unknown kind');
  t.is(s.fw.snapAccept(s.unit, SK_WRITE, 10, BigInt(0), 1), SNAP_APPLIED, 'processed already: answered again');
  const slot = s.write(11, 0, 1, 0x42);
  t.is(s.fw.snapAccept(s.unit, SK_WRITE, 11, BigInt(0), 1), slot, 'a repeat: its slot again');
  t.is(s.field('held'), 1);
  t.is(s.fw.snapLayout(s.unit, 16, 16, BS, 4, 4 * BS, 0), 0, 'no spare physical block: refused');
});
