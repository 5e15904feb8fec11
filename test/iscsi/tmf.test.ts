// Task management over iSCSI (RFC 7143 11.5, 11.6, 4.2.3): aborting a command wherever it is —
// waiting for its Data-Out, held behind a CmdSN gap, staging from a slow medium, not yet arrived —
// leaves no status for it, frees what it held, and answers after it is gone; the task set and
// reset functions reach the tasks the SAM model says, of this session or of all.
import test from 'ava';
import * as A from '../../hal/abi';
import { startIscsi } from './env';
import { IscsiConn, OP, bhs, rw10, tur, Pdu } from '../../host/iscsi';
import { pattern, read, write } from '../harness/env';

const TMF = { ABORT_TASK: 1, ABORT_TASK_SET: 2, CLEAR_ACA: 3, CLEAR_TASK_SET: 4, LUN_RESET: 5, WARM_RESET: 6, COLD_RESET: 7, REASSIGN: 8 };

/** Sends a task management request (immediate) and returns its response code. */
async function tmf(c: IscsiConn, fn: number, o: { lun?: number; refItt?: number; refCmdSN?: number } = {}): Promise<number> {
  const itt = c.itt();
  const b = bhs(OP.TASK_MGMT, 0x80 | fn, { itt, cmdSN: c.cmdSN, lun: o.lun ?? 1, immediate: true });
  b.writeUInt32BE((o.refItt ?? 0xffffffff) >>> 0, 20);
  b.writeUInt32BE((o.refCmdSN ?? 0) >>> 0, 32);
  c.send(b);
  return (await c.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === itt)).bhs[2];
}

/** A WRITE(10) sent without data: the target answers with an R2T and waits. Returns its ITT, CmdSN and R2T. */
async function pendingWrite(c: IscsiConn, lba: number, bytes: number): Promise<{ itt: number; cmdSN: number; r2t: Pdu }> {
  const itt = c.itt();
  const cmdSN = c.cmdSN++;
  const b = bhs(OP.SCSI_COMMAND, 0xa1, { itt, cmdSN, lun: 1 });
  b.writeUInt32BE(bytes, 20);
  rw10(true, lba, bytes / 512).copy(b, 32);
  c.send(b);
  const r2t = await c.next((p) => p.itt === itt && p.opcode === OP.R2T);
  return { itt, cmdSN, r2t };
}

/** Nothing more arrives for these ITTs: a NOP ping's answer, which comes after anything sent before it, shows it. */
async function quiet(t: import('ava').ExecutionContext, c: IscsiConn, itts: number[], what: string): Promise<void> {
  const itt = c.itt();
  c.send(bhs(OP.NOP_OUT, 0x80, { itt, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.opcode === OP.NOP_IN && p.itt === itt);
  t.false(c.pdus.some((p) => itts.includes(p.itt)), what);
}

const isid = (n: number) => Buffer.from([0x80, 0, 0, 0, 0, n]);

test('ABORT TASK of a write waiting for its Data-Out: no status for it, its late data dropped, its buffer memory back', async (t) => {
  const a = await startIscsi('tmf-abort-r2t', { blocks: 65536 });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  // Forty windows of 256 KiB each would hold 10 MiB, more than the channel IOP's 4 MiB of buffer memory.
  for (let i = 0; i < 40; i++) {
    const w = await pendingWrite(c, i * 512, 256 << 10);
    t.is(w.r2t.bhs.readUInt32BE(44), 256 << 10);
    t.is(await tmf(c, TMF.ABORT_TASK, { refItt: w.itt, refCmdSN: w.cmdSN }), 0);
    if (i === 0) {
      const dropped = a.emu.array().stats()[A.STAT_ISCSI_DROPPED];
      c.dataOut(w.itt, w.r2t.ttt, Buffer.alloc(256 << 10), 0, 65536);
      await quiet(t, c, [w.itt], 'no status for the aborted write, not even after its data came');
      t.is(a.emu.array().stats()[A.STAT_ISCSI_DROPPED], dropped + 4, 'its four Data-Out PDUs dropped');
    }
  }
  const data = pattern(1 << 20, 41);
  const r = await c.command(1, rw10(true, 0, 2048), { write: data });
  t.is(r.status, 0, 'buffer memory is there for a 1 MiB write after 40 aborts');
  t.true((await read(a.emu.connect(), 1, 0, 2048)).equals(data));
  t.true(a.emu.array().stats()[A.STAT_ABORTED] >= 40);
});

test('ABORT TASK of a command held behind a CmdSN gap, of one not yet arrived, and of one already done', async (t) => {
  const a = await startIscsi('tmf-abort-held');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const gap = c.cmdSN++;
  const heldItt = c.itt();
  const heldSN = c.cmdSN++;
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: heldItt, cmdSN: heldSN, lun: 1 }));
  t.is(await tmf(c, TMF.ABORT_TASK, { refItt: heldItt, refCmdSN: heldSN }), 0, 'the held one: function complete');
  // The gap: a command that has not arrived can be aborted; it is then taken as arrived (RFC 7143 6.9).
  t.is(await tmf(c, TMF.ABORT_TASK, { refItt: 777, refCmdSN: gap }), 0, 'not yet arrived: function complete');
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 777, cmdSN: gap, lun: 1 })); // now too low: ignored
  const r = await c.command(1, tur());
  t.is(r.status, 0, 'the window moved past both');
  await quiet(t, c, [heldItt, 777], 'no status for the aborted ones');
  // A task that completed: "Task does not exist".
  const done = c.cmdSN - 1;
  t.is(await tmf(c, TMF.ABORT_TASK, { refItt: r.response.itt, refCmdSN: done }), 1);
});

test('ABORT TASK of a read staging from a slow medium: no Data-In after the answer; the block reads fine afterwards', async (t) => {
  const a = await startIscsi('tmf-abort-stage', { blocks: 65536 });
  t.teardown(() => a.emu.stop());
  const data = pattern(64 << 10, 43);
  const q = a.emu.connect();
  await write(q, 1, 4096, data);
  await a.emu.flush();
  // Evict it: write enough other data through the 8 MiB cache.
  for (let i = 0; i < 10; i++) await write(q, 1, 8192 + i * 2048, pattern(1 << 20, i));
  await a.emu.flush();
  a.emu.array().inject('d0 slow 20000'); // 2 s a request: the abort comes while it stages, however busy the machine
  a.emu.array().inject('d1 slow 20000');
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const itt = c.itt();
  const cmdSN = c.cmdSN++;
  const b = bhs(OP.SCSI_COMMAND, 0xc1, { itt, cmdSN, lun: 1 });
  b.writeUInt32BE(data.length, 20);
  rw10(false, 4096, 128).copy(b, 32);
  c.send(b);
  t.is(await tmf(c, TMF.ABORT_TASK, { refItt: itt, refCmdSN: cmdSN }), 0);
  await quiet(t, c, [itt], 'no Data-In, no status after the abort');
  a.emu.array().inject('d0 heal');
  a.emu.array().inject('d1 heal');
  const back = await c.command(1, rw10(false, 4096, 128), { read: data.length });
  t.true(back.data.equals(data));
});

test('ABORT TASK SET takes this session\'s tasks on the LUN; LOGICAL UNIT RESET every session\'s', async (t) => {
  const a = await startIscsi('tmf-sets');
  t.teardown(() => a.emu.stop());
  const one = await IscsiConn.connect(a.port);
  const two = await IscsiConn.connect(a.port);
  t.teardown(() => { one.close(); two.close(); });
  await one.login(a.target, {}, { isid: isid(1) });
  await two.login(a.target, {}, { isid: isid(2) });
  const w1 = await pendingWrite(one, 0, 8192);
  const w2 = await pendingWrite(two, 64, 8192);
  t.is(await tmf(one, TMF.ABORT_TASK_SET), 0);
  await quiet(t, one, [w1.itt], 'session one\'s write is gone');
  // Session two's write was not touched: it completes when its data comes.
  const data = pattern(8192, 44);
  two.dataOut(w2.itt, w2.r2t.ttt, data, 0, 8192);
  t.is((await two.next((p) => p.itt === w2.itt)).bhs[3], 0);
  // LOGICAL UNIT RESET from session one takes session two's pending write too.
  const w3 = await pendingWrite(two, 128, 8192);
  t.is(await tmf(one, TMF.LUN_RESET), 0);
  two.dataOut(w3.itt, w3.r2t.ttt, data, 0, 8192);
  await quiet(t, two, [w3.itt], 'session two\'s write went with the reset');
  // The reset is reported to the other nexus once, as a unit attention (SAM-5 6.3.3), not to the one that asked.
  const ua = await two.command(1, tur());
  t.deepEqual([ua.status, ua.sense[2] & 0xF, ua.sense[12], ua.sense[13]], [2, 6, 0x29, 0x03], 'BUS DEVICE RESET FUNCTION OCCURRED');
  t.is((await two.command(1, tur())).status, 0);
  t.is((await one.command(1, tur())).status, 0);
  t.true((await read(a.emu.connect(), 1, 64, 16)).equals(data));
});

test('TARGET WARM RESET aborts every session\'s tasks; TARGET COLD RESET answers, then drops every connection with an Async Message', async (t) => {
  const a = await startIscsi('tmf-reset');
  t.teardown(() => a.emu.stop());
  const one = await IscsiConn.connect(a.port);
  const two = await IscsiConn.connect(a.port);
  t.teardown(() => { one.close(); two.close(); });
  await one.login(a.target, {}, { isid: isid(1) });
  await two.login(a.target, {}, { isid: isid(2) });
  const w = await pendingWrite(two, 0, 8192);
  t.is(await tmf(one, TMF.WARM_RESET, { lun: 0 }), 0);
  await quiet(t, two, [w.itt], 'the other session\'s task went with the warm reset');
  t.is(await tmf(one, TMF.COLD_RESET, { lun: 0 }), 0);
  for (const c of [one, two]) {
    const m = await c.next((p) => p.opcode === OP.ASYNC);
    t.is(m.bhs[36], 3, 'AsyncEvent 3: all connections dropped');
    await c.closed;
  }
  const again = await IscsiConn.connect(a.port);
  t.teardown(() => again.close());
  await again.login(a.target);
  t.is((await again.command(1, tur())).status, 0, 'the target takes new logins after the reset');
});

test('the other functions get the RFC\'s answers: CLEAR ACA not supported, TASK REASSIGN not at ERL 0, unknown rejected, no LUN', async (t) => {
  const a = await startIscsi('tmf-other');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  t.is(await tmf(c, TMF.CLEAR_ACA), 5);
  t.is(await tmf(c, TMF.REASSIGN, { refItt: 5 }), 4);
  t.is(await tmf(c, 20), 255);
  t.is(await tmf(c, TMF.ABORT_TASK_SET, { lun: 7 }), 2);
  t.is(await tmf(c, TMF.CLEAR_TASK_SET, { lun: 1 }), 0);
  t.is((await c.command(1, tur())).status, 0);
});

test('a task set function waits for the commands before it in CmdSN order; a second one meanwhile is rejected', async (t) => {
  const a = await startIscsi('tmf-wait-gap');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const gap = c.cmdSN++;
  const write = c.itt();
  const b = bhs(OP.SCSI_COMMAND, 0xa1, { itt: write, cmdSN: c.cmdSN++, lun: 1 });
  b.writeUInt32BE(8192, 20);
  rw10(true, 0, 16).copy(b, 32);
  c.send(b); // ahead of the gap: held
  const set = c.itt();
  const m = bhs(OP.TASK_MGMT, 0x80 | TMF.ABORT_TASK_SET, { itt: set, cmdSN: c.cmdSN, lun: 1, immediate: true });
  c.send(m);
  t.is(await tmf(c, TMF.LUN_RESET), 255, 'a second multi-task function while one waits: rejected');
  t.false(c.pdus.some((p) => p.itt === set), 'ABORT TASK SET waits for the gap');
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 500, cmdSN: gap, lun: 1 })); // the gap fills
  t.is((await c.next((p) => p.itt === 500)).bhs[3], 0);
  t.is((await c.next((p) => p.opcode === OP.TASK_MGMT_RESPONSE && p.itt === set)).bhs[2], 0);
  // The held write was dispatched when the gap closed (its R2T may have gone out) and then aborted: no status.
  const ping = c.itt();
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: ping, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.itt === ping);
  t.false(c.pdus.some((p) => p.itt === write && p.opcode === OP.SCSI_RESPONSE));
});

test('ABORT TASK of a read in the middle of its Data-In: nothing of it after the answer', async (t) => {
  const a = await startIscsi('tmf-abort-datain', { blocks: 131072, cache: { size: '64MiB' } });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { MaxRecvDataSegmentLength: 8192 });
  const q = a.emu.connect();
  for (let i = 0; i < 8; i++) await write(q, 1, i * 8192, pattern(4 << 20, 45 + i)); // in the cache: the read is limited only by the connection
  const itt = c.itt();
  const cmdSN = c.cmdSN++;
  const b = bhs(OP.SCSI_COMMAND, 0xc1, { itt, cmdSN, lun: 1 });
  b.writeUInt32BE(32 << 20, 20);
  rw10(false, 0, 65535).copy(b, 32);
  c.send(b);
  // 32 MiB in 8 KiB Data-In PDUs: the first one shows the read is under way; the abort follows it.
  const first = await c.next((p) => p.itt === itt);
  t.is(first.opcode, OP.DATA_IN);
  const t0 = c.itt();
  const m = bhs(OP.TASK_MGMT, 0x80 | TMF.ABORT_TASK, { itt: t0, cmdSN: c.cmdSN, lun: 1, immediate: true });
  m.writeUInt32BE(itt, 20);
  m.writeUInt32BE(cmdSN, 32);
  c.send(m);
  const response = await c.next((p) => p.itt === t0);
  t.is(response.bhs[2], 0, 'aborted while its data was going out');
  const before = c.pdus.filter((p) => p.itt === itt);
  t.true(before.length < (32 << 20) / 8192 - 1, 'the read had not finished');
  t.true(before.every((p) => p.opcode === OP.DATA_IN && (p.flags & 1) === 0), `and no status: ${before.map((p) => `${p.opcode.toString(16)}/${p.flags.toString(16)}`).slice(-3)}`);
  c.pdus.splice(0);
  await quiet(t, c, [itt], 'nothing of it after the task management response');
});

test('ABORT TASK of a SYNCHRONIZE CACHE waiting for a slow destage: no status, and the cache flushes afterwards', async (t) => {
  const a = await startIscsi('tmf-abort-flush');
  t.teardown(() => a.emu.stop());
  const data = pattern(1 << 20, 46);
  a.emu.array().inject('d0 slow 5000'); // the destage of what is written next takes seconds
  a.emu.array().inject('d1 slow 5000');
  await write(a.emu.connect(), 1, 0, data);
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const itt = c.itt();
  const cmdSN = c.cmdSN++;
  c.send(Buffer.concat([bhs(OP.SCSI_COMMAND, 0x81, { itt, cmdSN, lun: 1 }).subarray(0, 32), Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]));
  t.is(await tmf(c, TMF.ABORT_TASK, { refItt: itt, refCmdSN: cmdSN }), 0);
  await quiet(t, c, [itt], 'no status for the aborted SYNCHRONIZE CACHE');
  a.emu.array().inject('d0 heal');
  a.emu.array().inject('d1 heal');
  await a.emu.flush();
  t.true((await read(a.emu.connect(), 1, 0, 2048)).equals(data));
});
