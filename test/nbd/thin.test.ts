// NBD on a thin volume (docs/nbd.md, "TRIM"): TRIM and WRITE_ZEROES without NO_HOLE deallocate (WRITE
// SAME (16) with UNMAP), their chunks go back to the media and the range reads zeros; WRITE_ZEROES
// with NO_HOLE writes zeros and keeps the range provisioned; a write that finds the media full is
// ENOSPC, with the SCSI sense in the structured error.
import test from 'ava';
import { pattern } from '../harness/env';
import { startNbd, NbdArray } from './env';
import { NbdClient, CMD, FLAG, E } from './client';
import { ScsiClient } from '../../host/client';

const CHUNK = 65536;

async function ready(a: NbdArray): Promise<NbdClient> {
  const c = await NbdClient.connect(a.port);
  await c.handshake();
  await c.go('v', true);
  return c;
}

async function allocated(a: NbdArray): Promise<number> {
  return (await new ScsiClient(a.emu.connect()).listVolumes()).find((v) => v.name === 'v')!.allocatedBytes;
}

test('TRIM on a thin export gives its whole chunks back and the range reads zeros; a chunk in part keeps its other blocks; 40 MiB (two commands) at once', async (t) => {
  const a = await startNbd('nbd-thin-trim', { blocks: 65536 * 2, placement: 'thin', cache: { size: '16MiB' } }); // 64 MiB
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  const data = pattern(8 * CHUNK, 3);
  c.request(CMD.WRITE, 1n, 0, data.length, 0, data);
  t.is((await c.reply()).error, 0);
  t.is(await allocated(a), 8 * CHUNK);
  c.request(CMD.TRIM, 2n, CHUNK, 2 * CHUNK + 4096);
  t.is((await c.reply()).error, 0);
  t.is(await allocated(a), 6 * CHUNK, 'chunks 1 and 2 given back; chunk 3 in part kept');
  c.request(CMD.READ, 3n, 0, 4 * CHUNK);
  const expect = Buffer.from(data.subarray(0, 4 * CHUNK));
  expect.fill(0, CHUNK, 3 * CHUNK + 4096);
  t.true((await c.reply(4 * CHUNK)).data.equals(expect), 'trimmed blocks read zeros, the others what was written');
  c.request(CMD.WRITE, 4n, 50 << 20, 4096, 0, pattern(4096, 4));
  t.is((await c.reply()).error, 0);
  t.is(await allocated(a), 7 * CHUNK);
  c.request(CMD.TRIM, 5n, 0, 40 << 20, FLAG.FUA);
  t.is((await c.reply()).error, 0, '40 MiB: two WRITE SAME (16) commands in one context');
  t.is(await allocated(a), CHUNK, 'only the chunk at 50 MiB is left');
  c.request(CMD.READ, 6n, 50 << 20, 4096);
  t.true((await c.reply(4096)).data.equals(pattern(4096, 4)));
});

test('WRITE_ZEROES on a thin export: without NO_HOLE it deallocates; with NO_HOLE it writes zeros and the chunk is taken', async (t) => {
  const a = await startNbd('nbd-thin-zeroes', { blocks: 16384, placement: 'thin' });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  c.request(CMD.WRITE, 1n, 0, 2 * CHUNK, 0, pattern(2 * CHUNK, 5));
  t.is((await c.reply()).error, 0);
  c.request(CMD.WRITE_ZEROES, 2n, 0, CHUNK);
  t.is((await c.reply()).error, 0);
  t.is(await allocated(a), CHUNK, 'a hole punched');
  c.request(CMD.WRITE_ZEROES, 3n, 4 * CHUNK, CHUNK, FLAG.NO_HOLE);
  t.is((await c.reply()).error, 0);
  t.is(await allocated(a), 2 * CHUNK, 'NO_HOLE: the range is provisioned');
  c.request(CMD.READ, 4n, 0, 5 * CHUNK);
  const expect = Buffer.concat([Buffer.alloc(CHUNK), pattern(2 * CHUNK, 5).subarray(CHUNK), Buffer.alloc(3 * CHUNK)]);
  t.true((await c.reply(5 * CHUNK)).data.equals(expect));
});

test('a write to a thin export whose media are full is ENOSPC (sense 7/27/07 in the message) and changes nothing; TRIM makes room', async (t) => {
  // One 1 MiB medium: 15 chunks for the thin volume of 2 MiB.
  const a = await startNbd('nbd-thin-full', { blocks: 4096, placement: 'thin', media: [{ name: 'd0', kind: 'file', size: '1MiB' }] });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  for (let k = 0; k < 15; k++) {
    c.request(CMD.WRITE, BigInt(k), k * CHUNK, 4096, 0, pattern(4096, k));
    t.is((await c.reply()).error, 0);
  }
  c.request(CMD.WRITE, 20n, 15 * CHUNK, 4096, 0, pattern(4096, 20));
  const full = await c.reply();
  t.is(full.error, E.ENOSPC);
  t.regex(full.message ?? '', /sense 7\/27\/07/);
  c.request(CMD.READ, 21n, 15 * CHUNK, 4096);
  t.true((await c.reply(4096)).data.equals(Buffer.alloc(4096)));
  c.request(CMD.TRIM, 22n, 3 * CHUNK, CHUNK);
  t.is((await c.reply()).error, 0);
  c.request(CMD.WRITE, 23n, 15 * CHUNK, 4096, 0, pattern(4096, 23));
  t.is((await c.reply()).error, 0, 'the chunk TRIM gave back');
  c.request(CMD.READ, 24n, 3 * CHUNK, 4096);
  t.true((await c.reply(4096)).data.equals(Buffer.alloc(4096)), 'the trimmed chunk reads zeros, not what the new write put on its medium chunk');
});
