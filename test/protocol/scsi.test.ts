// lib/scsi.ts: CDBs against bytes laid out by hand from SPC-4/SBC-3 and docs/scsi.md, the parsers
// against data laid out as the firmware writes it (firmware/scsi/*.ts), and sense data in words.
import test from 'ava';
import * as S from '../../lib/scsi';
import * as A from '../../hal/abi';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cdb = (b: Buffer): string => b.toString('hex').replace(/(..)/g, '$1 ').trim();

test('CDBs of the standard commands', (t) => {
  t.is(cdb(S.testUnitReady()), '00 00 00 00 00 00');
  t.is(cdb(S.requestSense()), '03 00 00 00 12 00');
  t.is(cdb(S.inquiry()), '12 00 00 00 ff 00');
  t.is(cdb(S.inquiry(0x83, 0x200)), '12 01 83 02 00 00');
  t.is(cdb(S.modeSense6(S.ModePage.CACHING)), '1a 00 08 00 ff 00');
  t.is(cdb(S.modeSense6(S.ModePage.ALL, { dbd: true, allocation: 64 })), '1a 08 3f 00 40 00');
  t.is(cdb(S.readCapacity10()), '25 00 00 00 00 00 00 00 00 00');
  t.is(cdb(S.readCapacity16()), '9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00');
  t.is(cdb(S.reportLuns()), 'a0 00 00 00 00 00 00 00 08 08 00 00');
  t.is(cdb(S.synchronizeCache10()), '35 00 00 00 00 00 00 00 00 00');
  t.is(cdb(S.synchronizeCache10(0x10, 8, { immediate: true })), '35 02 00 00 00 10 00 00 08 00');
});

test('CDBs of READ and WRITE (10) and (16), with FUA', (t) => {
  t.is(cdb(S.readWrite10(false, 0x12345678, 0x100)), '28 00 12 34 56 78 00 01 00 00');
  t.is(cdb(S.readWrite10(true, 1, 8, { fua: true })), '2a 08 00 00 00 01 00 00 08 00');
  t.is(cdb(S.readWrite16(false, 0x123456789, 0x10000)), '88 00 00 00 00 01 23 45 67 89 00 01 00 00 00 00');
  t.is(cdb(S.readWrite16(true, 2 ** 33, 1, { fua: true })), '8a 08 00 00 00 02 00 00 00 00 00 00 00 01 00 00');
  t.is(S.readWrite(false, 0xffffffff, 0xffff)[0], 0x28, 'the 10-byte CDB while it can carry the command');
  t.is(S.readWrite(false, 2 ** 32, 1)[0], 0x88);
  t.is(S.readWrite(true, 0, 0x10000)[0], 0x8a);
  t.throws(() => S.readWrite10(false, 2 ** 32, 1), { instanceOf: RangeError });
});

test('CDBs and parameter lists of the management commands (docs/scsi.md)', (t) => {
  t.is(cdb(S.management(false, S.Management.LIST_VOLUMES, 0x10000)), 'c0 10 00 00 00 00 00 01 00 00 00 00 00 00 00 00');
  t.is(cdb(S.management(true, S.Management.CREATE_VOLUME, 64)), 'c1 01 00 00 00 00 00 00 00 40 00 00 00 00 00 00');
  t.is(cdb(S.deleteVolume(3, true)), 'c1 02 00 00 00 03 00 00 00 00 00 00 00 00 01 00');
  t.is(cdb(S.deleteVolume(3)).slice(-5), '00 00');
  const p = S.createVolumeParameters({ name: 'db', blocks: 0x80000, blockSize: 4096, placement: 'striped', media: [2, 0] });
  t.is(p.length, 64);
  t.deepEqual(p.subarray(0, 16), hex('ffff 1000 01 02 0000 0000000000080000'));
  t.deepEqual(p.subarray(16, 48), Buffer.concat([Buffer.from('db'), Buffer.alloc(30)]));
  t.deepEqual(p.subarray(48), Buffer.concat([hex('0200'), Buffer.alloc(14)]));
  t.is(S.createVolumeParameters({ name: 'v', blocks: 1, blockSize: 512, number: 7 }).readUInt16BE(0), 7);
  t.throws(() => S.createVolumeParameters({ name: 'x'.repeat(32), blocks: 1, blockSize: 512 }), { instanceOf: RangeError });
  t.throws(() => S.createVolumeParameters({ name: '', blocks: 1, blockSize: 512 }), { instanceOf: RangeError });
  t.deepEqual(S.mapParameters(3, S.ALL_PORTS, 7), hex('0003 ff 00 0007 0000'));
});

test('standard INQUIRY data', (t) => {
  const d = Buffer.alloc(96);
  d[0] = 0x0c; d[2] = 6; d[3] = 0x12; d[4] = 91; d[7] = 0x02;
  d.write('SANBOX  ', 8, 'latin1'); d.write('ARRAY CONTROLLER', 16, 'latin1'); d.write('0.1 ', 32, 'latin1');
  t.deepEqual(S.parseStandardInquiry(d), {
    peripheralQualifier: 0, deviceType: 0x0c, version: 6, commandQueueing: true, vendor: 'SANBOX', product: 'ARRAY CONTROLLER', revision: '0.1',
  });
  t.is(S.parseStandardInquiry(Buffer.from([0x7f, ...Buffer.alloc(35)])).peripheralQualifier, 3);
  t.throws(() => S.parseStandardInquiry(Buffer.alloc(20)));
});

test('VPD pages 00h, 80h, 83h and B0h', (t) => {
  t.deepEqual(S.parseSupportedVpdPages(hex('00 00 00 04 00 80 83 b0')), [0x00, 0x80, 0x83, 0xb0]);
  t.is(S.parseUnitSerialNumber(Buffer.concat([hex('00 80 00 0a'), Buffer.from('SB0001-000')])), 'SB0001-000');
  t.throws(() => S.parseUnitSerialNumber(hex('00 83 00 00')), { message: /asked for VPD page 80h, got 83h/ });
  const naa = hex('6001405000000000 0000000000000001');
  const ids = S.parseDeviceIdentification(Buffer.concat([
    hex('00 83 00 30'),
    hex('01 03 00 10'), naa,
    hex('02 01 00 08'), Buffer.from('SANBOX  '),
    hex('01 94 00 04 00 00 00 02'),
    hex('01 a3 00 04 11 22 33 44'),
  ]));
  t.like(ids[0], { association: S.Association.LOGICAL_UNIT, type: S.DesignatorType.NAA, text: naa.toString('hex') });
  t.like(ids[1], { codeSet: 2, type: S.DesignatorType.T10, text: 'SANBOX' });
  t.like(ids[2], { association: S.Association.TARGET_PORT, type: S.DesignatorType.RELATIVE_TARGET_PORT, text: '2' });
  t.like(ids[3], { association: S.Association.TARGET_DEVICE, text: '11223344' });
  const b0 = Buffer.alloc(64);
  b0[1] = 0xb0; b0.writeUInt16BE(0x3c, 2); b0.writeUInt16BE(128, 6); b0.writeUInt32BE(65536, 8); b0.writeUInt32BE(2048, 12);
  t.deepEqual(S.parseBlockLimits(b0), { optimalGranularityBlocks: 128, maximumTransferBlocks: 65536, optimalTransferBlocks: 2048 });
});

test('REPORT LUNS, READ CAPACITY and the caching mode page', (t) => {
  t.deepEqual(S.parseReportLuns(hex('00000018 00000000 0000000000000000 0001000000000000 412c000000000000')), [0, 1, 300]);
  t.deepEqual(S.parseReadCapacity10(hex('0007ffff 00000200')), { blocks: 0x80000, blockSize: 512 });
  t.deepEqual(S.parseReadCapacity10(hex('ffffffff 00000200')).blocks, 2 ** 32, 'all ones: ask READ CAPACITY(16)');
  t.deepEqual(S.parseReadCapacity16(Buffer.concat([hex('00000001ffffffff 00001000'), Buffer.alloc(20)])), { blocks: 2 ** 33, blockSize: 4096 });
  // MODE SENSE(6) as firmware/scsi/mode.ts answers page 3Fh: header, block descriptor, caching (08h), control (0Ah).
  const caching = Buffer.alloc(20); caching[0] = 0x08; caching[1] = 0x12; caching[2] = 0x04;
  const control = Buffer.alloc(12); control[0] = 0x0a; control[1] = 0x0a;
  const body = Buffer.concat([hex('00 00 10 08'), hex('00 08 00 00 00 00 02 00'), control, caching]);
  body[0] = body.length - 1;
  t.deepEqual(S.parseCachingPage(body), { writeCache: true, readCacheDisabled: false });
  t.throws(() => S.parseCachingPage(Buffer.concat([hex('0f 00 10 00'), control])), { message: /no caching page/ });
});

test('management lists: volumes, mappings, media, ports, statistics', (t) => {
  const vol = Buffer.alloc(96);
  vol.writeUInt16BE(4, 0); vol.writeUInt16BE(512, 2); vol[4] = 1; vol[5] = 2; vol[6] = 1;
  vol.writeBigUInt64BE(0x80000n, 8); vol.write('db', 16); vol[48] = 1; vol[49] = 3; vol.writeUInt32BE(5, 64);
  const list = (size: number, entries: Buffer[]) => Buffer.concat([hex(`${(size * entries.length).toString(16).padStart(8, '0')} ${size.toString(16).padStart(4, '0')} ${entries.length.toString(16).padStart(4, '0')}`), ...entries]);
  vol.writeUInt32BE(3, 68); // allocated chunks (a thin volume's), 64 KiB each
  t.deepEqual(S.parseVolumes(list(96, [vol])), [{ number: 4, name: 'db', blockSize: 512, placement: 'striped', media: [1, 3], state: 'online', blocks: 0x80000, dirtySlots: 5, allocatedBytes: 3 * 65536 }]);
  t.deepEqual(S.parseMappings(list(8, [hex('00 00 0001 0004 0000'), hex('01 00 0007 0004 0000')])), [{ port: 0, lun: 1, volume: 4 }, { port: 1, lun: 7, volume: 4 }]);
  const medium = Buffer.alloc(64);
  medium[0] = 2; medium[1] = 2; medium[2] = 2; medium.writeBigUInt64BE(2097152n, 4); medium.writeUInt32BE(100, 12); medium.writeUInt32BE(3, 20); medium.write('disk2', 32);
  t.like(S.parseMedia(list(64, [medium]))[0], { index: 2, name: 'disk2', scheduler: 'c-look', state: 'dead', sectors: 2097152, freeChunks: 100, mediumErrors: 3 });
  const port = Buffer.alloc(64);
  port[0] = 1; port[1] = 1; port[2] = 4; port[3] = 1; port.writeUInt16BE(1, 4); port[6] = 1; port.write('fe1', 32);
  t.deepEqual(S.parsePorts(list(64, [port])), [{ index: 1, name: 'fe1', kind: 'stream', sessions: 4, openSessions: 1, address: 1, iop: 1 }]);
  const cut = S.parseManagementList(list(96, [vol, vol]).subarray(0, 8 + 96 + 10));
  t.is(cut.total, 192, 'the header says what the controller has');
  t.is(cut.entries.length, 1, 'only whole entries are parsed');
});

test('statistics: the cache block, then one block of STAT_* counters per IOP', (t) => {
  t.is(S.STAT_NAMES[0], 'polls');
  t.is(S.STAT_NAMES[12], 'ferrBadCrc');
  t.is(S.STAT_NAMES.length, A.STAT_COUNT);
  t.is(S.STAT_NAMES[A.STAT_NV_ERRORS], 'nvErrors');
  t.is(S.STAT_NAMES[A.STAT_PINS], 'pins');
  t.is(S.STAT_NAMES[A.STAT_PDUS_RX], 'pdusRx');
  t.is(S.STAT_NAMES[A.STAT_TASK_MGMT], 'taskMgmt');
  const entry = 8 + 8 * S.STAT_NAMES.length;
  const d = Buffer.alloc(8 + 64 + 2 * entry);
  d.writeUInt32BE(d.length - 8, 0); d.writeUInt16BE(entry, 4); d.writeUInt16BE(2, 6);
  d.writeUInt32BE(64, 8); d.writeUInt32BE(10, 20); d.writeBigUInt64BE(77n, 8 + 32);
  d[72] = 1; d[73] = 0; d.writeBigUInt64BE(5n, 72 + 8 + 8 * 12);
  d[72 + entry] = 2; d[73 + entry] = 1;
  const s = S.parseStatistics(d);
  t.like(s.cache, { slots: 64, dirty: 10, readHits: 77 });
  t.like(s.iops[0], { index: 0, role: 'channel' });
  t.is(s.iops[0].counters.ferrBadCrc, 5);
  t.like(s.iops[1], { index: 1, role: 'disk' });
});

test('sense data in words: fixed format, information, field pointers, vendor codes, descriptor format', (t) => {
  const fixed = (key: number, asc: number, ascq: number, extra: (b: Buffer) => void = () => undefined): Buffer => {
    const b = Buffer.alloc(18); b[0] = 0x70; b[2] = key; b[7] = 10; b[12] = asc; b[13] = ascq; extra(b); return b;
  };
  t.deepEqual(S.decodeSense(fixed(5, 0x21, 0)), { key: 5, asc: 0x21, ascq: 0, text: 'ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE' });
  const medium = S.decodeSense(fixed(3, 0x11, 0, (b) => { b[0] = 0xf0; b.writeUInt32BE(0x1234, 3); }));
  t.like(medium, { info: 0x1234, text: 'MEDIUM ERROR: UNRECOVERED READ ERROR' });
  t.is(S.describeSense(medium), 'MEDIUM ERROR: UNRECOVERED READ ERROR (information 4660)');
  const field = S.decodeSense(fixed(5, 0x24, 0, (b) => { b[15] = 0xc8; b.writeUInt16BE(1, 16); }));
  t.deepEqual(field.field, { inCdb: true, byte: 1, bit: 0 });
  t.is(S.describeSense(field), 'ILLEGAL REQUEST: INVALID FIELD IN CDB (CDB byte 1 bit 0)');
  const param = S.decodeSense(fixed(5, 0x26, 0, (b) => { b[15] = 0x80; b.writeUInt16BE(2, 16); }));
  t.is(S.describeSense(param), 'ILLEGAL REQUEST: INVALID FIELD IN PARAMETER LIST (parameter list byte 2)');
  t.is(S.decodeSense(fixed(5, 0x82, 0x02)).text, 'ILLEGAL REQUEST: VOLUME NOT MAPPED');
  t.is(S.decodeSense(fixed(5, 0x80, 0x00)).text, 'ILLEGAL REQUEST: VOLUME NAME ALREADY EXISTS');
  t.is(S.decodeSense(fixed(5, 0x85, 0x01)).text, 'ILLEGAL REQUEST: VOLUME IS IN A PAIR');
  t.is(S.decodeSense(fixed(5, 0x8f, 0x01)).text, 'ILLEGAL REQUEST: VENDOR SPECIFIC ASC 8Fh/01h');
  t.is(S.decodeSense(fixed(0xb, 0x47, 0x01)).text, 'ABORTED COMMAND: DATA PHASE CRC ERROR DETECTED');
  // The senses of the integrity work and of iSCSI are named in words too (sanctl prints them).
  t.is(S.decodeSense(fixed(0xb, 0x3f, 0x00)).text, 'ABORTED COMMAND: TARGET OPERATING CONDITIONS HAVE CHANGED');
  t.is(S.decodeSense(fixed(4, 0x44, 0x00)).text, 'HARDWARE ERROR: INTERNAL TARGET FAILURE');
  t.is(S.decodeSense(fixed(2, 0x31, 0x00)).text, 'NOT READY: MEDIUM FORMAT CORRUPTED');
  t.is(S.decodeSense(fixed(5, 0x0e, 0x03)).text, 'ILLEGAL REQUEST: INVALID FIELD IN COMMAND INFORMATION UNIT');
  t.is(S.decodeSense(fixed(0xb, 0x47, 0x05)).text, 'ABORTED COMMAND: PROTOCOL SERVICE CRC ERROR');
  t.is(S.decodeSense(fixed(2, 0x04, 0x03)).text, 'NOT READY: LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED');
  t.is(S.decodeSense(fixed(0xc, 0x30, 0x00)).text, 'SENSE KEY 0Ch: ASC 30h/00h');
  t.like(S.decodeSense(hex('72 05 24 00 00 00 00 00')), { key: 5, asc: 0x24, text: 'ILLEGAL REQUEST: INVALID FIELD IN CDB' });
  t.is(S.decodeSense(Buffer.alloc(0)).text, 'NO SENSE: NO ADDITIONAL SENSE INFORMATION', 'missing bytes read as zero');
});

test('ScsiError says the sense, or the status when there is none', (t) => {
  const sense = S.decodeSense(hex('70 00 05 00 00 00 00 0a 00 00 00 00 25 00 00 00 00 00'));
  const e = new S.ScsiError(2, sense, 0x00);
  t.is(e.message, 'ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED');
  t.is(e.sense?.asc, 0x25);
  t.is(new S.ScsiError(0x28).message, 'TASK SET FULL');
  t.is(new S.ScsiError(0x08).message, 'BUSY');
  t.true(new S.ScsiError(0x08) instanceof Error);
});
