// The library's devices are LUNs of every front end: the framed protocol over TCP and iSCSI see the
// same changer and drives (own LUNs, own identifiers) as the in-process port, and a write through one
// is read back through another.
import test from 'ava';
import { Emulator } from '../../harness';
import { tempDir, run, pattern, senseOf } from '../harness/env';
import { libraryTopology, cdb, CHANGER, DRIVE0, SLOT0, DT0 } from './env';
import { IscsiConn } from '../../host/iscsi';
import { connect } from '../../host/connect';
import * as scsi from '../../lib/scsi';

test('tape LUNs answer on framed TCP and iSCSI ports: INQUIRY types, a record written over iSCSI read back over the framed port', async (t) => {
  const emu = await Emulator.start(libraryTopology({
    dir: tempDir('tape-fe'), mode: 'realtime',
    ports: [
      { name: 'q0', iop: 0, transport: 'inproc' },
      { name: 'fe0', iop: 0, transport: 'tcp', port: 0 },
      { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 },
    ],
    library: { timing: { loadMs: 1, unloadMs: 1, moveMs: 1 } },
  }), { debug: true });
  try {
    const targets = Object.fromEntries(emu.array().targets.map((x) => [x.port, x.target]));
    const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(targets.is0)!;
    const is = await IscsiConn.connect(Number(m[2]));
    await is.login(m[3]);
    const fe = await connect(targets.fe0);
    try {
      const inq = await is.command(DRIVE0, scsi.inquiry(), { read: 96 });
      t.is(inq.data[0] & 0x1f, 0x01);
      t.is((await is.command(CHANGER, scsi.inquiry(), { read: 96 })).data[0] & 0x1f, 0x08);
      const luns = scsi.parseReportLuns((await is.command(0, scsi.reportLuns(), { read: 4096 })).data);
      t.true([CHANGER, DRIVE0].every((l) => luns.includes(l)));
      t.is((await is.command(CHANGER, cdb.moveMedium(SLOT0, DT0))).status, 0);
      t.is((await is.command(DRIVE0, cdb.load())).status, 0);
      const rec = pattern(8192, 11);
      t.is((await is.command(DRIVE0, cdb.write(rec.length), { write: rec })).status, 0);
      // The framed session did not load the cartridge: its first command meets 28h/00h (MEDIUM MAY HAVE CHANGED).
      const ua = await senseOf(run(fe, DRIVE0, cdb.rewind()));
      t.deepEqual([ua.key, ua.asc, ua.ascq], [6, 0x28, 0x00]);
      await run(fe, DRIVE0, cdb.rewind());
      t.deepEqual(Buffer.from((await run(fe, DRIVE0, cdb.read(8192), { inLength: 8192 })).data), rec);
      // The filemark sense reaches an iSCSI initiator with its flags.
      t.is((await is.command(DRIVE0, cdb.writeFilemarks(1))).status, 0);
      await run(fe, DRIVE0, cdb.rewind());
      await run(fe, DRIVE0, cdb.space(0, 1));
      const r = await is.command(DRIVE0, cdb.read(100), { read: 100 });
      t.is(r.status, 2);
      t.true(scsi.decodeSense(r.sense).filemark);
    } finally {
      await fe.close();
      is.sock.destroy();
    }
  } finally { await emu.stop(); }
});
