import { type Stats, closeSync, constants, open } from 'node:fs';
import { lstat, open as openHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { CAN_CHECK_OPENED, FD_PATHS, inServerFolderSync, notOpenedAt, nowALink, openServerFolder, openedWithin, pathTooLong } from './fd-paths';

/** fd-paths.js's, shared with the commit worker; here beside the rest of the checked-folder calls. */
export { inServerFolderSync };
import { fsyncFolderInPool } from '../io/folder-sync';
import { outsideTheRoot } from './storage-errors';

/**
 * The folder of a name is checked with realpath (and the check remembered for a second), the file
 * opened with O_NOFOLLOW on its last segment: a folder swapped for a link by someone with access to
 * the storage, in between, would lead the open, or a commit's rename, out of the root (hostile pass
 * i). These check the descriptor instead, or act through the folder's own (fd-paths.js).
 */

/**
 * Throws NAME_INVALID unless the file open on `fd` lies below `within` (a folder, with its trailing
 * separator). A readlink of /proc, which never waits for the file's own mount.
 */
export const assertOpenedWithin = (fd: number, within: string, name: RemoteName): void => {
  if (!openedWithin(fd, within)) throw outsideTheRoot(name);
};

/**
 * Throws (ELOOP, or ENOENT if it was removed; the caller owns `fd`) unless the file open on `fd` is
 * `path` itself: a folder of the server's own (the kept uploads) swapped for a link since the start
 * would have led the open elsewhere.
 */
export const assertOpenedAt = (fd: number, path: string): void => {
  const wrong = notOpenedAt(fd, path);
  if (wrong) throw wrong;
};

/** Throws ENAMETOOLONG for a path the system could not take whole (fd-paths.js). */
export const assertPathFits = (path: string): void => {
  const tooLong = pathTooLong(path);
  if (tooLong) throw tooLong;
};

/**
 * Whether a segment of `realPath` (a path realpath gave, so one with no link in it) is a link now:
 * an lstat of each from the top, which never follows one. Asked when an open of that path failed: by
 * then the open followed the link, and how it failed (ENOENT, ENOTDIR) told what lies at its end,
 * outside the root. The answer is then ELOOP whatever that is (hostile pass l). The synchronous one
 * (linkOnTheWaySync, with openCheckedFolderSync), which the commit worker and inServerFolderSync use,
 * is in fd-paths.js; this one keeps the main thread's failing opens and reads off synchronous lstats.
 */
const linkOnTheWay = async (realPath: string): Promise<boolean> => {
  let path = '';
  for (const segment of realPath.split('/').slice(1)) {
    path += `/${segment}`;
    const stats = await lstat(path).catch(() => undefined);
    if (stats === undefined) return false;
    if (stats.isSymbolicLink()) return true;
  }
  return false;
};

const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY;

/**
 * `folder` (a checked real path) opened and shown to be that folder: ELOOP if it, or a folder above
 * it, is a link now (whether the open reached something at the link's end or not), ENOENT if it was
 * removed.
 */
const openCheckedFolder = async (folder: string) => {
  const handle = await openHandle(folder, FOLDER_FLAGS).catch(async (err: unknown) => Promise.reject((await linkOnTheWay(folder)) ? nowALink(folder) : err));
  try {
    assertOpenedAt(handle.fd, folder);
    return handle;
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
};

/**
 * Runs `work` with a path that stays inside `folder` (its real path, as realpath gave it), whatever
 * is swapped in on the way: the folder is opened, shown to be that folder, and `work` gets
 * /proc/self/fd/<n> for it, and a fsync of that very folder. A folder that is a link now fails with
 * ELOOP (NAME_INVALID), one that was removed with ENOENT, as if it had not been there. `target`: the
 * path `work` makes below it, which must fit (assertPathFits).
 *
 * The fsync goes through the descriptor the change was made through: by path, a folder swapped for a
 * link, or renamed away and another made in its place, had another folder synced and the change
 * answered as durable with nothing making it so (hostile pass l).
 *
 * For the users' folders: every call that reaches the folder's file system goes through the thread
 * pool, so that a mount under the root that stops answering (a dead NFS server, a stuck FUSE daemon)
 * holds that one request, which its deadline then answers, never the main thread and every other
 * client (hostile pass p: a synchronous open froze the server). The check is a readlink of /proc,
 * which never reaches the mount.
 */
export const inOpenedFolder = async <T>(folder: string, target: string, work: (inside: string, syncFolder: () => Promise<void>) => Promise<T>): Promise<T> => {
  assertPathFits(target);
  if (!CAN_CHECK_OPENED) return work(folder, () => fsyncFolderInPool(folder));
  const handle = await openCheckedFolder(folder);
  try {
    return await work(FD_PATHS + handle.fd, () => handle.sync());
  } finally {
    // A read-only folder descriptor: nothing was written through it (an fsync that failed has said
    // so already), so its close can lose nothing, and must not turn a rename that took place into a
    // reported failure.
    await handle.close().catch(() => undefined);
  }
};

/**
 * inServerFolderSync for work that awaits (a rename from the staging folder into a user's folder,
 * which goes through the thread pool): the folder's descriptor is held until the work settles, so
 * that the staging file is taken from the folder checked, never from one swapped for a link since
 * (hostile pass q: the commit renamed a file from outside the root into place, and answered OK).
 */
export const inServerFolder = async <T>(folder: string, work: (inside: string) => Promise<T>): Promise<T> => {
  const opened = openServerFolder(folder);
  try {
    return await work(opened.inside);
  } finally {
    opened.close();
  }
};

/**
 * A read's failure to find `name` in its checked real `folder` (NOT_FOUND, NAME_CONFLICT, a link
 * refused), as the client is to be told it: if a segment of the folder is a link now, NAME_INVALID in
 * the words of every other refusal of a name outside the root. By path, the read followed the link:
 * NOT FOUND said a name does not exist out there, the other refusals that it does and what it is
 * (hostile pass l: DOWNLOAD of a name below a swapped folder).
 */
export const asSeenFromTheCheck = async (err: unknown, folder: string, name: RemoteName): Promise<unknown> => {
  const code = err instanceof RxferError ? err.code : undefined;
  if ((code === 'NOT_FOUND' || code === 'NAME_CONFLICT' || code === 'NAME_INVALID') && (await linkOnTheWay(folder))) return outsideTheRoot(name);
  return err;
};

/** lstat's "nothing there" (a missing name, or a file where a folder was expected): undefined. */
const absentAsUndefined = (err: unknown): undefined => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  throw err;
};

/**
 * What is at `target` now (not followed), looked at inside its folder `folder` (the real path that was
 * checked) opened and shown to be that folder; undefined if nothing is there. Under a swap of the
 * folder for a link: ELOOP, never what lies outside (an ADDFILE's EXISTS, a quota's size of the file
 * replaced, would otherwise tell whether a name exists outside the root, and how large it is).
 */
export const lookInOpenedFolder = (folder: string, target: string): Promise<Stats | undefined> =>
  // A folder removed since its check holds nothing (a commit makes it again: RootPaths.inFolderFor).
  inOpenedFolder(folder, target, (inside) => lstat(`${inside}/${basename(target)}`)).catch(absentAsUndefined);

/**
 * The bytes a commit to `target` would replace (0: no file there; a link or a folder holds no
 * user's bytes), looked at in its checked folder (lookInOpenedFolder): for quotas, under the name's lock.
 */
export const sizeReplaced = async (folder: string, target: string): Promise<number> => {
  const stats = await lookInOpenedFolder(folder, target);
  return stats?.isFile() ? stats.size : 0;
};

/** Runs a clean-up whose failure changes nothing (a file already gone, a read-only descriptor). */
export const quietly = (cleanUp: () => void): void => {
  try {
    cleanUp();
  } catch {
    // See above.
  }
};

/** Closes a read-only descriptor: nothing was written through it, so a failing close loses nothing. */
const closeQuietly = (fd: number): void => quietly(() => closeSync(fd));

/**
 * Opens a file for reading, refusing a link in its last segment (O_NOFOLLOW: the folder was checked
 * by realpath, or is opened and checked) and never waiting for a writer: O_NONBLOCK makes a FIFO
 * planted under the name open at once (it then reads as nothing, or its fstat refuses it as not a file).
 */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

const WALK_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** A folder held open for a walk: `through` reaches what is inside it, `close` lets it go. */
export interface OpenedFolder {
  readonly through: string;
  close(): void;
}

/**
 * `folder` (a real path) opened and shown to be that folder, for a walk that reads it
 * and looks at its entries through `through` (LIST: a subfolder swapped for a link mid-walk would
 * otherwise have names from outside the root listed). Undefined if it is gone, is no folder, or now
 * leads elsewhere: the walk leaves it out.
 */
export const openFolderForWalk = async (folder: string): Promise<OpenedFolder | undefined> => {
  if (!CAN_CHECK_OPENED) return { through: folder, close: () => undefined };
  // Through the thread pool: a folder on a mount that stops answering holds this LIST (its deadline
  // answers it), never the main thread (hostile pass q: a synchronous open froze the server).
  const fd = await new Promise<number | undefined>((resolve) => open(folder, WALK_FLAGS, (err, opened) => resolve(err ? undefined : opened)));
  if (fd === undefined) return undefined;
  let wrong: unknown;
  try {
    wrong = notOpenedAt(fd, folder);
  } catch (err) {
    wrong = err;
  }
  if (wrong) {
    closeSync(fd);
    return undefined;
  }
  return {
    through: FD_PATHS + fd,
    close: () => closeQuietly(fd),
  };
};
