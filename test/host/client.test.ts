// host/client.ts over a FramedTransport to the in-memory FakeArray: typed results, ScsiError with
// the sense decoded, management round trips, and the streaming helpers keeping commands in flight.
import test from 'ava';
import { PassThrough, Readable, Writable } from 'stream';
import { FramedTransport } from '../../host/framed';
import { ScsiClient } from '../../host/client';
import { ScsiError, SenseKey } from '../../lib/scsi';
import { FakeArray, FakeTarget } from './fake-target';

async function withVolume(blocks = 8192, blockSize: 512 | 4096 = 512) {
  const array = new FakeArray();
  const client = new ScsiClient(new FramedTransport(array.connect()));
  const volume = await client.createVolume({ name: 'vol', blocks, blockSize });
  await client.mapVolume(volume.number, 0, 1);
  return { array, client, volume };
}

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

test('INQUIRY, VPD pages, REPORT LUNS and READ CAPACITY come back parsed', async (t) => {
  const { client } = await withVolume(4096, 4096);
  t.like(await client.inquiry(), { vendor: 'SANBOX', product: 'FAKE ARRAY', deviceType: 0x0c, commandQueueing: true });
  t.is(await client.unitSerialNumber(), 'FAKE01');
  t.is(await client.portIndex(), 0);
  t.deepEqual(await client.reportLuns(), [0, 1]);
  t.deepEqual(await client.readCapacity(1), { blocks: 4096, blockSize: 4096 });
});

test('CHECK CONDITION throws ScsiError with the sense decoded; the message says it in words', async (t) => {
  const { client } = await withVolume(64);
  const e = await t.throwsAsync(client.read(1, 60, 8), { instanceOf: ScsiError });
  t.is(e?.status, 2);
  t.like(e?.sense, { key: SenseKey.ILLEGAL_REQUEST, asc: 0x21, ascq: 0 });
  t.is(e?.message, 'ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE');
  await t.throwsAsync(client.testUnitReady(5), { message: 'ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED' });
  await t.throwsAsync(client.createVolume({ name: 'vol', blocks: 1, blockSize: 512 }), { message: 'ILLEGAL REQUEST: VOLUME NAME ALREADY EXISTS' });
});

test('a status without sense (TASK SET FULL) throws ScsiError naming the status', async (t) => {
  const target = new FakeTarget();
  target.handler = (f) => target.respond(f.tag, { status: 0x28 });
  const client = new ScsiClient(new FramedTransport(target.host));
  const e = await t.throwsAsync(client.testUnitReady(), { instanceOf: ScsiError });
  t.is(e?.message, 'TASK SET FULL');
  t.is(e?.sense, undefined);
});

test('write then read of blocks; a write that is not whole blocks is refused before it is sent', async (t) => {
  const { client } = await withVolume();
  const data = pattern(64 * 512, 1);
  await client.write(1, 100, data, { fua: true });
  t.deepEqual(await client.read(1, 100, 64), data);
  await t.throwsAsync(client.write(1, 0, Buffer.alloc(100)), { instanceOf: RangeError });
});

test('volumes: create, list, map, delete', async (t) => {
  const { client, volume } = await withVolume(2048);
  t.like(volume, { number: 0, name: 'vol', blocks: 2048, blockSize: 512, state: 'online' });
  const second = await client.createVolume({ name: 'second', blocks: 16, blockSize: 4096 });
  t.is(second.number, 1);
  t.deepEqual((await client.listVolumes()).map((v) => v.name), ['vol', 'second']);
  t.deepEqual(await client.listMappings(), [{ port: 0, lun: 1, volume: 0 }]);
  await client.deleteVolume(1);
  t.deepEqual((await client.listVolumes()).map((v) => v.name), ['vol']);
  t.deepEqual((await client.listMedia()).map((m) => m.name), ['d0', 'd1']);
});

test('writeStream and readStream move a volume with several commands in flight; a last partial block is padded', async (t) => {
  const { array, client } = await withVolume(8192);
  const data = pattern(3 * 1024 * 1024 + 100, 2);
  const progress: number[] = [];
  const pieces = Readable.from([data.subarray(0, 1000), data.subarray(1000, 700000), data.subarray(700000)]);
  t.is(await client.writeStream(1, pieces, (n) => progress.push(n), { chunkBytes: 256 * 1024, depth: 8 }), data.length);
  t.is(progress.at(-1), data.length);
  t.true(array.maxOutstanding > 1, `${array.maxOutstanding} commands were in flight at most`);
  t.true(array.maxOutstanding <= 8);
  array.maxOutstanding = 0;
  const chunks: Buffer[] = [];
  const sink = new PassThrough().on('data', (b: Buffer) => chunks.push(b));
  t.is(await client.readStream(1, sink, data.length + 412), data.length + 412);
  const back = Buffer.concat(chunks);
  t.deepEqual(back.subarray(0, data.length), data);
  t.deepEqual(back.subarray(data.length), Buffer.alloc(412), 'the padding of the last block reads back as zeros');
  t.true(array.maxOutstanding > 1);
});

test('readStream waits for a slow sink instead of piling data up', async (t) => {
  const { client } = await withVolume(8192);
  let written = 0;
  let maxPending = 0;
  let pending = 0;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, done) {
      pending++;
      maxPending = Math.max(maxPending, pending);
      setImmediate(() => { written += chunk.length; pending--; done(); });
    },
  });
  t.is(await client.readStream(1, sink, 2 * 1024 * 1024, undefined, { chunkBytes: 64 * 1024, depth: 4 }), 2 * 1024 * 1024);
  await new Promise((r) => sink.end(r));
  t.is(written, 2 * 1024 * 1024);
  t.true(sink.writableLength === 0);
});

test('readStream refuses more bytes than the volume holds', async (t) => {
  const { client } = await withVolume(16);
  await t.throwsAsync(client.readStream(1, new PassThrough(), 16 * 512 + 1), { instanceOf: RangeError });
});
