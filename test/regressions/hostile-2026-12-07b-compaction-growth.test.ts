import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, lstatSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { RxferClient } from '../../src/client/rxfer-client';
import type { DigestIndex } from '../../src/storage/digest-index';
import { COMPACT_UP_TO_BYTES, digestLogPath, formatDigestLine } from '../../src/storage/small-commit-log';
import { SmallCommits } from '../../src/storage/small-commits';
import { type CommitFolder, makeCommitFolder } from '../helpers/commit-folder';
import { eventually, startTestServer, storageOf, type TestServer } from '../helpers/server';

/**
 * Hostile pass of 2026-12-07 (b), against the uncommitted change to the digest logs' compaction
 * schedule (small-commit-log.js grownForCompaction/nextGrowth, small-commit.worker.js growthOf): a
 * compaction that drops under a quarter of a log doubles the worker's growth factor for that log
 * (2 → 4 → 8), one that drops more brings it back to 2; the next compaction comes once the log has
 * grown max(2 × base, min(factor × base, 8 MiB)) (and, since the fix below, at 15 MiB once grown by
 * 1 MiB, whatever the factor or base), and none past 16 MiB. Factors live in the worker.
 *
 * Attacked from outside: real servers on 127.0.0.1 and real sockets (RxferClient), or SmallCommits
 * with its real worker thread over real files, with logs crafted on disk where only their size
 * matters. The promises: every digest told (upload reply, LIST, STAT) is the file's; a folder whose
 * few files are rewritten again and again keeps its log within a small multiple of its live records,
 * also after a clean fill raised the factor to 8; a raised factor never leaves a log full of
 * superseded lines to cross 16 MiB uncompacted where the doubling rule compacted it; a worker
 * restarted (killed, idle-stopped) starts again at 2 and breaks nothing.
 *
 * Held (kept as guards): the digests, every time (each upload's reply, then LIST and STAT of every
 * file); a `put -r` of 1,300 distinct names (≈ 0.5 MB of records) raises the factor to 8, and ≈ 7,500
 * rewrites of 25 of them then have the log compacted at ≤ 8 × its base (measured: at 3.24 MB, 6.6 ×
 * its live records; the doubling rule: at 2 ×), and the next compaction comes back at the doubling;
 * the same through records made on demand on the main thread (its requests, declined until the
 * worker's own measure is met, never wedge the log); a base of 2.7 MiB at factor 8 with superseded
 * lines only is compacted by 8 MiB (at 8.36 MB), never near 16; a worker killed or idle-stopped after
 * its factor rose: the next one compacts at the doubling (2 × the header's base), nothing else changes.
 *
 * Found, and fixed (the last test; a test.failing before the fix): the cap that keeps a raised factor from going past 8 MiB is
 * itself the trouble for a folder filled past 8 MiB of records. A clean fill at factor 8 is compacted
 * at just over 8 MiB, every record live, so its base is just over 8 MiB: twice that is past 16 MiB,
 * where no log is compacted, and the log is never compacted again, whatever is deleted or rewritten
 * later. The doubling rule's last compaction under 16 MiB lands wherever its chain of doublings from
 * the first one (64 KiB plus a batch) puts it: ≈ 9.3 MiB for the server's real batches (measured).
 * So a folder filled to between 8 MiB and that point, then pruned, was still compacted; now its log
 * only grows. End to end (the built server as a process, `uploadBatched` as `put -r`, 26,500 files
 * of 242-byte names: an 8.75 MB log; then all but 50 deleted and five rewritten): this change
 * compacted at 8,405,790 bytes to 8,405,790 and never again, 28,000 rewrites later the log was at
 * 17,976,883 bytes and growing; HEAD compacted at 4,641,150 and then, after the prune, at 9,283,292
 * down to 16,530 bytes, and stayed under 67 KB. Narrow (a window of ≈ 1 MiB of records, then a prune),
 * but exactly what the change promised not to do.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const HEADER = /^\{"compacted": *(\d+)\}\n/;

/** The log's inode, size, and the size its header says it had after its last compaction (0: none). */
const look = (log: string): { ino: number; size: number; base: number } => {
  const { ino, size } = statSync(log);
  const fd = openSync(log, 'r');
  try {
    const head = Buffer.alloc(40);
    const read = readSync(fd, head, 0, 40, 0);
    const m = HEADER.exec(head.subarray(0, read).toString('latin1'));
    return { ino, size, base: m ? Number(m[1]) : 0 };
  } finally {
    closeSync(fd);
  }
};

/** A compaction seen between two looks: the log's size at the look before it (≤ what it compacted) and after it. */
interface Compaction {
  readonly before: number;
  readonly after: number;
}

/** Watches one log between rounds: a new inode is a compaction (the worker renames a new log over it). */
const logWatch = (log: string) => {
  let last = look(log);
  let max = last.size;
  const seen: Compaction[] = [];
  return {
    seen,
    get max() {
      return max;
    },
    get last() {
      return last;
    },
    check(): Compaction | undefined {
      const now = look(log);
      max = Math.max(max, now.size);
      const compaction = now.ino !== last.ino ? { before: last.size, after: now.base } : undefined;
      if (compaction) seen.push(compaction);
      last = now;
      return compaction;
    },
  };
};

/** Waits until the commit worker has no compaction running or asked for (a failure guard, not a timing assertion). */
const compactionsDone = (commits: SmallCommits): Promise<void> =>
  eventually(() => (commits as unknown as { compacting: number }).compacting === 0, 20_000, 'the compactions to finish');

// ---- over a real server ------------------------------------------------------------------------------

describe('hostile 2026-12-07b: a real server, folders filled then rewritten', () => {
  let server: TestServer;
  let client: RxferClient;
  let commits: SmallCommits;
  let digests: DigestIndex;

  beforeAll(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
    const storage = storageOf(server) as unknown as { smallCommits: SmallCommits; digests: DigestIndex };
    commits = storage.smallCommits;
    digests = storage.digests;
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  const logOf = (folder: string) => digestLogPath(join(server.root, '.rxfer', 'sums', 'folders'), folder);
  /** Long names (≈ 370-byte records): fewer files and uploads reach the same log sizes. */
  const nameOf = (folder: string, i: number) => `${folder}/${'r'.repeat(240)}-${String(i).padStart(5, '0')}`;
  const bytesOf = (tag: string, i: number) => Buffer.from(`${tag}:${i}:`.padEnd(1 + ((i * 131) % 900), '.'));

  /** Uploads as `put -r` does (BATCH), each reply's digest checked against the bytes sent. */
  const put = async (files: readonly (readonly [string, Buffer])[]): Promise<void> => {
    const results = await Promise.all(files.map(([name, data]) => client.uploadBatched(name, data)));
    results.forEach((result, i) => expect([files[i]![0], result.digest]).toEqual([files[i]![0], sha256(files[i]![1])]));
  };

  /** A folder of `count` distinct new files, one `put -r`: its log compacted at 64 KiB and again at four times that, each dropping nothing. */
  const fill = async (folder: string, count: number) => {
    await put(Array.from({ length: count }, (_, i) => [nameOf(folder, i), bytesOf('fill', i)] as const));
    await compactionsDone(commits);
    const after = look(logOf(folder));
    // Compacted during the fill (a header), and everything in the log is live: its factor is raised.
    expect(after.base).toBeGreaterThan(64 * KiB);
    return after;
  };

  /** Every digest LIST and STAT tell for the folder is the sha256 of the file on disk. */
  const digestsTrue = async (folder: string, stated: readonly string[]) => {
    const listed = await client.list(folder);
    let withDigest = 0;
    for (const entry of listed) {
      const actual = sha256(readFileSync(join(server.root, entry.name)));
      if (entry.digest !== undefined) {
        withDigest++;
        expect([entry.name.slice(-5), entry.digest]).toEqual([entry.name.slice(-5), actual]);
      }
    }
    // Every file here went through the server: each has its digest.
    expect(withDigest).toBe(listed.length);
    for (const name of stated) {
      const stat = await client.stat(name);
      expect([name.slice(-5), stat.digest]).toEqual([name.slice(-5), sha256(readFileSync(join(server.root, name)))]);
    }
  };

  /**
   * Rounds of rewrites of `names` (150 uploads a round, new contents, sizes changing), the log looked
   * at after each, until `until` compactions were seen or `maxRounds` ran out.
   */
  const rewrite = async (folder: string, names: readonly string[], until: number, maxRounds: number) => {
    const watch = logWatch(logOf(folder));
    let roundBytes = 0;
    for (let round = 0; round < maxRounds && watch.seen.length < until; round++) {
      const files = Array.from({ length: 150 }, (_, j) => [names[j % names.length]!, bytesOf(`w${round}`, j + round)] as const);
      await put(files);
      await compactionsDone(commits);
      const sizeBefore = watch.last.size;
      if (!watch.check()) roundBytes = Math.max(roundBytes, watch.last.size - sizeBefore);
    }
    return { watch, roundBytes };
  };

  test('a clean fill raises the factor; rewrites of 25 names still compact the log within 8 × its live records, then at each doubling; every digest true', async () => {
    const filled = await fill('a', 1300);
    const live = filled.size;
    // Few names (25 of 1,300), rewritten thousands of times (each name's uploads wait for each other: 25 go side by side).
    const names = Array.from({ length: 25 }, (_, i) => nameOf('a', i * 51));
    const { watch, roundBytes } = await rewrite('a', names, 2, 400);
    // Numbers for the report.
    console.log(`[07b a] fill: log ${live} B (header ${filled.base}); compactions during rewrites: ${JSON.stringify(watch.seen)}; max ${watch.max} B (${(watch.max / live).toFixed(2)} × live); a round adds ≤ ${roundBytes} B`);
    expect(watch.seen.length).toBe(2);
    const [first, second] = watch.seen as [Compaction, Compaction];
    // The attack reached a raised factor: the clean fill had the first rewrite compaction wait past four times its base.
    expect(first.before).toBeGreaterThan(4 * filled.base);
    // Compacted, and to what is live (the fill's records; the 25 names' last versions replace theirs).
    expect(first.after).toBeLessThan(live * 1.05);
    // Not later than 8 × its base after the fill (+ one round, the granularity of this look).
    expect(first.before).toBeLessThanOrEqual(8 * filled.base + roundBytes);
    // That compaction dropped most of the log: back to each doubling.
    expect(second.before).toBeLessThanOrEqual(2 * first.after + roundBytes);
    // Bounded by a small multiple of the live records throughout.
    expect(watch.max).toBeLessThanOrEqual(8 * live + roundBytes);
    await digestsTrue('a', names);
  }, 60_000);

  test('the worker killed, then idle-stopped, after a fill raised its factor: each new one starts at 2 (compacts at the doubling), nothing breaks', async () => {
    const filled = await fill('k', 1300);
    const names = [0, 1, 2].map((i) => nameOf('k', i * 333));
    // Killed as a lost thread is (hostile-2026-12-05h-worker-loss): terminate().
    const killed = (commits as unknown as { worker?: Worker }).worker!;
    expect(killed).toBeDefined();
    await killed.terminate();
    await eventually(() => (commits as unknown as { worker?: Worker }).worker !== killed, 5000, 'the killed worker to be forgotten');
    const afterKill = await rewrite('k', names, 1, 100);
    console.log(`[07b k] fill base ${filled.base} B, size ${filled.size}; after kill: ${JSON.stringify(afterKill.watch.seen)}`);
    expect(afterKill.watch.seen).toHaveLength(1);
    // A new worker: the header's base, factor 2.
    expect(afterKill.watch.seen[0]!.before).toBeLessThanOrEqual(2 * filled.base + afterKill.roundBytes);
    expect(afterKill.watch.seen[0]!.after).toBeLessThan(filled.size * 1.05);
    // Idle: stopped as the idle timer stops it (SmallCommits.stop), then started again by the next upload.
    const idle = (commits as unknown as { worker?: Worker }).worker!;
    (commits as unknown as { stop(worker: Worker): void }).stop(idle);
    expect((commits as unknown as { worker?: Worker }).worker).toBeUndefined();
    const afterIdle = await rewrite('k', names, 1, 100);
    expect(afterIdle.watch.seen).toHaveLength(1);
    const base = afterKill.watch.seen[0]!.after;
    expect(afterIdle.watch.seen[0]!.before).toBeLessThanOrEqual(2 * base + afterIdle.roundBytes);
    expect((commits as unknown as { worker?: Worker }).worker?.threadId).not.toBe(idle.threadId);
    await digestsTrue('k', names);
  }, 60_000);

  test('records made on demand on the main thread after a fill raised the factor: its requests, declined until the worker is due, still get the log compacted, bounded', async () => {
    const filled = await fill('m', 1300);
    // A name whose file is not there (a version recorded last for a file that is would replace its
    // record: LIST would then show no digest for it, rightly).
    const name = 'm/gone.bin';
    const log = logOf('m');
    const watch = logWatch(log);
    // Versions of the file that are not its own (what a co-tenant's rewrites by other means leave
    // recorded, each downloaded once): each a line on the main thread, superseded at once.
    let i = 0;
    let chunkBytes = 0;
    while (watch.seen.length < 2 && watch.last.size < COMPACT_UP_TO_BYTES && i < 100_000) {
      const from = watch.last.size;
      for (const end = i + 200; i < end; i++) await digests.remember(name, { size: 3, mtimeMs: 1_600_000_000_000 + i, ino: 9_000_000 + i }, 'sha256', sha256(`v${i}`));
      await compactionsDone(commits);
      if (!watch.check()) chunkBytes = Math.max(chunkBytes, watch.last.size - from);
    }
    console.log(`[07b m] fill base ${filled.base} B, size ${filled.size}; ${i} records made on demand; compactions ${JSON.stringify(watch.seen)}; max ${watch.max} B`);
    expect(watch.seen).toHaveLength(2);
    // A raised factor reached (declined past four times the base), and yet compacted.
    expect(watch.seen[0]!.before).toBeGreaterThan(4 * filled.base);
    // Asked with the size at its first append of a chunk (later ones wait for that answer): a chunk late at most.
    expect(watch.seen[0]!.before).toBeLessThanOrEqual(8 * filled.base + 2 * chunkBytes);
    expect(watch.seen[0]!.after).toBeLessThan(filled.size * 1.05);
    expect(watch.seen[1]!.before).toBeLessThanOrEqual(2 * watch.seen[0]!.after + 2 * chunkBytes);
    // The worker is not left thinking a compaction is still asked for.
    expect((commits as unknown as { compactionsAsked: Set<string> }).compactionsAsked.size).toBe(0);
    await digestsTrue('m', [nameOf('m', 7)]);
  }, 60_000);
});

// ---- the commit worker over crafted logs -------------------------------------------------------------

describe('hostile 2026-12-07b: logs near the 8 and 16 MiB marks, through SmallCommits and its worker', () => {
  let at: CommitFolder;
  let commits: SmallCommits;
  let serial = 0;
  /** Live files made so far, by name (the record's lines are for the file as it is). */
  let liveNames: string[];

  beforeEach(async () => {
    at = await makeCommitFolder('h07b');
    commits = new SmallCommits(at.sums);
    liveNames = [];
  });
  afterEach(async () => {
    await commits.close();
    await at.remove();
  });

  /**
   * `bytes` (at least) of records of files made now in the folder, each in two algorithms as a file
   * uploaded with one and downloaded with the other has: what a compaction keeps.
   */
  const liveLines = (bytes: number): string => {
    let lines = '';
    while (lines.length < bytes) {
      const name = `${'L'.repeat(240)}-${serial++}`;
      const path = join(at.folder, name);
      writeFileSync(path, 'x');
      const now = lstatSync(path);
      lines += formatDigestLine(name, now.size, now.mtimeMs, now.ino, 'sha256', 'ab'.repeat(32));
      lines += formatDigestLine(name, now.size, now.mtimeMs, now.ino, 'blake3', 'cd'.repeat(32));
      liveNames.push(name);
    }
    return lines;
  };
  /** `bytes` (at least) of superseded records of the first `names` files: versions they no longer are. */
  const supersededLines = (bytes: number, names: readonly string[]): string => {
    const lines: string[] = [];
    let length = 0;
    for (let i = 0; length < bytes; i++) {
      const line = formatDigestLine(names[i % names.length]!, 1 + (i % 7), 1_700_000_000_000 + serial, 5_000_000 + serial++, 'sha256', 'ef'.repeat(32));
      lines.push(line);
      length += line.length;
    }
    return lines.join('');
  };

  /** One small file rewritten in the folder (the worker appends its line and compacts if due), then its compactions done. */
  const commitOne = async () => {
    await commits.commit(at.job('rewritten.bin', Buffer.from(`v${serial++}`)));
    await compactionsDone(commits);
  };

  /**
   * Drives the worker to factor 8 with a base of ≈ 2.7 MiB of live records: compactions at 64 KiB,
   * at four times that and at eight times that, each finding every record live. `reached`: all three seen.
   */
  const rampToFactor8 = async () => {
    writeFileSync(at.log, liveLines(80 * KiB));
    const watch = logWatch(at.log);
    let reached = true;
    for (const times of [0, 3.2, 7.2]) {
      appendFileSync(at.log, liveLines(times * watch.last.size));
      await commitOne();
      reached &&= watch.check() !== undefined;
    }
    return { watch, reached };
  };

  test('a base of 2.7 MiB at factor 8, then only superseded lines: compacted by 8 MiB (never near 16), then back to each doubling', async () => {
    const { watch, reached } = await rampToFactor8();
    expect(reached).toBe(true);
    const base = watch.last.base;
    expect(base).toBeGreaterThan(2 * MiB);
    expect(base).toBeLessThan(4 * MiB);
    const step = 256 * KiB;
    const keep = liveNames.slice(0, 50);
    for (let i = 0; i < 80 && watch.seen.length < 5; i++) {
      appendFileSync(at.log, supersededLines(step, keep));
      await commitOne();
      watch.check();
    }
    const [, , , fourth, fifth] = watch.seen;
    console.log(`[07b 8MiB] base ${base} B; compactions ${JSON.stringify(watch.seen.slice(3))}; max ${watch.max} B`);
    expect(fourth).toBeDefined();
    expect(fourth!.before).toBeLessThanOrEqual(8 * MiB + step + 4 * KiB);
    expect(fourth!.after).toBeLessThanOrEqual(base + 4 * KiB);
    expect(fifth).toBeDefined();
    expect(fifth!.before).toBeLessThanOrEqual(2 * fourth!.after + step + 4 * KiB);
    expect(watch.max).toBeLessThanOrEqual(8 * MiB + step + 4 * KiB);
  }, 60_000);

  /*
   * Found by this pass, fixed (LAST_CALL_BYTES in small-commit-log.js: a log grown by 1 MiB since its
   * last compaction is compacted at 15 MiB, whatever its factor or base). A folder filled by one `put -r` past 8 MiB of records (≈ 57,000 files
   * of the server's ≈ 146-byte records), at factor 8 from its clean fill, is compacted at just over
   * 8 MiB: min(8 × base, COMPACT_UP_TO_BYTES / 2). Every record is live, so the compacted log, its
   * new base, is just over 8 MiB too, and its next compaction is due past 2 × base > 16 MiB, where
   * none is ever made. Files deleted or replaced since do not matter: the log only grows, a line per
   * upload into the folder, for good. Here: compacted at ≈ 8.4 MB to ≈ 8.76 MB (the fill's last
   * step), then pruned to 1,500 files and rewritten: ≈ 18.6 MB, never compacted.
   * The doubling rule compacted the same fill at each doubling (here last at ≈ 5.6 MB, next due past
   * ≈ 11.2 MB, not reached by the fill), so after the prune it compacted the log at ≈ 11.2 MB, down to
   * 177 bytes. Run as a plain test() against HEAD's worker (the doubling rule), it passes.
   * The promise: a pruned folder's log is compacted again before 16 MiB.
   */
  test('a folder filled past 8 MiB at factor 8, then pruned and rewritten: its log is compacted again before 16 MiB (was: never)', async () => {
    // The attack must reach its state: factor 8 from a clean fill...
    const { watch, reached } = await rampToFactor8();
    expect(reached).toBe(true);
    const rampBase = watch.last.base;
    // The rest of the fill, 384 KiB of new files at a time (a `put -r` goes on), to 8.6 MiB.
    while (watch.last.size < 8.6 * MiB) {
      appendFileSync(at.log, liveLines(384 * KiB));
      await commitOne();
      watch.check();
    }
    const filled = watch.last;
    // A fill past 8 MiB, compacted there at factor 8 (its base now past 8 MiB).
    expect(filled.size).toBeGreaterThan(8 * MiB);
    expect(watch.seen).toHaveLength(4);
    console.log(`[07b] ramp base ${rampBase} B; after the fill: size ${filled.size} B, base ${filled.base} B; compactions ${JSON.stringify(watch.seen)}`);
    // Pruned: all but 1,500 of the files deleted (≈ 1 MiB of live records left).
    const kept = liveNames.slice(0, 1500);
    for (const name of liveNames.slice(1500)) unlinkSync(join(at.folder, name));
    // Rewritten, again and again: superseded lines, 1 MiB between commits, until compacted or past 17 MiB.
    const seenBefore = watch.seen.length;
    while (watch.seen.length === seenBefore && watch.last.size < 17 * MiB) {
      appendFileSync(at.log, supersededLines(MiB, kept));
      await commitOne();
      watch.check();
    }
    console.log(`[07b] after the prune: compactions ${JSON.stringify(watch.seen.slice(seenBefore))}; log now ${watch.last.size} B; max ${watch.max} B`);
    // The promise: compacted before the log crossed 16 MiB, down to what is live.
    expect({ compacted: watch.seen.length > seenBefore, max: watch.max <= COMPACT_UP_TO_BYTES }).toEqual({ compacted: true, max: true });
    expect(watch.last.size).toBeLessThan(2 * MiB);
  }, 90_000);
});
