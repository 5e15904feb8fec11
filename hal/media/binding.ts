// The device side of one medium (docs/hal.md, Media): takes requests off the medium's submission
// ring, moves the data between the store and the cache slot named in the request, and posts a
// completion with the request's id. Optional layers, in the order they apply:
//   timing  a service time from a seek curve, rotational latency and transfer rate, one request
//           at a time like one head; completions are posted when that time (virtual or real) is due
//   faults  read/write errors at chosen sectors, a latency factor, a dead medium; set in the
//           topology or injected while running
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { EntryRing } from '../ring';
import { Prng } from '../prng';
import type { MediumStore } from './store';
import type { FaultSpec, TimingSpec } from '../../harness/topology';

/** Service time of a request when the medium has no timing model but a "slow" fault: 100 µs × factor. */
const NOMINAL_SERVICE_NS = 100_000;

interface Pending { entry: Request; dueNs: number }
interface Request { op: number; id: number; lba: number; sectors: number; addr: number }

export class MediumBinding {
  readonly sq: EntryRing;
  readonly cq: EntryRing;
  readonly sectors: number;
  private readonly faults: FaultSpec[];
  private readonly pending: Pending[] = [];
  /** Where the head is after the last request (timing model). */
  private headLba = 0;
  /** When the head is free again (timing model: one request at a time). */
  private busyUntilNs = 0;

  constructor(
    private readonly mem: CommonMemory,
    readonly index: number,
    readonly name: string,
    readonly store: MediumStore,
    bytes: number,
    private readonly timing: TimingSpec | undefined,
    faults: FaultSpec[],
    private readonly prng: Prng,
  ) {
    const entry = A.MAP_ADDR + A.MAP_MEDIA_TABLE + index * A.MAP_MEDIUM_BYTES;
    this.sq = new EntryRing(mem, mem.u32(entry + A.MMED_SQ));
    this.cq = new EntryRing(mem, mem.u32(entry + A.MMED_CQ));
    this.sectors = bytes / A.SECTOR_BYTES;
    this.faults = [...faults];
  }

  inject(f: FaultSpec): void { this.faults.push(f); }
  heal(): void { this.faults.length = 0; }

  /** Takes new requests and posts the completions that are due. Returns the work done. */
  service(nowNs: number): number {
    let work = 0;
    for (let e = this.sq.peek(); e >= 0; e = this.sq.peek()) {
      const m = this.mem;
      const r: Request = {
        op: m.u8At(e + A.MSQ_OPCODE), id: m.u32(e + A.MSQ_ID),
        lba: m.u32(e + A.MSQ_LBA_LO) + m.u32(e + A.MSQ_LBA_HI) * 2 ** 32,
        sectors: m.u32(e + A.MSQ_SECTORS), addr: m.u32(e + A.MSQ_ADDR),
      };
      this.sq.release();
      this.pending.push({ entry: r, dueNs: this.dueTime(r, nowNs) });
      work++;
    }
    while (this.pending.length > 0 && this.pending[0].dueNs <= nowNs) {
      const e = this.cq.reserve();
      if (e < 0) break; // the disk IOP has not drained its completions yet
      const p = this.pending.shift()!;
      this.complete(p.entry, e);
      this.cq.publish();
      work++;
    }
    return work;
  }

  /** When this binding next needs service(), or Infinity. */
  nextTimerNs(): number { return this.pending.length > 0 ? this.pending[0].dueNs : Infinity; }
  get busy(): boolean { return this.pending.length > 0; }

  private dueTime(r: Request, nowNs: number): number {
    const slow = this.faults.reduce((f, x) => (x.type === 'slow' ? f * x.factor : f), 1);
    if (!this.timing && slow === 1) return nowNs;
    const start = Math.max(nowNs, this.busyUntilNs);
    const service = (this.timing ? this.serviceNs(r) : NOMINAL_SERVICE_NS) * slow;
    this.busyUntilNs = start + service;
    return this.busyUntilNs;
  }

  /** Seek over the distance from the head, a random share of a rotation, and the transfer. */
  private serviceNs(r: Request): number {
    const t = this.timing!;
    if (r.op === A.MOP_FLUSH) return 0;
    const distance = Math.abs(r.lba - this.headLba);
    this.headLba = r.lba + r.sectors;
    let seekMs = 0;
    if (distance > 0) {
      // Short seeks are limited by acceleration, long ones by coasting: a square-root curve from
      // the track-to-track time to the average time at a third of the stroke (the mean distance
      // between random positions), then a straight line to the full-stroke time.
      const third = this.sectors / 3;
      seekMs = distance <= third
        ? t.trackMs + (t.averageMs - t.trackMs) * Math.sqrt(distance / third)
        : t.averageMs + (t.fullMs - t.averageMs) * ((distance - third) / (this.sectors - third));
    }
    const rotationMs = t.rpm > 0 ? this.prng.next() * (60_000 / t.rpm) : 0;
    const transferMs = (r.sectors * A.SECTOR_BYTES) / (t.transferMBps * 1e3);
    return (seekMs + rotationMs + transferMs) * 1e6;
  }

  private complete(r: Request, e: number): void {
    const m = this.mem;
    m.u8.fill(0, e, e + A.MCQ_BYTES);
    m.setU32(e + A.MCQ_ID, r.id);
    let status = A.MST_OK;
    let errLba = 0;
    const bytes = r.sectors * A.SECTOR_BYTES;
    if (this.faults.some((f) => f.type === 'dead')) {
      status = A.MST_NOT_READY;
    } else if (r.op === A.MOP_FLUSH) {
      this.store.flush();
    } else if (r.lba + r.sectors > this.sectors || r.addr + bytes > m.byteLength) {
      status = A.MST_RANGE;
    } else if (r.op === A.MOP_READ || r.op === A.MOP_WRITE) {
      const type = r.op === A.MOP_READ ? 'readError' : 'writeError';
      const hit = this.firstFault(type, r.lba, r.sectors);
      if (hit >= 0) {
        status = r.op === A.MOP_READ ? A.MST_READ_ERROR : A.MST_WRITE_ERROR;
        errLba = hit;
      } else if (r.op === A.MOP_READ) {
        this.store.read(m.u8, r.addr, r.lba * A.SECTOR_BYTES, bytes);
      } else {
        this.store.write(m.u8, r.addr, r.lba * A.SECTOR_BYTES, bytes);
      }
    } else {
      status = A.MST_RANGE;
    }
    m.setU16(e + A.MCQ_STATUS, status);
    m.setU32(e + A.MCQ_ERR_LBA_LO, errLba % 2 ** 32);
    m.setU32(e + A.MCQ_ERR_LBA_HI, Math.floor(errLba / 2 ** 32));
  }

  /** The first sector of [lba, lba + n) under a fault of this type, or -1. */
  private firstFault(type: 'readError' | 'writeError', lba: number, n: number): number {
    let first = -1;
    for (const f of this.faults) {
      if (f.type !== type) continue;
      const lo = Math.max(lba, f.lba);
      if (lo < Math.min(lba + n, f.lba + f.count) && (first < 0 || lo < first)) first = lo;
    }
    return first;
  }
}
