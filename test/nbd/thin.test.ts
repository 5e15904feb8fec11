// NBD on a thin volume (docs/nbd.md, "TRIM"): TRIM and WRITE_ZEROES without NO_HOLE deallocate (WRITE
// SAME (16) with UNMAP), their chunks go back to the media and the range reads zeros; WRITE_ZEROES
// with NO_HOLE writes zeros and keeps the range provisioned; a write that finds the media full is
// ENOSPC, with the SCSI sense in the structured error.
import test from 'ava';
import { pattern, createVolume } from '../harness/env';
import { startNbd, NbdArray, have, run } from './env';
import { NbdClient, CMD, FLAG, E, OPT, REP } from './client';
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

// docs/nbd.md, "Block status": the base:allocation metadata context, answered from GET LBA STATUS.
const optionData = (name: string, queries: string[]): Buffer => {
  const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)];
  parts[0].writeUInt32BE(Buffer.byteLength(name));
  parts[2].writeUInt32BE(queries.length);
  for (const q of queries) { const l = Buffer.alloc(4); l.writeUInt32BE(Buffer.byteLength(q)); parts.push(l, Buffer.from(q)); }
  return Buffer.concat(parts);
};

/** The BLOCK_STATUS reply's extents: [length, flags] (context id 1, one chunk marked DONE). */
async function extents(c: NbdClient, handle: bigint, offset: number, length: number, flags = 0): Promise<Array<[number, number]>> {
  c.request(CMD.BLOCK_STATUS, handle, offset, length, flags);
  const h = await c.take(20);
  if (h.readUInt32BE(0) !== 0x668e33ef) throw new Error('not a structured reply');
  const p = await c.take(h.readUInt32BE(16));
  if (h.readUInt16BE(6) !== 5) throw new Error(`chunk type ${h.readUInt16BE(6).toString(16)}: ${p.subarray(10).toString()}`);
  if ((h.readUInt16BE(4) & 1) === 0) throw new Error('BLOCK_STATUS chunk without DONE');
  if (p.readUInt32BE(0) !== 1) throw new Error('not base:allocation\'s id');
  return Array.from({ length: (p.length - 4) / 8 }, (_, i): [number, number] => [p.readUInt32BE(4 + i * 8), p.readUInt32BE(8 + i * 8)]);
}

test('base:allocation: LIST and SET_META_CONTEXT name it; BLOCK_STATUS says which runs of chunks are holes (hole|zero) and which hold data, from the offset asked for, cut at its length, one extent with REQ_ONE', async (t) => {
  const a = await startNbd('nbd-thin-status', { blocks: 64 * 128, placement: 'thin' }); // 4 MiB, 64 chunks
  t.teardown(() => a.emu.stop());
  const c = await NbdClient.connect(a.port);
  t.teardown(() => c.close());
  await c.handshake();
  c.option(OPT.STRUCTURED_REPLY);
  await c.optionReplies();
  const ask = async (option: number, data: Buffer) => { c.option(option, data); return c.optionReplies(); };
  const list = await ask(OPT.LIST_META_CONTEXT, optionData('v', []));
  t.deepEqual(list.map((r) => r.type), [4, REP.ACK]);
  t.deepEqual([list[0].data.readUInt32BE(0), list[0].data.subarray(4).toString()], [1, 'base:allocation']);
  t.deepEqual((await ask(OPT.LIST_META_CONTEXT, optionData('v', ['base:']))).map((r) => r.type), [4, REP.ACK], '"base:" lists it');
  t.deepEqual((await ask(OPT.LIST_META_CONTEXT, optionData('v', ['qemu:dirty-bitmap:x']))).map((r) => r.type), [REP.ACK], 'nothing else is served');
  t.is((await ask(OPT.SET_META_CONTEXT, optionData('nosuch', ['base:allocation']))).pop()!.type, REP.ERR_UNKNOWN);
  const set = await ask(OPT.SET_META_CONTEXT, optionData('v', ['base:allocation']));
  t.deepEqual(set.map((r) => r.type), [4, REP.ACK]);
  await c.go('v', false);
  c.structured = true;
  // Written: chunks 0-2, 5, and a block of 9. Holes: 3-4, 6-8, 10-63.
  for (const [k, n] of [[0, 3], [5, 1]]) {
    c.request(CMD.WRITE, 1n, k * CHUNK, n * CHUNK, 0, pattern(n * CHUNK, k));
    t.is((await c.reply()).error, 0);
  }
  c.request(CMD.WRITE, 2n, 9 * CHUNK + 4096, 512, 0, pattern(512, 9));
  t.is((await c.reply()).error, 0);
  const HZ = 3; // NBD_STATE_HOLE | NBD_STATE_ZERO
  t.deepEqual(await extents(c, 3n, 0, 64 * CHUNK), [[3 * CHUNK, 0], [2 * CHUNK, HZ], [CHUNK, 0], [3 * CHUNK, HZ], [CHUNK, 0], [54 * CHUNK, HZ]]);
  t.deepEqual(await extents(c, 4n, CHUNK + 512, 3 * CHUNK), [[2 * CHUNK - 512, 0], [CHUNK + 512, HZ]], 'from mid-run, cut at the length');
  t.deepEqual(await extents(c, 5n, 3 * CHUNK, 10 * CHUNK, 8), [[2 * CHUNK, HZ]], 'REQ_ONE: one extent');
  t.deepEqual(await extents(c, 6n, 3 * CHUNK + 100, 7), [[7, HZ]], 'any bytes: the extents begin where asked');
  c.request(CMD.TRIM, 7n, 0, 2 * CHUNK);
  t.is((await c.reply()).error, 0);
  t.deepEqual((await extents(c, 8n, 0, 6 * CHUNK)), [[2 * CHUNK, HZ], [CHUNK, 0], [2 * CHUNK, HZ], [CHUNK, 0]], 'TRIM makes holes');
  c.request(CMD.BLOCK_STATUS, 9n, 63 * CHUNK, 2 * CHUNK);
  t.is((await c.reply()).error, E.EINVAL, 'past the end');
  c.request(CMD.BLOCK_STATUS, 10n, 0, 512, 1);
  t.is((await c.reply()).error, E.EINVAL, 'FUA is no flag of BLOCK_STATUS');
});

test('nbdinfo --map shows a thin export\'s data and holes (base:allocation), and a thick export all data', async (t) => {
  if (!have(t, 'nbdinfo', 'libnbd-bin')) return;
  const a = await startNbd('nbd-thin-map', { blocks: 64 * 128, placement: 'thin' });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  for (const k of [1, 2, 7]) {
    c.request(CMD.WRITE, BigInt(k), k * CHUNK, 4096, 0, pattern(4096, k));
    t.is((await c.reply()).error, 0);
  }
  const map = async (name: string) => {
    const r = await run('nbdinfo', ['--map', '--json', `${a.url}/${name}`]);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as Array<{ offset: number; length: number; type: number }>).map((e) => [e.offset, e.length, e.type]);
  };
  t.deepEqual(await map('v'), [[0, CHUNK, 3], [CHUNK, 2 * CHUNK, 0], [3 * CHUNK, 4 * CHUNK, 3], [7 * CHUNK, CHUNK, 0], [8 * CHUNK, 56 * CHUNK, 3]]);
  await createVolume(a.emu.connect(), { name: 'k', blocks: 2048, blockSize: 512, placement: 'linear' }, 2);
  t.deepEqual(await map('k'), [[0, 2048 * 512, 0]], 'thick: data throughout');
});
