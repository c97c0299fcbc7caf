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
const { loadCase, runClient } = require('../lib/client-run');

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
  load() {
    // One connection per operation.
    return loadCase(spec, async () => ({ put: (name, buf) => putStream(buf, name), get: (name) => getBuffer(name) }));
  },
};

runClient(ops, spec);
