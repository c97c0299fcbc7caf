import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SortedFolders, firstNotBefore } from '../../../src/storage/sorted-folders';

/**
 * The rules of SortedFolders that sorted-folders.test.ts leaves to chance (mutation testing, issue 18):
 * the sort itself where the file system's own order differs, a kept folder that is gone, a folder
 * whose mtime was set back (just now, or exactly), and the binary search over many names.
 */
describe('SortedFolders rules', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-sorted-rules-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const BIG = 300;
  const bigFolder = async (name: string) => {
    const folder = join(dir, name);
    await mkdir(folder);
    const names = Array.from({ length: BIG }, (_, i) => `f${String(i).padStart(5, '0')}`);
    await Promise.all(names.map((file) => writeFile(join(folder, file), '')));
    return folder;
  };
  const namesOf = (entries: readonly { name: string }[]) => entries.map((entry) => entry.name);

  test('names beyond the BMP sort by UTF-16 code units, not by the bytes readdir sorts them by', async () => {
    // libuv returns a folder's names in byte (code point) order: U+FF21 before U+1F600. JS compares
    // UTF-16 code units, where U+1F600's high surrogate (0xD83D) comes first; LIST AFTER cursors
    // compare that way too, so the listing must be in that order or a page skips or repeats files.
    const folder = join(dir, 'wide');
    await mkdir(folder);
    for (const name of ['\uFF21', '\u{1F600}', 'a', '\uE000']) await writeFile(join(folder, name), '');
    expect(namesOf(await new SortedFolders().entries(folder))).toEqual(['a', '\u{1F600}', '\uE000', '\uFF21']);
  });

  test('a kept folder that is then removed has no entries (and no error)', async () => {
    const folder = await bigFolder('gone');
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const first = await folders.entries(folder);
    expect(await folders.entries(folder)).toBe(first); // it was kept
    await rm(folder, { recursive: true });
    await expect(folders.entries(folder)).resolves.toEqual([]);
  });

  test('a folder whose mtime was set back just now is not kept: its ctime is what is recent', async () => {
    // tar, cp -a, rsync -a: a folder just filled whose mtime says an hour ago. It changed in the last
    // racyMs all the same (its ctime says so), so it is read afresh, not kept.
    const folder = await bigFolder('restored');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(folder, hourAgo, hourAgo);
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 60_000 });
    const first = await folders.entries(folder);
    const second = await folders.entries(folder);
    expect(second).not.toBe(first);
    expect(namesOf(second)).toEqual(namesOf(first));
  });

  test('a change whose mtime is put back exactly is still seen: by the ctime alone', async () => {
    // sorted-folders.test.ts sets the mtime back through a Date (ms), which leaves the kept mtime's
    // sub-ms part different: there the mtime alone would catch it. Whole seconds are set exactly.
    const folder = await bigFolder('exact');
    const back = new Date('2020-01-01T00:00:00Z');
    await utimes(folder, back, back);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the ctime utimes set is past, even with racyMs 0
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0 });
    const first = await folders.entries(folder);
    expect(await folders.entries(folder)).toBe(first); // kept
    await writeFile(join(folder, 'zz-added'), '');
    await utimes(folder, back, back);
    expect((await stat(folder)).mtimeMs).toBe(back.getTime()); // the mtime says nothing changed
    expect(namesOf(await folders.entries(folder))).toContain('zz-added');
  });

  test('a folder settled for longer than racyMs is kept', async () => {
    const folder = await bigFolder('settled');
    // Its last change is at least 50 ms old, past racyMs (the other tests keep with racyMs 0).
    await new Promise((resolve) => setTimeout(resolve, 50));
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 20 });
    const first = await folders.entries(folder);
    expect(await folders.entries(folder)).toBe(first);
  });

  test('firstNotBefore agrees with a scan from the start, for every name and every gap of 1,000', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `n${String(i * 2).padStart(5, '0')}`);
    const entries = names.map((name) => ({ name })) as never[];
    const probes = [...names, ...names.map((name) => `${name}x`), 'a', 'z', ''];
    for (const probe of probes) {
      const scanned = names.findIndex((name) => !(name < probe));
      expect(firstNotBefore(entries, probe)).toBe(scanned === -1 ? names.length : scanned);
    }
  });

  test('past the cap, the folder used least recently is dropped first', async () => {
    const [a, b, c] = [await bigFolder('a'), await bigFolder('b'), await bigFolder('c')];
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0, maxCachedEntries: 2 * BIG });
    const keptA = await folders.entries(a);
    const keptB = await folders.entries(b);
    expect(await folders.entries(a)).toBe(keptA); // a is now the most recently used
    await folders.entries(c); // 3 × BIG > the cap: b goes, a and c stay
    expect(await folders.entries(a)).toBe(keptA);
    expect(await folders.entries(b)).not.toBe(keptB);
  });

  test('a folder read again after a change counts once, not twice, against the cap', async () => {
    const [a, b] = [await bigFolder('a'), await bigFolder('b')];
    const folders = new SortedFolders({ cacheFromEntries: BIG, racyMs: 0, maxCachedEntries: 2 * BIG + 10 });
    await folders.entries(a);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(join(a, 'zz-added'), '');
    const keptA = await folders.entries(a); // BIG + 1, replacing its BIG
    await folders.entries(b); // 2 × BIG + 1 ≤ the cap: nothing dropped
    expect(await folders.entries(a)).toBe(keptA);
  });

  test('a folder bigger than the cap is never kept, and pushes no other folder out', async () => {
    const [a, b] = [await bigFolder('a'), await bigFolder('b')];
    await writeFile(join(b, 'one-more'), '');
    const folders = new SortedFolders({ cacheFromEntries: 1, racyMs: 0, maxCachedEntries: BIG });
    const keptA = await folders.entries(a);
    expect(await folders.entries(b)).not.toBe(await folders.entries(b));
    expect(await folders.entries(a)).toBe(keptA);
  });
});
