import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestLog } from '../../../src/storage/digest-log';
import { LocalSmallStagedWrite } from '../../../src/storage/local-small-staged-write';
import { NameLocks } from '../../../src/storage/name-locks';
import { SmallCommitJob, SmallCommits, isPublishedFailure } from '../../../src/storage/small-commits';

/**
 * A small file renamed into place whose folder could not be opened or fsynced afterwards (the real
 * failure here: the job names a folder that does not exist, so the worker's open of it fails after
 * the rename). The file is there: the worker says so (`published`, with what a commit returns), its
 * digest is recorded as for any commit, and LocalSmallStagedWrite answers NOT_DURABLE, with the bytes
 * replaced, without committing again (inFolder would take the folder's ENOENT for a vanished folder).
 * The large-file path and the server's replies: test/promises/folder-sync-fails.test.ts.
 */
describe('a small commit whose folder fsync fails after the rename', () => {
  let dir: string;
  let sums: string;
  let commits: SmallCommits;
  let serial = 0;
  const missing = () => join(dir, 'no-such-folder');
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-small-not-durable-'));
    sums = join(dir, 'sums');
    await mkdir(sums);
    await mkdir(join(dir, 'staging'));
    commits = new SmallCommits(sums);
  });
  afterEach(async () => {
    await commits.close();
    await rm(dir, { recursive: true, force: true });
  });

  const job = (name: string, text: string, extra: Partial<SmallCommitJob> = {}): SmallCommitJob => ({
    data: new Uint8Array(Buffer.from(text)),
    staging: join(dir, 'staging', `.rxfer-part-nd-${serial++}`),
    target: join(dir, name),
    folder: dir,
    createOnly: false,
    measureReplaced: false,
    name,
    hash: 'sha256',
    digest: sha(text),
    ...extra,
  });

  test.each([
    ['a replace', false],
    ['a create-only', true],
  ])('%s: the worker says the file is in place, with what it replaced; the digest is recorded; the batch goes on', async (_what, createOnly) => {
    if (!createOnly) await writeFile(join(dir, 'a.txt'), 'old bytes');
    const [unsynced, fine] = await Promise.allSettled([
      commits.commit(job('a.txt', 'new', { folder: missing(), createOnly, measureReplaced: true })),
      commits.commit(job('b.txt', 'other')),
    ]);
    expect(unsynced.status).toBe('rejected');
    const err = (unsynced as PromiseRejectedResult).reason;
    expect(isPublishedFailure(err)).toBe(true);
    expect(err).toMatchObject({ code: 'ENOENT', published: { replacedBytes: createOnly ? 0 : 9 } });
    const onDisk = await stat(join(dir, 'a.txt'));
    expect(err.published.mtimeMs).toBe(onDisk.mtimeMs);
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('new');
    expect(fine.status).toBe('fulfilled');
    expect(await readdir(join(dir, 'staging'))).toEqual([]);
    expect(await new DigestLog(sums).folder('').then((records) => records.get('a.txt', onDisk, 'sha256'))).toBe(sha('new'));
  });

  test('isPublishedFailure: only an error that carries what the commit returned', () => {
    expect(isPublishedFailure(undefined)).toBe(false);
    expect(isPublishedFailure(Object.assign(new Error('x'), { code: 'EIO' }))).toBe(false);
    expect(isPublishedFailure(Object.assign(new Error('x'), { code: 'EIO', published: { mtimeMs: 1, replacedBytes: 0 } }))).toBe(true);
  });

  test('a failure before the rename is not published (the name as it was)', async () => {
    await mkdir(join(dir, 'in-the-way'));
    const err = await commits.commit(job('in-the-way', 'x', { folder: missing() })).catch((e: unknown) => e);
    expect(isPublishedFailure(err)).toBe(false);
    expect((await stat(join(dir, 'in-the-way'))).isDirectory()).toBe(true);
  });

  describe('LocalSmallStagedWrite', () => {
    const locks = new NameLocks();
    /** A small upload whose commit runs in a folder that is not the target's: its fsync fails after the rename. */
    const upload = (name: string, text: string, admitReplaced?: (bytes: number) => void) => {
      const runs: string[] = [];
      const write = new LocalSmallStagedWrite(
        name as RemoteName,
        join(dir, name),
        Buffer.byteLength(text),
        false,
        commits,
        true,
        (work) => {
          runs.push(missing());
          return work(missing());
        },
        { locks, stagingFolder: join(dir, 'staging') },
        admitReplaced,
      );
      write.sink.write(Buffer.from(text));
      return { write, runs, verified: { size: Buffer.byteLength(text), digest: sha(text), hash: 'sha256' as const } };
    };

    test.each([
      ['measured by the worker', undefined],
      ['measured for the quota, under the lock', () => undefined],
    ])('NOT_DURABLE, with the bytes replaced (%s), committed once', async (_what, admitReplaced) => {
      await writeFile(join(dir, 'c.txt'), 'twelve bytes');
      const { write, runs, verified } = upload('c.txt', 'fresh', admitReplaced);
      const err = await write.commit(verified).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RxferError);
      expect(err).toMatchObject({
        code: 'NOT_DURABLE',
        message: 'c.txt is stored, but its folder could not be synced (ENOENT (no such file or directory)): a crash of the server could still undo that',
        detail: { errno: 'ENOENT', replacedBytes: 12 },
      });
      expect(runs).toHaveLength(1);
      expect(await readFile(join(dir, 'c.txt'), 'utf8')).toBe('fresh');
    });
  });
});
