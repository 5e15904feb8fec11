// Firmware defects the fuzzer found, each pinned by a test through the real firmware (debug image)
// that fails on the code before its fix. The fuzzer seed that found each is in its comment.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { tempDir, startSmall, run, senseOf, read, write, pattern } from '../harness/env';
import type { CommandTransport } from '../../lib/transport';

async function array(t: any): Promise<CommandTransport> {
  const emu = await startSmall({ dir: tempDir('fuzz-regress'), mode: 'deterministic', media: [
    { name: 'd0', kind: 'ram', size: '16MiB' }, { name: 'd1', kind: 'ram', size: '16MiB' },
  ] });
  t.teardown(() => emu.stop());
  return emu.connect();
}

function createList(blocks: bigint, blockSize: number, placement: 0 | 1): Buffer {
  const b = scsi.createVolumeParameters({ name: 'huge', blocks: 1, blockSize: blockSize as 512 | 4096 });
  b[4] = placement;
  b.writeBigUInt64BE(blocks, 8);
  return b;
}

async function freeChunks(c: CommandTransport): Promise<number> {
  const r = await run(c, 0, scsi.management(false, scsi.Management.LIST_MEDIA, 4096), { inLength: 4096 });
  return scsi.parseMedia(Buffer.from(r.data)).reduce((n, m) => n + m.freeChunks, 0);
}

async function volumes(c: CommandTransport): Promise<scsi.Volume[]> {
  const r = await run(c, 0, scsi.management(false, scsi.Management.LIST_VOLUMES, 1 << 17), { inLength: 1 << 17 });
  return scsi.parseVolumes(Buffer.from(r.data));
}

// Found by the fuzzer's first runs (seed 1, batch 4, the tables check): a capacity of 2^48 bytes is
// 2^32 chunks, which the volume table's u32 chunk count kept as 0. The volume was created on no
// space at all (the media's free chunks did not move), and its data had nowhere to go.
for (const [what, blocks, bs, placement] of [
  ['2^48 bytes, linear', 1n << 39n, 512, 0],
  ['2^48 bytes, 4 KiB blocks', 1n << 36n, 4096, 0],
  ['2^32 - 1 chunks, striped (the stripe rounding overflowed)', ((1n << 32n) - 1n) * 128n, 512, 1],
] as const) {
  test(`CREATE VOLUME refuses a capacity whose chunk count does not fit: ${what}`, async (t) => {
    const c = await array(t);
    const free = await freeChunks(c);
    const s = await senseOf(run(c, 0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), { out: createList(blocks, bs, placement) }));
    t.deepEqual([s.key, s.asc, s.ascq], [scsi.SenseKey.ILLEGAL_REQUEST, 0x26, 0x00], s.text);
    t.deepEqual(s.field, { inCdb: false, byte: 8 }, 'the field pointer names the capacity');
    t.deepEqual(await volumes(c), []);
    t.is(await freeChunks(c), free);
  });
}

// Found reading the DELETE VOLUME path while writing the fuzzer's management generators (the
// fuzzer cannot see it: it does not know what a volume should hold): a DELETE VOLUME without FORCE
// of a mapped volume dropped the volume's cache slots, dirty ones included, and only then refused
// with VOLUME IS MAPPED. Acknowledged writes that had not reached the media were lost.
test('DELETE VOLUME without FORCE of a mapped volume is refused before anything is dropped: acknowledged writes stay', async (t) => {
  const emu = await startSmall({ dir: tempDir('fuzz-regress'), mode: 'deterministic', cache: { destageAgeMs: 600_000 }, media: [
    { name: 'd0', kind: 'ram', size: '16MiB' },
  ] });
  t.teardown(() => emu.stop());
  const c = emu.connect();
  await run(c, 0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64), { out: scsi.createVolumeParameters({ name: 'kept', blocks: 256, blockSize: 512 }) });
  const [v] = await volumes(c);
  await run(c, 0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { out: scsi.mapParameters(v.number, 0, 1) });
  const data = pattern(256 * 512, 7);
  await write(c, 1, 0, data);
  t.is((await volumes(c))[0].dirtySlots, 2, 'the data is in the cache, not yet on the medium');
  const s = await senseOf(run(c, 0, scsi.deleteVolume(v.number)));
  t.deepEqual([s.key, s.asc, s.ascq], [scsi.SenseKey.ILLEGAL_REQUEST, 0x80, 0x03], s.text);
  t.is((await volumes(c))[0].dirtySlots, 2, 'the refused delete left the dirty slots alone');
  t.true((await read(c, 1, 0, 256)).equals(data), 'what was acknowledged reads back');
});
