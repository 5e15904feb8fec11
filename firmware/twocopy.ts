// Records kept in two copies, one in each half of their NV table, each with a generation and a
// CRC-32C: the init map's (initmap.ts) and the thin map's (thinmap.ts). The copy with the newer
// generation is current; a change is written into the other copy with the next generation, so a
// write torn by a crash leaves the current copy whole. A record is 64 bytes of data, the CRC-32C of
// them, and the generation.
//
// The CRC starts from the generation and the record's place in its table, so that bytes of another
// record (left where a table was before it moved) never pass for this one's. Generation 0 starts
// from 0: a blank first copy is a record never written, and a version 3 init map record (one copy,
// no generation) is a whole first copy.
import { blank, newer } from "./nv";
import { crc32c } from "./comm/crc";

export const COPY_DATA: u32 = 64; // bytes of data per copy
export const COPY_CRC: u32 = 64; // u32: CRC-32C of the data, started from the generation and place
export const COPY_GEN: u32 = 68; // u32: generation; the newer of the two copies is current
export const COPY_BYTES: u32 = 72;

// @ts-ignore: decorator
@inline export function copyGen(p: usize): u32 { return load<u32>(p + COPY_GEN); }

/** The current copy of record r (given by its first copy): the newer generation, the first on a tie. */
// @ts-ignore: decorator
@inline export function copyCurrent(r: usize, half: usize): usize {
  const other = r + half;
  return newer(copyGen(other), copyGen(r)) ? other : r;
}

/** The CRC of copy p of a table whose first copies start at `base`, second copies `half` after. */
export function copyCrc(p: usize, base: usize, half: usize): u32 {
  const g = copyGen(p);
  const place = <u32>(((p - base) % half) / COPY_BYTES);
  return crc32c(p, COPY_DATA, g == 0 ? 0 : g ^ (place * 0x9E3779B1));
}

export function copySeal(p: usize, base: usize, half: usize): void { store<u32>(p + COPY_CRC, copyCrc(p, base, half)); }

/** Is copy p whole? A blank first copy is: the record was never written (generation 0, no data). */
export function copyWhole(p: usize, base: usize, half: usize, first: bool): bool {
  return load<u32>(p + COPY_CRC) == copyCrc(p, base, half) || (first && blank(p, COPY_BYTES));
}

/**
 * Starts record r's next generation in its older copy, from the current copy's data, and returns
 * that copy (current from now on). The caller changes its data, then seals it.
 */
export function copyAdvance(r: usize, half: usize): usize {
  const cur = copyCurrent(r, half);
  const next = cur == r ? r + half : r;
  memory.copy(next, cur, COPY_DATA);
  store<u32>(next + COPY_GEN, copyGen(cur) + 1);
  return next;
}

/**
 * Boot: makes a whole copy of record r current (a copy that is not whole is the older one from then
 * on, in memory: the next change overwrites it). False when neither copy is whole.
 */
export function copyPick(r: usize, base: usize, half: usize): bool {
  const other = r + half;
  const whole0 = copyWhole(r, base, half, true);
  const whole1 = copyWhole(other, base, half, false);
  if (!whole1) store<u32>(other + COPY_GEN, copyGen(r) - 1);
  else if (!whole0) store<u32>(r + COPY_GEN, copyGen(other) - 1);
  return whole0 || whole1;
}
