#!/usr/bin/env node
'use strict';
// `node bench/experiments/idle-pages.js [PAUSE_S…]` (issue 20, bench/findings.md): does this machine
// make memory slower to reach after the process has been idle? Touches one byte of each 4 KiB page
// of a 256 MiB buffer (no allocation, no system call, no GC: the same pages every time), back to back
// and then after each pause, and prints the milliseconds. On the workplace's VMs the first touch after
// ≥ 10 s idle cost ≈ 0.5 µs more a page (33–37 ms against 1.8 ms), the second none: the hypervisor's
// doing, paid by every process with a large working set (rxfer's server and client: Node heaps of
// tens of MiB) and little by one with a small one (rsync).
const buf = Buffer.alloc(256 << 20, 1);
const PAGE = 4096;

const touchPages = () => {
  const started = process.hrtime.bigint();
  let sum = 0;
  for (let i = 0; i < buf.length; i += PAGE) sum += buf[i];
  if (sum !== buf.length / PAGE) throw new Error('the buffer changed');
  return Number(process.hrtime.bigint() - started) / 1e6;
};

(async () => {
  const pauses = process.argv.slice(2).map(Number);
  for (let i = 0; i < 3; i++) console.log(`back to back: ${touchPages().toFixed(1)} ms`);
  for (const seconds of pauses.length ? pauses : [5, 10, 20]) {
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const first = touchPages();
    console.log(`after ${seconds} s idle: ${first.toFixed(1)} ms, then ${touchPages().toFixed(1)} ms`);
  }
})();
