// Document 003, embodiments 1-3 through the real firmware of both arrays and the relay
// (build/controller.debug.wasm, build/relay.debug.wasm) on one virtual clock: host write to array A
// -> relay -> array B. Flowchart steps: Fig. 4 (S100-S108, the initial copy), Fig. 5 (S120-S129, the
// relay's store and forward), Fig. 6 (S140-S149, cut-through), Fig. 7 (S160-S170, mirroring).
import test from 'ava';
import { startSites, untilRemote } from '../remote/sites';
import { pattern } from '../harness/env';

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
