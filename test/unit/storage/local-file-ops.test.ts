import fsp = require('node:fs/promises');
import { link, mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashOf } from '../../../src/integrity/hash-algorithm';
import { recordFolderSyncs } from '../../helpers/folder-syncs';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestIndex, SMALL_FILE_BYTES } from '../../../src/storage/digest-index';
import { untilSettled } from '../../helpers/settled';
import { LocalFileOps } from '../../../src/storage/local-file-ops';
import { NameLocks } from '../../../src/storage/name-locks';
import { RootPaths } from '../../../src/storage/root-paths';

/** STAT, DELETE, RENAME and MKDIR on a real temp root, in-process (milliseconds per case). */
describe('LocalFileOps', () => {
  let root: string;
  let paths: RootPaths;
  let digests: DigestIndex;
  let locks: NameLocks;
  let synced: string[];
  let folderSyncs: ReturnType<typeof recordFolderSyncs>;
  let ops: LocalFileOps;
  const name = (text: string) => text as RemoteName;
  const exists = (path: string) => stat(path).then(() => true, () => false);
  const large = Buffer.alloc(SMALL_FILE_BYTES + 1, 5);
  const sidecars = async () => (await readdir(join(root, '.rxfer', 'sums'))).filter((entry) => entry.endsWith('.json'));

  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-file-ops-')));
    paths = await RootPaths.open(root);
    digests = new DigestIndex(root);
    await digests.init();
    locks = new NameLocks();
    folderSyncs = recordFolderSyncs();
    synced = folderSyncs.synced;
    ops = new LocalFileOps(paths, digests, locks);
  });
  afterEach(async () => {
    folderSyncs.restore();
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  describe('stat', () => {
    test('a folder, a missing name, a link', async () => {
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'target'), 'x');
      await symlink(join(root, 'target'), join(root, 'link'));
      const folder = await ops.stat(name('d'), '', 'sha256');
      expect(folder).toEqual({ type: 'folder', size: 0, mtimeMs: (await stat(join(root, 'd'))).mtimeMs });
      await expect(ops.stat(name('missing'), '', 'sha256')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'missing does not exist' });
      await expect(ops.stat(name('nofolder/x'), '', 'sha256')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ops.stat(name('link'), '', 'sha256')).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'link is a symbolic link; rxfer does not follow links' });
    });

    test('a small file nothing is known of is hashed once and remembered', async () => {
      await writeFile(join(root, 's.txt'), 'small');
      // Left alone for two seconds (DigestIndex.rememberHashed records no version changed in the last seconds).
      await untilSettled();
      const stats = await stat(join(root, 's.txt'));
      expect(await ops.stat(name('s.txt'), '', 'sha256')).toEqual({ type: 'file', size: 5, mtimeMs: stats.mtimeMs, digest: hashOf('sha256', Buffer.from('small')) });
      await new Promise((resolve) => setTimeout(resolve, 50)); // remembered in the background
      expect(await new DigestIndex(root).lookup('s.txt', stats, 'sha256')).toBe(hashOf('sha256', Buffer.from('small')));
      const edge = Buffer.alloc(SMALL_FILE_BYTES, 1);
      await writeFile(join(root, 'edge.bin'), edge);
      expect((await ops.stat(name('edge.bin'), '', 'blake3')).digest).toBe(hashOf('blake3', edge));
    });

    test('a large file is not read for a STAT: its digest only when known', async () => {
      await writeFile(join(root, 'big.bin'), large);
      const stats = await stat(join(root, 'big.bin'));
      expect(await ops.stat(name('big.bin'), '', 'sha256')).toEqual({ type: 'file', size: large.length, mtimeMs: stats.mtimeMs });
      await digests.remember('big.bin', stats, 'sha256', 'known');
      expect((await ops.stat(name('big.bin'), '', 'sha256')).digest).toBe('known');
    });

    /**
     * The file changes between the STAT's lstat and its read (simulated inside the digest lookup that
     * runs between the two): the digest of what was read is not recorded for the version first seen.
     */
    describe('a file changed while it is hashed', () => {
      const SEEN = new Date(1_700_000_000_000);
      const changedDuringStat = async (change: (path: string) => Promise<void>) => {
        const path = join(root, 'c.txt');
        await writeFile(path, 'abcdef');
        await utimes(path, SEEN, SEEN);
        // Left alone long enough to be recorded (the control shows it would be).
        await untilSettled();
        const before = await stat(path);
        jest.spyOn(digests, 'lookup').mockImplementationOnce(async () => {
          await change(path);
          return undefined;
        });
        await ops.stat(name('c.txt'), '', 'sha256');
        await new Promise((resolve) => setTimeout(resolve, 100)); // a record would be written by now
        jest.restoreAllMocks();
        return new DigestIndex(root).lookup('c.txt', before, 'sha256');
      };

      test('grown (same mtime and inode)', async () => {
        expect(
          await changedDuringStat(async (path) => {
            await writeFile(path, 'abcdefgh');
            await utimes(path, SEEN, SEEN);
          }),
        ).toBeUndefined();
      });

      test('rewritten (same size and inode, new mtime)', async () => {
        expect(await changedDuringStat((path) => writeFile(path, 'ABCDEF'))).toBeUndefined();
      });

      test('replaced (same size and mtime, new inode)', async () => {
        expect(
          await changedDuringStat(async (path) => {
            const other = join(root, 'other');
            await writeFile(other, 'ABCDEF');
            await utimes(other, SEEN, SEEN);
            await rm(path);
            await link(other, path);
            await rm(other);
          }),
        ).toBeUndefined();
      });

      test('rewritten with its mtime set back (same size, mtime and inode; only the ctime moves)', async () => {
        expect(
          await changedDuringStat(async (path) => {
            await writeFile(path, 'ABCDEF');
            await utimes(path, SEEN, SEEN);
          }),
        ).toBeUndefined();
      });

      test('the look after the hash fails: the STAT still answers with the digest, only nothing is recorded', async () => {
        const path = join(root, 'c.txt');
        await writeFile(path, 'abcdef');
        await untilSettled();
        const before = await stat(path);
        const probe = await fsp.open(path);
        const proto = Object.getPrototypeOf(probe) as { stat: (...args: unknown[]) => Promise<unknown> };
        await probe.close();
        const real = proto.stat;
        let looks = 0;
        const spy = jest.spyOn(proto, 'stat').mockImplementation(function (this: unknown, ...args: unknown[]) {
          looks++;
          return looks === 2 ? Promise.reject(Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' })) : real.apply(this, args);
        });
        try {
          expect(await ops.stat(name('c.txt'), '', 'sha256')).toEqual({ type: 'file', size: 6, mtimeMs: before.mtimeMs, digest: createHash('sha256').update('abcdef').digest('hex') });
          expect(looks).toBe(2);
        } finally {
          spy.mockRestore();
        }
        await new Promise((resolve) => setTimeout(resolve, 100)); // a record would be written by now
        expect(await new DigestIndex(root).lookup('c.txt', before, 'sha256')).toBeUndefined();
      });

      test('control: unchanged, it is recorded', async () => {
        expect(await changedDuringStat(async () => undefined)).toBe(createHash('sha256').update('abcdef').digest('hex'));
      });
    });

    test('closes what it opens', async () => {
      await writeFile(join(root, 's.txt'), 'small');
      const before = (await readdir('/proc/self/fd')).length;
      for (let i = 0; i < 5; i++) await ops.stat(name('s.txt'), '', i % 2 ? 'sha256' : 'blake3');
      // The digest each STAT records is appended in the background (not awaited): its descriptor may
      // still be open for a moment on a loaded machine. A leak stays; 5 s is a failure guard.
      let now = (await readdir('/proc/self/fd')).length;
      for (let waited = 0; now !== before && waited < 5000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        now = (await readdir('/proc/self/fd')).length;
      }
      expect(now).toBe(before);
    });

    test('only inside the jail', async () => {
      await mkdir(join(root, 'u2'));
      await writeFile(join(root, 'u2', 'f'), 'x');
      await mkdir(join(root, 'u1'));
      await symlink(join(root, 'u2'), join(root, 'u1', 'l'));
      await expect(ops.stat(name('u1/l/f'), 'u1', 'sha256')).rejects.toMatchObject({ code: 'NAME_INVALID' });
    });
  });

  describe('remove', () => {
    test('a file: gone, its size returned, its folder fsynced', async () => {
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'd', 'f'), 'abc');
      expect(await ops.remove(name('d/f'), '')).toBe(3);
      expect(await exists(join(root, 'd', 'f'))).toBe(false);
      expect(synced).toEqual([join(root, 'd')]);
      expect(locks.size).toBe(0);
    });

    test('a large file’s sidecar goes with it', async () => {
      await writeFile(join(root, 'big.bin'), large);
      await digests.remember('big.bin', await stat(join(root, 'big.bin')), 'sha256', 'd');
      expect(await sidecars()).toHaveLength(1);
      expect(await ops.remove(name('big.bin'), '')).toBe(large.length);
      expect(await sidecars()).toEqual([]);
    });

    test('an empty folder goes (0 bytes) and the folder checks are voided; one with files is NAME_CONFLICT', async () => {
      await mkdir(join(root, 'full', 'sub'), { recursive: true });
      await mkdir(join(root, 'empty'));
      await paths.folderFor(name('empty/x'));
      expect(await ops.remove(name('empty'), '')).toBe(0);
      expect(await exists(join(root, 'empty'))).toBe(false);
      expect(await paths.existingFolderOf(name('empty/x'))).toBeUndefined();
      await expect(ops.remove(name('full'), '')).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'full is a folder that is not empty' });
      expect(await exists(join(root, 'full', 'sub'))).toBe(true);
    });

    test('a link is refused and stays; a missing name is NOT_FOUND', async () => {
      await writeFile(join(root, 'target'), 'x');
      await symlink(join(root, 'target'), join(root, 'link'));
      await expect(ops.remove(name('link'), '')).rejects.toMatchObject({ code: 'NAME_INVALID' });
      expect(await readdir(root)).toContain('link');
      await expect(ops.remove(name('missing'), '')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    test('waits for the lock on the name', async () => {
      await writeFile(join(root, 'f'), 'x');
      let release!: () => void;
      const held = locks.with([join(root, 'f')], () => new Promise<void>((resolve) => (release = resolve)));
      const removing = ops.remove(name('f'), '');
      await new Promise((resolve) => setTimeout(resolve, 200)); // an unlocked operation is done by then
      expect(await exists(join(root, 'f'))).toBe(true);
      release();
      await held;
      await removing;
      expect(await exists(join(root, 'f'))).toBe(false);
    });
  });

  describe('rename', () => {
    test('a file moves (into a new folder), both folders fsynced; an existing target is refused', async () => {
      await writeFile(join(root, 'a.txt'), 'content');
      await ops.rename(name('a.txt'), name('new/b.txt'), '');
      expect(await readFile(join(root, 'new', 'b.txt'), 'utf8')).toBe('content');
      expect(await exists(join(root, 'a.txt'))).toBe(false);
      expect(synced.sort()).toEqual([root, join(root, 'new')].sort());
      await writeFile(join(root, 'c.txt'), 'other');
      await expect(ops.rename(name('c.txt'), name('new/b.txt'), '')).rejects.toMatchObject({ code: 'EXISTS' });
      expect(await readFile(join(root, 'new', 'b.txt'), 'utf8')).toBe('content');
      expect(await readFile(join(root, 'c.txt'), 'utf8')).toBe('other');
    });

    test('a rename within one folder fsyncs that folder, once', async () => {
      await mkdir(join(root, 'one'));
      await writeFile(join(root, 'one', 'a.txt'), 'content');
      await ops.rename(name('one/a.txt'), name('one/b.txt'), '');
      expect(await readFile(join(root, 'one', 'b.txt'), 'utf8')).toBe('content');
      expect(synced).toEqual([join(root, 'one')]);
    });

    test('a small file’s digests follow it to the new name', async () => {
      await writeFile(join(root, 's.txt'), 'small');
      const stats = await stat(join(root, 's.txt'));
      await digests.remember('s.txt', stats, 'sha256', 'd-sha');
      await digests.remember('s.txt', stats, 'blake3', 'd-b3');
      await ops.rename(name('s.txt'), name('t.txt'), '');
      const fresh = new DigestIndex(root);
      expect(await fresh.lookup('t.txt', stats, 'sha256')).toBe('d-sha');
      expect(await fresh.lookup('t.txt', stats, 'blake3')).toBe('d-b3');
    });

    test('a digest the server never had stays unknown under the new name (nothing made up for it)', async () => {
      await writeFile(join(root, 'once.txt'), 'small');
      const stats = await stat(join(root, 'once.txt'));
      await digests.remember('once.txt', stats, 'sha256', 'd-sha');
      await ops.rename(name('once.txt'), name('moved.txt'), '');
      const fresh = new DigestIndex(root);
      expect(await fresh.lookup('moved.txt', stats, 'sha256')).toBe('d-sha');
      expect(await fresh.lookup('moved.txt', stats, 'blake3')).toBeUndefined();
      // A large file with no record at all: none appears.
      await writeFile(join(root, 'big-unknown.bin'), large);
      const bigStats = await stat(join(root, 'big-unknown.bin'));
      await ops.rename(name('big-unknown.bin'), name('big-moved.bin'), '');
      expect(await new DigestIndex(root).lookup('big-moved.bin', bigStats, 'sha256')).toBeUndefined();
    });

    test('a large file’s record moves to the new name; the old one goes', async () => {
      await writeFile(join(root, 'big.bin'), large);
      const stats = await stat(join(root, 'big.bin'));
      await digests.remember('big.bin', stats, 'sha256', 'd');
      await digests.remember('big.bin', stats, 'blake3', 'd-b3', true);
      await ops.rename(name('big.bin'), name('moved.bin'), '');
      expect(await sidecars()).toHaveLength(1);
      const fresh = new DigestIndex(root);
      expect(await fresh.lookup('moved.bin', stats, 'sha256')).toBe('d');
      expect(await fresh.lookup('moved.bin', stats, 'blake3')).toBe('d-b3');
    });

    test('a folder moves with its files; the folder checks are voided', async () => {
      await mkdir(join(root, 'a'));
      await writeFile(join(root, 'a', 'f'), 'x');
      await paths.folderFor(name('a/f'));
      await ops.rename(name('a'), name('ab'), '');
      expect(await readFile(join(root, 'ab', 'f'), 'utf8')).toBe('x');
      expect(await paths.existingFolderOf(name('a/f'))).toBeUndefined();
    });

    test('a folder cannot move into itself, nor onto an existing (even empty) folder', async () => {
      await mkdir(join(root, 'a'));
      await mkdir(join(root, 'empty'));
      await expect(ops.rename(name('a'), name('a/inside'), '')).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'cannot move the folder a into itself' });
      await expect(ops.rename(name('a'), name('a'), '')).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
      await expect(ops.rename(name('a'), name('empty'), '')).rejects.toMatchObject({ code: 'EXISTS', message: 'empty already exists' });
      expect(await exists(join(root, 'a'))).toBe(true);
      expect(await exists(join(root, 'empty'))).toBe(true);
    });

    test('a missing source is NOT_FOUND; a target taken is told under its own name, not the source\'s (hostile pass r)', async () => {
      await expect(ops.rename(name('missing'), name('x'), '')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await writeFile(join(root, 'f'), 'x');
      await mkdir(join(root, 'dir'));
      await expect(ops.rename(name('f'), name('dir'), '')).rejects.toMatchObject({ code: 'EXISTS', message: 'dir already exists' });
    });

    test('waits for the locks of both names', async () => {
      await writeFile(join(root, 'f'), 'x');
      let release!: () => void;
      const held = locks.with([join(root, 'g')], () => new Promise<void>((resolve) => (release = resolve)));
      const renaming = ops.rename(name('f'), name('g'), '');
      await new Promise((resolve) => setTimeout(resolve, 200)); // an unlocked operation is done by then
      expect(await exists(join(root, 'g'))).toBe(false);
      release();
      await held;
      await renaming;
      expect(await exists(join(root, 'g'))).toBe(true);
    });
  });

  describe('makeFolder', () => {
    test('makes the folder (and its parents) and fsyncs the parent; an existing name is EXISTS', async () => {
      await ops.makeFolder(name('a/b'), '');
      expect((await stat(join(root, 'a', 'b'))).isDirectory()).toBe(true);
      expect(synced).toEqual([join(root, 'a')]);
      await expect(ops.makeFolder(name('a/b'), '')).rejects.toMatchObject({ code: 'EXISTS', message: 'a/b already exists' });
      await writeFile(join(root, 'f'), 'x');
      await expect(ops.makeFolder(name('f'), '')).rejects.toMatchObject({ code: 'EXISTS' });
    });

    test('its parent removed by other means while the check of it is remembered: made again, as an upload makes it', async () => {
      await ops.makeFolder(name('p/one'), '');
      await rm(join(root, 'p'), { recursive: true });
      await ops.makeFolder(name('p/two'), '');
      expect((await stat(join(root, 'p', 'two'))).isDirectory()).toBe(true);
    });

    test('a file where a parent folder should be: NAME_CONFLICT; a name too long: NAME_INVALID', async () => {
      await writeFile(join(root, 'f'), 'x');
      await expect(ops.makeFolder(name('f/sub'), '')).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
      await expect(ops.makeFolder(name('x'.repeat(300)), '')).rejects.toMatchObject({ code: 'NAME_INVALID', message: expect.stringContaining('too long') });
    });

    test('waits for the lock on its name', async () => {
      let release!: () => void;
      const held = locks.with([join(root, 'm')], () => new Promise<void>((resolve) => (release = resolve)));
      const making = ops.makeFolder(name('m'), '');
      await new Promise((resolve) => setTimeout(resolve, 200)); // an unlocked operation is done by then
      expect(await exists(join(root, 'm'))).toBe(false);
      release();
      await held;
      await making;
      expect(await exists(join(root, 'm'))).toBe(true);
    });
  });

  describe('a failing disk: the errno becomes a storage error naming the action', () => {
    const eio = (call: string) => Object.assign(new Error(`EIO: i/o error, ${call}`), { code: 'EIO' });

    test('delete', async () => {
      await writeFile(join(root, 'f'), 'x');
      jest.spyOn(fsp, 'unlink').mockRejectedValueOnce(eio('unlink'));
      await expect(ops.remove(name('f'), '')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot delete f: EIO (i/o error)' });
    });

    test('rename', async () => {
      await writeFile(join(root, 'f'), 'x');
      jest.spyOn(fsp, 'link').mockRejectedValueOnce(eio('link'));
      await expect(ops.rename(name('f'), name('g'), '')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot rename f: EIO (i/o error)' });
    });

    test('mkdir', async () => {
      await paths.folderFor(name('m'));
      jest.spyOn(fsp, 'mkdir').mockRejectedValueOnce(eio('mkdir'));
      await expect(ops.makeFolder(name('m'), '')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot create m: EIO (i/o error)' });
    });
  });
});
