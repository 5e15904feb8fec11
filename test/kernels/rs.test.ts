import test from 'ava';
import fc from 'fast-check';
import { codes } from '../../lib/kernels';
import { EDGE_LENGTHS, kernels, memoryEnd, place, read, scoped, seededBytes, space } from './helpers';
import {
  backblazeParityRows, cauchyParityRows, gfApply, gfInvSlow, gfMulSlow, gfPowSlow, raid6ParityRows, raid6Ref, reconstructRef,
} from './reference';

function subsets(n: number, size: number): number[][] {
  if (size === 0) return [[]];
  const out: number[][] = [];
  for (let first = 0; first < n; first++) {
    for (const rest of subsets(n, size - 1)) if (rest.every((r) => r > first)) out.push([first, ...rest]);
  }
  return out;
}

function stripe(k: number, bytes: number, seed: number): Uint8Array[] {
  return Array.from({ length: k }, (_, i) => seededBytes(bytes, seed * 100 + i));
}

// ---- GF(2^8) ------------------------------------------------------------------------------------

test('GF(2^8): gfMul matches shift-and-add multiplication for all 65536 pairs; gfInv inverts', (t) => {
  let bad = 0;
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (kernels.gfMul(a, b) !== gfMulSlow(a, b)) bad++;
  t.is(bad, 0);
  for (let a = 1; a < 256; a++) t.is(kernels.gfMul(a, kernels.gfInv(a)), 1);
  t.is(kernels.gfInv(2), 0x8e, '{02}^-1 = {8e} in the RAID-6 field');
  t.is(gfInvSlow(2), 0x8e);
});

// ---- Published vectors ------------------------------------------------------------------------

test('Backblaze JavaReedSolomon published 5+5 vector, through the SIMD kernel (gfMatrixApply)', (t) => {
  const data = [[0, 1], [4, 5], [2, 3], [6, 7], [8, 9]].map((d) => Uint8Array.from(d));
  const rows = backblazeParityRows(5, 5);
  const expected = [[12, 13], [10, 11], [14, 15], [90, 91], [94, 95]];
  t.deepEqual(gfApply(rows, data, 2).map((p) => [...p]), expected, 'the TS reference reproduces the vector');
  scoped(() => {
    // Shards of 2 bytes use the scalar tail; repeat each byte pair 24 times to run the SIMD path too.
    const long = data.map((d) => Uint8Array.from({ length: 48 }, (_, i) => d[i % 2]));
    const src = long.map((d, i) => place(d, i));
    const dst = rows.map((_, i) => space(48, i * 3));
    kernels.gfMatrixApplyAt(Uint8Array.from(rows.flat()), src, dst, 48);
    dst.forEach((p, r) => t.deepEqual([...read(p, 48)], Array.from({ length: 48 }, (_, i) => expected[r][i % 2]), `parity ${r}`));
  });
});

test('RAID-6 worked examples from the definition (Anvin): Q = sum 2^i D_i', (t) => {
  const ones = Array.from({ length: 8 }, () => Uint8Array.of(1));
  const { p, q } = kernels.raid6Gen(ones);
  t.deepEqual([...p], [0]);
  t.deepEqual([...q], [0xff], '1 + 2 + 4 + ... + 128 = 0xff');
  const r = kernels.raid6Gen([Uint8Array.of(0), Uint8Array.of(0x80)]);
  t.deepEqual([...r.q], [0x1d], '{02} x {80} = {1d} (x^8 reduces by 0x11d)');
  const s = kernels.raid6Gen(Array.from({ length: 9 }, (_, i) => Uint8Array.of(i === 8 ? 1 : 0)));
  t.deepEqual([...s.q], [0x1d], 'g^8 = {1d}');
});

// H. Peter Anvin, "The mathematics of RAID-6", section 4: two failed data disks x < y are
// D_x = A (P + P_xy) + B (Q + Q_xy) and D_y = (P + P_xy) + D_x, where P_xy and Q_xy are the
// syndromes computed with D_x = D_y = 0, A = g^(y-x) (g^(y-x) + {01})^-1, B = g^-x (g^(y-x) + {01})^-1.
test('RAID-6 double data failure matches the closed-form recovery of Anvin, section 4', (t) => {
  const g = (e: number) => gfPowSlow(2, ((e % 255) + 255) % 255);
  const k = 12, bytes = 40;
  const data = stripe(k, bytes, 99);
  const { p, q } = kernels.raid6Gen(data);
  for (let x = 0; x < k; x++) {
    for (let y = x + 1; y < k; y++) {
      const zeroed = data.map((d, i) => (i === x || i === y ? new Uint8Array(bytes) : d));
      const { p: pxy, q: qxy } = raid6Ref(zeroed);
      const denom = gfInvSlow(g(y - x) ^ 1);
      const A = gfMulSlow(g(y - x), denom), B = gfMulSlow(g(-x), denom);
      const dx = Uint8Array.from({ length: bytes }, (_, b) => gfMulSlow(A, p[b] ^ pxy[b]) ^ gfMulSlow(B, q[b] ^ qxy[b]));
      const dy = Uint8Array.from({ length: bytes }, (_, b) => p[b] ^ pxy[b] ^ dx[b]);
      const shards = [...data, p, q].map((s, i) => (i === x || i === y ? null : s));
      const rebuilt = kernels.raid6Reconstruct(k, shards);
      t.deepEqual([...rebuilt[x]], [...dx], `D_${x} of (${x}, ${y})`);
      t.deepEqual([...rebuilt[y]], [...dy], `D_${y} of (${x}, ${y})`);
      t.deepEqual([...dx], [...data[x]], 'the formula itself recovers the data');
    }
  }
});

test('RS parity rows are ISA-L gf_gen_cauchy1_matrix: 1 / ((k + i) ^ j)', (t) => {
  // 2+1: C[0][j] = inv(2 ^ j): inv(2) = 0x8e, inv(3) = 0xf4.
  t.deepEqual(cauchyParityRows(2, 1), [[0x8e, 0xf4]]);
  const parity = kernels.rsEncode([Uint8Array.of(1), Uint8Array.of(1)], 1);
  t.deepEqual([...parity[0]], [0x8e ^ 0xf4]);
});

// ---- Encode against the reference -------------------------------------------------------------

test('rsEncode matches the TS reference for random k, m, lengths and unaligned shards', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 8 }), fc.oneof(fc.constantFrom(...EDGE_LENGTHS), fc.integer({ min: 0, max: 200 })), fc.nat(),
      (k, m, bytes, seed) => scoped(() => {
        const data = stripe(k, bytes, seed);
        const dataPtrs = data.map((d, i) => place(d, (seed + i) % 16));
        const parityPtrs = Array.from({ length: m }, (_, i) => space(bytes, (seed + 3 * i) % 16));
        kernels.rsEncodeAt(dataPtrs, parityPtrs, bytes);
        const expected = gfApply(cauchyParityRows(k, m), data, bytes);
        return parityPtrs.every((p, i) => Buffer.from(read(p, bytes)).equals(Buffer.from(expected[i])));
      })),
    { numRuns: 150 },
  );
  t.pass();
});

test('raid6Gen matches the definition for random k, lengths and unaligned shards', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 32 }), fc.oneof(fc.constantFrom(...EDGE_LENGTHS), fc.integer({ min: 0, max: 200 })), fc.nat(),
      (k, bytes, seed) => scoped(() => {
        const data = stripe(k, bytes, seed);
        const ptrs = data.map((d, i) => place(d, (seed + i) % 16));
        const p = space(bytes, seed % 7), q = space(bytes, seed % 5);
        kernels.raid6GenAt(ptrs, p, q, bytes);
        const want = raid6Ref(data);
        return Buffer.from(read(p, bytes)).equals(Buffer.from(want.p)) && Buffer.from(read(q, bytes)).equals(Buffer.from(want.q));
      })),
    { numRuns: 100 },
  );
  t.pass();
});

// ---- Every erasure pattern ------------------------------------------------------------------------

function checkAllPatterns(t: import('ava').ExecutionContext, k: number, m: number, raid6: boolean): number {
  const bytes = 37; // two SIMD vectors and a tail
  const data = stripe(k, bytes, k * 10 + m);
  const parity = raid6 ? [kernels.raid6Gen(data).p, kernels.raid6Gen(data).q] : kernels.rsEncode(data, m);
  const all = [...data, ...parity];
  let patterns = 0;
  for (let lost = 1; lost <= m; lost++) {
    for (const missing of subsets(k + m, lost)) {
      const shards = all.map((s, i) => (missing.includes(i) ? null : s));
      const rebuilt = raid6 ? kernels.raid6Reconstruct(k, shards) : kernels.rsReconstruct(k, m, shards);
      const ok = rebuilt.every((s, i) => Buffer.from(s).equals(Buffer.from(all[i])));
      if (!ok) t.fail(`k ${k} m ${m} lost [${missing}]`);
      patterns++;
    }
  }
  for (const missing of subsets(k + m, m + 1)) {
    const shards = all.map((s, i) => (missing.includes(i) ? null : s));
    const call = () => (raid6 ? kernels.raid6Reconstruct(k, shards) : kernels.rsReconstruct(k, m, shards));
    t.throws(call, { message: /fewer than k shards survive/ }, `k ${k} m ${m} lost [${missing}] must be refused`);
  }
  return patterns;
}

test('RS: every erasure pattern of up to m shards reconstructs exactly, for every k+m up to 6+3; m+1 losses are refused', (t) => {
  let patterns = 0;
  for (let k = 1; k <= 6; k++) for (let m = 1; m <= 3; m++) patterns += checkAllPatterns(t, k, m, false);
  t.true(patterns > 500, `${patterns} patterns checked`);
});

test('RAID-6: every pattern of one or two lost shards reconstructs exactly, for k up to 8; three losses are refused', (t) => {
  let patterns = 0;
  for (let k = 1; k <= 8; k++) patterns += checkAllPatterns(t, k, 2, true);
  t.true(patterns > 100);
});

test('RS reconstruct: random k up to 32, m up to 8, lengths, erasures, partial targets; matches the reference', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 8 }), fc.oneof(fc.constantFrom(...EDGE_LENGTHS), fc.integer({ min: 0, max: 150 })), fc.nat(), fc.nat(),
      (k, m, bytes, seed, pick) => scoped(() => {
        const data = stripe(k, bytes, seed);
        const all = [...data, ...gfApply(cauchyParityRows(k, m), data, bytes)];
        // Lose up to m shards chosen by `pick`; rebuild only some of them (targets), at unaligned places.
        const order = all.map((_, i) => i).sort((a, b) => ((a * 7919 + pick) % 101) - ((b * 7919 + pick) % 101));
        const lost = order.slice(0, 1 + (pick % m));
        const targets = lost.filter((_, i) => i === 0 || (pick >> i) & 1);
        const ptrs = all.map((s, i) => (lost.includes(i) ? space(bytes, (i * 5) % 16) : place(s, (i * 3) % 16)));
        const present = all.map((_, i) => i).filter((i) => !lost.includes(i));
        kernels.rsReconstructAt(k, m, ptrs, present, targets, bytes);
        const expected = reconstructRef(k, cauchyParityRows(k, m), all.map((s, i) => (lost.includes(i) ? null : s)));
        return targets.every((i) => Buffer.from(read(ptrs[i], bytes)).equals(Buffer.from(expected[i])));
      })),
    { numRuns: 150 },
  );
  t.pass();
});

test('RAID-6 reconstruct matches the P+Q reference parity rows for random k up to 32', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 0, max: 100 }), fc.nat(), fc.nat(),
      (k, bytes, seed, pick) => scoped(() => {
        const data = stripe(k, bytes, seed);
        const { p, q } = raid6Ref(data);
        const all = [...data, p, q];
        const a = pick % (k + 2), b = (a + 1 + ((pick >> 8) % (k + 1))) % (k + 2);
        const shards = all.map((s, i) => (i === a || i === b ? null : s));
        const rebuilt = kernels.raid6Reconstruct(k, shards);
        const expected = reconstructRef(k, raid6ParityRows(k), shards);
        return rebuilt.every((s, i) => Buffer.from(s).equals(Buffer.from(expected[i])) && Buffer.from(s).equals(Buffer.from(all[i])));
      })),
    { numRuns: 100 },
  );
  t.pass();
});

// ---- Bad input ----------------------------------------------------------------------------------

test('raw exports: k, m, masks, survivors, bounds and overlaps are refused with codes', (t) => {
  scoped(() => {
    const raw = kernels.raw, bytes = 32, k = 4, m = 2;
    const ptrs = Array.from({ length: k + m }, (_, i) => place(seededBytes(bytes, i)));
    const dataList = kernels.arena.pointerList(ptrs.slice(0, k)), parityList = kernels.arena.pointerList(ptrs.slice(k));
    const shardList = kernels.arena.pointerList(ptrs);
    const scratch = kernels.scratch;
    t.is(raw.rsEncode(0, m, dataList, parityList, bytes, scratch), codes.KERR_K);
    t.is(raw.rsEncode(33, m, dataList, parityList, bytes, scratch), codes.KERR_K);
    t.is(raw.rsEncode(k, 0, dataList, parityList, bytes, scratch), codes.KERR_M);
    t.is(raw.rsEncode(k, 9, dataList, parityList, bytes, scratch), codes.KERR_M);
    t.is(raw.rsEncode(k, m, dataList, parityList, bytes, memoryEnd() - 100), codes.KERR_BOUNDS, 'scratch past the end');
    t.is(raw.rsEncode(k, m, dataList, parityList, bytes, ptrs[0]), codes.KERR_OVERLAP, 'scratch over a data shard');
    const clash = kernels.arena.pointerList([ptrs[4], ptrs[0] + 8]);
    t.is(raw.rsEncode(k, m, dataList, clash, bytes, scratch), codes.KERR_OVERLAP, 'parity over data');
    const same = kernels.arena.pointerList([ptrs[4], ptrs[4] + 4]);
    t.is(raw.rsEncode(k, m, dataList, same, bytes, scratch), codes.KERR_OVERLAP, 'parity over parity');
    const far = kernels.arena.pointerList([ptrs[0], ptrs[1], ptrs[2], memoryEnd() - 1]);
    t.is(raw.rsEncode(k, m, far, parityList, bytes, scratch), codes.KERR_BOUNDS, 'data shard past the end');

    const all = (1n << 6n) - 1n;
    t.is(raw.rsReconstruct(k, m, shardList, all & ~7n, 7n, bytes, scratch), codes.KERR_TOO_FEW, '3 of 6 present, k = 4');
    t.is(raw.rsReconstruct(k, m, shardList, 0n, 1n, bytes, scratch), codes.KERR_TOO_FEW);
    t.is(raw.rsReconstruct(k, m, shardList, all & ~1n, 1n | (1n << 6n), bytes, scratch), codes.KERR_SHARDS, 'target beyond k + m');
    t.is(raw.rsReconstruct(k, m, shardList, all, 1n, bytes, scratch), codes.KERR_SHARDS, 'target also present');
    t.is(raw.rsReconstruct(k, m, shardList, all & ~1n, 1n, bytes, ptrs[3] + 1), codes.KERR_OVERLAP, 'scratch over a survivor');
    t.is(raw.rsReconstruct(40, m, shardList, all & ~1n, 1n, bytes, scratch), codes.KERR_K);
    t.is(raw.raid6Gen(0, dataList, ptrs[4], ptrs[5], bytes), codes.KERR_K);
    t.is(raw.raid6Gen(33, dataList, ptrs[4], ptrs[5], bytes), codes.KERR_K);
    t.is(raw.raid6Gen(k, dataList, ptrs[4], ptrs[4] + 16, bytes), codes.KERR_OVERLAP, 'P over Q');
    t.is(raw.raid6Gen(k, dataList, ptrs[3], ptrs[5], bytes), codes.KERR_OVERLAP, 'P over a data shard');
    t.is(raw.raid6Gen(k, dataList, ptrs[4], memoryEnd() - 8, bytes), codes.KERR_BOUNDS);
    t.is(raw.raid6Reconstruct(k, shardList, all & ~7n, 7n, bytes, scratch), codes.KERR_TOO_FEW);
    t.is(raw.gfMatrixApply(0, k, ptrs[0], dataList, parityList, bytes, scratch), codes.KERR_COUNT);
    t.is(raw.gfMatrixApply(2, 0, ptrs[0], dataList, parityList, bytes, scratch), codes.KERR_K);
    t.is(raw.rsReconstruct(k, m, shardList, all & ~1n, 1n, bytes, scratch), codes.KERR_OK, 'the good call still works');
  });
});

test('wrapper: errors are thrown with clear messages', (t) => {
  const data = stripe(3, 16, 1);
  const parity = kernels.rsEncode(data, 2);
  t.throws(() => kernels.rsEncode(data, 0), { instanceOf: RangeError, message: /rsEncode: the number of parity shards m is out of range \(1\.\.8\)/ });
  t.throws(() => kernels.rsEncode(stripe(33, 16, 1), 2), { instanceOf: RangeError, message: /data shards k is out of range \(1\.\.32\)/ });
  t.throws(() => kernels.rsReconstruct(3, 2, [null, null, data[2], parity[0], null]), { instanceOf: Error, message: /rsReconstruct: fewer than k shards survive.*2 of 5 shards present, k = 3/ });
  t.throws(() => kernels.rsReconstruct(3, 2, [data[0]]), { instanceOf: RangeError, message: /expected k \+ m = 5 shards/ });
  t.throws(() => kernels.raid6Reconstruct(3, [null, null, null, parity[0], parity[1]]), { message: /raid6Reconstruct: fewer than k shards survive/ });
  scoped(() => {
    const a = space(32), b = space(32);
    t.throws(() => kernels.rsEncodeAt([a, b], [a + 4], 32), { message: /rsEncode: an output buffer overlaps/ });
    t.throws(() => kernels.rsReconstructAt(2, 1, [a, b, 0], [0, 1], [2], 32), { instanceOf: RangeError, message: /rsReconstruct: .*static data/ }, 'a null target pointer');
    t.throws(() => kernels.rsReconstructAt(2, 1, [a, b, memoryEnd() - 16], [0, 1], [2], 32), { instanceOf: RangeError, message: /past the end/ });
  });
});
