// Large transfers over a serial line (a socat pty pair standing in for a devboard's cable), through
// sanctl and the real firmware: 16 MiB written and read back byte for byte, also after an earlier
// sanctl on the same line was killed (SIGKILL) in the middle of a write or a read. bench/serial.ts
// runs the same at 100 MiB and more.
//
// What used to go wrong (issue 7, docs/design-notes.md "Serial lines"): serialport's poller let a
// waiting read cancel a waiting write's wake-up, so transfers stalled until the array cut the
// half-received frame (TRUNCATED); and a new initiator on the line met what the killed one left:
// a partial frame, commands still running in the array, their late answers under tags it reused.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import * as A from '../../hal/abi';
import { EXIT_OK } from '../../host/sanctl';
import { runSanctl } from '../host/run-sanctl';
import { ensureBuilt, root } from './built';
import { tempDir, startSmall, pattern } from '../harness/env';
import type { Emulator } from '../../harness';


test.before(ensureBuilt);
const haveSocat = spawnSync('socat', ['-V']).status === 0;
const serialTest = haveSocat ? test.serial : test.serial.skip;
const MiB = 1 << 20;

async function start(label: string): Promise<{ emu: Emulator; dir: string; target: string }> {
  const dir = tempDir(label);
  // Two channel IOPs, the line on the second, as a devboard's UART would be beside a host port.
  const emu = await startSmall({
    dir,
    channels: 2,
    media: [{ name: 'd0', kind: 'file', size: '128MiB' }, { name: 'd1', kind: 'file', size: '128MiB' }],
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'ser0', iop: 1, transport: 'pty', link: path.join(dir, 'tty') }],
  });
  return { emu, dir, target: `serial://${path.join(dir, 'tty')}` };
}

/** Writes `data` through sanctl, reads it back, and says where the copy differs (-1: identical). */
async function roundTrip(target: string, dir: string, data: Buffer, name: string): Promise<number> {
  const input = path.join(dir, `${name}.in`);
  const output = path.join(dir, `${name}.out`);
  fs.writeFileSync(input, data);
  const w = await runSanctl(['--target', target, 'write', 'wire', input]);
  if (w.code !== EXIT_OK) throw new Error(`sanctl write: exit ${w.code}: ${w.stderr}`);
  const r = await runSanctl(['--target', target, 'read', 'wire', output, '--bytes', String(data.length)]);
  if (r.code !== EXIT_OK) throw new Error(`sanctl read: exit ${r.code}: ${r.stderr}`);
  const copy = fs.readFileSync(output);
  if (copy.length !== data.length) return Math.min(copy.length, data.length);
  for (let i = 0; i < data.length; i++) if (copy[i] !== data[i]) return i;
  return -1;
}

/** Resolves once `condition()` holds, looked at after every turn of the event loop's timers. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

serialTest('16 MiB written and read back over a pty by sanctl are identical, twice', async (t) => {
  const { emu, dir, target } = await start('serial16');
  t.teardown(() => emu.stop());
  const create = await runSanctl(['--target', target, 'volume', 'create', 'wire', '--size', '80MiB']);
  t.is(create.code, EXIT_OK, create.stderr);
  t.is(await roundTrip(target, dir, pattern(16 * MiB, 1), 'a'), -1);
  t.is(await roundTrip(target, dir, pattern(16 * MiB, 2), 'b'), -1);
  const s = emu.array().stats();
  t.is(s[A.STAT_FERR_TRUNCATED] + s[A.STAT_FERR_BAD_CRC] + s[A.STAT_FERR_PROTOCOL] + s[A.STAT_FERR_UNKNOWN_TAG], 0, 'no frame was cut or lost');
});

for (const phase of ['write', 'read'] as const) {
  serialTest(`after a sanctl on the line is killed (SIGKILL) in the middle of a ${phase}, the next one moves 16 MiB intact`, async (t) => {
    const { emu, dir, target } = await start(`serialkill${phase}`);
    t.teardown(() => emu.stop());
    const create = await runSanctl(['--target', target, 'volume', 'create', 'wire', '--size', '80MiB']);
    t.is(create.code, EXIT_OK, create.stderr);
    // The victim moves 64 MiB; it is killed once 4 MiB of its commands have completed.
    const big = path.join(dir, 'big.in');
    fs.writeFileSync(big, pattern(64 * MiB, 9));
    if (phase === 'read') t.is((await runSanctl(['--target', target, 'write', 'wire', big])).code, EXIT_OK);
    const counter = phase === 'write' ? A.STAT_WRITE_BYTES : A.STAT_READ_BYTES;
    const before = emu.array().stats()[counter];
    const args = phase === 'write' ? ['write', 'wire', big] : ['read', 'wire', path.join(dir, 'big.out')];
    const victim = spawn(process.execPath, [path.join(root, 'bin', 'sanctl.js'), '--target', target, ...args], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => victim.once('exit', (_code, signal) => r(signal)));
    await until(() => emu.array().stats()[counter] - before >= 4 * MiB || victim.exitCode !== null);
    victim.kill('SIGKILL');
    t.is(await exited, 'SIGKILL', 'the victim was killed mid-transfer, not finished');
    const aborted = emu.array().stats()[A.STAT_ABORTED];
    t.is(await roundTrip(target, dir, pattern(16 * MiB, 3), 'after'), -1);
    t.true(emu.array().stats()[A.STAT_ABORTED] > aborted, "the next sanctl's PING with RESET dropped the victim's commands");
  });
}
