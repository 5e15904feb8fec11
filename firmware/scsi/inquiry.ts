// INQUIRY (SPC-4 6.6): standard data and the vital product data pages 00h, 80h, 83h, B0h, B1h, B2h.
// Document 002: INQUIRY answers the array's device ID; here as a target-device designator on every
// LUN, and as the command device's own logical-unit designator.
import { CONFIG_ADDR, CFG_VENDOR, CFG_PRODUCT, CFG_REVISION, CFG_SERIAL, CFG_DEVICE_ID, SLOT_BYTES } from "../abi";
import { CX_PORT } from "../ctx";
import { fail, dataInBuffer, sendBuffer } from "../sequencer";
import { blockSize } from "../volume";
import { getBe16, putBe16, putBe32, putBe64, putHex } from "../util";
import { maxCompareBlocks, maxWriteSameBlocks, prefetchMaxBlocks } from "./sbc";
import { provisioningLimits, logicalBlockProvisioning } from "./thin";
import { cdb, invalidField, MAX_TRANSFER_BYTES } from "./dispatch";

const TYPE_DISK: u32 = 0x00;
const TYPE_ARRAY_CONTROLLER: u32 = 0x0C;
const TYPE_NONE: u32 = 0x7F; // peripheral qualifier 011b: no logical unit here

/** `volume` is -1 for LUN 0 (command device) and -2 for a LUN with nothing mapped. */
export function inquiry(c: usize, volume: i32): void {
  const p = cdb(c);
  const evpd = (load<u8>(p + 1) & 1) != 0;
  const page = <u32>load<u8>(p + 2);
  const alloc = getBe16(p + 3);
  if ((load<u8>(p + 1) & 0xFE) != 0) { invalidField(c, 1, 1); return; }
  if (!evpd && page != 0) { invalidField(c, 2, -1); return; }
  const lun0 = volume == -1;
  const type = lun0 ? TYPE_ARRAY_CONTROLLER : volume < 0 ? TYPE_NONE : TYPE_DISK;
  if (evpd && type == TYPE_NONE) { fail(c, 0x05, 0x25, 0x00); return; }
  const d = dataInBuffer(c, 256);
  if (d == 0) return;
  let n: u32 = 0;
  if (!evpd) n = standard(d, type);
  else if (page == 0x00) n = supportedPages(d, type);
  else if (page == 0x80) n = unitSerial(d, type, volume);
  else if (page == 0x83) n = deviceIdentification(d, type, volume, <u32>load<u8>(c + CX_PORT));
  else if (page == 0xB0 && type == TYPE_DISK) n = blockLimits(d, <u32>volume);
  else if (page == 0xB1 && type == TYPE_DISK) n = blockCharacteristics(d);
  else if (page == 0xB2 && type == TYPE_DISK) n = logicalBlockProvisioning(d, <u32>volume);
  else { invalidField(c, 2, -1); return; }
  sendBuffer(c, min<u32>(n, alloc));
}

function standard(d: usize, type: u32): u32 {
  store<u8>(d, <u8>type);
  store<u8>(d + 2, 0x06); // SPC-4
  store<u8>(d + 3, 0x12); // HISUP, response data format 2
  store<u8>(d + 4, 91);
  store<u8>(d + 7, 0x02); // CMDQUE
  memory.copy(d + 8, CONFIG_ADDR + CFG_VENDOR, 8);
  memory.copy(d + 16, CONFIG_ADDR + CFG_PRODUCT, 16);
  memory.copy(d + 32, CONFIG_ADDR + CFG_REVISION, 4);
  putBe16(d + 58, 0x00A0); // SAM-5
  putBe16(d + 60, 0x0460); // SPC-4
  putBe16(d + 62, type == TYPE_DISK ? 0x04C0 : 0x0000); // SBC-3
  return 96;
}

function supportedPages(d: usize, type: u32): u32 {
  store<u8>(d, <u8>type);
  const pages: u32 = type == TYPE_DISK ? 6 : 3;
  store<u8>(d + 3, <u8>pages);
  store<u8>(d + 4, 0x00);
  store<u8>(d + 5, 0x80);
  store<u8>(d + 6, 0x83);
  if (type == TYPE_DISK) {
    store<u8>(d + 7, 0xB0);
    store<u8>(d + 8, 0xB1);
    store<u8>(d + 9, 0xB2);
  }
  return 4 + pages;
}

/** The array serial (trailing spaces dropped), and for a volume "-" and its number in hex. */
function serialText(dst: usize, volume: i32): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < 20; i++) {
    const ch = load<u8>(CONFIG_ADDR + CFG_SERIAL + i);
    if (ch == 0 || ch == 0x20) break;
    store<u8>(dst + n, ch);
    n++;
  }
  if (volume >= 0) {
    store<u8>(dst + n, 0x2D);
    putHex(dst + n + 1, <u32>volume, 4);
    n += 5;
  }
  return n;
}

function unitSerial(d: usize, type: u32, volume: i32): u32 {
  store<u8>(d, <u8>type);
  store<u8>(d + 1, 0x80);
  const n = serialText(d + 4, volume);
  store<u8>(d + 3, <u8>n);
  return 4 + n;
}

function deviceIdentification(d: usize, type: u32, volume: i32, port: u32): u32 {
  store<u8>(d, <u8>type);
  store<u8>(d + 1, 0x83);
  let p = d + 4;
  // Logical unit, NAA: the array's device ID; a volume's carries its number in the last two bytes.
  p = designatorHeader(p, 0x01, 0x03, 16);
  memory.copy(p, CONFIG_ADDR + CFG_DEVICE_ID, 16);
  if (volume >= 0) putBe16(p + 14, <u32>volume + 1);
  p += 16;
  // Logical unit, T10 vendor ID: vendor + serial text.
  const text = p + 4;
  memory.copy(text, CONFIG_ADDR + CFG_VENDOR, 8);
  const n = 8 + serialText(text + 8, volume);
  p = designatorHeader(p, 0x02, 0x01, n) + n;
  // Target port: relative port identifier.
  p = designatorHeader(p, 0x01, 0x94, 4);
  putBe32(p, port + 1);
  p += 4;
  // Target device: the array's device ID (document 002).
  p = designatorHeader(p, 0x01, 0xA3, 16);
  memory.copy(p, CONFIG_ADDR + CFG_DEVICE_ID, 16);
  p += 16;
  const length = <u32>(p - d);
  putBe16(d + 2, length - 4);
  return length;
}

function designatorHeader(p: usize, codeSet: u32, typeByte: u32, length: u32): usize {
  store<u8>(p, <u8>codeSet);
  store<u8>(p + 1, <u8>typeByte);
  store<u8>(p + 2, 0);
  store<u8>(p + 3, <u8>length);
  return p + 4;
}

function blockLimits(d: usize, volume: u32): u32 {
  const bs = blockSize(volume);
  store<u8>(d, <u8>TYPE_DISK);
  store<u8>(d + 1, 0xB0);
  putBe16(d + 2, 0x3C);
  store<u8>(d + 5, <u8>maxCompareBlocks(bs)); // maximum COMPARE AND WRITE length
  putBe16(d + 6, SLOT_BYTES / bs); // optimal transfer length granularity: one cache slot
  putBe32(d + 8, MAX_TRANSFER_BYTES / bs); // maximum transfer length
  putBe32(d + 12, (1 << 20) / bs); // optimal transfer length
  putBe32(d + 16, prefetchMaxBlocks(bs)); // maximum PRE-FETCH length
  provisioningLimits(d, volume);
  putBe64(d + 36, <u64>maxWriteSameBlocks(bs)); // maximum WRITE SAME length
  return 64;
}

/** Block Device Characteristics (B1h): solid state (a cache in front of every medium), no form factor. */
function blockCharacteristics(d: usize): u32 {
  store<u8>(d, <u8>TYPE_DISK);
  store<u8>(d + 1, 0xB1);
  putBe16(d + 2, 0x3C);
  putBe16(d + 4, 0x0001); // MEDIUM ROTATION RATE: non-rotating
  return 64;
}
