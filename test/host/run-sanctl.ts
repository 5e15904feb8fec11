// sanctl's run() with captured output, for tests (no process, no terminal unless asked).
import { PassThrough } from 'stream';
import { run, SanctlIo } from '../../host/sanctl';
import type { CommandTransport } from '../../lib/transport';

export interface SanctlOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** The targets sanctl asked to open. */
  connects: string[];
}

export interface SanctlRunOptions {
  /** Opens targets (default: host/connect's connect). */
  connect?: (target: string) => Promise<CommandTransport>;
  stdin?: PassThrough;
  env?: Record<string, string | undefined>;
  /** Makes stderr a terminal, where progress bars are drawn. */
  tty?: boolean;
  /** stats' clock and wait (default: the process's). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export async function runSanctl(argv: string[], options: SanctlRunOptions = {}): Promise<SanctlOutcome> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  let out = '';
  let err = '';
  stdout.on('data', (b) => { out += b; });
  stderr.on('data', (b) => { err += b; });
  const connects: string[] = [];
  const io: SanctlIo = { stdout, stderr, stdin: options.stdin ?? new PassThrough(), env: options.env ?? {}, now: options.now, sleep: options.sleep };
  if (options.connect) {
    const open = options.connect;
    io.connect = (target) => { connects.push(target); return open(target); };
  }
  const code = await run(argv, io);
  return { code, stdout: out, stderr: err, connects };
}
