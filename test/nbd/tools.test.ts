// The NBD server with clients no one here wrote: libnbd's nbdinfo (size, block sizes, the export
// list) and nbdcopy (a file into a volume and back), qemu-img copying a disk image into a volume and
// back over nbd:// and iscsi:// crossed (each front end reads what the other wrote), and fio's nbd
// engine running a verify workload. Each skips with a message when its program is missing
// (apt-get install libnbd-bin qemu-utils fio).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { startNbd, have, run } from './env';
import { pattern, createVolume } from '../harness/env';

test('nbdinfo: the export\'s size, block size constraints, flags; --list names every volume of the port', async (t) => {
  if (!have(t, 'nbdinfo', 'libnbd-bin')) return;
  const a = await startNbd('nbd-info', { blocks: 20480, blockSize: 4096 });
  t.teardown(() => a.emu.stop());
  const info = await run('nbdinfo', ['--json', `${a.url}/v`]);
  t.is(info.code, 0, info.stderr);
  const j = JSON.parse(info.stdout);
  t.is(j.protocol, 'newstyle-fixed');
  const e = j.exports[0];
  t.is(e['export-name'], 'v');
  t.is(e['export-size'], 20480 * 4096);
  t.is(e['block_size_minimum'], 4096, 'the minimum is the volume\'s block size');
  t.is(e['block_size_preferred'], 4096);
  t.is(e['block_size_maximum'], 32 << 20);
  for (const k of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_multi_conn']) t.true(e[k], k);
  t.false(e['is_read_only']);
  await createVolume(a.emu.connect(), { name: 'w', blocks: 2048, blockSize: 512, placement: 'linear' }, 2);
  const list = await run('nbdinfo', ['--list', '--json', a.url]);
  t.is(list.code, 0, list.stderr);
  t.deepEqual(JSON.parse(list.stdout).exports.map((x: { 'export-name': string }) => x['export-name']), ['v', 'w']);
  const none = await run('nbdinfo', [`${a.url}/nosuch`]);
  t.not(none.code, 0);
  t.regex(none.stderr, /server replied with error to opt_go request: No such file or directory for export: nosuch/); // NBD_REP_ERR_UNKNOWN
});

test('nbdcopy: a 12 MiB file into the volume and back, identical (multi-conn, structured replies)', async (t) => {
  if (!have(t, 'nbdcopy', 'libnbd-bin')) return;
  const a = await startNbd('nbd-copy', { blocks: 32768 });
  t.teardown(() => a.emu.stop());
  const image = path.join(a.dir, 'in.img');
  const back = path.join(a.dir, 'out.img');
  const data = pattern(12 << 20, 7);
  fs.writeFileSync(image, Buffer.concat([data, Buffer.alloc((16 << 20) - data.length)]));
  const into = await run('nbdcopy', ['--flush', image, `${a.url}/v`]);
  t.is(into.code, 0, into.stderr);
  const out = await run('nbdcopy', [`${a.url}/v`, back]);
  t.is(out.code, 0, out.stderr);
  t.true(fs.readFileSync(back).equals(fs.readFileSync(image)), 'the file came back byte for byte');
});

async function qemuRoundTrip(t: import('ava').ExecutionContext, into: 'nbd' | 'iscsi'): Promise<void> {
  const a = await startNbd(`nbd-qemu-${into}`, { blocks: 32768, extraPorts: [{ name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }] });
  t.teardown(() => a.emu.stop());
  const iscsi = `${a.emu.array().targets.find((x) => x.port === 'fe0')!.target}/1`;
  const nbd = `${a.url}/v`;
  const image = path.join(a.dir, 'in.img');
  const back = path.join(a.dir, 'out.img');
  fs.writeFileSync(image, pattern(16 << 20, into === 'nbd' ? 5 : 6));
  const [to, from] = into === 'nbd' ? [nbd, iscsi] : [iscsi, nbd];
  const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', image, to]);
  t.is(w.code, 0, w.stderr);
  const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', from, back]);
  t.is(r.code, 0, r.stderr);
  t.true(fs.readFileSync(back).equals(fs.readFileSync(image)), `written over ${to.split(':')[0]}, read back over ${from.split(':')[0]}: identical`);
}

test('qemu-img convert: a 16 MiB image into the volume over nbd://, back over iscsi://, identical', async (t) => {
  if (!have(t, 'qemu-img', 'qemu-utils')) return;
  await qemuRoundTrip(t, 'nbd');
});

test('qemu-img convert: a 16 MiB image into the volume over iscsi://, back over nbd://, identical', async (t) => {
  if (!have(t, 'qemu-img', 'qemu-utils')) return;
  await qemuRoundTrip(t, 'iscsi');
});

test('fio --ioengine=nbd: random 4 KiB writes at depth 16 then a crc32c verify of every block, no errors', async (t) => {
  if (!have(t, 'fio', 'fio')) return;
  const a = await startNbd('nbd-fio', { blocks: 32768 });
  t.teardown(() => a.emu.stop());
  const r = await run('fio', ['--name=verify', '--ioengine=nbd', `--uri=${a.url}/v`, '--rw=randwrite', '--bs=4k',
    '--iodepth=16', '--size=16m', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--verify_state_save=0',
    '--output-format=json']);
  t.is(r.code, 0, r.stderr + r.stdout);
  const job = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0];
  t.is(job.error, 0);
  t.is(job.write.total_ios, 4096, 'every block written once');
  t.true(job.read.total_ios >= 4096, 'and read back for the verify');
});
