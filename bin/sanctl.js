#!/usr/bin/env node
// sanctl, the host tool (host/sanctl.ts), from the compiled JavaScript in dist/ (bin/compiled.js).
'use strict';
require('./compiled').load('host/sanctl', 'sanctl').main();
