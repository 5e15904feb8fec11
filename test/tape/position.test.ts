// What backup software needs beyond streaming (docs/tape.md, "Positioning", "IMMED", "Unit
// attentions"): LOCATE(10)/(16) to a block address or a logical file, READ POSITION's short, long
// and extended forms, SPACE(16); IMMED answered at once with the operation going on in virtual
// time, later commands waiting for it, and its failure a deferred error (71h) for its own nexus;
// unit attentions per I_T nexus after a medium change on a drive and an import/export access on
// the changer. Deterministic mode: the timing model runs in virtual time.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import * as A from '../../hal/abi';
import { tempDir, run, senseOf, pattern } from '../harness/env';
import { startLibrary, cdb, parseElements, CHANGER, DRIVE0, SLOT0, IE0, DT0 } from './env';
import type { CommandTransport } from '../../lib/transport';
import type { Emulator } from '../../harness';

const locate10 = (block: number, o: { bt?: boolean; cp?: boolean; partition?: number; immed?: boolean } = {}) => {
  const b = Buffer.alloc(10); b[0] = 0x2b; b[1] = (o.bt ? 4 : 0) | (o.cp ? 2 : 0) | (o.immed ? 1 : 0); b.writeUInt32BE(block, 3); b[8] = o.partition ?? 0; return b;
};
const locate16 = (id: bigint, o: { type?: number; cp?: boolean; partition?: number; immed?: boolean } = {}) => {
  const b = Buffer.alloc(16); b[0] = 0x92; b[1] = ((o.type ?? 0) << 3) | (o.cp ? 2 : 0) | (o.immed ? 1 : 0); b[3] = o.partition ?? 0; b.writeBigUInt64BE(id, 4); return b;
};
const readPosition = (sa: number, alloc = 0) => { const b = Buffer.alloc(10); b[0] = 0x34; b[1] = sa; b.writeUInt16BE(alloc, 7); return b; };
const space16 = (code: number, count: bigint, paramLength = 0) => {
  const b = Buffer.alloc(16); b[0] = 0x91; b[1] = code; b.writeBigInt64BE(count, 4); b.writeUInt16BE(paramLength, 12); return b;
};
const immed = (c: Buffer, bit = 1) => { const b = Buffer.from(c); b[1] |= bit; return b; };

async function mount(q: CommandTransport): Promise<void> {
  await run(q, CHANGER, cdb.moveMedium(SLOT0, DT0));
  await run(q, DRIVE0, cdb.load());
}

async function longPosition(q: CommandTransport): Promise<{ object: number; file: number; bop: boolean }> {
  const d = Buffer.from((await run(q, DRIVE0, readPosition(6), { inLength: 32 })).data);
  return { object: Number(d.readBigUInt64BE(8)), file: Number(d.readBigUInt64BE(16)), bop: (d[0] & 0x80) !== 0 };
}

/**
 * The array's time (virtual) from a command's arrival to its status, from the firmware's latency
 * counter: what the host sees is later, as the deterministic driver runs the timing model on
 * before it yields. One command at a time.
 */
async function timed<T>(emu: Emulator, p: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const before = emu.array().stats()[A.STAT_LATENCY_NS];
  const value = await p();
  return { ms: (emu.array().stats()[A.STAT_LATENCY_NS] - before) / 1e6, value };
}

test('LOCATE(10)/(16) to blocks, files and EOD; READ POSITION short, long, extended; SPACE(16); the one-partition rules', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-locate') });
  try {
    const q = emu.connect();
    await mount(q);
    const rec = (n: number) => pattern(2000 + 4 * n, n + 1);
    // 0 a, 1 b, 2 mark, 3 c, 4 mark, 5 d; EOD at 6.
    for (const n of [0, 1, -1, 3, -1, 5]) {
      if (n < 0) await run(q, DRIVE0, cdb.writeFilemarks(1));
      else await run(q, DRIVE0, cdb.write(rec(n).length), { out: rec(n) });
    }
    t.deepEqual(await longPosition(q), { object: 6, file: 2, bop: false });
    await run(q, DRIVE0, locate10(3));
    t.deepEqual(await longPosition(q), { object: 3, file: 1, bop: false });
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(rec(3).length), { inLength: rec(3).length })).data), rec(3));
    await run(q, DRIVE0, locate10(1, { bt: true })); // BT: the device's block addresses are the same numbers
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(rec(1).length), { inLength: rec(1).length })).data), rec(1));
    await run(q, DRIVE0, locate16(2n, { type: 1 })); // logical file 2: after the second mark
    t.deepEqual(await longPosition(q), { object: 5, file: 2, bop: false });
    await run(q, DRIVE0, locate16(0n, { type: 1 }));
    t.deepEqual(await longPosition(q), { object: 0, file: 0, bop: true });
    await run(q, DRIVE0, locate16(0n, { type: 3 })); // end of data
    t.is((await longPosition(q)).object, 6);
    await run(q, DRIVE0, locate16(6n)); // the append point itself is a valid address
    // Beyond the end of data: BLANK CHECK, END-OF-DATA DETECTED, positioned at it.
    await run(q, DRIVE0, locate10(0));
    const beyond = await senseOf(run(q, DRIVE0, locate10(100)));
    t.deepEqual([beyond.key, beyond.asc, beyond.ascq], [8, 0, 5]);
    t.is((await longPosition(q)).object, 6);
    t.deepEqual([(await senseOf(run(q, DRIVE0, locate16(1n << 40n)))).key], [8]);
    // One partition: CP with partition 0 is fine, with another ILLEGAL REQUEST pointing at the partition byte.
    await run(q, DRIVE0, locate10(2, { cp: true }));
    const part = await senseOf(run(q, DRIVE0, locate10(2, { cp: true, partition: 1 })));
    t.deepEqual([part.key, part.asc], [5, 0x24]);
    t.is((await senseOf(run(q, DRIVE0, locate16(2n, { cp: true, partition: 3 })))).asc, 0x24);
    t.is((await senseOf(run(q, DRIVE0, locate16(2n, { type: 2 })))).asc, 0x24); // reserved destination type
    // Extended form: first and last object, additional length 1Ch, allocation length honoured.
    await run(q, DRIVE0, locate10(4));
    const ext = Buffer.from((await run(q, DRIVE0, readPosition(8, 32), { inLength: 32 })).data);
    t.deepEqual([ext.readUInt16BE(2), Number(ext.readBigUInt64BE(8)), Number(ext.readBigUInt64BE(16))], [0x1c, 4, 4]);
    t.is((await run(q, DRIVE0, readPosition(8, 8), { inLength: 32 })).data.length, 8);
    const short = Buffer.from((await run(q, DRIVE0, readPosition(0), { inLength: 20 })).data);
    t.deepEqual([short.readUInt32BE(4), short.readUInt32BE(8)], [4, 4]);
    t.is((await senseOf(run(q, DRIVE0, readPosition(7), { inLength: 32 }))).asc, 0x24);
    // SPACE(16): a filemark back from 5 stops on its BOT side (4); blocks forward; a parameter list is refused.
    await run(q, DRIVE0, locate10(5));
    await run(q, DRIVE0, space16(1, -1n));
    t.is((await longPosition(q)).object, 4);
    await run(q, DRIVE0, locate10(0));
    await run(q, DRIVE0, space16(0, 2n));
    t.is((await longPosition(q)).object, 2);
    t.is((await senseOf(run(q, DRIVE0, space16(0, 1n, 8)))).asc, 0x24);
    t.is((await senseOf(run(q, DRIVE0, space16(0, 1n << 40n)))).asc, 0x24);
    const fm = await senseOf(run(q, DRIVE0, space16(0, 3n))); // from 2 (the mark): stopped by it at once
    t.deepEqual([fm.filemark, fm.info! | 0], [true, 3]);
  } finally { await emu.stop(); }
});

test('IMMED: REWIND, LOCATE and WRITE FILEMARKS answer at once in virtual time, later commands wait for the operation; without IMMED the status waits', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-immed'), library: { timing: { locateMBps: 1, streamMBps: 1000, loadMs: 500 } } });
  try {
    const q = emu.connect();
    await mount(q);
    const rec = pattern(256 * 1024, 7);
    for (let i = 0; i < 4; i++) await run(q, DRIVE0, cdb.write(rec.length), { out: rec });
    // About 1 MiB of tape: a rewind at 1 MB/s takes about a second of virtual time.
    const slow = await timed(emu, () => run(q, DRIVE0, cdb.rewind()));
    t.true(slow.ms >= 1000, `REWIND without IMMED answered after ${slow.ms} ms`);
    await run(q, DRIVE0, locate10(4));
    const fast = await timed(emu, () => run(q, DRIVE0, immed(cdb.rewind())));
    t.true(fast.ms < 10, `REWIND with IMMED answered after ${fast.ms} ms`);
    // Sent together: the IMMED rewind answers at once, the READ POSITION behind it waits for the
    // rewind to end and says where it ended (the drive reports the position only once it is there).
    await run(q, DRIVE0, locate10(4));
    const both = await timed(emu, () => Promise.all([run(q, DRIVE0, immed(cdb.rewind())), longPosition(q)]));
    t.true(both.ms >= 1000, `the two commands took ${both.ms} ms between them: READ POSITION waited for the rewind`);
    t.deepEqual(both.value[1], { object: 0, file: 0, bop: true });
    // LOCATE with IMMED, then a READ: the read waits for the locate and reads the record there.
    const loc = await timed(emu, () => run(q, DRIVE0, locate10(3, { immed: true })));
    t.true(loc.ms < 10);
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(rec.length), { inLength: rec.length })).data), rec);
    // WRITE FILEMARKS with IMMED: GOOD at once; TEST UNIT READY then waits and sees the drive ready.
    await run(q, DRIVE0, immed(cdb.writeFilemarks(1)));
    await run(q, DRIVE0, cdb.tur());
    t.deepEqual(await longPosition(q), { object: 5, file: 1, bop: false });
    // ERASE's IMMED is bit 1.
    await run(q, DRIVE0, locate10(4));
    await run(q, DRIVE0, immed(cdb.erase(), 2));
    t.is((await senseOf(run(q, DRIVE0, cdb.read(10), { inLength: 10 }))).key, 8); // erased from 4 on
  } finally { await emu.stop(); }
});

test('IMMED failure is a deferred error (71h) for the nexus that asked, not for another; LOAD with IMMED is a medium change for the others', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-deferred'), library: { timing: { loadMs: 2000, locateMBps: 1 } } });
  try {
    const a = emu.connect();
    const b = emu.connect();
    await run(a, CHANGER, cdb.moveMedium(SLOT0, DT0));
    // Sent together: the LOAD answers at once, the TEST UNIT READY behind it waits for the load and finds the drive ready.
    const ld = await timed(emu, () => Promise.all([run(a, DRIVE0, immed(cdb.load())), run(a, DRIVE0, cdb.tur())]));
    t.true(ld.ms >= 2000, `the two commands took ${ld.ms} ms between them`);
    await run(a, CHANGER, cdb.tur());
    const alone = await timed(emu, () => run(a, DRIVE0, immed(cdb.load()))); // threaded already: nothing to wait for
    t.true(alone.ms < 10, `LOAD with IMMED answered after ${alone.ms} ms`);
    await run(a, DRIVE0, cdb.tur());
    const ua = await senseOf(run(b, DRIVE0, cdb.tur()));
    t.deepEqual([ua.key, ua.asc, ua.ascq], [6, 0x28, 0]); // b: NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
    await run(b, DRIVE0, cdb.tur()); // reported once
    await run(a, DRIVE0, cdb.write(100), { out: pattern(100, 1) });
    await run(a, DRIVE0, locate10(50, { immed: true })); // beyond the end of data: found when the locate ends
    await run(b, DRIVE0, cdb.tur()); // b waits for it too, and is told nothing about a's operation
    const r = await a.submit({ lun: DRIVE0, cdb: cdb.tur() });
    t.is(r.status, 2);
    t.is(r.sense[0] & 0x7f, 0x71, 'deferred error response code');
    const s = scsi.decodeSense(r.sense);
    t.deepEqual([s.key, s.asc, s.ascq], [8, 0, 5]);
    await run(a, DRIVE0, cdb.tur()); // reported once
  } finally { await emu.stop(); }
});

test('changer: an operator export and import through the I/E element is a unit attention 28h/01h for every nexus; REQUEST SENSE returns it and clears it', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-ie') });
  try {
    const a = emu.connect();
    const b = emu.connect();
    await run(a, CHANGER, cdb.moveMedium(SLOT0 + 1, IE0));
    emu.array().inject('library0 export SB0002L5');
    const ua = await senseOf(run(a, CHANGER, cdb.tur()));
    t.deepEqual([ua.key, ua.asc, ua.ascq], [6, 0x28, 0x01]);
    const rs = Buffer.from((await run(b, CHANGER, Buffer.from([0x03, 0, 0, 0, 18, 0]), { inLength: 18 })).data);
    t.deepEqual([rs[2] & 0xf, rs[12], rs[13]], [6, 0x28, 0x01]);
    await run(b, CHANGER, cdb.tur()); // REQUEST SENSE cleared it
    const els = parseElements(Buffer.from((await run(a, CHANGER, cdb.readElementStatus(), { inLength: 0xffff })).data));
    t.false(els.find((e) => e.address === IE0)!.full);
    t.false(els.some((e) => e.barcode === 'SB0002L5'));
    t.throws(() => emu.array().inject('library0 export SB0001L5'), { message: /not in an import\/export element/ });
    emu.array().inject('library0 import SB0002L5');
    t.is((await senseOf(run(b, CHANGER, cdb.tur()))).ascq, 0x01);
    const back = parseElements(Buffer.from((await run(b, CHANGER, cdb.readElementStatus(), { inLength: 0xffff })).data));
    t.is(back.find((e) => e.address === IE0)!.barcode, 'SB0002L5');
    t.throws(() => emu.array().inject('library0 import SB0002L5'), { message: /in the library already/ });
  } finally { await emu.stop(); }
});
