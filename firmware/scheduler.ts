// The IO scheduler of document 003 ([0063]-[0065]): the processing sequencer registers a request
// with its type, an ID that identifies it, the medium, the extent on the medium and the buffer
// area; the scheduler keeps a queue per medium, picks the next request by the medium's policy
// whenever the medium can take one, and matches completions by ID.
//
// Policies (per medium, from the topology):
//   FIFO      registration order ([0064]: "the sequence of registration");
//   SSTF      least head movement from the current position ([0064]);
//   C-LOOK    ascending positions from the head, then back to the lowest;
//   DEADLINE  C-LOOK, except that a request past its deadline goes first, oldest first.
// The head position is where the last dispatched request ended.
//
// Requests live in a fixed pool in the disk IOP's private area; a full pool refuses new
// registrations (the caller retries on a later poll), it never grows.
import {
  MSQ_OPCODE, MSQ_FLAGS, MSQ_ID, MSQ_LBA_LO, MSQ_LBA_HI, MSQ_SECTORS, MSQ_ADDR, MAP_ADDR, MAP_MEDIA_TABLE,
  MAP_MEDIUM_BYTES, MMED_SQ, MAX_MEDIA, SCHED_FIFO, SCHED_SSTF, SCHED_CLOOK, SCHED_DEADLINE,
  CMED_SCHEDULER, CMED_QUEUE_DEPTH, CMED_DEADLINE_READ_US, CMED_DEADLINE_WRITE_US, MOP_READ, MOP_FLUSH,
} from "./abi";
import { mediaCount, cfgMedium } from "./config";
import { ringReserve, ringPublish, ringRing } from "./ring";
import { MS_REGISTERED, mediumState } from "./volume";

export const REQ_COUNT: u32 = 2048;
export const REQ_BYTES: u32 = 64;
const RQ_STATE: u32 = 0; // u8: RQS_*
const RQ_TYPE: u32 = 1; // u8: MOP_*
const RQ_MEDIUM: u32 = 2; // u16
const RQ_ID: u32 = 4; // u32: index | generation << 16
const RQ_LBA: u32 = 8; // u64: first sector on the medium
const RQ_SECTORS: u32 = 16; // u32
const RQ_ADDR: u32 = 20; // u32: buffer area in common memory
const RQ_ORIGIN: u32 = 24; // u32: what the completion means to the caller
const RQ_ARG: u32 = 28; // u32: the caller's argument (a cache slot)
const RQ_ARG2: u32 = 32; // u32: the caller's second argument (first sector << 16 | count)
const RQ_REGISTERED_NS: u32 = 40; // f64
const RQ_DEADLINE_NS: u32 = 48; // f64
const RQ_NEXT: u32 = 56; // u32: index + 1 of the next request in the medium queue
const RQ_GEN: u32 = 60; // u16
const RQ_FLAGS: u32 = 62; // u8

const RQS_FREE: u32 = 0;
const RQS_QUEUED: u32 = 1;
const RQS_SUBMITTED: u32 = 2;

// Per-medium queue.
const MQ_BYTES: u32 = 32;
const MQ_HEAD: u32 = 0; // u32: index + 1
const MQ_COUNT: u32 = 4;
const MQ_INFLIGHT: u32 = 8;
const MQ_TAIL: u32 = 12; // u32: index + 1 of the last queued request
const MQ_POSITION: u32 = 16; // u64: sector where the head is

// Scheduler area: free list head, then requests, then queues.
const SA_FREE: u32 = 0; // u32: index + 1
const SA_REQS: u32 = 64;
const SA_QUEUES: u32 = SA_REQS + REQ_COUNT * REQ_BYTES;
export const SCHED_BYTES: u32 = SA_QUEUES + MAX_MEDIA * MQ_BYTES;

// @ts-ignore: decorator
@inline function req(sa: usize, i: u32): usize { return sa + SA_REQS + <usize>i * REQ_BYTES; }
// @ts-ignore: decorator
@inline function queue(sa: usize, m: u32): usize { return sa + SA_QUEUES + <usize>m * MQ_BYTES; }

export function schedInit(sa: usize): void {
  memory.fill(sa, 0, SCHED_BYTES);
  for (let i: u32 = 0; i < REQ_COUNT; i++) store<u32>(req(sa, i) + RQ_NEXT, i + 2 <= REQ_COUNT ? i + 2 : 0);
  store<u32>(sa + SA_FREE, 1);
}

/**
 * Registers a request (type, medium, extent, buffer) and returns its ID, or 0 when the pool is full.
 * `origin`, `arg` and `arg2` come back with the completion.
 */
export function schedRegister(
  sa: usize, type: u32, medium: u32, lba: u64, sectors: u32, addr: usize,
  origin: u32, arg: u32, arg2: u32, nowNs: f64,
): u32 {
  const free = load<u32>(sa + SA_FREE);
  if (free == 0) return 0;
  const i = free - 1;
  const r = req(sa, i);
  store<u32>(sa + SA_FREE, load<u32>(r + RQ_NEXT));
  const gen = (<u32>load<u16>(r + RQ_GEN) + 1) & 0xFFFF;
  store<u16>(r + RQ_GEN, <u16>gen);
  store<u8>(r + RQ_STATE, <u8>RQS_QUEUED);
  store<u8>(r + RQ_TYPE, <u8>type);
  store<u16>(r + RQ_MEDIUM, <u16>medium);
  store<u32>(r + RQ_ID, i | (gen << 16));
  store<u64>(r + RQ_LBA, lba);
  store<u32>(r + RQ_SECTORS, sectors);
  store<u32>(r + RQ_ADDR, <u32>addr);
  store<u32>(r + RQ_ORIGIN, origin);
  store<u32>(r + RQ_ARG, arg);
  store<u32>(r + RQ_ARG2, arg2);
  store<f64>(r + RQ_REGISTERED_NS, nowNs);
  store<f64>(r + RQ_DEADLINE_NS, nowNs + deadlineUs(medium, type) * 1000.0);
  store<u32>(r + RQ_NEXT, 0);
  appendToQueue(sa, medium, i);
  const ms = mediumState(medium);
  store<u32>(ms + MS_REGISTERED, load<u32>(ms + MS_REGISTERED) + 1);
  return i | (gen << 16);
}

function deadlineUs(medium: u32, type: u32): f64 {
  const c = cfgMedium(medium);
  return <f64>load<u32>(c + (type == MOP_READ ? CMED_DEADLINE_READ_US : CMED_DEADLINE_WRITE_US));
}

function appendToQueue(sa: usize, medium: u32, i: u32): void {
  const q = queue(sa, medium);
  const tail = load<u32>(q + MQ_TAIL);
  if (tail == 0) store<u32>(q + MQ_HEAD, i + 1); else store<u32>(req(sa, tail - 1) + RQ_NEXT, i + 1);
  store<u32>(q + MQ_TAIL, i + 1);
  store<u32>(q + MQ_COUNT, load<u32>(q + MQ_COUNT) + 1);
}

/** Requests queued (not yet submitted) for a medium. */
export function schedQueued(sa: usize, medium: u32): u32 { return load<u32>(queue(sa, medium) + MQ_COUNT); }
export function schedInflight(sa: usize, medium: u32): u32 { return load<u32>(queue(sa, medium) + MQ_INFLIGHT); }
export function schedPoolFree(sa: usize): bool { return load<u32>(sa + SA_FREE) != 0; }

/** Submits queued requests to every medium that has room, by policy. Returns how many. */
export function schedDispatch(sa: usize, nowNs: f64): u32 {
  let submitted: u32 = 0;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const q = queue(sa, m);
    const depth = max<u32>(1, <u32>load<u8>(cfgMedium(m) + CMED_QUEUE_DEPTH));
    let n: u32 = 0;
    while (load<u32>(q + MQ_COUNT) > 0 && load<u32>(q + MQ_INFLIGHT) < depth) {
      const i = selectNext(sa, m, nowNs);
      if (!submit(sa, m, i)) break;
      n++;
    }
    if (n > 0) { ringRing(mediumSq(m)); submitted += n; }
  }
  return submitted;
}

// @ts-ignore: decorator
@inline function mediumSq(m: u32): usize { return load<u32>(MAP_ADDR + MAP_MEDIA_TABLE + m * MAP_MEDIUM_BYTES + MMED_SQ); }

/** The index of the request the medium's policy picks next (the queue is not empty). */
export function selectNext(sa: usize, m: u32, nowNs: f64): u32 {
  const q = queue(sa, m);
  const first = load<u32>(q + MQ_HEAD) - 1;
  const policy = <u32>load<u8>(cfgMedium(m) + CMED_SCHEDULER);
  if (policy == SCHED_FIFO) return first;
  const pos = load<u64>(q + MQ_POSITION);
  if (policy == SCHED_SSTF) return nearest(sa, first, pos);
  if (policy == SCHED_DEADLINE) {
    const late = oldestExpired(sa, first, nowNs);
    if (late >= 0) return <u32>late;
  }
  return circularLook(sa, first, pos);
}

function nearest(sa: usize, first: u32, pos: u64): u32 {
  let best = first;
  let bestDistance = u64.MAX_VALUE;
  let i = first + 1;
  while (i != 0) {
    const lba = load<u64>(req(sa, i - 1) + RQ_LBA);
    const distance = lba >= pos ? lba - pos : pos - lba;
    if (distance < bestDistance) { bestDistance = distance; best = i - 1; }
    i = load<u32>(req(sa, i - 1) + RQ_NEXT);
  }
  return best;
}

/** Lowest position at or after the head; if none, the lowest of all (the sweep starts over). */
function circularLook(sa: usize, first: u32, pos: u64): u32 {
  let ahead: i32 = -1;
  let aheadLba = u64.MAX_VALUE;
  let lowest = first;
  let lowestLba = u64.MAX_VALUE;
  let i = first + 1;
  while (i != 0) {
    const lba = load<u64>(req(sa, i - 1) + RQ_LBA);
    if (lba >= pos && lba < aheadLba) { aheadLba = lba; ahead = <i32>(i - 1); }
    if (lba < lowestLba) { lowestLba = lba; lowest = i - 1; }
    i = load<u32>(req(sa, i - 1) + RQ_NEXT);
  }
  return ahead >= 0 ? <u32>ahead : lowest;
}

/** Queue order is registration order, so the first expired request found is the oldest. */
function oldestExpired(sa: usize, first: u32, nowNs: f64): i32 {
  let i = first + 1;
  while (i != 0) {
    const r = req(sa, i - 1);
    if (load<f64>(r + RQ_DEADLINE_NS) <= nowNs) return <i32>(i - 1);
    i = load<u32>(r + RQ_NEXT);
  }
  return -1;
}

function submit(sa: usize, m: u32, i: u32): bool {
  const e = ringReserve(mediumSq(m));
  if (e == 0) return false;
  unlink(sa, m, i);
  const r = req(sa, i);
  const lba = load<u64>(r + RQ_LBA);
  store<u8>(e + MSQ_OPCODE, load<u8>(r + RQ_TYPE));
  store<u8>(e + MSQ_FLAGS, load<u8>(r + RQ_FLAGS));
  store<u32>(e + MSQ_ID, load<u32>(r + RQ_ID));
  store<u32>(e + MSQ_LBA_LO, <u32>lba);
  store<u32>(e + MSQ_LBA_HI, <u32>(lba >> 32));
  store<u32>(e + MSQ_SECTORS, load<u32>(r + RQ_SECTORS));
  store<u32>(e + MSQ_ADDR, load<u32>(r + RQ_ADDR));
  ringPublish(mediumSq(m), 1);
  store<u8>(r + RQ_STATE, <u8>RQS_SUBMITTED);
  const q = queue(sa, m);
  store<u32>(q + MQ_INFLIGHT, load<u32>(q + MQ_INFLIGHT) + 1);
  if (<u32>load<u8>(r + RQ_TYPE) != MOP_FLUSH) store<u64>(q + MQ_POSITION, lba + <u64>load<u32>(r + RQ_SECTORS));
  return true;
}

function unlink(sa: usize, m: u32, i: u32): void {
  const q = queue(sa, m);
  let p = q + MQ_HEAD;
  let prev: u32 = 0;
  while (load<u32>(p) != i + 1) { prev = load<u32>(p); p = req(sa, prev - 1) + RQ_NEXT; }
  store<u32>(p, load<u32>(req(sa, i) + RQ_NEXT));
  if (load<u32>(q + MQ_TAIL) == i + 1) store<u32>(q + MQ_TAIL, prev);
  store<u32>(req(sa, i) + RQ_NEXT, 0);
  store<u32>(q + MQ_COUNT, load<u32>(q + MQ_COUNT) - 1);
}

/**
 * Matches a completion to its request by ID. Returns the request index, or -1 for an ID that is
 * not in flight (a stale or corrupt completion: counted and ignored by the caller).
 */
export function schedMatch(sa: usize, id: u32): i32 {
  const i = id & 0xFFFF;
  if (i >= REQ_COUNT) return -1;
  const r = req(sa, i);
  if (load<u32>(r + RQ_ID) != id || load<u8>(r + RQ_STATE) != <u8>RQS_SUBMITTED) return -1;
  return <i32>i;
}

/** Retires a completed request; its fields stay readable until the next registration. */
export function schedRetire(sa: usize, i: u32): void {
  const r = req(sa, i);
  const m = <u32>load<u16>(r + RQ_MEDIUM);
  const q = queue(sa, m);
  store<u32>(q + MQ_INFLIGHT, load<u32>(q + MQ_INFLIGHT) - 1);
  store<u8>(r + RQ_STATE, <u8>RQS_FREE);
  store<u32>(r + RQ_NEXT, load<u32>(sa + SA_FREE));
  store<u32>(sa + SA_FREE, i + 1);
  const ms = mediumState(m);
  store<u32>(ms + MS_REGISTERED, load<u32>(ms + MS_REGISTERED) - 1);
}

export function reqOrigin(sa: usize, i: u32): u32 { return load<u32>(req(sa, i) + RQ_ORIGIN); }
export function reqArg(sa: usize, i: u32): u32 { return load<u32>(req(sa, i) + RQ_ARG); }
export function reqArg2(sa: usize, i: u32): u32 { return load<u32>(req(sa, i) + RQ_ARG2); }
export function reqLba(sa: usize, i: u32): u64 { return load<u64>(req(sa, i) + RQ_LBA); }
export function reqSectors(sa: usize, i: u32): u32 { return load<u32>(req(sa, i) + RQ_SECTORS); }
export function reqMedium(sa: usize, i: u32): u32 { return load<u16>(req(sa, i) + RQ_MEDIUM); }
export function reqType(sa: usize, i: u32): u32 { return load<u8>(req(sa, i) + RQ_TYPE); }
export function reqLatencyNs(sa: usize, i: u32, nowNs: f64): f64 { return nowNs - load<f64>(req(sa, i) + RQ_REGISTERED_NS); }
