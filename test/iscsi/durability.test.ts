// The kill -9 test over iSCSI: `sanbox run` as a process, a volume made and written over iSCSI
// (management commands to LUN 0 and WRITE(10)s, each acknowledged GOOD), the process killed with
// SIGKILL before any destage, started again; qemu-img reads the volume back over iscsi:// and it
// is identical: the acknowledged writes came back from the non-volatile cache.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { tempDir, pattern } from '../harness/env';
import { startSanbox } from '../e2e/sanbox';
import { ensureBuilt } from '../e2e/built';
import { IscsiConn, rw10 } from '../../host/iscsi';
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
      ports: [{ name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }],
    }],
  }));
  return file;
}

test('kill -9 after writes acknowledged over iSCSI: after a restart qemu-img reads them back identical', async (t) => {
  if (!have(t, 'qemu-img', 'qemu-utils')) return;
  const dir = tempDir('iscsi-kill');
  const file = topologyFile(dir);
  const data = pattern(4 << 20, 91);
  let s = await startSanbox(file);
  t.teardown(() => s.child.kill('SIGKILL'));
  const url = s.targets.fe0;
  const m = /^iscsi:\/\/([^:/]+):(\d+)\/(.+)$/.exec(url);
  t.truthy(m, url);
  const [, host, port, target] = m!;
  const c = await IscsiConn.connect(Number(port), host);
  await c.login(target, { InitialR2T: 'No' });
  // The volume, over iSCSI: the management commands of the command device (LUN 0).
  const create = await c.command(0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64),
    { write: Buffer.from(scsi.createVolumeParameters({ name: 'kept', blocks: 16384, blockSize: 512, placement: 'striped' })) });
  t.is(create.status, 0, 'CREATE VOLUME');
  const map = await c.command(0, scsi.management(true, scsi.Management.MAP_VOLUME, 8), { write: Buffer.from(scsi.mapParameters(0, scsi.ALL_PORTS, 1)) });
  t.is(map.status, 0, 'MAP VOLUME');
  const writes = await Promise.all(Array.from({ length: 16 }, (_, i) =>
    c.command(1, rw10(true, i * 512, 512), { write: data.subarray(i << 18, (i + 1) << 18), immediate: 8192 })));
  t.true(writes.every((w) => w.status === 0), 'every WRITE acknowledged GOOD');
  s.child.kill('SIGKILL'); // no flush, no goodbye
  await s.exited;
  c.close();
  const onDisk = ['d0', 'd1'].map((x) => fs.readFileSync(path.join(dir, 'array0', `${x}.img`)));
  t.false(onDisk.some((img) => img.includes(data.subarray(0, 65536))), 'the data was only in the NV cache when the process died');
  s = await startSanbox(file);
  const out = path.join(dir, 'out.img');
  const back = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `${s.targets.fe0}/1`, out]);
  t.is(back.code, 0, back.stderr);
  t.true(fs.readFileSync(out).subarray(0, data.length).equals(data), 'read back identical over iscsi://');
  s.child.kill('SIGTERM');
  t.is(await s.exited, 0);
});
