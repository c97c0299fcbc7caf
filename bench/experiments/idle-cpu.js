#!/usr/bin/env node
'use strict';
// `node bench/experiments/idle-cpu.js` (issue 20, bench/findings.md): the same fixed work, back to back and after
// 12 s asleep, CPU seconds each time. Tells a machine that runs slower after idle (a vCPU clocked down,
// cold caches) from a server that does more work after idle.
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const buf = Buffer.alloc(1 << 20, 7);
const work = () => {
  const c0 = process.cpuUsage(); const t0 = process.hrtime.bigint();
  // Mixed: hashing (native), JS objects (allocation, GC), small fs calls (syscalls).
  for (let i = 0; i < 40; i++) createHash('sha256').update(buf).digest();
  let o = []; for (let i = 0; i < 300000; i++) o.push({ i, s: 'x' + i }); o = null;
  for (let i = 0; i < 3000; i++) fs.statSync('/tmp');
  const c = process.cpuUsage(c0);
  return `cpu ${((c.user + c.system) / 1e6).toFixed(3)} wall ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3)}`;
};
(async () => {
  for (let i = 0; i < 3; i++) console.log('warm', work());
  for (let i = 0; i < 3; i++) console.log('back-to-back', work());
  for (let i = 0; i < 3; i++) { await new Promise((r) => setTimeout(r, 12000)); console.log('after 12 s idle', work()); }
})();
