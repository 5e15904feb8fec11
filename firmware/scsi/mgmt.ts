// Vendor-unique management commands of the command device (docs/scsi.md): C0h MANAGEMENT IN
// (lists) and C1h MANAGEMENT OUT (create, delete, map, unmap). Changes are made in the NV
// volume table and LUN map, persisted, and answered only once the NV write has completed.
import { reservationsDropVolume } from "./pr";
import { nvReservations, PR_TABLE_BYTES } from "../nv";
import {
  MAX_VOLUMES, MAX_PORTS, MAX_LUNS, STAT_COUNT, STATS_BYTES, MAP_ADDR, MAP_IOP_TABLE, MAP_IOP_BYTES,
  MIOP_STATS, CFG_PORT_COUNT, CPORT_KIND, CPORT_SESSIONS, CPORT_ADDRESS, CPORT_IOP, CPORT_NAME, CMED_SCHEDULER,
  CMED_NAME, SES_STATE, SESS_OPEN, MAX_SESSIONS, ROLE_CHANNEL, MEDS_LOST, MEDS_OK, MEDS_DEAD,
} from "../abi";
import { cfg32, cfgPort, cfgMedium, iopCount, iopRole, mediaCount, mediumSectors, portCount } from "../config";
import { uaLunChanged, uaVolumeUnmapping } from "./ua";
import { CX_ID, CX_PORT, CX_SESSION, CX_ARG, CX_LBA, CX_EXPECTED, CX_FLAGS, CXF_PARAM, CX_DEADLINE_NS, CX_NV_PENDING, ctxField } from "../ctx";
import { gIndex, gNow, wakeAt } from "../iop";
import { log, LOG_ERROR } from "../hal";
import {
  fail, dataInBuffer, sendBuffer, startParameterList, parameterList, waitPersisted, nvPending, retryLater,
  nvRefuse, good, persistThenRedispatch,
} from "../sequencer";
import { postToDisk, MB_RELABEL } from "../mailbox";
import {
  volumeCreate, volumeDelete, volumeInUse, lunMap, lunUnmap, mediumState, MS_STATE, MS_FREE, MS_REGISTERED,
  MS_ERRORS, VOLE_BLOCK_SIZE, VOLE_PLACEMENT, VOLE_MEDIA_COUNT, VOLE_CAPACITY, VOLE_NAME, VOLE_MEDIA, VE_OK,
  VE_NAME_EXISTS, VE_NUMBER_IN_USE, VE_NO_VOLUME, VE_MAPPED, VE_NO_SPACE, VE_LUN_MAPPED, VE_NO_PORT,
  VE_TABLE_FULL, VE_NO_MEDIUM, VE_BAD_NAME, VE_BAD_BLOCK_SIZE, VE_BAD_CAPACITY, VE_BAD_LUN, VE_BAD_PLACEMENT,
  VE_NOT_MAPPED, volumeReady, volumeByName, volumeMapped, volumeExtents, volumeExtentMedium, volumeExtentFirst,
  volumeExtentChunks, MAX_EXTENTS, volumeThin, VOLE_CHUNKS, VE_THIN_MAP_FULL, relabelTicket, relabelOutcome,
  MS_RELABEL_TICKET, RLB_DEAD, RLB_WRITE_ERROR, RLB_BUSY, RLB_NOT_LOST,
} from "../volume";
import { initClear, initTurnTake, initTurnsGive, turnOfContext } from "../initmap";
import { thinDropSlot, thinRecordsGiveBack } from "../thin";
import { thinRecordsClear, thinHeldChunks, VOLE_THIN_FIRST, VOLE_THIN_RECORDS } from "../thinmap";
import {
  volumeEntry, lunMapEntry, nvBase, nvRoom, nvPersistRange, nvId, NVK_CONTEXT, VOL_BYTES, LUN_MAP_OFFSET,
  LUN_MAP_BYTES, nvDegraded,
} from "../nv";
import {
  slotCount, slotVolume, slotsOfVolumeBusy, dropSlot, volumeDirtySlots, listCount, LIST_FREE, LIST_CLEAN,
  LIST_DIRTY, pinnedCount, cacheCounter, CS_READ_HITS, CS_READ_MISSES, CS_WRITE_HITS, fenceVolume, unfenceVolume,
  volumeFenced, fenceComplete,
} from "../cache";
import {
  image, sessionDesc, scratch, sessionStateOf, SS_OUTSTANDING, SS_ISID, SS_IDENTITY, IDENTITY_NAME_BYTES,
} from "../channel";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "../util";
import { cdb, invalidField, OP_MANAGEMENT_IN } from "./dispatch";
import { setAccess, listAccess } from "../comm/access";
import {
  pairCreate, pairSplit, pairResync, pairDelete, pairAttribute, pairCopyRange, pairStatus, SA_PAIR_CREATE, SA_PAIR_SPLIT,
  SA_PAIR_RESYNC, SA_PAIR_REVERSE, SA_PAIR_DELETE, SA_PAIR_ATTRIBUTE, SA_PAIR_COPY_RANGE, SA_PAIR_STATUS,
  PAIR_CREATE_LIST_BYTES, PAIR_RANGE_LIST_BYTES,
} from "./pair";
import { pairOfVolume } from "../pair/table";
import { remoteOfVolume } from "../remote/pair";
import {
  remoteCreate, remoteChange, remoteStatus, relayStatus, SA_REMOTE_CREATE, SA_REMOTE_CHANGE, SA_REMOTE_STATUS, SA_RELAY_STATUS,
  REMOTE_CREATE_LIST_BYTES,
} from "./remote";

const RELABEL_WAIT_NS: f64 = 60e9; // last-resort bound on a REINITIALIZE MEDIUM's wait for its outcome
const SA_CREATE: u32 = 0x01;
const SA_DELETE: u32 = 0x02;
const SA_MAP: u32 = 0x03;
const SA_UNMAP: u32 = 0x04;
const SA_REINITIALIZE_MEDIUM: u32 = 0x05;
const SA_LIST_VOLUMES: u32 = 0x10;
const SA_LIST_MAPPINGS: u32 = 0x11;
const SA_LIST_MEDIA: u32 = 0x12;
const SA_LIST_PORTS: u32 = 0x13;
const SA_STATISTICS: u32 = 0x14;
const SA_LIST_SESSIONS: u32 = 0x15;
const SA_SET_ACCESS: u32 = 0x06; // comm/access.ts
const SA_LIST_ACCESS: u32 = 0x16;
const SESSION_ENTRY_BYTES: u32 = 256;

const CREATE_LIST_BYTES: u32 = 64;
const MAP_LIST_BYTES: u32 = 8;

export function management(c: usize, op: u32): void {
  const p = cdb(c);
  const sa = <u32>load<u8>(p + 1) & 0x1F;
  if (op == OP_MANAGEMENT_IN) { managementIn(c, sa); return; }
  if (nvDegraded()) { nvRefuse(c); return; } // a change the NV file might not keep
  if (sa == SA_DELETE) { deleteVolume(c, getBe32(p + 2), (load<u8>(p + 14) & 1) != 0); return; }
  if (sa == SA_REINITIALIZE_MEDIUM) { reinitializeMedium(c, getBe32(p + 2)); return; }
  if (sa == SA_SET_ACCESS) { setAccess(c); return; }
  if (pairCommand(c, sa, getBe32(p + 2), <u32>load<u8>(p + 14))) return;
  if (sa == SA_REMOTE_CHANGE) { remoteChange(c, getBe32(p + 2), <u32>load<u8>(p + 14)); return; }
  const want: u32 = sa == SA_CREATE ? CREATE_LIST_BYTES : sa == SA_MAP || sa == SA_UNMAP ? MAP_LIST_BYTES
    : sa == SA_PAIR_CREATE ? PAIR_CREATE_LIST_BYTES : sa == SA_PAIR_COPY_RANGE ? PAIR_RANGE_LIST_BYTES
      : sa == SA_REMOTE_CREATE ? REMOTE_CREATE_LIST_BYTES : 0;
  if (want == 0) { invalidField(c, 1, 4); return; }
  const length = getBe32(p + 6);
  if (length < want) { fail(c, 0x05, 0x1A, 0x00); ctxField(c, true, 6, -1); return; }
  if (length > 4096 || load<u32>(c + CX_EXPECTED) < length) { invalidField(c, 6, -1); return; }
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) { startParameterList(c, length); return; }
  const list = parameterList(c);
  if (list == 0) return;
  if (sa == SA_CREATE) createVolume(c, list);
  else if (sa == SA_PAIR_CREATE) pairCreate(c, list);
  else if (sa == SA_PAIR_COPY_RANGE) pairCopyRange(c, getBe32(p + 2), list, (load<u8>(p + 14) & 1) != 0);
  else if (sa == SA_REMOTE_CREATE) remoteCreate(c, list);
  else mapOrUnmap(c, list, sa == SA_MAP);
}

/** The pair commands without a parameter list (scsi/pair.ts). False: not one of them. */
function pairCommand(c: usize, sa: u32, arg: u32, flags: u32): bool {
  switch (sa) {
    case SA_PAIR_SPLIT: pairSplit(c, arg); return true;
    case SA_PAIR_RESYNC: pairResync(c, arg, false); return true;
    case SA_PAIR_REVERSE: pairResync(c, arg, true); return true;
    case SA_PAIR_DELETE: pairDelete(c, arg); return true;
    case SA_PAIR_ATTRIBUTE: pairAttribute(c, arg, flags); return true;
    default: return false;
  }
}

// ---- OUT ------------------------------------------------------------------------------------------

function createVolume(c: usize, list: usize): void {
  if (!nvRoom(3)) { retryLater(c); return; }
  const name = list + 16;
  store<u8>(name + 31, 0); // the name field is 32 bytes, NUL padded: never read past it
  const out = image();
  const e = volumeCreate(getBe16(list), getBe16(list + 2), <u32>load<u8>(list + 4), list + 48, <u32>load<u8>(list + 5),
    getBe64(list + 8), name, out);
  if (e != VE_OK) { volumeError(c, e, false); return; }
  const v = load<u32>(out);
  // A thin volume's map records start empty in the NV file before its entry names them.
  if (volumeThin(v)) { thinRecordsClear(v, load<u32>(volumeEntry(v) + VOLE_THIN_FIRST), load<u32>(volumeEntry(v) + VOLE_THIN_RECORDS), nvId(NVK_CONTEXT, load<u32>(c + CX_ID))); nvPending(c, 2); }
  persist(c, volumeEntry(v), VOL_BYTES);
  waitPersisted(c);
}

/**
 * DELETE VOLUME quiesces the volume before it goes (issue 7, defect 1): it is fenced (new commands
 * refused, each channel IOP aborts those it has in flight), its slots are dropped once no stage or
 * destage holds them (their clean records reach the NV file before the volume entry goes), then
 * the entry and LUN map are persisted, then its chunks' init bits are cleared, so a volume created
 * on them later reads zeros. A crash between the entry and the bits leaves bits of chunks no
 * volume owns, which boot clears (initmap.ts).
 */
function deleteVolume(c: usize, v: u32, force: bool): void {
  if ((load<u32>(c + CX_ARG) & DELETE_THIN_FREE) != 0) { deleteThinFree(c); return; }
  if (v >= MAX_VOLUMES || !volumeInUse(v)) { volumeError(c, VE_NO_VOLUME, true); return; }
  if (!force && volumeMapped(v)) { volumeError(c, VE_MAPPED, true); return; }
  if (pairOfVolume(v) >= 0) { fail(c, 0x05, 0x85, 0x01); ctxField(c, true, 2, -1); return; } // delete the pair first
  if (remoteOfVolume(v) >= 0) { fail(c, 0x05, 0x86, 0x11); ctxField(c, true, 2, -1); return; } // and the remote pair
  if (!volumeFenced(v)) fenceVolume(v);
  if (!fenceComplete(v, channelIops())) { retryLater(c); return; } // each channel IOP purges its commands
  if (slotsOfVolumeBusy(v)) { retryLater(c); return; } // a stage or destage is in flight: wait for it
  // Drop the volume's cache slots first, a ring's worth at a time.
  let i = load<u32>(c + CX_ARG);
  for (; i < slotCount(); i++) {
    if (slotVolume(i) != v) continue;
    if (!nvRoom(3)) { store<u32>(c + CX_ARG, i); retryLater(c); return; }
    if (thinDropSlot(i, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)))) nvPending(c, 1);
  }
  store<u32>(c + CX_ARG, i);
  if (!nvRoom(3 + 2 * MAX_EXTENTS)) { retryLater(c); return; } // entry, LUN map, reservations, each extent's init records (initClear)
  // The extents, before the entry is cleared: their init bits go after it.
  const n = volumeExtents(v);
  const ext = scratch() + 3072;
  for (let x: u32 = 0; x < n; x++) {
    store<u32>(ext + x * 12, volumeExtentMedium(v, x));
    store<u32>(ext + x * 12 + 4, volumeExtentFirst(v, x));
    store<u32>(ext + x * 12 + 8, volumeExtentChunks(v, x));
  }
  // The clears take their media's init map turns first, all or none (initmap.ts): a clear written
  // while a mark of the same record is in flight could leave neither of its copies whole with
  // what it held. Given back when the command's NV writes are all complete (channel.ts, drainNv).
  const turn = turnOfContext(gIndex, load<u32>(c + CX_ID));
  for (let x: u32 = 0; x < n; x++) {
    const m = load<u32>(ext + x * 12);
    if (m < mediaCount() && load<u32>(ext + x * 12 + 8) != 0 && !initTurnTake(m, turn)) { initTurnsGive(turn); retryLater(c); return; }
  }
  const thin = volumeThin(v);
  if (thin) store<u64>(c + CX_LBA, (<u64>load<u32>(volumeEntry(v) + VOLE_THIN_FIRST) << 32) | <u64>load<u32>(volumeEntry(v) + VOLE_THIN_RECORDS));
  uaVolumeUnmapping(v, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION)); // before its LUNs go (volumeDelete fails only before it unmaps)
  const e = volumeDelete(v, force);
  if (e != VE_OK) { initTurnsGive(turn); volumeError(c, e, true); return; }
  persist(c, volumeEntry(v), VOL_BYTES);
  persist(c, nvBase() + LUN_MAP_OFFSET, LUN_MAP_BYTES);
  reservationsDropVolume(v); // a volume created later with its number starts with no registration
  persist(c, nvReservations(), PR_TABLE_BYTES);
  const id = nvId(NVK_CONTEXT, load<u32>(c + CX_ID));
  for (let x: u32 = 0; x < n; x++) {
    const m = load<u32>(ext + x * 12);
    if (m >= mediaCount()) continue;
    nvPending(c, initClear(m, load<u32>(ext + x * 12 + 4), load<u32>(ext + x * 12 + 8), id));
  }
  if (load<u32>(c + CX_NV_PENDING) == 0) initTurnsGive(turn); // nothing queued (the NV ring took none)
  unfenceVolume(v);
  if (!thin) { waitPersisted(c); return; }
  store<u32>(c + CX_ARG, DELETE_THIN_FREE);
  persistThenRedispatch(c);
}

const DELETE_THIN_FREE: u32 = 0x80000000; // in CX_ARG: the entry is gone in the NV file; its thin chunks go back

/**
 * A thin volume's entry is out of the NV file: the chunks its records name go back to their media,
 * and the records to the table. (Given back before, a chunk written by another volume could be
 * named by the deleted one's records, were the delete lost in a crash.) Aborted before this, they
 * stay taken until the next boot rebuilds the bitmaps.
 */
function deleteThinFree(c: usize): void {
  const at = load<u64>(c + CX_LBA);
  thinRecordsGiveBack(<u32>(at >> 32), <u32>at);
  good(c);
}

/**
 * REINITIALIZE MEDIUM (argument: medium index) accepts that a lost medium's contents are gone: the
 * disk IOP writes a new label, clears the medium's chunks' init bits with the label's NV record (its
 * volumes read zeros where the lost data was; dirty data still in NV is kept and destaged), and the
 * medium is ready again. Refused (INVALID FIELD IN CDB) for a medium that is not lost: there is
 * nothing to accept. The command posts a ticket (CX_ARG) and ends with the outcome the disk IOP
 * publishes under it; a failed attempt leaves the medium lost, which its state alone cannot tell
 * from an attempt not begun. The wait is bounded: RELABEL_WAIT_NS without an outcome (a medium too
 * slow to take the label, an NV record that never completes) is COMMAND TIMEOUT, the log naming the medium.
 */
function reinitializeMedium(c: usize, m: u32): void {
  if (m >= mediaCount()) { fail(c, 0x05, 0x84, 0x00); ctxField(c, true, 2, -1); return; }
  const st = load<u32>(mediumState(m) + MS_STATE);
  const t = load<u32>(c + CX_ARG);
  if (t == 0) {
    if (load<u32>(mediumState(m) + MS_RELABEL_TICKET) != 0) { fail(c, 0x02, 0x04, 0x07); return; } // one in progress
    if (st != MEDS_LOST) { invalidField(c, 2, -1); return; }
    const ticket = relabelTicket(m);
    if (!postToDisk(MB_RELABEL, m, 0, 0, ticket)) { retryLater(c); return; }
    store<u32>(c + CX_ARG, ticket);
    store<f64>(c + CX_DEADLINE_NS, gNow + RELABEL_WAIT_NS);
    retryLater(c);
    return;
  }
  const outcome = relabelOutcome(m, t);
  if (outcome == RLB_DEAD) { fail(c, 0x02, 0x04, 0x03); return; } // nothing given up
  if (outcome == RLB_WRITE_ERROR) { fail(c, 0x03, 0x0C, 0x00); return; } // nothing given up; the medium is still lost
  if (outcome == RLB_BUSY) { fail(c, 0x02, 0x04, 0x07); return; } // another REINITIALIZE MEDIUM of it is in progress
  if (outcome == RLB_NOT_LOST && st != MEDS_OK) { invalidField(c, 2, -1); return; }
  if (st == MEDS_OK) { good(c); return; } // RLB_LABELED once its NV record made it ready (or another command's did)
  if (gNow >= load<f64>(c + CX_DEADLINE_NS)) {
    log(LOG_ERROR, "REINITIALIZE MEDIUM: no outcome from the disk IOP for the relabel of (medium, ticket)", m, t);
    fail(c, 0x0B, 0x2E, 0x02);
    return;
  }
  wakeAt(load<f64>(c + CX_DEADLINE_NS));
  retryLater(c); // the disk IOP writes the label, flushes, records it in NV
}

/** Bit mask of the channel IOPs. */
function channelIops(): u32 {
  let mask: u32 = 0;
  for (let i: u32 = 0; i < iopCount(); i++) if (iopRole(i) == ROLE_CHANNEL) mask |= 1 << i;
  return mask;
}

function mapOrUnmap(c: usize, list: usize, map: bool): void {
  if (!nvRoom(1)) { retryLater(c); return; }
  const v = getBe16(list);
  const port = <u32>load<u8>(list + 2);
  const lun = getBe16(list + 4);
  const e = map ? lunMap(v, port, lun, portCount()) : lunUnmap(v, port, lun, portCount());
  if (e != VE_OK) { volumeError(c, e, false); return; }
  // A LUN that loses its volume is announced (docs/scsi.md, "Unit attentions"); one mapped where
  // nothing was is not: the condition of its last unmap is still pending for whoever did not ask since.
  if (!map) uaLunChanged(port, lun, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
  persist(c, nvBase() + LUN_MAP_OFFSET, LUN_MAP_BYTES);
  waitPersisted(c);
}

function persist(c: usize, addr: usize, bytes: u32): void {
  if (nvPersistRange(addr, bytes, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)))) nvPending(c, 1);
}

/** ILLEGAL REQUEST with the vendor ASC of docs/scsi.md and a pointer to the field at fault. */
function volumeError(c: usize, e: u32, inCdb: bool): void {
  let asc: u32 = 0x26;
  let ascq: u32 = 0;
  let field: i32 = -1;
  switch (e) {
    case VE_NAME_EXISTS: asc = 0x80; ascq = 0x00; field = 16; break;
    case VE_NUMBER_IN_USE: asc = 0x80; ascq = 0x01; field = 0; break;
    case VE_NO_VOLUME: asc = 0x80; ascq = 0x02; field = 0; break;
    case VE_MAPPED: asc = 0x80; ascq = 0x03; break;
    case VE_NO_SPACE: asc = 0x81; ascq = 0x00; field = 8; break;
    case VE_LUN_MAPPED: asc = 0x82; ascq = 0x00; field = 4; break;
    case VE_NO_PORT: asc = 0x82; ascq = 0x01; field = 2; break;
    case VE_TABLE_FULL: asc = 0x83; ascq = 0x00; break;
    case VE_NO_MEDIUM: asc = 0x84; ascq = 0x00; field = 48; break;
    case VE_BAD_NAME: field = 16; break;
    case VE_BAD_BLOCK_SIZE: field = 2; break;
    case VE_BAD_CAPACITY: field = 8; break;
    case VE_BAD_LUN: field = 4; break;
    case VE_BAD_PLACEMENT: field = 4; break;
    case VE_NOT_MAPPED: asc = 0x82; ascq = 0x02; field = 0; break;
    case VE_THIN_MAP_FULL: asc = 0x81; ascq = 0x01; field = 8; break;
    default: break;
  }
  fail(c, 0x05, asc, ascq);
  if (inCdb) ctxField(c, true, 2, -1);
  else if (field >= 0) ctxField(c, false, <u32>field, -1);
}

// ---- IN: lists ------------------------------------------------------------------------------------

function managementIn(c: usize, sa: u32): void {
  const alloc = getBe32(cdb(c) + 6);
  switch (sa) {
    case SA_LIST_VOLUMES: listVolumes(c, alloc); return;
    case SA_LIST_MAPPINGS: listMappings(c, alloc); return;
    case SA_LIST_MEDIA: listMedia(c, alloc); return;
    case SA_LIST_PORTS: listPorts(c, alloc); return;
    case SA_STATISTICS: statistics(c, alloc); return;
    case SA_LIST_SESSIONS: listSessions(c, alloc); return;
    case SA_LIST_ACCESS: listAccess(c, alloc, getBe32(cdb(c) + 2)); return;
    case SA_PAIR_STATUS: pairStatus(c, alloc); return;
    case SA_REMOTE_STATUS: remoteStatus(c, alloc); return;
    case SA_RELAY_STATUS: relayStatus(c, alloc); return;
    default: invalidField(c, 1, 4);
  }
}

function listHeader(d: usize, entryBytes: u32, count: u32): u32 {
  putBe32(d, entryBytes * count);
  putBe16(d + 4, entryBytes);
  putBe16(d + 6, count);
  return 8 + entryBytes * count;
}

function listVolumes(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + MAX_VOLUMES * 96);
  if (d == 0) return;
  let n: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    if (!volumeInUse(v)) continue;
    const e = volumeEntry(v);
    const r = d + 8 + n * 96;
    putBe16(r, v);
    putBe16(r + 2, load<u16>(e + VOLE_BLOCK_SIZE));
    store<u8>(r + 4, load<u8>(e + VOLE_PLACEMENT));
    store<u8>(r + 5, load<u8>(e + VOLE_MEDIA_COUNT));
    store<u8>(r + 6, volumeReady(v) ? 1 : 2);
    putBe64(r + 8, load<u64>(e + VOLE_CAPACITY));
    memory.copy(r + 16, e + VOLE_NAME, 32);
    memory.copy(r + 48, e + VOLE_MEDIA, 16);
    putBe32(r + 64, volumeDirtySlots(v));
    putBe32(r + 68, volumeThin(v) ? thinHeldChunks(v) : load<u32>(e + VOLE_CHUNKS)); // chunks the volume holds on its media
    n++;
  }
  sendBuffer(c, min<u32>(listHeader(d, 96, n), alloc));
}

function listMappings(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + MAX_PORTS * MAX_LUNS * 8);
  if (d == 0) return;
  let n: u32 = 0;
  for (let port: u32 = 0; port < portCount(); port++) {
    for (let lun: u32 = 1; lun < MAX_LUNS; lun++) {
      const v = <u32>load<u16>(lunMapEntry(port, lun));
      if (v == 0) continue;
      const r = d + 8 + n * 8;
      store<u8>(r, <u8>port);
      putBe16(r + 2, lun);
      putBe16(r + 4, v - 1);
      n++;
    }
  }
  sendBuffer(c, min<u32>(listHeader(d, 8, n), alloc));
}

function listMedia(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + mediaCount() * 64);
  if (d == 0) return;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const r = d + 8 + m * 64;
    const ms = mediumState(m);
    store<u8>(r, <u8>m);
    store<u8>(r + 1, load<u8>(cfgMedium(m) + CMED_SCHEDULER));
    store<u8>(r + 2, <u8>load<u32>(ms + MS_STATE));
    putBe64(r + 4, mediumSectors(m));
    putBe32(r + 12, load<u32>(ms + MS_FREE));
    putBe32(r + 16, load<u32>(ms + MS_REGISTERED));
    putBe32(r + 20, load<u32>(ms + MS_ERRORS));
    memory.copy(r + 32, cfgMedium(m) + CMED_NAME, 32);
  }
  sendBuffer(c, min<u32>(listHeader(d, 64, mediaCount()), alloc));
}

function listPorts(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + portCount() * 64);
  if (d == 0) return;
  for (let port: u32 = 0; port < portCount(); port++) {
    const r = d + 8 + port * 64;
    const cp = cfgPort(port);
    const sessions = <u32>load<u8>(cp + CPORT_SESSIONS);
    let open: u32 = 0;
    for (let s: u32 = 0; s < sessions && s < MAX_SESSIONS; s++) {
      if (atomic.load<u32>(sessionDesc(port, s) + SES_STATE) == SESS_OPEN) open++;
    }
    store<u8>(r, <u8>port);
    store<u8>(r + 1, load<u8>(cp + CPORT_KIND));
    store<u8>(r + 2, <u8>sessions);
    store<u8>(r + 3, <u8>open);
    putBe16(r + 4, load<u16>(cp + CPORT_ADDRESS));
    store<u8>(r + 6, load<u8>(cp + CPORT_IOP));
    memory.copy(r + 32, cp + CPORT_NAME, 32);
  }
  sendBuffer(c, min<u32>(listHeader(d, 64, portCount()), alloc));
}

/** Open sessions of every port, with the initiator identity their transport set (docs/scsi.md). */
function listSessions(c: usize, alloc: u32): void {
  const d = dataInBuffer(c, 8 + MAX_PORTS * MAX_SESSIONS * SESSION_ENTRY_BYTES);
  if (d == 0) return;
  let n: u32 = 0;
  for (let port: u32 = 0; port < portCount(); port++) {
    const cp = cfgPort(port);
    const sessions = min<u32>(<u32>load<u8>(cp + CPORT_SESSIONS), MAX_SESSIONS);
    for (let s: u32 = 0; s < sessions; s++) {
      if (atomic.load<u32>(sessionDesc(port, s) + SES_STATE) != SESS_OPEN) continue;
      const ss = sessionStateOf(<u32>load<u8>(cp + CPORT_IOP), port, s);
      const r = d + 8 + n * SESSION_ENTRY_BYTES;
      store<u8>(r, <u8>port);
      store<u8>(r + 1, <u8>s);
      store<u8>(r + 2, load<u8>(cp + CPORT_KIND));
      putBe32(r + 4, load<u32>(ss + SS_OUTSTANDING));
      memory.copy(r + 8, ss + SS_ISID, 6);
      memory.copy(r + 32, ss + SS_IDENTITY, IDENTITY_NAME_BYTES);
      n++;
    }
  }
  sendBuffer(c, min<u32>(listHeader(d, SESSION_ENTRY_BYTES, n), alloc));
}

function statistics(c: usize, alloc: u32): void {
  const entry: u32 = 8 + 8 * STAT_COUNT;
  const d = dataInBuffer(c, 8 + 64 + iopCount() * entry);
  if (d == 0) return;
  const cb = d + 8;
  putBe32(cb, slotCount());
  putBe32(cb + 4, listCount(LIST_FREE));
  putBe32(cb + 8, listCount(LIST_CLEAN));
  putBe32(cb + 12, listCount(LIST_DIRTY));
  putBe32(cb + 16, pinnedCount());
  putBe64(cb + 32, cacheCounter(CS_READ_HITS));
  putBe64(cb + 40, cacheCounter(CS_READ_MISSES));
  putBe64(cb + 48, cacheCounter(CS_WRITE_HITS));
  for (let i: u32 = 0; i < iopCount(); i++) {
    const r = cb + 64 + i * entry;
    store<u8>(r, <u8>iopRole(i));
    store<u8>(r + 1, <u8>i);
    const stats: usize = load<u32>(MAP_ADDR + MAP_IOP_TABLE + i * MAP_IOP_BYTES + MIOP_STATS);
    for (let k: u32 = 0; k < STAT_COUNT; k++) putBe64(r + 8 + k * 8, load<u64>(stats + (<usize>k << 3)));
  }
  const total = 8 + 64 + iopCount() * entry;
  putBe32(d, total - 8);
  putBe16(d + 4, <u16>entry);
  putBe16(d + 6, <u16>iopCount());
  sendBuffer(c, min<u32>(total, alloc));
}
