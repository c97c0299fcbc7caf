'use strict';
// Starting and stopping the servers under test, each as its own process, on 127.0.0.1 and a free
// port. Every process started here is recorded and ended by pid (see stopAll).
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { freePort, waitPort, sleep } = require('./util');

const started = new Set();
/** --pin: servers run on this CPU (taskset -c), so that client and server each have a core. */
let serverCpu;
const pinServers = (cpu) => { serverCpu = cpu; };

/** Starts `cmd args`, logs to logFile, waits until `port` accepts. Returns {pid, port, child, stop}. */
const startProcess = async (name, cmd, args, port, logFile, opts = {}) => {
  const out = fs.openSync(logFile, 'a');
  // taskset execs the command, so the pid is the server's own
  const [c, a] = serverCpu === undefined ? [cmd, args] : ['taskset', ['-c', String(serverCpu), cmd, ...args]];
  const child = spawn(c, a, { stdio: ['ignore', out, out], env: opts.env ?? process.env, cwd: opts.cwd });
  fs.closeSync(out);
  let exited = false;
  child.on('exit', () => { exited = true; started.delete(handle); });
  const handle = {
    name,
    pid: child.pid,
    port,
    child,
    get alive() { return !exited; },
    async stop(signal = 'SIGTERM', graceMs = 15000) {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, graceMs);
      await done;
      clearTimeout(t);
    },
  };
  started.add(handle);
  try {
    await waitPort(port, 20000, () => !exited);
  } catch (err) {
    await handle.stop('SIGKILL');
    const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
    throw new Error(`${name}: ${err.message}\n${tail}`);
  }
  return handle;
};

/**
 * The node flags bin/rxfer.js gives itself (its second line, run by sh when `rxfer` is executed):
 * what users get, so what the benchmark passes when it starts `node bin/rxfer.js`. The line may
 * exec node twice, `[ "$1" = serve ] && exec node <server flags> "$0" "$@"; exec node <client
 * flags> "$0" "$@"`: `{ serve: true }` takes the first, anything else the last. An older build with
 * one exec gives the same flags to both; one without such a line, none.
 */
const launchArgs = (rxferRoot, { serve = false } = {}) => {
  const lines = fs.readFileSync(path.join(rxferRoot, 'bin/rxfer.js'), 'utf8').split('\n', 2);
  if (!/^':' \/\/;/.test(lines[1] ?? '')) return [];
  const execs = [...lines[1].matchAll(/exec node\b(.*?) "\$0" "\$@"/g)].map((m) => m[1].trim().split(/\s+/).filter(Boolean));
  if (execs.length === 0) return [];
  return serve ? execs[0] : execs[execs.length - 1];
};

/**
 * `rxfer serve` as users run it (bin/rxfer.js, compiled dist/), with log level warn so that logging
 * one line per request does not cost CPU in the measurement. nodeArgs: e.g. ['--cpu-prof', …];
 * tls: { cert, key } (PEM paths) serves TLS, as `server.tls` in the config.
 */
const startRxfer = async ({ rxferRoot, root, workDir, tag, nodeArgs = [], logLevel = 'warn', tls }) => {
  const port = await freePort();
  // Every benchmark client comes from 127.0.0.1: lift the per-address connection limit (default 32)
  // above the 64-client case. Builds from before that key existed would reject it (strict schema).
  const schema = path.join(rxferRoot, 'dist/config/config.schema.js');
  const perIp = fs.existsSync(schema) && fs.readFileSync(schema, 'utf8').includes('maxConnectionsPerIp');
  const config = {
    server: { host: '127.0.0.1', port, shutdownGraceMs: 2000, ...(perIp && { maxConnectionsPerIp: 1024 }), ...(tls && { tls }) },
    storage: { kind: 'local', root },
    log: { level: logLevel },
  };
  const cfgFile = path.join(workDir, `rxfer-${tag}.json`);
  fs.writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const h = await startProcess(`rxfer-${tag}`, process.execPath, [...launchArgs(rxferRoot, { serve: true }), ...nodeArgs, path.join(rxferRoot, 'bin/rxfer.js'), 'serve', '--config', cfgFile], port, path.join(workDir, `rxfer-${tag}.log`));
  h.config = config;
  return h;
};

/** The plain Node pipe (baselines/net-server.js) with the given highWaterMark on its fs streams. */
const startNet = async ({ root, workDir, tag, hwm }) => {
  const port = await freePort();
  return startProcess(`net-${tag}`, process.execPath, [path.join(__dirname, '../baselines/net-server.js'), String(port), root, ...(hwm ? [String(hwm)] : [])], port, path.join(workDir, `net-${tag}.log`));
};

const stopAll = async () => {
  await Promise.all([...started].map((h) => h.stop('SIGTERM', 5000).catch(() => undefined)));
};

/** Synchronous last resort (process 'exit'): SIGKILL whatever is still running. */
const killAllSync = () => {
  for (const h of started) { try { process.kill(h.pid, 'SIGKILL'); } catch { /* gone */ } }
};

/**
 * An experiment's folder on tmpfs, removed at exit with every server the run started (and `also`, for
 * what else the caller must stop first). put -r's digest cache goes inside it (`cache`, unless the caller
 * names another), not in ~/.cache/rxfer: each run starts with none and leaves none behind.
 */
const workFolder = (name, { cache, also } = {}) => {
  const work = fs.mkdtempSync(`/dev/shm/rxfer-${name}-`);
  process.env.RXFER_CACHE_DIR = cache ?? path.join(work, 'client-cache');
  process.on('exit', () => {
    also?.();
    killAllSync();
    fs.rmSync(work, { recursive: true, force: true });
  });
  return work;
};

/** A throw-away self-signed P-256 certificate for 127.0.0.1 (openssl), for the TLS rows. */
const makeCert = (dir) => {
  const cert = path.join(dir, 'tls-cert.pem');
  const key = path.join(dir, 'tls-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'pipe' });
  return { cert, key };
};

module.exports = { launchArgs, pinServers, startProcess, startRxfer, startNet, stopAll, killAllSync, sleep, makeCert, workFolder };
