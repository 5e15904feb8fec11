// The relaying device (document 003, Fig. 3): communication unit 150 (the link rings), relaying
// processor 151 (this program) and buffer memory 152. An image of its own (build/relay.wasm): a
// relay has no medium, no cache and no host, so nothing of the array's image is needed but the
// link code (remote/packet.ts). The harness calls layout() once, then poll(now).
//
// One job per command in flight (a WRITE from upstream), stepped from poll:
//   store and forward (Fig. 5): S120 buffer -> S121 READY up -> S122 WRITE down -> S123-S125 DATA
//     into the buffer -> S126 RECEIVED up (the origin counts the block done) -> S127 READY from
//     down -> S128 DATA down -> S129 RECEIVED from down -> FORWARDED up; buffer freed.
//   cut-through (Fig. 6, RCF_CUT_THROUGH): S145 READY from down, then S146 each packet goes down as
//     soon as it and every one before it have arrived (the read position never passes the write
//     position, [0081]); S147/S148 RECEIVED up when all arrived; S149 RECEIVED from down.
// Receive handlers only record what must be sent (JF_* flags); emit() sends as the rings allow, so
// a full ring delays a packet and never loses it. Every wait has a deadline: a wait for data asks
// upstream again for the first byte missing, a wait for the next hop repeats the WRITE (or the
// data); after RCFG_RETRIES repeats the job is given up, and the origin told (FORWARDED, status).
//
// Non-volatile buffer memory (embodiment 4's variant, [0114]-[0117]; RCF_NV): the job table and the
// buffer are the relay's NV (the harness writes them to the relay's `nv` file after every poll,
// before the packets the poll sent leave, so nothing is acknowledged that a restart would lose).
// RECEIVED upstream then carries LF_STORED: the relay owns the command and forwards it itself, so
// the origin counts it done there and does not wait for FORWARDED. Such a job is never given up for
// lack of an answer downstream (it is asked again, less often, until the far side answers: [0116],
// "no necessity for the storage unit 12 to be in operation at all times"); a refusal still ends it
// with FORWARDED carrying the error. When it goes downstream is the forward policy: at once (now),
// RCFG_HOLD_US after it was stored or at a flush (later, [0115]), or at once unless the bytes being
// forwarded reach RCFG_THRESHOLD_BYTES, held until they drop below (threshold, [0117]). Held
// commands go in arrival order. recover() takes the job table back after a restart.
import {
  CONFIG_ADDR, MAP_ADDR, REGIONS_ADDR, REGION_ALIGN, PAGE_BYTES, MAPS_LAID_OUT, LINK_ENTRY_BYTES, LINK_HEADER_BYTES,
  LINK_PAYLOAD_BYTES, LINK_RING_ENTRIES, RCFG_MAGIC, RCFG_MAGIC_VALUE, RCFG_NODE, RCFG_LINKS, RCFG_BUFFER_BYTES,
  RCFG_FLAGS, RCFG_ROUTES, RCFG_TIMEOUT_US, RCFG_RETRIES, RCF_CUT_THROUGH, RMAP_LINKS, RMAP_STATS, RMAP_STATE,
  RMAP_WAKE_AT_NS, RMAP_JOBS, RMAP_JOB_COUNT, RELAY_MAX_LINKS, RELAY_MAX_NODES, DB_LINK_TX_BASE, DB_NONE, LT_WRITE, LT_READY,
  LT_DATA, LT_RECEIVED, LT_FORWARDED, LF_LAST, RSTAT_JOBS, RSTAT_FORWARDED, RSTAT_ACTIVE, RSTAT_BYTES, RSTAT_DUPLICATES,
  RSTAT_BAD, RSTAT_NO_BUFFER, RSTAT_FAILED, RSTAT_RETRIES, RSTAT_BUFFER_USED, RCF_NV, RCF_FORWARD_LATER, RCF_FORWARD_THRESHOLD,
  RCFG_HOLD_US, RCFG_THRESHOLD_BYTES, RMAP_NV_ADDR, RMAP_NV_BYTES, RMAP_FLUSH, RMAP_SEQ, RSTAT_HELD, RSTAT_RECOVERED, LF_STORED,
  TRACE_BYTES, TRACE_REMOTE_RELAY, RMAP_TRACE_RING, RMAP_TRACE_SEQ,
  RSTAT_TRACE_DROPS, RELAY_TRACE_ENTRIES, RTS_STORED, RTS_HELD, RTS_FORWARD, RTS_DONE, RTS_FAILED, RTS_DUPLICATE, RTS_RECOVERED,
} from "../abi";
import { ringInit, ringBytes, ringRelease } from "../ring";
import { traceInto } from "../trace";
import { alignUp } from "../util";
import { Packet, pkt, pktBegin, pktSend, pktNext, pktCopyCommand } from "../remote/packet";
import { bitmapFindNextClear, bitmapFindNextSet, bitmapSetRange, bitmapClearRange } from "../kernels/bitmap";
import { log, LOG_WARN } from "../hal";

const JOBS: u32 = 256;
const GRANULE: u32 = LINK_PAYLOAD_BYTES; // buffer memory is handed out in packet-sized granules
/** The largest command a relay takes: its packets are tracked in one u32 mask each. */
const MAX_PACKETS: u32 = 32;

const J_FREE: u8 = 0;
const J_RECEIVING: u8 = 1; // data arriving from upstream (S123-S125 / S143-S147)
const J_FORWARDING: u8 = 2; // all data here; downstream not done yet (S127-S129)
const J_DONE: u8 = 3; // answered both ways; kept until its deadline to answer a repeated WRITE again

// Sends owed (flags).
const JF_READY_UP: u32 = 1;
const JF_WRITE_DOWN: u32 = 2;
const JF_RECEIVED_UP: u32 = 4;
const JF_FORWARDED_UP: u32 = 8;
const JF_DOWN_READY: u32 = 16; // the next hop said READY (S127 / S145)
const JF_ACKED_UP: u32 = 32; // RECEIVED sent upstream (S126 / S148)
const JF_DOWN_DONE: u32 = 64; // RECEIVED came from the next hop (S129 / S149)
const JF_HOLD: u32 = 128; // NV: stored, not yet released downstream (forward policy later or threshold)
const JF_TRACED_DOWN: u32 = 256; // its forward to the next hop is in the trace (repeats are not)

@unmanaged class Job {
  state: u8;
  upLink: u8;
  upQueue: u8;
  downLink: u8;
  upNode: u16;
  packets: u16; // packets of the command
  upCmdId: u32; // the upstream's command identifier
  flags: u32; // JF_*
  got: u32; // mask of packets received
  sent: u32; // mask of packets sent downstream
  gen: u32; // this job's id downstream: index | gen << 16
  bufFirst: u32; // first granule
  deadlineNs: f64;
  retries: u32;
  readyFrom: u32; // READY from downstream: first byte it wants
  status: u32; // status << 24 | key << 16 | asc << 8 | ascq from downstream
  seq: u32; // arrival number: held commands are released in this order
  storedAt: f64; // NV: when all its data was here (forward later counts RCFG_HOLD_US from it)
}

// The job's copy of the command header (to rebuild WRITE and FORWARDED), after the Job fields.
const JOB_FIXED: u32 = 64;
const JOB_BYTES: u32 = JOB_FIXED + LINK_HEADER_BYTES;

// @ts-ignore: decorator
@inline function cfg32(o: u32): u32 { return load<u32>(CONFIG_ADDR + o); }
// @ts-ignore: decorator
@inline function node(): u32 { return <u32>load<u16>(CONFIG_ADDR + RCFG_NODE); }
// @ts-ignore: decorator
@inline function links(): u32 { return cfg32(RCFG_LINKS); }
function rxRing(l: u32): usize { return <usize>load<u32>(MAP_ADDR + RMAP_LINKS + l * 8); }
function txRing(l: u32): usize { return <usize>load<u32>(MAP_ADDR + RMAP_LINKS + l * 8 + 4); }
function stat(i: u32): usize { return MAP_ADDR + RMAP_STATS + i * 8; }
function statAdd(i: u32, n: i64): void { store<i64>(stat(i), load<i64>(stat(i)) + n); }
function jobAt(i: u32): usize { return <usize>load<u32>(MAP_ADDR + RMAP_JOBS) + <usize>i * JOB_BYTES; }
// @ts-ignore: decorator
@inline function job(j: usize): Job { return changetype<Job>(j); }
function jobHeader(j: usize): usize { return j + JOB_FIXED; }
function granules(): u32 { return cfg32(RCFG_BUFFER_BYTES) / GRANULE; }
function bufMap(): usize { return <usize>load<u32>(MAP_ADDR + RMAP_JOBS) + <usize>JOBS * JOB_BYTES; }
function bufBase(): usize { return alignUp(bufMap() + <usize>((granules() + 63) / 64) * 8, REGION_ALIGN); }
function timeoutNs(): f64 { return <f64>cfg32(RCFG_TIMEOUT_US) * 1000; }
function route(dst: u32): u32 { return dst < RELAY_MAX_NODES ? <u32>load<u16>(CONFIG_ADDR + RCFG_ROUTES + dst * 2) : 0xFFFF; }
function cutThrough(): bool { return (cfg32(RCFG_FLAGS) & RCF_CUT_THROUGH) != 0; }
function nv(): bool { return (cfg32(RCFG_FLAGS) & RCF_NV) != 0; }
/** Forward policy later or threshold: a command waits in NV until released. */
function holds(): bool { return (cfg32(RCFG_FLAGS) & (RCF_FORWARD_LATER | RCF_FORWARD_THRESHOLD)) != 0; }

let gNow: f64 = 0; // the time of the poll in progress (a register, as the array's iop.ts)

export function layout(): i32 {
  if (cfg32(RCFG_MAGIC) != RCFG_MAGIC_VALUE) return 1;
  if (links() < 1 || links() > RELAY_MAX_LINKS || granules() < MAX_PACKETS) return 2;
  let at: usize = REGIONS_ADDR;
  const ringB = ringBytes(LINK_RING_ENTRIES, LINK_ENTRY_BYTES);
  const traceB = alignUp(ringBytes(RELAY_TRACE_ENTRIES, TRACE_BYTES), REGION_ALIGN);
  const end = at + <usize>links() * 2 * alignUp(ringB, REGION_ALIGN) + traceB + <usize>JOBS * JOB_BYTES
    + <usize>granules() * 8 + <usize>granules() * GRANULE + 4 * REGION_ALIGN;
  const have = <usize>memory.size() * PAGE_BYTES;
  if (end > have && memory.grow(<i32>((end - have + PAGE_BYTES - 1) / PAGE_BYTES)) < 0) return 3;
  for (let l: u32 = 0; l < links(); l++) {
    store<u32>(MAP_ADDR + RMAP_LINKS + l * 8, <u32>at);
    ringInit(at, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, DB_NONE);
    at = alignUp(at + ringB, REGION_ALIGN);
    store<u32>(MAP_ADDR + RMAP_LINKS + l * 8 + 4, <u32>at);
    ringInit(at, LINK_RING_ENTRIES, LINK_ENTRY_BYTES, DB_LINK_TX_BASE + l);
    at = alignUp(at + ringB, REGION_ALIGN);
  }
  // The trace ring: volatile, before the job table where the NV part begins.
  store<u32>(MAP_ADDR + RMAP_TRACE_RING, <u32>at);
  store<u32>(MAP_ADDR + RMAP_TRACE_SEQ, 0);
  ringInit(at, RELAY_TRACE_ENTRIES, TRACE_BYTES, DB_NONE);
  at += traceB;
  store<u32>(MAP_ADDR + RMAP_JOBS, <u32>at);
  store<u32>(MAP_ADDR + RMAP_JOB_COUNT, JOBS);
  memory.fill(at, 0, <usize>JOBS * JOB_BYTES);
  memory.fill(bufMap(), 0, <usize>((granules() + 63) / 64) * 8);
  memory.fill(MAP_ADDR + RMAP_STATS, 0, 128);
  store<u32>(MAP_ADDR + RMAP_NV_ADDR, at);
  store<u32>(MAP_ADDR + RMAP_NV_BYTES, <u32>(bufBase() + <usize>granules() * GRANULE - at));
  store<u32>(MAP_ADDR + RMAP_FLUSH, 0);
  store<u32>(MAP_ADDR + RMAP_SEQ, 0);
  store<u32>(MAP_ADDR + RMAP_STATE, MAPS_LAID_OUT);
  return 0;
}

/**
 * After a restart: the harness has put the NV part back (job table, buffer map, buffer). Every job
 * goes on from a step that is safe to repeat: data still arriving asks upstream again; a command
 * downstream starts its exchange again (a next hop that applied it answers RECEIVED again: it
 * knows the issuing ID). Counters start again; the gauges are counted. Returns the jobs recovered.
 */
export function recover(now: f64): i32 {
  gNow = now;
  let n: i32 = 0;
  let seq: u32 = 0;
  memory.fill(MAP_ADDR + RMAP_STATS, 0, 128);
  for (let i: u32 = 0; i < JOBS; i++) {
    const j = jobAt(i);
    const x = job(j);
    if (x.state == J_FREE) continue;
    seq = max<u32>(seq, x.seq);
    x.retries = 0;
    x.deadlineNs = now + timeoutNs();
    if (x.state == J_DONE) continue;
    n++;
    x.flags &= ~JF_TRACED_DOWN; // its forward after the restart is traced again
    traceStep(j, RTS_RECOVERED, <u32>x.upNode, 0);
    statAdd(RSTAT_ACTIVE, 1);
    statAdd(RSTAT_BUFFER_USED, <i64>x.packets * GRANULE);
    if (x.storedAt > now) x.storedAt = now; // a clock that started again
    if (x.state == J_RECEIVING) { x.flags |= JF_READY_UP; continue; }
    // Downstream from the start: its WRITE again unless it is held or done there.
    x.flags &= ~JF_DOWN_READY;
    x.sent = 0;
    if ((x.flags & (JF_HOLD | JF_DOWN_DONE)) == 0) x.flags |= JF_WRITE_DOWN;
    if ((x.flags & JF_ACKED_UP) == 0) x.flags |= JF_RECEIVED_UP;
  }
  store<u32>(MAP_ADDR + RMAP_SEQ, seq);
  statAdd(RSTAT_RECOVERED, n);
  return n;
}

export function poll(now: f64): i32 {
  gNow = now;
  store<f64>(MAP_ADDR + RMAP_WAKE_AT_NS, 0);
  let work: i32 = 0;
  for (let l: u32 = 0; l < links(); l++) {
    const rx = rxRing(l);
    for (let p = pktNext(rx, stat(RSTAT_BAD)); p != 0; p = pktNext(rx, stat(RSTAT_BAD))) {
      receive(l, p);
      ringRelease(rx, 1);
      work++;
    }
  }
  if (holds()) work += release();
  for (let i: u32 = 0; i < JOBS; i++) {
    const j = jobAt(i);
    if (job(j).state == J_FREE) continue;
    work += emit(j) + timers(j);
  }
  return work;
}

/**
 * Forward policy later / threshold: releases held commands (all data stored) downstream in arrival
 * order — later: RCFG_HOLD_US after each was stored, or all at a flush; threshold: while the bytes
 * being forwarded stay below RCFG_THRESHOLD_BYTES (one at least when none are). Counts RSTAT_HELD.
 */
function release(): i32 {
  const later = (cfg32(RCFG_FLAGS) & RCF_FORWARD_LATER) != 0;
  const flush = load<u32>(MAP_ADDR + RMAP_FLUSH) != 0;
  store<u32>(MAP_ADDR + RMAP_FLUSH, 0);
  let work: i32 = 0;
  for (;;) {
    let first: usize = 0;
    let held: i64 = 0;
    let down: u32 = 0;
    for (let i: u32 = 0; i < JOBS; i++) {
      const j = jobAt(i);
      const x = job(j);
      if (x.state != J_FORWARDING) continue;
      if ((x.flags & JF_HOLD) != 0) {
        held++;
        if (first == 0 || x.seq - job(first).seq > 0x7FFFFFFF) first = j;
      } else if ((x.flags & JF_DOWN_DONE) == 0) down += <u32>x.packets * GRANULE;
    }
    store<i64>(stat(RSTAT_HELD), held);
    if (first == 0) return work;
    const x = job(first);
    if (!flush) {
      if (later) {
        const due = x.storedAt + <f64>cfg32(RCFG_HOLD_US) * 1000;
        if (gNow < due) { wakeAt(due); return work; }
      } else if (down > 0 && down + <u32>x.packets * GRANULE > cfg32(RCFG_THRESHOLD_BYTES)) return work; // woken by the forward that ends
    }
    x.flags = (x.flags & ~JF_HOLD) | JF_WRITE_DOWN;
    x.deadlineNs = gNow + timeoutNs();
    x.retries = 0;
    work++;
  }
  return work; // (not reached: the loop returns)
}

function wakeAt(t: f64): void {
  const cur = load<f64>(MAP_ADDR + RMAP_WAKE_AT_NS);
  if (cur == 0 || t < cur) store<f64>(MAP_ADDR + RMAP_WAKE_AT_NS, t);
}

/**
 * A TRACE_REMOTE_RELAY record of job j's step (RTS_*): the command's origin and issuing ID, the
 * upstream's command identifier and this relay's own, so a write is followed across the relay
 * (harness/follow.ts). `hop`: the node of the upstream or of the next hop, whichever the step faces.
 * A full ring costs a counted drop (RSTAT_TRACE_DROPS), never a wait.
 */
function traceStep(j: usize, step: u32, hop: u32, status: u32): void {
  const seq = load<u32>(MAP_ADDR + RMAP_TRACE_SEQ);
  store<u32>(MAP_ADDR + RMAP_TRACE_SEQ, seq + 1);
  const h = pkt(jobHeader(j));
  const a = (step << 24) | ((<u32>h.origin & 0xFF) << 16) | ((hop & 0xFF) << 8) | (status & 0xFF);
  if (!traceInto(<usize>load<u32>(MAP_ADDR + RMAP_TRACE_RING), 0, seq, gNow, TRACE_REMOTE_RELAY, a, job(j).upCmdId, h.issuingId, job(j).gen)) statAdd(RSTAT_TRACE_DROPS, 1);
}

// ---- Receiving ------------------------------------------------------------------------------

function receive(l: u32, p: usize): void {
  const h = pkt(p);
  const type = <u32>h.type;
  if (type == LT_WRITE) { upWrite(l, p); return; }
  if (type == LT_DATA) { upData(p); return; }
  // Answers from downstream name our job id.
  const j = jobById(h.cmdId);
  if (j == 0) return; // a late answer for a job that has ended
  if (type == LT_READY) downReady(j, p);
  else if (type == LT_RECEIVED) downReceived(j, p);
}

/** The job the upstream names by (its node, its queue, its command identifier), or 0. */
function jobByUpstream(upNode: u32, upQueue: u32, cmdId: u32): usize {
  for (let i: u32 = 0; i < JOBS; i++) {
    const j = jobAt(i);
    const x = job(j);
    if (x.state != J_FREE && <u32>x.upNode == upNode && <u32>x.upQueue == upQueue && x.upCmdId == cmdId) return j;
  }
  return 0;
}

function jobById(id: u32): usize {
  const i = id & 0xFFFF;
  if (i >= JOBS) return 0;
  const j = jobAt(i);
  return job(j).state != J_FREE && job(j).gen == id ? j : 0;
}

/** S120-S122 (S140-S142): a command from upstream. A repeated one is answered again, not started twice. */
function upWrite(l: u32, p: usize): void {
  const h = pkt(p);
  const dup = jobByUpstream(<u32>h.srcNode, <u32>h.srcQueue, h.cmdId);
  if (dup != 0) {
    statAdd(RSTAT_DUPLICATES, 1);
    traceStep(dup, RTS_DUPLICATE, <u32>h.srcNode, 0);
    const x = job(dup);
    x.flags |= (x.flags & JF_ACKED_UP) != 0 ? JF_RECEIVED_UP : JF_READY_UP;
    // Done downstream: its FORWARDED may be what was lost (the origin asks again while it waits for it).
    if ((x.flags & JF_DOWN_DONE) != 0) x.flags |= JF_FORWARDED_UP;
    return;
  }
  const down = route(<u32>h.dstNode);
  const packets = (h.total + LINK_PAYLOAD_BYTES - 1) / LINK_PAYLOAD_BYTES;
  if (down == 0xFFFF || down >= links() || packets > MAX_PACKETS) { statAdd(RSTAT_BAD, 1); return; }
  const slot = freeJob();
  const first = packets == 0 ? 0 : bufAlloc(packets);
  if (slot < 0 || (packets > 0 && first < 0)) { statAdd(RSTAT_NO_BUFFER, 1); return; } // the sender repeats it
  const j = jobAt(<u32>slot);
  const x = job(j);
  const gen = (x.gen >> 16) + 1;
  memory.fill(j, 0, JOB_BYTES);
  x.gen = <u32>slot | ((gen & 0xFFFF) << 16);
  x.state = J_RECEIVING;
  x.upLink = <u8>l;
  x.upNode = h.srcNode;
  x.upQueue = h.srcQueue;
  x.upCmdId = h.cmdId;
  x.downLink = <u8>down;
  x.packets = <u16>packets;
  x.bufFirst = packets == 0 ? 0 : <u32>first;
  // S121, S122; a relay that holds commands in NV sends the WRITE downstream once it is released.
  // Controls (no data) are never held: the origin waits for their FORWARDED.
  x.flags = holds() && packets > 0 ? JF_READY_UP | JF_HOLD : JF_READY_UP | JF_WRITE_DOWN;
  x.deadlineNs = gNow + timeoutNs();
  const seq = load<u32>(MAP_ADDR + RMAP_SEQ) + 1;
  store<u32>(MAP_ADDR + RMAP_SEQ, seq);
  x.seq = seq;
  memory.copy(jobHeader(j), p, LINK_HEADER_BYTES);
  statAdd(RSTAT_JOBS, 1);
  statAdd(RSTAT_ACTIVE, 1);
  statAdd(RSTAT_BUFFER_USED, <i64>packets * GRANULE);
  if (packets == 0) { x.state = J_FORWARDING; x.flags |= JF_RECEIVED_UP; x.storedAt = gNow; traceStep(j, RTS_STORED, <u32>h.srcNode, 0); }
}

/** S123-S125 (S143-S147): a data packet into the buffer; all there: S126 (S148) RECEIVED upstream. */
function upData(p: usize): void {
  const h = pkt(p);
  const j = jobByUpstream(<u32>h.srcNode, <u32>h.srcQueue, h.cmdId);
  if (j == 0) return;
  const x = job(j);
  const k = h.offset / LINK_PAYLOAD_BYTES;
  const total = pkt(jobHeader(j)).total;
  if (h.offset % LINK_PAYLOAD_BYTES != 0 || k >= <u32>x.packets || <u32>h.length != min<u32>(LINK_PAYLOAD_BYTES, total - h.offset)) {
    statAdd(RSTAT_BAD, 1);
    return;
  }
  if ((x.got & (1 << k)) != 0) return; // a duplicate packet
  memory.copy(bufAddr(x.bufFirst + k), p + LINK_HEADER_BYTES, <usize>h.length);
  x.got |= 1 << k;
  statAdd(RSTAT_BYTES, <i64>h.length);
  x.deadlineNs = gNow + timeoutNs();
  x.retries = 0;
  if (x.got == allPackets(x)) {
    x.state = J_FORWARDING;
    x.flags |= JF_RECEIVED_UP;
    x.storedAt = gNow;
    traceStep(j, (x.flags & JF_HOLD) != 0 ? RTS_HELD : RTS_STORED, <u32>x.upNode, 0);
  }
}

/** S127 (S145): the next hop is ready; it may ask again from a later byte (it lost some). */
function downReady(j: usize, p: usize): void {
  const x = job(j);
  const h = pkt(p);
  x.flags |= JF_DOWN_READY;
  x.flags &= ~JF_WRITE_DOWN;
  // A READY asking from byte `offset` (again): everything from there is sent (again).
  const from = h.offset / LINK_PAYLOAD_BYTES;
  x.sent &= from >= 32 ? 0xFFFFFFFF : (<u32>1 << from) - 1;
  x.deadlineNs = gNow + timeoutNs();
  x.retries = 0;
}

/** S129 (S149): the next hop has it all. The origin is told (FORWARDED) and the buffer freed. */
function downReceived(j: usize, p: usize): void {
  const x = job(j);
  const h = pkt(p);
  if ((x.flags & JF_DOWN_DONE) != 0) return;
  x.flags |= JF_DOWN_DONE | JF_FORWARDED_UP;
  x.status = (<u32>h.status << 24) | (<u32>h.senseKey << 16) | (<u32>h.asc << 8) | <u32>h.ascq;
  traceStep(j, RTS_DONE, <u32>h.srcNode, <u32>h.status);
  if (h.status == 0) statAdd(RSTAT_FORWARDED, 1); else statAdd(RSTAT_FAILED, 1);
}

// ---- Sending ----------------------------------------------------------------------------------

/** Sends what the job owes, as far as the rings have room. Returns packets sent. */
function emit(j: usize): i32 {
  const x = job(j);
  let n: i32 = 0;
  const up = txRing(x.upLink);
  const down = txRing(x.downLink);
  if ((x.flags & JF_READY_UP) != 0 && x.state == J_RECEIVING && answerUp(j, up, LT_READY)) { x.flags &= ~JF_READY_UP; n++; }
  if ((x.flags & JF_WRITE_DOWN) != 0 && writeDown(j, down)) { x.flags &= ~JF_WRITE_DOWN; n++; }
  if ((x.flags & JF_RECEIVED_UP) != 0 && answerUp(j, up, LT_RECEIVED)) { x.flags = (x.flags & ~(JF_RECEIVED_UP | JF_READY_UP)) | JF_ACKED_UP; n++; }
  if ((x.flags & JF_DOWN_READY) != 0 && (x.flags & JF_DOWN_DONE) == 0) n += dataDown(j, down);
  if ((x.flags & JF_FORWARDED_UP) != 0 && answerUp(j, up, LT_FORWARDED)) { x.flags &= ~JF_FORWARDED_UP; n++; }
  if ((x.flags & (JF_DOWN_DONE | JF_ACKED_UP)) == (JF_DOWN_DONE | JF_ACKED_UP) && (x.flags & JF_FORWARDED_UP) == 0 && x.state != J_DONE) {
    finish(j);
  }
  return n;
}

/** READY (asking from the first missing byte), RECEIVED or FORWARDED to the upstream. */
function answerUp(j: usize, tx: usize, type: u32): bool {
  const x = job(j);
  const p = pktBegin(tx, type);
  if (p == 0) return false;
  const h = pkt(p);
  pktCopyCommand(p, jobHeader(j));
  h.srcNode = <u16>node();
  h.dstNode = x.upNode;
  h.dstQueue = x.upQueue;
  h.cmdId = x.upCmdId;
  if (type == LT_READY) {
    const first = firstMissing(x);
    h.offset = first * LINK_PAYLOAD_BYTES;
    h.total = pkt(jobHeader(j)).total - min<u32>(h.offset, pkt(jobHeader(j)).total);
  }
  if (type == LT_RECEIVED && nv() && x.packets > 0) h.flags = <u8>(<u32>h.flags | LF_STORED); // the relay owns it now (NV)
  if (type == LT_FORWARDED) {
    h.status = <u8>(x.status >> 24);
    h.senseKey = <u8>(x.status >> 16);
    h.asc = <u8>(x.status >> 8);
    h.ascq = <u8>x.status;
  }
  pktSend(tx, p, 0);
  return true;
}

/** S122 (S142): the command to the next hop, under this relay's own identifier. */
function writeDown(j: usize, tx: usize): bool {
  const x = job(j);
  const p = pktBegin(tx, LT_WRITE);
  if (p == 0) return false;
  pktCopyCommand(p, jobHeader(j));
  const h = pkt(p);
  h.srcNode = <u16>node();
  h.srcQueue = 0;
  h.dstQueue = 0;
  h.cmdId = x.gen;
  pktSend(tx, p, 0);
  if ((x.flags & JF_TRACED_DOWN) == 0) { x.flags |= JF_TRACED_DOWN; traceStep(j, RTS_FORWARD, <u32>h.dstNode, 0); }
  return true;
}

/**
 * S128 (S146): data to the next hop. Store and forward waits until all has arrived; cut-through
 * sends each packet once it and all before it are here (never past what arrived).
 */
function dataDown(j: usize, tx: usize): i32 {
  const x = job(j);
  if (x.state == J_RECEIVING && !cutThrough()) return 0;
  const total = pkt(jobHeader(j)).total;
  let n: i32 = 0;
  for (let k: u32 = 0; k < <u32>x.packets; k++) {
    if ((x.got & (1 << k)) == 0) break; // the read position stops at the first packet not yet written
    if ((x.sent & (1 << k)) != 0) continue;
    const p = pktBegin(tx, LT_DATA);
    if (p == 0) break;
    const h = pkt(p);
    const offset = k * LINK_PAYLOAD_BYTES;
    const length = min<u32>(LINK_PAYLOAD_BYTES, total - offset);
    h.srcNode = <u16>node();
    h.dstNode = pkt(jobHeader(j)).dstNode;
    h.cmdId = x.gen;
    h.offset = offset;
    h.origin = pkt(jobHeader(j)).origin;
    h.issuingId = pkt(jobHeader(j)).issuingId;
    if (k + 1 == <u32>x.packets) h.flags = <u8>LF_LAST;
    memory.copy(p + LINK_HEADER_BYTES, bufAddr(x.bufFirst + k), <usize>length);
    pktSend(tx, p, length);
    x.sent |= 1 << k;
    n++;
  }
  return n;
}

/** Bounded waits: data from upstream, READY or RECEIVED from downstream. */
function timers(j: usize): i32 {
  const x = job(j);
  if (x.state == J_DONE) {
    if (gNow >= x.deadlineNs) freeJob2(j); else wakeAt(x.deadlineNs);
    return 0;
  }
  if ((x.flags & JF_HOLD) != 0 && x.state == J_FORWARDING) return 0; // stored, not released: nothing is awaited downstream
  if (gNow < x.deadlineNs) { wakeAt(x.deadlineNs); return 0; }
  if (x.retries >= cfg32(RCFG_RETRIES) && nv() && x.packets > 0 && x.state == J_FORWARDING && (x.flags & JF_ACKED_UP) != 0) {
    // NV: a stored command is never given up for silence downstream; asked again, less often.
    x.retries = 0;
    x.deadlineNs = gNow + timeoutNs() * <f64>(cfg32(RCFG_RETRIES) + 1);
    wakeAt(x.deadlineNs);
    statAdd(RSTAT_RETRIES, 1);
    if ((x.flags & JF_DOWN_DONE) == 0) x.flags |= JF_WRITE_DOWN;
    return 1;
  }
  if (x.retries >= cfg32(RCFG_RETRIES)) {
    log(LOG_WARN, "relay: a command was given up after its retries (job, packets received)", x.gen, x.got);
    x.status = (0x02 << 24) | (0x0B << 16) | (0x08 << 8) | 0x01; // ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIMEOUT
    traceStep(j, RTS_FAILED, <u32>pkt(jobHeader(j)).dstNode, 0x02);
    if ((x.flags & JF_ACKED_UP) != 0) { // the origin counted it done: it must hear that it was not forwarded
      x.flags |= JF_FORWARDED_UP | JF_DOWN_DONE;
      statAdd(RSTAT_FAILED, 1);
      return 1;
    }
    finish(j);
    return 1;
  }
  x.retries++;
  x.deadlineNs = gNow + timeoutNs();
  wakeAt(x.deadlineNs);
  statAdd(RSTAT_RETRIES, 1);
  if (x.state == J_RECEIVING && x.got != allPackets(x)) x.flags |= JF_READY_UP; // ask for what is missing
  if ((x.flags & JF_DOWN_READY) == 0) x.flags |= JF_WRITE_DOWN; // the WRITE or its READY was lost
  // Data or RECEIVED lost: the WRITE again; the next hop answers READY from the first byte it lacks,
  // or RECEIVED again when it has applied the command already (a lost RECEIVED is not resent by data).
  else if ((x.flags & JF_DOWN_DONE) == 0) x.flags |= JF_WRITE_DOWN;
  return 1;
}

function allPackets(x: Job): u32 { return x.packets >= 32 ? 0xFFFFFFFF : (<u32>1 << <u32>x.packets) - 1; }
function firstMissing(x: Job): u32 { return <u32>ctz<u32>(~x.got); }

/** Buffer back; the identity stays a while to answer a repeated WRITE (its RECEIVED was lost). */
function finish(j: usize): void {
  const x = job(j);
  if (x.bufFirst != 0 || x.packets == 0) bufFree(x.bufFirst, <u32>x.packets);
  statAdd(RSTAT_BUFFER_USED, -<i64>(<u32>x.packets * GRANULE));
  statAdd(RSTAT_ACTIVE, -1);
  x.bufFirst = 0;
  x.packets = 0;
  x.state = J_DONE;
  x.deadlineNs = gNow + timeoutNs() * <f64>(cfg32(RCFG_RETRIES) + 2);
}

function freeJob2(j: usize): void { job(j).state = J_FREE; }

function freeJob(): i32 {
  for (let i: u32 = 0; i < JOBS; i++) if (job(jobAt(i)).state == J_FREE) return <i32>i;
  return -1;
}

// ---- Buffer memory 152: granules of one packet, contiguous runs first fit ----------------------

function bufAlloc(n: u32): i32 {
  const total = <u64>granules();
  let from: u64 = 0;
  while (from + <u64>n <= total) {
    const start = bitmapFindNextClear(bufMap(), total, from);
    if (start < 0 || <u64>start + <u64>n > total) return -1;
    const end = bitmapFindNextSet(bufMap(), total, <u64>start);
    if (end < 0) return -1;
    if (<u64>end - <u64>start >= <u64>n) { bitmapSetRange(bufMap(), total, <u64>start, <u64>n); return <i32>start + 1; }
    from = <u64>end;
  }
  return -1;
}

function bufFree(first: u32, n: u32): void {
  if (first == 0 || n == 0) return;
  bitmapClearRange(bufMap(), <u64>granules(), <u64>(first - 1), <u64>n);
}

function bufAddr(granule1: u32): usize { return bufBase() + <usize>(granule1 - 1) * GRANULE; }
