// The timing model of a medium in virtual time: a seek curve over the head's travel, rotation,
// transfer rate, and a "slow" fault that multiplies it. Latencies come from the command trace.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir, startSmall, createVolume, read, write } from './env';

// No rotation (rpm 0) so the figures are exact: seek 0.5 ms track-to-track, 4 ms average, 9 ms full
// stroke; 100 MB/s. A 64 KiB stage transfers in 0.65536 ms.
const disk = { name: 'd0', kind: 'ram', size: '1GiB', timing: { seekMs: { track: 0.5, average: 4, full: 9 }, rpm: 0, transferMBps: 100 } };
const TRANSFER_MS = 65536 / 100e3;

/** Medium sectors the measured reads start at; chunk 0 holds the label, so volume LBA = sector - 128. */
const AT = [256, 384, 2097152 - 128, 1398101 - 128];

async function latencies(faults: object[] = []): Promise<number[]> {
  const dir = tempDir('timing');
  // The chunks read are written first (a never-written chunk reads as zeros without the medium),
  // then the array restarts so that nothing is cached.
  const o = { dir, mode: 'deterministic' as const, trace: true, traceCommands: true, media: [{ ...disk, kind: 'file', faults }] };
  const setup = await startSmall(o);
  const w = setup.connect();
  await createVolume(w, { name: 't', blocks: 2097152 - 128, blockSize: 512 }, 1);
  for (const lba of [0, ...AT.map((x) => x - 128)]) await write(w, 1, lba, Buffer.alloc(65536, 1));
  await setup.stop();
  const emu = await startSmall(o);
  const s = emu.connect();
  await read(s, 1, 0, 128); // not measured: puts the head at sector 256 (boot read the label at sector 0)
  await read(s, 1, AT[0] - 128, 128); // no seek
  await read(s, 1, AT[1] - 128, 128); // the next 64 KiB: no seek
  await read(s, 1, AT[2] - 128, 128); // the far end: a full stroke
  await read(s, 1, AT[3] - 128, 128); // back a third of the stroke: the average seek
  await emu.stop();
  return fs.readFileSync(path.join(dir, 'trace.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.type === 'command' && r.opcode === 0x28).map((r) => r.latencyUs / 1000).slice(1);
}

test('stage latencies follow the seek curve and the transfer rate', async (t) => {
  const [first, next, far, third] = await latencies();
  const near = (x: number, want: number) => t.true(Math.abs(x - want) < 0.1, `${x} ms, expected about ${want} ms`);
  near(first, TRANSFER_MS);
  near(next, TRANSFER_MS);
  near(far, 9 + TRANSFER_MS); // the full stroke
  t.true(third > 3.5 + TRANSFER_MS && third < 4.5 + TRANSFER_MS, `a third of the stroke: ${third} ms`);
});

test('a slow fault multiplies the service time', async (t) => {
  const plain = await latencies();
  const slow = await latencies([{ type: 'slow', factor: 10 }]);
  plain.forEach((p, i) => t.true(Math.abs(slow[i] - 10 * p) < 0.5, `${slow[i]} ms vs 10 x ${p} ms`));
});
