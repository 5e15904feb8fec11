// The iSCSI PDU stream under fuzzing: several connections throw generated and mutated PDUs at the
// target — before and after login, with valid digests so the target's parsing past them is what is
// tested, and sometimes plain garbage — while a logged-in bystander keeps reading and writing its
// own volume. The target must stay up (no trap in the debug image), answer or count every bad PDU,
// and never lose the bystander's session or data. Seeded: a failure prints the seed that replays it
// (FUZZ_SEED); FUZZ_PDUS sets the amount (npm test runs a short share).
//
// Bounded by events, not the wall clock: each round ends when the target answers a ping or closes
// the connection. A round that may have left the target inside a PDU (garbage bytes, an AHS the
// header declares but that never comes, a connection never logged in, whose digests the fuzzed
// login may have turned on) cannot be pinged, so its connection is closed instead. The target's own
// pings of idle initiators (wall-clock intervals) are off: a bystander that waited behind a slow
// round on a busy machine would be dropped for not answering one (the pings have their own tests in
// session.test.ts). The waits' wall-clock bound (GUARD_MS) only turns a hang into a failure that
// says what was awaited.
import test from 'ava';
import * as A from '../../hal/abi';
import { Prng } from '../../hal/prng';
import { startIscsi } from './env';
import { IscsiConn, OP, bhs, keys, rw10 } from '../../host/iscsi';
import { createVolume, pattern } from '../harness/env';

const PDUS = Number(process.env.FUZZ_PDUS ?? 6000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261101);
const BYSTANDER_LUN = 2;
const GUARD_MS = Number(process.env.FUZZ_GUARD_MS ?? 300_000);

const KEY_NAMES = ['HeaderDigest', 'DataDigest', 'MaxBurstLength', 'FirstBurstLength', 'InitialR2T', 'ImmediateData', 'SendTargets',
  'MaxRecvDataSegmentLength', 'AuthMethod', 'CHAP_A', 'CHAP_N', 'CHAP_R', 'CHAP_C', 'TargetName', 'InitiatorName', 'X-z', 'ErrorRecoveryLevel'];
const VALUES = ['None', 'CRC32C', 'Yes', 'No', 'All', '0', '512', '16777215', '99999999999', '0x1F', '0b', 'Reject', '', 'x'.repeat(300)];

class Gen {
  constructor(readonly rnd: Prng) {}
  int(n: number): number { return Math.floor(this.rnd.next() * n); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  chance(p: number): boolean { return this.rnd.next() < p; }

  text(): Buffer {
    if (this.chance(0.2)) return this.bytes(this.int(200)); // not key text at all
    const pairs: string[] = [];
    for (let i = this.int(6); i >= 0; i--) {
      const k = this.chance(0.1) ? this.bytes(1 + this.int(70)).toString('latin1') : this.pick(KEY_NAMES);
      pairs.push(this.chance(0.05) ? k : `${k}=${this.pick(VALUES)}`);
    }
    return keys(pairs);
  }

  /** A PDU: a plausible one with fields mutated, or random bytes in a BHS. */
  pdu(c: IscsiConn): { b: Buffer; data: Buffer } {
    const opcodes = [OP.NOP_OUT, OP.SCSI_COMMAND, OP.TASK_MGMT, OP.LOGIN, OP.TEXT, OP.DATA_OUT, OP.LOGOUT, OP.SNACK, 0x1c, 0x3f, 0x20];
    const op = this.pick(opcodes);
    const b = bhs(op, this.int(256), { itt: this.chance(0.3) ? 0xffffffff : this.int(64), ttt: this.chance(0.5) ? 0xffffffff : this.int(64),
      cmdSN: this.chance(0.7) ? c.cmdSN + this.int(3) - 1 : this.int(2 ** 32), immediate: this.chance(0.5) });
    b[9] = this.int(4);
    if (this.chance(0.1)) b[8] = this.int(256);
    b.writeUInt32BE(this.chance(0.5) ? this.int(1 << 17) : this.int(2 ** 32), 20); // EDTL (commands)
    b.writeUInt32BE(this.int(8), 36);
    b.writeUInt32BE(this.chance(0.7) ? this.int(8) * 512 : this.int(2 ** 32), 40);
    if (op === OP.SCSI_COMMAND) (this.chance(0.5) ? rw10(this.chance(0.5), this.int(8192), this.int(64)) : this.bytes(16)).copy(b, 32);
    if (this.chance(0.05)) b[4] = this.int(4); // an AHS
    if (this.chance(0.1)) this.bytes(48).copy(b, 0, 0, this.int(48));
    // What the PDU may not do, whatever the mutations made of it: reach the bystander's volume; send
    // management commands (the volumes stay); reset the target, warm or cold: a cold reset ends the
    // bystander's session, a warm one ends its tasks silently (SAM-5, TAS=0: the other initiators
    // learn of it from a unit attention and time out their commands, which the bystander cannot).
    if (b[9] === BYSTANDER_LUN) b[9] = 1;
    if ((b[0] & 0x3f) === OP.SCSI_COMMAND && (b[32] === 0xc1 || b[32] === 0xc0)) b[32] = 0x00;
    if ((b[0] & 0x3f) === OP.TASK_MGMT && ((b[1] & 0x7f) === 6 || (b[1] & 0x7f) === 7)) b[1] = 0x80 | 5;
    const data = op === OP.LOGIN || op === OP.TEXT ? this.text() : this.bytes(this.chance(0.7) ? this.int(600) : this.int(70000));
    return { b, data };
  }
}

test(`fuzzing the iSCSI PDU stream (${PDUS} PDUs, seed ${SEED}): the target stays up and every other session goes on`, async (t) => {
  t.timeout(600_000);
  const a = await startIscsi('fuzz', { sessions: 16, blocks: 16384, pingIntervalMs: 0 });
  t.teardown(() => a.emu.stop());
  await createVolume(a.emu.connect(), { name: 'bystander', blocks: 8192, blockSize: 512 }, BYSTANDER_LUN);
  const by = await IscsiConn.connect(a.port);
  by.waitMs = GUARD_MS;
  t.teardown(() => by.close());
  await by.login(a.target, { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' }, { isid: Buffer.from([0x80, 0xff, 0, 0, 0, 0]) });
  const g = new Gen(new Prng(SEED));
  const check = async (round: number) => {
    const data = pattern(8192, round);
    const w = await by.command(BYSTANDER_LUN, rw10(true, (round % 512) * 16, 16), { write: data, immediate: g.chance(0.5) ? 4096 : 0 });
    const r = await by.command(BYSTANDER_LUN, rw10(false, (round % 512) * 16, 16), { read: 8192 });
    if (w.status !== 0 || r.status !== 0 || !r.data.equals(data)) throw new Error(`bystander failed in round ${round} (seed ${SEED})`);
  };
  let sent = 0;
  let connections = 0;
  let round = 0;
  while (sent < PDUS) {
    const c = await IscsiConn.connect(a.port);
    c.waitMs = GUARD_MS;
    connections++;
    let inFrame = false; // the target reads this stream PDU by PDU as the fuzzer framed it
    if (g.chance(0.7)) {
      try {
        await c.login(a.target, g.chance(0.5) ? { HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' } : {}, { isid: Buffer.from([0x80, 1, 0, 0, 0, connections & 0xff]) });
        inFrame = true;
      } catch { /* a refused login is an answer too */ }
    }
    const batch = 20 + g.int(80);
    for (let i = 0; i < batch && !c.isClosed; i++, sent++) {
      if (g.chance(0.01)) { c.sock.write(g.bytes(g.int(300))); inFrame = false; continue; } // garbage, not a PDU
      const { b, data } = g.pdu(c);
      if (b[4] !== 0) inFrame = false; // an AHS declared, none sent
      c.send(b, data, { badHeaderDigest: g.chance(0.01), badDataDigest: g.chance(0.02) });
    }
    // The target has answered (or dropped the connection) before the next round: a ping shows it.
    if (inFrame && !c.isClosed) {
      const itt = 0x7fff0000 + round;
      c.send(bhs(OP.NOP_OUT, 0x80, { itt, immediate: true, cmdSN: c.cmdSN }));
      const answer = await Promise.race([
        c.next((p) => p.opcode === OP.NOP_IN && p.itt === itt).then(() => 'answered', (e: Error) => (c.isClosed ? 'closed' : e.message)),
        c.closed.then(() => 'closed'),
      ]);
      if (answer !== 'answered' && answer !== 'closed') throw new Error(`round ${round}: the target neither answered the ping nor closed the connection: ${answer} (seed ${SEED})`);
    }
    c.close();
    const failed = a.emu.array().failed;
    if (failed) throw new Error(`the array stopped: ${failed.message} (seed ${SEED})`);
    await check(round++);
  }
  const s = a.emu.array().stats();
  t.log(`${sent} PDUs on ${connections} connections: ${s[A.STAT_ISCSI_REJECTS]} rejected, ${s[A.STAT_ISCSI_DROPPED]} dropped, `
    + `${s[A.STAT_ISCSI_LOGIN_FAILURES]} logins refused, ${s[A.STAT_ISCSI_DIGEST_ERRORS]} digest errors`);
  t.is(a.emu.array().failed, undefined);
  t.true(s[A.STAT_ISCSI_REJECTS] > 0 && s[A.STAT_ISCSI_DROPPED] > 0);
  // A fresh initiator still gets in.
  const fresh = await IscsiConn.connect(a.port);
  fresh.waitMs = GUARD_MS;
  t.teardown(() => fresh.close());
  await fresh.login(a.target);
  t.is((await fresh.command(BYSTANDER_LUN, Buffer.alloc(6))).status, 0);
});
