// Where a medium's sectors live: a RAM disk or a sparse raw image file. Stores move bytes straight
// between the medium and common memory (a cache slot): no staging copy on the way.
import * as fs from 'fs';
import * as path from 'path';

export interface MediumStore {
  /** Copies [offset, offset + length) of the medium into mem at addr. */
  read(mem: Uint8Array, addr: number, offset: number, length: number): void;
  /** Copies mem[addr, addr + length) onto the medium at offset. */
  write(mem: Uint8Array, addr: number, offset: number, length: number): void;
  /** Makes earlier writes durable. */
  flush(): void;
  close(): void;
  readonly description: string;
}

const PIECE = 1 << 20;

/** A RAM disk in 1 MiB pieces, allocated on first write: a 1 GiB RAM disk costs what is written. */
export class RamStore implements MediumStore {
  private readonly pieces = new Map<number, Buffer>();
  constructor(readonly bytes: number) {}
  get description(): string { return `ram ${this.bytes} bytes, ${this.pieces.size} MiB touched`; }

  read(mem: Uint8Array, addr: number, offset: number, length: number): void {
    this.each(offset, length, (piece, at, n, done) => {
      const p = this.pieces.get(piece);
      if (p) mem.set(p.subarray(at, at + n), addr + done); else mem.fill(0, addr + done, addr + done + n);
    });
  }

  write(mem: Uint8Array, addr: number, offset: number, length: number): void {
    this.each(offset, length, (piece, at, n, done) => {
      let p = this.pieces.get(piece);
      if (!p) { p = Buffer.alloc(PIECE); this.pieces.set(piece, p); }
      p.set(mem.subarray(addr + done, addr + done + n), at);
    });
  }

  private each(offset: number, length: number, f: (piece: number, at: number, n: number, done: number) => void): void {
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const at = pos % PIECE;
      const n = Math.min(length - done, PIECE - at);
      f(Math.floor(pos / PIECE), at, n, done);
      done += n;
    }
  }

  flush(): void { /* RAM is as durable as it gets */ }
  close(): void { this.pieces.clear(); }
}

/**
 * A raw image file, sparse: created (or extended) to the medium's size with ftruncate, so
 * `qemu-img info` sees a raw image of that virtual size and only written extents take space.
 */
export class FileStore implements MediumStore {
  private fd: number;
  constructor(readonly file: string, readonly bytes: number) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w+');
    const size = fs.fstatSync(this.fd).size;
    if (size < bytes) fs.ftruncateSync(this.fd, bytes);
  }
  get description(): string { return `file ${this.file}`; }

  read(mem: Uint8Array, addr: number, offset: number, length: number): void {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, mem, addr + done, length - done, offset + done);
      if (n === 0) { mem.fill(0, addr + done, addr + length); return; }
      done += n;
    }
  }

  write(mem: Uint8Array, addr: number, offset: number, length: number): void {
    let done = 0;
    while (done < length) done += fs.writeSync(this.fd, mem, addr + done, length - done, offset + done);
  }

  flush(): void { fs.fdatasyncSync(this.fd); }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
