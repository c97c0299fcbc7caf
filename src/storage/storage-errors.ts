import { RxferError } from '../errors/rxfer-error';

/**
 * Maps an errno failure to a storage code. Messages name the remote file, never the server's own
 * paths, which are none of the client's business.
 */
export const storageError = (err: unknown, action: string, name: string): RxferError => {
  if (err instanceof RxferError) return err;
  // Whatever was thrown: a promise may even reject with undefined.
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const serverFolder = serverFolderOf(err);
  if (serverFolder !== undefined) {
    // Nothing about the name: the server's storage is what the operator must look at.
    const storing = action === 'store' || action === 'stage';
    // openCheckedFolderSync's ELOOP: swapped for a link (whatever it leads to), as hostile passes j and p did.
    const why = code === 'ELOOP' ? 'it, or a folder above it, is a symbolic link now: ELOOP' : describeErrno(err, code);
    const message = `cannot ${storing ? 'store' : action} ${name}: the server's own folder ${serverFolder} cannot be used (${why})${storing ? '; nothing stored' : ''}`;
    return new RxferError('STORAGE_FAILED', message, { errno: code });
  }
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new RxferError('NO_SPACE', `no space left to ${action} ${name}`, { errno: code });
    case 'ENOENT':
      // Mid-upload, a missing path is the staging file or its folder removed behind our back: the
      // upload failed, which "NOT FOUND" would not say.
      if (action === 'store') return new RxferError('STORAGE_FAILED', `cannot store ${name}: its folder or staging file was removed meanwhile; nothing stored`, { errno: code });
      return new RxferError('NOT_FOUND', `${name} does not exist`);
    case 'EEXIST':
      return new RxferError('EXISTS', `${name} already exists`);
    case 'EISDIR':
    case 'ENOTDIR':
    case 'ENOTEMPTY':
      return new RxferError('NAME_CONFLICT', `cannot ${action} ${name}: a folder and a file would share a name`, { errno: code });
    case 'ELOOP':
      // A folder on the way that is a link now (fd-paths.js): told as the folder check tells it.
      if (isLinkOnTheWay(err)) return outsideTheRoot(name);
      return new RxferError('NAME_INVALID', `${name} is a symbolic link; rxfer does not follow links`, { errno: code });
    case 'ENAMETOOLONG':
      return new RxferError('NAME_INVALID', `${name} is too long for this file system`, { errno: code });
    default:
      return new RxferError('STORAGE_FAILED', `cannot ${action} ${name}: ${describeErrno(err, code)}`, { errno: code });
  }
};

/** The server's own folder (`.rxfer/staging`, …) whose open failed (fd-paths.js, openServerFolderSync), if that is the failure. */
export const serverFolderOf = (err: unknown): string | undefined => {
  const folder = (err as { serverFolder?: unknown } | undefined)?.serverFolder;
  return typeof folder === 'string' ? folder : undefined;
};

/**
 * Whether `err` is the ELOOP of a folder on a name's way that is a link now (marked in fd-paths.js),
 * not of the name itself: the folder changed since its check, so a check made again may answer (a
 * link into another folder of the root is followed as the folder check follows it).
 */
export const isLinkOnTheWay = (err: unknown): boolean => (err as { linkOnTheWay?: unknown } | undefined)?.linkOnTheWay === true;

/**
 * How a name that leads outside the root is refused, whichever check found it: the folder check (its
 * real path leads outside, or nowhere), or an open that found a folder on the way swapped for a link.
 */
export const outsideTheRoot = (name: string): RxferError => new RxferError('NAME_INVALID', `${name} resolves outside the storage root`);

/**
 * A change that took effect (a rename, link, unlink or mkdir done) whose folder fsync then failed. The
 * reply must say the change is there, not "nothing stored": a client that believed the old state
 * would be misled (a retried ADDFILE answered EXISTS, a quota ledger that forgot a stored file).
 * `done` says what happened in the client's words ("a.txt is stored").
 */
export const notDurable = (err: unknown, done: string, detail: Record<string, number> = {}): RxferError => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  return new RxferError('NOT_DURABLE', `${done}, but its folder could not be synced (${describeErrno(err, code)}): a crash of the server could still undo that`, { errno: code, ...detail });
};

/** Runs the folder fsync that makes a change durable; its failure says the change is there (notDurable). */
export const syncAfterChange = async (sync: () => Promise<void>, done: string, detail?: Record<string, number>): Promise<void> => {
  try {
    await sync();
  } catch (err) {
    throw notDurable(err, done, detail);
  }
};

/** A change reported as made, its folder not synced (notDurable). */
export const isUnsynced = (err: unknown): err is RxferError & { readonly code: 'NOT_DURABLE' } => err instanceof RxferError && err.code === 'NOT_DURABLE';

/**
 * What a change reported as NOT_DURABLE did (`removedBytes` of a DELETE, `replacedBytes` of a commit),
 * for a quota that must count it as done; undefined for any other failure, which changed nothing.
 */
export const unsyncedChange = (err: unknown, key: 'removedBytes' | 'replacedBytes'): number | undefined => {
  if (!isUnsynced(err)) return undefined;
  const bytes = err.detail?.[key];
  return typeof bytes === 'number' ? bytes : 0;
};

/**
 * The same NOT_DURABLE, counting `bytes` more under `key`: what a kept upload dropped along with the
 * change added (a DELETE's partial, the stale partial of a name just stored).
 */
export const unsyncedWithMore = (err: RxferError, key: 'removedBytes' | 'replacedBytes', bytes: number): RxferError =>
  new RxferError(err.code, err.message, { ...err.detail, [key]: (unsyncedChange(err, key) ?? 0) + bytes });

/**
 * The errno's code and the system's words for it ("EIO (i/o error)"), without the path Node appends
 * to the message: the server's own paths are none of the client's business.
 */
const describeErrno = (err: unknown, code: string): string => {
  const words = /^[A-Z0-9_]+: ([^,]+)/.exec((err as Error | undefined)?.message ?? '')?.[1];
  return words ? `${code} (${words})` : code;
};
