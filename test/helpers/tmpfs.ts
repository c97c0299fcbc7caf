import { execFile } from 'node:child_process';
import { closeSync, openSync, readlinkSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { mkdtemp, open, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A real, small tmpfs for tests that need a disk that fills up (ENOSPC from the kernel, not a mock).
 * Mounting needs root (or CAP_SYS_ADMIN) on Linux; elsewhere `canMount` is false and `reason` says
 * why, so that a test can skip itself with a printed reason instead of failing.
 */
export interface Tmpfs {
  /** The mount point, a fresh folder under the OS temp dir (already removed again unless `canMount`). */
  readonly dir: string;
  readonly canMount: boolean;
  /** Why the tmpfs could not be mounted ('' when it was). */
  readonly reason: string;
  /** Unmounts and removes the mount point; idempotent, never throws (call it in afterAll). */
  cleanup(): Promise<void>;
}

const run = promisify(execFile);

/** The name of the files `fillTo` writes, at the top of the tmpfs (outside any server root in it). */
/**
 * A jest test that needs the test file's tmpfs: where mounting is not allowed it says why and
 * passes, so the suite stays green on machines where the test cannot run.
 */
export const tmpfsTest =
  (disk: () => Tmpfs | undefined) =>
  (name: string, body: () => Promise<void>, timeoutMs = 30_000): void =>
    test(
      name,
      async () => {
        const mounted = disk();
        if (!mounted?.canMount) {
          console.warn(`skipped "${name}": ${mounted?.reason ?? 'no tmpfs'}`);
          return;
        }
        await body();
      },
      timeoutMs,
    );

export const FILLER_PREFIX = '.tmpfs-filler-';

/**
 * Mounts a tmpfs of `sizeBytes` (rounded up to whole pages by the kernel) on a fresh temp folder.
 * Never throws for a mount that is not allowed: see `canMount` and `reason`.
 */
export const withTmpfs = async (sizeBytes: number): Promise<Tmpfs> => {
  const dir = await mkdtemp(join(tmpdir(), 'rxfer-tmpfs-'));
  const removeDir = () => rmdir(dir).catch(() => undefined);
  const refused = async (reason: string): Promise<Tmpfs> => {
    await removeDir();
    return { dir, canMount: false, reason, cleanup: async () => undefined };
  };
  if (process.platform !== 'linux') return refused(`tmpfs needs Linux (this is ${process.platform})`);
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir]);
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    return refused(`cannot mount a tmpfs on ${dir}: ${(stderr || message).trim()}`);
  }
  // A mount that "succeeded" on something else (a fake mount, a container quirk) is no test at all.
  if (statfsSync(dir).blocks * statfsSync(dir).bsize > sizeBytes + 4096) {
    await unmount(dir);
    return refused(`${dir} is not the ${sizeBytes}-byte tmpfs that was asked for`);
  }
  let done: Promise<void> | undefined;
  const cleanup = () =>
    (done ??= (async () => {
      await unmount(dir);
      await removeDir();
    })());
  return { dir, canMount: true, reason: '', cleanup };
};

/** umount, retried while something still holds it (a server closing its files), lazily at last. */
const unmount = async (dir: string): Promise<void> => {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      await run('umount', [dir]);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await run('umount', ['-l', dir]).catch(() => undefined);
};

/** Bytes an unprivileged writer may still write in the file system holding `dir` (statfs bavail). */
export const freeBytes = (dir: string): number => {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
};

/** Bytes in use in the file system holding `dir`. */
export const usedBytes = (dir: string): number => {
  const fs = statfsSync(dir);
  return (fs.blocks - fs.bfree) * fs.bsize;
};

const fillerPath = (dir: string): string => join(dir, `${FILLER_PREFIX}${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);

/** The next write of the filler: as much as leaves `freeBytesLeft` free, in whole blocks, ≤ 1 MiB (0: done). */
const nextFillLength = (dir: string, freeBytesLeft: number): number => {
  const { bsize } = statfsSync(dir);
  const toFill = freeBytes(dir) - freeBytesLeft;
  return toFill < bsize ? 0 : Math.min(FILL_BLOCK.length, Math.floor(toFill / bsize) * bsize);
};

const FILL_BLOCK = Buffer.alloc(1024 * 1024, 0x5a);

const assertRoom = (dir: string, freeBytesLeft: number): void => {
  const free = freeBytes(dir);
  if (free < freeBytesLeft) throw new Error(`fillTo: only ${free} bytes free in ${dir}, cannot leave ${freeBytesLeft}`);
};

/**
 * Writes a filler file at the top of the tmpfs `dir` so that exactly `freeBytesLeft` bytes stay
 * free (rounded down to the block size; 0 fills it completely). Returns the filler's path: delete
 * it (or call `unfill`) to give the space back. Throws if less than `freeBytesLeft` is free now.
 * Written, not ftruncate'd (a sparse file takes no space), and checked as it goes: tmpfs may need a
 * page for the file itself, and others may be writing meanwhile.
 */
export const fillTo = async (dir: string, freeBytesLeft: number): Promise<string> => {
  assertRoom(dir, freeBytesLeft);
  const path = fillerPath(dir);
  const handle = await open(path, 'wx');
  try {
    for (let position = 0, length; (length = nextFillLength(dir, freeBytesLeft)) > 0; ) {
      const { bytesWritten } = await handle.write(FILL_BLOCK, 0, length, position);
      if (bytesWritten === 0) break;
      position += bytesWritten;
    }
  } catch (err) {
    await handle.close();
    await unlink(path).catch(() => undefined);
    throw err;
  }
  await handle.close();
  return path;
};

/**
 * `fillTo`, synchronously: for a hook that must fill the disk at one exact moment (inside an fs
 * call the code under test makes), where awaiting would let that call go on first.
 */
export const fillToSync = (dir: string, freeBytesLeft: number): string => {
  assertRoom(dir, freeBytesLeft);
  const path = fillerPath(dir);
  const fd = openSync(path, 'wx');
  try {
    for (let position = 0, length; (length = nextFillLength(dir, freeBytesLeft)) > 0; ) {
      const written = writeSync(fd, FILL_BLOCK, 0, length, position);
      if (written === 0) break;
      position += written;
    }
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
  closeSync(fd);
  return path;
};

/** Deletes every filler `fillTo` wrote in `dir`. */
export const unfill = async (dir: string): Promise<void> => {
  for (const entry of await readdir(dir)) {
    if (entry.startsWith(FILLER_PREFIX)) await unlink(join(dir, entry));
  }
};

/** Deletes everything in the tmpfs `dir` (not the mount point itself): the next round starts empty. */
export const emptyTmpfs = async (dir: string): Promise<void> => {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
};

/** What a write hook is told: the file (from /proc/self/fd), and for `short`, what was asked and done. */
export interface WriteHookContext {
  readonly path: string;
  readonly fd: number;
}

export interface WriteHooks {
  /** Only writes to files under this folder are watched. */
  readonly under: string;
  /** Called once, just before the first watched write is issued (to fill the disk at that moment, say). */
  readonly beforeFirst?: (write: WriteHookContext) => void;
  /**
   * Called once, when a watched write comes back having written fewer bytes than it was asked to
   * (a disk that filled up mid-write), before its caller sees the result: to free space at that
   * exact moment, as another transfer's staging file deleted then would.
   */
  readonly afterShort?: (write: WriteHookContext & { readonly call: 'write' | 'writev'; readonly asked: number; readonly written: number }) => void;
  /**
   * Each watched write reports back this much later (a slower disk): the writer's data then piles
   * up meanwhile, and the next write takes it all at once (a writev of many chunks).
   */
  readonly delayMs?: number;
}

type Callback = (err: NodeJS.ErrnoException | null, written: number, buffers: unknown) => void;

const pathOfFd = (fd: number): string => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
};

/**
 * Wraps `fs.write` and `fs.writev` of this process (which `fs.createWriteStream` calls, in the
 * server under test as in the client library) to run `hooks` at the moments they name; the writes
 * themselves are the real ones, on the real disk. Returns the function that puts the originals back
 * (call it in a `finally`). Linux only (/proc/self/fd).
 */
export const hookWrites = (hooks: WriteHooks): { restore: () => void; readonly shortWrite: string | undefined } => {
  const fs = require('node:fs') as typeof import('node:fs') & Record<string, unknown>;
  const original = { write: fs.write, writev: fs.writev };
  const under = hooks.under.endsWith('/') ? hooks.under : `${hooks.under}/`;
  let started = false;
  let shortWrite: string | undefined;
  const watch = (kind: 'write' | 'writev', fd: number, asked: number, args: unknown[], call: (args: unknown[]) => void): void => {
    const path = pathOfFd(fd);
    if (!path.startsWith(under)) return call(args);
    if (!started) {
      started = true;
      hooks.beforeFirst?.({ path, fd });
    }
    const callback = args.at(-1) as Callback;
    call([
      ...args.slice(0, -1),
      (err: NodeJS.ErrnoException | null, written: number, buffers: unknown) => {
        if (!err && written < asked && shortWrite === undefined) {
          shortWrite = `${kind} of ${asked} bytes wrote ${written}`;
          hooks.afterShort?.({ path, fd, call: kind, asked, written });
        }
        if (hooks.delayMs) setTimeout(() => callback(err, written, buffers), hooks.delayMs);
        else callback(err, written, buffers);
      },
    ]);
  };
  fs.write = ((fd: number, buffer: Buffer | string, ...rest: unknown[]) => {
    const asked = typeof rest[1] === 'number' ? rest[1] : typeof buffer === 'string' ? Buffer.byteLength(buffer) : buffer.length - (typeof rest[0] === 'number' ? rest[0] : 0);
    watch('write', fd, asked, [fd, buffer, ...rest], (args) => (original.write as (...a: unknown[]) => void)(...args));
  }) as typeof fs.write;
  fs.writev = ((fd: number, buffers: NodeJS.ArrayBufferView[], ...rest: unknown[]) => {
    const asked = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
    watch('writev', fd, asked, [fd, buffers, ...rest], (args) => (original.writev as (...a: unknown[]) => void)(...args));
  }) as typeof fs.writev;
  return {
    restore: () => {
      fs.write = original.write;
      fs.writev = original.writev;
    },
    /** The first short write seen ("writev of 2247680 bytes wrote 2048000"), if any. */
    get shortWrite() {
      return shortWrite;
    },
  };
};
