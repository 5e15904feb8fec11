// Logical block provisioning (SBC-4 4.7): what VPD B0h and B2h and READ CAPACITY (16) say of it.
// Volumes are fully provisioned: every chunk is allocated at create, UNMAP is not offered.
import { putBe16 } from "../util";

/** VPD B0h's unmap fields (bytes 20-35): none while volumes are fully provisioned. */
export function provisioningLimits(d: usize, volume: u32): void {}

/** Logical Block Provisioning (B2h): no unmap command (LBPU, LBPWS, LBPWS10 clear), fully provisioned. */
export function logicalBlockProvisioning(d: usize, volume: u32): u32 {
  store<u8>(d, 0x00);
  store<u8>(d + 1, 0xB2);
  putBe16(d + 2, 4);
  return 8;
}
