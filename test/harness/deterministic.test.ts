// Deterministic mode: one thread, a virtual clock, a seeded PRNG. The same topology, seed and
// inputs give the same trace, byte for byte; and a property test runs random reads and writes at
// random LBAs against a reference model of the volume.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import fc from 'fast-check';
import * as A from '../../hal/abi';
import { DeterministicDriver, ROUND_NS } from '../../harness/driver';
import { tempDir, startSmall, createVolume, read, write, pattern, run } from './env';

// A disk with a seek curve, rotation and a transfer rate: stage and destage times depend on the
// seeded rotational position, so the seed shows in the trace.
const timed = [
  { name: 'd0', kind: 'ram', size: '64MiB', timing: { seekMs: { track: 0.5, average: 4, full: 9 }, rpm: 7200, transferMBps: 150 } },
  { name: 'd1', kind: 'ram', size: '64MiB', timing: { rpm: 10000, transferMBps: 200 } },
];

/**
 * Ends each I/O call (NV batch, medium store call) at a moment no seed decides: at once, after the
 * event loop's next turn, or after a few milliseconds — as a busy thread pool would.
 */
function jitter(resume: () => void): void {
  const k = Math.floor(Math.random() * 3);
  if (k === 0) resume();
  else if (k === 1) setImmediate(resume);
  else setTimeout(resume, Math.random() * 3);
}

async function traceOf(seed: number, perturb = false, io: 'threads' | 'inline' = 'threads'): Promise<{ trace: string; elapsedMs: number }> {
  const dir = tempDir(`det${seed}`);
  const emu = await startSmall({ dir, mode: 'deterministic', seed, media: timed, trace: true, traceCommands: true }, { io });
  if (perturb) {
    emu.array().nv.gate = jitter;
    for (const m of emu.array().media) m.gate = jitter;
    // Answers delivered late (the host's promise jobs have run at the next turn at the earliest):
    // the clock waits for them.
    emu.array().deliveryGate = (delivered) => setImmediate(() => jitter(delivered));
  }
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 32768, blockSize: 512, placement: 'striped' }, 1);
  for (let i = 0; i < 8; i++) await write(s, 1, i * 1000, pattern(8192, i));
  await Promise.all([0, 3000, 9000, 20000, 31000].map((lba) => read(s, 1, lba, 64))); // misses
  await emu.advance(100); // destage timers run in virtual time
  await Promise.all(Array.from({ length: 16 }, (_, i) => read(s, 1, (i * 7919) % 32000, 8)));
  const elapsedMs = emu.driver().now() / 1e6;
  await emu.stop();
  return { trace: fs.readFileSync(path.join(dir, 'trace.jsonl'), 'utf8'), elapsedMs };
}

test('the same seed gives the same trace; another seed another one', async (t) => {
  const a = await traceOf(5);
  const b = await traceOf(5);
  const c = await traceOf(6);
  const lines = a.trace.trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.filter((r) => r.type === 'command').length, 3 + 8 + 5 + 16, 'every command is traced');
  t.true(lines.some((r) => r.type === 'destage'), 'destages are traced'); // (the reads are of never-written chunks: no stage)
  t.true(lines.some((r) => r.type === 'metrics'), 'metrics are traced');
  t.is(a.trace, b.trace);
  t.is(a.elapsedMs, b.elapsedMs);
  t.not(a.trace, c.trace);
  // Virtual time covers the media's service times: 5 staged reads on a 4 ms-average disk.
  t.true(a.elapsedMs > 100, `virtual time ${a.elapsedMs} ms`);
});

/** One command at a time, each waiting for the one before: read misses staged from RAM media without a timing model. */
async function missesOf(perturb: boolean, io: 'threads' | 'inline' = 'threads'): Promise<string> {
  const dir = tempDir('det-misses');
  const emu = await startSmall({ dir, mode: 'deterministic', seed: 9, media: [{ name: 'd0', kind: 'ram', size: '8MiB' }, { name: 'd1', kind: 'file', size: '8MiB' }], trace: true, traceCommands: true }, { io });
  if (perturb) {
    emu.array().nv.gate = jitter;
    for (const m of emu.array().media) m.gate = jitter;
  }
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 16384, blockSize: 512, placement: 'striped' }, 1);
  for (let i = 0; i < 12; i++) {
    await read(s, 1, (i * 1237) % 16000, 8);
    if (i % 3 === 0) await write(s, 1, (i * 911) % 16000, pattern(4096, i));
    if (i % 4 === 0) await emu.advance(1);
  }
  await emu.stop();
  return fs.readFileSync(path.join(dir, 'trace.jsonl'), 'utf8');
}

test('when I/O ends, or when an answer reaches the host, does not show in a deterministic run: completions and deliveries delayed at random give the same trace', async (t) => {
  const plain = await traceOf(5);
  const shaken = await traceOf(5, true);
  t.is(shaken.trace, plain.trace);
  t.is(shaken.elapsedMs, plain.elapsedMs);
  // A host that waits for each command before the next sees its completions in the same rounds too.
  const misses = await missesOf(false);
  t.is(await missesOf(true), misses);
  // I/O run inline on the array's thread (for drivers that run rounds synchronously) gives the same runs.
  t.is((await traceOf(5, false, 'inline')).trace, plain.trace);
  t.is(await missesOf(false, 'inline'), misses);
});

test('random reads and writes at random LBAs match a reference model (fast-check, deterministic mode)', async (t) => {
  const BLOCKS = 16384; // 8 MiB: four times the cache
  const dir = tempDir('prop');
  // A small cache (2 MiB: 32 slots) over two 1 MiB-extent media so that slots are evicted,
  // staged and destaged while the model runs.
  const emu = await startSmall({
    dir, mode: 'deterministic', seed: 3, cache: { size: '2MiB', destageAgeMs: 1 },
    media: [{ name: 'd0', kind: 'ram', size: '8MiB' }, { name: 'd1', kind: 'file', size: '8MiB' }],
  });
  t.teardown(() => emu.stop());
  const s = emu.connect();
  await createVolume(s, { name: 'model', blocks: BLOCKS, blockSize: 512, placement: 'striped' }, 1);
  const model = Buffer.alloc(BLOCKS * 512);
  const op = fc.record({
    write: fc.boolean(),
    lba: fc.integer({ min: 0, max: BLOCKS - 1 }),
    blocks: fc.integer({ min: 1, max: 600 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    fua: fc.boolean(),
    flush: fc.integer({ min: 0, max: 9 }),
  });
  let ops = 0;
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (batch) => {
    for (const o of batch) {
      const blocks = Math.min(o.blocks, BLOCKS - o.lba);
      if (o.write) {
        const data = pattern(blocks * 512, o.seed);
        await write(s, 1, o.lba, data, 512, o.fua);
        data.copy(model, o.lba * 512);
      } else {
        const got = await read(s, 1, o.lba, blocks);
        if (!got.equals(model.subarray(o.lba * 512, (o.lba + blocks) * 512))) return false;
      }
      if (o.flush === 0) await emu.advance(5); // let destages run between some operations
      ops++;
    }
    return true;
  }), { numRuns: 60, seed: 42 });
  t.true((await read(s, 1, 0, BLOCKS)).equals(model));
  t.true(ops > 100);
  const st = emu.array().stats();
  t.true(st[A.STAT_STAGES] > 0 && st[A.STAT_DESTAGES] > 0 && st[A.STAT_READ_MISSES] > 0, 'the run staged, destaged and missed');
});

test('no acknowledged write is lost when the power fails at a random round (fast-check, deterministic mode)', async (t) => {
  const BLOCKS = 4096;
  const write$ = fc.record({ lba: fc.integer({ min: 0, max: BLOCKS - 1 }), blocks: fc.integer({ min: 1, max: 200 }), seed: fc.integer({ min: 1, max: 1 << 30 }) });
  let crashes = 0;
  let partial = 0;
  await fc.assert(fc.asyncProperty(
    fc.array(fc.array(write$, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }), // acknowledged batches
    fc.array(write$, { minLength: 1, maxLength: 6 }), // the batch in flight when the power fails
    fc.integer({ min: 0, max: 40 }), // rounds the array runs of that batch before it does
    async (acked, inflight, rounds) => {
      const dir = tempDir('crash');
      const o = { dir, mode: 'deterministic' as const, cache: { size: '4MiB', destageAgeMs: 2 },
        media: [{ name: 'd0', kind: 'file', size: '8MiB' }, { name: 'd1', kind: 'file', size: '8MiB' }] };
      const first = await startSmall(o);
      const s = first.connect();
      await createVolume(s, { name: 'c', blocks: BLOCKS, blockSize: 512, placement: 'striped' }, 1);
      const model = Buffer.alloc(BLOCKS * 512);
      // Per block: the contents it may hold after the crash (the acknowledged one, or an in-flight one).
      const clip = (w: { lba: number; blocks: number }) => Math.min(w.blocks, BLOCKS - w.lba);
      for (const batch of acked) {
        const datas = batch.map((w) => pattern(clip(w) * 512, w.seed));
        await Promise.all(batch.map((w, i) => write(s, 1, w.lba, datas[i])));
        batch.forEach((w, i) => datas[i].copy(model, w.lba * 512)); // concurrent overlaps: checked below
        if (batch.some((w, i) => batch.some((v, j) => j !== i && w.lba < v.lba + clip(v) && v.lba < w.lba + clip(w)))) {
          // Overlapping writes of one batch may land in either order: read back what won.
          (await read(s, 1, 0, BLOCKS)).copy(model);
        }
      }
      const pending = inflight.map((w) => ({ w, data: pattern(clip(w) * 512, w.seed ^ 0x5a5a5a5a) }));
      const settled = pending.map((p) => write(s, 1, p.w.lba, p.data).then(() => true, () => false));
      await (first.driver() as DeterministicDriver).rounds(rounds); // each round waits for its NV and media I/O
      await first.stop('powerFail');
      const done = await Promise.all(settled);
      crashes++;
      if (done.some((x) => !x)) partial++;
      const second = await startSmall(o);
      try {
        const got = await read(second.connect(), 1, 0, BLOCKS);
        for (let b = 0; b < BLOCKS; b++) {
          const block = got.subarray(b * 512, b * 512 + 512);
          // The old contents, unless an in-flight write of the block was acknowledged; any in-flight
          // write of the block may have landed (in-flight writes have no order among themselves).
          const mine = pending.map((p, i) => ({ i, data: p.data.subarray((b - p.w.lba) * 512, (b - p.w.lba + 1) * 512), covers: b >= p.w.lba && b < p.w.lba + clip(p.w) }))
            .filter((x) => x.covers);
          const options = [...(mine.some((x) => done[x.i]) ? [] : [model.subarray(b * 512, b * 512 + 512)]), ...mine.map((x) => x.data)];
          if (!options.some((x) => x.equals(block))) return false;
        }
        return true;
      } finally {
        await second.stop();
      }
    },
  ), { numRuns: 25, seed: 7 });
  t.is(crashes, 25);
  t.true(partial > 0, 'some crashes came with writes still in flight');
});

test('the clock does not move while an answer is on its way to an in-process host: its next command is taken in the next rounds, not after the next timer', async (t) => {
  const emu = await startSmall({ dir: tempDir('det-deliver'), mode: 'deterministic', seed: 4, media: timed });
  t.teardown(() => emu.stop());
  const a = emu.connect();
  const b = emu.connect();
  await createVolume(a, { name: 'v', blocks: 32768, blockSize: 512, placement: 'striped' }, 1);
  // Host a waits for a forced-unit-access write on a disk with a seek time: the medium is busy for
  // milliseconds, so the driver would move the clock on to its completion whenever nothing runs.
  const slow = write(a, 1, 0, pattern(1 << 20, 1), 512, true);
  // Host b sends command after command, each after some promise hops of its own (a client library's layers).
  const at: number[] = [];
  for (let i = 0; i < 20; i++) {
    await run(b, 0, Buffer.alloc(6)); // TEST UNIT READY
    at.push(emu.driver().now());
    for (let k = 0; k < 10; k++) await Promise.resolve();
  }
  const gaps = at.slice(1).map((x, i) => x - at[i]);
  t.true(gaps.every((g) => g <= 4 * ROUND_NS), `virtual time between two answers to host b: ${gaps.map((g) => g / 1000).join(', ')} us`);
  await slow;
});

test('an answer never delivered stops the array after the bound, with an error naming the session it was for', async (t) => {
  const emu = await startSmall({ dir: tempDir('det-undelivered'), mode: 'deterministic', seed: 4 });
  t.teardown(() => emu.stop('powerFail'));
  const d = emu.driver() as DeterministicDriver;
  d.deliveryBoundMs = 50; // the guard's bound, wall time (10 s by default)
  const s = emu.connect();
  emu.array().deliveryGate = () => undefined; // a delivery that never comes
  t.is((await run(s, 0, Buffer.alloc(6))).status, 0, 'the host has its answer');
  await emu.settle();
  t.regex(emu.array().failed?.message ?? 'not stopped', /virtual time held for 50 ms \(wall\) waiting for the delivery of 1 answer\(s\) to port q0 session 0/);
  await t.throwsAsync(run(s, 0, Buffer.alloc(6)), { message: /session closed|virtual time held/ }, 'the stopped array takes no more commands');
});

test('driver.passed(ns) resolves once commands have moved the virtual clock to ns, without moving it, and at stop', async (t) => {
  const emu = await startSmall({ dir: tempDir('det-passed'), mode: 'deterministic' });
  const s = emu.connect();
  await createVolume(s, { name: 'v', blocks: 8192, blockSize: 512 }, 1);
  const d = emu.driver();
  const at = d.now() + 50 * ROUND_NS;
  let reached = -1;
  const waiting = d.passed!(at).then(() => { reached = d.now(); });
  await emu.settle();
  t.is(reached, -1, 'nothing ran: the clock did not move for it');
  for (let k = 0; reached < 0 && k < 1000; k++) await write(s, 1, k % 64, pattern(512, k)); // commands move the clock
  await waiting;
  t.true(reached >= at, `resolved at ${reached}, due at ${at}`);
  const never = d.passed!(d.now() + 3600e9);
  await emu.stop();
  await never; // stopping resolves it
  t.pass();
});
