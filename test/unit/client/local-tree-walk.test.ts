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

test('files named as rxfer`s own unfinished downloads are not files of the tree (a resume file, its lock, a staging file)', async () => {
  touch('big.iso');
  touch('.big.iso.rxfer-resume');
  touch('.big.iso.rxfer-resume.lock');
  touch('sub', '.f.rxfer-part-0123456789ab-1z');
  touch('sub', '.f.rxfer-resume.txt');
  expect((await walk()).map((file) => file.name)).toEqual(['big.iso', 'sub/.f.rxfer-resume.txt']);
});

test('a folder that is not there: the walk fails with its errno', async () => {
  await expect(walk(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
});

test('paths are as path.join gives them, whatever the folder is called: "dir/", "./dir", "dir/../dir", ".", "./"', async () => {
  touch('sub', 'f');
  const parent = join(dir, '..');
  const base = dir.slice(parent.length + 1);
  const fromParent = async (folder: string) => {
    const out: string[] = [];
    const cwd = process.cwd();
    process.chdir(parent);
    try {
      for await (const file of walkFiles(folder)) out.push(file.path);
    } finally {
      process.chdir(cwd);
    }
    return out;
  };
  for (const folder of [`${base}/`, `./${base}`, `${base}/../${base}`, `${base}//`]) expect(await fromParent(folder)).toEqual([join(base, 'sub', 'f')]);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    // "./" and ".//" normalize to "./", not "."; path.join drops the "./" all the same.
    for (const here of ['.', './', './/']) {
      const out: string[] = [];
      for await (const file of walkFiles(here)) out.push(file.path);
      expect(out).toEqual([join(here, 'sub', 'f')]);
    }
  } finally {
    process.chdir(cwd);
  }
  expect((await walk(`${dir}/`)).map((file) => file.path)).toEqual([join(dir, 'sub', 'f')]);
});

test('two names of one folder that are one name in NFC: NAME_CONFLICT naming both, before any file is given', async () => {
  touch('a.txt');
  touch('sub', '\u00e9');
  touch('sub', 'e\u0301');
  const seen: string[] = [];
  const error = await (async () => {
    for await (const file of walkFiles(dir)) seen.push(file.name);
  })().catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'NAME_CONFLICT', message: expect.stringContaining('are one name on the server') });
  // The second of the two in the walk's order (equal keys keep readdir's order): either spelling.
  expect([join(dir, 'sub', '\u00e9'), join(dir, 'sub', 'e\u0301')]).toContain((error as { detail: { path: string } }).detail.path);
  expect((error as Error).message).toContain(join(dir, 'sub', '\u00e9'));
  expect((error as Error).message).toContain(join(dir, 'sub', 'e\u0301'));
  // The folder's check comes before its first file: a.txt (another folder) was given, nothing of sub.
  expect(seen).toEqual(['a.txt']);
});

test('a name that is not UTF-8 is refused as NAME_INVALID with its bytes escaped, even beside one really named with the replacement character, which alone is a name', async () => {
  touch('\uFFFD');
  touch('plain');
  expect((await walk()).map((file) => file.name)).toEqual(['plain', '\uFFFD']);
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/x`), Buffer.from([0x1f, 0xff, 0x41, 0x7f, 0x7e, 0x20, 0x01])]), 'not UTF-8');
  await expect(walk()).rejects.toMatchObject({
    code: 'NAME_INVALID',
    message: `${dir}/x\\x1f\\xffA\\x7f~ \\x01 cannot be sent: its name is not valid UTF-8 (the server stores UTF-8 names only); rename it`,
    detail: { path: `${dir}/x\\x1f\\xffA\\x7f~ \\x01` },
  });
});
