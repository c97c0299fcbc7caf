import { inject, injectable } from 'inversify';
import type { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { RxferError } from '../errors/rxfer-error';
import { User } from './user';

/**
 * Counts each user's transfers in progress across all their connections, so one account cannot
 * take the whole server by opening many connections (`limits.maxTransfersPerUser`).
 */
@injectable()
export class TransferSlots {
  private readonly inUse = new Map<string, number>();

  constructor(@inject(TOKENS.Config) private readonly config: RxferConfig) {}

  /** Takes a slot or throws BUSY; the returned function gives it back (once). */
  take(user: User): () => void {
    const limit = this.config.limits.maxTransfersPerUser;
    const used = this.inUse.get(user.name) ?? 0;
    if (used >= limit) {
      throw new RxferError('BUSY', `${user.name} already has ${used} transfers in progress (limit ${limit}); retry when one finishes`, { used, limit });
    }
    this.inUse.set(user.name, used + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      const now = (this.inUse.get(user.name) ?? 1) - 1;
      if (now === 0) this.inUse.delete(user.name);
      else this.inUse.set(user.name, now);
    };
  }
}
