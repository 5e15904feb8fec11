// Task management stops a copy cleanly (iSCSI, real time, a slow drive so the copy is caught in the
// middle): ABORT TASK of a running EXTENDED COPY, and its session's logout, end it with no status
// sent, leave no cache slot pinned and the drive free for the next user (a request in flight is
// reaped by it), and the held results say the copy did not complete. A background copy (IMMED: no
// command left to abort) stops when its logical unit is reset (LOGICAL UNIT RESET, TARGET WARM
// RESET), its nexus reading why in FAILED SEGMENT DETAILS, and when its I_T nexus goes away.
//
// Real time: the deterministic driver runs virtual time on while the drive is busy, so a copy to
// tape could not be caught in the middle there. Polls are paced, never timed: each waits for an answer.
import test from 'ava';
import { Emulator } from '../../harness';
import { ScsiClient } from '../../host/client';
import { extendedCopyList, extendedCopyCdb, receiveCopyResultsCdb, parseCopyStatus, parseFailedSegment, CopyList, naaOf } from '../../host/backup';
import * as scsi from '../../lib/scsi';
import { IscsiConn, OP, bhs } from '../../host/iscsi';
import { tempDir, createVolume, pattern, write, run } from '../harness/env';
import { libraryTopology, cdb, CHANGER, DRIVE0, SLOT0, DT0 } from '../tape/env';

const TMF_ABORT_TASK = 1;
const TMF_LUN_RESET = 5;
const TMF_TARGET_WARM_RESET = 6;
const BLOCKS = 16384; // 8 MiB: four seconds at the drive's 2 MB/s

async function start(label: string) {
  const emu = await Emulator.start(libraryTopology({
    dir: tempDir(label), mode: 'realtime',
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'is0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }],
    library: { timing: { loadMs: 1, unloadMs: 1, moveMs: 1, streamMBps: 2 }, cartridges: [{ barcode: 'SB0001L5', size: '64MiB' }] },
  }), { debug: true });
  const q = emu.connect();
  await createVolume(q, { name: 'v', blocks: BLOCKS, blockSize: 512, media: [0] }, 1);
  for (let at = 0; at < BLOCKS; at += 2048) await write(q, 1, at, pattern(2048 * 512, at));
  await run(q, CHANGER, cdb.moveMedium(SLOT0, DT0));
  await run(q, DRIVE0, cdb.load());
  const c = new ScsiClient(q);
  const list: CopyList = {
    listId: 3,
    targets: [{ type: 'block', naa: await naaOf(c, 1), blockBytes: 512 }, { type: 'stream', naa: await naaOf(c, DRIVE0), blockBytes: 32768 }],
    segments: [{ type: 'block-to-stream', src: 0, dst: 1, lba: 0, blocks: BLOCKS, streamLength: BLOCKS / 64 }],
  };
  const url = emu.array().targets.find((x) => x.port === 'is0')!.target;
  const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(url)!;
  const is = await IscsiConn.connect(Number(m[2]));
  await is.login(m[3]);
  return { emu, q, c, is, list };
}

/** Sends the EXTENDED COPY; returns its ITT and CmdSN (its answer is not awaited). */
function sendCopy(is: IscsiConn, list: CopyList): { itt: number; cmdSN: number; done: Promise<unknown> } {
  const x = is as unknown as { nextItt: number };
  const itt = x.nextItt;
  const cmdSN = is.cmdSN;
  const out = extendedCopyList(list);
  const done = is.command(1, extendedCopyCdb(out.length), { write: out }).catch(() => undefined);
  return { itt, cmdSN, done };
}

async function status(is: IscsiConn, listId: number) {
  const r = await is.command(1, receiveCopyResultsCdb(0, listId, 12), { read: 12 });
  if (r.status !== 0) throw new Error(`COPY STATUS: status ${r.status}`);
  return parseCopyStatus(r.data);
}

async function moving(is: IscsiConn, listId: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const s = await status(is, listId).catch(() => undefined); // not yet there while its list arrives
    if (s && s.bytes > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the copy never started moving data');
}

/** COPY STATUS once the copy has ended (the disk IOP sees a stop on its next poll). */
async function ended(is: IscsiConn, listId: number) {
  let s = await status(is, listId);
  for (let i = 0; i < 100 && s.state === 'in progress'; i++) { await new Promise((r) => setTimeout(r, 10)); s = await status(is, listId); }
  return s;
}

/** FAILED SEGMENT DETAILS: the copy's status and sense, and COMMAND-SPECIFIC INFORMATION (the segment). */
async function failedSegment(is: IscsiConn, listId: number) {
  const r = await is.command(1, receiveCopyResultsCdb(4, listId, 256), { read: 256 });
  if (r.status !== 0) throw new Error(`FAILED SEGMENT DETAILS: status ${r.status}`);
  const f = parseFailedSegment(r.data);
  return { status: f?.status, sense: [f?.sense?.key, f?.sense?.asc, f?.sense?.ascq], segment: r.data.length >= 72 ? r.data.readUInt32BE(68) : -1 };
}

async function tmf(is: IscsiConn, fn: number, lun: number): Promise<number> {
  const itt = is.itt();
  is.send(bhs(OP.TASK_MGMT, 0x80 | fn, { itt, cmdSN: is.cmdSN, lun, immediate: true }));
  return (await is.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2];
}

/** The drive is free: a REWIND from another host completes (the copy's request in flight reaped). */
async function driveFree(q: ReturnType<Emulator['connect']>): Promise<number> {
  return (await q.submit({ lun: DRIVE0, cdb: cdb.rewind() })).status;
}

test('ABORT TASK of a running EXTENDED COPY: no status for it, the copy stops, no slot pinned, the drive free; COPY STATUS says it failed', async (t) => {
  const a = await start('xcopy-abort');
  t.teardown(() => { a.is.sock.destroy(); return a.emu.stop(); });
  const x = sendCopy(a.is, a.list);
  await moving(a.is, 3);
  const itt = a.is.itt();
  const b = bhs(OP.TASK_MGMT, 0x80 | TMF_ABORT_TASK, { itt, cmdSN: a.is.cmdSN, lun: 1, immediate: true });
  b.writeUInt32BE(x.itt >>> 0, 20);
  b.writeUInt32BE(x.cmdSN >>> 0, 32);
  a.is.send(b);
  t.is((await a.is.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2], 0, 'function complete');
  let s = await status(a.is, 3);
  for (let i = 0; i < 100 && s.state === 'in progress'; i++) { await new Promise((r) => setTimeout(r, 10)); s = await status(a.is, 3); }
  t.is(s.state, 'failed', 'the copy ended, not completed');
  t.true(s.bytes < BLOCKS * 512, 'it stopped before the end');
  t.false(a.is.pdus.some((p) => p.itt === x.itt && p.opcode === OP.SCSI_RESPONSE), 'no status for the aborted command');
  t.deepEqual(await failedSegment(a.is, 3), { status: 2, sense: [scsi.SenseKey.ABORTED_COMMAND, 0, 0], segment: 0 }, 'FAILED SEGMENT DETAILS: the copy\'s own CHECK CONDITION, ABORTED COMMAND, segment 0');
  t.is(await driveFree(a.q), 0, 'the drive is not left claimed');
  t.is((await new ScsiClient(a.q).statistics()).cache.pinned, 0, 'no slot left pinned');
});

test('LOGICAL UNIT RESET stops a running EXTENDED COPY of that LU', async (t) => {
  const a = await start('xcopy-lureset');
  t.teardown(() => { a.is.sock.destroy(); return a.emu.stop(); });
  const x = sendCopy(a.is, a.list);
  await moving(a.is, 3);
  const itt = a.is.itt();
  a.is.send(bhs(OP.TASK_MGMT, 0x80 | TMF_LUN_RESET, { itt, cmdSN: a.is.cmdSN, lun: 1, immediate: true }));
  t.is((await a.is.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2], 0, 'function complete');
  t.false(a.is.pdus.some((p) => p.itt === x.itt && p.opcode === OP.SCSI_RESPONSE), 'no status for the copy');
  t.is((await ended(a.is, 3)).state, 'failed', 'its nexus, which outlives the reset, reads that it ended');
  await stopped(t, a.q);
});

test('a Logout while an EXTENDED COPY runs stops it', async (t) => {
  const a = await start('xcopy-logout');
  t.teardown(() => a.emu.stop());
  sendCopy(a.is, a.list);
  await moving(a.is, 3);
  a.is.send(bhs(OP.LOGOUT, 0x80, { itt: 77, cmdSN: a.is.cmdSN, immediate: true }));
  t.is((await a.is.next((p) => p.opcode === OP.LOGOUT_RESPONSE)).bhs[2], 0);
  a.is.sock.destroy();
  await stopped(t, a.q);
});

type Rig = Awaited<ReturnType<typeof start>>;

/** A pair v -> w, duplex; a background copy of w (C0h: split, IMMED) to the drive, sent to LUN 1 (v), moving. */
async function background(t: import('ava').ExecutionContext, a: Rig, listId: number): Promise<void> {
  await createVolume(a.q, { name: 'w', blocks: BLOCKS, blockSize: 512, media: [1] }, 2);
  await a.c.pairCreate(0, 1);
  for (let i = 0; i < 500 && (await a.c.pairOf(0)).state !== 'duplex'; i++) await new Promise((r) => setTimeout(r, 20));
  const list: CopyList = {
    listId,
    targets: [{ type: 'block', naa: await naaOf(a.c, 2), blockBytes: 512 }, a.list.targets[1]],
    segments: [{ type: 'pair', cscd: 0, split: true, immed: true, policy: 'merge' }, { ...a.list.segments[0] }],
  };
  const out = extendedCopyList(list);
  const r = await a.is.command(1, extendedCopyCdb(out.length), { write: out });
  t.is(r.status, 0, 'IMMED: GOOD once the split is in NV');
  await moving(a.is, listId);
}

/** A background copy ended because its logical unit was reset; its nexus reads why. */
async function resetEnded(t: import('ava').ExecutionContext, a: Rig, listId: number): Promise<void> {
  const s = await ended(a.is, listId);
  t.is(s.state, 'failed', 'COPY STATUS: the copy ended, not completed');
  t.true(s.bytes < BLOCKS * 512, 'it stopped before the end');
  t.deepEqual(await failedSegment(a.is, listId), { status: 2, sense: [scsi.SenseKey.ABORTED_COMMAND, 0x29, 0x03], segment: 1 },
    'FAILED SEGMENT DETAILS: CHECK CONDITION, ABORTED COMMAND, BUS DEVICE RESET FUNCTION OCCURRED, in segment 1 (the blocks; 0 was the split)');
}

test('LOGICAL UNIT RESET stops a background copy (IMMED) of that LU, not of another; COPY STATUS and FAILED SEGMENT DETAILS say why', async (t) => {
  const a = await start('xcopy-lureset-bg');
  t.teardown(() => { a.is.sock.destroy(); return a.emu.stop(); });
  await background(t, a, 4);
  t.is(await tmf(a.is, TMF_LUN_RESET, 2), 0, 'a reset of LUN 2: w, a copy target, not the unit the copy was sent to');
  const before = (await status(a.is, 4)).bytes;
  let after = await status(a.is, 4);
  for (let i = 0; i < 100 && after.state === 'in progress' && after.bytes <= before; i++) { await new Promise((r) => setTimeout(r, 20)); after = await status(a.is, 4); }
  t.true(after.state === 'in progress' && after.bytes > before, `another unit's reset leaves it moving (${before} -> ${after.bytes} bytes, ${after.state})`);
  t.is(await tmf(a.is, TMF_LUN_RESET, 1), 0, 'function complete');
  await resetEnded(t, a, 4);
  await stopped(t, a.q);
});

test('TARGET WARM RESET stops a background copy (IMMED) too', async (t) => {
  const a = await start('xcopy-warmreset-bg');
  t.teardown(() => { a.is.sock.destroy(); return a.emu.stop(); });
  await background(t, a, 5);
  t.is(await tmf(a.is, TMF_TARGET_WARM_RESET, 0), 0, 'function complete');
  await resetEnded(t, a, 5);
  await stopped(t, a.q);
});

test('a background copy (vendor segment C0h, IMMED) whose I_T nexus goes away stops', async (t) => {
  const a = await start('xcopy-nexus');
  t.teardown(() => a.emu.stop());
  await background(t, a, 4);
  a.is.sock.destroy(); // the connection drops: the nexus is gone, nobody can ask for the results
  await stopped(t, a.q);
});

/** The drive is free, rewound, and stays where it is: the copy no longer writes. No slot is pinned. */
async function stopped(t: import('ava').ExecutionContext, q: ReturnType<Emulator['connect']>): Promise<void> {
  let st = 1;
  for (let i = 0; i < 100 && st !== 0; i++) { st = await driveFree(q); if (st !== 0) await new Promise((r) => setTimeout(r, 20)); }
  t.is(st, 0, 'the drive REWINDs for another host: not left claimed');
  const pos = async () => Buffer.from((await q.submit({ lun: DRIVE0, cdb: cdb.readPosition(), dataInLength: 20 })).data).readUInt32BE(4);
  await new Promise((r) => setTimeout(r, 50));
  await driveFree(q);
  t.is(await pos(), 0);
  await new Promise((r) => setTimeout(r, 300));
  t.is(await pos(), 0, 'nothing writes behind the rewind: the copy stopped');
  t.is((await new ScsiClient(q).statistics()).cache.pinned, 0, 'no slot left pinned');
}
