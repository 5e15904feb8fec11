// Two `sanbox run` processes joined by a TCP link (examples/site-a.json and site-b.json, with their
// directories in a temporary folder and every port chosen by the system): a synchronous remote
// mirror over it with sanctl, garbage on the link port, kill -9 of site B in the middle of a write
// and its restart (the pair suspends by its rules, resumes, and B's volume equals A's), then B's
// failover shows the bytes. Every wait is on a process's output line or a command's answer, each
// with a generous bound (docs/remote.md, "Links across processes").
import test from 'ava';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, spawnSync, ChildProcess } from 'child_process';
import { runSanctl } from '../host/run-sanctl';
import { ensureBuilt, root } from './built';
import { tempDir, pattern } from '../harness/env';
import { packagePath } from '../../lib/paths';

test.before(ensureBuilt);

const LINE_BOUND_MS = 120_000; // a last-resort guard: ts-node-free starts take seconds on a loaded machine

/** A `sanbox run` child whose stdout and stderr lines can be waited for. */
class Site {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  private waiters: Array<{ re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }> = [];
  readonly exited: Promise<number | null>;

  constructor(file: string) {
    // SANBOX_CONSOLE: the console reads stdin although it is no terminal.
    this.child = spawn(process.execPath, [path.join(root, 'bin', 'sanbox.js'), 'run', file], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SANBOX_CONSOLE: '1' } });
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
    for (const s of [this.child.stdout!, this.child.stderr!]) {
      let rest = '';
      s.on('data', (b: Buffer) => {
        const parts = (rest + b.toString()).split('\n');
        rest = parts.pop()!;
        for (const l of parts) this.line(l);
      });
    }
  }

  private line(l: string): void {
    this.lines.push(l);
    const i = this.lines.length - 1;
    this.waiters = this.waiters.filter((w) => {
      const m = i >= w.from ? w.re.exec(l) : null;
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** The first line from line `from` on that matches. */
  wait(re: RegExp, from = 0): Promise<RegExpExecArray> {
    for (let i = from; i < this.lines.length; i++) { const m = re.exec(this.lines[i]); if (m) return Promise.resolve(m); }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line ${re} within ${LINE_BOUND_MS} ms:\n${this.lines.join('\n')}`)), LINE_BOUND_MS);
      void this.exited.then((code) => { clearTimeout(timer); reject(new Error(`sanbox exited (${code}) before a line ${re}:\n${this.lines.join('\n')}`)); });
      this.waiters.push({ re, from, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  async target(): Promise<string> { return (await this.wait(/port fe0: (tcp:\S+)/))[1]; }

  /** A console command; resolves with the first answer line matching `re`. */
  console(command: string, re: RegExp): Promise<RegExpExecArray> {
    const from = this.lines.length;
    this.child.stdin!.write(`${command}\n`);
    return this.wait(re, from);
  }
}

/** An example file with its directory under `dir`, its front-end port 0 and the link address given. */
function siteFile(dir: string, example: string, local: string, tcp: object): string {
  const json = JSON.parse(fs.readFileSync(packagePath('examples', example), 'utf8'));
  for (const a of json.arrays) {
    if (a.elsewhere) continue;
    a.dir = path.join(dir, local);
    a.cache.size = '4MiB';
    a.media[0].size = '16MiB';
    a.ports[0].port = 0;
  }
  json.links[0].tcp = tcp;
  const file = path.join(dir, example);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

const ctl = async (target: string, ...argv: string[]) => runSanctl(['--target', target, ...argv]);

test('examples/site-a.json and site-b.json in two processes: a mirror over TCP, garbage on the link port, kill -9 of B mid-write, restart, resume, failover shows A\'s bytes', async (t) => {
  const dir = tempDir('tcp-sites');
  const sites: Site[] = [];
  t.teardown(() => { for (const s of sites) s.child.kill('SIGKILL'); });
  const a = new Site(siteFile(dir, 'site-a.json', 'A', { listen: '127.0.0.1:0' }));
  sites.push(a);
  const linkPort = (await a.wait(/link wan: listening on (127\.0\.0\.1:\d+) for siteB/))[1];
  const fileB = siteFile(dir, 'site-b.json', 'B', { connect: linkPort });
  let b = new Site(fileB);
  sites.push(b);
  const [ta, tb] = [await a.target(), await b.target()];
  await a.wait(/link wan: up: siteB at/);
  await b.wait(/link wan: up: siteA at/);

  // Garbage on the link port: refused and named; the link stays up.
  const junk = net.connect({ host: '127.0.0.1', port: Number(linkPort.split(':')[1]) });
  junk.on('error', () => undefined);
  junk.resume();
  junk.write(Buffer.from('\x00\x01garbage that is no frame\r\n'));
  t.regex((await a.wait(/link wan: refused/)).input, /refused 127\.0\.0\.1:\d+: bad magic 0x00016761 .*\(1 refused so far\)/);
  junk.destroy();
  t.regex((await a.console('link status', /^wan: /)).input,
    /^wan: siteA - siteB, up, sent \d+, .*; tcp up 127\.0\.0\.1:\d+, 1 connects, 1 refused, 0 dropped, \d+ frames in, \d+ out, 0 bad packets$/);

  for (const target of [ta, tb]) {
    const v = await ctl(target, 'volume', 'create', 'vol0', '--size', '2MiB');
    t.is(v.code, 0, v.stderr);
  }
  // Bounds for a loaded machine: 1 s per try, 3 tries; a write to a dead B ends within 3 s.
  const created = await ctl(ta, 'remote', 'create', 'vol0', 'siteB:vol0', '--timeout', '1000', '--retries', '2', '--wait');
  t.is(created.code, 0, created.stderr);
  const first = path.join(dir, 'first.bin');
  fs.writeFileSync(first, pattern(1 << 20, 11));
  const w1 = await ctl(ta, 'write', 'vol0', first);
  t.is(w1.code, 0, w1.stderr);
  const st = JSON.parse((await ctl(tb, '--json', 'remote', 'status')).stdout);
  t.like(st.pairs[0], { role: 'secondary', state: 'pair' });

  // kill -9 of B while A writes the second MiB: the write cannot be acknowledged remotely, and the
  // pair suspends (link) by its bound.
  const second = path.join(dir, 'second.bin');
  fs.writeFileSync(second, pattern(1 << 20, 12));
  const suspendedFrom = a.lines.length;
  const w2 = ctl(ta, 'write', 'vol0', second, '--offset', String(1 << 20));
  b.child.kill('SIGKILL');
  await b.exited;
  await a.wait(/link wan: down/, suspendedFrom);
  await a.wait(/no answer within the pair's bound; the pair is suspended/, suspendedFrom);
  const w2done = await w2;
  t.true(w2done.code === 0 || /COMMUNICATION TIMEOUT|suspended/.test(w2done.stderr), w2done.stderr);
  const w3 = await ctl(ta, 'write', 'vol0', second, '--offset', String(1 << 20));
  t.is(w3.code, 0, `a suspended pair writes locally: ${w3.stderr}`);
  t.regex((await ctl(ta, 'remote', 'status')).stdout, /suspended \(link/);

  // B starts again with its NV image: the link comes back, resume copies the volume again.
  const upFrom = a.lines.length;
  b = new Site(fileB);
  sites.push(b);
  const tb2 = await b.target();
  await b.wait(/link wan: up: siteA at/);
  await a.wait(/link wan: up: siteB at/, upFrom);
  const resumed = await ctl(ta, 'remote', 'resume', 'vol0', '--wait');
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, / pair, /);

  const fromA = path.join(dir, 'a.bin');
  const fromB = path.join(dir, 'b.bin');
  t.is((await ctl(ta, 'read', 'vol0', fromA)).code, 0);
  t.is((await ctl(tb2, 'remote', 'failover', 'vol0')).code, 0);
  const rb = await ctl(tb2, 'read', 'vol0', fromB);
  t.is(rb.code, 0, rb.stderr);
  const [bytesA, bytesB] = [fs.readFileSync(fromA), fs.readFileSync(fromB)];
  t.true(bytesA.subarray(0, 1 << 20).equals(pattern(1 << 20, 11)));
  t.true(bytesA.subarray(1 << 20).equals(pattern(1 << 20, 12)));
  t.true(bytesB.equals(bytesA), 'B holds A\'s bytes after the resume');
});

test('sanbox with a link to another process: a bad topology names the field; deterministic mode is refused', (t) => {
  const dir = tempDir('tcp-bad');
  const file = siteFile(dir, 'site-a.json', 'A', { listen: '127.0.0.1:0', connect: '127.0.0.1:1' });
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'sanbox.js'), 'validate', file], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /links\[0\]\.tcp: give "listen" .* or "connect" .*, one of them/);
  const good = siteFile(dir, 'site-a.json', 'A', { listen: '127.0.0.1:0' });
  const d = spawnSync(process.execPath, [path.join(root, 'bin', 'sanbox.js'), 'run', good, '--mode', 'deterministic'], { encoding: 'utf8' });
  t.is(d.status, 1);
  t.regex(d.stderr, /links\[0\]\.tcp: a link to another process runs on the wall clock: the topology needs mode realtime/);
});
