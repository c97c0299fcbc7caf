import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestIndex } from '../../../src/storage/digest-index';
import { LocalSmallStagedWrite } from '../../../src/storage/local-small-staged-write';
import { NameLocks } from '../../../src/storage/name-locks';
import { SmallCommits } from '../../../src/storage/small-commits';

/**
 * A small upload held in memory and committed by the worker (SmallCommits), in-process on a real
 * temp root. Nothing touches the disk before the commit; a short, long or aborted upload stores nothing.
 */
describe('LocalSmallStagedWrite', () => {
  let root: string;
  let digests: DigestIndex;
  let commits: SmallCommits;
  let locks: NameLocks;
  let folders: string[];
  const staging = () => join(root, '.rxfer', 'staging');
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  const verified = (bytes: string, size = Buffer.byteLength(bytes)) => ({ size, digest: sha(bytes), hash: 'sha256' as const });
  const exists = (path: string) => stat(path).then(() => true, () => false);

  const small = (target: string, size: number, options: { createOnly?: boolean; measureReplaced?: boolean; admitReplaced?: (bytes: number) => void } = {}) =>
    new LocalSmallStagedWrite(
      target as RemoteName,
      join(root, target),
      size,
      options.createOnly ?? false,
      commits,
      options.measureReplaced ?? false,
      (work) => {
        folders.push(root);
        return work(root);
      },
      { locks, stagingFolder: staging() },
      options.admitReplaced,
    );

  /** Writes the chunks and waits until the sink took them (or failed). */
  const send = async (write: LocalSmallStagedWrite, ...chunks: string[]) => {
    for (const chunk of chunks) await new Promise<void>((resolve) => write.sink.write(Buffer.from(chunk), () => resolve()));
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-small-staged-'));
    await mkdir(staging(), { recursive: true });
    digests = new DigestIndex(root);
    await digests.init();
    commits = new SmallCommits(digests.logs.directory);
    locks = new NameLocks();
    folders = [];
  });
  afterEach(async () => {
    await commits.close();
    await rm(root, { recursive: true, force: true });
  });

  test('writeWhole: the whole file in one piece is committed as it is; a wrong size, or after the stream took bytes, is refused and nothing stored', async () => {
    const whole = small('whole.txt', 5);
    whole.writeWhole(Buffer.from('whole'));
    expect((await whole.commit(verified('whole'))).size).toBe(5);
    expect(await readFile(join(root, 'whole.txt'), 'utf8')).toBe('whole');

    const short = small('short.txt', 5);
    expect(() => short.writeWhole(Buffer.from('four'))).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED', message: 'cannot store short.txt: 4 bytes handed over for a declared 5; nothing stored' }));
    const mixed = small('mixed.txt', 5);
    await send(mixed, 'wh');
    expect(() => mixed.writeWhole(Buffer.from('whole'))).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED' }));
    await expect(mixed.commit(verified('whole'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(await exists(join(root, 'short.txt'))).toBe(false);
    expect(await exists(join(root, 'mixed.txt'))).toBe(false);
  });

  test('a quota asks at commit, holding the name, what it is about to replace; a refusal publishes nothing (ADDFILE is not asked)', async () => {
    await writeFile(join(root, 'old.txt'), 'eleven byte');
    const asked: number[] = [];
    const admitted = small('old.txt', 3, { admitReplaced: (bytes) => void asked.push(bytes) });
    await send(admitted, 'new');
    // The size the quota was asked about is the one the commit reports (measured once, under the lock).
    expect((await admitted.commit(verified('new'))).replacedBytes).toBe(11);
    expect(asked).toEqual([11]);
    expect(await readFile(join(root, 'old.txt'), 'utf8')).toBe('new');

    let lockHeld: boolean | undefined;
    const refused = small('old.txt', 5, {
      admitReplaced: () => {
        lockHeld = locks.size > 0;
        throw new RxferError('QUOTA_EXCEEDED', 'no room');
      },
    });
    await send(refused, 'later');
    await expect(refused.commit(verified('later'))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: 'no room' });
    expect(lockHeld).toBe(true);
    expect(await readFile(join(root, 'old.txt'), 'utf8')).toBe('new');
    expect(await readdir(staging())).toEqual([]);

    // A name with no file (gone meanwhile): asked as 0 bytes replaced, a number the quota can check.
    const gone = small('gone.txt', 1, { admitReplaced: (bytes) => void asked.push(bytes) });
    await send(gone, 'g');
    await gone.commit(verified('g'));
    expect(asked).toEqual([11, 0]);
    const created = small('fresh.txt', 2, { createOnly: true, admitReplaced: () => void asked.push(-1) });
    await send(created, 'ok');
    await created.commit(verified('ok'));
    expect(asked).toEqual([11, 0]);
  });

  test('chunks are put together in order and committed under the name, with the digest in the folder’s log', async () => {
    const write = small('a.txt', 11);
    await send(write, 'hello', ' ', 'world');
    expect(await readdir(root)).toEqual(['.rxfer']); // nothing on disk before the commit
    const committed = await write.commit(verified('hello world'));
    const stats = await stat(join(root, 'a.txt'));
    expect(committed).toEqual({ name: 'a.txt', size: 11, digest: sha('hello world'), mtimeMs: stats.mtimeMs, replacedBytes: 0 });
    expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('hello world');
    expect(await digests.lookup('a.txt', stats, 'sha256')).toBe(sha('hello world'));
    expect(await readdir(staging())).toEqual([]);
    expect(folders).toEqual([root]);
    expect(locks.size).toBe(0);
  });

  test('reports the size of the replaced file when asked', async () => {
    await writeFile(join(root, 'r.txt'), 'x'.repeat(50));
    const write = small('r.txt', 2, { measureReplaced: true });
    await send(write, 'ab');
    expect((await write.commit(verified('ab'))).replacedBytes).toBe(50);
  });

  test('does not measure the replaced file unless asked (replacedBytes 0: the stat is for quotas only)', async () => {
    await writeFile(join(root, 'n.txt'), 'x'.repeat(50));
    const write = small('n.txt', 2);
    await send(write, 'ab');
    expect((await write.commit(verified('ab'))).replacedBytes).toBe(0);
    expect(await readFile(join(root, 'n.txt'), 'utf8')).toBe('ab');
  });

  test('create-only onto an existing name: EXISTS, the file untouched', async () => {
    await writeFile(join(root, 'c.txt'), 'first');
    const write = small('c.txt', 6, { createOnly: true });
    await send(write, 'second');
    await expect(write.commit(verified('second'))).rejects.toMatchObject({ code: 'EXISTS', message: 'c.txt already exists' });
    expect(await readFile(join(root, 'c.txt'), 'utf8')).toBe('first');
  });

  test('a whole small file is taken without asking the socket to wait', async () => {
    const write = small('w.bin', 64 * 1024);
    expect(write.sink.write(Buffer.alloc(64 * 1024))).toBe(true);
  });

  test('more bytes than declared: the commit fails with that reason and stores nothing', async () => {
    const write = small('long.txt', 3);
    await send(write, 'ab', 'cd');
    await expect(write.commit(verified('abcd', 3))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store long.txt: more than the declared 3 bytes arrived; nothing stored' });
    expect(write.sink.destroyed).toBe(true);
    expect(await exists(join(root, 'long.txt'))).toBe(false);
  });

  test('exactly the declared size fits', async () => {
    const write = small('exact.txt', 4);
    await send(write, 'ab', 'cd');
    await write.commit(verified('abcd'));
    expect(await readFile(join(root, 'exact.txt'), 'utf8')).toBe('abcd');
  });

  test('nothing handed over and no stream: an empty file is stored empty; a declared size with no bytes is refused, nothing stored', async () => {
    const empty = small('empty.txt', 0);
    expect((await empty.commit(verified(''))).size).toBe(0);
    expect(await readFile(join(root, 'empty.txt'), 'utf8')).toBe('');
    const none = small('none.txt', 3);
    await expect(none.commit(verified('abc'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store none.txt: 0 of 3 bytes staged; nothing stored' });
    expect(await exists(join(root, 'none.txt'))).toBe(false);
  });

  test('fewer bytes than verified, or a verified size other than the declared one: nothing stored', async () => {
    const short = small('short.txt', 3);
    await send(short, 'ab');
    await expect(short.commit(verified('abc'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store short.txt: 2 of 3 bytes staged; nothing stored' });
    expect(short.sink.destroyed).toBe(true);
    const other = small('other.txt', 5);
    await send(other, 'abc');
    await expect(other.commit(verified('abc'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(await readdir(root)).toEqual(['.rxfer']);
  });

  test('a commit waits for the lock on its name', async () => {
    let release!: () => void;
    const held = locks.with([join(root, 'l.txt')], () => new Promise<void>((resolve) => (release = resolve)));
    const write = small('l.txt', 1);
    await send(write, 'l');
    const committing = write.commit(verified('l'));
    // A commit of another name, asked for later, is done: an unlocked l.txt would have been in its batch or before.
    const other = small('other.txt', 1);
    await send(other, 'o');
    await other.commit(verified('o'));
    expect(await exists(join(root, 'l.txt'))).toBe(false);
    release();
    await held;
    await committing;
    expect(await readFile(join(root, 'l.txt'), 'utf8')).toBe('l');
  });

  test('abort and suspend keep nothing; a commit after either is refused; a second commit too', async () => {
    const aborted = small('a.txt', 1);
    await send(aborted, 'a');
    await aborted.abort();
    expect(aborted.sink.destroyed).toBe(true);
    await expect(aborted.commit(verified('a'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store a.txt: the upload was aborted before its commit; nothing stored' });

    const suspended = small('s.txt', 1);
    await send(suspended, 's');
    expect(await suspended.suspend()).toBe(0);
    expect(suspended.sink.destroyed).toBe(true);
    await expect(suspended.commit(verified('s'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });

    const twice = small('t.txt', 1);
    await send(twice, 't');
    await twice.commit(verified('t'));
    await writeFile(join(root, 't.txt'), 'changed');
    await expect(twice.commit(verified('t'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(await readFile(join(root, 't.txt'), 'utf8')).toBe('changed');
    expect(await readdir(root)).toEqual(['.rxfer', 't.txt']);
  });

  test('a folder that is gone: the worker’s error becomes a storage error', async () => {
    const write = new LocalSmallStagedWrite('gone/x.txt' as RemoteName, join(root, 'gone', 'x.txt'), 1, false, commits, false, (work) => work(join(root, 'gone')), { locks, stagingFolder: staging() });
    await send(write, 'x');
    await expect(write.commit(verified('x'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringContaining('cannot store gone/x.txt') });
  });
});
