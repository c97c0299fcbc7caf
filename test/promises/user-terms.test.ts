import { RxferError } from '../../src/errors/rxfer-error';
import { User, allows, inUserTerms, scopedName } from '../../src/auth/user';

/**
 * Promise (PROTOCOL.md, AUTH): names are the user's own, relative to their root, both ways: what
 * they send is put under their root, and what the server says back never shows the root (which
 * would tell a user where on the server they live). Also each role's permissions.
 */
const user = (root: string, role: User['role'] = 'write'): User => ({ name: 'u', role, root });

describe("a user's names, both ways", () => {
  test('scopedName: under the root, or as sent for a root of ""', () => {
    expect(scopedName(user('alice'), 'docs/a.txt')).toBe('alice/docs/a.txt');
    expect(scopedName(user(''), 'docs/a.txt')).toBe('docs/a.txt');
  });

  test('inUserTerms: the root is taken out of messages; nothing else changes', () => {
    const storage = new RxferError('NOT_FOUND', 'alice/docs/a.txt does not exist; alice/docs is empty', { n: 1 });
    const mine = inUserTerms(storage, user('alice'));
    expect(mine.message).toBe('docs/a.txt does not exist; docs is empty');
    expect(mine.code).toBe('NOT_FOUND');
    expect(mine.detail).toEqual({ n: 1 });
  });

  test('inUserTerms leaves messages alone for a root of "", no user, or a message without the root', () => {
    const withSlashes = new RxferError('NOT_FOUND', 'docs/a.txt does not exist');
    expect(inUserTerms(withSlashes, user(''))).toBe(withSlashes);
    expect(inUserTerms(withSlashes, undefined)).toBe(withSlashes);
    expect(inUserTerms(withSlashes, user('bob'))).toBe(withSlashes);
  });

  test.each([
    ['read', false],
    ['write', true],
    ['admin', true],
  ] as const)('%s: reads, and writes: %s', (role, writes) => {
    expect(allows(user('x', role), 'read')).toBe(true);
    expect(allows(user('x', role), 'write')).toBe(writes);
  });
});
