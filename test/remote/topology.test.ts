// Topology fields for relays and links (docs/topology.md, "Links and relays"): each bad field is
// named by its path, and the default topology stays one array with no links.
import test from 'ava';
import { loadTopology, parseTopology, TopologyError } from '../../harness';
import { linkRoutes } from '../../harness/links';

const array = (name: string) => ({
  name, iops: [{ role: 'channel' }, { role: 'channel' }, { role: 'disk' }],
  media: [{ name: 'd0', kind: 'ram', size: '64MiB' }],
  ports: [{ name: 'p0', iop: 0, transport: 'inproc' }],
});
const twoSites = () => ({
  arrays: [array('main'), array('standby')],
  relays: [{ name: 'relay0' }],
  links: [
    { name: 'near', a: 'main', b: 'relay0', km: 10 },
    { name: 'far', a: 'relay0', b: 'standby', km: 1000, bandwidthMbps: 1000 },
  ],
});

test('the default topology is one array with no relays and no links', (t) => {
  const topo = loadTopology();
  t.is(topo.arrays.length, 1);
  t.deepEqual(topo.relays, []);
  t.deepEqual(topo.links, []);
  t.deepEqual(topo.arrays[0].linkPorts, []);
});

test('a two-site topology: distance gives latency at 5 µs per km, defaults fill the rest, each array gets a link queue per channel IOP', (t) => {
  const topo = parseTopology(twoSites(), '/base');
  t.is(topo.links[0].latencyNs, 50_000);
  t.is(topo.links[1].latencyNs, 5_000_000);
  t.is(topo.links[1].bandwidthMbps, 1000);
  t.is(topo.links[0].bandwidthMbps, 10_000);
  t.is(topo.links[0].loss, 0);
  t.is(topo.links[0].queueBytes, 4 << 20);
  t.deepEqual(topo.relays[0], { name: 'relay0', node: 2, bufferBytes: 8 << 20, cutThrough: false, timeoutMs: 50, retries: 5, forward: 'now', holdMs: 1000, thresholdBytes: 1 << 20 });
  t.deepEqual(topo.arrays[0].linkPorts!.map((p) => [p.name, p.iop, p.queue]), [['near.q0', 0, 0], ['near.q1', 1, 1]]);
  t.deepEqual(linkRoutes(['main', 'standby', 'relay0'], topo.links), [[-1, 0, 0], [1, -1, 1], [0, 1, -1]]);
});

const bad: Array<[string, (d: ReturnType<typeof twoSites>) => void, string, RegExp]> = [
  ['unknown link field', (d) => { (d.links[0] as Record<string, unknown>).speed = 1; }, 'links[0].speed', /./],
  ['link name', (d) => { d.links[0].name = 'a b'; }, 'links[0].name', /letters/],
  ['duplicate link name', (d) => { d.links[1].name = 'near'; }, 'links[1].name', /./],
  ['unknown end', (d) => { d.links[0].b = 'nowhere'; }, 'links[0].b', /no array or relay named "nowhere"/],
  ['both ends the same', (d) => { d.links[0].b = 'main'; }, 'links[0].b', /two different nodes/],
  ['km and latencyUs', (d) => { (d.links[0] as Record<string, unknown>).latencyUs = 3; }, 'links[0].latencyUs', /not both/],
  ['km negative', (d) => { d.links[0].km = -1; }, 'links[0].km', /./],
  ['latencyUs too large', (d) => { delete (d.links[0] as Record<string, unknown>).km; (d.links[0] as Record<string, unknown>).latencyUs = 1e9; }, 'links[0].latencyUs', /./],
  ['bandwidth zero', (d) => { d.links[1].bandwidthMbps = 0; }, 'links[1].bandwidthMbps', /./],
  ['jitter negative', (d) => { (d.links[0] as Record<string, unknown>).jitterUs = -5; }, 'links[0].jitterUs', /./],
  ['loss above 1', (d) => { (d.links[0] as Record<string, unknown>).loss = 1.5; }, 'links[0].loss', /./],
  ['reorder not a number', (d) => { (d.links[0] as Record<string, unknown>).reorder = 'often'; }, 'links[0].reorder', /./],
  ['duplicate negative', (d) => { (d.links[0] as Record<string, unknown>).duplicate = -0.1; }, 'links[0].duplicate', /./],
  ['queue smaller than a packet', (d) => { (d.links[0] as Record<string, unknown>).queue = '1KiB'; }, 'links[0].queue', /./],
  ['relay name taken by an array', (d) => { d.relays[0].name = 'main'; d.links[0].b = 'main'; }, 'relays[0].name', /also an array's name/],
  ['relay without a link', (d) => { d.relays.push({ name: 'lonely' }); }, 'relays[1]', /ends no link/],
  ['relay buffer too small', (d) => { (d.relays[0] as Record<string, unknown>).buffer = '64KiB'; }, 'relays[0].buffer', /./],
  ['relay cutThrough not boolean', (d) => { (d.relays[0] as Record<string, unknown>).cutThrough = 'yes'; }, 'relays[0].cutThrough', /./],
  ['relay timeout zero', (d) => { (d.relays[0] as Record<string, unknown>).timeoutMs = 0; }, 'relays[0].timeoutMs', /./],
  ['relay retries too many', (d) => { (d.relays[0] as Record<string, unknown>).retries = 1000; }, 'relays[0].retries', /./],
  ['unknown relay field', (d) => { (d.relays[0] as Record<string, unknown>).disk = 1; }, 'relays[0].disk', /./],
];

for (const [what, change, field, detail] of bad) {
  test(`a bad topology is refused, naming the field: ${what}`, (t) => {
    const d = twoSites();
    change(d);
    const e = t.throws(() => parseTopology(d, '/base'), { instanceOf: TopologyError });
    t.is(e!.field, field);
    t.regex(e!.message, detail);
  });
}

test('too many link queues for an array\'s ports are refused, naming the ports field', (t) => {
  const d = twoSites();
  for (let i = 0; i < 8; i++) d.links.push({ name: `n${i}`, a: 'main', b: 'relay0', km: 1 });
  const e = t.throws(() => parseTopology(d, '/base'), { instanceOf: TopologyError });
  t.is(e!.field, 'arrays[0].ports');
  t.regex(e!.message, /link queues/);
});

test('sanbox starts arrays with link ends (two channel IOPs each: a link queue per IOP) and a relay on one clock', async (t) => {
  const { Emulator } = await import('../../harness');
  const os = await import('os');
  const path = await import('path');
  const fs = await import('fs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-linked-'));
  const d = { ...twoSites(), mode: 'deterministic', arrays: twoSites().arrays.map((a) => ({ ...a, dir: path.join(dir, a.name) })) };
  const emu = await Emulator.start(d, { debug: true });
  try {
    t.truthy(emu.world, 'the arrays run in one world with the relay');
    t.deepEqual(emu.network.relayStatus().map((r) => r.relay), ['relay0']);
    t.is(emu.drivers[0].now(), emu.drivers[1].now(), 'one clock');
    t.throws(() => emu.injectNetwork('relay nowhere kill'), { message: /no relay "nowhere"/ });
    t.throws(() => emu.injectNetwork('link near sideways'), { message: /cannot parse fault/ });
  } finally {
    await emu.stop();
  }
});
