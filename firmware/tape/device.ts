// Tape devices of the library attached to the array (docs/tape.md): the changer and the drives,
// each a logical unit of its own on every port. This module is the unit every user of a tape
// device goes through — the channel IOPs' SSC/SMC handlers and the disk IOP's copy manager alike:
//
//   tapeClaim(dev, token)  one user at a time: a drive does one thing at a time, so the claim word
//                          (atomic compare-and-swap in the device's state block) serialises the IOPs
//                          in front of it; the holder alone submits and reaps
//   tapeSubmit(...)        one request on the device's submission ring, doorbell rung
//   tapeResult(dev)        the completion (TCQ entry) once the binding posted it, else 0
//   tapeFinish(dev, token) consumes the completion and gives the claim back
//   tapeForget(dev)        the holder went away (its command aborted) with a request in flight: the
//                          claim becomes ORPHAN, and the next claimant reaps that completion first;
//                          the binding is told (MTD_CANCEL) to leave the request's buffer alone
//   tapeDetach(dev, ...)   the holder answered early (IMMED) and leaves the request running: ORPHAN
//                          too, and a failure found when it is reaped is kept as a deferred error
//                          for the I_T nexus that asked (tapeDeferredTake)
//   tapeUaPost/Take        unit attentions per I_T nexus (a reset, a medium change)
//
// The copy manager (EXTENDED COPY, a later unit on the disk IOP) names a drive by the NAA of its
// VPD page 83h: tapeDeviceByNaa. Its buffers are its own; the binding moves record data to and from
// whatever common-memory address the request names. Everything here is in common memory: no
// module-level state.
import {
  CONFIG_ADDR, CFG_TAPE, CTP_DEVICES, CTP_SLOTS, CTP_IE, CFG_TAPE_TABLE, CFG_TAPE_BYTES, CTD_KIND, CTD_LUN,
  CTD_ELEMENT, CTD_NAME, TDK_CHANGER, TDK_DRIVE, MAX_TAPE_DEVICES, MAX_TAPE_ELEMENTS, TAPE_LUN_MIN, MAP_ADDR, MAP_TAPE_TABLE,
  MAP_TAPE_BYTES, MTD_SQ, MTD_CQ, MTD_STATE, MTD_STATUS, MTD_POSITION, MTD_FILE, MTD_CANCEL, MTD_EVENTS,
  MAP_TAPE_ELEMENTS, MAP_TAPE_ELEMENT_COUNT, TSQ_BYTES, TCQ_BYTES, TSQ_OP, TSQ_ID, TSQ_COUNT, TSQ_ADDR, TSQ_ARG,
  TSQ_ARG2, TCQ_ID, TCQ_STATUS, TEL_BYTES, TEL_ADDRESS, TEL_TYPE, ELEM_TRANSPORT, ELEM_IE_BASE, ELEM_DRIVE_BASE,
  ELEM_SLOT_BASE, ELT_TRANSPORT, ELT_STORAGE, ELT_IE, ELT_DRIVE, DB_TAPE_BASE, DB_NONE, CFG_DEVICE_ID, REGION_ALIGN,
  MAX_LUNS, MAX_PORTS, MAX_SESSIONS, TST_OK, SES_GENERATION, SES_STATE, SESS_OPEN,
} from "../abi";
import { portCount } from "../config";
import { sessionDesc, portSessions } from "../channel";
import { ringInit, ringBytes, ringReserve, ringPublish, ringRing, ringPeek, ringRelease } from "../ring";
import { alignUp } from "../util";
import { crc32c } from "../comm/crc";

/** The device state block (one per tape device, laid out by layout()). */
export const TDS_CLAIM: u32 = 0; // u32: 0 free, ORPHAN, or the holder's token
export const TDS_BLOCK_SIZE: u32 = 4; // u32: drive: fixed block length of MODE SELECT (0: variable)
export const TDS_RES_PORT: u32 = 8; // u16: port + 1 of the I_T nexus holding a RESERVE (0: none)
export const TDS_RES_SESSION: u32 = 10; // u16
export const TDS_RES_GEN: u32 = 12; // u32: that session's generation (a reservation dies with its nexus)
export const TDS_NEXT_ID: u32 = 16; // u32: request ids
export const TDS_INFLIGHT: u32 = 20; // u32: 1 while a request is at the binding
export const TDS_PREVENT: u32 = 24; // u32: PREVENT MEDIUM REMOVAL in effect
// A request left running by its holder (IMMED): who asked, so a failure is reported to that nexus.
const TDS_DETACH_OP: u32 = 28; // u32: TOP_* (0: the orphan, if any, was aborted: its outcome is nobody's)
const TDS_DETACH_PORT: u32 = 32; // u16: port + 1
const TDS_DETACH_SESSION: u32 = 34; // u16
const TDS_DETACH_GEN: u32 = 36; // u32
// A deferred error (SPC-4 4.5.5): the detached request failed; the next command of that nexus reports it.
const TDS_DEFERRED: u32 = 40; // u32: TOP_* << 16 | TST_* (0: none)
const TDS_DEFERRED_PORT: u32 = 44; // u16: port + 1
const TDS_DEFERRED_SESSION: u32 = 46; // u16
const TDS_DEFERRED_GEN: u32 = 48; // u32
export const TDS_EVENTS_SEEN: u32 = 52; // u32: changer: the binding's MTD_EVENTS when unit attentions were last posted for it
export const TDS_PR: u32 = 64; // PR_VOL_BYTES: the device's unit record of the persistent reservations (scsi/pr.ts)
const TDS_UA: u32 = 128; // unit attentions: per port and session, (generation u32, UA_* bits u32)
const UA_ENTRY_BYTES: u32 = 8;
export const TDS_BYTES: u32 = TDS_UA + MAX_PORTS * MAX_SESSIONS * UA_ENTRY_BYTES;

/** Unit attention conditions, most important first (tapeUaTake reports the highest). */
export const UA_RESET: u32 = 1; // 29h/03h BUS DEVICE RESET FUNCTION OCCURRED (a LUN or target reset)
export const UA_MEDIUM: u32 = 2; // 28h/00h NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
export const UA_IMPORT_EXPORT: u32 = 4; // 28h/01h IMPORT OR EXPORT ELEMENT ACCESSED
export const ORPHAN: u32 = 0xFFFFFFFF;
const RING_ENTRIES: u32 = 4;

// @ts-ignore: decorator
@inline export function tapeDevices(): u32 { return load<u32>(CONFIG_ADDR + CFG_TAPE + CTP_DEVICES); }
// @ts-ignore: decorator
@inline export function tapeCfg(dev: u32): usize { return CONFIG_ADDR + CFG_TAPE_TABLE + dev * CFG_TAPE_BYTES; }
// @ts-ignore: decorator
@inline export function tapeMap(dev: u32): usize { return MAP_ADDR + MAP_TAPE_TABLE + dev * MAP_TAPE_BYTES; }
// @ts-ignore: decorator
@inline export function tapeState(dev: u32): usize { return <usize>load<u32>(tapeMap(dev) + MTD_STATE); }
// @ts-ignore: decorator
@inline export function tapeKind(dev: u32): u32 { return load<u8>(tapeCfg(dev) + CTD_KIND); }
// @ts-ignore: decorator
@inline export function tapeLun(dev: u32): u32 { return load<u16>(tapeCfg(dev) + CTD_LUN); }
/** What the drive's sensors say now (TDST_* | TDSF_*), written by the binding. */
// @ts-ignore: decorator
@inline export function tapeStatus(dev: u32): u32 { return atomic.load<u32>(tapeMap(dev) + MTD_STATUS); }
// @ts-ignore: decorator
@inline export function tapePosition(dev: u32): u32 { return atomic.load<u32>(tapeMap(dev) + MTD_POSITION); }
/** The logical file identifier (filemarks between BOT and the position), written by the binding. */
// @ts-ignore: decorator
@inline export function tapeFile(dev: u32): u32 { return atomic.load<u32>(tapeMap(dev) + MTD_FILE); }
/** Operator accesses to the import/export elements so far (the changer's entry), written by the binding. */
// @ts-ignore: decorator
@inline export function tapeEvents(dev: u32): u32 { return atomic.load<u32>(tapeMap(dev) + MTD_EVENTS); }
// @ts-ignore: decorator
@inline export function tapeSlots(): u32 { return load<u16>(CONFIG_ADDR + CFG_TAPE + CTP_SLOTS); }
// @ts-ignore: decorator
@inline export function tapeIe(): u32 { return load<u16>(CONFIG_ADDR + CFG_TAPE + CTP_IE); }

/** The tape device at `lun`, or -1 (tape LUNs are the same on every port). */
export function tapeDeviceAtLun(lun: u32): i32 {
  if (lun < TAPE_LUN_MIN) return -1;
  const n = tapeDevices();
  for (let d: u32 = 0; d < n; d++) if (tapeLun(d) == lun) return <i32>d;
  return -1;
}

/** The drive whose data transfer element is `element`, or -1. */
export function tapeDriveAtElement(element: u32): i32 {
  const n = tapeDevices();
  for (let d: u32 = 0; d < n; d++) if (tapeKind(d) == TDK_DRIVE && <u32>load<u16>(tapeCfg(d) + CTD_ELEMENT) == element) return <i32>d;
  return -1;
}

/** The device's NAA-6 identifier (VPD 83h): the array's device ID, last two bytes F000h + device. */
export function tapeNaa(dev: u32, dst: usize): void {
  memory.copy(dst, CONFIG_ADDR + CFG_DEVICE_ID, 16);
  store<u8>(dst + 14, <u8>(0xF0 | (dev >> 8)));
  store<u8>(dst + 15, <u8>dev);
}

/** The tape device whose 16-byte NAA identifier is at `naa` (the copy manager's E4h descriptors), or -1. */
export function tapeDeviceByNaa(naa: usize): i32 {
  if (memory.compare(naa, CONFIG_ADDR + CFG_DEVICE_ID, 14) != 0) return -1;
  const n = tapeDevices();
  for (let d: u32 = 0; d < n; d++) {
    if (load<u8>(naa + 14) == <u8>(0xF0 | (d >> 8)) && load<u8>(naa + 15) == <u8>d) return <i32>d;
  }
  return -1;
}

/** Writes device `dev`'s LUN (flat addressing, 8 bytes) at dst: REPORT LUNS lists the devices an initiator may see. */
export function tapeLunEntry(dst: usize, dev: u32): void {
  const lun = tapeLun(dev);
  memory.fill(dst, 0, 8);
  store<u8>(dst, <u8>(0x40 | (lun >> 8)));
  store<u8>(dst + 1, <u8>lun);
}

/**
 * What the device is, for the records that name it (the LUN access table, comm/access.ts): a
 * CRC-32C of its kind, its element address and its name in the library's config. Its index (what
 * its NAA carries) says where it is; this says it is still the same device there, so a record made
 * for a drive never applies to another one a changed topology puts at its index. The LUN is left
 * out: moving the library to other LUNs keeps its devices' records.
 */
export function tapeIdentity(dev: u32): u32 {
  const cfg = tapeCfg(dev);
  return crc32c(cfg + CTD_NAME, 32, crc32c(cfg + CTD_ELEMENT, 2, crc32c(cfg + CTD_KIND, 1, 0)));
}

// ---- Claim, submit, complete --------------------------------------------------------------------

/** Takes the device for `token` (non-zero, not ORPHAN); true when it holds it now. */
export function tapeClaim(dev: u32, token: u32): bool {
  const s = tapeState(dev);
  const cur = atomic.load<u32>(s + TDS_CLAIM);
  if (cur == token) return true;
  if (cur == ORPHAN && !reapOrphan(dev)) return false;
  return atomic.cmpxchg<u32>(s + TDS_CLAIM, 0, token) == 0;
}

/**
 * An orphan's request has completed: its completion is dropped and the device is free. A detached
 * (IMMED) request that failed leaves a deferred error for the nexus that asked; a detached LOAD
 * that made the drive ready is a medium change for every other nexus.
 */
function reapOrphan(dev: u32): bool {
  const s = tapeState(dev);
  if (load<u32>(s + TDS_INFLIGHT) != 0) {
    const e = tapeResult(dev);
    if (e == 0) return false;
    const op = load<u32>(s + TDS_DETACH_OP);
    const status = <u32>load<u16>(e + TCQ_STATUS);
    if (op != 0 && status != TST_OK) {
      store<u32>(s + TDS_DEFERRED, ((op & 0x7F) << 16) | status);
      store<u16>(s + TDS_DEFERRED_PORT, load<u16>(s + TDS_DETACH_PORT));
      store<u16>(s + TDS_DEFERRED_SESSION, load<u16>(s + TDS_DETACH_SESSION));
      store<u32>(s + TDS_DEFERRED_GEN, load<u32>(s + TDS_DETACH_GEN));
    }
    if ((op & DETACH_READY) != 0 && status == TST_OK) {
      tapeUaPost(dev, UA_MEDIUM, <u32>load<u16>(s + TDS_DETACH_PORT) - 1, load<u16>(s + TDS_DETACH_SESSION));
    }
    store<u32>(s + TDS_DETACH_OP, 0);
    ringRelease(load<u32>(tapeMap(dev) + MTD_CQ), 1);
    store<u32>(s + TDS_INFLIGHT, 0);
  }
  atomic.cmpxchg<u32>(s + TDS_CLAIM, ORPHAN, 0);
  return true;
}

/** tapeDetach's `op` flag: the request makes the drive ready (a LOAD of a cartridge not threaded): a medium change for the other nexuses. */
export const DETACH_READY: u32 = 0x80;

/** The device works on a request nobody holds (an IMMED operation, or an aborted command's): later users wait. */
export function tapeOrphaned(dev: u32): bool { return atomic.load<u32>(tapeState(dev) + TDS_CLAIM) == ORPHAN; }

/** Submits a request (the caller holds the claim); false when the ring is full (try again). */
export function tapeSubmit(dev: u32, op: u32, count: i32, addr: usize, arg: u32, arg2: u32): bool {
  const s = tapeState(dev);
  assert(load<u32>(s + TDS_INFLIGHT) == 0, "tape: a second request in flight on one device");
  const sq: usize = load<u32>(tapeMap(dev) + MTD_SQ);
  const e = ringReserve(sq);
  if (e == 0) return false;
  const id = load<u32>(s + TDS_NEXT_ID) + 1;
  store<u32>(s + TDS_NEXT_ID, id);
  memory.fill(e, 0, TSQ_BYTES);
  store<u8>(e + TSQ_OP, <u8>op);
  store<u32>(e + TSQ_ID, id);
  store<i32>(e + TSQ_COUNT, count);
  store<u32>(e + TSQ_ADDR, <u32>addr);
  store<u32>(e + TSQ_ARG, arg);
  store<u32>(e + TSQ_ARG2, arg2);
  store<u32>(s + TDS_INFLIGHT, 1);
  ringPublish(sq, 1);
  ringRing(sq);
  return true;
}

/** The completion of the device's request in flight, or 0 while the binding works. */
export function tapeResult(dev: u32): usize {
  const e = ringPeek(load<u32>(tapeMap(dev) + MTD_CQ));
  if (e == 0) return 0;
  assert(load<u32>(e + TCQ_ID) == load<u32>(tapeState(dev) + TDS_NEXT_ID), "tape: a completion for another request");
  return e;
}

/** Consumes the completion (if `reap`) and gives the claim back. */
export function tapeFinish(dev: u32, token: u32, reap: bool): void {
  const s = tapeState(dev);
  if (reap) {
    ringRelease(load<u32>(tapeMap(dev) + MTD_CQ), 1);
    store<u32>(s + TDS_INFLIGHT, 0);
  }
  atomic.cmpxchg<u32>(s + TDS_CLAIM, token, 0);
}

/**
 * The holder went away: a request in flight is reaped by the next claimant, and the binding leaves
 * its buffer alone from now on (the holder's buffer goes back when this returns).
 */
export function tapeForget(dev: u32, token: u32): void {
  const s = tapeState(dev);
  if (atomic.load<u32>(s + TDS_CLAIM) != token) return;
  if (load<u32>(s + TDS_INFLIGHT) != 0) {
    store<u32>(s + TDS_DETACH_OP, 0);
    atomic.store<u32>(tapeMap(dev) + MTD_CANCEL, load<u32>(s + TDS_NEXT_ID));
    ringRing(load<u32>(tapeMap(dev) + MTD_SQ)); // the binding looks: a request not yet under way ends at once
  }
  atomic.cmpxchg<u32>(s + TDS_CLAIM, token, load<u32>(s + TDS_INFLIGHT) != 0 ? ORPHAN : 0);
}

/**
 * The holder answers now and leaves its request (`op`, no buffer) running (IMMED): the device is
 * ORPHAN until the next claimant reaps the completion; a failure then is a deferred error for the
 * nexus (port, session, generation) that asked.
 */
export function tapeDetach(dev: u32, token: u32, op: u32, port: u32, session: u32, gen: u32): void {
  const s = tapeState(dev);
  if (atomic.load<u32>(s + TDS_CLAIM) != token || load<u32>(s + TDS_INFLIGHT) == 0) { tapeFinish(dev, token, false); return; }
  store<u32>(s + TDS_DETACH_OP, op);
  store<u16>(s + TDS_DETACH_PORT, <u16>(port + 1));
  store<u16>(s + TDS_DETACH_SESSION, <u16>session);
  store<u32>(s + TDS_DETACH_GEN, gen);
  atomic.cmpxchg<u32>(s + TDS_CLAIM, token, ORPHAN);
}

/** The deferred error kept for this nexus (TOP_* << 16 | TST_*), taken off; 0 when none. */
export function tapeDeferredTake(dev: u32, port: u32, session: u32, gen: u32): u32 {
  const s = tapeState(dev);
  const d = load<u32>(s + TDS_DEFERRED);
  if (d == 0) return 0;
  const p = <u32>load<u16>(s + TDS_DEFERRED_PORT);
  if (!nexusOpen(p - 1, load<u16>(s + TDS_DEFERRED_SESSION), load<u32>(s + TDS_DEFERRED_GEN))) { store<u32>(s + TDS_DEFERRED, 0); return 0; }
  if (p != port + 1 || <u32>load<u16>(s + TDS_DEFERRED_SESSION) != session || load<u32>(s + TDS_DEFERRED_GEN) != gen) return 0;
  store<u32>(s + TDS_DEFERRED, 0);
  return d;
}

function nexusOpen(port: u32, session: u32, gen: u32): bool {
  const d = sessionDesc(port, session);
  return atomic.load<u32>(d + SES_STATE) == SESS_OPEN && atomic.load<u32>(d + SES_GENERATION) == gen;
}

// ---- Unit attentions (SAM-5 5.14), per I_T nexus ------------------------------------------------------
// An entry per port and session holds the session's generation when the conditions were posted: a
// new session (a new nexus) on the same slot starts with none.

function uaEntry(dev: u32, port: u32, session: u32): usize {
  return tapeState(dev) + TDS_UA + (port * MAX_SESSIONS + session) * UA_ENTRY_BYTES;
}

/** Posts `bits` (UA_*) for every open nexus but (exceptPort, exceptSession); 0xFFFFFFFF: none excepted. */
export function tapeUaPost(dev: u32, bits: u32, exceptPort: u32, exceptSession: u32): void {
  const ports = min<u32>(portCount(), MAX_PORTS);
  for (let p: u32 = 0; p < ports; p++) {
    const n = min<u32>(portSessions(p), MAX_SESSIONS);
    for (let x: u32 = 0; x < n; x++) {
      if (p == exceptPort && x == exceptSession) continue;
      const d = sessionDesc(p, x);
      if (atomic.load<u32>(d + SES_STATE) != SESS_OPEN) continue;
      const gen = atomic.load<u32>(d + SES_GENERATION);
      const e = uaEntry(dev, p, x);
      if (load<u32>(e) != gen) { store<u32>(e, gen); store<u32>(e + 4, 0); }
      store<u32>(e + 4, load<u32>(e + 4) | bits);
    }
  }
}

/** The most important condition pending for the nexus (ASC << 8 | ASCQ), taken off; 0 when none. */
export function tapeUaTake(dev: u32, port: u32, session: u32, gen: u32, peek: bool): u32 {
  const e = uaEntry(dev, port, session);
  if (load<u32>(e) != gen) return 0;
  const bits = load<u32>(e + 4);
  if (bits == 0) return 0;
  const bit = bits & (~bits + 1);
  if (!peek) store<u32>(e + 4, bits & ~bit);
  return bit == UA_RESET ? 0x2903 : bit == UA_MEDIUM ? 0x2800 : 0x2801;
}

// ---- Elements (the library's inventory, as the binding's sensors report it) ----------------------

export function elementCount(): u32 { return load<u32>(MAP_ADDR + MAP_TAPE_ELEMENT_COUNT); }
export function elementAt(i: u32): usize { return <usize>load<u32>(MAP_ADDR + MAP_TAPE_ELEMENTS) + <usize>i * TEL_BYTES; }

/** The element table entry of element address `address`, or 0. */
export function elementByAddress(address: u32): usize {
  const n = elementCount();
  for (let i: u32 = 0; i < n; i++) if (<u32>load<u16>(elementAt(i) + TEL_ADDRESS) == address) return elementAt(i);
  return 0;
}

export function tapeDrives(): u32 {
  let n: u32 = 0;
  for (let d: u32 = 0; d < tapeDevices(); d++) if (tapeKind(d) == TDK_DRIVE) n++;
  return n;
}

// ---- Layout --------------------------------------------------------------------------------------

/** 0 when the library's config is good; else the device (or 0xFFFF for the library) that is not. */
export function tapeConfigError(): u32 {
  const n = tapeDevices();
  if (n == 0) return 0;
  if (n > MAX_TAPE_DEVICES) return 0xFFFF;
  let changers: u32 = 0;
  for (let d: u32 = 0; d < n; d++) {
    const kind = tapeKind(d);
    const lun = tapeLun(d);
    if (kind == TDK_CHANGER) changers++;
    else if (kind != TDK_DRIVE) return d;
    if (lun < TAPE_LUN_MIN || lun > 0x3FFF || lun < MAX_LUNS) return d;
    for (let e: u32 = 0; e < d; e++) if (tapeLun(e) == lun) return d;
    if (kind == TDK_DRIVE && <u32>load<u16>(tapeCfg(d) + CTD_ELEMENT) != ELEM_DRIVE_BASE + d - 1) return d;
  }
  if (changers != 1 || tapeKind(0) != TDK_CHANGER) return 0xFFFF;
  if (tapeIe() > ELEM_DRIVE_BASE - ELEM_IE_BASE || 1 + tapeIe() + tapeDrives() + tapeSlots() > MAX_TAPE_ELEMENTS) return 0xFFFF;
  return 0;
}

/** Places the tape rings, state blocks and the element table; with `write`, formats them. */
export function tapePlan(write: bool, at: usize): usize {
  const n = tapeDevices();
  for (let d: u32 = 0; d < n; d++) {
    const m = tapeMap(d);
    if (write) { store<u32>(m + MTD_SQ, <u32>at); ringInit(at, RING_ENTRIES, TSQ_BYTES, DB_TAPE_BASE + d); }
    at = alignUp(at + ringBytes(RING_ENTRIES, TSQ_BYTES), REGION_ALIGN);
    if (write) { store<u32>(m + MTD_CQ, <u32>at); ringInit(at, RING_ENTRIES, TCQ_BYTES, DB_NONE); }
    at = alignUp(at + ringBytes(RING_ENTRIES, TCQ_BYTES), REGION_ALIGN);
    if (write) { store<u32>(m + MTD_STATE, <u32>at); memory.fill(at, 0, TDS_BYTES); }
    at += TDS_BYTES;
  }
  if (n == 0) return at;
  at = alignUp(at, REGION_ALIGN);
  const elements = 1 + tapeIe() + tapeDrives() + tapeSlots();
  if (write) {
    store<u32>(MAP_ADDR + MAP_TAPE_ELEMENTS, <u32>at);
    store<u32>(MAP_ADDR + MAP_TAPE_ELEMENT_COUNT, elements);
    formatElements(at);
  }
  return alignUp(at + <usize>elements * TEL_BYTES, REGION_ALIGN);
}

/** Addresses and types, all empty: the binding fills in what its sensors see before boot. */
function formatElements(at: usize): void {
  memory.fill(at, 0, <usize>(1 + tapeIe() + tapeDrives() + tapeSlots()) * TEL_BYTES);
  let i: u32 = 0;
  i = formatKind(at, i, ELT_TRANSPORT, ELEM_TRANSPORT, 1);
  i = formatKind(at, i, ELT_IE, ELEM_IE_BASE, tapeIe());
  i = formatKind(at, i, ELT_DRIVE, ELEM_DRIVE_BASE, tapeDrives());
  formatKind(at, i, ELT_STORAGE, ELEM_SLOT_BASE, tapeSlots());
}

function formatKind(at: usize, i: u32, type: u32, base: u32, count: u32): u32 {
  for (let k: u32 = 0; k < count; k++) {
    const e = at + <usize>(i + k) * TEL_BYTES;
    store<u16>(e + TEL_ADDRESS, <u16>(base + k));
    store<u8>(e + TEL_TYPE, <u8>type);
    store<u16>(e + 4, 0xFFFF);
  }
  return i + count;
}
