#!/usr/bin/env node
// How much CPU does verifying a transfer cost, per algorithm rxfer offers? One process, one core,
// 1 GiB hashed from memory in chunks of the sizes the server and client feed (socket reads are
// 64 KiB, file reads 1 MiB), plus the per-file cost of a 4 KiB file (a new hash, one update, the hex
// digest), through the same `startHash` the server and client use (dist/, so `npm run build` first).
//
//   node bench/experiments/hash-speed.js [--rounds 3]
//
// Prints MiB/s and CPU seconds per GiB (user + system of this process) per algorithm and chunk size.
'use strict';
const crypto = require('node:crypto');
const path = require('node:path');
const { startHash } = require(path.join(__dirname, '../../dist/integrity/hash-algorithm'));

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] || 3);
const GiB = 1024 ** 3;
const data = crypto.randomBytes(1024 * 1024);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

for (let round = 1; round <= rounds; round++) {
  for (const chunk of [1024 * 1024, 64 * 1024]) {
    for (const algorithm of ['sha256', 'blake3']) {
      const piece = data.subarray(0, chunk);
      const c0 = cpu();
      const t0 = process.hrtime.bigint();
      const hash = startHash(algorithm);
      for (let done = 0; done < GiB; done += chunk) hash.update(piece);
      hash.hex();
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`round ${round}  ${algorithm.padEnd(6)} ${String(chunk / 1024).padStart(4)} KiB chunks  ${(1024 / s).toFixed(0).padStart(6)} MiB/s  ${(cpu() - c0).toFixed(3)} s CPU per GiB`);
    }
  }
  for (const algorithm of ['sha256', 'blake3']) {
    const small = data.subarray(0, 4096);
    const n = 50000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) startHash(algorithm).update(small).hex();
    console.log(`round ${round}  ${algorithm.padEnd(6)} one 4 KiB file: ${(Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(2)} µs`);
  }
}
