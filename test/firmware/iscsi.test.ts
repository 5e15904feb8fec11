// Units of the iSCSI front end through the compiled firmware: MD5 for CHAP against RFC 1321's test
// suite and against Node's own MD5 on random inputs of every length around the block boundaries;
// the text-key parser and the binary value forms of RFC 7143 6.1.
import test from 'ava';
import * as crypto from 'crypto';
import { Rig } from './rig';

function md5Of(rig: Rig, input: Buffer): string {
  const at = rig.scratch(input.length + 256);
  rig.bytes.set(input, at + 128);
  rig.fw.testMd5(at, at + 128, input.length, at + 32);
  return Buffer.from(rig.bytes.subarray(at, at + 16)).toString('hex');
}

test('MD5: the RFC 1321 test suite', (t) => {
  const rig = new Rig();
  const suite: Array<[string, string]> = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [input, digest] of suite) t.is(md5Of(rig, Buffer.from(input, 'latin1')), digest, JSON.stringify(input));
});

test('MD5: the same as Node\'s for every length from 0 to 200 and a few long ones', (t) => {
  const rig = new Rig();
  for (const n of [...Array.from({ length: 201 }, (_, i) => i), 1153, 4096, 65537]) {
    const input = crypto.randomBytes(n);
    t.is(md5Of(rig, input), crypto.createHash('md5').update(input).digest('hex'), `${n} bytes`);
  }
});

/** The input at the start of the rig's scratch area (rig.scratch hands out the same area each time); `out` after it. */
function place(rig: Rig, s: string | Buffer): { at: number; n: number; out: number } {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  const at = rig.scratch(b.length + 4096);
  rig.bytes.set(b, at);
  return { at, n: b.length, out: at + ((b.length + 64) & ~7) };
}

test('binary values: 0x-hex (odd digit count too) and 0b-base64; anything else is refused', (t) => {
  const rig = new Rig();
  const decode = (s: string, max = 64): string | number => {
    const { at, n, out: dst } = place(rig, s);
    const r = rig.fw.testParseBinary(at, n, dst, max);
    return r < 0 ? r : Buffer.from(rig.bytes.subarray(dst, dst + r)).toString('hex');
  };
  t.is(decode('0x00ff10Ab'), '00ff10ab');
  t.is(decode('0X123'), '0123');
  t.is(decode(`0b${Buffer.from('hello, chap').toString('base64')}`), Buffer.from('hello, chap').toString('hex'));
  t.is(decode('0bAQID'), '010203');
  t.is(decode('0bAQ=='), '01');
  for (const bad of ['', '0x', 'ff', '0xg1', '0bA=Q', '0b!!!!', '0z12']) t.is(decode(bad), -1, JSON.stringify(bad));
  t.is(decode(`0x${'11'.repeat(17)}`, 16), -1, 'longer than allowed');
});

test('numbers: decimal and 0x-hex of 32 bits; anything else is -1', (t) => {
  const rig = new Rig();
  const num = (s: string) => { const { at, n } = place(rig, s); return rig.fw.testParseNumber(at, n); };
  t.is(num('262144'), 262144);
  t.is(num('0x40000'), 262144);
  t.is(num('4294967295'), 4294967295);
  for (const bad of ['', '4294967296', '12a', '-1', '0x', '0x123456789', ' 1']) t.is(num(bad), -1, JSON.stringify(bad));
});

test('key text: pairs in order; a pair without "=", a bad key name, a key of 64 characters or text not ended by NUL is malformed', (t) => {
  const rig = new Rig();
  const pairs = (s: string | Buffer): Array<[string, string]> | number => {
    const { at, n, out } = place(rig, s);
    const got: Array<[string, string]> = [];
    let p = at;
    for (;;) {
      const r = rig.fw.testTextNext(p, at + n, out);
      if (r < 0) return r;
      if (r === 0) return got;
      const str = (a: number, l: number) => Buffer.from(rig.bytes.subarray(a, a + l)).toString('latin1');
      got.push([str(rig.u32(out), rig.u32(out + 4)), str(rig.u32(out + 8), rig.u32(out + 12))]);
      p = rig.u32(out + 16);
    }
  };
  t.deepEqual(pairs('HeaderDigest=CRC32C,None\0X-a.b@c_d+e-f=\0'), [['HeaderDigest', 'CRC32C,None'], ['X-a.b@c_d+e-f', '']]);
  t.deepEqual(pairs('A=1\0\0\0B=2\0'), [['A', '1'], ['B', '2']], 'stray NULs between pairs are read past');
  for (const bad of ['HeaderDigest\0', 'Header Digest=1\0', '=1\0', `${'K'.repeat(64)}=1\0`, 'A=1', 'A=1\0B=2', 'Ä=1\0']) {
    t.is(pairs(bad), -1, JSON.stringify(bad));
  }
  t.deepEqual(pairs(`${'K'.repeat(63)}=1\0`), [['K'.repeat(63), '1']]);
});
