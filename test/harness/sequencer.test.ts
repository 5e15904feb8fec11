// The processing sequencer of document 003 through the whole firmware: its steps named as in
// firmware/sequencer.ts (ARRIVAL -> READ window / WRITE window -> XFER_RDY bursts -> NV wait ->
// [FUA: FLUSH] -> RESPOND), observed from the host side of the protocol and from the media.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import * as P from '../../lib/protocol';
import * as scsi from '../../lib/scsi';
import { tempDir, startSmall, createVolume, read, write, pattern, run } from './env';
import { rawConnection, commandFrame, tcpPort } from './raw';

const slowDestage = { destageAgeMs: 60_000, destageIntervalMs: 1000 };
const onMedia = (dir: string, data: Buffer) =>
  ['d0', 'd1'].some((m) => fs.readFileSync(path.join(dir, 'a0', `${m}.img`)).includes(data.subarray(0, 4096)));

test('WRITE -> NV wait -> RESPOND: write-back data is acknowledged from cache; FUA adds FLUSH and reaches the medium first', async (t) => {
  const dir = tempDir('seqfua');
  const emu = await startSmall({ dir, cache: slowDestage });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  const back = pattern(64 << 10, 1);
  await write(s, 1, 0, back);
  t.false(onMedia(dir, back), 'write-back: only in cache (and NV)');
  const through = pattern(64 << 10, 2);
  await write(s, 1, 1024, through, 512, true);
  t.true(onMedia(dir, through), 'FUA: on the medium when acknowledged');
  t.false(onMedia(dir, back), 'FUA forces out its own blocks only, not older write-back data');
  await emu.flush();
  t.true(onMedia(dir, back));
});

test('SYNCHRONIZE CACHE: every dirty block of the range is on the medium at GOOD; IMMED answers first', async (t) => {
  const dir = tempDir('seqsync');
  // Deterministic, with slow file media (10 MB/s): a 64 KiB destage takes 6.5 ms of virtual time,
  // so a SYNCHRONIZE CACHE's latency in the trace says whether GOOD waited for the flush.
  const slow = { timing: { rpm: 0, transferMBps: 10 } };
  const emu = await startSmall({ dir, mode: 'deterministic', cache: slowDestage, trace: true, traceCommands: true,
    media: [{ name: 'd0', kind: 'file', size: '64MiB', ...slow }, { name: 'd1', kind: 'file', size: '64MiB', ...slow }] });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  const a = pattern(128 << 10, 3);
  await write(s, 1, 0, a);
  t.false(onMedia(dir, a));
  await run(s, 1, scsi.synchronizeCache10(0, 0));
  t.true(onMedia(dir, a));
  const b = pattern(64 << 10, 4);
  await write(s, 1, 2048, b);
  await run(s, 1, scsi.synchronizeCache10(0, 0, { immediate: true }));
  await emu.settle();
  t.true(onMedia(dir, b), 'the flush went on after the early GOOD');
  await emu.stop();
  const syncs = fs.readFileSync(path.join(dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.type === 'command' && r.opcode === 0x35).map((r) => r.latencyUs);
  t.is(syncs.length, 2);
  t.true(syncs[0] >= 6500, `SYNCHRONIZE CACHE waited for the destage: ${syncs[0]} us`);
  t.true(syncs[1] < 1000, `IMMED answered before it: ${syncs[1]} us`);
});

test('READ: a miss is staged by the disk IOP, the same blocks then hit in cache (counters)', async (t) => {
  const o = { dir: tempDir('seqread') };
  const first = await startSmall(o);
  await createVolume(first.connect(), { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  await write(first.connect(), 1, 4000, pattern(8192, 1)); // a chunk written: a never-written one needs no stage
  await first.stop();
  const emu = await startSmall(o); // nothing cached
  t.teardown(() => emu.stop());
  const s = emu.connect();
  const before = emu.array().stats();
  await read(s, 1, 4000, 16);
  const mid = emu.array().stats();
  await read(s, 1, 4000, 16);
  const after = emu.array().stats();
  t.is(mid[A.STAT_READ_MISSES] - before[A.STAT_READ_MISSES], 1);
  t.true(mid[A.STAT_STAGES] > before[A.STAT_STAGES]);
  t.is(after[A.STAT_READ_HITS] - mid[A.STAT_READ_HITS], 1);
  t.is(after[A.STAT_STAGES], mid[A.STAT_STAGES], 'a hit stages nothing');
});

const tcp = [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }, { name: 'q0', iop: 0, transport: 'inproc' }];

test('WRITE over a stream port: XFER_RDY asks for 256 KiB bursts in order; DATA_OUT answers them; then RSP', async (t) => {
  const emu = await startSmall({ dir: tempDir('seqxfer'), ports: tcp });
  t.teardown(() => emu.stop());
  await createVolume(emu.connect(), { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  const c = await rawConnection(tcpPort(emu.array().targets[0].target));
  t.teardown(() => c.sock.destroy());
  const data = pattern(1 << 20, 9);
  c.sock.write(commandFrame(5, 1, scsi.readWrite(true, 0, 2048), data.length, true));
  const bursts: Array<[number, number]> = [];
  let seq = 1;
  while (bursts.reduce((n, b) => n + b[1], 0) < data.length) {
    const x = await c.take((f) => f.type === P.FrameType.XFER_RDY && f.tag === 5);
    bursts.push([x.offset, x.parameter]);
    for (let at = x.offset; at < x.offset + x.parameter; at += 2048) {
      const n = Math.min(2048, x.offset + x.parameter - at);
      c.sock.write(P.encodeFrame({ type: P.FrameType.DATA_OUT, flags: at + n === x.offset + x.parameter ? P.FLAG_LAST : 0, tag: 5, source: P.HOST_ADDRESS,
        destination: P.BROADCAST, sequence: seq++, offset: at, parameter: 0 }, data.subarray(at, at + n)));
    }
  }
  t.deepEqual(bursts, [[0, 262144], [262144, 262144], [524288, 262144], [786432, 262144]]);
  const rsp = await c.take((f) => f.type === P.FrameType.RSP && f.tag === 5);
  t.is(P.decodeResponse(rsp.payload)?.status, 0);
  t.true((await read(emu.connect(), 1, 0, 2048)).equals(data));
});

test('ARRIVAL: a tag already outstanding is OVERLAPPED COMMANDS ATTEMPTED; beyond 128 in flight, TASK SET FULL', async (t) => {
  const emu = await startSmall({ dir: tempDir('seqtags'), ports: tcp });
  t.teardown(() => emu.stop());
  await createVolume(emu.connect(), { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  const c = await rawConnection(tcpPort(emu.array().targets[0].target));
  t.teardown(() => c.sock.destroy());
  // 128 writes that wait for their data-out: each holds its tag.
  for (let tag = 0; tag < 128; tag++) c.sock.write(commandFrame(tag, 1, scsi.readWrite(true, tag * 8, 8), 4096, true));
  c.sock.write(commandFrame(7, 1, scsi.testUnitReady(), 0, false));
  const overlapped = await c.take((f) => f.type === P.FrameType.RSP && f.tag === 7);
  const r = P.decodeResponse(overlapped.payload)!;
  t.is(r.status, 2);
  const sense = scsi.decodeSense(r.sense);
  t.deepEqual([sense.key, sense.asc, sense.ascq], [scsi.SenseKey.ILLEGAL_REQUEST, 0x4e, 0x00]);
  c.sock.write(commandFrame(500, 1, scsi.testUnitReady(), 0, false));
  const full = await c.take((f) => f.type === P.FrameType.RSP && f.tag === 500);
  t.is(P.decodeResponse(full.payload)!.status, 0x28);
  t.true(emu.array().stats()[A.STAT_BUSY] >= 1);
});
