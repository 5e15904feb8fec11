// Document 003, embodiment 8 through both arrays' firmware on one virtual clock: a remote pair of mode
// `snapshot`. The standby (B) is a redirect-on-write volume (firmware/remote/snapshot.ts, driven by
// firmware/remote/snaplink.ts): each write of the primary (A) lands on a block no snapshot names
// (Fig. 34, S540-S546), in issuing-ID order (Fig. 36, S580-S589); at each restart enabling point the
// snapshot forming command ([0255]) makes the latest state the snapshot; on failover B restores the
// snapshot ([0263]) and moves every block home, so hosts read the last restart point through the
// ordinary read path (docs/remote.md, "Embodiment 8 on the link").
import test from 'ava';
import { startSites, restartSites, untilRemote, type Sites, type SitesOptions } from '../remote/sites';
import { pattern, createVolume } from '../harness/env';

const BS = 512;
const BLOCKS = 2048; // A's volume: 128 table blocks of 8 KiB
const SNAP_BLOCKS = 4096; // B's: 254 physical table blocks, then two image places

class Model {
  readonly bytes = Buffer.alloc(BLOCKS * BS);
  write(lba: number, data: Buffer): void { data.copy(this.bytes, lba * BS); }
  snapshot(): Buffer { return Buffer.from(this.bytes); }
}

interface Snap extends Sites { lunB: number }

async function snapshotPair(label: string, o: SitesOptions = {}): Promise<Snap> {
  const s = await startSites(label, { directKm: 100, blocks: BLOCKS, ...o });
  await createVolume(s.emu.connect('B'), { name: 'snap', blocks: SNAP_BLOCKS, blockSize: BS }, 2);
  await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'snap', mode: 'snapshot' });
  const p = await untilRemote(s, (x) => x.state === 'pair', 'pair (the initial copy, then the first interval)');
  if (p.mode !== 'snapshot') throw new Error(`mode ${p.mode}`);
  return { ...s, lunB: 2 };
}

async function write(s: Sites, m: Model, lba: number, blocks: number, seed: number): Promise<void> {
  const d = Buffer.from(pattern(blocks * BS, seed));
  await s.a.write(1, lba, d);
  m.write(lba, d);
}

async function snapVolume(s: Snap): Promise<number> {
  const st = (await s.b.remoteStatus()).find((x) => x.role === 'secondary');
  if (!st) throw new Error('no secondary pair on B');
  return st.volume;
}

test('embodiment 8 (Figs. 34, 36): writes across restart points, A lost, B fails over: B reads exactly the last restart point (S540-S546, S580-S589, [0255], [0263])', async (t) => {
  const s = await snapshotPair('003-snapshot-direct');
  try {
    const m = new Model();
    await write(s, m, 0, 32, 1); // S580-S589: redirected to unused blocks (S543), processed in order
    await write(s, m, 100, 64, 2);
    t.like((await s.b.remoteStatus())[0], { role: 'secondary', mode: 'snapshot', state: 'pair' });
    t.true((await s.b.read(s.lunB, 0, 32)).equals(Buffer.alloc(32 * BS)), 'S543: the write went to an unused block; the home of block 0 still holds the copy');
    await s.a.remoteChange(s.va, 'restart-point'); // S562 -> [0255] at B
    await write(s, m, 0, 16, 3); // the same blocks again in the next interval: redirected again (the snapshot's stay)
    await write(s, m, 512, 48, 4);
    await s.a.remoteChange(s.va, 'restart-point');
    const atPoint = m.snapshot();
    await write(s, m, 16, 32, 5); // after the last restart point: on B, not in its snapshot
    await write(s, m, 1024, 1024, 6);
    await write(s, m, 0, 16, 7);
    s.emu.array('A').powerFail('the operation array is lost (test)');
    const vb = await snapVolume(s);
    await s.b.remoteChange(vb, 'failover'); // [0263], then every block home
    const b = await s.b.read(s.lunB, 0, BLOCKS);
    t.true(b.equals(atPoint), '[0263]: B is the last restart point exactly, through the ordinary read path');
    t.false(b.equals(m.bytes));
    t.is((await s.b.remoteStatus())[0].state, 'failover');
    const d = Buffer.from(pattern(8 * BS, 9));
    await s.b.write(s.lunB, 40, d); // the hosts' volume now, written in place
    t.true((await s.b.read(s.lunB, 40, 8)).equals(d));
  } finally {
    await s.emu.stop();
  }
});

test('a kill -9 of both arrays between restart points keeps the restart point: B loads the newer whole image from its volume and fails over to it (S588 image before S589 RECEIVED)', async (t) => {
  const o: SitesOptions = { directKm: 100, blocks: BLOCKS, fileMedia: true };
  let s = await snapshotPair('003-snapshot-restart', o);
  try {
    const m = new Model();
    await write(s, m, 0, 64, 21);
    await s.a.remoteChange(s.va, 'restart-point');
    await write(s, m, 32, 64, 22);
    await write(s, m, 700, 16, 23);
    await s.a.remoteChange(s.va, 'restart-point');
    const atPoint = m.snapshot();
    await write(s, m, 0, 128, 24); // acknowledged after the point: B must not show it
    s = { ...(await restartSites(s, o)), lunB: s.lunB };
    const vb = await snapVolume(s);
    t.like((await s.b.remoteStatus())[0], { role: 'secondary', mode: 'snapshot', state: 'suspended' }, 'the mode is in the pair record in NV');
    await s.b.remoteChange(vb, 'failover'); // the unit comes back from its image, restores, moves home
    const b = await s.b.read(s.lunB, 0, BLOCKS);
    t.true(b.equals(atPoint), 'after the restart B is still the last restart point exactly');
  } finally {
    await s.emu.stop();
  }
});
