// Thin-provisioned volumes through the real firmware (docs/scsi.md "Thin provisioning",
// docs/design-notes.md): chunks taken as writes reach them and given back by UNMAP and WRITE SAME
// with UNMAP; what VPD B0h/B2h, READ CAPACITY (16) and GET LBA STATUS say of it; space accounting;
// SPACE ALLOCATION FAILED when the media are full, losing nothing acknowledged; the map over a
// power loss; no old bytes from the cache or the media after an UNMAP, in this volume or another.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import type { CommandTransport, ScsiResult } from '../../lib/transport';
import type { Emulator } from '../../harness';
import type { DeterministicDriver } from '../../harness/driver';
import { startSmall, tempDir, createVolume, write, read, pattern, SmallOptions } from './env';
import { send, be, cdb10, cdb16 } from './sbc-env';
import * as A from '../../hal/abi';
import { runSanctl } from '../host/run-sanctl';

const CHUNK = 65536;
const BPC = CHUNK / 512; // blocks per chunk

const unmapList = (ranges: Array<[number, number]>): Buffer => {
  const b = Buffer.alloc(8 + ranges.length * 16);
  b.writeUInt16BE(6 + ranges.length * 16, 0);
  b.writeUInt16BE(ranges.length * 16, 2);
  ranges.forEach(([lba, n], i) => { b.writeBigUInt64BE(BigInt(lba), 8 + i * 16); b.writeUInt32BE(n, 16 + i * 16); });
  return b;
};
const unmapCdb = (length: number, b1 = 0): number[] => [0x42, b1, 0, 0, 0, 0, 0, (length >> 8) & 0xFF, length & 0xFF, 0];

async function unmap(t: CommandTransport, ranges: Array<[number, number]>, lun = 1): Promise<ScsiResult> {
  const list = unmapList(ranges);
  return (await send(t, unmapCdb(list.length), { out: list, lun })).r;
}

/** GET LBA STATUS from `lba`: [lba, blocks, status] per descriptor. */
async function lbaStatus(t: CommandTransport, lba: number, lun = 1): Promise<Array<[number, number, number]>> {
  const x = await send(t, [0x9E, 0x12, ...be(lba, 8), ...be(8 + 64 * 16, 4), 0, 0], { inLength: 8 + 64 * 16, lun });
  if (x.r.status !== 0) throw new Error(`GET LBA STATUS: ${x.sense?.text}`);
  const d = Buffer.from(x.r.data);
  const n = (d.readUInt32BE(0) - 4) / 16;
  return Array.from({ length: n }, (_, i) => [Number(d.readBigUInt64BE(8 + i * 16)), d.readUInt32BE(16 + i * 16), d[20 + i * 16] & 0xF]);
}

async function allocated(c: ScsiClient, name: string): Promise<number> {
  return (await c.listVolumes()).find((v) => v.name === name)!.allocatedBytes;
}

async function freeChunks(c: ScsiClient): Promise<number> {
  return (await c.listMedia()).reduce((n, m) => n + m.freeChunks, 0);
}

async function thinArray(t: any, label: string, o: Partial<SmallOptions> = {}): Promise<{ emu: Emulator; s: CommandTransport; c: ScsiClient; o: SmallOptions }> {
  const opts: SmallOptions = { dir: tempDir(label), ...o };
  const emu = await startSmall(opts);
  t.teardown(() => emu.stop());
  const s = emu.connect();
  return { emu, s, c: new ScsiClient(s), o: opts };
}

test('a thin volume says so (VPD B2h, B0h, READ CAPACITY (16)), takes no chunk until written, reads zeros where nothing was written, and GET LBA STATUS follows its chunks', async (t) => {
  const { s, c } = await thinArray(t, 'thin-vpd');
  const before = await freeChunks(c);
  await createVolume(s, { name: 'th', blocks: 4 * 2048 * 64, blockSize: 512, placement: 'thin' }, 1); // 256 MiB over 128 MiB of media
  await createVolume(s, { name: 'thick', blocks: 2048, blockSize: 512, placement: 'linear' }, 2);
  t.is(await freeChunks(c), before - 16, 'the thin volume took no chunk; the 1 MiB thick one 16');
  t.is(await allocated(c, 'th'), 0);
  t.is(await allocated(c, 'thick'), 1 << 20);
  const b2 = Buffer.from((await send(s, [0x12, 1, 0xB2, 0, 64, 0], { inLength: 64 })).r.data);
  t.deepEqual([b2[5] & 0xE0, (b2[5] >> 2) & 7, b2[6] & 7], [0xE0, 1, 2], 'LBPU, LBPWS, LBPWS10; LBPRZ 001b; thin');
  const b2thick = Buffer.from((await send(s, [0x12, 1, 0xB2, 0, 64, 0], { inLength: 64, lun: 2 })).r.data);
  t.deepEqual([b2thick[5], b2thick[6] & 7], [0, 0], 'thick: fully provisioned');
  const b0 = Buffer.from((await send(s, [0x12, 1, 0xB0, 0, 64, 0], { inLength: 64 })).r.data);
  t.deepEqual([b0.readUInt32BE(20), b0.readUInt32BE(24), b0.readUInt32BE(28), b0[32] & 0x80], [(256 << 20) / 512, 256, BPC, 0x80]);
  const rc = Buffer.from((await send(s, [0x9E, 0x10, ...be(0, 8), ...be(32, 4), 0, 0], { inLength: 32 })).r.data);
  t.is(rc[14] & 0xC0, 0xC0, 'LBPME, LBPRZ');
  t.true((await read(s, 1, 12345, 8)).equals(Buffer.alloc(4096)), 'never written: zeros');
  t.deepEqual(await lbaStatus(s, 0), [[0, 4 * 2048 * 64, 1]], 'all deallocated');
  // Writes take a chunk each, at once (write-back: before any destage).
  await write(s, 1, 0, pattern(4096, 1));
  await write(s, 1, 10 * BPC + 3, pattern(1024, 2));
  t.is(await allocated(c, 'th'), 2 * CHUNK);
  t.deepEqual(await lbaStatus(s, 0), [[0, BPC, 0], [BPC, 9 * BPC, 1], [10 * BPC, BPC, 0], [11 * BPC, 4 * 2048 * 64 - 11 * BPC, 1]]);
  t.deepEqual((await lbaStatus(s, 10 * BPC + 5))[0], [10 * BPC + 5, BPC - 5, 0], 'from the LBA asked for');
  t.true((await read(s, 1, 0, 16)).equals(Buffer.concat([pattern(4096, 1), Buffer.alloc(4096)])), 'the rest of a written chunk reads zeros');
  t.true((await read(s, 1, 10 * BPC, 8)).equals(Buffer.concat([Buffer.alloc(1536), pattern(1024, 2), Buffer.alloc(1536)])));
  const rsoc = async (lun: number) => (await send(s, [0xA3, 0x0C, 0x01, 0x42, 0, 0, 0, 0, 1, 0, 0, 0], { inLength: 256, lun })).r.data[1] & 7;
  t.deepEqual([await rsoc(1), await rsoc(2)], [3, 1], 'REPORT SUPPORTED OPERATION CODES: UNMAP on the thin volume only');
  const thickUnmap = await send(s, unmapCdb(24), { out: unmapList([[0, 8]]), lun: 2 });
  t.deepEqual([thickUnmap.sense?.key, thickUnmap.sense?.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x20], 'UNMAP on a thick volume: not offered');
});

test('UNMAP gives whole chunks back (dirty or on the medium) and zeroes the blocks of a chunk it covers in part; WRITE SAME with UNMAP deallocates too (NDOB, or whatever its block holds)', async (t) => {
  const { emu, s, c } = await thinArray(t, 'thin-unmap');
  await createVolume(s, { name: 'th', blocks: 64 * BPC, blockSize: 512, placement: 'thin' }, 1);
  const free0 = await freeChunks(c);
  const data = pattern(8 * CHUNK, 3);
  await write(s, 1, 0, data);
  t.is(free0 - await freeChunks(c), 8);
  await emu.flush(); // chunks 0-7 on the medium, mapped
  await write(s, 1, 2 * BPC, pattern(4096, 4)); // chunk 2 dirty again over its medium copy
  // Chunks 1 and 2 whole, and blocks 8-15 of chunk 4.
  t.is((await unmap(s, [[BPC, 2 * BPC], [4 * BPC + 8, 8]])).status, 0);
  t.is(await allocated(c, 'th'), 6 * CHUNK, 'two chunks fewer');
  t.is(free0 - await freeChunks(c), 6, 'and back on the media');
  t.true((await read(s, 1, BPC, 2 * BPC)).equals(Buffer.alloc(2 * CHUNK)), 'unmapped chunks read zeros: not the medium\'s old bytes, not the dirty slot\'s');
  const c4 = Buffer.from(data.subarray(4 * CHUNK, 5 * CHUNK));
  c4.fill(0, 8 * 512, 16 * 512);
  t.true((await read(s, 1, 4 * BPC, BPC)).equals(c4), 'a chunk in part: those blocks zeros, the others kept');
  t.deepEqual((await lbaStatus(s, 0)).slice(0, 3), [[0, BPC, 0], [BPC, 2 * BPC, 1], [3 * BPC, 5 * BPC, 0]], 'chunk 4 stays mapped');
  // WRITE SAME (16) UNMAP NDOB over chunks 5-6 and half of 7; WRITE SAME (10) UNMAP with a zero block over chunk 0.
  t.is((await send(s, cdb16(0x93, 5 * BPC, 2 * BPC + 64, 0x09))).r.status, 0);
  t.is((await send(s, cdb10(0x41, 0, BPC, 0x08), { out: Buffer.alloc(512) })).r.status, 0);
  t.is(await allocated(c, 'th'), 3 * CHUNK, 'chunks 3, 4, 7 left');
  t.true((await read(s, 1, 0, BPC)).equals(Buffer.alloc(CHUNK)));
  t.true((await read(s, 1, 7 * BPC, BPC)).equals(Buffer.concat([Buffer.alloc(32768), data.subarray(7 * CHUNK + 32768, 8 * CHUNK)])));
  // WRITE SAME with UNMAP and a block that is not zeros deallocates too (SBC-4: a thin provisioned
  // logical unit should deallocate each LBA): the block is not written, the blocks read zeros.
  t.is((await send(s, cdb10(0x41, 3 * BPC, BPC, 0x08), { out: pattern(512, 5) })).r.status, 0);
  t.is(await allocated(c, 'th'), 2 * CHUNK, 'chunk 3 given back');
  t.true((await read(s, 1, 3 * BPC, BPC)).equals(Buffer.alloc(CHUNK)));
  t.is((await send(s, cdb10(0x41, 20 * BPC, 8, 0x08), { out: pattern(512, 5) })).r.status, 0);
  t.is(await allocated(c, 'th'), 2 * CHUNK, 'an unmapped chunk in part: nothing taken');
  t.true((await read(s, 1, 20 * BPC, 8)).equals(Buffer.alloc(4096)));
  // After all that is on the medium and the cache is cold, the same.
  await emu.flush();
  t.true((await read(s, 1, BPC, 3 * BPC)).equals(Buffer.alloc(3 * CHUNK)));
  t.true((await read(s, 1, 4 * BPC, BPC)).equals(c4));
});

test('UNMAP refuses what SBC-4 refuses and changes nothing: ANCHOR, a short list, a range past the end, more than 256 descriptors, more than MAXIMUM UNMAP LBA COUNT', async (t) => {
  const { s, c } = await thinArray(t, 'thin-unmap-bad');
  await createVolume(s, { name: 'th', blocks: 64 * BPC, blockSize: 512, placement: 'thin' }, 1);
  await write(s, 1, 0, pattern(CHUNK, 1));
  const bad = async (cdb: number[], out: Buffer) => { const x = await send(s, cdb, { out }); return [x.r.status, x.sense?.key, x.sense?.asc]; };
  t.deepEqual(await bad(unmapCdb(24, 0x01), unmapList([[0, BPC]])), [2, 5, 0x24], 'ANCHOR');
  t.deepEqual(await bad(unmapCdb(4), Buffer.alloc(4)), [2, 5, 0x1A], 'a list shorter than its header');
  t.deepEqual(await bad(unmapCdb(24), unmapList([[64 * BPC - 4, 8]])), [2, 5, 0x21], 'past the end');
  const many = Array.from({ length: 257 }, (_, i): [number, number] => [i, 1]);
  t.deepEqual(await bad(unmapCdb(8 + 257 * 16), unmapList(many)), [2, 5, 0x26], 'more descriptors than VPD B0h allows');
  const over = Array.from({ length: 65 }, (): [number, number] => [0, 64 * BPC]); // 65 x 4 MiB: past 256 MiB in all
  t.deepEqual(await bad(unmapCdb(8 + 65 * 16), unmapList(over)), [2, 5, 0x26], 'more blocks in all than MAXIMUM UNMAP LBA COUNT');
  t.is((await unmap(s, [])).status, 0, 'no descriptor: nothing to do');
  t.is((await send(s, unmapCdb(0))).r.status, 0, 'no list');
  t.is(await allocated(c, 'th'), CHUNK, 'nothing was deallocated');
  t.true((await read(s, 1, 0, BPC)).equals(pattern(CHUNK, 1)));
});

test('a write that finds no free chunk on the media answers DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (07h/27h/07h) and changes nothing; what was acknowledged stays; UNMAP makes room again', async (t) => {
  // One 1 MiB medium: 15 chunks after its label's; a thick volume takes 2 of them, the thin one may take 13.
  const { emu, s, c } = await thinArray(t, 'thin-full', { media: [{ name: 'd0', kind: 'file', size: '1MiB' }] });
  await createVolume(s, { name: 'th', blocks: 32 * BPC, blockSize: 512, placement: 'thin' }, 1);
  await createVolume(s, { name: 'k', blocks: 2 * BPC, blockSize: 512, placement: 'linear' }, 2);
  for (let k = 0; k < 13; k++) await write(s, 1, k * BPC, pattern(4096, 10 + k));
  t.is(await freeChunks(c), 0);
  const full = async (cdb: number[], out: Buffer) => { const x = await send(s, cdb, { out }); return [x.r.status, x.sense?.key, x.sense?.asc, x.sense?.ascq]; };
  const refused = [2, scsi.SenseKey.DATA_PROTECT, 0x27, 0x07];
  const stat = () => emu.array().stats()[A.STAT_THIN_FULL];
  const before = stat();
  t.deepEqual(await full(cdb10(0x2A, 13 * BPC, 8), pattern(4096, 99)), refused, 'WRITE (10) into a chunk with none');
  t.deepEqual(await full(cdb16(0x93, 20 * BPC, 8), pattern(512, 99)), refused, 'WRITE SAME (16)');
  t.deepEqual(await full(cdb16(0x89, 14 * BPC, 1), Buffer.concat([Buffer.alloc(512), pattern(512, 99)])), refused, 'COMPARE AND WRITE (the compare of zeros would match)');
  t.is(stat() - before, 3, 'counted');
  t.is((await c.listVolumes()).find((v) => v.name === 'th')!.allocatedBytes, 13 * CHUNK, 'no chunk taken');
  t.deepEqual((await lbaStatus(s, 13 * BPC))[0], [13 * BPC, 19 * BPC, 1], 'still deallocated');
  t.true((await read(s, 1, 13 * BPC, 8)).equals(Buffer.alloc(4096)), 'the refused blocks read zeros');
  t.is((await send(s, cdb10(0x2A, 5 * BPC + 8, 8), { out: pattern(4096, 50) })).r.status, 0, 'a chunk the volume holds takes writes still');
  t.is((await send(s, cdb10(0x2A, 0, 8), { out: pattern(4096, 51), lun: 2 })).r.status, 0, 'and the thick volume');
  await emu.flush();
  for (let k = 0; k < 13; k++) t.true((await read(s, 1, k * BPC, 8)).equals(pattern(4096, 10 + k)), `chunk ${k} as acknowledged`);
  t.true((await read(s, 1, 5 * BPC + 8, 8)).equals(pattern(4096, 50)));
  t.is((await unmap(s, [[2 * BPC, BPC]])).status, 0);
  t.is((await send(s, cdb10(0x2A, 13 * BPC, 8), { out: pattern(4096, 52) })).r.status, 0, 'the chunk UNMAP gave back takes the write');
  t.true((await read(s, 1, 13 * BPC, 8)).equals(pattern(4096, 52)));
  t.true((await read(s, 1, 2 * BPC, 8)).equals(Buffer.alloc(4096)), 'not the bytes it held for chunk 2');
});

test('COMPARE AND WRITE on a thin volume, into a chunk no write reached and into one that holds data: GOOD, and the blocks read what it wrote (its stage and its NV wait each run the handler again)', async (t) => {
  const { s } = await thinArray(t, 'thin-caw');
  await createVolume(s, { name: 'th', blocks: 64 * BPC, blockSize: 512, placement: 'thin' }, 1);
  for (const lba of [0, 64 * BPC - 3]) {
    for (let n = 1; n <= 3; n++) {
      const a = Buffer.alloc(512 * n, 0x41);
      const b = Buffer.alloc(512 * n, 0x42);
      await write(s, 1, lba, a);
      const x = await send(s, cdb16(0x89, lba, 0).slice(0, 13).concat([n, 0, 0]), { out: Buffer.concat([a, b]) });
      t.is(x.r.status, 0, `LBA ${lba}, ${n} blocks: ${x.sense?.text}`);
      t.true((await read(s, 1, lba, n)).equals(b));
    }
  }
  const fresh = await send(s, cdb16(0x89, 10 * BPC, 0).slice(0, 13).concat([1, 0, 0]), { out: Buffer.concat([Buffer.alloc(512), pattern(512, 7)]) });
  t.is(fresh.r.status, 0, 'an unwritten chunk compares as zeros');
  t.true((await read(s, 1, 10 * BPC, 1)).equals(pattern(512, 7)));
});

test('sanctl volume create --thin makes a thin volume; volume status and volume list say what it holds on the media and what they have free', async (t) => {
  const { emu } = await thinArray(t, 'thin-sanctl');
  const sanctl = (...argv: string[]) => runSanctl(argv, { connect: async () => emu.connect(), env: { SANBOX_TARGET: 'inproc://a0/q0' } });
  const made = await sanctl('volume', 'create', 'th', '--size', '1GiB', '--thin', '--media', 'd0');
  t.is(made.code, 0, made.stderr);
  t.regex(made.stdout, /^created volume th \(#\d+, 1 GiB, 512-byte blocks, thin\), mapped to every port LUN 1\n$/);
  const s = emu.connect();
  await write(s, 1, 0, pattern(4096, 1));
  await write(s, 1, 100 * BPC, pattern(4096, 2));
  const human = await sanctl('volume', 'status', 'th');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^th \(#\d+\): thin, 1 GiB, 128 KiB allocated \(0 %\), 63\.8 MiB free on its media \(d0\), online, \d+ dirty cache slots\n$/);
  const json = JSON.parse((await sanctl('--json', 'volume', 'status', 'th')).stdout);
  t.like(json.volume, { name: 'th', placement: 'thin', bytes: 1 << 30, allocatedBytes: 2 * CHUNK, mediaFreeBytes: (1023 - 2) * CHUNK, mediaNames: ['d0'] });
  t.regex((await sanctl('volume', 'list')).stdout, /th\s+1 GiB\s+128 KiB\s+512\s+thin/);
  const both = await sanctl('volume', 'create', 'x', '--size', '1MiB', '--thin', '--stripe');
  t.is(both.code, 2);
  t.regex(both.stderr, /--stripe and --thin do not go together/);
  t.regex((await sanctl('volume', 'status', 'nope')).stderr, /no volume named "nope"/);
});

test('chunks go from volume to volume and never show the old one\'s bytes: thin deleted -> thick on the same chunks reads zeros; thick deleted -> thin writes a block per chunk and reads zeros around it, from the cache and from the media', async (t) => {
  const { emu, s, c, o } = await thinArray(t, 'thin-reuse', { media: [{ name: 'd0', kind: 'file', size: '1MiB' }] }); // 15 chunks
  const a = await createVolume(s, { name: 'a', blocks: 15 * BPC, blockSize: 512, placement: 'thin' }, 1);
  for (let k = 0; k < 15; k++) await write(s, 1, k * BPC, pattern(CHUNK, 100 + k));
  await emu.flush();
  await c.deleteVolume(a, { force: true });
  t.is(await freeChunks(c), 15, 'the deleted thin volume\'s chunks are back');
  const k1 = await createVolume(s, { name: 'k', blocks: 15 * BPC, blockSize: 512, placement: 'linear' }, 1);
  for (let k = 0; k < 15; k++) t.true((await read(s, 1, k * BPC, BPC)).equals(Buffer.alloc(CHUNK)), `thick chunk ${k}: zeros, not the thin volume's bytes`);
  for (let k = 0; k < 15; k++) await write(s, 1, k * BPC + 8, pattern(4096, 200 + k));
  await emu.flush();
  await c.deleteVolume(k1, { force: true });
  await createVolume(s, { name: 'b', blocks: 32 * BPC, blockSize: 512, placement: 'thin' }, 1);
  const expect = (k: number) => Buffer.concat([pattern(4096, 300 + k), Buffer.alloc(CHUNK - 4096)]);
  for (let k = 0; k < 15; k++) await write(s, 1, k * BPC, pattern(4096, 300 + k));
  for (let k = 0; k < 15; k++) t.true((await read(s, 1, k * BPC, BPC)).equals(expect(k)), `thin chunk ${k} from the cache`);
  await emu.flush();
  await emu.stop();
  const again = await startSmall(o);
  t.teardown(() => again.stop());
  const s2 = again.connect();
  for (let k = 0; k < 15; k++) t.true((await read(s2, 1, k * BPC, BPC)).equals(expect(k)), `thin chunk ${k} from the media after a restart`);
});

// docs/scsi.md, UNMAP's row of the error table: a chunk to deallocate that stays busy (here its
// first destage, on a medium 10^6 times slower than nominal: ~100 s a write) is waited for 60 s of
// virtual time, then the command ends ABORTED COMMAND, COMMAND TIMEOUT DURING PROCESSING; the chunk
// keeps its data and its medium chunk, and an UNMAP once the destage is done gives it back.
test('UNMAP of a chunk that stays busy for 60 s (its first destage on a medium 10^6 times slow) answers ABORTED COMMAND 0Bh/2Eh/02h, and the chunk keeps its data and its space', async (t) => {
  const { emu, s, c } = await thinArray(t, 'thin-unmap-busy', { mode: 'deterministic', media: [{ name: 'd0', kind: 'file', size: '8MiB' }] });
  await createVolume(s, { name: 'th', blocks: 16 * BPC, blockSize: 512, placement: 'thin' }, 1);
  const data = pattern(CHUNK, 8);
  emu.array().inject('d0 slow 1000000'); // before the write: its destage may run as soon as it is answered
  await write(s, 1, 0, data); // a thin chunk never written: nothing to stage, the medium is not read
  // Event by event (advance() runs on until the medium is idle) until the chunk's destage is on the medium.
  const clock = emu.driver() as DeterministicDriver;
  for (let i = 0; !emu.array().media[0].busy; i++) {
    if (i > 10_000 || !(await clock.nextEvent())) throw new Error('the chunk\'s destage never began');
  }
  const t0 = clock.now();
  const x = await send(s, unmapCdb(24), { out: unmapList([[0, BPC]]) });
  const waited = (clock.now() - t0) / 1e9;
  t.deepEqual([x.r.status, x.sense?.key, x.sense?.asc, x.sense?.ascq], [2, scsi.SenseKey.ABORTED_COMMAND, 0x2E, 0x02], x.sense?.text);
  t.true(waited >= 60 && waited < 62, `answered after the 60 s bound (${waited} s of virtual time)`);
  t.is(await allocated(c, 'th'), CHUNK, 'the chunk was not given back');
  t.true((await read(s, 1, 0, BPC)).equals(data), 'and reads what was written');
  emu.array().inject('d0 heal');
  await emu.advance(300_000); // the slow write ends, the chunk is mapped
  t.deepEqual(await lbaStatus(s, 0), [[0, BPC, 0], [BPC, 15 * BPC, 1]]);
  t.is((await unmap(s, [[0, BPC]])).status, 0, 'no longer busy: deallocated');
  t.is(await allocated(c, 'th'), 0);
  t.true((await read(s, 1, 0, BPC)).equals(Buffer.alloc(CHUNK)));
});

// docs/scsi.md, "Allocation on write": COMPARE AND WRITE takes the chunks of all its pieces or none.
// The pool has one free chunk; a COMPARE AND WRITE across two unmapped chunks (whose zeros would
// compare equal) needs two: SPACE ALLOCATION FAILED, no chunk taken, no block written. The same
// command once there is room for both: GOOD.
test('COMPARE AND WRITE across two unmapped chunks with room for one takes neither: DATA PROTECT 27h/07h, nothing allocated or written; with room for both, GOOD', async (t) => {
  const { s, c } = await thinArray(t, 'thin-caw-all-or-none', { media: [{ name: 'd0', kind: 'file', size: '1MiB' }] }); // 15 chunks
  await createVolume(s, { name: 'th', blocks: 32 * BPC, blockSize: 512, placement: 'thin' }, 1);
  for (let k = 0; k < 14; k++) await write(s, 1, k * BPC, pattern(4096, 10 + k));
  t.is(await freeChunks(c), 1, 'one chunk left');
  const n = 64; // 32 KiB: the last 32 blocks of chunk 20 and the first 32 of chunk 21
  const lba = 21 * BPC - 32;
  const caw = () => send(s, [...cdb16(0x89, lba, 0).slice(0, 13), n, 0, 0], { out: Buffer.concat([Buffer.alloc(512 * n), pattern(512 * n, 77)]) });
  const x = await caw();
  t.deepEqual([x.r.status, x.sense?.key, x.sense?.asc, x.sense?.ascq], [2, scsi.SenseKey.DATA_PROTECT, 0x27, 0x07], x.sense?.text);
  t.is(await freeChunks(c), 1, 'the free chunk was not taken for the first piece');
  t.is(await allocated(c, 'th'), 14 * CHUNK);
  t.deepEqual((await lbaStatus(s, 20 * BPC))[0], [20 * BPC, 12 * BPC, 1], 'both chunks still deallocated');
  t.true((await read(s, 1, lba, n)).equals(Buffer.alloc(512 * n)), 'no block written');
  t.is((await unmap(s, [[0, BPC]])).status, 0); // room for both now
  const y = await caw();
  t.is(y.r.status, 0, y.sense?.text);
  t.is(await freeChunks(c), 0);
  t.true((await read(s, 1, lba, n)).equals(pattern(512 * n, 77)));
});

// GET LBA STATUS (SBC-4 5.8): one descriptor per run of chunks of one provisioning status, from the
// LBA asked for; as many as the allocation length reaches, the transfer cut where it ends (SPC-5
// 4.2.5.6: it used to stop at the last whole descriptor, short of the allocation length).
test('GET LBA STATUS coalesces runs of chunks of one status, starts mid-run at the LBA asked for, and honours a small allocation length', async (t) => {
  const { s } = await thinArray(t, 'thin-lba-status');
  const blocks = 40 * BPC;
  await createVolume(s, { name: 'th', blocks, blockSize: 512, placement: 'thin' }, 1);
  for (const k of [0, 1, 2, 5, 6, 9]) await write(s, 1, k * BPC + 7, pattern(512, k));
  const all: Array<[number, number, number]> = [[0, 3 * BPC, 0], [3 * BPC, 2 * BPC, 1], [5 * BPC, 2 * BPC, 0], [7 * BPC, 2 * BPC, 1], [9 * BPC, BPC, 0], [10 * BPC, 30 * BPC, 1]];
  t.deepEqual(await lbaStatus(s, 0), all, 'six runs, not 40 chunks');
  t.deepEqual(await lbaStatus(s, BPC + 9), [[BPC + 9, 2 * BPC - 9, 0], ...all.slice(1)], 'from mid-run');
  t.deepEqual(await lbaStatus(s, blocks - 1), [[blocks - 1, 1, 1]], 'the last block');
  const raw = async (alloc: number) => {
    const x = await send(s, [0x9E, 0x12, ...be(0, 8), ...be(alloc, 4), 0, 0], { inLength: alloc });
    t.is(x.r.status, 0, x.sense?.text);
    return Buffer.from(x.r.data);
  };
  const two = await raw(40);
  t.is(two.length, 40);
  t.is(two.readUInt32BE(0), 4 + 2 * 16, 'two descriptors fit in 40 bytes');
  t.deepEqual([Number(two.readBigUInt64BE(24)), two.readUInt32BE(32), two[36]], [3 * BPC, 2 * BPC, 1]);
  const cut = await raw(30);
  t.is(cut.length, 30, 'cut at the allocation length, inside the second descriptor');
  t.is(cut.readUInt32BE(0), 4 + 2 * 16, 'the parameter data length counts the descriptor cut');
  t.true(cut.subarray(0, 30).equals(two.subarray(0, 30)));
  t.is((await raw(4)).length, 4, 'four bytes: the parameter data length alone');
  t.is((await raw(0)).length, 0, 'none');
  const past = await send(s, [0x9E, 0x12, ...be(blocks, 8), ...be(64, 4), 0, 0], { inLength: 64 });
  t.deepEqual([past.sense?.key, past.sense?.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x21], 'past the end: LBA OUT OF RANGE');
});
