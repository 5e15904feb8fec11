// The controller image: every IOP of an array is an instance of this module over the array's
// common memory (docs/hal.md). The harness calls layout() once, boot() once per IOP, then only poll().
import {
  MAP_ADDR, MAP_STATE, MAP_ERROR, MAP_ERROR_DETAIL, MAPS_LAID_OUT, MAPS_BOOTED, MAPS_FAILED, ROLE_CHANNEL,
  ROLE_DISK, ERR_NONE, ERR_NOT_LAID_OUT, ERR_ROLE, ERR_NV_GEOMETRY, ERR_NV_VERSION, ERR_NV_CORRUPT, CFG_CACHE_SLOTS,
  STAT_POLLS, TRACE_BOOT, MAP_NV_BYTES, MAX_VOLUMES, MAX_PORTS, MAX_LUNS, CONFIG_ADDR, CFG_SERIAL, CFG_DEVICE_ID,
  CFG_NONCE, STAT_NV_DROPPED,
} from "./abi";
import { cfg32, iopCount, iopRole } from "./config";
import { setIdentity, setNow, clearWake, gRole, gIndex } from "./iop";
import { layout as planLayout, MAPX_BOOT_SCRATCH } from "./layout";
import { channelBoot, channelPoll } from "./channel";
import { diskBoot, diskPoll } from "./disk";
import {
  nvBase, nvPersistRange, nvId, NVK_NONE, nvKick, NVH_SLOTS, NVH_CLEAN, NVH_BOOTS, DESC_BYTES, DESC_STATE,
  DESC_DIRTY, DESC_POISON, DESC_CRC, DESC_USED, nvHeaderPick, nvHeaderFound, nvHeader, nvWriteDirectory, nvTableSame,
  nvTable, NVT_VOLUMES, NVT_LABELS, NVT_DESCRIPTORS, NVT_SECTOR_CRCS, NVT_DATA, NVT_OFFSET, NVT_SIZE, nvDataOffset,
  nvFormatHeader, nvHeaderPersist, descCopy, slotDataBase, sealed, blank, volumeEntry, lunMapEntry, sealLun,
  VOL_BYTES, VOL_CRC, LUN_RECORD_BYTES, NVT_INIT, NVH_VERSION, NV_VERSION, NVT_ACCESS, ACCESS_ENTRIES,
  ACCESS_RECORD_BYTES, ACCESS_CRC, accessEntry, NVT_PAIRS, NVT_RESERVATIONS, NVT_THIN, NVT_REMOTE, NVT_REMOTE_DIFF,
} from "./nv";
import { initReconcile, initRelocate } from "./initmap";
import { pairsBoot, pairsFormat } from "./pair/table";
import { remoteBoot, remoteNvFormat, remoteNvNarrow, remoteNvUpgrade } from "./remote/pair";
import { remoteDiffFormat } from "./remote/async";
import { crc32c } from "./comm/crc";
import { cacheReset, cacheRecover, cacheCheck, newerDescriptor } from "./cache";
import { mediaRebuild, volumeInUse } from "./volume";
import { reservationsBoot, reservationsFormat } from "./scsi/pr";
import { thinMapFormat } from "./thinmap";
import { thinBoot, thinRecover } from "./thin";
import { accessBoot } from "./comm/access";
import { statInc, statAdd } from "./stats";
import { trace } from "./trace";
import { log, LOG_INFO, LOG_WARN } from "./hal";

export function layout(): i32 { return planLayout(); }

export function boot(role: u32, index: u32): i32 {
  const state = load<u32>(MAP_ADDR + MAP_STATE);
  if (state != MAPS_LAID_OUT && state != MAPS_BOOTED) return <i32>ERR_NOT_LAID_OUT;
  if (index >= iopCount() || iopRole(index) != role) return <i32>ERR_ROLE;
  setIdentity(role, index);
  let recovered: u32 = 0;
  if (index == 0) {
    const r = bootShared();
    if (r < 0) {
      store<u32>(MAP_ADDR + MAP_STATE, MAPS_FAILED);
      store<u32>(MAP_ADDR + MAP_ERROR, <u32>-r);
      return -r;
    }
    recovered = <u32>r;
  }
  if (role == ROLE_CHANNEL) channelBoot(); else diskBoot();
  trace(TRACE_BOOT, role, index, recovered, 0);
  if (index == iopCount() - 1) store<u32>(MAP_ADDR + MAP_STATE, MAPS_BOOTED);
  return <i32>ERR_NONE;
}

export function poll(now: f64): i32 {
  setNow(now);
  clearWake();
  statInc(STAT_POLLS);
  return gRole == ROLE_DISK ? diskPoll() : channelPoll();
}

/**
 * The boot IOP formats a blank NV region, or recovers one (docs/hal.md, "Non-volatile memory"):
 * the header copy to trust, the table directory against this geometry, every record's CRC, then
 * the dirty cache slots back in the directory for the disk IOP to destage. Returns the dirty slots
 * recovered, or -ERR_* (MAP_ERROR_DETAIL says more).
 */
function bootShared(): i32 {
  const nv = nvBase();
  const slots = cfg32(CFG_CACHE_SLOTS);
  let recovered: u32 = 0;
  let initLost = false;
  let initMoved = false;
  if (!nvHeaderPick()) {
    const found = nvHeaderFound();
    if (found == 0xFFFF) return -<i32>ERR_NV_CORRUPT;
    if (found != 0) { detail(found); return -<i32>ERR_NV_VERSION; }
    format(slots);
  } else {
    const h = nvHeader();
    const want = load<u32>(MAP_ADDR + MAPX_BOOT_SCRATCH); // the directory this geometry lays out
    nvWriteDirectory(want, slots);
    for (let t: u32 = NVT_VOLUMES; t <= NVT_LABELS; t++) {
      if (!nvTableSame(h, want, t)) { detail(t); return -<i32>ERR_NV_CORRUPT; }
    }
    if (!nvTableSame(h, want, NVT_ACCESS)) { detail(NVT_ACCESS); return -<i32>ERR_NV_CORRUPT; }
    // An image from before version 6 has no reservation table: its place held the init map or the
    // cache tables, looked at (and moved) below before it is cleared. One elsewhere is damage.
    const reservationsLost = nvTable(h, NVT_RESERVATIONS) == 0;
    if (!reservationsLost && !nvTableSame(h, want, NVT_RESERVATIONS)) { detail(NVT_RESERVATIONS); return -<i32>ERR_NV_CORRUPT; }
    const thinLost = nvTable(h, NVT_THIN) == 0; // the same for the thin map (version 7; no thin volume before it)
    if (!thinLost && !nvTableSame(h, want, NVT_THIN)) { detail(NVT_THIN); return -<i32>ERR_NV_CORRUPT; }
    const remoteLost = nvTable(h, NVT_REMOTE) == 0; // and for the remote pair table (version 8; no remote pair before it)
    const remoteNarrow = remoteNvNarrow(nvTable(h, NVT_REMOTE)); // version 8's records of 128 bytes, widened below
    if (!remoteLost && !remoteNarrow && !nvTableSame(h, want, NVT_REMOTE)) { detail(NVT_REMOTE); return -<i32>ERR_NV_CORRUPT; }
    const diffLost = nvTable(h, NVT_REMOTE_DIFF) == 0; // and for the remote difference bitmaps (version 9; its place held the init map)
    if (!diffLost && !nvTableSame(h, want, NVT_REMOTE_DIFF)) { detail(NVT_REMOTE_DIFF); return -<i32>ERR_NV_CORRUPT; }
    checkTables();
    // An image from before pairs has no pair table: its place held other tables, now moved (it is
    // cleared once the old descriptors there have been looked at). Asked now: recovery reuses `want`.
    const pairsLost = !nvTableSame(h, want, NVT_PAIRS);
    let cacheSame = load<u32>(h + NVH_SLOTS) == slots && nvTableSame(h, want, NVT_DESCRIPTORS)
      && nvTableSame(h, want, NVT_SECTOR_CRCS) && nvTableSame(h, want, NVT_DATA);
    // Media added or removed: the same cache after an init map of another size. Its tables move
    // (dirty data too); a cache of another size must be clean, and is looked at before the init map
    // moves, since the map's new place may be its descriptors'.
    const shift = cacheSame ? 0 : cacheShift(h, want, slots);
    if (!cacheSame && shift == 0 && !oldCacheClean(h)) { detail(load<u32>(h + NVH_SLOTS)); return -<i32>ERR_NV_GEOMETRY; }
    if (shift > 0) moveCacheTables(h, want); // up first: the grown map's second copy goes where they were
    if (!nvTableSame(h, want, NVT_INIT)) {
      initMoved = initRelocate(nvTable(h, NVT_INIT), <usize>load<u32>(MAP_ADDR + MAP_NV_BYTES));
      initLost = !initMoved;
    }
    if (shift < 0) moveCacheTables(h, want); // down after: into where the shrunk map's second copy was
    if (shift != 0) cacheSame = true;
    if (cacheSame) {
      recovered = cacheRecover(load<u32>(MAP_ADDR + MAPX_BOOT_SCRATCH));
      if (ASC_OPTIMIZE_LEVEL == 0) cacheCheck();
      if (recovered > 0) log(LOG_INFO, "nv: dirty cache slots recovered", recovered, 0);
    } else {
      const old = load<u32>(h + NVH_SLOTS);
      resetCacheTables(slots);
      log(LOG_INFO, "nv: cache or media geometry changed, volume table kept (old slots, new slots)", old, slots);
    }
    if (pairsLost) pairsFormat();
    if (reservationsLost) reservationsFormat();
    if (thinLost) thinMapFormat(nvId(NVK_NONE, 0));
    if (remoteLost) remoteNvFormat();
    if (remoteNarrow) remoteNvUpgrade(); // after the init map left the grown table's place
    if (diffLost) remoteDiffFormat(!remoteLost); // after it too: the bitmaps' place was the init map's
    const version = load<u32>(h + NVH_VERSION);
    if (version != NV_VERSION) log(LOG_INFO, "nv: image upgraded (from version, to version)", version, NV_VERSION);
    store<u32>(h + NVH_VERSION, NV_VERSION);
    store<u32>(h + NVH_SLOTS, slots);
    nvWriteDirectory(h, slots);
  }
  const h = nvHeader();
  store<u64>(h + NVH_BOOTS, load<u64>(h + NVH_BOOTS) + 1);
  store<u32>(h + NVH_CLEAN, 0);
  nvHeaderPersist(nvId(NVK_NONE, 0));
  mediaRebuild();
  thinBoot(nvId(NVK_NONE, 0)); // thin volumes' chunks join the bitmaps (thin.ts)
  accessBoot(); // how far the access table's records reach: every command's check looks no further
  const pairs = pairsBoot();
  if (pairs > 0) log(LOG_INFO, "pair: pairs recovered; their copies go on from the bitmaps", pairs, 0);
  const remotes = remoteBoot();
  if (remotes > 0) log(LOG_INFO, "remote: remote pairs recovered, suspended until resumed (failed-over ones stay failed over)", remotes, 0);
  initReconcile(initLost, initMoved, nvId(NVK_NONE, 0));
  reservationsBoot(); // what APTPL did not ask to keep goes (a power loss to the initiators)
  const given = thinRecover(); // dirty data of unmapped thin chunks gets its chunk again
  if (given > 0) log(LOG_INFO, "thin: chunks taken again for dirty data recovered from NV (slots)", given, 0);
  if (initLost) log(LOG_WARN, "nv: the init map was not in the NV file: rebuilt from the volume table", 0, 0);
  nvKick();
  return <i32>recovered;
}

function detail(n: u32): void { store<u32>(MAP_ADDR + MAP_ERROR_DETAIL, n); }

/** A blank region: every table empty, both header copies written. */
function format(slots: u32): void {
  const nv = nvBase();
  const data = nvDataOffset(slots);
  memory.fill(nv, 0, data);
  nvFormatHeader(slots, arrayIdentity());
  cacheReset();
  nvPersistRange(nv, <u32>data, nvId(NVK_NONE, 0));
  log(LOG_INFO, "nv: formatted (slots)", slots, 0);
}

/** This NV image's identity, written into medium labels: the array's device ID, serial and the harness's nonce. */
function arrayIdentity(): u64 {
  const id = crc32c(CONFIG_ADDR + CFG_SERIAL, 20, crc32c(CONFIG_ADDR + CFG_DEVICE_ID, 16, 0));
  return (<u64>id << 32) | <u64>cfg32(CFG_NONCE);
}

/** Zeroes the descriptor and sector CRC tables (no dirty data in them) and persists them. */
function resetCacheTables(slots: u32): void {
  const first = descCopy(0, 0);
  const end = slotDataBase();
  memory.fill(first, 0, end - first);
  cacheReset();
  nvPersistRange(first, <u32>(end - first), nvId(NVK_NONE, 0));
}

/**
 * Version 5, the same cache, and the cache tables elsewhere (the init map before them changed size
 * with the media): +1 when they move up, -1 down, 0 otherwise, or when they cannot move whole (their
 * old place is not all in what was loaded: more media removed than the region's spare tail holds).
 */
function cacheShift(h: usize, want: usize, slots: u32): i32 {
  if (load<u32>(h + NVH_VERSION) < 5 || load<u32>(h + NVH_SLOTS) != slots) return 0;
  const loaded = <usize>load<u32>(MAP_ADDR + MAP_NV_BYTES);
  for (let id: u32 = NVT_DESCRIPTORS; id <= NVT_DATA; id++) {
    const a = nvTable(h, id);
    const b = nvTable(want, id);
    if (a == 0 || load<u32>(a + NVT_SIZE) != load<u32>(b + NVT_SIZE)) return 0;
    if (<usize>load<u32>(a + NVT_OFFSET) + <usize>load<u32>(a + NVT_SIZE) > loaded) return 0;
  }
  const from = load<u32>(nvTable(h, NVT_DESCRIPTORS) + NVT_OFFSET);
  const to = load<u32>(nvTable(want, NVT_DESCRIPTORS) + NVT_OFFSET);
  return to > from ? 1 : to < from ? -1 : 0;
}

/** Moves the descriptors, sector CRCs and slot data to this geometry's places, in the order that overlaps allow, and persists them. */
function moveCacheTables(h: usize, want: usize): void {
  const nv = nvBase();
  const up = load<u32>(nvTable(want, NVT_DESCRIPTORS) + NVT_OFFSET) > load<u32>(nvTable(h, NVT_DESCRIPTORS) + NVT_OFFSET);
  for (let i: u32 = 0; i < 3; i++) {
    const id = up ? NVT_DATA - i : NVT_DESCRIPTORS + i;
    const a = nvTable(h, id);
    memory.copy(nv + load<u32>(nvTable(want, id) + NVT_OFFSET), nv + load<u32>(a + NVT_OFFSET), load<u32>(a + NVT_SIZE));
  }
  const first = descCopy(0, 0);
  const end = slotDataBase() + <usize>load<u32>(nvTable(want, NVT_DATA) + NVT_SIZE);
  nvPersistRange(first, <u32>(end - first), nvId(NVK_NONE, 0));
  log(LOG_INFO, "nv: media changed: the cache tables moved with the init map (from, to)", load<u32>(nvTable(h, NVT_DESCRIPTORS) + NVT_OFFSET), load<u32>(nvTable(want, NVT_DESCRIPTORS) + NVT_OFFSET));
}

/** The image's descriptors (where its own directory says) hold no dirty or poisoned sector? */
function oldCacheClean(h: usize): bool {
  const t = nvTable(h, NVT_DESCRIPTORS);
  if (t == 0) return false;
  const offset = <usize>load<u32>(t + NVT_OFFSET);
  const size = <usize>load<u32>(t + NVT_SIZE);
  if (offset + size > <usize>load<u32>(MAP_ADDR + MAP_NV_BYTES)) return load<u32>(h + NVH_CLEAN) == 1;
  const nv = nvBase();
  // Each slot's newer whole copy: the older one of a slot destaged since still says dirty.
  for (let slot = nv + offset; slot < nv + offset + size; slot += 2 * DESC_BYTES) {
    const p = newerDescriptor(slot, slot + DESC_BYTES);
    if (p == 0) continue;
    if ((load<u64>(p + DESC_DIRTY) | load<u64>(p + DESC_DIRTY + 8) | load<u64>(p + DESC_POISON) | load<u64>(p + DESC_POISON + 8)) != 0) return false;
  }
  return true;
}

/**
 * Every volume entry and LUN record must carry its CRC: one that does not was torn by a crash
 * while it was written (its change was never acknowledged) and is dropped, and said so.
 */
function checkTables(): void {
  let dropped: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const e = volumeEntry(v);
    if (blank(e, VOL_BYTES) || sealed(e, VOL_CRC)) continue;
    log(LOG_WARN, "nv: a volume table entry failed its CRC and was dropped (volume)", v, 0);
    memory.fill(e, 0, VOL_BYTES);
    nvPersistRange(e, VOL_BYTES, nvId(NVK_NONE, 0));
    dropped++;
  }
  // A LUN may map only a volume the table holds: a DELETE VOLUME cut off between its entry and the
  // LUN map (or an entry dropped above) leaves records that would show a volume created later with
  // that number at LUNs no one mapped it to, to initiators that addressed the deleted one.
  for (let p: u32 = 0; p < MAX_PORTS; p++) {
    for (let l: u32 = 0; l < MAX_LUNS; l++) {
      const e = lunMapEntry(p, l);
      if (blank(e, LUN_RECORD_BYTES)) continue;
      const v = <u32>load<u16>(e);
      const torn = !sealed(e, 4);
      if (!torn && (v == 0 || (v - 1 < MAX_VOLUMES && volumeInUse(v - 1)))) continue;
      if (torn) log(LOG_WARN, "nv: a LUN map record failed its CRC and was dropped (port, LUN)", p, l);
      else log(LOG_WARN, "nv: a LUN mapped a volume the table does not hold and was unmapped (port, LUN)", p, l);
      memory.fill(e, 0, LUN_RECORD_BYTES);
      sealLun(p, l);
      nvPersistRange(e, LUN_RECORD_BYTES, nvId(NVK_NONE, 0));
      dropped++;
    }
  }
  for (let i: u32 = 0; i < ACCESS_ENTRIES; i++) {
    const e = accessEntry(i);
    if (blank(e, ACCESS_RECORD_BYTES) || sealed(e, ACCESS_CRC)) continue;
    log(LOG_WARN, "nv: an access list record failed its CRC and was dropped (record)", i, 0);
    memory.fill(e, 0, ACCESS_RECORD_BYTES);
    nvPersistRange(e, ACCESS_RECORD_BYTES, nvId(NVK_NONE, 0));
    dropped++;
  }
  if (dropped > 0) statAdd(STAT_NV_DROPPED, dropped);
}
