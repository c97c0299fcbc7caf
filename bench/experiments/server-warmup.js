#!/usr/bin/env node
'use strict';
// `node bench/experiments/server-warmup.js [PAUSE_MS=0] [idle|busy] ['SERVER NODE FLAGS'] [--rounds 5] [--no-1m] [--filler rsync]`
// (issue 20): how a server's CPU per command settles. One `rxfer serve` on tmpfs; each round runs
// `put -r` of 2,000 × 4 KiB into a fresh folder, its identical re-run and `get -r`, then (unless
// --no-1m) `put -r` and `get -r` of 200 × 1 MiB, with PAUSE_MS before every command: idle, or busy
// with other work on the machine (two `sha256sum` of the 1 MiB files, or with --filler rsync a local
// `rsync -r` and `cp -r` of the small tree), as the benchmark's peers keep it between rxfer's runs.
// Prints per command "wall/server CPU" seconds. Round 0 is a new server: V8 compiles most of its code then.
const fs = require('node:fs');
const path = require('node:path');
const { execSync, spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const flag = (name) => { const i = argv.indexOf(`--${name}`); if (i < 0) return false; argv.splice(i, 1); return true; };
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv.splice(i, 2)[1]; };
const ROUNDS = Number(opt('rounds', 5));
const FILLER = opt('filler', 'sha256sum');
const NO_1M = flag('no-1m');
const ROOT = path.join(__dirname, '../..');
const PAUSE = Number(argv[0] ?? 0);
const BUSY = argv[1] === 'busy';
const FLAGS = (argv[2] ?? '').split(' ').filter(Boolean);
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

(async () => {
  const work = S.workFolder('warmup');
  const s4k = path.join(work, 's4k');
  U.writeRandomTree(s4k, 2000, 4096);
  const s1m = path.join(work, 's1m');
  if (!NO_1M || FILLER !== 'rsync') U.writeRandomTree(s1m, 200, 1 << 20);
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 'warmup', nodeArgs: FLAGS });
  const pause = () => {
    if (PAUSE === 0) return;
    if (!BUSY) return sleepMs(PAUSE);
    const fill = path.join(work, 'fill');
    for (const end = Date.now() + PAUSE; Date.now() < end; ) {
      execSync(FILLER === 'rsync' ? `rm -rf ${fill}; rsync -r ${s4k}/ ${fill}/; rm -rf ${fill}; cp -r ${s4k} ${fill}` : `sha256sum ${s1m}/* > /dev/null & sha256sum ${s1m}/* > /dev/null; wait`);
    }
    sleepMs(300);
  };
  const run = (label, args) => {
    pause();
    const cpu0 = U.cpuSeconds(server.pid);
    const t = process.hrtime.bigint();
    const r = spawnSync(path.join(ROOT, 'bin/rxfer.js'), [...args, '-p', String(server.port), '-q'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    return `${label} ${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2)}/${(U.cpuSeconds(server.pid) - cpu0).toFixed(2)}`;
  };
  console.log(`pause ${PAUSE} ms ${PAUSE ? (BUSY ? `busy (${FILLER})` : 'idle') : ''}, server flags: ${FLAGS.join(' ') || '(as shipped)'}; per command wall/server CPU s`);
  for (let i = 0; i < ROUNDS; i++) {
    for (const dir of ['o4', 'o1']) fs.rmSync(path.join(work, dir), { recursive: true, force: true });
    for (const dir of ['p4', 'p1']) fs.rmSync(path.join(root, dir), { recursive: true, force: true });
    const line = [run('put4k', ['put', '-r', s4k, 'p4']), run('rerun', ['put', '-r', s4k, 'p4']), run('get4k', ['get', '-r', 'p4', path.join(work, 'o4')])];
    if (!NO_1M) line.push(run('put1m', ['put', '-r', s1m, 'p1']), run('get1m', ['get', '-r', 'p1', path.join(work, 'o1')]));
    console.log(`round ${i}:`, ...line);
  }
  await S.stopAll();
})().catch((err) => { console.error(err); process.exitCode = 2; });
