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
// spec.rxferRoot: the package root whose dist/ is measured; spec.hash: the digest to negotiate (default SHA-256).
// Prints one JSON line; exits 1 on failure.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const spec = JSON.parse(process.argv[2]);
const { RxferClient } = require(path.join(spec.rxferRoot, 'dist/client/index.js'));
// spec.hash: 'blake3' measures the negotiated BLAKE3 option (an older build without it ignores the key).
// spec.tlsCa: connect with TLS, trusting that certificate (the benchmark's throw-away one).
const connect = () =>
  RxferClient.connect({ host: '127.0.0.1', port: spec.port, ...(spec.hash && { hash: spec.hash }), ...(spec.tlsCa && { tls: { ca: fs.readFileSync(spec.tlsCa) } }) });

const { pool } = require('../lib/pool');
const { loadCase, runClient } = require('../lib/client-run');

const ops = {
  async put() {
    const c = await connect();
    const r = await c.upload(spec.local, spec.remote);
    await c.quit();
    return { bytes: r.size, digest: r.digest ?? r.sha256 };
  },
  async get() {
    const c = await connect();
    const r = await c.download(spec.remote, spec.local);
    await c.quit();
    return { bytes: r.size, digest: r.digest ?? r.sha256 };
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
  async getconc() {
    // spec.n connections at once, each downloading `${prefix}-${i}.bin` (as putconc stored them).
    fs.mkdirSync(spec.outDir, { recursive: true });
    const idx = Array.from({ length: spec.n }, (_, i) => i);
    await Promise.all(
      idx.map(async (i) => {
        const c = await connect();
        await c.download(`${spec.prefix}-${i}.bin`, path.join(spec.outDir, `${i}.bin`));
        await c.quit();
      }),
    );
    return { files: spec.n };
  },
  load() {
    // One connection per worker, its requests awaited one after the other (latency).
    return loadCase(spec, async () => {
      const c = await connect();
      return { put: (name, buf) => c.uploadBuffer(name, buf), get: async (name) => (await c.downloadBuffer(name)).data, close: () => c.quit() };
    });
  },
};

runClient(ops, spec);
