// Vendor-unique remote-pair commands of the command device (docs/scsi.md, "Remote pairs"): REMOTE
// CREATE, REMOTE CHANGE (suspend, resume, failover, delete) and REMOTE STATUS. A create or resume asks
// the secondary first (a CREATE control through the link, remote/pair.ts) and answers once it has
// said yes — or with what it said no with — within the pair's bound; then the initial copy runs
// (remote/mirror.ts) and `remote status` shows it.
import {
  MAX_VOLUMES, LOP_CREATE, LOP_DELETE, LOP_REFLECT, CONFIG_ADDR, CFG_REMOTE, RELAY_MAX_NODES, MAP_ADDR, MAP_RELAY_COUNT, MAP_RELAY_TABLE,
  RELAY_STATUS_MAX, RLS_BYTES, RLS_NODE,
} from "../abi";
import { CX_ID, CX_ARG, CX_FLAGS, CX_STATE, CX_CDB, CX_FIRST_SLOT, ctxField } from "../ctx";
import { fail, good, dataInBuffer, sendBuffer, retryLater, waitPersisted, nvPending, waitExpired } from "../sequencer";
import { nvRoom, nvId, NVK_CONTEXT, NVK_NONE } from "../nv";
import { gIndex } from "../iop";
import { volumeInUse, blockSize, capacityBlocks } from "../volume";
import { getBe16, getBe32, putBe16, putBe32, putBe64 } from "../util";
import { linkSend, linkPortToward, CXF_REMOTE_DONE, CXF_REMOTE_FAILED } from "../comm/link";
import { ST_REMOTE } from "../remote/mirror";
import { rdCreateAllowed } from "../remote/rdlink";
import { routeParse, routeRelay, RP_LAST } from "../remote/route";
import { scratch } from "../channel";
import { standbyFailover, standbyRestartable } from "../remote/standby";
import { snapLinkFailover } from "../remote/snaplink";
import { diffAll, diffBytes, diffCount, diffShift, journalQueued, journalBytes, journalHighWater, journalFullSuspends, heldEarlyCount } from "../remote/async";
import {
  remote, remoteOfVolume, remoteSetState, remoteReset, remoteRelease, remotePersist, myNode, linked, nodeByName, REMOTE_PAIRS, PEER_NAME_BYTES, RR_PRIMARY,
  RR_SECONDARY, RS_PAIR, RS_COPY, RS_SUSPENDED, RS_FAILOVER, RS_CREATING, RSR_USER, RSR_NONE, RM_MIRROR, RM_BACKUP, RM_DELAYED, RM_ASYNC, RM_SNAPSHOT, remoteSuspend,
  NODE_KINDS, NODE_ARRAY, NODE_RELAY, NODE_NEIGHBOUR, NODE_NAMES, NODE_NAME_BYTES, RemotePair,
} from "../remote/pair";

export const SA_REMOTE_CREATE: u32 = 0x0E;
export const SA_REMOTE_CHANGE: u32 = 0x0F;
export const SA_REMOTE_STATUS: u32 = 0x18;
export const SA_RELAY_STATUS: u32 = 0x19;
export const REMOTE_CREATE_LIST_BYTES: u32 = 96;
const STATUS_ENTRY_BYTES: u32 = 96;
// REMOTE CHANGE operations (CDB byte 14).
export const RC_SUSPEND: u32 = 1;
export const RC_RESUME: u32 = 2;
export const RC_FAILOVER: u32 = 3;
export const RC_DELETE: u32 = 4;
/** A restart enabling point (003 embodiment 7, S440/S441): the pair's delay data reflecting command. */
export const RC_RESTART_POINT: u32 = 5;
/** What a pair waits for a create or resume answer at most when the list gives no timeout. */
const DEFAULT_TIMEOUT_MS: u32 = 50;
const DEFAULT_RETRIES: u32 = 5;

// Vendor ASCQs under ASC 86h (ILLEGAL REQUEST). 00h-04h are the secondary's answers (comm/link.ts).
const RE_NO_PAIR: u32 = 0x10; // the volume is in no remote pair
const RE_IN_PAIR: u32 = 0x11; // the volume is in a remote pair already
const RE_STATE: u32 = 0x12; // the pair's state (or role) does not allow this
const RE_TABLE_FULL: u32 = 0x13;
const RE_NODE: u32 = 0x14; // the peer or relay is not a node of that kind, or no link leads to it
const RE_NAME: u32 = 0x15; // the peer volume name is empty or longer than 12 bytes
const RE_NO_VOLUME: u32 = 0x16;
const RE_NOT_LINKED: u32 = 0x17; // this array ends no link
const RE_REDUNDANCY: u32 = 0x18; // N+m out of range, through a relay, or no link of this IOP reaches the peer
const RE_REFLECT_WAIT: u32 = 0x19; // (ABORTED COMMAND) a failover waited longer than FAILOVER_WAIT_NS for the reflect being written
const RE_HOME_WAIT: u32 = 0x1A; // (ABORTED COMMAND) a snapshot standby's move home did not end within SNAP_MOVE_WAIT_NS, or failed (remote/snaplink.ts)
const RE_SNAP_IMAGE: u32 = 0x1B; // (MEDIUM ERROR) after a restart neither place of a snapshot standby's image was whole (or no unit): the volume is not served
/** S484: a failover waits this long for the reflect in progress to reach the volume. */
const FAILOVER_WAIT_NS: f64 = 10e9;

function remoteError(c: usize, ascq: u32, field: i32, inCdb: bool): void {
  fail(c, 0x05, 0x86, ascq);
  if (field >= 0) ctxField(c, inCdb, <u32>field, -1);
}

/**
 * REMOTE CREATE: list bytes 0-1 volume, 2 mode (1 mirror, 2 backup), 3 retries (0: 5), 4-7 timeout
 * in ms (0: 50), 8-39 the peer array's name, 40-71 the relay's name (empty: direct), 72-83 the
 * peer volume's name (NUL padded, at most 12 bytes), 84 N and 85 m of redundancy-processed writes
 * (embodiments 5, 6; both 0: none; direct only, over the links that reach the peer: remote/rdlink.ts),
 * 86 the route policy over several relays named in 40-71 by commas (embodiment 4; 0: round robin,
 * or the one relay: remote/route.ts), 88 the consistency group (0: none; 1-255 needs mode 4, async:
 * its pairs share one issuing-ID order, remote/async.ts). Mode 4's journal sends neither
 * redundancy-processed nor over several relays (one relay, store and forward, is fine).
 */
export function remoteCreate(c: usize, list: usize): void {
  if (!linked()) { remoteError(c, RE_NOT_LINKED, -1, false); return; }
  const v = getBe16(list);
  if (v >= MAX_VOLUMES || !volumeInUse(v)) { remoteError(c, RE_NO_VOLUME, 0, false); return; }
  if (remoteOfVolume(v) >= 0) { remoteError(c, RE_IN_PAIR, 0, false); return; }
  const mode = <u32>load<u8>(list + 2);
  if (mode != RM_MIRROR && mode != RM_BACKUP && mode != RM_DELAYED && mode != RM_ASYNC && mode != RM_SNAPSHOT) { remoteError(c, RE_STATE, 2, false); return; }
  store<u8>(list + 39, 0);
  store<u8>(list + 71, 0);
  const peer = nodeByName(list + 8);
  if (peer < 0 || nodeKind(<u32>peer) != NODE_ARRAY || <u32>peer == myNode()) { remoteError(c, RE_NODE, 8, false); return; }
  // The first hop is a neighbour: the peer itself (direct), or the relays named (their RECEIVED is
  // S169's): one, or several separated by commas with a policy in byte 86 (remote/route.ts).
  const policy = <u32>load<u8>(list + 86);
  let p: i32 = -1;
  for (let i: u32 = 0; i < REMOTE_PAIRS; i++) if (remote(i).used == 0) { p = <i32>i; break; }
  if (p < 0) { remoteError(c, RE_TABLE_FULL, -1, false); return; }
  let hop = peer;
  if (load<u8>(list + 40) != 0) {
    remoteReset(<u32>p);
    hop = routeParse(<u32>p, list + 40, policy, scratch() + 2048);
    if (hop < 0) { remoteError(c, RE_NODE, 40, false); return; }
    for (let i: u32 = 0; i < <u32>remote(<u32>p).routeCount; i++) {
      const relay = routeRelay(<u32>p, i);
      if (nodeKind(relay) != NODE_RELAY || !neighbour(relay) || linkPortToward(relay) < 0) { remoteError(c, RE_NODE, 40, false); return; }
    }
  }
  if (!neighbour(<u32>hop)) { remoteError(c, RE_NODE, hop == peer ? 8 : 40, false); return; }
  if (linkPortToward(<u32>hop) < 0) { remoteError(c, RE_NODE, hop == peer ? 8 : 40, false); return; }
  if (load<u8>(list + 72) == 0 || peerNameLength(list + 72) > PEER_NAME_BYTES) { remoteError(c, RE_NAME, 72, false); return; }
  // (The bytes after the name are looked at after it: a long name runs into byte 84.)
  const rdN = <u32>load<u8>(list + 84);
  const rdM = <u32>load<u8>(list + 85);
  if ((rdN != 0 || rdM != 0) && !rdCreateAllowed(rdN, rdM, <u32>peer, hop != peer)) { remoteError(c, RE_REDUNDANCY, 84, false); return; }
  if (policy > <u32>RP_LAST || (policy != 0 && hop == peer)) { remoteError(c, RE_STATE, 86, false); return; }
  const route = remote(<u32>p).routeRelays;
  const routeCount = remote(<u32>p).routeCount;
  const routePolicy = remote(<u32>p).routePolicy;
  // The journal sends each entry as one command to the first hop (remote/async.ts): no redundancy unit, no route over relays.
  if (mode == RM_ASYNC && (rdN != 0 || rdM != 0)) { remoteError(c, RE_REDUNDANCY, 84, false); return; }
  if (mode == RM_ASYNC && hop != peer && routeCount > 1) { remoteError(c, RE_STATE, 40, false); return; }
  const group = <u32>load<u8>(list + 88); // past the name and its NUL (84) and the bytes of redundancy and route
  if (group != 0 && mode != RM_ASYNC) { remoteError(c, RE_STATE, 88, false); return; } // a consistency group orders asynchronous copies
  const r = remoteReset(<u32>p);
  r.routeRelays = hop == peer ? 0 : route;
  r.routeCount = hop == peer ? 0 : routeCount;
  r.routePolicy = hop == peer ? 0 : routePolicy;
  r.used = 1;
  r.role = RR_PRIMARY;
  r.mode = <u8>mode;
  r.viaRelay = hop != peer ? 1 : 0;
  r.retries = <u8>(load<u8>(list + 3) == 0 ? DEFAULT_RETRIES : <u32>load<u8>(list + 3));
  r.timeoutUs = (getBe32(list + 4) == 0 ? DEFAULT_TIMEOUT_MS : min<u32>(getBe32(list + 4), 600_000)) * 1000;
  r.volume = <u16>v;
  r.peerNode = <u16>peer;
  r.firstHop = <u16>hop;
  r.rdData = <u8>rdN;
  r.rdParity = <u8>rdM;
  r.group = <u8>group;
  memory.copy(changetype<usize>(r) + offsetof<RemotePair>("peerVolume0"), list + 72, PEER_NAME_BYTES);
  askSecondary(c, <u32>p);
}

/** CREATE control to the secondary (create and resume); the command waits for it in ST_REMOTE. */
function askSecondary(c: usize, p: u32): void {
  const r = remote(p);
  r.serial++;
  remoteSetState(p, RS_CREATING, RSR_NONE);
  const id = linkSend(p, LOP_CREATE, 0, 0, load<u32>(c + CX_ID), 0);
  if (id == 0) { remoteSetState(p, RS_SUSPENDED, RSR_USER); if (r.copyTotal == 0) r.used = 0; retryLater(c); return; }
  waitFor(c, p, id);
}

/** The command waits in ST_REMOTE for its control command `id` of pair p. */
function waitFor(c: usize, p: u32, id: u32): void {
  store<u32>(c + CX_ARG, id);
  store<u32>(c + CX_FIRST_SLOT, p);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~(CXF_REMOTE_DONE | CXF_REMOTE_FAILED));
  store<u8>(c + CX_STATE, <u8>ST_REMOTE);
}

/**
 * Answers GOOD once the NV file holds pair p's record: a REMOTE command's change survives a restart.
 * The caller made sure of room in the NV ring (one entry) before it changed the record.
 */
function persistThenGood(c: usize, p: u32): void {
  if (!remotePersist(p, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)))) { retryLater(c); return; } // another IOP took the room (parallel mode)
  nvPending(c, 1);
  waitPersisted(c);
}

/** REMOTE CHANGE: `arg` the volume (either end's), `op` RC_*. */
export function remoteChange(c: usize, arg: u32, op: u32): void {
  const pr = arg < MAX_VOLUMES ? remoteOfVolume(arg) : -1;
  if (pr < 0) { remoteError(c, RE_NO_PAIR, 2, true); return; }
  if (!nvRoom(1)) { retryLater(c); return; }
  const p = <u32>pr;
  const r = remote(p);
  const primary = r.role == RR_PRIMARY;
  if (op == RC_SUSPEND) {
    if (!primary || (r.state != RS_PAIR && r.state != RS_COPY)) { remoteError(c, RE_STATE, 14, true); return; }
    remoteSuspend(p, RSR_USER, 0); // with its consistency group, if any
    persistThenGood(c, p);
  } else if (op == RC_RESUME) {
    if (!primary || r.state != RS_SUSPENDED) { remoteError(c, RE_STATE, 14, true); return; }
    askSecondary(c, p);
  } else if (op == RC_FAILOVER) {
    // 003's standby takes over: its volume is the hosts' (read-write); nothing more is applied from the link.
    if (primary || r.state == RS_FAILOVER) { remoteError(c, RE_STATE, 14, true); return; }
    // Embodiment 7 (S480-S485): what no reflecting command confirmed is discarded first; a reflect
    // already writing finishes (its runs are in the write path), and the command runs again then.
    // Bounded: a reflect whose runs never end fails the failover (ABORTED COMMAND 86h/18h), not a wait for ever.
    // Embodiment 8: the restoration, then every block moved home, each move bounded (remote/snaplink.ts).
    const home = snapLinkFailover(p);
    if (home == -2) { fail(c, 0x03, 0x86, RE_SNAP_IMAGE); return; }
    if (home < 0) { fail(c, 0x0B, 0x86, RE_HOME_WAIT); return; }
    if (home == 0) { retryLater(c); return; }
    if (!standbyFailover(p)) { if (!waitExpired(c, FAILOVER_WAIT_NS, 0x86, RE_REFLECT_WAIT)) retryLater(c); return; }
    remoteSetState(p, RS_FAILOVER, RSR_NONE);
    persistThenGood(c, p);
  } else if (op == RC_RESTART_POINT) {
    // S440/S441: the delay data reflecting command goes after every write issued before it (its
    // issuing ID is the next); GOOD once the standby has written them (its RECEIVED, S468).
    if (!primary || !standbyRestartable(p)) { remoteError(c, RE_STATE, 14, true); return; }
    const id = linkSend(p, LOP_REFLECT, 0, 0, load<u32>(c + CX_ID), 0);
    if (id == 0) { retryLater(c); return; }
    waitFor(c, p, id);
  } else if (op == RC_DELETE) {
    if (r.state == RS_CREATING) { remoteError(c, RE_STATE, 14, true); return; }
    r.serial++; // answers for its commands still in flight change nothing now
    if (primary && r.state != RS_SUSPENDED) {
      // The secondary is told, so its volume is the hosts' again; a link that does not answer does not stop the delete.
      r.state = RS_CREATING;
      const id = linkSend(p, LOP_DELETE, 0, 0, load<u32>(c + CX_ID), 0);
      if (id != 0) { waitFor(c, p, id); return; }
    }
    remoteRelease(p);
    persistThenGood(c, p);
  } else {
    remoteError(c, RE_STATE, 14, true);
  }
}

/** ST_REMOTE for a REMOTE command: what its control command ended with. */
export function remoteCommandWait(c: usize): void {
  const f = load<u32>(c + CX_FLAGS);
  if ((f & (CXF_REMOTE_DONE | CXF_REMOTE_FAILED)) == 0) return;
  const op = <u32>load<u8>(c + CX_CDB + 14);
  const sa = <u32>load<u8>(c + CX_CDB + 1) & 0x1F;
  const p = <i32>load<u32>(c + CX_FIRST_SLOT);
  if (sa == SA_REMOTE_CHANGE && op == RC_DELETE) {
    if (!nvRoom(1)) return; // the answer stays in the flags: asked again at the next poll
    remoteRelease(<u32>p);
    persistThenGood(c, <u32>p);
    return;
  }
  const r = remote(<u32>p);
  if (sa == SA_REMOTE_CHANGE && op == RC_RESTART_POINT) {
    // The standby's answer: GOOD, it is at this restart point; else the pair is suspended already (comm/link.ts).
    if ((f & CXF_REMOTE_FAILED) == 0) { good(c); return; }
    const answer = load<u32>(c + CX_ARG);
    if (answer != 0 && ((answer >> 16) & 0xFF) != 0x0B && (answer >> 24) == 0x02) fail(c, (answer >> 16) & 0xFF, (answer >> 8) & 0xFF, answer & 0xFF);
    else fail(c, 0x0B, 0x08, 0x01);
    return;
  }
  if ((f & CXF_REMOTE_FAILED) != 0) {
    const answer = load<u32>(c + CX_ARG);
    if (sa == SA_REMOTE_CREATE) r.used = 0; else remoteSetState(<u32>p, RS_SUSPENDED, r.reason == RSR_NONE ? RSR_USER : r.reason);
    if (answer != 0 && ((answer >> 16) & 0xFF) != 0x0B) fail(c, (answer >> 16) & 0xFF, (answer >> 8) & 0xFF, answer & 0xFF);
    else fail(c, 0x0B, 0x08, 0x01); // LOGICAL UNIT COMMUNICATION TIMEOUT: the secondary did not answer in time
    return;
  }
  // The secondary holds the pair: the initial copy (embodiment 1's copy, Fig. 4) starts, run by this
  // IOP; the command answers once the record is in NV.
  if (!nvRoom(2)) return;
  // Create copies every track; resume the tracks the difference bitmap holds (remote/async.ts).
  if (sa == SA_REMOTE_CREATE) diffAll(<u32>p, nvId(NVK_NONE, 0));
  r.copyTotal = diffBytes(<u32>p);
  r.copyNext = 0;
  r.copyDone = 0;
  r.copyActive = 0;
  r.copyIop = <u16>gIndex;
  remoteSetState(<u32>p, RS_COPY, RSR_NONE);
  persistThenGood(c, <u32>p);
}

/** REMOTE STATUS: every remote pair of this array, STATUS_ENTRY_BYTES each (docs/scsi.md). */
export function remoteStatus(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + REMOTE_PAIRS * STATUS_ENTRY_BYTES);
  if (d == 0) return;
  let n: u32 = 0;
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) {
    const r = remote(p);
    if (r.used == 0) continue;
    const e = d + 8 + n * STATUS_ENTRY_BYTES;
    putBe16(e, r.volume);
    store<u8>(e + 2, r.role);
    store<u8>(e + 3, r.state);
    store<u8>(e + 4, r.reason);
    store<u8>(e + 5, r.mode);
    store<u8>(e + 6, r.viaRelay);
    store<u8>(e + 7, <u8>p);
    putBe16(e + 8, r.peerNode);
    putBe16(e + 10, r.firstHop);
    putBe32(e + 12, r.issued);
    putBe32(e + 16, r.inFlight);
    putBe32(e + 20, r.failCmd);
    putBe64(e + 24, r.copyDone);
    putBe64(e + 32, r.copyTotal);
    putBe64(e + 40, r.writes);
    putBe64(e + 48, r.bytes);
    memory.copy(e + 56, changetype<usize>(r) + offsetof<RemotePair>("peerVolume0"), 8); // the first 8 bytes of its name
    store<u8>(e + 64, r.group);
    store<u8>(e + 65, r.role == RR_PRIMARY ? <u8>diffShift(p) : 0);
    store<u8>(e + 66, r.routeCount); // the relays of its route (remote/route.ts): how many, the policy, their nodes at 92-95
    store<u8>(e + 67, r.routePolicy);
    putBe32(e + 68, r.role == RR_PRIMARY ? journalQueued(p) : 0);
    putBe32(e + 72, r.role == RR_PRIMARY ? diffCount(p) : 0);
    putBe32(e + 76, journalBytes());
    putBe32(e + 80, journalHighWater());
    putBe32(e + 84, journalFullSuspends());
    putBe32(e + 88, heldEarlyCount());
    store<u32>(e + 92, r.routeRelays); // a node a byte, the first relay at 92
    n++;
  }
  putBe32(d, n * STATUS_ENTRY_BYTES);
  putBe16(d + 4, STATUS_ENTRY_BYTES);
  putBe16(d + 6, n);
  sendBuffer(c, min<u32>(8 + n * STATUS_ENTRY_BYTES, alloc));
}

function kindByte(n: u32): u32 { return n < RELAY_MAX_NODES ? <u32>load<u8>(CONFIG_ADDR + CFG_REMOTE + NODE_KINDS + n) : 0; }
function nodeKind(n: u32): u32 { return kindByte(n) & ~NODE_NEIGHBOUR; }
function neighbour(n: u32): bool { return (kindByte(n) & NODE_NEIGHBOUR) != 0; }

function peerNameLength(p: usize): u32 {
  let n: u32 = 0;
  while (n < 32 && load<u8>(p + n) != 0) n++;
  return n;
}

/** RELAY STATUS: what the relays next to this array last reported (abi.ts RLS_*), with their names. */
export function relayStatus(c: usize, alloc: u32): void {
  const n = min<u32>(load<u32>(MAP_ADDR + MAP_RELAY_COUNT), RELAY_STATUS_MAX);
  const entry = RLS_BYTES + NODE_NAME_BYTES;
  const d = dataInBuffer(c, 8 + RELAY_STATUS_MAX * entry);
  if (d == 0) return;
  for (let i: u32 = 0; i < n; i++) {
    const e = d + 8 + i * entry;
    const r = MAP_ADDR + MAP_RELAY_TABLE + i * RLS_BYTES;
    memory.copy(e, r, RLS_BYTES); // little-endian, as the binding wrote it
    const node = <u32>load<u16>(r + RLS_NODE);
    if (node < RELAY_MAX_NODES) memory.copy(e + RLS_BYTES, CONFIG_ADDR + CFG_REMOTE + NODE_NAMES + node * NODE_NAME_BYTES, NODE_NAME_BYTES);
  }
  putBe32(d, n * entry);
  putBe16(d + 4, entry);
  putBe16(d + 6, n);
  sendBuffer(c, min<u32>(8 + n * entry, alloc));
}
