#!/usr/bin/env node
// Does a burst of small uploads make later big uploads dearer? One server, to tmpfs: two 1 GiB
// uploads, then 2,000 × 4 KiB pipelined, then two more 1 GiB uploads, then (after the small-file
// worker's idle stop) two more; prints MiB/s and the server's CPU per upload, and its threads' share.
//
//   node bench/experiments/after-burst.js [rxferRoot=.] [node flags for the server…]
//
// The server gets the flags of bin/rxfer.js's #! line (as `rxfer serve` does) plus the ones given;
// to see the effect those flags remove, pass an rxferRoot whose bin/rxfer.js has a plain #! line.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const S = require('../lib/servers');
const U = require('../lib/util');
const { runClient } = require('../lib/ab');

process.on('exit', () => S.killAllSync());
const RX = path.resolve(process.argv[2] || '.');
const EXTRA = process.argv.slice(3);

(async () => {
  const work = fs.mkdtempSync('/dev/shm/burst.');
  const src = path.join(work, 'src.bin');
  await U.writeRandomFile(src, 1 << 30);
  const small = path.join(work, 'small');
  U.writeRandomTree(small, 2000, 4096);
  const root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'up'), { recursive: true });
  fs.mkdirSync(path.join(root, 'many'));
  const server = await S.startRxfer({ rxferRoot: RX, root, workDir: work, tag: 'burst', nodeArgs: EXTRA });
  const run = (spec) => runClient('rxfer', { port: server.port, rxferRoot: RX, ...spec });
  const upload = (label) => {
    const before = U.threadCpuMs(server.pid);
    const result = run({ op: 'put', local: src, remote: 'up/a.bin' });
    const after = U.threadCpuMs(server.pid);
    fs.rmSync(path.join(root, 'up/a.bin'));
    const main = after.main - before.main;
    const others = after.others - before.others;
    console.log(`${label.padEnd(24)} ${(1024 / (result.ms / 1000)).toFixed(0)} MiB/s, server CPU ${((main + others) / 1000).toFixed(2)} s (main thread ${main} ms, other threads ${others} ms)`);
  };
  console.log(`server: node ${[...S.launchArgs(RX, { serve: true }), ...EXTRA].join(' ')} bin/rxfer.js serve`);
  upload('fresh');
  upload('fresh');
  run({ op: 'putmany', dir: small, prefix: 'many' });
  upload('after 2,000 small');
  upload('after 2,000 small');
  await new Promise((resolve) => setTimeout(resolve, 11_000));
  upload('after the worker stopped');
  upload('after the worker stopped');
  await S.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
