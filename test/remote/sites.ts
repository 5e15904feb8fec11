// Two arrays and a relay through the real firmware (deterministic mode, one virtual clock): the rig
// of document 003's scenario tests (test/scenario/003-remote.test.ts) and of bench/remote.ts.
import * as path from 'path';
import { Emulator } from '../../harness';
import { ScsiClient } from '../../host/client';
import type { RemoteStatus } from '../../lib/remote';
import { tempDir, createVolume } from '../harness/env';

export interface SitesOptions {
  /** Relay at `nearKm` from A, B at `farKm` from the relay; or without a relay, B at `directKm` from A. */
  relay?: { nearKm: number; farKm: number; cutThrough?: boolean; timeoutMs?: number; retries?: number };
  directKm?: number;
  /** Without a relay: this many independent links between A and B (Fig. 17's separate networks; default 1). */
  links?: number;
  blocks?: number;
  seed?: number;
  loss?: number;
  trace?: boolean;
  /** Of the far (or direct) link; default the link model's 10,000 Mbit/s. */
  bandwidthMbps?: number;
  /** Media in files, which keep their data over a restart (default RAM: blank after every start). */
  fileMedia?: boolean;
  /** The arrays' cache destage age (default 5 ms); a long one keeps written data dirty in NV. */
  destageAgeMs?: number;
}

export interface Sites {
  emu: Emulator;
  dir: string;
  a: ScsiClient;
  b: ScsiClient;
  /** Volume numbers: "vol" on A (LUN 1) and "mirror" on B (LUN 1). */
  va: number;
  vb: number;
}

export function sitesTopology(dir: string, o: SitesOptions): object {
  const array = (name: string) => ({
    name, dir: path.join(dir, name),
    cache: { size: '16MiB', destageIntervalMs: 2, destageAgeMs: o.destageAgeMs ?? 5 },
    iops: [{ role: 'channel' }, { role: 'disk' }],
    media: [{ name: 'd0', kind: o.fileMedia ? 'file' : 'ram', size: '64MiB' }],
    ports: [{ name: 'q0', iop: 0, transport: 'inproc' }],
  });
  const lossy = (l: object) => (o.loss ? { ...l, loss: o.loss } : l);
  const links = o.relay
    ? [lossy({ name: 'near', a: 'A', b: 'relay0', km: o.relay.nearKm }), lossy({ name: 'far', a: 'relay0', b: 'B', km: o.relay.farKm, ...(o.bandwidthMbps ? { bandwidthMbps: o.bandwidthMbps } : {}) })]
    : Array.from({ length: o.links ?? 1 }, (_, i) => lossy({ name: i === 0 ? 'direct' : `direct${i + 1}`, a: 'A', b: 'B', km: o.directKm ?? 1000, ...(o.bandwidthMbps ? { bandwidthMbps: o.bandwidthMbps } : {}) }));
  return {
    mode: 'deterministic', seed: o.seed ?? 3,
    ...(o.trace ? { trace: path.join(dir, 'trace.jsonl'), metricsIntervalMs: 1000 } : {}),
    arrays: [array('A'), array('B')],
    relays: o.relay ? [{ name: 'relay0', cutThrough: o.relay.cutThrough ?? false, timeoutMs: o.relay.timeoutMs ?? 50, retries: o.relay.retries ?? 5 }] : [],
    links,
  };
}

export async function startSites(label: string, o: SitesOptions = {}): Promise<Sites> {
  return startWith(label, (dir) => sitesTopology(dir, o), o.blocks);
}

/** Starts a topology of arrays A and B (and whatever joins them) with volume "vol" on A and "mirror" on B. */
export async function startWith(label: string, topology: (dir: string) => object, blocks = 4096): Promise<Sites> {
  const dir = tempDir(label);
  const emu = await Emulator.start(topology(dir), { debug: true });
  const sa = emu.connect('A');
  const sb = emu.connect('B');
  const va = await createVolume(sa, { name: 'vol', blocks, blockSize: 512 }, 1);
  const vb = await createVolume(sb, { name: 'mirror', blocks, blockSize: 512 }, 1);
  return { emu, dir, a: new ScsiClient(sa), b: new ScsiClient(sb), va, vb };
}

/** Advances virtual time until A's pair satisfies `ok` (bounded in virtual time). */
export async function untilRemote(s: Sites, ok: (p: RemoteStatus) => boolean, what: string, boundMs = 20_000): Promise<RemoteStatus> {
  for (let t = 0; t < boundMs; t += 5) {
    const p = await s.a.remoteOf(s.va);
    if (ok(p)) return p;
    await s.emu.advance(5);
  }
  throw new Error(`the remote pair never reached ${what} within ${boundMs} ms of virtual time`);
}

/**
 * Stops every node at once as a power loss (a kill -9 of the arrays: acknowledged state is in their NV
 * files) and starts the same topology again from the same directories.
 */
export async function restartSites(s: Sites, o: SitesOptions = {}, log?: (line: string) => void): Promise<Sites> {
  await s.emu.stop('powerFail');
  const emu = await Emulator.start(sitesTopology(s.dir, o), { debug: true, ...(log ? { log } : {}) });
  return { ...s, emu, a: new ScsiClient(emu.connect('A')), b: new ScsiClient(emu.connect('B')) };
}
