// The backup server of document 001 (backup software 106 on the backup server 102): server-free
// backup of a volume to a tape by EXTENDED COPY, and its restore. The array's copy manager moves
// the data; this program only asks: it assigns a drive (004's backup manager: RESERVE, mount,
// load), builds the parameter list, and follows the copy with RECEIVE COPY RESULTS.
//
// What goes on the tape is an ECMA-13 labelled file set (docs/tape.md) that hetmap and tapemap
// list: VOL1; file 1 "VOLINFO" holding the volume's management information first (document 002:
// format ID, label, host, mount point, time stamp, then the volume's geometry); file 2 the volume's
// blocks in 32 KiB records. The labels and the management information travel as inline data of the
// same EXTENDED COPY (segment 04h), the tapemarks as segment 10h, the blocks as segments 00h.
import * as os from 'os';
import * as scsi from '../lib/scsi';
import { CommandTransport, ScsiCommand } from '../lib/transport';
import { ScsiStatus } from '../lib/protocol';
import { decodeSense, ScsiError } from '../lib/scsi';

import { ScsiClient } from './client';
import { TapeLibrary, TapeDrive, vol1, label1, label2, volumeSerial, FileLabel, LABEL_BYTES } from './tape';

export const OP_EXTENDED_COPY = 0x83;
export const OP_RECEIVE_COPY_RESULTS = 0x84;
export const RECORD_BYTES = 32 * 1024;
/** Blocks a block<->stream segment moves at most (its count is 16 bits). */
const SEGMENT_BLOCKS_MAX = 0x8000;

// ---- Parameter lists ---------------------------------------------------------------------------

export interface Cscd { type: 'block' | 'stream'; naa: Buffer; blockBytes: number; pad?: boolean }

export const Policy = { merge: 0, priority: 1, wait: 2 } as const;
export type PolicyName = keyof typeof Policy;

export type Segment =
  | { type: 'block-to-stream'; src: number; dst: number; lba: number; blocks: number; streamLength: number }
  | { type: 'stream-to-block'; src: number; dst: number; lba: number; blocks: number; streamLength: number }
  | { type: 'block-to-block'; src: number; dst: number; srcLba: number; dstLba: number; blocks: number; dc?: boolean }
  | { type: 'inline'; dst: number; offset: number; bytes: number; streamLength: number }
  | { type: 'embedded'; dst: number; data: Buffer; streamLength: number }
  | { type: 'hold'; src: number; streamLength: number }
  | { type: 'filemarks'; dst: number; count: number }
  | { type: 'pair'; cscd: number; split: boolean; immed: boolean; policy: PolicyName };

export interface CopyList { listId: number; nrcr?: boolean; priority?: number; targets: Cscd[]; segments: Segment[]; inline?: Buffer }

export function cscdDescriptor(t: Cscd): Buffer {
  const d = Buffer.alloc(32);
  d[0] = 0xe4;
  d[1] = t.type === 'block' ? 0x00 : 0x01;
  d[4] = 0x01; // binary
  d[5] = 0x03; // logical unit, NAA
  d[7] = 16;
  t.naa.copy(d, 8, 0, 16);
  d[28] = (t.pad ? 0x04 : 0) | (t.type === 'stream' && t.blockBytes > 0 ? 0x01 : 0);
  d.writeUIntBE(t.blockBytes, 29, 3);
  return d;
}

export function segmentDescriptor(s: Segment): Buffer {
  const head = (type: number, len: number): Buffer => { const b = Buffer.alloc(len); b[0] = type; b.writeUInt16BE(len - 4, 2); return b; };
  switch (s.type) {
    case 'block-to-stream': case 'stream-to-block': {
      const b = head(s.type === 'block-to-stream' ? 0x00 : 0x01, 24);
      b.writeUInt16BE(s.src, 4); b.writeUInt16BE(s.dst, 6); b.writeUIntBE(s.streamLength, 9, 3);
      b.writeUInt16BE(s.blocks, 14); b.writeBigUInt64BE(BigInt(s.lba), 16);
      return b;
    }
    case 'block-to-block': {
      const b = head(0x02, 28);
      b[1] = s.dc ? 0x02 : 0;
      b.writeUInt16BE(s.src, 4); b.writeUInt16BE(s.dst, 6); b.writeUInt16BE(s.blocks, 10);
      b.writeBigUInt64BE(BigInt(s.srcLba), 12); b.writeBigUInt64BE(BigInt(s.dstLba), 20);
      return b;
    }
    case 'inline': {
      const b = head(0x04, 20);
      b.writeUInt16BE(s.dst, 6); b.writeUIntBE(s.streamLength, 9, 3); b.writeUInt32BE(s.offset, 12); b.writeUInt32BE(s.bytes, 16);
      return b;
    }
    case 'embedded': {
      const b = head(0x05, 16 + ((s.data.length + 3) & ~3));
      b.writeUInt16BE(s.dst, 6); b.writeUIntBE(s.streamLength, 9, 3); b.writeUInt16BE(s.data.length, 14); s.data.copy(b, 16);
      return b;
    }
    case 'hold': {
      const b = head(0x0f, 12);
      b.writeUInt16BE(s.src, 4); b.writeUIntBE(s.streamLength, 9, 3);
      return b;
    }
    case 'filemarks': {
      const b = head(0x10, 12);
      b.writeUInt16BE(s.dst, 6); b.writeUIntBE(s.count, 9, 3);
      return b;
    }
    case 'pair': {
      const b = head(0xc0, 12);
      b.writeUInt16BE(s.cscd, 4); b[6] = (s.split ? 1 : 0) | (s.immed ? 2 : 0); b[7] = Policy[s.policy];
      return b;
    }
  }
}

/** The EXTENDED COPY (LID1) parameter list. */
export function extendedCopyList(l: CopyList): Buffer {
  const targets = Buffer.concat(l.targets.map(cscdDescriptor));
  const segments = Buffer.concat(l.segments.map(segmentDescriptor));
  const inline = l.inline ?? Buffer.alloc(0);
  const h = Buffer.alloc(16);
  h[0] = l.listId;
  h[1] = (l.nrcr ? 0x10 : 0) | ((l.priority ?? 0) & 7);
  h.writeUInt16BE(targets.length, 2);
  h.writeUInt32BE(segments.length, 8);
  h.writeUInt32BE(inline.length, 12);
  return Buffer.concat([h, targets, segments, inline]);
}

export function extendedCopyCdb(length: number): Buffer {
  const b = Buffer.alloc(16); b[0] = OP_EXTENDED_COPY; b.writeUInt32BE(length, 10); return b;
}

export const Results = { copyStatus: 0x00, receiveData: 0x01, operatingParameters: 0x03, failedSegment: 0x04 } as const;

export function receiveCopyResultsCdb(sa: number, listId: number, alloc: number): Buffer {
  const b = Buffer.alloc(16); b[0] = OP_RECEIVE_COPY_RESULTS; b[1] = sa; b[2] = listId; b.writeUInt32BE(alloc, 10); return b;
}

export interface CopyStatus { state: 'in progress' | 'good' | 'failed'; segments: number; bytes: number }

export function parseCopyStatus(d: Buffer): CopyStatus {
  const s = d[4] & 0x7f;
  const units = d[7];
  return { state: s === 0 ? 'in progress' : s === 1 ? 'good' : 'failed', segments: d.readUInt16BE(5), bytes: d.readUInt32BE(8) * 1024 ** units };
}

export interface FailedSegment { status: number; sense?: scsi.Sense }

export function parseFailedSegment(d: Buffer): FailedSegment | undefined {
  if (d.readUInt32BE(0) === 0) return undefined;
  const n = d.readUInt16BE(58);
  return { status: d[56], sense: n > 0 ? decodeSense(d.subarray(60, 60 + n)) : undefined };
}

export interface OperatingParameters { maxTargets: number; maxSegments: number; maxListBytes: number; maxInline: number; heldLimit: number; maxStreamBytes: number; concurrent: number; implemented: number[] }

export function parseOperatingParameters(d: Buffer): OperatingParameters {
  const n = d[43];
  return {
    maxTargets: d.readUInt16BE(8), maxSegments: d.readUInt16BE(10), maxListBytes: d.readUInt32BE(12), maxInline: d.readUInt32BE(20),
    heldLimit: d.readUInt32BE(24), maxStreamBytes: d.readUInt32BE(28), concurrent: d.readUInt16BE(34), implemented: [...d.subarray(44, 44 + n)],
  };
}

/** Status polls that may find the list not yet registered (its EXTENDED COPY still arriving): 30 s at 200 ms. */
const EARLY_POLLS = 150;

/** RECEIVE COPY RESULTS refused the list identifier (CDB byte 2): no copy of this nexus holds it (yet). */
function unknownList(e: unknown): boolean {
  const sense = (e as ScsiError).sense;
  return e instanceof ScsiError && sense !== undefined && sense.key === 5 && sense.asc === 0x24 && sense.field?.inCdb === true && sense.field.byte === 2;
}

/** A copy manager reached through one LUN of one I_T nexus (results belong to the nexus). */
export class CopyManager {
  constructor(readonly transport: CommandTransport, readonly lun = 0) {}

  /** Sends the list; resolves with the command's status (GOOD, or throws with the sense). */
  async copy(list: CopyList): Promise<void> {
    const out = extendedCopyList(list);
    await this.run({ lun: this.lun, cdb: extendedCopyCdb(out.length), dataOut: out });
  }

  async status(listId: number): Promise<CopyStatus> { return parseCopyStatus(await this.results(Results.copyStatus, listId, 12)); }
  async failedSegment(listId: number): Promise<FailedSegment | undefined> { return parseFailedSegment(await this.results(Results.failedSegment, listId, 256)); }
  async receiveData(listId: number): Promise<Buffer> { const d = await this.results(Results.receiveData, listId, 8192); return d.subarray(4, 4 + d.readUInt32BE(0)); }
  async operatingParameters(): Promise<OperatingParameters> { return parseOperatingParameters(await this.results(Results.operatingParameters, 0, 256)); }

  private async results(sa: number, listId: number, alloc: number): Promise<Buffer> {
    const r = await this.run({ lun: this.lun, cdb: receiveCopyResultsCdb(sa, listId, alloc), dataInLength: alloc });
    return Buffer.from(r.data);
  }

  private async run(c: ScsiCommand): Promise<{ data: Uint8Array }> {
    const r = await this.transport.submit(c);
    if (r.status !== ScsiStatus.GOOD) throw new ScsiError(r.status, r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined, c.cdb[0]);
    return r;
  }
}

// ---- Identifiers ----------------------------------------------------------------------------------

/** The NAA designator (16 bytes) of the logical unit at `lun`, from its VPD page 83h. */
export async function naaOf(client: ScsiClient, lun: number): Promise<Buffer> {
  const ds = await client.deviceIdentification(lun);
  const d = ds.find((x) => x.association === scsi.Association.LOGICAL_UNIT && x.type === scsi.DesignatorType.NAA);
  if (!d) throw new Error(`LUN ${lun} has no NAA designator in its VPD page 83h`);
  return Buffer.from(d.value);
}

// ---- The management information (document 002) ------------------------------------------------------

export const VOLINFO_BYTES = 512;
/** `firstLba`: where the blocks on the tape start in the volume (a range's LBA; 0 for a whole volume, and on tapes written before it was kept). */
export interface VolumeInfo { name: string; host: string; mountPoint: string; created: Date; blocks: number; blockSize: number; firstLba?: number }

/** 002's 512-byte volume information: format ID, label, host, mount point, time stamp; then the geometry. */
export function volumeInfoRecord(v: VolumeInfo): Buffer {
  const b = Buffer.alloc(VOLINFO_BYTES);
  b.write('SBVINFO1', 0, 'ascii');
  b.write(v.name.slice(0, 32), 8, 'ascii');
  b.write(v.host.slice(0, 64), 40, 'ascii');
  b.write(v.mountPoint.slice(0, 128), 104, 'ascii');
  b.writeBigUInt64BE(BigInt(v.created.getTime()), 232);
  b.writeBigUInt64BE(BigInt(v.blocks), 240);
  b.writeUInt32BE(v.blockSize, 248);
  b.writeBigUInt64BE(BigInt(v.firstLba ?? 0), 252);
  return b;
}

export function parseVolumeInfo(b: Buffer): VolumeInfo {
  if (b.length !== VOLINFO_BYTES || b.toString('ascii', 0, 8) !== 'SBVINFO1') throw new Error('the first file is not a sanbox volume information record (SBVINFO1)');
  const text = (at: number, n: number): string => b.toString('ascii', at, at + n).replace(/\0+$/, '');
  return { name: text(8, 32), host: text(40, 64), mountPoint: text(104, 128), created: new Date(Number(b.readBigUInt64BE(232))), blocks: Number(b.readBigUInt64BE(240)), blockSize: b.readUInt32BE(248), firstLba: Number(b.readBigUInt64BE(252)) };
}

// ---- Backup ---------------------------------------------------------------------------------------------

export interface BackupPlan {
  /** The volume read (the pair's target when a pair is split for the backup). */
  source: { lun: number; naa: Buffer; blocks: number; blockSize: number };
  drive: { naa: Buffer; barcode: string };
  info: VolumeInfo;
  listId: number;
  /** The vendor segment C0h: split the pair first (its CSCD is the source), IMMED, and the policy. */
  pair?: { split: boolean; immed: boolean; policy: PolicyName };
  range?: { lba: number; blocks: number };
}

/** The EXTENDED COPY list that writes the labelled set (VOL1, VOLINFO, the volume's blocks). */
export function backupList(p: BackupPlan): CopyList {
  const serial = volumeSerial(p.drive.barcode);
  const created = p.info.created;
  const lba = p.range?.lba ?? 0;
  const blocks = p.range?.blocks ?? p.source.blocks;
  const bytes = blocks * p.source.blockSize;
  const records = Math.ceil(bytes / RECORD_BYTES);
  const f1: FileLabel = { name: 'VOLINFO', sequence: 1, serial, created, blockBytes: RECORD_BYTES };
  const f2: FileLabel = { name: p.info.name.toUpperCase().replace(/[^A-Z0-9.$#@-]/g, '-') || 'VOLUME', sequence: 2, serial, created, blockBytes: RECORD_BYTES };
  const pieces: Buffer[] = [];
  const segments: Segment[] = [];
  const targets: Cscd[] = [
    { type: 'block', naa: p.source.naa, blockBytes: p.source.blockSize },
    { type: 'stream', naa: p.drive.naa, blockBytes: 0 }, // variable: labels, the information, a last short record
    { type: 'stream', naa: p.drive.naa, blockBytes: RECORD_BYTES }, // fixed: the volume's 32 KiB records
  ];
  let inlineAt = 0;
  const record = (b: Buffer): void => {
    segments.push({ type: 'inline', dst: 1, offset: inlineAt, bytes: b.length, streamLength: b.length });
    pieces.push(b);
    inlineAt += b.length;
  };
  if (p.pair) segments.push({ type: 'pair', cscd: 0, ...p.pair });
  record(vol1(serial));
  record(label1('HDR', f1)); record(label2('HDR', f1));
  segments.push({ type: 'filemarks', dst: 1, count: 1 });
  record(volumeInfoRecord({ ...p.info, blocks, firstLba: lba }));
  segments.push({ type: 'filemarks', dst: 1, count: 1 });
  record(label1('EOF', { ...f1, blocks: 1 })); record(label2('EOF', f1));
  segments.push({ type: 'filemarks', dst: 1, count: 1 });
  record(label1('HDR', f2)); record(label2('HDR', f2));
  segments.push({ type: 'filemarks', dst: 1, count: 1 });
  const perRecord = RECORD_BYTES / p.source.blockSize;
  const whole = Math.floor(bytes / RECORD_BYTES);
  const step = Math.floor(SEGMENT_BLOCKS_MAX / perRecord) * perRecord;
  for (let b = 0; b < whole * perRecord; b += step) {
    const n = Math.min(step, whole * perRecord - b);
    segments.push({ type: 'block-to-stream', src: 0, dst: 2, lba: lba + b, blocks: n, streamLength: n / perRecord });
  }
  const rest = blocks - whole * perRecord;
  if (rest > 0) segments.push({ type: 'block-to-stream', src: 0, dst: 1, lba: lba + whole * perRecord, blocks: rest, streamLength: rest * p.source.blockSize });
  segments.push({ type: 'filemarks', dst: 1, count: 1 });
  record(label1('EOF', { ...f2, blocks: records })); record(label2('EOF', f2));
  segments.push({ type: 'filemarks', dst: 1, count: 2 }); // two tapemarks end the set
  return { listId: p.listId, targets, segments, inline: Buffer.concat(pieces) };
}

/** A failed copy's error with what its copy target said (FAILED SEGMENT DETAILS), when it said something. */
async function explained(cm: CopyManager, listId: number, e: unknown): Promise<unknown> {
  if (!(e instanceof ScsiError) || e.sense?.key !== scsi.SenseKey.COPY_ABORTED) return e;
  const f = await cm.failedSegment(listId).catch(() => undefined);
  if (!f?.sense) return e;
  return new Error(`${e.message}; the copy target answered ${scsi.senseKeyName(f.sense.key)}, ${scsi.ascText(f.sense.asc, f.sense.ascq)}`);
}

export interface BackupOptions {
  volume: number;
  tape: string;
  range?: { lba: number; blocks: number };
  /** 001's embodiment: 1 priority copy of the range, 2 wait for the split, 3 merge (each after the client's PAIR SPLIT), 4 split and backup in one command (the default for a duplex pair; 1 for one already split). */
  embodiment?: 1 | 2 | 3 | 4;
  resync?: boolean;
  listId?: number;
  host?: string;
  mountPoint?: string;
  onProgress?: (bytes: number, total: number) => void;
  /** Virtual-time rigs advance the clock between status polls; a real array needs a pause. */
  pause?: () => Promise<void>;
}

export interface BackupResult { barcode: string; volume: string; bytes: number; records: number; split: boolean; embodiment: number }

/**
 * Backs a volume up to a tape, server-free. A volume that is the source of a duplex (or duplex
 * pending) pair is split (by PAIR SPLIT first, or with the 4th embodiment by the copy itself, vendor
 * segment C0h) and its target is what goes to tape, as 001 has it; any other volume is copied as it is.
 */
export async function backupVolume(client: ScsiClient, library: TapeLibrary, o: BackupOptions): Promise<BackupResult> {
  const port = await client.portIndex();
  const volumes = await client.listVolumes();
  const vol = volumes.find((v) => v.number === o.volume);
  if (!vol) throw new Error(`volume ${o.volume} does not exist`);
  const pairs = await client.pairStatus();
  // A pair's source is backed up from its target. A duplex pair is split first: by the client's
  // PAIR SPLIT (001 FIG. 4 steps 2-3) and then the backup command with the embodiment's policy (1st-3rd),
  // or by the copy itself in one command (4th, the default). One split already is copied as it is.
  const pair = pairs.find((p) => p.source === o.volume && ['duplex', 'duplex pending', 'split pending', 'split'].includes(p.state));
  const splitting = pair !== undefined && (pair.state === 'duplex' || pair.state === 'duplex pending');
  const embodiment = o.embodiment ?? (splitting ? 4 : 1);
  const read = pair ? pair.target : o.volume;
  const maps = await client.listMappings();
  const m = maps.find((x) => x.volume === read && (x.port === port));
  if (!m) throw new Error(`volume ${read} is not mapped on this port: the copy manager refuses what the initiator cannot reach`);
  const naa = await naaOf(client, m.lun);
  const drive = await library.assign(o.tape);
  try {
    const driveNaa = await naaOf(client, drive.lun);
    const listId = o.listId ?? 1;
    const info: VolumeInfo = { name: vol.name, host: o.host ?? os.hostname(), mountPoint: o.mountPoint ?? '', created: new Date(), blocks: Number(vol.blocks), blockSize: vol.blockSize };
    const policy: PolicyName = embodiment === 2 ? 'wait' : embodiment === 3 ? 'merge' : 'priority';
    const list = backupList({
      source: { lun: m.lun, naa, blocks: Number(vol.blocks), blockSize: vol.blockSize },
      drive: { naa: driveNaa, barcode: o.tape }, info, listId, range: o.range,
      pair: pair ? { split: splitting && embodiment === 4, immed: true, policy } : undefined,
    });
    if (splitting && embodiment !== 4) await client.pairSplit(o.volume); // answered at once; the target is split pending
    const cm = new CopyManager(client.transport, m.lun);
    const total = (o.range?.blocks ?? Number(vol.blocks)) * vol.blockSize;
    const running = cm.copy(list);
    let settled = false;
    let failure: unknown;
    let early = 0;
    const pause = o.pause ?? (() => new Promise<void>((r) => setTimeout(r, 200)));
    running.then(() => { settled = true; }, (e) => { settled = true; failure = e; });
    for (;;) {
      if (settled && failure) throw await explained(cm, listId, failure);
      let st: CopyStatus;
      try { st = await cm.status(listId); } catch (e) {
        if (settled) break; // NRCR-less copy whose results were already taken
        // The list is not known yet: the EXTENDED COPY still moves its parameter list while this
        // poll, with no data-out, overtook it (a real array with commands in flight). Bounded.
        if (unknownList(e) && ++early <= EARLY_POLLS) { await pause(); continue; }
        throw e;
      }
      o.onProgress?.(Math.min(st.bytes, total), total);
      if (st.state === 'good') break;
      if (st.state === 'failed') {
        const f = await cm.failedSegment(listId).catch(() => undefined);
        throw new Error(`the copy failed at segment ${st.segments}${f?.sense ? `: the copy target said ${scsi.senseKeyName(f.sense.key)}, ${scsi.ascText(f.sense.asc, f.sense.ascq)}` : ''}`);
      }
      await pause();
    }
    await running;
    if (splitting && (o.resync ?? false)) await client.pairResync(o.volume);
    return { barcode: o.tape, volume: vol.name, bytes: total, records: Math.ceil(total / RECORD_BYTES), split: splitting, embodiment };
  } finally {
    await drive.release();
  }
}

// ---- Restore ----------------------------------------------------------------------------------------------

async function expectRecord(drive: TapeDrive, what: string): Promise<Buffer> {
  const r = await drive.readRecord();
  if (r.kind !== 'record') throw new Error(`expected ${what}, found ${r.kind === 'filemark' ? 'a tapemark' : 'the end of data'}`);
  return r.data;
}

async function expectMark(drive: TapeDrive, what: string): Promise<void> {
  const r = await drive.readRecord();
  if (r.kind !== 'filemark') throw new Error(`expected a tapemark ${what}, found ${r.kind === 'record' ? `a record of ${r.data.length} bytes` : 'the end of data'}`);
}

export interface RestoreOptions { tape: string; volume: number; listId?: number; onProgress?: (bytes: number, total: number) => void }

/**
 * Restores a tape written by backupVolume into a volume: the labels and the volume information
 * are read and checked here, the blocks go tape -> volume by the copy manager (segment 01h), and
 * EOF1's block count is checked after.
 */
export async function restoreVolume(client: ScsiClient, library: TapeLibrary, o: RestoreOptions): Promise<VolumeInfo> {
  const port = await client.portIndex();
  const vol = (await client.listVolumes()).find((v) => v.number === o.volume);
  if (!vol) throw new Error(`volume ${o.volume} does not exist`);
  const m = (await client.listMappings()).find((x) => x.volume === o.volume && x.port === port);
  if (!m) throw new Error(`volume ${o.volume} is not mapped on this port`);
  const naa = await naaOf(client, m.lun);
  const drive = await library.assign(o.tape);
  try {
    await drive.rewind();
    const v1 = await expectRecord(drive, 'VOL1');
    if (v1.toString('ascii', 0, 4) !== 'VOL1' || v1.toString('ascii', 4, 10).trim() !== volumeSerial(o.tape).trim()) throw new Error(`not the labelled tape ${o.tape}: ${v1.toString('ascii', 0, 10)}`);
    for (const want of ['HDR1', 'HDR2']) if ((await expectRecord(drive, want)).toString('ascii', 0, 4) !== want) throw new Error(`expected ${want}`);
    await expectMark(drive, 'after the headers');
    const info = parseVolumeInfo(await expectRecord(drive, 'the volume information'));
    await expectMark(drive, 'after the volume information');
    await expectRecord(drive, 'EOF1'); await expectRecord(drive, 'EOF2');
    await expectMark(drive, 'after the first file');
    await expectRecord(drive, 'HDR1'); await expectRecord(drive, 'HDR2');
    await expectMark(drive, 'before the data');
    if (info.blockSize !== vol.blockSize) throw new Error(`the tape holds ${info.blockSize}-byte blocks, volume ${vol.name} has ${vol.blockSize}`);
    // A range goes back where it came from (its LBA is in the volume information), never over LBA 0.
    const at = info.firstLba ?? 0;
    if (at + info.blocks > Number(vol.blocks)) throw new Error(`the tape holds ${info.blocks} blocks from LBA ${at}, volume ${vol.name} has only ${vol.blocks}`);
    const driveNaa = await naaOf(client, drive.lun);
    const listId = o.listId ?? 2;
    const bytes = info.blocks * info.blockSize;
    const perRecord = RECORD_BYTES / info.blockSize;
    const whole = Math.floor(bytes / RECORD_BYTES);
    const step = Math.floor(SEGMENT_BLOCKS_MAX / perRecord) * perRecord;
    const segments: Segment[] = [];
    for (let b = 0; b < whole * perRecord; b += step) {
      const n = Math.min(step, whole * perRecord - b);
      segments.push({ type: 'stream-to-block', src: 1, dst: 0, lba: at + b, blocks: n, streamLength: n / perRecord });
    }
    const rest = info.blocks - whole * perRecord;
    if (rest > 0) segments.push({ type: 'stream-to-block', src: 2, dst: 0, lba: at + whole * perRecord, blocks: rest, streamLength: rest * info.blockSize });
    const cm = new CopyManager(client.transport, m.lun);
    await cm.copy({
      listId, nrcr: true, segments,
      targets: [{ type: 'block', naa, blockBytes: vol.blockSize }, { type: 'stream', naa: driveNaa, blockBytes: RECORD_BYTES }, { type: 'stream', naa: driveNaa, blockBytes: 0 }],
    });
    o.onProgress?.(bytes, bytes);
    await expectMark(drive, 'after the data');
    const eof1 = await expectRecord(drive, 'EOF1');
    const count = Number(eof1.toString('ascii', 54, 60));
    if (eof1.toString('ascii', 0, 4) !== 'EOF1' || count !== whole + (rest > 0 ? 1 : 0)) throw new Error(`EOF1 says ${count} blocks, the copy read ${whole + (rest > 0 ? 1 : 0)}`);
    return info;
  } finally {
    await drive.release();
  }
}

export { LABEL_BYTES };
