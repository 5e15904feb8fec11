// The iSCSI target with clients no one here wrote: libiscsi's iscsi-ls, iscsi-inq and
// iscsi-readcapacity16 (also with one-way and mutual CHAP), and qemu-img copying a disk image into a
// volume and back over iscsi://, plain and with header digests. Each skips with a message when
// its program is missing (apt-get install libiscsi-bin qemu-utils).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import { startIscsi, have, run, IscsiArray } from './env';
import { pattern } from '../harness/env';

test('iscsi-ls finds the target, its portal and its LUNs; iscsi-inq and iscsi-readcapacity16 read LUN 1', async (t) => {
  if (!have(t, 'iscsi-ls', 'libiscsi-bin')) return;
  const a = await startIscsi('tools-ls', { blocks: 16384 });
  t.teardown(() => a.emu.stop());
  const ls = await run('iscsi-ls', ['-s', `iscsi://${a.portal}`]);
  t.is(ls.code, 0, ls.stderr);
  t.true(ls.stdout.includes(`Target:${a.target} Portal:${a.portal},1`), ls.stdout);
  t.regex(ls.stdout, /Lun:0\s+Type:STORAGE_ARRAY_CONTROLLER/);
  t.regex(ls.stdout, /Lun:1\s+Type:DIRECT_ACCESS/);
  const inq = await run('iscsi-inq', [`${a.url}/1`]);
  t.is(inq.code, 0, inq.stderr);
  t.regex(inq.stdout, /Vendor:SANBOX/);
  t.regex(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/);
  const cap = await run('iscsi-readcapacity16', [`${a.url}/1`]);
  t.is(cap.code, 0, cap.stderr);
  t.regex(cap.stdout, /RETURNED LOGICAL BLOCK ADDRESS:16383/);
  t.regex(cap.stdout, /LOGICAL BLOCK LENGTH IN BYTES:512/);
});

const chap = { user: 'alice', secret: 'alice-secret-123' };

test('CHAP: iscsi-ls logs in with the right secret; a wrong one or none is an Authentication failure (0201h)', async (t) => {
  if (!have(t, 'iscsi-ls', 'libiscsi-bin')) return;
  const a = await startIscsi('tools-chap', { chap });
  t.teardown(() => a.emu.stop());
  const ok = await run('iscsi-ls', ['-s', `iscsi://alice%alice-secret-123@${a.portal}`]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /Lun:1\s+Type:DIRECT_ACCESS/);
  for (const creds of ['alice%wrong-secret-999@', 'mallory%alice-secret-123@', '']) {
    const bad = await run('iscsi-ls', ['-s', `iscsi://${creds}${a.portal}`]);
    t.not(bad.code, 0, `credentials ${JSON.stringify(creds)} were accepted`);
    t.regex(bad.stdout + bad.stderr, /Authentication failure/, creds);
  }
});

test('mutual CHAP: the target proves its own secret; an initiator expecting another secret refuses the target', async (t) => {
  if (!have(t, 'iscsi-inq', 'libiscsi-bin')) return;
  const a = await startIscsi('tools-mutual', { chap: { ...chap, targetUser: 'array0', targetSecret: 'array-secret-456' } });
  t.teardown(() => a.emu.stop());
  const url = (targetSecret: string) => `iscsi://alice%alice-secret-123@${a.portal}/${a.target}/1?target_user=array0&target_password=${targetSecret}`;
  const ok = await run('iscsi-inq', [url('array-secret-456')]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /Vendor:SANBOX/);
  const wrong = await run('iscsi-inq', [url('not-the-secret-1')]);
  t.not(wrong.code, 0);
  t.regex(wrong.stdout + wrong.stderr, /Invalid CHAP_R response from the target/);
  // A port set for mutual CHAP refuses an initiator that does not ask to verify it.
  const oneWay = await run('iscsi-inq', [`iscsi://alice%alice-secret-123@${a.portal}/${a.target}/1`]);
  t.not(oneWay.code, 0);
  t.regex(oneWay.stdout + oneWay.stderr, /Authentication failure/);
});

/** `volume(a)`: the volume as qemu-img names it: a URL, or driver options (opts true). */
async function convertRoundTrip(t: import('ava').ExecutionContext, label: string, volume: (a: IscsiArray) => string, opts = false): Promise<IscsiArray> {
  const a = await startIscsi(label, { blocks: 32768, trace: true });
  t.teardown(() => a.emu.stop());
  const image = path.join(a.dir, 'in.img');
  const back = path.join(a.dir, 'out.img');
  fs.writeFileSync(image, pattern(16 << 20, 5));
  const into = await run('qemu-img', opts ? ['convert', '-n', '-f', 'raw', '--target-image-opts', image, volume(a)]
    : ['convert', '-n', '-f', 'raw', '-O', 'raw', image, volume(a)]);
  t.is(into.code, 0, into.stderr);
  const out = await run('qemu-img', opts ? ['convert', '--image-opts', volume(a), '-O', 'raw', back]
    : ['convert', '-f', 'raw', '-O', 'raw', volume(a), back]);
  t.is(out.code, 0, out.stderr);
  t.true(fs.readFileSync(back).equals(fs.readFileSync(image)), 'the image came back byte for byte');
  return a;
}

/** The login records of the run's trace (the emulator is stopped first, so the trace is whole). */
async function logins(a: IscsiArray): Promise<Array<Record<string, unknown>>> {
  await a.emu.stop();
  return fs.readFileSync(path.join(a.dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.type === 'login');
}

test('qemu-img convert copies a 16 MiB image into a volume and back over iscsi://, identical', async (t) => {
  if (!have(t, 'qemu-img', 'qemu-utils')) return;
  const a = await convertRoundTrip(t, 'tools-qemu', (x) => `${x.url}/1`);
  const l = await logins(a);
  t.true(l.length >= 2 && l.every((r) => r.status === 0 && r.sessionType === 'normal' && r.headerDigest === false));
});

test('qemu-img convert with header digests (CRC32C) on: identical, and every login says so', async (t) => {
  if (!have(t, 'qemu-img', 'qemu-utils')) return;
  // qemu takes libiscsi's digest setting as a driver option (its own URL parser does not).
  const a = await convertRoundTrip(t, 'tools-qemu-digest',
    (x) => `driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=${x.portal},file.target=${x.target},file.lun=1,file.header-digest=crc32c`, true);
  t.is(a.emu.array().stats()[A.STAT_ISCSI_DIGEST_ERRORS], 0);
  const l = await logins(a);
  t.true(l.length >= 2, JSON.stringify(l));
  t.true(l.every((r) => r.headerDigest === true), JSON.stringify(l));
});
