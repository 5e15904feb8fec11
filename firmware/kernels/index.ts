// The standalone kernels image (build/kernels.wasm): the kernels of firmware/kernels as exports,
// for lib/kernels.ts (tests, harness, host). The controller image imports the same modules
// directly. Every function is pure over pointers into the imported (shared) memory; see each
// module's header for its model and docs/kernels.md for the API and error codes.

export { crc32c } from './crc32c';
export { xorBlocks } from './xor';
export { gfMul, gfInv } from './gf256';
export { rsEncode, rsReconstruct, raid6Gen, raid6Reconstruct, gfMatrixApply } from './rs';
export {
  bitmapSetRange, bitmapClearRange, bitmapAtomicSetRange, bitmapAtomicClearRange,
  bitmapAtomicSet, bitmapAtomicClear, bitmapTest, bitmapFindNextSet, bitmapFindNextClear,
  bitmapAnySet, bitmapAllSet, bitmapCount, bitmapNextRun, bitmapCollectRuns,
  bitmapOr, bitmapAnd, bitmapAndNot,
} from './bitmap';

// The end of the image's static data: lib/kernels.ts allocates its arena above it.
export function staticEnd(): usize {
  return __heap_base;
}
