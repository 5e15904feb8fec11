#!/usr/bin/env node
// The emulator command line (harness/cli.ts), from the compiled JavaScript in dist/ (bin/compiled.js).
'use strict';
require('./compiled').load('harness/cli', 'sanbox').main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { console.error(e); process.exit(1); },
);
