#!/usr/bin/env node
'use strict';
// `node bench/experiments/ab-server-uploads.js A_ROOT B_ROOT [rounds] [sha256] [--n 2000] [--kib 4] [--batch K] [--both-batch] [--prof DIR]`
// (issue 20): the server's side of `put -r` alone. Each round sends both servers (one per build, A and
// B alternating, order swapped each round) the same byte stream: N pipelined `UPLOAD`s of KIB KiB
// (header, name, data, trailer, 20 folders), then QUIT, written at once from a buffer built before the
// clock starts, so no client code runs while it is measured. Reports per build the median wall time
// and server CPU (all its threads) over the rounds after the first two (V8 still compiling), and the
// paired ratio B/A of CPU. Steadier than whole commands for a change on the server's upload path:
// there the client shares the two cores and its own noise. Every upload must be answered
// `OK file data recv`. `--prof DIR`: both servers run under --cpu-prof into DIR/A and DIR/B (written
// when they stop at the end). `--batch K`: B is sent the same files as BATCHes of K files (A still
// as UPLOADs), so that A and B may be one build: what the batch request saves on the server.
// `--both-batch`: A is sent the BATCHes too, to compare two builds' batch paths.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { abArgs, median } = require('../lib/ab');
const S = require('../lib/servers');
const U = require('../lib/util');

const { A, B, rounds, more } = abArgs(process.argv.slice(2), 10);
const opt = (name, def) => { const i = more.indexOf(`--${name}`); return i < 0 ? def : more[i + 1]; };
const N = Number(opt('n', 2000));
const KIB = Number(opt('kib', 4));
const PROF = opt('prof', undefined);
const BATCH = Number(opt('batch', 0));
const BOTH_BATCH = more.includes('--both-batch');

/** N uploads into `remote/d<k>/f<i>`, each with its SHA-256 trailer (or in BATCHes of `batch`), then QUIT. */
const requests = (remote, batch = 0) => {
  const parts = [];
  for (let i = 0; i < N; i++) {
    const data = crypto.randomBytes(KIB * 1024);
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    if (batch === 0) parts.push(Buffer.from(`UPLOAD ${data.length}\n${remote}/d${i % 20}/f${i}\n`), data, Buffer.from(`SHA256 ${digest}\n`));
    else {
      if (i % batch === 0) parts.push(Buffer.from(`BATCH ${Math.min(batch, N - i)}\n`));
      parts.push(Buffer.from(`${data.length} SHA256 ${digest}\n${remote}/d${i % 20}/f${i}\n`), data);
    }
  }
  parts.push(Buffer.from('QUIT\n'));
  return Buffer.concat(parts);
};

/** Writes `bytes` on one connection and reads every reply until the server closes. */
const exchange = (port, bytes) =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let replies = '';
    socket.setEncoding('utf8');
    socket.on('data', (text) => (replies += text));
    socket.on('end', () => resolve(replies));
    socket.on('error', reject);
    socket.write(bytes);
  });

(async () => {
  const work = S.workFolder('ab-server');
  const servers = {};
  for (const [tag, rxferRoot] of [['A', A], ['B', B]]) {
    const root = path.join(work, `root-${tag}`);
    fs.mkdirSync(root);
    const nodeArgs = PROF ? ['--cpu-prof', '--cpu-prof-dir', path.join(path.resolve(PROF), tag)] : [];
    servers[tag] = await S.startRxfer({ rxferRoot, root, workDir: work, tag, nodeArgs });
    servers[tag].root = root;
  }
  const runs = { A: [], B: [] };
  for (let round = 0; round < rounds; round++) {
    const streams = { A: requests(`r${round}`, BOTH_BATCH ? BATCH : 0), B: requests(`r${round}`, BATCH) };
    for (const tag of round % 2 ? ['B', 'A'] : ['A', 'B']) {
      const server = servers[tag];
      const bytes = streams[tag];
      const cpu0 = U.cpuSeconds(server.pid);
      const t = process.hrtime.bigint();
      const replies = await exchange(server.port, bytes);
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      const cpuMs = (U.cpuSeconds(server.pid) - cpu0) * 1000;
      const stored = (replies.match(/^OK file data recv /gm) ?? []).length;
      if (stored !== N) throw new Error(`${tag}: ${stored} of ${N} uploads stored; last replies: ${replies.slice(-300)}`);
      runs[tag].push({ ms, cpuMs });
      console.log(`round ${round} ${tag}: wall ${ms.toFixed(0)} ms, server CPU ${cpuMs.toFixed(0)} ms`);
      fs.rmSync(path.join(server.root, `r${round}`), { recursive: true, force: true });
    }
  }
  const kept = (tag) => runs[tag].slice(2);
  const ratios = kept('A').map((a, i) => kept('B')[i].cpuMs / a.cpuMs);
  console.log(`\n${N} × ${KIB} KiB pipelined UPLOADs${BATCH ? ` (${BOTH_BATCH ? 'A and B' : 'B'}: BATCHes of ${BATCH})` : ''}, ${rounds} rounds (medians of rounds 2+; load average ${require('node:os').loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  for (const tag of ['A', 'B']) {
    console.log(`${tag} ${tag === 'A' ? A : B}: wall ${median(kept(tag).map((r) => r.ms)).toFixed(0)} ms, server CPU ${median(kept(tag).map((r) => r.cpuMs)).toFixed(0)} ms`);
  }
  console.log(`B/A server CPU paired median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
  if (PROF) await Promise.all(Object.values(servers).map((server) => server.stop('SIGTERM', 10000)));
  process.exit(0);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
