// MODE SENSE(6) (SPC-4 6.11): the caching page (08h: write-back cache on, read cache on) and the
// control page (0Ah), current, changeable (nothing is) and default values; saved values are not kept.
import { fail, dataInBuffer, sendBuffer } from "../sequencer";
import { capacityBlocks, blockSize } from "../volume";
import { cdb, invalidField } from "./dispatch";

export function modeSense6(c: usize, v: u32): void {
  const p = cdb(c);
  const dbd = (load<u8>(p + 1) & 0x08) != 0;
  const pc = <u32>load<u8>(p + 2) >> 6;
  const page = <u32>load<u8>(p + 2) & 0x3F;
  const subpage = <u32>load<u8>(p + 3);
  if (pc == 3) { fail(c, 0x05, 0x39, 0x00); return; } // SAVING PARAMETERS NOT SUPPORTED
  if (page != 0x08 && page != 0x0A && page != 0x3F) { invalidField(c, 2, 5); return; }
  if (subpage != 0 && !(page == 0x3F && subpage == 0xFF)) { invalidField(c, 3, -1); return; }
  const d = dataInBuffer(c, 256);
  if (d == 0) return;
  let n: u32 = 4;
  store<u8>(d + 2, 0x10); // device-specific parameter: DPOFUA
  if (!dbd) { blockDescriptor(d + 4, v); store<u8>(d + 3, 8); n += 8; }
  const changeable = pc == 1;
  if (page == 0x08 || page == 0x3F) n += cachingPage(d + n, changeable);
  if (page == 0x0A || page == 0x3F) n += controlPage(d + n, changeable);
  store<u8>(d, <u8>(n - 1));
  sendBuffer(c, min<u32>(n, <u32>load<u8>(p + 4)));
}

function blockDescriptor(d: usize, v: u32): void {
  const blocks = capacityBlocks(v);
  const n = blocks > 0xFFFFFF ? 0xFFFFFF : <u32>blocks;
  store<u8>(d + 1, <u8>(n >> 16));
  store<u8>(d + 2, <u8>(n >> 8));
  store<u8>(d + 3, <u8>n);
  const bs = blockSize(v);
  store<u8>(d + 5, <u8>(bs >> 16));
  store<u8>(d + 6, <u8>(bs >> 8));
  store<u8>(d + 7, <u8>bs);
}

function cachingPage(d: usize, changeable: bool): u32 {
  store<u8>(d, 0x08);
  store<u8>(d + 1, 0x12);
  if (!changeable) store<u8>(d + 2, 0x04); // WCE = 1, RCD = 0
  return 20;
}

function controlPage(d: usize, changeable: bool): u32 {
  store<u8>(d, 0x0A);
  store<u8>(d + 1, 0x0A);
  if (!changeable) store<u8>(d + 3, 0x10); // queue algorithm modifier 1: unrestricted reordering
  return 12;
}
