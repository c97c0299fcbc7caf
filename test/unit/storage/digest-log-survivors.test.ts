import type { Stats } from 'node:fs';
import fsp = require('node:fs/promises');
import { appendFile, mkdtemp, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestLog } from '../../../src/storage/digest-log';
import { formatDigestLine } from '../../../src/storage/small-commit-log';

/**
 * DigestLog cases written for mutants that survived the digest-log group (test/MUTATION.md): when a
 * log is opened at all, what happens when it changes between folder()'s stat and readTail's open
 * (a compaction or a cut racing the read: made deterministic by doing the change inside `open`),
 * a read that fails, the size of the tail buffer, and the count of a grown log's records.
 */
describe('DigestLog (mutation survivors)', () => {
  let dir: string;
  let log: DigestLog;
  const stats = (size: number, mtimeMs: number, ino: number) => ({ size, mtimeMs, ino }) as Stats;
  const line = (name: string, digest: string) => formatDigestLine(name, 5, 1000, 7, 'sha256', digest);
  const known = async (folder: string, name: string) => (await log.folder(folder)).get(name, stats(5, 1000, 7), 'sha256');
  const realOpen = fsp.open;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-digest-log-survivors-'));
    log = new DigestLog(dir);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  /** The next open of a log first runs `meanwhile` (what another process does between stat and open). */
  const beforeNextOpen = (meanwhile: () => Promise<void>) =>
    jest.spyOn(fsp, 'open').mockImplementationOnce(async (...args: Parameters<typeof fsp.open>) => {
      await meanwhile();
      return realOpen(...args);
    });

  test('an unchanged log costs one stat: it is not opened again', async () => {
    const path = log.pathOf('u');
    await writeFile(path, line('x', 'd1') + line('y', 'd2'));
    expect(await known('u', 'x')).toBe('d1');
    const opens = jest.spyOn(fsp, 'open');
    expect(await known('u', 'y')).toBe('d2');
    expect(await known('u', 'x')).toBe('d1');
    expect(opens).not.toHaveBeenCalled();
    // Grown: opened once to read the tail.
    await appendFile(path, line('z', 'd3'));
    expect(await known('u', 'z')).toBe('d3');
    expect(opens).toHaveBeenCalledTimes(1);
  });

  test('a log replaced between its stat and its open: none of the new file is read at the old log’s offset; the next call reads it whole', async () => {
    const path = log.pathOf('r');
    await writeFile(path, line('x', 'd1'));
    expect(await known('r', 'x')).toBe('d1');
    await appendFile(path, line('y', 'd2'));
    // The compaction's new file: lines as long as the old one's, so that at the old offset there
    // are complete lines to (wrongly) apply.
    await writeFile(path + '.new', line('a', 'e1') + line('b', 'e2') + line('c', 'e3'));
    beforeNextOpen(() => rename(path + '.new', path));
    const during = await log.folder('r');
    expect(during.get('x', stats(5, 1000, 7), 'sha256')).toBe('d1');
    expect(during.get('b', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    expect(during.get('c', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    const after = await log.folder('r');
    expect(after.get('x', stats(5, 1000, 7), 'sha256')).toBeUndefined();
    expect(['a', 'b', 'c'].map((name) => after.get(name, stats(5, 1000, 7), 'sha256'))).toEqual(['e1', 'e2', 'e3']);
  });

  test('a log cut shorter between its stat and its open: no error, and the next call reads it from its start', async () => {
    const path = log.pathOf('t');
    await writeFile(path, line('x', 'd1') + line('y', 'd2') + line('z', 'd3'));
    expect(await known('t', 'x')).toBe('d1');
    await appendFile(path, line('w', 'd4'));
    beforeNextOpen(async () => {
      const handle = await realOpen(path, 'r+');
      try {
        await handle.truncate(0);
        await handle.write(line('v', 'd5'), 0);
      } finally {
        await handle.close();
      }
    });
    // What was known still answers (the records are checked against each file's stat anyway).
    expect(await known('t', 'x')).toBe('d1');
    expect(await known('t', 'v')).toBe('d5');
    expect(await known('t', 'x')).toBeUndefined();
  });

  test('a read that fails applies none of the buffer, and the tail is read next time', async () => {
    const path = log.pathOf('e');
    await writeFile(path, line('x', 'd1'));
    expect(await known('e', 'x')).toBe('d1');
    await appendFile(path, line('y', 'd2'));
    // The read fails after filling the buffer (an EIO mid-way): its bytes are not to be trusted.
    jest.spyOn(fsp, 'open').mockImplementationOnce(async (...args: Parameters<typeof fsp.open>) => {
      const handle = await realOpen(...args);
      const realRead = handle.read.bind(handle) as (...a: unknown[]) => Promise<unknown>;
      (handle as unknown as { read: unknown }).read = async (...a: unknown[]) => {
        await realRead(...a);
        throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      };
      return handle;
    });
    expect(await known('e', 'y')).toBeUndefined();
    expect(await known('e', 'y')).toBe('d2');
    expect(await known('e', 'x')).toBe('d1');
  });

  test('a grown log costs a buffer of its new tail, not of the whole log', async () => {
    const path = log.pathOf('b');
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) lines.push(line(`f${i}`, 'aaaa'));
    await writeFile(path, lines.join(''));
    await log.folder('b');
    const tail = line('new', 'd1');
    await appendFile(path, tail);
    const allocations = jest.spyOn(Buffer, 'allocUnsafe');
    expect(await known('b', 'new')).toBe('d1');
    const sizes = allocations.mock.calls.map(([size]) => size);
    expect(sizes).toContain(Buffer.byteLength(tail));
    expect(Math.max(...sizes)).toBe(Buffer.byteLength(tail));
    expect((await stat(path)).size).toBeGreaterThan(100 * Buffer.byteLength(tail));
  });

  test('a grown log counts only its new records: 50,000 + 30,000 grown by 20,000 is at the bound, nothing evicted', async () => {
    const many = (prefix: string, count: number) => {
      const out: string[] = [];
      for (let i = 0; i < count; i++) out.push(line(`${prefix}${i}`, 'aaaa'));
      return out.join('');
    };
    await writeFile(log.pathOf('a'), many('a', 50_000));
    await writeFile(log.pathOf('c'), many('c', 30_000));
    await log.folder('a');
    await log.folder('c');
    await appendFile(log.pathOf('c'), many('d', 20_000));
    expect(await known('c', 'd19999')).toBe('aaaa');
    // 100,000 records: a (the least recently used) is still cached, so an in-place change is unseen.
    const handle = await open(log.pathOf('a'), 'r+');
    try {
      await handle.write(line('a0', 'bbbb'), 0);
    } finally {
      await handle.close();
    }
    expect(await known('a', 'a0')).toBe('aaaa');
  });
});
