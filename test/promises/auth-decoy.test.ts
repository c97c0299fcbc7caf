import crypto = require('node:crypto');
import { parseConfig } from '../../src/config/load-config';
import { UserDirectory } from '../../src/auth/user-directory';
import { generateToken, hashToken } from '../../src/auth/token';

/**
 * Promise (src/auth/user-directory.ts, README security): a failed AUTH costs one scrypt whether
 * the user exists or not, so the time to fail does not tell which user names exist; and the
 * comparison is constant-time (timingSafeEqual). Timing itself is not asserted (a noisy machine);
 * what is checked is that the same work is done: exactly one scrypt per AUTH, hit or miss, and
 * the digest comparison goes through timingSafeEqual.
 */
describe('AUTH does the same work for unknown users (the decoy) as for known ones', () => {
  let directory: UserDirectory;
  let token: string;
  const scrypts: Buffer[] = [];
  let compares = 0;
  const realScrypt = crypto.scrypt;
  const realEqual = crypto.timingSafeEqual;

  beforeAll(async () => {
    token = generateToken('alice');
    directory = new UserDirectory(parseConfig({ auth: { users: [{ name: 'alice', tokenHash: await hashToken(token), role: 'write', root: 'alice' }] } }));
    (crypto as { scrypt: unknown }).scrypt = (password: crypto.BinaryLike, salt: crypto.BinaryLike, keylen: number, options: crypto.ScryptOptions, callback: (err: Error | null, key: Buffer) => void) => {
      scrypts.push(Buffer.from(salt as Buffer));
      return realScrypt(password, salt, keylen, options, callback);
    };
    (crypto as { timingSafeEqual: unknown }).timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compares++;
      return realEqual(a, b);
    };
  });
  afterAll(() => {
    (crypto as { scrypt: unknown }).scrypt = realScrypt;
    (crypto as { timingSafeEqual: unknown }).timingSafeEqual = realEqual;
  });
  beforeEach(() => {
    scrypts.length = 0;
    compares = 0;
  });

  test('the right token: one scrypt, one constant-time comparison, the user', async () => {
    await expect(directory.authenticate(token)).resolves.toEqual({ name: 'alice', role: 'write', root: 'alice' });
    expect(scrypts).toHaveLength(1);
    expect(compares).toBe(1);
  });

  test.each([
    ['a wrong secret for a known user', () => 'alice.' + 'A'.repeat(43)],
    ['an unknown user', () => `mallory.${token.slice(token.indexOf('.') + 1)}`],
    ['no user part at all', () => 'A'.repeat(43)],
  ])('%s: refused after exactly one scrypt and one constant-time comparison', async (_what, make) => {
    await expect(directory.authenticate(make())).resolves.toBeUndefined();
    expect(scrypts).toHaveLength(1);
    expect(compares).toBe(1);
  });

  test('an unknown user is checked against the decoy hash, with the full scrypt cost (N=16384)', async () => {
    const seen: crypto.ScryptOptions[] = [];
    const wrapped = crypto.scrypt;
    (crypto as { scrypt: unknown }).scrypt = (p: crypto.BinaryLike, s: crypto.BinaryLike, k: number, options: crypto.ScryptOptions, cb: (err: Error | null, key: Buffer) => void) => {
      seen.push(options);
      return (wrapped as unknown as (...args: unknown[]) => void)(p, s, k, options, cb);
    };
    try {
      await directory.authenticate('mallory.secret');
    } finally {
      (crypto as { scrypt: unknown }).scrypt = wrapped;
    }
    expect(seen).toEqual([expect.objectContaining({ N: 16384, r: 8, p: 1 })]);
  });
});
