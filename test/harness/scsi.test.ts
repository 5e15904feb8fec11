// The standard command set through the firmware with the typed client (host/client.ts) over the
// in-process port: what docs/scsi.md promises, checked against the controller itself.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { tempDir, startSmall } from './env';

async function withVolume(t: any, media?: object[]) {
  const dir = tempDir('scsi');
  const emu = await startSmall({ dir, media });
  t.teardown(() => emu.stop());
  const c = new ScsiClient(emu.connect());
  const v = await c.createVolume({ name: 'vol', blocks: 20480, blockSize: 512, placement: 'striped' });
  await c.mapVolume(v.number, scsi.ALL_PORTS, 3);
  return { emu, c, v, dir };
}

test('TEST UNIT READY, REPORT LUNS, READ CAPACITY (10) and (16), MODE SENSE caching page', async (t) => {
  const { c } = await withVolume(t);
  await c.testUnitReady();
  await c.testUnitReady(3);
  t.deepEqual(await c.reportLuns(), [0, 3]);
  const cap = await c.readCapacity(3);
  t.is(cap.blocks, 20480);
  t.is(cap.blockSize, 512);
  const r10 = await c.execute({ lun: 3, cdb: scsi.readCapacity10(), dataInLength: 8 });
  t.deepEqual(scsi.parseReadCapacity10(Buffer.from(r10.data)), { blocks: 20480, blockSize: 512 } as any);
  const caching = await c.modeSenseCaching(3);
  t.true(caching.writeCache, 'WCE: the cache is write-back');
  t.false(caching.readCacheDisabled);
  const std = await c.inquiry(3);
  t.is(std.deviceType, scsi.DeviceType.DISK);
  t.is((await c.inquiry(0)).deviceType, scsi.DeviceType.ARRAY_CONTROLLER);
});

test('REQUEST SENSE returns the sense of the last failed command, then NO SENSE', async (t) => {
  const { c } = await withVolume(t);
  await t.throwsAsync(c.read(3, 20480, 1), { instanceOf: scsi.ScsiError, message: /LOGICAL BLOCK ADDRESS OUT OF RANGE/ });
  const sense = await c.requestSense(3);
  t.deepEqual([sense.key, sense.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x21]);
  t.is((await c.requestSense(3)).key, scsi.SenseKey.NO_SENSE, 'reported once');
});

test('invalid field in CDB: the sense points at the byte', async (t) => {
  const { c } = await withVolume(t);
  const cdb = scsi.inquiry(0x80);
  cdb[1] = 0x00; // a page code without EVPD
  const e = await t.throwsAsync(c.execute({ lun: 3, cdb, dataInLength: 255 }), { instanceOf: scsi.ScsiError });
  t.deepEqual([e!.sense!.key, e!.sense!.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x24]);
  t.deepEqual(e!.sense!.field, { inCdb: true, byte: 2 });
});

test('management: list media shows the topology schedulers; delete refuses a mapped volume; volume-space errors in words', async (t) => {
  const { c, v } = await withVolume(t, [
    { name: 'd0', kind: 'ram', size: '16MiB', scheduler: 'sstf' },
    { name: 'd1', kind: 'ram', size: '16MiB', scheduler: 'deadline', deadlineMs: { read: 10, write: 100 } },
  ]);
  const media = await c.listMedia();
  t.deepEqual(media.map((m) => [m.name, m.scheduler]), [['d0', 'sstf'], ['d1', 'deadline']]);
  const mapped = await t.throwsAsync(c.deleteVolume(v.number), { instanceOf: scsi.ScsiError });
  t.is(mapped!.sense!.asc, 0x80);
  const full = await t.throwsAsync(c.createVolume({ name: 'huge', blocks: 1 << 30, blockSize: 512 }), { instanceOf: scsi.ScsiError });
  t.regex(full!.message, /ILLEGAL REQUEST/);
  const dup = await t.throwsAsync(c.createVolume({ name: 'vol', blocks: 8, blockSize: 512 }), { instanceOf: scsi.ScsiError });
  t.is(dup!.sense!.asc, 0x80);
  await c.deleteVolume(v.number, { force: true });
  t.deepEqual(await c.reportLuns(), [0]);
  t.deepEqual(await c.listVolumes(), []);
});

test('statistics: hit and miss counters and cache occupancy move with the workload', async (t) => {
  const { c, emu } = await withVolume(t);
  await c.write(3, 0, Buffer.alloc(128 << 10, 7));
  await c.read(3, 0, 256);
  await c.read(3, 10000, 8);
  const st = await c.statistics();
  const total = (name: string) => st.iops.reduce((n: number, x: any) => n + x.counters[name], 0);
  t.true(total('readHits') >= 1);
  t.true(total('readMisses') >= 1);
  t.true(st.cache.slots > 0 && st.cache.slots === st.cache.free + st.cache.clean + st.cache.dirty);
  t.is(total('commands'), emu.array().stats()[A.STAT_COMMANDS]);
});

(spawnSync('qemu-img', ['--version']).status === 0 ? test : test.skip)('a file medium is a sparse raw image that qemu-img reads', async (t) => {
  const { c, dir } = await withVolume(t);
  await c.write(3, 0, Buffer.alloc(1 << 20, 0xab), { fua: true });
  const img = path.join(dir, 'a0', 'd0.img');
  const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', img], { encoding: 'utf8' }).stdout);
  t.is(info.format, 'raw');
  t.is(info['virtual-size'], 64 << 20);
  t.true(info['actual-size'] < 8 << 20, `sparse: ${info['actual-size']} bytes allocated`);
  t.true(fs.statSync(img).blocks * 512 < 8 << 20);
});
