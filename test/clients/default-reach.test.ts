// A volume `sanctl volume create` makes is reachable from every front end by default (issue 8): a
// LUN of the iSCSI target and an NBD export named after the volume, beside the framed ports, on
// the real firmware. What one front end writes the others read.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { IscsiConn, rw10 } from '../../host/iscsi';
import { NbdClient, OPT, REP, CMD } from '../nbd/client';
import { EXIT_OK } from '../../host/sanctl';
import { runSanctl } from '../host/run-sanctl';
import { tempDir, startSmall, pattern } from '../harness/env';

test('sanctl volume create over a framed port: the volume is LUN 1 of the iSCSI target and NBD export "db" at once; bytes written by each front end read back through the others', async (t) => {
  const dir = tempDir('default-reach');
  const emu = await startSmall({
    dir,
    channels: 2,
    ports: [
      { name: 'fe0', iop: 0, transport: 'tcp', port: 0 },
      { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 },
      { name: 'nbd0', iop: 1, transport: 'tcp', protocol: 'nbd', port: 0 },
    ],
  });
  t.teardown(() => emu.stop());
  const url = (name: string) => emu.array().targets.find((x) => x.port === name)!.target;
  const ctl = (...argv: string[]) => runSanctl(['--target', url('fe0'), ...argv]);
  const made = await ctl('volume', 'create', 'db', '--size', '1MiB');
  t.is(made.code, EXIT_OK, made.stderr);
  t.regex(made.stdout, /mapped to every port LUN 1/);

  // NBD: listed by its name, and opened with the volume's size.
  const nbdPort = Number(/:(\d+)$/.exec(url('nbd0'))![1]);
  const lister = await NbdClient.connect(nbdPort);
  await lister.handshake();
  lister.option(OPT.LIST);
  const names = (await lister.optionReplies()).filter((r) => r.type === REP.SERVER).map((r) => r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
  lister.close();
  t.deepEqual(names, ['db']);
  const nbd = await NbdClient.connect(nbdPort);
  t.teardown(() => nbd.close());
  await nbd.handshake();
  t.is((await nbd.go('db', true)).size, 1n << 20n);

  // iSCSI: LUN 1 of the port's target, of the volume's capacity.
  const m = /^iscsi:\/\/[^:]+:(\d+)\/(.+)$/.exec(url('is0'))!;
  const is = await IscsiConn.connect(Number(m[1]));
  t.teardown(() => is.close());
  await is.login(m[2]);
  const luns = await is.command(0, scsi.reportLuns(0, 8 + 16 * 8), { read: 8 + 16 * 8 });
  t.is(luns.status, 0);
  const listed = Array.from({ length: luns.data.readUInt32BE(0) / 8 }, (_, i) => luns.data.readUInt16BE(8 + i * 8) & 0x3fff);
  t.true(listed.includes(1), `REPORT LUNS: ${listed.join(', ')}`);
  const cap = await is.command(1, scsi.readCapacity10(), { read: 8 });
  t.deepEqual([cap.status, cap.data.readUInt32BE(0) + 1, cap.data.readUInt32BE(4)], [0, 2048, 512]);

  // Framed (sanctl) writes, NBD and iSCSI read; NBD writes, iSCSI and sanctl read.
  const first = pattern(64 << 10, 1);
  fs.writeFileSync(path.join(dir, 'first'), first);
  t.is((await ctl('write', 'db', path.join(dir, 'first'))).code, EXIT_OK);
  nbd.request(CMD.READ, 1n, 0, first.length);
  t.true((await nbd.reply(first.length)).data.equals(first), 'NBD reads what sanctl wrote');
  const viaIscsi = await is.command(1, rw10(false, 0, first.length / 512), { read: first.length });
  t.true(viaIscsi.data.equals(first), 'iSCSI reads what sanctl wrote');
  const second = pattern(64 << 10, 2);
  nbd.request(CMD.WRITE, 2n, 65536, second.length, 0, second);
  t.is((await nbd.reply()).error, 0);
  const back = await is.command(1, rw10(false, 128, second.length / 512), { read: second.length });
  t.true(back.data.equals(second), 'iSCSI reads what NBD wrote');
  const out = path.join(dir, 'second');
  const r = await ctl('read', 'db', out, '--offset', '65536', '--bytes', String(second.length));
  t.is(r.code, EXIT_OK, r.stderr);
  t.true(fs.readFileSync(out).equals(second), 'sanctl reads what NBD wrote');
});
