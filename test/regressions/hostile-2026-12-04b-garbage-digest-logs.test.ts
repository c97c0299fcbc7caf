import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmallCommits } from '../../src/storage/small-commits';
import { DigestLog } from '../../src/storage/digest-log';
import { formatDigestLine } from '../../src/storage/small-commit-log';
import { type CommitFolder, makeCommitFolder } from '../helpers/commit-folder';

/**
 * Hostile test of the commit worker against digest logs it did not write as it writes them: a
 * compaction header with a huge, negative or cut number, a header alone, binary garbage, a line of
 * megabytes with no end, a log that is a folder or a symlink. Whatever is there, every commit is
 * told OK with the file in place, the worker goes on, no temporary file stays, and a digest read
 * back (DigestLog, as LIST and STAT read it) is the one committed. (Held when written.)
 */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const header = (text: string) => `{"compacted":${text.padStart(15, ' ')}}\n`;
/** ≈ 90 KB of records of files that are not there: past the 64 KiB from which a log is compacted. */
const stale = (): string => Array.from({ length: 700 }, (_, i) => formatDigestLine(`gone-${i}`, 9, 1_733_000_000_000 + i, 5_000 + i, 'sha256', 'cd'.repeat(32))).join('');

const HOSTILE: ReadonlyArray<readonly [string, (log: string) => Promise<void>]> = [
  ['a header with a huge number', (log) => writeFile(log, header('999999999999999') + stale())],
  ['a header with a negative number', (log) => writeFile(log, header('-5') + stale())],
  ['a header cut short', (log) => writeFile(log, '{"compacted":     ' + stale())],
  ['a header alone', (log) => writeFile(log, header('34'))],
  ['binary garbage', (log) => writeFile(log, Buffer.concat([randomBytes(200_000), Buffer.from(stale())]))],
  ['a 3 MiB line with no end', (log) => writeFile(log, stale() + '{"n":"' + 'x'.repeat(3 * 1024 * 1024))],
  ['records whose names are Object.prototype keys', (log) => writeFile(log, stale() + ['__proto__', 'constructor', 'toString'].map((n) => formatDigestLine(n, 1, 1, 1, '__proto__', 'ee')).join(''))],
  ['a folder', (log) => mkdir(log)],
  ['a symlink to a folder', async (log) => { await mkdir(log + '.dir'); await symlink(log + '.dir', log); }],
  ['a dangling symlink', (log) => symlink(log + '.nowhere', log)],
];

describe('the commit worker against a hostile digest log', () => {
  let at: CommitFolder;

  beforeEach(async () => {
    at = await makeCommitFolder('h3-logs');
  });
  afterEach(() => at.remove());

  const job = (name: string, bytes: Buffer) => at.job(name, bytes, { measureReplaced: true });

  test.each(HOSTILE)('%s: commits are told OK and what is read back is right', async (_, plant) => {
    const log = at.log;
    await plant(log);
    const files = new Map<string, Buffer>();
    for (let round = 0; round < 3; round++) {
      const commits = new SmallCommits(at.sums);
      const batch = Array.from({ length: 20 }, (_, i) => [`file-${i}`, randomBytes(10 + round * 20 + i)] as const);
      await Promise.all(batch.map(([name, bytes]) => expect(commits.commit(job(name, bytes))).resolves.toMatchObject({ mtimeMs: expect.any(Number) })));
      for (const [name, bytes] of batch) files.set(name, bytes);
      // Waits for the compaction that batch may have started (a new worker each round reads the header).
      await commits.close();
    }
    // A log that is a folder is the reader's case (hostile-2026-12-04b-log-is-a-folder): not read here.
    const known = (await stat(log).catch(() => undefined))?.isDirectory() ? undefined : await new DigestLog(at.sums).folder('big');
    for (const [name, bytes] of files) {
      expect(await readFile(join(at.folder, name))).toEqual(bytes);
      const digest = known?.get(name, await stat(join(at.folder, name)), 'sha256');
      if (digest !== undefined) expect([name, digest]).toEqual([name, sha256(bytes)]);
    }
    expect((await readdir(at.sums)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  }, 30_000);
});
