// Document 003, embodiment 5 (Figs. 13-17): redundancy-processed writes through the firmware's
// redundancy unit (remote/redundancy.ts in build/testing.debug.wasm) at both storage units, over
// the link model (hal/link.ts) on the virtual clock. A block is N = 8 data parts + m = 2 RS parity
// parts, each its own packet; the receiver rebuilds from the first 8 and drops the rest.
import test from 'ava';
import * as A from '../../hal/abi';
import { crc32c } from '../../lib/protocol';
import { buildRdNet, copyVolume } from './rdnode';
import { pattern } from './net';

const KB = 1024;
const BLOCK = 64 * KB; // 8 parts of 8 KiB
const link = (name: string, extra: object = {}) => ({ name, a: 'origin', b: 'remote', km: 100, bandwidthMbps: 1000, ...extra });
const done = (o: { completions: unknown[] }, n = 1) => () => o.completions.length >= n;

test('S301-S306 / S320-S327: one block as 8 + 2 parts over two networks (Fig. 17); rebuilt from the first 8, the 2 surplus parts dropped, GOOD', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('net13'), link('net14')] });
  const data = pattern(BLOCK, 5);
  origin.write(1, 77, data);
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, 0, 'RECEIVED GOOD (S306)');
  t.deepEqual(remote.blocks.get(77), data, 'S327: the block the receiver stored is the one sent');
  const s = origin.stats();
  const r = remote.stats();
  t.is(s.partsSent, 10, 'S305: N + m = 10 part packets');
  t.is(s.partsResent, 0);
  t.is(r.rebuilt, 0, 'all 8 data parts came: nothing to compute (S325)');
  t.is(r.surplus, 2, 'the parts after the 8th are dropped ([0136])');
  t.true(net.link('net13').counters.sent > 0 && net.link('net14').counters.sent > 0, 'both networks carried parts');
});

test('Fig. 17 [0141]: one of two networks fails — the command goes on by the other: the WRITE and READY copies (sent on both) need no repeat, the lacking parts are asked for and come by the network that works', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('net13'), link('net14')] });
  net.inject('link net13 down'); // the network the first WRITE starts on; it carried parts 0, 2, 4, 6, 8
  const data = pattern(BLOCK, 12);
  origin.write(1, 5, data);
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, 0);
  t.deepEqual(remote.blocks.get(5), data);
  t.is(origin.stats().repeats, 0, 'the WRITE went by net14 at once');
  t.true(remote.stats().resendRequests >= 1, '5 parts lost is more than m: asked for');
});

test('copies of control packets are dropped by their number: with no loss, one READY acted on and no part sent twice', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a'), link('b'), link('c')] });
  origin.write(1, 6, pattern(BLOCK, 13));
  net.run(1e12, done(origin));
  t.is(remote.stats().commands, 1);
  t.is(remote.stats().duplicates, 2, 'two WRITE copies dropped');
  t.is(origin.stats().duplicates, 2, 'two READY copies dropped');
  t.is(origin.stats().partsResent, 0);
});

test('S324-S325: up to m parts lost (one of five networks cut) — rebuilt from the rest, no retransmission', (t) => {
  const links = [0, 1, 2, 3, 4].map((i) => link(`n${i}`));
  const { net, origin, remote } = buildRdNet({ links });
  net.inject('link n4 down'); // carries parts 4 and 9 (part k on link k mod 5): data part 4 and a parity part
  const data = pattern(BLOCK, 6);
  origin.write(1, 3, data);
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, 0);
  t.deepEqual(remote.blocks.get(3), data, 'data part 4 rebuilt from the others and a parity part');
  const r = remote.stats();
  t.is(r.rebuilt, 1, 'S325 computed the missing data part');
  t.is(r.resendRequests, 0, 'no retransmission request');
  t.is(origin.stats().partsResent, 0, 'nothing sent twice');
  t.is(origin.stats().repeats, 0);
});

test('more than m parts lost (two of four networks cut): the receiver asks, after its timeout, for the parts it lacks, naming them; they come by other networks', (t) => {
  const links = [0, 1, 2, 3].map((i) => link(`n${i}`));
  const { net, origin, remote } = buildRdNet({ links, timeoutUs: 5000 });
  net.inject('link n2 down');
  net.inject('link n3 down'); // parts 2, 3, 6, 7 lost: 6 of 10 arrive, 2 short of N
  const data = pattern(BLOCK, 7);
  origin.write(1, 9, data);
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, 0);
  t.deepEqual(remote.blocks.get(9), data);
  const r = remote.stats();
  const s = origin.stats();
  t.true(r.resendRequests >= 1, 'a retransmission request was sent');
  t.true(s.partsResent >= 2 && s.partsResent <= 4, `only the lacking parts were sent again (${s.partsResent})`);
  t.is(r.rebuilt, 1);
});

test('duplicates are dropped by command identifier: every packet doubled, one command taken in, the block whole', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a', { duplicate: 1 }), link('b', { duplicate: 1 })] });
  const data = pattern(BLOCK, 8);
  origin.write(1, 1, data);
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, 0);
  t.deepEqual(remote.blocks.get(1), data);
  const r = remote.stats();
  t.is(r.commands, 1, 'the repeated WRITE did not start a second command');
  t.true(r.duplicates >= 1, 'a repeated WRITE or part was counted as a duplicate');
  t.is(origin.stats().done, 1, 'one GOOD, not two');
});

test('a remote copy at 5 % loss on both networks: every block arrives whole; the same seed gives the same run', (t) => {
  const run = (seed: number) => {
    const { net, origin, remote } = buildRdNet({ links: [link('a', { loss: 0.05, reorder: 0.05, jitterUs: 20 }), link('b', { loss: 0.05 })], seed });
    const blocks = 40;
    const { completions } = copyVolume(net, origin, blocks, (b) => pattern(BLOCK, b + 1));
    return { net, origin, remote, blocks, completions };
  };
  const a = run(11);
  t.true(a.completions.every((c) => c.status === 0), 'every block GOOD');
  for (let b = 0; b < a.blocks; b++) t.deepEqual(a.remote.blocks.get(b), pattern(BLOCK, b + 1), `block ${b}`);
  t.true(a.net.links.some((l) => l.counters.lost > 0), 'packets were lost');
  t.true(a.remote.stats().rebuilt > 0, 'some blocks were rebuilt from parity');
  const b = run(11);
  t.deepEqual(b.completions, a.completions, 'same seed, same completions at the same virtual times');
});

test('identities kept to answer repeats do not starve new commands: 24 blocks, 2 in flight, through 4 slots', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a'), link('b')], slots: 4, timeoutUs: 2000, retries: 3 });
  const { completions } = copyVolume(net, origin, 24, (b) => pattern(BLOCK, b + 100), 2);
  t.true(completions.every((c) => c.status === 0), 'every block GOOD');
  t.is(remote.blocks.size, 24);
  t.is(remote.stats().noBuffer, 0, 'no WRITE went unanswered for lack of a slot');
});

test('GOOD only for a block that is kept: a failed store makes RECEIVED carry its CHECK CONDITION to the sender', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a')] });
  remote.storeStatus = (0x02 << 24) | (0x03 << 16) | (0x0C << 8); // MEDIUM ERROR, WRITE ERROR
  origin.write(1, 2, pattern(BLOCK, 2));
  net.run(1e12, done(origin));
  t.is(origin.completions[0].status, remote.storeStatus >>> 0);
  t.is(origin.stats().done, 0);
  t.is(origin.stats().failed, 1);
});

test('every wait is bounded: with every network cut the sender repeats its WRITE on each network, then gives up with LOGICAL UNIT COMMUNICATION TIMEOUT', (t) => {
  const { net, origin } = buildRdNet({ links: [link('a'), link('b')], timeoutUs: 2000, retries: 3 });
  net.inject('partition remote');
  origin.write(1, 0, pattern(BLOCK, 3));
  net.run(1e12, done(origin));
  const c = origin.completions[0];
  t.is(c.status, (0x02 << 24 | 0x0B << 16 | 0x08 << 8 | 0x01) >>> 0, 'CHECK CONDITION, ABORTED COMMAND, 0Bh/08h/01h');
  t.true(c.at <= 2e6 * 4 + 1e6, `given up within timeout x (retries + 1) (${c.at / 1e6} ms)`);
  t.is(origin.stats().repeats, 3);
  t.true(net.link('a').counters.cut > 0 && net.link('b').counters.cut > 0, 'the repeats tried both networks');
});

test('the receiver gives up a command whose parts stop coming, after its retries, and frees its buffer', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a'), link('b')], timeoutUs: 2000, retries: 2 });
  origin.write(1, 0, pattern(BLOCK, 4));
  // Cut both networks once the receiver has said READY (S321), before the parts arrive.
  net.run(1e12, () => remote.stats().commands === 1);
  net.inject('partition remote');
  net.run(100e6); // until no timer is left on either side
  t.is(remote.stats().givenUp, 1);
  t.is(origin.completions[0].status, (0x02 << 24 | 0x0B << 16 | 0x08 << 8 | 0x01) >>> 0, 'the sender gave up too');
  t.false(remote.busy, 'no command held');
  t.is(remote.blocks.size, 0, 'nothing stored from an incomplete block');
});

function packet(f: { type: number; flags: number; cmdId: number; offset: number; total: number; length?: number }, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const p = Buffer.alloc(A.LINK_HEADER_BYTES + payload.length);
  p.writeUInt16LE(A.LPK_MAGIC_VALUE, A.LPK_MAGIC);
  p[A.LPK_TYPE] = f.type;
  p[A.LPK_FLAGS] = f.flags;
  p.writeUInt16LE(0, A.LPK_SRC_NODE);
  p.writeUInt16LE(1, A.LPK_DST_NODE);
  p.writeUInt16LE(f.length ?? payload.length, A.LPK_LENGTH);
  p.writeUInt32LE(f.cmdId, A.LPK_CMD_ID);
  p.writeUInt32LE(f.offset, A.LPK_OFFSET);
  p.writeUInt32LE(f.total, A.LPK_TOTAL);
  p.set(payload, A.LINK_HEADER_BYTES);
  p.writeUInt32LE(crc32c(p), A.LPK_CRC);
  return p;
}

test('bad input is counted and dropped, and loses nothing: a garbled part, a part index out of range, a part of the wrong size, a WRITE of too many parts, a packet without the redundancy flag', (t) => {
  const { net, origin, remote } = buildRdNet({ links: [link('a')] });
  const R = A.LF_REDUNDANT;
  remote.inject(0, packet({ type: A.LT_WRITE, flags: R, cmdId: 900, offset: 30 | (8 << 8), total: BLOCK })); // N + m = 38 > 32
  remote.inject(0, packet({ type: A.LT_WRITE, flags: 0, cmdId: 901, offset: 8 | (2 << 8), total: BLOCK })); // no LF_REDUNDANT
  net.run(1e9);
  t.is(remote.stats().bad, 2);
  t.is(remote.stats().commands, 0, 'neither was taken in');
  // A real command: WRITE 902 taken in, then bad parts for it.
  remote.inject(0, packet({ type: A.LT_WRITE, flags: R, cmdId: 902, offset: 8 | (2 << 8), total: BLOCK }));
  net.run(1e9, () => remote.stats().commands === 1);
  const part = pattern(8 * KB, 1);
  const garbled = packet({ type: A.LT_DATA, flags: R, cmdId: 902, offset: 0 | (8 << 8) | (2 << 16), total: BLOCK }, part);
  garbled[A.LINK_HEADER_BYTES + 5] ^= 1;
  remote.inject(0, garbled);
  remote.inject(0, packet({ type: A.LT_DATA, flags: R, cmdId: 902, offset: 12 | (8 << 8) | (2 << 16), total: BLOCK }, part)); // part 12 of 10
  remote.inject(0, packet({ type: A.LT_DATA, flags: R, cmdId: 902, offset: 1 | (8 << 8) | (2 << 16), total: BLOCK }, part.subarray(0, 4096))); // half a part
  net.run(net.now() + 1000);
  t.is(remote.stats().bad, 5, 'CRC, index and size each counted');
  t.is(remote.blocks.size, 0);
  // The unit still works: a real block from the sender arrives whole.
  const data = pattern(BLOCK, 9);
  origin.write(1, 4, data);
  net.run(1e12, done(origin));
  t.deepEqual(remote.blocks.get(4), data);
});
