#!/usr/bin/env node
'use strict';
// `node bench/experiments/alloc-commands.js A_ROOT B_ROOT [rounds] [--n 2000] [--kib 4]` (issue 20):
// how much JavaScript heap the client of each build allocates per whole command (`put -r` of a fresh
// tree, its identical re-run, `get -r`), garbage included (support/allocation-preload.js). Unlike
// time, this hardly moves with the machine's load: a way to see what a change does to the client
// while other work runs, before timing it on a quiet machine with ab-commands.js. Each build
// against its own `rxfer serve` on tmpfs. Prints MiB allocated per build, step and round.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const N = U.takeNumberOption(argv, 'n', 2000);
const KIB = U.takeNumberOption(argv, 'kib', 4);
const [A, B, ROUNDS = '3'] = argv;
if (!A || !B) {
  console.error('usage: alloc-commands.js A_ROOT B_ROOT [rounds] [--n 2000] [--kib 4]');
  process.exit(2);
}
const PRELOAD = path.join(__dirname, 'support', 'allocation-preload.js');

(async () => {
  const work = S.workFolder('alloc-commands');
  const src = path.join(work, 'src');
  U.writeRandomTree(src, N, KIB * 1024);
  const out = path.join(work, 'alloc.txt');
  const results = new Map();
  for (const [tag, rxferRoot] of [['A', path.resolve(A)], ['B', path.resolve(B)]]) {
    const root = path.join(work, `root-${tag}`);
    fs.mkdirSync(root);
    const server = await S.startRxfer({ rxferRoot, root, workDir: work, tag });
    for (let round = 0; round < Number(ROUNDS); round++) {
      const steps = [
        ['put -r', ['put', '-r', src, `t${round}`]],
        ['re-run', ['put', '-r', src, `t${round}`]],
        ['get -r', ['get', '-r', `t${round}`, path.join(work, `out-${tag}${round}`)]],
      ];
      for (const [step, args] of steps) {
        fs.rmSync(out, { force: true });
        const run = spawnSync(process.execPath, [...S.launchArgs(rxferRoot), '-r', PRELOAD, path.join(rxferRoot, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q'], {
          encoding: 'utf8',
          env: { ...process.env, ALLOC_OUT: out },
        });
        if (run.status !== 0) throw new Error(`${tag} ${args.join(' ')}: ${run.stderr}`);
        const key = `${step} ${tag}`;
        results.set(key, [...(results.get(key) ?? []), Number(fs.readFileSync(out, 'utf8')) / 1048576]);
      }
    }
  }
  console.log(`${N} × ${KIB} KiB, client JavaScript allocated per command (MiB), A = ${A}, B = ${B}`);
  for (const [key, values] of results) console.log(`${key.padEnd(9)} ${values.map((v) => v.toFixed(1)).join('  ')}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
