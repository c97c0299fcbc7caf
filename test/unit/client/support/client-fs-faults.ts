/**
 * One failing file-system call, on demand, for the client's staging code: the next call of a kind on
 * a path a test names fails with an errno (or, for `writeSync`, writes fewer bytes than asked), and
 * then `node:fs` is healthy again. The real functions are wrapped, so the code under test meets the
 * failure itself and must clean up by itself: a disk that fills up or fails under a commit, a close
 * that reports a write the file system deferred (NFS), a process of another user holding a lock.
 *
 * Import this module BEFORE anything from src/: staging-file.ts takes `promisify(fsync)` (and fstat,
 * close) when it loads, and exact-writes.ts keeps `write`, `writev` and `close` for its streams.
 * `restoreFs()` in afterAll: Jest shares `node:fs` between the test files of one worker.
 */
import fs = require('node:fs');
import fsp = require('node:fs/promises');

export type FaultyCall =
  | 'write'
  | 'writev'
  | 'fsync'
  | 'fstat'
  | 'ftruncate'
  | 'fdatasync'
  | 'read'
  | 'close'
  | 'rename'
  | 'openSync'
  | 'readSync'
  | 'handleRead'
  | 'handleSync'
  /** A folder's fsync, either way the client makes it: 'fsyncSync' on the folder's descriptor or 'handleSync'. */
  | 'folderSync'
  | 'writeSync'
  | 'closeSync'
  | 'renameSync'
  | 'fstatSync'
  | 'lstatSync'
  | 'fsyncSync';

interface Armed {
  readonly call: FaultyCall;
  readonly matches: (path: string) => boolean;
  readonly code: string;
  /** writeSync only: write this many bytes for real and report them, instead of failing. */
  readonly shortTo?: number;
  /** Stays armed after a hit (failEvery). */
  readonly persistent?: boolean;
}

let armed: Armed | undefined;
/** Calls that failed (or were cut short) because of `failNext`, with their path. */
export const failed: { call: FaultyCall; path: string }[] = [];

/** The next `call` on a path `matches` accepts fails with `code` (EIO by default). */
export const failNext = (call: FaultyCall, matches: (path: string) => boolean, code = 'EIO'): void => {
  armed = { call, matches, code };
};

/** Every `call` on a path `matches` accepts fails with `code` until disarm(): a disk that keeps failing. */
export const failEvery = (call: FaultyCall, matches: (path: string) => boolean, code = 'EIO'): void => {
  armed = { call, matches, code, persistent: true };
};

/** The next writeSync on a matching path writes only `bytes` bytes (a short write, no error). */
export const shortWriteNext = (matches: (path: string) => boolean, bytes: number): void => {
  armed = { call: 'writeSync', matches, code: 'EIO', shortTo: bytes };
};

export const disarm = (): void => {
  armed = undefined;
};

const pathOfFd = (fd: number): string => {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `<fd ${fd}>`;
  }
};

/** The armed fault if it is for this call; the path is looked up only while something is armed. */
const take = (call: FaultyCall, where: () => string): Armed | undefined => {
  if (armed === undefined) return undefined;
  const folderSync = armed.call === 'folderSync' && (call === 'fsyncSync' || call === 'handleSync');
  if (armed.call !== call && !folderSync) return undefined;
  const path = where();
  if (!armed.matches(path)) return undefined;
  const hit = armed;
  if (!hit.persistent) armed = undefined;
  failed.push({ call: hit.call, path });
  return hit;
};

const errorOf = (hit: Armed, call: string, path: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${hit.code}: injected failure, ${call} '${path}'`), { code: hit.code, syscall: call });

type AnyFn = (...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
const real: Record<string, AnyFn> = {};
const wrap = (target: object, name: string, replacement: (original: AnyFn) => AnyFn): void => {
  const original = (target as Record<string, AnyFn>)[name]!;
  real[name] = original;
  const wrapped = replacement(original);
  // promisify(fs.read) and friends resolve to several values through a symbol on the function.
  for (const symbol of Object.getOwnPropertySymbols(original)) Object.defineProperty(wrapped, symbol, Object.getOwnPropertyDescriptor(original, symbol)!);
  (target as Record<string, AnyFn>)[name] = wrapped;
};

/** An async fd call: the callback gets the error on the next turn, the real call is not made. */
const failingFdCall = (call: FaultyCall) => (original: AnyFn) =>
  function (this: unknown, fd: number, ...rest: unknown[]) {
    const hit = take(call, () => pathOfFd(fd));
    const callback = rest[rest.length - 1] as (err: NodeJS.ErrnoException) => void;
    if (hit) return void setImmediate(() => callback(errorOf(hit, call, pathOfFd(fd))));
    return original.call(this, fd, ...rest);
  };

wrap(fs, 'write', failingFdCall('write'));
wrap(fs, 'writev', failingFdCall('writev'));
wrap(fs, 'fsync', failingFdCall('fsync'));
wrap(fs, 'fstat', failingFdCall('fstat'));
wrap(fs, 'ftruncate', failingFdCall('ftruncate'));
wrap(fs, 'fdatasync', failingFdCall('fdatasync'));
wrap(fs, 'read', failingFdCall('read'));
// A close that reports an error the file system deferred: the descriptor is closed all the same.
wrap(fs, 'close', (original) => (fd: number, callback?: (err: NodeJS.ErrnoException | null) => void) => {
  const path = armed?.call === 'close' ? pathOfFd(fd) : '';
  const hit = take('close', () => path);
  original(fd, (err: NodeJS.ErrnoException | null) => callback?.(hit ? errorOf(hit, 'close', path) : err));
});
wrap(fsp, 'rename', (original) => async (from: string, to: string) => {
  const hit = take('rename', () => String(from));
  if (hit) throw errorOf(hit, 'rename', String(from));
  return original(from, to);
});
wrap(fs, 'openSync', (original) => (path: fs.PathLike, ...rest: unknown[]) => {
  const hit = take('openSync', () => String(path));
  if (hit) throw errorOf(hit, 'open', String(path));
  return original(path, ...rest);
});
wrap(fs, 'readSync', (original) => (fd: number, ...rest: unknown[]) => {
  const hit = take('readSync', () => pathOfFd(fd));
  if (hit) throw errorOf(hit, 'read', pathOfFd(fd));
  return original(fd, ...rest);
});
// A FileHandle reads through its own binding, not fs.read: the handle itself gets a read that fails.
wrap(fsp, 'open', (original) => async (path: fs.PathLike, ...rest: unknown[]) => {
  const handle = await original(path, ...rest);
  const hit = take('handleRead', () => String(path));
  if (hit) handle.read = async () => Promise.reject(errorOf(hit, 'read', String(path)));
  // A folder's fsync in the thread pool (fsyncFolderInPool) syncs a handle: armed when it is called.
  const realSync = handle.sync.bind(handle);
  handle.sync = async () => {
    const failing = take('handleSync', () => String(path));
    if (failing) throw errorOf(failing, 'fsync', String(path));
    return realSync();
  };
  return handle;
});
wrap(fs, 'writeSync', (original) => (fd: number, buffer: Buffer, ...rest: unknown[]) => {
  const hit = take('writeSync', () => pathOfFd(fd));
  if (!hit) return original(fd, buffer, ...rest);
  if (hit.shortTo === undefined) throw errorOf(hit, 'write', pathOfFd(fd));
  // Short: the first `shortTo` bytes of what was asked (buffer, offset?, length?, position?).
  const [offset = 0, length = buffer.length - (offset as number), position = null] = rest as [number?, number?, (number | null)?];
  return original(fd, buffer, offset, Math.min(length, hit.shortTo), position);
});
wrap(fs, 'closeSync', (original) => (fd: number) => {
  const path = armed?.call === 'closeSync' ? pathOfFd(fd) : '';
  const hit = take('closeSync', () => path);
  original(fd);
  if (hit) throw errorOf(hit, 'close', path);
});
wrap(fs, 'renameSync', (original) => (from: fs.PathLike, to: fs.PathLike) => {
  const hit = take('renameSync', () => String(from));
  if (hit) throw errorOf(hit, 'rename', String(from));
  return original(from, to);
});
wrap(fs, 'fstatSync', (original) => (fd: number, ...rest: unknown[]) => {
  const hit = take('fstatSync', () => pathOfFd(fd));
  if (hit) throw errorOf(hit, 'fstat', pathOfFd(fd));
  return original(fd, ...rest);
});

// QuickFsync (src/io/quick-fsync.ts) fsyncs synchronously while fsyncs are fast.
wrap(fs, 'fsyncSync', (original) => (fd: number) => {
  const hit = take('fsyncSync', () => pathOfFd(fd));
  if (hit) throw errorOf(hit, 'fsync', pathOfFd(fd));
  return original(fd);
});

wrap(fs, 'lstatSync', (original) => (path: fs.PathLike, ...rest: unknown[]) => {
  const hit = take('lstatSync', () => String(path));
  if (hit) throw errorOf(hit, 'lstat', String(path));
  return original(path, ...rest);
});

/**
 * Sends the client's next fsync down the path a fault is armed on: 'fsyncSync' (fsyncs were quick, so
 * QuickFsync makes them synchronously) or 'fsync' (they were slow: the thread pool). Loaded late, so
 * that src/ is loaded after the wrappers above.
 */
export const nextFsyncBy = (call: FaultyCall): void => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { clientFsync } = require('../../../../src/io/quick-fsync') as typeof import('../../../../src/io/quick-fsync');
  // Pooled with no probe for a long while, or synchronous (FsyncPace, src/io/fsync-pace.js).
  Object.assign((clientFsync as unknown as { pace: object }).pace, { pooled: call === 'fsync', slowInARow: 0, sinceProbe: 0, probeEvery: 1024 });
};

/** Puts the real functions back (afterAll). */
export const restoreFs = (): void => {
  armed = undefined;
  for (const [name, fn] of Object.entries(real)) {
    const target = name === 'rename' || name === 'open' ? fsp : fs;
    (target as unknown as Record<string, AnyFn>)[name] = fn;
  }
};

/** The descriptors this process has open (Linux), to see a leak. */
export const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
