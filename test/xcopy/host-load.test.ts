// A server-free backup beside a destage-bound host write load, through the real firmware in virtual
// time (docs/xcopy.md, "Slots under a host load"). Before the copy kept a slot of its own between
// chunks and the cache kept one for a copy that found none, the copy manager never won a cache
// slot while 8-deep 4 KiB random writes ran: each slot a destage freed went to a waiting writer
// first, and the backup stood still for the whole load (docs/bench.md).
import test from 'ava';
import { backupVolume } from '../../host/backup';
import { rig, Rig } from './env';

const LOAD_NS = 0.1e9; // virtual time of each load
const DEPTH = 8;

/** 4 KiB random writes, DEPTH deep, on LUN 2 (the rig's second disk) for LOAD_NS: commands per second. */
async function writeLoad(r: Rig): Promise<number> {
  const now = (): number => r.emu.driver().now();
  const end = now() + LOAD_NS;
  const units = (8 * 2048) / 8;
  const data = Buffer.alloc(4096, 0x5a);
  let x = 0x9e3779b9;
  let commands = 0;
  const t0 = now();
  await Promise.all(Array.from({ length: DEPTH }, async () => {
    while (now() < end) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      await r.c.write(2, (x % units) * 8, data);
      commands++;
    }
  }));
  return commands / ((now() - t0) / 1e9);
}

test('a backup moves data while 8-deep 4 KiB random host writes fill a 4 MiB cache, and the writes keep >= 0.9 of their IOPS', async (t) => {
  t.timeout(300e3, 'a deterministic rig with disk timing on a busy machine');
  const r = await rig('xcopy-hostload', { disks: true, cache: '4MiB' });
  try {
    await r.c.synchronizeCache(1);
    await r.emu.advance(100);
    const alone = await writeLoad(r);
    await r.c.synchronizeCache(2);
    await r.emu.advance(100);

    let moved = 0;
    let loading = false; // the load moves the clock: polls wait for it instead of advancing it
    let loaded = false;
    let started: () => void = () => undefined;
    const first = new Promise<void>((resolve) => { started = resolve; });
    let loadEnded: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => { loadEnded = resolve; });
    // The backup server polls COPY STATUS every 10 ms of virtual time while the load moves the
    // clock: it waits for the clock to pass that (or for the load to end, after which nothing moves it).
    const pause = async (): Promise<void> => {
      if (!loading) { await r.emu.advance(1); return; }
      await Promise.race([r.emu.driver().passed!(r.emu.driver().now() + 10e6), ended]);
    };
    const backup = backupVolume(r.c, r.lib, {
      volume: r.src, tape: 'SB0001L5', pause,
      onProgress: (b) => { moved = b; if (!loaded) { loading = true; started(); } },
    });
    await Promise.race([first, backup]); // the copy runs (its first COPY STATUS)
    const atStart = moved;
    const beside = await writeLoad(r);
    const during = moved - atStart;
    loading = false;
    loaded = true;
    loadEnded();
    const res = await backup;
    t.log(`host writes: ${Math.round(alone)} IOPS alone, ${Math.round(beside)} beside the backup (${(beside / alone).toFixed(3)}); backup moved ${during} bytes during the load`);
    t.is(res.bytes, 8 * 2048 * 512, 'the whole volume is backed up');
    t.true(atStart < res.bytes, 'the load started while the copy ran');
    // Bounded below: at least 8 of the volume's 64 KiB tracks in 0.1 s (5 MB/s), one staged at a time.
    t.true(during >= 8 * 65536, `the backup moved only ${during} bytes during ${LOAD_NS / 1e9} s of host writes`);
    t.true(beside >= 0.9 * alone, `host IOPS beside the backup ${Math.round(beside)} < 0.9 x ${Math.round(alone)} alone`);
  } finally {
    await r.emu.stop();
  }
});
