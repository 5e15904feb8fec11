// The firmware-integrity rules hold over iSCSI as over the framed and queue ports, because they live
// in the sequencer and reach the initiator through the transport seam: an NV persist that failed
// is a SCSI Response with CHECK CONDITION, HARDWARE ERROR (never GOOD); DELETE VOLUME ends the
// volume's commands in flight, those held behind a CmdSN gap included, with ABORTED COMMAND
// 3Fh/00h in their SCSI Response (abortWhere with a sense); and a command ended early — by ABORT
// TASK or by its session closing — gives back the cache slot it held pinned (retire()).
import test from 'ava';
import * as A from '../../hal/abi';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import { startIscsi } from './env';
import { IscsiConn, OP, Pdu, bhs, rw10, tur } from '../../host/iscsi';
import { pattern, read, write, run } from '../harness/env';

const ENOSPC = 28;

/** The sense of a SCSI Response PDU (2-byte SenseLength, then the sense data). */
function senseOfPdu(p: Pdu): scsi.Sense {
  const n = p.data.length >= 2 ? p.data.readUInt16BE(0) : 0;
  return scsi.decodeSense(p.data.subarray(2, 2 + n));
}

function senseOf(r: { sense: Buffer }): [number, number, number] {
  const s = scsi.decodeSense(r.sense);
  return [s.key, s.asc, s.ascq];
}

test('an NV write failing under an iSCSI WRITE: its SCSI Response is HARDWARE ERROR 0Ch/00h, never GOOD; writes and changes are refused until the NV file is rewritten; reads go on', async (t) => {
  const a = await startIscsi('iscsi-nv-fail', { mode: 'deterministic', seed: 7, cache: { destageAgeMs: 60_000, destageIntervalMs: 1000 } });
  t.teardown(() => a.emu.stop());
  const arr = a.emu.array();
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const before = pattern(4096, 1);
  t.is((await c.command(1, rw10(true, 0, 8), { write: before })).status, 0);

  arr.nv.inject({ type: 'error', errno: ENOSPC });
  const failed = await c.command(1, rw10(true, 8, 8), { write: pattern(4096, 2) });
  t.is(failed.status, 2, 'CHECK CONDITION, not GOOD: the NV file may not hold the data');
  t.deepEqual(senseOf(failed), [scsi.SenseKey.HARDWARE_ERROR, 0x0C, 0x00]);
  t.true(arr.stats()[A.STAT_NV_ERRORS] > 0);

  // Degraded: refused up front, a WRITE and a management change sent over iSCSI alike.
  const refused = await c.command(1, rw10(true, 16, 8), { write: pattern(4096, 3) });
  t.deepEqual([refused.status, ...senseOf(refused)], [2, scsi.SenseKey.HARDWARE_ERROR, 0x0C, 0x00]);
  const create = await c.command(0, scsi.management(true, scsi.Management.CREATE_VOLUME, 64),
    { write: scsi.createVolumeParameters({ name: 'w', blocks: 64, blockSize: 512, placement: 'linear' }) });
  t.deepEqual([create.status, ...senseOf(create)], [2, scsi.SenseKey.HARDWARE_ERROR, 0x44, 0x00]);
  t.true(arr.stats()[A.STAT_NV_REFUSED] >= 3);
  const back = await c.command(1, rw10(false, 0, 8), { read: 4096 });
  t.is(back.status, 0);
  t.true(back.data.equals(before), 'reads go on');

  arr.nv.heal();
  await a.emu.advance(5000); // the disk IOP rewrites the region once the file takes writes again
  const after = pattern(4096, 4);
  t.is((await c.command(1, rw10(true, 24, 8), { write: after })).status, 0, 'write-back again');
  t.true((await read(a.emu.connect(), 1, 24, 8)).equals(after));
});

test('DELETE VOLUME ends the volume\'s iSCSI commands in flight — one waiting for Data-Out, one held behind a CmdSN gap — with ABORTED COMMAND 3Fh/00h; then LOGICAL UNIT NOT SUPPORTED', async (t) => {
  const a = await startIscsi('iscsi-delete-busy');
  t.teardown(() => a.emu.stop());
  const q = a.emu.connect();
  const old = pattern(8192, 5);
  await write(q, 1, 0, old);
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);

  // A WRITE the target asked the data of (R2T) and that is still waiting for it.
  const w = c.itt();
  const wb = bhs(OP.SCSI_COMMAND, 0xa1, { itt: w, cmdSN: c.cmdSN++, lun: 1 });
  wb.writeUInt32BE(8192, 20);
  rw10(true, 0, 16).copy(wb, 32);
  c.send(wb);
  const r2t = await c.next((p) => p.itt === w && p.opcode === OP.R2T);
  // A READ that arrives ahead of a CmdSN gap: held, not yet dispatched.
  const gap = c.cmdSN++;
  const h = c.itt();
  const hb = bhs(OP.SCSI_COMMAND, 0xc1, { itt: h, cmdSN: c.cmdSN++, lun: 1 });
  hb.writeUInt32BE(8192, 20);
  rw10(false, 0, 16).copy(hb, 32);
  c.send(hb);
  const ping = c.itt(); // a NOP's answer comes after the held READ has been taken in
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: ping, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.opcode === OP.NOP_IN && p.itt === ping);

  const client = new ScsiClient(q);
  const [v] = await client.listVolumes();
  await run(q, 0, scsi.deleteVolume(v.number, true));

  const held = await c.next((p) => p.itt === h);
  t.is(held.opcode, OP.SCSI_RESPONSE, 'the held READ sent no data');
  t.is(held.bhs[3], 2);
  const hs = senseOfPdu(held);
  t.deepEqual([hs.key, hs.asc, hs.ascq], [scsi.SenseKey.ABORTED_COMMAND, 0x3F, 0x00], hs.text);
  // The WRITE's status waits for the Data-Out it is owed (RFC 7143 11.17); that data reaches nothing.
  c.dataOut(w, r2t.ttt, pattern(8192, 6), 0, 4096);
  const wr = await c.next((p) => p.itt === w && p.opcode === OP.SCSI_RESPONSE);
  t.is(wr.bhs[3], 2, 'the WRITE was not acknowledged');
  const ws = senseOfPdu(wr);
  t.deepEqual([ws.key, ws.asc, ws.ascq], [scsi.SenseKey.ABORTED_COMMAND, 0x3F, 0x00], ws.text);

  // The gap fills; the LUN is gone.
  const g = bhs(OP.SCSI_COMMAND, 0x81, { itt: 900, cmdSN: gap, lun: 1 });
  c.send(g);
  const gr = await c.next((p) => p.itt === 900);
  t.is(gr.bhs[3], 2);
  const gs = senseOfPdu(gr);
  t.deepEqual([gs.key, gs.asc], [scsi.SenseKey.ILLEGAL_REQUEST, 0x25], gs.text);
  t.deepEqual(await client.listVolumes(), []);
  t.is((await c.command(0, tur())).status, 0, 'the session goes on');
});

test('a READ ended early gives back the slot it held pinned: by ABORT TASK in the middle of its Data-In, and by a Logout of its session', async (t) => {
  const a = await startIscsi('iscsi-abort-pins', { blocks: 131072, cache: { size: '64MiB' } });
  t.teardown(() => a.emu.stop());
  const q = a.emu.connect();
  const client = new ScsiClient(q);
  for (let i = 0; i < 4; i++) await write(q, 1, i * 8192, pattern(4 << 20, 60 + i)); // cached: only the connection limits the read

  /** Starts a 16 MiB READ in 8 KiB Data-In PDUs and waits for its first one: it is sending, from a pinned slot. */
  const startRead = async (c: IscsiConn): Promise<{ itt: number; cmdSN: number }> => {
    const itt = c.itt();
    const cmdSN = c.cmdSN++;
    const b = bhs(OP.SCSI_COMMAND, 0xc1, { itt, cmdSN, lun: 1 });
    b.writeUInt32BE(16 << 20, 20);
    rw10(false, 0, 32768).copy(b, 32);
    c.send(b);
    t.is((await c.next((p) => p.itt === itt)).opcode, OP.DATA_IN);
    return { itt, cmdSN };
  };
  const pins = (): number => a.emu.array().stats()[A.STAT_PINS];
  const pinsBefore = pins();

  const one = await IscsiConn.connect(a.port);
  t.teardown(() => one.close());
  await one.login(a.target, { MaxRecvDataSegmentLength: 8192 });
  const r = await startRead(one);
  t.true(pins() > pinsBefore, 'the READ pinned the slot it sends from');
  const m = one.itt();
  const tb = bhs(OP.TASK_MGMT, 0x80 | 1, { itt: m, cmdSN: one.cmdSN, lun: 1, immediate: true });
  tb.writeUInt32BE(r.itt, 20);
  tb.writeUInt32BE(r.cmdSN, 32);
  one.send(tb);
  t.is((await one.next((p) => p.itt === m)).bhs[2], 0, 'aborted while sending');
  t.is((await client.statistics()).cache.pinned, 0, 'ABORT TASK: no slot left pinned');

  // Logout while a READ sends: the session's tasks are aborted before the Logout Response goes.
  const two = await IscsiConn.connect(a.port);
  t.teardown(() => two.close());
  await two.login(a.target, { MaxRecvDataSegmentLength: 8192 }, { isid: Buffer.from([0x80, 0, 0, 0, 0, 2]) });
  const r2 = await startRead(two);
  two.send(bhs(OP.LOGOUT, 0x80, { itt: 77, cmdSN: two.cmdSN, immediate: true }));
  t.is((await two.next((p) => p.opcode === OP.LOGOUT_RESPONSE)).bhs[2], 0);
  t.false(two.pdus.some((p) => p.itt === r2.itt && (p.flags & 1) !== 0), 'the READ ended without its status');
  t.is((await client.statistics()).cache.pinned, 0, 'session closed: no slot left pinned');
  // Every slot can still be evicted: a read of more than the cache holds goes through.
  t.true((await read(q, 1, 0, 32768)).equals(Buffer.concat([pattern(4 << 20, 60), pattern(4 << 20, 61), pattern(4 << 20, 62), pattern(4 << 20, 63)])));
});
