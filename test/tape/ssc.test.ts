// The library's devices through the real firmware (docs/tape.md): SMC-3 on the changer, SSC-3 on
// the drives, senses with FILEMARK/EOM/ILI and the INFORMATION residue, early warning, faults,
// reservations, bad input. Deterministic mode: the timing model runs in virtual time.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { tempDir, run, senseOf, pattern } from '../harness/env';
import { startLibrary, cdb, parseElements, blockSizeList, CHANGER, DRIVE0, DRIVE1, SLOT0, IE0, DT0, DT1 } from './env';
import type { CommandTransport } from '../../lib/transport';
import type { QueueSession } from '../../hal/channels/queue';
import * as A from '../../hal/abi';

async function mount(t: CommandTransport, slot: number, drive: number, lun: number): Promise<void> {
  await run(t, CHANGER, cdb.moveMedium(slot, drive));
  await run(t, lun, cdb.load());
}

test('INQUIRY: the changer is type 08h, each drive type 01h, each with its own NAA and serial; REPORT LUNS lists them', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-inq') });
  try {
    const q = emu.connect();
    const c = scsi.parseStandardInquiry(Buffer.from((await run(q, CHANGER, scsi.inquiry(), { inLength: 255 })).data));
    const d = scsi.parseStandardInquiry(Buffer.from((await run(q, DRIVE0, scsi.inquiry(), { inLength: 255 })).data));
    t.is(c.deviceType, 0x08);
    t.is(d.deviceType, 0x01);
    const naa = async (lun: number) => scsi.parseDeviceIdentification(Buffer.from((await run(q, lun, scsi.inquiry(0x83), { inLength: 255 })).data))
      .find((x) => x.type === scsi.DesignatorType.NAA && x.association === scsi.Association.LOGICAL_UNIT)!.text;
    const ids = [await naa(0), await naa(CHANGER), await naa(DRIVE0), await naa(DRIVE1)];
    t.is(new Set(ids).size, 4, `identifiers ${ids.join(' ')}`);
    const serial = async (lun: number) => scsi.parseUnitSerialNumber(Buffer.from((await run(q, lun, scsi.inquiry(0x80), { inLength: 255 })).data));
    t.not(await serial(DRIVE0), await serial(DRIVE1));
    const luns = scsi.parseReportLuns(Buffer.from((await run(q, 0, scsi.reportLuns(), { inLength: 4096 })).data));
    t.deepEqual(luns.filter((l) => l >= 256), [CHANGER, DRIVE0, DRIVE1]);
    t.is((await senseOf(run(q, DRIVE0, Buffer.from([0xc7, 0, 0, 0, 0, 0])))).asc, 0x20); // unknown opcode
  } finally { await emu.stop(); }
});

test('READ ELEMENT STATUS reports every element with its barcode; MOVE MEDIUM moves it and says where it came from; bad moves are refused', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-smc') });
  try {
    const q = emu.connect();
    const status = async () => parseElements(Buffer.from((await run(q, CHANGER, cdb.readElementStatus(), { inLength: 0xffff })).data));
    const before = await status();
    t.deepEqual(before.map((e) => [e.address, e.type]), [[0, 1], [SLOT0, 2], [SLOT0 + 1, 2], [SLOT0 + 2, 2], [SLOT0 + 3, 2], [IE0, 3], [DT0, 4], [DT1, 4]]);
    t.deepEqual(before.filter((e) => e.full).map((e) => e.barcode), ['SB0001L5', 'SB0002L5', 'SB0003L5']);
    await run(q, CHANGER, cdb.moveMedium(SLOT0 + 1, DT1));
    const after = await status();
    t.deepEqual(after.find((e) => e.address === DT1), { address: DT1, type: 4, full: true, barcode: 'SB0002L5', source: SLOT0 + 1 });
    t.false(after.find((e) => e.address === SLOT0 + 1)!.full);
    // Only drives, from their first element.
    const drives = parseElements(Buffer.from((await run(q, CHANGER, cdb.readElementStatus(4, DT1), { inLength: 0xffff })).data));
    t.deepEqual(drives.map((e) => e.address), [DT1]);
    const s1 = await senseOf(run(q, CHANGER, cdb.moveMedium(SLOT0 + 1, SLOT0 + 3)));
    t.deepEqual([s1.key, s1.asc, s1.ascq], [5, 0x3b, 0x0e]); // source empty
    const s2 = await senseOf(run(q, CHANGER, cdb.moveMedium(SLOT0, DT1)));
    t.deepEqual([s2.key, s2.asc, s2.ascq], [5, 0x3b, 0x0d]); // destination full
    const s3 = await senseOf(run(q, CHANGER, cdb.moveMedium(0x0777, DT0)));
    t.deepEqual([s3.key, s3.asc, s3.ascq], [5, 0x21, 0x01]); // no such element
    await run(q, CHANGER, cdb.initializeElementStatus());
    // Element address assignment page: 1 transport, 4 slots, 1 I/E, 2 drives.
    const ms = Buffer.from((await run(q, CHANGER, cdb.modeSense6(0x1d), { inLength: 255 })).data);
    t.deepEqual([ms.readUInt16BE(6), ms.readUInt16BE(8), ms.readUInt16BE(10), ms.readUInt16BE(12), ms.readUInt16BE(14), ms.readUInt16BE(16), ms.readUInt16BE(18), ms.readUInt16BE(20)],
      [0, 1, SLOT0, 4, IE0, 1, DT0, 2]);
    // PREVENT MEDIUM REMOVAL on a drive keeps its cartridge there.
    await run(q, DRIVE1, cdb.prevent(true));
    t.deepEqual((await senseOf(run(q, CHANGER, cdb.moveMedium(DT1, SLOT0 + 1)))).asc, 0x53);
    await run(q, DRIVE1, cdb.prevent(false));
    await run(q, CHANGER, cdb.moveMedium(DT1, SLOT0 + 1));
  } finally { await emu.stop(); }
});

test('SSC: variable and fixed records, filemarks, SPACE, READ POSITION, and the FILEMARK/ILI/BLANK CHECK senses with their residue', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-ssc') });
  try {
    const q = emu.connect();
    t.deepEqual((await senseOf(run(q, DRIVE0, cdb.tur()))).asc, 0x3a); // no cartridge
    await run(q, CHANGER, cdb.moveMedium(SLOT0, DT0));
    t.deepEqual([(await senseOf(run(q, DRIVE0, cdb.tur()))).asc, (await senseOf(run(q, DRIVE0, cdb.tur()))).ascq], [0x04, 0x02]); // LOAD first
    await run(q, DRIVE0, cdb.load());
    await run(q, DRIVE0, cdb.tur());
    const limits = Buffer.from((await run(q, DRIVE0, cdb.readBlockLimits(), { inLength: 6 })).data);
    t.is(limits.readUInt32BE(0) & 0xffffff, 256 * 1024);
    const a = pattern(1000, 1);
    const b = pattern(70000, 2); // spans two AWS blocks
    await run(q, DRIVE0, cdb.write(a.length), { out: a });
    await run(q, DRIVE0, cdb.write(b.length), { out: b });
    await run(q, DRIVE0, cdb.writeFilemarks(1));
    await run(q, DRIVE0, cdb.modeSelect6(12), { out: blockSizeList(512) });
    const fixed = pattern(512 * 3, 3);
    await run(q, DRIVE0, cdb.write(3, true), { out: fixed });
    await run(q, DRIVE0, cdb.writeFilemarks(1));
    const pos = Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data);
    t.is(pos.readUInt32BE(4), 7); // 2 records, a mark, 3 records, a mark
    await run(q, DRIVE0, cdb.rewind());
    t.is(Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data)[0] & 0x80, 0x80); // BOP
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(1000), { inLength: 1000 })).data), a);
    // A record longer than asked: ILI, INFORMATION = asked - actual (negative), the first bytes delivered.
    const r = await q.submit({ lun: DRIVE0, cdb: cdb.read(4096), dataInLength: 4096 });
    t.is(r.status, 2);
    const s = scsi.decodeSense(r.sense);
    t.true(s.ili);
    t.is(s.info! | 0, 4096 - 70000);
    t.deepEqual(Buffer.from(r.data).subarray(0, 4096), b.subarray(0, 4096));
    // The filemark: NO SENSE, FILEMARK, 00h/01h, the whole length as residue; positioned after it.
    const fm = await senseOf(run(q, DRIVE0, cdb.read(1000), { inLength: 1000 }));
    t.deepEqual([fm.key, fm.asc, fm.ascq, fm.filemark, fm.info], [0, 0, 1, true, 1000]);
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(3, { fixed: true }), { inLength: 1536 })).data), fixed);
    // Fixed read across the next mark: 2 asked, none read, residue 2.
    const fm2 = await senseOf(run(q, DRIVE0, cdb.read(2, { fixed: true }), { inLength: 1024 }));
    t.deepEqual([fm2.filemark, fm2.info], [true, 2]);
    // End of data: BLANK CHECK 00h/05h.
    const eod = await senseOf(run(q, DRIVE0, cdb.read(1, { fixed: true }), { inLength: 512 }));
    t.deepEqual([eod.key, eod.asc, eod.ascq], [8, 0, 5]);
    // SPACE: back over a filemark, then blocks back to BOT (EOM, 00h/04h), forward to EOD.
    await run(q, DRIVE0, cdb.space(1, -1));
    t.is(Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data).readUInt32BE(4), 6);
    await run(q, DRIVE0, cdb.rewind());
    const sp = await senseOf(run(q, DRIVE0, cdb.space(0, 5)));
    t.deepEqual([sp.filemark, sp.info! | 0], [true, 3]); // 2 records then the mark
    const back = await senseOf(run(q, DRIVE0, cdb.space(0, -9))); // backwards, the mark stops it on its BOT side
    t.deepEqual([back.filemark, back.info! | 0], [true, -9]);
    const bot = await senseOf(run(q, DRIVE0, cdb.space(0, -9)));
    t.deepEqual([bot.eom, bot.asc, bot.ascq, bot.info! | 0], [true, 0, 4, -7]);
    await run(q, DRIVE0, cdb.space(3, 0));
    t.is(Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data).readUInt32BE(4), 7);
    // SILI: a short record in variable mode reads without ILI.
    await run(q, DRIVE0, cdb.rewind());
    t.deepEqual(Buffer.from((await run(q, DRIVE0, cdb.read(2000, { sili: true }), { inLength: 2000 })).data), a);
    // MODE SENSE: the block descriptor says 512; MODE SELECT of a block length beyond the limit is refused.
    const ms = Buffer.from((await run(q, DRIVE0, cdb.modeSense6(0), { inLength: 255 })).data);
    t.deepEqual([ms[3], ms.readUInt32BE(8) & 0xffffff], [8, 512]);
    const ms10 = Buffer.from((await run(q, DRIVE0, cdb.modeSense10(0x3f), { inLength: 255 })).data);
    t.is(ms10.readUInt16BE(6), 8);
    const bad = await senseOf(run(q, DRIVE0, cdb.modeSelect6(12), { out: blockSizeList(1 << 20) }));
    t.deepEqual([bad.key, bad.asc], [5, 0x26]);
    // Bad CDBs: fixed without a block size, SPACE code 2, a transfer beyond the limit.
    await run(q, DRIVE0, cdb.modeSelect6(12), { out: blockSizeList(0) });
    t.is((await senseOf(run(q, DRIVE0, cdb.read(1, { fixed: true }), { inLength: 512 }))).asc, 0x24);
    t.is((await senseOf(run(q, DRIVE0, cdb.space(2, 1)))).asc, 0x24);
    t.is((await senseOf(run(q, DRIVE0, cdb.write(300 * 1024), { out: Buffer.alloc(300 * 1024) }))).asc, 0x24);
    // ERASE at the start of the second record: the tape ends there.
    await run(q, DRIVE0, cdb.rewind());
    await run(q, DRIVE0, cdb.space(0, 1));
    await run(q, DRIVE0, cdb.erase());
    t.is((await senseOf(run(q, DRIVE0, cdb.read(10), { inLength: 10 }))).key, 8);
    await run(q, DRIVE0, cdb.unload());
    t.is((await senseOf(run(q, DRIVE0, cdb.tur()))).ascq, 0x02);
  } finally { await emu.stop(); }
});

test('early warning: writes past it succeed with EOM (NO SENSE, 00h/02h); at the end a write is VOLUME OVERFLOW and is not on the tape', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-ew'), library: { earlyWarning: '128KiB' } });
  try {
    const q = emu.connect();
    emu.array().inject('drive0 end of medium at 1MiB');
    await mount(q, SLOT0, DT0, DRIVE0);
    const rec = pattern(64 * 1024, 5);
    let ew = -1;
    let n = 0;
    for (; n < 32; n++) {
      const r = await q.submit({ lun: DRIVE0, cdb: cdb.write(rec.length), dataOut: rec });
      if (r.status === 0) continue;
      const s = scsi.decodeSense(r.sense);
      if (s.key === 0 && s.eom) { if (ew < 0) ew = n; continue; }
      t.deepEqual([s.key, s.eom, s.asc, s.ascq, s.info], [0x0d, true, 0, 2, rec.length]);
      break;
    }
    t.true(ew > 0 && ew < n, `early warning at write ${ew}, end at ${n}`);
    const pos = Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data);
    t.is(pos.readUInt32BE(4), n); // the refused record is not on the tape
    t.is(pos[0] & 0x40, 0x40); // EOP: past early warning
  } finally { await emu.stop(); }
});

test('faults: a write error at a block is MEDIUM ERROR with the residue and the block is not on the tape; offline drives are NOT READY; write-protected cartridges refuse writes', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-fault') });
  try {
    const q = emu.connect();
    await mount(q, SLOT0, DT0, DRIVE0);
    await run(q, DRIVE0, cdb.modeSelect6(12), { out: blockSizeList(1024) });
    emu.array().inject('drive0 write error at 2');
    const s = await senseOf(run(q, DRIVE0, cdb.write(4, true), { out: pattern(4096, 6) }));
    t.deepEqual([s.key, s.asc, s.info], [3, 0x0c, 2]); // blocks 0 and 1 written, 2 of 4 not
    t.is(Buffer.from((await run(q, DRIVE0, cdb.readPosition(), { inLength: 20 })).data).readUInt32BE(4), 2);
    emu.array().inject('drive0 heal');
    emu.array().inject('drive0 offline');
    t.deepEqual([(await senseOf(run(q, DRIVE0, cdb.tur()))).asc, (await senseOf(run(q, DRIVE0, cdb.tur()))).ascq], [0x04, 0x12]);
    emu.array().inject('drive0 heal');
    await mount(q, SLOT0 + 2, DT1, DRIVE1);
    t.deepEqual([(await senseOf(run(q, DRIVE1, cdb.write(10), { out: Buffer.alloc(10) }))).key], [7]);
    t.throws(() => emu.array().inject('drive0 melts'), { message: /cannot parse fault/ });
  } finally { await emu.stop(); }
});

test('sharing: a drive RESERVEd by one host answers RESERVATION CONFLICT to another until released, and the reservation dies with its session', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-share') });
  try {
    const a = emu.connect();
    const b = emu.connect();
    await mount(a, SLOT0, DT0, DRIVE0);
    await run(a, DRIVE0, cdb.reserve());
    // b's first command meets the unit attention of a's LOAD (28h/00h), before the reservation.
    t.is((await senseOf(run(b, DRIVE0, cdb.tur()))).asc, 0x28);
    const r = await b.submit({ lun: DRIVE0, cdb: cdb.write(10), dataOut: Buffer.alloc(10) });
    t.is(r.status, 0x18);
    t.is((await b.submit({ lun: DRIVE0, cdb: scsi.inquiry(), dataInLength: 96 })).status, 0); // INQUIRY passes
    await run(a, DRIVE0, cdb.write(10), { out: Buffer.alloc(10) });
    await run(b, DRIVE0, cdb.release()); // not its reservation: GOOD, nothing changes
    t.is((await b.submit({ lun: DRIVE0, cdb: cdb.tur() })).status, 0x18);
    await run(a, DRIVE0, cdb.release());
    await run(b, DRIVE0, cdb.tur());
    await run(b, DRIVE0, cdb.reserve());
    t.is((await a.submit({ lun: DRIVE0, cdb: cdb.tur() })).status, 0x18);
    b.close();
    await run(a, DRIVE0, cdb.tur()); // b's session is gone, and its reservation with it
  } finally { await emu.stop(); }
});

test('the disk command set stays off the library\'s LUNs: RESERVE/RELEASE (10) and the SBC-4 additions (COMPARE AND WRITE, WRITE SAME, GET LBA STATUS) are INVALID COMMAND OPERATION CODE on a drive and the changer, and leave the drive\'s RESERVE (6) as it was', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-no-pr') });
  try {
    const q = emu.connect();
    await run(q, DRIVE0, cdb.reserve());
    const refused = [
      ['RESERVE (10)', Buffer.from([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]), {}],
      ['RELEASE (10)', Buffer.from([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]), {}],
      ['COMPARE AND WRITE', Buffer.from([0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]), { out: Buffer.alloc(1024) }],
      ['WRITE SAME (16)', Buffer.from([0x93, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]), { out: Buffer.alloc(512) }],
      ['GET LBA STATUS', Buffer.from([0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]), { inLength: 32 }],
    ] as const;
    for (const lun of [DRIVE0, CHANGER]) {
      for (const [name, c, io] of refused) {
        const s = await senseOf(run(q, lun, c, io as { out?: Buffer; inLength?: number }));
        t.deepEqual([s.key, s.asc, s.ascq], [scsi.SenseKey.ILLEGAL_REQUEST, 0x20, 0x00], `${name} on LUN ${lun}: ${s.text}`);
      }
    }
    // The drive's own reservation is untouched: another initiator still meets it.
    const other = emu.connect();
    t.is((await other.submit({ lun: DRIVE0, cdb: cdb.tur() })).status, 0x18, 'RESERVATION CONFLICT for another initiator');
  } finally { await emu.stop(); }
});

test('a READ asking for more than the host\'s buffer holds sends only the expected length (overflow residual), the ILI sense too; the bytes after the buffer are untouched', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-overrun') });
  try {
    const q = emu.connect() as unknown as QueueSession;
    await mount(q, SLOT0, DT0, DRIVE0);
    const rec = pattern(20000, 5);
    await run(q, DRIVE0, cdb.write(rec.length), { out: rec });
    await run(q, DRIVE0, cdb.rewind());
    // The session's data area: the next command's 4 KiB go at its start, what follows is another command's.
    const area = q.slot.ring(A.SES_DATA);
    const mem = emu.array().mem;
    mem.u8.fill(0xee, area, area + 65536);
    const r = await q.submit({ lun: DRIVE0, cdb: cdb.read(rec.length), dataInLength: 4096 });
    t.is(r.status, 0);
    t.deepEqual(Buffer.from(r.data), rec.subarray(0, 4096));
    t.deepEqual([r.residualOverflow, r.residual], [true, rec.length - 4096]);
    t.true(Buffer.from(mem.bytes(area + 4096, 65536 - 4096)).equals(Buffer.alloc(65536 - 4096, 0xee)), 'nothing written past the 4 KiB the host gave');
    // A longer READ of the same record: ILI with INFORMATION = asked - actual, and still no more than the host's 8 KiB.
    await run(q, DRIVE0, cdb.rewind());
    mem.u8.fill(0xee, area, area + 65536);
    const ili = await q.submit({ lun: DRIVE0, cdb: cdb.read(30000), dataInLength: 8192 });
    const s = scsi.decodeSense(ili.sense);
    t.deepEqual([ili.status, s.ili, s.info], [2, true, 10000]);
    t.deepEqual(Buffer.from(ili.data), rec.subarray(0, 8192));
    t.true(Buffer.from(mem.bytes(area + 8192, 65536 - 8192)).equals(Buffer.alloc(65536 - 8192, 0xee)), 'nothing written past the 8 KiB the host gave');
  } finally { await emu.stop(); }
});
