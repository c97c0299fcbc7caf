import { lstatSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { RxferError } from '../errors/rxfer-error';

/**
 * Where `get` writes. `file`: staged beside `path` and renamed over it once verified (`path` is the
 * link's target when LOCAL is a link to a file: written through, as cp does, the link kept).
 * `stdout` and `stream` (a FIFO, a device): written as the bytes arrive, verified at the end.
 */
export type GetTarget =
  | { readonly kind: 'file'; readonly path: string; readonly throughLink?: string }
  | { readonly kind: 'stdout' }
  | { readonly kind: 'stream'; readonly path: string };

/** Names that mean this process's standard output, whatever fd 1 is (a pipe, a tty, a file). */
const STDOUT_NAMES = new Set(['-', '/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);

const stats = (path: string, follow: boolean): Stats | undefined => {
  try {
    return follow ? statSync(path, { throwIfNoEntry: false }) : lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined; // A loop of links, no permission: the write itself will say why.
  }
};

const localError = (message: string, path: string): RxferError => new RxferError('LOCAL_IO', message, { path });

/** A trailing "/" (or "." and "..") says LOCAL is a folder, as with cp: never a file of that name. */
const namesFolder = (local: string): boolean => /(^|\/)\.{1,2}$/.test(local) || local.endsWith('/');

/** The folder the file goes into must exist and be a folder: said before anything is fetched. */
const checkParent = (path: string): void => {
  const parent = dirname(path);
  const found = stats(parent, true);
  if (found === undefined) throw localError(`cannot write ${path}: there is no folder ${parent} (make it first: mkdir -p ${parent})`, path);
  if (!found.isDirectory()) throw localError(`cannot write ${path}: ${parent} is a file, not a folder`, path);
};

/** An existing name at `path`: written through a link to a file, streamed into a device or a FIFO. */
const existing = (path: string): GetTarget => {
  const own = stats(path, false);
  if (own === undefined) return { kind: 'file', path };
  if (own.isSymbolicLink()) {
    const to = readlinkSync(path);
    // /dev/stderr and friends: the descriptor behind the link, never a file renamed over it.
    if (/^\/(proc\/self|dev)\/fd\/\d+$/.test(to)) return { kind: 'stream', path };
    const target = stats(path, true);
    if (target === undefined) {
      throw localError(`${path} is a symbolic link to ${to}, which does not exist; rxfer does not write through a dangling link (nor does cp): remove the link or name another target`, path);
    }
    if (target.isFile()) return { kind: 'file', path: realpathSync(path), throughLink: path };
    return { kind: 'stream', path };
  }
  if (own.isFile()) return { kind: 'file', path };
  if (own.isDirectory()) throw localError(`cannot write ${path}: it is a folder here (to copy a folder from the server, add -r; to get the file into this folder, end it with "/")`, path);
  return { kind: 'stream', path };
};

/**
 * LOCAL for `rxfer get REMOTE [LOCAL]`, checked before anything is fetched: `-` (or /dev/stdout) is
 * standard output; a folder (existing, or named with a trailing "/", which must exist) receives
 * REMOTE's file name; a link to a file is written through; anything else is the file to write.
 */
export const planGetTarget = (remoteName: string, local: string | undefined): GetTarget => {
  const fileName = posix.basename(remoteName);
  if (local !== undefined && STDOUT_NAMES.has(local)) return { kind: 'stdout' };
  if (local === undefined || local === '') {
    checkParent(join('.', fileName));
    return existing(fileName);
  }
  const found = stats(local, true);
  if (namesFolder(local)) {
    if (found === undefined) throw localError(`there is no folder ${local} (a target ending in "/" names a folder; make it first: mkdir -p ${local})`, local);
    if (!found.isDirectory()) throw localError(`${local} is not a folder (a target ending in "/" names a folder)`, local);
  }
  const path = found?.isDirectory() ? join(local, fileName) : local;
  checkParent(path);
  return existing(path);
};
