// The whole of libiscsi's conformance suite (iscsi-test-cu) against the array's iSCSI target and,
// in the same run, against tgtd: every test's outcome, every skip and failure with its reason.
//   npm run conformance [-- --families=iSCSI,SCSI] [-- --no-tgtd] [-- --update-docs] [-- --placement=thin|striped|linear]
// sanbox's LUN is thin by default (the suite's UNMAP, WRITE SAME with UNMAP and GET LBA STATUS tests
// skip on a fully provisioned LUN); --placement=striped runs it on a fully provisioned one.
// JSON on stdout; progress on stderr; --update-docs rewrites the result tables of
// docs/conformance.md (between its <!-- results --> markers). Exit 0 when sanbox has no failure.
import * as fs from 'fs';
import * as path from 'path';
import { Emulator } from '../../harness';
import { ScsiClient } from '../../host/client';
import * as scsi from '../../lib/scsi';
import { findTgtd, startTgtd, stopTgtd, scratchRoot, which, TGTD_IQN } from '../../bench/peers';
import { runTestCu, summarize, TestResult, Summary } from './cunit';

const MiB = 1 << 20;
const LUN_BYTES = 256 * MiB;
const DOC = path.join(__dirname, '..', '..', 'docs', 'conformance.md');

interface TargetReport { target: string; url?: string; skipped?: string; families: Record<string, { summary: Summary; results: TestResult[]; seconds: number }> }

function progress(m: string): void { process.stderr.write(`conformance: ${m}\n`); }

async function runFamilies(url: string, families: string[], label: string): Promise<TargetReport['families']> {
  const out: TargetReport['families'] = {};
  for (const f of families) {
    progress(`${label}: iscsi-test-cu --test=${f}`);
    const started = Date.now();
    const r = await runTestCu(url, f);
    out[f] = { summary: summarize(r.results), results: r.results, seconds: Math.round((Date.now() - started) / 100) / 10 };
    progress(`${label}: ${f}: ${JSON.stringify(out[f].summary)}`);
  }
  return out;
}

async function sanbox(families: string[], placement: scsi.PlacementName): Promise<TargetReport> {
  const dir = fs.mkdtempSync(path.join(scratchRoot(), 'sanbox-conformance-'));
  const emu = await Emulator.start({
    mode: 'realtime',
    arrays: [{
      name: 'array0', dir, cache: { size: '64MiB' },
      iops: [{ role: 'channel' }, { role: 'disk' }],
      media: [{ name: 'ram0', kind: 'ram', size: '512MiB' }, { name: 'ram1', kind: 'ram', size: '512MiB' }],
      ports: [{ name: 'fe0', iop: 0, transport: 'tcp', protocol: 'iscsi', port: 0 }, { name: 'q0', iop: 0, transport: 'inproc' }],
    }],
  }, { debug: false });
  try {
    const client = new ScsiClient(emu.connect());
    const v = await client.createVolume({ name: 'conformance', blocks: LUN_BYTES / 512, blockSize: 512, placement });
    await client.mapVolume(v.number, scsi.ALL_PORTS, 1);
    const url = `${emu.array().targets.find((x) => x.port === 'fe0')!.target}/1`;
    return { target: `sanbox (${placement})`, url, families: await runFamilies(url, families, 'sanbox') };
  } finally {
    await emu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function tgtd(families: string[]): Promise<TargetReport> {
  const bins = findTgtd();
  if (typeof bins === 'string') return { target: 'tgtd', skipped: bins, families: {} };
  const file = path.join(scratchRoot(), `sanbox-conformance-tgtd-${process.pid}.img`);
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, LUN_BYTES);
  const run = await startTgtd(bins, file);
  try {
    const url = `iscsi://127.0.0.1:${run.portal}/${TGTD_IQN}/1`;
    return { target: `tgtd ${run.version}`, url, families: await runFamilies(url, families, 'tgtd') };
  } finally {
    await stopTgtd(run);
  }
}

// ---- The report --------------------------------------------------------------------------------------

function markdown(reports: TargetReport[], families: string[]): string {
  const lines: string[] = [];
  lines.push('| target | family | run | passed | failed | skipped (of the passed) |', '|---|---|---|---|---|---|');
  for (const r of reports) {
    if (r.skipped) { lines.push(`| ${r.target} | | | | | not run: ${r.skipped} |`); continue; }
    for (const f of families) {
      const s = r.families[f]?.summary;
      if (s) lines.push(`| ${r.target} | ${f} | ${s.run} | ${s.passed} | ${s.failed} | ${s.skipped} |`);
    }
  }
  for (const r of reports) {
    if (r.skipped) continue;
    for (const f of families) {
      const res = r.families[f]?.results ?? [];
      const failed = res.filter((x) => x.outcome === 'failed');
      const skipped = res.filter((x) => x.outcome === 'skipped');
      lines.push('', `### ${r.target}, ${f}: ${failed.length} failed, ${skipped.length} skipped`, '');
      if (failed.length > 0) {
        lines.push('Failed:', '', '| test | what failed |', '|---|---|');
        for (const x of failed) lines.push(`| ${x.name} | ${cell(x.reasons.slice(0, 4).join('; ') || '(no message)')} |`);
        lines.push('');
      }
      if (skipped.length > 0) {
        // Grouped by reason: the reason is what the target lacks (an opcode, a feature, a flag).
        const byReason = new Map<string, string[]>();
        for (const x of skipped) {
          const k = x.reasons[0] ?? '(no message)';
          byReason.set(k, [...(byReason.get(k) ?? []), x.name.split('.').slice(1).join('.')]);
        }
        lines.push('Skipped, by reason:', '', '| reason | tests |', '|---|---|');
        for (const [k, v] of [...byReason].sort((a, b) => b[1].length - a[1].length)) lines.push(`| ${cell(k)} | ${v.length}: ${v.join(', ')} |`);
      }
    }
  }
  return lines.join('\n');
}

function cell(s: string): string { return s.replace(/\|/g, '\\|').replace(/\n/g, ' '); }

function updateDocs(table: string, stamp: string): void {
  const doc = fs.readFileSync(DOC, 'utf8');
  const begin = '<!-- results -->';
  const end = '<!-- /results -->';
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${DOC}: no ${begin} ... ${end} section to update`);
  fs.writeFileSync(DOC, `${doc.slice(0, a + begin.length)}\n${stamp}\n\n${table}\n${doc.slice(b)}`);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const bad = args.filter((a) => !/^--(families=.+|no-tgtd|update-docs|placement=(thin|striped|linear))$/.test(a));
  if (bad.length) { process.stderr.write(`conformance: unknown argument ${bad.join(' ')} (known: --families=iSCSI,SCSI --no-tgtd --update-docs --placement=thin|striped|linear)\n`); return 2; }
  if (!which('iscsi-test-cu')) { process.stderr.write('conformance: iscsi-test-cu is not installed (apt-get install libiscsi-bin)\n'); return 1; }
  const families = args.find((a) => a.startsWith('--families='))?.slice(11).split(',') ?? ['iSCSI', 'SCSI'];
  const placement = (args.find((a) => a.startsWith('--placement='))?.slice(12) ?? 'thin') as scsi.PlacementName;
  const reports = [await sanbox(families, placement)];
  if (!args.includes('--no-tgtd')) reports.push(await tgtd(families));
  const stamp = `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run conformance\` (iscsi-test-cu from libiscsi-bin `
    + `${pkgVersion('libiscsi-bin')}, --dataloss, a ${LUN_BYTES / MiB} MiB LUN on each target, sanbox's ${placement}).`;
  const table = markdown(reports, families);
  if (args.includes('--update-docs')) updateDocs(table, stamp);
  process.stdout.write(JSON.stringify({ stamp, reports }, null, 2) + '\n');
  process.stderr.write(`${table}\n`);
  return reports[0].families && Object.values(reports[0].families).every((f) => f.summary.failed === 0) ? 0 : 1;
}

function pkgVersion(name: string): string {
  const r = require('child_process').spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

main().then((code) => process.exit(code), (e) => { process.stderr.write(`conformance: ${(e as Error).stack}\n`); process.exit(1); });
