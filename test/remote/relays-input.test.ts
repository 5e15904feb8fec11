// Bad input for embodiment 4 (several relays, relays with NV buffer memory): each kind gets a clear
// error that names the field, and nothing changes.
import test from 'ava';
import * as path from 'path';
import { parseTopology, TopologyError } from '../../harness';
import { remoteCreateParameters } from '../../lib/remote';
import { startRelays } from './relays';

const array = (name: string) => ({
  name, iops: [{ role: 'channel' }, { role: 'disk' }],
  media: [{ name: 'd0', kind: 'ram', size: '64MiB' }],
  ports: [{ name: 'p0', iop: 0, transport: 'inproc' }],
});
const withRelays = (...relays: object[]) => ({
  arrays: [array('A'), array('B')],
  relays,
  links: relays.flatMap((r, i) => [{ name: `n${i}`, a: 'A', b: (r as { name: string }).name }, { name: `f${i}`, a: (r as { name: string }).name, b: 'B' }]),
});

test('relay fields: nv resolves against the topology\'s directory; forward later and threshold take their own field', (t) => {
  const topo = parseTopology(withRelays({ name: 'r1', nv: 'r1.nv', forward: 'later', holdMs: 250 }, { name: 'r2', nv: '/x/r2.nv', forward: 'threshold', threshold: '64KiB' }), '/base');
  t.like(topo.relays[0], { nv: path.resolve('/base', 'r1.nv'), forward: 'later', holdMs: 250 });
  t.like(topo.relays[1], { nv: '/x/r2.nv', forward: 'threshold', thresholdBytes: 65536 });
});

for (const [what, relays, field, message] of [
  ['an unknown forward policy', [{ name: 'r1', nv: 'a', forward: 'soon' }], 'relays[0].forward', /one of now, later, threshold/],
  ['forward later without an nv file', [{ name: 'r1', forward: 'later' }], 'relays[0].forward', /give the relay an "nv" file/],
  ['holdMs without forward later', [{ name: 'r1', nv: 'a', holdMs: 5 }], 'relays[0].holdMs', /only with "forward": "later"/],
  ['threshold without forward threshold', [{ name: 'r1', nv: 'a', forward: 'later', threshold: '1MiB' }], 'relays[0].threshold', /only with "forward": "threshold"/],
  ['a holding relay that cuts through', [{ name: 'r1', nv: 'a', forward: 'later', cutThrough: true }], 'relays[0].cutThrough', /cannot forward them before/],
  ['two relays on one nv file', [{ name: 'r1', nv: 'a' }, { name: 'r2', nv: 'a' }], 'relays[1].nv', /duplicate/],
] as const) {
  test(`topology: ${what} is refused, naming ${field}`, (t) => {
    const e = t.throws(() => parseTopology(withRelays(...relays), '/base'), { instanceOf: TopologyError });
    t.true(e!.message.includes(field), e!.message);
    t.regex(e!.message, message);
  });
}

test('REMOTE CREATE parameters: a policy needs relays and must be known', (t) => {
  t.throws(() => remoteCreateParameters({ volume: 0, to: 'B', toVolume: 'm', policy: 'stripe' }), { message: /needs relays/ });
  t.throws(() => remoteCreateParameters({ volume: 0, to: 'B', toVolume: 'm', via: 'r1', policy: 'fastest' as never }), { message: /round-robin, least-loaded, random, stripe, all/ });
  t.is(remoteCreateParameters({ volume: 0, to: 'B', toVolume: 'm', via: 'r1,r2', policy: 'all' })[86], 5);
  // The policy's byte (86) is not redundancy's N and m (84, 85): each field keeps its own (the firmware refuses the two together).
  const both = remoteCreateParameters({ volume: 0, to: 'B', toVolume: 'm', via: 'r1,r2', policy: 'stripe', redundancy: { n: 2, m: 1 } });
  t.deepEqual([both[84], both[85], both[86]], [2, 1, 4]);
});

test('REMOTE CREATE through the firmware: an unknown, repeated or fifth relay, an array named as a relay, or a bad policy number is refused (86h/14h or 86h/12h) and makes no pair', async (t) => {
  const s = await startRelays('relays-input', { relays: 4 });
  try {
    for (const via of ['r1,nope', 'r1,r1', 'r1,r2,r3,r4,r1', 'r1,B', 'r1,,r2']) {
      await t.throwsAsync(s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via, policy: 'round-robin' }), { message: /ILLEGAL REQUEST/ }, via);
    }
    const list = remoteCreateParameters({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'r1,r2' });
    list[86] = 9; // no such policy
    const bad = await t.throwsAsync(s.a.execute({ lun: 0, cdb: (await import('../../lib/remote')).remoteCreateCdb(list.length), dataOut: list }), { message: /ILLEGAL REQUEST/ });
    t.regex(bad!.message, /parameter list byte 86\)/, 'the sense points at the policy byte');
    t.deepEqual(await s.a.remoteStatus(), [], 'no pair was made');
    const ok = await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'r1,r2,r3,r4', policy: 'all' });
    t.is(ok.state, 'copy');
  } finally {
    await s.emu.stop();
  }
});

test('sanctl remote create --via r1,r2 --policy all and relay status: per-relay counters, NV and forward policy, human and --json; a bad --policy exits 2', async (t) => {
  const s = await startRelays('relays-sanctl', { relays: 2, relay: (i, dir) => (i === 1 ? { nv: path.join(dir, 'r2.nv'), forward: 'later', holdMs: 100 } : {}) });
  try {
    const { runSanctl } = await import('../host/run-sanctl');
    const on = (array: string) => ({ connect: async () => s.emu.connect(array), sleep: (ms: number) => s.emu.advance(ms), now: () => s.emu.driver(array).now() / 1e6 });
    t.is((await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--via', 'r1,r2', '--policy', 'fastest'], on('A'))).code, 2);
    t.is((await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--policy', 'all'], on('A'))).code, 2, '--policy needs --via');
    const created = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--via', 'r1,r2', '--policy', 'all', '--wait'], on('A'));
    t.is(created.code, 0, created.stderr);
    const relays = JSON.parse((await runSanctl(['--json', 'relay', 'status'], on('A'))).stdout).relays;
    t.like(relays[0], { relay: 'r1', nv: false, forward: 'now', state: 'running' });
    t.like(relays[1], { relay: 'r2', nv: true, forward: 'later' });
    t.true(relays[0].jobs > 0 && relays[1].jobs > 0, 'both relays carried the copy');
    t.regex((await runSanctl(['relay', 'status'], on('A'))).stdout, /r2 \(node 3, storeAndForward, NV, forward later, running\): \d+ held \(\d+ stored waiting\)/);
  } finally {
    await s.emu.stop();
  }
});
