import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fuseScript, mounted } from './hung-mount';

/**
 * A FUSE file system that looks alive and never answers: its root is a folder (GETATTR answered) in
 * which every name is missing (LOOKUP answered ENOENT), so realpath, lstat and stat of it work; but
 * an open of it (OPENDIR), or any change in it (CREATE, MKDIR, RENAME, LINK, UNLINK…), is never
 * answered, as on an NFS mount whose server went away. Raw /dev/fuse protocol (7.12), as
 * hung-mount.ts (whose file system answers OPENDIR, and hangs only READ).
 */
const DEAD_FOLDER_FS = fuseScript(
  'rxfer-dead-folder',
  // OPENDIR, OPEN, CREATE, MKDIR, MKNOD, RENAME, RENAME2, LINK, UNLINK, RMDIR, SYMLINK, FSYNC,
  // FSYNCDIR, READ, WRITE, READDIR, READDIRPLUS, SETATTR never answered; FORGET, INTERRUPT and
  // BATCH_FORGET take no reply. STATX gets ENOSYS (the kernel then asks GETATTR).
  String.raw`    elif opcode == 1:
        reply(unique, error=-2)
    elif opcode == 3:
        reply(unique, struct.pack('<QII', 0, 0, 0) + attr(1, 0o40755, 0, 2))
    elif opcode in (27, 14, 35, 9, 8, 12, 45, 13, 10, 11, 6, 20, 30, 15, 16, 28, 44, 4, 2, 36, 42):
        pass`,
);

/** Why this machine cannot mount the dead folder, or undefined if it can (root, /dev/fuse, python3). */
export const cannotMountDeadFolder = (): string | undefined => {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('python3', ['-c', 'import ctypes, os; os.close(os.open("/dev/fuse", os.O_RDWR))'], { stdio: 'ignore' });
  } catch {
    return 'no python3 or no /dev/fuse';
  }
  return undefined;
};

/**
 * Mounts the dead folder on `folder` (an existing, empty folder); the script goes to `scriptDir`.
 * Resolves once the mount is there. `unmountHung` (hung-mount.ts) ends it: killing the daemon first
 * makes every call hung on it fail (ENOTCONN), so that a process stuck in one can go on or be killed.
 */
export const mountDeadFolder = async (folder: string, scriptDir: string): Promise<ChildProcess> => {
  const script = join(scriptDir, 'dead-folder-fs.py');
  await writeFile(script, DEAD_FOLDER_FS);
  const daemon = spawn('python3', [script, folder], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !mounted(folder); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (!mounted(folder)) {
    daemon.kill('SIGKILL');
    throw new Error(`the dead folder did not mount on ${folder}`);
  }
  return daemon;
};

/** A mounted tmpfs of a few MiB and few inodes, or why none could be mounted. */
export interface TinyTmpfs {
  readonly dir: string;
  readonly reason: string | undefined;
  cleanup(): void;
}

/**
 * A tmpfs of `sizeBytes` and `inodes` inodes on a fresh folder under `base`: a disk whose space, or
 * whose inodes, a test can use up (ENOSPC from the kernel). `reason` says why it could not be mounted
 * (not Linux, not root); the test then skips itself.
 */
export const mountTinyTmpfs = (base: string, sizeBytes: number, inodes: number): TinyTmpfs => {
  const dir = join(base, `tmpfs-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},nr_inodes=${inodes},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    return { dir, reason: `cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  return {
    dir,
    reason: undefined,
    cleanup: () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          execFileSync('umount', [dir], { stdio: 'pipe' });
          break;
        } catch {
          if (attempt === 19) execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
          else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/**
 * Takes every free inode of the file system holding `dir` with empty files in `dir` (which must be
 * on it); returns them, to be deleted (`giveBack`) when the space is to come back.
 */
export const useUpInodes = (dir: string): string[] => {
  const made: string[] = [];
  for (let i = 0; ; i++) {
    const path = join(dir, `inode-${i}`);
    try {
      closeSync(openSync(path, 'wx'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return made;
      throw err;
    }
    made.push(path);
  }
};

export const giveBack = (paths: string[]): void => {
  for (const path of paths.splice(0)) rmSync(path, { force: true });
};
