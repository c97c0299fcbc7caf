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
 * slow, back again once a probe finds them quick; a failure reaches the caller on either path, for
 * files and folders alike. "Slow" is made real: the wrapped fsyncSync waits (a busy loop, as a disk
 * would keep the thread) before the real call. Which path a call took is what the fault wrappers saw.
 */
describe('QuickFsync', () => {
  let dir: string;
  const paceOf = (quick: QuickFsync) => (quick as unknown as { pace: { pooled: boolean; probeEvery: number } }).pace;
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

  // Which fsyncs are made how, exactly, is FsyncPace's test (fsync-pace.test.ts); here the real calls
  // take those paths. A "quick" fsync here is real, and a loaded machine may make one slow: only
  // sequences that do not hang on that are asserted (a run of slow ones starts on a fresh pace).
  test('quick fsyncs are synchronous; slow ones in a row send the next to the thread pool', async () => {
    await withFile(async (fd) => {
      const fresh = new QuickFsync();
      await fresh.file(fd);
      await fresh.file(fd);
      expect(calls).toEqual(['sync', 'sync']);
      calls.length = 0;
      // On a pace of its own: a "quick" one slowed by the machine would make four slow in a row.
      const quick = new QuickFsync();
      slowUs = 2000;
      for (let i = 0; i < 3; i++) await quick.file(fd);
      slowUs = 0;
      await quick.file(fd);
      expect(calls).toEqual(['sync', 'sync', 'sync', 'pool']);
    });
  });

  test('pooled fsyncs whose callbacks wait behind a busy event loop do not keep them pooled: a quick probe brings them back', async () => {
    const quick = new QuickFsync();
    await withFile(async (fd) => {
      slowUs = 2000;
      for (let i = 0; i < 3; i++) await quick.file(fd);
      slowUs = 0;
      calls.length = 0;
      // Each pooled fsync's callback waits behind 1 ms of other work, as on a busy client: the rule
      // that timed pooled fsyncs counted that wait as the disk's, and never came back (issue 20).
      const busy = setInterval(() => {
        const until = Date.now() + 1;
        while (Date.now() < until);
      }, 0);
      try {
        for (let i = 0; i < 200 && calls.slice(-2).join() !== 'sync,sync'; i++) await quick.file(fd);
      } finally {
        clearInterval(busy);
      }
      expect(calls.slice(0, 16)).toEqual([...Array(15).fill('pool'), 'sync']);
      expect(calls.slice(-2)).toEqual(['sync', 'sync']);
      expect(paceOf(quick).pooled).toBe(false);
    });
  });

  test('a slow probe doubles the interval to the next one', async () => {
    const quick = new QuickFsync();
    await withFile(async (fd) => {
      slowUs = 2000;
      for (let i = 0; i < 3; i++) await quick.file(fd);
      calls.length = 0;
      // The 16th is the probe, slow too: the next probe is the 32nd after it, slow again: then 64.
      for (let i = 0; i < 16 + 32; i++) await quick.file(fd);
      expect(calls).toEqual([...Array(15).fill('pool'), 'sync', ...Array(31).fill('pool'), 'sync']);
      expect(paceOf(quick)).toMatchObject({ pooled: true, probeEvery: 64 });
    });
  });

  test('folders take the same path as files, with the same pace', async () => {
    // A folder's first fsync is synchronous, as a file's is.
    await new QuickFsync().folder(dir);
    expect(calls).toEqual(['sync']);
    calls.length = 0;
    // Only slow fsyncs from here (a quick one's time is the machine's: under load a real one on
    // tmpfs took over the threshold, and the pace pooled one call early; CI, 2026-12-06).
    const quick = new QuickFsync();
    slowUs = 2000;
    for (let i = 0; i < 3; i++) await quick.folder(dir);
    slowUs = 0;
    // The slow folders sent the file to the thread pool too.
    await withFile((fd) => quick.file(fd));
    expect(calls).toEqual(['sync', 'sync', 'sync', 'pool']);
    // And the folder after it (through a FileHandle, whose sync is not fs.fsync: no call shows here).
    await quick.folder(dir);
    expect(calls).toEqual(['sync', 'sync', 'sync', 'pool']);
    expect(paceOf(quick).pooled).toBe(true);
  });

  test.each([
    ['synchronous', 'fsyncSync', false],
    ['in the thread pool', 'fsync', true],
  ] as const)('a failed fsync (%s) rejects with its errno', async (_label, call, pooled) => {
    const quick = new QuickFsync();
    Object.assign(paceOf(quick), { pooled, probeEvery: 1024 });
    await withFile(async (fd) => {
      failNext(call, (path) => path === join(dir, 'f'), 'EIO');
      await expect(quick.file(fd)).rejects.toMatchObject({ code: 'EIO' });
      expect(failed[failed.length - 1]).toEqual({ call, path: join(dir, 'f') });
    });
  });

  test('a folder that is not there: ENOENT on either path', async () => {
    const quick = new QuickFsync();
    await expect(quick.folder(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    Object.assign(paceOf(quick), { pooled: true, probeEvery: 1024 });
    await expect(quick.folder(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
