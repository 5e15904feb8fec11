// LUN security (comm/access.ts, docs/scsi.md "Access lists") over the whole SBC-4 command set: every
// command that changes a volume's blocks is refused to a read-only initiator with DATA PROTECT, WRITE
// PROTECTED (07h/27h/00h) and changes nothing; every command that only reads goes through; an
// initiator with no access gets LOGICAL UNIT NOT SUPPORTED for all of them.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { startSmall, tempDir, createVolume, write, read, pattern } from './env';
import { send, be, cdb10, cdb12, cdb16 } from './sbc-env';

const BS = 512;
const cdb6 = (op: number, lba: number, blocks: number): number[] => [op, (lba >> 16) & 0x1F, (lba >> 8) & 0xFF, lba & 0xFF, blocks & 0xFF, 0];
const one = pattern(BS, 7);

/** Every write-type command of docs/scsi.md, each with the data-out it needs. */
const writes: { name: string; cdb: number[]; out?: Buffer }[] = [
  { name: 'WRITE (6)', cdb: cdb6(0x0A, 8, 1), out: one },
  { name: 'WRITE (10)', cdb: cdb10(0x2A, 8, 1), out: one },
  { name: 'WRITE (12)', cdb: cdb12(0xAA, 8, 1), out: one },
  { name: 'WRITE (16)', cdb: cdb16(0x8A, 8, 1), out: one },
  { name: 'WRITE AND VERIFY (10)', cdb: cdb10(0x2E, 8, 1), out: one },
  { name: 'WRITE AND VERIFY (12)', cdb: cdb12(0xAE, 8, 1), out: one },
  { name: 'WRITE AND VERIFY (16)', cdb: cdb16(0x8E, 8, 1), out: one },
  { name: 'WRITE SAME (10)', cdb: cdb10(0x41, 8, 4), out: one },
  { name: 'WRITE SAME (16)', cdb: cdb16(0x93, 8, 4), out: one },
  { name: 'WRITE SAME (16) UNMAP', cdb: cdb16(0x93, 8, 4, 0x08), out: one },
  { name: 'COMPARE AND WRITE', cdb: [0x89, 0, ...be(8, 8), 0, 0, 0, 1, 0, 0], out: Buffer.concat([pattern(64 * BS, 1).subarray(8 * BS, 9 * BS), one]) },
  { name: 'ORWRITE', cdb: cdb16(0x8B, 8, 1), out: one },
  { name: 'UNMAP', cdb: [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], out: Buffer.from([0, 22, 0, 16, 0, 0, 0, 0, ...be(8, 8), ...be(4, 4), 0, 0, 0, 0]) },
];

/** Every command that reads blocks or the volume's state. */
const reads: { name: string; cdb: number[]; out?: Buffer; inLength?: number }[] = [
  { name: 'READ (6)', cdb: cdb6(0x08, 8, 1), inLength: BS },
  { name: 'READ (10)', cdb: cdb10(0x28, 8, 1), inLength: BS },
  { name: 'READ (12)', cdb: cdb12(0xA8, 8, 1), inLength: BS },
  { name: 'READ (16)', cdb: cdb16(0x88, 8, 1), inLength: BS },
  { name: 'VERIFY (10) BYTCHK=0', cdb: cdb10(0x2F, 8, 4) },
  { name: 'VERIFY (12) BYTCHK=1', cdb: cdb12(0xAF, 8, 1, 0x02), out: pattern(64 * BS, 1).subarray(8 * BS, 9 * BS) },
  { name: 'VERIFY (16) BYTCHK=0', cdb: cdb16(0x8F, 8, 4) },
  { name: 'PRE-FETCH (10)', cdb: cdb10(0x34, 8, 4) },
  { name: 'PRE-FETCH (16)', cdb: cdb16(0x90, 8, 4) },
  { name: 'GET LBA STATUS', cdb: [0x9E, 0x12, ...be(0, 8), ...be(64, 4), 0, 0], inLength: 64 },
  { name: 'READ CAPACITY (16)', cdb: [0x9E, 0x10, ...be(0, 8), ...be(32, 4), 0, 0], inLength: 32 },
];

test('a read-only initiator: every write-type command is DATA PROTECT and writes nothing, every read-type one runs; with no access every one is LOGICAL UNIT NOT SUPPORTED', async (t) => {
  const emu = await startSmall({ dir: tempDir('sbc-access') });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  const v = await createVolume(s, { name: 'v', blocks: 2048, blockSize: BS, placement: 'linear' }, 1);
  const before = pattern(64 * BS, 1);
  await write(s, 1, 0, before);
  const admin = new ScsiClient(s);
  const queues = (await admin.listSessions()).filter((x) => x.kind === 'queue').map((x) => x.initiator);
  t.true(queues.length > 0);
  // The management commands go to LUN 0, which access lists do not cover: the admin keeps working.
  for (const q of queues) await admin.setAccess(v, 'ro', q);
  for (const w of writes) {
    const x = await send(s, w.cdb, { out: w.out });
    t.deepEqual([x.r.status, x.sense?.key, x.sense?.asc, x.sense?.ascq], [2, scsi.SenseKey.DATA_PROTECT, 0x27, 0x00], `${w.name}: ${x.sense?.text}`);
  }
  for (const r of reads) {
    const x = await send(s, r.cdb, { out: r.out, inLength: r.inLength });
    t.is(x.r.status, 0, `${r.name} (read-only): ${x.sense?.text}`);
  }
  t.true((await read(s, 1, 0, 64)).equals(before), 'nothing was written');
  for (const q of queues) await admin.setAccess(v, 'none', q);
  for (const c of [...writes, ...reads]) {
    const x = await send(s, c.cdb, { out: c.out, inLength: (c as { inLength?: number }).inLength });
    t.deepEqual([x.r.status, x.sense?.key, x.sense?.asc], [2, scsi.SenseKey.ILLEGAL_REQUEST, 0x25], `${c.name} (none): ${x.sense?.text}`);
  }
  for (const q of queues) await admin.setAccess(v, 'rw', q);
  t.true((await read(s, 1, 0, 64)).equals(before), 'still nothing written');
  // The same list read-write: the write commands run (UNMAP where offered, docs/scsi.md).
  const x = await send(s, cdb6(0x0A, 8, 1), { out: one });
  t.is(x.r.status, 0, `read-write again: ${x.sense?.text}`);
});
