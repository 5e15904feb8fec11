// LUN security by initiator name (document 004; docs/scsi.md "Access lists"): one access list per
// volume, checked on every command of every front end. Here one volume is seen by an NBD client from
// two loopback addresses, two iSCSI initiators and an in-process initiator, each with the access its
// name is given; the list is kept in NV across a restart, and a record never outlives its volume.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import * as A from '../../hal/abi';
import { tempDir, startSmall, createVolume, pattern, senseOf, SmallOptions } from './env';
import { NbdClient, OPT, REP, CMD, E, goData } from '../nbd/client';
import { IscsiConn } from '../../host/iscsi';
import type { Emulator } from '../../harness';
import { runSanctl } from '../host/run-sanctl';
import { connect } from '../../host/connect';

const ports = [
  { name: 'nbd0', iop: 0, transport: 'tcp', protocol: 'nbd', port: 0 },
  { name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 },
  { name: 'q0', iop: 0, transport: 'inproc' },
  { name: 'fr0', iop: 0, transport: 'tcp', port: 0 },
];

function tcp(emu: Emulator, name: string): { port: number; target: string } {
  const url = emu.array().targets.find((x) => x.port === name)!.target;
  const m = /:(\d+)(?:\/(.+))?$/.exec(url)!;
  return { port: Number(m[1]), target: m[2] ?? '' };
}

async function nbdExports(emu: Emulator, from: string): Promise<string[]> {
  const c = await NbdClient.connect(tcp(emu, 'nbd0').port, from);
  await c.handshake();
  c.option(OPT.LIST);
  const r = await c.optionReplies();
  c.close();
  return r.filter((x) => x.type === REP.SERVER).map((x) => x.data.subarray(4).toString());
}

const READER = 'iqn.2026-11.org.example:reader';
const STRANGER = 'iqn.2026-11.org.example:stranger';

test('one access list, every front end: NBD by client address, iSCSI by InitiatorName, framed TCP by frame address, in-process by slot; hidden, read-only, read-write; kept across a restart', async (t) => {
  const o: SmallOptions = { dir: tempDir('access'), ports };
  let emu = await startSmall(o);
  t.teardown(() => emu.stop());
  const v = await createVolume(emu.connect(), { name: 'v', blocks: 4096, blockSize: 512, placement: 'linear' }, 1);
  const admin = new ScsiClient(emu.connect());
  await admin.transport.submit({ lun: 1, cdb: scsi.readWrite(true, 0, 8), dataOut: pattern(4096, 1) });
  await admin.setAccess(v, 'rw', 'nbd:127.0.0.1');
  await admin.setAccess(v, 'ro', 'nbd:127.0.0.2');
  await admin.setAccess(v, 'ro', READER);
  await admin.setAccess(v, 'ro', 'framed:0200');
  await admin.setAccess(v, 'none', { unnamed: true });
  t.deepEqual((await admin.listAccess(v)).map((e) => [e.unnamed ? '*' : e.initiator, e.mode]),
    [['*', 'none'], ['nbd:127.0.0.1', 'rw'], ['nbd:127.0.0.2', 'ro'], [READER, 'ro'], ['framed:0200', 'ro']]);

  const check = async (when: string) => {
    // NBD: listed and writable from .1; read-only from .2; not there at all from .3.
    t.deepEqual(await nbdExports(emu, '127.0.0.1'), ['v'], when);
    t.deepEqual(await nbdExports(emu, '127.0.0.3'), [], when);
    const ro = await NbdClient.connect(tcp(emu, 'nbd0').port, '127.0.0.2');
    await ro.handshake();
    const { flags } = await ro.go('v');
    t.is(flags & 2, 2, `${when}: NBD_FLAG_READ_ONLY`);
    ro.request(CMD.WRITE, 1n, 0, 512, 0, Buffer.alloc(512));
    t.is((await ro.reply()).error, E.EPERM, when);
    ro.request(CMD.READ, 2n, 0, 4096);
    t.true((await ro.reply(4096)).data.equals(pattern(4096, 1)), when);
    ro.close();
    const hidden = await NbdClient.connect(tcp(emu, 'nbd0').port, '127.0.0.3');
    await hidden.handshake();
    hidden.option(OPT.GO, goData('v'));
    t.is((await hidden.optionReplies()).pop()!.type, REP.ERR_UNKNOWN, when);
    hidden.close();
    // iSCSI: the reader reads and may not write; a stranger sees no LUN 1.
    const fe0 = tcp(emu, 'fe0');
    const r = await IscsiConn.connect(fe0.port);
    await r.login(fe0.target, {}, { name: READER });
    t.is((await r.command(1, scsi.readWrite10(false, 0, 8), { read: 4096 })).status, 0, when);
    const w = await r.command(1, scsi.readWrite10(true, 0, 8), { write: Buffer.alloc(4096) });
    t.deepEqual([w.status, w.sense[2] & 0xf, w.sense[12], w.sense[13]], [2, 7, 0x27, 0], `${when}: DATA PROTECT, WRITE PROTECTED`);
    r.close();
    const s = await IscsiConn.connect(fe0.port);
    await s.login(fe0.target, {}, { name: STRANGER });
    const luns = await s.command(0, scsi.reportLuns(), { read: 8 + 256 * 8 });
    t.is(luns.data.readUInt32BE(0), 8, `${when}: REPORT LUNS has LUN 0 only`);
    const inq = await s.command(1, scsi.inquiry(), { read: 255 });
    t.is(inq.data[0] >> 5, 3, `${when}: peripheral qualifier 011b`);
    const rd = await s.command(1, scsi.readWrite10(false, 0, 8), { read: 4096 });
    t.deepEqual([rd.status, rd.sense[2] & 0xf, rd.sense[12]], [2, 5, 0x25], `${when}: LOGICAL UNIT NOT SUPPORTED`);
    s.close();
    // Framed TCP, by frame address: 0200h reads and may not write; 0300h (not named) sees no LUN 1.
    const fr = await connect(`tcp://127.0.0.1:${tcp(emu, 'fr0').port}`, { address: 0x0200 });
    t.is((await fr.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 8), dataInLength: 4096 })).status, 0, `${when}: framed read`);
    const fw = await fr.submit({ lun: 1, cdb: scsi.readWrite(true, 0, 8), dataOut: Buffer.alloc(4096) });
    t.deepEqual([fw.status, fw.sense[2] & 0xf, fw.sense[12]], [2, 7, 0x27], `${when}: framed write DATA PROTECT`);
    await fr.close();
    const fh = await connect(`tcp://127.0.0.1:${tcp(emu, 'fr0').port}`, { address: 0x0300 });
    const fl = await fh.submit({ lun: 0, cdb: scsi.reportLuns(), dataInLength: 8 + 256 * 8 });
    t.is(Buffer.from(fl.data).readUInt32BE(0), 8, `${when}: framed REPORT LUNS has LUN 0 only`);
    const fhr = await fh.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 8), dataInLength: 4096 });
    t.deepEqual([fhr.status, fhr.sense[2] & 0xf, fhr.sense[12]], [2, 5, 0x25], `${when}: framed hidden LOGICAL UNIT NOT SUPPORTED`);
    await fh.close();
    // In-process (inproc:...): not named, so none.
    const q = await emu.connect().submit({ lun: 1, cdb: scsi.readWrite(false, 0, 8), dataInLength: 4096 });
    t.is(q.status, 2, when);
  };
  await check('before the restart');
  await emu.stop();
  emu = await startSmall(o);
  await check('after the restart');
});

test('SET ACCESS: errors for no volume, a bad mode, an empty name and a record to remove that is not there; a record of a deleted volume does not apply to the next volume with its number', async (t) => {
  const emu = await startSmall({ dir: tempDir('access-errors'), ports });
  t.teardown(() => emu.stop());
  const v = await createVolume(emu.connect(), { name: 'v', blocks: 64, blockSize: 512, placement: 'linear' }, 1);
  const admin = new ScsiClient(emu.connect());
  const sense = async (p: Promise<unknown>) => ((await p.then(() => undefined, (e) => e)) as scsi.ScsiError | undefined)?.sense;
  t.like(await sense(admin.setAccess(999, 'rw', 'x')), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x80, ascq: 0x02 });
  const badMode = scsi.accessParameters(v, 'rw', 'x');
  badMode[2] = 7;
  t.like(await sense(admin.transport.submit({ lun: 0, cdb: scsi.management(true, scsi.Management.SET_ACCESS, badMode.length), dataOut: badMode })
    .then((r) => { if (r.status) throw new scsi.ScsiError(r.status, scsi.decodeSense(r.sense)); })), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x26 });
  t.like(await sense(admin.setAccess(v, 'remove', 'nobody')), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x26 });
  // The in-process initiator (q0, slot 0) denied by name, then the volume deleted and made again.
  const queues = (await admin.listSessions()).filter((x) => x.kind === 'queue').map((x) => x.initiator);
  t.true(queues.every((x) => /^inproc:[0-9A-F]{4}$/.test(x)), queues.join());
  for (const q of queues) await admin.setAccess(v, 'none', q);
  t.is((await admin.transport.submit({ lun: 1, cdb: scsi.testUnitReady() })).status, 2, 'every in-process initiator is denied');
  await admin.deleteVolume(v, { force: true });
  const again = await createVolume(emu.connect(), { name: 'w', blocks: 64, blockSize: 512, placement: 'linear' }, 1);
  t.is(again, v, 'the same volume number');
  t.deepEqual((await admin.listAccess(again)).map((e) => [e.unnamed, e.mode]), [[true, 'rw']], 'no record of the old volume');
  t.is((await admin.transport.submit({ lun: 1, cdb: scsi.testUnitReady() })).status, 0, 'and the new volume is open to it');
});

test('sanctl volume access: lists the volume\'s access, sets an initiator\'s, sets the unnamed ones with *, removes; bad words are usage errors', async (t) => {
  const emu = await startSmall({ dir: tempDir('access-sanctl'), ports: [{ name: 'fe0', iop: 0, transport: 'tcp', port: 0 }] });
  t.teardown(() => emu.stop());
  const target = emu.array().targets.find((x) => x.port === 'fe0')!.target;
  const ctl = (args: string[]) => runSanctl(['--target', target, ...args]);
  const made = await ctl(['volume', 'create', 'db', '--size', '1MiB']);
  t.is(made.code, 0, made.stderr);
  t.is((await ctl(['volume', 'access', 'db'])).stdout, 'INITIATOR  ACCESS\n*          read-write\n');
  const set = await ctl(['volume', 'access', 'db', 'iqn.2026-11.org.example:a', 'ro']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /^iqn\.2026-11\.org\.example:a: read-only on volume db\n/);
  t.is((await ctl(['volume', 'access', 'db', '*', 'none'])).code, 0);
  const j = JSON.parse((await ctl(['--json', 'volume', 'access', 'db'])).stdout);
  t.deepEqual(j.access, [{ initiator: '*', access: 'none' }, { initiator: 'iqn.2026-11.org.example:a', access: 'ro' }]);
  // The framed session sanctl uses is now "none": the volume is gone from its LUNs.
  t.regex((await ctl(['luns'])).stdout, /^LUN\s+DEVICE\s+VOLUME\s+SIZE\n0\s+command device\n$/);
  t.is((await ctl(['volume', 'access', 'db', 'iqn.2026-11.org.example:a', 'remove'])).code, 0);
  t.is((await ctl(['volume', 'access', 'db', '*', 'rw'])).code, 0);
  t.is((await ctl(['volume', 'access', 'db'])).stdout, 'INITIATOR  ACCESS\n*          read-write\n');
  const bad = await ctl(['volume', 'access', 'db', 'x', 'write']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /the access is rw, ro, none or remove/);
  t.is((await ctl(['volume', 'access', 'db', 'x'])).code, 2, 'an initiator without an access');
});

test('the access table: all 256 records apply, the last one too and after a restart; the 257th is refused 83h/00h and changes nothing; a record removed makes room', async (t) => {
  const o: SmallOptions = { dir: tempDir('access-full'), ports };
  let emu = await startSmall(o);
  t.teardown(() => emu.stop());
  const v = await createVolume(emu.connect(), { name: 'v', blocks: 64, blockSize: 512, placement: 'linear' }, 1);
  let admin = new ScsiClient(emu.connect());
  const queues = (await admin.listSessions()).filter((x) => x.kind === 'queue').map((x) => x.initiator);
  const fillers = Array.from({ length: 256 - queues.length }, (_, i) => `filler-${i}`);
  for (const name of fillers) await admin.setAccess(v, 'rw', name);
  for (const q of queues) await admin.setAccess(v, 'ro', q); // the last records of the table
  const refusedWrite = async (when: string) => {
    const w = await admin.transport.submit({ lun: 1, cdb: scsi.readWrite(true, 0, 1), dataOut: Buffer.alloc(512) });
    t.deepEqual([w.status, w.sense[2] & 0xf, w.sense[12]], [2, 7, 0x27], `${when}: the table's last record applies`);
  };
  await refusedWrite('before the restart');
  t.like(await senseOf(admin.setAccess(v, 'none', 'one-too-many')), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x83, ascq: 0 });
  t.is((await admin.listAccess(v)).length, 1 + 256, 'the unnamed mode and 256 records, none more');
  await emu.stop();
  emu = await startSmall(o);
  admin = new ScsiClient(emu.connect());
  const mine = (await admin.listSessions()).filter((x) => x.kind === 'queue').map((x) => x.initiator);
  t.true(mine.every((q) => queues.includes(q)), 'the same in-process names after the restart');
  await refusedWrite('after the restart');
  await admin.setAccess(v, 'remove', fillers[0]);
  await admin.setAccess(v, 'none', 'one-too-many');
  t.true((await admin.listAccess(v)).some((e) => e.initiator === 'one-too-many' && e.mode === 'none'), 'in the place removed');
});

test('read-only: every command that would change blocks ends DATA PROTECT, WRITE PROTECTED before anything else, counted in STAT_ACCESS_DENIED; reads go on', async (t) => {
  const emu = await startSmall({ dir: tempDir('access-ro'), ports });
  t.teardown(() => emu.stop());
  const v = await createVolume(emu.connect(), { name: 'v', blocks: 64, blockSize: 512, placement: 'linear' }, 1);
  const admin = new ScsiClient(emu.connect());
  await admin.setAccess(v, 'ro', { unnamed: true });
  const denied = () => emu.array().stats()[A.STAT_ACCESS_DENIED];
  const before = denied();
  // FORMAT UNIT; WRITE 6/10/12/16; WRITE AND VERIFY 10/12/16; WRITE SAME 10/16; UNMAP; COMPARE AND WRITE.
  const ops = [0x04, 0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e, 0x41, 0x93, 0x42, 0x89];
  for (const op of ops) {
    const cdb = Buffer.alloc(op < 0x20 ? 6 : op < 0x60 ? 10 : op < 0xa0 ? 16 : 12);
    cdb[0] = op;
    const r = await admin.transport.submit({ lun: 1, cdb });
    t.deepEqual([r.status, r.sense[2] & 0xf, r.sense[12], r.sense[13]], [2, 7, 0x27, 0], `opcode ${op.toString(16)}`);
  }
  t.is(denied() - before, ops.length);
  const r = await admin.transport.submit({ lun: 1, cdb: scsi.readWrite(false, 0, 8), dataInLength: 4096 });
  t.is(r.status, 0, 'a read');
  t.is(denied() - before, ops.length, 'not counted');
});
