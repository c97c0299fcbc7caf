import { closeSync, constants, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { CAN_CHECK_OPENED, FD_PATHS, notOpenedAt, openedWithin, pathTooLong } from './fd-paths';

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
  if (!openedWithin(fd, within)) throw new RxferError('NAME_INVALID', `${name} resolves outside the storage root`);
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
    assertOpenedAt(handle.fd, folder);
    return await work(FD_PATHS + handle.fd);
  } finally {
    // A read-only folder descriptor: nothing was written through it, so its close can lose nothing,
    // and must not turn a rename that took place into a reported failure.
    await handle.close().catch(() => undefined);
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
    close: () => {
      try {
        closeSync(fd);
      } catch {
        // Read-only: nothing to lose.
      }
    },
  };
};
