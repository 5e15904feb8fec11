// Thin provisioning at the cache (docs/design-notes.md, "Thin provisioning"). A thin volume's chunk
// gets a medium chunk when a write first reaches it: the write that dirties a slot of an unmapped
// chunk takes one from the volume's media there and then (thinEnsure), or is refused SPACE
// ALLOCATION FAILED WRITE PROTECT, so that every acknowledged write has a place on the media. The
// slot keeps the chunk it was given (cache.ts, slotThinChunk) until its first destage has written
// the whole chunk and flushed it; the thin map entry is then persisted and the slot's clean record
// waits for it (disk.ts). A chunk with no entry reads as zeros, from no medium.
//
// Boot rebuilds what is volatile: the records the thin volumes hold, their chunks in the media
// bitmaps, the counts; and gives the dirty slots of unmapped chunks recovered from NV a chunk again
// (the chunk a crash left unnamed in the map is free again: there is one for each).
import { MAX_VOLUMES } from "./abi";
import { mediaCount } from "./config";
import {
  volumeInUse, volumeThin, chunkToMedium, thinChunkTake, thinChunkRelease, thinPoolFree, markChunks, chunkTaken, THIN_UNMAPPED,
  VOLE_CHUNKS,
} from "./volume";
import {
  slotThinChunk, setSlotThinChunk, slotVolume, slotNumber, dropSlot, listFirst, listNext, cacheLookup, LIST_DIRTY,
} from "./cache";
import { chunkInitialized } from "./initmap";
import {
  thinEntry, thinSetEntry, thinRevertEntry, thinClearMedium, thinMapPersist, thinCountAdd, thinRecordCurrent,
  thinRecordsRelease, thinEntryMedium, thinEntryChunk, thinRecordPick, thinRecordsMark, thinCountSet,
  VOLE_THIN_FIRST, VOLE_THIN_RECORDS,
} from "./thinmap";
import { volumeEntry, THIN_RECORD_CHUNKS } from "./nv";
import { log, LOG_ERROR } from "./hal";

/**
 * Where a slot's data lies (or goes) on the media, as chunkToMedium says: for a thin chunk not
 * mapped yet, the chunk the slot was given for its data; THIN_UNMAPPED when it has none.
 */
export function slotMedium(slot: u32): u64 {
  const where = chunkToMedium(slotVolume(slot), slotNumber(slot));
  if (where != THIN_UNMAPPED) return where;
  const t = slotThinChunk(slot);
  return t == 0 ? THIN_UNMAPPED : (<u64>thinEntryMedium(t) << 32) | <u64>thinEntryChunk(t);
}

/**
 * Does the volume's chunk hold data on its medium (`where`: slotMedium or chunkToMedium, a medium
 * in the topology)? A thin one when it is mapped (its chunk was written whole before); a thick one
 * when its init bit says its first write is on the medium (initmap.ts).
 */
export function chunkHoldsData(volume: u32, slotNo: u32, where: u64): bool {
  if (volumeThin(volume)) return thinEntry(volume, slotNo) != 0;
  return chunkInitialized(<u32>(where >> 32), <u32>where);
}

/**
 * Before a write dirties `slot` (volume's chunk slotNo): a thin chunk with no medium chunk gets one
 * now. False when the volume's media have none free: the write must be refused, nothing written.
 */
export function thinEnsure(volume: u32, slotNo: u32, slot: u32): bool {
  if (!volumeThin(volume) || slotThinChunk(slot) != 0 || thinEntry(volume, slotNo) != 0) return true;
  const t = thinChunkTake(volume, slotNo);
  if (t == 0) return false;
  setSlotThinChunk(slot, t);
  thinCountAdd(volume, 1);
  return true;
}

/**
 * thinEnsure for every slot of volume bytes [base, base + bytes), all or none (a write that must not
 * be cut: COMPARE AND WRITE, ORWRITE). The slots are in the cache. False when the media lack room.
 */
export function thinEnsureRange(volume: u32, base: u64, bytes: u32): bool {
  if (!volumeThin(volume)) return true;
  const first = <u32>(base >> 16);
  const last = <u32>((base + <u64>bytes - 1) >> 16);
  let need: u64 = 0;
  for (let n = first; n <= last; n++) {
    const slot = cacheLookup(volume, n);
    if (slot >= 0 && slotThinChunk(<u32>slot) == 0 && thinEntry(volume, n) == 0) need++;
  }
  if (need > thinPoolFree(volume)) return false;
  for (let n = first; n <= last; n++) {
    const slot = cacheLookup(volume, n);
    if (slot >= 0 && !thinEnsure(volume, n, <u32>slot)) return false; // not reached: the room was counted
  }
  return true;
}

/** Drops a slot (cache.ts dropSlot): a medium chunk it was given for unmapped data goes back first. */
export function thinDropSlot(slot: u32, id: u32): bool {
  const t = slotThinChunk(slot);
  if (t != 0) { thinChunkRelease(t); setSlotThinChunk(slot, 0); thinCountAdd(slotVolume(slot), -1); }
  return dropSlot(slot, id);
}

/**
 * The first destage of a slot's thin chunk is flushed on its medium: the entry goes into the map
 * and to NV (1 entry, `id`: its completion lets the slot turn clean). False when the slot is no
 * thin chunk's first write.
 */
export function thinMapSlot(slot: u32, id: u32): bool {
  const t = slotThinChunk(slot);
  if (t == 0) return false;
  thinSetEntry(slotVolume(slot), slotNumber(slot), t, id); // counted as held already
  thinCountAdd(slotVolume(slot), -1);
  setSlotThinChunk(slot, 0);
  return true;
}

/** The entry's NV write failed: the chunk is the slot's again, unmapped, to be written whole and mapped once more. */
export function thinMapFailed(slot: u32): void {
  const v = slotVolume(slot);
  const t = thinEntry(v, slotNumber(slot));
  if (t == 0) return;
  thinRevertEntry(v, slotNumber(slot));
  thinCountAdd(v, 1);
  setSlotThinChunk(slot, t);
}

/**
 * REINITIALIZE MEDIUM accepted medium m's loss: thin chunks on it are unmapped (they read zeros, as
 * its thick chunks do once their init bits are cleared), and the map is persisted once (1 NV entry).
 * Their medium chunks stay taken until the next boot rebuilds the bitmaps from the map: given back
 * now, another volume could write one before the cleared entries reach the NV file.
 */
export function thinDropMedium(m: u32, id: u32): void {
  let cleared: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) if (volumeInUse(v) && volumeThin(v)) cleared += thinClearMedium(v, m);
  if (cleared > 0) thinMapPersist(id);
}

/**
 * A deleted thin volume's entry is out of the NV file: the chunks its records name go back to their
 * media, and the records to the table.
 */
export function thinRecordsGiveBack(first: u32, records: u32): void {
  for (let i: u32 = 0; i < records; i++) {
    const p = thinRecordCurrent(first, i);
    for (let k: u32 = 0; k < THIN_RECORD_CHUNKS; k++) {
      const t = load<u32>(p + k * 4);
      if (t != 0) thinChunkRelease(t);
    }
  }
  thinRecordsRelease(first, records);
}

// ---- Boot -------------------------------------------------------------------------------------------

/**
 * After the media bitmaps were rebuilt from the extents (volume.ts mediaRebuild): each thin volume's
 * records are marked taken, a whole copy of each made current, and every chunk they name marked in
 * its medium's bitmap. An entry naming a chunk already taken (or past its medium) is damage: it is
 * dropped and said so, never shared. Returns the entries dropped.
 */
export function thinBoot(id: u32): u32 {
  let dropped: u32 = 0;
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    if (!volumeInUse(v) || !volumeThin(v)) continue;
    const e = volumeEntry(v);
    const first = load<u32>(e + VOLE_THIN_FIRST);
    const records = load<u32>(e + VOLE_THIN_RECORDS);
    if (!thinRecordsMark(first, records)) log(LOG_ERROR, "thin: a volume's map records overlap another's (volume, first record)", v, first);
    const chunks = load<u32>(e + VOLE_CHUNKS);
    let mapped: u32 = 0;
    for (let i: u32 = 0; i < records; i++) {
      if (!thinRecordPick(first, i, id)) log(LOG_ERROR, "thin: a map record had no whole copy; the chunks it named read zeros (volume, record)", v, i);
      for (let k: u32 = 0; k < THIN_RECORD_CHUNKS; k++) {
        const chunk = i * THIN_RECORD_CHUNKS + k;
        const t = thinEntry(v, chunk);
        if (t == 0) continue;
        const m = thinEntryMedium(t);
        if (m >= mediaCount()) { mapped++; continue; } // its medium left the topology: the volume is not ready
        if (chunk >= chunks || chunkTaken(m, thinEntryChunk(t))) {
          log(LOG_ERROR, "thin: a map entry named a chunk already taken, or none of the volume's; dropped (volume, chunk)", v, chunk);
          thinSetEntry(v, chunk, 0, id);
          dropped++;
          continue;
        }
        markChunks(m, thinEntryChunk(t), 1, true);
        mapped++;
      }
    }
    thinCountSet(v, mapped);
  }
  return dropped;
}

/**
 * After thinBoot: every dirty slot recovered for an unmapped thin chunk is given a medium chunk
 * again. There is one for each (the one it had before the crash is free again, unnamed): a slot
 * left without is logged, and stays dirty in NV for the flush to report.
 */
export function thinRecover(): u32 {
  let given: u32 = 0;
  let i = listFirst(LIST_DIRTY);
  while (i >= 0) {
    const slot = <u32>i;
    i = listNext(slot);
    const v = slotVolume(slot);
    if (!volumeThin(v) || thinEntry(v, slotNumber(slot)) != 0) continue;
    const t = thinChunkTake(v, slotNumber(slot));
    if (t == 0) { log(LOG_ERROR, "thin: no free chunk for data recovered from NV (volume, chunk)", v, slotNumber(slot)); continue; }
    setSlotThinChunk(slot, t);
    thinCountAdd(v, 1);
    given++;
  }
  return given;
}
