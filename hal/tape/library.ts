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
// A request's effect on the image happens when it is due, on the array's thread (records are at
// most the drive's block limit, written with one writev); its completion is posted in the same step,
// after the call returned, so nothing is acknowledged that the image does not hold.
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
}
interface Request { op: number; id: number; count: number; addr: number; arg: number; arg2: number }
interface Pending { dev: number; r: Request; dueNs: number }

const STATE_FILE = 'library.json';

export class TapeLibraryBinding {
  readonly drives: Drive[] = [];
  /** Element address -> the cartridge there. */
  private readonly where = new Map<number, Cartridge>();
  private readonly cartridges = new Map<string, Cartridge>();
  /** Element address -> where the cartridge came from (SValid). */
  private readonly source = new Map<number, number>();
  private readonly pending: Pending[] = [];
  private readonly sq: EntryRing[] = [];
  private readonly cq: EntryRing[] = [];
  private severed = false;
  private robotFreeNs = 0;
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
      faults: [...d.faults], headOffset: 0,
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
      if (c && this.validAddress(address) && !this.where.has(address)) this.where.set(address, c);
    }
    this.spec.cartridges.forEach((s) => {
      const c = this.cartridges.get(s.barcode)!;
      if ([...this.where.values()].includes(c)) return;
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
      this.pending.push({ dev, r, dueNs: nowNs + this.serviceNs(dev, r, nowNs) });
      work++;
    }
    return work;
  }

  /** Runs the requests that are due and posts their completions. */
  service(nowNs: number): number {
    let work = 0;
    for (let i = 0; i < this.pending.length;) {
      const p = this.pending[i];
      if (p.dueNs > nowNs || this.severed) { i++; continue; }
      const e = this.cq[p.dev].reserve();
      if (e < 0) { i++; continue; }
      this.mem.u8.fill(0, e, e + A.TCQ_BYTES);
      const r = p.dev === 0 ? this.robot(p.r, e) : this.drive(this.drives[p.dev - 1], p.r, e, nowNs);
      this.mem.setU32(e + A.TCQ_ID, p.r.id);
      this.mem.setU16(e + A.TCQ_STATUS, r);
      if (p.dev > 0) {
        const d = this.drives[p.dev - 1];
        this.mem.setU16(e + A.TCQ_FLAGS, this.statusWord(d, nowNs) >> 8);
        this.mem.setU32(e + A.TCQ_POSITION, d.position);
        this.publishDrive(d, nowNs);
      }
      this.cq[p.dev].publish();
      this.pending.splice(i, 1);
      work++;
    }
    // A drive whose load time has passed reports ready.
    for (const d of this.drives) if (d.loadingUntilNs !== 0 && d.loadingUntilNs <= nowNs) { d.loadingUntilNs = 0; this.publishDrive(d, nowNs); work++; }
    return work;
  }

  nextTimerNs(): number {
    let t = Infinity;
    for (const p of this.pending) t = Math.min(t, p.dueNs);
    for (const d of this.drives) if (d.loadingUntilNs !== 0) t = Math.min(t, d.loadingUntilNs);
    return t;
  }
  get busy(): boolean { return this.pending.length > 0; }
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
      default: return 0;
    }
  }

  private fromThreadedDrive(r: Request): boolean {
    const d = this.drives.find((x) => x.element === r.arg);
    return r.op === A.TOP_MOVE && d !== undefined && d.threaded;
  }

  // ---- The robot -------------------------------------------------------------------------------------------

  private robot(r: Request, e: number): number {
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
    void e;
    return A.TST_OK;
  }

  /** A cartridge put in a drive is threaded by the drive itself (as real drives do), taking the load time. */
  private insert(d: Drive, c: Cartridge): void {
    d.cartridge = c;
    d.threaded = false;
    d.position = 0;
    d.headOffset = 0;
    this.publishDrive(d);
  }

  private eject(d: Drive): void {
    d.cartridge?.image?.close();
    if (d.cartridge) d.cartridge.image = undefined;
    d.cartridge = undefined;
    d.threaded = false;
    d.position = 0;
    this.publishDrive(d);
  }

  // ---- The drives ------------------------------------------------------------------------------------------

  private drive(d: Drive, r: Request, e: number, nowNs: number): number {
    if (d.faults.some((f) => f.type === 'offline')) return A.TST_OFFLINE;
    if (!d.cartridge) return A.TST_NO_MEDIUM;
    if (r.op === A.TOP_LOAD) return this.thread(d, nowNs);
    if (r.op === A.TOP_UNLOAD) { d.threaded = false; d.position = 0; d.headOffset = 0; d.cartridge.image?.close(); d.cartridge.image = undefined; return A.TST_OK; }
    if (!d.threaded || !d.cartridge.image) return A.TST_NOT_LOADED;
    const img = d.cartridge.image;
    try {
      switch (r.op) {
        case A.TOP_READ: return this.read(d, img, r, e);
        case A.TOP_WRITE: return this.write(d, img, r, e);
        case A.TOP_WRITE_MARKS: return this.writeMarks(d, img, r, e);
        case A.TOP_SPACE_BLOCKS: case A.TOP_SPACE_MARKS: return this.space(d, img, r, e);
        case A.TOP_SPACE_EOD: d.position = img.objects.length; d.headOffset = img.end; return A.TST_OK;
        case A.TOP_REWIND: d.position = 0; d.headOffset = 0; return A.TST_OK;
        case A.TOP_ERASE:
          if (d.cartridge.writeProtect) return A.TST_PROTECTED;
          img.truncateAt(d.position);
          return A.TST_OK;
        default: return A.TST_IO_ERROR;
      }
    } catch (x) {
      this.log(`tape drive ${d.name}, cartridge ${d.cartridge.barcode}: ${(x as Error).message}`);
      return A.TST_IO_ERROR;
    }
  }

  private thread(d: Drive, nowNs: number): number {
    const c = d.cartridge!;
    if (!d.threaded) {
      try {
        c.image = new AwsImage(path.join(this.spec.dir, `${c.barcode}.aws`));
      } catch (x) {
        this.log(`cartridge ${c.barcode}: ${(x as Error).message}`);
        return A.TST_IO_ERROR;
      }
      if (c.image.tornBytes > 0) this.log(`cartridge ${c.barcode}: ${c.image.tornBytes} byte(s) of a write torn by a crash dropped from the end of the image`);
      d.threaded = true;
      void nowNs;
    }
    d.position = 0;
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

  private read(d: Drive, img: AwsImage, r: Request, e: number): number {
    const bs = r.arg;
    const records = bs === 0 ? 1 : Math.floor(r.count / bs);
    let done = 0;
    for (let k = 0; k < records; k++) {
      if (d.position >= img.objects.length) return this.finish(d, img, e, done, 0, A.TST_EOD);
      const o = img.objects[d.position];
      d.position++;
      if (o.mark) return this.finish(d, img, e, done, 0, A.TST_TAPEMARK);
      if (d.faults.some((f) => f.type === 'readError' && f.block === d.position - 1)) return this.finish(d, img, e, done, 0, A.TST_READ_ERROR);
      const room = bs === 0 ? r.count : bs;
      const length = img.readRecord(d.position - 1, this.mem.bytes(r.addr + done * bs, Math.min(room, o.length)));
      if (bs !== 0 && length !== bs) return this.finish(d, img, e, done, length, A.TST_OK);
      done++;
      if (bs === 0) return this.finish(d, img, e, done, length, A.TST_OK);
    }
    return this.finish(d, img, e, done, bs, A.TST_OK);
  }

  private finish(d: Drive, img: AwsImage, e: number, done: number, length: number, status: number): number {
    this.mem.setU32(e + A.TCQ_DONE, done);
    this.mem.setU32(e + A.TCQ_LENGTH, length);
    d.headOffset = img.offsetOf(d.position);
    return status;
  }

  private write(d: Drive, img: AwsImage, r: Request, e: number): number {
    if (d.cartridge!.writeProtect) return A.TST_PROTECTED;
    const bs = r.arg === 0 ? r.count : r.arg;
    const records: Uint8Array[] = [];
    for (let off = 0; off < r.count; off += bs) records.push(this.mem.bytes(r.addr + off, bs));
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
    if (n > 0) img.writeRecords(d.position, records.slice(0, n));
    else img.truncateAt(d.position);
    d.position += n;
    return this.finish(d, img, e, r.arg === 0 ? (n > 0 ? 1 : 0) : n, 0, status);
  }

  private writeMarks(d: Drive, img: AwsImage, r: Request, e: number): number {
    if (d.cartridge!.writeProtect) return A.TST_PROTECTED;
    const room = Math.floor((this.capacity(d) - img.offsetOf(d.position)) / 6);
    const n = Math.max(0, Math.min(r.count, room));
    img.writeMarks(d.position, n);
    d.position += n;
    return this.finish(d, img, e, n, 0, n < r.count ? A.TST_EOM : A.TST_OK);
  }

  private space(d: Drive, img: AwsImage, r: Request, e: number): number {
    const marks = r.op === A.TOP_SPACE_MARKS;
    const step = r.count < 0 ? -1 : 1;
    let done = 0;
    while (done < Math.abs(r.count)) {
      if (step > 0 && d.position >= img.objects.length) return this.finish(d, img, e, done, 0, A.TST_EOD);
      if (step < 0 && d.position === 0) return this.finish(d, img, e, done, 0, A.TST_BOT);
      const o = img.objects[step > 0 ? d.position : d.position - 1];
      d.position += step;
      if (marks) { if (o.mark) done++; continue; }
      if (o.mark) return this.finish(d, img, e, done, 0, A.TST_TAPEMARK); // positioned past the mark (or before it going back)
      done++;
    }
    return this.finish(d, img, e, done, 0, A.TST_OK);
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
