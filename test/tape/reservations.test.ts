// Persistent reservations on the library's devices (docs/tape.md, Reservations): the volumes' code
// (firmware/scsi/pr.ts) with the drive as its unit, through the real firmware. A backup server
// registers and reserves a drive; another initiator meets RESERVATION CONFLICT for what would write
// or move the tape, reads under Write Exclusive, and cannot reach the drive through EXTENDED COPY.
import test from 'ava';
import * as scsi from '../../lib/scsi';
import type { CommandTransport } from '../../lib/transport';
import { ScsiClient } from '../../host/client';
import { extendedCopyList, extendedCopyCdb, naaOf } from '../../host/backup';
import { tempDir, run, senseOf } from '../harness/env';
import { Emulator } from '../../harness';
import { startLibrary, libraryTopology, cdb, CHANGER, DRIVE0, DRIVE1, SLOT0, DT0 } from './env';

const CONFLICT = 0x18;
const WE = 1;
const EA = 3;
const REGISTER = 0; const RESERVE = 1; const RELEASE = 2; const PREEMPT = 4;

function prOutCdb(sa: number, type: number): Buffer { return Buffer.from([0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0]); }
function prOutList(key: bigint, saKey: bigint, aptpl = false): Buffer {
  const out = Buffer.alloc(24);
  out.writeBigUInt64BE(key, 0);
  out.writeBigUInt64BE(saKey, 8);
  out[20] = aptpl ? 1 : 0;
  return out;
}
async function pr(s: CommandTransport, lun: number, sa: number, type: number, key: bigint, saKey: bigint, aptpl = false): Promise<number> {
  return (await s.submit({ lun, cdb: prOutCdb(sa, type), dataOut: prOutList(key, saKey, aptpl) })).status;
}
async function readKeys(s: CommandTransport, lun: number): Promise<bigint[]> {
  const d = Buffer.from((await run(s, lun, Buffer.from([0x5E, 0, 0, 0, 0, 0, 0, 4, 0, 0]), { inLength: 1024 })).data);
  const keys: bigint[] = [];
  for (let at = 8; at < 8 + d.readUInt32BE(4); at += 8) keys.push(d.readBigUInt64BE(at));
  return keys;
}
async function readReservation(s: CommandTransport, lun: number): Promise<{ key: bigint; type: number } | null> {
  const d = Buffer.from((await run(s, lun, Buffer.from([0x5E, 1, 0, 0, 0, 0, 0, 0, 64, 0]), { inLength: 64 })).data);
  return d.readUInt32BE(4) === 0 ? null : { key: d.readBigUInt64BE(8), type: d[21] & 0xF };
}
const status = async (s: CommandTransport, lun: number, c: Buffer, out?: Buffer): Promise<number> =>
  (await s.submit({ lun, cdb: c, dataOut: out, dataInLength: out ? 0 : 4096 })).status;
async function position(s: CommandTransport): Promise<number> {
  return Buffer.from((await run(s, DRIVE0, cdb.readPosition(), { inLength: 20 })).data).readUInt32BE(4);
}
/** An EXTENDED COPY (sent to the command device, LUN 0) writing `data` to the drive as one variable record: embedded data (05h). */
async function copyToDrive(s: CommandTransport, naa: Buffer, data: Buffer, listId: number): Promise<{ status: number; sense?: scsi.Sense }> {
  const list = extendedCopyList({ listId, targets: [{ type: 'stream', naa, blockBytes: 0 }], segments: [{ type: 'embedded', dst: 0, data, streamLength: data.length }] });
  const r = await s.submit({ lun: 0, cdb: extendedCopyCdb(list.length), dataOut: list });
  return { status: r.status, sense: r.status === 2 ? scsi.decodeSense(r.sense) : undefined };
}

test('PERSISTENT RESERVE on a drive: the backup server registers and reserves it, another initiator meets RESERVATION CONFLICT for writes and tape motion, reads under Write Exclusive, cannot reach it through EXTENDED COPY; PREEMPT moves it, with 2Ah/05h for the one preempted', async (t) => {
  const emu = await startLibrary({ dir: tempDir('tape-pr') });
  t.teardown(() => emu.stop());
  const a = emu.connect(); // the backup server
  const b = emu.connect(); // another host on the fabric
  await run(a, CHANGER, cdb.moveMedium(SLOT0, DT0));
  await run(a, DRIVE0, cdb.load());
  t.is((await senseOf(run(b, DRIVE0, cdb.tur()))).asc, 0x28, 'b hears of a\'s LOAD first');
  t.is(await pr(a, DRIVE0, REGISTER, 0, 0n, 0xAn), 0);
  t.is(await pr(b, DRIVE0, REGISTER, 0, 0n, 0xBn), 0);
  t.deepEqual(await readKeys(b, DRIVE0), [0xAn, 0xBn]);
  t.deepEqual(await readKeys(a, DRIVE1), [], 'registrations are per drive');
  t.is(await pr(a, DRIVE0, RESERVE, WE, 0xAn, 0n), 0);
  t.deepEqual(await readReservation(b, DRIVE0), { key: 0xAn, type: WE });

  // The holder writes; the other initiator may read what does not move or change the tape, nothing else.
  await run(a, DRIVE0, cdb.write(10), { out: Buffer.alloc(10, 1) });
  const at = await position(a);
  t.is(await status(b, DRIVE0, cdb.write(10), Buffer.alloc(10)), CONFLICT, 'WRITE(6)');
  t.is(await status(b, DRIVE0, cdb.writeFilemarks(1)), CONFLICT, 'WRITE FILEMARKS');
  t.is(await status(b, DRIVE0, cdb.rewind()), CONFLICT, 'REWIND');
  t.is(await status(b, DRIVE0, cdb.space(1, -1)), CONFLICT, 'SPACE');
  t.is(await status(b, DRIVE0, cdb.unload()), CONFLICT, 'LOAD UNLOAD');
  t.is(await status(b, DRIVE0, cdb.modeSelect6(12), Buffer.alloc(12)), CONFLICT, 'MODE SELECT');
  t.is(await status(b, DRIVE0, cdb.reserve()), CONFLICT, 'RESERVE(6) beside a persistent reservation');
  t.is(await status(b, DRIVE0, cdb.readBlockLimits()), 0, 'READ BLOCK LIMITS: admitted');
  t.is(await status(b, DRIVE0, cdb.readPosition()), 0, 'READ POSITION: admitted');
  t.is(await status(b, DRIVE0, cdb.modeSense6()), 0, 'MODE SENSE: admitted');
  t.is(await status(b, DRIVE0, cdb.tur()), 0, 'TEST UNIT READY: admitted');
  t.is(await position(a), at, 'nothing b sent moved the tape');
  t.is(await status(a, DRIVE0, cdb.reserve()), CONFLICT, 'RESERVE(6) conflicts for the holder too (SPC-4 5.13.3)');

  // EXTENDED COPY acts for its initiator: b's copy to the drive is not reachable, nothing written; a's is.
  const naa = await naaOf(new ScsiClient(b), DRIVE0);
  const refused = await copyToDrive(b, naa, Buffer.alloc(16, 2), 7);
  t.deepEqual([refused.sense?.key, refused.sense?.asc, refused.sense?.ascq], [scsi.SenseKey.COPY_ABORTED, 0x0D, 0x02], 'COPY TARGET DEVICE NOT REACHABLE');
  t.is(await position(a), at, 'the refused copy wrote nothing');
  t.is((await copyToDrive(a, naa, Buffer.alloc(16, 3), 8)).status, 0, 'the holder\'s copy runs');
  t.is(await position(a), at + 1, 'and wrote its record');

  // Exclusive Access: b takes it over; a's registration goes and a hears it once.
  t.is(await pr(b, DRIVE0, PREEMPT, EA, 0xBn, 0xAn), 0);
  const ua = await a.submit({ lun: DRIVE0, cdb: cdb.tur() });
  t.deepEqual([ua.status, scsi.decodeSense(ua.sense).key, scsi.decodeSense(ua.sense).asc, scsi.decodeSense(ua.sense).ascq], [2, scsi.SenseKey.UNIT_ATTENTION, 0x2A, 0x05], 'REGISTRATIONS PREEMPTED');
  t.is(await status(a, DRIVE0, cdb.readPosition()), CONFLICT, 'Exclusive Access: no reads for a now');
  t.is(await status(a, DRIVE0, cdb.write(10), Buffer.alloc(10)), CONFLICT);
  t.is(await status(b, DRIVE0, cdb.write(10), Buffer.alloc(10)), 0, 'the new holder writes');
  t.is(await pr(b, DRIVE0, RELEASE, EA, 0xBn, 0n), 0);
  t.is(await readReservation(a, DRIVE0), null);
  t.is(await status(a, DRIVE0, cdb.rewind()), 0, 'released: a rewinds again');
});

test('a drive\'s persistent reservations are not kept over a restart: REPORT CAPABILITIES says PTPL_C 0, REGISTER with APTPL is INVALID FIELD IN PARAMETER LIST and registers nothing, and a reservation held at a restart is gone after it; it leaves the other drive and the changer alone; the changer takes its own', async (t) => {
  const dir = tempDir('tape-pr-restart');
  const topology = libraryTopology({ dir });
  let emu = await Emulator.start(topology, { debug: true });
  t.teardown(() => emu.stop());
  let a = emu.connect();
  let b = emu.connect();
  const caps = Buffer.from((await run(a, DRIVE0, Buffer.from([0x5E, 2, 0, 0, 0, 0, 0, 0, 8, 0]), { inLength: 8 })).data);
  t.deepEqual([caps[2] & 0x01, caps[2] & 0x10], [0, 0x10], 'PTPL_C 0 on a drive, CRH');
  const s = await a.submit({ lun: DRIVE0, cdb: prOutCdb(REGISTER, 0), dataOut: prOutList(0n, 0xAn, true) });
  const sense = scsi.decodeSense(s.sense);
  t.deepEqual([s.status, sense.key, sense.asc, sense.ascq, sense.field?.byte, sense.field?.bit], [2, scsi.SenseKey.ILLEGAL_REQUEST, 0x26, 0x00, 20, 0]);
  t.deepEqual(await readKeys(a, DRIVE0), [], 'nothing registered');
  t.is(await pr(a, DRIVE0, REGISTER, 0, 0n, 0xAn), 0);
  t.is(await pr(a, DRIVE0, RESERVE, EA, 0xAn, 0n), 0);
  t.is(await status(b, DRIVE0, cdb.readBlockLimits()), CONFLICT, 'Exclusive Access: no reads for b');
  t.is(await status(b, DRIVE1, cdb.readBlockLimits()), 0, 'drive 1 is not reserved');
  t.is(await status(b, DRIVE1, cdb.reserve()), 0, 'and b may RESERVE it');
  t.is(await status(b, CHANGER, cdb.readElementStatus()), 0, 'the changer is not reserved');
  // The changer the same way: a Write Exclusive reservation keeps b from moving cartridges, not from looking.
  t.is(await pr(a, CHANGER, REGISTER, 0, 0n, 0xAn), 0);
  t.is(await pr(a, CHANGER, RESERVE, WE, 0xAn, 0n), 0);
  t.is(await status(b, CHANGER, cdb.moveMedium(SLOT0 + 1, DT0 + 1)), CONFLICT, 'MOVE MEDIUM');
  t.is(await status(b, CHANGER, cdb.readElementStatus()), 0, 'READ ELEMENT STATUS');
  await emu.stop();
  emu = await Emulator.start(topology, { debug: true });
  a = emu.connect();
  b = emu.connect();
  t.deepEqual(await readKeys(a, DRIVE0), [], 'after the restart: no registration');
  t.is(await readReservation(b, DRIVE0), null, 'and no reservation');
  t.is(await status(b, DRIVE0, cdb.readBlockLimits()), 0);
});
