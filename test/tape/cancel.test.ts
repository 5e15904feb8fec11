// An aborted READ's buffer (docs/tape.md, "An aborted command's buffer is given back at once"):
// the firmware frees the command's buffer when the command is aborted, writes the request's id to
// MTD_CANCEL and rings the drive; from then on the binding must not write the record into that
// buffer, which another command may hold by then. Deterministic mode, through the firmware: the
// host hangs up (session close: every command of the session aborted) at two moments, placed
// exactly by hooks on the binding that only call close(): right after the drive took the READ
// (it waits for its service time) and right after the READ's image I/O started (the firmware sees
// the hang-up in the same round, before the completion is posted). The record was put in the image
// file directly, so its bytes can be in common memory only if the binding put them there.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import { AwsImage } from '../../hal/tape/aws';
import { Emulator } from '../../harness';
import { tempDir, pattern, run } from '../harness/env';
import { libraryTopology, libraryDir, cdb, CHANGER, DRIVE0, SLOT0, DT0 } from './env';
import type { QueueSession } from '../../hal/channels/queue';

interface Hookable { take(dev: number, now: number): number; start(p: { r: { op: number } }, now: number): void }

test('an aborted READ never lands in the buffer it had: not when aborted while the drive waits to run it, nor while its image I/O is under way', async (t) => {
  const dir = tempDir('tape-cancel');
  fs.mkdirSync(libraryDir(dir), { recursive: true });
  const record = pattern(100 * 1024, 0x5eed);
  const img = await AwsImage.open(path.join(libraryDir(dir), 'SB0001L5.aws'));
  try { await img.writeRecordsAsync(0, [record]); } finally { img.close(); }
  const emu = await Emulator.start(libraryTopology({ dir }), { debug: true });
  try {
    const mem = emu.array().mem;
    const inMemory = () => Buffer.from(mem.u8.buffer, mem.u8.byteOffset, mem.u8.byteLength).indexOf(record.subarray(0, 64)) >= 0;
    const setup = emu.connect();
    await run(setup, CHANGER, cdb.moveMedium(SLOT0, DT0));
    await run(setup, DRIVE0, cdb.load());
    const tape = emu.array().tape! as unknown as Hookable;
    const take = tape.take.bind(tape);
    const start = tape.start.bind(tape);
    const hook: { session?: QueueSession; when: 'taken' | 'started' } = { when: 'taken' }; // the session to close, and when
    const closed = () => hook.session === undefined; // the hook has closed it
    tape.take = (dev, now) => {
      const n = take(dev, now);
      if (hook.when === 'taken' && dev === 1 && hook.session) { void hook.session.close(); hook.session = undefined; }
      return n;
    };
    tape.start = (p, now) => {
      start(p, now);
      if (hook.when === 'started' && p.r.op === A.TOP_READ && hook.session) { void hook.session.close(); hook.session = undefined; }
    };
    for (const moment of ['taken', 'started'] as const) {
      const a = emu.connect() as QueueSession;
      hook.when = moment;
      hook.session = a;
      const read = a.submit({ lun: DRIVE0, cdb: cdb.read(record.length), dataInLength: record.length });
      await t.throwsAsync(read, { message: /session closed/ }, `${moment}: the READ ends with its session`);
      t.true(closed(), `${moment}: the host hung up at that moment`);
      // Another host's command waits for the orphaned request to be reaped: its completion has been posted.
      await run(emu.connect(), DRIVE0, cdb.tur());
      t.false(inMemory(), `${moment}: the record is nowhere in common memory (the freed buffer was left alone)`);
    }
    // The record is there to be read: a READ that is not aborted gets it.
    const b = emu.connect();
    await run(b, DRIVE0, cdb.rewind());
    t.true(Buffer.from((await run(b, DRIVE0, cdb.read(record.length), { inLength: record.length })).data).equals(record));
  } finally { await emu.stop(); }
});
