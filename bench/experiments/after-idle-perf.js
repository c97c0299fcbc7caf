#!/usr/bin/env node
'use strict';
// `node bench/experiments/after-idle-perf.js [RXFER_ROOT] [PAUSE_MS] [ROUNDS]` (issue 20, finding 3): where
// a warm server's extra CPU goes on the first `put -r` after a pause. One `rxfer serve` on tmpfs with
// `--perf-basic-prof` (JS frames named), `put -r` of 2,000 × 4 KiB into a new folder each time. Each
// round: three commands back to back, the third recorded with `perf record -e cpu-clock -g` on the
// server's pid (every thread), then PAUSE_MS (default 12,000) of nothing and one command recorded the
// same way. Prints, per recording, the server's CPU seconds, its samples per thread and per shared
// object, and the symbols whose samples differ most between the two (summed over the rounds).
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const ROOT = path.resolve(process.argv[2] ?? path.join(__dirname, '../..'));
const PAUSE = Number(process.argv[3] ?? 12000);
const ROUNDS = Number(process.argv[4] ?? 3);
const HZ = 4000;

/** perf report's lines "  12.34%  key" for a sort key, as a map key → samples (percent × total / 100). */
const report = (file, sort, extra = []) => {
  const r = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', sort, '--stdio', '-q', '-n', ...extra], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const out = new Map();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\d+)\s+(.+?)\s*$/.exec(line);
    if (m) out.set(m[3].replace(/\s+/g, ' '), (out.get(m[3]) ?? 0) + Number(m[2]));
  }
  return out;
};

const merge = (into, from) => { for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v); };
const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
const ms = (samples) => `${((samples * 1000) / HZ).toFixed(0)} ms`;

(async () => {
  const work = S.workFolder('idleperf');
  const src = path.join(work, 'src'); U.writeRandomTree(src, 2000, 4096);
  const root = path.join(work, 'root'); fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 's', nodeArgs: ['--perf-basic-prof'] });
  let n = 0;
  const put = () => {
    const r = spawnSync(process.execPath, [...S.launchArgs(ROOT), path.join(ROOT, 'bin/rxfer.js'), 'put', '-r', src, `d${n++}`, '-p', String(server.port), '-q']);
    if (r.status) throw new Error(String(r.stderr));
  };
  /** One command with perf recording the server; returns the recording's file and the server's CPU seconds. */
  const recorded = async (tag) => {
    const file = path.join(work, `${tag}.data`);
    const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(HZ), '-g', '-p', String(server.pid), '-o', file], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const c0 = U.cpuSeconds(server.pid);
    put();
    // The commit worker and the digest logs finish after the last reply: a moment for them too.
    await new Promise((r) => setTimeout(r, 300));
    const cpu = U.cpuSeconds(server.pid) - c0;
    const done = new Promise((r) => perf.once('exit', r));
    perf.kill('SIGINT');
    await done;
    return { file, cpu };
  };
  for (let i = 0; i < 3; i++) put();
  const sums = { b2b: { tid: new Map(), dso: new Map(), sym: new Map(), mainSym: new Map(), cpu: [] }, idle: { tid: new Map(), dso: new Map(), sym: new Map(), mainSym: new Map(), cpu: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    put(); put();
    for (const [kind, before] of [['b2b', async () => undefined], ['idle', () => new Promise((r) => setTimeout(r, PAUSE))]]) {
      await before();
      const { file, cpu } = await recorded(`${kind}${round}`);
      const s = sums[kind];
      s.cpu.push(cpu);
      // Threads by role: the main thread (tid = pid), and each other by its tid (the commit worker, the
      // thread pool and V8's helpers; the commit worker is a new thread after a pause).
      // perf names a thread "<tid>:<comm>".
      for (const [key, v] of report(file, 'tid')) {
        const tid = Number(/^(\d+):/.exec(key.trim())?.[1]);
        const role = tid === server.pid ? 'main' : `tid ${tid}`;
        s.tid.set(role, (s.tid.get(role) ?? 0) + v);
      }
      merge(s.dso, report(file, 'dso'));
      merge(s.sym, report(file, 'sym'));
      merge(s.mainSym, report(file, 'sym', ['--tid', String(server.pid)]));
      console.log(`round ${round + 1} ${kind}: server CPU ${cpu.toFixed(2)} s`);
    }
  }
  for (const kind of ['b2b', 'idle']) {
    const s = sums[kind];
    console.log(`\n== ${kind === 'b2b' ? 'third back to back' : `first after ${PAUSE} ms idle`} (sum of ${ROUNDS}): server CPU ${s.cpu.map((c) => c.toFixed(2)).join(', ')} s`);
    const main = s.tid.get('main') ?? 0;
    const others = [...s.tid].filter(([k]) => k !== 'main');
    console.log(`  main thread ${ms(main)}; other threads ${ms(others.reduce((a, [, v]) => a + v, 0))}:`, top(new Map(others), 6).map(([k, v]) => `${k} ${ms(v)}`).join(' · '));
    console.log('  objects:', top(s.dso, 8).map(([k, v]) => `${k} ${ms(v)}`).join(' · '));
  }
  for (const [label, key] of [['every thread', 'sym'], ['the main thread', 'mainSym']]) {
    const diff = new Map();
    for (const [k, v] of sums.idle[key]) diff.set(k, v - (sums.b2b[key].get(k) ?? 0));
    for (const [k, v] of sums.b2b[key]) if (!sums.idle[key].has(k)) diff.set(k, -v);
    console.log(`\n== symbols of ${label} with the most extra samples after idle (over ${ROUNDS} rounds)`);
    for (const [k, v] of top(diff, 20)) console.log(`  ${ms(v).padStart(8)}  ${k.slice(0, 150)}`);
  }
  await S.stopAll();
})();
