// The static memory map (docs/hal.md): checks the config block, sizes every region from it,
// grows the memory once, and formats the map header and every ring. Nothing is allocated after.
//
// plan() walks the regions in one fixed order twice: first to add up the size, then, after the
// memory has grown, to write the addresses and ring headers. One walk, so the two cannot differ.
import { xcopyLayout, xcopyBytes } from "./xcopy/table";
import {
  CONFIG_MAGIC, CFG_MAGIC, CFG_VERSION, ABI_VERSION, CFG_CACHE_SLOTS, CFG_CONTEXTS,
  CFG_BUFFER_CHUNKS, CFG_TRACE_ENTRIES, MAX_IOPS, MAX_MEDIA, MAX_PORTS, MAX_SESSIONS, REGIONS_ADDR, REGION_ALIGN,
  PAGE_BYTES, STATIC_LIMIT, MAP_ADDR, MAP_BYTES, MAP_MAGIC, MAP_MAGIC_VALUE, MAP_VERSION, MAP_TOTAL_BYTES,
  MAP_STATE, MAP_ERROR, MAP_ERROR_DETAIL, MAP_NV_ADDR, MAP_NV_BYTES, MAP_NV_SQ, MAP_TRACE_RING,
  MAP_IOP_TABLE, MAP_IOP_BYTES, MIOP_PRIVATE, MIOP_PRIVATE_BYTES, MIOP_NV_CQ, MIOP_TO_DISK, MIOP_FROM_DISK,
  MIOP_STATS, MAP_MEDIA_TABLE, MAP_MEDIUM_BYTES, MMED_SQ, MMED_CQ, MAP_PORT_TABLE, MAP_PORT_BYTES,
  MPORT_SESSIONS_ADDR, MPORT_SESSIONS, SESSION_BYTES, SES_RX, SES_TX, SES_SQ, SES_CQ, SES_DATA, SES_DATA_BYTES,
  CPORT_IOP, CPORT_KIND, CPORT_SESSIONS, CPORT_RX_BYTES, CPORT_TX_BYTES, CPORT_QUEUE_ENTRIES, CPORT_DATA_BYTES,
  PORT_STREAM, PORT_QUEUE, PORT_ISCSI, PORT_NBD, ROLE_CHANNEL, ROLE_DISK, STATS_BYTES, MSQ_BYTES, MCQ_BYTES, NSQ_BYTES, NCQ_BYTES,
  QSQ_BYTES, QCQ_BYTES, TRACE_BYTES, DB_NV, DB_MEDIUM_BASE, DB_TX_BASE, DB_CQ_BASE, DB_NONE, MAPS_LAID_OUT,
  MAPS_FAILED, ERR_NONE, ERR_CONFIG_MAGIC, ERR_CONFIG_VERSION, ERR_IOP_COUNT, ERR_MEDIA_COUNT, ERR_PORT_COUNT,
  ERR_CACHE_SLOTS, ERR_TAPE, ERR_MEMORY, ERR_STATIC, ERR_PORT, ERR_ROLE, CMED_SCHEDULER, CMED_QUEUE_DEPTH, SCHED_DEADLINE,
} from "./abi";
import { cfg32, cfgPort, cfgMedium, iopCount, iopRole, mediaCount, portCount, mediumSectors } from "./config";
import { ringInit, ringBytes } from "./ring";
import { remoteLayout, remoteStateBytes } from "./remote/pair";
import { rdArrayBytes, rdArrayLayout, rdArrayBind } from "./remote/rdlink";
import { standbyLayout, standbyBytes } from "./remote/standby";
import { PORT_LINK, LINK_RING_ENTRIES, LINK_ENTRY_BYTES } from "./abi";
import { alignUp } from "./util";
import { nvRegionBytes, nvLayout } from "./nv";
import { cacheDirBytes, cacheLayout } from "./cache";
import { mediumStateBytes, mediaLayout } from "./volume";
import { initLayout } from "./initmap";
import { thinLayout, thinStateBytes } from "./thinmap";
import { pairLayout, pairStateBytes } from "./pair/table";
import { channelPrivateBytes } from "./channel";
import { DISK_PRIVATE_BYTES } from "./disk";
import { MB_BYTES, MAILBOX_ENTRIES } from "./mailbox";
import { tapeConfigError, tapePlan } from "./tape/device";

const NV_SQ_ENTRIES: u32 = 1024;
const NV_CQ_ENTRIES: u32 = 1024;
const MEDIUM_RING_ENTRIES: u32 = 64;
const FROM_DISK_ENTRIES: u32 = 256;
/** Firmware-private map field: scratch for boot-time recovery (one u32 per cache slot). */
export const MAPX_BOOT_SCRATCH: u32 = 68;

export function layout(): i32 {
  const e = checkConfig();
  if (e != ERR_NONE) return failed(e, load<u32>(MAP_ADDR + MAP_ERROR_DETAIL));
  const total = plan(false);
  const have = <usize>memory.size() * PAGE_BYTES;
  if (total > have) {
    const pages = <i32>((total - have + PAGE_BYTES - 1) / PAGE_BYTES);
    if (memory.grow(pages) < 0) return failed(ERR_MEMORY, <u32>(total / PAGE_BYTES));
  }
  memory.fill(MAP_ADDR, 0, MAP_BYTES);
  plan(true);
  store<u32>(MAP_ADDR + MAP_MAGIC, MAP_MAGIC_VALUE);
  store<u32>(MAP_ADDR + MAP_VERSION, ABI_VERSION);
  store<u32>(MAP_ADDR + MAP_TOTAL_BYTES, <u32>total);
  store<u32>(MAP_ADDR + MAP_STATE, MAPS_LAID_OUT);
  return ERR_NONE;
}

function failed(e: u32, detail: u32): i32 {
  store<u32>(MAP_ADDR + MAP_STATE, MAPS_FAILED);
  store<u32>(MAP_ADDR + MAP_ERROR, e);
  store<u32>(MAP_ADDR + MAP_ERROR_DETAIL, detail);
  return <i32>e;
}

function detail(n: u32): void { store<u32>(MAP_ADDR + MAP_ERROR_DETAIL, n); }

function checkConfig(): u32 {
  if (__heap_base > STATIC_LIMIT) return ERR_STATIC;
  if (cfg32(CFG_MAGIC) != CONFIG_MAGIC) return ERR_CONFIG_MAGIC;
  if (cfg32(CFG_VERSION) != ABI_VERSION) return ERR_CONFIG_VERSION;
  if (iopCount() < 2 || iopCount() > MAX_IOPS) return ERR_IOP_COUNT;
  let disks: u32 = 0;
  for (let i: u32 = 0; i < iopCount(); i++) {
    const role = iopRole(i);
    if (role == ROLE_DISK) disks++;
    else if (role != ROLE_CHANNEL) { detail(i); return ERR_ROLE; }
  }
  if (disks != 1) return ERR_ROLE;
  if (mediaCount() < 1 || mediaCount() > MAX_MEDIA) return ERR_MEDIA_COUNT;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    if (mediumSectors(m) < 2048 || load<u8>(cfgMedium(m) + CMED_SCHEDULER) > <u8>SCHED_DEADLINE
      || load<u8>(cfgMedium(m) + CMED_QUEUE_DEPTH) > <u8>MEDIUM_RING_ENTRIES) { detail(m); return ERR_MEDIA_COUNT; }
  }
  if (portCount() < 1 || portCount() > MAX_PORTS) return ERR_PORT_COUNT;
  for (let p: u32 = 0; p < portCount(); p++) {
    if (!portValid(p)) { detail(p); return ERR_PORT; }
  }
  const slots = cfg32(CFG_CACHE_SLOTS);
  if (slots < 16 || slots > 16384) return ERR_CACHE_SLOTS;
  const contexts = cfg32(CFG_CONTEXTS);
  const chunks = cfg32(CFG_BUFFER_CHUNKS);
  const trace = cfg32(CFG_TRACE_ENTRIES);
  if (contexts < 1 || contexts > 4096 || chunks < 4 || chunks > 64 || !pow2(trace)) return ERR_IOP_COUNT;
  const tape = tapeConfigError();
  if (tape != 0) { detail(tape); return ERR_TAPE; }
  return ERR_NONE;
}

function portValid(p: u32): bool {
  const c = cfgPort(p);
  const iop = <u32>load<u8>(c + CPORT_IOP);
  const kind = <u32>load<u8>(c + CPORT_KIND);
  const sessions = <u32>load<u8>(c + CPORT_SESSIONS);
  if (iop >= iopCount() || iopRole(iop) != ROLE_CHANNEL) return false;
  if (sessions < 1 || sessions > MAX_SESSIONS) return false;
  if (kind == PORT_STREAM) return pow2(load<u32>(c + CPORT_RX_BYTES)) && pow2(load<u32>(c + CPORT_TX_BYTES))
    && load<u32>(c + CPORT_RX_BYTES) >= 4096 && load<u32>(c + CPORT_TX_BYTES) >= 8192;
  // iSCSI: a PDU of our MaxRecvDataSegmentLength (half the rx ring) must fit, and any answer must fit the tx ring.
  if (kind == PORT_ISCSI) return pow2(load<u32>(c + CPORT_RX_BYTES)) && pow2(load<u32>(c + CPORT_TX_BYTES))
    && load<u32>(c + CPORT_RX_BYTES) >= 65536 && load<u32>(c + CPORT_TX_BYTES) >= load<u32>(c + CPORT_RX_BYTES);
  // NBD: an option of 4 KiB and its header must fit the rx ring whole.
  if (kind == PORT_NBD) return pow2(load<u32>(c + CPORT_RX_BYTES)) && pow2(load<u32>(c + CPORT_TX_BYTES))
    && load<u32>(c + CPORT_RX_BYTES) >= 16384 && load<u32>(c + CPORT_TX_BYTES) >= 8192;
  if (kind == PORT_QUEUE) return pow2(load<u32>(c + CPORT_QUEUE_ENTRIES)) && load<u32>(c + CPORT_DATA_BYTES) > 0;
  if (kind == PORT_LINK) return sessions == 1; // a link queue: one session of entry rings (docs/remote.md)
  return false;
}

function pow2(n: u32): bool { return n != 0 && (n & (n - 1)) == 0; }

// ---- The walk ---------------------------------------------------------------------------------

/** Walks the regions; with `write`, records them and formats the rings. Returns the end address. */
function plan(write: bool): usize {
  let at: usize = REGIONS_ADDR;
  const slots = cfg32(CFG_CACHE_SLOTS);
  // Non-volatile region: volume table, LUN map, slot descriptors, slot data.
  const nvBytes = nvRegionBytes(slots);
  if (write) { store<u32>(MAP_ADDR + MAP_NV_ADDR, <u32>at); store<u32>(MAP_ADDR + MAP_NV_BYTES, <u32>nvBytes); nvLayout(at, slots); }
  at = alignUp(at + nvBytes, REGION_ALIGN);
  // Volatile shared structures.
  if (write) cacheLayout(at, slots);
  at = alignUp(at + cacheDirBytes(slots), REGION_ALIGN);
  if (write) { mediaLayout(at); initLayout(); }
  at = alignUp(at + mediumStateBytes(), REGION_ALIGN);
  if (write) thinLayout(at); // the thin map's volatile state (thinmap.ts)
  at = alignUp(at + thinStateBytes(), REGION_ALIGN);
  if (write) pairLayout(at);
  at = alignUp(at + pairStateBytes(), REGION_ALIGN);
  if (write) xcopyLayout(at); // the copy manager's table and backup data storage areas (xcopy/)
  at = alignUp(at + xcopyBytes(), REGION_ALIGN);
  if (write) { remoteLayout(at); standbyLayout(); } // remote pairs (remote/pair.ts), the standby units after them (remote/standby.ts)
  at = alignUp(at + remoteStateBytes() + standbyBytes(), REGION_ALIGN);
  if (write) store<u32>(MAP_ADDR + MAPX_BOOT_SCRATCH, <u32>at);
  at = alignUp(at + max<usize>(<usize>slots * 4, 4096), REGION_ALIGN); // also holds a header's directory at boot
  at = ring(write, at, MAP_ADDR + MAP_NV_SQ, NV_SQ_ENTRIES, NSQ_BYTES, DB_NV);
  at = ring(write, at, MAP_ADDR + MAP_TRACE_RING, cfg32(CFG_TRACE_ENTRIES), TRACE_BYTES, DB_NONE);
  for (let i: u32 = 0; i < iopCount(); i++) at = planIop(write, at, i);
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const e = MAP_ADDR + MAP_MEDIA_TABLE + m * MAP_MEDIUM_BYTES;
    at = ring(write, at, e + MMED_SQ, MEDIUM_RING_ENTRIES, MSQ_BYTES, DB_MEDIUM_BASE + m);
    at = ring(write, at, e + MMED_CQ, MEDIUM_RING_ENTRIES, MCQ_BYTES, DB_NONE);
  }
  for (let p: u32 = 0; p < portCount(); p++) at = planPort(write, at, p);
  if (write) rdArrayBind(iopCount()); // the redundancy units' links are the link ports' rings (remote/rdlink.ts)
  at = tapePlan(write, at);
  return at;
}

function planIop(write: bool, at: usize, i: u32): usize {
  const e = MAP_ADDR + MAP_IOP_TABLE + i * MAP_IOP_BYTES;
  const channel = iopRole(i) == ROLE_CHANNEL;
  const bytes: usize = channel ? channelPrivateBytes() : <usize>DISK_PRIVATE_BYTES;
  if (write) { store<u32>(e + MIOP_PRIVATE, <u32>at); store<u32>(e + MIOP_PRIVATE_BYTES, <u32>bytes); }
  at = alignUp(at + bytes, REGION_ALIGN);
  if (write) { store<u32>(e + MIOP_STATS, <u32>at); memory.fill(at, 0, STATS_BYTES); }
  at = alignUp(at + STATS_BYTES, REGION_ALIGN);
  at = ring(write, at, e + MIOP_NV_CQ, NV_CQ_ENTRIES, NCQ_BYTES, DB_NONE);
  if (channel) {
    at = ring(write, at, e + MIOP_TO_DISK, MAILBOX_ENTRIES, MB_BYTES, DB_NONE);
    at = ring(write, at, e + MIOP_FROM_DISK, FROM_DISK_ENTRIES, MB_BYTES, DB_NONE);
    if (write) rdArrayLayout(at, i); // its redundancy unit, when it ends a link (remote/rdlink.ts)
    at = alignUp(at + rdArrayBytes(i), REGION_ALIGN);
  }
  return at;
}

function planPort(write: bool, at: usize, p: u32): usize {
  const c = cfgPort(p);
  const e = MAP_ADDR + MAP_PORT_TABLE + p * MAP_PORT_BYTES;
  const sessions = <u32>load<u8>(c + CPORT_SESSIONS);
  const descs = at;
  if (write) {
    store<u32>(e + MPORT_SESSIONS_ADDR, <u32>descs);
    store<u32>(e + MPORT_SESSIONS, sessions);
    memory.fill(descs, 0, <usize>sessions * SESSION_BYTES);
  }
  at = alignUp(at + <usize>sessions * SESSION_BYTES, REGION_ALIGN);
  const stream = <u32>load<u8>(c + CPORT_KIND) != PORT_QUEUE; // framed and iSCSI: byte rings
  for (let s: u32 = 0; s < sessions; s++) {
    const d = descs + <usize>s * SESSION_BYTES;
    const db = p * MAX_SESSIONS + s;
    if (<u32>load<u8>(c + CPORT_KIND) == PORT_LINK) { // packets: entry rings (comm/link.ts)
      at = ring(write, at, d + SES_RX, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, DB_NONE);
      at = ring(write, at, d + SES_TX, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, DB_TX_BASE + db);
    } else if (stream) {
      at = ring(write, at, d + SES_RX, load<u32>(c + CPORT_RX_BYTES), 1, DB_NONE);
      at = ring(write, at, d + SES_TX, load<u32>(c + CPORT_TX_BYTES), 1, DB_TX_BASE + db);
    } else {
      const n = load<u32>(c + CPORT_QUEUE_ENTRIES);
      at = ring(write, at, d + SES_SQ, n, QSQ_BYTES, DB_NONE);
      at = ring(write, at, d + SES_CQ, n, QCQ_BYTES, DB_CQ_BASE + db);
      const bytes = load<u32>(c + CPORT_DATA_BYTES);
      if (write) { store<u32>(d + SES_DATA, <u32>at); store<u32>(d + SES_DATA_BYTES, bytes); }
      at = alignUp(at + <usize>bytes, REGION_ALIGN);
    }
  }
  return at;
}

/** Places a ring at `at`, records its address at `field`, and formats it when writing. */
function ring(write: bool, at: usize, field: usize, capacity: u32, entryBytes: u32, doorbellId: u32): usize {
  if (write) { store<u32>(field, <u32>at); ringInit(at, capacity, entryBytes, doorbellId); }
  return alignUp(at + ringBytes(capacity, entryBytes), REGION_ALIGN);
}

