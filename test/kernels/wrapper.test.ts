import test from 'ava';
import * as path from 'path';
import { Kernels, codes, kernelError } from '../../lib/kernels';

test('loadAsync gives a working instance over its own memory', async (t) => {
  const k = await Kernels.loadAsync({ maximumPages: 1024 });
  t.is(k.crc32c(Buffer.from('123456789')), 0xe3069283);
  t.true(k.arena.base >= k.raw.staticEnd());
});

test('the debug image computes the same results as the release image', (t) => {
  const debug = Kernels.load({ wasmPath: path.resolve(__dirname, '..', '..', 'build', 'kernels.debug.wasm'), maximumPages: 1024 });
  const release = Kernels.load({ maximumPages: 1024 });
  const data = Array.from({ length: 5 }, (_, i) => Buffer.alloc(100, i * 37 + 1));
  t.deepEqual(debug.rsEncode(data, 3), release.rsEncode(data, 3));
  t.is(debug.crc32c(data[1]), release.crc32c(data[1]));
  t.deepEqual(debug.raid6Gen(data), release.raid6Gen(data));
  t.is(debug.raw.xorBlocks(0, 0, 0, 0), codes.KERR_COUNT, 'bad input is a code in the debug image too');
});

test('arena: allocations are aligned, grow the memory, and release in LIFO order', (t) => {
  const k = Kernels.load({ initialPages: 1, maximumPages: 1024 });
  const before = k.memoryBytes;
  const mark = k.arena.mark();
  const a = k.arena.alloc(3, 64);
  const b = k.arena.alloc(4 << 20, 16);
  t.is(a % 64, 0);
  t.is(b % 16, 0);
  t.true(b >= a + 3);
  t.true(k.memoryBytes >= b + (4 << 20) && k.memoryBytes > before, 'the memory grew to hold the allocation');
  k.arena.bytes(b, 4).set([1, 2, 3, 4]);
  t.deepEqual([...k.arena.copyOut(b, 4)], [1, 2, 3, 4]);
  k.arena.release(mark);
  t.is(k.arena.mark(), mark);
  t.throws(() => k.arena.release(mark + 100), { instanceOf: RangeError, message: /bad mark/ });
  t.throws(() => k.arena.alloc(2 ** 31, 16), { instanceOf: RangeError, message: /cannot grow the kernel memory/ });
  t.is(k.arena.mark(), mark, 'a failed allocation takes nothing');
});

test('kernelError: names, classes and messages for every code', (t) => {
  const all = [codes.KERR_BOUNDS, codes.KERR_ALIGN, codes.KERR_RANGE, codes.KERR_OVERLAP, codes.KERR_K, codes.KERR_M,
    codes.KERR_TOO_FEW, codes.KERR_SHARDS, codes.KERR_COUNT, codes.KERR_SINGULAR];
  for (const code of all) {
    const err = kernelError('someKernel', code, 'detail');
    t.regex(err.message, /^someKernel: .+ \(detail\)$/);
    t.not(err.codeName, 'KERR_UNKNOWN');
    t.is(err.code, code);
  }
  t.true(kernelError('k', codes.KERR_BOUNDS) instanceof RangeError);
  t.false(kernelError('k', codes.KERR_OVERLAP) instanceof RangeError);
  t.is(kernelError('k', -77).codeName, 'KERR_UNKNOWN');
});
