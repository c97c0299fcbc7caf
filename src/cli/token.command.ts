import { generateToken, hashToken } from '../auth/token';
import { ROLES, type Role } from '../auth/user';
import { RxferError } from '../errors/rxfer-error';
import { EXIT_OK, reportFailure } from './cli-failure';

export interface TokenFlags {
  readonly user: string;
  readonly role: string;
  readonly root?: string;
  readonly quota?: string;
  readonly json?: boolean;
}

/** A usage error (exit 2), as JSON with --json like every other error. */
const refuse = (message: string, flags: TokenFlags): number => reportFailure(new RxferError('USAGE', message), { json: flags.json === true });

/**
 * `rxfer token`: makes a fresh token and the config entry that accepts it. Only the hash goes into
 * the config; the token itself is printed once, for the user.
 */
export const runToken = async (flags: TokenFlags): Promise<number> => {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(flags.user)) {
    return refuse('the user name must be 1–64 letters, digits, "_" or "-"', flags);
  }
  if (!(ROLES as readonly string[]).includes(flags.role)) {
    return refuse(`the role must be one of ${ROLES.join(', ')}`, flags);
  }
  const quotaBytes = flags.quota === undefined ? undefined : Number(flags.quota);
  if (quotaBytes !== undefined && !(Number.isSafeInteger(quotaBytes) && quotaBytes >= 0)) {
    return refuse('--quota takes a whole number of bytes', flags);
  }
  const token = generateToken(flags.user);
  const entry = {
    name: flags.user,
    role: flags.role as Role,
    root: flags.root ?? flags.user,
    ...(quotaBytes !== undefined && { quotaBytes }),
    tokenHash: await hashToken(token),
  };
  if (flags.json) {
    process.stdout.write(JSON.stringify({ token, user: entry }) + '\n');
    return EXIT_OK;
  }
  process.stdout.write(
    `Token for ${entry.name} (shown once; hand it over privately, use it as RXFER_TOKEN):\n\n  ${token}\n\n` +
      `Add this to "auth": { "users": [ … ] } in the server's config:\n\n  ${JSON.stringify(entry)}\n`,
  );
  return EXIT_OK;
};
