// sanctl's run() without a process: usage errors exit 2 before anything is opened, transport
// failures exit 3, SCSI failures exit 1 with the sense in words; and its commands against the
// in-memory FakeArray, in human and --json output.
import test from 'ava';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { parseSize, EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TRANSPORT } from '../../host/sanctl';
import { FramedTransport } from '../../host/framed';
import { TransportError, CommandTransport } from '../../lib/transport';
import { FakeArray, FakeTarget } from './fake-target';
import { runSanctl, SanctlOutcome } from './run-sanctl';

/** sanctl with SANBOX_TARGET set; `open` stands in for connect() (none: nothing may be opened). */
function sanctl(argv: string[], open?: (target: string) => Promise<CommandTransport>, stdin?: PassThrough, tty = false): Promise<SanctlOutcome> {
  const refuse = async (): Promise<never> => { throw new Error('this test opens nothing'); };
  return runSanctl(argv, { connect: open ?? refuse, stdin, env: { SANBOX_TARGET: 'tcp://127.0.0.1:9' }, tty });
}

/** One array for the whole test; each sanctl run opens its own connection to it. */
function fakeArray(): { array: FakeArray; open: () => Promise<CommandTransport> } {
  const array = new FakeArray();
  return { array, open: async () => new FramedTransport(array.connect(), { target: 'fake://array' }) };
}

for (const [argv, message] of [
  [[], /no command given/],
  [['frobnicate'], /unknown command "frobnicate"/],
  [['volume', 'grow', 'x'], /unknown command "volume grow"/],
  [['--bogus', 'luns'], /Unknown option '--bogus'/],
  [['capacity'], /capacity takes <volume\|lun>/],
  [['luns', 'extra'], /luns takes no arguments/],
  [['luns', '--force'], /luns takes no --force/],
  [['volume', 'create', 'db'], /needs --size/],
  [['volume', 'create', 'db', '--size', 'lots'], /"lots" is not a size/],
  [['volume', 'create', 'db', '--size', '1GiB', '--block-size', '1000'], /512 or 4096/],
  [['volume', 'create', 'db', '--size', '1GiB', '--lun', '0'], /--lun must be an integer 1-255/],
  [['volume', 'map', 'db'], /need --lun/],
  [['volume', 'map', 'db', '--lun', '3', '--port', 'x'], /--port must be an integer/],
  [['read', 'db', '-', '--json'], /cannot also print --json/],
  [['read', 'db', 'f', '--bytes', '1', '--length', '1'], /same option/],
  [['ping', '--count', '0'], /--count must be/],
  [['volume', 'create', '42', '--size', '1MiB'], /a volume name cannot be all digits/],
  [['read', 'db', 'f', '--offset', 'x'], /--offset "x" is not a size/],
  [['write', 'db', 'f', '--offset', '1.5.2'], /--offset "1.5.2" is not a size/],
  [['stats', '--interval', 'never'], /--interval is a number of seconds/],
  [['luns', '--offset', '0'], /luns takes no --offset/],
] as [string[], RegExp][]) {
  test(`usage error, exit 2 before connecting: sanctl ${argv.join(' ')}`, async (t) => {
    const r = await sanctl(argv);
    t.is(r.code, EXIT_USAGE);
    t.regex(r.stderr, message);
    t.regex(r.stderr, /usage: sanctl/);
    t.is(r.stdout, '');
    t.deepEqual(r.connects, []);
  });
}

test('--help prints the usage on stdout and exits 0', async (t) => {
  const r = await sanctl(['--help']);
  t.is(r.code, EXIT_OK);
  t.regex(r.stdout, /usage: sanctl/);
  t.regex(r.stdout, /Exit codes: 0 ok, 1 command failed, 2 usage error, 3 connection or transport failure/);
});

test('the target comes from --target, else SANBOX_TARGET', async (t) => {
  t.deepEqual((await sanctl(['luns'])).connects, ['tcp://127.0.0.1:9']);
  t.deepEqual((await sanctl(['--target', 'tcp://10.0.0.1:1', 'luns'])).connects, ['tcp://10.0.0.1:1']);
});

test('a refused connection exits 3 with the reason', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  const { connect } = await import('../../host/connect');
  const r = await sanctl(['--target', `tcp://127.0.0.1:${port}`, 'ping'], connect);
  t.is(r.code, EXIT_TRANSPORT);
  t.regex(r.stderr, /ECONNREFUSED/);
});

test('a target URL sanctl cannot use is a usage error (exit 2)', async (t) => {
  const { connect } = await import('../../host/connect');
  const r = await sanctl(['--target', 'carrier-pigeon://loft', 'ping'], connect);
  t.is(r.code, EXIT_USAGE);
  t.regex(r.stderr, /unknown target scheme "carrier-pigeon:"/);
});

test('the array hanging up mid-command exits 3', async (t) => {
  const r = await sanctl(['luns'], async () => {
    const target = new FakeTarget();
    target.handler = () => target.hangUp();
    return new FramedTransport(target.host, { target: 'fake://hangs-up' });
  });
  t.is(r.code, EXIT_TRANSPORT);
  t.regex(r.stderr, /fake:\/\/hangs-up: the array closed the connection/);
});

test('a SCSI failure exits 1 and says the sense in words (and as JSON under --json)', async (t) => {
  const { open } = fakeArray();
  const r = await sanctl(['capacity', '7'], open);
  t.is(r.code, EXIT_FAILED);
  t.is(r.stderr, 'sanctl: ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED\n');
  const j = await sanctl(['--json', 'capacity', '7'], open);
  t.like(JSON.parse(j.stdout).error, { message: 'ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED', status: 2, sense: { key: 5, asc: 0x25, ascq: 0 } });
  const missing = await sanctl(['capacity', 'nosuch'], open);
  t.is(missing.code, EXIT_FAILED);
  t.regex(missing.stderr, /no volume named "nosuch"/);
});

test('volume create maps the new volume to the lowest LUN free on every port; list, capacity and luns show it', async (t) => {
  const { array, open } = fakeArray();
  const c = await sanctl(['volume', 'create', 'db', '--size', '4MiB'], open);
  t.is(c.code, EXIT_OK, c.stderr);
  t.is(c.stdout, 'created volume db (#0, 4 MiB, 512-byte blocks, linear), mapped to every port LUN 1\n');
  t.deepEqual([...array.luns], [[1, 0]]);
  t.is((await sanctl(['volume', 'create', 'logs', '--size', '64KiB', '--block-size', '4096', '--no-map'], open)).code, EXIT_OK);
  const list = JSON.parse((await sanctl(['--json', 'volume', 'list'], open)).stdout);
  t.like(list.volumes[0], { name: 'db', blocks: 8192, blockSize: 512, bytes: 4 << 20, mappings: [{ port: 0, lun: 1 }] });
  t.like(list.volumes[1], { name: 'logs', blocks: 16, blockSize: 4096, mappings: [] });
  t.is((await sanctl(['capacity', 'db'], open)).stdout, 'db (LUN 1): 8192 blocks of 512 bytes = 4 MiB\n');
  t.regex((await sanctl(['capacity', 'logs'], open)).stderr, /not mapped on this port/);
  const luns = await sanctl(['luns'], open);
  t.regex(luns.stdout, /^LUN\s+DEVICE\s+VOLUME\s+SIZE\n0\s+command device\n1\s+volume\s+db\s+4 MiB\n$/);
  t.is((await sanctl(['volume', 'delete', 'logs'], open)).stdout, 'deleted volume logs (#1)\n');
});

test('volume create --media resolves media by name; an unknown one is a usage error', async (t) => {
  const { open } = fakeArray();
  t.is((await sanctl(['volume', 'create', 'a', '--size', '1MiB', '--media', 'd1,d0', '--stripe', '--lun', '5'], open)).code, EXIT_OK);
  const bad = await sanctl(['volume', 'create', 'b', '--size', '1MiB', '--media', 'd9'], open);
  t.is(bad.code, EXIT_USAGE);
  t.regex(bad.stderr, /no medium "d9" \(the array has d0, d1\)/);
});

test('write a file and read it back, through files and through stdin/stdout', async (t) => {
  const { open } = fakeArray();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await sanctl(['volume', 'create', 'files', '--size', '2MiB'], open);
  const data = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 31) & 0xff));
  fs.writeFileSync(path.join(dir, 'in'), data);
  const w = await sanctl(['--json', 'write', 'files', path.join(dir, 'in')], open);
  t.is(w.code, EXIT_OK, w.stderr);
  t.like(JSON.parse(w.stdout), { lun: 1, volume: 'files', bytes: data.length, blocks: Math.ceil(data.length / 512) });
  const r = await sanctl(['read', 'files', path.join(dir, 'out'), '--bytes', String(data.length)], open);
  t.is(r.code, EXIT_OK, r.stderr);
  t.regex(r.stdout, /^read 1\.4 MiB from files in/);
  t.true(fs.readFileSync(path.join(dir, 'out')).equals(data));
  const stdin = new PassThrough();
  stdin.end(Buffer.from('from stdin'));
  t.is((await sanctl(['write', '1', '-'], open, stdin)).code, EXIT_OK);
  const out = await sanctl(['read', '1', '-', '--bytes', '10'], open);
  t.is(out.stdout, 'from stdin');
  t.regex(out.stderr, /^read 10 bytes from LUN 1/);
  const big = path.join(dir, 'big');
  fs.writeFileSync(big, Buffer.alloc(3 << 20));
  const tooBig = await sanctl(['write', 'files', big], open);
  t.is(tooBig.code, EXIT_FAILED);
  t.regex(tooBig.stderr, /does not fit in files/);
});

test('inquiry and ping, human and JSON', async (t) => {
  const { open } = fakeArray();
  const i = await sanctl(['inquiry'], open);
  t.regex(i.stdout, /^vendor\s+SANBOX\nproduct\s+FAKE ARRAY\n/);
  t.regex(i.stdout, /type\s+storage array controller \(0ch\)/);
  t.regex(i.stdout, /target port relative port\s+1/);
  t.like(JSON.parse((await sanctl(['--json', 'inquiry'], open)).stdout), { vendor: 'SANBOX', serial: 'FAKE01', lun: 0 });
  const p = JSON.parse((await sanctl(['--json', 'ping', '--count', '2'], open)).stdout);
  t.like(p, { target: 'fake://array', method: 'PING' });
  t.is(p.milliseconds.length, 2);
});

test('a progress bar on a terminal for transfers over 1 MiB, and none off a terminal', async (t) => {
  const { open } = fakeArray();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanctl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await sanctl(['volume', 'create', 'p', '--size', '4MiB'], open);
  fs.writeFileSync(path.join(dir, 'in'), Buffer.alloc(3 << 20, 1));
  const tty = await sanctl(['--json', 'write', 'p', path.join(dir, 'in')], open, undefined, true);
  t.regex(tty.stderr, /^\rwrite \[#*\s*\] \d+% [\d.]+ (KiB|MiB) of 3 MiB, .*\n$/s);
  t.like(JSON.parse(tty.stdout), { bytes: 3 << 20 }, 'stdout holds the JSON and nothing else');
  t.is((await sanctl(['write', 'p', path.join(dir, 'in')], open)).stderr, '');
  t.is((await sanctl(['read', 'p', path.join(dir, 'out'), '--bytes', '1MiB'], open, undefined, true)).stderr, '', '1 MiB is not over 1 MiB');
});

test('sizes: binary and decimal units', (t) => {
  t.is(parseSize('1GiB'), 2 ** 30);
  t.is(parseSize('256M'), 256 * 2 ** 20);
  t.is(parseSize('1.5KiB'), 1536);
  t.is(parseSize('4096'), 4096);
  t.is(parseSize('2GB'), 2e9);
  t.throws(() => parseSize('1 GiBs'));
  t.throws(() => parseSize('-1'));
});

test('TransportError codes other than BAD_TARGET exit 3', async (t) => {
  const r = await sanctl(['luns'], async () => { throw new TransportError('fake: no route', 'CONNECT'); });
  t.is(r.code, EXIT_TRANSPORT);
  t.is(r.stderr, 'sanctl: fake: no route\n');
});
