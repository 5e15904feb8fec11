// Where the package's own files are (build/*.wasm, harness/default-topology.json, package.json),
// whether this code runs from its TypeScript sources (ts-node: lib/) or compiled (dist/lib/): the
// nearest folder above this file that holds package.json.
import * as fs from 'fs';
import * as path from 'path';

function findPackageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot();

/** A path inside the package: packagePath('build', 'controller.wasm'). */
export function packagePath(...parts: string[]): string {
  return path.join(PACKAGE_ROOT, ...parts);
}

/** The package's version (package.json), for --version. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
}
