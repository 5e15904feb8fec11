// Messages between IOPs through common memory (document 001: "the I/O processor 501 issues a
// command to the processor 508"). One SPSC ring each way between every channel IOP and the disk IOP.
import { MIOP_TO_DISK } from "./abi";
import { ringReserve, ringPublish } from "./ring";
import { gIndex, iopEntry } from "./iop";

export const MB_BYTES: u32 = 32;
export const MB_TYPE: u32 = 0; // u8
export const MB_FIRST: u32 = 2; // u16: first sector in the slot
export const MB_COUNT: u32 = 4; // u16: sectors
export const MB_SLOT: u32 = 8; // u32
export const MB_SEQ: u32 = 16; // u64

export const MB_STAGE: u32 = 1; // stage sectors [first, first + count) of a slot
export const MB_FLUSH: u32 = 2; // destage everything dirtied at or before seq
export const MB_RELABEL: u32 = 3; // slot: a medium whose loss REINITIALIZE MEDIUM accepted

export const MAILBOX_ENTRIES: u32 = 1024;

/** Posts a message to the disk IOP; false when the mailbox is full (try again next poll). */
export function postToDisk(type: u32, slot: u32, first: u32, count: u32, seq: u64): bool {
  const mb: usize = load<u32>(iopEntry(gIndex) + MIOP_TO_DISK);
  const m = ringReserve(mb);
  if (m == 0) return false;
  store<u8>(m + MB_TYPE, <u8>type);
  store<u16>(m + MB_FIRST, <u16>first);
  store<u16>(m + MB_COUNT, <u16>count);
  store<u32>(m + MB_SLOT, slot);
  store<u64>(m + MB_SEQ, seq);
  ringPublish(mb, 1);
  return true;
}

