// Embodiment 8 of document 003 on the standby storage unit (401): the LBA management unit (413) and
// the address table storage unit (414) of a redirect-on-write standby that keeps a snapshot one
// generation back (the state at the latest restart enabling point), and the processing sequencer's
// issuing-ID order of its modification (Fig. 36, [0269]-[0279]).
//
// Model. The medium is divided into physical blocks of `blockBytes`; a volume of `logicalBlocks`
// logical blocks lives on `physicalBlocks` of them. The address table (Fig. 30/31) has one entry per
// logical block: the physical block of the latest logical address space with a "changed" flag, and
// the physical block of the snapshot logical address space. The unused block table lists physical
// blocks in no address space. A write never lands on the snapshot's block: the first write to a
// logical block after a restart enabling point takes an unused block (S543-S545) and later writes
// of it go there (S542 -> S546). Snapshot forming (at each restart enabling point, [0255]) frees the
// snapshot's old blocks of changed entries and makes the latest the snapshot; restoration (on
// failover, [0263]) frees the latest of changed entries and goes back to the snapshot.
//
// Commands (writes and snapshot forming) carry issuing IDs and are processed in their order even
// when they arrive out of order (S586, [0276]): a command is held in buffer memory until every one
// before it is processed. The logical-to-physical conversion (S581) happens when the command's turn
// comes, not on arrival: converted on arrival, a write issued after a snapshot forming command but
// arriving before it would be counted into that snapshot.
//
// Bounds and what happens at them. `holdMax` commands of at most `holdBytes` each are held; a
// command is admitted only when its issuing ID is at most holdMax past the processed one, so the
// command that closes a gap always finds a slot; beyond that bound it is refused (SNAP_FULL). A write
// that needs more unused blocks than are left is refused whole before anything changes
// (SNAP_NO_SPACE: the volume needs more physical blocks than logicalBlocks + those changed between
// two restart points). The caller turns both into a status the sender sees (docs/remote.md). The
// medium is the caller's: snapWriteMap returns the physical blocks, the caller writes them (S587).

import { crc32c } from "../comm/crc";

export const SNAP_FAILED_OVER: i32 = -1; // restored and serving hosts: nothing more is taken from the link
export const SNAP_APPLIED: i32 = -2; // processed already: answer its completion again
export const SNAP_FULL: i32 = -3; // the issuing ID is more than holdMax past the processed one
export const SNAP_BAD: i32 = -4; // malformed: no blocks, too long, beyond the volume, unknown kind
export const SNAP_NO_SPACE: i32 = -5; // not enough unused physical blocks for the write

export const SNAP_MAGIC: u32 = 0x50414E53; // "SNAP"
export const SK_WRITE: u8 = 1;
export const SK_FORM: u8 = 2; // snapshot forming command (S562 at the normal system)
const NONE: u32 = 0xFFFFFFFF;
const HEADER_BYTES: u32 = 128;
const ENTRY_BYTES: u32 = 12; // latest u32, snapshot u32, flags u32
const FLAG_CHANGED: u32 = 1;
const HOLD_HEADER_BYTES: u32 = 32;
// Hold slot states
const HS_FREE: u8 = 0;
const HS_RECEIVING: u8 = 1; // S580-S585
const HS_READY: u8 = 2; // all its data is here: waits for its turn (S586)

@unmanaged export class SnapUnit {
  magic: u32;
  logicalBlocks: u32;
  physicalBlocks: u32;
  blockBytes: u32;
  holdMax: u32;
  holdBytes: u32;
  processed: u32; // the information of the processed issuing IDs ([0269])
  failedOver: u32;
  unused: u32; // entries in the unused block table
  held: u32; // hold slots in use
  refused: u32; // counters
  formed: u32; // snapshots formed
  restored: u32; // restorations
  released: u32; // physical blocks returned to the unused table
  redirected: u32; // first writes after a restart point that took an unused block (S543)
  discarded: u32; // held commands dropped at failover
  tableAt: u32; // offsets from the unit
  unusedAt: u32;
  holdAt: u32;
  homing: u32; // 1: restored at failover, its blocks not all moved home yet (snapHomeNext)
  generation: u32; // of the last image saved or loaded (snapSave / snapLoad)
  ownerAt: u32; // physical block -> logical block, while homing (rebuilt from the table)
  moved: u32; // blocks moved home
}

@unmanaged class Hold {
  state: u8;
  kind: u8; // SK_*
  pad: u16;
  issuingId: u32;
  lba: u64; // logical block
  blocks: u32;
  received: u32;
  pad1: u64;
}

// @ts-ignore: decorator
@inline function unit(u: usize): SnapUnit { return changetype<SnapUnit>(u); }
function tableEntry(u: usize, lblock: u32): usize { return u + <usize>unit(u).tableAt + <usize>lblock * <usize>ENTRY_BYTES; }
function holdAt(u: usize, i: u32): usize { return u + <usize>unit(u).holdAt + <usize>i * <usize>(HOLD_HEADER_BYTES + unit(u).holdBytes); }
// @ts-ignore: decorator
@inline function hold(u: usize, i: u32): Hold { return changetype<Hold>(holdAt(u, i)); }

function align8(n: usize): usize { return (n + 7) & ~<usize>7; }

export function snapBytes(logicalBlocks: u32, physicalBlocks: u32, holdMax: u32, holdBytes: u32): usize {
  return <usize>HEADER_BYTES + align8(<usize>logicalBlocks * <usize>ENTRY_BYTES) + 2 * align8(<usize>physicalBlocks * 4)
    + <usize>holdMax * (<usize>HOLD_HEADER_BYTES + align8(<usize>holdBytes));
}

/**
 * Formats a unit at `u` (snapBytes long): logical block i on physical block i in both address
 * spaces (Fig. 31b, unchanged), physical blocks logicalBlocks.. unused; processed = baseIssuing.
 * False when the sizes cannot work.
 */
export function snapLayout(u: usize, logicalBlocks: u32, physicalBlocks: u32, blockBytes: u32, holdMax: u32, holdBytes: u32, baseIssuing: u32): bool {
  assert(offsetof<SnapUnit>() <= HEADER_BYTES && offsetof<Hold>() == HOLD_HEADER_BYTES, "snapshot: header layout");
  if (logicalBlocks == 0 || physicalBlocks <= logicalBlocks || blockBytes == 0 || holdMax == 0 || holdBytes < blockBytes) return false;
  holdBytes = <u32>align8(<usize>holdBytes);
  memory.fill(u, 0, snapBytes(logicalBlocks, physicalBlocks, holdMax, holdBytes));
  const s = unit(u);
  s.magic = SNAP_MAGIC;
  s.logicalBlocks = logicalBlocks;
  s.physicalBlocks = physicalBlocks;
  s.blockBytes = blockBytes;
  s.holdMax = holdMax;
  s.holdBytes = holdBytes;
  s.processed = baseIssuing;
  s.tableAt = HEADER_BYTES;
  s.unusedAt = s.tableAt + <u32>align8(<usize>logicalBlocks * <usize>ENTRY_BYTES);
  s.ownerAt = s.unusedAt + <u32>align8(<usize>physicalBlocks * 4);
  s.holdAt = s.ownerAt + <u32>align8(<usize>physicalBlocks * 4);
  for (let i: u32 = 0; i < logicalBlocks; i++) {
    const t = tableEntry(u, i);
    store<u32>(t, i);
    store<u32>(t + 4, i);
    store<u32>(t + 8, 0);
  }
  for (let p = physicalBlocks; p > logicalBlocks; p--) pushUnused(u, p - 1);
  return true;
}

export function snapUnit(u: usize): SnapUnit { return unit(u); }

function pushUnused(u: usize, physical: u32): void {
  const s = unit(u);
  assert(s.unused < s.physicalBlocks, "snapshot: unused block table overflow");
  store<u32>(u + s.unusedAt + s.unused * 4, physical);
  s.unused++;
}

function popUnused(u: usize): u32 {
  const s = unit(u);
  if (s.unused == 0) return NONE;
  s.unused--;
  return load<u32>(u + s.unusedAt + s.unused * 4);
}

// ---- The LBA management unit ------------------------------------------------------------------------

/** [0244]: the physical block holding logical block lblock in the latest address space (NONE when out of range). */
export function snapRead(u: usize, lblock: u32): u32 { return lblock < unit(u).logicalBlocks ? load<u32>(tableEntry(u, lblock)) : NONE; }
/** The physical block of lblock in the snapshot address space. */
export function snapSnapshot(u: usize, lblock: u32): u32 { return lblock < unit(u).logicalBlocks ? load<u32>(tableEntry(u, lblock) + 4) : NONE; }
export function snapChanged(u: usize, lblock: u32): bool { return lblock < unit(u).logicalBlocks && (load<u32>(tableEntry(u, lblock) + 8) & FLAG_CHANGED) != 0; }

/**
 * Fig. 34 for `blocks` logical blocks from lblock: the physical block of each goes to out[] (u32s).
 * S540-S542 per block; an unchanged one takes an unused block (S543) and becomes changed (S545).
 * Whole blocks only, so the copy of the old block (S544) is never needed. All or nothing: when the
 * unused blocks do not suffice, nothing changes and SNAP_NO_SPACE is returned; else 0.
 */
export function snapWriteMap(u: usize, lblock: u32, blocks: u32, out: usize): i32 {
  const s = unit(u);
  if (blocks == 0 || <u64>lblock + <u64>blocks > <u64>s.logicalBlocks) return SNAP_BAD;
  let need: u32 = 0;
  for (let i: u32 = 0; i < blocks; i++) if (!snapChanged(u, lblock + i)) need++;
  if (need > s.unused) { s.refused++; return SNAP_NO_SPACE; }
  for (let i: u32 = 0; i < blocks; i++) {
    const t = tableEntry(u, lblock + i);
    if ((load<u32>(t + 8) & FLAG_CHANGED) == 0) { // S543/S545: redirect to an unused block
      store<u32>(t, popUnused(u));
      store<u32>(t + 8, FLAG_CHANGED);
      s.redirected++;
    }
    store<u32>(out + <usize>i * 4, load<u32>(t)); // S546
  }
  return 0;
}

/**
 * S587 in as few medium writes as the mapping allows: the physical blocks snapWriteMap put at `map`
 * (`blocks` u32s) as runs of consecutive blocks, each [first physical, index of its first logical
 * block in the command, blocks] (3 u32s) at `out`. Returns the runs. Unused blocks are taken in
 * order, so a write's first redirect is usually one run.
 */
export function snapRuns(map: usize, blocks: u32, out: usize): u32 {
  let runs: u32 = 0;
  for (let i: u32 = 0; i < blocks; ) {
    const first = load<u32>(map + <usize>i * 4);
    let n: u32 = 1;
    while (i + n < blocks && load<u32>(map + <usize>(i + n) * 4) == first + n) n++;
    const r = out + <usize>runs * 12;
    store<u32>(r, first);
    store<u32>(r + 4, i);
    store<u32>(r + 8, n);
    runs++;
    i += n;
  }
  return runs;
}

/** [0255]-[0257]: snapshot forming. Returns the entries that changed. */
export function snapForm(u: usize): u32 {
  const s = unit(u);
  let n: u32 = 0;
  for (let i: u32 = 0; i < s.logicalBlocks; i++) {
    const t = tableEntry(u, i);
    if ((load<u32>(t + 8) & FLAG_CHANGED) == 0) continue; // [0257]: nothing to do
    pushUnused(u, load<u32>(t + 4)); // the old snapshot's block is unused now
    store<u32>(t + 4, load<u32>(t)); // latest -> snapshot (Fig. 31d)
    store<u32>(t + 8, 0);
    s.released++;
    n++;
  }
  s.formed++;
  return n;
}

/** [0263]-[0265]: snapshot restoration. Returns the entries that went back. */
export function snapRestore(u: usize): u32 {
  const s = unit(u);
  let n: u32 = 0;
  for (let i: u32 = 0; i < s.logicalBlocks; i++) {
    const t = tableEntry(u, i);
    if ((load<u32>(t + 8) & FLAG_CHANGED) == 0) continue; // [0265]
    pushUnused(u, load<u32>(t)); // the block written since the snapshot is unused now
    store<u32>(t, load<u32>(t + 4)); // snapshot -> latest (Fig. 31c -> 31b)
    store<u32>(t + 8, 0);
    s.released++;
    n++;
  }
  s.restored++;
  return n;
}

// ---- Issuing-ID order (Fig. 36) ---------------------------------------------------------------------

/**
 * S580: a command of `kind` with issuingId; a write names `blocks` logical blocks from lba. Returns
 * the hold slot that takes it (a repeat of a held command gets its slot again), or a refusal SNAP_*.
 */
export function snapAccept(u: usize, kind: u32, issuingId: u32, lba: u64, blocks: u32): i32 {
  const s = unit(u);
  if (s.failedOver != 0) return SNAP_FAILED_OVER;
  if (issuingId <= s.processed) return SNAP_APPLIED;
  if (kind == <u32>SK_WRITE) {
    if (blocks == 0 || <u64>blocks * <u64>s.blockBytes > <u64>s.holdBytes || lba + <u64>blocks > <u64>s.logicalBlocks) return SNAP_BAD;
  } else if (kind != <u32>SK_FORM) return SNAP_BAD;
  let free: i32 = -1;
  for (let i: u32 = 0; i < s.holdMax; i++) {
    const h = hold(u, i);
    if (h.state == HS_FREE) { if (free < 0) free = <i32>i; continue; }
    if (h.issuingId == issuingId) return <i32>i;
  }
  if (issuingId - s.processed > s.holdMax || free < 0) { s.refused++; return SNAP_FULL; }
  const h = hold(u, <u32>free);
  h.state = kind == <u32>SK_FORM ? HS_READY : HS_RECEIVING;
  h.kind = <u8>kind;
  h.issuingId = issuingId;
  h.lba = lba;
  h.blocks = kind == <u32>SK_FORM ? 0 : blocks;
  h.received = 0;
  s.held++;
  return free;
}

/** The data area of hold slot i (the caller's DMA target, S584). */
export function snapData(u: usize, i: u32): usize { return holdAt(u, i) + HOLD_HEADER_BYTES; }

/** S583-S585: n bytes of slot i's data at offset; when all are in, the command waits for its turn. */
export function snapDataIn(u: usize, i: u32, offset: u32, src: usize, n: u32): bool {
  if (i >= unit(u).holdMax) return false;
  const h = hold(u, i);
  if (h.state == HS_READY) return true; // a repeat
  if (h.state != HS_RECEIVING || <u64>offset + <u64>n > <u64>h.blocks * <u64>unit(u).blockBytes) return false;
  memory.copy(snapData(u, i) + offset, src, n);
  h.received += n;
  if (h.received >= h.blocks * unit(u).blockBytes) h.state = HS_READY;
  return true;
}

/** S586/[0276]: the held command whose turn it is (issuing ID = processed + 1, all its data here), or -1. */
export function snapNext(u: usize): i32 {
  const s = unit(u);
  for (let i: u32 = 0; i < s.holdMax; i++) {
    const h = hold(u, i);
    if (h.state == HS_READY && h.issuingId == s.processed + 1) return <i32>i;
  }
  return -1;
}

export function snapKind(u: usize, i: u32): u32 { return <u32>hold(u, i).kind; }
export function snapLba(u: usize, i: u32): u64 { return hold(u, i).lba; }
export function snapBlocks(u: usize, i: u32): u32 { return hold(u, i).blocks; }
export function snapIssuing(u: usize, i: u32): u32 { return hold(u, i).issuingId; }

/**
 * S589/[0279]: the command in slot i is processed (a write on the medium, or a snapshot formed):
 * the processed issuing ID becomes its own and the slot is free.
 */
export function snapDone(u: usize, i: u32): void {
  const s = unit(u);
  const h = hold(u, i);
  if (h.state != HS_READY || h.issuingId != s.processed + 1) return;
  s.processed = h.issuingId;
  h.state = HS_FREE;
  s.held--;
}

/**
 * Failover (the snapshot restoration command, [0260]-[0263]): held commands are dropped (none of
 * them was processed), the table goes back to the snapshot, and nothing more is taken from the link.
 * Returns the entries restored.
 */
export function snapFailover(u: usize): u32 {
  const s = unit(u);
  s.failedOver = 1;
  for (let i: u32 = 0; i < s.holdMax; i++) {
    if (hold(u, i).state == HS_FREE) continue;
    hold(u, i).state = HS_FREE;
    s.held--;
    s.discarded++;
  }
  const n = snapRestore(u);
  s.homing = 1; // the restored blocks go home next (snapHomeNext), so that hosts read the volume directly
  buildOwners(u);
  return n;
}

// ---- Moving home after failover ------------------------------------------------------------------------
//
// Why (docs/remote.md, "Embodiment 8 on the link"): the array's cache and every front end address a
// volume by its own blocks, so after restoration each logical block is copied back to its home
// position (physical block = logical block, the volume's own place on the medium) and the ordinary
// read path holds without a translation below the cache. The restored table is a permutation of
// logical blocks over physical ones; the moves resolve it one block at a time, each move a copy into
// an unused block followed by a table change, so a restart between moves finds a table that names
// only whole blocks and the next move is found again from it (snapHomeNext is a function of the
// table alone).

function ownerOf(u: usize, physical: u32): u32 { return load<u32>(u + unit(u).ownerAt + <usize>physical * 4); }
function setOwner(u: usize, physical: u32, lblock: u32): void { store<u32>(u + unit(u).ownerAt + <usize>physical * 4, lblock); }

/** The owner table (physical -> logical, NONE for an unused block) from the address table. */
function buildOwners(u: usize): void {
  const s = unit(u);
  for (let p: u32 = 0; p < s.physicalBlocks; p++) setOwner(u, p, NONE);
  for (let l: u32 = 0; l < s.logicalBlocks; l++) setOwner(u, load<u32>(tableEntry(u, l)), l);
}

/** Takes physical block p out of the unused block table; false when it is not there. */
function takeUnused(u: usize, physical: u32): bool {
  const s = unit(u);
  for (let i: u32 = 0; i < s.unused; i++) {
    const at = u + s.unusedAt + i * 4;
    if (load<u32>(at) != physical) continue;
    s.unused--;
    store<u32>(at, load<u32>(u + s.unusedAt + s.unused * 4));
    return true;
  }
  return false;
}

/**
 * At most how many moves homing has left (the failover's wait is bounded by this many copies): one
 * per logical block away from home, and one more for each cycle among them, of which there are at
 * most half as many as those blocks.
 */
export function snapHomeBound(u: usize): u32 {
  const s = unit(u);
  if (s.homing == 0) return 0;
  let away: u32 = 0;
  for (let l: u32 = 0; l < s.logicalBlocks; l++) if (load<u32>(tableEntry(u, l)) != l) away++;
  return away + away / 2;
}

/**
 * The next move home: 1 and out = [logical block, from physical, to physical] (u32s) — the caller
 * copies the block and then calls snapHomeDone; 0 when every logical block is at home (homing ends).
 * A block whose home is unused goes there; when no such block is left, some block sits on another's
 * home and at least one block past the volume (>= logicalBlocks) is unused: that block takes it.
 */
export function snapHomeNext(u: usize, out: usize): i32 {
  const s = unit(u);
  if (s.homing == 0) return 0;
  let misplaced: u32 = NONE;
  for (let l: u32 = 0; l < s.logicalBlocks; l++) {
    const p = load<u32>(tableEntry(u, l));
    if (p == l) continue;
    if (ownerOf(u, l) == NONE) { store<u32>(out, l); store<u32>(out + 4, p); store<u32>(out + 8, l); return 1; }
    if (misplaced == NONE) misplaced = l;
  }
  if (misplaced == NONE) { s.homing = 0; return 0; }
  for (let i: u32 = 0; i < s.unused; i++) {
    const q = load<u32>(u + s.unusedAt + i * 4);
    if (q < s.logicalBlocks) continue;
    const occupant = ownerOf(u, misplaced); // on misplaced's home: it moves aside
    store<u32>(out, occupant); store<u32>(out + 4, misplaced); store<u32>(out + 8, q);
    return 1;
  }
  assert(false, "snapshot: no unused block past the volume while homing");
  return 0;
}

/**
 * The block of lblock is on physical `to` now (the copy is durable): both address spaces name it,
 * `from` is unused. False when the move is not the one the table allows (changes nothing).
 */
export function snapHomeDone(u: usize, lblock: u32, from: u32, to: u32): bool {
  const s = unit(u);
  if (s.homing == 0 || lblock >= s.logicalBlocks || load<u32>(tableEntry(u, lblock)) != from || ownerOf(u, to) != NONE) return false;
  if (!takeUnused(u, to)) return false;
  const t = tableEntry(u, lblock);
  store<u32>(t, to);
  store<u32>(t + 4, to);
  setOwner(u, to, lblock);
  setOwner(u, from, NONE);
  pushUnused(u, from);
  s.moved++;
  return true;
}

// ---- The durable image ---------------------------------------------------------------------------------
//
// What must survive a restart of the standby array: the address table, the unused block table, the
// processed issuing ID and whether the volume failed over (and is still moving home). Held commands
// need not: none was answered, the sender sends it again after its timeout. The image is written to
// one of two places in turn (generation odd: a, even: b) with a CRC-32C over all of it, so a write
// torn by a crash leaves the other whole; snapLoad takes the newer whole one.

const IMAGE_MAGIC: u32 = 0x4D494E53; // "SNIM"
const IMAGE_HEADER: u32 = 64;
const IM_MAGIC: u32 = 0;
const IM_GENERATION: u32 = 4;
const IM_LOGICAL: u32 = 8;
const IM_PHYSICAL: u32 = 12;
const IM_BLOCK: u32 = 16;
const IM_PROCESSED: u32 = 20;
const IM_FAILED_OVER: u32 = 24;
const IM_HOMING: u32 = 28;
const IM_UNUSED: u32 = 32;
const IM_FORMED: u32 = 36;
const IM_RESTORED: u32 = 40;
const IM_CRC: u32 = 60; // CRC-32C of the image with these 4 bytes zero

/** Bytes of one image of a unit of this geometry. */
export function snapImageBytes(logicalBlocks: u32, physicalBlocks: u32): usize {
  return <usize>IMAGE_HEADER + <usize>logicalBlocks * <usize>ENTRY_BYTES + <usize>physicalBlocks * 4;
}

function imageCrc(p: usize, bytes: usize): u32 {
  const saved = load<u32>(p + IM_CRC);
  store<u32>(p + IM_CRC, 0);
  const c = crc32c(p, bytes, 0);
  store<u32>(p + IM_CRC, saved);
  return c;
}

/** Writes the unit's image (the next generation) into a or b, whichever is not the current one. Returns the place written. */
export function snapSave(u: usize, a: usize, b: usize): usize {
  const s = unit(u);
  s.generation++;
  const p = (s.generation & 1) != 0 ? a : b;
  const bytes = snapImageBytes(s.logicalBlocks, s.physicalBlocks);
  memory.fill(p, 0, IMAGE_HEADER);
  store<u32>(p + IM_MAGIC, IMAGE_MAGIC);
  store<u32>(p + IM_GENERATION, s.generation);
  store<u32>(p + IM_LOGICAL, s.logicalBlocks);
  store<u32>(p + IM_PHYSICAL, s.physicalBlocks);
  store<u32>(p + IM_BLOCK, s.blockBytes);
  store<u32>(p + IM_PROCESSED, s.processed);
  store<u32>(p + IM_FAILED_OVER, s.failedOver);
  store<u32>(p + IM_HOMING, s.homing);
  store<u32>(p + IM_UNUSED, s.unused);
  store<u32>(p + IM_FORMED, s.formed);
  store<u32>(p + IM_RESTORED, s.restored);
  memory.copy(p + IMAGE_HEADER, u + s.tableAt, <usize>s.logicalBlocks * <usize>ENTRY_BYTES);
  const list = p + IMAGE_HEADER + <usize>s.logicalBlocks * <usize>ENTRY_BYTES;
  memory.copy(list, u + s.unusedAt, <usize>s.unused * 4);
  memory.fill(list + <usize>s.unused * 4, 0, <usize>(s.physicalBlocks - s.unused) * 4);
  store<u32>(p + IM_CRC, imageCrc(p, bytes));
  return p;
}

/** Is p a whole image of this unit's geometry? */
function imageWhole(u: usize, p: usize): bool {
  const s = unit(u);
  if (load<u32>(p + IM_MAGIC) != IMAGE_MAGIC || load<u32>(p + IM_LOGICAL) != s.logicalBlocks || load<u32>(p + IM_PHYSICAL) != s.physicalBlocks
    || load<u32>(p + IM_BLOCK) != s.blockBytes || load<u32>(p + IM_UNUSED) > s.physicalBlocks) return false;
  return load<u32>(p + IM_CRC) == imageCrc(p, snapImageBytes(s.logicalBlocks, s.physicalBlocks));
}

/**
 * A unit laid out with the saved geometry (snapLayout) takes the newer whole image of a and b: the
 * table, the unused blocks, the processed ID, failover and homing; nothing held. Returns the place
 * loaded from, or 0 when neither is whole (the caller must not serve the volume from a guess: it
 * says so and keeps the pair suspended).
 */
export function snapLoad(u: usize, a: usize, b: usize): usize {
  const s = unit(u);
  const okA = imageWhole(u, a), okB = imageWhole(u, b);
  if (!okA && !okB) return 0;
  const p = !okB || (okA && <i32>(load<u32>(a + IM_GENERATION) - load<u32>(b + IM_GENERATION)) > 0) ? a : b;
  s.generation = load<u32>(p + IM_GENERATION);
  s.processed = load<u32>(p + IM_PROCESSED);
  s.failedOver = load<u32>(p + IM_FAILED_OVER);
  s.homing = load<u32>(p + IM_HOMING);
  s.unused = load<u32>(p + IM_UNUSED);
  s.formed = load<u32>(p + IM_FORMED);
  s.restored = load<u32>(p + IM_RESTORED);
  memory.copy(u + s.tableAt, p + IMAGE_HEADER, <usize>s.logicalBlocks * <usize>ENTRY_BYTES);
  memory.copy(u + s.unusedAt, p + IMAGE_HEADER + <usize>s.logicalBlocks * <usize>ENTRY_BYTES, <usize>s.unused * 4);
  for (let i: u32 = 0; i < s.holdMax; i++) hold(u, i).state = HS_FREE;
  s.held = 0;
  if (!snapCheck(u)) return 0; // whole but not a table this unit could have written: not served
  return p;
}

/**
 * Does the table account for every physical block exactly once — the latest block of an entry, the
 * snapshot block of a changed entry, or unused — and does failover leave no entry changed? A check
 * of what snapLoad takes (a CRC says an image is whole, not that it is right). The owner table is
 * its scratch; it is rebuilt after when homing.
 */
export function snapCheck(u: usize): bool {
  const s = unit(u);
  const MARK: u32 = 0xFFFFFFFE;
  for (let p: u32 = 0; p < s.physicalBlocks; p++) setOwner(u, p, NONE);
  let ok = s.unused <= s.physicalBlocks;
  for (let l: u32 = 0; ok && l < s.logicalBlocks; l++) {
    const t = tableEntry(u, l);
    const latest = load<u32>(t), snap = load<u32>(t + 4), changed = (load<u32>(t + 8) & FLAG_CHANGED) != 0;
    if (latest >= s.physicalBlocks || snap >= s.physicalBlocks || changed == (latest == snap) || (changed && s.failedOver != 0)) { ok = false; break; }
    if (ownerOf(u, latest) != NONE) { ok = false; break; }
    setOwner(u, latest, MARK);
    if (!changed) continue;
    if (ownerOf(u, snap) != NONE) { ok = false; break; }
    setOwner(u, snap, MARK);
  }
  for (let i: u32 = 0; ok && i < s.unused; i++) {
    const p = load<u32>(u + s.unusedAt + i * 4);
    if (p >= s.physicalBlocks || ownerOf(u, p) != NONE) { ok = false; break; }
    setOwner(u, p, MARK);
  }
  for (let p: u32 = 0; ok && p < s.physicalBlocks; p++) if (ownerOf(u, p) != MARK) ok = false; // a block nobody names: lost space
  if (s.homing != 0) buildOwners(u);
  return ok;
}
