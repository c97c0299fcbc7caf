#!/usr/bin/env node
'use strict';
// `node bench/experiments/profile-commands.js [RXFER_ROOT] [--n 2000] [--kib 4] [--top 25] [--out DIR]` (issue 20):
// CPU profiles of whole CLI commands as typed, client and server alike: `rxfer serve` runs under
// --cpu-prof for the three commands (`put -r` of a fresh tree, the identical re-run, `get -r`), each
// client under its own --cpu-prof, and each command's server samples are cut to the span its client
// ran. Prints wall and CPU seconds per command and the ranked summaries; the .cpuprofile files stay
// in DIR (default /tmp/rxfer-prof-commands) for a flame graph. `--warm N`: the server first runs the
// three commands N times unprofiled (other remote names, output discarded), so that the profile is of a
// server whose code V8 has optimized, as in the benchmark's later rounds, not of its first burst.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const S = require('../lib/servers');
const U = require('../lib/util');
const { analyze } = require('../lib/cpuprofile');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const ROOT = path.resolve(argv[0] && !argv[0].startsWith('--') ? argv[0] : path.join(__dirname, '../..'));
const N = Number(opt('n', 2000));
const KIB = Number(opt('kib', 4));
const TOP = Number(opt('top', 25));
const OUT = path.resolve(opt('out', '/tmp/rxfer-prof-commands'));
const WARM = Number(opt('warm', 0));

(async () => {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const work = S.workFolder('prof-commands');
  const src = path.join(work, 'src');
  const manifest = U.writeRandomTree(src, N, KIB * 1024);
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const serverDir = path.join(OUT, 'server');
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 'prof', nodeArgs: ['--cpu-prof', '--cpu-prof-dir', serverDir] });
  const spans = [];
  for (let i = 0; i < WARM; i++) {
    const warm = (args) => {
      const r = spawnSync(process.execPath, [...S.launchArgs(ROOT), path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    };
    warm(['put', '-r', src, `warm${i}`]);
    warm(['put', '-r', src, `warm${i}`]);
    warm(['get', '-r', `warm${i}`, path.join(work, `warm-out${i}`)]);
  }
  const run = (step, args) => {
    const cpu0 = U.reapedChildrenCpuSeconds();
    const s0 = U.cpuSeconds(server.pid);
    const from = Number(process.hrtime.bigint() / 1000n);
    const r = spawnSync(process.execPath, [...S.launchArgs(ROOT), '--cpu-prof', '--cpu-prof-dir', path.join(OUT, step), path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q'], { encoding: 'utf8' });
    const to = Number(process.hrtime.bigint() / 1000n);
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    spans.push({ step, fromUs: from, toUs: to, wall: (to - from) / 1e6, client: U.reapedChildrenCpuSeconds() - cpu0, server: U.cpuSeconds(server.pid) - s0 });
  };
  const out = path.join(work, 'out');
  run('put-r', ['put', '-r', src, 'tree']);
  run('re-run', ['put', '-r', src, 'tree']);
  run('get-r', ['get', '-r', 'tree', out]);
  const wrong = (await U.checkTree(path.join(out, 'tree'), manifest)).length;
  await S.stopAll();
  // The main thread's profile (a worker thread's, if any, sorts after it).
  const serverProf = path.join(serverDir, fs.readdirSync(serverDir).sort()[0]);
  fs.writeFileSync(path.join(OUT, 'spans.json'), JSON.stringify({ serverProf, spans }, null, 1));
  for (const s of spans) {
    console.log(`\n===== ${s.step}: ${N} × ${KIB} KiB, wall ${s.wall.toFixed(2)} s, CPU client ${s.client.toFixed(2)} s, server ${s.server.toFixed(2)} s`);
    const dir = path.join(OUT, s.step);
    console.log('--- client\n' + analyze(path.join(dir, fs.readdirSync(dir)[0]), TOP).text);
    console.log('--- server\n' + analyze(serverProf, TOP, s).text);
  }
  if (wrong) { console.log(`${wrong} files came back wrong`); process.exitCode = 1; }
})().catch((err) => { console.error(err); process.exitCode = 2; });
