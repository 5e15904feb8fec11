// Redundancy-processed remote copy (document 003, embodiment 5): `npm run bench -- redundancy
// [--mib=N] [--quick] [--window=W] [--arrays]`, one JSON document.
//
// --arrays: through two arrays' firmware (build/controller.wasm, release): a remote pair created with
// redundancy 8+2, 8+0 (the same unit without parity: lost parts asked again) or none (the link unit's
// own retransmission, READY from the first missing byte) copies the whole volume (the initial copy,
// S300-S309, COPY_DEPTH blocks in flight) over two 100 km links; completion time is virtual time from
// REMOTE CREATE to the pair state; sample blocks written on A before are compared on B after.
//
// A remote copy of a volume, block after block as Fig. 15 runs it (S300-S309: the next block once
// RECEIVED came for the last; --window=W keeps W blocks in flight), between two redundancy units
// running in the firmware (remote/redundancy.ts in build/testing.debug.wasm) over two links
// (Fig. 17: separate networks) of the link model, on one virtual clock. Each block is 64 KiB:
// N = 8 data parts of 8 KiB. Two peers, at 0 %, 1 % and 5 % packet loss on both links:
//   redundancy 8+2: 2 RS parity parts per block; the receiver rebuilds from any 8 parts;
//   retransmission 8+0: the same unit with no parity; a lost part is asked for again by the
//     receiver after its timeout (the retransmission of lost packets without redundancy).
// Both use the same timeout (5 ms, five round trips of the 100 km links) and retries. Completion
// time is virtual time from the first WRITE to the last RECEIVED; every block is checked at the
// receiver (its first bytes carry its number, the rest a fixed pattern). Wall-clock seconds are
// reported beside, for the record.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildRdNet, copyVolume } from '../test/remote/rdnode';
import { Emulator } from '../harness';
import { ScsiClient } from '../host/client';
import type { Redundancy } from '../lib/remote';
import { ALL_PORTS } from '../lib/scsi';

const KiB = 1024;
const MiB = 1 << 20;
const BLOCK = 64 * KiB;

class UsageError extends Error {
  constructor(m: string) { super(m); this.name = 'UsageError'; }
}

function progress(msg: string): void { process.stderr.write(`bench redundancy: ${msg}\n`); }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }

interface Case { m: number; loss: number; window: number; blocks: number; seed: number }

function runCase(c: Case): Record<string, number> {
  const link = (name: string) => ({ name, a: 'origin', b: 'remote', km: 100, bandwidthMbps: 1000, loss: c.loss });
  const { net, origin, remote } = buildRdNet({ links: [link('net13'), link('net14')], m: c.m, n: 8, timeoutUs: 5000, retries: 8, seed: c.seed, slots: 64 });
  const body = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) body[i] = (i * 131 + 7) & 0xFF;
  const block = (b: number) => { const d = body.slice(); new DataView(d.buffer).setUint32(0, b, true); return d; };
  let bad = 0;
  let stored = 0;
  remote.store = (lba, bytes) => {
    stored++;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length !== BLOCK || v.getUint32(0, true) !== lba || bytes[BLOCK - 1] !== body[BLOCK - 1] || bytes[BLOCK >> 1] !== body[BLOCK >> 1]) bad++;
  };
  const wall = process.hrtime.bigint();
  const { ns, completions } = copyVolume(net, origin, c.blocks, block, c.window);
  const wallS = Number(process.hrtime.bigint() - wall) / 1e9;
  const failed = completions.filter((x) => x.status !== 0).length;
  if (bad > 0 || failed > 0 || stored < c.blocks) throw new Error(`m=${c.m} loss=${c.loss}: ${bad} blocks wrong, ${failed} failed, ${stored} of ${c.blocks} stored`);
  const s = origin.stats();
  const r = remote.stats();
  const lost = net.links.reduce((k, l) => k + l.counters.lost, 0);
  const sent = net.links.reduce((k, l) => k + l.counters.sent, 0);
  return {
    completionMs: round3(ns / 1e6), MBps: round3((c.blocks * BLOCK) / MiB / (ns / 1e9)), packetsSent: sent, packetsLost: lost,
    partsResent: s.partsResent, resendRequests: r.resendRequests, writeRepeats: s.repeats, rebuilt: r.rebuilt, surplus: r.surplus, wallSeconds: round3(wallS),
  };
}

/** Virtual ms for the initial copy of a `mib` MiB volume between two arrays, and what the units counted. */
async function arraysCase(mib: number, loss: number, redundancy: Redundancy | undefined): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-bench-rd-'));
  const array = (name: string) => ({
    name, dir: path.join(dir, name), cache: { size: '64MiB' }, iops: [{ role: 'channel' }, { role: 'disk' }],
    media: [{ name: 'd0', kind: 'ram', size: `${mib + 16}MiB` }], ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
  });
  const link = (name: string) => ({ name, a: 'A', b: 'B', km: 100, bandwidthMbps: 1000, loss });
  const emu = await Emulator.start({ mode: 'deterministic', seed: 1, arrays: [array('A'), array('B')], links: [link('net13'), link('net14')] }, { debug: false });
  const wall = process.hrtime.bigint();
  try {
    const a = new ScsiClient(emu.connect('A'));
    const b = new ScsiClient(emu.connect('B'));
    const blocks = mib * 2048;
    await a.createVolume({ name: 'vol', blocks, blockSize: 512 });
    await b.createVolume({ name: 'copy', blocks, blockSize: 512 });
    await a.mapVolume(0, ALL_PORTS, 1);
    await b.mapVolume(0, ALL_PORTS, 1);
    const samples = Array.from({ length: 8 }, (_, i) => Math.floor((blocks - 128) * i / 8));
    for (const [i, lba] of samples.entries()) await a.write(1, lba, Buffer.alloc(65536, 0x31 + i));
    const t0 = emu.driver('A').now();
    await a.remoteCreate({ volume: 0, to: 'B', toVolume: 'copy', mode: 'backup', redundancy, timeoutMs: 5, retries: 8 });
    let st = await a.remoteOf(0);
    while (st.state !== 'pair') {
      if (st.state === 'suspended') throw new Error(`loss ${loss}: the pair was suspended (${st.reason})`);
      await emu.advance(5);
      st = await a.remoteOf(0);
    }
    const ns = emu.driver('A').now() - t0;
    for (const [i, lba] of samples.entries()) {
      if (!(await b.read(1, lba, 128)).equals(Buffer.alloc(65536, 0x31 + i))) throw new Error(`loss ${loss}: block at LBA ${lba} differs on B`);
    }
    const lost = emu.network.links.reduce((k, l) => k + l.counters.lost, 0);
    const sent = emu.network.links.reduce((k, l) => k + l.counters.sent, 0);
    progress(`  ${round3(ns / 1e6)} ms virtual, ${round3(Number(process.hrtime.bigint() - wall) / 1e9)} s wall`);
    return { completionMs: round3(ns / 1e6), MBps: round3(mib / (ns / 1e9)), packetsSent: sent, packetsLost: lost, wallSeconds: round3(Number(process.hrtime.bigint() - wall) / 1e9) };
  } finally {
    await emu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runArrays(mib: number): Promise<object> {
  const results: Record<string, object> = {};
  const failed: Record<string, string> = {};
  for (const loss of [0, 0.01, 0.05]) {
    const row: Record<string, Record<string, number>> = {};
    for (const [name, r] of [['redundancy8+2', { n: 8, m: 2 }], ['retransmission8+0', { n: 8, m: 0 }], ['linkRetransmission', undefined]] as const) {
      progress(`arrays: ${mib} MiB, loss ${loss * 100} %, ${name}`);
      try {
        row[name] = await arraysCase(mib, loss, r);
      } catch (e) { // the pair gave up (its bound): a figure of its own, not a failed bench
        if (!/suspended/.test((e as Error).message)) throw e;
        failed[`loss${loss * 100}%/${name}`] = (e as Error).message;
      }
    }
    const ratio = (x: string) => (row[x] && row['redundancy8+2'] ? round3(row[x].completionMs / row['redundancy8+2'].completionMs) : null);
    results[`loss${loss * 100}%`] = { ...row, ratio: ratio('retransmission8+0'), ratioLink: ratio('linkRetransmission') };
  }
  return {
    benchmark: 'redundancy', through: 'two arrays\' firmware (build/controller.wasm): the initial copy of a remote pair',
    what: 'remote copy completion time in virtual time: 8+2 (003 embodiment 5) against 8+0 (lost parts asked again) and against the link unit without redundancy (READY from the first missing byte)',
    volumeMiB: mib, blockBytes: BLOCK, inFlight: 'COPY_DEPTH = 4 send commands (remote/mirror.ts)',
    links: '2 links (Fig. 17), 100 km each, 1000 Mbit/s each, loss on both', timeoutMs: 5, retries: 8,
    ratio: 'retransmission8+0 / redundancy8+2 completion time; ratioLink: linkRetransmission / redundancy8+2',
    results,
    failed,
  };
}

export async function run(args: string[]): Promise<object> {
  let mib = 1024;
  let window = 1;
  let arrays = false;
  for (const a of args) {
    const m = /^--(mib|window)=(\d+)$/.exec(a);
    if (a === '--arrays') arrays = true;
    else if (a === '--quick') mib = 16;
    else if (m && m[1] === 'mib') mib = Number(m[2]);
    else if (m && m[1] === 'window') window = Number(m[2]);
    else throw new UsageError(`unknown argument ${JSON.stringify(a)} (known: --mib=N, --window=W, --quick, --arrays)`);
  }
  if (mib < 1 || window < 1 || window > 64) throw new UsageError('--mib must be at least 1 and --window 1..64');
  if (arrays) return runArrays(mib);
  const blocks = (mib * MiB) / BLOCK;
  const results: Record<string, object> = {};
  for (const loss of [0, 0.01, 0.05]) {
    const row: Record<string, Record<string, number>> = {};
    for (const [name, m] of [['redundancy8+2', 2], ['retransmission8+0', 0]] as const) {
      progress(`${mib} MiB, loss ${loss * 100} %, ${name}`);
      row[name] = runCase({ m, loss, window, blocks, seed: 1 });
    }
    results[`loss${loss * 100}%`] = {
      ...row,
      ratio: round3(row['retransmission8+0'].completionMs / row['redundancy8+2'].completionMs),
    };
  }
  return {
    benchmark: 'redundancy',
    what: 'remote copy completion time in virtual time, 003 embodiment 5 (8 data + 2 RS parity parts per 64 KiB block) against retransmission of lost parts without parity (8+0)',
    volumeMiB: mib,
    blockBytes: BLOCK,
    blocks,
    window,
    links: '2 links (Fig. 17), 100 km each (0.5 ms one way), 1000 Mbit/s each, loss on both; parts alternate between them',
    timeoutMs: 5,
    ratio: 'retransmission completion time / redundancy completion time (above 1: redundancy is faster)',
    results,
  };
}
