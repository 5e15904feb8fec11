// The golden frames of docs/protocol.md (test/golden/frames.json), reproduced byte for byte by
// (a) the TypeScript codec (lib/protocol.ts), both ways;
// (b) the firmware's emitFrame (build/testing.debug.wasm, testEmitFrame), for every frame the array sends;
// (c) the firmware's receive path: the exchanges are fed, in order, into a stream session of a booted
//     channel IOP (comm/stream.ts and on), which must answer each with exactly the frames listed;
// and a third CRC-32C (@node-rs/crc32) agrees with every frame's CRC.
import test from 'ava';
import { crc32c as referenceCrc } from '@node-rs/crc32';
import * as A from '../../hal/abi';
import { Rig } from '../firmware/rig';
import * as P from '../../lib/protocol';
import golden from '../golden/frames.json';

interface GoldenFrame {
  comment: string;
  direction: 'host->array' | 'array->host';
  header: Omit<P.FrameHeader, 'type'> & { type: string; length: number };
  command?: Omit<P.CommandDescriptor, 'cdb'> & { cdb: string };
  response?: Omit<P.Response, 'sense'> & { sense: string };
  reject?: { reason: P.RejectReasonName; header: string; text?: string };
  payload: string;
  hex: string;
}

const frames = golden.frames as Record<string, GoldenFrame>;
const malformed = golden.malformed as Record<string, { comment: string; hex: string; decoder: string; reject: string }>;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

function headerOf(g: GoldenFrame): P.FrameHeader {
  const { type, length: _, ...rest } = g.header;
  return { ...rest, type: P.FrameType[type as P.FrameTypeName] ?? Number(type) };
}

test('there are golden frames of every type, a CMD of each CDB size and a REJECT of every reason', (t) => {
  const types = new Set(Object.values(frames).map((f) => f.header.type));
  t.deepEqual([...types].sort(), Object.keys(P.FrameType).sort());
  const cdbSizes = new Set(Object.values(frames).flatMap((f) => (f.command ? [f.command.cdb.length / 2] : [])));
  t.deepEqual([...cdbSizes].sort((a, b) => a - b), [6, 10, 16]);
  const reasons = new Set(Object.values(frames).flatMap((f) => (f.reject ? [f.reject.reason] : [])));
  t.deepEqual([...reasons].sort(), Object.keys(P.RejectReason).sort());
});

for (const [name, g] of Object.entries(frames)) {
  test(`codec: ${name} encodes to the golden bytes and decodes back`, (t) => {
    const bytes = hex(g.hex);
    t.is(P.encodeFrame(headerOf(g), hex(g.payload)).toString('hex'), g.hex);
    t.is(referenceCrc(bytes.subarray(4, bytes.length - 8)), bytes.readUInt32BE(bytes.length - 8), 'a third CRC-32C agrees');
    const events = new P.FrameDecoder().push(bytes);
    t.deepEqual(events, [{ ...headerOf(g), payload: hex(g.payload) }]);
    if (g.command) {
      const c = { ...g.command, cdb: hex(g.command.cdb) };
      t.is(P.encodeCommand(c).toString('hex'), g.payload);
      t.deepEqual(P.decodeCommand(hex(g.payload)), c);
    }
    if (g.response) {
      const r = { ...g.response, sense: hex(g.response.sense) };
      t.is(P.encodeResponse(r).toString('hex'), g.payload);
      t.deepEqual(P.decodeResponse(hex(g.payload)), r);
    }
    if (g.reject) {
      const r = { reason: P.RejectReason[g.reject.reason], header: hex(g.reject.header), ...(g.reject.text === undefined ? {} : { text: g.reject.text }) };
      t.is(P.encodeReject(r).toString('hex'), g.payload);
      t.deepEqual(P.decodeReject(hex(g.payload)), r);
    }
  });
}

for (const [name, m] of Object.entries(malformed)) {
  test(`codec: the ${name} input is what the decoder reports (${m.decoder})`, (t) => {
    const events = new P.FrameDecoder().push(hex(m.hex));
    if (m.decoder === 'frame') {
      t.false(P.isDecodeError(events[0]));
      if (name === 'protocol') t.is(P.decodeCommand((events[0] as P.Frame).payload), null);
    } else {
      t.like(events[0], { error: m.decoder });
      t.is((events[0] as P.DecodeError).header?.toString('hex'), frames[m.reject].reject!.header);
    }
  });
}

// ---- The firmware ---------------------------------------------------------------------------------------

test('firmware: emitFrame reproduces every frame the array sends', (t) => {
  const rig = new Rig();
  const area = rig.scratch(A.RING_DATA + 4096 + 64 + 4096);
  const payloadAt = area + A.RING_DATA + 4096 + 64;
  const sent = Object.entries(frames).filter(([, g]) => g.direction === 'array->host');
  t.true(sent.length >= 10);
  for (const [name, g] of sent) {
    const h = headerOf(g);
    const payload = hex(g.payload);
    rig.bytes.set(payload, payloadAt);
    const n = rig.fw.testEmitFrame(area, h.type, h.flags, h.tag, h.source, h.destination, h.sequence, h.offset, h.parameter, payloadAt, payload.length);
    t.is(Buffer.from(rig.bytes.subarray(area + A.RING_DATA, area + A.RING_DATA + n)).toString('hex'), g.hex, name);
  }
});

/** A booted channel IOP with one stream port (address 0001h) and one open session on it. */
class StreamRig {
  readonly rig = new Rig();
  readonly rx: number;
  readonly tx: number;
  now = 1e9;

  constructor() {
    const { rig } = this;
    const port = A.CONFIG_ADDR + A.CFG_PORT_TABLE;
    rig.view.setUint8(port + A.CPORT_KIND, A.PORT_STREAM);
    rig.view.setUint16(port + A.CPORT_ADDRESS, golden.arrayAddress, true);
    rig.view.setUint32(port + A.CPORT_RX_BYTES, 16384, true);
    rig.view.setUint32(port + A.CPORT_TX_BYTES, 16384, true);
    if (rig.fw.layout() !== 0) throw new Error('layout with a stream port failed');
    if (rig.fw.boot(A.ROLE_CHANNEL, 0) !== 0) throw new Error('boot failed');
    const session = rig.map(A.MAP_PORT_TABLE + A.MPORT_SESSIONS_ADDR);
    this.rx = rig.u32(session + A.SES_RX);
    this.tx = rig.u32(session + A.SES_TX);
    rig.setU32(session + A.SES_GENERATION, 1);
    rig.setU32(session + A.SES_STATE, A.SESS_OPEN);
    this.poll();
  }

  /** Appends bytes to the session's receive ring, as the stream binding does, and polls. */
  send(bytes: Buffer): Buffer {
    const { rig, rx } = this;
    const mask = rig.u32(rx + A.RING_CAPACITY) - 1;
    let tail = rig.u32(rx + A.RING_TAIL);
    for (const b of bytes) rig.bytes[rx + A.RING_DATA + (tail++ & mask)] = b;
    rig.setU32(rx + A.RING_TAIL, tail);
    this.poll();
    return this.received();
  }

  poll(): void {
    this.now += 1e6;
    this.rig.fw.poll(this.now);
  }

  /** Everything the firmware has sent since last asked. */
  received(): Buffer {
    const { rig, tx } = this;
    const mask = rig.u32(tx + A.RING_CAPACITY) - 1;
    let head = rig.u32(tx + A.RING_HEAD);
    const tail = rig.u32(tx + A.RING_TAIL);
    const out: number[] = [];
    while (head !== tail) out.push(rig.bytes[tx + A.RING_DATA + (head++ & mask)]);
    rig.setU32(tx + A.RING_HEAD, head);
    return Buffer.from(out);
  }
}

test('firmware: fed the golden exchanges, the receive path answers each with exactly the golden frames', (t) => {
  const target = new StreamRig();
  for (const { send, expect } of golden.exchanges) {
    const input = Buffer.concat(send.map((n) => hex(frames[n]?.hex ?? malformed[n].hex)));
    const answer = target.send(input).toString('hex');
    t.is(answer, expect.map((n) => frames[n].hex).join(''), `${send.join(' + ')} -> ${expect.join(' + ')}`);
  }
});
