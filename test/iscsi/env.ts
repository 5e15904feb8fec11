// Fixtures for the iSCSI tests: a small array with an iSCSI port (TCP, any free port) and an
// in-process port, a volume mapped at LUN 1 of both; and the real clients, found or skipped.
import { spawn, spawnSync } from 'child_process';
import type { ExecutionContext } from 'ava';
import { Emulator } from '../../harness';
import { tempDir, startSmall, createVolume } from '../harness/env';

export interface IscsiArray {
  emu: Emulator;
  dir: string;
  /** The TCP port the iSCSI port listens on. */
  port: number;
  target: string;
  /** iscsi://127.0.0.1:<port>/<target> */
  url: string;
  portal: string;
}

export async function startIscsi(label: string, o: { chap?: object; pingIntervalMs?: number; blocks?: number; sessions?: number; extraPorts?: object[]; mode?: 'realtime' | 'deterministic'; seed?: number; trace?: boolean; cache?: object; placement?: 'linear' | 'striped' | 'thin' } = {}): Promise<IscsiArray> {
  const dir = tempDir(label);
  const emu = await startSmall({
    dir,
    mode: o.mode,
    seed: o.seed,
    trace: o.trace,
    cache: o.cache,
    ports: [
      { name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, ...(o.chap ? { chap: o.chap } : {}),
        ...(o.pingIntervalMs !== undefined ? { pingIntervalMs: o.pingIntervalMs } : {}), ...(o.sessions ? { sessions: o.sessions } : {}) },
      { name: 'q0', iop: 0, transport: 'inproc' },
      ...(o.extraPorts ?? []),
    ],
  });
  await createVolume(emu.connect(), { name: 'v', blocks: o.blocks ?? 16384, blockSize: 512, placement: o.placement ?? 'striped' }, 1);
  const url = emu.array().targets.find((x) => x.port === 'fe0')!.target;
  const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(url)!;
  return { emu, dir, port: Number(m[2]), target: m[3], url, portal: `${m[1]}:${m[2]}` };
}

/** True when the program runs (e.g. `iscsi-inq --help`); else the test is skipped with a message. */
export function have(t: ExecutionContext, program: string, pkg: string): boolean {
  const r = spawnSync(program, ['--help'], { stdio: 'ignore' });
  if (r.error) { t.log(`skipped: ${program} is not installed (apt-get install ${pkg})`); t.pass(); return false; }
  return true;
}

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs a program to its end without blocking the event loop (the array runs in this process). */
export function run(program: string, args: string[], timeoutMs = 120000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}
