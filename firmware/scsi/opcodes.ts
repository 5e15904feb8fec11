// REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-5 6.35,
// 6.36), MAINTENANCE IN service actions 0Ch and 0Dh. The table below is what the dispatch answers:
// each command's opcode, service action, CDB length and CDB usage data (the bits of each CDB byte
// the device server looks at). A test (test/harness/sbc.test.ts) sends every listed command and
// every unlisted opcode, so the table cannot drift from the dispatch.
import { dataInBuffer, sendBuffer } from "../sequencer";
import { getBe16, getBe32, putBe16, putBe32 } from "../util";
import { cdb, invalidField } from "./dispatch";

const ROW_BYTES: u32 = 24;
// A row: applies-to (1: volumes, 2: the command device), service action valid (0/1), service
// action (big-endian u16), CDB length, 3 reserved, then 16 bytes of CDB usage data.
const VOL: u8 = 1;
const DEV: u8 = 2;
const BOTH: u8 = 3;
const ROWS: u32 = 51;
// @ts-ignore: decorator
const TABLE: usize = memory.data<u8>([
  BOTH, 0, 0, 0, 6, 0, 0, 0, /**/ 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // TEST UNIT READY
  BOTH, 0, 0, 0, 6, 0, 0, 0, /**/ 0x03, 0x01, 0x00, 0x00, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // REQUEST SENSE
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // READ (6)
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // WRITE (6)
  BOTH, 0, 0, 0, 6, 0, 0, 0, /**/ 0x12, 0x01, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // INQUIRY
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x15, 0x11, 0x00, 0x00, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // MODE SELECT (6)
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x16, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // RESERVE (6)
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x17, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // RELEASE (6)
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // MODE SENSE (6)
  VOL, 0, 0, 0, 6, 0, 0, 0, /**/ 0x1B, 0x01, 0x00, 0x0F, 0xF7, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // START STOP UNIT
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x25, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x04, 0, 0, 0, 0, 0, 0, // READ CAPACITY (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x28, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // READ (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x2A, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // WRITE (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x2E, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // WRITE AND VERIFY (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x2F, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // VERIFY (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x34, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // PRE-FETCH (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x35, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // SYNCHRONIZE CACHE (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x41, 0xE8, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // WRITE SAME (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // MODE SELECT (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x56, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, // RESERVE (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x57, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, // RELEASE (10)
  VOL, 0, 0, 0, 10, 0, 0, 0, /**/ 0x5A, 0x18, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // MODE SENSE (10)
  VOL, 1, 0, 0, 10, 0, 0, 0, /**/ 0x5E, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // PERSISTENT RESERVE IN, READ KEYS
  VOL, 1, 0, 1, 10, 0, 0, 0, /**/ 0x5E, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... READ RESERVATION
  VOL, 1, 0, 2, 10, 0, 0, 0, /**/ 0x5E, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... REPORT CAPABILITIES
  VOL, 1, 0, 3, 10, 0, 0, 0, /**/ 0x5E, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... READ FULL STATUS
  VOL, 1, 0, 0, 10, 0, 0, 0, /**/ 0x5F, 0x00, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // PERSISTENT RESERVE OUT, REGISTER
  VOL, 1, 0, 1, 10, 0, 0, 0, /**/ 0x5F, 0x01, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... RESERVE
  VOL, 1, 0, 2, 10, 0, 0, 0, /**/ 0x5F, 0x02, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... RELEASE
  VOL, 1, 0, 3, 10, 0, 0, 0, /**/ 0x5F, 0x03, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... CLEAR
  VOL, 1, 0, 4, 10, 0, 0, 0, /**/ 0x5F, 0x04, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... PREEMPT
  VOL, 1, 0, 5, 10, 0, 0, 0, /**/ 0x5F, 0x05, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... PREEMPT AND ABORT
  VOL, 1, 0, 6, 10, 0, 0, 0, /**/ 0x5F, 0x06, 0xFF, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x04, 0, 0, 0, 0, 0, 0, // ... REGISTER AND IGNORE EXISTING KEY
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x88, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // READ (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x89, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0x1F, 0x04, // COMPARE AND WRITE
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x8A, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // WRITE (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x8B, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // ORWRITE
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x8E, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // WRITE AND VERIFY (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x8F, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // VERIFY (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x90, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // PRE-FETCH (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x91, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // SYNCHRONIZE CACHE (16)
  VOL, 0, 0, 0, 16, 0, 0, 0, /**/ 0x93, 0xE9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, // WRITE SAME (16)
  VOL, 1, 0, 0x10, 16, 0, 0, 0, /**/ 0x9E, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x04, // READ CAPACITY (16)
  VOL, 1, 0, 0x12, 16, 0, 0, 0, /**/ 0x9E, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x04, // GET LBA STATUS
  BOTH, 0, 0, 0, 12, 0, 0, 0, /**/ 0xA0, 0x00, 0xFF, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x04, 0, 0, 0, 0, // REPORT LUNS
  BOTH, 1, 0, 0x0C, 12, 0, 0, 0, /**/ 0xA3, 0x0C, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x04, 0, 0, 0, 0, // REPORT SUPPORTED OPERATION CODES
  BOTH, 1, 0, 0x0D, 12, 0, 0, 0, /**/ 0xA3, 0x0D, 0x80, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x04, 0, 0, 0, 0, // REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS
  VOL, 0, 0, 0, 12, 0, 0, 0, /**/ 0xA8, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, 0, 0, 0, 0, // READ (12)
  VOL, 0, 0, 0, 12, 0, 0, 0, /**/ 0xAA, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, 0, 0, 0, 0, // WRITE (12)
  VOL, 0, 0, 0, 12, 0, 0, 0, /**/ 0xAE, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, 0, 0, 0, 0, // WRITE AND VERIFY (12)
  VOL, 0, 0, 0, 12, 0, 0, 0, /**/ 0xAF, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0x04, 0, 0, 0, 0, // VERIFY (12)
]);
// The command device's own: SANBOX MANAGEMENT IN and OUT (docs/scsi.md).
const DEV_ROWS: u32 = 2;
// @ts-ignore: decorator
const DEV_TABLE: usize = memory.data<u8>([
  DEV, 0, 0, 0, 16, 0, 0, 0, /**/ 0xC0, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x04,
  DEV, 0, 0, 0, 16, 0, 0, 0, /**/ 0xC1, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x04,
]);

/** Nominal and recommended command timeouts reported (RCTD): the data-out bound, and twice it. */
const NOMINAL_TIMEOUT_S: u32 = 30;
const RECOMMENDED_TIMEOUT_S: u32 = 60;

function row(i: u32): usize { return i < ROWS ? TABLE + i * ROW_BYTES : DEV_TABLE + (i - ROWS) * ROW_BYTES; }
function applies(r: usize, device: bool): bool { return (<u32>load<u8>(r) & (device ? DEV : VOL)) != 0; }
function opcodeOf(r: usize): u32 { return <u32>load<u8>(r + 8); }
function saValid(r: usize): bool { return load<u8>(r + 1) != 0; }
function saOf(r: usize): u32 { return getBe16(r + 2); }
function lengthOf(r: usize): u32 { return <u32>load<u8>(r + 4); }

/** The row of (opcode, service action) for this kind of logical unit, or 0. */
function find(op: u32, sa: u32, withSa: bool, device: bool): usize {
  for (let i: u32 = 0; i < ROWS + DEV_ROWS; i++) {
    const r = row(i);
    if (!applies(r, device) || opcodeOf(r) != op) continue;
    if (!withSa || !saValid(r) || saOf(r) == sa) return r;
  }
  return 0;
}

/** Does this opcode take service actions (for this kind of unit)? */
function hasServiceActions(op: u32, device: bool): bool {
  const r = find(op, 0, false, device);
  return r != 0 && saValid(r);
}

/** MAINTENANCE IN, REPORT SUPPORTED OPERATION CODES. `device`: asked of the command device (LUN 0). */
export function reportOpcodes(c: usize, device: bool): void {
  const p = cdb(c);
  const rctd = (load<u8>(p + 2) & 0x80) != 0;
  const options = <u32>load<u8>(p + 2) & 0x07;
  const op = <u32>load<u8>(p + 3);
  const sa = getBe16(p + 4);
  const alloc = getBe32(p + 6);
  if ((load<u8>(p + 2) & 0x78) != 0) { invalidField(c, 2, 6); return; }
  if (options > 3) { invalidField(c, 2, 2); return; }
  const d = dataInBuffer(c, 8 + (ROWS + DEV_ROWS) * 20);
  if (d == 0) return;
  let n: u32 = 0;
  if (options == 0) {
    n = 4;
    for (let i: u32 = 0; i < ROWS + DEV_ROWS; i++) {
      const r = row(i);
      if (!applies(r, device)) continue;
      store<u8>(d + n, <u8>opcodeOf(r));
      putBe16(d + n + 2, saValid(r) ? saOf(r) : 0);
      store<u8>(d + n + 5, <u8>((rctd ? 0x02 : 0) | (saValid(r) ? 0x01 : 0))); // CTDP, SERVACTV
      putBe16(d + n + 6, lengthOf(r));
      n += 8;
      if (rctd) n += timeouts(d + n);
    }
    putBe32(d, n - 4);
  } else {
    // One command: 001b without a service action (refused for an opcode that has them), 010b with
    // one (refused for an opcode that has none), 011b either way.
    const takesSa = hasServiceActions(op, device);
    if (options == 1 && takesSa) { invalidField(c, 2, 2); return; }
    if (options == 2 && !takesSa && find(op, 0, false, device) != 0) { invalidField(c, 2, 2); return; }
    const r = find(op, sa, options != 1 && takesSa, device);
    const length: u32 = r == 0 ? 0 : lengthOf(r);
    store<u8>(d + 1, <u8>((rctd ? 0x80 : 0) | (r == 0 ? 0x01 : 0x03))); // CTDP; SUPPORT: 001b not, 011b as the standard says
    putBe16(d + 2, length);
    if (r != 0) memory.copy(d + 4, r + 8, length);
    n = 4 + length;
    if (rctd) n += timeouts(d + n);
  }
  sendBuffer(c, min<u32>(n, alloc));
}

function timeouts(d: usize): u32 {
  putBe16(d, 0x0A);
  putBe32(d + 4, NOMINAL_TIMEOUT_S);
  putBe32(d + 8, RECOMMENDED_TIMEOUT_S);
  return 12;
}

/**
 * MAINTENANCE IN, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS: ABORT TASK, ABORT TASK SET, CLEAR TASK
 * SET, LOGICAL UNIT RESET, TARGET RESET (iSCSI's TARGET WARM RESET); with REPD the extended format.
 */
export function reportTaskManagement(c: usize): void {
  const p = cdb(c);
  const repd = (load<u8>(p + 2) & 0x80) != 0;
  if ((load<u8>(p + 2) & 0x7F) != 0) { invalidField(c, 2, 6); return; }
  const alloc = getBe32(p + 6);
  if (alloc < 4) { invalidField(c, 6, -1); return; }
  const d = dataInBuffer(c, 16);
  if (d == 0) return;
  store<u8>(d, 0x80 | 0x40 | 0x10 | 0x08 | 0x02); // ATS, ATSS, CTSS, LURS, TRS
  if (repd) store<u8>(d + 3, 0x0C);
  sendBuffer(c, min<u32>(repd ? 16 : 4, alloc));
}

/** MAINTENANCE IN (A3h): the two service actions above; any other is INVALID FIELD IN CDB. */
export function maintenanceIn(c: usize, device: bool): void {
  const sa = <u32>load<u8>(cdb(c) + 1) & 0x1F;
  if (sa == 0x0C) reportOpcodes(c, device);
  else if (sa == 0x0D) reportTaskManagement(c);
  else { invalidField(c, 1, 4); }
}

