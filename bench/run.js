#!/usr/bin/env node
// rxfer benchmark harness (issue 6). Plain Node, no dependencies beyond the project's own build.
//
//   node bench/run.js [--quick] [--peers] [--runs N] [--warmup N] [--only big,conc,many,cmd,load,startup]
//                     [--rxfer DIR] [--out DIR] [--keep] [--label TEXT] [--quiet-cores 0.25] [--max-wait S] [--pin]
//   node bench/run.js --rereport     (rebuild RESULTS.md + chart.svg from results/latest.json)
//
// Every case runs rxfer and its baselines in the same run, alternating within each round (the order
// rotates from round to round), and reports median, min–max and the ratio rxfer / baseline: on this
// shared 2-core machine absolute numbers mean little, ratios taken side by side mean a lot.
// Server and client are separate processes for every tool; the timed span is the client process
// from spawn to exit (start-up, connect, transfer, close), plus `sync -f` for the disk destination.
// Before each run the harness waits (up to --max-wait s, default 30; 0 = off, the --quick default) until other
// processes use less than --quiet-cores of CPU, and it records how much CPU the rest of the machine
// used during the run ("other load"): rows where that is high are noise, not rxfer.
// Every transfer's output is checked against its source (size + SHA-256); a wrong or missing byte
// makes the run exit 1. Times are never asserted.
//
// Output: raw JSON lines in bench/results/raw/ (one per measured run), and a summary: the full
// default run writes bench/results/latest.json, bench/RESULTS.md and bench/chart.svg; --quick writes
// the same files under bench/results/quick/, --only under bench/results/partial/ (or --out DIR).
'use strict';

// `npm run bench -- --s3`: 1 GiB through rxfer into Ceph RGW beside a direct SDK transfer (bench/s3.js).
if (process.argv.includes('--s3')) {
  require('./s3');
  return;
}
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const U = require('./lib/util');
const S = require('./lib/servers');
const { writeReport } = require('./lib/report');

const { MiB, log } = U;
const HERE = __dirname;

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
};
const flag = (name) => argv.includes(`--${name}`);
if (flag('help') || flag('h')) {
  process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, fs.readFileSync(__filename, 'utf8').split('\n').findIndex((l) => l.startsWith("'use strict'"))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
if (flag('rereport')) {
  // Rebuild RESULTS.md and chart.svg from the last full run's latest.json (after editing findings.md).
  const { rereport } = require('./lib/report');
  const files = rereport(path.join(HERE, 'results', 'latest.json'), HERE, path.join(HERE, 'findings.md'));
  process.stderr.write(`rewrote ${files.join(', ')}\n`);
  process.exit(0);
}
const QUICK = flag('quick');
const PEERS = flag('peers');
const KEEP = flag('keep');
// --pin: servers on CPU 1, clients on CPU 0 (taskset), a model of client and server on separate
// machines; the kernel's loopback work still lands on either. Off by default.
const PIN = flag('pin');
if (PIN) S.pinServers(1);
const ALL_CASES = ['big', 'conc', 'many', 'cmd', 'load', 'startup'];
const ONLY = opt('only', '') ? opt('only').split(',').map((s) => s.trim()) : ALL_CASES;
for (const c of ONLY) if (!ALL_CASES.includes(c)) throw new Error(`--only: unknown case ${c} (cases: ${ALL_CASES.join(', ')})`);
const RUNS = Number(opt('runs', QUICK ? 1 : 3));
// Before each run, wait (at most MAX_WAIT_S) until other processes use < QUIET_CORES of CPU.
const QUIET_CORES = Number(opt('quiet-cores', 0.25));
const MAX_WAIT_S = Number(opt('max-wait', QUICK ? 0 : 30));
const WARMUP = Number(opt('warmup', 0));
const RXFER_ROOT = path.resolve(opt('rxfer', path.join(HERE, '..')));
const MODE = QUICK ? 'quick' : ONLY.length < ALL_CASES.length ? 'partial' : 'full';
const OUT = path.resolve(opt('out', MODE === 'full' ? HERE : path.join(HERE, 'results', MODE)));

const P = QUICK
  ? { bigMiB: 64, concN: 4, concMiB: 16, n4k: 200, n20k: 0, n1m: 20, loadClients: 8, loadOps: 20, loadSize: 4096, startupRuns: 3, manyWindow: 64, netConc: 8 }
  : { bigMiB: 1024, concN: 16, concMiB: 256, n4k: 2000, n20k: Number(opt('n20k', 20000)), n1m: 200, loadClients: 64, loadOps: 20, loadSize: 4096, startupRuns: 10, manyWindow: 64, netConc: 8 };
const HWM = MiB; // the plain pipe's highWaterMark, both ends

// ---------------------------------------------------------------- state, cleanup
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const RAW_DIR = path.join(HERE, 'results', 'raw');
fs.mkdirSync(RAW_DIR, { recursive: true });
const RAW_FILE = path.join(RAW_DIR, `${stamp}-${MODE}${PEERS ? '-peers' : ''}.jsonl`);
const records = [];
const failures = []; // wrong bytes: exit 1
const problems = []; // tools that could not run (e.g. a peer failed to install): reported, not fatal
let W; // work dirs

const cleanupSync = () => {
  S.killAllSync();
  if (W && !KEEP) for (const d of [W.shm, W.disk]) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* */ } }
};
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { log(`${sig}: stopping`); process.exit(130); });

// ---------------------------------------------------------------- measuring
const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);
const rmrf = (p) => fs.rmSync(p, { recursive: true, force: true });

/**
 * One measured run: prep (untimed) → spawn client (timed) → `sync -f` if disk (timed) → verify
 * (untimed) → prep again, which deletes what the run wrote. Server RSS (kernel peak, reset before the run) and CPU are taken around the run.
 */
async function measure(m) {
  const { caseId, variant, tool, server, dest, exec, verify, units, round, warm } = m;
  if (m.prep) await m.prep();
  if (dest === 'disk') U.syncFs(W.disk);
  const quiet = await U.waitQuiet({ maxCores: QUIET_CORES, maxWaitS: MAX_WAIT_S, onWait: (c) => log(`waiting for the machine to be quiet (other processes use ${c.toFixed(2)} cores)`) });
  const sampler = server ? new U.RssSampler(server.pid) : undefined;
  const cpu0 = server ? U.cpuSeconds(server.pid) : 0;
  const busy0 = U.machineBusySeconds();
  const kids0 = U.reapedChildrenCpuSeconds();
  const self0 = U.selfCpuSeconds();
  const [cmd, args] = PIN ? ['taskset', ['-c', '0', exec.cmd, ...exec.args]] : [exec.cmd, exec.args];
  const r = await U.runTimed(cmd, args, { input: exec.input, timeoutMs: exec.timeoutMs ?? 600000, env: exec.env });
  let syncS = 0;
  if (dest === 'disk') {
    const t = process.hrtime.bigint();
    U.syncFs(W.disk);
    syncS = Number(process.hrtime.bigint() - t) / 1e9;
  }
  const clientCpuAll = U.reapedChildrenCpuSeconds() - kids0; // the client and anything it ran (sync too)
  const serverCpuS = server ? U.cpuSeconds(server.pid) - cpu0 : undefined;
  const busy = U.machineBusySeconds() - busy0;
  const selfS = U.selfCpuSeconds() - self0;
  await U.sleep(30);
  const mem = sampler ? sampler.stop() : undefined;
  const seconds = r.seconds + syncS;
  // CPU the rest of the machine used meanwhile (other sessions' work): the noise in this run
  const otherCpuS = Math.max(0, busy - (serverCpuS ?? 0) - clientCpuAll - selfS);
  const rec = {
    ts: new Date().toISOString(), mode: MODE, case: caseId, variant, tool: tool.id, toolLabel: tool.label, kind: tool.kind,
    round, warmup: !!warm, seconds, clientSeconds: r.seconds, syncSeconds: syncS, ...units,
    clientCpuS: clientCpuAll, clientInternalMs: r.json?.ms, runnerCpuS: selfS,
    otherCpuS, otherLoadPct: (100 * otherCpuS) / (seconds * os.cpus().length), quietWaitS: quiet.waitedS, otherCoresBefore: quiet.otherCores,
    server: server ? { cpuS: serverCpuS, hwmKiB: mem.hwmKiB, peakTreeKiB: mem.peakTreeKiB, startRssKiB: mem.startRssKiB, endRssKiB: mem.endRssKiB, exact: mem.resetOk !== false && server.single !== false } : undefined,
  };
  if (units.bytes) rec.mibps = units.bytes / MiB / seconds;
  if (units.files) rec.filesps = units.files / seconds;
  if (r.json?.latenciesMs) {
    const l = r.json.latenciesMs;
    rec.ops = l.length;
    rec.opsps = l.length / seconds;
    rec.latencyMs = { p50: U.percentile(l, 50), p90: U.percentile(l, 90), p99: U.percentile(l, 99), max: Math.max(...l) };
  }
  let errors = [];
  if (r.code !== 0) {
    // The error's own line says what failed; the last lines say where.
    const lines = (r.stderr || r.stdout).trim().split('\n');
    const what = lines.find((line) => /Error|ERR /.test(line)) ?? '';
    errors.push(`client exited ${r.code}: ${[what, ...lines.slice(-2)].join(' | ')}`);
  }
  errors = errors.concat(await verify());
  // What the run wrote goes at once: all of it lives in RAM on tmpfs (a full run writes > 20 GiB).
  if (m.prep) await m.prep();
  rec.verified = errors.length === 0;
  if (errors.length) {
    rec.errors = errors.slice(0, 6);
    failures.push(rec);
    log(`VERIFICATION FAILED ${caseId}/${variant}/${tool.id}: ${errors.slice(0, 3).join('; ')}`);
  }
  fs.appendFileSync(RAW_FILE, JSON.stringify(rec) + '\n');
  if (!warm) records.push(rec);
  const metric = rec.opsps ? `${rec.opsps.toFixed(0)} ops/s p99 ${rec.latencyMs.p99.toFixed(1)} ms` : caseId === 'many' || caseId === 'cmd' ? `${rec.filesps.toFixed(0)} files/s` : rec.mibps ? `${rec.mibps.toFixed(0)} MiB/s` : `${(seconds * 1000).toFixed(0)} ms`;
  const rss = rec.server ? `  server peak ${(Math.max(rec.server.hwmKiB, rec.server.peakTreeKiB) / 1024).toFixed(0)} MiB` : '';
  const noise = rec.otherLoadPct > 5 ? `  (other load ${rec.otherLoadPct.toFixed(0)}%)` : '';
  log(`${warm ? 'warmup ' : ''}${caseId} ${variant} ${tool.id.padEnd(12)} ${seconds.toFixed(2)} s  ${metric}${rss}${noise}${rec.verified ? '' : '  ✗ WRONG BYTES'}`);
  return rec;
}

/** Runs `rounds` rounds; in each, every (variant, tool) once, tools rotated per round. */
async function rounds(list, { runs = RUNS, warmup = WARMUP } = {}) {
  for (let r = -warmup; r < runs; r++) {
    for (const group of list) {
      for (const item of rotate(group, ((r % group.length) + group.length) % group.length)) {
        await measure({ ...item, round: r, warm: r < 0 });
      }
    }
  }
}

// ---------------------------------------------------------------- the node clients
const rxferClient = (spec) => ({ cmd: process.execPath, args: [path.join(HERE, 'clients/rxfer-client.js'), JSON.stringify({ rxferRoot: RXFER_ROOT, ...spec })] });
const netClient = (spec) => ({ cmd: process.execPath, args: [path.join(HERE, 'baselines/net-client.js'), JSON.stringify(spec)] });
/**
 * The CLI as users run it: bin/rxfer.js itself, which sh turns into node with its flags (and which drops
 * NODE_EXTRA_CA_CERTS for a command without TLS: parsing that bundle cost each command ≈ 30 ms here).
 */
const rxferCli = (args) => ({ cmd: path.join(RXFER_ROOT, 'bin/rxfer.js'), args });

const TOOLS = {
  rxfer: { id: 'rxfer', label: 'rxfer (client library)', kind: 'rxfer' },
  rxferB3: { id: 'rxfer-blake3', label: 'rxfer (client library), hash: blake3', kind: 'rxfer' },
  rxferTls: { id: 'rxfer-tls', label: 'rxfer over TLS 1.3 (AES-256-GCM)', kind: 'rxfer' },
  rxferTlsB3: { id: 'rxfer-tls-blake3', label: 'rxfer over TLS 1.3, hash: blake3', kind: 'rxfer' },
  rxferCli: { id: 'rxfer-cli', label: 'rxfer CLI (rxfer put/get)', kind: 'rxfer' },
  rxferCliTree: { id: 'rxfer-cli', label: 'rxfer CLI (rxfer put -r)', kind: 'rxfer' },
  rxferStream: { id: 'rxfer-upload', label: 'rxfer client.upload() per file (≤ 1 MiB and below the resume size: pipelined)', kind: 'rxfer' },
  net: { id: 'node-pipe', label: 'plain Node net pipe, highWaterMark 1 MiB', kind: 'baseline' },
  netMany: { id: 'node-pipe', label: `plain Node net, one connection per file, ${P.netConc} at a time`, kind: 'baseline' },
  rsync: { id: 'rsync', label: 'rsync daemon, --whole-file', kind: 'peer' },
  scp: { id: 'scp', label: 'scp (SFTP protocol, chacha20-poly1305)', kind: 'peer' },
  sftp: { id: 'sftp', label: 'sftp -b (chacha20-poly1305)', kind: 'peer' },
  vsftpd: { id: 'vsftpd', label: 'vsftpd + curl', kind: 'peer' },
};

// ---------------------------------------------------------------- setup
async function setup() {
  W = {
    shm: fs.mkdtempSync('/dev/shm/rxbench.'),
    disk: fs.mkdtempSync(path.join('/var/tmp', 'rxbench.')),
  };
  if (fs.statfsSync) {
    const t = U.sh(`stat -f -c %T ${W.disk}`);
    if (t === 'tmpfs') log(`WARNING: ${W.disk} is on tmpfs; the "disk" numbers are not disk numbers`);
  }
  W.src = path.join(W.shm, 'src');
  W.work = path.join(W.shm, 'work');
  fs.mkdirSync(W.src, { recursive: true });
  fs.mkdirSync(W.work, { recursive: true });
  // put -r's digest cache (as a user's ~/.cache/rxfer, but removed with the rest): its trees are this run's.
  process.env.RXFER_CACHE_DIR = path.join(W.work, 'client-cache');
  for (const d of ['shm', 'disk']) {
    for (const sub of ['root', 'root/up', 'client']) fs.mkdirSync(path.join(W[d], sub), { recursive: true });
    fs.chmodSync(path.join(W[d], 'root/up'), 0o777);
    fs.chmodSync(path.join(W[d], 'client'), 0o777);
  }
  log(`work dirs ${W.shm} ${W.disk}; rxfer under test: ${RXFER_ROOT}`);
  const t0 = Date.now();
  W.sources = {};
  if (ONLY.includes('big')) W.sources.big = await U.writeRandomFile(path.join(W.src, 'big.bin'), P.bigMiB * MiB);
  if (ONLY.includes('conc')) W.sources.conc = await U.writeRandomFile(path.join(W.src, 'conc.bin'), P.concMiB * MiB);
  if (ONLY.includes('many') || ONLY.includes('cmd')) {
    W.sources.s4k = U.writeRandomTree(path.join(W.src, 's4k'), P.n4k, 4096);
    W.sources.s1m = U.writeRandomTree(path.join(W.src, 's1m'), P.n1m, MiB);
  }
  if (ONLY.includes('cmd') && P.n20k > 0) W.sources.s20k = U.writeRandomTree(path.join(W.src, 's20k'), P.n20k, 4096);
  log(`sources written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  W.servers = {};
  for (const d of ['shm', 'disk']) {
    W.servers[`rxfer-${d}`] = await S.startRxfer({ rxferRoot: RXFER_ROOT, root: path.join(W[d], 'root'), workDir: W.work, tag: d });
    W.servers[`net-${d}`] = await S.startNet({ root: path.join(W[d], 'root'), workDir: W.work, tag: d, hwm: HWM });
  }
  // The same storage over TLS, for the big file on tmpfs: what encryption costs, next to scp/sftp (which always encrypt).
  if (ONLY.includes('big')) {
    W.tls = S.makeCert(W.work);
    W.servers['rxfer-tls-shm'] = await S.startRxfer({ rxferRoot: RXFER_ROOT, root: path.join(W.shm, 'root'), workDir: W.work, tag: 'tls-shm', tls: W.tls });
  }
  W.idleRss = Object.fromEntries(Object.entries(W.servers).map(([k, h]) => [k, U.statusKiB(h.pid, 'VmRSS')]));

  // Download sources are put on the server by rxfer itself (untimed, verified), so its digest
  // sidecars exist as they would for any file uploaded through it; the baselines read the same files.
  for (const d of ['shm', 'disk']) {
    const port = W.servers[`rxfer-${d}`].port;
    const root = path.join(W[d], 'root');
    const seed = async (exec, check) => {
      const r = await U.runTimed(exec.cmd, exec.args);
      const errs = r.code === 0 ? await check() : [`seeding failed: ${r.stderr.trim().slice(-400)}`];
      if (errs.length) throw new Error(`setup (${d}): ${errs.join('; ')}`);
    };
    if (W.sources.big) await seed(rxferClient({ op: 'put', port, local: path.join(W.src, 'big.bin'), remote: 'src.bin' }), async () => [await U.checkFile(path.join(root, 'src.bin'), W.sources.big)].filter(Boolean));
    if (W.sources.s4k) {
      await seed(rxferClient({ op: 'putmany', port, dir: path.join(W.src, 's4k'), prefix: 'many/s4k' }), () => U.checkTree(path.join(root, 'many/s4k'), W.sources.s4k));
      await seed(rxferClient({ op: 'putmany', port, dir: path.join(W.src, 's1m'), prefix: 'many/s1m' }), () => U.checkTree(path.join(root, 'many/s1m'), W.sources.s1m));
    }
    if (W.sources.s20k) await seed(rxferClient({ op: 'putmany', port, dir: path.join(W.src, 's20k'), prefix: 'many/s20k' }), () => U.checkTree(path.join(root, 'many/s20k'), W.sources.s20k));
  }
  U.syncFs(W.disk);
  if (PEERS) await setupPeers();
}

async function setupPeers() {
  const peers = require('./lib/peers');
  const avail = peers.install();
  W.peerVersions = peers.versions();
  W.peers = {};
  const need = (tools, what) => tools.every((t) => avail.includes(t)) || (problems.push(`${what}: not installed, skipped`), false);
  // vsftpd refuses a writable anonymous root; our servers run as root, which writes regardless.
  for (const d of ['shm', 'disk']) fs.chmodSync(path.join(W[d], 'root'), 0o555);
  const tryStart = async (key, fn) => {
    try { W.peers[key] = await fn(); } catch (e) { problems.push(`${key}: could not start (${e.message.split('\n')[0]})`); }
  };
  if (need(['rsync'], 'rsync')) await tryStart('rsync', () => peers.startRsyncd(W.work, { shm: path.join(W.shm, 'root'), disk: path.join(W.disk, 'root') }));
  if (need(['sshd', 'ssh', 'scp', 'sftp'], 'openssh')) await tryStart('ssh', () => peers.startSshd(W.work));
  if (need(['vsftpd', 'curl'], 'vsftpd + curl')) {
    for (const d of ['shm', 'disk']) await tryStart(`vsftpd-${d}`, () => peers.startVsftpd(W.work, path.join(W[d], 'root'), d));
  }
  for (const [k, h] of Object.entries(W.peers)) { h.single = false; W.idleRss[k] = U.statusKiB(h.pid, 'VmRSS'); }
}

// ---------------------------------------------------------------- case 1 (+2): one big file
function caseBig() {
  const src = path.join(W.src, 'big.bin');
  const exp = W.sources.big;
  const bytes = exp.size;
  const groups = [];
  for (const dir of ['up', 'down']) {
    for (const d of ['shm', 'disk']) {
      const variant = `${dir}-${d}`;
      const root = path.join(W[d], 'root');
      const rx = W.servers[`rxfer-${d}`];
      const nt = W.servers[`net-${d}`];
      const out = (tool) => (dir === 'up' ? path.join(root, 'up', `ul-${tool}.bin`) : path.join(W[d], 'client', `dl-${tool}.bin`));
      const item = (tool, server, exec) => ({
        caseId: 'big', variant, tool, server, dest: d, exec, units: { bytes },
        prep: async () => rmrf(out(tool.id)),
        verify: async () => [await U.checkFile(out(tool.id), exp)].filter(Boolean),
      });
      const g = [];
      if (dir === 'up') {
        g.push(item(TOOLS.rxfer, rx, rxferClient({ op: 'put', port: rx.port, local: src, remote: 'up/ul-rxfer.bin' })));
        g.push(item(TOOLS.rxferB3, rx, rxferClient({ op: 'put', port: rx.port, local: src, remote: 'up/ul-rxfer-blake3.bin', hash: 'blake3' })));
        if (d === 'shm') g.push(item(TOOLS.rxferCli, rx, rxferCli(['put', src, 'up/ul-rxfer-cli.bin', '-p', String(rx.port), '-q'])));
        if (d === 'shm') g.push(...tlsItems(item, (tls) => ({ op: 'put', local: src, remote: `up/ul-${tls}.bin` })));
        g.push(item(TOOLS.net, nt, netClient({ op: 'put', port: nt.port, local: src, remote: 'up/ul-node-pipe.bin', hwm: HWM })));
      } else {
        g.push(item(TOOLS.rxfer, rx, rxferClient({ op: 'get', port: rx.port, remote: 'src.bin', local: out('rxfer') })));
        g.push(item(TOOLS.rxferB3, rx, rxferClient({ op: 'get', port: rx.port, remote: 'src.bin', local: out('rxfer-blake3'), hash: 'blake3' })));
        if (d === 'shm') g.push(item(TOOLS.rxferCli, rx, rxferCli(['get', 'src.bin', out('rxfer-cli'), '-p', String(rx.port), '-q'])));
        if (d === 'shm') g.push(...tlsItems(item, (tls) => ({ op: 'get', remote: 'src.bin', local: out(tls) })));
        g.push(item(TOOLS.net, nt, netClient({ op: 'get', port: nt.port, remote: 'src.bin', local: out('node-pipe'), hwm: HWM })));
      }
      if (PEERS) g.push(...peerBigItems(dir, d, variant, src, exp, out, item));
      groups.push(g);
    }
  }
  return rounds(groups);
}

/** rxfer over TLS, with SHA-256 and with BLAKE3: the same client and storage, encrypted. */
function tlsItems(item, spec) {
  const srv = W.servers['rxfer-tls-shm'];
  return [
    item(TOOLS.rxferTls, srv, rxferClient({ ...spec(TOOLS.rxferTls.id), port: srv.port, tlsCa: W.tls.cert })),
    item(TOOLS.rxferTlsB3, srv, rxferClient({ ...spec(TOOLS.rxferTlsB3.id), port: srv.port, tlsCa: W.tls.cert, hash: 'blake3' })),
  ];
}

function peerBigItems(dir, d, variant, src, exp, out, item) {
  const items = [];
  const root = path.join(W[d], 'root');
  const rs = W.peers.rsync;
  const ssh = W.peers.ssh;
  const ftp = W.peers[`vsftpd-${d}`];
  if (rs) {
    items.push(item(TOOLS.rsync, rs, dir === 'up'
      ? { cmd: 'rsync', args: ['--whole-file', src, `rsync://127.0.0.1:${rs.port}/${d}/up/ul-rsync.bin`] }
      : { cmd: 'rsync', args: ['--whole-file', `rsync://127.0.0.1:${rs.port}/${d}/src.bin`, out('rsync')] }));
  }
  if (ssh) {
    items.push(item(TOOLS.scp, ssh, dir === 'up'
      ? { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), src, `root@127.0.0.1:${out('scp')}`] }
      : { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), `root@127.0.0.1:${path.join(root, 'src.bin')}`, out('scp')] }));
    items.push(item(TOOLS.sftp, ssh, {
      cmd: 'sftp', args: [...ssh.opts, '-P', String(ssh.port), '-b', '-', 'root@127.0.0.1'],
      input: dir === 'up' ? `put ${src} ${out('sftp')}\n` : `get ${path.join(root, 'src.bin')} ${out('sftp')}\n`,
    }));
  }
  if (ftp) {
    items.push(item(TOOLS.vsftpd, ftp, dir === 'up'
      ? { cmd: 'curl', args: ['-sS', '-T', src, `ftp://127.0.0.1:${ftp.port}/up/ul-vsftpd.bin`] }
      : { cmd: 'curl', args: ['-sS', '-o', out('vsftpd'), `ftp://127.0.0.1:${ftp.port}/src.bin`] }));
  }
  return items;
}

// ---------------------------------------------------------------- case 2b: concurrent uploads, RSS
function caseConc() {
  const src = path.join(W.src, 'conc.bin');
  const exp = W.sources.conc;
  const n = P.concN;
  const root = path.join(W.shm, 'root');
  const mk = (tool, server, exec) => ({
    caseId: 'conc', variant: `${n}x${P.concMiB}MiB-up-shm`, tool, server, dest: 'shm', exec, units: { bytes: exp.size * n, files: n },
    prep: async () => { for (let i = 0; i < n; i++) rmrf(path.join(root, 'up', `conc-${tool.id}-${i}.bin`)); },
    verify: async () => {
      const errs = [];
      for (let i = 0; i < n; i++) { const e = await U.checkFile(path.join(root, 'up', `conc-${tool.id}-${i}.bin`), exp); if (e) errs.push(e); }
      return errs;
    },
    after: true,
  });
  const rx = W.servers['rxfer-shm'];
  const nt = W.servers['net-shm'];
  return rounds([[
    mk(TOOLS.rxfer, rx, rxferClient({ op: 'putconc', port: rx.port, local: src, prefix: 'up/conc-rxfer', n })),
    mk(TOOLS.net, nt, netClient({ op: 'putconc', port: nt.port, local: src, prefix: 'up/conc-node-pipe', n, hwm: HWM })),
  ]]);
}

// ---------------------------------------------------------------- case 3: many files
function caseMany() {
  const groups = [];
  for (const set of ['s4k', 's1m']) {
    const label = set === 's4k' ? `${P.n4k}x4KiB` : `${P.n1m}x1MiB`;
    const srcDir = path.join(W.src, set);
    const manifest = W.sources[set];
    const files = Object.keys(manifest).length;
    const bytes = Object.values(manifest).reduce((a, b) => a + b.size, 0);
    for (const dir of ['up', 'down']) {
      for (const d of ['shm', 'disk']) {
        const variant = `${label}-${dir}-${d}`;
        const root = path.join(W[d], 'root');
        const rx = W.servers[`rxfer-${d}`];
        const nt = W.servers[`net-${d}`];
        const outDir = (tool) => (dir === 'up' ? path.join(root, 'up', `many-${tool}`) : path.join(W[d], 'client', `many-${tool}`));
        const item = (tool, server, exec) => ({
          caseId: 'many', variant, tool, server, dest: d, exec, units: { files, bytes },
          prep: async () => rmrf(outDir(tool.id)),
          verify: () => U.checkTree(outDir(tool.id), manifest),
        });
        const g = [];
        if (dir === 'up') {
          g.push(item(TOOLS.rxfer, rx, rxferClient({ op: 'putmany', port: rx.port, dir: srcDir, prefix: 'up/many-rxfer', window: P.manyWindow })));
          g.push(item(TOOLS.rxferB3, rx, rxferClient({ op: 'putmany', port: rx.port, dir: srcDir, prefix: 'up/many-rxfer-blake3', window: P.manyWindow, hash: 'blake3' })));
          g.push(item(TOOLS.rxferStream, rx, rxferClient({ op: 'putmany-stream', port: rx.port, dir: srcDir, prefix: 'up/many-rxfer-upload', window: P.manyWindow })));
          // What a user types: the CLI, process start and the LIST for skip-if-identical included.
          g.push(item(TOOLS.rxferCliTree, rx, rxferCli(['put', '-r', srcDir, 'up/many-rxfer-cli', '-p', String(rx.port), '-q'])));
          g.push(item(TOOLS.netMany, nt, netClient({ op: 'putmany', port: nt.port, dir: srcDir, prefix: 'up/many-node-pipe', conc: P.netConc })));
        } else {
          g.push(item(TOOLS.rxfer, rx, rxferClient({ op: 'getmany', port: rx.port, namesFrom: srcDir, prefix: `many/${set}`, outDir: outDir('rxfer'), window: P.manyWindow })));
          g.push(item(TOOLS.rxferB3, rx, rxferClient({ op: 'getmany', port: rx.port, namesFrom: srcDir, prefix: `many/${set}`, outDir: outDir('rxfer-blake3'), window: P.manyWindow, hash: 'blake3' })));
          g.push(item(TOOLS.netMany, nt, netClient({ op: 'getmany', port: nt.port, namesFrom: srcDir, prefix: `many/${set}`, outDir: outDir('node-pipe'), conc: P.netConc, hwm: HWM })));
        }
        if (PEERS) {
          const rs = W.peers.rsync;
          const ssh = W.peers.ssh;
          if (rs) {
            g.push(item(TOOLS.rsync, rs, dir === 'up'
              ? { cmd: 'rsync', args: ['-r', '--whole-file', `${srcDir}/`, `rsync://127.0.0.1:${rs.port}/${d}/up/many-rsync/`] }
              : { cmd: 'rsync', args: ['-r', '--whole-file', `rsync://127.0.0.1:${rs.port}/${d}/many/${set}/`, `${outDir('rsync')}/`] }));
          }
          if (ssh) {
            g.push(item({ ...TOOLS.scp, label: 'scp -r (SFTP protocol)' }, ssh, dir === 'up'
              ? { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), '-r', srcDir, `root@127.0.0.1:${outDir('scp')}`] }
              : { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), '-r', `root@127.0.0.1:${path.join(root, 'many', set)}`, outDir('scp')] }));
          }
        }
        groups.push(g);
      }
    }
  }
  return rounds(groups);
}

// ---------------------------------------------------------------- case 3b: whole commands, as typed (issue 20)
/**
 * What a user types at a shell, each a fresh process: `rxfer put -r`, `rxfer get -r` and the identical
 * re-run of `put -r`, beside `rsync -rt` (daemon on loopback) and `scp -r` with --peers, alternating
 * within each round. The re-run's destination already holds the tree (put there untimed by the same
 * command first): rxfer skips files whose size and digest match, rsync those whose size and mtime do.
 * On tmpfs only (the disk is case many's subject). 1 GiB put/get of one file against rsync and scp is
 * case big's rxfer-cli row.
 */
function caseCmd() {
  const groups = [];
  const d = 'shm';
  const root = path.join(W[d], 'root');
  const rx = W.servers[`rxfer-${d}`];
  const rs = PEERS ? W.peers.rsync : undefined;
  const ssh = PEERS ? W.peers.ssh : undefined;
  for (const set of ['s4k', 's20k', 's1m']) {
    const manifest = W.sources[set];
    if (!manifest) continue;
    const files = Object.keys(manifest).length;
    const label = `${files}x${set === 's1m' ? '1MiB' : '4KiB'}`;
    const bytes = Object.values(manifest).reduce((a, b) => a + b.size, 0);
    const srcDir = path.join(W.src, set);
    for (const dir of ['put', 'rerun', 'get']) {
      const variant = `${label}-${dir}-r`;
      // Per set: the sets share file names (f0000…), and a re-run must find its own tree in place, not
      // the other set's files under the same names (which made every "re-run" re-send them).
      const outDir = (tool) => (dir === 'get' ? path.join(W[d], 'client', `cmd-${set}-${tool}`) : path.join(root, 'up', `cmd-${set}-${dir}-${tool}`));
      const item = (tool, server, exec) => {
        const it = {
          caseId: 'cmd', variant, tool, server, dest: d, exec, units: { files, bytes },
          // `rxfer get -r many/s4k DIR` makes DIR/s4k (as `cp -r` into an existing folder would).
          verify: () => U.checkTree(dir === 'get' && tool.id === 'rxfer-cli' ? path.join(outDir(tool.id), set) : outDir(tool.id), manifest),
        };
        // A re-run finds the tree in place (copied once, untimed, by the same command); the others start empty.
        it.prep = dir === 'rerun'
          ? async () => { if (!fs.existsSync(outDir(tool.id))) { const r = await U.runTimed(exec.cmd, exec.args); if (r.code !== 0) throw new Error(`re-run seed of ${tool.id} failed: ${r.stderr.slice(-300)}`); } }
          : async () => rmrf(outDir(tool.id));
        return it;
      };
      const g = [];
      const cli = { ...TOOLS.rxferCli, label: `rxfer ${dir === 'get' ? 'get' : 'put'} -r (CLI, fresh process)` };
      if (dir === 'get') g.push(item(cli, rx, rxferCli(['get', '-r', `many/${set}`, outDir('rxfer-cli'), '-p', String(rx.port), '-q'])));
      else g.push(item(cli, rx, rxferCli(['put', '-r', srcDir, `up/cmd-${set}-${dir}-rxfer-cli`, '-p', String(rx.port), '-q'])));
      if (rs) {
        g.push(item({ ...TOOLS.rsync, label: 'rsync -rt, daemon on loopback' }, rs, dir === 'get'
          ? { cmd: 'rsync', args: ['-rt', `rsync://127.0.0.1:${rs.port}/${d}/many/${set}/`, `${outDir('rsync')}/`] }
          : { cmd: 'rsync', args: ['-rt', `${srcDir}/`, `rsync://127.0.0.1:${rs.port}/${d}/up/cmd-${set}-${dir}-rsync/`] }));
      }
      if (ssh && dir !== 'rerun') {
        // scp has no re-run that skips: it copies everything again.
        g.push(item({ ...TOOLS.scp, label: 'scp -r' }, ssh, dir === 'get'
          ? { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), '-r', `root@127.0.0.1:${path.join(root, 'many', set)}`, outDir('scp')] }
          : { cmd: 'scp', args: [...ssh.opts, '-P', String(ssh.port), '-r', srcDir, `root@127.0.0.1:${outDir('scp')}`] }));
      }
      groups.push(g);
    }
  }
  // Clean up what the re-runs kept (all of it is in RAM).
  return rounds(groups).finally(() => {
    for (const set of ['s4k', 's20k', 's1m']) for (const t of ['rxfer-cli', 'rsync']) rmrf(path.join(root, 'up', `cmd-${set}-rerun-${t}`));
  });
}

// ---------------------------------------------------------------- case 4: many clients at once
function caseLoad() {
  const { loadClients: clients, loadOps: ops, loadSize: size } = P;
  const root = path.join(W.shm, 'root');
  const mk = (tool, server, client) => {
    const manifest = path.join(W.work, `load-${tool.id}.json`);
    const prefix = `up/load-${tool.id}`;
    return {
      caseId: 'load', variant: `${clients}clients-x${ops}-4KiB-shm`, tool, server, dest: 'shm',
      exec: client({ op: 'load', port: server.port, clients, ops, size, prefix, manifest }), units: { bytes: clients * ops * size * 2 },
      prep: async () => { rmrf(path.join(root, prefix)); rmrf(manifest); },
      verify: async () => (fs.existsSync(manifest) ? U.checkTree(path.join(root, prefix), JSON.parse(fs.readFileSync(manifest, 'utf8'))) : ['no manifest written']),
    };
  };
  return rounds([[mk(TOOLS.rxfer, W.servers['rxfer-shm'], rxferClient), mk({ ...TOOLS.net, label: 'plain Node net, one connection per operation' }, W.servers['net-shm'], netClient)]]);
}

// ---------------------------------------------------------------- case 5: CLI start-up
function caseStartup() {
  const mk = (tool, exec) => ({ caseId: 'startup', variant: 'wall-ms', tool, dest: 'none', exec, units: {}, verify: async () => [] });
  return rounds([[
    mk({ id: 'rxfer-help', label: 'rxfer --help', kind: 'rxfer' }, rxferCli(['--help'])),
    mk({ id: 'node-e0', label: 'node -e 0', kind: 'baseline' }, { cmd: process.execPath, args: ['-e', '0'] }),
  ]], { runs: P.startupRuns, warmup: 1 });
}

// ---------------------------------------------------------------- machine info
function machineInfo() {
  const cpu = U.sh("lscpu | sed -n 's/^Model name: *//p'") || os.cpus()[0]?.model;
  const gitInfo = (dir) => {
    const head = U.sh(`git -C '${dir}' rev-parse --short HEAD 2>/dev/null`);
    if (!head) return 'not a git checkout';
    const dirty = U.sh(`git -C '${dir}' status --porcelain -- src 2>/dev/null | head -1`);
    return `${head}${dirty ? ' (src/ has uncommitted changes)' : ''}`;
  };
  const distAge = (() => {
    const newest = U.sh(`find '${RXFER_ROOT}/src' -name '*.ts' -newer '${RXFER_ROOT}/dist/cli/main.js' 2>/dev/null | head -3`);
    if (newest) return `dist/ is OLDER than ${newest.split('\n').join(', ')}: run npm run build`;
    // By bin/rxfer.js's own rule (bin/client-bundle.js): the client commands run bundled only from a current bundle.
    const bundled = require(path.join(RXFER_ROOT, 'bin/client-bundle.js')).currentBundle(RXFER_ROOT) !== undefined;
    return `dist/ is newer than every src/*.ts; the client commands run ${bundled ? 'bundled' : 'UNBUNDLED (no current dist/cli/client-bundle.js): run npm run build'}`;
  })();
  return {
    date: new Date().toISOString(),
    cpu: `${cpu}, ${os.cpus().length} cores`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    kernel: os.release(),
    os: U.sh('. /etc/os-release; echo "$PRETTY_NAME"'),
    node: process.version,
    disk: `${U.sh("findmnt -n -o SOURCE,FSTYPE --target /var/tmp")} (/var/tmp)`,
    loadavgStart: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    rxferRoot: RXFER_ROOT,
    rxferVersion: JSON.parse(fs.readFileSync(path.join(RXFER_ROOT, 'package.json'), 'utf8')).version,
    rxferGit: gitInfo(RXFER_ROOT),
    dist: distAge,
    label: opt('label', ''),
  };
}

// ---------------------------------------------------------------- main
(async () => {
  const t0 = Date.now();
  if (!fs.existsSync(path.join(RXFER_ROOT, 'dist/client/index.js'))) {
    console.error(`${RXFER_ROOT}/dist is missing: run npm run build first`);
    process.exit(2);
  }
  const machine = machineInfo();
  if (machine.dist.startsWith('dist/ is OLDER')) log(`WARNING: ${machine.dist}`);
  machine.pinned = PIN;
  log(`mode ${MODE}${PEERS ? ' + peers' : ''}${PIN ? ', pinned (servers CPU 1, clients CPU 0)' : ''}, runs ${RUNS}, cases ${ONLY.join(',')}; raw → ${path.relative(process.cwd(), RAW_FILE)}`);
  await setup();
  const cases = { big: caseBig, conc: caseConc, many: caseMany, cmd: caseCmd, load: caseLoad, startup: caseStartup };
  for (const c of ALL_CASES) {
    if (!ONLY.includes(c)) continue;
    const tc = Date.now();
    await cases[c]();
    log(`case ${c} done in ${((Date.now() - tc) / 1000).toFixed(0)} s`);
  }
  machine.loadavgEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  machine.wallSeconds = Math.round((Date.now() - t0) / 1000);
  machine.peerVersions = W.peerVersions;
  const serverIdleRss = W.idleRss;
  await S.stopAll();
  const summary = writeReport({
    outDir: OUT, mode: MODE, peers: PEERS, pinned: PIN, params: { ...P, runs: RUNS, warmup: WARMUP, hwm: HWM }, machine, records, failures, problems,
    serverIdleRss, rawFile: path.relative(HERE, RAW_FILE), findingsFile: MODE === 'full' ? path.join(HERE, 'findings.md') : undefined,
  });
  log(`wrote ${summary.join(', ')} in ${machine.wallSeconds} s total`);
  if (failures.length) {
    log(`${failures.length} measured run(s) moved WRONG BYTES; see above. Exit 1.`);
    process.exitCode = 1;
  }
})().catch(async (err) => {
  console.error(err && err.stack ? err.stack : err);
  await S.stopAll().catch(() => undefined);
  process.exitCode = 2;
});
