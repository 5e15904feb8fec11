// libiscsi's iscsi-test-cu as a library: run a family, suite or test against an iSCSI URL and read
// its CUnit report into one record per test — passed, failed (with the assertions that failed),
// or skipped (a test that passes while saying [SKIPPED]: what the target lacks, with its reason).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface TestResult {
  /** FAMILY.Suite.Test, as iscsi-test-cu --list names it. */
  name: string;
  outcome: Outcome;
  /** Skipped: the [SKIPPED] messages; failed: the [FAILED] messages and the failed assertions. */
  reasons: string[];
}

export interface Summary { run: number; passed: number; failed: number; skipped: number }

/** Reads iscsi-test-cu's verbose output (stdout and stderr interleaved) of one family. */
export function parseCunit(text: string, family: string): TestResult[] {
  const out: TestResult[] = [];
  let suite = '';
  let current: TestResult | undefined;
  let skips: string[] = [];
  let fails: string[] = [];
  let state: 'none' | 'running' | 'failed' = 'none';
  const finish = (outcome: 'passed' | 'failed') => {
    if (!current) return;
    current.outcome = outcome === 'failed' ? 'failed' : skips.length > 0 ? 'skipped' : 'passed';
    current.reasons = outcome === 'failed' ? fails : [...new Set(skips)];
    out.push(current);
  };
  for (const line of text.split(/\r?\n/)) {
    const s = /^Suite: (.+)$/.exec(line);
    const t = /^ {2}Test: (\S+) \.\.\.(.*)$/.exec(line);
    if ((s || t || /^Run Summary/.test(line)) && state === 'failed') { finish('failed'); state = 'none'; } // its assertions are all listed
    if (s) { suite = s[1].trim(); state = 'none'; continue; }
    if (t) {
      current = { name: `${family}.${suite}.${t[1]}`, outcome: 'passed', reasons: [] };
      skips = [];
      fails = [];
      state = 'running';
      const rest = t[2];
      if (/^passed/.test(rest)) { finish('passed'); state = 'none'; }
      else if (/^FAILED/.test(rest)) state = 'failed'; // its assertions follow; it is finished at the next test or suite
      else note(rest);
      continue;
    }
    if (state === 'running') {
      if (/^passed/.test(line)) { finish('passed'); state = 'none'; continue; }
      if (/^FAILED/.test(line)) { state = 'failed'; continue; }
      note(line);
    } else if (state === 'failed') {
      const a = /^\s+\d+\. (.+)$/.exec(line);
      if (a) fails.push(a[1].trim());
    }
  }
  if (state === 'failed') finish('failed');
  return out;

  function note(line: string) {
    const sk = /\[SKIPPED\]\s*(.*)$/.exec(line);
    if (sk) skips.push(sk[1].trim());
    const f = /\[FAILED\]\s*(.*)$/.exec(line);
    if (f) fails.push(f[1].trim());
  }
}

export function summarize(results: TestResult[]): Summary {
  return {
    run: results.length,
    passed: results.filter((r) => r.outcome !== 'failed').length,
    failed: results.filter((r) => r.outcome === 'failed').length,
    skipped: results.filter((r) => r.outcome === 'skipped').length,
  };
}

/**
 * Runs `iscsi-test-cu --test=<test> --dataloss <url>` to its end (without blocking the event loop:
 * the target may run in this process) and returns its results. `test` is a family (iSCSI, SCSI),
 * a suite (SCSI.Read10) or a test.
 */
export function runTestCu(url: string, test: string, timeoutMs = 30 * 60_000): Promise<{ results: TestResult[]; text: string; code: number | null }> {
  const family = test.split('.')[0];
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sanbox-cu-')), 'out.txt');
  const fd = fs.openSync(file, 'w');
  return new Promise((resolve) => {
    // One file for stdout and stderr: CUnit's outcome and the test's own log lines stay in order.
    const child = spawn('iscsi-test-cu', [`--test=${test}`, '--dataloss', url], { stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      fs.closeSync(fd);
      const text = fs.readFileSync(file, 'utf8');
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      resolve({ results: parseCunit(text, family), text, code });
    });
  });
}
