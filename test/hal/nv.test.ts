// The NV binding (hal/nv.ts, docs/hal.md "Non-volatile memory"): entries captured at the doorbell,
// group commit through the writer thread, completions in ring order to the IOP named in each
// entry, the journal of nv.sync, and power cuts. The entries here are queued by the test as an
// IOP would queue them, on a booted array whose driver is idle (deterministic mode), so each step
// of the binding can be taken and checked in turn.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import { EntryRing } from '../../hal/ring';
import { NvWriter, replayJournal, RECORD } from '../../hal/nv-writer';
import type { ArrayController } from '../../harness/array';
import { tempDir, startSmall, pattern } from '../harness/env';

interface Queued { iop: number; id: number; addr: number; length: number; inline?: Uint8Array; flags?: number }

function sq(a: ArrayController): EntryRing { return new EntryRing(a.mem, a.mem.u32(A.MAP_ADDR + A.MAP_NV_SQ)); }
function cq(a: ArrayController, iop: number): EntryRing {
  return new EntryRing(a.mem, a.mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + iop * A.MAP_IOP_BYTES + A.MIOP_NV_CQ));
}

/** Queues an entry on the NV SQ as an IOP's nvPersistRange / nvPersistInline would. */
function queue(a: ArrayController, q: Queued): void {
  const ring = sq(a);
  const e = ring.reserve();
  if (e < 0) throw new Error('NV SQ full');
  const m = a.mem;
  m.u8.fill(0, e, e + A.NSQ_BYTES);
  m.setU32(e + A.NSQ_ID, q.id);
  m.setU8(e + A.NSQ_IOP, q.iop);
  m.setU8(e + A.NSQ_OP, q.inline ? A.NOP_INLINE : A.NOP_RANGE);
  m.setU16(e + A.NSQ_FLAGS, q.flags ?? 0);
  m.setU32(e + A.NSQ_ADDR, q.addr);
  m.setU32(e + A.NSQ_LENGTH, q.length);
  if (q.inline) m.u8.set(q.inline, e + A.NSQ_INLINE);
  ring.publish();
}

/** Takes every completion waiting on an IOP's NV CQ: [id, status]. */
function completions(a: ArrayController, iop: number): Array<[number, number]> {
  const ring = cq(a, iop);
  const out: Array<[number, number]> = [];
  for (let e = ring.peek(); e >= 0; e = ring.peek()) {
    out.push([a.mem.u32(e + A.NCQ_ID), a.mem.u32(e + A.NCQ_STATUS)]);
    ring.release();
  }
  return out;
}

/**
 * An array that has booted and gone idle; `spare` is the last 64 KiB of the NV region. The test
 * writes there as it likes (whatever the firmware keeps there is lost), so the array is stopped as
 * by a power failure, with no round run after the test.
 */
async function idleArray(label: string, sync: boolean) {
  const dir = tempDir(label);
  const emu = await startSmall({ dir, mode: 'deterministic', nv: { sync } });
  await emu.settle();
  const a = emu.array();
  const nvFile = path.join(dir, 'a0', 'nvram.bin');
  const spare = a.nv.base + a.nv.bytes - A.SLOT_BYTES;
  const fileAt = (addr: number, n: number) => fs.readFileSync(nvFile).subarray(addr - a.nv.base, addr - a.nv.base + n);
  return { emu, a, dir, nvFile, spare, fileAt };
}

for (const sync of [false, true]) {
  test(`a range entry writes the bytes it named at the doorbell, not what the memory holds later (nv.sync ${sync})`, async (t) => {
    const { emu, a, spare, fileAt } = await idleArray('nv-capture', sync);
    t.teardown(() => emu.stop('powerFail'));
    const before = pattern(4096, 1);
    const after = pattern(4096, 2);
    a.mem.u8.set(before, spare);
    queue(a, { iop: 0, id: 0x0000_0701, addr: spare, length: 4096 });
    t.is(a.nv.capture(), 1, 'the doorbell takes the entry');
    // The firmware may now overwrite the slot (a newer write, or the slot given to another
    // volume) before the write reaches the file: the file must get the bytes of the doorbell.
    a.mem.u8.set(after, spare);
    t.true(a.nv.submit());
    await a.nv.idle();
    t.deepEqual(Buffer.from(fileAt(spare, 4096)), before);
    t.is(a.nv.reap(), 1);
    t.deepEqual(completions(a, 0), [[0x0000_0701, 0]]);
  });
}

test('group commit: the entries of a round go out as one batch with one flush; completions in ring order, each to its IOP', async (t) => {
  const { emu, a, spare, fileAt } = await idleArray('nv-group', true);
  t.teardown(() => emu.stop('powerFail'));
  const base = { batches: a.nv.counters.batches, syncs: a.nv.counters.syncs };
  // Ten entries from two IOPs: adjacent ranges (coalesced into one pwritev), inline images, and
  // two writes to the same bytes (the later one must win).
  const data = pattern(8 * 512, 3);
  a.mem.u8.set(data, spare);
  const inlineA = pattern(64, 4);
  const inlineB = pattern(64, 5);
  const plan: Queued[] = [];
  for (let i = 0; i < 8; i++) plan.push({ iop: i % 2, id: 100 + i, addr: spare + i * 512, length: 512 });
  plan.push({ iop: 0, id: 108, addr: spare + 8192, length: 64, inline: inlineA });
  plan.push({ iop: 1, id: 109, addr: spare + 8192, length: 64, inline: inlineB });
  for (const q of plan) queue(a, q);
  a.nv.capture();
  a.nv.submit();
  await a.nv.idle();
  t.is(a.nv.counters.batches - base.batches, 1, 'one batch');
  t.is(a.nv.counters.syncs - base.syncs, 1, 'one fdatasync (of the journal record)');
  t.deepEqual(Buffer.from(fileAt(spare, data.length)), data);
  t.deepEqual(Buffer.from(fileAt(spare + 8192, 64)), inlineB, 'the later of two writes to the same bytes wins');
  t.is(a.nv.reap(), 10);
  t.deepEqual(completions(a, 0), [[100, 0], [102, 0], [104, 0], [106, 0], [108, 0]]);
  t.deepEqual(completions(a, 1), [[101, 0], [103, 0], [105, 0], [107, 0], [109, 0]]);
});

test('entries queued while a batch is written form the next batch; a full CQ holds back every later completion', async (t) => {
  const { emu, a, spare } = await idleArray('nv-next', false);
  t.teardown(() => emu.stop('powerFail'));
  const ring = cq(a, 1);
  let held = 0;
  a.nv.gate = (resume) => { held++; setImmediate(resume); };
  queue(a, { iop: 1, id: 1, addr: spare, length: 512 });
  a.nv.capture();
  t.true(a.nv.submit());
  queue(a, { iop: 0, id: 2, addr: spare + 512, length: 512 });
  queue(a, { iop: 1, id: 3, addr: spare + 1024, length: 512 });
  a.nv.capture();
  t.false(a.nv.submit(), 'the writer is busy: the entries wait for the next batch');
  await a.nv.idle();
  t.is(held, 2, 'the next batch went out when the first ended');
  // Fill IOP 1's CQ: entry 1's completion cannot be posted, so neither can 2's (IOP 0) nor 3's.
  let filled = 0;
  for (let e = ring.reserve(); e >= 0; e = ring.reserve()) { a.mem.setU32(e + A.NCQ_ID, 0xdead); ring.publish(); filled++; }
  t.is(a.nv.reap(), 0);
  t.deepEqual(completions(a, 0), []);
  t.is(completions(a, 1).length, filled);
  t.is(a.nv.reap(), 3);
  t.deepEqual(completions(a, 0), [[2, 0]]);
  t.deepEqual(completions(a, 1), [[1, 0], [3, 0]]);
});

test('an entry outside the NV region completes with EINVAL and writes nothing; the entries around it are written', async (t) => {
  const { emu, a, spare, fileAt } = await idleArray('nv-einval', false);
  t.teardown(() => emu.stop('powerFail'));
  a.mem.u8.set(pattern(1024, 6), spare);
  queue(a, { iop: 0, id: 1, addr: spare, length: 512 });
  queue(a, { iop: 0, id: 2, addr: a.nv.base + a.nv.bytes - 256, length: 512 });
  queue(a, { iop: 0, id: 3, addr: spare + 512, length: 512 });
  a.nv.capture();
  a.nv.submit();
  await a.nv.idle();
  a.nv.reap();
  t.deepEqual(completions(a, 0), [[1, 0], [2, 22], [3, 0]]);
  t.deepEqual(Buffer.from(fileAt(spare, 1024)), pattern(1024, 6));
});

test('an injected error fails the next N entries with its errno and writes nothing of them; the entries after are written', async (t) => {
  const { emu, a, spare, fileAt } = await idleArray('nv-error', false);
  t.teardown(() => emu.stop('powerFail'));
  a.mem.u8.set(pattern(1536, 8), spare);
  a.nv.inject({ type: 'error', errno: 28, count: 2 });
  for (let i = 0; i < 3; i++) queue(a, { iop: 0, id: i + 1, addr: spare + i * 512, length: 512 });
  a.nv.capture();
  a.nv.submit();
  await a.nv.idle();
  a.nv.reap();
  t.deepEqual(completions(a, 0), [[1, 28], [2, 28], [3, 0]]);
  t.deepEqual(Buffer.from(fileAt(spare, 1536)), Buffer.concat([Buffer.alloc(1024), pattern(1536, 8).subarray(1024)]));
});

test('after a power failure nothing more reaches the NV file, also entries captured before it', async (t) => {
  const { emu, a, spare, nvFile } = await idleArray('nv-cut', false);
  t.teardown(() => emu.stop('powerFail'));
  const image = fs.readFileSync(nvFile);
  a.mem.u8.set(pattern(4096, 7), spare);
  queue(a, { iop: 0, id: 1, addr: spare, length: 4096 });
  a.nv.capture(); // captured, not yet handed to the writer
  a.powerFail();
  t.false(a.nv.submit());
  queue(a, { iop: 0, id: 2, addr: spare, length: 4096 });
  a.nv.capture();
  t.false(a.nv.submit());
  await a.nv.idle();
  t.true(fs.readFileSync(nvFile).equals(image));
  t.is(a.nv.reap(), 0, 'no completion: the power is off');
});

// ---- The journal (nv.sync) -----------------------------------------------------------------------

/** A batch buffer of entries [offset, bytes], as the binding builds one. */
function batch(entries: Array<[number, Buffer]>): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(1 << 20);
  const view = new DataView(buf);
  const u8 = new Uint8Array(buf);
  let at = RECORD.HEADER_BYTES;
  for (const [offset, bytes] of entries) {
    view.setUint32(at, offset, true);
    view.setUint32(at + 4, bytes.length, true);
    u8.set(bytes, at + 8);
    at += 8 + Math.ceil(bytes.length / 8) * 8;
  }
  return buf;
}

function files(label: string) {
  const dir = tempDir(label);
  const image = fs.openSync(path.join(dir, 'nv'), 'w+');
  const journal = fs.openSync(path.join(dir, 'nv.journal'), 'w+');
  fs.ftruncateSync(image, 1 << 16);
  return { image, journal, dir, read: () => fs.readFileSync(path.join(dir, 'nv')), journalFile: path.join(dir, 'nv.journal') };
}

test('journal: a record made durable but not yet applied is applied at the next load; then the journal is empty', async (t) => {
  const f = files('nv-journal');
  const w = new NvWriter();
  t.teardown(() => w.release());
  const a = pattern(4096, 8);
  const b = pattern(64, 9);
  const cut = new SharedArrayBuffer(4);
  // The power fails after the journal's fdatasync, before the in-place writes.
  const r = await w.run({ buf: batch([[0, a], [8192, b]]), cut, image: f.image, journal: f.journal, entries: 2, steps: [{ op: 'journal', at: 0, seq: 5, entries: 2 }, { op: 'sever' }, { op: 'apply', from: 0, to: 2 }] });
  t.true(r.severed);
  t.is(r.syncs, 1);
  t.true(f.read().subarray(0, 4096).equals(Buffer.alloc(4096)), 'nothing in place yet');
  const replay = replayJournal(f.image, f.journal);
  t.deepEqual(replay, { records: 1, entries: 2, nextSeq: 6 });
  t.true(f.read().subarray(0, 4096).equals(a));
  t.true(f.read().subarray(8192, 8256).equals(b));
  t.is(replayJournal(f.image, f.journal).records, 0, 'replayed once');
});

test('journal: a torn record, a record that does not follow the one before, and an old record are not replayed', async (t) => {
  const f = files('nv-journal-torn');
  const w = new NvWriter();
  t.teardown(() => w.release());
  const cut = new SharedArrayBuffer(4);
  const job = (entries: Array<[number, Buffer]>, at: number, seq: number) =>
    w.run({ buf: batch(entries), cut, image: f.image, journal: f.journal, entries: entries.length, steps: [{ op: 'journal', at, seq, entries: entries.length }] });
  await job([[0, pattern(512, 1)]], 0, 10);
  await job([[512, pattern(512, 2)]], 1024, 11);
  await job([[1024, pattern(512, 3)]], 2048, 13); // seq 12 is missing: ends the chain
  await job([[1536, pattern(512, 4)]], 8192, 40); // not reached from offset 0, but its seq counts
  const r = replayJournal(f.image, f.journal);
  t.deepEqual(r, { records: 2, entries: 2, nextSeq: 41 });
  const img = f.read();
  t.true(img.subarray(0, 512).equals(pattern(512, 1)) && img.subarray(512, 1024).equals(pattern(512, 2)));
  t.true(img.subarray(1024, 2048).equals(Buffer.alloc(1024)));
  // A record whose body is torn (its last byte never reached the disk) is not applied.
  const g = files('nv-journal-torn2');
  await w.run({ buf: batch([[0, pattern(4096, 5)]]), cut, image: g.image, journal: g.journal, entries: 1, steps: [{ op: 'journal', at: 0, seq: 1, entries: 1 }] });
  const size = fs.fstatSync(g.journal).size;
  fs.writeSync(g.journal, Buffer.from([0x55 ^ fs.readFileSync(g.journalFile)[size - 1]]), 0, 1, size - 1);
  t.is(replayJournal(g.image, g.journal).records, 0);
  t.true(g.read().subarray(0, 4096).equals(Buffer.alloc(4096)));
});

test('nv.sync: the journal wraps to its start after the NV file is flushed; the next load replays the record since', async (t) => {
  const { emu, a, spare, nvFile } = await idleArray('nv-wrap', true);
  t.teardown(() => emu.stop('powerFail'));
  const syncs = a.nv.counters.syncs;
  // Batches of 3 MiB and a bit until one wraps the journal (8 MiB; the boot's own records are in it
  // too, and how much they take depends on the NV layout): that batch is the record at the start.
  let rounds = 0;
  for (let wrapped = false; !wrapped; rounds++) {
    if (rounds === 4) return t.fail('no batch wrapped the journal');
    const before = a.nv.counters.syncs;
    for (let i = 0; i < 48; i++) {
      a.mem.u8.set(pattern(A.SLOT_BYTES, rounds * 100 + i), spare);
      queue(a, { iop: 0, id: i, addr: spare, length: A.SLOT_BYTES });
      a.nv.capture();
    }
    a.nv.submit();
    await a.nv.idle();
    a.nv.reap();
    completions(a, 0);
    wrapped = a.nv.counters.syncs - before === 2; // the NV file flushed before the wrap, then the journal
  }
  t.true(fs.statSync(`${nvFile}.journal`).size <= 8 << 20, 'the journal wrapped');
  t.is(a.nv.counters.syncs - syncs, rounds + 1, 'a journal flush per batch, and a flush of the NV file before the wrap');
  // What the next load does, on copies: the last batch's in-place writes lost, the journal brings them back.
  const dir = tempDir('nv-wrap-copy');
  fs.copyFileSync(nvFile, path.join(dir, 'nv'));
  fs.copyFileSync(`${nvFile}.journal`, path.join(dir, 'nv.journal'));
  const image = fs.openSync(path.join(dir, 'nv'), 'r+');
  const journal = fs.openSync(path.join(dir, 'nv.journal'), 'r+');
  fs.writeSync(image, Buffer.alloc(A.SLOT_BYTES), 0, A.SLOT_BYTES, spare - a.nv.base);
  const r = replayJournal(image, journal);
  t.is(r.records, 1, 'the record at the start; the one after it is from the pass before');
  t.deepEqual(fs.readFileSync(path.join(dir, 'nv')).subarray(spare - a.nv.base, spare - a.nv.base + A.SLOT_BYTES), pattern(A.SLOT_BYTES, (rounds - 1) * 100 + 47));
  fs.closeSync(image);
  fs.closeSync(journal);
});

test('journal: when the journal cannot be written, every entry of the batch fails and none is written in place', async (t) => {
  const f = files('nv-journal-fail');
  const w = new NvWriter();
  t.teardown(() => w.release());
  const r = await w.run({
    buf: batch([[0, pattern(512, 1)], [4096, pattern(512, 2)]]), cut: new SharedArrayBuffer(4), image: f.image, journal: 999_999, entries: 2,
    steps: [{ op: 'journal', at: 0, seq: 1, entries: 2 }, { op: 'apply', from: 0, to: 2 }],
  });
  t.deepEqual(r.errors, [[0, 9], [1, 9]], 'EBADF for both');
  t.true(f.read().equals(Buffer.alloc(1 << 16)));
});

test('a writer thread that dies ends the job it had instead of leaving it waiting, and fails every later job (EIO)', async (t) => {
  const f = files('nv-writer-dies');
  const w = new NvWriter({ fresh: true });
  t.teardown(() => w.release());
  const buf = batch([[0, pattern(512, 1)]]);
  const job = { buf, cut: new SharedArrayBuffer(4), image: f.image, journal: f.journal, entries: 1, steps: [{ op: 'apply' as const, from: 0, to: 1 }] };
  const pending = w.run(job);
  await (w as unknown as { t: { worker: { terminate(): Promise<number> } } }).t.worker.terminate();
  const r = await pending; // done before the thread died, or failed by its death: never left waiting
  t.true(r.errors.length === 0 || (r.errors[0][0] === -1 && r.errors[0][1] === 5));
  t.deepEqual((await w.run(job)).errors, [[-1, 5]]);
});
