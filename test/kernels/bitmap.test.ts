import test from 'ava';
import fc from 'fast-check';
import { Worker } from 'worker_threads';
import * as path from 'path';
import { Bitmap, codes } from '../../lib/kernels';
import { kernels, memoryEnd, scoped } from './helpers';
import { BitArray } from './reference';

type Op =
  | { kind: 'set' | 'clear' | 'atomicSetRange' | 'atomicClearRange'; start: number; count: number }
  | { kind: 'atomicSet' | 'atomicClear'; bit: number };

function opArb(nbits: number): fc.Arbitrary<Op> {
  const range = fc.integer({ min: 0, max: nbits }).chain((start) => fc.integer({ min: 0, max: nbits - start }).map((count) => ({ start, count })));
  const bit = fc.integer({ min: 0, max: Math.max(0, nbits - 1) });
  const ranged = fc.tuple(fc.constantFrom('set', 'clear', 'atomicSetRange', 'atomicClearRange') as fc.Arbitrary<'set'>, range).map(([kind, r]) => ({ kind, ...r }) as Op);
  if (nbits === 0) return ranged;
  const single = fc.tuple(fc.constantFrom('atomicSet', 'atomicClear') as fc.Arbitrary<'atomicSet'>, bit).map(([kind, b]) => ({ kind, bit: b }) as Op);
  return fc.oneof(ranged, single);
}

function apply(bm: Bitmap, model: BitArray, op: Op): boolean {
  switch (op.kind) {
    case 'set': bm.setRange(op.start, op.count); model.fill(op.start, op.count, true); return true;
    case 'clear': bm.clearRange(op.start, op.count); model.fill(op.start, op.count, false); return true;
    case 'atomicSetRange': bm.atomicSetRange(op.start, op.count); model.fill(op.start, op.count, true); return true;
    case 'atomicClearRange': bm.atomicClearRange(op.start, op.count); model.fill(op.start, op.count, false); return true;
    case 'atomicSet': { const was = bm.atomicSet(op.bit); const ok = was === model.bits[op.bit]; model.bits[op.bit] = true; return ok; }
    case 'atomicClear': { const was = bm.atomicClear(op.bit); const ok = was === model.bits[op.bit]; model.bits[op.bit] = false; return ok; }
  }
}

const nbitsArb = fc.oneof(fc.constantFrom(0, 1, 63, 64, 65, 127, 128, 129, 512, 1000), fc.integer({ min: 0, max: 1500 }));

test('set/clear (plain and atomic) follow the boolean model; padding bits stay untouched', (t) => {
  fc.assert(
    fc.property(nbitsArb.chain((n) => fc.tuple(fc.constant(n), fc.array(opArb(n), { maxLength: 25 }))), ([nbits, ops]) => scoped(() => {
      const bm = kernels.bitmap(nbits);
      const words = bm.bytes();
      // Set the padding bits of the last word: no kernel may change them.
      if (nbits % 64) for (let i = nbits; i < words.length * 8; i++) words[i >> 3] |= 1 << (i & 7);
      const model = new BitArray(nbits);
      for (const op of ops) if (!apply(bm, model, op)) return false;
      const now = bm.bytes();
      for (let i = 0; i < nbits; i++) if (((now[i >> 3] >> (i & 7)) & 1) !== +model.bits[i]) return false;
      for (let i = nbits; i < now.length * 8; i++) if (((now[i >> 3] >> (i & 7)) & 1) !== 1) return false;
      return true;
    })),
    { numRuns: 300 },
  );
  t.pass();
});

function randomBitmap(nbits: number, density: number, seed: number): BitArray {
  const model = new BitArray(nbits);
  let x = seed + 1;
  for (let i = 0; i < nbits; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    // Runs as well as scattered bits: flip with a low probability so runs form at high density.
    model.bits[i] = x / 2 ** 32 < density;
  }
  return model;
}

function load(model: BitArray): Bitmap {
  const bm = kernels.bitmap(model.nbits);
  bm.bytes().set(model.toWords());
  return bm;
}

const densityArb = fc.constantFrom(0, 0.001, 0.02, 0.5, 0.98, 1);

test('count, find-next-set/clear, any/all, test match the model at random ranges', (t) => {
  fc.assert(
    fc.property(nbitsArb, densityArb, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }), (nbits, density, seed, probes) => scoped(() => {
      const model = randomBitmap(nbits, density, seed);
      const bm = load(model);
      for (const [a, b] of probes) {
        const start = a % (nbits + 1), count = b % (nbits - start + 1);
        if (bm.count(start, count) !== model.count(start, count)) return false;
        if (bm.findNextSet(start) !== model.findNext(start, true)) return false;
        if (bm.findNextClear(start) !== model.findNext(start, false)) return false;
        if (bm.anySet(start, count) !== model.count(start, count) > 0) return false;
        if (bm.allSet(start, count) !== (model.count(start, count) === count)) return false;
        if (start < nbits && bm.test(start) !== model.bits[start]) return false;
      }
      return bm.count() === model.count(0, nbits);
    })),
    { numRuns: 300 },
  );
  t.pass();
});

test('runs: nextRun and collected runs (any batch size) equal the model runs', (t) => {
  fc.assert(
    fc.property(nbitsArb, densityArb, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 7 }), (nbits, density, seed, fromSeed, batch) => scoped(() => {
      const model = randomBitmap(nbits, density, seed);
      const bm = load(model);
      const from = fromSeed % (nbits + 1);
      const expected = model.runs(from);
      const collected = [...bm.runs(from, batch)];
      const stepped = [];
      for (let r = bm.nextRun(from); r; r = bm.nextRun(r.start + r.length)) stepped.push(r);
      return JSON.stringify(collected) === JSON.stringify(expected) && JSON.stringify(stepped) === JSON.stringify(expected);
    })),
    { numRuns: 300 },
  );
  t.pass();
});

test('long runs and long gaps: runs over many words, find across 64-byte blocks', (t) => {
  scoped(() => {
    const bm = kernels.bitmap(100_000);
    bm.setRange(70, 20_000);
    bm.setRange(50_001, 1);
    bm.setRange(99_990, 10);
    t.deepEqual([...bm.runs()], [{ start: 70, length: 20_000 }, { start: 50_001, length: 1 }, { start: 99_990, length: 10 }]);
    t.is(bm.findNextSet(20_070), 50_001);
    t.is(bm.findNextClear(70), 20_070);
    t.is(bm.findNextClear(99_990), -1);
    t.is(bm.count(), 20_011);
    t.is(bm.count(71, 19_998), 19_998);
    bm.clearRange(0, 100_000);
    t.is(bm.findNextSet(0), -1);
    t.is(bm.nextRun(0), null);
  });
});

test('union, intersection and and-not match the model, in place and into a third bitmap', (t) => {
  fc.assert(
    fc.property(nbitsArb, densityArb, densityArb, fc.nat(), fc.constantFrom('or', 'and', 'andNot'), fc.constantFrom('a', 'b', 'fresh'),
      (nbits, da, db, seed, op, into) => scoped(() => {
        const ma = randomBitmap(nbits, da, seed), mb = randomBitmap(nbits, db, seed + 7);
        const a = load(ma), b = load(mb);
        const dst = into === 'a' ? a : into === 'b' ? b : kernels.bitmap(nbits);
        if (op === 'or') a.or(b, dst); else if (op === 'and') a.and(b, dst); else a.andNot(b, dst);
        const want = new BitArray(nbits);
        want.bits.forEach((_, i) => {
          want.bits[i] = op === 'or' ? ma.bits[i] || mb.bits[i] : op === 'and' ? ma.bits[i] && mb.bits[i] : ma.bits[i] && !mb.bits[i];
        });
        const got = BitArray.fromWords(dst.bytes(), nbits);
        return got.bits.every((v, i) => v === want.bits[i]);
      })),
    { numRuns: 300 },
  );
  t.pass();
});

test('raw exports: alignment, bounds, ranges (with u64 overflow) and overlaps return codes', (t) => {
  scoped(() => {
    const raw = kernels.raw;
    const bm = kernels.bitmap(1000);
    const n = 1000n, p = bm.ptr;
    t.is(raw.bitmapSetRange(p + 4, n, 0n, 1n), codes.KERR_ALIGN);
    t.is(raw.bitmapSetRange(p, n, 990n, 11n), codes.KERR_RANGE);
    t.is(raw.bitmapSetRange(p, n, 1n, 2n ** 64n - 1n), codes.KERR_RANGE, 'start + count wraps u64');
    t.is(raw.bitmapClearRange(p, n, 1001n, 0n), codes.KERR_RANGE);
    t.is(raw.bitmapAtomicSet(p, n, 1000n), codes.KERR_RANGE);
    t.is(raw.bitmapAtomicClear(p, n, 2n ** 63n), codes.KERR_RANGE);
    t.is(raw.bitmapTest(p, n, 1000n), codes.KERR_RANGE);
    t.is(Number(raw.bitmapFindNextSet(p, n, 1001n)), codes.KERR_RANGE);
    t.is(Number(raw.bitmapFindNextSet(p, n, 1000n)), 1000, 'from = nbits: none');
    t.is(Number(raw.bitmapCount(p, n, 0n, 1001n)), codes.KERR_RANGE);
    t.is(raw.bitmapSetRange(p, 2n ** 32n + 1n, 0n, 1n), codes.KERR_RANGE, 'more than 2^32 bits');
    t.is(raw.bitmapSetRange(p, 2n ** 32n, 0n, 1n), codes.KERR_BOUNDS, 'a 512 MiB bitmap does not fit here');
    t.is(raw.bitmapSetRange(memoryEnd() - 64, n, 0n, 1n), codes.KERR_BOUNDS);
    t.is(raw.bitmapSetRange(0, n, 0n, 1n), codes.KERR_BOUNDS, 'a bitmap over the static data');
    const out = kernels.arena.alloc(64, 8);
    t.is(raw.bitmapCollectRuns(p, n, 0n, out, -1), codes.KERR_COUNT);
    t.is(raw.bitmapCollectRuns(p, n, 0n, memoryEnd() - 8, 1), codes.KERR_BOUNDS);
    t.is(raw.bitmapNextRun(p, n, 0n, p + 8), codes.KERR_OVERLAP, 'out area inside the bitmap');
    const other = kernels.bitmap(1000);
    t.is(raw.bitmapOr(p + 8, p, other.ptr, n), codes.KERR_OVERLAP, 'dst partly over a');
    t.is(raw.bitmapAnd(other.ptr, p, other.ptr + 8, n), codes.KERR_OVERLAP, 'dst partly over b');
    t.is(raw.bitmapAndNot(other.ptr, p, other.ptr, n), codes.KERR_OK, 'dst = b is in place');
    t.is(bm.count(), 0, 'nothing was written by the refused calls');
  });
});

test('wrapper: bad positions and sizes throw RangeErrors naming the kernel', (t) => {
  scoped(() => {
    const bm = kernels.bitmap(100);
    t.throws(() => bm.setRange(90, 11), { instanceOf: RangeError, message: /bitmapSetRange: the bit position or range lies beyond the bitmap \(bitmap of 100 bits/ });
    t.throws(() => bm.test(100), { instanceOf: RangeError, message: /bitmapTest/ });
    t.throws(() => bm.findNextSet(-1), { instanceOf: RangeError, message: /non-negative integers/ });
    t.throws(() => bm.or(kernels.bitmap(101)), { instanceOf: RangeError, message: /differ in size/ });
    t.throws(() => kernels.bitmapAt(bm.ptr + 1, 8).setRange(0), { instanceOf: RangeError, message: /not 8-byte aligned/ });
    t.throws(() => kernels.bitmap(2 ** 32 + 1), { instanceOf: RangeError });
  });
});

// A channel IOP marks while a disk IOP scans and claims: several threads set the interleaved bits
// of the same words with bitmapAtomicSet while this thread claims set bits with
// bitmapAtomicClear. Every mark must be claimed exactly once: a lost update would lose a mark,
// and a non-atomic claim could claim one twice.
test('atomic set and claim from several threads over one shared memory lose no mark', async (t) => {
  const NBITS = 1 << 14, WORKERS = 3;
  const bm = kernels.bitmap(NBITS);
  const wasmPath = path.resolve(__dirname, '..', '..', 'build', 'kernels.wasm');
  const source = `
    const { workerData, parentPort } = require('worker_threads');
    const fs = require('fs');
    const { memory, wasmPath, ptr, nbits, id, workers } = workerData;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), { env: { memory, abort() { throw new Error('abort'); } } });
    const n = BigInt(nbits);
    let marked = 0;
    for (let i = id; i < nbits; i += workers) if (instance.exports.bitmapAtomicSet(ptr, n, BigInt(i)) === 0) marked++;
    parentPort.postMessage(marked);
  `;
  const done = Array.from({ length: WORKERS }, (_, id) => new Promise<number>((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData: { memory: kernels.memory, wasmPath, ptr: bm.ptr, nbits: NBITS, id, workers: WORKERS } });
    w.once('message', resolve);
    w.once('error', reject);
  }));
  let claimed = 0;
  let finished = false;
  const all = Promise.all(done).then((counts) => {
    finished = true;
    return counts;
  });
  while (!finished) {
    for (let bit = bm.findNextSet(0); bit >= 0; bit = bm.findNextSet(bit + 1)) if (bm.atomicClear(bit)) claimed++;
    await new Promise((r) => setImmediate(r));
  }
  const marked = (await all).reduce((a, b) => a + b, 0);
  for (let bit = bm.findNextSet(0); bit >= 0; bit = bm.findNextSet(bit + 1)) if (bm.atomicClear(bit)) claimed++;
  t.is(marked, NBITS, 'each bit was newly set by exactly one marker');
  t.is(claimed, NBITS, 'each mark was claimed exactly once');
  t.is(bm.count(), 0);
});
