#!/usr/bin/env node
'use strict';
// `node bench/experiments/tree-thread-cpu.js [RXFER_ROOT] [--n 20000] [--kib 4] [--rounds 3]` (issue 20):
// where the server's CPU goes during `rxfer put -r` of a tree, thread by thread. One `rxfer serve` of
// RXFER_ROOT (default: this checkout; give a copy's root to compare builds) on tmpfs; each round one
// `put -r` as typed (bin/rxfer.js) of N files into a fresh remote folder. Prints per round the wall
// time and the server's CPU from /proc/<pid>/task/*/stat before and after: its main thread, the
// small-commit worker (the thread started last, with the first commit), and the other threads
// (V8's platform threads, libuv's pool) each. thread-cpu.js does the same for one 1 GiB file.
// Extra node flags for the server: SERVER_NODE_ARGS="--single-threaded-gc".
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const N = U.takeNumberOption(argv, 'n', 20000);
const KIB = U.takeNumberOption(argv, 'kib', 4);
const ROUNDS = U.takeNumberOption(argv, 'rounds', 3);
const ROOT = path.resolve(argv[0] ?? path.join(__dirname, '../..'));

(async () => {
  const work = S.workFolder('tree-threads');
  const src = path.join(work, 'src');
  U.writeRandomTree(src, N, KIB * 1024);
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const nodeArgs = (process.env.SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 'threads', nodeArgs });
  console.log(`${N} × ${KIB} KiB, put -r, server of ${ROOT}${nodeArgs.length ? ` with ${nodeArgs.join(' ')}` : ''}`);
  for (let round = 0; round < ROUNDS; round++) {
    const before = U.threadCpuByTid(server.pid);
    const started = Date.now();
    const run = spawnSync(path.join(ROOT, 'bin/rxfer.js'), ['put', '-r', src, `up${round}`, '-p', String(server.port), '-q'], { encoding: 'utf8' });
    const wallMs = Date.now() - started;
    if (run.status !== 0) throw new Error(`put -r failed (${run.status}): ${run.stderr}`);
    const after = U.threadCpuByTid(server.pid);
    const spent = [...after].map(([tid, ms]) => [tid, ms - (before.get(tid) ?? 0)]).filter(([, ms]) => ms > 0);
    const main = spent.find(([tid]) => tid === server.pid)?.[1] ?? 0;
    const others = spent.filter(([tid]) => tid !== server.pid).sort((a, b) => a[0] - b[0]);
    // The commit worker starts with the first small commit, after the platform and pool threads.
    const worker = others.length > 0 ? others[others.length - 1] : undefined;
    const rest = others.slice(0, -1).map(([, ms]) => ms);
    console.log(`round ${round}: wall ${wallMs} ms; server CPU ms: main ${main}, commit worker ${worker?.[1] ?? 0}, others ${rest.join('+') || 0}`);
    fs.rmSync(path.join(root, `up${round}`), { recursive: true, force: true });
  }
  process.exit(0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
