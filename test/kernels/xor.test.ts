import test from 'ava';
import fc from 'fast-check';
import { codes } from '../../lib/kernels';
import { EDGE_LENGTHS, kernels, memoryEnd, place, read, scoped, seededBytes, space } from './helpers';
import { xorRef } from './reference';

const lengthArb = fc.oneof(fc.constantFrom(...EDGE_LENGTHS), fc.integer({ min: 0, max: 400 }));

test('XOR of 1..12 sources matches the reference at edge lengths and unaligned starts', (t) => {
  fc.assert(
    fc.property(lengthArb, fc.integer({ min: 1, max: 12 }), fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 13, maxLength: 13 }), fc.nat(),
      (bytes, count, offsets, seed) => scoped(() => {
        const sources = Array.from({ length: count }, (_, i) => seededBytes(bytes, seed + i));
        const ptrs = sources.map((s, i) => place(s, offsets[i]));
        const dst = space(bytes, offsets[12]);
        kernels.xorAt(dst, ptrs, bytes);
        return Buffer.from(read(dst, bytes)).equals(Buffer.from(xorRef(sources)));
      })),
    { numRuns: 300 },
  );
  t.pass();
});

test('XOR in place: dst may be exactly one of the sources', (t) => {
  for (const bytes of EDGE_LENGTHS.concat([1000])) {
    scoped(() => {
      const sources = [0, 1, 2].map((i) => seededBytes(bytes, 40 + i));
      const ptrs = sources.map((s, i) => place(s, i));
      kernels.xorAt(ptrs[1], ptrs, bytes);
      t.deepEqual(read(ptrs[1], bytes), xorRef(sources), `${bytes} bytes`);
    });
  }
});

test('Buffer convenience: xor() copies in and out and leaves inputs alone', (t) => {
  const a = Buffer.from([1, 2, 3, 4]), b = Buffer.from([0xff, 0, 0xf0, 4]);
  t.deepEqual(kernels.xor([a, b]), Buffer.from([0xfe, 2, 0xf3, 0]));
  t.deepEqual(a, Buffer.from([1, 2, 3, 4]));
  t.deepEqual(kernels.xor([a]), a);
});

test('raw export: bad counts, bounds and overlaps return codes and write nothing', (t) => {
  scoped(() => {
    const bytes = 64;
    const a = place(seededBytes(bytes, 1)), b = place(seededBytes(bytes, 2));
    const dst = space(bytes);
    const list = kernels.arena.pointerList([a, b]);
    const raw = kernels.raw;
    t.is(raw.xorBlocks(dst, list, 0, bytes), codes.KERR_COUNT);
    t.is(raw.xorBlocks(dst, list, 256, bytes), codes.KERR_COUNT);
    t.is(raw.xorBlocks(memoryEnd() - 10, list, 2, bytes), codes.KERR_BOUNDS);
    t.is(raw.xorBlocks(dst, memoryEnd() - 4, 2, bytes), codes.KERR_BOUNDS, 'pointer list past the end');
    const farList = kernels.arena.pointerList([a, memoryEnd() - 8]);
    t.is(raw.xorBlocks(dst, farList, 2, bytes), codes.KERR_BOUNDS, 'a source past the end');
    t.is(raw.xorBlocks(0, list, 2, bytes), codes.KERR_BOUNDS, 'a null dst would overwrite static data');
    t.is(raw.xorBlocks(raw.staticEnd() - 1, list, 2, bytes), codes.KERR_BOUNDS, 'dst over the end of the static data');
    t.is(raw.xorBlocks(a + 16, list, 2, bytes), codes.KERR_OVERLAP, 'dst partly over a source');
    t.is(raw.xorBlocks(list - 8, list, 2, bytes), codes.KERR_OVERLAP, 'dst over the pointer list');
    t.deepEqual(read(dst, bytes), new Uint8Array(bytes), 'nothing written on error');
    t.is(raw.xorBlocks(dst, list, 2, bytes), codes.KERR_OK);
  });
});

test('wrapper: errors are thrown with clear messages', (t) => {
  scoped(() => {
    const a = space(32), b = space(32);
    t.throws(() => kernels.xorAt(a + 8, [a, b], 32), { instanceOf: Error, message: /xorBlocks: an output buffer overlaps/ });
    t.throws(() => kernels.xorAt(a, [], 32), { instanceOf: RangeError, message: /xorBlocks: a source, row or run count is out of range/ });
    t.throws(() => kernels.xorAt(memoryEnd(), [a], 32), { instanceOf: RangeError, message: /past the end/ });
    t.throws(() => kernels.xor([Buffer.alloc(3), Buffer.alloc(4)]), { instanceOf: RangeError, message: /differ in length/ });
  });
});
