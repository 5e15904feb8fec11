// Embodiment 8 of document 003 after failover, through the compiled unit (firmware/remote/snapshot.ts)
// in the test image: the restored blocks moved home so that the ordinary read path serves the volume
// (docs/remote.md, "Embodiment 8 on the link": why move home and not translate below the cache), and
// the unit's durable image (two places, a generation and a CRC-32C) that a restart of the standby
// array loads. The medium is a block array in the image's memory; physical block i is block i of it.
import test from 'ava';
import { Rig } from '../firmware/rig';

const BS = 512;
const SK_WRITE = 1, SK_FORM = 2;
// SnapUnit fields (firmware/remote/snapshot.ts), u32 each, in order.
const SN = ['magic', 'logicalBlocks', 'physicalBlocks', 'blockBytes', 'holdMax', 'holdBytes', 'processed', 'failedOver',
  'unused', 'held', 'refused', 'formed', 'restored', 'released', 'redirected', 'discarded', 'tableAt', 'unusedAt', 'holdAt',
  'homing', 'generation', 'ownerAt', 'moved'] as const;

/** A unit of `logical` blocks over `physical`, its medium filled with 0xF0 + block at layout, two image places. */
function unit(logical: number, physical: number, holdMax = 8) {
  const rig = new Rig();
  const fw = rig.fw;
  const unitBytes = fw.snapBytes(logical, physical, holdMax, 4 * BS) as number;
  const imageBytes = fw.snapImageBytes(logical, physical) as number;
  const align = (n: number) => (n + 7) & ~7;
  const total = align(unitBytes) * 2 + physical * BS + 64 * 1024 * 2 + align(imageBytes) * 2;
  const base = rig.scratch(total);
  let at = base;
  const take = (n: number) => { const p = at; at += align(n); return p; };
  const u = take(unitBytes), spare = take(unitBytes), medium = take(physical * BS), src = take(64 * 1024), log = take(64 * 1024);
  const a = take(imageBytes), b = take(imageBytes);
  if (!fw.snapLayout(u, logical, physical, BS, holdMax, 4 * BS, 0)) throw new Error('snapLayout refused');
  for (let i = 0; i < logical; i++) rig.bytes.fill(0xF0 + (i & 0x0F), medium + i * BS, medium + (i + 1) * BS);
  const field = (name: (typeof SN)[number], at = u) => fw.testSnapField(at, SN.indexOf(name) * 4) as number;
  let issuing = 0;
  /** A write of one block of byte `fill` at logical block l, in issuing-ID order, processed. */
  const write = (l: number, fill: number) => {
    const slot = fw.snapAccept(u, SK_WRITE, ++issuing, BigInt(l), 1) as number;
    if (slot < 0) return slot;
    rig.bytes.fill(fill, src, src + BS);
    if (!fw.snapDataIn(u, slot, 0, src, BS)) throw new Error('data refused');
    return fw.testSnapRun(u, medium, log) as number;
  };
  const form = () => { fw.snapAccept(u, SK_FORM, ++issuing, BigInt(0), 0); return fw.testSnapRun(u, medium, log) as number; };
  /** Byte 0 of each home position (what the ordinary read path shows after homing). */
  const homes = () => Array.from({ length: logical }, (_, i) => rig.bytes[medium + i * BS]);
  const table = (at = u) => Array.from({ length: logical }, (_, l) => [fw.snapRead(at, l) >>> 0, fw.snapSnapshot(at, l) >>> 0, fw.snapChanged(at, l) as number]);
  /** Moves home, up to max; the moves as [logical, from, to]. */
  const home = (at = u, max = 1000) => {
    const n = fw.testSnapHome(at, medium, log, max) as number;
    if (n < 0) throw new Error('snapHomeDone refused a move snapHomeNext gave');
    return Array.from({ length: n }, (_, i) => [0, 4, 8].map((o) => rig.u32(log + i * 12 + o)));
  };
  return { rig, fw, u, spare, medium, a, b, field, write, form, homes, table, home, logical, physical };
}

/** The address table of the unit at layout: every block at home, nothing changed. */
const atHome = (n: number) => Array.from({ length: n }, (_, l) => [l, l, 0]);

test('[0263] then move home: a cycle of blocks on each other\'s homes is broken through an unused block past the volume; the homes then hold the snapshot', (t) => {
  const s = unit(8, 10);
  // Unused at layout: 9, 8 (popped 8 first). 0 -> 8; form frees 0; 1 -> 0; form frees 1; 0 -> 1; form frees 8.
  t.is(s.write(0, 0xA0), 1); t.is(s.form(), 1);
  t.is(s.write(1, 0xB1), 1); t.is(s.form(), 1);
  t.is(s.write(0, 0xC0), 1); t.is(s.form(), 1);
  t.deepEqual([s.fw.snapRead(s.u, 0), s.fw.snapRead(s.u, 1)], [1, 0], 'block 0 on 1\'s home and 1 on 0\'s: a cycle');
  t.is(s.write(2, 0xD2), 1, 'a write after the last restart point');
  t.is(s.fw.snapFailover(s.u), 1, '[0263]: block 2 goes back to its snapshot');
  t.is(s.field('homing'), 1);
  const moves = s.home();
  t.true(moves.some(([, , to]) => to >= 8), 'a block went aside to an unused block past the volume');
  t.deepEqual(s.homes(), [0xC0, 0xB1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7], 'each home holds the restart point');
  t.deepEqual(s.table(), atHome(8), 'both address spaces name the home of every block');
  t.is(s.field('homing'), 0, 'homing has ended');
  t.is(s.field('unused'), 2, 'the two blocks past the volume are unused again');
  t.deepEqual(s.home(), [], 'nothing more to move');
});

/** A small PRNG (mulberry32): the same seed gives the same run. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random writes and restart points, then failover: what the homes must hold is the state at the last restart point. */
function randomRun(seed: number, logical: number, physical: number, steps: number) {
  const s = unit(logical, physical, 8);
  const rnd = prng(seed);
  const model = Array.from({ length: logical }, (_, i) => 0xF0 + (i & 0x0F));
  let snapshot = model.slice();
  let changed = 0;
  for (let k = 0; k < steps; k++) {
    if (rnd() < 0.2 || changed >= physical - logical) { s.form(); snapshot = model.slice(); changed = 0; continue; }
    const l = Math.floor(rnd() * logical);
    const fill = 1 + Math.floor(rnd() * 0xEE);
    if (s.fw.snapChanged(s.u, l) === 0) changed++;
    if (s.write(l, fill) !== 1) throw new Error(`seed ${seed}: write ${k} refused`);
    model[l] = fill;
  }
  return { s, snapshot };
}

test('[0263] then move home over random runs: the homes equal the last restart point, the table is back at layout (20 seeds)', (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const { s, snapshot } = randomRun(seed, 24, 30, 200);
    s.fw.snapFailover(s.u);
    s.home();
    t.deepEqual(s.homes(), snapshot, `seed ${seed}`);
    t.deepEqual(s.table(), atHome(24), `seed ${seed}: table`);
    t.is(s.field('unused'), 6, `seed ${seed}: unused`);
  }
});

test('a restart between moves: the saved image brings the unit back and homing goes on to the same result, whether the last copy was recorded or not', (t) => {
  for (let seed = 31; seed <= 40; seed++) {
    for (const recorded of [true, false]) {
      const { s, snapshot } = randomRun(seed, 16, 20, 120);
      s.fw.snapFailover(s.u);
      s.fw.snapSave(s.u, s.a, s.b); // the failover's state, before the first move (docs/remote.md)
      const cut = 1 + (seed % 5);
      // `cut` moves, each followed by a save; then a move whose copy is made but, unless recorded, not saved.
      for (let i = 0; i < cut; i++) { s.home(s.u, 1); s.fw.snapSave(s.u, s.a, s.b); }
      s.home(s.u, 1);
      if (recorded) s.fw.snapSave(s.u, s.a, s.b);
      // The restart: a fresh unit of the same geometry loads the image.
      t.is(s.fw.snapLayout(s.spare, 16, 20, BS, 8, 4 * BS, 0), 1);
      t.not(s.fw.snapLoad(s.spare, s.a, s.b), 0, `seed ${seed}: an image is whole`);
      t.is(s.field('failedOver', s.spare), 1);
      s.home(s.spare);
      t.deepEqual(s.homes(), snapshot, `seed ${seed}, recorded ${recorded}`);
      t.deepEqual(s.table(s.spare), atHome(16));
    }
  }
});

test('the image: the newer whole one is loaded; a torn newer one falls back to the one before; none whole loads nothing', (t) => {
  const s = unit(8, 12);
  s.write(3, 0xA3); s.form();
  const first = s.fw.snapSave(s.u, s.a, s.b) as number;
  s.write(3, 0xB3); s.write(4, 0xB4);
  const second = s.fw.snapSave(s.u, s.a, s.b) as number;
  t.not(first, second, 'saves alternate between the two places');
  const expected = s.table();
  t.is(s.fw.snapLayout(s.spare, 8, 12, BS, 8, 4 * BS, 0), 1);
  t.is(s.fw.snapLoad(s.spare, s.a, s.b), second, 'the newer');
  t.deepEqual(s.table(s.spare), expected);
  t.is(s.field('processed', s.spare), 4, 'the processed issuing ID');
  t.is(s.field('unused', s.spare), s.field('unused'));
  // A torn second save: one byte of its table differs from what its CRC covers.
  s.rig.bytes[second + 64 + 3 * 12] ^= 1;
  t.is(s.fw.snapLayout(s.spare, 8, 12, BS, 8, 4 * BS, 0), 1);
  t.is(s.fw.snapLoad(s.spare, s.a, s.b), first, 'torn: the one before');
  t.is(s.field('processed', s.spare), 2);
  t.is(s.fw.snapChanged(s.spare, 4), 0, 'block 4 written after the first image is not in it');
  s.rig.bytes[first + 20] ^= 1;
  t.is(s.fw.snapLoad(s.spare, s.a, s.b), 0, 'neither whole: nothing loaded');
  // Another geometry never passes for this one.
  s.rig.bytes[first + 20] ^= 1;
  t.is(s.fw.snapLayout(s.spare, 8, 13, BS, 8, 4 * BS, 0), 1);
  t.is(s.fw.snapLoad(s.spare, s.a, s.b), 0, 'another geometry');
});

test('snapHomeDone refuses a move the table does not allow, and changes nothing', (t) => {
  const s = unit(8, 10);
  s.write(0, 0xA0); s.form(); s.write(1, 0xB1); s.form();
  t.is(s.fw.snapHomeDone(s.u, 0, 8, 0), 0, 'not failed over: no homing');
  s.fw.snapFailover(s.u);
  const before = s.table();
  t.is(s.fw.snapHomeDone(s.u, 1, 7, 1), 0, 'block 1 is not on 7');
  t.is(s.fw.snapHomeDone(s.u, 0, 8, 0), 0, 'the target holds block 1');
  t.is(s.fw.snapHomeDone(s.u, 9, 8, 0), 0, 'no such logical block');
  t.deepEqual(s.table(), before);
});

test('snapCheck: an image whose CRC is right but whose table names a block twice, or loses one, is not loaded', (t) => {
  const s = unit(8, 12);
  s.write(3, 0xA3); s.form(); s.write(3, 0xB3);
  t.is(s.fw.snapCheck(s.u), 1, 'the unit as it runs');
  for (let k = 0; k < 20; k++) { s.write(k % 8, k); if (k % 3 === 0) s.form(); t.is(s.fw.snapCheck(s.u), 1, `after step ${k}`); }
  s.fw.snapFailover(s.u);
  t.is(s.fw.snapCheck(s.u), 1, 'after failover');
  s.home(s.u, 2);
  t.is(s.fw.snapCheck(s.u), 1, 'while homing');
  const tableAt = s.u + s.field('tableAt');
  const saved = s.rig.u32(tableAt + 12);
  s.rig.setU32(tableAt + 12, s.rig.u32(tableAt)); // block 1's latest := block 0's
  t.is(s.fw.snapCheck(s.u), 0, 'a block named twice');
  s.fw.snapSave(s.u, s.a, s.b); // a whole image of a wrong table
  t.is(s.fw.snapLayout(s.spare, 8, 12, BS, 8, 4 * BS, 0), 1);
  t.is(s.fw.snapLoad(s.spare, s.a, s.b), 0, 'not loaded');
  s.rig.setU32(tableAt + 12, saved);
  t.is(s.fw.snapCheck(s.u), 1);
  s.rig.setU32(s.u + s.field('unusedAt'), 11 + 1); // an unused block past the medium
  t.is(s.fw.snapCheck(s.u), 0, 'a block past the medium');
});

test('snapHomeBound: the moves homing takes never pass the bound computed at failover (20 seeds)', (t) => {
  let tight = 0;
  for (let seed = 101; seed <= 120; seed++) {
    const { s } = randomRun(seed, 24, 30, 200);
    t.is(s.fw.snapHomeBound(s.u), 0, 'not homing: nothing to move');
    s.fw.snapFailover(s.u);
    const bound = s.fw.snapHomeBound(s.u) as number;
    const moves = s.home().length;
    t.true(moves <= bound, `seed ${seed}: ${moves} moves, bound ${bound}`);
    if (moves === bound) tight++;
  }
  t.log(`bound reached in ${tight} of 20 runs`);
});

test('S587: snapRuns cuts a write\'s physical blocks into runs of consecutive blocks', (t) => {
  const s = unit(16, 24);
  const map = s.a, out = s.b;
  const put = (blocks: number[]) => blocks.forEach((b, i) => s.rig.setU32(map + i * 4, b));
  const runs = (n: number) => {
    const k = s.fw.snapRuns(map, n, out) as number;
    return Array.from({ length: k }, (_, i) => [0, 4, 8].map((o) => s.rig.u32(out + i * 12 + o)));
  };
  put([16, 17, 18, 3, 4, 20]);
  t.deepEqual(runs(6), [[16, 0, 3], [3, 3, 2], [20, 5, 1]]);
  put([7]);
  t.deepEqual(runs(1), [[7, 0, 1]]);
  t.deepEqual(runs(0), []);
  // Through the unit: a first write of 4 blocks after a restart point takes 4 consecutive unused blocks (one run).
  const slot = s.fw.snapAccept(s.u, SK_WRITE, 1, BigInt(5), 4) as number;
  t.true(slot >= 0);
  t.is(s.fw.snapDataIn(s.u, slot, 0, s.medium, 4 * BS), 1);
  t.is(s.fw.testSnapRun(s.u, s.medium, s.b), 1);
  put([5, 6, 7, 8].map((l) => s.fw.snapRead(s.u, l) >>> 0));
  t.deepEqual(runs(4), [[16, 0, 4]]);
});
