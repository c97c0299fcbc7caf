// @ts-check
/**
 * Where a name really leads, seen from the descriptor opened for it: the checks shared by the main
 * thread (opened-paths.ts) and the storage workers (small-commit.worker.js, small-read.worker.js).
 * Plain JavaScript for the same reason as small-commit-log.js: the workers load it from src/ and
 * from dist/ alike.
 *
 * Linux shows the path of every open descriptor in /proc/self/fd, and a path through
 * /proc/self/fd/<n>/ stays in the folder opened as <n>, as openat(2) would. Without /proc (not
 * Linux) nothing is checked.
 */
'use strict';
const fs = require('node:fs');
const { basename } = require('node:path');

const FD_PATHS = '/proc/self/fd/';
const CAN_CHECK_OPENED = fs.existsSync(FD_PATHS);
/** Longest path Linux takes (PATH_MAX, its terminating NUL included). */
const PATH_MAX = 4096;

/**
 * ENAMETOOLONG for a path the system could not take whole, else undefined. Through /proc/self/fd/<n>/
 * a name can be made below a folder whose own path is near the limit, and nothing could reach it by
 * its path afterwards (a download, a LIST, a DELETE: hostile-names' name at the wire limit).
 * @param {string} path
 * @returns {Error | undefined}
 */
const pathTooLong = (path) => {
  const bytes = Buffer.byteLength(path);
  return bytes >= PATH_MAX ? Object.assign(new Error(`a path of ${bytes} bytes`), { code: 'ENAMETOOLONG' }) : undefined;
};

/**
 * Why what is open on `fd` is not `path` itself, or undefined if it is: ENOENT if it was removed
 * since (the caller may make it again), ELOOP if it leads elsewhere (a folder swapped for a link).
 * @param {number} fd
 * @param {string} path
 * @returns {Error | undefined}
 */
const notOpenedAt = (fd, path) => {
  if (!CAN_CHECK_OPENED) return undefined;
  const real = fs.readlinkSync(FD_PATHS + fd);
  if (real === path) return undefined;
  if (real.endsWith(' (deleted)')) return Object.assign(new Error(`${path} was removed`), { code: 'ENOENT' });
  return linkOnTheWayError(`${path} now leads to ${real}`);
};

/**
 * ELOOP for a folder on a name's way that is a link now (not the name itself, which an O_NOFOLLOW open
 * refuses with a plain ELOOP): marked, so that the client is told it in the words of the folder check
 * that meets the same link first ("resolves outside the storage root", storage-errors.ts), whichever
 * check met it; which one does depends on timing alone.
 * @param {string} message
 * @returns {Error}
 */
const linkOnTheWayError = (message) => Object.assign(new Error(message), { code: 'ELOOP', linkOnTheWay: true });

/**
 * Whether what is open on `fd` lies below `within` (a folder, with its trailing separator).
 * @param {number} fd
 * @param {string} within
 * @returns {boolean}
 */
const openedWithin = (fd, within) => !CAN_CHECK_OPENED || fs.readlinkSync(FD_PATHS + fd).startsWith(within);

/**
 * Whether a segment of `realPath` (a path realpath gave, so one with no link in it) is a link now: an
 * lstat of each from the top, which never follows one. Asked when an open of that path failed: the
 * open followed the link, and how it failed (ENOENT, ENOTDIR) told what lies at its end, outside the
 * root; the answer is then the same whatever that is (nowALink).
 * @param {string} realPath
 * @returns {boolean}
 */
const linkOnTheWaySync = (realPath) => {
  let path = '';
  for (const segment of realPath.split('/').slice(1)) {
    path += `/${segment}`;
    let stats;
    try {
      stats = fs.lstatSync(path, { throwIfNoEntry: false });
    } catch {
      // Nothing to look at there (a file above it: ENOTDIR; no permission): no link found, and the
      // open's own error stands, as in opened-paths.ts' asynchronous twin.
      return false;
    }
    if (stats === undefined) return false;
    if (stats.isSymbolicLink()) return true;
  }
  return false;
};

/**
 * The error of a checked real folder that is now a link (or has one above it), whatever it leads to.
 * @param {string} folder
 * @returns {Error}
 */
const nowALink = (folder) => linkOnTheWayError(`${folder} is now a link`);

/**
 * `folder` (a checked real path) opened read-only and shown to be that folder; the descriptor. Throws
 * ELOOP if it, or a folder above it, is a link now (whether the open reached something at the link's
 * end or not), ENOENT if it was removed, and the open's own error otherwise. Shared by the main thread
 * (opened-paths.ts) and the commit worker (its users' folders and its staging folder).
 * @param {string} folder
 * @returns {number}
 */
const openCheckedFolderSync = (folder) => {
  let fd;
  try {
    fd = fs.openSync(folder, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (err) {
    throw linkOnTheWaySync(folder) ? nowALink(folder) : err;
  }
  const wrong = notOpenedAt(fd, folder);
  if (wrong) {
    try {
      fs.closeSync(fd);
    } catch {
      // Read-only: nothing to lose.
    }
    throw wrong;
  }
  return fd;
};

/**
 * openCheckedFolderSync for one of the server's own folders under <root>/.rxfer (the staging area,
 * kept uploads, digest records). Its failure is the server's, not a name's: marked `serverFolder`
 * (the folder's name under .rxfer, for the message) and never taken for a link on a name's way, which
 * the client would be told as its name resolving outside the root, and which the folder check of the
 * name would retry (storage-errors.ts).
 * @param {string} folder
 * @returns {number}
 */
const openServerFolderSync = (folder) => {
  try {
    return openCheckedFolderSync(folder);
  } catch (err) {
    // An object, not `instanceof Error`: under Jest, fs throws errors of another realm.
    // Named from `.rxfer` down (`.rxfer/sums/folders`): the root's path is none of a client's business.
    const at = folder.lastIndexOf('/.rxfer/');
    const serverFolder = at >= 0 ? folder.slice(at + 1) : `.rxfer/${basename(folder)}`;
    throw Object.assign(typeof err === 'object' && err !== null ? err : new Error(String(err)), { linkOnTheWay: false, serverFolder });
  }
};

/**
 * One of the server's own folders opened and checked (openServerFolderSync): the path inside it, and
 * its close (quiet: a read-only descriptor, nothing written through it to lose). Without /proc (not
 * Linux) the folder's own path, nothing to close.
 * @param {string} folder
 * @returns {{ readonly inside: string, close(): void }}
 */
const openServerFolder = (folder) => {
  if (!CAN_CHECK_OPENED) return { inside: folder, close: () => undefined };
  const fd = openServerFolderSync(folder);
  return {
    inside: FD_PATHS + fd,
    close: () => {
      try {
        fs.closeSync(fd);
      } catch {
        // Read-only: nothing to lose.
      }
    },
  };
};

/**
 * Runs `work` synchronously with a path that stays inside `folder`, one of the server's own folders
 * under `<root>/.rxfer` (kept uploads, digest records, staging): opened and shown to be that folder
 * (ELOOP if it, or a folder above it, is a link now), so that one swapped for a link by someone with
 * access to the storage never has a file made, written or removed outside the root (hostile pass p).
 * Synchronous on purpose: these folders are on the root's own file system, every call a few µs, where
 * a thread-pool round trip each cost the main thread more than the calls (issue 20; a streamed upload
 * made ≈ 20 of them). Shared by the main thread (opened-paths.ts) and the commit worker.
 * @template T
 * @param {string} folder
 * @param {(inside: string) => T} work
 * @returns {T}
 */
const inServerFolderSync = (folder, work) => {
  const opened = openServerFolder(folder);
  try {
    return work(opened.inside);
  } finally {
    opened.close();
  }
};

module.exports = { FD_PATHS, CAN_CHECK_OPENED, pathTooLong, notOpenedAt, openedWithin, linkOnTheWaySync, nowALink, openCheckedFolderSync, openServerFolderSync, openServerFolder, inServerFolderSync };
