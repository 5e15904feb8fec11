// A storage unit's side of the inter-array protocol written in TypeScript, for testing the relay's
// firmware before the array's own link unit exists (docs/remote.md): as an origin it issues WRITE,
// sends the DATA a READY asks for and waits for RECEIVED and FORWARDED; as a remote unit it answers
// WRITE with READY, gathers DATA and answers RECEIVED. Every packet it sends is sealed with a CRC,
// every one it takes is checked, as the firmware does.
import * as A from '../../hal/abi';
import { CommonMemory } from '../../hal/memory';
import { EntryRing } from '../../hal/ring';
import { crc32c } from '../../lib/protocol';
import type { NetworkNode } from '../../harness/network';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;
const RING_BYTES = A.RING_DATA + A.LINK_RING_ENTRIES * A.LINK_ENTRY_BYTES;

export interface Event { t: number; what: string; cmdId: number; offset?: number }

interface Outgoing { cmdId: number; dstNode: number; link: number; data: Uint8Array; lba: number; issuingId: number; sentWriteNs: number; received?: number; forwarded?: number; status?: number }

export class Endpoint implements NetworkNode {
  private readonly mem: CommonMemory;
  private readonly rings = new Map<number, { rx: EntryRing; tx: EntryRing }>();
  private readonly rung = new Set<number>();
  private now = 0;
  private nextCmd = 1;
  readonly events: Event[] = [];
  readonly outgoing = new Map<number, Outgoing>();
  /** Remote role: what arrived, by (source node, cmdId). */
  readonly incoming = new Map<string, { total: number; got: Map<number, Uint8Array>; lba: number; issuingId: number; origin: number; done: boolean }>();
  readonly blocks = new Map<number, Uint8Array>();

  constructor(readonly name: string, readonly node: number, links: number[]) {
    const memory = new Wasm.Memory({ initial: Math.ceil((links.length * 2 * RING_BYTES) / 65536) + 1, maximum: 4096, shared: true });
    this.mem = new CommonMemory(memory);
    let at = 0;
    for (const l of links) {
      const make = () => {
        this.mem.setU32(at + A.RING_CAPACITY, A.LINK_RING_ENTRIES);
        this.mem.setU32(at + A.RING_ENTRY_BYTES, A.LINK_ENTRY_BYTES);
        const r = new EntryRing(this.mem, at);
        at += RING_BYTES;
        return r;
      };
      this.rings.set(l, { rx: make(), tx: make() });
    }
  }

  get busy(): boolean { return [...this.outgoing.values()].some((o) => o.received === undefined); }
  nextTimerNs(): number { return Infinity; }
  rxFor(link: number): EntryRing | undefined { return this.rings.get(link)?.rx; }
  takeTx(): Array<{ link: number; tx: EntryRing }> {
    const out = [...this.rung].map((link) => ({ link, tx: this.rings.get(link)!.tx }));
    this.rung.clear();
    return out;
  }

  /** Origin: issues a WRITE of `data` for block `lba` of volume "mirror" on node dstNode over `link`. */
  write(link: number, dstNode: number, lba: number, data: Uint8Array, issuingId = 0): number {
    const cmdId = this.nextCmd++;
    const o: Outgoing = { cmdId, dstNode, link, data, lba, issuingId, sentWriteNs: this.now };
    this.outgoing.set(cmdId, o);
    this.send(link, A.LT_WRITE, { dstNode, cmdId, total: data.length, lba, issuingId });
    this.events.push({ t: this.now, what: 'WRITE sent', cmdId });
    return cmdId;
  }

  round(now: number): number {
    this.now = now;
    let work = 0;
    for (const [link, { rx }] of this.rings) {
      for (let e = rx.peek(); e >= 0; e = rx.peek()) {
        const p = Buffer.from(this.mem.bytes(e, A.LINK_HEADER_BYTES + this.mem.u16(e + A.LPK_LENGTH)));
        rx.release();
        work++;
        if (!valid(p)) { this.events.push({ t: now, what: 'bad packet', cmdId: 0 }); continue; }
        this.receive(link, p);
      }
    }
    return work;
  }

  private receive(link: number, p: Buffer): void {
    const type = p[A.LPK_TYPE];
    const cmdId = p.readUInt32LE(A.LPK_CMD_ID);
    const src = p.readUInt16LE(A.LPK_SRC_NODE);
    if (type === A.LT_READY) {
      const o = this.outgoing.get(cmdId);
      if (!o) return;
      const from = p.readUInt32LE(A.LPK_OFFSET);
      this.events.push({ t: this.now, what: 'READY', cmdId, offset: from });
      for (let off = from; off < o.data.length; off += A.LINK_PAYLOAD_BYTES) {
        const n = Math.min(A.LINK_PAYLOAD_BYTES, o.data.length - off);
        this.send(link, A.LT_DATA, { dstNode: o.dstNode, cmdId, offset: off }, o.data.subarray(off, off + n));
      }
      this.events.push({ t: this.now, what: 'DATA sent', cmdId });
    } else if (type === A.LT_RECEIVED) {
      const o = this.outgoing.get(cmdId);
      if (!o || o.received !== undefined) return;
      o.received = this.now;
      o.status = p[A.LPK_STATUS];
      this.events.push({ t: this.now, what: 'RECEIVED', cmdId });
    } else if (type === A.LT_FORWARDED) {
      const o = this.outgoing.get(cmdId);
      if (!o) return;
      o.forwarded = this.now;
      o.status = p[A.LPK_STATUS];
      this.events.push({ t: this.now, what: 'FORWARDED', cmdId });
    } else if (type === A.LT_WRITE) {
      const key = `${src}/${cmdId}`;
      if (!this.incoming.has(key)) {
        this.incoming.set(key, { total: p.readUInt32LE(A.LPK_TOTAL), got: new Map(), lba: p.readUInt32LE(A.LPK_LBA), issuingId: p.readUInt32LE(A.LPK_ISSUING_ID), origin: p.readUInt16LE(A.LPK_ORIGIN), done: false });
      }
      this.events.push({ t: this.now, what: 'remote WRITE', cmdId });
      this.send(link, A.LT_READY, { dstNode: src, cmdId, offset: 0, total: p.readUInt32LE(A.LPK_TOTAL) });
    } else if (type === A.LT_DATA) {
      const key = `${src}/${cmdId}`;
      const w = this.incoming.get(key);
      if (!w) return;
      const off = p.readUInt32LE(A.LPK_OFFSET);
      if (w.got.size === 0) this.events.push({ t: this.now, what: 'remote first DATA', cmdId });
      w.got.set(off, Uint8Array.from(p.subarray(A.LINK_HEADER_BYTES)));
      const have = [...w.got.values()].reduce((k, x) => k + x.length, 0);
      if (have === w.total && !w.done) {
        w.done = true;
        const all = new Uint8Array(w.total);
        for (const [o, b] of w.got) all.set(b, o);
        this.blocks.set(w.lba, all);
        this.events.push({ t: this.now, what: 'remote all DATA', cmdId });
        this.send(link, A.LT_RECEIVED, { dstNode: src, cmdId });
      }
    }
  }

  private send(link: number, type: number, f: { dstNode: number; cmdId: number; total?: number; offset?: number; lba?: number; issuingId?: number }, payload?: Uint8Array): void {
    const { tx } = this.rings.get(link)!;
    const e = tx.reserve();
    if (e < 0) throw new Error(`endpoint ${this.name}: link ${link} transmit ring full`);
    const p = Buffer.alloc(A.LINK_HEADER_BYTES + (payload?.length ?? 0));
    p.writeUInt16LE(A.LPK_MAGIC_VALUE, A.LPK_MAGIC);
    p[A.LPK_TYPE] = type;
    p.writeUInt16LE(this.node, A.LPK_SRC_NODE);
    p.writeUInt16LE(f.dstNode, A.LPK_DST_NODE);
    p.writeUInt16LE(payload?.length ?? 0, A.LPK_LENGTH);
    p.writeUInt32LE(f.cmdId, A.LPK_CMD_ID);
    p.writeUInt32LE(f.issuingId ?? 0, A.LPK_ISSUING_ID);
    p.writeUInt32LE(f.offset ?? 0, A.LPK_OFFSET);
    p.writeUInt32LE(f.total ?? 0, A.LPK_TOTAL);
    p.writeUInt32LE(f.lba ?? 0, A.LPK_LBA);
    p.writeUInt16LE(this.node, A.LPK_ORIGIN);
    p.write('mirror', A.LPK_VOLUME, 'latin1');
    if (payload) p.set(payload, A.LINK_HEADER_BYTES);
    p.writeUInt32LE(crc32c(p), A.LPK_CRC);
    this.mem.u8.set(p, e);
    tx.publish();
    this.rung.add(link);
  }
}

function valid(p: Buffer): boolean {
  if (p.readUInt16LE(A.LPK_MAGIC) !== A.LPK_MAGIC_VALUE) return false;
  const crc = p.readUInt32LE(A.LPK_CRC);
  const q = Buffer.from(p);
  q.writeUInt32LE(0, A.LPK_CRC);
  return crc32c(q) === crc;
}
