// One simulated run (docs/reliability.md, "Simulator"): the array of a random topology, several
// initiators driving random workloads at it through in-process queue ports, faults injected
// between and during their commands, and after every step a check of the array against the
// reference model (model.ts): every answer, every block read back, every list, every flush.
//
// The run is a function of its plan (plan.ts) and nothing else: the array runs in deterministic
// mode on a virtual clock that only this file moves (target.ts), with NV and media I/O inline.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import * as A from '../hal/abi';
import * as scsi from '../lib/scsi';
import { Prng } from '../hal/prng';
import { BootError, FirmwareAbort, type ControlResult, type StuckSlot } from '../harness/array';
import type { ArraySpec, FaultSpec } from '../harness/topology';
import type { QueueSession } from '../hal/channels/queue';
import type { ScsiCommand, ScsiResult } from '../lib/transport';
import { encodeBlocks, decodeBlock } from './block';
import { Catalog, Contents, Windows, ALL_PORTS, CHUNK_BYTES, CHUNK_SECTORS, type Change, type CreateSpec, type VolumeMeta } from './model';
import { rowsFor, hex, TASK_SET_FULL, BUSY, type CommandClass, type Condition } from './senses';
import { makePlan, topologyDocument, between, type Plan, type Step, type StepKind } from './plan';
import { SimTarget, type RunOutcome } from './target';

export interface Violation { check: string; step: number; kind: string; detail: string }

/** Deliberately broken targets, to show the checks can fail (test/sim/sim.test.ts). */
export type Sabotage = 'media-drop' | 'cross-read' | 'stale-list';

export interface SimOptions {
  seed: number;
  /** Steps in the plan (default plan.DEFAULT_STEPS). */
  steps?: number;
  /** Only these step indexes run (a cut-down or a replay of one). */
  only?: number[];
  sabotage?: Sabotage;
  log?: (line: string) => void;
  /** Every command and answer to the log. */
  verbose?: boolean;
}

export interface RunResult {
  seed: number;
  stepsPlanned: number;
  stepsRun: number;
  violations: Violation[];
  faults: Record<string, number>;
  commands: Record<string, number>;
  boots: number;
  rounds: number;
  virtualSeconds: number;
  /** A digest of everything the run saw: the same seed gives the same digest. */
  digest: string;
}

/** Bounds, in virtual time. */
const OP_BOUND_NS = 600e9; // every command of a step answered within this
const BOOT_BOUND_NS = 120e9; // labels checked
const CONTROL_BOUND_NS = 900e9; // a flush or shutdown resolves (it rejects itself after 60 s without progress)
const RECOVERY_BOUND_MS = 180_000; // healed faults: media ok, NV rewritten, nothing stuck

const DATA_BYTES = 1 << 20; // per session (plan.ts gives the ports 1 MiB data areas)
const MAX_IO_BYTES = 256 << 10;

interface Initiator { id: number; port: number; session: QueueSession; closed: boolean; bytes: number }

interface Op {
  id: number;
  cls: CommandClass;
  init: Initiator;
  what: string;
  submit: number;
  end: number;
  done: boolean;
  /** Volume commands: the instance the LUN addressed when it was sent. */
  uid?: number;
  port: number;
  lun: number;
  lba: number;
  blocks: number;
  gen?: number;
  outOfRange?: boolean;
  /** Management changes: what it is and what the model predicts (null: done). */
  change?: Change;
  expect?: [number, number, number] | null;
  result?: ScsiResult;
  error?: Error;
  /** Cut off by a closed session or a stop: its end is settled when the array is quiet. */
  orphan?: boolean;
}

class Stop extends Error {}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Simulation {
  readonly plan: Plan;
  readonly violations: Violation[] = [];
  readonly faults: Record<string, number> = {};
  readonly commands: Record<string, number> = {};
  private readonly hash = crypto.createHash('sha256');
  private readonly dir: string;
  private readonly target: SimTarget;
  private readonly spec: ArraySpec;
  private cat: Catalog;
  private pending: Change[] = [];
  private readonly contents = new Map<number, Contents>();
  private readonly win = new Windows();
  private ticks = 0;
  private gen = 0;
  private uid = 0;
  private opIds = 0;
  private readonly inflight = new Set<Op>();
  private initiators: Initiator[] = [];
  private admins: Initiator[] = [];
  private step: Step | { index: number; kind: string } = { index: -1, kind: 'boot' };
  private stepsRun = 0;
  /** Allowed LIST MEDIA states per medium. */
  private mediaExpect: Array<Set<scsi.Medium['state']>> = [];
  /** Media faults injected and not healed, to carry over a restart or heal. */
  private mediaFaults: FaultSpec[][] = [];
  /** Media whose label sector had a read fault at the last boot: listed lost with their label intact. */
  private labelUnreadableAtBoot = new Set<number>();
  private nvFaulty = false;
  /**
   * Per medium relabelled while the NV file failed: the labels NV's file named before, which it may
   * name still (the new labels' records perhaps never reached it; each relabel adds one) until a
   * restart or the NV file's rewrite settles it; empty when NV names `labels[m]` for sure.
   */
  private readonly labelsBefore: string[][];
  /**
   * Media relabelled since the array booted: the NV file's rewrite, once it takes writes again,
   * writes their newest label. A label from before the boot is only what the file held then.
   */
  private readonly relabelledSinceBoot = new Set<number>();
  /** Media whose pending REINITIALIZE MEDIUM has listed them ok: their new label is on them. */
  private readonly relabelSeen = new Set<number>();
  /**
   * The medium image each file holds (null: none the array labelled, or blank) and the label NV's
   * record names for each medium, as tokens, one per label written. A medium comes back ok from a
   * restart exactly when it holds the image whose label NV names: its own, also after it was lost
   * (images swapped, then swapped back: the firmware's label check matches it, and nothing was
   * written to it while it was lost, so what it holds is what the array left there).
   */
  private readonly images: Array<string | null>;
  private readonly labels: string[];
  private labelGen = 0;
  private lastMedia: scsi.Medium[] = [];
  private crashing = false;
  /** The cache size the array runs with, and the one asked for at the next boot (the plan's at first). */
  private cacheBytes: number;
  private resize: number | undefined;
  /** The last stop was graceful and marked the NV image clean (a boot with another cache size must take it). */
  private stoppedClean = false;
  private readonly log: (line: string) => void;

  constructor(readonly o: SimOptions) {
    this.plan = makePlan(o.seed, o.steps);
    this.log = o.log ?? (() => undefined);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `sanbox-sim-${o.seed}-`));
    this.spec = SimTarget.specOf(topologyDocument(this.plan.topology, this.dir, o.seed), this.dir);
    // A replay shows the firmware's log lines among the commands, with the virtual time in ms.
    this.target = new SimTarget(this.spec, o.seed, o.verbose ? (l) => this.log(`  firmware ${(this.target.now / 1e6).toFixed(3)} ms: ${l}`) : undefined);
    this.cat = new Catalog(this.spec.media.map((m) => m.bytes / CHUNK_BYTES), this.spec.ports.length);
    this.mediaExpect = this.spec.media.map(() => new Set(['ok']));
    this.mediaFaults = this.spec.media.map(() => []);
    this.labels = this.spec.media.map((_, i) => `m${i}.0`);
    this.images = [...this.labels];
    this.labelsBefore = this.labels.map(() => []);
    this.cacheBytes = this.spec.cache.bytes;
  }

  // ---- the run --------------------------------------------------------------------------------

  async run(): Promise<RunResult> {
    const only = this.o.only ? new Set(this.o.only) : undefined;
    try {
      await this.boot();
      for (const s of this.plan.steps) {
        if (only && !only.has(s.index)) continue;
        this.step = s;
        this.stepsRun++;
        this.log(`step ${s.index}: ${s.kind}`);
        await this.runStep(s);
        if (this.violations.length > 0) break;
      }
      if (this.violations.length === 0) { this.step = { index: this.plan.steps.length, kind: 'final' }; await this.finish(); }
    } catch (e) {
      if (!(e instanceof Stop)) this.violate('exception', (e as Error).stack ?? String(e));
    } finally {
      await this.target.release().catch(() => undefined);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    return {
      seed: this.o.seed, stepsPlanned: this.plan.steps.length, stepsRun: this.stepsRun, violations: this.violations,
      faults: this.faults, commands: this.commands, boots: this.target.boots, rounds: this.target.rounds,
      virtualSeconds: Math.round(this.target.now / 1e6) / 1e3, digest: this.hash.digest('hex').slice(0, 16),
    };
  }

  private async runStep(s: Step): Promise<void> {
    const r = new Prng(s.seed);
    switch (s.kind) {
      case 'io': this.burst(r); await this.quiesce(); break;
      case 'mgmt': await this.mgmtStep(r); break;
      case 'busyMgmt': await this.busyMgmtStep(r); break;
      case 'faultMedia': await this.faultMediaStep(r); break;
      case 'faultNv': await this.faultNvStep(r); break;
      case 'heal': await this.heal(r, false); break;
      case 'session': await this.sessionStep(r); break;
      case 'crash': await this.crashStep(r, s); break;
      case 'stop': this.burst(r); await this.target.step(between(r, 0, 10)); await this.restart('stop', r); break;
      case 'flush': this.burst(r); await this.flush('flush'); await this.quiesce(); break;
      case 'verify': await this.verifyAll(); break;
    }
    await this.checkpoint(false);
  }

  /**
   * Power fails while I/O runs. Half the time a first burst is answered before (acknowledged
   * writes still dirty in the cache, held only by NV), and a second one is in flight at the cut.
   */
  private async crashStep(r: Prng, s: Step): Promise<void> {
    const settled = new Prng(s.seed ^ 0x5e771ed).next() < 0.5;
    this.burst(r);
    if (settled) { await this.quiesce(); this.burst(r); }
    await this.target.step(between(r, 0, 60));
    await this.restart('crash', r);
  }

  private count(table: Record<string, number>, key: string, n = 1): void { table[key] = (table[key] ?? 0) + n; }
  private t(): number { return ++this.ticks; }

  private violate(check: string, detail: string): void {
    this.violations.push({ check, step: this.step.index, kind: this.step.kind, detail });
    this.log(`VIOLATION ${check} in step ${this.step.index} (${this.step.kind}): ${detail}`);
  }

  /** Ends the run at once (the array is in no state to go on). */
  private fatal(check: string, detail: string): never {
    this.violate(check, detail);
    throw new Stop();
  }

  private note(...parts: unknown[]): void { this.hash.update(`${parts.join(' ')}\n`); }

  // ---- boot, sessions ------------------------------------------------------------------------------

  private async boot(): Promise<void> {
    await this.target.boot(this.bootSpec());
    this.sabotage();
    const o = await this.target.labelsChecked(BOOT_BOUND_NS);
    if (o !== 'done') this.fatal('boot', `the labels of the media were not checked (${o}); waiting for: ${this.target.array.waitingFor().join(', ')}`);
    this.openSessions();
    this.lastMedia = await this.listMedia();
  }

  /** The spec of the next boot: media faults that outlive the restart go in as topology faults. */
  private bootSpec(): ArraySpec {
    return { ...this.spec, cache: { ...this.spec.cache, bytes: this.cacheBytes }, media: this.spec.media.map((m, i) => ({ ...m, faults: [...this.mediaFaults[i]] })) };
  }

  private openSessions(): void {
    const ports = this.spec.ports.length;
    this.admins = Array.from({ length: ports }, (_, p) => this.openOn(p, -1 - p));
    this.initiators = Array.from({ length: this.plan.topology.initiators }, (_, i) => this.openOn(i % ports, i));
  }

  private openOn(port: number, id: number): Initiator {
    const session = this.target.array.openSession(this.spec.ports[port].name);
    return { id, port, session, closed: false, bytes: 0 };
  }

  /** Deliberately broken targets (test/sim/sim.test.ts shows the checks catch them). */
  private sabotage(): void {
    const a = this.target.array;
    if (this.o.sabotage === 'media-drop') {
      // Media that report every other write of volume data done without writing it.
      let n = 0;
      for (const b of a.media) {
        const store = b.store;
        const write = store.write.bind(store);
        (b as unknown as { store: unknown }).store = Object.assign(Object.create(store), {
          write: (mem: Uint8Array, addr: number, at: number, len: number, done: (e?: Error | null) => void) => {
            if (at >= CHUNK_BYTES && n++ % 2 === 0) { done(null); return; }
            write(mem, addr, at, len, done);
          },
        });
      }
    } else if (this.o.sabotage === 'cross-read') {
      // Media that read the chunk after the one asked for.
      for (const b of a.media) {
        const store = b.store;
        const read = store.read.bind(store);
        (b as unknown as { store: unknown }).store = Object.assign(Object.create(store), {
          read: (mem: Uint8Array, addr: number, at: number, n: number, done: (e?: Error | null) => void) => {
            const shifted = at >= CHUNK_BYTES && at + CHUNK_BYTES + n <= b.sectors * 512;
            read(mem, addr, shifted ? at + CHUNK_BYTES : at, n, done);
          },
        });
      }
    }
  }

  // ---- commands -------------------------------------------------------------------------------------

  private issue(init: Initiator, cmd: ScsiCommand, o: Omit<Op, 'id' | 'init' | 'submit' | 'end' | 'done'>): Op {
    const op: Op = { ...o, id: ++this.opIds, init, submit: this.t(), end: Infinity, done: false };
    this.inflight.add(op);
    const bytes = cmd.dataOut ? cmd.dataOut.length : cmd.dataInLength ?? 0;
    init.bytes += bytes;
    this.count(this.commands, op.cls);
    if (this.o.verbose) this.log(`  #${op.id} t${op.submit} ${op.what}`);
    init.session.submit(cmd).then((r) => this.answered(op, r, bytes), (e: Error) => this.cutOff(op, e, bytes));
    return op;
  }

  private finishOp(op: Op, bytes: number): void {
    op.end = this.t();
    op.done = true;
    op.init.bytes -= bytes;
    this.inflight.delete(op);
  }

  private answered(op: Op, r: ScsiResult, bytes: number): void {
    this.finishOp(op, bytes);
    op.result = r;
    const sense = r.status === 2 ? scsi.decodeSense(r.sense) : undefined;
    if (this.o.verbose) this.log(`  #${op.id} t${op.end} -> ${r.status === 0 ? 'GOOD' : sense ? scsi.describeSense(sense) : hex(r.status)}`);
    this.note(op.id, op.cls, r.status, sense ? `${sense.key}/${sense.asc}/${sense.ascq}/${sense.info ?? ''}` : '');
    if (r.status === 0) { this.good(op, r); return; }
    if (r.status === TASK_SET_FULL || r.status === BUSY) { this.count(this.commands, 'taskSetFull'); this.notLanded(op); return; }
    if (r.status !== 2 || !sense) { this.violate('status', `${op.what}: status ${hex(r.status)}h`); return; }
    this.count(this.commands, `${op.cls} ${hex(sense.key)}/${hex(sense.asc)}/${hex(sense.ascq)}`);
    if (op.cls === 'mgmtOut') { this.mgmtAnswered(op, sense); return; }
    const why = this.senseAllowed(op, sense);
    if (why) this.violate('sense', `${op.what} got ${scsi.describeSense(sense)}: ${why}`);
    if (sense.key === 0x05) this.notLanded(op);
    else this.writeEnded(op, false);
  }

  private cutOff(op: Op, e: Error, bytes: number): void {
    this.finishOp(op, bytes);
    op.error = e;
    this.note(op.id, op.cls, 'cut', e.message);
    if (this.o.verbose) this.log(`  #${op.id} t${op.end} -> cut off: ${e.message}`);
    this.count(this.commands, 'cutOff');
    if (this.target.array.failed instanceof FirmwareAbort) return; // the step reports the abort
    const power = this.crashing || (this.target.array.failed !== undefined && !(this.target.array.failed instanceof FirmwareAbort));
    if (!power && !op.init.closed) { this.violate('transport', `${op.what} failed without a power cut or a closed session: ${e.message}`); return; }
    if (op.cls === 'mgmtOut' && op.change) { this.uncertain(op.change, op.expect ?? null); return; }
    if (power) this.writeEnded(op, false);
    else op.orphan = true; // the array may still commit it until it has closed the session
  }

  // ---- writes: candidates ----------------------------------------------------------------------------

  private writeEnded(op: Op, acked: boolean): void {
    if (op.gen === undefined || op.outOfRange) return;
    const c = this.contents.get(op.uid!);
    if (!c) return;
    for (let b = op.lba; b < op.lba + op.blocks; b++) {
      for (const v of c.candidates(b)) if (v.gen === op.gen) { v.end = op.end; v.acked = acked; }
      if (acked) c.poison.delete(b);
    }
  }

  /** A command refused before it touched anything: its write candidates go. */
  private notLanded(op: Op): void {
    if (op.gen === undefined) return;
    const c = this.contents.get(op.uid!);
    if (!c) return;
    for (let b = op.lba; b < op.lba + op.blocks; b++) {
      const l = c.cells.get(b);
      if (l) c.cells.set(b, l.filter((v) => v.gen !== op.gen));
    }
  }

  private good(op: Op, r: ScsiResult): void {
    if (op.outOfRange) { this.violate('range', `${op.what} past the end of the volume was answered GOOD`); return; }
    if (op.cls === 'mgmtOut') { this.mgmtGood(op); return; }
    if (op.cls === 'write' || op.cls === 'writeFua') { this.writeEnded(op, true); return; }
    if (op.cls === 'read') this.checkRead(op, r);
  }

  private checkRead(op: Op, r: ScsiResult): void {
    const c = this.contents.get(op.uid!)!;
    const bs = c.meta.blockSize;
    if (r.data.length !== op.blocks * bs) { this.violate('read', `${op.what}: GOOD with ${r.data.length} bytes of ${op.blocks * bs}`); return; }
    const gens: number[] = [];
    for (let i = 0; i < op.blocks; i++) {
      const lba = op.lba + i;
      const d = decodeBlock(r.data, i * bs, bs);
      if (d.kind === 'bad') { this.violate('garbage', `${op.what}: block ${lba}: ${d.why}`); return; }
      if (d.kind === 'block' && d.uid !== c.meta.uid) {
        const other = this.contents.get(d.uid);
        this.violate('leak', `${op.what}: block ${lba} holds LBA ${d.lba} of volume instance ${d.uid} (volume ${d.volume} "${other?.meta.name}", ${other?.deleted ? 'deleted' : 'another live volume'}), generation ${d.gen}`);
        return;
      }
      if (d.kind === 'block' && d.lba !== lba) { this.violate('misplaced', `${op.what}: block ${lba} holds this volume's LBA ${d.lba} (generation ${d.gen})`); return; }
      const gen = d.kind === 'zero' ? 0 : d.gen;
      gens.push(gen);
      if (c.damaged || c.allows(lba, gen, op.submit, op.end)) continue;
      this.violate(gen === 0 ? 'lost-write' : 'stale', `${op.what}: block ${lba} reads ${gen === 0 ? 'zeros' : `generation ${gen}`}; it may hold ${this.describeCands(c, lba)}`);
      return;
    }
    this.note(op.id, 'gens', gens.join(','));
  }

  private describeCands(c: Contents, lba: number): string {
    return c.candidates(lba).map((v) => `${v.gen === 0 ? 'zeros' : `gen ${v.gen}`} (${v.acked ? 'acked' : 'not acked'}, ticks ${v.submit}-${v.end === Infinity ? '…' : v.end})`).join(', ');
  }

  // ---- senses ---------------------------------------------------------------------------------------

  /** Null when the sense is allowed for this command now (senses.ts), else why not. */
  private senseAllowed(op: Op, s: scsi.Sense): string | null {
    const rows = rowsFor(op.cls, s.key, s.asc, s.ascq);
    if (rows.length === 0) return `no row of the sense table allows it for ${op.cls}`;
    const held = new Set<Condition>();
    for (const row of rows) for (const w of row.when) if (this.held(w, op, s)) held.add(w);
    if (held.size > 0) return null;
    return `none of ${[...new Set(rows.flatMap((x) => x.when))].join(', ')} held while it ran`;
  }

  private held(w: Condition, op: Op, s: scsi.Sense): boolean {
    const c = op.uid === undefined ? undefined : this.contents.get(op.uid);
    const media = c ? [...c.mediaOf()] : [];
    const during = (key: string) => this.win.overlaps(key, op.submit, op.end);
    switch (w) {
      case 'outOfRange': return op.outOfRange === true;
      case 'unmapped': return op.uid === undefined || !this.mappedThroughout(op.uid, op.port, op.lun, op.submit, op.end);
      case 'deleted': return op.uid !== undefined && during(`delete:${op.uid}`);
      case 'lunChanged': { const at = this.firstUnmap.get(`${op.port}:${op.lun}`); return at !== undefined && at <= op.end; }
      case 'dead': return media.some((m) => during(`dead:${m}`));
      case 'becoming': return media.some((m) => during(`becoming:${m}`));
      case 'lost': return media.some((m) => during(`lost:${m}`));
      case 'writeError': return media.some((m) => during(`werr:${m}`) || during(`dead:${m}`));
      case 'slow': return media.some((m) => during(`slow:${m}`));
      case 'nv': return during('nv');
      case 'cacheStuck': return this.spec.media.some((_, m) => ['dead', 'lost', 'becoming', 'werr', 'slow'].some((k) => during(`${k}:${m}`)));
      case 'poisoned': return c !== undefined && s.info !== undefined && c.poison.has(s.info);
      case 'readError': {
        if (!c || s.info === undefined || s.info < op.lba || s.info >= c.meta.blocks) return false;
        const [m, sector] = c.where(s.info);
        const sectors = c.meta.blockSize / 512;
        return this.win.dataDuring<{ lba: number; count: number }>(`rerr:${m}`, op.submit, op.end)
          .some((f) => f.lba < sector + sectors && sector < f.lba + f.count);
      }
    }
  }

  private mappedThroughout(uid: number, port: number, lun: number, s: number, e: number): boolean {
    return this.win.covers(`map:${uid}:${port}:${lun}`, s, e) && !this.win.overlaps(`unmap:${uid}:${port}:${lun}`, s, e);
  }

  // ---- I/O bursts -------------------------------------------------------------------------------------

  /** Volumes the initiators may address on a port: mapped there, no change of them pending. */
  private targetsOn(port: number): Array<[number, VolumeMeta]> {
    const busy = new Set(this.pending.flatMap((c) => ('number' in c ? [c.number] : [])));
    const out: Array<[number, VolumeMeta]> = [];
    for (const [k, n] of this.cat.maps) {
      const [p, lun] = k.split(':').map(Number);
      const v = this.cat.volumes.get(n);
      if (p === port && v && !busy.has(n) && this.contents.has(v.uid)) out.push([lun, v]);
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Every initiator issues 1-6 commands at once. */
  private burst(r: Prng, only?: number): Op[] {
    const ops: Op[] = [];
    for (const init of this.initiators) {
      if (init.closed) continue;
      const n = between(r, 1, 6);
      for (let i = 0; i < n; i++) { const op = this.ioOp(r, init, only); if (op) ops.push(op); }
    }
    return ops;
  }

  private ioOp(r: Prng, init: Initiator, only?: number): Op | undefined {
    let targets = this.targetsOn(init.port);
    if (only !== undefined && targets.some(([, v]) => v.uid === only) && r.next() < 0.8) targets = targets.filter(([, v]) => v.uid === only);
    if (targets.length === 0) return undefined;
    const [lun, v] = targets[Math.floor(r.next() * targets.length)];
    const bs = v.blockSize;
    const x = r.next();
    let n = r.next() < 0.3 ? 1 : r.next() < 0.5 ? between(r, 1, 8) : r.next() < 0.6 ? between(r, 1, CHUNK_BYTES / bs) : between(r, 1, MAX_IO_BYTES / bs);
    n = Math.min(n, v.blocks);
    if (init.bytes + n * bs > DATA_BYTES - MAX_IO_BYTES) return undefined;
    const slotBlocks = CHUNK_BYTES / bs;
    let lba = r.next() < 0.3 ? between(r, 0, Math.min(v.blocks, 2 * slotBlocks) - 1)
      : r.next() < 0.4 ? Math.floor(between(r, 0, v.blocks - 1) / slotBlocks) * slotBlocks : between(r, 0, v.blocks - 1);
    lba = Math.min(lba, v.blocks - n);
    const outOfRange = r.next() < 0.02;
    if (outOfRange) lba = v.blocks - n + between(r, 1, n);
    const base = { uid: v.uid, port: init.port, lun, lba, blocks: n, outOfRange };
    const at = `${init.id < 0 ? 'admin' : `initiator ${init.id}`} p${init.port} LUN ${lun} (volume ${v.number} "${v.name}", instance ${v.uid}) LBA ${lba}+${n}`;
    if (x < 0.45) return this.issue(init, { lun, cdb: scsi.readWrite(false, lba, n), dataInLength: n * bs }, { ...base, cls: 'read', what: `READ ${at}` });
    if (x < 0.85) return this.write(r, init, v, lun, lba, n, outOfRange, at);
    if (x < 0.95) {
      const immed = r.next() < 0.5;
      const whole = r.next() < 0.5;
      const sl = whole ? 0 : lba;
      const sn = whole ? 0 : Math.min(n, 0xffff);
      return this.issue(init, { lun, cdb: scsi.synchronizeCache10(sl, sn, { immediate: immed }) },
        { ...base, lba: sl, blocks: sn, outOfRange: outOfRange && !whole, cls: 'sync', what: `SYNCHRONIZE CACHE${immed ? ' IMMED' : ''} ${whole ? `p${init.port} LUN ${lun} whole volume` : at}` });
    }
    return this.issue(init, { lun, cdb: scsi.testUnitReady() }, { ...base, outOfRange: false, cls: 'tur', what: `TEST UNIT READY ${at}` });
  }

  private write(r: Prng, init: Initiator, v: VolumeMeta, lun: number, lba: number, n: number, outOfRange: boolean, at: string): Op {
    const fua = r.next() < 0.15;
    const gen = ++this.gen;
    const data = encodeBlocks(v.blockSize, v.uid, v.number, lba, n, gen);
    const c = this.contents.get(v.uid)!;
    const submit = this.ticks + 1; // issue() takes this tick
    if (!outOfRange) for (let b = lba; b < lba + n; b++) c.add(b, { gen, submit, end: Infinity, acked: false });
    return this.issue(init, { lun, cdb: scsi.readWrite(true, lba, n, { fua }), dataOut: data },
      { uid: v.uid, port: init.port, lun, lba, blocks: n, gen, outOfRange, cls: fua ? 'writeFua' : 'write', what: `WRITE${fua ? ' FUA' : ''} gen ${gen} ${at}` });
  }

  /**
   * Runs until every command in flight is answered. A hang (nothing runnable, a command
   * unanswered) or the bound is a violation; a power cut restarts the array.
   */
  private async quiesce(): Promise<void> {
    const o = await this.target.runUntil(() => this.inflight.size === 0, OP_BOUND_NS);
    if (o === 'failed') { await this.restart('fault'); return; }
    if (o !== 'done') {
      const left = [...this.inflight].map((x) => x.what).slice(0, 5).join('; ');
      this.fatal('hang', `${this.inflight.size} command(s) unanswered (${o === 'stalled' ? 'nothing runnable, no timer set' : `${OP_BOUND_NS / 1e9} s of virtual time`}): ${left}; the array waits for: ${this.target.array.waitingFor().join(', ') || 'nothing named'}`);
    }
    await this.settleOrphans();
  }

  /**
   * Writes cut off by a closed session may still land until the array has closed it: their end is
   * now. The firmware marks the slot CLOSED in the poll that drops the session's commands
   * (channel.ts serveSession, sequencer.ts abortCommand), and nothing of a dropped command changes
   * data after that, so the slot is all there is to wait for. Not for the array to be idle: a dead
   * medium is probed, and its dirty slots retried, a second after each failure for as long as it
   * stays dead, and a slow one answering in more than a second is never idle (seed 2017).
   */
  private async settleOrphans(): Promise<void> {
    const closing = [...this.initiators, ...this.admins].filter((i) => i.closed);
    if (closing.length > 0) {
      const open = () => closing.filter((i) => !i.session.slot.free);
      const o = await this.target.runUntil(() => open().length === 0, OP_BOUND_NS);
      if (o === 'failed') { await this.restart('fault'); return; }
      if (o !== 'done') {
        const slots = open().map((i) => `port ${i.session.slot.port} slot ${i.session.slot.index} (state ${i.session.slot.state})`).join(', ');
        this.fatal('hang', `a session the host closed was not closed by the array (${o === 'stalled' ? 'nothing runnable, no timer set' : `${OP_BOUND_NS / 1e9} s of virtual time`}): ${slots}; the array waits for: ${this.target.array.waitingFor().join(', ') || 'nothing named'}`);
      }
    }
    const now = this.t();
    for (const c of this.contents.values()) {
      for (const l of c.cells.values()) for (const v of l) if (v.end === Infinity && !this.inflightGen(v.gen)) v.end = now;
    }
  }

  private inflightGen(gen: number): boolean {
    for (const op of this.inflight) if (op.gen === gen) return true;
    return false;
  }

  // ---- management ---------------------------------------------------------------------------------

  private async mgmt(change: Change, what: string): Promise<Op> {
    const predicted = this.pending.length > 0 ? null : change.kind === 'reinit' ? this.reinitRefusal(change.medium) : this.cat.clone().apply(change);
    const admin = this.admins[0];
    let cmd: ScsiCommand;
    switch (change.kind) {
      case 'create': cmd = { lun: 0, cdb: scsi.management(true, scsi.Management.CREATE_VOLUME, 64), dataOut: scsi.createVolumeParameters({ ...change.spec, blockSize: change.spec.blockSize as 512 | 4096 }) }; break;
      case 'delete': cmd = { lun: 0, cdb: scsi.deleteVolume(change.number, change.force) }; break;
      case 'map': case 'unmap': cmd = { lun: 0, cdb: scsi.management(true, change.kind === 'map' ? scsi.Management.MAP_VOLUME : scsi.Management.UNMAP_VOLUME, 8), dataOut: scsi.mapParameters(change.number, change.port, change.lun) }; break;
      case 'reinit': cmd = { lun: 0, cdb: scsi.reinitializeMedium(change.medium) }; break;
    }
    const op = this.issue(admin, cmd, { cls: 'mgmtOut', port: 0, lun: 0, lba: 0, blocks: 0, what, change, expect: predicted });
    if (predicted === null) this.changeStarts(change, op);
    return op;
  }

  /** REINITIALIZE MEDIUM is refused for a medium that is not lost (by the last LIST MEDIA), or none. */
  private reinitRefusal(m: number): [number, number, number] | null {
    if (m >= this.spec.media.length) return [5, 0x84, 0x00];
    return this.lastMedia[m]?.state === 'lost' ? null : [5, 0x24, 0x00];
  }

  /** A change the model expects to go through: what may be seen while it runs. */
  /** When a LUN of a port first lost its volume (UNMAP, DELETE VOLUME): from then a session may meet 3Fh/0Eh there. */
  private readonly firstUnmap = new Map<string, number>();

  private lunUnmapped(port: number, lun: number, at: number): void {
    if (!this.firstUnmap.has(`${port}:${lun}`)) this.firstUnmap.set(`${port}:${lun}`, at);
  }

  private changeStarts(c: Change, op: Op): void {
    if (c.kind === 'delete') {
      const v = this.cat.volumes.get(c.number);
      if (!v) return;
      this.win.open(`delete:${v.uid}`, op.submit);
      for (const [p, l] of this.cat.mappingsOf(c.number)) { this.win.open(`unmap:${v.uid}:${p}:${l}`, op.submit); this.lunUnmapped(p, l, op.submit); }
    } else if (c.kind === 'unmap') {
      const v = this.cat.volumes.get(c.number);
      const ports = c.port === ALL_PORTS ? [...Array(this.spec.ports.length).keys()] : [c.port];
      if (v) for (const p of ports) if (this.cat.maps.get(`${p}:${c.lun}`) === c.number) { this.win.open(`unmap:${v.uid}:${p}:${c.lun}`, op.submit); this.lunUnmapped(p, c.lun, op.submit); }
    } else if (c.kind === 'reinit') {
      this.win.open(`becoming:${c.medium}`, op.submit);
    }
  }

  private mgmtGood(op: Op): void {
    const c = op.change!;
    if (this.pending.length > 0) { this.pend(c); return; } // resolved by the next lists
    if (op.expect) { this.violate('mgmt', `${op.what}: GOOD, but the model expects ${this.senseWords(op.expect)}`); return; }
    this.applyChange(c, op.end);
  }

  private mgmtAnswered(op: Op, s: scsi.Sense): void {
    const e = op.expect;
    if (e && s.key === e[0] && s.asc === e[1] && s.ascq === e[2]) return;
    if (s.key === 0x04 && s.asc === 0x44 && this.win.overlaps('nv', op.submit, op.end)) { this.uncertain(op.change!, e ?? null); return; }
    if (op.change?.kind === 'reinit' && s.key === 0x02 && s.asc === 0x04 && s.ascq === 0x03 && this.win.overlaps(`dead:${op.change.medium}`, op.submit, op.end)) return;
    if (op.change?.kind === 'reinit' && s.key === 0x03 && s.asc === 0x0C && s.ascq === 0x00 && this.win.overlaps(`lwerr:${op.change.medium}`, op.submit, op.end)) return;
    if (this.pending.length > 0) { this.pend(op.change!); return; }
    this.violate('mgmt', `${op.what}: ${scsi.describeSense(s)}, but the model expects ${e ? this.senseWords(e) : 'GOOD'}`);
  }

  private senseWords(e: [number, number, number]): string { return `${scsi.senseKeyName(e[0])} ${hex(e[1])}h/${hex(e[2])}h`; }

  /** The array could not say whether the change took place (its NV persist failed, or the power). */
  private uncertain(c: Change, expect: [number, number, number] | null): void {
    this.count(this.faults, 'uncertainChange');
    if (expect !== null && this.pending.length === 0) return; // refused anyway
    for (const part of this.byRecord(c)) this.pend(part);
    // A REINITIALIZE MEDIUM the disk IOP has begun goes on whatever its command was told.
    if (c.kind === 'reinit') this.mediaExpect[c.medium] = new Set([...this.mediaExpect[c.medium], 'ok', 'becoming ready']);
  }

  /**
   * An unanswered change, cut into the parts that reach NV each on their own. A MAP or UNMAP of
   * every port is one LUN map record per port, each sealed by its own CRC, written in one NV entry:
   * a power cut that tears the entry lands the records before the tear and drops the torn one
   * (seed 2340: MAP VOLUME every port LUN 4 came back mapped on port 0 only). As with a WRITE of
   * many blocks cut off, the array never said it took place, and sending it again completes it.
   */
  private byRecord(c: Change): Change[] {
    if ((c.kind !== 'map' && c.kind !== 'unmap') || c.port !== ALL_PORTS) return [c];
    const now = this.withPending(this.pending);
    return [...Array(this.spec.ports.length).keys()].map((port) => ({ ...c, port })).filter((x) => now.clone().apply(x) === null);
  }

  /**
   * A change whose outcome the next lists settle. A REINITIALIZE MEDIUM among them may already
   * have taken place: the medium's blocks may read zeros from now on.
   */
  private pend(c: Change): void {
    this.pending.push(c);
    if (c.kind === 'reinit') this.reinitialized(c.medium, this.t(), false);
  }

  /** The change took place: catalog, contents, windows. */
  private applyChange(c: Change, at: number): void {
    const before = c.kind === 'delete' || c.kind === 'map' || c.kind === 'unmap' ? this.cat.volumes.get(c.number) : undefined;
    const refused = this.cat.apply(c);
    if (refused) { this.violate('model', `the model refuses a change it expected to take place: ${JSON.stringify(c)}`); return; }
    if (c.kind === 'create') {
      const v = this.cat.byUid(c.uid)!;
      this.contents.set(v.uid, new Contents(v));
    } else if (c.kind === 'delete' && before) {
      this.contents.get(before.uid)!.deleted = true;
      this.win.close(`delete:${before.uid}`, at);
      for (const k of this.win.openKeys(`map:${before.uid}:`)) this.win.close(k, at);
    } else if (c.kind === 'map' && before) {
      const ports = c.port === ALL_PORTS ? [...Array(this.spec.ports.length).keys()] : [c.port];
      for (const p of ports) {
        if (this.win.isOpen(`map:${before.uid}:${p}:${c.lun}`)) continue;
        this.win.close(`unmap:${before.uid}:${p}:${c.lun}`, at);
        this.win.open(`map:${before.uid}:${p}:${c.lun}`, at);
      }
    } else if (c.kind === 'unmap' && before) {
      for (const k of this.win.openKeys(`map:${before.uid}:`)) {
        const [, , p, l] = k.split(':').map(Number);
        if (l === c.lun && (c.port === ALL_PORTS || c.port === p)) this.win.close(k, at);
      }
    } else if (c.kind === 'reinit') {
      this.reinitialized(c.medium, at);
    }
  }

  /** A lost medium's loss was accepted: its blocks may read zeros from now on (or what NV still held). */
  private reinitialized(m: number, at: number, done = true): void {
    for (const c of this.contents.values()) {
      if (c.deleted || !c.mediaOf().has(m)) continue;
      for (const [lba, l] of c.cells) if (c.where(lba)[0] === m) l.push({ gen: 0, submit: at, end: at, acked: false });
    }
    if (!done) return;
    this.win.close(`lost:${m}`, at);
    this.win.close(`becoming:${m}`, at);
    this.mediaExpect[m] = new Set(['ok']);
    if (this.relabelSeen.delete(m)) return; // its new label was taken when it listed ok
    this.relabel(m);
  }

  /**
   * A new label on medium m. Its NV record may not have reached the file while NV fails: a restart
   * may find NV naming the label before, and the medium lost again.
   */
  private relabel(m: number): void {
    this.labelsBefore[m] = this.win.isOpen('nv') ? this.nvNames(m) : [];
    this.relabelledSinceBoot.add(m);
    this.labels[m] = this.images[m] = `m${m}.${++this.labelGen}`;
  }

  /** The labels NV's file may name for medium m: the newest first. */
  private nvNames(m: number): string[] {
    return [this.labels[m], ...this.labelsBefore[m].filter((x) => x !== this.labels[m])];
  }

  private async runMgmt(change: Change, what: string): Promise<Op> {
    const op = await this.mgmt(change, what);
    await this.quiesce();
    return op;
  }

  private newSpec(r: Prng): CreateSpec {
    const bs = r.next() < 0.6 ? 512 : 4096;
    const media = this.spec.media.length;
    const list = r.next() < 0.3 ? [] : shuffle(r, [...Array(media).keys()]).slice(0, between(r, 1, media));
    const bytes = between(r, 1, 40) * (r.next() < 0.5 ? CHUNK_BYTES : 16384);
    const uid = ++this.uid;
    const name = r.next() < 0.03 ? String(between(r, 1, 999)) : r.next() < 0.03 && this.cat.volumes.size > 0 ? [...this.cat.volumes.values()][0].name : `v${uid}`;
    return { name, blockSize: bs, blocks: Math.max(1, Math.floor(bytes / bs)), placement: r.next() < 0.3 ? 'striped' : 'linear', media: list };
  }

  /** One management change, chosen from what the catalog holds. */
  private async mgmtStep(r: Prng): Promise<void> {
    if (this.pending.length > 0) { this.lastMedia = await this.listMedia(); return; }
    const lost = this.lastMedia.filter((m) => m.state === 'lost');
    const x = r.next();
    const vols = [...this.cat.volumes.values()];
    if (lost.length > 0 && x < 0.5) { await this.runMgmt({ kind: 'reinit', medium: lost[0].index }, `REINITIALIZE MEDIUM ${lost[0].index}`); return; }
    if (vols.length < 2 || x < 0.45) { await this.createAndMap(r); return; }
    const v = vols[Math.floor(r.next() * vols.length)];
    if (x < 0.65) { await this.runMgmt({ kind: 'delete', number: v.number, force: r.next() < 0.8 }, `DELETE VOLUME ${v.number} "${v.name}"`); return; }
    if (x < 0.85) { await this.mapSomewhere(r, v); return; }
    if (x < 0.87) {
      const m = this.lastMedia.find((y) => y.state === 'ok');
      if (m) await this.runMgmt({ kind: 'reinit', medium: m.index }, `REINITIALIZE MEDIUM ${m.index} (not lost: refused)`);
      return;
    }
    const maps = this.cat.mappingsOf(v.number);
    if (maps.length === 0) { await this.mapSomewhere(r, v); return; }
    const [p, l] = maps[Math.floor(r.next() * maps.length)];
    await this.runMgmt({ kind: 'unmap', number: v.number, port: r.next() < 0.2 ? ALL_PORTS : p, lun: l }, `UNMAP VOLUME ${v.number} p${p} LUN ${l}`);
  }

  private async createAndMap(r: Prng): Promise<void> {
    const spec = this.newSpec(r);
    const op = await this.runMgmt({ kind: 'create', spec, uid: this.uid }, `CREATE VOLUME "${spec.name}" ${spec.blocks}x${spec.blockSize} ${spec.placement} on [${spec.media.join(',') || 'all'}]`);
    const v = this.cat.byUid(this.uid);
    if (op.result?.status === 0 && v) await this.mapSomewhere(r, v);
  }

  private async mapSomewhere(r: Prng, v: VolumeMeta): Promise<void> {
    const all = r.next() < 0.5;
    const port = all ? ALL_PORTS : between(r, 0, this.spec.ports.length - 1);
    const ports = all ? [...Array(this.spec.ports.length).keys()] : [port];
    let lun = 1;
    while (lun < 255 && ports.some((p) => this.cat.maps.has(`${p}:${lun}`) && this.cat.maps.get(`${p}:${lun}`) !== v.number)) lun++;
    if (r.next() < 0.05) lun = between(r, 1, 8); // maybe taken: LUN ALREADY MAPPED
    await this.runMgmt({ kind: 'map', number: v.number, port, lun }, `MAP VOLUME ${v.number} "${v.name}" ${all ? 'every port' : `p${port}`} LUN ${lun}`);
  }

  /** I/O aimed at one volume, then its DELETE (or UNMAP) while that I/O is in flight. */
  private async busyMgmtStep(r: Prng): Promise<void> {
    const vols = [...this.cat.volumes.values()].filter((v) => this.cat.mappingsOf(v.number).length > 0);
    if (vols.length === 0 || this.pending.length > 0) { this.burst(r); await this.quiesce(); return; }
    const v = vols[Math.floor(r.next() * vols.length)];
    this.burst(r, v.uid);
    await this.target.step(between(r, 0, 30));
    if (r.next() < 0.7) {
      this.count(this.faults, 'deleteWhileBusy');
      await this.mgmt({ kind: 'delete', number: v.number, force: r.next() < 0.9 }, `DELETE VOLUME ${v.number} "${v.name}" (I/O in flight)`);
    } else {
      const [p, l] = this.cat.mappingsOf(v.number)[0];
      this.count(this.faults, 'unmapWhileBusy');
      await this.mgmt({ kind: 'unmap', number: v.number, port: p, lun: l }, `UNMAP VOLUME ${v.number} p${p} LUN ${l} (I/O in flight)`);
    }
    await this.quiesce();
  }

  // ---- faults ---------------------------------------------------------------------------------------

  private async faultMediaStep(r: Prng): Promise<void> {
    this.burst(r);
    await this.target.step(between(r, 0, 30));
    const used = [...this.contents.values()].filter((c) => !c.deleted);
    const m = between(r, 0, this.spec.media.length - 1);
    const x = r.next();
    const binding = this.target.array.media[m];
    let f: FaultSpec;
    if (x < 0.7) {
      // At a block of a volume on the medium when there is one; a tenth of them at its label
      // (sector 0), drawn from a stream of their own so that r's draws stay as they were.
      const c = used.find((u) => u.mediaOf().has(m));
      let lba = between(r, CHUNK_SECTORS, binding.sectors - 1);
      if (c) { const b = between(r, 0, c.meta.blocks - 1); const [mm, s] = c.where(b); if (mm === m) lba = s; }
      let count = Math.min(between(r, 1, 256), binding.sectors - lba);
      const label = 'seed' in this.step && new Prng((this.step.seed ^ 0x1abe1) >>> 0).next() < 0.1;
      if (label) { lba = 0; count = 1; this.count(this.faults, `media label ${x < 0.35 ? 'read' : 'write'} error`); }
      f = { type: x < 0.35 ? 'readError' : 'writeError', lba, count };
      this.win.open(`${x < 0.35 ? 'rerr' : 'werr'}:${m}`, this.t(), { lba, count });
      // A label it cannot write: REINITIALIZE MEDIUM fails MEDIUM ERROR, WRITE ERROR, the medium still lost.
      if (label && x >= 0.35) this.win.open(`lwerr:${m}`, this.t());
    } else if (x < 0.85) {
      f = { type: 'slow', factor: between(r, 2, 50) };
      this.win.open(`slow:${m}`, this.t());
    } else {
      f = { type: 'dead' };
      this.win.open(`dead:${m}`, this.t());
      this.mediaExpect[m] = new Set([...this.mediaExpect[m], 'dead', 'becoming ready']);
    }
    this.count(this.faults, `media ${f.type}`);
    this.log(`  fault: ${this.spec.media[m].name} ${JSON.stringify(f)}`);
    binding.inject(f);
    this.mediaFaults[m].push(f);
    this.note('fault', m, JSON.stringify(f));
    await this.quiesce();
  }

  private async faultNvStep(r: Prng): Promise<void> {
    this.burst(r);
    await this.target.step(between(r, 0, 30));
    const x = r.next();
    const nv = this.target.array.nv;
    if (x < 0.5) {
      const errno = r.next() < 0.5 ? os.constants.errno.ENOSPC : os.constants.errno.EIO;
      const count = r.next() < 0.3 ? undefined : between(r, 1, 30);
      nv.inject({ type: 'error', errno, ...(count ? { count } : {}) });
      this.count(this.faults, `nv ${errno === os.constants.errno.ENOSPC ? 'ENOSPC' : 'EIO'}`);
      this.nvFaulty = true;
      if (!this.win.isOpen('nv')) this.win.open('nv', this.t());
    } else if (x < 0.75) {
      nv.inject({ type: 'torn', afterWrites: between(r, 0, 40), ...(r.next() < 0.5 ? { bytes: between(r, 0, 4096) } : {}) });
      this.count(this.faults, 'nv torn (armed)');
    } else {
      nv.inject({ type: 'powerLoss', afterWrites: between(r, 0, 200) });
      this.count(this.faults, 'nv power loss (armed)');
    }
    this.note('nvfault', x);
    await this.quiesce();
  }

  /**
   * Heals media and NV faults (all, or at the end of the run), then runs the array until it is
   * whole again within a bound: media ok, the NV file rewritten, nothing stuck in the cache.
   */
  private async heal(r: Prng | undefined, all: boolean): Promise<void> {
    const media = this.spec.media.map((_, i) => i).filter((m) => this.mediaFaults[m].length > 0 && (all || !r || r.next() < 0.7));
    for (const m of media) { this.target.array.media[m].heal(); this.mediaFaults[m] = []; this.count(this.faults, 'media heal'); }
    this.target.array.nv.heal();
    if (media.length === 0 && !this.nvFaulty && !all) return;
    for (const m of media) if (this.win.isOpen(`dead:${m}`)) this.win.open(`becoming:${m}`, this.t());
    await this.recover(media, all);
  }

  private async recover(media: number[], all: boolean): Promise<void> {
    for (let waited = 0; ; waited += 2000) {
      await this.target.advance(2000);
      if (this.target.array.failed) { await this.restart('fault'); return; }
      const states = await this.listMedia();
      const { result } = await this.controlFlush();
      if (!result) return;
      const lost = (name: string | null) => { const i = this.spec.media.findIndex((x) => x.name === name); return i >= 0 && this.win.isOpen(`lost:${i}`); };
      // Slots held for the NV file count once it was at fault: they go when it has been rewritten.
      const nvHeld = (s: StuckSlot) => this.nvFaulty && s.reason.startsWith('NV');
      const stuck = result.stuck.filter((s) => (all || nvHeld(s) || media.some((m) => this.spec.media[m].name === s.medium)) && !lost(s.medium));
      const whole = media.every((m) => states[m]?.state === 'ok' || (states[m]?.state === 'lost' && this.win.isOpen(`lost:${m}`)))
        && stuck.length === 0 && (!this.nvFaulty || result.nvErrno === null);
      if (whole) break;
      if (waited > RECOVERY_BOUND_MS) {
        this.fatal('recovery', `${RECOVERY_BOUND_MS / 1000} s after the faults were healed the array is not whole: media ${media.map((m) => `${this.spec.media[m].name} ${states[m]?.state}`).join(', ')}; ${stuck.length} slot(s) stuck; NV errno ${result.nvErrno}`);
      }
    }
    const now = this.t();
    for (const m of media) {
      for (const k of ['dead', 'becoming', 'rerr', 'werr', 'lwerr', 'slow']) this.win.close(`${k}:${m}`, now);
      if (!this.win.isOpen(`lost:${m}`)) this.mediaExpect[m] = new Set(['ok']);
    }
    if (this.nvFaulty) { this.nvFaulty = false; this.win.close('nv', now); for (const m of this.relabelledSinceBoot) this.labelsBefore[m] = []; }
    this.lastMedia = await this.listMedia();
  }

  private async sessionStep(r: Prng): Promise<void> {
    this.burst(r);
    await this.target.step(between(r, 0, 20));
    const open = this.initiators.filter((i) => !i.closed);
    if (open.length === 0) { await this.quiesce(); return; }
    const victim = open[Math.floor(r.next() * open.length)];
    if (this.inflightOf(victim) > 0) this.count(this.faults, 'session closed busy');
    victim.closed = true;
    await victim.session.close();
    await this.quiesce();
    const port = between(r, 0, this.spec.ports.length - 1);
    const fresh = this.openOn(port, victim.id);
    this.initiators = this.initiators.map((i) => (i === victim ? fresh : i));
    this.count(this.faults, 'session reopened');
  }

  private inflightOf(init: Initiator): number {
    let n = 0;
    for (const op of this.inflight) if (op.init === init) n++;
    return n;
  }

  // ---- flush, stop, restart ---------------------------------------------------------------------------

  private async controlFlush(): Promise<{ result?: ControlResult }> {
    const submit = this.t();
    const { result, error, outcome } = await this.target.control(A.CTL_FLUSH, CONTROL_BOUND_NS);
    if (outcome === 'failed' || this.target.array.failed) { await this.restart('fault'); return {}; }
    if (!result) this.fatal('flush', `the flush did not finish: ${error?.message ?? outcome}`);
    this.checkControl('flush', result, submit);
    return { result };
  }

  private async flush(what: string): Promise<void> {
    this.count(this.commands, what);
    await this.controlFlush();
  }

  /** What a flush or shutdown left is named, and each thing left has a fault to explain it. */
  private checkControl(what: string, r: ControlResult, submit: number): void {
    const now = this.t();
    this.note(what, r.dirtyLeft, r.nvErrno, r.nvClean);
    if (r.stuck.length !== Math.min(r.dirtyLeft, A.CONTROL_STUCK_MAX)) this.violate(what, `${r.dirtyLeft} dirty slot(s) left but ${r.stuck.length} named`);
    for (const s of r.stuck) {
      const m = this.spec.media.findIndex((x) => x.name === s.medium);
      const during = (k: string) => this.win.overlaps(`${k}:${m}`, submit, now) || this.win.isOpen(`${k}:${m}`);
      const nv = this.win.overlaps('nv', submit, now) || this.win.isOpen('nv');
      const ok = m >= 0 && (s.reason.startsWith('NV') ? nv : s.reason.startsWith('medium lost') ? during('lost')
        : s.reason === 'medium dead' ? during('dead') || during('lost') || during('becoming') : during('werr') || during('dead'));
      if (!ok) { this.violate(what, `left volume ${s.volume} LBA ${s.lba}+${s.blocks} on ${s.medium} (${s.reason}) with no such fault on that medium`); return; }
    }
    if (r.nvErrno !== null && !this.win.isOpen('nv') && !this.win.overlaps('nv', submit, now)) this.violate(what, `reports a failing NV file (errno ${r.nvErrno}) with no NV fault`);
    if (r.nvClean !== undefined && r.nvClean !== (r.dirtyLeft === 0 && r.nvErrno === null)) this.violate(what, `NV image ${r.nvClean ? '' : 'not '}marked clean with ${r.dirtyLeft} dirty slot(s) left and NV errno ${r.nvErrno}`);
  }

  /**
   * Stops the array (a power cut, a graceful stop, or after a fault cut the power), maybe tampers
   * with its image files, boots it again on the same directory, and checks what came back.
   */
  private async restart(how: 'crash' | 'stop' | 'fault', r?: Prng): Promise<void> {
    if (this.target.array.failed instanceof FirmwareAbort) this.fatal('abort', this.target.array.failed.message);
    const cut = this.t();
    this.count(this.faults, how === 'crash' ? 'power cut (kill)' : how === 'stop' ? 'graceful stop' : 'power cut (NV fault)');
    this.crashing = how !== 'stop';
    this.stoppedClean = false;
    if (how === 'stop') {
      for (const i of [...this.initiators, ...this.admins]) i.closed = true;
      const s = await this.target.shutdown(CONTROL_BOUND_NS);
      this.stoppedClean = s.result?.nvClean === true;
      const failed = this.target.array.failed;
      if (s.result) this.checkControl('shutdown', s.result, cut);
      else if (failed && !(failed instanceof FirmwareAbort)) {
        // An NV fault armed before (power loss or a torn write after n writes) cut the power
        // during the stop: the array is right not to finish it (nothing can be written once the
        // power is gone); what follows is a power cut's restart.
        this.count(this.faults, 'power cut (NV fault, during a stop)');
        this.crashing = true;
      } else this.fatal('shutdown', `the graceful stop did not finish: ${s.error?.message ?? s.outcome}`);
    } else if (how === 'crash') {
      await this.target.powerFail();
    } else {
      await this.target.release();
    }
    await tick();
    // Nothing sent before the stop lands after it. A write never acknowledged may have been torn
    // over the block's NV sector: it may read MEDIUM ERROR until written again.
    const end = this.t();
    for (const c of this.contents.values()) {
      for (const [lba, l] of c.cells) {
        for (const v of l) if (v.end === Infinity) v.end = end;
        if (l.some((v) => !v.acked && v.gen !== 0)) c.poison.add(lba);
      }
    }
    this.inflight.clear();
    if (r) this.tamper(r);
    if (r && 'seed' in this.step) this.resizeCache(new Prng((this.step.seed ^ 0xcac4e5) >>> 0)); // its own stream: r's draws stay as they were
    await this.rebootAndCheck(cut);
  }

  /** What each medium may be after a restart: RAM media come back blank, tampered images are lost. */
  private expectAfterRestart(cut: number): void {
    this.relabelledSinceBoot.clear();
    const reinitPending = new Set(this.pending.flatMap((c) => (c.kind === 'reinit' ? [c.medium] : [])));
    for (let m = 0; m < this.spec.media.length; m++) {
      const wasLost = this.win.isOpen(`lost:${m}`) || this.mediaExpect[m].has('lost');
      const blank = this.spec.media[m].kind === 'ram';
      if (blank) { this.count(this.faults, 'ram medium blank after restart'); this.images[m] = null; }
      // NV names one of these: ok exactly when the medium holds it. A pending REINITIALIZE MEDIUM
      // not yet seen listing it ok may have written a label and its record, or not.
      const names = this.nvNames(m);
      const own = this.images[m] !== null && names.includes(this.images[m]!);
      const unseen = reinitPending.has(m) && !this.relabelSeen.has(m);
      const states = new Set<scsi.Medium['state']>();
      if (!own || names.length > 1 || unseen) states.add('lost');
      if (!blank && (own || unseen)) states.add('ok');
      if (this.mediaFaults[m].some((f) => f.type === 'dead')) states.add('dead');
      // A label the restart cannot read: the medium is lost (unreadable), never taken for another's or blank.
      if (this.mediaFaults[m].some((f) => f.type === 'readError' && f.lba === 0)) { states.add('lost'); this.labelUnreadableAtBoot.add(m); }
      else this.labelUnreadableAtBoot.delete(m);
      this.mediaExpect[m] = states;
      this.log(`  restart: medium ${m} (${this.spec.media[m].kind}) may be ${[...states].join(' or ')}${wasLost ? ' (lost before)' : ''} (holds ${this.images[m] ?? 'no labelled image'}, NV names ${names.join(' or ')})${reinitPending.has(m) ? ' (reinitialization pending)' : ''}`);
      if (states.has('lost') && !this.win.isOpen(`lost:${m}`)) this.win.open(`lost:${m}`, cut);
      if (reinitPending.has(m)) this.reinitialized(m, cut, false);
    }
  }

  /**
   * While stopped, a third of the time, another cache size for the next boot (16-40 slots, as the
   * plans draw them): the init map and the cache tables move in the NV image (docs/hal.md, "Layout
   * and checksums"), and every acknowledged write must come back.
   */
  private resizeCache(c: Prng): void {
    if (c.next() >= 0.3) return;
    const bytes = between(c, 16, 40) * CHUNK_BYTES;
    if (bytes === this.cacheBytes) return;
    this.log(`  cache: ${this.cacheBytes / CHUNK_BYTES} slots -> ${bytes / CHUNK_BYTES} at the next boot`);
    this.resize = bytes;
  }

  /**
   * Boots again. A boot with another cache size (resizeCache) must take an image a graceful stop
   * marked clean; one that may hold dirty data it may refuse (ERR_NV_GEOMETRY, every byte of the
   * file kept), and the array then boots with the size before, as an operator would put it back.
   */
  private async bootAgain(): Promise<void> {
    const want = this.resize;
    this.resize = undefined;
    if (want === undefined) { await this.target.boot(this.bootSpec()); return; }
    const before = this.cacheBytes;
    this.cacheBytes = want;
    this.count(this.faults, 'cache resized at a restart');
    try {
      await this.target.boot(this.bootSpec());
    } catch (e) {
      if (!(e instanceof BootError) || e.code !== A.ERR_NV_GEOMETRY) throw e;
      if (this.stoppedClean) this.violate('boot', `a cache of ${want / CHUNK_BYTES} slots refused after a graceful stop that marked the NV image clean: ${e.message}`);
      this.log(`  cache: ${want / CHUNK_BYTES} slots refused (dirty data in NV); back to ${before / CHUNK_BYTES}`);
      this.count(this.faults, 'cache resize refused (dirty data in NV)');
      this.cacheBytes = before;
      await this.target.boot(this.bootSpec());
    }
    this.note('cache', this.cacheBytes);
  }

  private async rebootAndCheck(cut: number): Promise<void> {
    this.crashing = false;
    this.expectAfterRestart(cut);
    await this.bootAgain();
    this.sabotage();
    const o = await this.target.labelsChecked(BOOT_BOUND_NS);
    if (o === 'failed') { await this.restart('fault'); return; }
    if (o !== 'done') this.fatal('boot', `the media labels were not checked after the restart (${o})`);
    this.log(`  rebooted: ${this.target.array.stats()[A.STAT_NV_DROPPED]} NV sectors dropped`);
    this.openSessions();
    await this.checkpoint(true);
    await this.verifyAll();
  }

  /** While stopped: an image file deleted, or replaced by another medium's, or its label sector damaged. */
  private tamper(r: Prng): void {
    const files = this.spec.media.map((m, i) => [m, i] as const).filter(([m]) => m.kind === 'file');
    if (files.length === 0 || r.next() < 0.6) return;
    const [m, i] = files[Math.floor(r.next() * files.length)];
    const x = r.next();
    this.log(`  tamper: ${m.name} ${x < 0.4 ? 'deleted' : x < 0.7 && files.length > 1 ? 'swapped' : 'label damaged'}`);
    if (x < 0.4) {
      fs.rmSync(m.path, { force: true });
      this.count(this.faults, 'image deleted');
      this.images[i] = null;
    } else if (x < 0.7 && files.length > 1) {
      const [o, j] = files.find(([, k]) => k !== i)!;
      const a = fs.readFileSync(m.path);
      fs.writeFileSync(m.path, fs.readFileSync(o.path));
      fs.writeFileSync(o.path, a);
      this.count(this.faults, 'images swapped');
      [this.images[i], this.images[j]] = [this.images[j], this.images[i]];
    } else {
      const fd = fs.openSync(m.path, 'r+');
      fs.writeSync(fd, crypto.createHash('sha256').update(String(r.u32())).digest(), 0, 32, between(r, 0, 400));
      fs.closeSync(fd);
      this.count(this.faults, 'label damaged');
      this.images[i] = null;
    }
  }

  // ---- lists and verification -------------------------------------------------------------------------

  private async adminList(sa: number, what: string): Promise<Buffer | undefined> {
    const op = this.issue(this.admins[0], { lun: 0, cdb: scsi.management(false, sa, 65536), dataInLength: 65536 },
      { cls: 'mgmtIn', port: 0, lun: 0, lba: 0, blocks: 0, what });
    await this.quiesce();
    if (!op.result) return undefined; // cut off by a power cut: the restart checks again
    if (op.result.status !== 0) { this.violate('list', `${what}: status ${hex(op.result.status)}h`); return undefined; }
    return Buffer.from(op.result.data);
  }

  private async listMedia(): Promise<scsi.Medium[]> {
    const d = await this.adminList(scsi.Management.LIST_MEDIA, 'LIST MEDIA');
    return d ? scsi.parseMedia(d) : [];
  }

  /**
   * Lists volumes, mappings and media and checks them against the model: the catalog with some
   * prefix-ordered subset of the pending changes applied. `resolving` (after a restart, or once
   * the NV file is whole again) settles which, and the pending changes go.
   */
  private async checkpoint(resolving: boolean): Promise<void> {
    if (this.violations.length > 0) return;
    // Media are listed before and after: a label check may end between the lists.
    const before = await this.listMedia();
    const vd = await this.adminList(scsi.Management.LIST_VOLUMES, 'LIST VOLUMES');
    const md = await this.adminList(scsi.Management.LIST_MAPPINGS, 'LIST MAPPINGS');
    const media = await this.listMedia();
    if (!vd || !md || media.length === 0 || before.length === 0) return;
    this.lastMedia = media;
    const vols = scsi.parseVolumes(vd);
    const maps = scsi.parseMappings(md);
    if (this.o.sabotage === 'stale-list' && vols.length > 0) vols.pop();
    this.note('lists', JSON.stringify(vols), JSON.stringify(maps), JSON.stringify(media.map((m) => [m.state, m.freeChunks])));
    for (const m of media) {
      if (!this.mediaExpect[m.index]?.has(m.state)) this.violate('media', `medium ${m.name} is ${m.state}; the model expects ${[...this.mediaExpect[m.index]].join(' or ')}`);
      if (m.state === 'lost' && !this.win.isOpen(`lost:${m.index}`)) this.win.open(`lost:${m.index}`, this.t());
      // A medium that may have come back lost (its new label's record perhaps not in NV) came back
      // whole: it is not lost, and a later restart finds it as it is now.
      if (m.state === 'ok' && this.win.isOpen(`lost:${m.index}`)) { this.win.close(`lost:${m.index}`, this.t()); this.mediaExpect[m.index].delete('lost'); }
      // What the array found settles an uncertain label: ok, the medium holds the image NV names;
      // lost, it does not. A pending REINITIALIZE MEDIUM that lists its medium ok wrote a new label
      // on it (seeds 3081, 5076): the image is new, and NV's file may name the old label still.
      const i = m.index;
      const names = this.nvNames(i);
      const relabelling = this.pending.some((c) => c.kind === 'reinit' && c.medium === i);
      if (m.state === 'ok' && relabelling && !resolving) { if (!this.relabelSeen.has(i)) { this.relabelSeen.add(i); this.relabel(i); } }
      else if (m.state === 'ok') {
        // After a restart NV's file names what the medium holds: the image the model knows there
        // if NV may name it, else one the pending relabel wrote.
        if (this.images[i] === null || (relabelling && !names.includes(this.images[i]!))) this.images[i] = `m${i}.${++this.labelGen}`;
        this.labels[i] = this.images[i]!;
        if (resolving) this.labelsBefore[i] = [];
      }
      if (m.state === 'lost' && resolving && names.length > 1 && this.images[i] !== null && names.includes(this.images[i]!)) {
        const rest = names.filter((x) => x !== this.images[i]);
        this.labels[i] = rest[0];
        this.labelsBefore[i] = rest.slice(1);
      }
      // Lost with the label NV names: the image does not hold it, unless the label sector cannot be
      // read (a fault on sector 0): then the label is still there and comes back when the fault heals
      // (seed 10047).
      // The array reads labels only at boot: a fault healed since still leaves it listed lost.
      const labelUnreadable = this.labelUnreadableAtBoot.has(i) || this.mediaFaults[i].some((f) => f.type === 'readError' && f.lba === 0);
      if (m.state === 'lost' && this.images[i] === this.labels[i] && !labelUnreadable) this.images[i] = null;
    }
    for (const v of vols) {
      // Ready when every medium it has extents on is (a linear volume need not reach all it lists).
      const meta = this.cat.volumes.get(v.number);
      if (!meta || meta.name !== v.name) continue;
      const on = [...new Contents(meta).mediaOf()];
      const st = (l: scsi.Medium[]) => (on.every((i) => l[i]?.state === 'ok') ? 'online' : 'not ready');
      if (v.state !== st(before) && v.state !== st(media)) this.violate('volumes', `volume ${v.number} "${v.name}" is ${v.state} with its media ${on.map((i) => `${media[i]?.name} ${media[i]?.state}`).join(', ')}`);
    }
    const match = this.matchCatalog(vols, maps, media);
    if (!match) { this.violate('lists', this.listDiff(this.withPending(this.pending), vols, maps, media)); return; }
    if (resolving || this.pending.length === 0 || (!this.nvFaulty && !this.win.isOpen('nv'))) this.resolve(match.applied, media);
    this.pruneAll();
  }

  private withPending(changes: Change[]): Catalog {
    const c = this.cat.clone();
    for (const x of changes) c.apply(x);
    return c;
  }

  private matchCatalog(vols: scsi.Volume[], maps: scsi.Mapping[], media: scsi.Medium[]): { applied: Change[] } | undefined {
    const n = this.pending.length;
    for (let mask = 0; mask < 1 << n; mask++) {
      const applied = this.pending.filter((_, i) => (mask >> i) & 1);
      const c = this.withPending(applied);
      if (this.listDiff(c, vols, maps, media) === '') return { applied };
    }
    return undefined;
  }

  /** '' when the lists are what catalog c says; else the first difference, in words. */
  private listDiff(c: Catalog, vols: scsi.Volume[], maps: scsi.Mapping[], media: scsi.Medium[]): string {
    const want = [...c.volumes.values()].sort((a, b) => a.number - b.number);
    const got = [...vols].sort((a, b) => a.number - b.number);
    const fmt = (v: { number: number; name: string; blockSize: number; blocks: number; placement: string; media: number[] }) => `${v.number} "${v.name}" ${v.blocks}x${v.blockSize} ${v.placement} [${v.media.join(',')}]`;
    const w = want.map(fmt).join('; ');
    const g = got.map(fmt).join('; ');
    if (w !== g) return `LIST VOLUMES: ${g || 'none'}; the model: ${w || 'none'}${this.pending.length ? ` (${this.pending.length} change(s) pending)` : ''}`;
    const wm = [...c.maps].map(([k, n]) => `${k}=${n}`).sort().join(' ');
    const gm = maps.map((x) => `${x.port}:${x.lun}=${x.volume}`).sort().join(' ');
    if (wm !== gm) return `LIST MAPPINGS: ${gm || 'none'}; the model: ${wm || 'none'}`;
    for (const m of media) if (m.freeChunks !== c.free(m.index)) return `LIST MEDIA: ${m.name} has ${m.freeChunks} free chunks; the model: ${c.free(m.index)}`;
    return '';
  }

  /** The pending changes in `applied` took place (the others did not): catalog and contents follow. */
  private resolve(applied: Change[], media: scsi.Medium[]): void {
    const at = this.t();
    for (const c of this.pending) {
      if (c.kind === 'reinit') { if (media[c.medium]?.state === 'ok') this.reinitialized(c.medium, at); continue; }
      if (applied.includes(c)) { this.applyChange(c, at); continue; }
      if (c.kind === 'delete') { const v = this.cat.volumes.get(c.number); if (v) { this.contents.get(v.uid)!.damaged = true; this.win.close(`delete:${v.uid}`, at); } }
    }
    this.pending = [];
    this.relabelSeen.clear();
  }

  private pruneAll(): void {
    let horizon = Infinity;
    for (const op of this.inflight) if (op.cls === 'read') horizon = Math.min(horizon, op.submit);
    for (const c of this.contents.values()) {
      if (c.deleted) { c.cells.clear(); continue; }
      for (const lba of c.cells.keys()) c.prune(lba, horizon);
    }
  }

  /** Reads every block of every volume that is mapped on a port, through that port's admin session. */
  private async verifyAll(): Promise<void> {
    for (const v of [...this.cat.volumes.values()]) {
      if (this.violations.length > 0 || this.target.array.failed) return;
      const c = this.contents.get(v.uid);
      const at = this.cat.mappingsOf(v.number)[0];
      if (!c || !at || this.pending.length > 0) continue;
      const [port, lun] = at;
      const step = Math.max(1, Math.floor(MAX_IO_BYTES / v.blockSize));
      this.count(this.commands, 'verified volumes');
      for (let lba = 0; lba < v.blocks; lba += step) {
        const n = Math.min(step, v.blocks - lba);
        this.issue(this.admins[port], { lun, cdb: scsi.readWrite(false, lba, n), dataInLength: n * v.blockSize },
          { cls: 'read', uid: v.uid, port, lun, lba, blocks: n, what: `verify READ p${port} LUN ${lun} (volume ${v.number} "${v.name}", instance ${v.uid}) LBA ${lba}+${n}` });
        if (this.admins[port].bytes > DATA_BYTES / 2) await this.quiesce();
      }
      await this.quiesce();
    }
  }

  // ---- the end of a run -----------------------------------------------------------------------------

  /**
   * Every fault healed and every lost medium reinitialized: a flush must leave nothing, a graceful
   * stop must mark the NV image clean, and after one more restart every block must read back.
   */
  private async finish(): Promise<void> {
    await this.quiesce();
    await this.heal(undefined, true);
    await this.checkpoint(true);
    for (const m of this.lastMedia.filter((x) => x.state === 'lost')) await this.runMgmt({ kind: 'reinit', medium: m.index }, `REINITIALIZE MEDIUM ${m.index}`);
    await this.checkpoint(true);
    const { result } = await this.controlFlush();
    if (result && result.dirtyLeft > 0) this.violate('final', `a flush with every fault healed left ${result.dirtyLeft} dirty slot(s): ${result.stuck.slice(0, 3).map((s) => `volume ${s.volume} LBA ${s.lba} on ${s.medium}: ${s.reason}`).join('; ')}`);
    await this.verifyAll();
    const cut = this.t();
    for (const i of [...this.initiators, ...this.admins]) i.closed = true;
    const s = await this.target.shutdown(CONTROL_BOUND_NS);
    if (!s.result) this.fatal('shutdown', `the final graceful stop did not finish: ${s.error?.message ?? s.outcome}`);
    this.checkControl('shutdown', s.result, cut);
    if (!s.result.nvClean) this.violate('final', `the final graceful stop did not mark the NV image clean (${s.result.dirtyLeft} dirty left, NV errno ${s.result.nvErrno})`);
    await this.rebootAndCheck(cut);
    for (const m of this.lastMedia.filter((x) => x.state === 'lost')) await this.runMgmt({ kind: 'reinit', medium: m.index }, `REINITIALIZE MEDIUM ${m.index}`);
    await this.checkpoint(true);
    await this.verifyAll();
  }
}

function shuffle<T>(r: Prng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = Math.floor(r.next() * (i + 1)); [xs[i], xs[j]] = [xs[j], xs[i]]; }
  return xs;
}
