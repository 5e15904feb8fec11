// The IO scheduler of document 003 ([0063]-[0065]) through the compiled firmware: registration
// with type, ID, medium, extent; selection per medium by policy; completions matched by ID.
import test from 'ava';
import * as A from '../../hal/abi';
import { Rig } from './rig';

const DISK_IOP = 1;

function rigWith(scheduler: number, queueDepth = 1) {
  const rig = new Rig({ media: [{ scheduler, queueDepth }, { scheduler: A.SCHED_FIFO }] });
  const sa = rig.fw.privateArea(DISK_IOP);
  rig.fw.testSchedInit(sa);
  return { rig, sa };
}

/** Dispatches and completes one request at a time; returns the tags in the order the medium got them. */
function serviceOrder(rig: Rig, sa: number, now = 0): number[] {
  const order: number[] = [];
  for (;;) {
    rig.fw.testSchedDispatch(sa, now);
    const entries = rig.drain(rig.mediumSq(0));
    if (entries.length === 0) return order;
    for (const e of entries) order.push(rig.fw.testSchedComplete(sa, rig.u32(e + A.MSQ_ID)));
  }
}

function register(rig: Rig, sa: number, lbas: number[], now = 0, medium = 0): void {
  lbas.forEach((lba, tag) => {
    const id = rig.fw.testSchedRegister(sa, A.MOP_READ, medium, lba, 8, tag, now);
    if (id === 0) throw new Error('pool full');
  });
}

const LBAS = [500, 100, 900, 300, 120];

test('[0064] registration order: FIFO hands requests to the medium as registered', (t) => {
  const { rig, sa } = rigWith(A.SCHED_FIFO);
  register(rig, sa, LBAS);
  t.deepEqual(serviceOrder(rig, sa), [0, 1, 2, 3, 4]);
});

test('[0064] least head movement: SSTF picks the nearest request to the head each time', (t) => {
  const { rig, sa } = rigWith(A.SCHED_SSTF);
  register(rig, sa, [400]);
  t.deepEqual(serviceOrder(rig, sa), [0]); // head now at 408
  register(rig, sa, [100, 500, 300, 900, 450]);
  // from 408: 450 (42), from 458: 500 (42), from 508: 300 (208) < 900 (392), then 100, then 900
  t.deepEqual(serviceOrder(rig, sa), [4, 1, 2, 0, 3]);
});

test('C-LOOK sweeps upward from the head, then starts over at the lowest position', (t) => {
  const { rig, sa } = rigWith(A.SCHED_CLOOK);
  register(rig, sa, [400]);
  serviceOrder(rig, sa);
  register(rig, sa, [100, 500, 300, 900, 450]);
  t.deepEqual(serviceOrder(rig, sa), [4, 1, 3, 0, 2]);
});

test('deadline: a request past its deadline goes first, otherwise C-LOOK', (t) => {
  const { rig, sa } = rigWith(A.SCHED_DEADLINE);
  // Registered at t=0 with a 50 ms read deadline; the others at t=60 ms, when it has expired.
  t.not(rig.fw.testSchedRegister(sa, A.MOP_READ, 0, 900, 8, 7, 0), 0);
  register(rig, sa, [100, 200], 60e6);
  t.deepEqual(serviceOrder(rig, sa, 60e6), [7, 0, 1]);
  // Nothing expired: plain C-LOOK from the head (after 208).
  register(rig, sa, [50, 300, 250], 70e6);
  t.deepEqual(serviceOrder(rig, sa, 70e6), [2, 1, 0]);
});

test('a medium gets at most its queue depth of requests at once; the rest wait registered', (t) => {
  const { rig, sa } = rigWith(A.SCHED_FIFO, 2);
  register(rig, sa, LBAS);
  rig.fw.testSchedDispatch(sa, 0);
  t.is(rig.drain(rig.mediumSq(0)).length, 2);
  t.is(rig.fw.testSchedInflight(sa, 0), 2);
  t.is(rig.fw.testSchedQueued(sa, 0), 3);
  rig.fw.testSchedDispatch(sa, 0);
  t.is(rig.drain(rig.mediumSq(0)).length, 0, 'nothing more until a completion');
});

test('queues are per medium: one medium busy does not hold up another', (t) => {
  const { rig, sa } = rigWith(A.SCHED_FIFO, 1);
  register(rig, sa, [10, 20]);
  register(rig, sa, [30], 0, 1);
  rig.fw.testSchedDispatch(sa, 0);
  t.is(rig.drain(rig.mediumSq(0)).length, 1);
  t.is(rig.drain(rig.mediumSq(1)).length, 1);
});

test('[0063] completions are matched by ID; unknown and stale IDs are refused', (t) => {
  const { rig, sa } = rigWith(A.SCHED_FIFO);
  const id = rig.fw.testSchedRegister(sa, A.MOP_WRITE, 0, 64, 8, 42, 0);
  rig.fw.testSchedDispatch(sa, 0);
  const [e] = rig.drain(rig.mediumSq(0));
  t.is(rig.u32(e + A.MSQ_ID), id);
  t.is(rig.view.getUint8(e + A.MSQ_OPCODE), A.MOP_WRITE);
  t.is(rig.u32(e + A.MSQ_LBA_LO), 64);
  t.is(rig.u32(e + A.MSQ_SECTORS), 8);
  t.is(rig.fw.testSchedComplete(sa, (id ^ 0x10000) >>> 0), -1, 'same slot, other generation');
  t.is(rig.fw.testSchedComplete(sa, id), 42);
  t.is(rig.fw.testSchedComplete(sa, id), -1, 'a completion is taken once');
  t.is(rig.fw.testSchedComplete(sa, 0xFFFF), -1, 'out of the pool');
});

test('a full request pool refuses registration instead of growing', (t) => {
  const { rig, sa } = rigWith(A.SCHED_FIFO);
  let registered = 0;
  while (rig.fw.testSchedRegister(sa, A.MOP_READ, 0, registered, 1, registered, 0) !== 0) registered++;
  t.is(registered, 2048);
  rig.fw.testSchedDispatch(sa, 0);
  const [e] = rig.drain(rig.mediumSq(0));
  t.is(rig.fw.testSchedComplete(sa, rig.u32(e + A.MSQ_ID)), 0);
  t.not(rig.fw.testSchedRegister(sa, A.MOP_READ, 0, 1, 1, 9999, 0), 0, 'a retired request frees its entry');
});
