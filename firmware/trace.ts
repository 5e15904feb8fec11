// Trace records for the harness (TR_* in abi.ts). A full ring costs a counted drop, never a wait.
import {
  MAP_ADDR, MAP_TRACE_RING, TR_TYPE, TR_IOP, TR_SEQ, TR_TIME_NS, TR_A, TR_B, TR_C, TR_D, STAT_TRACE_DROPS,
} from "./abi";
import { ringReserve, ringPublish } from "./ring";
import { gIndex, gNow, gStats } from "./iop";
import { statInc, TRACE_SEQ_SLOT } from "./stats";

export function trace(type: u32, a: u32, b: u32, c: u32, d: u32): void {
  const seqp = gStats + (<usize>TRACE_SEQ_SLOT << 3);
  const seq = load<u64>(seqp);
  store<u64>(seqp, seq + 1);
  if (!traceInto(<usize>load<u32>(MAP_ADDR + MAP_TRACE_RING), gIndex, <u32>seq, gNow, type, a, b, c, d)) statInc(STAT_TRACE_DROPS);
}

/** One TR_* record into trace ring r (the relay's image has a ring of its own); false when the ring is full. */
export function traceInto(r: usize, iop: u32, seq: u32, now: f64, type: u32, a: u32, b: u32, c: u32, d: u32): bool {
  const e = ringReserve(r);
  if (e == 0) return false;
  store<u16>(e + TR_TYPE, <u16>type);
  store<u8>(e + TR_IOP, <u8>iop);
  store<u32>(e + TR_SEQ, seq);
  store<f64>(e + TR_TIME_NS, now);
  store<u32>(e + TR_A, a);
  store<u32>(e + TR_B, b);
  store<u32>(e + TR_C, c);
  store<u32>(e + TR_D, d);
  ringPublish(r, 1);
  return true;
}
