// Tests that run bin/sanctl.js or bin/sanbox.js as processes run the compiled host code in dist/.
// `npm test` builds first; ensureBuilt() makes a direct `ava` run see today's sources too (the
// build is incremental: nothing to do when dist/ is fresh).
import * as path from 'path';
import { spawnSync } from 'child_process';

export const root = path.join(__dirname, '..', '..');

export function ensureBuilt(): void {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { encoding: 'utf8', cwd: root });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}
