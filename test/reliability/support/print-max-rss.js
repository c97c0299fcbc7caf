'use strict';
// Preloaded (`node -r`) into a CLI run by large-trees.test.ts: its peak RSS (KiB), on stderr at exit.
process.on('exit', () => require('node:fs').writeSync(2, `\nmax-rss-kib ${process.resourceUsage().maxRSS}\n`));
