import test from 'ava';
import * as fs from 'fs';
import { STATIC_LIMIT } from '../../firmware/abi';
import { Wasm } from '../../lib/kernels';
import { kernels } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const generator: { render(): string; out: string } = require('../../scripts/gen-kernel-tables.js');

test('firmware/kernels/tables.ts is what scripts/gen-kernel-tables.js generates', (t) => {
  t.is(fs.readFileSync(generator.out, 'utf8'), generator.render(), 'run: node scripts/gen-kernel-tables.js');
});

test('the kernels image keeps its static data well below STATIC_LIMIT', (t) => {
  const end = kernels.raw.staticEnd();
  t.true(end < STATIC_LIMIT / 16, `static data ends at ${end} bytes`);
});

test('the kernels image imports only its memory (and abort), shared, and exports every kernel', (t) => {
  const module = new Wasm.Module(fs.readFileSync(require.resolve('../../build/kernels.wasm')));
  const imports = Wasm.Module.imports(module).map((i) => `${i.module}.${i.name}`);
  t.true(imports.includes('env.memory'));
  t.true(imports.every((i) => i === 'env.memory' || i === 'env.abort'));
  const exports = Wasm.Module.exports(module).map((e) => e.name);
  for (const name of ['crc32c', 'xorBlocks', 'rsEncode', 'rsReconstruct', 'raid6Gen', 'raid6Reconstruct', 'gfMatrixApply', 'bitmapAtomicSet', 'bitmapCollectRuns']) {
    t.true(exports.includes(name), name);
  }
});
