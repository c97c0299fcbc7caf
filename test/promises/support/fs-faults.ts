/**
 * One failing durability call, on demand: the next fsync or close of a descriptor, rename, link,
 * unlink or folder fsync whose path matches fails with EIO instead of running (as a disk that fails under the
 * commit gives). The
 * real `node:fs` functions are wrapped, so the server's own commit code meets the failure and
 * must clean up by itself (unlike a storage wrapper, which can clean up for it).
 *
 * Import this module BEFORE anything from src/: local-staged-write.ts takes `promisify(fsync)` when
 * it loads (see fs-journal.ts). Small files (≤ 64 KiB) are committed by a worker thread with its
 * own `fs`, which this cannot reach.
 */
import fs = require('node:fs');
import fsp = require('node:fs/promises');
import { pathOfFd } from './fd-path';

/** `folder-sync`: the fsync of a folder (FolderSync opens it with fs/promises and syncs the handle). */
export type FaultyCall = 'fsync' | 'rename' | 'link' | 'unlink' | 'close' | 'folder-sync';

interface Armed {
  readonly call: FaultyCall;
  /** Which path the failing call is on (the staging file, not a folder or a manifest). */
  readonly matches: (path: string) => boolean;
}

let armed: Armed | undefined;
/** Calls that failed because of `failNext`, with their path (to check the fault was met). */
export const failed: { call: FaultyCall; path: string }[] = [];

/** The next `call` on a path `matches` accepts fails with EIO; then fs is healthy again. */
export const failNext = (call: FaultyCall, matches: (path: string) => boolean): void => {
  armed = { call, matches };
};

const take = (call: FaultyCall, path: string): NodeJS.ErrnoException | undefined => {
  if (armed?.call !== call || !armed.matches(path)) return undefined;
  armed = undefined;
  failed.push({ call, path });
  return Object.assign(new Error(`EIO: i/o error, ${call} '${path}'`), { code: 'EIO', errno: -5, syscall: call });
};

type Callback = (err: NodeJS.ErrnoException | null) => void;
const realFsync = fs.fsync;
const realRename = fsp.rename;
const realLink = fsp.link;
const realUnlink = fsp.unlink;
const realClose = fs.close;
const realOpen = fsp.open;

(fs as { fsync: unknown }).fsync = (fd: number, callback: Callback): void => {
  const fault = take('fsync', pathOfFd(fd));
  if (fault) return void setImmediate(() => callback(fault));
  realFsync(fd, callback);
};
// A close that reports an error the file system deferred (NFS): the descriptor is closed all the same.
(fs as { close: unknown }).close = (fd: number, callback?: Callback): void => {
  const fault = take('close', pathOfFd(fd));
  realClose(fd, (err) => callback?.(fault ?? err));
};
(fsp as { rename: typeof fsp.rename }).rename = async (from, to) => {
  const fault = take('rename', String(from));
  if (fault) throw fault;
  return realRename(from, to);
};
(fsp as { link: typeof fsp.link }).link = async (from, to) => {
  const fault = take('link', String(from));
  if (fault) throw fault;
  return realLink(from, to);
};

(fsp as { unlink: typeof fsp.unlink }).unlink = async (path) => {
  const fault = take('unlink', String(path));
  if (fault) throw fault;
  return realUnlink(path);
};
// A handle opened through fs/promises syncs through the armed fault, for the path it was opened on.
(fsp as { open: typeof fsp.open }).open = async (path, flags, mode) => {
  const handle = await realOpen(path, flags, mode);
  const realSync = handle.sync.bind(handle);
  handle.sync = async () => {
    const fault = take('folder-sync', String(path));
    if (fault) throw fault;
    return realSync();
  };
  return handle;
};

/** Puts the real functions back (afterAll). */
export const restoreFs = (): void => {
  armed = undefined;
  (fs as { fsync: unknown }).fsync = realFsync;
  (fs as { close: unknown }).close = realClose;
  (fsp as { rename: typeof fsp.rename }).rename = realRename;
  (fsp as { link: typeof fsp.link }).link = realLink;
  (fsp as { open: typeof fsp.open }).open = realOpen;
  (fsp as { unlink: typeof fsp.unlink }).unlink = realUnlink;
};
