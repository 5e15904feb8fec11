// LUN security by initiator name (document 004): each volume has an access list naming initiators
// (the identity every transport sets on its sessions: an iSCSI InitiatorName, "nbd:" and an NBD
// client's address, "framed:" and a framed host's frame address, "inproc:" and a slot) with
// read-write, read-only or none, and a mode for the initiators it does not name (read-write
// unless changed: a new volume is reachable from every front end). It is checked on every command
// of every front end (scsi/dispatch.ts): a volume an initiator may not see is not there for it (no
// LUN in REPORT LUNS, peripheral qualifier 011b, LOGICAL UNIT NOT SUPPORTED, no NBD export); a
// read-only one refuses what would change it with DATA PROTECT, WRITE PROTECTED (07h/27h/00h).
//
// The list lives in NV (nv.ts, the access table): ACCESS_ENTRIES records of ACCESS_RECORD_BYTES,
// each sealed by a CRC-32C. A record names its volume by number and by the identity the volume got
// when it was created (VOLE_ID), so a record of a deleted volume never applies to a later one that
// reuses the number: it is free space. The mode for unnamed initiators is in the volume's entry.
//
// The library's tape devices (docs/tape.md) have lists too, kept in the same table: a record names
// a tape device by its index (TAPE_UNIT + device, the number SET ACCESS takes; the index is what the
// device's NAA carries) and by tapeIdentity (its kind, element and name in the library's config), so
// a record never applies to another device a changed topology puts at that index. A tape device has
// no NV entry of its own, so its mode for unnamed initiators is a record too (AF_UNNAMED, no name);
// without one it is read-write, as the library was before the lists covered it. Read-only keeps
// what would change a cartridge or where one is (tapeChangesMedium) from that initiator; the copy
// manager asks tapeAccessOf with the session an EXTENDED COPY came through (CVE-2020-28374).
//
// Every command asks, so the check must cost next to nothing: records are taken lowest index first
// and a volatile mark (MAPX_ACCESS_RECORDS, set at boot from the table and raised by SET ACCESS)
// says how far records reach; the check looks no further. Without lists it reads no record at all.
import { MAX_VOLUMES, STAT_ACCESS_DENIED, TDK_CHANGER, MAP_ADDR } from "../abi";
import { CX_PORT, CX_SESSION, CX_ID, CX_FLAGS, CXF_PARAM, CX_EXPECTED, CX_CDB, ctxField } from "../ctx";
import { identityName, IDENTITY_NAME_BYTES } from "../channel";
import {
  fail, dataInBuffer, sendBuffer, startParameterList, parameterList, waitPersisted, nvPending, retryLater, LU_TAPE_BASE,
} from "../sequencer";
import { tapeDevices, tapeIdentity, tapeKind, tapeLun } from "../tape/device";
import { volumeInUse, VOLE_ACCESS_DEFAULT, VOLE_ID } from "../volume";
import { volumeEntry, accessEntry, sealVolume, seal, nvRoom, nvPersistRange, nvId, NVK_CONTEXT, VOL_BYTES, ACCESS_ENTRIES, ACCESS_RECORD_BYTES, ACCESS_CRC } from "../nv";
import { statInc } from "../stats";
import { namesEqual, getBe16, getBe32, putBe16, putBe32 } from "../util";

export const ACC_RW: u32 = 0;
export const ACC_RO: u32 = 1;
export const ACC_NONE: u32 = 2;
const ACC_REMOVE: u32 = 0xFF;

/** What SET ACCESS and LIST ACCESS name: a volume number, or TAPE_UNIT + a tape device's index. */
export const TAPE_UNIT: u32 = 0x8000;
/** LIST ACCESS: every volume's list; every tape device's. */
const LIST_VOLUMES: u32 = 0xFFFFFFFF;
const LIST_TAPES: u32 = 0xFFFFFFFE;

/** One record of the NV access table (ACCESS_RECORD_BYTES, sealed by a CRC-32C at ACCESS_CRC). */
@unmanaged class AccessRecord {
  unit: u16; // the volume or tape unit + 1 (0: free)
  mode: u8; // ACC_*
  flags: u8; // AF_*
  identity: u32; // the volume's VOLE_ID, or the tape device's tapeIdentity, when the record was made
} // the initiator's name follows at AR_NAME (IDENTITY_NAME_BYTES, NUL padded)
const AR_NAME: u32 = 8;
/** The mode of the initiators no record names (tape devices; a volume keeps it in its NV entry). */
const AF_UNNAMED: u8 = 1;

// @ts-ignore: decorator
@inline function record(i: u32): AccessRecord { return changetype<AccessRecord>(accessEntry(i)); }

/** Firmware-private map field: one past the highest record index that may be in use; none beyond it. */
const MAPX_ACCESS_RECORDS: u32 = 140;
// @ts-ignore: decorator
@inline function recordsReach(): u32 { return atomic.load<u32>(MAP_ADDR + MAPX_ACCESS_RECORDS); }

/** Boot, once the NV tables are checked: how far the table's records reach. */
export function accessBoot(): void {
  let reach: u32 = 0;
  for (let i: u32 = 0; i < ACCESS_ENTRIES; i++) if (record(i).unit != 0) reach = i + 1;
  atomic.store<u32>(MAP_ADDR + MAPX_ACCESS_RECORDS, reach);
}

/** LIST ACCESS of every volume: at most this many entries (128 KiB of buffer memory). */
const LIST_ALL_ENTRIES: u32 = 560;

/** SET ACCESS's parameter list and LIST ACCESS's entries (docs/scsi.md). */
export const ACCESS_LIST_BYTES: u32 = 232; // 8 + IDENTITY_NAME_BYTES (channel.ts)

/** The volume or tape device `unit` names is there now. */
function unitExists(unit: u32): bool {
  if (unit < MAX_VOLUMES) return volumeInUse(unit);
  return unit >= TAPE_UNIT && unit - TAPE_UNIT < tapeDevices();
}

/** The identity records of `unit` carry (it exists). */
function unitIdentity(unit: u32): u32 {
  return unit < MAX_VOLUMES ? load<u32>(volumeEntry(unit) + VOLE_ID) : tapeIdentity(unit - TAPE_UNIT);
}

/**
 * The record of `unit` naming `name` (or, with `unnamed`, its unnamed record); with `make`, else
 * the lowest free one (the mark raised to cover it); else 0.
 */
function recordFor(unit: u32, name: usize, unnamed: bool, make: bool): usize {
  const reach = recordsReach();
  let id: u32 = 0;
  let idKnown = false; // asked only of a record with the unit's number: a tape device's is a CRC
  let free: u32 = ACCESS_ENTRIES;
  for (let i: u32 = 0; i < reach; i++) {
    const r = record(i);
    // A record with the unit's number and its identity now is in use; recordFree is only asked for a place.
    if (<u32>r.unit == unit + 1 && ((r.flags & AF_UNNAMED) != 0) == unnamed) {
      if (!idKnown) { id = unitIdentity(unit); idKnown = true; }
      if (r.identity == id && (unnamed || namesEqual(changetype<usize>(r) + AR_NAME, name, IDENTITY_NAME_BYTES))) return changetype<usize>(r);
    }
    if (make && free == ACCESS_ENTRIES && recordFree(r)) free = i;
  }
  if (!make) return 0;
  if (free == ACCESS_ENTRIES) free = reach; // none free below the mark: the next never used, if any
  if (free == ACCESS_ENTRIES) return 0;
  if (free >= reach) atomic.store<u32>(MAP_ADDR + MAPX_ACCESS_RECORDS, free + 1);
  return accessEntry(free);
}

/** The mode `unit`'s list gives the initiator called `name`: its record's, else the unit's for unnamed initiators. */
function modeFor(unit: u32, name: usize): u32 {
  const r = recordFor(unit, name, false, false);
  return r != 0 ? <u32>changetype<AccessRecord>(r).mode : unnamedMode(unit);
}

/** The mode of the initiators `unit`'s list does not name. */
function unnamedMode(unit: u32): u32 {
  if (unit < MAX_VOLUMES) return <u32>load<u8>(volumeEntry(unit) + VOLE_ACCESS_DEFAULT);
  const r = recordFor(unit, 0, true, false);
  return r != 0 ? <u32>changetype<AccessRecord>(r).mode : ACC_RW;
}

/** The access the initiator on port/session has to volume v: ACC_RW, ACC_RO or ACC_NONE. */
export function accessOf(v: u32, port: u32, s: u32): u32 { return modeFor(v, identityName(port, s)); }

/**
 * The access the initiator on port/session has to tape device `dev`: ACC_RW, ACC_RO or ACC_NONE.
 * Every front end's commands (scsi/dispatch.ts) and REPORT LUNS ask it; so does the copy manager
 * for a tape CSCD, with the session the EXTENDED COPY came through (docs/tape.md): none, the drive
 * is not reachable; read-only, a source and never a destination.
 */
export function tapeAccessOf(dev: u32, port: u32, s: u32): u32 { return modeFor(TAPE_UNIT + dev, identityName(port, s)); }

/**
 * Logical unit `lu` (as ctxLogicalUnit numbers them) is there for the initiator on port/session:
 * task management names units by LUN too, and may not reach one the initiator cannot see.
 */
export function logicalUnitVisible(lu: u32, port: u32, s: u32): bool {
  if (lu < MAX_VOLUMES) return accessOf(lu, port, s) != ACC_NONE;
  if (lu >= LU_TAPE_BASE && lu - LU_TAPE_BASE < tapeDevices()) return tapeAccessOf(lu - LU_TAPE_BASE, port, s) != ACC_NONE;
  return true;
}

/** True when the command addressed to the context's volume v may run; else it has been failed. */
export function accessAllows(c: usize, v: u32, op: u32): bool {
  return modeAllows(c, accessOf(v, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION)), changesMedium(op));
}

/**
 * True when a command the initiator's `mode` applies to may run (`changes`: it would change the
 * medium); else it has been failed: LOGICAL UNIT NOT SUPPORTED (none), DATA PROTECT (read-only).
 */
export function modeAllows(c: usize, mode: u32, changes: bool): bool {
  if (mode == ACC_RW || (mode == ACC_RO && !changes)) return true;
  statInc(STAT_ACCESS_DENIED);
  if (mode == ACC_RO) fail(c, 0x07, 0x27, 0x00);
  else fail(c, 0x05, 0x25, 0x00);
  return false;
}

/** Commands that change a volume's blocks (SBC-4): what a read-only initiator may not send. */
export function changesMedium(op: u32): bool {
  switch (op) {
    case 0x04: // FORMAT UNIT
    case 0x0A: case 0x2A: case 0xAA: case 0x8A: // WRITE (6, 10, 12, 16)
    case 0x2E: case 0xAE: case 0x8E: // WRITE AND VERIFY
    case 0x41: case 0x93: // WRITE SAME
    case 0x42: // UNMAP
    case 0x89: // COMPARE AND WRITE
    case 0x8B: // ORWRITE (16)
      return true;
    default: return false;
  }
}

/**
 * Commands that change what a tape device's cartridges hold or where they are: what a read-only
 * initiator may not send. A drive: what writes or erases the cartridge (SSC-3), also the codes it
 * does not implement. The changer: MOVE MEDIUM, EXCHANGE MEDIUM, OPEN/CLOSE IMPORT/EXPORT ELEMENT
 * (SMC-3). LOAD UNLOAD of a drive stays allowed: reading needs the cartridge threaded, and it
 * changes no data; positioning, reads and inventories change nothing.
 */
export function tapeChangesMedium(dev: u32, op: u32): bool {
  if (tapeKind(dev) == TDK_CHANGER) return op == 0xA5 || op == 0xA6 || op == 0x1B;
  switch (op) {
    case 0x04: // FORMAT MEDIUM
    case 0x0A: case 0x8A: // WRITE (6, 16)
    case 0x0B: // SET CAPACITY
    case 0x10: case 0x80: // WRITE FILEMARKS (6, 16)
    case 0x19: case 0x93: // ERASE (6, 16)
      return true;
    default: return false;
  }
}

/** A record that applies to nothing now: never used, its volume or tape device gone, or another one in its place. */
function recordFree(r: AccessRecord): bool {
  const u1 = <u32>r.unit;
  if (u1 == 0 || !unitExists(u1 - 1)) return true;
  return r.identity != unitIdentity(u1 - 1);
}

// ---- Management: SET ACCESS (C1h/06h) and LIST ACCESS (C0h/16h), docs/scsi.md -----------------------

/**
 * SET ACCESS: parameter list of ACCESS_LIST_BYTES: unit (BE16: a volume, or TAPE_UNIT + a tape
 * device), mode (0 read-write, 1 read-only, 2 none, FFh: remove the initiator's record), flags
 * (bit 0: set the mode of initiators the list does not name; the name is then ignored), 4
 * reserved, the initiator name (NUL padded). Answered once the record (or the volume entry) is in
 * the NV file.
 */
export function setAccess(c: usize): void {
  const length = getBe32(c + CX_CDB + 6); // parameter list length
  if (length < ACCESS_LIST_BYTES) { fail(c, 0x05, 0x1A, 0x00); ctxField(c, true, 6, -1); return; }
  if (length > 4096 || load<u32>(c + CX_EXPECTED) < length) { fail(c, 0x05, 0x24, 0x00); ctxField(c, true, 6, -1); return; }
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) { startParameterList(c, length); return; }
  const list = parameterList(c);
  if (list == 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  const unit = getBe16(list);
  const mode = <u32>load<u8>(list + 2);
  const unnamed = (load<u8>(list + 3) & 1) != 0;
  const name = list + 8;
  store<u8>(name + IDENTITY_NAME_BYTES - 1, 0);
  if (!unitExists(unit)) { fail(c, 0x05, 0x80, 0x02); ctxField(c, false, 0, -1); return; }
  if (mode > ACC_NONE && !(mode == ACC_REMOVE && !unnamed)) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 2, -1); return; }
  if (!unnamed && load<u8>(name) == 0) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 8, -1); return; }
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  if (unnamed && unit < MAX_VOLUMES) {
    const e = volumeEntry(unit);
    store<u8>(e + VOLE_ACCESS_DEFAULT, <u8>mode);
    sealVolume(unit);
    if (nvPersistRange(e, VOL_BYTES, id)) nvPending(c, 1);
    waitPersisted(c);
    return;
  }
  const r = recordFor(unit, name, unnamed, mode != ACC_REMOVE);
  if (r == 0) {
    if (mode == ACC_REMOVE) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 8, -1); return; } // no such record
    fail(c, 0x05, 0x83, 0x00); // the access table is full (as the volume table's 83h/00h)
    return;
  }
  memory.fill(r, 0, ACCESS_CRC);
  if (mode != ACC_REMOVE) {
    const a = changetype<AccessRecord>(r);
    a.unit = <u16>(unit + 1);
    a.mode = <u8>mode;
    a.flags = unnamed ? AF_UNNAMED : 0;
    a.identity = unitIdentity(unit);
    if (!unnamed) memory.copy(r + AR_NAME, name, IDENTITY_NAME_BYTES - 1);
  }
  seal(r, ACCESS_CRC);
  if (nvPersistRange(r, ACCESS_RECORD_BYTES, id)) nvPending(c, 1);
  waitPersisted(c);
}

/**
 * LIST ACCESS (CDB bytes 2-5: a unit as SET ACCESS names it; FFFFFFFFh every volume, FFFFFFFEh
 * every tape device): for each its mode for unnamed initiators (flags bit 0, empty name), then its
 * records; entries laid out as SET ACCESS's list, a tape device's with its LUN (bytes 4-5) and kind
 * (byte 6: 1 changer, 2 drive).
 */
export function listAccess(c: usize, alloc: u32, which: u32): void {
  // One unit's entries always fit; all volumes' are cut at LIST_ALL_ENTRIES (the header says how many).
  const most = which == LIST_VOLUMES ? LIST_ALL_ENTRIES : which == LIST_TAPES ? tapeDevices() + ACCESS_ENTRIES : 1 + ACCESS_ENTRIES;
  const d = dataInBuffer(c, 8 + most * ACCESS_LIST_BYTES);
  if (d == 0) return;
  let n: u32 = 0;
  if (which == LIST_VOLUMES) {
    for (let v: u32 = 0; v < MAX_VOLUMES && n < most; v++) if (volumeInUse(v)) n = listUnit(d + 8, n, most, v);
  } else if (which == LIST_TAPES) {
    for (let t: u32 = 0; t < tapeDevices(); t++) n = listUnit(d + 8, n, most, TAPE_UNIT + t);
  } else if (which <= 0xFFFF && unitExists(which)) {
    n = listUnit(d + 8, n, most, which);
  }
  putBe32(d, n * ACCESS_LIST_BYTES);
  putBe16(d + 4, ACCESS_LIST_BYTES);
  putBe16(d + 6, n);
  sendBuffer(c, min<u32>(8 + n * ACCESS_LIST_BYTES, alloc));
}

/** Writes `unit`'s entries from entry n on (at most `most` in all); returns the count after them. */
function listUnit(d: usize, n: u32, most: u32, unit: u32): u32 {
  if (n >= most) return n;
  listEntry(d + n * ACCESS_LIST_BYTES, unit, unnamedMode(unit), 1);
  n++;
  const reach = recordsReach();
  for (let i: u32 = 0; i < reach && n < most; i++) {
    const a = record(i);
    if (<u32>a.unit != unit + 1 || recordFree(a) || (a.flags & AF_UNNAMED) != 0) continue;
    const r = d + n * ACCESS_LIST_BYTES;
    listEntry(r, unit, <u32>a.mode, 0);
    memory.copy(r + 8, changetype<usize>(a) + AR_NAME, IDENTITY_NAME_BYTES);
    n++;
  }
  return n;
}

function listEntry(r: usize, unit: u32, mode: u32, flags: u32): void {
  memory.fill(r, 0, ACCESS_LIST_BYTES);
  putBe16(r, unit);
  store<u8>(r + 2, <u8>mode);
  store<u8>(r + 3, <u8>flags);
  if (unit < TAPE_UNIT) return;
  putBe16(r + 4, tapeLun(unit - TAPE_UNIT));
  store<u8>(r + 6, <u8>tapeKind(unit - TAPE_UNIT));
}
