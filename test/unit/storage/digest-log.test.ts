import type { Stats } from 'node:fs';
import fsp = require('node:fs/promises');
import { appendFile, mkdir, mkdtemp, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestLog, FolderDigests, folderOf } from '../../../src/storage/digest-log';
import { digestLogPath, formatDigestLine } from '../../../src/storage/small-commit-log';

/**
 * The reading side of the folders' digest logs, on real files in a temp folder: what is read, what is
 * cached, and when the cache is not trusted (replaced, shrunk or evicted log).
 */
describe('DigestLog', () => {
  let dir: string;
  let log: DigestLog;
  const stats = (size: number, mtimeMs: number, ino: number) => ({ size, mtimeMs, ino }) as Stats;
  const line = (name: string, digest: string, size = 5, mtimeMs = 1000, ino = 7, algorithm = 'sha256') => formatDigestLine(name, size, mtimeMs, ino, algorithm, digest);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-digest-log-'));
    log = new DigestLog(dir);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  /** Rewrites `path` in place (same inode, same size): a cache that trusts its size cannot see it. */
  const rewriteInPlace = async (path: string, text: string) => {
    const handle = await open(path, 'r+');
    try {
      await handle.write(text, 0);
    } finally {
      await handle.close();
    }
  };

  test('folderOf: the root is the empty name', () => {
    expect(folderOf('a.txt')).toBe('');
    expect(folderOf('a/b/c.txt')).toBe('a/b');
  });

  test('FolderDigests answers only for the version the record describes (size, mtime, inode)', () => {
    const records = new Map([['f', { s: 5, m: 1000, i: 7, d: { sha256: 'dsha' } }]]);
    const folder = new FolderDigests(records);
    expect(folder.get('f', stats(5, 1000, 7), 'sha256')).toBe('dsha');
    expect(folder.get('f', stats(5, 1000, 7), 'blake3')).toBeUndefined();
    expect(folder.get('f', stats(6, 1000, 7), 'sha256')).toBeUndefined();
    expect(folder.get('f', stats(5, 1001, 7), 'sha256')).toBeUndefined();
    expect(folder.get('f', stats(5, 1000, 8), 'sha256')).toBeUndefined();
    expect(folder.get('g', stats(5, 1000, 7), 'sha256')).toBeUndefined();
  });

  test('reads a folder’s log; a folder without one knows nothing', async () => {
    expect(log.pathOf('a/b')).toBe(digestLogPath(dir, 'a/b'));
    await writeFile(log.pathOf('a'), line('x', 'd1') + line('y', 'd2'));
    const folder = await log.folder('a');
    expect(folder.get('x', stats(5, 1000, 7), 'sha256')).toBe('d1');
    expect(folder.get('y', stats(5, 1000, 7), 'sha256')).toBe('d2');
    expect((await log.folder('b')).get('x', stats(5, 1000, 7), 'sha256')).toBeUndefined();
  });

  test('lines appended later are read on the next call; a line still being written waits for its newline', async () => {
    const path = log.pathOf('');
    await writeFile(path, line('x', 'd1'));
    expect((await log.folder('')).get('x', stats(5, 1000, 7), 'sha256')).toBe('d1');
    const next = line('y', 'd2');
    await appendFile(path, next.slice(0, 10));
    expect((await log.folder('')).get('y', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    await appendFile(path, next.slice(10));
    const folder = await log.folder('');
    expect(folder.get('y', stats(5, 1000, 7), 'sha256')).toBe('d2');
    expect(folder.get('x', stats(5, 1000, 7), 'sha256')).toBe('d1');
  });

  test('a log replaced by a compaction (new inode) or cut shorter is read again from the start', async () => {
    const path = log.pathOf('c');
    await writeFile(path, line('x', 'd1') + line('y', 'd2'));
    await log.folder('c');
    // Compaction: a new file, renamed over the log.
    await writeFile(path + '.new', line('y', 'd3') + line('z', 'd4') + line('w', 'd5'));
    await rename(path + '.new', path);
    let folder = await log.folder('c');
    expect(folder.get('x', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    expect(folder.get('w', stats(5, 1000, 7), 'sha256')).toBe('d5');
    // Cut shorter in place (same inode).
    const handle = await open(path, 'r+');
    await handle.truncate(0);
    await handle.write(line('v', 'd6'), 0);
    await handle.close();
    folder = await log.folder('c');
    expect(folder.get('v', stats(5, 1000, 7), 'sha256')).toBe('d6');
    expect(folder.get('y', stats(5, 1000, 7), 'sha256')).toBeUndefined();
  });

  test('a log that disappeared: nothing known, and a new log of the folder is read from its start', async () => {
    const path = log.pathOf('g');
    await writeFile(path, line('x', 'd1') + line('y', 'd2'));
    await log.folder('g');
    await rm(path);
    expect((await log.folder('g')).get('x', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    await writeFile(path, line('z', 'd3'));
    expect((await log.folder('g')).get('z', stats(5, 1000, 7), 'sha256')).toBe('d3');
  });

  test('an unchanged log is not read again (one stat), and calls at once share one read', async () => {
    const path = log.pathOf('u');
    await writeFile(path, line('x', 'aaaa'));
    const [first, second] = await Promise.all([log.folder('u'), log.folder('u')]);
    expect(first.get('x', stats(5, 1000, 7), 'sha256')).toBe('aaaa');
    expect(second.get('x', stats(5, 1000, 7), 'sha256')).toBe('aaaa');
    await rewriteInPlace(path, line('x', 'bbbb'));
    expect((await log.folder('u')).get('x', stats(5, 1000, 7), 'sha256')).toBe('aaaa');
  });

  test('lineFor: the line and log of a name, known at once to a folder already read', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(log.pathOf('a/b'), line('old', 'd0'));
    await log.folder('a/b');
    const { log: path, line: text } = log.lineFor('a/b/new.txt', stats(3, 2000, 9), 'blake3', 'dnew');
    expect(path).toBe(log.pathOf('a/b'));
    expect(text).toBe(formatDigestLine('new.txt', 3, 2000, 9, 'blake3', 'dnew'));
    // Not appended yet (the worker does that): known from memory.
    expect((await log.folder('a/b')).get('new.txt', stats(3, 2000, 9), 'blake3')).toBe('dnew');
    const root = log.lineFor('top.txt', stats(3, 2000, 9), 'sha256', 'dtop');
    expect(root.log).toBe(log.pathOf(''));
    expect(JSON.parse(root.line).n).toBe('top.txt');
  });

  test('closes the log after each read', async () => {
    const path = log.pathOf('fd');
    const before = (await readdir('/proc/self/fd')).length;
    for (let i = 0; i < 5; i++) {
      await appendFile(path, line(`f${i}`, 'd'));
      await log.folder('fd');
    }
    expect((await readdir('/proc/self/fd')).length).toBe(before);
  });

  test('a log that cannot be opened (gone since its stat) is read next time', async () => {
    await writeFile(log.pathOf('o'), line('x', 'd1'));
    jest.spyOn(fsp, 'open').mockRejectedValueOnce(Object.assign(new Error('ENOENT'), { code: 'ENOENT' }));
    expect((await log.folder('o')).get('x', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    expect((await log.folder('o')).get('x', stats(5, 1000, 7), 'sha256')).toBe('d1');
  });
});
