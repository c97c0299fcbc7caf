#!/usr/bin/env node
'use strict';
// `npm run soak -- --minutes N [--clients C] [--interval S] [--no-idle-bench]` (issue 17).
// A fresh `rxfer serve` process (compiled dist/: `npm run build` first) on a fresh root, under the
// mixed workload of scripts/workload.js (uploads, verified downloads, lists, stats, renames and
// deletes on overlapping names) for N minutes. Every `--interval` seconds (30) it prints throughput,
// p50/p99 latency, and the server's RSS, descriptors and live timers; at the end, whether anything
// leaked (descriptors, timers, staging files, RSS after gc against the first window) and whether
// every file under a real name is one complete upload. Before the soak (unless --no-idle-bench) it
// measures what 1,000 idle connections cost the server and how fast a transfer runs beside them.
// Exits 1 on any protocol error, digest mismatch, damaged file or leak.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { MiB, Stats, inspectRoot, percentile, runWorkload, sleep, startServer } = require('./workload');
const { idleConnectionsBench } = require('./idle-bench');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const minutes = option('minutes', 1);
const clients = option('clients', 50);
const intervalS = option('interval', 30);
const idleBench = !args.includes('--no-idle-bench');

const stamp = () => new Date().toISOString().slice(11, 19);
const say = (line) => process.stdout.write(`[${stamp()}] ${line}\n`);
const mib = (bytes) => (bytes / MiB).toFixed(1);

const main = async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'rxfer-soak-'));
  const root = path.join(base, 'root');
  say(`soak: ${minutes} min, ${clients} clients, a window every ${intervalS} s; root ${root}; ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const server = await startServer({ root, workDir: path.join(base, 'server') });
  let failed = false;
  try {
    if (idleBench) {
      const bench = await idleConnectionsBench(server, { idle: 1000 });
      say(
        `idle connections: ${bench.idle} cost ${bench.perConnectionKiB.toFixed(1)} KiB of server RSS and ${bench.heapPerConnectionKiB.toFixed(1)} KiB of heap each (after gc: ${mib(bench.rssBefore)} → ${mib(bench.rssWith)} MiB); ` +
          `a ${bench.transferMiB} MiB upload+download ran at ${bench.alone.toFixed(0)} MiB/s alone, ${bench.beside.toFixed(0)} MiB/s beside them (ratio ${bench.ratio.toFixed(2)}, goal ≥ 0.90)`,
      );
    }
    // The baseline is taken after a short warm-up of the same workload, once it has gone quiet: the
    // server starts some things on first use (the small-commit worker thread and its descriptors).
    await runWorkload({ port: server.port, clients: Math.min(clients, 10), durationMs: 5000, stats: new Stats() });
    await sleep(2000);
    const baseline = await server.probe();
    say(`baseline: RSS ${mib(baseline.rss)} MiB, ${baseline.fds} fds, ${baseline.timers} timers`);
    const stats = new Stats();
    const run = { stopping: false };
    const started = Date.now();
    const workload = runWorkload({ port: server.port, clients, durationMs: minutes * 60_000, run, stats });
    let firstWindowRss;
    let windows = 0;
    let peakRss = 0;
    let peakFds = 0;
    while (!run.stopping) {
      await Promise.race([sleep(intervalS * 1000), workload]);
      if (run.stopping) break;
      windows++;
      const w = stats.window();
      const now = await server.probe({ gc: windows === 1 });
      firstWindowRss ??= now.rss;
      peakRss = Math.max(peakRss, now.rss);
      peakFds = Math.max(peakFds, now.fds);
      say(
        `t=${((Date.now() - started) / 1000).toFixed(0)}s ${w.opsPerS.toFixed(0)} ops/s ${w.mibPerS.toFixed(1)} MiB/s p50 ${w.p50.toFixed(1)} ms p99 ${w.p99.toFixed(1)} ms | ` +
          `server RSS ${mib(now.rss)} MiB, ${now.fds} fds, ${now.timers} timers | errors ${stats.unexpectedCount}, digest mismatches ${stats.digestMismatches}`,
      );
    }
    await workload;
    // Let the last closes and background commits settle, then measure after gc.
    await sleep(2000);
    const end = await server.probe();
    const seconds = (Date.now() - started) / 1000;
    const byOp = Object.entries(stats.byOp).map(([op, n]) => `${op} ${n}`).join(', ');
    say(`done: ${stats.ops} operations in ${seconds.toFixed(0)} s (${(stats.ops / seconds).toFixed(0)}/s: ${byOp}); expected refusals ${JSON.stringify(stats.expected)}`);
    say(`latency over the run: p50 ${percentile(stats.allLatencies, 50).toFixed(1)} ms, p99 ${percentile(stats.allLatencies, 99).toFixed(1)} ms; peak server RSS ${mib(peakRss)} MiB, peak fds ${peakFds}`);
    say(`unexpected errors ${stats.unexpectedCount}, digest mismatches ${stats.digestMismatches}, damaged downloads ${stats.corruptDownloads}`);
    for (const line of stats.unexpected) say(`  ${line}`);
    const rssGrowth = end.rss - (firstWindowRss ?? baseline.rss);
    say(
      `leaks: fds ${baseline.fds} → ${end.fds}, timers ${baseline.timers} → ${end.timers}, RSS after gc ${mib(baseline.rss)} → first window ${mib(firstWindowRss ?? baseline.rss)} → end ${mib(end.rss)} MiB (growth since the first window ${mib(rssGrowth)} MiB)`,
    );
    const tree = inspectRoot(root);
    say(`root: ${tree.real.length} files under real names, ${tree.bad.length} damaged, ${tree.strayStaging.length} stray staging files, .rxfer ${tree.metaFiles} files (${mib(tree.metaBytes)} MiB, ${tree.stagingFiles} staging, ${tree.partials} kept partials)`);
    for (const line of tree.bad.slice(0, 10)) say(`  damaged: ${line}`);
    const leaked = end.fds > baseline.fds || end.timers > baseline.timers || tree.stagingFiles > 0 || tree.strayStaging.length > 0;
    failed = stats.unexpectedCount > 0 || stats.digestMismatches > 0 || tree.bad.length > 0 || leaked;
    say(failed ? 'RESULT: FAILED' : 'RESULT: ok (no error, no mismatch, no damaged file, no leak)');
  } finally {
    await server.stop();
    if (!args.includes('--keep')) fs.rmSync(base, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
};

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
