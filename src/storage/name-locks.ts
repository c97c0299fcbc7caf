/** One request for locks: its paths, and what resolves when it is done. */
interface Holder {
  readonly paths: readonly string[];
  readonly done: Promise<void>;
}

/** Whether a lock on `a` and one on `b` exclude each other: the same path, or one inside the other. */
const overlap = (a: string, b: string): boolean => a === b || inside(a, b) || inside(b, a);

/**
 * Whether `path` lies below `folder`, without building `folder + '/'`: a BATCH keeps a few hundred
 * commits in flight, and each lock compares its path with every one of theirs.
 */
export const inside = (path: string, folder: string): boolean => path.length > folder.length && path.charCodeAt(folder.length) === 0x2f && path.startsWith(folder);

/**
 * Mutual exclusion over paths, for the storage calls that change what a name holds (commit, rename,
 * delete, mkdir). A file RENAME is `link(from, to)` then `unlink(from)`, by path: an upload committing
 * to `from` between the two had its new file unlinked, and both clients were told they succeeded
 * (issue 14). A lock on a folder also excludes everything inside it: a folder renamed between a
 * commit's rename into it and that folder's fsync made the commit fail after it had taken effect
 * (the client was told "nothing stored" of a file that was there), or run twice.
 *
 * Requests wait for the overlapping requests made before them, in the order they were made; a
 * request waits only on earlier ones, so there is no cycle and no deadlock, whatever the order of
 * its paths. In-process only: one server owns a storage root (shared storage is the S3 adapter's
 * job). Uncontended, a lock costs a scan of the few requests in progress and a resolved promise.
 */
export class NameLocks {
  private readonly holders = new Set<Holder>();

  /** Runs `work` once no earlier request on an overlapping path is still running. */
  async with<T>(paths: readonly string[], work: () => Promise<T>): Promise<T> {
    const earlier: Promise<void>[] = [];
    for (const holder of this.holders) {
      if (holder.paths.some((held) => paths.some((path) => overlap(held, path)))) earlier.push(holder.done);
    }
    let release!: () => void;
    const holder: Holder = { paths, done: new Promise<void>((resolve) => (release = resolve)) };
    this.holders.add(holder);
    try {
      if (earlier.length > 0) await Promise.all(earlier);
      return await work();
    } finally {
      this.holders.delete(holder);
      release();
    }
  }

  /** Requests holding or waiting for locks right now (tests check nothing is left held). */
  get size(): number {
    return this.holders.size;
  }
}
