// A write into a chunk that was never written (issue 8's write path, issue 7's rule that a new volume
// never reads another's bytes), through the real firmware: the cache slot it lands in is zeroed only
// where the write does not cover it, and the slot last held a deleted volume's bytes, so any sector
// marked valid without being written or zeroed would show them. Partial writes, one across a chunk
// boundary and a whole-chunk write read back as written with zeros around them: from the cache, after
// the first destage (which writes the whole chunk), and after a power cut.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { startSmall, tempDir, createVolume, write, read, pattern, run, type SmallOptions } from './env';

const CHUNK_BLOCKS = 128; // 64 KiB slots of 512-byte blocks
const CACHE_CHUNKS = 32; // the 2 MiB cache below
const opts = (dir: string): SmallOptions => ({ dir, mode: 'deterministic', cache: { size: '2MiB', destageAgeMs: 600_000, destageIntervalMs: 1000 } });
const spec: scsi.VolumeSpec = { name: 'old', blocks: 2 * CACHE_CHUNKS * CHUNK_BLOCKS, blockSize: 512, placement: 'linear', media: [0] };

/** The new volume's writes: [lba, blocks, seed]. */
const WRITES: Array<[number, number, number]> = [
  [40, 8, 11], // 4 KiB inside chunk 0
  [CHUNK_BLOCKS + 100, 48, 12], // across the boundary of chunks 1 and 2
  [3 * CHUNK_BLOCKS, CHUNK_BLOCKS, 13], // all of chunk 3
  [5 * CHUNK_BLOCKS + CHUNK_BLOCKS - 1, 1, 14], // the last sector of chunk 5
];
const SPAN = 6 * CHUNK_BLOCKS;

function expected(): Buffer {
  const b = Buffer.alloc(SPAN * 512);
  for (const [lba, blocks, seed] of WRITES) pattern(blocks * 512, seed).copy(b, lba * 512);
  return b;
}

/** The first sector that differs, or -1. */
function firstDiff(a: Buffer, b: Buffer): number {
  for (let s = 0; s < a.length / 512; s++) if (!a.subarray(s * 512, s * 512 + 512).equals(b.subarray(s * 512, s * 512 + 512))) return s;
  return -1;
}

test('partial writes into never-written chunks of a volume on a deleted one\'s extents read zeros around them, from cache slots that held the old bytes, after destage and after a power cut', async (t) => {
  const dir = tempDir('delete-blank-write');
  const emu = await startSmall(opts(dir));
  const s = emu.connect();
  const v = await createVolume(s, spec, 1);
  // Every cache slot ends up holding the old volume's bytes; the first chunks are on the medium too.
  for (let c = 0; c < 2 * CACHE_CHUNKS; c += 4) await write(s, 1, c * CHUNK_BLOCKS, pattern(4 * CHUNK_BLOCKS * 512, 100 + c));
  await emu.flush();
  for (let c = CACHE_CHUNKS; c < 2 * CACHE_CHUNKS; c += 4) await write(s, 1, c * CHUNK_BLOCKS, pattern(4 * CHUNK_BLOCKS * 512, 200 + c)); // some only dirty
  await run(s, 0, scsi.deleteVolume(v, true));

  t.is(await createVolume(s, { ...spec, name: 'new' }, 1), v, 'the same volume number on the same extents');
  for (const [lba, blocks, seed] of WRITES) await write(s, 1, lba, pattern(blocks * 512, seed));
  const want = expected();
  t.is(firstDiff(await read(s, 1, 0, SPAN), want), -1, 'from the cache: written sectors as written, the rest zeros');
  await emu.flush();
  t.is(firstDiff(await read(s, 1, 0, SPAN), want), -1, 'after the first destage of each chunk');
  await emu.stop('powerFail');

  const again = await startSmall(opts(dir));
  t.teardown(() => again.stop());
  const back = await read(again.connect(), 1, 0, SPAN);
  t.is(firstDiff(back, want), -1, 'after a power cut: the medium holds whole chunks with zeros around the data');
  t.is(firstDiff(await read(again.connect(), 1, SPAN, CHUNK_BLOCKS), Buffer.alloc(CHUNK_BLOCKS * 512)), -1, 'a chunk never written reads zeros');
});
