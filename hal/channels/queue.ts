// The in-process queue port (docs/hal.md, Channels): an initiator in the harness's own process
// writes command entries into the session's submission ring, with its buffers in the session's
// data area, and reads completions off the completion ring. No framing, no CRC: the fast path for
// tests and benchmarks, like a virtio-scsi queue. It implements CommandTransport, so the client
// library runs over it unchanged.
import * as A from '../abi';
import { CommonMemory } from '../memory';
import { EntryRing } from '../ring';
import { SessionSlot } from './session';
import {
  CommandTransport, ScsiCommand, ScsiResult, TransportError,
} from '../../lib/transport';

const EMPTY = new Uint8Array(0);
/** Allocation unit of the data area. */
const GRAIN = 4096;
const TASK_ATTRS = { simple: 0, headOfQueue: 1, ordered: 2 };
/** The firmware serves at most this many commands of one session at a time (SESSION_QUEUE_DEPTH). */
const FIRMWARE_SESSION_DEPTH = 128;

interface Outstanding {
  command: ScsiCommand;
  addr: number;
  length: number;
  resolve(r: ScsiResult): void;
  reject(e: Error): void;
}

export class QueueSession implements CommandTransport {
  readonly slot: SessionSlot;
  readonly queueDepth: number;
  private readonly sq: EntryRing;
  private readonly cq: EntryRing;
  private readonly dataBase: number;
  private readonly dataBytes: number;
  /** Free extents of the data area in grains: [start, length], sorted by start. */
  private free: Array<[number, number]>;
  private readonly tags: Array<Outstanding | undefined>;
  private readonly freeTags: number[] = [];
  private readonly waiting: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly mem: CommonMemory,
    port: number,
    index: number,
    readonly target: string,
    private readonly kick: () => void,
  ) {
    this.slot = new SessionSlot(mem, port, index);
    this.sq = new EntryRing(mem, this.slot.ring(A.SES_SQ));
    this.cq = new EntryRing(mem, this.slot.ring(A.SES_CQ));
    this.dataBase = this.slot.ring(A.SES_DATA);
    this.dataBytes = this.slot.ring(A.SES_DATA_BYTES);
    this.free = [[0, Math.floor(this.dataBytes / GRAIN)]];
    this.queueDepth = Math.min(this.sq.capacity, this.cq.capacity, FIRMWARE_SESSION_DEPTH);
    this.tags = new Array(this.queueDepth);
    for (let t = this.queueDepth - 1; t >= 0; t--) this.freeTags.push(t);
    this.slot.open([this.sq, this.cq]);
  }

  get outstanding(): number { return this.queueDepth - this.freeTags.length; }
  /** The initiator closed it: the slot is reused once the firmware has marked it closed. */
  get closedByHost(): boolean { return this.closed; }

  async submit(command: ScsiCommand): Promise<ScsiResult> {
    const out = command.dataOut;
    const length = out ? out.length : command.dataInLength ?? 0;
    if (command.dataIn && command.dataIn.length < length) {
      throw new TransportError(`dataIn holds ${command.dataIn.length} bytes, less than the ${length} expected`, 'EINVAL');
    }
    if (length > this.dataBytes) {
      throw new TransportError(`a transfer of ${length} bytes exceeds the session's data area (${this.dataBytes} bytes)`, 'ETOOBIG');
    }
    if (command.cdb.length < 6 || command.cdb.length > A.MAX_CDB_BYTES) {
      throw new TransportError(`a CDB of ${command.cdb.length} bytes: expected 6 to ${A.MAX_CDB_BYTES}`, 'EINVAL');
    }
    let addr = this.allocate(length);
    while (this.freeTags.length === 0 || addr < 0) {
      if (this.closed) throw new TransportError('session closed', 'ECLOSED');
      await new Promise<void>((r) => this.waiting.push(r));
      if (addr < 0) addr = this.allocate(length);
    }
    if (this.closed) { this.release(addr, length); throw new TransportError('session closed', 'ECLOSED'); }
    const tag = this.freeTags.pop()!;
    const e = this.sq.reserve(); // cannot be full: entries outstanding <= queueDepth <= capacity
    const m = this.mem;
    m.u8.fill(0, e, e + A.QSQ_BYTES);
    m.setU32(e + A.QSQ_TAG, tag);
    m.setU16(e + A.QSQ_LUN, command.lun);
    m.setU8(e + A.QSQ_CDB_LEN, command.cdb.length);
    m.setU8(e + A.QSQ_FLAGS, out ? A.QF_DATA_OUT : length > 0 ? A.QF_DATA_IN : 0);
    m.setU32(e + A.QSQ_DATA_ADDR, length > 0 ? this.dataBase + addr : 0);
    m.setU32(e + A.QSQ_DATA_LEN, length);
    m.u8.set(command.cdb, e + A.QSQ_CDB);
    m.setU8(e + A.QSQ_TASK_ATTR, TASK_ATTRS[command.taskAttribute ?? 'simple']);
    if (out && length > 0) m.u8.set(out, this.dataBase + addr);
    return new Promise<ScsiResult>((resolve, reject) => {
      this.tags[tag] = { command, addr, length, resolve, reject };
      this.sq.publish();
      this.kick();
    });
  }

  /** Takes the completions the firmware posted (its CQ doorbell). Returns how many. */
  drain(): number {
    let n = 0;
    const m = this.mem;
    for (let e = this.cq.peek(); e >= 0; e = this.cq.peek()) {
      const tag = m.u32(e + A.QCQ_TAG);
      const o = tag < this.tags.length ? this.tags[tag] : undefined;
      if (o) {
        const status = m.u8At(e + A.QCQ_STATUS);
        const senseLen = Math.min(m.u8At(e + A.QCQ_SENSE_LEN), 48);
        const flags = m.u16(e + A.QCQ_FLAGS);
        const moved = m.u32(e + A.QCQ_TRANSFERRED);
        const result: ScsiResult = {
          status,
          data: !o.command.dataOut && o.length > 0 ? this.dataIn(o, Math.min(moved, o.length)) : EMPTY,
          sense: senseLen > 0 ? Buffer.from(m.bytes(e + A.QCQ_SENSE, senseLen)) : EMPTY,
          residual: m.u32(e + A.QCQ_RESIDUAL),
          residualOverflow: (flags & 2) !== 0,
        };
        this.finish(tag, o);
        o.resolve(result);
      }
      this.cq.release();
      n++;
    }
    return n;
  }

  /** Copies n bytes of data-in out of the data area: into the caller's buffer, or a new one. */
  private dataIn(o: Outstanding, n: number): Uint8Array {
    const src = this.mem.bytes(this.dataBase + o.addr, n);
    const into = o.command.dataIn;
    if (into) { into.set(src); return into.subarray(0, n); }
    const out = Buffer.allocUnsafe(n);
    out.set(src);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.slot.hangUp();
    this.kick();
    this.failAll(new TransportError('session closed', 'ECLOSED'));
  }

  /** The controller went away (stop or crash): every outstanding command fails, as a transport failure. */
  failAll(cause: Error): void {
    const err = cause instanceof TransportError ? cause : new TransportError(`${this.target}: ${cause.message}`, 'CLOSED');
    this.closed = true;
    for (let t = 0; t < this.tags.length; t++) {
      const o = this.tags[t];
      if (o) { this.finish(t, o); o.reject(err); }
    }
    for (const w of this.waiting.splice(0)) w();
  }

  private finish(tag: number, o: Outstanding): void {
    this.tags[tag] = undefined;
    this.freeTags.push(tag);
    this.release(o.addr, o.length);
    const w = this.waiting.shift();
    if (w) w();
  }

  /** First fit over the free extents; returns a byte offset in the data area, or -1. */
  private allocate(length: number): number {
    if (length === 0) return 0;
    const grains = Math.ceil(length / GRAIN);
    for (let i = 0; i < this.free.length; i++) {
      const [start, n] = this.free[i];
      if (n < grains) continue;
      if (n === grains) this.free.splice(i, 1); else this.free[i] = [start + grains, n - grains];
      return start * GRAIN;
    }
    return -1;
  }

  private release(addr: number, length: number): void {
    if (length === 0) return;
    const start = addr / GRAIN;
    const grains = Math.ceil(length / GRAIN);
    let i = 0;
    while (i < this.free.length && this.free[i][0] < start) i++;
    this.free.splice(i, 0, [start, grains]);
    // Merge with the neighbours.
    if (i + 1 < this.free.length && start + grains === this.free[i + 1][0]) {
      this.free[i][1] += this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][0] + this.free[i - 1][1] === start) {
      this.free[i - 1][1] += this.free[i][1];
      this.free.splice(i, 1);
    }
  }
}
