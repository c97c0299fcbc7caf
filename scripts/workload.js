'use strict';
// The mixed workload of issue 17's load, kill-loop and soak runs, shared by scripts/soak.js,
// scripts/kill-loop.js and test/reliability/*.test.ts: a real `rxfer serve` process (compiled dist/,
// started as users start it) and many clients of the rxfer client library doing uploads, verified
// downloads, lists, stats, renames and deletes on a small pool of overlapping names.
//
// Every uploaded file describes itself ("rxfer-check <length> <sha256>\n" then the body), so any
// file found under a real name, on disk or downloaded, can be checked to be one complete upload
// without remembering what was uploaded: a partial or mixed file fails its own check.
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const REPO = path.join(__dirname, '..');
const BIN = path.join(REPO, 'bin', 'rxfer.js');
const PROBE = path.join(__dirname, 'server-probe.js');
const KiB = 1024;
const MiB = 1024 * KiB;

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Self-describing content

/** Random-looking bytes without paying randomBytes for every megabyte: slices of one random pool. */
const POOL = crypto.randomBytes(4 * MiB);

/** A complete file of `size` body bytes: a unique nonce, then a slice of the pool, behind its header. */
const makeContent = (size) => {
  const nonce = crypto.randomBytes(16);
  const parts = [nonce];
  for (let rest = size - nonce.length; rest > 0; ) {
    const take = Math.min(rest, POOL.length);
    const from = Math.floor(Math.random() * (POOL.length - take));
    parts.push(POOL.subarray(from, from + take));
    rest -= take;
  }
  const body = Buffer.concat(parts).subarray(0, size);
  return Buffer.concat([Buffer.from(`rxfer-check ${size} ${sha256(body)}\n`), body]);
};

/** Null if `data` is one complete file made by makeContent; else what is wrong with it. */
const checkContent = (data) => {
  const newline = data.indexOf(10);
  if (newline < 0 || newline > 120) return `no header (${data.length} bytes)`;
  const match = /^rxfer-check (\d+) ([0-9a-f]{64})$/.exec(data.subarray(0, newline).toString('latin1'));
  if (!match) return 'a malformed header';
  const body = data.subarray(newline + 1);
  if (body.length !== Number(match[1])) return `${body.length} body bytes of ${match[1]}`;
  if (sha256(body) !== match[2]) return 'a body that does not hash to its header';
  return null;
};

/** Body sizes: mostly small files, some medium, a few above resume-min (1 MiB: kept partial uploads). */
const pickSize = (largeShare = 0.05) => {
  const roll = Math.random();
  if (roll < largeShare) return 1 * MiB + Math.floor(Math.random() * 2 * MiB);
  if (roll < 0.3) return 64 * KiB + Math.floor(Math.random() * 448 * KiB);
  return 1 + Math.floor(Math.random() * 16 * KiB);
};

// ---------------------------------------------------------------------------------------------
// The server process

/** A free TCP port on 127.0.0.1 (bound then released: a small race, acceptable on loopback). */
const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

/** The node flags bin/rxfer.js gives itself (its second line): what users get. */
const launchFlags = () => {
  const line = fs.readFileSync(BIN, 'utf8').split('\n', 2)[1] ?? '';
  const match = /^':' \/\/; exec node\b(.*) "\$0" "\$@"$/.exec(line);
  return match ? match[1].trim().split(/\s+/).filter(Boolean) : [];
};

/**
 * `rxfer serve` in a child process on 127.0.0.1:`port` over `root`, logging (level warn) to
 * `<workDir>/server.log`, with scripts/server-probe.js preloaded so that `probe()` can ask it for its
 * RSS (after gc), descriptors and live timers. Resolves once it accepts connections.
 */
const startServer = async ({ root, workDir, port, limits = {}, server = {}, logLevel = 'warn', startTimeoutMs = 20_000 }) => {
  port ??= await freePort();
  fs.mkdirSync(workDir, { recursive: true });
  const configPath = path.join(workDir, 'server.json');
  fs.writeFileSync(
    configPath,
    JSON.stringify({
      server: { host: '127.0.0.1', port, maxConnections: 5000, maxConnectionsPerIp: 5000, shutdownGraceMs: 0, ...server },
      storage: { kind: 'local', root },
      limits: { maxTransfersPerUser: 10_000, ...limits },
      auth: { anonymous: 'write' },
      log: { level: logLevel },
    }),
  );
  const logPath = path.join(workDir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  // Through sh, to raise the child's soft limit on open files to the hard one first (1,000 idle
  // connections need more than some systems' default of 1,024); exec keeps the pid the server's.
  const raiseFdLimit = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"';
  const child = spawn('/bin/sh', ['-c', raiseFdLimit, process.execPath, ...launchFlags(), '--require', PROBE, BIN, 'serve', '--config', configPath], {
    stdio: ['ignore', log, log, 'ipc'],
  });
  fs.closeSync(log);
  let exited = null;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const pending = new Map();
  let nextAsk = 1;
  child.on('message', (message) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    waiter?.(message);
  });
  const handle = {
    pid: child.pid,
    port,
    logPath,
    child,
    get exited() {
      return exited;
    },
    /** The server's own figures: rss (bytes, after gc if asked), fds, live timers, active handles. */
    probe: ({ gc = true } = {}) =>
      new Promise((resolve, reject) => {
        if (exited) return reject(new Error('the server has exited'));
        const id = nextAsk++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('the server did not answer the probe'));
        }, 10_000);
        pending.set(id, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        child.send({ id, gc });
      }),
    /** SIGKILL: no clean-up of any kind, as a power cut or the OOM killer gives. */
    kill: async () => {
      if (!exited) child.kill('SIGKILL');
      return exit;
    },
    /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
    stop: async (graceMs = 10_000) => {
      if (exited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  };
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`the server exited (${JSON.stringify(exited)}) before it listened:\n${fs.readFileSync(logPath, 'utf8').slice(-3000)}`);
    if (await accepts(port)) return handle;
    if (Date.now() > deadline) {
      await handle.kill();
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${startTimeoutMs} ms:\n${fs.readFileSync(logPath, 'utf8').slice(-3000)}`);
    }
    await sleep(50);
  }
};

const accepts = (port) =>
  new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

// ---------------------------------------------------------------------------------------------
// The storage root, checked from outside

/** Every file under `root` (relative paths), without following links. */
const walk = (root, rel = '') => {
  let entries;
  try {
    entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
  const files = [];
  for (const entry of entries) {
    const name = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...walk(root, name));
    else files.push(name);
  }
  return files;
};

/** The server's metadata folder (staging, kept partial uploads, digest logs). */
const META = '.rxfer';

/**
 * What is under the root: files under real names, each checked to be one complete upload (`bad`
 * lists those that are not), staging files outside the metadata folder, and the metadata folder's
 * size in files and bytes (and its staging part: uploads in progress, none once the server is down).
 */
const inspectRoot = (root) => {
  const files = walk(root);
  const real = [];
  const bad = [];
  const strayStaging = [];
  let metaFiles = 0;
  let metaBytes = 0;
  let stagingFiles = 0;
  let partials = 0;
  for (const file of files) {
    if (file === META || file.startsWith(`${META}/`)) {
      metaFiles++;
      metaBytes += fs.statSync(path.join(root, file)).size;
      if (file.startsWith(`${META}/staging/`)) stagingFiles++;
      if (/^\.rxfer\/partials\/[0-9a-f]{64}$/.test(file)) partials++;
      continue;
    }
    if (file.split('/').some((segment) => segment.startsWith('.rxfer-'))) {
      strayStaging.push(file);
      continue;
    }
    real.push(file);
    const problem = checkContent(fs.readFileSync(path.join(root, file)));
    if (problem) bad.push(`${file}: ${problem}`);
  }
  return { real, bad, strayStaging, metaFiles, metaBytes, stagingFiles, partials };
};

// ---------------------------------------------------------------------------------------------
// The clients

/** Outcomes a client expects on overlapping names: someone else deleted, renamed or took the name. */
const EXPECTED_CODES = new Set(['NOT_FOUND', 'EXISTS']);

const OPS = [
  ['upload', 30],
  ['download', 25],
  ['stat', 15],
  ['list', 8],
  ['rename', 10],
  ['delete', 12],
];
const OP_TOTAL = OPS.reduce((sum, [, weight]) => sum + weight, 0);
const pickOp = () => {
  let roll = Math.random() * OP_TOTAL;
  for (const [op, weight] of OPS) if ((roll -= weight) < 0) return op;
  return 'stat';
};

/** Overlapping names: `folders` folders of `perFolder` files each, shared by every client. */
const makeNames = (folders = 4, perFolder = 12) => {
  const names = [];
  for (let f = 0; f < folders; f++) for (let i = 0; i < perFolder; i++) names.push(`w/d${f}/f${i}.bin`);
  return { names, folders: Array.from({ length: folders }, (_, f) => `w/d${f}`) };
};

const pick = (list) => list[Math.floor(Math.random() * list.length)];

/** Counters and latencies of a run; `window()` returns and resets the figures since the last call. */
class Stats {
  constructor() {
    this.ops = 0;
    this.byOp = Object.fromEntries(OPS.map(([op]) => [op, 0]));
    this.expected = {};
    this.unexpected = [];
    this.unexpectedCount = 0;
    this.digestMismatches = 0;
    this.corruptDownloads = 0;
    this.bytesUp = 0;
    this.bytesDown = 0;
    this.latencies = [];
    this.windowStart = Date.now();
    this.windowOps = 0;
    this.windowBytes = 0;
    this.allLatencies = [];
  }
  done(op, ms, bytes = 0) {
    this.ops++;
    this.windowOps++;
    this.windowBytes += bytes;
    this.byOp[op]++;
    this.latencies.push(ms);
    // The whole run's percentiles from a bounded sample: at most 200,000 latencies kept.
    if (this.allLatencies.length < 200_000) this.allLatencies.push(ms);
    else this.allLatencies[Math.floor(Math.random() * 200_000)] = ms;
  }
  failed(op, err) {
    if (EXPECTED_CODES.has(err.code)) {
      this.expected[err.code] = (this.expected[err.code] ?? 0) + 1;
      return;
    }
    if (err.code === 'CHECKSUM_MISMATCH' && op === 'download') this.digestMismatches++;
    this.unexpectedCount++;
    if (this.unexpected.length < 20) this.unexpected.push(`${op}: ${err.code ?? 'no code'} ${err.message}`);
  }
  window() {
    const seconds = (Date.now() - this.windowStart) / 1000;
    const figures = {
      seconds,
      opsPerS: this.windowOps / seconds,
      mibPerS: this.windowBytes / MiB / seconds,
      p50: percentile(this.latencies, 50),
      p99: percentile(this.latencies, 99),
    };
    this.latencies = [];
    this.windowOps = 0;
    this.windowBytes = 0;
    this.windowStart = Date.now();
    return figures;
  }
}

/** Nearest-rank percentile (p in 0..100); NaN for no samples. */
const percentile = (values, p) => {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

const loadClientLibrary = () => require(path.join(REPO, 'dist', 'client', 'index.js'));

/**
 * One client: one connection, one request at a time, until `run.stopping`. A lost connection is
 * reconnected (and counted as unexpected unless the run expects it: the kill loop). `inFlight`, if
 * given, is a Set that holds the uploads under way ({ name, content }; several clients may upload
 * one name at once), so that a kill loop knows which may have been kept.
 */
const runClient = async ({ port, names, stats, run, largeShare = 0.05, inFlight, connectionLossExpected = false }) => {
  const { RxferClient } = loadClientLibrary();
  let client;
  while (!run.stopping) {
    try {
      // A long guard: 200 clients in one process on a busy machine may take seconds to see a
      // greeting that came at once; a server that never greets still fails the run.
      client ??= await RxferClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 60_000 });
    } catch (err) {
      if (run.stopping) break;
      if (!connectionLossExpected) stats.failed('connect', err);
      await sleep(100);
      continue;
    }
    const op = pickOp();
    const started = performance.now();
    let moved = 0;
    let upload;
    const name = pick(names.names);
    try {
      switch (op) {
        case 'upload': {
          const content = makeContent(pickSize(largeShare));
          upload = { name, content };
          inFlight?.add(upload);
          const result = await client.uploadBuffer(name, content);
          if (result.digest !== sha256(content)) throw Object.assign(new Error(`the server stored ${result.digest}`), { code: 'CHECKSUM_MISMATCH' });
          moved = content.length;
          break;
        }
        case 'download': {
          const { data } = await client.downloadBuffer(name);
          const problem = checkContent(data);
          if (problem) {
            stats.corruptDownloads++;
            throw Object.assign(new Error(`downloaded ${name}: ${problem}`), { code: 'CORRUPT_FILE' });
          }
          moved = data.length;
          break;
        }
        case 'stat':
          await client.stat(name);
          break;
        case 'list':
          await client.list(pick(names.folders));
          break;
        case 'rename':
          await client.rename(name, pick(names.names));
          break;
        default:
          await client.remove(name);
      }
      stats.done(op, performance.now() - started, moved);
    } catch (err) {
      if (run.stopping) break;
      const lost = client.isClosed || err.code === 'CONNECTION_LOST' || err.code === 'ECONNRESET' || err.code === 'EPIPE';
      if (!(lost && connectionLossExpected)) stats.failed(op, err);
      if (lost || err.code === 'INTERNAL' || err.code === 'PROTOCOL_VIOLATION') {
        client.close();
        client = undefined;
      }
    } finally {
      if (upload) inFlight?.delete(upload);
    }
  }
  if (client) await client.quit().catch(() => client.close());
};

/**
 * `clients` clients against `port` until `run.stopping` is set (by the caller, or after
 * `durationMs`). Resolves once every client has stopped.
 */
const runWorkload = async ({ port, clients, durationMs, run = { stopping: false }, stats = new Stats(), names = makeNames(), ...options }) => {
  const timer = durationMs === undefined ? undefined : setTimeout(() => (run.stopping = true), durationMs);
  await Promise.all(Array.from({ length: clients }, () => runClient({ port, names, stats, run, ...options })));
  clearTimeout(timer);
  return stats;
};

/** This process's soft limit on open files (from /proc/self/limits; Infinity if unknown or unlimited). */
const openFileLimit = () => {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return match && match[1] !== 'unlimited' ? Number(match[1]) : Infinity;
  } catch {
    return Infinity;
  }
};

module.exports = {
  openFileLimit,
  KiB,
  MiB,
  sha256,
  sleep,
  makeContent,
  checkContent,
  freePort,
  startServer,
  inspectRoot,
  makeNames,
  Stats,
  percentile,
  runWorkload,
  loadClientLibrary,
};
