// Remote pairs (docs/remote.md, "Remote pairs and their state"): a volume of this array joined to a
// volume of another array, through a relay or directly. Every channel IOP reads the table; a record
// is changed by the IOP that runs the command or the packet that changes it (in deterministic mode
// the IOPs are polled one after another; the issuing-ID counter is atomic for parallel mode).
//
// Model and fault assumptions. Both ends keep a record: the primary's drives what is sent and what a
// host WRITE's GOOD waits for; the secondary's makes its volume read-only to hosts until failover
// and orders what it applies by issuing ID (003 [0178]). The working records are in common memory;
// each is persisted in the NV region (nv.ts, NVT_REMOTE) in two copies, CRC-32C sealed, the change
// going to the copy the last persist did not use (as pair/table.ts does), so a torn write leaves the
// previous record whole. A REMOTE command that changes a record answers once the NV file holds it;
// a change the link makes (a suspend, copy to pair, a secondary's CREATE) is persisted by the next
// poll that finds room in the NV ring.
//
// What a restart (a kill -9) brings back (docs/remote.md, "Remote pairs and their state"): what the
// NV copy says, minus what cannot be known. The primary comes back suspended (reason `restart`,
// unless it was suspended already): its commands in flight are gone. Its issuing IDs never repeat:
// IDs are given out only below a lease the NV file holds (extended by LEASE_STEP, persisted before
// an ID would reach it), and the restarted primary goes on from the lease, so a retransmission from
// before the restart can never pass for a new write at the secondary. The secondary comes back
// suspended and refusing the link's writes until the primary's next CREATE (what it applied last is
// not persisted per write), read-only to hosts; a failover survives as it is (the volume is the hosts').
import { MAP_ADDR, MAP_REMOTE_TABLE, REMOTE_PAIRS_MAX, RPR_BYTES, RPR_STATE, RPR_IN_FLIGHT, MAX_VOLUMES, CONFIG_ADDR, CFG_REMOTE, CRM_NODE, CRM_LINKED, CRM_ROUTES, RELAY_MAX_NODES, TRACE_REMOTE_STATE } from "../abi";
import { gNow } from "../iop";
import { trace } from "../trace";
import { namesEqual } from "../util";
import { nvBase, nvPersistRange, nvRoom, nvId, seal, sealed, blank, newer, loadNewerCopy, NVK_NONE, NVK_REMOTE, REMOTE_NV_OFFSET, REMOTE_NV_BYTES, NVT_OFFSET, NVT_SIZE, NVT_RECORD } from "../nv";
import { crc32c } from "../comm/crc";
import { log, LOG_WARN } from "../hal";

export const REMOTE_PAIRS: u32 = REMOTE_PAIRS_MAX;
export const REMOTE_RECORD_BYTES: u32 = RPR_BYTES;
/** WRITEs a secondary keeps back until the ones before them (by issuing ID) are applied. */
export const HELD_MAX: u32 = 16;
export const HELD_BYTES: u32 = 64 + 8; // the packet header, then the port it came on
/** The configured node kinds (CFG_REMOTE + NODE_KINDS): a byte per node. */
export const NODE_KINDS: u32 = 192;
export const NODE_ARRAY: u32 = 1;
export const NODE_RELAY: u32 = 2;
export const NODE_NEIGHBOUR: u32 = 0x80; // in a node's kind byte: a link joins this array to it
/** The configured node names (CFG_REMOTE + NODE_NAMES): NODE_NAME_BYTES each. */
export const NODE_NAMES: u32 = 256;
export const NODE_NAME_BYTES: u32 = 32;
/** The peer volume's name travels in LPK_VOLUME: at most this many bytes. */
export const PEER_NAME_BYTES: u32 = 12;

// Roles
export const RR_PRIMARY: u8 = 1;
export const RR_SECONDARY: u8 = 2;
// States
export const RS_SIMPLEX: u8 = 0;
export const RS_COPY: u8 = 1; // initial copy running; host writes are sent as in RS_PAIR
export const RS_PAIR: u8 = 2; // duplex: every acknowledged host write is where the mode promises
export const RS_SUSPENDED: u8 = 3; // writes are local only (reason says why); resume copies again
export const RS_FAILOVER: u8 = 4; // secondary: the volume is the hosts' now, writable; nothing more is applied from the link
export const RS_CREATING: u8 = 5; // primary: CREATE sent, its answer awaited
// Why a pair is suspended
export const RSR_NONE: u8 = 0;
export const RSR_USER: u8 = 1;
export const RSR_LINK: u8 = 2; // no answer within timeoutMs x (retries + 1)
export const RSR_REMOTE: u8 = 3; // the secondary refused a write (failed over, deleted, not ready)
export const RSR_RELAY: u8 = 4; // the relay had a write but could not forward it (FORWARDED with an error, or none in time)
export const RSR_READ: u8 = 5; // the initial copy could not read the primary volume
export const RSR_RESTART: u8 = 6; // the array restarted (its commands in flight were lost); resume copies again
export const RSR_JOURNAL: u8 = 7; // async: the journal was full; what it could not hold is in the difference bitmap (remote/async.ts)
// Modes
export const RM_MIRROR: u8 = 1; // embodiment 3: a mirror the hosts read after failover
export const RM_BACKUP: u8 = 2; // embodiment 1: a backup copy (also readable after failover)
export const RM_DELAYED: u8 = 3; // embodiment 7: the standby holds writes until a restart enabling point (remote/standby.ts)
export const RM_ASYNC: u8 = 4; // 004: GOOD on local cache and NV; the journal sends in issuing-ID order (remote/async.ts)
export const RM_SNAPSHOT: u8 = 5; // embodiment 8: a redirect-on-write standby at its last restart enabling point (remote/snaplink.ts)
/** Record byte 192, u64 (secondary): the primary's capacity in blocks, from its CREATE (a snapshot pair's logical blocks, remote/snaplink.ts). */
export const RPR_PEER_BLOCKS: u32 = 192;

@unmanaged export class RemotePair {
  used: u8;
  role: u8; // RR_*
  state: u8; // RS_*
  reason: u8; // RSR_*
  mode: u8; // RM_*
  viaRelay: u8; // 1: the first hop is a relay (GOOD at its RECEIVED, S169; FORWARDED is awaited after)
  retries: u8;
  broken: u8; // secondary: an apply failed; every later WRITE is refused until the pair is created again
  volume: u16; // the local volume
  peerNode: u16; // the other array
  firstHop: u16; // the node packets go to first (the relay, or the peer)
  copyIop: u16; // primary: the channel IOP that runs the initial copy
  issued: u32; // primary: the last issuing ID given out; secondary: the last one applied
  syncId: u32;
  timeoutUs: u32;
  inFlight: u32; // primary: remote commands in flight
  copyNext: u64; // primary: next byte of the volume the initial copy sends
  copyDone: u64; // bytes of the copy acknowledged
  copyTotal: u64; // bytes of the volume
  changedNs: f64; // when the state last changed (virtual time in deterministic mode)
  writes: u64; // host writes sent / writes applied
  bytes: u64;
  failCmd: u32; // the command identifier of the write that suspended the pair
  serial: u32; // bumped at create: answers for an older incarnation are dropped
  peerVolume0: u32; // the peer's volume name, PEER_NAME_BYTES, NUL padded
  peerVolume1: u32;
  peerVolume2: u32;
  copyActive: u32; // copy commands in flight
  gen: u32; // NV copy generation: copy gen & 1, the newer whole copy counts
  lease: u32; // primary: every issuing ID given out is below it (persisted before an ID may reach it)
  // Volatile (in the NV copies too, cleared at boot):
  leaseDurable: u32; // primary: the lease the NV file holds: IDs are given out only below it
  nvDue: u8; // 1: the record changed since its last persist
  leaseBusy: u8; // 1: a persist of a longer lease is in flight (NVK_REMOTE)
  // Persisted (version 8 records end here, at byte 120: nv.ts, remoteNvUpgrade):
  rdData: u8; // 118, primary: N of redundancy-processed writes (embodiments 5, 6; remote/rdlink.ts); 0: none
  rdParity: u8; // 119, primary: m, the parity parts of each block
  // Persisted since version 9: the route over several relays (remote/route.ts, embodiment 4).
  routePolicy: u8; // 120, RP_*
  routeCount: u8; // 121, relays named (0: direct; firstHop is the first)
  routeRelays: u32; // 124, their node numbers, a byte each, first in the low byte
  // Persisted since version 9 (004, remote/async.ts):
  group: u8; // 128, consistency group (0: none): its pairs share one issuing-ID order at both ends
  trackShift: u8; // 129, primary: a difference-bitmap track is 1 << trackShift bytes
  // Volatile:
  diffDirty: u8; // 130, primary: a bit of the difference bitmap was set since it was last cleared
  reserved2: u8; // 131
  queued: u16; // 132, primary, async: journal entries not yet acknowledged
  // Bytes 134 to 251 are free for more fields (added at the end); the CRC-32C is at 252.
}
/** The record's CRC-32C, in the working record unused, in each NV copy over the bytes before it. */
const RPR_CRC: u32 = RPR_BYTES - 4;
/** How far a lease reaches past the last issuing ID; it is extended when half is used. */
export const LEASE_STEP: u32 = 4096;
/** IDs kept free below the durable lease: channel IOPs that passed the check at once (parallel mode). */
const LEASE_SLACK: u32 = 64;

const MAPX_REMOTE: u32 = MAP_REMOTE_TABLE;
// The harness reads these fields (harness/network.ts: a pair that creates, copies or has commands in flight keeps time running).
// @ts-ignore: decorator
@inline function layoutAssumed(): bool {
  return offsetof<RemotePair>("state") == RPR_STATE && offsetof<RemotePair>("inFlight") == RPR_IN_FLIGHT && offsetof<RemotePair>() <= RPR_CRC
    && offsetof<RemotePair>("routePolicy") == RPR_V8_FIELDS; // what version 8 persisted ends where the route begins
}

/** remote/route.ts's volatile state per pair (the round robin cursor, the sets in flight), after the held WRITEs. */
export const ROUTE_STATE_BYTES: u32 = 512;
/** 004's journal (remote/async.ts): entries and their data in buffer memory, after the route states. */
export const JOURNAL_ENTRIES: u32 = 128;
export const JOURNAL_ENTRY_BYTES: u32 = 32;
export const JOURNAL_HEADER_BYTES: u32 = 320; // ring counters, then per pair when it last went idle (f64), its last CREATE's base, its writes open (u32)
export const JOURNAL_DATA_BYTES: u32 = 2 << 20;
const JOURNAL_BYTES: u32 = JOURNAL_HEADER_BYTES + JOURNAL_ENTRIES * JOURNAL_ENTRY_BYTES + JOURNAL_DATA_BYTES;
const PAIRS_AREA: u32 = REMOTE_PAIRS_MAX * (RPR_BYTES + HELD_MAX * HELD_BYTES + ROUTE_STATE_BYTES);

export function remoteStateBytes(): usize { return <usize>PAIRS_AREA + (linked() ? <usize>JOURNAL_BYTES : 0); }
/** The journal's header (remote/async.ts); only an array that ends a link has one. */
export function remoteJournalAt(): usize { return base() + <usize>PAIRS_AREA; }
export function remoteLayout(at: usize): void {
  assert(layoutAssumed(), "remote: RemotePair does not match RPR_* of abi.ts");
  store<u32>(MAP_ADDR + MAPX_REMOTE, <u32>at);
  memory.fill(at, 0, remoteStateBytes());
}

// @ts-ignore: decorator
@inline function base(): usize { return load<u32>(MAP_ADDR + MAPX_REMOTE); }
// @ts-ignore: decorator
@inline export function remoteAt(p: u32): usize { return base() + <usize>p * REMOTE_RECORD_BYTES; }
// @ts-ignore: decorator
@inline export function remote(p: u32): RemotePair { return changetype<RemotePair>(remoteAt(p)); }
/** Held WRITE h of pair p: the header (64 bytes), then the port (u32) and a used flag (u32). */
export function heldAt(p: u32, h: u32): usize {
  return base() + <usize>REMOTE_PAIRS * REMOTE_RECORD_BYTES + (<usize>p * HELD_MAX + h) * HELD_BYTES;
}

/** Pair p's route state (remote/route.ts). */
export function routeStateAt(p: u32): usize {
  return base() + <usize>REMOTE_PAIRS * (REMOTE_RECORD_BYTES + HELD_MAX * HELD_BYTES) + <usize>p * ROUTE_STATE_BYTES;
}

/** This array's node number, and whether it ends any link. */
export function myNode(): u32 { return <u32>load<u16>(CONFIG_ADDR + CFG_REMOTE + CRM_NODE); }
export function linked(): bool { return load<u16>(CONFIG_ADDR + CFG_REMOTE + CRM_LINKED) != 0; }
/** The link (topology index) to send on toward node n, or 0xFFFF. */
export function routeTo(n: u32): u32 { return n < RELAY_MAX_NODES ? <u32>load<u16>(CONFIG_ADDR + CFG_REMOTE + CRM_ROUTES + n * 2) : 0xFFFF; }
/** The node whose name is at `name` (NUL-terminated, at most 31 bytes), or -1. */
export function nodeByName(name: usize): i32 {
  for (let n: u32 = 0; n < RELAY_MAX_NODES; n++) {
    const at = CONFIG_ADDR + CFG_REMOTE + NODE_NAMES + n * NODE_NAME_BYTES;
    if (load<u8>(at) != 0 && namesEqual(at, name, NODE_NAME_BYTES)) return <i32>n;
  }
  return -1;
}

/** The remote pair whose local volume is v, or -1. */
export function remoteOfVolume(v: u32): i32 {
  if (v >= MAX_VOLUMES) return -1;
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) if (remote(p).used != 0 && <u32>remote(p).volume == v) return <i32>p;
  return -1;
}

export function remoteFree(): i32 {
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) if (remote(p).used == 0) return <i32>p;
  return -1;
}

/** Moves pair p to `state` (with `reason`), recording when and leaving a trace record. */
export function remoteSetState(p: u32, state: u8, reason: u8): void {
  const r = remote(p);
  if (r.state == state && r.reason == reason) return;
  r.state = state;
  r.reason = reason;
  r.changedNs = gNow;
  r.nvDue = 1;
  trace(TRACE_REMOTE_STATE, p, <u32>state, <u32>reason, r.issued);
}

/** Record p empty (a new pair in it), keeping its serial and NV generation. */
export function remoteReset(p: u32): RemotePair {
  const r = remote(p);
  const serial = r.serial;
  const gen = r.gen;
  memory.fill(remoteAt(p), 0, REMOTE_RECORD_BYTES);
  r.serial = serial;
  r.gen = gen;
  return r;
}

/** Frees record p (delete); the NV file is told with the next persist. */
export function remoteRelease(p: u32): void {
  const r = remote(p);
  r.used = 0;
  r.nvDue = 1;
}

// ---- NV: the record's two copies --------------------------------------------------------------------

// @ts-ignore: decorator
@inline function nvCopy(p: u32, copy: u32): usize { return nvBase() + REMOTE_NV_OFFSET + (<usize>p * 2 + copy) * REMOTE_RECORD_BYTES; }

/** Persists record p into its other NV copy. Needs 1 free NV entry (false: the ring was full). */
export function remotePersist(p: u32, id: u32): bool {
  const r = remote(p);
  r.gen = r.gen + 1;
  r.nvDue = 0;
  const copy = nvCopy(p, r.gen & 1);
  memory.copy(copy, remoteAt(p), REMOTE_RECORD_BYTES);
  seal(copy, RPR_CRC);
  if (nvPersistRange(copy, REMOTE_RECORD_BYTES, id)) return true;
  r.nvDue = 1;
  return false;
}

/** Persists every record changed by the link since its last persist, while the NV ring has room. */
export function remotePersistDue(): i32 {
  let work: i32 = 0;
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) {
    // A create or delete waiting for the secondary's answer is persisted by the command once answered.
    if (remote(p).nvDue == 0 || remote(p).state == RS_CREATING) continue;
    if (!nvRoom(1) || !remotePersist(p, nvId(NVK_NONE, 0))) break;
    work++;
  }
  return work;
}

/**
 * May pair p give out another issuing ID now? Only below the lease the NV file holds; when half of
 * it is used a longer one is persisted (NVK_REMOTE: remoteNvDone makes it count). False: wait (the
 * caller's wait is bounded by the pair's timeout, like a send that finds no context).
 */
export function remoteLeaseReady(p: u32): bool {
  const r = remote(p);
  if (r.leaseBusy == 0 && r.issued + LEASE_STEP / 2 >= r.leaseDurable && nvRoom(1)) {
    r.lease = r.issued + LEASE_STEP;
    r.leaseBusy = 1;
    if (!remotePersist(p, nvId(NVK_REMOTE, p))) r.leaseBusy = 0;
  }
  return r.issued + LEASE_SLACK < r.leaseDurable;
}

/** The NV completion of a lease persist of pair p: the lease counts once the file holds it. */
export function remoteNvDone(p: u32, status: u32): void {
  if (p >= REMOTE_PAIRS) return;
  const r = remote(p);
  r.leaseBusy = 0;
  if (status == 0 && newer(r.lease, r.leaseDurable)) r.leaseDurable = r.lease;
}

/** NV version 8's records: 128 bytes, the fields in the first RPR_V8_FIELDS, the CRC-32C at 124. */
const RPR_V8_BYTES: u32 = 128;
const RPR_V8_FIELDS: u32 = 120;

/** Directory entry t (0: none) is version 8's remote table: at this table's place, records of 128 bytes. */
export function remoteNvNarrow(t: usize): bool {
  return t != 0 && load<u32>(t + NVT_OFFSET) == REMOTE_NV_OFFSET && load<u32>(t + NVT_RECORD) == RPR_V8_BYTES
    && load<u32>(t + NVT_SIZE) == REMOTE_PAIRS * 2 * RPR_V8_BYTES;
}

/**
 * Boot, a version 8 image (after its init map moved out of the grown table's place): every copy of
 * every record widened in place to RPR_BYTES, the last first (each moves up, past the ones before
 * it): its fields kept, the rest zero (no route: direct or one relay, all version 8 knew), sealed
 * again when it was whole; a torn copy stays torn (its body kept, a CRC that does not match), so
 * loadNewerCopy still picks the older whole one. Persisted whole.
 */
export function remoteNvUpgrade(): void {
  const at = nvBase() + REMOTE_NV_OFFSET;
  for (let i: i32 = <i32>(REMOTE_PAIRS * 2) - 1; i >= 0; i--) {
    const from = at + <usize>i * RPR_V8_BYTES;
    const to = at + <usize>i * REMOTE_RECORD_BYTES;
    const empty = blank(from, RPR_V8_BYTES);
    const whole = sealed(from, RPR_V8_BYTES - 4);
    memory.copy(to, from, RPR_V8_FIELDS);
    memory.fill(to + RPR_V8_FIELDS, 0, REMOTE_RECORD_BYTES - RPR_V8_FIELDS);
    if (empty) continue;
    const crc = crc32c(to, RPR_CRC, 0);
    store<u32>(to + RPR_CRC, whole ? crc : ~crc);
  }
  nvPersistRange(at, REMOTE_NV_BYTES, nvId(NVK_NONE, 0));
}

/** A blank remote table in NV (a new image, or one from before remote pairs): persisted empty. */
export function remoteNvFormat(): void {
  memory.fill(nvBase() + REMOTE_NV_OFFSET, 0, REMOTE_NV_BYTES);
  nvPersistRange(nvBase() + REMOTE_NV_OFFSET, REMOTE_NV_BYTES, nvId(NVK_NONE, 0));
}

/**
 * Boot: every record's newer whole NV copy, with what a restart cannot keep taken out (the model
 * above). A record neither copy of which is whole was torn at its first persist and is dropped, and
 * said so. Returns the pairs recovered.
 */
export function remoteBoot(): u32 {
  let n: u32 = 0;
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) {
    const got = loadNewerCopy(nvCopy(p, 0), nvCopy(p, 1), REMOTE_RECORD_BYTES, offsetof<RemotePair>("gen"), remoteAt(p));
    if (got < 0) log(LOG_WARN, "remote: a remote pair record failed its CRC in both copies and was dropped (pair)", p, 0);
    if (got <= 0) continue;
    const r = remote(p);
    r.inFlight = 0;
    r.copyActive = 0;
    r.copyNext = 0;
    r.copyDone = 0;
    r.nvDue = 0;
    r.leaseBusy = 0;
    r.queued = 0; // the journal was in volatile buffer memory: its writes' tracks are in the difference bitmap
    r.diffDirty = 1;
    if (r.used == 0) continue;
    n++;
    if (r.role == RR_PRIMARY) {
      r.issued = r.lease; // every ID before the restart was below it
      r.leaseDurable = r.lease;
      if (r.state != RS_SUSPENDED) remoteSetState(p, RS_SUSPENDED, RSR_RESTART);
    } else if (r.state != RS_FAILOVER) {
      r.broken = 1; // what it applied last is not known: the link's writes wait for the next CREATE
      remoteSetState(p, RS_SUSPENDED, RSR_RESTART);
    }
  }
  return n;
}

/** Suspends a primary pair that is sending (copy or pair), naming why and which command. */
export function remoteSuspend(p: u32, reason: u8, cmdId: u32): void {
  const r = remote(p);
  if (r.role != RR_PRIMARY || (r.state != RS_PAIR && r.state != RS_COPY)) return;
  r.failCmd = cmdId;
  remoteSetState(p, RS_SUSPENDED, reason);
  // A consistency group suspends as one: the issuing IDs this pair leaves unsent are gaps that the
  // secondary would hold every later write of the group behind (remote/async.ts).
  if (r.group == 0) return;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (q != p && sameGroup(p, q)) remoteSuspend(q, reason, cmdId);
}

/** Are p and q pairs of the same consistency group, the same role and peer? */
export function sameGroup(p: u32, q: u32): bool {
  const a = remote(p);
  const b = remote(q);
  return a.group != 0 && b.used != 0 && a.used != 0 && b.group == a.group && b.role == a.role && b.peerNode == a.peerNode;
}

/** Hosts may write volume v: not while it is the secondary of a pair that has not failed over. */
export function remoteWriteAllowed(v: u32): bool {
  const p = remoteOfVolume(v);
  return p < 0 || remote(<u32>p).role != RR_SECONDARY || remote(<u32>p).state == RS_FAILOVER;
}

/**
 * The next issuing ID of pair p (003 [0178]): +1 for every command the pair issues. The pairs of a
 * consistency group share one order: the ID is one past the highest any of them gave out, and every
 * member's counter moves to it (so each member's lease covers it; remoteLeaseReady checks them all).
 */
export function remoteIssue(p: u32): u32 {
  if (remote(p).group == 0) return atomic.add<u32>(remoteAt(p) + offsetof<RemotePair>("issued"), 1) + 1;
  let id = remote(p).issued;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (sameGroup(p, q) && newer(remote(q).issued, id)) id = remote(q).issued;
  id++;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (q == p || sameGroup(p, q)) remote(q).issued = id;
  return id;
}

/** remoteLeaseReady for p and, in a consistency group, for every member (they share the IDs). */
export function remoteLeaseReadyAll(p: u32): bool {
  let ok = remoteLeaseReady(p);
  if (remote(p).group == 0) return ok;
  for (let q: u32 = 0; q < REMOTE_PAIRS; q++) if (q != p && sameGroup(p, q) && !remoteLeaseReady(q)) ok = false;
  return ok;
}
