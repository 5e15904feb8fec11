// Queue ports (in-process initiators, docs/hal.md "Queue ports"): command entries in a submission
// ring, buffers in the session's data area, completions in a completion ring. No framing: data
// moves straight between the initiator's buffer and cache slots, like a virtio-scsi queue.
import {
  SES_SQ, SES_CQ, SES_DATA, SES_DATA_BYTES, QSQ_TAG, QSQ_LUN, QSQ_CDB_LEN, QSQ_FLAGS, QSQ_DATA_ADDR, QSQ_DATA_LEN,
  QSQ_CDB, QSQ_TASK_ATTR, QF_DATA_OUT, QF_DATA_IN, QCQ_TAG, QCQ_STATUS, QCQ_SENSE_LEN, QCQ_FLAGS, QCQ_RESIDUAL,
  QCQ_TRANSFERRED, QCQ_SENSE, QCQ_BYTES, MAX_CDB_BYTES,
} from "../abi";
import { ringPeek, ringRelease, ringReserve, ringPublish } from "../ring";
import {
  CX_PORT, CX_SESSION, CX_TAG, CX_DATA_ADDR, CX_CURSOR, CX_STATUS, CX_LUN, CX_WIN_START, CX_WIN_LEN,
  CX_WIN_RECEIVED, ctxSense, senseFixed, WIN_ARRIVED, TA_ACA,
} from "../ctx";
import { sessionDesc, scratch, markTx, responseSense, directSense, setIdentity } from "../channel";
import { cmdStart, residual, residualFlags } from "../sequencer";
import { putHex } from "../util";

export function queueReceive(port: u32, s: u32): i32 {
  const d = sessionDesc(port, s);
  const sq: usize = load<u32>(d + SES_SQ);
  let work: i32 = 0;
  let e = ringPeek(sq);
  while (e != 0) {
    const flags = <u32>load<u8>(e + QSQ_FLAGS);
    const addr = load<u32>(e + QSQ_DATA_ADDR);
    const len = load<u32>(e + QSQ_DATA_LEN);
    const cdbLen = min<u32>(<u32>load<u8>(e + QSQ_CDB_LEN), MAX_CDB_BYTES);
    const base = load<u32>(d + SES_DATA);
    const inside = len == 0 || (addr >= base && <u64>addr + <u64>len <= <u64>base + <u64>load<u32>(d + SES_DATA_BYTES));
    // A buffer outside the session's data area would let an initiator aim the controller's
    // copies anywhere in common memory: refuse it as a bad field, move nothing.
    cmdStart(port, s, load<u32>(e + QSQ_TAG), <u32>load<u16>(e + QSQ_LUN), e + QSQ_CDB, inside ? cdbLen : 0,
      (flags & QF_DATA_OUT) != 0, (flags & QF_DATA_IN) != 0, inside ? len : 0, addr, 0,
      min<u32>(<u32>load<u8>(e + QSQ_TASK_ATTR), TA_ACA));
    ringRelease(sq, 1);
    work++;
    e = ringPeek(sq);
  }
  return work;
}

/** The queue initiator's identity: "inproc:" and the session slot. */
export function queueOpen(port: u32, s: u32): void {
  const p = scratch() + 3300;
  store<u64>(p, 0x3A636F72706E69); // "inproc:"
  putHex(p + 7, (port << 8) | s, 4);
  setIdentity(port, s, p, 11, 0);
}

/** Data-in straight into the initiator's buffer. */
export function queueData(c: usize, src: usize, n: u32): u32 {
  memory.copy(<usize>load<u32>(c + CX_DATA_ADDR) + load<u32>(c + CX_CURSOR), src, n);
  return n;
}

/** Data-out is in the initiator's buffer already: the whole remainder is one window. */
export function queueWindow(c: usize, offset: u32, length: u32): u32 {
  store<u32>(c + CX_WIN_START, offset);
  store<u32>(c + CX_WIN_LEN, length);
  store<u32>(c + CX_WIN_RECEIVED, length);
  return WIN_ARRIVED;
}

export function queueRespond(c: usize): bool {
  const port = <u32>load<u8>(c + CX_PORT);
  const s = <u32>load<u8>(c + CX_SESSION);
  const sense = scratch() + 64;
  const senseLen = responseSense(c, sense);
  const r = residual(c);
  return complete(port, s, load<u32>(c + CX_TAG), load<u8>(c + CX_STATUS), residualFlags(r), <u32>r, load<u32>(c + CX_CURSOR),
    sense, senseLen);
}

export function queueDirect(port: u32, s: u32, tag: u32, status: u32, key: u32, asc: u32, ascq: u32, expected: u32): bool {
  const sense = scratch() + 64;
  const senseLen = directSense(sense, status, key, asc, ascq);
  return complete(port, s, tag, status, expected > 0 ? 1 : 0, expected, 0, sense, senseLen);
}

function complete(port: u32, s: u32, tag: u32, status: u32, rflags: u32, resid: u32, moved: u32, sense: usize, senseLen: u32): bool {
  const cq: usize = load<u32>(sessionDesc(port, s) + SES_CQ);
  const e = ringReserve(cq);
  if (e == 0) return false;
  memory.fill(e, 0, QCQ_BYTES);
  store<u32>(e + QCQ_TAG, tag);
  store<u8>(e + QCQ_STATUS, <u8>status);
  store<u8>(e + QCQ_SENSE_LEN, <u8>senseLen);
  store<u16>(e + QCQ_FLAGS, <u16>rflags);
  store<u32>(e + QCQ_RESIDUAL, resid);
  store<u32>(e + QCQ_TRANSFERRED, moved);
  if (senseLen > 0) memory.copy(e + QCQ_SENSE, sense, senseLen);
  ringPublish(cq, 1);
  markTx(port, s);
  return true;
}
