// The config block (docs/hal.md, Boot): what the firmware learns of its topology, written into
// common memory at CONFIG_ADDR before layout().
import * as crypto from 'crypto';
import * as A from '../hal/abi';
import { CommonMemory } from '../hal/memory';
import type { ArraySpec, LibrarySpec, Mode } from './topology';
import { writeLinkConfig } from './links';

const SCHEDULERS = { fifo: A.SCHED_FIFO, sstf: A.SCHED_SSTF, clook: A.SCHED_CLOOK, deadline: A.SCHED_DEADLINE };

/** Identity strings of every array (T10 vendor, product, revision). */
export const VENDOR = 'SANBOX';
export const PRODUCT = 'SANBOX ARRAY';
export const REVISION = '0001';

export interface ConfigOptions { mode: Mode; seed: number }

export function writeConfig(mem: CommonMemory, a: ArraySpec, o: ConfigOptions): void {
  const C = A.CONFIG_ADDR;
  mem.u8.fill(0, C, C + A.CONFIG_BYTES);
  const w32 = (off: number, v: number) => mem.setU32(C + off, v);
  w32(A.CFG_MAGIC, A.CONFIG_MAGIC);
  w32(A.CFG_VERSION, A.ABI_VERSION);
  w32(A.CFG_IOP_COUNT, a.iops.length);
  w32(A.CFG_MEDIA_COUNT, a.media.length);
  w32(A.CFG_PORT_COUNT, a.ports.length);
  w32(A.CFG_CACHE_SLOTS, a.cache.bytes / A.SLOT_BYTES);
  w32(A.CFG_BUFFER_CHUNKS, 64);
  w32(A.CFG_DESTAGE_INTERVAL_US, Math.round(a.cache.destageIntervalMs * 1000));
  w32(A.CFG_DESTAGE_AGE_US, Math.round(a.cache.destageAgeMs * 1000));
  w32(A.CFG_DESTAGE_AGE_IDLE_US, Math.round(a.cache.destageAgeIdleMs * 1000));
  w32(A.CFG_DIRTY_HIGH_PCT, a.cache.dirtyHighPercent);
  w32(A.CFG_SLOT_WAIT_US, Math.round(a.cache.slotWaitMs * 1000));
  w32(A.CFG_FLAGS, (o.mode === 'deterministic' ? A.CFGF_DETERMINISTIC : 0) | (a.traceCommands ? A.CFGF_TRACE_COMMANDS : 0));
  w32(A.CFG_SEED, o.seed);
  // Part of a new NV image's identity (medium labels name it): drawn, or seeded in deterministic mode.
  w32(A.CFG_NONCE, o.mode === 'deterministic' ? (Math.imul(o.seed ^ 0x9E3779B9, 0x85EBCA77) >>> 0) : crypto.randomBytes(4).readUInt32LE(0));
  w32(A.CFG_TRACE_ENTRIES, 4096);
  w32(A.CFG_CONTEXTS, a.contexts);
  w32(A.CFG_STAGE_DEPTH, 32);
  ascii(mem, C + A.CFG_VENDOR, 8, VENDOR);
  ascii(mem, C + A.CFG_PRODUCT, 16, PRODUCT);
  ascii(mem, C + A.CFG_REVISION, 4, REVISION);
  ascii(mem, C + A.CFG_SERIAL, 20, a.serial);
  mem.u8.set(Buffer.from(a.deviceId, 'hex'), C + A.CFG_DEVICE_ID);
  ascii(mem, C + A.CFG_ARRAY_NAME, 32, a.name, 0);
  mem.u8.set(entropy(a, o), C + A.CFG_ENTROPY);
  a.iops.forEach((role, i) => mem.setU8(C + A.CFG_IOP_TABLE + i * A.CFG_IOP_BYTES + A.CIOP_ROLE, role === 'disk' ? A.ROLE_DISK : A.ROLE_CHANNEL));
  a.media.forEach((m, i) => {
    const b = C + A.CFG_MEDIA_TABLE + i * A.CFG_MEDIUM_BYTES;
    const sectors = m.bytes / A.SECTOR_BYTES;
    mem.setU32(b + A.CMED_SECTORS_LO, sectors % 2 ** 32);
    mem.setU32(b + A.CMED_SECTORS_HI, Math.floor(sectors / 2 ** 32));
    mem.setU8(b + A.CMED_SCHEDULER, SCHEDULERS[m.scheduler]);
    mem.setU8(b + A.CMED_QUEUE_DEPTH, m.queueDepth);
    mem.setU32(b + A.CMED_DEADLINE_READ_US, Math.round(m.deadlineMs.read * 1000));
    mem.setU32(b + A.CMED_DEADLINE_WRITE_US, Math.round(m.deadlineMs.write * 1000));
    ascii(mem, b + A.CMED_NAME, 32, m.name, 0);
  });
  a.ports.forEach((p, i) => {
    const b = C + A.CFG_PORT_TABLE + i * A.CFG_PORT_BYTES;
    mem.setU8(b + A.CPORT_IOP, p.iop);
    mem.setU8(b + A.CPORT_KIND, p.transport === 'inproc' ? A.PORT_QUEUE : p.protocol === 'iscsi' ? A.PORT_ISCSI : p.protocol === 'nbd' ? A.PORT_NBD : A.PORT_STREAM);
    mem.setU8(b + A.CPORT_SESSIONS, p.sessions);
    mem.setU16(b + A.CPORT_ADDRESS, p.address);
    mem.setU32(b + A.CPORT_RX_BYTES, p.rxBytes);
    mem.setU32(b + A.CPORT_TX_BYTES, p.txBytes);
    mem.setU32(b + A.CPORT_QUEUE_ENTRIES, p.queueEntries);
    mem.setU32(b + A.CPORT_DATA_BYTES, p.dataBytes);
    mem.setU32(b + A.CPORT_IDLE_MS, p.idleTimeoutMs);
    ascii(mem, b + A.CPORT_NAME, 32, p.name, 0);
    if (p.protocol === 'iscsi') {
      const x = C + A.CFG_PORT_EXT_TABLE + i * A.CFG_PORT_EXT_BYTES;
      ascii(mem, x + A.CPX_TARGET_NAME, A.CPX_NAME_BYTES, p.targetName, 0);
      ascii(mem, x + A.CPX_HOST, 64, p.host, 0);
      ascii(mem, x + A.CPX_CHAP_USER, A.CPX_CHAP_BYTES, p.chap?.user ?? '', 0);
      ascii(mem, x + A.CPX_CHAP_SECRET, A.CPX_CHAP_BYTES, p.chap?.secret ?? '', 0);
      ascii(mem, x + A.CPX_MUTUAL_USER, A.CPX_CHAP_BYTES, p.chap?.targetUser ?? '', 0);
      ascii(mem, x + A.CPX_MUTUAL_SECRET, A.CPX_CHAP_BYTES, p.chap?.targetSecret ?? '', 0);
      mem.setU32(x + A.CPX_PING_MS, p.pingIntervalMs);
    }
  });
  if (a.library) writeLibrary(mem, a.library);
  writeLinkConfig(mem, a); // link queues and the linked nodes (docs/remote.md)
}

/** The library's devices: the changer at its LUN, each drive at the LUNs after it (docs/tape.md). */
function writeLibrary(mem: CommonMemory, l: LibrarySpec): void {
  const T = A.CONFIG_ADDR + A.CFG_TAPE;
  mem.setU32(T + A.CTP_DEVICES, 1 + l.drives.length);
  mem.setU16(T + A.CTP_SLOTS, l.slots);
  mem.setU16(T + A.CTP_IE, l.importExport);
  mem.setU32(T + A.CTP_MAX_BLOCK, l.maxBlockBytes);
  mem.setU8(T + A.CTP_DENSITY, l.density);
  for (let d = 0; d <= l.drives.length; d++) {
    const b = A.CONFIG_ADDR + A.CFG_TAPE_TABLE + d * A.CFG_TAPE_BYTES;
    mem.setU8(b + A.CTD_KIND, d === 0 ? A.TDK_CHANGER : A.TDK_DRIVE);
    mem.setU16(b + A.CTD_LUN, l.lun + d);
    mem.setU16(b + A.CTD_ELEMENT, d === 0 ? A.ELEM_TRANSPORT : A.ELEM_DRIVE_BASE + d - 1);
    ascii(mem, b + A.CTD_NAME, 32, d === 0 ? l.name : l.drives[d - 1].name, 0);
  }
}

/**
 * Seeds the firmware's PRNG (CHAP challenges): fresh random bytes in real-time mode; in
 * deterministic mode a function of the seed and the array's name, so a seed still names a run.
 */
function entropy(a: ArraySpec, o: ConfigOptions): Buffer {
  if (o.mode !== 'deterministic') return crypto.randomBytes(16);
  return crypto.createHash('sha256').update(`sanbox-entropy:${o.seed}:${a.name}`).digest().subarray(0, 16);
}

function ascii(mem: CommonMemory, addr: number, length: number, s: string, pad = 0x20): void {
  mem.u8.fill(pad, addr, addr + length);
  mem.u8.set(Buffer.from(s.slice(0, length), 'latin1'), addr);
}
