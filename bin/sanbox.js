#!/usr/bin/env node
// The emulator command line (harness/cli.ts), run through ts-node without a separate compile step.
'use strict';
const path = require('path');
require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
require('../harness/cli').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { console.error(e); process.exit(1); },
);
