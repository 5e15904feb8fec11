// End to end over TCP: the framed protocol through the host library into the firmware and back,
// many tags at once; and every kind of malformed frame, after which the connection and the
// controller keep working.
import test from 'ava';
import * as A from '../../hal/abi';
import * as P from '../../lib/protocol';
import * as scsi from '../../lib/scsi';
import { connect } from '../../host/connect';
import { TransportError } from '../../lib/transport';
import { tempDir, startSmall, createVolume, read, write, pattern, run } from './env';
import { rawConnection, header, commandFrame, tcpPort } from './raw';
import { SessionSlot } from '../../hal/channels/session';

const tcpPorts = [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }, { name: 'q0', iop: 0, transport: 'inproc' }];

test('over TCP: volumes, 4 MiB in 256 KiB writes at once, 64 reads outstanding, identical data', async (t) => {
  const emu = await startSmall({ dir: tempDir('tcp'), ports: tcpPorts });
  t.teardown(() => emu.stop());
  const target = emu.array().targets.find((x) => x.port === 'fe0')!.target;
  t.regex(target, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const s = await connect(target);
  t.teardown(() => s.close());
  await createVolume(s, { name: 'net', blocks: 16384, blockSize: 512, placement: 'striped' }, 1);
  const data = pattern(4 << 20, 21);
  await Promise.all(Array.from({ length: 16 }, (_, i) => write(s, 1, i * 512, data.subarray(i << 18, (i + 1) << 18))));
  const parts = await Promise.all(Array.from({ length: 64 }, (_, i) => read(s, 1, i * 128, 128)));
  t.true(Buffer.concat(parts).equals(data));
  // The same data through the in-process port of the same array.
  t.true((await read(emu.connect(), 1, 0, 8192)).equals(data));
});

const hdr = header;
const tur = (tag: number) => commandFrame(tag, 0, scsi.testUnitReady(), 0, false);

const cases: Array<[string, number, (tag: number) => Buffer, number]> = [
  ['bad CRC', P.RejectReason.BAD_CRC, (tag) => { const f = tur(tag); f[f.length - 6] ^= 0xff; return f; }, A.STAT_FERR_BAD_CRC],
  ['oversize', P.RejectReason.OVERSIZE, (tag) => { const f = tur(tag); f.writeUInt16BE(4000, 14); return f; }, A.STAT_FERR_OVERSIZE],
  ['unknown type', P.RejectReason.UNKNOWN_TYPE, (tag) => P.encodeFrame(hdr(0x42, tag)), A.STAT_FERR_UNKNOWN_TYPE],
  ['unknown tag', P.RejectReason.UNKNOWN_TAG, (tag) => P.encodeFrame(hdr(P.FrameType.DATA_OUT, tag, { flags: P.FLAG_LAST }), Buffer.alloc(512)), A.STAT_FERR_UNKNOWN_TAG],
  ['truncated (no EOF where the length says)', P.RejectReason.TRUNCATED, (tag) => { const f = tur(tag); f.writeUInt16BE(f.readUInt16BE(14) - 4, 14); return f; }, A.STAT_FERR_TRUNCATED],
  ['wrong destination', P.RejectReason.WRONG_DESTINATION, (tag) => { const f = tur(tag); return P.encodeFrame(hdr(P.FrameType.CMD, tag, { destination: 0x0777 }), f.subarray(24, f.length - 8)); }, A.STAT_FERR_WRONG_DESTINATION],
  ['protocol (CDB length 3)', P.RejectReason.PROTOCOL, (tag) => { const f = tur(tag); f[24 + 10] = 3; return P.encodeFrame(hdr(P.FrameType.CMD, tag), f.subarray(24, f.length - 8)); }, A.STAT_FERR_PROTOCOL],
];

test('every malformed frame gets a REJECT with its reason and a counted error; the connection keeps working', async (t) => {
  const emu = await startSmall({ dir: tempDir('badframes'), ports: tcpPorts });
  t.teardown(() => emu.stop());
  const c = await rawConnection(tcpPort(emu.array().targets[0].target));
  t.teardown(() => c.sock.destroy());
  let tag = 1;
  for (const [name, reason, make, stat] of cases) {
    const before = emu.array().stats()[stat];
    const sofBefore = emu.array().stats()[A.STAT_FERR_BAD_SOF];
    c.sock.write(make(tag));
    const rj = await c.next(P.FrameType.REJECT);
    t.is(P.decodeReject(rj.payload)?.reason, reason, name);
    t.is(emu.array().stats()[stat], before + 1, `${name}: counted`);
    t.is(emu.array().stats()[A.STAT_FERR_BAD_SOF], sofBefore, `${name}: counted once, not again as skipped bytes`);
    // The same connection still carries commands.
    c.sock.write(tur(++tag));
    const rsp = await c.next(P.FrameType.RSP);
    t.is(rsp.tag, tag, `${name}: the next command is answered`);
    t.is(P.decodeResponse(rsp.payload)?.status, 0);
    tag++;
  }
  // Garbage before a frame is skipped (counted, not answered), and the frame after it is served.
  const skipped = emu.array().stats()[A.STAT_FERR_BAD_SOF];
  c.sock.write(Buffer.concat([Buffer.from('not a frame at all'), tur(++tag)]));
  t.is((await c.next(P.FrameType.RSP)).tag, tag);
  t.true(emu.array().stats()[A.STAT_FERR_BAD_SOF] > skipped);
  // A PING is echoed.
  c.sock.write(P.encodeFrame(hdr(P.FrameType.PING, ++tag), Buffer.from('hello')));
  t.is((await c.next(P.FrameType.PONG)).payload.toString(), 'hello');
  t.is(c.frames.length, 0, 'nothing else was sent');
  // Every frame the controller sent is counted: one REJECT and one RSP per case, the RSP, the PONG.
  t.is(emu.array().stats()[A.STAT_FRAMES_TX], cases.length * 2 + 2);
});

test('a frame cut off by silence is rejected as TRUNCATED after 2 s, and the connection goes on', async (t) => {
  const emu = await startSmall({ dir: tempDir('silence'), ports: tcpPorts });
  t.teardown(() => emu.stop());
  const c = await rawConnection(tcpPort(emu.array().targets[0].target));
  t.teardown(() => c.sock.destroy());
  c.sock.write(tur(7).subarray(0, 30));
  const rj = await c.next(P.FrameType.REJECT);
  t.is(P.decodeReject(rj.payload)?.reason, P.RejectReason.TRUNCATED);
  c.sock.write(tur(8));
  t.is((await c.next(P.FrameType.RSP)).tag, 8);
});

test('a session closed with commands in flight frees its slot; acknowledged writes are kept', async (t) => {
  const emu = await startSmall({ dir: tempDir('hangup'), ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0, sessions: 1 }, { name: 'q0', iop: 0, transport: 'inproc' }] });
  t.teardown(() => emu.stop());
  const target = emu.array().targets[0].target;
  const first = await connect(target);
  await createVolume(first, { name: 'h', blocks: 8192, blockSize: 512 }, 1);
  const data = pattern(1 << 20, 5);
  await write(first, 1, 0, data);
  const inflight = Array.from({ length: 32 }, (_, i) => read(first, 1, i * 64, 64).catch((e) => e));
  await first.close();
  const outcomes = await Promise.all(inflight);
  // Each read either completed with the data or failed as closed: nothing else, nothing wrong.
  outcomes.forEach((o, i) => {
    if (Buffer.isBuffer(o)) t.true(o.equals(data.subarray(i * 64 * 512, (i + 1) * 64 * 512)));
    else t.is((o as TransportError).code, 'CLOSED');
  });
  t.true(outcomes.some((o) => !Buffer.isBuffer(o)), 'the close cut some reads short');
  // The only session slot is reused by the next connection, once the firmware has closed it.
  const slot = new SessionSlot(emu.array().mem, 0, 0);
  while (!slot.free) await new Promise((r) => setTimeout(r, 5));
  const second = await connect(target);
  await run(second, 0, scsi.testUnitReady());
  t.true((await read(second, 1, 0, 2048)).equals(data));
  await second.close();
});
