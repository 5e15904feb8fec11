// Single-producer single-consumer rings in common memory (docs/hal.md, "Rings").
// Entry rings hold fixed-size entries; byte rings carry frame streams and may wrap mid-frame.
// head/tail are free-running u32 indices; capacity is a power of two.
import {
  RING_HEAD, RING_TAIL, RING_CAPACITY, RING_ENTRY_BYTES, RING_DOORBELL, RING_DATA, RING_HEADER_BYTES,
} from "./abi";
import { doorbell } from "./hal";

/** Formats a ring header at r; returns the ring's total size in bytes. */
export function ringInit(r: usize, capacity: u32, entryBytes: u32, doorbellId: u32): usize {
  memory.fill(r, 0, RING_HEADER_BYTES);
  store<u32>(r + RING_CAPACITY, capacity);
  store<u32>(r + RING_ENTRY_BYTES, entryBytes);
  store<u32>(r + RING_DOORBELL, doorbellId);
  return ringBytes(capacity, entryBytes);
}

// @ts-ignore: decorator
@inline export function ringBytes(capacity: u32, entryBytes: u32): usize {
  return <usize>RING_HEADER_BYTES + <usize>capacity * <usize>entryBytes;
}

// @ts-ignore: decorator
@inline export function ringHead(r: usize): u32 { return atomic.load<u32>(r + RING_HEAD); }
// @ts-ignore: decorator
@inline export function ringTail(r: usize): u32 { return atomic.load<u32>(r + RING_TAIL); }
// @ts-ignore: decorator
@inline export function ringCapacity(r: usize): u32 { return load<u32>(r + RING_CAPACITY); }

/** Entries (or bytes) waiting for the consumer. */
// @ts-ignore: decorator
@inline export function ringUsed(r: usize): u32 { return ringTail(r) - ringHead(r); }
/** Room left for the producer. */
// @ts-ignore: decorator
@inline export function ringFree(r: usize): u32 { return ringCapacity(r) - ringUsed(r); }

/** Address of entry number `index` (free-running) of an entry ring. */
// @ts-ignore: decorator
@inline export function ringEntry(r: usize, index: u32): usize {
  return r + RING_DATA + <usize>(index & (ringCapacity(r) - 1)) * <usize>load<u32>(r + RING_ENTRY_BYTES);
}

/** Producer: address of the next free entry, or 0 when full. Publish with ringPublish. */
export function ringReserve(r: usize): usize {
  const tail = ringTail(r);
  if (tail - ringHead(r) >= ringCapacity(r)) return 0;
  return ringEntry(r, tail);
}

/** Producer: makes `n` reserved entries (or written bytes) visible to the consumer. */
// @ts-ignore: decorator
@inline export function ringPublish(r: usize, n: u32): void {
  assert(ringUsed(r) + n <= ringCapacity(r), "ring: published past the consumer (overflow)");
  atomic.store<u32>(r + RING_TAIL, ringTail(r) + n);
}

/** Consumer: address of the oldest entry, or 0 when empty. */
export function ringPeek(r: usize): usize {
  const head = ringHead(r);
  if (head == ringTail(r)) return 0;
  return ringEntry(r, head);
}

/** Consumer: gives `n` entries (or bytes) back to the producer. */
// @ts-ignore: decorator
@inline export function ringRelease(r: usize, n: u32): void {
  assert(n <= ringUsed(r), "ring: released more than was published");
  atomic.store<u32>(r + RING_HEAD, ringHead(r) + n);
}

export function ringRing(r: usize): void {
  const id = load<u32>(r + RING_DOORBELL);
  if (id != 0) doorbell(id);
}

// ---- Byte rings -------------------------------------------------------------------------------

/** Byte at `offset` past the consumer's head. */
// @ts-ignore: decorator
@inline export function byteAt(r: usize, offset: u32): u8 {
  return load<u8>(r + RING_DATA + <usize>((ringHead(r) + offset) & (ringCapacity(r) - 1)));
}

/** Copies n bytes starting `offset` past the head into dst, across the wrap. */
export function byteRingRead(r: usize, offset: u32, dst: usize, n: u32): void {
  const mask = ringCapacity(r) - 1;
  const start = (ringHead(r) + offset) & mask;
  const first = min<u32>(n, mask + 1 - start);
  memory.copy(dst, r + RING_DATA + <usize>start, first);
  if (first < n) memory.copy(dst + first, r + RING_DATA, n - first);
}

/** Address and contiguous length of the bytes starting `offset` past the head (up to n). */
export function byteRingSpan(r: usize, offset: u32, n: u32): u64 {
  const mask = ringCapacity(r) - 1;
  const start = (ringHead(r) + offset) & mask;
  const len = min<u32>(n, mask + 1 - start);
  return (<u64>len << 32) | <u64>(r + RING_DATA + <usize>start);
}

/** Producer: writes n bytes at `offset` past the tail (not yet published), across the wrap. */
export function byteRingWrite(r: usize, offset: u32, src: usize, n: u32): void {
  const mask = ringCapacity(r) - 1;
  const start = (ringTail(r) + offset) & mask;
  const first = min<u32>(n, mask + 1 - start);
  memory.copy(r + RING_DATA + <usize>start, src, first);
  if (first < n) memory.copy(r + RING_DATA, src + first, n - first);
}
