import { disarm, failNext, failed, restoreFs } from '../client/support/client-fs-faults';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fs = require('node:fs');

/** Which path each fsync took, seen by wrappers put in place before src/ loads (it keeps `promisify(fsync)`). */
const calls: string[] = [];
let slowUs = 0;
const realSync = fs.fsyncSync;
const realAsync = fs.fsync;
fs.fsyncSync = ((fd: number) => {
  calls.push('sync');
  // Slow as a disk is: the thread is kept, then the real call is made.
  const until = process.hrtime.bigint() + BigInt(slowUs * 1000);
  while (process.hrtime.bigint() < until);
  return realSync(fd);
}) as typeof fs.fsyncSync;
fs.fsync = ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
  calls.push('pool');
  return realAsync(fd, callback);
}) as typeof fs.fsync;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { QuickFsync } = require('../../../src/io/quick-fsync') as typeof import('../../../src/io/quick-fsync');
type QuickFsync = InstanceType<typeof QuickFsync>;

/**
 * QuickFsync on real files: synchronous while fsyncs are quick, through the thread pool once they are
 * slow, back again once they are quick; a failure reaches the caller on either path, for files and
 * folders alike. "Slow" is made real: the wrapped fsyncSync waits (a busy loop, as a disk would keep the
 * thread) before the real call. Which path a call took is what the fault wrappers saw.
 */
describe('QuickFsync', () => {
  let dir: string;
  const averageOf = (quick: QuickFsync) => (quick as unknown as { averageUs: number }).averageUs;
  afterAll(() => {
    fs.fsyncSync = realSync;
    fs.fsync = realAsync;
    restoreFs();
  });
  beforeEach(() => {
    // tmpfs, where an fsync really is quick (on a disk the first one after a write waits for the journal).
    dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rxfer-quick-fsync-'));
    calls.length = 0;
    slowUs = 0;
  });
  afterEach(() => {
    disarm();
    rmSync(dir, { recursive: true, force: true });
  });

  const withFile = async (work: (fd: number) => Promise<void>) => {
    const fd = openSync(join(dir, 'f'), 'w');
    try {
      writeSync(fd, 'data');
      await work(fd);
    } finally {
      closeSync(fd);
    }
  };

  test('quick fsyncs stay synchronous; one slow one sends the next to the thread pool; quick ones bring them back', async () => {
    const quick = new QuickFsync();
    await withFile(async (fd) => {
      await quick.file(fd);
      await quick.file(fd);
      expect(calls).toEqual(['sync', 'sync']);
      slowUs = 2000;
      await quick.file(fd);
      expect(averageOf(quick)).toBeGreaterThan(100);
      slowUs = 0;
      await quick.file(fd);
      expect(calls.slice(2)).toEqual(['sync', 'pool']);
      // Each quick one lowers the average (a fifth of the way to its own duration), until it is below the mark.
      calls.length = 0;
      for (let i = 0; i < 40 && !calls.includes('sync'); i++) await quick.file(fd);
      expect(calls[calls.length - 1]).toBe('sync');
    });
  });

  test('folders take the same path as files, with the same average', async () => {
    const quick = new QuickFsync();
    await quick.folder(dir);
    expect(calls).toEqual(['sync']);
    slowUs = 2000;
    await quick.folder(dir);
    slowUs = 0;
    // The slow folder sent the file to the thread pool too.
    await withFile((fd) => quick.file(fd));
    expect(calls).toEqual(['sync', 'sync', 'pool']);
    // And the folder after it (through a FileHandle, whose sync is not fs.fsync: no call shows here).
    await quick.folder(dir);
    expect(calls).toEqual(['sync', 'sync', 'pool']);
  });

  test.each([
    ['synchronous', 'fsyncSync', 0],
    ['in the thread pool', 'fsync', 1000],
  ] as const)('a failed fsync (%s) rejects with its errno; the average still counts it', async (_label, call, average) => {
    const quick = new QuickFsync();
    (quick as unknown as { averageUs: number }).averageUs = average;
    await withFile(async (fd) => {
      failNext(call, (path) => path === join(dir, 'f'), 'EIO');
      await expect(quick.file(fd)).rejects.toMatchObject({ code: 'EIO' });
      expect(failed[failed.length - 1]).toEqual({ call, path: join(dir, 'f') });
      expect(averageOf(quick)).not.toBe(average);
    });
  });

  test('a folder that is not there: ENOENT on either path', async () => {
    const quick = new QuickFsync();
    await expect(quick.folder(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    (quick as unknown as { averageUs: number }).averageUs = 1000;
    await expect(quick.folder(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
