// What the fuzzer sends: valid frames of every type (a CMD for every command the firmware knows,
// DATA_OUT answering its XFER_RDYs, PING), then the same frames broken every way the wire can
// break them. Everything comes from one seeded PRNG, so a seed names the run.
//
// One rule keeps the fuzzer honest about the canaries: every frame that leaves here with a valid
// CRC went through protect(), which keeps the canary volumes' numbers out of DELETE VOLUME and out
// of MAP/UNMAP parameter lists, and keeps the LUNs the fuzzer can map on its port below
// MAPPABLE_LUNS. A frame with a bad CRC is dropped by the controller whatever it says; a frame
// that is not a frame never reaches a command. So nothing the fuzzer sends may legitimately touch
// a canary or make a LUN at or above MAPPABLE_LUNS visible on the fuzzer's port.
import { Prng } from '../hal/prng';
import { putHeader, closeFrame, HEADER_END, FRAME_OVERHEAD, MAX_PAYLOAD, H, T, SOF_WORD, EOF_WORD, type Header } from './wire';
import { HOST_ADDRESS, PORT_ADDRESS, FUZZ_PORT } from './target';

/** Canary volume numbers (their high byte is 0x03, their low bytes 0xFB-0xFF). */
export const CANARY_VOLUMES = [1020, 1021, 1022, 1023, 1019];
/** LUNs the fuzzer's session may map on its port: 1 .. MAPPABLE_LUNS - 1. */
export const MAPPABLE_LUNS = 64;
const CANARY_HIGH = 0x03;
const isCanaryLow = (b: number) => b >= 0xfb;

/**
 * Keeps a frame laid out at `at` (with `bytes` payload bytes) away from the canaries, in place.
 * DELETE VOLUME's argument, and bytes 0-1 (volume) and 4-5 (LUN) of a parameter list, are
 * checked byte by byte, since a list may arrive one byte per DATA_OUT.
 */
export function protect(b: Buffer, at: number, bytes: number, deletes = true): void {
  const p = at + HEADER_END;
  const type = b[at + H.TYPE];
  if (type === T.CMD && bytes >= 22) {
    const cdb = p + 16;
    if (b[cdb] === 0xc1 && (b[cdb + 1] & 0x1f) === 0x02) {
      if (!deletes) b.writeUInt32BE(0xffffffff, cdb + 2); // DELETE VOLUME of no volume (quietDeletes)
      else if (CANARY_VOLUMES.includes(b.readUInt32BE(cdb + 2))) b[cdb + 5] ^= 0x80;
    }
  } else if (type === T.DATA_OUT && bytes > 0) {
    const offset = b.readUInt32BE(at + H.OFFSET);
    const has = (i: number) => offset <= i && i < offset + bytes;
    const at0 = (i: number) => p + i - offset;
    if (has(0) && has(1)) {
      if (b[at0(0)] === CANARY_HIGH && isCanaryLow(b[at0(1)])) b[at0(1)] ^= 0x80;
    } else if (has(0)) {
      if (b[at0(0)] === CANARY_HIGH) b[at0(0)] = CANARY_HIGH | 0x80;
    } else if (has(1)) {
      if (isCanaryLow(b[at0(1)])) b[at0(1)] ^= 0x80;
    }
    if (has(5) && (!has(4) || b[at0(4)] === 0)) b[at0(5)] &= MAPPABLE_LUNS - 1;
  }
}

/** protect(), then CRC and EOF. */
export function seal(b: Buffer, at: number, bytes: number, deletes = true): number {
  protect(b, at, bytes, deletes);
  return closeFrame(b, at, bytes);
}

// ---- What the fuzzer knows of the array and of its session --------------------------------------

export interface Xfer { tag: number; offset: number; length: number; sent: number; seq: number }
export interface VolumeView { number: number; blockSize: number; blocks: number }
export interface LunView { lun: number; volume: VolumeView }

export interface HostState {
  /** Commands in flight per tag (sent and not answered). */
  outstanding: Map<number, number>;
  /** Bursts the controller asked for and the fuzzer has not finished sending. */
  xfers: Map<number, Xfer>;
  /** Parameter lists of management OUT commands by tag. */
  intents: Map<number, Buffer>;
  /** Tags recently answered. */
  dead: number[];
  volumes: VolumeView[];
  luns: LunView[];
}

const INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024, 2047, 2048,
  4095, 4096, 8191, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff];

export class Generator {
  readonly rng: Prng;
  private readonly pool: Buffer;
  /** The group being built. */
  out = Buffer.alloc(1 << 20);
  len = 0;
  /** Units built, by class. */
  readonly classes: Record<string, number> = {};
  units = 0;
  private nextTag = 1;
  private nameNo = 0;
  private readonly recent: Buffer[] = [];
  private readonly scratch = Buffer.alloc(4 * 1024 * 1024);

  /**
   * DELETE VOLUME only when the session is quiet (quietDelete()), every other one aimed at no
   * volume, unless quietDeletes is off (--loud-deletes). Loud runs are clean since delete
   * quiesces the volume (issue 7, defect 1), but the receiver model cannot yet say whether a
   * DATA_OUT that crosses the delete on the wire is owed a REJECT, so the default stays quiet.
   */
  private deletesNow: boolean;

  constructor(seed: number, private readonly state: HostState, readonly quietDeletes = true) {
    this.deletesNow = !quietDeletes;
    this.rng = new Prng(seed).fork('fuzz');
    const pool = new Prng(seed).fork('pool');
    this.pool = Buffer.alloc(1 << 20);
    for (let i = 0; i < this.pool.length; i += 4) this.pool.writeUInt32LE(pool.u32(), i);
  }

  // ---- random helpers ----------------------------------------------------------------------------
  int(n: number): number { return n < 2 ? 0 : this.rng.u32() % Math.floor(n); }
  chance(p: number): boolean { return this.rng.next() < p; }
  pick<X>(xs: readonly X[]): X { return xs[this.int(xs.length)]; }
  u32(): number { return this.rng.u32(); }
  /** An interesting number or a random one, below `limit` when given. */
  num(limit = 2 ** 32): number {
    const v = this.chance(0.5) ? this.pick(INTERESTING) : this.chance(0.5) ? this.int(Math.min(limit, 4096)) : this.u32();
    return limit >= 2 ** 32 ? v >>> 0 : v % limit;
  }
  poolBytes(n: number): Buffer {
    const at = this.int(this.pool.length - n);
    return this.pool.subarray(at, at + n);
  }

  private room(n: number): void {
    if (this.len + n <= this.out.length) return;
    const b = Buffer.alloc(Math.max(this.out.length * 2, this.len + n));
    this.out.copy(b, 0, 0, this.len);
    this.out = b;
  }

  private count(cls: string): void {
    this.classes[cls] = (this.classes[cls] ?? 0) + 1;
    this.units++;
  }

  /** Starts a group of units. */
  reset(): void { this.len = 0; }

  private seal(b: Buffer, at: number, bytes: number): number { return seal(b, at, bytes, this.deletesNow); }

  /** A DELETE VOLUME alone, for a moment when the session has nothing in flight. */
  quietDelete(): void {
    this.deletesNow = true;
    const c = Buffer.alloc(16);
    c[0] = 0xc1;
    c[1] = 0x02;
    c.writeUInt32BE(this.state.volumes.length > 0 && this.chance(0.9) ? this.pick(this.state.volumes).number : this.num(), 2);
    c[14] = this.chance(0.7) ? 1 : 0;
    const lun = Buffer.alloc(8);
    this.cmdFrame(this.freshTag(), lun, c, 0, 0);
    this.deletesNow = !this.quietDeletes;
    this.count('cmd:delete');
  }

  // ---- tags --------------------------------------------------------------------------------------

  freshTag(): number {
    for (let i = 0; i < 65536; i++) {
      const t = this.nextTag;
      this.nextTag = (this.nextTag + 1) & 0xffff;
      if (!this.state.outstanding.has(t) && !this.state.xfers.has(t) && t !== 0xfffe) return t;
    }
    return this.int(65536);
  }

  private anyTag(): number {
    const r = this.int(20);
    if (r < 16) return this.freshTag();
    if (r < 18 && this.state.outstanding.size > 0) return this.pick([...this.state.outstanding.keys()]);
    if (r < 19 && this.state.dead.length > 0) return this.pick(this.state.dead);
    return this.int(65536);
  }

  // ---- frames ------------------------------------------------------------------------------------

  private header(type: number, tag: number, length: number, offset = 0, flags = 0, sequence = 0): Header {
    return {
      type, flags, tag, source: HOST_ADDRESS, destination: this.chance(0.5) ? PORT_ADDRESS[FUZZ_PORT] : 0xffff,
      sequence, length, offset, parameter: 0,
    };
  }

  /** Lays out a frame with `payload` and seals it. Returns its start. */
  private frame(h: Header, payload: Buffer): number {
    this.room(payload.length + FRAME_OVERHEAD);
    const at = this.len;
    h.length = payload.length;
    putHeader(this.out, at, h);
    payload.copy(this.out, at + HEADER_END);
    this.len = this.seal(this.out, at, payload.length);
    if (this.chance(0.1)) this.remember(at);
    return at;
  }

  private remember(at: number): void {
    this.recent.push(Buffer.from(this.out.subarray(at, this.len)));
    if (this.recent.length > 64) this.recent.shift();
  }

  private raw(bytes: Buffer): void {
    this.room(bytes.length);
    bytes.copy(this.out, this.len);
    this.len += bytes.length;
  }

  // ---- units -------------------------------------------------------------------------------------

  /** Adds one unit to the group, of a class chosen by weight. */
  unit(): void {
    const xfers = this.state.xfers.size;
    const r = this.int(100);
    if (xfers > 0 && r < 30) { this.count('dataOut'); this.dataOut(); return; }
    if (r < 62) { this.count('cmd'); this.command(this.freshTag()); return; }
    if (r < 66) { this.count('ping'); this.ping(); return; }
    if (r < 70) { this.count('dataOut:bad'); this.badDataOut(); return; }
    if (r < 88) { this.mutated(); return; }
    this.odd();
  }

  /** PING with 0-2112 bytes. */
  ping(tag = this.anyTag()): number {
    const n = this.chance(0.7) ? this.int(64) : this.int(MAX_PAYLOAD + 1);
    return this.frame(this.header(T.PING, tag, n), this.poolBytes(n));
  }

  // ---- CMD ---------------------------------------------------------------------------------------

  /** A CMD frame for a command the firmware knows (or does not), at a LUN worth trying. */
  command(tag: number): number {
    const lun = this.pickLun();
    const target = this.state.luns.find((l) => l.lun === lun.value);
    const c = this.chance(0.02) ? this.randomCdb() : target ? this.volumeCdb(target, tag) : lun.value === 0 ? this.deviceCdb(tag) : this.anyCdb(tag);
    return this.cmdFrame(tag, lun.bytes, c.cdb, c.expected, c.flags);
  }

  cmdFrame(tag: number, lunBytes: Buffer, cdb: Buffer, expected: number, flags: number): number {
    const payload = this.scratch.subarray(0, 16 + cdb.length);
    payload.fill(0, 0, 16);
    lunBytes.copy(payload, 0);
    // Task attribute: SIMPLE or HEAD OF QUEUE, now and then any byte (ACA and beyond are refused).
    // Not ORDERED on purpose: the target honours it (an ORDERED command waits for every older one
    // of its unit, and the SIMPLE ones after it wait for it), and behind commands whose data-out the
    // fuzzer withholds (30 s each) a chain of them passes the model's 300 s bound for a hang.
    // test/harness/sbc.test.ts checks the order.
    payload[8] = this.chance(0.95) ? this.int(2) : this.int(256);
    payload[9] = flags;
    payload[10] = cdb.length;
    payload.writeUInt32BE(expected >>> 0, 12);
    cdb.copy(payload, 16);
    return this.frame(this.header(T.CMD, tag, payload.length), payload);
  }

  /** LUN bytes: the command device, a mapped volume, or anything else a host could write. */
  private pickLun(): { value: number; bytes: Buffer } {
    const b = Buffer.alloc(8);
    const r = this.int(100);
    let value: number;
    if (r < 30 || (r < 75 && this.state.luns.length === 0)) value = 0;
    else if (r < 75) value = this.pick(this.state.luns).lun;
    else if (r < 85) value = this.int(256);
    else if (r < 93) value = 256 + this.int(16384 - 256);
    else {
      b.writeUInt32BE(this.u32(), 0);
      b.writeUInt32BE(this.chance(0.5) ? 0 : this.u32(), 4);
      return { value: -1, bytes: b };
    }
    if (value < 256 && this.chance(0.95)) b[1] = value;
    else b.writeUInt16BE(0x4000 | value, 0);
    return { value, bytes: b };
  }

  private cdb(n: number): Buffer { return Buffer.alloc(n); }

  /** Commands of a volume LUN: reads and writes mostly, then the rest of SBC/SPC, and logical block provisioning. */
  private volumeCdb(l: LunView, tag: number): { cdb: Buffer; expected: number; flags: number } {
    if (this.chance(0.06)) return this.provisioning(l, tag);
    const r = this.int(100);
    if (r < 34) return this.readWrite(l, false);
    if (r < 62) return this.readWrite(l, true);
    if (r < 67) return this.syncCache(l);
    if (r < 71) return { cdb: this.cdb(6), expected: 0, flags: 0 }; // TEST UNIT READY
    if (r < 76) return this.readCapacity(l);
    if (r < 81) return this.modeSense();
    if (r < 88) return this.inquiry();
    if (r < 92) return this.requestSense();
    if (r < 95) return this.reportLuns();
    return this.randomCdb();
  }

  /** Commands of the command device: management above all. */
  private deviceCdb(tag: number): { cdb: Buffer; expected: number; flags: number } {
    const r = this.int(100);
    if (r < 30) return this.managementOut(tag);
    if (r < 50) return this.managementIn();
    if (r < 58) return { cdb: this.cdb(6), expected: 0, flags: 0 };
    if (r < 70) return this.inquiry();
    if (r < 78) return this.reportLuns();
    if (r < 84) return this.requestSense();
    if (r < 90) return this.readWrite(undefined, this.chance(0.5));
    return this.randomCdb();
  }

  private anyCdb(tag: number): { cdb: Buffer; expected: number; flags: number } {
    return this.chance(0.5) ? this.deviceCdb(tag) : this.volumeCdb({ lun: 0, volume: { number: 0, blockSize: 512, blocks: 1 << 20 } }, tag);
  }

  private expectedFor(n: number): number {
    const r = this.int(20);
    if (r < 16) return n;
    if (r < 18) return this.int(n + 1);
    return this.num();
  }

  private readWrite(l: LunView | undefined, write: boolean): { cdb: Buffer; expected: number; flags: number } {
    const bs = l?.volume.blockSize ?? 512;
    const cap = l?.volume.blocks ?? 1 << 20;
    const r = this.int(100);
    let blocks: number;
    if (r < 70) blocks = 1 + this.int(Math.min(16, 8192 / bs));
    else if (r < 93) blocks = this.int((64 * 1024) / bs + 1);
    else if (r < 99) blocks = this.num(65536);
    else blocks = (32 << 20) / bs + this.int(3) - 1; // the largest transfer, and one block either side
    let lba: number;
    const q = this.int(100);
    if (q < 80) lba = this.int(Math.max(1, cap - blocks + 1));
    else if (q < 90) lba = Math.max(0, cap - blocks + this.int(3) - 1);
    else lba = this.num();
    const sixteen = this.chance(0.3);
    const c = this.cdb(sixteen ? 16 : 10);
    c[0] = write ? (sixteen ? 0x8a : 0x2a) : (sixteen ? 0x88 : 0x28);
    c[1] = this.chance(0.85) ? (this.chance(0.2) ? 0x08 : 0) : this.int(256);
    if (sixteen) {
      c.writeUInt32BE(this.chance(0.97) ? 0 : this.u32(), 2);
      c.writeUInt32BE(lba >>> 0, 6);
      c.writeUInt32BE(blocks >>> 0, 10);
    } else {
      c.writeUInt32BE(lba >>> 0, 2);
      c.writeUInt16BE(blocks & 0xffff, 7);
    }
    const bytes = (sixteen ? blocks : blocks & 0xffff) * bs;
    return { cdb: c, expected: this.expectedFor(bytes), flags: this.chance(0.95) ? (write ? 1 : 2) : this.int(4) };
  }

  /**
   * Thin provisioning's commands (docs/scsi.md): UNMAP with a list of block descriptors (kept as the
   * tag's intent, so that its DATA_OUT carries it), WRITE SAME (10)/(16) with UNMAP (NDOB or a block
   * of data-out), GET LBA STATUS with any allocation length. Ranges are whole chunks, parts of
   * chunks, or anything; a thick volume refuses them, which is checked as well.
   */
  private provisioning(l: LunView, tag: number): { cdb: Buffer; expected: number; flags: number } {
    const bs = l.volume.blockSize;
    const cap = l.volume.blocks;
    const perChunk = 65536 / bs;
    const range = (): [number, number] => {
      const r = this.int(10);
      if (r < 5) { // whole chunks
        const n = perChunk * (1 + this.int(4));
        return [perChunk * this.int(Math.max(1, Math.floor(cap / perChunk))), n];
      }
      if (r < 9) return [this.int(Math.max(1, cap)), 1 + this.int(2 * perChunk)]; // parts of chunks
      return [this.num(), this.num()];
    };
    const r = this.int(10);
    if (r < 4) {
      const n = this.chance(0.9) ? 1 + this.int(4) : this.int(260);
      const list = Buffer.alloc(8 + n * 16);
      list.writeUInt16BE((6 + n * 16) & 0xffff, 0);
      list.writeUInt16BE((n * 16) & 0xffff, 2);
      for (let i = 0; i < n; i++) {
        const [lba, blocks] = range();
        list.writeBigUInt64BE(BigInt(lba >>> 0), 8 + i * 16);
        list.writeUInt32BE(blocks >>> 0, 16 + i * 16);
      }
      const c = this.cdb(10);
      c[0] = 0x42;
      if (this.chance(0.05)) c[1] = 0x01; // ANCHOR: refused
      const length = this.chance(0.9) ? list.length : this.int(list.length + 16);
      c.writeUInt16BE(length & 0xffff, 7);
      this.state.intents.set(tag, list);
      return { cdb: c, expected: this.expectedFor(length), flags: this.chance(0.95) ? 1 : this.int(4) };
    }
    if (r < 7) {
      const [lba, blocks] = range();
      const sixteen = this.chance(0.6);
      const ndob = sixteen && this.chance(0.5);
      const c = this.cdb(sixteen ? 16 : 10);
      c[0] = sixteen ? 0x93 : 0x41;
      c[1] = 0x08 | (ndob ? 0x01 : 0);
      if (this.chance(0.05)) c[1] = this.int(256);
      if (sixteen) { c.writeUInt32BE(lba >>> 0, 6); c.writeUInt32BE(blocks >>> 0, 10); } else { c.writeUInt32BE(lba >>> 0, 2); c.writeUInt16BE(blocks & 0xffff, 7); }
      return ndob ? { cdb: c, expected: 0, flags: 0 } : { cdb: c, expected: this.expectedFor(bs), flags: this.chance(0.95) ? 1 : this.int(4) };
    }
    const c = this.cdb(16);
    c[0] = 0x9e;
    c[1] = 0x12;
    const lba = this.chance(0.8) ? this.int(Math.max(1, cap)) : this.num();
    c.writeUInt32BE(lba >>> 0, 6);
    const alloc = this.chance(0.5) ? 8 + 64 * 16 : this.chance(0.5) ? this.pick([0, 8, 16, 23, 24, 40]) : this.num(65536);
    c.writeUInt32BE(alloc >>> 0, 10);
    return { cdb: c, expected: this.expectedFor(alloc), flags: 2 };
  }

  private syncCache(l: LunView): { cdb: Buffer; expected: number; flags: number } {
    const sixteen = this.chance(0.4);
    const c = this.cdb(sixteen ? 16 : 10);
    c[0] = sixteen ? 0x91 : 0x35;
    c[1] = this.chance(0.3) ? 0x02 : 0;
    const lba = this.chance(0.8) ? this.int(l.volume.blocks) : this.num();
    const blocks = this.chance(0.5) ? 0 : this.num(l.volume.blocks + 2);
    if (sixteen) { c.writeUInt32BE(lba >>> 0, 6); c.writeUInt32BE(blocks >>> 0, 10); } else { c.writeUInt32BE(lba >>> 0, 2); c.writeUInt16BE(blocks & 0xffff, 7); }
    return { cdb: c, expected: 0, flags: 0 };
  }

  private readCapacity(l: LunView): { cdb: Buffer; expected: number; flags: number } {
    if (this.chance(0.5)) {
      const c = this.cdb(10);
      c[0] = 0x25;
      if (this.chance(0.1)) c.writeUInt32BE(this.u32(), 2);
      if (this.chance(0.1)) c[8] = 1;
      return { cdb: c, expected: this.expectedFor(8), flags: 2 };
    }
    const c = this.cdb(16);
    c[0] = 0x9e;
    c[1] = this.chance(0.9) ? 0x10 : this.int(256);
    const alloc = this.chance(0.7) ? 32 : this.num(4096);
    c.writeUInt32BE(alloc, 10);
    void l;
    return { cdb: c, expected: this.expectedFor(alloc), flags: 2 };
  }

  private modeSense(): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(6);
    c[0] = 0x1a;
    c[1] = this.chance(0.5) ? 0x08 : this.chance(0.9) ? 0 : this.int(256);
    c[2] = (this.int(4) << 6) | (this.chance(0.8) ? this.pick([0x08, 0x0a, 0x3f]) : this.int(64));
    c[3] = this.chance(0.8) ? 0 : this.pick([0xff, this.int(256)]);
    c[4] = this.int(256);
    return { cdb: c, expected: this.expectedFor(c[4]), flags: 2 };
  }

  private inquiry(): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(6);
    c[0] = 0x12;
    const evpd = this.chance(0.5);
    c[1] = evpd ? 1 : 0;
    if (this.chance(0.05)) c[1] = this.int(256);
    c[2] = evpd ? this.pick([0x00, 0x80, 0x83, 0xb0, this.int(256)]) : this.chance(0.95) ? 0 : this.int(256);
    const alloc = this.chance(0.7) ? 255 : this.num(65536);
    c.writeUInt16BE(alloc, 3);
    return { cdb: c, expected: this.expectedFor(alloc), flags: 2 };
  }

  private requestSense(): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(6);
    c[0] = 0x03;
    c[1] = this.chance(0.9) ? 0 : this.int(256);
    c[4] = this.chance(0.7) ? 18 : this.int(256);
    return { cdb: c, expected: this.expectedFor(c[4]), flags: 2 };
  }

  private reportLuns(): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(12);
    c[0] = 0xa0;
    c[2] = this.chance(0.9) ? this.int(3) : this.int(256);
    const alloc = this.chance(0.7) ? 8 + 256 * 8 : this.num();
    c.writeUInt32BE(alloc >>> 0, 6);
    return { cdb: c, expected: this.expectedFor(Math.min(alloc, 1 << 20)), flags: 2 };
  }

  /** Any opcode, random bytes, CDB length 6-32. */
  private randomCdb(): { cdb: Buffer; expected: number; flags: number } {
    const c = Buffer.from(this.poolBytes(6 + this.int(27)));
    if (this.chance(0.5)) c[0] = this.pick([0x00, 0x03, 0x12, 0x1a, 0x25, 0x28, 0x2a, 0x35, 0x88, 0x8a, 0x91, 0x9e, 0xa0, 0xc0, 0xc1]);
    return { cdb: c, expected: this.num(1 << 20), flags: this.int(4) };
  }

  // ---- management ---------------------------------------------------------------------------------

  private managementIn(): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(16);
    c[0] = 0xc0;
    c[1] = this.chance(0.9) ? 0x10 + this.int(5) : this.int(256);
    const alloc = this.chance(0.6) ? 65536 : this.num();
    c.writeUInt32BE(alloc >>> 0, 6);
    if (this.chance(0.1)) c.writeUInt32BE(this.u32(), 2);
    return { cdb: c, expected: this.expectedFor(Math.min(alloc, 1 << 17)), flags: 2 };
  }

  /** MANAGEMENT OUT with a structured or a random parameter list (kept as the tag's intent). */
  private managementOut(tag: number): { cdb: Buffer; expected: number; flags: number } {
    const c = this.cdb(16);
    c[0] = 0xc1;
    const r = this.int(100);
    let list: Buffer;
    if (r < 30) { c[1] = 0x01; list = this.createList(); }
    else if (r < 40) {
      c[1] = 0x02;
      const fuzz = this.state.volumes.filter((v) => !CANARY_VOLUMES.includes(v.number));
      c.writeUInt32BE(fuzz.length > 0 && this.chance(0.8) ? this.pick(fuzz).number : this.num(), 2);
      c[14] = this.chance(0.6) ? 1 : this.int(256);
      return { cdb: c, expected: this.chance(0.9) ? 0 : this.num(), flags: this.int(4) };
    } else if (r < 80) { c[1] = 0x03; list = this.mapList(); }
    else if (r < 90) { c[1] = 0x04; list = this.mapList(); }
    else { c[1] = this.int(256); list = Buffer.from(this.poolBytes(this.int(128))); }
    const want = list.length;
    const q = this.int(20);
    const length = q < 15 ? want : q < 17 ? this.int(want + 1) : q < 19 ? want + this.int(4096) : this.num();
    c.writeUInt32BE(length >>> 0, 6);
    if (this.chance(0.05)) c[14] = this.int(256);
    const full = Buffer.alloc(Math.min(length >>> 0, 8192));
    list.copy(full, 0, 0, Math.min(list.length, full.length));
    if (full.length > list.length) this.poolBytes(full.length - list.length).copy(full, list.length);
    this.state.intents.set(tag, full);
    return { cdb: c, expected: this.expectedFor(length >>> 0), flags: this.chance(0.95) ? 1 : this.int(4) };
  }

  private createList(): Buffer {
    const b = Buffer.alloc(64);
    b.writeUInt16BE(this.chance(0.8) ? 0xffff : this.num(65536), 0);
    b.writeUInt16BE(this.chance(0.9) ? this.pick([512, 4096]) : this.num(65536), 2);
    b[4] = this.chance(0.9) ? this.int(3) : this.int(256); // placement: linear, striped, thin (docs/scsi.md), or refused
    const n = this.chance(0.9) ? this.int(3) : this.int(256);
    b[5] = n;
    for (let i = 0; i < Math.min(n, 16); i++) b[48 + i] = this.chance(0.9) ? (i + this.int(2)) % 2 : this.int(256);
    const bs = b.readUInt16BE(2) || 512;
    const r = this.int(100);
    let blocks: bigint;
    if (r < 75) blocks = BigInt(1 + this.int((1 << 21) / bs));
    else if (r < 85) { // the capacity limit (2^48 bytes less 16 chunks), 2^48 bytes, and either side of each
      blocks = BigInt(Math.floor((this.chance(0.5) ? 2 ** 48 : 2 ** 48 - 2 ** 20) / bs)) + BigInt(this.int(3)) - 1n;
    }
    else if (r < 90) blocks = 0n;
    else blocks = (BigInt(this.u32()) << 32n) | BigInt(this.u32());
    b.writeBigUInt64BE(blocks & 0xffffffffffffffffn, 8);
    const name = this.chance(0.9) ? `fz${(this.nameNo++).toString(36)}` : this.oddName();
    Buffer.from(name, 'latin1').copy(b, 16, 0, 32);
    return b;
  }

  private oddName(): string {
    const r = this.int(5);
    if (r === 0) return '';
    if (r === 1) return 'x'.repeat(31 + this.int(2));
    if (r === 2) return 'a b';
    if (r === 3) return String(this.int(300));
    return this.poolBytes(1 + this.int(32)).toString('latin1');
  }

  private mapList(): Buffer {
    const b = Buffer.alloc(8);
    const fuzz = this.state.volumes.filter((v) => !CANARY_VOLUMES.includes(v.number));
    b.writeUInt16BE(fuzz.length > 0 && this.chance(0.85) ? this.pick(fuzz).number : this.num(65536), 0);
    b[2] = this.chance(0.8) ? this.pick([0, 0, 0xff]) : this.int(256);
    b.writeUInt16BE(this.chance(0.85) ? 1 + this.int(MAPPABLE_LUNS - 1) : this.num(65536), 4);
    if (this.chance(0.05)) b.writeUInt16BE(this.u32() & 0xffff, 6);
    return b;
  }

  // ---- DATA_OUT ------------------------------------------------------------------------------------

  /** The next DATA_OUT of a burst the controller asked for. */
  dataOut(): void {
    const x = this.pick([...this.state.xfers.values()]);
    if (x.offset + x.sent >= 1 << 20 && this.chance(0.5)) { // enough of a long transfer: let it time out
      this.state.xfers.delete(x.tag);
      this.ping();
      return;
    }
    const left = x.length - x.sent;
    const r = this.int(10);
    const n = Math.min(left, r < 6 ? MAX_PAYLOAD : r < 8 ? 2048 : 1 + this.int(MAX_PAYLOAD));
    const rel = x.offset + x.sent;
    const intent = this.state.intents.get(x.tag);
    const payload = this.scratch.subarray(0, n);
    if (intent && rel < intent.length) {
      payload.fill(0);
      intent.copy(payload, 0, rel, Math.min(intent.length, rel + n));
    } else {
      this.poolBytes(n).copy(payload);
    }
    x.sent += n;
    const last = x.sent >= x.length;
    this.frame(this.header(T.DATA_OUT, x.tag, n, rel, last ? 1 : 0, x.seq++), payload);
    if (last) this.state.xfers.delete(x.tag);
  }

  /** DATA_OUT that breaks the rules: dead and unknown tags, offsets out of order, overlapping, past the burst. */
  private badDataOut(): void {
    const xs = [...this.state.xfers.values()];
    const x = xs.length > 0 && this.chance(0.6) ? this.pick(xs) : undefined;
    let tag: number; let offset: number; let n = 1 + this.int(this.chance(0.5) ? 64 : MAX_PAYLOAD);
    if (!x) {
      tag = this.chance(0.5) && this.state.dead.length > 0 ? this.pick(this.state.dead)
        : this.chance(0.5) && this.state.outstanding.size > 0 ? this.pick([...this.state.outstanding.keys()]) : this.int(65536);
      offset = this.num();
    } else {
      tag = x.tag;
      const expected = x.offset + x.sent;
      const r = this.int(4);
      if (r === 0 && x.sent > 0) offset = expected - 1 - this.int(x.sent); // overlapping what was sent
      else if (r === 1) offset = expected + 1 + this.int(4096); // a gap
      else if (r === 2) { offset = expected; n = x.length - x.sent + 1 + this.int(64); } // past the burst
      else offset = this.num();
      this.state.xfers.delete(tag); // the controller ends that command
    }
    n = Math.min(n, MAX_PAYLOAD);
    this.frame(this.header(T.DATA_OUT, tag, n, offset >>> 0, this.int(2)), this.poolBytes(n));
  }

  // ---- mutations -----------------------------------------------------------------------------------

  /** A valid frame, then broken one way. */
  private mutated(): void {
    const start = this.len;
    const r0 = this.int(10);
    if (r0 < 6) this.command(this.anyTag());
    else if (r0 < 8) this.ping();
    else if (this.state.xfers.size > 0) this.dataOut();
    else this.command(this.anyTag());
    const end = this.len;
    const bytes = end - start - FRAME_OVERHEAD;
    this.room(4096); // room for what a mutation adds: b stays the buffer
    const b = this.out;
    const kind = this.int(13);
    switch (kind) {
      case 0: { // bit flips anywhere in the frame
        const flips = 1 + this.int(3);
        for (let i = 0; i < flips; i++) { const at = start + this.int(end - start); b[at] ^= 1 << this.int(8); }
        this.count('mut:bitflip');
        return;
      }
      case 1: { // a field or payload byte set to something else, CRC made right again
        const at = this.pickField(start, bytes);
        b[at] = this.chance(0.5) ? this.int(256) : b[at] ^ (1 << this.int(8));
        if (this.chance(0.3)) b[start + 4 + this.int(20)] = this.int(256);
        if (b.readUInt16BE(start + H.LENGTH) !== bytes) b.writeUInt16BE(bytes, start + H.LENGTH);
        this.seal(b, start, bytes);
        this.count('mut:field');
        return;
      }
      case 2: { b.writeUInt32BE((b.readUInt32BE(end - 8) ^ (1 + this.int(0xffffffff))) >>> 0, end - 8); this.count('mut:badCrc'); return; }
      case 3: { // the length field lies
        const lie = this.pick([bytes + 1, bytes - 1, bytes + 4, 0, this.int(MAX_PAYLOAD + 1), bytes + 1 + this.int(64)]);
        b.writeUInt16BE(Math.max(0, Math.min(lie, MAX_PAYLOAD)), start + H.LENGTH);
        if (this.chance(0.5)) this.seal(b, start, bytes); // a CRC right for the bytes, wrong for the length
        this.count('mut:lengthLie');
        return;
      }
      case 4: { this.len = start + 1 + this.int(end - start - 1); this.count('mut:truncate'); return; }
      case 5: { // a byte inserted
        const at = start + this.int(end - start);
        b.copyWithin(at + 1, at, this.len);
        b[at] = this.int(256);
        this.len++;
        this.count('mut:insert');
        return;
      }
      case 6: { // a byte deleted
        const at = start + this.int(end - start);
        b.copyWithin(at, at + 1, this.len);
        this.len--;
        this.count('mut:delete');
        return;
      }
      case 7: { b.writeUInt16BE(this.notMine(), start + H.DESTINATION); this.seal(b, start, bytes); this.count('mut:wrongDestination'); return; }
      case 8: { b[start + H.TYPE] = this.chance(0.3) ? 0 : 9 + this.int(247); this.seal(b, start, bytes); this.count('mut:unknownType'); return; }
      case 9: { b[start + H.TYPE] = this.pick([T.XFER_RDY, T.DATA_IN, T.RSP, T.PONG, T.REJECT]); this.seal(b, start, bytes); this.count('mut:type'); return; }
      case 10: { // CMD with a CDB length that does not fit the payload
        if (b[start + H.TYPE] !== T.CMD) { this.count('mut:none'); return; }
        b[start + HEADER_END + 10] = this.pick([0, 1, 5, 33, 255, this.int(256), bytes - 16 + 1 + this.int(8)]);
        if (this.chance(0.5)) { // and a payload cut short of 16 bytes
          const n = this.int(16);
          b.writeUInt16BE(n, start + H.LENGTH);
          this.len = this.seal(b, start, n);
        } else {
          this.seal(b, start, bytes);
        }
        this.count('mut:cdbLength');
        return;
      }
      case 11: { // the frame whole, again (a replay)
        this.count('mut:replay');
        if (this.recent.length > 0) this.raw(this.pick(this.recent));
        return;
      }
      default: { // split by garbage
        const at = start + this.int(end - start);
        const g = this.garbageBytes();
        b.copyWithin(at + g.length, at, this.len);
        g.copy(b, at);
        this.len += g.length;
        this.count('mut:garbageInside');
      }
    }
  }

  /** A byte of a header field or of the payload (not the length field). */
  private pickField(start: number, bytes: number): number {
    if (bytes > 0 && this.chance(0.5)) return start + HEADER_END + this.int(bytes);
    const fields = [H.TYPE, H.FLAGS, H.TAG, H.TAG + 1, H.SOURCE, H.DESTINATION, H.DESTINATION + 1, H.SEQUENCE, H.OFFSET, H.OFFSET + 3, H.PARAMETER + 3];
    return start + this.pick(fields);
  }

  private notMine(): number {
    for (;;) { const a = this.int(65536); if (a !== PORT_ADDRESS[FUZZ_PORT] && a !== 0xffff) return a; }
  }

  // ---- odd units: no frame at all, frames no host sends, frames in frames ---------------------------

  private odd(): void {
    const r = this.int(9);
    if (r === 0) { this.raw(this.garbageBytes()); this.count('garbage'); return; }
    if (r === 1) { // OVERSIZE: a length over 2112, and bytes to match (frames inside them)
      const length = MAX_PAYLOAD + 1 + (this.chance(0.5) ? this.int(16) : this.int(65536 - MAX_PAYLOAD - 1));
      const bytes = Math.min(length, 4096);
      this.room(bytes + FRAME_OVERHEAD + 4096);
      const at = this.len;
      putHeader(this.out, at, { ...this.header(this.int(9), this.anyTag(), length), length });
      this.poolBytes(bytes).copy(this.out, at + HEADER_END);
      this.len = at + HEADER_END + bytes;
      if (this.chance(0.5)) { // a frame inside: the parser finds it when it hunts for the next SOF
        const inner = this.len;
        this.ping();
        const frame = Buffer.from(this.out.subarray(inner, this.len));
        frame.copy(this.out, at + HEADER_END + this.int(Math.max(1, bytes - frame.length)));
        this.len = inner;
      }
      if (this.chance(0.5)) this.len = this.seal(this.out, at, bytes);
      this.count('oversize');
      return;
    }
    if (r === 2) { // a type no host sends, or none at all
      const type = this.pick([0, 9, 10, 0x7f, 0xff, T.XFER_RDY, T.DATA_IN, T.RSP]);
      const n = this.int(64);
      this.frame({ ...this.header(type, this.anyTag(), n), parameter: this.u32() }, this.poolBytes(n));
      this.count(type >= 1 && type <= 8 ? 'hostForbidden' : 'unknownType');
      return;
    }
    if (r === 3) { // answers a host may send: PONG, REJECT (ignored)
      const n = this.chance(0.5) ? 24 : this.int(100);
      this.frame(this.header(this.chance(0.5) ? T.PONG : T.REJECT, this.anyTag(), n), this.poolBytes(n));
      this.count('hostAnswer');
      return;
    }
    if (r === 4) { // a frame inside a PING: echoed, never obeyed
      const outer = this.len;
      this.command(this.anyTag());
      const inner = Buffer.from(this.out.subarray(outer, this.len));
      this.len = outer;
      this.frame(this.header(T.PING, this.anyTag(), inner.length), inner);
      this.count('nested');
      return;
    }
    if (r === 5) { // CDB lengths 0-32 and beyond, in payloads that hold them or stop short
      const cdbLength = this.chance(0.2) ? 33 + this.int(223) : this.int(40);
      const payload = Buffer.alloc(16 + cdbLength);
      this.poolBytes(cdbLength).copy(payload, 16);
      if (this.chance(0.5)) payload[16] = this.pick([0x00, 0x12, 0x28, 0x2a, 0xa0, 0xc0, 0xc1]);
      payload[10] = cdbLength;
      const n = Math.min(MAX_PAYLOAD, this.chance(0.5) ? payload.length : this.int(payload.length + 1));
      this.frame(this.header(T.CMD, this.anyTag(), n), payload.subarray(0, n));
      this.count('cmd:shape');
      return;
    }
    if (r === 6) { this.count('cmd:overlap'); this.command(this.state.outstanding.size > 0 ? this.pick([...this.state.outstanding.keys()]) : this.anyTag()); return; }
    if (r === 7) { // many small frames back to back: PING 0 bytes
      const k = 2 + this.int(8);
      for (let i = 0; i < k; i++) this.frame(this.header(T.PING, this.anyTag(), 0), Buffer.alloc(0));
      this.count('pingBurst');
      return;
    }
    this.count('cmd:random');
    const cdb = this.randomCdb();
    this.cmdFrame(this.anyTag(), this.pickLun().bytes, cdb.cdb, cdb.expected, cdb.flags);
  }

  private garbageBytes(): Buffer {
    const n = 1 + (this.chance(0.7) ? this.int(16) : this.int(512));
    const g = Buffer.from(this.poolBytes(n));
    const r = this.int(5);
    if (r === 0) g[this.int(n)] = 0xbc; // a lone SOF byte
    else if (r === 1 && n >= 4) g.writeUInt32BE(SOF_WORD, this.int(n - 3)); // a SOF with nothing behind it
    else if (r === 2 && n >= 4) g.writeUInt32BE(EOF_WORD, this.int(n - 3));
    else if (r === 3) { g[n - 1] = 0xbc; if (n >= 3) { g[n - 2] = 0x56; g[n - 3] = 0xb5; g[n - 3] = 0xbc; } } // a SOF cut at the end
    return g;
  }
}
