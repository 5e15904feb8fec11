// lib/protocol.ts: round trips of every encoding (fast-check), and the streaming decoder on split
// and malformed input, with the controller's rules for resynchronising (docs/protocol.md).
import test from 'ava';
import fc from 'fast-check';
import * as P from '../../lib/protocol';
import { Kernels } from '../../lib/kernels';
import { crc32cTable } from '../kernels/reference';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const header = fc.record({
  type: fc.integer({ min: 1, max: 8 }), flags: fc.integer({ min: 0, max: 255 }), tag: u16, source: u16, destination: u16, sequence: u16, offset: u32, parameter: u32,
});
const payload = fc.uint8Array({ maxLength: P.MAX_PAYLOAD }).map((a) => Buffer.from(a));
const frame = fc.record({ header, payload });

const ping = (tag: number, bytes = 'x'): Buffer =>
  P.encodeFrame({ type: P.FrameType.PING, flags: 0, tag, source: 0x100, destination: 1, sequence: 0, offset: 0, parameter: 0 }, Buffer.from(bytes));
const frameOf = (bytes: Buffer): P.Frame => new P.FrameDecoder().push(bytes)[0] as P.Frame;

test('a frame decodes to the header and payload it was encoded from', (t) => {
  fc.assert(fc.property(header, payload, (h, p) => {
    const bytes = P.encodeFrame(h, p);
    t.is(bytes.length, p.length + P.FRAME_OVERHEAD);
    t.deepEqual(new P.FrameDecoder().push(bytes), [{ ...h, payload: p }]);
  }), { numRuns: 200 });
});

test('frames split into arbitrary chunks decode to the same frames', (t) => {
  fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (fs, cuts) => {
    const all = Buffer.concat(fs.map((f) => P.encodeFrame(f.header, f.payload)));
    const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
    const d = new P.FrameDecoder();
    const events = [0, ...points].flatMap((from, i) => d.push(all.subarray(from, [...points, all.length][i])));
    t.deepEqual(events, fs.map((f) => ({ ...f.header, payload: f.payload })));
    t.is(d.buffered, 0);
  }), { numRuns: 100 });
});

test('two frames split at every byte boundary decode the same', (t) => {
  const all = Buffer.concat([ping(1, 'first'), ping(2, 'second frame')]);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new P.FrameDecoder();
    const events = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    t.deepEqual(events.map((e) => (e as P.Frame).tag), [1, 2], `cut at ${cut}`);
  }
});

test('a frame fed one byte at a time decodes once, at its last byte', (t) => {
  const bytes = ping(7, 'bytewise');
  const d = new P.FrameDecoder();
  for (let i = 0; i < bytes.length - 1; i++) t.deepEqual(d.push(bytes.subarray(i, i + 1)), []);
  t.like(d.push(bytes.subarray(-1))[0], { tag: 7 });
});

test('garbage before SOF is skipped and counted byte by byte, even when it holds part of a SOF', (t) => {
  const d = new P.FrameDecoder();
  const garbage = Buffer.from([0x00, 0x11, 0xbc, 0xb5, 0x56, 0x00, 0x22]);
  const events = d.push(Buffer.concat([garbage, ping(1)]));
  t.deepEqual(events.filter(P.isDecodeError).reduce((n, e) => n + e.bytes, 0), garbage.length);
  t.like(events.at(-1), { tag: 1 });
  t.is(d.counts.badSof, garbage.length);
});

test('a partial SOF at the end of a chunk waits for more bytes', (t) => {
  const d = new P.FrameDecoder();
  const bytes = ping(3);
  t.deepEqual(d.push(bytes.subarray(0, 2)), []);
  t.is(d.buffered, 2);
  t.like(d.push(bytes.subarray(2))[0], { tag: 3 });
});

test('a bad CRC drops the frame, reports its header, and the next frame decodes', (t) => {
  const bad = ping(1);
  bad[bad.length - 6] ^= 0x01;
  const d = new P.FrameDecoder();
  const events = d.push(Buffer.concat([bad, ping(2)]));
  t.like(events[0], { error: 'badCrc', bytes: bad.length });
  t.is((events[0] as P.DecodeError).header?.readUInt16BE(2), 1);
  t.like(events[1], { tag: 2 });
  t.is(d.counts.badCrc, 1);
});

test('a damaged payload byte is a bad CRC too', (t) => {
  const bad = ping(1, 'payload');
  bad[P.HEADER_END + 2] ^= 0x80;
  t.like(new P.FrameDecoder().push(bad)[0], { error: 'badCrc' });
});

test('no EOF where the length says is TRUNCATED: one byte dropped, then the hunt finds the next frame', (t) => {
  const short = ping(1, '12345678');
  short.writeUInt16BE(4, 14);
  const d = new P.FrameDecoder();
  const events = d.push(Buffer.concat([short, ping(2)]));
  t.like(events[0], { error: 'truncated', bytes: 1 });
  t.like(events.at(-1), { tag: 2 });
  t.is(d.counts.truncated, 1);
});

test('a length over 2112 is OVERSIZE without waiting for the bytes it announces', (t) => {
  const over = Buffer.from(ping(1).subarray(0, P.HEADER_END));
  over.writeUInt16BE(P.MAX_PAYLOAD + 1, 14);
  const d = new P.FrameDecoder();
  const events = d.push(Buffer.concat([over, ping(2)]));
  t.like(events[0], { error: 'oversize' });
  t.like(events.at(-1), { tag: 2 });
  t.is(d.counts.oversize, 1);
});

test('a reserved type is UNKNOWN_TYPE and dropped whole', (t) => {
  const d = new P.FrameDecoder();
  const odd = P.encodeFrame({ type: 0x09, flags: 0, tag: 9, source: 1, destination: 2, sequence: 0, offset: 0, parameter: 0 }, Buffer.from('??'));
  const events = d.push(Buffer.concat([odd, ping(2)]));
  t.like(events[0], { error: 'unknownType', bytes: odd.length });
  t.like(events[1], { tag: 2 });
});

test('flush reports a frame left incomplete as truncated, with what arrived of its header', (t) => {
  const d = new P.FrameDecoder();
  d.push(ping(5, 'incomplete').subarray(0, 20));
  const [e] = d.flush() as P.DecodeError[];
  t.like(e, { error: 'truncated', bytes: 20 });
  t.is(e.header?.length, 20);
  t.is(e.header?.readUInt16BE(2), 5);
  t.is(e.header?.readUInt16BE(16), 0, 'bytes never received are zero');
  t.deepEqual(d.flush(), []);
});

test('a payload over 2112 bytes cannot be encoded', (t) => {
  t.throws(() => ping(1, 'x'.repeat(P.MAX_PAYLOAD + 1)), { instanceOf: RangeError });
  t.notThrows(() => ping(1, 'x'.repeat(P.MAX_PAYLOAD)));
});

test('encodeFrameInto writes back to back frames that decode as encodeFrame does', (t) => {
  const h = { type: P.FrameType.DATA_OUT, flags: 0, tag: 1, source: 1, destination: 2, sequence: 1, offset: 0, parameter: 0 };
  const target = Buffer.alloc(2 * P.FRAME_OVERHEAD + 7);
  const at = P.encodeFrameInto(target, 0, h, Buffer.from('abc'));
  t.is(P.encodeFrameInto(target, at, { ...h, offset: 3 }, Buffer.from('defg')), target.length);
  t.deepEqual(target.subarray(0, at), P.encodeFrame(h, Buffer.from('abc')));
  t.is(frameOf(target.subarray(at)).offset, 3);
});

test('feed hands out the frames push does, in place: views of the chunk, a split frame assembled from its pieces only', (t) => {
  fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (fs, cuts) => {
    const all = Buffer.concat(fs.map((f) => P.encodeFrame(f.header, f.payload)));
    const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
    const d = new P.FrameDecoder();
    const frames: P.Frame[] = [];
    let inPlace = 0;
    [0, ...points].forEach((from, i) => {
      const chunk = all.subarray(from, [...points, all.length][i]);
      d.feed(chunk, {
        frame: (v) => { frames.push(P.copyFrame(v)); if (v.bytes === chunk) inPlace++; },
        error: (e) => t.fail(`unexpected ${e.error}`),
      });
    });
    t.deepEqual(frames, fs.map((f) => ({ ...f.header, payload: f.payload })));
    t.true(inPlace >= fs.length - points.length, 'only frames cut by a chunk boundary are assembled');
  }), { numRuns: 100 });
});

test('feed refuses to be re-entered from its sink', (t) => {
  const d = new P.FrameDecoder();
  const bytes = ping(1);
  t.throws(() => d.feed(bytes, { frame: () => d.feed(bytes, { frame: () => undefined, error: () => undefined }), error: () => undefined }), { message: /re-entered/ });
  t.like(d.push(ping(2))[0], { tag: 2 }, 'the decoder still works');
});

test('frame CRCs (JavaScript for short frames, the kernel for long ones) match the byte-table reference at every length', (t) => {
  const k = Kernels.load({ initialPages: 1, maximumPages: 1024 });
  const lengths = [...Array(600).keys(), ...Array.from({ length: 200 }, (_, i) => 2000 + i), 8191, 8192, 8193, 65536 + 13];
  for (const n of lengths) {
    const data = Buffer.from(Array.from({ length: n + 5 }, (_, i) => (i * 167 + n) & 0xff)).subarray(5 - (n % 5));
    const want = crc32cTable(data.subarray(0, n));
    t.is(P.frameCrc(data, 0, n), want, `${n} bytes`);
    t.is(k.crc32c(data.subarray(0, n)), want, `${n} bytes, kernel`);
  }
  k.arena.alloc(8 << 20); // the memory grows: the kernel's staging view still works
  t.is(k.crc32c(Buffer.from('123456789')), 0xe3069283);
});

// ---- Payloads ---------------------------------------------------------------------------------------------

test('LUNs: peripheral addressing below 256, flat space to 16383, and back', (t) => {
  t.is(P.encodeLun(5).toString('hex'), '0005000000000000');
  t.is(P.encodeLun(300).toString('hex'), '412c000000000000');
  t.is(P.encodeLun(16383).toString('hex'), '7fff000000000000');
  fc.assert(fc.property(fc.integer({ min: 0, max: P.MAX_LUN }), (lun) => P.decodeLun(P.encodeLun(lun)) === lun));
  t.throws(() => P.encodeLun(16384), { instanceOf: RangeError });
  t.is(P.decodeLun(Buffer.from('0105000000000000', 'hex')), -1, 'bus 1 is not carried');
  t.is(P.decodeLun(Buffer.from('0005000000000100', 'hex')), -1, 'second level is not carried');
});

test('CMD payloads round trip; bad CDB lengths are refused both ways', (t) => {
  const cmd = fc.record({
    lun: fc.integer({ min: 0, max: P.MAX_LUN }),
    taskAttribute: fc.constantFrom<P.TaskAttributeName>('simple', 'headOfQueue', 'ordered'),
    dataOut: fc.boolean(), dataIn: fc.boolean(), expectedLength: u32,
    cdb: fc.uint8Array({ minLength: 6, maxLength: 32 }).map((a) => Buffer.from(a)),
  });
  fc.assert(fc.property(cmd, (c) => {
    const p = P.encodeCommand(c);
    t.is(p.length, 16 + c.cdb.length);
    t.deepEqual(P.decodeCommand(p), c);
  }));
  t.throws(() => P.encodeCommand({ lun: 0, taskAttribute: 'simple', dataOut: false, dataIn: false, expectedLength: 0, cdb: Buffer.alloc(5) }));
  const p = P.encodeCommand({ lun: 0, taskAttribute: 'simple', dataOut: false, dataIn: false, expectedLength: 0, cdb: Buffer.alloc(10) });
  t.is(P.decodeCommand(p.subarray(0, 20)), null, 'shorter than 16 + CDB length');
  t.is(P.decodeCommand(p.subarray(0, 15)), null);
});

test('RSP payloads round trip; a sense length past the payload is refused', (t) => {
  const rsp = fc.record({
    status: fc.constantFrom(0, 2, 8, 0x18, 0x28), underflow: fc.boolean(), overflow: fc.boolean(), residual: u32,
    sense: fc.uint8Array({ maxLength: 18 }).map((a) => Buffer.from(a)),
  });
  fc.assert(fc.property(rsp, (r) => {
    t.deepEqual(P.decodeResponse(P.encodeResponse(r)), r);
  }));
  const p = P.encodeResponse({ status: 2, underflow: false, overflow: false, residual: 0, sense: Buffer.alloc(18) });
  t.is(P.decodeResponse(p.subarray(0, 20)), null);
});

test('REJECT payloads carry the reason and the offending header', (t) => {
  const h = P.encodeHeader({ type: P.FrameType.CMD, flags: 0, tag: 0x1234, source: 0x100, destination: 1, sequence: 0, offset: 0, parameter: 0 }, 22);
  const p = P.encodeReject({ reason: P.RejectReason.PROTOCOL, header: h });
  t.is(p.length, 24);
  t.deepEqual(P.decodeReject(p), { reason: 6, header: h });
  t.like(P.decodeHeader(h), { tag: 0x1234, length: 22 });
  t.is(P.rejectReasonName(7), 'WRONG_DESTINATION');
  t.is(P.frameTypeName(9), undefined);
});
