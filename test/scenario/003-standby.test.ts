// Document 003, embodiment 7 through both arrays' firmware on one virtual clock: a remote pair of mode
// `delayed`. The standby (B) holds the primary's writes in its buffer for synchronization and writes
// them to its volume only at a restart enabling point (REMOTE CHANGE restart point: the delay data
// reflecting command); when the operation array (A) is lost and B fails over, B's volume is exactly
// the state at the last restart point. Flowchart steps: Fig. 24 (S420-S425, held), Fig. 26
// (S460-S468, reflected), Fig. 27 (S480-S485, discarded).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { startSites, untilRemote, type Sites } from '../remote/sites';
import { pattern } from '../harness/env';
import { runSanctl } from '../host/run-sanctl';
import { FailoverMonitor, restartPoint } from '../../host/failover';
import { ImageSender, loadImage } from '../../host/image';
import type { ScsiClient } from '../../host/client';

const BS = 512;

/** A's volume as B must show it: the bytes the host wrote, applied to a model. */
class Model {
  readonly bytes: Buffer;
  constructor(blocks: number) { this.bytes = Buffer.alloc(blocks * BS); }
  write(lba: number, data: Buffer): void { data.copy(this.bytes, lba * BS); }
  snapshot(): Buffer { return Buffer.from(this.bytes); }
}

async function delayedPair(label: string, o: { relay?: boolean } = {}): Promise<Sites> {
  const s = await startSites(label, o.relay ? { relay: { nearKm: 10, farKm: 1000 }, blocks: 2048 } : { directKm: 100, blocks: 2048 });
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: o.relay ? 'relay0' : undefined, mode: 'delayed' });
  const p = await untilRemote(s, (x) => x.state === 'pair', 'pair (the initial copy, then the first synchronization ID)');
  if (p.mode !== 'delayed') throw new Error(`mode ${p.mode}`);
  return s;
}

async function write(s: Sites, m: Model, lba: number, blocks: number, seed: number): Promise<void> {
  const d = Buffer.from(pattern(blocks * BS, seed));
  await s.a.write(1, lba, d);
  m.write(lba, d);
}

test('embodiment 7 (Figs. 24, 26, 27): writes, restart point, more writes, A powered off, B fails over: B is the restart point exactly', async (t) => {
  const s = await delayedPair('003-standby-direct');
  try {
    const m = new Model(2048);
    await write(s, m, 0, 16, 1); // S420-S425 at B: held, not on its volume
    await write(s, m, 100, 64, 2);
    t.true((await s.b.read(1, 0, 16)).equals(Buffer.alloc(16 * BS)), 'S425: held in the buffer for synchronization, B\'s volume untouched');
    t.like((await s.b.remoteStatus())[0], { role: 'secondary', mode: 'delayed', state: 'pair' });
    await s.a.remoteChange(s.va, 'restart-point'); // S440/S441 -> S460-S468 at B
    const atPoint = m.snapshot();
    t.true((await s.b.read(1, 0, 2048)).equals(atPoint), 'S468: at the restart point B holds every write before it');
    await write(s, m, 8, 16, 3); // after the restart point: held at B
    await write(s, m, 1000, 32, 4);
    s.emu.array('A').powerFail('the operation array is lost (test)');
    await s.b.remoteChange(s.vb, 'failover'); // S480-S485
    const b = await s.b.read(1, 0, 2048);
    t.true(b.equals(atPoint), 'S482: the writes after the restart point are discarded; B is the restart point exactly');
    t.false(b.equals(m.bytes));
    const st = (await s.b.remoteStatus())[0];
    t.is(st.state, 'failover');
    await s.b.write(1, 0, Buffer.from(pattern(BS, 9))); // the hosts' volume now
  } finally {
    await s.emu.stop();
  }
});

test('[0190]/[0191] through the link: overlapping writes of one sync ID are written once at the reflect, the last by issuing ID (trace: remoteReflect runs)', async (t) => {
  const s = await startSites('003-standby-overlap', { directKm: 100, blocks: 2048, trace: true });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'delayed' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    const m = new Model(2048);
    // Send commands are whole 8 KiB pieces (16 blocks): 0-31, then 16-31 over it, then 0-15 over both.
    await write(s, m, 0, 32, 11);
    await write(s, m, 16, 16, 12);
    await write(s, m, 0, 16, 13);
    await s.a.remoteChange(s.va, 'restart-point');
    t.true((await s.b.read(1, 0, 2048)).equals(m.bytes));
  } finally {
    await s.emu.stop();
  }
  const records = fs.readFileSync(path.join(s.dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const runs = records.filter((r) => r.type === 'remoteReflect').map((r) => [r.issuingId, r.lba, r.blocks]);
  const ids = records.filter((r) => r.type === 'remoteDelay' && r.held).map((r) => r.issuingId);
  t.is(ids.length, 3, 'S425: all three held');
  t.deepEqual(runs, [[ids[1], 16, 16], [ids[2], 0, 16]], 'each block written once: the first write is covered whole by the two after it');
});

test('a restart interval longer than the standby\'s unit: BUSY, the primary\'s bounded retries suspend the pair (remote); B stays at its last restart point', async (t) => {
  const s = await delayedPair('003-standby-full');
  try {
    const m = new Model(2048);
    await write(s, m, 0, 16, 21);
    await s.a.remoteChange(s.va, 'restart-point');
    const atPoint = m.snapshot();
    // 24 entries: the 25th write after the point finds none (SYNC_FULL -> RECEIVED BUSY).
    let refused: Error | undefined;
    for (let i = 0; i < 30 && !refused; i++) {
      await write(s, m, 16 * (i % 100), 16, 100 + i).catch((e) => { refused = e; });
    }
    t.truthy(refused, 'a host write of the pair fails once the standby cannot hold it');
    t.regex(String(refused?.message), /COMMUNICATION TIMEOUT|ABORTED/);
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'remote', 'the standby refused (BUSY to the last retry)');
    await s.b.remoteChange(s.vb, 'failover');
    t.true((await s.b.read(1, 0, 2048)).equals(atPoint), 'nothing after the restart point reached B\'s volume');
  } finally {
    await s.emu.stop();
  }
});

test('embodiment 7 through a relay: restart points reach the standby 1,000 km past it; after failover B is the last one', async (t) => {
  const s = await delayedPair('003-standby-relay', { relay: true });
  try {
    const m = new Model(2048);
    await write(s, m, 40, 40, 31);
    await s.a.remoteChange(s.va, 'restart-point');
    await write(s, m, 60, 100, 32);
    await s.a.remoteChange(s.va, 'restart-point');
    const atPoint = m.snapshot();
    await write(s, m, 0, 64, 33);
    s.emu.array('A').powerFail('site A lost (test)');
    await s.b.remoteChange(s.vb, 'failover');
    t.true((await s.b.read(1, 0, 2048)).equals(atPoint));
  } finally {
    await s.emu.stop();
  }
});

test('the host monitoring unit: heartbeats answered, nothing happens; A powered off, the standby fails over after 3 misses; B at the restart point', async (t) => {
  const s = await delayedPair('003-standby-monitor');
  try {
    const m = new Model(2048);
    await write(s, m, 0, 64, 41);
    await restartPoint(s.a, s.va);
    const atPoint = m.snapshot();
    await write(s, m, 64, 64, 42);
    const clock = { now: () => s.emu.driver('B').now() / 1e6, sleep: (ms: number) => s.emu.advance(ms) };
    const quiet = await new FailoverMonitor(s.a, s.b, [s.vb], { ...clock, intervalMs: 20, timeoutMs: 10, maxBeats: 5 }).run();
    t.is(quiet, undefined, 'five heartbeats answered: no failover');
    t.is((await s.b.remoteStatus())[0].state, 'pair');
    const monitor = new FailoverMonitor(s.a, s.b, [s.vb], { ...clock, intervalMs: 20, timeoutMs: 10, misses: 3 });
    const watching = monitor.run();
    await s.emu.advance(30);
    s.emu.array('A').powerFail('the operation array is lost (test)');
    const report = await watching;
    t.truthy(report);
    t.regex(report!.reason, /session closed/, 'the powered-off array\'s session is gone');
    t.true(report!.failedOverAt - report!.lostAt < 3 * 20 + 10, `failed over ${report!.failedOverAt - report!.lostAt} ms after the first miss`);
    t.is((await s.b.remoteStatus())[0].state, 'failover');
    t.true((await s.b.read(1, 0, 2048)).equals(atPoint));
    t.throws(() => new FailoverMonitor(s.a, s.b, []), { message: /no standby volume/ });
    t.throws(() => new FailoverMonitor(s.a, s.b, [1], { misses: 0 }), { message: /misses must be positive/ });
  } finally {
    await s.emu.stop();
  }
});

test('embodiment 9 (Figs. 37-39): the execution image goes with the restart point, only changed pages; the standby host restarts from the last one', async (t) => {
  const s = await delayedPair('003-standby-image');
  try {
    const area = { client: s.a, lun: 1, lba: 1024, blockSize: BS };
    const sender = new ImageSender(area, () => restartPoint(s.a, s.va));
    const image = Buffer.from(pattern(64 * 1024, 51)); // 16 pages of 4 KiB
    const first = await sender.transfer(image);
    t.like(first, { generation: 1, pagesSent: 16 });
    image.fill(0xAB, 4096 * 3, 4096 * 4); // page 3
    image.fill(0xCD, 4096 * 10, 4096 * 12); // pages 10, 11
    const second = await sender.transfer(image);
    t.like(second, { generation: 2, pagesSent: 3, bytesSent: 3 * 4096, writes: 3 }, 'only the pages changed since the last transfer (two runs and the header)');
    const atPoint = Buffer.from(image);
    image.fill(0xEE, 0, 4096 * 8); // changed after the restart point, its pages written but no restart point follows
    await s.a.write(1, 1024 + 1, image.subarray(0, 4096 * 8));
    s.emu.array('A').powerFail('the operation host\'s site is lost (test)');
    await s.b.remoteChange(s.vb, 'failover');
    const loaded = await loadImage({ ...area, client: s.b });
    t.is(loaded.generation, 2);
    t.true(loaded.image.equals(atPoint), 'the standby host restarts from the image of the last restart point');
    await t.throwsAsync(loadImage({ ...area, client: s.b, lba: 0 }), { message: /no execution image at block 0/ });
    await t.throwsAsync(sender.transfer(Buffer.alloc(100)), { message: /not a whole number of 4096-byte pages/ });
  } finally {
    await s.emu.stop();
  }
});

test('sanctl restart-point <volume> | --all, --mode delayed; bad input', async (t) => {
  const s = await startSites('003-standby-sanctl', { directKm: 100, blocks: 2048 });
  try {
    const on = (array: string) => ({ connect: async () => s.emu.connect(array), sleep: (ms: number) => s.emu.advance(ms), now: () => s.emu.driver(array).now() / 1e6 });
    const created = await runSanctl(['--json', 'remote', 'create', 'vol', 'B:mirror', '--mode', 'delayed', '--wait'], on('A'));
    t.is(created.code, 0, created.stderr);
    t.like(JSON.parse(created.stdout), { mode: 'delayed', state: 'pair' });
    await s.a.write(1, 0, Buffer.from(pattern(8192, 61)));
    const one = await runSanctl(['restart-point', 'vol'], on('A'));
    t.is(one.code, 0, one.stderr);
    t.regex(one.stdout, /restart point of vol: issuing ID \d+/);
    t.true((await s.b.read(1, 0, 16)).equals(Buffer.from(pattern(8192, 61))));
    const all = await runSanctl(['--json', 'restart-point', '--all'], on('A'));
    t.deepEqual(JSON.parse(all.stdout), { restartPoint: [s.va] });
    t.is((await runSanctl(['restart-point'], on('A'))).code, 2, 'a volume or --all');
    t.is((await runSanctl(['restart-point', 'vol', '--all'], on('A'))).code, 2);
    const secondary = await runSanctl(['restart-point', 'mirror'], on('B'));
    t.is(secondary.code, 1);
    t.regex(secondary.stderr, /REMOTE PAIR STATE DOES NOT ALLOW THIS/, 'only the primary of a delayed pair takes a restart point');
    t.is((await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--mode', 'none'], on('A'))).code, 2);
  } finally {
    await s.emu.stop();
  }
});

test('the host monitoring unit\'s bound: a heartbeat that never answers is a miss after timeoutMs (stand-in clients on a test clock)', async (t) => {
  let now = 0;
  const clock = { now: () => now, sleep: async (ms: number) => { now += ms; } };
  const failedOver: number[] = [];
  const silent = { testUnitReady: () => new Promise<void>(() => undefined) } as unknown as ScsiClient;
  const standby = { remoteChange: async (v: number, op: string) => { if (op === 'failover') failedOver.push(v); } } as unknown as ScsiClient;
  const report = await new FailoverMonitor(silent, standby, [3, 5], { ...clock, intervalMs: 100, timeoutMs: 40, misses: 2 }).run();
  t.like(report, { reason: 'no answer to TEST UNIT READY within 40 ms', lostAt: 0, failedOverAt: 140, beats: 2, volumes: [3, 5] });
  t.deepEqual(failedOver, [3, 5]);
});
