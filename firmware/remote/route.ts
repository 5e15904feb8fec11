// Several relays between a primary and its secondary (document 003, embodiment 4; docs/remote.md,
// "Several relays"). A primary pair may name up to ROUTE_MAX relays (`--via r1,r2,...`) and a
// policy; every send command of the pair goes to the first hop this unit picks:
//
//   round robin, least loaded, random (S201, [0100]): one relay per send command — in turn; the one
//     with the fewest commands in flight (this array's sends toward it, or what the relay last
//     reported holding for everyone, whichever is more: "not used for other data transfer"); or by
//     the IOP's PRNG (seeded from the run's seed in deterministic mode, so one seed, one choice).
//   stripe (Figs. 10-12, S220-S227): one host write's window is cut into one portion per relay, all
//     sent at once (S221/S240-S244), each its own command with its own issuing ID; the host's GOOD
//     waits for every portion's RECEIVED (S225/S226). A relay that fails its portion fails the write.
//   all ([0109]-[0113]): the same window to every relay as copies with ONE issuing ID (003's
//     identifier of the set); the host's GOOD at the first RECEIVED ([0111]: later answers change
//     nothing), and the secondary applies the issuing ID once and answers the later copies again
//     ([0112]: link.ts's incomingWrite). A copy that fails suspends the pair only when no copy of its
//     set got through and none is still under way: one dead relay costs nothing.
//
// The relay list and policy are persisted with the pair (RemotePair.routePolicy/routeCount/
// routeRelays); the cursor and the sets in flight are volatile, in ROUTE_STATE_BYTES per pair after
// the held WRITEs (remote/pair.ts lays them out).
import { MAP_ADDR, MAP_RELAY_COUNT, MAP_RELAY_TABLE, RELAY_STATUS_MAX, RLS_BYTES, RLS_NODE, RLS_ACTIVE, LOP_NONE, RELAY_MAX_NODES } from "../abi";
import { CX_ARG, CX_FIRST_SLOT, CX_ID, ctxById } from "../ctx";
import { prngNext } from "../prng";
import { remote, routeStateAt, nodeByName, ROUTE_STATE_BYTES } from "./pair";
import { linkSendVia, linkPortToward, linkSendsOn, linkIssuingOf } from "../comm/link";

/** Relays a pair may name. */
export const ROUTE_MAX: u32 = 4;
// Policies (RemotePair.routePolicy): the numbers travel in REMOTE CREATE's byte 86 and REMOTE STATUS.
export const RP_ONE: u8 = 0; // one first hop (a relay or the peer): embodiments 1-3
export const RP_ROUND_ROBIN: u8 = 1;
export const RP_LEAST_LOADED: u8 = 2;
export const RP_RANDOM: u8 = 3;
export const RP_STRIPE: u8 = 4;
export const RP_ALL: u8 = 5;
export const RP_LAST: u8 = 5;

/** Sets (stripes or copies of one write) a pair can have in flight at once. */
const SETS: u32 = 24;
const SET_BYTES: u32 = 16;
const RS_CURSOR: u32 = 0; // u32: round robin's next relay
const RS_SETS: u32 = 16;

@unmanaged class RouteSet {
  key: u32; // the CX_ID of the set's first command: the parent's CX_ARG, each member's group (0: free)
  copies: u8; // members sent
  ended: u8; // members ended
  doneOk: u8; // members that ended well
  told: u8; // 1: the parent has been told
  policy: u8;
  oks: u8; // stripe: portions whose RECEIVED came
}

// @ts-ignore: decorator
@inline function setAt(p: u32, i: u32): RouteSet { return changetype<RouteSet>(routeStateAt(p) + RS_SETS + <usize>i * SET_BYTES); }

function setOf(p: u32, key: u32): RouteSet | null {
  if (key == 0) return null;
  for (let i: u32 = 0; i < SETS; i++) { const s = setAt(p, i); if (s.key == key) return s; }
  return null;
}

// @ts-ignore: decorator
@inline function layoutAssumed(): bool { return RS_SETS + SETS * SET_BYTES <= ROUTE_STATE_BYTES && offsetof<RouteSet>() <= SET_BYTES; }

/** Relay i (0-based) of pair p's route. */
export function routeRelay(p: u32, i: u32): u32 { return (remote(p).routeRelays >> (i * 8)) & 0xFF; }

/**
 * REMOTE CREATE's relay field: names separated by commas (NUL-terminated at `list`, at most 31
 * bytes). Stores them in pair p's record; returns the first (the first hop of controls), or -1 when a
 * name is no relay, is repeated or there are more than ROUTE_MAX.
 */
export function routeParse(p: u32, list: usize, policy: u32, scratch: usize): i32 {
  assert(layoutAssumed(), "route: ROUTE_STATE_BYTES too small");
  const r = remote(p);
  let count: u32 = 0;
  let relays: u32 = 0;
  let at: usize = list;
  for (;;) {
    let n: usize = 0;
    while (load<u8>(at + n) != 0 && load<u8>(at + n) != 0x2C) n++; // ','
    if (n == 0 || n >= 32 || count == ROUTE_MAX) return -1;
    memory.fill(scratch, 0, 32);
    memory.copy(scratch, at, n);
    const node = nodeByName(scratch);
    if (node < 0 || <u32>node >= RELAY_MAX_NODES) return -1;
    for (let i: u32 = 0; i < count; i++) if (((relays >> (i * 8)) & 0xFF) == <u32>node) return -1;
    relays |= <u32>node << (count * 8);
    count++;
    if (load<u8>(at + n) == 0) break;
    at += n + 1;
  }
  r.routeRelays = relays;
  r.routeCount = <u8>count;
  r.routePolicy = <u8>(count == 1 && policy == 0 ? RP_ONE : policy == 0 ? RP_ROUND_ROBIN : policy);
  return <i32>(relays & 0xFF);
}

/** Is node n a first hop of pair p (a relay of its route, or its only first hop)? */
export function routeHas(p: u32, n: u32): bool {
  const r = remote(p);
  if (<u32>r.firstHop == n) return true;
  for (let i: u32 = 0; i < <u32>r.routeCount; i++) if (routeRelay(p, i) == n) return true;
  return false;
}

/** The first hop for one command of pair p under its policy (stripe and all pick per portion: round robin). */
export function routeHop(p: u32): u32 {
  const r = remote(p);
  const n = <u32>r.routeCount;
  if (n <= 1) return <u32>r.firstHop;
  if (r.routePolicy == RP_RANDOM) return routeRelay(p, <u32>(prngNext() % <u64>n));
  if (r.routePolicy == RP_LEAST_LOADED) {
    let best: u32 = routeRelay(p, 0);
    let bestLoad: u32 = 0xFFFFFFFF;
    for (let k: u32 = 0; k < n; k++) {
      const i = (cursorNext(p, 0) + k) % n; // ties go round, not always to the first
      const load = relayLoad(routeRelay(p, i));
      if (load < bestLoad) { bestLoad = load; best = routeRelay(p, i); }
    }
    cursorNext(p, 1);
    return best;
  }
  const i = cursorNext(p, 1) % n;
  return routeRelay(p, i);
}

function cursorNext(p: u32, step: u32): u32 {
  const at = routeStateAt(p) + RS_CURSOR;
  const v = load<u32>(at);
  store<u32>(at, v + step);
  return v;
}

/** A relay's load: this array's sends toward it, or what it last reported holding (RELAY STATUS), the more. */
function relayLoad(node: u32): u32 {
  const port = linkPortToward(node);
  let own: u32 = port < 0 ? 0xFFFFFFF : linkSendsOn(<u32>port);
  const count = min<u32>(load<u32>(MAP_ADDR + MAP_RELAY_COUNT), RELAY_STATUS_MAX);
  for (let i: u32 = 0; i < count; i++) {
    const e = MAP_ADDR + MAP_RELAY_TABLE + i * RLS_BYTES;
    if (<u32>load<u16>(e + RLS_NODE) == node) own = max<u32>(own, load<u32>(e + RLS_ACTIVE));
  }
  return own;
}

/**
 * A host write's next send (remote/mirror.ts, ST_REMOTE): bytes [next, end) of pair p's volume, of
 * which at most `most` go now. Starts one command, a stripe or a set of copies, records the bytes
 * taken in the parent's CX_FIRST_SLOT (512-byte units) and returns what the parent waits for (its
 * CX_ARG: a command's CX_ID, or its set's key); 0 when nothing could start now.
 */
export function routeSend(c: usize, p: u32, next: u64, end: u64, most: u32, flags: u32): u32 {
  const r = remote(p);
  const parent = load<u32>(c + CX_ID);
  const policy = r.routePolicy;
  const n = <u32>r.routeCount;
  if ((policy != RP_STRIPE && policy != RP_ALL) || n <= 1) {
    const bytes = <u32>min<u64>(<u64>most, end - next);
    const id = linkSendVia(p, routeHop(p), LOP_NONE, next, bytes, parent, flags, 0, 0);
    if (id != 0) store<u32>(c + CX_FIRST_SLOT, <u32>((next + <u64>bytes) >> 9));
    return id;
  }
  let slot: i32 = -1;
  for (let i: u32 = 0; i < SETS; i++) if (setAt(p, i).key == 0) { slot = <i32>i; break; }
  if (slot < 0) return 0; // every set busy: wait (bounded by the parent's deadline)
  const s = setAt(p, <u32>slot);
  const first = cursorNext(p, 1);
  // Stripe: the portion per relay, in whole 8 KiB units (send commands start at 8 KiB boundaries).
  const span = min<u64>(<u64>most * <u64>n, end - next);
  const portion = policy == RP_STRIPE ? <u32>(((span + <u64>n - 1) / <u64>n + 8191) & ~(<u64>8191)) : <u32>min<u64>(<u64>most, end - next);
  let at = next;
  let key: u32 = 0;
  let issuing: u32 = 0;
  let copies: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    if (policy == RP_STRIPE && at >= next + span) break;
    const bytes = policy == RP_STRIPE ? <u32>min<u64>(<u64>portion, next + span - at) : portion;
    const hop = routeRelay(p, (first + k) % n);
    const id = linkSendVia(p, hop, LOP_NONE, policy == RP_STRIPE ? at : next, bytes, parent, flags, policy == RP_ALL ? issuing : 0, key == 0 ? 0xFFFFFFFF : key);
    if (id == 0) { if (policy == RP_STRIPE) break; else continue; }
    if (key == 0) { key = id; issuing = linkIssuingOf(id); s.key = key; s.copies = 0; s.ended = 0; s.doneOk = 0; s.told = 0; s.oks = 0; s.policy = policy; }
    s.copies++;
    copies++;
    if (policy == RP_STRIPE) at += <u64>bytes;
  }
  if (copies == 0) { s.key = 0; return 0; }
  store<u32>(c + CX_FIRST_SLOT, <u32>((policy == RP_STRIPE ? at : next + <u64>portion) >> 9));
  return key;
}

/** Does the parent still wait on something alive for `arg` (a command's CX_ID or a set's key)? */
export function routeWaiting(p: u32, arg: u32): bool {
  return ctxById(arg) != 0 || setOf(p, arg) != null;
}

/**
 * A member of set `key` of pair p has something to tell its parent (ok: RECEIVED good through a
 * relay, or the command ended well; not ok: it failed). Returns 1 to tell the parent ok, 2 to tell
 * it failed, 0 to tell it nothing yet.
 */
export function routeTell(p: u32, key: u32, ok: bool): u32 {
  const s = setOf(p, key);
  if (s == null) return ok ? 1 : 2;
  if (s.told != 0) return 0;
  if (s.policy == RP_ALL) {
    if (ok) { s.told = 1; return 1; } // [0111]: the first answer of the set
    if (<u32>s.ended + 1 >= <u32>s.copies && s.doneOk == 0) { s.told = 1; return 2; } // every copy failed (this one ends next)
    return 0;
  }
  if (!ok) { s.told = 1; return 2; } // a stripe's portion failed: the write failed
  // A stripe is told once every portion has its RECEIVED (S225/S226).
  s.oks++;
  if (<u32>s.oks >= <u32>s.copies) { s.told = 1; return 1; }
  return 0;
}

/**
 * Is a failure of a member of set `key` (before it ends) the pair's? Always for a stripe or a lone
 * command; for copies only when no copy got through and none other is under way.
 */
export function routeFailureCounts(p: u32, key: u32): bool {
  const s = setOf(p, key);
  if (s == null || s.policy != RP_ALL) return true;
  return s.doneOk == 0 && <u32>s.ended + 1 >= <u32>s.copies;
}

/** A member of set `key` ends (ok or not); the set is free once all have. */
export function routeEnded(p: u32, key: u32, ok: bool): void {
  const s = setOf(p, key);
  if (s == null) return;
  if (ok) s.doneOk++;
  s.ended++;
  if (<u32>s.ended >= <u32>s.copies) s.key = 0;
}

/** Whether a successful end of this member is the first of its set (the pair counts one write per set). */
export function routeFirstOk(p: u32, key: u32): bool {
  const s = setOf(p, key);
  return s == null || s.policy != RP_ALL || s.doneOk == 0;
}
