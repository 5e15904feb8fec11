// host/framed.ts against a scripted array end on a stream.Duplex pair (test/host/fake-target.ts):
// tags and queue depth, out-of-order completion, XFER_RDY bursts, DATA_IN by offset, residuals,
// REJECTs, damaged frames from the array, and hang-ups.
import test from 'ava';
import * as P from '../../lib/protocol';
import { TransportError } from '../../lib/transport';
import { FramedTransport } from '../../host/framed';
import { ScsiClient } from '../../host/client';
import { FakeArray, FakeTarget, sense } from './fake-target';
import * as S from '../../lib/scsi';

function pair(queueDepth?: number, timeoutMs?: number) {
  const target = new FakeTarget();
  const transport = new FramedTransport(target.host, { queueDepth, target: 'fake', timeoutMs });
  return { target, transport };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a command goes out as one CMD frame from the host address, and its RSP completes it', async (t) => {
  const { target, transport } = pair();
  const done = transport.submit({ lun: 300, cdb: S.readWrite10(false, 8, 1), dataInLength: 512, taskAttribute: 'headOfQueue' });
  const cmd = await target.next();
  t.like(cmd, { type: P.FrameType.CMD, source: P.HOST_ADDRESS, destination: P.BROADCAST, sequence: 0, offset: 0 });
  t.deepEqual(P.decodeCommand(cmd.payload), { lun: 300, taskAttribute: 'headOfQueue', dataOut: false, dataIn: true, expectedLength: 512, cdb: S.readWrite10(false, 8, 1) });
  target.dataIn(cmd.tag, Buffer.alloc(512, 7));
  target.respond(cmd.tag);
  const r = await done;
  t.is(r.status, 0);
  t.deepEqual(Buffer.from(r.data), Buffer.alloc(512, 7));
  t.is(transport.outstanding, 0);
});

test('many commands are outstanding under distinct tags and complete in whatever order the array answers', async (t) => {
  const { target, transport } = pair();
  const results = [1, 2, 3, 4].map((n) => transport.submit({ lun: 1, cdb: S.inquiry(), dataInLength: 4 }).then((r) => [n, Buffer.from(r.data)[0]]));
  const cmds = [await target.next(), await target.next(), await target.next(), await target.next()];
  t.is(new Set(cmds.map((c) => c.tag)).size, 4);
  t.is(transport.outstanding, 4);
  for (const [i, c] of [...cmds.entries()].reverse()) {
    target.dataIn(c.tag, Buffer.from([10 * (i + 1), 0, 0, 0]));
    target.respond(c.tag);
  }
  t.deepEqual(await Promise.all(results), [[1, 10], [2, 20], [3, 30], [4, 40]]);
});

test('submits beyond the queue depth wait for a free slot, in order', async (t) => {
  const { target, transport } = pair(2);
  const done = [0, 1, 2, 3].map(() => transport.submit({ lun: 0, cdb: S.testUnitReady() }));
  const first = [await target.next(), await target.next()];
  await tick();
  t.is(transport.outstanding, 2);
  t.is(target.decoder.buffered, 0);
  target.respond(first[1].tag);
  const third = await target.next();
  target.respond(first[0].tag);
  const fourth = await target.next();
  target.respond(third.tag);
  target.respond(fourth.tag);
  t.deepEqual((await Promise.all(done)).map((r) => r.status), [0, 0, 0, 0]);
  t.true(transport.queueDepth === 2);
});

test('the frames of one tick leave in one write to the stream', async (t) => {
  const { target, transport } = pair();
  const writes: number[] = [];
  const write = target.host.write.bind(target.host);
  target.host.write = ((chunk: Buffer, ...rest: never[]) => { writes.push(chunk.length); return write(chunk, ...rest); }) as typeof target.host.write;
  const done = [1, 2, 3].map((lun) => transport.submit({ lun, cdb: S.testUnitReady() }));
  t.deepEqual(writes, [], 'nothing is written within the tick');
  const cmds = [await target.next(), await target.next(), await target.next()];
  t.deepEqual(writes, [3 * (P.FRAME_OVERHEAD + 16 + 6)]);
  t.deepEqual(cmds.map((c) => P.decodeCommand(c.payload)!.lun), [1, 2, 3]);
  for (const c of cmds) target.respond(c.tag);
  t.deepEqual((await Promise.all(done)).map((r) => r.status), [0, 0, 0]);
});

test('data-out past a full outbox slab arrives whole and in order, also when the array answers within the write', async (t) => {
  const array = new FakeArray(); // answers each XFER_RDY burst from inside the host's write
  const client = new ScsiClient(new FramedTransport(array.connect(), { target: 'fake' }));
  const volume = await client.createVolume({ name: 'vol', blocks: 1024, blockSize: 512 });
  await client.mapVolume(volume.number, 0, 1);
  const pieces = Array.from({ length: 6 }, (_, i) => Buffer.from(Array.from({ length: 48 * 1024 }, (_, j) => (j * 7 + i * 13) & 0xff)));
  await Promise.all(pieces.map((d, i) => client.write(1, i * 96, d))); // 6 x 48 KiB: several 64 KiB slabs
  t.deepEqual(await client.read(1, 0, 6 * 96), Buffer.concat(pieces));
});

test('XFER_RDY bursts are answered with DATA_OUT frames of at most 2112 bytes covering exactly the burst, LAST on the final one', async (t) => {
  const { target, transport } = pair();
  const data = Buffer.from(Array.from({ length: 10000 }, (_, i) => i & 0xff));
  const done = transport.submit({ lun: 1, cdb: S.readWrite10(true, 0, 20), dataOut: data });
  const cmd = await target.next();
  t.like(P.decodeCommand(cmd.payload), { dataOut: true, dataIn: false, expectedLength: 10000 });
  const received = Buffer.alloc(data.length);
  let sequence = 1;
  for (const [offset, length] of [[0, 6000], [6000, 4000]]) {
    target.xferRdy(cmd.tag, offset, length);
    for (let at = offset; at < offset + length;) {
      const f = await target.next();
      t.like(f, { type: P.FrameType.DATA_OUT, tag: cmd.tag, offset: at, sequence: sequence++ });
      t.true(f.payload.length <= P.MAX_PAYLOAD);
      at += f.payload.length;
      t.is((f.flags & P.FLAG_LAST) !== 0, at === offset + length);
      f.payload.copy(received, f.offset);
    }
  }
  t.deepEqual(received, data);
  target.respond(cmd.tag);
  t.is((await done).status, 0);
});

test('DATA_IN is assembled by offset, and an underflow shortens the data to what was transferred', async (t) => {
  const { target, transport } = pair();
  const done = transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 16), dataInLength: 8192 });
  const cmd = await target.next();
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
  target.dataIn(cmd.tag, data.subarray(4096), 4096); // the later piece first
  target.dataIn(cmd.tag, data.subarray(0, 4096));
  target.respond(cmd.tag, { underflow: true, residual: 3192 });
  const r = await done;
  t.deepEqual(Buffer.from(r.data), data);
  t.is(r.residual, 3192);
  t.false(r.residualOverflow);
});

test('data-in lands in the command\'s dataIn: the result is a view of it; a dataIn too short is refused', async (t) => {
  const { target, transport } = pair();
  const into = Buffer.alloc(8192, 0xee);
  const done = transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 16), dataInLength: 8192, dataIn: into });
  const cmd = await target.next();
  const data = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 11) & 0xff));
  target.dataIn(cmd.tag, data);
  target.respond(cmd.tag, { underflow: true, residual: 2192 });
  const r = await done;
  t.is(r.data.buffer, into.buffer);
  t.is(r.data.byteOffset, into.byteOffset);
  t.deepEqual(Buffer.from(r.data), data);
  t.like(await t.throwsAsync(transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 16), dataInLength: 8192, dataIn: Buffer.alloc(4096) }), { instanceOf: TransportError }), { code: 'EINVAL' });
});

test('CHECK CONDITION comes back as a result with its sense: a status, not a transport failure', async (t) => {
  const { target, transport } = pair();
  const done = transport.submit({ lun: 9, cdb: S.testUnitReady() });
  target.respond((await target.next()).tag, { status: 2, sense: sense(5, 0x25) });
  const r = await done;
  t.is(r.status, 2);
  t.is(S.decodeSense(r.sense).text, 'ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED');
});

test('a REJECT of one command fails only that one, with the reason', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  const b = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  const [ca, cb] = [await target.next(), await target.next()];
  const header = P.encodeHeader(ca, ca.payload.length);
  target.send(P.FrameType.REJECT, ca.tag, P.encodeReject({ reason: P.RejectReason.PROTOCOL, header }));
  const e = await t.throwsAsync(a, { instanceOf: TransportError });
  t.is(e?.code, 'REJECT_PROTOCOL');
  target.respond(cb.tag);
  t.is((await b).status, 0);
  t.is(transport.counters.rejectsReceived, 1);
});

test('a REJECT that names no command of ours fails the connection', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  await target.next();
  target.send(P.FrameType.REJECT, 0x7777, P.encodeReject({ reason: P.RejectReason.BAD_CRC, header: Buffer.alloc(20) }));
  t.like(await t.throwsAsync(a, { instanceOf: TransportError }), { code: 'REJECT' });
  await t.throwsAsync(transport.submit({ lun: 0, cdb: S.testUnitReady() }), { instanceOf: TransportError });
});

test('a damaged frame from the array fails its command; the late RSP for that tag is ignored', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 1), dataInLength: 512 });
  const cmd = await target.next();
  const piece = P.encodeFrame({ type: P.FrameType.DATA_IN, flags: P.FLAG_LAST, tag: cmd.tag, source: 1, destination: P.HOST_ADDRESS, sequence: 0, offset: 0, parameter: 0 }, Buffer.alloc(512, 1));
  piece[P.HEADER_END + 5] ^= 0xff;
  target.array.write(piece);
  t.like(await t.throwsAsync(a, { instanceOf: TransportError }), { code: 'BAD_FRAME' });
  target.respond(cmd.tag);
  const b = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  const next = await target.next();
  t.not(next.tag, cmd.tag, 'the reserved tag is not reused');
  target.respond(next.tag);
  t.is((await b).status, 0);
  t.is(transport.decoder.counts.badCrc, 1);
});

test('a RSP whose data-in did not all arrive is a transport failure, not short data', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 8), dataInLength: 4096 });
  const cmd = await target.next();
  target.dataIn(cmd.tag, Buffer.alloc(2048));
  target.respond(cmd.tag);
  t.like(await t.throwsAsync(a, { instanceOf: TransportError }), { code: 'DATA_LOST' });
});

test('an XFER_RDY outside the data-out is rejected back as PROTOCOL and fails the command', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 1, cdb: S.readWrite10(true, 0, 1), dataOut: Buffer.alloc(512) });
  const cmd = await target.next();
  target.xferRdy(cmd.tag, 0, 4096);
  const reject = await target.next();
  t.like(reject, { type: P.FrameType.REJECT, tag: cmd.tag, destination: P.ARRAY_ADDRESS });
  t.like(P.decodeReject(reject.payload), { reason: P.RejectReason.PROTOCOL });
  t.like(P.decodeHeader(P.decodeReject(reject.payload)!.header), { type: P.FrameType.XFER_RDY, parameter: 4096 });
  t.like(await t.throwsAsync(a, { instanceOf: TransportError }), { code: 'PROTOCOL' });
});

test('frames for another address are ignored and counted', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  const cmd = await target.next();
  target.send(P.FrameType.RSP, cmd.tag, P.encodeResponse({ status: 8, underflow: false, overflow: false, residual: 0, sense: Buffer.alloc(0) }), { destination: 0x0200 });
  target.respond(cmd.tag);
  t.is((await a).status, 0);
  t.is(transport.counters.wrongDestination, 1);
});

test('PING is answered by a PONG with the same bytes', async (t) => {
  const { target, transport } = pair();
  target.handler = (f) => target.send(P.FrameType.PONG, f.tag, f.payload);
  t.true((await transport.ping(Buffer.from('hello'))) >= 0);
});

test('a command the array goes silent on fails with TIMEOUT; frames of the exchange keep it alive', async (t) => {
  // The silence watch ticks by hand: 100 ms is four ticks of 25 ms, whatever the machine's load.
  const ticks: Array<() => void> = [];
  const ticker = (tick: () => void, everyMs: number) => { t.is(everyMs, 25); ticks.push(tick); return { stop: () => ticks.splice(ticks.indexOf(tick), 1) }; };
  const tick = (n: number) => { for (let i = 0; i < n; i++) for (const f of [...ticks]) f(); };
  const target = new FakeTarget();
  const transport = new FramedTransport(target.host, { target: 'fake', timeoutMs: 100, ticker });
  const lost = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  await target.next();
  tick(4);
  t.is(transport.outstanding, 1, 'four ticks (100 ms) of silence: not yet');
  tick(1);
  t.like(await t.throwsAsync(lost, { instanceOf: TransportError }), { code: 'TIMEOUT' });
  const slow = transport.submit({ lun: 1, cdb: S.readWrite10(false, 0, 12), dataInLength: 6144 });
  const cmd = await target.next();
  for (let i = 0; i < 3; i++) {
    tick(3);
    target.dataIn(cmd.tag, Buffer.alloc(2048, i), i * 2048);
    await new Promise((r) => setImmediate(r));
  }
  tick(3);
  target.respond(cmd.tag);
  t.is((await slow).data.length, 6144, 'twelve ticks (300 ms) in all, never more than three without a frame');
});

test('a hang-up fails every outstanding and waiting command, and every later one', async (t) => {
  const { target, transport } = pair(1);
  const a = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  const b = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  await target.next();
  target.hangUp();
  for (const p of [a, b]) t.like(await t.throwsAsync(p, { instanceOf: TransportError }), { code: 'CLOSED' });
  await t.throwsAsync(transport.submit({ lun: 0, cdb: S.testUnitReady() }), { instanceOf: TransportError });
});

test('close() fails what is outstanding and closes the stream', async (t) => {
  const { target, transport } = pair();
  const a = transport.submit({ lun: 0, cdb: S.testUnitReady() });
  await target.next();
  await transport.close();
  t.like(await t.throwsAsync(a, { instanceOf: TransportError }), { code: 'CLOSED' });
  t.true(target.host.destroyed);
});
