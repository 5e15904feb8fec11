// The run's machine-readable record (docs/hal.md, Trace and statistics): one JSON object per line.
// Event records come from the firmware's trace ring; metric records are computed by the harness
// from the IOPs' counters every metricsIntervalMs of the array's clock (virtual or real).
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../hal/abi';
import { REMOTE_STATES, REMOTE_REASONS } from '../lib/remote';

const TYPES: Record<number, string> = {
  [A.TRACE_BOOT]: 'boot', [A.TRACE_COMMAND]: 'command', [A.TRACE_STAGE]: 'stage', [A.TRACE_DESTAGE]: 'destage',
  [A.TRACE_FRAME_ERROR]: 'frameError', [A.TRACE_SESSION]: 'session', [A.TRACE_VOLUME]: 'volume', [A.TRACE_FLUSH]: 'flush',
  [A.TRACE_NV_DROPPED]: 'nvDropped', [A.TRACE_MEDIUM]: 'medium',
  [A.TRACE_LOGIN]: 'login', [A.TRACE_TASK_MGMT]: 'taskManagement', [A.TRACE_PDU_ERROR]: 'pduError',
  [A.TRACE_NBD_ERROR]: 'nbdError',
  [A.TRACE_REMOTE_SEND]: 'remoteSend', [A.TRACE_REMOTE_ACK]: 'remoteAck', [A.TRACE_REMOTE_APPLY]: 'remoteApply',
  [A.TRACE_REMOTE_STATE]: 'remoteState',
  [A.TRACE_REMOTE_DELAY]: 'remoteDelay', [A.TRACE_REMOTE_REFLECT]: 'remoteReflect', [A.TRACE_REMOTE_DISCARD]: 'remoteDiscard',
  [A.TRACE_REMOTE_RELAY]: 'remoteRelay', [A.TRACE_REMOTE_REBUILT]: 'remoteRebuilt', [A.TRACE_REMOTE_DROPPED]: 'remoteDropped',
  [A.TRACE_REMOTE_DISCARDED]: 'remoteDiscarded', [A.TRACE_REMOTE_PARTS]: 'remoteParts',
};

/** A relay's steps (TRACE_REMOTE_RELAY, RTS_*). */
export const RELAY_STEPS: Record<number, string> = {
  [A.RTS_STORED]: 'stored', [A.RTS_HELD]: 'held', [A.RTS_FORWARD]: 'forward', [A.RTS_DONE]: 'done', [A.RTS_FAILED]: 'failed',
  [A.RTS_DUPLICATE]: 'duplicate', [A.RTS_RECOVERED]: 'recovered',
};

/** Why a receiver dropped a packet of a write (TRACE_REMOTE_DROPPED, RDROP_*). */
export const DROP_REASONS: Record<number, string> = {
  [A.RDROP_SURPLUS]: 'surplus part', [A.RDROP_PART_AGAIN]: 'part again', [A.RDROP_WRITE_AGAIN]: 'write again',
  [A.RDROP_APPLIED]: 'copy applied already', [A.RDROP_APPLYING]: 'copy being applied',
};

/** Remote copy's records (TRACE_REMOTE_*): numbered 40 to 63. */
export function isRemoteTrace(type: number): boolean { return type >= A.TRACE_REMOTE_SEND && type < 64; }

function bits(mask: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 32; k++) if ((mask >>> k) & 1) out.push(k);
  return out;
}

const NBD_ERRORS: Record<number, string> = {
  [A.NERR_CLIENT_FLAGS]: 'client flags refused', [A.NERR_OPTION_MAGIC]: 'option without IHAVEOPT',
  [A.NERR_REQUEST_MAGIC]: 'request without its magic', [A.NERR_OPTION]: 'option refused',
  [A.NERR_EXPORT_NAME]: 'no such export (NBD_OPT_EXPORT_NAME)', [A.NERR_REQUEST]: 'request refused',
  [A.NERR_READ_FAILED]: 'read failed after its reply began',
};

const PDU_ERRORS: Record<number, string> = {
  [A.PERR_HEADER_DIGEST]: 'header digest', [A.PERR_DATA_DIGEST]: 'data digest', [A.PERR_OPCODE]: 'opcode not supported',
  [A.PERR_FIELD]: 'invalid field', [A.PERR_PROTOCOL]: 'protocol error', [A.PERR_OVERSIZE]: 'data segment too long',
  [A.PERR_CMDSN]: 'CmdSN outside the window', [A.PERR_NO_TASK]: 'no such task', [A.PERR_TIMEOUT]: 'timeout',
};

export type TraceRecord = Record<string, string | number | boolean>;

/** Decodes one TR_* entry into named fields. */
export function decodeTrace(type: number, a: number, b: number, c: number, d: number): TraceRecord {
  switch (type) {
    case A.TRACE_BOOT: return { role: a === A.ROLE_DISK ? 'disk' : 'channel', index: b, recoveredSlots: c };
    case A.TRACE_COMMAND: return {
      port: a >>> 24, session: (a >>> 16) & 0xFF, lun: a & 0xFFFF, opcode: b >>> 24, status: (b >>> 16) & 0xFF,
      senseKey: (b >>> 8) & 0xFF, asc: b & 0xFF, blocks: c, latencyUs: d,
    };
    case A.TRACE_STAGE: case A.TRACE_DESTAGE: return { medium: a, sector: b, sectors: c, status: d };
    case A.TRACE_FRAME_ERROR: return { port: a >>> 16, session: a & 0xFFFF, reason: b, tag: c };
    case A.TRACE_SESSION: return { port: a >>> 16, session: a & 0xFFFF, open: b === 1, aborted: c };
    case A.TRACE_VOLUME: return { volume: a, created: b === 1 };
    case A.TRACE_FLUSH: return { dirtyLeft: a };
    case A.TRACE_NV_DROPPED: return { volume: a, lba512: b * 128 + c };
    case A.TRACE_MEDIUM: return { medium: a, state: b === A.MEDS_OK ? 'ok' : b === A.MEDS_LOST ? 'lost' : String(b), labelGeneration: c };
    case A.TRACE_LOGIN: return {
      port: a >>> 16, session: a & 0xFFFF, status: b, sessionType: (c & 0xFF) === 1 ? 'discovery' : 'normal',
      headerDigest: (c & 0x100) !== 0, dataDigest: (c & 0x200) !== 0, tsih: d,
    };
    case A.TRACE_TASK_MGMT: return { port: a >>> 16, session: a & 0xFFFF, function: b, response: c, aborted: d };
    case A.TRACE_PDU_ERROR: return { port: a >>> 16, session: a & 0xFFFF, error: PDU_ERRORS[b] ?? b, opcode: c, itt: d };
    // Remote copy (docs/remote.md, "Trace"): follow one write by its command identifier and issuing ID.
    case A.TRACE_REMOTE_SEND: return { pair: a, cmdId: b, issuingId: c, bytes: d };
    case A.TRACE_REMOTE_ACK: return { pair: a, cmdId: b, issuingId: c, answer: (d & 0xFF) === 2 ? 'forwarded' : 'received', status: d >>> 8 };
    case A.TRACE_REMOTE_APPLY: return { from: a >>> 16, pair: a & 0xFFFF, cmdId: b, issuingId: c, status: d };
    case A.TRACE_REMOTE_STATE: return { pair: a, state: REMOTE_STATES[b] ?? b, reason: REMOTE_REASONS[c] ?? c, issuingId: d };
    case A.TRACE_REMOTE_DELAY: return d === 0
      ? { from: a >>> 16, pair: a & 0xFFFF, cmdId: b, issuingId: c, held: true }
      : { from: a >>> 16, pair: a & 0xFFFF, syncId: b, issuingId: c, held: false, refusal: -(d | 0) };
    case A.TRACE_REMOTE_REFLECT: return { pair: a, lba: b, issuingId: c, blocks: d };
    case A.TRACE_REMOTE_DISCARD: return { pair: a, discarded: b, issuingId: c, syncId: d };
    case A.TRACE_REMOTE_RELAY: return {
      step: RELAY_STEPS[a >>> 24] ?? a >>> 24, origin: (a >>> 16) & 0xFF, hop: (a >>> 8) & 0xFF, status: a & 0xFF, upCmdId: b, issuingId: c, cmdId: d,
    };
    case A.TRACE_REMOTE_REBUILT: {
      const n = a & 0xFF;
      const arrived = bits(d);
      return { from: a >>> 16, cmdId: b, issuingId: c, n, m: (a >>> 8) & 0xFF, arrived: arrived.join(','), rebuilt: bits(~d & (n >= 32 ? -1 : (1 << n) - 1)).join(',') };
    }
    case A.TRACE_REMOTE_DROPPED: return {
      from: a >>> 16, reason: DROP_REASONS[(a >>> 8) & 0xFF] ?? (a >>> 8) & 0xFF, part: a & 0xFF, cmdId: b, issuingId: c, ...(d === 0xFFFF ? {} : { pair: d }),
    };
    case A.TRACE_REMOTE_DISCARDED: return { pair: a, syncId: b, issuingId: c, bytes: d };
    case A.TRACE_REMOTE_PARTS: return { pair: a, cmdId: b, issuingId: c, partsCmdId: d };
    case A.TRACE_NBD_ERROR: return { port: a >>> 16, session: a & 0xFFFF, error: NBD_ERRORS[b] ?? b, what: c, value: d };
    default: return { a, b, c, d };
  }
}

export function traceTypeName(type: number): string { return TYPES[type] ?? `type${type}`; }

export class TraceWriter {
  private fd = -1;
  private lines: string[] = [];
  private bytes = 0;

  constructor(readonly file: string) {
    if (!file) return;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w');
  }

  get enabled(): boolean { return this.fd >= 0; }

  write(record: object): void {
    if (this.fd < 0) return;
    const line = JSON.stringify(record);
    this.lines.push(line);
    this.bytes += line.length + 1;
    if (this.bytes >= 1 << 16) this.flush();
  }

  flush(): void {
    if (this.fd < 0 || this.lines.length === 0) return;
    fs.writeSync(this.fd, this.lines.join('\n') + '\n');
    this.lines = [];
    this.bytes = 0;
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
