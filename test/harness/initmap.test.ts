// The init map (docs/hal.md, "Chunks that were never written"; firmware/initmap.ts) when it moves or
// comes from an older image: a chunk a volume wrote still reads back, and a chunk a volume created
// on a deleted one's extents never wrote still reads zeros, not the deleted volume's bytes.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import type { Emulator } from '../../harness';
import { crc32c } from '../../lib/protocol';
import * as scsi from '../../lib/scsi';
import { startSmall, tempDir, createVolume, write, read, pattern, run, type SmallOptions } from './env';

const d = (name: string) => ({ name, kind: 'file', size: '64MiB' });
const base = (dir: string): SmallOptions => ({ dir, mode: 'deterministic', cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } });
const spec = { blocks: 1024, blockSize: 512 as const, placement: 'linear' as const };

/**
 * Volume 0 "a" written and deleted; volume 1 "b" written; volume 0 "c" created on a's chunks and
 * written in its chunk 1 only; all on the medium; a graceful stop. Returns what b and c hold.
 */
async function setUp(label: string): Promise<{ dir: string; b: Buffer; c1: Buffer }> {
  const dir = tempDir(label);
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'a', ...spec }, 1);
  await createVolume(s, { name: 'b', ...spec }, 2);
  await write(s, 1, 0, pattern(65536, 1)); // a's chunks 0 and 1
  const b = pattern(4096, 2);
  await write(s, 2, 0, b);
  await emu.flush();
  await run(s, 0, scsi.deleteVolume(0, true));
  await createVolume(s, { name: 'c', ...spec }, 1);
  const c1 = pattern(4096, 3);
  await write(s, 1, 128, c1); // c's chunk 1 (a's chunk 1 before)
  await emu.flush();
  await emu.stop('graceful');
  return { dir, b, c1 };
}

async function check(t: ExecutionContext, emu: Emulator, b: Buffer, c1: Buffer, when: string): Promise<void> {
  const s = emu.connect();
  t.true((await read(s, 2, 0, 8)).equals(b), `${when}: b's chunk 0 reads back`);
  t.true((await read(s, 1, 128, 8)).equals(c1), `${when}: c's chunk 1 reads back`);
  t.true((await read(s, 1, 0, 8)).equals(Buffer.alloc(4096)), `${when}: c's chunk 0, never written, reads zeros, not a's bytes`);
}

const changes: Array<[string, Partial<SmallOptions>]> = [
  ['a medium added at the end', { media: [d('d0'), d('d1'), d('d2')] }],
  // Also: a cache resize after a graceful stop is accepted (it was refused as "dirty cache data for
  // another cache size": the check read every descriptor copy, and a slot's older copy still said dirty).
  ['a larger cache', { cache: { size: '16MiB', destageAgeMs: 600_000, destageIntervalMs: 1000 } }],
];
for (const [what, change] of changes) {
  test(`the init map moves with ${what}: written chunks read back, never-written ones read zeros, also after a power cut`, async (t) => {
    const { dir, b, c1 } = await setUp(`init-move-${what.length}`);
    const o = { ...base(dir), ...change };
    const moved = await startSmall(o);
    await check(t, moved, b, c1, 'after the move');
    await moved.stop('powerFail'); // the moved map was persisted at its new place
    const again = await startSmall(o);
    t.teardown(() => again.stop('powerFail'));
    await check(t, again, b, c1, 'after a power cut');
  });
}

/**
 * Rewrites a version 4 NV image (graceful stop) as the version 3 firmware wrote it: one copy of the
 * init map, records of 64 bytes of bits, their CRC-32C, 4 reserved bytes; header and table versions
 * 3. The layout is docs/hal.md's ("Layout and checksums").
 */
function toVersion3(file: string): void {
  const nv = fs.readFileSync(file);
  const a = nv.subarray(0, 2048);
  const bh = nv.subarray(2048, 4096);
  const h = Buffer.from(bh.readBigUInt64LE(24) > a.readBigUInt64LE(24) && bh.readUInt32LE(0) === 0x564e4253 ? bh : a);
  h.writeUInt32LE(3, 4);
  let init: Buffer | undefined;
  let initAt = 0;
  for (let i = 0; i < h.readUInt32LE(40); i++) {
    const e = 64 + i * 16;
    h.writeUInt16LE(3, e + 2);
    if (h.readUInt16LE(e) !== 4) continue; // the init map
    initAt = h.readUInt32LE(e + 4);
    const size = h.readUInt32LE(e + 8);
    h.writeUInt32LE(size / 2, e + 8);
    init = Buffer.alloc(size / 2);
    for (let r = 0; r < size / 2; r += 72) {
      const [x, y] = [nv.subarray(initAt + r, initAt + r + 72), nv.subarray(initAt + size / 2 + r, initAt + size / 2 + r + 72)];
      const cur = ((y.readUInt32LE(68) - x.readUInt32LE(68)) | 0) > 0 ? y : x; // the newer generation
      cur.copy(init, r, 0, 64);
      init.writeUInt32LE(crc32c(init.subarray(r, r + 64)), r + 64);
    }
  }
  if (!init) throw new Error('no init map in the directory');
  h.writeUInt32LE(crc32c(h.subarray(0, 2044)), 2044);
  const out = Buffer.concat([h, h, nv.subarray(4096, initAt), init]);
  fs.writeFileSync(file, out);
}

test('an NV image of version 3 (one copy of the init map) is upgraded at boot and keeps what its map said', async (t) => {
  const { dir, b, c1 } = await setUp('init-v3');
  toVersion3(path.join(dir, 'a0', 'nvram.bin'));
  const lines: string[] = [];
  const up = await startSmall(base(dir), { log: (l) => lines.push(l) });
  t.true(lines.some((l) => /nv: image upgraded \(from version, to version\) \(3, 4\)/.test(l)), lines.join('\n'));
  t.false(lines.some((l) => /rebuilt from the volume table/.test(l)), lines.join('\n'));
  await check(t, up, b, c1, 'after the upgrade');
  await up.stop('powerFail');
  const again = await startSmall(base(dir));
  t.teardown(() => again.stop('powerFail'));
  await check(t, again, b, c1, 'after a power cut');
});
