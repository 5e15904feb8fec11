// Kernel benchmark: each kernel beside its peers in the same run, as one JSON document on stdout
// (progress on stderr). Run: npm run bench:kernels  [-- --quick] [-- --only=xor,rs,crc,bitmap]
//
// Method: each case runs in rounds of at least ROUND_MS; a round's rate is bytes / time, and the
// median of ROUNDS rounds is reported (machines are shared and noisy). Ratios compare medians
// taken in the same run; RS and its peer run in interleaved rounds (a load change hits both). Peers:
//   xor     Buffer.copy of the same bytes (memory bandwidth) and a plain TypeScript loop
//   rs      @ronomon/reed-solomon (native addon, Cauchy bit-matrix XOR code, one request at a time
//           on a one-thread libuv pool: UV_THREADPOOL_SIZE=1) and a plain TypeScript table loop
//   crc     @node-rs/crc32 (native, hardware CRC32 instruction), JS byte table, JS slicing-by-8
//   bitmap  a plain TypeScript loop over Uint32Array words
// Throughput is counted in input bytes: for RS, the k data shards (encode) or the k survivors
// read (reconstruct); for bitmaps, the bitmap's bytes.

process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE ?? '1';

import * as os from 'os';
import { Kernels } from '../lib/kernels';
import * as ref from '../test/kernels/reference';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const ronomon = require('@ronomon/reed-solomon');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const nodeCrc: { crc32c(data: Buffer, initial?: number): number } = require('@node-rs/crc32');

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const ONLY = (args.find((a) => a.startsWith('--only='))?.slice(7).split(',')) ?? ['xor', 'rs', 'crc', 'bitmap'];
const ROUND_MS = QUICK ? 60 : 250;
const ROUNDS = QUICK ? 3 : 7;

interface Rate {
  GBps: number; // 1e9 bytes per second, median of rounds
  usPerOp: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function rate(bytesPerOp: number, secondsPerOp: number): Rate {
  return { GBps: round3(bytesPerOp / secondsPerOp / 1e9), usPerOp: round3(secondsPerOp * 1e6) };
}

function measure(bytesPerOp: number, op: () => void): Rate {
  for (let i = 0; i < 3; i++) op();
  const perOp: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    do {
      op();
      n++;
      elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (elapsed * 1000 < ROUND_MS);
    perOp.push(elapsed / n);
  }
  return rate(bytesPerOp, median(perOp));
}

async function measureAsync(bytesPerOp: number, op: () => Promise<void>): Promise<Rate> {
  for (let i = 0; i < 3; i++) await op();
  const perOp: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    do {
      await op();
      n++;
      elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (elapsed * 1000 < ROUND_MS);
    perOp.push(elapsed / n);
  }
  return rate(bytesPerOp, median(perOp));
}

/**
 * Several cases measured in interleaved rounds (one round of each, then again), so that a change
 * in the machine's load falls on all of them alike; each case's rate is the median of its rounds.
 * For peers compared by a ratio on a shared machine.
 */
async function measureInterleaved(bytesPerOp: number, ops: (() => void | Promise<void>)[]): Promise<Rate[]> {
  for (const op of ops) for (let i = 0; i < 3; i++) await op();
  const perOp: number[][] = ops.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let c = 0; c < ops.length; c++) {
      let n = 0;
      const t0 = process.hrtime.bigint();
      let elapsed = 0;
      do {
        const pending = ops[c](); // a synchronous case is not awaited: no microtask charged to it
        if (pending) await pending;
        n++;
        elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      } while (elapsed * 1000 < ROUND_MS);
      perOp[c].push(elapsed / n);
    }
  }
  return perOp.map((xs) => rate(bytesPerOp, median(xs)));
}

function ratio(a: Rate, b: Rate): number {
  return round3(a.GBps / b.GBps);
}

function progress(msg: string): void {
  process.stderr.write(`bench kernels: ${msg}\n`);
}

function randomFill(view: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < view.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[i] = x & 0xff;
  }
}

// ---- XOR --------------------------------------------------------------------------------------

function benchXor(k: Kernels): object {
  const sources = 8, bytes = 65536;
  progress(`xor ${sources} x ${bytes}`);
  const srcPtrs = Array.from({ length: sources }, () => k.arena.alloc(bytes, 64));
  srcPtrs.forEach((p, i) => randomFill(k.arena.bytes(p, bytes), i + 1));
  const dst = k.arena.alloc(bytes, 64);
  const list = k.arena.pointerList(srcPtrs);
  const wasm = measure(sources * bytes, () => {
    k.raw.xorBlocks(dst, list, sources, bytes);
  });
  const srcBuf = Buffer.alloc(sources * bytes), dstBuf = Buffer.alloc(sources * bytes);
  randomFill(srcBuf, 99);
  const copy = measure(sources * bytes, () => {
    srcBuf.copy(dstBuf);
  });
  const tsSources = Array.from({ length: sources }, (_, i) => new Uint32Array(srcBuf.buffer, srcBuf.byteOffset + i * bytes, bytes / 4));
  const tsDst = new Uint32Array(bytes / 4);
  const tsLoop = measure(sources * bytes, () => {
    for (let w = 0; w < tsDst.length; w++) {
      let acc = tsSources[0][w];
      for (let s = 1; s < sources; s++) acc ^= tsSources[s][w];
      tsDst[w] = acc;
    }
  });
  return {
    case: `XOR of ${sources} sources of ${bytes} bytes (GB/s of source bytes)`,
    wasm, bufferCopy: copy, tsLoop,
    ratioToCopy: ratio(wasm, copy), ratioToTsLoop: ratio(wasm, tsLoop), target: 'ratioToCopy >= 0.5',
  };
}

// ---- Reed-Solomon ------------------------------------------------------------------------------

interface RsSetup {
  dataPtrs: number[];
  parityPtrs: number[];
  dataList: number;
  parityList: number;
  shardList: number;
}

function rsSetup(k: Kernels, dataShards: number, parityShards: number, shard: number): RsSetup {
  const dataPtrs = Array.from({ length: dataShards }, () => k.arena.alloc(shard, 64));
  const parityPtrs = Array.from({ length: parityShards }, () => k.arena.alloc(shard, 64));
  dataPtrs.forEach((p, i) => randomFill(k.arena.bytes(p, shard), i + 7));
  return {
    dataPtrs, parityPtrs,
    dataList: k.arena.pointerList(dataPtrs),
    parityList: k.arena.pointerList(parityPtrs),
    shardList: k.arena.pointerList([...dataPtrs, ...parityPtrs]),
  };
}

// The plain TypeScript peer: the obvious byte loop over a 256-byte product row per coefficient,
// written monomorphic (Uint8Array only) so V8 optimises it as well as it can.
function tsDot(rows: number[][], sources: Uint8Array[], outputs: Uint8Array[], bytes: number): void {
  for (let r = 0; r < rows.length; r++) {
    const out = outputs[r];
    out.fill(0);
    for (let j = 0; j < sources.length; j++) {
      const c = rows[r][j];
      const mul = ref.GF_MUL_TABLE.subarray(c << 8, (c << 8) + 256);
      const src = sources[j];
      for (let b = 0; b < bytes; b++) out[b] ^= mul[src[b]];
    }
  }
}

function ronomonEncode(ctx: unknown, sources: number, targets: number, buf: Buffer, par: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ronomon.encode(ctx, sources, targets, buf, 0, buf.length, par, 0, par.length, (err: Error | undefined) => (err ? reject(err) : resolve()));
  });
}

async function benchRsSize(k: Kernels, shard: number): Promise<object> {
  const K = 10, M = 4;
  progress(`rs ${K}+${M} shard ${shard}`);
  const mark = k.arena.mark();
  const s = rsSetup(k, K, M, shard);
  const scratch = k.scratch;
  const present = ((1n << BigInt(K + M)) - 1n) & ~3n; // shards 0 and 1 lost
  const ctx = ronomon.create(K, M);
  const buf = Buffer.alloc(K * shard), par = Buffer.alloc(M * shard);
  randomFill(buf, 3);
  const dataMask = (1 << K) - 1, parityMask = ((1 << (K + M)) - 1) & ~dataMask;
  const [encodeWasm, encodeRonomon] = await measureInterleaved(K * shard, [
    () => { k.raw.rsEncode(K, M, s.dataList, s.parityList, shard, scratch); },
    () => ronomonEncode(ctx, dataMask, parityMask, buf, par),
  ]);
  const [reconWasm, reconRonomon] = await measureInterleaved(K * shard, [
    () => { k.raw.rsReconstruct(K, M, s.shardList, present, 3n, shard, scratch); },
    () => ronomonEncode(ctx, ((1 << (K + M)) - 1) & ~3, 3, buf, par),
  ]);
  k.arena.release(mark);

  let encodeTs: Rate | null = null, reconTs: Rate | null = null;
  if (shard <= 65536 || !QUICK) {
    const data = Array.from({ length: K }, (_, i) => new Uint8Array(buf.buffer, buf.byteOffset + i * shard, shard));
    const parity = Array.from({ length: M }, () => new Uint8Array(shard));
    const rows = ref.cauchyParityRows(K, M);
    encodeTs = measure(K * shard, () => {
      tsDot(rows, data, parity, shard);
    });
    const gen = ref.generator(K, rows);
    const survivors = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const all = [...data, ...parity];
    const rebuilt = [new Uint8Array(shard), new Uint8Array(shard)];
    reconTs = measure(K * shard, () => {
      const inverse = ref.gfInvert(survivors.map((i) => gen[i]));
      tsDot(inverse.slice(0, 2), survivors.map((i) => all[i]), rebuilt, shard);
    });
  }
  return {
    shardBytes: shard,
    encode: { wasm: encodeWasm, ronomon: encodeRonomon, ts: encodeTs, ratioToRonomon: ratio(encodeWasm, encodeRonomon), ratioToTs: encodeTs && ratio(encodeWasm, encodeTs) },
    reconstruct2: { wasm: reconWasm, ronomon: reconRonomon, ts: reconTs, ratioToRonomon: ratio(reconWasm, reconRonomon), ratioToTs: reconTs && ratio(reconWasm, reconTs) },
  };
}

async function benchRs(k: Kernels): Promise<object> {
  const sizes = [4096, 65536, 1048576];
  const results = [];
  for (const size of sizes) results.push(await benchRsSize(k, size));
  return {
    case: 'Reed-Solomon 10+4: encode 4 parity; reconstruct 2 lost data shards (GB/s of k shards read)',
    results, target: 'encode and reconstruct ratioToRonomon >= 1.5 at every shard size (issue 10)',
  };
}

// ---- CRC-32C ----------------------------------------------------------------------------------

function benchCrcSize(k: Kernels, bytes: number): object {
  progress(`crc32c ${bytes}`);
  const mark = k.arena.mark();
  const ptr = k.arena.alloc(bytes, 64);
  randomFill(k.arena.bytes(ptr, bytes), 5);
  const buf = Buffer.from(k.arena.bytes(ptr, bytes));
  const wasm = measure(bytes, () => {
    k.raw.crc32c(ptr, bytes, 0);
  });
  k.arena.release(mark);
  const native = measure(bytes, () => {
    nodeCrc.crc32c(buf, 0);
  });
  const jsTable = measure(bytes, () => {
    ref.crc32cTable(buf);
  });
  const jsSlicing8 = measure(bytes, () => {
    ref.crc32cSlicing8(buf);
  });
  return {
    bytes, wasm, native, jsTable, jsSlicing8,
    ratioToJsTable: ratio(wasm, jsTable), ratioToJsSlicing8: ratio(wasm, jsSlicing8), ratioToNative: ratio(wasm, native),
  };
}

function benchCrc(k: Kernels): object {
  return {
    case: 'CRC-32C of one buffer (GB/s)',
    results: [2112, 65536, 1048576].map((b) => benchCrcSize(k, b)),
    target: 'ratioToJsTable >= 3',
  };
}

// ---- Bitmaps ----------------------------------------------------------------------------------

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function tsCount(words: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < words.length; i++) n += popcount32(words[i]);
  return n;
}

function tsFindNextSet(words: Uint32Array, from: number, nbits: number): number {
  let w = from >>> 5;
  if (w >= words.length) return nbits;
  let word = words[w] & (~0 << (from & 31));
  while (word === 0) {
    if (++w >= words.length) return nbits;
    word = words[w];
  }
  return w * 32 + (31 - Math.clz32(word & -word));
}

function tsFindNextClear(words: Uint32Array, from: number, nbits: number): number {
  let w = from >>> 5;
  if (w >= words.length) return nbits;
  let word = ~words[w] & (~0 << (from & 31));
  while (word === 0) {
    if (++w >= words.length) return nbits;
    word = ~words[w];
  }
  return Math.min(nbits, w * 32 + (31 - Math.clz32(word & -word)));
}

function benchBitmapDensity(k: Kernels, nbits: number, density: number): object {
  progress(`bitmap 2^${Math.log2(nbits)} bits at density ${density}`);
  const mark = k.arena.mark();
  const bm = k.bitmap(nbits);
  const bytes = bm.byteLength;
  const view = bm.bytes();
  let x = 12345;
  for (let i = 0; i < nbits; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    if (x / 2 ** 32 < density) view[i >> 3] |= 1 << (i & 7);
  }
  const words = new Uint32Array(Buffer.from(view).buffer.slice(0));
  const n = BigInt(nbits);
  const raw = k.raw;
  const outRuns = 1024;
  const out = k.arena.alloc(outRuns * 16, 8);

  const countWasm = measure(bytes, () => {
    raw.bitmapCount(bm.ptr, n, 0n, n);
  });
  const countTs = measure(bytes, () => {
    tsCount(words);
  });
  // Visit every set bit with find-next-set (one call per set bit).
  const findWasm = measure(bytes, () => {
    for (let p = raw.bitmapFindNextSet(bm.ptr, n, 0n); p < n; p = raw.bitmapFindNextSet(bm.ptr, n, p + 1n));
  });
  const findTs = measure(bytes, () => {
    for (let p = tsFindNextSet(words, 0, nbits); p < nbits; p = tsFindNextSet(words, p + 1, nbits));
  });
  // Visit every run, 1024 runs per call, as a resync would collect extents.
  const runsWasm = measure(bytes, () => {
    let from = 0n;
    for (;;) {
      const got = raw.bitmapCollectRuns(bm.ptr, n, from, out, outRuns);
      if (got < outRuns) break;
      const last = new BigUint64Array(k.memory.buffer, out + (got - 1) * 16, 2);
      from = last[0] + last[1];
    }
  });
  const runsTs = measure(bytes, () => {
    for (let s = tsFindNextSet(words, 0, nbits); s < nbits;) {
      const e = tsFindNextClear(words, s, nbits);
      s = tsFindNextSet(words, e, nbits);
    }
  });
  k.arena.release(mark);
  return {
    density, setBits: tsCount(words),
    count: { wasm: countWasm, ts: countTs, ratioToTs: ratio(countWasm, countTs) },
    findNextSetEveryBit: { wasm: findWasm, ts: findTs, ratioToTs: ratio(findWasm, findTs) },
    runs: { wasm: runsWasm, ts: runsTs, ratioToTs: ratio(runsWasm, runsTs) },
  };
}

// Full scans: find-next-set over an empty bitmap and find-next-clear over a full one walk every
// word (the SIMD skip); count reads every word.
function benchBitmapScan(k: Kernels, nbits: number): object {
  progress('bitmap full scans');
  const mark = k.arena.mark();
  const bm = k.bitmap(nbits);
  const n = BigInt(nbits), bytes = bm.byteLength, raw = k.raw;
  const words = new Uint32Array(bytes / 4);
  const findSetEmpty = measure(bytes, () => {
    raw.bitmapFindNextSet(bm.ptr, n, 0n);
  });
  const findSetEmptyTs = measure(bytes, () => {
    tsFindNextSet(words, 0, nbits);
  });
  bm.setRange(0, nbits);
  words.fill(0xffffffff);
  const findClearFull = measure(bytes, () => {
    raw.bitmapFindNextClear(bm.ptr, n, 0n);
  });
  const findClearFullTs = measure(bytes, () => {
    tsFindNextClear(words, 0, nbits);
  });
  k.arena.release(mark);
  return {
    findNextSetOverEmpty: { wasm: findSetEmpty, ts: findSetEmptyTs, ratioToTs: ratio(findSetEmpty, findSetEmptyTs) },
    findNextClearOverFull: { wasm: findClearFull, ts: findClearFullTs, ratioToTs: ratio(findClearFull, findClearFullTs) },
  };
}

function benchBitmap(k: Kernels): object {
  const nbits = 1 << 24;
  return {
    case: `bitmap of 2^24 bits (${nbits / 8} bytes): full scans; at 0.1 % and 50 % random density, count, visit every set bit with find-next-set (one call per bit, from JS), iterate runs (1024 per call) (GB/s of bitmap)`,
    fullScan: benchBitmapScan(k, nbits),
    results: [0.001, 0.5].map((d) => benchBitmapDensity(k, nbits, d)),
    target: 'full scan >= 10 GB/s of bitmap',
  };
}

// ---- Main -------------------------------------------------------------------------------------

export async function run(): Promise<object> {
  const k = Kernels.load();
  const cpus = os.cpus();
  const report: Record<string, unknown> = {
    benchmark: 'kernels',
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE),
    method: `median of ${ROUNDS} rounds of >= ${ROUND_MS} ms each`,
  };
  if (ONLY.includes('xor')) report.xor = benchXor(k);
  if (ONLY.includes('rs')) report.reedSolomon = await benchRs(k);
  if (ONLY.includes('crc')) report.crc32c = benchCrc(k);
  if (ONLY.includes('bitmap')) report.bitmap = benchBitmap(k);
  return report;
}

if (require.main === module) {
  run().then(
    (report) => process.stdout.write(JSON.stringify(report, null, 2) + '\n'),
    (err) => {
      process.stderr.write(`bench kernels: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
