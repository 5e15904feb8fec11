// What a host WRITE of a remote pair's primary waits for (docs/remote.md, "What a host WRITE's GOOD
// means"), and the initial copy. Document 003, embodiment 3 (Fig. 7): the window is in cache and its
// NV writes are under way (S165/S166) when its bytes go to the first hop (S164, S168) as send
// commands of the link unit (comm/link.ts); GOOD (S170) waits for the first hop's RECEIVED (S169) as
// well as for NV. Through a relay that is the relay's buffer (embodiments 1 and 3: latency of the
// near relay); direct, the secondary's cache and NV.
//
// A send command reads what it sends from the cache (the window is there already), widened to 8 KiB
// boundaries so that its packets never straddle a cache slot; the bytes around the window are the
// volume's current bytes, so the secondary gets nothing but what the primary holds. Every wait is
// bounded: a command that cannot get a context within the pair's bound, or whose send command gives
// up, ends CHECK CONDITION, ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIMEOUT (0Bh/08h/01h) and the
// pair is suspended; later writes are local (GOOD on cache and NV) until `remote resume` copies again.
import { LOP_NONE, LF_MIRROR } from "../abi";
import { CX_VOLUME, CX_LBA, CX_ARG, CX_FLAGS, CX_ID, CX_FIRST_SLOT, CX_LAST_SLOT, CX_DEADLINE_NS, CX_STATE, CX_OPCODE } from "../ctx";
import { remoteCommandWait } from "../scsi/remote";
import { gNow, gIndex, wakeAt } from "../iop";
import { blockSize, capacityBlocks } from "../volume";
import { commitNext, fail } from "../sequencer";
import { standbyCommandBytes, standbyCopyEnds } from "./standby";
import { linkSend, linkJournalPump, linkMaxBytes, CXF_REMOTE_DONE, CXF_REMOTE_FAILED, LXF_COPY } from "../comm/link";
import { asyncWindow, isAsync, nextDiff, diffRunEnd } from "./async";
import { ctxById } from "../ctx";
import { routeSend, routeWaiting } from "./route";
import { remote, remoteOfVolume, remoteSuspend, remoteSetState, REMOTE_PAIRS, RR_PRIMARY, RS_PAIR, RS_COPY, RSR_LINK, RSR_NONE } from "./pair";

/** A host WRITE waiting for its window's send command(s) (ctx.ts leaves 13-19 to the sequencer). */
export const ST_REMOTE: u32 = 20;
/** Send commands of the initial copy in flight per pair at once. */
export const COPY_DEPTH: u32 = 4;

/** The pair whose primary volume is v and that sends now (copy or pair), or -1. */
function sendingPair(v: u32): i32 {
  const p = remoteOfVolume(v);
  if (p < 0) return -1;
  const r = remote(<u32>p);
  return r.role == RR_PRIMARY && (r.state == RS_PAIR || r.state == RS_COPY) ? p : -1;
}

/**
 * The sequencer's hook after a window [winStart, winStart + winLen) of a WRITE is in cache: true
 * when the volume is a sending primary and the command now waits (ST_REMOTE) for the first hop.
 */
export function remoteWindow(c: usize, winStart: u32, winLen: u32): bool {
  const v = <u32>load<u16>(c + CX_VOLUME);
  const p = sendingPair(v);
  if (winLen == 0 || p < 0) return false;
  const bs = <u64>blockSize(v);
  const start = load<u64>(c + CX_LBA) * bs + <u64>winStart;
  // 004's asynchronous copy: into the journal in issuing-ID order; GOOD does not wait for the link.
  if (isAsync(<u32>p)) { asyncWindow(<u32>p, start, start + <u64>winLen); return false; }
  const end = min<u64>((start + <u64>winLen + 8191) & ~(<u64>8191), capacityBlocks(v) * bs);
  store<u32>(c + CX_FIRST_SLOT, <u32>((start & ~(<u64>8191)) >> 9)); // next byte to send, in 512-byte units
  store<u32>(c + CX_LAST_SLOT, <u32>(end >> 9));
  store<u32>(c + CX_ARG, 0);
  store<u32>(c + CX_FLAGS, load<u32>(c + CX_FLAGS) & ~(CXF_REMOTE_DONE | CXF_REMOTE_FAILED));
  store<f64>(c + CX_DEADLINE_NS, 0);
  store<u8>(c + CX_STATE, <u8>ST_REMOTE);
  remoteWait(c);
  return true;
}

/** ST_REMOTE: the next send command of the window, or what the last one ended with. */
export function remoteWait(c: usize): void {
  if (<u32>load<u8>(c + CX_OPCODE) == 0xC1) { remoteCommandWait(c); return; } // a REMOTE command (scsi/remote.ts)
  if (linkJournalPump(c)) return; // a journal entry's send command (remote/async.ts)
  const f = load<u32>(c + CX_FLAGS);
  if ((f & CXF_REMOTE_FAILED) != 0) { fail(c, 0x0B, 0x08, 0x01); return; }
  if ((f & CXF_REMOTE_DONE) != 0) {
    store<u32>(c + CX_FLAGS, f & ~CXF_REMOTE_DONE);
    store<u32>(c + CX_ARG, 0);
  }
  const child = load<u32>(c + CX_ARG);
  if (child != 0) {
    // Ended without a word (aborted under it); a set of stripes or copies lives while a member does (remote/route.ts).
    const pw = remoteOfVolume(<u32>load<u16>(c + CX_VOLUME));
    if (ctxById(child) == 0 && (pw < 0 || !routeWaiting(<u32>pw, child))) { fail(c, 0x0B, 0x08, 0x01); }
    return;
  }
  const next = <u64>load<u32>(c + CX_FIRST_SLOT) << 9;
  const end = <u64>load<u32>(c + CX_LAST_SLOT) << 9;
  const v = <u32>load<u16>(c + CX_VOLUME);
  const p = sendingPair(v);
  // Done, or the pair stopped sending meanwhile (suspended by another command: nothing is promised remotely now).
  if (next >= end || p < 0) { commitNext(c); return; }
  // One command, or (several relays) a stripe or a set of copies: remote/route.ts picks the hops.
  const id = routeSend(c, <u32>p, next, end, min<u32>(linkMaxBytes(<u32>p), standbyCommandBytes(<u32>p)), LF_MIRROR << 8);
  if (id == 0) {
    // No context or link port free now: bounded like every wait of the pair.
    const r = remote(<u32>p);
    let deadline = load<f64>(c + CX_DEADLINE_NS);
    if (deadline == 0) { deadline = gNow + <f64>r.timeoutUs * 1000 * <f64>(<u32>r.retries + 1); store<f64>(c + CX_DEADLINE_NS, deadline); }
    if (gNow >= deadline) { remoteSuspend(<u32>p, RSR_LINK, 0); fail(c, 0x0B, 0x08, 0x01); return; }
    wakeAt(deadline);
    return;
  }
  store<u32>(c + CX_ARG, id);
  store<f64>(c + CX_DEADLINE_NS, 0);
}

/**
 * The initial copy (embodiment 1's copy of a range, Fig. 4: S100-S108): for each pair in RS_COPY
 * that this IOP copies, send commands of at most linkMaxBytes over the runs of tracks whose bit is
 * set in the pair's difference bitmap (remote/async.ts: every track at create; at resume what changed
 * while suspended and what was in flight), in volume order, COPY_DEPTH at once; when the cursor has
 * passed the end and all are acknowledged (through a relay: forwarded) the pair is RS_PAIR.
 */
export function remoteCopyStep(): i32 {
  let work: i32 = 0;
  for (let p: u32 = 0; p < REMOTE_PAIRS; p++) {
    const r = remote(p);
    if (r.used == 0 || r.role != RR_PRIMARY || r.state != RS_COPY || <u32>r.copyIop != gIndex) continue;
    const end = capacityBlocks(<u32>r.volume) * <u64>blockSize(<u32>r.volume);
    while (r.copyActive < COPY_DEPTH) {
      const at = nextDiff(p, r.copyNext);
      r.copyNext = at;
      if (at >= end) break;
      const n = <u32>min<u64>(<u64>linkMaxBytes(p), diffRunEnd(p, at) - at);
      if (linkSend(p, LOP_NONE, at, n, 0, LXF_COPY) == 0) break;
      r.copyActive++;
      r.copyNext = at + <u64>n;
      work++;
    }
    if (r.copyActive == 0 && r.copyNext >= end && standbyCopyEnds(p)) { remoteSetState(p, RS_PAIR, RSR_NONE); work++; }
  }
  return work;
}

