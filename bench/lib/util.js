'use strict';
// Small helpers shared by the harness: statistics, timing a child process, ports, /proc sampling,
// hashing for verification. Plain Node, no dependencies.
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const MiB = 1024 * 1024;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Nearest-rank percentile of a list (p in 0..100). */
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

const summarize = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, all: xs });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const log = (...args) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);

/** A free TCP port on 127.0.0.1 (bound then released: a small race, acceptable on loopback). */
const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

/** Resolves once something accepts on 127.0.0.1:port; rejects after timeoutMs. */
const waitPort = async (port, timeoutMs = 15000, isAlive = () => true) => {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (!isAlive()) throw new Error(`the server for port ${port} exited before it listened`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
};

const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { return 100; }
})();

/** utime+stime (+ reaped children) of a pid, in seconds; 0 if it is gone. */
const cpuSeconds = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state=0, ppid=1, ... utime=11, stime=12, cutime=13, cstime=14
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0;
  }
};

/** Busy CPU seconds of the whole machine so far (all cores; user+nice+system+irq+softirq+steal). */
const machineBusySeconds = () => {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / CLK_TCK;
};

/** CPU seconds of this process's reaped children (cutime+cstime): a finished client's CPU, whatever it was. */
const reapedChildrenCpuSeconds = () => {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
};

const selfCpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

/**
 * Waits until the rest of the machine is quiet: CPU used by processes other than this one, measured
 * over 0.3 s, below `maxCores` (our servers idle between runs). Gives up after maxWaitS.
 * Returns { waitedS, otherCores } (otherCores: the last measurement).
 */
const waitQuiet = async ({ maxCores = 0.25, maxWaitS = 30, onWait } = {}) => {
  if (!(maxWaitS > 0)) return { waitedS: 0, otherCores: undefined };
  const t0 = Date.now();
  let other = 0;
  for (let i = 0; ; i++) {
    const b0 = machineBusySeconds();
    const s0 = selfCpuSeconds();
    const w0 = process.hrtime.bigint();
    await sleep(300);
    const dt = Number(process.hrtime.bigint() - w0) / 1e9;
    other = Math.max(0, (machineBusySeconds() - b0 - (selfCpuSeconds() - s0)) / dt);
    const waited = (Date.now() - t0) / 1000;
    if (other <= maxCores || waited >= maxWaitS) return { waitedS: waited, otherCores: other };
    if (i === 0 && onWait) onWait(other);
  }
};

const statusKiB = (pid, key) => {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

/** pid and all its descendants (from /proc/<pid>/task/<tid>/children when available). */
const treePids = (root) => {
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const kids = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (kids) for (const k of kids.split(' ')) stack.push(Number(k));
      } catch { /* gone */ }
    }
  }
  return out;
};

/**
 * Peak memory of a server's process tree during one measured run. The root's kernel peak counter
 * (VmHWM) is reset first (`echo 5 > clear_refs`), so for a single-process server (rxfer, the Node
 * baseline) the peak is exact, not sampled. Forking servers (sshd, vsftpd, rsync) are sampled every
 * 50 ms as the sum of VmHWM over the live tree (each per-connection child's own peak), as in
 * shared/peers; a child living < 50 ms can be missed.
 */
class RssSampler {
  constructor(pid) {
    this.pid = pid;
    this.peakTreeKiB = 0;
    try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); this.resetOk = true; } catch { this.resetOk = false; }
    this.startRssKiB = statusKiB(pid, 'VmRSS');
    this.timer = setInterval(() => this.sample(), 50);
    this.sample();
  }
  sample() {
    let sum = 0;
    for (const p of treePids(this.pid)) sum += statusKiB(p, 'VmHWM');
    if (sum > this.peakTreeKiB) this.peakTreeKiB = sum;
  }
  stop() {
    clearInterval(this.timer);
    this.sample();
    return {
      resetOk: this.resetOk,
      startRssKiB: this.startRssKiB,
      hwmKiB: statusKiB(this.pid, 'VmHWM'),
      peakTreeKiB: this.peakTreeKiB,
      endRssKiB: statusKiB(this.pid, 'VmRSS'),
    };
  }
}

/**
 * Runs a command to completion and times it (wall clock from spawn to exit, so process start-up,
 * connect and close are included, for every tool alike). Resolves with { code, seconds, stdout,
 * stderr, json } where json is the last stdout line parsed as JSON, if it is JSON.
 */
const runTimed = (cmd, args, { timeoutMs = 300000, env, input, cwd } = {}) =>
  new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { if (stdout.length < 1e6) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < 1e6) stderr += d; });
    child.stdin.on('error', () => undefined);
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (err) => { stderr += String(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      let json;
      const last = stdout.trim().split('\n').pop();
      try { json = last ? JSON.parse(last) : undefined; } catch { json = undefined; }
      resolve({ code: timedOut ? 'timeout' : code ?? signal, seconds, stdout, stderr, json });
    });
  });

/** SHA-256 of a file in 1 MiB reads. */
const sha256File = async (file) => {
  const h = crypto.createHash('sha256');
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
};

/** Compares a file with an expected digest and size; returns an error string or null. */
const checkFile = async (file, expected) => {
  let st;
  try { st = await fs.promises.stat(file); } catch { return `${file}: missing`; }
  if (st.size !== expected.size) return `${file}: ${st.size} bytes, expected ${expected.size}`;
  const d = await sha256File(file);
  return d === expected.sha256 ? null : `${file}: sha256 ${d.slice(0, 12)}…, expected ${expected.sha256.slice(0, 12)}…`;
};

/** Checks every file of a source manifest ({name: {size, sha256}}) under dir; returns error strings. */
const checkTree = async (dir, manifest) => {
  const errors = [];
  for (const [name, exp] of Object.entries(manifest)) {
    const e = await checkFile(path.join(dir, name), exp);
    if (e) errors.push(e);
    if (errors.length > 5) break;
  }
  return errors;
};

/** Writes `bytes` of random data to file in 8 MiB pieces. */
const writeRandomFile = async (file, bytes) => {
  const fh = await fs.promises.open(file, 'w');
  const h = crypto.createHash('sha256');
  try {
    for (let left = bytes; left > 0; ) {
      const n = Math.min(left, 8 * MiB);
      const b = crypto.randomBytes(n);
      h.update(b);
      await fh.write(b);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return { size: bytes, sha256: h.digest('hex') };
};

/** count random files of `size` bytes named f0000… in dir; returns the manifest. */
const writeRandomTree = (dir, count, size) => {
  fs.mkdirSync(dir, { recursive: true });
  const manifest = {};
  const width = String(count - 1).length;
  for (let i = 0; i < count; i++) {
    const name = `f${String(i).padStart(Math.max(4, width), '0')}`;
    const b = crypto.randomBytes(size);
    fs.writeFileSync(path.join(dir, name), b);
    manifest[name] = { size, sha256: crypto.createHash('sha256').update(b).digest('hex') };
  }
  return manifest;
};

const syncFs = (dir) => {
  try { execFileSync('sync', ['-f', dir]); } catch { execFileSync('sync'); }
};

const sh = (cmd) => {
  try { return execFileSync('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return ''; }
};

/** CPU ms (user + system) of each thread of process `pid`, by thread id, from /proc/<pid>/task (clock ticks of 10 ms). */
const threadCpuByTid = (pid) => {
  const byTid = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byTid.set(Number(tid), (Number(fields[11]) + Number(fields[12])) * 10);
  }
  return byTid;
};

/**
 * CPU ms (user + system) of process `pid`'s main thread and of all its other threads together, from
 * /proc/<pid>/task (clock ticks of 10 ms).
 */
const threadCpuMs = (pid) => {
  let main = 0;
  let others = 0;
  for (const [tid, ms] of threadCpuByTid(pid)) {
    if (tid === pid) main += ms;
    else others += ms;
  }
  return { main, others };
};

/** The number given as `--name N` in `argv`, taken out of it (what is left are the positional arguments); `def` without one. */
const takeNumberOption = (argv, name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? def : Number(argv.splice(i, 2)[1]);
};

module.exports = {
  MiB, median, percentile, summarize, sleep, log, freePort, waitPort, cpuSeconds, statusKiB, treePids,
  machineBusySeconds, reapedChildrenCpuSeconds, selfCpuSeconds, waitQuiet,
  RssSampler, runTimed, sha256File, checkFile, checkTree, writeRandomFile, writeRandomTree, syncFs, sh,
  threadCpuMs, threadCpuByTid, takeNumberOption,
};
