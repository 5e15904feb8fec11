// End to end through the harness over the in-process queue port: identity, data, errors, faults,
// and what survives a graceful stop and a power loss.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import { Emulator } from '../../harness';
import { tempDir, startSmall, smallTopology, run, createVolume, read, write, pattern, senseOf } from './env';

test('INQUIRY and VPD pages carry the array identity from the topology', async (t) => {
  const dir = tempDir('ident');
  const topo = smallTopology({ dir }) as any;
  topo.arrays[0].serial = 'SBTEST0042';
  topo.arrays[0].deviceId = '6' + '0123456789abcdef0123456789abcde';
  const emu = await Emulator.start(topo, { debug: true });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  const std = scsi.parseStandardInquiry(Buffer.from((await run(s, 0, scsi.inquiry(), { inLength: 255 })).data));
  t.is(std.vendor, 'SANBOX');
  t.is(std.product, 'SANBOX ARRAY');
  const pages = scsi.parseSupportedVpdPages(Buffer.from((await run(s, 0, scsi.inquiry(0x00), { inLength: 255 })).data));
  t.true([0x00, 0x80, 0x83].every((p) => pages.includes(p)));
  t.is(scsi.parseUnitSerialNumber(Buffer.from((await run(s, 0, scsi.inquiry(0x80), { inLength: 255 })).data)), 'SBTEST0042');
  const ids = scsi.parseDeviceIdentification(Buffer.from((await run(s, 0, scsi.inquiry(0x83), { inLength: 255 })).data));
  t.true(ids.some((d) => d.type === scsi.DesignatorType.NAA && Buffer.from(d.value).toString('hex') === topo.arrays[0].deviceId));
});

test('a striped volume takes 1 MiB writes and returns them; a 4096-byte-block volume too', async (t) => {
  const emu = await startSmall({ dir: tempDir('rw') });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'stripe', blocks: 65536, blockSize: 512, placement: 'striped' }, 1);
  await createVolume(s, { name: 'big', blocks: 2048, blockSize: 4096 }, 2);
  const a = pattern(1 << 20, 1);
  await write(s, 1, 100, a);
  t.true((await read(s, 1, 100, 2048)).equals(a));
  const b = pattern(64 << 10, 2);
  await write(s, 2, 7, b, 4096);
  t.true((await read(s, 2, 7, 16, 4096)).equals(b));
  const cap = scsi.parseReadCapacity16(Buffer.from((await run(s, 2, scsi.readCapacity16(), { inLength: 32 })).data));
  t.is(cap.blockSize, 4096);
  t.is(cap.blocks, 2048);
});

test('bad commands get sense data and change nothing: unknown opcode, LBA out of range, unmapped LUN', async (t) => {
  const emu = await startSmall({ dir: tempDir('bad') });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 2048, blockSize: 512 }, 1);
  const before = pattern(2048 * 512, 3);
  await write(s, 1, 0, before);
  const unknown = await senseOf(run(s, 1, Buffer.from([0xe7, 0, 0, 0, 0, 0])));
  t.is(unknown.key, scsi.SenseKey.ILLEGAL_REQUEST);
  t.deepEqual([unknown.asc, unknown.ascq], [0x20, 0x00]);
  const beyond = await senseOf(write(s, 1, 2040, pattern(16 * 512, 4)));
  t.deepEqual([beyond.key, beyond.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x21]);
  t.regex(beyond.text, /LOGICAL BLOCK ADDRESS OUT OF RANGE/);
  const farRead = await senseOf(read(s, 1, 1 << 30, 1));
  t.deepEqual([farRead.key, farRead.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x21]);
  const unmapped = Buffer.from((await run(s, 9, scsi.inquiry(), { inLength: 96 })).data);
  t.is(unmapped[0], 0x7f, 'INQUIRY of an unmapped LUN: no logical unit here (qualifier 011b)');
  const nolun = await senseOf(read(s, 9, 0, 1));
  t.deepEqual([nolun.key, nolun.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x25]);
  t.true((await read(s, 1, 0, 2048)).equals(before), 'the refused write changed nothing');
});

/** A volume whose first `blocks` blocks were written and destaged, on a restarted array: nothing of it cached. */
async function writtenAndRestarted(label: string, media: object[], volumes: Array<{ name: string; media: number[] }>, blocks: number) {
  const o = { dir: tempDir(label), media };
  const first = await startSmall(o);
  let s = first.connect();
  for (let i = 0; i < volumes.length; i++) {
    await createVolume(s, { name: volumes[i].name, blocks: 4096, blockSize: 512, media: volumes[i].media }, i + 1);
    await write(s, i + 1, 0, pattern(blocks * 512, i));
  }
  await first.stop(); // destaged: the chunks were written (reads of never-written chunks need no medium)
  const emu = await startSmall(o);
  s = emu.connect();
  return { emu, s };
}

test('an injected read error surfaces as MEDIUM ERROR with the failing LBA; heal clears it', async (t) => {
  const { emu, s } = await writtenAndRestarted('fault', [{ name: 'd0', kind: 'file', size: '64MiB' }], [{ name: 'v', media: [0] }], 512);
  t.teardown(() => emu.stop());
  emu.array().inject('d0 read error at 0 count 131072');
  const sense = await senseOf(read(s, 1, 300, 8));
  t.is(sense.key, scsi.SenseKey.MEDIUM_ERROR);
  t.is(sense.asc, 0x11); // UNRECOVERED READ ERROR
  t.true(sense.info !== undefined && sense.info >= 256 && sense.info <= 300, `information ${sense.info}`);
  emu.array().inject('d0 heal');
  t.is((await read(s, 1, 300, 8)).length, 4096);
  t.throws(() => emu.array().inject('d7 dead'), { message: /no medium "d7"/ });
  t.throws(() => emu.array().inject('d0 explode'), { message: /cannot parse fault/ });
});

test('a dead medium makes reads of its data NOT READY; the controller keeps serving other volumes', async (t) => {
  const { emu, s } = await writtenAndRestarted('dead', [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }],
    [{ name: 'on0', media: [0] }, { name: 'on1', media: [1] }], 8);
  t.teardown(() => emu.stop());
  emu.array().inject('d0 dead');
  const sense = await senseOf(read(s, 1, 0, 8));
  t.is(sense.key, scsi.SenseKey.NOT_READY);
  const data = pattern(4096, 9);
  await write(s, 2, 0, data);
  t.true((await read(s, 2, 0, 8)).equals(data));
});

for (const how of ['graceful', 'powerFail'] as const) {
  test(`acknowledged writes survive a ${how} stop and the next start`, async (t) => {
    const dir = tempDir(`persist-${how}`);
    // A long destage age keeps the data in the cache (and the NV memory) when the power fails.
    const o = { dir, cache: { destageAgeMs: 60_000, destageIntervalMs: 1000 } };
    const first = await startSmall(o);
    let s = first.connect();
    await createVolume(s, { name: 'keep', blocks: 8192, blockSize: 512, placement: 'striped' }, 1);
    const data = pattern(3 << 20, 11);
    await write(s, 1, 0, data.subarray(0, 1 << 20));
    await write(s, 1, 2048, data.subarray(1 << 20, 2 << 20));
    await write(s, 1, 4096, data.subarray(2 << 20), 512, true); // FUA: on the media at once, the rest stays in cache
    await first.stop(how);
    const onMedia = () => ['d0', 'd1'].some((m) => fs.readFileSync(path.join(dir, 'a0', `${m}.img`)).includes(data.subarray(4096, 8192)));
    // A graceful stop destaged everything; after a power loss the write-back data is only in NV memory.
    t.is(onMedia(), how === 'graceful');
    const second = await startSmall(o);
    t.teardown(() => second.stop());
    s = second.connect();
    const vols = scsi.parseVolumes(Buffer.from((await run(s, 0, scsi.management(false, scsi.Management.LIST_VOLUMES, 4096), { inLength: 4096 })).data));
    t.deepEqual(vols.map((v) => v.name), ['keep']);
    t.true((await read(s, 1, 0, 6144)).equals(data));
    // The recovered data reaches the media: after a flush, the file images hold it too.
    await second.flush();
    t.true(onMedia(), 'the recovered data reached the media');
  });
}

test('inproc:// targets reach a running array through host/connect, as sanctl would', async (t) => {
  const { connect } = await import('../../host/connect');
  const emu = await startSmall({ dir: tempDir('inproc') });
  t.teardown(() => emu.stop());
  const s = await connect('inproc://a0/q0');
  t.is(s.target, 'inproc://a0/q0');
  t.is((await run(s, 0, scsi.testUnitReady())).status, 0);
  await t.throwsAsync(connect('inproc://nosuch/q0'), { message: /no array "nosuch"/ });
  await s.close();
});

test('data-in can land in the caller\'s buffer (one buffer reused by a reading loop); a short one is refused', async (t) => {
  const emu = await startSmall({ dir: tempDir('into') });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 2048, blockSize: 512 }, 1);
  const data = pattern(8192, 12);
  await write(s, 1, 0, data);
  const buf = Buffer.alloc(16384);
  const r = await s.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 16), dataInLength: 8192, dataIn: buf });
  t.is(r.data.buffer, buf.buffer, 'a view of the caller\'s buffer');
  t.true(Buffer.from(r.data).equals(data));
  t.true(buf.subarray(0, 8192).equals(data));
  await t.throwsAsync(s.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 16), dataInLength: 8192, dataIn: Buffer.alloc(100) }), { message: /dataIn holds 100 bytes/ });
});
