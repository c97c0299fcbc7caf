#!/usr/bin/env node
'use strict';
// `node scripts/large-trees.js [--sizes 2000,20000,200000] [--file-bytes 1024] [--per-folder 1000] [--dir /dev/shm] [--bin PATH] [--server-bin PATH] [--live-heap]`
// (issue 17, large trees; the bounded form is test/reliability/large-trees.test.ts). For each size:
// a fresh tree of that many small files, then `rxfer put -r`, the identical re-run, `rxfer ls` of
// one folder, `rxfer ls -r` of the whole tree, and `rxfer get -r`, each a fresh
// CLI process (compiled dist/: `npm run build` first) against one `rxfer serve` process. Prints
// files/s and peak RSS (client and server) per step and size, and at the end the ratio of files/s
// from the smallest size to the largest (the goal: within 20 %, no quadratic step). Every file
// that comes back is compared with its source; exits 1 on any difference or failed command.
// --bin: another build's bin/rxfer.js for client and server alike (a copy of bin/ and dist/ with
// node_modules linked beside them), so that a before/after comparison is not rebuilt under it;
// --server-bin: the server's alone (a client change measured against one and the same server).
// --live-heap: each CLI and the server run with --trace-gc, and each step also prints the largest
// heap left after a full GC (MB), the client's and the server's during that step: what each holds,
// where peak RSS also counts garbage not yet collected.
// At the end: the marginal rate of each step (files added ÷ seconds added between two sizes, so each
// command's start-up and first LIST cancel out) and how it changes from the smallest interval to
// the largest: the cost per file at scale, the issue's "within 20 %, no quadratic step".
const { execFile, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const SIZES = option('sizes', '2000,20000,200000').split(',').map(Number);
const FILE_BYTES = Number(option('file-bytes', 1024));
const PER_FOLDER = Number(option('per-folder', 1000));
const BASE = option('dir', fs.existsSync('/dev/shm') ? '/dev/shm' : require('node:os').tmpdir());
const LIVE_HEAP = args.includes('--live-heap');
const MAX_LIST_ENTRIES = 10_000;
const ROOT = path.join(__dirname, '..');
const BIN = path.resolve(option('bin', path.join(ROOT, 'bin', 'rxfer.js')));
const SERVER_BIN = path.resolve(option('server-bin', BIN));
// The node flags `rxfer` gives itself (bin/rxfer.js's exec line): client commands and `serve` differ.
const { launchArgs } = require('../bench/lib/servers');
const CLIENT_FLAGS = launchArgs(path.dirname(path.dirname(BIN)));
const SERVER_FLAGS = launchArgs(path.dirname(path.dirname(SERVER_BIN)), { serve: true });
const PRELOAD = path.join(ROOT, 'test', 'reliability', 'support', 'print-max-rss.js');

const say = (line) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const peakKiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

const cli = (cliArgs) =>
  new Promise((resolve) => {
    const started = process.hrtime.bigint();
    execFile(process.execPath, [...CLIENT_FLAGS, ...(LIVE_HEAP ? ['--trace-gc'] : []), '-r', PRELOAD, BIN, ...cliArgs], { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const rss = /max-rss-kib (\d+)/.exec(stderr);
      const live = [...stdout.matchAll(/Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/g)].map((m) => Number(m[1]));
      resolve({ ok: !err, stdout, stderr, seconds, rssKiB: rss ? Number(rss[1]) : NaN, liveMB: live.length > 0 ? Math.max(...live) : NaN });
    });
  });

const writeTree = (dir, count, perFolder) => {
  const names = [];
  for (let i = 0; i < count; i++) {
    const folder = `d${String(Math.floor(i / perFolder)).padStart(4, '0')}`;
    if (i % perFolder === 0) fs.mkdirSync(path.join(dir, folder), { recursive: true });
    const name = `${folder}/f${i}.bin`;
    fs.writeFileSync(path.join(dir, name), crypto.randomBytes(FILE_BYTES));
    names.push(name);
  }
  return names;
};

(async () => {
  const work = fs.mkdtempSync(path.join(BASE, 'rxfer-large-trees-'));
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const config = path.join(work, 'server.json');
  fs.writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { kind: 'local', root }, limits: { maxListEntries: MAX_LIST_ENTRIES }, log: { level: 'info' } }));
  const server = spawn(process.execPath, [...SERVER_FLAGS, ...(LIVE_HEAP ? ['--trace-gc'] : []), SERVER_BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  // The server's live heap after each full GC, read chunk by chunk (never piled up: see below);
  // serverLive holds the largest since the last step began.
  let serverLive = NaN;
  let serverTail = '';
  const readServerGc = (chunk) => {
    const text = serverTail + chunk;
    const cut = text.lastIndexOf('\n');
    serverTail = text.slice(cut + 1).slice(-512);
    for (const m of text.slice(0, cut + 1).matchAll(/Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/g)) serverLive = Number.isNaN(serverLive) ? Number(m[1]) : Math.max(serverLive, Number(m[1]));
  };
  const stop = () => { if (server.exitCode === null) server.kill('SIGTERM'); };
  process.on('exit', () => { stop(); fs.rmSync(work, { recursive: true, force: true }); });
  process.on('SIGINT', () => process.exit(130));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    // Only until the port is known: kept up for the whole run, the server's info log (≈ 1 KiB a
    // request) piled up here and each regex flattened it again, so the server blocked writing its
    // log; that, not the LIST, was the 12 s and 18 s `ls` after a 20,000- and 200,000-file re-run.
    const onData = (chunk) => {
      out += chunk;
      const m = /"port":(\d+)/.exec(out);
      if (!m) return;
      server.stdout.off('data', onData);
      if (LIVE_HEAP) server.stdout.on('data', readServerGc);
      server.stdout.resume();
      resolve(m[1]);
    };
    server.stdout.on('data', onData);
    server.once('exit', () => reject(new Error(`serve exited: ${out}`)));
  });
  say(`client ${BIN}, server ${SERVER_BIN}: rxfer serve on port ${port}, root ${root}, maxListEntries ${MAX_LIST_ENTRIES}; files of ${FILE_BYTES} bytes, ${PER_FOLDER} to a folder`);
  const table = [];
  let failed = false;
  for (const size of SIZES) {
    const src = path.join(work, `src-${size}`);
    const t0 = Date.now();
    const names = writeTree(src, size, PER_FOLDER);
    say(`${size} files written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const remote = `t${size}`;
    const steps = {
      'put -r': ['put', '-r', src, remote, '-p', port, '-q'],
      're-run': ['put', '-r', src, remote, '-p', port],
      'ls': ['ls', `${remote}/d0000`, '-p', port],
      'ls -r': ['ls', '-r', remote, '-p', port],
      'get -r': ['get', '-r', remote, path.join(work, `copy-${size}`), '-p', port, '-q'],
    };
    const row = { size };
    for (const [step, cliArgs] of Object.entries(steps)) {
      serverLive = NaN;
      const r = await cli(cliArgs);
      const files = step === 'ls' ? Math.min(size, PER_FOLDER) : size;
      row[step] = { filesps: files / r.seconds, seconds: r.seconds, rssKiB: r.rssKiB, liveMB: r.liveMB, serverLiveMB: serverLive };
      if (!r.ok) { failed = true; say(`${step} of ${size} FAILED: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`); }
      if (step === 'ls -r' && r.ok && r.stdout.split('\n').filter((line) => line.includes('/f')).length !== size) { failed = true; say(`ls -r of ${size} did not list every file`); }
      if (step === 're-run' && !r.stdout.includes(`${size} already there, skipped`)) { failed = true; say(`re-run of ${size} sent files: ${r.stdout.trim()}`); }
      say(`${String(size).padStart(7)} ${step.padEnd(7)} ${r.seconds.toFixed(2).padStart(7)} s ${(files / r.seconds).toFixed(0).padStart(7)} files/s  client peak RSS ${(r.rssKiB / 1024).toFixed(0)} MiB${LIVE_HEAP ? (Number.isNaN(r.liveMB) ? ' (no full GC)' : ` (live heap after full GC ≤ ${r.liveMB} MB)`) : ''}  server peak RSS so far ${(peakKiB(server.pid) / 1024).toFixed(0)} MiB${LIVE_HEAP ? (Number.isNaN(serverLive) ? ' (server: no full GC)' : ` (server live heap ≤ ${serverLive} MB)`) : ''}`);
    }
    const copy = path.join(work, `copy-${size}`, remote);
    let wrong = 0;
    for (const name of names) {
      const a = fs.readFileSync(path.join(src, name));
      const b = fs.existsSync(path.join(copy, name)) ? fs.readFileSync(path.join(copy, name)) : undefined;
      if (!b || !a.equals(b)) wrong++;
    }
    if (wrong) { failed = true; say(`${wrong} of ${size} files did not come back identical`); }
    row.serverPeakKiB = peakKiB(server.pid);
    table.push(row);
    fs.rmSync(path.join(work, `copy-${size}`), { recursive: true, force: true });
    fs.rmSync(src, { recursive: true, force: true });
  }
  say('files/s by size (and largest / smallest):');
  for (const step of ['put -r', 're-run', 'ls -r', 'get -r']) {
    const cells = table.map((row) => `${row.size}: ${row[step].filesps.toFixed(0)}`);
    const ratio = table[table.length - 1][step].filesps / table[0][step].filesps;
    say(`  ${step.padEnd(7)} ${cells.join('  ')}   ratio ${ratio.toFixed(2)}`);
  }
  if (table.length >= 3) {
    say('marginal files/s (files added ÷ seconds added), first interval → last, and the change:');
    for (const step of ['put -r', 're-run', 'ls -r', 'get -r']) {
      const rates = table.slice(1).map((row, at) => (row.size - table[at].size) / (row[step].seconds - table[at][step].seconds));
      const change = rates[rates.length - 1] / rates[0] - 1;
      say(`  ${step.padEnd(7)} ${rates.map((rate) => rate.toFixed(0)).join(' → ')}   ${change >= 0 ? '+' : ''}${(change * 100).toFixed(0)} %${change < -0.2 ? '  (slower per file at scale: over 20 %)' : ''}`);
    }
  }
  say('client peak RSS by size (MiB):');
  for (const step of ['put -r', 're-run', 'ls -r', 'get -r']) say(`  ${step.padEnd(7)} ${table.map((row) => `${row.size}: ${(row[step].rssKiB / 1024).toFixed(0)}`).join('  ')}`);
  say(`server peak RSS: ${table.map((row) => `${row.size}: ${(row.serverPeakKiB / 1024).toFixed(0)} MiB`).join('  ')}`);
  if (LIVE_HEAP) {
    say('live heap after a full GC, largest during each step (MB), client / server:');
    for (const step of ['put -r', 're-run', 'ls -r', 'get -r']) say(`  ${step.padEnd(7)} ${table.map((row) => `${row.size}: ${row[step].liveMB} / ${row[step].serverLiveMB}`).join('  ')}`);
  }
  stop();
  process.exitCode = failed ? 1 : 0;
})().catch((err) => {
  console.error(err);
  process.exitCode = 2;
});
