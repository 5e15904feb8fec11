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
//                          claim becomes ORPHAN, and the next claimant reaps that completion first
//
// The copy manager (EXTENDED COPY, a later unit on the disk IOP) names a drive by the NAA of its
// VPD page 83h: tapeDeviceByNaa. Its buffers are its own; the binding moves record data to and from
// whatever common-memory address the request names. Everything here is in common memory: no
// module-level state.
import {
  CONFIG_ADDR, CFG_TAPE, CTP_DEVICES, CTP_SLOTS, CTP_IE, CFG_TAPE_TABLE, CFG_TAPE_BYTES, CTD_KIND, CTD_LUN,
  CTD_ELEMENT, TDK_CHANGER, TDK_DRIVE, MAX_TAPE_DEVICES, MAX_TAPE_ELEMENTS, TAPE_LUN_MIN, MAP_ADDR, MAP_TAPE_TABLE,
  MAP_TAPE_BYTES, MTD_SQ, MTD_CQ, MTD_STATE, MTD_STATUS, MTD_POSITION, MAP_TAPE_ELEMENTS, MAP_TAPE_ELEMENT_COUNT,
  TSQ_BYTES, TCQ_BYTES, TSQ_OP, TSQ_ID, TSQ_COUNT, TSQ_ADDR, TSQ_ARG, TSQ_ARG2, TCQ_ID, TEL_BYTES, TEL_ADDRESS,
  TEL_TYPE, ELEM_TRANSPORT, ELEM_IE_BASE, ELEM_DRIVE_BASE, ELEM_SLOT_BASE, ELT_TRANSPORT, ELT_STORAGE, ELT_IE,
  ELT_DRIVE, DB_TAPE_BASE, DB_NONE, CFG_DEVICE_ID, REGION_ALIGN, MAX_LUNS,
} from "../abi";
import { ringInit, ringBytes, ringReserve, ringPublish, ringRing, ringPeek, ringRelease } from "../ring";
import { alignUp } from "../util";

/** The device state block (one per tape device, laid out by layout()). */
export const TDS_CLAIM: u32 = 0; // u32: 0 free, ORPHAN, or the holder's token
export const TDS_BLOCK_SIZE: u32 = 4; // u32: drive: fixed block length of MODE SELECT (0: variable)
export const TDS_RES_PORT: u32 = 8; // u16: port + 1 of the I_T nexus holding a RESERVE (0: none)
export const TDS_RES_SESSION: u32 = 10; // u16
export const TDS_RES_GEN: u32 = 12; // u32: that session's generation (a reservation dies with its nexus)
export const TDS_NEXT_ID: u32 = 16; // u32: request ids
export const TDS_INFLIGHT: u32 = 20; // u32: 1 while a request is at the binding
export const TDS_PREVENT: u32 = 24; // u32: PREVENT MEDIUM REMOVAL in effect
export const TDS_BYTES: u32 = 64;
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

/** Writes the tape LUNs (flat addressing) at dst, 8 bytes each; returns how many. */
export function tapeReportLuns(dst: usize): u32 {
  const n = tapeDevices();
  for (let d: u32 = 0; d < n; d++) {
    const lun = tapeLun(d);
    memory.fill(dst + d * 8, 0, 8);
    store<u8>(dst + d * 8, <u8>(0x40 | (lun >> 8)));
    store<u8>(dst + d * 8 + 1, <u8>lun);
  }
  return n;
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

/** An aborted holder's request has completed: its completion is dropped and the device is free. */
function reapOrphan(dev: u32): bool {
  const s = tapeState(dev);
  if (load<u32>(s + TDS_INFLIGHT) != 0) {
    if (tapeResult(dev) == 0) return false;
    ringRelease(load<u32>(tapeMap(dev) + MTD_CQ), 1);
    store<u32>(s + TDS_INFLIGHT, 0);
  }
  atomic.cmpxchg<u32>(s + TDS_CLAIM, ORPHAN, 0);
  return true;
}

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

/** The holder went away: a request in flight is reaped by the next claimant. */
export function tapeForget(dev: u32, token: u32): void {
  const s = tapeState(dev);
  atomic.cmpxchg<u32>(s + TDS_CLAIM, token, load<u32>(s + TDS_INFLIGHT) != 0 ? ORPHAN : 0);
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
