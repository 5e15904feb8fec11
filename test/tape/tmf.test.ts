// Task management on the library's LUNs over iSCSI (docs/tape.md, "Task management"): a LUN
// RESET, ABORT TASK SET or CLEAR TASK SET naming a drive or the changer (LUN 256 and up) is
// performed — it used to be answered "LUN does not exist" — the drive's command in flight ends
// with no status and the mechanism stops (the claim is given back; a request not yet under way
// is dropped), a LUN reset releases the RESERVE and gives the other nexuses 29h/03h. Real time
// with a slow tape (a rewind of a few hundred KiB at 0.005 MB/s would take a minute), so the
// command is surely in flight when the function arrives; each wait is bounded by the initiator.
import test from 'ava';
import { Emulator } from '../../harness';
import { tempDir, pattern } from '../harness/env';
import { libraryTopology, cdb, CHANGER, DRIVE0, SLOT0, DT0 } from './env';
import { IscsiConn, OP, bhs } from '../../host/iscsi';
import * as scsi from '../../lib/scsi';

const TMF = { ABORT_TASK_SET: 2, CLEAR_TASK_SET: 4, LUN_RESET: 5 };

async function tmf(c: IscsiConn, fn: number, lun: number): Promise<number> {
  const itt = c.itt();
  c.send(bhs(OP.TASK_MGMT, 0x80 | fn, { itt, cmdSN: c.cmdSN, lun, immediate: true }));
  return (await c.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2];
}

/** Sends a command without data and does not wait: its ITT. */
function send(c: IscsiConn, lun: number, cdbBytes: Buffer): number {
  const itt = c.itt();
  const b = bhs(OP.SCSI_COMMAND, 0x81, { itt, cmdSN: c.cmdSN++, lun });
  cdbBytes.copy(b, 32);
  c.send(b);
  return itt;
}

async function start(label: string): Promise<{ emu: Emulator; a: IscsiConn; b: IscsiConn }> {
  const emu = await Emulator.start(libraryTopology({
    dir: tempDir(label), mode: 'realtime',
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }],
    library: { timing: { loadMs: 1, unloadMs: 1, moveMs: 1, locateMBps: 0.005, streamMBps: 1000 } },
  }), { debug: true });
  const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(emu.array().targets.find((x) => x.port === 'is0')!.target)!;
  const a = await IscsiConn.connect(Number(m[2]));
  await a.login(m[3], {}, { isid: Buffer.from([0x80, 0, 0, 0, 0, 1]) });
  const b = await IscsiConn.connect(Number(m[2]));
  await b.login(m[3], {}, { isid: Buffer.from([0x80, 0, 0, 0, 0, 2]) });
  return { emu, a, b };
}

/** A's cartridge loaded with 300 KiB written, the head at its end: a rewind would take a minute. */
async function loaded(t: import('ava').ExecutionContext, a: IscsiConn): Promise<void> {
  t.is((await a.command(CHANGER, cdb.moveMedium(SLOT0, DT0))).status, 0);
  t.is((await a.command(DRIVE0, cdb.load())).status, 0);
  const rec = pattern(100 * 1024, 3);
  for (let i = 0; i < 3; i++) t.is((await a.command(DRIVE0, cdb.write(rec.length), { write: rec })).status, 0);
}

async function position(c: IscsiConn): Promise<number> {
  const r = await c.command(DRIVE0, Buffer.from([0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { read: 20 });
  if (r.status !== 0) throw new Error(`READ POSITION: status ${r.status} ${scsi.decodeSense(r.sense).text}`);
  return r.data.readUInt32BE(4);
}

/** Nothing more arrives for this ITT: the answer of a NOP ping sent after it shows it. */
async function noStatus(t: import('ava').ExecutionContext, c: IscsiConn, itt: number): Promise<void> {
  const ping = c.itt();
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: ping, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.opcode === OP.NOP_IN && p.itt === ping);
  t.false(c.pdus.some((p) => p.itt === itt), 'no status for the aborted command');
}

test('LUN RESET of a drive: the rewind in flight ends with no status and the tape stops, the RESERVE is released, the other nexuses get 29h/03h', async (t) => {
  const { emu, a, b } = await start('tape-tmf-reset');
  try {
    await loaded(t, a);
    t.is((await a.command(DRIVE0, cdb.reserve())).status, 0);
    t.is((await b.command(DRIVE0, cdb.tur())).status, 2); // b: the unit attention of a's LOAD
    t.is((await b.command(DRIVE0, cdb.tur())).status, 0x18); // a holds the drive
    const rewind = send(a, DRIVE0, cdb.rewind());
    t.is(await tmf(b, TMF.LUN_RESET, DRIVE0), 0, 'Function complete (was 2, LUN does not exist)');
    await noStatus(t, a, rewind);
    // The reservation is gone: b uses the drive; the tape stayed where the rewind had not yet moved it.
    t.is(await position(b), 3);
    // a, whose reservation was reset, hears of it once.
    const ua = await a.command(DRIVE0, cdb.tur());
    t.is(ua.status, 2);
    t.deepEqual([scsi.decodeSense(ua.sense).key, scsi.decodeSense(ua.sense).asc, scsi.decodeSense(ua.sense).ascq], [6, 0x29, 0x03]);
    t.is((await a.command(DRIVE0, cdb.tur())).status, 0);
    // The changer's LUN too.
    t.is(await tmf(b, TMF.LUN_RESET, CHANGER), 0);
    t.is((await a.command(CHANGER, cdb.tur())).status, 2);
    t.is(await tmf(b, TMF.LUN_RESET, 300), 2, 'a LUN with nothing at it: LUN does not exist');
  } finally {
    a.sock.destroy(); b.sock.destroy();
    await emu.stop();
  }
});

test('ABORT TASK SET on a drive ends the session\'s own tape command only; CLEAR TASK SET ends every session\'s; the drive is free at once after either', async (t) => {
  const { emu, a, b } = await start('tape-tmf-abort');
  try {
    await loaded(t, a);
    await b.command(DRIVE0, cdb.tur()); // b's unit attention, out of the way
    const rewind = send(a, DRIVE0, cdb.rewind());
    t.is(await tmf(b, TMF.ABORT_TASK_SET, DRIVE0), 0); // b has no task there: a's rewind goes on
    t.is(await tmf(a, TMF.ABORT_TASK_SET, DRIVE0), 0);
    await noStatus(t, a, rewind);
    t.is(await position(a), 3, 'the aborted rewind did not move the tape, and the drive answers at once');
    const space = send(a, DRIVE0, cdb.rewind());
    t.is(await tmf(b, TMF.CLEAR_TASK_SET, DRIVE0), 0);
    await noStatus(t, a, space);
    t.is(await position(b), 3);
    t.is((await a.command(DRIVE0, cdb.tur())).status, 0, 'no unit attention: a task set was cleared, nothing was reset');
  } finally {
    a.sock.destroy(); b.sock.destroy();
    await emu.stop();
  }
});
