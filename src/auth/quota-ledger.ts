import { inject, injectable } from 'inversify';
import { TOKENS } from '../container/tokens';
import { RxferError } from '../errors/rxfer-error';
import type { StorageAdapter } from '../storage/storage-adapter';
import { User } from './user';

/**
 * Per-user storage accounting for `quotaBytes`. A user's usage is measured from storage once (the
 * first time it matters) and then kept up to date by every upload: the declared size is reserved
 * when the staging file opens (staging data counts), kept on commit minus the size of the file it
 * replaced, and given back on abort. Users without a quota cost nothing.
 */
@injectable()
export class QuotaLedger {
  private readonly used = new Map<string, Promise<number>>();

  constructor(@inject(TOKENS.Storage) private readonly storage: StorageAdapter) {}

  private usageOf(user: User): Promise<number> {
    let usage = this.used.get(user.name);
    if (!usage) {
      usage = this.storage.usage(user.root);
      this.used.set(user.name, usage);
    }
    return usage;
  }

  private adjust(user: User, delta: number): void {
    const current = this.usageOf(user);
    this.used.set(user.name, current.then((bytes) => Math.max(0, bytes + delta)));
  }

  /** Storage changed behind the ledger's back (expired partial uploads): measure again when needed. */
  remeasure(): void {
    this.used.clear();
  }

  /** A file was deleted: its bytes no longer count. */
  freed(user: User, bytes: number): void {
    if (user.quotaBytes !== undefined && bytes > 0) this.adjust(user, -bytes);
  }

  /**
   * Reserves `size` bytes or throws QUOTA_EXCEEDED (the file being replaced, if any, is counted as
   * freed). Returns what to call on commit (with the size of
   * the file replaced, 0 if none) or on abort.
   */
  async reserve(
    user: User,
    size: number,
    currentSize: () => Promise<number | undefined>,
  ): Promise<{ committed(replacedBytes: number): void; aborted(keptBytes?: number): void }> {
    const quota = user.quotaBytes;
    if (quota === undefined) return { committed: () => undefined, aborted: () => undefined };
    const used = await this.usageOf(user);
    // Replacing a file needs only the growth: the staging copy and the old file coexist briefly,
    // but refusing a user at 60 % the replacement of their only file by a smaller one helps nobody.
    const replacing = (await currentSize()) ?? 0;
    if (used - replacing + size > quota) {
      throw new RxferError('QUOTA_EXCEEDED', `${user.name} uses ${used} of ${quota} bytes; ${size} more do not fit`, { used, quota, size });
    }
    this.adjust(user, size);
    let settled = false;
    return {
      committed: (replacedBytes) => {
        if (settled) return;
        settled = true;
        this.adjust(user, -replacedBytes);
      },
      // An interrupted upload that keeps `keptBytes` for a resume still uses that much.
      aborted: (keptBytes = 0) => {
        if (settled) return;
        settled = true;
        this.adjust(user, -(size - Math.min(keptBytes, size)));
      },
    };
  }
}
