// Two arrays and several relays through the real firmware (deterministic mode, one virtual clock):
// the rig of document 003's embodiment-4 scenario tests (test/scenario/003-relays.test.ts).
import * as path from 'path';
import { Emulator } from '../../harness';
import { ScsiClient } from '../../host/client';
import { startWith, type Sites } from './sites';

export interface RelaysOptions {
  /** Relays r1..rn, each at nearKm from A and farKm from B. */
  relays: number;
  nearKm?: number;
  farKm?: number;
  seed?: number;
  blocks?: number;
  /** Per relay (by index): link bandwidths toward A, and relay fields (nv, forward, holdMs, threshold, timeoutMs, retries). */
  nearMbps?: number[];
  relay?: (i: number, dir: string) => Record<string, unknown>;
  /** Media in files, which keep their data over a restart (default RAM). */
  fileMedia?: boolean;
}

export type RelaysSites = Sites & { names: string[] };

export function relaysTopology(dir: string, o: RelaysOptions): object {
  const array = (name: string) => ({
    name, dir: path.join(dir, name),
    cache: { size: '16MiB', destageIntervalMs: 2, destageAgeMs: 5 },
    iops: [{ role: 'channel' }, { role: 'disk' }],
    media: [{ name: 'd0', kind: o.fileMedia ? 'file' : 'ram', size: '64MiB' }],
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
  });
  const names = Array.from({ length: o.relays }, (_, i) => `r${i + 1}`);
  return {
    mode: 'deterministic', seed: o.seed ?? 3,
    arrays: [array('A'), array('B')],
    relays: names.map((name, i) => ({ name, timeoutMs: 50, retries: 5, ...(o.relay ? o.relay(i, dir) : {}) })),
    links: names.flatMap((name, i) => [
      { name: `near${i + 1}`, a: 'A', b: name, km: o.nearKm ?? 10, ...(o.nearMbps?.[i] ? { bandwidthMbps: o.nearMbps[i] } : {}) },
      { name: `far${i + 1}`, a: name, b: 'B', km: o.farKm ?? 1000 },
    ]),
  };
}

export async function startRelays(label: string, o: RelaysOptions): Promise<RelaysSites> {
  const s = await startWith(label, (dir) => relaysTopology(dir, o), o.blocks);
  return { ...s, names: Array.from({ length: o.relays }, (_, i) => `r${i + 1}`) };
}

/** Every node stops at once as a power loss and the same topology starts again from the same directories. */
export async function restartRelays(s: RelaysSites, o: RelaysOptions): Promise<RelaysSites> {
  await s.emu.stop('powerFail');
  const emu = await Emulator.start(relaysTopology(s.dir, o), { debug: true });
  return { ...s, emu, a: new ScsiClient(emu.connect('A')), b: new ScsiClient(emu.connect('B')) };
}

/** Advances virtual time until A's pair satisfies `ok` (test/remote/sites.ts: the rigs' sites have the same shape). */
export { untilRemote as untilPair } from './sites';

/** Advances virtual time until `ok` holds (bounded in virtual time), naming `what` otherwise. */
export async function until(s: RelaysSites, ok: () => boolean | Promise<boolean>, what: string, boundMs = 20_000): Promise<void> {
  for (let t = 0; t < boundMs; t += 5) {
    if (await ok()) return;
    await s.emu.advance(5);
  }
  throw new Error(`never ${what} within ${boundMs} ms of virtual time`);
}

/** Commands each relay has taken in, by name. */
export function jobs(s: RelaysSites): Record<string, number> {
  return Object.fromEntries(s.emu.network.relayStatus().map((r) => [r.relay, r.jobs]));
}
