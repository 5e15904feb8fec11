// The "initialized" map of medium chunks (docs/hal.md, "Chunks that were never written"): one bit
// per 64 KiB chunk of every medium, in NV records of 512 chunks with a CRC-32C each (nv.ts).
//
// A chunk whose bit is clear holds nothing of any volume: it reads as zeros without a medium read
// (its cache slot is zero-filled and fully valid when allocated), and its first destage writes
// the whole chunk. The bit is set (and its record persisted) after that write is flushed on the
// medium and before the slot's clean record; deleting a volume clears the bits of its extents.
// So a volume created on extents another volume used never reads the old volume's bytes, from the
// medium or from the cache. Thin provisioning will build on the same map.
//
// Boot reconciles the map with the volume table: a chunk no volume owns has its bit cleared (a
// crash between a delete's volume entry and its bits), and a record that fails its CRC is rebuilt
// from the volume table (every chunk a volume owns counted as initialized: those bytes are its own).
import { mediaCount } from "./config";
import {
  initMapBase, nvInitBytes, initRecords, INIT_RECORD_BYTES, INIT_RECORD_CHUNKS, seal, sealed, blank, nvPersistRange,
} from "./nv";
import { mediumState, MS_INIT, MS_CHUNKS, MS_BITMAP, chunkToMedium } from "./volume";
import { log, LOG_WARN } from "./hal";

const RECORD_BITS: u32 = 64; // bytes of bits per record; CRC-32C at RECORD_BITS

/** Layout time: where each medium's records start (media in order, after one another). */
export function initLayout(): void {
  let at = initMapBase();
  for (let m: u32 = 0; m < mediaCount(); m++) {
    store<u32>(mediumState(m) + MS_INIT, <u32>at);
    at += <usize>initRecords(m) * INIT_RECORD_BYTES;
  }
}

// @ts-ignore: decorator
@inline function record(m: u32, chunk: u32): usize {
  return <usize>load<u32>(mediumState(m) + MS_INIT) + <usize>(chunk / INIT_RECORD_CHUNKS) * INIT_RECORD_BYTES;
}

export function chunkInitialized(m: u32, chunk: u32): bool {
  const r = record(m, chunk);
  const bit = chunk % INIT_RECORD_CHUNKS;
  return ((<u32>load<u8>(r + (bit >> 3)) >> (bit & 7)) & 1) != 0;
}

/**
 * Is the volume chunk (a cache slot's worth) known to hold nothing yet? False when its medium is
 * not in the topology (nothing can be said: the stage will fail instead).
 */
export function volumeChunkBlank(volume: u32, slotNo: u32): bool {
  const where = chunkToMedium(volume, slotNo);
  if (where == u64.MAX_VALUE) return false;
  return !chunkInitialized(<u32>(where >> 32), <u32>where);
}

/** Sets a chunk's bit and persists its record (1 NV entry). */
export function initMark(m: u32, chunk: u32, id: u32): void {
  const r = record(m, chunk);
  const bit = chunk % INIT_RECORD_CHUNKS;
  store<u8>(r + (bit >> 3), <u8>(<u32>load<u8>(r + (bit >> 3)) | (1 << (bit & 7))));
  seal(r, RECORD_BITS);
  nvPersistRange(r, INIT_RECORD_BYTES, id);
}

/** Clears the bits of chunks [first, first + count) of medium m and persists their records (1 NV entry). */
export function initClear(m: u32, first: u32, count: u32, id: u32): void {
  if (count == 0) return;
  for (let c = first; c < first + count; c++) {
    const r = record(m, c);
    const bit = c % INIT_RECORD_CHUNKS;
    store<u8>(r + (bit >> 3), <u8>(<u32>load<u8>(r + (bit >> 3)) & ~(1 << (bit & 7))));
  }
  const a = record(m, first);
  const b = record(m, first + count - 1);
  for (let r = a; r <= b; r += INIT_RECORD_BYTES) seal(r, RECORD_BITS);
  nvPersistRange(a, <u32>(b - a) + INIT_RECORD_BYTES, id);
}

/**
 * Boot: checks every record, rebuilds the damaged ones, and clears the bits of chunks no volume
 * owns (MS_BITMAP, rebuilt from the volume table just before). `rebuildAll` after the map was lost
 * (a cache resize moved it out of what the NV file held). Persists the map once if anything
 * changed; returns the number of records rebuilt.
 */
export function initReconcile(rebuildAll: bool, id: u32): u32 {
  let rebuilt: u32 = 0;
  let changed = false;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const s = mediumState(m);
    const chunks = load<u32>(s + MS_CHUNKS);
    const owned: usize = load<u32>(s + MS_BITMAP);
    for (let i: u32 = 0; i < initRecords(m); i++) {
      const r = <usize>load<u32>(s + MS_INIT) + <usize>i * INIT_RECORD_BYTES;
      const damaged = rebuildAll || !(blank(r, INIT_RECORD_BYTES) || sealed(r, RECORD_BITS));
      let differs = damaged;
      for (let w: u32 = 0; w < RECORD_BITS; w += 8) {
        const first = i * INIT_RECORD_CHUNKS + w * 8;
        const own = first < chunks ? ownedWord(owned, first, chunks) : 0;
        const keep = (damaged ? own : load<u64>(r + w)) & own;
        if (keep != load<u64>(r + w)) { store<u64>(r + w, keep); differs = true; }
      }
      if (damaged) rebuilt++;
      if (!differs) continue;
      seal(r, RECORD_BITS);
      changed = true;
    }
  }
  if (changed) nvPersistRange(initMapBase(), nvInitBytes(), id);
  if (rebuilt > 0 && !rebuildAll) log(LOG_WARN, "nv: init map records failed their CRC and were rebuilt from the volume table (records)", rebuilt, 0);
  return rebuilt;
}

/** 64 allocation bits from chunk `first` (a multiple of 64) of a medium's allocation bitmap. */
// @ts-ignore: decorator
@inline function ownedWord(bitmap: usize, first: u32, chunks: u32): u64 {
  const w = load<u64>(bitmap + (<usize>(first >> 6) << 3));
  const left = chunks - first;
  return left >= 64 ? w : w & ((<u64>1 << <u64>left) - 1);
}
