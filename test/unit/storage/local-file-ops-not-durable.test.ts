// fs-faults wraps node:fs before src/ takes its functions: import it first.
import { failAlso, failNext, failed, restoreFs } from '../../promises/support/fs-faults';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { LocalFsStorage } from '../../../src/storage/local-fs.storage';

/**
 * DELETE, RENAME and MKDIR on the local adapter when the folder fsync after the change fails (EIO,
 * for real: fs-faults wraps the handle's sync): the change is made, and the error says so
 * (NOT_DURABLE, with what a DELETE freed, its kept partial included), never "cannot delete".
 * Through a server: test/promises/folder-sync-fails.test.ts.
 */
describe('LocalFsStorage file operations whose folder fsync fails', () => {
  let base: string;
  let root: string;
  let storage: LocalFsStorage;
  const name = (text: string) => text as RemoteName;
  const MiB = 1024 * 1024;
  const failOn = (folder: string) => failNext('folder-sync', (path) => path === folder);
  /** An interrupted upload of `target` (1 MiB of 2), kept for RESUME. */
  const keepUpload = async (target: string) => {
    const kept = await storage.beginWrite(name(target), { size: 2 * MiB, createOnly: false });
    kept.sink.write(Buffer.alloc(MiB, 1));
    expect(await kept.suspend()).toBe(MiB);
  };

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-ops-not-durable-')));
    root = join(base, 'root');
    storage = new LocalFsStorage(root);
    await storage.init();
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub', 'a.txt'), 'twelve bytes');
    failed.length = 0;
  });
  afterEach(async () => {
    await storage.close();
    await rm(base, { recursive: true, force: true });
  });
  afterAll(() => restoreFs());

  test('DELETE of a file: gone, NOT_DURABLE with its size', async () => {
    failOn(join(root, 'sub'));
    await expect(storage.remove(name('sub/a.txt'))).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      message: 'sub/a.txt is deleted, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that',
      detail: { errno: 'EIO', removedBytes: 12 },
    });
    expect(failed.map((fault) => fault.call)).toEqual(['folder-sync']);
    expect(await readdir(join(root, 'sub'))).toEqual([]);
  });

  test('DELETE of a file with a kept partial upload: both gone, and the error counts both', async () => {
    const write = await storage.beginWrite(name('sub/a.txt'), { size: 2 * MiB, createOnly: false });
    write.sink.write(Buffer.alloc(MiB, 1));
    expect(await write.suspend()).toBe(MiB);
    failOn(join(root, 'sub'));
    await expect(storage.remove(name('sub/a.txt'))).rejects.toMatchObject({ code: 'NOT_DURABLE', detail: { errno: 'EIO', removedBytes: 12 + MiB } });
    expect(await storage.partialUpload(name('sub/a.txt'))).toBeUndefined();
    expect(await readdir(join(root, 'sub'))).toEqual([]);
  });

  test('DELETE of an empty folder: gone, NOT_DURABLE with 0 bytes', async () => {
    await mkdir(join(root, 'empty'));
    failOn(root);
    await expect(storage.remove(name('empty'))).rejects.toMatchObject({ code: 'NOT_DURABLE', detail: { removedBytes: 0 } });
    await expect(stat(join(root, 'empty'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test.each([
    ['the source folder', 'sub'],
    ['the target folder', 'other'],
  ])('RENAME whose fsync of %s fails: renamed, NOT_DURABLE', async (_what, failing) => {
    await mkdir(join(root, 'other'));
    failOn(join(root, failing));
    await expect(storage.rename(name('sub/a.txt'), name('other/b.txt'))).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      message: 'sub/a.txt is renamed to other/b.txt, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that',
    });
    expect(await readFile(join(root, 'other', 'b.txt'), 'utf8')).toBe('twelve bytes');
    expect(await readdir(join(root, 'sub'))).toEqual([]);
  });

  test('RENAME whose old name cannot be unlinked after the link: the link undone, STORAGE_FAILED is true (the file under its old name only)', async () => {
    await mkdir(join(root, 'other'));
    failNext('unlink', (path) => path === join(root, 'sub', 'a.txt'));
    await expect(storage.rename(name('sub/a.txt'), name('other/b.txt'))).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot rename sub/a.txt: EIO (i/o error)' });
    expect(failed.map((fault) => fault.call)).toEqual(['unlink']);
    expect(await readFile(join(root, 'sub', 'a.txt'), 'utf8')).toBe('twelve bytes');
    expect(await readdir(join(root, 'other'))).toEqual([]);
  });

  test('RENAME whose link cannot be undone either: the error says the file is under both names', async () => {
    await mkdir(join(root, 'other'));
    failNext('unlink', (path) => path === join(root, 'sub', 'a.txt'));
    failAlso('unlink', (path) => path === join(root, 'other', 'b.txt'));
    await expect(storage.rename(name('sub/a.txt'), name('other/b.txt'))).rejects.toMatchObject({
      code: 'STORAGE_FAILED',
      message: 'cannot rename sub/a.txt: EIO (i/o error); sub/a.txt is now under both names, sub/a.txt and other/b.txt',
      detail: { errno: 'EIO' },
    });
    expect(failed.map((fault) => fault.call)).toEqual(['unlink', 'unlink']);
    expect(await readFile(join(root, 'other', 'b.txt'), 'utf8')).toBe('twelve bytes');
  });

  test('an upload over a name with a kept upload, answered NOT_DURABLE: the kept upload goes as after a commit, and the error counts it', async () => {
    await keepUpload('sub/a.txt');
    const data = randomBytes(200 * 1024);
    const write = await storage.beginWrite(name('sub/a.txt'), { size: data.length, createOnly: false, measureReplaced: true });
    write.sink.write(data);
    failOn(join(root, 'sub'));
    await expect(write.commit({ size: data.length, digest: createHash('sha256').update(data).digest('hex'), hash: 'sha256' })).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      detail: { errno: 'EIO', replacedBytes: 12 + MiB },
    });
    expect(await storage.partialUpload(name('sub/a.txt'))).toBeUndefined();
    expect(await readFile(join(root, 'sub', 'a.txt'))).toEqual(data);
  });

  test('DELETE of a file whose kept upload cannot be deleted: the file is deleted and counted, the kept upload stays (still counted)', async () => {
    await keepUpload('sub/a.txt');
    failNext('unlink', (path) => path.startsWith(join(root, '.rxfer', 'partials')) && !path.endsWith('.json'));
    expect(await storage.remove(name('sub/a.txt'))).toBe(12);
    expect(await readdir(join(root, 'sub'))).toEqual([]);
    expect(await storage.partialUpload(name('sub/a.txt'))).toMatchObject({ bytes: MiB });
  });

  test('an upload answered NOT_DURABLE over a kept upload that cannot be deleted: the error counts only the file replaced', async () => {
    await keepUpload('sub/a.txt');
    const data = randomBytes(200 * 1024);
    const write = await storage.beginWrite(name('sub/a.txt'), { size: data.length, createOnly: false, measureReplaced: true });
    write.sink.write(data);
    failOn(join(root, 'sub'));
    failAlso('unlink', (path) => path.startsWith(join(root, '.rxfer', 'partials')) && !path.endsWith('.json'));
    await expect(write.commit({ size: data.length, digest: createHash('sha256').update(data).digest('hex'), hash: 'sha256' })).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      detail: { errno: 'EIO', replacedBytes: 12 },
    });
    expect(failed.map((fault) => fault.call).sort()).toEqual(['folder-sync', 'unlink']);
    expect(await storage.partialUpload(name('sub/a.txt'))).toMatchObject({ bytes: MiB });
  });

  test('an upload whose commit fails before the rename keeps the kept upload of its name (nothing changed)', async () => {
    await keepUpload('sub/a.txt');
    const data = randomBytes(200 * 1024);
    const write = await storage.beginWrite(name('sub/a.txt'), { size: data.length, createOnly: false });
    write.sink.write(data);
    failNext('rename', (path) => path.startsWith(join(root, '.rxfer', 'staging')));
    await expect(write.commit({ size: data.length, digest: createHash('sha256').update(data).digest('hex'), hash: 'sha256' })).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(await storage.partialUpload(name('sub/a.txt'))).toMatchObject({ bytes: MiB });
  });

  test('MKDIR: created, NOT_DURABLE', async () => {
    failOn(join(root, 'sub'));
    await expect(storage.makeFolder(name('sub/new'))).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      message: 'the folder sub/new is created, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that',
    });
    expect((await stat(join(root, 'sub', 'new'))).isDirectory()).toBe(true);
  });

  test('a failure before the change is still the failure it was (NOT_FOUND), nothing synced', async () => {
    failOn(join(root, 'sub'));
    await expect(storage.remove(name('sub/none.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(failed).toEqual([]);
  });
});
