#!/usr/bin/env node
// Client for net-server.js, one connection per file (rewritten from shared/peers/node/net-client.js).
// usage: node net-client.js '<json spec>'    spec.op is one of
//   put      {port, local, remote, hwm}             file → socket (fs read stream, highWaterMark hwm)
//   get      {port, remote, local, hwm}             socket → file
//   putmany  {port, dir, prefix, conc}              every file of dir, `conc` connections at a time
//   getmany  {port, namesFrom, prefix, outDir, conc, hwm}
//   putconc  {port, local, prefix, n, hwm}          n uploads of one file at once
//   load     {port, clients, ops, size, prefix, manifest}   `clients` workers, each `ops` times
//            (PUT a random buffer, then GET it back), one connection per operation
// Prints one JSON line: {ok, ms, cpuS, ...}. Exits 1 on any failure.
'use strict';
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream');

const spec = JSON.parse(process.argv[2]);
const port = spec.port;
const fsOpts = (hwm) => (hwm ? { highWaterMark: hwm } : {});

function putStream(source, remote) {
  // source: a Readable, or a Buffer
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let reply = '';
    sock.on('connect', () => {
      sock.write(`PUT ${remote}\n`);
      if (Buffer.isBuffer(source)) sock.end(source);
      else source.on('error', reject).pipe(sock);
    });
    sock.on('data', (x) => { reply += x; });
    sock.on('error', reject);
    sock.on('end', () => (reply === 'OK\n' ? resolve() : reject(new Error(`bad reply ${JSON.stringify(reply)}`))));
  });
}

function getTo(remote, sink) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.write(`GET ${remote}\n`));
    pipeline(sock, sink, (e) => (e ? reject(e) : resolve()));
  });
}

function getBuffer(remote) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.write(`GET ${remote}\n`));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

const { pool } = require('../lib/pool');

const ops = {
  async put() {
    await putStream(fs.createReadStream(spec.local, fsOpts(spec.hwm)), spec.remote);
    return { bytes: fs.statSync(spec.local).size };
  },
  async get() {
    await getTo(spec.remote, fs.createWriteStream(spec.local, fsOpts(spec.hwm)));
    return { bytes: fs.statSync(spec.local).size };
  },
  async putmany() {
    const names = fs.readdirSync(spec.dir).sort();
    await pool(names, spec.conc ?? 8, async (n) => putStream(await fs.promises.readFile(path.join(spec.dir, n)), `${spec.prefix}/${n}`));
    return { files: names.length };
  },
  async getmany() {
    const names = fs.readdirSync(spec.namesFrom).sort();
    fs.mkdirSync(spec.outDir, { recursive: true });
    await pool(names, spec.conc ?? 8, (n) => getTo(`${spec.prefix}/${n}`, fs.createWriteStream(path.join(spec.outDir, n), fsOpts(spec.hwm))));
    return { files: names.length };
  },
  async putconc() {
    const idx = Array.from({ length: spec.n }, (_, i) => i);
    await Promise.all(idx.map((i) => putStream(fs.createReadStream(spec.local, fsOpts(spec.hwm)), `${spec.prefix}-${i}.bin`)));
    return { files: spec.n };
  },
  async load() {
    const latencies = [];
    const manifest = {};
    let mismatches = 0;
    const worker = async (c) => {
      for (let i = 0; i < spec.ops; i++) {
        const name = `${spec.prefix}/c${c}-${i}`;
        const buf = crypto.randomBytes(spec.size);
        let t = performance.now();
        await putStream(buf, name);
        latencies.push(performance.now() - t);
        t = performance.now();
        const back = await getBuffer(name);
        latencies.push(performance.now() - t);
        if (!back.equals(buf)) mismatches++;
        manifest[`c${c}-${i}`] = { size: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
      }
    };
    await Promise.all(Array.from({ length: spec.clients }, (_, c) => worker(c)));
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
})().catch((e) => { console.error(e); process.exit(1); });
