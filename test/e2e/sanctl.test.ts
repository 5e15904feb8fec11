// sanctl against the real firmware: every behaviour test/host/sanctl.test.ts checks against the
// TypeScript stand-in (fake-target.ts), again through an Emulator with two channel IOPs
// (dualChannelTopology), once over an in-process queue port on the second channel IOP and once over
// TCP on the first. Also what the stand-in cannot show: reads cut short by a medium error or a
// power failure leave the destination as it was, --offset against a real volume's capacity, stats
// rates from the array's own counters, names that look like LUNs refused by both ends.
import test, { ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { connect } from '../../host/connect';
import { EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TRANSPORT } from '../../host/sanctl';
import { runSanctl, SanctlOutcome, SanctlRunOptions } from '../host/run-sanctl';
import { tempDir, startDualChannel, pattern, senseOf } from '../harness/env';
import type { Emulator } from '../../harness';

const MiB = 1 << 20;
/** The label chunk at the start of every medium, never allocated to a volume. */
const LABEL_SECTORS = (64 << 10) / 512;
const KINDS = ['inproc', 'tcp'] as const;
type Kind = typeof KINDS[number];

interface Bench {
  emu: Emulator;
  dir: string;
  target: string;
  /** The array's index of the port sanctl uses. */
  port: number;
  ctl(argv: string[], o?: SanctlRunOptions): Promise<SanctlOutcome>;
}

let arrays = 0;

/** A fresh array (a name of its own: tests run at once in this process) and sanctl on one of its ports. */
async function bench(t: ExecutionContext, kind: Kind): Promise<Bench> {
  const dir = tempDir(`sanctl-${kind}`);
  const emu = await startDualChannel({ dir, name: `sanctl${++arrays}` });
  t.teardown(() => emu.stop('powerFail'));
  const portName = kind === 'inproc' ? 'q1' : 'fe0';
  const target = emu.array().targets.find((p) => p.port === portName)!.target;
  const port = emu.array().spec.ports.findIndex((p) => p.name === portName);
  return { emu, dir, target, port, ctl: (argv, o = {}) => runSanctl(['--target', target, ...argv], o) };
}

const ok = (t: ExecutionContext, r: SanctlOutcome): void => { t.is(r.code, EXIT_OK, r.stderr); };

/** Resolves once `condition()` holds, looked at every few milliseconds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

for (const kind of KINDS) {
  test(`${kind}: a SCSI failure exits 1 with the sense in words (and as JSON under --json)`, async (t) => {
    const b = await bench(t, kind);
    const r = await b.ctl(['capacity', '7']);
    t.is(r.code, EXIT_FAILED);
    t.is(r.stderr, 'sanctl: ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED\n');
    const j = await b.ctl(['--json', 'capacity', '7']);
    t.like(JSON.parse(j.stdout).error, { message: 'ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED', status: 2, sense: { key: 5, asc: 0x25, ascq: 0 } });
    const missing = await b.ctl(['capacity', 'nosuch']);
    t.is(missing.code, EXIT_FAILED);
    t.regex(missing.stderr, /no volume named "nosuch"/);
  });

  test(`${kind}: volume create maps to the lowest LUN free on every port; list, capacity, luns and delete show it`, async (t) => {
    const b = await bench(t, kind);
    const c = await b.ctl(['volume', 'create', 'db', '--size', '4MiB']);
    ok(t, c);
    t.is(c.stdout, 'created volume db (#0, 4 MiB, 512-byte blocks, linear), mapped to every port LUN 1\n');
    ok(t, await b.ctl(['volume', 'create', 'logs', '--size', '64KiB', '--block-size', '4096', '--no-map']));
    const list = JSON.parse((await b.ctl(['--json', 'volume', 'list'])).stdout);
    t.like(list.volumes[0], { name: 'db', blocks: 8192, blockSize: 512, bytes: 4 << 20 });
    t.true(list.volumes[0].mappings.some((m: { port: number; lun: number }) => m.port === b.port && m.lun === 1), 'this port among every port');
    t.true(list.volumes[0].mappings.every((m: { lun: number }) => m.lun === 1));
    t.like(list.volumes[1], { name: 'logs', blocks: 16, blockSize: 4096, mappings: [] });
    t.is((await b.ctl(['capacity', 'db'])).stdout, 'db (LUN 1): 8192 blocks of 512 bytes = 4 MiB\n');
    t.regex((await b.ctl(['capacity', 'logs'])).stderr, /not mapped on this port/);
    const luns = await b.ctl(['luns']);
    t.regex(luns.stdout, /^LUN\s+DEVICE\s+VOLUME\s+SIZE\n0\s+command device\n1\s+volume\s+db\s+4 MiB\n$/);
    t.is((await b.ctl(['volume', 'delete', 'logs'])).stdout, 'deleted volume logs (#1)\n');
    const mapped = await b.ctl(['volume', 'delete', 'db']);
    t.is(mapped.code, EXIT_FAILED);
    t.regex(mapped.stderr, /VOLUME IS MAPPED/);
    ok(t, await b.ctl(['volume', 'delete', 'db', '--force']));
    t.is((await b.ctl(['volume', 'list'])).stdout, 'no volumes\n');
  });

  test(`${kind}: volume create --media resolves media by name; an unknown one is a usage error`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'a', '--size', '1MiB', '--media', 'd1,d0', '--stripe', '--lun', '5']));
    const list = JSON.parse((await b.ctl(['--json', 'volume', 'list'])).stdout);
    t.like(list.volumes[0], { name: 'a', placement: 'striped', media: [1, 0] });
    t.true(list.volumes[0].mappings.some((m: { port: number; lun: number }) => m.port === b.port && m.lun === 5));
    const bad = await b.ctl(['volume', 'create', 'b', '--size', '1MiB', '--media', 'd9']);
    t.is(bad.code, EXIT_USAGE);
    t.regex(bad.stderr, /no medium "d9" \(the array has d0, d1\)/);
  });

  test(`${kind}: a volume name of digits only is refused by sanctl before connecting, and by the firmware`, async (t) => {
    const b = await bench(t, kind);
    const r = await b.ctl(['volume', 'create', '42', '--size', '1MiB'], { connect: async () => { throw new Error('nothing may be opened'); } });
    t.is(r.code, EXIT_USAGE);
    t.regex(r.stderr, /a volume name cannot be all digits \("42" would read as LUN 42\)/);
    const session = await connect(b.target);
    t.teardown(() => session.close());
    const client = new ScsiClient(session);
    const sense = await senseOf(client.createVolume({ name: '42', blockSize: 512, blocks: 2048, media: [], placement: 'linear' }));
    t.like(sense, { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x26, ascq: 0 });
    // A name with a digit in it is a name.
    ok(t, await b.ctl(['volume', 'create', 'vol42', '--size', '1MiB']));
    ok(t, await b.ctl(['capacity', 'vol42']));
  });

  test(`${kind}: write a file and read it back, through files and through stdin/stdout`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'files', '--size', '2MiB']));
    const data = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 31) & 0xff));
    fs.writeFileSync(path.join(b.dir, 'in'), data);
    const w = await b.ctl(['--json', 'write', 'files', path.join(b.dir, 'in')]);
    ok(t, w);
    t.like(JSON.parse(w.stdout), { lun: 1, volume: 'files', offset: 0, bytes: data.length, blocks: Math.ceil(data.length / 512) });
    const r = await b.ctl(['read', 'files', path.join(b.dir, 'out'), '--bytes', String(data.length)]);
    ok(t, r);
    t.regex(r.stdout, /^read 1\.4 MiB from files in/);
    t.true(fs.readFileSync(path.join(b.dir, 'out')).equals(data));
    t.false(fs.existsSync(path.join(b.dir, 'out.partial')));
    // --length is another name for --bytes.
    ok(t, await b.ctl(['read', 'files', path.join(b.dir, 'out2'), '--length', '1000']));
    t.true(fs.readFileSync(path.join(b.dir, 'out2')).equals(data.subarray(0, 1000)));
    const stdin = new PassThrough();
    stdin.end(Buffer.from('from stdin'));
    ok(t, await b.ctl(['write', '1', '-'], { stdin }));
    const out = await b.ctl(['read', '1', '-', '--bytes', '10']);
    t.is(out.stdout, 'from stdin');
    t.regex(out.stderr, /^read 10 bytes from LUN 1/);
    const big = path.join(b.dir, 'big');
    fs.writeFileSync(big, Buffer.alloc(3 << 20));
    const tooBig = await b.ctl(['write', 'files', big]);
    t.is(tooBig.code, EXIT_FAILED);
    t.regex(tooBig.stderr, /does not fit in files/);
  });

  test(`${kind}: --offset writes and reads at a byte offset, block-aligned and inside the volume`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'off', '--size', '4MiB']));
    const head = pattern(64 << 10, 1);
    const tail = pattern(64 << 10, 2);
    fs.writeFileSync(path.join(b.dir, 'head'), head);
    fs.writeFileSync(path.join(b.dir, 'tail'), tail);
    ok(t, await b.ctl(['write', 'off', path.join(b.dir, 'head')]));
    const w = await b.ctl(['write', 'off', path.join(b.dir, 'tail'), '--offset', '1MiB']);
    ok(t, w);
    t.regex(w.stdout, /^wrote 64 KiB to off at offset 1 MiB in/);
    ok(t, await b.ctl(['read', 'off', path.join(b.dir, 'got'), '--offset', '1MiB', '--bytes', '64KiB']));
    t.true(fs.readFileSync(path.join(b.dir, 'got')).equals(tail));
    ok(t, await b.ctl(['read', 'off', path.join(b.dir, 'got0'), '--bytes', '64KiB']));
    t.true(fs.readFileSync(path.join(b.dir, 'got0')).equals(head), 'the write at 1 MiB left LBA 0 alone');
    // Without --bytes a read runs from the offset to the end.
    const rest = await b.ctl(['--json', 'read', 'off', path.join(b.dir, 'rest'), '--offset', '3MiB']);
    t.like(JSON.parse(rest.stdout), { offset: 3 << 20, bytes: 1 << 20 });
    for (const [argv, message] of [
      [['read', 'off', '-', '--offset', '1000'], /--offset 1000 is not a multiple of off's 512-byte blocks/],
      [['read', 'off', '-', '--offset', '4MiB'], /--offset 4 MiB is at or past the end of off \(4 MiB\)/],
      [['read', 'off', '-', '--offset', '3MiB', '--bytes', '2MiB'], /2 MiB from offset 3 MiB reach past the end of off \(4 MiB\)/],
      [['write', 'off', path.join(b.dir, 'tail'), '--offset', '4MiB'], /--offset 4 MiB is at or past the end of off/],
      [['read', 'off', '-', '--offset', 'far'], /--offset "far" is not a size/],
    ] as [string[], RegExp][]) {
      const r = await b.ctl(argv);
      t.is(r.code, EXIT_USAGE, argv.join(' '));
      t.regex(r.stderr, message);
    }
    const over = await b.ctl(['write', 'off', path.join(b.dir, 'tail'), '--offset', `${4 * MiB - 512}`]);
    t.is(over.code, EXIT_FAILED);
    t.regex(over.stderr, /tail \(64 KiB\) at offset 4193792 bytes does not fit in off \(4 MiB\)/);
  });

  test(`${kind}: a read that fails leaves the destination as it was; one cut short says how many bytes are good and keeps them in <file>.partial`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'cut', '--size', '16MiB', '--media', 'd0']));
    const data = pattern(16 * MiB, 5);
    fs.writeFileSync(path.join(b.dir, 'in'), data);
    ok(t, await b.ctl(['write', 'cut', path.join(b.dir, 'in')]));
    await b.emu.flush();
    const dest = path.join(b.dir, 'precious');
    fs.writeFileSync(dest, 'the old contents');
    // Out of range: refused before anything is read; the destination is not even opened.
    const range = await b.ctl(['read', 'cut', dest, '--bytes', '17MiB']);
    t.is(range.code, EXIT_USAGE);
    t.is(fs.readFileSync(dest, 'utf8'), 'the old contents');
    t.false(fs.existsSync(`${dest}.partial`));
    // A medium error 8 MiB in: the reads before it are good, in order. The volume's blocks are
    // staged from d0 once the cache has let them go; its first extent starts after the medium's
    // label chunk (docs/scsi.md: the first 64 KiB of every medium).
    const volume = (await b.ctl(['--json', 'volume', 'list'])).stdout;
    t.like(JSON.parse(volume).volumes[0], { media: [0] });
    b.emu.array().inject(`d0 read error at ${LABEL_SECTORS + (8 * MiB) / 512}`);
    await evictCache(b);
    const failed = await b.ctl(['read', 'cut', dest]);
    t.is(failed.code, EXIT_FAILED);
    t.regex(failed.stderr, new RegExp(`^sanctl: read cut short: ${8 * MiB} of ${16 * MiB} bytes arrived and are in ${escape(dest)}\\.partial; ${escape(dest)} was not touched\\nsanctl: MEDIUM ERROR: UNRECOVERED READ ERROR`));
    t.is(fs.readFileSync(dest, 'utf8'), 'the old contents');
    t.true(fs.readFileSync(`${dest}.partial`).equals(data.subarray(0, 8 * MiB)));
    const json = await b.ctl(['--json', 'read', 'cut', dest]);
    t.like(JSON.parse(json.stdout).error, { partial: { goodBytes: 8 * MiB, totalBytes: 16 * MiB, file: `${dest}.partial` } });
    b.emu.array().inject('d0 heal');
    // A power failure in the middle of a slow read: a transport failure (exit 3), the same promise.
    fs.rmSync(`${dest}.partial`);
    await evictCache(b);
    b.emu.array().inject('d0 slow 200');
    const reading = b.ctl(['read', 'cut', dest]);
    const before = b.emu.array().stats()[A.STAT_READ_BYTES];
    await until(() => b.emu.array().stats()[A.STAT_READ_BYTES] - before >= MiB);
    await b.emu.stop('powerFail');
    const cut = await reading;
    t.is(cut.code, EXIT_TRANSPORT, cut.stderr);
    const m = /^sanctl: read cut short: (\d+) of (\d+) bytes arrived/.exec(cut.stderr);
    t.truthy(m, cut.stderr);
    const good = Number(m![1]);
    t.true(good >= MiB && good < 16 * MiB);
    t.is(fs.readFileSync(dest, 'utf8'), 'the old contents');
    t.true(fs.readFileSync(`${dest}.partial`).equals(data.subarray(0, good)));
  });

  test(`${kind}: stats gives rates over an interval from the array's counters, then the cache and the totals`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'st', '--size', '1MiB']));
    const session = await connect(b.target);
    t.teardown(() => session.close());
    const client = new ScsiClient(session);
    // The interval: exactly 16 writes of 4 KiB and 32 reads, over 2 s of a clock the test keeps.
    let clock = 1000;
    const sleep = async (): Promise<void> => {
      for (let i = 0; i < 16; i++) await client.write(1, i * 8, pattern(4096, i));
      for (let i = 0; i < 32; i++) await client.read(1, (i % 16) * 8, 8);
      clock += 2000;
    };
    const r = await b.ctl(['--json', 'stats', '--interval', '2'], { now: () => clock, sleep });
    ok(t, r);
    const s = JSON.parse(r.stdout);
    t.is(s.intervalS, 2);
    // 50 commands: the 48 of the interval, the client's READ CAPACITY before its first write, and
    // the second STATISTICS itself. MB/s to three decimals.
    t.like(s.rates, { iops: 25, readIops: 16, writeIops: 8, readMBps: 0.066, writeMBps: 0.033, readHitRate: 1, errorsPerS: 0 });
    t.true(s.rates.latencyUs > 0);
    t.true(s.cache.slots > 0);
    t.is(s.iops.length, 3);
    const human = await b.ctl(['stats', '--interval', '1'], { now: () => clock, sleep: async () => { clock += 1000; } });
    ok(t, human);
    t.regex(human.stdout, /^RATES OVER 1\.00 S\s+PER SECOND\ncommands \(IOPS\)\s+1\n/);
    t.regex(human.stdout, /\nCACHE\s+SLOTS\s+FREE/);
    t.regex(human.stdout, /\nCOUNTER \(TOTAL\)\s+channel0\s+channel1\s+disk2\n/);
    const totals = await b.ctl(['--json', 'stats', '--interval', '0']);
    t.is(JSON.parse(totals.stdout).rates, undefined);
    t.is((await b.ctl(['stats', '--interval', 'soon'])).code, EXIT_USAGE);
  });

  test(`${kind}: inquiry and ping, human and JSON`, async (t) => {
    const b = await bench(t, kind);
    const i = await b.ctl(['inquiry']);
    t.regex(i.stdout, /^vendor\s+SANBOX\nproduct\s+SANBOX ARRAY\n/);
    t.regex(i.stdout, /type\s+storage array controller \(0ch\)/);
    t.regex(i.stdout, new RegExp(`target port relative port\\s+${b.port + 1}\\n`));
    t.like(JSON.parse((await b.ctl(['--json', 'inquiry'])).stdout), { vendor: 'SANBOX', lun: 0 });
    const p = JSON.parse((await b.ctl(['--json', 'ping', '--count', '2'])).stdout);
    t.like(p, { target: b.target, method: kind === 'tcp' ? 'PING' : 'TEST UNIT READY' });
    t.is(p.milliseconds.length, 2);
  });

  test(`${kind}: a progress bar on a terminal for transfers over 1 MiB, and none off a terminal`, async (t) => {
    const b = await bench(t, kind);
    ok(t, await b.ctl(['volume', 'create', 'p', '--size', '4MiB']));
    fs.writeFileSync(path.join(b.dir, 'in'), Buffer.alloc(3 << 20, 1));
    const tty = await b.ctl(['--json', 'write', 'p', path.join(b.dir, 'in')], { tty: true });
    ok(t, tty);
    t.regex(tty.stderr, /^(\rwrite \[#*\s*\] \d+% [\d.]+ (KiB|MiB) of 3 MiB, [^\n]*)*\n?$/s);
    t.like(JSON.parse(tty.stdout), { bytes: 3 << 20 }, 'stdout holds the JSON and nothing else');
    t.is((await b.ctl(['write', 'p', path.join(b.dir, 'in')])).stderr, '');
    t.is((await b.ctl(['read', 'p', path.join(b.dir, 'out'), '--bytes', '1MiB'], { tty: true })).stderr, '', '1 MiB is not over 1 MiB');
  });
}

test('data written through one channel IOP is read back identical through the other', async (t) => {
  const b = await bench(t, 'tcp');
  ok(t, await b.ctl(['volume', 'create', 'both', '--size', '8MiB', '--port', 'all', '--lun', '3']));
  const data = pattern(6 * MiB, 8);
  fs.writeFileSync(path.join(b.dir, 'in'), data);
  ok(t, await b.ctl(['write', 'both', path.join(b.dir, 'in')]));
  const other = b.emu.array().targets.find((p) => p.port === 'q1')!.target;
  const r = await runSanctl(['--target', other, 'read', '3', path.join(b.dir, 'out'), '--bytes', String(data.length)]);
  ok(t, r);
  t.true(fs.readFileSync(path.join(b.dir, 'out')).equals(data));
});

test('--version prints the package version', async (t) => {
  const r = await runSanctl(['--version']);
  t.is(r.code, EXIT_OK);
  t.is(r.stdout, `sanctl ${JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version}\n`);
});

/** Pushes a volume's blocks out of the cache: dirty data destaged, then the cache filled with a scratch volume's writes. */
async function evictCache(b: Bench): Promise<void> {
  await b.emu.flush();
  const session = await connect(b.target);
  try {
    const client = new ScsiClient(session);
    let scratch = (await client.listVolumes()).find((v) => v.name === 'evict');
    if (!scratch) {
      scratch = await client.createVolume({ name: 'evict', blockSize: 512, blocks: (24 * MiB) / 512, media: [1], placement: 'linear' });
      await client.mapVolume(scratch.number, scsi.ALL_PORTS, 200);
    }
    // The small topology's cache is 8 MiB: 24 MiB written to the scratch volume take every slot.
    // (Writes, not reads: a chunk never written reads as zeros without a cache slot.)
    const block = Buffer.alloc(256 << 10, 0x5a);
    for (let lba = 0; lba < (24 * MiB) / 512; lba += block.length / 512) await client.write(200, lba, block);
  } finally {
    await session.close();
  }
  await b.emu.flush();
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
