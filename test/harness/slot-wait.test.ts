// A command waiting for a cache slot has a bound (issue 7: "every wait has a bound and an error
// that names what it waited for"), through the real firmware in virtual time: with every slot of a
// small cache dirty and both media stuck (a medium write takes 100 s), a WRITE (and a READ) of a
// chunk not in the cache waits cache.slotWaitMs and then fails ABORTED COMMAND, SYSTEM BUFFER FULL
// (0Bh/55h/01h) with the slot's first LBA in INFORMATION, a log line naming volume and LBA, and
// STAT_SLOT_WAIT_EXPIRED counted. What was acknowledged before comes back after a power cut.
// On the firmware before the bound the write waited for the 100 s medium write that freed a slot
// and was answered GOOD then (test 2 fails: 'write 16 answered after 899.999991 s').
import test from 'ava';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { startSmall, tempDir, createVolume, write, read, pattern, senseOf } from './env';

const SLOT_BLOCKS = 128; // 64 KiB of 512-byte blocks
const cache = { size: '1MiB', destageIntervalMs: 2, destageAgeMs: 5 }; // 16 slots

test('a write and a read that find every cache slot dirty fail at the slot-wait bound, 0Bh/55h/01h; nothing acknowledged is lost', async (t) => {
  t.timeout(120_000); // last-resort guard (wall): the old firmware never answered
  const dir = tempDir('slot-wait');
  const lines: string[] = [];
  const o = { dir, mode: 'deterministic' as const, cache: { ...cache, slotWaitMs: 5000 } };
  const emu = await startSmall(o, { log: (l) => lines.push(l) });
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 65536, blockSize: 512, placement: 'striped' }, 1);
  emu.array().inject('d0 slow 1000000'); // a medium write takes 100 s of virtual time
  emu.array().inject('d1 slow 1000000');

  // Fill the cache: each write its own slot, acknowledged from NV, destaged only in 100 s.
  const acked: number[] = [];
  let refused: scsi.Sense | undefined;
  let tookNs = 0;
  for (let k = 0; k < 40 && !refused; k++) {
    const before = emu.driver().now();
    try {
      await write(s, 1, k * SLOT_BLOCKS, pattern(65536, 100 + k));
      acked.push(k);
    } catch (e) {
      if (!(e instanceof scsi.ScsiError) || !e.sense) throw e;
      refused = e.sense;
      tookNs = emu.driver().now() - before;
      t.is(e.sense.info, k * SLOT_BLOCKS, 'INFORMATION: the first LBA of the slot it waited for');
    }
  }
  t.truthy(refused, 'a write found no slot');
  t.deepEqual([refused!.key, refused!.asc, refused!.ascq], [0x0b, 0x55, 0x01], 'ABORTED COMMAND, SYSTEM BUFFER FULL');
  t.true(acked.length >= 8 && acked.length <= 16, `${acked.length} writes acknowledged before the cache was full`);
  t.true(tookNs >= 5e9 && tookNs < 6e9, `answered at the bound (5 s), after ${tookNs / 1e9} s of virtual time`);

  // A read of a chunk not in the cache waits for a slot as well, and fails the same way.
  const next = (acked.length + 1) * SLOT_BLOCKS;
  const rs = await senseOf(read(s, 1, next, 8));
  t.deepEqual([rs.key, rs.asc, rs.ascq, rs.info], [0x0b, 0x55, 0x01, next]);
  t.is(emu.array().stats()[A.STAT_SLOT_WAIT_EXPIRED], 2);
  t.true(lines.some((l) => /slot-wait bound/.test(l) && /\b0\b/.test(l) && new RegExp(`\\b${acked.length * SLOT_BLOCKS}\\b`).test(l)), lines.join('\n'));

  // Power cut with the media still stuck: the acknowledged writes are in NV and come back.
  await emu.stop('powerFail');
  const again = await startSmall(o);
  t.teardown(() => again.stop('powerFail'));
  const s2 = again.connect();
  for (const k of acked) t.true((await read(s2, 1, k * SLOT_BLOCKS, SLOT_BLOCKS)).equals(pattern(65536, 100 + k)), `slot ${k}`);
  t.true((await read(s2, 1, acked.length * SLOT_BLOCKS, SLOT_BLOCKS)).equals(Buffer.alloc(65536)), 'nothing of the refused write landed');
});

test('the default slot-wait bound is 20 s of virtual time (topology cache.slotWaitMs)', async (t) => {
  t.timeout(120_000);
  const emu = await startSmall({ dir: tempDir('slot-wait-default'), mode: 'deterministic', cache });
  t.teardown(() => emu.stop('powerFail'));
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 65536, blockSize: 512, placement: 'striped' }, 1);
  emu.array().inject('d0 slow 1000000');
  emu.array().inject('d1 slow 1000000');
  let k = 0;
  for (; k < 40; k++) {
    const before = emu.driver().now();
    const r = await s.submit({ lun: 1, cdb: scsi.readWrite(true, k * SLOT_BLOCKS, SLOT_BLOCKS), dataOut: pattern(65536, k) });
    const took = emu.driver().now() - before;
    // The firmware before the bound answered GOOD once a 100 s medium write freed a slot.
    t.true(took < 21e9, `write ${k} answered after ${took / 1e9} s of virtual time, past the bound`);
    if (r.status === 0) continue;
    t.true(took >= 20e9, `${took / 1e9} s`);
    t.is(r.status, 2);
    break;
  }
  t.true(k <= 16, 'a write found no slot');
});
