// The "initialized" map of medium chunks (docs/hal.md, "Chunks that were never written"): one bit
// per 64 KiB chunk of every medium, in NV records of 512 chunks (nv.ts).
//
// A chunk whose bit is clear holds nothing of any volume: it reads as zeros without a medium read
// (its cache slot is zero-filled and fully valid when allocated), and its first destage writes
// the whole chunk. The bit is set (and its record persisted) after that write is flushed on the
// medium; the slot's clean record waits for its NV completion (disk.ts, markDone). Deleting a
// volume clears the bits of its extents.
// So a volume created on extents another volume used never reads the old volume's bytes, from the
// medium or from the cache. Thin volumes' chunks are not marked here: the thin map says which hold
// data (thin.ts), and a chunk one gives back has a clear bit for whoever takes it next.
//
// Every record has two copies, one in each half of the map, each with a generation and a CRC-32C
// of its bits (copyCrc: a version 3 record, generation 0, is a whole first copy). The copy with the newer generation is current; a change is written into the other copy with
// the next generation. A write torn by a crash leaves the current copy whole, and the change it
// carried was never acknowledged: a mark's slot is still dirty in NV (its clean record waits for
// the mark's completion) and is destaged whole again; a delete's bits belong to no volume,
// and boot clears them. (One copy, rebuilt from the volume table when torn, counted chunks of a
// volume created on a deleted one's extents as written: they read the deleted volume's bytes.)
//
// Boot checks both copies of every record. A copy that fails its CRC is the older one from then
// on (its generation is set below the other's in memory; the next change overwrites it whole).
// Only a record with no whole copy — not a tear, which damages one copy — is rebuilt from the
// volume table, every chunk a volume owns counted as initialized (its bytes are that volume's own),
// and so is the whole map when it could not be found (an image whose map lay beyond what was
// loaded; version 4 put it last, and a cache shrink cut it off). Then the bits of chunks no volume owns are cleared (a crash between a delete's volume
// entry and its bits).
import { mediaCount } from "./config";
import {
  initMapBase, nvInitBytes, initRecords, INIT_RECORD_BYTES, INIT_RECORD_CHUNKS, nvPersistRange, nvBase,
  NVT_VERSION, NVT_OFFSET, NVT_SIZE,
} from "./nv";
import { mediumState, MS_INIT, MS_CHUNKS, MS_BITMAP, MS_INIT_TURN, chunkToMedium, volumeThin, THIN_UNMAPPED } from "./volume";
import { copyCurrent, copySeal as twoCopySeal, copyAdvance, copyPick, COPY_DATA } from "./twocopy";
import { log, LOG_WARN } from "./hal";

const COPY_BITS: u32 = COPY_DATA; // bytes of bits per copy (twocopy.ts)

/** Layout time: where each medium's records start in the first copy (media in order, after one another). */
export function initLayout(): void {
  let at = initMapBase();
  for (let m: u32 = 0; m < mediaCount(); m++) {
    store<u32>(mediumState(m) + MS_INIT, <u32>at);
    store<u32>(mediumState(m) + MS_INIT_TURN, 0);
    at += <usize>initRecords(m) * INIT_RECORD_BYTES;
  }
}

// ---- The turn: one init map write of a medium in flight at a time ------------------------------
// A change of a record is written into its older copy, so two writes of one record in flight at
// once write its two copies: the first failing (nothing written) and the second torn by a power cut
// leave neither copy with what the record held before, and chunks of clean slots marked earlier
// read zeros. So whoever writes a medium's records — the disk IOP's marks (disk.ts), a relabel's
// clear (disk.ts) and DELETE VOLUME's clears (scsi/mgmt.ts, on a channel IOP) — takes the medium's
// turn first and gives it back once the write's completion is in, after its failure (if any) has
// made the NV file degraded: the next writer then finds it degraded and writes nothing (marks are
// held, management changes refused), and the copy the failed write left is never overwritten.

/** Tokens: a mark of the disk IOP's (slot + 1), a relabel's clear, a channel IOP's command context. */
export const TURN_RELABEL: u32 = 0x40000000; // | medium
// @ts-ignore: decorator
@inline export function turnOfContext(iop: u32, id: u32): u32 { return 0x80000000 | (iop << 24) | (id & 0x00FFFFFF); }

/** Takes medium m's init map turn for `token` (true also when it already has it); false while another has it. */
export function initTurnTake(m: u32, token: u32): bool {
  const p = mediumState(m) + MS_INIT_TURN;
  const held = atomic.cmpxchg<u32>(p, 0, token);
  return held == 0 || held == token;
}

/** Gives back medium m's turn if `token` has it. */
export function initTurnGive(m: u32, token: u32): void {
  atomic.cmpxchg<u32>(mediumState(m) + MS_INIT_TURN, token, 0);
}

/** Gives back every turn `token` has. */
export function initTurnsGive(token: u32): void {
  for (let m: u32 = 0; m < mediaCount(); m++) initTurnGive(m, token);
}

/** Bytes from a record's first copy to its second. */
// @ts-ignore: decorator
@inline function half(): usize { return <usize>(nvInitBytes() >> 1); }

/** The first copy of the record holding a chunk. */
// @ts-ignore: decorator
@inline function record(m: u32, chunk: u32): usize {
  return <usize>load<u32>(mediumState(m) + MS_INIT) + <usize>(chunk / INIT_RECORD_CHUNKS) * INIT_RECORD_BYTES;
}

// The map's records in twocopy.ts's terms.
// @ts-ignore: decorator
@inline function current(r: usize): usize { return copyCurrent(r, half()); }
// @ts-ignore: decorator
@inline function copySeal(p: usize): void { twoCopySeal(p, initMapBase(), half()); }
// @ts-ignore: decorator
@inline function advance(r: usize): usize { return copyAdvance(r, half()); }

export function chunkInitialized(m: u32, chunk: u32): bool {
  const p = current(record(m, chunk));
  const bit = chunk % INIT_RECORD_CHUNKS;
  return ((<u32>load<u8>(p + (bit >> 3)) >> (bit & 7)) & 1) != 0;
}

/**
 * Is the volume chunk (a cache slot's worth) known to hold nothing yet? False when its medium is
 * not in the topology (nothing can be said: the stage will fail instead).
 */
export function volumeChunkBlank(volume: u32, slotNo: u32): bool {
  const where = chunkToMedium(volume, slotNo);
  if (where == u64.MAX_VALUE) return false;
  if (volumeThin(volume)) return where == THIN_UNMAPPED; // mapped: written whole before (thin.ts)
  return !chunkInitialized(<u32>(where >> 32), <u32>where);
}

/** Sets a chunk's bit and persists its record's new copy (1 NV entry). */
export function initMark(m: u32, chunk: u32, id: u32): void {
  const p = advance(record(m, chunk));
  const bit = chunk % INIT_RECORD_CHUNKS;
  store<u8>(p + (bit >> 3), <u8>(<u32>load<u8>(p + (bit >> 3)) | (1 << (bit & 7))));
  copySeal(p);
  nvPersistRange(p, INIT_RECORD_BYTES, id);
}

/**
 * A mark's NV write failed: clears the chunk's bit again in memory (not persisted; the file's copy
 * is stale until the disk IOP rewrites the region), so that the slot's next destage writes the
 * whole chunk again and marks it again before its clean record.
 */
export function initUnmark(m: u32, chunk: u32): void {
  const p = current(record(m, chunk));
  const bit = chunk % INIT_RECORD_CHUNKS;
  store<u8>(p + (bit >> 3), <u8>(<u32>load<u8>(p + (bit >> 3)) & ~(1 << (bit & 7))));
  copySeal(p);
}

/**
 * Clears the bits of chunks [first, first + count) of medium m and persists their records' new
 * copies: the records' span in each half that holds one (the current copies between are written
 * as they are). Returns the NV entries queued (1 or 2).
 */
export function initClear(m: u32, first: u32, count: u32, id: u32): u32 {
  if (count == 0) return 0;
  const a = record(m, first);
  const b = record(m, first + count - 1);
  let halves: u32 = 0; // bit h: a new copy lies in half h
  for (let r = a; r <= b; r += INIT_RECORD_BYTES) halves |= advance(r) == r ? 1 : 2;
  for (let c = first; c < first + count; c++) {
    const p = current(record(m, c));
    const bit = c % INIT_RECORD_CHUNKS;
    store<u8>(p + (bit >> 3), <u8>(<u32>load<u8>(p + (bit >> 3)) & ~(1 << (bit & 7))));
  }
  for (let r = a; r <= b; r += INIT_RECORD_BYTES) copySeal(current(r));
  const span = <u32>(b - a) + INIT_RECORD_BYTES;
  let queued: u32 = 0;
  for (let h: u32 = 0; h < 2; h++) {
    if ((halves & (1 << h)) == 0) continue;
    nvPersistRange(a + <usize>h * half(), span, id);
    queued++;
  }
  return queued;
}
/**
 * Boot, when the image's directory (entry t) puts the map elsewhere or at another size (the media
 * changed, or a version 3 or 4 image: its map was last; version 3 has one copy): moves each copy from where the
 * image had it, when that lies in what was loaded (`loaded` bytes of the region); records of media
 * added at the end start blank, those of media removed go. False when it cannot be found.
 */
export function initRelocate(t: usize, loaded: usize): bool {
  if (t == 0) return false;
  const copies: u32 = <u32>load<u16>(t + NVT_VERSION) >= 4 ? 2 : 1;
  const offset = <usize>load<u32>(t + NVT_OFFSET);
  const had = <usize>(load<u32>(t + NVT_SIZE) / copies); // one copy
  if (offset + had * copies > loaded) return false;
  const from = nvBase() + offset;
  const to = initMapBase();
  const size = half();
  const n = min<usize>(had, size);
  // The second copy first when the first one's new place reaches into where the second was.
  if (copies == 2 && to + n > from + had) memory.copy(to + size, from + had, n);
  memory.copy(to, from, n);
  if (copies == 2 && to + n <= from + had) memory.copy(to + size, from + had, n);
  memory.fill(to + n, 0, size - n);
  const kept = copies == 2 ? n : 0;
  memory.fill(to + size + kept, 0, size - kept);
  return true;
}

/**
 * Boot: picks the current copy of every record, rebuilds the records with no whole copy, and clears
 * the bits of chunks no volume owns (MS_BITMAP, rebuilt from the volume table just before).
 * `lost`: the map could not be found (rebuilt whole); `moved`: initRelocate put it in a new place,
 * where the file holds other bytes until it is written, so both copies of every record are written
 * alike (a tear in either leaves the other). Persists the map once if anything changed; returns
 * the number of records rebuilt.
 */
export function initReconcile(lost: bool, moved: bool, id: u32): u32 {
  let rebuilt: u32 = 0;
  let changed = false;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const s = mediumState(m);
    const chunks = load<u32>(s + MS_CHUNKS);
    const owned: usize = load<u32>(s + MS_BITMAP);
    for (let i: u32 = 0; i < initRecords(m); i++) {
      const r = <usize>load<u32>(s + MS_INIT) + <usize>i * INIT_RECORD_BYTES;
      // A copy that is not whole is older than the one that is: the next change overwrites it.
      const damaged = lost || !copyPick(r, initMapBase(), half());
      if (damaged) { memory.fill(r, 0, INIT_RECORD_BYTES); memory.fill(r + half(), 0, INIT_RECORD_BYTES); rebuilt++; } // blank: generation 0, no bit
      const cur = current(r);
      let differs = damaged || moved;
      for (let w: u32 = 0; w < COPY_BITS && !differs; w += 8) {
        const first = i * INIT_RECORD_CHUNKS + w * 8;
        differs = (load<u64>(cur + w) & ~ownedWord(owned, first, chunks)) != 0;
      }
      if (!differs) continue;
      const p = advance(r);
      for (let w: u32 = 0; w < COPY_BITS; w += 8) {
        const own = ownedWord(owned, i * INIT_RECORD_CHUNKS + w * 8, chunks);
        store<u64>(p + w, (damaged ? own : load<u64>(p + w)) & own);
      }
      copySeal(p);
      if (moved) copySeal(advance(r)); // the other copy alike
      changed = true;
    }
  }
  if (changed) nvPersistRange(initMapBase(), nvInitBytes(), id);
  if (rebuilt > 0 && !lost) log(LOG_WARN, "nv: init map records with no whole copy were rebuilt from the volume table (records)", rebuilt, 0);
  return rebuilt;
}

/** 64 allocation bits from chunk `first` (a multiple of 64) of a medium's allocation bitmap (0 past its end). */
// @ts-ignore: decorator
@inline function ownedWord(bitmap: usize, first: u32, chunks: u32): u64 {
  if (first >= chunks) return 0;
  const w = load<u64>(bitmap + (<usize>(first >> 6) << 3));
  const left = chunks - first;
  return left >= 64 ? w : w & ((<u64>1 << <u64>left) - 1);
}
