// Document 003, embodiment 4 (Figs. 8-12, [0092]-[0117]) through the real firmware of both arrays and
// of every relay (build/controller.debug.wasm, build/relay.debug.wasm) on one virtual clock: a remote
// pair over several relays. Flowchart steps: Fig. 9 (S200-S209, one relay per block: round robin,
// least loaded, random), Figs. 10/11 (S220-S227, S240-S244: a block striped over every relay at
// once), [0109]-[0113] (the same data to every relay, one identifier per set, the receiver applies
// it once), [0114]-[0117] (relays with non-volatile buffer memory: forward now, later, above a
// traffic threshold; nothing lost across a relay restart).
import test from 'ava';
import * as path from 'path';
import { startRelays, restartRelays, untilPair, until, jobs, type RelaysSites } from '../remote/relays';
import { pattern } from '../harness/env';

async function paired(s: RelaysSites, via: string, policy?: 'round-robin' | 'least-loaded' | 'random' | 'stripe' | 'all', more: object = {}) {
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via, ...(policy ? { policy } : {}), ...more });
  await untilPair(s, (x) => x.state === 'pair', 'pair (the initial copy)');
}

async function quiet(s: RelaysSites): Promise<void> {
  await untilPair(s, (x) => x.inFlight === 0, 'no command in flight');
  await until(s, () => s.emu.network.relayStatus().every((r) => r.active === 0), 'every relay empty');
}

async function sameBytes(s: RelaysSites, blocks = 4096): Promise<boolean> {
  return (await s.a.read(1, 0, blocks)).equals(await s.b.read(1, 0, blocks));
}

test('Fig. 9, round robin (S201): each send command goes to the next relay; the initial copy and host writes spread evenly; B byte-identical', async (t) => {
  const s = await startRelays('003r-rr', { relays: 3 });
  try {
    await s.a.write(1, 0, pattern(64 * 1024, 1));
    await paired(s, 'r1,r2,r3', 'round-robin');
    // S200-S209: the 2 MiB volume in 8 send commands of 256 KiB, one relay each in turn from r1
    // (r1 also took the CREATE: controls go to the first relay named).
    const copy = jobs(s);
    t.deepEqual(copy, { r1: 1 + 3, r2: 3, r3: 2 }, `jobs after the copy: ${JSON.stringify(copy)}`);
    for (let i = 0; i < 6; i++) await s.a.write(1, 100 + i * 64, pattern(16 * 1024, 10 + i));
    await quiet(s);
    const after = jobs(s);
    t.deepEqual(Object.keys(after).map((k) => after[k] - copy[k]), [2, 2, 2], `six writes, two per relay: ${JSON.stringify(after)}`);
    t.true(await sameBytes(s));
    const st = await s.b.remoteStatus();
    t.is(st[0].writes, 8 + 6, 'B applied each command once');
  } finally {
    await s.emu.stop();
  }
});

test('Fig. 9, random (S201): the relay of each command is drawn from the run\'s seed: the same seed, the same choices; several relays used', async (t) => {
  const runs: Array<Record<string, number>> = [];
  for (const label of ['003r-rand1', '003r-rand2']) {
    const s = await startRelays(label, { relays: 3, seed: 11 });
    try {
      await paired(s, 'r1,r2,r3', 'random');
      for (let i = 0; i < 12; i++) await s.a.write(1, i * 64, pattern(8192, i));
      await quiet(s);
      runs.push(jobs(s));
      t.true(await sameBytes(s));
    } finally {
      await s.emu.stop();
    }
  }
  t.deepEqual(runs[0], runs[1], 'one seed, one set of choices');
  t.true(Object.values(runs[0]).filter((n) => n > 1).length >= 2, `more than one relay used: ${JSON.stringify(runs[0])}`);
  t.is(Object.values(runs[0]).reduce((a, b) => a + b, 0), 1 + 8 + 12, 'the CREATE, 8 copy commands, 12 writes');
});

test('Fig. 9, least loaded (S201, [0100]): a relay busy with other data transfer is passed over', async (t) => {
  // r1's link to A runs at 5 Mbit/s: a second pair's initial copy through r1 alone (2 MiB) keeps it
  // busy for seconds. The first pair's writes, least loaded over r1, r2, r3, go to the idle two. B is
  // 1 km from the relays so that it applies each write before the next comes (B applies one write of
  // a pair at a time: further away, writes wait in r2 and r3 and they count as loaded too).
  const s = await startRelays('003r-least', { relays: 3, farKm: 1, nearMbps: [5, 10_000, 10_000], relay: () => ({ timeoutMs: 500 }) });
  try {
    await paired(s, 'r2,r3,r1', 'least-loaded', { timeoutMs: 2000 });
    const { createVolume } = await import('../harness/env');
    const v2 = await createVolume(s.emu.connect('A'), { name: 'other', blocks: 4096, blockSize: 512 }, 2);
    await createVolume(s.emu.connect('B'), { name: 'other2', blocks: 4096, blockSize: 512 }, 2);
    await s.a.remoteCreate({ volume: v2, to: 'B', toVolume: 'other2', via: 'r1', timeoutMs: 5000 });
    // (No waiting here: the world runs a copy to its end when nothing else is under way.)
    const before = jobs(s);
    for (let i = 0; i < 24; i++) await s.a.write(1, 512 + i * 64, pattern(32 * 1024, i));
    const after = jobs(s);
    const j = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
    t.is((await s.a.remoteOf(v2)).state, 'copy', 'the other pair\'s copy through r1 was still running after the writes');
    // r2 and r3 carry nothing but this pair's writes (r1's count mixes in the other pair's copy):
    // round robin would give them 16 of the 24; least loaded gives them all.
    t.is(j.r2 + j.r3, 24, `the idle relays took all 24 writes: ${JSON.stringify(j)}`);
    t.true(j.r2 >= 11 && j.r3 >= 11, `ties between the idle two go round: ${JSON.stringify(j)}`);
    await quiet(s);
    t.true(await sameBytes(s));
  } finally {
    await s.emu.stop();
  }
});

test('Figs. 10-12, stripe (S220-S227): one host write is cut into a portion per relay, all sent at once; GOOD when every relay has its portion; B byte-identical', async (t) => {
  const s = await startRelays('003r-stripe', { relays: 3 });
  try {
    await paired(s, 'r1,r2,r3', 'stripe');
    const before = jobs(s);
    const data = pattern(96 * 1024, 7); // S221: 32 KiB to each relay (S240-S244)
    await s.a.write(1, 1024, data);
    const mid = jobs(s);
    t.deepEqual(Object.keys(mid).map((k) => mid[k] - before[k]), [1, 1, 1], 'S221/S240-S244: every relay got a portion of the one write');
    await quiet(s);
    t.true((await s.b.read(1, 1024, 192)).equals(data));
    t.true(await sameBytes(s));
    const bs = (await s.b.remoteStatus())[0];
    t.is(bs.state, 'pair');
  } finally {
    await s.emu.stop();
  }
});

test('stripe: a relay that is killed fails the portions it had; the write ends CHECK CONDITION within the bound and the pair is suspended', async (t) => {
  const s = await startRelays('003r-stripe-kill', { relays: 3 });
  try {
    await paired(s, 'r1,r2,r3', 'stripe', { timeoutMs: 20, retries: 2 });
    s.emu.injectNetwork('relay r2 kill');
    const e = await t.throwsAsync(s.a.write(1, 1024, pattern(96 * 1024, 8)));
    t.regex(e!.message, /ABORTED COMMAND/);
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'link');
  } finally {
    await s.emu.stop();
  }
});

test('[0109]-[0113], the same data to every relay: one issuing ID per set; GOOD at the first RECEIVED; B applies each write once and answers the other copies again', async (t) => {
  const s = await startRelays('003r-all', { relays: 3 });
  try {
    await paired(s, 'r1,r2,r3', 'all');
    const before = jobs(s);
    const applied = (await s.b.remoteStatus())[0].writes;
    for (let i = 0; i < 5; i++) await s.a.write(1, 300 + i * 40, pattern(16 * 1024, 30 + i));
    await quiet(s);
    const after = jobs(s);
    t.deepEqual(Object.keys(after).map((k) => after[k] - before[k]), [5, 5, 5], '[0109]: every write went to every relay');
    const bs = (await s.b.remoteStatus())[0];
    t.is(bs.writes - applied, 5, '[0112]: B applied each identifier once, the 10 other copies were answered without being applied');
    const as = await s.a.remoteOf(s.va);
    t.is(as.writes, 5, 'A counts one host write per set');
    t.is(s.emu.network.relayStatus().reduce((n, r) => n + r.failed, 0), 0, 'every copy was answered GOOD');
    t.true(await sameBytes(s));
  } finally {
    await s.emu.stop();
  }
});

test('[0113], the same data to every relay: a killed relay costs nothing — writes stay GOOD, the pair stays duplex, B byte-identical', async (t) => {
  const s = await startRelays('003r-all-kill', { relays: 3 });
  try {
    await paired(s, 'r1,r2,r3', 'all', { timeoutMs: 20, retries: 2 });
    s.emu.injectNetwork('relay r1 kill');
    for (let i = 0; i < 4; i++) await s.a.write(1, 700 + i * 40, pattern(16 * 1024, 50 + i));
    await untilPair(s, (x) => x.inFlight === 0, 'the copies to the dead relay given up');
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'pair', 'a copy that failed while another got through does not suspend the pair');
    t.true(await sameBytes(s));
    // Every relay dead: the copies all fail and the pair is suspended.
    s.emu.injectNetwork('relay r2 kill');
    s.emu.injectNetwork('relay r3 kill');
    await t.throwsAsync(s.a.write(1, 900, pattern(8192, 60)), { message: /ABORTED COMMAND/ });
    t.is((await s.a.remoteOf(s.va)).state, 'suspended');
  } finally {
    await s.emu.stop();
  }
});

// ---- [0114]-[0117]: relays with non-volatile buffer memory ----------------------------------------

const nvRelay = (forward: 'now' | 'later' | 'threshold', more: object = {}) => (i: number, dir: string) =>
  (i === 0 ? { nv: path.join(dir, `r${i + 1}.nv`), forward, ...more } : {});

test('[0114]/[0115], forward later: GOOD when the relay\'s NV holds the write (LF_STORED: A does not wait for B); the relay forwards it after its hold time', async (t) => {
  const s = await startRelays('003r-nv-later', { relays: 1, relay: nvRelay('later', { holdMs: 300 }) });
  try {
    await paired(s, 'r1');
    await quiet(s);
    const old = await s.b.read(1, 2000, 16);
    const t0 = s.emu.driver('A').now();
    const data = pattern(8192, 77);
    await s.a.write(1, 2000, data);
    t.true(s.emu.driver('A').now() - t0 < 1e6, 'GOOD at the near relay\'s RECEIVED');
    t.is((await s.a.remoteOf(s.va)).inFlight, 0, 'A holds nothing: the relay owns the write');
    const r = s.emu.network.relay('r1').status();
    t.is(r.held, 1, 'stored in the relay\'s NV, waiting');
    t.true((await s.b.read(1, 2000, 16)).equals(old), 'B does not have it yet');
    await until(s, () => s.emu.network.relay('r1').status().held === 0, 'released after the hold time');
    await quiet(s);
    t.true((await s.b.read(1, 2000, 16)).equals(data), 'forwarded later');
    const report = (await s.a.relayStatus())[0];
    t.true(report.nv);
    t.is(report.forward, 'later');
    t.true(await sameBytes(s));
  } finally {
    await s.emu.stop();
  }
});

test('[0116], a relay with NV killed while it holds writes and restarted loses nothing: it takes them back from its nv file and forwards them', async (t) => {
  const s = await startRelays('003r-nv-restart', { relays: 1, relay: nvRelay('later', { holdMs: 60_000 }) });
  try {
    await paired(s, 'r1');
    s.emu.network.relay('r1').flush(); // the copy's commands go now (the storage unit asks, [0115])
    await quiet(s);
    const writes = [pattern(16 * 1024, 81), pattern(8192, 82), pattern(24 * 1024, 83)];
    for (let i = 0; i < writes.length; i++) await s.a.write(1, 1000 + i * 100, writes[i]);
    t.is(s.emu.network.relay('r1').status().held, 3);
    s.emu.injectNetwork('relay r1 kill');
    s.emu.injectNetwork('relay r1 restart');
    const r = s.emu.network.relay('r1').status();
    t.is(r.recovered, 3, 'the three writes came back from the nv file');
    s.emu.injectNetwork('relay r1 flush');
    await quiet(s);
    for (let i = 0; i < writes.length; i++) t.true((await s.b.read(1, 1000 + i * 100, writes[i].length / 512)).equals(writes[i]), `write ${i} reached B`);
    t.true(await sameBytes(s));
    t.is((await s.a.remoteOf(s.va)).state, 'pair');
  } finally {
    await s.emu.stop();
  }
});

test('without NV a restarted relay starts empty; A, which still waits for its FORWARDED, sends the write again and B gets it', async (t) => {
  const s = await startRelays('003r-vol-restart', { relays: 1, relay: () => ({ timeoutMs: 20, retries: 2 }) });
  try {
    await paired(s, 'r1', undefined, { timeoutMs: 20, retries: 2 });
    s.emu.injectNetwork('link far1 down');
    const data = pattern(8192, 90);
    await s.a.write(1, 10, data); // GOOD at the relay (embodiment 1); it cannot forward
    t.is((await s.a.remoteOf(s.va)).inFlight, 1, 'A waits for the relay\'s FORWARDED');
    s.emu.injectNetwork('relay r1 restart');
    s.emu.injectNetwork('link far1 up');
    t.is(s.emu.network.relay('r1').status().recovered, 0, 'nothing came back: its buffer was volatile');
    await untilPair(s, (x) => x.inFlight === 0, 'forwarded after the repeat');
    t.is((await s.a.remoteOf(s.va)).state, 'pair');
    t.true((await s.b.read(1, 10, 16)).equals(data));
  } finally {
    await s.emu.stop();
  }
});

test('[0117], forward threshold: while the bytes being forwarded reach the threshold new writes wait in NV; all reach B in order', async (t) => {
  const s = await startRelays('003r-nv-threshold', { relays: 1, relay: nvRelay('threshold', { threshold: '64KiB' }) });
  try {
    await paired(s, 'r1');
    await quiet(s);
    let most = 0;
    for (let i = 0; i < 10; i++) {
      await s.a.write(1, 100 + i * 64, pattern(32 * 1024, 100 + i));
      most = Math.max(most, s.emu.network.relay('r1').status().held);
    }
    t.true(most >= 3, `writes waited in NV above the threshold (at most ${most} at once)`);
    await quiet(s);
    t.is(s.emu.network.relay('r1').status().held, 0);
    t.true(await sameBytes(s));
  } finally {
    await s.emu.stop();
  }
});

test('a write the relay stored and B then refuses (B failed over): the relay\'s FORWARDED error suspends A\'s pair (relay)', async (t) => {
  const s = await startRelays('003r-nv-refused', { relays: 1, relay: nvRelay('now') });
  try {
    await paired(s, 'r1');
    await quiet(s);
    await s.b.remoteChange(s.vb, 'failover');
    await s.a.write(1, 10, pattern(8192, 91)); // GOOD: the relay's NV holds it
    const p = await untilPair(s, (x) => x.state === 'suspended', 'suspended by the refusal');
    t.is(p.reason, 'relay');
    t.is(s.emu.network.relay('r1').status().failed, 1);
  } finally {
    await s.emu.stop();
  }
});

test('the route is kept with the pair: after a kill -9 of both arrays, resume sends through every relay again in turn', async (t) => {
  const o = { relays: 3, fileMedia: true };
  let s = await startRelays('003r-route-nv', o);
  try {
    await paired(s, 'r1,r2,r3', 'round-robin');
    await quiet(s);
    s = await restartRelays(s, o);
    const p = await s.a.remoteOf(s.va);
    t.like(p, { state: 'suspended', reason: 'restart' });
    await s.a.remoteChange(s.va, 'resume');
    await untilPair(s, (x) => x.state === 'pair', 'pair after the resume\'s copy');
    const copy = jobs(s);
    t.deepEqual(copy, { r1: 1 + 3, r2: 3, r3: 2 }, `the CREATE via r1, the copy's 8 commands in turn: ${JSON.stringify(copy)}`);
    for (let i = 0; i < 3; i++) await s.a.write(1, 100 + i * 64, pattern(8192, 70 + i));
    await quiet(s);
    t.true(await sameBytes(s));
  } finally {
    await s.emu.stop();
  }
});
