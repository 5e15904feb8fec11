// Volumes and their placement on media (document 003's medium control: volume LBA -> medium
// extents), the LUN map, and the media allocation bitmaps.
//
// Space is allocated in 64 KiB chunks, the size of a cache slot, so one slot always lies on one
// medium extent. A thick volume (linear, striped) takes all its chunks at creation, as extents; a
// thin one takes a chunk of one of its media when a write first reaches it (thinmap.ts, thin.ts).
// The volume table and LUN map are in NV memory; the allocation bitmaps are volatile and rebuilt
// from the volume table (and the thin map) at boot, so they can never disagree with them.
// These functions change memory only; the management command persists what changed and answers
// the host after the NV write completes.
import {
  MAX_VOLUMES, MAX_PORTS, MAX_LUNS, SLOT_SECTORS, SLOT_SHIFT, MAP_ADDR, MAP_MEDIA_TABLE, MAP_MEDIUM_BYTES, MMED_STATE,
  MEDS_OK, MEDS_DEAD, MEDS_BECOMING_READY, MEDS_LOST,
} from "./abi";
import { mediaCount, mediumSectors } from "./config";
import { volumeEntry, lunMapEntry, sealVolume, sealLun, VOL_BYTES } from "./nv";
import { namesEqual } from "./util";
import {
  thinEntry, thinEntryMedium, thinEntryChunk, thinEntryPack, thinRecordsFor, thinRecordsTake,
  VOLE_THIN_FIRST, VOLE_THIN_RECORDS, THIN_MAX_CHUNK,
} from "./thinmap";
import { prngNext } from "./prng";
import { bitmapSetRange, bitmapClearRange, bitmapFindNextSet, bitmapFindNextClear } from "./kernels/bitmap";

export const VOLE_STATE: u32 = 0; // u8: 0 free, 1 in use
export const VOLE_PLACEMENT: u32 = 1; // u8: PLACE_*
export const VOLE_BLOCK_SIZE: u32 = 2; // u16
export const VOLE_MEDIA_COUNT: u32 = 4; // u8
export const VOLE_EXTENT_COUNT: u32 = 5; // u8
export const VOLE_ACCESS_DEFAULT: u32 = 6; // u8: access of initiators the volume's access list does not name (comm/access.ts ACC_*; 0 read-write)
export const VOLE_CAPACITY: u32 = 8; // u64 blocks
export const VOLE_NAME: u32 = 16; // 32 bytes, NUL padded
export const VOLE_MEDIA: u32 = 48; // 16 bytes
export const VOLE_CHUNKS: u32 = 64; // u32
export const VOLE_ID: u32 = 68; // u32: drawn at creation, never 0: the access list's records name the volume by it too
export const VOLE_EXTENTS: u32 = 72;
export const EXTENT_BYTES: u32 = 12; // medium u16 @0, first chunk u32 @4, chunks u32 @8
export const MAX_EXTENTS: u32 = 15;
export const NAME_BYTES: u32 = 32;

export const PLACE_LINEAR: u32 = 0;
export const PLACE_STRIPED: u32 = 1;
export const PLACE_THIN: u32 = 2; // chunks taken from the listed media as writes reach them (thinmap.ts)

/** chunkToMedium of a thin volume's chunk that holds nothing yet: no medium chunk is its. */
export const THIN_UNMAPPED: u64 = u64.MAX_VALUE - 1;

// Volatile per-medium state, shared by the IOPs.
export const MEDIUM_STATE_BYTES: u32 = 64;
export const MS_STATE: u32 = 0; // u32: MEDS_* (abi.ts); set with setMediumState, which the map mirrors
export const MS_CHUNKS: u32 = 4;
export const MS_FREE: u32 = 8;
export const MS_BITMAP: u32 = 12; // u32 address: bit set = chunk allocated
export const MS_REGISTERED: u32 = 16; // requests registered in the IO scheduler
export const MS_ERRORS: u32 = 20;
export const MS_INIT: u32 = 24; // u32 address: the medium's first init map record (initmap.ts)
export const MS_LABEL: u32 = 28; // u32: LBL_* (disk.ts): where the check of the medium's label is
export const MS_THIN_NEXT: u32 = 32; // u32: where the next thin chunk is looked for (allocations go round the medium)
// REINITIALIZE MEDIUM: each command takes a ticket, posts it with MB_RELABEL, and reads its
// attempt's outcome under it (a medium that went back to lost cannot say "failed" by its state).
export const MS_RELABEL_ASKED: u32 = 36; // u32: last ticket taken (channel IOPs, atomic)
export const MS_RELABEL_TICKET: u32 = 40; // u32: ticket of the relabel in progress, 0 none (disk IOP)
export const MS_RELABEL_ENDED: u32 = 44; // RELABEL_OUTCOMES x u32: ticket << 3 | RLB_*, at ticket % RELABEL_OUTCOMES (to 60)
export const MS_INIT_TURN: u32 = 60; // u32: who has an init map write of this medium in flight, 0 none (initmap.ts, initTurnTake)
const RELABEL_OUTCOMES: u32 = 4;
export const MEDIUM_OK: u32 = MEDS_OK;
export const MEDIUM_DEAD: u32 = MEDS_DEAD;

// Outcomes of a relabel (MS_RELABEL_ENDED).
export const RLB_NONE: u32 = 0; // not ended (or its entry was taken by a later ticket)
export const RLB_LABELED: u32 = 1; // the new label is on the medium; its NV record makes it ready
export const RLB_DEAD: u32 = 2; // the medium did not answer: nothing given up
export const RLB_WRITE_ERROR: u32 = 3; // the medium refused the label (write or flush): nothing given up
export const RLB_NOT_LOST: u32 = 4; // the medium was not lost when the disk IOP took the request
export const RLB_BUSY: u32 = 5; // another REINITIALIZE MEDIUM of the medium was in progress

/** A new REINITIALIZE MEDIUM ticket for medium m (never 0). */
export function relabelTicket(m: u32): u32 {
  let t = atomic.add<u32>(mediumState(m) + MS_RELABEL_ASKED, 1) + 1;
  if ((t & 0x1FFFFFFF) == 0) t = atomic.add<u32>(mediumState(m) + MS_RELABEL_ASKED, 1) + 1;
  return t & 0x1FFFFFFF;
}

/** The disk IOP publishes the outcome of the relabel ticket t of medium m. */
export function relabelPublish(m: u32, t: u32, outcome: u32): void {
  atomic.store<u32>(mediumState(m) + MS_RELABEL_ENDED + (t % RELABEL_OUTCOMES) * 4, (t << 3) | outcome);
}

/** RLB_* of the relabel ticket t of medium m (RLB_NONE: not ended yet). */
export function relabelOutcome(m: u32, t: u32): u32 {
  const e = atomic.load<u32>(mediumState(m) + MS_RELABEL_ENDED + (t % RELABEL_OUTCOMES) * 4);
  return (e >> 3) == t ? e & 7 : RLB_NONE;
}

/** Firmware-private map field: address of the media state array. */
export const MAPX_MEDIA_STATE: u32 = 64;

// Errors of volume management; scsi/mgmt.ts turns them into sense data.
export const VE_OK: u32 = 0;
export const VE_NAME_EXISTS: u32 = 1;
export const VE_NUMBER_IN_USE: u32 = 2;
export const VE_NO_VOLUME: u32 = 3;
export const VE_MAPPED: u32 = 4;
export const VE_NO_SPACE: u32 = 5;
export const VE_LUN_MAPPED: u32 = 6;
export const VE_NO_PORT: u32 = 7;
export const VE_TABLE_FULL: u32 = 8;
export const VE_NO_MEDIUM: u32 = 9;
export const VE_BAD_NAME: u32 = 10;
export const VE_BAD_BLOCK_SIZE: u32 = 11;
export const VE_BAD_CAPACITY: u32 = 12;
export const VE_BAD_LUN: u32 = 13;
export const VE_BAD_PLACEMENT: u32 = 14;
export const VE_NOT_MAPPED: u32 = 15;
export const VE_THIN_MAP_FULL: u32 = 16;

// @ts-ignore: decorator
@inline export function mediumState(m: u32): usize {
  return <usize>load<u32>(MAP_ADDR + MAPX_MEDIA_STATE) + m * MEDIUM_STATE_BYTES;
}

export function mediumStateBytes(): usize {
  let bytes: usize = <usize>mediaCount() * MEDIUM_STATE_BYTES;
  for (let m: u32 = 0; m < mediaCount(); m++) bytes += bitmapBytes(mediumChunks(m));
  return bytes;
}

export function mediumChunks(m: u32): u32 { return <u32>(mediumSectors(m) / SLOT_SECTORS); }

function bitmapBytes(chunks: u32): usize { return ((<usize>chunks + 63) >> 6) << 3; }

/** Lays out the media state at `base` (layout time). */
export function mediaLayout(base: usize): void {
  store<u32>(MAP_ADDR + MAPX_MEDIA_STATE, <u32>base);
  let bitmap = base + <usize>mediaCount() * MEDIUM_STATE_BYTES;
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const s = mediumState(m);
    store<u32>(s + MS_CHUNKS, mediumChunks(m));
    store<u32>(s + MS_BITMAP, <u32>bitmap);
    bitmap += bitmapBytes(mediumChunks(m));
  }
}

/** Rebuilds the allocation bitmaps from the volume table (boot). */
export function mediaRebuild(): void {
  for (let m: u32 = 0; m < mediaCount(); m++) {
    const s = mediumState(m);
    const chunks = load<u32>(s + MS_CHUNKS);
    memory.fill(load<u32>(s + MS_BITMAP), 0, bitmapBytes(chunks));
    store<u32>(s + MS_FREE, chunks);
    setMediumState(m, MEDS_BECOMING_READY); // until the disk IOP has checked its label
    store<u32>(s + MS_LABEL, 0);
    memory.fill(s + MS_RELABEL_ASKED, 0, 8 + RELABEL_OUTCOMES * 4);
    markChunks(m, 0, 1, true); // chunk 0 holds the label (array metadata): never a volume's
  }
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const e = volumeEntry(v);
    if (load<u8>(e + VOLE_STATE) == 0) continue;
    const n = load<u8>(e + VOLE_EXTENT_COUNT);
    for (let x: u32 = 0; x < n; x++) {
      const ex = e + VOLE_EXTENTS + x * EXTENT_BYTES;
      const m = <u32>load<u16>(ex);
      if (m >= mediaCount()) continue; // the medium left the topology: the volume goes not ready
      assert(<u64>load<u32>(ex + 4) + <u64>load<u32>(ex + 8) <= <u64>mediumChunks(m), "volume: an extent reaches past its medium");
      markChunks(m, load<u32>(ex + 4), load<u32>(ex + 8), true);
    }
  }
}

export function markChunks(m: u32, first: u32, count: u32, used: bool): void {
  const s = mediumState(m);
  assert(used ? load<u32>(s + MS_FREE) >= count : load<u32>(s + MS_FREE) + count <= load<u32>(s + MS_CHUNKS),
    "volume: extents overlap or free more chunks than a medium has");
  const bitmap: usize = load<u32>(s + MS_BITMAP);
  const chunks = <u64>load<u32>(s + MS_CHUNKS);
  if (used) bitmapSetRange(bitmap, chunks, <u64>first, <u64>count);
  else bitmapClearRange(bitmap, chunks, <u64>first, <u64>count);
  const free = load<u32>(s + MS_FREE);
  store<u32>(s + MS_FREE, used ? free - count : free + count);
}

/** First chunk >= from whose allocation bit equals `used`, or `limit`. */
function nextChunk(bitmap: usize, from: u32, limit: u32, used: bool): u32 {
  const n = used ? bitmapFindNextSet(bitmap, <u64>limit, <u64>from) : bitmapFindNextClear(bitmap, <u64>limit, <u64>from);
  return n < 0 || n >= <i64>limit ? limit : <u32>n;
}

// ---- Lookup -------------------------------------------------------------------------------------

export function volumeInUse(v: u32): bool { return v < MAX_VOLUMES && load<u8>(volumeEntry(v) + VOLE_STATE) != 0; }

/** Volume number by name, or -1. */
export function volumeByName(name: usize): i32 {
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    const e = volumeEntry(v);
    if (load<u8>(e + VOLE_STATE) != 0 && namesEqual(e + VOLE_NAME, name, NAME_BYTES)) return <i32>v;
  }
  return -1;
}

/** The volume mapped at port/LUN, or -1. */
export function volumeAtLun(port: u32, lun: u32): i32 {
  if (lun == 0 || lun >= MAX_LUNS || port >= MAX_PORTS) return -1;
  const v = <i32>load<u16>(lunMapEntry(port, lun)) - 1;
  return v >= 0 && volumeInUse(<u32>v) ? v : -1;
}

export function blockSize(v: u32): u32 { return load<u16>(volumeEntry(v) + VOLE_BLOCK_SIZE); }
export function capacityBlocks(v: u32): u64 { return load<u64>(volumeEntry(v) + VOLE_CAPACITY); }

/**
 * Medium and medium chunk of a volume chunk, packed as medium << 32 | chunk; u64.MAX_VALUE when
 * the chunk lies on a medium that is no longer in the topology; THIN_UNMAPPED for a chunk of a thin
 * volume that has none yet (thin.ts knows the one a dirty slot has been given).
 */
export function chunkToMedium(v: u32, chunk: u32): u64 {
  const e = volumeEntry(v);
  const n = <u32>load<u8>(e + VOLE_EXTENT_COUNT);
  let medium: u32 = 0;
  let mchunk: u32 = 0;
  const placement = <u32>load<u8>(e + VOLE_PLACEMENT);
  if (placement == PLACE_THIN) {
    const t = thinEntry(v, chunk);
    if (t == 0) return THIN_UNMAPPED;
    medium = thinEntryMedium(t);
    mchunk = thinEntryChunk(t);
  } else if (placement == PLACE_STRIPED) {
    const ex = e + VOLE_EXTENTS + (chunk % n) * EXTENT_BYTES;
    medium = load<u16>(ex);
    mchunk = load<u32>(ex + 4) + chunk / n;
  } else {
    let c = chunk;
    let x: u32 = 0;
    for (; x < n; x++) {
      const ex = e + VOLE_EXTENTS + x * EXTENT_BYTES;
      const len = load<u32>(ex + 8);
      if (c < len) { medium = load<u16>(ex); mchunk = load<u32>(ex + 4) + c; break; }
      c -= len;
    }
    if (x == n) return u64.MAX_VALUE;
  }
  if (medium >= mediaCount()) return u64.MAX_VALUE;
  return (<u64>medium << 32) | <u64>mchunk;
}

/** Extents of volume v; each is a run of chunks on one medium. */
export function volumeExtents(v: u32): u32 { return <u32>load<u8>(volumeEntry(v) + VOLE_EXTENT_COUNT); }
export function volumeExtentMedium(v: u32, x: u32): u32 { return <u32>load<u16>(volumeEntry(v) + VOLE_EXTENTS + x * EXTENT_BYTES); }
export function volumeExtentFirst(v: u32, x: u32): u32 { return load<u32>(volumeEntry(v) + VOLE_EXTENTS + x * EXTENT_BYTES + 4); }
export function volumeExtentChunks(v: u32, x: u32): u32 { return load<u32>(volumeEntry(v) + VOLE_EXTENTS + x * EXTENT_BYTES + 8); }

/** True when every medium under the volume is present, alive and known to be the array's own. */
export function volumeReady(v: u32): bool { return volumeNotReady(v) == MEDS_OK; }

/**
 * MEDS_OK, or why the volume is not ready: the worst state among its media (MEDS_LOST before
 * MEDS_DEAD before MEDS_BECOMING_READY; a medium no longer in the topology counts as dead).
 */
export function volumeNotReady(v: u32): u32 {
  const e = volumeEntry(v);
  const n = volumeMediaHeld(v);
  let worst = MEDS_OK;
  for (let x: u32 = 0; x < n; x++) {
    const m = volumeMediumHeld(v, x);
    const st = m >= mediaCount() ? MEDS_DEAD : load<u32>(mediumState(m) + MS_STATE);
    if (st == MEDS_LOST) return MEDS_LOST;
    if (st == MEDS_DEAD || (st != MEDS_OK && worst == MEDS_OK)) worst = st;
  }
  return worst;
}

/** Sets medium m's state, mirrored in the map (MMED_STATE) for the harness. */
export function setMediumState(m: u32, st: u32): void {
  store<u32>(mediumState(m) + MS_STATE, st);
  store<u32>(MAP_ADDR + MAP_MEDIA_TABLE + m * MAP_MEDIUM_BYTES + MMED_STATE, st);
}

/** Does any volume have an extent on medium m (or, thin, take its chunks from it)? */
export function mediumHasVolumes(m: u32): bool {
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) {
    if (!volumeInUse(v)) continue;
    const n = volumeMediaHeld(v);
    for (let x: u32 = 0; x < n; x++) if (volumeMediumHeld(v, x) == m) return true;
  }
  return false;
}

/** How many media a volume's blocks may lie on: its extents, or a thin volume's listed media. */
function volumeMediaHeld(v: u32): u32 {
  const e = volumeEntry(v);
  return volumeThin(v) ? <u32>load<u8>(e + VOLE_MEDIA_COUNT) : <u32>load<u8>(e + VOLE_EXTENT_COUNT);
}

function volumeMediumHeld(v: u32, x: u32): u32 {
  const e = volumeEntry(v);
  return volumeThin(v) ? <u32>load<u8>(e + VOLE_MEDIA + x) : <u32>load<u16>(e + VOLE_EXTENTS + x * EXTENT_BYTES);
}

export function volumeThin(v: u32): bool { return <u32>load<u8>(volumeEntry(v) + VOLE_PLACEMENT) == PLACE_THIN; }

// ---- Thin volumes: chunks as writes reach them ------------------------------------------------------

/**
 * A free chunk for thin volume v's chunk `chunk`, taken (marked in its medium's bitmap): on medium
 * list[chunk % n] when it has one (striped, as a striped volume's chunks), else on the next listed
 * medium that does. The thin map entry for it, or 0 when none of the volume's media has a chunk free.
 */
export function thinChunkTake(v: u32, chunk: u32): u32 {
  const e = volumeEntry(v);
  const n = <u32>load<u8>(e + VOLE_MEDIA_COUNT);
  for (let k: u32 = 0; k < n; k++) {
    const m = <u32>load<u8>(e + VOLE_MEDIA + (chunk + k) % n);
    if (m >= mediaCount()) continue;
    const s = mediumState(m);
    if (load<u32>(s + MS_FREE) == 0) continue;
    const limit = min<u32>(load<u32>(s + MS_CHUNKS), THIN_MAX_CHUNK + 1);
    const bitmap: usize = load<u32>(s + MS_BITMAP);
    let c = nextChunk(bitmap, load<u32>(s + MS_THIN_NEXT), limit, false);
    if (c >= limit) c = nextChunk(bitmap, 1, limit, false); // round again from the first chunk after the label
    if (c >= limit) continue;
    markChunks(m, c, 1, true);
    store<u32>(s + MS_THIN_NEXT, c + 1);
    return thinEntryPack(m, c);
  }
  return 0;
}

/** Is medium m's chunk c taken (a thick volume's extent, a thin volume's chunk, the label)? */
export function chunkTaken(m: u32, c: u32): bool {
  const s = mediumState(m);
  return c >= load<u32>(s + MS_CHUNKS) || bitmapFindNextSet(load<u32>(s + MS_BITMAP), <u64>load<u32>(s + MS_CHUNKS), <u64>c) == <i64>c;
}

/** Gives a chunk a thin volume held (or was given for a write) back to its medium. */
export function thinChunkRelease(t: u32): void {
  const m = thinEntryMedium(t);
  if (m < mediaCount()) markChunks(m, thinEntryChunk(t), 1, false);
}

/** Chunks free on thin volume v's media. */
export function thinPoolFree(v: u32): u64 {
  const e = volumeEntry(v);
  let free: u64 = 0;
  for (let k: u32 = 0; k < <u32>load<u8>(e + VOLE_MEDIA_COUNT); k++) {
    const m = <u32>load<u8>(e + VOLE_MEDIA + k);
    if (m < mediaCount()) free += <u64>load<u32>(mediumState(m) + MS_FREE);
  }
  return free;
}

// ---- Create and delete ------------------------------------------------------------------------

/**
 * Creates a volume. `media` lists `mediaN` medium indexes (0: all media in order).
 * `wanted` is the volume number, or 0xFFFF for the lowest free one. Returns VE_* and, on success,
 * stores the new number at `outNumber`.
 */
export function volumeCreate(
  wanted: u32, blockBytes: u32, placement: u32, media: usize, mediaN: u32,
  capacity: u64, name: usize, outNumber: usize,
): u32 {
  const check = checkCreate(wanted, blockBytes, placement, media, mediaN, capacity, name);
  if (check != VE_OK) return check;
  const v = wanted != 0xFFFF ? wanted : lowestFreeVolume();
  if (v < 0) return VE_TABLE_FULL;
  const e = volumeEntry(<u32>v);
  memory.fill(e, 0, VOL_BYTES);
  const bytes = capacity * <u64>blockBytes;
  const chunks = <u32>((bytes + (1 << SLOT_SHIFT) - 1) >> SLOT_SHIFT);
  const list = e + VOLE_MEDIA;
  const count = mediaN == 0 ? mediaCount() : mediaN;
  for (let i: u32 = 0; i < count; i++) store<u8>(list + i, mediaN == 0 ? <u8>i : load<u8>(media + i));
  if (placement == PLACE_THIN) {
    // A run of the thin map's records, one per 16 chunks; no chunk until a write reaches one.
    const first = thinRecordsTake(thinRecordsFor(chunks));
    if (first < 0) { memory.fill(e, 0, VOL_BYTES); return VE_THIN_MAP_FULL; }
    store<u32>(e + VOLE_THIN_FIRST, <u32>first);
    store<u32>(e + VOLE_THIN_RECORDS, thinRecordsFor(chunks));
  } else {
    const ok = placement == PLACE_STRIPED ? allocateStriped(e, list, count, chunks) : allocateLinear(e, list, count, chunks);
    if (!ok) { memory.fill(e, 0, VOL_BYTES); return VE_NO_SPACE; }
  }
  store<u8>(e + VOLE_PLACEMENT, <u8>placement);
  store<u16>(e + VOLE_BLOCK_SIZE, <u16>blockBytes);
  store<u8>(e + VOLE_MEDIA_COUNT, <u8>count);
  store<u64>(e + VOLE_CAPACITY, capacity);
  store<u32>(e + VOLE_CHUNKS, chunks);
  store<u32>(e + VOLE_ID, <u32>prngNext() | 1);
  for (let i: u32 = 0; i < NAME_BYTES - 1; i++) {
    const c = load<u8>(name + i);
    store<u8>(e + VOLE_NAME + i, c);
    if (c == 0) break;
  }
  store<u8>(e + VOLE_STATE, 1);
  sealVolume(<u32>v);
  store<u32>(outNumber, <u32>v);
  return VE_OK;
}

function checkCreate(
  wanted: u32, blockBytes: u32, placement: u32, media: usize, mediaN: u32, capacity: u64, name: usize,
): u32 {
  if (!validName(name)) return VE_BAD_NAME;
  if (volumeByName(name) >= 0) return VE_NAME_EXISTS;
  if (blockBytes != 512 && blockBytes != 4096) return VE_BAD_BLOCK_SIZE;
  if (placement > PLACE_THIN) return VE_BAD_PLACEMENT;
  // At most 2^48 bytes less 16 chunks: the chunk count is a u32, and a striped volume rounds it up
  // to a multiple of up to MAX_EXTENTS media without passing 2^32.
  if (capacity == 0 || capacity > ((<u64>1 << 48) - (<u64>16 << SLOT_SHIFT)) / <u64>blockBytes) return VE_BAD_CAPACITY;
  if (wanted != 0xFFFF && wanted >= MAX_VOLUMES) return VE_NUMBER_IN_USE;
  if (wanted != 0xFFFF && volumeInUse(wanted)) return VE_NUMBER_IN_USE;
  if (mediaN > 16) return VE_NO_MEDIUM;
  for (let i: u32 = 0; i < mediaN; i++) {
    const m = <u32>load<u8>(media + i);
    if (m >= mediaCount()) return VE_NO_MEDIUM;
    for (let j: u32 = 0; j < i; j++) if (<u32>load<u8>(media + j) == m) return VE_NO_MEDIUM;
  }
  if (placement == PLACE_STRIPED && (mediaN == 0 ? mediaCount() : mediaN) > MAX_EXTENTS) return VE_BAD_PLACEMENT;
  return VE_OK;
}

/** 1–31 printable ASCII characters, NUL terminated within 32 bytes, not all digits (hosts read a number as a LUN). */
function validName(name: usize): bool {
  let n: u32 = 0;
  let digits: u32 = 0;
  for (; n < NAME_BYTES; n++) {
    const c = load<u8>(name + n);
    if (c == 0) break;
    if (c < 0x21 || c > 0x7E) return false;
    if (c >= 0x30 && c <= 0x39) digits++;
  }
  return n > 0 && n < NAME_BYTES && digits < n;
}

function lowestFreeVolume(): i32 {
  for (let v: u32 = 0; v < MAX_VOLUMES; v++) if (!volumeInUse(v)) return <i32>v;
  return -1;
}

function addExtent(e: usize, m: u32, first: u32, chunks: u32): bool {
  const n = <u32>load<u8>(e + VOLE_EXTENT_COUNT);
  if (n >= MAX_EXTENTS) return false;
  const ex = e + VOLE_EXTENTS + n * EXTENT_BYTES;
  store<u16>(ex, <u16>m);
  store<u32>(ex + 4, first);
  store<u32>(ex + 8, chunks);
  store<u8>(e + VOLE_EXTENT_COUNT, <u8>(n + 1));
  markChunks(m, first, chunks, true);
  return true;
}

function releaseExtents(e: usize): void {
  const n = <u32>load<u8>(e + VOLE_EXTENT_COUNT);
  for (let x: u32 = 0; x < n; x++) {
    const ex = e + VOLE_EXTENTS + x * EXTENT_BYTES;
    const m = <u32>load<u16>(ex);
    if (m < mediaCount()) markChunks(m, load<u32>(ex + 4), load<u32>(ex + 8), false);
  }
  store<u8>(e + VOLE_EXTENT_COUNT, 0);
}

/** One extent after another, first fit, on the listed media in order. */
function allocateLinear(e: usize, list: usize, count: u32, chunks: u32): bool {
  let need = chunks;
  for (let i: u32 = 0; i < count && need > 0; i++) {
    const m = <u32>load<u8>(list + i);
    const s = mediumState(m);
    const limit = load<u32>(s + MS_CHUNKS);
    const bitmap: usize = load<u32>(s + MS_BITMAP);
    let c: u32 = 0;
    while (need > 0) {
      const start = nextChunk(bitmap, c, limit, false);
      if (start >= limit) break;
      const end = nextChunk(bitmap, start, limit, true);
      const take = min<u32>(end - start, need);
      if (!addExtent(e, m, start, take)) { releaseExtents(e); return false; }
      need -= take;
      c = start + take;
    }
  }
  if (need > 0) { releaseExtents(e); return false; }
  return true;
}

/** One contiguous extent per listed medium, chunk c on extent c % count (64 KiB stripe unit). */
function allocateStriped(e: usize, list: usize, count: u32, chunks: u32): bool {
  const per = (chunks + count - 1) / count;
  for (let i: u32 = 0; i < count; i++) {
    const m = <u32>load<u8>(list + i);
    const s = mediumState(m);
    const limit = load<u32>(s + MS_CHUNKS);
    const bitmap: usize = load<u32>(s + MS_BITMAP);
    let c: u32 = 0;
    let placed = false;
    while (c < limit) {
      const start = nextChunk(bitmap, c, limit, false);
      if (start >= limit) break;
      const end = nextChunk(bitmap, start, limit, true);
      if (end - start >= per) { placed = addExtent(e, m, start, per); break; }
      c = end;
    }
    if (!placed) { releaseExtents(e); return false; }
  }
  return true;
}

/** Deletes volume v: frees its space; with `force` unmaps it everywhere first. */
export function volumeDelete(v: u32, force: bool): u32 {
  if (!volumeInUse(v)) return VE_NO_VOLUME;
  if (volumeMapped(v)) {
    if (!force) return VE_MAPPED;
    unmapEverywhere(v);
  }
  const e = volumeEntry(v);
  // A thin volume's chunks and records go back only once its entry is out of the NV file
  // (scsi/mgmt.ts, thin.ts thinRecordsGiveBack), so the file never names a chunk another volume wrote.
  if (!volumeThin(v)) releaseExtents(e);
  memory.fill(e, 0, VOL_BYTES);
  return VE_OK;
}

export function volumeMapped(v: u32): bool {
  for (let p: u32 = 0; p < MAX_PORTS; p++) {
    for (let l: u32 = 1; l < MAX_LUNS; l++) if (<u32>load<u16>(lunMapEntry(p, l)) == v + 1) return true;
  }
  return false;
}

function unmapEverywhere(v: u32): void {
  for (let p: u32 = 0; p < MAX_PORTS; p++) {
    for (let l: u32 = 1; l < MAX_LUNS; l++) {
      const m = lunMapEntry(p, l);
      if (<u32>load<u16>(m) == v + 1) { store<u16>(m, 0); sealLun(p, l); }
    }
  }
}

// ---- LUN map ------------------------------------------------------------------------------------

export function lunMap(v: u32, port: u32, lun: u32, ports: u32): u32 {
  if (!volumeInUse(v)) return VE_NO_VOLUME;
  if (lun == 0 || lun >= MAX_LUNS) return VE_BAD_LUN;
  if (port != 0xFF && port >= ports) return VE_NO_PORT;
  const first: u32 = port == 0xFF ? 0 : port;
  const last = port == 0xFF ? ports : port + 1;
  for (let p = first; p < last; p++) {
    const cur = <u32>load<u16>(lunMapEntry(p, lun));
    if (cur != 0 && cur != v + 1) return VE_LUN_MAPPED;
  }
  for (let p = first; p < last; p++) { store<u16>(lunMapEntry(p, lun), <u16>(v + 1)); sealLun(p, lun); }
  return VE_OK;
}

export function lunUnmap(v: u32, port: u32, lun: u32, ports: u32): u32 {
  if (!volumeInUse(v)) return VE_NO_VOLUME;
  if (lun == 0 || lun >= MAX_LUNS) return VE_BAD_LUN;
  if (port != 0xFF && port >= ports) return VE_NO_PORT;
  const first: u32 = port == 0xFF ? 0 : port;
  const last = port == 0xFF ? ports : port + 1;
  let found = false;
  for (let p = first; p < last; p++) {
    const m = lunMapEntry(p, lun);
    if (<u32>load<u16>(m) == v + 1) { store<u16>(m, 0); sealLun(p, lun); found = true; }
  }
  return found ? VE_OK : VE_NOT_MAPPED;
}

