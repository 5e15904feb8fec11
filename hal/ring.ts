// The TypeScript side of the HAL rings (docs/hal.md, "Rings"): single producer, single consumer,
// free-running u32 head and tail, power-of-two capacity. The producer writes an entry and then
// publishes the tail; the consumer reads the tail, consumes, and then publishes the head.
import {
  RING_HEAD, RING_TAIL, RING_CAPACITY, RING_ENTRY_BYTES, RING_DOORBELL, RING_DATA,
} from './abi';
import { CommonMemory } from './memory';

class RingBase {
  readonly capacity: number;
  readonly mask: number;
  readonly data: number;
  readonly doorbell: number;
  protected readonly headIndex: number;
  protected readonly tailIndex: number;

  constructor(protected readonly mem: CommonMemory, readonly addr: number) {
    this.capacity = mem.u32(addr + RING_CAPACITY);
    this.mask = this.capacity - 1;
    this.data = addr + RING_DATA;
    this.doorbell = mem.u32(addr + RING_DOORBELL);
    this.headIndex = (addr + RING_HEAD) >> 2;
    this.tailIndex = (addr + RING_TAIL) >> 2;
    if (this.capacity === 0 || (this.capacity & this.mask) !== 0) {
      throw new Error(`ring at 0x${addr.toString(16)}: capacity ${this.capacity} is not a power of two`);
    }
  }

  head(): number { return Atomics.load(this.mem.i32, this.headIndex) >>> 0; }
  tail(): number { return Atomics.load(this.mem.i32, this.tailIndex) >>> 0; }
  /** Entries (bytes) waiting for the consumer. */
  used(): number { return (this.tail() - this.head()) >>> 0; }
  free(): number { return this.capacity - this.used(); }
  protected setHead(v: number): void { Atomics.store(this.mem.i32, this.headIndex, v | 0); }
  protected setTail(v: number): void { Atomics.store(this.mem.i32, this.tailIndex, v | 0); }

  /** Empties the ring; only while neither side uses it (a closed session). */
  reset(): void { this.setHead(0); this.setTail(0); }
}

export class EntryRing extends RingBase {
  readonly entryBytes: number;

  constructor(mem: CommonMemory, addr: number) {
    super(mem, addr);
    this.entryBytes = mem.u32(addr + RING_ENTRY_BYTES);
  }

  /** Address of entry number `index` (free-running). */
  entry(index: number): number { return this.data + (index & this.mask) * this.entryBytes; }

  /** Producer: address of the next free entry, or -1 when full. */
  reserve(): number {
    const tail = this.tail();
    if (((tail - this.head()) >>> 0) >= this.capacity) return -1;
    return this.entry(tail);
  }
  publish(n = 1): void { this.setTail(this.tail() + n); }

  /** Consumer: address of the oldest entry, or -1 when empty. */
  peek(): number {
    const head = this.head();
    return head === this.tail() ? -1 : this.entry(head);
  }
  release(n = 1): void { this.setHead(this.head() + n); }
}

export class ByteRing extends RingBase {
  /** Producer: copies as much of src as fits; returns the bytes written. */
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.free());
    if (n === 0) return 0;
    const start = this.tail() & this.mask;
    const first = Math.min(n, this.capacity - start);
    this.mem.u8.set(first === src.length ? src : src.subarray(0, first), this.data + start);
    if (first < n) this.mem.u8.set(src.subarray(first, n), this.data);
    this.publish(n);
    return n;
  }
  private publish(n: number): void { this.setTail(this.tail() + n); }

  /**
   * Consumer, without a copy: a view of the waiting bytes from `offset` past the head up to the
   * wrap (at most max). The bytes stay the consumer's until it releases them.
   */
  view(offset: number, max = Infinity): Buffer {
    const n = Math.min(this.used() - offset, max);
    const start = (this.head() + offset) & this.mask;
    const len = Math.max(0, Math.min(n, this.capacity - start));
    return Buffer.from(this.mem.u8.buffer, this.data + start, len);
  }

  /** Consumer: gives n bytes back to the producer. */
  release(n: number): void { this.setHead(this.head() + n); }
}
