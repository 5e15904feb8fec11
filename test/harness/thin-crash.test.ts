// Thin volumes over power losses and torn NV writes at every point of a workload that fills a small
// pool, gives chunks back with UNMAP and has another volume take them (docs/design-notes.md, "Thin
// provisioning"; deterministic mode, virtual time). After each crash and restart: every block reads
// what its last acknowledged command left (an unacknowledged one's block its old or new content, or
// MEDIUM ERROR where its NV bytes were torn), never the other volume's bytes or a deleted chunk's;
// and the media's free chunks and the volumes' allocated chunks add up to the pool.
import test, { type ExecutionContext } from 'ava';
import * as scsi from '../../lib/scsi';
import { ScsiClient } from '../../host/client';
import type { CommandTransport } from '../../lib/transport';
import { startSmall, tempDir, createVolume, write, read, pattern, SmallOptions } from './env';
import { send } from './sbc-env';

const CHUNK = 65536;
const BPC = CHUNK / 512;
const POOL = 15; // chunks of the 1 MiB medium after its label's
const BLOCK = 4096; // the checked unit

type Op = { what: string; run: (s: CommandTransport, emu: { flush(): Promise<unknown> }) => Promise<unknown>; effect?: (m: Model) => void };
/** Per volume (LUN), per 4 KiB block: the contents it may hold. */
type Model = Map<number, Map<number, Buffer[]>>;

const fill = (lun: number, chunk: number, version: number) => pattern(CHUNK, lun * 1000 + chunk * 10 + version);
const zeros = Buffer.alloc(BLOCK);

function setBlocks(m: Model, lun: number, lba: number, data: Buffer): void {
  const v = m.get(lun)!;
  for (let at = 0; at < data.length; at += BLOCK) {
    const b = (lba * 512 + at) / BLOCK;
    const now = data.subarray(at, at + BLOCK);
    v.set(b, [now]);
  }
}

function writeOp(lun: number, chunk: number, version: number, bytes = CHUNK): Op {
  const data = fill(lun, chunk, version).subarray(0, bytes);
  return { what: `LUN ${lun} writes chunk ${chunk} (${bytes} bytes)`, run: (s) => write(s, lun, chunk * BPC, data), effect: (m) => setBlocks(m, lun, chunk * BPC, data) };
}

function unmapOp(lun: number, chunk: number, chunks: number): Op {
  const list = Buffer.alloc(24);
  list.writeUInt16BE(22, 0);
  list.writeUInt16BE(16, 2);
  list.writeBigUInt64BE(BigInt(chunk * BPC), 8);
  list.writeUInt32BE(chunks * BPC, 16);
  return {
    what: `LUN ${lun} unmaps chunks ${chunk}-${chunk + chunks - 1}`,
    run: async (s) => { const r = await send(s, [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], { out: list, lun }); if (r.r.status !== 0) throw new Error(`UNMAP: ${r.sense?.text}`); },
    effect: (m) => setBlocks(m, lun, chunk * BPC, Buffer.alloc(chunks * CHUNK)),
  };
}

const flushOp: Op = { what: 'flush', run: (_s, emu) => emu.flush() };

/** Fills the pool (A 7 chunks, B 6), gives 4 of A's back, B takes them (and the last two free), A writes one again. */
const workload: Op[] = [
  ...[0, 1, 2, 3, 4, 5, 6].map((k) => writeOp(1, k, 1)),
  flushOp,
  ...[0, 1, 2, 3, 4, 5].map((k) => writeOp(2, k, 1)),
  unmapOp(1, 2, 4),
  ...[6, 7, 8, 9].map((k) => writeOp(2, k, 1)),
  flushOp,
  writeOp(1, 2, 2, BLOCK),
  flushOp,
];

const base = (dir: string): SmallOptions => ({
  dir, mode: 'deterministic', seed: 3, media: [{ name: 'd0', kind: 'file', size: '1MiB' }],
  cache: { size: '4MiB', destageAgeMs: 600_000, destageIntervalMs: 1000 },
});

async function setUp(dir: string): Promise<void> {
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  await createVolume(s, { name: 'a', blocks: 32 * BPC, blockSize: 512, placement: 'thin' }, 1);
  await createVolume(s, { name: 'b', blocks: 32 * BPC, blockSize: 512, placement: 'thin' }, 2);
  await emu.stop('graceful');
}

/** Runs the workload with `fault` armed; returns the model of what each block may hold. */
async function crashRun(t: ExecutionContext, dir: string, fault: string): Promise<{ model: Model; fired: boolean }> {
  const model: Model = new Map([[1, new Map()], [2, new Map()]]);
  const emu = await startSmall(base(dir));
  const s = emu.connect();
  emu.array().inject(fault);
  const entries = emu.array().nv.counters.entries;
  let crashed = false;
  for (const op of workload) {
    if (crashed) break;
    try {
      await op.run(s, emu);
      op.effect?.(model);
    } catch {
      crashed = true;
      // In flight at the crash: each block its old content or its new one.
      if (op.effect) {
        const after: Model = new Map([[1, new Map()], [2, new Map()]]);
        op.effect(after);
        for (const [lun, blocks] of after) for (const [b, now] of blocks) model.get(lun)!.set(b, [...(model.get(lun)!.get(b) ?? [zeros]), ...now]);
      }
    }
  }
  t.log(`${fault}: ${crashed ? 'crashed' : 'no crash'} after ${emu.array().nv.counters.entries - entries} NV writes of the workload`);
  await emu.stop();
  return { model, fired: crashed };
}

/** Restarts, checks, destages everything recovered, and checks again from the media (a cold cache after another restart). */
async function check(t: ExecutionContext, dir: string, model: Model, what: string): Promise<void> {
  const emu = await startSmall(base(dir));
  try {
    await checkRun(t, emu, model, `${what}, after the restart`);
    const [flushed] = await emu.flush();
    t.is(flushed.dirtyLeft, 0, `${what}: every slot recovered reached its medium`);
  } finally { await emu.stop(); }
  const cold = await startSmall(base(dir));
  try { await checkRun(t, cold, model, `${what}, from the media`); } finally { await cold.stop(); }
}

async function checkRun(t: ExecutionContext, emu: Awaited<ReturnType<typeof startSmall>>, model: Model, what: string): Promise<void> {
  {
    const s = emu.connect();
    for (const lun of [1, 2]) {
      const blocks = model.get(lun)!;
      for (let b = 0; b < 32 * CHUNK / BLOCK; b++) {
        const may = blocks.get(b) ?? [zeros];
        const r = await s.submit({ lun, cdb: scsi.readWrite(false, b * 8, 8), dataInLength: BLOCK });
        if (r.status !== 0) {
          const sense = scsi.decodeSense(r.sense);
          t.true(may.length > 1 && sense.key === scsi.SenseKey.MEDIUM_ERROR, `${what}: LUN ${lun} block ${b}: ${sense.text}`);
          continue;
        }
        const got = Buffer.from(r.data);
        if (!may.some((x) => x.equals(got))) t.fail(`${what}: LUN ${lun} block ${b} reads bytes it may not (of ${may.length} allowed)`);
      }
    }
    const c = new ScsiClient(s);
    const vols = await c.listVolumes();
    const media = await c.listMedia();
    const used = vols.reduce((n, v) => n + v.allocatedBytes / CHUNK, 0);
    t.is(media[0].freeChunks + used, POOL, `${what}: free chunks and allocated ones add up to the pool`);
  }
}


test('the workload without a fault: every block as written, the pool adds up', async (t) => {
  const dir = tempDir('thin-crash-none');
  await setUp(dir);
  const { model, fired } = await crashRun(t, dir, 'nv power loss after 100000 writes');
  t.false(fired);
  await check(t, dir, model, 'no crash');
});

// The workload makes 94 NV writes; each cut point below is a run of its own.
for (const k of [2, 7, 13, 19, 25, 31, 37, 43, 49, 55, 61, 67, 73, 79, 85, 91]) {
  test(`power loss after ${k} NV writes of the workload: what was acknowledged is there, nothing of another volume shows, the pool adds up`, async (t) => {
    const dir = tempDir(`thin-crash-${k}`);
    await setUp(dir);
    const { model } = await crashRun(t, dir, `nv power loss after ${k} writes`);
    await check(t, dir, model, `power loss after ${k}`);
  });
  test(`an NV write torn after ${k} NV writes of the workload: the same`, async (t) => {
    const dir = tempDir(`thin-tear-${k}`);
    await setUp(dir);
    const { model } = await crashRun(t, dir, `nv torn bytes ${(k * 37) % 200 + 1} after ${k} writes`);
    await check(t, dir, model, `torn after ${k}`);
  });
}
