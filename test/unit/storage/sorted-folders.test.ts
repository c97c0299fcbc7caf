import { mkdir, mkdtemp, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SortedFolders, firstNotBefore } from '../../../src/storage/sorted-folders';

/** Big folders' sorted entries, kept between LIST pages while the folder does not change. */
describe('SortedFolders', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-sorted-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** `count` empty files named f00000… in a new folder, written in a shuffled order. */
  const folderOf = async (name: string, count: number) => {
    const folder = join(dir, name);
    await mkdir(folder);
    const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(5, '0')}`);
    for (let i = names.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    for (let at = 0; at < names.length; at += 500) await Promise.all(names.slice(at, at + 500).map((file) => writeFile(join(folder, file), '')));
    return folder;
  };
  const namesOf = (entries: readonly { name: string }[]) => entries.map((entry) => entry.name);
  const sorted = (names: string[]) => [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  test('entries come by name (UTF-16 code units), with their types; a folder that cannot be read has none', async () => {
    const folder = join(dir, 'mixed');
    await mkdir(folder);
    for (const name of ['b', 'B', 'a', 'é', 'Z', '10', '9']) await writeFile(join(folder, name), '');
    await mkdir(join(folder, 'sub'));
    const entries = await new SortedFolders().entries(folder);
    expect(namesOf(entries)).toEqual(['10', '9', 'B', 'Z', 'a', 'b', 'sub', 'é']);
    expect(entries.find((entry) => entry.name === 'sub')!.isDirectory()).toBe(true);
    expect(entries.find((entry) => entry.name === 'a')!.isFile()).toBe(true);
    expect(await new SortedFolders().entries(join(dir, 'nothing-here'))).toEqual([]);
  });

  // Folders from 300 entries are kept here (4,096 in the server), so that the tests write few files,
  // and even when changed just before (the server waits 2 s: the racy case has its own test).
  const BIG = 300;

  test('a big folder is read once while it does not change: the same sorted entries serve every page', async () => {
    const folder = await folderOf('big', BIG);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const first = await folders.entries(folder);
    expect(namesOf(first)).toEqual(sorted(namesOf(first)));
    expect(first).toHaveLength(BIG);
    expect(await folders.entries(folder)).toBe(first);
  });

  test('a big folder changed within the last 2 s is not kept: a change in the same clock tick could hide', async () => {
    const folder = await folderOf('fresh', BIG);
    const folders = new SortedFolders({ cacheFromEntries: BIG });
    const first = await folders.entries(folder);
    expect(await folders.entries(folder)).not.toBe(first);
  });

  test('a folder whose mtime is set back after a change (tar, cp -a) is read again: its ctime moved', async () => {
    const folder = await folderOf('big', BIG);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const old = (await stat(folder)).mtime;
    const first = await folders.entries(folder);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(join(folder, 'zz-added'), '');
    await utimes(folder, old, old);
    const second = await folders.entries(folder);
    expect(second).not.toBe(first);
    expect(namesOf(second)).toContain('zz-added');
  });

  test('a small folder is read again each time (cheap, and never stale)', async () => {
    const folder = await folderOf('small', BIG - 1);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const first = await folders.entries(folder);
    const second = await folders.entries(folder);
    expect(second).not.toBe(first);
    expect(namesOf(second)).toEqual(namesOf(first));
  });

  test.each([
    ['a file added', (folder: string) => writeFile(join(folder, 'zz-new'), 'x'), (names: string[]) => expect(names).toContain('zz-new')],
    ['a file removed', (folder: string) => unlink(join(folder, 'f00010')), (names: string[]) => expect(names).not.toContain('f00010')],
    ['a file renamed', (folder: string) => rename(join(folder, 'f00020'), join(folder, 'renamed')), (names: string[]) => expect(names).toEqual(expect.arrayContaining(['renamed']))],
    ['a folder made', (folder: string) => mkdir(join(folder, 'new-folder')), (names: string[]) => expect(names).toContain('new-folder')],
  ])('a big folder is read again once changed: %s', async (_, change, check) => {
    const folder = await folderOf('big', BIG);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const first = await folders.entries(folder);
    // The folder's mtime must move past the cached one: wait out the file system's timestamp tick.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await change(folder);
    const second = await folders.entries(folder);
    expect(second).not.toBe(first);
    check(namesOf(second));
    expect(namesOf(second)).toEqual(sorted(namesOf(second)));
  });

  test('a folder removed and made again under the same path is read again', async () => {
    const folder = await folderOf('big', BIG);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    await folders.entries(folder);
    await rm(folder, { recursive: true });
    await mkdir(folder);
    await writeFile(join(folder, 'only'), '');
    expect(namesOf(await folders.entries(folder))).toEqual(['only']);
  });

  test('firstNotBefore finds where a cursor falls, on a name, between names, before and after all', () => {
    const entries = ['b', 'd', 'f'].map((name) => ({ name })) as never[];
    expect(firstNotBefore(entries, 'a')).toBe(0);
    expect(firstNotBefore(entries, 'b')).toBe(0);
    expect(firstNotBefore(entries, 'c')).toBe(1);
    expect(firstNotBefore(entries, 'd')).toBe(1);
    expect(firstNotBefore(entries, 'e')).toBe(2);
    expect(firstNotBefore(entries, 'f')).toBe(2);
    expect(firstNotBefore(entries, 'g')).toBe(3);
    expect(firstNotBefore([], 'a')).toBe(0);
  });
});
