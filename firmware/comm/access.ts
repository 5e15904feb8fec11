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
import { MAX_VOLUMES, STAT_ACCESS_DENIED } from "../abi";
import { CX_PORT, CX_SESSION, CX_ID, CX_FLAGS, CXF_PARAM, CX_EXPECTED, CX_CDB, ctxField } from "../ctx";
import { identityName, IDENTITY_NAME_BYTES } from "../channel";
import {
  fail, dataInBuffer, sendBuffer, startParameterList, parameterList, waitPersisted, nvPending, retryLater,
} from "../sequencer";
import { volumeInUse, VOLE_ACCESS_DEFAULT, VOLE_ID } from "../volume";
import { volumeEntry, accessEntry, sealVolume, seal, nvRoom, nvPersistRange, nvId, NVK_CONTEXT, VOL_BYTES, ACCESS_ENTRIES, ACCESS_RECORD_BYTES, ACCESS_CRC } from "../nv";
import { statInc } from "../stats";
import { namesEqual, getBe16, getBe32, putBe16, putBe32 } from "../util";

export const ACC_RW: u32 = 0;
export const ACC_RO: u32 = 1;
export const ACC_NONE: u32 = 2;
const ACC_REMOVE: u32 = 0xFF;

// Access record fields.
export const AR_VOLUME: u32 = 0; // u16: volume + 1 (0: free)
export const AR_MODE: u32 = 2; // u8: ACC_*
export const AR_VOLUME_ID: u32 = 4; // u32: the volume's VOLE_ID when the record was made
export const AR_NAME: u32 = 8; // IDENTITY_NAME_BYTES: the initiator's name, NUL padded

/** LIST ACCESS of every volume: at most this many entries (128 KiB of buffer memory). */
const LIST_ALL_ENTRIES: u32 = 560;

/** SET ACCESS's parameter list and LIST ACCESS's entries (docs/scsi.md). */
export const ACCESS_LIST_BYTES: u32 = 232; // 8 + IDENTITY_NAME_BYTES (channel.ts)

/** The access the initiator on port/session has to volume v: ACC_RW, ACC_RO or ACC_NONE. */
export function accessOf(v: u32, port: u32, s: u32): u32 {
  const e = volumeEntry(v);
  const id = load<u32>(e + VOLE_ID);
  const name = identityName(port, s);
  for (let i: u32 = 0; i < ACCESS_ENTRIES; i++) {
    const r = accessEntry(i);
    if (<u32>load<u16>(r + AR_VOLUME) != v + 1 || load<u32>(r + AR_VOLUME_ID) != id) continue;
    if (namesEqual(r + AR_NAME, name, IDENTITY_NAME_BYTES)) return <u32>load<u8>(r + AR_MODE);
  }
  return <u32>load<u8>(e + VOLE_ACCESS_DEFAULT);
}

/** True when the command addressed to the context's volume v may run; else it has been failed. */
export function accessAllows(c: usize, v: u32, op: u32): bool {
  const mode = accessOf(v, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
  if (mode == ACC_RW || (mode == ACC_RO && !changesMedium(op))) return true;
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
      return true;
    default: return false;
  }
}

/** A record that applies to no volume now: never used, its volume deleted, or the number reused. */
function recordFree(r: usize): bool {
  const v1 = <u32>load<u16>(r + AR_VOLUME);
  if (v1 == 0 || v1 > MAX_VOLUMES || !volumeInUse(v1 - 1)) return true;
  return load<u32>(r + AR_VOLUME_ID) != load<u32>(volumeEntry(v1 - 1) + VOLE_ID);
}

// ---- Management: SET ACCESS (C1h/06h) and LIST ACCESS (C0h/16h), docs/scsi.md -----------------------

/**
 * SET ACCESS: parameter list of ACCESS_LIST_BYTES: volume (BE16), mode (0 read-write, 1 read-only,
 * 2 none, FFh: remove the initiator's record), flags (bit 0: set the mode of initiators the list
 * does not name; the name is then ignored), 4 reserved, the initiator name (NUL padded).
 * Answered once the record (or the volume entry) is in the NV file.
 */
export function setAccess(c: usize): void {
  const length = getBe32(c + CX_CDB + 6); // parameter list length
  if (length < ACCESS_LIST_BYTES) { fail(c, 0x05, 0x1A, 0x00); ctxField(c, true, 6, -1); return; }
  if (length > 4096 || load<u32>(c + CX_EXPECTED) < length) { fail(c, 0x05, 0x24, 0x00); ctxField(c, true, 6, -1); return; }
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) { startParameterList(c, length); return; }
  const list = parameterList(c);
  if (list == 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  const v = getBe16(list);
  const mode = <u32>load<u8>(list + 2);
  const unnamed = (load<u8>(list + 3) & 1) != 0;
  const name = list + 8;
  store<u8>(name + IDENTITY_NAME_BYTES - 1, 0);
  if (v >= MAX_VOLUMES || !volumeInUse(v)) { fail(c, 0x05, 0x80, 0x02); ctxField(c, false, 0, -1); return; }
  if (mode > ACC_NONE && !(mode == ACC_REMOVE && !unnamed)) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 2, -1); return; }
  if (!unnamed && load<u8>(name) == 0) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 8, -1); return; }
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  if (unnamed) {
    const e = volumeEntry(v);
    store<u8>(e + VOLE_ACCESS_DEFAULT, <u8>mode);
    sealVolume(v);
    if (nvPersistRange(e, VOL_BYTES, id)) nvPending(c, 1);
    waitPersisted(c);
    return;
  }
  const r = recordFor(v, name, mode != ACC_REMOVE);
  if (r == 0) {
    if (mode == ACC_REMOVE) { fail(c, 0x05, 0x26, 0x00); ctxField(c, false, 8, -1); return; } // no such record
    fail(c, 0x05, 0x83, 0x00); // the access table is full (as the volume table's 83h/00h)
    return;
  }
  if (mode == ACC_REMOVE) memory.fill(r, 0, ACCESS_CRC);
  else {
    store<u16>(r + AR_VOLUME, <u16>(v + 1));
    store<u8>(r + AR_MODE, <u8>mode);
    store<u32>(r + AR_VOLUME_ID, load<u32>(volumeEntry(v) + VOLE_ID));
    memory.fill(r + AR_NAME, 0, IDENTITY_NAME_BYTES);
    memory.copy(r + AR_NAME, name, IDENTITY_NAME_BYTES - 1);
  }
  seal(r, ACCESS_CRC);
  if (nvPersistRange(r, ACCESS_RECORD_BYTES, id)) nvPending(c, 1);
  waitPersisted(c);
}

/** The record naming `name` for volume v; else (with `make`) a free one; else 0. */
function recordFor(v: u32, name: usize, make: bool): usize {
  const vid = load<u32>(volumeEntry(v) + VOLE_ID);
  let free: usize = 0;
  for (let i: u32 = 0; i < ACCESS_ENTRIES; i++) {
    const r = accessEntry(i);
    if (recordFree(r)) { if (free == 0) free = r; continue; }
    if (<u32>load<u16>(r + AR_VOLUME) == v + 1 && load<u32>(r + AR_VOLUME_ID) == vid && namesEqual(r + AR_NAME, name, IDENTITY_NAME_BYTES)) return r;
  }
  return make ? free : 0;
}

/**
 * LIST ACCESS (CDB bytes 2-5: a volume, or FFFFFFFFh for all): for each volume its mode for unnamed
 * initiators (flags bit 0, empty name), then its records; entries laid out as SET ACCESS's list.
 */
export function listAccess(c: usize, alloc: u32, which: u32): void {
  // One volume's entries always fit; all volumes' are cut at LIST_ALL_ENTRIES (the header says how many).
  const most = which == 0xFFFFFFFF ? LIST_ALL_ENTRIES : 1 + ACCESS_ENTRIES;
  const d = dataInBuffer(c, 8 + most * ACCESS_LIST_BYTES);
  if (d == 0) return;
  let n: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES && n < most; v++) {
    if (!volumeInUse(v) || (which != 0xFFFFFFFF && which != v)) continue;
    let r = d + 8 + n * ACCESS_LIST_BYTES;
    putBe16(r, v);
    store<u8>(r + 2, load<u8>(volumeEntry(v) + VOLE_ACCESS_DEFAULT));
    store<u8>(r + 3, 1);
    n++;
    for (let i: u32 = 0; i < ACCESS_ENTRIES && n < most; i++) {
      const a = accessEntry(i);
      if (recordFree(a) || <u32>load<u16>(a + AR_VOLUME) != v + 1) continue;
      r = d + 8 + n * ACCESS_LIST_BYTES;
      putBe16(r, v);
      store<u8>(r + 2, load<u8>(a + AR_MODE));
      memory.copy(r + 8, a + AR_NAME, IDENTITY_NAME_BYTES);
      n++;
    }
  }
  putBe32(d, n * ACCESS_LIST_BYTES);
  putBe16(d + 4, ACCESS_LIST_BYTES);
  putBe16(d + 6, n);
  sendBuffer(c, min<u32>(8 + n * ACCESS_LIST_BYTES, alloc));
}
