import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs = require('node:fs');
import fsp = require('node:fs/promises');
import { appendFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestIndex, SMALL_FILE_BYTES } from '../../../src/storage/digest-index';
import { LocalFsStorage } from '../../../src/storage/local-fs.storage';
import { PartialUploads } from '../../../src/storage/partial-uploads';
import type { SmallReads } from '../../../src/storage/small-reads';

/**
 * The local adapter's edges that local-fs-storage.test.ts does not reach: which read path a file
 * takes, reads of a file that changes or fails under them, the free-space check's bounds, usage of
 * odd entries. Faults are injected with spies on node:fs (the adapter calls it through the module
 * object), so each case runs in milliseconds on a real temp root.
 */
describe('LocalFsStorage edges', () => {
  let base: string;
  let root: string;
  let storage: LocalFsStorage;
  const name = (text: string) => text as RemoteName;
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  const MiB = 1024 * 1024;
  const staging = () => readdir(join(root, '.rxfer', 'staging'));
  const openFds = () => readdirSync('/proc/self/fd').length;
  const drain = async (stream: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const errno = (code: string) => Object.assign(new Error(`${code}: injected, open '/secret/path'`), { code });
  /** statfs as if the disk had `free` bytes available. */
  const diskWithFree = (free: number) => {
    const real = fs.statfsSync;
    jest.spyOn(fs, 'statfsSync').mockImplementation(((path: fs.PathLike) => ({ ...real(path), bavail: free, bsize: 1 })) as typeof fs.statfsSync);
  };
  const smallReadsOf = (adapter: LocalFsStorage) => (adapter as unknown as { smallReads: SmallReads }).smallReads;
  /**
   * Small files through the thread pool only (the path of reads before the small-read worker is
   * ready, while it is stuck, and once it is closed): their fs calls are then made in this thread,
   * where a spy sees them. The worker's own refusals: small-reads.test.ts.
   */
  const threadPoolReadsOnly = () => smallReadsOf(storage).close();
  /** The small-read worker running, so that its thread's descriptors are counted before a test's "before". */
  const workerRunning = async () => expect(await smallReadsOf(storage).whenReady()).toBe(true);
  const restart = async () => {
    await storage.close();
    storage = new LocalFsStorage(root);
    await storage.init();
  };
  const interrupted = async (target: string, bytes: Buffer, total: number) => {
    const write = await storage.beginWrite(name(target), { size: total, createOnly: false });
    write.sink.write(bytes);
    return write.suspend();
  };

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-local-fs-edges-')));
    root = join(base, 'root');
    storage = new LocalFsStorage(root);
    await storage.init();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await storage.close();
    await rm(base, { recursive: true, force: true });
  });

  test('close of an adapter that was never initialised does nothing', async () => {
    await expect(new LocalFsStorage(join(base, 'never')).close()).resolves.toBeUndefined();
  });

  test('rename and makeFolder without options work on the whole root', async () => {
    await storage.makeFolder(name('d'));
    await writeFile(join(root, 'd', 'f'), 'x');
    await storage.rename(name('d/f'), name('d/g'));
    expect(await readdir(join(root, 'd'))).toEqual(['g']);
  });

  test('the adapter says it lists in pages and lists folders', () => {
    expect(storage.listsInPages).toBe(true);
    expect(storage.listsFolders).toBe(true);
  });

  describe('openRead', () => {
    test('a file up to SMALL_FILE_BYTES is read whole without a FileHandle; a larger one is streamed from one', async () => {
      await writeFile(join(root, 'edge.bin'), Buffer.alloc(SMALL_FILE_BYTES, 3));
      await writeFile(join(root, 'large.bin'), Buffer.alloc(SMALL_FILE_BYTES + 1, 4));
      const open = jest.spyOn(fsp, 'open');
      const small = await storage.openRead(name('edge.bin'));
      expect(small.file).toMatchObject({ size: SMALL_FILE_BYTES, digest: sha(Buffer.alloc(SMALL_FILE_BYTES, 3)) });
      expect((await drain(small.stream)).equals(Buffer.alloc(SMALL_FILE_BYTES, 3))).toBe(true);
      expect(open).not.toHaveBeenCalled();
      const large = await storage.openRead(name('large.bin'));
      expect(sha(await drain(large.stream))).toBe(sha(Buffer.alloc(SMALL_FILE_BYTES + 1, 4)));
      expect(open).toHaveBeenCalledTimes(1);
    });

    test('a name whose folder path runs through a file (ENOTDIR): NOT_FOUND, as for a missing folder', async () => {
      await writeFile(join(root, 'f'), 'x');
      await expect(storage.openRead(name('f/y/x'))).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'f/y/x does not exist' });
    });

    test('a small file that shrinks after its fstat ends early: the bytes read, hashed as sent', async () => {
      await writeFile(join(root, 's.txt'), 'hello');
      const real = fs.fstat;
      const grown = jest.fn();
      // fstat says 15 bytes for this 5-byte file (as if it shrank after the fstat): a later read finds the end.
      // (Only the first: the look after the read sees the file as it is.)
      jest.spyOn(fs, 'fstat').mockImplementationOnce(((fd: number, done: (err: NodeJS.ErrnoException | null, stats: fs.Stats) => void) =>
        real(fd, (err, stats) => {
          if (!err && stats.isFile() && stats.size === 5) {
            grown();
            stats.size = 15;
          }
          done(err, stats);
        })) as typeof fs.fstat);
      const read = await storage.openRead(name('s.txt'));
      expect(read.file).toMatchObject({ size: 5, digest: sha('hello') });
      expect((await drain(read.stream)).toString()).toBe('hello');
      expect(grown).toHaveBeenCalledTimes(1);
    });

    test('a small read that fails (open, fstat) is a storage error naming the action; the descriptor is closed', async () => {
      await threadPoolReadsOnly();
      await writeFile(join(root, 's.txt'), 'hello');
      const realOpen = fs.open;
      const open = jest.spyOn(fs, 'open').mockImplementation(((path: fs.PathLike, flags: fs.OpenMode, done: (err: NodeJS.ErrnoException | null, fd: number) => void) => {
        if (String(path).endsWith('s.txt')) return process.nextTick(done, errno('EIO'), -1);
        return realOpen(path, flags, done);
      }) as typeof fs.open);
      await expect(storage.openRead(name('s.txt'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot read s.txt: EIO (injected)' });
      open.mockRestore();
      const realFstat = fs.fstat;
      const failed = jest.fn();
      jest.spyOn(fs, 'fstat').mockImplementation(((fd: number, done: (err: NodeJS.ErrnoException | null, stats?: fs.Stats) => void) =>
        realFstat(fd, (err, stats) => {
          if (!err && stats.isFile() && stats.size === 5) {
            failed();
            return done(errno('EIO'));
          }
          done(err, stats);
        })) as typeof fs.fstat);
      const before = openFds();
      await expect(storage.openRead(name('s.txt'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot read s.txt: EIO (injected)' });
      expect(failed).toHaveBeenCalledTimes(1);
      expect(openFds()).toBe(before);
    });

    test('a small read whose read fails: STORAGE_FAILED naming the read; the descriptor is closed', async () => {
      await threadPoolReadsOnly();
      await writeFile(join(root, 's.txt'), 'hello');
      const realRead = fs.read;
      const failed = jest.fn();
      jest.spyOn(fs, 'read').mockImplementation(((fd: number, buffer: Buffer, offset: number, length: number, position: number, done: (err: NodeJS.ErrnoException | null, n: number, b: Buffer) => void) => {
        if (buffer.length !== 5) return realRead(fd, buffer, offset, length, position, done);
        failed();
        process.nextTick(done, errno('EIO'), 0, buffer);
      }) as unknown as typeof fs.read);
      const before = openFds();
      await expect(storage.openRead(name('s.txt'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot read s.txt: EIO (injected)' });
      expect(failed).toHaveBeenCalledTimes(1);
      expect(openFds()).toBe(before);
    });

    test('a large file replaced by a folder, or failing to open, between the two opens: typed errors, nothing left open', async () => {
      await writeFile(join(root, 'l.bin'), Buffer.alloc(SMALL_FILE_BYTES + 1, 1));
      await mkdir(join(root, 'd'));
      const realOpen = fsp.open;
      const open = jest.spyOn(fsp, 'open');
      open.mockImplementationOnce((_path, flags) => realOpen(join(root, 'd'), flags));
      await workerRunning();
      const before = openFds();
      await expect(storage.openRead(name('l.bin'))).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'l.bin is a folder, not a file' });
      expect(openFds()).toBe(before);
      open.mockImplementationOnce(() => Promise.reject(errno('EIO')));
      await expect(storage.openRead(name('l.bin'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot read l.bin: EIO (injected)' });
    });

    test('a large read whose digest lookup fails: STORAGE_FAILED naming the read, the handle closed', async () => {
      await writeFile(join(root, 'l.bin'), Buffer.alloc(SMALL_FILE_BYTES + 1, 1));
      jest.spyOn(DigestIndex.prototype, 'digestOf').mockRejectedValueOnce(errno('EIO'));
      await workerRunning();
      const before = openFds();
      await expect(storage.openRead(name('l.bin'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot read l.bin: EIO (injected)' });
      expect(openFds()).toBe(before);
    });

    test('a large file sends what its stat saw, even if it grows before the stream reads', async () => {
      const large = Buffer.alloc(SMALL_FILE_BYTES + 100, 7);
      await writeFile(join(root, 'l.bin'), large);
      const read = await storage.openRead(name('l.bin'));
      appendFileSync(join(root, 'l.bin'), 'more');
      const sent = await drain(read.stream);
      expect(sent.length).toBe(large.length);
      expect(sha(sent)).toBe(read.file.digest);
    });

    test('the file handle of a large read is closed: after the stream, or at once when nothing is left to send', async () => {
      const large = Buffer.alloc(SMALL_FILE_BYTES + 100, 7);
      await writeFile(join(root, 'l.bin'), large);
      await drain((await storage.openRead(name('l.bin'))).stream); // its digest is now on record
      await workerRunning();
      const before = openFds();
      const end = await storage.openRead(name('l.bin'), { from: { offset: large.length, digest: sha(large) } });
      expect(end.offset).toBe(large.length);
      expect(openFds()).toBe(before);
      const whole = await storage.openRead(name('l.bin'));
      const closed = once(whole.stream, 'close');
      await drain(whole.stream);
      // Bounded wait: with the handle left open no 'close' ever comes, and the count tells.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
      expect(openFds()).toBe(before);
    });
  });

  describe('beginWrite', () => {
    test('up to SMALL_FILE_BYTES nothing is staged on disk before the commit; above it a staging file is open', async () => {
      const small = await storage.beginWrite(name('s.bin'), { size: SMALL_FILE_BYTES, createOnly: false });
      expect(await staging()).toEqual([]);
      await small.abort();
      const large = await storage.beginWrite(name('l.bin'), { size: SMALL_FILE_BYTES + 1, createOnly: false });
      expect(await staging()).toHaveLength(1);
      await large.abort();
      expect(await staging()).toEqual([]);
    });

    test('the header\'s look at the name of an ADDFILE or a large upload failing (an I/O error): STORAGE_FAILED naming the file, never a path', async () => {
      for (const [target, options] of [['added.bin', { size: 5, createOnly: true }], ['large.bin', { size: 2 * MiB, createOnly: false }]] as const) {
        jest.spyOn(fsp, 'lstat').mockRejectedValueOnce(errno('EIO'));
        const failing = storage.beginWrite(name(target), options);
        await expect(failing).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringMatching(new RegExp(`^cannot store ${target}: `)) });
        await expect(failing).rejects.not.toMatchObject({ message: expect.stringContaining('/secret/path') });
      }
      expect(await staging()).toEqual([]);
    });

    test('a small replace onto a folder is not looked at up front: the commit refuses it', async () => {
      await mkdir(join(root, 'folder'));
      const write = await storage.beginWrite(name('folder'), { size: 5, createOnly: false });
      write.sink.write(Buffer.from('small'));
      await expect(write.commit({ size: 5, digest: sha('small'), hash: 'sha256' })).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    });

    test('without measureReplaced, a replace reports no replaced bytes', async () => {
      await writeFile(join(root, 'r.bin'), Buffer.alloc(100));
      const write = await storage.beginWrite(name('r.bin'), { size: 5, createOnly: false });
      write.sink.write(Buffer.from('small'));
      expect(await write.commit({ size: 5, digest: sha('small'), hash: 'sha256' })).toMatchObject({ replacedBytes: 0 });
      const measured = await storage.beginWrite(name('r.bin'), { size: 5, createOnly: false, measureReplaced: true });
      measured.sink.write(Buffer.from('again'));
      expect(await measured.commit({ size: 5, digest: sha('again'), hash: 'sha256' })).toMatchObject({ replacedBytes: 5 });
    });

    test('free space: small files skip the check; from 1 MiB the size must fit, exactly fitting is fine', async () => {
      diskWithFree(0);
      const small = await storage.beginWrite(name('s.bin'), { size: 5, createOnly: false });
      await small.abort();
      const justBelow = await storage.beginWrite(name('b.bin'), { size: MiB - 1, createOnly: false });
      await justBelow.abort();
      jest.restoreAllMocks();
      diskWithFree(MiB - 1);
      await expect(storage.beginWrite(name('m.bin'), { size: MiB, createOnly: false })).rejects.toMatchObject({
        code: 'NO_SPACE',
        message: `m.bin needs ${MiB} bytes but the storage has ${MiB - 1} free`,
        detail: { size: MiB, free: MiB - 1 },
      });
      jest.restoreAllMocks();
      diskWithFree(2 * MiB);
      const exact = await storage.beginWrite(name('e.bin'), { size: 2 * MiB, createOnly: false });
      await exact.abort();
    });

    test('a resume needs room only for the bytes still to come', async () => {
      const total = 4 * MiB;
      const first = Buffer.alloc(MiB, 1);
      expect(await interrupted('r.bin', first, total)).toBe(MiB);
      // Room for the 3 MiB to come, not for 4 MiB more.
      diskWithFree(3 * MiB);
      const write = await storage.beginWrite(name('r.bin'), { size: total, createOnly: false, resume: { offset: MiB, digest: sha(first) } });
      expect(write.resumed?.offset).toBe(MiB);
      await write.abort();
    });
  });

  describe('with a kept partial upload', () => {
    test('DELETE failing for another reason than NOT_FOUND keeps the partial and reports the failure', async () => {
      await interrupted('x.bin', Buffer.alloc(1000, 1), MiB);
      await mkdir(join(root, 'x.bin', 'inside'), { recursive: true });
      await expect(storage.remove(name('x.bin'))).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
      expect(await storage.partialUpload(name('x.bin'))).toEqual({ bytes: 1000, digest: sha(Buffer.alloc(1000, 1)) });
    });

    test('aborting a plain upload over it removes that upload’s staging file', async () => {
      await interrupted('p.bin', Buffer.alloc(3000, 1), MiB);
      await restart();
      const write = await storage.beginWrite(name('p.bin'), { size: SMALL_FILE_BYTES + 1, createOnly: false });
      write.sink.write(Buffer.alloc(10));
      expect(await staging()).toHaveLength(1);
      await write.abort();
      expect(await staging()).toEqual([]);
    });

    test('a commit whose drop of the kept upload fails still succeeds, counting nothing as freed', async () => {
      await interrupted('p.bin', Buffer.alloc(3000, 1), MiB);
      await restart();
      jest.spyOn(PartialUploads.prototype, 'discard').mockRejectedValueOnce(errno('EIO'));
      const write = await storage.beginWrite(name('p.bin'), { size: 5, createOnly: false });
      write.sink.write(Buffer.from('small'));
      expect(await write.commit({ size: 5, digest: sha('small'), hash: 'sha256' })).toMatchObject({ replacedBytes: 0 });
    });
  });

  describe('a folder swapped for a link to outside after its check (hostile passes k, l): one refusal, whatever lies out there', () => {
    /** d, checked (a read of d/first remembers the check for a second), then parked and replaced by a link to `outside`. */
    const swapAfterCheck = async () => {
      const outside = join(base, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'there.txt'), 'outside the root');
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'd', 'first'), 'first');
      await drain((await storage.openRead(name('d/first'))).stream);
      await rename(join(root, 'd'), join(root, 'd.parked'));
      await symlink(outside, join(root, 'd'));
    };
    const OUTSIDE = { code: 'NAME_INVALID' };

    test('openRead, through the thread pool: the same NAME_INVALID for a name that exists out there and one that does not', async () => {
      await threadPoolReadsOnly();
      await swapAfterCheck();
      for (const file of ['d/there.txt', 'd/nothing.txt']) await expect(storage.openRead(name(file))).rejects.toMatchObject({ code: 'NAME_INVALID', message: `${file} resolves outside the storage root` });
    });

    test('sizeOf and an ADDFILE\'s early look: refused, never the size or existence of a file out there', async () => {
      await swapAfterCheck();
      await expect(storage.sizeOf(name('d/there.txt'))).rejects.toMatchObject(OUTSIDE);
      await expect(storage.sizeOf(name('d/nothing.txt'))).rejects.toMatchObject(OUTSIDE);
      await expect(storage.beginWrite(name('d/there.txt'), { size: 5, createOnly: true })).rejects.toMatchObject(OUTSIDE);
      await expect(storage.beginWrite(name('d/nothing.txt'), { size: 5, createOnly: true })).rejects.toMatchObject(OUTSIDE);
      expect(await readdir(join(base, 'outside'))).toEqual(['there.txt']);
    });

    test('STAT, DELETE and RENAME: refused as a fresh check refuses them (NAME_INVALID, resolves outside), never NOT FOUND (hostile pass r)', async () => {
      await swapAfterCheck();
      for (const file of ['d/there.txt', 'd/nothing.txt']) {
        const said = { code: 'NAME_INVALID', message: `${file} resolves outside the storage root` };
        await expect(storage.stat(name(file))).rejects.toMatchObject(said);
        await expect(storage.remove(name(file))).rejects.toMatchObject(said);
        await expect(storage.rename(name(file), name('moved.txt'))).rejects.toMatchObject(said);
      }
      // And a RENAME onto a name in it is told under the target's name, not the source's.
      await writeFile(join(root, 'src.txt'), 'src');
      await drain((await storage.openRead(name('src.txt'))).stream);
      await expect(storage.rename(name('src.txt'), name('d/x'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'd/x resolves outside the storage root' });
      expect(await readdir(join(base, 'outside'))).toEqual(['there.txt']);
    });
  });

  describe('a folder swapped for a link into another folder of the root after its check (hostile pass r): answered as a fresh check answers', () => {
    /** d checked and remembered, then parked and replaced by a link to `inside`, a folder of the root. */
    const swapIntoRoot = async () => {
      await mkdir(join(root, 'inside'));
      await writeFile(join(root, 'inside', 'there.txt'), 'inside the root');
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'd', 'first'), 'first');
      await drain((await storage.openRead(name('d/first'))).stream);
      await rename(join(root, 'd'), join(root, 'd.parked'));
      await symlink(join(root, 'inside'), join(root, 'd'));
    };

    test('STAT and DELETE find the file in the folder the link leads to, as they do without a cached check', async () => {
      await swapIntoRoot();
      expect(await storage.stat(name('d/there.txt'))).toMatchObject({ type: 'file', size: 15 });
      await storage.remove(name('d/there.txt'));
      expect(await readdir(join(root, 'inside'))).toEqual([]);
    });

    test.each([
      ['an ADDFILE\'s early look and its commit', 'd/new.txt', Buffer.from('small'), true],
      ['a large upload\'s look and its commit', 'd/large.bin', Buffer.alloc(2 * MiB, 7), false],
    ])('%s: accepted, the file lands in the linked folder', async (_, file, body, createOnly) => {
      await swapIntoRoot();
      const write = await storage.beginWrite(name(file), { size: body.length, createOnly });
      write.sink.write(body);
      await write.commit({ size: body.length, digest: sha(body), hash: 'sha256' });
      expect((await fsp.readFile(join(root, 'inside', file.slice(2)))).equals(body)).toBe(true);
      expect(await readdir(join(root, 'd.parked'))).toEqual(['first']);
    });

    test('a failure that is no link on the way checks nothing again (a missing name: NOT FOUND; a folder a fresh check finds outside: NAME_INVALID; the cached checks kept)', async () => {
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'd', 'first'), 'first');
      const paths = (storage as unknown as { paths: { forgetFolders(): void } }).paths;
      const forget = jest.spyOn(paths, 'forgetFolders');
      await expect(storage.stat(name('d/missing'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(storage.beginWrite(name('d/first'), { size: 5, createOnly: true })).rejects.toMatchObject({ code: 'EXISTS' });
      // A folder that a fresh check finds leading outside: refused by that check, not looked at twice.
      await mkdir(join(base, 'elsewhere'));
      await symlink(join(base, 'elsewhere'), join(root, 'out'));
      await expect(storage.stat(name('out/x'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'out/x resolves outside the storage root' });
      await expect(storage.remove(name('out/x'))).rejects.toMatchObject({ code: 'NAME_INVALID' });
      expect(forget).not.toHaveBeenCalled();
      forget.mockRestore();
    });
  });

  describe('list and usage', () => {
    test('LIST of a folder that does not exist is empty', async () => {
      expect(await storage.list('missing', { limit: 10 })).toEqual([]);
      expect(await storage.list('missing/deeper', { limit: 10, page: {} })).toEqual([]);
    });

    test('usage: a subfolder removed between its parent\'s read and its own counts 0; the rest is counted', async () => {
      await mkdir(join(root, 'u', 'gone'), { recursive: true });
      await writeFile(join(root, 'u', 'gone', 'f'), Buffer.alloc(5));
      await writeFile(join(root, 'u', 'kept'), Buffer.alloc(3));
      const realReaddir = fsp.readdir;
      jest.spyOn(fsp, 'readdir').mockImplementation(((path: fs.PathLike, options?: unknown) =>
        String(path).endsWith('gone') ? Promise.reject(errno('ENOENT')) : (realReaddir as (...a: unknown[]) => unknown)(path, options)) as typeof fsp.readdir);
      expect(await storage.usage('u')).toBe(3);
    });

    test('a page cursor in a sibling whose name starts like the folder is not inside it', async () => {
      await mkdir(join(root, 'a'));
      await writeFile(join(root, 'a', 'b'), '1');
      await writeFile(join(root, 'a', 'd'), '2');
      const names = await storage.list('a', { limit: 10, page: { after: 'abc/zzz' } });
      expect(names.map((file) => file.name)).toEqual(['a/b', 'a/d']);
    });

    test('a page returns limit + 1 files instead of TOO_LARGE', async () => {
      for (const file of ['a', 'b', 'c', 'd']) await writeFile(join(root, file), file);
      expect((await storage.list('', { limit: 2, page: {} })).map((file) => file.name)).toEqual(['a', 'b', 'c']);
    });

    test('usage: a missing folder is 0; links are not counted; only the root’s own .rxfer is skipped', async () => {
      expect(await storage.usage('missing')).toBe(0);
      await mkdir(join(root, 'u', '.rxfer'), { recursive: true });
      await writeFile(join(root, 'u', '.rxfer', 'f'), Buffer.alloc(7));
      await writeFile(join(root, 'u', 'g'), Buffer.alloc(3));
      await symlink(join(root, 'u', 'g'), join(root, 'u', 'link-with-a-long-target-path'));
      expect(await storage.usage('u')).toBe(10);
      expect(await storage.usage('')).toBe(10);
    });

    test("usage: a user's folder that is a link (outside, to another user's folder, or to nothing) is refused alike, never walked (hostile pass m)", async () => {
      await mkdir(join(base, 'outside'));
      await writeFile(join(base, 'outside', 'big'), Buffer.alloc(50));
      await mkdir(join(root, 'bob'));
      await writeFile(join(root, 'bob', 'f'), Buffer.alloc(20));
      for (const target of [join(base, 'outside'), join(root, 'bob'), join(base, 'nothing')]) {
        await rm(join(root, 'alice'), { force: true });
        await symlink(target, join(root, 'alice'));
        await expect(storage.usage('alice')).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'alice resolves outside the storage root' });
      }
      // The whole storage is counted as it is: bob's 20 bytes (the link is not followed).
      expect(await storage.usage('')).toBe(20);
    });

    test('usage: a file gone between the folder read and its lstat counts 0', async () => {
      await writeFile(join(root, 'gone'), Buffer.alloc(5));
      await writeFile(join(root, 'kept'), Buffer.alloc(3));
      const realLstat = fsp.lstat;
      jest.spyOn(fsp, 'lstat').mockImplementation(((path: fs.PathLike, options?: fs.StatOptions) =>
        String(path).endsWith('gone') ? Promise.reject(errno('ENOENT')) : realLstat(path, options)) as typeof fsp.lstat);
      expect(await storage.usage('')).toBe(3);
    });
  });
});
