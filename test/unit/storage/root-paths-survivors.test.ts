import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { RootPaths } from '../../../src/storage/root-paths';

/**
 * The folder-check cache is bounded: past 10,000 folders remembered it starts over, so a server that
 * touches many folders within a second does not grow it without end. Seen from outside: a folder
 * checked, then deleted, is reported missing again once 10,001 other folders were checked after it
 * (within its second: the clock is held, so the one-second expiry plays no part). Real folders on a
 * temp tree; about 10,000 mkdir and realpath calls.
 */
jest.setTimeout(60_000);

describe('RootPaths: the folder-check cache', () => {
  let base: string;
  let root: string;
  const name = (text: string) => text as RemoteName;

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-root-paths-bound-')));
    root = join(base, 'root');
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(base, { recursive: true, force: true });
  });

  test('is forgotten past 10,000 folders: a folder deleted meanwhile is then seen missing', async () => {
    const paths = await RootPaths.open(root);
    const others = 10_001;
    for (let start = 0; start < others; start += 500) {
      await Promise.all(Array.from({ length: Math.min(500, others - start) }, (_, i) => mkdir(join(root, 'many', String(start + i)), { recursive: true })));
    }
    await mkdir(join(root, 'kept'));
    jest.spyOn(Date, 'now').mockReturnValue(Date.now());
    expect(await paths.existingFolderOf(name('kept/x'))).toBe(join(root, 'kept'));
    await rm(join(root, 'kept'), { recursive: true });
    // Still remembered (reused within its second), as root-paths.test.ts shows.
    expect(await paths.existingFolderOf(name('kept/y'))).toBe(join(root, 'kept'));
    for (let i = 0; i < others; i++) expect(await paths.existingFolderOf(name(`many/${i}/x`))).toBe(join(root, 'many', String(i)));
    // The cache started over on the way: the deleted folder is checked afresh.
    expect(await paths.existingFolderOf(name('kept/x'))).toBeUndefined();
  });
});
