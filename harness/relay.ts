// A relaying device (document 003, Fig. 3; docs/remote.md): build/relay.wasm over a memory of its
// own, its link rings bound to the topology's links. The harness polls it like an IOP.
import * as fs from 'fs';
import * as A from '../hal/abi';
import { CommonMemory } from '../hal/memory';
import { EntryRing } from '../hal/ring';
import { packagePath } from '../lib/paths';
import type { RelaySpec } from './links';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;

interface RelayExports { layout(): number; poll(now: number): number }

const LAYOUT_ERRORS: Record<number, string> = {
  1: 'config block has a bad magic number', 2: 'link count or buffer size out of range', 3: 'memory cannot grow to the map size',
};

export interface RelayStatus {
  relay: string; node: number; mode: 'storeAndForward' | 'cutThrough'; bufferBytes: number; bufferUsedBytes: number;
  active: number; jobs: number; forwarded: number; failed: number; bytes: number; duplicates: number; retries: number;
  noBuffer: number; badPackets: number;
}

export class RelayNode {
  readonly memory: { buffer: SharedArrayBuffer; grow(n: number): number };
  readonly mem: CommonMemory;
  private readonly fw: RelayExports;
  /** tx doorbells rung in the last poll (link indices). */
  readonly txRung: number[] = [];
  failed: Error | undefined;
  kick: () => void = () => undefined;

  /** `links`: the indices in the topology of the links this relay ends, in its link order; `routes`: node -> local link index. */
  constructor(readonly spec: RelaySpec, readonly links: number[], routes: number[], log: (line: string) => void, debug = false) {
    const file = packagePath('build', debug ? 'relay.debug.wasm' : 'relay.wasm');
    if (!fs.existsSync(file)) throw new Error(`relay image ${file} is missing: run npm run build`);
    this.memory = new Wasm.Memory({ initial: (A.REGIONS_ADDR / A.PAGE_BYTES) + 1, maximum: 16384, shared: true });
    const cm = new CommonMemory(this.memory);
    const C = A.CONFIG_ADDR;
    cm.setU32(C + A.RCFG_MAGIC, A.RCFG_MAGIC_VALUE);
    cm.setU16(C + A.RCFG_NODE, spec.node);
    cm.setU32(C + A.RCFG_LINKS, links.length);
    cm.setU32(C + A.RCFG_BUFFER_BYTES, spec.bufferBytes);
    cm.setU32(C + A.RCFG_FLAGS, spec.cutThrough ? A.RCF_CUT_THROUGH : 0);
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
  }

  get name(): string { return this.spec.name; }

  rx(link: number): EntryRing { return new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.RMAP_LINKS + link * 8)); }
  tx(link: number): EntryRing { return new EntryRing(this.mem, this.mem.u32(A.MAP_ADDR + A.RMAP_LINKS + link * 8 + 4)); }

  round(now: number): number {
    if (this.failed) return 0;
    try {
      return this.fw.poll(now);
    } catch (e) {
      this.failed = e as Error;
      return 0;
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
    };
  }
}
