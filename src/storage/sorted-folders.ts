import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';

/** The listing order: each folder's entries by name (UTF-16 code units, as JS compares). */
const byName = (a: Dirent, b: Dirent): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Folders with fewer entries are read afresh for every page: a readdir of them costs little. */
const CACHE_FROM_ENTRIES = 4096;
/** Entries kept across all cached folders (a Dirent and its name: ≈ 100 bytes each, ≈ 50 MB in all). */
const MAX_CACHED_ENTRIES = 500_000;

/**
 * A folder changed this recently is not kept: a change in the same tick of the file system's clock
 * (coarse before Linux 6.13) may leave its mtime as it was, after readdir (git's "racy" rule).
 */
const RACY_MS = 2000;

interface Sorted {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly entries: readonly Dirent[];
}

/**
 * Each folder's entries sorted by name, for the pages of a LIST (issue 17). A paged listing of a
 * folder of 200,000 files used to read and sort the whole folder again for each page of 10,000: 20
 * readdirs of 200,000 entries per listing (`ls` of it: 26 s, the server's RSS past 600 MiB in
 * garbage). A big folder's sorted entries are now kept while its inode, mtime and ctime stay the
 * same: a file added, removed or renamed in it changes them, and the next page reads it again (a
 * file's contents changing does not, and need not: each page still lstats the files it lists). A
 * folder changed in the last RACY_MS is read afresh each time, not kept: a folder being uploaded
 * into is read per page, as before; a quiet big folder, listed or downloaded, is read once.
 */
export class SortedFolders {
  private readonly cache = new Map<string, Sorted>();
  private cachedEntries = 0;

  private readonly cacheFromEntries: number;
  private readonly racyMs: number;
  private readonly maxCachedEntries: number;

  constructor({ cacheFromEntries = CACHE_FROM_ENTRIES, racyMs = RACY_MS, maxCachedEntries = MAX_CACHED_ENTRIES } = {}) {
    this.cacheFromEntries = cacheFromEntries;
    this.racyMs = racyMs;
    this.maxCachedEntries = maxCachedEntries;
  }

  /**
   * The entries of `folder` by name; none if it cannot be read. `readFrom`: where to read it, if not
   * by its path (a walk's opened folder, /proc/self/fd/<n>: opened-paths.ts); `folder` is the cache's key.
   */
  async entries(folder: string, readFrom = folder): Promise<readonly Dirent[]> {
    // Stat first: a change made while readdir runs leaves the cached copy older than the folder.
    const started = Date.now();
    const before = await stat(readFrom).catch(() => undefined);
    const known = this.cache.get(folder);
    // ctime too: utimes can set the mtime back (tar, cp -a, rsync -a do), never the ctime.
    if (known && before && known.ino === before.ino && known.mtimeMs === before.mtimeMs && known.ctimeMs === before.ctimeMs) {
      // Most recently used last, for eviction.
      this.cache.delete(folder);
      this.cache.set(folder, known);
      return known.entries;
    }
    this.forget(folder);
    const entries = await readdir(readFrom, { withFileTypes: true }).catch(() => [] as Dirent[]);
    entries.sort(byName);
    const settled = before !== undefined && Math.max(before.mtimeMs, before.ctimeMs) < started - this.racyMs;
    if (before && settled && entries.length >= this.cacheFromEntries && entries.length <= this.maxCachedEntries) {
      this.cache.set(folder, { ino: before.ino, mtimeMs: before.mtimeMs, ctimeMs: before.ctimeMs, entries });
      this.cachedEntries += entries.length;
      this.evict();
    }
    return entries;
  }

  private forget(folder: string): void {
    const known = this.cache.get(folder);
    if (!known) return;
    this.cache.delete(folder);
    this.cachedEntries -= known.entries.length;
  }

  private evict(): void {
    for (const folder of this.cache.keys()) {
      if (this.cachedEntries <= this.maxCachedEntries) return;
      this.forget(folder);
    }
  }
}

/** The index of the first entry whose name is not before `name` (entries sorted by name). */
export const firstNotBefore = (entries: readonly Dirent[], name: string): number => {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle]!.name < name) low = middle + 1;
    else high = middle;
  }
  return low;
};
