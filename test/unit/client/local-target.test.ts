import { isAbsolute, resolve } from 'node:path';
import fc from 'fast-check';
import { localPathFor, resolvedPath } from '../../../src/client/local-target';
import { parseRemoteName } from '../../../src/protocol/remote-name';

/**
 * Where get -r puts a listed file (src/client/local-target.ts). Both functions skip `path.resolve`
 * where its answer is known (issue 20: it was ≈ 15 % of the client's CPU for 2,000 small files);
 * these properties hold them to exactly what `path.resolve` says, for any input.
 */

// Paths made of the characters that matter to resolving: separators, dots, and a little else.
// Line terminators too: a regular expression's "." does not match them (hostile pass f).
const pathLike = fc.string({ unit: fc.constantFrom('/', '.', 'a', 'b', ' ', '\\', '\n', '\r', '\u2028', '\u2029'), maxLength: 24 });

describe('resolvedPath', () => {
  test('is path.resolve, for any path (relative, absolute, with empty, "." or ".." segments, trailing "/")', () => {
    fc.assert(
      fc.property(pathLike, (path) => {
        expect(resolvedPath(path)).toBe(resolve(path));
      }),
      { numRuns: 5000 },
    );
  });

  test('paths it must not take as resolved', () => {
    for (const path of ['/a//b', '/a/./b', '/a/../b', '/a/.', '/a/..', '/a/', '//', '/.', '/..', 'a/b', '', '.', '/x\u2028/', '/x\n/', '/\n/'])
      expect(resolvedPath(path)).toBe(resolve(path));
    // Already resolved: returned as given (dots inside a segment are no "." segment).
    for (const path of ['/', '/a', '/a/b.c', '/a/.b', '/a/..b', '/a/b..', '/ a/b '])
      expect(resolvedPath(path)).toBe(path);
  });
});

describe('localPathFor', () => {
  // A segment that parseRemoteName may accept or refuse.
  const segment = fc.string({ unit: fc.constantFrom('a', 'b', '.', ' ', '-', 'é', '\\', ':'), minLength: 0, maxLength: 6 });
  const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));

  test('a name the rules accept lands where path.resolve puts it, inside the target; others are NAME_INVALID', () => {
    fc.assert(
      fc.property(fc.constantFrom('/tmp/t', '/tmp/t/', '/', 't', './t/../u', '/tmp//t'), fc.constantFrom('', 'dir', 'dir/', 'dir//', 'dir/sub'), name, (localDir, folder, listed) => {
        const full = folder === '' ? listed : `${folder.replace(/\/+$/, '')}/${listed}`;
        let valid = true;
        try {
          parseRemoteName(full);
        } catch {
          valid = false;
        }
        let result: string | Error;
        try {
          result = localPathFor(localDir, folder, full);
        } catch (err) {
          result = err as Error;
        }
        if (!valid) {
          expect(result).toMatchObject({ code: 'NAME_INVALID', message: expect.stringMatching(/^the server listed a name this client refuses: ".*": /) });
          return;
        }
        const root = resolve(localDir);
        expect(result).toBe(resolve(root, ...listed.split('/')));
        expect(isAbsolute(result as string)).toBe(true);
        expect((result as string).startsWith(root === '/' ? '/' : `${root}/`)).toBe(true);
        // The root given by a caller that resolved it once gives the same path.
        expect(localPathFor(localDir, folder, full, root)).toBe(result);
      }),
      { numRuns: 3000 },
    );
  });

  test('a name outside the folder asked for: NAME_INVALID naming both', () => {
    expect(() => localPathFor('/tmp/t', 'dir/sub', 'dir/other/f')).toThrow(expect.objectContaining({ code: 'NAME_INVALID', message: 'the server listed dir/other/f, which is not under dir/sub' }));
    expect(() => localPathFor('/tmp/t', 'dir//', 'dirx/f')).toThrow(expect.objectContaining({ code: 'NAME_INVALID', message: 'the server listed dirx/f, which is not under dir' }));
    // The folder itself is no file under it.
    expect(() => localPathFor('/tmp/t', 'dir', 'dir')).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
  });
});
