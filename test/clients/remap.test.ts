// A LUN that names another volume while a session is open (issue 8's unit attentions; SPC-5 5.14):
// the session must be told, REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh), before a command of it reaches
// the other volume (docs/scsi.md, "Unit attentions"). The delete establishes it for LUN 1 of every
// open session of the port; the next command to LUN 1, whatever is mapped there by then, meets it.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { tempDir, startSmall, createVolume, write, pattern } from '../harness/env';
import { startIscsi } from '../iscsi/env';
import { IscsiConn } from '../../host/iscsi';
import { startNbd } from '../nbd/env';
import { NbdClient, CMD, E } from '../nbd/client';

const read10 = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]);

test('a session open while its LUN 1 is deleted and another volume mapped there gets UNIT ATTENTION 3Fh/0Eh before the other volume\'s data', async (t) => {
  const emu = await startSmall({ dir: tempDir('remap'), ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 0, transport: 'inproc' }] });
  t.teardown(() => emu.stop());
  const admin = emu.connect(undefined, 'q0');
  const host = emu.connect(undefined, 'q1');
  const v1 = await createVolume(admin, { name: 'v1', blocks: 4096, blockSize: 512, placement: 'linear' }, 1);
  await write(admin, 1, 0, pattern(4096, 1));
  t.is((await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })).status, 0, 'the host reads v1 at LUN 1');
  await new ScsiClient(admin).deleteVolume(v1, { force: true });
  await createVolume(admin, { name: 'v2', blocks: 8192, blockSize: 512, placement: 'linear' }, 1);
  await write(admin, 1, 0, pattern(4096, 2));
  const first = await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 });
  const s = first.sense.length > 0 ? scsi.decodeSense(first.sense) : undefined;
  // Today: GOOD, v2's bytes, to a host that still takes LUN 1 for v1 (4096 blocks; v2 has 8192).
  t.deepEqual([first.status, s?.key, s?.asc, s?.ascq], [2, scsi.SenseKey.UNIT_ATTENTION, 0x3F, 0x0E]);
  t.is((await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })).status, 0, 'then the host reads on');
});

/** [status, key, ASC, ASCQ] of a result. */
function outcome(r: { status: number; sense: Uint8Array }): Array<number | undefined> {
  const s = r.sense.length > 0 ? scsi.decodeSense(Buffer.from(r.sense)) : undefined;
  return [r.status, s?.key, s?.asc, s?.ascq];
}

test('framed: a session open while its LUN is unmapped gets LOGICAL UNIT NOT SUPPORTED, and 3Fh/0Eh once something is mapped there again; other LUNs and new sessions are not told', async (t) => {
  const emu = await startSmall({ dir: tempDir('remap-framed'), ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 0, transport: 'inproc' }] });
  t.teardown(() => emu.stop());
  const admin = emu.connect(undefined, 'q0');
  const host = emu.connect(undefined, 'q1');
  const v1 = await createVolume(admin, { name: 'v1', blocks: 4096, blockSize: 512, placement: 'linear' }, 1);
  await createVolume(admin, { name: 'v2', blocks: 4096, blockSize: 512, placement: 'linear' }, 2);
  t.deepEqual(outcome(await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [0, undefined, undefined, undefined]);
  const client = new ScsiClient(admin);
  await client.unmapVolume(v1, 1, 1); // port 1 is q1
  t.deepEqual(outcome(await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [2, scsi.SenseKey.ILLEGAL_REQUEST, 0x25, 0x00], 'nothing at LUN 1 now');
  t.deepEqual(outcome(await host.submit({ lun: 2, cdb: read10, dataInLength: 4096 })), [0, undefined, undefined, undefined], 'LUN 2 did not change');
  await client.mapVolume(v1, 1, 1);
  const late = emu.connect(undefined, 'q1');
  t.deepEqual(outcome(await late.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [0, undefined, undefined, undefined], 'a session opened after the change has nothing to be told');
  t.deepEqual(outcome(await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [2, scsi.SenseKey.UNIT_ATTENTION, 0x3F, 0x0E]);
  t.deepEqual(outcome(await host.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [0, undefined, undefined, undefined], 'reported once');
  t.deepEqual(outcome(await admin.submit({ lun: 1, cdb: read10, dataInLength: 4096 })), [0, undefined, undefined, undefined], 'the nexus that changed the map is not told');
});

test('iSCSI: a session whose LUN 1 is remapped to another volume gets 3Fh/0Eh first (REQUEST SENSE returns it), then the other volume', async (t) => {
  const a = await startIscsi('remap-iscsi', { blocks: 4096 });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  t.is((await c.command(1, read10, { read: 4096 })).status, 0);
  const admin = a.emu.connect(undefined, 'q0');
  const client = new ScsiClient(admin);
  const v = (await client.listVolumes()).find((x) => x.name === 'v')!.number;
  const other = await createVolume(admin, { name: 'w', blocks: 8192, blockSize: 512, placement: 'linear' }, 2);
  await client.unmapVolume(v, 0, 1); // port 0 is fe0
  await client.mapVolume(other, 0, 1);
  const rs = await c.command(1, Buffer.from([0x03, 0, 0, 0, 18, 0]), { read: 18 });
  t.is(rs.status, 0);
  const s = scsi.decodeSense(rs.data);
  t.deepEqual([s.key, s.asc, s.ascq], [scsi.SenseKey.UNIT_ATTENTION, 0x3F, 0x0E], 'REQUEST SENSE returns the condition and clears it');
  t.is((await c.command(1, read10, { read: 4096 })).status, 0);
});

test('NBD: a connection whose export is deleted and recreated under the same name gets EIO, never the new volume\'s bytes', async (t) => {
  const a = await startNbd('remap-nbd', { blocks: 4096 });
  t.teardown(() => a.emu.stop());
  const c = await NbdClient.connect(a.port);
  t.teardown(() => c.close());
  await c.handshake();
  await c.go('v', true);
  c.request(CMD.READ, 1n, 0, 4096);
  t.is((await c.reply(4096)).error, 0);
  const admin = a.emu.connect(undefined, 'q0');
  const client = new ScsiClient(admin);
  const v = (await client.listVolumes()).find((x) => x.name === 'v')!.number;
  await client.deleteVolume(v, { force: true });
  c.request(CMD.READ, 2n, 0, 4096);
  t.is((await c.reply(4096)).error, E.EIO, 'deleted: EIO');
  const again = await createVolume(admin, { name: 'v', blocks: 4096, blockSize: 512, placement: 'linear' }, 1);
  t.is(again, v, 'the new volume took the old one\'s number and LUN');
  await write(admin, 1, 0, pattern(4096, 7));
  c.request(CMD.READ, 3n, 0, 4096);
  const r = await c.reply(4096);
  t.is(r.error, E.EIO, 'recreated under the same name: still EIO, the connection was to the volume that is gone');
  t.false(r.data.equals(pattern(4096, 7)));
});
