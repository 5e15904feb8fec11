// A cartridge as an AWS tape image (the format Hercules' awstape device, tapemap and hetmap read):
// a sequence of blocks, each with a 6-byte header — length of this block (u16 LE), length of the
// previous block (u16 LE), flags (80h: a record begins, 20h: it ends, 40h: a tapemark) and a zero —
// followed by the block's data. A record longer than 65535 bytes spans several blocks.
//
// The tape is an index of objects (records and tapemarks) built by reading the file once; the
// position is an object number (what READ POSITION calls the logical object number). Writing at a
// position truncates what followed it (a tape has no insert). Every write is one positioned
// writev of headers and data; it is acknowledged only when that call has returned, so a kill of the
// emulator keeps everything acknowledged. A write torn by a kill leaves a partial block at the end:
// open() drops it (the file is truncated to the last whole object), so the image is always one that
// tapemap lists whole.
//
// The drive's I/O (read, write, truncate, fdatasync) runs on libuv's pool (the *Async methods):
// the index changes only once the call has succeeded, so it never describes bytes the file lacks.
// The synchronous methods are for scanning at open and for tools.
import * as fs from 'fs';
import { promisify } from 'util';

const writevP = promisify(fs.writev);
const readP = promisify(fs.read);
const ftruncateP = promisify(fs.ftruncate);
const fdatasyncP = promisify(fs.fdatasync);

export const AWS_HEADER_BYTES = 6;
export const AWS_NEW_RECORD = 0x80;
export const AWS_TAPEMARK = 0x40;
export const AWS_END_RECORD = 0x20;
const MAX_BLOCK = 0xffff;

export interface TapeObject { offset: number; length: number; mark: boolean }

export class AwsImage {
  /** The objects from BOT, in order. */
  readonly objects: TapeObject[] = [];
  /** Bytes of the image (where the next object would start). */
  end = 0;
  /** Bytes dropped at open: a write torn by a crash. */
  readonly tornBytes: number;
  private fd: number;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, fs.existsSync(path) ? 'r+' : 'w+');
    const size = fs.fstatSync(this.fd).size;
    this.scan(size);
    this.tornBytes = size - this.end;
    if (this.tornBytes > 0) fs.ftruncateSync(this.fd, this.end);
  }

  /** Builds the index; stops at the first block that is not whole or does not follow from the one before. */
  private scan(size: number): void {
    const h = Buffer.alloc(AWS_HEADER_BYTES);
    let at = 0;
    let prev = 0;
    let open: TapeObject | undefined; // a record whose end block has not come yet
    while (at + AWS_HEADER_BYTES <= size) {
      fs.readSync(this.fd, h, 0, AWS_HEADER_BYTES, at);
      const length = h.readUInt16LE(0);
      const flags = h[4];
      if (h.readUInt16LE(2) !== prev || at + AWS_HEADER_BYTES + length > size) break;
      if (flags & AWS_TAPEMARK) {
        if (open || length !== 0) break;
        this.objects.push({ offset: at, length: 0, mark: true });
      } else {
        if ((flags & AWS_NEW_RECORD) !== 0 ? open !== undefined : open === undefined) break;
        if (!open) open = { offset: at, length: 0, mark: false };
        open.length += length;
        if (flags & AWS_END_RECORD) { this.objects.push(open); open = undefined; }
      }
      at += AWS_HEADER_BYTES + length;
      prev = length;
      if (!open) this.end = at;
    }
  }

  /** Offset of object `pos` (the end of the image when pos is at EOD). */
  offsetOf(pos: number): number { return pos < this.objects.length ? this.objects[pos].offset : this.end; }

  /** Reads record `pos`'s first `into.length` bytes (at most) into `into`; returns the record's whole length. */
  readRecord(pos: number, into: Uint8Array): number {
    const o = this.objects[pos];
    let at = o.offset;
    let got = 0;
    const h = Buffer.alloc(AWS_HEADER_BYTES);
    while (got < Math.min(o.length, into.length)) {
      fs.readSync(this.fd, h, 0, AWS_HEADER_BYTES, at);
      const length = h.readUInt16LE(0);
      const n = Math.min(length, into.length - got);
      if (n > 0) fs.readSync(this.fd, into, got, n, at + AWS_HEADER_BYTES);
      got += n;
      at += AWS_HEADER_BYTES + length;
    }
    return o.length;
  }

  /** Bytes were written since the last sync(): REWIND and UNLOAD make them durable first. */
  dirty = false;

  /** The end of object `pos` (where the next one starts). */
  endOf(pos: number): number { return pos + 1 < this.objects.length ? this.objects[pos + 1].offset : this.end; }

  /** Reads [from, to) of the image (headers and data) off the array's thread. */
  async readSpan(from: number, to: number): Promise<Buffer> {
    const b = Buffer.alloc(to - from);
    let got = 0;
    while (got < b.length) {
      const { bytesRead } = await readP(this.fd, b, got, b.length - got, from + got);
      if (bytesRead === 0) throw new Error(`${this.path}: ends at ${from + got}, the index says ${to}`);
      got += bytesRead;
    }
    return b;
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

  /** writeRecords off the array's thread; the index follows once the file holds them. */
  async writeRecordsAsync(pos: number, records: Uint8Array[]): Promise<void> {
    await this.truncateAtAsync(pos);
    const { parts, added, at } = this.recordParts(records);
    await writevAllAsync(this.fd, parts, this.end);
    this.objects.push(...added);
    this.end = at;
    this.dirty = true;
  }

  /** writeMarks off the array's thread. */
  async writeMarksAsync(pos: number, count: number): Promise<void> {
    await this.truncateAtAsync(pos);
    const parts = this.markParts(count);
    await writevAllAsync(this.fd, parts, this.end);
    for (let i = 0; i < count; i++) this.objects.push({ offset: this.end + i * AWS_HEADER_BYTES, length: 0, mark: true });
    this.end += count * AWS_HEADER_BYTES;
    this.dirty = true;
  }

  /** End of data at `pos`, off the array's thread. */
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
    for (const r of records) {
      added.push({ offset: at, length: r.length, mark: false });
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

  /** Writes records (each a view of the data) at `pos`: what followed is gone. */
  writeRecords(pos: number, records: Uint8Array[]): void {
    this.truncateAt(pos);
    const { parts, added, at } = this.recordParts(records);
    writevAll(this.fd, parts, this.end);
    this.objects.push(...added);
    this.end = at;
  }

  /** Writes `count` tapemarks at `pos`. */
  writeMarks(pos: number, count: number): void {
    this.truncateAt(pos);
    const parts = this.markParts(count);
    writevAll(this.fd, parts, this.end);
    for (let i = 0; i < count; i++) this.objects.push({ offset: this.end + i * AWS_HEADER_BYTES, length: 0, mark: true });
    this.end += count * AWS_HEADER_BYTES;
  }

  /** End of data at `pos`. */
  truncateAt(pos: number): void {
    if (pos >= this.objects.length) return;
    this.end = this.objects[pos].offset;
    this.objects.length = pos;
    fs.ftruncateSync(this.fd, this.end);
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

function writevAll(fd: number, parts: Uint8Array[], position: number): void {
  let at = position;
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    const n = fs.writevSync(fd, rest.slice(0, 1024), at);
    at += n;
    let skip = n;
    while (rest.length > 0 && skip >= rest[0].length) { skip -= rest[0].length; rest = rest.slice(1); }
    if (skip > 0) rest[0] = rest[0].subarray(skip);
  }
}

async function writevAllAsync(fd: number, parts: Uint8Array[], position: number): Promise<void> {
  let at = position;
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    const { bytesWritten: n } = await writevP(fd, rest.slice(0, 1024), at);
    at += n;
    let skip = n;
    while (rest.length > 0 && skip >= rest[0].length) { skip -= rest[0].length; rest = rest.slice(1); }
    if (skip > 0) rest[0] = rest[0].subarray(skip);
  }
}
