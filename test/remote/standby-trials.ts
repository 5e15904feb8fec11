// The failover invariant of document 003's embodiment 7, as trials through both arrays' firmware
// (docs/remote.md, "Failover trials"): a host writes to A's volume of a `delayed` remote pair and
// notifies restart points; at a random virtual instant A loses its power (mid-command, mid-packet,
// mid-reflect: wherever the instant falls); B fails over; B's volume must equal the state at the last
// restart point A's host saw acknowledged — or, when a restart point was on its way at the instant,
// the state at that one. The data lost is what the host wrote (acknowledged) after the point B holds.
// Used by test/remote/standby-trials.test.ts (a few seeds) and scripts/standby-trials.ts (many).
import { startSites, untilRemote } from './sites';

const BS = 512;

export interface TrialOptions {
  /** Volume blocks of 512 bytes. */
  blocks?: number;
  /** Through a relay at 10 km (the standby 1,000 km past it), else directly at 100 km. */
  relay?: boolean;
  /** A is killed within this many ms of virtual time after the pair reached `pair`. */
  horizonMs?: number;
  /** Each step of the trial, for following one that goes wrong. */
  log?: (line: string) => void;
}

export interface TrialResult {
  seed: number;
  /** Virtual ms after the pair reached `pair` at which A lost power. */
  killAtMs: number;
  /** B equals an allowed restart point. */
  held: boolean;
  /** Which: the last acknowledged one, or the one in flight at the instant. */
  matched: 'acknowledged' | 'inFlight' | 'none';
  restartPoints: number;
  writes: number;
  /** Bytes the host had acknowledged after the restart point B holds. */
  bytesLost: number;
  /** Bytes that differ from the last acknowledged restart point (0 when held). */
  bytesWrong: number;
}

/** xorshift32: the trial's own draws, from its seed. */
function prng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
}

export async function standbyTrial(seed: number, o: TrialOptions = {}): Promise<TrialResult> {
  const blocks = o.blocks ?? 1024;
  const rand = prng(seed);
  const s = await startSites(`standby-trial-${seed}`, o.relay ? { relay: { nearKm: 10, farKm: 1000 }, blocks, seed } : { directKm: 100, blocks, seed });
  try {
    await s.a.remoteCreate({ volume: s.va, to: 'B', toVolume: 'mirror', via: o.relay ? 'relay0' : undefined, mode: 'delayed' });
    await untilRemote(s, (x) => x.state === 'pair', 'pair');
    const a = s.emu.array('A');
    const clock = s.emu.driver('A');
    const start = clock.now();
    const killAtMs = rand() * (o.horizonMs ?? 40);
    let killed = false;
    let onKill: () => void = () => undefined;
    const kill = new Promise<void>((r) => { onKill = r; });
    const round = a.round.bind(a);
    a.round = (now: number) => {
      if (!killed && now >= start + killAtMs * 1e6) {
        killed = true;
        a.powerFail(`trial ${seed}: the operation array is lost at virtual ${killAtMs.toFixed(3)} ms`);
        onKill();
        return 0;
      }
      return round(now);
    };
    // The host: writes of 1-64 blocks, a restart point after every few; its view of what is acknowledged.
    const model = Buffer.alloc(blocks * BS);
    const acked: Buffer[] = [Buffer.from(model)]; // [0]: the state when the pair reached `pair`
    const bytesAfter: number[] = [0]; // acknowledged bytes written after each acknowledged point
    let inFlight: Buffer | undefined;
    let writes = 0;
    const host = (async () => {
      for (let op = 0; !killed && op < 10_000; op++) {
        o.log?.(`op ${op} at ${((clock.now() - start) / 1e6).toFixed(3)} ms`);
        if (rand() < 0.25) {
          inFlight = Buffer.from(model);
          o.log?.('restart point');
          await s.a.remoteChange(s.va, 'restart-point');
          acked.push(inFlight);
          bytesAfter.push(0);
          inFlight = undefined;
        } else {
          const n = 1 + Math.floor(rand() * 64);
          const lba = Math.floor(rand() * (blocks - n));
          const d = Buffer.alloc(n * BS);
          for (let i = 0; i < d.length; i += 4) d.writeUInt32LE((Math.floor(rand() * 4294967296)) >>> 0, i);
          o.log?.(`write ${lba}+${n}`);
          await s.a.write(1, lba, d);
          d.copy(model, lba * BS);
          bytesAfter[bytesAfter.length - 1] += d.length;
          writes++;
        }
      }
    })().catch(() => undefined); // A's power failed under a command: its answer never comes
    await Promise.race([kill, host.then(async () => { while (!killed) await s.emu.advance(1); })]);
    o.log?.(`killed at ${killAtMs.toFixed(3)} ms; failover`);
    await s.b.remoteChange(s.vb, 'failover');
    o.log?.('failed over');
    const b = await s.b.read(1, 0, blocks);
    const last = acked[acked.length - 1];
    const matched = b.equals(last) ? 'acknowledged' : inFlight && b.equals(inFlight) ? 'inFlight' : 'none';
    let bytesWrong = 0;
    if (matched === 'none') for (let i = 0; i < b.length; i++) if (b[i] !== last[i]) bytesWrong++;
    return {
      seed, killAtMs, held: matched !== 'none', matched, restartPoints: acked.length - 1, writes,
      bytesLost: matched === 'inFlight' ? 0 : bytesAfter[bytesAfter.length - 1], bytesWrong,
    };
  } finally {
    await s.emu.stop();
  }
}

/** Trials for seeds first..first+count-1, one after another; the summary the runner prints. */
export async function standbyTrials(first: number, count: number, o: TrialOptions = {}, each?: (r: TrialResult) => void) {
  const results: TrialResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const r = await standbyTrial(seed, o);
    results.push(r);
    each?.(r);
  }
  const held = results.filter((r) => r.held).length;
  return {
    trials: results.length,
    held,
    heldShare: results.length ? held / results.length : 0,
    matchedInFlight: results.filter((r) => r.matched === 'inFlight').length,
    bytesLost: results.reduce((n, r) => n + r.bytesLost, 0),
    bytesLostMax: Math.max(0, ...results.map((r) => r.bytesLost)),
    failed: results.filter((r) => !r.held).map((r) => r.seed),
    results,
  };
}
