import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { recordFolderSyncs } from '../../helpers/folder-syncs';
import { DigestIndex, SMALL_FILE_BYTES } from '../../../src/storage/digest-index';
import { LocalStagedWrite, StagingServices, assertStagedSize, endStream } from '../../../src/storage/local-staged-write';
import { Writable } from 'node:stream';
import { RxferError } from '../../../src/errors/rxfer-error';
import { NameLocks } from '../../../src/storage/name-locks';
import { PartialUploads } from '../../../src/storage/partial-uploads';

/**
 * LocalStagedWrite in-process on a real temp root: a staging file (create) or a kept partial upload
 * (fromPartial), committed, aborted or suspended. Fast enough to run per mutant (test/MUTATION.md).
 */
describe('LocalStagedWrite', () => {
  let root: string;
  let services: StagingServices;
  let partials: PartialUploads;
  let synced: string[];
  let folderSyncs: ReturnType<typeof recordFolderSyncs>;
  const name = (text: string) => text as RemoteName;
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  const verified = (bytes: Buffer | string) => ({ size: Buffer.byteLength(bytes), digest: sha(bytes), hash: 'sha256' as const });
  const inRoot = <T>(work: (folder: string) => Promise<T>) => work(root);
  const staging = () => join(root, '.rxfer', 'staging');
  const stagingFiles = async () => readdir(staging());
  const exists = (path: string) => stat(path).then(() => true, () => false);
  /** Polls `check` until it holds (or 5 s pass: the test then fails on what it checks next). */
  const until = async (check: () => boolean | Promise<boolean>) => {
    for (const start = Date.now(); !(await check()) && Date.now() - start < 5000; ) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  const keptFiles = async () => (await readdir(join(root, '.rxfer', 'partials'))).filter((entry) => !entry.endsWith('.json'));

  /** A staged write into the staging folder (not resumable) with `bytes` written. */
  const staged = async (target: string, bytes: Buffer | string, options: { createOnly?: boolean; measureReplaced?: boolean; admitReplaced?: (bytes: number) => void } = {}) => {
    const write = await LocalStagedWrite.create(name(target), join(root, target), options.createOnly ?? false, services, options.measureReplaced ?? false, inRoot, options.admitReplaced);
    write.sink.write(bytes);
    return write;
  };

  /** A staged write into `target`'s claimed partial upload, resumed at `resume` if given. */
  const stagedInPartial = async (target: string, bytes: Buffer | string, resume?: { offset: number; digest: string }) => {
    const partial = (await partials.claim(target, 1 << 20, 'sha256', resume))!;
    const write = LocalStagedWrite.fromPartial(name(target), join(root, target), partial, false, services, false, inRoot);
    write.sink.write(bytes);
    return write;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-staged-'));
    await mkdir(staging(), { recursive: true });
    const digests = new DigestIndex(root);
    await digests.init();
    partials = new PartialUploads(root);
    await partials.init();
    folderSyncs = recordFolderSyncs();
    synced = folderSyncs.synced;
    services = { digests, locks: new NameLocks(), stagingFolder: staging() };
  });
  afterEach(async () => {
    folderSyncs.restore();
    await rm(root, { recursive: true, force: true });
  });

  describe('create', () => {
    test('a quota asks at commit, holding the name, what it is about to replace; a refusal publishes nothing (ADDFILE is not asked)', async () => {
      await writeFile(join(root, 'q.txt'), 'eleven byte');
      const asked: [number, number][] = [];
      const admitted = await staged('q.txt', 'new', { admitReplaced: (bytes) => void asked.push([bytes, services.locks.size]) });
      expect((await admitted.commit(verified('new'))).replacedBytes).toBe(11);
      expect(asked).toEqual([[11, 1]]);
      const refused = await staged('q.txt', 'later', {
        admitReplaced: () => {
          throw new RxferError('QUOTA_EXCEEDED', 'no room');
        },
      });
      await expect(refused.commit(verified('later'))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', message: 'no room' });
      expect(await readFile(join(root, 'q.txt'), 'utf8')).toBe('new');
      expect(await stagingFiles()).toEqual([]);
      expect(services.locks.size).toBe(0);
      const created = await staged('fresh.txt', 'ok', { createOnly: true, admitReplaced: (bytes) => void asked.push([bytes, -1]) });
      await created.commit(verified('ok'));
      expect(asked).toEqual([[11, 1]]);
    });

    test('stages in the staging folder, and the commit renames it over the name and fsyncs the folder', async () => {
      await writeFile(join(root, 'a.txt'), 'previous');
      const write = await staged('a.txt', 'new content');
      expect(write.resumed).toBeUndefined();
      const [file] = await stagingFiles();
      expect(file).toMatch(/^\.rxfer-part-/);
      expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('previous');
      const committed = await write.commit(verified('new content'));
      expect(committed).toEqual({ name: 'a.txt', size: 11, digest: sha('new content'), mtimeMs: (await stat(join(root, 'a.txt'))).mtimeMs, replacedBytes: 0 });
      expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('new content');
      expect(await stagingFiles()).toEqual([]);
      expect(synced).toEqual([root]);
      expect(services.locks.size).toBe(0);
    });

    test("a staging folder that is not a folder: STORAGE_FAILED naming the server's folder, not the remote name's", async () => {
      await rm(staging(), { recursive: true });
      await writeFile(staging(), '');
      await expect(LocalStagedWrite.create(name('x.txt'), join(root, 'x.txt'), false, services, false, inRoot)).rejects.toMatchObject({
        code: 'STORAGE_FAILED',
        message: `cannot store x.txt: the server's own folder .rxfer/${basename(staging())} cannot be used (ENOTDIR (not a directory)); nothing stored`,
      });
    });

    test('each staged write has a staging file of its own', async () => {
      await staged('a', 'one');
      await staged('b', 'two');
      expect(await stagingFiles()).toHaveLength(2);
    });
  });

  describe('commit', () => {
    test('reports the size of the file it replaced when asked (quotas), else 0', async () => {
      await writeFile(join(root, 'q.txt'), 'x'.repeat(123));
      expect((await (await staged('q.txt', 'ab', { measureReplaced: true })).commit(verified('ab'))).replacedBytes).toBe(123);
      expect((await (await staged('q.txt', 'cd')).commit(verified('cd'))).replacedBytes).toBe(0);
      expect((await (await staged('fresh.txt', 'cd', { measureReplaced: true })).commit(verified('cd'))).replacedBytes).toBe(0);
    });

    test('create-only: links the new name and removes the staging path; an existing name is EXISTS and untouched', async () => {
      const fresh = await staged('c.txt', 'created', { createOnly: true, measureReplaced: true });
      expect((await fresh.commit(verified('created'))).replacedBytes).toBe(0);
      expect(await readFile(join(root, 'c.txt'), 'utf8')).toBe('created');
      expect((await stat(join(root, 'c.txt'))).nlink).toBe(1);
      expect(await stagingFiles()).toEqual([]);

      const second = await staged('c.txt', 'second', { createOnly: true });
      await expect(second.commit(verified('second'))).rejects.toMatchObject({ code: 'EXISTS' });
      expect(await readFile(join(root, 'c.txt'), 'utf8')).toBe('created');
      expect(await stagingFiles()).toEqual([]);
    });

    test('a size other than the verified one commits nothing and leaves no staging file', async () => {
      await writeFile(join(root, 's.txt'), 'previous');
      const write = await staged('s.txt', 'abc');
      await expect(write.commit({ ...verified('abc'), size: 4 })).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 's.txt: 3 bytes reached the disk of the 4 verified; nothing stored' });
      expect(await readFile(join(root, 's.txt'), 'utf8')).toBe('previous');
      expect(await stagingFiles()).toEqual([]);
    });

    test('waits for the lock on its name: the name changes only once it is free', async () => {
      let release!: () => void;
      const held = services.locks.with([join(root, 'l.txt')], () => new Promise<void>((resolve) => (release = resolve)));
      const committing = (await staged('l.txt', 'locked')).commit(verified('locked'));
      await until(() => services.locks.size === 2); // flushed and fsynced: asking for the lock
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await exists(join(root, 'l.txt'))).toBe(false);
      release();
      await held;
      await committing;
      expect(await readFile(join(root, 'l.txt'), 'utf8')).toBe('locked');
    });

    test('remembers the digest of a large file (a download needs no re-hash), not of a small one', async () => {
      const large = Buffer.alloc(SMALL_FILE_BYTES + 1, 7);
      await (await staged('large.bin', large)).commit(verified(large));
      const edge = Buffer.alloc(SMALL_FILE_BYTES, 8);
      await (await staged('edge.bin', edge)).commit(verified(edge));
      const fresh = new DigestIndex(root);
      await until(async () => (await readdir(join(root, '.rxfer', 'sums'))).some((entry) => entry.endsWith('.json'))); // written in the background
      expect(await fresh.lookup('large.bin', await stat(join(root, 'large.bin')), 'sha256')).toBe(sha(large));
      expect((await readdir(join(root, '.rxfer', 'sums'))).filter((entry) => entry.endsWith('.json'))).toHaveLength(1);
    });

    test('an abort while the commit is under way does not take the data from under it', async () => {
      let release!: () => void;
      const held = services.locks.with([join(root, 'm.txt')], () => new Promise<void>((resolve) => (release = resolve)));
      const write = await staged('m.txt', 'committing');
      const committing = write.commit(verified('committing'));
      await until(() => services.locks.size === 2); // flushed, fsynced, waiting for the lock
      await write.abort();
      release();
      await held;
      await expect(committing).resolves.toMatchObject({ size: 10 });
      expect(await readFile(join(root, 'm.txt'), 'utf8')).toBe('committing');
    });

    test('a write that fails discards the staging data at once, and the commit fails with that error', async () => {
      const write = await staged('f.txt', 'doomed');
      write.sink.destroy(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
      await until(async () => (await stagingFiles()).length === 0);
      expect(await stagingFiles()).toEqual([]);
      await expect(write.commit(verified('doomed'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store f.txt: EIO (i/o error)' });
      expect(await exists(join(root, 'f.txt'))).toBe(false);
    });

    test('a failed write in a partial upload drops the kept data and frees the name', async () => {
      const write = await stagedInPartial('p.bin', 'doomed');
      write.sink.destroy(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
      await expect(write.commit(verified('doomed'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
      expect(await keptFiles()).toEqual([]);
      expect(partials.mayHold('p.bin')).toBe(false);
      expect(await partials.claim('p.bin', 10, 'sha256')).toBeDefined();
    });
  });

  describe('fromPartial', () => {
    test('commits the kept partial under its name and forgets it', async () => {
      const write = await stagedInPartial('big.bin', 'partial data');
      expect(write.resumed).toBeUndefined();
      await write.commit(verified('partial data'));
      expect(await readFile(join(root, 'big.bin'), 'utf8')).toBe('partial data');
      expect(await readdir(join(root, '.rxfer', 'partials'))).toEqual([]);
      expect(partials.mayHold('big.bin')).toBe(false);
      // Released: the name can be claimed again.
      expect(await partials.claim('big.bin', 10, 'sha256')).toBeDefined();
    });

    test('a resumed partial goes on writing at its offset and says where it resumed', async () => {
      await (await stagedInPartial('r.bin', 'first half ')).suspend();
      const resume = { offset: 11, digest: sha('first half ') };
      const write = await stagedInPartial('r.bin', 'second half', resume);
      expect(write.resumed?.offset).toBe(11);
      expect(write.resumed?.hash.hex()).toBe(sha('first half '));
      await write.commit(verified('first half second half'));
      expect(await readFile(join(root, 'r.bin'), 'utf8')).toBe('first half second half');
    });

    test('an abort after the commit does not touch a new upload of the same name', async () => {
      const write = await stagedInPartial('same.bin', 'committed');
      await write.commit(verified('committed'));
      const next = (await partials.claim('same.bin', 100, 'sha256'))!;
      await write.abort();
      expect(await exists(next.path)).toBe(true);
      // Still claimed by the new upload.
      expect(await partials.claim('same.bin', 100, 'sha256')).toBeUndefined();
      expect(await readFile(join(root, 'same.bin'), 'utf8')).toBe('committed');
    });
  });

  describe('abort', () => {
    test('deletes the staging file; a second abort waits for the same clean-up', async () => {
      const write = await staged('a.txt', 'abc');
      await write.abort();
      expect(await stagingFiles()).toEqual([]);
      await write.abort();
      expect(await exists(join(root, 'a.txt'))).toBe(false);
    });

    test('drops a partial upload and frees its name', async () => {
      const write = await stagedInPartial('p.bin', 'abc');
      await write.abort();
      expect(await keptFiles()).toEqual([]);
      expect(await readdir(join(root, '.rxfer', 'partials'))).toEqual([]);
      expect(await partials.claim('p.bin', 10, 'sha256')).toBeDefined();
    });
  });

  describe('suspend', () => {
    test('a partial upload keeps what reached the disk, releases the name and returns its bytes', async () => {
      const write = await stagedInPartial('s.bin', 'kept bytes');
      expect(await write.suspend()).toBe(10);
      expect(await partials.probe('s.bin', 'sha256')).toEqual({ bytes: 10, digest: sha('kept bytes') });
      expect(await exists(join(root, 's.bin'))).toBe(false);
      // A suspended write is settled: a late abort keeps the data.
      await write.abort();
      expect(await partials.probe('s.bin', 'sha256')).toEqual({ bytes: 10, digest: sha('kept bytes') });
    });

    test('a staging file that is not resumable is discarded: 0', async () => {
      const write = await staged('t.txt', 'abc');
      expect(await write.suspend()).toBe(0);
      expect(await stagingFiles()).toEqual([]);
    });

    test('an empty partial is not kept', async () => {
      const write = await stagedInPartial('e.bin', '');
      expect(await write.suspend()).toBe(0);
      expect(await keptFiles()).toEqual([]);
      expect(await partials.claim('e.bin', 10, 'sha256')).toBeDefined();
    });

    test('a partial whose manifest could not be written is not kept', async () => {
      const id = createHash('sha256').update('nm.bin').digest('hex');
      await mkdir(join(root, '.rxfer', 'partials', `${id}.json`));
      const write = await stagedInPartial('nm.bin', 'abc');
      expect(await write.suspend()).toBe(0);
      expect(await keptFiles()).toEqual([]);
    });

    test('a partial whose write failed is not kept', async () => {
      const write = await stagedInPartial('w.bin', 'abc');
      write.sink.destroy(new Error('EIO'));
      expect(await write.suspend()).toBe(0);
      expect(await keptFiles()).toEqual([]);
      expect(await partials.claim('w.bin', 10, 'sha256')).toBeDefined();
    });

    test('a partial whose stream was closed before its data was written is not kept', async () => {
      const write = await stagedInPartial('c.bin', 'abc');
      write.sink.destroy();
      expect(await write.suspend()).toBe(0);
      expect(await keptFiles()).toEqual([]);
    });

    test('a late suspend after the commit leaves a new upload of the same name alone', async () => {
      const write = await stagedInPartial('late.bin', 'committed');
      await write.commit(verified('committed'));
      const next = (await partials.claim('late.bin', 100, 'sha256'))!;
      await next.recorded;
      expect(await write.suspend()).toBe(0);
      expect(await exists(next.path)).toBe(true);
      expect(await readdir(join(root, '.rxfer', 'partials'))).toHaveLength(2); // data and manifest
      expect(await partials.claim('late.bin', 100, 'sha256')).toBeUndefined();
    });

    test('after a commit or an abort there is nothing to keep: 0, and the committed file stays', async () => {
      const committed = await stagedInPartial('done.bin', 'abc');
      await committed.commit(verified('abc'));
      expect(await committed.suspend()).toBe(0);
      expect(await readFile(join(root, 'done.bin'), 'utf8')).toBe('abc');
      const aborted = await stagedInPartial('gone.bin', 'abc');
      await aborted.abort();
      expect(await aborted.suspend()).toBe(0);
    });
  });

  test('every way out closes the staging file', async () => {
    const before = (await readdir('/proc/self/fd')).length;
    for (let i = 0; i < 3; i++) {
      await (await staged(`c${i}`, 'abc')).commit(verified('abc'));
      await (await stagedInPartial(`p${i}`, 'abc')).commit(verified('abc'));
      await (await staged(`a${i}`, 'abc')).abort();
      await (await stagedInPartial(`s${i}`, 'abc')).suspend();
      await (await staged(`w${i}`, 'abc')).commit({ ...verified('abc'), size: 4 }).catch(() => undefined);
    }
    expect((await readdir('/proc/self/fd')).length).toBe(before);
  });

  describe('endStream and assertStagedSize', () => {
    test('endStream: resolves once flushed; rejects with the stream’s own error, or when it was closed early', async () => {
      const written: string[] = [];
      const sink = new Writable({ write: (chunk, _encoding, done) => (written.push(String(chunk)), done()) });
      sink.write('abc');
      await endStream(sink);
      expect(written).toEqual(['abc']);

      const failure = new Error('EIO');
      const errored = new Writable({ write: (_chunk, _encoding, done) => done() });
      errored.on('error', () => undefined);
      errored.destroy(failure);
      await expect(endStream(errored)).rejects.toBe(failure);

      const closed = new Writable({ write: (_chunk, _encoding, done) => done() });
      closed.destroy();
      await expect(endStream(closed)).rejects.toThrow('the staging file was closed before its data was written');

      const failing = new Writable({ write: (_chunk, _encoding, done) => done(failure) });
      failing.on('error', () => undefined);
      failing.write('x');
      await expect(endStream(failing)).rejects.toBe(failure);
    });

    test('assertStagedSize: passes when equal, else STORAGE_FAILED with both numbers', () => {
      expect(() => assertStagedSize(5, 5, 'n')).not.toThrow();
      expect(() => assertStagedSize(4, 5, 'n')).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED', message: 'n: 4 bytes reached the disk of the 5 verified; nothing stored', detail: { onDisk: 4, verified: 5 } }));
    });
  });
});
