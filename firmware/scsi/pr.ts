// Reservations (SPC-5 5.14): PERSISTENT RESERVE IN and OUT, and the older RESERVE and RELEASE (6),
// (10). An I_T nexus is an initiator identity (name and ISID, as the transport learnt them: see
// channel.ts setIdentity) through one target port; a registration is a key for one volume from one
// nexus. The table lives in the NV region (nv.ts, NVT_RESERVATIONS), each record sealed with a
// CRC-32C; every PERSISTENT RESERVE OUT persists it before its status. At boot what the volume's
// last REGISTER did not ask to keep (APTPL=0) is dropped, as a power loss drops it for initiators;
// with APTPL=1 it survives restart and kill -9. RESERVE (6)/(10) reservations are never kept: a
// reset, the nexus's logout and a restart release them.
//
// Every command to a volume passes reservationConflict first (dispatch.ts), whichever transport
// brought it: a nexus the reservation does not admit gets RESERVATION CONFLICT (SPC-5 table 71,
// SBC-4 4.17): reads are admitted under Write Exclusive types, nothing that changes the medium or
// its mode is, and INQUIRY, REPORT LUNS, REQUEST SENSE, TEST UNIT READY, READ CAPACITY,
// REPORT SUPPORTED OPERATION CODES and PERSISTENT RESERVE IN/OUT always are (PERSISTENT RESERVE
// OUT then applies its own rules).
//
// The library's tape devices (docs/tape.md) are units of the same table: unit PR_TAPE_UNIT + device.
// Their registrations take records of the shared pool; their unit record lives in the device's state
// block (tape/device.ts TDS_PR), not in NV, so a drive's reservations do not outlive a restart of the
// array (REPORT CAPABILITIES says PTPL_C 0 there and REGISTER refuses APTPL): a drive is rewound and
// unthreaded by a restart anyway, and the backup that reserved it has to start again. Which commands
// a Write Exclusive reservation admits to a drive are tapeRead's.
import { CX_PORT, CX_SESSION, CX_ID, CX_FLAGS, CX_EXPECTED, CX_STATE, CXF_PARAM, ST_RESPOND, ctxField } from "../ctx";
import { gIndex } from "../iop";
import {
  fail, good, finishStatus, dataInBuffer, sendBuffer, startDataOut, parameterList, waitPersisted, nvPending, nvRefuse,
  retryLater, abortWhere, ABORT_SILENT, LU_TAPE_BASE,
} from "../sequencer";
import { nvDegraded, nvRoom, nvId, nvPersistRange, nvReservations, seal, sealed, blank, NVK_CONTEXT, NVK_NONE,
  PR_REGISTRATIONS, PR_REG_BYTES, PR_VOL_BYTES, PR_TABLE_BYTES } from "../nv";
import { MAX_VOLUMES, CPORT_IOP, MAX_SESSIONS, PORT_ISCSI } from "../abi";
import { cfgPort, portCount } from "../config";
import { SS_IDENTITY, SS_ISID, SS_OPEN, SS_IDENTITY_KIND, IDENTITY_NAME_BYTES, sessionState, sessionStateOf, portSessions } from "../channel";
import { volumeInUse } from "../volume";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64, putHex } from "../util";
import { tapeState, TDS_PR } from "../tape/device";
import { cdb, invalidField } from "./dispatch";
import {
  uaNexus, sameInitiator, UA_RESERVATIONS_PREEMPTED, UA_RESERVATIONS_RELEASED, UA_REGISTRATIONS_PREEMPTED,
} from "./ua";

// A registration record (PR_REG_BYTES).
const R_USED: u32 = 0; // u8: REG_*
const R_PORT: u32 = 1; // u8: target port index
const R_VOLUME: u32 = 2; // u16
const R_ISID: u32 = 4; // 6 bytes
const R_KIND: u32 = 10; // u8: PORT_* the identity came from (the TransportID's protocol)
const R_KEY: u32 = 16; // u64
const R_NAME: u32 = 32; // IDENTITY_NAME_BYTES, NUL-terminated
const R_CRC: u32 = PR_REG_BYTES - 4;
const REG_FREE: u32 = 0;
const REG_KEY: u32 = 1; // a persistent reservation registration
const REG_SPC2: u32 = 2; // the holder of a RESERVE (6)/(10) reservation: never kept over a restart

// A volume's record (PR_VOL_BYTES), after the registrations.
const V_TYPE: u32 = 0; // u8: TYPE_*, 0 none
const V_APTPL: u32 = 1; // u8: keep over a power loss (the last REGISTER's APTPL)
const V_HOLDER: u32 = 2; // u16: registration index + 1 of the holder (0 for the all-registrants types)
const V_GENERATION: u32 = 4; // u32: PRgeneration
const V_SPC2: u32 = 8; // u16: registration index + 1 of a RESERVE (6)/(10) holder
const V_MODE_SAVED: u32 = 10; // u8: MODE_* saved by MODE SELECT with SP=1 (mode.ts)
const V_MODE_CURRENT: u32 = 11; // u8: MODE_* now
const V_CRC: u32 = 12;

/** Mode flags of a volume (mode.ts): the caching page's WCE, inverted, so that 0 is the default. */
export const MODE_WCD: u32 = 1;
/** Not a mode page: the volume was stopped by START STOP UNIT (current flags only, never saved). */
export const STATE_STOPPED: u32 = 0x80;

export function modeFlags(v: u32, saved: bool): u32 { return <u32>load<u8>(vol(v) + (saved ? V_MODE_SAVED : V_MODE_CURRENT)); }

/** Sets the volume's current and saved mode flags (the caller persists the table). */
export function setModeFlags(v: u32, current: u32, saved: u32): void {
  const vr = vol(v);
  store<u8>(vr + V_MODE_CURRENT, <u8>current);
  store<u8>(vr + V_MODE_SAVED, <u8>saved);
  sealVol(v);
}

const TYPE_WE: u32 = 1; // Write Exclusive
const TYPE_EA: u32 = 3; // Exclusive Access
const TYPE_WE_RO: u32 = 5; // ... Registrants Only
const TYPE_EA_RO: u32 = 6;
const TYPE_WE_AR: u32 = 7; // ... All Registrants
const TYPE_EA_AR: u32 = 8;

const STATUS_RESERVATION_CONFLICT: u32 = 0x18;
const PROUT_LIST_BYTES: u32 = 24;

/** Tape device d's unit in this table (docs/tape.md, Reservations). */
export const PR_TAPE_UNIT: u32 = MAX_VOLUMES;

// @ts-ignore: decorator
@inline function isTape(v: u32): bool { return v >= PR_TAPE_UNIT; }

// @ts-ignore: decorator
@inline function reg(i: u32): usize { return nvReservations() + <usize>i * PR_REG_BYTES; }
// @ts-ignore: decorator
@inline function vol(v: u32): usize { return isTape(v) ? tapeState(v - PR_TAPE_UNIT) + TDS_PR : nvReservations() + <usize>PR_REGISTRATIONS * PR_REG_BYTES + <usize>v * PR_VOL_BYTES; }

function validType(t: u32): bool { return t == TYPE_WE || t == TYPE_EA || (t >= TYPE_WE_RO && t <= TYPE_EA_AR); }
function allRegistrants(t: u32): bool { return t == TYPE_WE_AR || t == TYPE_EA_AR; }
function registrantsOnly(t: u32): bool { return t == TYPE_WE_RO || t == TYPE_EA_RO; }
function writeExclusive(t: u32): bool { return t == TYPE_WE || t == TYPE_WE_RO || t == TYPE_WE_AR; }

// ---- Nexus -------------------------------------------------------------------------------------------

/** Does record r belong to the command's I_T nexus (same port, initiator name and ISID)? */
function ofNexus(r: usize, c: usize): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  if (<u32>load<u8>(r + R_PORT) != port) return false;
  return sameInitiator(sessionState(port, <u32>load<u8>(c + CX_SESSION)), r + R_NAME, r + R_ISID);
}

/** The registration (REG_KEY or REG_SPC2) of the command's nexus for volume v: index, or -1. */
function findReg(c: usize, v: u32, used: u32): i32 {
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (<u32>load<u8>(r + R_USED) == used && <u32>load<u16>(r + R_VOLUME) == v && ofNexus(r, c)) return <i32>i;
  }
  return -1;
}

function newReg(c: usize, v: u32, used: u32, key: u64): i32 {
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (<u32>load<u8>(r + R_USED) != REG_FREE) continue;
    const port = <u32>load<u8>(c + CX_PORT);
    const ss = sessionState(port, <u32>load<u8>(c + CX_SESSION));
    memory.fill(r, 0, PR_REG_BYTES);
    store<u8>(r + R_USED, <u8>used);
    store<u8>(r + R_PORT, <u8>port);
    store<u16>(r + R_VOLUME, <u16>v);
    memory.copy(r + R_ISID, ss + SS_ISID, 6);
    store<u8>(r + R_KIND, load<u8>(ss + SS_IDENTITY_KIND));
    store<u64>(r + R_KEY, key);
    memory.copy(r + R_NAME, ss + SS_IDENTITY, IDENTITY_NAME_BYTES);
    store<u8>(r + R_NAME + IDENTITY_NAME_BYTES - 1, 0);
    seal(r, R_CRC);
    return <i32>i;
  }
  return -1;
}

function dropReg(i: u32): void {
  memory.fill(reg(i), 0, PR_REG_BYTES);
}

/** Tells every session of registration i's nexus: code (a UA on volume v). */
function tellReg(i: u32, v: u32, code: u32): void {
  const r = reg(i);
  uaNexus(<u32>load<u8>(r + R_PORT), r + R_NAME, r + R_ISID, v, code);
}

// ---- Conflicts -----------------------------------------------------------------------------------------

/**
 * Does a reservation of volume v refuse this command to its nexus? Then it has ended with
 * RESERVATION CONFLICT (true). RELEASE from a nexus that does not hold a RESERVE is GOOD, doing
 * nothing (SPC-2 7.21.1); it is answered here too.
 */
export function reservationConflict(c: usize, v: u32, op: u32, sa: u32): bool {
  const vr = vol(v);
  const spc2 = <u32>load<u16>(vr + V_SPC2);
  if (spc2 != 0) {
    if (ofNexus(reg(spc2 - 1), c)) return false;
    if (op == 0x12 || op == 0xA0 || op == 0x03) return false; // INQUIRY, REPORT LUNS, REQUEST SENSE
    if (op == 0x17 || op == 0x57) { good(c); return true; } // RELEASE by another: nothing to release
    finishStatus(c, STATUS_RESERVATION_CONFLICT);
    return true;
  }
  if (alwaysAdmitted(op, sa) || reservationAdmits(c, v, !(isTape(v) ? tapeRead(op) : isRead(op, sa)))) return false;
  finishStatus(c, STATUS_RESERVATION_CONFLICT);
  return true;
}

/**
 * Does unit v's persistent reservation admit the command's nexus to read (write false) or to change
 * the medium (write true)? Also asked for a copy target of EXTENDED COPY (xcopy/command.ts), which
 * reaches a unit as its initiator would.
 */
export function reservationAdmits(c: usize, v: u32, write: bool): bool {
  const type = <u32>load<u8>(vol(v) + V_TYPE);
  if (type == 0) return true;
  if (holds(c, v, type) || ((registrantsOnly(type) || allRegistrants(type)) && findReg(c, v, REG_KEY) >= 0)) return true;
  return !write && writeExclusive(type);
}

/** Is a persistent reservation held on unit v? (RESERVE (6) of a tape device conflicts with it.) */
export function persistentlyReserved(v: u32): bool { return load<u8>(vol(v) + V_TYPE) != 0; }

function holds(c: usize, v: u32, type: u32): bool {
  const h = <u32>load<u16>(vol(v) + V_HOLDER);
  if (allRegistrants(type)) return findReg(c, v, REG_KEY) >= 0;
  return h != 0 && ofNexus(reg(h - 1), c);
}

function alwaysAdmitted(op: u32, sa: u32): bool {
  return op == 0x00 || op == 0x03 || op == 0x12 || op == 0xA0 || op == 0x25 || op == 0x5E || op == 0x5F
    || (op == 0x9E && sa == 0x10) || (op == 0xA3 && (sa == 0x0C || sa == 0x0D));
}

/**
 * A tape device's commands that neither write nor move the medium, and READ(6) (SSC-3 table 12 lets
 * a Write Exclusive reservation admit reads): READ BLOCK LIMITS, READ, READ POSITION, MODE SENSE,
 * READ ELEMENT STATUS. What positions the tape (SPACE, LOCATE, REWIND), loads
 * it, moves a cartridge or changes a mode would disturb the holder's backup: those conflict.
 */
function tapeRead(op: u32): bool {
  return op == 0x05 || op == 0x08 || op == 0x34 || op == 0x1A || op == 0x5A || op == 0xB8;
}

/** Commands that only read (the medium or its state): admitted under the Write Exclusive types. */
function isRead(op: u32, sa: u32): bool {
  return op == 0x08 || op == 0x28 || op == 0xA8 || op == 0x88 || op == 0x2F || op == 0xAF || op == 0x8F
    || op == 0x34 || op == 0x90 || op == 0x1A || op == 0x5A || (op == 0x9E && sa == 0x12);
}

// ---- RESERVE, RELEASE (6), (10) -------------------------------------------------------------------------

/** RESERVE (6)/(10): the whole volume for this nexus (no third-party, no extents). */
export function reserve(c: usize, v: u32, ten: bool): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & (ten ? 0x13 : 0x1F)) != 0) { invalidField(c, 1, -1); return; } // 3RDPTY, LONGID, extents
  const vr = vol(v);
  if (<u32>load<u8>(vr + V_TYPE) != 0) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return; } // a persistent one is held
  if (load<u16>(vr + V_SPC2) != 0) { good(c); return; } // this nexus holds it already (others were refused above)
  const i = newReg(c, v, REG_SPC2, 0);
  if (i < 0) { fail(c, 0x05, 0x55, 0x04); return; } // INSUFFICIENT REGISTRATION RESOURCES
  store<u16>(vr + V_SPC2, <u16>(i + 1));
  sealVol(v);
  good(c);
}

/** RELEASE (6)/(10) by the holder (others were answered by reservationConflict). */
export function release(c: usize, v: u32, ten: bool): void {
  const p = cdb(c);
  if ((load<u8>(p + 1) & (ten ? 0x13 : 0x1F)) != 0) { invalidField(c, 1, -1); return; }
  const vr = vol(v);
  if (<u32>load<u8>(vr + V_TYPE) != 0) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return; }
  releaseSpc2(v);
  good(c);
}

function releaseSpc2(v: u32): void {
  const vr = vol(v);
  const h = <u32>load<u16>(vr + V_SPC2);
  if (h == 0) return;
  dropReg(h - 1);
  store<u16>(vr + V_SPC2, 0);
  sealVol(v);
}

/** A reset of volume v (LOGICAL UNIT RESET, TARGET RESET) releases its RESERVE (6)/(10) reservation. */
export function reservationsReset(v: u32): void { releaseSpc2(v); }

/** The session closed: the RESERVE (6)/(10) reservations its nexus held are released. */
export function reservationsNexusLost(port: u32, s: u32): void {
  const ss = sessionState(port, s);
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const h = <u32>load<u16>(vol(v) + V_SPC2);
    if (h == 0) continue;
    const r = reg(h - 1);
    if (<u32>load<u8>(r + R_PORT) == port && sameInitiator(ss, r + R_NAME, r + R_ISID) && !otherSessionOf(port, s, r)) releaseSpc2(v);
  }
}

/** Is another open session of the port the same nexus (the same initiator logged in twice)? */
function otherSessionOf(port: u32, s: u32, r: usize): bool {
  const iop = <u32>load<u8>(cfgPort(port) + CPORT_IOP);
  const n = portSessions(port);
  for (let o: u32 = 0; o < n && o < MAX_SESSIONS; o++) {
    if (o == s) continue;
    const ss = sessionStateOf(iop, port, o);
    if (load<u32>(ss + SS_OPEN) != 0 && sameInitiator(ss, r + R_NAME, r + R_ISID)) return true;
  }
  return false;
}

function sealVol(v: u32): void { seal(vol(v), V_CRC); }

// ---- PERSISTENT RESERVE IN --------------------------------------------------------------------------------

export function persistentReserveIn(c: usize, v: u32): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  const alloc = getBe16(p + 7);
  if (sa > 3) { invalidField(c, 1, 4); return; }
  const d = dataInBuffer(c, 8 + PR_REGISTRATIONS * (24 + IDENTITY_NAME_BYTES + 32));
  if (d == 0) return;
  const vr = vol(v);
  const type = <u32>load<u8>(vr + V_TYPE);
  let n: u32 = 8;
  putBe32(d, load<u32>(vr + V_GENERATION));
  if (sa == 0) { // READ KEYS
    for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
      const r = reg(i);
      if (<u32>load<u8>(r + R_USED) != REG_KEY || <u32>load<u16>(r + R_VOLUME) != v) continue;
      putBe64(d + n, load<u64>(r + R_KEY));
      n += 8;
    }
  } else if (sa == 1) { // READ RESERVATION
    if (type != 0) {
      const h = <u32>load<u16>(vr + V_HOLDER);
      if (h != 0) putBe64(d + n, load<u64>(reg(h - 1) + R_KEY)); // all-registrants types: key 0
      store<u8>(d + n + 13, <u8>type); // scope 0: logical unit
      n += 16;
    }
  } else if (sa == 2) { // REPORT CAPABILITIES
    putBe16(d, 8);
    store<u8>(d + 2, isTape(v) ? 0x10 : 0x11); // CRH (RESERVE/RELEASE beside persistent reservations), PTPL_C (volumes only)
    store<u8>(d + 3, <u8>(0x80 | (load<u8>(vr + V_APTPL) != 0 ? 1 : 0))); // TMV, PTPL_A
    store<u8>(d + 4, 0xEA); // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
    store<u8>(d + 5, 0x01); // EX_AC_AR
    sendBuffer(c, min<u32>(8, alloc));
    return;
  } else { // READ FULL STATUS
    for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
      const r = reg(i);
      if (<u32>load<u8>(r + R_USED) != REG_KEY || <u32>load<u16>(r + R_VOLUME) != v) continue;
      n += fullStatus(d + n, r, i, vr, type);
    }
  }
  putBe32(d + 4, n - 8);
  sendBuffer(c, min<u32>(n, alloc));
}

/** One READ FULL STATUS descriptor: key, holder flag and type, relative target port, TransportID. */
function fullStatus(d: usize, r: usize, i: u32, vr: usize, type: u32): u32 {
  putBe64(d, load<u64>(r + R_KEY));
  const holder = type != 0 && (allRegistrants(type) || <u32>load<u16>(vr + V_HOLDER) == i + 1);
  if (holder) { store<u8>(d + 12, 0x01); store<u8>(d + 13, <u8>type); }
  putBe16(d + 18, <u32>load<u8>(r + R_PORT) + 1);
  const id = transportId(d + 24, r);
  putBe32(d + 20, id);
  return 24 + id;
}

/**
 * The nexus's TransportID (SPC-5 7.6.4): iSCSI's format 01b, "<name>,i,0x<ISID>", NUL-terminated
 * and padded to 4 bytes; for the framed and queue transports the same layout under protocol 0Fh.
 */
function transportId(d: usize, r: usize): u32 {
  const iscsi = <u32>load<u8>(r + R_KIND) == PORT_ISCSI;
  store<u8>(d, <u8>(0x40 | (iscsi ? 0x05 : 0x0F)));
  let n: u32 = 0;
  while (n < IDENTITY_NAME_BYTES - 1 && load<u8>(r + R_NAME + n) != 0) { store<u8>(d + 4 + n, load<u8>(r + R_NAME + n)); n++; }
  const t = d + 4 + n; // ",i,0x" and 12 hex digits
  store<u8>(t, 0x2C); store<u8>(t + 1, 0x69); store<u8>(t + 2, 0x2C); store<u8>(t + 3, 0x30); store<u8>(t + 4, 0x78);
  putHex(t + 5, <u32>getBe16(r + R_ISID), 4);
  putHex(t + 9, getBe32(r + R_ISID + 2), 8);
  n += 17;
  store<u8>(d + 4 + n, 0);
  n = (n + 1 + 3) & ~3;
  putBe16(d + 2, n);
  return 4 + n;
}

// ---- PERSISTENT RESERVE OUT ----------------------------------------------------------------------------

const SA_REGISTER: u32 = 0;
const SA_RESERVE: u32 = 1;
const SA_RELEASE: u32 = 2;
const SA_CLEAR: u32 = 3;
const SA_PREEMPT: u32 = 4;
const SA_PREEMPT_AND_ABORT: u32 = 5;
const SA_REGISTER_IGNORE: u32 = 6;

export function persistentReserveOut(c: usize, v: u32): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) {
    if (sa > SA_REGISTER_IGNORE) { invalidField(c, 1, 4); return; } // REGISTER AND MOVE is not offered
    const length = getBe32(p + 5);
    if (length != PROUT_LIST_BYTES) { fail(c, 0x05, 0x1A, 0x00); ctxField(c, true, 5, -1); return; }
    if (load<u32>(c + CX_EXPECTED) < length) { fail(c, 0x05, 0x0E, 0x03); return; }
    const scopeType = <u32>load<u8>(p + 2);
    if ((sa == SA_RESERVE || sa == SA_RELEASE || sa == SA_PREEMPT || sa == SA_PREEMPT_AND_ABORT)
      && ((scopeType >> 4) != 0 || !validType(scopeType & 0xF))) { invalidField(c, 2, (scopeType >> 4) != 0 ? 7 : 3); return; }
    if (nvDegraded()) { nvRefuse(c); return; }
    startDataOut(c, length);
    return;
  }
  const list = parameterList(c);
  if (list == 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  const flags = <u32>load<u8>(list + 20);
  if ((flags & 0x08) != 0) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 20, 3); return; } // SPEC_I_PT: not offered
  if ((flags & 0x04) != 0) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 20, 2); return; } // ALL_TG_PT: not offered
  if ((flags & 0x01) != 0 && isTape(v)) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 20, 0); return; } // APTPL: a drive's are not kept
  const key = getBe64(list);
  const saKey = getBe64(list + 8);
  const type = <u32>load<u8>(p + 2) & 0xF;
  let changed = true;
  if (sa == SA_REGISTER || sa == SA_REGISTER_IGNORE) changed = register(c, v, key, saKey, (flags & 1) != 0, sa == SA_REGISTER_IGNORE);
  else {
    const mine = findReg(c, v, REG_KEY);
    if (mine < 0 || load<u64>(reg(<u32>mine) + R_KEY) != key) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return; }
    if (sa == SA_RESERVE) changed = reservePr(c, v, <u32>mine, type);
    else if (sa == SA_RELEASE) changed = releasePr(c, v, <u32>mine, type);
    else if (sa == SA_CLEAR) clearPr(v, <u32>mine);
    else changed = preempt(c, v, <u32>mine, saKey, type, sa == SA_PREEMPT_AND_ABORT);
  }
  if (<u32>load<u8>(c + CX_STATE) == ST_RESPOND) return; // answered above: a conflict or a bad field
  if (!changed) { good(c); return; }
  nvPersistRange(nvReservations(), PR_TABLE_BYTES, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)));
  nvPending(c, 1);
  waitPersisted(c);
}

function bump(v: u32): void {
  const vr = vol(v);
  store<u32>(vr + V_GENERATION, load<u32>(vr + V_GENERATION) + 1);
}

/** REGISTER and REGISTER AND IGNORE EXISTING KEY. Returns whether anything changed (false: answered, or nothing to do). */
function register(c: usize, v: u32, key: u64, saKey: u64, aptpl: bool, ignore: bool): bool {
  const mine = findReg(c, v, REG_KEY);
  if (mine < 0) {
    if (!ignore && key != 0) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return false; }
    if (saKey == 0) return false; // unregistering a nexus that is not registered: nothing
    if (newReg(c, v, REG_KEY, saKey) < 0) { fail(c, 0x05, 0x55, 0x04); return false; } // INSUFFICIENT REGISTRATION RESOURCES
  } else {
    const r = reg(<u32>mine);
    if (!ignore && load<u64>(r + R_KEY) != key) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return false; }
    if (saKey == 0) unregister(v, <u32>mine);
    else { store<u64>(r + R_KEY, saKey); seal(r, R_CRC); }
  }
  store<u8>(vol(v) + V_APTPL, aptpl ? 1 : 0);
  bump(v);
  sealVol(v);
  return true;
}

/**
 * Registration i goes. Its reservation goes with it (for the all-registrants types, only with the
 * last registrant); for the registrants-only types the other registrants are told it was released.
 */
function unregister(v: u32, i: u32): void {
  const vr = vol(v);
  const type = <u32>load<u8>(vr + V_TYPE);
  dropReg(i);
  if (type == 0) return;
  if (allRegistrants(type)) { if (registrations(v) == 0) clearReservation(v); return; }
  if (<u32>load<u16>(vr + V_HOLDER) != i + 1) return;
  clearReservation(v);
  if (registrantsOnly(type)) tellAll(v, UA_RESERVATIONS_RELEASED, 0xFFFFFFFF);
}

function registrations(v: u32): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (<u32>load<u8>(r + R_USED) == REG_KEY && <u32>load<u16>(r + R_VOLUME) == v) n++;
  }
  return n;
}

function clearReservation(v: u32): void {
  const vr = vol(v);
  store<u8>(vr + V_TYPE, 0);
  store<u16>(vr + V_HOLDER, 0);
  sealVol(v);
}

/** Every registrant of v but registration `except`: told `code`. */
function tellAll(v: u32, code: u32, except: u32): void {
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (i != except && <u32>load<u8>(r + R_USED) == REG_KEY && <u32>load<u16>(r + R_VOLUME) == v) tellReg(i, v, code);
  }
}

function reservePr(c: usize, v: u32, mine: u32, type: u32): bool {
  const vr = vol(v);
  const held = <u32>load<u8>(vr + V_TYPE);
  if (held != 0) {
    // The holder asking again for the same type: nothing; anything else conflicts.
    if (holds(c, v, held) && held == type) return false;
    finishStatus(c, STATUS_RESERVATION_CONFLICT);
    return false;
  }
  store<u8>(vr + V_TYPE, <u8>type);
  store<u16>(vr + V_HOLDER, allRegistrants(type) ? 0 : <u16>(mine + 1));
  sealVol(v);
  return true;
}

function releasePr(c: usize, v: u32, mine: u32, type: u32): bool {
  const vr = vol(v);
  const held = <u32>load<u8>(vr + V_TYPE);
  if (held == 0 || !holds(c, v, held)) return false; // nothing of ours to release: GOOD
  if (held != type) { fail(c, 0x05, 0x26, 0x04); return false; } // INVALID RELEASE OF PERSISTENT RESERVATION
  clearReservation(v);
  if (registrantsOnly(held) || allRegistrants(held)) tellAll(v, UA_RESERVATIONS_RELEASED, mine);
  return true;
}

function clearPr(v: u32, mine: u32): void {
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (<u32>load<u8>(r + R_USED) != REG_KEY || <u32>load<u16>(r + R_VOLUME) != v) continue;
    if (i != mine) tellReg(i, v, UA_RESERVATIONS_PREEMPTED);
    dropReg(i);
  }
  clearReservation(v);
  bump(v);
  sealVol(v);
}

/**
 * PREEMPT (and PREEMPT AND ABORT): the registrations holding saKey go (their nexuses are told,
 * 2Ah/05h), and when they held the reservation (or it is an all-registrants one and saKey is 0)
 * this nexus takes it with the type asked for. With ABORT the removed nexuses' commands to the
 * volume on this channel IOP end without status.
 */
function preempt(c: usize, v: u32, mine: u32, saKey: u64, type: u32, abort: bool): bool {
  const vr = vol(v);
  const held = <u32>load<u8>(vr + V_TYPE);
  const h = <u32>load<u16>(vr + V_HOLDER);
  const takeOver = held != 0 && (allRegistrants(held) ? saKey == 0 : load<u64>(reg(h - 1) + R_KEY) == saKey);
  if (saKey == 0 && !takeOver) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 8, -1); return false; }
  let removed: u32 = 0;
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (i == mine || <u32>load<u8>(r + R_USED) != REG_KEY || <u32>load<u16>(r + R_VOLUME) != v) continue;
    if (saKey != 0 && load<u64>(r + R_KEY) != saKey) continue;
    tellReg(i, v, UA_REGISTRATIONS_PREEMPTED);
    if (abort) abortNexus(r, v);
    dropReg(i);
    removed++;
  }
  if (!takeOver && removed == 0) { finishStatus(c, STATUS_RESERVATION_CONFLICT); return false; }
  if (takeOver) {
    const changedType = held != type;
    store<u8>(vr + V_TYPE, <u8>type);
    store<u16>(vr + V_HOLDER, allRegistrants(type) ? 0 : <u16>(mine + 1));
    if (changedType) tellAll(v, UA_RESERVATIONS_RELEASED, mine);
  }
  bump(v);
  sealVol(v);
  return true;
}

/** Ends, without status, the commands to volume v of registration r's nexus on this channel IOP. */
function abortNexus(r: usize, v: u32): void {
  const port = <u32>load<u8>(r + R_PORT);
  if (port >= portCount() || <u32>load<u8>(cfgPort(port) + CPORT_IOP) != gIndex) return;
  const n = portSessions(port);
  for (let s: u32 = 0; s < n && s < MAX_SESSIONS; s++) {
    const ss = sessionState(port, s);
    if (load<u32>(ss + SS_OPEN) != 0 && sameInitiator(ss, r + R_NAME, r + R_ISID)) abortWhere(port, s, isTape(v) ? LU_TAPE_BASE + v - PR_TAPE_UNIT : v, ABORT_SILENT);
  }
}

// ---- Boot ------------------------------------------------------------------------------------------------

/** An image from before the table (NV version 6): it starts empty, and is persisted so. */
export function reservationsFormat(): void {
  memory.fill(nvReservations(), 0, PR_TABLE_BYTES);
  nvPersistRange(nvReservations(), PR_TABLE_BYTES, nvId(NVK_NONE, 0));
}

/**
 * At boot: records that fail their CRC, of deleted volumes, RESERVE (6)/(10) holders, and every
 * registration and reservation of a volume whose last REGISTER did not set APTPL are dropped.
 */
export function reservationsBoot(): void {
  let changed = false;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const vr = vol(v);
    if (blank(vr, PR_VOL_BYTES)) continue;
    const whole = sealed(vr, V_CRC) && volumeInUse(v);
    const generation = whole ? load<u32>(vr + V_GENERATION) : 0;
    const saved = whole ? load<u8>(vr + V_MODE_SAVED) : 0;
    if (!whole || load<u8>(vr + V_APTPL) == 0) memory.fill(vr, 0, PR_VOL_BYTES); // a power loss to the initiators
    store<u16>(vr + V_SPC2, 0);
    store<u32>(vr + V_GENERATION, generation);
    store<u8>(vr + V_MODE_SAVED, saved); // mode pages: the saved values are the current ones again
    store<u8>(vr + V_MODE_CURRENT, saved);
    if (blank(vr, V_CRC)) memory.fill(vr, 0, PR_VOL_BYTES); else sealVol(v);
    changed = true;
  }
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) {
    const r = reg(i);
    if (blank(r, PR_REG_BYTES)) continue;
    const v = <u32>load<u16>(r + R_VOLUME);
    const keep = sealed(r, R_CRC) && <u32>load<u8>(r + R_USED) == REG_KEY && v < MAX_VOLUMES && volumeInUse(v)
      && load<u8>(vol(v) + V_APTPL) != 0;
    if (!keep) { dropReg(i); changed = true; }
  }
  // A reservation whose holder's registration did not survive goes with it.
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const vr = vol(v);
    const h = <u32>load<u16>(vr + V_HOLDER);
    if (h != 0 && (h > PR_REGISTRATIONS || <u32>load<u8>(reg(h - 1) + R_USED) != REG_KEY)) { clearReservation(v); changed = true; }
  }
  if (changed) nvPersistRange(nvReservations(), PR_TABLE_BYTES, nvId(NVK_NONE, 0));
}

/** Volume v was deleted: its registrations, reservations and mode pages go with it (persisted by the caller's NV writes). */
export function reservationsDropVolume(v: u32): void {
  for (let i: u32 = 0; i < PR_REGISTRATIONS; i++) if (<u32>load<u16>(reg(i) + R_VOLUME) == v && load<u8>(reg(i) + R_USED) != 0) dropReg(i);
  memory.fill(vol(v), 0, PR_VOL_BYTES);
}
