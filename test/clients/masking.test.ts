// LUN masking by initiator name on the framed TCP port, through sanctl and the real firmware
// (issue 8: "LUN masking by initiator name applies to all of them"). test/harness/access.test.ts
// shows the list on iSCSI (InitiatorName), NBD (client address) and in-process (slot) sessions; a
// framed host is named by the frame address it sends from ("framed:0100", the client library's
// default, docs/protocol.md), and a host sending from another address is another initiator.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { connect } from '../../host/connect';
import { EXIT_OK, EXIT_FAILED } from '../../host/sanctl';
import { runSanctl } from '../host/run-sanctl';
import { tempDir, startDualChannel, createVolume, pattern } from '../harness/env';

test('framed TCP: sanctl from framed:0100 sees a read-only volume read-only and a hidden one not at all; a host at another frame address keeps read-write', async (t) => {
  const dir = tempDir('masking-framed');
  const emu = await startDualChannel({ dir, name: 'mask1' });
  t.teardown(() => emu.stop());
  const target = emu.array().targets.find((p) => p.port === 'fe0')!.target;
  const admin = new ScsiClient(emu.connect());
  const v = await createVolume(admin.transport, { name: 'v', blocks: 4096, blockSize: 512, placement: 'linear' }, 1);
  const data = pattern(64 << 10, 3);
  t.is((await admin.transport.submit({ lun: 1, cdb: scsi.readWrite(true, 0, 128), dataOut: data })).status, 0);
  const file = path.join(dir, 'in');
  fs.writeFileSync(file, pattern(4096, 9));
  const ctl = (...argv: string[]) => runSanctl(['--target', target, ...argv]);

  await admin.setAccess(v, 'ro', 'framed:0100');
  await admin.setAccess(v, 'rw', 'framed:0200');
  const ro = await ctl('read', 'v', path.join(dir, 'ro'), '--bytes', String(data.length));
  t.is(ro.code, EXIT_OK, ro.stderr);
  t.true(fs.readFileSync(path.join(dir, 'ro')).equals(data));
  const refused = await ctl('write', 'v', file);
  t.is(refused.code, EXIT_FAILED);
  t.regex(refused.stderr, /DATA PROTECT.*WRITE PROTECTED/);
  // Another frame address on the same port is another initiator: its own record (rw) applies.
  const other = await connect(target, { address: 0x0200 });
  t.teardown(() => other.close());
  t.is((await other.submit({ lun: 1, cdb: scsi.readWrite(true, 0, 8), dataOut: pattern(4096, 9) })).status, 0, 'framed:0200 writes');

  await admin.setAccess(v, 'none', 'framed:0100');
  const luns = await ctl('--json', 'luns');
  t.is(luns.code, EXIT_OK, luns.stderr);
  t.false(luns.stdout.includes('"v"'), `LUN 1 is not listed to framed:0100: ${luns.stdout}`);
  const hidden = await ctl('read', 'v', path.join(dir, 'hidden'), '--bytes', '4096');
  t.not(hidden.code, EXIT_OK);
  t.regex(hidden.stderr, /ILLEGAL REQUEST: LOGICAL UNIT NOT SUPPORTED/);
  const viaOther = await other.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 8), dataInLength: 4096 });
  t.is(viaOther.status, 0, 'framed:0200 still reads');
  t.true(Buffer.from(viaOther.data).equals(pattern(4096, 9)));
});
