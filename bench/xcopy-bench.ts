// `npm run bench -- xcopy [--quick]`: server-free backup by EXTENDED COPY against the host reading
// the volume and writing the tape itself (document 001's background: the server's host bus adapter
// busy for the whole backup), with the same data, the same drive and the same transport (the
// in-process port), in real time; and the split latency of another pair while a backup runs.
//
//   serverFree / hostBased   MB/s of a whole-volume backup to a labelled tape, best of the runs,
//                            with a drive fast enough not to be the limit (the controller's cost)
//   lto                      the same server-free backup with the drive at an LTO-5-like 140 MB/s:
//                            throughput as a fraction of the drive's streaming rate
//   split                    PAIR SPLIT latency of a second pair, idle and while a backup runs
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Emulator } from '../harness';
import { ScsiClient } from '../host/client';
import { TapeLibrary, writeLabelledSet } from '../host/tape';
import { backupVolume, volumeInfoRecord } from '../host/backup';

const MiB = 1 << 20;

function progress(msg: string): void { process.stderr.write(`bench xcopy: ${msg}\n`); }

function topology(dir: string, streamMBps: number, volumeMiB: number): object {
  return {
    mode: 'realtime', seed: 1,
    arrays: [{
      name: 'a0', dir: path.join(dir, 'a0'),
      cache: { size: '64MiB', destageIntervalMs: 2, destageAgeMs: 5 },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'd0', kind: 'file', size: `${volumeMiB * 2 + 64}MiB` }, { name: 'd1', kind: 'file', size: `${volumeMiB * 2 + 64}MiB` }],
      ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
      library: {
        slots: 4, importExport: 1, drives: [{ name: 'drive0' }, { name: 'drive1' }],
        timing: { loadMs: 1, unloadMs: 1, moveMs: 1, streamMBps },
        cartridges: [{ barcode: 'BK0001L5', size: `${volumeMiB + 16}MiB` }, { barcode: 'BK0002L5', size: `${volumeMiB + 16}MiB` }],
      },
    }],
  };
}

interface Rig { emu: Emulator; c: ScsiClient; lib: TapeLibrary; dir: string }

async function boot(streamMBps: number, volumeMiB: number): Promise<Rig & { volume: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-bench-xcopy-'));
  const emu = await Emulator.start(topology(dir, streamMBps, volumeMiB));
  const t = emu.connect();
  const c = new ScsiClient(t);
  const port = await c.portIndex();
  const v = await c.createVolume({ name: 'data', blocks: volumeMiB * 2048, blockSize: 512, media: [0] });
  await c.mapVolume(v.number, port, 1);
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < volumeMiB; i++) { chunk.fill(i & 0xff); chunk.writeUInt32BE(i, 0); await c.write(1, i * 2048, chunk); }
  await c.synchronizeCache(1);
  return { emu, c, lib: new TapeLibrary(t), dir, volume: v.number };
}

async function stop(r: Rig): Promise<void> {
  await r.emu.stop();
  fs.rmSync(r.dir, { recursive: true, force: true });
}

/** The host reads the volume through the port and writes the same labelled set itself. */
async function hostBased(r: Rig & { volume: number }, volumeMiB: number): Promise<number> {
  const t0 = performance.now();
  const parts: Buffer[] = [];
  for (let i = 0; i < volumeMiB; i++) parts.push(await r.c.read(1, i * 2048, 2048));
  const drive = await r.lib.assign('BK0002L5');
  try {
    const info = volumeInfoRecord({ name: 'data', host: os.hostname(), mountPoint: '', created: new Date(), blocks: volumeMiB * 2048, blockSize: 512 });
    await writeLabelledSet(drive, [{ name: 'VOLINFO', data: info }, { name: 'DATA', data: Buffer.concat(parts) }], { blockBytes: 32768 });
  } finally { await drive.release(); }
  return performance.now() - t0;
}

async function serverFree(r: Rig & { volume: number }, tape = 'BK0001L5'): Promise<number> {
  const t0 = performance.now();
  await backupVolume(r.c, r.lib, { volume: r.volume, tape, pause: () => new Promise((x) => setTimeout(x, 5)) });
  return performance.now() - t0;
}

function mbps(volumeMiB: number, ms: number): number { return Math.round((volumeMiB * MiB / 1e6) / (ms / 1000) * 10) / 10; }

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }

/** Split then resync a second pair n times; the split latencies in ms. */
async function splits(r: Rig, source: number, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await r.c.pairSplit(source);
    out.push(performance.now() - t0);
    await r.c.pairResync(source);
    for (let k = 0; k < 1000 && (await r.c.pairOf(source)).state !== 'duplex'; k++) await new Promise((x) => setTimeout(x, 2));
  }
  return out;
}

export async function run(args: string[]): Promise<object> {
  const quick = args.includes('--quick');
  const volumeMiB = quick ? 32 : 256;
  const runs = quick ? 2 : 3;
  progress(`a ${volumeMiB} MiB volume, ${runs} runs each, alternating; drive at 100000 MB/s (not the limit)`);
  const fast = await boot(100_000, volumeMiB);
  const free: number[] = [];
  const host: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      free.push(await serverFree(fast));
      host.push(await hostBased(fast, volumeMiB));
      progress(`run ${i + 1}: server-free ${Math.round(free[i])} ms, host-based ${Math.round(host[i])} ms`);
    }
  } finally { await stop(fast); }
  progress('the same server-free backup with the drive at 140 MB/s');
  const lto = await boot(140, volumeMiB);
  let ltoMs: number;
  let idle: number[];
  let busy: number[];
  try {
    ltoMs = Math.min(await serverFree(lto), await serverFree(lto));
    // A second pair, split and resynced while a backup of the first volume runs.
    const port = await lto.c.portIndex();
    const a = await lto.c.createVolume({ name: 'pa', blocks: 32768, blockSize: 512, media: [1] });
    const b = await lto.c.createVolume({ name: 'pb', blocks: 32768, blockSize: 512, media: [1] });
    await lto.c.mapVolume(a.number, port, 2);
    await lto.c.mapVolume(b.number, port, 3);
    await lto.c.pairCreate(a.number, b.number);
    for (let k = 0; k < 5000 && (await lto.c.pairOf(a.number)).state !== 'duplex'; k++) await new Promise((x) => setTimeout(x, 2));
    const n = quick ? 10 : 30;
    idle = await splits(lto, a.number, n);
    const backup = serverFree(lto);
    busy = await splits(lto, a.number, n);
    await backup;
  } finally { await stop(lto); }
  const bestFree = Math.min(...free);
  const bestHost = Math.min(...host);
  return {
    benchmark: 'xcopy',
    volumeMiB,
    transport: 'inproc',
    serverFree: { runsMs: free.map(Math.round), bestMBps: mbps(volumeMiB, bestFree) },
    hostBased: { runsMs: host.map(Math.round), bestMBps: mbps(volumeMiB, bestHost) },
    ratioServerFreeToHost: Math.round((bestHost / bestFree) * 100) / 100,
    lto: { streamMBps: 140, MBps: mbps(volumeMiB, ltoMs), fractionOfStreaming: Math.round((mbps(volumeMiB, ltoMs) / 140) * 100) / 100 },
    split: {
      idleMedianMs: Math.round(median(idle) * 100) / 100,
      duringBackupMedianMs: Math.round(median(busy) * 100) / 100,
      ratio: Math.round((median(busy) / median(idle)) * 100) / 100,
    },
    note: 'real time, one machine: the host-based run moves every byte through the port twice (READ, then WRITE(6)); the server-free one moves none',
  };
}
