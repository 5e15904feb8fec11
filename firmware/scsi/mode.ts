// MODE SENSE (6), (10) and MODE SELECT (6), (10) (SPC-5 6.14-6.17): the caching page (08h) and the
// control page (0Ah), with current, changeable, default and saved values. One field is changeable:
// the caching page's WCE. WCE=1 (the default) is the array's write-back cache: a WRITE is GOOD once
// its data is in the non-volatile cache. WCE=0 makes the volume write-through: every write waits,
// as with FUA, until its blocks are on the medium and the medium has flushed them. A MODE SELECT
// with SP=1 saves the page in NV (it is the current value again after a restart); every change
// gives the other I_T nexuses of the volume a unit attention, MODE PARAMETERS CHANGED.
import { CX_FLAGS, CX_EXPECTED, CX_PORT, CX_SESSION, CX_ID, CXF_PARAM, ctxField } from "../ctx";
import {
  fail, good, dataInBuffer, sendBuffer, startDataOut, parameterList, waitPersisted, nvPending, nvRefuse, retryLater,
} from "../sequencer";
import { nvDegraded, nvRoom, nvId, nvPersistRange, nvReservations, PR_TABLE_BYTES, NVK_CONTEXT } from "../nv";
import { capacityBlocks, blockSize } from "../volume";
import { getBe16, putBe16, putBe64 } from "../util";
import { cdb, invalidField } from "./dispatch";
import { scratch } from "../channel";
import { modeFlags, setModeFlags, MODE_WCD } from "./pr";
import { uaAllNexuses, UA_MODE_CHANGED } from "./ua";

const PC_CURRENT: u32 = 0;
const PC_CHANGEABLE: u32 = 1;
const PC_DEFAULT: u32 = 2;
const PC_SAVED: u32 = 3;
const CACHING_BYTES: u32 = 20;
const CONTROL_BYTES: u32 = 12;

/** Is volume v write-through (caching page WCE=0)? */
export function writeThrough(v: u32): bool { return (modeFlags(v, false) & MODE_WCD) != 0; }

// ---- MODE SENSE ---------------------------------------------------------------------------------

export function modeSense(c: usize, v: u32, ten: bool): void {
  const p = cdb(c);
  const dbd = (load<u8>(p + 1) & 0x08) != 0;
  const llbaa = ten && (load<u8>(p + 1) & 0x10) != 0;
  const pc = <u32>load<u8>(p + 2) >> 6;
  const page = <u32>load<u8>(p + 2) & 0x3F;
  const subpage = <u32>load<u8>(p + 3);
  const alloc = ten ? getBe16(p + 7) : <u32>load<u8>(p + 4);
  if ((load<u8>(p + 1) & (ten ? 0xE7 : 0xF7)) != 0) { invalidField(c, 1, -1); return; }
  if (page != 0x08 && page != 0x0A && page != 0x3F) { invalidField(c, 2, 5); return; }
  if (subpage != 0 && !(page == 0x3F && subpage == 0xFF)) { invalidField(c, 3, -1); return; }
  const d = dataInBuffer(c, 256);
  if (d == 0) return;
  const header: u32 = ten ? 8 : 4;
  let n = header;
  store<u8>(d + (ten ? 3 : 2), 0x10); // device-specific parameter: DPOFUA
  if (!dbd) {
    const descriptor: u32 = llbaa ? 16 : 8;
    if (ten) { store<u8>(d + 4, llbaa ? 1 : 0); putBe16(d + 6, descriptor); } else store<u8>(d + 3, <u8>descriptor);
    blockDescriptor(d + n, v, llbaa);
    n += descriptor;
  }
  if (page == 0x08 || page == 0x3F) n += cachingPage(d + n, v, pc);
  if (page == 0x0A || page == 0x3F) n += controlPage(d + n, pc);
  if (ten) putBe16(d, n - 2); else store<u8>(d, <u8>(n - 1));
  sendBuffer(c, min<u32>(n, alloc));
}

function blockDescriptor(d: usize, v: u32, long: bool): void {
  const blocks = capacityBlocks(v);
  const bs = blockSize(v);
  if (long) {
    putBe64(d, blocks);
    store<u8>(d + 14, <u8>(bs >> 8));
    store<u8>(d + 15, <u8>bs);
    return;
  }
  const n = blocks > 0xFFFFFF ? 0xFFFFFF : <u32>blocks;
  store<u8>(d + 1, <u8>(n >> 16));
  store<u8>(d + 2, <u8>(n >> 8));
  store<u8>(d + 3, <u8>n);
  store<u8>(d + 5, <u8>(bs >> 16));
  store<u8>(d + 6, <u8>(bs >> 8));
  store<u8>(d + 7, <u8>bs);
}

/** The caching page as page control `pc` shows it: WCE from the volume's flags, RCD=0. PS=1: savable. */
function cachingPage(d: usize, v: u32, pc: u32): u32 {
  memory.fill(d, 0, CACHING_BYTES);
  store<u8>(d, 0x88);
  store<u8>(d + 1, CACHING_BYTES - 2);
  let wce = true;
  if (pc == PC_CURRENT) wce = !writeThrough(v);
  else if (pc == PC_SAVED) wce = (modeFlags(v, true) & MODE_WCD) == 0;
  if (pc == PC_CHANGEABLE || wce) store<u8>(d + 2, 0x04); // WCE (changeable: the mask of what may change)
  return CACHING_BYTES;
}

/** The control page: TST=000b, queue algorithm modifier 1 (unrestricted reordering), nothing changeable. */
function controlPage(d: usize, pc: u32): u32 {
  memory.fill(d, 0, CONTROL_BYTES);
  store<u8>(d, 0x0A);
  store<u8>(d + 1, CONTROL_BYTES - 2);
  if (pc != PC_CHANGEABLE) {
    store<u8>(d + 3, 0x10);
    putBe16(d + 8, 0xFFFF); // busy timeout period: unlimited
  }
  return CONTROL_BYTES;
}

// ---- MODE SELECT ----------------------------------------------------------------------------------

/**
 * MODE SELECT (6), (10): PF=1 only. The parameter list's header and block descriptor must say what
 * MODE SENSE says (a capacity of 0 is the current one); each page must be whole and differ from the
 * current values only where MODE SENSE's changeable values allow (WCE); else INVALID FIELD IN
 * PARAMETER LIST with the field pointer on the first differing byte.
 */
export function modeSelect(c: usize, v: u32, ten: bool): void {
  const p = cdb(c);
  if ((load<u32>(c + CX_FLAGS) & CXF_PARAM) == 0) {
    if ((load<u8>(p + 1) & 0x10) == 0) { invalidField(c, 1, 4); return; } // PF=0: vendor page format, none
    if ((load<u8>(p + 1) & 0xEE) != 0) { invalidField(c, 1, -1); return; }
    const length = ten ? getBe16(p + 7) : <u32>load<u8>(p + 4);
    if (length == 0) { good(c); return; }
    if (length > 512) { invalidField(c, ten ? 7 : 4, -1); return; }
    if (load<u32>(c + CX_EXPECTED) < length) { fail(c, 0x05, 0x0E, 0x03); return; }
    if (nvDegraded()) { nvRefuse(c); return; }
    startDataOut(c, length);
    return;
  }
  const list = parameterList(c);
  if (list == 0) return;
  if (!nvRoom(1)) { retryLater(c); return; }
  const length = ten ? getBe16(p + 7) : <u32>load<u8>(p + 4);
  const save = (load<u8>(p + 1) & 0x01) != 0;
  const header: u32 = ten ? 8 : 4;
  if (length < header) { fail(c, 0x05, 0x1A, 0x00); return; }
  const descriptors = ten ? getBe16(list + 6) : <u32>load<u8>(list + 3);
  if ((ten ? getBe16(list) : <u32>load<u8>(list)) != 0) { listField(c, 0); return; } // mode data length: reserved here
  if (load<u8>(list + (ten ? 2 : 1)) != 0) { listField(c, ten ? 2 : 1); return; } // medium type
  if (descriptors != 0 && (descriptors != 8 || (ten && (load<u8>(list + 4) & 1) != 0))) { listField(c, ten ? 6 : 3); return; }
  let at = header;
  if (descriptors == 8) {
    if (length < at + 8) { fail(c, 0x05, 0x1A, 0x00); return; }
    if (!descriptorMatches(c, list + at, v, at)) return;
    at += 8;
  }
  let wcd = modeFlags(v, false) & MODE_WCD;
  while (at < length) {
    if (length - at < 2) { fail(c, 0x05, 0x1A, 0x00); return; }
    const code = <u32>load<u8>(list + at) & 0x3F;
    const pageBytes = <u32>load<u8>(list + at + 1) + 2;
    if ((load<u8>(list + at) & 0x40) != 0) { listField(c, at); return; } // SPF: no subpages here
    if (length - at < pageBytes) { fail(c, 0x05, 0x1A, 0x00); return; }
    const now = scratch() + 3072; // the page as it is now, to compare with

    let want: u32 = 0;
    let mask: u32 = 0;
    if (code == 0x08) { want = cachingPage(now, v, PC_CURRENT); mask = 0x04; }
    else if (code == 0x0A) want = controlPage(now, PC_CURRENT);
    else { listField(c, at); return; }
    if (pageBytes != want) { listField(c, at + 1); return; }
    for (let i: u32 = 2; i < want; i++) {
      const m: u32 = i == 2 ? mask : 0;
      if (((<u32>load<u8>(list + at + i) ^ <u32>load<u8>(now + i)) & ~m & 0xFF) != 0) { listField(c, at + i); return; }
    }
    if (code == 0x08) wcd = (load<u8>(list + at + 2) & 0x04) != 0 ? 0 : MODE_WCD;
    at += pageBytes;
  }
  const before = modeFlags(v, false);
  const saved = save ? (modeFlags(v, true) & ~MODE_WCD) | wcd : modeFlags(v, true);
  setModeFlags(v, (before & ~MODE_WCD) | wcd, saved);
  if (((before ^ wcd) & MODE_WCD) != 0) {
    uaAllNexuses(v, UA_MODE_CHANGED, <u32>load<u8>(c + CX_PORT), <u32>load<u8>(c + CX_SESSION));
  }
  // The current value is kept in NV too, beside the saved one: one record, one write, before GOOD.
  nvPersistRange(nvReservations(), PR_TABLE_BYTES, nvId(NVK_CONTEXT, load<u32>(c + CX_ID)));
  nvPending(c, 1);
  waitPersisted(c);
}

function listField(c: usize, at: u32): void {
  fail(c, 0x05, 0x26, 0x00);
  ctxField(c, false, at, -1);
}

/** A block descriptor in MODE SELECT: the volume's block count (or 0) and block size, nothing else. */
function descriptorMatches(c: usize, d: usize, v: u32, at: u32): bool {
  const blocks = (<u32>load<u8>(d + 1) << 16) | (<u32>load<u8>(d + 2) << 8) | <u32>load<u8>(d + 3);
  const capacity = capacityBlocks(v);
  const shown = capacity > 0xFFFFFF ? 0xFFFFFF : <u32>capacity;
  if (load<u8>(d) != 0 || (blocks != 0 && blocks != shown)) { listField(c, at); return false; }
  const bs = (<u32>load<u8>(d + 5) << 16) | (<u32>load<u8>(d + 6) << 8) | <u32>load<u8>(d + 7);
  if (bs != blockSize(v)) { listField(c, at + 5); return false; }
  return true;
}
