import { inject, injectable } from 'inversify';
import { TOKENS } from '../container/tokens';
import { RxferError } from '../errors/rxfer-error';
import type { StorageAdapter } from '../storage/storage-adapter';
import { User } from './user';

/** An upload's claim on its user's quota, settled once: committed, or aborted. */
export interface QuotaReservation {
  /**
   * The upload continues `bytes` kept from an interrupted one (they count already): they are part
   * of this upload from now on, and an abort that deletes the staging data drops them with it.
   */
  resumedFrom(bytes: number): void;
  /** Stored: the reservation stays in use, minus the size of the file it replaced (0 if none). */
  committed(replacedBytes: number): void;
  /** Not stored; storage still keeps `keptBytes` of it for a resume (prefix included; 0: nothing). */
  aborted(keptBytes?: number): void;
}

const NO_QUOTA: QuotaReservation = { resumedFrom: () => undefined, committed: () => undefined, aborted: () => undefined };

/**
 * Per-user storage accounting for `quotaBytes`. A user's usage is measured from storage once (the
 * first time it matters) and then kept up to date by every upload: the declared size is reserved
 * when the staging file opens (staging data counts), kept on commit minus the size of the file it
 * replaced, and given back on abort, except what storage keeps for a resume. Every other way bytes
 * go (a DELETE, kept bytes that storage drops: `freed`) is subtracted too, or the ledger drifts and
 * refuses a user what fits until a restart (issue 16). Users without a quota cost nothing.
 */
@injectable()
export class QuotaLedger {
  private readonly used = new Map<string, Promise<number>>();

  constructor(@inject(TOKENS.Storage) private readonly storage: StorageAdapter) {}

  private usageOf(user: User): Promise<number> {
    return this.used.get(user.name) ?? this.setCount(user, this.storage.usage(user.root));
  }

  /**
   * The user's count from now on. A count whose measurement failed (EIO, say) is no count at all:
   * it is forgotten, so the next request measures again instead of failing until a restart.
   */
  private setCount(user: User, count: Promise<number>): Promise<number> {
    this.used.set(user.name, count);
    count.catch(() => {
      if (this.used.get(user.name) === count) this.used.delete(user.name);
    });
    return count;
  }

  /** Changes a measured usage; one not measured yet needs nothing, its measurement will see storage as it is. */
  private adjust(user: User, delta: number): void {
    const current = this.used.get(user.name);
    if (current) this.setCount(user, current.then((bytes) => Math.max(0, bytes + delta)));
  }

  /** Storage changed behind the ledger's back (expired partial uploads): measure again when needed. */
  remeasure(): void {
    this.used.clear();
  }

  /** A file was deleted, or storage dropped kept bytes of an interrupted upload: they no longer count. */
  freed(user: User, bytes: number): void {
    if (user.quotaBytes !== undefined && bytes > 0) this.adjust(user, -bytes);
  }

  /**
   * Reserves `size` bytes or throws QUOTA_EXCEEDED (the file being replaced, if any, is counted as
   * freed). Returns what to call on commit (with the size of
   * the file replaced, 0 if none) or on abort.
   */
  async reserve(user: User, size: number, currentSize: () => Promise<number | undefined>): Promise<QuotaReservation> {
    const quota = user.quotaBytes;
    if (quota === undefined) return NO_QUOTA;
    // Replacing a file needs only the growth: the staging copy and the old file coexist briefly,
    // but refusing a user at 60 % the replacement of their only file by a smaller one helps nobody.
    const replacing = (await currentSize()) ?? 0;
    // The check and the reservation are one step of the user's chain of changes: a check on a count
    // read before an await let concurrent uploads each see the same room and all take it.
    let refusal: RxferError | undefined;
    const after = this.usageOf(user).then((used) => {
      if (used - replacing + size <= quota) return used + size;
      refusal = new RxferError('QUOTA_EXCEEDED', `${user.name} uses ${used} of ${quota} bytes; ${size} more do not fit`, { used, quota, size });
      return used;
    });
    await this.setCount(user, after);
    if (refusal) throw refusal;
    let held = size;
    let settled = false;
    return {
      resumedFrom: (bytes) => {
        if (!settled) held += bytes;
      },
      committed: (replacedBytes) => {
        if (settled) return;
        settled = true;
        this.adjust(user, -replacedBytes);
      },
      aborted: (keptBytes = 0) => {
        if (settled) return;
        settled = true;
        this.adjust(user, -(held - Math.min(keptBytes, held)));
      },
    };
  }
}
