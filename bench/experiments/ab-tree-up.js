#!/usr/bin/env node
// A/B of `rxfer put -r` (the CLI, as users run it) of N files of KiB each between two rxfer builds,
// to tmpfs, with fresh servers every round and the order flipping from round to round. Files above
// 1 MiB are the streamed ones: this is how their pipelining was measured (bench/findings.md).
//
//   node bench/experiments/ab-tree-up.js A_ROOT B_ROOT [rounds=4] [files=100] [KiB=4096]
'use strict';
const fs = require('fs'), path = require('path'), { spawnSync } = require('child_process');
const S = require('../lib/servers');
const U = require('../lib/util');
const { median } = require('../lib/ab');
process.on('exit', () => S.killAllSync());
const [a, b, rounds = 4, files = 100, kib = 4096] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: A_ROOT B_ROOT [rounds] [files] [KiB]');
const [A, B, ROUNDS, N, KIB] = [path.resolve(a), path.resolve(b), Number(rounds), Number(files), Number(kib)];
(async () => {
  const work = fs.mkdtempSync('/dev/shm/treeab.'); const src = path.join(work, 'src');
  U.writeRandomTree(src, N, KIB * 1024);
  const res = { A: [], B: [] };
  for (let r = 0; r < ROUNDS; r++) for (const side of r % 2 ? ['B', 'A'] : ['A', 'B']) {
    const root = path.join(work, `root${side}${r}`); fs.mkdirSync(root);
    const rx = side === 'A' ? A : B;
    const srv = await S.startRxfer({ rxferRoot: rx, root, workDir: work, tag: `${side}${r}` });
    const t0 = process.hrtime.bigint();
    const out = spawnSync(process.execPath, [...S.launchArgs(rx), path.join(rx, 'bin/rxfer.js'), 'put', '-r', src, 'up', '-p', String(srv.port), '-q']);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (out.status) throw new Error(out.stderr.toString());
    res[side].push(N / s);
    await srv.stop(); fs.rmSync(root, { recursive: true, force: true });
  }
  for (const side of ['A', 'B']) console.log(side, res[side].map((x) => x.toFixed(0)).join(' '), 'median', median(res[side]).toFixed(0), 'files/s');
  fs.rmSync(work, { recursive: true, force: true });
})().catch((e) => { console.error(e); process.exit(1); });
