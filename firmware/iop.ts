// This instance's identity, set once at boot: which IOP it is and where its areas are.
// These globals are the IOP's registers; all working state lives in common memory, so a
// restarted instance over the same memory is the same IOP.
import { MAP_ADDR, MAP_IOP_TABLE, MAP_IOP_BYTES, MIOP_STATS, MIOP_PRIVATE, MIOP_NV_CQ, MIOP_WAKE_AT_NS } from "./abi";

export let gRole: u32 = 0;
export let gIndex: u32 = 0;
export let gPrivate: usize = 0;
export let gStats: usize = 0;
export let gNvCq: usize = 0;
/** The time of the poll in progress, nanoseconds. */
export let gNow: f64 = 0;

export function iopEntry(i: u32): usize { return MAP_ADDR + MAP_IOP_TABLE + i * MAP_IOP_BYTES; }

export function setIdentity(role: u32, index: u32): void {
  gRole = role;
  gIndex = index;
  const e = iopEntry(index);
  gPrivate = load<u32>(e + MIOP_PRIVATE);
  gStats = load<u32>(e + MIOP_STATS);
  gNvCq = load<u32>(e + MIOP_NV_CQ);
}

export function setNow(now: f64): void { gNow = now; }

/** Asks the harness to poll this IOP again at `atNs` even if nothing arrives (earliest wins). */
export function wakeAt(atNs: f64): void {
  const p = iopEntry(gIndex) + MIOP_WAKE_AT_NS;
  const current = load<f64>(p);
  if (current == 0 || atNs < current) store<f64>(p, atNs);
}

/** Called at the start of each poll: timers are re-armed by whoever still needs them. */
export function clearWake(): void { store<f64>(iopEntry(gIndex) + MIOP_WAKE_AT_NS, 0); }
