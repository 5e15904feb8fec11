// Login (RFC 7143 6, 12, 13) at the PDU level: what the target answers to every operational key,
// what it declares, CHAP step by step (against an MD5 that is not the firmware's), and the Login
// Response status class and detail for each way a login can be wrong; after a failed login the
// target closes that connection and no other.
import test from 'ava';
import * as crypto from 'crypto';
import * as A from '../../hal/abi';
import { startIscsi } from './env';
import { IscsiConn, OP, bhs, keys, parseKeys, tur } from '../../host/iscsi';

const NAME = 'iqn.2026-11.org.sanbox:test-initiator';

test('operational negotiation: every key answered with the RFC result, our limits declared, digests in force after login', async (t) => {
  const a = await startIscsi('login-keys');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const k = await c.login(a.target, {
    HeaderDigest: 'CRC32C,None', DataDigest: 'None,CRC32C', MaxConnections: 4, InitialR2T: 'No', ImmediateData: 'Yes',
    MaxBurstLength: 1048576, FirstBurstLength: 131072, DefaultTime2Wait: 0, DefaultTime2Retain: 60, MaxOutstandingR2T: 8,
    DataPDUInOrder: 'No', DataSequenceInOrder: 'No', ErrorRecoveryLevel: 2, IFMarker: 'Yes', OFMarker: 'No',
    'X-org.example.Unknown': 'x', InitiatorAlias: 'tester',
  });
  t.like(k, {
    HeaderDigest: 'CRC32C', DataDigest: 'None', MaxConnections: '1', InitialR2T: 'No', ImmediateData: 'Yes',
    MaxBurstLength: '262144', FirstBurstLength: '65536', DefaultTime2Wait: '2', DefaultTime2Retain: '0', MaxOutstandingR2T: '1',
    DataPDUInOrder: 'Yes', DataSequenceInOrder: 'Yes', ErrorRecoveryLevel: '0', IFMarker: 'No', OFMarker: 'No',
    'X-org.example.Unknown': 'NotUnderstood', MaxRecvDataSegmentLength: '131072', TargetPortalGroupTag: '1', TargetAlias: 'fe0',
  });
  // Header digests from now on, both ways (the initiator checks every one the target sends).
  t.true(c.headerDigest);
  c.send(bhs(OP.SCSI_COMMAND, 0x81, { itt: 9, cmdSN: c.cmdSN++, lun: 1 }), Buffer.alloc(0));
  const r = await c.next((p) => p.itt === 9);
  t.is(r.opcode, OP.SCSI_RESPONSE);
  t.is(r.bhs[3], 0);
  t.is(a.emu.array().stats()[A.STAT_ISCSI_LOGINS], 1);
});

test('FirstBurstLength is never above MaxBurstLength, and a value out of range is Rejected, not the login', async (t) => {
  const a = await startIscsi('login-burst');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const k = await c.login(a.target, { MaxBurstLength: 16384, FirstBurstLength: 65536, MaxOutstandingR2T: 0, DefaultTime2Wait: 'soon' });
  t.like(k, { MaxBurstLength: '16384', FirstBurstLength: '16384', MaxOutstandingR2T: 'Reject', DefaultTime2Wait: 'Reject' });
});

async function failedLogin(t: import('ava').ExecutionContext, a: Awaited<ReturnType<typeof startIscsi>>, status: number,
  send: (c: IscsiConn) => Promise<{ status: number }>, what: string) {
  const before = a.emu.array().stats()[A.STAT_ISCSI_LOGIN_FAILURES];
  const c = await IscsiConn.connect(a.port);
  const r = await send(c);
  t.is(r.status, status, `${what}: status ${r.status.toString(16)}`);
  await c.closed; // the target closes the connection after a login failure
  t.is(a.emu.array().stats()[A.STAT_ISCSI_LOGIN_FAILURES], before + 1, what);
}

const op = { csg: 1, nsg: 3, transit: true };
const base = (a: { target: string }) => ({ InitiatorName: NAME, TargetName: a.target, SessionType: 'Normal' });

test('a bad login gets the status the RFC names, and the target closes only that connection', async (t) => {
  const a = await startIscsi('login-bad');
  t.teardown(() => a.emu.stop());
  const bystander = await IscsiConn.connect(a.port);
  t.teardown(() => bystander.close());
  await bystander.login(a.target, {}, { isid: Buffer.from([0x80, 0, 0, 0, 0, 0x77]) });
  t.not(bystander.tsih, 0);
  const raw = (c: IscsiConn, text: Buffer, o = op) => {
    const b = bhs(OP.LOGIN, (o.transit ? 0x80 : 0) | (o.csg << 2) | o.nsg, { itt: 1, cmdSN: 1, immediate: true });
    Buffer.from([0x80, 0, 0, 1, 2, 3]).copy(b, 8);
    c.send(b, text);
    return c.next((p) => p.opcode === OP.LOGIN_RESPONSE).then((p) => ({ status: p.bhs.readUInt16BE(36) }));
  };
  const cases: Array<[string, number, (c: IscsiConn) => Promise<{ status: number }>]> = [
    ['a pair without "="', 0x0200, (c) => raw(c, keys([`InitiatorName=${NAME}`, 'HeaderDigest'])) ],
    ['a key with a space', 0x0200, (c) => raw(c, keys([`InitiatorName=${NAME}`, 'Header Digest=None']))],
    ['a key of 64 characters', 0x0200, (c) => raw(c, keys([`InitiatorName=${NAME}`, `${'K'.repeat(64)}=1`]))],
    ['a value of 4097 bytes', 0x0200, (c) => raw(c, keys([`InitiatorName=${NAME}`, `X-long=${'v'.repeat(4097)}`]))],
    ['text not ended by a NUL', 0x0200, (c) => raw(c, Buffer.from(`InitiatorName=${NAME}\0HeaderDigest=None`, 'latin1'))],
    ['a key twice', 0x0200, (c) => c.loginStep([`InitiatorName=${NAME}`, 'HeaderDigest=None', 'HeaderDigest=CRC32C'], op)],
    ['no InitiatorName', 0x0207, (c) => c.loginStep({ TargetName: a.target }, op)],
    ['no TargetName in a normal session', 0x0207, (c) => c.loginStep({ InitiatorName: NAME }, op)],
    ['a target this port is not', 0x0203, (c) => c.loginStep({ InitiatorName: NAME, TargetName: 'iqn.2026-11.org.sanbox:nobody' }, op)],
    ['SessionType=Sometimes', 0x0209, (c) => c.loginStep({ ...base(a), SessionType: 'Sometimes' }, op)],
    ['Version-min 1', 0x0205, (c) => c.loginStep(base(a), { ...op, versionMin: 1 })],
    ['a TSIH no session has', 0x020a, (c) => c.loginStep(base(a), { ...op, tsih: 0x1234 })],
    ['a second connection to a live session (its TSIH)', 0x0206, (c) => c.loginStep(base(a), { ...op, tsih: bystander.tsih })],
    ['AuthMethod in the operational stage', 0x0200, (c) => c.loginStep({ ...base(a), AuthMethod: 'None' }, op)],
    ['CSG 2 (reserved)', 0x0200, (c) => c.loginStep(base(a), { csg: 2, nsg: 3, transit: true })],
    ['transit to a stage before the current one', 0x0200, (c) => c.loginStep(base(a), { csg: 1, nsg: 0, transit: true })],
    ['a SCSI command before the login ends', 0x020b, async (c) => {
      await c.loginStep(base(a), { csg: 1, nsg: 3, transit: false });
      c.send(bhs(OP.SCSI_COMMAND, 0x80, { itt: 5, cmdSN: 1 }));
      return c.next((p) => p.opcode === OP.LOGIN_RESPONSE).then((p) => ({ status: p.bhs.readUInt16BE(36) }));
    }],
  ];
  for (const [what, status, send] of cases) await failedLogin(t, a, status, send, what);
  // The logged-in session never noticed.
  const r = await bystander.command(1, tur());
  t.is(r.status, 0);
});

test('CHAP step by step: AuthMethod, CHAP_A/I/C from the target, CHAP_N/R checked, mutual answer verified here', async (t) => {
  const a = await startIscsi('login-chap', { chap: { user: 'alice', secret: 'alice-secret-123', targetUser: 'array0', targetSecret: 'array-secret-456' } });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const sec = { csg: 0, nsg: 1, transit: true };
  const r1 = await c.loginStep({ ...base(a), AuthMethod: 'None,CHAP' }, sec);
  t.is(r1.status, 0);
  t.is(r1.keys.AuthMethod, 'CHAP');
  t.is(r1.pdu.flags & 0x80, 0, 'no transit before authentication');
  const r2 = await c.loginStep({ CHAP_A: '7,5' }, { ...sec, transit: false });
  t.is(r2.keys.CHAP_A, '5');
  t.regex(r2.keys.CHAP_C, /^0x[0-9A-F]{32}$/);
  const id = Number(r2.keys.CHAP_I);
  const challenge = Buffer.from(r2.keys.CHAP_C.slice(2), 'hex');
  const md5 = (...parts: Buffer[]) => crypto.createHash('md5').update(Buffer.concat(parts)).digest();
  const response = md5(Buffer.from([id]), Buffer.from('alice-secret-123'), challenge);
  const ours = crypto.randomBytes(16);
  const r3 = await c.loginStep({ CHAP_N: 'alice', CHAP_R: `0x${response.toString('hex')}`, CHAP_I: 77, CHAP_C: `0b${ours.toString('base64')}` }, sec);
  t.is(r3.status, 0);
  t.true((r3.pdu.flags & 0x80) !== 0, 'transit once authenticated');
  t.is(r3.keys.CHAP_N, 'array0');
  t.is(r3.keys.CHAP_R.toLowerCase(), `0x${md5(Buffer.from([77]), Buffer.from('array-secret-456'), ours).toString('hex')}`);
  const r4 = await c.loginStep({ HeaderDigest: 'None' }, op);
  t.is(r4.status, 0);
  t.is(r4.pdu.flags & 3, 3);
});

test('CHAP: our own challenge sent back (reflection) and a wrong response fail with 0201h', async (t) => {
  const a = await startIscsi('login-chap-bad', { chap: { user: 'alice', secret: 'alice-secret-123', targetUser: 'array0', targetSecret: 'array-secret-456' } });
  t.teardown(() => a.emu.stop());
  const sec = { csg: 0, nsg: 1, transit: true };
  const start = async () => {
    const c = await IscsiConn.connect(a.port);
    await c.loginStep({ ...base(a), AuthMethod: 'CHAP' }, sec);
    const r = await c.loginStep({ CHAP_A: '5' }, { ...sec, transit: false });
    const right = crypto.createHash('md5').update(Buffer.concat([Buffer.from([Number(r.keys.CHAP_I)]), Buffer.from('alice-secret-123'),
      Buffer.from(r.keys.CHAP_C.slice(2), 'hex')])).digest();
    return { c, challenge: r.keys.CHAP_C, right: `0x${right.toString('hex')}` };
  };
  const reflect = await start();
  const r1 = await reflect.c.loginStep({ CHAP_N: 'alice', CHAP_R: reflect.right, CHAP_I: 1, CHAP_C: reflect.challenge }, sec);
  t.is(r1.status, 0x0201);
  await reflect.c.closed;
  const wrong = await start();
  const r2 = await wrong.c.loginStep({ CHAP_N: 'alice', CHAP_R: `0x${'00'.repeat(16)}`, CHAP_I: 1, CHAP_C: '0x0102030405060708' }, sec);
  t.is(r2.status, 0x0201);
  await wrong.c.closed;
  // Skipping security on a port that asks for CHAP is an authentication failure too.
  const skip = await IscsiConn.connect(a.port);
  t.is((await skip.loginStep(base(a), op)).status, 0x0201);
  await skip.closed;
});

test('deterministic mode: the same seed gives the same CHAP challenge, another seed another', async (t) => {
  const challenge = async (seed: number) => {
    const a = await startIscsi(`login-seed${seed}`, { chap: { user: 'alice', secret: 'alice-secret-123' }, mode: 'deterministic', seed });
    try {
      const c = await IscsiConn.connect(a.port);
      await c.loginStep({ ...base(a), AuthMethod: 'CHAP' }, { csg: 0, nsg: 1, transit: true });
      const r = await c.loginStep({ CHAP_A: '5' }, { csg: 0, nsg: 1, transit: false });
      c.close();
      return `${r.keys.CHAP_I}/${r.keys.CHAP_C}`;
    } finally {
      await a.emu.stop();
    }
  };
  const first = await challenge(7);
  t.is(await challenge(7), first);
  t.not(await challenge(8), first);
});

test('request text that spans Login PDUs (C bit) is gathered; each part before the last gets an empty answer', async (t) => {
  const a = await startIscsi('login-continue');
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  const text = keys({ ...base(a), HeaderDigest: 'None', MaxBurstLength: 65536, 'X-long': 'y'.repeat(300) });
  const cut = 200; // in the middle of a pair
  const login = (part: Buffer, more: boolean) => {
    const b = bhs(OP.LOGIN, (more ? 0x40 : 0x80) | (1 << 2) | (more ? 0 : 3), { itt: 1, cmdSN: 1, immediate: true });
    Buffer.from([0x80, 0, 0, 4, 5, 6]).copy(b, 8);
    c.send(b, part);
    return c.next((p) => p.opcode === OP.LOGIN_RESPONSE);
  };
  const first = await login(text.subarray(0, cut), true);
  t.is(first.bhs.readUInt16BE(36), 0);
  t.is(first.data.length, 0, 'an empty answer asks for the rest');
  t.is(first.flags & 0x80, 0);
  const last = await login(text.subarray(cut), false);
  t.is(last.bhs.readUInt16BE(36), 0);
  t.is(last.flags & 3, 3, 'full feature phase');
  t.like(parseKeys(last.data), { HeaderDigest: 'None', MaxBurstLength: '65536', 'X-long': 'NotUnderstood' });
});

test('a login that does not finish within 30 s is dropped (virtual time)', async (t) => {
  const a = await startIscsi('login-timeout', { mode: 'deterministic' });
  t.teardown(() => a.emu.stop());
  const c = await IscsiConn.connect(a.port);
  t.teardown(() => c.close());
  await c.loginStep(base(a), { csg: 1, nsg: 3, transit: false }); // started, never finished
  await a.emu.advance(29_000);
  t.false(c.isClosed, 'still waiting at 29 s');
  await a.emu.advance(2_000);
  await c.closed;
  t.pass();
});
