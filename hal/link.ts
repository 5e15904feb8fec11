// A link between two nodes (docs/remote.md, "The link binding"): it takes whole packets off a
// node's transmit rings and delivers them into the peer's receive ring of the queue the packet
// names (LPK_DST_QUEUE), after the wire's model — serialisation at the bandwidth, propagation
// delay, jitter, loss, reordering, duplication, and a bounded transmit queue whose overflow is a
// congestion drop. Every draw comes from the link's own PRNG stream: one seed, one set of losses.
import * as A from './abi';
import { EntryRing } from './ring';
import { Prng } from './prng';
import type { LinkSpec } from '../harness/links';

/** One end of a link: where packets for queue q are delivered, and who to wake when they are. */
export interface LinkEndpoint {
  readonly node: string;
  rx(queue: number): EntryRing | undefined;
  kick(): void;
  /** The end runs in another process (harness/tcp-link.ts): packets due go to it, not into a ring. */
  readonly remote?: RemoteEnd;
}

/**
 * The far end of a link in another process. The wire's model runs on the sending side; what it
 * delivers is handed to send(), and what the peer sent waits in drain() for the next service().
 */
export interface RemoteEnd {
  /** Connected to the peer (after its hello): else the link is down, as a cut one. */
  readonly connected: boolean;
  /** false: the socket's send queue is full (a congestion drop). */
  send(bytes: Uint8Array): boolean;
  /** Packets the peer sent since the last call, in order. */
  drain(): Uint8Array[];
}

interface InFlight { at: number; seq: number; to: 0 | 1; queue: number; bytes: Uint8Array }

export interface LinkCounters {
  sent: number; delivered: number; lost: number; congested: number; overruns: number;
  duplicated: number; cut: number; bytes: number;
}

export class LinkBinding {
  up = true;
  readonly counters: LinkCounters = { sent: 0, delivered: 0, lost: 0, congested: 0, overruns: 0, duplicated: 0, cut: 0, bytes: 0 };
  /** When each direction's wire is free again (0: a -> b, 1: b -> a). */
  private readonly wireFreeNs = [0, 0];
  private readonly inFlight: InFlight[] = [];
  private seq = 0;

  constructor(readonly spec: LinkSpec, private readonly prng: Prng, readonly ends: [LinkEndpoint, LinkEndpoint]) {}

  get name(): string { return this.spec.name; }

  /** Takes every packet waiting in `tx` (a ring of `side`'s end) onto the wire. Returns packets taken. */
  take(side: 0 | 1, tx: EntryRing, now: number): number {
    let n = 0;
    const u8 = (tx as unknown as { mem: { u8: Uint8Array } }).mem.u8;
    for (let e = tx.peek(); e >= 0; e = tx.peek()) {
      const length = u8[e + A.LPK_LENGTH] | (u8[e + A.LPK_LENGTH + 1] << 8);
      const size = A.LINK_HEADER_BYTES + Math.min(length, A.LINK_PAYLOAD_BYTES);
      this.send(side, u8.slice(e, e + size), now);
      tx.release();
      n++;
    }
    return n;
  }

  /** The wire's model for one packet leaving `side` at `now`. */
  send(side: 0 | 1, bytes: Uint8Array, now: number): void {
    const s = this.spec;
    this.counters.sent++;
    if (!this.carries) { this.counters.cut++; return; }
    const serialNs = (bytes.length * 8 * 1000) / s.bandwidthMbps; // bits / (Mbit/s) = µs; * 1000 = ns
    const backlogNs = Math.max(0, this.wireFreeNs[side] - now);
    const backlogBytes = (backlogNs * s.bandwidthMbps) / 8000;
    if (backlogBytes + bytes.length > s.queueBytes) { this.counters.congested++; return; }
    if (s.loss > 0 && this.prng.next() < s.loss) { this.counters.lost++; this.wireFreeNs[side] = Math.max(now, this.wireFreeNs[side]) + serialNs; return; }
    const departure = Math.max(now, this.wireFreeNs[side]) + serialNs;
    this.wireFreeNs[side] = departure;
    this.counters.bytes += bytes.length;
    const copies = s.duplicate > 0 && this.prng.next() < s.duplicate ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    const queue = bytes[A.LPK_DST_QUEUE];
    for (let c = 0; c < copies; c++) {
      let at = departure + s.latencyNs + (s.jitterNs > 0 ? this.prng.next() * s.jitterNs : 0);
      if (s.reorder > 0 && this.prng.next() < s.reorder) at += this.prng.next() * 4 * Math.max(s.latencyNs, serialNs);
      this.insert({ at, seq: this.seq++, to: side === 0 ? 1 : 0, queue, bytes });
    }
  }

  private insert(p: InFlight): void {
    let lo = 0;
    let hi = this.inFlight.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.inFlight[mid];
      if (m.at < p.at || (m.at === p.at && m.seq < p.seq)) lo = mid + 1; else hi = mid;
    }
    this.inFlight.splice(lo, 0, p);
  }

  /** Not cut, and an end in another process is connected. */
  get carries(): boolean { return this.up && this.ends.every((e) => e.remote?.connected ?? true); }

  /**
   * Delivers every packet due by `now` (to an end in another process: onto its socket), and what
   * such an end received. Returns packets delivered (or dropped at a full ring or send queue).
   */
  service(now: number): number {
    let n = 0;
    while (this.inFlight.length > 0 && this.inFlight[0].at <= now) {
      const p = this.inFlight.shift()!;
      n++;
      const remote = this.ends[p.to].remote;
      if (!this.carries) this.counters.cut++;
      else if (!remote) this.deliver(p.to, p.queue, p.bytes);
      else if (remote.send(p.bytes)) this.counters.delivered++;
      else this.counters.congested++;
    }
    this.ends.forEach((end, side) => {
      if (!end.remote) return;
      for (const bytes of end.remote.drain()) {
        n++;
        // The peer applied the wire's model before sending; a cut here drops what arrives too.
        if (!this.up) this.counters.cut++;
        else this.deliver(side === 0 ? 1 : 0, bytes[A.LPK_DST_QUEUE], bytes);
      }
    });
    return n;
  }

  private deliver(to: 0 | 1, queue: number, bytes: Uint8Array): void {
    const end = this.ends[to];
    const rx = end.rx(queue);
    const e = rx ? rx.reserve() : -1;
    if (!rx || e < 0) { this.counters.overruns++; return; }
    (rx as unknown as { mem: { u8: Uint8Array } }).mem.u8.set(bytes, e);
    rx.publish();
    this.counters.delivered++;
    end.kick();
  }

  nextTimerNs(): number { return this.inFlight.length > 0 ? this.inFlight[0].at : Infinity; }
  get busy(): boolean { return this.inFlight.length > 0; }

  /** Cuts the link: packets on the wire and later ones are lost until it is healed. */
  cut(): void { this.up = false; }
  heal(): void { this.up = true; }
}
