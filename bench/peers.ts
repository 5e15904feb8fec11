// The peer targets the benchmark and the conformance run measure sanbox against, and what must not
// outlive them. tgtd (the Linux user-space iSCSI target) is started on a free portal and on a
// control port of its own, so it never meets a system tgtd, with one LUN on a backing file; after
// the run — also after a failure, Ctrl-C or SIGTERM — its target and the daemon are deleted
// (tgtadm --op delete; SIGKILL after 2 s) and its socket, lock and backing file removed.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';

// ---- Cleanup on a signal ------------------------------------------------------------------------

/** What must not outlive the run (a tgtd, files in /dev/shm): undone at exit and on SIGINT/SIGTERM. */
const cleanups = new Set<() => void>();

function onSignal(signal: NodeJS.Signals): void {
  for (const c of cleanups) c();
  process.stderr.write(`stopped by ${signal}\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function runCleanups(): void {
  for (const c of cleanups) c();
}

/** Registers a cleanup to run on exit or a signal; the returned function unregisters it. */
export function guard(cleanup: () => void): () => void {
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

// ---- Programs and ports -------------------------------------------------------------------------

export function which(cmd: string): string | undefined {
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

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A folder in RAM (tmpfs) for backing files and NV images when there is one. */
export function scratchRoot(): string {
  return fs.existsSync('/dev/shm') ? '/dev/shm' : require('os').tmpdir();
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null where there is no /proc. */
export function cpuSeconds(pid: number): number | null {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return ticks / clockTicks();
  } catch {
    return null;
  }
}

let ticksPerSecond = 0;
function clockTicks(): number {
  if (ticksPerSecond === 0) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(r.stdout?.trim()) || 100;
  }
  return ticksPerSecond;
}

// ---- tgtd -------------------------------------------------------------------------------------------

const TGTD_SOCKET_DIR = '/var/run/tgtd';
export const TGTD_IQN = 'iqn.2025-01.io.sanbox:bench';

export interface TgtdBins { tgtd: string; tgtadm: string }

export interface TgtdRun {
  proc: ChildProcess;
  tgtadm: string;
  /** Our control port: tgtd's management socket is TGTD_SOCKET_DIR/socket.<control>. */
  control: number;
  file: string;
  portal: number;
  /** TGTD_SOCKET_DIR did not exist before: remove it if it is empty afterwards. */
  madeSocketDir: boolean;
  log: string[];
  version: string;
}

/** tgtd and tgtadm, or why there is none (the message a skip prints). */
export function findTgtd(): TgtdBins | string {
  const tgtd = which('tgtd');
  const adm = which('tgtadm');
  if (!tgtd || !adm) return 'tgtd not installed (apt-get install tgt)';
  return { tgtd, tgtadm: adm };
}

function tgtadm(run: TgtdRun, args: string[]): { ok: boolean; text: string } {
  const r = spawnSync(run.tgtadm, ['-C', String(run.control), '--lld', 'iscsi', ...args], { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0, text: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * Starts tgtd with one target (TGTD_IQN) and LUN 1 on `file` (which the caller has made), on a free
 * portal; returns once tgtadm answers and the target is set up. `stopTgtd` undoes it all.
 */
export async function startTgtd(bins: TgtdBins, file: string): Promise<TgtdRun> {
  let control = 4000 + (process.pid % 20000);
  while (fs.existsSync(`${TGTD_SOCKET_DIR}/socket.${control}`)) control++;
  const portal = await freeTcpPort();
  const version = spawnSync(bins.tgtd, ['-V'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const run: TgtdRun = {
    proc: undefined as unknown as ChildProcess, tgtadm: bins.tgtadm, control, log: [], file, portal, version,
    madeSocketDir: !fs.existsSync(TGTD_SOCKET_DIR),
  };
  run.proc = spawn(bins.tgtd, ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${portal}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => { run.log.push(...d.toString().split('\n').filter(Boolean)); };
  run.proc.stdout!.on('data', keep);
  run.proc.stderr!.on('data', keep);
  run.proc.on('error', (e) => run.log.push(e.message));
  const unguard = guard(() => { run.proc.kill('SIGKILL'); removeTgtdFiles(run); });
  run.proc.once('exit', () => unguard());
  try {
    await configureTgtd(run);
  } catch (e) {
    await stopTgtd(run);
    throw e;
  }
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
export async function stopTgtd(run: TgtdRun): Promise<void> {
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

// ---- A baseline tree for before/after runs ------------------------------------------------------

const ROOT = path.resolve(__dirname, '..');

/** git in this tree; a failure is a usage error (a ref that does not name a commit). */
export function git(args: string[]): string {
  const r = spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw Object.assign(new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`), { name: 'UsageError' });
  return r.stdout.trim();
}

/**
 * A tree of `ref` with its firmware and host code built, in the temporary folder (kept for the next
 * run): git archive of the commit, this tree's node_modules linked in.
 */
export function baselineTree(ref: string, progress: (s: string) => void): { dir: string; commit: string } {
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`]);
  const dir = path.join(os.tmpdir(), `sanbox-bench-baseline-${commit.slice(0, 12)}`);
  if (fs.existsSync(path.join(dir, 'build', 'controller.wasm'))) return { dir, commit };
  progress(`baseline ${ref} (${commit.slice(0, 12)}): extracting into ${dir} and building it`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tar = spawnSync('sh', ['-c', `git -C '${ROOT}' archive --format=tar ${commit} | tar -x -C '${dir}'`], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`extracting ${commit}: ${tar.stderr}`);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const build = spawnSync(process.execPath, ['scripts/build.js'], { cwd: dir, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building the baseline: ${build.stderr || build.stdout}`);
  return { dir, commit };
}
