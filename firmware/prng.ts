// The channel IOP's pseudo-random numbers (xoroshiro128+), for what a peer must not predict: CHAP
// challenges and identifiers. Seeded at boot from the entropy the harness puts in the config block
// (CFG_ENTROPY: random bytes in real-time mode, derived from the run's seed in deterministic mode,
// so a seed still names a run) and the IOP's index, so two IOPs never share a sequence.
import { CONFIG_ADDR, CFG_ENTROPY } from "./abi";
import { gIndex, gPrivate } from "./iop";
import { CP_PRNG } from "./ctx";

// @ts-ignore: decorator
@inline function splitmix(x: u64): u64 {
  let z = x + 0x9E3779B97F4A7C15;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

export function prngSeed(): void {
  const a = load<u64>(CONFIG_ADDR + CFG_ENTROPY);
  const b = load<u64>(CONFIG_ADDR + CFG_ENTROPY + 8);
  const s0 = splitmix(a ^ (<u64>gIndex << 56));
  let s1 = splitmix(b ^ s0);
  if ((s0 | s1) == 0) s1 = 1; // the all-zero state never leaves zero
  store<u64>(gPrivate + CP_PRNG, s0);
  store<u64>(gPrivate + CP_PRNG + 8, s1);
}

export function prngNext(): u64 {
  const s0 = load<u64>(gPrivate + CP_PRNG);
  let s1 = load<u64>(gPrivate + CP_PRNG + 8);
  const result = s0 + s1;
  s1 ^= s0;
  store<u64>(gPrivate + CP_PRNG, rotl<u64>(s0, 24) ^ s1 ^ (s1 << 16));
  store<u64>(gPrivate + CP_PRNG + 8, rotl<u64>(s1, 37));
  return result;
}

/** Fills n bytes at dst. */
export function prngFill(dst: usize, n: u32): void {
  let i: u32 = 0;
  while (i < n) {
    const r = prngNext();
    const k = min<u32>(8, n - i);
    for (let j: u32 = 0; j < k; j++) store<u8>(dst + i + j, <u8>(r >> (j * 8)));
    i += k;
  }
}
