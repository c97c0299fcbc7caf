#!/usr/bin/env node
'use strict';
// `node bench/experiments/lean-ceiling.js [--n 2000] [--kib 4] [--rounds 6]` (issue 20): how far could a
// Node program go at `put -r` of many small files with rxfer's per-file guarantees, and where does
// rxfer stand between it and rsync? Three tools alternate in each round (order rotated), each a fresh
// client process, on tmpfs:
//   - lean: ≈ 60 lines of Node (this file, `server`/`client` roles) that keep what rxfer promises for
//     each file: the client sends size, SHA-256 and name before the bytes (pipelined, one connection);
//     the server checks count and digest, writes a staging file, fsyncs it, renames it into place,
//     fsyncs each folder it renamed into once per input chunk, and only then replies per file. It has
//     none of rxfer's names policy, users, quotas, locks, ordering, limits, logging or metrics;
//   - rxfer: `rxfer put -r` as typed (bin/rxfer.js), against `rxfer serve` of this checkout (dist/);
//   - rsync: `rsync -rt` to a daemon on loopback;
//   - lean→rxfer: the lean client's loop, speaking rxfer's BATCH (64 files a batch, four in flight, as
//     the CLI does), against the same `rxfer serve`: what rxfer's server allows with a client that
//     costs next to nothing (no name checks, digest cache, listing or change detection).
// Prints per tool the median wall seconds, client and server CPU seconds, and files/s ÷ rsync's.
// Every tree stored is compared with the source (a difference exits 1).
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');

const role = process.argv[2];

/** The lean clients' walk: [path, name below `folder`] of each file, depth first by name. */
const walk = function* (folder, relative = '') {
  const entries = fs.readdirSync(folder, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) yield* walk(path.join(folder, entry.name), name);
    else yield [path.join(folder, entry.name), name];
  }
};

if (role === 'server') {
  // argv: server <root> ; prints its port.
  const root = process.argv[3];
  const staging = path.join(root, '.staging');
  fs.mkdirSync(staging, { recursive: true });
  const made = new Set();
  let seq = 0;
  const server = net.createServer((socket) => {
    let input = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
      const replies = [];
      const folders = new Set();
      for (;;) {
        const newline = input.indexOf(10);
        if (newline < 0) break;
        const line = input.toString('utf8', 0, newline);
        if (line === 'QUIT') {
          input = Buffer.alloc(0);
          replies.push('OK bye\n');
          break;
        }
        const [sizeText, digest, ...rest] = line.split(' ');
        const size = Number(sizeText);
        if (input.length < newline + 1 + size) break;
        const data = input.subarray(newline + 1, newline + 1 + size);
        input = input.subarray(newline + 1 + size);
        const name = rest.join(' ');
        if (crypto.createHash('sha256').update(data).digest('hex') !== digest) {
          replies.push(`ERR CHECKSUM_MISMATCH ${name}\n`);
          continue;
        }
        const target = path.join(root, name);
        const folder = path.dirname(target);
        if (!made.has(folder)) fs.mkdirSync(folder, { recursive: true }), made.add(folder);
        const temp = path.join(staging, String(seq++));
        const fd = fs.openSync(temp, 'wx');
        fs.writeSync(fd, data);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(temp, target);
        folders.add(folder);
        replies.push(`OK ${size} ${digest}\n`);
      }
      for (const folder of folders) {
        const fd = fs.openSync(folder, 'r');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      }
      if (replies.length > 0) socket.write(replies.join(''));
      if (replies.at(-1) === 'OK bye\n') socket.end();
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
  return;
}

if (role === 'client') {
  // argv: client <port> <local folder> <remote folder>
  const [port, local, remote] = process.argv.slice(3);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.setNoDelay(true);
  let sent = 0;
  let stored = 0;
  let rest = '';
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const line of lines) if (line.startsWith('OK ') && line !== 'OK bye') stored++;
  });
  socket.on('end', () => process.exit(stored === sent ? 0 : 1));
  socket.on('connect', () => {
    socket.cork();
    for (const [file, name] of walk(local, '')) {
      fs.lstatSync(file);
      const data = fs.readFileSync(file);
      socket.write(`${data.length} ${crypto.createHash('sha256').update(data).digest('hex')} ${remote}/${name}\n`);
      socket.write(data);
      if (++sent % 64 === 0) socket.uncork(), socket.cork();
    }
    socket.uncork();
    socket.end('QUIT\n');
  });
  return;
}

if (role === 'rxclient') {
  // argv: rxclient <port> <local folder> <remote folder>: the loop above, in rxfer's BATCH requests.
  const [port, local, remote] = process.argv.slice(3);
  const files = walk(local, '');
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.setNoDelay(true);
  let sent = 0;
  let stored = 0;
  let answered = 0;
  let greeted = false;
  let done = false;
  const sendBatch = () => {
    const parts = [];
    for (let next = files.next(); !next.done; next = parts.length < 128 ? files.next() : { done: true }) {
      const [file, name] = next.value;
      const data = fs.readFileSync(file);
      parts.push(Buffer.from(`${data.length} SHA256 ${crypto.createHash('sha256').update(data).digest('hex')}\n${remote}/${name}\n`), data);
    }
    if (parts.length === 0) return false;
    sent += parts.length / 2;
    socket.write(Buffer.concat([Buffer.from(`BATCH ${parts.length / 2}\n`), ...parts]));
    return true;
  };
  let rest = '';
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const line of lines) {
      if (!greeted) {
        greeted = true;
        for (let i = 0; i < 4; i++) sendBatch();
      } else if (line !== 'OK bye') {
        answered++;
        if (line.startsWith('OK file data recv')) stored++;
        // A batch answered whole: the next goes out (four in flight, as the server reads ahead).
        if (answered % 64 === 0 && !done && !sendBatch()) done = true;
        if (done && answered === sent) socket.end('QUIT\n');
      }
    }
  });
  socket.on('close', () => process.exit(stored === sent && sent > 0 ? 0 : 1));
  return;
}

const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i < 0 ? def : argv[i + 1]; };
const N = Number(opt('n', 2000));
const KIB = Number(opt('kib', 4));
const ROUNDS = Number(opt('rounds', 6));
const ROOT = path.join(__dirname, '../..');

const sameTree = (a, b) => {
  for (const entry of fs.readdirSync(a, { withFileTypes: true })) {
    const [x, y] = [path.join(a, entry.name), path.join(b, entry.name)];
    if (entry.isDirectory() ? !sameTree(x, y) : !fs.existsSync(y) || !fs.readFileSync(x).equals(fs.readFileSync(y))) return false;
  }
  return true;
};

(async () => {
  const children = [];
  const work = S.workFolder('lean', { also: () => { for (const c of children) c.kill(); } });
  const src = path.join(work, 'src');
  U.writeRandomTree(src, N, KIB * 1024);
  const roots = Object.fromEntries(['lean', 'rxfer', 'rsync'].map((tool) => [tool, path.join(work, `root-${tool}`)]));
  // lean→rxfer stores through the same rxfer server, under other names.
  roots['lean→rxfer'] = roots.rxfer;
  for (const root of new Set(Object.values(roots))) fs.mkdirSync(root);

  const lean = spawn(process.execPath, [__filename, 'server', roots.lean], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(lean);
  const leanPort = Number(await new Promise((resolve) => lean.stdout.once('data', (d) => resolve(String(d).trim()))));
  const rxfer = await S.startRxfer({ rxferRoot: ROOT, root: roots.rxfer, workDir: work, tag: 'lean' });
  const rsyncPort = await U.freePort();
  fs.writeFileSync(path.join(work, 'rsyncd.conf'), `pid file = ${work}/rsyncd.pid\nuse chroot = no\nuid = root\ngid = root\n[r]\npath = ${roots.rsync}\nread only = no\n`);
  const rsync = spawn('rsync', ['--daemon', '--no-detach', '--address=127.0.0.1', `--port=${rsyncPort}`, `--config=${work}/rsyncd.conf`], { stdio: 'ignore' });
  children.push(rsync);
  await U.waitPort(rsyncPort);

  const commands = {
    lean: (remote) => [process.execPath, [__filename, 'client', String(leanPort), src, remote], lean.pid],
    rxfer: (remote) => [process.execPath, [...S.launchArgs(ROOT), path.join(ROOT, 'bin/rxfer.js'), 'put', '-r', src, remote, '-p', String(rxfer.port), '-q'], rxfer.pid],
    // The daemon forks a process per connection: its CPU is not the daemon's (reported as 0).
    rsync: (remote) => ['rsync', ['-rt', `${src}/`, `rsync://127.0.0.1:${rsyncPort}/r/${remote}/`], rsync.pid],
    'lean→rxfer': (remote) => [process.execPath, [__filename, 'rxclient', String(rxfer.port), src, `${remote}-lean`], rxfer.pid],
  };
  const runs = { lean: [], rxfer: [], rsync: [], 'lean→rxfer': [] };
  const tools = Object.keys(commands);
  for (let round = 0; round < ROUNDS; round++) {
    const order = tools.map((_, i) => tools[(i + round) % tools.length]);
    for (const tool of order) {
      const remote = `r${round}`;
      const [cmd, args, serverPid] = commands[tool](remote);
      const client0 = U.reapedChildrenCpuSeconds();
      const server0 = U.cpuSeconds(serverPid);
      const t = process.hrtime.bigint();
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      if (r.status !== 0) throw new Error(`${tool}: exit ${r.status} ${r.stderr}`);
      const stored = path.join(roots[tool], tool === 'lean→rxfer' ? `${remote}-lean` : remote);
      if (!sameTree(src, stored)) throw new Error(`${tool}: the tree stored differs from the source`);
      runs[tool].push({ seconds, client: U.reapedChildrenCpuSeconds() - client0, server: U.cpuSeconds(serverPid) - server0 });
      fs.rmSync(stored, { recursive: true, force: true });
    }
  }
  const med = (tool, key) => U.median(runs[tool].map((run) => run[key]));
  console.log(`${N} × ${KIB} KiB, put -r to tmpfs, ${ROUNDS} rounds (load average ${require('node:os').loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  for (const tool of tools) {
    const s = med(tool, 'seconds');
    console.log(`${tool.padEnd(11)} ${s.toFixed(3)} s  ${Math.round(N / s)} files/s  ÷ rsync ${(med('rsync', 'seconds') / s).toFixed(2)}  CPU s client ${med(tool, 'client').toFixed(2)} server ${med(tool, 'server').toFixed(2)}`);
  }
  process.exit(0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
