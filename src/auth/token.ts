import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Tokens are `<user>.<secret>`: the user name travels with the secret so that one string (in
 * RXFER_TOKEN) is all a client needs. The server stores only an scrypt hash of the whole token:
 * a leaked config file does not give access.
 */
const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 } as const;
const PREFIX = 'scrypt';

export const TOKEN_HASH_PATTERN = /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/;

const derive = (token: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    scrypt(token, salt, SCRYPT.keyLength, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err ? reject(err) : resolve(key))),
  );

export const generateToken = (user: string): string => `${user}.${randomBytes(32).toString('base64url')}`;

/** The user a token claims to be; the secret part is checked by verifyToken. */
export const tokenUser = (token: string): string | undefined => {
  const dot = token.lastIndexOf('.');
  return dot > 0 ? token.slice(0, dot) : undefined;
};

export const hashToken = async (token: string): Promise<string> => {
  const salt = randomBytes(16);
  const key = await derive(token, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return [PREFIX, SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
};

/** Constant-time with respect to the token: the comparison never stops at the first differing byte. */
export const verifyToken = async (token: string, stored: string): Promise<boolean> => {
  const [prefix, n, r, p, salt, expected] = stored.split('$');
  if (prefix !== PREFIX || !salt || !expected) return false;
  const key = await derive(token, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  const want = Buffer.from(expected, 'base64url');
  return want.length === key.length && timingSafeEqual(key, want);
};
