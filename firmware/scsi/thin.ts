// Logical block provisioning (SBC-4 4.7): what VPD B0h and B2h and READ CAPACITY (16) say of it.
// Volumes are fully provisioned: every chunk is allocated at create, UNMAP is not offered.
import { getBe32, getBe64, putBe16, putBe32, putBe64 } from "../util";
import { fail, dataInBuffer, sendBuffer } from "../sequencer";
import { capacityBlocks } from "../volume";
import { cdb } from "./dispatch";

/** VPD B0h's unmap fields (bytes 20-35): none while volumes are fully provisioned. */
export function provisioningLimits(d: usize, volume: u32): void {}

/** Logical Block Provisioning (B2h): no unmap command (LBPU, LBPWS, LBPWS10 clear), fully provisioned. */
export function logicalBlockProvisioning(d: usize, volume: u32): u32 {
  store<u8>(d, 0x00);
  store<u8>(d + 1, 0xB2);
  putBe16(d + 2, 4);
  return 8;
}

/**
 * GET LBA STATUS (SBC-4 5.8): one descriptor from the LBA asked for to the end of the volume (at
 * most 2^32 - 1 blocks): mapped, as every block of a fully provisioned volume is.
 */
export function getLbaStatus(c: usize, v: u32): void {
  const p = cdb(c);
  const lba = getBe64(p + 2);
  const alloc = getBe32(p + 10);
  const capacity = capacityBlocks(v);
  if (lba >= capacity) { fail(c, 0x05, 0x21, 0x00); return; }
  const d = dataInBuffer(c, 24);
  if (d == 0) return;
  putBe32(d, 20); // parameter data length: the 4 bytes after it and one descriptor
  putBe64(d + 8, lba);
  const n = capacity - lba;
  putBe32(d + 16, n > 0xFFFFFFFF ? 0xFFFFFFFF : <u32>n);
  store<u8>(d + 20, 0); // provisioning status: mapped
  sendBuffer(c, min<u32>(24, alloc));
}
