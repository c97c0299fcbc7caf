#!/usr/bin/env node
// CPU profiles of the rxfer server (and optionally the client) during one benchmark case, with a
// ranked summary of where the time went. Not part of `npm run bench`; a tool for finding the cause.
//
//   node bench/profile.js [--case big-up,big-down,many-up,many-down,load,conc] [--size-mib 1024] [--n 2000] [--file-kib 4]
//                         [--dest shm|disk] [--client] [--hash sha256|blake3] [--log-level warn] [--rxfer DIR] [--top 25]
//
// The server runs as `node --cpu-prof bin/rxfer.js serve` (its own process, as in the benchmark) and
// is stopped with SIGTERM after the case, which writes the profile. Download sources are seeded by a
// separate, unprofiled server on the same root first. Output: bench/results/profiles/<case>-*.cpuprofile
// (open in Chrome DevTools or speedscope for a flame graph) and <case>.txt, also printed.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const U = require('./lib/util');
const S = require('./lib/servers');
const { analyze } = require('./lib/cpuprofile');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const CASES = opt('case', 'big-up,big-down,many-up').split(',');
const SIZE_MIB = Number(opt('size-mib', 1024));
const N = Number(opt('n', 2000));
const FILE_KIB = Number(opt('file-kib', 4));
const DEST = opt('dest', 'shm');
const CLIENT_PROF = argv.includes('--client');
const HASH = opt('hash', 'sha256');
const LOG_LEVEL = opt('log-level', 'warn');
const TOP = Number(opt('top', 25));
const RXFER_ROOT = path.resolve(opt('rxfer', path.join(__dirname, '..')));
const OUT = path.join(__dirname, 'results', 'profiles');
fs.mkdirSync(OUT, { recursive: true });

const base = DEST === 'shm' ? '/dev/shm' : '/var/tmp';
const W = fs.mkdtempSync(path.join(base, 'rxprof.'));
process.on('exit', () => { S.killAllSync(); fs.rmSync(W, { recursive: true, force: true }); });
process.on('SIGINT', () => process.exit(130));

const client = (spec, profName) => ({
  cmd: process.execPath,
  args: [...(CLIENT_PROF ? ['--cpu-prof', '--cpu-prof-dir', OUT, '--cpu-prof-name', profName] : []), path.join(__dirname, 'clients/rxfer-client.js'), JSON.stringify({ rxferRoot: RXFER_ROOT, hash: HASH, ...spec })],
});

(async () => {
  const src = path.join(W, 'src');
  const root = path.join(W, 'root');
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(path.join(root, 'up'), { recursive: true });
  const needBig = CASES.some((c) => c.startsWith('big'));
  const needMany = CASES.some((c) => c.startsWith('many'));
  const big = needBig ? await U.writeRandomFile(path.join(src, 'big.bin'), SIZE_MIB * U.MiB) : undefined;
  const conc = CASES.includes('conc') ? await U.writeRandomFile(path.join(src, 'conc.bin'), 256 * U.MiB) : undefined;
  const many = needMany ? U.writeRandomTree(path.join(src, 'many'), N, FILE_KIB * 1024) : undefined;

  // seed download sources through an unprofiled server
  if (CASES.includes('big-down') || CASES.includes('many-down')) {
    const seedSrv = await S.startRxfer({ rxferRoot: RXFER_ROOT, root, workDir: W, tag: 'seed' });
    if (CASES.includes('big-down')) await U.runTimed(...Object.values(client({ op: 'put', port: seedSrv.port, local: path.join(src, 'big.bin'), remote: 'src.bin' }, 'x')));
    if (CASES.includes('many-down')) await U.runTimed(...Object.values(client({ op: 'putmany', port: seedSrv.port, dir: path.join(src, 'many'), prefix: 'many' }, 'x')));
    await seedSrv.stop();
  }

  const report = [];
  for (const c of CASES) {
    const stamp = `${c}-${DEST}${LOG_LEVEL !== 'warn' ? `-log${LOG_LEVEL}` : ''}`;
    const serverProf = `${stamp}-server.cpuprofile`;
    for (const f of [serverProf, `${stamp}-client.cpuprofile`]) fs.rmSync(path.join(OUT, f), { force: true });
    const srv = await S.startRxfer({
      rxferRoot: RXFER_ROOT, root, workDir: W, tag: stamp, logLevel: LOG_LEVEL,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', OUT, '--cpu-prof-name', serverProf],
    });
    const spec = {
      'big-up': { op: 'put', local: path.join(src, 'big.bin'), remote: 'up/big.bin' },
      'big-down': { op: 'get', remote: 'src.bin', local: path.join(W, 'dl.bin') },
      'many-up': { op: 'putmany', dir: path.join(src, 'many'), prefix: 'up/many' },
      'many-down': { op: 'getmany', namesFrom: path.join(src, 'many'), prefix: 'many', outDir: path.join(W, 'dl-many') },
      load: { op: 'load', clients: 64, ops: 20, size: 4096, prefix: 'up/load', manifest: path.join(W, 'load.json') },
      conc: { op: 'putconc', local: path.join(src, 'conc.bin'), prefix: 'up/conc', n: 16 },
    }[c];
    if (!spec) throw new Error(`unknown case ${c}`);
    const cpu0 = U.cpuSeconds(srv.pid);
    const ex = client({ port: srv.port, ...spec }, `${stamp}-client.cpuprofile`);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const r = await U.runTimed(ex.cmd, ex.args);
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const cpuS = U.cpuSeconds(srv.pid) - cpu0;
    if (r.code !== 0) throw new Error(`${c}: client failed: ${r.stderr.slice(-500)}`);
    // verify
    let errs = [];
    if (c === 'big-up') errs = [await U.checkFile(path.join(root, 'up/big.bin'), big)].filter(Boolean);
    if (c === 'big-down') errs = [await U.checkFile(path.join(W, 'dl.bin'), big)].filter(Boolean);
    if (c === 'many-up') errs = await U.checkTree(path.join(root, 'up/many'), many);
    if (c === 'many-down') errs = await U.checkTree(path.join(W, 'dl-many'), many);
    if (c === 'conc') for (let i = 0; i < 16; i++) { const e = await U.checkFile(path.join(root, `up/conc-${i}.bin`), conc); if (e) errs.push(e); }
    if (errs.length) { console.error(`WRONG BYTES in ${c}: ${errs.join('; ')}`); process.exitCode = 1; }
    await srv.stop('SIGTERM', 20000);
    const what = c === 'conc' ? `${((16 * conc.size) / U.MiB / r.seconds).toFixed(0)} MiB/s` : c.startsWith('big') ? `${(big.size / U.MiB / r.seconds).toFixed(0)} MiB/s` : c.startsWith('many') ? `${(N / r.seconds).toFixed(0)} files/s` : `${(r.json.ops / r.seconds).toFixed(0)} ops/s`;
    const head = `=== ${stamp}: ${r.seconds.toFixed(2)} s wall (client process), ${what} under the profiler; server CPU ${cpuS.toFixed(2)} s, client CPU ${r.json.cpuS.toFixed(2)} s`;
    let text = head + '\n\n-- server --\n' + analyze(path.join(OUT, serverProf), TOP, { fromUs, toUs }).text;
    if (CLIENT_PROF && fs.existsSync(path.join(OUT, `${stamp}-client.cpuprofile`))) text += '\n\n-- client --\n' + analyze(path.join(OUT, `${stamp}-client.cpuprofile`), TOP).text;
    fs.writeFileSync(path.join(OUT, `${stamp}.txt`), text + '\n');
    console.log(text + '\n');
    report.push(stamp);
    fs.rmSync(path.join(root, 'up'), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, 'up'), { recursive: true });
    fs.rmSync(path.join(W, 'dl.bin'), { force: true });
    fs.rmSync(path.join(W, 'dl-many'), { recursive: true, force: true });
  }
  console.error(`profiles and summaries in ${path.relative(process.cwd(), OUT)}/ (${report.join(', ')})`);
})().catch((e) => { console.error(e.stack || e); process.exitCode = 2; });
