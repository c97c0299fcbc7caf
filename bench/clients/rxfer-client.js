#!/usr/bin/env node
// The rxfer side of every measured run: the project's client library (dist/client), in its own
// process like every baseline client. usage: node rxfer-client.js '<json spec>'; spec.op is one of
//   put        {port, local, remote}                  client.upload (streamed, waits for OK file recv)
//   get        {port, remote, local}                  client.download (staging file, verified, fsynced)
//   putmany    {port, dir, prefix, window}            readFile + client.uploadBuffer, pipelined on ONE
//                                                     connection, up to `window` requests in flight
//   putmany-stream {port, dir, prefix, window}        client.upload per file on one connection
//   getmany    {port, namesFrom, prefix, outDir, window}  client.download per file, one connection
//   putconc    {port, local, prefix, n}               n connections, each client.upload of one file
//   load       {port, clients, ops, size, prefix, manifest}  `clients` connections, each `ops` times
//              uploadBuffer(random) then downloadBuffer, awaited one after the other (latency)
// spec.rxferRoot: the package root whose dist/ is measured. Prints one JSON line; exits 1 on failure.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const spec = JSON.parse(process.argv[2]);
const { RxferClient } = require(path.join(spec.rxferRoot, 'dist/client/index.js'));
const connect = () => RxferClient.connect({ host: '127.0.0.1', port: spec.port });

const { pool } = require('../lib/pool');

const ops = {
  async put() {
    const c = await connect();
    const r = await c.upload(spec.local, spec.remote);
    await c.quit();
    return { bytes: r.size, sha256: r.sha256 };
  },
  async get() {
    const c = await connect();
    const r = await c.download(spec.remote, spec.local);
    await c.quit();
    return { bytes: r.size, sha256: r.sha256 };
  },
  async putmany() {
    const names = fs.readdirSync(spec.dir).sort();
    const c = await connect();
    await pool(names, spec.window ?? 64, async (n) => c.uploadBuffer(`${spec.prefix}/${n}`, await fs.promises.readFile(path.join(spec.dir, n))));
    await c.quit();
    return { files: names.length };
  },
  async 'putmany-stream'() {
    const names = fs.readdirSync(spec.dir).sort();
    const c = await connect();
    await pool(names, spec.window ?? 64, (n) => c.upload(path.join(spec.dir, n), `${spec.prefix}/${n}`));
    await c.quit();
    return { files: names.length };
  },
  async getmany() {
    const names = fs.readdirSync(spec.namesFrom).sort();
    fs.mkdirSync(spec.outDir, { recursive: true });
    const c = await connect();
    await pool(names, spec.window ?? 64, (n) => c.download(`${spec.prefix}/${n}`, path.join(spec.outDir, n)));
    await c.quit();
    return { files: names.length };
  },
  async putconc() {
    const idx = Array.from({ length: spec.n }, (_, i) => i);
    await Promise.all(
      idx.map(async (i) => {
        const c = await connect();
        await c.upload(spec.local, `${spec.prefix}-${i}.bin`);
        await c.quit();
      }),
    );
    return { files: spec.n };
  },
  async load() {
    const latencies = [];
    const manifest = {};
    let mismatches = 0;
    const worker = async (k) => {
      const c = await connect();
      for (let i = 0; i < spec.ops; i++) {
        const name = `${spec.prefix}/c${k}-${i}`;
        const buf = crypto.randomBytes(spec.size);
        let t = performance.now();
        await c.uploadBuffer(name, buf);
        latencies.push(performance.now() - t);
        t = performance.now();
        const back = await c.downloadBuffer(name);
        latencies.push(performance.now() - t);
        if (!back.data.equals(buf)) mismatches++;
        manifest[`c${k}-${i}`] = { size: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
      }
      await c.quit();
    };
    await Promise.all(Array.from({ length: spec.clients }, (_, k) => worker(k)));
    fs.writeFileSync(spec.manifest, JSON.stringify(manifest));
    if (mismatches) throw new Error(`${mismatches} downloads differed from what was uploaded`);
    return { ops: latencies.length, latenciesMs: latencies };
  },
};

(async () => {
  const t0 = performance.now();
  const out = await ops[spec.op]();
  const ms = performance.now() - t0;
  const u = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ok: true, ms, cpuS: (u.user + u.system) / 1e6, ...out }) + '\n');
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
