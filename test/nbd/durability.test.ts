// The kill -9 test over NBD: `sanbox run` as a process, a volume made over the framed port, written
// over NBD (16 WRITEs, each answered with error 0), the process killed with SIGKILL before any
// destage, started again; nbdcopy reads the volume back over nbd:// and it is identical: what NBD
// acknowledged came back from the non-volatile cache.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { connect } from '../../host/connect';
import { ScsiClient } from '../../host/client';
import * as scsi from '../../lib/scsi';
import { tempDir, pattern } from '../harness/env';
import { startSanbox } from '../e2e/sanbox';
import { ensureBuilt } from '../e2e/built';
import { NbdClient, CMD } from './client';
import { have, run } from './env';

test.before(ensureBuilt); // bin/sanbox.js runs the compiled host code in dist/

function topologyFile(dir: string): string {
  const file = path.join(dir, 'topology.json');
  fs.writeFileSync(file, JSON.stringify({
    trace: 'trace.jsonl',
    arrays: [{
      name: 'array0', dir: 'array0', cache: { size: '16MiB', destageAgeMs: 60000, destageIntervalMs: 1000 },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }],
      ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }, { name: 'nbd0', iop: 0, transport: 'tcp', protocol: 'nbd', port: 0 }],
    }],
  }));
  return file;
}

test('kill -9 after writes acknowledged over NBD: after a restart nbdcopy reads them back identical', async (t) => {
  if (!have(t, 'nbdcopy', 'libnbd-bin')) return;
  const dir = tempDir('nbd-kill');
  const file = topologyFile(dir);
  const data = pattern(4 << 20, 92);
  let s = await startSanbox(file);
  t.teardown(() => s.child.kill('SIGKILL'));
  const admin = new ScsiClient(await connect(s.targets.fe0));
  const v = await admin.createVolume({ name: 'kept', blocks: 16384, blockSize: 512, placement: 'striped' });
  await admin.mapVolume(v.number, scsi.ALL_PORTS, 1);
  await admin.transport.close();
  const c = await NbdClient.connect(Number(/:(\d+)$/.exec(s.targets.nbd0)![1]));
  await c.handshake();
  await c.go('kept');
  for (let i = 0; i < 16; i++) c.request(CMD.WRITE, BigInt(i), i << 18, 1 << 18, 0, data.subarray(i << 18, (i + 1) << 18));
  const replies = [];
  for (let i = 0; i < 16; i++) replies.push(await c.reply()); // one at a time: the client reads one reply at a time
  t.true(replies.every((r) => r.error === 0), 'every WRITE acknowledged');
  s.child.kill('SIGKILL'); // no flush, no goodbye
  await s.exited;
  c.close();
  const onDisk = ['d0', 'd1'].map((x) => fs.readFileSync(path.join(dir, 'array0', `${x}.img`)));
  t.false(onDisk.some((img) => img.includes(data.subarray(0, 65536))), 'the data was only in the NV cache when the process died');
  s = await startSanbox(file);
  const out = path.join(dir, 'out.img');
  const back = await run('nbdcopy', [`${s.targets.nbd0}/kept`, out]);
  t.is(back.code, 0, back.stderr);
  t.true(fs.readFileSync(out).subarray(0, data.length).equals(data), 'read back identical over nbd://');
  s.child.kill('SIGTERM');
  t.is(await s.exited, 0);
});
