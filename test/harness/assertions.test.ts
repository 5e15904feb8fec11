// Assertions in the firmware (issue 7, docs/hal.md "Assertions"), through the real debug image: an
// invariant of the cache directory broken on purpose is caught by the firmware's own check, which
// aborts through env.abort; the harness turns that into a failed array whose error names the IOP,
// the file and the line, and every command waiting on the array fails with it.
import test from 'ava';
import * as A from '../../hal/abi';
import { FirmwareAbort } from '../../harness';
import { startSmall, tempDir, createVolume, write, read, pattern } from './env';

test('a broken cache-directory invariant becomes a failed array naming IOP, file and line', async (t) => {
  const emu = await startSmall({ dir: tempDir('assert'), mode: 'deterministic' });
  t.teardown(() => emu.stop());
  const a = emu.array();
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  await write(s, 1, 0, pattern(4096, 1));
  // The free list's count (firmware/cache.ts: CS_FREE is the first list of the cache state block,
  // its count at +8) made to disagree with the list.
  const cs = a.mem.u32(A.MAP_ADDR + A.MAP_CACHE_STATE);
  a.mem.setU32(cs + 8, a.mem.u32(cs + 8) + 1);
  const e = await t.throwsAsync(emu.flush()); // the disk IOP checks the directory when a flush completes
  t.true(a.failed instanceof FirmwareAbort);
  const f = a.failed as FirmwareAbort;
  t.is(f.iop, 1);
  t.is(f.role, 'disk');
  t.regex(f.file, /firmware\/cache\.ts$/);
  t.true(f.line > 0);
  t.regex(f.message, /array a0: firmware abort in IOP 1 \(disk\): cache: a list's count differs from its length at .*cache\.ts:\d+:\d+/);
  t.regex(e!.message, /firmware abort in IOP 1 \(disk\)/);
  await t.throwsAsync(read(s, 1, 0, 8), undefined, 'its sessions were closed');
  t.throws(() => emu.connect(), { message: /array a0 has stopped: .*firmware abort in IOP 1 \(disk\)/ });
});
