// Reservations through the real firmware: PERSISTENT RESERVE IN/OUT between two initiators (two
// sessions of one port: two I_T nexuses), the conflicts they make, the unit attentions they leave,
// RESERVE/RELEASE (6), and APTPL over a restart and a power failure (docs/scsi.md, Reservations).
import test from 'ava';
import * as scsi from '../../lib/scsi';
import type { CommandTransport } from '../../lib/transport';
import { startSmall, tempDir, createVolume, pattern } from './env';
import { send, cdb10 } from './sbc-env';

const LUN = 1;
const CONFLICT = 0x18;
const WE = 1;
const EA = 3;
const WE_RO = 5;

function prOut(sa: number, type: number, key: bigint, saKey: bigint, aptpl = false): { cdb: number[]; out: Buffer } {
  const out = Buffer.alloc(24);
  out.writeBigUInt64BE(key, 0);
  out.writeBigUInt64BE(saKey, 8);
  out[20] = aptpl ? 1 : 0;
  return { cdb: [0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0], out };
}
const REGISTER = 0; const RESERVE = 1; const RELEASE = 2; const CLEAR = 3; const PREEMPT = 4; const REGISTER_IGNORE = 6;

async function pr(s: CommandTransport, sa: number, type: number, key: bigint, saKey: bigint, aptpl = false) {
  const x = prOut(sa, type, key, saKey, aptpl);
  return (await send(s, x.cdb, { out: x.out })).r.status;
}
async function readKeys(s: CommandTransport): Promise<{ generation: number; keys: bigint[] }> {
  const d = Buffer.from((await send(s, [0x5E, 0, 0, 0, 0, 0, 0, 4, 0, 0], { inLength: 1024 })).r.data);
  const keys: bigint[] = [];
  for (let at = 8; at < 8 + d.readUInt32BE(4); at += 8) keys.push(d.readBigUInt64BE(at));
  return { generation: d.readUInt32BE(0), keys };
}
async function readReservation(s: CommandTransport): Promise<{ key: bigint; type: number } | null> {
  const d = Buffer.from((await send(s, [0x5E, 1, 0, 0, 0, 0, 0, 0, 64, 0], { inLength: 64 })).r.data);
  return d.readUInt32BE(4) === 0 ? null : { key: d.readBigUInt64BE(8), type: d[21] & 0xF };
}
const readOne = (s: CommandTransport) => send(s, cdb10(0x28, 0, 1), { inLength: 512 }).then((x) => x.r.status);
const writeOne = (s: CommandTransport) => send(s, cdb10(0x2A, 0, 1), { out: pattern(512, 1) }).then((x) => x.r.status);
const tur = (s: CommandTransport) => send(s, [0, 0, 0, 0, 0, 0]);

async function twoInitiators(t: any) {
  const dir = tempDir('pr');
  const o = { dir, media: [{ name: 'd0', kind: 'file', size: '64MiB' }] };
  const emu = await startSmall(o);
  t.teardown(() => emu.stop());
  const a = emu.connect();
  await createVolume(a, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, LUN);
  const b = emu.connect();
  return { emu, a, b, o };
}

test('PERSISTENT RESERVE between two initiators: register, reserve, conflicts by type, preempt with its unit attention, full status, clear', async (t) => {
  const { a, b } = await twoInitiators(t);
  t.is(await pr(a, REGISTER, 0, 0n, 0xAn), 0);
  t.is(await pr(b, REGISTER, 0, 0n, 0xBn), 0);
  t.is(await pr(b, REGISTER, 0, 0x99n, 0xCn), CONFLICT, 'REGISTER with a key that is not the registered one');
  t.deepEqual(await readKeys(a), { generation: 2, keys: [0xAn, 0xBn] });
  t.is(await pr(a, RESERVE, WE, 0xAn, 0n), 0);
  t.deepEqual(await readReservation(b), { key: 0xAn, type: WE });
  t.is(await readOne(b), 0, 'Write Exclusive: the other initiator reads');
  t.is(await writeOne(b), CONFLICT, 'and may not write');
  t.is(await writeOne(a), 0, 'the holder writes');
  t.is(await pr(b, RESERVE, EA, 0xBn, 0n), CONFLICT, 'a second reservation');
  t.is((await send(b, [0x15, 0x10, 0, 0, 0, 0])).r.status, CONFLICT, 'MODE SELECT from a non-holder');
  // B takes the reservation from A, as Exclusive Access; A's registration goes.
  t.is(await pr(b, PREEMPT, EA, 0xBn, 0xAn), 0);
  const ua = await tur(a);
  t.deepEqual([ua.r.status, ua.sense?.key, ua.sense?.asc, ua.sense?.ascq], [2, scsi.SenseKey.UNIT_ATTENTION, 0x2A, 0x05], 'REGISTRATIONS PREEMPTED, once');
  t.is(await readOne(a), CONFLICT, 'Exclusive Access: no reads for A now');
  t.deepEqual((await readKeys(b)).keys, [0xBn]);
  const full = Buffer.from((await send(b, [0x5E, 3, 0, 0, 0, 0, 0, 4, 0, 0], { inLength: 1024 })).r.data);
  t.is(full.readUInt32BE(4), 24 + full.readUInt32BE(8 + 20), 'one descriptor');
  t.deepEqual([full.readBigUInt64BE(8), full[8 + 12] & 1, full[8 + 13]], [0xBn, 1, EA], 'B holds it');
  const id = full.subarray(8 + 24 + 4, 8 + 24 + 4 + full.readUInt16BE(8 + 24 + 2)).toString('latin1');
  t.regex(id, /^inproc:.*,i,0x0{12}\0/, `TransportID ${JSON.stringify(id)}`);
  t.is(await pr(a, CLEAR, 0, 0xAn, 0n), CONFLICT, 'CLEAR from a nexus that is not registered');
  t.is(await pr(b, CLEAR, 0, 0xBn, 0n), 0);
  t.is(await readReservation(a), null);
  t.deepEqual((await readKeys(a)).keys, []);
  t.is(await writeOne(a), 0);
});

test('registrants-only reservations admit every registrant; releasing one tells the others (RESERVATIONS RELEASED)', async (t) => {
  const { a, b } = await twoInitiators(t);
  await pr(a, REGISTER_IGNORE, 0, 0n, 1n);
  await pr(b, REGISTER_IGNORE, 0, 0n, 2n);
  t.is(await pr(a, RESERVE, WE_RO, 1n, 0n), 0);
  t.is(await writeOne(b), 0, 'a registrant writes under WE registrants only');
  t.is(await pr(a, RELEASE, WE, 1n, 0n), 2, 'RELEASE with another type: INVALID RELEASE OF PERSISTENT RESERVATION');
  t.is(await pr(a, RELEASE, WE_RO, 1n, 0n), 0);
  const ua = await tur(b);
  t.deepEqual([ua.sense?.asc, ua.sense?.ascq], [0x2A, 0x04]);
  t.is((await tur(a)).r.status, 0, 'not the nexus that released it');
});

test('RESERVE (6): the other initiator gets RESERVATION CONFLICT (even TEST UNIT READY), its RELEASE does nothing; it ends with the nexus', async (t) => {
  const { a, b } = await twoInitiators(t);
  t.is((await send(a, [0x16, 0, 0, 0, 0, 0])).r.status, 0);
  t.is((await tur(b)).r.status, CONFLICT);
  t.is((await send(b, [0x16, 0, 0, 0, 0, 0])).r.status, CONFLICT);
  t.is((await send(b, [0x17, 0, 0, 0, 0, 0])).r.status, 0, 'RELEASE by another: GOOD, nothing released');
  t.is((await tur(b)).r.status, CONFLICT);
  t.is((await send(a, [0x12, 0, 0, 0, 96, 0], { inLength: 96 })).r.status, 0);
  t.is(await pr(b, REGISTER, 0, 0n, 5n), CONFLICT, 'PERSISTENT RESERVE OUT under a RESERVE (6) of another');
  await a.close();
  // The firmware sees the session close on a later poll: ask until it has (bounded).
  let st = (await tur(b)).r.status;
  for (let i = 0; i < 500 && st === CONFLICT; i++) { await new Promise((r) => setTimeout(r, 2)); st = (await tur(b)).r.status; }
  t.is(st, 0, 'the holder\'s session closed: released');
  t.is((await send(b, [0x16, 0, 0, 0, 0, 0])).r.status, 0);
});

test('APTPL=1 registrations and the reservation survive a restart with another geometry (a larger cache, a medium added): the table has a fixed place', async (t) => {
  const dir = tempDir('aptpl-geometry');
  let emu = await startSmall({ dir, media: [{ name: 'd0', kind: 'file', size: '64MiB' }] });
  const a = emu.connect();
  await createVolume(a, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, LUN);
  await pr(a, REGISTER, 0, 0n, 0x1111n, true);
  t.is(await pr(a, RESERVE, EA, 0x1111n, 0n), 0);
  await emu.stop('graceful');
  emu = await startSmall({ dir, cache: { size: '16MiB' }, media: [{ name: 'd0', kind: 'file', size: '64MiB' }, { name: 'd1', kind: 'file', size: '64MiB' }] });
  t.teardown(() => emu.stop());
  const a2 = emu.connect();
  t.deepEqual((await readKeys(a2)).keys, [0x1111n]);
  t.deepEqual(await readReservation(a2), { key: 0x1111n, type: EA });
});

for (const how of ['graceful', 'powerFail'] as const) {
  test(`APTPL=1 keeps registrations and the reservation over a restart (${how}); APTPL=0 does not`, async (t) => {
    const dir = tempDir('aptpl');
    const o = { dir, media: [{ name: 'd0', kind: 'file', size: '64MiB' }] };
    let emu = await startSmall(o);
    const a = emu.connect();
    await createVolume(a, { name: 'v', blocks: 8192, blockSize: 512, placement: 'linear' }, LUN);
    const b = emu.connect();
    await pr(a, REGISTER, 0, 0n, 0x1111n, true);
    await pr(b, REGISTER, 0, 0n, 0x2222n, true);
    t.is(await pr(a, RESERVE, EA, 0x1111n, 0n), 0);
    await emu.stop(how);
    emu = await startSmall(o);
    const a2 = emu.connect(); // the same slot of the same port: the same I_T nexus
    const b2 = emu.connect();
    t.deepEqual((await readKeys(a2)).keys, [0x1111n, 0x2222n], 'both registrations');
    t.deepEqual(await readReservation(a2), { key: 0x1111n, type: EA });
    t.is(await readOne(b2), CONFLICT, 'still Exclusive Access for the other');
    t.is(await writeOne(a2), 0, 'the holder writes');
    // The last REGISTER's APTPL=0 applies to the whole unit: after the next restart nothing is left.
    t.is(await pr(b2, REGISTER, 0, 0x2222n, 0x3333n, false), 0);
    await emu.stop(how);
    emu = await startSmall(o);
    t.teardown(() => emu.stop());
    const a3 = emu.connect();
    t.deepEqual((await readKeys(a3)).keys, []);
    t.is(await readReservation(a3), null);
    t.is(await readOne(emu.connect()), 0);
  });
}
