// Non-volatile memory backed by a file (docs/hal.md, Non-volatile memory). The NV region of common
// memory is loaded from the file before boot; afterwards the file follows the region through the
// array's one NV submission ring:
//   doorbell  every new entry is captured at once: its bytes are copied out of common memory (a
//             slot's data may be overwritten, or the slot given to another volume, before the
//             write happens) into the open batch, in ring order
//   batch     when the writer thread is free, everything captured since the last batch goes to it
//             as one batch (group commit): written in order, adjacent entries coalesced, with
//             nv.sync journalled and flushed once (hal/nv-writer.ts)
//   reap      then the batch's completions go, in ring order, to the CQ of the IOP named in each
//             entry; an entry leaves the SQ only then, so the ring bounds what is in flight
// Faults for the simulator (inject/heal): write errors, a torn write, a power loss after N writes.
import * as fs from 'fs';
import * as path from 'path';
import * as A from './abi';
import { CommonMemory } from './memory';
import { EntryRing } from './ring';
import { Prng } from './prng';
import { NvWriter, Step, Reply, RECORD, JOURNAL_WRAP_BYTES, entryBytes, padTo, replayJournal } from './nv-writer';

export type NvFault =
  /** The next `count` NV writes (every one until heal() when count is absent) fail with errno. */
  | { type: 'error'; errno: number; count?: number }
  /**
   * The next NV write (or the one after `afterWrites` more have landed) lands only as its first
   * `bytes` (drawn from the seed when absent), then the power fails.
   */
  | { type: 'torn'; bytes?: number; afterWrites?: number }
  /** The power fails once `afterWrites` more NV writes have landed (0: now). */
  | { type: 'powerLoss'; afterWrites: number };

const EINVAL = 22;
/** A batch is sealed when it holds this much (a larger single entry gets a batch of its own). */
const BATCH_BYTES = 4 << 20;
/** Released batch buffers kept for reuse. */
const SPARE_BUFFERS = 4;

interface Entry {
  id: number;
  iop: number;
  status: number;
  done: boolean;
}

class Batch {
  readonly u8: Uint8Array;
  readonly view: DataView;
  end: number = RECORD.HEADER_BYTES;
  readonly entries: Entry[] = [];
  /** The entry (index) written only in part, after which the power fails. */
  torn?: { entry: number; bytes: number; of: number };
  /** The power fails after the batch. */
  sever = false;
  /** Flush the NV file after the batch (an NSQF_SYNC entry without nv.sync). */
  syncImage = false;

  constructor(readonly buf: SharedArrayBuffer) {
    this.u8 = new Uint8Array(buf);
    this.view = new DataView(buf);
  }

  fits(length: number): boolean { return this.end + entryBytes(length) <= this.buf.byteLength; }

  append(offset: number, src: Uint8Array, entry: Entry): void {
    this.view.setUint32(this.end, offset, true);
    this.view.setUint32(this.end + 4, src.length, true);
    this.u8.set(src, this.end + RECORD.ENTRY_HEADER_BYTES);
    this.end += entryBytes(src.length);
    this.entries.push(entry);
  }
}

export interface NvCounters {
  /** Entries captured, written in place, failed. */
  entries: number;
  written: number;
  errors: number;
  batches: number;
  syncs: number;
  /** Journal records and entries replayed at load. */
  replayedRecords: number;
  replayedEntries: number;
}

export class NvBinding {
  private fd = -1;
  private journalFd = -1;
  readonly base: number;
  readonly bytes: number;
  private sq!: EntryRing;
  private cqs: EntryRing[] = [];
  /** Free-running SQ index of the next entry to capture; [head, captured) are in flight. */
  private captured = 0;
  /** Captured entries in ring order, from the SQ head on. */
  private entries: Entry[] = [];
  private entriesHead = 0;
  private open?: Batch;
  private readonly sealed: Batch[] = [];
  private running?: Batch;
  private readonly spare: SharedArrayBuffer[] = [];
  private writer?: NvWriter;
  /** Shared with the writer: set by a power cut, checked before each of its calls. */
  private readonly cut = new SharedArrayBuffer(4);
  /** Set by powerFail(): the file no longer follows the memory (an emulated loss of power). */
  private severed = false;
  /** A fault cut the power at a batch's end: nothing captured after it is written. */
  private cutPending = false;
  private journalAt = 0;
  private journalSeq = 1;
  private error?: { errno: number; left: number };
  private torn?: { bytes?: number; skip: number };
  private powerLossLeft = -1;
  private idleWaiters: Array<() => void> = [];
  readonly counters: NvCounters = { entries: 0, written: 0, errors: 0, batches: 0, syncs: 0, replayedRecords: 0, replayedEntries: 0 };
  /** Told when a fault cuts the power (the array stops as after stop('powerFail')). */
  onPowerLoss: (reason: string) => void = () => undefined;
  /** Told when a batch is done (the driver runs a round to post its completions). */
  onDone: () => void = () => undefined;
  /** Told once per errno when NV writes fail. */
  onError: (message: string) => void = () => undefined;
  /** Every batch's reply passes through here before it counts: tests hold or delay them. */
  gate: (resume: () => void) => void = (resume) => resume();
  private readonly reported = new Set<number>();

  /** `inline`: the writer runs on this thread (ArrayOptions.io, for drivers that run rounds synchronously). */
  constructor(
    private readonly mem: CommonMemory, readonly file: string, private readonly sync: boolean, private readonly prng: Prng,
    private readonly inline = false,
  ) {
    this.base = mem.u32(A.MAP_ADDR + A.MAP_NV_ADDR);
    this.bytes = mem.u32(A.MAP_ADDR + A.MAP_NV_BYTES);
  }

  get journalFile(): string { return `${this.file}.journal`; }

  /**
   * Opens (or creates) the file, applies what its journal holds, and loads it into the region.
   * Returns the bytes loaded: 0 for a new file. A file of another size (another cache geometry) is
   * loaded as far as both reach; the firmware checks the geometry it records and refuses dirty
   * data it cannot place.
   */
  load(): number {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const existed = fs.existsSync(this.file);
    this.fd = fs.openSync(this.file, existed ? 'r+' : 'w+');
    if (this.sync || fs.existsSync(this.journalFile)) {
      this.journalFd = fs.openSync(this.journalFile, fs.existsSync(this.journalFile) ? 'r+' : 'w+');
      const r = replayJournal(this.fd, this.journalFd);
      this.counters.replayedRecords = r.records;
      this.counters.replayedEntries = r.entries;
      this.journalSeq = r.nextSeq;
      if (!this.sync) {
        fs.closeSync(this.journalFd);
        this.journalFd = -1;
      }
    }
    const size = fs.fstatSync(this.fd).size;
    let loaded = 0;
    if (size > 0) {
      const n = Math.min(size, this.bytes);
      while (loaded < n) {
        const r = fs.readSync(this.fd, this.mem.u8, this.base + loaded, n - loaded, loaded);
        if (r === 0) break;
        loaded += r;
      }
    }
    // Grown to the region now; cut down to it only once the firmware took the image (trim): a boot
    // it refuses (ERR_NV_GEOMETRY: dirty data for another cache size) must leave every byte for a
    // boot with the old size. Cut here, a smaller cache lost the slot data at the file's end, and the
    // boot with the old size dropped those sectors as torn (simulator seed 6025).
    if (size < this.bytes) fs.ftruncateSync(this.fd, this.bytes);
    this.writer = new NvWriter({ inline: this.inline });
    return loaded;
  }

  /** After a boot the firmware accepted: a file longer than the region (a smaller cache) is cut to it. */
  trim(): void {
    if (fs.fstatSync(this.fd).size > this.bytes) fs.ftruncateSync(this.fd, this.bytes);
  }

  /** Attaches the rings once the IOPs are booted (the map holds them from layout() on). */
  attach(iops: number): void {
    this.sq = new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.MAP_NV_SQ));
    this.captured = this.sq.head();
    this.cqs = [];
    for (let i = 0; i < iops; i++) {
      this.cqs.push(new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + i * A.MAP_IOP_BYTES + A.MIOP_NV_CQ)));
    }
  }

  // ---- doorbell: capture -------------------------------------------------------------------------

  /** The doorbell: captures every entry queued since the last one. Returns the entries taken. */
  capture(): number {
    const tail = this.sq.tail();
    let n = 0;
    for (; this.captured !== tail; this.captured = (this.captured + 1) >>> 0, n++) this.take(this.sq.entry(this.captured));
    return n;
  }

  private take(e: number): void {
    const m = this.mem;
    const entry: Entry = { id: m.u32(e + A.NSQ_ID), iop: m.u8At(e + A.NSQ_IOP), status: 0, done: false };
    this.entries.push(entry);
    this.counters.entries++;
    if (this.severed || this.cutPending) return; // the power is off: never written, never completed
    const op = m.u8At(e + A.NSQ_OP);
    const addr = m.u32(e + A.NSQ_ADDR);
    const length = m.u32(e + A.NSQ_LENGTH);
    const offset = addr - this.base;
    const inline = op === A.NOP_INLINE && length <= A.NSQ_INLINE_MAX;
    if (offset < 0 || offset + length > this.bytes || (op !== A.NOP_RANGE && !inline)) return this.finish(entry, EINVAL);
    if (this.error) {
      const errno = this.error.errno;
      if (--this.error.left === 0) this.error = undefined;
      return this.finish(entry, errno);
    }
    const batch = this.batchFor(length);
    batch.append(offset, m.bytes(inline ? e + A.NSQ_INLINE : addr, length), entry);
    if (this.torn && this.torn.skip > 0) {
      this.torn.skip--;
    } else if (this.torn) {
      const bytes = this.torn.bytes ?? (length > 1 ? 1 + Math.floor(this.prng.next() * (length - 1)) : 0);
      batch.torn = { entry: batch.entries.length - 1, bytes: Math.min(bytes, length), of: length };
      this.torn = undefined;
      this.cutPending = true;
    } else if (this.powerLossLeft > 0 && --this.powerLossLeft === 0) {
      this.powerLossLeft = -1;
      batch.sever = true;
      this.cutPending = true;
    }
    if ((m.u16(e + A.NSQ_FLAGS) & A.NSQF_SYNC) !== 0 && !this.sync) batch.syncImage = true;
    if (batch.torn || batch.sever || batch.syncImage) this.seal();
  }

  private finish(entry: Entry, status: number): void {
    entry.status = status;
    entry.done = true;
    if (status !== 0) this.failed(status, 1);
  }

  private batchFor(length: number): Batch {
    if (this.open && !this.open.fits(length)) this.seal();
    if (!this.open) {
      const need = Math.max(BATCH_BYTES, RECORD.HEADER_BYTES + entryBytes(length));
      const i = this.spare.findIndex((b) => b.byteLength >= need);
      this.open = new Batch(i >= 0 ? this.spare.splice(i, 1)[0] : new SharedArrayBuffer(need));
    }
    return this.open;
  }

  private seal(): void {
    if (this.open && this.open.entries.length > 0) this.sealed.push(this.open);
    this.open = undefined;
  }

  // ---- batch: the writer -----------------------------------------------------------------------

  /** Starts the next batch if the writer is free. Returns true when it started one. */
  submit(): boolean {
    if (this.running || this.severed || !this.writer) return false;
    if (this.sealed.length === 0) this.seal();
    const batch = this.sealed.shift();
    if (!batch) return false;
    this.running = batch;
    this.counters.batches++;
    const job = { buf: batch.buf, cut: this.cut, image: this.fd, journal: this.journalFd, entries: batch.entries.length, steps: this.steps(batch) };
    if (this.writer.inline) this.gate(() => this.finished(batch, this.writer!.runSync(job)));
    else void this.writer.run(job).then((reply) => this.gate(() => this.finished(batch, reply)));
    return true;
  }

  private steps(batch: Batch): Step[] {
    const steps: Step[] = [];
    const whole = batch.torn ? batch.torn.entry : batch.entries.length;
    if (whole > 0) {
      if (this.sync) steps.push(...this.journal(batch, whole));
      steps.push({ op: 'apply', from: 0, to: whole });
    }
    if (batch.torn) {
      // What the journal holds is made durable and forgotten first, or replaying it at the next
      // load would write over the torn entry and hide the tear from the firmware.
      if (this.sync) steps.push({ op: 'syncImage' }, { op: 'resetJournal' });
      steps.push({ op: 'torn', entry: batch.torn.entry, bytes: batch.torn.bytes }, { op: 'sever' });
    } else if (batch.sever) {
      steps.push({ op: 'sever' });
    } else if (batch.syncImage) {
      steps.push({ op: 'syncImage' });
    }
    return steps;
  }

  /** The journal step of a batch's first `entries` entries, wrapping to the start when it is full. */
  private journal(batch: Batch, entries: number): Step[] {
    let end = RECORD.HEADER_BYTES;
    for (let i = 0; i < entries; i++) end += entryBytes(batch.view.getUint32(end + 4, true));
    const record = padTo(end, RECORD.ALIGN);
    const steps: Step[] = [];
    if (this.journalAt > 0 && this.journalAt + record > JOURNAL_WRAP_BYTES) {
      steps.push({ op: 'syncImage' }); // what the records about to be overwritten held is in place for good
      this.journalAt = 0;
    }
    steps.push({ op: 'journal', at: this.journalAt, seq: this.journalSeq++, entries });
    this.journalAt += record;
    return steps;
  }

  private finished(batch: Batch, reply: Reply): void {
    this.running = undefined;
    this.counters.syncs += reply.syncs;
    const status = new Map<number, number>();
    for (const [i, errno] of reply.errors) {
      if (i < 0) for (let k = 0; k < batch.entries.length; k++) status.set(k, errno);
      else status.set(i, errno);
    }
    const landed = batch.torn ? batch.torn.entry : batch.entries.length;
    let failures = 0;
    for (let i = 0; i < landed; i++) {
      const s = status.get(i) ?? 0;
      batch.entries[i].status = s;
      batch.entries[i].done = true;
      if (s !== 0) failures++;
    }
    this.counters.written += reply.applied;
    if (failures > 0) this.failed(status.values().next().value!, failures);
    if (this.spare.length < SPARE_BUFFERS && batch.buf.byteLength === BATCH_BYTES) this.spare.push(batch.buf);
    if ((reply.severed || batch.torn || batch.sever) && !this.severed) { // a fault's cut, even if a failed call ended the batch first
      this.powerFail();
      this.onPowerLoss(batch.torn ? `NV fault: torn write (${batch.torn.bytes} of ${batch.torn.of} bytes landed)`
        : 'NV fault: power loss after the writes asked for');
    } else {
      this.submit();
    }
    if (!this.busy) for (const w of this.idleWaiters.splice(0)) w();
    this.onDone();
  }

  private failed(errno: number, n: number): void {
    this.counters.errors += n;
    if (this.reported.has(errno)) return;
    this.reported.add(errno);
    this.onError(`NV write failed: ${errnoName(errno)} (${n} entr${n === 1 ? 'y' : 'ies'}; later failures with this errno are counted, not logged)`);
  }

  // ---- reap: completions -------------------------------------------------------------------------

  /** Posts the completions of finished entries in ring order. Returns the entries completed. */
  reap(): number {
    const m = this.mem;
    let n = 0;
    while (this.entriesHead < this.entries.length) {
      const entry = this.entries[this.entriesHead];
      if (!entry.done) break;
      const cq = this.cqs[entry.iop];
      if (cq) {
        const c = cq.reserve();
        if (c < 0) break; // that IOP has not drained its completions: keep the order, wait
        m.setU32(c + A.NCQ_ID, entry.id);
        m.setU32(c + A.NCQ_STATUS, entry.status);
        cq.publish();
      }
      this.sq.release();
      this.entriesHead++;
      n++;
    }
    if (this.entriesHead > 4096 && this.entriesHead * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.entriesHead);
      this.entriesHead = 0;
    }
    return n;
  }

  /** Entries queued and not yet completed. */
  get queued(): number { return this.sq ? this.sq.used() : 0; }
  /** Completions ready to post. */
  get reapable(): boolean { return this.entriesHead < this.entries.length && this.entries[this.entriesHead].done; }
  /** A batch is being written or waits for the writer. */
  get busy(): boolean { return !this.severed && (this.running !== undefined || this.sealed.length > 0 || (this.open?.entries.length ?? 0) > 0); }

  /** Resolves when no batch is being written or waiting. */
  idle(): Promise<void> {
    if (!this.busy && !this.running) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  // ---- faults ------------------------------------------------------------------------------------

  inject(f: NvFault): void {
    if (f.type === 'error') this.error = { errno: f.errno, left: f.count ?? Infinity };
    else if (f.type === 'torn') this.torn = { bytes: f.bytes, skip: f.afterWrites ?? 0 };
    else if (f.afterWrites > 0) this.powerLossLeft = f.afterWrites;
    else if (!this.severed) {
      this.powerFail();
      this.onPowerLoss('NV fault: power loss');
    }
  }

  /** Clears the faults not yet fired. */
  heal(): void {
    this.error = undefined;
    this.torn = undefined;
    this.powerLossLeft = -1;
    this.reported.clear();
  }

  /** From now on nothing more reaches the file: what a power loss does to an NV write in flight. */
  powerFail(): void {
    this.severed = true;
    Atomics.store(new Int32Array(this.cut), 0, 1);
    this.open = undefined;
    this.sealed.length = 0;
    if (!this.running) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Waits for the writer's batch to end (a power cut ends it before its next call), then closes. */
  async close(): Promise<void> {
    if (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.writer?.release();
    this.writer = undefined;
    if (this.fd >= 0) fs.closeSync(this.fd);
    if (this.journalFd >= 0) fs.closeSync(this.journalFd);
    this.fd = -1;
    this.journalFd = -1;
  }
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(require('os').constants.errno as Record<string, number>).map(([k, v]) => [v, k]));
export function errnoName(errno: number): string { return ERRNO_NAMES.get(errno) ?? `errno ${errno}`; }
