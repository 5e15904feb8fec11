// `sanbox run <topology>` as a child process, for the tests that take the user's path (and kill it).
import * as path from 'path';
import { spawn, ChildProcess } from 'child_process';
import { root } from './built';

const START_MS = 120_000;

export interface Running { child: ChildProcess; targets: Record<string, string>; exited: Promise<number | null> }

/** Starts `sanbox run <file>` and waits for the lines that say where its ports are. */
export async function startSanbox(file: string): Promise<Running> {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'sanbox.js'), 'run', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const targets: Record<string, string> = {};
  let out = '';
  let err = '';
  child.stderr!.on('data', (b) => { err += b; });
  await new Promise<void>((resolve, reject) => {
    // A last-resort bound: on a loaded machine ts-node alone can take tens of seconds to start it.
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`sanbox did not start within ${START_MS / 1000} s: ${out}${err}`)); }, START_MS);
    child.stdout!.on('data', (b) => {
      out += b;
      for (const m of out.matchAll(/port (\S+): (\S+)/g)) targets[m[1]] = m[2];
      if (out.includes('serving')) { clearTimeout(timer); resolve(); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`sanbox exited (${code}): ${err}`)); });
  });
  return { child, targets, exited };
}

