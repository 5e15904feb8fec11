// Unit attention conditions (SAM-5 5.14, SPC-5 5.14): kept per I_T nexus and logical unit, in the
// session's state, oldest first; the next command of that nexus to that unit (but INQUIRY, REPORT
// LUNS, REQUEST SENSE) ends CHECK CONDITION, UNIT ATTENTION with the oldest, which is then cleared;
// REQUEST SENSE returns it as its data and clears it. A condition is established by whatever
// changed the unit for others: a reset (29h/03h), a MODE SELECT (2Ah/01h), a persistent
// reservation preempted (2Ah/03h), released (2Ah/04h) or a registration preempted (2Ah/05h), a
// LUN of the port mapped, unmapped or deleted (3Fh/0Eh REPORTED LUNS DATA HAS CHANGED).
// A condition is kept for a volume, or (LUN_KEYED | lun) for a LUN of the session's port whatever is
// mapped there: a LUN map change is about the address, and the volume there now may be another.
// The queue holds UA_MAX conditions; one more replaces the newest, so what was reported first stays.
//
// Sessions of every channel IOP are reached through their state in common memory (sessionStateOf);
// a session is an I_T nexus: its initiator identity (name, ISID) and its port.
import { CPORT_IOP, CPORT_KIND, PORT_NBD, MAX_SESSIONS } from "../abi";
import { cfgPort, portCount } from "../config";
import { CX_PORT, CX_SESSION } from "../ctx";
import { SS_UA, SS_OPEN, SS_IDENTITY, SS_ISID, IDENTITY_NAME_BYTES, sessionState, sessionStateOf, portSessions } from "../channel";
import { volumeAtLun } from "../volume";
import { MAX_LUNS } from "../abi";

const UA_COUNT: u32 = 0; // u32
const UA_ENTRIES: u32 = 4; // UA_MAX x (volume u16, ASC u8, ASCQ u8)
const UA_MAX: u32 = 63;

export const UA_RESET: u32 = 0x2903; // BUS DEVICE RESET FUNCTION OCCURRED (LOGICAL UNIT RESET, TARGET RESET)
export const UA_MODE_CHANGED: u32 = 0x2A01; // MODE PARAMETERS CHANGED
export const UA_RESERVATIONS_PREEMPTED: u32 = 0x2A03;
export const UA_RESERVATIONS_RELEASED: u32 = 0x2A04;
export const UA_REGISTRATIONS_PREEMPTED: u32 = 0x2A05;
export const UA_LUNS_CHANGED: u32 = 0x3F0E; // REPORTED LUNS DATA HAS CHANGED (SPC-5 6.33)

const LUN_KEYED: u32 = 0x8000; // a queue entry's key: LUN_KEYED | lun, not a volume (volumes are < MAX_VOLUMES)

/** Adds a condition for volume v to the session whose state is at ss. */
export function uaAdd(ss: usize, v: u32, code: u32): void {
  const q = ss + SS_UA;
  const n = load<u32>(q + UA_COUNT);
  for (let i: u32 = 0; i < n; i++) {
    const e = q + UA_ENTRIES + i * 4;
    if (<u32>load<u16>(e) == v && (<u32>load<u8>(e + 2) << 8 | <u32>load<u8>(e + 3)) == code) return; // pending already
  }
  const at = n < UA_MAX ? n : UA_MAX - 1;
  const e = q + UA_ENTRIES + at * 4;
  store<u16>(e, <u16>v);
  store<u8>(e + 2, <u8>(code >> 8));
  store<u8>(e + 3, <u8>code);
  if (n < UA_MAX) store<u32>(q + UA_COUNT, n + 1);
}

/** The oldest condition of the command's nexus for volume v, or for its LUN `lun` (ASC << 8 | ASCQ), taken off; or 0. */
export function uaTake(c: usize, v: u32, lun: u32 = 0): u32 {
  const q = sessionState(<u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION)) + SS_UA;
  const n = load<u32>(q + UA_COUNT);
  for (let i: u32 = 0; i < n; i++) {
    const e = q + UA_ENTRIES + i * 4;
    const key = <u32>load<u16>(e);
    if (key != v && (lun == 0 || key != (LUN_KEYED | lun))) continue;
    const code = <u32>load<u8>(e + 2) << 8 | <u32>load<u8>(e + 3);
    memory.copy(e, e + 4, (n - i - 1) * 4);
    store<u32>(q + UA_COUNT, n - 1);
    return code;
  }
  return 0;
}

/** Drops the session's conditions (a new login starts with none). */
export function uaClear(ss: usize): void { store<u32>(ss + SS_UA + UA_COUNT, 0); }

/** Every open session of every port that reaches volume v, but `exceptPort`/`exceptSession` (ANY_SESSION: none). */
export function uaAllNexuses(v: u32, code: u32, exceptPort: u32, exceptSession: u32): void {
  for (let port: u32 = 0; port < portCount(); port++) {
    if (!portReaches(port, v)) continue;
    const iop = <u32>load<u8>(cfgPort(port) + CPORT_IOP);
    const n = portSessions(port);
    for (let s: u32 = 0; s < n && s < MAX_SESSIONS; s++) {
      if (port == exceptPort && s == exceptSession) continue;
      const ss = sessionStateOf(iop, port, s);
      if (load<u32>(ss + SS_OPEN) != 0) uaAdd(ss, v, code);
    }
  }
}

/** Every open session of `port` (any, with 0xFFFFFFFF) whose initiator is `name`/`isid`: the nexus of a registration. */
export function uaNexus(port: u32, name: usize, isid: usize, v: u32, code: u32): void {
  for (let p: u32 = 0; p < portCount(); p++) {
    if (port != 0xFFFFFFFF && p != port) continue;
    const iop = <u32>load<u8>(cfgPort(p) + CPORT_IOP);
    const n = portSessions(p);
    for (let s: u32 = 0; s < n && s < MAX_SESSIONS; s++) {
      const ss = sessionStateOf(iop, p, s);
      if (load<u32>(ss + SS_OPEN) != 0 && sameInitiator(ss, name, isid)) uaAdd(ss, v, code);
    }
  }
}

/** Is the session's initiator `name` (NUL-terminated, at most IDENTITY_NAME_BYTES) with ISID `isid`? */
export function sameInitiator(ss: usize, name: usize, isid: usize): bool {
  for (let i: u32 = 0; i < 6; i++) if (load<u8>(ss + SS_ISID + i) != load<u8>(isid + i)) return false;
  for (let i: u32 = 0; i < IDENTITY_NAME_BYTES; i++) {
    const a = load<u8>(ss + SS_IDENTITY + i);
    if (a != load<u8>(name + i)) return false;
    if (a == 0) return true;
  }
  return true;
}

export const ANY_SESSION: u32 = 0xFFFFFFFF;

/**
 * LUN `lun` of `port` (0xFF: of every port) was mapped, unmapped or remapped: every open session of
 * the port but `exceptPort`/`exceptSession` (the nexus that changed it knows) is told at its next
 * command to that LUN. NBD ports have no sense to carry it: their sessions are bound to the export's
 * volume instead (comm/nbd/request.ts).
 */
export function uaLunChanged(port: u32, lun: u32, exceptPort: u32, exceptSession: u32): void {
  for (let p: u32 = 0; p < portCount(); p++) {
    if (port != 0xFF && p != port) continue;
    if (<u32>load<u8>(cfgPort(p) + CPORT_KIND) == PORT_NBD) continue;
    const iop = <u32>load<u8>(cfgPort(p) + CPORT_IOP);
    const n = portSessions(p);
    for (let s: u32 = 0; s < n && s < MAX_SESSIONS; s++) {
      if (p == exceptPort && s == exceptSession) continue;
      const ss = sessionStateOf(iop, p, s);
      if (load<u32>(ss + SS_OPEN) != 0) uaAdd(ss, LUN_KEYED | lun, UA_LUNS_CHANGED);
    }
  }
}

/** Every LUN where volume v is mapped, on any port, is about to be unmapped (a forced DELETE VOLUME). */
export function uaVolumeUnmapping(v: u32, exceptPort: u32, exceptSession: u32): void {
  for (let p: u32 = 0; p < portCount(); p++) {
    for (let lun: u32 = 1; lun < MAX_LUNS; lun++) if (volumeAtLun(p, lun) == <i32>v) uaLunChanged(p, lun, exceptPort, exceptSession);
  }
}

function portReaches(port: u32, v: u32): bool {
  for (let lun: u32 = 1; lun < MAX_LUNS; lun++) if (volumeAtLun(port, lun) == <i32>v) return true;
  return false;
}
