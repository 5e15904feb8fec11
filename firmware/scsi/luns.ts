// REPORT LUNS (SPC-4 6.33): LUN 0, the command device, and every LUN with a volume mapped on the
// port the command came through.
import { MAX_LUNS, MAX_TAPE_DEVICES } from "../abi";
import { tapeReportLuns } from "../tape/device";
import { CX_PORT } from "../ctx";
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
  let n: u32 = 0;
  if (select != 1) {
    for (let lun: u32 = 0; lun < MAX_LUNS; lun++) {
      if (lun != 0 && volumeAtLun(port, lun) < 0) continue;
      store<u8>(d + 8 + n * 8 + 1, <u8>lun); // peripheral addressing, bus 0
      n++;
    }
    n += tapeReportLuns(d + 8 + n * 8); // the library's devices, the same on every port
  }
  putBe32(d, n * 8);
  sendBuffer(c, min<u32>(8 + n * 8, alloc));
}
