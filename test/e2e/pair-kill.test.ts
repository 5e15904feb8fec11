// Issue 9: the pair table and state survive a kill -9 of `sanbox run` (real time, a process) with the
// creation copy running. Found by hand (docs/pairs.md): the restarted array suspended the pair,
// "source not ready", every medium fine: at boot the copy began jobs before the disk IOP had read the
// media's labels, and a job took "becoming ready" for a failure. The source disk here is slow, so its
// label read at the restart outlasts the copy's first polls, as it did by hand.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { EXIT_OK } from '../../host/sanctl';
import { runSanctl } from '../host/run-sanctl';
import { ensureBuilt } from './built';
import { tempDir, pattern } from '../harness/env';
import { startSanbox } from './sanbox';

test.before(ensureBuilt);

const ctl = (target: string, ...argv: string[]) => runSanctl(['--target', target, ...argv]);

// A last-resort bound on the wall clock for the copy to end after the restart (it takes about a second
// alone); each look waits on the array's answer.
const COPY_BOUND_MS = 180_000;

interface PairJson { state: string; suspendReason: string; pendingTracks: number }

async function pair(target: string): Promise<PairJson> {
  const r = await ctl(target, '--json', 'pair', 'status');
  if (r.code !== EXIT_OK) throw new Error(`pair status: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { pairs: PairJson[] }).pairs[0];
}

test('kill -9 of sanbox run with the creation copy running (duplex pending): after the restart the copy goes on to duplex, no suspension, the target equals the source', async (t) => {
  const dir = tempDir('pair-kill');
  const file = path.join(dir, 'topology.json');
  fs.writeFileSync(file, JSON.stringify({
    arrays: [{
      name: 'a0', dir: 'a0', cache: { size: '8MiB', destageAgeMs: 5, destageIntervalMs: 2 },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [
        { name: 'd0', kind: 'file', size: '64MiB', faults: [{ type: 'slow', factor: 20 }] },
        { name: 'd1', kind: 'file', size: '64MiB' },
      ],
      ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }],
    }],
  }));
  const data = pattern(16 << 20, 91);
  const input = path.join(dir, 'in.bin');
  fs.writeFileSync(input, data);
  let s = await startSanbox(file);
  t.teardown(() => s.child.kill('SIGKILL'));
  let fe0 = s.targets.fe0;
  for (const [name, medium] of [['src', 'd0'], ['tgt', 'd1']]) {
    const c = await ctl(fe0, 'volume', 'create', name, '--size', '16MiB', '--media', medium);
    t.is(c.code, EXIT_OK, c.stderr);
  }
  const w = await ctl(fe0, 'write', 'src', input);
  t.is(w.code, EXIT_OK, w.stderr);
  const created = await ctl(fe0, 'pair', 'create', 'src', 'tgt');
  t.is(created.code, EXIT_OK, created.stderr);
  s.child.kill('SIGKILL'); // the creation copy running: no flush, no goodbye
  await s.exited;
  s = await startSanbox(file);
  fe0 = s.targets.fe0;
  const back = await pair(fe0);
  t.not(back.state, 'suspended', `came back suspended (${back.suspendReason})`);
  const since = Date.now();
  let now = back;
  while (now.state === 'duplex pending' && Date.now() - since < COPY_BOUND_MS) now = await pair(fe0);
  t.is(now.state, 'duplex', `the pair ended ${now.state} (${now.suspendReason}), ${now.pendingTracks} tracks pending`);
  const out = path.join(dir, 'tgt.bin');
  const r = await ctl(fe0, 'read', 'tgt', out);
  t.is(r.code, EXIT_OK, r.stderr);
  t.true(fs.readFileSync(out).equals(data), 'the target equals the source');
});
