#!/usr/bin/env node
// Is SHA-256 in a worker_threads worker a win for one 1 GiB upload on this 2-core machine, where the
// client runs too? Plain Node, no dependencies. A standalone model of the server's receive path:
//
//   node bench/experiments/hash-worker.js [--gib 1] [--rounds 3] [--load none,hash]
//
// Per 1 MiB chunk the main thread does what the server does anyway — a fresh Buffer with the bytes
// (the socket read's allocation and copy) — and then either
//   main:   hash.update(chunk) itself, or
//   worker: hands the chunk to a worker (transferred, not copied; at most 8 in flight, as a
//           highWaterMark would) which hashes it, and asks for the digest at the end.
// --load hash runs a second process that hashes 1 MiB buffers in a loop the whole time: the client,
// which hashes what it sends, keeps one core about this busy. Modes alternate within each round.
// Reports wall time (MiB/s), the process's CPU seconds per GiB (all threads), and how busy the main
// thread was (its own CPU seconds per GiB, from /proc: event-loop utilisation means little here).
'use strict';
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { Worker } = require('node:worker_threads');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const MiB = 1024 * 1024;
const CHUNKS = Math.round(Number(opt('gib', 1)) * 1024);
const ROUNDS = Number(opt('rounds', 3));
const LOADS = opt('load', 'none,hash').split(',');
const IN_FLIGHT = 8;

const sources = Array.from({ length: 16 }, () => crypto.randomBytes(MiB));
const expected = (() => { const h = crypto.createHash('sha256'); for (let i = 0; i < CHUNKS; i++) h.update(sources[i % sources.length]); return h.digest('hex'); })();

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') { parentPort.postMessage(hash.digest('hex')); hash = createHash('sha256'); return; }
  hash.update(new Uint8Array(m));
  parentPort.postMessage(1);
});`;

/** The bytes as a socket read would give them: a new buffer of their own (own ArrayBuffer). */
const receive = (i) => { const chunk = new Uint8Array(MiB); chunk.set(sources[i % sources.length]); return chunk; };

const onMain = async () => {
  const hash = crypto.createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) {
    hash.update(receive(i));
    // Yield now and then, as a real receive loop does between socket reads.
    if (i % 64 === 63) await new Promise(setImmediate);
  }
  return hash.digest('hex');
};

let worker; // started once, outside the timed span, as a server would keep one
const inWorker = () => new Promise((resolve) => {
  let sent = 0;
  let acked = 0;
  const pump = () => {
    while (sent < CHUNKS && sent - acked < IN_FLIGHT) {
      const chunk = receive(sent++);
      worker.postMessage(chunk.buffer, [chunk.buffer]);
    }
    if (sent === CHUNKS && acked === CHUNKS) worker.postMessage('end');
  };
  const onMessage = (m) => {
    if (typeof m === 'string') { worker.off('message', onMessage); return resolve(m); }
    acked++;
    pump();
  };
  worker.on('message', onMessage);
  pump();
});

const startLoad = (kind) => kind === 'none' ? undefined : spawn(process.execPath, ['-e', `
  const c = require('node:crypto'); const b = c.randomBytes(${MiB});
  for (;;) c.createHash('sha256').update(b).digest();`], { stdio: 'ignore' });

// The main thread's own CPU (Node 20 has no process.threadCpuUsage): its /proc task entry, whose
// id is the pid; utime and stime are fields 14 and 15, in clock ticks (100 per second here).
const threadCpu = () => {
  const fields = require('node:fs').readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

(async () => {
  worker = new Worker(WORKER, { eval: true });
  const rows = [];
  for (const load of LOADS) {
    const loader = startLoad(load);
    await new Promise((r) => setTimeout(r, 300));
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 ? ['worker', 'main'] : ['main', 'worker']) {
        const cpu0 = process.cpuUsage();
        const main0 = threadCpu();
        const t0 = process.hrtime.bigint();
        const digest = mode === 'main' ? await onMain() : await inWorker();
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpu0);
        if (digest !== expected) throw new Error(`${mode}: wrong digest`);
        const row = { load, mode, round: r, mibps: CHUNKS / wall, wallS: wall, cpuSPerGiB: (cpu.user + cpu.system) / 1e6 / (CHUNKS / 1024), mainCpuSPerGiB: (threadCpu() - main0) / (CHUNKS / 1024) };
        rows.push(row);
        console.error(`load=${load} ${mode.padEnd(6)} round ${r}: ${row.mibps.toFixed(0)} MiB/s, process CPU ${row.cpuSPerGiB.toFixed(2)} s/GiB, main thread ${Number.isNaN(row.mainCpuSPerGiB) ? 'n/a' : row.mainCpuSPerGiB.toFixed(2) + ' s/GiB'}`);
      }
    }
    loader?.kill();
  }
  await worker.terminate();
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log('load  mode    MiB/s (median)  process CPU s/GiB  main-thread CPU s/GiB');
  for (const load of LOADS) for (const mode of ['main', 'worker']) {
    const rs = rows.filter((x) => x.load === load && x.mode === mode);
    console.log(`${load.padEnd(5)} ${mode.padEnd(7)} ${med(rs.map((x) => x.mibps)).toFixed(0).padStart(14)}  ${med(rs.map((x) => x.cpuSPerGiB)).toFixed(2).padStart(17)}  ${Number.isNaN(rs[0].mainCpuSPerGiB) ? 'n/a' : med(rs.map((x) => x.mainCpuSPerGiB)).toFixed(2)}`);
  }
})().catch((e) => { console.error(e); process.exit(1); });
