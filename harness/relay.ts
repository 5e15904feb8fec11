// A relaying device (document 003, Fig. 3; docs/remote.md): build/relay.wasm over a memory of its
// own, its link rings bound to the topology's links. The harness polls it like an IOP.
//
// With an `nv` file (embodiment 4's non-volatile buffer memory, [0114]) the relay's job table and
// buffer (RMAP_NV_ADDR, RMAP_NV_BYTES) are written through to the file after every poll, before the
// network takes what the poll sent (harness/network.ts takes the transmit rings after round()): a
// RECEIVED the relay sends upstream never promises bytes the file does not hold. Only the pages
// that changed since the last write are written, then the file is synced. A new instance over the
// same file (a restart) reads them back and the image's recover() goes on from them.
import * as fs from 'fs';
import * as A from '../hal/abi';
import { CommonMemory } from '../hal/memory';
import { EntryRing } from '../hal/ring';
import { packagePath } from '../lib/paths';
import type { RelaySpec } from './links';
import { decodeTrace, traceTypeName } from './trace';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;

interface RelayExports { layout(): number; poll(now: number): number; recover(now: number): number }

/** The NV file: a header page, then the NV part of the relay's memory. */
const NV_MAGIC = 0x564e4c52; // "RLNV"
const NV_HEADER = 4096;
const NV_PAGE = 4096;

const LAYOUT_ERRORS: Record<number, string> = {
  1: 'config block has a bad magic number', 2: 'link count or buffer size out of range', 3: 'memory cannot grow to the map size',
};

export interface RelayStatus {
  relay: string; node: number; mode: 'storeAndForward' | 'cutThrough'; bufferBytes: number; bufferUsedBytes: number;
  active: number; jobs: number; forwarded: number; failed: number; bytes: number; duplicates: number; retries: number;
  noBuffer: number; badPackets: number;
  nv: boolean; forward: 'now' | 'later' | 'threshold'; held: number; recovered: number;
}

export class RelayNode {
  readonly memory: { buffer: SharedArrayBuffer; grow(n: number): number };
  readonly mem: CommonMemory;
  private readonly fw: RelayExports;
  /** tx doorbells rung in the last poll (link indices). */
  readonly txRung: number[] = [];
  failed: Error | undefined;
  kick: () => void = () => undefined;
  /** Where the relay's own trace records go (the run's trace file); undefined: they are dropped. */
  traceTo: ((record: object) => void) | undefined;
  private fd: number | undefined;
  private nvAddr = 0;
  private shadow: Buffer | undefined;

  /** `links`: the indices in the topology of the links this relay ends, in its link order; `routes`: node -> local link index. */
  constructor(readonly spec: RelaySpec, readonly links: number[], readonly routes: number[], log: (line: string) => void, debug = false, now = 0) {
    const file = packagePath('build', debug ? 'relay.debug.wasm' : 'relay.wasm');
    if (!fs.existsSync(file)) throw new Error(`relay image ${file} is missing: run npm run build`);
    this.memory = new Wasm.Memory({ initial: (A.REGIONS_ADDR / A.PAGE_BYTES) + 1, maximum: 16384, shared: true });
    const cm = new CommonMemory(this.memory);
    const C = A.CONFIG_ADDR;
    cm.setU32(C + A.RCFG_MAGIC, A.RCFG_MAGIC_VALUE);
    cm.setU16(C + A.RCFG_NODE, spec.node);
    cm.setU32(C + A.RCFG_LINKS, links.length);
    cm.setU32(C + A.RCFG_BUFFER_BYTES, spec.bufferBytes);
    cm.setU32(C + A.RCFG_FLAGS, (spec.cutThrough ? A.RCF_CUT_THROUGH : 0) | (spec.nv ? A.RCF_NV : 0)
      | (spec.forward === 'later' ? A.RCF_FORWARD_LATER : 0) | (spec.forward === 'threshold' ? A.RCF_FORWARD_THRESHOLD : 0));
    cm.setU32(C + A.RCFG_HOLD_US, Math.round(spec.holdMs * 1000));
    cm.setU32(C + A.RCFG_THRESHOLD_BYTES, spec.thresholdBytes);
    cm.setU32(C + A.RCFG_TIMEOUT_US, Math.round(spec.timeoutMs * 1000));
    cm.setU32(C + A.RCFG_RETRIES, spec.retries);
    for (let n = 0; n < A.RELAY_MAX_NODES; n++) cm.setU16(C + A.RCFG_ROUTES + n * 2, routes[n] ?? 0xFFFF);
    const imports = {
      env: {
        memory: this.memory,
        abort: (m: number, f: number, line: number, col: number) => {
          const x = new CommonMemory(this.memory);
          throw new Error(`relay ${spec.name}: firmware abort: ${m ? x.asString(m) : 'abort'} at ${f ? x.asString(f) : '?'}:${line}:${col}`);
        },
      },
      hal: {
        doorbell: (id: number) => { if (id >= A.DB_LINK_TX_BASE && id < A.DB_LINK_TX_BASE + A.RELAY_MAX_LINKS) this.txRung.push(id - A.DB_LINK_TX_BASE); },
        log: (level: number, msg: number, x: number, y: number) => log(`${spec.name} relay ${['', 'info', 'warn', 'error'][level] ?? level}: ${new CommonMemory(this.memory).asString(msg)} (${x}, ${y})`),
      },
    };
    this.fw = new Wasm.Instance(new Wasm.Module(fs.readFileSync(file)), imports).exports as RelayExports;
    const e = this.fw.layout();
    if (e !== 0) throw new Error(`relay ${spec.name}: layout failed: ${LAYOUT_ERRORS[e] ?? `error ${e}`}`);
    this.mem = new CommonMemory(this.memory);
    if (spec.nv) this.openNv(spec.nv, now, log);
  }

  /** Opens the NV file: takes back what it holds (a restart), or starts it (a new relay). */
  private openNv(file: string, now: number, log: (line: string) => void): void {
    this.nvAddr = this.mem.u32(A.MAP_ADDR + A.RMAP_NV_ADDR);
    const bytes = this.mem.u32(A.MAP_ADDR + A.RMAP_NV_BYTES);
    const region = () => Buffer.from(this.memory.buffer, this.nvAddr, bytes);
    const fresh = !fs.existsSync(file) || fs.statSync(file).size === 0;
    this.fd = fs.openSync(file, fresh ? 'w+' : 'r+');
    const header = Buffer.alloc(NV_HEADER);
    if (!fresh) {
      fs.readSync(this.fd, header, 0, NV_HEADER, 0);
      const ok = header.readUInt32LE(0) === NV_MAGIC && header.readUInt32LE(4) === bytes && header.readUInt32LE(8) === this.spec.bufferBytes;
      if (!ok) {
        fs.closeSync(this.fd);
        this.fd = undefined;
        throw new Error(`relay ${this.spec.name}: ${file} is not this relay's NV file (another buffer size or not a relay's): `
          + 'restore the topology it was written with, or remove the file (what it holds is lost)');
      }
      const got = fs.readSync(this.fd, region(), 0, bytes, NV_HEADER);
      if (got !== bytes) throw new Error(`relay ${this.spec.name}: ${file} is short (${got} of ${bytes} bytes)`);
      const n = this.fw.recover(now);
      if (n > 0) log(`${this.spec.name} relay: ${n} command(s) taken back from ${file}`);
    } else {
      header.writeUInt32LE(NV_MAGIC, 0);
      header.writeUInt32LE(bytes, 4);
      header.writeUInt32LE(this.spec.bufferBytes, 8);
      fs.writeSync(this.fd, header, 0, NV_HEADER, 0);
      fs.writeSync(this.fd, region(), 0, bytes, NV_HEADER);
      fs.fdatasyncSync(this.fd);
    }
    this.shadow = Buffer.from(region());
  }

  /** Writes the NV pages that changed since the last write, then syncs: before anything the poll sent leaves. */
  private persist(): void {
    if (this.fd === undefined || !this.shadow) return;
    const cur = Buffer.from(this.memory.buffer, this.nvAddr, this.shadow.length);
    let wrote = false;
    for (let off = 0; off < cur.length; off += NV_PAGE) {
      const end = Math.min(off + NV_PAGE, cur.length);
      if (cur.compare(this.shadow, off, end, off, end) === 0) continue;
      fs.writeSync(this.fd, cur, off, end - off, NV_HEADER + off);
      cur.copy(this.shadow, off, off, end);
      wrote = true;
    }
    if (wrote) fs.fdatasyncSync(this.fd);
  }

  /** The relay stops: its memory is gone (its NV file stays). */
  kill(): void { this.failed ??= new Error(`relay ${this.name} was killed`); }

  /** Forward every held command now (forward later: the storage unit's request, [0115]). */
  flush(): void { this.mem.setU32(A.MAP_ADDR + A.RMAP_FLUSH, 1); this.kick(); }

  close(): void {
    if (this.fd !== undefined) { fs.closeSync(this.fd); this.fd = undefined; }
  }

  get name(): string { return this.spec.name; }

  rx(link: number): EntryRing { return new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.RMAP_LINKS + link * 8)); }
  tx(link: number): EntryRing { return new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.RMAP_LINKS + link * 8 + 4)); }

  round(now: number): number {
    if (this.failed) return 0;
    try {
      const work = this.fw.poll(now);
      this.persist();
      this.drainTrace();
      return work;
    } catch (e) {
      this.failed = e as Error;
      return 0;
    }
  }

  /** The relay's trace ring into traceTo (TRACE_REMOTE_RELAY records: docs/remote.md, "Trace"). */
  drainTrace(): void {
    const ring = new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.RMAP_TRACE_RING));
    const m = this.mem;
    for (let e = ring.peek(); e >= 0; e = ring.peek()) {
      const type = m.u16(e + A.TR_TYPE);
      this.traceTo?.({
        t: m.f64(e + A.TR_TIME_NS), relay: this.name, node: this.spec.node, seq: m.u32(e + A.TR_SEQ), type: traceTypeName(type),
        ...decodeTrace(type, m.u32(e + A.TR_A), m.u32(e + A.TR_B), m.u32(e + A.TR_C), m.u32(e + A.TR_D)),
      });
      ring.release();
    }
  }

  nextTimerNs(): number {
    const w = this.mem.view.getFloat64(A.MAP_ADDR + A.RMAP_WAKE_AT_NS, true);
    return w > 0 ? w : Infinity;
  }

  private stat(i: number): number { return Number(this.mem.view.getBigInt64(A.MAP_ADDR + A.RMAP_STATS + i * 8, true)); }

  /** Commands the relay holds now (taken in, not answered both ways). */
  get active(): number { return this.stat(A.RSTAT_ACTIVE); }

  status(): RelayStatus {
    return {
      relay: this.name, node: this.spec.node, mode: this.spec.cutThrough ? 'cutThrough' : 'storeAndForward',
      bufferBytes: this.spec.bufferBytes, bufferUsedBytes: this.stat(A.RSTAT_BUFFER_USED), active: this.stat(A.RSTAT_ACTIVE),
      jobs: this.stat(A.RSTAT_JOBS), forwarded: this.stat(A.RSTAT_FORWARDED), failed: this.stat(A.RSTAT_FAILED),
      bytes: this.stat(A.RSTAT_BYTES), duplicates: this.stat(A.RSTAT_DUPLICATES), retries: this.stat(A.RSTAT_RETRIES),
      noBuffer: this.stat(A.RSTAT_NO_BUFFER), badPackets: this.stat(A.RSTAT_BAD),
      nv: this.spec.nv !== undefined, forward: this.spec.forward, held: this.stat(A.RSTAT_HELD), recovered: this.stat(A.RSTAT_RECOVERED),
    };
  }
}
