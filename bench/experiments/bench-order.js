#!/usr/bin/env node
'use strict';
// `node bench/experiments/bench-order.js [RXFER_ROOT] [--rounds 3] [--gap 1500] [--pause 20000] [--big 1] [--flags '...']`
// (issue 20): why does the benchmark's server spend more CPU per command than a warm server in an A/B?
// Replays `bench/run.js --only cmd`'s order on one `rxfer serve` (tmpfs): per round `put -r`, the
// identical re-run and `get -r` of 2,000 × 4 KiB, then (with --big) the same of 200 × 1 MiB, each
// command followed by GAP ms of nothing (the peers' turn) and each round by PAUSE ms (the 20,000-file
// cases and scp). Prints, per command, wall time and the server's CPU split by thread kind (main
// thread, worker threads, libuv pool, V8 platform threads), read from /proc/<pid>/task.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const ROOT = path.resolve(argv[0] && !argv[0].startsWith('--') ? argv[0] : path.join(__dirname, '../..'));
const ROUNDS = Number(opt('rounds', 3));
const GAP = Number(opt('gap', 1500));
const PAUSE = Number(opt('pause', 20000));
const BIG = opt('big', '1') !== '0';
const FLAGS = (opt('flags', '') || '').split(' ').filter(Boolean);

/** CPU ms per thread kind: comm names as Linux shows them (Node names its threads). */
const kindOf = (tid, pid, comm) => {
  if (tid === pid) return 'main';
  if (/libuv-worker/.test(comm)) return 'pool';
  if (/V8 /.test(comm)) return 'v8';
  return 'worker';
};
const threadTicks = (pid) => {
  const out = {};
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat;
    try { stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'); } catch { continue; }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[`${tid}:${comm}`] = { kind: kindOf(Number(tid), pid, comm), ms: (Number(f[11]) + Number(f[12])) * 10 };
  }
  return out;
};
const byKind = (before, after) => {
  const sums = { main: 0, worker: 0, pool: 0, v8: 0 };
  for (const [k, v] of Object.entries(after)) sums[v.kind] += v.ms - (before[k]?.ms ?? 0);
  return sums;
};

(async () => {
  const work = S.workFolder('order');
  const root = path.join(work, 'root');
  const sets = { s4k: [2000, 4096] };
  if (BIG) sets.s1m = [200, 1024 * 1024];
  for (const [set, [n, size]] of Object.entries(sets)) {
    U.writeRandomTree(path.join(work, 'src', set), n, size);
    fs.mkdirSync(path.join(root, 'many'), { recursive: true });
    fs.cpSync(path.join(work, 'src', set), path.join(root, 'many', set), { recursive: true });
  }
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 'o', nodeArgs: FLAGS });
  const cli = S.launchArgs(ROOT);
  const run = (label, args) => {
    const t0 = threadTicks(server.pid); const c0 = U.reapedChildrenCpuSeconds(); const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...cli, path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q']);
    if (r.status) throw new Error(`${label}: ${r.stderr}`);
    const wall = Number(process.hrtime.bigint() - t) / 1e9;
    const k = byKind(t0, threadTicks(server.pid));
    const total = k.main + k.worker + k.pool + k.v8;
    console.log(`${label.padEnd(16)} wall ${wall.toFixed(2)} client ${(U.reapedChildrenCpuSeconds() - c0).toFixed(2)} server ${(total / 1000).toFixed(2)} = main ${k.main} worker ${k.worker} pool ${k.pool} v8 ${k.v8} ms`);
  };
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`-- round ${round}`);
    for (const set of Object.keys(sets)) {
      const src = path.join(work, 'src', set);
      fs.rmSync(path.join(root, 'up', `${set}-put`), { recursive: true, force: true });
      run(`${set} put -r`, ['put', '-r', src, `up/${set}-put`]);
      await U.sleep(GAP);
      if (round === 0) run(`${set} seed`, ['put', '-r', src, `up/${set}-rerun`]);
      run(`${set} re-run`, ['put', '-r', src, `up/${set}-rerun`]);
      await U.sleep(GAP);
      const out = path.join(work, 'client', set);
      fs.rmSync(out, { recursive: true, force: true });
      run(`${set} get -r`, ['get', '-r', `many/${set}`, out]);
      await U.sleep(GAP);
    }
    if (round < ROUNDS - 1) await U.sleep(PAUSE);
  }
  await S.stopAll();
})();
