// EXTENDED COPY's parameter list checked field by field (ILLEGAL REQUEST with the field pointer into
// the list), the descriptors the initiator may not reach refused (CVE-2020-28374: a copy from or to
// a volume its port does not map), a copy target's failure reported through RECEIVE COPY RESULTS,
// several copies at once, block -> block, inline/embedded data and the data held for RECEIVE DATA.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiStatus } from '../../lib/protocol';
import {
  extendedCopyList, extendedCopyCdb, CopyList, Cscd, naaOf, CopyManager, OP_EXTENDED_COPY,
} from '../../host/backup';
import { pattern, read, write } from '../harness/env';
import { rig, Rig, BLOCKS } from './env';
import { TapeLibrary } from '../../host/tape';

const DRIVE0 = 257;
const DRIVE1 = 258;

async function send(r: Rig, l: CopyList, lun = 1): Promise<{ status: number; sense?: scsi.Sense; raw: Buffer }> {
  const out = extendedCopyList(l);
  const res = await r.s.submit({ lun, cdb: extendedCopyCdb(out.length), dataOut: out });
  return { status: res.status, sense: res.status === ScsiStatus.CHECK_CONDITION ? scsi.decodeSense(res.sense) : undefined, raw: Buffer.from(res.sense) };
}

async function sendRaw(r: Rig, list: Buffer, cdbLength = list.length): Promise<scsi.Sense | undefined> {
  const res = await r.s.submit({ lun: 1, cdb: extendedCopyCdb(cdbLength), dataOut: list });
  return res.status === ScsiStatus.CHECK_CONDITION ? scsi.decodeSense(res.sense) : undefined;
}

const block = (naa: Buffer): Cscd => ({ type: 'block', naa, blockBytes: 512 });

/** The NAA a volume would have (the array's device ID, the volume's number + 1 in its last two bytes). */
function volumeNaa(any: Buffer, volume: number): Buffer { const n = Buffer.from(any); n.writeUInt16BE(volume + 1, 14); return n; }

test('block -> block (02h): a range copied inside the array, GOOD at the end, the data durable and equal', async (t) => {
  const r = await rig('xcopy-b2b');
  try {
    const src = await naaOf(r.c, 1);
    const dst = await naaOf(r.c, 3);
    const res = await send(r, { listId: 1, targets: [block(src), block(dst)], segments: [
      { type: 'block-to-block', src: 0, dst: 1, srcLba: 100, dstLba: 5000, blocks: 3000 },
      { type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 1, dc: true },
    ] });
    t.is(res.status, 0, JSON.stringify(res.sense));
    t.true((await read(r.s, 3, 5000, 3000)).equals(r.ref.subarray(100 * 512, 3100 * 512)));
    t.true((await read(r.s, 3, 0, 1)).equals(r.ref.subarray(0, 512)));
    const st = await r.cm.status(1);
    t.deepEqual([st.state, st.segments], ['good', 2], 'COPY STATUS of the held results');
  } finally { await r.emu.stop(); }
});

test('OPERATING PARAMETERS say what the copy manager does', async (t) => {
  const r = await rig('xcopy-op');
  try {
    const p = await r.cm.operatingParameters();
    t.deepEqual(p.implemented, [0x00, 0x01, 0x02, 0x04, 0x05, 0x0f, 0x10, 0xc0, 0xe4]);
    t.is(p.maxTargets, 8);
    t.is(p.maxSegments, 256);
    t.is(p.concurrent, 4);
    t.is(p.maxStreamBytes, 256 * 1024);
  } finally { await r.emu.stop(); }
});

test('every field of the parameter list is checked: ILLEGAL REQUEST (COPY ABORTED for no such copy target or a range past it) with the sense pointing at it, nothing copied', async (t) => {
  const r = await rig('xcopy-fields');
  try {
    const a = await naaOf(r.c, 1);
    const b = await naaOf(r.c, 3);
    const drive = await naaOf(r.c, DRIVE0);
    const ok: CopyList = { listId: 2, targets: [block(a), block(b)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 8 }] };
    const good = extendedCopyList(ok);
    const expect = async (list: Buffer, key: number, asc: number, ascq: number, byte: number | undefined, what: string, cdbLength?: number): Promise<void> => {
      const s = await sendRaw(r, list, cdbLength);
      t.truthy(s, what);
      t.deepEqual([s!.key, s!.asc, s!.ascq], [key, asc, ascq], `${what}: ${s?.text}`);
      if (byte !== undefined) t.is(s!.field?.byte, byte, `${what}: field pointer`);
      if (byte !== undefined) t.false(s!.field?.inCdb, `${what}: the pointer is into the parameter list`);
    };
    const patch = (at: number, v: number, src = good): Buffer => { const x = Buffer.from(src); x[at] = v; return x; };
    await expect(patch(1, 0x80), 5, 0x26, 0x00, 1, 'reserved bits of byte 1');
    await expect(patch(4, 1), 5, 0x26, 0x00, 4, 'reserved bytes 4-7');
    await expect(good.subarray(0, good.length - 4), 5, 0x1a, 0x00, undefined, 'lengths that do not add up to the list');
    await expect(patch(16, 0xe0), 5, 0x26, 0x07, 16, 'a CSCD descriptor type other than E4h');
    await expect(patch(17, 0x05), 5, 0x26, 0x0c, 17, 'a peripheral device type that is neither block nor stream');
    const lengthy = extendedCopyList({ listId: 3, targets: Array(9).fill(block(a)), segments: Array(300).fill(ok.segments[0]) });
    await expect(lengthy, 5, 0x1a, 0x00, undefined, 'descriptors beyond the MAXIMUM DESCRIPTOR LIST LENGTH (before the counts)');
    await expect(patch(21, 0x08), 5, 0x26, 0x00, 21, 'a designator other than an LU NAA');
    await expect(patch(23, 8), 5, 0x26, 0x00, 23, 'a designator length other than 16');
    await expect(patch(47, 0x04), 5, 0x26, 0x00, 45, 'a disk block length other than the volume\'s');
    await expect(patch(80, 0x03), 5, 0x26, 0x09, 80, 'an unsupported segment type (03h stream -> stream)');
    await expect(patch(83, 0x10), 5, 0x26, 0x00, 82, 'a segment descriptor length that is not its type\'s');
    await expect(patch(85, 9), 0x0a, 0x0d, 0x02, undefined, 'a source index beyond the CSCD list: no such copy target (COPY ABORTED, as libiscsi\'s ExtendedCopy.ValidSegDescr wants)');
    const far = extendedCopyList({ ...ok, segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: BLOCKS - 4, dstLba: 0, blocks: 8 }] });
    await expect(far, 0x0a, 0x00, 0x00, undefined, 'a source range beyond the volume (COPY ABORTED)');
    const tape = extendedCopyList({ listId: 3, targets: [block(a), { type: 'stream', naa: drive, blockBytes: 0 }], segments: [{ type: 'block-to-stream', src: 0, dst: 1, lba: 0, blocks: 2, streamLength: 1000 }] });
    await expect(tape, 5, 0x26, 0x0a, 89, 'stream and block lengths that differ (inexact segment)');
    const wrongWay = extendedCopyList({ listId: 3, targets: [block(a), { type: 'stream', naa: drive, blockBytes: 0 }], segments: [{ type: 'block-to-stream', src: 1, dst: 0, lba: 0, blocks: 2, streamLength: 1024 }] });
    await expect(wrongWay, 5, 0x26, 0x0c, 84, 'a stream device as the source of block -> stream');
    const inline = extendedCopyList({ listId: 3, targets: [{ type: 'stream', naa: drive, blockBytes: 0 }], segments: [{ type: 'inline', dst: 0, offset: 0, bytes: 100, streamLength: 100 }], inline: Buffer.alloc(64) });
    await expect(inline, 5, 0x26, 0x0b, 64, 'inline data beyond the list\'s');
    const nine = extendedCopyList({ listId: 3, targets: Array(9).fill(block(a)), segments: [] });
    await expect(nine, 5, 0x26, 0x06, 2, 'more CSCD descriptors than the copy manager holds');
    const noPair = extendedCopyList({ listId: 3, targets: [block(a)], segments: [{ type: 'pair', cscd: 0, split: true, immed: false, policy: 'merge' }] });
    await expect(noPair, 5, 0x85, 0x00, 52, 'vendor segment C0h on a volume in no pair');
    t.true((await read(r.s, 3, 0, 8)).equals(Buffer.alloc(8 * 512)), 'nothing was copied by any of them');
    t.is(await sendRaw(r, patch(17, 0xe0)), undefined, 'LU ID TYPE and NUL (CSCD byte 1, bits 7-5) are ignored: the list runs');
    t.false((await read(r.s, 3, 0, 8)).equals(Buffer.alloc(8 * 512)), 'and copies');
    const cdbBad = await r.s.submit({ lun: 1, cdb: Buffer.from([OP_EXTENDED_COPY, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]), dataOut: Buffer.alloc(16) });
    t.is(scsi.decodeSense(cdbBad.sense).field?.byte, 1, 'LID4 and other service actions: INVALID FIELD IN CDB, byte 1');
  } finally { await r.emu.stop(); }
});

test('CVE-2020-28374: a CSCD naming a volume the initiator\'s port does not map is not reachable; nothing is read from or written to it', async (t) => {
  const r = await rig('xcopy-cve');
  try {
    const hidden = await r.c.createVolume({ name: 'hidden', blocks: 2048, blockSize: 512, media: [0] });
    await write(r.s, 3, 0, pattern(2048 * 512, 9)); // LUN 3 (spare) holds something of ours
    const theirs = pattern(512, 5);
    const any = await naaOf(r.c, 1);
    const secret = volumeNaa(any, hidden.number);
    const steal = await send(r, { listId: 4, targets: [block(secret), block(await naaOf(r.c, 3))], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 1 }] });
    t.deepEqual([steal.sense?.key, steal.sense?.asc, steal.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02], 'COPY TARGET DEVICE NOT REACHABLE');
    t.is(steal.raw.readUInt16BE(16), 24, 'the segment pointer (sense-key specific) points at the NAA of the first descriptor');
    t.true((await read(r.s, 3, 0, 1)).equals(pattern(2048 * 512, 9).subarray(0, 512)), 'nothing of the hidden volume reached ours');
    const clobber = await send(r, { listId: 5, targets: [block(any), block(secret)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 1 }] });
    t.deepEqual([clobber.sense?.key, clobber.sense?.asc, clobber.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02], 'nor may it be written');
    // Mapped now: the same list works, so it was the reach that refused it.
    await r.c.mapVolume(hidden.number, await r.c.portIndex(), 9);
    await write(r.s, 9, 0, theirs);
    const now = await send(r, { listId: 6, targets: [block(secret), block(await naaOf(r.c, 3))], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 1 }] });
    t.is(now.status, 0);
    t.true((await read(r.s, 3, 0, 1)).equals(theirs));
    // Another array's NAA, a changer's, an unknown drive's: not reachable either.
    const foreign = Buffer.from(any); foreign[5] ^= 0xff;
    t.is((await send(r, { listId: 7, targets: [block(foreign)], segments: [] })).sense?.ascq, 0x02);
    const changer = await naaOf(r.c, 256);
    t.is((await send(r, { listId: 7, targets: [{ type: 'stream', naa: changer, blockBytes: 0 }], segments: [] })).sense?.ascq, 0x02, 'the changer is no stream device');
  } finally { await r.emu.stop(); }
});

test('a drive RESERVEd by another host is not reachable for this host\'s copy', async (t) => {
  const r = await rig('xcopy-reserved');
  try {
    const other = r.emu.connect();
    const drive = await naaOf(r.c, DRIVE1);
    t.is((await other.submit({ lun: DRIVE1, cdb: Buffer.from([0x16, 0, 0, 0, 0, 0]) })).status, 0);
    const res = await send(r, { listId: 1, targets: [{ type: 'stream', naa: drive, blockBytes: 0 }], segments: [{ type: 'filemarks', dst: 0, count: 1 }] });
    t.deepEqual([res.sense?.key, res.sense?.asc, res.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02]);
  } finally { await r.emu.stop(); }
});

test('a volume persistently reserved by another host (Write Exclusive): a copy of this host may read it, never write it (COPY TARGET DEVICE NOT REACHABLE at the segment\'s destination, nothing written); Exclusive Access: not reachable at all', async (t) => {
  const r = await rig('xcopy-pr');
  try {
    const other = r.emu.connect();
    const prOut = (sa: number, type: number, key: bigint, saKey: bigint) => {
      const out = Buffer.alloc(24); out.writeBigUInt64BE(key, 0); out.writeBigUInt64BE(saKey, 8);
      return other.submit({ lun: 3, cdb: Buffer.from([0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0]), dataOut: out }).then((x) => x.status);
    };
    t.is(await prOut(0, 0, 0n, 0x77n), 0); // REGISTER
    t.is(await prOut(1, 1, 0x77n, 0n), 0); // RESERVE, Write Exclusive
    const before = await read(r.s, 3, 0, 64);
    const a = await naaOf(r.c, 1);
    const b = await naaOf(r.c, 3);
    const into = await send(r, { listId: 1, targets: [block(a), block(b)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 64 }] }, 0);
    t.deepEqual([into.sense?.key, into.sense?.asc, into.sense?.ascq, into.raw.readUInt16BE(16)], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02, 16 + 2 * 32 + 6], 'the segment pointer at the destination index');
    t.true((await read(r.s, 3, 0, 64)).equals(before), 'nothing written');
    const from = await send(r, { listId: 2, targets: [block(b), block(a)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 64 }] }, 0);
    t.is(from.status, 0, 'reading it is admitted');
    t.true((await read(r.s, 1, 0, 64)).equals(before));
    t.is(await prOut(4, 3, 0x77n, 0x77n), 0); // PREEMPT itself to Exclusive Access
    const none = await send(r, { listId: 3, targets: [block(b), block(a)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 64 }] }, 0);
    t.deepEqual([none.sense?.key, none.sense?.asc, none.sense?.ascq, none.raw.readUInt16BE(16)], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02, 16 + 8], 'not reachable: the NAA of CSCD 0');
  } finally { await r.emu.stop(); }
});

test('a copy target that fails (write-protected cartridge): COPY ABORTED, the segment in the sense, the drive\'s sense in FAILED SEGMENT DETAILS; the drive is free after', async (t) => {
  const r = await rig('xcopy-fail');
  try {
    const drive = await r.lib.assign('SB0003L5'); // write-protected
    const naa = await naaOf(r.c, drive.lun);
    const res = await send(r, { listId: 9, targets: [block(await naaOf(r.c, 1)), { type: 'stream', naa, blockBytes: 0 }], segments: [
      { type: 'embedded', dst: 1, data: Buffer.from('catalogue'), streamLength: 9 },
      { type: 'block-to-stream', src: 0, dst: 1, lba: 0, blocks: 8, streamLength: 4096 },
    ] });
    t.deepEqual([res.sense?.key, res.sense?.asc, res.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x01], 'THIRD PARTY DEVICE FAILURE');
    t.is(res.raw.readUInt32BE(8), 0, 'COMMAND-SPECIFIC INFORMATION: segment 0 failed');
    const st = await r.cm.status(9);
    t.deepEqual([st.state, st.segments], ['failed', 0]);
    const f = await r.cm.failedSegment(9);
    t.is(f?.status, 2, 'the drive answered CHECK CONDITION');
    t.deepEqual([f?.sense?.key, f?.sense?.asc], [scsi.SenseKey.DATA_PROTECT, 0x27], 'its sense: WRITE PROTECTED');
    await t.throwsAsync(r.cm.failedSegment(9), { message: /INVALID FIELD IN CDB/ }, 'details are given once');
    t.is((await r.s.submit({ lun: drive.lun, cdb: Buffer.from([0x01, 0, 0, 0, 0, 0]) })).status, 0, 'the drive REWINDs for its host: not left claimed');
    await drive.release();
  } finally { await r.emu.stop(); }
});

test('inline, embedded and filemarks to a drive, read back by 0Fh into RECEIVE DATA; two initiators copy at once, each seeing its own results', async (t) => {
  const r = await rig('xcopy-hold');
  try {
    const other = r.emu.connect();
    const d0 = await r.lib.assign('SB0001L5');
    const d1 = await new TapeLibrary(other).assign('SB0002L5'); // reserved by the other nexus, its own backup manager
    const n0 = await naaOf(r.c, d0.lun);
    const n1 = await naaOf(r.c, d1.lun);
    const cm2 = new CopyManager(other, 1);
    const labels = Buffer.from('HEADER-RECORD-0001'.padEnd(80, ' '));
    const a = r.cm.copy({ listId: 1, targets: [block(await naaOf(r.c, 1)), { type: 'stream', naa: n0, blockBytes: 0 }], inline: labels, segments: [
      { type: 'inline', dst: 1, offset: 0, bytes: 80, streamLength: 80 },
      { type: 'embedded', dst: 1, data: Buffer.from('embedded!'), streamLength: 9 },
      { type: 'filemarks', dst: 1, count: 1 },
      { type: 'block-to-stream', src: 0, dst: 1, lba: 0, blocks: 64, streamLength: 32768 },
    ] });
    const b = cm2.copy({ listId: 1, targets: [block(await naaOf(r.c, 1)), { type: 'stream', naa: n1, blockBytes: 4096 }], segments: [
      { type: 'block-to-stream', src: 0, dst: 1, lba: 64, blocks: 256, streamLength: 32 },
    ] });
    await Promise.all([a, b]);
    t.is((await r.cm.status(1)).segments, 4, 'this nexus sees its own list 1');
    t.is((await cm2.status(1)).segments, 1, 'the other nexus its own list 1');
    await d0.rewind();
    const back = await r.cm.copy({ listId: 2, targets: [{ type: 'stream', naa: n0, blockBytes: 0 }], segments: [
      { type: 'hold', src: 0, streamLength: 80 }, { type: 'hold', src: 0, streamLength: 9 },
    ] }).then(() => r.cm.receiveData(2));
    t.is(back.toString('latin1'), labels.toString('latin1') + 'embedded!', 'RECEIVE DATA: the records 0Fh held');
    t.is((await d0.readRecord()).kind, 'filemark');
    const rec = await d0.readRecord();
    t.true(rec.kind === 'record' && rec.data.equals(r.ref.subarray(0, 32768)));
    await d1.rewind();
    for (let i = 0; i < 32; i++) {
      const x = await d1.readRecord(4096);
      t.true(x.kind === 'record' && x.data.equals(r.ref.subarray(64 * 512 + i * 4096, 64 * 512 + (i + 1) * 4096)), `fixed block ${i}`);
    }
    await d0.release();
    await d1.release();
  } finally { await r.emu.stop(); }
});

test('list identifiers: one whose copy runs for this nexus is refused (OPERATION IN PROGRESS); one whose copy ended is taken again, its held results discarded; a fifth copy when four hold results of live nexuses finds no room', async (t) => {
  const r = await rig('xcopy-ids');
  try {
    const a = await naaOf(r.c, 1);
    const b = await naaOf(r.c, 3);
    const list = (id: number, blocks = 1): CopyList => ({ listId: id, targets: [block(a), block(b)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks }] });
    // Two lists with one identifier at once: the second meets the first running.
    const both = await Promise.all([send(r, list(8, 4096)), send(r, list(8, 4096))]);
    t.deepEqual(both.map((x) => x.status).sort(), [0, 2], 'one runs, the other is refused');
    const refused = both.find((x) => x.status !== 0)!;
    t.deepEqual([refused.sense?.key, refused.sense?.asc, refused.sense?.ascq], [5, 0x00, 0x16], 'OPERATION IN PROGRESS');
    const again = await send(r, list(8));
    t.is(again.status, 0, 'ended, its results held: a new list with the identifier runs and the old results go');
    t.is((await r.cm.status(8)).state, 'good');
    t.is((await send(r, list(8))).status, 0, 'taken: the identifier is free again');
    t.is((await send(r, { ...list(9), nrcr: true })).status, 0);
    t.is((await send(r, { ...list(9), nrcr: true })).status, 0, 'NRCR: nothing held, the identifier is free at once');
    for (const id of [10, 11, 12]) t.is((await send(r, list(id))).status, 0);
    const full = await send(r, list(13));
    t.deepEqual([full.sense?.key, full.sense?.asc, full.sense?.ascq], [5, 0x55, 0x03], 'four held results (8, 10, 11, 12): INSUFFICIENT RESOURCES');
    await r.cm.status(10);
    t.is((await send(r, list(13))).status, 0, 'one taken, room again');
  } finally { await r.emu.stop(); }
});

test('LUN security (004): a volume whose access list says none for this initiator is not reachable; a read-only one may be copied from, never to', async (t) => {
  const r = await rig('xcopy-access');
  try {
    const src = await naaOf(r.c, 1);
    const spare = await naaOf(r.c, 3);
    const into = (from: Buffer, to: Buffer): CopyList => ({ listId: 20, nrcr: true, targets: [block(from), block(to)], segments: [{ type: 'block-to-block', src: 0, dst: 1, srcLba: 0, dstLba: 0, blocks: 4 }] });
    await r.c.setAccess(r.spare, 'ro', { unnamed: true });
    const ro = await send(r, into(src, spare));
    t.deepEqual([ro.sense?.key, ro.sense?.asc, ro.sense?.ascq], [scsi.SenseKey.DATA_PROTECT, 0x27, 0x00], 'read-only: not a destination');
    t.true((await read(r.s, 3, 0, 4)).equals(Buffer.alloc(2048)), 'nothing written to the read-only volume');
    t.is((await send(r, into(spare, await naaOf(r.c, 2)))).status, 0, 'read-only: a source');
    await r.c.setAccess(r.spare, 'none', { unnamed: true });
    const none = await send(r, into(spare, src));
    t.deepEqual([none.sense?.key, none.sense?.asc, none.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02], 'none: not reachable');
    t.true((await read(r.s, 1, 0, 4)).equals(r.ref.subarray(0, 2048)), 'the source volume was not written');
  } finally { await r.emu.stop(); }
});

test('LUN security for drives (CVE-2020-28374): a drive whose access list says none for this initiator is not reachable; a read-only one is a source, never a destination (no record, no filemark)', async (t) => {
  const r = await rig('xcopy-tape-access');
  try {
    const drive = await r.lib.assign('SB0001L5');
    const dev = drive.lun - 256; // the index SET ACCESS names it by (0 the changer, then the drives)
    const naa = await naaOf(r.c, drive.lun); // asked while the drive is visible
    const vol = block(await naaOf(r.c, 1));
    const spare = block(await naaOf(r.c, 3));
    const stream: Cscd = { type: 'stream', naa, blockBytes: 0 };
    const record = pattern(512, 7);
    t.is((await send(r, { listId: 30, nrcr: true, targets: [stream], segments: [{ type: 'embedded', dst: 0, data: record, streamLength: record.length }] })).status, 0, 'read-write: a destination');
    await drive.rewind();

    await r.c.setTapeAccess(dev, 'ro', { unnamed: true });
    const writeTo = await send(r, { listId: 31, nrcr: true, targets: [vol, stream], segments: [{ type: 'block-to-stream', src: 0, dst: 1, lba: 0, blocks: 2, streamLength: 1024 }] });
    t.deepEqual([writeTo.sense?.key, writeTo.sense?.asc, writeTo.sense?.ascq], [scsi.SenseKey.DATA_PROTECT, 0x27, 0x00], 'read-only: not a destination');
    t.is(writeTo.raw.readUInt16BE(16), 16 + 64 + 6, 'the field pointer names the segment\'s destination index');
    const marks = await send(r, { listId: 32, nrcr: true, targets: [stream], segments: [{ type: 'filemarks', dst: 0, count: 1 }] });
    t.deepEqual([marks.sense?.key, marks.sense?.asc, marks.sense?.ascq], [scsi.SenseKey.DATA_PROTECT, 0x27, 0x00], 'nor are filemarks written');
    const readFrom = await send(r, { listId: 33, nrcr: true, targets: [stream, spare], segments: [{ type: 'stream-to-block', src: 0, dst: 1, lba: 0, blocks: 1, streamLength: 512 }] });
    t.is(readFrom.status, 0, `read-only: a source ${JSON.stringify(readFrom.sense)}`);
    t.true((await read(r.s, 3, 0, 1)).equals(record), 'the record (at the start of the tape: nothing overwrote it) restored');
    t.is((await drive.readRecord()).kind, 'eod', 'nothing was written after it');

    await r.c.setTapeAccess(dev, 'none', { unnamed: true });
    const lists: CopyList[] = [
      { listId: 35, nrcr: true, targets: [stream], segments: [{ type: 'hold', src: 0, streamLength: 1 }] },
      { listId: 36, nrcr: true, targets: [vol, stream], segments: [] },
    ];
    for (const l of lists) {
      const none = await send(r, l);
      t.deepEqual([none.sense?.key, none.sense?.asc, none.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0d, 0x02], `none: not reachable (list ${l.listId})`);
      t.is(none.raw.readUInt16BE(16), 16 + 32 * (l.targets.length - 1) + 8, 'the pointer names the drive\'s NAA');
    }
    await r.c.setTapeAccess(dev, 'rw', { unnamed: true });
    await drive.release();
  } finally { await r.emu.stop(); }
});
