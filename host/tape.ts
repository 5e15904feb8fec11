// The host side of the library (docs/tape.md): SSC/SMC commands over any CommandTransport, the
// backup manager's drive assignment (document 004, Fig. 9: a free drive is found and given to the
// host that asks, with a cartridge mounted), and labelled tapes (ECMA-13, document 002: the
// management information is written before the data).
//
// Labels: VOL1 (the barcode's first six characters as the volume serial); for each file HDR1, HDR2,
// a tapemark, the data records, a tapemark, EOF1 and EOF2 (EOF1 carrying the block count), a
// tapemark; after the last file one more tapemark, so two tapemarks end the file set. The label
// builders are plain functions over bytes, so the copy manager (EXTENDED COPY inline data) can
// send the same 80-byte records.
import type { CommandTransport } from '../lib/transport';
import { ScsiStatus } from '../lib/protocol';
import * as scsi from '../lib/scsi';
import { ScsiError, decodeSense } from '../lib/scsi';

export const CHANGER_DEFAULT_LUN = 256;
export const LABEL_BYTES = 80;
export const ELEM = { transport: 1, storage: 2, importExport: 3, drive: 4 } as const;

export interface Element { address: number; type: number; full: boolean; barcode: string; source?: number }
export interface Drive { lun: number; element: number; serial: string }

/** What a READ of one record found. */
export type ReadResult = { kind: 'record'; data: Buffer } | { kind: 'filemark' } | { kind: 'eod' };

// ---- The devices ----------------------------------------------------------------------------------------

/** Unit attentions one command may meet before it runs (each is reported once; a reset and a medium change may both be pending). */
const MAX_ATTENTIONS = 4;

export class TapeLibrary {
  /** Unit attentions met (LUN, ASC, ASCQ), oldest first: a medium change or a reset another host caused. */
  readonly attentions: Array<{ lun: number; asc: number; ascq: number }> = [];

  constructor(readonly transport: CommandTransport, readonly changerLun = CHANGER_DEFAULT_LUN) {}

  /**
   * Submits a command; a UNIT ATTENTION (the command did not run: SAM-5 5.14) is recorded in
   * `attentions` and the command sent again, as an initiator that has taken note of it does.
   */
  async submit(lun: number, cdb: Buffer, io: { out?: Uint8Array; inLength?: number } = {}): Promise<import('../lib/transport').ScsiResult> {
    for (let i = 0; ; i++) {
      const r = await this.transport.submit({ lun, cdb, dataOut: io.out, dataInLength: io.inLength });
      const s = r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined;
      if (!s || s.key !== scsi.SenseKey.UNIT_ATTENTION || i >= MAX_ATTENTIONS) return r;
      this.attentions.push({ lun, asc: s.asc, ascq: s.ascq });
    }
  }

  async run(lun: number, cdb: Buffer, io: { out?: Uint8Array; inLength?: number } = {}): Promise<Buffer> {
    const r = await this.submit(lun, cdb, io);
    if (r.status !== ScsiStatus.GOOD) throw new ScsiError(r.status, r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined, cdb[0]);
    return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  }

  async elements(): Promise<Element[]> {
    const b = Buffer.alloc(12);
    b[0] = 0xb8; b[1] = 0x10; b.writeUInt16BE(0xffff, 4); b[7] = 0x01; // VOLTAG, all types, 64 KiB
    return parseElementStatus(await this.run(this.changerLun, b, { inLength: 0x10000 }));
  }

  async move(source: number, destination: number): Promise<void> {
    const b = Buffer.alloc(12);
    b[0] = 0xa5; b.writeUInt16BE(source, 4); b.writeUInt16BE(destination, 6);
    await this.run(this.changerLun, b);
  }

  /** The drives: LUNs after the changer's, in element order (the topology places them so). */
  async drives(): Promise<Drive[]> {
    const els = (await this.elements()).filter((e) => e.type === ELEM.drive);
    return Promise.all(els.map(async (e, i) => {
      const lun = this.changerLun + 1 + i;
      return { lun, element: e.address, serial: scsi.parseUnitSerialNumber(await this.run(lun, scsi.inquiry(0x80), { inLength: 255 })) };
    }));
  }

  async whereIs(barcode: string): Promise<Element> {
    const e = (await this.elements()).find((x) => x.full && x.barcode === barcode);
    if (!e) throw new Error(`no cartridge with barcode ${barcode} in the library`);
    return e;
  }

  /**
   * The backup manager's assignment (004): the first drive this host can RESERVE (a drive reserved
   * by another host answers RESERVATION CONFLICT, so two hosts never get one drive) with no
   * cartridge in it; the cartridge is moved in and loaded. The drive stays reserved for the caller's
   * connection until release(). Throws when every drive is busy.
   */
  async assign(barcode: string): Promise<TapeDrive> {
    const at = await this.whereIs(barcode);
    const els = await this.elements();
    for (const d of await this.drives()) {
      const el = els.find((e) => e.address === d.element)!;
      if (el.full && el.barcode !== barcode) continue;
      try {
        await this.run(d.lun, Buffer.from([0x16, 0, 0, 0, 0, 0]));
      } catch (e) {
        if (e instanceof ScsiError && e.status === ScsiStatus.RESERVATION_CONFLICT) continue;
        throw e;
      }
      if (at.address !== d.element) await this.move(at.address, d.element);
      const drive = new TapeDrive(this, d.lun, d.element, barcode, at.type === ELEM.drive ? (at.source ?? at.address) : at.address);
      await drive.load();
      return drive;
    }
    throw new Error(`no free tape drive for ${barcode}: every drive is reserved by another host or holds another cartridge`);
  }
}

export class TapeDrive {
  constructor(readonly library: TapeLibrary, readonly lun: number, readonly element: number, readonly barcode: string, readonly home: number) {}

  private run(cdb: Buffer, io: { out?: Uint8Array; inLength?: number } = {}): Promise<Buffer> { return this.library.run(this.lun, cdb, io); }

  load(): Promise<Buffer> { return this.run(Buffer.from([0x1b, 0, 0, 0, 1, 0])); }
  rewind(): Promise<Buffer> { return this.run(Buffer.from([0x01, 0, 0, 0, 0, 0])); }
  async writeRecord(data: Uint8Array): Promise<void> { await this.run(six(0x0a, 0, data.length), { out: data }); }
  async writeFilemarks(n: number): Promise<void> { await this.run(six(0x10, 0, n)); }
  async position(): Promise<number> { return (await this.run(Buffer.from([0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { inLength: 20 })).readUInt32BE(4); }

  /** One record (variable mode); a record longer than `max` is an error (ILI with a negative residue). */
  async readRecord(max = 256 * 1024): Promise<ReadResult> {
    const r = await this.library.submit(this.lun, six(0x08, 0x02, max), { inLength: max });
    if (r.status === ScsiStatus.GOOD) return { kind: 'record', data: Buffer.from(r.data) };
    const s = r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined;
    if (s?.filemark) return { kind: 'filemark' };
    if (s && s.key === scsi.SenseKey.BLANK_CHECK) return { kind: 'eod' };
    if (s?.ili && (s.info! | 0) >= 0) return { kind: 'record', data: Buffer.from(r.data) };
    throw new ScsiError(r.status, s, 0x08);
  }

  /** Unloads, puts the cartridge back where it came from, and releases the drive. */
  async release(): Promise<void> {
    await this.run(Buffer.from([0x1b, 0, 0, 0, 0, 0]));
    await this.library.move(this.element, this.home);
    await this.run(Buffer.from([0x17, 0, 0, 0, 0, 0]));
  }
}

function six(op: number, b1: number, n: number): Buffer { return Buffer.from([op, b1, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, 0]); }

export function parseElementStatus(d: Buffer): Element[] {
  const out: Element[] = [];
  const total = Math.min(d.length, 8 + (d.readUInt32BE(4) & 0xffffff));
  for (let at = 8; at + 8 <= total;) {
    const voltag = (d[at + 1] & 0x80) !== 0;
    const len = d.readUInt16BE(at + 2);
    const bytes = d.readUInt32BE(at + 4) & 0xffffff;
    for (let q = at + 8; q + len <= Math.min(total, at + 8 + bytes); q += len) {
      out.push({
        address: d.readUInt16BE(q), type: d[at], full: (d[q + 2] & 1) !== 0,
        barcode: voltag ? d.toString('ascii', q + 12, q + 44).trim() : '',
        ...((d[q + 9] & 0x80) !== 0 ? { source: d.readUInt16BE(q + 10) } : {}),
      });
    }
    at += 8 + bytes;
  }
  return out;
}

// ---- ECMA-13 labels -------------------------------------------------------------------------------------

/** A field of `n` characters: text left-aligned and space padded (a-characters), or digits right-aligned and zero padded. */
function field(v: string | number, n: number): string {
  const s = typeof v === 'number' ? String(v).padStart(n, '0') : v.padEnd(n, ' ');
  if (s.length > n) throw new RangeError(`label field "${s}" is longer than ${n} characters`);
  return s;
}

/** Julian date as labels write it: a century character (space 19xx, 0 20xx), year, day of the year. */
export function labelDate(d: Date): string {
  const start = Date.UTC(d.getUTCFullYear(), 0, 1);
  const day = Math.floor((d.getTime() - start) / 86_400_000) + 1;
  return `${d.getUTCFullYear() >= 2000 ? '0' : ' '}${field(d.getUTCFullYear() % 100, 2)}${field(day, 3)}`;
}

function label(text: string): Buffer {
  if (text.length !== LABEL_BYTES) throw new Error(`label is ${text.length} characters, not 80`);
  return Buffer.from(text, 'ascii');
}

export function volumeSerial(barcode: string): string { return barcode.slice(0, 6); }

export function vol1(serial: string, owner = 'SANBOX'): Buffer {
  return label(`VOL1${field(serial, 6)} ${' '.repeat(13)}${field('SANBOX', 13)}${field(owner, 14)}${' '.repeat(28)}4`);
}

export interface FileLabel { name: string; sequence: number; serial: string; created: Date; blockBytes: number; blocks?: number }

/** HDR1/EOF1 (kind "HDR" or "EOF"): file identifier, file set, sequence, dates, block count (EOF). */
export function label1(kind: 'HDR' | 'EOF', f: FileLabel): Buffer {
  return label(`${kind}1${field(f.name.toUpperCase().slice(0, 17), 17)}${field(f.serial, 6)}0001${field(f.sequence, 4)}000100`
    + `${labelDate(f.created)}${labelDate(f.created)} ${field(kind === 'EOF' ? (f.blocks ?? 0) % 1e6 : 0, 6)}${field('SANBOX', 13)}${' '.repeat(7)}`);
}

/**
 * HDR2/EOF2: record format U (each record a block of at most blockBytes), block and record length.
 * Blocks over 99999 bytes (5 digits) are written as IBM's large block labels do: 00000 in the
 * length fields and the length in the large block length field, characters 71-80.
 */
export function label2(kind: 'HDR' | 'EOF', f: FileLabel): Buffer {
  const large = f.blockBytes > 99999;
  const n = large ? 0 : f.blockBytes;
  return label(`${kind}2U${field(n, 5)}${field(n, 5)}${' '.repeat(35)}00${' '.repeat(18)}${large ? field(f.blockBytes, 10) : ' '.repeat(10)}`);
}

export interface LabelledFile { name: string; data: Buffer }

/** Writes a labelled file set on the drive's cartridge from BOT: VOL1, then each file between its labels. */
export async function writeLabelledSet(drive: TapeDrive, files: LabelledFile[], o: { blockBytes?: number; largeBlocks?: boolean; created?: Date; progress?: (bytes: number) => void } = {}): Promise<void> {
  // 32 KiB: mainframe tools (hetmap) read records of at most 65535 bytes; HDR2 holds 5 digits.
  // largeBlocks: up to the drive's 256 KiB (large block labels), for hosts that read such records.
  const blockBytes = o.blockBytes ?? 32 * 1024;
  const limit = o.largeBlocks ? 256 * 1024 : 65535;
  if (blockBytes < 1 || blockBytes > limit) throw new RangeError(`labelled blocks are 1-${limit} bytes (${o.largeBlocks ? 'the drive\'s block limit' : 'HDR2 and AWS tools; largeBlocks allows 256 KiB'}), got ${blockBytes}`);
  const serial = volumeSerial(drive.barcode);
  await drive.rewind();
  await drive.writeRecord(vol1(serial));
  let done = 0;
  for (let i = 0; i < files.length; i++) {
    const f: FileLabel = { name: files[i].name, sequence: i + 1, serial, created: o.created ?? new Date(), blockBytes };
    await drive.writeRecord(label1('HDR', f));
    await drive.writeRecord(label2('HDR', f));
    await drive.writeFilemarks(1);
    let blocks = 0;
    for (let off = 0; off < files[i].data.length; off += blockBytes) {
      await drive.writeRecord(files[i].data.subarray(off, off + blockBytes));
      blocks++;
      done += Math.min(blockBytes, files[i].data.length - off);
      o.progress?.(done);
    }
    await drive.writeFilemarks(1);
    await drive.writeRecord(label1('EOF', { ...f, blocks }));
    await drive.writeRecord(label2('EOF', f));
    await drive.writeFilemarks(1);
  }
  await drive.writeFilemarks(1); // two tapemarks end the set
}

export interface ReadFile { name: string; sequence: number; blocks: number; data: Buffer; created: string }

/** Reads and checks a labelled set from BOT: labels in order, serial as expected, EOF1's block count against the blocks read. */
export async function readLabelledSet(drive: TapeDrive, o: { serial?: string } = {}): Promise<{ serial: string; files: ReadFile[] }> {
  await drive.rewind();
  const v = await expectLabel(drive, 'VOL1');
  const serial = v.toString('ascii', 4, 10).trim();
  const want = o.serial ?? volumeSerial(drive.barcode);
  if (serial !== want) throw new Error(`VOL1 names volume ${JSON.stringify(serial)}, expected ${JSON.stringify(want)}`);
  const files: ReadFile[] = [];
  for (;;) {
    const first = await drive.readRecord();
    if (first.kind !== 'record') break; // the second tapemark: the end of the set
    const hdr1 = checkLabel(first.data, 'HDR1');
    await expectLabel(drive, 'HDR2');
    await expectMark(drive, 'after HDR2');
    const parts: Buffer[] = [];
    for (let r = await drive.readRecord(); r.kind !== 'filemark'; r = await drive.readRecord()) {
      if (r.kind === 'eod') throw new Error(`file ${files.length + 1}: the data ends with no tapemark and no EOF labels`);
      parts.push(r.data);
    }
    const eof1 = await expectLabel(drive, 'EOF1');
    await expectLabel(drive, 'EOF2');
    await expectMark(drive, 'after EOF2');
    const counted = Number(eof1.toString('ascii', 54, 60));
    if (counted !== parts.length % 1e6) throw new Error(`file ${files.length + 1}: EOF1 counts ${counted} blocks, ${parts.length} were read`);
    if (eof1.toString('ascii', 4, 21) !== hdr1.toString('ascii', 4, 21)) throw new Error(`file ${files.length + 1}: EOF1 names another file than HDR1`);
    files.push({ name: hdr1.toString('ascii', 4, 21).trim(), sequence: Number(hdr1.toString('ascii', 31, 35)), blocks: parts.length, data: Buffer.concat(parts), created: hdr1.toString('ascii', 41, 47) });
  }
  return { serial, files };
}

function checkLabel(b: Buffer, id: string): Buffer {
  if (b.length !== LABEL_BYTES || b.toString('ascii', 0, 4) !== id) throw new Error(`expected a ${id} label, found ${b.length} bytes starting ${JSON.stringify(b.toString('latin1', 0, 4))}`);
  return b;
}

async function expectLabel(drive: TapeDrive, id: string): Promise<Buffer> {
  const r = await drive.readRecord();
  if (r.kind !== 'record') throw new Error(`expected a ${id} label, found a ${r.kind === 'eod' ? 'blank tape (end of data)' : 'tapemark'}`);
  return checkLabel(r.data, id);
}

async function expectMark(drive: TapeDrive, where: string): Promise<void> {
  const r = await drive.readRecord();
  if (r.kind !== 'filemark') throw new Error(`expected a tapemark ${where}, found ${r.kind === 'record' ? `a record of ${r.data.length} bytes` : 'the end of data'}`);
}
