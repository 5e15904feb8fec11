// Loads a module of the host code for bin/sanbox.js and bin/sanctl.js: the JavaScript the install
// step compiled into dist/ (scripts/build.js), so a command starts without compiling TypeScript.
// Without dist/ (a checkout nobody built) it says so and compiles the sources with ts-node, which
// takes seconds per run.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

/** `name` is the path below the package root without extension, e.g. 'host/sanctl'. */
exports.load = function load(name, tool) {
  const compiled = path.join(root, 'dist', `${name}.js`);
  if (fs.existsSync(compiled)) return require(compiled);
  process.stderr.write(`${tool}: ${path.relative(process.cwd(), compiled) || compiled} is missing (run \`npm run build\`); running from the TypeScript sources meanwhile, slowly\n`);
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  return require(path.join(root, `${name}.ts`));
};
