// The fuzzer's session on port 0: bytes go into the rx ring and, the same bytes at the same
// moments, into the reference receiver (model.ts); what the controller sends back is decoded and
// held against what the model says it must send. Every way the controller can be wrong on the
// wire is a violation here: a REJECT or PONG missing, extra, or out of order; a frame that is not
// well formed; a status for a command never sent; sense data that is not sense data; bytes of a
// canary in a read; the rx ring and the model disagreeing about what is still unparsed.
import * as A from '../hal/abi';
import { ROUND_NS } from '../harness/driver';
import { decodeResponseAt, type FrameView, type DecodeError } from '../lib/protocol';
import * as scsi from '../lib/scsi';
import { ReceiverModel, zeroCounts, type Expectation, type Command, type ModelCounts } from './model';
import { FuzzTarget, Link, FUZZ_PORT, PORT_ADDRESS } from './target';
import { T, R, REASON_NAMES, FLAG_RESET } from './wire';
import { CANARY_MAGIC } from './canary';
import type { HostState } from './generate';

/** A partial frame is dropped after this much silence (firmware/comm/stream.ts FRAME_TIMEOUT_NS). */
export const FRAME_TIMEOUT_NS = 2e9;
const EMPTY = Buffer.alloc(0);
/** How long the fuzzer waits, in virtual time, for every command of a batch to be answered. */
export const SETTLE_BOUND_NS = 300e9;

export interface Violation { check: string; detail: string }

/** Tallies of one batch, to hold against the controller's counters. */
export interface BatchTally {
  txFrames: number;
  responses: number;
  /** Commands dropped unanswered by a PING with RESET (docs/protocol.md). */
  dropped: number;
  nonGood: number;
  overlapped: number;
  taskSetFull: number;
  dataOutRejected: Record<number, number>;
}

function zeroTally(): BatchTally {
  return { txFrames: 0, responses: 0, dropped: 0, nonGood: 0, overlapped: 0, taskSetFull: 0, dataOutRejected: { [R.UNKNOWN_TAG]: 0, [R.PROTOCOL]: 0 } };
}

export interface Tamper {
  /** Hides a frame the controller sent from the fuzzer (a target that fails to answer). */
  dropTx?(type: number, tag: number): boolean;
}

export class FuzzSession {
  readonly link: Link;
  readonly model: ReceiverModel;
  readonly state: HostState = { outstanding: new Map(), xfers: new Map(), intents: new Map(), dead: [], volumes: [], luns: [] };
  private expectations: Expectation[] = [];
  private head = 0;
  private lastArrivalNs = 0;
  tally = zeroTally();
  counts: ModelCounts = zeroCounts();
  /** Run totals for the summary. */
  readonly rejects: Record<string, number> = {};
  readonly violations: Violation[] = [];
  /** Status of commands whose answer someone waits for, by tag. */
  private readonly watched = new Map<number, number | undefined>();
  bytesSent = 0;

  constructor(readonly target: FuzzTarget, private readonly tamper: Tamper = {}) {
    this.model = new ReceiverModel(PORT_ADDRESS[FUZZ_PORT], {
      expect: (e) => {
        this.expectations.push(e);
        // The commands before a PING with RESET in the stream are the ones it drops.
        if (e.kind === 'pong' && e.reset) this.resets.push(this.commandSeq);
      },
      command: (c) => this.command(c),
    });
    this.link = target.open(FUZZ_PORT, { frame: (f) => this.frame(f), error: (e) => this.malformed(e) }, (why) => this.closedByController(why));
  }

  /**
   * Why nothing more can be sent on this session (the controller closed it, or stopped reading it),
   * once that happened: the batch ends there and the run fails with the violation already recorded.
   */
  stopped?: string;

  /**
   * The controller closed the session. With commands the fuzzer still waits for, that is the hang
   * as a host sees it: an idle close (HANGUP_IDLE) means the controller holds no command of the
   * session in flight, so their answers will never come; they are named.
   */
  private closedByController(why: number): void {
    this.stopped = `the controller closed the fuzzer's session (${HANGUP_NAMES[why] ?? `hang-up reason ${why}`}) at ${seconds(this.target.now)} of virtual time`;
    if (this.outstandingTotal() > 0) {
      this.violation('hang', `${this.outstandingTotal()} command(s) never answered: ${this.stopped} while they were outstanding (${this.unanswered()})`, true);
    } else {
      this.violation('liveness', this.stopped, true);
    }
    this.state.outstanding.clear();
  }

  get sessionIndex(): number { return this.link.index; }

  /** Records a violation; past the first 20 only those that say why the session stopped (`always`). */
  violation(check: string, detail: string, always = false): void {
    if (this.violations.length < 20 || always) this.violations.push({ check, detail });
  }

  private command(c: Command): void {
    this.state.outstanding.set(c.tag, (this.state.outstanding.get(c.tag) ?? 0) + 1);
    (this.sent[c.tag] ??= []).push({ ...c, seq: this.commandSeq++ });
  }

  /** Commands registered so far, in stream order; a RESET PING drops those below its mark. */
  private commandSeq = 0;
  private readonly resets: number[] = [];

  /**
   * The PONG of a PING with RESET arrived: every command sent before that PING and not answered by
   * now is dropped (its answers, if any, came before the PONG; none may come after it).
   */
  private reset(): void {
    const mark = this.resets.shift() ?? this.commandSeq;
    for (const [tag, n] of [...this.state.outstanding]) {
      const q = this.sent[tag] ?? [];
      const kept = q.filter((c) => c.seq >= mark);
      const dropped = Math.min(n, q.length - kept.length);
      this.sent[tag] = kept;
      this.tally.dropped += dropped;
      if (n - dropped > 0) { this.state.outstanding.set(tag, n - dropped); continue; }
      this.state.outstanding.delete(tag);
      this.state.xfers.delete(tag);
      this.state.intents.delete(tag);
    }
  }

  /**
   * The unanswered commands of each tag, oldest first, for messages about them. A tag has one
   * command running at most; a duplicate is answered at once (OVERLAPPED COMMANDS, TASK SET
   * FULL), so those answers are the newest command's and every other answer is the oldest's.
   */
  private readonly sent: Array<Array<Command & { seq: number }>> = new Array(65536);

  private answered(tag: number, newest: boolean): void {
    const q = this.sent[tag];
    if (newest) q?.pop(); else q?.shift();
  }

  private described(tag: number): string {
    return (this.sent[tag] ?? []).map((c) => `${commandName(c.cdb)} at LUN ${c.lun}, CDB ${c.cdb.toString('hex')} expected ${c.expected} flags ${c.flags}`).join(' / ');
  }

  /** The first few unanswered commands, by tag and name. */
  private unanswered(): string {
    return [...this.state.outstanding.entries()].slice(0, 8).map(([t, n]) => `tag ${t}${n > 1 ? ` x${n}` : ''}: ${this.described(t)}`).join('; ');
  }

  // ---- sending ---------------------------------------------------------------------------------

  /** Bytes to the controller, as one arrival (or several when the ring fills); runs it after each. */
  feed(bytes: Buffer): void {
    let at = 0;
    let full = -1; // since when the rx ring has had no room
    while (at < bytes.length && !this.target.failed && !this.stopped) {
      const n = this.link.write(bytes.subarray(at));
      if (n === 0) {
        if (full < 0) full = this.target.now;
        this.waitForRoom(full);
        continue;
      }
      full = -1;
      this.model.arrive(bytes.subarray(at, at + n));
      this.lastArrivalNs = this.target.now;
      this.target.runIdle();
      this.settleModel();
      at += n;
    }
    this.bytesSent += at;
  }

  /**
   * The rx ring is full: the controller runs, and virtual time passes to its next timer, until it
   * takes some bytes, closes the session, or has taken none for SETTLE_BOUND_NS since `since` (a
   * session the controller stopped reading: a hang, with the commands waiting named).
   */
  private waitForRoom(since: number): void {
    this.target.runIdle();
    if (this.stopped || this.link.rx.free() > 0 || this.target.failed) return;
    const next = this.target.nextTimerNs();
    if (next !== Infinity && next - since <= SETTLE_BOUND_NS) { this.target.jumpTo(next); return; }
    this.stopped = `the controller took none of the ${this.link.rx.used()} bytes in the fuzzer's session's rx ring `
      + `from ${seconds(since)} on, for ${SETTLE_BOUND_NS / 1e9} s of virtual time`;
    this.violation('hang', `${this.stopped} (${this.outstandingTotal()} command(s) outstanding: ${this.unanswered() || 'none'})`, true);
    this.state.outstanding.clear();
  }

  /**
   * Lets virtual time pass to the next timer (destage, a data-out timeout) when nothing runs, but
   * never so far that a partial frame would time out: within a batch, silence is the fuzzer's
   * choice, not the clock's.
   */
  tick(): boolean {
    const next = this.target.nextTimerNs();
    if (next === Infinity) return false;
    const bound = this.model.pending > 0 ? this.lastArrivalNs + FRAME_TIMEOUT_NS / 2 : this.target.now + 100e6;
    if (next > bound) return false;
    this.target.jumpTo(next);
    this.settleModel();
    return true;
  }

  /** Runs until every command sent is answered (and a partial frame has timed out), within SETTLE_BOUND_NS. */
  settle(): void {
    const start = this.target.now;
    while (!this.target.failed && !this.stopped && (this.outstandingTotal() > 0 || this.model.pending > 0)) {
      const next = this.target.nextTimerNs();
      if (next === Infinity || next - start > SETTLE_BOUND_NS) {
        this.violation('hang', `${this.outstandingTotal()} command(s) never answered within ${SETTLE_BOUND_NS / 1e9} s of virtual time `
          + `(${this.unanswered()}), ${this.model.pending} bytes of a partial frame still held`);
        this.state.outstanding.clear();
        break;
      }
      this.target.jumpTo(Math.max(this.target.now + ROUND_NS, next));
      this.settleModel();
    }
    this.closeExpectations();
  }

  /** The firmware dropped a partial frame for silence: the model does the same. Checks they agree. */
  private settleModel(): void {
    const held = this.link.rx.used();
    if (held === 0 && this.model.pending > 0 && this.target.now - this.lastArrivalNs >= FRAME_TIMEOUT_NS) this.model.silence();
    this.matchTx();
    if (held !== this.model.pending && !this.target.failed) {
      this.violation('parser', `the rx ring holds ${held} unparsed bytes, the protocol says ${this.model.pending}`);
    }
  }

  outstandingTotal(): number {
    let n = 0;
    for (const v of this.state.outstanding.values()) n += v;
    return n;
  }

  /** Watches the status of the next command with `tag`. */
  watch(tag: number): void { this.watched.set(tag, undefined); }
  watchedStatus(tag: number): number | undefined { return this.watched.get(tag); }

  // ---- receiving ---------------------------------------------------------------------------------

  private readonly txQueue: Array<{ type: number; tag: number; destination: number; reason: number; header: Buffer; payload: Buffer; flags?: number }> = [];

  private frame(f: FrameView): void {
    if (this.tamper.dropTx?.(f.type, f.tag)) return;
    this.tally.txFrames++;
    const p = f.payloadAt;
    switch (f.type) {
      case T.REJECT: {
        if (f.length < 24) { this.violation('wire', `REJECT with a ${f.length}-byte payload`); return; }
        this.txQueue.push({ type: T.REJECT, tag: f.tag, destination: f.destination, reason: f.bytes[p], header: Buffer.from(f.bytes.subarray(p + 4, p + 24)), payload: EMPTY });
        return;
      }
      case T.PONG:
        if ((f.flags & FLAG_RESET) !== 0) this.reset();
        this.txQueue.push({ type: T.PONG, tag: f.tag, destination: f.destination, reason: 0, header: EMPTY, payload: Buffer.from(f.bytes.subarray(p, p + f.length)), flags: f.flags });
        return;
      case T.RSP: this.response(f); return;
      case T.XFER_RDY: {
        if (!this.state.outstanding.get(f.tag)) { this.violation('wire', `XFER_RDY for tag ${f.tag}, which has no command`); return; }
        if (f.parameter === 0 || f.parameter > 256 * 1024) this.violation('wire', `XFER_RDY for tag ${f.tag} asks for ${f.parameter} bytes`);
        this.state.xfers.set(f.tag, { tag: f.tag, offset: f.offset, length: f.parameter, sent: 0, seq: 0 });
        return;
      }
      case T.DATA_IN: {
        if (!this.state.outstanding.get(f.tag)) { this.violation('wire', `DATA_IN for tag ${f.tag}, which has no command`); return; }
        if (f.length > 2048) this.violation('wire', `DATA_IN of ${f.length} bytes (at most 2048)`);
        if (f.length >= CANARY_MAGIC.length && f.bytes.subarray(p, p + f.length).indexOf(CANARY_MAGIC) >= 0) this.violation('isolation', `a read on the fuzzer's session (tag ${f.tag}) returned canary bytes`);
        return;
      }
      default:
        this.violation('wire', `the controller sent a frame of type ${f.type}, which it never sends`);
    }
  }

  private malformed(e: DecodeError): void {
    this.violation('wire', `the controller sent malformed bytes: ${e.error} (${e.bytes} bytes)`);
  }

  private response(f: FrameView): void {
    const r = decodeResponseAt(f.bytes, f.payloadAt, f.length);
    if (!r) { this.violation('wire', `RSP for tag ${f.tag} shorter than its sense length`); return; }
    const n = this.state.outstanding.get(f.tag) ?? 0;
    if (n === 0) { this.violation('wire', `RSP for tag ${f.tag}, which has no command`); return; }
    if (n === 1) { this.state.outstanding.delete(f.tag); this.state.intents.delete(f.tag); } else this.state.outstanding.set(f.tag, n - 1);
    this.state.xfers.delete(f.tag);
    this.state.dead.push(f.tag);
    if (this.state.dead.length > 64) this.state.dead.shift();
    if (this.watched.has(f.tag) && this.watched.get(f.tag) === undefined) this.watched.set(f.tag, r.status);
    this.tally.responses++;
    let key = r.status;
    if (r.status !== 0) this.tally.nonGood++;
    if (r.status === 0x28) this.tally.taskSetFull++;
    if (r.status === 0x02) {
      const s = r.sense;
      if (s.length !== 18 || (s[0] & 0x7f) !== 0x70 || s[7] !== 10 || (s[2] & 0x0f) === 0) {
        this.violation('sense', `CHECK CONDITION for tag ${f.tag} with sense ${s.toString('hex') || '(none)'}, not 18 bytes of fixed-format sense`);
      } else {
        key = 0x100000000 + ((s[2] & 0x0f) << 16) + (s[12] << 8) + s[13];
        if ((s[2] & 0x0f) === 5 && s[12] === 0x4e) this.tally.overlapped++;
      }
    } else if (r.sense.length !== 0) {
      this.violation('sense', `status ${r.status} for tag ${f.tag} carries ${r.sense.length} sense bytes`);
    } else if (![0x00, 0x08, 0x28].includes(r.status)) {
      this.violation('sense', `status ${r.status.toString(16)}h for tag ${f.tag} is not one the controller defines`);
    }
    if (r.underflow && r.overflow) this.violation('sense', `RSP for tag ${f.tag} claims underflow and overflow`);
    this.statusKeys.set(key, (this.statusKeys.get(key) ?? 0) + 1);
    this.answered(f.tag, r.status === 0x28 || key === 0x100000000 + (5 << 16) + (0x4e << 8));
  }

  private readonly statusKeys = new Map<number, number>();

  /** Commands by status, CHECK CONDITION by sense in words. */
  get statuses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, n] of this.statusKeys) {
      const name = k < 0x100000000 ? scsi.statusName(k)
        : `CHECK CONDITION ${scsi.senseKeyName((k >> 16) & 0xf)}: ${scsi.ascText((k >> 8) & 0xff, k & 0xff)}`;
      out[name] = (out[name] ?? 0) + n;
    }
    return out;
  }

  /** Holds the REJECTs and PONGs received against what the model expects, in order. */
  private matchTx(): void {
    for (const got of this.txQueue.splice(0)) {
      if (got.type === T.REJECT) this.rejects[REASON_NAMES[got.reason] ?? `reason ${got.reason}`] = (this.rejects[REASON_NAMES[got.reason] ?? `reason ${got.reason}`] ?? 0) + 1;
      let matched = false;
      while (this.head < this.expectations.length) {
        const e = this.expectations[this.head];
        if (e.kind === 'dataOut') {
          this.head++;
          if (got.type === T.REJECT && (got.reason === R.UNKNOWN_TAG || got.reason === R.PROTOCOL) && got.header.equals(e.header)) {
            this.tally.dataOutRejected[got.reason]++;
            this.checkRejectFrame(got, e.header);
            matched = true;
            break;
          }
          continue; // that DATA_OUT was taken
        }
        if (e.kind === 'reject' && got.type === T.REJECT && got.reason === e.reason && got.header.equals(e.header)) {
          this.head++;
          this.checkRejectFrame(got, e.header);
          matched = true;
          break;
        }
        if (e.kind === 'pong' && got.type === T.PONG && got.tag === e.tag && got.destination === e.destination && got.payload.equals(e.payload)
          && ((got.flags ?? 0) & FLAG_RESET) === (e.reset ? FLAG_RESET : 0)) {
          this.head++;
          matched = true;
          break;
        }
        this.violation('answers', `expected ${describe(e)}, the controller sent ${describeGot(got)}`);
        this.head++;
        matched = true; // resynchronise on the next expectation
        break;
      }
      if (!matched) this.violation('answers', `the controller sent ${describeGot(got)}, which no frame called for`);
    }
    if (this.head > 4096) { this.expectations = this.expectations.slice(this.head); this.head = 0; }
  }

  private checkRejectFrame(got: { tag: number; destination: number }, header: Buffer): void {
    if (got.tag !== header.readUInt16BE(2) || got.destination !== header.readUInt16BE(4)) {
      this.violation('answers', `REJECT tag ${got.tag} to ${got.destination}, the offending header has tag ${header.readUInt16BE(2)} from ${header.readUInt16BE(4)}`);
    }
  }

  /** At the end of a batch: DATA_OUTs still unmatched were taken; a REJECT or PONG still due is missing. */
  private closeExpectations(): void {
    this.matchTx();
    for (; this.head < this.expectations.length; this.head++) {
      const e = this.expectations[this.head];
      if (e.kind !== 'dataOut') this.violation('answers', `${describe(e)} was never sent`);
    }
    this.expectations = [];
    this.head = 0;
  }

  // ---- accounting --------------------------------------------------------------------------------

  /** Starts a batch: tallies and model counts from zero. */
  beginBatch(): void {
    this.tally = zeroTally();
    this.model.counts = zeroCounts();
  }

  /** Holds the controller's counters (deltas over the batch) against the model and the answers seen. */
  account(before: number[], after: number[]): void {
    const d = (i: number) => after[i] - before[i];
    const m = this.model.counts;
    const t = this.tally;
    const eq = (what: string, got: number, want: number) => { if (got !== want) this.violation('accounting', `${what}: controller counted ${got}, expected ${want}`); };
    const held = this.link.rx.used();
    if (held !== this.model.pending) this.violation('parser', `after the batch the rx ring holds ${held} bytes, the protocol says ${this.model.pending}`);
    eq('frames received', d(A.STAT_FRAMES_RX), m.framesRx);
    eq('BAD_CRC', d(A.STAT_FERR_BAD_CRC), m.badCrc);
    eq('TRUNCATED', d(A.STAT_FERR_TRUNCATED), m.truncated);
    eq('OVERSIZE', d(A.STAT_FERR_OVERSIZE), m.oversize);
    eq('UNKNOWN_TYPE', d(A.STAT_FERR_UNKNOWN_TYPE), m.unknownType);
    eq('WRONG_DESTINATION', d(A.STAT_FERR_WRONG_DESTINATION), m.wrongDestination);
    eq('bad SOF bytes', d(A.STAT_FERR_BAD_SOF), m.badSofBytes);
    eq('UNKNOWN_TAG', d(A.STAT_FERR_UNKNOWN_TAG), t.dataOutRejected[R.UNKNOWN_TAG]);
    eq('PROTOCOL', d(A.STAT_FERR_PROTOCOL), m.protocol + t.dataOutRejected[R.PROTOCOL]);
    eq('frames sent', d(A.STAT_FRAMES_TX), t.txFrames);
    eq('commands answered (or dropped by a RESET PING)', t.responses + t.dropped, m.commands);
    eq('commands started + TASK SET FULL + overlapped tags', d(A.STAT_COMMANDS) + d(A.STAT_BUSY) + t.overlapped, m.commands);
    eq('TASK SET FULL', d(A.STAT_BUSY), t.taskSetFull);
    eq('errors + TASK SET FULL', d(A.STAT_ERRORS) + d(A.STAT_BUSY), t.nonGood);
    eq('trace drops', d(A.STAT_TRACE_DROPS), 0);
    for (const k of Object.keys(m) as Array<keyof ModelCounts>) this.counts[k] += m[k];
  }
}

const HANGUP_NAMES: Record<number, string> = {
  [A.HANGUP_IDLE]: 'HANGUP_IDLE: no command in flight and nothing received for the port\'s idle time',
  [A.HANGUP_PROTOCOL]: 'HANGUP_PROTOCOL: the port\'s protocol ended the session',
};

function seconds(ns: number): string { return `${(ns / 1e9).toFixed(3)} s`; }

const OPCODE_NAMES: Record<number, string> = {
  0x00: 'TEST UNIT READY', 0x03: 'REQUEST SENSE', 0x12: 'INQUIRY', 0x1a: 'MODE SENSE(6)', 0x25: 'READ CAPACITY(10)',
  0x28: 'READ(10)', 0x2a: 'WRITE(10)', 0x35: 'SYNCHRONIZE CACHE(10)', 0x88: 'READ(16)', 0x8a: 'WRITE(16)',
  0x91: 'SYNCHRONIZE CACHE(16)', 0x9e: 'SERVICE ACTION IN(16)', 0xa0: 'REPORT LUNS',
  [scsi.Opcode.MANAGEMENT_IN]: 'MANAGEMENT IN', [scsi.Opcode.MANAGEMENT_OUT]: 'MANAGEMENT OUT',
};
const SERVICE_ACTIONS = new Map<number, string>(Object.entries(scsi.Management).map(([name, sa]) => [sa, name.replace(/_/g, ' ')]));

/** A command in words for a message: "MODE SENSE(6)", "MANAGEMENT OUT C1h/01h CREATE VOLUME", "opcode 5Fh". */
export function commandName(cdb: Buffer): string {
  const op = cdb[0];
  const hex = (x: number) => `${x.toString(16).toUpperCase().padStart(2, '0')}h`;
  const name = OPCODE_NAMES[op] ?? `opcode ${hex(op)}`;
  if (op !== scsi.Opcode.MANAGEMENT_IN && op !== scsi.Opcode.MANAGEMENT_OUT) return name;
  const sa = cdb[1] & 0x1f;
  return `${name} ${hex(op)}/${hex(sa)} ${SERVICE_ACTIONS.get(sa) ?? 'unknown service action'}`;
}

function describe(e: Expectation): string {
  if (e.kind === 'reject') return `REJECT ${REASON_NAMES[e.reason]} for header ${e.header.toString('hex')}`;
  if (e.kind === 'pong') return `PONG tag ${e.tag} with ${e.payload.length} bytes`;
  return `DATA_OUT tag ${e.tag}`;
}

function describeGot(g: { type: number; tag: number; reason: number; header: Buffer; payload: Buffer }): string {
  return g.type === T.REJECT ? `REJECT ${REASON_NAMES[g.reason] ?? g.reason} for header ${g.header.toString('hex')}` : `PONG tag ${g.tag} with ${g.payload.length} bytes`;
}
