// A raw iSCSI initiator (RFC 7143): one connection, the PDU level in the caller's hands. Tests use
// it as a scalpel (malformed logins and PDUs, digests broken on purpose, R2T and Data-Out under
// their control, task management at a chosen moment); benches drive the array's iSCSI port through
// it as a CommandTransport (iscsiTransport). The real initiators (libiscsi's tools, qemu) are the
// proof that the target interoperates. Digests are lib/protocol's script CRC32C, code apart from
// the firmware's kernel, so that a digest both got wrong the same way cannot pass.
import * as net from 'net';
import { scriptCrc } from '../lib/protocol';
import type { CommandTransport, ScsiCommand, ScsiResult } from '../lib/transport';

export const OP = {
  NOP_OUT: 0x00, SCSI_COMMAND: 0x01, TASK_MGMT: 0x02, LOGIN: 0x03, TEXT: 0x04, DATA_OUT: 0x05, LOGOUT: 0x06, SNACK: 0x10,
  NOP_IN: 0x20, SCSI_RESPONSE: 0x21, TASK_MGMT_RESPONSE: 0x22, LOGIN_RESPONSE: 0x23, TEXT_RESPONSE: 0x24, DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26, R2T: 0x31, ASYNC: 0x32, REJECT: 0x3f,
} as const;

export interface Pdu {
  opcode: number;
  flags: number;
  bhs: Buffer;
  data: Buffer;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

const NO_TAG = 0xffffffff;

/** The 48-byte BHS of a request. */
export function bhs(opcode: number, flags: number, fields: { itt?: number; ttt?: number; cmdSN?: number; expStatSN?: number; lun?: number; immediate?: boolean } = {}): Buffer {
  const b = Buffer.alloc(48);
  b[0] = opcode | (fields.immediate ? 0x40 : 0);
  b[1] = flags;
  if (fields.lun !== undefined) { if (fields.lun < 256) b[9] = fields.lun; else b.writeUInt16BE(0x4000 | fields.lun, 8); } // flat addressing above 255
  b.writeUInt32BE((fields.itt ?? NO_TAG) >>> 0, 16);
  b.writeUInt32BE((fields.ttt ?? NO_TAG) >>> 0, 20);
  b.writeUInt32BE((fields.cmdSN ?? 0) >>> 0, 24);
  b.writeUInt32BE((fields.expStatSN ?? 0) >>> 0, 28);
  return b;
}

/** Key text: pairs "k=v" each ended by a NUL. */
export function keys(pairs: Record<string, string | number> | string[]): Buffer {
  const list = Array.isArray(pairs) ? pairs : Object.entries(pairs).map(([k, v]) => `${k}=${v}`);
  return Buffer.from(list.map((p) => `${p}\0`).join(''), 'latin1');
}

export function parseKeys(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of data.toString('latin1').split('\0')) {
    if (!p) continue;
    const i = p.indexOf('=');
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

export function digest(b: Buffer): Buffer {
  const d = Buffer.alloc(4);
  d.writeUInt32LE(scriptCrc(b), 0);
  return d;
}

export interface SendOptions { badHeaderDigest?: boolean; badDataDigest?: boolean }

export class IscsiConn {
  headerDigest = false;
  dataDigest = false;
  cmdSN = 1;
  expStatSN = 0;
  /** The TSIH the target gave at login. */
  tsih = 0;
  private nextItt = 1;
  private rx = Buffer.alloc(0);
  readonly pdus: Pdu[] = [];
  private wake?: () => void;
  readonly closed: Promise<void>;
  isClosed = false;
  /** The last-resort bound of a wait for a PDU when none is given (wall clock: only a guard against a hang). */
  waitMs = 10000;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (b: Buffer) => { this.rx = Buffer.concat([this.rx, b]); this.parse(); this.wake?.(); });
    this.closed = new Promise((r) => sock.once('close', () => { this.isClosed = true; this.wake?.(); r(); }));
    sock.on('error', () => undefined);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<IscsiConn> {
    const sock = net.connect(port, host);
    await new Promise<void>((resolve, reject) => { sock.once('connect', () => resolve()); sock.once('error', reject); });
    sock.setNoDelay(true);
    return new IscsiConn(sock);
  }

  itt(): number { return this.nextItt++; }

  private parse(): void {
    for (;;) {
      if (this.rx.length < 48) return;
      const ahs = this.rx[4] * 4;
      const len = this.rx.readUIntBE(5, 3);
      const hd = this.headerDigest ? 4 : 0;
      const dd = this.dataDigest && len > 0 ? 4 : 0;
      const total = 48 + ahs + hd + ((len + 3) & ~3) + dd;
      if (this.rx.length < total) return;
      const b = Buffer.from(this.rx.subarray(0, 48));
      if (hd && !digest(this.rx.subarray(0, 48 + ahs)).equals(this.rx.subarray(48 + ahs, 48 + ahs + 4))) {
        throw new Error('target sent a PDU with a bad header digest');
      }
      const at = 48 + ahs + hd;
      const data = Buffer.from(this.rx.subarray(at, at + len));
      if (dd) {
        const padded = this.rx.subarray(at, at + ((len + 3) & ~3));
        if (!digest(padded).equals(this.rx.subarray(at + padded.length, at + padded.length + 4))) throw new Error('target sent a PDU with a bad data digest');
      }
      this.rx = this.rx.subarray(total);
      const pdu: Pdu = {
        opcode: b[0] & 0x3f, flags: b[1], bhs: b, data, itt: b.readUInt32BE(16), ttt: b.readUInt32BE(20),
        statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32),
      };
      // Status-bearing PDUs advance what we acknowledge.
      if (pdu.opcode !== OP.DATA_IN || (pdu.flags & 1) !== 0) this.expStatSN = (pdu.statSN + 1) >>> 0;
      this.pdus.push(pdu);
    }
  }

  /** Sends a PDU; the data segment is padded, digests added as negotiated (or broken on purpose). */
  send(b: Buffer, data: Buffer = Buffer.alloc(0), o: SendOptions = {}): void {
    const h = Buffer.from(b);
    h.writeUIntBE(data.length, 5, 3);
    if (h[0] !== OP.LOGIN && (h[0] & 0x3f) !== OP.DATA_OUT && (h[0] & 0x3f) !== OP.SNACK) h.writeUInt32BE(this.expStatSN, 28);
    const parts: Buffer[] = [h];
    if (this.headerDigest) {
      const d = digest(h);
      if (o.badHeaderDigest) d[0] ^= 0xff;
      parts.push(d);
    }
    if (data.length > 0) {
      const padded = Buffer.concat([data, Buffer.alloc(((data.length + 3) & ~3) - data.length)]);
      parts.push(padded);
      if (this.dataDigest) {
        const d = digest(padded);
        if (o.badDataDigest) d[0] ^= 0xff;
        parts.push(d);
      }
    }
    this.sock.write(Buffer.concat(parts));
  }

  /** The first PDU received (or to come within ms) that satisfies pred, taken off the list. */
  async next(pred: (p: Pdu) => boolean = () => true, ms = this.waitMs): Promise<Pdu> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.pdus.findIndex(pred);
      if (i >= 0) return this.pdus.splice(i, 1)[0];
      if (this.isClosed) throw new Error(`connection closed (have opcodes ${this.pdus.map((p) => p.opcode.toString(16))})`);
      if (Date.now() > deadline) throw new Error(`no such PDU within ${ms} ms (have opcodes ${this.pdus.map((p) => p.opcode.toString(16))})`);
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 50); });
    }
  }

  /** One Login Request; `csg`/`nsg`, transit bit; returns the response and its keys. */
  async loginStep(pairs: Record<string, string | number> | string[], o: { csg: number; nsg: number; transit: boolean; isid?: Buffer; tsih?: number; itt?: number; versionMin?: number }): Promise<{ pdu: Pdu; keys: Record<string, string>; status: number }> {
    const b = bhs(OP.LOGIN, (o.transit ? 0x80 : 0) | (o.csg << 2) | o.nsg, { itt: o.itt ?? 1, cmdSN: this.cmdSN, expStatSN: this.expStatSN, immediate: true });
    b[3] = o.versionMin ?? 0;
    (o.isid ?? Buffer.from([0x80, 0, 0, 0x12, 0x34, 0x56])).copy(b, 8);
    b.writeUInt16BE(o.tsih ?? 0, 14);
    this.send(b, keys(pairs));
    const pdu = await this.next((p) => p.opcode === OP.LOGIN_RESPONSE);
    return { pdu, keys: parseKeys(pdu.data), status: pdu.bhs.readUInt16BE(36) };
  }

  /**
   * A normal (or discovery) session's login, operational stage only, straight to full feature phase.
   * Digests take effect after the final response, as the RFC says.
   */
  async login(target: string | undefined, extra: Record<string, string | number> = {}, o: { isid?: Buffer; name?: string } = {}): Promise<Record<string, string>> {
    const r = await this.loginStep({
      InitiatorName: o.name ?? 'iqn.2026-11.org.sanbox:test-initiator',
      ...(target ? { TargetName: target, SessionType: 'Normal' } : { SessionType: 'Discovery' }),
      HeaderDigest: 'None', DataDigest: 'None', MaxRecvDataSegmentLength: 262144, ...extra,
    }, { csg: 1, nsg: 3, transit: true, isid: o.isid });
    if (r.status !== 0) throw new Error(`login failed: status ${r.status.toString(16)}`);
    if ((r.pdu.flags & 0x80) === 0 || (r.pdu.flags & 3) !== 3) throw new Error('the target did not go to full feature phase');
    this.headerDigest = r.keys.HeaderDigest === 'CRC32C';
    this.dataDigest = r.keys.DataDigest === 'CRC32C';
    this.cmdSN = r.pdu.expCmdSN;
    this.tsih = r.pdu.bhs.readUInt16BE(14);
    return r.keys;
  }

  /** A SCSI command: data-in collected, data-out sent as immediate data and on R2T. */
  async command(lun: number, cdb: Buffer, io: { read?: number; write?: Buffer; edtl?: number; immediate?: number; attr?: number } = {}): Promise<{ status: number; data: Buffer; sense: Buffer; residual: number; flags: number; response: Pdu }> {
    const itt = this.itt();
    const write = io.write !== undefined;
    const edtl = io.edtl ?? (write ? io.write!.length : io.read ?? 0);
    const imm = write ? io.write!.subarray(0, io.immediate ?? 0) : Buffer.alloc(0);
    const b = bhs(OP.SCSI_COMMAND, 0x80 | (io.read ? 0x40 : 0) | (write ? 0x20 : 0) | (io.attr ?? 1), { itt, cmdSN: this.cmdSN++, lun });
    b.writeUInt32BE(edtl, 20);
    cdb.copy(b, 32);
    this.send(b, imm);
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await this.next((x) => x.itt === itt && (x.opcode === OP.DATA_IN || x.opcode === OP.R2T || x.opcode === OP.SCSI_RESPONSE));
      if (p.opcode === OP.DATA_IN) {
        chunks.push(p.data);
        if ((p.flags & 1) !== 0) return { status: p.bhs[3], data: Buffer.concat(chunks), sense: Buffer.alloc(0), residual: p.bhs.readUInt32BE(44), flags: p.flags, response: p };
        continue;
      }
      if (p.opcode === OP.R2T) {
        const offset = p.bhs.readUInt32BE(40);
        const length = p.bhs.readUInt32BE(44);
        this.dataOut(itt, p.ttt, io.write!.subarray(offset, offset + length), offset, 65536);
        continue;
      }
      const senseLen = p.data.length >= 2 ? p.data.readUInt16BE(0) : 0;
      return { status: p.bhs[3], data: Buffer.concat(chunks), sense: p.data.subarray(2, 2 + senseLen), residual: p.bhs.readUInt32BE(44), flags: p.flags, response: p };
    }
  }

  /** Data-Out PDUs of at most `max` bytes for [offset, offset + data.length), DataSN from 0, F on the last. */
  dataOut(itt: number, ttt: number, data: Buffer, offset: number, max: number, o: SendOptions = {}): void {
    let sn = 0;
    for (let at = 0; at < data.length; at += max) {
      const n = Math.min(max, data.length - at);
      const b = bhs(OP.DATA_OUT, at + n === data.length ? 0x80 : 0, { itt, ttt });
      b.writeUInt32BE(sn++, 36);
      b.writeUInt32BE(offset + at, 40);
      this.send(b, data.subarray(at, at + n), o);
    }
  }

  close(): void { this.sock.destroy(); }
}

/** READ(10)/WRITE(10) and TEST UNIT READY CDBs. */
export function rw10(write: boolean, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = write ? 0x2a : 0x28;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}
export const tur = (): Buffer => Buffer.alloc(6);

/**
 * A CommandTransport over a logged-in connection: one command at a time (further submits wait
 * their turn), as a tape is driven. `target` names it in messages.
 */
export function iscsiTransport(conn: IscsiConn, target: string): CommandTransport {
  let turn: Promise<unknown> = Promise.resolve();
  const one = async (c: ScsiCommand): Promise<ScsiResult> => {
    const r = await conn.command(c.lun, Buffer.from(c.cdb), c.dataOut ? { write: Buffer.from(c.dataOut) } : { read: c.dataInLength ?? 0 });
    let data: Uint8Array = r.data;
    if (c.dataIn) { c.dataIn.set(r.data); data = c.dataIn.subarray(0, r.data.length); }
    // O (04h) and U (02h) flags of the SCSI Response or the status-bearing Data-In.
    return { status: r.status, data, sense: r.sense, residual: r.residual, residualOverflow: (r.flags & 0x04) !== 0 };
  };
  return {
    submit(c: ScsiCommand): Promise<ScsiResult> {
      const done = turn.then(() => one(c));
      turn = done.catch(() => undefined);
      return done;
    },
    queueDepth: 1,
    target,
    close: async () => { conn.close(); },
  };
}
