// Checksummed NV (issue 7), through the real firmware: a crash that tears an NV write leaves a
// record or a sector whose CRC-32C fails; recovery drops it, says so (log, trace, stats), and a
// READ of a dropped sector is a MEDIUM ERROR, never bytes the array cannot vouch for.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import type { ArrayController, Emulator } from '../../harness';
import { startSmall, tempDir, createVolume, write, read, pattern, senseOf, run } from './env';

interface NvInternals { apply(e: number): number; fd: number; base: number; severed: boolean }

/**
 * Arms a crash on the next NV entry `pick` chooses: only its first `keep` bytes reach the file,
 * then the power fails (nothing more reaches the NV file or the media).
 */
function tearNext(a: ArrayController, pick: (op: number, addr: number, length: number) => boolean, keep: number): { fired: boolean } {
  const nv = a.nv as unknown as NvInternals;
  const apply = nv.apply.bind(nv);
  const state = { fired: false };
  nv.apply = (e: number) => {
    const m = a.mem;
    const op = m.u8At(e + A.NSQ_OP);
    const addr = m.u32(e + A.NSQ_ADDR);
    const length = m.u32(e + A.NSQ_LENGTH);
    if (state.fired || nv.severed || !pick(op, addr, length)) return apply(e);
    const src = op === A.NOP_INLINE ? e + A.NSQ_INLINE : addr;
    fs.writeSync(nv.fd, m.u8, src, keep, addr - nv.base);
    state.fired = true;
    nv.severed = true;
    a.powerFail();
    return 0;
  };
  return state;
}

const topo = (dir: string) => ({ dir, mode: 'deterministic' as const, cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 } });

async function setUp(label: string): Promise<{ dir: string; emu: Emulator; first: Buffer }> {
  const dir = tempDir(label);
  const emu = await startSmall(topo(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, 1);
  const first = pattern(8192, 1);
  await write(s, 1, 0, first); // acknowledged: sectors 0-15 dirty in NV
  return { dir, emu, first };
}

test('a data write torn by a crash: its sectors fail their CRC at recovery, are dropped and read as MEDIUM ERROR; the rest reads back', async (t) => {
  const { dir, emu, first } = await setUp('nv-torn-data');
  const lines: string[] = [];
  const torn = tearNext(emu.array(), (op, _addr, length) => op === A.NOP_RANGE && length === 4096, 1536);
  const s = emu.connect();
  const second = write(s, 1, 8, pattern(4096, 2)); // overwrites sectors 8-15 in NV: torn after 3 sectors
  await t.throwsAsync(second); // never acknowledged: the power failed
  t.true(torn.fired);
  await emu.stop('powerFail');

  const again = await startSmall({ ...topo(dir), trace: true }, { log: (l) => lines.push(l) });
  t.teardown(() => again.stop('powerFail'));
  const s2 = again.connect();
  t.true((await read(s2, 1, 0, 8)).equals(first.subarray(0, 4096)), 'sectors 0-7 (untouched) read back');
  // Sectors 8-10 hold the torn write's bytes (never acknowledged), not those their CRCs vouch for.
  const bad = await senseOf(read(s2, 1, 8, 8));
  t.deepEqual([bad.key, bad.asc, bad.ascq, bad.info], [3, 0x11, 0x00, 8], bad.text);
  t.true((await read(s2, 1, 11, 5)).equals(first.subarray(11 * 512, 16 * 512)), 'sectors 11-15, which the tear did not reach, read back');
  t.is(again.array().stats()[A.STAT_NV_DROPPED], 3);
  t.true(lines.some((l) => /nv: dirty sectors whose NV data failed its CRC were dropped/.test(l)), lines.join('\n'));
  // Writing the LBAs again makes them readable.
  const fresh = pattern(4096, 3);
  await write(s2, 1, 8, fresh);
  t.true((await read(s2, 1, 8, 8)).equals(fresh));
  await again.stop();
  const dropped = fs.readFileSync(path.join(dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.type === 'nvDropped').map((r) => [r.volume, r.lba512]);
  t.deepEqual(dropped, [[0, 8], [0, 9], [0, 10]], 'each dropped sector is in the trace');
});

test('a descriptor write torn by a crash: the previous copy is whole and what it acknowledged reads back', async (t) => {
  const { dir, emu, first } = await setUp('nv-torn-desc');
  const torn = tearNext(emu.array(), (op, _addr, length) => op === A.NOP_INLINE && length === 64, 30);
  const s = emu.connect();
  await t.throwsAsync(write(s, 1, 16, pattern(4096, 2))); // same slot, sectors 16-23; its descriptor is torn
  t.true(torn.fired);
  await emu.stop('powerFail');
  const again = await startSmall(topo(dir));
  t.teardown(() => again.stop('powerFail'));
  const s2 = again.connect();
  t.true((await read(s2, 1, 0, 16)).equals(first), 'the acknowledged sectors 0-15 came back from the previous copy');
});

test('a volume table entry that fails its CRC is dropped and logged, not misread', async (t) => {
  const { dir, emu } = await setUp('nv-torn-volume');
  await emu.stop('graceful');
  const file = path.join(dir, 'a0', 'nvram.bin');
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('X'), 0, 1, 4096 + 20); // volume 0's name (docs/hal.md: the volume table starts at 4 KiB)
  fs.closeSync(fd);
  const lines: string[] = [];
  const again = await startSmall(topo(dir), { log: (l) => lines.push(l) });
  t.teardown(() => again.stop());
  t.true(lines.some((l) => /volume table entry failed its CRC and was dropped \(volume\) \(0, /.test(l)), lines.join('\n'));
  const vols = scsi.parseVolumes(Buffer.from((await run(again.connect(), 0, scsi.management(false, scsi.Management.LIST_VOLUMES, 4096), { inLength: 4096 })).data));
  t.deepEqual(vols, []);
});

test('an NV image of another version is a boot error that says what to do, and the file is left as it was', async (t) => {
  const dir = tempDir('nv-version');
  const file = path.join(dir, 'a0', 'nvram.bin');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const old = Buffer.alloc(8192);
  old.writeUInt32LE(0x564e4253, 0); // "SBNV", version 1: the layout before checksums
  old.writeUInt32LE(1, 4);
  fs.writeFileSync(file, old);
  const e = await t.throwsAsync(startSmall(topo(dir)));
  t.regex(e!.message, /written by another firmware version \(detail: its version\).*remove the NV file to start over.*\(detail 1\)/);
  t.true(fs.readFileSync(file).subarray(0, 8192).equals(old));
});
