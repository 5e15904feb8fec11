import test from 'ava';
import fc from 'fast-check';
import { codes } from '../../lib/kernels';
import { kernels, memoryEnd, place, scoped, seededBytes } from './helpers';
import { crc32cBitwise, crc32cTable } from './reference';

const ascii = (s: string) => Buffer.from(s, 'latin1');

test('CRC-32C check value of "123456789" is 0xE3069283', (t) => {
  t.is(kernels.crc32c(ascii('123456789')), 0xe3069283);
  t.is(crc32cBitwise(ascii('123456789')), 0xe3069283);
});

test('RFC 3720 (iSCSI) B.4 vectors', (t) => {
  const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
  const dec = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
  t.is(kernels.crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(kernels.crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  t.is(kernels.crc32c(inc), 0x46dd794e);
  t.is(kernels.crc32c(dec), 0x113fdb5c);
});

test('empty buffer: 0 from 0, and the previous value unchanged', (t) => {
  t.is(kernels.crc32c(new Uint8Array(0)), 0);
  t.is(kernels.crc32c(new Uint8Array(0), 0xdeadbeef), 0xdeadbeef);
});

test('matches the bit-at-a-time definition at edge lengths and unaligned starts', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom(0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25), fc.integer({ min: 0, max: 600 })).chain((n) =>
        fc.tuple(fc.uint8Array({ minLength: n, maxLength: n }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffffffff }))),
      ([data, offset, previous]) => scoped(() => {
        const ptr = place(data, offset);
        return kernels.crc32cAt(ptr, data.length, previous) === crc32cBitwise(data, previous);
      }),
    ),
    { numRuns: 400 },
  );
  t.pass();
});

test('long buffers (the three-stream path and its combination) match the byte-table reference', (t) => {
  for (const bytes of [383, 384, 385, 767, 768, 769, 2112, 4096, 65536 + 13]) {
    for (const offset of [0, 3, 8]) {
      scoped(() => {
        const data = seededBytes(bytes, bytes + offset);
        t.is(kernels.crc32cAt(place(data, offset), bytes, 0x1234), crc32cTable(data, 0x1234), `${bytes} bytes at +${offset}`);
      });
    }
  }
});

test('incremental: the CRC of a split buffer continued equals the CRC of the whole', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (data, cut) => {
      const at = data.length === 0 ? 0 : cut % (data.length + 1);
      const first = kernels.crc32c(data.subarray(0, at));
      return kernels.crc32c(data.subarray(at), first) === crc32cTable(data);
    }),
  );
  t.pass();
});

test('raw export: a buffer past the end of memory returns KERR_BOUNDS, also when ptr + bytes wraps', (t) => {
  const end = memoryEnd();
  t.is(Number(kernels.raw.crc32c(end - 4, 5, 0)), codes.KERR_BOUNDS);
  t.is(Number(kernels.raw.crc32c(end, 1, 0)), codes.KERR_BOUNDS);
  t.is(Number(kernels.raw.crc32c(0xfffffff0, 0x20, 0)), codes.KERR_BOUNDS);
  t.is(Number(kernels.raw.crc32c(end, 0, 0)), 0, 'an empty buffer at the very end is fine');
  t.is(Number(kernels.raw.crc32c(end - 4, 4, 0)) >= 0, true);
});

test('wrapper: out-of-memory buffer throws a RangeError naming the kernel', (t) => {
  const err = t.throws(() => kernels.crc32cAt(memoryEnd() - 2, 10), { instanceOf: RangeError });
  t.regex(err!.message, /crc32c: a buffer reaches past the end of the kernel memory/);
  t.is((err as unknown as { codeName: string }).codeName, 'KERR_BOUNDS');
});
