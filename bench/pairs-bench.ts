// Volume pairs benchmark (issue 9, "Measured"): `npm run bench -- pairs [--quick]`, one JSON document.
//
// Every case runs the firmware in deterministic mode and measures in virtual time (docs/topology.md,
// Deterministic mode), so a figure is a function of the firmware and the timing model, not of how busy
// the machine is; wall-clock seconds are reported beside them for the record.
//
// 1. splitLatency: a pair of two 64 MiB volumes is made duplex; for each pending share (0, 1, 10, 50 %)
//    that share of tracks is written while split, the pair resynced and split again at once, so the
//    split meets that many tracks pending; then resynced and split again `splits` times more at once
//    (nothing is written between, so the same difference is pending, less what the copy finished
//    meanwhile). Split latency = virtual time from the command's submission to its status. Virtual
//    time moves 1 us per busy round; a split is taken in the round after its previous answer's
//    delivery and answered in the next once its record is in NV (2 us, docs/bench.md): the mean of
//    repeats x splits samples per level (45-180) is what the ratio compares, and the ratio of the
//    50 % level to the 10 % level says whether it grows with the difference.
//    Target: largest / smallest <= 1.5.
// 2. resyncBytes: the same resyncs, run to duplex: bytes the firmware's copy wrote (PAIR STATUS
//    copied bytes) against dirty tracks x track size, and the same for the host mirror middleware
//    (host/mirror.ts) on the same workload. Target: exactly equal.
// 3. hostWriteIops: 4 KiB random writes at depth 8 to a 256 MiB volume on a file medium with a disk
//    timing model (7200 rpm, 4 ms average seek, 150 MB/s), cache 16 MiB so the load is destage-bound;
//    the same load for the same virtual time with no pair, then while the pair's creation copy runs (the
//    target on a second disk of the same model). Target: with copy / without >= 0.90.
// 4. serverFreeBackup: one array, two disks of the same model, a 4 MiB cache: the 4 KiB random-write
//    load at depth 8 for 0.5 s of virtual time on a 64 MiB volume of the first disk with no backup (and
//    again after the backups, a second look at the peer), then the same load beside a
//    server-free backup (EXTENDED COPY, `sanctl backup`'s host/backup.ts) of a 16 MiB (--quick) or
//    32 MiB volume on the second disk, as document 001 places the backed-up volume, to an LTO-5 drive
//    (140 MB/s) of the array's library; the backup server polls COPY STATUS every 10 ms of virtual
//    time. The load starts once the copy runs (its first COPY STATUS); the backup outlasts it and then
//    runs alone to its end. Then a backup of a range (not record-aligned) with nothing else running.
//    Figures: host IOPS with backup / without (target >= 0.90), the bytes the backup moved during the
//    load, each backup's throughput as a fraction of the drive's streaming rate, and the bytes of the
//    volume's file read back from each cartridge's AWS image against the volume's and the range's bytes.
//    test/xcopy/host-load.test.ts measures the same at 8 MiB. The backup server's pause waits for the
//    load's clock only until the load ends, then advances the clock itself: before, every COPY STATUS
//    re-armed the wait after the load, and the server spun on setImmediate for a virtual time that
//    nothing advanced (the array idle, the clock held; the whole 256 MiB copy done), for ever.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Emulator } from '../harness';
import { ScsiClient } from '../host/client';
import { Mirror } from '../host/mirror';
import { TapeLibrary } from '../host/tape';
import { backupVolume } from '../host/backup';
import { AwsImage } from '../hal/tape/aws';
import * as scsi from '../lib/scsi';
import { guard } from './peers';

const MiB = 1 << 20;
const TRACK = 65536;
const DISK_TIMING = { seekMs: { track: 0.5, average: 4, full: 9 }, rpm: 7200, transferMBps: 150 };

class UsageError extends Error {
  constructor(m: string) { super(m); this.name = 'UsageError'; }
}

function progress(msg: string): void { process.stderr.write(`bench pairs: ${msg}\n`); }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }

interface Array0 { emu: Emulator; c: ScsiClient; dir: string; now: () => number }

async function boot(label: string, media: object[], cacheSize: string, library?: object): Promise<Array0> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sanbox-bench-pairs-${label}-`));
  const emu = await Emulator.start({
    mode: 'deterministic', seed: 9,
    arrays: [{
      name: 'a0', dir, cache: { size: cacheSize, destageIntervalMs: 2, destageAgeMs: 5 },
      iops: [{ role: 'channel' }, { role: 'disk' }], media, ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
      ...(library ? { library } : {}),
    }],
  }, { debug: false });
  return { emu, c: new ScsiClient(emu.connect()), dir, now: () => emu.driver().now() };
}

async function done(a: Array0): Promise<void> {
  await a.emu.stop();
  fs.rmSync(a.dir, { recursive: true, force: true });
}

async function volume(a: Array0, name: string, bytes: number, medium: number, lun: number): Promise<number> {
  const v = await a.c.createVolume({ name, blocks: bytes / 512, blockSize: 512, media: [medium] });
  await a.c.mapVolume(v.number, scsi.ALL_PORTS, lun);
  return v.number;
}

async function pairUntil(a: Array0, volume: number, ok: (p: scsi.PairStatus) => boolean, what: string): Promise<scsi.PairStatus> {
  for (let i = 0; i < 100_000; i++) {
    const p = await a.c.pairOf(volume);
    if (ok(p)) return p;
    await a.emu.advance(5);
  }
  throw new Error(`the pair of volume ${volume} never reached ${what} in 500 s of virtual time`);
}

/** Distinct tracks drawn from a seeded xorshift. */
function tracksOf(count: number, total: number, seed: number): number[] {
  const all = Array.from({ length: total }, (_, i) => i);
  let x = seed >>> 0 || 1;
  for (let i = total - 1; i > 0; i--) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const j = x % (i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count).sort((p, q) => p - q);
}

// ---- 1 and 2: split latency and resync bytes ------------------------------------------------------

interface Level {
  pendingPercent: number; pendingAtSplit: number; minPendingAtSplit: number; splitNs: number; splits: number;
  dirtyTracks: number; firmwareResyncBytes: number; mirrorResyncBytes: number; expectedBytes: number;
}

async function splitAndResync(quick: boolean): Promise<{ levels: Level[]; trackBytes: number; tracks: number }> {
  const bytes = (quick ? 32 : 64) * MiB;
  const tracks = bytes / TRACK;
  const repeats = quick ? 5 : 9;
  const splits = quick ? 9 : 20;
  const a = await boot('split', [{ name: 'd0', kind: 'file', size: `${bytes / MiB + 1}MiB` }, { name: 'd1', kind: 'file', size: `${(2 * bytes) / MiB + 1}MiB` },
    { name: 'd2', kind: 'file', size: `${bytes / MiB + 1}MiB` }], '32MiB');
  try {
    const src = await volume(a, 'src', bytes, 0, 1);
    const tgt = await volume(a, 'tgt', bytes, 1, 2);
    const mp = await volume(a, 'mp', bytes, 2, 3);
    const ms = await volume(a, 'ms', bytes, 1, 4);
    progress(`pair of ${bytes / MiB} MiB: creation copy`);
    await a.c.pairCreate(src, tgt);
    await pairUntil(a, src, (p) => p.state === 'duplex' && p.pendingTracks === 0, 'duplex');
    const mirror = await Mirror.create(a.c, { primary: { lun: 3, volume: mp }, secondary: { lun: 4, volume: ms }, statePath: path.join(a.dir, 'mirror.json') });
    const levels: Level[] = [];
    for (const pct of [0, 1, 10, 50]) {
      const n = Math.round((tracks * pct) / 100);
      const samples: number[] = [];
      const pendings: number[] = [];
      let last: Omit<Level, 'splitNs' | 'splits' | 'minPendingAtSplit'> | undefined;
      for (let rep = 0; rep < repeats; rep++) {
        await a.c.pairSplit(src);
        await pairUntil(a, src, (p) => p.state === 'split', 'split');
        await mirror.split();
        const dirty = tracksOf(n, tracks, 1000 * pct + rep + 1);
        const data = Buffer.alloc(4096, pct + rep);
        for (const t of dirty) { await a.c.write(1, t * (TRACK / 512), data); await mirror.write(t * (TRACK / 512), data); }
        const before = await a.c.pairOf(src);
        await a.c.pairResync(src); // every dirty track pending now
        const pendingAtSplit = (await a.c.pairOf(src)).pendingTracks;
        for (let k = 0; k < splits; k++) {
          if (k > 0) await a.c.pairResync(src); // split pending -> duplex pending: the same tracks pending
          pendings.push((await a.c.pairOf(src)).pendingTracks);
          const t0 = a.now();
          await a.c.pairSplit(src);
          samples.push(a.now() - t0);
        }
        const after = await pairUntil(a, src, (p) => p.state === 'split' && p.pendingTracks === 0, 'split after the pending copy');
        const report = await mirror.resync();
        last = { pendingPercent: pct, pendingAtSplit, dirtyTracks: before.sourceChangedTracks, firmwareResyncBytes: after.copiedBytes - before.copiedBytes, mirrorResyncBytes: report.bytes, expectedBytes: n * TRACK };
        // back to duplex for the next round
        await a.c.pairResync(src);
        await pairUntil(a, src, (p) => p.state === 'duplex' && p.pendingTracks === 0, 'duplex');
      }
      const mean = samples.reduce((x, y) => x + y, 0) / samples.length;
      const minPendingAtSplit = Math.min(...pendings);
      levels.push({ ...last!, splitNs: mean, splits: samples.length, minPendingAtSplit });
      progress(`${pct} %: ${minPendingAtSplit}-${Math.max(...pendings)} tracks pending at the splits, split ${mean} ns `
        + `(virtual, mean of ${samples.length}; ${[1000, 2000, 3000].map((ns) => `${samples.filter((x) => x === ns).length} x ${ns / 1000} us`).join(', ')})`);
    }
    return { levels, trackBytes: TRACK, tracks };
  } finally {
    await done(a);
  }
}

// ---- 3: host IOPS during the creation copy ---------------------------------------------------------

async function writeLoad(a: Array0, lun: number, blocks: number, seconds: number, depth: number): Promise<number> {
  const end = a.now() + seconds * 1e9;
  let x = 0x9e3779b9;
  let commands = 0;
  const data = Buffer.alloc(4096, 0x5a);
  const units = blocks / 8;
  const slot = async (): Promise<void> => {
    while (a.now() < end) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      await a.c.write(lun, (x % units) * 8, data);
      commands++;
    }
  };
  const t0 = a.now();
  await Promise.all(Array.from({ length: depth }, slot));
  return commands / ((a.now() - t0) / 1e9);
}

async function iopsDuringCopy(quick: boolean): Promise<object> {
  const bytes = 256 * MiB;
  const seconds = quick ? 1 : 3;
  const depth = 8;
  const media = [0, 1].map((i) => ({ name: `d${i}`, kind: 'file', size: `${bytes / MiB + 1}MiB`, timing: DISK_TIMING }));
  type Case = 'none' | 'copy' | 'splitPair';
  const run = async (kind: Case): Promise<{ iops: number; pendingAtEnd?: number; copiedTracks?: number; wallSeconds: number }> => {
    const withCopy = kind === 'copy';
    const a = await boot(kind, media, '16MiB');
    try {
      const src = await volume(a, 'src', bytes, 0, 1);
      const tgt = await volume(a, 'tgt', bytes, 1, 2);
      if (kind === 'splitPair') {
        // A pair that copies nothing (made over blank volumes, then split): what a source write costs
        // in the pair (its difference bit persisted in NV) without any copy beside it.
        await a.c.pairCreate(src, tgt);
        await pairUntil(a, src, (p) => p.state === 'duplex', 'duplex');
        await a.c.pairSplit(src);
        await pairUntil(a, src, (p) => p.state === 'split', 'split');
      }
      // The source holds data everywhere, so the creation copy has every track to stage and write.
      const fill = Buffer.alloc(MiB, 0x33);
      for (let off = 0; off < bytes; off += MiB) await a.c.write(1, off / 512, fill);
      await a.c.synchronizeCache(1);
      await a.emu.advance(200);
      const w0 = Date.now();
      if (withCopy) await a.c.pairCreate(src, tgt);
      const iops = await writeLoad(a, 1, bytes / 512, seconds, depth);
      const wallSeconds = (Date.now() - w0) / 1000;
      if (!withCopy) return { iops: Math.round(iops), wallSeconds };
      // (the split pair's case returns above too: nothing of it is copying)
      const p = await a.c.pairOf(src);
      return { iops: Math.round(iops), pendingAtEnd: p.pendingTracks, copiedTracks: p.copiedTracks, wallSeconds };
    } finally {
      await done(a);
    }
  };
  progress(`4 KiB random writes, depth ${depth}, ${seconds} s of virtual time, no copy`);
  const without = await run('none');
  progress(`the same while the creation copy runs`);
  const withCopy = await run('copy');
  progress(`the same on the source of a split pair (difference bits, no copy)`);
  const splitPair = await run('splitPair');
  if ((withCopy.pendingAtEnd ?? 0) === 0) progress('warning: the creation copy ended before the load did');
  return {
    volumeBytes: bytes, depth, virtualSeconds: seconds, timing: DISK_TIMING, cache: '16MiB',
    withoutCopy: without, withCopy, splitPairNoCopy: splitPair, ratio: round3(withCopy.iops / without.iops), target: 0.9,
    splitPairRatio: round3(splitPair.iops / without.iops),
  };
}

// ---- 4: host IOPS during a server-free backup, the backup's rate, a range backup's bytes -------------

/** Bytes of the volume's file (the fifth logical file: VOL1/HDR, VOLINFO, EOF, HDR, data) on a cartridge's AWS image (the array's dir holds the library's). */
async function tapeDataBytes(dir: string, barcode: string): Promise<number> {
  const img = await AwsImage.open(path.join(dir, 'library0', `${barcode}.aws`));
  try {
    return img.objects.filter((o) => !o.mark && o.marks === 4).reduce((n, o) => n + o.length, 0);
  } finally {
    img.close();
  }
}

async function iopsDuringBackup(quick: boolean): Promise<object> {
  // Sizes are bounded so the whole case runs in virtual time in a couple of minutes of wall time: the
  // host's volume is 16 times the cache (the load is destage-bound), the backed-up volume big enough
  // that the backup outlasts the load at the source disk's rate (about 10 MB/s, one 64 KiB slot per access).
  const hostBytes = 64 * MiB;
  const dataBytes = (quick ? 16 : 32) * MiB;
  const cache = '4MiB';
  const seconds = 0.5;
  const depth = 8;
  const streamMBps = 140;
  // the range: not aligned to a record, so the copy writes a last short record too
  const range = { lba: 3 * 2048 + 7, blocks: (quick ? 4 : 8) * 2048 + 13 };
  const media = [0, 1].map((i) => ({ name: `d${i}`, kind: 'file', size: `${Math.max(hostBytes, dataBytes) / MiB + 1}MiB`, timing: DISK_TIMING }));
  const library = {
    slots: 3, importExport: 1, drives: [{ name: 'drive0' }],
    timing: { loadMs: 1, unloadMs: 1, moveMs: 1, streamMBps },
    cartridges: ['BK0001L5', 'BK0002L5'].map((barcode) => ({ barcode, size: `${dataBytes / MiB + 16}MiB` })),
  };
  const a = await boot('backup', media, cache, library);
  try {
    await volume(a, 'host', hostBytes, 0, 1);
    const data = await volume(a, 'data', dataBytes, 1, 2);
    const fill = Buffer.alloc(MiB, 0x33);
    for (let off = 0; off < dataBytes; off += MiB) await a.c.write(2, off / 512, fill);
    await a.c.synchronizeCache(2);
    await a.emu.advance(200);
    const lib = new TapeLibrary(a.c.transport);
    const w0 = Date.now();

    progress(`4 KiB random writes, depth ${depth}, ${seconds} s of virtual time, no backup`);
    const alone = await writeLoad(a, 1, hostBytes / 512, seconds, depth);
    await a.c.synchronizeCache(1);
    await a.emu.advance(200);

    progress(`the same while a server-free backup of a ${dataBytes / MiB} MiB volume (second disk) runs to an LTO-5 drive`);
    // The backup server polls COPY STATUS every 10 ms of virtual time: while the load moves the clock
    // it waits for the clock to pass that (or for the load to end), then it advances the clock itself.
    let loading = false;
    let loaded = false;
    let moved = 0;
    let started: () => void = () => undefined;
    const first = new Promise<void>((resolve) => { started = resolve; });
    let loadEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => { loadEnded = resolve; });
    const driver = a.emu.driver();
    const pause = async (): Promise<void> => {
      if (!loading) { await a.emu.advance(10); return; }
      await Promise.race([driver.passed!(driver.now() + 10e6), ended]);
    };
    const t0 = a.now();
    const backup = backupVolume(a.c, lib, { // one nexus: the RESERVE it takes is its own
      volume: data, tape: 'BK0001L5', pause, onProgress: (b) => { moved = b; if (!loaded) { loading = true; started(); } },
    });
    await Promise.race([first, backup]); // the copy runs (its first COPY STATUS)
    const atStart = moved;
    const l0 = a.now();
    const beside = await writeLoad(a, 1, hostBytes / 512, seconds, depth);
    const atEnd = moved;
    const l1 = a.now();
    loading = false;
    loaded = true;
    loadEnded();
    const whole = await backup;
    const t1 = a.now();

    progress(`a backup of the range ${range.lba}+${range.blocks} blocks with nothing else running`);
    const r0 = a.now();
    const ranged = await backupVolume(a.c, lib, { volume: data, tape: 'BK0002L5', range, pause: () => a.emu.advance(10) });
    const r1 = a.now();
    progress('the load alone again, after the backups (the same disk, a second look at the peer)');
    await a.c.synchronizeCache(1);
    await a.emu.advance(200);
    const after = await writeLoad(a, 1, hostBytes / 512, seconds, depth);
    const wallSeconds = (Date.now() - w0) / 1000;
    await a.emu.stop();
    const wholeOnTape = await tapeDataBytes(a.dir, 'BK0001L5');
    const rangeOnTape = await tapeDataBytes(a.dir, 'BK0002L5');
    const rangeBytes = range.blocks * 512;
    const fraction = (bytes: number, ns: number): number => round3(bytes / 1e6 / (ns / 1e9) / streamMBps);
    return {
      hostVolumeBytes: hostBytes, backupVolumeBytes: dataBytes, depth, virtualSeconds: seconds, timing: DISK_TIMING, cache, driveStreamMBps: streamMBps,
      hostWriteIops: {
        withoutBackup: { iops: Math.round(alone), iopsAfterBackups: Math.round(after) },
        withBackup: { iops: Math.round(beside), backupBytesDuringLoad: atEnd - atStart, backupMBpsDuringLoad: round3((atEnd - atStart) / 1e6 / ((l1 - l0) / 1e9)), backupRunningAtEnd: atEnd < whole.bytes },
        ratio: round3(beside / alone), ratioToAfter: round3(beside / after), target: 0.9,
        // The ratio means something only if the backup moved volume data while the load ran, and still ran when it ended.
        backupProgressedDuringLoad: atEnd - atStart >= 65536 && atEnd < whole.bytes, // a track at least: the labels alone are 1 KiB
      },
      backupThroughput: {
        // COPY STATUS counts the labels too; the last poll comes up to 10 ms after the copy ends
        whole: { bytes: whole.bytes, virtualSeconds: round3((t1 - t0) / 1e9), fractionOfStreaming: fraction(whole.bytes, t1 - t0), withHostLoadFor: seconds },
        range: { bytes: rangeBytes, virtualSeconds: round3((r1 - r0) / 1e9), fractionOfStreaming: fraction(rangeBytes, r1 - r0) },
      },
      backupBytes: {
        // read back from the cartridges' AWS images: the records of the volume's file
        whole: { expected: dataBytes, onTape: wholeOnTape, exact: wholeOnTape === dataBytes },
        range: { lba: range.lba, blocks: range.blocks, expected: rangeBytes, onTape: rangeOnTape, reported: ranged.bytes, exact: rangeOnTape === rangeBytes },
      },
      wallSeconds,
    };
  } finally {
    await a.emu.stop().catch(() => undefined);
    fs.rmSync(a.dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<object> {
  for (const a of args) if (a !== '--quick' && a !== '--only=backup') throw new UsageError(`bench pairs: unknown argument ${a} (known: --quick, --only=backup)`);
  const quick = args.includes('--quick');
  if (args.includes('--only=backup')) return { benchmark: 'pairs', quick, mode: 'deterministic (virtual time)', serverFreeBackup: await iopsDuringBackup(quick) };
  const unguard = guard(() => undefined);
  try {
    const w0 = Date.now();
    const split = await splitAndResync(quick);
    const lat = split.levels.map((l) => l.splitNs);
    const iops = await iopsDuringCopy(quick);
    const backup = await iopsDuringBackup(quick);
    return {
      benchmark: 'pairs', quick, mode: 'deterministic (virtual time)',
      splitLatency: {
        tracks: split.tracks, trackBytes: split.trackBytes,
        levels: split.levels.map((l) => ({
          pendingPercent: l.pendingPercent, pendingTracksAtSplit: l.pendingAtSplit, minPendingTracksAtSplit: l.minPendingAtSplit,
          splits: l.splits, splitUs: round3(l.splitNs / 1000),
        })),
        ratioLargestToSmallest: round3(Math.max(...lat) / Math.max(1, Math.min(...lat))), target: 1.5,
        // growth with the difference: 50 % pending against 10 % (the copy running at every split of both)
        ratio50To10Percent: round3(lat[3] / lat[2]),
      },
      resyncBytes: split.levels.map((l) => ({
        dirtyTracks: l.dirtyTracks, expected: l.expectedBytes, firmware: l.firmwareResyncBytes, mirror: l.mirrorResyncBytes,
        exact: l.firmwareResyncBytes === l.expectedBytes && l.mirrorResyncBytes === l.expectedBytes,
      })),
      hostWriteIopsDuringCopy: iops,
      serverFreeBackup: backup,
      wallSeconds: Math.round((Date.now() - w0) / 100) / 10,
    };
  } finally {
    unguard();
  }
}
