// A network of relays and TypeScript endpoints for the remote tests (docs/remote.md).
import { parseLinks, type LinkSpec, type RelaySpec } from '../../harness/links';
import type { ArraySpec } from '../../harness/topology';
import { Network } from '../../harness/network';
import { Endpoint } from './endpoint';

export interface NetOptions { links: object[]; relays: object[]; seed?: number }

/** Endpoints "origin" (node 0) and "remote" (node 1), then the relays; every link indexed in file order. */
export function buildNet(o: NetOptions): { net: Network; origin: Endpoint; remote: Endpoint; links: LinkSpec[]; relays: RelaySpec[] } {
  const fake = ['origin', 'remote'].map((name) => ({ name, iops: ['channel', 'disk'], ports: [] }) as unknown as ArraySpec);
  const { links, relays } = parseLinks({ links: o.links, relays: o.relays }, fake);
  const names = [...fake.map((a) => a.name), ...relays.map((r) => r.name)];
  const net = new Network(names, links, relays, o.seed ?? 1, () => undefined, true);
  const ends = (n: string) => links.map((l, i) => ({ l, i })).filter((x) => x.l.a === n || x.l.b === n).map((x) => x.i);
  const origin = new Endpoint('origin', 0, ends('origin'));
  const remote = new Endpoint('remote', 1, ends('remote'));
  net.attach(origin);
  net.attach(remote);
  return { net, origin, remote, links, relays };
}

export function pattern(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xFF; }
  return b;
}
