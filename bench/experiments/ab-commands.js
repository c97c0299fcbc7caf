#!/usr/bin/env node
'use strict';
// `node bench/experiments/ab-commands.js A_ROOT B_ROOT [rounds] [sha256|blake3] [--n 2000] [--kib 4] [--log-level warn] [--single]`
// (issue 20): whole CLI commands as typed, from two builds (A = a copy of the build before a change,
// B = after), each against its own `rxfer serve` on tmpfs, alternating A and B in every round (the
// order swapped each round): `put -r` of a fresh tree, the identical re-run, `get -r`. Prints each
// run, then per step the median seconds and the paired ratio B/A of times (< 1: B faster), min–max,
// and the median CPU seconds (user + sys) of client and server: steadier than wall time on a busy machine.
// `--single`: each round also times `put` and `get` of one file of KIB KiB, where a command is mostly
// its own start-up (files/s is then commands/s).
// Every download is compared with the source; a difference exits 1.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { abArgs, median } = require('../lib/ab');
const S = require('../lib/servers');
const U = require('../lib/util');

const { A, B, rounds, hash, more } = abArgs(process.argv.slice(2), 5);
const opt = (name, def) => { const i = more.indexOf(`--${name}`); return i < 0 ? def : more[i + 1]; };
const N = Number(opt('n', 2000));
const KIB = Number(opt('kib', 4));
// The servers' log level (default warn, as in the benchmark); `--log-level info` measures what logging costs.
const LOG_LEVEL = opt('log-level', 'warn');
const SINGLE = more.includes('--single');

(async () => {
  const work = S.workFolder('ab-commands', { cache: process.env.RXFER_CACHE_DIR });
  const src = path.join(work, 'src');
  const manifest = U.writeRandomTree(src, N, KIB * 1024);
  const builds = {};
  for (const [tag, rxferRoot] of [['A', A], ['B', B]]) {
    const root = path.join(work, `root-${tag}`);
    fs.mkdirSync(root);
    builds[tag] = { rxferRoot, server: await S.startRxfer({ rxferRoot, root, workDir: work, tag, logLevel: LOG_LEVEL }) };
  }
  const cpu = { A: {}, B: {} };
  const run = (tag, args, step) => {
    const { rxferRoot, server } = builds[tag];
    const client0 = U.reapedChildrenCpuSeconds();
    const server0 = U.cpuSeconds(server.pid);
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...S.launchArgs(rxferRoot), path.join(rxferRoot, 'bin/rxfer.js'), ...args, '-p', String(server.port), '--hash', hash, '-q'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${tag} ${args.join(' ')}: ${r.stderr}`);
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    (cpu[tag][step] ??= { client: [], server: [] }).client.push(U.reapedChildrenCpuSeconds() - client0);
    cpu[tag][step].server.push(U.cpuSeconds(server.pid) - server0);
    return seconds;
  };
  const steps = ['put -r', 're-run', 'get -r', ...(SINGLE ? ['put 1', 'get 1'] : [])];
  const one = path.join(src, Object.keys(manifest)[0]);
  const times = { A: Object.fromEntries(steps.map((s) => [s, []])), B: Object.fromEntries(steps.map((s) => [s, []])) };
  let wrong = 0;
  for (let r = 0; r < rounds; r++) {
    for (const tag of r % 2 ? ['B', 'A'] : ['A', 'B']) {
      const remote = `t${r}`;
      const out = path.join(work, `out-${tag}`);
      fs.rmSync(out, { recursive: true, force: true });
      const t1 = run(tag, ['put', '-r', src, remote], 'put -r');
      const t2 = run(tag, ['put', '-r', src, remote], 're-run');
      const t3 = run(tag, ['get', '-r', remote, out], 'get -r');
      wrong += (await U.checkTree(path.join(out, remote), manifest)).length;
      fs.rmSync(out, { recursive: true, force: true });
      if (SINGLE) {
        times[tag]['put 1'].push(run(tag, ['put', one, `${remote}-one`], 'put 1'));
        times[tag]['get 1'].push(run(tag, ['get', `${remote}-one`, `${out}-one`], 'get 1'));
        if (!fs.readFileSync(`${out}-one`).equals(fs.readFileSync(one))) wrong++;
        fs.rmSync(`${out}-one`, { force: true });
      }
      times[tag]['put -r'].push(t1);
      times[tag]['re-run'].push(t2);
      times[tag]['get -r'].push(t3);
      console.log(`round ${r} ${tag}: put -r ${t1.toFixed(2)} s, re-run ${t2.toFixed(2)} s, get -r ${t3.toFixed(2)} s`);
    }
  }
  console.log(`\n${N} × ${KIB} KiB, ${hash}, log level ${LOG_LEVEL}, ${rounds} rounds; A = ${A}, B = ${B}; load average ${require('node:os').loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const s of steps) {
    const count = s.endsWith(' 1') ? 1 : N;
    const ratios = times.B[s].map((b, i) => b / times.A[s][i]);
    console.log(`${s.padEnd(7)} A ${median(times.A[s]).toFixed(2)} s  B ${median(times.B[s]).toFixed(2)} s  (${(count / median(times.A[s])).toFixed(count === 1 ? 1 : 0)} → ${(count / median(times.B[s])).toFixed(count === 1 ? 1 : 0)} files/s)  B/A time paired median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
    const c = (tag, who) => median(cpu[tag][s][who]).toFixed(2);
    console.log(`${''.padEnd(7)} CPU s client A ${c('A', 'client')} B ${c('B', 'client')}, server A ${c('A', 'server')} B ${c('B', 'server')}`);
  }
  if (wrong) { console.log(`${wrong} files came back wrong`); process.exitCode = 1; }
  await S.stopAll();
})().catch((err) => { console.error(err); process.exitCode = 2; });
