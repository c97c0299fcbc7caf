import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestLog } from '../../../src/storage/digest-log';
import { LocalSmallStagedWrite } from '../../../src/storage/local-small-staged-write';
import { NameLocks } from '../../../src/storage/name-locks';
import { SmallCommitJob, SmallCommits, isPublishedFailure } from '../../../src/storage/small-commits';
import { outsideTheRoot, storageError } from '../../../src/storage/storage-errors';

/**
 * A small file renamed into place whose folder could not be fsynced afterwards (the folder `unsynced`,
 * whose fsync the worker reports as EIO: SmallCommits' `faults`, since no local file system fails a
 * folder fsync on command, and the worker's own `fs` is out of a test's reach). The file is there: the
 * worker says so (`published`, with what a commit returns), its digest is recorded as for any commit,
 * and LocalSmallStagedWrite answers NOT_DURABLE, with the bytes replaced, without committing again.
 * (A folder that cannot be opened fails before the rename now: the worker opens it first, to rename
 * through it: opened-paths.ts.)
 * The large-file path and the server's replies: test/promises/folder-sync-fails.test.ts.
 */
describe('a small commit whose folder fsync fails after the rename', () => {
  let dir: string;
  let sums: string;
  let commits: SmallCommits;
  let serial = 0;
  const missing = () => join(dir, 'no-such-folder');
  const unsynced = () => join(dir, 'unsynced');
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-small-not-durable-')));
    sums = join(dir, 'sums');
    await mkdir(sums);
    await mkdir(join(dir, 'staging'));
    await mkdir(unsynced());
    commits = new SmallCommits(sums, { failFolderFsyncs: [unsynced()] });
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
    if (!createOnly) await writeFile(join(unsynced(), 'a.txt'), 'old bytes');
    const [failed, fine] = await Promise.allSettled([
      commits.commit(job('unsynced/a.txt', 'new', { folder: unsynced(), createOnly, measureReplaced: true })),
      commits.commit(job('b.txt', 'other')),
    ]);
    expect(failed.status).toBe('rejected');
    const err = (failed as PromiseRejectedResult).reason;
    expect(isPublishedFailure(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EIO', published: { replacedBytes: createOnly ? 0 : 9 } });
    const onDisk = await stat(join(unsynced(), 'a.txt'));
    expect(err.published.mtimeMs).toBe(onDisk.mtimeMs);
    expect(await readFile(join(unsynced(), 'a.txt'), 'utf8')).toBe('new');
    expect(fine.status).toBe('fulfilled');
    expect(await readdir(join(dir, 'staging'))).toEqual([]);
    expect(await new DigestLog(sums).folder('unsynced').then((records) => records.get('a.txt', onDisk, 'sha256'))).toBe(sha('new'));
  });

  test('isPublishedFailure: only an error that carries what the commit returned', () => {
    expect(isPublishedFailure(undefined)).toBe(false);
    expect(isPublishedFailure(Object.assign(new Error('x'), { code: 'EIO' }))).toBe(false);
    expect(isPublishedFailure(Object.assign(new Error('x'), { code: 'EIO', published: { mtimeMs: 1, replacedBytes: 0 } }))).toBe(true);
  });

  test('a failure before the rename is not published (the name as it was): a folder in the way, a folder that cannot be opened', async () => {
    await mkdir(join(dir, 'in-the-way'));
    const err = await commits.commit(job('in-the-way', 'x')).catch((e: unknown) => e);
    expect(isPublishedFailure(err)).toBe(false);
    expect((await stat(join(dir, 'in-the-way'))).isDirectory()).toBe(true);
    await writeFile(join(dir, 'kept.txt'), 'kept');
    const gone = await commits.commit(job('kept.txt', 'x', { folder: missing() })).catch((e: unknown) => e);
    expect(isPublishedFailure(gone)).toBe(false);
    expect(gone).toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(dir, 'kept.txt'), 'utf8')).toBe('kept');
    expect(await readdir(join(dir, 'staging'))).toEqual([]);
  });

  test('a folder swapped for a link since its check: the worker\'s ELOOP reaches the main thread marked as a link on the way, told as the folder check tells it; a plain failure is not marked', async () => {
    const folder = join(dir, 'swapped');
    await mkdir(folder);
    await mkdir(join(dir, 'elsewhere'));
    await rename(folder, `${folder}.parked`);
    await symlink(join(dir, 'elsewhere'), folder);
    const err = await commits.commit(job('swapped/x', 'x', { folder })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ELOOP', linkOnTheWay: true });
    expect(storageError(err, 'store', 'swapped/x')).toEqual(outsideTheRoot('swapped/x'));
    expect(await readdir(join(dir, 'elsewhere'))).toEqual([]);
    await mkdir(join(dir, 'a-folder'));
    const plain = await commits.commit(job('a-folder', 'x')).catch((e: unknown) => e);
    expect(plain).toHaveProperty('code');
    expect((plain as { linkOnTheWay?: unknown }).linkOnTheWay).toBeUndefined();
  });

  describe('LocalSmallStagedWrite', () => {
    const locks = new NameLocks();
    /** A small upload into `unsynced`, whose folder fsync fails after the rename. */
    const upload = (name: string, text: string, admitReplaced?: (bytes: number) => void) => {
      const runs: string[] = [];
      const write = new LocalSmallStagedWrite(
        name as RemoteName,
        join(unsynced(), name),
        Buffer.byteLength(text),
        false,
        commits,
        true,
        (work) => {
          runs.push(unsynced());
          return work(unsynced());
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
      await writeFile(join(unsynced(), 'c.txt'), 'twelve bytes');
      const { write, runs, verified } = upload('c.txt', 'fresh', admitReplaced);
      const err = await write.commit(verified).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RxferError);
      expect(err).toMatchObject({
        code: 'NOT_DURABLE',
        message: 'c.txt is stored, but its folder could not be synced (EIO (injected folder fsync failure)): a crash of the server could still undo that',
        detail: { errno: 'EIO', replacedBytes: 12 },
      });
      expect(runs).toHaveLength(1);
      expect(await readFile(join(unsynced(), 'c.txt'), 'utf8')).toBe('fresh');
    });
  });
});
