#!/usr/bin/env node
'use strict';
// The CLI is compiled TypeScript (npm ci runs `prepare`, which builds dist/); see src/cli/main.ts.
require('../dist/cli/main.js');
