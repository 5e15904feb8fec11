// examples/two-sites.json (docs/topology.md's two-site example) boots and does what the docs say:
// the same file with its directories in a temporary folder, its TCP ports on any free port, in
// deterministic mode; the docs' sanctl steps through the client library.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { Emulator, loadTopology } from '../../harness';
import { ScsiClient } from '../../host/client';
import { ALL_PORTS } from '../../lib/scsi';
import { packagePath } from '../../lib/paths';
import { tempDir, pattern } from '../harness/env';

test('examples/two-sites.json is valid, boots main, relay0 and standby on one clock, and the docs\' example runs on it', async (t) => {
  const file = packagePath('examples', 'two-sites.json');
  const topo = loadTopology(file);
  t.deepEqual(topo.arrays.map((a) => a.name), ['main', 'standby']);
  t.deepEqual(topo.links.map((l) => [l.name, l.km]), [['near', 10], ['far', 1000]]);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const dir = tempDir('two-sites');
  json.mode = 'deterministic';
  delete json.trace;
  for (const a of json.arrays) {
    a.dir = path.join(dir, a.name);
    for (const p of a.ports) if (p.transport === 'tcp') p.port = 0;
  }
  const emu = await Emulator.start(json, { debug: true });
  try {
    const main = new ScsiClient(emu.connect('main'));
    const standby = new ScsiClient(emu.connect('standby'));
    for (const c of [main, standby]) {
      await c.createVolume({ name: 'vol0', blocks: 8192, blockSize: 512 });
      await c.mapVolume(0, ALL_PORTS, 1);
    }
    await main.remoteCreate({ volume: 0, to: 'standby', toVolume: 'vol0', via: 'relay0' });
    for (let i = 0; (await main.remoteOf(0)).state !== 'pair'; i++) {
      t.true(i < 10_000, 'the initial copy ends');
      await emu.advance(5);
    }
    const data = pattern(1 << 20, 4);
    await main.write(1, 0, data);
    for (let i = 0; (await main.remoteOf(0)).inFlight > 0; i++) { t.true(i < 10_000); await emu.advance(5); }
    t.deepEqual((await main.relayStatus()).map((r) => [r.relay, r.state, r.failed]), [['relay0', 'running', 0]]);
    await standby.remoteChange(0, 'failover');
    t.true((await standby.read(1, 0, 2048)).equals(data));
  } finally {
    await emu.stop();
  }
});
