// The 10-byte forms issue 8 lists beside the 6-byte ones, and REPORT SUPPORTED TASK MANAGEMENT
// FUNCTIONS, through the real firmware. test/harness/sbc.test.ts and reservations.test.ts test
// MODE SENSE/SELECT (6) and RESERVE/RELEASE (6); libiscsi's suite has no 10-byte tests of them, and
// the opcode listing only shows these commands are not refused as unknown.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import type { CommandTransport } from '../../lib/transport';
import { tempDir, startSmall, createVolume } from '../harness/env';

const LUN = 1;
const BLOCKS = 8192;
const CONFLICT = 0x18;

async function array(t: import('ava').ExecutionContext) {
  const emu = await startSmall({ dir: tempDir('sbc-ten'), ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 0, transport: 'inproc' }] });
  t.teardown(() => emu.stop());
  const a = emu.connect(undefined, 'q0');
  const b = emu.connect(undefined, 'q1');
  await createVolume(a, { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'linear' }, LUN);
  return { a, b };
}

async function send(s: CommandTransport, cdb: number[], io: { out?: Buffer; inLength?: number } = {}) {
  const r = await s.submit({ lun: LUN, cdb: Buffer.from(cdb), dataOut: io.out, dataInLength: io.inLength });
  return { status: r.status, data: Buffer.from(r.data ?? []), sense: r.sense.length > 0 ? scsi.decodeSense(r.sense) : undefined };
}

const modeSense10 = (pc: number, page: number, llbaa = false): number[] => [0x5A, llbaa ? 0x10 : 0, (pc << 6) | page, 0, 0, 0, 0, 0x01, 0x00, 0];
const tur = [0, 0, 0, 0, 0, 0];

/** The pages of a MODE SENSE (10) answer after its 8-byte header and block descriptors, by code. */
function pages(d: Buffer): Map<number, Buffer> {
  const end = 2 + d.readUInt16BE(0);
  const out = new Map<number, Buffer>();
  for (let at = 8 + d.readUInt16BE(6); at < end; at += 2 + d[at + 1]) out.set(d[at] & 0x3F, d.subarray(at, at + 2 + d[at + 1]));
  return out;
}

test('MODE SENSE (10): 8-byte header, short and (LLBAA) long block descriptors, caching and control pages; MODE SELECT (10) turns WCE off, other nexuses get MODE PARAMETERS CHANGED', async (t) => {
  const { a, b } = await array(t);
  const all = await send(a, modeSense10(0, 0x3F), { inLength: 256 });
  t.is(all.status, 0);
  const d = all.data;
  t.is(d.readUInt16BE(0) + 2, d.length, 'mode data length counts the bytes after itself');
  t.is(d[3] & 0x10, 0x10, 'DPOFUA');
  t.is(d.readUInt16BE(6), 8, 'one short block descriptor');
  t.deepEqual([d.readUInt32BE(8), d.readUInt32BE(12) & 0xFFFFFF], [BLOCKS, 512]);
  const p = pages(d);
  t.deepEqual([...p.keys()], [0x08, 0x0A], 'caching page, then control page');
  t.is(p.get(0x08)![2] & 0x04, 0x04, 'WCE=1: write-back');
  t.is(p.get(0x0A)!.length, 12, 'the control page');
  t.is(p.get(0x0A)![3] & 0xF0, 0x10, 'queue algorithm modifier 1: unrestricted reordering');

  const long = await send(a, modeSense10(0, 0x08, true), { inLength: 256 });
  t.deepEqual([long.status, long.data[4] & 1, long.data.readUInt16BE(6)], [0, 1, 16], 'LONGLBA, one 16-byte descriptor');
  t.deepEqual([Number(long.data.readBigUInt64BE(8)), long.data.readUInt32BE(20)], [BLOCKS, 512]);

  const changeable = pages((await send(a, modeSense10(1, 0x3F), { inLength: 256 })).data);
  t.is(changeable.get(0x08)![2], 0x04, 'WCE is the one changeable bit of the caching page');
  t.true(changeable.get(0x0A)!.subarray(2).every((x) => x === 0), 'nothing of the control page is changeable');

  const list = Buffer.alloc(8 + 20);
  list[8] = 0x08; list[9] = 0x12; // the caching page, WCE=0
  const sel = await send(a, [0x55, 0x10, 0, 0, 0, 0, 0, 0, list.length, 0], { out: list });
  t.is(sel.status, 0, sel.sense?.text);
  t.is(pages((await send(a, modeSense10(0, 0x08), { inLength: 256 })).data).get(0x08)![2] & 0x04, 0, 'WCE=0 now');
  const ua = await send(b, tur);
  t.deepEqual([ua.status, ua.sense?.key, ua.sense?.asc, ua.sense?.ascq], [2, scsi.SenseKey.UNIT_ATTENTION, 0x2A, 0x01]);
  const bad = Buffer.from(list);
  bad[10] = 0x04; bad[11] = 0x01; // WCE back on, and a bit that is not changeable
  const refused = await send(a, [0x55, 0x10, 0, 0, 0, 0, 0, 0, bad.length, 0], { out: bad });
  t.deepEqual([refused.status, refused.sense?.asc], [2, 0x26], 'INVALID FIELD IN PARAMETER LIST');
});

test('RESERVE (10) / RELEASE (10): the other nexus gets RESERVATION CONFLICT, its RELEASE (10) releases nothing; the holder releases; third-party reservations refused', async (t) => {
  const { a, b } = await array(t);
  t.is((await send(a, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0);
  t.is((await send(b, tur)).status, CONFLICT);
  t.is((await send(b, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, CONFLICT, 'RESERVE (10) by the other');
  t.is((await send(b, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0, 'RELEASE (10) by the other: GOOD, nothing released');
  t.is((await send(b, tur)).status, CONFLICT);
  t.is((await send(a, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0, 'the holder again: GOOD');
  t.is((await send(a, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0])).status, 0);
  t.is((await send(b, tur)).status, 0, 'released');
  const third = await send(b, [0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.deepEqual([third.status, third.sense?.key, third.sense?.asc], [2, scsi.SenseKey.ILLEGAL_REQUEST, 0x24], '3RDPTY: INVALID FIELD IN CDB');
  t.is((await send(a, tur)).status, 0, 'the refused RESERVE reserved nothing');
});

test('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS: ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET RESET; REPD the 16-byte form; bad fields refused', async (t) => {
  const { a } = await array(t);
  const basic = await send(a, [0xA3, 0x0D, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], { inLength: 16 });
  t.is(basic.status, 0);
  t.is(basic.data.length, 4);
  t.is(basic.data[0], 0x80 | 0x40 | 0x10 | 0x08 | 0x02, 'ATS ATSS CTSS LURS TRS; no CACA, QTS, WAKES');
  const repd = await send(a, [0xA3, 0x0D, 0x80, 0, 0, 0, 0, 0, 0, 16, 0, 0], { inLength: 16 });
  t.deepEqual([repd.status, repd.data.length, repd.data[3]], [0, 16, 0x0C], 'REPD: additional data length 0Ch');
  const small = await send(a, [0xA3, 0x0D, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0], { inLength: 16 });
  t.deepEqual([small.status, small.sense?.asc], [2, 0x24], 'an allocation length under 4');
  const reserved = await send(a, [0xA3, 0x0D, 0x01, 0, 0, 0, 0, 0, 0, 16, 0, 0], { inLength: 16 });
  t.deepEqual([reserved.status, reserved.sense?.asc], [2, 0x24], 'a reserved bit');
});

test('VPD B1h (Block Device Characteristics): listed in page 00h beside B0h and B2h, 64 bytes, a non-rotating medium', async (t) => {
  const { a } = await array(t);
  const list = await send(a, [0x12, 1, 0x00, 0, 255, 0], { inLength: 255 });
  t.deepEqual([...list.data.subarray(4, 4 + list.data[3])], [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]);
  const b1 = await send(a, [0x12, 1, 0xB1, 0, 255, 0], { inLength: 255 });
  t.is(b1.status, 0);
  t.deepEqual([b1.data[1], b1.data.readUInt16BE(2), b1.data.length, b1.data.readUInt16BE(4)], [0xB1, 0x3C, 64, 1]);
});
