/**
 * Mutual exclusion per path, for the storage calls that change what a name holds (commit, rename,
 * delete). A file RENAME is `link(from, to)` then `unlink(from)`, by path: an upload committing to
 * `from` between the two had its new file unlinked, and both clients were told they succeeded
 * (issue 14). Each of those calls runs under the locks of the names it touches, so they take turns.
 *
 * In-process only: one server owns a storage root (two servers on one folder were never supported;
 * shared storage is the S3 adapter's job). Locks are taken in sorted order, so two requests that
 * lock the same pair cannot deadlock. Uncontended, a lock costs a Map lookup and a resolved promise.
 */
export class NameLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` once no earlier holder of any of `paths` is still running. */
  async with<T>(paths: readonly string[], work: () => Promise<T>): Promise<T> {
    const unique = [...new Set(paths)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const path of unique) releases.push(await this.take(path));
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  private async take(path: string): Promise<() => void> {
    const before = this.tails.get(path);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(path, mine);
    if (before) await before;
    return () => {
      release();
      // The last holder leaves no entry behind: the map holds only names being worked on.
      if (this.tails.get(path) === mine) this.tails.delete(path);
    };
  }

  /** Names locked or waited for right now (tests check nothing is left held). */
  get size(): number {
    return this.tails.size;
  }
}
