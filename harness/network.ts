// The nodes of a topology that links join, on one clock (docs/remote.md, "Virtual time with
// several nodes"). Each array keeps the driver it has without links (harness/driver.ts, one
// virtual clock per array); linked nodes must share one, or a packet could arrive before it was
// sent. A round polls every relay in node order, puts what their transmit rings hold on the links,
// then lets the links deliver what is due. Deterministic mode advances one virtual clock: by
// ROUND_NS after a round that did work, else to the earliest timer (a relay's wait, a packet's
// arrival) while something is in flight.
import { Prng } from '../hal/prng';
import { EntryRing } from '../hal/ring';
import { LinkBinding, type LinkEndpoint } from '../hal/link';
import { RelayNode, type RelayStatus } from './relay';
import { linkRoutes, type LinkSpec, type RelaySpec } from './links';
import { TcpLinkEnd } from './tcp-link';
import { ROUND_NS } from './driver';
import * as A from '../hal/abi';
import { SessionSlot } from '../hal/channels/session';
import type { ArrayController } from './array';

/** A node the network polls: a relay, or (tests) an endpoint that speaks the protocol from TypeScript. */
export interface NetworkNode {
  readonly name: string;
  round(now: number): number;
  nextTimerNs(): number;
  /** Transmit rings rung since the last round, as (link index in the topology, ring). */
  takeTx(): Array<{ link: number; tx: EntryRing }>;
  rxFor(link: number, queue: number): EntryRing | undefined;
  /** Something is under way that time must pass for (a command held, a wait armed). */
  readonly busy: boolean;
}

class RelayAdapter implements NetworkNode {
  constructor(public relay: RelayNode) {}
  get name(): string { return this.relay.name; }
  round(now: number): number { return this.relay.round(now); }
  nextTimerNs(): number { return this.relay.failed ? Infinity : this.relay.nextTimerNs(); }
  takeTx(): Array<{ link: number; tx: EntryRing }> {
    return this.relay.txRung.splice(0).map((l) => ({ link: this.relay.links[l], tx: this.relay.tx(l) }));
  }
  rxFor(link: number): EntryRing | undefined {
    const l = this.relay.links.indexOf(link);
    return l < 0 || this.relay.failed ? undefined : this.relay.rx(l); // a killed relay takes nothing in
  }
  get busy(): boolean { return !this.relay.failed && this.relay.active > 0; }
}

/**
 * An array's link queues (PORT_LINK ports after its own, harness/links.ts): the network delivers into
 * their receive rings and takes what their transmit doorbells announced. The World runs the array's
 * rounds itself (they wait for I/O); here it only moves packets.
 */
export class ArrayLinks implements NetworkNode {
  constructor(readonly array: ArrayController) {
    const spec = array.spec;
    (spec.linkPorts ?? []).forEach((_, i) => {
      const port = spec.ports.length + i;
      const slot = new SessionSlot(array.mem, port, 0);
      slot.open([this.ring(port, A.SES_RX), this.ring(port, A.SES_TX)]);
    });
  }

  get name(): string { return this.array.name; }
  round(): number { return 0; }
  nextTimerNs(): number { return Infinity; }
  get busy(): boolean { return false; }

  private ring(port: number, field: number): EntryRing {
    const m = this.array.mem;
    const desc = m.u32(A.MAP_ADDR + A.MAP_PORT_TABLE + port * A.MAP_PORT_BYTES + A.MPORT_SESSIONS_ADDR);
    return new EntryRing(m, m.u32(desc + field));
  }

  /** The relays' status into the array's map (RELAY STATUS answers it): those it has a link to. */
  report(relays: RelayNode[]): void {
    const m = this.array.mem;
    const near = relays.filter((r) => this.array.spec.linkNode?.neighbours[r.spec.node]).slice(0, A.RELAY_STATUS_MAX);
    near.forEach((r, i) => {
      const e = A.MAP_ADDR + A.MAP_RELAY_TABLE + i * A.RLS_BYTES;
      const s = r.status();
      m.setU16(e + A.RLS_NODE, r.spec.node);
      m.setU8(e + A.RLS_MODE, (r.spec.cutThrough ? 1 : 0) | (r.spec.nv ? 2 : 0) | (['now', 'later', 'threshold'].indexOf(r.spec.forward) << 2));
      m.setU8(e + A.RLS_STATE, r.failed ? 2 : 1);
      m.setU32(e + A.RLS_ACTIVE, s.active);
      m.setU32(e + A.RLS_BUFFER, s.bufferBytes);
      m.setU32(e + A.RLS_BUFFER_USED, s.bufferUsedBytes);
      m.view.setBigUint64(e + A.RLS_JOBS, BigInt(s.jobs), true);
      m.view.setBigUint64(e + A.RLS_FORWARDED, BigInt(s.forwarded), true);
      m.view.setBigUint64(e + A.RLS_BYTES_IN, BigInt(s.bytes), true);
      m.setU32(e + A.RLS_FAILED, s.failed);
      m.setU32(e + A.RLS_RETRIES, s.retries);
      m.setU32(e + A.RLS_DUPLICATES, s.duplicates);
      m.setU32(e + A.RLS_NO_BUFFER, s.noBuffer);
      m.setU32(e + A.RLS_BAD, s.badPackets);
      m.setU32(e + A.RLS_HELD, s.held);
    });
    m.setU32(A.MAP_ADDR + A.MAP_RELAY_COUNT, near.length);
  }

  takeTx(): Array<{ link: number; tx: EntryRing }> {
    const spec = this.array.spec;
    const ports = [...new Set(this.array.linkTxRung.splice(0))];
    return ports.map((port) => ({ link: spec.linkPorts![port - spec.ports.length].link, tx: this.ring(port, A.SES_TX) }));
  }

  rxFor(link: number, queue: number): EntryRing | undefined {
    const spec = this.array.spec;
    if (this.array.failed) return undefined; // a stopped array takes nothing in (the packet is lost)
    const i = (spec.linkPorts ?? []).findIndex((p) => p.link === link && p.queue === queue);
    return i < 0 ? undefined : this.ring(spec.ports.length + i, A.SES_RX);
  }
}

export class Network {
  readonly links: LinkBinding[] = [];
  /** The ends of links whose far node runs in another process (harness/tcp-link.ts). */
  readonly tcp: TcpLinkEnd[] = [];
  readonly relays: RelayNode[] = [];
  private readonly nodes: NetworkNode[] = [];
  private readonly byName = new Map<string, NetworkNode>();
  private virtualNs = 0;
  private readonly log: (l: string) => void;
  private readonly debug: boolean;
  kick: () => void = () => undefined;

  /**
   * `nodeNames`: every node of the topology in node order (arrays, then relays). Endpoints for
   * the arrays' ends are attached with attach() before the first round.
   */
  constructor(readonly nodeNames: string[], readonly linkSpecs: LinkSpec[], relaySpecs: RelaySpec[], seed: number, log: (l: string) => void, debug = false) {
    const routes = linkRoutes(nodeNames, linkSpecs);
    for (const r of relaySpecs) {
      const mine = linkSpecs.map((l, i) => ({ l, i })).filter((x) => x.l.a === r.name || x.l.b === r.name).map((x) => x.i);
      const local = routes[r.node].map((li) => (li < 0 ? 0xFFFF : mine.indexOf(li)));
      const relay = new RelayNode(r, mine, local, log, debug);
      this.relays.push(relay);
      this.attach(new RelayAdapter(relay));
    }
    this.log = log;
    this.debug = debug;
    const prng = new Prng(seed).fork('links');
    const kinds = nodeNames.map((n): [string, string] => [n, relaySpecs.some((r) => r.name === n) ? 'relay' : 'array']);
    linkSpecs.forEach((spec) => {
      const far = spec.tcp ? new TcpLinkEnd(spec, kinds, log, () => this.kick()) : undefined;
      if (far) this.tcp.push(far);
      const end = (node: string): LinkEndpoint => ({
        node,
        rx: (q) => this.byName.get(node)?.rxFor(this.linkSpecs.indexOf(spec), q),
        kick: () => this.kick(),
        ...(far && spec.tcp!.remote === node ? { remote: far } : {}),
      });
      this.links.push(new LinkBinding(spec, prng.fork(spec.name), [end(spec.a), end(spec.b)]));
    });
  }

  /** Links to other processes listen or start dialling; rejects when an address cannot be listened on. */
  async start(): Promise<void> { await Promise.all(this.tcp.map((t) => t.start())); }

  attach(node: NetworkNode): void {
    this.nodes.push(node);
    this.byName.set(node.name, node);
  }

  now(): number { return this.virtualNs; }

  link(name: string): LinkBinding {
    const l = this.links.find((x) => x.name === name);
    if (!l) throw new Error(`no link ${JSON.stringify(name)} (links: ${this.links.map((x) => x.name).join(', ') || 'none'})`);
    return l;
  }

  relay(name: string): RelayNode {
    const r = this.relays.find((x) => x.name === name);
    if (!r) throw new Error(`no relay ${JSON.stringify(name)} (relays: ${this.relays.map((x) => x.name).join(', ') || 'none'})`);
    return r;
  }

  relayStatus(): RelayStatus[] { return this.relays.map((r) => r.status()); }

  /** One round at `now`: every node, then the links. Returns the work done. */
  round(now: number): number {
    let work = 0;
    for (const n of this.nodes) if (n instanceof ArrayLinks) n.report(this.relays);
    for (const n of this.nodes) {
      work += n.round(now);
      for (const { link, tx } of n.takeTx()) {
        const l = this.links[link];
        work += l.take(l.spec.a === n.name ? 0 : 1, tx, now);
      }
    }
    for (const l of this.links) work += l.service(now);
    return work;
  }

  nextTimerNs(): number {
    let t = Infinity;
    for (const n of this.nodes) t = Math.min(t, n.nextTimerNs());
    for (const l of this.links) t = Math.min(t, l.nextTimerNs());
    return t;
  }

  /** Packets on a wire, or a node with work under way. */
  get busy(): boolean { return this.links.some((l) => l.busy) || this.nodes.some((n) => n.busy); }

  /**
   * Deterministic: runs rounds on the virtual clock until nothing is in flight or `untilNs`
   * (virtual) is reached, whichever is first; `done` may end it earlier. Bounded by `maxRounds`,
   * an error naming what was still under way.
   */
  run(untilNs = Infinity, done: () => boolean = () => false, maxRounds = 10_000_000): void {
    for (let rounds = 0; ; rounds++) {
      if (done()) return;
      if (rounds >= maxRounds) throw new Error(`network did not settle within ${maxRounds} rounds; under way: ${this.underWay().join(', ')}`);
      if (this.round(this.virtualNs) > 0) { this.virtualNs += ROUND_NS; continue; }
      const next = this.nextTimerNs();
      if (next === Infinity || next > untilNs) { if (untilNs !== Infinity) this.virtualNs = Math.max(this.virtualNs, untilNs); return; }
      this.virtualNs = Math.max(this.virtualNs + ROUND_NS, next);
    }
  }

  /**
   * A relay starts again (killed before, or killed now): a new instance of its image over fresh
   * memory. With an `nv` file it takes back what that holds (its job table and buffer: embodiment
   * 4's non-volatile relay loses nothing); without, it starts empty.
   */
  restartRelay(name: string, now: number): RelayNode {
    const old = this.relay(name);
    old.kill();
    old.close();
    const relay = new RelayNode(old.spec, old.links, old.routes, this.log, this.debug, now);
    relay.traceTo = old.traceTo; // the new instance traces where the old one did
    this.relays[this.relays.indexOf(old)] = relay;
    for (const n of this.nodes) if (n instanceof RelayAdapter && n.relay === old) n.relay = relay;
    this.kick();
    return relay;
  }

  /** Closes the relays' NV files (the emulator stops). */
  close(): void {
    for (const r of this.relays) r.close();
    for (const t of this.tcp) t.close();
  }

  /** Each link's counters, and for a link to another process its connection's state and counters. */
  linkStatus(): Array<{ link: string; a: string; b: string; up: boolean } & LinkBinding['counters'] & { tcp?: ReturnType<TcpLinkEnd['status']> }> {
    return this.links.map((l) => {
      const t = this.tcp.find((x) => x.spec === l.spec);
      return { link: l.name, a: l.spec.a, b: l.spec.b, up: l.carries, ...l.counters, ...(t ? { tcp: t.status() } : {}) };
    });
  }

  /** What is under way, in words (for the error of a bounded wait). */
  underWay(): string[] {
    return [
      ...this.links.filter((l) => l.busy).map((l) => `packets on link ${l.name}`),
      ...this.relays.filter((r) => !r.failed && r.active > 0).map((r) => `${r.active} command(s) held by relay ${r.name}`),
    ];
  }

  /**
   * A fault by name: "link <name> down|up", "partition <node>" (every link of the node down),
   * "heal <node>" (every link of the node up), "relay <name> kill" (the relay stops for good: what
   * its buffer memory holds is lost, packets for it are dropped).
   */
  inject(text: string, now = this.virtualNs): void {
    const k = /^\s*relay\s+(\S+)\s+(kill|restart|flush)\s*$/.exec(text);
    if (k && k[2] === 'kill') { const r = this.relay(k[1]); r.kill(); return; }
    if (k && k[2] === 'restart') { this.restartRelay(k[1], now); return; }
    if (k) { this.relay(k[1]).flush(); return; }
    const m = /^\s*(?:link\s+(\S+)\s+(down|up)|(partition|heal)\s+(\S+))\s*$/.exec(text);
    if (!m) throw new Error(`cannot parse fault ${JSON.stringify(text)}: expected "link <name> down", "link <name> up", "partition <node>", "heal <node>", "relay <name> kill", "relay <name> restart" or "relay <name> flush"`);
    if (m[1]) { const l = this.link(m[1]); if (m[2] === 'down') l.cut(); else l.heal(); return; }
    const node = m[4];
    if (!this.nodeNames.includes(node)) throw new Error(`no node ${JSON.stringify(node)} (nodes: ${this.nodeNames.join(', ')})`);
    for (const l of this.links) if (l.spec.a === node || l.spec.b === node) { if (m[3] === 'partition') l.cut(); else l.heal(); }
  }
}
