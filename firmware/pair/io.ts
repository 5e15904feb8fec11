// What a pair does to host I/O, on the channel IOPs (document 001: the channel IOP marks the pair
// difference information; 004: the instant split). Three hooks into the sequencer:
//
//   pairWriteAllowed  at dispatch: a target being copied to (duplex pending, duplex, suspended,
//                     reverse's source side) or read-only (its attribute, or a backup of the pair
//                     running: 004), and a source in reverse resync,
//                     refuse writes: DATA PROTECT, WRITE PROTECTED (27h/00h).
//   pairBeforeWrite   per slot, before the data enters the cache and the NV ring:
//                     duplex pending, duplex, suspended: the source write sets PENDING (the copy
//                       reflects it; a copy in flight of that track is marked to run again);
//                     split pending: a write to a track not yet copied (PENDING set) waits until the
//                       disk IOP has copied the track's old data (copy before write, 004), asked for
//                       first; then, like split: the source sets SOURCE, the target sets TARGET.
//   pairReadVolume    per slot: a target read of a track still PENDING reads the source, which holds
//                     the track as it was at the split (no write reached it: copy before write); in
//                     reverse resync a source read of such a track reads the target.
import { MAX_PAIRS } from "../nv";
import {
  rec, pairOfVolume, isTarget, trackOfSlot, bitSet, setBit, persistBit, urgentAdd, BM_PENDING, BM_SOURCE, BM_TARGET,
  PS_DUPLEX_PENDING, PS_DUPLEX, PS_SPLIT_PENDING, PS_SPLIT, PS_REVERSE, PS_SUSPENDED, PF_TARGET_READ_ONLY,
} from "./table";
import { markRedirtied } from "./copy";
import { pairBackedUp } from "../xcopy/table";

export const PW_OK: u32 = 0; // not in a pair (or beyond the source's tracks): write as usual
export const PW_PERSISTED: u32 = 1; // a difference bit was set and queued to NV (one more entry to wait for)
export const PW_WAIT: u32 = 2; // the track's old data is being copied first
export const PW_REFUSE: u32 = 3; // the pair's state forbids the write now

/** May volume v take writes in its pair's state? */
export function pairWriteAllowed(v: u32): bool {
  const p = pairOfVolume(v);
  if (p < 0) return true;
  const r = rec(<u32>p);
  const st = <u32>r.state;
  if (!isTarget(<u32>p, v)) return st != PS_REVERSE;
  return (st == PS_SPLIT_PENDING || st == PS_SPLIT) && !pairTargetReadOnly(<u32>p);
}

/** 004: the target is read-only while its attribute is set, and for the duration of a backup of the pair (EXTENDED COPY's C0h). */
export function pairTargetReadOnly(p: u32): bool {
  return (<u32>rec(p).flags & PF_TARGET_READ_ONLY) != 0 || pairBackedUp(p);
}

/** The hook before a write of volume v's slot slotNo enters the cache (PW_*). Needs 1 free NV entry. */
export function pairBeforeWrite(v: u32, slotNo: u32, id: u32): u32 {
  const pi = pairOfVolume(v);
  if (pi < 0) return PW_OK;
  const p = <u32>pi;
  if (!pairWriteAllowed(v)) return PW_REFUSE;
  const r = rec(p);
  const t = trackOfSlot(p, slotNo);
  if (t >= r.tracks) return PW_OK; // a target larger than its source: beyond the pair
  const st = <u32>r.state;
  const target = isTarget(p, v);
  if (st == PS_DUPLEX_PENDING || st == PS_DUPLEX || st == PS_SUSPENDED) {
    markRedirtied(p, t);
    return mark(p, BM_PENDING, t, id);
  }
  if (st == PS_SPLIT_PENDING && bitSet(p, BM_PENDING, t)) { urgentAdd(p, t); return PW_WAIT; }
  return mark(p, target ? BM_TARGET : BM_SOURCE, t, id);
}

function mark(p: u32, which: u32, t: u32, id: u32): u32 {
  setBit(p, which, t);
  // Persisted every time, not only when the bit changes: a bit set by an earlier write may still be
  // on its way, and this write's data must not reach the NV file before it.
  return persistBit(p, which, t, id) ? PW_PERSISTED : PW_REFUSE;
}

/** The volume a read of volume v's slot slotNo is served from. */
export function pairReadVolume(v: u32, slotNo: u32): u32 {
  const pi = pairOfVolume(v);
  if (pi < 0) return v;
  const p = <u32>pi;
  const r = rec(p);
  const t = trackOfSlot(p, slotNo);
  if (t >= r.tracks || !bitSet(p, BM_PENDING, t)) return v;
  const st = <u32>r.state;
  if (isTarget(p, v)) return st == PS_SPLIT || st == PS_REVERSE ? v : <u32>r.source;
  return st == PS_REVERSE ? <u32>r.target : v;
}

/** Pairs in use (for lists). */
export function pairCount(): u32 {
  let n: u32 = 0;
  for (let p: u32 = 0; p < MAX_PAIRS; p++) if (rec(p).used != 0) n++;
  return n;
}
