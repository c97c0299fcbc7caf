#!/usr/bin/env node
// Where does each server spend its CPU during one 1 GiB upload to tmpfs: its main thread (JS, socket
// reads) or its other threads (libuv's pool doing the file writes, V8's helpers)? Reads every
// thread's utime + stime from /proc before and after, for rxfer (BLAKE3 and SHA-256) and the plain
// Node pipe, alternately, twice. Uses the benchmark's own servers and clients (dist/, so build first).
//
//   node bench/experiments/thread-cpu.js
'use strict';
const fs = require('fs'), path = require('path'), { execFileSync, spawnSync } = require('child_process');
const S = require('../lib/servers'); const U = require('../lib/util');
const ticks = (pid) => Object.fromEntries(fs.readdirSync(`/proc/${pid}/task`).map((t) => {
  const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
  const f = st.slice(st.lastIndexOf(')') + 2).split(' '); return [`${t}:${comm}`, (Number(f[11]) + Number(f[12])) * 10];
}));
const diff = (a, b) => { const out = {}; for (const k of Object.keys(b)) { const d = b[k] - (a[k] || 0); if (d > 0) out[k] = d; } return out; };
(async () => {
  const work = fs.mkdtempSync('/dev/shm/thr.'); const root = path.join(work, 'root'); fs.mkdirSync(root + '/up', { recursive: true });
  const src = path.join(work, 'src.bin'); await U.writeRandomFile(src, 1024 * 1024 * 1024);
  const ROOT = path.join(__dirname, '../..');
  const rx = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 't' });
  const nt = await S.startNet({ root, workDir: work, tag: 't', hwm: 1 << 20 });
  for (let round = 0; round < 2; round++) for (const [name, h, client, spec] of [
    ['rxfer-b3', rx, path.join(ROOT, 'bench/clients/rxfer-client.js'), { op: 'put', port: rx.port, local: src, remote: 'up/a.bin', hash: 'blake3', rxferRoot: ROOT }],
    ['rxfer-sha', rx, path.join(ROOT, 'bench/clients/rxfer-client.js'), { op: 'put', port: rx.port, local: src, remote: 'up/a.bin', rxferRoot: ROOT }],
    ['pipe', nt, path.join(ROOT, 'bench/baselines/net-client.js'), { op: 'put', port: nt.port, local: src, remote: 'up/b.bin', hwm: 1 << 20 }]]) {
    const before = ticks(h.pid); const t0 = Date.now();
    const r = spawnSync(process.execPath, [client, JSON.stringify(spec)], { encoding: 'utf8' });
    const ms = Date.now() - t0; const d = diff(before, ticks(h.pid));
    const [main, ...rest] = Object.entries(d).sort((a, b) => Number(a[0].split(':')[0]) - Number(b[0].split(':')[0]));
    const others = rest.reduce((sum, [, v]) => sum + v, 0);
    console.log(`${name.padEnd(10)} ${ms} ms wall${r.status ? ' (FAILED)' : ''}  server CPU: main thread ${main ? main[1] : 0} ms, other threads ${others} ms (${rest.length} threads)`);
  }
  await S.stopAll(); fs.rmSync(work, { recursive: true, force: true });
})();
