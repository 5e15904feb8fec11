#!/usr/bin/env node
// Builds what the package runs, incrementally; nothing built is committed:
// - the firmware images, from firmware/ with asc into build/ (an image is rebuilt only when a
//   firmware source, asconfig.json or this script is newer than it);
// - the host code (hal, harness, host, lib), with tsc into dist/ (tsconfig.build.json), so that
//   bin/sanctl.js and bin/sanbox.js start without compiling TypeScript; rebuilt when a source,
//   a tsconfig or this script is newer than dist/.stamp. Tests and benchmarks still run the
//   TypeScript through ts-node.
// Flags: --force rebuilds everything; --debug-only builds the debug firmware images only.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const asc = path.join(root, 'node_modules', '.bin', 'asc');

// Each image: entry, output name, and the memory options its loader expects.
// controller: every IOP of an array instantiates it over one shared, imported memory.
// kernels: the same kernel code as a library for TypeScript (tests, harness, host).
const MAX_PAGES_CONTROLLER = 32768; // 2 GiB of common memory at most
const images = [
  // Its link unit calls the redundancy unit (remote/redundancy.ts, remote/rdlink.ts), which calls the RS
  // kernel: relaxed SIMD, so every loader of the image calls allowRelaxedSimd() (harness/array.ts).
  { entry: 'firmware/main.ts', name: 'controller', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', String(MAX_PAGES_CONTROLLER), '--enable', 'relaxed-simd'] },
  // relay: a relaying device of document 003 (firmware/relay/), over a memory of its own.
  { entry: 'firmware/relay/main.ts', name: 'relay', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', '16384'] },
  // kernels uses relaxed SIMD (its RS swizzles); loaders call lib/kernels.ts allowRelaxedSimd().
  { entry: 'firmware/kernels/index.ts', name: 'kernels', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', '65536', '--enable', 'relaxed-simd'] },
  // testing: the controller plus direct handles on its units, for unit tests (debug build only).
  // Relaxed SIMD as the controller (the same units); the relay image does not need it (a relay
  // forwards whole commands and never encodes).
  { entry: 'firmware/testing.ts', name: 'testing', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', String(MAX_PAGES_CONTROLLER), '--enable', 'relaxed-simd'], targets: ['debug'] },
];
const targets = process.argv.includes('--debug-only') ? ['debug'] : ['release', 'debug'];
const force = process.argv.includes('--force');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const t = entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

const sourcesMtime = Math.max(
  newestMtime(path.join(root, 'firmware')),
  fs.statSync(path.join(root, 'asconfig.json')).mtimeMs,
  fs.statSync(__filename).mtimeMs,
);
fs.mkdirSync(path.join(root, 'build'), { recursive: true });

let failed = false;
for (const image of images) {
  if (!fs.existsSync(path.join(root, image.entry))) continue;
  for (const target of targets.filter((t) => !image.targets || image.targets.includes(t))) {
    const out = path.join('build', target === 'release' ? `${image.name}.wasm` : `${image.name}.debug.wasm`);
    const outPath = path.join(root, out);
    if (!force && fs.existsSync(outPath) && fs.statSync(outPath).mtimeMs >= sourcesMtime) continue;
    const args = [image.entry, '--config', 'asconfig.json', '--target', target, '-o', out, ...image.memory];
    const r = spawnSync(asc, args, { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`build: asc failed for ${image.entry} (${target})`);
      failed = true;
    } else {
      console.error(`build: ${out}`);
    }
  }
}
if (!failed) failed = !buildHostCode();
process.exit(failed ? 1 : 0);

function buildHostCode() {
  const stamp = path.join(root, 'dist', '.stamp');
  const inputs = Math.max(
    ...['hal', 'harness', 'host', 'lib', 'firmware'].map((d) => newestMtime(path.join(root, d))),
    ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => fs.statSync(path.join(root, f)).mtimeMs),
    fs.statSync(__filename).mtimeMs,
  );
  if (!force && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= inputs) return true;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('build: tsc failed for the host code (tsconfig.build.json)');
    return false;
  }
  fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
  console.error('build: dist/ (host code)');
  return true;
}
