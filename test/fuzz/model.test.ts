// The fuzzer's own parts: the reference receiver says what docs/protocol.md says, and protect()
// keeps every frame the fuzzer seals away from the canaries, however a parameter list is split.
import test from 'ava';
import fc from 'fast-check';
import { ReceiverModel, type Expectation, type Command } from '../../fuzz/model';
import { protect, CANARY_VOLUMES, MAPPABLE_LUNS } from '../../fuzz/generate';
import { putHeader, closeFrame, T, R, HEADER_END } from '../../fuzz/wire';

function frame(type: number, payload: Buffer, o: { tag?: number; destination?: number; length?: number; offset?: number } = {}): Buffer {
  const b = Buffer.alloc(32 + payload.length);
  putHeader(b, 0, { type, flags: 0, tag: o.tag ?? 7, source: 0x100, destination: o.destination ?? 1, sequence: 0, length: o.length ?? payload.length, offset: o.offset ?? 0, parameter: 0 });
  payload.copy(b, HEADER_END);
  closeFrame(b, 0, payload.length);
  return b;
}

function model() {
  const expected: Expectation[] = [];
  const commands: Command[] = [];
  const m = new ReceiverModel(1, { expect: (e) => expected.push(e), command: (c) => commands.push(c) });
  return { m, expected, commands };
}

const cmdPayload = (cdbLength: number, lun = 0) => { const p = Buffer.alloc(16 + cdbLength); p[1] = lun; p[10] = cdbLength; return p; };

test('valid frames: a CMD is a command, a PING is owed a PONG, a DATA_OUT is left to the command', (t) => {
  const { m, expected, commands } = model();
  m.arrive(Buffer.concat([frame(T.CMD, cmdPayload(6, 3)), frame(T.PING, Buffer.from('hi'), { tag: 9 }), frame(T.DATA_OUT, Buffer.alloc(5), { tag: 4, destination: 0xffff })]));
  t.deepEqual(commands.map((c) => [c.tag, c.lun, c.cdb.length]), [[7, 3, 6]]);
  t.deepEqual(expected.map((e) => e.kind), ['pong', 'dataOut']);
  t.like(m.counts, { framesRx: 3, commands: 1, pings: 1, dataOut: 1, badSofBytes: 0 });
});

test('each REJECT reason, with the offending header as received', (t) => {
  const { m, expected } = model();
  const badCrc = frame(T.PING, Buffer.alloc(4));
  badCrc[HEADER_END + 4] ^= 1;
  const truncated = frame(T.PING, Buffer.alloc(8), { length: 4 }); // EOF not where the length says
  const oversize = frame(T.PING, Buffer.alloc(0), { length: 2113 });
  m.arrive(Buffer.concat([
    badCrc, truncated, oversize, frame(0x09, Buffer.alloc(0)), frame(T.RSP, Buffer.alloc(8)), frame(T.CMD, cmdPayload(5)),
    frame(T.CMD, cmdPayload(33)), frame(T.CMD, Buffer.alloc(15)), frame(T.PING, Buffer.alloc(0), { destination: 2 }),
  ]));
  const reasons = expected.filter((e) => e.kind === 'reject').map((e) => (e as { reason: number }).reason);
  t.deepEqual(reasons, [R.BAD_CRC, R.TRUNCATED, R.OVERSIZE, R.UNKNOWN_TYPE, R.PROTOCOL, R.PROTOCOL, R.PROTOCOL, R.PROTOCOL, R.WRONG_DESTINATION]);
  t.deepEqual((expected[0] as { header: Buffer }).header, badCrc.subarray(4, 24));
  t.like(m.counts, { badCrc: 1, truncated: 1, oversize: 1, unknownType: 1, protocol: 4, wrongDestination: 1 });
  t.is(m.pending, 0);
});

test('bytes before a SOF are counted, not answered; the rest of a rejected frame is dropped uncounted when it is there, hunted over when it comes later', (t) => {
  const oversize = Buffer.concat([frame(T.PING, Buffer.alloc(0), { length: 3000 }), Buffer.alloc(10, 0x11)]);
  const a = model();
  a.m.arrive(Buffer.concat([Buffer.from([1, 2, 3]), oversize, frame(T.PING, Buffer.alloc(0))]));
  t.like(a.m.counts, { badSofBytes: 3, oversize: 1, pings: 1 });
  const b = model();
  b.m.arrive(Buffer.concat([Buffer.from([1, 2, 3]), oversize.subarray(0, 24)]));
  b.m.arrive(Buffer.concat([oversize.subarray(24), frame(T.PING, Buffer.alloc(0))]));
  t.like(b.m.counts, { badSofBytes: 3 + oversize.length - 24, oversize: 1, pings: 1 }, 'the same bytes, arriving in two writes');
});

test('a partial frame waits for its bytes; silence drops it as TRUNCATED with the header bytes it had', (t) => {
  const { m, expected } = model();
  const f = frame(T.PING, Buffer.alloc(100), { tag: 0x1234 });
  m.arrive(f.subarray(0, 10));
  t.is(m.pending, 10);
  m.arrive(f.subarray(10, 50));
  t.is(m.pending, 50);
  t.deepEqual(expected, []);
  m.silence();
  t.is(m.pending, 0);
  t.like(expected[0], { kind: 'reject', reason: R.TRUNCATED, header: f.subarray(4, 24) });
  const short = model();
  short.m.arrive(f.subarray(0, 6));
  short.m.silence();
  t.deepEqual((short.expected[0] as { header: Buffer }).header, Buffer.concat([f.subarray(4, 6), Buffer.alloc(18)]));
});

// ---- protect() -------------------------------------------------------------------------------------

/** Param-list bytes sent as DATA_OUT frames at the given cut points, each protected, reassembled. */
function sendProtected(list: Buffer, cuts: number[]): Buffer {
  const out = Buffer.alloc(list.length);
  const at = [0, ...[...new Set(cuts)].filter((c) => c > 0 && c < list.length).sort((a, b) => a - b), list.length];
  for (let i = 1; i < at.length; i++) {
    const f = frame(T.DATA_OUT, list.subarray(at[i - 1], at[i]), { offset: at[i - 1] });
    protect(f, 0, at[i] - at[i - 1]);
    f.copy(out, at[i - 1], HEADER_END, HEADER_END + at[i] - at[i - 1]);
  }
  return out;
}

test('protect(): a MAP or UNMAP list never names a canary, nor a LUN the fuzzer may not map, however it is split', (t) => {
  fc.assert(fc.property(
    fc.constantFrom(...CANARY_VOLUMES, 0, 5, 0x03fc), fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ minLength: 8, maxLength: 16 }),
    fc.array(fc.integer({ min: 1, max: 15 }), { maxLength: 6 }),
    (volume, lun, rest, cuts) => {
      const list = Buffer.from(rest);
      list.writeUInt16BE(volume, 0);
      list.writeUInt16BE(lun, 4);
      const got = sendProtected(list, cuts);
      const l = got.readUInt16BE(4);
      return !CANARY_VOLUMES.includes(got.readUInt16BE(0)) && (l >= 256 || l < MAPPABLE_LUNS);
    },
  ), { numRuns: 3000 });
  t.pass();
});

test('protect(): DELETE VOLUME never names a canary; with deletes off it names no volume', (t) => {
  for (const v of [...CANARY_VOLUMES, 3]) {
    const p = cmdPayload(16);
    p[16] = 0xc1; p[17] = 0x02; p.writeUInt32BE(v, 18);
    const f = frame(T.CMD, p);
    protect(f, 0, p.length);
    t.false(CANARY_VOLUMES.includes(f.readUInt32BE(HEADER_END + 18)), `volume ${v}`);
    const g = frame(T.CMD, p);
    protect(g, 0, p.length, false);
    t.is(g.readUInt32BE(HEADER_END + 18), 0xffffffff);
  }
});
