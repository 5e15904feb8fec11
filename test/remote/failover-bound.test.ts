// S484's bound through the firmware: a failover on a delayed pair's secondary waits for the reflect
// being written, but not for ever. B's reflect is made to stall — its medium slowed so that nothing
// destages and its cache filled with dirty data of another volume, so the reflect's runs wait for a
// cache slot — and the failover answers ABORTED COMMAND, 86h/19h FAILOVER WAITED TOO LONG FOR THE
// REFLECT after 10 s of virtual time instead of waiting (docs/scsi.md, docs/remote.md).
//
// Skipped: with B's cache full of dirty data and its medium slowed, a host write waiting for a cache
// slot did not let the virtual clock get anywhere: `advance(20)` after the fill had not returned after
// 3 minutes of wall time (trace10, 2026-11-29; the 65th 256 KiB write to a 16 MiB cache already hung).
// Not looked into further: it looks like the slot wait is work every round (the clock then moves by
// ROUND_NS, 1 µs, per round), which is issue 7's sequencer slot wait (helper trust5). Once that wait
// lets the clock jump to the next timer, remove `.skip`; the test has not run to its end yet.
import test from 'ava';
import { startSites, untilRemote } from './sites';
import { pattern, createVolume } from '../harness/env';
import { ScsiError } from '../../lib/scsi';

const BS = 512;

test.skip('S484: a failover whose reflect cannot reach the volume (B\'s cache full, its medium stalled) ends ABORTED COMMAND 86h/19h after 10 s, not never', async (t) => {
  const s = await startSites('failover-bound', { directKm: 100, blocks: 2048 });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', mode: 'delayed' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    await s.a.write(1, 0, pattern(128 * BS, 1)); // held at B (S425)
    await s.a.write(1, 256, pattern(128 * BS, 2));
    // B: a 24 MiB volume whose writes fill the 16 MiB cache with dirty data that a stalled medium never destages.
    await createVolume(s.emu.connect('B'), { name: 'fill', blocks: 48 * 1024, blockSize: BS }, 2);
    s.emu.array('B').inject('d0 slow 1000000');
    const fill: Array<Promise<unknown>> = [];
    for (let i = 0; i < 96; i++) fill.push(s.b.write(2, i * 512, pattern(512 * BS, 10 + i)).catch((e: Error) => e));

    await s.emu.advance(20);
    // A's restart point: S460-S464 at B, its runs waiting for cache slots. A's command is not awaited (it ends by its own bound).
    const point = s.a.remoteChange(s.va, 'restart-point').catch((e: Error) => e);
    await s.emu.advance(20);
    const before = s.emu.driver('B').now();
    const failover = await s.b.remoteChange(s.vb, 'failover').then(() => undefined, (e: Error) => e);
    const waitedMs = (s.emu.driver('B').now() - before) / 1e6;
    t.true(failover instanceof ScsiError, `the failover ended ${failover ? failover.message : 'GOOD'}`);
    const e = failover as ScsiError;
    t.like(e.sense, { key: 0x0B, asc: 0x86, ascq: 0x19 });
    t.regex(e.message, /FAILOVER WAITED TOO LONG FOR THE REFLECT/);
    t.true(waitedMs >= 10_000 && waitedMs < 11_000, `answered after ${waitedMs} ms of virtual time (bound 10 s)`);
    s.emu.array('B').inject('d0 heal');
    await point;
    await Promise.all(fill);
  } finally {
    await s.emu.stop('powerFail');
  }
});
