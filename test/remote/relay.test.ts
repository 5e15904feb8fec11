// Document 003, embodiments 1 and 2 at the relaying device (Figs. 5 and 6), through the relay's
// firmware (build/relay.debug.wasm) on the virtual clock; the storage units at both ends are the
// TypeScript endpoints of endpoint.ts until the array's link unit exists (docs/remote.md).
import test from 'ava';
import { buildNet, pattern } from './net';

const KB = 1024;
const near = { name: 'near', a: 'origin', b: 'relay0', km: 10, bandwidthMbps: 10_000 };
const far = { name: 'far', a: 'relay0', b: 'remote', km: 1000, bandwidthMbps: 10_000 };

function forwarded(origin: { outgoing: Map<number, { forwarded?: number }> }, cmd: number): () => boolean {
  return () => origin.outgoing.get(cmd)?.forwarded !== undefined;
}

test('embodiment 1 (Fig. 5): store and forward — the origin has RECEIVED when the relay holds the block (S126), before the far site has any of it; the relay forwards (S127-S129) and FORWARDED follows', (t) => {
  const { net, origin, remote } = buildNet({ links: [near, far], relays: [{ name: 'relay0' }] });
  const data = pattern(256 * KB, 7);
  const cmd = origin.write(0, 1, 100, data, 41);
  net.run(1e12, forwarded(origin, cmd));
  const o = origin.outgoing.get(cmd)!;
  const ev = (what: string, who = remote) => who.events.find((e) => e.what === what)!.t;
  t.is(o.status, 0, 'GOOD all the way (S129)');
  // S126: RECEIVED once the block is in the relay's buffer: near's round trips, not far's (5 ms one way).
  t.true(o.received! < 1e6, `origin RECEIVED after ${o.received! / 1e3} µs`);
  // S128 after S125: the remote's first DATA comes after the relay had every byte (store and forward).
  t.true(ev('remote first DATA') >= o.received! + 5e6 - 60e3, 'no data downstream before all of it was stored');
  t.true(o.forwarded! >= ev('remote all DATA') + 5e6 - 1e3, 'FORWARDED after the remote acknowledged (S129)');
  t.deepEqual(remote.blocks.get(100), data, 'the remote unit has the bytes the origin sent');
  t.is(net.relay('relay0').status().active, 0, 'the buffer is given back (S129)');
  t.is(net.relay('relay0').status().bufferUsedBytes, 0);
});

test('embodiment 2 (Fig. 6): cut-through — the relay forwards (S146) before the block has all arrived (S147)', (t) => {
  const slowNear = { ...near, bandwidthMbps: 100 }; // 256 KiB take about 21 ms on the near link
  const { net, origin, remote } = buildNet({ links: [slowNear, far], relays: [{ name: 'relay0', cutThrough: true }] });
  const data = pattern(256 * KB, 8);
  const cmd = origin.write(0, 1, 5, data);
  net.run(1e12, forwarded(origin, cmd));
  const o = origin.outgoing.get(cmd)!;
  const first = remote.events.find((e) => e.what === 'remote first DATA')!.t;
  t.true(first < o.received!, `the far site had data (${first / 1e6} ms) before the relay had it all (${o.received! / 1e6} ms)`);
  t.deepEqual(remote.blocks.get(5), data);
  t.is(o.status, 0);

  const sf = buildNet({ links: [slowNear, far], relays: [{ name: 'relay0' }] });
  const c2 = sf.origin.write(0, 1, 5, data);
  sf.net.run(1e12, forwarded(sf.origin, c2));
  t.true(sf.origin.outgoing.get(c2)!.forwarded! > o.forwarded!, 'store and forward finishes later than cut-through on the same links');
});

test('a cut far link: the relay repeats its WRITE (bounded: timeoutMs x retries) and then tells the origin the block was not forwarded', (t) => {
  const { net, origin } = buildNet({ links: [near, far], relays: [{ name: 'relay0', timeoutMs: 20, retries: 3 }] });
  net.inject('link far down');
  const cmd = origin.write(0, 1, 0, pattern(16 * KB, 1));
  net.run(1e12, forwarded(origin, cmd));
  const o = origin.outgoing.get(cmd)!;
  t.is(o.received !== undefined, true, 'the relay had it (S126)');
  t.is(o.status, 2, 'FORWARDED with CHECK CONDITION');
  t.true(o.forwarded! <= 20e6 * 5, `given up within the bound (${o.forwarded! / 1e6} ms)`);
  const s = net.relay('relay0').status();
  t.is(s.failed, 1);
  t.is(s.retries, 3);
  t.is(s.active, 0);
  t.true(net.link('far').counters.cut > 0);
});

test('loss on both links: the relay asks again for what is missing and repeats its WRITE; the bytes arrive whole; the same seed gives the same run', (t) => {
  const run = (seed: number) => {
    const lossy = (l: object) => ({ ...l, loss: 0.05, duplicate: 0.02, reorder: 0.05, jitterUs: 20 });
    const { net, origin, remote } = buildNet({ links: [lossy(near), lossy(far)], relays: [{ name: 'relay0', timeoutMs: 15, retries: 20 }], seed });
    const data = pattern(256 * KB, seed);
    const cmd = origin.write(0, 1, 9, data);
    net.run(1e12, () => origin.outgoing.get(cmd)?.forwarded !== undefined || origin.outgoing.get(cmd)?.received === undefined && net.now() > 2e9);
    return { origin, remote, data, cmd, counters: net.links.map((l) => ({ ...l.counters })), relay: net.relay('relay0').status() };
  };
  const a = run(3);
  const b = run(3);
  t.deepEqual(a.counters, b.counters, 'same seed, same losses');
  t.deepEqual(a.origin.events, b.origin.events, 'same seed, same events at the same virtual times');
  t.true(a.counters.some((c) => c.lost > 0), 'packets were lost');
  t.deepEqual(a.remote.blocks.get(9), a.data, 'the remote has every byte');
  const c = run(4);
  t.notDeepEqual(c.counters, a.counters, 'another seed, other losses');
});

test('a bounded queue: a burst beyond the link queue is a congestion drop, counted', (t) => {
  const small = { ...near, bandwidthMbps: 10, queue: '64KiB' };
  const { net, origin } = buildNet({ links: [small, far], relays: [{ name: 'relay0', timeoutMs: 1000, retries: 0 }] });
  origin.write(0, 1, 0, pattern(256 * KB, 2));
  net.run(50e6);
  t.true(net.link('near').counters.congested > 0);
});
