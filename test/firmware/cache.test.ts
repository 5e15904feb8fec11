// The cache of document 001 through the compiled firmware: slots, directory, clean and dirty
// lists, write-back bits, destage bookkeeping and recovery from the NV image.
import test from 'ava';
import * as A from '../../hal/abi';
import { Rig } from './rig';

const LIST_FREE = 0;
const LIST_CLEAN = 1;
const LIST_DIRTY = 2;
const F_STAGING = 1;
const F_DESTAGING = 2;
const F_WRITE_ERROR = 8;
const SLOTS = 16;

function booted(slots = SLOTS) {
  const rig = new Rig({ slots });
  t0(rig.fw.boot(A.ROLE_CHANNEL, 0));
  const src = rig.scratch(A.SLOT_BYTES + 4096);
  const image = src + A.SLOT_BYTES;
  return { rig, fw: rig.fw, src, image };
}
function t0(code: number): void { if (code !== 0) throw new Error(`boot failed: ${code}`); }

function listOf(fw: Rig['fw'], list: number): number[] {
  const out: number[] = [];
  for (let i = fw.testListFirst(list); i >= 0; i = fw.testListNext(i)) out.push(fw.testSlotNumber(i));
  return out;
}

test('allocation takes free slots first, then evicts the least recently used clean slot', (t) => {
  const { fw } = booted();
  for (let n = 0; n < SLOTS; n++) t.truthy(fw.testAllocate(1, n) >= 0);
  t.is(fw.testListCount(LIST_FREE), 0);
  fw.testTouch(fw.testLookup(1, 0)); // slot 0 becomes most recently used
  const s = fw.testAllocate(1, 100);
  t.true(s >= 0);
  t.is(fw.testLookup(1, 1), -1, 'slot number 1 was the least recently used');
  t.truthy(fw.testLookup(1, 0) >= 0);
  t.is(fw.testLookup(1, 100), s);
  t.deepEqual(listOf(fw, LIST_CLEAN).slice(-2), [0, 100]);
});

test('pinned, staging and dirty slots are never evicted; with none evictable allocation fails', (t) => {
  const { fw, src, image } = booted();
  const slots = Array.from({ length: SLOTS }, (_, n) => fw.testAllocate(2, n));
  fw.testPin(slots[0]);
  fw.testSetFlags(slots[1], F_STAGING);
  for (let i = 2; i < SLOTS; i++) fw.testWrite(slots[i], 0, 1, src, 0, image);
  t.is(fw.testAllocate(2, 99), -1, 'nothing evictable: the caller waits for a destage');
  fw.testUnpin(slots[0]);
  t.is(fw.testAllocate(2, 98), slots[0], 'unpinned, it can go');
  fw.testClearFlags(slots[1], F_STAGING);
  t.is(fw.testAllocate(2, 97), slots[1], 'its stage over, it can go');
  t.is(fw.testAllocate(2, 96), slots[0], 'the least recently used of the clean ones');
  t.is(fw.testLookup(2, 98), -1);
});

test('writes mark sectors valid and dirty; the dirty list keeps the order in which slots became dirty', (t) => {
  const { fw, src, image } = booted();
  const a = fw.testAllocate(3, 10);
  const b = fw.testAllocate(3, 11);
  t.falsy(fw.testValid(a, 0, 8));
  fw.testWrite(b, 8, 8, src, 0, image);
  fw.testWrite(a, 0, 8, src, 0, image);
  t.truthy(fw.testValid(a, 0, 8));
  t.falsy(fw.testValid(a, 0, 9));
  t.is(fw.testMissingRun(a, 0, 32), (8 << 16) | 24, 'the invalid run inside the range');
  t.deepEqual(listOf(fw, LIST_DIRTY), [11, 10]);
  const seqB = fw.testDirtySeq(b);
  fw.testWrite(b, 0, 8, src, 0, image); // b again: it keeps its place and its first-dirty sequence
  t.deepEqual(listOf(fw, LIST_DIRTY), [11, 10]);
  t.is(fw.testDirtySeq(b), seqB);
  t.truthy(fw.testDirtySeq(a) > seqB);
});

test('destage: dirty runs become destaging; success cleans the slot unless it was written meanwhile', (t) => {
  const { fw, src, image } = booted();
  const a = fw.testAllocate(4, 0);
  fw.testWrite(a, 0, 4, src, 0, image);
  fw.testWrite(a, 10, 2, src, 0, image);
  t.truthy(fw.testDestageBegin(a));
  t.is(fw.testSlotFlags(a) & F_DESTAGING, F_DESTAGING);
  t.is(fw.testDestagingRun(a, 0), (0 << 16) | 4);
  t.is(fw.testDestagingRun(a, 4), (10 << 16) | 2);
  t.is(fw.testDestagingRun(a, 12), 0);
  t.truthy(fw.testDestageDone(a, true, image), 'nothing written meanwhile: clean');
  t.deepEqual(listOf(fw, LIST_DIRTY), []);
  t.truthy(fw.testValid(a, 0, 4), 'data stays valid in cache');

  fw.testWrite(a, 0, 1, src, 0, image);
  fw.testDestageBegin(a);
  fw.testWrite(a, 0, 1, src, 0, image); // a host write lands while the medium write is in flight
  t.falsy(fw.testDestageDone(a, true, image), 'written during the destage: still dirty');
  t.deepEqual(listOf(fw, LIST_DIRTY), [0]);
});

test('a failed destage leaves the data dirty for a retry, and a flush waiting on it sees the error', (t) => {
  const { fw, src, image } = booted();
  const a = fw.testAllocate(5, 7);
  fw.testWrite(a, 0, 8, src, 0, image);
  const seq = fw.testCurrentSeq();
  t.is(fw.testDirtyAtOrBefore(5, 0, 100, seq), 1, 'dirty');
  t.is(fw.testDirtyAtOrBefore(5, 8, 100, seq), 0, 'outside the range');
  t.is(fw.testDirtyAtOrBefore(6, 0, 100, seq), 0, 'another volume');
  t.is(fw.testDirtyAtOrBefore(5, 0, 100, seq - 1), 0, 'dirtied after that sequence');
  fw.testDestageBegin(a);
  // The disk IOP marks the failure, then ends the destage as failed.
  fw.testDestageDone(a, false, image);
  t.deepEqual(listOf(fw, LIST_DIRTY), [7]);
  t.truthy(fw.testValid(a, 0, 8));
  t.is(fw.testSlotFlags(a) & F_DESTAGING, 0);
  t.is(fw.testSlotFlags(a) & F_STAGING, 0);
  t.is(fw.testSlotFlags(a) & F_WRITE_ERROR, 0, 'the flag is the disk IOP\'s to set');
});

test('recovery rebuilds the dirty list, in write order, from the descriptors persisted in NV', (t) => {
  const { rig, fw, src, image } = booted();
  const order = [3, 1, 2, 0];
  for (const n of order) fw.testWrite(fw.testAllocate(9, n), n, 2, src, 0, image);
  const x = fw.testAllocate(9, 50);
  fw.testWrite(x, 0, 1, src, 0, image);
  fw.testDestageBegin(x);
  fw.testDestageDone(x, true, image); // clean again: must not come back dirty
  // Apply the NV ring to the NV region, as the NV file would be after a crash, then recover.
  const nv = rig.map(A.MAP_NV_ADDR);
  const file = Buffer.alloc(rig.map(A.MAP_NV_BYTES));
  for (const e of rig.drain(rig.map(A.MAP_NV_SQ))) {
    const op = rig.view.getUint8(e + A.NSQ_OP);
    const addr = rig.u32(e + A.NSQ_ADDR);
    const len = rig.u32(e + A.NSQ_LENGTH);
    const from = op === A.NOP_INLINE ? e + A.NSQ_INLINE : addr;
    Buffer.from(rig.memory.buffer, from, len).copy(file, addr - nv);
  }
  rig.bytes.set(file, nv);
  fw.testVolumeInUse(9);
  const recovered = fw.testRecover(rig.scratch(4 * SLOTS));
  t.is(recovered, 4);
  t.deepEqual(listOf(fw, LIST_DIRTY), order);
  t.is(fw.testLookup(9, 50), -1, 'a clean slot is not recovered');
  const s = fw.testLookup(9, 1);
  t.truthy(fw.testValid(s, 1, 2));
  t.falsy(fw.testValid(s, 0, 1), 'only the dirty sectors are known valid after a crash');
});

test('a stage never reads over dirty or destaging sectors: the missing run stops before them', (t) => {
  const { fw, src, image } = booted();
  const s = fw.testAllocate(4, 0);
  const run = (first: number, count: number) => { const r = fw.testMissingRun(s, first, count); return [r >>> 16, r & 0xffff]; };
  t.deepEqual(run(0, 128), [0, 128], 'an empty slot is one run');
  fw.testStageDone(s, 30, 10, true); // sectors 30-39 valid and clean: the medium holds the same bytes
  t.deepEqual(run(0, 128), [0, 128], 'clean valid sectors ride along');
  fw.testWrite(s, 80, 25, src, 0, image); // sectors 80-104 valid and dirty
  t.deepEqual(run(0, 128), [0, 80], 'the run stops before the dirty sectors');
  t.deepEqual(run(80, 48), [105, 23], 'beyond them, the next run');
  fw.testDestageBegin(s); // dirty sectors become destaging: still newer than the medium
  t.deepEqual(run(60, 68), [60, 20]);
  fw.testStageDone(s, 0, 80, true);
  fw.testStageDone(s, 105, 23, true);
  t.is(fw.testMissingRun(s, 0, 128), 0, 'all valid: nothing to stage');
});

// A copy engine that found no slot asks the cache to keep the next one for it (slotForCopy); an
// allocation then holds a slot (pinned, out of the lists hosts take from). When every copy ended
// before asking again, the copy manager's poll cancels the wish: the kept slot is free again.
test('a slot kept for a copy that ended goes back to the free list (slotForCopyCancel)', (t) => {
  const { fw } = booted();
  for (let n = 0; n < SLOTS; n++) t.truthy(fw.testAllocate(1, n) >= 0);
  t.is(fw.testSlotForCopy(2, 0), -1, 'nothing kept yet: the copy waits and the wish is recorded');
  t.truthy(fw.testAllocate(1, 100) >= 0, 'a host allocation still finds a slot');
  t.is(fw.testListCount(LIST_FREE) + fw.testListCount(LIST_CLEAN) + fw.testListCount(LIST_DIRTY), SLOTS - 1, 'one slot is kept for the copy');
  fw.testSlotForCopyCancel();
  t.is(fw.testListCount(LIST_FREE), 1, 'the kept slot is free again');
  t.is(fw.testListCount(LIST_FREE) + fw.testListCount(LIST_CLEAN) + fw.testListCount(LIST_DIRTY), SLOTS);
  t.is(fw.testSlotForCopy(2, 0), -1, 'a later copy asks afresh');
});
