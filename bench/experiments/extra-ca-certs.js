#!/usr/bin/env node
'use strict';
// `node bench/experiments/extra-ca-certs.js [ROUNDS=8]` (issue 20, fifteenth session): what parsing
// NODE_EXTRA_CA_CERTS at start-up costs whole commands. One server on tmpfs; each round runs `put -r`
// of 2,000 × 4 KiB into a new folder, its identical re-run, `get -r` and `--help`, two ways, in
// alternating order: A = node with the CLI's flags and the variable as this shell has it (what
// bin/rxfer.js did before), B = bin/rxfer.js through sh (which drops the variable without TLS).
// Prints medians and the paired B/A ratios. Run with NODE_EXTRA_CA_CERTS set to a bundle.
const fs = require('node:fs'); const path = require('node:path'); const { spawnSync } = require('node:child_process');
const ROOT = path.join(__dirname, '../..'); const S = require('../lib/servers'); const U = require('../lib/util');
const ROUNDS = Number(process.argv[2] ?? 8);
(async () => {
  const work = S.workFolder('ca');
  const src = path.join(work, 'src'); U.writeRandomTree(src, 2000, 4096);
  const root = path.join(work, 'root'); fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 's' });
  const BIN = path.join(ROOT, 'bin/rxfer.js');
  let n = 0;
  // A: node with the CLI's flags, as the old bin did (the variable kept); B: bin/rxfer.js through sh.
  const run = (variant, args) => {
    const cmd = variant === 'A' ? [process.execPath, [...S.launchArgs(ROOT), BIN, ...args]] : [BIN, args];
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd[0], cmd[1], { env: { ...process.env, RXFER_CACHE_DIR: path.join(work, 'cache') } });
    if (r.status) throw new Error(String(r.stderr));
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const steps = { put: [], rerun: [], get: [], help: [] };
  const res = { A: structuredClone(steps), B: structuredClone(steps) };
  for (let i = 0; i < 3; i++) run('B', ['put', '-r', src, `w${i}`, '-p', String(server.port), '-q']);
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 ? ['A', 'B'] : ['B', 'A']) {
      const d = `d${n++}`;
      res[v].put.push(run(v, ['put', '-r', src, d, '-p', String(server.port), '-q']));
      res[v].rerun.push(run(v, ['put', '-r', src, d, '-p', String(server.port), '-q']));
      res[v].get.push(run(v, ['get', '-r', d, path.join(work, `g${n}`), '-p', String(server.port), '-q']));
      res[v].help.push(run(v, ['--help']));
      fs.rmSync(path.join(work, `g${n}`), { recursive: true, force: true });
    }
  }
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  for (const k of Object.keys(steps)) {
    const ratios = res.A[k].map((a, i) => res.B[k][i] / a);
    console.log(`${k.padEnd(6)} A ${med(res.A[k]).toFixed(3)} s  B ${med(res.B[k]).toFixed(3)} s  B/A median ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
  }
  process.exit(0);
})();
