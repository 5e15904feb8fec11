// The fault console's medium faults reach every front end alike (issue 8: "the fault console works
// the same through iSCSI and NBD"). One array, real firmware, three ports: framed (in-process),
// iSCSI and NBD on two channel IOPs. The volume's data is on the medium only (written, destaged by a
// graceful stop, booted again), so every read below stages from the medium the fault is set on.
// The faults are the console's own words (`fault a0 d0 read error at ...` minus the array name),
// given to ArrayController.inject() as the console does.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { IscsiConn, rw10 } from '../../host/iscsi';
import { NbdClient, CMD, E } from '../nbd/client';
import { tempDir, startSmall, createVolume, write, read, pattern, senseOf } from '../harness/env';

const BLOCKS = 4096; // 2 MiB, 32 cache slots of 64 KiB
const LUN = 1;

test('a medium read error, a dead medium and heal from the fault console: framed, iSCSI and NBD get the same sense for the same fault, and the data reads back after heal', async (t) => {
  const dir = tempDir('fault-console');
  const o = {
    dir,
    mode: 'deterministic' as const,
    channels: 2,
    media: [{ name: 'd0', kind: 'file', size: '64MiB' }],
    ports: [
      { name: 'q0', iop: 0, transport: 'inproc' },
      { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 },
      { name: 'nbd0', iop: 1, transport: 'tcp', protocol: 'nbd', port: 0 },
    ],
  };
  const data = pattern(BLOCKS * 512, 5);
  const first = await startSmall(o);
  await createVolume(first.connect(), { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'linear', media: [0] }, LUN);
  await write(first.connect(), LUN, 0, data);
  await first.stop(); // graceful: destaged, so the next boot's cache holds none of it
  const emu = await startSmall(o);
  t.teardown(() => emu.stop());
  const portOf = (name: string) => Number(/:(\d+)(\/|$)/.exec(emu.array().targets.find((x) => x.port === name)!.target)![1]);
  const target = /^iscsi:\/\/[^/]+\/(.+)$/.exec(emu.array().targets.find((x) => x.port === 'is0')!.target)![1];
  const q = emu.connect();
  const is = await IscsiConn.connect(portOf('is0'));
  t.teardown(() => is.close());
  await is.login(target);
  const nbd = await NbdClient.connect(portOf('nbd0'));
  t.teardown(() => nbd.close());
  await nbd.handshake();
  await nbd.go('v', true);
  let handle = 1n;
  const nbdRead = async (lba: number, blocks: number) => {
    nbd.request(CMD.READ, handle++, lba * 512, blocks * 512);
    return nbd.reply(blocks * 512);
  };
  const iscsiRead = (lba: number, blocks: number) => is.command(LUN, rw10(false, lba, blocks), { read: blocks * 512 });
  const senseTriple = (s: scsi.Sense) => [s.key, s.asc, s.ascq];

  // Each front end reads its own cache slot (LBAs 128 apart), so none is served what another staged.
  emu.array().inject('d0 read error at 0 count 131072');
  const framed = await senseOf(read(q, LUN, 300, 8));
  t.deepEqual(senseTriple(framed), [scsi.SenseKey.MEDIUM_ERROR, 0x11, 0x00], 'framed: UNRECOVERED READ ERROR');
  const viaIscsi = await iscsiRead(1300, 8);
  t.is(viaIscsi.status, 2, 'iSCSI: CHECK CONDITION in the SCSI Response');
  const iscsiSense = scsi.decodeSense(viaIscsi.sense);
  t.deepEqual(senseTriple(iscsiSense), [scsi.SenseKey.MEDIUM_ERROR, 0x11, 0x00]);
  t.true(iscsiSense.info !== undefined && iscsiSense.info >= 1280 && iscsiSense.info <= 1300, `INFORMATION ${iscsiSense.info}`);
  const viaNbd = await nbdRead(2300, 8);
  t.is(viaNbd.error, E.EIO, 'NBD: EIO, never data');
  t.is(viaNbd.message, 'sanbox: SCSI status 02, sense 3/11/00');

  emu.array().inject('d0 heal');
  emu.array().inject('d0 dead');
  t.is((await senseOf(read(q, LUN, 3000, 8))).key, scsi.SenseKey.NOT_READY, 'framed: a dead medium is NOT READY');
  const deadIscsi = await iscsiRead(3300, 8);
  t.deepEqual([deadIscsi.status, scsi.decodeSense(deadIscsi.sense).key], [2, scsi.SenseKey.NOT_READY]);
  const deadNbd = await nbdRead(3600, 8);
  t.is(deadNbd.error, E.EIO);
  t.regex(deadNbd.message ?? '', /^sanbox: SCSI status 02, sense 2\//, 'NBD: the NOT READY sense in the message');

  emu.array().inject('d0 heal');
  await emu.advance(5000); // virtual time: the disk IOP probes a medium it found dead, finds it back
  // After heal every front end reads what was written, the slots whose stage failed included.
  t.true((await read(q, LUN, 0, BLOCKS)).equals(data), 'framed');
  const all = await iscsiRead(0, BLOCKS);
  t.is(all.status, 0);
  t.true(all.data.equals(data), 'iSCSI');
  const back = await nbdRead(0, BLOCKS);
  t.is(back.error, 0);
  t.true(back.data.equals(data), 'NBD');
});
