import { join, resolve } from 'node:path';
import { ListedNameCheck } from '../../../src/client/listed-names';
import type { ListingEntry } from '../../../src/protocol/listing';

/**
 * get -r's check of a server's listing, page by page, before anything is written
 * (src/client/listed-names.ts). The server is not trusted: a name outside the target, one listed
 * twice, one both a file and a folder, or a paged listing that follows no order is refused, with a
 * code a script can match on; a good listing of any shape gives each entry its local path.
 */

const LOCAL = resolve('/tmp/rxfer-listed-names-target');
const entry = (name: string): ListingEntry => ({ name, size: 1, mtimeMs: 0 });
const page = (names: readonly string[], more: boolean) => ({ entries: names.map(entry), more });

/** Runs `pages` (names, with `more` on all but the last) through one check: the paths, or the error. */
const check = (pages: readonly (readonly string[])[], folder = 'dir') => {
  const checker = new ListedNameCheck(LOCAL, folder);
  const paths: string[] = [];
  try {
    for (const [i, listed] of pages.entries()) paths.push(...checker.page(page(listed, i < pages.length - 1)));
    return { paths, error: undefined };
  } catch (error) {
    return { paths, error: error as Error & { code?: string } };
  }
};

describe('ListedNameCheck: each name on its own', () => {
  test('gives each entry its path under the target, in listing order', () => {
    expect(check([['dir/b', 'dir/a/x']]).paths).toEqual([join(LOCAL, 'b'), join(LOCAL, 'a', 'x')]);
    expect(check([['top', 'x/y']], '').paths).toEqual([join(LOCAL, 'top'), join(LOCAL, 'x', 'y')]);
  });

  test('a name outside the folder asked for, or one the rules refuse: NAME_INVALID', () => {
    expect(check([['other/a']]).error).toMatchObject({ code: 'NAME_INVALID' });
    expect(check([['dir/../escape']]).error).toMatchObject({ code: 'NAME_INVALID' });
  });
});

describe('ListedNameCheck: within a page, in any order', () => {
  test('a name listed twice: PROTOCOL_VIOLATION that names it', () => {
    const { error } = check([['dir/a', 'dir/a']]);
    expect(error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(error?.message).toMatch(/dir\/a.* twice/);
  });

  test('a file and a name below it, the file listed after: NAME_INVALID, naming both', () => {
    const { error } = check([['dir/a/b', 'dir/a']]);
    expect(error).toMatchObject({ code: 'NAME_INVALID' });
    expect(error?.message).toBe('the server listed dir/a as a file and dir/a/b below it: both cannot be made here');
  });

  test('a file several levels above a name, at any of its slashes', () => {
    expect(check([['dir/x/y/z', 'dir/x']]).error).toMatchObject({ code: 'NAME_INVALID' });
    expect(check([['dir/x/y/z', 'dir/x/y']]).error).toMatchObject({ code: 'NAME_INVALID', message: expect.stringContaining('dir/x/y as a file') });
    expect(check([['dir/x/y/z/w', 'dir/x/y/z']]).error).toMatchObject({ code: 'NAME_INVALID' });
  });

  test('the first name of a listing has no file above it, whatever it is called', () => {
    expect(check([['Stryker was here/x', 'Stryker was here/y']], '').error).toBeUndefined();
  });

  test('names that share a beginning but not a folder are not both a file and a folder', () => {
    expect(check([['dir/a', 'dir/ab/c', 'dir/a-b']]).error).toBeUndefined();
    expect(check([['dir/a.txt', 'dir/a/x']]).error).toBeUndefined();
  });

  test('one page, the whole listing: any order is taken (a non-paging server sorts as it likes)', () => {
    expect(check([['dir/b', 'dir/a', 'dir/c/d']]).error).toBeUndefined();
  });
});

describe('ListedNameCheck: across pages, by the order of names', () => {
  test('a paged listing in segment order, or in byte order, is taken', () => {
    // Segment order: a folder's files before "a-b"; byte order: "a-b" before them.
    expect(check([['dir/a/x'], ['dir/a-b', 'dir/a.txt']]).error).toBeUndefined();
    expect(check([['dir/a-b'], ['dir/a.txt', 'dir/a/x']]).error).toBeUndefined();
  });

  test('a name listed again on a later page: PROTOCOL_VIOLATION', () => {
    const { error } = check([['dir/a', 'dir/b'], ['dir/b', 'dir/c']]);
    expect(error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    // Named: the first name listed out of order, not the last one of its page.
    expect(error?.message).toBe('the server listed dir/b out of its order (or twice): a paged listing must follow one order of names');
  });

  test('a page that goes back: PROTOCOL_VIOLATION, even on the last page', () => {
    expect(check([['dir/b'], ['dir/a']]).error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(check([['dir/a', 'dir/c'], ['dir/d'], ['dir/b', 'dir/e']]).error).toMatchObject({ code: 'PROTOCOL_VIOLATION', message: expect.stringContaining('listed dir/b out of its order') });
  });

  test('a first page out of order that says more is refused at once', () => {
    const names = new ListedNameCheck(LOCAL, 'dir');
    expect(() => names.page(page(['dir/b', 'dir/a'], true))).toThrow(expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }));
  });

  test('keeping one order only: segment order, then a byte-order step, is refused', () => {
    // dir/a/x < dir/a-b by segments only; dir/a-b < dir/a.txt by both; then dir/a/y < dir/a.txt by bytes only.
    expect(check([['dir/a/x'], ['dir/a-b'], ['dir/a/y']]).error).toMatchObject({ code: 'PROTOCOL_VIOLATION', message: expect.stringContaining('listed dir/a/y out of its order') });
    expect(check([['dir/a-b'], ['dir/a/x'], ['dir/a.txt']]).error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('a file on one page and a name below it on the next: NAME_INVALID', () => {
    const { error } = check([['dir/a'], ['dir/a/b']]);
    expect(error).toMatchObject({ code: 'NAME_INVALID' });
    expect(error?.message).toMatch(/dir\/a.* as a file and .*dir\/a\/b/);
  });

  test('…also when other names that start with it came between (byte order)', () => {
    expect(check([['dir/a'], ['dir/a-b'], ['dir/a/x']]).error).toMatchObject({ code: 'NAME_INVALID' });
    expect(check([['dir/a'], ['dir/a-b', 'dir/a-c'], ['dir/a/x']]).error).toMatchObject({ code: 'NAME_INVALID' });
  });

  test('…and several levels up', () => {
    expect(check([['dir/x'], ['dir/x-1'], ['dir/x/y/z']]).error).toMatchObject({ code: 'NAME_INVALID' });
  });

  test('a name that only starts with an earlier file`s name is no file below it', () => {
    expect(check([['dir/a'], ['dir/ab'], ['dir/ab/c']]).error).toMatchObject({ code: 'NAME_INVALID' });
    expect(check([['dir/a'], ['dir/ab', 'dir/b/c']]).error).toBeUndefined();
    expect(check([['dir/a'], ['dir/ab/c']]).error).toBeUndefined();
  });

  test('holds the chain of names that may still have files below them, not every name (issue 17)', () => {
    const names = new ListedNameCheck(LOCAL, 'dir');
    const name = (i: number) => `dir/n${String(i).padStart(3, '0')}`;
    for (let i = 0; i < 100; i += 2) names.page(page([name(i), name(i + 1)], true));
    const held = (names as unknown as { open: string[] }).open;
    expect(held.length).toBeLessThanOrEqual(1);
  });
});
