// Document 003, embodiments 1-3 through the real firmware of both arrays and the relay
// (build/controller.debug.wasm, build/relay.debug.wasm) on one virtual clock: host write to array A
// -> relay -> array B. Flowchart steps: Fig. 4 (S100-S108, the initial copy), Fig. 5 (S120-S129, the
// relay's store and forward), Fig. 6 (S140-S149, cut-through), Fig. 7 (S160-S170, mirroring).
import test from 'ava';
import { startSites, untilRemote } from '../remote/sites';
import { pattern, createVolume, startSmall, tempDir } from '../harness/env';
import { remoteCreateParameters, remoteCreateCdb } from '../../lib/remote';
import { ScsiClient } from '../../host/client';

test('embodiment 3 (Fig. 7): a host write to A reaches B through the relay; after failover B holds the same bytes', async (t) => {
  const s = await startSites('003-mirror', { relay: { nearKm: 10, farKm: 1000 } });
  try {
    const before = pattern(64 * 1024, 5);
    await s.a.write(1, 0, before);
    const created = await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0' });
    t.is(created.role, 'primary');
    const p = await untilRemote(s, (x) => x.state === 'pair', 'pair (the initial copy, Fig. 4 S100-S108)');
    t.is(p.copiedBytes, p.copyBytes);
    const data = pattern(128 * 1024, 9);
    await s.a.write(1, 64, data); // S160-S170
    await untilRemote(s, (x) => x.inFlight === 0, 'no command in flight (S129: forwarded)');
    const bs = (await s.b.remoteStatus())[0];
    t.is(bs.role, 'secondary');
    t.is(bs.state, 'pair');
    await t.throwsAsync(s.b.write(1, 0, pattern(512, 1)), { message: /DATA PROTECT|WRITE PROTECTED/i }, 'the secondary is read-only to hosts until failover');
    await s.b.remoteChange(s.vb, 'failover');
    const wholeA = await s.a.read(1, 0, 4096);
    const wholeB = await s.b.read(1, 0, 4096);
    t.true(wholeA.equals(wholeB), 'B is byte-identical to A after failover');
    t.true(wholeB.subarray(64 * 512, 64 * 512 + data.length).equals(data));
    await s.b.write(1, 0, pattern(512, 2)); // the hosts' volume now
  } finally {
    await s.emu.stop();
  }
});

/** Virtual time one host write of `bytes` takes on A (GOOD at the host), in ns. */
async function writeLatency(s: Awaited<ReturnType<typeof startSites>>, lba: number, bytes: number, seed: number): Promise<number> {
  const t0 = s.emu.driver('A').now();
  await s.a.write(1, lba, pattern(bytes, seed));
  return s.emu.driver('A').now() - t0;
}

test('embodiment 1 (Figs. 4, 5): the host write\'s latency follows the relay at 10 km, not B at 1,000 km; direct synchronous copy at 1,000 km pays the far round trips', async (t) => {
  const relayed = await startSites('003-latency-relay', { relay: { nearKm: 10, farKm: 1000 } });
  const direct = await startSites('003-latency-direct', { directKm: 1000 });
  try {
    for (const s of [relayed, direct]) {
      await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: s === relayed ? 'relay0' : undefined, mode: 'backup' });
      await untilRemote(s, (x) => x.state === 'pair', 'pair');
    }
    const viaRelay = await writeLatency(relayed, 128, 64 * 1024, 3);
    const sync = await writeLatency(direct, 128, 64 * 1024, 3);
    // S101-S106 with the relay: WRITE, READY, DATA, RECEIVED across 10 km (50 µs one way) twice = 200 µs of wire.
    t.true(viaRelay < 400e3, `through the relay: ${viaRelay / 1e3} µs`);
    // Direct: the same exchange across 1,000 km (5 ms one way): at least two round trips = 20 ms.
    t.true(sync >= 20e6, `direct: ${sync / 1e6} ms`);
    t.true(sync / viaRelay > 50, `ratio ${sync / viaRelay}`);
    await untilRemote(relayed, (x) => x.inFlight === 0, 'forwarded (S129)');
    t.true((await relayed.b.read(1, 128, 128)).equals(pattern(64 * 1024, 3)), 'the relay forwarded it to B (S127-S129)');
    t.true((await direct.b.read(1, 128, 128)).equals(pattern(64 * 1024, 3)));
  } finally {
    await relayed.emu.stop();
    await direct.emu.stop();
  }
});

test('embodiment 2 (Fig. 6): a cut-through relay between the arrays; B byte-identical to A', async (t) => {
  const s = await startSites('003-cut-through', { relay: { nearKm: 10, farKm: 1000, cutThrough: true } });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    for (let i = 0; i < 4; i++) await s.a.write(1, 200 + i * 300, pattern(150 * 1024, 20 + i));
    await untilRemote(s, (x) => x.inFlight === 0, 'forwarded');
    t.true((await s.a.read(1, 0, 4096)).equals(await s.b.read(1, 0, 4096)));
    t.is(s.emu.network.relayStatus()[0].mode, 'cutThrough');
    t.true(s.emu.network.relayStatus()[0].forwarded > 0);
  } finally {
    await s.emu.stop();
  }
});

test('a cut near link mid-write: the write ends LOGICAL UNIT COMMUNICATION TIMEOUT within the pair\'s bound, the pair is suspended (link), later writes are local; resume after the heal copies again and B matches', async (t) => {
  const s = await startSites('003-cut-near', { relay: { nearKm: 10, farKm: 1000 } });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0', timeoutMs: 20, retries: 3 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    s.emu.injectNetwork('link near down');
    const t0 = s.emu.driver('A').now();
    const e = await t.throwsAsync(s.a.write(1, 10, pattern(8192, 4)));
    const waited = s.emu.driver('A').now() - t0;
    t.regex(e!.message, /ABORTED COMMAND/);
    t.regex(e!.message, /COMMUNICATION TIMEOUT|08h\/01h/i);
    t.true(waited <= 20e6 * 5, `bounded: ${waited / 1e6} ms <= timeout x (retries + 1) + margin`);
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'link');
    t.not(p.failedCommand, 0, 'the status names the command that suspended the pair');
    await s.a.write(1, 10, pattern(8192, 5)); // local now: GOOD on cache and NV
    s.emu.injectNetwork('link near up');
    await s.a.remoteChange(s.va, 'resume');
    await untilRemote(s, (x) => x.state === 'pair', 'pair again after the resume\'s copy');
    await untilRemote(s, (x) => x.inFlight === 0, 'quiet');
    t.true((await s.a.read(1, 0, 4096)).equals(await s.b.read(1, 0, 4096)), 'the resume resynchronised B');
  } finally {
    await s.emu.stop();
  }
});

test('a cut far link: the relay has the write (GOOD, S126), cannot forward it (S129 never comes); FORWARDED with an error suspends the pair (relay)', async (t) => {
  const s = await startSites('003-cut-far', { relay: { nearKm: 10, farKm: 1000, timeoutMs: 20, retries: 2 } });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0', timeoutMs: 30, retries: 3 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    s.emu.injectNetwork('link far down');
    await s.a.write(1, 10, pattern(8192, 6)); // GOOD: the relay holds it (embodiment 1)
    const p = await untilRemote(s, (x) => x.state === 'suspended', 'suspended');
    t.is(p.reason, 'relay');
    t.is(s.emu.network.relayStatus()[0].failed, 1);
  } finally {
    await s.emu.stop();
  }
});

test('the relay is killed: a write in progress is bounded and suspends the pair; B keeps what was forwarded before', async (t) => {
  const s = await startSites('003-kill-relay', { relay: { nearKm: 10, farKm: 1000 } });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0', timeoutMs: 20, retries: 2 });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await s.a.write(1, 0, pattern(16384, 7));
    await untilRemote(s, (x) => x.inFlight === 0, 'forwarded');
    s.emu.injectNetwork('relay relay0 kill');
    await t.throwsAsync(s.a.write(1, 100, pattern(8192, 8)), { message: /ABORTED COMMAND/ });
    t.is((await s.a.remoteOf(s.va)).state, 'suspended');
    await s.b.remoteChange(s.vb, 'failover');
    t.true((await s.b.read(1, 0, 32)).equals(pattern(16384, 7)), 'what was forwarded before the kill is at B');
  } finally {
    await s.emu.stop();
  }
});

test('B failed over: A\'s next write is refused by B, the pair is suspended (remote), and A goes on locally', async (t) => {
  const s = await startSites('003-refused', { directKm: 100 });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await s.b.remoteChange(s.vb, 'failover');
    await t.throwsAsync(s.a.write(1, 0, pattern(8192, 1)), { message: /ABORTED COMMAND/ });
    const p = await s.a.remoteOf(s.va);
    t.is(p.state, 'suspended');
    t.is(p.reason, 'remote');
    await s.a.write(1, 0, pattern(8192, 2));
    const e = await t.throwsAsync(s.a.remoteChange(s.va, 'resume'));
    t.regex(e!.message, /SECONDARY HAS FAILED OVER/, 'resume refused: B\'s volume is the hosts\' since the failover');
    await s.a.remoteChange(s.va, 'delete');
    await t.throwsAsync(s.a.remoteOf(s.va), { message: /no remote pair/ });
  } finally {
    await s.emu.stop();
  }
});

test('bad REMOTE CREATE input is refused with a named error and changes nothing', async (t) => {
  const s = await startSites('003-bad-input', { relay: { nearKm: 10, farKm: 100 } });
  try {
    const bad = async (spec: Parameters<typeof s.a.remoteCreate>[0], re: RegExp) => {
      const e = await t.throwsAsync(s.a.remoteCreate(spec));
      t.regex(e!.message, re);
    };
    await bad({ volume: s.va, to: 'nowhere', toVolume: 'mirror' }, /NO SUCH NODE, OR NO LINK TO IT/); // no such node
    await bad({ volume: s.va, to: 'relay0', toVolume: 'mirror' }, /NO SUCH NODE, OR NO LINK TO IT/); // a relay is not an array
    await bad({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'A' }, /NO SUCH NODE, OR NO LINK TO IT/); // an array is not a relay
    await bad({ volume: s.va, to: 'A', toVolume: 'mirror' }, /NO SUCH NODE, OR NO LINK TO IT/); // itself
    await bad({ volume: 999, to: 'B', toVolume: 'mirror' }, /NO SUCH VOLUME FOR THE REMOTE PAIR/); // no such volume
    await bad({ volume: s.va, to: 'B', toVolume: 'mirror' }, /NO SUCH NODE, OR NO LINK TO IT/); // no link joins A to B: the relay must be named
    await bad({ volume: s.va, to: 'B', toVolume: 'nosuchvolume', via: 'relay0' }, /NO SUCH VOLUME AT THE SECONDARY/); // B has no such volume
    await t.throwsAsync(s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'a-name-too-long' }), { message: /1 to 12 bytes/ });
    // The firmware checks what the client library checks too: a list sent by another initiator.
    const list = remoteCreateParameters({ volume: s.va, to: 'B', toVolume: 'x', via: 'relay0' });
    list.fill(0x41, 72, 88); // 16 bytes of name
    await t.throwsAsync(s.a.execute({ lun: 0, cdb: remoteCreateCdb(list.length), dataOut: list }), { message: /BAD PEER VOLUME NAME/ });
    await t.throwsAsync(s.a.remoteChange(s.va, 'suspend'), { message: /NO SUCH REMOTE PAIR/ });
    const odd = await createVolume(s.emu.connect('B'), { name: 'odd', blocks: 512, blockSize: 4096 }, 2);
    await bad({ volume: s.va, to: 'B', toVolume: 'odd', via: 'relay0' }, /SECONDARY VOLUME DOES NOT MATCH/);
    t.true(odd >= 0);
    t.deepEqual(await s.a.remoteStatus(), [], 'nothing was created');
    t.deepEqual(await s.b.remoteStatus(), []);
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0' });
    await bad({ volume: s.va, to: 'B', toVolume: 'mirror' }, /VOLUME IS IN A REMOTE PAIR/); // in a pair already
    await t.throwsAsync(s.b.remoteChange(s.vb, 'suspend'), { message: /REMOTE PAIR STATE DOES NOT ALLOW THIS/ }); // the secondary cannot suspend
    for (const [c, v] of [[s.a, s.va], [s.b, s.vb]] as const) {
      await t.throwsAsync(c.deleteVolume(v, { force: true }), { message: /VOLUME IS IN A REMOTE PAIR/ }, 'a volume in a remote pair is not deleted under it');
    }
  } finally {
    await s.emu.stop();
  }
});

test('an array that ends no link refuses REMOTE CREATE (THIS ARRAY ENDS NO LINK)', async (t) => {
  const emu = await startSmall({ dir: tempDir('003-unlinked'), mode: 'deterministic' });
  try {
    const c = new ScsiClient(emu.connect());
    const v = await c.createVolume({ name: 'vol', blocks: 1024, blockSize: 512 });
    await t.throwsAsync(c.remoteCreate({ volume: v.number, to: 'B', toVolume: 'mirror' }), { message: /THIS ARRAY ENDS NO LINK/ });
    t.deepEqual(await c.remoteStatus(), []);
  } finally {
    await emu.stop();
  }
});

test('the operation array is lost right after its writes were acknowledged: the relay, outside the disaster area, still forwards them, and the standby has every acknowledged write after failover', async (t) => {
  const s = await startSites('003-site-lost', { relay: { nearKm: 10, farKm: 1000 } });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    const acked: Array<[number, Buffer]> = [];
    for (let i = 0; i < 8; i++) {
      const data = pattern(16 * 1024, 40 + i);
      await s.a.write(1, i * 64, data); // GOOD: in A's NV and in relay0's buffer (S126/S169)
      acked.push([i * 64, data]);
    }
    t.true(s.emu.network.relayStatus()[0].active > 0, 'the relay still holds writes the standby has not got');
    s.emu.array('A').powerFail('site A lost');
    await s.emu.advance(100); // the relay forwards what it holds (S127-S129); its FORWARDED to A is lost
    t.is(s.emu.network.relayStatus()[0].active, 0);
    await s.b.remoteChange(s.vb, 'failover');
    for (const [lba, data] of acked) t.true((await s.b.read(1, lba, data.length / 512)).equals(data), `write at ${lba} is at the standby`);
  } finally {
    await s.emu.stop('powerFail');
  }
});

test('loss, duplication and reordering on both links: the arrays and the relay ask again (READY from the first missing byte, repeated WRITEs answered once, early WRITEs held in issuing-ID order); B is byte-identical; the same seed gives the same run', async (t) => {
  const run = async (seed: number) => {
    const s = await startSites(`003-lossy-${seed}`, { relay: { nearKm: 10, farKm: 1000, timeoutMs: 20, retries: 30 }, seed, loss: 0.03 });
    try {
      for (const l of s.emu.network.links) Object.assign(l.spec, { duplicate: 0.02, reorder: 0.05, jitterNs: 20_000 });
      await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: 'relay0', timeoutMs: 30, retries: 30 });
      await untilRemote(s, (x) => x.state === 'pair', 'pair', 60_000);
      for (let i = 0; i < 12; i++) await s.a.write(1, (i * 331) % 3900, pattern(24 * 1024 + i * 512, 60 + i));
      await untilRemote(s, (x) => x.inFlight === 0, 'quiet', 60_000);
      const p = await s.a.remoteOf(s.va);
      t.is(p.state, 'pair', `not suspended (${p.reason})`);
      t.true((await s.a.read(1, 0, 4096)).equals(await s.b.read(1, 0, 4096)), 'B equals A');
      return { relay: s.emu.network.relayStatus()[0], links: s.emu.network.links.map((l) => ({ ...l.counters })), issued: p.issuingId };
    } finally {
      await s.emu.stop();
    }
  };
  const a = await run(11);
  t.true(a.links.some((c) => c.lost > 0) && a.links.some((c) => c.duplicated > 0), 'packets were lost and duplicated');
  t.true(a.relay.retries > 0 || a.relay.duplicates > 0, 'something was asked again');
  t.deepEqual(await run(11), a, 'the same seed, the same run');
});
