import { appendFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { COMPACT_FROM_BYTES, COMPACT_UP_TO_BYTES, LAST_CALL_BYTES, MAX_GROWTH, formatDigestLine, grownForCompaction, nextGrowth } from '../../../src/storage/small-commit-log';
import { SmallCommits } from '../../../src/storage/small-commits';
import { type CommitFolder, makeCommitFolder } from '../../helpers/commit-folder';
import { eventually } from '../../helpers/server';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A folder's digest log is compacted once it has grown `growth` times over its size after the last
 * compaction. The factor is 2 (each doubling) until a compaction finds little to drop: a folder
 * filled once has a log of distinct names, and compacting it at every doubling was all cost (issue 20:
 * ≈ 9 µs of the commit worker per file of a `put -r` into one folder).
 */
describe('when a digest log is next compacted', () => {
  test('2 by default, as before: past COMPACT_FROM_BYTES and past twice the last compacted size', () => {
    expect(grownForCompaction(COMPACT_FROM_BYTES, 0)).toBe(false);
    expect(grownForCompaction(COMPACT_FROM_BYTES + 1, 0)).toBe(true);
    expect(grownForCompaction(200 * KiB, 100 * KiB)).toBe(false);
    expect(grownForCompaction(200 * KiB + 1, 100 * KiB)).toBe(true);
  });

  test('a raised factor waits that many times over, but never past half the size beyond which no log is compacted', () => {
    expect(grownForCompaction(300 * KiB, 100 * KiB, 4)).toBe(false);
    expect(grownForCompaction(400 * KiB + 1, 100 * KiB, 4)).toBe(true);
    // 8 × 3 MiB would be 24 MiB, past the 16 MiB limit: a log full of superseded lines would then only
    // grow. It is compacted at 8 MiB, where a doubling would still have compacted it (at 6).
    expect(grownForCompaction(8 * MiB, 3 * MiB, 8)).toBe(false);
    expect(grownForCompaction(8 * MiB + 1, 3 * MiB, 8)).toBe(true);
    expect(COMPACT_UP_TO_BYTES / 2).toBe(8 * MiB);
    // And never sooner than a doubling: a base above 4 MiB keeps the doubling (5 → 10 MiB).
    expect(grownForCompaction(10 * MiB, 5 * MiB, 8)).toBe(false);
    expect(grownForCompaction(10 * MiB + 1, 5 * MiB, 8)).toBe(true);
  });

  test('a base past half the limit: compacted at 15 MiB once grown by 1 MiB, never past the limit and never again without growing', () => {
    expect(LAST_CALL_BYTES).toBe(15 * MiB);
    // 8.4 MiB, all live when compacted (a folder filled once): a doubling would come only past the
    // 16 MiB limit, and a folder emptied and rewritten since would grow its log for good.
    expect(grownForCompaction(15 * MiB, 8.4 * MiB, 8)).toBe(false);
    expect(grownForCompaction(15 * MiB + 1, 8.4 * MiB, 8)).toBe(true);
    expect(grownForCompaction(15 * MiB + 1, 8.4 * MiB)).toBe(true);
    // Compacted at 14.5 MiB: at 15.5, not sooner (a log of live records is not compacted at every append).
    expect(grownForCompaction(15.2 * MiB, 14.5 * MiB)).toBe(false);
    expect(grownForCompaction(15.5 * MiB + 1, 14.5 * MiB)).toBe(true);
  });

  test('nextGrowth: a compaction that dropped under a quarter doubles the factor, up to 8; one that dropped more brings it back to 2', () => {
    expect(nextGrowth(2, 100, 100)).toBe(4);
    expect(nextGrowth(4, 100, 80)).toBe(8);
    expect(nextGrowth(8, 100, 90)).toBe(MAX_GROWTH);
    expect(MAX_GROWTH).toBe(8);
    expect(nextGrowth(8, 100, 75)).toBe(2);
    expect(nextGrowth(4, 100, 10)).toBe(2);
  });
});

describe('the commit worker, compacting a folder filled once and then rewritten', () => {
  let at: CommitFolder;
  let commits: SmallCommits;
  /** Compactions the worker started (its messages say so after each batch's replies). */
  let compactions: number;
  /** Workers whose messages are counted. */
  const counted = new WeakSet<Worker>();

  beforeEach(async () => {
    at = await makeCommitFolder('growth');
    commits = new SmallCommits(at.sums);
    compactions = 0;
  });
  afterEach(async () => {
    await commits.close();
    await at.remove();
  });

  let serial = 0;
  /** Records of `count` small files written into the folder now: what a compaction keeps. */
  const liveRecords = async (count: number): Promise<string> => {
    let lines = '';
    for (let i = 0; i < count; i++) {
      const name = `live-${serial++}.bin`;
      await writeFile(join(at.folder, name), 'x');
      const now = await stat(join(at.folder, name));
      lines += formatDigestLine(name, now.size, now.mtimeMs, now.ino, 'sha256', 'ef'.repeat(32));
    }
    return lines;
  };
  /** Records of files that are not in the folder (replaced since): what a compaction drops. */
  const staleRecords = (count: number): string => {
    let lines = '';
    for (let i = 0; i < count; i++) lines += formatDigestLine(`gone-${serial++}.bin`, 1, 1_733_000_000_000 + i, 2_000_000 + i, 'sha256', 'cd'.repeat(32));
    return lines;
  };
  const logSize = async () => (await stat(at.log)).size;

  /**
   * One small file committed into the folder (the worker appends its record, and compacts after its
   * reply if the log is due), then every compaction it started finished.
   */
  const commitOne = async () => {
    await commits.commit(at.job(`c-${serial++}.bin`, Buffer.from('y')));
    const worker = (commits as unknown as { worker: Worker }).worker;
    if (!counted.has(worker)) {
      counted.add(worker);
      worker.on('message', (message: { compactionsStarted: number }) => (compactions += message.compactionsStarted));
    }
    await eventually(() => (commits as unknown as { compacting: number }).compacting === 0, 30_000, 'the compaction to finish');
  };

  /** A log of live records grown past COMPACT_FROM_BYTES: compacted once, nothing dropped. */
  const firstCompaction = async () => {
    // Counted from the first commit on (the listener is added with it): so begin below the threshold.
    await writeFile(at.log, await liveRecords(10));
    await commitOne();
    expect(compactions).toBe(0);
    await appendFile(at.log, await liveRecords(Math.ceil(COMPACT_FROM_BYTES / 140)));
    await commitOne();
    expect(compactions).toBe(1);
  };

  test('a log of distinct live names: compacted past 64 KiB, then not at twice that but at four times, then at eight', async () => {
    await firstCompaction();
    // Nothing was dropped: the next one waits for four times this size, not two.
    const base = await logSize();
    await appendFile(at.log, await liveRecords(Math.ceil((1.6 * base) / 140)));
    expect(await logSize()).toBeGreaterThan(2 * base);
    await commitOne();
    expect(compactions).toBe(1);
    await appendFile(at.log, await liveRecords(Math.ceil((1.6 * base) / 140)));
    expect(await logSize()).toBeGreaterThan(4 * base);
    await commitOne();
    expect(compactions).toBe(2);
    // Again nothing dropped: eight times over next.
    const second = await logSize();
    await appendFile(at.log, await liveRecords(Math.ceil((3.2 * second) / 140)));
    expect(await logSize()).toBeGreaterThan(4 * second);
    await commitOne();
    expect(compactions).toBe(2);
  }, 60_000);

  test('once a compaction drops most of the log (names replaced since), it is back to each doubling', async () => {
    await firstCompaction();
    const base = await logSize();
    // Superseded records: at four times the base (the raised factor) the compaction drops them all...
    await appendFile(at.log, staleRecords(Math.ceil((3.2 * base) / 140)));
    await commitOne();
    expect(compactions).toBe(2);
    const after = await logSize();
    expect(after).toBeLessThan(1.1 * base);
    // ...and the next one comes at the next doubling, not at four times.
    await appendFile(at.log, staleRecords(Math.ceil((1.3 * after) / 140)));
    expect(await logSize()).toBeGreaterThan(2 * after);
    await commitOne();
    expect(compactions).toBe(3);
  }, 60_000);
});
