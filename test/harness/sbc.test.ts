// The SBC-4/SPC-5 command set through the real firmware (in-process queue ports): what docs/scsi.md
// promises of READ/WRITE (6)/(12), VERIFY, WRITE AND VERIFY, PRE-FETCH, WRITE SAME, COMPARE AND
// WRITE, ORWRITE, GET LBA STATUS, REPORT SUPPORTED OPERATION CODES, MODE SELECT, START STOP UNIT
// and task attributes; reservations have their own file (reservations.test.ts).
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as scsi from '../../lib/scsi';
import type { CommandTransport } from '../../lib/transport';
import type { MediumStore, IoDone } from '../../hal/media/store';
import type { Emulator } from '../../harness';
import { startSmall, tempDir, createVolume, write, read, pattern } from './env';
import { send, Sent, be, cdb10, cdb12, cdb16 } from './sbc-env';

const LUN = 1;
const BLOCKS = 16384;

const cdb6 = (op: number, lba: number, blocks: number): number[] => [op, (lba >> 16) & 0x1F, (lba >> 8) & 0xFF, lba & 0xFF, blocks & 0xFF, 0];
const caw = (lba: number, blocks: number, b1 = 0): number[] => [0x89, b1, ...be(lba, 8), 0, 0, 0, blocks, 0, 0];

async function volume(t: any, o: { cache?: object; media?: object[]; mode?: 'deterministic' | 'realtime'; ports?: object[] } = {}) {
  const dir = tempDir('sbc');
  const emu = await startSmall({ dir, ...o });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'striped' }, LUN);
  return { emu, s, dir };
}

/** Blocks of a volume that starts at chunk 1 of a medium image (chunk 0 holds the label), read from the file itself. */
function onImage(image: string, lba: number, n: number): Buffer {
  const fd = fs.openSync(image, 'r');
  const b = Buffer.alloc(n * 512);
  fs.readSync(fd, b, 0, b.length, 65536 + lba * 512);
  fs.closeSync(fd);
  return b;
}

function illegal(t: any, x: Sent, asc: number, field?: { byte: number; inCdb?: boolean }, what = ''): void {
  t.is(x.r.status, 2, `${what}: CHECK CONDITION`);
  t.deepEqual([x.sense?.key, x.sense?.asc], [scsi.SenseKey.ILLEGAL_REQUEST, asc], `${what}: ${x.sense?.text}`);
  if (field) t.like(x.sense?.field, { inCdb: field.inCdb ?? true, byte: field.byte }, `${what}: field pointer`);
}

test('READ/WRITE (6) and (12) move the same blocks as (10); 0 blocks in a 6-byte CDB is 256', async (t) => {
  const { s } = await volume(t);
  const data = pattern(256 * 512, 3);
  t.is((await send(s, cdb6(0x0A, 100, 0), { out: data })).r.status, 0, 'WRITE (6) of 256 blocks');
  t.true((await read(s, LUN, 100, 256)).equals(data));
  const d12 = pattern(8 * 512, 4);
  t.is((await send(s, cdb12(0xAA, 5000, 8), { out: d12 })).r.status, 0);
  const r12 = await send(s, cdb12(0xA8, 5000, 8), { inLength: 8 * 512 });
  t.true(Buffer.from(r12.r.data).equals(d12));
  const r6 = await send(s, cdb6(0x08, 5000, 8), { inLength: 8 * 512 });
  t.true(Buffer.from(r6.r.data).equals(d12));
  illegal(t, await send(s, cdb12(0xA8, BLOCKS - 1, 2), { inLength: 1024 }), 0x21, undefined, 'READ (12) past the end');
  illegal(t, await send(s, cdb12(0xA8, 0, 1, 0x20), { inLength: 512 }), 0x24, { byte: 1 }, 'READ (12) RDPROTECT');
});

test('VERIFY: BYTCHK=1 compares with the data-out (MISCOMPARE at the offset of the first difference); BYTCHK=0 reads; 11b compares each block with one', async (t) => {
  const { s } = await volume(t);
  const data = pattern(64 * 512, 9);
  await write(s, LUN, 200, data);
  t.is((await send(s, cdb10(0x2F, 200, 64, 0x02), { out: data })).r.status, 0, 'VERIFY (10) BYTCHK=1, equal');
  const bad = Buffer.from(data);
  bad[30000] ^= 0x5A;
  const m = await send(s, cdb16(0x8F, 200, 64, 0x02), { out: bad });
  t.is(m.r.status, 2);
  t.deepEqual([m.sense?.key, m.sense?.asc, m.sense?.info], [scsi.SenseKey.MISCOMPARE, 0x1D, 30000]);
  t.is((await send(s, cdb12(0xAF, 200, 64, 0x00))).r.status, 0, 'VERIFY (12) BYTCHK=0: read, no data-out');
  const same = Buffer.alloc(512, 0x33);
  await write(s, LUN, 300, Buffer.alloc(8 * 512, 0x33));
  t.is((await send(s, cdb10(0x2F, 300, 8, 0x06), { out: same })).r.status, 0, 'BYTCHK=11b: every block equals the one');
  illegal(t, await send(s, cdb10(0x2F, 300, 8, 0x04), { out: same }), 0x24, { byte: 1 }, 'BYTCHK=10b');
  illegal(t, await send(s, cdb10(0x2F, BLOCKS, 1, 0x00)), 0x21, undefined, 'VERIFY past the end');
});

test('WRITE AND VERIFY and PRE-FETCH: the write is on the medium at GOOD; PRE-FETCH stages and answers GOOD', async (t) => {
  const { dir, s } = await volume(t, { cache: { destageAgeMs: 60000, destageIntervalMs: 60000 } });
  const onMedium = (lba: number, n: number) => onImage(path.join(dir, 'a0', 'd0.img'), lba, n); // striped: chunk 0 is d0's first
  const data = pattern(16 * 512, 5);
  await write(s, LUN, 32, data);
  t.false(onMedium(32, 16).equals(data), 'a WRITE is GOOD from the write-back cache');
  t.is((await send(s, cdb10(0x2E, 64, 16, 0x02), { out: data })).r.status, 0);
  t.true(onMedium(64, 16).equals(data), 'WRITE AND VERIFY is GOOD once its blocks are on the medium');
  t.is((await send(s, cdb10(0x34, 0, 256))).r.status, 0, 'PRE-FETCH (10)');
  t.is((await send(s, cdb16(0x90, 0, 0, 0x02))).r.status, 0, 'PRE-FETCH (16) to the end, IMMED');
  illegal(t, await send(s, cdb10(0x34, BLOCKS, 1)), 0x21, undefined, 'PRE-FETCH past the end');
});

test('WRITE SAME: one block repeated over the range (also beyond one buffer window), NDOB writes zeros, UNMAP refused on a fully provisioned volume', async (t) => {
  const { s } = await volume(t);
  const block = pattern(512, 11);
  t.is((await send(s, cdb16(0x93, 1000, 4096), { out: block })).r.status, 0, 'WRITE SAME (16) of 2 MiB');
  const back = await read(s, LUN, 1000, 4096);
  for (let i = 0; i < 4096; i++) if (!back.subarray(i * 512, (i + 1) * 512).equals(block)) { t.fail(`block ${1000 + i} differs`); return; }
  t.is((await send(s, cdb10(0x41, 6000, 8), { out: block })).r.status, 0, 'WRITE SAME (10)');
  t.true((await read(s, LUN, 6000, 8)).equals(Buffer.concat(Array(8).fill(block))));
  t.is((await send(s, cdb16(0x93, 6000, 4, 0x01))).r.status, 0, 'NDOB: no data-out');
  t.true((await read(s, LUN, 6000, 4)).equals(Buffer.alloc(2048)));
  t.true((await read(s, LUN, 6004, 4)).equals(Buffer.concat(Array(4).fill(block))), 'the blocks after the range are untouched');
  illegal(t, await send(s, cdb10(0x41, 0, 1, 0x08), { out: block }), 0x24, { byte: 1 }, 'UNMAP bit');
  illegal(t, await send(s, cdb10(0x41, BLOCKS - 1, 2), { out: block }), 0x21, undefined, 'past the end');
  const all = await send(s, cdb16(0x93, BLOCKS - 16, 0), { out: block });
  t.is(all.r.status, 0, '0 blocks: to the end of the volume');
  t.true((await read(s, LUN, BLOCKS - 16, 16)).equals(Buffer.concat(Array(16).fill(block))));
});

test('COMPARE AND WRITE: writes when equal; MISCOMPARE with the offset and nothing written when not; a data-out of another length is refused', async (t) => {
  const { s } = await volume(t);
  const a = Buffer.alloc(8 * 512, 0x41);
  const b = Buffer.alloc(8 * 512, 0x42);
  await write(s, LUN, 130, a); // spans two cache slots (slot 1 starts at block 128)
  t.is((await send(s, caw(126, 8), { out: Buffer.concat([Buffer.concat([Buffer.alloc(1024), a.subarray(0, 3072)]), b]) })).r.status, 2,
    'blocks 126-127 are zeros, not A');
  t.is((await send(s, caw(130, 8), { out: Buffer.concat([a, b]) })).r.status, 0);
  t.true((await read(s, LUN, 130, 8)).equals(b));
  const wrong = Buffer.from(b);
  wrong[4096 - 27] = 0x43;
  const m = await send(s, caw(130, 8), { out: Buffer.concat([wrong, a]) });
  t.deepEqual([m.sense?.key, m.sense?.asc, m.sense?.info], [scsi.SenseKey.MISCOMPARE, 0x1D, 4096 - 27]);
  t.true((await read(s, LUN, 130, 8)).equals(b), 'nothing written on a miscompare');
  illegal(t, await send(s, caw(130, 8), { out: b }), 0x24, { byte: 13 }, 'data-out of N blocks, not 2N');
  illegal(t, await send(s, caw(130, 129), { out: Buffer.alloc(129 * 1024) }), 0x24, { byte: 13 }, 'beyond MAXIMUM COMPARE AND WRITE LENGTH');
  illegal(t, await send(s, caw(BLOCKS, 1), { out: Buffer.alloc(1024) }), 0x21, undefined, 'past the end');
});

test('COMPARE AND WRITE races: increments of one counter from 4 sessions on 2 channel IOPs never lose one', async (t) => {
  const dir = tempDir('caw-race');
  const emu = await startSmall({ dir, channels: 2, ports: [
    { name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 0, transport: 'inproc' }, { name: 'q2', iop: 1, transport: 'inproc' },
  ] });
  t.teardown(() => emu.stop());
  const s0 = emu.connect(undefined, 'q0');
  await createVolume(s0, { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'striped' }, LUN);
  const sessions = [s0, emu.connect(undefined, 'q1'), emu.connect(undefined, 'q2'), emu.connect(undefined, 'q2')];
  const block = (n: number) => { const b = Buffer.alloc(512); b.writeUInt32BE(n, 0); return b; };
  await write(s0, LUN, 127, Buffer.concat([block(0), block(0)])); // the counter straddles slots 0 and 1
  const counter = (b: Buffer) => b.readUInt32BE(0);
  let done = 0;
  let misses = 0;
  await Promise.all(sessions.map(async (s) => {
    for (let i = 0; i < 25; i++) {
      for (;;) {
        const now = await read(s, LUN, 127, 2);
        const n = counter(now);
        const x = await send(s, caw(127, 2), { out: Buffer.concat([now, block(n + 1), block(n + 1)]) });
        if (x.r.status === 0) { done++; break; }
        t.is(x.sense?.key, scsi.SenseKey.MISCOMPARE, 'the only refusal is a miscompare: another session got there first');
        misses++;
      }
    }
  }));
  const end = await read(s0, LUN, 127, 2);
  t.is(counter(end), 100, `every acknowledged increment counted (${misses} miscompares retried)`);
  t.is(end.readUInt32BE(512), 100, 'both blocks written together');
  t.is(done, 100);
});

test('ORWRITE ORs the data-out into the blocks; GET LBA STATUS reports the volume mapped to its end', async (t) => {
  const { s } = await volume(t);
  await write(s, LUN, 10, Buffer.alloc(1024, 0x0F));
  t.is((await send(s, cdb16(0x8B, 10, 2), { out: Buffer.alloc(1024, 0xF0) })).r.status, 0);
  t.true((await read(s, LUN, 10, 2)).equals(Buffer.alloc(1024, 0xFF)));
  const g = await send(s, [0x9E, 0x12, ...be(100, 8), ...be(24, 4), 0, 0], { inLength: 24 });
  t.is(g.r.status, 0);
  const d = Buffer.from(g.r.data);
  t.deepEqual([d.readUInt32BE(0), Number(d.readBigUInt64BE(8)), d.readUInt32BE(16), d[20] & 0xF], [20, 100, BLOCKS - 100, 0]);
  illegal(t, await send(s, [0x9E, 0x12, ...be(BLOCKS, 8), ...be(24, 4), 0, 0], { inLength: 24 }), 0x21, undefined, 'GET LBA STATUS past the end');
});

/** Every opcode and service action REPORT SUPPORTED OPERATION CODES lists, as a map "op" or "op/sa" -> CDB length. */
async function listed(s: CommandTransport, lun: number): Promise<Map<string, number>> {
  const x = await send(s, [0xA3, 0x0C, 0x00, 0, 0, 0, ...be(8192, 4), 0, 0], { inLength: 8192, lun });
  const d = Buffer.from(x.r.data);
  const out = new Map<string, number>();
  for (let at = 4; at < 4 + d.readUInt32BE(0); at += 8) {
    out.set((d[at + 5] & 1) ? `${d[at]}/${d.readUInt16BE(at + 2)}` : `${d[at]}`, d.readUInt16BE(at + 6));
  }
  return out;
}

test('REPORT SUPPORTED OPERATION CODES lists exactly what the dispatch runs: every listed command is not refused as unknown, every other opcode is', async (t) => {
  const { s } = await volume(t);
  const ops = await listed(s, LUN);
  t.true(ops.size > 40, `${ops.size} commands`);
  for (let op = 0; op < 256; op++) {
    if (op === 0x1B) continue; // START STOP UNIT would stop the volume: its own test
    const withSa = [...ops.keys()].filter((k) => k.startsWith(`${op}/`));
    const cdbFor = (sa: number) => { const c = Buffer.alloc(16); c[0] = op; c[1] = sa; return c; };
    const tries = withSa.length > 0 ? withSa.map((k) => Number(k.split('/')[1])) : [0];
    for (const sa of tries) {
      const x = await send(s, cdbFor(sa), { inLength: 0 });
      const unknown = x.r.status === 2 && x.sense?.key === scsi.SenseKey.ILLEGAL_REQUEST && x.sense.asc === 0x20;
      t.is(unknown, !ops.has(`${op}`) && withSa.length === 0, `opcode ${op.toString(16)}h/${sa.toString(16)}h: ${x.sense?.text ?? 'GOOD'}`);
    }
  }
  const one = await send(s, [0xA3, 0x0C, 0x81, 0x28, 0, 0, ...be(512, 4), 0, 0], { inLength: 512 }); // one command, RCTD
  const d = Buffer.from(one.r.data);
  t.deepEqual([d[1], d.readUInt16BE(2), d[4], d[5] & 0x18], [0x83, 10, 0x28, 0x18], 'READ (10): supported, CTDP, DPO and FUA in the usage data');
  t.is(d.readUInt16BE(14), 0x0A, 'timeouts descriptor');
  const tmf = await send(s, [0xA3, 0x0D, 0, 0, 0, 0, ...be(4, 4), 0, 0], { inLength: 4 });
  t.is(Buffer.from(tmf.r.data)[0], 0xDA, 'ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET RESET');
  const dev = await listed(s, 0);
  t.true(dev.has(`${0xC1}`) && !dev.has(`${0x28}`), 'the command device lists its own commands');
});

test('NACA and the ACA task attribute are refused: INVALID FIELD IN CDB at the control byte', async (t) => {
  const { s } = await volume(t);
  illegal(t, await send(s, [0x00, 0, 0, 0, 0, 0x04]), 0x24, { byte: 5 }, 'TEST UNIT READY with NACA');
  illegal(t, await send(s, [...cdb10(0x28, 0, 1).slice(0, 9), 0x04], { inLength: 512 }), 0x24, { byte: 9 }, 'READ (10) with NACA');
});

function modeSelectList(wce: boolean): Buffer {
  const l = Buffer.alloc(4 + 20);
  l[4] = 0x08; l[5] = 0x12; l[6] = wce ? 0x04 : 0x00;
  return l;
}
const modeSelect6 = (len: number, save: boolean): number[] => [0x15, 0x10 | (save ? 1 : 0), 0, 0, len, 0];
const modeSense6 = (pc: number): number[] => [0x1A, 0x08, (pc << 6) | 0x08, 0, 255, 0];

/** Writes held until flush (a host page cache): what a power loss leaves is what was flushed. */
class PageCacheStore implements MediumStore {
  readonly threaded = false;
  pending = new Map<number, Uint8Array>();
  constructor(private readonly inner: MediumStore) {}
  get description(): string { return `page cache over ${this.inner.description}`; }
  read(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    this.inner.read(mem, addr, offset, length, (e) => {
      for (let o = 0; o < length && !e; o += 512) { const p = this.pending.get((offset + o) / 512); if (p) mem.set(p, addr + o); }
      done(e);
    });
  }
  write(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    for (let o = 0; o < length; o += 512) this.pending.set((offset + o) / 512, mem.slice(addr + o, addr + o + 512));
    done();
  }
  flush(done: IoDone): void {
    const writes = [...this.pending];
    this.pending.clear();
    let left = writes.length + 1;
    const one = (e?: NodeJS.ErrnoException | null) => { if (e) { left = -1; done(e); return; } if (--left === 0) this.inner.flush(done); };
    for (const [sector, bytes] of writes) this.inner.write(bytes, 0, sector * 512, 512, one);
    one();
  }
  close(): void { this.pending.clear(); this.inner.close(); }
}

test('MODE SELECT: WCE=0 makes the volume write-through (each write flushed on the medium at GOOD); saved with SP=1 over a restart; other sessions get MODE PARAMETERS CHANGED', async (t) => {
  const dir = tempDir('wce');
  const o = { dir, media: [{ name: 'd0', kind: 'file', size: '64MiB' }], cache: { destageAgeMs: 60000, destageIntervalMs: 60000 },
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }, { name: 'q1', iop: 0, transport: 'inproc' }] };
  let emu: Emulator = await startSmall(o);
  t.teardown(() => emu.stop());
  let s = emu.connect(undefined, 'q0');
  const other = emu.connect(undefined, 'q1');
  await createVolume(s, { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'linear' }, LUN);
  const onMedium = (lba: number, n: number) => onImage(path.join(dir, 'a0', 'd0.img'), lba, n);
  const stores = emu.array().media.map((m) => { const p = new PageCacheStore(m.store); (m as unknown as { store: MediumStore }).store = p; return p; });
  const wb = pattern(4096, 1);
  await write(s, LUN, 0, wb);
  t.false(onMedium(0, 8).equals(wb), 'WCE=1 (write-back): GOOD before the medium has it');
  t.is((await send(other, [0, 0, 0, 0, 0, 0])).r.status, 0, 'no unit attention yet');
  t.is((await send(s, modeSelect6(24, true), { out: modeSelectList(false) })).r.status, 0, 'MODE SELECT WCE=0, saved');
  const ua = await send(other, [0, 0, 0, 0, 0, 0]);
  t.deepEqual([ua.sense?.key, ua.sense?.asc, ua.sense?.ascq], [scsi.SenseKey.UNIT_ATTENTION, 0x2A, 0x01], 'the other nexus: MODE PARAMETERS CHANGED');
  t.is((await send(other, [0, 0, 0, 0, 0, 0])).r.status, 0, 'reported once');
  const wt = pattern(4096, 2);
  await write(s, LUN, 64, wt);
  t.true(onMedium(64, 8).equals(wt), 'WCE=0: the data is on the medium image, flushed, at GOOD');
  t.is(stores[0].pending.size, 0, 'nothing of it is held unflushed');
  const cur = Buffer.from((await send(s, modeSense6(0), { inLength: 255 })).r.data);
  t.is(cur[4 + 2] & 0x04, 0, 'MODE SENSE current: WCE=0');
  const chg = Buffer.from((await send(s, modeSense6(1), { inLength: 255 })).r.data);
  t.is(chg[4 + 2] & 0x04, 0x04, 'changeable: WCE');
  const bad = modeSelectList(false);
  bad[4 + 2] |= 0x01; // RCD: not changeable
  illegal(t, await send(s, modeSelect6(24, false), { out: bad }), 0x26, { byte: 6, inCdb: false }, 'a field that is not changeable');
  await emu.stop('graceful');
  emu = await startSmall(o);
  s = emu.connect(undefined, 'q0');
  const after = Buffer.from((await send(s, modeSense6(0), { inLength: 255 })).r.data);
  t.is(after[4 + 2] & 0x04, 0, 'the saved WCE=0 is current after a restart');
  const saved = Buffer.from((await send(s, modeSense6(3), { inLength: 255 })).r.data);
  t.is(saved[4 + 2] & 0x04, 0, 'MODE SENSE saved values');
});

test('START STOP UNIT: a stopped volume is NOT READY, INITIALIZING COMMAND REQUIRED until started; LOEJ refused', async (t) => {
  const { s } = await volume(t);
  t.is((await send(s, [0x1B, 0, 0, 0, 0x00, 0])).r.status, 0, 'stop');
  const r = await send(s, cdb10(0x28, 0, 1), { inLength: 512 });
  t.deepEqual([r.sense?.key, r.sense?.asc, r.sense?.ascq], [scsi.SenseKey.NOT_READY, 0x04, 0x02]);
  t.is((await send(s, [0x12, 0, 0, 0, 96, 0], { inLength: 96 })).r.status, 0, 'INQUIRY still answers');
  t.is((await send(s, [0x1B, 0, 0, 0, 0x01, 0])).r.status, 0, 'start');
  t.is((await send(s, cdb10(0x28, 0, 1), { inLength: 512 })).r.status, 0);
  illegal(t, await send(s, [0x1B, 0, 0, 0, 0x02, 0]), 0x24, { byte: 4 }, 'LOEJ');
});

/** Reads held until release(): a command that stages from the medium stays in flight as long as the test wants. */
class GateStore implements MediumStore {
  readonly threaded = false;
  held: (() => void)[] = [];
  open = false;
  constructor(private readonly inner: MediumStore) {}
  get description(): string { return `gate over ${this.inner.description}`; }
  read(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    if (this.open) this.inner.read(mem, addr, offset, length, done);
    else this.held.push(() => this.inner.read(mem, addr, offset, length, done));
  }
  write(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void { this.inner.write(mem, addr, offset, length, done); }
  flush(done: IoDone): void { this.inner.flush(done); }
  release(): void { this.open = true; const h = this.held; this.held = []; for (const f of h) f(); }
  close(): void { this.inner.close(); }
}

test('task attributes: ORDERED waits for the older READ, SIMPLE waits for the ORDERED, HEAD OF QUEUE goes first', async (t) => {
  const dir = tempDir('ordered');
  const o = { dir, media: [{ name: 'd0', kind: 'file', size: '64MiB' }] };
  let emu = await startSmall(o);
  let s = emu.connect();
  await createVolume(s, { name: 'v', blocks: BLOCKS, blockSize: 512, placement: 'linear' }, LUN);
  const data = pattern(65536, 8);
  await write(s, LUN, 0, data);
  await emu.stop('graceful'); // destaged: after the restart the read must stage from the medium
  emu = await startSmall(o);
  t.teardown(() => emu.stop());
  s = emu.connect();
  await send(s, [0, 0, 0, 0, 0, 0]);
  const gate = new GateStore(emu.array().media[0].store);
  (emu.array().media[0] as unknown as { store: MediumStore }).store = gate;
  const order: string[] = [];
  const track = (name: string, p: Promise<Sent>) => p.then((x) => { order.push(name); return x; });
  const readCmd = track('read', send(s, cdb10(0x28, 0, 128), { inLength: 65536 }));
  const ordered = track('ordered', send(s, [0, 0, 0, 0, 0, 0], { attr: 'ordered' }));
  const simple = track('simple', send(s, [0, 0, 0, 0, 0, 0], { attr: 'simple' }));
  const head = await track('head', send(s, [0, 0, 0, 0, 0, 0], { attr: 'headOfQueue' }));
  t.is(head.r.status, 0);
  t.deepEqual(order, ['head'], 'HEAD OF QUEUE answered while the READ, the ORDERED and the SIMPLE after it wait');
  for (let i = 0; i < 100000 && gate.held.length === 0; i++) await new Promise((r) => setImmediate(r)); // the stage reaches the medium
  gate.release();
  const [r] = await Promise.all([readCmd, ordered, simple]);
  t.true(Buffer.from(r.r.data).equals(data));
  t.deepEqual(order, ['head', 'read', 'ordered', 'simple']);
});
