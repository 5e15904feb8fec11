// `npm run bench -- nbd [--quick] [--baseline=<git ref>] [--cases=<name,...>]`: the same client, fio's nbd engine (libnbd), against sanbox's NBD
// export and two peers serving a volume of the same size: nbdkit's memory plugin and qemu-nbd on a
// raw file in tmpfs. Each runs as a process of its own, so its CPU time (user + system, all threads,
// from /proc) over a case divided by the case's I/Os is its CPU per I/O. Cases, in order (the first
// fills the volume, so no target reads holes): 1 MiB sequential write and read at depth 4, 4 KiB
// random write and read at depth 1 and 32. Then the cache-miss cases: a volume four times the cache on
// file media in the ordinary temp folder, 4 KiB random reads and writes at depth 32, so staging (reads),
// destaging to make room (writes), the disk IOP and the IO scheduler are on the measured path; beside it qemu-nbd on a file of that size in the same
// folder (the host's page cache serves it: a floor, not a like-for-like disk).
// With --baseline=<git ref> that commit's sanbox (built in the temporary folder) runs the same hit
// cases right after this tree's, as target sanbox-baseline: before/after ratios from one run.
// One JSON document: per case and target IOPS, MB/s, mean latency, CPU per I/O, and sanbox's ratio
// to each peer (IOPS; CPU per I/O as peer / sanbox, above 1 is sanbox cheaper).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { which, freeTcpPort, scratchRoot, cpuSeconds, guard, baselineTree, git } from './peers';

interface Case { name: string; rw: string; bs: string; depth: number; miss?: boolean }

const CASES: Case[] = [
  { name: 'seqWrite1M', rw: 'write', bs: '1m', depth: 4 },
  { name: 'seqRead1M', rw: 'read', bs: '1m', depth: 4 },
  { name: 'randWrite4kQd1', rw: 'randwrite', bs: '4k', depth: 1 },
  { name: 'randWrite4kQd32', rw: 'randwrite', bs: '4k', depth: 32 },
  { name: 'randRead4kQd1', rw: 'randread', bs: '4k', depth: 1 },
  { name: 'randRead4kQd32', rw: 'randread', bs: '4k', depth: 32 },
];
// Cache misses: reads staged from the medium, and writes whose slots are not cached (a write-back
// cache a quarter of the volume: dirty slots must be destaged to make room, so the disk IOP and the
// NV release of destaged slots are on the write path too).
const MISSES: Case[] = [
  { name: 'randRead4kQd32CacheMiss', rw: 'randread', bs: '4k', depth: 32, miss: true },
  { name: 'randWrite4kQd32CacheMiss', rw: 'randwrite', bs: '4k', depth: 32, miss: true },
];

const VOLUME_MIB = 256;
const MISS_VOLUME_MIB = 512;
const MISS_CACHE_MIB = 128;

interface Target { name: string; uri: string; proc: ChildProcess; stop(): Promise<void> }
interface Result { iops: number; mbps: number; latencyUs: number; cpuUsPerIo: number | null; ios: number }

function progress(s: string): void { process.stderr.write(`bench nbd: ${s}\n`); }

class UsageError extends Error { constructor(m: string) { super(m); this.name = 'UsageError'; } }

export async function run(args: string[]): Promise<object> {
  for (const a of args) if (a !== '--quick' && !a.startsWith('--baseline=') && !a.startsWith('--cases=')) throw new UsageError(`bench nbd: unknown argument ${a} (known: --quick --baseline=<git ref> --cases=<name,...>)`);
  const quick = args.includes('--quick');
  // --cases=: only these (the fill, CASES[0], always runs first so that no case reads or writes holes).
  const only = args.find((a) => a.startsWith('--cases='))?.slice('--cases='.length).split(',');
  for (const n of only ?? []) if (![...CASES, ...MISSES].some((c) => c.name === n)) throw new UsageError(`bench nbd: unknown case ${n} (known: ${[...CASES, ...MISSES].map((c) => c.name).join(' ')})`);
  const cases = CASES.filter((c, i) => i === 0 || !only || only.includes(c.name));
  const misses = MISSES.filter((c) => !only || only.includes(c.name));
  const ref = args.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);
  const base = ref ? baselineTree(ref, progress) : undefined;
  const seconds = quick ? 3 : 10;
  for (const [p, pkg] of [['fio', 'fio'], ['nbdkit', 'nbdkit'], ['qemu-nbd', 'qemu-utils']]) {
    if (!which(p)) throw new Error(`${p} is not installed (apt-get install ${pkg})`);
  }
  const shm = fs.mkdtempSync(path.join(scratchRoot(), 'sanbox-bench-nbd-'));
  const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-bench-nbd-miss-'));
  const unguard = guard(() => { fs.rmSync(shm, { recursive: true, force: true }); fs.rmSync(disk, { recursive: true, force: true }); });
  try {
    const hit: Record<string, Record<string, Result>> = {};
    const makers: Array<[string, () => Promise<Target>]> = [
      ['sanbox', () => startSanbox(shm, VOLUME_MIB, 2 * VOLUME_MIB)],
      ...(base ? [['sanbox-baseline', () => startSanbox(shm, VOLUME_MIB, 2 * VOLUME_MIB, base.dir)] as [string, () => Promise<Target>]] : []),
      ['nbdkit-memory', () => startNbdkit(VOLUME_MIB)],
      ['qemu-nbd-tmpfs', () => startQemuNbd(path.join(shm, 'qemu.img'), VOLUME_MIB)],
    ];
    for (const [name, make] of makers) {
      progress(`starting ${name}`);
      const t = await make();
      try {
        for (const c of cases) {
          progress(`${name}: ${c.name} for ${seconds} s`);
          (hit[c.name] ??= {})[name] = await fio(t, c, VOLUME_MIB, seconds);
        }
      } finally { await t.stop(); }
    }
    const miss: Record<string, Record<string, Result>> = {};
    for (const [name, make] of misses.length === 0 ? [] : [
      ['sanbox', () => startSanbox(disk, MISS_VOLUME_MIB, MISS_CACHE_MIB)],
      ['qemu-nbd-file', () => startQemuNbd(path.join(disk, 'qemu.img'), MISS_VOLUME_MIB)],
    ] as Array<[string, () => Promise<Target>]>) {
      progress(`starting ${name} for the cache-miss case`);
      const t = await make();
      try {
        await fio(t, CASES[0], MISS_VOLUME_MIB, 0); // fill once, written through to the media
        for (const c of misses) {
          progress(`${name}: ${c.name} for ${seconds} s`);
          (miss[c.name] ??= {})[name] = await fio(t, c, MISS_VOLUME_MIB, seconds);
        }
      } finally { await t.stop(); }
    }
    return {
      benchmark: 'nbd',
      client: 'fio --ioengine=nbd (libnbd), the same job for every target',
      seconds,
      volumeMiB: VOLUME_MIB,
      ...(base ? { current: { commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '' }, baseline: { ref, commit: base.commit } } : {}),
      cases: Object.fromEntries(Object.entries(hit).map(([k, v]) => [k, {
        ...v,
        ratios: {
          ...ratios(v, 'sanbox', ['nbdkit-memory', 'qemu-nbd-tmpfs', ...(base ? ['sanbox-baseline'] : [])]),
          ...(base ? ratios(v, 'sanbox-baseline', ['nbdkit-memory']) : {}),
        },
      }])),
      cacheMiss: {
        volumeMiB: MISS_VOLUME_MIB, cacheMiB: MISS_CACHE_MIB,
        ...Object.fromEntries(Object.entries(miss).map(([k, v]) => [k, { ...v, ratios: ratios(v, 'sanbox', ['qemu-nbd-file']) }])),
      },
      notes: [
        'sanbox: release image, one channel IOP and the disk IOP in one Node process (sanbox run), media and NV image in tmpfs (cache-miss case: media in the temp folder), write-back through the NV cache; a WRITE is answered once its data and descriptor are in the NV image.',
        'nbdkit memory: a sparse RAM disk; qemu-nbd: raw file, default cache mode (writeback through the page cache).',
        'ratios: sanbox IOPS / peer IOPS, and peer CPU per I/O / sanbox CPU per I/O (above 1: sanbox spends less CPU per I/O).',
        'cache miss: sanbox\'s cache is a quarter of the volume, so most reads stage from the medium file and most writes find no slot until dirty ones are destaged; qemu-nbd\'s file is served by the host page cache.',
      ],
    };
  } finally {
    unguard();
    fs.rmSync(shm, { recursive: true, force: true });
    fs.rmSync(disk, { recursive: true, force: true });
  }
}

function ratios(r: Record<string, Result>, subject: string, peers: string[]): Record<string, { iops: number; cpuPerIo: number | null }> {
  const s = r[subject];
  const out: Record<string, { iops: number; cpuPerIo: number | null }> = {};
  for (const p of peers) {
    const q = r[p];
    if (!s || !q) continue;
    out[`${subject}/${p}`] = {
      iops: round(s.iops / q.iops, 3),
      cpuPerIo: s.cpuUsPerIo && q.cpuUsPerIo ? round(q.cpuUsPerIo / s.cpuUsPerIo, 3) : null,
    };
  }
  return out;
}

function round(x: number, d: number): number { const k = 10 ** d; return Math.round(x * k) / k; }

/** One fio job against the target (seconds 0: the whole volume once). */
function fio(t: Target, c: Case, volumeMiB: number, seconds: number): Promise<Result> {
  const args = ['--name=' + c.name, '--ioengine=nbd', `--uri=${t.uri}`, `--rw=${c.rw}`, `--bs=${c.bs}`, `--iodepth=${c.depth}`,
    `--size=${volumeMiB}m`, '--output-format=json', '--randrepeat=0', '--norandommap',
    ...(seconds > 0 ? ['--time_based', `--runtime=${seconds}`, '--ramp_time=1'] : [])];
  const cpu0 = cpuSeconds(t.proc.pid!);
  return new Promise((resolve, reject) => {
    const p = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    p.on('close', (code) => {
      if (code !== 0) { reject(new Error(`fio ${c.name} against ${t.name} failed (${code}): ${err}${out}`)); return; }
      const cpu1 = cpuSeconds(t.proc.pid!);
      const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
      const side = c.rw.includes('write') ? job.write : job.read;
      const ios = job.read.total_ios + job.write.total_ios;
      resolve({
        iops: round(side.iops, 0),
        mbps: round(side.bw_bytes / 1e6, 1),
        latencyUs: round(side.clat_ns.mean / 1000, 1),
        ios,
        // Over the whole run including ramp time: fio's total_ios excludes the ramp, so this is an upper bound.
        cpuUsPerIo: cpu0 !== null && cpu1 !== null && ios > 0 ? round(((cpu1 - cpu0) * 1e6) / ios, 2) : null,
      });
    });
  });
}

function waitExit(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    const k = setTimeout(() => p.kill('SIGKILL'), 10000);
    p.once('exit', () => { clearTimeout(k); resolve(); });
    p.kill(signal);
  });
}

function started(p: ChildProcess, name: string, ready: (out: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${name} did not start: ${out}`)); }, 120000);
    const on = (b: Buffer) => { out += b; if (ready(out)) { clearTimeout(timer); resolve(out); } };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}): ${out}`)); });
  });
}

/** sanbox of this tree, or of the tree at `root` (a baseline), serving one striped volume. */
async function startSanbox(dir: string, volumeMiB: number, cacheMiB: number, root = path.resolve(__dirname, '..')): Promise<Target> {
  const home = fs.mkdtempSync(path.join(dir, 'sanbox-')); // one array of its own per run, removed when it stops
  const file = path.join(home, 'topology.json');
  fs.writeFileSync(file, JSON.stringify({
    arrays: [{
      name: 'bench', dir: path.join(home, 'array'), cache: { size: `${cacheMiB}MiB` },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'd0', kind: 'file', size: `${volumeMiB / 2 + 16}MiB` }, { name: 'd1', kind: 'file', size: `${volumeMiB / 2 + 16}MiB` }],
      ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: await freeTcpPort() }, { name: 'nbd0', iop: 0, transport: 'tcp', protocol: 'nbd', port: await freeTcpPort() }],
    }],
  }));
  const p = spawn(process.execPath, [path.join(root, 'bin', 'sanbox.js'), 'run', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unguard = guard(() => p.kill('SIGKILL'));
  const out = await started(p, 'sanbox', (o) => o.includes('serving'));
  const fe0 = /port fe0: (\S+)/.exec(out)![1];
  const nbd = /port nbd0: (\S+)/.exec(out)![1];
  const ctl = spawn(process.execPath, [path.join(root, 'bin', 'sanctl.js'), '--target', fe0, 'volume', 'create', 'v', '--size', `${volumeMiB}MiB`, '--stripe'], { stdio: 'pipe' });
  let err = '';
  ctl.stderr.on('data', (b) => { err += b; });
  const code = await new Promise<number | null>((r) => ctl.once('exit', r));
  if (code !== 0) { p.kill('SIGKILL'); throw new Error(`sanctl volume create failed: ${err}`); }
  return {
    name: 'sanbox', uri: `${nbd}/v`, proc: p,
    stop: async () => { await waitExit(p, 'SIGTERM'); unguard(); fs.rmSync(home, { recursive: true, force: true }); },
  };
}

async function startNbdkit(volumeMiB: number): Promise<Target> {
  const port = await freeTcpPort();
  const p = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), '-e', 'v', 'memory', `size=${volumeMiB}M`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unguard = guard(() => p.kill('SIGKILL'));
  await listening(port, p, 'nbdkit');
  return { name: 'nbdkit-memory', uri: `nbd://127.0.0.1:${port}/v`, proc: p, stop: async () => { await waitExit(p, 'SIGTERM'); unguard(); } };
}

async function startQemuNbd(file: string, volumeMiB: number): Promise<Target> {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, volumeMiB << 20);
  const port = await freeTcpPort();
  const p = spawn('qemu-nbd', ['-f', 'raw', '-b', '127.0.0.1', '-p', String(port), '-x', 'v', '-e', '8', '-t', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const unguard = guard(() => p.kill('SIGKILL'));
  await listening(port, p, 'qemu-nbd');
  return {
    name: 'qemu-nbd', uri: `nbd://127.0.0.1:${port}/v`, proc: p,
    stop: async () => { await waitExit(p, 'SIGTERM'); unguard(); fs.rmSync(file, { force: true }); },
  };
}

/** Waits until something accepts connections on the port (the peer printed nothing to wait for). */
async function listening(port: number, p: ChildProcess, name: string): Promise<void> {
  const net = await import('net');
  for (let i = 0; i < 600; i++) {
    if (p.exitCode !== null) throw new Error(`${name} exited (${p.exitCode})`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} is not listening on ${port}`);
}
