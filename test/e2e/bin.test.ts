// The installed command lines (bin/): they run the JavaScript the build compiled into dist/, not the
// TypeScript sources (issue 7, defect 12: sanctl took seconds to start compiling itself); --version
// and --help on both.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ensureBuilt, root } from './built';
const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;

function bin(tool: string, ...argv: string[]) {
  return spawnSync(process.execPath, [path.join(root, 'bin', `${tool}.js`), ...argv], { encoding: 'utf8', cwd: root });
}

test.before(ensureBuilt);

test('bin/ loads the compiled host code from dist/, without ts-node', (t) => {
  const probe = `const m = require('./bin/compiled').load('host/sanctl', 'sanctl');
    process.stdout.write(JSON.stringify({ main: typeof m.main, tsNode: Object.keys(require.cache).some((k) => k.includes('ts-node')),
      from: Object.keys(require.cache).find((k) => k.endsWith('sanctl.js') && k.includes('dist')) ?? null }));`;
  const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', cwd: root });
  t.is(r.stderr, '', 'no warning that dist/ is missing');
  t.deepEqual(JSON.parse(r.stdout), { main: 'function', tsNode: false, from: path.join(root, 'dist', 'host', 'sanctl.js') });
});

test('sanctl --version and sanbox --version print the package version', (t) => {
  const c = bin('sanctl', '--version');
  t.is(c.status, 0, c.stderr);
  t.is(c.stdout, `sanctl ${version}\n`);
  const s = bin('sanbox', '--version');
  t.is(s.status, 0, s.stderr);
  t.is(s.stdout, `sanbox ${version}\n`);
});

test('sanbox run --help, sanbox validate --help and sanbox --help print usage and exit 0; an unknown command exits 2', (t) => {
  const run = bin('sanbox', 'run', '--help');
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /^usage: sanbox run \[topology\.json\] \[--mode realtime\|deterministic\] \[--seed n\] \[--debug\]\n/);
  t.regex(run.stdout, /Ctrl-C stops gracefully/);
  // The help names every port the embedded default serves (the iSCSI and NBD ones were missing).
  const defaults = JSON.parse(fs.readFileSync(path.join(root, 'harness', 'default-topology.json'), 'utf8')) as { arrays: Array<{ ports: Array<{ port?: number }> }> };
  for (const p of defaults.arrays[0].ports) t.true(p.port === undefined || run.stdout.includes(String(p.port)), `port ${p.port} in sanbox run --help`);
  const validate = bin('sanbox', 'validate', '--help');
  t.is(validate.status, 0);
  t.regex(validate.stdout, /^usage: sanbox validate <topology\.json>/);
  const help = bin('sanbox', '--help');
  t.is(help.status, 0);
  t.regex(help.stdout, /sanbox --version \| --help/);
  const bad = bin('sanbox', 'frobnicate');
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^sanbox: unknown command "frobnicate"\nusage: sanbox run/);
});
