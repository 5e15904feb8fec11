#!/usr/bin/env node
// sanctl, the host tool (host/sanctl.ts), run from its TypeScript source.
'use strict';
const path = require('path');
require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
require('../host/sanctl').main();
