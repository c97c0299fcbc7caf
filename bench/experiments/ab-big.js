#!/usr/bin/env node
// A/B of one big file, upload then download, between two rxfer builds, with the plain Node pipe as a
// yardstick, to tmpfs (or ABDIR). Not part of `npm run bench`; a tool for deciding a change.
//
//   node bench/experiments/ab-big.js A_ROOT B_ROOT [rounds=6] [sha256|blake3] [MiB=1024]
//
// Both servers are started afresh every round and the order of A, B and the pipe rotates through all
// six permutations. On this machine the first rxfer server to run in a round was 15–25 % faster than
// the second for identical builds (A/A, bench/findings.md), and a server process kept its speed for
// its whole life: comparing two long-lived servers, or always in the same order, measures that, not
// the change. Compare like with like: the rounds where A ran first against those where B did.
// A_ROOT/B_ROOT: package roots with bin/ and dist/ (copy one aside before rebuilding).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const S = require('../lib/servers');
const U = require('../lib/util');
const { abArgs, runClient, median: med } = require('../lib/ab');

process.on('exit', () => S.killAllSync());
const { A, B, rounds: ROUNDS, hash: HASH, more } = abArgs(process.argv.slice(2));
const MIB = Number(more[0] || 1024);
// GAP_MS=…: a pause before every run (to see whether the previous run's after-effects fade).
const GAP_MS = Number(process.env.GAP_MS || 0);
const ORDERS = [['A', 'B', 'P'], ['B', 'A', 'P'], ['P', 'A', 'B'], ['P', 'B', 'A'], ['A', 'P', 'B'], ['B', 'P', 'A']];

// SERVER_ARGS_A/B, CLIENT_ARGS_A/B=…: node flags for one side's server or client processes.
const nodeArgs = (name) => (process.env[name] || '').split(' ').filter(Boolean);

(async () => {
  const work = fs.mkdtempSync(path.join(process.env.ABDIR || '/dev/shm', 'abbig.'));
  const src = path.join(work, 'src.bin');
  const out = path.join(work, 'out.bin');
  await U.writeRandomFile(src, MIB * 1048576);
  const pipeRoot = path.join(work, 'rootP');
  fs.mkdirSync(path.join(pipeRoot, 'up'), { recursive: true });
  const pipe = await S.startNet({ root: pipeRoot, workDir: work, tag: 'p', hwm: 1048576 });
  const servers = {};
  const rows = { A: [], B: [], P: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of ['A', 'B']) {
      await servers[side]?.stop();
      const root = path.join(work, `root${side}`);
      fs.mkdirSync(path.join(root, 'up'), { recursive: true });
      servers[side] = Object.assign(await S.startRxfer({ rxferRoot: side === 'A' ? A : B, root, workDir: work, tag: `${side}${round}`, nodeArgs: nodeArgs(`SERVER_ARGS_${side}`) }), { root });
    }
    const order = ORDERS[round % ORDERS.length];
    for (const side of order) {
      if (GAP_MS > 0) await new Promise((resolve) => setTimeout(resolve, GAP_MS));
      let up, down;
      if (side === 'P') {
        up = runClient('net', { op: 'put', port: pipe.port, local: src, remote: 'up/a.bin', hwm: 1048576 });
        down = runClient('net', { op: 'get', port: pipe.port, remote: 'up/a.bin', local: out, hwm: 1048576 });
        fs.rmSync(path.join(pipeRoot, 'up/a.bin'));
      } else {
        const s = servers[side];
        const spec = { port: s.port, rxferRoot: side === 'A' ? A : B, hash: HASH };
        const args = nodeArgs(`CLIENT_ARGS_${side}`);
        up = runClient('rxfer', { ...spec, op: 'put', local: src, remote: 'up/a.bin' }, args);
        down = runClient('rxfer', { ...spec, op: 'get', remote: 'up/a.bin', local: out }, args);
        fs.rmSync(path.join(s.root, 'up/a.bin'));
      }
      fs.rmSync(out);
      rows[side].push({ up: MIB / (up.ms / 1000), down: MIB / (down.ms / 1000), first: order.find((x) => x !== 'P') === side });
    }
  }
  const show = (values) => values.map((v) => v.toFixed(0)).join(' ');
  console.log(`${MIB} MiB, ${HASH}, ${ROUNDS} rounds, MiB/s (A: ${A}, B: ${B})`);
  for (const side of ['A', 'B', 'P']) {
    const r = rows[side];
    const line = `${side} up ${show(r.map((x) => x.up))} (median ${med(r.map((x) => x.up)).toFixed(0)}) | down ${show(r.map((x) => x.down))} (median ${med(r.map((x) => x.down)).toFixed(0)})`;
    console.log(line);
    if (side === 'P') continue;
    for (const first of [true, false]) {
      const part = r.filter((x) => x.first === first);
      console.log(`  when ${first ? 'first' : 'second'} of the two rxfer servers: up median ${med(part.map((x) => x.up)).toFixed(0)}, down ${med(part.map((x) => x.down)).toFixed(0)} (${part.length} rounds)`);
    }
  }
  await S.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
