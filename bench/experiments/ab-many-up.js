#!/usr/bin/env node
// A/B of the 2,000 × 4 KiB pipelined upload (run.js case 3, `putmany` or `putmany-stream`, window 64) between two rxfer
// builds, to tmpfs, alternating A and B round by round so both see the same machine load.
//
//   node bench/experiments/ab-many-up.js --a /tmp/rxfer-base --b . [--rounds 8] [--warmup 2] [--n 2000] [--kib 4] [--dest shm|disk]
//                                        [--op putmany|putmany-stream]
//
// Each round uploads the tree once per build (order flips every round), verifies every file
// (size + SHA-256), and logs files/s, server CPU and the CPU other processes used meanwhile.
// Prints the median files/s of each side and the median of the per-round ratios B/A.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const U = require('../lib/util');
const S = require('../lib/servers');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const A = path.resolve(opt('a', '/tmp/rxfer-base'));
const B = path.resolve(opt('b', path.join(__dirname, '../..')));
const ROUNDS = Number(opt('rounds', 8));
// The first uploads run while V8 still compiles the server's hot path: not counted.
const WARMUP = Number(opt('warmup', 2));
const N = Number(opt('n', 2000));
const DEST = opt('dest', 'shm');
const KIB = Number(opt('kib', 4));
// putmany: readFile + uploadBuffer per file; putmany-stream: client.upload(path) per file (rxfer-client.js).
const OP = opt('op', 'putmany');
const W = fs.mkdtempSync(path.join(DEST === 'shm' ? '/dev/shm' : '/var/tmp', 'rxab.'));
process.on('exit', () => { S.killAllSync(); fs.rmSync(W, { recursive: true, force: true }); });
process.on('SIGINT', () => process.exit(130));

const client = path.join(__dirname, '../clients/rxfer-client.js');

(async () => {
  const src = path.join(W, 'src');
  const manifest = U.writeRandomTree(src, N, KIB * 1024);
  const sides = {};
  for (const [tag, rxferRoot] of [['A', A], ['B', B]]) {
    const root = path.join(W, `root-${tag}`);
    fs.mkdirSync(root, { recursive: true });
    sides[tag] = { rxferRoot, root, server: await S.startRxfer({ rxferRoot, root, workDir: W, tag }), fps: [] };
  }
  const ratios = [];
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const warm = r < WARMUP;
    const order = r % 2 ? ['B', 'A'] : ['A', 'B'];
    const got = {};
    for (const tag of order) {
      const s = sides[tag];
      // A fresh folder per round: the server caches a folder's check for 1 s, and a folder deleted
      // behind its back within that second fails the next uploads into it with NOT_FOUND.
      if (r > 0) fs.rmSync(path.join(s.root, `up-${r - 1}`), { recursive: true, force: true });
      const out = path.join(s.root, `up-${r}`);
      await U.sleep(200);
      const cpu0 = U.cpuSeconds(s.server.pid);
      const busy0 = U.machineBusySeconds();
      const kids0 = U.reapedChildrenCpuSeconds();
      const res = await U.runTimed(process.execPath, [client, JSON.stringify({ rxferRoot: s.rxferRoot, op: OP, port: s.server.port, dir: src, prefix: `up-${r}`, window: 64 })]);
      const serverCpu = U.cpuSeconds(s.server.pid) - cpu0;
      const clientCpu = U.reapedChildrenCpuSeconds() - kids0;
      const other = Math.max(0, U.machineBusySeconds() - busy0 - serverCpu - clientCpu);
      if (res.code !== 0) throw new Error(`${tag}: client exited ${res.code}: ${res.stderr}`);
      const errors = await U.checkTree(out, manifest);
      if (errors.length) throw new Error(`${tag}: ${errors.slice(0, 3).join('; ')}`);
      const fps = N / res.seconds;
      got[tag] = fps;
      if (!warm) s.fps.push(fps);
      U.log(`${warm ? 'warmup' : 'round'} ${r} ${tag} ${fps.toFixed(0)} files/s  server CPU ${serverCpu.toFixed(2)} s  client CPU ${clientCpu.toFixed(2)} s  other load ${(100 * other / (res.seconds * os.cpus().length)).toFixed(0)}%`);
    }
    if (!warm) ratios.push(got.B / got.A);
  }
  const m = (xs) => U.median(xs);
  console.log(`A ${A}: median ${m(sides.A.fps).toFixed(0)} files/s (${Math.min(...sides.A.fps).toFixed(0)}–${Math.max(...sides.A.fps).toFixed(0)})`);
  console.log(`B ${B}: median ${m(sides.B.fps).toFixed(0)} files/s (${Math.min(...sides.B.fps).toFixed(0)}–${Math.max(...sides.B.fps).toFixed(0)})`);
  console.log(`B/A per round: median ${m(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(2)).join(' ')})`);
  await S.stopAll();
})().catch((e) => { console.error(e); process.exit(1); });
