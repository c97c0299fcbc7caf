#!/usr/bin/env node
'use strict';
// `node bench/experiments/after-idle.js [RXFER_ROOT] [PAUSE_MS] [SERVER_NODE_FLAGS]` (issue 20): one `rxfer serve` on tmpfs,
// `put -r` of 2,000 × 4 KiB into a new folder each time: three to warm it, three back to back, then
// three each after PAUSE_MS (default 12,000) of nothing. Prints wall time, the CPU seconds of
// client and server per command and the server's minor page faults (memory it touched anew): what
// the first burst after a pause costs a warm server.
// SERVER_NODE_FLAGS (one argument, space-separated): node flags added to the server's, to try one.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const ROOT = path.resolve(process.argv[2] ?? path.join(__dirname, '../..'));
const PAUSE = Number(process.argv[3] ?? 12000);
const SERVER_FLAGS = (process.argv[4] ?? '').split(' ').filter(Boolean);
(async () => {
  const work = S.workFolder('idle');
  const src = path.join(work, 'src'); U.writeRandomTree(src, 2000, 4096);
  const root = path.join(work, 'root'); fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 's', nodeArgs: SERVER_FLAGS });
  const faults = () => Number(fs.readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
  const run = (args) => { const f0 = faults(); const s0 = U.cpuSeconds(server.pid); const c0 = U.reapedChildrenCpuSeconds(); const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...S.launchArgs(ROOT), path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q']); if (r.status) throw new Error(String(r.stderr));
    return `wall ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)} server ${(U.cpuSeconds(server.pid) - s0).toFixed(2)} client ${(U.reapedChildrenCpuSeconds() - c0).toFixed(2)} server faults ${faults() - f0}`; };
  for (let i = 0; i < 3; i++) console.log('warm', run(['put', '-r', src, `w${i}`]));
  for (let i = 0; i < 3; i++) console.log('back-to-back', run(['put', '-r', src, `b${i}`]));
  for (let i = 0; i < 3; i++) { await new Promise((r) => setTimeout(r, PAUSE)); console.log(`after ${PAUSE} ms idle`, run(['put', '-r', src, `p${i}`])); }
  await S.stopAll();
})();
