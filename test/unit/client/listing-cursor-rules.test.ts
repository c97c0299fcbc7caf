import { ListingCursor } from '../../../src/client/listing-cursor';
import type { ListingPage } from '../../../src/client/list.request';
import { RxferError } from '../../../src/errors/rxfer-error';

/**
 * put -r's merge join of its walk with the server's listing (src/client/listing-cursor.ts): the
 * edges test/client/listing-cursor.test.ts leaves out. The first page is asked for at start(), the
 * next once half of the page in hand has been found (so the server builds it while the walk goes
 * on), never more than one ahead; a name on a page boundary is still found; an empty page moves nothing.
 */

const entry = (name: string) => ({ name, size: name.length, mtimeMs: 0 });

const pagesOf = (pages: readonly (readonly string[])[], after?: () => never) => {
  const read = { count: 0 };
  async function* generate(): AsyncGenerator<ListingPage> {
    for (const [i, names] of pages.entries()) {
      read.count++;
      yield { entries: names.map(entry), more: after !== undefined || i < pages.length - 1 };
    }
    if (after) after();
  }
  return { pages: generate(), read };
};

test('the last name of a page is found on it, without reading the next page', async () => {
  const { pages, read } = pagesOf([['a', 'b', 'c', 'd'], ['e']]);
  const cursor = new ListingCursor(pages);
  expect(await cursor.find('d')).toMatchObject({ name: 'd', size: 1 });
  expect(read.count).toBe(1);
  expect(await cursor.find('e')).toMatchObject({ name: 'e' });
});

test('start() asks for the first page at once, before any name', async () => {
  const { pages, read } = pagesOf([['m']]);
  const cursor = new ListingCursor(pages).start();
  await Promise.resolve();
  expect(read.count).toBe(1);
  expect(await cursor.find('m')).toBeDefined();
  expect(read.count).toBe(1);
});

test('start() asks once: again, or after the first page was taken, it asks for nothing more', async () => {
  const { pages, read } = pagesOf([['a', 'b', 'c', 'd'], ['e']]);
  const cursor = new ListingCursor(pages).start().start();
  await new Promise((resolve) => setImmediate(resolve));
  expect(read.count).toBe(1);
  expect(await cursor.find('a')).toMatchObject({ name: 'a' });
  cursor.start();
  await new Promise((resolve) => setImmediate(resolve));
  expect(read.count).toBe(1);
  // The page in hand is still the first: its names are found on it.
  expect(await cursor.find('d')).toMatchObject({ name: 'd' });
  expect(await cursor.find('e')).toMatchObject({ name: 'e' });
});

test('the next page is asked for once half of the page in hand is found, one page ahead at most', async () => {
  const { pages, read } = pagesOf([['a', 'b', 'c', 'd'], ['e', 'f'], ['g', 'h']]);
  const cursor = new ListingCursor(pages).start();
  expect(await cursor.find('a')).toBeDefined();
  await new Promise((resolve) => setImmediate(resolve));
  expect(read.count).toBe(1);
  expect(await cursor.find('b')).toBeDefined();
  await new Promise((resolve) => setImmediate(resolve));
  // Half of ['a'..'d'] found: the second page is on its way; the third is not asked for yet.
  expect(read.count).toBe(2);
  expect(await cursor.find('c')).toBeDefined();
  expect(await cursor.find('d')).toBeDefined();
  await new Promise((resolve) => setImmediate(resolve));
  expect(read.count).toBe(2);
  expect(await cursor.find('e')).toMatchObject({ name: 'e' });
  await new Promise((resolve) => setImmediate(resolve));
  // One of two found on the second page: the third is asked for.
  expect(read.count).toBe(3);
  expect(await cursor.find('h')).toMatchObject({ name: 'h' });
  expect(await cursor.find('z')).toBeUndefined();
});

test('names not on the page in hand ask for nothing ahead (a small tree into a big folder)', async () => {
  const { pages, read } = pagesOf([['a', 'b', 'c', 'd'], ['x', 'y']]);
  const cursor = new ListingCursor(pages).start();
  expect(await cursor.find('a0')).toBeUndefined();
  expect(await cursor.find('a1')).toBeUndefined();
  expect(await cursor.find('a2')).toBeUndefined();
  await new Promise((resolve) => setImmediate(resolve));
  expect(read.count).toBe(1);
});

test('a page asked for ahead that fails is the caller`s only when the walk reaches it, and an abandoned one ends nothing', async () => {
  const { pages } = pagesOf([['a', 'b']], () => {
    throw new RxferError('CONNECTION_LOST', 'gone');
  });
  const cursor = new ListingCursor(pages).start();
  expect(await cursor.find('a')).toBeDefined();
  // The failing page was asked for ahead (half found); nothing is reported until the walk needs it.
  await new Promise((resolve) => setImmediate(resolve));
  expect(await cursor.find('b')).toBeDefined();
  await expect(cursor.find('c')).rejects.toMatchObject({ code: 'CONNECTION_LOST' });

  // Given up at once: its failed first page must not be an unhandled rejection (jest fails the run on one).
  async function* fails(): AsyncGenerator<ListingPage> {
    throw new RxferError('CONNECTION_LOST', 'gone');
  }
  new ListingCursor(fails()).start();
  await new Promise((resolve) => setImmediate(resolve));
});

test('without start(), no page is read before the first name is asked for; the first is read then', async () => {
  const { pages, read } = pagesOf([['m']]);
  const cursor = new ListingCursor(pages);
  expect(read.count).toBe(0);
  expect(await cursor.find('a')).toBeUndefined();
  expect(read.count).toBe(1);
  expect(await cursor.find('m')).toBeDefined();
});

test('past the last page: nothing found, nothing more read, and it does not hang', async () => {
  const { pages, read } = pagesOf([['a']]);
  const cursor = new ListingCursor(pages);
  expect(await cursor.find('a')).toBeDefined();
  expect(await cursor.find('z')).toBeUndefined();
  expect(await cursor.find('zz')).toBeUndefined();
  expect(read.count).toBe(1);
});

test('a listing that ends though its last page said more: the names after it are not there', async () => {
  async function* endsEarly(): AsyncGenerator<ListingPage> {
    yield { entries: [entry('a')], more: true };
  }
  const cursor = new ListingCursor(endsEarly());
  expect(await cursor.find('a')).toBeDefined();
  expect(await cursor.find('b')).toBeUndefined();
  expect(await cursor.find('c')).toBeUndefined();
});

test('an empty page moves nothing: the next page is read for any name', async () => {
  const { pages } = pagesOf([[], ['A', 'b']]);
  const cursor = new ListingCursor(pages);
  expect(await cursor.find('A')).toMatchObject({ name: 'A' });
  expect(await cursor.find('b')).toMatchObject({ name: 'b' });
});

test('an empty page after a full one keeps its place', async () => {
  const { pages } = pagesOf([['B'], [], ['a']]);
  const cursor = new ListingCursor(pages);
  expect(await cursor.find('B')).toBeDefined();
  expect(await cursor.find('a')).toMatchObject({ name: 'a' });
});

test('only a first page NOT_FOUND means no folder; after a page it is the caller`s, as is any other first failure', async () => {
  const { pages } = pagesOf([['a']], () => {
    throw new RxferError('NOT_FOUND', 'gone meanwhile');
  });
  const cursor = new ListingCursor(pages);
  expect(await cursor.find('a')).toBeDefined();
  await expect(cursor.find('b')).rejects.toMatchObject({ code: 'NOT_FOUND' });

  async function* plainError(): AsyncGenerator<ListingPage> {
    throw Object.assign(new Error('not an RxferError'), { code: 'NOT_FOUND' });
  }
  await expect(new ListingCursor(plainError()).find('x')).rejects.toThrow('not an RxferError');
  async function* otherCode(): AsyncGenerator<ListingPage> {
    throw new RxferError('FORBIDDEN', 'no');
  }
  await expect(new ListingCursor(otherCode()).find('x')).rejects.toMatchObject({ code: 'FORBIDDEN' });
});

test('a folder that is not there lists nothing, and is not asked for again', async () => {
  let asked = 0;
  async function* missing(): AsyncGenerator<ListingPage> {
    asked++;
    throw new RxferError('NOT_FOUND', 'no such folder');
  }
  const cursor = new ListingCursor(missing());
  await expect(cursor.find('a')).resolves.toBeUndefined();
  await expect(cursor.find('b')).resolves.toBeUndefined();
  expect(asked).toBe(1);
});
