// Links across processes over TCP (docs/remote.md, "Links across processes"; docs/topology.md,
// "Two processes"): the topology fields, each bad one named; the framing; and what a bench engineer
// does to the link port — garbage, an idle connection, a peer that lists the nodes in another
// order, a second connection while one is up — each refused with a log line naming it, counted,
// and the real peer still connects. Two emulators in this process stand for the two processes
// (test/e2e/tcp-link.test.ts runs them as processes); every wait is on a log line or a state,
// bounded.
import test from 'ava';
import * as net from 'net';
import { Emulator, parseTopology, TopologyError } from '../../harness';
import { encodeFrame, FrameReader, FrameError, FT_PACKET, FT_HEARTBEAT, FT_HELLO, FRAME_HEADER_BYTES, TcpLinkEnd } from '../../harness/tcp-link';
import { LinkBinding } from '../../hal/link';
import { Prng } from '../../hal/prng';
import * as A from '../../hal/abi';
import { tempDir } from '../harness/env';

const array = (name: string, dir?: string) => ({
  name, ...(dir ? { dir } : {}), cache: { size: '4MiB' }, iops: [{ role: 'channel' }, { role: 'disk' }],
  media: [{ name: 'd0', kind: 'ram', size: '8MiB' }],
  ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
});
const site = (local: 'A' | 'B', tcp: object, dir = '/base/x', extra: object = {}) => ({
  arrays: local === 'A' ? [array('A', dir), { name: 'B', elsewhere: true }] : [{ name: 'A', elsewhere: true }, array('B', dir)],
  links: [{ name: 'wan', a: 'A', b: 'B', km: 10, tcp: { heartbeatMs: 1000, retryMaxMs: 100, ...tcp } }],
  ...extra,
});

test('an array elsewhere keeps its node number: links to it name it, its link has tcp listen or connect', (t) => {
  const a = parseTopology(site('A', { listen: '127.0.0.1:0' }), '/base');
  t.deepEqual(a.arrays.map((x) => x.name), ['A'], 'only A runs here');
  t.deepEqual(a.arrayNodes, ['A', 'B']);
  t.deepEqual(a.links[0].tcp, { listen: { host: '127.0.0.1', port: 0 }, local: 'A', remote: 'B', heartbeatMs: 1000, retryMaxMs: 100 });
  t.is(a.arrays[0].linkNode!.node, 0);
  const b = parseTopology(site('B', { connect: 'siteA.example:23001' }), '/base');
  t.is(b.arrays[0].linkNode!.node, 1, 'B is node 1 in both files');
  t.deepEqual(b.arrays[0].linkNode!.nodes.map((n) => [n.name, n.kind]), [['A', 'array'], ['B', 'array']]);
  t.deepEqual(b.links[0].tcp!.connect, { host: 'siteA.example', port: 23001 });
  t.is(b.links[0].latencyNs, 50_000, 'the wire model is the sender\'s as in one process');
});

test('bad topologies with a link to another process: each error names the field', (t) => {
  const cases: Array<[object, string, RegExp]> = [
    [{ arrays: [{ name: 'A', elsewhere: true }] }, 'arrays', /at least one must run in this process/],
    [{ arrays: [array('A'), { name: 'B', elsewhere: true, dir: 'x' }] }, 'arrays[1].dir', /only "name"/],
    [{ arrays: [array('A'), { name: 'B', elsewhere: 'yes' }] }, 'arrays[1].elsewhere', /true or false/],
    [{ arrays: [array('A'), { name: 'A', elsewhere: true }] }, 'arrays[1].name', /./],
    [site('A', {}), 'links[0].tcp', /"listen".*or "connect"/],
    [site('A', { listen: '127.0.0.1:1', connect: '127.0.0.1:2' }), 'links[0].tcp', /one of them/],
    [site('A', { listen: 'nowhere' }), 'links[0].tcp.listen', /host:port/],
    [site('A', { connect: '127.0.0.1:0' }), 'links[0].tcp.connect', /port from 1 to 65535/],
    [site('A', { listen: '127.0.0.1:70000' }), 'links[0].tcp.listen', /port from 0 to 65535/],
    [site('A', { listen: '127.0.0.1:1', heartbeatMs: 1 }), 'links[0].tcp.heartbeatMs', /./],
    [site('A', { listen: '127.0.0.1:1', retryMaxMs: -5 }), 'links[0].tcp.retryMaxMs', /./],
    [site('A', { listen: '127.0.0.1:1', when: 'now' }), 'links[0].tcp.when', /unknown field/],
    [{ ...site('A', { listen: '127.0.0.1:1' }), links: [{ name: 'wan', a: 'A', b: 'B' }] }, 'links[0].tcp', /B runs elsewhere/],
    [{ arrays: [array('A'), array('B')], links: [{ name: 'l', a: 'A', b: 'B', tcp: { listen: '127.0.0.1:1' } }] }, 'links[0].tcp', /both ends \(A, B\) run in this process/],
    [{ arrays: [array('A'), { name: 'B', elsewhere: true }, { name: 'C', elsewhere: true }], links: [{ name: 'l', a: 'B', b: 'C', tcp: { listen: '127.0.0.1:1' } }] }, 'links[0]', /both ends \(B, C\) run elsewhere/],
    [site('A', { listen: '127.0.0.1:1' }, '/base/x', { mode: 'deterministic' }), 'links[0].tcp', /needs mode realtime/],
  ];
  for (const [doc, field, detail] of cases) {
    const e = t.throws(() => parseTopology(doc, '/base'), { instanceOf: TopologyError }, field);
    t.is(e?.field, field, `${field}: ${e?.message}`);
    t.regex(e?.message ?? '', detail, field);
  }
});

test('framing: a frame reads back whole across any split; bad magic, type, length and CRC are errors that say which', (t) => {
  const packet = Buffer.alloc(A.LINK_HEADER_BYTES + 100, 7);
  const f = Buffer.concat([encodeFrame(FT_PACKET, packet), encodeFrame(FT_HEARTBEAT, Buffer.alloc(0))]);
  const r = new FrameReader();
  const got = [...r.feed(f.subarray(0, 5)), ...r.feed(f.subarray(5, 40)), ...r.feed(f.subarray(40))];
  t.deepEqual(got.map((x) => [x.type, x.payload.length]), [[FT_PACKET, packet.length], [FT_HEARTBEAT, 0]]);
  t.true(got[0].payload.equals(packet));
  const bad = (b: Buffer, re: RegExp) => t.throws(() => new FrameReader().feed(b), { instanceOf: FrameError, message: re });
  bad(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /bad magic 0x47455420/);
  const flipped = Buffer.from(f);
  flipped[FRAME_HEADER_BYTES + 3] ^= 1;
  bad(flipped, /fails its CRC/);
  const typed = Buffer.from(f);
  typed[4] = 9;
  bad(typed, /unknown frame type 9/);
  const long = Buffer.from(f);
  long.writeUInt32LE(A.LINK_ENTRY_BYTES + 1, 8);
  bad(long, /of 8257 bytes \(at most 8256\)/);
});

/** Collects an emulator's log and resolves waits on lines, each bounded (a last-resort guard). */
class Log {
  readonly lines: string[] = [];
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
  readonly fn = (l: string) => {
    this.lines.push(l);
    this.waiters = this.waiters.filter((w) => { if (this.lines.length - 1 >= w.from && w.re.test(l)) { w.resolve(l); return false; } return true; });
  };
  /** The first line matching re from line `from` on (default: any line so far). */
  wait(re: RegExp, from = 0, boundMs = 20_000): Promise<string> {
    const have = this.lines.slice(from).find((l) => re.test(l));
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line ${re} within ${boundMs} ms; log:\n${this.lines.join('\n')}`)), boundMs);
      this.waiters.push({ re, from, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }
}

function connectRaw(address: string): Promise<net.Socket> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: Number(port) }, () => resolve(s));
    s.resume(); // reads (and drops) what the port sends, so its close is seen
    s.once('error', reject);
  });
}
const closed = (s: net.Socket) => new Promise<void>((r) => { if (s.destroyed) r(); else s.once('close', () => r()); });

test('the link port refuses garbage, an idle connection and a peer with other node numbers, each logged and counted; the real peer connects; a second one is refused', async (t) => {
  const dir = tempDir('tcplink');
  const logA = new Log();
  const a = await Emulator.start(site('A', { listen: '127.0.0.1:0' }, `${dir}/A`), { log: logA.fn });
  t.teardown(() => a.stop('powerFail'));
  const end = a.network.tcp[0];
  const address = end.listening;
  t.regex(address, /^127\.0\.0\.1:\d+$/);
  t.false(a.network.links[0].carries, 'no peer yet: the link is down');

  const junk = await connectRaw(address);
  junk.write('GET / HTTP/1.1\r\n\r\n');
  t.regex(await logA.wait(/refused/), /link wan: refused 127\.0\.0\.1:\d+: bad magic 0x47455420 .*\(1 refused so far\)/);
  await closed(junk);

  const idle = await connectRaw(address);
  t.regex(await logA.wait(/no HELLO/), /refused 127\.0\.0\.1:\d+: no HELLO within 4000 ms \(2 refused so far\)/);
  await closed(idle);

  // A peer that lists a relay A's file does not: its node numbers would mean other nodes.
  const logC = new Log();
  const other = { ...site('B', { connect: address }, `${dir}/C`), relays: [{ name: 'r0' }] };
  other.links.push({ name: 'r', a: 'B', b: 'r0', km: 1 } as never);
  const c = await Emulator.start(other, { log: logC.fn });
  t.regex(await logA.wait(/its nodes are/), /refused .*: its nodes are \[\["A","array"\],\["B","array"\],\["r0","relay"\]\], here \[\["A","array"\],\["B","array"\]\]/);
  await logC.wait(/closed the connection: its nodes are/);
  t.false(logC.lines.some((l) => /up: A/.test(l)), 'C never took the link up');
  t.is(logA.lines.filter((l) => /its nodes are/.test(l)).length, 1, 'a peer that calls again with the same fault is logged once');
  await c.stop('powerFail');
  t.false(a.network.links[0].carries);

  const logB = new Log();
  const b = await Emulator.start(site('B', { connect: address }, `${dir}/B`), { log: logB.fn });
  t.teardown(() => b.stop('powerFail'));
  await logB.wait(/link wan: up: A at/);
  await logA.wait(/link wan: up: B at/);
  t.true(a.network.links[0].carries);
  t.true(b.network.links[0].carries);

  // A second B while the first is up: refused, and the first link stays up.
  const logB2 = new Log();
  const b2 = await Emulator.start(site('B', { connect: address }, `${dir}/B2`), { log: logB2.fn });
  t.regex(await logA.wait(/already up/), /refused .*: the link is already up with 127\.0\.0\.1:\d+/);
  await logB2.wait(/closed the connection: the link is already up/);
  t.false(logB2.lines.some((l) => /up: A/.test(l)), 'the second B never took the link up');
  await b2.stop('powerFail');
  t.true(a.network.links[0].carries, 'the first connection carries the link still');
  t.like(end.status(), { state: 'up', connects: 1, dropped: 0 });
  t.true(end.status().refused >= 4, 'garbage, idle, other nodes, the second B (which may try again before it stops)');
  t.like(a.network.linkStatus()[0], { link: 'wan', up: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

test('the connecting side started first retries until the listener is there; the listener stopped and started again: it reconnects', async (t) => {
  const dir = tempDir('tcplink-retry');
  const address = `127.0.0.1:${await freePort()}`;
  const logB = new Log();
  const b = await Emulator.start(site('B', { connect: address }, `${dir}/B`), { log: logB.fn });
  t.teardown(() => b.stop('powerFail'));
  t.regex(await logB.wait(/cannot reach/), /link wan: cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\); the link is down, retrying up to every 100 ms/);
  t.false(b.network.links[0].carries);
  const sentBefore = b.network.links[0].counters.cut;
  t.is(b.network.tcp[0].status().state, 'connecting');
  let a = await Emulator.start(site('A', { listen: address }, `${dir}/A`), { log: new Log().fn });
  await logB.wait(/link wan: up: A at/);
  t.true(b.network.links[0].carries);
  t.is(b.network.links[0].counters.cut, sentBefore);
  const from = logB.lines.length;
  await a.stop('powerFail'); // as a kill -9: the socket closes with the process
  await logB.wait(/link wan: down: the connection with A .* ended; packets sent meanwhile are lost/, from);
  t.false(b.network.links[0].carries);
  a = await Emulator.start(site('A', { listen: address }, `${dir}/A`), { log: new Log().fn });
  t.teardown(() => a.stop('powerFail'));
  await logB.wait(/link wan: up: A at/, from);
  t.like(b.network.tcp[0].status(), { state: 'up', connects: 2 });
});

test('a peer that does not read: the send queue is bounded, what would overflow it is a congestion drop, counted', async (t) => {
  // The raw peer below sends no heartbeats: a minute's silence is allowed, as this test is not about it.
  const doc = site('A', { listen: '127.0.0.1:0', heartbeatMs: 15_000 });
  (doc.links[0] as Record<string, unknown>).queue = '64KiB';
  const topo = parseTopology(doc, '/base');
  const end = new TcpLinkEnd(topo.links[0], [['A', 'array'], ['B', 'array']], () => undefined, () => undefined);
  t.teardown(() => end.close());
  await end.start();
  const peer = await connectRaw(end.listening);
  peer.write(encodeFrame(FT_HELLO, Buffer.from(JSON.stringify({ protocol: 1, link: 'wan', node: 'B', nodes: [['A', 'array'], ['B', 'array']] }))));
  // Up once its HELLO is accepted (the answer comes back); then the peer stops reading.
  await new Promise<void>((r) => peer.once('data', () => r()));
  peer.pause();
  t.true(end.connected);
  const local = { node: 'A', rx: () => undefined, kick: () => undefined };
  const link = new LinkBinding(topo.links[0], new Prng(1), [local, { node: 'B', rx: () => undefined, kick: () => undefined, remote: end }]);
  const packet = Buffer.alloc(A.LINK_HEADER_BYTES + 8000);
  packet.writeUInt16LE(A.LPK_MAGIC_VALUE, A.LPK_MAGIC);
  packet.writeUInt16LE(8000, A.LPK_LENGTH);
  // The kernel's socket buffers take some megabytes first; then the queue fills and drops begin.
  for (let i = 0; i < 20_000 && link.counters.congested === 0; i++) {
    const now = i * 1e9; // a second apart: the wire's own queue (64 KiB at 10 Gbit/s) is empty each time
    link.send(0, packet, now);
    link.service(now + 1e6);
    if (i % 64 === 63) await new Promise((r) => setImmediate(r)); // let the socket hand bytes to the kernel
  }
  t.true(link.counters.congested > 0, 'a drop came');
  t.true(link.counters.delivered > 8, 'more than the wire\'s 64 KiB went into the socket first: the drop is the send queue\'s');
  t.true(end.counters.framesOut >= link.counters.delivered, 'every packet delivered went out as a frame (heartbeats too)');
  peer.destroy();
});

test('a peer that goes silent after its HELLO (a half-open connection): closed after 4 heartbeats, counted dropped, logged', async (t) => {
  const doc = site('A', { listen: '127.0.0.1:0', heartbeatMs: 50 });
  const topo = parseTopology(doc, '/base');
  const log = new Log();
  const end = new TcpLinkEnd(topo.links[0], [['A', 'array'], ['B', 'array']], log.fn, () => undefined);
  t.teardown(() => end.close());
  await end.start();
  const peer = await connectRaw(end.listening);
  peer.write(encodeFrame(FT_HELLO, Buffer.from(JSON.stringify({ protocol: 1, link: 'wan', node: 'B', nodes: [['A', 'array'], ['B', 'array']] }))));
  await log.wait(/link wan: up: B at/);
  t.regex(await log.wait(/closing the connection/), /link wan: closing the connection with 127\.0\.0\.1:\d+: silent for \d+ ms; packets sent meanwhile are lost \(1 dropped so far\)/);
  t.false(end.connected);
  t.like(end.status(), { state: 'listening', connects: 1, dropped: 1 });
  peer.destroy();
});

test('a peer faster than the rounds: received packets wait up to the link\'s queue, then the socket stops reading until a round takes them; none lost, in order', async (t) => {
  // The raw peer below sends no heartbeats: a minute's silence is allowed, as this test is not about it.
  const doc = site('A', { listen: '127.0.0.1:0', heartbeatMs: 15_000 });
  (doc.links[0] as Record<string, unknown>).queue = '64KiB';
  const topo = parseTopology(doc, '/base');
  let kicked: () => void = () => undefined;
  const end = new TcpLinkEnd(topo.links[0], [['A', 'array'], ['B', 'array']], () => undefined, () => kicked());
  t.teardown(() => end.close());
  await end.start();
  const peer = await connectRaw(end.listening);
  peer.write(encodeFrame(FT_HELLO, Buffer.from(JSON.stringify({ protocol: 1, link: 'wan', node: 'B', nodes: [['A', 'array'], ['B', 'array']] }))));
  await new Promise<void>((r) => peer.once('data', () => r()));
  const n = 2000; // 16 MB: more than the kernel's socket buffers hold
  const paused = new Promise<void>((resolve, reject) => {
    const bound = setTimeout(() => reject(new Error(`the socket never stopped reading: ${JSON.stringify(end.status())}`)), 60_000);
    kicked = () => { if (end.status().receivePaused) { clearTimeout(bound); resolve(); } };
  });
  for (let i = 0; i < n; i++) {
    const p = Buffer.alloc(A.LINK_HEADER_BYTES + 8000);
    p.writeUInt16LE(A.LPK_MAGIC_VALUE, A.LPK_MAGIC);
    p.writeUInt32LE(i, A.LPK_CMD_ID);
    peer.write(encodeFrame(FT_PACKET, p));
  }
  await paused;
  kicked = () => undefined;
  const ids: number[] = [];
  for (let rounds = 0; ids.length < n; rounds++) {
    t.true(rounds < 1_000_000, `all ${n} arrive (${ids.length} so far)`);
    if (rounds > 1_000_000) break;
    const got = end.drain();
    t.true(got.reduce((s, p) => s + p.length, 0) <= 64 * 1024 + 128 * 1024, 'one round takes at most the queue and the chunk that crossed it');
    for (const p of got) ids.push(Buffer.from(p).readUInt32LE(A.LPK_CMD_ID));
    await new Promise((r) => setImmediate(r));
  }
  t.deepEqual(ids, Array.from({ length: n }, (_, i) => i));
  peer.destroy();
});
