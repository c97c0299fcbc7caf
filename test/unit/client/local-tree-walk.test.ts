import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walkFiles } from '../../../src/client/local-tree-walk';

/**
 * put -r's walk (src/client/local-tree-walk.ts), on a real folder: regular files only, depth first,
 * each folder's entries by their NFC name, the order local storage lists pages in, so that the
 * server's listing can be read alongside it (ListingCursor).
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxfer-walk-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const touch = (...parts: string[]) => {
  mkdirSync(join(dir, ...parts.slice(0, -1)), { recursive: true });
  writeFileSync(join(dir, ...parts), parts.join('/'));
};
const walk = async (folder = dir) => {
  const out: { path: string; name: string }[] = [];
  for await (const file of walkFiles(folder)) out.push(file);
  return out;
};

test('depth first, each folder by name: a folder`s files before a name with a character below "/"', async () => {
  for (const name of ['c', 'a-b', 'b', 'a.txt', 'A']) touch(name);
  touch('a', 'y');
  touch('a', 'x', 'deep');
  expect((await walk()).map((file) => file.name)).toEqual(['A', 'a/x/deep', 'a/y', 'a-b', 'a.txt', 'b', 'c']);
});

test('a folder of many entries, made in no order, is walked by name (the sort merges runs there)', async () => {
  const names = Array.from({ length: 300 }, (_, i) => `f${String((i * 7919) % 300).padStart(3, '0')}`);
  for (const name of names) touch(name);
  expect((await walk()).map((file) => file.name)).toEqual([...names].sort());
});

test('each file with its path here and its name relative to the folder', async () => {
  touch('top');
  touch('sub', 'inner');
  expect(await walk()).toEqual([
    { path: join(dir, 'sub', 'inner'), name: 'sub/inner' },
    { path: join(dir, 'top'), name: 'top' },
  ]);
});

test('sorted by the NFC form (as sent), each file under the name it has here', async () => {
  const decomposed = 'e\u0301'; // "é" as two code points: before "f" as it is, after it in NFC
  touch(`${decomposed}.txt`);
  touch('f.txt');
  expect((await walk()).map((file) => file.name)).toEqual(['f.txt', `${decomposed}.txt`]);
});

test('links are not followed or sent, an empty folder gives nothing', async () => {
  touch('real');
  mkdirSync(join(dir, 'empty'));
  symlinkSync(join(dir, 'real'), join(dir, 'link-to-file'));
  symlinkSync(dir, join(dir, 'link-to-folder'));
  expect((await walk()).map((file) => file.name)).toEqual(['real']);
});

test('a folder that is not there: the walk fails with its errno', async () => {
  await expect(walk(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
});
