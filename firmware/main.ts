// The controller image: every IOP of an array is an instance of this module over the array's
// common memory (docs/hal.md). The harness calls layout() once, boot() once per IOP, then only poll().
import {
  MAP_ADDR, MAP_STATE, MAP_ERROR, MAP_ERROR_DETAIL, MAPS_LAID_OUT, MAPS_BOOTED, MAPS_FAILED, ROLE_CHANNEL,
  ROLE_DISK, ERR_NONE, ERR_NOT_LAID_OUT, ERR_ROLE, ERR_NV_GEOMETRY, CFG_CACHE_SLOTS, STAT_POLLS, TRACE_BOOT,
} from "./abi";
import { cfg32, iopCount, iopRole } from "./config";
import { setIdentity, setNow, clearWake, gRole, gIndex } from "./iop";
import { layout as planLayout, MAPX_BOOT_SCRATCH } from "./layout";
import { channelBoot, channelPoll } from "./channel";
import { diskBoot, diskPoll } from "./disk";
import { nvBase, nvPersistRange, nvId, NVK_NONE, nvKick, NV_MAGIC, NV_VERSION, NVH_MAGIC, NVH_VERSION, NVH_SLOTS,
  NVH_CLEAN, NVH_BOOTS, DESC_OFFSET, DESC_BYTES, DESC_STATE, DESC_DIRTY, DESC_USED, NV_HEADER_BYTES } from "./nv";
import { cacheReset, cacheRecover } from "./cache";
import { mediaRebuild } from "./volume";
import { statInc } from "./stats";
import { trace } from "./trace";
import { log, LOG_INFO } from "./hal";

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
      store<u32>(MAP_ADDR + MAP_ERROR, ERR_NV_GEOMETRY);
      return <i32>ERR_NV_GEOMETRY;
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
 * The boot IOP formats a blank NV region, or recovers one: the volume table stays, dirty cache
 * slots go back in the directory for the disk IOP to destage. Returns the dirty slots recovered,
 * or -1 when the NV image holds dirty data for another cache size (MAP_ERROR_DETAIL: its size).
 */
function bootShared(): i32 {
  const nv = nvBase();
  const slots = cfg32(CFG_CACHE_SLOTS);
  let recovered: u32 = 0;
  if (load<u32>(nv + NVH_MAGIC) != NV_MAGIC || load<u32>(nv + NVH_VERSION) != NV_VERSION) {
    memory.fill(nv, 0, <usize>DESC_OFFSET + <usize>slots * DESC_BYTES);
    store<u32>(nv + NVH_MAGIC, NV_MAGIC);
    store<u32>(nv + NVH_VERSION, NV_VERSION);
    store<u32>(nv + NVH_SLOTS, slots);
    cacheReset();
    nvPersistRange(nv, DESC_OFFSET + slots * DESC_BYTES, nvId(NVK_NONE, 0));
    log(LOG_INFO, "nv: formatted", slots, 0);
  } else if (load<u32>(nv + NVH_SLOTS) != slots) {
    const old = load<u32>(nv + NVH_SLOTS);
    if (anyDirty(old)) { store<u32>(MAP_ADDR + MAP_ERROR_DETAIL, old); return -1; }
    memory.fill(nv + DESC_OFFSET, 0, <usize>slots * DESC_BYTES);
    store<u32>(nv + NVH_SLOTS, slots);
    cacheReset();
    nvPersistRange(nv + DESC_OFFSET, slots * DESC_BYTES, nvId(NVK_NONE, 0));
    log(LOG_INFO, "nv: cache resized, volume table kept", old, slots);
  } else {
    recovered = cacheRecover(load<u32>(MAP_ADDR + MAPX_BOOT_SCRATCH));
    if (recovered > 0) log(LOG_INFO, "nv: dirty cache slots recovered", recovered, 0);
  }
  store<u64>(nv + NVH_BOOTS, load<u64>(nv + NVH_BOOTS) + 1);
  store<u32>(nv + NVH_CLEAN, 0);
  nvPersistRange(nv, NV_HEADER_BYTES, nvId(NVK_NONE, 0));
  mediaRebuild();
  nvKick();
  return <i32>recovered;
}

/** Any dirty descriptor among the first `slots` (bounded by what the region holds)? */
function anyDirty(slots: u32): bool {
  const nv = nvBase();
  const limit = min<u32>(slots, 16384);
  for (let i: u32 = 0; i < limit; i++) {
    const p = nv + DESC_OFFSET + <usize>i * DESC_BYTES;
    if (load<u32>(p + DESC_STATE) == DESC_USED && (load<u64>(p + DESC_DIRTY) | load<u64>(p + DESC_DIRTY + 8)) != 0) return true;
  }
  return false;
}

