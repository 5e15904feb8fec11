// LUN security for the library's devices (docs/tape.md "Access"; docs/scsi.md SET/LIST ACCESS):
// the changer and each drive have an access list in the NV access table, checked on every command
// of every front end before the device sees it. Two iSCSI initiators and the in-process ones see
// the devices and are refused as their lists say; the lists are kept across a restart, and a record
// made for a drive does not apply to another drive the topology puts at its index. Task management
// cannot reach a device its initiator cannot see either.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { Emulator } from '../../harness';
import { tempDir, pattern, senseOf } from '../harness/env';
import { libraryTopology, cdb, parseElements, CHANGER, DRIVE0, DRIVE1, DT0 } from './env';
import { IscsiConn, OP, bhs } from '../../host/iscsi';
import type { CommandTransport } from '../../lib/transport';
import { runSanctl } from '../host/run-sanctl';

const WRITER = 'iqn.2026-11.org.example:writer';
const READER = 'iqn.2026-11.org.example:reader';
const ports = [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }];
const timing = { timing: { loadMs: 1, unloadMs: 1, moveMs: 1 } };

/** Tape device indexes as SET ACCESS names them (the index the NAA carries): the changer, then the drives. */
const CHANGER_DEV = 0;
const DRIVE0_DEV = 1;
const DRIVE1_DEV = 2;

type Reply = { status: number; data: Buffer; sense: Buffer };

/** An iSCSI initiator by name; each command is sent again after a unit attention, as an initiator that took note of it does. */
async function initiator(emu: Emulator, name: string): Promise<{ cmd: (lun: number, c: Buffer, io?: { read?: number; write?: Buffer }) => Promise<Reply>; close: () => void }> {
  const conn = await login(emu, name);
  const cmd = async (lun: number, c: Buffer, io: { read?: number; write?: Buffer } = {}): Promise<Reply> => {
    for (let i = 0; ; i++) {
      const r = await conn.command(lun, c, io);
      if (r.status !== 2 || (r.sense[2] & 0xf) !== 6 || i >= 4) return r;
    }
  };
  return { cmd, close: () => conn.sock.destroy() };
}

/** [status, sense key, ASC, ASCQ] of a reply. */
const outcome = (r: Reply): number[] => (r.status === 2 ? [r.status, r.sense[2] & 0xf, r.sense[12], r.sense[13]] : [r.status]);
const GOOD = [0];
const DATA_PROTECT = [2, 7, 0x27, 0];
const NOT_SUPPORTED = [2, 5, 0x25, 0];

async function inprocLuns(t: CommandTransport): Promise<number[]> {
  const r = await t.submit({ lun: 0, cdb: scsi.reportLuns(), dataInLength: 4096 });
  return scsi.parseReportLuns(Buffer.from(r.data)).filter((l) => l >= 256);
}

test('tape access lists: the writer writes, the reader reads and is refused writes, filemarks, erase and moves, drive 1 is hidden from all but the writer; the same after a restart', async (t) => {
  const dir = tempDir('tape-access');
  const topology = libraryTopology({ dir, mode: 'realtime', ports, library: timing });
  let emu = await Emulator.start(topology, { debug: true });
  t.teardown(() => emu.stop());
  const admin = new ScsiClient(emu.connect());
  await admin.setTapeAccess(CHANGER_DEV, 'ro', READER);
  await admin.setTapeAccess(DRIVE0_DEV, 'ro', READER);
  await admin.setTapeAccess(DRIVE1_DEV, 'none', { unnamed: true });
  await admin.setTapeAccess(DRIVE1_DEV, 'rw', WRITER);
  const listed = (await admin.listTapeAccess()).map((e) => [e.tape!.lun, e.tape!.kind, e.unnamed ? '*' : e.initiator, e.mode]);
  t.deepEqual(listed, [
    [CHANGER, 'changer', '*', 'rw'], [CHANGER, 'changer', READER, 'ro'],
    [DRIVE0, 'drive', '*', 'rw'], [DRIVE0, 'drive', READER, 'ro'],
    [DRIVE1, 'drive', '*', 'none'], [DRIVE1, 'drive', WRITER, 'rw'],
  ]);
  t.deepEqual((await admin.listAccess()).length, 0, 'LIST ACCESS of every volume lists no tape device');

  // The writer mounts SB0001L5 in drive 0 and writes a record and a filemark.
  const rec = pattern(8192, 5);
  const writer = await initiator(emu, WRITER);
  const els = parseElements((await writer.cmd(CHANGER, cdb.readElementStatus(), { read: 0xffff })).data);
  t.deepEqual(outcome(await writer.cmd(CHANGER, cdb.moveMedium(els.find((e) => e.barcode === 'SB0001L5')!.address, DT0))), GOOD);
  t.deepEqual(outcome(await writer.cmd(DRIVE0, cdb.load())), GOOD);
  t.deepEqual(outcome(await writer.cmd(DRIVE0, cdb.write(rec.length), { write: rec })), GOOD);
  t.deepEqual(outcome(await writer.cmd(DRIVE0, cdb.writeFilemarks(1))), GOOD);
  writer.close();

  const check = async (when: string): Promise<void> => {
    const w = await initiator(emu, WRITER);
    const r = await initiator(emu, READER);
    const q = emu.connect();
    try {
      // REPORT LUNS: drive 1 only for the writer.
      t.deepEqual(scsi.parseReportLuns((await w.cmd(0, scsi.reportLuns(), { read: 4096 })).data).filter((l) => l >= 256), [CHANGER, DRIVE0, DRIVE1], when);
      t.deepEqual(scsi.parseReportLuns((await r.cmd(0, scsi.reportLuns(), { read: 4096 })).data).filter((l) => l >= 256), [CHANGER, DRIVE0], when);
      t.deepEqual(await inprocLuns(q), [CHANGER, DRIVE0], `${when}: in-process, unnamed`);
      // Hidden: INQUIRY's peripheral qualifier 011b, every other command LOGICAL UNIT NOT SUPPORTED.
      t.is((await r.cmd(DRIVE1, scsi.inquiry(), { read: 96 })).data[0], 0x7f, `${when}: qualifier 011b, no device type`);
      t.deepEqual(outcome(await r.cmd(DRIVE1, cdb.tur())), NOT_SUPPORTED, when);
      t.deepEqual(outcome(await r.cmd(DRIVE1, cdb.rewind())), NOT_SUPPORTED, when);
      const qi = await q.submit({ lun: DRIVE1, cdb: scsi.inquiry(), dataInLength: 96 });
      t.is(Buffer.from(qi.data)[0] >> 5, 3, when);
      t.like(await senseOf(q.submit({ lun: DRIVE1, cdb: cdb.readBlockLimits(), dataInLength: 6 }).then((x) => { if (x.status) throw new scsi.ScsiError(x.status, scsi.decodeSense(x.sense)); })),
        { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x25 }, when);
      t.is((await w.cmd(DRIVE1, scsi.inquiry(), { read: 96 })).data[0], 0x01, `${when}: the writer sees a tape drive`);
      t.deepEqual(outcome(await w.cmd(DRIVE1, cdb.readBlockLimits(), { read: 6 })), GOOD, when);
      // Read-only: what writes, erases or moves a cartridge is DATA PROTECT; reads and positioning run.
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.load())), GOOD, `${when}: LOAD threads it for reading`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.rewind())), GOOD, when);
      const got = await r.cmd(DRIVE0, cdb.read(8192), { read: 8192 });
      t.deepEqual(outcome(got), GOOD, when);
      t.true(got.data.equals(rec), `${when}: the writer's record`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.write(512), { write: Buffer.alloc(512) })), DATA_PROTECT, `${when}: WRITE(6)`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.writeFilemarks(1))), DATA_PROTECT, `${when}: WRITE FILEMARKS`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.erase())), DATA_PROTECT, `${when}: ERASE`);
      t.deepEqual(outcome(await r.cmd(CHANGER, cdb.moveMedium(DT0, 0x1003))), DATA_PROTECT, `${when}: MOVE MEDIUM`);
      t.deepEqual(outcome(await r.cmd(CHANGER, cdb.readElementStatus(), { read: 0xffff })), GOOD, `${when}: READ ELEMENT STATUS`);
      t.deepEqual(outcome(await r.cmd(CHANGER, cdb.initializeElementStatus())), GOOD, `${when}: INITIALIZE ELEMENT STATUS`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.reserve())), GOOD, `${when}: RESERVE`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.release())), GOOD, `${when}: RELEASE`);
      t.deepEqual(outcome(await r.cmd(DRIVE0, Buffer.from([0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]), { write: Buffer.alloc(512) })), DATA_PROTECT, `${when}: WRITE(16), which the drive does not implement`);
      // Nothing the reader sent reached the tape: the record, then the filemark (READ meets it).
      const pos = await r.cmd(DRIVE0, cdb.readPosition(), { read: 20 });
      t.is(pos.data.readUInt32BE(4), 1, `${when}: after the record`);
      const mark = await r.cmd(DRIVE0, cdb.read(8192), { read: 8192 });
      t.true(scsi.decodeSense(mark.sense).filemark, when);
      t.deepEqual(outcome(await r.cmd(DRIVE0, cdb.read(8192), { read: 8192 })).slice(0, 2), [2, 8], `${when}: BLANK CHECK: the reader's WRITE added nothing`);
      // The writer may write where the reader may not.
      t.deepEqual(outcome(await w.cmd(DRIVE0, cdb.rewind())), GOOD, when);
      t.deepEqual(outcome(await w.cmd(DRIVE0, cdb.space(1, 1))), GOOD, when);
      t.deepEqual(outcome(await w.cmd(DRIVE0, cdb.writeFilemarks(0))), GOOD, when);
    } finally {
      w.close();
      r.close();
      q.close();
    }
  };
  await check('before the restart');
  await emu.stop();
  emu = await Emulator.start(topology, { debug: true });
  await check('after the restart');
  t.deepEqual((await new ScsiClient(emu.connect()).listTapeAccess()).map((e) => [e.tape!.lun, e.unnamed ? '*' : e.initiator, e.mode]),
    listed.map(([lun, , who, mode]) => [lun, who, mode]), 'the lists, from NV');
});

test('SET ACCESS to a tape device: no such device, a bad mode, an empty name, removing what is not there or the unnamed mode are refused and change nothing; LIST ACCESS of no device is empty', async (t) => {
  const emu = await Emulator.start(libraryTopology({ dir: tempDir('tape-access-errors'), library: timing }), { debug: true });
  t.teardown(() => emu.stop());
  const admin = new ScsiClient(emu.connect());
  const send = async (p: Buffer) => {
    const r = await admin.transport.submit({ lun: 0, cdb: scsi.management(true, scsi.Management.SET_ACCESS, p.length), dataOut: p });
    return r.status === 2 ? scsi.decodeSense(r.sense) : r.status;
  };
  const before = await admin.listTapeAccess();
  t.like(await send(scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + 3, 'rw', READER)), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x80, ascq: 0x02 }, 'the library has devices 0-2');
  t.like(await send(scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + 0x7fff, 'rw', READER)), { asc: 0x80, ascq: 0x02 });
  const badMode = scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + DRIVE0_DEV, 'rw', READER);
  badMode[2] = 3;
  t.like(await send(badMode), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x26 });
  const emptyName = scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + DRIVE0_DEV, 'rw', READER);
  emptyName.fill(0, 8);
  t.like(await send(emptyName), { asc: 0x26 });
  const removeUnnamed = scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + DRIVE0_DEV, 'rw', { unnamed: true });
  removeUnnamed[2] = 0xff;
  t.like(await send(removeUnnamed), { asc: 0x26 });
  t.like(await senseOf(admin.setTapeAccess(DRIVE0_DEV, 'remove', READER)), { key: scsi.SenseKey.ILLEGAL_REQUEST, asc: 0x26 });
  t.throws(() => scsi.accessParameters(scsi.TAPE_ACCESS_UNIT + DRIVE0_DEV, 'rw', 'x'.repeat(224)), { instanceOf: RangeError }, 'a name that does not fit is refused by the host library');
  t.deepEqual(await admin.listTapeAccess(), before, 'nothing changed');
  t.deepEqual(await admin.listTapeAccess(7), [], 'no device 7: an empty list');
  t.deepEqual(await admin.listAccess(scsi.TAPE_ACCESS_UNIT + 0x100), []);
});

test('a record names its device by index and identity: after the topology puts another drive at index 2, the old records do not apply to it and are not listed', async (t) => {
  const dir = tempDir('tape-access-identity');
  let emu = await Emulator.start(libraryTopology({ dir, library: timing }), { debug: true });
  t.teardown(() => emu.stop());
  let admin = new ScsiClient(emu.connect());
  await admin.setTapeAccess(DRIVE1_DEV, 'none', { unnamed: true });
  await admin.setTapeAccess(DRIVE1_DEV, 'ro', READER);
  t.deepEqual(await inprocLuns(emu.connect()), [CHANGER, DRIVE0]);
  await emu.stop();
  emu = await Emulator.start(libraryTopology({ dir, library: { ...timing, drives: [{ name: 'drive0' }, { name: 'drive9' }] } }), { debug: true });
  admin = new ScsiClient(emu.connect());
  t.deepEqual(await inprocLuns(emu.connect()), [CHANGER, DRIVE0, DRIVE1], 'drive9 is open to every initiator');
  t.deepEqual((await admin.listTapeAccess(DRIVE1_DEV)).map((e) => [e.unnamed, e.mode]), [[true, 'rw']]);
  await emu.stop();
  emu = await Emulator.start(libraryTopology({ dir, library: timing }), { debug: true });
  t.deepEqual(await inprocLuns(emu.connect()), [CHANGER, DRIVE0], 'drive1 back at index 2: its records apply again');
  await emu.stop();
  emu = await Emulator.start(libraryTopology({ dir, library: { ...timing, lun: 300 } }), { debug: true });
  t.deepEqual(await inprocLuns(emu.connect()), [300, 301], 'the library at LUN 300: drive1 (302) still hidden');
});

test('sanctl tape access: lists a device\'s list by LUN, sets an initiator\'s access and the unnamed mode, removes; no device at the LUN and bad words are errors', async (t) => {
  const emu = await Emulator.start(libraryTopology({ dir: tempDir('tape-access-sanctl'), library: timing }), { debug: true });
  t.teardown(() => emu.stop());
  const connect = async () => emu.connect();
  const ctl = (args: string[]) => runSanctl(args, { connect });
  t.is((await ctl(['tape', 'access', '257'])).stdout, 'INITIATOR  ACCESS\n*          read-write\n');
  const set = await ctl(['tape', 'access', '257', READER, 'ro']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /^iqn\.2026-11\.org\.example:reader: read-only on tape drive at LUN 257\n/);
  t.is((await ctl(['tape', 'access', '258', '*', 'none'])).code, 0);
  const j = JSON.parse((await ctl(['--json', 'tape', 'access', '257'])).stdout);
  t.deepEqual(j, { lun: 257, device: 1, kind: 'drive', access: [{ initiator: '*', access: 'rw' }, { initiator: READER, access: 'ro' }] });
  // sanctl's in-process session is unnamed: drive 1 is gone from its LUNs.
  const luns = JSON.parse((await ctl(['--json', 'luns'])).stdout);
  t.deepEqual(luns.luns.filter((l: { lun: number }) => l.lun >= 256).map((l: { lun: number }) => l.lun), [CHANGER, DRIVE0]);
  t.is((await ctl(['tape', 'access', '257', READER, 'remove'])).code, 0);
  t.is((await ctl(['tape', 'access', '258', '*', 'rw'])).code, 0);
  t.is((await ctl(['tape', 'access', '258'])).stdout, 'INITIATOR  ACCESS\n*          read-write\n');
  const nobody = await ctl(['tape', 'access', '300']);
  t.is(nobody.code, 1);
  t.regex(nobody.stderr, /no tape device at LUN 300 \(the library's: 256 changer, 257 drive, 258 drive\)/);
  const low = await ctl(['tape', 'access', '5']);
  t.is(low.code, 2);
  t.regex(low.stderr, /the LUN must be an integer 256-16383/);
  const word = await ctl(['tape', 'access', '257', READER, 'write']);
  t.is(word.code, 2);
  t.regex(word.stderr, /tape access: the access is rw, ro, none or remove/);
  const star = await ctl(['tape', 'access', '257', '*', 'remove']);
  t.is(star.code, 2);
  t.regex(star.stderr, /cannot be removed/);
  const gone = await ctl(['tape', 'access', '257', READER, 'remove']);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /INVALID FIELD IN PARAMETER LIST/);
});

async function login(emu: Emulator, name: string): Promise<IscsiConn> {
  const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(emu.array().targets.find((x) => x.port === 'is0')!.target)!;
  const conn = await IscsiConn.connect(Number(m[2]));
  await conn.login(m[3], {}, { name });
  return conn;
}

async function tmf(c: IscsiConn, fn: number, lun: number): Promise<number> {
  const itt = c.itt();
  c.send(bhs(OP.TASK_MGMT, 0x80 | fn, { itt, cmdSN: c.cmdSN, lun, immediate: true }));
  return (await c.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2];
}

test('task management: a LUN RESET of a drive the initiator cannot see is "LUN does not exist" and leaves its reservation; a TARGET WARM RESET resets only the devices it sees', async (t) => {
  const emu = await Emulator.start(libraryTopology({ dir: tempDir('tape-access-tmf'), mode: 'realtime', ports, library: timing }), { debug: true });
  t.teardown(() => emu.stop());
  const admin = new ScsiClient(emu.connect());
  await admin.setTapeAccess(DRIVE1_DEV, 'none', { unnamed: true });
  await admin.setTapeAccess(DRIVE1_DEV, 'rw', WRITER);
  const w = await login(emu, WRITER);
  const r = await login(emu, READER);
  t.teardown(() => { w.sock.destroy(); r.sock.destroy(); });
  t.deepEqual(outcome(await w.command(DRIVE1, cdb.reserve())), GOOD);
  t.deepEqual(outcome(await w.command(DRIVE0, cdb.tur())).slice(0, 2), [2, 2], 'drive 0: NOT READY, no unit attention pending');
  t.is(await tmf(r, 5, DRIVE1), 2, 'LUN RESET: LUN does not exist');
  t.is(await tmf(r, 2, DRIVE1), 2, 'ABORT TASK SET: the same');
  t.deepEqual(outcome(await w.command(DRIVE1, cdb.tur())).slice(0, 2), [2, 2], 'no 29h/03h: drive 1 was not reset');
  t.is(await tmf(r, 6, 0), 0, 'TARGET WARM RESET: function complete');
  t.deepEqual(outcome(await w.command(DRIVE0, cdb.tur())), [2, 6, 0x29, 0x03], 'drive 0, which the reader sees, was reset');
  t.deepEqual(outcome(await w.command(DRIVE1, cdb.tur())).slice(0, 2), [2, 2], 'drive 1 was not');
  const other = await login(emu, 'iqn.2026-11.org.example:other');
  t.teardown(() => other.sock.destroy());
  t.is((await other.command(DRIVE1, cdb.tur())).status, 2);
  t.is((await other.command(DRIVE1, scsi.inquiry(), { read: 96 })).data[0], 0x7f, 'hidden from a third initiator too');
  await admin.setTapeAccess(DRIVE1_DEV, 'rw', 'iqn.2026-11.org.example:other');
  t.is((await other.command(DRIVE1, cdb.tur())).status, 0x18, 'once it may see drive 1: the writer\'s RESERVE is still there');
});
