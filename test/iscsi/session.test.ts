// Full feature phase at the PDU level (RFC 7143 3, 4, 11): immediate and unsolicited data and the
// R2Ts for the rest, Data-In cut by MaxRecvDataSegmentLength with F every MaxBurstLength and the
// status in the last one, data digests both ways, CmdSN order and window, NOP both ways, Text
// (SendTargets), Logout, session reinstatement, Reject for what breaks the rules, many sessions.
import test from 'ava';
import * as net from 'net';
import * as A from '../../hal/abi';
import { startIscsi } from './env';
import { IscsiConn, OP, bhs, keys, parseKeys, rw10, tur } from '../../host/iscsi';
import * as scsi from '../../lib/scsi';
import { connect } from '../../host/connect';
import { pattern, read, run, write } from '../harness/env';

test('a write with immediate and unsolicited data up to FirstBurstLength, then R2Ts of MaxBurstLength for the rest', async (t) => {
  const a = await startIscsi('ffp-write');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: 65536, MaxBurstLength: 131072 });
  const data = pattern(512 << 10, 3);
  const itt = c.itt();
  const cmd = bhs(OP.SCSI_COMMAND, 0x20 | 1, { itt, cmdSN: c.cmdSN++, lun: 1 }); // W, no F: unsolicited Data-Out follows
  cmd.writeUInt32BE(data.length, 20);
  rw10(true, 100, 1024).copy(cmd, 32);
  c.send(cmd, data.subarray(0, 8192));
  c.dataOut(itt, 0xffffffff, data.subarray(8192, 65536), 8192, 8192);
  const r2ts: Array<[number, number, number]> = [];
  for (;;) {
    const p = await c.next((x) => x.itt === itt);
    if (p.opcode === OP.R2T) {
      const offset = p.bhs.readUInt32BE(40);
      const length = p.bhs.readUInt32BE(44);
      r2ts.push([p.bhs.readUInt32BE(36), offset, length]);
      c.dataOut(itt, p.ttt, data.subarray(offset, offset + length), offset, 32768);
      continue;
    }
    t.is(p.opcode, OP.SCSI_RESPONSE);
    t.is(p.bhs[3], 0);
    t.is(p.bhs.readUInt32BE(36), r2ts.length, 'ExpDataSN counts the R2Ts');
    break;
  }
  t.deepEqual(r2ts, [[0, 65536, 131072], [1, 196608, 131072], [2, 327680, 131072], [3, 458752, 65536]]);
  t.true((await read(a.emu.connect(), 1, 100, 1024)).equals(data));
});

test('burst lengths that are not whole sectors are answered rounded down to them, so every R2T window is whole sectors; unsolicited data that stops inside a sector is refused, nothing written', async (t) => {
  const a = await startIscsi('ffp-odd-burst');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const k = await c.login(a.target, { InitialR2T: 'No', ImmediateData: 'Yes', FirstBurstLength: 1000, MaxBurstLength: 1700 });
  t.deepEqual([k.FirstBurstLength, k.MaxBurstLength], ['512', '1536'], 'Minimum: ours is the offer rounded down to 512-byte sectors');
  const data = pattern(64 << 10, 21);
  const r2ts: number[] = [];
  const itt = c.itt();
  const cmd = bhs(OP.SCSI_COMMAND, 0x80 | 0x20 | 1, { itt, cmdSN: c.cmdSN++, lun: 1 }); // F: all the unsolicited data is the immediate data
  cmd.writeUInt32BE(data.length, 20);
  rw10(true, 300, 128).copy(cmd, 32);
  c.send(cmd, data.subarray(0, 512));
  for (;;) {
    const p = await c.next((x) => x.itt === itt);
    if (p.opcode !== OP.R2T) { t.is(p.bhs[3], 0, 'GOOD'); break; }
    const offset = p.bhs.readUInt32BE(40);
    const length = p.bhs.readUInt32BE(44);
    r2ts.push(length);
    c.dataOut(itt, p.ttt, data.subarray(offset, offset + length), offset, 1000);
  }
  t.true(r2ts.every((n) => n % 512 === 0), `R2T lengths ${r2ts.slice(0, 4).join()}...`);
  t.true((await read(a.emu.connect(), 1, 300, 128)).equals(data), 'the blocks are the data-out, each at its place');
  // 700 bytes of immediate data, then nothing: the window would end inside the second sector.
  const before = await read(a.emu.connect(), 1, 600, 16);
  const r = await c.command(1, rw10(true, 600, 16), { write: pattern(8192, 22), immediate: 700 });
  t.deepEqual([r.status, r.sense[2] & 0xf, r.sense[12], r.sense[13]], [2, 5, 0x0e, 0x03], 'INVALID FIELD IN COMMAND INFORMATION UNIT');
  t.true((await read(a.emu.connect(), 1, 600, 16)).equals(before), 'nothing written');
  t.is((await c.command(1, rw10(false, 300, 1), { read: 512 })).status, 0, 'the session goes on');
});

test('a read: Data-In of MaxRecvDataSegmentLength, F at each MaxBurstLength, DataSN in order, GOOD in the last one', async (t) => {
  const a = await startIscsi('ffp-read');
  t.teardown(() => a.emu.stop());
  const data = pattern(256 << 10, 4);
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { MaxRecvDataSegmentLength: 16384, MaxBurstLength: 65536 });
  t.is((await c.command(1, rw10(true, 0, 512), { write: data, immediate: 8192 })).status, 0);
  const itt = c.itt();
  const cmd = bhs(OP.SCSI_COMMAND, 0xc1, { itt, cmdSN: c.cmdSN++, lun: 1 });
  cmd.writeUInt32BE(data.length, 20);
  rw10(false, 0, 512).copy(cmd, 32);
  c.send(cmd);
  const got: Buffer[] = [];
  let finals = 0;
  for (let sn = 0; ; sn++) {
    const p = await c.next((x) => x.itt === itt);
    t.is(p.opcode, OP.DATA_IN);
    t.is(p.bhs.readUInt32BE(36), sn);
    t.is(p.bhs.readUInt32BE(40), sn * 16384);
    t.is(p.data.length, 16384);
    got.push(p.data);
    if ((p.flags & 0x80) !== 0) finals++;
    t.is((p.flags & 0x80) !== 0, (sn + 1) % 4 === 0, `F bit of DataSN ${sn}`);
    if ((p.flags & 0x01) !== 0) { t.is(p.bhs[3], 0); break; }
  }
  t.is(finals, 4);
  t.true(Buffer.concat(got).equals(data));
  t.is(c.pdus.length, 0, 'no SCSI Response after a Data-In with the status');
});

test('data digests both ways; a Data-Out with a bad digest is Rejected and its command ends with 47h/05h; the session goes on', async (t) => {
  const a = await startIscsi('ffp-digest');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const k = await c.login(a.target, { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
  t.like(k, { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
  const data = pattern(64 << 10, 8);
  t.is((await c.command(1, rw10(true, 8, 128), { write: data, immediate: 4096 })).status, 0);
  const back = await c.command(1, rw10(false, 8, 128), { read: data.length });
  t.true(back.data.equals(data), 'read back under data digests (each one checked here)');
  // A Data-Out whose digest is wrong.
  const itt = c.itt();
  const cmd = bhs(OP.SCSI_COMMAND, 0xa1, { itt, cmdSN: c.cmdSN++, lun: 1 });
  cmd.writeUInt32BE(4096, 20);
  rw10(true, 8, 8).copy(cmd, 32);
  c.send(cmd);
  const r2t = await c.next((p) => p.itt === itt && p.opcode === OP.R2T);
  c.dataOut(itt, r2t.ttt, pattern(4096, 9), 0, 4096, { badDataDigest: true });
  const rj = await c.next((p) => p.opcode === OP.REJECT);
  t.is(rj.bhs[2], 0x02, 'reason: data digest error');
  t.is(rj.data.readUInt32BE(16), itt, 'the Reject carries the bad PDU header');
  const rsp = await c.next((p) => p.itt === itt);
  t.is(rsp.opcode, OP.SCSI_RESPONSE);
  t.is(rsp.bhs[3], 2);
  const sense = rsp.data.subarray(2);
  t.deepEqual([sense[2] & 0xf, sense[12], sense[13]], [0x0b, 0x47, 0x05]);
  t.true((await read(a.emu.connect(), 1, 8, 128)).equals(data), 'nothing of the bad data was written');
  t.is((await c.command(1, tur())).status, 0);
  t.true(a.emu.array().stats()[A.STAT_ISCSI_DIGEST_ERRORS] >= 1);
});

test('a command with immediate data that fails its digest leaves a CmdSN gap; sending it again fills it', async (t) => {
  const a = await startIscsi('ffp-gap-digest');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { DataDigest: 'CRC32C' });
  const data = pattern(4096, 12);
  const sn = c.cmdSN++;
  const cmd = (itt: number) => {
    const b = bhs(OP.SCSI_COMMAND, 0xa1, { itt, cmdSN: sn, lun: 1 });
    b.writeUInt32BE(4096, 20);
    rw10(true, 40, 8).copy(b, 32);
    return b;
  };
  c.send(cmd(50), data, { badDataDigest: true });
  t.is((await c.next((p) => p.opcode === OP.REJECT)).bhs[2], 0x02);
  // A read of the same blocks behind the gap is held: a NOP ping answered meanwhile shows it has
  // not run; once the gap is filled it runs after the write and reads what the write wrote.
  const rd = bhs(OP.SCSI_COMMAND, 0xc1, { itt: 51, cmdSN: c.cmdSN++, lun: 1 });
  rd.writeUInt32BE(4096, 20);
  rw10(false, 40, 8).copy(rd, 32);
  c.send(rd);
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: 52, immediate: true, cmdSN: c.cmdSN }));
  await c.next((p) => p.opcode === OP.NOP_IN && p.itt === 52);
  t.false(c.pdus.some((p) => p.itt === 51), 'held behind the gap');
  c.send(cmd(53), data); // the same CmdSN, again
  t.is((await c.next((p) => p.itt === 53)).bhs[3], 0);
  const second = await c.next((p) => p.itt === 51 && (p.flags & 1) !== 0);
  t.is(second.bhs[3], 0);
  t.true(second.data.equals(data), 'the held read ran after the write, in CmdSN order');
});

test('CmdSN outside the window is dropped without an answer, counted; the session goes on', async (t) => {
  const a = await startIscsi('ffp-window');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const before = a.emu.array().stats()[A.STAT_ISCSI_DROPPED];
  const max = (await c.command(1, tur())).response.maxCmdSN;
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 70, cmdSN: max + 1, lun: 1 })); // above MaxCmdSN
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 71, cmdSN: c.cmdSN - 1, lun: 1 })); // below ExpCmdSN
  t.is((await c.command(1, tur())).status, 0);
  t.false(c.pdus.some((p) => p.itt === 70 || p.itt === 71));
  t.is(a.emu.array().stats()[A.STAT_ISCSI_DROPPED], before + 2);
});

test('NOP: a ping is echoed with its data; an idle initiator is pinged and, silent, dropped (virtual time)', async (t) => {
  const a = await startIscsi('ffp-nop', { pingIntervalMs: 1000, mode: 'deterministic' });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: 80, cmdSN: c.cmdSN, immediate: true }), Buffer.from('ping data'));
  const echo = await c.next((p) => p.opcode === OP.NOP_IN && p.itt === 80);
  t.is(echo.data.toString(), 'ping data');
  t.is(echo.ttt, 0xffffffff);
  // Idle for the interval: the target's own ping, ITT FFFFFFFFh with a TTT to answer with.
  t.false(c.pdus.some((p) => p.opcode === OP.NOP_IN), 'no ping while the initiator is busy');
  await a.emu.advance(1300);
  const ping = await c.next((p) => p.opcode === OP.NOP_IN && p.itt === 0xffffffff);
  t.not(ping.ttt, 0xffffffff);
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: 0xffffffff, ttt: ping.ttt, cmdSN: c.cmdSN, immediate: true }));
  // The answer gets no answer; a ping of ours after it shows the target has read it before time moves on.
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: 81, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.opcode === OP.NOP_IN && p.itt === 81);
  await a.emu.advance(1300);
  const again = await c.next((p) => p.opcode === OP.NOP_IN && p.itt === 0xffffffff);
  t.not(again.ttt, ping.ttt);
  t.false(c.isClosed, 'an answered ping keeps the connection');
  // Unanswered as long again: the connection goes.
  await a.emu.advance(2600);
  await c.closed;
  t.pass();
});

test('SendTargets: a discovery session lists every iSCSI port with its portal; continuation past MaxRecvDataSegmentLength', async (t) => {
  const long = (n: number) => `iqn.2026-11.org.sanbox:${'x'.repeat(180)}.${n}`;
  const a = await startIscsi('ffp-discovery', {
    extraPorts: [1, 2].map((n) => ({ name: `fe${n}`, iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0, targetName: long(n),
      ...(n === 2 ? { host: '0.0.0.0' } : {}) })),
  });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(undefined, { MaxRecvDataSegmentLength: 512 });
  const itt = c.itt();
  c.send(bhs(OP.TEXT, 0x80, { itt, cmdSN: c.cmdSN, immediate: true }), keys({ SendTargets: 'All' }));
  let text = Buffer.alloc(0);
  let parts = 0;
  for (;;) {
    const p = await c.next((x) => x.opcode === OP.TEXT_RESPONSE);
    t.true(p.data.length <= 512);
    text = Buffer.concat([text, p.data]);
    parts++;
    if ((p.flags & 0x80) !== 0) break;
    t.true((p.flags & 0x40) !== 0, 'C bit while more follows');
    c.send(bhs(OP.TEXT, 0x80, { itt, ttt: p.ttt, cmdSN: c.cmdSN, immediate: true }));
  }
  t.true(parts > 1);
  const pairs = text.toString('latin1').split('\0').filter(Boolean);
  const ports = a.emu.array().targets.filter((x) => x.target.startsWith('iscsi://'));
  t.is(pairs.length, 2 * ports.length);
  for (const p of ports) {
    const m = /^iscsi:\/\/([^/]+):(\d+)\/(.+)$/.exec(p.target)!;
    t.true(pairs.includes(`TargetName=${m[3]}`), m[3]);
    // A port listening on every address is named by the one the initiator reached us at.
    t.true(pairs.includes(`TargetAddress=${m[1] === '0.0.0.0' ? '127.0.0.1' : m[1]}:${m[2]},1`), p.target);
  }
  // A discovery session runs no SCSI commands.
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 99, cmdSN: c.cmdSN++, lun: 0 }));
  t.is((await c.next((p) => p.opcode === OP.REJECT)).bhs[2], 0x04);
});

test('SendTargets in a normal session: its own target for an empty value, All refused', async (t) => {
  const a = await startIscsi('ffp-sendtargets');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  c.send(bhs(OP.TEXT, 0x80, { itt: 5, cmdSN: c.cmdSN, immediate: true }), keys(['SendTargets=']));
  t.deepEqual(parseKeys((await c.next((p) => p.itt === 5)).data), { TargetName: a.target, TargetAddress: `${a.portal},1` });
  c.send(bhs(OP.TEXT, 0x80, { itt: 6, cmdSN: c.cmdSN, immediate: true }), keys({ SendTargets: 'All', InitialR2T: 'No', 'X-y': 'z' }));
  t.deepEqual(parseKeys((await c.next((p) => p.itt === 6)).data), { SendTargets: 'Reject', InitialR2T: 'Irrelevant', 'X-y': 'NotUnderstood' });
});

test('an initiator that stops reading is dropped once a ping interval has gone by with no room for the ping and as long again; its slot serves the next (virtual time)', async (t) => {
  const a = await startIscsi('ffp-stalled-reader', { pingIntervalMs: 1000, mode: 'deterministic', sessions: 1 });
  t.teardown(() => a.emu.stop());
  await write(a.emu.connect(), 1, 0, pattern(1 << 20, 12)); // in the cache: the READs below send at once
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  // 64 MiB of READs, not read: the kernel's socket buffers, then the session's tx ring fill, and
  // the READs stay half sent, holding their cache slots.
  c.sock.pause();
  for (let i = 0; i < 64; i++) {
    const b = bhs(OP.SCSI_COMMAND, 0xc1, { itt: c.itt(), cmdSN: c.cmdSN++, lun: 1 });
    b.writeUInt32BE(1 << 20, 20);
    rw10(false, 0, 2048).copy(b, 32);
    c.send(b);
  }
  await a.emu.settle();
  await a.emu.advance(1300); // idle for the interval: a ping is due, and finds no room
  await a.emu.advance(2600); // as long again, no room: the session ends and its tasks with it
  const next = await IscsiConn.connect(a.port);
  t.teardown(() => next.close());
  await next.login(a.target, {}, { isid: Buffer.from([0x80, 0, 0, 0, 0, 9]) });
  t.is((await next.command(1, rw10(false, 0, 2048), { read: 1 << 20 })).status, 0, 'the only slot serves a new initiator');
});

test('Reject: an opcode the target does not know, SNACK at ErrorRecoveryLevel 0, a Login in full feature phase, a data segment beyond MaxRecvDataSegmentLength', async (t) => {
  const a = await startIscsi('ffp-reject');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  const cases: Array<[string, Buffer, Buffer, number]> = [
    ['opcode 1Ch', bhs(0x1c, 0x80, { itt: 1 }), Buffer.alloc(0), 0x05],
    ['SNACK', bhs(OP.SNACK, 0x80, { itt: 2 }), Buffer.alloc(0), 0x04],
    ['Login', bhs(OP.LOGIN, 0x87, { itt: 3, immediate: true }), keys({ InitiatorName: 'x' }), 0x04],
    ['a NOP-Out with a TTT the target never gave', bhs(OP.NOP_OUT, 0x80, { itt: 4, ttt: 1234, immediate: true }), Buffer.alloc(0), 0x09],
    ['256 KiB of ping data (MaxRecvDataSegmentLength is 128 KiB)', bhs(OP.NOP_OUT, 0x80, { itt: 5, immediate: true }), Buffer.alloc(256 << 10, 7), 0x04],
  ];
  for (const [what, b, data, reason] of cases) {
    const before = a.emu.array().stats()[A.STAT_ISCSI_REJECTS];
    c.send(b, data);
    const rj = await c.next((p) => p.opcode === OP.REJECT);
    t.is(rj.bhs[2], reason, what);
    t.is(rj.data.length, 48, `${what}: the header comes back`);
    t.is(rj.data[0] & 0x3f, b[0] & 0x3f, what);
    t.is(rj.data.readUInt32BE(16), b.readUInt32BE(16), what);
    t.is(a.emu.array().stats()[A.STAT_ISCSI_REJECTS], before + 1, what);
    t.is((await c.command(1, tur())).status, 0, `${what}: the session goes on`);
  }
  // Data-Out for no task: dropped without an answer, counted.
  const dropped = a.emu.array().stats()[A.STAT_ISCSI_DROPPED];
  c.dataOut(4242, 7, Buffer.alloc(512), 0, 512);
  t.is((await c.command(1, tur())).status, 0);
  t.is(a.emu.array().stats()[A.STAT_ISCSI_DROPPED], dropped + 1);
});

test('a header digest error ends that connection (ERL 0) and no other', async (t) => {
  const a = await startIscsi('ffp-header-digest');
  t.teardown(() => a.emu.stop());
  const bad = await IscsiConn.connect(a.port);
  const good = await IscsiConn.connect(a.port);
  t.teardown(() => { bad.close(); good.close(); });
  await bad.login(a.target, { HeaderDigest: 'CRC32C' }, { isid: Buffer.from([0x80, 0, 0, 0, 0, 1]) });
  await good.login(a.target, { HeaderDigest: 'CRC32C' }, { isid: Buffer.from([0x80, 0, 0, 0, 0, 2]) });
  bad.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 1, cmdSN: bad.cmdSN++, lun: 1 }), Buffer.alloc(0), { badHeaderDigest: true });
  await bad.closed;
  t.is((await good.command(1, tur())).status, 0);
  t.true(a.emu.array().stats()[A.STAT_ISCSI_DIGEST_ERRORS] >= 1);
});

test('Logout closes the session: response 0, then the target closes the connection; recovery logout is not supported', async (t) => {
  const a = await startIscsi('ffp-logout');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  await c.login(a.target);
  const recover = bhs(OP.LOGOUT, 0x82, { itt: 1, cmdSN: c.cmdSN, immediate: true });
  c.send(recover);
  t.is((await c.next((p) => p.opcode === OP.LOGOUT_RESPONSE)).bhs[2], 2);
  c.send(bhs(OP.LOGOUT, 0x80, { itt: 2, cmdSN: c.cmdSN, immediate: true }));
  const r = await c.next((p) => p.opcode === OP.LOGOUT_RESPONSE);
  t.is(r.bhs[2], 0);
  await c.closed;
});

test('session reinstatement: a new login with the same initiator name and ISID ends the old session', async (t) => {
  const a = await startIscsi('ffp-reinstate');
  t.teardown(() => a.emu.stop());
  const isid = Buffer.from([0x80, 1, 2, 3, 4, 5]);
  const old = await IscsiConn.connect(a.port);
  await old.login(a.target, {}, { isid });
  const other = await IscsiConn.connect(a.port);
  await other.login(a.target, {}, { isid: Buffer.from([0x80, 9, 9, 9, 9, 9]) });
  const fresh = await IscsiConn.connect(a.port);
  t.teardown(() => { old.close(); other.close(); fresh.close(); });
  await fresh.login(a.target, {}, { isid });
  await old.closed;
  t.is((await fresh.command(1, tur())).status, 0);
  t.is((await other.command(1, tur())).status, 0, 'another ISID is another session');
});

test('sixteen sessions at once, each writing and reading its own blocks with many commands in flight', async (t) => {
  const a = await startIscsi('ffp-many', { sessions: 16, blocks: 65536 });
  t.teardown(() => a.emu.stop());
  const conns = await Promise.all(Array.from({ length: 16 }, () => IscsiConn.connect(a.port)));
  t.teardown(() => conns.forEach((c) => c.close()));
  await Promise.all(conns.map((c, i) => c.login(a.target, {}, { isid: Buffer.from([0x80, 0, 0, 0, 0, i]) })));
  await Promise.all(conns.map(async (c, i) => {
    const data = pattern(128 << 10, 100 + i);
    const writes = await Promise.all(Array.from({ length: 8 }, (_, k) =>
      c.command(1, rw10(true, i * 4096 + k * 32, 32), { write: data.subarray(k * 16384, (k + 1) * 16384), immediate: 4096 })));
    t.true(writes.every((w) => w.status === 0));
    const reads = await Promise.all(Array.from({ length: 8 }, (_, k) => c.command(1, rw10(false, i * 4096 + k * 32, 32), { read: 16384 })));
    t.true(Buffer.concat(reads.map((r) => r.data)).equals(data), `session ${i}`);
  }));
});

test('the status of a command waits for the unsolicited Data-Out it is still owed (F bit), then goes', async (t) => {
  const a = await startIscsi('ffp-wait-f');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { InitialR2T: 'No', FirstBurstLength: 65536 });
  const itt = c.itt();
  const cmd = bhs(OP.SCSI_COMMAND, 0x21, { itt, cmdSN: c.cmdSN++, lun: 1 }); // W, no F: more unsolicited data to come
  cmd.writeUInt32BE(8192, 20);
  rw10(true, 1 << 30, 16).copy(cmd, 32); // beyond the volume: it fails at once
  c.send(cmd, Buffer.alloc(4096));
  const ping = c.itt();
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: ping, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.itt === ping);
  t.false(c.pdus.some((p) => p.itt === itt), 'no status while Data-Out is owed');
  c.dataOut(itt, 0xffffffff, Buffer.alloc(4096), 4096, 4096);
  const r = await c.next((p) => p.itt === itt);
  t.is(r.bhs[3], 2);
  t.deepEqual([r.data[2 + 2] & 0xf, r.data[2 + 12]], [0x05, 0x21], 'ILLEGAL REQUEST, LBA OUT OF RANGE');
});

test('a command that finds no buffer memory for its unsolicited data ends BUSY, once its data has come', async (t) => {
  const a = await startIscsi('ffp-busy', { blocks: 131072 });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, { InitialR2T: 'No', FirstBurstLength: 65536, MaxBurstLength: 262144 });
  // 64 writes each holding 64 KiB of unsolicited buffer, all of the channel IOP's 4 MiB, waiting for the rest of their data.
  const waiting: number[] = [];
  const send = (lba: number) => {
    const itt = c.itt();
    const b = bhs(OP.SCSI_COMMAND, 0x21, { itt, cmdSN: c.cmdSN++, lun: 1 });
    b.writeUInt32BE(65536, 20);
    rw10(true, lba, 128).copy(b, 32);
    c.send(b, Buffer.alloc(4096, 1));
    return itt;
  };
  for (let i = 0; i < 64; i++) waiting.push(send(i * 128));
  const busy = send(64 * 128);
  c.dataOut(busy, 0xffffffff, Buffer.alloc(61440, 2), 4096, 61440);
  const r = await c.next((p) => p.itt === busy);
  t.is(r.bhs[3], 0x08, `BUSY (got status ${r.bhs[3]}, opcode ${r.opcode.toString(16)}, sense ${r.data.toString('hex')})`);
  t.true(a.emu.array().stats()[A.STAT_BUSY] >= 1);
  // The others finish when their data comes.
  for (const itt of waiting) c.dataOut(itt, 0xffffffff, Buffer.alloc(61440, 3), 4096, 61440);
  for (const itt of waiting) t.is((await c.next((p) => p.itt === itt)).bhs[3], 0);
});

test('a CmdSN gap that does not close within 10 s ends the connection (virtual time)', async (t) => {
  const a = await startIscsi('ffp-gap-timeout', { mode: 'deterministic' });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 9, cmdSN: c.cmdSN + 1, lun: 1 })); // the one before never comes
  const ping = c.itt();
  c.send(bhs(OP.NOP_OUT, 0x80, { itt: ping, cmdSN: c.cmdSN, immediate: true }));
  await c.next((p) => p.itt === ping);
  await a.emu.advance(9_000);
  t.false(c.isClosed);
  await a.emu.advance(2_000);
  await c.closed;
  t.false(c.pdus.some((p) => p.itt === 9), 'the held command never ran');
});

test('every session has an initiator identity: the iSCSI InitiatorName and ISID, the framed host\'s address, the queue slot (LIST SESSIONS)', async (t) => {
  const a = await startIscsi('ffp-identity', { extraPorts: [{ name: 'fe1', iop: 0, transport: 'tcp', port: 0 }] });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target, {}, { isid: Buffer.from([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]), name: 'iqn.2026-11.org.example:host-7' });
  const framed = await connect(a.emu.array().targets.find((x) => x.port === 'fe1')!.target);
  t.teardown(() => framed.close());
  await run(framed, 0, scsi.testUnitReady());
  const q = a.emu.connect();
  const list = scsi.parseSessions(Buffer.from((await run(q, 0, scsi.management(false, scsi.Management.LIST_SESSIONS, 65536), { inLength: 65536 })).data));
  const by = (kind: string) => list.filter((x) => x.kind === kind);
  t.like(by('iscsi')[0], { port: 0, initiator: 'iqn.2026-11.org.example:host-7', isid: '80123456789a' });
  t.like(by('stream')[0], { port: 2, initiator: 'framed:0100', isid: '' });
  t.true(by('queue').some((x) => x.port === 1 && /^inproc:01[0-9A-F]{2}$/.test(x.initiator)), JSON.stringify(list));
  const ports = scsi.parsePorts(Buffer.from((await run(q, 0, scsi.management(false, scsi.Management.LIST_PORTS, 65536), { inLength: 65536 })).data));
  t.deepEqual(ports.map((p) => p.kind), ['iscsi', 'queue', 'stream']);
});

test('a connection to a full iSCSI port is closed with nothing sent (no framed REJECT an initiator could not read); the sessions there go on', async (t) => {
  const a = await startIscsi('ffp-full', { sessions: 1 });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.login(a.target);
  // A plain socket, read from its first byte on.
  const got: Buffer[] = [];
  const extra = net.connect(a.port, '127.0.0.1');
  extra.on('data', (b: Buffer) => got.push(b));
  extra.on('error', () => undefined);
  await new Promise((resolve) => extra.once('close', resolve));
  t.is(Buffer.concat(got).length, 0, 'the refused connection received no bytes');
  t.is((await c.command(1, tur())).status, 0);
});
