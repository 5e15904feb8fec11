// Deleting a volume while it is busy (issue 7, defect 1), through the real firmware with two
// channel IOPs: a WRITE waiting for its data-out on one of them is ended when the volume is
// deleted from the other, and a volume created afterwards with the same number on the same
// extents reads zeros: nothing of the old volume shows, from the cache or from the media.
import test from 'ava';
import * as P from '../../lib/protocol';
import * as scsi from '../../lib/scsi';
import { Emulator } from '../../harness';
import { smallTopology, tempDir, createVolume, write, read, pattern, run } from './env';
import { rawConnection, commandFrame, tcpPort } from './raw';

const WAIT_MS = 60_000; // real-time frames: a generous guard for a busy machine, not a timing assumption

function twoChannelTopology(dir: string): object {
  const topo = smallTopology({ dir, cache: { destageAgeMs: 600_000, destageIntervalMs: 1000 },
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 't0', iop: 1, transport: 'tcp', host: '127.0.0.1', port: 0 }] }) as { arrays: Array<{ iops: object[] }> };
  topo.arrays[0].iops = [{ role: 'channel' }, { role: 'channel' }, { role: 'disk' }];
  return topo;
}

test('DELETE VOLUME ends a WRITE waiting for data-out on another channel IOP; the next volume of that number reads zeros, also after a restart', async (t) => {
  const dir = tempDir('delete-busy');
  const emu = await Emulator.start(twoChannelTopology(dir), { debug: true });
  const q = emu.connect('a0', 'q0');
  const spec: scsi.VolumeSpec = { name: 'old', blocks: 8192, blockSize: 512, placement: 'linear', media: [0] };
  const v = await createVolume(q, spec, 1);
  const old = pattern(128 * 512, 1);
  await write(q, 1, 0, old);
  await emu.flush(); // the old bytes are on the medium too
  await write(q, 1, 64, pattern(4096, 2)); // and some only in the cache (dirty)

  const c = await rawConnection(tcpPort(emu.array().targets.find((x) => x.port === 't0')!.target));
  t.teardown(() => c.sock.destroy());
  c.sock.write(commandFrame(5, 1, scsi.readWrite(true, 0, 8), 4096, true));
  const rdy = await c.take((f) => f.type === P.FrameType.XFER_RDY && f.tag === 5, WAIT_MS);

  await run(q, 0, scsi.deleteVolume(v, true));
  // The WRITE's data-out arrives after the delete: it must reach nothing.
  for (let at = 0; at < 4096; at += 2048) {
    c.sock.write(P.encodeFrame({ type: P.FrameType.DATA_OUT, flags: at === 2048 ? P.FLAG_LAST : 0, tag: 5, source: P.HOST_ADDRESS,
      destination: P.BROADCAST, sequence: 1 + at / 2048, offset: rdy.offset + at, parameter: 0 }, pattern(2048, 3 + at)));
  }
  const rsp = await c.take((f) => f.type === P.FrameType.RSP && f.tag === 5, WAIT_MS);
  const r = P.decodeResponse(rsp.payload)!;
  t.is(r.status, 2, 'the WRITE was not acknowledged');
  const sense = scsi.decodeSense(r.sense);
  t.deepEqual([sense.key, sense.asc, sense.ascq], [scsi.SenseKey.ABORTED_COMMAND, 0x3F, 0x00], sense.text);

  const again = await createVolume(q, { ...spec, name: 'new' }, 1);
  t.is(again, v, 'the same volume number');
  const zeros = Buffer.alloc(128 * 512);
  t.true((await read(q, 1, 0, 128)).equals(zeros), 'the new volume reads zeros where the old one had data');
  const mine = pattern(4096, 4);
  await write(q, 1, 8, mine);
  await emu.flush();
  await emu.stop('powerFail');

  const emu2 = await Emulator.start(twoChannelTopology(dir), { debug: true });
  t.teardown(() => emu2.stop());
  const q2 = emu2.connect('a0', 'q0');
  const back = await read(q2, 1, 0, 128);
  t.true(back.subarray(0, 4096).equals(zeros.subarray(0, 4096)));
  t.true(back.subarray(4096, 8192).equals(mine));
  t.true(back.subarray(8192).equals(zeros.subarray(8192)), 'the first destage wrote the whole chunk: no old bytes around the new data');
});
