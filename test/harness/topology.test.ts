// Topology validation: every bad field is named by its path, and nothing starts.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { loadTopology, parseTopology, TopologyError, Emulator } from '../../harness';
import { parseSize } from '../../harness/topology';
import { tempDir } from './env';

const good = () => ({
  arrays: [{
    name: 'a0', iops: [{ role: 'channel' }, { role: 'disk' }],
    media: [{ name: 'd0', kind: 'ram', size: '64MiB' }],
    ports: [{ name: 'p0', iop: 0, transport: 'tcp', port: 0 }],
  }],
});

test('the embedded default topology is valid and is the documented one', (t) => {
  const topo = loadTopology();
  const a = topo.arrays[0];
  t.is(a.name, 'array0');
  t.deepEqual(a.iops, ['channel', 'channel', 'disk']);
  t.is(a.media.length, 4);
  t.true(a.media.every((m) => m.kind === 'file' && m.bytes === 1024 ** 3 && m.path.startsWith(path.join(process.cwd(), 'var', 'array0'))));
  t.deepEqual(a.ports.map((p) => [p.name, p.protocol, p.host, p.port, p.iop]),
    [['fe0', 'framed', '127.0.0.1', 7450, 0], ['fe1', 'framed', '127.0.0.1', 7451, 1], ['iscsi0', 'iscsi', '127.0.0.1', 3260, 0],
      ['nbd0', 'nbd', '127.0.0.1', 10809, 1]]);
  t.is(a.ports[3].idleTimeoutMs, 60_000, 'an NBD port closes idle connections like a framed one');
  t.is(a.ports[2].targetName, 'iqn.2026-11.org.sanbox:array0.iscsi0');
  t.is(a.cache.bytes, 64 << 20);
  t.deepEqual([a.cache.destageAgeMs, a.cache.destageAgeIdleMs], [50, 2000], 'docs/topology.md: the destage age adapts between 50 ms and 2 s');
});

test('defaults fill what a minimal topology leaves out', (t) => {
  const topo = parseTopology(good(), '/base');
  t.is(topo.mode, 'realtime');
  t.is(topo.seed, 1);
  const a = topo.arrays[0];
  t.is(a.dir, '/base/var/a0');
  t.is(a.nv.path, '/base/var/a0/nvram.bin');
  t.regex(a.serial, /^SB[0-9A-F]{8}$/);
  t.regex(a.deviceId, /^6[0-9a-f]{31}$/);
  t.is(a.media[0].scheduler, 'clook');
  t.is(a.media[0].queueDepth, 8);
  t.is(a.ports[0].sessions, 8);
  t.is(a.ports[0].address, 1);
  t.is(a.ports[0].idleTimeoutMs, 60_000, 'docs/topology.md: a TCP session idle for 60 s is closed');
  t.deepEqual([a.cache.destageAgeMs, a.cache.destageAgeIdleMs], [50, 2000]);
  const fixed: any = good();
  fixed.arrays[0].cache = { destageAgeMs: 5 };
  t.is(parseTopology(fixed, '/base').arrays[0].cache.destageAgeIdleMs, 5, 'a topology that sets only the age keeps it fixed');
});

test('an iSCSI port: port 3260, a target name from the array and port names, no CHAP, a ping every 10 s', (t) => {
  const d = good();
  d.arrays[0].ports = [{ name: 'Front_0', iop: 0, transport: 'tcp', protocol: 'iscsi' } as any];
  const p = parseTopology(d, '/base').arrays[0].ports[0];
  t.like(p, { protocol: 'iscsi', port: 3260, host: '127.0.0.1', targetName: 'iqn.2026-11.org.sanbox:a0.front-0', pingIntervalMs: 10000, chap: undefined });
  const withChap = good();
  withChap.arrays[0].ports = [{ name: 'p', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, chap: { user: 'alice', secret: 'alice-secret-123' } } as any];
  t.deepEqual(parseTopology(withChap, '/base').arrays[0].ports[0].chap, { user: 'alice', secret: 'alice-secret-123', targetUser: '', targetSecret: '' });
});

test('sizes take binary units', (t) => {
  t.is(parseSize('64MiB', 'f'), 64 << 20);
  t.is(parseSize('1GiB', 'f'), 1 << 30);
  t.is(parseSize('2TiB', 'f'), 2 * 1024 ** 4);
  t.is(parseSize(4096, 'f'), 4096);
  t.throws(() => parseSize('1 gigabyte', 'arrays[0].media[0].size'), { message: /arrays\[0\]\.media\[0\]\.size: expected a size such as "1GiB"/ });
});

const bad: Array<[string, (d: any) => void, RegExp]> = [
  ['mode', (d) => { d.mode = 'fast'; }, /^mode: expected one of "realtime", "deterministic", got "fast"/],
  ['no arrays', (d) => { d.arrays = []; }, /^arrays: expected 1 to 8 entries, got 0/],
  ['array name', (d) => { d.arrays[0].name = 'a b'; }, /^arrays\[0\]\.name: expected letters/],
  ['unknown field', (d) => { d.arrays[0].cahce = {}; }, /^arrays\[0\]\.cahce: unknown field/],
  ['two disk IOPs', (d) => { d.arrays[0].iops.push({ role: 'disk' }); }, /^arrays\[0\]\.iops: needs exactly one IOP with role "disk", has 2/],
  ['IOP role', (d) => { d.arrays[0].iops[0].role = 'tape'; }, /^arrays\[0\]\.iops\[0\]\.role: expected one of "channel", "disk", got "tape"/],
  ['medium kind', (d) => { d.arrays[0].media[0].kind = 'ssd'; }, /^arrays\[0\]\.media\[0\]\.kind: expected one of "ram", "file"/],
  ['medium size unit', (d) => { d.arrays[0].media[0].size = '1 gigabyte'; }, /^arrays\[0\]\.media\[0\]\.size: expected a size/],
  ['medium size alignment', (d) => { d.arrays[0].media[0].size = '1000000'; }, /^arrays\[0\]\.media\[0\]\.size: must be a multiple of 64KiB/],
  ['scheduler', (d) => { d.arrays[0].media[0].scheduler = 'elevator'; }, /^arrays\[0\]\.media\[0\]\.scheduler: expected one of "fifo", "sstf", "clook", "deadline"/],
  ['fault lba', (d) => { d.arrays[0].media[0].faults = [{ type: 'readError', lba: 1 << 30 }]; }, /^arrays\[0\]\.media\[0\]\.faults\[0\]\.lba: expected 0 to 131071/],
  ['duplicate medium', (d) => { d.arrays[0].media.push({ name: 'd0', kind: 'ram', size: '1MiB' }); }, /^arrays\[0\]\.media\[1\]\.name: duplicate "d0"/],
  ['port on the disk IOP', (d) => { d.arrays[0].ports[0].iop = 1; }, /^arrays\[0\]\.ports\[0\]\.iop: IOP 1 is the disk IOP/],
  ['port number', (d) => { d.arrays[0].ports[0].port = 70000; }, /^arrays\[0\]\.ports\[0\]\.port: expected 0 to 65535, got 70000/],
  ['port transport', (d) => { d.arrays[0].ports[0].transport = 'fc'; }, /^arrays\[0\]\.ports\[0\]\.transport: expected one of/],
  ['serial without path', (d) => { d.arrays[0].ports[0] = { name: 's', iop: 0, transport: 'serial' }; }, /^arrays\[0\]\.ports\[0\]\.path: expected a non-empty string, got nothing/],
  ['idle destage age below the age', (d) => { d.arrays[0].cache = { destageAgeMs: 100, destageAgeIdleMs: 50 }; }, /^arrays\[0\]\.cache\.destageAgeIdleMs: must be at least destageAgeMs \(100\), got 50/],
  ['cache size', (d) => { d.arrays[0].cache = { size: '2GiB' }; }, /^arrays\[0\]\.cache\.size: must be a multiple of 64KiB from 1MiB to 1GiB/],
  ['device ID', (d) => { d.arrays[0].deviceId = '1234'; }, /^arrays\[0\]\.deviceId: expected 32 hex digits/],
  ['same TCP port twice', (d) => { d.arrays[0].ports.push({ name: 'p1', iop: 0, transport: 'tcp', port: 7000 }, { name: 'p2', iop: 0, transport: 'tcp', port: 7000 }); }, /^arrays\[0\]\.ports\[2\]\.port: duplicate "127\.0\.0\.1:7000"/],
  ['protocol', (d) => { d.arrays[0].ports[0].protocol = 'nvme'; }, /^arrays\[0\]\.ports\[0\]\.protocol: expected one of "framed", "iscsi", "nbd", got "nvme"/],
  ['NBD port with a target name', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'nbd', targetName: 'iqn.2026-11.org.example:x' }); }, /^arrays\[0\]\.ports\[0\]\.targetName: unknown field/],
  ['NBD rx ring too small', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'nbd', rxBytes: '8KiB' }); }, /^arrays\[0\]\.ports\[0\]\.rxBytes/],
  ['protocol on a serial port', (d) => { d.arrays[0].ports[0] = { name: 's', iop: 0, transport: 'serial', path: '/dev/x', protocol: 'iscsi' }; }, /^arrays\[0\]\.ports\[0\]\.protocol: unknown field/],
  ['targetName on a framed port', (d) => { d.arrays[0].ports[0].targetName = 'iqn.2026-11.org.x:y'; }, /^arrays\[0\]\.ports\[0\]\.targetName: unknown field/],
  ['target name', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', targetName: 'iqn.2026-11.Org.Example:Disk' }); }, /^arrays\[0\]\.ports\[0\]\.targetName: expected an iSCSI name/],
  ['target name date', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', targetName: 'iqn.26-11.org.example:disk' }); }, /^arrays\[0\]\.ports\[0\]\.targetName: expected an iSCSI name/],
  ['target name twice', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi' }); d.arrays[0].ports.push({ name: 'p1', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, targetName: 'iqn.2026-11.org.sanbox:a0.p0' }); }, /^arrays\[0\]\.ports\[1\]\.targetName: duplicate "iqn\.2026-11\.org\.sanbox:a0\.p0"/],
  ['CHAP secret too short', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', chap: { user: 'u', secret: 'short' } }); }, /^arrays\[0\]\.ports\[0\]\.chap\.secret: expected printable ASCII without spaces, 12 to 127 characters/],
  ['CHAP without user', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', chap: { secret: 'long-enough-secret' } }); }, /^arrays\[0\]\.ports\[0\]\.chap\.user: expected a non-empty string/],
  ['mutual CHAP half given', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', chap: { user: 'u', secret: 'long-enough-secret', targetUser: 't' } }); }, /^arrays\[0\]\.ports\[0\]\.chap\.targetSecret: mutual CHAP needs both/],
  ['mutual CHAP same secret', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', chap: { user: 'u', secret: 'long-enough-secret', targetUser: 't', targetSecret: 'long-enough-secret' } }); }, /^arrays\[0\]\.ports\[0\]\.chap\.targetSecret: must differ from secret/],
  ['CHAP field', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', chap: { user: 'u', password: 'long-enough-secret' } }); }, /^arrays\[0\]\.ports\[0\]\.chap\.password: unknown field/],
  ['ping interval', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', pingIntervalMs: -1 }); }, /^arrays\[0\]\.ports\[0\]\.pingIntervalMs: expected 0 to 3600000, got -1/],
  ['iSCSI rx ring', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', rxBytes: '32KiB' }); }, /^arrays\[0\]\.ports\[0\]\.rxBytes: expected 65536 to 16777216, got 32768/],
  ['iSCSI tx ring below rx', (d) => { Object.assign(d.arrays[0].ports[0], { protocol: 'iscsi', rxBytes: '1MiB', txBytes: '512KiB' }); }, /^arrays\[0\]\.ports\[0\]\.txBytes: an iSCSI port's txBytes must be at least its rxBytes/],
];

for (const [name, mutate, message] of bad) {
  test(`a bad topology is refused with the field named: ${name}`, (t) => {
    const d = good();
    mutate(d);
    const e = t.throws(() => parseTopology(d, '/base'), { instanceOf: TopologyError });
    t.regex(e!.message, message);
  });
}

test('a topology file that is not JSON names the file; nothing is created', async (t) => {
  const dir = tempDir('topo');
  const file = path.join(dir, 'broken.json');
  fs.writeFileSync(file, '{ "arrays": [ ');
  t.throws(() => loadTopology(file), { message: new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`) });
  t.throws(() => loadTopology(path.join(dir, 'missing.json')), { message: /missing\.json: cannot read/ });
  const d = good() as any;
  d.arrays[0].dir = path.join(dir, 'a0');
  d.arrays[0].media[0].kind = 'floppy';
  await t.throwsAsync(Emulator.start(d), { instanceOf: TopologyError });
  t.false(fs.existsSync(path.join(dir, 'a0')));
});

test('sanbox validate reports a bad file with the field and a non-zero exit', async (t) => {
  const { main } = await import('../../harness/cli');
  const dir = tempDir('topo');
  const file = path.join(dir, 't.json');
  const d = good() as any;
  d.arrays[0].ports[0].iop = 5;
  fs.writeFileSync(file, JSON.stringify(d));
  const errors: string[] = [];
  const original = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    t.is(await main(['validate', file]), 1);
    t.is(await main(['frobnicate']), 2);
  } finally {
    console.error = original;
  }
  t.regex(errors[0], /arrays\[0\]\.ports\[0\]\.iop: expected 0 to 1, got 5/);
});

test('idleTimeoutMs: 0 for serial lines by default, settable on framed stream ports, refused on inproc and iSCSI ports', (t) => {
  const with_ = (port: object) => { const g = good(); (g.arrays[0].ports as object[]) = [port]; return g; };
  t.is(parseTopology(with_({ name: 'p', iop: 0, transport: 'pty', link: 'x' }), '/b').arrays[0].ports[0].idleTimeoutMs, 0);
  t.is(parseTopology(with_({ name: 'p', iop: 0, transport: 'tcp', port: 0, idleTimeoutMs: 0 }), '/b').arrays[0].ports[0].idleTimeoutMs, 0);
  t.throws(() => parseTopology(with_({ name: 'p', iop: 0, transport: 'inproc', idleTimeoutMs: 10 }), '/b'), { message: /ports\[0\].*idleTimeoutMs/ });
  t.throws(() => parseTopology(with_({ name: 'p', iop: 0, transport: 'tcp', port: 0, idleTimeoutMs: -1 }), '/b'), { message: /idleTimeoutMs/ });
  // An iSCSI port finds a silent initiator with its NOP-In pings (pingIntervalMs): no idle timeout there.
  t.is(parseTopology(with_({ name: 'p', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }), '/b').arrays[0].ports[0].idleTimeoutMs, 0);
  t.throws(() => parseTopology(with_({ name: 'p', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, idleTimeoutMs: 1000 }), '/b'),
    { message: /ports\[0\]\.idleTimeoutMs: unknown field/ });
});
