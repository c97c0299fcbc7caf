import { closeSync, constants, existsSync, openSync, readlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';

/**
 * Where a name really leads, seen from the descriptor opened for it. The folder of a name is checked
 * with realpath (and the check remembered for a second), the file opened with O_NOFOLLOW on its last
 * segment: a folder swapped for a link by someone with access to the storage, in between, would lead
 * the open, or a commit's rename, out of the root (hostile pass i). Linux shows the path of every open
 * descriptor in /proc/self/fd, and a path through /proc/self/fd/<n>/ stays in the folder opened as
 * <n>, as openat(2) would. Without /proc (not Linux) nothing more is checked.
 */
const FD_PATHS = '/proc/self/fd/';
const CAN_CHECK_OPENED = existsSync(FD_PATHS);

/**
 * Throws NAME_INVALID unless the file open on `fd` lies below `within` (a folder, with its trailing
 * separator). A readlink of /proc, which never waits for the file's own mount.
 */
export const assertOpenedWithin = (fd: number, within: string, name: RemoteName): void => {
  if (!CAN_CHECK_OPENED) return;
  if (!readlinkSync(FD_PATHS + fd).startsWith(within)) throw new RxferError('NAME_INVALID', `${name} resolves outside the storage root`);
};

/**
 * Throws ELOOP (after closing nothing: the caller owns `fd`) unless the file open on `fd` is `path`
 * itself: a folder of the server's own (the staging area, the kept uploads) swapped for a link since
 * the start would have led the open elsewhere.
 */
export const assertOpenedAt = (fd: number, path: string): void => {
  if (!CAN_CHECK_OPENED) return;
  const real = readlinkSync(FD_PATHS + fd);
  if (real !== path) throw Object.assign(new Error(`${path} leads to ${real}`), { code: 'ELOOP' });
};

/** Longest path Linux takes (PATH_MAX, its terminating NUL included). */
const PATH_MAX = 4096;

/**
 * Throws ENAMETOOLONG for a path the system could not take whole. Through /proc/self/fd/<n>/ a name
 * can be created below a folder whose own path is near the limit; nothing could reach it by its path
 * afterwards (a download, a LIST, a DELETE: hostile-names' name at the wire limit).
 */
export const assertPathFits = (path: string): void => {
  if (Buffer.byteLength(path) >= PATH_MAX) throw Object.assign(new Error(`a path of ${Buffer.byteLength(path)} bytes`), { code: 'ENAMETOOLONG' });
};

/**
 * Runs `work` with a path that stays inside `folder` (its real path, as realpath gave it), whatever
 * is swapped in on the way: the folder is opened, shown to be that folder, and `work` gets
 * /proc/self/fd/<n> for it. A folder that is a link now fails with ELOOP (NAME_INVALID), one that was
 * removed with ENOENT, as if it had not been there. `target`: the path `work` makes below it, which
 * must fit (assertPathFits).
 */
export const inOpenedFolder = async <T>(folder: string, target: string, work: (inside: string) => Promise<T>): Promise<T> => {
  assertPathFits(target);
  if (!CAN_CHECK_OPENED) return work(folder);
  const handle = await open(folder, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const real = readlinkSync(FD_PATHS + handle.fd);
    if (real !== folder) {
      const gone = real.endsWith(' (deleted)');
      throw Object.assign(new Error(gone ? `${folder} was removed` : `${folder} now leads to ${real}`), { code: gone ? 'ENOENT' : 'ELOOP' });
    }
    return await work(FD_PATHS + handle.fd);
  } finally {
    await handle.close();
  }
};

/** A folder held open for a walk: `through` reaches what is inside it, `close` lets it go. */
export interface OpenedFolder {
  readonly through: string;
  close(): void;
}

/**
 * `folder` (a real path) opened synchronously and shown to be that folder, for a walk that reads it
 * and looks at its entries through `through` (LIST: a subfolder swapped for a link mid-walk would
 * otherwise have names from outside the root listed). Undefined if it is gone, is no folder, or now
 * leads elsewhere: the walk leaves it out.
 */
export const openFolderForWalk = (folder: string): OpenedFolder | undefined => {
  if (!CAN_CHECK_OPENED) return { through: folder, close: () => undefined };
  let fd: number;
  try {
    fd = openSync(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  let real: string | undefined;
  try {
    real = readlinkSync(FD_PATHS + fd);
  } catch {
    real = undefined;
  }
  if (real !== folder) {
    closeSync(fd);
    return undefined;
  }
  return { through: FD_PATHS + fd, close: () => closeSync(fd) };
};
