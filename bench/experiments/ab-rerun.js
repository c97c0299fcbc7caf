#!/usr/bin/env node
'use strict';
// `node bench/experiments/ab-rerun.js A_ROOT B_ROOT [N=20000] [ROUNDS=10]` (issue 20): the identical
// re-run of `put -r` alone, from two builds' CLIs against ONE server (A's), alternating (the order
// swapped each round), after one `put -r` that stored the tree. With one server, only the clients
// differ: steadier than ab-commands.js (a server each) for a change on the client side. Prints the
// median wall time and client CPU of each. Each CLI's digest cache is in the run's folder.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { median } = require('../lib/ab');
const S = require('../lib/servers');
const U = require('../lib/util');

const [A, B] = [path.resolve(process.argv[2]), path.resolve(process.argv[3])];
const N = Number(process.argv[4] ?? 20000);
const ROUNDS = Number(process.argv[5] ?? 10);
(async () => {
  const work = S.workFolder('ab-rerun');
  const src = path.join(work, 'src');
  U.writeRandomTree(src, N, 4096);
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: A, root, workDir: work, tag: 'ab-rerun' });
  const run = (build) => {
    const c0 = U.reapedChildrenCpuSeconds();
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...S.launchArgs(build), path.join(build, 'bin/rxfer.js'), 'put', '-r', src, 'd', '-p', String(server.port), '-q']);
    if (r.status) throw new Error(`${build}: ${r.stderr}`);
    return { wall: Number(process.hrtime.bigint() - t) / 1e9, cpu: U.reapedChildrenCpuSeconds() - c0 };
  };
  // The first stores the tree; one more each, unmeasured, so both caches hold this tree's records.
  run(A);
  run(A);
  run(B);
  const runs = { A: [], B: [] };
  for (let i = 0; i < ROUNDS; i++) for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) runs[k].push(run(k === 'A' ? A : B));
  console.log(`identical re-run of ${N} × 4 KiB, ${ROUNDS} rounds, one server (A's); load average ${require('node:os').loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const k of ['A', 'B']) console.log(`${k} wall ${median(runs[k].map((r) => r.wall)).toFixed(3)} s  client CPU ${median(runs[k].map((r) => r.cpu)).toFixed(3)} s`);
  await S.stopAll();
})();
