// sanctl pair create|split|resync|reverse|delete|status against the real firmware (deterministic mode:
// --wait polls with the test's sleep, which advances virtual time).
import test from 'ava';
import { Emulator } from '../../harness';
import { tempDir, smallTopology, createVolume, write, pattern } from '../harness/env';
import { runSanctl } from './run-sanctl';

test('sanctl pair: create --wait (progress bar), split --wait, status --json, resync, reverse, delete; bad transitions exit 1 with the sense in words', async (t) => {
  const emu = await Emulator.start(smallTopology({ dir: tempDir('sanctl-pair'), mode: 'deterministic', seed: 3 }), { debug: true });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'db', blocks: 65536, blockSize: 512, media: [0] }, 1);
  await createVolume(s, { name: 'db-copy', blocks: 65536, blockSize: 512, media: [1] }, 2);
  for (let off = 0; off < 32 << 20; off += 1 << 20) await write(s, 1, off / 512, pattern(1 << 20, off));
  const o = { connect: async () => emu.connect(), sleep: (ms: number) => emu.advance(ms), now: () => emu.driver().now() / 1e6 };
  const created = await runSanctl(['pair', 'create', 'db', 'db-copy', '--wait'], { ...o, tty: true });
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /duplex \(source duplex, target duplex\), 0 of 512 tracks pending, 512 copied/);
  t.regex(created.stderr, /copy \[#+/, 'a progress bar on the terminal');
  const split = await runSanctl(['--json', 'pair', 'split', 'db', '--wait'], o);
  t.is(split.code, 0, split.stderr);
  t.like(JSON.parse(split.stdout), { state: 'split', sourceState: 'split', targetState: 'split', pendingTracks: 0 });
  const again = await runSanctl(['pair', 'split', 'db'], o);
  t.is(again.code, 1);
  t.regex(again.stderr, /PAIR STATE DOES NOT ALLOW THIS/);
  await write(s, 1, 0, pattern(4096, 1));
  const status = JSON.parse((await runSanctl(['--json', 'pair', 'status'], o)).stdout);
  t.is(status.pairs[0].sourceChangedTracks, 1);
  t.is((await runSanctl(['pair', 'resync', 'db-copy', '--wait'], o)).code, 0);
  t.is((await runSanctl(['pair', 'split', 'db', '--wait'], o)).code, 0);
  t.is((await runSanctl(['pair', 'reverse', 'db', '--wait'], o)).code, 0);
  const del = await runSanctl(['pair', 'delete', 'db'], o);
  t.is(del.code, 0);
  t.regex((await runSanctl(['pair', 'status'], o)).stdout, /no pairs/);
  const none = await runSanctl(['pair', 'split', 'db'], o);
  t.is(none.code, 1);
  t.regex(none.stderr, /NO SUCH PAIR/);
  t.is((await runSanctl(['pair', 'create', 'db', 'db-copy', '--track-size', '96KiB'], o)).code, 1);
});
