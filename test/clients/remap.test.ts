// A LUN that names another volume while a session is open (issue 8's unit attentions; SPC-5 5.14):
// the session must be told, REPORTED LUNS DATA HAS CHANGED (3Fh/0Eh), before a command of it reaches
// the other volume (docs/scsi.md, "Unit attentions"). The delete establishes it for LUN 1 of every
// open session of the port; the next command to LUN 1, whatever is mapped there by then, meets it.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { tempDir, startSmall, createVolume, write, pattern } from '../harness/env';

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
