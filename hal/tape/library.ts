// The tape library's mechanism (docs/tape.md): the robot, the drives and the cartridges. The
// firmware is the SCSI target; this binding is what it drives through the tape rings (one request
// in flight per device, the firmware's claim sees to that):
//   - cartridges are AWS tape images, <library dir>/<barcode>.aws; where each one is (slot, drive,
//     import/export element) is kept in <library dir>/library.json, rewritten after every move;
//   - the element table and each drive's status word and position in common memory are what the
//     robot's barcode reader and the drives' sensors report; the firmware only reads them;
//   - a timing model in virtual (or real) time: load and unload, the robot's move, locate/space and
//     rewind at the tape's locate rate, reads and writes at the streaming rate;
//   - faults: a write or read error at a logical object, the end of the medium at a size, a drive
//     offline — from the topology or the console (`fault <array> <drive> ...`).
// A request's effect on the image happens when it is due, its file I/O on libuv's pool (as the
// disk media's, hal/media); its completion is posted in the round after the call ended, so
// nothing is acknowledged that the image does not hold. A WRITE FILEMARKS with IMMED=0 (and a
// REWIND or UNLOAD) also waits for fdatasync: the filemark is a backup application's sync point.
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { EntryRing } from '../ring';
import { AwsImage } from './aws';
import type { LibrarySpec, TapeFault, TapeTiming } from '../../harness/topology';

interface Cartridge { barcode: string; bytes: number; writeProtect: boolean; image?: AwsImage }
interface Drive {
  index: number; // tape device index (changer is 0)
  name: string;
  element: number;
  cartridge?: Cartridge;
  threaded: boolean;
  loadingUntilNs: number;
  position: number;
  faults: TapeFault[];
  headOffset: number; // bytes from BOT where the head is (timing)
  file: number; // logical file identifier: tapemarks between BOT and the position
}
interface Request { op: number; id: number; count: number; addr: number; arg: number; arg2: number }
const WAITING = 0; // not yet due
const IN_IO = 1; // running (its image I/O on the pool)
const DONE = 2; // the completion can be posted
interface Pending {
  dev: number; r: Request; dueNs: number; state: number; status: number; done: number; length: number;
  data?: Buffer; // a write's records, copied at the doorbell
  out?: Buffer; // a read's data, copied into the command's buffer at the completion
}

const STATE_FILE = 'library.json';
/** library.json's address of a cartridge the operator took out through an import/export element. */
const OUTSIDE = -1;

export class TapeLibraryBinding {
  readonly drives: Drive[] = [];
  /** Element address -> the cartridge there. */
  private readonly where = new Map<number, Cartridge>();
  private readonly cartridges = new Map<string, Cartridge>();
  /** Element address -> where the cartridge came from (SValid). */
  private readonly source = new Map<number, number>();
  private readonly pending: Pending[] = [];
  /** Cartridges the operator took out of the library (export); import brings them back. */
  private readonly outside = new Set<Cartridge>();
  /** Operator accesses to the import/export elements (MTD_EVENTS of the changer: the firmware posts 28h/01h). */
  private events = 0;
  private readonly sq: EntryRing[] = [];
  private readonly cq: EntryRing[] = [];
  private severed = false;
  private robotFreeNs = 0;
  private calls = 0;
  private idleWaiters: Array<() => void> = [];
  /** Requests started, also those that ended at once: the deterministic driver waits for their I/O after such a round. */
  callsStarted = 0;
  /** Told when a request's I/O ends (a round posts its completion). */
  onDone: () => void = () => undefined;
  log: (m: string) => void = () => undefined;

  constructor(private readonly mem: CommonMemory, readonly spec: LibrarySpec) {
    fs.mkdirSync(spec.dir, { recursive: true });
    const devices = 1 + spec.drives.length;
    for (let d = 0; d < devices; d++) {
      const e = A.MAP_ADDR + A.MAP_TAPE_TABLE + d * A.MAP_TAPE_BYTES;
      this.sq.push(new EntryRing(mem, mem.u32(e + A.MTD_SQ)));
      this.cq.push(new EntryRing(mem, mem.u32(e + A.MTD_CQ)));
    }
    spec.drives.forEach((d, i) => this.drives.push({
      index: i + 1, name: d.name, element: A.ELEM_DRIVE_BASE + i, threaded: false, loadingUntilNs: 0, position: 0,
      faults: [...d.faults], headOffset: 0, file: 0,
    }));
    for (const c of spec.cartridges) this.cartridges.set(c.barcode, { barcode: c.barcode, bytes: c.bytes, writeProtect: c.writeProtect });
    this.place();
    this.publishElements();
    for (const d of this.drives) this.publishDrive(d);
  }

  // ---- Where the cartridges are -----------------------------------------------------------------------

  /** From the state file when there is one (cartridges stay where the last run left them), else the topology's slots. */
  private place(): void {
    const file = path.join(this.spec.dir, STATE_FILE);
    let saved: Record<string, number> = {};
    if (fs.existsSync(file)) {
      try { saved = JSON.parse(fs.readFileSync(file, 'utf8')).elements ?? {}; } catch (e) { this.log(`${file}: unreadable (${(e as Error).message}); cartridges go to their topology slots`); }
    }
    for (const [barcode, address] of Object.entries(saved)) {
      const c = this.cartridges.get(barcode);
      if (c && address === OUTSIDE) this.outside.add(c);
      else if (c && this.validAddress(address) && !this.where.has(address)) this.where.set(address, c);
    }
    this.spec.cartridges.forEach((s) => {
      const c = this.cartridges.get(s.barcode)!;
      if ([...this.where.values()].includes(c) || this.outside.has(c)) return;
      const address = A.ELEM_SLOT_BASE + s.slot;
      if (!this.where.has(address)) this.where.set(address, c);
      else this.log(`cartridge ${c.barcode}: slot ${s.slot} is taken; it is not in the library this run`);
    });
    // A cartridge in a drive after a restart is there unthreaded: a LOAD makes it ready.
    for (const d of this.drives) d.cartridge = this.where.get(d.element);
  }

  private validAddress(a: number): boolean {
    const s = this.spec;
    return (a >= A.ELEM_SLOT_BASE && a < A.ELEM_SLOT_BASE + s.slots) || (a >= A.ELEM_IE_BASE && a < A.ELEM_IE_BASE + s.importExport)
      || (a >= A.ELEM_DRIVE_BASE && a < A.ELEM_DRIVE_BASE + s.drives.length);
  }

  private saveState(): void {
    const elements: Record<string, number> = {};
    for (const [a, c] of this.where) elements[c.barcode] = a;
    for (const c of this.outside) elements[c.barcode] = OUTSIDE;
    const file = path.join(this.spec.dir, STATE_FILE);
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify({ elements }, null, 2)}\n`);
    fs.renameSync(`${file}.tmp`, file);
  }

  /** The element table in common memory, as the barcode reader sees the library now. */
  private publishElements(): void {
    const m = this.mem;
    const base = m.u32(A.MAP_ADDR + A.MAP_TAPE_ELEMENTS);
    const n = m.u32(A.MAP_ADDR + A.MAP_TAPE_ELEMENT_COUNT);
    for (let i = 0; i < n; i++) {
      const e = base + i * A.TEL_BYTES;
      const address = m.u16(e + A.TEL_ADDRESS);
      const c = this.where.get(address);
      m.setU8(e + A.TEL_FULL, c ? 1 : 0);
      m.setU16(e + A.TEL_SOURCE, c ? (this.source.get(address) ?? 0xffff) : 0xffff);
      m.u8.fill(0x20, e + A.TEL_VOLTAG, e + A.TEL_VOLTAG + A.TEL_VOLTAG_BYTES);
      if (c) m.u8.set(Buffer.from(c.barcode, 'ascii'), e + A.TEL_VOLTAG);
    }
  }

  private publishDrive(d: Drive, nowNs = 0): void {
    const e = A.MAP_ADDR + A.MAP_TAPE_TABLE + d.index * A.MAP_TAPE_BYTES;
    this.mem.store32(e + A.MTD_STATUS, this.statusWord(d, nowNs));
    this.mem.store32(e + A.MTD_POSITION, d.position);
    this.mem.store32(e + A.MTD_FILE, d.file);
  }

  private statusWord(d: Drive, nowNs: number): number {
    if (d.faults.some((f) => f.type === 'offline')) return A.TDST_OFFLINE;
    if (!d.cartridge) return A.TDST_EMPTY;
    let st = !d.threaded ? A.TDST_UNLOADED : d.loadingUntilNs > nowNs ? A.TDST_LOADING : A.TDST_READY;
    if (d.cartridge.writeProtect) st |= A.TDSF_WRITE_PROTECT;
    if (d.threaded && d.position === 0) st |= A.TDSF_BOT;
    if (d.threaded && this.pastEarlyWarning(d)) st |= A.TDSF_EW;
    return st;
  }

  // ---- Requests -----------------------------------------------------------------------------------------
  // A request is taken at its doorbell (a write's data is copied then: the firmware's buffer is
  // the command's, and an aborted command gives it back), is due after its service time, then runs:
  // the robot and head movements at once, the image I/O on libuv's pool. Its completion is posted
  // at the start of the round after it ended, so nothing is acknowledged that the image lacks, and
  // in deterministic mode when an I/O ends never decides the round that posts it.

  /** The device's doorbell: takes its request and schedules it. */
  take(dev: number, nowNs: number): number {
    let work = 0;
    const sq = this.sq[dev];
    for (let e = sq?.peek() ?? -1; e >= 0; e = sq.peek()) {
      const m = this.mem;
      const r: Request = {
        op: m.u8At(e + A.TSQ_OP), id: m.u32(e + A.TSQ_ID), count: m.view.getInt32(e + A.TSQ_COUNT, true),
        addr: m.u32(e + A.TSQ_ADDR), arg: m.u32(e + A.TSQ_ARG), arg2: m.u32(e + A.TSQ_ARG2),
      };
      sq.release();
      const p: Pending = { dev, r, dueNs: nowNs + this.serviceNs(dev, r, nowNs), state: WAITING, status: A.TST_OK, done: 0, length: 0 };
      if (this.cancelled(p)) { p.dueNs = nowNs; p.status = A.TST_IO_ERROR; } // its holder went away before we saw it: nothing happens
      else if (r.op === A.TOP_WRITE && r.count > 0) {
        if (r.addr + r.count > this.mem.byteLength) p.status = A.TST_IO_ERROR;
        else p.data = Buffer.from(this.mem.bytes(r.addr, r.count)); // the command's buffer is its own only until it ends
      }
      this.pending.push(p);
      work++;
    }
    // A request whose holder went away (the firmware rang to say so) and that has not started ends
    // now, having done nothing: an aborted REWIND stops the tape where it is.
    for (const p of this.pending) {
      if (p.dev !== dev || p.state !== WAITING || p.status !== A.TST_OK || !this.cancelled(p)) continue;
      p.dueNs = nowNs;
      p.status = A.TST_IO_ERROR;
      work++;
    }
    return work;
  }

  /** The firmware has told us (MTD_CANCEL) that the request's holder went away: its buffer is not ours to touch. */
  private cancelled(p: Pending): boolean {
    return this.mem.load32(A.MAP_ADDR + A.MAP_TAPE_TABLE + p.dev * A.MAP_TAPE_BYTES + A.MTD_CANCEL) === p.r.id;
  }

  /** Posts the completions of requests that ended, then starts those that are due. */
  service(nowNs: number): number {
    let work = this.reap(nowNs);
    for (const p of this.pending) {
      if (p.state !== WAITING || p.dueNs > nowNs || this.severed) continue;
      this.start(p, nowNs);
      work++;
    }
    // A drive whose load time has passed reports ready.
    for (const d of this.drives) if (d.loadingUntilNs !== 0 && d.loadingUntilNs <= nowNs) { d.loadingUntilNs = 0; this.publishDrive(d, nowNs); work++; }
    return work;
  }

  private reap(nowNs: number): number {
    let work = 0;
    for (let i = 0; i < this.pending.length;) {
      const p = this.pending[i];
      if (p.state !== DONE) { i++; continue; }
      const e = this.cq[p.dev].reserve();
      if (e < 0) { i++; continue; }
      const m = this.mem;
      m.u8.fill(0, e, e + A.TCQ_BYTES);
      if (p.out && p.out.length > 0 && !this.cancelled(p)) m.u8.set(p.out, p.r.addr); // a read's data, unless its command is gone
      m.setU32(e + A.TCQ_ID, p.r.id);
      m.setU16(e + A.TCQ_STATUS, p.status);
      m.setU32(e + A.TCQ_DONE, p.done);
      m.setU32(e + A.TCQ_LENGTH, p.length);
      if (p.dev > 0) {
        const d = this.drives[p.dev - 1];
        m.setU16(e + A.TCQ_FLAGS, this.statusWord(d, nowNs) >> 8);
        m.setU32(e + A.TCQ_POSITION, d.position);
        this.publishDrive(d, nowNs);
      }
      this.cq[p.dev].publish();
      this.pending.splice(i, 1);
      work++;
    }
    return work;
  }

  /** Runs a due request: at once (robot, head movement), or its image I/O on the pool. */
  private start(p: Pending, nowNs: number): void {
    p.state = IN_IO;
    this.calls++;
    this.callsStarted++;
    const run = async (): Promise<void> => {
      if (p.status !== A.TST_OK || this.cancelled(p) && p.r.op !== A.TOP_WRITE) { if (p.status === A.TST_OK) p.status = A.TST_IO_ERROR; return; }
      p.status = p.dev === 0 ? this.robot(p.r) : await this.drive(this.drives[p.dev - 1], p, nowNs);
    };
    run().catch((x: Error) => {
      this.log(`tape device ${p.dev}: ${x.message}`);
      p.status = A.TST_IO_ERROR;
    }).finally(() => {
      this.calls--;
      p.state = DONE;
      p.data = undefined;
      if (this.calls === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.onDone();
    });
  }

  nextTimerNs(): number {
    let t = Infinity;
    for (const p of this.pending) {
      if (p.state === DONE) return 0;
      if (p.state === WAITING) t = Math.min(t, p.dueNs);
    }
    for (const d of this.drives) if (d.loadingUntilNs !== 0) t = Math.min(t, d.loadingUntilNs);
    return t;
  }
  get busy(): boolean { return this.pending.length > 0; }
  /** Image I/O in flight on the pool: the deterministic driver waits for it before its next round. */
  get ioBusy(): boolean { return this.calls > 0; }
  /** Resolves when no image I/O is in flight (then the images may be closed). */
  idle(): Promise<void> { return this.calls === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r)); }
  busyNames(): string[] { return [...new Set(this.pending.map((p) => (p.dev === 0 ? `${this.spec.name} robot` : `tape drive ${this.drives[p.dev - 1].name}`)))]; }

  // ---- The timing model ----------------------------------------------------------------------------------

  private serviceNs(dev: number, r: Request, nowNs: number): number {
    const t: TapeTiming = this.spec.timing;
    if (dev === 0) {
      const start = Math.max(nowNs, this.robotFreeNs);
      const unload = this.fromThreadedDrive(r) ? t.unloadMs * 1e6 : 0;
      this.robotFreeNs = start + unload + t.moveMs * 1e6; // a move, or a scan of the barcodes
      return this.robotFreeNs - nowNs;
    }
    const d = this.drives[dev - 1];
    const img = d.cartridge?.image;
    const locate = (to: number) => (Math.abs(to - d.headOffset) / (t.locateMBps * 1e6)) * 1e9;
    switch (r.op) {
      case A.TOP_READ: case A.TOP_WRITE: return (Math.max(r.count, 1) / (t.streamMBps * 1e6)) * 1e9;
      case A.TOP_LOAD: return d.threaded ? 0 : t.loadMs * 1e6;
      case A.TOP_UNLOAD: return (img ? locate(0) : 0) + (d.threaded ? t.unloadMs * 1e6 : 0);
      case A.TOP_REWIND: return img ? locate(0) : 0;
      case A.TOP_SPACE_EOD: return img ? locate(img.end) : 0;
      case A.TOP_SPACE_BLOCKS: case A.TOP_SPACE_MARKS: return img ? locate(img.offsetOf(Math.max(0, d.position + r.count))) : 0;
      case A.TOP_LOCATE: { const to = img ? this.locateTarget(img, r) : 0; return img ? locate(img.offsetOf(to < 0 ? img.objects.length : to)) : 0; }
      default: return 0;
    }
  }

  private fromThreadedDrive(r: Request): boolean {
    const d = this.drives.find((x) => x.element === r.arg);
    return r.op === A.TOP_MOVE && d !== undefined && d.threaded;
  }

  // ---- The robot -------------------------------------------------------------------------------------------

  private robot(r: Request): number {
    if (r.op === A.TOP_INVENTORY) { this.publishElements(); return A.TST_OK; }
    if (r.op !== A.TOP_MOVE) return A.TST_BAD_ELEMENT;
    if (!this.validAddress(r.arg) || !this.validAddress(r.arg2)) return A.TST_BAD_ELEMENT;
    const c = this.where.get(r.arg);
    if (!c) return A.TST_SOURCE_EMPTY;
    if (this.where.has(r.arg2)) return A.TST_DEST_FULL;
    const from = this.drives.find((x) => x.element === r.arg);
    const to = this.drives.find((x) => x.element === r.arg2);
    if ((from && from.faults.some((f) => f.type === 'offline')) || (to && to.faults.some((f) => f.type === 'offline'))) return A.TST_OFFLINE;
    if (from) this.eject(from);
    this.where.delete(r.arg);
    this.where.set(r.arg2, c);
    this.source.set(r.arg2, r.arg >= A.ELEM_DRIVE_BASE && r.arg < A.ELEM_SLOT_BASE ? (this.source.get(r.arg) ?? r.arg) : r.arg);
    this.source.delete(r.arg);
    if (to) this.insert(to, c);
    try { this.saveState(); } catch (x) { this.log(`library state: ${(x as Error).message}`); return A.TST_IO_ERROR; }
    this.publishElements();
    return A.TST_OK;
  }

  /** A cartridge put in a drive is threaded by the drive itself (as real drives do), taking the load time. */
  private insert(d: Drive, c: Cartridge): void {
    d.cartridge = c;
    d.threaded = false;
    d.position = 0;
    d.file = 0;
    d.headOffset = 0;
    this.publishDrive(d);
  }

  private eject(d: Drive): void {
    d.cartridge?.image?.close();
    if (d.cartridge) d.cartridge.image = undefined;
    d.cartridge = undefined;
    d.threaded = false;
    d.position = 0;
    d.file = 0;
    this.publishDrive(d);
  }

  // ---- The drives ------------------------------------------------------------------------------------------

  private async drive(d: Drive, p: Pending, nowNs: number): Promise<number> {
    const r = p.r;
    if (d.faults.some((f) => f.type === 'offline')) return A.TST_OFFLINE;
    if (!d.cartridge) return A.TST_NO_MEDIUM;
    if (r.op === A.TOP_LOAD) return this.thread(d);
    if (r.op === A.TOP_UNLOAD) {
      if (d.cartridge.image) await d.cartridge.image.sync(); // buffered records reach the medium before it leaves (SSC-3 LOAD UNLOAD)
      d.threaded = false; d.position = 0; d.file = 0; d.headOffset = 0; d.cartridge.image?.close(); d.cartridge.image = undefined;
      return A.TST_OK;
    }
    if (!d.threaded || !d.cartridge.image) return A.TST_NOT_LOADED;
    const img = d.cartridge.image;
    try {
      switch (r.op) {
        case A.TOP_READ: return await this.read(d, img, p);
        case A.TOP_WRITE: return await this.write(d, img, p);
        case A.TOP_WRITE_MARKS: return await this.writeMarks(d, img, p);
        case A.TOP_SYNC: await img.sync(); return A.TST_OK;
        case A.TOP_SPACE_BLOCKS: case A.TOP_SPACE_MARKS: return this.space(d, img, p);
        case A.TOP_SPACE_EOD: this.moveTo(d, img, img.objects.length); return A.TST_OK;
        case A.TOP_LOCATE: {
          const to = this.locateTarget(img, r);
          this.moveTo(d, img, to < 0 ? img.objects.length : to);
          return to < 0 ? A.TST_EOD : A.TST_OK;
        }
        case A.TOP_REWIND: await img.sync(); this.moveTo(d, img, 0); return A.TST_OK;
        case A.TOP_ERASE:
          if (d.cartridge.writeProtect) return A.TST_PROTECTED;
          await img.truncateAtAsync(d.position);
          return A.TST_OK;
        default: return A.TST_IO_ERROR;
      }
    } catch (x) {
      this.log(`tape drive ${d.name}, cartridge ${d.cartridge.barcode}: ${(x as Error).message}`);
      return A.TST_IO_ERROR;
    }
  }

  /**
   * Where a LOCATE goes: logical object ARG (ARG2 its high half), or the first object of logical
   * file ARG (COUNT 1); -1 when that is beyond the end of data (the head then stops at it).
   */
  private locateTarget(img: AwsImage, r: Request): number {
    if (r.arg2 !== 0) return -1;
    if (r.count === 0) return r.arg <= img.objects.length ? r.arg : -1;
    return img.fileStart(r.arg);
  }

  /** The head to object `pos`: position, logical file identifier, where the head is. */
  private moveTo(d: Drive, img: AwsImage, pos: number): void {
    d.position = pos;
    d.file = img.marksBefore(pos);
    d.headOffset = img.offsetOf(pos);
  }

  /** LOAD: the image is opened and indexed (on the pool, a window of headers at a time: aws.ts), then the drive is at BOT. */
  private async thread(d: Drive): Promise<number> {
    const c = d.cartridge!;
    if (!d.threaded) {
      try {
        c.image = await AwsImage.open(this.imagePath(c.barcode));
      } catch (x) {
        this.log(`cartridge ${c.barcode}: ${(x as Error).message}`);
        return A.TST_IO_ERROR;
      }
      if (c.image.tornBytes > 0) this.log(`cartridge ${c.barcode}: ${c.image.tornBytes} byte(s) of a write torn by a crash dropped from the end of the image`);
      d.threaded = true;
    }
    d.position = 0;
    d.file = 0;
    d.headOffset = 0;
    return A.TST_OK;
  }

  private capacity(d: Drive): number {
    const f = d.faults.find((x) => x.type === 'endOfMedium');
    return f && f.type === 'endOfMedium' ? Math.min(f.bytes, d.cartridge!.bytes) : d.cartridge!.bytes;
  }
  private pastEarlyWarning(d: Drive): boolean {
    const img = d.cartridge?.image;
    return img !== undefined && img.offsetOf(d.position) >= this.capacity(d) - this.spec.earlyWarningBytes;
  }

  /**
   * The outcome is decided from the index (marks, the end of data, record lengths, faults); then
   * the records delivered are read in one call and handed over at the completion (p.out).
   */
  private async read(d: Drive, img: AwsImage, p: Pending): Promise<number> {
    const r = p.r;
    const bs = r.arg;
    const records = bs === 0 ? 1 : Math.floor(r.count / bs);
    const first = d.position;
    let pos = first;
    let done = 0;
    let length = bs;
    let status = A.TST_OK;
    let deliver = 0; // records whose data goes to the host
    for (let k = 0; k < records; k++) {
      if (pos >= img.objects.length) { status = A.TST_EOD; length = 0; break; }
      const o = img.objects[pos];
      pos++;
      if (o.mark) { status = A.TST_TAPEMARK; length = 0; break; }
      if (d.faults.some((f) => f.type === 'readError' && f.block === pos - 1)) { status = A.TST_READ_ERROR; length = 0; break; }
      deliver++;
      if (bs === 0) { done = 1; length = o.length; break; }
      if (o.length !== bs) { length = o.length; break; }
      done++;
    }
    if (deliver > 0) {
      const from = img.objects[first].offset;
      const span = await img.readSpan(from, img.endOf(first + deliver - 1));
      const out = Buffer.alloc(bs === 0 ? Math.min(r.count, img.objects[first].length) : deliver * bs);
      for (let k = 0; k < deliver; k++) {
        const rec = img.recordFrom(span, from, first + k, bs === 0 ? r.count : bs);
        rec.copy(out, k * bs);
      }
      p.out = out;
    }
    this.moveTo(d, img, pos);
    p.done = done;
    p.length = length;
    return status;
  }

  private async write(d: Drive, img: AwsImage, p: Pending): Promise<number> {
    const r = p.r;
    if (d.cartridge!.writeProtect) return A.TST_PROTECTED;
    const data = p.data ?? Buffer.alloc(0);
    const bs = r.arg === 0 ? r.count : r.arg;
    const records: Uint8Array[] = [];
    for (let off = 0; off < r.count; off += bs) records.push(data.subarray(off, off + bs));
    let status = A.TST_OK;
    let n = records.length;
    const bad = d.faults.find((f) => f.type === 'writeError' && f.block >= d.position && f.block < d.position + n);
    if (bad && bad.type === 'writeError') { n = bad.block - d.position; status = A.TST_WRITE_ERROR; }
    // Room: a record that would pass the physical end is not written (nor any after it).
    let end = img.offsetOf(d.position);
    for (let k = 0; k < n; k++) {
      end += records[k].length + 6 * Math.max(1, Math.ceil(records[k].length / 0xffff));
      if (end > this.capacity(d)) { n = k; status = A.TST_EOM; break; }
    }
    if (n > 0) await img.writeRecordsAsync(d.position, records.slice(0, n));
    else await img.truncateAtAsync(d.position);
    this.moveTo(d, img, d.position + n);
    p.done = r.arg === 0 ? (n > 0 ? 1 : 0) : n;
    return status;
  }

  /** Filemarks; with ARG 1 (a WRITE FILEMARKS with IMMED=0) the image is made durable before the completion. */
  private async writeMarks(d: Drive, img: AwsImage, p: Pending): Promise<number> {
    const r = p.r;
    if (d.cartridge!.writeProtect) return A.TST_PROTECTED;
    const room = Math.floor((this.capacity(d) - img.offsetOf(d.position)) / 6);
    const n = Math.max(0, Math.min(r.count, room));
    await img.writeMarksAsync(d.position, n);
    this.moveTo(d, img, d.position + n);
    if (r.arg === 1) await img.sync();
    p.done = n;
    return n < r.count ? A.TST_EOM : A.TST_OK;
  }

  private space(d: Drive, img: AwsImage, p: Pending): number {
    const r = p.r;
    const marks = r.op === A.TOP_SPACE_MARKS;
    const step = r.count < 0 ? -1 : 1;
    let pos = d.position;
    let done = 0;
    let status = A.TST_OK;
    while (done < Math.abs(r.count)) {
      if (step > 0 && pos >= img.objects.length) { status = A.TST_EOD; break; }
      if (step < 0 && pos === 0) { status = A.TST_BOT; break; }
      const o = img.objects[step > 0 ? pos : pos - 1];
      pos += step;
      if (marks) { if (o.mark) done++; continue; }
      if (o.mark) { status = A.TST_TAPEMARK; break; } // positioned past the mark (or before it going back)
      done++;
    }
    this.moveTo(d, img, pos);
    p.done = done;
    return status;
  }

  // ---- The operator at the import/export elements -------------------------------------------------------

  /**
   * "import <barcode>" puts a cartridge taken out before into the first empty import/export
   * element; "export <barcode>" takes one out of its import/export element. Either is an access
   * the changer reports to every host (28h/01h).
   */
  operator(text: string): void {
    const m = /^\s*\S+\s+(import|export)\s+(\S+)\s*$/.exec(text);
    if (!m) throw new Error(`cannot parse ${JSON.stringify(text)}: expected "${this.spec.name} import <barcode>" or "${this.spec.name} export <barcode>"`);
    const c = this.cartridges.get(m[2]);
    if (!c) throw new Error(`no cartridge ${m[2]} in library ${this.spec.name} (cartridges: ${[...this.cartridges.keys()].join(', ')})`);
    const ie = Array.from({ length: this.spec.importExport }, (_, i) => A.ELEM_IE_BASE + i);
    if (m[1] === 'import') {
      if (!this.outside.has(c)) throw new Error(`cartridge ${c.barcode} is in the library already`);
      const free = ie.find((a) => !this.where.has(a));
      if (free === undefined) throw new Error(`library ${this.spec.name}: every import/export element is full`);
      this.outside.delete(c);
      this.where.set(free, c);
      this.source.delete(free);
    } else {
      const at = ie.find((a) => this.where.get(a) === c);
      if (at === undefined) throw new Error(`cartridge ${c.barcode} is not in an import/export element (MOVE MEDIUM it there first)`);
      this.where.delete(at);
      this.source.delete(at);
      this.outside.add(c);
    }
    this.saveState();
    this.publishElements();
    this.events++;
    this.mem.store32(A.MAP_ADDR + A.MAP_TAPE_TABLE + A.MTD_EVENTS, this.events);
  }

  // ---- Faults, power, stop ---------------------------------------------------------------------------------

  driveNamed(name: string): Drive | undefined { return this.drives.find((d) => d.name === name); }

  inject(name: string, f: TapeFault): void {
    const d = this.drives.find((x) => x.name === name)!;
    d.faults.push(f);
    this.publishDrive(d);
  }
  heal(name: string): void {
    const d = this.drives.find((x) => x.name === name)!;
    d.faults.length = 0;
    this.publishDrive(d);
  }

  /** After a power failure nothing more reaches the images. */
  powerFail(): void { this.severed = true; }

  close(): void {
    for (const d of this.drives) { d.cartridge?.image?.close(); if (d.cartridge) d.cartridge.image = undefined; }
  }

  /** For sanctl/tests: every cartridge's image path. */
  imagePath(barcode: string): string { return path.join(this.spec.dir, `${barcode}.aws`); }
}
