// A bench for unit tests of firmware units: the test image (build/testing.debug.wasm, the
// controller plus handles on its units) over a small laid-out memory, with ring helpers.
// It writes only the config fields the units under test read.
import * as fs from 'fs';
import * as path from 'path';
import * as A from '../../hal/abi';
import { allowRelaxedSimd } from '../../lib/kernels';

const Wasm = (globalThis as unknown as { WebAssembly: any }).WebAssembly;
const image = path.join(__dirname, '..', '..', 'build', 'testing.debug.wasm');
let compiled: unknown;

export interface RigMedium { sectors?: number; scheduler?: number; queueDepth?: number; deadlineReadUs?: number; deadlineWriteUs?: number }
export interface RigSpec { media?: RigMedium[]; slots?: number }

export type TestExports = Record<string, (...args: any[]) => any>;

export class Rig {
  readonly memory: { buffer: SharedArrayBuffer; grow(n: number): number };
  readonly fw: TestExports;
  readonly doorbells: number[] = [];

  constructor(spec: RigSpec = {}) {
    allowRelaxedSimd(); // the image holds the RS kernel (remote/redundancy.ts)
    compiled ??= new Wasm.Module(fs.readFileSync(image));
    this.memory = new Wasm.Memory({ initial: 32, maximum: 32768, shared: true });
    writeConfig(this, spec);
    const imports = {
      env: { memory: this.memory, abort: (m: number, f: number, l: number) => { throw new Error(`firmware abort: ${this.str(m)} at ${this.str(f)}:${l}`); } },
      hal: { doorbell: (id: number) => this.doorbells.push(id), log: () => undefined },
    };
    this.fw = new Wasm.Instance(compiled, imports).exports;
    const e = this.fw.layout();
    if (e !== 0) throw new Error(`layout failed: ${e}`);
  }

  get view(): DataView { return new DataView(this.memory.buffer); }
  get bytes(): Uint8Array { return new Uint8Array(this.memory.buffer); }
  u32(addr: number): number { return this.view.getUint32(addr, true); }
  setU32(addr: number, v: number): void { this.view.setUint32(addr, v, true); }
  map(field: number): number { return this.u32(A.MAP_ADDR + field); }
  str(ptr: number): string { return Buffer.from(this.memory.buffer, ptr, this.u32(ptr - 4)).toString('utf16le'); }

  /** Entries waiting on an entry ring, consumed. */
  drain(ring: number): number[] {
    const out: number[] = [];
    const cap = this.u32(ring + A.RING_CAPACITY);
    const size = this.u32(ring + A.RING_ENTRY_BYTES);
    let head = this.u32(ring + A.RING_HEAD);
    const tail = this.u32(ring + A.RING_TAIL);
    for (; head !== tail; head++) out.push(ring + A.RING_DATA + (head & (cap - 1)) * size);
    this.setU32(ring + A.RING_HEAD, head);
    return out;
  }

  /** A zeroed scratch area past the end of the map, for test data and images. */
  scratch(bytes: number): number {
    const end = this.map(A.MAP_TOTAL_BYTES);
    const need = Math.ceil((end + bytes) / A.PAGE_BYTES) - this.memory.buffer.byteLength / A.PAGE_BYTES;
    if (need > 0) this.memory.grow(need);
    this.bytes.fill(0, end, end + bytes);
    return end;
  }

  mediumSq(m: number): number { return this.u32(A.MAP_ADDR + A.MAP_MEDIA_TABLE + m * A.MAP_MEDIUM_BYTES + A.MMED_SQ); }
}

function writeConfig(rig: Rig, spec: RigSpec): void {
  const C = A.CONFIG_ADDR;
  const v = rig.view;
  const w32 = (off: number, x: number) => v.setUint32(C + off, x, true);
  w32(A.CFG_MAGIC, A.CONFIG_MAGIC);
  w32(A.CFG_VERSION, A.ABI_VERSION);
  w32(A.CFG_IOP_COUNT, 2);
  v.setUint8(C + A.CFG_IOP_TABLE + A.CIOP_ROLE, A.ROLE_CHANNEL);
  v.setUint8(C + A.CFG_IOP_TABLE + A.CFG_IOP_BYTES + A.CIOP_ROLE, A.ROLE_DISK);
  const media = spec.media ?? [{}];
  w32(A.CFG_MEDIA_COUNT, media.length);
  media.forEach((m, i) => {
    const b = C + A.CFG_MEDIA_TABLE + i * A.CFG_MEDIUM_BYTES;
    v.setUint32(b + A.CMED_SECTORS_LO, m.sectors ?? 1 << 21, true);
    v.setUint8(b + A.CMED_SCHEDULER, m.scheduler ?? A.SCHED_FIFO);
    v.setUint8(b + A.CMED_QUEUE_DEPTH, m.queueDepth ?? 1);
    v.setUint32(b + A.CMED_DEADLINE_READ_US, m.deadlineReadUs ?? 50_000, true);
    v.setUint32(b + A.CMED_DEADLINE_WRITE_US, m.deadlineWriteUs ?? 500_000, true);
  });
  w32(A.CFG_PORT_COUNT, 1);
  const p = C + A.CFG_PORT_TABLE;
  v.setUint8(p + A.CPORT_IOP, 0);
  v.setUint8(p + A.CPORT_KIND, A.PORT_QUEUE);
  v.setUint8(p + A.CPORT_SESSIONS, 1);
  v.setUint32(p + A.CPORT_QUEUE_ENTRIES, 16, true);
  v.setUint32(p + A.CPORT_DATA_BYTES, 1 << 16, true);
  w32(A.CFG_CACHE_SLOTS, spec.slots ?? 64);
  w32(A.CFG_BUFFER_CHUNKS, 4);
  w32(A.CFG_TRACE_ENTRIES, 256);
  w32(A.CFG_CONTEXTS, 16);
  w32(A.CFG_STAGE_DEPTH, 8);
}
