// SCSI benchmark: what an initiator gets from the controller, in-process and over TCP loopback,
// beside tgtd (the Linux user-space iSCSI target) driven by libiscsi's iscsi-perf in the same run.
// One JSON document on stdout, progress on stderr (docs/bench.md). Run:
//   npm run bench [-- --quick] [-- --no-tgtd] [-- --only=inproc,tcp,tgtd] [-- --cases=read4kQd32,...]
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
// tgtd: started on a free portal and its own control port (so it never meets a system tgtd), one
// LUN backed by a file of WORKING_SET_BYTES in /dev/shm; iscsi-perf prints IOPS once a second, the
// first second is dropped and the median of the next ROUNDS is reported. iscsi-perf only reads, so
// tgtd has no write rows. tgtd, its socket and the file are removed even on failure or a signal.

import * as os from 'os';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';
import { performance } from 'perf_hooks';
import { Emulator } from '../harness';
import { connect } from '../host/connect';
import { ScsiClient } from '../host/client';
import * as scsi from '../lib/scsi';
import { CommandTransport, ScsiCommand } from '../lib/transport';

const MiB = 1 << 20;
const BLOCK_BYTES = 512;
const VOLUME_BYTES = 1024 * MiB;
const WORKING_SET_BYTES = 128 * MiB;
const CACHE_SIZE = '256MiB';
const MEDIA = 4;
const LUN = 1;
const TARGET_INPROC_READ4K_QD32_IOPS = 200_000;
const TARGET_TCP_VS_TGTD = 1.0;
const TGTD_IQN = 'iqn.2025-01.io.sanbox:bench';

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

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round3(x: number): number {
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
function lbaSource(spec: CaseSpec, plan: Plan): () => number {
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
class RemoteInitiator {
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

function scratchRoot(): string {
  return fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

function benchTopology(dir: string): object {
  return {
    mode: 'realtime', seed: 1,
    arrays: [{
      name: 'bench0', dir, cache: { size: CACHE_SIZE },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: Array.from({ length: MEDIA }, (_, i) => ({ name: `ram${i}`, kind: 'ram', size: `${VOLUME_BYTES / MEDIA / MiB + 1}MiB` /* + the label chunk */ })),
      ports: [
        { name: 'q0', iop: 0, transport: 'inproc' },
        { name: 't0', iop: 0, transport: 'tcp', host: '127.0.0.1', port: 0 },
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
}

async function bootArray(): Promise<Bench> {
  const dir = fs.mkdtempSync(path.join(scratchRoot(), 'sanbox-bench-'));
  progress(`booting the release image (array files in ${dir})`);
  const emu = await Emulator.start(benchTopology(dir), { debug: false });
  const inproc = emu.connect();
  const client = new ScsiClient(inproc);
  const volume = await client.createVolume({
    name: 'bench', blocks: VOLUME_BYTES / BLOCK_BYTES, blockSize: BLOCK_BYTES, placement: 'striped', media: [0, 1, 2, 3],
  });
  await client.mapVolume(volume.number, scsi.ALL_PORTS, LUN);
  const tcpTarget = emu.array().targets.find((x) => x.port === 't0')!.target;
  return { emu, dir, inproc, client, tcpTarget };
}

/** 1 MiB of the pattern both targets hold in the working set. */
function patternChunk(): Buffer {
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + (i >> 9)) & 0xff;
  return chunk;
}

/** Writes the working set once (1 MiB commands, 8 in flight), synchronizes, checks one block back. */
async function prefill(b: Bench): Promise<void> {
  progress(`prefilling the working set (${WORKING_SET_BYTES / MiB} MiB)`);
  const chunk = patternChunk();
  let next = 0;
  const slot = async (): Promise<void> => {
    while (next < WORKING_SET_BYTES) {
      const at = next;
      next += MiB;
      await b.client.write(LUN, at / BLOCK_BYTES, chunk);
    }
  };
  await Promise.all(Array.from({ length: 8 }, slot));
  await b.client.synchronizeCache(LUN);
  const back = await b.client.read(LUN, 8, 8);
  if (!back.equals(chunk.subarray(4096, 8192))) throw new Error('prefill: the block read back differs from the one written');
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

// ---- Cleanup on a signal ------------------------------------------------------------------------

/** What must not outlive the run (a tgtd, files in /dev/shm): undone at exit and on SIGINT/SIGTERM. */
const cleanups = new Set<() => void>();

function onSignal(signal: NodeJS.Signals): void {
  for (const c of cleanups) c();
  process.stderr.write(`bench scsi: stopped by ${signal}\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function guard(cleanup: () => void): () => void {
  if (cleanups.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', runCleanups);
  }
  cleanups.add(cleanup);
  return () => {
    cleanups.delete(cleanup);
    if (cleanups.size === 0) {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('exit', runCleanups);
    }
  };
}

function runCleanups(): void {
  for (const c of cleanups) c();
}

// ---- tgtd and iscsi-perf ------------------------------------------------------------------------

const TGTD_SOCKET_DIR = '/var/run/tgtd';

function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return undefined;
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface TgtdRun {
  proc: ChildProcess;
  tgtadm: string;
  /** Our control port: tgtd's management socket is TGTD_SOCKET_DIR/socket.<control>. */
  control: number;
  file: string;
  /** TGTD_SOCKET_DIR did not exist before: remove it if it is empty afterwards. */
  madeSocketDir: boolean;
  log: string[];
}

function tgtadm(run: TgtdRun, args: string[]): { ok: boolean; text: string } {
  const r = spawnSync(run.tgtadm, ['-C', String(run.control), '--lld', 'iscsi', ...args], { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0, text: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
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

function startTgtd(bins: { tgtd: string; tgtadm: string }, portal: number): TgtdRun {
  let control = 4000 + (process.pid % 20000);
  while (fs.existsSync(`${TGTD_SOCKET_DIR}/socket.${control}`)) control++;
  const run: TgtdRun = {
    proc: undefined as unknown as ChildProcess, tgtadm: bins.tgtadm, control, log: [],
    file: path.join(scratchRoot(), `sanbox-bench-tgtd-${process.pid}.img`), madeSocketDir: !fs.existsSync(TGTD_SOCKET_DIR),
  };
  writeBackingFile(run.file);
  run.proc = spawn(bins.tgtd, ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${portal}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => { run.log.push(...d.toString().split('\n').filter(Boolean)); };
  run.proc.stdout!.on('data', keep);
  run.proc.stderr!.on('data', keep);
  run.proc.on('error', (e) => run.log.push(e.message));
  return run;
}

async function configureTgtd(run: TgtdRun): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    if (run.proc.exitCode !== null) throw new Error(`tgtd exited (${run.proc.exitCode}): ${run.log.slice(-3).join(' | ')}`);
    if (tgtadm(run, ['--mode', 'target', '--op', 'show']).ok) break;
    if (Date.now() > deadline) throw new Error(`tgtd does not answer on control port ${run.control}: ${run.log.slice(-3).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const args of [
    ['--mode', 'target', '--op', 'new', '--tid', '1', '-T', TGTD_IQN],
    ['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', '1', '-b', run.file],
    ['--mode', 'target', '--op', 'bind', '--tid', '1', '-I', 'ALL'],
  ]) {
    const r = tgtadm(run, args);
    if (!r.ok) throw new Error(`tgtadm ${args.join(' ')}: ${r.text}`);
  }
}

/** Removes what tgtd and we left: the backing file, tgtd's control socket and lock, the socket folder if we made it. */
function removeTgtdFiles(run: TgtdRun): void {
  for (const f of [run.file, `${TGTD_SOCKET_DIR}/socket.${run.control}`, `${TGTD_SOCKET_DIR}/socket.${run.control}.lock`]) fs.rmSync(f, { force: true });
  if (run.madeSocketDir) {
    try { fs.rmdirSync(TGTD_SOCKET_DIR); } catch { /* not empty: another tgtd uses it now */ }
  }
}

/** Stops tgtd as it accepts (SIGTERM alone does not: its target goes, then the system), SIGKILL after 2 s. */
async function stopTgtd(run: TgtdRun): Promise<void> {
  if (run.proc.exitCode === null && run.proc.signalCode === null) {
    const exited = new Promise<void>((r) => run.proc.once('exit', () => r()));
    tgtadm(run, ['--mode', 'target', '--op', 'delete', '--force', '--tid', '1']);
    tgtadm(run, ['--mode', 'system', '--op', 'delete']);
    const timer = setTimeout(() => run.proc.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
  removeTgtdFiles(run);
}

interface PeerResult {
  iops: number;
  iopsRange: [number, number];
  MBps: number;
  /** Little's law: depth / IOPS (iscsi-perf reports no latency). */
  meanUsByLittle: number;
  seconds: number;
}

/** iscsi-perf for rounds + 2 seconds; it prints IOPS each second; the first second is dropped. */
async function iscsiPerf(bin: string, url: string, spec: CaseSpec, rounds: number): Promise<PeerResult> {
  const args = ['-m', String(spec.depth), '-b', String(spec.bytes / BLOCK_BYTES), '-t', String(rounds + 2)];
  if (spec.pattern === 'random') args.push('-r');
  const proc = spawn(bin, [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unguard = guard(() => proc.kill('SIGKILL'));
  let text = '';
  proc.stdout.on('data', (d: Buffer) => { text += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { text += d.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), (rounds + 15) * 1000);
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  unguard();
  const perSecond = [...text.matchAll(/iops current (\d+)/g)].map((m) => Number(m[1])).slice(1);
  if (code !== 0 || perSecond.length === 0) {
    throw new Error(`iscsi-perf ${args.join(' ')} (exit ${code}): ${text.trim().split(/[\r\n]+/).slice(-3).join(' | ')}`);
  }
  const iops = median(perSecond);
  return {
    iops, iopsRange: [Math.min(...perSecond), Math.max(...perSecond)], MBps: round1((iops * spec.bytes) / 1e6),
    meanUsByLittle: round1((spec.depth / iops) * 1e6), seconds: perSecond.length,
  };
}

async function benchTgtd(cases: CaseSpec[], rounds: number): Promise<Record<string, unknown>> {
  const bins = { tgtd: which('tgtd'), tgtadm: which('tgtadm'), perf: which('iscsi-perf') };
  if (!bins.tgtd || !bins.tgtadm) return { skipped: 'tgtd not installed' };
  if (!bins.perf) return { skipped: 'iscsi-perf not installed (libiscsi-bin)' };
  const version = spawnSync(bins.tgtd, ['-V'], { encoding: 'utf8' }).stdout?.trim();
  const portal = await freeTcpPort();
  const run = startTgtd({ tgtd: bins.tgtd, tgtadm: bins.tgtadm }, portal);
  const unguard = guard(() => { run.proc.kill('SIGKILL'); removeTgtdFiles(run); });
  try {
    await configureTgtd(run);
    const url = `iscsi://127.0.0.1:${portal}/${TGTD_IQN}/1`;
    const out: Record<string, unknown> = {
      version: `tgtd ${version}`, portal: `127.0.0.1:${portal}`, control: run.control,
      backing: `${run.file}: ${WORKING_SET_BYTES / MiB} MiB (the working set), rdwr backing store`,
    };
    for (const spec of cases.filter((c) => !c.write)) {
      progress(`tgtd ${spec.key} (iscsi-perf)`);
      out[spec.key] = await iscsiPerf(bins.perf, url, spec, rounds);
    }
    return out;
  } catch (e) {
    return { skipped: `tgtd run failed: ${(e as Error).message}` };
  } finally {
    await stopTgtd(run);
    unguard();
  }
}

// ---- Main -----------------------------------------------------------------------------------------

function machine(): Record<string, unknown> {
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

function listArg(args: string[], name: string, all: string[]): string[] {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',') ?? all;
  const bad = v.filter((x) => !all.includes(x));
  if (bad.length) throw new UsageError(`--${name}: unknown ${bad.join(', ')} (known: ${all.join(', ')})`);
  return v;
}

function checkArgs(args: string[]): void {
  const bad = args.filter((a) => !FLAGS.includes(a) && !/^--(only|cases)=/.test(a));
  if (bad.length) throw new UsageError(`unknown argument ${bad.join(' ')} (known: ${FLAGS.join(' ')} --only=inproc,tcp,tgtd --cases=${CASES.map((c) => c.key).join(',')})`);
}

/** The TCP cases also run with the initiator on the array's thread, to show what the thread hand-off costs. */
const SAME_THREAD_CASES = ['read4kQd1', 'read4kQd32'];

export async function run(args: string[] = process.argv.slice(2)): Promise<object> {
  checkArgs(args);
  const quick = args.includes('--quick');
  const only = listArg(args, 'only', ['inproc', 'tcp', 'tgtd']).filter((x) => x !== 'tgtd' || !args.includes('--no-tgtd'));
  const keys = listArg(args, 'cases', CASES.map((c) => c.key));
  const cases = CASES.filter((c) => keys.includes(c.key));
  const plan: Plan = { roundMs: quick ? 150 : 500, rounds: quick ? 3 : 7, lun: LUN, workingSetBytes: WORKING_SET_BYTES, seed: 0x5eed };
  const started = performance.now();
  const report: Record<string, unknown> = {
    benchmark: 'scsi', date: new Date().toISOString(), machine: machine(),
    command: `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`,
    method: `each case: one warm-up round, then the median of ${plan.rounds} rounds of ${plan.roundMs} ms, closed loop at the stated queue depth `
      + '(iopsRange: slowest and fastest round); latency: submit to completion at the initiator over every command of the measured rounds. '
      + `tgtd: iscsi-perf's IOPS of each second, the first dropped, median of ${plan.rounds}.`,
    array: {
      image: 'release', mode: 'realtime', trace: 'off', iops: ['channel', 'disk'], cache: CACHE_SIZE,
      media: `${MEDIA} x ram ${VOLUME_BYTES / MEDIA / MiB} MiB`,
      volume: `${VOLUME_BYTES / MiB} MiB striped over ${MEDIA} media (64 KiB stripe unit), ${BLOCK_BYTES}-byte blocks, LUN ${LUN} of every port`,
      workingSet: `the first ${WORKING_SET_BYTES / MiB} MiB of the volume: written once and synchronized before the first case; every case addresses only it, so reads hit the cache`,
      files: `NV image in ${scratchRoot()} (removed after the run)`,
      tcpInitiator: 'host/connect tcp:// (FramedTransport, queue depth 64) on a worker thread; tcpSameThread: the same on the array\'s thread',
    },
  };
  if (only.includes('inproc') || only.includes('tcp')) Object.assign(report, await benchArray(only, cases, plan));
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
  const ratios = {
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
  'iscsi-perf only reads (READ16, random with -r, sequential without), so tgtd has no write rows; it reports no latency, so tgtd\'s mean '
    + 'latency is derived by Little\'s law (depth / IOPS).',
  'Neither target touches a disk: sanbox reads hit its cache (RAM media behind it), tgtd reads its backing file from the page cache (tmpfs).',
  'Rounds are short and the machine may be shared: compare iopsRange and machine.loadavg* before trusting a difference of a few percent.',
];
