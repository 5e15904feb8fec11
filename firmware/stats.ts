// Per-IOP u64 counters (STAT_* in abi.ts), single writer: the IOP that owns the block.
import { STATS_BYTES } from "./abi";
import { gStats } from "./iop";

// @ts-ignore: decorator
@inline export function statAdd(index: u32, n: u64): void {
  const p = gStats + (<usize>index << 3);
  store<u64>(p, load<u64>(p) + n);
}

// @ts-ignore: decorator
@inline export function statInc(index: u32): void { statAdd(index, 1); }

/** The last u64 of the stats block holds this IOP's trace sequence number. */
export const TRACE_SEQ_SLOT: u32 = STATS_BYTES / 8 - 1;
/** The one before: the NV ring's tail when this IOP last rang its doorbell. */
export const NV_KICK_SLOT: u32 = STATS_BYTES / 8 - 2;
