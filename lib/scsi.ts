// SCSI for the initiator: CDB builders (SPC-4, SBC-3, and the vendor management commands of
// docs/scsi.md), parsers of what those commands return, and sense data in words.
// Pure functions over Buffers; no transport here (host/client.ts puts them on a CommandTransport).

import * as abi from '../firmware/abi';
import { ScsiStatus } from './protocol';

export const Opcode = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  INQUIRY: 0x12,
  MODE_SENSE6: 0x1a,
  READ_CAPACITY10: 0x25,
  READ10: 0x28,
  WRITE10: 0x2a,
  SYNCHRONIZE_CACHE10: 0x35,
  READ16: 0x88,
  WRITE16: 0x8a,
  SERVICE_ACTION_IN16: 0x9e,
  REPORT_LUNS: 0xa0,
  MANAGEMENT_IN: 0xc0,
  MANAGEMENT_OUT: 0xc1,
} as const;

/** Service actions of MANAGEMENT IN (C0h) and OUT (C1h). */
export const Management = {
  CREATE_VOLUME: 0x01,
  DELETE_VOLUME: 0x02,
  REINITIALIZE_MEDIUM: 0x05,
  MAP_VOLUME: 0x03,
  UNMAP_VOLUME: 0x04,
  LIST_VOLUMES: 0x10,
  LIST_MAPPINGS: 0x11,
  LIST_MEDIA: 0x12,
  LIST_PORTS: 0x13,
  STATISTICS: 0x14,
  LIST_SESSIONS: 0x15,
  SET_ACCESS: 0x06,
  LIST_ACCESS: 0x16,
  PAIR_CREATE: 0x07,
  PAIR_SPLIT: 0x08,
  PAIR_RESYNC: 0x09,
  PAIR_REVERSE: 0x0a,
  PAIR_DELETE: 0x0b,
  PAIR_ATTRIBUTE: 0x0c,
  PAIR_COPY_RANGE: 0x0d,
  PAIR_STATUS: 0x17,
} as const;

// ---- CDB builders -----------------------------------------------------------------------------------

function cdb(length: number, opcode: number): Buffer {
  const b = Buffer.alloc(length);
  b[0] = opcode;
  return b;
}

export function testUnitReady(): Buffer {
  return cdb(6, Opcode.TEST_UNIT_READY);
}

export function requestSense(allocation = 18): Buffer {
  const b = cdb(6, Opcode.REQUEST_SENSE);
  b[4] = allocation;
  return b;
}

/** INQUIRY: standard data, or the VPD page `page` when given. */
export function inquiry(page?: number, allocation = 255): Buffer {
  const b = cdb(6, Opcode.INQUIRY);
  if (page !== undefined) {
    b[1] = 0x01; // EVPD
    b[2] = page;
  }
  b.writeUInt16BE(allocation, 3);
  return b;
}

export const ModePage = { CACHING: 0x08, CONTROL: 0x0a, ALL: 0x3f } as const;

/** MODE SENSE(6) of current values, with block descriptors unless dbd. */
export function modeSense6(page: number, options: { dbd?: boolean; allocation?: number } = {}): Buffer {
  const b = cdb(6, Opcode.MODE_SENSE6);
  if (options.dbd) b[1] = 0x08;
  b[2] = page & 0x3f;
  b[4] = options.allocation ?? 255;
  return b;
}

export function readCapacity10(): Buffer {
  return cdb(10, Opcode.READ_CAPACITY10);
}

export function readCapacity16(allocation = 32): Buffer {
  const b = cdb(16, Opcode.SERVICE_ACTION_IN16);
  b[1] = 0x10;
  b.writeUInt32BE(allocation, 10);
  return b;
}

export function reportLuns(select = 0, allocation = 8 + 256 * 8): Buffer {
  const b = cdb(12, Opcode.REPORT_LUNS);
  b[2] = select;
  b.writeUInt32BE(allocation, 6);
  return b;
}

export interface TransferOptions {
  /** Force unit access: the command completes only once the data is on the medium. */
  fua?: boolean;
}

/** READ(10) or WRITE(10): LBA below 2^32 and at most 65535 blocks. */
export function readWrite10(write: boolean, lba: number, blocks: number, options: TransferOptions = {}): Buffer {
  if (lba > 0xffffffff || blocks > 0xffff) throw new RangeError(`READ/WRITE(10) cannot carry LBA ${lba}, ${blocks} blocks`);
  const b = cdb(10, write ? Opcode.WRITE10 : Opcode.READ10);
  if (options.fua) b[1] = 0x08;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

export function readWrite16(write: boolean, lba: number, blocks: number, options: TransferOptions = {}): Buffer {
  const b = cdb(16, write ? Opcode.WRITE16 : Opcode.READ16);
  if (options.fua) b[1] = 0x08;
  b.writeBigUInt64BE(BigInt(lba), 2);
  b.writeUInt32BE(blocks, 10);
  return b;
}

/** The shortest READ or WRITE CDB that carries lba and blocks. */
export function readWrite(write: boolean, lba: number, blocks: number, options: TransferOptions = {}): Buffer {
  return lba <= 0xffffffff && blocks <= 0xffff ? readWrite10(write, lba, blocks, options) : readWrite16(write, lba, blocks, options);
}

/** SYNCHRONIZE CACHE(10); blocks 0 means to the end of the volume. */
export function synchronizeCache10(lba = 0, blocks = 0, options: { immediate?: boolean } = {}): Buffer {
  const b = cdb(10, Opcode.SYNCHRONIZE_CACHE10);
  if (options.immediate) b[1] = 0x02;
  b.writeUInt32BE(lba, 2);
  b.writeUInt16BE(blocks, 7);
  return b;
}

/** SANBOX MANAGEMENT IN (C0h) or OUT (C1h): 16 bytes, argument at 2, length at 6, flags at 14. */
export function management(out: boolean, serviceAction: number, length: number, argument = 0, flags = 0): Buffer {
  const b = cdb(16, out ? Opcode.MANAGEMENT_OUT : Opcode.MANAGEMENT_IN);
  b[1] = serviceAction & 0x1f;
  b.writeUInt32BE(argument, 2);
  b.writeUInt32BE(length, 6);
  b[14] = flags;
  return b;
}

export function deleteVolume(volume: number, force = false): Buffer {
  return management(true, Management.DELETE_VOLUME, 0, volume, force ? 1 : 0);
}

/** REINITIALIZE MEDIUM: accept that a lost medium's contents are gone (docs/scsi.md). */
export function reinitializeMedium(medium: number): Buffer {
  return management(true, Management.REINITIALIZE_MEDIUM, 0, medium);
}

/** linear and striped volumes take all their chunks at creation; thin ones as writes reach them (docs/scsi.md). */
export const Placement = { linear: 0, striped: 1, thin: 2 } as const;
export type PlacementName = keyof typeof Placement;

export interface VolumeSpec {
  name: string;
  /** Capacity in blocks, at least 1. */
  blocks: number;
  blockSize: 512 | 4096;
  placement?: PlacementName;
  /** Media indexes in order; empty or absent: all media. */
  media?: number[];
  /** The volume number wanted; absent: the lowest free one. */
  number?: number;
}

export const VOLUME_NAME_MAX = 31;

/** The 64-byte parameter list of CREATE VOLUME. */
export function createVolumeParameters(spec: VolumeSpec): Buffer {
  const name = Buffer.from(spec.name, 'latin1');
  if (name.length < 1 || name.length > VOLUME_NAME_MAX) throw new RangeError(`a volume name has 1-${VOLUME_NAME_MAX} characters: "${spec.name}"`);
  const media = spec.media ?? [];
  if (media.length > 16) throw new RangeError(`a volume spans at most 16 media, not ${media.length}`);
  const b = Buffer.alloc(64);
  b.writeUInt16BE(spec.number ?? 0xffff, 0);
  b.writeUInt16BE(spec.blockSize, 2);
  b[4] = Placement[spec.placement ?? 'linear'];
  b[5] = media.length;
  b.writeBigUInt64BE(BigInt(spec.blocks), 8);
  name.copy(b, 16);
  Buffer.from(media).copy(b, 48);
  return b;
}

/** Every port, for MAP and UNMAP VOLUME. */
export const ALL_PORTS = 0xff;

/** The 8-byte parameter list of MAP and UNMAP VOLUME. */
export function mapParameters(volume: number, port: number, lun: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(volume, 0);
  b[2] = port;
  b.writeUInt16BE(lun, 4);
  return b;
}

/** A volume's access for an initiator (LUN security, docs/scsi.md). */
export type AccessMode = 'rw' | 'ro' | 'none';
export const ACCESS_MODES: AccessMode[] = ['rw', 'ro', 'none'];
export const ACCESS_ENTRY_BYTES = 232;
/** SET ACCESS and LIST ACCESS name tape device n (0 the changer, then the drives) as TAPE_ACCESS_UNIT + n. */
export const TAPE_ACCESS_UNIT = 0x8000;
/** LIST ACCESS's argument for every volume's list, and for every tape device's. */
export const LIST_ACCESS_VOLUMES = 0xFFFFFFFF;
export const LIST_ACCESS_TAPES = 0xFFFFFFFE;

/**
 * The parameter list of SET ACCESS: the volume, the mode (or 'remove' the initiator's record), and
 * either an initiator name or (unnamed) the mode of every initiator the list does not name.
 */
export function accessParameters(volume: number, mode: AccessMode | 'remove', initiator: string | { unnamed: true }): Buffer {
  const b = Buffer.alloc(ACCESS_ENTRY_BYTES);
  b.writeUInt16BE(volume, 0);
  b[2] = mode === 'remove' ? 0xff : ACCESS_MODES.indexOf(mode);
  if (typeof initiator === 'string') {
    const n = Buffer.from(initiator, 'latin1');
    if (n.length === 0 || n.length > 223) throw new RangeError(`an initiator name is 1 to 223 characters, got ${n.length}`);
    n.copy(b, 8);
  } else {
    b[3] = 1;
  }
  return b;
}

/**
 * One entry of LIST ACCESS: `volume` is the unit as SET ACCESS names it; a tape device's entry
 * (volume >= TAPE_ACCESS_UNIT) also carries the device's index, LUN and kind.
 */
export interface AccessEntry {
  volume: number; mode: AccessMode; initiator: string; unnamed: boolean;
  tape?: { device: number; lun: number; kind: 'changer' | 'drive' };
}

/** LIST ACCESS: per volume (or tape device) its mode for unnamed initiators, then its records. */
export function parseAccess(d: Buffer): AccessEntry[] {
  return parseManagementList(d).entries.map((e) => {
    const volume = e.readUInt16BE(0);
    return {
      volume,
      mode: ACCESS_MODES[e[2]] ?? 'none',
      unnamed: (e[3] & 1) !== 0,
      initiator: cstring(e, 8, 224),
      ...(volume >= TAPE_ACCESS_UNIT ? { tape: { device: volume - TAPE_ACCESS_UNIT, lun: e.readUInt16BE(4), kind: e[6] === 1 ? 'changer' as const : 'drive' as const } } : {}),
    };
  });
}

// ---- Data-in parsers --------------------------------------------------------------------------------

export const DeviceType = { DISK: 0x00, ARRAY_CONTROLLER: 0x0c, NONE: 0x1f } as const;

export interface StandardInquiry {
  peripheralQualifier: number;
  deviceType: number;
  version: number;
  commandQueueing: boolean;
  vendor: string;
  product: string;
  revision: string;
}

export function parseStandardInquiry(d: Buffer): StandardInquiry {
  need(d, 36, 'standard INQUIRY data');
  return {
    peripheralQualifier: d[0] >> 5,
    deviceType: d[0] & 0x1f,
    version: d[2],
    commandQueueing: (d[7] & 0x02) !== 0,
    vendor: ascii(d, 8, 8),
    product: ascii(d, 16, 16),
    revision: ascii(d, 32, 4),
  };
}

/** A VPD page's payload (after its 4-byte header), checking it is the page asked for. */
export function vpdPayload(d: Buffer, page: number): Buffer {
  need(d, 4, `VPD page ${hex2(page)}h`);
  if (d[1] !== page) throw new Error(`asked for VPD page ${hex2(page)}h, got ${hex2(d[1])}h`);
  return d.subarray(4, 4 + d.readUInt16BE(2));
}

export function parseSupportedVpdPages(d: Buffer): number[] {
  return [...vpdPayload(d, 0x00)];
}

export function parseUnitSerialNumber(d: Buffer): string {
  return ascii(vpdPayload(d, 0x80), 0, d.length);
}

export const Association = { LOGICAL_UNIT: 0, TARGET_PORT: 1, TARGET_DEVICE: 2 } as const;
export const DesignatorType = { VENDOR: 0, T10: 1, EUI64: 2, NAA: 3, RELATIVE_TARGET_PORT: 4 } as const;

export interface Designator {
  codeSet: number;
  association: number;
  type: number;
  value: Buffer;
  /** The value in words: ASCII for code set 2, hex otherwise, the number for a relative target port. */
  text: string;
}

export function parseDeviceIdentification(d: Buffer): Designator[] {
  const body = vpdPayload(d, 0x83);
  const out: Designator[] = [];
  for (let at = 0; at + 4 <= body.length; at += 4 + body[at + 3]) {
    const value = Buffer.from(body.subarray(at + 4, at + 4 + body[at + 3]));
    const codeSet = body[at] & 0x0f;
    const type = body[at + 1] & 0x0f;
    const text = codeSet === 2 ? ascii(value, 0, value.length)
      : type === DesignatorType.RELATIVE_TARGET_PORT && value.length === 4 ? String(value.readUInt16BE(2)) : value.toString('hex');
    out.push({ codeSet, association: (body[at + 1] >> 4) & 0x03, type, value, text });
  }
  return out;
}

export interface BlockLimits {
  optimalGranularityBlocks: number;
  maximumTransferBlocks: number;
  optimalTransferBlocks: number;
}

export function parseBlockLimits(d: Buffer): BlockLimits {
  const p = vpdPayload(d, 0xb0);
  need(p, 12, 'block limits VPD page');
  return { optimalGranularityBlocks: p.readUInt16BE(2), maximumTransferBlocks: p.readUInt32BE(4), optimalTransferBlocks: p.readUInt32BE(8) };
}

/** The LUNs of REPORT LUNS data (single-level peripheral and flat addressing). */
export function parseReportLuns(d: Buffer): number[] {
  need(d, 8, 'REPORT LUNS data');
  const n = Math.min(d.readUInt32BE(0), d.length - 8) >> 3;
  const luns: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = d.subarray(8 + i * 8, 16 + i * 8);
    luns.push(b[0] >> 6 === 1 ? ((b[0] & 0x3f) << 8) | b[1] : b[1]);
  }
  return luns;
}

export interface Capacity {
  /** Logical blocks (last LBA + 1). */
  blocks: number;
  blockSize: number;
}

/** READ CAPACITY(10) data; blocks is 2^32 when the device says "use READ CAPACITY(16)". */
export function parseReadCapacity10(d: Buffer): Capacity {
  need(d, 8, 'READ CAPACITY(10) data');
  return { blocks: d.readUInt32BE(0) + 1, blockSize: d.readUInt32BE(4) };
}

export function parseReadCapacity16(d: Buffer): Capacity {
  need(d, 12, 'READ CAPACITY(16) data');
  return { blocks: Number(d.readBigUInt64BE(0)) + 1, blockSize: d.readUInt32BE(8) };
}

export interface CachingPage {
  /** Write cache enabled (write-back). */
  writeCache: boolean;
  /** Read cache disabled. */
  readCacheDisabled: boolean;
}

/** The caching page (08h) out of MODE SENSE(6) data. */
export function parseCachingPage(d: Buffer): CachingPage {
  need(d, 4, 'MODE SENSE(6) data');
  const end = Math.min(d.length, d[0] + 1);
  for (let at = 4 + d[3]; at + 2 <= end; at += 2 + d[at + 1]) {
    if ((d[at] & 0x3f) === ModePage.CACHING && at + 3 <= end) {
      return { writeCache: (d[at + 2] & 0x04) !== 0, readCacheDisabled: (d[at + 2] & 0x01) !== 0 };
    }
  }
  throw new Error('MODE SENSE data holds no caching page');
}

// ---- Management lists (docs/scsi.md, "IN service actions") --------------------------------------------

export interface ManagementList {
  /** Bytes of entries the controller has (the whole list, even where the allocation cut it). */
  total: number;
  entrySize: number;
  /** The entries received whole. */
  entries: Buffer[];
}

export function parseManagementList(d: Buffer): ManagementList {
  need(d, 8, 'management list');
  const entrySize = d.readUInt16BE(4);
  const count = entrySize === 0 ? 0 : Math.min(d.readUInt16BE(6), Math.floor((d.length - 8) / entrySize));
  const entries = Array.from({ length: count }, (_, i) => d.subarray(8 + i * entrySize, 8 + (i + 1) * entrySize));
  return { total: d.readUInt32BE(0), entrySize, entries };
}

export interface Volume {
  number: number;
  name: string;
  blockSize: number;
  placement: PlacementName;
  /** Media the volume spans, by index. */
  media: number[];
  state: 'online' | 'not ready';
  blocks: number;
  dirtySlots: number;
  /** Bytes of media the volume holds: all of it for a thick volume, what writes have reached for a thin one. */
  allocatedBytes: number;
}

export function parseVolumes(d: Buffer): Volume[] {
  return parseManagementList(d).entries.map((e) => ({
    number: e.readUInt16BE(0),
    name: cstring(e, 16, 32),
    blockSize: e.readUInt16BE(2),
    placement: e[4] === Placement.striped ? 'striped' : e[4] === Placement.thin ? 'thin' : 'linear',
    media: [...e.subarray(48, 48 + Math.min(e[5], 16))],
    state: e[6] === 1 ? 'online' : 'not ready',
    blocks: Number(e.readBigUInt64BE(8)),
    dirtySlots: e.readUInt32BE(64),
    allocatedBytes: e.readUInt32BE(68) * 65536,
  }));
}

export interface Mapping {
  port: number;
  lun: number;
  volume: number;
}

export function parseMappings(d: Buffer): Mapping[] {
  return parseManagementList(d).entries.map((e) => ({ port: e[0], lun: e.readUInt16BE(2), volume: e.readUInt16BE(4) }));
}

const SCHEDULERS = ['fifo', 'sstf', 'c-look', 'deadline'];

export interface Medium {
  index: number;
  name: string;
  scheduler: string;
  state: 'ok' | 'dead' | 'becoming ready' | 'lost';
  sectors: number;
  freeChunks: number;
  registeredRequests: number;
  mediumErrors: number;
}

export function parseMedia(d: Buffer): Medium[] {
  return parseManagementList(d).entries.map((e) => ({
    index: e[0],
    name: cstring(e, 32, 32),
    scheduler: SCHEDULERS[e[1]] ?? String(e[1]),
    state: e[2] === 2 ? 'dead' : e[2] === 3 ? 'becoming ready' : e[2] === 4 ? 'lost' : 'ok',
    sectors: Number(e.readBigUInt64BE(4)),
    freeChunks: e.readUInt32BE(12),
    registeredRequests: e.readUInt32BE(16),
    mediumErrors: e.readUInt32BE(20),
  }));
}

export interface Port {
  index: number;
  name: string;
  kind: 'stream' | 'queue' | 'iscsi' | 'nbd';
  sessions: number;
  openSessions: number;
  address: number;
  iop: number;
}

export function parsePorts(d: Buffer): Port[] {
  return parseManagementList(d).entries.map((e) => ({
    index: e[0],
    name: cstring(e, 32, 32),
    kind: e[1] === 2 ? 'queue' : e[1] === 3 ? 'iscsi' : e[1] === 4 ? 'nbd' : 'stream',
    sessions: e[2],
    openSessions: e[3],
    address: e.readUInt16BE(4),
    iop: e[6],
  }));
}

export interface Session {
  port: number;
  session: number;
  kind: 'stream' | 'queue' | 'iscsi' | 'nbd';
  /** Commands in flight on the session. */
  outstanding: number;
  /** iSCSI: the ISID in hex; '' for other transports. */
  isid: string;
  /** The initiator's identity: an iSCSI InitiatorName, "nbd:<address>", "framed:<address>", "inproc:<port><slot>". */
  initiator: string;
}

/** LIST SESSIONS (docs/scsi.md): 256-byte entries. */
export function parseSessions(d: Buffer): Session[] {
  return parseManagementList(d).entries.map((e) => ({
    port: e[0],
    session: e[1],
    kind: e[2] === 2 ? 'queue' : e[2] === 3 ? 'iscsi' : e[2] === 4 ? 'nbd' : 'stream',
    outstanding: e.readUInt32BE(4),
    isid: e.subarray(8, 14).every((x) => x === 0) ? '' : e.subarray(8, 14).toString('hex'),
    initiator: cstring(e, 32, 224),
  }));
}

/** The STAT_* counter names of firmware/abi.ts in index order, camelCased: STAT_FERR_BAD_CRC -> ferrBadCrc. */
export const STAT_NAMES: string[] = Object.entries(abi)
  .filter(([k]) => k.startsWith('STAT_') && k !== 'STAT_COUNT')
  .sort((a, b) => Number(a[1]) - Number(b[1]))
  .map(([k]) => k.slice(5).toLowerCase().replace(/_(.)/g, (_, c: string) => c.toUpperCase()));

export interface Statistics {
  cache: { slots: number; free: number; clean: number; dirty: number; pinned: number; readHits: number; readMisses: number; writeHits: number };
  iops: { index: number; role: 'channel' | 'disk' | string; counters: Record<string, number> }[];
}

export function parseStatistics(d: Buffer): Statistics {
  const list = parseManagementList(d);
  need(d, 72, 'statistics');
  const c = d.subarray(8, 72);
  const cache = {
    slots: c.readUInt32BE(0), free: c.readUInt32BE(4), clean: c.readUInt32BE(8), dirty: c.readUInt32BE(12), pinned: c.readUInt32BE(16),
    readHits: Number(c.readBigUInt64BE(32)), readMisses: Number(c.readBigUInt64BE(40)), writeHits: Number(c.readBigUInt64BE(48)),
  };
  const count = Math.min(d.readUInt16BE(6), Math.floor((d.length - 72) / Math.max(list.entrySize, 8)));
  const iops = Array.from({ length: count }, (_, i) => {
    const e = d.subarray(72 + i * list.entrySize, 72 + (i + 1) * list.entrySize);
    const counters: Record<string, number> = {};
    for (let k = 0; 8 + k * 8 + 8 <= e.length; k++) counters[STAT_NAMES[k] ?? `stat${k}`] = Number(e.readBigUInt64BE(8 + k * 8));
    const role = e[0] === abi.ROLE_CHANNEL ? 'channel' : e[0] === abi.ROLE_DISK ? 'disk' : String(e[0]);
    return { index: e[1], role, counters };
  });
  return { cache, iops };
}

// ---- Sense data -------------------------------------------------------------------------------------

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
  COMPLETED: 0xf,
} as const;

/** Additional sense codes the controller returns (SPC-4 Annex D, and the vendor codes of docs/scsi.md). */
const ASC_TEXT = new Map<number, string>([
  [0x0000, 'NO ADDITIONAL SENSE INFORMATION'],
  [0x0001, 'FILEMARK DETECTED'],
  [0x0002, 'END-OF-PARTITION/MEDIUM DETECTED'],
  [0x0004, 'BEGINNING-OF-PARTITION/MEDIUM DETECTED'],
  [0x0005, 'END-OF-DATA DETECTED'],
  [0x0400, 'LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE'],
  [0x0401, 'LOGICAL UNIT IS IN PROCESS OF BECOMING READY'],
  [0x0402, 'LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED'],
  [0x0403, 'LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED'],
  [0x0412, 'LOGICAL UNIT NOT READY, OFFLINE'],
  [0x1501, 'MECHANICAL POSITIONING ERROR'],
  [0x2101, 'INVALID ELEMENT ADDRESS'],
  [0x3b0d, 'MEDIUM DESTINATION ELEMENT FULL'],
  [0x3b0e, 'MEDIUM SOURCE ELEMENT EMPTY'],
  [0x5302, 'MEDIUM REMOVAL PREVENTED'],
  [0x0c00, 'WRITE ERROR'],
  [0x0c0c, 'UNEXPECTED UNSOLICITED DATA'],
  [0x0c0d, 'NOT ENOUGH UNSOLICITED DATA'],
  [0x0e03, 'INVALID FIELD IN COMMAND INFORMATION UNIT'],
  [0x1100, 'UNRECOVERED READ ERROR'],
  [0x1a00, 'PARAMETER LIST LENGTH ERROR'],
  [0x2000, 'INVALID COMMAND OPERATION CODE'],
  [0x2100, 'LOGICAL BLOCK ADDRESS OUT OF RANGE'],
  [0x2400, 'INVALID FIELD IN CDB'],
  [0x2500, 'LOGICAL UNIT NOT SUPPORTED'],
  [0x2600, 'INVALID FIELD IN PARAMETER LIST'],
  [0x2700, 'WRITE PROTECTED'],
  [0x2707, 'SPACE ALLOCATION FAILED WRITE PROTECT'],
  // EXTENDED COPY (SPC-3 4.5.6; firmware/xcopy/)
  [0x0016, 'OPERATION IN PROGRESS'],
  [0x0d01, 'THIRD PARTY DEVICE FAILURE'],
  [0x0d02, 'COPY TARGET DEVICE NOT REACHABLE'],
  [0x0d03, 'INCORRECT COPY TARGET DEVICE TYPE'],
  [0x0d04, 'COPY TARGET DEVICE DATA UNDERRUN'],
  [0x0d05, 'COPY TARGET DEVICE DATA OVERRUN'],
  [0x2606, 'TOO MANY TARGET DESCRIPTORS'],
  [0x2607, 'UNSUPPORTED TARGET DESCRIPTOR TYPE CODE'],
  [0x2608, 'TOO MANY SEGMENT DESCRIPTORS'],
  [0x2609, 'UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE'],
  [0x260a, 'UNEXPECTED INEXACT SEGMENT'],
  [0x260b, 'INLINE DATA LENGTH EXCEEDED'],
  [0x260c, 'INVALID OPERATION FOR COPY SOURCE OR DESTINATION'],
  [0x260d, 'COPY SEGMENT GRANULARITY VIOLATION'],
  [0x5503, 'INSUFFICIENT RESOURCES'],
  [0x8507, 'TAPE DRIVE DID NOT COME FREE IN TIME'],
  [0x2900, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED'],
  [0x2a01, 'MODE PARAMETERS CHANGED'],
  [0x3100, 'MEDIUM FORMAT CORRUPTED'],
  [0x3900, 'SAVING PARAMETERS NOT SUPPORTED'],
  [0x3a00, 'MEDIUM NOT PRESENT'],
  [0x0801, 'LOGICAL UNIT COMMUNICATION TIMEOUT'],
  [0x3f00, 'TARGET OPERATING CONDITIONS HAVE CHANGED'],
  [0x4400, 'INTERNAL TARGET FAILURE'],
  [0x4701, 'DATA PHASE CRC ERROR DETECTED'],
  [0x4705, 'PROTOCOL SERVICE CRC ERROR'],
  [0x4b00, 'DATA PHASE ERROR'],
  [0x4b05, 'DATA OFFSET ERROR'],
  [0x4e00, 'OVERLAPPED COMMANDS ATTEMPTED'],
  [0x8000, 'VOLUME NAME ALREADY EXISTS'],
  [0x8001, 'VOLUME NUMBER IN USE'],
  [0x8002, 'NO SUCH VOLUME'],
  [0x8003, 'VOLUME IS MAPPED'],
  [0x8100, 'NOT ENOUGH SPACE ON THE MEDIA'],
  [0x8101, 'THIN MAP FULL'],
  [0x8200, 'LUN ALREADY MAPPED'],
  [0x8201, 'NO SUCH PORT'],
  [0x8202, 'VOLUME NOT MAPPED'],
  [0x8300, 'VOLUME TABLE FULL'],
  [0x8400, 'NO SUCH MEDIUM'],
  [0x8500, 'NO SUCH PAIR'],
  [0x8501, 'VOLUME IS IN A PAIR'],
  [0x8502, 'PAIR STATE DOES NOT ALLOW THIS'],
  [0x8503, 'PAIR TABLE FULL'],
  [0x8504, 'PAIR VOLUMES DO NOT MATCH'],
  [0x8505, 'BAD TRACK SIZE FOR THE PAIR'],
  [0x8506, 'PAIR COPY DID NOT FINISH IN TIME'],
  // Remote pairs (docs/scsi.md, "Remote pairs"): 00h-04h are the secondary's answers.
  [0x8600, 'NO SUCH VOLUME AT THE SECONDARY'],
  [0x8601, 'SECONDARY VOLUME DOES NOT MATCH'],
  [0x8602, 'SECONDARY VOLUME IS IN ANOTHER PAIR'],
  [0x8603, 'SECONDARY HAS FAILED OVER'],
  [0x8604, 'SECONDARY PAIR TABLE FULL'],
  [0x8610, 'NO SUCH REMOTE PAIR'],
  [0x8611, 'VOLUME IS IN A REMOTE PAIR'],
  [0x8612, 'REMOTE PAIR STATE DOES NOT ALLOW THIS'],
  [0x8613, 'REMOTE PAIR TABLE FULL'],
  [0x8614, 'NO SUCH NODE, OR NO LINK TO IT'],
  [0x8615, 'BAD PEER VOLUME NAME'],
  [0x8616, 'NO SUCH VOLUME FOR THE REMOTE PAIR'],
  [0x8617, 'THIS ARRAY ENDS NO LINK'],
  [0x8618, 'REDUNDANCY NOT POSSIBLE FOR THIS PAIR'],
  [0x8619, 'FAILOVER WAITED TOO LONG FOR THE REFLECT'], // S484 (docs/remote.md, delayed writes)
  [0x861A, 'A MOVE HOME DID NOT END IN TIME'], // embodiment 8's failover (docs/remote.md, "Embodiment 8 on the link")
  [0x861B, 'NO WHOLE SNAPSHOT IMAGE'],
]);

export function senseKeyName(key: number): string {
  return (Object.keys(SenseKey) as (keyof typeof SenseKey)[]).find((k) => SenseKey[k] === key)?.replace(/_/g, ' ') ?? `SENSE KEY ${hex2(key)}h`;
}

export function ascText(asc: number, ascq: number): string {
  const known = ASC_TEXT.get((asc << 8) | ascq);
  if (known) return known;
  return `${asc >= 0x80 || ascq >= 0x80 ? 'VENDOR SPECIFIC ' : ''}ASC ${hex2(asc)}h/${hex2(ascq)}h`;
}

export interface FieldPointer {
  /** The field is in the CDB (else in the parameter list). */
  inCdb: boolean;
  byte: number;
  bit?: number;
}

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  /** The INFORMATION field when VALID is set (the failing LBA of a medium error). */
  info?: number;
  /** Tape: FILEMARK, EOM and ILI of byte 2 (present only when set). */
  filemark?: boolean;
  eom?: boolean;
  ili?: boolean;
  /** The sense-key-specific field pointer, when SKSV is set on an ILLEGAL REQUEST. */
  field?: FieldPointer;
  /** "ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE" */
  text: string;
}

/** Fixed (70h/71h) or descriptor (72h/73h) format sense data, in words. */
export function decodeSense(bytes: Uint8Array): Sense {
  const d = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = (i: number): number => (i < d.length ? d[i] : 0);
  const code = at(0) & 0x7f;
  if (code === 0x72 || code === 0x73) {
    return withText({ key: at(1) & 0x0f, asc: at(2), ascq: at(3) });
  }
  const sense: Sense = withText({ key: at(2) & 0x0f, asc: at(12), ascq: at(13) });
  if ((at(0) & 0x80) !== 0 && d.length >= 7) sense.info = d.readUInt32BE(3);
  // Sequential-access flags (SSC-3): the INFORMATION field is then a signed residue.
  if ((at(2) & 0x80) !== 0) sense.filemark = true;
  if ((at(2) & 0x40) !== 0) sense.eom = true;
  if ((at(2) & 0x20) !== 0) sense.ili = true;
  if ((at(15) & 0x80) !== 0 && sense.key === SenseKey.ILLEGAL_REQUEST && d.length >= 18) {
    sense.field = { inCdb: (d[15] & 0x40) !== 0, byte: d.readUInt16BE(16), ...((d[15] & 0x08) !== 0 ? { bit: d[15] & 0x07 } : {}) };
  }
  return sense;
}

function withText(s: Omit<Sense, 'text'>): Sense {
  return { ...s, text: `${senseKeyName(s.key)}: ${ascText(s.asc, s.ascq)}` };
}

/** The sense in words, with the field pointer or information when there is one. */
export function describeSense(s: Sense): string {
  if (s.field) return `${s.text} (${s.field.inCdb ? 'CDB' : 'parameter list'} byte ${s.field.byte}${s.field.bit !== undefined ? ` bit ${s.field.bit}` : ''})`;
  const flags = [s.filemark ? 'FILEMARK' : '', s.eom ? 'EOM' : '', s.ili ? 'ILI' : ''].filter((x) => x).join(' ');
  if (flags) return `${s.text} [${flags}]${s.info !== undefined ? ` (residue ${s.info | 0})` : ''}`;
  if (s.info !== undefined) return `${s.text} (information ${s.info})`;
  return s.text;
}

export function statusName(status: number): string {
  return (Object.keys(ScsiStatus) as (keyof typeof ScsiStatus)[]).find((k) => ScsiStatus[k] === status)?.replace(/_/g, ' ') ?? `STATUS ${hex2(status)}h`;
}

/** A command ended with a status other than GOOD; `sense` is set for CHECK CONDITION. */
export class ScsiError extends Error {
  constructor(readonly status: number, readonly sense?: Sense, readonly opcode?: number) {
    super(sense ? describeSense(sense) : statusName(status));
    this.name = 'ScsiError';
  }
}

// ---- Helpers ------------------------------------------------------------------------------------------

function need(d: Buffer, bytes: number, what: string): void {
  if (d.length < bytes) throw new Error(`${what}: ${d.length} bytes, need ${bytes}`);
}

function ascii(d: Buffer, at: number, n: number): string {
  return d.toString('latin1', at, Math.min(d.length, at + n)).replace(/[\0 ]+$/, '');
}

function cstring(d: Buffer, at: number, n: number): string {
  const end = d.indexOf(0, at);
  return d.toString('latin1', at, end < 0 || end > at + n ? at + n : end);
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

// ---- Volume pairs (docs/scsi.md, "Volume pairs") -----------------------------------------------------

/** Pair states (document 001: simplex, duplex pending, duplex, split pending, split), reverse resync, suspended. */
export const PairState = ['simplex', 'duplex pending', 'duplex', 'split pending', 'split', 'reverse resync', 'suspended'] as const;
export type PairStateName = (typeof PairState)[number];
export const SuspendReason = ['', 'source not ready', 'target not ready', 'read error', 'NV error', 'source not ready in time', 'target not ready in time'] as const;

/** PAIR CREATE's parameter list: source, target, track size in KiB (0: 64 KiB). */
export function pairCreateParameters(source: number, target: number, trackKiB = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(source, 0);
  b.writeUInt16BE(target, 2);
  b.writeUInt32BE(trackKiB, 4);
  return b;
}

/** PAIR SPLIT, RESYNC, REVERSE, DELETE: the argument names either volume of the pair. */
export function pairCommand(serviceAction: number, volume: number, flags = 0): Buffer {
  return management(true, serviceAction, 0, volume, flags);
}

/** PAIR COPY RANGE's parameter list: first LBA and blocks of the source. */
export function pairRangeParameters(lba: number, blocks: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(BigInt(lba), 0);
  b.writeBigUInt64BE(BigInt(blocks), 8);
  return b;
}

export interface PairStatus {
  pair: number;
  state: PairStateName;
  sourceState: PairStateName;
  targetState: PairStateName;
  targetReadOnly: boolean;
  suspendReason: string;
  trackBytes: number;
  source: number;
  target: number;
  tracks: number;
  pendingTracks: number;
  sourceChangedTracks: number;
  targetChangedTracks: number;
  copyJobs: number;
  copiedTracks: number;
  copiedBytes: number;
  /** Time left for the pending tracks at the average copy time so far, ms; undefined before a copy. */
  estimateMs?: number;
  /** Time since the last split, ms (0: never split). */
  sinceSplitMs: number;
}

export function parsePairStatus(d: Buffer): PairStatus[] {
  const name = (n: number): PairStateName => PairState[n] ?? 'simplex';
  return parseManagementList(d).entries.map((e) => ({
    pair: e[0],
    state: name(e[1]),
    sourceState: name(e[2]),
    targetState: name(e[3]),
    targetReadOnly: (e[4] & 1) !== 0,
    suspendReason: SuspendReason[e[5]] ?? String(e[5]),
    trackBytes: e.readUInt16BE(6) * 1024,
    source: e.readUInt16BE(8),
    target: e.readUInt16BE(10),
    tracks: e.readUInt32BE(12),
    pendingTracks: e.readUInt32BE(16),
    sourceChangedTracks: e.readUInt32BE(20),
    targetChangedTracks: e.readUInt32BE(24),
    copyJobs: e.readUInt32BE(28),
    copiedTracks: Number(e.readBigUInt64BE(32)),
    copiedBytes: Number(e.readBigUInt64BE(40)),
    estimateMs: e.readUInt32BE(48) === 0xffffffff ? undefined : e.readUInt32BE(48),
    sinceSplitMs: e.readUInt32BE(52),
  }));
}
