import fsp = require('node:fs/promises');
import { mkdir, mkdtemp, readdir, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferError } from '../../../src/errors/rxfer-error';
import { parseRemoteName, type RemoteName } from '../../../src/protocol/remote-name';
import { RootPaths } from '../../../src/storage/root-paths';
import { realPathOf } from '../../promises/support/fd-path';

/**
 * Where a remote name lands on disk, and the containment checks against planted links, on a real
 * temp tree (outside/ is a folder beside the root that nothing may reach).
 */
describe('RootPaths', () => {
  let base: string;
  let root: string;
  let outside: string;
  let paths: RootPaths;
  const name = (text: string) => text as RemoteName;
  const exists = (path: string) => stat(path).then(() => true, () => false);

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-root-paths-')));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(outside);
    paths = await RootPaths.open(root);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(base, { recursive: true, force: true });
  });

  test("prefixOf: what lies below the storage, or below a user's folder, starts with it", () => {
    expect(paths.prefixOf()).toBe(`${root}/`);
    expect(paths.prefixOf('')).toBe(`${root}/`);
    expect(paths.prefixOf('team/u1')).toBe(`${join(root, 'team', 'u1')}/`);
  });

  test('folderFor: files of one new folder asked for at once share its creation; a failed one is each file\'s own refusal, in its own name', async () => {
    const made = await Promise.all([paths.folderFor(name('n/a/f1')), paths.folderFor(name('n/a/f2')), paths.folderFor(name('n/a/f3'))]);
    expect(made).toEqual([join(root, 'n', 'a'), join(root, 'n', 'a'), join(root, 'n', 'a')]);
    await writeFile(join(root, 'x'), 'a file where a folder is asked for');
    const refused = await Promise.all(['x/f0', 'x/f1', 'x/f2'].map((file) => paths.folderFor(name(file)).then(() => 'made', (err: RxferError) => `${err.code} ${err.message}`)));
    expect(refused).toEqual(['x/f0', 'x/f1', 'x/f2'].map((file) => `NAME_CONFLICT cannot create the folder for ${file}: a file is in the way`));
  });

  test('folderFor: a shared creation is forgotten once done, so a folder removed since is made again after its check expires', async () => {
    expect(await paths.folderFor(name('gone/f'))).toBe(join(root, 'gone'));
    await rm(join(root, 'gone'), { recursive: true });
    // Past the one-second reuse of the check: the folder is looked for, and made, again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await paths.folderFor(name('gone/f'))).toBe(join(root, 'gone'));
    expect(await exists(join(root, 'gone'))).toBe(true);
  });

  test('open makes the root and keeps its real path; pathOf joins a name under it', async () => {
    expect(paths.realRoot).toBe(root);
    expect(await exists(root)).toBe(true);
    expect(paths.pathOf(name('a/b/c.txt'))).toBe(join(root, 'a', 'b', 'c.txt'));
    await symlink(root, join(base, 'link-to-root'));
    expect((await RootPaths.open(join(base, 'link-to-root'))).realRoot).toBe(root);
  });

  test('pathOf: every name parseRemoteName accepts lands where path.join puts it; the root itself for ""; a root of "/"', () => {
    const names = ['x', 'a/b/c.txt', 'deep/er/and/deeper/f0001', 'sp ace/ü.bin', '.hidden', 'a.b/..c', 'x/...y'].map((text) => parseRemoteName(text));
    for (const accepted of names) expect(paths.pathOf(accepted)).toBe(join(root, ...accepted.split('/')));
    expect(paths.pathOf(name(''))).toBe(root);
    const atSlash = new RootPaths('/');
    expect(atSlash.pathOf(parseRemoteName('srv/f.bin'))).toBe('/srv/f.bin');
    expect(atSlash.pathOf(name(''))).toBe('/');
  });

  test('assertInside: the root and below pass; above, beside and another user’s folder do not', () => {
    expect(() => paths.assertInside(root, name('x'))).not.toThrow();
    expect(() => paths.assertInside(join(root, 'a', 'b'), name('x'))).not.toThrow();
    expect(() => paths.assertInside(join(root, '..foo'), name('x'))).not.toThrow();
    expect(() => paths.assertInside(base, name('x'))).toThrow(new RxferError('NAME_INVALID', 'x resolves outside the storage root'));
    expect(() => paths.assertInside(outside, name('x'))).toThrow(RxferError);
    expect(() => paths.assertInside(join(root, 'u1', 'd'), name('x'), 'u1')).not.toThrow();
    expect(() => paths.assertInside(join(root, 'u1'), name('x'), 'u1')).not.toThrow();
    expect(() => paths.assertInside(join(root, 'u2', 'd'), name('x'), 'u1')).toThrow(RxferError);
    expect(() => paths.assertInside(join(root, 'u1', 'a'), name('x'), 'u1/a/b')).toThrow(RxferError);
  });

  describe('existingFolderOf', () => {
    test('the real folder of a name; undefined when missing or when a file is in the way', async () => {
      await mkdir(join(root, 'a', 'b'), { recursive: true });
      await writeFile(join(root, 'file'), '');
      expect(await paths.existingFolderOf(name('a/b/c.txt'))).toBe(join(root, 'a', 'b'));
      expect(await paths.existingFolderOf(name('top.txt'))).toBe(root);
      expect(await paths.existingFolderOf(name('missing/c.txt'))).toBeUndefined();
      expect(await paths.existingFolderOf(name('file/sub/c.txt'))).toBeUndefined();
    });

    test('a link out of the root, or out of the user’s folder, is refused', async () => {
      await symlink(outside, join(root, 'out'));
      await mkdir(join(root, 'u2'));
      await mkdir(join(root, 'u1'));
      await symlink(join(root, 'u2'), join(root, 'u1', 'to-u2'));
      await expect(paths.existingFolderOf(name('out/x'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'out/x resolves outside the storage root' });
      expect(await paths.existingFolderOf(name('u1/to-u2/x'))).toBe(join(root, 'u2'));
      await expect(paths.existingFolderOf(name('u1/to-u2/x'), 'u1')).rejects.toMatchObject({ code: 'NAME_INVALID' });
    });

    test('a link loop is refused in the words of a link out of the root (where links lead is never told apart: hostile pass m)', async () => {
      await symlink(join(root, 'b'), join(root, 'a'));
      await symlink(join(root, 'a'), join(root, 'b'));
      await expect(paths.existingFolderOf(name('a/x'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'a/x resolves outside the storage root' });
      await expect(paths.folderFor(name('a/x/y'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: 'a/x/y resolves outside the storage root' });
    });

    test('a link that leads nowhere (inside or outside) is refused like one that leads out; a name merely missing inside is missing', async () => {
      await symlink(join(outside, 'nothing'), join(root, 'gone-out'));
      await symlink(join(root, 'nothing'), join(root, 'gone-in'));
      for (const link of ['gone-out', 'gone-in']) {
        await expect(paths.existingFolderOf(name(`${link}/x`))).rejects.toMatchObject({ code: 'NAME_INVALID', message: `${link}/x resolves outside the storage root` });
        await expect(paths.realOrMissing(join(root, link, 'deeper'), name(`${link}/deeper`), '')).rejects.toMatchObject({ code: 'NAME_INVALID' });
      }
      expect(await paths.existingFolderOf(name('missing/x'))).toBeUndefined();
      expect(await paths.realOrMissing(join(root, 'missing', 'deeper'), name('missing/deeper'), '')).toBeUndefined();
    });

    test('a check is reused for a second, per jail; forgetFolders or the second passing voids it', async () => {
      await mkdir(join(root, 'u1', 'd'), { recursive: true });
      expect(await paths.existingFolderOf(name('u1/d/x'))).toBe(join(root, 'u1', 'd'));
      await rm(join(root, 'u1', 'd'), { recursive: true });
      // Reused: the folder deleted meanwhile shows up when the file is opened.
      expect(await paths.existingFolderOf(name('u1/d/y'))).toBe(join(root, 'u1', 'd'));
      // Not for another jail: checked again.
      expect(await paths.existingFolderOf(name('u1/d/x'), 'u1')).toBeUndefined();
      paths.forgetFolders();
      expect(await paths.existingFolderOf(name('u1/d/x'))).toBeUndefined();

      await mkdir(join(root, 'u1', 'e'));
      const now = Date.now();
      const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
      expect(await paths.existingFolderOf(name('u1/e/x'))).toBe(join(root, 'u1', 'e'));
      await rm(join(root, 'u1', 'e'), { recursive: true });
      clock.mockReturnValue(now + 999);
      expect(await paths.existingFolderOf(name('u1/e/x'))).toBe(join(root, 'u1', 'e'));
      clock.mockReturnValue(now + 1000);
      expect(await paths.existingFolderOf(name('u1/e/x'))).toBeUndefined();
    });
  });

  describe('folderFor', () => {
    test('creates the missing folders of a name and returns the real one; an existing folder gets nothing new', async () => {
      expect(await paths.folderFor(name('a/b/c.txt'))).toBe(join(root, 'a', 'b'));
      expect(await exists(join(root, 'a', 'b'))).toBe(true);
      expect(await paths.folderFor(name('top.txt'))).toBe(root);
      // A fresh resolver (nothing remembered): the folders exist, and are only found.
      const fresh = await RootPaths.open(root);
      expect(await fresh.folderFor(name('a/b/d.txt'))).toBe(join(root, 'a', 'b'));
      expect(await fresh.folderFor(name('e.txt'))).toBe(root);
      expect((await readdir(root)).filter((entry) => entry !== '.rxfer')).toEqual(['a']);
      expect(await readdir(join(root, 'a', 'b'))).toEqual([]);
    });

    test('a folder made by another request at the moment this one makes it (mkdir: EEXIST, and it is a folder): fine', async () => {
      const realMkdir = fsp.mkdir;
      jest.spyOn(fsp, 'mkdir').mockImplementationOnce((async (path: string) => {
        await realMkdir(realPathOf(path));
        throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${path}'`), { code: 'EEXIST' });
      }) as unknown as typeof realMkdir);
      expect(await paths.folderFor(name('both/x'))).toBe(join(root, 'both'));
    });

    test('a file made in the way at the moment its folder is made (mkdir: EEXIST, and it is no folder): NAME_CONFLICT, not that file as the folder', async () => {
      const realMkdir = fsp.mkdir;
      jest.spyOn(fsp, 'mkdir').mockImplementationOnce((async (path: string) => {
        await writeFile(realPathOf(path), 'a file, made by someone else');
        throw Object.assign(new Error(`EEXIST: file already exists, mkdir '${path}'`), { code: 'EEXIST' });
      }) as unknown as typeof realMkdir);
      await expect(paths.folderFor(name('raced/x'))).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'cannot create the folder for raced/x: a file is in the way' });
    });

    test('a file in the way: NAME_CONFLICT', async () => {
      await writeFile(join(root, 'a'), '');
      await expect(paths.folderFor(name('a/b/c.txt'))).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'cannot create the folder for a/b/c.txt: a file is in the way' });
      await expect(paths.folderFor(name('a/c.txt'))).rejects.toMatchObject({ code: 'NAME_CONFLICT' });
    });

    test('never creates anything through a planted link out of the root', async () => {
      await symlink(outside, join(root, 'out'));
      await expect(paths.folderFor(name('out/new/deeper/x'))).rejects.toMatchObject({ code: 'NAME_INVALID' });
      expect(await readdir(outside)).toEqual([]);
    });

    test('a link from one user’s folder into another’s is refused for that user; a user’s root not made yet is made', async () => {
      await mkdir(join(root, 'u2'));
      await symlink(join(root, 'u2'), join(root, 'u1'));
      await expect(paths.folderFor(name('u1/new/x'), 'u1')).rejects.toMatchObject({ code: 'NAME_INVALID' });
      expect(await readdir(join(root, 'u2'))).toEqual([]);
      expect(await paths.folderFor(name('u3/new/x'), 'u3')).toBe(join(root, 'u3', 'new'));
    });

    test('a link deeper in a user’s folder into another’s is refused too', async () => {
      await mkdir(join(root, 'u2'));
      await mkdir(join(root, 'u1'));
      await symlink(join(root, 'u2'), join(root, 'u1', 'a'));
      await expect(paths.folderFor(name('u1/a/new/x'), 'u1')).rejects.toMatchObject({ code: 'NAME_INVALID' });
      expect(await readdir(join(root, 'u2'))).toEqual([]);
    });

    test('a link loop above the folder is a storage error, nothing created', async () => {
      await symlink(join(root, 'b'), join(root, 'a'));
      await symlink(join(root, 'a'), join(root, 'b'));
      await expect(paths.folderFor(name('a/new/x'))).rejects.toMatchObject({ code: 'NAME_INVALID', message: expect.stringContaining('a/new/x') });
    });

    test('a root deleted behind the server’s back is not made again', async () => {
      await rm(root, { recursive: true });
      await expect(paths.folderFor(name('a/x'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await exists(root)).toBe(false);
    });

    test('a check is reused for a second', async () => {
      expect(await paths.folderFor(name('r/x'))).toBe(join(root, 'r'));
      expect(await paths.folderFor(name('s/x'))).toBe(join(root, 's'));
      await rm(join(root, 'r'), { recursive: true });
      expect(await paths.folderFor(name('r/y'))).toBe(join(root, 'r'));
      expect(await exists(join(root, 'r'))).toBe(false);
    });
  });

  describe('inFolderFor', () => {
    test('runs the work in the folder', async () => {
      expect(await paths.inFolderFor(name('w/x'), '', async (folder) => folder)).toBe(join(root, 'w'));
    });

    test('a folder deleted since its check: made again and the work runs once more', async () => {
      await paths.folderFor(name('gone/x'));
      await rm(join(root, 'gone'), { recursive: true });
      for (const missing of [Object.assign(new Error('ENOENT'), { code: 'ENOENT' }), new RxferError('NOT_FOUND', 'gone/x does not exist')]) {
        const calls: string[] = [];
        const result = await paths.inFolderFor(name('gone/x'), '', async (folder) => {
          calls.push(folder);
          if (calls.length === 1) throw missing;
          return exists(folder);
        });
        expect(result).toBe(true);
        expect(calls).toEqual([join(root, 'gone'), join(root, 'gone')]);
        await rm(join(root, 'gone'), { recursive: true });
      }
    });

    test('any other failure is the work’s: thrown at once, not run again', async () => {
      let calls = 0;
      const failure = new RxferError('EXISTS', 'x already exists');
      await expect(
        paths.inFolderFor(name('o/x'), '', async () => {
          calls++;
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(calls).toBe(1);
      const plain = Object.assign(new Error('EIO'), { code: 'EIO' });
      await expect(paths.inFolderFor(name('o/x'), '', async () => Promise.reject(plain))).rejects.toBe(plain);
    });

    test('missing a second time: that failure is thrown', async () => {
      const missing = Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      await expect(paths.inFolderFor(name('m/x'), '', async () => Promise.reject(missing))).rejects.toBe(missing);
    });
  });

  describe('a failing disk: errors name the action and the remote file', () => {
    const eio = () => Object.assign(new Error('EIO: i/o error, realpath'), { code: 'EIO' });

    test('resolving an existing folder', async () => {
      await mkdir(join(root, 'd'));
      jest.spyOn(fsp, 'realpath').mockRejectedValueOnce(eio());
      await expect(paths.existingFolderOf(name('d/x'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot resolve d/x: EIO (i/o error)' });
    });

    test('resolving the folders above a new one', async () => {
      jest.spyOn(fsp, 'realpath').mockRejectedValueOnce(eio());
      await expect(paths.folderFor(name('new/x'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot resolve new/x: EIO (i/o error)' });
    });

    test('creating the folder', async () => {
      jest.spyOn(fsp, 'mkdir').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, mkdir'), { code: 'EIO' }));
      await expect(paths.folderFor(name('new/x'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot create the folder for new/x: EIO (i/o error)' });
    });

    test('a folder above removed while it was made: NAME_CONFLICT saying so, never NOT FOUND for the name (hostile pass p on 6b667cc)', async () => {
      jest.spyOn(fsp, 'mkdir').mockRejectedValueOnce(Object.assign(new Error('ENOENT: no such file or directory, mkdir'), { code: 'ENOENT' }));
      await expect(paths.folderFor(name('new/x'))).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'cannot create the folder for new/x: a folder above it was removed or moved meanwhile' });
    });

    test('a folder gone again right after it was made', async () => {
      jest.spyOn(paths, 'existingFolderOf').mockResolvedValueOnce(undefined);
      await expect(paths.folderFor(name('new/x'))).rejects.toMatchObject({ code: 'NAME_CONFLICT', message: 'cannot create the folder for new/x' });
    });
  });
});
