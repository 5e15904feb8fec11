// The array directory lock (harness/lock.ts, issue 7 defect 9): one emulator per array directory.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Emulator, ArrayDirectoryInUse } from '../../harness';
import { LOCK_FILE } from '../../harness/lock';
import { tempDir, smallTopology } from './env';

test('a second emulator on the same directory in the same process is refused; after stop the lock is gone', async (t) => {
  const dir = tempDir('lock');
  const first = await Emulator.start(smallTopology({ dir }));
  const err = await t.throwsAsync(Emulator.start(smallTopology({ dir })), { instanceOf: ArrayDirectoryInUse });
  t.regex(err!.message, new RegExp(`array a0: .* is in use by sanbox pid ${process.pid} since .*${LOCK_FILE}`));
  await first.stop('powerFail');
  t.false(fs.existsSync(path.join(dir, 'a0', LOCK_FILE)));
  const again = await Emulator.start(smallTopology({ dir }));
  await again.stop();
});

test('a stale lock (its pid no longer runs) is taken over with a message; a lock from another host is not', async (t) => {
  const dir = tempDir('stale');
  fs.mkdirSync(path.join(dir, 'a0'), { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const lock = path.join(dir, 'a0', LOCK_FILE);
  fs.writeFileSync(lock, JSON.stringify({ pid: Number(dead), host: os.hostname(), started: '2026-01-01T00:00:00.000Z' }));
  const lines: string[] = [];
  const emu = await Emulator.start(smallTopology({ dir }), { log: (l) => lines.push(l) });
  t.true(lines.some((l) => l === `array a0: taking over the lock of sanbox pid ${dead} (started 2026-01-01T00:00:00.000Z), which is no longer running`), lines.join('\n'));
  t.is(JSON.parse(fs.readFileSync(lock, 'utf8')).pid, process.pid);
  await emu.stop();
  fs.writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere.example', started: '2026-01-01T00:00:00.000Z' }));
  fs.rmSync(path.join(dir, 'a0', 'nvram.bin'));
  const err = await t.throwsAsync(Emulator.start(smallTopology({ dir, trace: true })), { instanceOf: ArrayDirectoryInUse });
  t.regex(err!.message, /in use by sanbox pid 1 on host elsewhere\.example/);
  t.false(fs.existsSync(path.join(dir, 'trace.jsonl')), 'the trace was not opened');
  t.false(fs.existsSync(path.join(dir, 'a0', 'nvram.bin')), 'the NV image was not opened');
});
