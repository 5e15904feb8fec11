// The copy engine of volume pairs, on the disk IOP (document 001: the I/O processor 508 performs the
// creation copy and the update copy "independently of the processing of the processors 501-503").
//
// A copy job copies one track of a pair, slot by slot, through the cache: the source slot is staged
// if it is not all valid (the disk IOP's own stage), then written whole into the target's slot with
// writeSectors, which persists it in NV like a host write (data, sector CRCs, descriptor) and leaves
// it dirty for the ordinary destage. When every NV entry of the track has completed without error
// the copy is durable, and only then is the track's PENDING bit cleared and persisted. A host write
// to the source that lands on a track while its copy is in flight marks the job "redirtied": the bit
// then stays set and the track is copied again.
//
// Order: tracks a waiting host write needs (urgent: copy before write, 004), then the priority range
// (embodiment 1: the backup range first), then the rest from a cursor. Throttle: while the hosts send
// commands (hostBusy: at their recent pace), one job at a time and none while the cache is above its dirty high mark, so host I/O keeps
// its share; when they are idle, COPY_JOBS at once. A copying pair whose source or target medium is
// dead or lost is suspended at the next poll, whether or not one of its jobs is running; one whose
// medium is becoming ready (at boot) waits for it, with a bound.
import { CFG_DIRTY_HIGH_PCT, MEDS_OK, MEDS_DEAD, MEDS_LOST, MAP_ADDR, MAP_IOP_TABLE, MAP_IOP_BYTES, MIOP_STATS, STAT_COMMANDS, SLOT_SECTORS, ROLE_CHANNEL } from "../abi";
import { cfg32, iopCount, iopRole } from "../config";
import { gNow, wakeAt } from "../iop";
import {
  cacheLookup, sectorsValid, slotFlags, slotSetFlags, slotClearFlags, missingRun, slotData, writeSectors, pin, unpin,
  poisonedSector, bumpEvent, dirtyCountAll, slotCount, F_STAGING, F_READ_ERROR, F_NOT_READY, WRITE_NV_ENTRIES,
} from "../cache";
import { volumeChunkBlank } from "../initmap";
import { volumeReady, volumeNotReady, VOLE_CHUNKS } from "../volume";
import { nvRoom, nvId, NVK_PAIR, nvDegraded, MAX_PAIRS, nvKick, volumeEntry } from "../nv";
import { log, LOG_WARN, LOG_INFO } from "../hal";
import { allocateFor } from "../sequencer";
import { stageSlot } from "../disk";
import { bitmapClearRange } from "../kernels/bitmap";
import {
  rec, runtime, jobAt, engineAt, pairInUse, setState, pairPersist, persistBit, persistBitmap, nextSet, bitSet,
  slotsPerTrack, urgentTake, COPY_JOBS, BM_PENDING, BM_SOURCE, BM_TARGET, PS_DUPLEX_PENDING, PS_DUPLEX,
  PS_SPLIT_PENDING, PS_SPLIT, PS_REVERSE, PS_SUSPENDED, PR_SOURCE_NOT_READY, PR_TARGET_NOT_READY, PR_READ_ERROR, bitmap,
  PR_SOURCE_NOT_READY_IN_TIME, PR_TARGET_NOT_READY_IN_TIME,
  mergeDifferences,
} from "./table";

/** One track being copied. */
@unmanaged export class CopyJob {
  active: u32;
  pair: u32;
  serial: u32; // the pair's serial when the job began: a deleted pair's job is dropped
  track: u32;
  slotIndex: u32; // next slot of the track to copy
  pinned: u32; // source slot + 1 the job pins while it waits for its stage, 0 none
  nvPending: u32; // NV entries queued and not yet completed
  seq: u32; // matches the NV completions (low 24 bits)
  redirtied: u32; // a host wrote the track during the copy: the bit stays
  failed: u32; // an NV entry failed: the bit stays
  staged: u32; // the pinned slot's stage was asked for by this job
  reverse: u32;
  startNs: f64;
  bytes: u32; // bytes written to the destination
}

@unmanaged class Engine {
  seq: u32;
  reserved: u32;
  commands: u64; // host commands counted at the last look
  busyUntilNs: f64; // the hosts are busy until then (see hostBusy)
  lastNs: f64; // when the count last grew
  gapNs: f64; // the longest recent gap between host commands, decaying
}

// The hosts are busy until they pause for longer than HOST_IDLE_GAPS times the longest gap between
// their recent commands (at least HOST_BUSY_NS); the longest gap decays by 1/16 at each look that finds
// new commands, so it follows the hosts' present pace. A fixed 2 ms window misread a host that writes in a steady
// stream at the pace of its destages (QD8 random writes on one disk: commands come as destages free
// slots, with gaps up to a disk access) as idle in its longer gaps, and the copy then started
// COPY_JOBS jobs whose stages took the source disk from the host's destages (bench pairs: host
// write IOPS during a creation copy 0.896 of those without; 0.908 with this). A gap longer than
// HOST_PAUSE_NS is a pause, not the pace, and does not count.
const HOST_BUSY_NS: f64 = 2e6;
const HOST_IDLE_GAPS: f64 = 2;
const HOST_PAUSE_NS: f64 = 100e6;

// How long the copy waits for a volume whose medium is becoming ready (its label being read) before
// the pair is suspended: a label read takes a few medium accesses; a medium back from the dead is
// probed every second first. As long as a host write waits for its track's copy (docs/scsi.md).
const READY_WAIT_NS: f64 = 30e9;

// @ts-ignore: decorator
@inline function job(j: u32): CopyJob { return changetype<CopyJob>(jobAt(j)); }
// @ts-ignore: decorator
@inline function engine(): Engine { return changetype<Engine>(engineAt()); }

/** The copying states: the engine works on pairs in these. */
export function copying(st: u32): bool {
  return st == PS_DUPLEX_PENDING || st == PS_DUPLEX || st == PS_SPLIT_PENDING || st == PS_REVERSE;
}

/** Is track t of pair p being copied now? Returns the job + 1, or 0. */
export function jobOf(p: u32, t: u32): u32 {
  for (let j: u32 = 0; j < COPY_JOBS; j++) {
    const jb = job(j);
    if (jb.active != 0 && jb.pair == p && jb.track == t) return j + 1;
  }
  return 0;
}

/** A host wrote track t of pair p's source while it may be in flight: its copy must not clear the bit. */
export function markRedirtied(p: u32, t: u32): void {
  const j = jobOf(p, t);
  if (j != 0) job(j - 1).redirtied = 1;
}

// ---- Poll -----------------------------------------------------------------------------------------

/** One step of every job, new jobs as the throttle allows, and the state changes copies end in. */
export function pairCopyPoll(): i32 {
  let work: i32 = 0;
  for (let j: u32 = 0; j < COPY_JOBS; j++) if (job(j).active != 0) work += jobStep(j);
  if (nvDegraded()) return work; // nothing new while the NV file may not keep it
  const busy = hostBusy();
  for (let p: u32 = 0; p < MAX_PAIRS; p++) {
    if (!pairInUse(p) || !copying(<u32>rec(p).state)) continue;
    if (!volumesReady(p)) {
      if (<u32>rec(p).state == PS_SUSPENDED) work++;
      continue;
    }
    work += startJobs(p, busy);
  }
  return work;
}

/**
 * Are both volumes of pair p ready for its copy? A medium under either that is dead or lost
 * suspends the pair (here, not only by a job that finds it: while the hosts are busy and the cache
 * is above its high mark the throttle starts no job, and the pair would stay copying for ever). A
 * medium still becoming ready — its label not yet read, as for every medium at boot, or one back
 * from the dead — is waited for, READY_WAIT_NS at most, then the pair is suspended naming that
 * (PR_*_NOT_READY_IN_TIME). Before this wait a restart (kill -9 of `sanbox run` in duplex pending)
 * began jobs before the labels were read and a job suspended the pair, "source not ready", with
 * every medium fine.
 */
function volumesReady(p: u32): bool {
  const r = rec(p);
  const rt = runtime(p);
  const src = volumeNotReady(r.source);
  const tgt = volumeNotReady(r.target);
  if (src == MEDS_OK && tgt == MEDS_OK) { rt.waitingReady = 0; return true; }
  if (failed(src) || failed(tgt)) {
    pairSuspend(p, failed(src) ? PR_SOURCE_NOT_READY : PR_TARGET_NOT_READY);
    return false;
  }
  if (rt.waitingReady == 0) { rt.waitingReady = 1; rt.readySinceNs = gNow; }
  if (gNow - rt.readySinceNs >= READY_WAIT_NS) {
    pairSuspend(p, src != MEDS_OK ? PR_SOURCE_NOT_READY_IN_TIME : PR_TARGET_NOT_READY_IN_TIME);
  } else {
    wakeAt(rt.readySinceNs + READY_WAIT_NS); // the bound is kept even when nothing else happens
  }
  return false;
}

/** A medium state that will not become ready by itself: dead or lost (becoming ready, unknown: it may). */
// @ts-ignore: decorator
@inline function failed(st: u32): bool { return st == MEDS_DEAD || st == MEDS_LOST; }

function hostBusy(): bool {
  let n: u64 = 0;
  for (let i: u32 = 0; i < iopCount(); i++) {
    if (iopRole(i) != ROLE_CHANNEL) continue;
    const stats: usize = load<u32>(MAP_ADDR + MAP_IOP_TABLE + i * MAP_IOP_BYTES + MIOP_STATS);
    n += load<u64>(stats + (<usize>STAT_COMMANDS << 3));
  }
  const e = engine();
  if (n != e.commands) {
    const gap = e.lastNs == 0 || n < e.commands ? 0 : gNow - e.lastNs;
    if (gap < HOST_PAUSE_NS) e.gapNs = max<f64>(gap, e.gapNs * 15 / 16);
    e.commands = n;
    e.lastNs = gNow;
    e.busyUntilNs = gNow + max<f64>(HOST_BUSY_NS, HOST_IDLE_GAPS * e.gapNs);
  }
  return gNow < e.busyUntilNs;
}

function activeJobs(): u32 {
  let n: u32 = 0;
  for (let j: u32 = 0; j < COPY_JOBS; j++) if (job(j).active != 0) n++;
  return n;
}

function freeJob(): i32 {
  for (let j: u32 = 0; j < COPY_JOBS; j++) if (job(j).active == 0) return <i32>j;
  return -1;
}

function startJobs(p: u32, busy: bool): i32 {
  const r = rec(p);
  const rt = runtime(p);
  let started: i32 = 0;
  // Urgent tracks (a host write waits) go whatever the throttle says.
  let u = urgentTake(p);
  while (u >= 0) {
    if (bitSet(p, BM_PENDING, <u32>u) && jobOf(p, <u32>u) == 0) {
      if (!begin(p, <u32>u)) { return started; }
      started++;
    }
    u = urgentTake(p);
  }
  const limit: u32 = busy ? 1 : COPY_JOBS;
  const high = <u64>dirtyCountAll() * 200 > <u64>slotCount() * <u64>cfg32(CFG_DIRTY_HIGH_PCT);
  while (activeJobs() < limit && !(busy && high)) {
    const t = pickTrack(p);
    if (t < 0) break;
    if (!begin(p, <u32>t)) break;
    started++;
  }
  if (rt.jobs == 0 && pickTrack(p) < 0) settle(p);
  else if (rt.copyStartNs == 0) rt.copyStartNs = gNow;
  return started;
}

/** The next pending track not in flight: the priority range first, then from the cursor. -1: none. */
function pickTrack(p: u32): i32 {
  const r = rec(p);
  const rt = runtime(p);
  const end = r.tracks;
  let t = nextSet(p, BM_PENDING, rt.priorityFirst, min<u32>(rt.priorityEnd, end));
  while (t < min<u32>(rt.priorityEnd, end)) {
    if (jobOf(p, t) == 0) return <i32>t;
    t = nextSet(p, BM_PENDING, t + 1, min<u32>(rt.priorityEnd, end));
  }
  for (let pass: u32 = 0; pass < 2; pass++) {
    const from = pass == 0 ? rt.cursor : 0;
    const until = pass == 0 ? end : min<u32>(rt.cursor, end);
    t = nextSet(p, BM_PENDING, from, until);
    while (t < until) {
      if (jobOf(p, t) == 0) { rt.cursor = t + 1; return <i32>t; }
      t = nextSet(p, BM_PENDING, t + 1, until);
    }
  }
  return -1;
}

function begin(p: u32, t: u32): bool {
  const j = freeJob();
  if (j < 0) return false;
  const jb = job(<u32>j);
  memory.fill(jobAt(<u32>j), 0, offsetof<CopyJob>());
  const e = engine();
  e.seq = (e.seq + 1) & 0xFFFFFF;
  jb.active = 1;
  jb.pair = p;
  jb.serial = rec(p).serial;
  jb.track = t;
  jb.seq = e.seq;
  jb.reverse = <u32>rec(p).state == PS_REVERSE ? 1 : 0;
  jb.startNs = gNow;
  runtime(p).jobs = runtime(p).jobs + 1;
  return true;
}

/** The state a pair's copy ends in once nothing is pending (001: duplex; split; reverse -> duplex). */
function settle(p: u32): void {
  const st = <u32>rec(p).state;
  if (st != PS_DUPLEX_PENDING && st != PS_SPLIT_PENDING && st != PS_REVERSE) return;
  if (!nvRoom(1)) return;
  const rt = runtime(p);
  if (rt.copyStartNs != 0) { rt.busyNs += gNow - rt.copyStartNs; rt.copyStartNs = 0; }
  setState(p, st == PS_SPLIT_PENDING ? PS_SPLIT : PS_DUPLEX);
  pairPersist(p, nvId(NVK_PAIR, 0xFFFFFF));
  log(LOG_INFO, "pair: copy complete (pair, state)", p, <u32>rec(p).state);
  bumpEvent();
}

// ---- A job ----------------------------------------------------------------------------------------

function jobStep(j: u32): i32 {
  const jb = job(j);
  const p = jb.pair;
  if (!pairInUse(p) || rec(p).serial != jb.serial || !copying(<u32>rec(p).state)) {
    if (jb.nvPending == 0) end(j, false); // deleted or suspended: dropped once its entries are in
    else release(jb);
    return 1;
  }
  const r = rec(p);
  const from: u32 = jb.reverse != 0 ? r.target : r.source;
  const to: u32 = jb.reverse != 0 ? r.source : r.target;
  // A volume not ready: the job waits; the poll (volumesReady) suspends the pair if a medium under
  // it failed or does not become ready in time.
  if (!volumeReady(from) || !volumeReady(to)) return 0;
  const spt = slotsPerTrack(p);
  const chunks = load<u32>(volumeEntry(from) + VOLE_CHUNKS);
  let work: i32 = 0;
  while (jb.slotIndex < spt) {
    const slotNo = jb.track * spt + jb.slotIndex;
    if (slotNo >= chunks) { jb.slotIndex = spt; break; }
    const s = copySlot(j, from, to, slotNo);
    if (s < 0) return work; // waits for a stage, a slot or NV room
    if (s == 2) return 1; // suspended
    jb.slotIndex++;
    work++;
  }
  if (jb.nvPending != 0) return work;
  end(j, true);
  return 1;
}

/** Copies one slot. 1 done, -1 wait, 2 the pair was suspended. */
function copySlot(j: u32, from: u32, to: u32, slotNo: u32): i32 {
  const jb = job(j);
  let src = cacheLookup(from, slotNo);
  if (src < 0 && jb.pinned == 0 && volumeChunkBlank(from, slotNo) && cacheLookup(to, slotNo) < 0 && volumeChunkBlank(to, slotNo)) {
    return 1; // both never written: they read zeros alike, nothing to copy
  }
  if (src < 0) {
    src = allocateFor(from, slotNo);
    if (src < 0) { wakeAt(gNow + 1e5); return -1; }
  }
  const s = <u32>src;
  if (jb.pinned != s + 1) { release(jb); pin(s); jb.pinned = s + 1; }
  if (poisonedSector(s, 0, SLOT_SECTORS) >= 0) { pairSuspend(jb.pair, PR_READ_ERROR); return 2; }
  if (!sectorsValid(s, 0, SLOT_SECTORS)) {
    const f = slotFlags(s);
    if ((f & F_STAGING) != 0) return -1;
    if ((f & (F_READ_ERROR | F_NOT_READY)) != 0 && jb.staged != 0) {
      pairSuspend(jb.pair, (f & F_NOT_READY) != 0 ? (jb.reverse != 0 ? PR_TARGET_NOT_READY : PR_SOURCE_NOT_READY) : PR_READ_ERROR);
      return 2;
    }
    const run = missingRun(s, 0, SLOT_SECTORS);
    slotClearFlags(s, F_READ_ERROR | F_NOT_READY);
    slotSetFlags(s, F_STAGING);
    if (!stageSlot(s, run >> 16, run & 0xFFFF)) { slotClearFlags(s, F_STAGING); return -1; }
    jb.staged = 1;
    return -1;
  }
  let dst = cacheLookup(to, slotNo);
  if (dst < 0) dst = allocateFor(to, slotNo);
  if (dst < 0) { wakeAt(gNow + 1e5); return -1; }
  if ((slotFlags(<u32>dst) & F_STAGING) != 0) return -1;
  if (!nvRoom(WRITE_NV_ENTRIES)) return -1;
  writeSectors(<u32>dst, 0, SLOT_SECTORS, slotData(s), gNow, nvId(NVK_PAIR, (j << 24) | jb.seq));
  jb.nvPending += WRITE_NV_ENTRIES;
  jb.bytes += SLOT_SECTORS << 9;
  release(jb);
  jb.staged = 0;
  return 1;
}

function release(jb: CopyJob): void {
  if (jb.pinned != 0) { unpin(jb.pinned - 1); jb.pinned = 0; }
}

/** The job ends: on a durable, clean copy the track's PENDING bit goes (and is persisted). */
function end(j: u32, copied: bool): void {
  const jb = job(j);
  release(jb);
  const p = jb.pair;
  const same = pairInUse(p) && rec(p).serial == jb.serial;
  if (same && copied && jb.redirtied == 0 && jb.failed == 0 && nvRoom(1)) {
    bitmapClearRange(bitmap(p, BM_PENDING), <u64>rec(p).tracks, <u64>jb.track, 1);
    persistBit(p, BM_PENDING, jb.track, nvId(NVK_PAIR, 0xFFFFFF));
    const rt = runtime(p);
    rt.copiedTracks += 1;
    rt.copiedBytes += <u64>jb.bytes;
    rt.copyNs += gNow - jb.startNs;
  } else if (same && copied && jb.redirtied == 0 && jb.failed == 0) {
    return; // no NV room for the bit's record: ended on a later poll
  }
  if (same) runtime(p).jobs = runtime(p).jobs - 1;
  jb.active = 0;
  bumpEvent(); // a write waiting for this track (copy before write) looks again
  nvKick();
}

/** An NV completion of a copy job (disk.ts). */
export function pairNvDone(id: u32, status: u32): void {
  const payload = id & 0x0FFFFFFF;
  const seq = payload & 0xFFFFFF;
  if (seq == 0xFFFFFF) return; // a bit or record persist: nothing waits for it on this side
  const j = payload >> 24;
  if (j >= COPY_JOBS) return;
  const jb = job(j);
  if (jb.active == 0 || jb.seq != seq || jb.nvPending == 0) return;
  jb.nvPending -= 1;
  if (status != 0) jb.failed = 1;
}

/**
 * Suspends pair p on an error (a medium under either volume dead or failing): the copy stops, and
 * what the target lacks, or was written on either side since a split, goes into PENDING for the
 * resync that takes it out of suspension. Host writes to the source go on and are recorded.
 */
export function pairSuspend(p: u32, reason: u32): void {
  if (!nvRoom(4) || <u32>rec(p).state == PS_SUSPENDED) return;
  const r = rec(p);
  const id = nvId(NVK_PAIR, 0xFFFFFF);
  mergeDifferences(p, id);
  setState(p, PS_SUSPENDED);
  r.reason = <u8>reason;
  runtime(p).waitingReady = 0; // a resync waits afresh
  pairPersist(p, id);
  for (let j: u32 = 0; j < COPY_JOBS; j++) if (job(j).active != 0 && job(j).pair == p) release(job(j));
  log(LOG_WARN, "pair: suspended on an error (pair, PR_* reason); resync after the repair", p, reason);
  bumpEvent();
  nvKick();
}
