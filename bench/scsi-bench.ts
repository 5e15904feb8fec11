// SCSI benchmark: what an initiator gets from the controller, in-process, over TCP loopback and
// over iSCSI, beside tgtd (the Linux user-space iSCSI target) in the same run; the iSCSI cases use
// the same client on both targets: libiscsi's iscsi-perf. One JSON document on stdout, progress on
// stderr (docs/bench.md). Run:
//   npm run bench [-- --quick] [-- --no-tgtd] [-- --only=inproc,tcp,iscsi,tgtd] [-- --cases=read4kQd32,...]
//
// The array: the release firmware image in real-time mode, trace off; one channel IOP and the
// disk IOP; four 256 MiB RAM media; one volume of 1 GiB striped over them (64 KiB stripe unit,
// 512-byte blocks), mapped to LUN 1 of every port; a cache that holds the whole working set.
// Every case addresses only the first WORKING_SET_BYTES of the volume, written once and
// synchronized before the first case, so reads hit the cache (each read case reports the hit
// ratio the array counted).
//
// Method: a case keeps `depth` commands outstanding (closed loop, one CDB buffer per slot; LBAs
// from a seeded xorshift, 4 KiB aligned, or one sequential cursor shared by the slots), in rounds
// of ROUND_MS after one warm-up round; a round's rate is commands / time, and the median of ROUNDS
// rounds is reported with the slowest and fastest round. Latency is submit to completion as the
// initiator sees it, over every command of the measured rounds: mean and 99th percentile.
//
// In-process: a queue session (hal/channels/queue.ts) on the emulator's own thread. TCP: the
// framed protocol (host/connect.ts, host/framed.ts) from an initiator on a worker thread, so the
// initiator and the array each have an event loop, as iscsi-perf and tgtd are two processes; the
// 4 KiB reads are repeated with the initiator on the array's thread (tcpSameThread).
//
// iSCSI and tgtd: iscsi-perf against the array's own iSCSI port (a LUN of exactly the working set)
// and against tgtd (bench/peers.ts: a free portal and its own control port, so it never meets a
// system tgtd, one LUN backed by a file of WORKING_SET_BYTES in /dev/shm); iscsi-perf prints IOPS
// once a second, the first second is dropped and the median of the next ROUNDS is reported, and the
// target process's CPU time per I/O is read from /proc. iscsi-perf only reads, so these have no write
// rows. tgtd, its socket and the file are removed even on failure or a signal.

import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';
import { performance } from 'perf_hooks';
import { Emulator } from '../harness';
import { connect } from '../host/connect';
import { ScsiClient } from '../host/client';
import * as scsi from '../lib/scsi';
import { CommandTransport, ScsiCommand } from '../lib/transport';
import { guard, which, scratchRoot, cpuSeconds, findTgtd, startTgtd, stopTgtd, TGTD_IQN } from './peers';

const MiB = 1 << 20;
const BLOCK_BYTES = 512;
const VOLUME_BYTES = 1024 * MiB;
const WORKING_SET_BYTES = 128 * MiB;
const CACHE_SIZE = '256MiB';
const MEDIA = 4;
/** Room for the 1 GiB volume, the working-set volume of the iSCSI cases and the label chunk (chunk 0) of each medium. */
const MEDIA_BYTES = (VOLUME_BYTES + WORKING_SET_BYTES) / MEDIA + MiB;
const LUN = 1;
const TARGET_INPROC_READ4K_QD32_IOPS = 200_000;
const TARGET_TCP_VS_TGTD = 1.0;
const TARGET_ISCSI_VS_TGTD = 1.5;
/** The iSCSI cases read a LUN of exactly the working set (iscsi-perf addresses a whole LUN), as tgtd's. */
const PERF_LUN = 2;

export interface CaseSpec {
  key: string;
  write: boolean;
  bytes: number;
  depth: number;
  pattern: 'random' | 'sequential';
}

export interface Plan {
  roundMs: number;
  rounds: number;
  lun: number;
  workingSetBytes: number;
  seed: number;
}

export interface CaseResult {
  /** Commands per second: the median round. */
  iops: number;
  /** The slowest and the fastest round (the spread a noisy machine gives). */
  iopsRange: [number, number];
  /** 1e6 bytes per second at the median round. */
  MBps: number;
  meanUs: number;
  p99Us: number;
  /** Commands completed in the measured rounds. */
  commands: number;
  /** Reads: cache hits / lookups the array counted during the case (warm-up included). */
  cacheHitPercent?: number;
}

export const CASES: CaseSpec[] = [
  { key: 'read4kQd1', write: false, bytes: 4096, depth: 1, pattern: 'random' },
  { key: 'read4kQd32', write: false, bytes: 4096, depth: 32, pattern: 'random' },
  { key: 'write4kQd1', write: true, bytes: 4096, depth: 1, pattern: 'random' },
  { key: 'write4kQd32', write: true, bytes: 4096, depth: 32, pattern: 'random' },
  { key: 'read1mSeqQd4', write: false, bytes: MiB, depth: 4, pattern: 'sequential' },
  { key: 'write1mSeqQd4', write: true, bytes: MiB, depth: 4, pattern: 'sequential' },
];

function progress(msg: string): void {
  process.stderr.write(`bench scsi: ${msg}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// ---- Load generator (runs on whichever thread holds the transport) --------------------------------

/** Per-command latencies of the measured rounds, in ms; bounded (later commands are not kept). */
class Latencies {
  private readonly ms = new Float64Array(1 << 21);
  private n = 0;
  private sum = 0;
  private count = 0;
  add(x: number): void {
    if (this.n < this.ms.length) this.ms[this.n++] = x;
    this.sum += x;
    this.count++;
  }
  get meanUs(): number { return this.count ? (this.sum / this.count) * 1000 : 0; }
  get p99Us(): number {
    if (this.n === 0) return 0;
    const s = this.ms.subarray(0, this.n).sort();
    return s[Math.min(this.n - 1, Math.floor(this.n * 0.99))] * 1000;
  }
}

/** LBAs of a case: random 4 KiB-aligned units of the working set, or one cursor shared by all slots. */
export function lbaSource(spec: CaseSpec, plan: Plan): () => number {
  const blocks = spec.bytes / BLOCK_BYTES;
  const units = Math.floor(plan.workingSetBytes / spec.bytes);
  if (spec.pattern === 'sequential') {
    let cursor = 0;
    return () => {
      const lba = cursor * blocks;
      cursor = (cursor + 1) % units;
      return lba;
    };
  }
  let x = plan.seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) % units) * blocks;
  };
}

/** One round: `depth` slots, each submitting until the round's time is up. Returns commands and seconds. */
async function runRound(t: CommandTransport, spec: CaseSpec, plan: Plan, nextLba: () => number, lat?: Latencies): Promise<[number, number]> {
  const ms = plan.roundMs;
  const end = performance.now() + ms;
  let commands = 0;
  const slot = async (index: number): Promise<void> => {
    const cdb = scsi.readWrite10(spec.write, 0, spec.bytes / BLOCK_BYTES);
    const dataOut = spec.write ? Buffer.alloc(spec.bytes, 0x5a ^ index) : undefined;
    // Each slot reads into a buffer of its own, reused, as fio and iscsi-perf do.
    const command: ScsiCommand = dataOut ? { lun: plan.lun, cdb, dataOut }
      : { lun: plan.lun, cdb, dataInLength: spec.bytes, dataIn: Buffer.allocUnsafe(spec.bytes) };
    while (performance.now() < end) {
      cdb.writeUInt32BE(nextLba(), 2);
      const t0 = performance.now();
      const r = await t.submit(command);
      const t1 = performance.now();
      if (r.status !== 0) throw new scsi.ScsiError(r.status, r.sense.length ? scsi.decodeSense(r.sense) : undefined, cdb[0]);
      lat?.add(t1 - t0);
      commands++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: spec.depth }, (_, i) => slot(i)));
  return [commands, (performance.now() - t0) / 1000];
}

export async function runCase(t: CommandTransport, spec: CaseSpec, plan: Plan): Promise<CaseResult> {
  const nextLba = lbaSource(spec, plan);
  await runRound(t, spec, plan, nextLba); // warm-up
  const lat = new Latencies();
  const rates: number[] = [];
  let commands = 0;
  for (let r = 0; r < plan.rounds; r++) {
    const [n, seconds] = await runRound(t, spec, plan, nextLba, lat);
    rates.push(n / seconds);
    commands += n;
  }
  const iops = median(rates);
  return {
    iops: Math.round(iops), iopsRange: [Math.round(Math.min(...rates)), Math.round(Math.max(...rates))],
    MBps: round1((iops * spec.bytes) / 1e6), meanUs: round1(lat.meanUs), p99Us: round1(lat.p99Us), commands,
  };
}

// ---- The TCP initiator's thread -------------------------------------------------------------------

type ToInitiator = { type: 'case'; spec: CaseSpec; plan: Plan } | { type: 'close' };
type FromInitiator = { type: 'ready' } | { type: 'result'; result: CaseResult } | { type: 'error'; message: string };

async function initiatorThread(target: string): Promise<void> {
  const port = parentPort!;
  const t = await connect(target, { queueDepth: 64 });
  port.on('message', (m: ToInitiator) => {
    if (m.type === 'close') { void t.close().then(() => port.close()); return; }
    runCase(t, m.spec, m.plan).then(
      (result) => port.postMessage({ type: 'result', result } satisfies FromInitiator),
      (e: Error) => port.postMessage({ type: 'error', message: e.stack ?? String(e) } satisfies FromInitiator),
    );
  });
  port.postMessage({ type: 'ready' } satisfies FromInitiator);
}

/** Runs cases on a worker thread that holds its own TCP connection to the array. */
export class RemoteInitiator {
  private readonly worker: Worker;
  private readonly replies: Array<(m: FromInitiator) => void> = [];
  private failure?: Error;

  constructor(target: string) {
    // Under ts-node the worker compiles this file again; compiled to JavaScript it just loads it.
    const source = `${__filename.endsWith('.ts') ? "require('ts-node/register/transpile-only'); " : ''}require(${JSON.stringify(__filename)});`;
    this.worker = new Worker(source, { eval: true, workerData: { scsiBenchInitiator: target } });
    this.worker.on('message', (m: FromInitiator) => this.replies.shift()?.(m));
    this.worker.on('error', (e) => { this.failure = e; for (const r of this.replies.splice(0)) r({ type: 'error', message: e.message }); });
  }

  private next(): Promise<FromInitiator> {
    if (this.failure) return Promise.resolve({ type: 'error', message: this.failure.message });
    return new Promise((r) => this.replies.push(r));
  }

  async ready(): Promise<void> {
    const m = await this.next();
    if (m.type !== 'ready') throw new Error(`TCP initiator thread: ${m.type === 'error' ? m.message : m.type}`);
  }

  async run(spec: CaseSpec, plan: Plan): Promise<CaseResult> {
    const reply = this.next();
    this.worker.postMessage({ type: 'case', spec, plan } satisfies ToInitiator);
    const m = await reply;
    if (m.type !== 'result') throw new Error(`TCP initiator thread: ${m.type === 'error' ? m.message : m.type}`);
    return m.result;
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: 'close' } satisfies ToInitiator);
    await new Promise<void>((r) => { this.worker.once('exit', () => r()); setTimeout(() => { void this.worker.terminate(); }, 2000).unref(); });
  }
}

if (!isMainThread && (workerData as { scsiBenchInitiator?: string } | null)?.scsiBenchInitiator) {
  initiatorThread((workerData as { scsiBenchInitiator: string }).scsiBenchInitiator).catch((e: Error) => {
    parentPort!.postMessage({ type: 'error', message: e.stack ?? String(e) } satisfies FromInitiator);
  });
}

// ---- The array ------------------------------------------------------------------------------------

function benchTopology(dir: string): object {
  return {
    mode: 'realtime', seed: 1,
    arrays: [{
      name: 'bench0', dir, cache: { size: CACHE_SIZE },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: Array.from({ length: MEDIA }, (_, i) => ({ name: `ram${i}`, kind: 'ram', size: `${MEDIA_BYTES / MiB}MiB` })),
      ports: [
        { name: 'q0', iop: 0, transport: 'inproc' },
        { name: 't0', iop: 0, transport: 'tcp', host: '127.0.0.1', port: 0 },
        { name: 'i0', iop: 0, transport: 'tcp', protocol: 'iscsi', host: '127.0.0.1', port: 0 },
      ],
    }],
  };
}

interface Bench {
  emu: Emulator;
  dir: string;
  inproc: CommandTransport;
  client: ScsiClient;
  tcpTarget: string;
  /** iscsi://host:port/target/lun of the working-set LUN on the iSCSI port. */
  iscsiUrl: string;
}

async function bootArray(): Promise<Bench> {
  const dir = fs.mkdtempSync(path.join(scratchRoot(), 'sanbox-bench-'));
  progress(`booting the release image (array files in ${dir})`);
  let emu: Emulator;
  try {
    emu = await Emulator.start(benchTopology(dir), { debug: false });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const unguard = guard(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    return await setUp(emu, dir);
  } catch (e) {
    await emu.stop('powerFail');
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  } finally {
    unguard();
  }
}

/** The volumes of the run: the 1 GiB one at LUN 1, the working-set one at LUN 2 (for iscsi-perf). */
async function setUp(emu: Emulator, dir: string): Promise<Bench> {
  const inproc = emu.connect();
  const client = new ScsiClient(inproc);
  const volume = await client.createVolume({
    name: 'bench', blocks: VOLUME_BYTES / BLOCK_BYTES, blockSize: BLOCK_BYTES, placement: 'striped', media: [0, 1, 2, 3],
  });
  await client.mapVolume(volume.number, scsi.ALL_PORTS, LUN);
  const perf = await client.createVolume({
    name: 'perf', blocks: WORKING_SET_BYTES / BLOCK_BYTES, blockSize: BLOCK_BYTES, placement: 'striped', media: [0, 1, 2, 3],
  });
  await client.mapVolume(perf.number, scsi.ALL_PORTS, PERF_LUN);
  const tcpTarget = emu.array().targets.find((x) => x.port === 't0')!.target;
  const iscsiUrl = `${emu.array().targets.find((x) => x.port === 'i0')!.target}/${PERF_LUN}`;
  return { emu, dir, inproc, client, tcpTarget, iscsiUrl };
}

/** 1 MiB of the pattern both targets hold in the working set. */
function patternChunk(): Buffer {
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + (i >> 9)) & 0xff;
  return chunk;
}

/** Writes the working set once (1 MiB commands, 8 in flight), synchronizes, checks one block back. */
async function prefill(b: Bench): Promise<void> {
  progress(`prefilling the working set (${WORKING_SET_BYTES / MiB} MiB) of LUN ${LUN} and the iSCSI LUN ${PERF_LUN}`);
  const chunk = patternChunk();
  for (const lun of [LUN, PERF_LUN]) {
    let next = 0;
    const slot = async (): Promise<void> => {
      while (next < WORKING_SET_BYTES) {
        const at = next;
        next += MiB;
        await b.client.write(lun, at / BLOCK_BYTES, chunk);
      }
    };
    await Promise.all(Array.from({ length: 8 }, slot));
    await b.client.synchronizeCache(lun);
    const back = await b.client.read(lun, 8, 8);
    if (!back.equals(chunk.subarray(4096, 8192))) throw new Error(`prefill: the block read back from LUN ${lun} differs from the one written`);
  }
}

async function cacheCounters(c: ScsiClient): Promise<{ hits: number; misses: number }> {
  const s = await c.statistics();
  return { hits: s.cache.readHits, misses: s.cache.readMisses };
}

type Runner = (spec: CaseSpec) => Promise<CaseResult>;

async function runCases(b: Bench, cases: CaseSpec[], label: string, run: Runner): Promise<Record<string, CaseResult>> {
  const out: Record<string, CaseResult> = {};
  for (const spec of cases) {
    progress(`${label} ${spec.key}`);
    const before = await cacheCounters(b.client);
    const r = await run(spec);
    const after = await cacheCounters(b.client);
    if (!spec.write) {
      const hits = after.hits - before.hits, misses = after.misses - before.misses;
      r.cacheHitPercent = round1((100 * hits) / Math.max(1, hits + misses));
    }
    if (spec.write) await b.client.synchronizeCache(LUN); // the next case starts from a clean cache
    out[spec.key] = r;
  }
  return out;
}

interface PeerResult {
  iops: number;
  iopsRange: [number, number];
  MBps: number;
  /** Little's law: depth / IOPS (iscsi-perf reports no latency). */
  meanUsByLittle: number;
  seconds: number;
  /** CPU time (user + system) the target process used per I/O over the whole iscsi-perf run, microseconds. */
  targetCpuUsPerIo: number | null;
  /** The same as a share of one core: target CPU seconds / wall seconds. */
  targetCpuCores: number | null;
}

/**
 * iscsi-perf for rounds + 2 seconds against `url`; it prints IOPS each second (the first dropped)
 * and the average of the run at the end. The target process's CPU time is read from /proc before
 * and after: per I/O it is that time over the run's average IOPS times its length.
 */
async function iscsiPerf(bin: string, url: string, spec: CaseSpec, rounds: number, targetPid: number): Promise<PeerResult> {
  const seconds = rounds + 2;
  const args = ['-m', String(spec.depth), '-b', String(spec.bytes / BLOCK_BYTES), '-t', String(seconds)];
  if (spec.pattern === 'random') args.push('-r');
  const cpuBefore = cpuSeconds(targetPid);
  const wallBefore = performance.now();
  const proc = spawn(bin, [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unguard = guard(() => proc.kill('SIGKILL'));
  let text = '';
  proc.stdout.on('data', (d: Buffer) => { text += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { text += d.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), (rounds + 15) * 1000);
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  unguard();
  const cpuAfter = cpuSeconds(targetPid);
  const wall = (performance.now() - wallBefore) / 1000;
  const perSecond = [...text.matchAll(/iops current (\d+)/g)].map((m) => Number(m[1])).slice(1);
  const average = [...text.matchAll(/iops average (\d+)/g)].map((m) => Number(m[1])).pop();
  if (code !== 0 || perSecond.length === 0 || average === undefined) {
    throw new Error(`iscsi-perf ${args.join(' ')} ${url} (exit ${code}): ${text.trim().split(/[\r\n]+/).slice(-3).join(' | ')}`);
  }
  const iops = median(perSecond);
  const cpu = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
  return {
    iops, iopsRange: [Math.min(...perSecond), Math.max(...perSecond)], MBps: round1((iops * spec.bytes) / 1e6),
    meanUsByLittle: round1((spec.depth / iops) * 1e6), seconds: perSecond.length,
    targetCpuUsPerIo: cpu === null ? null : round3((cpu * 1e6) / (average * seconds)),
    targetCpuCores: cpu === null ? null : round3(cpu / wall),
  };
}

/** The same iscsi-perf cases against the array's own iSCSI port (the target process is this one). */
async function benchIscsi(b: Bench, cases: CaseSpec[], rounds: number): Promise<Record<string, unknown>> {
  const perf = which('iscsi-perf');
  if (!perf) return { skipped: 'iscsi-perf not installed (libiscsi-bin)' };
  const out: Record<string, unknown> = { url: b.iscsiUrl, initiator: 'iscsi-perf (libiscsi), another process', targetProcess: 'this one (the array runs in it)' };
  for (const spec of cases.filter((c) => !c.write)) {
    progress(`iscsi ${spec.key} (iscsi-perf)`);
    out[spec.key] = await iscsiPerf(perf, b.iscsiUrl, spec, rounds, process.pid);
  }
  return out;
}

async function benchTgtd(cases: CaseSpec[], rounds: number): Promise<Record<string, unknown>> {
  const bins = findTgtd();
  if (typeof bins === 'string') return { skipped: bins };
  const perf = which('iscsi-perf');
  if (!perf) return { skipped: 'iscsi-perf not installed (libiscsi-bin)' };
  const file = path.join(scratchRoot(), `sanbox-bench-tgtd-${process.pid}.img`);
  writeBackingFile(file);
  let run;
  try {
    run = await startTgtd(bins, file);
  } catch (e) {
    fs.rmSync(file, { force: true });
    return { skipped: `tgtd run failed: ${(e as Error).message}` };
  }
  try {
    const url = `iscsi://127.0.0.1:${run.portal}/${TGTD_IQN}/1`;
    const out: Record<string, unknown> = {
      version: `tgtd ${run.version}`, portal: `127.0.0.1:${run.portal}`, control: run.control,
      backing: `${file}: ${WORKING_SET_BYTES / MiB} MiB (the working set), rdwr backing store`,
    };
    for (const spec of cases.filter((c) => !c.write)) {
      progress(`tgtd ${spec.key} (iscsi-perf)`);
      out[spec.key] = await iscsiPerf(perf, url, spec, rounds, run.proc.pid!);
    }
    return out;
  } catch (e) {
    return { skipped: `tgtd run failed: ${(e as Error).message}` };
  } finally {
    await stopTgtd(run);
  }
}

/** The backing file: WORKING_SET_BYTES of the prefill pattern, in RAM (tmpfs) where there is one. */
function writeBackingFile(file: string): void {
  const chunk = patternChunk();
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < WORKING_SET_BYTES; at += MiB) fs.writeSync(fd, chunk, 0, MiB, at);
  } finally {
    fs.closeSync(fd);
  }
}

// ---- Main -----------------------------------------------------------------------------------------

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length, cpu: cpus[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30), loadavgAtStart: os.loadavg().map((x) => round1(x)),
  };
}

function ratio(a: { iops: number } | undefined, b: { iops: number } | undefined): number | null {
  return a && b && b.iops > 0 ? round3(a.iops / b.iops) : null;
}

/** A bad command line: bench/run.ts prints the message alone and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const FLAGS = ['--quick', '--no-tgtd'];
const TRANSPORTS = ['inproc', 'tcp', 'iscsi', 'tgtd'];

function listArg(args: string[], name: string, all: string[]): string[] {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',') ?? all;
  const bad = v.filter((x) => !all.includes(x));
  if (bad.length) throw new UsageError(`--${name}: unknown ${bad.join(', ')} (known: ${all.join(', ')})`);
  return v;
}

function checkArgs(args: string[]): void {
  const bad = args.filter((a) => !FLAGS.includes(a) && !/^--(only|cases)=/.test(a));
  if (bad.length) throw new UsageError(`unknown argument ${bad.join(' ')} (known: ${FLAGS.join(' ')} --only=${TRANSPORTS.join(',')} --cases=${CASES.map((c) => c.key).join(',')})`);
}

/** The TCP cases also run with the initiator on the array's thread, to show what the thread hand-off costs. */
const SAME_THREAD_CASES = ['read4kQd1', 'read4kQd32'];

export async function run(args: string[] = process.argv.slice(2)): Promise<object> {
  checkArgs(args);
  const quick = args.includes('--quick');
  const only = listArg(args, 'only', TRANSPORTS).filter((x) => x !== 'tgtd' || !args.includes('--no-tgtd'));
  const keys = listArg(args, 'cases', CASES.map((c) => c.key));
  const cases = CASES.filter((c) => keys.includes(c.key));
  const plan: Plan = { roundMs: quick ? 150 : 500, rounds: quick ? 3 : 7, lun: LUN, workingSetBytes: WORKING_SET_BYTES, seed: 0x5eed };
  const started = performance.now();
  const report: Record<string, unknown> = {
    benchmark: 'scsi', date: new Date().toISOString(), machine: machine(),
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    method: `each case: one warm-up round, then the median of ${plan.rounds} rounds of ${plan.roundMs} ms, closed loop at the stated queue depth `
      + '(iopsRange: slowest and fastest round); latency: submit to completion at the initiator over every command of the measured rounds. '
      + `iscsi (sanbox's iSCSI port) and tgtd: iscsi-perf's IOPS of each second, the first dropped, median of ${plan.rounds}; `
      + 'the target process\'s CPU time (/proc/<pid>/stat, user + system) over the iscsi-perf run, per I/O.',
    array: {
      image: 'release', mode: 'realtime', trace: 'off', iops: ['channel', 'disk'], cache: CACHE_SIZE,
      media: `${MEDIA} x ram ${MEDIA_BYTES / MiB} MiB`,
      volume: `${VOLUME_BYTES / MiB} MiB striped over ${MEDIA} media (64 KiB stripe unit), ${BLOCK_BYTES}-byte blocks, LUN ${LUN} of every port`,
      workingSet: `the first ${WORKING_SET_BYTES / MiB} MiB of the volume: written once and synchronized before the first case; every case addresses only it, so reads hit the cache`,
      files: `NV image in ${scratchRoot()} (removed after the run)`,
      tcpInitiator: 'host/connect tcp:// (FramedTransport, queue depth 64) on a worker thread; tcpSameThread: the same on the array\'s thread',
      iscsiLun: `LUN ${PERF_LUN}: a volume of ${WORKING_SET_BYTES / MiB} MiB (iscsi-perf reads a whole LUN), prefilled like the working set`,
    },
  };
  if (only.includes('inproc') || only.includes('tcp') || only.includes('iscsi')) Object.assign(report, await benchArray(only, cases, plan));
  report.tgtd = only.includes('tgtd') ? await benchTgtd(cases, plan.rounds) : { skipped: 'not asked for (--only, --no-tgtd)' };
  (report.machine as Record<string, unknown>).loadavgAtEnd = os.loadavg().map((x) => round1(x));
  report.seconds = round1((performance.now() - started) / 1000);
  return { ...report, ...verdict(report), notes: NOTES };
}

async function benchArray(only: string[], cases: CaseSpec[], plan: Plan): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const b = await bootArray();
  const unguard = guard(() => fs.rmSync(b.dir, { recursive: true, force: true }));
  try {
    await prefill(b);
    if (only.includes('inproc')) out.inproc = await runCases(b, cases, 'inproc', (spec) => runCase(b.inproc, spec, plan));
    if (only.includes('tcp')) {
      const remote = new RemoteInitiator(b.tcpTarget);
      try {
        await remote.ready();
        out.tcp = await runCases(b, cases, `tcp ${b.tcpTarget}`, (spec) => remote.run(spec, plan));
      } finally {
        await remote.close();
      }
      const same = cases.filter((c) => SAME_THREAD_CASES.includes(c.key));
      const t = await connect(b.tcpTarget, { queueDepth: 64 });
      try {
        out.tcpSameThread = await runCases(b, same, `tcp (same thread) ${b.tcpTarget}`, (spec) => runCase(t, spec, plan));
      } finally {
        await t.close();
      }
    }
    if (only.includes('iscsi')) out.iscsi = await benchIscsi(b, cases, plan.rounds);
  } finally {
    progress('stopping the array');
    await b.emu.stop('graceful');
    fs.rmSync(b.dir, { recursive: true, force: true });
    unguard();
  }
  return out;
}

/** Ratios of medians taken in this run, and the targets. */
function verdict(report: Record<string, unknown>): { ratios: object; targets: object } {
  type Rows = Record<string, { iops: number } | undefined>;
  const inproc = (report.inproc ?? {}) as Rows, tcp = (report.tcp ?? {}) as Rows, tgtd = (report.tgtd ?? {}) as Rows;
  const iscsi = (report.iscsi ?? {}) as Rows;
  const ratios = {
    iscsiVsTgtdRead4kQd1: ratio(iscsi.read4kQd1, tgtd.read4kQd1),
    iscsiVsTgtdRead4kQd32: ratio(iscsi.read4kQd32, tgtd.read4kQd32),
    iscsiVsTgtdRead1mSeqQd4: ratio(iscsi.read1mSeqQd4, tgtd.read1mSeqQd4),
    tcpVsTgtdRead4kQd1: ratio(tcp.read4kQd1, tgtd.read4kQd1),
    tcpVsTgtdRead4kQd32: ratio(tcp.read4kQd32, tgtd.read4kQd32),
    tcpVsTgtdRead1mSeqQd4: ratio(tcp.read1mSeqQd4, tgtd.read1mSeqQd4),
    inprocVsTgtdRead4kQd32: ratio(inproc.read4kQd32, tgtd.read4kQd32),
    inprocVsTcpRead4kQd32: ratio(inproc.read4kQd32, tcp.read4kQd32),
  };
  const measured = inproc.read4kQd32?.iops ?? null;
  const targets = {
    inprocRead4kCache: {
      case: 'inproc.read4kQd32', target: TARGET_INPROC_READ4K_QD32_IOPS, measured,
      met: measured === null ? null : measured >= TARGET_INPROC_READ4K_QD32_IOPS,
    },
    tcpVsTgtd: {
      case: 'tcp.read4kQd32 / tgtd.read4kQd32', target: TARGET_TCP_VS_TGTD, measured: ratios.tcpVsTgtdRead4kQd32,
      met: ratios.tcpVsTgtdRead4kQd32 === null ? null : ratios.tcpVsTgtdRead4kQd32 >= TARGET_TCP_VS_TGTD,
    },
    iscsiVsTgtd: {
      case: 'iscsi.read4kQd32 / tgtd.read4kQd32 (the same client, iscsi-perf, on both)', target: TARGET_ISCSI_VS_TGTD,
      measured: ratios.iscsiVsTgtdRead4kQd32,
      met: ratios.iscsiVsTgtdRead4kQd32 === null ? null : ratios.iscsiVsTgtdRead4kQd32 >= TARGET_ISCSI_VS_TGTD,
    },
  };
  return { ratios, targets };
}

const NOTES = [
  'Initiators differ: sanbox is driven by its own TypeScript initiator on Node (host/framed.ts over TCP, hal/channels/queue.ts in-process); '
    + 'tgtd by iscsi-perf, a C initiator on libiscsi. The TCP ratio compares initiator plus target, not the targets alone; '
    + 'profiles (docs/bench.md) show the Node initiator, not the array, is the busier side over TCP.',
  'Threads: the array runs on one thread (every IOP polled in turn by the harness); the in-process initiator shares it; the TCP initiator '
    + 'has a worker thread (tcpSameThread: the array\'s thread). tgtd runs an event loop plus backing-store threads; iscsi-perf is another process. '
    + 'On a machine with few cores the hand-off between threads or processes costs each command a wake-up on both sides.',
  'iscsi-perf only reads (READ16, random with -r, sequential without), so iscsi and tgtd have no write rows; it reports no latency, so their mean '
    + 'latency is derived by Little\'s law (depth / IOPS).',
  'iscsi vs tgtd is the same client (iscsi-perf, a separate process) against two targets; targetCpuUsPerIo is the target process\'s '
    + 'user + system time (all its threads) over the whole iscsi-perf run divided by its I/Os. sanbox\'s process also runs the harness '
    + '(sockets, rings) around the firmware, so its figure is the whole array\'s.',
  'Neither target touches a disk: sanbox reads hit its cache (RAM media behind it), tgtd reads its backing file from the page cache (tmpfs).',
  'Rounds are short and the machine may be shared: compare iopsRange and machine.loadavg* before trusting a difference of a few percent.',
];
