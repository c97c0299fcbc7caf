import fsp = require('node:fs/promises');
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { markCleanStop, prepareStagingArea, stagingFolderOf } from '../../../src/storage/staging-area';

/** The staging area at start and stop, on a real temp root (in-process, milliseconds per case). */
describe('staging area', () => {
  let root: string;
  const exists = (path: string) => stat(path).then(() => true, () => false);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-staging-area-'));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  /** Staging files as earlier versions or a crash leave them, and things that only look alike. */
  const plantLeftovers = async () => {
    await mkdir(join(root, 'a', 'b', '.rxfer'), { recursive: true });
    await writeFile(join(root, '.rxfer-part-old-1'), 'x');
    await writeFile(join(root, 'a', 'b', '.rxfer-part-old-2'), 'x');
    await writeFile(join(root, 'a', 'b', '.rxfer', '.rxfer-part-old-3'), 'x');
    await writeFile(join(root, 'a', 'keep.txt'), 'x');
    await writeFile(join(root, 'a', 'x.rxfer-part-not-a-prefix'), 'x');
    await mkdir(join(root, 'a', '.rxfer-part-a-folder'));
    await symlink(join(root, 'a', 'keep.txt'), join(root, 'a', '.rxfer-part-a-link'));
    await mkdir(join(root, '.rxfer', 'partials'), { recursive: true });
    await writeFile(join(root, '.rxfer', 'partials', '.rxfer-part-kept'), 'x');
  };

  test('the staging folder is under .rxfer, emptied and made again at every start', async () => {
    expect(stagingFolderOf(root)).toBe(join(root, '.rxfer', 'staging'));
    await mkdir(join(stagingFolderOf(root), 'sub'), { recursive: true });
    await writeFile(join(stagingFolderOf(root), '.rxfer-part-x'), 'x');
    await markCleanStop(root);
    await prepareStagingArea(root);
    expect(await readdir(stagingFolderOf(root))).toEqual([]);
  });

  test.each(['.rxfer', '.rxfer/partials', '.rxfer/sums', '.rxfer/sums/folders'])('%s a symbolic link to a folder outside: the start is refused, nothing there touched', async (own) => {
    const outside = await mkdtemp(join(tmpdir(), 'rxfer-staging-area-outside-'));
    try {
      await mkdir(join(outside, 'staging'), { recursive: true });
      await writeFile(join(outside, 'staging', 'keep'), 'not the server’s');
      await writeFile(join(outside, 'x.tmp'), 'not the server’s');
      await mkdir(join(root, own, '..'), { recursive: true });
      await symlink(outside, join(root, own));
      await expect(prepareStagingArea(root)).rejects.toMatchObject({
        code: 'STORAGE_FAILED',
        message: `${join(root, own)} is a symbolic link: the server keeps its own files there and does not follow it out of the storage root; move it away and start again`,
      });
      expect((await readdir(outside)).sort()).toEqual(['staging', 'x.tmp']);
      expect(await readdir(join(outside, 'staging'))).toEqual(['keep']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  test('a start after a crash sweeps staging files out of the users’ folders, and nothing else', async () => {
    await plantLeftovers();
    await prepareStagingArea(root);
    expect(await exists(join(root, '.rxfer-part-old-1'))).toBe(false);
    expect(await exists(join(root, 'a', 'b', '.rxfer-part-old-2'))).toBe(false);
    // A user's folder named .rxfer is a user's folder: swept like the others.
    expect(await exists(join(root, 'a', 'b', '.rxfer', '.rxfer-part-old-3'))).toBe(false);
    expect(await exists(join(root, 'a', 'keep.txt'))).toBe(true);
    expect(await exists(join(root, 'a', 'x.rxfer-part-not-a-prefix'))).toBe(true);
    expect(await exists(join(root, 'a', '.rxfer-part-a-folder'))).toBe(true);
    expect((await readdir(join(root, 'a'))).includes('.rxfer-part-a-link')).toBe(true);
    // The server's own folder is not the users': a kept partial upload there stays.
    expect(await exists(join(root, '.rxfer', 'partials', '.rxfer-part-kept'))).toBe(true);
    expect(await readdir(stagingFolderOf(root))).toEqual([]);
  });

  test('a start after a clean stop does not walk the tree, and consumes the marker: the next start does', async () => {
    await plantLeftovers();
    await mkdir(join(root, '.rxfer'), { recursive: true });
    await markCleanStop(root);
    expect(await exists(join(root, '.rxfer', 'clean-stop'))).toBe(true);
    await prepareStagingArea(root);
    expect(await exists(join(root, 'a', 'b', '.rxfer-part-old-2'))).toBe(true);
    expect(await exists(join(root, '.rxfer', 'clean-stop'))).toBe(false);
    await prepareStagingArea(root);
    expect(await exists(join(root, 'a', 'b', '.rxfer-part-old-2'))).toBe(false);
  });

  test('marking a clean stop where there is no .rxfer folder fails quietly', async () => {
    await expect(markCleanStop(join(root, 'missing'))).resolves.toBeUndefined();
  });

  test('a fresh root (no .rxfer yet) gets its staging folder', async () => {
    await prepareStagingArea(root);
    expect(await readdir(stagingFolderOf(root))).toEqual([]);
  });

  test('a folder that cannot be read, or an entry gone before it is looked at, is skipped: the start goes on', async () => {
    await plantLeftovers();
    const eio = Object.assign(new Error('EIO: i/o error, scandir'), { code: 'EIO' });
    const readdirSpy = jest.spyOn(fsp, 'readdir');
    // The sweep's first readdir is the root's: unreadable, nothing swept.
    readdirSpy.mockImplementationOnce(() => Promise.reject(eio));
    await expect(prepareStagingArea(root)).resolves.toBeUndefined();
    expect(await exists(join(root, '.rxfer-part-old-1'))).toBe(true);
    readdirSpy.mockRestore();
    // The staging file vanishes between the readdir and its lstat.
    jest.spyOn(fsp, 'lstat').mockImplementationOnce(() => Promise.reject(Object.assign(new Error('ENOENT'), { code: 'ENOENT' })));
    await expect(prepareStagingArea(root)).resolves.toBeUndefined();
    // Which entry the failure hit depends on the directory order; at most that one is left.
    const left = [join(root, '.rxfer-part-old-1'), join(root, 'a', 'b', '.rxfer-part-old-2'), join(root, 'a', 'b', '.rxfer', '.rxfer-part-old-3')];
    expect((await Promise.all(left.map(exists))).filter(Boolean).length).toBeLessThanOrEqual(1);
  });
});
