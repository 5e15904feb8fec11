// The SBC-4 commands that change a volume other than by WRITE (firmware/scsi/sbc.ts, thin.ts) on a
// remote pair (docs/remote.md, "What a host WRITE's GOOD means"): COMPARE AND WRITE and ORWRITE write
// the cache in a step of their own, not through the WRITE path, and hand their blocks to the pair's
// first hop as a WRITE's window does; a deallocation is not sent over a link, so UNMAP is refused on
// a remote pair's volume, and WRITE SAME with UNMAP writes (and sends) the zeros.
import test from 'ava';
import { startSites, untilRemote, type Sites } from './sites';
import { pattern, createVolume } from '../harness/env';
import { ScsiError } from '../../lib/scsi';

const BS = 512;

function u64(b: Buffer, at: number, v: number): void { b.writeBigUInt64BE(BigInt(v), at); }

function compareAndWrite(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x89;
  u64(cdb, 2, lba);
  cdb[13] = blocks;
  return cdb;
}

function unmapCdb(): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x42;
  cdb.writeUInt16BE(24, 7);
  return cdb;
}

function unmapList(lba: number, blocks: number): Buffer {
  const list = Buffer.alloc(24);
  list.writeUInt16BE(22, 0);
  list.writeUInt16BE(16, 2);
  u64(list, 8, lba);
  list.writeUInt32BE(blocks, 16);
  return list;
}

function writeSameUnmapNdob(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x93;
  cdb[1] = 0x08 | 0x01; // UNMAP, NDOB
  u64(cdb, 2, lba);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

const senseOf = (e: unknown) => {
  const s = (e as ScsiError).sense!;
  return [s.key, s.asc, s.ascq];
};

/** A and B directly linked; "vol" -> "mirror" paired and copied. */
async function paired(label: string): Promise<Sites> {
  const s = await startSites(label, { directKm: 100 });
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror' });
  await untilRemote(s, (x) => x.state === 'pair', 'pair');
  return s;
}

test('COMPARE AND WRITE on a remote pair\'s primary: the written block reaches the secondary, a miscompare sends nothing; the secondary refuses WRITE SAME as a WRITE', async (t) => {
  const s = await paired('sbc-remote-caw');
  try {
    const old = pattern(BS, 1);
    const next = pattern(BS, 2);
    await s.a.write(1, 8, old);
    await untilRemote(s, (x) => x.inFlight === 0, 'no command in flight');
    await s.a.execute({ lun: 1, cdb: compareAndWrite(8, 1), dataOut: Buffer.concat([old, next]) });
    await untilRemote(s, (x) => x.inFlight === 0, 'no command in flight');
    t.true((await s.a.read(1, 8, 1)).equals(next));
    t.true((await s.b.read(1, 8, 1)).equals(next), 'the secondary has the block COMPARE AND WRITE wrote');
    const e = await t.throwsAsync(s.a.execute({ lun: 1, cdb: compareAndWrite(8, 1), dataOut: Buffer.concat([old, pattern(BS, 3)]) }));
    t.deepEqual(senseOf(e), [0x0E, 0x1D, 0x00], 'MISCOMPARE');
    t.true((await s.b.read(1, 8, 1)).equals(next), 'nothing sent for a miscompare');
    t.is((await s.a.remoteOf(s.va)).state, 'pair');
    const ws = Buffer.alloc(16);
    ws[0] = 0x93;
    ws[1] = 0x01; // NDOB: zeros
    ws.writeUInt32BE(8, 10);
    const eb = await t.throwsAsync(s.b.execute({ lun: 1, cdb: ws }));
    t.deepEqual(senseOf(eb), [0x07, 0x27, 0x00], 'the secondary: DATA PROTECT, WRITE PROTECTED');
    t.true((await s.b.read(1, 8, 1)).equals(next));
  } finally {
    await s.emu.stop();
  }
});

test('UNMAP on a thin remote pair\'s volume is refused (primary: VOLUME IS IN A REMOTE PAIR, secondary: WRITE PROTECTED) and changes nothing; WRITE SAME with UNMAP writes the zeros and sends them', async (t) => {
  const s = await startSites('sbc-remote-unmap', { directKm: 100 });
  try {
    const ta = await createVolume(s.emu.connect('A'), { name: 'tv', blocks: 1024, blockSize: BS, placement: 'thin' }, 2);
    await createVolume(s.emu.connect('B'), { name: 'tm', blocks: 1024, blockSize: BS, placement: 'thin' }, 2);
    const data = pattern(64 * 1024, 4);
    await s.a.write(2, 0, data);
    await s.a.remoteCreate({ volume: ta, to: 'B', toVolume: 'tm' });
    for (let i = 0; i < 4000 && (await s.a.remoteOf(ta)).state !== 'pair'; i++) await s.emu.advance(5);
    t.is((await s.a.remoteOf(ta)).state, 'pair');
    t.true((await s.b.read(2, 0, 128)).equals(data), 'the initial copy');

    const ea = await t.throwsAsync(s.a.execute({ lun: 2, cdb: unmapCdb(), dataOut: unmapList(0, 128) }));
    t.deepEqual(senseOf(ea), [0x05, 0x86, 0x11], 'the primary: VOLUME IS IN A REMOTE PAIR');
    const eb = await t.throwsAsync(s.b.execute({ lun: 2, cdb: unmapCdb(), dataOut: unmapList(0, 128) }));
    t.deepEqual(senseOf(eb), [0x07, 0x27, 0x00], 'the secondary: DATA PROTECT, WRITE PROTECTED');
    t.true((await s.a.read(2, 0, 128)).equals(data) && (await s.b.read(2, 0, 128)).equals(data), 'nothing deallocated on either');

    await s.a.execute({ lun: 2, cdb: writeSameUnmapNdob(16, 32) });
    for (let i = 0; i < 4000 && (await s.a.remoteOf(ta)).inFlight !== 0; i++) await s.emu.advance(5);
    const zeros = Buffer.alloc(32 * BS);
    t.true((await s.a.read(2, 16, 32)).equals(zeros));
    t.true((await s.b.read(2, 16, 32)).equals(zeros), 'the secondary got the zeros');
    t.true((await s.b.read(2, 0, 16)).equals(data.subarray(0, 16 * BS)), 'and nothing else changed');
  } finally {
    await s.emu.stop();
  }
});
