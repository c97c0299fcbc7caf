#!/usr/bin/env node
'use strict';
// `node bench/experiments/ab-concurrent-puts.js A_ROOT B_ROOT [clients=8] [rounds=4] [files=2000]` (issue 20):
// many `rxfer put -r` at once against one server per build (each a fresh CLI process, tmpfs), the
// builds alternating each round (order swapped every round, one unmeasured round first). Prints each
// round's wall time and the server's CPU seconds, then the medians: what a server's shared structures
// (name locks, the commit worker, request ordering) cost when many clients send small files at once.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const [A, B] = process.argv.slice(2, 4).map((p) => path.resolve(p));
if (!A || !B) throw new Error('usage: ab-concurrent-puts.js A_ROOT B_ROOT [clients] [rounds] [files]');
const CLIENTS = Number(process.argv[4] || 8);
const ROUNDS = Number(process.argv[5] || 4);
const N = Number(process.argv[6] || 2000);
const builds = { A, B };

(async () => {
  const work = S.workFolder('ab-concurrent');
  const src = path.join(work, 'src');
  U.writeRandomTree(src, N, 4096);
  const servers = {};
  for (const [tag, rxferRoot] of Object.entries(builds)) {
    const root = path.join(work, `root-${tag}`);
    fs.mkdirSync(root);
    servers[tag] = await S.startRxfer({ rxferRoot, root, workDir: work, tag });
  }
  const put = (tag, remote) => new Promise((resolve, reject) => {
    const rx = builds[tag];
    const child = spawn(process.execPath, [...S.launchArgs(rx), path.join(rx, 'bin/rxfer.js'), 'put', '-r', src, remote, '-p', String(servers[tag].port), '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tag} put -r: ${err}`))));
  });
  const results = { A: [], B: [] };
  for (let r = -1; r < ROUNDS; r++) {
    for (const tag of r % 2 ? ['B', 'A'] : ['A', 'B']) {
      const cpu0 = U.cpuSeconds(servers[tag].pid);
      const t = process.hrtime.bigint();
      await Promise.all(Array.from({ length: CLIENTS }, (_, i) => put(tag, `r${r}c${i}`)));
      const wall = Number(process.hrtime.bigint() - t) / 1e9;
      const cpu = U.cpuSeconds(servers[tag].pid) - cpu0;
      if (r >= 0) results[tag].push({ wall, cpu });
      console.log(`round ${r}${r < 0 ? ' (not counted)' : ''} ${tag}: ${CLIENTS} × put -r of ${N}: wall ${wall.toFixed(2)} s, server CPU ${cpu.toFixed(2)} s`);
    }
  }
  const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
  for (const tag of ['A', 'B']) console.log(`${tag} (${builds[tag]}): wall median ${median(results[tag].map((x) => x.wall)).toFixed(2)} s, server CPU median ${median(results[tag].map((x) => x.cpu)).toFixed(2)} s`);
  process.exit(0);
})();
