// npm run fuzz -- [--seed N] [--frames M] [--batch B] [--json] [--no-reduce] [--replay FILE]
// Exit 0: no violation. 1: a violation (the replay command and the cut-down frames on stderr).
// 2: bad arguments. With --json the summary is the only thing on stdout.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fuzz, replay, DEFAULT_BATCH, type Summary, type Piece } from './fuzzer';
import { H } from './wire';

const USAGE = 'usage: npm run fuzz -- [--seed N] [--frames M] [--batch B] [--json] [--no-reduce] [--loud-deletes] [--replay FILE]';

interface Args { seed: number; frames: number; batch: number; json: boolean; reduce: boolean; quietDeletes: boolean; replay?: string }

function parse(argv: string[]): Args {
  const a: Args = { seed: 1, frames: 1_000_000, batch: DEFAULT_BATCH, json: false, reduce: true, quietDeletes: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (what: string, min: number, max: number): number => {
      const v = argv[++i];
      if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`${k}: expected ${what} from ${min} to ${max}, got ${v ?? 'nothing'}`);
      return Number(v);
    };
    if (k === '--seed') a.seed = num('an integer', 0, 0xffffffff);
    else if (k === '--frames') a.frames = num('a number of frames', 1, 1e10);
    else if (k === '--batch') a.batch = num('frames per batch', 10, 1e6);
    else if (k === '--json') a.json = true;
    else if (k === '--no-reduce') a.reduce = false;
    else if (k === '--loud-deletes') a.quietDeletes = false;
    else if (k === '--replay') { a.replay = argv[++i]; if (!a.replay) throw new Error('--replay: expected a file'); }
    else if (k === '--help' || k === '-h') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
    else throw new Error(`unknown argument ${JSON.stringify(k)}`);
  }
  return a;
}

/** One line per piece: what the bytes are, as far as a frame header says. */
function describePiece(p: Piece): string {
  if (p === 'tick') return '(the clock moved to the next timer)';
  if (p === 'settle') return '(every command answered, the clock moved as far as that took)';
  const hex = p.subarray(0, 48).toString('hex') + (p.length > 48 ? '…' : '');
  if (p.length >= 24 && p.readUInt32BE(0) === 0xbcb55656) {
    return `${p.length} bytes: type ${p[H.TYPE]} tag ${p.readUInt16BE(H.TAG)} length ${p.readUInt16BE(H.LENGTH)} offset ${p.readUInt32BE(H.OFFSET)} | ${hex}`;
  }
  return `${p.length} bytes | ${hex}`;
}

function words(s: Summary): string {
  const lines = [
    `fuzz: seed ${s.seed}: ${s.frames} frames (${(s.bytes / 1e6).toFixed(1)} MB) in ${s.batches} batches, ${s.seconds} s, ${s.framesPerSecond} frames/s`,
    `  rejects: ${Object.entries(s.rejectsByReason).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  traps: ${s.traps}, violations: ${s.violations}`,
  ];
  return lines.join('\n');
}

/**
 * Says on stderr what failed and how to replay it; writes the cut-down pieces to a file for
 * --replay. Returns the summary as JSON wants it: the pieces replaced by that file's path.
 */
function reportFailure(s: Summary): object {
  const f = s.failure!;
  process.stderr.write(`fuzz: VIOLATION in batch ${f.batch}:\n`);
  for (const v of f.violations) process.stderr.write(`  ${v.check}: ${v.detail}\n`);
  const again = `${f.replay}${s.quietDeletes ? '' : ' --loud-deletes'}`;
  process.stderr.write(`replay the run: ${again}\n`);
  if (!f.reduced) return { ...s, failure: { ...f, replay: again } };
  const file = path.join(os.tmpdir(), `sanbox-fuzz-seed${s.seed}-batch${f.batch}.json`);
  fs.writeFileSync(file, JSON.stringify({ seed: s.seed, check: f.violations[0].check, batches: f.reduced.batches.map((b) => b.map((p) => (typeof p === 'string' ? p : p.toString('hex')))) }));
  const last = f.reduced.batches[f.reduced.batches.length - 1];
  process.stderr.write(`cut down to ${last.length} pieces (${f.reduced.bytes} bytes${f.reduced.batches.length > 1 ? `, after ${f.reduced.batches.length - 1} earlier batches` : ''}); replay them: npm run fuzz -- --replay ${file}\n`);
  for (const p of last.slice(0, 40)) process.stderr.write(`  ${describePiece(p)}\n`);
  return { ...s, failure: { ...f, replay: again, reduced: { file, pieces: last.length, bytes: f.reduced.bytes, attempts: f.reduced.attempts } } };
}

async function main(): Promise<number> {
  let a: Args;
  try {
    a = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (a.replay) {
    const doc = JSON.parse(fs.readFileSync(a.replay, 'utf8')) as { seed: number; check: string; batches: string[][] };
    const batches = doc.batches.map((b) => b.map((p): Piece => (p === 'tick' || p === 'settle' ? p : Buffer.from(p, 'hex'))));
    const v = await replay(doc.seed, batches);
    const out = { seed: doc.seed, recorded: doc.check, violations: v };
    if (a.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else process.stdout.write(v.length === 0 ? 'fuzz: replay: no violation\n' : `fuzz: replay:\n${v.map((x) => `  ${x.check}: ${x.detail}`).join('\n')}\n`);
    return v.length === 0 ? 0 : 1;
  }
  const log = (l: string) => { if (!a.json || process.stderr.isTTY) process.stderr.write(`${l}\n`); };
  const s = await fuzz({ seed: a.seed, frames: a.frames, batchFrames: a.batch, reduce: a.reduce, quietDeletes: a.quietDeletes, log });
  const out = s.failure ? reportFailure(s) : s;
  process.stdout.write(a.json ? `${JSON.stringify(out)}\n` : `${words(s)}\n`);
  return s.failure ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`fuzz: ${(e as Error).stack}\n`); process.exitCode = 1; });
