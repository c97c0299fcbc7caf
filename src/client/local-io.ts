import { promises as fsp, type BigIntStats } from 'node:fs';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { clientFolders } from '../io/quick-fsync';

/**
 * libuv has no name for EDQUOT (Node reports it as UNKNOWN with errno -122 on Linux), and "no space
 * left on device" is not how a user thinks of it either: both say the disk is full, in words.
 */
const errnoOf = (err: NodeJS.ErrnoException | undefined): string | undefined => {
  if (err?.errno !== undefined && constants.errno.EDQUOT !== undefined && err.errno === -constants.errno.EDQUOT) return 'EDQUOT';
  return err?.code;
};

const IN_WORDS: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full (ENOSPC, no space left on device)',
  EDQUOT: 'the disk quota is used up (EDQUOT, disk quota exceeded)',
  ENOENT: 'no such file or folder (ENOENT)',
  ENOTDIR: 'a part of that path is a file, not a folder (ENOTDIR)',
  EISDIR: 'it is a folder (EISDIR)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  EROFS: 'the file system is read-only (EROFS)',
  ELOOP: 'too many levels of symbolic links (ELOOP)',
  EEXIST: 'it already exists (EEXIST)',
  EMFILE: 'too many open files (EMFILE); raise `ulimit -n`',
};

/**
 * Staging files are how a download stays atomic, not something a user asked for: a failure to make
 * one is told as what the user sees fail, writing into the target's folder.
 */
const PLAIN_ACTIONS: Readonly<Record<string, string>> = {
  'create a staging file in': 'write into the folder',
  'open a staging file in': 'write into the folder',
  'lock a staging file in': 'write into the folder',
};

/**
 * A local file-system failure as LOCAL_IO, naming the path and the errno code so that a user can act
 * on it ("cannot open /data/x for reading: EACCES permission denied"). `outcome` says what the
 * failure left as it was ("/dl/x was not changed"), so nobody has to wonder.
 */
export const localIoError = (err: unknown, action: string, path: string, outcome?: string): RxferError => {
  if (err instanceof RxferError) return err;
  const errno = errnoOf(err as NodeJS.ErrnoException | undefined);
  const message = `cannot ${PLAIN_ACTIONS[action] ?? action} ${path}: ${reasonOf(err, errno)}${outcome ? `; ${outcome}` : ''}`;
  return new RxferError('LOCAL_IO', message, errno ? { path, errno } : { path }, { cause: err });
};

/**
 * A failure in words: IN_WORDS, or Node's message without the code, the system call and the path it
 * repeats ("ENOENT: no such file or directory, open 'x'"; "EIO: i/o error, fsync" of a descriptor).
 */
const reasonOf = (err: unknown, errno: string | undefined): string => {
  const raw = err instanceof Error ? err.message : String(err);
  const syscall = (err as NodeJS.ErrnoException | undefined)?.syscall;
  const words = raw.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
  const bare = syscall !== undefined && words.endsWith(`, ${syscall}`) ? words.slice(0, -syscall.length - 2) : words;
  return (errno && IN_WORDS[errno]) ?? `${errno ? `${errno} ` : ''}${bare}`;
};

/**
 * What some file systems answer for a folder they cannot fsync at all (EINVAL; ENOTSUP, EOPNOTSUPP
 * from some FUSE and network ones), Windows for a folder opened as a file (EISDIR), and the system
 * for a folder this user may write into but not open (EACCES, EPERM: a drop box, mode 0733): no fsync
 * was made that could have failed, nothing another try could mend, and the rename is as durable as
 * the file system makes one without it (as cp and rsync leave every file). A drop box copied into
 * without an error before (hostile pass t) must not fail every download now.
 */
const CANNOT_SYNC_A_FOLDER = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EACCES', 'EPERM']);

/** A folder fsync's failure that says the file system cannot fsync folders (CANNOT_SYNC_A_FOLDER), not that one failed. */
export const cannotSyncAFolder = (err: unknown): boolean => {
  const errno = errnoOf(err as NodeJS.ErrnoException | undefined);
  return errno !== undefined && CANNOT_SYNC_A_FOLDER.has(errno);
};

/**
 * A download renamed into place whose folder's fsync then failed (EIO, ENOSPC, EROFS): the file is
 * there, whole and verified, but a crash of this machine could still undo the rename. Told as
 * NOT_DURABLE, the server's code for the same case, never as "not changed" (the target was changed)
 * and never not at all (the README promises a failed fsync is reported). Undefined for a folder that
 * cannot be fsynced (CANNOT_SYNC_A_FOLDER).
 */
export const downloadNotDurable = (err: unknown, target: string): RxferError | undefined => {
  if (cannotSyncAFolder(err)) return undefined;
  const errno = errnoOf(err as NodeJS.ErrnoException | undefined);
  const message = `${target} is saved, whole and verified, but its folder could not be synced (${reasonOf(err, errno)}): a crash of this machine could still undo that`;
  return new RxferError('NOT_DURABLE', message, errno ? { path: target, errno } : { path: target }, { cause: err });
};

/** The folder fsync that makes a download's rename durable; its failure is NOT_DURABLE (downloadNotDurable). */
export const syncAfterDownload = (sync: Promise<void>, target: string): Promise<void> =>
  sync.catch((err: unknown) => {
    const failure = downloadNotDurable(err, target);
    if (failure) throw failure;
  });

/**
 * A `get` that finds its target already there, identical, fsyncs the target's folder before it says
 * so: the file may be an earlier run's whose folder fsync failed (NOT_DURABLE), and a run again must
 * not turn that into a success with nothing made durable (hostile pass t). Fails as that run did.
 */
export const syncFolderOf = (target: string): Promise<void> => syncAfterDownload(clientFolders.sync(dirname(resolve(target))), resolve(target));

export const localIo = <T>(action: string, path: string, work: () => Promise<T>, outcome?: string): Promise<T> =>
  work().catch((err: unknown) => {
    throw localIoError(err, action, path, outcome);
  });

/** Cleanup on a failure path: the original failure matters more than one about a file already gone. */
export const removeQuietly = async (path: string): Promise<void> => {
  await fsp.rm(path, { force: true }).catch(() => undefined);
};

/**
 * One state of a local file, as rsync tells them apart: any write moves mtime and ctime (a rename
 * over the path gives another inode). Nanoseconds, because consecutive writes can fall within the
 * same millisecond, and a float of milliseconds since 1970 keeps only about 0.2 µs.
 */
export interface FileVersion {
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
}

export const versionOf = ({ size, mtimeNs, ctimeNs, ino }: BigIntStats): FileVersion => ({ size, mtimeNs, ctimeNs, ino });

export const sameVersion = (a: FileVersion, b: FileVersion): boolean =>
  a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/**
 * The file was written to while we read it: what was read may be a mix of before and after that
 * never existed on disk, so it is not stored (the upload is refused or its trailer spoiled).
 */
export const changedWhileSent = (path: string, now: FileVersion): RxferError => {
  const modified = new Date(Number(now.mtimeNs / 1_000_000n)).toISOString();
  return new RxferError('LOCAL_IO', `${path} changed while it was being sent (modified at ${modified}); nothing was stored; run the command again`, {
    path,
    modified,
  });
};
