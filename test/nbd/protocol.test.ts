// The NBD server against proto.md, byte by byte with a client that sends what a test asks for: the
// handshake (fixed newstyle only), every option's answer and the errors proto.md names, requests
// in simple and structured replies, long WRITE_ZEROES split over several commands, and bad input of
// each kind: garbage client flags, bad magic, unknown options and requests, oversized, unaligned
// and out-of-range requests, idle connections. A bad client loses only its own connection.
import test from 'ava';
import { ENOSPC } from 'constants';
import * as A from '../../hal/abi';
import { pattern } from '../harness/env';
import { startNbd, NbdArray } from './env';
import { NbdClient, OPT, REP, CMD, FLAG, E, goData } from './client';
import { ScsiClient } from '../../host/client';

async function ready(a: NbdArray, structured = true): Promise<NbdClient> {
  const c = await NbdClient.connect(a.port);
  await c.handshake();
  await c.go('v', structured);
  return c;
}

function stat(a: NbdArray, k: number): number { return a.emu.array().stats()[k]; }

test('handshake: NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE | NO_ZEROES; GO gives size, flags (flush, FUA, trim, zeroes, multi-conn) and block sizes', async (t) => {
  const a = await startNbd('nbd-hs', { blocks: 4096 });
  t.teardown(() => a.emu.stop());
  const c = await NbdClient.connect(a.port);
  t.teardown(() => c.close());
  t.is(await c.handshake(), 3);
  const { size, flags, replies } = await c.go('v');
  t.is(size, 4096n * 512n);
  t.is(flags, 1 | 4 | 8 | 32 | 64 | 256);
  const bs = replies.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 3)!.data;
  t.deepEqual([bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)], [512, 4096, 32 << 20]);
});

test('client flags with an unknown bit, or without FIXED_NEWSTYLE (non-fixed newstyle): the connection is closed, counted and traced; another client is served', async (t) => {
  const a = await startNbd('nbd-flags', { trace: true });
  t.teardown(() => a.emu.stop());
  const good = await ready(a);
  t.teardown(() => good.close());
  for (const flags of [0x80000003, 0]) {
    const c = await NbdClient.connect(a.port);
    await c.handshake(flags);
    await c.closedP;
    t.pass(`flags ${flags.toString(16)}: closed`);
  }
  t.is(stat(a, A.STAT_NBD_DROPPED), 2);
  good.request(CMD.READ, 9n, 0, 512);
  const r = await good.reply(512);
  t.is(r.error, 0, 'the other client is untouched');
});

test('options: unknown is NBD_REP_ERR_UNSUP, STARTTLS ERR_POLICY, LIST with data ERR_INVALID, 10 KiB of data ERR_TOO_BIG (read past), INFO/GO of no export ERR_UNKNOWN; each with a message, and GO works after them', async (t) => {
  const a = await startNbd('nbd-opts');
  t.teardown(() => a.emu.stop());
  const c = await NbdClient.connect(a.port);
  t.teardown(() => c.close());
  await c.handshake();
  const ask = async (option: number, data?: Buffer) => { c.option(option, data); return (await c.optionReplies()).pop()!; };
  t.is((await ask(99)).type, REP.ERR_UNSUP);
  t.is((await ask(OPT.STARTTLS)).type, REP.ERR_POLICY);
  const inv = await ask(OPT.LIST, Buffer.from('x'));
  t.is(inv.type, REP.ERR_INVALID);
  t.regex(inv.data.toString(), /carries no data/);
  t.is((await ask(OPT.GO, Buffer.alloc(10240))).type, REP.ERR_TOO_BIG);
  t.is((await ask(OPT.INFO, goData('nosuch'))).type, REP.ERR_UNKNOWN);
  t.is((await ask(OPT.GO, goData(''))).type, REP.ERR_UNKNOWN, 'no default export');
  t.is((await ask(OPT.GO, Buffer.from([0, 0, 0, 9, 0x76]))).type, REP.ERR_INVALID, 'a name longer than the option');
  t.is((await ask(OPT.SET_META_CONTEXT, Buffer.alloc(8))).type, REP.ERR_INVALID, 'meta contexts need structured replies');
  const list = await (async () => { c.option(OPT.LIST); return c.optionReplies(); })();
  t.deepEqual(list.map((r) => r.type), [REP.SERVER, REP.ACK]);
  t.is(list[0].data.subarray(4).toString(), 'v');
  const info = await (async () => { c.option(OPT.INFO, goData('v', [1])); return c.optionReplies(); })();
  t.true(info.some((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 1 && r.data.subarray(2).toString() === 'v'), 'NBD_INFO_NAME when asked');
  const { size } = await c.go('v');
  t.is(size, 16384n * 512n);
  t.true(stat(a, A.STAT_NBD_ERRORS) >= 8);
});

test('an option without IHAVEOPT closes that connection only; NBD_OPT_ABORT is ACKed, then the connection closes', async (t) => {
  const a = await startNbd('nbd-optmagic');
  t.teardown(() => a.emu.stop());
  const good = await ready(a, false);
  t.teardown(() => good.close());
  const bad = await NbdClient.connect(a.port);
  await bad.handshake();
  bad.option(OPT.LIST, Buffer.alloc(0), Buffer.from('GARBAGE!'));
  await bad.closedP;
  const ab = await NbdClient.connect(a.port);
  await ab.handshake();
  ab.option(OPT.ABORT);
  t.is((await ab.optionReply()).type, REP.ACK);
  await ab.closedP;
  good.request(CMD.READ, 1n, 0, 4096);
  t.is((await good.reply(4096)).error, 0);
  t.is(stat(a, A.STAT_NBD_DROPPED), 1);
});

test('NBD_OPT_EXPORT_NAME: size, flags and 124 zeros (none with NO_ZEROES); an unknown name closes the connection, as proto.md says', async (t) => {
  const a = await startNbd('nbd-expname');
  t.teardown(() => a.emu.stop());
  const c = await NbdClient.connect(a.port);
  t.teardown(() => c.close());
  await c.handshake(1);
  c.option(OPT.EXPORT_NAME, Buffer.from('v'));
  const r = await c.take(134);
  t.is(r.readBigUInt64BE(0), 16384n * 512n);
  t.is(r.readUInt16BE(8) & 1, 1);
  t.true(r.subarray(10).equals(Buffer.alloc(124)));
  c.request(CMD.READ, 5n, 0, 512);
  t.is((await c.reply(512)).handle, 5n);
  const bad = await NbdClient.connect(a.port);
  await bad.handshake();
  bad.option(OPT.EXPORT_NAME, Buffer.from('nosuch'));
  await bad.closedP;
  t.pass();
});

for (const structured of [false, true]) {
  const kind = structured ? 'structured' : 'simple';
  test(`${kind} replies: WRITE (and FUA) then READ round trip; FLUSH; TRIM is taken as a hint; zero-length requests succeed`, async (t) => {
    const a = await startNbd(`nbd-rw-${kind}`);
    t.teardown(() => a.emu.stop());
    const c = await ready(a, structured);
    t.teardown(() => c.close());
    const data = pattern(256 << 10, 3);
    c.request(CMD.WRITE, 1n, 65536, data.length, 0, data);
    const w = await c.reply();
    t.deepEqual([w.handle, w.error, w.data.length], [1n, 0, 0]);
    c.request(CMD.WRITE, 2n, 0, 4096, FLAG.FUA, data.subarray(0, 4096));
    t.is((await c.reply()).error, 0);
    c.request(CMD.READ, 3n, 65536, data.length);
    const r = await c.reply(data.length);
    t.is(r.error, 0);
    t.true(r.data.equals(data));
    if (structured) t.true(r.chunks >= 1);
    c.request(CMD.FLUSH, 4n, 0, 0);
    t.is((await c.reply()).error, 0);
    c.request(CMD.TRIM, 5n, 0, 8192);
    t.is((await c.reply()).error, 0);
    c.request(CMD.READ, 6n, 0, 0);
    t.is((await c.reply()).error, 0);
  });

  test(`${kind} replies: bad requests get the errno proto.md names and the session goes on`, async (t) => {
    const a = await startNbd(`nbd-bad-${kind}`, { blocks: 2048 });
    t.teardown(() => a.emu.stop());
    const c = await ready(a, structured);
    t.teardown(() => c.close());
    const size = 2048 * 512;
    const cases: Array<[string, () => void, number]> = [
      ['unknown command', () => c.request(42, 1n, 0, 512), E.EINVAL],
      ['BLOCK_STATUS without a meta context', () => c.request(CMD.BLOCK_STATUS, 1n, 0, 512), E.EINVAL],
      ['unknown flag', () => c.request(CMD.READ, 1n, 0, 512, 0x40), E.EINVAL],
      ['NO_HOLE on a read', () => c.request(CMD.READ, 1n, 0, 512, FLAG.NO_HOLE), E.EINVAL],
      ['unaligned read', () => c.request(CMD.READ, 1n, 100, 512), E.EINVAL],
      ['read beyond the end', () => c.request(CMD.READ, 1n, size - 512, 1024), E.EINVAL],
      ['read at 2^64 - 512', () => c.request(CMD.READ, 1n, 0xFFFFFFFFFFFFFE00n, 512), E.EINVAL],
      ['write beyond the end (payload read past)', () => c.request(CMD.WRITE, 1n, size, 4096, 0, pattern(4096, 1)), E.ENOSPC],
      ['unaligned write (payload read past)', () => c.request(CMD.WRITE, 1n, 0, 100, 0, pattern(100, 1)), E.EINVAL],
      ['WRITE_ZEROES beyond the end', () => c.request(CMD.WRITE_ZEROES, 1n, size, 512), E.ENOSPC],
      ['FLUSH with a length', () => c.request(CMD.FLUSH, 1n, 0, 512), E.EINVAL],
      ['read longer than the maximum payload', () => c.request(CMD.READ, 1n, 0, (32 << 20) + 512), structured ? E.EOVERFLOW : E.EINVAL],
    ];
    for (const [what, send, errno] of cases) {
      send();
      const r = await c.reply();
      t.is(r.error, errno, what);
      if (structured) t.regex(r.message ?? '', /^sanbox: /, what);
    }
    // A write longer than the maximum payload, with its payload: refused, and every byte read past.
    const big = pattern((32 << 20) + 4096, 9);
    c.request(CMD.WRITE, 7n, 0, big.length, 0, big);
    t.is((await c.reply()).error, E.EINVAL);
    c.request(CMD.WRITE, 8n, 0, 512, 0, pattern(512, 2));
    t.is((await c.reply()).error, 0, 'the stream is in step after the refused payloads');
    c.request(CMD.READ, 9n, 0, 512);
    t.true((await c.reply(512)).data.equals(pattern(512, 2)));
    t.true(stat(a, A.STAT_NBD_ERRORS) >= cases.length + 1);
  });
}

test('TRIM frees nothing (docs/nbd.md): no SCSI command runs and the range reads back what was written; it is checked as a write (EINVAL, EPERM once the access list makes the export read-only, EIO once it hides it)', async (t) => {
  const a = await startNbd('nbd-trim', { blocks: 2048 });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  const admin = new ScsiClient(a.emu.connect());
  const v = (await admin.listVolumes()).find((x) => x.name === 'v')!.number;
  const data = pattern(128 << 10, 5);
  c.request(CMD.WRITE, 1n, 65536, data.length, 0, data);
  t.is((await c.reply()).error, 0);
  const commands = stat(a, A.STAT_COMMANDS);
  c.request(CMD.TRIM, 2n, 65536, data.length, FLAG.FUA);
  t.is((await c.reply()).error, 0);
  c.request(CMD.TRIM, 3n, 0, 2048 * 512);
  t.is((await c.reply()).error, 0, 'the whole export');
  t.is(stat(a, A.STAT_COMMANDS), commands, 'no SCSI command ran');
  c.request(CMD.READ, 4n, 65536, data.length);
  t.true((await c.reply(data.length)).data.equals(data), 'the trimmed range holds what was written');
  const refused: Array<[string, bigint, number, number, number]> = [
    ['unaligned', 100n, 512, 0, E.EINVAL],
    ['beyond the end', BigInt(2048 * 512 - 512), 1024, 0, E.EINVAL],
    ['NO_HOLE', 0n, 512, FLAG.NO_HOLE, E.EINVAL],
  ];
  for (const [what, offset, length, flags, errno] of refused) {
    c.request(CMD.TRIM, 5n, offset, length, flags);
    const r = await c.reply();
    t.is(r.error, errno, what);
    t.regex(r.message ?? '', /^sanbox: /, what);
  }
  await admin.setAccess(v, 'ro', 'nbd:127.0.0.1');
  c.request(CMD.TRIM, 6n, 0, 512);
  t.is((await c.reply()).error, E.EPERM, 'read-only since the handshake');
  await admin.setAccess(v, 'none', 'nbd:127.0.0.1');
  c.request(CMD.TRIM, 7n, 0, 512);
  const hidden = await c.reply();
  t.is(hidden.error, E.EIO, 'hidden since the handshake');
  t.is(hidden.message, 'sanbox: the export is no longer there for this client');
  t.is(stat(a, A.STAT_COMMANDS), commands + 3, 'only the READ and the two SET ACCESS commands ran');
});

test('WRITE_ZEROES of 40 MiB (more than one command: chained in one context) reads back zeros around data that stays', async (t) => {
  const a = await startNbd('nbd-zeroes', { blocks: 131072, cache: { size: '16MiB' } });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  const edge = pattern(4096, 4);
  c.request(CMD.WRITE, 1n, 40 << 20, 4096, 0, edge);
  t.is((await c.reply()).error, 0);
  c.request(CMD.WRITE, 2n, 0, 1 << 20, 0, pattern(1 << 20, 5));
  t.is((await c.reply()).error, 0);
  c.request(CMD.WRITE_ZEROES, 3n, 0, 40 << 20, FLAG.NO_HOLE | FLAG.FUA);
  t.is((await c.reply()).error, 0);
  for (const at of [0, 33 << 20, (40 << 20) - 4096]) {
    c.request(CMD.READ, 4n, at, 4096);
    t.true((await c.reply(4096)).data.equals(Buffer.alloc(4096)), `zeros at ${at}`);
  }
  c.request(CMD.READ, 5n, 40 << 20, 4096);
  t.true((await c.reply(4096)).data.equals(edge), 'the block after the range is untouched');
});

test('a request without NBD_REQUEST_MAGIC closes that connection; NBD_CMD_DISC closes after the requests before it are answered', async (t) => {
  const a = await startNbd('nbd-reqmagic');
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  const bad = Buffer.alloc(28, 0x41);
  c.send(bad);
  await c.closedP;
  t.is(stat(a, A.STAT_NBD_DROPPED), 1);
  const d = await ready(a);
  const data = pattern(65536, 8);
  d.request(CMD.WRITE, 1n, 0, data.length, 0, data);
  d.request(CMD.DISC, 2n, 0, 0);
  t.is((await d.reply()).error, 0, 'the write before DISC is answered');
  await d.closedP;
  const e = await ready(a);
  t.teardown(() => e.close());
  e.request(CMD.READ, 1n, 0, data.length);
  t.true((await e.reply(data.length)).data.equals(data));
});

test('an NV write failing under an NBD WRITE: EIO with the sense in the message, never success; reads go on', async (t) => {
  const a = await startNbd('nbd-nvfail', { cache: { destageAgeMs: 60_000, destageIntervalMs: 1000 } });
  t.teardown(() => a.emu.stop());
  const c = await ready(a);
  t.teardown(() => c.close());
  const before = pattern(4096, 1);
  c.request(CMD.WRITE, 1n, 0, 4096, 0, before);
  t.is((await c.reply()).error, 0);
  a.emu.array().nv.inject({ type: 'error', errno: ENOSPC });
  c.request(CMD.WRITE, 2n, 4096, 4096, 0, pattern(4096, 2));
  const failed = await c.reply();
  t.is(failed.error, E.EIO);
  t.is(failed.message, 'sanbox: SCSI status 02, sense 4/0C/00');
  c.request(CMD.WRITE_ZEROES, 3n, 8192, 4096);
  t.is((await c.reply()).error, E.EIO, 'refused while the NV file is degraded');
  c.request(CMD.READ, 4n, 0, 4096);
  t.true((await c.reply(4096)).data.equals(before), 'reads go on');
});

test('idle: a connection that says nothing (or stops mid-handshake) is closed after the port\'s idleTimeoutMs; one with a request in flight is not', async (t) => {
  const a = await startNbd('nbd-idle', { mode: 'deterministic', idleTimeoutMs: 1000 });
  t.teardown(() => a.emu.stop());
  const silent = await NbdClient.connect(a.port);
  const half = await NbdClient.connect(a.port);
  half.send(Buffer.from([0, 0]));
  const active = await ready(a);
  t.teardown(() => { silent.close(); half.close(); active.close(); });
  await a.emu.advance(500);
  t.false(silent.closed || half.closed);
  active.request(CMD.READ, 1n, 0, 512);
  t.is((await active.reply(512)).error, 0);
  await a.emu.advance(1500);
  await Promise.all([silent.closedP, half.closedP]);
  t.pass();
});
