// The library's medium changer (SMC-3): its inventory is the element table the binding's robot and
// barcode reader keep in common memory; a MOVE MEDIUM is one request to the binding, after the
// firmware has checked the elements and taken the drives it touches (no drive command is in flight
// while the robot takes or puts a cartridge). Element addresses: docs/tape.md.
import {
  TEL_ADDRESS, TEL_TYPE, TEL_FULL, TEL_SOURCE, TEL_VOLTAG, TEL_VOLTAG_BYTES, ELT_TRANSPORT, ELT_STORAGE,
  ELT_IE, ELT_DRIVE, ELEM_TRANSPORT, ELEM_IE_BASE, ELEM_DRIVE_BASE, ELEM_SLOT_BASE, TOP_MOVE, TOP_INVENTORY, TCQ_STATUS,
  TST_OK, TST_SOURCE_EMPTY, TST_DEST_FULL, TST_BAD_ELEMENT, TST_OFFLINE, TST_IO_ERROR,
} from "../abi";
import { fail, good, dataInBuffer, sendBuffer } from "../sequencer";
import { getBe16, putBe16, putBe32 } from "../util";
import { cdb, invalidField, invalidOpcode } from "../scsi/dispatch";
import {
  elementCount, elementAt, elementByAddress, tapeDriveAtElement, tapeState, tapeSlots, tapeIe, tapeDrives,
  TDS_PREVENT,
} from "./device";
import { tapeBegin, TX_MORE, TX_MORE2 } from "./command";

const OP_TEST_UNIT_READY: u32 = 0x00;
const OP_INITIALIZE_ELEMENT_STATUS: u32 = 0x07;
const OP_MODE_SENSE6: u32 = 0x1A;
const OP_MODE_SENSE10: u32 = 0x5A;
const OP_MOVE_MEDIUM: u32 = 0xA5;
const OP_READ_ELEMENT_STATUS: u32 = 0xB8;

export function changerCommand(c: usize, dev: u32, op: u32): void {
  switch (op) {
    case OP_TEST_UNIT_READY: good(c); return;
    case OP_INITIALIZE_ELEMENT_STATUS: tapeBegin(c, dev, TOP_INVENTORY, 0, 0, 0, 0); return;
    case OP_MOVE_MEDIUM: moveMedium(c, dev); return;
    case OP_READ_ELEMENT_STATUS: readElementStatus(c); return;
    case OP_MODE_SENSE6: case OP_MODE_SENSE10: modeSense(c, op == OP_MODE_SENSE10); return;
    default: invalidOpcode(c);
  }
}

// ---- MOVE MEDIUM ------------------------------------------------------------------------------------

function moveMedium(c: usize, dev: u32): void {
  const p = cdb(c);
  const transport = getBe16(p + 2);
  const source = getBe16(p + 4);
  const dest = getBe16(p + 6);
  if ((load<u8>(p + 10) & 1) != 0) { invalidField(c, 10, 0); return; } // INVERT: single-sided cartridges
  if (transport != ELEM_TRANSPORT) { fail(c, 0x05, 0x21, 0x01); return; } // INVALID ELEMENT ADDRESS
  const s = elementByAddress(source);
  const d = elementByAddress(dest);
  if (s == 0 || d == 0 || load<u8>(s + TEL_TYPE) == <u8>ELT_TRANSPORT || load<u8>(d + TEL_TYPE) == <u8>ELT_TRANSPORT) {
    fail(c, 0x05, 0x21, 0x01);
    return;
  }
  if (load<u8>(s + TEL_FULL) == 0) { fail(c, 0x05, 0x3B, 0x0E); return; } // MEDIUM SOURCE ELEMENT EMPTY
  if (source != dest && load<u8>(d + TEL_FULL) != 0) { fail(c, 0x05, 0x3B, 0x0D); return; } // MEDIUM DESTINATION ELEMENT FULL
  const from = tapeDriveAtElement(source);
  const to = tapeDriveAtElement(dest);
  if (from >= 0 && load<u32>(tapeState(<u32>from) + TDS_PREVENT) != 0) { fail(c, 0x05, 0x53, 0x02); return; } // MEDIUM REMOVAL PREVENTED
  if (source == dest) { good(c); return; }
  store<u32>(c + TX_MORE, from >= 0 ? <u32>from + 1 : 0);
  store<u32>(c + TX_MORE2, to >= 0 ? <u32>to + 1 : 0);
  tapeBegin(c, dev, TOP_MOVE, 0, 0, source, dest);
}

/** The binding moved (or could not move) the cartridge. */
export function changerDone(c: usize, dev: u32, e: usize): void {
  const status = <u32>load<u16>(e + TCQ_STATUS);
  if (status == TST_OK) good(c);
  else if (status == TST_SOURCE_EMPTY) fail(c, 0x05, 0x3B, 0x0E);
  else if (status == TST_DEST_FULL) fail(c, 0x05, 0x3B, 0x0D);
  else if (status == TST_BAD_ELEMENT) fail(c, 0x05, 0x21, 0x01);
  else if (status == TST_OFFLINE) fail(c, 0x02, 0x04, 0x12); // a drive the move needs is offline
  else if (status == TST_IO_ERROR) fail(c, 0x04, 0x44, 0x00);
  else fail(c, 0x04, 0x15, 0x01); // MECHANICAL POSITIONING ERROR
}

// ---- READ ELEMENT STATUS ---------------------------------------------------------------------------------

const DESC_BYTES: u32 = 12;

function readElementStatus(c: usize): void {
  const p = cdb(c);
  const voltag = (load<u8>(p + 1) & 0x10) != 0;
  const type = <u32>load<u8>(p + 1) & 0x0F;
  const start = getBe16(p + 2);
  const wanted = getBe16(p + 4);
  const alloc = (<u32>load<u8>(p + 7) << 16) | getBe16(p + 8);
  if (type > ELT_DRIVE) { invalidField(c, 1, 3); return; }
  if ((load<u8>(p + 6) & 0x01) != 0) { invalidField(c, 6, 0); return; } // DVCID: no device identifiers in descriptors
  const descBytes = DESC_BYTES + (voltag ? 36 : 0);
  const d = dataInBuffer(c, 8 + 4 * 8 + elementCount() * descBytes);
  if (d == 0) return;
  let n: u32 = 8;
  let reported: u32 = 0;
  let first: u32 = 0xFFFF;
  for (let t: u32 = ELT_TRANSPORT; t <= ELT_DRIVE; t++) {
    if (type != 0 && t != type) continue;
    const page = d + n;
    let k: u32 = 0;
    for (let i: u32 = 0; i < elementCount() && reported + k < wanted; i++) {
      const el = elementAt(i);
      const address = <u32>load<u16>(el + TEL_ADDRESS);
      if (<u32>load<u8>(el + TEL_TYPE) != t || address < start) continue;
      if (first == 0xFFFF) first = address;
      descriptor(page + 8 + k * descBytes, el, t, voltag);
      k++;
    }
    if (k == 0) continue;
    store<u8>(page, <u8>t);
    store<u8>(page + 1, voltag ? 0x80 : 0x00); // PVolTag
    putBe16(page + 2, descBytes);
    putBe32(page + 4, k * descBytes); // byte 4 reserved, bytes 5-7 the count: k * 48 stays below 2^24
    n += 8 + k * descBytes;
    reported += k;
  }
  if (reported == 0 && wanted > 0 && elementByAddress(start) == 0 && start > maxAddress()) { fail(c, 0x05, 0x21, 0x01); return; }
  putBe16(d, first == 0xFFFF ? start : first);
  putBe16(d + 2, reported);
  putBe32(d + 4, n - 8);
  sendBuffer(c, min<u32>(n, alloc));
}

function maxAddress(): u32 { return ELEM_SLOT_BASE + tapeSlots() - 1; }

function descriptor(q: usize, el: usize, type: u32, voltag: bool): void {
  const full = load<u8>(el + TEL_FULL) != 0;
  const source = <u32>load<u16>(el + TEL_SOURCE);
  memory.fill(q, 0, DESC_BYTES + (voltag ? 36 : 0));
  putBe16(q, load<u16>(el + TEL_ADDRESS));
  let flags: u32 = full ? 0x01 : 0x00;
  if (type == ELT_IE) flags |= 0x02 | 0x08 | 0x10 | 0x20; // ImpExp, Access, ExEnab, InEnab
  else if (type != ELT_TRANSPORT) flags |= 0x08; // Access: the robot reaches it
  store<u8>(q + 2, <u8>flags);
  if (full && source != 0xFFFF) { store<u8>(q + 9, 0x80); putBe16(q + 10, source); } // SValid
  if (voltag) {
    memory.fill(q + DESC_BYTES, 0x20, TEL_VOLTAG_BYTES);
    if (full) memory.copy(q + DESC_BYTES, el + TEL_VOLTAG, TEL_VOLTAG_BYTES);
  }
}

// ---- MODE SENSE: element address assignment (1Dh), device capabilities (1Fh) ---------------------------

function modeSense(c: usize, ten: bool): void {
  const p = cdb(c);
  const pc = <u32>load<u8>(p + 2) >> 6;
  const page = <u32>load<u8>(p + 2) & 0x3F;
  if (pc == 3) { fail(c, 0x05, 0x39, 0x00); return; }
  if (page != 0x1D && page != 0x1F && page != 0x3F) { invalidField(c, 2, 5); return; }
  const d = dataInBuffer(c, 64);
  if (d == 0) return;
  let n: u32 = ten ? 8 : 4; // no block descriptor on a changer
  if (page == 0x1D || page == 0x3F) {
    memory.fill(d + n, 0, 20);
    store<u8>(d + n, 0x1D);
    store<u8>(d + n + 1, 0x12);
    if (pc != 1) {
      putBe16(d + n + 2, ELEM_TRANSPORT); putBe16(d + n + 4, 1);
      putBe16(d + n + 6, ELEM_SLOT_BASE); putBe16(d + n + 8, tapeSlots());
      putBe16(d + n + 10, ELEM_IE_BASE); putBe16(d + n + 12, tapeIe());
      putBe16(d + n + 14, ELEM_DRIVE_BASE); putBe16(d + n + 16, tapeDrives());
    }
    n += 20;
  }
  if (page == 0x1F || page == 0x3F) {
    memory.fill(d + n, 0, 20);
    store<u8>(d + n, 0x1F);
    store<u8>(d + n + 1, 0x12);
    if (pc != 1) {
      store<u8>(d + n + 2, 0x0E); // StorI/E, StorST, StorDT
      for (let k: u32 = 4; k < 8; k++) store<u8>(d + n + k, 0x0E); // from MT, ST, I/E, DT to ST, I/E, DT
    }
    n += 20;
  }
  if (ten) putBe16(d, n - 2); else store<u8>(d, <u8>(n - 1));
  sendBuffer(c, min<u32>(n, ten ? getBe16(p + 7) : <u32>load<u8>(p + 4)));
}
