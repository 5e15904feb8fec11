// Fixtures for the tape tests: a small array with a library (2 drives, 4 slots, 1 import/export
// element), in deterministic mode, and the SSC/SMC CDBs the tests send.
import * as path from 'path';
import { Emulator } from '../../harness';
import { smallTopology, SmallOptions } from '../harness/env';

export const CHANGER = 256;
export const DRIVE0 = 257;
export const DRIVE1 = 258;
export const SLOT0 = 0x1000;
export const IE0 = 0x10;
export const DT0 = 0x100;
export const DT1 = 0x101;

export function libraryTopology(o: SmallOptions & { library?: object }): object {
  const t = smallTopology({ mode: 'deterministic', ...o }) as { arrays: Array<Record<string, unknown>> };
  t.arrays[0].library = {
    slots: 4, importExport: 1, earlyWarning: '64KiB',
    drives: [{ name: 'drive0' }, { name: 'drive1' }],
    cartridges: [{ barcode: 'SB0001L5', size: '4MiB' }, { barcode: 'SB0002L5', size: '4MiB' }, { barcode: 'SB0003L5', size: '4MiB', writeProtect: true }],
    ...o.library,
  };
  return t;
}

export function startLibrary(o: SmallOptions & { library?: object }): Promise<Emulator> {
  return Emulator.start(libraryTopology(o), { debug: true });
}

export function libraryDir(dir: string): string { return path.join(dir, 'a0', 'library0'); }

const c6 = (op: number, b1 = 0, len = 0, b5 = 0): Buffer => Buffer.from([op, b1, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff, b5]);
export const cdb = {
  tur: () => c6(0x00),
  rewind: () => c6(0x01),
  readBlockLimits: () => c6(0x05),
  read: (len: number, o: { fixed?: boolean; sili?: boolean } = {}) => c6(0x08, (o.fixed ? 1 : 0) | (o.sili ? 2 : 0), len),
  write: (len: number, fixed = false) => c6(0x0a, fixed ? 1 : 0, len),
  writeFilemarks: (n: number) => c6(0x10, 0, n),
  space: (code: number, count: number) => c6(0x11, code, count & 0xffffff),
  erase: () => c6(0x19, 1),
  load: () => Buffer.from([0x1b, 0, 0, 0, 1, 0]),
  unload: () => Buffer.from([0x1b, 0, 0, 0, 0, 0]),
  reserve: () => c6(0x16),
  release: () => c6(0x17),
  prevent: (on: boolean) => Buffer.from([0x1e, 0, 0, 0, on ? 1 : 0, 0]),
  readPosition: () => Buffer.from([0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  modeSense6: (page = 0, alloc = 255) => Buffer.from([0x1a, 0, page, 0, alloc, 0]),
  modeSense10: (page = 0, alloc = 255) => Buffer.from([0x5a, 0, page, 0, 0, 0, 0, 0, alloc, 0]),
  modeSelect6: (len: number) => Buffer.from([0x15, 0x10, 0, 0, len, 0]),
  moveMedium: (src: number, dst: number) => {
    const b = Buffer.alloc(12); b[0] = 0xa5; b.writeUInt16BE(src, 4); b.writeUInt16BE(dst, 6); return b;
  },
  readElementStatus: (type = 0, start = 0, count = 0xffff, voltag = true, alloc = 0xffff) => {
    const b = Buffer.alloc(12); b[0] = 0xb8; b[1] = (voltag ? 0x10 : 0) | type; b.writeUInt16BE(start, 2); b.writeUInt16BE(count, 4);
    b[7] = (alloc >> 16) & 0xff; b.writeUInt16BE(alloc & 0xffff, 8); return b;
  },
  initializeElementStatus: () => c6(0x07),
};

/** Block descriptor MODE SELECT(6) parameter list setting the block length. */
export function blockSizeList(bytes: number): Buffer {
  const b = Buffer.alloc(12);
  b[3] = 8;
  b[9] = (bytes >> 16) & 0xff; b.writeUInt16BE(bytes & 0xffff, 10);
  return b;
}

export interface Element { address: number; type: number; full: boolean; barcode: string; source?: number }

/** READ ELEMENT STATUS data, every page. */
export function parseElements(d: Buffer): Element[] {
  const out: Element[] = [];
  const total = 8 + (d.readUInt32BE(4) & 0xffffff);
  let at = 8;
  while (at + 8 <= Math.min(total, d.length)) {
    const type = d[at];
    const voltag = (d[at + 1] & 0x80) !== 0;
    const len = d.readUInt16BE(at + 2);
    const bytes = d.readUInt32BE(at + 4) & 0xffffff;
    for (let q = at + 8; q < at + 8 + bytes; q += len) {
      const full = (d[q + 2] & 1) !== 0;
      out.push({
        address: d.readUInt16BE(q), type, full, barcode: voltag ? d.subarray(q + 12, q + 44).toString('ascii').trim() : '',
        ...((d[q + 9] & 0x80) !== 0 ? { source: d.readUInt16BE(q + 10) } : {}),
      });
    }
    at += 8 + bytes;
  }
  return out;
}
