import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestIndex, SMALL_FILE_BYTES } from '../../../src/storage/digest-index';
import { LocalListing, walkListing } from '../../../src/storage/local-listing';
import type { ListedFile } from '../../../src/storage/storage-adapter';
import { SortedFolders } from '../../../src/storage/sorted-folders';

/** The LIST walk over a real temp tree, in-process: order, cursors, pages, limits, what is hidden. */
describe('walkListing', () => {
  let root: string;
  let digests: DigestIndex;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-listing-'));
    digests = new DigestIndex(root);
    await digests.init();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  const how = (options: Partial<LocalListing> = {}): LocalListing => ({ digests, sorted: new SortedFolders(), algorithm: 'sha256', signal: undefined, max: 1000, paged: false, ...options });
  const walk = async (options: Partial<LocalListing> = {}, after?: string[], folder = root, prefix = '') => {
    const found: ListedFile[] = [];
    const full = await walkListing(folder, prefix, after, found, how(options));
    return { full, found, names: found.map((entry) => entry.name) };
  };
  const files = async (...names: string[]) => {
    for (const name of names) {
      await mkdir(join(root, name, '..'), { recursive: true });
      await writeFile(join(root, name), name);
    }
  };

  test('depth first, each folder by name (code units), with size and mtime; hidden and linked entries left out', async () => {
    await files('b.txt', 'B.txt', 'a/y', 'a/x', 'a/sub/z', 'c', '.rxfer-part-1', '.RXFER-x');
    await symlink(join(root, 'c'), join(root, 'link-to-file'));
    await symlink(join(root, 'a'), join(root, 'link-to-folder'));
    const { names, found, full } = await walk();
    expect(full).toBe(false);
    expect(names).toEqual(['B.txt', 'a/sub/z', 'a/x', 'a/y', 'b.txt', 'c']);
    const c = await stat(join(root, 'c'));
    expect(found[5]).toEqual({ name: 'c', size: 1, mtimeMs: c.mtimeMs });
  });

  test('a walk below a folder names files with its prefix; a missing folder lists nothing', async () => {
    await files('d/e/f');
    expect((await walk({}, undefined, join(root, 'd'), 'd')).names).toEqual(['d/e/f']);
    expect((await walk({}, undefined, join(root, 'missing'), 'missing')).names).toEqual([]);
  });

  test('digests: a small file’s from its folder’s log, a large file’s from its sidecar, none when unknown', async () => {
    await files('d/small', 'd/unknown');
    await writeFile(join(root, 'd', 'large'), Buffer.alloc(SMALL_FILE_BYTES + 1));
    await digests.remember('d/small', await stat(join(root, 'd', 'small')), 'sha256', 'd-small');
    await digests.remember('d/large', await stat(join(root, 'd', 'large')), 'sha256', 'd-large');
    const { found } = await walk();
    expect(found.map(({ name, digest }) => ({ name, digest }))).toEqual([
      { name: 'd/large', digest: 'd-large' },
      { name: 'd/small', digest: 'd-small' },
      { name: 'd/unknown', digest: undefined },
    ]);
    expect('digest' in found[2]!).toBe(false);
  });

  test('more files than max: TOO_LARGE naming the folder asked for; exactly max is fine', async () => {
    await files('a', 'b', 'c');
    expect((await walk({ max: 3 })).names).toHaveLength(3);
    await expect(walk({ max: 2 })).rejects.toMatchObject({ code: 'TOO_LARGE', message: 'more than 2 files under the root; list a narrower folder' });
    await expect(walk({ max: 2, listed: 'top' })).rejects.toMatchObject({ message: 'more than 2 files under top; list a narrower folder' });
    await files('s/a', 's/b', 's/c');
    await expect(walk({ max: 2 }, undefined, join(root, 's'), 's')).rejects.toMatchObject({ message: 'more than 2 files under s; list a narrower folder' });
    await expect(walk({ max: 5, listed: '' })).rejects.toMatchObject({ message: 'more than 5 files under the root; list a narrower folder' });
    await expect(walk({ max: 2, folders: true })).rejects.toMatchObject({ message: 'more than 2 entries under the root; list a narrower folder' });
    await expect(walk({ max: 0 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  test('a page stops when full and says so', async () => {
    await files('a', 'b', 'c');
    expect(await walk({ max: 2, paged: true })).toMatchObject({ full: true, names: ['a', 'b'] });
    expect(await walk({ max: 3, paged: true })).toMatchObject({ full: true, names: ['a', 'b', 'c'] });
    expect(await walk({ max: 4, paged: true })).toMatchObject({ full: false, names: ['a', 'b', 'c'] });
  });

  test('a full page inside a folder stops the whole walk', async () => {
    await files('a/x', 'a/y', 'b');
    expect(await walk({ max: 1, paged: true })).toMatchObject({ full: true, names: ['a/x'] });
    expect(await walk({ max: 1, paged: true, folders: true })).toMatchObject({ full: true, names: ['a'] });
    expect(await walk({ max: 2, paged: true }, ['a'])).toMatchObject({ full: true, names: ['a/x', 'a/y'] });
  });

  test('after a cursor: only what follows it, folders before it not opened', async () => {
    await files('a/x', 'a/y', 'b/x', 'b/y', 'b/z', 'c');
    expect((await walk({}, ['b', 'x'])).names).toEqual(['b/y', 'b/z', 'c']);
    expect((await walk({}, ['b'])).names).toEqual(['b/x', 'b/y', 'b/z', 'c']);
    expect((await walk({}, ['a', 'y'])).names).toEqual(['b/x', 'b/y', 'b/z', 'c']);
    // A cursor name that is not there: what sorts after it.
    expect((await walk({}, ['bb'])).names).toEqual(['c']);
    expect((await walk({}, ['b', 'xx'])).names).toEqual(['b/y', 'b/z', 'c']);
    // The cursor's own file; a file where the cursor had a folder.
    expect((await walk({}, ['c'])).names).toEqual([]);
    expect((await walk({}, ['c', 'inside'])).names).toEqual([]);
  });

  test('FOLDERS: a line for each folder just before its contents, counted like files', async () => {
    await files('a/x', 'a/sub/y', 'b');
    const { found } = await walk({ folders: true });
    expect(found.map((entry) => entry.name)).toEqual(['a', 'a/sub', 'a/sub/y', 'a/x', 'b']);
    expect(found[0]).toEqual({ name: 'a', size: 0, mtimeMs: (await stat(join(root, 'a'))).mtimeMs, folder: true });
    // After a cursor on a folder, its line is not repeated.
    expect((await walk({ folders: true }, ['a'])).names).toEqual(['a/sub', 'a/sub/y', 'a/x', 'b']);
  });

  test('SHALLOW: the folder’s own entries only; a cursor on a folder does not go inside', async () => {
    await files('a/x', 'b', 'c/y');
    expect((await walk({ shallow: true })).names).toEqual(['b']);
    expect((await walk({ shallow: true, folders: true })).names).toEqual(['a', 'b', 'c']);
    expect((await walk({ shallow: true, folders: true }, ['a'])).names).toEqual(['b', 'c']);
  });

  test('an abandoned listing stops with SHUTTING_DOWN', async () => {
    await files('a', 'b');
    const controller = new AbortController();
    controller.abort();
    await expect(walk({ signal: controller.signal })).rejects.toMatchObject({ code: 'SHUTTING_DOWN', message: 'the listing was abandoned: its connection is gone' });
    expect((await walk({ signal: new AbortController().signal })).names).toEqual(['a', 'b']);
  });

  test('a big walk yields to other work every 512 files', async () => {
    const names = Array.from({ length: 1100 }, (_, i) => `f${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((name) => writeFile(join(root, name), '')));
    const found: ListedFile[] = [];
    const seen = new Set<number>();
    let walking = true;
    const watch = () => {
      seen.add(found.length);
      if (walking) setImmediate(watch);
    };
    setImmediate(watch);
    await walkListing(root, '', undefined, found, how({ max: 2000 }));
    walking = false;
    expect(found).toHaveLength(1100);
    expect([...seen].filter((count) => count > 0 && count < 1100)).toEqual([512, 1024]);
  });

  test('the order is by UTF-16 code units (what cursors compare with), not the file system’s byte order', async () => {
    // U+FF21 sorts before U+1F600 in UTF-8 bytes, after it in UTF-16 code units (a surrogate pair).
    await files('\uFF21', '\u{1F600}', 'z');
    expect((await walk()).names).toEqual(['z', '\u{1F600}', '\uFF21']);
    expect((await walk({}, ['\u{1F600}'])).names).toEqual(['\uFF21']);
  });

  test('a file of exactly SMALL_FILE_BYTES gets its digest from the folder’s log', async () => {
    await writeFile(join(root, 'edge'), Buffer.alloc(SMALL_FILE_BYTES));
    await digests.remember('edge', await stat(join(root, 'edge')), 'sha256', 'd-edge');
    expect((await walk()).found[0]).toMatchObject({ name: 'edge', digest: 'd-edge' });
  });

  test('FOLDERS: folder lines alone past max are TOO_LARGE too', async () => {
    await mkdir(join(root, 'a'));
    await mkdir(join(root, 'b'));
    await mkdir(join(root, 'c'));
    expect((await walk({ max: 3, folders: true })).names).toEqual(['a', 'b', 'c']);
    await expect(walk({ max: 2, folders: true })).rejects.toMatchObject({ code: 'TOO_LARGE', message: 'more than 2 entries under the root; list a narrower folder' });
  });

  test('an entry removed while the walk is under way is left out', async () => {
    await files('a', 'c');
    await mkdir(join(root, 'b'));
    // The walk awaits the folder's digest log at its first file: the others go meanwhile.
    const real = digests.folderDigests.bind(digests);
    jest.spyOn(digests, 'folderDigests').mockImplementationOnce(async (folder) => {
      await rm(join(root, 'b'), { recursive: true });
      await rm(join(root, 'c'));
      return real(folder);
    });
    expect((await walk({ folders: true })).names).toEqual(['a']);
  });
});
