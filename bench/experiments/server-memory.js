#!/usr/bin/env node
// Where one server's memory goes, step by step: its peak RSS during each step and, after it, RSS split
// by kind of mapping (/proc/PID/smaps: the node binary's pages, glibc's main heap, small anonymous
// mappings — V8's heap pages — and larger ones — thread stacks and arenas).
//
//   node bench/experiments/server-memory.js [rxferRoot=.] STEP…
//
// STEP: big (upload 1 GiB), down (download it), s4k (2,000 × 4 KiB pipelined), s1m (200 × 1 MiB),
// wait<ms>. To tmpfs. Example, the benchmark's order: `… . big down s4k s1m big down`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const S = require('../lib/servers');
const U = require('../lib/util');
const { runClient } = require('../lib/ab');

process.on('exit', () => S.killAllSync());
const args = process.argv.slice(2);
const RX = path.resolve(args[0] && !/^(big|down|conc|concdown|s4k|s1m|wait\d*)$/.test(args[0]) ? args.shift() : '.');
const STEPS = args;
const MiB = 1 << 20;

const rssMiB = (pid) => Math.round(U.statusKiB(pid, 'VmRSS') / 1024);

/** RSS by kind of mapping, in MiB. */
const byMapping = (pid) => {
  const sums = {};
  let kind = null;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const kib = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
      const name = head[3];
      kind = name === '[heap]' ? 'malloc-heap'
        : name.endsWith('/node') ? 'node-binary'
        : name.startsWith('/') ? 'files'
        : name === '' ? (kib < 1024 ? 'anon<1M' : 'anon≥1M') : name;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && kind) sums[kind] = (sums[kind] || 0) + Number(rss[1]);
  }
  return Object.entries(sums).filter(([, kib]) => kib >= 512).map(([k, kib]) => `${k} ${Math.round(kib / 1024)}`).join(', ');
};

(async () => {
  const work = fs.mkdtempSync('/dev/shm/rxmem.');
  const src = path.join(work, 'src.bin');
  if (STEPS.includes('conc')) await U.writeRandomFile(path.join(work, 'conc.bin'), 256 * MiB);
  if (STEPS.includes('big') || STEPS.includes('down')) await U.writeRandomFile(src, 1024 * MiB);
  if (STEPS.includes('s4k')) U.writeRandomTree(path.join(work, 's4k'), 2000, 4096);
  if (STEPS.includes('s1m')) U.writeRandomTree(path.join(work, 's1m'), 200, MiB);
  const root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'up'), { recursive: true });
  const server = await S.startRxfer({ rxferRoot: RX, root, workDir: work, tag: 'mem', nodeArgs: (process.env.SERVER_ARGS || '').split(' ').filter(Boolean) });
  const run = (spec) => runClient('rxfer', { port: server.port, rxferRoot: RX, ...spec });
  console.log(`server: node ${S.launchArgs(RX, { serve: true }).join(' ')} bin/rxfer.js serve (${RX})`);
  console.log(`idle: ${rssMiB(server.pid)} MiB (${byMapping(server.pid)})`);
  let n = 0;
  for (const step of STEPS) {
    n++;
    let peak = rssMiB(server.pid);
    const t0 = Date.now();
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid))), 10);
    if (step === 's4k' || step === 's1m') run({ op: 'putmany', dir: path.join(work, step), prefix: `many/${step}-${n}` });
    else if (step === 'big') run({ op: 'put', local: src, remote: `up/big-${n}.bin` });
    else if (step === 'conc') run({ op: 'putconc', local: path.join(work, 'conc.bin'), prefix: 'up/conc', n: 16 });
    else if (step === 'concdown') run({ op: 'getconc', prefix: 'up/conc', outDir: path.join(work, 'concdown'), n: 16 });
    else if (step === 'down') run({ op: 'get', remote: `up/big-${STEPS.indexOf('big') + 1}.bin`, local: path.join(work, `down-${n}.bin`) });
    else if (step.startsWith('wait')) await new Promise((resolve) => setTimeout(resolve, Number(step.slice(4)) || 3000));
    else throw new Error(`unknown step ${step}`);
    // runClient blocks the event loop; one last sample after it.
    await new Promise((resolve) => setTimeout(resolve, 30));
    clearInterval(sampler);
    peak = Math.max(peak, rssMiB(server.pid));
    console.log(`${step}: ${Date.now() - t0} ms, peak ${peak} MiB, after ${rssMiB(server.pid)} MiB (${byMapping(server.pid)})`);
  }
  await S.stopAll();
  if (process.env.KEEP) console.log(`kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
