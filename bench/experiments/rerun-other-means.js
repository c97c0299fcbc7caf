#!/usr/bin/env node
'use strict';
// `node bench/experiments/rerun-other-means.js A_ROOT B_ROOT [N=2000] [ROUNDS=4]` (issue 20): `get -r`
// run again over files put into the server's folder by other means (cp, a restore), as each build
// serves them: N × 4 KiB written straight into each build's own root (last changed a minute ago), then
// per round a first `get -r` into a new folder and a second into the same one, alternating the builds.
// Prints, per build, the median wall time and client CPU of the second run, and what it fetched
// (the CLI's --json summary): a build whose server never tells these files' digests fetches all again.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { median } = require('../lib/ab');
const S = require('../lib/servers');
const U = require('../lib/util');

const [A, B] = [path.resolve(process.argv[2]), path.resolve(process.argv[3])];
const N = Number(process.argv[4] ?? 2000);
const ROUNDS = Number(process.argv[5] ?? 4);
(async () => {
  const work = S.workFolder('rerun-other-means');
  const servers = {};
  for (const [k, build] of [['A', A], ['B', B]]) {
    const root = path.join(work, `root-${k}`);
    U.writeRandomTree(path.join(root, 'd'), N, 4096);
    const aMinuteAgo = new Date(Date.now() - 60_000);
    for (const name of fs.readdirSync(path.join(root, 'd'), { recursive: true })) fs.utimesSync(path.join(root, 'd', name), aMinuteAgo, aMinuteAgo);
    servers[k] = await S.startRxfer({ rxferRoot: build, root, workDir: work, tag: `other-means-${k}` });
  }
  // A server records a digest it hashed only for a file left alone two seconds (its ctime): as files
  // restored a while ago are, and as the first round's must be for both builds alike.
  await S.sleep(2100);
  const getR = (k, into) => {
    const build = k === 'A' ? A : B;
    const c0 = U.reapedChildrenCpuSeconds();
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...S.launchArgs(build), path.join(build, 'bin/rxfer.js'), 'get', '-r', 'd', into, '-p', String(servers[k].port), '--json']);
    if (r.status) throw new Error(`${build}: ${r.stderr}`);
    const summary = JSON.parse(r.stdout.toString().trim().split('\n').pop());
    return { wall: Number(process.hrtime.bigint() - t) / 1e9, cpu: U.reapedChildrenCpuSeconds() - c0, summary };
  };
  const runs = { A: [], B: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) {
      const into = path.join(work, `copy-${k}-${i}`);
      getR(k, into);
      runs[k].push(getR(k, into));
      fs.rmSync(into, { recursive: true, force: true });
    }
  }
  console.log(`get -r run again over ${N} × 4 KiB put there by other means, ${ROUNDS} rounds; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const k of ['A', 'B']) {
    const last = runs[k][runs[k].length - 1].summary;
    console.log(`${k} second run: wall ${median(runs[k].map((r) => r.wall)).toFixed(3)} s  client CPU ${median(runs[k].map((r) => r.cpu)).toFixed(3)} s  summary ${JSON.stringify(last)}`);
  }
  await S.stopAll();
})();
