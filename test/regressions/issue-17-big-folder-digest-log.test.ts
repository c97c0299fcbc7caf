import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmallCommits } from '../../src/storage/small-commits';
import { formatDigestLine } from '../../src/storage/small-commit-log';
import { type CommitFolder, makeCommitFolder } from '../helpers/commit-folder';

/**
 * Found by `scripts/large-trees.js --per-folder 200000` (issue 17): once a folder held about 67,000
 * small files, its digest log (≈ 10 MB) no longer fitted the commit worker's heap when compacted. The
 * worker died of it after renaming the batch's files, so every file of the batch was told
 * `EWORKER` although it was in place, and each new worker compacted again on its first append and
 * died again: 16,575 of 80,000 files of one `put -r` refused, the server spending minutes restarting
 * threads. Now the worker replies before it compacts, compacts a chunk at a time within a heap
 * sized for it, leaves alone a log too big to hold, and writes the compacted size into the log so a
 * new worker does not compact again a log it did not see grow.
 */
describe('a folder whose digest log is bigger than the commit worker used to hold', () => {
  let at: CommitFolder;
  let commits: SmallCommits;

  beforeEach(async () => {
    at = await makeCommitFolder('big-log');
    commits = new SmallCommits(at.sums);
  });
  afterEach(async () => {
    await commits.close();
    await at.remove();
  });

  const job = (name: string, bytes: Buffer) => at.job(name, bytes, { createOnly: true });
  const log = () => at.log;
  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  /** A log of `count` live files (over the 64 KiB from which a log is compacted), written here. */
  const liveRecords = async (count: number) => {
    let body = '';
    for (let i = 0; i < count; i++) {
      const name = `live-${i}.bin`;
      await writeFile(join(at.folder, name), 'x');
      const now = await stat(join(at.folder, name));
      body += formatDigestLine(name, now.size, now.mtimeMs, now.ino, 'sha256', 'ef'.repeat(32));
    }
    return body;
  };
  /** Records of `count` files that are not (or no longer) in the folder: what a compaction drops. */
  const staleLines = (count: number, from = 0) => {
    const lines: string[] = [];
    for (let i = from; i < from + count; i++) lines.push(formatDigestLine(`gone-${i}.bin`, 1024, 1_733_000_000_000 + i, 1_000_000 + i, 'sha256', 'cd'.repeat(32)));
    return lines.join('');
  };
  /** Waits for the worker to finish what it started after its replies (close waits for compactions). */
  const settle = async () => {
    await commits.close();
    commits = new SmallCommits(at.sums);
  };

  test('a create-only commit into it is told OK, the file is in place, and the log is compacted to what is there', async () => {
    // 100,000 records, ≈ 15 MB, under the 16 MiB compaction cap: the old compaction (the whole log
    // as one string, split, then a Map) needed about four times that, past the worker's 32 MB.
    const parts: string[] = [];
    for (let at = 0; at < 100_000; at += 50_000) parts.push(staleLines(50_000, at));
    await writeFile(log(), parts.join(''));
    const bytes = randomBytes(700);
    // The old worker renamed the file, then died compacting: EWORKER for a file that was stored.
    await expect(commits.commit(job('new.bin', bytes))).resolves.toMatchObject({ replacedBytes: 0 });
    expect(await readFile(join(at.folder, 'new.bin'))).toEqual(bytes);
    await settle();
    // Compacted: a header, and the one record whose file is there (its size, mtime and inode match).
    const lines = (await readFile(log(), 'utf8')).split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\{"compacted": *\d+\}$/);
    const record = JSON.parse(lines[1]!);
    const now = await stat(join(at.folder, 'new.bin'));
    expect(record).toMatchObject({ n: 'new.bin', s: 700, m: now.mtimeMs, i: now.ino, h: 'sha256', d: sha256(bytes) });
    expect(Number(/\d+/.exec(lines[0]!)![0])).toBe((await stat(log())).size);
    // And the same worker (or its successor) goes on committing into the folder.
    await expect(commits.commit(job('after.bin', randomBytes(10)))).resolves.toBeDefined();
    expect((await readdir(at.sums)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  test('a compacted log is not compacted again by a new worker until it has doubled', async () => {
    // 600 live records (≈ 90 KB, over the 64 KiB where compaction starts) under a header saying so.
    const body = await liveRecords(600);
    const header = (bytes: number) => `{"compacted":${String(bytes).padStart(15, ' ')}}\n`;
    await writeFile(log(), header(header(0).length + body.length) + body);
    const before = await stat(log());
    await commits.commit(job('one-more.bin', randomBytes(5)));
    await settle();
    const after = await stat(log());
    expect(after.ino).toBe(before.ino);
    expect(after.size).toBeGreaterThan(before.size);
  });

  test('the same log without a header (written before it had one) is compacted on the first append', async () => {
    const body = await liveRecords(600);
    await writeFile(log(), body + staleLines(100));
    const before = await stat(log());
    await commits.commit(job('one-more.bin', randomBytes(5)));
    await settle();
    const after = await stat(log());
    expect(after.ino).not.toBe(before.ino);
    const text = await readFile(log(), 'utf8');
    expect(text).not.toContain('gone-');
    for (const name of [...Array.from({ length: 600 }, (_, i) => `live-${i}.bin`), 'one-more.bin']) expect(text).toContain(`"n":"${name}"`);
  });

  test('a log too big to hold in the worker is left to grow: the commit is told OK and nothing is rewritten', async () => {
    // Over COMPACT_UP_TO_BYTES (16 MiB) of stale records.
    const piece = staleLines(50_000);
    const pieces = Math.ceil((17 * 1024 * 1024) / piece.length);
    await writeFile(log(), piece.repeat(pieces));
    const before = await stat(log());
    await expect(commits.commit(job('small.bin', randomBytes(3)))).resolves.toBeDefined();
    await settle();
    const after = await stat(log());
    expect(after.ino).toBe(before.ino);
    expect(after.size).toBeGreaterThan(before.size);
    await expect(commits.commit(job('next.bin', randomBytes(3)))).resolves.toBeDefined();
  });
});
