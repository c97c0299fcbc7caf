#!/usr/bin/env node
// Where the client library spends its CPU on one big file: its main thread (socket, hashing, JS) or
// its other threads (libuv's pool writing the download, V8's helpers)? One rxfer server on tmpfs, the
// client in this process; three rounds of a 1 GiB download and upload, each with /proc per thread.
//
//   node --no-concurrent-sweeping bench/experiments/client-threads.js [rxferRoot=.] [sha256|blake3]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const S = require('../lib/servers');
const U = require('../lib/util');

process.on('exit', () => S.killAllSync());
const RX = path.resolve(process.argv[2] || '.');
const HASH = process.argv[3] || 'sha256';
const { RxferClient } = require(path.join(RX, 'dist/client/index.js'));

(async () => {
  const work = fs.mkdtempSync('/dev/shm/rxct.');
  const src = path.join(work, 'src.bin');
  await U.writeRandomFile(src, 1 << 30);
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: RX, root, workDir: work, tag: 'threads' });
  const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, hash: HASH });
  await client.upload(src, 'src.bin');
  for (let round = 0; round < 3; round++) {
    for (const op of ['down', 'up']) {
      const before = U.threadCpuMs(process.pid);
      const started = Date.now();
      if (op === 'down') await client.download('src.bin', path.join(work, 'down.bin'));
      else await client.upload(src, `up-${round}.bin`);
      const after = U.threadCpuMs(process.pid);
      const ms = Date.now() - started;
      console.log(`${op} ${HASH}: ${ms} ms (${Math.round((1024 * 1000) / ms)} MiB/s), client main thread ${after.main - before.main} ms, other threads ${after.others - before.others} ms`);
    }
  }
  await client.quit();
  await S.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
