// Result codes of the kernels (firmware/kernels/*), shared by the firmware and lib/kernels.ts.
//
// Like firmware/abi.ts this file holds only integer constants, so asc compiles it into the
// firmware and TypeScript imports it unchanged. A kernel never traps on bad input: it returns
// one of these negative codes (as i32, or as i64 from the functions that return a bit position
// or a count) and leaves every buffer untouched.

export const KERR_OK = 0;
export const KERR_BOUNDS = -1; // a buffer [ptr, ptr + bytes) reaches past the end of the memory, or an output lies over the static data
export const KERR_ALIGN = -2; // a bitmap or an out area is not 8-byte aligned (atomics need it)
export const KERR_RANGE = -3; // a bit position or bit range lies beyond the bitmap's nbits
export const KERR_OVERLAP = -4; // an output overlaps an input (or another output) where that is not allowed
export const KERR_K = -5; // data shard count k out of range
export const KERR_M = -6; // parity shard count m out of range
export const KERR_TOO_FEW = -7; // fewer than k shards survive: the data cannot be reconstructed
export const KERR_SHARDS = -8; // a shard mask names a shard >= k + m, or a target that is also a source
export const KERR_COUNT = -9; // a source or row count out of range
export const KERR_SINGULAR = -10; // the survivors' matrix is singular (only a caller-supplied matrix can be)

// Limits.
export const RS_MAX_K = 32; // data shards of a Reed-Solomon code
export const RS_MAX_M = 8; // parity shards of a Reed-Solomon code
export const XOR_MAX_SOURCES = 255;
export const RAID6_MAX_K = 32; // data disks of a P+Q set (reconstruction uses the 32x32 matrix scratch)
export const RS_SCRATCH_BYTES = 4096; // caller-provided scratch of the matrix functions (any alignment)
export const BITMAP_MAX_BITS = 4294967296; // 2^32 regions
export const RUN_BYTES = 16; // one run in an out area: u64 start, u64 length (bits)
