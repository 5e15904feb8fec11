#!/usr/bin/env node
// Builds the firmware images from firmware/ with asc. Incremental: an image is rebuilt only
// when a firmware source, asconfig.json or this script is newer than it. Nothing built is committed.
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
  { entry: 'firmware/main.ts', name: 'controller', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', String(MAX_PAGES_CONTROLLER)] },
  { entry: 'firmware/kernels/index.ts', name: 'kernels', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', '65536'] },
  // testing: the controller plus direct handles on its units, for unit tests (debug build only).
  { entry: 'firmware/testing.ts', name: 'testing', memory: ['--importMemory', '--sharedMemory', '--maximumMemory', String(MAX_PAGES_CONTROLLER)], targets: ['debug'] },
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
process.exit(failed ? 1 : 0);
