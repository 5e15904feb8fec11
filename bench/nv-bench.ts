// NV benchmark (docs/bench.md, "NV writes"): 4 KiB random writes with nv.sync off and on, in-process
// and over TCP, and 4 KiB read hits on one session while another session writes — the reads show
// whether NV writes hold up the array's thread. With --baseline=<git ref> the same measurements
// run against that commit's harness and firmware in the same run, and each row gets the ratio
// current / baseline. One JSON document on stdout, progress on stderr.
//   npm run bench -- nv [--quick] [--baseline=<ref>] [--cases=write4kQd1,write4kQd32,readHits]
//                       [--only=inproc,tcp] [--sync=off,on]
//
// Each build is measured in a child process of its own (a fresh heap, its own libuv pool), the
// builds alternating for each nv.sync setting so that a change in the machine's load falls on both.
// The baseline is the commit's tree (git archive) in the temporary folder with this tree's
// node_modules linked in and its firmware built there; it is kept for the next run.
//
// The array: release image, real-time mode, one channel IOP and the disk IOP, four 128 MiB RAM
// media, one 256 MiB volume striped over them, a 64 MiB cache; the NV file and its journal in the
// temporary folder (a disk, so that fdatasync costs what it costs: see nvFileSystem). The working
// set is the first 16 MiB of the volume, written and synchronized first; reads hit the cache.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { Worker } from 'worker_threads';
import { performance } from 'perf_hooks';
import { ScsiClient } from '../host/client';
import { NvWriter, RECORD } from '../hal/nv-writer';
import * as scsi from '../lib/scsi';
import type { CommandTransport, ScsiCommand } from '../lib/transport';
import { runCase, lbaSource, RemoteInitiator, machine, round1, round3, UsageError, CaseSpec, CaseResult, Plan } from './scsi-bench';
import { guard, baselineTree, git } from './peers';

const MiB = 1 << 20;
const BLOCK_BYTES = 512;
const LUN = 1;
const WORKING_SET_BYTES = 16 * MiB;
const WRITE_LOAD_DEPTH = 32;
const ROOT = path.resolve(__dirname, '..');

const WRITES: CaseSpec[] = [
  { key: 'write4kQd1', write: true, bytes: 4096, depth: 1, pattern: 'random' },
  { key: 'write4kQd32', write: true, bytes: 4096, depth: 32, pattern: 'random' },
];
const READ_HIT: CaseSpec = { key: 'read4kQd1', write: false, bytes: 4096, depth: 1, pattern: 'random' };

function progress(msg: string): void { process.stderr.write(`bench nv: ${msg}\n`); }

interface Measured {
  inproc: Record<string, CaseResult>;
  tcp: Record<string, CaseResult>;
  /** read4kQd1 on one session alone, then while another session keeps WRITE_LOAD_DEPTH writes in flight. */
  readHits?: { alone: CaseResult; besideWrites: CaseResult; writesBesideIops: number };
  nvFile: string;
}

/** What to measure (--cases, --only). */
interface Selection { cases: string[]; where: string[] }
const ALL: Selection = { cases: [...WRITES.map((w) => w.key), 'readHits'], where: ['inproc', 'tcp'] };

// ---- One build, in a child process -----------------------------------------------------------------

interface EmulatorLike {
  connect(): CommandTransport;
  array(): { targets: Array<{ port: string; target: string }> };
  stop(how?: 'graceful' | 'powerFail'): Promise<void>;
}
type EmulatorClass = { start(topology: object, o: { debug: boolean }): Promise<EmulatorLike> };

function topology(dir: string, sync: boolean): object {
  return {
    mode: 'realtime', seed: 1,
    arrays: [{
      name: 'nvbench', dir, cache: { size: '64MiB' }, nv: { sync },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      // 128 MiB each: a 256 MiB volume over four, with room for each medium's label chunk.
      media: Array.from({ length: 4 }, (_, i) => ({ name: `ram${i}`, kind: 'ram', size: '128MiB' })),
      ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 't0', iop: 0, transport: 'tcp', host: '127.0.0.1', port: 0 }],
    }],
  };
}

/** Keeps `depth` random 4 KiB writes in flight on t until stop.now; returns the writes done. */
async function writeLoad(t: CommandTransport, plan: Plan, stop: { now: boolean }): Promise<number> {
  const spec = WRITES[1];
  const nextLba = lbaSource(spec, { ...plan, seed: plan.seed ^ 0x77 });
  let done = 0;
  const slot = async (i: number): Promise<void> => {
    const cdb = scsi.readWrite10(true, 0, spec.bytes / BLOCK_BYTES);
    const command: ScsiCommand = { lun: LUN, cdb, dataOut: Buffer.alloc(spec.bytes, 0xa5 ^ i) };
    while (!stop.now) {
      cdb.writeUInt32BE(nextLba(), 2);
      const r = await t.submit(command);
      if (r.status !== 0) throw new scsi.ScsiError(r.status, r.sense.length ? scsi.decodeSense(r.sense) : undefined, cdb[0]);
      done++;
    }
  };
  await Promise.all(Array.from({ length: WRITE_LOAD_DEPTH }, (_, i) => slot(i)));
  return done;
}

async function measure(harness: string, sync: boolean, plan: Plan, sel: Selection): Promise<Measured> {
  const { Emulator } = require(path.join(harness, 'harness')) as { Emulator: EmulatorClass };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-bench-nv-'));
  const unguard = guard(() => fs.rmSync(dir, { recursive: true, force: true }));
  const emu = await Emulator.start(topology(dir, sync), { debug: false });
  try {
    const q = emu.connect();
    const client = new ScsiClient(q);
    const v = await client.createVolume({ name: 'nvbench', blocks: 256 * MiB / BLOCK_BYTES, blockSize: BLOCK_BYTES, placement: 'striped', media: [0, 1, 2, 3] });
    await client.mapVolume(v.number, scsi.ALL_PORTS, LUN);
    progress(`${harness === ROOT ? 'this tree' : `baseline ${harness}`}, nv.sync ${sync}: prefilling ${WORKING_SET_BYTES / MiB} MiB`);
    const chunk = Buffer.alloc(MiB, 0x3c);
    for (let at = 0; at < WORKING_SET_BYTES; at += MiB) await client.write(LUN, at / BLOCK_BYTES, chunk);
    await client.synchronizeCache(LUN);
    const out: Measured = { inproc: {}, tcp: {}, nvFile: path.join(dir, 'nvram.bin') };
    const chosen = WRITES.filter((w) => sel.cases.includes(w.key));
    for (const spec of sel.where.includes('inproc') ? chosen : []) {
      progress(`  inproc ${spec.key}`);
      out.inproc[spec.key] = await runCase(q, spec, plan);
      await client.synchronizeCache(LUN);
    }
    if (sel.where.includes('tcp') && chosen.length > 0) {
      const remote = new RemoteInitiator(emu.array().targets.find((x) => x.port === 't0')!.target);
      try {
        await remote.ready();
        for (const spec of chosen) {
          progress(`  tcp ${spec.key}`);
          out.tcp[spec.key] = await remote.run(spec, plan);
          await client.synchronizeCache(LUN);
        }
      } finally {
        await remote.close();
      }
    }
    if (!sel.cases.includes('readHits')) return out;
    progress('  read hits alone, then beside writes');
    const reader = emu.connect();
    const alone = await runCase(reader, READ_HIT, plan);
    const stop = { now: false };
    const t0 = performance.now();
    const load = writeLoad(q, plan, stop);
    const besideWrites = await runCase(reader, READ_HIT, plan);
    stop.now = true;
    const writes = await load;
    out.readHits = { alone, besideWrites, writesBesideIops: Math.round(writes / ((performance.now() - t0) / 1000)) };
    return out;
  } finally {
    await emu.stop('graceful');
    fs.rmSync(dir, { recursive: true, force: true });
    unguard();
  }
}

// ---- Thread hand-offs (docs/design-notes.md) -------------------------------------------------------

interface Hops {
  /** A 4 KiB fs.write on libuv's pool, submit to callback, one at a time: mean µs. */
  poolWriteUs: number;
  /** The same two writes (4 KiB and 64 B, not adjacent) one after the other on the pool. */
  poolTwoWritesUs: number;
  /** A job of those two writes on the NV writer thread, post to reply. */
  writerTwoWritesUs: number;
  /** The same two writes with blocking calls on this thread. */
  syncTwoWritesUs: number;
  /** Starting a writer thread until its first reply, ms (a new one: none idle). */
  writerStartMs: number;
  /** A job with nothing to do on the writer (shared memory and Atomics), post to reply. */
  writerEmptyJobUs: number;
  /** The same hand-off done with postMessage to an echoing worker thread, for comparison. */
  postMessageEchoUs: number;
}

export async function hops(n: number): Promise<Hops> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-bench-hops-'));
  const fd = fs.openSync(path.join(dir, 'f'), 'w+');
  const buf = new SharedArrayBuffer(1 << 16);
  const u8 = new Uint8Array(buf);
  const write = (at: number, len: number) => new Promise<void>((r, j) => fs.write(fd, u8, 0, len, at, (e) => (e ? j(e) : r())));
  const timed = async (f: () => Promise<void> | void): Promise<number> => {
    for (let i = 0; i < n / 10; i++) await f();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await f();
    return round1(((performance.now() - t0) * 1000) / n);
  };
  try {
    const view = new DataView(buf);
    view.setUint32(RECORD.HEADER_BYTES, 0, true);
    view.setUint32(RECORD.HEADER_BYTES + 4, 4096, true);
    view.setUint32(RECORD.HEADER_BYTES + 8 + 4096, 1 << 20, true);
    view.setUint32(RECORD.HEADER_BYTES + 8 + 4096 + 4, 64, true);
    const t0 = performance.now();
    const fresh = new NvWriter({ fresh: true });
    const job = { buf, cut: new SharedArrayBuffer(4), image: fd, journal: -1, entries: 2, steps: [{ op: 'apply' as const, from: 0, to: 2 }] };
    await fresh.run(job);
    const writerStartMs = round1(performance.now() - t0);
    const echo = new Worker("require('worker_threads').parentPort.on('message', (m) => require('worker_threads').parentPort.postMessage(m))", { eval: true, execArgv: [] });
    const echoOnce = () => new Promise<void>((r) => { echo.once('message', () => r()); echo.postMessage(1); });
    const empty = { ...job, steps: [] };
    const out: Hops = {
      writerEmptyJobUs: await timed(async () => { await fresh.run(empty); }),
      postMessageEchoUs: await timed(echoOnce),
      poolWriteUs: await timed(() => write(0, 4096)),
      poolTwoWritesUs: await timed(async () => { await write(0, 4096); await write(1 << 20, 64); }),
      writerTwoWritesUs: await timed(async () => { await fresh.run(job); }),
      syncTwoWritesUs: await timed(() => { fs.writeSync(fd, u8, 0, 4096, 0); fs.writeSync(fd, u8, 0, 64, 1 << 20); }),
      writerStartMs,
    };
    fresh.release();
    await echo.terminate();
    return out;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- The builds ------------------------------------------------------------------------------------

/** The file system the temporary folder is on (the NV file's): fdatasync is free on tmpfs. */
function fileSystemOf(dir: string): string {
  const mounts = fs.readFileSync('/proc/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '));
  const real = fs.realpathSync(dir);
  const m = mounts.filter((x) => real === x[1] || real.startsWith(x[1].endsWith('/') ? x[1] : `${x[1]}/`)).sort((a, b) => b[1].length - a[1].length)[0];
  return m ? `${m[2]} (${m[0]} on ${m[1]})` : 'unknown';
}

function child(harness: string, sync: boolean, quick: boolean, sel: Selection): Promise<Measured> {
  const args = ['-r', 'ts-node/register/transpile-only', __filename, '--child', `--harness=${harness}`, `--sync=${sync}`,
    `--select=${JSON.stringify(sel)}`, ...(quick ? ['--quick'] : [])];
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const unguard = guard(() => proc.kill('SIGKILL'));
  let out = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => proc.once('exit', (code) => {
    unguard();
    if (code === 0) resolve(JSON.parse(out) as Measured);
    else reject(new Error(`measuring ${harness} with nv.sync ${sync}: the child exited with ${code}`));
  }));
}

function plan(quick: boolean): Plan {
  return { roundMs: quick ? 150 : 400, rounds: quick ? 3 : 5, lun: LUN, workingSetBytes: WORKING_SET_BYTES, seed: 0x5eed };
}

type Row = { iops: number; p99Us?: number } | undefined;
function ratioOf(a: Row, b: Row): number | null { return a && b && b.iops > 0 ? round3(a.iops / b.iops) : null; }

/** current / baseline for every row that both have. */
function ratios(cur: Record<string, Measured>, base: Record<string, Measured>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const sync of Object.keys(cur)) {
    const c = cur[sync], b = base[sync];
    for (const where of ['inproc', 'tcp'] as const) for (const k of Object.keys(c[where])) out[`${sync}.${where}.${k}`] = ratioOf(c[where][k], b[where][k]);
    if (!c.readHits || !b.readHits) continue;
    out[`${sync}.readHitsBesideWrites`] = ratioOf(c.readHits.besideWrites, b.readHits.besideWrites);
    out[`${sync}.readHitsBesideWrites.p99 (baseline / current)`] = c.readHits.besideWrites.p99Us > 0 ? round1(b.readHits.besideWrites.p99Us / c.readHits.besideWrites.p99Us) : null;
  }
  return out;
}

export async function run(args: string[]): Promise<object> {
  const bad = args.filter((a) => a !== '--quick' && !/^--(baseline|cases|only|sync)=/.test(a));
  if (bad.length) throw new UsageError(`unknown argument ${bad.join(' ')} (known: --quick --baseline=<git ref> --cases=${ALL.cases.join(',')} --only=inproc,tcp --sync=off,on)`);
  const quick = args.includes('--quick');
  const list = (name: string, all: string[]): string[] => {
    const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',') ?? all;
    const unknown = v.filter((x) => !all.includes(x));
    if (unknown.length) throw new UsageError(`--${name}: unknown ${unknown.join(', ')} (known: ${all.join(', ')})`);
    return v;
  };
  const sel: Selection = { cases: list('cases', ALL.cases), where: list('only', ALL.where) };
  const syncs = list('sync', ['off', 'on']).map((x) => x === 'on');
  const ref = args.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
  const started = performance.now();
  const base = ref ? baselineTree(ref, progress) : undefined;
  const current: Record<string, Measured> = {};
  const baseline: Record<string, Measured> = {};
  for (const sync of syncs) {
    const key = sync ? 'syncOn' : 'syncOff';
    if (base) baseline[key] = await child(base.dir, sync, quick, sel);
    current[key] = await child(ROOT, sync, quick, sel);
  }
  const p = plan(quick);
  progress('thread hand-offs');
  const handOffs = await hops(quick ? 2000 : 20000);
  return {
    benchmark: 'nv', date: new Date().toISOString(), machine: machine(),
    command: `npm run bench -- nv${args.length ? ` ${args.join(' ')}` : ''}`,
    method: `each case: one warm-up round, then the median of ${p.rounds} rounds of ${p.roundMs} ms, closed loop at the stated queue depth; `
      + `readHits.besideWrites: read4kQd1 on one in-process session while another keeps ${WRITE_LOAD_DEPTH} 4 KiB random writes in flight. `
      + 'Each build in a child process of its own, the builds alternating per nv.sync setting.',
    array: 'release image, realtime, 1 channel IOP + disk IOP, 4 x 128 MiB RAM media, 256 MiB striped volume, 64 MiB cache, '
      + `working set ${WORKING_SET_BYTES / MiB} MiB (reads hit)`,
    nvFileSystem: fileSystemOf(os.tmpdir()),
    handOffs,
    current: { tree: ROOT, commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '', ...current },
    ...(base ? { baseline: { ref, commit: base.commit, ...baseline }, ratios: ratios(current, baseline) } : {}),
    seconds: round1((performance.now() - started) / 1000),
  };
}

if (require.main === module && process.argv.includes('--child')) {
  const harness = process.argv.find((a) => a.startsWith('--harness='))!.slice('--harness='.length);
  const sync = process.argv.includes('--sync=true');
  const sel = JSON.parse(process.argv.find((a) => a.startsWith('--select='))!.slice('--select='.length)) as Selection;
  measure(harness, sync, plan(process.argv.includes('--quick')), sel).then(
    (m) => process.stdout.write(JSON.stringify(m), () => process.exit(0)),
    (e: Error) => { process.stderr.write(`bench nv: ${e.stack ?? e}\n`); process.exit(1); },
  );
}
