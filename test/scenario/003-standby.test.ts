// Document 003, embodiment 7 through both arrays' firmware on one virtual clock: a remote pair of mode
// `delayed`. The standby (B) holds the primary's writes in its buffer for synchronization and writes
// them to its volume only at a restart enabling point (REMOTE CHANGE restart point: the delay data
// reflecting command); when the operation array (A) is lost and B fails over, B's volume is exactly
// the state at the last restart point. Flowchart steps: Fig. 24 (S420-S425, held), Fig. 26
// (S460-S468, reflected), Fig. 27 (S480-S485, discarded).
import test from 'ava';
import { startSites, untilRemote, type Sites } from '../remote/sites';
import { pattern } from '../harness/env';

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
