// Relays and links in a topology (docs/topology.md, "Links and relays"; docs/remote.md): parsed
// and validated with the rest of the file, every error naming its field. Nodes are numbered
// arrays first, then relays, in file order; the firmware knows them by these numbers.
import * as path from 'path';
import * as A from '../hal/abi';
import { MAX_PORTS, LINK_ENTRY_BYTES, RELAY_MAX_LINKS, RELAY_MAX_NODES } from '../hal/abi';
import type { CommonMemory } from '../hal/memory';
import {
  TopologyError, object, known, list, pattern, boolean, number, integer, sizeIn, unique, type ArraySpec,
} from './topology';

/** One way across a link takes 5 µs per km (light in fibre). */
export const US_PER_KM = 5;

export interface RelaySpec {
  name: string;
  node: number;
  bufferBytes: number;
  cutThrough: boolean;
  timeoutMs: number;
  retries: number;
  /** Embodiment 4: a file for the relay's non-volatile buffer memory (its job table and buffer); absent: volatile. */
  nv?: string;
  /** When a stored command goes downstream: at once, after holdMs (or a flush), or while the bytes being forwarded stay below thresholdBytes. */
  forward: 'now' | 'later' | 'threshold';
  holdMs: number;
  thresholdBytes: number;
}

export interface LinkSpec {
  name: string;
  a: string;
  b: string;
  /** One-way propagation delay, ns (from latencyUs or km). */
  latencyNs: number;
  km: number | undefined;
  bandwidthMbps: number;
  jitterNs: number;
  loss: number;
  reorder: number;
  duplicate: number;
  queueBytes: number;
  /** The link's far end runs in another process, reached over TCP (harness/tcp-link.ts, docs/remote.md). */
  tcp?: TcpLinkSpec;
}

/** One side listens, the other connects; heartbeats find a silent peer, retries back off up to retryMaxMs. */
export interface TcpLinkSpec {
  listen?: { host: string; port: number };
  connect?: { host: string; port: number };
  /** The end of the link in this process, and the one elsewhere. */
  local: string;
  remote: string;
  heartbeatMs: number;
  retryMaxMs: number;
}

/** A link end on an array: one port per channel IOP (the queue pair of that IOP). */
export interface LinkPortSpec { link: number; iop: number; queue: number; name: string; /** The node at the other end. */ peer?: number }

/** What an array's firmware learns of the linked nodes (CFG_REMOTE). */
export interface LinkNodeSpec { node: number; routes: number[]; nodes: Array<{ name: string; kind: 'array' | 'relay' }>; neighbours: boolean[] }

const NAME = /^[A-Za-z0-9_-]{1,31}$/;

/**
 * `arrayNodes`: every array's name in node order, those running in another process included
 * (default: the arrays given, all of them here).
 */
export function parseLinks(top: Record<string, unknown>, arrays: ArraySpec[], baseDir = process.cwd(), arrayNodes = arrays.map((a) => a.name)): { relays: RelaySpec[]; links: LinkSpec[] } {
  const relays = (top.relays === undefined ? [] : list(top.relays, 'relays', 0, RELAY_MAX_NODES - arrayNodes.length))
    .map((r, i) => parseRelay(r, `relays[${i}]`, arrayNodes.length + i, baseDir));
  const nodes = [...arrayNodes, ...relays.map((r) => r.name)];
  const elsewhere = arrayNodes.filter((n) => !arrays.some((a) => a.name === n));
  relays.forEach((r, i) => {
    if (arrayNodes.includes(r.name)) throw new TopologyError(`relays[${i}].name`, `${JSON.stringify(r.name)} is also an array's name; nodes need one name each`);
  });
  unique(relays.map((r) => r.name), (i) => `relays[${i}].name`);
  unique(relays.map((r) => r.nv ?? `\0${r.name}`), (i) => `relays[${i}].nv`); // two relays cannot share one NV file
  const links = (top.links === undefined ? [] : list(top.links, 'links', 0, 64)).map((l, i) => parseLink(l, `links[${i}]`, nodes, elsewhere));
  unique(links.map((l) => l.name), (i) => `links[${i}].name`);
  relays.forEach((r, i) => {
    const n = links.filter((l) => l.a === r.name || l.b === r.name).length;
    if (n === 0) throw new TopologyError(`relays[${i}]`, `relay ${r.name} ends no link: add one to "links"`);
    if (n > RELAY_MAX_LINKS) throw new TopologyError(`relays[${i}]`, `relay ${r.name} ends ${n} links, at most ${RELAY_MAX_LINKS}`);
  });
  const routes = linkRoutes(nodes, links);
  const kinds = nodes.map((name, i) => ({ name, kind: (i < arrayNodes.length ? 'array' : 'relay') as 'array' | 'relay' }));
  arrays.forEach((a) => {
    const ai = arrayNodes.indexOf(a.name);
    const neighbours = nodes.map((n) => links.some((l) => (l.a === a.name && l.b === n) || (l.b === a.name && l.a === n)));
    a.linkNode = { node: ai, routes: routes[ai], nodes: kinds, neighbours };
    const ends = links.map((l, li) => ({ l, li })).filter((x) => x.l.a === a.name || x.l.b === a.name);
    const channels = a.iops.map((r, i) => ({ r, i })).filter((x) => x.r === 'channel');
    a.linkPorts = ends.flatMap((x) => channels.map((c, q) => ({ link: x.li, iop: c.i, queue: q, name: `${x.l.name}.q${q}`, peer: nodes.indexOf(x.l.a === a.name ? x.l.b : x.l.a) })));
    if (a.ports.length + a.linkPorts.length > MAX_PORTS) {
      throw new TopologyError(`arrays[${ai}].ports`, `${a.ports.length} ports and ${a.linkPorts.length} link queues (one per channel IOP and link) exceed the ${MAX_PORTS} ports an array has`);
    }
  });
  return { relays, links };
}

function parseRelay(v: unknown, f: string, node: number, baseDir: string): RelaySpec {
  const r = object(v, f);
  known(r, f, ['name', 'buffer', 'cutThrough', 'timeoutMs', 'retries', 'nv', 'forward', 'holdMs', 'threshold']);
  const nv = r.nv === undefined ? undefined : pattern(r.nv, `${f}.nv`, /^.{1,4096}$/, "a file path for the relay's non-volatile buffer memory");
  const forward = r.forward ?? 'now';
  if (forward !== 'now' && forward !== 'later' && forward !== 'threshold') throw new TopologyError(`${f}.forward`, `${JSON.stringify(forward)}: one of now, later, threshold`);
  if (forward !== 'now' && nv === undefined) throw new TopologyError(`${f}.forward`, `forward ${forward} holds commands in non-volatile memory: give the relay an "nv" file`);
  const cutThrough = boolean(r.cutThrough ?? false, `${f}.cutThrough`);
  if (forward !== 'now' && cutThrough) throw new TopologyError(`${f}.cutThrough`, `a relay that holds commands (forward ${forward}) cannot forward them before they have arrived`);
  if (r.holdMs !== undefined && forward !== 'later') throw new TopologyError(`${f}.holdMs`, 'only with "forward": "later"');
  if (r.threshold !== undefined && forward !== 'threshold') throw new TopologyError(`${f}.threshold`, 'only with "forward": "threshold"');
  return {
    name: pattern(r.name, `${f}.name`, NAME, 'letters, digits, _ or -, at most 31'),
    node,
    bufferBytes: sizeIn(r.buffer ?? '8MiB', `${f}.buffer`, 256 * 1024, 1 << 30),
    cutThrough,
    timeoutMs: number(r.timeoutMs ?? 50, `${f}.timeoutMs`, 0.01, 600_000),
    retries: integer(r.retries ?? 5, `${f}.retries`, 0, 100),
    ...(nv !== undefined ? { nv: path.resolve(baseDir, nv) } : {}),
    forward,
    holdMs: number(r.holdMs ?? 1000, `${f}.holdMs`, 0, 4_000_000),
    thresholdBytes: sizeIn(r.threshold ?? '1MiB', `${f}.threshold`, 0, 1 << 30),
  };
}

function parseLink(v: unknown, f: string, nodes: string[], elsewhere: string[]): LinkSpec {
  const l = object(v, f);
  known(l, f, ['name', 'a', 'b', 'km', 'latencyUs', 'bandwidthMbps', 'jitterUs', 'loss', 'reorder', 'duplicate', 'queue', 'tcp']);
  const name = pattern(l.name, `${f}.name`, NAME, 'letters, digits, _ or -, at most 31');
  const end = (x: unknown, g: string) => {
    const n = pattern(x, g, NAME, 'the name of an array or a relay');
    if (!nodes.includes(n)) throw new TopologyError(g, `no array or relay named ${JSON.stringify(n)} (nodes: ${nodes.join(', ')})`);
    return n;
  };
  const a = end(l.a, `${f}.a`);
  const b = end(l.b, `${f}.b`);
  if (a === b) throw new TopologyError(`${f}.b`, `a link joins two different nodes; both ends are ${a}`);
  if (l.km !== undefined && l.latencyUs !== undefined) throw new TopologyError(`${f}.latencyUs`, 'give "km" or "latencyUs", not both');
  const km = l.km === undefined ? undefined : number(l.km, `${f}.km`, 0, 40_000);
  const latencyUs = km !== undefined ? km * US_PER_KM : number(l.latencyUs ?? 0, `${f}.latencyUs`, 0, 10_000_000);
  return {
    name, a, b, km, latencyNs: latencyUs * 1000,
    bandwidthMbps: number(l.bandwidthMbps ?? 10_000, `${f}.bandwidthMbps`, 0.001, 1_000_000),
    jitterNs: number(l.jitterUs ?? 0, `${f}.jitterUs`, 0, 10_000_000) * 1000,
    loss: number(l.loss ?? 0, `${f}.loss`, 0, 1),
    reorder: number(l.reorder ?? 0, `${f}.reorder`, 0, 1),
    duplicate: number(l.duplicate ?? 0, `${f}.duplicate`, 0, 1),
    queueBytes: sizeIn(l.queue ?? '4MiB', `${f}.queue`, LINK_ENTRY_BYTES, 1 << 30),
    ...parseTcp(l.tcp, `${f}.tcp`, a, b, elsewhere),
  };
}

/**
 * A link with one end in another process needs "tcp" (listen on this side, or connect to the
 * other's); a link with both ends here must not have it, and one with neither end here is no
 * business of this process.
 */
function parseTcp(v: unknown, f: string, a: string, b: string, elsewhere: string[]): { tcp?: TcpLinkSpec } {
  const far = [a, b].filter((n) => elsewhere.includes(n));
  if (far.length === 2) throw new TopologyError(f.replace(/\.tcp$/, ''), `both ends (${a}, ${b}) run elsewhere: this process has no part in the link`);
  if (far.length === 0) {
    if (v !== undefined) throw new TopologyError(f, `both ends (${a}, ${b}) run in this process: "tcp" is for a link to an array that runs elsewhere`);
    return {};
  }
  if (v === undefined) throw new TopologyError(f, `${far[0]} runs elsewhere: the link needs "tcp": { "listen": "host:port" } on one side and { "connect": "host:port" } on the other`);
  const t = object(v, f);
  known(t, f, ['listen', 'connect', 'heartbeatMs', 'retryMaxMs']);
  if ((t.listen === undefined) === (t.connect === undefined)) throw new TopologyError(f, 'give "listen" (this side waits for the other) or "connect" (this side dials it), one of them');
  const address = (x: unknown, g: string, min: number) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(pattern(x, g, /^.{1,300}$/, 'host:port'));
    const port = m ? Number(m[2]) : -1;
    if (!m || port < min || port > 65535) throw new TopologyError(g, `${JSON.stringify(x)}: expected host:port with a port from ${min} to 65535`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  };
  return {
    tcp: {
      // Port 0 listens on any free port (the log line "listening on" names it).
      ...(t.listen !== undefined ? { listen: address(t.listen, `${f}.listen`, 0) } : { connect: address(t.connect, `${f}.connect`, 1) }),
      local: far[0] === a ? b : a,
      remote: far[0],
      heartbeatMs: number(t.heartbeatMs ?? 1000, `${f}.heartbeatMs`, 10, 60_000),
      retryMaxMs: number(t.retryMaxMs ?? 2000, `${f}.retryMaxMs`, 10, 600_000),
    },
  };
}

/**
 * For each node, the link it sends on to reach each other node (fewest hops, first link in file
 * order on a tie), or -1. routes[from][to].
 */
export function linkRoutes(nodeNames: string[], links: LinkSpec[]): number[][] {
  return nodeNames.map((from) => {
    const via = nodeNames.map(() => -1);
    const seen = new Set([from]);
    let frontier: Array<{ n: string; first: number }> = [{ n: from, first: -1 }];
    while (frontier.length > 0) {
      const next: typeof frontier = [];
      for (const x of frontier) {
        links.forEach((l, li) => {
          const other = l.a === x.n ? l.b : l.b === x.n ? l.a : undefined;
          if (other === undefined || seen.has(other)) return;
          seen.add(other);
          const first = x.first < 0 ? li : x.first;
          via[nodeNames.indexOf(other)] = first;
          next.push({ n: other, first });
        });
      }
      frontier = next;
    }
    return via;
  });
}

/**
 * The array's link queues as ports after its own (kind PORT_LINK, one session of entry rings) and
 * its place among the nodes (CFG_REMOTE): written into the config block with the rest.
 */
export function writeLinkConfig(mem: CommonMemory, a: ArraySpec): void {
  const ports = a.linkPorts ?? [];
  const n = a.linkNode;
  if (!n || ports.length === 0) return;
  mem.setU32(A.CONFIG_ADDR + A.CFG_PORT_COUNT, a.ports.length + ports.length);
  ports.forEach((p, i) => {
    const b = A.CONFIG_ADDR + A.CFG_PORT_TABLE + (a.ports.length + i) * A.CFG_PORT_BYTES;
    mem.setU8(b + A.CPORT_IOP, p.iop);
    mem.setU8(b + A.CPORT_KIND, A.PORT_LINK);
    mem.setU8(b + A.CPORT_SESSIONS, 1);
    mem.setU32(b + A.CPORT_LINK_INDEX, p.link);
    mem.setU32(b + A.CPORT_LINK_QUEUE, p.queue);
    if (p.peer !== undefined && p.peer >= 0) mem.setU32(b + A.CPORT_LINK_PEER, p.peer + 1);
    mem.u8.set(Buffer.from(p.name.slice(0, 31), 'latin1'), b + A.CPORT_NAME);
  });
  const R = A.CONFIG_ADDR + A.CFG_REMOTE;
  mem.setU16(R + A.CRM_NODE, n.node);
  mem.setU16(R + A.CRM_LINKED, 1);
  for (let i = 0; i < RELAY_MAX_NODES; i++) mem.setU16(R + A.CRM_ROUTES + i * 2, n.routes[i] === undefined || n.routes[i] < 0 ? 0xFFFF : n.routes[i]);
  n.nodes.forEach((x, i) => {
    mem.setU8(R + NODE_KINDS + i, (x.kind === 'array' ? 1 : 2) | (n.neighbours[i] ? NODE_NEIGHBOUR : 0));
    mem.u8.set(Buffer.from(x.name.slice(0, 31), 'latin1'), R + NODE_NAMES + i * 32);
  });
}
/** remote/pair.ts: where the node kinds and names are in CFG_REMOTE. */
const NODE_KINDS = 192;
const NODE_NAMES = 256;
const NODE_NEIGHBOUR = 0x80;
