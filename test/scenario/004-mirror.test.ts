// Document 004 (Japanese part): the host mirror middleware (host/mirror.ts) through the real firmware,
// deterministic mode. FIG. 2 (1st embodiment: steps 403-415), FIG. 5 (2nd embodiment: the third area,
// steps 604-607), the 3rd embodiment's read-only attribute and access by initiator name
// (【0055】-【0057】), a host crash with the state file, and the same workload against the firmware's
// own pair function (docs/scsi.md "Volume pairs").
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { Mirror, MirrorError } from '../../host/mirror';
import { Emulator } from '../../harness';
import type { CommandTransport, ScsiCommand, ScsiResult } from '../../lib/transport';
import { tempDir, smallTopology, createVolume, pattern, senseOf } from '../harness/env';

const TRACK = 65536;
const BLOCKS = 4 * 2048; // 4 MiB areas: 64 tracks of 64 KiB
const TRACKS = (BLOCKS * 512) / TRACK;
const PER_TRACK = TRACK / 512;

interface Rig { emu: Emulator; dir: string; c: ScsiClient; vols: number[]; statePath: string }

/** `n` areas of 4 MiB at LUNs 1..n, alternating between the two media. */
async function rig(label: string, n: number): Promise<Rig> {
  const dir = tempDir(label);
  const emu = await Emulator.start(smallTopology({ dir, mode: 'deterministic', seed: 4, cache: { size: '8MiB', destageIntervalMs: 2, destageAgeMs: 5 } }), { debug: true });
  const s = emu.connect();
  const vols: number[] = [];
  for (let i = 0; i < n; i++) vols.push(await createVolume(s, { name: `a${i + 1}`, blocks: BLOCKS, blockSize: 512, media: [i % 2] }, i + 1));
  return { emu, dir, c: new ScsiClient(s), vols, statePath: path.join(dir, 'mirror.json') };
}

function area(r: Rig, i: number): { lun: number; volume: number } { return { lun: i + 1, volume: r.vols[i] }; }

async function whole(c: ScsiClient, lun: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let lba = 0; lba < BLOCKS; lba += 2048) parts.push(await c.read(lun, lba, 2048));
  return Buffer.concat(parts);
}

/** Writes through `write` and into the reference. */
async function put(ref: Buffer, write: (lba: number, d: Buffer) => Promise<unknown>, lba: number, d: Buffer): Promise<void> {
  await write(lba, d);
  d.copy(ref, lba * 512);
}

test('FIG. 2 steps 404-413 (1st embodiment, claim 2): writes are duplexed; the split fixes the secondary; positions updated while split are recorded by track and kept across a host crash; the resync copies only them (bytes = dirty tracks x track size)', async (t) => {
  const r = await rig('mirror-fig2', 2);
  t.teardown(() => r.emu.stop());
  const m = await Mirror.create(r.c, { primary: area(r, 0), secondary: area(r, 1), statePath: r.statePath });
  t.is(m.state, 'duplex');
  t.deepEqual(m.lastResync, { tracks: TRACKS, bytes: TRACKS * TRACK }, 'the initial copy is every track');
  const ref = Buffer.alloc(BLOCKS * 512);
  for (let i = 0; i < 20; i++) await put(ref, (l, d) => m.write(l, d), (i * 397) % (BLOCKS - 16), pattern(8192, i + 1));
  t.is(m.dirtyTracks, 0, 'duplex: every bit set for a write went once both areas had it');
  t.true((await whole(r.c, 1)).equals(ref), 'the primary');
  t.true((await whole(r.c, 2)).equals(ref), 'the secondary: the write duplexing function');

  await m.split(); // step 404
  const image = Buffer.from(ref);
  await put(ref, (l, d) => m.write(l, d), 3 * PER_TRACK + 7, pattern(512, 50));
  await put(ref, (l, d) => m.write(l, d), 50 * PER_TRACK - 4, pattern(4096, 51)); // tracks 49 and 50
  await put(ref, (l, d) => m.write(l, d), 50 * PER_TRACK + 9, pattern(1024, 52)); // track 50 again
  t.is(m.dirtyTracks, 3, 'tracks 3, 49 and 50 recorded');
  t.true((await m.read(0, BLOCKS)).equals(ref), 'the application reads the primary');
  t.true((await whole(r.c, 2)).equals(image), 'steps 407-409: the secondary holds the split image for the backup');

  // The host crashes (the Mirror object is dropped, nothing closed); the record is in the state file.
  const back = await Mirror.open(r.c, { statePath: r.statePath });
  t.is(back.state, 'split');
  t.is(back.dirtyTracks, 3, 'the recorded positions survived the crash');
  const report = await back.resync(); // step 413
  t.deepEqual(report, { tracks: 3, bytes: 3 * TRACK }, 'only the recorded tracks were copied');
  t.is(back.state, 'duplex');
  t.is(back.dirtyTracks, 0);
  t.true((await whole(r.c, 2)).equals(ref), 'the areas are identical again');
});

/**
 * A host that crashes with writes in flight: writes to `lun` never leave it, writes to other LUNs
 * reach the array but their acknowledgements never come back.
 */
class Holding implements CommandTransport {
  held = 0;
  readonly queueDepth: number;
  readonly target: string;
  constructor(private readonly inner: CommandTransport, private readonly lun: number) {
    this.queueDepth = inner.queueDepth;
    this.target = inner.target;
  }
  submit(c: ScsiCommand): Promise<ScsiResult> {
    if (c.cdb[0] !== scsi.Opcode.WRITE10) return this.inner.submit(c);
    if (c.lun === this.lun) this.held++;
    else void this.inner.submit(c);
    return new Promise(() => undefined);
  }
  close(): Promise<void> { return Promise.resolve(); }
}

test('a host crash during a duplexed write: the track\'s bit reached the state file before the write went out, and open() copies that track again', async (t) => {
  const r = await rig('mirror-crash', 2);
  t.teardown(() => r.emu.stop());
  await Mirror.create(r.c, { primary: area(r, 0), secondary: area(r, 1), statePath: r.statePath });
  const holding = new Holding(r.c.transport, 2);
  const doomed = await Mirror.open(new ScsiClient(holding), { statePath: r.statePath });
  const lost = doomed.write(20 * PER_TRACK, pattern(4096, 9)); // the primary gets it (unacknowledged), the secondary never
  for (let i = 0; i < 100 && holding.held === 0; i++) await r.emu.advance(1);
  t.is(holding.held, 1, 'the secondary write is in flight');
  await r.emu.advance(20);
  t.false((await r.c.read(2, 20 * PER_TRACK, 8)).equals(await r.c.read(1, 20 * PER_TRACK, 8)), 'the areas differ now');
  void lost;
  const again = await Mirror.open(r.c, { statePath: r.statePath }); // the host restarts
  t.is(again.state, 'duplex');
  t.deepEqual(again.lastResync, { tracks: 1, bytes: TRACK }, 'exactly the track of the interrupted write was copied');
  t.true((await whole(r.c, 2)).equals(await whole(r.c, 1)));
});

test('FIG. 5 steps 604-607 (2nd embodiment, claim 3): the split lasts only for the copy to the third area, which copies only what changed since the last one; the resync starts at once while the backup reads the third area', async (t) => {
  const r = await rig('mirror-third', 3);
  t.teardown(() => r.emu.stop());
  const m = await Mirror.create(r.c, { primary: area(r, 0), secondary: area(r, 1), third: area(r, 2), statePath: r.statePath });
  const ref = Buffer.alloc(BLOCKS * 512);
  for (let i = 0; i < 8; i++) await put(ref, (l, d) => m.write(l, d), i * 5 * PER_TRACK, pattern(4096, i + 1));
  const backup = 'iqn.2026-11.org.example:backup';
  const first = await m.prepareBackup(backup); // steps 604-607
  t.deepEqual(first.area, area(r, 2), 'the backup reads the third area');
  t.deepEqual(m.lastThirdCopy, { tracks: TRACKS, bytes: TRACKS * TRACK }, 'the first copy to the third area is whole');
  t.truthy(first.resync, 'step 607: the resync was started at once');
  const image = Buffer.from(ref);
  await put(ref, (l, d) => m.write(l, d), 2 * PER_TRACK, pattern(4096, 30)); // the application goes on during the backup
  await first.resync;
  t.is(m.state, 'duplex', 'resynchronised while the backup still runs');
  t.true((await whole(r.c, 3)).equals(image), 'step 609-611: the third area still holds the split image');
  t.true((await whole(r.c, 2)).equals(ref), 'the secondary is duplexed again');
  t.is(await m.finishBackup(), undefined, 'nothing left to resync at the end (done at step 607)');

  // The next backup: only the tracks written to the secondary since the last copy go to the third area.
  await put(ref, (l, d) => m.write(l, d), 40 * PER_TRACK, pattern(512, 31));
  t.is(m.thirdStaleTracks, 2, 'tracks 2 and 40 are stale on the third area');
  const second = await m.prepareBackup(backup);
  t.deepEqual(m.lastThirdCopy, { tracks: 2, bytes: 2 * TRACK }, 'a short split: two tracks, not the area');
  await second.resync;
  await m.finishBackup();
  t.true((await whole(r.c, 3)).equals(ref), 'the third area holds the second split image');
});

test('3rd embodiment (claims 4-5, 【0055】-【0057】): the backup server may not reach the secondary normally; during the backup it reads it but may not write it; the resync waits for the end of the backup', async (t) => {
  const r = await rig('mirror-access', 2);
  t.teardown(() => r.emu.stop());
  const m = await Mirror.create(r.c, { primary: area(r, 0), secondary: area(r, 1), statePath: r.statePath });
  await m.write(0, pattern(4096, 1));
  const before = new Set((await r.c.listSessions()).map((s) => s.initiator));
  const backupSession = new ScsiClient(r.emu.connect());
  await backupSession.testUnitReady();
  const backupId = (await r.c.listSessions()).map((s) => s.initiator).find((x) => !before.has(x))!;
  t.truthy(backupId, 'the backup server\'s session has an identity of its own');
  await r.c.setAccess(r.vols[1], 'none', backupId); // normal operation (【0052】)
  t.like(await senseOf(backupSession.read(2, 0, 8)), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x25 }, 'normally the secondary is not there for the backup server');

  const { area: a } = await m.prepareBackup(backupId); // step 404, then 【0055】
  t.deepEqual(a, area(r, 1));
  t.true(m.secondaryReadOnly, 'the read-only attribute is set');
  t.true((await backupSession.read(2, 0, 8)).equals(pattern(4096, 1)), 'step 409: the backup server reads the secondary');
  t.like(await senseOf(backupSession.write(2, 0, pattern(512, 2))), { key: scsi.SenseKey.DATA_PROTECT, asc: 0x27 }, 'and may not change it');
  await t.throwsAsync(m.resync(), { instanceOf: MirrorError, message: /read-only for a backup/ }, 'no resync under a running backup');
  await m.write(8 * PER_TRACK, pattern(512, 3));
  const report = await m.finishBackup(); // 【0057】 then step 413
  t.deepEqual(report, { tracks: 1, bytes: TRACK });
  t.false(m.secondaryReadOnly);
  t.like(await senseOf(backupSession.read(2, 0, 8)), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x25 }, 'access taken away again');
  t.true((await whole(r.c, 2)).equals(await whole(r.c, 1)));
});

test('the same workload against the firmware\'s own pair: the same final bytes on all four volumes, and each resync copies dirty tracks x track size', async (t) => {
  const r = await rig('mirror-vs-pair', 4);
  t.teardown(() => r.emu.stop());
  const m = await Mirror.create(r.c, { primary: area(r, 0), secondary: area(r, 1), statePath: r.statePath });
  await r.c.pairCreate(r.vols[2], r.vols[3]);
  const pairUntil = async (ok: (p: scsi.PairStatus) => boolean, what: string): Promise<scsi.PairStatus> => {
    for (let i = 0; i < 4000; i++) {
      const p = await r.c.pairOf(r.vols[2]);
      if (ok(p)) return p;
      await r.emu.advance(2);
    }
    throw new Error(`the firmware pair never reached ${what} in 8 s of virtual time`);
  };
  await pairUntil((p) => p.state === 'duplex', 'duplex');
  const both = async (lba: number, d: Buffer) => { await m.write(lba, d); await r.c.write(3, lba, d); };
  let x = 12345;
  const rnd = (n: number) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
  for (let i = 0; i < 40; i++) await both(rnd(BLOCKS - 16), pattern(512 * (1 + rnd(16)), i));
  await m.split();
  await r.c.pairSplit(r.vols[2]);
  await pairUntil((p) => p.state === 'split', 'split');
  const touched = new Set<number>();
  for (let i = 0; i < 25; i++) {
    const lba = rnd(BLOCKS - 16);
    const n = 1 + rnd(16);
    for (let tr = Math.floor(lba / PER_TRACK); tr <= Math.floor((lba + n - 1) / PER_TRACK); tr++) touched.add(tr);
    await both(lba, pattern(512 * n, 100 + i));
  }
  const fw = await r.c.pairOf(r.vols[2]);
  t.is(m.dirtyTracks, touched.size, 'the middleware recorded each touched track once');
  t.is(fw.sourceChangedTracks, touched.size, 'so did the firmware');
  const mine = await m.resync();
  await r.c.pairResync(r.vols[2]);
  const after = await pairUntil((p) => p.state === 'duplex' && p.pendingTracks === 0, 'duplex after the resync');
  t.is(mine.bytes, touched.size * TRACK, 'middleware resync bytes = dirty tracks x track size');
  t.is(after.copiedBytes - fw.copiedBytes, touched.size * TRACK, 'firmware resync bytes = dirty tracks x track size');
  const p = await whole(r.c, 1);
  for (const lun of [2, 3, 4]) t.true((await whole(r.c, lun)).equals(p), `LUN ${lun} holds the same bytes as the primary`);
});

test('bad input gets a clear error and changes nothing', async (t) => {
  const r = await rig('mirror-bad', 3);
  t.teardown(() => r.emu.stop());
  const small = await createVolume(r.c.transport, { name: 'small', blocks: 2048, blockSize: 512, media: [0] }, 9);
  const o = { primary: area(r, 0), secondary: area(r, 1), statePath: r.statePath };
  await t.throwsAsync(Mirror.create(r.c, { ...o, secondary: { lun: 9, volume: small } }), { instanceOf: MirrorError, message: /cannot hold the primary/ });
  await t.throwsAsync(Mirror.create(r.c, { ...o, trackBytes: 3000 }), { instanceOf: MirrorError, message: /not a power of two/ });
  await t.throwsAsync(Mirror.create(r.c, { ...o, secondary: area(r, 0) }), { instanceOf: MirrorError, message: /distinct LUNs/ });
  t.false(fs.existsSync(r.statePath), 'no state file from a refused create');
  await t.throwsAsync(Mirror.open(r.c, { statePath: r.statePath }), { instanceOf: MirrorError, message: /cannot be read/ });
  const m = await Mirror.create(r.c, o);
  await t.throwsAsync(Mirror.create(r.c, o), { instanceOf: MirrorError, message: /exists already/ });
  await t.throwsAsync(m.write(0, Buffer.alloc(100)), { instanceOf: RangeError, message: /whole 512-byte blocks/ });
  await t.throwsAsync(m.write(BLOCKS - 1, Buffer.alloc(1024)), { instanceOf: RangeError, message: /not within/ });
  t.throws(() => m.read(-1, 1), { instanceOf: RangeError });
  await t.throwsAsync(m.resync(), { instanceOf: MirrorError, message: /is duplex \(needs split or suspended\)/ });
  await t.throwsAsync(m.copyToThird(), { instanceOf: MirrorError, message: /no third area/ });
  await t.throwsAsync(m.finishBackup(), { instanceOf: MirrorError, message: /no backup is in progress/ });
  await t.throwsAsync(m.prepareBackup(''), { instanceOf: MirrorError, message: /initiator name/ });
  await m.split();
  await t.throwsAsync(m.split(), { instanceOf: MirrorError, message: /is split/ });
  t.is(m.dirtyTracks, 0, 'the refusals recorded nothing');
  const good = fs.readFileSync(r.statePath, 'utf8');
  fs.writeFileSync(r.statePath, good.slice(0, 40));
  await t.throwsAsync(Mirror.open(r.c, { statePath: r.statePath }), { instanceOf: MirrorError, message: /not valid JSON/ });
  fs.writeFileSync(r.statePath, good.replace(/"dirty": "[^"]*"/, '"dirty": "AA=="'));
  await t.throwsAsync(Mirror.open(r.c, { statePath: r.statePath }), { instanceOf: MirrorError, message: /dirty bitmap is not 8 bytes/ });
  fs.writeFileSync(r.statePath, good);
  t.is((await Mirror.open(r.c, { statePath: r.statePath })).state, 'split', 'the good file still opens');
});
