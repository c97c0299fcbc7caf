import { ListingCursor } from '../../src/client/listing-cursor';
import type { ListingPage } from '../../src/client/list.request';
import { RxferError } from '../../src/errors/rxfer-error';

const entry = (name: string) => ({ name, size: name.length, mtimeMs: 0 });

/** Pages as a listing would give them, counting how many were read. */
const pagesOf = (pages: readonly string[][]) => {
  const read = { count: 0 };
  async function* generate(): AsyncGenerator<ListingPage> {
    for (const [i, names] of pages.entries()) {
      read.count++;
      yield { entries: names.map(entry), more: i < pages.length - 1 };
    }
  }
  return { pages: generate(), read };
};

describe('ListingCursor: the server listing read alongside a walk in the same order (issue 17)', () => {
  test('reads one page ahead at most (once half the page in hand is found), and finds names on any page', async () => {
    const { pages, read } = pagesOf([['a/1', 'a/2'], ['a/3', 'b'], ['c/x', 'c/y']]);
    const cursor = new ListingCursor(pages);
    expect(await cursor.find('a/0')).toBeUndefined();
    expect(read.count).toBe(1);
    expect(await cursor.find('a/1')).toMatchObject({ name: 'a/1' });
    expect(read.count).toBe(2);
    expect(await cursor.find('a/2x')).toBeUndefined();
    expect(read.count).toBe(2);
    expect(await cursor.find('b')).toMatchObject({ name: 'b' });
    expect(await cursor.find('c/y')).toMatchObject({ name: 'c/y' });
    expect(await cursor.find('d')).toBeUndefined();
    expect(read.count).toBe(3);
  });

  test('depth first: a folder`s files come before a name that goes on with a character below "/"', async () => {
    const { pages } = pagesOf([['a/x'], ['a-b', 'a.txt']]);
    const cursor = new ListingCursor(pages);
    expect(await cursor.find('a/x')).toBeDefined();
    expect(await cursor.find('a-b')).toBeDefined();
    expect(await cursor.find('a.txt')).toBeDefined();
  });

  test('a folder the server does not have lists nothing; other failures are the caller`s', async () => {
    async function* missing(): AsyncGenerator<ListingPage> {
      throw new RxferError('NOT_FOUND', 'no such folder');
    }
    await expect(new ListingCursor(missing()).find('x')).resolves.toBeUndefined();
    async function* lost(): AsyncGenerator<ListingPage> {
      throw new RxferError('CONNECTION_LOST', 'gone');
    }
    await expect(new ListingCursor(lost()).find('x')).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
  });
});
