/** One request for locks: its paths, and what resolves when it is done. */
interface Holder {
  readonly paths: readonly string[];
  readonly done: Promise<void>;
}

/**
 * Whether `path` lies below `folder`, without building `folder + '/'`: a BATCH keeps a few hundred
 * requests in flight, and request ordering (session-context.ts) compares each name with theirs.
 */
export const inside = (path: string, folder: string): boolean => path.length > folder.length && path.charCodeAt(folder.length) === 0x2f && path.startsWith(folder);

/** Every folder `path` lies inside (each prefix that a '/' follows): exactly the `f` with `inside(path, f)`. */
const foldersAbove = (path: string): string[] => {
  const folders: string[] = [];
  for (let slash = path.indexOf('/'); slash >= 0; slash = path.indexOf('/', slash + 1)) folders.push(path.slice(0, slash));
  return folders;
};

/** A map of sets that drops a key once its set is empty, so that it holds only what is in flight. */
class HoldersBy {
  private readonly sets = new Map<string, Set<Holder>>();

  add(key: string, holder: Holder): void {
    const set = this.sets.get(key);
    if (set) set.add(holder);
    else this.sets.set(key, new Set([holder]));
  }

  delete(key: string, holder: Holder): void {
    const set = this.sets.get(key);
    if (set?.delete(holder) && set.size === 0) this.sets.delete(key);
  }

  collectInto(key: string, found: Set<Holder>): void {
    const set = this.sets.get(key);
    if (set) for (const holder of set) found.add(holder);
  }

  get isEmpty(): boolean {
    return this.sets.size === 0;
  }
}

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
 * job).
 *
 * The requests in progress are indexed by each path they lock and by each folder above it, so that a
 * lock costs a few map lookups per level of its path, not a scan of every request in progress: with
 * thousands waiting (many clients, a slow disk), 2,000 locks took 330 ms by the scan, 45 ms now
 * (bench/experiments/name-locks-held.js; no whole command changed measurably).
 */
export class NameLocks {
  /** Requests in progress by each path they lock. */
  private readonly byPath = new HoldersBy();
  /** Requests in progress by each folder above a path they lock. */
  private readonly byFolderAbove = new HoldersBy();
  private inProgress = 0;

  /** Runs `work` once no earlier request on an overlapping path is still running. */
  async with<T>(paths: readonly string[], work: () => Promise<T>): Promise<T> {
    const aboves = paths.map(foldersAbove);
    const earlier = this.overlapping(paths, aboves);
    let release!: () => void;
    const holder: Holder = { paths, done: new Promise<void>((resolve) => (release = resolve)) };
    this.hold(holder, aboves);
    try {
      if (earlier.size > 0) await Promise.all(Array.from(earlier, (other) => other.done));
      return await work();
    } finally {
      this.letGo(holder, aboves);
      release();
    }
  }

  /** Requests in progress on one of `paths`, on a folder above one, or on a name inside one. */
  private overlapping(paths: readonly string[], aboves: readonly string[][]): Set<Holder> {
    const found = new Set<Holder>();
    if (this.inProgress === 0) return found;
    paths.forEach((path, i) => {
      this.byPath.collectInto(path, found);
      this.byFolderAbove.collectInto(path, found);
      for (const folder of aboves[i]!) this.byPath.collectInto(folder, found);
    });
    return found;
  }

  private hold(holder: Holder, aboves: readonly string[][]): void {
    this.inProgress += 1;
    holder.paths.forEach((path, i) => {
      this.byPath.add(path, holder);
      for (const folder of aboves[i]!) this.byFolderAbove.add(folder, holder);
    });
  }

  private letGo(holder: Holder, aboves: readonly string[][]): void {
    this.inProgress -= 1;
    holder.paths.forEach((path, i) => {
      this.byPath.delete(path, holder);
      for (const folder of aboves[i]!) this.byFolderAbove.delete(folder, holder);
    });
  }

  /** Requests holding or waiting for locks right now (tests check nothing is left held). */
  get size(): number {
    return this.inProgress;
  }

  /** Whether the indexes hold nothing (tests check that letting go leaves no entry behind). */
  get isEmpty(): boolean {
    return this.byPath.isEmpty && this.byFolderAbove.isEmpty;
  }
}
