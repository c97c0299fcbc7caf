import { inject, injectable, optional } from 'inversify';
import type { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { RxferError } from '../errors/rxfer-error';
import { withinStorageDeadline } from '../session/storage-deadline';
import type { StorageAdapter } from '../storage/storage-adapter';
import { User } from './user';

/** An upload's claim on its user's quota, settled once: committed, or aborted. */
export interface QuotaReservation {
  /**
   * The upload continues `bytes` kept from an interrupted one (they count already): they are part
   * of this upload from now on, and an abort that deletes the staging data drops them with it.
   */
  resumedFrom(bytes: number): void;
  /**
   * At commit, before the file is published, with the size of the file it is about to replace:
   * throws QUOTA_EXCEEDED if that no longer fits (the upload was admitted for its growth over a file
   * that was renamed or deleted away meanwhile).
   */
  admit(replacedBytes: number): void;
  /** Stored: the reservation stays in use, minus the size of the file it replaced (0 if none). */
  committed(replacedBytes: number): void;
  /** Not stored; storage still keeps `keptBytes` of it for a resume (prefix included; 0: nothing). */
  aborted(keptBytes?: number): void;
  /** QuotaLedger.change for this upload's user: `work` changes storage and then settles or moves this reservation. */
  change<T>(work: () => Promise<T>): Promise<T>;
}

const NO_QUOTA: QuotaReservation = { resumedFrom: () => undefined, admit: () => undefined, committed: () => undefined, aborted: () => undefined, change: (work) => work() };

/** How long a measurement waits for changes under way without a configured storage deadline. */
const DEFAULT_QUIET_WITHIN_MS = 30_000;

/** How many times a measurement is taken again because storage changed under it, before it is kept. */
const MEASURE_TRIES = 5;

/** One user's count: what storage holds, and what uploads in flight have reserved on top of it. */
interface UserCount {
  /** Bytes stored (files, and kept partial uploads nobody is writing) as measured and kept up to date; undefined: measure. */
  stored: number | undefined;
  /**
   * remeasure() was asked: `stored` is measured again before the next reservation, and until then it
   * stays what commits check against (admit() cannot wait for a walk; the sweep only ever frees, so the
   * old count is an upper bound: forgetting it let a commit through unchecked).
   */
  stale: boolean;
  /** The measurement under way, if any. */
  measuring: Promise<void> | undefined;
  /** Storage changed while the measurement ran: it may or may not have seen the change, so it is taken again. */
  changedWhileMeasuring: boolean;
  /** Bytes reserved by uploads in flight (their declared size, and any kept prefix they continue). */
  live: number;
  /** Of those, what uploads in flight were let off for the file each is to replace (admitted for their growth). */
  credited: number;
  /** Changes under way (see change()): storage changed, or about to, and the count not told yet. */
  changing: number;
  /** Wakes the measurement waiting for `changing` to come down to 0 (called at every 0: a stale one is harmless). */
  quiet: (() => void) | undefined;
  /** Set while a measurement waits for quiet and walks storage: changes wait for it before they begin. */
  walking: Promise<void> | undefined;
}

/**
 * Per-user storage accounting for `quotaBytes`. A user's count has two parts. What storage holds is
 * measured once (the first time it matters) and then kept up to date by every change: a commit adds
 * the upload minus the file it replaced, a DELETE or storage dropping kept bytes (`freed`) subtracts.
 * What uploads in flight reserved is held apart, from the moment the staging file opens until the
 * upload commits or aborts. Keeping them apart is what lets the stored part be measured again at any
 * time (after the expiry sweep) without forgetting the uploads in flight (issue 16, and the hostile
 * pass of 2026-12-05: an upload of 8 MB in flight, a sweep, and a second upload of 5 MB was admitted
 * under a 10 MB quota). Users without a quota cost nothing.
 */
@injectable()
export class QuotaLedger {
  private readonly counts = new Map<string, UserCount>();

  /** How long a measurement waits for the changes under way to end (the storage deadline, when configured). */
  private readonly quietWithinMs: number;

  constructor(@inject(TOKENS.Storage) private readonly storage: StorageAdapter, @inject(TOKENS.Config) @optional() config?: RxferConfig) {
    this.quietWithinMs = config?.limits.stallTimeoutMs ?? DEFAULT_QUIET_WITHIN_MS;
  }

  private countOf(user: User): UserCount {
    let count = this.counts.get(user.name);
    if (!count) {
      count = { stored: undefined, stale: false, measuring: undefined, changedWhileMeasuring: false, live: 0, credited: 0, changing: 0, quiet: undefined, walking: undefined };
      this.counts.set(user.name, count);
    }
    return count;
  }

  /** The user's count with its stored part measured. A failed measurement fails this call only: the next one measures again. */
  private async measured(user: User): Promise<UserCount & { stored: number }> {
    const count = this.countOf(user);
    // A remeasure() may land while this waits: then it waits again.
    while (count.stored === undefined || count.stale) {
      count.measuring ??= this.measure(user, count).finally(() => (count.measuring = undefined));
      await count.measuring;
    }
    return count as UserCount & { stored: number };
  }

  /**
   * Walks storage for the user's bytes, never while a change is under way (see change()): those under
   * way are waited for, and those that begin meanwhile wait for the walk.
   */
  private async measure(user: User, count: UserCount): Promise<void> {
    let walked!: () => void;
    count.walking = new Promise((resolve) => (walked = resolve));
    try {
      await this.quietFor(user, count);
      for (let tries = 1; ; tries++) {
        count.changedWhileMeasuring = false;
        const bytes = await this.storage.usage(user.root);
        // What is not a change() (the expiry sweep's deletions, then remeasure()) may still land during the walk.
        // Under endless sweeps the last measurement is kept: a count off by a change in flight, not a failure.
        if (!count.changedWhileMeasuring || tries === MEASURE_TRIES) {
          count.stored = bytes;
          count.stale = false;
          return;
        }
      }
    } finally {
      count.walking = undefined;
      walked();
    }
  }

  /**
   * Waits until no change of the user's storage is under way. One that never ends (a commit on a dead
   * mount) fails the measurement rather than hold every later change of the user behind it: the
   * reservation asking is refused, and the next one measures again.
   */
  private async quietFor(user: User, count: UserCount): Promise<void> {
    if (count.changing === 0) return;
    // A later measurement sets its own; one left here from before only settles a settled promise.
    const quiet = new Promise<void>((resolve) => (count.quiet = resolve));
    // Woken at 0; a change cannot begin meanwhile (it waits for the walk), so it is still 0. The only way
    // it fails (`quiet` never rejects) is the deadline, reported in the ledger's words: nothing to STAT.
    await withinStorageDeadline(quiet, this.quietWithinMs, `finish a change of what ${user.name} stores`).catch(() => {
      throw new RxferError('STORAGE_FAILED', `cannot count what ${user.name} stores: a change of its storage has not finished within ${this.quietWithinMs} ms; try again`, { waitedMs: this.quietWithinMs });
    });
  }

  /**
   * Runs `work`: a change of the user's storage (a commit, a DELETE, a claim or release of a kept
   * upload) that also tells this ledger what it changed, once storage has. The walk of a measurement
   * never overlaps one: it waits for those under way, and those that begin meanwhile wait for it.
   * Overlapping, a change on disk before the walk and told after it counted twice (a DELETE subtracted
   * twice, a commit added twice, a resumed prefix moved out of a count that never had it: the hostile
   * pass of 2026-12-05c). Users without a quota cost nothing.
   */
  async change<T>(user: User, work: () => Promise<T>): Promise<T> {
    if (user.quotaBytes === undefined) return work();
    const count = this.countOf(user);
    while (count.walking) await count.walking;
    count.changing++;
    try {
      return await work();
    } finally {
      if (--count.changing === 0) count.quiet?.();
    }
  }

  /** Storage changed by `delta` bytes for `user`. Not measured yet: the measurement will see storage as it is. */
  private changeStored(user: User, delta: number): void {
    const count = this.counts.get(user.name);
    if (!count || delta === 0) return;
    // Unmeasured or stale: a measurement under way is taken again; one that starts later clears the flag.
    if (count.stored !== undefined) count.stored = Math.max(0, count.stored + delta);
    if (count.stored === undefined || count.stale) count.changedWhileMeasuring = true;
  }

  /**
   * Storage changed behind the ledger's back (expired partial uploads): its stored part is measured
   * again when next needed. What uploads in flight reserved stays.
   */
  remeasure(): void {
    for (const count of this.counts.values()) {
      count.stale = true;
      count.changedWhileMeasuring = true;
    }
  }

  /** A file was deleted, or storage dropped kept bytes of an interrupted upload: they no longer count. */
  freed(user: User, bytes: number): void {
    if (user.quotaBytes !== undefined && bytes > 0) this.changeStored(user, -bytes);
  }

  /**
   * Reserves `size` bytes or throws QUOTA_EXCEEDED (the file being replaced, if any, is counted as
   * freed). Returns what to call on commit (with the size of the file replaced, 0 if none) or on abort.
   */
  async reserve(user: User, size: number, currentSize: () => Promise<number | undefined>): Promise<QuotaReservation> {
    const quota = user.quotaBytes;
    if (quota === undefined) return NO_QUOTA;
    // Replacing a file needs only the growth: the staging copy and the old file coexist briefly,
    // but refusing a user at 60 % the replacement of their only file by a smaller one helps nobody.
    const replacing = (await currentSize()) ?? 0;
    const count = await this.measured(user);
    // From here to the reservation nothing awaits: a check on a count read before an await let
    // concurrent uploads each see the same room and all take it.
    const used = count.stored + count.live;
    if (used - replacing + size > quota) {
      throw new RxferError('QUOTA_EXCEEDED', `${user.name} uses ${used} of ${quota} bytes; ${size} more do not fit`, { used, quota, size });
    }
    count.live += size;
    count.credited += replacing;
    let held = size;
    let settled = false;
    const settle = (storedDelta: number) => {
      settled = true;
      count.live -= held;
      count.credited -= replacing;
      this.changeStored(user, storedDelta);
    };
    return {
      // After this commit the count is stored + live − replacedBytes; the other uploads in flight are still
      // owed their own credits (their files are still there, or their own commit refuses).
      admit: (replacedBytes) => {
        if (settled || count.stored === undefined || replacedBytes >= replacing) return;
        const after = count.stored + count.live - replacedBytes - (count.credited - replacing);
        if (after > quota) {
          throw new RxferError(
            'QUOTA_EXCEEDED',
            `${user.name} would use ${after} of ${quota} bytes: the ${replacing}-byte file this upload was to replace is no longer there (renamed or deleted meanwhile); nothing stored`,
            { used: after, quota, size },
          );
        }
      },
      // The kept bytes were stored (an idle kept upload); from now on they are this upload's.
      resumedFrom: (bytes) => {
        if (settled || bytes <= 0) return;
        held += bytes;
        count.live += bytes;
        this.changeStored(user, -bytes);
      },
      committed: (replacedBytes) => {
        if (!settled) settle(held - replacedBytes);
      },
      aborted: (keptBytes = 0) => {
        if (!settled) settle(Math.min(keptBytes, held));
      },
      change: (work) => this.change(user, work),
    };
  }
}
