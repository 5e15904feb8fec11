// Non-volatile memory backed by a file (docs/hal.md, Non-volatile memory). The NV region of common
// memory is loaded from the file before boot; afterwards the file follows the region through the
// array's one NV submission ring, applied strictly in order, each entry a synchronous pwrite (and
// an fsync with "sync"), then a completion to the CQ of the IOP that queued it.
import * as fs from 'fs';
import * as path from 'path';
import * as A from './abi';
import { CommonMemory } from './memory';
import { EntryRing } from './ring';

/** A fault of the NV file for tests and the simulator: the next `count` writes (all, until heal) fail with errno. */
export type NvFault = { type: 'error'; errno: number; count?: number };

export class NvBinding {
  private fd = -1;
  readonly base: number;
  readonly bytes: number;
  private sq!: EntryRing;
  private cqs: EntryRing[] = [];
  /** Set by powerFail(): the file no longer follows the memory (an emulated loss of power). */
  private severed = false;
  private fault: NvFault | undefined;

  constructor(private readonly mem: CommonMemory, readonly file: string, private readonly sync: boolean) {
    this.base = mem.u32(A.MAP_ADDR + A.MAP_NV_ADDR);
    this.bytes = mem.u32(A.MAP_ADDR + A.MAP_NV_BYTES);
  }

  /**
   * Opens (or creates) the file and loads it into the region. Returns the bytes loaded: 0 for a
   * new file. A file of another size (another cache geometry) is loaded as far as both reach; the
   * firmware checks the geometry it records and refuses dirty data it cannot place.
   */
  load(): number {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const existed = fs.existsSync(this.file);
    this.fd = fs.openSync(this.file, existed ? 'r+' : 'w+');
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
    if (size !== this.bytes) fs.ftruncateSync(this.fd, this.bytes);
    return loaded;
  }

  /** Attaches the rings once the IOPs are booted (the map holds them from layout() on). */
  attach(iops: number): void {
    this.sq = new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.MAP_NV_SQ));
    this.cqs = [];
    for (let i = 0; i < iops; i++) {
      this.cqs.push(new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.MAP_IOP_TABLE + i * A.MAP_IOP_BYTES + A.MIOP_NV_CQ)));
    }
  }

  /** Applies queued persists in order. Returns the entries done. */
  service(): number {
    const m = this.mem;
    let n = 0;
    for (let e = this.sq.peek(); e >= 0; e = this.sq.peek()) {
      const iop = m.u8At(e + A.NSQ_IOP);
      const cq = this.cqs[iop];
      const c = cq?.reserve() ?? -1;
      if (cq && c < 0) break; // that IOP has not drained its completions: keep the order, wait
      const status = this.apply(e);
      if (cq) {
        m.setU32(c + A.NCQ_ID, m.u32(e + A.NSQ_ID));
        m.setU32(c + A.NCQ_STATUS, status);
        cq.publish();
      }
      this.sq.release();
      n++;
    }
    return n;
  }

  get queued(): number { return this.sq ? this.sq.used() : 0; }

  /** From now on writes fail with f.errno (f.count of them, or all until heal()). */
  inject(f: NvFault): void { this.fault = { ...f }; }
  heal(): void { this.fault = undefined; }

  private apply(e: number): number {
    if (this.severed) return 0;
    const f = this.fault;
    if (f) {
      if (f.count !== undefined && --f.count <= 0) this.fault = undefined;
      return f.errno;
    }
    const m = this.mem;
    const op = m.u8At(e + A.NSQ_OP);
    const addr = m.u32(e + A.NSQ_ADDR);
    const length = m.u32(e + A.NSQ_LENGTH);
    const offset = addr - this.base;
    if (offset < 0 || offset + length > this.bytes) return 22; // EINVAL: outside the NV region
    try {
      if (op === A.NOP_RANGE) writeAll(this.fd, m.u8, addr, length, offset);
      else if (op === A.NOP_INLINE && length <= A.NSQ_INLINE_MAX) writeAll(this.fd, m.u8, e + A.NSQ_INLINE, length, offset);
      else return 22;
      if (this.sync || (m.u16(e + A.NSQ_FLAGS) & A.NSQF_SYNC) !== 0) fs.fdatasyncSync(this.fd);
    } catch (err) {
      return (err as NodeJS.ErrnoException).errno ? Math.abs((err as NodeJS.ErrnoException).errno!) : 5;
    }
    return 0;
  }

  /** From now on nothing more reaches the file: what a power loss does to an NV write in flight. */
  powerFail(): void { this.severed = true; }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function writeAll(fd: number, src: Uint8Array, at: number, length: number, position: number): void {
  let done = 0;
  while (done < length) done += fs.writeSync(fd, src, at + done, length - done, position + done);
}
