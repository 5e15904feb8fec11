// The thin map (docs/design-notes.md, "Thin provisioning"; nv.ts, NVT_THIN): for every chunk of a
// thin volume, the medium chunk that holds it, or none. A thin volume takes a run of the table's
// records at its creation, one per 16 of its chunks, named in its volume entry; an entry is
// medium << 26 | (medium chunk + 1), 0 for a chunk no write has reached (or that UNMAP gave back).
//
// Records are kept in two copies with a generation and a CRC-32C (twocopy.ts): a change writes the
// older copy, so a write torn by a crash leaves the previous state whole. An entry is set only after
// the chunk's first write is flushed on its medium, and the slot's clean record waits for the
// entry's NV completion (disk.ts): a crash before either leaves the data dirty in NV, to be written
// again. An entry is cleared (UNMAP, delete) before its medium chunk can be given to anyone else,
// and the chunk is given back only once the clearing record is in the NV file (scsi/thin.ts), so
// the file never names a chunk that holds another volume's data.
//
// Volatile state (common memory, rebuilt at boot by thin.ts): which records are taken, and how many
// chunks each volume holds.
import { MAP_ADDR, MAX_VOLUMES } from "./abi";
import {
  thinMapBase, volumeEntry, nvPersistRange, THIN_RECORDS, THIN_RECORD_BYTES, THIN_RECORD_CHUNKS, THIN_MAP_BYTES,
} from "./nv";
import { copyCurrent, copySeal, copyAdvance, copyPick } from "./twocopy";
import { bitmapSetRange, bitmapClearRange, bitmapFindNextClear, bitmapFindNextSet } from "./kernels/bitmap";

/** Firmware-private map field: the thin map's volatile state (140 is the access table's, comm/access.ts). */
const MAPX_THIN: u32 = 144;
const TS_RECORDS: u32 = 0; // bitmap: records taken by thin volumes
const TS_MAPPED: u32 = THIN_RECORDS / 8; // MAX_VOLUMES x u32: chunks each volume holds (mapped, or given to a dirty slot)

// A thin volume's entry (volume.ts) holds these where a thick volume keeps its extents.
export const VOLE_THIN_FIRST: u32 = 72; // u32: its first record
export const VOLE_THIN_RECORDS: u32 = 76; // u32: records it holds

/** The largest medium chunk an entry can name (26 bits, less one for "none"): 4 TiB of medium. */
export const THIN_MAX_CHUNK: u32 = (1 << 26) - 2;

export function thinStateBytes(): usize { return <usize>TS_MAPPED + <usize>MAX_VOLUMES * 4; }

export function thinLayout(at: usize): void {
  store<u32>(MAP_ADDR + MAPX_THIN, <u32>at);
  memory.fill(at, 0, thinStateBytes());
}

// @ts-ignore: decorator
@inline function state(): usize { return <usize>load<u32>(MAP_ADDR + MAPX_THIN); }
// @ts-ignore: decorator
@inline function half(): usize { return <usize>(THIN_MAP_BYTES >> 1); }
// @ts-ignore: decorator
@inline function recordAt(i: u32): usize { return thinMapBase() + <usize>i * THIN_RECORD_BYTES; }

// @ts-ignore: decorator
@inline export function thinEntryPack(medium: u32, chunk: u32): u32 { return (medium << 26) | (chunk + 1); }
// @ts-ignore: decorator
@inline export function thinEntryMedium(e: u32): u32 { return e >> 26; }
// @ts-ignore: decorator
@inline export function thinEntryChunk(e: u32): u32 { return (e & 0x03FFFFFF) - 1; }

/** Records a thin volume of `chunks` chunks takes. */
export function thinRecordsFor(chunks: u32): u32 { return (chunks + THIN_RECORD_CHUNKS - 1) / THIN_RECORD_CHUNKS; }

/** The first copy of the record holding volume v's chunk. */
function record(v: u32, chunk: u32): usize {
  return recordAt(load<u32>(volumeEntry(v) + VOLE_THIN_FIRST) + chunk / THIN_RECORD_CHUNKS);
}

/** Volume v's entry for its chunk (0: none). */
export function thinEntry(v: u32, chunk: u32): u32 {
  return load<u32>(copyCurrent(record(v, chunk), half()) + (chunk % THIN_RECORD_CHUNKS) * 4);
}

/** Sets (or, with 0, clears) volume v's entry for its chunk in a new copy and persists it (1 NV entry). */
export function thinSetEntry(v: u32, chunk: u32, e: u32, id: u32): void {
  const was = thinEntry(v, chunk);
  const p = copyAdvance(record(v, chunk), half());
  store<u32>(p + (chunk % THIN_RECORD_CHUNKS) * 4, e);
  copySeal(p, thinMapBase(), half());
  nvPersistRange(p, THIN_RECORD_BYTES, id);
  thinCountAdd(v, (e != 0 ? 1 : 0) - (was != 0 ? 1 : 0));
}

/**
 * An entry's NV write failed: it is cleared again in memory only (the file's copy is stale until
 * the disk IOP rewrites the region), so that the chunk is written whole and mapped again.
 */
export function thinRevertEntry(v: u32, chunk: u32): void {
  const p = copyCurrent(record(v, chunk), half());
  if (load<u32>(p + (chunk % THIN_RECORD_CHUNKS) * 4) == 0) return;
  store<u32>(p + (chunk % THIN_RECORD_CHUNKS) * 4, 0);
  copySeal(p, thinMapBase(), half());
  thinCountAdd(v, -1);
}

/**
 * Clears, in memory, volume v's entries naming medium m (REINITIALIZE MEDIUM: its contents are gone),
 * each changed record in a new copy. The caller persists the table. Returns the entries cleared.
 */
export function thinClearMedium(v: u32, m: u32): u32 {
  const first = load<u32>(volumeEntry(v) + VOLE_THIN_FIRST);
  const records = load<u32>(volumeEntry(v) + VOLE_THIN_RECORDS);
  let cleared: u32 = 0;
  for (let i: u32 = 0; i < records; i++) {
    const r = recordAt(first + i);
    let cur = copyCurrent(r, half());
    let p: usize = 0;
    for (let k: u32 = 0; k < THIN_RECORD_CHUNKS; k++) {
      const e = load<u32>(cur + k * 4);
      if (e == 0 || thinEntryMedium(e) != m) continue;
      if (p == 0) { p = copyAdvance(r, half()); cur = p; }
      store<u32>(p + k * 4, 0);
      cleared++;
    }
    if (p != 0) copySeal(p, thinMapBase(), half());
  }
  thinCountAdd(v, -<i32>cleared);
  return cleared;
}

/** Persists the whole table (both copies of every record: a tear leaves one copy of each whole). */
export function thinMapPersist(id: u32): void { nvPersistRange(thinMapBase(), THIN_MAP_BYTES, id); }

/** Chunks volume v holds on its media: mapped, and given to dirty slots for their first write (thin.ts). */
export function thinHeldChunks(v: u32): u32 { return load<u32>(state() + TS_MAPPED + (v << 2)); }

export function thinCountAdd(v: u32, n: i32): void {
  const p = state() + TS_MAPPED + (v << 2);
  store<u32>(p, <u32>(<i32>load<u32>(p) + n));
}

// ---- Records of the table -------------------------------------------------------------------------

/** A run of `count` free records, taken; its first, or -1 when the table has no such run. */
export function thinRecordsTake(count: u32): i32 {
  const bm = state() + TS_RECORDS;
  let from: u32 = 0;
  while (from + count <= THIN_RECORDS) {
    const start = bitmapFindNextClear(bm, <u64>THIN_RECORDS, <u64>from);
    if (start < 0 || <u64>start + <u64>count > <u64>THIN_RECORDS) return -1;
    const next = bitmapFindNextSet(bm, <u64>THIN_RECORDS, <u64>start);
    const end: u64 = next < 0 ? <u64>THIN_RECORDS : <u64>next;
    if (end - <u64>start >= <u64>count) {
      bitmapSetRange(bm, <u64>THIN_RECORDS, <u64>start, <u64>count);
      return <i32>start;
    }
    from = <u32>end;
  }
  return -1;
}

/** Marks records taken (boot: a thin volume of the table holds them). False when one already was. */
export function thinRecordsMark(first: u32, count: u32): bool {
  if (<u64>first + <u64>count > <u64>THIN_RECORDS) return false;
  const bm = state() + TS_RECORDS;
  for (let i = first; i < first + count; i++) if (((load<u8>(bm + (i >> 3)) >> (i & 7)) & 1) != 0) return false;
  bitmapSetRange(bm, <u64>THIN_RECORDS, <u64>first, <u64>count);
  return true;
}

export function thinRecordsRelease(first: u32, count: u32): void {
  bitmapClearRange(state() + TS_RECORDS, <u64>THIN_RECORDS, <u64>first, <u64>count);
}

/** Empties records [first, first + count) in both copies and persists them (2 NV entries); volume v's count drops to 0. */
export function thinRecordsClear(v: u32, first: u32, count: u32, id: u32): void {
  const bytes = count * THIN_RECORD_BYTES;
  memory.fill(recordAt(first), 0, bytes);
  memory.fill(recordAt(first) + half(), 0, bytes);
  nvPersistRange(recordAt(first), bytes, id);
  nvPersistRange(recordAt(first) + half(), bytes, id);
  store<u32>(state() + TS_MAPPED + (v << 2), 0);
}

/**
 * Boot: makes a whole copy of volume v's record i current; a record with no whole copy is emptied
 * (and persisted so). False when it was: the chunks it named are lost to the volume.
 */
export function thinRecordPick(first: u32, i: u32, id: u32): bool {
  const r = recordAt(first + i);
  if (copyPick(r, thinMapBase(), half())) return true;
  memory.fill(r, 0, THIN_RECORD_BYTES);
  memory.fill(r + half(), 0, THIN_RECORD_BYTES);
  nvPersistRange(r, THIN_RECORD_BYTES, id);
  nvPersistRange(r + half(), THIN_RECORD_BYTES, id);
  return false;
}

/** The current copy of record i of a run starting at `first` (its 16 entries). */
export function thinRecordCurrent(first: u32, i: u32): usize { return copyCurrent(recordAt(first + i), half()); }

/** Boot: volume v's count of mapped chunks is set from its records (thin.ts). */
export function thinCountSet(v: u32, n: u32): void { store<u32>(state() + TS_MAPPED + (v << 2), n); }

/** Boot: empties the whole table (an image from before it) and persists it. */
export function thinMapFormat(id: u32): void {
  memory.fill(thinMapBase(), 0, THIN_MAP_BYTES);
  thinMapPersist(id);
}
