#!/usr/bin/env node
'use strict';
// `node scripts/kill-loop.js [--kills 20] [--clients 20]` (issue 17): a real `rxfer serve` process
// (compiled dist/) under the mixed workload of scripts/workload.js, SIGKILLed at random moments
// (some right after it starts listening, most mid-workload) and restarted on the same root each
// time. Checked at every round: it starts; every file under a real name is one complete upload (the
// files describe themselves); after a restart no staging data is left, and every interrupted upload
// the server kept hashes like a prefix of an upload that was in flight at a kill (so it can be
// resumed), and one of them is resumed for real; the metadata folder stays bounded by the pool of
// names (it does not grow with the number of kills). Exits 1 if any check fails.
// test/reliability/kill-loop.test.ts runs a bounded form (8 kills).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { MiB, checkContent, freePort, inspectRoot, loadClientLibrary, makeNames, runWorkload, sha256, sleep, startServer, Stats } = require('./workload');

/** Uploads at least this big are kept for a resume when interrupted (the greeting's resume-min). */
const RESUME_MIN = 1 * MiB;

/**
 * Runs the loop; returns one record per round and the problems found (empty: all held).
 * `say` receives a progress line per round.
 */
const killLoop = async ({ kills = 20, clients = 20, base, say = () => undefined, maxRunMs = 2500 }) => {
  const root = path.join(base, 'root');
  const workDir = path.join(base, 'server');
  const port = await freePort();
  const names = makeNames(3, 8);
  /** Uploads of resumable size that were in flight at a kill, by name: what a kept upload may be a prefix of. */
  const candidates = new Map();
  const rounds = [];
  const problems = [];
  let resumed = 0;
  const { RxferClient } = loadClientLibrary();
  for (let round = 0; round <= kills; round++) {
    let server;
    try {
      server = await startServer({ root, workDir, port });
    } catch (err) {
      problems.push(`round ${round}: the server did not start: ${err.message.slice(0, 2000)}`);
      break;
    }
    const record = { round };
    try {
      // After a restart, with no client yet: what the server kept must be resumable, nothing staged.
      const client = await RxferClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 10_000 });
      const kept = [];
      for (const name of names.names) {
        const found = await client.keptUpload(name);
        if (!found) continue;
        const prefixOf = (candidates.get(name) ?? []).find((content) => content.length >= found.bytes && sha256(content.subarray(0, found.bytes)) === found.digest);
        if (!prefixOf) problems.push(`round ${round}: ${name}: the kept ${found.bytes} bytes are no prefix of any upload in flight at a kill`);
        else kept.push({ name, found, content: prefixOf });
      }
      record.kept = kept.length;
      if (kept.length > 0) {
        // Resume one for real: only the rest is sent, and the stored file is the whole upload.
        const { name, found, content } = kept[Math.floor(Math.random() * kept.length)];
        const local = path.join(base, 'resume.bin');
        fs.writeFileSync(local, content);
        const result = await client.upload(local, name, { kept: found });
        if (result.resumedAt !== found.bytes) problems.push(`round ${round}: ${name}: resumed at ${result.resumedAt}, not at the ${found.bytes} bytes kept`);
        else resumed++;
        if (result.digest !== sha256(content)) problems.push(`round ${round}: ${name}: the resumed upload stored ${result.digest}`);
        const back = await client.downloadBuffer(name);
        if (!back.data.equals(content)) problems.push(`round ${round}: ${name}: the resumed file reads back different`);
      }
      await client.quit();
      const tree = inspectRoot(root);
      Object.assign(record, { files: tree.real.length, metaFiles: tree.metaFiles, metaBytes: tree.metaBytes, partials: tree.partials, staging: tree.stagingFiles });
      if (tree.stagingFiles > 0) problems.push(`round ${round}: ${tree.stagingFiles} staging files after the restart`);
      if (tree.strayStaging.length > 0) problems.push(`round ${round}: staging files beside real names: ${tree.strayStaging.join(', ')}`);
      if (tree.partials > names.names.length) problems.push(`round ${round}: ${tree.partials} kept partial uploads for ${names.names.length} names`);
      for (const bad of tree.bad) problems.push(`round ${round}, after the restart: ${bad}`);
    } catch (err) {
      problems.push(`round ${round}: checking after the restart failed: ${err.code ?? ''} ${err.message}`);
    }
    if (round === kills) {
      await server.stop();
      rounds.push(record);
      say(`round ${round}: stopped cleanly; ${JSON.stringify(record)}`);
      break;
    }
    // The workload, and a kill at a random moment of it (one round in four right after the start).
    const run = { stopping: false };
    const inFlight = new Set();
    const stats = new Stats();
    const workload = runWorkload({ port, clients, run, stats, names, inFlight, largeShare: 0.25, connectionLossExpected: true });
    const runMs = Math.random() < 0.25 ? Math.floor(Math.random() * 100) : 500 + Math.floor(Math.random() * (maxRunMs - 500));
    await sleep(runMs);
    for (const { name, content } of inFlight) {
      if (content.length < RESUME_MIN) continue;
      const list = candidates.get(name) ?? [];
      list.push(content);
      // The newest few are enough: a later upload of the name replaces what was kept.
      candidates.set(name, list.slice(-8));
    }
    await server.kill();
    run.stopping = true;
    await workload;
    record.runMs = runMs;
    record.ops = stats.ops;
    record.unexpected = stats.unexpectedCount;
    // Errors other than lost connections before the kill are failures too (digest mismatches above all).
    for (const line of stats.unexpected) problems.push(`round ${round}: ${line}`);
    if (stats.digestMismatches > 0 || stats.corruptDownloads > 0) problems.push(`round ${round}: ${stats.digestMismatches} digest mismatches, ${stats.corruptDownloads} damaged downloads`);
    // With the server dead: no file under a real name is partial.
    const after = inspectRoot(root);
    for (const bad of after.bad) problems.push(`round ${round}, after the kill: ${bad}`);
    rounds.push(record);
    say(`round ${round}: killed after ${runMs} ms (${stats.ops} operations); ${JSON.stringify(record)}`);
  }
  // The metadata folder is bounded by the pool of names, not by the number of kills: the second
  // half of the rounds holds no more than the first half's most plus what the names can keep.
  const half = Math.floor(rounds.length / 2);
  const firstMax = Math.max(0, ...rounds.slice(0, half).map((r) => r.metaFiles ?? 0));
  const lastMax = Math.max(0, ...rounds.slice(half).map((r) => r.metaFiles ?? 0));
  const bound = 2 * names.names.length + 16;
  if (lastMax > bound) problems.push(`the metadata folder grew to ${lastMax} files (bound ${bound}; first half at most ${firstMax})`);
  return { rounds, problems, resumed, metaFiles: { firstMax, lastMax, bound } };
};

module.exports = { killLoop };

if (require.main === module) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const at = args.indexOf(`--${name}`);
    return at === -1 ? fallback : Number(args[at + 1]);
  };
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'rxfer-kill-loop-'));
  const say = (line) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  killLoop({ kills: option('kills', 20), clients: option('clients', 20), base, say })
    .then(({ rounds, problems, resumed, metaFiles }) => {
      say(`${rounds.length - 1} kills, ${resumed} kept uploads resumed; metadata folder at most ${metaFiles.firstMax} files in the first half, ${metaFiles.lastMax} in the second (bound ${metaFiles.bound})`);
      for (const problem of problems) say(`PROBLEM: ${problem}`);
      say(problems.length === 0 ? 'RESULT: ok' : `RESULT: FAILED (${problems.length} problems)`);
      if (problems.length === 0 && !args.includes('--keep')) fs.rmSync(base, { recursive: true, force: true });
      else say(`root kept at ${base}`);
      process.exitCode = problems.length === 0 ? 0 : 1;
    })
    .catch((err) => {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exitCode = 1;
    });
}
