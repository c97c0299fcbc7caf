import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { RxferError } from '../errors/rxfer-error';
import type { HashAlgorithm } from '../integrity/hash-algorithm';
import { RESERVED_PREFIX } from '../protocol/remote-name';
import { type DigestIndex, SMALL_FILE_BYTES } from './digest-index';
import type { FolderDigests } from './digest-log';
import type { ListedFile } from './storage-adapter';
import { type SortedFolders, firstNotBefore } from './sorted-folders';
import { openFolderForWalk } from './opened-paths';

/**
 * Files looked at between two turns of the event loop. The lstat of each is synchronous (a few µs
 * on a local file system; awaited one by one, the thread-pool round trips were most of a LIST of
 * 2,000 files: bench/findings.md), so a walk of a big tree yields now and then to the other
 * connections.
 */
const YIELD_EVERY = 512;

export interface LocalListing {
  readonly digests: DigestIndex;
  readonly algorithm: HashAlgorithm;
  readonly signal: AbortSignal | undefined;
  /** Each folder's entries by name (kept between the pages of a big folder). */
  readonly sorted: SortedFolders;
  /** Files wanted: a LIST gets TOO_LARGE beyond it, a page stops at it (`paged`). */
  readonly max: number;
  readonly paged: boolean;
  /** LIST FOLDERS: a line for each folder, just before its contents. */
  readonly folders?: boolean;
  /** LIST SHALLOW: the folder's own entries; folders below are not opened (issue 17: `ls`). */
  readonly shallow?: boolean;
  /** The folder the LIST asked for, which TOO_LARGE names (not the subfolder the walk was in). */
  readonly listed?: string;
}

/**
 * The files below `folder` (named `prefix/...`) in listing order (depth first, each folder's entries
 * by name in UTF-16 code units, as JS compares), after the name whose path
 * segments are `after` (if any), into `found`. Reads no file (digests come from the folder's digest
 * log or a large file's sidecar). Returns true once a page is full (the walk stops there).
 */
export const walkListing = async (folder: string, prefix: string, after: readonly string[] | undefined, found: ListedFile[], how: LocalListing, counter = { sinceYield: 0 }): Promise<boolean> => {
  // Read and looked into through the folder opened and shown to be `folder`: one swapped for a link
  // since the walk saw it as a folder is left out (hostile pass j), never listed from outside the root.
  const opened = await openFolderForWalk(folder);
  if (opened === undefined) return false;
  try {
    return await walkOpened(folder, opened.through, prefix, after, found, how, counter);
  } finally {
    opened.close();
  }
};

const walkOpened = async (folder: string, through: string, prefix: string, after: readonly string[] | undefined, found: ListedFile[], how: LocalListing, counter: { sinceYield: number }): Promise<boolean> => {
  const entries = await how.sorted.entries(folder, through);
  let cursor = after;
  let known: FolderDigests | undefined;
  // A page starts at its cursor: what is before it in this folder is not even looked at.
  for (let at = cursor ? firstNotBefore(entries, cursor[0]!) : 0; at < entries.length; at++) {
    const entry = entries[at]!;
    // Nobody is waiting for the answer any more (the peer left, the server stopped).
    if (how.signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
    if (entry.name.toLowerCase().startsWith(RESERVED_PREFIX)) continue;
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    // Its real path (a folder below is opened by it) and the way to look at it, through the opened folder.
    const path = join(folder, entry.name);
    const inside = join(through, entry.name);
    if (cursor) {
      const rest = cursor.slice(1);
      const onPath = entry.name === cursor[0];
      cursor = undefined;
      if (onPath) {
        // The cursor's own file (or a file where it had a folder): not after it. A folder on its
        // path: only what follows it inside (all of it if the cursor named the folder itself; its
        // line, with FOLDERS, was on the page before). SHALLOW never goes inside.
        if (!entry.isDirectory() || how.shallow) continue;
        if (await walkListing(path, name, rest.length > 0 ? rest : undefined, found, how, counter)) return true;
        continue;
      }
    }
    // Links are not followed (nor listed): what they point at is not the user's to see.
    if (entry.isDirectory()) {
      if (how.folders) {
        const stats = lstatOrUndefined(inside);
        if (!stats?.isDirectory()) continue;
        if (admit({ name, size: 0, mtimeMs: stats.mtimeMs, folder: true }, found, how, prefix)) return true;
      }
      if (!how.shallow && (await walkListing(path, name, undefined, found, how, counter))) return true;
      continue;
    }
    if (!entry.isFile()) continue;
    const stats = lstatOrUndefined(inside);
    if (!stats?.isFile()) continue;
    if (found.length >= how.max && !how.paged) throw tooLarge(how, prefix);
    known ??= await how.digests.folderDigests(prefix);
    const digest = stats.size <= SMALL_FILE_BYTES ? known.get(entry.name, stats, how.algorithm) : await how.digests.lookup(name, stats, how.algorithm);
    if (admit({ name, size: stats.size, mtimeMs: stats.mtimeMs, ...(digest && { digest }) }, found, how, prefix)) return true;
    if (++counter.sinceYield >= YIELD_EVERY) {
      counter.sinceYield = 0;
      await nextTurn();
    }
  }
  return false;
};

const tooLarge = (how: LocalListing, prefix: string): RxferError => {
  const folder = how.listed ?? prefix;
  return new RxferError('TOO_LARGE', `more than ${how.max} ${how.folders ? 'entries' : 'files'} under ${folder || 'the root'}; list a narrower folder`);
};

/** Adds an entry; TOO_LARGE past the limit of a whole listing, true once a page is full. */
const admit = (entry: ListedFile, found: ListedFile[], how: LocalListing, prefix: string): boolean => {
  if (found.length >= how.max && !how.paged) throw tooLarge(how, prefix);
  found.push(entry);
  return how.paged && found.length >= how.max;
};

/** lstat, or undefined when there is nothing there (or it cannot be looked at). */
const lstatOrUndefined = (path: string): Stats | undefined => {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
};
