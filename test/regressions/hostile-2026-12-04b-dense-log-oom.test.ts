import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmallCommits } from '../../src/storage/small-commits';
import { formatDigestLine } from '../../src/storage/small-commit-log';
import { type CommitFolder, makeCommitFolder } from '../helpers/commit-folder';

/**
 * Hostile test of the compaction's memory cap. The worker compacts any log up to 16 MiB, on the
 * estimate that a record line is ≈ 150 bytes (≈ 110,000 names). Lines can be far shorter: a log of
 * short names with short digest fields (garbage in `.rxfer`, a log written by another tool or
 * version) holds ≈ 300,000 names in 15 MiB, and the Map of them does not fit the worker's 64 MB
 * heap. The worker died of it in the middle of the compaction: the commit that had arrived
 * meanwhile was told EWORKER, and each new worker compacted again (no header yet) and died again,
 * until appends pushed the log past the 16 MiB cap. What is in the log must never fail a commit: a
 * compaction should be bounded by the records it holds, not by the log's bytes.
 */
describe('a digest log dense with short records', () => {
  let at: CommitFolder;
  let commits: SmallCommits;

  beforeAll(async () => {
    at = await makeCommitFolder('h3-dense');
    // ≈ 15 MiB, under the 16 MiB cap with room for appends: ≈ 300,000 names of files not there.
    const lines: string[] = [];
    for (let i = 0, bytes = 0; bytes < 15 * 1024 * 1024; i++) {
      const line = formatDigestLine(i.toString(36), 0, 0, 0, 'sha256', 'a');
      lines.push(line);
      bytes += line.length;
    }
    await writeFile(at.log, lines.join(''));
    commits = new SmallCommits(at.sums);
  });
  afterAll(async () => {
    await commits.close();
    await at.remove();
  });

  const job = (name: string, bytes: Buffer) => at.job(name, bytes);

  test('commits made while it is compacted are told OK and stored', async () => {
    const first = randomBytes(100);
    await expect(commits.commit(job('first.bin', first))).resolves.toBeDefined();
    // Sent while the worker compacts (it starts right after the reply above): it waits its turn.
    const second = randomBytes(200);
    const third = randomBytes(300);
    await expect(commits.commit(job('second.bin', second))).resolves.toBeDefined();
    await expect(commits.commit(job('third.bin', third))).resolves.toBeDefined();
    expect(await readFile(join(at.folder, 'first.bin'))).toEqual(first);
    expect(await readFile(join(at.folder, 'second.bin'))).toEqual(second);
    expect(await readFile(join(at.folder, 'third.bin'))).toEqual(third);
    await commits.close();
    commits = new SmallCommits(at.sums);
    expect((await readdir(at.sums)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  }, 60_000);
});
