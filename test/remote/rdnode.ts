// A storage unit's redundancy unit (firmware/remote/redundancy.ts, document 003 embodiments 5 and
// 6) running in the compiled firmware (build/testing.debug.wasm) on the network's virtual clock,
// until the array's link unit calls it: the sender's data comes from write(), the receiver's
// rebuilt blocks are stored in `blocks` (S327) before the firmware answers RECEIVED.
import * as fs from 'fs';
import * as A from '../../hal/abi';
import { CommonMemory } from '../../hal/memory';
import { EntryRing } from '../../hal/ring';
import { allowRelaxedSimd } from '../../lib/kernels';
import { packagePath } from '../../lib/paths';
import { parseLinks, type LinkSpec } from '../../harness/links';
import type { ArraySpec } from '../../harness/topology';
import { Network, type NetworkNode } from '../../harness/network';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;
let compiled: unknown;

/** Slot states and statistics of remote/redundancy.ts (its RD_* and RDS_* constants). */
export const RD = { FREE: 0, SEND_WRITE: 1, SEND_PARTS: 2, SEND_DONE: 3, RECV_GATHER: 4, RECV_READY: 5, RECV_KEPT: 6 } as const;
export const RDS = {
  writes: 0, done: 1, failed: 2, partsSent: 3, partsResent: 4, commands: 5, rebuilt: 6, surplus: 7, duplicates: 8,
  bad: 9, noBuffer: 10, resendRequests: 11, givenUp: 12, repeats: 13,
} as const;
export type RdStats = Record<keyof typeof RDS, number>;

export interface RdOptions { node: number; links: number[]; n?: number; m?: number; slots?: number; timeoutUs?: number; retries?: number }
export interface Completion { cmdId: number; lba: number; status: number; at: number }

const UNIT = A.REGIONS_ADDR;

export class RdNode implements NetworkNode {
  readonly mem: CommonMemory;
  private readonly fw: Record<string, (...a: any[]) => any>;
  private readonly rung = new Set<number>();
  private readonly staging: number;
  private now = 0;
  /** Receiver: blocks stored (S327), by LBA. */
  readonly blocks = new Map<number, Uint8Array>();
  /** Receiver: S327, the block to its medium (a bench may check and drop it instead of keeping it). */
  store: (lba: number, bytes: Uint8Array) => void = (lba, bytes) => { this.blocks.set(lba, bytes); };
  /** Sender: commands ended (RECEIVED or given up), by slot order of completion. */
  readonly completions: Completion[] = [];
  /** Receiver: the status the store answers with (0 GOOD); a test sets it to make the store fail. */
  storeStatus = 0;
  private readonly inFlight = new Map<number, { cmdId: number; lba: number }>();

  constructor(readonly name: string, readonly o: RdOptions) {
    allowRelaxedSimd(); // remote/redundancy.ts calls the RS kernel, built with relaxed SIMD
    compiled ??= new Wasm.Module(fs.readFileSync(packagePath('build', 'testing.debug.wasm')));
    const memory = new Wasm.Memory({ initial: UNIT / 65536 + 1, maximum: 32768, shared: true });
    const imports = {
      env: { memory, abort: (_m: number, _f: number, line: number) => { throw new Error(`${name}: firmware abort at line ${line}`); } },
      hal: {
        doorbell: (id: number) => { if (id >= A.DB_LINK_TX_BASE && id < A.DB_LINK_TX_BASE + o.links.length) this.rung.add(id - A.DB_LINK_TX_BASE); },
        log: () => undefined,
      },
    };
    this.fw = new Wasm.Instance(compiled, imports).exports;
    const size = this.fw.rdLayout(UNIT, o.node, o.links.length, o.n ?? 8, o.m ?? 2, o.slots ?? 32, o.timeoutUs ?? 5000, o.retries ?? 8);
    if (size < 0) throw new Error(`${name}: rdLayout failed (${size})`);
    this.staging = UNIT + size;
    const need = this.staging + 32 * A.LINK_PAYLOAD_BYTES;
    const have = memory.buffer.byteLength;
    if (need > have) memory.grow(Math.ceil((need - have) / 65536));
    this.mem = new CommonMemory(memory);
  }

  /** S301 (S344): a redundancy-processed write of `data` to block `lba` of node `dstNode`. Returns the slot. */
  write(dstNode: number, lba: number, data: Uint8Array): number {
    this.mem.u8.set(data, this.staging);
    const slot = this.fw.rdWrite(UNIT, dstNode, 0, BigInt(lba), this.staging, data.length);
    if (slot >= 0) this.inFlight.set(slot, { cmdId: this.fw.rdSlotCmdId(UNIT, slot), lba });
    return slot;
  }

  round(now: number): number {
    this.now = now;
    let work = this.fw.rdPoll(UNIT, now);
    for (let s = this.fw.rdTakeNext(UNIT); s >= 0; s = this.fw.rdTakeNext(UNIT)) { // S327: the block to its medium
      const at = this.fw.rdSlotData(UNIT, s);
      this.store(Number(this.fw.rdSlotLba(UNIT, s)), this.mem.u8.slice(at, at + this.fw.rdSlotBytes(UNIT, s)));
      this.fw.rdRelease(UNIT, s, this.storeStatus);
      work++;
    }
    for (const [s, c] of this.inFlight) {
      if (this.fw.rdSlotState(UNIT, s) !== RD.SEND_DONE) continue;
      this.completions.push({ ...c, status: this.fw.rdSlotStatus(UNIT, s) >>> 0, at: now });
      this.fw.rdRelease(UNIT, s, 0);
      this.inFlight.delete(s);
      work++;
    }
    if (work > 0) work += this.fw.rdPoll(UNIT, now); // send what the releases owe in this round
    return work;
  }

  nextTimerNs(): number { const w = this.fw.rdWakeAt(UNIT); return w > 0 ? w : Infinity; }
  get busy(): boolean { return this.fw.rdActive(UNIT) > 0; }
  takeTx(): Array<{ link: number; tx: EntryRing }> {
    const out = [...this.rung].map((l) => ({ link: this.o.links[l], tx: new EntryRing(this.mem, this.fw.rdTxRing(UNIT, l)) }));
    this.rung.clear();
    return out;
  }
  rxFor(link: number): EntryRing | undefined {
    const l = this.o.links.indexOf(link);
    return l < 0 ? undefined : new EntryRing(this.mem, this.fw.rdRxRing(UNIT, l));
  }

  stats(): RdStats {
    const out = {} as RdStats;
    for (const [k, i] of Object.entries(RDS)) out[k as keyof typeof RDS] = Number(this.fw.rdStat(UNIT, i));
    return out;
  }

  /** Puts raw packet bytes into the receive ring of local link l (tests of bad input). */
  inject(l: number, bytes: Uint8Array): void {
    const rx = new EntryRing(this.mem, this.fw.rdRxRing(UNIT, l));
    const e = rx.reserve();
    if (e < 0) throw new Error(`${this.name}: receive ring ${l} full`);
    this.mem.u8.set(bytes, e);
    rx.publish();
  }
}

export interface RdNetOptions { links: object[]; seed?: number; n?: number; m?: number; timeoutUs?: number; retries?: number; slots?: number }

/** Nodes "origin" (node 0, the sender) and "remote" (node 1), joined by every link given (a: origin, b: remote). */
export function buildRdNet(o: RdNetOptions): { net: Network; origin: RdNode; remote: RdNode; links: LinkSpec[] } {
  const fake = ['origin', 'remote'].map((name) => ({ name, iops: ['channel', 'disk'], ports: [] }) as unknown as ArraySpec);
  const { links } = parseLinks({ links: o.links }, fake);
  const net = new Network(['origin', 'remote'], links, [], o.seed ?? 1, () => undefined, true);
  const all = links.map((_, i) => i);
  const opts = { links: all, n: o.n, m: o.m, timeoutUs: o.timeoutUs, retries: o.retries, slots: o.slots };
  const origin = new RdNode('origin', { node: 0, ...opts });
  const remote = new RdNode('remote', { node: 1, ...opts });
  net.attach(origin);
  net.attach(remote);
  return { net, origin, remote, links };
}

/**
 * A remote copy as 003's Fig. 15 runs it: block after block (S300, S309), each a redundancy-
 * processed write, the next once the last is acknowledged (S306, S307) — `window` blocks at once
 * when more than one. Returns the virtual time it took and every completion.
 */
export function copyVolume(net: Network, origin: RdNode, blocks: number, data: (b: number) => Uint8Array, window = 1): { ns: number; completions: Completion[] } {
  const start = net.now();
  let next = 0;
  const issue = () => {
    while (next < blocks && origin.completions.length + window > next) {
      if (origin.write(1, next, data(next)) < 0) break;
      next++;
    }
  };
  issue();
  net.run(Infinity, () => { issue(); return origin.completions.length >= blocks; });
  if (origin.completions.length < blocks) throw new Error(`copy stopped after ${origin.completions.length} of ${blocks} blocks; under way: ${net.underWay().join(', ') || 'nothing'}`);
  return { ns: net.now() - start, completions: origin.completions };
}
