#!/usr/bin/env node
'use strict';
// The server overlaps many small files' fs calls (open, fsync, rename…); libuv's default pool of 4
// threads would queue them. Must be set before the first fs call, hence here and not in the server.
if (process.argv[2] === 'serve' && process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = '16';
// The CLI is compiled TypeScript (npm ci runs `prepare`, which builds dist/); see src/cli/main.ts.
require('../dist/cli/main.js');
