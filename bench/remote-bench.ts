// Remote copy benchmark (issue 10, "Measured"): `npm run bench -- remote [--quick]`, one JSON document.
//
// Host write latency on the operation array with a relay at 10 km and the standby at 1,000 km
// (document 003, embodiments 1 and 3: GOOD once the relay has the data, S126/S169) against direct
// synchronous remote copy at 1,000 km (GOOD once the standby has it), and against no remote copy at
// all. The firmware of both arrays and of the relay runs in deterministic mode on one virtual clock
// (harness/world.ts), so the figures are virtual time: a function of the firmware, the link model
// (5 µs per km, the bandwidth) and the sizes, not of how busy this machine is. Sequential writes of
// each size, one at a time; the mean and the largest per size; the ratio direct / relay is the
// documents' claim ("the latency of the near relay, not the far site"). Wall seconds for the record.
// The rig is examples/two-sites.json with RAM media, in-process ports and the links of each case.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Emulator } from '../harness';
import { ScsiClient } from '../host/client';
import { packagePath } from '../lib/paths';
import { ALL_PORTS } from '../lib/scsi';

class UsageError extends Error {
  constructor(m: string) { super(m); this.name = 'UsageError'; }
}

function progress(msg: string): void { process.stderr.write(`bench remote: ${msg}\n`); }
function round3(x: number): number { return Math.round(x * 1000) / 1000; }

type Case = 'relay' | 'direct' | 'async' | 'local';

function topology(dir: string, c: Case): object {
  const example = JSON.parse(fs.readFileSync(packagePath('examples', 'two-sites.json'), 'utf8'));
  const arrays = example.arrays.map((a: { name: string }) => ({
    ...a, dir: path.join(dir, a.name),
    media: [{ name: 'disk0', kind: 'ram', size: '128MiB' }],
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
  }));
  const links = c === 'relay' ? example.links
    : [{ name: 'direct', a: 'main', b: 'standby', km: 1000, bandwidthMbps: example.links[1].bandwidthMbps }];
  return { mode: 'deterministic', seed: 5, arrays, relays: c === 'relay' ? example.relays : [], links };
}

async function measure(c: Case, sizes: number[], writes: number): Promise<object> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sanbox-bench-remote-${c}-`));
  const emu = await Emulator.start(topology(dir, c), { debug: false });
  const wall = process.hrtime.bigint();
  try {
    const main = new ScsiClient(emu.connect('main'));
    const standby = new ScsiClient(emu.connect('standby'));
    await main.createVolume({ name: 'vol0', blocks: 64 * 2048, blockSize: 512 });
    await standby.createVolume({ name: 'vol0', blocks: 64 * 2048, blockSize: 512 });
    if (c !== 'local') {
      await main.remoteCreate({ volume: 0, to: 'standby', toVolume: 'vol0', via: c === 'relay' ? 'relay0' : undefined, mode: c === 'async' ? 'async' : undefined });
      for (let i = 0; (await main.remoteOf(0)).state !== 'pair'; i++) {
        if (i > 100_000) throw new Error('the initial copy did not finish in 500 s of virtual time');
        await emu.advance(5);
      }
    }
    const lun = 1;
    await main.mapVolume(0, ALL_PORTS, lun);
    const now = () => emu.driver('main').now();
    const bySize: Record<string, object> = {};
    for (const bytes of sizes) {
      let lba = 0; // aligned to the size: a send command is never widened past 256 KiB (comm/link.ts)
      const data = Buffer.alloc(bytes, 0x5a);
      const lat: number[] = [];
      for (let i = 0; i < writes; i++) {
        const t0 = now();
        await main.write(lun, lba, data);
        lat.push(now() - t0);
        // async: the journal drains before the next write, so every write is measured with the pair
        // current (back to back, writes outrun the far link and fill the journal: the note says so).
        if (c === 'async') {
          for (let k = 0; (await main.remoteOf(0)).journalEntries > 0; k++) {
            if (k > 100_000) throw new Error('the journal did not drain in 100 s of virtual time');
            await emu.advance(1);
          }
        }
        lba = (lba + bytes / 512) % (32 * 2048);
      }
      const sorted = [...lat].sort((a, b) => a - b);
      bySize[`${bytes / 1024}KiB`] = {
        meanUs: round3(lat.reduce((a, b) => a + b, 0) / lat.length / 1e3), medianUs: round3(sorted[sorted.length >> 1] / 1e3),
        maxUs: round3(sorted[sorted.length - 1] / 1e3), writes,
      };
      progress(`${c}: ${bytes / 1024} KiB: mean ${round3(lat.reduce((a, b) => a + b, 0) / lat.length / 1e3)} µs`);
    }
    const status = c === 'local' ? undefined : await main.remoteOf(0);
    // async: how far the journal grew, and whether it filled (then the pair suspends: reason journal).
    const journal = c !== 'async' || !status ? {} : {
      journal: { highWaterBytes: status.journalHighWater, fullSuspends: status.journalFullSuspends, reason: status.reason },
    };
    return { case: c, latency: bySize, pairState: status?.state ?? 'none', ...journal, wallSeconds: round3(Number(process.hrtime.bigint() - wall) / 1e9) };
  } finally {
    await emu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<object> {
  for (const a of args) if (a !== '--quick') throw new UsageError(`unknown option ${a} (known: --quick)`);
  const quick = args.includes('--quick');
  const sizes = [4096, 65536, 262144];
  const writes = quick ? 5 : 50;
  const relay = await measure('relay', sizes, writes) as { latency: Record<string, { meanUs: number; medianUs: number }> };
  const direct = await measure('direct', sizes, writes) as { latency: Record<string, { meanUs: number; medianUs: number }> };
  const asyncCopy = await measure('async', sizes, writes) as { latency: Record<string, { meanUs: number; medianUs: number }> };
  const local = await measure('local', sizes, writes) as { latency: Record<string, { meanUs: number }> };
  const ratios = Object.fromEntries(Object.keys(relay.latency).map((k) => [k, {
    directOverRelay: round3(direct.latency[k].meanUs / relay.latency[k].meanUs),
    directOverRelayMedian: round3(direct.latency[k].medianUs / relay.latency[k].medianUs),
    relayOverLocal: round3(relay.latency[k].meanUs / local.latency[k].meanUs),
    directOverAsync: round3(direct.latency[k].meanUs / asyncCopy.latency[k].meanUs),
    asyncOverLocal: round3(asyncCopy.latency[k].meanUs / local.latency[k].meanUs),
  }]));
  return {
    benchmark: 'remote', quick, clock: 'virtual (deterministic mode)', workload: 'sequential writes of each size, one at a time',
    rig: 'examples/two-sites.json: relay 10 km from main, standby 1,000 km from the relay (1 Gbit/s); direct and async (004): 1,000 km (1 Gbit/s)',
    cases: { relay, direct, async: asyncCopy, local }, ratios,
    note: 'ratios of the means. Through the relay a write is GOOD when the relay has it, but the standby applies one '
      + 'write of a pair per round trip of the far link (docs/remote.md, "Ordering at the secondary"): sustained writes '
      + 'faster than that fill the relay\'s buffer, and a write that finds it full waits for the pair\'s timeout (the max). '
      + 'async (004): GOOD on the main array\'s cache and NV, the journal sends later in issuing-ID order; each write is '
      + 'measured with the journal drained (the pair current). Back to back, writes outrun the far link (one entry applied per '
      + 'round trip), and a journal that fills suspends the pair (reason journal) with the rest in the difference bitmap.',
  };
}
