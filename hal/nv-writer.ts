// The NV writer: a thread that applies batches of NV writes to the NV file, so that the array's
// thread never waits for a pwrite or an fdatasync (docs/hal.md, Non-volatile memory; why a thread
// and not libuv's pool: docs/design-notes.md).
//
// A batch is a buffer of entries (file offset, length, bytes) captured at the doorbell, in ring
// order, plus the steps to take with it. The thread takes one batch at a time and runs its steps
// with blocking calls, in order, so the file always holds a prefix of the ring's writes: a kill
// of the emulator in the middle of a batch leaves the entries before some point and none after.
//
// With nv.sync, that is not enough for a power loss of the host: the kernel may write back the
// pages of one batch in any order, so a slot descriptor could reach the disk without the data it
// describes. So a sync batch is first appended to a journal (<nv file>.journal) as one record
// with a CRC, the journal is fdatasync'd (one flush per batch: the batch is durable), and only
// then applied in place. At the next load the journal's records are applied again, oldest first;
// a torn record fails its CRC and ends the replay. Before the journal wraps to its start, the NV
// file is fdatasync'd, so nothing the overwritten records held is lost.
//
// Journal record (RECORD_* offsets), at a multiple of 512 bytes in the journal:
//   magic u32 | version u32 | seq f64 | entries u32 | body bytes u32 | body CRC u32 | header CRC u32
//   body: entries, each offset u32 | length u32 | bytes, padded to 8
// seq grows by one per record for the life of the journal file (the next run continues from the
// largest seq the file holds), so a record left from an older pass can never follow a newer one.
import * as fs from 'fs';
import * as zlib from 'zlib';
import { Worker } from 'worker_threads';

export const RECORD = {
  MAGIC: 0x4a4e4253, // "SBNJ"
  VERSION: 1,
  HEADER_BYTES: 32,
  ENTRY_HEADER_BYTES: 8,
  ALIGN: 512,
  O_MAGIC: 0, O_VERSION: 4, O_SEQ: 8, O_ENTRIES: 16, O_BODY_BYTES: 20, O_BODY_CRC: 24, O_HEADER_CRC: 28,
} as const;

/** Past this many bytes the journal starts again at 0 (after an fdatasync of the NV file). */
export const JOURNAL_WRAP_BYTES = 8 << 20;

export function padTo(n: number, a: number): number { return Math.ceil(n / a) * a; }
export function entryBytes(length: number): number { return RECORD.ENTRY_HEADER_BYTES + padTo(length, 8); }

/** What the writer does with a batch, in order. */
export type Step =
  /** Append entries [0, entries) as a journal record at `at`, then fdatasync the journal. */
  | { op: 'journal'; at: number; seq: number; entries: number }
  /** Write entries [from, to) in place; adjacent ones in one pwritev. */
  | { op: 'apply'; from: number; to: number }
  /** Write the first `bytes` of entry `entry` in place (a torn write). */
  | { op: 'torn'; entry: number; bytes: number }
  | { op: 'syncImage' }
  /** Zero the journal's first header and fdatasync it: nothing in the journal is replayed. */
  | { op: 'resetJournal' }
  /** Set the power-cut flag: the writer stops here, as after a power loss. */
  | { op: 'sever' };

export interface Job {
  /** The batch: record header room, then the entries. */
  buf: SharedArrayBuffer;
  /** The power-cut flag: Int32 [0] != 0 stops the writer before its next call. */
  cut: SharedArrayBuffer;
  image: number;
  journal: number;
  /** Entries in the buffer: all of them fail when the journal or a flush fails. */
  entries: number;
  steps: Step[];
}

export interface Reply {
  /** Entries (by index in the batch) whose write failed, with the errno. */
  errors: Array<[number, number]>;
  /** The writer stopped at the power cut; the steps after it were not taken. */
  severed: boolean;
  /** fdatasync calls made. */
  syncs: number;
  /** Entries written in place whole. */
  applied: number;
}

// The writer is told of a job through a control block of shared memory (an Int32Array) and an
// Atomics notify, and answers the same way: a postMessage each way costs twice the CPU of a wait
// and a notify (npm run bench -- nv, handOffs). Buffers it has not seen yet are sent to it once, by
// message, and it takes them off its port when it wakes. Indices of the control block:
const C = {
  SUBMIT: 0, // job number, set by the array's thread
  DONE: 1, // job number done, set by the writer
  BUF: 2, CUT: 3, IMAGE: 4, JOURNAL: 5, ENTRIES: 6, STEPS: 7,
  STEP0: 8, STEP_INTS: 5, STEP_MAX: 8, // op, a, b, c, d
  SEVERED: 48, SYNCS: 49, APPLIED: 50, ERRORS: 51, ERROR0: 52, ERROR_MAX: 1024, // [entry, errno] pairs
  INTS: 52 + 2 * 1024,
  OP_JOURNAL: 1, OP_APPLY: 2, OP_TORN: 3, OP_SYNC_IMAGE: 4, OP_RESET_JOURNAL: 5, OP_SEVER: 6,
} as const;

/**
 * Runs the job the control block describes, with blocking calls in order, and writes the reply into
 * the block. Made from the modules it uses and nothing else of this module's scope, so that the
 * writer thread (which runs it from its source text) and an inline writer (on the array's thread,
 * for drivers that run rounds synchronously) run the same code.
 */
function jobRunner(fsT: typeof import('fs'), zlibT: typeof import('zlib'), L: typeof RECORD, K: typeof C) {
  return (ctl: Int32Array, buffers: Map<number, SharedArrayBuffer>): void => {
    const buf = buffers.get(ctl[K.BUF])!;
    const u8 = new Uint8Array(buf);
    const view = new DataView(buf);
    const cut = new Int32Array(buffers.get(ctl[K.CUT])!);
    const image = ctl[K.IMAGE];
    const journal = ctl[K.JOURNAL];
    let errors = 0;
    let severed = 0;
    let syncs = 0;
    let applied = 0;
    const fail = (from: number, to: number, e: unknown) => {
      const errno = Math.abs((e as NodeJS.ErrnoException).errno ?? 5) || 5;
      for (let i = from; i < to; i++) {
        if (errors < K.ERROR_MAX) { ctl[K.ERROR0 + 2 * errors] = i; ctl[K.ERROR0 + 2 * errors + 1] = errno; }
        errors++;
      }
    };
    // Entry i's position in the buffer: walked once, the buffer is at most a few MiB.
    const at: number[] = [L.HEADER_BYTES];
    const position = (i: number): number => {
      while (at.length <= i) {
        const p = at[at.length - 1];
        at.push(p + L.ENTRY_HEADER_BYTES + Math.ceil(view.getUint32(p + 4, true) / 8) * 8);
      }
      return at[i];
    };
    const offsetOf = (i: number) => view.getUint32(position(i), true);
    const lengthOf = (i: number) => view.getUint32(position(i) + 4, true);
    const bytesOf = (i: number, n = lengthOf(i)) => u8.subarray(position(i) + L.ENTRY_HEADER_BYTES, position(i) + L.ENTRY_HEADER_BYTES + n);
    const writeAll = (fd: number, parts: Uint8Array[], pos: number) => {
      for (const p of parts) {
        let done = 0;
        while (done < p.length) done += fsT.writeSync(fd, p, done, p.length - done, pos + done);
        pos += p.length;
      }
    };
    const apply = (from: number, to: number) => {
      for (let i = from; i < to && !cut[0];) {
        // Adjacent entries go out in one call (a data range and the range that follows it).
        let j = i + 1;
        while (j < to && offsetOf(j) === offsetOf(j - 1) + lengthOf(j - 1)) j++;
        const parts: Uint8Array[] = [];
        for (let k = i; k < j; k++) parts.push(bytesOf(k));
        try {
          if (parts.length === 1) writeAll(image, parts, offsetOf(i));
          else {
            const n = fsT.writevSync(image, parts, offsetOf(i));
            const total = parts.reduce((sum, p) => sum + p.length, 0);
            if (n < total) writeAll(image, [Buffer.concat(parts).subarray(n)], offsetOf(i) + n);
          }
          applied += j - i;
        } catch (e) {
          fail(i, j, e);
        }
        i = j;
      }
    };
    for (let s = 0; s < ctl[K.STEPS]; s++) {
      if (cut[0]) { severed = 1; break; }
      const x = K.STEP0 + s * K.STEP_INTS;
      const [op, a, b, c, d] = [ctl[x], ctl[x + 1], ctl[x + 2], ctl[x + 3], ctl[x + 4]];
      try {
        if (op === K.OP_JOURNAL) {
          const entries = d;
          const end = entries === 0 ? L.HEADER_BYTES : position(entries - 1) + L.ENTRY_HEADER_BYTES + Math.ceil(lengthOf(entries - 1) / 8) * 8;
          view.setUint32(L.O_MAGIC, L.MAGIC, true);
          view.setUint32(L.O_VERSION, L.VERSION, true);
          view.setFloat64(L.O_SEQ, (b >>> 0) + (c >>> 0) * 2 ** 32, true);
          view.setUint32(L.O_ENTRIES, entries, true);
          view.setUint32(L.O_BODY_BYTES, end - L.HEADER_BYTES, true);
          view.setUint32(L.O_BODY_CRC, zlibT.crc32(u8.subarray(L.HEADER_BYTES, end)), true);
          view.setUint32(L.O_HEADER_CRC, zlibT.crc32(u8.subarray(0, L.O_HEADER_CRC)), true);
          writeAll(journal, [u8.subarray(0, end)], a);
          if (cut[0]) { severed = 1; break; }
          fsT.fdatasyncSync(journal);
          syncs++;
        } else if (op === K.OP_APPLY) {
          apply(a, b);
        } else if (op === K.OP_TORN) {
          if (b > 0) writeAll(image, [bytesOf(a, b)], offsetOf(a));
        } else if (op === K.OP_SYNC_IMAGE) {
          fsT.fdatasyncSync(image);
          syncs++;
        } else if (op === K.OP_RESET_JOURNAL) {
          writeAll(journal, [new Uint8Array(L.HEADER_BYTES)], 0);
          fsT.fdatasyncSync(journal);
          syncs++;
        } else if (op === K.OP_SEVER) {
          Atomics.store(cut, 0, 1);
        }
      } catch (e) {
        // A journal or a flush that failed makes no write of the batch durable: all of them fail,
        // and none is applied in place (the journal protects the order of what is).
        errors = 0;
        fail(0, ctl[K.ENTRIES], e);
        break;
      }
    }
    ctl[K.SEVERED] = severed || cut[0] ? 1 : 0;
    ctl[K.SYNCS] = syncs;
    ctl[K.APPLIED] = applied;
    ctl[K.ERRORS] = errors;
  };
}

/** The writer thread's body: waits for a job, takes new buffers off its port, runs the job, says it is done. */
function writerThread(): void {
  const wt = require('worker_threads') as typeof import('worker_threads');
  const K = wt.workerData.control as typeof C;
  const run = jobRunner(require('fs'), require('zlib'), wt.workerData.layout as typeof RECORD, K);
  const ctl = new Int32Array(wt.workerData.ctl as SharedArrayBuffer);
  const buffers = new Map<number, SharedArrayBuffer>();
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, K.SUBMIT, seen);
    const job = Atomics.load(ctl, K.SUBMIT);
    if (job === seen) continue;
    seen = job;
    for (let m = wt.receiveMessageOnPort(wt.parentPort!); m; m = wt.receiveMessageOnPort(wt.parentPort!)) {
      const msg = m.message as { id: number; buf?: SharedArrayBuffer };
      if (msg.buf) buffers.set(msg.id, msg.buf); else buffers.clear();
    }
    run(ctl, buffers);
    Atomics.store(ctl, K.DONE, job);
    Atomics.notify(ctl, K.DONE);
  }
}

// ---- The threads ---------------------------------------------------------------------------------

const WRITER_SOURCE = `'use strict';\n${jobRunner.toString()}\n(${writerThread.toString()})();\n`;

interface Thread { worker: Worker; ctl: Int32Array; job: number }
/** Writers of released arrays, kept for the next array of the process: a thread takes ~0.1 s to start. */
const idleWriters: Thread[] = [];
let nextBufferId = 1;

function startThread(): Thread {
  const ctl = new Int32Array(new SharedArrayBuffer(C.INTS * 4));
  const worker = new Worker(WRITER_SOURCE, {
    eval: true, workerData: { layout: RECORD, control: C, ctl: ctl.buffer },
    // Plain JavaScript: without the parent's -r ts-node/register the thread starts in a tenth of the time.
    execArgv: [],
  });
  worker.unref();
  return { worker, ctl, job: 0 };
}

/** Atomics.waitAsync (ES2024; in Node since 16): a promise that settles when the writer notifies. */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

const OPS: Record<Step['op'], number> = {
  journal: C.OP_JOURNAL, apply: C.OP_APPLY, torn: C.OP_TORN, syncImage: C.OP_SYNC_IMAGE, resetJournal: C.OP_RESET_JOURNAL, sever: C.OP_SEVER,
};

const FATAL: Reply = { errors: [[-1, 5]], severed: false, syncs: 0, applied: 0 };

/**
 * One array's writer: one job at a time, in order. On a thread of its own, or `inline`: the same
 * code run on the array's thread by runSync(), for drivers that run rounds synchronously and never
 * let a thread's answer in (the fuzzer).
 */
export class NvWriter {
  private readonly t?: Thread;
  private readonly ctl: Int32Array;
  private running = false;
  private failure?: Error;
  /** Buffers the thread has been given, by their id. */
  private readonly ids = new WeakMap<SharedArrayBuffer, number>();
  /** Inline: the buffers by id, and the job runner. */
  private readonly buffers = new Map<number, SharedArrayBuffer>();
  private readonly runInline?: (ctl: Int32Array, buffers: Map<number, SharedArrayBuffer>) => void;

  /** `fresh`: a new thread even when an idle one is kept (to measure its start). */
  constructor(o: { fresh?: boolean; inline?: boolean } = {}) {
    if (o.inline) {
      this.ctl = new Int32Array(C.INTS);
      this.runInline = jobRunner(fs, zlib, RECORD, C);
      return;
    }
    this.t = (o.fresh ? undefined : idleWriters.pop()) ?? startThread();
    this.ctl = this.t.ctl;
    this.t.worker.on('error', this.onError);
    this.t.worker.on('exit', this.onExit);
  }

  get inline(): boolean { return this.runInline !== undefined; }

  /** The thread died: a job waiting for it ends (every entry EIO), and no job runs on it again. */
  private readonly onError = (e: Error) => {
    this.failure = e;
    Atomics.store(this.ctl, C.DONE, this.t!.job);
    Atomics.notify(this.ctl, C.DONE);
  };
  private readonly onExit = (code: number) => this.onError(new Error(`NV writer thread exited (${code})`));

  get busy(): boolean { return this.running; }

  private id(buf: SharedArrayBuffer): number {
    let id = this.ids.get(buf);
    if (id === undefined) {
      id = nextBufferId++;
      this.ids.set(buf, id);
      if (this.t) this.t.worker.postMessage({ id, buf }); else this.buffers.set(id, buf);
    }
    return id;
  }

  /** Writes the job into the control block. */
  private encode(job: Job): void {
    if (job.steps.length > C.STEP_MAX) throw new Error(`NV writer: ${job.steps.length} steps in one job (at most ${C.STEP_MAX})`);
    const ctl = this.ctl;
    ctl[C.BUF] = this.id(job.buf);
    ctl[C.CUT] = this.id(job.cut);
    ctl[C.IMAGE] = job.image;
    ctl[C.JOURNAL] = job.journal;
    ctl[C.ENTRIES] = job.entries;
    ctl[C.STEPS] = job.steps.length;
    job.steps.forEach((s, i) => {
      const x = C.STEP0 + i * C.STEP_INTS;
      const args = s.op === 'journal' ? [s.at, s.seq % 2 ** 32, Math.floor(s.seq / 2 ** 32), s.entries]
        : s.op === 'apply' ? [s.from, s.to, 0, 0] : s.op === 'torn' ? [s.entry, s.bytes, 0, 0] : [0, 0, 0, 0];
      ctl[x] = OPS[s.op];
      for (let k = 0; k < 4; k++) ctl[x + 1 + k] = args[k] | 0;
    });
  }

  /** The reply the job runner left in the control block. */
  private decode(): Reply {
    const ctl = this.ctl;
    const n = ctl[C.ERRORS];
    const errors: Array<[number, number]> = [];
    for (let i = 0; i < Math.min(n, C.ERROR_MAX); i++) errors.push([ctl[C.ERROR0 + 2 * i], ctl[C.ERROR0 + 2 * i + 1]]);
    if (n > C.ERROR_MAX) errors.push([-1, errors[0][1]]);
    return { errors, severed: ctl[C.SEVERED] === 1, syncs: ctl[C.SYNCS], applied: ctl[C.APPLIED] };
  }

  /** Inline only: runs a job on this thread and returns the reply. */
  runSync(job: Job): Reply {
    if (!this.runInline) throw new Error('NV writer: runSync() is for an inline writer');
    this.encode(job);
    this.runInline(this.ctl, this.buffers);
    return this.decode();
  }

  /** Runs a job; the promise resolves with the writer's reply (never rejects). */
  async run(job: Job): Promise<Reply> {
    if (this.running) throw new Error('NV writer: a job is already running');
    if (this.inline) return this.runSync(job);
    if (this.failure) return FATAL;
    const t = this.t!;
    this.encode(job);
    const before = t.job;
    t.job = (before + 1) | 0;
    this.running = true;
    // Referenced while a job runs: a process that waits for NV must not exit under it.
    t.worker.ref();
    Atomics.store(this.ctl, C.SUBMIT, t.job);
    Atomics.notify(this.ctl, C.SUBMIT);
    const w = waitAsync(this.ctl, C.DONE, before);
    if (w.async) await w.value;
    t.worker.unref();
    this.running = false;
    return this.failure ? FATAL : this.decode();
  }

  /** Returns the thread to the idle list (after its last job). */
  release(): void {
    const t = this.t;
    if (!t) return;
    t.worker.off('error', this.onError);
    t.worker.off('exit', this.onExit);
    t.worker.unref();
    if (this.failure || this.running) { void t.worker.terminate(); return; }
    t.worker.postMessage({ id: 0 }); // forget this array's buffers
    idleWriters.push(t);
  }
}

// ---- The journal at load -------------------------------------------------------------------------

export interface Replay {
  /** Records applied to the NV file. */
  records: number;
  entries: number;
  /** The seq for the next record written. */
  nextSeq: number;
}

/** A valid header at `at`: its seq, body bytes and body CRC; undefined if none. */
function header(j: Buffer, at: number): { seq: number; entries: number; body: number; crc: number } | undefined {
  if (at + RECORD.HEADER_BYTES > j.length) return undefined;
  if (j.readUInt32LE(at + RECORD.O_MAGIC) !== RECORD.MAGIC || j.readUInt32LE(at + RECORD.O_VERSION) !== RECORD.VERSION) return undefined;
  if (zlib.crc32(j.subarray(at, at + RECORD.O_HEADER_CRC)) !== j.readUInt32LE(at + RECORD.O_HEADER_CRC)) return undefined;
  return { seq: j.readDoubleLE(at + RECORD.O_SEQ), entries: j.readUInt32LE(at + RECORD.O_ENTRIES), body: j.readUInt32LE(at + RECORD.O_BODY_BYTES), crc: j.readUInt32LE(at + RECORD.O_BODY_CRC) };
}

/**
 * Applies the journal's chain of records (from offset 0, seq + 1 each, CRCs good) to the NV file,
 * makes the file durable and empties the journal. Runs at load, before the region is read.
 */
export function replayJournal(image: number, journal: number): Replay {
  const size = fs.fstatSync(journal).size;
  const j = Buffer.alloc(size);
  for (let done = 0; done < size;) {
    const n = fs.readSync(journal, j, done, size - done, done);
    if (n === 0) break;
    done += n;
  }
  let maxSeq = 0;
  for (let at = 0; at < size; at += RECORD.ALIGN) {
    const h = header(j, at);
    if (h && h.seq > maxSeq) maxSeq = h.seq;
  }
  const out: Replay = { records: 0, entries: 0, nextSeq: maxSeq + 1 };
  let prev = -1;
  for (let at = 0; ;) {
    const h = header(j, at);
    const end = at + RECORD.HEADER_BYTES + (h?.body ?? 0);
    if (!h || end > size || (prev >= 0 && h.seq !== prev + 1)) break;
    if (zlib.crc32(j.subarray(at + RECORD.HEADER_BYTES, end)) !== h.crc) break;
    let p = at + RECORD.HEADER_BYTES;
    for (let i = 0; i < h.entries; i++) {
      const offset = j.readUInt32LE(p);
      const length = j.readUInt32LE(p + 4);
      const src = j.subarray(p + RECORD.ENTRY_HEADER_BYTES, p + RECORD.ENTRY_HEADER_BYTES + length);
      for (let done = 0; done < length;) done += fs.writeSync(image, src, done, length - done, offset + done);
      p += entryBytes(length);
    }
    out.records++;
    out.entries += h.entries;
    prev = h.seq;
    at = padTo(end, RECORD.ALIGN);
  }
  if (out.records > 0) fs.fdatasyncSync(image);
  if (size > 0) {
    // Nothing of it may be replayed again over writes made after this load.
    fs.writeSync(journal, Buffer.alloc(RECORD.HEADER_BYTES), 0, RECORD.HEADER_BYTES, 0);
    fs.fdatasyncSync(journal);
  }
  return out;
}
