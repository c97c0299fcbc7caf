import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';

/** Resume files locked by this process (its own downloads): a second one to the same target stages apart. */
const heldHere = new Set<string>();

/** Whether a process with this pid is running (EPERM: it is, but belongs to someone else). */
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Who is writing a download's resume file (`partialPathFor`). Two downloads to the same target at
 * once, in this process or in two, would otherwise both write into that one file: each verifies the
 * bytes it received, not the file's mix of both, and the mix would be renamed over the target. The
 * lock is a file beside it, created exclusively, holding the owner's pid; a lock whose process is
 * gone (a crash, a kill) is taken over. A download that finds the lock held stages in a file of its
 * own, as it would without resume: it cannot be continued later, but it cannot spoil the other.
 */
export class ResumeLock {
  private released = false;

  private constructor(private readonly resumePath: string) {}

  /**
   * The lock of `resumePath`, or undefined if another live download holds it. Synchronous: a few µs
   * for a file of a few bytes, where thread-pool round trips for create, write, close and unlink made
   * 2,000 small pipelined downloads a third slower (2,052 → 1,459 files/s, bench/findings.md).
   */
  static take(resumePath: string): ResumeLock | undefined {
    if (heldHere.has(resumePath)) return undefined;
    if (!lockFile(lockPathOf(resumePath))) return undefined;
    heldHere.add(resumePath);
    return new ResumeLock(resumePath);
  }

  /** Lets the next download of this target use the resume file. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      unlinkSync(lockPathOf(this.resumePath));
    } catch {
      // Already gone: nothing to give back.
    }
    heldHere.delete(this.resumePath);
  }
}

const lockPathOf = (resumePath: string): string => `${resumePath}.lock`;

/** A lock file without a pid in it this old is left over, not being written. */
const UNREADABLE_LOCK_STALE_MS = 10_000;

/** Creates the lock file with our pid; true if we hold it now, false if a live process does. */
const lockFile = (lockPath: string): boolean => {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeLock(lockPath);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(readQuietly(lockPath), 10);
    if (!Number.isSafeInteger(owner) || owner <= 0) {
      // Empty: another process has just created it and not yet written its pid, unless it is old.
      if (Date.now() - mtimeOf(lockPath) < UNREADABLE_LOCK_STALE_MS) return false;
    } else if (owner !== process.pid && isRunning(owner)) {
      return false;
    }
    // Stale (its process is gone; our own pid in a lock we do not hold was left by an earlier process
    // with that pid): take it over. Two processes taking over one stale lock in the same instant
    // could both win; after a crash, two downloads to one target started together are that rare.
    try {
      unlinkSync(lockPath);
    } catch {
      // Someone else took it over first: the next attempt finds theirs.
    }
  }
  return false;
};

/**
 * Creates the lock file with our pid in it, or throws with nothing left behind. writeFileSync would
 * leave the file it created empty when the write fails (a full disk needs a page for four bytes),
 * and an empty lock reads as "being created by someone" to everyone for the next ten seconds.
 */
const writeLock = (lockPath: string): void => {
  const fd = openSync(lockPath, 'wx', 0o644);
  let open = true;
  try {
    const pid = Buffer.from(`${process.pid}\n`);
    if (writeSync(fd, pid) !== pid.length) throw Object.assign(new Error(`short write to ${lockPath}`), { code: 'EIO' });
    // Closed once only, even when the close fails: Linux frees the number anyway, and the thread
    // pool may hand it to another open() at once.
    open = false;
    closeSync(fd);
  } catch (err) {
    try {
      if (open) closeSync(fd);
    } finally {
      unlinkSync(lockPath);
    }
    throw err;
  }
};

const readQuietly = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

const mtimeOf = (path: string): number => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
};
