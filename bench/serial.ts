// Serial soak: large transfers over a pty (a socat pair standing in for a devboard's cable), each
// checked byte for byte, beside the raw line's own speed. One JSON document on stdout, progress on
// stderr. Run:
//   npm run -s bench -- serial [--mib 100] [--runs 5] [--no-kill]
//
// Each run: a sanctl process (bin/sanctl.js) starts a 64 MiB write over the line and is killed
// (SIGKILL) once 4 MiB of it are in, unless --no-kill; then the client library (the code sanctl's
// write and read run) writes --mib MiB of a fresh pattern from LBA 0 and reads it back over the
// same line, and the copy is compared with what was written. The array: release firmware,
// real-time mode, one channel IOP and the disk IOP, two file media.
//
// The peer: the same pty pair driven by node serialport alone (lib/serial.ts), one end writing
// --mib MiB and the other reading them: what the line itself carries, without protocol or array.
// `ratio` is sanbox's rate over the line's.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { Readable, Writable } from 'stream';
import { Emulator } from '../harness';
import { connect } from '../host/connect';
import { ScsiClient } from '../host/client';
import { openSerialLine } from '../lib/serial';
import * as A from '../hal/abi';

const MiB = 1 << 20;

class UsageError extends Error { override name = 'UsageError'; }

interface Options { mib: number; runs: number; kill: boolean }

function parse(args: string[]): Options {
  const o: Options = { mib: 100, runs: 5, kill: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): number => {
      const n = Number(args[++i]);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${a} takes a positive integer`);
      return n;
    };
    if (a === '--mib') o.mib = value();
    else if (a === '--runs') o.runs = value();
    else if (a === '--no-kill') o.kill = false;
    else throw new UsageError(`bench serial: unknown argument ${a} (--mib N, --runs N, --no-kill)`);
  }
  return o;
}

/** Bytes that differ at every sector and for every seed (xorshift). */
function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= bytes; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

const say = (line: string): void => { process.stderr.write(`${line}\n`); };

/** The line alone: one end of a fresh pty pair writes `bytes`, the other reads them. MB/s. */
async function rawLine(dir: string, bytes: number): Promise<{ mbps: number; identical: boolean }> {
  const a = path.join(dir, 'raw-a');
  const b = path.join(dir, 'raw-b');
  const socat = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  try {
    while (!(fs.existsSync(a) && fs.existsSync(b))) await new Promise((r) => setTimeout(r, 10));
    const tx = await openSerialLine({ path: a, baudRate: 115200 });
    const rx = await openSerialLine({ path: b, baudRate: 115200 });
    const data = pattern(bytes, 77);
    const got = Buffer.allocUnsafe(bytes);
    let n = 0;
    const start = process.hrtime.bigint();
    const done = new Promise<void>((resolve) => rx.on('data', (c: Buffer) => { c.copy(got, n); n += c.length; if (n >= bytes) resolve(); }));
    for (let o = 0; o < bytes; o += MiB) if (!tx.write(data.subarray(o, o + MiB))) await new Promise((r) => tx.once('drain', r));
    await done;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await Promise.all([tx, rx].map((p) => new Promise((r) => p.close(r))));
    return { mbps: round(bytes / seconds / 1e6), identical: got.equals(data) };
  } finally {
    socat.kill();
  }
}

/** A sanctl process writing 64 MiB over the line, killed once 4 MiB of its commands are in. */
async function killedWrite(emu: Emulator, target: string, file: string): Promise<boolean> {
  const before = emu.array().stats()[A.STAT_WRITE_BYTES];
  const sanctl = path.join(__dirname, '..', 'bin', 'sanctl.js');
  const victim: ChildProcess = spawn(process.execPath, [sanctl, '--target', target, 'write', 'soak', file], { stdio: 'ignore' });
  const exited = new Promise<string | null>((r) => victim.once('exit', (_c, signal) => r(signal)));
  while (emu.array().stats()[A.STAT_WRITE_BYTES] - before < 4 * MiB && victim.exitCode === null) await new Promise((r) => setTimeout(r, 5));
  victim.kill('SIGKILL');
  return (await exited) === 'SIGKILL';
}

function round(x: number): number { return Math.round(x * 100) / 100; }

export async function run(args: string[]): Promise<object> {
  const o = parse(args);
  if (spawnSync('socat', ['-V']).status !== 0) throw new Error('socat is not installed (apt-get install socat)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-serial-bench-'));
  const bytes = o.mib * MiB;
  const emu = await Emulator.start({
    mode: 'realtime',
    arrays: [{
      name: 'soak', dir, cache: { size: '256MiB' }, iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'd0', kind: 'file', size: `${Math.max(128, 2 * o.mib)}MiB` }, { name: 'd1', kind: 'file', size: `${Math.max(128, 2 * o.mib)}MiB` }],
      ports: [{ name: 'ser0', iop: 0, transport: 'pty', link: path.join(dir, 'tty') }],
    }],
  }, { baseDir: dir });
  const target = `serial://${path.join(dir, 'tty')}`;
  const runs: object[] = [];
  try {
    const line = await rawLine(dir, bytes);
    say(`raw line: ${line.mbps} MB/s`);
    let t = await connect(target);
    await new ScsiClient(t).createVolume({ name: 'soak', blockSize: 512, blocks: Math.max(bytes, 64 * MiB) / 512, media: [], placement: 'striped' });
    await new ScsiClient(t).mapVolume(0, 0, 1);
    await t.close();
    const victimFile = path.join(dir, 'victim.bin');
    if (o.kill) fs.writeFileSync(victimFile, pattern(64 * MiB, 5));
    for (let r = 1; r <= o.runs; r++) {
      const killed = o.kill ? await killedWrite(emu, target, victimFile) : undefined;
      const data = pattern(bytes, 1000 + r);
      t = await connect(target);
      const client = new ScsiClient(t);
      let start = process.hrtime.bigint();
      await client.writeStream(1, Readable.from([data]));
      const writeS = Number(process.hrtime.bigint() - start) / 1e9;
      const copy = Buffer.allocUnsafe(bytes);
      let at = 0;
      const sink = new Writable({ write(chunk: Buffer, _e, cb) { chunk.copy(copy, at); at += chunk.length; cb(); } });
      start = process.hrtime.bigint();
      await client.readStream(1, sink, bytes);
      const readS = Number(process.hrtime.bigint() - start) / 1e9;
      await t.close();
      const identical = at === bytes && copy.equals(data);
      const result = { run: r, victimKilled: killed, writeMBps: round(bytes / writeS / 1e6), readMBps: round(bytes / readS / 1e6), identical };
      say(JSON.stringify(result));
      runs.push(result);
      if (!identical) break;
    }
    const good = runs.filter((x) => (x as { identical: boolean }).identical).length;
    const median = (k: 'writeMBps' | 'readMBps'): number => {
      const v = runs.map((x) => (x as Record<string, number>)[k]).sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)];
    };
    const s = emu.array().stats();
    return {
      benchmark: 'serial', mib: o.mib, runsAsked: o.runs, runsIdentical: good, killedBeforeEachRun: o.kill,
      sanbox: { writeMBps: median('writeMBps'), readMBps: median('readMBps') },
      line: { mbps: line.mbps, identical: line.identical },
      ratio: { write: round(median('writeMBps') / line.mbps), read: round(median('readMBps') / line.mbps) },
      frameErrors: { truncated: s[A.STAT_FERR_TRUNCATED], badCrc: s[A.STAT_FERR_BAD_CRC], protocol: s[A.STAT_FERR_PROTOCOL], unknownTag: s[A.STAT_FERR_UNKNOWN_TAG] },
      commandsDroppedByResync: s[A.STAT_ABORTED],
      runs,
    };
  } finally {
    await emu.stop('powerFail');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
