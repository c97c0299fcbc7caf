import { inject, injectable } from 'inversify';
import type { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { tokenUser, verifyToken } from './token';
import { ANONYMOUS, User } from './user';

// A hash of a random token nobody has: unknown users cost the same scrypt as known ones, so the
// time to fail does not tell an attacker which user names exist.
const DECOY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** The users from the config, and the anonymous user if the config allows one. */
@injectable()
export class UserDirectory {
  constructor(@inject(TOKENS.Config) private readonly config: RxferConfig) {}

  get authRequired(): boolean {
    return this.anonymous() === undefined;
  }

  anonymous(): User | undefined {
    const role = this.config.auth.anonymous;
    if (role === 'none') return undefined;
    return { name: ANONYMOUS, role, root: this.config.auth.anonymousRoot };
  }

  /** The user this token proves, or undefined. Always runs one scrypt, hit or miss. */
  async authenticate(token: string): Promise<User | undefined> {
    const name = tokenUser(token);
    const entry = this.config.auth.users.find((user) => user.name === name);
    const valid = await verifyToken(token, entry?.tokenHash ?? DECOY_HASH);
    if (!entry || !valid) return undefined;
    return { name: entry.name, role: entry.role, root: entry.root, ...(entry.quotaBytes !== undefined && { quotaBytes: entry.quotaBytes }) };
  }
}
