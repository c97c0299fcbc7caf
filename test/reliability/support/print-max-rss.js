'use strict';
// Preloaded (`node -r`) into a CLI run by large-trees.test.ts: its peak RSS (KiB), on stderr at exit.
// VmHWM, not process.resourceUsage().maxRSS: Linux carries getrusage's maxrss across execve, so a CLI
// spawned by a big Jest worker would report the worker's peak (seen: 305 MiB for a 60 MiB client).
const { readFileSync, writeSync } = require('node:fs');
process.on('exit', () => {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  writeSync(2, `\nmax-rss-kib ${hwm ? hwm[1] : process.resourceUsage().maxRSS}\n`);
});
