#!/usr/bin/env node
// What a file costs beyond its bytes: one server, the same 200 MiB sent as one file and as 200 files
// of 1 MiB (pipelined on one connection, as run.js case 3), alternately, four times; prints wall time
// and the CPU of the server and of the client process for each.
//
//   node bench/experiments/per-file-cost.js [rxferRoot=.] [sha256|blake3]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const S = require('../lib/servers');
const U = require('../lib/util');
const { runClient } = require('../lib/ab');

process.on('exit', () => S.killAllSync());
const RX = path.resolve(process.argv[2] || '.');
const HASH = process.argv[3] || 'sha256';

(async () => {
  const work = fs.mkdtempSync('/dev/shm/perfile.');
  const files = path.join(work, 'files');
  const big = path.join(work, 'big.bin');
  fs.mkdirSync(files);
  const fd = fs.openSync(big, 'w');
  for (let i = 0; i < 200; i++) {
    const piece = crypto.randomBytes(1 << 20);
    fs.writeFileSync(path.join(files, `f${String(i).padStart(3, '0')}`), piece);
    fs.writeSync(fd, piece);
  }
  fs.closeSync(fd);
  const root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'up'), { recursive: true });
  const server = await S.startRxfer({ rxferRoot: RX, root, workDir: work, tag: 'perfile' });
  const run = (spec) => {
    const cpu0 = U.cpuSeconds(server.pid);
    const result = runClient('rxfer', { port: server.port, rxferRoot: RX, hash: HASH, ...spec });
    fs.rmSync(path.join(root, 'up'), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, 'up'));
    return `${result.ms.toFixed(0)} ms, server CPU ${(U.cpuSeconds(server.pid) - cpu0).toFixed(2)} s, client CPU ${result.cpuS.toFixed(2)} s`;
  };
  console.log(`200 MiB, ${HASH}; client CPU includes its process start (≈ 0.05 s)`);
  for (let round = 0; round < 4; round++) {
    console.log(`one file: ${run({ op: 'put', local: big, remote: 'up/big.bin' })} | 200 × 1 MiB: ${run({ op: 'putmany', dir: files, prefix: 'up' })}`);
  }
  await S.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
