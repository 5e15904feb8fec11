// Read-only views of the config block the harness writes before layout() (CFG_* in abi.ts).
import {
  CONFIG_ADDR, CFG_IOP_TABLE, CFG_IOP_BYTES, CIOP_ROLE, CFG_MEDIA_TABLE, CFG_MEDIUM_BYTES,
  CFG_PORT_TABLE, CFG_PORT_BYTES, CFG_IOP_COUNT, CFG_MEDIA_COUNT, CFG_PORT_COUNT, CMED_SECTORS_LO,
} from "./abi";

// @ts-ignore: decorator
@inline export function cfg32(offset: u32): u32 { return load<u32>(CONFIG_ADDR + offset); }
// @ts-ignore: decorator
@inline export function iopCount(): u32 { return cfg32(CFG_IOP_COUNT); }
// @ts-ignore: decorator
@inline export function mediaCount(): u32 { return cfg32(CFG_MEDIA_COUNT); }
// @ts-ignore: decorator
@inline export function portCount(): u32 { return cfg32(CFG_PORT_COUNT); }

// @ts-ignore: decorator
@inline export function cfgIop(i: u32): usize { return CONFIG_ADDR + CFG_IOP_TABLE + i * CFG_IOP_BYTES; }
// @ts-ignore: decorator
@inline export function cfgMedium(m: u32): usize { return CONFIG_ADDR + CFG_MEDIA_TABLE + m * CFG_MEDIUM_BYTES; }
// @ts-ignore: decorator
@inline export function cfgPort(p: u32): usize { return CONFIG_ADDR + CFG_PORT_TABLE + p * CFG_PORT_BYTES; }

// @ts-ignore: decorator
@inline export function iopRole(i: u32): u32 { return load<u8>(cfgIop(i) + CIOP_ROLE); }

/** Medium size in 512-byte sectors. */
// @ts-ignore: decorator
@inline export function mediumSectors(m: u32): u64 { return load<u64>(cfgMedium(m) + CMED_SECTORS_LO); }
