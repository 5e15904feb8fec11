// A cartridge as an AWS tape image (the format Hercules' awstape device, tapemap and hetmap read):
// a sequence of blocks, each with a 6-byte header — length of this block (u16 LE), length of the
// previous block (u16 LE), flags (80h: a record begins, 20h: it ends, 40h: a tapemark) and a zero —
// followed by the block's data. A record longer than 65535 bytes spans several blocks.
//
// The tape is an index of objects (records and tapemarks) built by reading the file's headers once
// when the cartridge is threaded (open); the position is an object number (what READ POSITION calls
// the logical object number). Writing at a position truncates what followed it (a tape has no
// insert). Every write is one positioned writev of headers and data; it is acknowledged only when
// that call has returned, so a kill of the emulator keeps everything acknowledged. A write torn by
// a kill leaves a partial block at the end: open() drops it (the file is truncated to the last whole
// object), so the image is always one that tapemap lists whole.
//
// All of the image's I/O (the scan at open, read, write, truncate, fdatasync) runs on libuv's pool:
// the array's thread is never blocked by a cartridge, however long (docs/tape.md). The scan reads a
// window of headers at a time and parses it between awaits, so the work between two turns of the
// event loop is bounded by the window. The index changes only once a call has succeeded, so it
// never describes bytes the file lacks.
import * as fs from 'fs';
import { promisify } from 'util';

const openP = promisify(fs.open);
const fstatP = promisify(fs.fstat);
const writevP = promisify(fs.writev);
const readP = promisify(fs.read);
const ftruncateP = promisify(fs.ftruncate);
const fdatasyncP = promisify(fs.fdatasync);

export const AWS_HEADER_BYTES = 6;
export const AWS_NEW_RECORD = 0x80;
export const AWS_TAPEMARK = 0x40;
export const AWS_END_RECORD = 0x20;
const MAX_BLOCK = 0xffff;

/** A record or a tapemark; `marks`: the tapemarks before it (its logical file, READ POSITION's identifier). */
export interface TapeObject { offset: number; length: number; mark: boolean; marks: number }

/**
 * Bytes of the image read per call while it is scanned: at most this many bytes of headers are
 * parsed between two turns of the event loop. After a block longer than a sixteenth of it only the
 * next header is read (the data between headers is not the scan's business).
 */
export const SCAN_WINDOW = 64 * 1024;

export class AwsImage {
  /** The objects from BOT, in order. */
  readonly objects: TapeObject[] = [];
  /** Bytes of the image (where the next object would start). */
  end = 0;
  /** Bytes dropped at open: a write torn by a crash. */
  tornBytes = 0;
  /** Reads the scan made (each one on the pool, each followed by a turn of the event loop). */
  scanReads = 0;

  private constructor(readonly path: string, private fd: number) {}

  /**
   * Opens (creating it empty if absent) and indexes the image, every call on libuv's pool; a torn
   * tail is cut off. The image is ready for the drive when this resolves.
   */
  static async open(path: string): Promise<AwsImage> {
    const fd = await openP(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o666);
    const img = new AwsImage(path, fd);
    try {
      const { size } = await fstatP(fd);
      await img.scan(size);
      img.tornBytes = size - img.end;
      if (img.tornBytes > 0) await ftruncateP(fd, img.end);
    } catch (e) {
      img.close();
      throw e;
    }
    return img;
  }

  /** Builds the index; stops at the first block that is not whole or does not follow from the one before. */
  private async scan(size: number): Promise<void> {
    const window = Buffer.alloc(SCAN_WINDOW);
    let from = 0; // the file offset of window[0]
    let held = 0; // bytes of the window read
    let at = 0;
    let prev = 0;
    let open: TapeObject | undefined; // a record whose end block has not come yet
    let marks = 0;
    while (at + AWS_HEADER_BYTES <= size) {
      if (at + AWS_HEADER_BYTES > from + held) {
        const want = Math.min(prev > SCAN_WINDOW / 16 ? AWS_HEADER_BYTES : SCAN_WINDOW, size - at);
        from = at;
        held = await this.readInto(window, want, at);
        this.scanReads++;
        if (held < AWS_HEADER_BYTES) break; // the file is shorter than its size said
      }
      const h = at - from;
      const length = window.readUInt16LE(h);
      const flags = window[h + 4];
      if (window.readUInt16LE(h + 2) !== prev || at + AWS_HEADER_BYTES + length > size) break;
      if (flags & AWS_TAPEMARK) {
        if (open || length !== 0) break;
        this.objects.push({ offset: at, length: 0, mark: true, marks: marks++ });
      } else {
        if ((flags & AWS_NEW_RECORD) !== 0 ? open !== undefined : open === undefined) break;
        if (!open) open = { offset: at, length: 0, mark: false, marks };
        open.length += length;
        if (flags & AWS_END_RECORD) { this.objects.push(open); open = undefined; }
      }
      at += AWS_HEADER_BYTES + length;
      prev = length;
      if (!open) this.end = at;
    }
  }

  /** Reads up to `length` bytes at `position` into `into` (fewer only at the end of the file). */
  private async readInto(into: Buffer, length: number, position: number): Promise<number> {
    let got = 0;
    while (got < length) {
      const { bytesRead } = await readP(this.fd, into, got, length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }

  /** Offset of object `pos` (the end of the image when pos is at EOD). */
  offsetOf(pos: number): number { return pos < this.objects.length ? this.objects[pos].offset : this.end; }

  /** Tapemarks between BOT and object `pos` (the end of data when pos is there): the logical file identifier. */
  marksBefore(pos: number): number {
    if (pos < this.objects.length) return this.objects[pos].marks;
    const last = this.objects[this.objects.length - 1];
    return last ? last.marks + (last.mark ? 1 : 0) : 0;
  }

  /** The first object of logical file `file` (the one after its file-th tapemark), or -1 when the tape has fewer marks. */
  fileStart(file: number): number {
    if (this.marksBefore(this.objects.length) < file) return -1;
    let lo = 0;
    let hi = this.objects.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.objects[mid].marks < file) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Bytes were written since the last sync(): REWIND and UNLOAD make them durable first. */
  dirty = false;

  /** The end of object `pos` (where the next one starts). */
  endOf(pos: number): number { return pos + 1 < this.objects.length ? this.objects[pos + 1].offset : this.end; }

  /** Reads [from, to) of the image (headers and data) off the array's thread. */
  async readSpan(from: number, to: number): Promise<Buffer> {
    const b = Buffer.alloc(to - from);
    const got = await this.readInto(b, b.length, from);
    if (got < b.length) throw new Error(`${this.path}: ends at ${from + got}, the index says ${to}`);
    return b;
  }

  /** Record `pos`'s first `max` bytes at most (one read of its blocks). */
  async readRecord(pos: number, max: number): Promise<Buffer> {
    const from = this.objects[pos].offset;
    return this.recordFrom(await this.readSpan(from, this.endOf(pos)), from, pos, max);
  }

  /** Record `pos`'s data from a span read by readSpan starting at `spanFrom`: its first `max` bytes at most. */
  recordFrom(span: Buffer, spanFrom: number, pos: number, max: number): Buffer {
    const o = this.objects[pos];
    const out = Buffer.alloc(Math.min(max, o.length));
    let at = o.offset - spanFrom;
    let got = 0;
    while (got < out.length) {
      const length = span.readUInt16LE(at);
      const n = Math.min(length, out.length - got);
      span.copy(out, got, at + AWS_HEADER_BYTES, at + AWS_HEADER_BYTES + n);
      got += n;
      at += AWS_HEADER_BYTES + length;
    }
    return out;
  }

  /** Writes records (each a view of the data) at `pos`: what followed is gone. The index follows once the file holds them. */
  async writeRecordsAsync(pos: number, records: Uint8Array[]): Promise<void> {
    await this.truncateAtAsync(pos);
    const { parts, added, at } = this.recordParts(records);
    await writevAllAsync(this.fd, parts, this.end);
    for (const o of added) this.objects.push(o); // one at a time: a spread of 16384 records is too many arguments
    this.end = at;
    this.dirty = true;
  }

  /** Writes `count` tapemarks at `pos`. */
  async writeMarksAsync(pos: number, count: number): Promise<void> {
    await this.truncateAtAsync(pos);
    const parts = this.markParts(count);
    await writevAllAsync(this.fd, parts, this.end);
    const marks = this.marksBefore(this.objects.length);
    for (let i = 0; i < count; i++) this.objects.push({ offset: this.end + i * AWS_HEADER_BYTES, length: 0, mark: true, marks: marks + i });
    this.end += count * AWS_HEADER_BYTES;
    this.dirty = true;
  }

  /** End of data at `pos`. */
  async truncateAtAsync(pos: number): Promise<void> {
    if (pos >= this.objects.length) return;
    const end = this.objects[pos].offset;
    await ftruncateP(this.fd, end);
    this.end = end;
    this.objects.length = pos;
    this.dirty = true;
  }

  /** What was written is durable (fdatasync): a tape's filemark is the sync point a backup relies on. */
  async sync(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try { await fdatasyncP(this.fd); } catch (e) { this.dirty = true; throw e; }
  }

  private recordParts(records: Uint8Array[]): { parts: Uint8Array[]; added: TapeObject[]; at: number } {
    const parts: Uint8Array[] = [];
    let prev = this.previousBlockLength();
    let at = this.end;
    const added: TapeObject[] = [];
    const marks = this.marksBefore(this.objects.length);
    for (const r of records) {
      added.push({ offset: at, length: r.length, mark: false, marks });
      for (let off = 0; off < r.length || off === 0; off += MAX_BLOCK) {
        const n = Math.min(MAX_BLOCK, r.length - off);
        const flags = (off === 0 ? AWS_NEW_RECORD : 0) | (off + n >= r.length ? AWS_END_RECORD : 0);
        parts.push(header(n, prev, flags), r.subarray(off, off + n));
        prev = n;
        at += AWS_HEADER_BYTES + n;
        if (r.length === 0) break;
      }
    }
    return { parts, added, at };
  }

  private markParts(count: number): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let prev = this.previousBlockLength();
    for (let i = 0; i < count; i++) { parts.push(header(0, prev, AWS_TAPEMARK)); prev = 0; }
    return parts;
  }

  /** The length of the last block before the end (the "previous length" of the next header). */
  private previousBlockLength(): number {
    if (this.end === 0) return 0;
    const last = this.objects[this.objects.length - 1];
    if (last.mark) return 0;
    const rest = last.length % MAX_BLOCK;
    return last.length === 0 ? 0 : rest === 0 ? MAX_BLOCK : rest;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function header(length: number, prev: number, flags: number): Buffer {
  const h = Buffer.alloc(AWS_HEADER_BYTES);
  h.writeUInt16LE(length, 0);
  h.writeUInt16LE(prev, 2);
  h[4] = flags;
  return h;
}

async function writevAllAsync(fd: number, parts: Uint8Array[], position: number): Promise<void> {
  const rest = parts.filter((p) => p.length > 0);
  let at = position;
  let i = 0; // the first part not yet written whole
  while (i < rest.length) {
    const { bytesWritten } = await writevP(fd, rest.slice(i, i + 1024), at); // IOV_MAX parts a call
    at += bytesWritten;
    let skip = bytesWritten;
    while (i < rest.length && skip >= rest[i].length) { skip -= rest[i].length; i++; }
    if (skip > 0) rest[i] = rest[i].subarray(skip);
  }
}
