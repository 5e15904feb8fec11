// REPORT LUNS (SPC-4 6.33): LUN 0, the command device, and every LUN with a volume mapped on the
// port the command came through that the initiator's access list lets it see, and the library's
// tape devices it lets it see.
import { MAX_LUNS, MAX_TAPE_DEVICES } from "../abi";
import { tapeDevices, tapeLunEntry } from "../tape/device";
import { CX_PORT, CX_SESSION } from "../ctx";
import { accessOf, tapeAccessOf, ACC_NONE } from "../comm/access";
import { dataInBuffer, sendBuffer } from "../sequencer";
import { volumeAtLun } from "../volume";
import { getBe32, putBe32 } from "../util";
import { cdb, invalidField } from "./dispatch";

export function reportLuns(c: usize): void {
  const p = cdb(c);
  const select = <u32>load<u8>(p + 2);
  const alloc = getBe32(p + 6);
  if (select > 2) { invalidField(c, 2, -1); return; }
  if (alloc < 16) { invalidField(c, 6, -1); return; }
  const d = dataInBuffer(c, 8 + (MAX_LUNS + MAX_TAPE_DEVICES) * 8);
  if (d == 0) return;
  const port = <u32>load<u8>(c + CX_PORT);
  const session = <u32>load<u8>(c + CX_SESSION);
  let n: u32 = 0;
  if (select != 1) {
    for (let lun: u32 = 0; lun < MAX_LUNS; lun++) {
      if (lun != 0) {
        const v = volumeAtLun(port, lun);
        if (v < 0 || accessOf(<u32>v, port, session) == ACC_NONE) continue;
      }
      store<u8>(d + 8 + n * 8 + 1, <u8>lun); // peripheral addressing, bus 0
      n++;
    }
    for (let t: u32 = 0; t < tapeDevices(); t++) { // the library's devices, the same on every port
      if (tapeAccessOf(t, port, session) == ACC_NONE) continue;
      tapeLunEntry(d + 8 + n * 8, t);
      n++;
    }
  }
  putBe32(d, n * 8);
  sendBuffer(c, min<u32>(8 + n * 8, alloc));
}
