import { parseConfig } from '../../src/config/load-config';
import { UserDirectory } from '../../src/auth/user-directory';
import { generateToken, hashToken, tokenUser, verifyToken } from '../../src/auth/token';

/**
 * Promise (README, Security model): a token proves exactly the user it names, whatever the order of
 * the users in the config; a stored hash that is not one of ours never matches (and never throws);
 * anonymous access is what the config says. Written to kill the mutants Stryker left in
 * src/auth/token.ts and user-directory.ts (test/MUTATION.md).
 */
describe('UserDirectory and tokens', () => {
  let alice: string;
  let bob: string;
  let users: { name: string; tokenHash: string; role: 'read' | 'write'; root: string; quotaBytes?: number }[];

  beforeAll(async () => {
    [alice, bob] = [generateToken('alice'), generateToken('bob')];
    users = [
      { name: 'alice', tokenHash: await hashToken(alice), role: 'write', root: 'alice' },
      { name: 'bob', tokenHash: await hashToken(bob), role: 'read', root: 'bob', quotaBytes: 1000 },
    ];
  });

  test('each token proves its own user, first or second in the list; the quota comes along only where set', async () => {
    const directory = new UserDirectory(parseConfig({ auth: { users } }));
    // Strict: no `quotaBytes: undefined` key where none is set.
    await expect(directory.authenticate(alice)).resolves.toStrictEqual({ name: 'alice', role: 'write', root: 'alice' });
    await expect(directory.authenticate(bob)).resolves.toEqual({ name: 'bob', role: 'read', root: 'bob', quotaBytes: 1000 });
    const reversed = new UserDirectory(parseConfig({ auth: { users: [...users].reverse() } }));
    await expect(reversed.authenticate(alice)).resolves.toMatchObject({ name: 'alice' });
    // Bob's secret under Alice's name proves nothing.
    await expect(directory.authenticate(`alice.${bob.slice(bob.indexOf('.') + 1)}`)).resolves.toBeUndefined();
  });

  test('anonymous: none with users (auth required), the configured role and root otherwise', () => {
    const withUsers = new UserDirectory(parseConfig({ auth: { users } }));
    expect(withUsers.anonymous()).toBeUndefined();
    expect(withUsers.authRequired).toBe(true);
    const readOnly = new UserDirectory(parseConfig({ auth: { users, anonymous: 'read', anonymousRoot: 'public' } }));
    expect(readOnly.anonymous()).toEqual({ name: 'anonymous', role: 'read', root: 'public' });
    expect(readOnly.authRequired).toBe(false);
    const open = new UserDirectory(parseConfig({}));
    expect(open.anonymous()).toEqual({ name: 'anonymous', role: 'write', root: '' });
    expect(open.authRequired).toBe(false);
  });

  test('tokenUser: the part before the last dot, none without one', () => {
    expect(tokenUser('alice.secret')).toBe('alice');
    expect(tokenUser('a.b.secret')).toBe('a.b');
    expect(tokenUser('secret')).toBeUndefined();
    expect(tokenUser('.secret')).toBeUndefined();
  });

  test.each([
    ['not a hash at all', 'garbage'],
    ['another scheme', 'bcrypt$16384$8$1$AAAA$AAAA'],
    ['no salt', 'scrypt$16384$8$1$$AAAA'],
    ['no key', 'scrypt$16384$8$1$AAAA$'],
  ])('a stored hash that is %s never matches', async (_what, stored) => {
    await expect(verifyToken(alice, stored)).resolves.toBe(false);
  });

  test('a stored key of another length: false, not an exception (timingSafeEqual would throw)', async () => {
    const good = users[0].tokenHash;
    const short = good.slice(0, good.lastIndexOf('$') + 1) + 'AAAA';
    await expect(verifyToken(alice, short)).resolves.toBe(false);
    await expect(verifyToken(alice, good)).resolves.toBe(true);
  });
});
