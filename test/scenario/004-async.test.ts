// Document 004's asynchronous remote copy applied in update order (Fig. 10: "completion of the update
// is reported to a server without waiting for reflecting information on the remote site ... sorted by
// the time sequence at the remote site and copied with the sequence of update guaranteed"), with
// consistency groups, and resume by difference bitmap: through both arrays' firmware
// (build/controller.debug.wasm) on one virtual clock. docs/remote.md, "Asynchronous copy (004)".
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { startSites, untilRemote, restartSites, type Sites } from '../remote/sites';
import { pattern, createVolume } from '../harness/env';
import { remoteCreateParameters } from '../../lib/remote';
import type { RemoteStatus } from '../../lib/remote';
import { runSanctl } from '../host/run-sanctl';

const TRACK = 64 * 1024;

/** A second volume on each array of the rig: "vol2" on A and "mirror2" on B, both LUN 2. */
async function secondVolumes(s: Sites): Promise<{ va2: number; vb2: number }> {
  const va2 = await createVolume(s.emu.connect('A'), { name: 'vol2', blocks: 4096, blockSize: 512 }, 2);
  const vb2 = await createVolume(s.emu.connect('B'), { name: 'mirror2', blocks: 4096, blockSize: 512 }, 2);
  return { va2, vb2 };
}

async function until(s: Sites, volume: number, ok: (p: RemoteStatus) => boolean, what: string, boundMs = 60_000): Promise<RemoteStatus> {
  for (let t = 0; t < boundMs; t += 5) {
    const p = await s.a.remoteOf(volume);
    if (ok(p)) return p;
    await s.emu.advance(5);
  }
  throw new Error(`volume ${volume}'s remote pair never reached ${what} within ${boundMs} ms of virtual time`);
}

const drained = (p: RemoteStatus) => p.journalEntries === 0 && p.inFlight === 0;

async function sameBytes(s: Sites, lun: number): Promise<boolean> {
  return (await s.a.read(lun, 0, 4096)).equals(await s.b.read(lun, 0, 4096));
}

test('004 Fig. 10: writes across the two volumes of a consistency group, over a lossy reordering link, are applied at B in issuing-ID order, gaps held back; both mirrors byte-identical once drained', async (t) => {
  const s = await startSites('004-group', { directKm: 1000, seed: 21, loss: 0.03, trace: true });
  try {
    for (const l of s.emu.network.links) Object.assign(l.spec, { reorder: 0.3, duplicate: 0.02, jitterNs: 200_000 });
    const { va2 } = await secondVolumes(s);
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'async', group: 7, timeoutMs: 40, retries: 30 });
    await s.a.remoteCreate({ volume: va2, to: 'B', toVolume: 'mirror2', mode: 'async', group: 7, timeoutMs: 40, retries: 30 });
    await until(s, s.va, (p) => p.state === 'pair', 'pair');
    await until(s, va2, (p) => p.state === 'pair', 'pair');
    const copied = (await s.a.remoteOf(va2)).issuingId;
    t.is((await s.a.remoteOf(s.va)).issuingId, copied, 'the group\'s pairs share one issuing-ID counter');
    t.is((await s.a.remoteOf(s.va)).group, 7);
    // Overlapping writes alternating between the volumes: the order matters for the bytes and for the group's state.
    for (let i = 0; i < 24; i++) await s.a.write(1 + (i % 2), (i * 97) % 3800, pattern(16 * 1024 + (i % 4) * 4096, 300 + i));
    const p1 = await until(s, s.va, drained, 'drained');
    const p2 = await until(s, va2, drained, 'drained');
    t.is(p1.state, 'pair', `not suspended (${p1.reason})`);
    t.is(p2.state, 'pair', `not suspended (${p2.reason})`);
    t.true(await sameBytes(s, 1), 'mirror equals vol');
    t.true(await sameBytes(s, 2), 'mirror2 equals vol2');
    const lost = s.emu.network.links.reduce((n, l) => n + l.counters.lost, 0);
    t.true(lost > 0, 'packets were lost');
    t.true((await s.b.remoteStatus())[0].heldEarly > 0, 'B held WRITEs that came before their predecessor (a gap)');
  } finally {
    await s.emu.stop();
  }
  const records = fs.readFileSync(path.join(s.dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const applied = records.filter((r) => r.array === 'B' && r.type === 'remoteApply' && r.status === 0).map((r) => r.issuingId as number);
  const pairs = new Set(records.filter((r) => r.array === 'B' && r.type === 'remoteApply').map((r) => r.pair));
  t.is(pairs.size, 2, 'B applied writes of both pairs');
  // One order for the group: every ID after the first once, ascending by one, whichever volume it was for.
  const tail = applied.slice(applied.indexOf(applied.find((id) => id > 0)!));
  t.true(tail.length >= 24);
  for (let i = 1; i < tail.length; i++) if (tail[i] !== tail[i - 1] + 1) { t.fail(`remoteApply ${tail[i]} after ${tail[i - 1]}`); break; }
});

/** Virtual time one host write of `bytes` takes on A (GOOD at the host), in ns. */
async function writeLatency(s: Sites, lba: number, bytes: number, seed: number): Promise<number> {
  const t0 = s.emu.driver('A').now();
  await s.a.write(1, lba, pattern(bytes, seed));
  return s.emu.driver('A').now() - t0;
}

test('004: an async pair\'s host write latency does not follow the distance — at 1,000 km it is the local write\'s, the synchronous mirror\'s is the far round trips', async (t) => {
  const asyncSite = await startSites('004-latency-async', { directKm: 1000 });
  const syncSite = await startSites('004-latency-sync', { directKm: 1000 });
  try {
    await asyncSite.a.remoteCreate({ volume: asyncSite.va, to: 'B', toVolume: 'mirror', mode: 'async' });
    await syncSite.a.remoteCreate({ volume: syncSite.va, to: 'B', toVolume: 'mirror', mode: 'mirror' });
    for (const s of [asyncSite, syncSite]) await untilRemote(s, (x) => x.state === 'pair', 'pair');
    const a = await writeLatency(asyncSite, 128, 64 * 1024, 3);
    const sync = await writeLatency(syncSite, 128, 64 * 1024, 3);
    t.true(a < 2e6, `async: ${a / 1e6} ms (no round trip to B: 10 ms each)`);
    t.true(sync >= 20e6, `sync: ${sync / 1e6} ms`);
    t.true(sync / a > 10, `ratio ${sync / a}`);
    await until(asyncSite, asyncSite.va, drained, 'drained');
    t.true((await asyncSite.b.read(1, 128, 128)).equals(pattern(64 * 1024, 3)), 'the journal sent it to B afterwards');
  } finally {
    await asyncSite.emu.stop();
    await syncSite.emu.stop();
  }
});

test('004: the link cut, host writes stay GOOD and the journal grows to its bound; full, the pair suspends (journal) with every write in the difference bitmap; healed and resumed, only those tracks are copied and B is byte-identical', async (t) => {
  const s = await startSites('004-cut', { directKm: 1000 });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'async', timeoutMs: 5000, retries: 2 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await until(s, s.va, (p) => p.diffTracks === 0, 'the bitmap cleared (idle for the pair\'s bound)');
    s.emu.injectNetwork('link direct down');
    for (let i = 0; i < 8; i++) await s.a.write(1, i * 128, pattern(TRACK, 40 + i));
    let p = await s.a.remoteOf(s.va);
    t.is(p.state, 'pair');
    t.is(p.journalEntries, 8, 'the backlog grows: 8 writes journaled');
    t.is(p.journalBytes, 8 * TRACK);
    // 2 MiB of journal data: the 33rd 64 KiB write finds it full. GOOD all the same (local cache and NV).
    const written = new Map<number, Buffer>();
    for (let i = 0; i < 40; i++) {
      const lba = (i * 128) % 4096;
      const data = pattern(TRACK, 100 + i);
      await s.a.write(1, lba, data);
      written.set(lba, data);
    }
    p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'journal');
    t.true(p.journalHighWater <= 2 * 1024 * 1024, `bounded: ${p.journalHighWater} bytes at most`);
    t.is(p.journalFullSuspends, 1);
    await s.a.write(1, 4000, pattern(4096, 9)); // suspended: local, and in the bitmap
    const changed = (await s.a.remoteOf(s.va)).diffTracks;
    t.is(changed, 32, 'every track written since the bitmap was cleared (the whole 2 MiB volume)');
    s.emu.injectNetwork('link direct up');
    await until(s, s.va, (x) => x.inFlight === 0, 'the sends of before the cut ended');
    await s.a.remoteChange(s.va, 'resume');
    p = await until(s, s.va, (x) => x.state === 'pair', 'pair after the resume\'s copy');
    t.is(p.copiedBytes, changed * TRACK, 'a resume copies the changed tracks x the track size');
    await until(s, s.va, drained, 'drained');
    t.true(await sameBytes(s, 1), 'B is byte-identical');
  } finally {
    await s.emu.stop();
  }
});

test('difference bitmap: a suspended pair records the tracks written; resume copies only them (changed tracks x track size) and B is byte-identical; also after a kill -9 of A while suspended', async (t) => {
  let s = await startSites('004-diff', { directKm: 100, fileMedia: true });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'mirror', timeoutMs: 20, retries: 3 });
    let p = await untilRemote(s, (x) => x.state === 'pair', 'pair');
    t.is(p.copiedBytes, 2 * 1024 * 1024, 'create copies every track');
    t.is(p.trackBytes, TRACK);
    await s.a.write(1, 300, pattern(8192, 1)); // in pair: at B before GOOD; its bit goes once the pair is idle
    await until(s, s.va, (x) => x.diffTracks === 0, 'the bitmap cleared');
    await s.a.remoteChange(s.va, 'suspend');
    await s.a.write(1, 0, pattern(4096, 2)); // track 0
    await s.a.write(1, 5 * 128 + 3, pattern(512, 3)); // track 5
    await s.a.write(1, 20 * 128 + 120, pattern(8 * 512, 4)); // track 20 (and not 21: it ends at block 2688)
    await s.a.write(1, 2, pattern(1024, 5)); // track 0 again
    t.is((await s.a.remoteOf(s.va)).diffTracks, 3);
    await s.a.remoteChange(s.va, 'resume');
    p = await untilRemote(s, (x) => x.state === 'pair', 'pair');
    t.is(p.copyBytes, 3 * TRACK);
    t.is(p.copiedBytes, 3 * TRACK, 'only the three changed tracks were copied');
    t.true(await sameBytes(s, 1), 'B is byte-identical');
    // Again, with a kill -9 of both arrays while suspended: the bitmap is in NV.
    await until(s, s.va, (x) => x.diffTracks === 0 && x.inFlight === 0, 'idle, bitmap cleared');
    await s.a.remoteChange(s.va, 'suspend');
    await s.a.write(1, 9 * 128, pattern(TRACK, 6)); // track 9
    await s.a.write(1, 31 * 128 + 64, pattern(512, 7)); // track 31
    s = await restartSites(s, { directKm: 100, fileMedia: true });
    p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.diffTracks, 2, 'the bitmap came back from NV');
    await s.a.remoteChange(s.va, 'resume');
    p = await untilRemote(s, (x) => x.state === 'pair', 'pair after the restart');
    t.is(p.copiedBytes, 2 * TRACK);
    await until(s, s.va, (x) => x.inFlight === 0, 'quiet');
    t.true(await sameBytes(s, 1), 'B is byte-identical after the restart and resume');
  } finally {
    await s.emu.stop();
  }
});

test('004: a kill -9 of A with writes journaled but not sent (the link cut): they are in the bitmap, the pair comes back suspended (restart), and resume makes B byte-identical', async (t) => {
  let s = await startSites('004-restart', { directKm: 1000, fileMedia: true });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'async', timeoutMs: 5000, retries: 2 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await until(s, s.va, (p) => p.diffTracks === 0, 'the bitmap cleared');
    s.emu.injectNetwork('link direct down');
    for (let i = 0; i < 5; i++) await s.a.write(1, 1000 + i * 200, pattern(12 * 1024, 70 + i));
    t.is((await s.a.remoteOf(s.va)).journalEntries, 5);
    s = await restartSites(s, { directKm: 1000, fileMedia: true });
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'restart');
    t.true(p.diffTracks >= 5 && p.diffTracks <= 10, `the journaled writes' tracks (${p.diffTracks}) are in the bitmap`);
    await s.a.remoteChange(s.va, 'resume');
    await until(s, s.va, (x) => x.state === 'pair' && drained(x), 'pair, drained');
    t.true(await sameBytes(s, 1), 'B is byte-identical');
  } finally {
    await s.emu.stop();
  }
});

test('004 bad input: a group without mode async, a group out of range, an unknown mode: clear errors, nothing created', async (t) => {
  const s = await startSites('004-bad', { directKm: 10 });
  try {
    await t.throwsAsync(s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'mirror', group: 3 }), { message: /ILLEGAL REQUEST/ });
    t.deepEqual(await s.a.remoteStatus(), []);
    t.throws(() => remoteCreateParameters({ volume: 1, to: 'B', toVolume: 'm', mode: 'async', group: 256 }), { message: /group 256: 0 to 255/ });
    t.throws(() => remoteCreateParameters({ volume: 1, to: 'B', toVolume: 'm', mode: 'fast' as 'async' }), { message: /mode "fast"/ });
    const on = { connect: async () => s.emu.connect('A'), sleep: (ms: number) => s.emu.advance(ms), now: () => s.emu.driver('A').now() / 1e6 };
    const noAsync = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--group', '3'], on);
    t.is(noAsync.code, 2);
    t.regex(noAsync.stderr, /--group needs --mode async/);
    t.is((await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--mode', 'async', '--group', '0'], on)).code, 2, 'groups are 1 to 255');
    // And the good path through sanctl: an async pair in group 5, shown with its group.
    const made = await runSanctl(['remote', 'create', 'vol', 'B:mirror', '--mode', 'async', '--group', '5', '--wait'], on);
    t.is(made.code, 0, made.stderr);
    t.regex(made.stdout, / pair, .*async group 5$/m);
    const st = JSON.parse((await runSanctl(['--json', 'remote', 'status'], on)).stdout);
    t.like(st.pairs[0], { mode: 'async', group: 5, journalEntries: 0 });
  } finally {
    await s.emu.stop();
  }
});

test('004: a pair deleted from a running consistency group with writes still journaled leaves gaps in the group\'s order: the group is suspended (user) rather than left waiting at B; resume starts it again and B matches', async (t) => {
  const s = await startSites('004-group-delete', { directKm: 1000 });
  try {
    const { va2 } = await secondVolumes(s);
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'async', group: 2, timeoutMs: 200, retries: 2 });
    await s.a.remoteCreate({ volume: va2, to: 'B', toVolume: 'mirror2', mode: 'async', group: 2, timeoutMs: 200, retries: 2 });
    await until(s, s.va, (p) => p.state === 'pair', 'pair');
    await until(s, va2, (p) => p.state === 'pair', 'pair');
    s.emu.injectNetwork('link direct down');
    await s.a.write(2, 0, pattern(8192, 1)); // journaled for vol2: an issuing ID of the group's order
    await s.a.remoteChange(va2, 'delete'); // B is not told (the link is down): the delete goes on
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended', 'vol\'s pair does not wait for an ID that will never come');
    t.is(p.reason, 'user');
    s.emu.injectNetwork('link direct up');
    await s.a.write(1, 100, pattern(4096, 2));
    await until(s, s.va, (x) => x.inFlight === 0, 'quiet');
    await s.a.remoteChange(s.va, 'resume');
    await until(s, s.va, (x) => x.state === 'pair' && drained(x), 'pair, drained');
    await s.a.write(1, 200, pattern(4096, 3));
    await until(s, s.va, drained, 'drained');
    t.true(await sameBytes(s, 1), 'mirror equals vol');
  } finally {
    await s.emu.stop();
  }
});
