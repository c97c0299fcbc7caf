#!/usr/bin/env node
// A/B of many small pipelined downloads (run.js case 3, `getmany`, one connection, window 64) between
// two rxfer builds, to tmpfs (or ABDIR). Both servers are started afresh every round, seeded with the
// same files, and the order of A and B flips from round to round (see ab-big.js for why).
//
//   node bench/experiments/ab-many-down.js A_ROOT B_ROOT [rounds=6] [sha256|blake3] [KiB=4] [files=2000]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const S = require('../lib/servers');
const { abArgs, runClient, median } = require('../lib/ab');

process.on('exit', () => S.killAllSync());
const { A, B, rounds: ROUNDS, hash: HASH, more } = abArgs(process.argv.slice(2));
const KIB = Number(more[0] || 4);
const N = Number(more[1] || 2000);

(async () => {
  const work = fs.mkdtempSync(path.join(process.env.ABDIR || '/dev/shm', 'abdown.'));
  const src = path.join(work, 'src');
  const out = path.join(work, 'out');
  fs.mkdirSync(src);
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(src, `f${String(i).padStart(5, '0')}`), crypto.randomBytes(KIB * 1024));
  const rates = { A: [], B: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const servers = {};
    for (const [side, rxferRoot] of [['A', A], ['B', B]]) {
      const root = path.join(work, `root${side}`);
      fs.rmSync(root, { recursive: true, force: true });
      fs.mkdirSync(path.join(root, 'up'), { recursive: true });
      servers[side] = { rxferRoot, ...(await S.startRxfer({ rxferRoot, root, workDir: work, tag: `${side}${round}` })) };
      runClient('rxfer', { op: 'putmany', port: servers[side].port, dir: src, prefix: 'up', rxferRoot, hash: HASH });
    }
    await new Promise((resolve) => setTimeout(resolve, 2000)); // let the seeding's commits settle
    for (const side of round % 2 ? ['A', 'B'] : ['B', 'A']) {
      const { port, rxferRoot } = servers[side];
      const result = runClient('rxfer', { op: 'getmany', port, namesFrom: src, prefix: 'up', outDir: out, rxferRoot, hash: HASH });
      for (const name of fs.readdirSync(src)) {
        if (!fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(src, name)))) throw new Error(`${side}: ${name} differs`);
      }
      rates[side].push(N / (result.ms / 1000));
      fs.rmSync(out, { recursive: true, force: true });
    }
    await Promise.all(Object.values(servers).map((server) => server.stop()));
  }
  console.log(`${N} × ${KIB} KiB downloads, ${HASH}, ${ROUNDS} rounds, files/s (A: ${A}, B: ${B})`);
  for (const side of ['A', 'B']) console.log(`${side} ${rates[side].map((r) => r.toFixed(0)).join(' ')} (median ${median(rates[side]).toFixed(0)})`);
  await S.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
