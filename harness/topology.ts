// Topology files (docs/topology.md): parsed and validated before anything starts. Every error
// names the field it concerns by its path in the file, and nothing is created until the whole
// file is valid.
import * as path from 'path';
import * as fs from 'fs';
import * as os from 'os';
import { MAX_IOPS, MAX_MEDIA, MAX_PORTS, MAX_SESSIONS, SLOT_BYTES, SECTOR_BYTES, MAX_TAPE_DEVICES, TAPE_LUN_MIN } from '../hal/abi';
import type { NvFault } from '../hal/nv';
import { packagePath } from '../lib/paths';
import { parseLinks, type RelaySpec, type LinkSpec, type LinkPortSpec, type LinkNodeSpec } from './links';

export type Mode = 'realtime' | 'deterministic';
export type Scheduler = 'fifo' | 'sstf' | 'clook' | 'deadline';
export type PortTransport = 'tcp' | 'serial' | 'pty' | 'inproc';
export type PortProtocol = 'framed' | 'iscsi' | 'nbd';

/** CHAP secrets of an iSCSI port: what initiators must present, and what the target answers with (mutual). */
export interface ChapSpec { user: string; secret: string; targetUser: string; targetSecret: string }

export interface TimingSpec { trackMs: number; averageMs: number; fullMs: number; rpm: number; transferMBps: number }
export type FaultSpec =
  | { type: 'readError' | 'writeError'; lba: number; count: number }
  | { type: 'slow'; factor: number }
  | { type: 'dead' };

export interface MediumSpec {
  name: string;
  kind: 'ram' | 'file';
  path: string; // absolute, file only ('' for ram)
  bytes: number;
  scheduler: Scheduler;
  queueDepth: number;
  deadlineMs: { read: number; write: number };
  timing?: TimingSpec;
  faults: FaultSpec[];
}

export interface PortSpec {
  name: string;
  iop: number;
  transport: PortTransport;
  /** tcp: the framed protocol (docs/protocol.md), iSCSI (docs/iscsi.md) or NBD (docs/nbd.md); serial, pty and inproc are framed or queue. */
  protocol: PortProtocol;
  targetName: string; // iscsi: the port's iSCSI target name
  chap: ChapSpec | undefined; // iscsi
  pingIntervalMs: number; // iscsi: an idle initiator gets a NOP-In after this long (0: never)
  host: string;
  port: number;
  path: string;
  baudRate: number;
  link: string;
  address: number;
  sessions: number;
  queueEntries: number; // inproc: command entries per session
  dataBytes: number; // inproc: data area per session
  rxBytes: number; // stream: receive ring per session
  txBytes: number; // stream: transmit ring per session
  idleTimeoutMs: number; // stream: a session with no command in flight that receives nothing this long is closed (0: never)
}

/** Tape timing (virtual or real time): threading, the robot, tape motion and streaming. */
export interface TapeTiming { loadMs: number; unloadMs: number; moveMs: number; locateMBps: number; streamMBps: number }
export type TapeFault =
  | { type: 'writeError' | 'readError'; block: number }
  | { type: 'endOfMedium'; bytes: number }
  | { type: 'offline' };
export interface CartridgeSpec { barcode: string; slot: number; bytes: number; writeProtect: boolean }
/** A tape library attached to the array (docs/tape.md): the changer at `lun`, the drives at the LUNs after it. */
export interface LibrarySpec {
  name: string;
  dir: string; // absolute: the cartridges' AWS images and library.json
  lun: number;
  slots: number;
  importExport: number;
  maxBlockBytes: number;
  earlyWarningBytes: number;
  density: number;
  timing: TapeTiming;
  drives: Array<{ name: string; faults: TapeFault[] }>;
  cartridges: CartridgeSpec[];
}

export interface ArraySpec {
  name: string;
  dir: string;
  serial: string;
  deviceId: string; // 32 hex digits
  cache: { bytes: number; destageIntervalMs: number; destageAgeMs: number; destageAgeIdleMs: number; dirtyHighPercent: number; slotWaitMs: number };
  nv: { path: string; sync: boolean; faults: NvFault[] };
  contexts: number;
  traceCommands: boolean;
  iops: Array<'channel' | 'disk'>;
  media: MediumSpec[];
  ports: PortSpec[];
  library: LibrarySpec | undefined;
  /** Link queues of this array (one per channel IOP and link end): filled by parseLinks (docs/remote.md). */
  linkPorts?: LinkPortSpec[];
  /** The array's place among linked nodes (node number, routes, every node's name and kind): filled by parseLinks. */
  linkNode?: LinkNodeSpec;
}

export interface Topology {
  mode: Mode;
  seed: number;
  trace: string; // absolute path, or '' for none
  metricsIntervalMs: number;
  arrays: ArraySpec[];
  /** Relays and links between nodes (docs/remote.md): none in a topology of one array. */
  relays: RelaySpec[];
  links: LinkSpec[];
  /**
   * Every array's name in node order, those that run in another process ("elsewhere": true, reached
   * over a TCP link) included; absent: the arrays above are all there is (docs/topology.md).
   */
  arrayNodes?: string[];
}

export class TopologyError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'TopologyError';
  }
}

export const DEFAULT_TOPOLOGY_PATH = packagePath('harness', 'default-topology.json');

/** Reads and validates a topology file; relative paths resolve against its folder. */
export function loadTopology(file?: string): Topology {
  const source = file ?? DEFAULT_TOPOLOGY_PATH;
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (e) {
    throw new TopologyError(source, `cannot read: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TopologyError(source, `not valid JSON: ${(e as Error).message}`);
  }
  // The embedded default keeps its data under the current directory, like a project's var/.
  return parseTopology(json, file ? path.dirname(path.resolve(file)) : process.cwd());
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

export function parseSize(v: unknown, field: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$/.exec(v);
    if (m) {
      const n = Number(m[1]) * SIZE_UNITS[m[2] ?? ''];
      if (Number.isSafeInteger(n)) return n;
    }
  }
  throw new TopologyError(field, `expected a size such as "1GiB" or a number of bytes, got ${JSON.stringify(v)}`);
}

/** Validates a parsed topology document. `baseDir` anchors relative paths. */
export function parseTopology(doc: unknown, baseDir: string): Topology {
  const top = object(doc, '(topology)');
  known(top, '(topology)', ['mode', 'seed', 'trace', 'metricsIntervalMs', 'arrays', 'relays', 'links', '$comment']);
  const mode = oneOf(top.mode ?? 'realtime', 'mode', ['realtime', 'deterministic'] as const);
  const seed = integer(top.seed ?? 1, 'seed', 0, 0xFFFFFFFF);
  const trace = top.trace === undefined ? '' : path.resolve(baseDir, string(top.trace, 'trace'));
  const metricsIntervalMs = number(top.metricsIntervalMs ?? 1000, 'metricsIntervalMs', 1, 3_600_000);
  const arraysIn = list(top.arrays, 'arrays', 1, 8);
  // An array that runs in another process is a node here (it keeps its number) and nothing else.
  const elsewhere = arraysIn.map((a, i) => parseElsewhere(a, `arrays[${i}]`));
  const arrays = arraysIn.flatMap((a, i) => (elsewhere[i] === undefined ? [parseArray(a, `arrays[${i}]`, baseDir)] : []));
  if (arrays.length === 0) throw new TopologyError('arrays', 'every array runs elsewhere: at least one must run in this process');
  const arrayNodes = arraysIn.map((a, i) => elsewhere[i] ?? (a as { name: string }).name);
  unique(arrayNodes, (i) => `arrays[${i}].name`);
  unique(arrays.map((a) => a.dir), (i) => `arrays[${i}].dir`);
  const tcp = arrays.flatMap((a, ai) => a.ports.map((p, pi) => ({ p, f: `arrays[${ai}].ports[${pi}].port` })))
    .filter((x) => x.p.transport === 'tcp' && x.p.port !== 0);
  unique(tcp.map((x) => `${x.p.host}:${x.p.port}`), (i) => tcp[i].f);
  const { relays, links } = parseLinks(top, arrays, baseDir, arrayNodes);
  if (mode === 'deterministic') checkTcpMode(links);
  return { mode, seed, trace, metricsIntervalMs, arrays, relays, links, ...(arrays.length < arrayNodes.length ? { arrayNodes } : {}) };
}

/** A link to another process runs on the wall clock: not in deterministic mode (one virtual clock per process). */
export function checkTcpMode(links: LinkSpec[]): void {
  const i = links.findIndex((l) => l.tcp);
  if (i >= 0) throw new TopologyError(`links[${i}].tcp`, 'a link to another process runs on the wall clock: the topology needs mode realtime');
}

/** `{ "name": n, "elsewhere": true }`: the array runs in another process; its name, else undefined. */
function parseElsewhere(v: unknown, f: string): string | undefined {
  const a = object(v, f);
  if (a.elsewhere === undefined) return undefined;
  if (!boolean(a.elsewhere, `${f}.elsewhere`)) return undefined;
  const extra = Object.keys(a).filter((k) => k !== 'name' && k !== 'elsewhere' && k !== '$comment');
  if (extra.length > 0) throw new TopologyError(`${f}.${extra[0]}`, 'an array that runs elsewhere has only "name" here: its other fields are in its own process\'s topology');
  return pattern(a.name, `${f}.name`, /^[A-Za-z0-9_-]{1,31}$/, 'letters, digits, _ or -, at most 31');
}

function parseArray(v: unknown, f: string, baseDir: string): ArraySpec {
  const a = object(v, f);
  known(a, f, ['name', 'elsewhere', 'dir', 'serial', 'deviceId', 'cache', 'nv', 'contexts', 'traceCommands', 'iops', 'media', 'ports', 'library']);
  const name = pattern(a.name, `${f}.name`, /^[A-Za-z0-9_-]{1,31}$/, 'letters, digits, _ or -, at most 31');
  const dir = path.resolve(baseDir, a.dir === undefined ? path.join('var', name) : string(a.dir, `${f}.dir`));
  const serial = a.serial === undefined ? deriveSerial(name)
    : pattern(a.serial, `${f}.serial`, /^[\x21-\x7e]{1,20}$/, 'printable ASCII without spaces, at most 20');
  const deviceId = a.deviceId === undefined ? deriveDeviceId(serial)
    : pattern(a.deviceId, `${f}.deviceId`, /^6[0-9a-fA-F]{31}$/, '32 hex digits of an NAA-6 identifier (starting with 6)').toLowerCase();
  const c = a.cache === undefined ? {} : object(a.cache, `${f}.cache`);
  known(c, `${f}.cache`, ['size', 'destageIntervalMs', 'destageAgeMs', 'destageAgeIdleMs', 'dirtyHighPercent', 'slotWaitMs']);
  const cacheBytes = parseSize(c.size ?? '64MiB', `${f}.cache.size`);
  if (cacheBytes < 1 << 20 || cacheBytes > 1 << 30 || cacheBytes % SLOT_BYTES !== 0) {
    throw new TopologyError(`${f}.cache.size`, `must be a multiple of 64KiB from 1MiB to 1GiB, got ${cacheBytes} bytes`);
  }
  const destageAgeMs = number(c.destageAgeMs ?? 50, `${f}.cache.destageAgeMs`, 0, 3_600_000);
  // A topology that sets the age keeps it fixed unless it also sets the idle age.
  const destageAgeIdleMs = number(c.destageAgeIdleMs ?? (c.destageAgeMs === undefined ? 2000 : destageAgeMs), `${f}.cache.destageAgeIdleMs`, 0, 3_600_000);
  if (destageAgeIdleMs < destageAgeMs) throw new TopologyError(`${f}.cache.destageAgeIdleMs`, `must be at least destageAgeMs (${destageAgeMs}), got ${destageAgeIdleMs}`);
  const cache = {
    bytes: cacheBytes,
    destageIntervalMs: number(c.destageIntervalMs ?? 5, `${f}.cache.destageIntervalMs`, 0.01, 60_000),
    destageAgeMs,
    destageAgeIdleMs,
    dirtyHighPercent: integer(c.dirtyHighPercent ?? 60, `${f}.cache.dirtyHighPercent`, 1, 100),
    // A command or copy that waits this long for a cache slot fails with a sense naming the cache
    // (docs/topology.md): under the 30 s an initiator gives a command, far over a destage.
    slotWaitMs: number(c.slotWaitMs ?? 20_000, `${f}.cache.slotWaitMs`, 1, 3_600_000),
  };
  const n = a.nv === undefined ? {} : object(a.nv, `${f}.nv`);
  known(n, `${f}.nv`, ['path', 'sync', 'faults']);
  const nv = {
    path: path.resolve(dir, string(n.path ?? 'nvram.bin', `${f}.nv.path`)), sync: boolean(n.sync ?? false, `${f}.nv.sync`),
    faults: (n.faults === undefined ? [] : list(n.faults, `${f}.nv.faults`, 0, 16)).map((x, i) => parseNvFault(x, `${f}.nv.faults[${i}]`)),
  };
  const contexts = integer(a.contexts ?? 512, `${f}.contexts`, 64, 4096);
  const traceCommands = boolean(a.traceCommands ?? false, `${f}.traceCommands`);
  const iops = list(a.iops, `${f}.iops`, 2, MAX_IOPS).map((x, i) => {
    const o = object(x, `${f}.iops[${i}]`);
    known(o, `${f}.iops[${i}]`, ['role']);
    return oneOf(o.role, `${f}.iops[${i}].role`, ['channel', 'disk'] as const);
  });
  if (iops.filter((r) => r === 'disk').length !== 1) {
    throw new TopologyError(`${f}.iops`, `needs exactly one IOP with role "disk", has ${iops.filter((r) => r === 'disk').length}`);
  }
  const media = list(a.media, `${f}.media`, 1, MAX_MEDIA).map((m, i) => parseMedium(m, `${f}.media[${i}]`, dir));
  unique(media.map((m) => m.name), (i) => `${f}.media[${i}].name`);
  unique(media.filter((m) => m.kind === 'file').map((m) => m.path), (i) => `${f}.media[${i}].path`);
  const ports = list(a.ports, `${f}.ports`, 1, MAX_PORTS).map((p, i) => parsePort(p, `${f}.ports[${i}]`, i, dir, iops, name));
  unique(ports.map((p) => p.name), (i) => `${f}.ports[${i}].name`);
  const targets = ports.map((p, i) => ({ p, i })).filter((x) => x.p.protocol === 'iscsi');
  unique(targets.map((x) => x.p.targetName), (i) => `${f}.ports[${targets[i].i}].targetName`);
  unique(ports.map((p) => String(p.address)), (i) => `${f}.ports[${i}].address`);
  const library = a.library === undefined ? undefined : parseLibrary(a.library, `${f}.library`, dir);
  if (library) {
    const names = [...media.map((m) => m.name), 'nv'];
    library.drives.forEach((d, i) => {
      if (names.includes(d.name)) throw new TopologyError(`${f}.library.drives[${i}].name`, `${JSON.stringify(d.name)} also names a medium (or the NV memory); fault commands need one meaning`);
    });
  }
  return { name, dir, serial, deviceId, cache, nv, contexts, traceCommands, iops, media, ports, library };
}

const BARCODE = /^[A-Z0-9]{6}(?:[A-Z0-9]{2})?$/;

function parseLibrary(v: unknown, f: string, dir: string): LibrarySpec {
  const l = object(v, f);
  known(l, f, ['name', 'dir', 'lun', 'slots', 'importExport', 'maxBlock', 'earlyWarning', 'density', 'timing', 'drives', 'cartridges']);
  const name = pattern(l.name ?? 'library0', `${f}.name`, /^[A-Za-z0-9_-]{1,31}$/, 'letters, digits, _ or -, at most 31');
  const slots = integer(l.slots ?? 8, `${f}.slots`, 1, 512);
  const drivesIn = list(l.drives ?? [{ name: 'drive0' }, { name: 'drive1' }], `${f}.drives`, 1, MAX_TAPE_DEVICES - 1);
  const lun = integer(l.lun ?? 256, `${f}.lun`, TAPE_LUN_MIN, 0x3FFF - drivesIn.length);
  const importExport = integer(l.importExport ?? 1, `${f}.importExport`, 0, 8);
  const maxBlockBytes = sizeIn(l.maxBlock ?? '256KiB', `${f}.maxBlock`, 1, 256 * 1024);
  const earlyWarningBytes = sizeIn(l.earlyWarning ?? '1MiB', `${f}.earlyWarning`, 0, 2 ** 40);
  const density = integer(l.density ?? 0x58, `${f}.density`, 1, 255);
  const t = l.timing === undefined ? {} : object(l.timing, `${f}.timing`);
  known(t, `${f}.timing`, ['loadMs', 'unloadMs', 'moveMs', 'locateMBps', 'streamMBps']);
  const timing: TapeTiming = {
    loadMs: number(t.loadMs ?? 1000, `${f}.timing.loadMs`, 0, 600_000), unloadMs: number(t.unloadMs ?? 1000, `${f}.timing.unloadMs`, 0, 600_000),
    moveMs: number(t.moveMs ?? 2000, `${f}.timing.moveMs`, 0, 600_000), locateMBps: number(t.locateMBps ?? 10_000, `${f}.timing.locateMBps`, 0.001, 1e6),
    streamMBps: number(t.streamMBps ?? 140, `${f}.timing.streamMBps`, 0.001, 1e5),
  };
  const drives = drivesIn.map((x, i) => {
    const o = object(x, `${f}.drives[${i}]`);
    known(o, `${f}.drives[${i}]`, ['name', 'faults']);
    return {
      name: pattern(o.name, `${f}.drives[${i}].name`, /^[A-Za-z0-9_-]{1,31}$/, 'letters, digits, _ or -, at most 31'),
      faults: (o.faults === undefined ? [] : list(o.faults, `${f}.drives[${i}].faults`, 0, 16)).map((y, k) => parseTapeFault(y, `${f}.drives[${i}].faults[${k}]`)),
    };
  });
  unique(drives.map((d) => d.name), (i) => `${f}.drives[${i}].name`);
  let next = 0;
  const cartridges = (l.cartridges === undefined ? [] : list(l.cartridges, `${f}.cartridges`, 0, slots)).map((x, i) => {
    const o = object(x, `${f}.cartridges[${i}]`);
    known(o, `${f}.cartridges[${i}]`, ['barcode', 'slot', 'size', 'writeProtect']);
    const slot = integer(o.slot ?? next, `${f}.cartridges[${i}].slot`, 0, slots - 1);
    next = slot + 1;
    return {
      barcode: pattern(o.barcode, `${f}.cartridges[${i}].barcode`, BARCODE, '6 or 8 upper-case letters or digits (the first 6 are the volume serial of its VOL1 label), such as "SB0001L5"'),
      slot, bytes: sizeIn(o.size ?? '1GiB', `${f}.cartridges[${i}].size`, 1 << 20, 2 ** 44),
      writeProtect: boolean(o.writeProtect ?? false, `${f}.cartridges[${i}].writeProtect`),
    };
  });
  unique(cartridges.map((c) => c.barcode), (i) => `${f}.cartridges[${i}].barcode`);
  unique(cartridges.map((c) => String(c.slot)), (i) => `${f}.cartridges[${i}].slot`);
  const libDir = path.resolve(dir, l.dir === undefined ? name : string(l.dir, `${f}.dir`));
  return { name, dir: libDir, lun, slots, importExport, maxBlockBytes, earlyWarningBytes, density, timing, drives, cartridges };
}

/** { "type": "writeError" | "readError", "block": n } (a logical object number), { "type": "endOfMedium", "size": "1MiB" }, { "type": "offline" }. */
export function parseTapeFault(v: unknown, f: string): TapeFault {
  const o = object(v, f);
  const type = oneOf(o.type, `${f}.type`, ['writeError', 'readError', 'endOfMedium', 'offline'] as const);
  if (type === 'offline') { known(o, f, ['type']); return { type }; }
  if (type === 'endOfMedium') { known(o, f, ['type', 'size']); return { type, bytes: sizeIn(o.size, `${f}.size`, 6, 2 ** 44) }; }
  known(o, f, ['type', 'block']);
  return { type, block: integer(o.block, `${f}.block`, 0, 0xFFFFFFFF) };
}

function parseMedium(v: unknown, f: string, dir: string): MediumSpec {
  const m = object(v, f);
  known(m, f, ['name', 'kind', 'path', 'size', 'scheduler', 'queueDepth', 'deadlineMs', 'timing', 'faults']);
  const name = pattern(m.name, `${f}.name`, /^[A-Za-z0-9_.-]{1,31}$/, 'letters, digits, _ . or -, at most 31');
  if (name === 'nv') throw new TopologyError(`${f}.name`, '"nv" names the NV memory in fault commands; choose another name');
  const kind = oneOf(m.kind, `${f}.kind`, ['ram', 'file'] as const);
  if (kind === 'ram' && m.path !== undefined) throw new TopologyError(`${f}.path`, 'only a "file" medium has a path');
  const file = kind === 'file' ? path.resolve(dir, string(m.path ?? `${name}.img`, `${f}.path`)) : '';
  const bytes = parseSize(m.size, `${f}.size`);
  if (bytes < 1 << 20 || bytes > 16 * 1024 ** 4 || bytes % SLOT_BYTES !== 0) {
    throw new TopologyError(`${f}.size`, `must be a multiple of 64KiB from 1MiB to 16TiB, got ${bytes} bytes`);
  }
  const scheduler = oneOf(m.scheduler ?? 'clook', `${f}.scheduler`, ['fifo', 'sstf', 'clook', 'deadline'] as const);
  let timing: TimingSpec | undefined;
  if (m.timing !== undefined) {
    const t = object(m.timing, `${f}.timing`);
    known(t, `${f}.timing`, ['seekMs', 'rpm', 'transferMBps']);
    const s = t.seekMs === undefined ? {} : object(t.seekMs, `${f}.timing.seekMs`);
    known(s, `${f}.timing.seekMs`, ['track', 'average', 'full']);
    timing = {
      trackMs: number(s.track ?? 0.5, `${f}.timing.seekMs.track`, 0, 1000),
      averageMs: number(s.average ?? 4, `${f}.timing.seekMs.average`, 0, 1000),
      fullMs: number(s.full ?? 9, `${f}.timing.seekMs.full`, 0, 1000),
      rpm: number(t.rpm ?? 7200, `${f}.timing.rpm`, 0, 100_000),
      transferMBps: number(t.transferMBps ?? 150, `${f}.timing.transferMBps`, 0.001, 1_000_000),
    };
  }
  const queueDepth = integer(m.queueDepth ?? (timing ? 1 : 8), `${f}.queueDepth`, 1, 64);
  const d = m.deadlineMs === undefined ? {} : object(m.deadlineMs, `${f}.deadlineMs`);
  known(d, `${f}.deadlineMs`, ['read', 'write']);
  const deadlineMs = { read: number(d.read ?? 50, `${f}.deadlineMs.read`, 0.001, 3_600_000), write: number(d.write ?? 500, `${f}.deadlineMs.write`, 0.001, 3_600_000) };
  const faults = (m.faults === undefined ? [] : list(m.faults, `${f}.faults`, 0, 256)).map((x, i) => parseFault(x, `${f}.faults[${i}]`, bytes / SECTOR_BYTES));
  return { name, kind, path: file, bytes, scheduler, queueDepth, deadlineMs, timing, faults };
}

export function parseFault(v: unknown, f: string, sectors: number): FaultSpec {
  const o = object(v, f);
  const type = oneOf(o.type, `${f}.type`, ['readError', 'writeError', 'slow', 'dead'] as const);
  if (type === 'dead') { known(o, f, ['type']); return { type }; }
  if (type === 'slow') { known(o, f, ['type', 'factor']); return { type, factor: number(o.factor, `${f}.factor`, 1, 1_000_000) }; }
  known(o, f, ['type', 'lba', 'count']);
  const lba = integer(o.lba, `${f}.lba`, 0, sectors - 1);
  return { type, lba, count: integer(o.count ?? 1, `${f}.count`, 1, sectors - lba) };
}

const ERRNO = os.constants.errno as Record<string, number>;

/** An NV fault (docs/topology.md): errno as a name (ENOSPC, EIO, ...) or a number. */
export function parseNvFault(v: unknown, f: string): NvFault {
  const o = object(v, f);
  const type = oneOf(o.type, `${f}.type`, ['error', 'torn', 'powerLoss'] as const);
  if (type === 'error') {
    known(o, f, ['type', 'errno', 'count']);
    const errno = typeof o.errno === 'string' && ERRNO[o.errno] !== undefined ? ERRNO[o.errno]
      : typeof o.errno === 'string' && /^\d+$/.test(o.errno) ? Number(o.errno) : o.errno;
    if (typeof errno !== 'number') throw new TopologyError(`${f}.errno`, `expected an errno name such as "ENOSPC" or "EIO", or a number, got ${describe(o.errno)}`);
    return { type, errno: integer(errno, `${f}.errno`, 1, 4095), ...(o.count === undefined ? {} : { count: integer(o.count, `${f}.count`, 1, 2 ** 31) }) };
  }
  if (type === 'torn') {
    known(o, f, ['type', 'bytes', 'afterWrites']);
    return {
      type,
      ...(o.bytes === undefined ? {} : { bytes: integer(o.bytes, `${f}.bytes`, 0, 2 ** 31) }),
      ...(o.afterWrites === undefined ? {} : { afterWrites: integer(o.afterWrites, `${f}.afterWrites`, 0, 2 ** 31) }),
    };
  }
  known(o, f, ['type', 'afterWrites']);
  return { type, afterWrites: integer(o.afterWrites, `${f}.afterWrites`, 0, 2 ** 31) };
}

/** How long a framed TCP session with no command in flight may stay silent before the array closes it. */
export const DEFAULT_TCP_IDLE_MS = 60_000;

function parsePort(v: unknown, f: string, index: number, dir: string, iops: string[], arrayName: string): PortSpec {
  const p = object(v, f);
  const transport = oneOf(p.transport, `${f}.transport`, ['tcp', 'serial', 'pty', 'inproc'] as const);
  const protocol = transport === 'tcp' ? oneOf(p.protocol ?? 'framed', `${f}.protocol`, ['framed', 'iscsi', 'nbd'] as const) : 'framed';
  const fields: Record<PortTransport, string[]> = {
    tcp: ['host', 'port', 'sessions', 'rxBytes', 'txBytes', 'protocol'],
    serial: ['path', 'baudRate', 'rxBytes', 'txBytes', 'idleTimeoutMs'],
    pty: ['link', 'baudRate', 'rxBytes', 'txBytes', 'idleTimeoutMs'],
    inproc: ['sessions', 'queueEntries', 'dataBytes'],
  };
  const iscsi = protocol === 'iscsi';
  const nbd = protocol === 'nbd';
  known(p, f, ['name', 'iop', 'transport', ...(iscsi ? ['targetName', 'chap', 'pingIntervalMs'] : nbd ? ['idleTimeoutMs']
    : transport === 'tcp' ? ['address', 'idleTimeoutMs'] : ['address']),
    ...fields[transport]]);
  const name = pattern(p.name, `${f}.name`, /^[A-Za-z0-9_.-]{1,31}$/, 'letters, digits, _ . or -, at most 31');
  const iop = integer(p.iop, `${f}.iop`, 0, iops.length - 1);
  if (iops[iop] !== 'channel') throw new TopologyError(`${f}.iop`, `IOP ${iop} is the disk IOP; a port belongs to a channel IOP`);
  const stream = transport !== 'inproc';
  const single = transport === 'serial' || transport === 'pty';
  const sessions = single ? 1 : integer(p.sessions ?? 8, `${f}.sessions`, 1, MAX_SESSIONS);
  const rxBytes = stream ? pow2(parseSize(p.rxBytes ?? '256KiB', `${f}.rxBytes`), `${f}.rxBytes`, iscsi ? 65536 : nbd ? 16384 : 8192, 1 << 24) : 0;
  const txBytes = stream ? pow2(parseSize(p.txBytes ?? '512KiB', `${f}.txBytes`), `${f}.txBytes`, 8192, 1 << 24) : 0;
  if (iscsi && txBytes < rxBytes) {
    throw new TopologyError(`${f}.txBytes`, `an iSCSI port's txBytes must be at least its rxBytes (${rxBytes}), got ${txBytes}`);
  }
  return {
    name, iop, transport, protocol,
    targetName: iscsi ? iscsiName(p.targetName ?? defaultTargetName(arrayName, name), `${f}.targetName`) : '',
    chap: iscsi && p.chap !== undefined ? parseChap(p.chap, `${f}.chap`) : undefined,
    pingIntervalMs: iscsi ? integer(p.pingIntervalMs ?? 10000, `${f}.pingIntervalMs`, 0, 3_600_000) : 0,
    host: transport === 'tcp' ? string(p.host ?? '127.0.0.1', `${f}.host`) : '',
    port: transport === 'tcp' ? integer(p.port ?? (iscsi ? 3260 : nbd ? 10809 : undefined), `${f}.port`, 0, 65535) : 0,
    path: transport === 'serial' ? string(p.path, `${f}.path`) : '',
    baudRate: single ? integer(p.baudRate ?? 115200, `${f}.baudRate`, 50, 16_000_000) : 0,
    link: transport === 'pty' ? path.resolve(dir, string(p.link ?? `${name}.tty`, `${f}.link`)) : '',
    address: integer(p.address ?? index + 1, `${f}.address`, 1, 0xFFFE),
    sessions,
    queueEntries: stream ? 0 : pow2(p.queueEntries ?? 128, `${f}.queueEntries`, 16, 4096),
    dataBytes: stream ? 0 : sizeIn(p.dataBytes ?? '32MiB', `${f}.dataBytes`, 64 * 1024, 256 * 1024 * 1024),
    rxBytes,
    txBytes,
    // A framed or NBD TCP port has several sessions that idle connections could hold; a serial line
    // has one; an iSCSI port pings an idle initiator instead (pingIntervalMs).
    idleTimeoutMs: stream && protocol !== 'iscsi'
      ? integer(p.idleTimeoutMs ?? (transport === 'tcp' ? DEFAULT_TCP_IDLE_MS : 0), `${f}.idleTimeoutMs`, 0, 86_400_000) : 0,
  };
}

/** `iqn.2026-11.org.sanbox:<array>.<port>`, lower case, other characters than letters, digits, '-' and '.' as '-'. */
export function defaultTargetName(array: string, port: string): string {
  const part = (x: string) => x.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
  return `iqn.2026-11.org.sanbox:${part(array)}.${part(port)}`;
}

/** An iSCSI name (RFC 7143 4.2.7): iqn., eui. or naa. format, at most 223 bytes, lower case. */
function iscsiName(v: unknown, f: string): string {
  const s = string(v, f);
  const ok = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[a-z0-9.:-]+)?$/.test(s)
    || /^eui\.[0-9A-F]{16}$/.test(s) || /^naa\.(?:[0-9A-F]{16}|[0-9A-F]{32})$/.test(s);
  if (!ok || s.length > 223) {
    throw new TopologyError(f, `expected an iSCSI name such as "iqn.2026-11.org.example:disk1" (iqn. with a year-month and a reversed domain in lower case, eui. or naa. with upper-case hex; at most 223 characters), got ${JSON.stringify(s)}`);
  }
  return s;
}

function parseChap(v: unknown, f: string): ChapSpec {
  const c = object(v, f);
  known(c, f, ['user', 'secret', 'targetUser', 'targetSecret']);
  const name = (x: unknown, g: string) => pattern(x, g, /^[\x21-\x7e]{1,127}$/, 'printable ASCII without spaces, at most 127 characters');
  // RFC 7143 12.1.3: CHAP secrets of at least 96 bits unless the line is protected otherwise.
  const secret = (x: unknown, g: string) => pattern(x, g, /^[\x21-\x7e]{12,127}$/, 'printable ASCII without spaces, 12 to 127 characters');
  const user = name(c.user, `${f}.user`);
  const sec = secret(c.secret, `${f}.secret`);
  if ((c.targetUser === undefined) !== (c.targetSecret === undefined)) {
    throw new TopologyError(`${f}.${c.targetUser === undefined ? 'targetUser' : 'targetSecret'}`, 'mutual CHAP needs both targetUser and targetSecret');
  }
  const targetUser = c.targetUser === undefined ? '' : name(c.targetUser, `${f}.targetUser`);
  const targetSecret = c.targetSecret === undefined ? '' : secret(c.targetSecret, `${f}.targetSecret`);
  if (targetSecret !== '' && targetSecret === sec) {
    throw new TopologyError(`${f}.targetSecret`, 'must differ from secret: one secret for both directions lets an attacker reflect a challenge');
  }
  return { user, secret: sec, targetUser, targetSecret };
}

// A serial number from the array name: stable, so the same topology keeps its identity.
function deriveSerial(name: string): string {
  return `SB${fnv1a(name).toString(16).toUpperCase().padStart(8, '0')}`;
}

/** NAA-6: 6, the IEEE company ID (here a locally administered 0x5AB0C0), and a vendor-specific part from the serial. */
function deriveDeviceId(serial: string): string {
  const part = (salt: string) => fnv1a(`${salt}${serial}`).toString(16).padStart(8, '0');
  return `65ab0c0${part('')}${part('#')}${part('##')}${part('###')}`.slice(0, 32);
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---- field checks --------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

export function object(v: unknown, f: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TopologyError(f, `expected an object, got ${describe(v)}`);
  return v as Obj;
}
export function known(o: Obj, f: string, fields: string[]): void {
  for (const k of Object.keys(o)) {
    if (!fields.includes(k)) throw new TopologyError(`${f}.${k}`, `unknown field (expected one of ${fields.join(', ')})`);
  }
}
export function list(v: unknown, f: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw new TopologyError(f, `expected an array, got ${describe(v)}`);
  if (v.length < min || v.length > max) throw new TopologyError(f, `expected ${min} to ${max} entries, got ${v.length}`);
  return v;
}
export function string(v: unknown, f: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new TopologyError(f, `expected a non-empty string, got ${describe(v)}`);
  return v;
}
export function pattern(v: unknown, f: string, re: RegExp, what: string): string {
  const s = string(v, f);
  if (!re.test(s)) throw new TopologyError(f, `expected ${what}, got ${JSON.stringify(s)}`);
  return s;
}
export function boolean(v: unknown, f: string): boolean {
  if (typeof v !== 'boolean') throw new TopologyError(f, `expected true or false, got ${describe(v)}`);
  return v;
}
export function number(v: unknown, f: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TopologyError(f, `expected a number, got ${describe(v)}`);
  if (v < min || v > max) throw new TopologyError(f, `expected ${min} to ${max}, got ${v}`);
  return v;
}
export function integer(v: unknown, f: string, min: number, max: number): number {
  const n = number(v, f, min, max);
  if (!Number.isInteger(n)) throw new TopologyError(f, `expected an integer, got ${n}`);
  return n;
}
function pow2(v: unknown, f: string, min: number, max: number): number {
  const n = integer(v, f, min, max);
  if ((n & (n - 1)) !== 0) throw new TopologyError(f, `expected a power of two, got ${n}`);
  return n;
}
export function sizeIn(v: unknown, f: string, min: number, max: number): number {
  const n = parseSize(v, f);
  if (n < min || n > max) throw new TopologyError(f, `expected ${min} to ${max} bytes, got ${n}`);
  return n;
}
function oneOf<T extends string>(v: unknown, f: string, options: readonly T[]): T {
  if (typeof v !== 'string' || !options.includes(v as T)) {
    throw new TopologyError(f, `expected one of ${options.map((o) => JSON.stringify(o)).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}
export function unique(values: string[], field: (i: number) => string): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) throw new TopologyError(field(i), `duplicate ${JSON.stringify(v)}`);
    seen.add(v);
  });
}
function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is required)';
  return JSON.stringify(v) ?? String(v);
}
