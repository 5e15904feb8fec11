// Where a medium's sectors live: a RAM disk or a sparse raw image file. Stores move bytes straight
// between the medium and common memory (a cache slot): no staging copy on the way.
//
// Every call reports through `done`. A file store's calls go to libuv's thread pool, straight
// into and out of the shared memory, so a slow disk never holds up the array's thread; a RAM
// store's are memory copies and call `done` before they return.
import * as fs from 'fs';
import * as path from 'path';

export type IoDone = (error?: NodeJS.ErrnoException | null) => void;

export interface MediumStore {
  /** Copies [offset, offset + length) of the medium into mem at addr. */
  read(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void;
  /** Copies mem[addr, addr + length) onto the medium at offset. */
  write(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void;
  /** Makes the writes completed before it durable. */
  flush(done: IoDone): void;
  /** Only once no call is in flight. */
  close(): void;
  readonly description: string;
  /** True when calls complete on other threads (the binding bounds how many it has in flight). */
  readonly threaded: boolean;
}

const PIECE = 1 << 20;

/** A RAM disk in 1 MiB pieces, allocated on first write: a 1 GiB RAM disk costs what is written. */
export class RamStore implements MediumStore {
  private readonly pieces = new Map<number, Buffer>();
  readonly threaded = false;
  constructor(readonly bytes: number) {}
  get description(): string { return `ram ${this.bytes} bytes, ${this.pieces.size} MiB touched`; }

  read(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    this.each(offset, length, (piece, at, n, moved) => {
      const p = this.pieces.get(piece);
      if (p) mem.set(p.subarray(at, at + n), addr + moved); else mem.fill(0, addr + moved, addr + moved + n);
    });
    done();
  }

  write(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    this.each(offset, length, (piece, at, n, moved) => {
      let p = this.pieces.get(piece);
      if (!p) { p = Buffer.alloc(PIECE); this.pieces.set(piece, p); }
      p.set(mem.subarray(addr + moved, addr + moved + n), at);
    });
    done();
  }

  private each(offset: number, length: number, f: (piece: number, at: number, n: number, moved: number) => void): void {
    let moved = 0;
    while (moved < length) {
      const pos = offset + moved;
      const at = pos % PIECE;
      const n = Math.min(length - moved, PIECE - at);
      f(Math.floor(pos / PIECE), at, n, moved);
      moved += n;
    }
  }

  flush(done: IoDone): void { done(); /* RAM is as durable as it gets */ }
  close(): void { this.pieces.clear(); }
}

/**
 * A raw image file, sparse: created (or extended) to the medium's size with ftruncate, so
 * `qemu-img info` sees a raw image of that virtual size and only written extents take space.
 */
export class FileStore implements MediumStore {
  private fd: number;
  readonly threaded: boolean;
  /** `inline`: blocking calls on this thread (ArrayOptions.io), done before they return. */
  constructor(readonly file: string, readonly bytes: number, private readonly inline = false) {
    this.threaded = !inline;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w+');
    const size = fs.fstatSync(this.fd).size;
    if (size < bytes) fs.ftruncateSync(this.fd, bytes);
  }
  get description(): string { return `file ${this.file}`; }

  read(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    if (this.inline) return this.blocking(done, () => {
      for (let moved = 0; moved < length;) {
        const n = fs.readSync(this.fd, mem, addr + moved, length - moved, offset + moved);
        if (n === 0) { mem.fill(0, addr + moved, addr + length); return; }
        moved += n;
      }
    });
    const more = (moved: number): void => {
      if (moved >= length) { done(); return; }
      fs.read(this.fd, mem, addr + moved, length - moved, offset + moved, (e, n) => {
        if (e) done(e);
        else if (n === 0) { mem.fill(0, addr + moved, addr + length); done(); } // past the end of a shorter file: zeros
        else more(moved + n);
      });
    };
    more(0);
  }

  write(mem: Uint8Array, addr: number, offset: number, length: number, done: IoDone): void {
    if (this.inline) return this.blocking(done, () => {
      for (let moved = 0; moved < length;) moved += fs.writeSync(this.fd, mem, addr + moved, length - moved, offset + moved);
    });
    const more = (moved: number): void => {
      if (moved >= length) { done(); return; }
      fs.write(this.fd, mem, addr + moved, length - moved, offset + moved, (e, n) => (e ? done(e) : more(moved + n)));
    };
    more(0);
  }

  flush(done: IoDone): void {
    if (this.inline) this.blocking(done, () => fs.fdatasyncSync(this.fd));
    else fs.fdatasync(this.fd, done);
  }

  private blocking(done: IoDone, f: () => void): void {
    let error: NodeJS.ErrnoException | undefined;
    try { f(); } catch (e) { error = e as NodeJS.ErrnoException; }
    done(error);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
