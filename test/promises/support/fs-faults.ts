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
import { pathOfFd, realPathOf } from './fd-path';

/** `folder-sync`: the fsync of a folder (opened-paths.ts and FolderSync open it with fs/promises and sync the handle). */
export type FaultyCall = 'fsync' | 'rename' | 'link' | 'unlink' | 'close' | 'folder-sync';

interface Armed {
  readonly call: FaultyCall;
  /** Which path the failing call is on (the staging file, not a folder or a manifest). */
  readonly matches: (path: string) => boolean;
  readonly code: FaultCode;
}

/** The errors a fault can give, with the system's words for them. */
const WORDS = { EIO: 'i/o error', ENOENT: 'no such file or directory' } as const;
export type FaultCode = keyof typeof WORDS;

let armed: Armed[] = [];
/** Calls that failed because of `failNext`, with their path (to check the fault was met). */
export const failed: { call: FaultyCall; path: string }[] = [];

/** The next `call` on a path `matches` accepts fails with `code` (EIO); then fs is healthy again. Disarms any other fault. */
export const failNext = (call: FaultyCall, matches: (path: string) => boolean, code: FaultCode = 'EIO'): void => {
  armed = [{ call, matches, code }];
};

/** One more fault armed beside those already armed: two calls of one request that both fail. */
export const failAlso = (call: FaultyCall, matches: (path: string) => boolean, code: FaultCode = 'EIO'): void => {
  armed.push({ call, matches, code });
};

const take = (call: FaultyCall, path: string): NodeJS.ErrnoException | undefined => {
  const at = armed.findIndex((fault) => fault.call === call && fault.matches(path));
  if (at < 0) return undefined;
  const [{ code }] = armed.splice(at, 1) as [Armed];
  failed.push({ call, path });
  return Object.assign(new Error(`${code}: ${WORDS[code]}, ${call} '${path}'`), { code, errno: code === 'EIO' ? -5 : -2, syscall: call });
};

type Callback = (err: NodeJS.ErrnoException | null) => void;
const realFsync = fs.fsync;
const realRenameSync = fs.renameSync;
const realLinkSync = fs.linkSync;
const realUnlinkSync = fs.unlinkSync;
const realCloseSync = fs.closeSync;
const realRename = fsp.rename;
const realLink = fsp.link;
const realUnlink = fsp.unlink;
const realClose = fs.close;
const realOpen = fsp.open;

/** Whether `fd` is open on a folder (closed quietly after a look through it: not a file's 'close'). */
const isFolder = (fd: number): boolean => {
  try {
    return fs.fstatSync(fd).isDirectory();
  } catch {
    return false;
  }
};

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
// The synchronous calls made in the server's own folders (a few µs each: opened-paths.ts, inServerFolderSync), alike.
// A folder's descriptor (closed quietly after a look or a rename through it) is not the file's 'close'.
(fs as { closeSync: unknown }).closeSync = (fd: number): void => {
  const fault = isFolder(fd) ? undefined : take('close', pathOfFd(fd));
  realCloseSync(fd);
  if (fault) throw fault;
};
(fs as { renameSync: unknown }).renameSync = (from: fs.PathLike, to: fs.PathLike): void => {
  const fault = take('rename', realPathOf(from));
  if (fault) throw fault;
  realRenameSync(from, to);
};
(fs as { linkSync: unknown }).linkSync = (from: fs.PathLike, to: fs.PathLike): void => {
  const fault = take('link', realPathOf(from));
  if (fault) throw fault;
  realLinkSync(from, to);
};
(fs as { unlinkSync: unknown }).unlinkSync = (path: fs.PathLike): void => {
  const fault = take('unlink', realPathOf(path));
  if (fault) throw fault;
  realUnlinkSync(path);
};
(fsp as { rename: typeof fsp.rename }).rename = async (from, to) => {
  const fault = take('rename', realPathOf(from));
  if (fault) throw fault;
  return realRename(from, to);
};
(fsp as { link: typeof fsp.link }).link = async (from, to) => {
  const fault = take('link', realPathOf(from));
  if (fault) throw fault;
  return realLink(from, to);
};

(fsp as { unlink: typeof fsp.unlink }).unlink = async (path) => {
  const fault = take('unlink', realPathOf(path));
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
  armed = [];
  (fs as { fsync: unknown }).fsync = realFsync;
  (fs as { close: unknown }).close = realClose;
  (fs as { closeSync: unknown }).closeSync = realCloseSync;
  (fs as { renameSync: unknown }).renameSync = realRenameSync;
  (fs as { linkSync: unknown }).linkSync = realLinkSync;
  (fs as { unlinkSync: unknown }).unlinkSync = realUnlinkSync;
  (fsp as { rename: typeof fsp.rename }).rename = realRename;
  (fsp as { link: typeof fsp.link }).link = realLink;
  (fsp as { open: typeof fsp.open }).open = realOpen;
  (fsp as { unlink: typeof fsp.unlink }).unlink = realUnlink;
};
