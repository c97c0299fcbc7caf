import { mkdtemp, rm } from 'node:fs/promises';
import { Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../helpers/cli';
import { warmSmallReads } from '../helpers/warm-small-reads';
import { ServerFigures, ServerProcess, canRunServerProcesses, idleBenchScript, workload } from './support/scripts';

/**
 * Issue 17, load, bounded form (the long form is `npm run soak`): a real `rxfer serve` process and
 * 200 concurrent clients for 15 s of mixed uploads, verified downloads, lists, stats, renames and
 * deletes on 48 overlapping names. Zero protocol errors, zero digest mismatches, every file under a
 * real name one complete upload; afterwards the server's descriptors, live timers, staging files and
 * transfer slots are back to the baseline, measured inside the server process (scripts/server-probe.js).
 * Then 1,000 idle connections: what each costs the server in RSS. Nothing here is timed: the waits
 * are failure guards, and the speed beside idle connections is a benchmark (`npm run soak` prints it).
 */
const CLIENTS = 200;
const SLOTS = 200;
const MiB = 1024 * 1024;
const describeIfProc = canRunServerProcesses() ? describe : describe.skip;

const until = async (check: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

/** `count` connections, each with an upload header sent, resolving with each one's first reply line. */
const holdUploads = async (port: number, count: number): Promise<{ sockets: Socket[]; replies: string[] }> => {
  const sockets: Socket[] = [];
  const replies = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<string>((resolve, reject) => {
          const socket = connect({ port, host: '127.0.0.1' });
          sockets.push(socket);
          let seen = '';
          socket.on('data', (chunk: Buffer) => {
            seen += chunk.toString('latin1');
            const lines = seen.split('\n');
            // The greeting, then the reply to the header (the data is never sent: the slot stays taken).
            if (lines.length === 2 && lines[0]!.startsWith('OK rxfer/')) socket.write(`UPLOAD 10\nslots/${i}.bin\n`);
            if (lines.length >= 3) resolve(lines[1]!);
          });
          socket.once('error', reject);
        }),
    ),
  );
  return { sockets, replies };
};

describeIfProc(`issue 17: ${CLIENTS} concurrent clients against one server process`, () => {
  let base: string;
  let server: ServerProcess;
  let baseline: ServerFigures;
  const { startServer, runWorkload, inspectRoot, percentile } = workload();

  // Compiling dist/ (only when src/ is newer: never in CI, where `npm ci` built it) can take a while.
  beforeAll(() => ensureBuilt(), 240_000);
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-load-test-'));
    server = await startServer({ root: join(base, 'root'), workDir: join(base, 'server'), limits: { maxTransfersPerUser: SLOTS } });
    // The baseline comes after a short warm-up of the same workload: some things start on first use
    // (the small-commit and small-read worker threads and their descriptors; the workload's small
    // downloads may not come in a burst that starts the second, so one is made).
    await runWorkload({ port: server.port, clients: 10, durationMs: 2000 });
    await warmSmallReads(server.port);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    baseline = await server.probe();
    // A guard, not a timing: it passed 60 s once in CI, with other test processes on the two cores.
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await rm(base, { recursive: true, force: true });
  });

  test('mixed workload: no protocol error, no digest mismatch, every file whole; descriptors, timers, staging and slots back', async () => {
    const stats = await runWorkload({ port: server.port, clients: CLIENTS, durationMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let end = await server.probe();
    await until(
      async () => {
        end = await server.probe();
        return end.fds <= baseline.fds && end.timers <= baseline.timers;
      },
      15_000,
      () => `descriptors and timers back to the baseline (${baseline.fds} fds, ${baseline.timers} timers; now ${end.fds}, ${end.timers})`,
    );
    const tree = inspectRoot(join(base, 'root'));
    process.stdout.write(
      `load: ${CLIENTS} clients, ${stats.ops} operations (${JSON.stringify(stats.byOp)}), expected refusals ${JSON.stringify(stats.expected)}; ` +
        `p50 ${percentile(stats.allLatencies, 50).toFixed(1)} ms, p99 ${percentile(stats.allLatencies, 99).toFixed(1)} ms; ` +
        `server fds ${baseline.fds} → ${end.fds}, timers ${baseline.timers} → ${end.timers}, RSS after gc ${(baseline.rss / MiB).toFixed(1)} → ${(end.rss / MiB).toFixed(1)} MiB; ` +
        `${tree.real.length} files, ${tree.stagingFiles} staging, ${tree.bad.length} damaged\n`,
    );
    expect(stats.unexpected).toEqual([]);
    expect(stats.unexpectedCount).toBe(0);
    expect(stats.digestMismatches).toBe(0);
    expect(stats.corruptDownloads).toBe(0);
    expect(stats.ops).toBeGreaterThan(CLIENTS);
    expect(tree.bad).toEqual([]);
    expect(tree.stagingFiles).toBe(0);
    expect(tree.strayStaging).toEqual([]);
    // Memory: not a leak detector on a 15 s run (the soak is), but a gross leak shows here.
    expect(end.rss - baseline.rss).toBeLessThan(128 * MiB);

    // Transfer slots: every one of the user's SLOTS can be taken at once again (a leaked one is BUSY).
    const held = await holdUploads(server.port, SLOTS);
    try {
      expect(held.replies.filter((reply) => reply !== 'OK file recv')).toEqual([]);
    } finally {
      for (const socket of held.sockets) socket.destroy();
    }
  }, 120_000);

  test('1,000 idle connections cost at most 64 KiB of server RSS and 24 KiB of JS heap each; descriptors back once they leave', async () => {
    // The server raises its own limit (scripts/workload.js); this process holds the other ends.
    const limit = workload().openFileLimit();
    if (limit < 1500) {
      process.stdout.write(`SKIPPED: 1,000 idle connections need more open files than this process may have (ulimit -n is ${limit}; raise it to 2048)\n`);
      return;
    }
    const before = await server.probe();
    const bench = await idleBenchScript().idleConnectionsBench(server, { idle: 1000, measureSpeed: false });
    process.stdout.write(
      `idle: 1000 connections, server RSS after gc ${(bench.rssBefore / MiB).toFixed(1)} → ${(bench.rssWith / MiB).toFixed(1)} MiB: ${bench.perConnectionKiB.toFixed(1)} KiB each; ` +
        `heap ${bench.heapPerConnectionKiB.toFixed(1)} KiB each (median of ${bench.heapEachKiB.map((kib) => kib.toFixed(1)).join(', ')}); fds ${bench.fdsBefore} → ${bench.fdsWith}\n`,
    );
    // Every idle connection was really open on the server when measured.
    expect(bench.fdsWith - bench.fdsBefore).toBeGreaterThanOrEqual(1000);
    expect(bench.perConnectionKiB).toBeLessThanOrEqual(64);
    // A session builds its pipeline stages on its first request (buildOnFirstValue): an idle one
    // holds ~17 KiB of heap; with its stages built at connect it held ~33 KiB (heap snapshots). The
    // median of three measurements: one alone once read 24.8 (scripts/idle-bench.js, heapRoundsKiB).
    expect(bench.heapPerConnectionKiB).toBeLessThanOrEqual(24);
    let now = before;
    await until(
      async () => {
        now = await server.probe();
        return now.fds <= before.fds && now.timers <= before.timers;
      },
      15_000,
      () => `descriptors and timers back (${before.fds}, ${before.timers}; now ${now.fds}, ${now.timers})`,
    );
  }, 60_000);
});
