// The non-volatile region (docs/hal.md, "Non-volatile memory"): what survives a crash of the
// emulator. Version 9 layout, every part 8-byte aligned, offsets recorded in a table directory in
// the header so that later versions can add tables (pairs, bitmaps, reservations) the same way:
//
//   header        2 copies of 2 KiB (the newer valid one counts), directory of tables, CRC-32C
//   volumes       MAX_VOLUMES records of 256 bytes, CRC-32C in the last 4
//   LUN map       MAX_PORTS x MAX_LUNS records of 8 bytes: volume + 1 (u16), CRC-32C
//   labels        MAX_MEDIA records of 64 bytes, 2 copies each: what the array wrote on each medium
//   access list   ACCESS_ENTRIES records of 256 bytes: LUN security by initiator name (comm/access.ts)
//   pairs         MAX_PAIRS records of 128 bytes, 2 copies each, CRC-32C; 3 difference bitmaps per pair
//   reservations  PR_REGISTRATIONS records of 288 bytes, then MAX_VOLUMES of 16, CRC-32C (scsi/pr.ts)
//   thin map      2 copies (halves) of THIN_RECORDS records of 16 volume chunks' medium chunks,
//                 generation, CRC-32C (thinmap.ts); the newer valid copy of a record counts
//   remote pairs  REMOTE_PAIRS_MAX records of 256 bytes (128 to version 8), 2 copies each, CRC-32C (remote/pair.ts)
//   remote diffs  REMOTE_PAIRS_MAX difference bitmaps of REMOTE_DIFF_BYTES, no CRC (remote/async.ts)
//   init map      2 copies (halves) of: per medium in order, records of 512 chunks' "initialized" bits,
//                 generation, CRC-32C (initmap.ts); the newer valid copy of a record counts
//   descriptors   per cache slot 2 copies of 64 bytes (the newer valid one counts), CRC-32C
//   sector CRCs   per cache slot 128 x u32: CRC-32C of each sector's data as last written
//   slot data     per cache slot 64 KiB, 4 KiB aligned; then NV_TAIL_BYTES unused
//
// The tables up to the remote pairs sit at fixed offsets, and so does the init map's start; its size
// follows the media, the cache tables' the cache. The init map comes before the cache tables so
// that a cache resize never moves it: a shrink cut off the end of the file, and a map there was
// lost (version 4 had it last, and boot rebuilt it from the volume table, counting chunks never
// written as written). Adding or removing media moves the cache tables instead, dirty data and
// all (main.ts, moveCacheTables).
//
// Fault model: a write to the NV file may be torn at any byte by a crash (of the emulator or the
// host). Every record carries a CRC-32C, so a torn record is recognised and dropped, never misread.
// Records whose loss would take acknowledged state with them (the header, medium labels, slot
// descriptors, init map records) are written to alternate copies, so a torn write leaves the previous copy whole.
// Slot data is checked sector by sector against the sector CRCs, persisted after the data and
// before the descriptor: a sector that fails was never acknowledged whole and is dropped.
//
// Persisting goes through the array's one NV ring, so the file sees changes in the order they
// were made. A descriptor is persisted as an inline image taken when queued, after the data
// range it describes, so the file never holds a descriptor that claims data it does not hold.
import {
  MAP_ADDR, MAP_NV_ADDR, MAP_NV_SQ, NSQ_ID, NSQ_IOP, NSQ_OP, NSQ_FLAGS, NSQ_ADDR, NSQ_LENGTH, NSQ_INLINE,
  NSQ_INLINE_MAX, NOP_RANGE, NOP_INLINE, MAX_VOLUMES, MAX_PORTS, MAX_LUNS, MAX_MEDIA, SLOT_BYTES, SLOT_SECTORS,
  STAT_NV_WRITES, STAT_NV_ERRORS, REMOTE_PAIRS_MAX, RPR_BYTES,
} from "./abi";
import { ringReserve, ringPublish, ringFree, ringRing, ringTail } from "./ring";
import { gIndex, gStats } from "./iop";
import { statInc, NV_KICK_SLOT } from "./stats";
import { mediaCount, mediumSectors } from "./config";
import { crc32c } from "./comm/crc";
import { log, LOG_ERROR, LOG_INFO } from "./hal";

export const NV_MAGIC: u32 = 0x564e4253; // "SBNV"
// 9: remote pair records of 256 bytes (128 in 8; the table grows) and after them the remote difference
// bitmaps (004; the init map and cache tables move up);
// 8: the remote pair table after the thin map, before the init map; 7: the thin map after the
// reservation table, before the init map; 6: the reservation table before the init map; 5: the init
// map before the cache tables; 4: the init map last, in two copies; 3: the same in one copy
export const NV_VERSION: u32 = 9;
/** The oldest version this firmware reads: version 3 to 8 images are upgraded at boot (initmap.ts, initRelocate; remote/pair.ts, remoteNvUpgrade; remote/async.ts, remoteDiffFormat; main.ts). */
export const NV_VERSION_OLDEST: u32 = 3;

// ---- Header: two copies; the directory of tables ---------------------------------------------
export const NV_HEADER_BYTES: u32 = 4096;
export const HDR_COPY_BYTES: u32 = 2048;
export const NVH_MAGIC: u32 = 0;
export const NVH_VERSION: u32 = 4;
export const NVH_SLOTS: u32 = 8; // cache geometry the descriptors were written for
export const NVH_CLEAN: u32 = 12; // 1: shut down with no dirty slot
export const NVH_BOOTS: u32 = 16; // u64: boot count
export const NVH_SEQ: u32 = 24; // u64: header write sequence; the higher valid copy is current
export const NVH_ARRAY_ID: u32 = 32; // u64: identity of this NV image (format), written in medium labels
export const NVH_TABLE_COUNT: u32 = 40; // u32
export const NVH_TABLES: u32 = 64; // NV_MAX_TABLES entries of NVT_BYTES
export const NV_MAX_TABLES: u32 = 16;
export const NVT_BYTES: u32 = 16;
export const NVT_ID: u32 = 0; // u16, NVT_*
export const NVT_VERSION: u32 = 2; // u16: the table's record format
export const NVT_OFFSET: u32 = 4; // u32: from the region's start
export const NVT_SIZE: u32 = 8; // u32: bytes
export const NVT_RECORD: u32 = 12; // u32: record bytes
export const NVH_CRC: u32 = HDR_COPY_BYTES - 4;

export const NVT_VOLUMES: u32 = 1;
export const NVT_LUNS: u32 = 2;
export const NVT_LABELS: u32 = 3;
export const NVT_INIT: u32 = 4;
export const NVT_DESCRIPTORS: u32 = 5;
export const NVT_SECTOR_CRCS: u32 = 6;
export const NVT_DATA: u32 = 7;
export const NVT_ACCESS: u32 = 8;
export const NVT_PAIRS: u32 = 9;
export const NVT_RESERVATIONS: u32 = 10;
export const NVT_THIN: u32 = 11;
export const NVT_REMOTE: u32 = 12;
export const NVT_REMOTE_DIFF: u32 = 13;
const TABLES: u32 = 13;

// ---- Fixed tables ------------------------------------------------------------------------------
export const VOL_BYTES: u32 = 256;
export const VOL_CRC: u32 = 252; // CRC-32C of the entry's first 252 bytes
export const VOL_TABLE_OFFSET: u32 = NV_HEADER_BYTES;
export const LUN_RECORD_BYTES: u32 = 8; // u16 volume + 1, u16 reserved, u32 CRC-32C of the first 4 bytes
export const LUN_MAP_OFFSET: u32 = VOL_TABLE_OFFSET + MAX_VOLUMES * VOL_BYTES;
export const LUN_MAP_BYTES: u32 = MAX_PORTS * MAX_LUNS * LUN_RECORD_BYTES;
export const LABEL_BYTES: u32 = 64; // one copy; 2 copies per medium
export const LABEL_OFFSET: u32 = LUN_MAP_OFFSET + LUN_MAP_BYTES;
export const LABELS_BYTES: u32 = MAX_MEDIA * 2 * LABEL_BYTES;
export const ACCESS_ENTRIES: u32 = 256;
export const ACCESS_RECORD_BYTES: u32 = 256;
export const ACCESS_CRC: u32 = 252; // CRC-32C of the record's first 252 bytes
export const ACCESS_OFFSET: u32 = LABEL_OFFSET + LABELS_BYTES;
export const ACCESS_BYTES: u32 = ACCESS_ENTRIES * ACCESS_RECORD_BYTES;
// Volume pairs (pair/table.ts): MAX_PAIRS records of PAIR_RECORD_BYTES, 2 copies each, then for each
// pair its three difference bitmaps of PAIR_BITMAP_BYTES. A fixed size, so the tables after it stay put.
export const MAX_PAIRS: u32 = 16;
export const PAIR_RECORD_BYTES: u32 = 128;
export const PAIR_BITMAPS: u32 = 3;
export const PAIR_BITMAP_BYTES: u32 = 16384; // 131072 tracks: 8 GiB of volume at 64 KiB tracks
export const PAIR_OFFSET: u32 = ACCESS_OFFSET + ACCESS_BYTES;
export const PAIR_BITMAPS_OFFSET: u32 = PAIR_OFFSET + MAX_PAIRS * 2 * PAIR_RECORD_BYTES;
export const PAIRS_BYTES: u32 = MAX_PAIRS * 2 * PAIR_RECORD_BYTES + MAX_PAIRS * PAIR_BITMAPS * PAIR_BITMAP_BYTES;
// Persistent reservations (scsi/pr.ts): the registrations, then one record per volume. A fixed size
// at a fixed place, so a cache or media resize never moves it (APTPL state survives any geometry).
export const PR_REGISTRATIONS: u32 = 64; // registrations of the whole array (each I_T nexus, each volume)
export const PR_REG_BYTES: u32 = 288; // scsi/pr.ts; CRC-32C of the first 284 bytes at 284
export const PR_VOL_BYTES: u32 = 16; // scsi/pr.ts; CRC-32C of the first 12 bytes at 12
export const PR_TABLE_BYTES: u32 = PR_REGISTRATIONS * PR_REG_BYTES + MAX_VOLUMES * PR_VOL_BYTES;
export const PR_OFFSET: u32 = PAIR_OFFSET + PAIRS_BYTES;
// The thin map (thinmap.ts): THIN_RECORDS records of 16 volume chunks' medium chunks, in two copies
// (halves), each with a generation and a CRC-32C (twocopy.ts). Thin volumes take runs of records.
export const THIN_RECORDS: u32 = 8192; // 131072 chunks: 8 GiB of thin volumes at 64 KiB chunks
export const THIN_RECORD_BYTES: u32 = 72; // one copy: 16 x u32 entries, u32 CRC-32C, u32 generation
export const THIN_RECORD_CHUNKS: u32 = 16;
export const THIN_OFFSET: u32 = PR_OFFSET + PR_TABLE_BYTES;
export const THIN_MAP_BYTES: u32 = THIN_RECORDS * THIN_RECORD_BYTES * 2;
// Remote pairs (remote/pair.ts): REMOTE_PAIRS_MAX records of RPR_BYTES, 2 copies each, as local pairs.
export const REMOTE_NV_OFFSET: u32 = THIN_OFFSET + THIN_MAP_BYTES;
export const REMOTE_NV_BYTES: u32 = REMOTE_PAIRS_MAX * 2 * RPR_BYTES;
// Remote difference bitmaps (remote/async.ts): one per remote pair, a bit per track the secondary may lack.
export const REMOTE_DIFF_BYTES: u32 = 2048; // 16384 tracks
export const REMOTE_DIFF_OFFSET: u32 = REMOTE_NV_OFFSET + REMOTE_NV_BYTES;
export const REMOTE_DIFFS_BYTES: u32 = REMOTE_PAIRS_MAX * REMOTE_DIFF_BYTES;
/** Where the init map starts: after the fixed tables, before the cache tables (version 5; after the reservations since 6, the thin map since 7, the remote pairs since 8, grown in 9 and followed by their difference bitmaps). */
export const INIT_OFFSET: u32 = REMOTE_DIFF_OFFSET + REMOTE_DIFFS_BYTES;
export const INIT_RECORD_BYTES: u32 = 72; // one copy: 64 bytes of bits (512 chunks), u32 CRC-32C, u32 generation
export const INIT_RECORD_CHUNKS: u32 = 512;

// ---- Slot descriptors (2 copies per slot) --------------------------------------------------------
export const DESC_BYTES: u32 = 64; // one copy
export const DESC_STATE: u32 = 0; // u32, DESC_USED or 0
export const DESC_VOLUME: u32 = 4; // u16
export const DESC_SLOT_NO: u32 = 8; // u32: slot number within the volume (volume byte offset >> 16)
export const DESC_GEN: u32 = 12; // u32: record generation; copy = gen & 1, the newer valid copy counts
export const DESC_SEQ: u32 = 16; // u64: write sequence, newest wins on recovery
export const DESC_DIRTY: u32 = 24; // 2 x u64: dirty sectors
export const DESC_POISON: u32 = 40; // 2 x u64: sectors dropped at a recovery (reads fail until written)
export const DESC_CRC: u32 = 60;
export const DESC_USED: u32 = 1;
export const SECTOR_CRC_BYTES: u32 = SLOT_SECTORS * 4; // per slot

/** Firmware-private map fields: where the geometry-dependent tables are (absolute addresses). */
const MAPX_NV_INIT: u32 = 96;
const MAPX_NV_DESC: u32 = 100;
const MAPX_NV_CRCS: u32 = 104;
const MAPX_NV_DATA: u32 = 108;
const MAPX_NV_HDR: u32 = 112; // u32: offset of the current header copy (0 or HDR_COPY_BYTES)
const MAPX_NV_INIT_BYTES: u32 = 116;


/** Init map records for medium m. */
export function initRecords(m: u32): u32 {
  const chunks = <u32>(mediumSectors(m) / SLOT_SECTORS);
  return (chunks + INIT_RECORD_CHUNKS - 1) / INIT_RECORD_CHUNKS;
}

/** Both copies of the init map: each copy holds every medium's records. */
function initBytes(): usize {
  let n: usize = 0;
  for (let m: u32 = 0; m < mediaCount(); m++) n += <usize>initRecords(m) * INIT_RECORD_BYTES;
  return n * 2;
}

/** Where the slot descriptors start: after the init map, whose size follows the media. */
// @ts-ignore: decorator
@inline function descOffset(): usize { return <usize>INIT_OFFSET + initBytes(); }

// @ts-ignore: decorator
@inline function crcsOffset(slots: u32): usize { return descOffset() + <usize>slots * 2 * DESC_BYTES; }

/** Bytes from the NV region's start to the slot data, for a cache of `slots` slots. */
export function nvDataOffset(slots: u32): usize {
  return (crcsOffset(slots) + <usize>slots * SECTOR_CRC_BYTES + 4095) & ~(<usize>4095);
}

/**
 * Unused bytes at the region's end. The region of the same geometry then holds all of a version 3
 * or 4 image, whose init map was last (at most 4 KiB further: the data was aligned from an earlier
 * offset), and of an image with more media, up to this many bytes of init map more (14 GiB of
 * media): its cache tables, dirty data too, are all loaded and move down (main.ts).
 */
export const NV_TAIL_BYTES: u32 = 65536;

export function nvRegionBytes(slots: u32): usize {
  return nvDataOffset(slots) + <usize>slots * SLOT_BYTES + NV_TAIL_BYTES;
}

/** Layout time: records where the geometry-dependent tables are. */
export function nvLayout(base: usize, slots: u32): void {
  store<u32>(MAP_ADDR + MAPX_NV_INIT, <u32>(base + INIT_OFFSET));
  store<u32>(MAP_ADDR + MAPX_NV_INIT_BYTES, <u32>initBytes());
  store<u32>(MAP_ADDR + MAPX_NV_DESC, <u32>(base + descOffset()));
  store<u32>(MAP_ADDR + MAPX_NV_CRCS, <u32>(base + crcsOffset(slots)));
  store<u32>(MAP_ADDR + MAPX_NV_DATA, <u32>(base + nvDataOffset(slots)));
}

// @ts-ignore: decorator
@inline export function nvReservations(): usize { return nvBase() + PR_OFFSET; }
// @ts-ignore: decorator
@inline export function thinMapBase(): usize { return nvBase() + THIN_OFFSET; }

// @ts-ignore: decorator
@inline export function nvBase(): usize { return load<u32>(MAP_ADDR + MAP_NV_ADDR); }
// @ts-ignore: decorator
@inline export function nvSq(): usize { return load<u32>(MAP_ADDR + MAP_NV_SQ); }
// @ts-ignore: decorator
@inline export function volumeEntry(volume: u32): usize { return nvBase() + VOL_TABLE_OFFSET + volume * VOL_BYTES; }
// @ts-ignore: decorator
@inline export function lunMapEntry(port: u32, lun: u32): usize {
  return nvBase() + LUN_MAP_OFFSET + (port * MAX_LUNS + lun) * LUN_RECORD_BYTES;
}
// @ts-ignore: decorator
@inline export function accessEntry(i: u32): usize { return nvBase() + ACCESS_OFFSET + i * ACCESS_RECORD_BYTES; }
// @ts-ignore: decorator
@inline export function labelCopy(m: u32, copy: u32): usize { return nvBase() + LABEL_OFFSET + (m * 2 + copy) * LABEL_BYTES; }
// @ts-ignore: decorator
@inline export function initMapBase(): usize { return load<u32>(MAP_ADDR + MAPX_NV_INIT); }
// @ts-ignore: decorator
@inline export function nvInitBytes(): u32 { return load<u32>(MAP_ADDR + MAPX_NV_INIT_BYTES); }
// @ts-ignore: decorator
@inline export function descCopy(slot: u32, copy: u32): usize {
  return <usize>load<u32>(MAP_ADDR + MAPX_NV_DESC) + (<usize>slot * 2 + copy) * DESC_BYTES;
}
// @ts-ignore: decorator
@inline export function sectorCrcs(slot: u32): usize { return <usize>load<u32>(MAP_ADDR + MAPX_NV_CRCS) + <usize>slot * SECTOR_CRC_BYTES; }
// @ts-ignore: decorator
@inline export function slotDataBase(): usize { return load<u32>(MAP_ADDR + MAPX_NV_DATA); }

// ---- Records: CRC-32C seals -------------------------------------------------------------------

/** Stores the CRC-32C of [p, p + n) at p + n. */
export function seal(p: usize, n: u32): void { store<u32>(p + n, crc32c(p, n, 0)); }
/** The CRC-32C at p + n matches [p, p + n)? */
export function sealed(p: usize, n: u32): bool { return load<u32>(p + n) == crc32c(p, n, 0); }
/** Every byte of [p, p + n) zero (a record never written)? */
export function blank(p: usize, n: u32): bool {
  for (let i: u32 = 0; i < n; i += 4) if (load<u32>(p + i) != 0) return false;
  return true;
}

export function sealVolume(v: u32): void { seal(volumeEntry(v), VOL_CRC); }
export function sealLun(port: u32, lun: u32): void { seal(lunMapEntry(port, lun), 4); }

/** Newer of two generations, by serial-number arithmetic. */
// @ts-ignore: decorator
@inline export function newer(a: u32, b: u32): bool { return <i32>(a - b) > 0; }

/**
 * Loads into dst the newer whole one of a record's two NV copies a and b (`bytes` each, CRC-32C in
 * the last 4, a u32 generation at `genAt`): 1; 0 when both are blank (never written); -1 when
 * neither is whole (torn at its first write: the caller drops it and says so).
 */
export function loadNewerCopy(a: usize, b: usize, bytes: u32, genAt: u32, dst: usize): i32 {
  const va = !blank(a, bytes) && sealed(a, bytes - 4);
  const vb = !blank(b, bytes) && sealed(b, bytes - 4);
  if (!va && !vb) return blank(a, bytes) && blank(b, bytes) ? 0 : -1;
  memory.copy(dst, va && (!vb || !newer(load<u32>(b + genAt), load<u32>(a + genAt))) ? a : b, bytes);
  return 1;
}

// ---- Header -----------------------------------------------------------------------------------

/** The current header copy (after nvHeaderPick or nvFormatHeader). */
// @ts-ignore: decorator
@inline export function nvHeader(): usize { return nvBase() + load<u32>(MAP_ADDR + MAPX_NV_HDR); }

// @ts-ignore: decorator
@inline function versionRead(v: u32): bool { return v >= NV_VERSION_OLDEST && v <= NV_VERSION; }

function headerValid(h: usize): bool {
  return load<u32>(h + NVH_MAGIC) == NV_MAGIC && versionRead(load<u32>(h + NVH_VERSION)) && sealed(h, NVH_CRC);
}

/** Picks the newer valid header copy. False when neither is valid. */
export function nvHeaderPick(): bool {
  const a = nvBase();
  const b = a + HDR_COPY_BYTES;
  const va = headerValid(a);
  const vb = headerValid(b);
  if (!va && !vb) return false;
  const useB = vb && (!va || load<u64>(b + NVH_SEQ) > load<u64>(a + NVH_SEQ));
  store<u32>(MAP_ADDR + MAPX_NV_HDR, useB ? HDR_COPY_BYTES : 0);
  return true;
}

/** What the header area holds when no copy is valid: 0 blank, else the version found (or 0xFFFF: unreadable). */
export function nvHeaderFound(): u32 {
  const a = nvBase();
  if (blank(a, NV_HEADER_BYTES)) return 0;
  for (let copy: u32 = 0; copy < 2; copy++) {
    const h = a + copy * HDR_COPY_BYTES;
    if (load<u32>(h + NVH_MAGIC) == NV_MAGIC && !versionRead(load<u32>(h + NVH_VERSION))) return load<u32>(h + NVH_VERSION);
  }
  return 0xFFFF;
}

/** Writes a fresh header for `slots` slots (format): copy A current, both copies persisted. */
export function nvFormatHeader(slots: u32, arrayId: u64): void {
  const h = nvBase();
  memory.fill(h, 0, NV_HEADER_BYTES);
  store<u32>(h + NVH_MAGIC, NV_MAGIC);
  store<u32>(h + NVH_VERSION, NV_VERSION);
  store<u32>(h + NVH_SLOTS, slots);
  store<u64>(h + NVH_ARRAY_ID, arrayId);
  nvWriteDirectory(h, slots);
  seal(h, NVH_CRC);
  store<u32>(MAP_ADDR + MAPX_NV_HDR, 0);
}

/** Writes the table directory of the current geometry into header h. */
export function nvWriteDirectory(h: usize, slots: u32): void {
  store<u32>(h + NVH_TABLE_COUNT, TABLES);
  const base = <u32>nvBase();
  table(h, 0, NVT_VOLUMES, VOL_TABLE_OFFSET, MAX_VOLUMES * VOL_BYTES, VOL_BYTES);
  table(h, 1, NVT_LUNS, LUN_MAP_OFFSET, LUN_MAP_BYTES, LUN_RECORD_BYTES);
  table(h, 2, NVT_LABELS, LABEL_OFFSET, LABELS_BYTES, LABEL_BYTES);
  table(h, 3, NVT_INIT, load<u32>(MAP_ADDR + MAPX_NV_INIT) - base, load<u32>(MAP_ADDR + MAPX_NV_INIT_BYTES), INIT_RECORD_BYTES);
  table(h, 4, NVT_DESCRIPTORS, load<u32>(MAP_ADDR + MAPX_NV_DESC) - base, slots * 2 * DESC_BYTES, DESC_BYTES);
  table(h, 5, NVT_SECTOR_CRCS, load<u32>(MAP_ADDR + MAPX_NV_CRCS) - base, slots * SECTOR_CRC_BYTES, SECTOR_CRC_BYTES);
  table(h, 6, NVT_DATA, <u32>slotDataBase() - base, slots * SLOT_BYTES, SLOT_BYTES);
  table(h, 7, NVT_ACCESS, ACCESS_OFFSET, ACCESS_BYTES, ACCESS_RECORD_BYTES);
  table(h, 8, NVT_PAIRS, PAIR_OFFSET, PAIRS_BYTES, PAIR_RECORD_BYTES);
  table(h, 9, NVT_RESERVATIONS, PR_OFFSET, PR_TABLE_BYTES, PR_REG_BYTES);
  table(h, 10, NVT_THIN, THIN_OFFSET, THIN_MAP_BYTES, THIN_RECORD_BYTES);
  table(h, 11, NVT_REMOTE, REMOTE_NV_OFFSET, REMOTE_NV_BYTES, RPR_BYTES);
  table(h, 12, NVT_REMOTE_DIFF, REMOTE_DIFF_OFFSET, REMOTE_DIFFS_BYTES, REMOTE_DIFF_BYTES);
}

function table(h: usize, i: u32, id: u32, offset: u32, size: u32, record: u32): void {
  const t = h + NVH_TABLES + i * NVT_BYTES;
  store<u16>(t + NVT_ID, <u16>id);
  store<u16>(t + NVT_VERSION, <u16>NV_VERSION);
  store<u32>(t + NVT_OFFSET, offset);
  store<u32>(t + NVT_SIZE, size);
  store<u32>(t + NVT_RECORD, record);
}

/** The directory entry of table `id` in header h, or 0. */
export function nvTable(h: usize, id: u32): usize {
  const n = min<u32>(load<u32>(h + NVH_TABLE_COUNT), NV_MAX_TABLES);
  for (let i: u32 = 0; i < n; i++) {
    const t = h + NVH_TABLES + i * NVT_BYTES;
    if (<u32>load<u16>(t + NVT_ID) == id) return t;
  }
  return 0;
}

/** Same place and size in both headers? */
export function nvTableSame(a: usize, b: usize, id: u32): bool {
  const x = nvTable(a, id);
  const y = nvTable(b, id);
  return x != 0 && y != 0 && load<u32>(x + NVT_OFFSET) == load<u32>(y + NVT_OFFSET) && load<u32>(x + NVT_SIZE) == load<u32>(y + NVT_SIZE);
}

/**
 * Persists the current header into the other copy (the current one stays whole if the write
 * tears), which then becomes current. Needs 1 free NV entry.
 */
export function nvHeaderPersist(id: u32): bool {
  const cur = nvHeader();
  const off = load<u32>(MAP_ADDR + MAPX_NV_HDR) == 0 ? HDR_COPY_BYTES : 0;
  const next = nvBase() + off;
  if (next != cur) memory.copy(next, cur, HDR_COPY_BYTES);
  store<u64>(next + NVH_SEQ, load<u64>(next + NVH_SEQ) + 1);
  seal(next, NVH_CRC);
  store<u32>(MAP_ADDR + MAPX_NV_HDR, off);
  return nvPersistRange(next, HDR_COPY_BYTES, id);
}

// ---- Queueing persists ------------------------------------------------------------------------

/** Room for n more NV requests? Callers check before a sequence that must not be split. */
// @ts-ignore: decorator
@inline export function nvRoom(n: u32): bool { return ringFree(nvSq()) >= n; }

/** Queues a copy of [addr, addr + length) to the NV file. False when the ring is full. */
export function nvPersistRange(addr: usize, length: u32, id: u32): bool {
  const e = nvEntry(id, NOP_RANGE);
  if (e == 0) return false;
  store<u32>(e + NSQ_ADDR, <u32>addr);
  store<u32>(e + NSQ_LENGTH, length);
  ringPublish(nvSq(), 1);
  statInc(STAT_NV_WRITES);
  return true;
}

/** Queues `length` bytes from `image` to be written where `addr` sits in the NV file. */
export function nvPersistInline(addr: usize, image: usize, length: u32, id: u32): bool {
  if (length > <u32>NSQ_INLINE_MAX) return false;
  const e = nvEntry(id, NOP_INLINE);
  if (e == 0) return false;
  store<u32>(e + NSQ_ADDR, <u32>addr);
  store<u32>(e + NSQ_LENGTH, length);
  memory.copy(e + NSQ_INLINE, image, length);
  ringPublish(nvSq(), 1);
  statInc(STAT_NV_WRITES);
  return true;
}

function nvEntry(id: u32, op: u32): usize {
  const e = ringReserve(nvSq());
  if (e == 0) return 0;
  store<u32>(e + NSQ_ID, id);
  store<u8>(e + NSQ_IOP, <u8>gIndex);
  store<u8>(e + NSQ_OP, <u8>op);
  store<u16>(e + NSQ_FLAGS, 0);
  return e;
}

/** Rings the NV doorbell if this IOP queued anything since it last rang. */
export function nvKick(): void {
  const sq = nvSq();
  const tail = ringTail(sq);
  const p = gStats + (<usize>NV_KICK_SLOT << 3);
  if (<u32>load<u64>(p) == tail) return;
  store<u64>(p, <u64>tail);
  ringRing(sq);
}

// NV request ids: the top 4 bits say what the completion means to the submitting IOP.
export const NVK_NONE: u32 = 0; // nothing waits for it
export const NVK_CONTEXT: u32 = 1; // low 28 bits: command context id
export const NVK_RESYNC: u32 = 2; // the disk IOP's rewrite of the whole region after NV writes failed
export const NVK_LABEL: u32 = 3; // low bits: the medium whose label record this is
export const NVK_PAIR: u32 = 4; // the disk IOP's pair copy: low bits: copy job << 24 | job sequence
export const NVK_XCOPY: u32 = 5; // the disk IOP's copy manager (xcopy/): low bits: copy << 24 | copy sequence
export const NVK_INIT_MARK: u32 = 6; // the init map mark of a chunk's first destage: low bits: the slot
export const NVK_REMOTE: u32 = 7; // a channel IOP's persist of a remote pair's issuing-ID lease: low bits: the pair
// @ts-ignore: decorator
@inline export function nvId(kind: u32, payload: u32): u32 { return (kind << 28) | (payload & 0x0FFFFFFF); }

// ---- NV failure (docs/hal.md, "When the NV file fails") ------------------------------------------
// A completion with an error status means the file may lack that entry: a WRITE waiting for it is
// answered HARDWARE ERROR, and from then on the NV file is "degraded": writes and management changes
// are refused (nothing new can be acknowledged) until the disk IOP has rewritten the whole region
// from memory (NVK_RESYNC) and that rewrite completed. The rewrite is what retires the records the
// failed entries left stale (a slot destaged while its "clean" record failed still reads dirty in
// the file); an acknowledgement before it could be overwritten at recovery by such a record.

/** Firmware-private map fields: errno of the first failure while degraded (0: healthy), failures seen. */
export const MAPX_NV_ERRNO: u32 = 72;
export const MAPX_NV_FAILURES: u32 = 76;

// @ts-ignore: decorator
@inline export function nvDegraded(): bool { return load<u32>(MAP_ADDR + MAPX_NV_ERRNO) != 0; }
export function nvFailures(): u32 { return load<u32>(MAP_ADDR + MAPX_NV_FAILURES); }
export function nvErrno(): u32 { return load<u32>(MAP_ADDR + MAPX_NV_ERRNO); }

/** An NV completion carried an error status. */
export function nvCompletionFailed(errno: u32, id: u32): void {
  statInc(STAT_NV_ERRORS);
  store<u32>(MAP_ADDR + MAPX_NV_FAILURES, nvFailures() + 1);
  if (nvDegraded()) return;
  store<u32>(MAP_ADDR + MAPX_NV_ERRNO, errno == 0 ? 5 : errno);
  log(LOG_ERROR, "nv: a write to the NV file failed (errno, request); writes refused until it is rewritten", errno, id);
}

/** The whole region reached the file after the failures counted up to `failures`. */
export function nvResynced(failures: u32): bool {
  if (!nvDegraded() || nvFailures() != failures) return false;
  store<u32>(MAP_ADDR + MAPX_NV_ERRNO, 0);
  log(LOG_INFO, "nv: the NV file was rewritten whole after failed writes; writes accepted again (failures)", failures, 0);
  return true;
}
