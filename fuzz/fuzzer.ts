// The fuzzer for the framed protocol and the management commands (issue 7): batches of generated
// and mutated frames streamed into the real firmware, each batch checked, the canaries checked
// along the way and at the end. A run is a function of its seed; a failing run says how to replay
// it and cuts the failing batch down to the fewest pieces that still fail.
//
// After each batch:
//   - the firmware did not abort (a trap or an assertion stops the array);
//   - every REJECT and PONG the protocol calls for was sent, in order, and nothing else
//     (session.ts); every command was answered within a bound of virtual time;
//   - the controller's counters (STAT_FERR_*, frames, commands, errors, TASK SET FULL) equal what
//     the reference receiver and the answers say;
//   - the same session still answers a PING and a TEST UNIT READY;
//   - no command ran at a LUN the session can never see: at or above MAPPABLE_LUNS on its port
//     only INQUIRY, REPORT LUNS and REQUEST SENSE may do anything but LOGICAL UNIT NOT SUPPORTED;
//   - a fresh session works, and the array's tables add up (audit()).
import * as A from '../hal/abi';
import * as scsi from '../lib/scsi';
import { FuzzTarget, FUZZ_PORT, CANARY_PORT, PORT_ADDRESS, HOST_ADDRESS } from './target';
import { Initiator } from './initiator';
import { FuzzSession, type Violation, type Tamper } from './session';
import { Generator, CANARY_VOLUMES, MAPPABLE_LUNS, type VolumeView } from './generate';
import { setUp, verifyCanaries, CANARIES, CANARY_LUN_BASE } from './canary';
import { putHeader, closeFrame, T, HEADER_END } from './wire';

export interface FuzzOptions {
  seed: number;
  /** Frames (generated units) to send, at least. */
  frames: number;
  /** Frames per batch: the checks run between batches. */
  batchFrames?: number;
  /** Canaries are read back every this many batches (and at the end). */
  canaryEvery?: number;
  /** Cut a failing batch down (default true). */
  reduce?: boolean;
  /** DELETE VOLUME only while the session is quiet (default true; see Generator). */
  quietDeletes?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** For tests of the checks themselves: ways to break the target on purpose. */
  tamper?: Tamper & {
    /** After a batch's traffic, before its checks. */
    beforeChecks?(t: FuzzTarget, batch: number): void;
    /** After a batch's checks, before the next batch. */
    afterChecks?(t: FuzzTarget, batch: number): void;
  };
}

/** What went into the controller in one batch: arrivals, and the moments the clock moved. */
export type Piece = Buffer | 'tick' | 'settle';

export interface Failure {
  batch: number;
  violations: Violation[];
  replay: string;
  /** The failing batch cut down, when reduction reproduced it from a fresh array. */
  reduced?: { batches: Piece[][]; bytes: number; attempts: number };
}

export interface Summary {
  seed: number;
  quietDeletes: boolean;
  frames: number;
  batches: number;
  bytes: number;
  byClass: Record<string, number>;
  rejectsByReason: Record<string, number>;
  commandsByStatus: Record<string, number>;
  model: Record<string, number>;
  traps: number;
  violations: number;
  seconds: number;
  /** CPU time of the process (user + system): what the figures cost on a machine shared with others. */
  cpuSeconds: number;
  framesPerSecond: number;
  failure?: Failure;
}

export const DEFAULT_BATCH = 2000;
/** The bytes of recent batches kept to replay and cut down a failure. */
const HISTORY_BYTES = 64 << 20;

export function replayCommand(seed: number, frames: number): string {
  return `npm run fuzz -- --seed ${seed} --frames ${frames}`;
}

export async function fuzz(o: FuzzOptions): Promise<Summary> {
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const t = await FuzzTarget.boot(o.seed);
  const log = o.log ?? (() => undefined);
  const batchFrames = o.batchFrames ?? DEFAULT_BATCH;
  let failure: Failure | undefined;
  let session: FuzzSession | undefined;
  let gen: Generator | undefined;
  let batch = 0;
  try {
    setUp(t);
    session = new FuzzSession(t, o.tamper);
    gen = new Generator(o.seed, session.state, o.quietDeletes !== false);
    learn(t, session);
    const history: Piece[][] = []; // the batches kept for reduction: the latest, up to HISTORY_BYTES
    while (gen.units < o.frames) {
      const pieces: Piece[] = [];
      const v = runBatch(t, session, gen, Math.min(batchFrames, o.frames - gen.units), pieces, batch, o);
      history.push(pieces);
      while (history.length > 1 && history.reduce((n, b) => n + bytesOf(b), 0) > HISTORY_BYTES) history.shift();
      if (v.length === 0 && (batch + 1) % (o.canaryEvery ?? 25) === 0) v.push(...canaries(t));
      if (v.length > 0) {
        failure = { batch, violations: v, replay: replayCommand(o.seed, o.frames) };
        if (o.reduce !== false) failure.reduced = await reduce(o.seed, history, v[0].check, log);
        break;
      }
      batch++;
      if (batch % 50 === 0) log(`fuzz: ${gen.units} frames, ${batch} batches, ${seconds(started).toFixed(1)} s`);
    }
    if (!failure) {
      const v = finalChecks(t);
      if (v.length > 0) failure = { batch, violations: v, replay: replayCommand(o.seed, o.frames) };
    }
  } catch (e) {
    failure = { batch, violations: [{ check: 'harness', detail: (e as Error).stack ?? String(e) }], replay: replayCommand(o.seed, o.frames) };
  } finally {
    if (t.failed && (!failure || failure.violations[0]?.check !== 'trap')) {
      failure = { batch, violations: [{ check: 'trap', detail: t.failed.message }], replay: replayCommand(o.seed, o.frames) };
    }
    await t.close();
  }
  const s = seconds(started);
  const frames = gen?.units ?? 0;
  return {
    seed: o.seed,
    quietDeletes: o.quietDeletes !== false,
    frames,
    batches: batch + (failure ? 1 : 0),
    bytes: session?.bytesSent ?? 0,
    byClass: sortKeys(gen?.classes ?? {}),
    rejectsByReason: sortKeys(session?.rejects ?? {}),
    commandsByStatus: sortKeys(session?.statuses ?? {}),
    model: { ...(session?.counts ?? {}) },
    traps: failure?.violations.some((v) => v.check === 'trap') ? 1 : 0,
    violations: failure?.violations.length ?? 0,
    seconds: Math.round(s * 100) / 100,
    cpuSeconds: cpuSeconds(cpu),
    framesPerSecond: Math.round(frames / s),
    ...(failure ? { failure } : {}),
  };
}

/** One batch: groups of units, each split into arrivals at random boundaries; then the checks. */
function runBatch(t: FuzzTarget, s: FuzzSession, gen: Generator, frames: number, pieces: Piece[], batch: number, o: FuzzOptions): Violation[] {
  const before = t.stats();
  t.takeCommands();
  s.beginBatch();
  const end = gen.units + frames;
  while (gen.units < end && !t.failed && !s.stopped) {
    gen.reset();
    const k = 4 + gen.int(60);
    for (let i = 0; i < k; i++) gen.unit();
    const bytes = Buffer.from(gen.out.subarray(0, gen.len));
    for (const p of split(gen, bytes)) { pieces.push(p); s.feed(p); }
    if (s.outstandingTotal() > 0 && gen.chance(0.3) && s.tick()) pieces.push('tick');
    if (gen.quietDeletes && gen.chance(0.025)) { // a DELETE VOLUME when nothing is in flight
      s.settle();
      gen.reset();
      gen.quietDelete();
      const d = Buffer.from(gen.out.subarray(0, gen.len));
      pieces.push('settle', d);
      s.feed(d);
      s.settle();
      pieces.push('settle');
    }
  }
  return finishBatch(t, s, before, batch, o);
}

/** Cuts a group's bytes at random boundaries: one write, a few, or a trickle of small ones. */
function split(gen: Generator, b: Buffer): Buffer[] {
  const r = gen.int(10);
  if (r < 5 || b.length < 2) return [b];
  const cuts = new Set<number>();
  const n = r < 8 ? 1 + gen.int(3) : 4 + gen.int(28);
  for (let i = 0; i < n; i++) cuts.add(1 + gen.int(b.length - 1));
  if (r >= 8) for (let i = 1; i < Math.min(32, b.length); i++) if (gen.chance(0.5)) cuts.add(i); // byte by byte at the start
  const at = [0, ...[...cuts].sort((x, y) => x - y), b.length];
  const out: Buffer[] = [];
  for (let i = 1; i < at.length; i++) out.push(b.subarray(at[i - 1], at[i]));
  return out;
}

/** The checks after a batch's traffic. */
function finishBatch(t: FuzzTarget, s: FuzzSession, before: number[], batch: number, o: FuzzOptions): Violation[] {
  s.settle();
  // The session is gone or stuck (a violation says why): nothing more can be checked through it.
  if (s.stopped) {
    if (t.failed) return [{ check: 'trap', detail: t.failed.message }];
    const v = s.violations.splice(0);
    return v.length > 0 ? v : [{ check: 'liveness', detail: s.stopped }];
  }
  // The same session still answers: a PING, and TEST UNIT READY at the command device.
  const ping = Buffer.from(`alive after batch ${batch}`);
  const probe = Buffer.alloc(HEADER_END + 64);
  let at = 0;
  putHeader(probe, 0, { type: T.PING, flags: 0, tag: 0xfffe, source: HOST_ADDRESS, destination: PORT_ADDRESS[FUZZ_PORT], sequence: 0, length: ping.length, offset: 0, parameter: 0 });
  ping.copy(probe, HEADER_END);
  at = closeFrame(probe, 0, ping.length);
  const tur = Buffer.alloc(32 + 22);
  const tag = 0xfffd;
  putHeader(tur, 0, { type: T.CMD, flags: 0, tag, source: HOST_ADDRESS, destination: PORT_ADDRESS[FUZZ_PORT], sequence: 0, length: 22, offset: 0, parameter: 0 });
  tur[HEADER_END + 10] = 6;
  closeFrame(tur, 0, 22);
  s.watch(tag);
  s.feed(Buffer.concat([probe.subarray(0, at), tur]));
  s.settle();
  if (s.watchedStatus(tag) !== 0) s.violation('liveness', `TEST UNIT READY on the fuzzer's session after batch ${batch} ended ${s.watchedStatus(tag) ?? 'unanswered'}`);
  o.tamper?.beforeChecks?.(t, batch);
  if (t.failed) return [{ check: 'trap', detail: t.failed.message }];
  s.account(before, t.stats());
  checkCommands(t, s);
  if (s.violations.length === 0) { audit(t, s); learn(t, s); }
  o.tamper?.afterChecks?.(t, batch);
  const failed = t.failed as Error | undefined;
  if (failed) return [{ check: 'trap', detail: failed.message }];
  return s.violations.splice(0);
}

/**
 * The firmware's record of every command (TRACE_COMMAND) against what the session can see: the
 * fuzzer's port never has anything at MAPPABLE_LUNS or above, the canary port had no traffic.
 */
function checkCommands(t: FuzzTarget, s: FuzzSession): void {
  for (const c of t.takeCommands()) {
    if (c.port !== FUZZ_PORT || c.session !== s.sessionIndex) {
      s.violation('isolation', `a command (opcode ${c.opcode.toString(16)}h, LUN ${c.lun}) ran on port ${c.port} session ${c.session}, where nothing was sent`);
      continue;
    }
    if (c.lun === 0 || c.lun < MAPPABLE_LUNS) continue;
    if (c.opcode === 0x12 || c.opcode === 0xa0 || c.opcode === 0x03) continue; // answered for any LUN
    if (c.status !== 0x02 || c.senseKey !== 0x05 || c.asc !== 0x25) {
      s.violation('isolation', `opcode ${c.opcode.toString(16)}h at LUN ${c.lun}, which the session cannot see, ended status ${c.status} sense ${c.senseKey}/${c.asc.toString(16)}h, not LOGICAL UNIT NOT SUPPORTED`);
    }
  }
}

/** A fresh session on the fuzzer's port: it answers, and the volume table, LUN map and media add up. */
function audit(t: FuzzTarget, s: FuzzSession): void {
  const a = new Initiator(t, FUZZ_PORT);
  try {
    const hello = Buffer.from('fresh session');
    if (!a.ping(hello)?.equals(hello)) s.violation('liveness', 'a fresh session got no PONG');
    if (a.command(0, scsi.testUnitReady()).status !== 0) s.violation('liveness', 'TEST UNIT READY on a fresh session failed');
    const volumes = scsi.parseVolumes(a.ok(0, scsi.management(false, scsi.Management.LIST_VOLUMES, 8 + 1024 * 96), { inLength: 8 + 1024 * 96 }));
    const maps = scsi.parseMappings(a.ok(0, scsi.management(false, scsi.Management.LIST_MAPPINGS, 8 + 16 * 256 * 8), { inLength: 8 + 16 * 256 * 8 }));
    const media = scsi.parseMedia(a.ok(0, scsi.management(false, scsi.Management.LIST_MEDIA, 8 + 64 * 64), { inLength: 8 + 64 * 64 }));
    for (const e of tableProblems(volumes, maps, media)) s.violation('tables', e);
  } catch (e) {
    s.violation('liveness', `a fresh session: ${(e as Error).message}`);
  }
  for (const e of a.errors) s.violation('wire', `fresh session: ${e}`);
  a.close();
}

/** What is wrong with the array's tables as listed (empty: nothing). */
export function tableProblems(volumes: scsi.Volume[], maps: scsi.Mapping[], media: scsi.Medium[]): string[] {
  const out: string[] = [];
  CANARIES.forEach((c, i) => {
    const v = volumes.find((x) => x.number === c.number);
    if (!v || v.name !== c.name || v.blocks !== c.blocks || v.blockSize !== c.blockSize) out.push(`canary volume ${c.number} is gone or changed: ${JSON.stringify(v)}`);
    const where = maps.filter((m) => m.volume === c.number).map((m) => `${m.port}/${m.lun}`);
    if (where.join() !== `${CANARY_PORT}/${CANARY_LUN_BASE + i}`) out.push(`canary volume ${c.number} is mapped at ${where.join(', ') || 'no LUN'}`);
  });
  const names = new Set<string>();
  for (const v of volumes) {
    if (names.has(v.name)) out.push(`two volumes are named ${JSON.stringify(v.name)}`);
    names.add(v.name);
    if (!/^[\x21-\x7e]{1,31}$/.test(v.name)) out.push(`volume ${v.number} has the name ${JSON.stringify(v.name)}`);
    if (v.blockSize !== 512 && v.blockSize !== 4096) out.push(`volume ${v.number} has block size ${v.blockSize}`);
    if (v.blocks < 1) out.push(`volume ${v.number} has ${v.blocks} blocks`);
  }
  for (const m of maps) {
    if (!volumes.some((v) => v.number === m.volume)) out.push(`port ${m.port} LUN ${m.lun} maps volume ${m.volume}, which does not exist`);
    if (m.port === FUZZ_PORT && m.lun >= MAPPABLE_LUNS) out.push(`port ${m.port} LUN ${m.lun} is mapped, which no frame of the fuzzer could ask for`);
    if (m.lun < 1 || m.lun > 255 || m.port > 1) out.push(`a mapping at port ${m.port} LUN ${m.lun}`);
  }
  // Space: every chunk the media say is used belongs to a volume or is a medium's label chunk
  // (chunk 0 of every medium), and every volume has its chunks.
  const used = media.reduce((n, m) => n + m.sectors / 128 - m.freeChunks, 0);
  const need = media.length + volumes.reduce((n, v) => {
    const chunks = Math.ceil((v.blocks * v.blockSize) / 65536);
    if (v.placement === 'thin') return n + v.allocatedBytes / 65536; // the chunks writes have reached
    return n + (v.placement === 'striped' ? Math.ceil(chunks / v.media.length) * v.media.length : chunks);
  }, 0);
  if (used !== need) out.push(`the media have ${used} chunks in use, the volumes need ${need}`);
  return out;
}

/** The fuzzer learns the volumes and what its port maps, to aim reads and writes. */
function learn(t: FuzzTarget, s: FuzzSession): void {
  const a = new Initiator(t, CANARY_PORT);
  try {
    const volumes = scsi.parseVolumes(a.ok(0, scsi.management(false, scsi.Management.LIST_VOLUMES, 8 + 1024 * 96), { inLength: 8 + 1024 * 96 }));
    const maps = scsi.parseMappings(a.ok(0, scsi.management(false, scsi.Management.LIST_MAPPINGS, 8 + 16 * 256 * 8), { inLength: 8 + 16 * 256 * 8 }));
    const views = new Map<number, VolumeView>(volumes.filter((v) => !CANARY_VOLUMES.includes(v.number))
      .map((v) => [v.number, { number: v.number, blockSize: v.blockSize, blocks: v.blocks }]));
    s.state.volumes = [...views.values()];
    s.state.luns = maps.filter((m) => m.port === FUZZ_PORT && views.has(m.volume)).map((m) => ({ lun: m.lun, volume: views.get(m.volume)! }));
  } finally {
    a.close();
  }
  t.takeCommands(); // the learner's own commands are not the fuzzer's
}

function canaries(t: FuzzTarget): Violation[] {
  const v = verifyCanaries(t).map((detail) => ({ check: 'canary', detail }));
  t.takeCommands();
  return v;
}

/** At the end: the cache flushes within a bound, and the canaries read back byte for byte. */
function finalChecks(t: FuzzTarget): Violation[] {
  const v = canaries(t);
  t.array.control(A.CTL_FLUSH).catch(() => undefined);
  const seq = t.array.mem.u32(A.MAP_ADDR + A.MAP_CONTROL_SEQ);
  try {
    t.until(() => t.array.mem.load32(A.MAP_ADDR + A.MAP_CONTROL_DONE) === seq, 'flush after the run');
  } catch (e) {
    v.push({ check: 'flush', detail: (e as Error).message });
    return v;
  }
  v.push(...canaries(t));
  if (t.failed) v.push({ check: 'trap', detail: t.failed.message });
  return v;
}

// ---- replay and reduction ----------------------------------------------------------------------

/**
 * Feeds recorded batches (each a list of pieces) into a fresh array set up as the fuzzer sets it
 * up, with the same checks after each. Returns the violations of the last batch that had any.
 */
export async function replay(seed: number, batches: Piece[][]): Promise<Violation[]> {
  const t = await FuzzTarget.boot(seed);
  try {
    setUp(t);
    const s = new FuzzSession(t);
    learn(t, s);
    const o: FuzzOptions = { seed, frames: 0 };
    for (let i = 0; i < batches.length; i++) {
      const before = t.stats();
      t.takeCommands();
      s.beginBatch();
      for (const p of batches[i]) {
        if (p === 'tick') s.tick(); else if (p === 'settle') s.settle(); else s.feed(p);
        if (t.failed) break;
      }
      const v = finishBatch(t, s, before, i, o);
      if (v.length > 0) return v;
    }
    return [...finalChecks(t), ...(t.failed ? [{ check: 'trap', detail: t.failed.message }] : [])];
  } catch (e) {
    return [{ check: 'harness', detail: (e as Error).message }];
  } finally {
    await t.close();
  }
}

/**
 * Delta reduction on fresh arrays: first the batches before the failing one that it needs (none,
 * the two before it, or all that were kept), cut down batch by batch; then the failing batch's
 * pieces, as written and then cut before every SOF. Bounded in replays.
 */
async function reduce(seed: number, history: Piece[][], check: string, log: (l: string) => void): Promise<Failure['reduced']> {
  let attempts = 0;
  const budget = 800;
  const fails = async (prefix: Piece[][], pieces: Piece[]): Promise<boolean> => {
    attempts++;
    return (await replay(seed, [...prefix, pieces])).some((v) => v.check === check);
  };
  const last = history[history.length - 1];
  const before = history.slice(0, -1);
  const candidates = [[], before.slice(-2), before].filter((p, i, all) => i === 0 || p.length > all[i - 1].length);
  let prefix: Piece[][] | undefined;
  for (const p of candidates) if (await fails(p, last)) { prefix = p; break; }
  if (!prefix) { log(`fuzz: the failing batch does not fail on a fresh array after the ${before.length} batches kept before it: replay the whole run`); return undefined; }
  prefix = await ddmin(prefix, (p) => fails(p, last), () => attempts < budget / 4);
  const kept = prefix;
  let cur = await ddmin(last, (ps) => fails(kept, ps), () => attempts < budget / 2);
  const fine = cur.flatMap((p): Piece[] => (typeof p === 'string' ? [p] : atSofs(p)));
  if (fine.length > cur.length && await fails(kept, fine)) cur = await ddmin(fine, (ps) => fails(kept, ps), () => attempts < budget);
  log(`fuzz: reduced the failing batch to ${cur.length} pieces after ${kept.length} batches, in ${attempts} replays`);
  return { batches: [...kept, cur], bytes: bytesOf(cur), attempts };
}

/** ddmin: the smallest sublist (by removing chunks) for which `fails` still holds, while `more()`. */
async function ddmin<X>(items: X[], fails: (xs: X[]) => Promise<boolean>, more: () => boolean): Promise<X[]> {
  let cur = items;
  let n = 2;
  while (cur.length >= 1 && more()) {
    const size = Math.ceil(cur.length / n);
    let progressed = false;
    for (let i = 0; i < n && more(); i++) {
      const candidate = [...cur.slice(0, i * size), ...cur.slice((i + 1) * size)];
      if (candidate.length < cur.length && await fails(candidate)) {
        cur = candidate;
        n = Math.max(n - 1, 2);
        progressed = true;
        break;
      }
    }
    if (!progressed) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return cur;
}

function bytesOf(pieces: Piece[]): number {
  return pieces.reduce((x, p) => x + (typeof p === 'string' ? 0 : p.length), 0);
}

/** A piece cut before every SOF in it. */
function atSofs(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let i = p.indexOf(SOF, 1); i > 0; i = p.indexOf(SOF, i + 1)) { out.push(p.subarray(from, i)); from = i; }
  out.push(p.subarray(from));
  return out;
}

const SOF = Buffer.from([0xbc, 0xb5, 0x56, 0x56]);

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return Math.round((u.user + u.system) / 1e4) / 100;
}

function seconds(since: bigint): number { return Number(process.hrtime.bigint() - since) / 1e9; }
function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}
