// Medium labels (docs/hal.md, "Medium labels"): the array writes a label in sector 0 of every
// medium (chunk 0 is reserved for array metadata) and records it in NV. At boot the disk IOP reads
// every label before the volumes on that medium become ready: a medium that comes back blank (a
// RAM disk after a restart, a deleted image file) or with another array's label (a replaced
// image) has lost what the array wrote, so its volumes answer NOT READY, MEDIUM FORMAT CORRUPTED
// instead of serving zeros for data once acknowledged, until REINITIALIZE MEDIUM accepts the loss.
import { mediumSectors } from "./config";
import { labelCopy, nvHeader, NVH_ARRAY_ID, seal, sealed, blank, nvPersistRange, LABEL_BYTES } from "./nv";
import { mediumHasVolumes } from "./volume";

// The record in NV (copy 0 of the medium's label slot).
const LR_STATE: u32 = 0; // u32: 1 when the medium carries the array's label
const LR_MEDIUM: u32 = 4; // u32: medium index
const LR_GEN: u32 = 8; // u32: label generation: bumped each time the array (re)writes the label
const LR_SECTORS: u32 = 16; // u64
const LR_ARRAY_ID: u32 = 24; // u64: NVH_ARRAY_ID of the image that wrote it
const LR_CRC: u32 = 60;

// The label on the medium: sector 0.
export const LABEL_MAGIC: u32 = 0x424c4253; // "SBLB"
const ML_MAGIC: u32 = 0;
const ML_VERSION: u32 = 4; // u32: 1
const ML_ARRAY_ID: u32 = 8; // u64
const ML_MEDIUM: u32 = 16; // u32
const ML_GEN: u32 = 20; // u32
const ML_SECTORS: u32 = 24; // u64
const ML_CRC: u32 = 508;

export const LV_MATCH: u32 = 1; // the medium is the one NV knows
export const LV_CLAIM: u32 = 2; // NV has no label for it and no volume lives on it: label it now
export const LV_LOST: u32 = 3; // blank, damaged, another array's or an older one: its contents are not ours

/** The verdict on medium m whose sector 0 was read into buf. */
export function labelVerdict(m: u32, buf: usize): u32 {
  const r = labelCopy(m, 0);
  if (blank(r, LABEL_BYTES)) return mediumHasVolumes(m) ? LV_LOST : LV_CLAIM;
  if (!sealed(r, LR_CRC) || load<u32>(r + LR_STATE) != 1) return LV_LOST;
  if (load<u32>(buf + ML_MAGIC) != LABEL_MAGIC || !sealed(buf, ML_CRC)) return LV_LOST;
  if (load<u64>(buf + ML_ARRAY_ID) != load<u64>(r + LR_ARRAY_ID) || load<u32>(buf + ML_MEDIUM) != m) return LV_LOST;
  if (load<u32>(buf + ML_GEN) != load<u32>(r + LR_GEN)) return LV_LOST;
  return LV_MATCH;
}

/** The label generation NV records for medium m (0: none). */
export function labelGeneration(m: u32): u32 {
  const r = labelCopy(m, 0);
  return sealed(r, LR_CRC) && load<u32>(r + LR_STATE) == 1 ? load<u32>(r + LR_GEN) : 0;
}

/** Builds the label of generation `gen` for medium m in buf (512 bytes). */
export function labelBuild(m: u32, gen: u32, buf: usize): void {
  memory.fill(buf, 0, 512);
  store<u32>(buf + ML_MAGIC, LABEL_MAGIC);
  store<u32>(buf + ML_VERSION, 1);
  store<u64>(buf + ML_ARRAY_ID, load<u64>(nvHeader() + NVH_ARRAY_ID));
  store<u32>(buf + ML_MEDIUM, m);
  store<u32>(buf + ML_GEN, gen);
  store<u64>(buf + ML_SECTORS, mediumSectors(m));
  seal(buf, ML_CRC);
}

/** Records (and persists: 1 NV entry) that medium m carries the label of generation `gen`. */
export function labelRecord(m: u32, gen: u32, id: u32): bool {
  const r = labelCopy(m, 0);
  memory.fill(r, 0, LABEL_BYTES);
  store<u32>(r + LR_STATE, 1);
  store<u32>(r + LR_MEDIUM, m);
  store<u32>(r + LR_GEN, gen);
  store<u64>(r + LR_SECTORS, mediumSectors(m));
  store<u64>(r + LR_ARRAY_ID, load<u64>(nvHeader() + NVH_ARRAY_ID));
  seal(r, LR_CRC);
  return nvPersistRange(r, LABEL_BYTES, id);
}
