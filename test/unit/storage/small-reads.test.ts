import { execFileSync } from 'node:child_process';
import fs = require('node:fs');
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { SMALL_FILE_BYTES } from '../../../src/storage/digest-index';
import { BURST_FILES, SmallReads } from '../../../src/storage/small-reads';
import { readSmallFile } from '../../../src/storage/read-small-file';
import { steadyAcross } from '../../../src/storage/digest-log';

/**
 * SmallReads on a real file system: what the worker reads is what the thread-pool path reads (bodies,
 * mtimes, sizes at the limit, every refusal), and a worker that is lost, closed or not yet started
 * never leaves a read unanswered. (A worker stuck in a read: hostile-2026-12-04-dead-mount.)
 */
describe('SmallReads', () => {
  let dir: string;
  /** What reads may reach: the test's folder (real path, trailing separator). */
  let within: string;
  let reads: SmallReads;

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-small-reads-')));
    within = dir + '/';
    reads = new SmallReads();
  });
  afterEach(async () => {
    await reads.close();
    await rm(dir, { recursive: true, force: true });
  });

  const name = (n: string) => n as RemoteName;
  const workerOf = (r: SmallReads) => (r as unknown as { worker?: Worker }).worker;
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (err: unknown) => (err instanceof RxferError ? err.code : `raw ${String(err)}`),
    );

  /** What a digest record would key for `path` now (SmallFile.steady of an unchanged read). */
  const versionOf = (path: string) => {
    const { size, mtimeMs, ino, ctimeMs } = statSync(path);
    return { size, mtimeMs, ino, ctimeMs };
  };

  test.each([
    ['through the worker', true],
    ['through the thread pool', false],
  ])('%s: a file nothing changed while it was read is steady, as the version fstat saw', async (_path, worker) => {
    const path = join(dir, 's.bin');
    await writeFile(path, randomBytes(5000));
    if (worker) expect(await reads.whenReady()).toBe(true);
    const file = worker ? await reads.read(path, name('s.bin'), within) : await readSmallFile(path, name('s.bin'), within);
    if (worker) expect(workerOf(reads)).toBeDefined();
    expect(file?.steady).toEqual(versionOf(path));
  });

  test('a file rewritten while it is read (same size, its mtime set back): not steady, so its digest is never recorded', async () => {
    const path = join(dir, 's.bin');
    const before = randomBytes(5000);
    await writeFile(path, before);
    // A whole second, so that the rewrite can put it back exactly.
    const t = Math.floor(Date.now() / 1000) - 60;
    fs.utimesSync(path, t, t);
    const seen = statSync(path);
    const read = fs.read;
    // Another program's rewrite lands between the fstat and the read, and puts the mtime back.
    const spy = jest.spyOn(fs, 'read').mockImplementationOnce(((...args: Parameters<typeof fs.read>) => {
      fs.writeFileSync(path, randomBytes(5000));
      fs.utimesSync(path, t, t);
      return (read as (...a: unknown[]) => void)(...args);
    }) as typeof fs.read);
    try {
      const file = await readSmallFile(path, name('s.bin'), within);
      expect(spy).toHaveBeenCalled();
      expect(statSync(path).mtimeMs).toBe(seen.mtimeMs);
      expect(file?.body.equals(before)).toBe(false);
      expect(file?.steady).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });

  test('through the thread pool: the look after the read fails: the bytes all the same, only not steady', async () => {
    const path = join(dir, 's.bin');
    const bytes = randomBytes(5000);
    await writeFile(path, bytes);
    const fstat = fs.fstat;
    let looks = 0;
    // The first fstat (before the read) succeeds; the one after fails.
    const spy = jest.spyOn(fs, 'fstat').mockImplementation(((fd: number, ...rest: unknown[]) => {
      looks += 1;
      const callback = rest[rest.length - 1] as (err: NodeJS.ErrnoException | null, stats?: fs.Stats) => void;
      if (looks === 2) return process.nextTick(() => callback(Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' })));
      return (fstat as (...a: unknown[]) => void)(fd, ...rest);
    }) as typeof fs.fstat);
    try {
      const file = await readSmallFile(path, name('s.bin'), within);
      expect(looks).toBe(2);
      expect(file?.body.equals(bytes)).toBe(true);
      expect(file?.steady).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });

  test('through the thread pool: a read that ends early with the file unchanged (a file system that gives fewer bytes than fstat said): the bytes read, never steady', async () => {
    const path = join(dir, 's.bin');
    const bytes = randomBytes(5000);
    await writeFile(path, bytes);
    const read = fs.read;
    // The first read gives 1,000 bytes; the next says end of file, although nothing changed.
    let calls = 0;
    const spy = jest.spyOn(fs, 'read').mockImplementation(((fd: number, buffer: Buffer, offset: number, _length: number, position: number, callback: (err: NodeJS.ErrnoException | null, n: number, b: Buffer) => void) => {
      calls += 1;
      if (calls > 1) return process.nextTick(() => callback(null, 0, buffer));
      return (read as (...a: unknown[]) => void)(fd, buffer, offset, 1000, position, callback);
    }) as unknown as typeof fs.read);
    try {
      const file = await readSmallFile(path, name('s.bin'), within);
      expect(file?.body.equals(bytes.subarray(0, 1000))).toBe(true);
      expect(statSync(path).size).toBe(5000);
      // Steady would have the digest of these 1,000 bytes recorded for the 5,000-byte version.
      expect(file?.steady).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });

  test('through the thread pool: a file is read in one read when it gives all of it; an empty one in none', async () => {
    const path = join(dir, 's.bin');
    const bytes = randomBytes(5000);
    await writeFile(path, bytes);
    await writeFile(join(dir, 'empty'), '');
    const reads = jest.spyOn(fs, 'read');
    try {
      expect((await readSmallFile(path, name('s.bin'), within))?.body.equals(bytes)).toBe(true);
      expect(reads).toHaveBeenCalledTimes(1);
      reads.mockClear();
      const empty = await readSmallFile(join(dir, 'empty'), name('empty'), within);
      expect(empty?.body.length).toBe(0);
      expect(empty?.steady).toEqual(versionOf(join(dir, 'empty')));
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });

  test('steadyAcross: the version before, only if size, mtime, inode and ctime are all the same after', () => {
    const before = { size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 2000 };
    expect(steadyAcross(before, { ...before })).toEqual(before);
    for (const field of ['size', 'mtimeMs', 'ino', 'ctimeMs'] as const) expect(steadyAcross(before, { ...before, [field]: before[field] + 1 })).toBeUndefined();
  });

  test('through the worker: a burst of files read whole, each its own bytes and mtime', async () => {
    expect(await reads.whenReady()).toBe(true);
    const files = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const body = randomBytes(i * 97);
        const path = join(dir, `f${i}`);
        await writeFile(path, body);
        return { path, body };
      }),
    );
    const got = await Promise.all(files.map(({ path }, i) => reads.read(path, name(`f${i}`), within)));
    got.forEach((file, i) => {
      expect(file?.body.equals(files[i].body)).toBe(true);
      expect(file?.mtimeMs).toBe(statSync(files[i].path).mtimeMs);
    });
    // Still the worker that answered: none of them killed or stopped it.
    expect(workerOf(reads)).toBeDefined();
  });

  test('sizes at the limit: empty and SMALL_FILE_BYTES are read, one byte more is left to streaming', async () => {
    expect(await reads.whenReady()).toBe(true);
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'at'), Buffer.alloc(SMALL_FILE_BYTES, 1));
    await writeFile(join(dir, 'over'), Buffer.alloc(SMALL_FILE_BYTES + 1, 2));
    const [empty, at, over] = await Promise.all(['empty', 'at', 'over'].map((n) => reads.read(join(dir, n), name(n), within)));
    expect(empty?.body.length).toBe(0);
    expect(at?.body.equals(Buffer.alloc(SMALL_FILE_BYTES, 1))).toBe(true);
    expect(over).toBeUndefined();
  });

  test('refusals in the worker are the storage codes: missing, folder, link, FIFO (at once), in one batch with good files', async () => {
    expect(await reads.whenReady()).toBe(true);
    await writeFile(join(dir, 'good'), 'good');
    await mkdir(join(dir, 'folder'));
    await symlink(join(dir, 'good'), join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const outcomes = await Promise.all(
      ['missing', 'folder', 'link', 'fifo', 'good'].map((n) => codeOf(reads.read(join(dir, n), name(n), within))),
    );
    expect(outcomes).toEqual(['NOT_FOUND', 'NAME_CONFLICT', 'NAME_INVALID', 'NAME_CONFLICT', 'resolved']);
    // The messages name the storage name, never the server's path.
    const err = await reads.read(join(dir, 'folder'), name('sub/folder'), within).catch((e: RxferError) => e);
    expect((err as RxferError).message).toContain('sub/folder');
    expect((err as RxferError).message).not.toContain(dir);
  });

  test.each([
    ['through the worker', true],
    ['through the thread pool', false],
  ] as const)('%s: a file whose folder was swapped for a link out of `within` is refused, never read', async (_label, worker) => {
    const inside = join(dir, 'inside');
    const outside = join(dir, 'outside');
    await mkdir(join(inside, 'd'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(inside, 'd', 'x'), 'inside');
    await writeFile(join(outside, 'x'), 'SECRET');
    if (worker) expect(await reads.whenReady()).toBe(true);
    else await reads.close();
    const narrow = inside + '/';
    expect((await reads.read(join(inside, 'd', 'x'), name('d/x'), narrow))?.body.toString()).toBe('inside');
    // The folder a caller checked becomes a link to outside (O_NOFOLLOW guards only the last segment).
    await rename(join(inside, 'd'), join(inside, 'd-old'));
    await symlink(outside, join(inside, 'd'));
    const err = await reads.read(join(inside, 'd', 'x'), name('d/x'), narrow).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RxferError);
    expect(err).toMatchObject({ code: 'NAME_INVALID', message: 'd/x resolves outside the storage root' });
    // A prefix of the name is not inside: `inside-other/` does not start with `inside/`.
    await mkdir(join(dir, 'inside-other'));
    await writeFile(join(dir, 'inside-other', 'y'), 'next door');
    await expect(reads.read(join(dir, 'inside-other', 'y'), name('y'), narrow)).rejects.toMatchObject({ code: 'NAME_INVALID' });
  });

  test('one read, or reads of large files, start no worker; a burst of small reads does, and none waits for it', async () => {
    await writeFile(join(dir, 'a'), 'first');
    await writeFile(join(dir, 'big'), Buffer.alloc(SMALL_FILE_BYTES + 1));
    expect((await reads.read(join(dir, 'a'), name('a'), within))?.body.toString()).toBe('first');
    for (let i = 0; i < 2 * BURST_FILES; i++) expect(await reads.read(join(dir, 'big'), name('big'), within)).toBeUndefined();
    expect(workerOf(reads)).toBeUndefined();
    // The burst: every read answered (through the thread pool) while the worker starts.
    const burst = await Promise.all(Array.from({ length: BURST_FILES }, () => reads.read(join(dir, 'a'), name('a'), within)));
    expect(burst.map((file) => file?.body.toString())).toEqual(Array(BURST_FILES).fill('first'));
    expect(workerOf(reads)).toBeDefined();
    expect(await reads.whenReady()).toBe(true);
  });

  test('a worker lost with a batch in it: the batch is read through the thread pool, and a new worker starts after it', async () => {
    expect(await reads.whenReady()).toBe(true);
    const bodies = Array.from({ length: 200 }, (_, i) => randomBytes(1000 + i));
    await Promise.all(bodies.map((body, i) => writeFile(join(dir, `g${i}`), body)));
    const first = workerOf(reads)!;
    const pending = bodies.map((_, i) => reads.read(join(dir, `g${i}`), name(`g${i}`), within));
    // Lost as the batch goes out (terminate stands in for a crash: the thread ends, its replies never come).
    await new Promise((resolve) => setImmediate(resolve));
    await first.terminate();
    const got = await Promise.all(pending);
    got.forEach((file, i) => expect(file?.body.equals(bodies[i])).toBe(true));
    expect(workerOf(reads)).not.toBe(first);
    expect(await reads.whenReady()).toBe(true);
    expect(workerOf(reads)).not.toBe(first);
    expect((await reads.read(join(dir, 'g0'), name('g0'), within))?.body.equals(bodies[0])).toBe(true);
  });

  test('closed with reads in the worker: each is answered once, through the thread pool; reads after close still work', async () => {
    expect(await reads.whenReady()).toBe(true);
    await Promise.all(Array.from({ length: 100 }, (_, i) => writeFile(join(dir, `c${i}`), `c${i}`)));
    const pending = Array.from({ length: 100 }, (_, i) => reads.read(join(dir, `c${i}`), name(`c${i}`), within));
    await new Promise((resolve) => setImmediate(resolve));
    await reads.close();
    expect((await Promise.all(pending)).map((f) => f?.body.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `c${i}`));
    expect(workerOf(reads)).toBeUndefined();
    expect((await reads.read(join(dir, 'c7'), name('c7'), within))?.body.toString()).toBe('c7');
    expect(await reads.whenReady()).toBe(false);
  });

  test('a process that read through the worker exits by itself once nothing is left to read', async () => {
    // A process of its own (inside Jest something else always keeps it alive), running the TypeScript
    // source through ts-node, as small-commits-process-life does: it reads through the worker and
    // then has nothing to do, so it must exit by itself, long before the worker's idle stop.
    await writeFile(join(dir, 'x'), 'x');
    const source = join(__dirname, '../../../src/storage/small-reads.ts');
    const out = execFileSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', '-e', `const { SmallReads } = require(${JSON.stringify(source)});
        const r = new SmallReads();
        r.whenReady().then(() => Promise.all([1, 2, 3].map(() => r.read(${JSON.stringify(join(dir, 'x'))}, 'x', ${JSON.stringify(within)})))).then((f) => console.log(f.map((x) => x.body.toString()).join('')));`],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs', moduleResolution: 'node10' }) } },
    );
    expect(out.trim()).toBe('xxx');
  });

  test('a worker that cannot start is tried a few times, then reads go through the thread pool only', async () => {
    await writeFile(join(dir, 'y'), 'y');
    // A worker ended before it says "ready" stands in for one that cannot start (a broken install, no memory for a thread).
    const broken = new SmallReads();
    (broken as unknown as { start: () => Worker }).start = ((original) =>
      function (this: SmallReads) {
        const worker = original.call(this);
        void worker.terminate();
        return worker;
      })((broken as unknown as { start: () => Worker }).start);
    try {
      const ready: boolean[] = [];
      for (let i = 0; i < 5; i++) ready.push(await broken.whenReady());
      expect(ready).toEqual([false, false, false, false, false]);
      expect((await broken.read(join(dir, 'y'), name('y'), within))?.body.toString()).toBe('y');
      // No worker is started any more.
      expect(workerOf(broken)).toBeUndefined();
    } finally {
      await broken.close();
    }
  });
});
