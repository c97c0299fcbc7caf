import { compareBytes, compareSegments } from '../../../src/client/name-order';
import { inBatches } from '../../../src/client/in-batches';

/**
 * The two orders a paged listing may follow (src/client/name-order.ts), and the batches `put -r`
 * checks files in (src/client/in-batches.ts). Both are what the tree code's merge join and its
 * listing check stand on: a wrong sign here sends a file again, or refuses a good listing.
 */

const sign = (n: number) => Math.sign(n);

describe('compareSegments: path segment by segment, each by UTF-16 code units', () => {
  test('a folder`s files come before a name that goes on with a character below "/"', () => {
    expect(sign(compareSegments('a/x', 'a-b'))).toBe(-1);
    expect(sign(compareSegments('a-b', 'a/x'))).toBe(1);
    expect(sign(compareSegments('a/x', 'a.txt'))).toBe(-1);
  });

  test('a name comes before the names below it, and is equal only to itself', () => {
    expect(sign(compareSegments('a', 'a/b'))).toBe(-1);
    expect(sign(compareSegments('a/b', 'a'))).toBe(1);
    expect(compareSegments('a/b', 'a/b')).toBe(0);
    expect(compareSegments('a', 'a')).toBe(0);
  });

  test('the first segment that differs decides, whatever comes after it', () => {
    expect(sign(compareSegments('a/b/z', 'a/c'))).toBe(-1);
    expect(sign(compareSegments('b', 'a/z/z'))).toBe(1);
    expect(sign(compareSegments('x/a', 'x/b'))).toBe(-1);
  });

  test('characters beyond U+FFFF by code units (a surrogate sorts before U+FFFF)', () => {
    expect(sign(compareSegments('\u{10000}', '\uFFFF'))).toBe(-1);
  });
});

describe('compareBytes: UTF-8 bytes of the whole name', () => {
  test('"-" and "." (below "/") come before a folder`s files', () => {
    expect(sign(compareBytes('a-b', 'a/x'))).toBe(-1);
    expect(sign(compareBytes('a/x', 'a.txt'))).toBe(1);
  });

  test('characters beyond U+FFFF after U+FFFF, as code points', () => {
    expect(sign(compareBytes('\u{10000}', '\uFFFF'))).toBe(1);
    expect(compareBytes('é', 'é')).toBe(0);
  });
});

describe('inBatches: a source in arrays of up to `size`', () => {
  async function* numbers(count: number): AsyncGenerator<number> {
    for (let i = 0; i < count; i++) yield i;
  }
  const collect = async (count: number, size: number) => {
    const out: number[][] = [];
    for await (const batch of inBatches(numbers(count), size)) out.push(batch);
    return out;
  };

  test('full batches, then what is left', async () => {
    expect(await collect(5, 2)).toEqual([[0, 1], [2, 3], [4]]);
  });

  test('no empty batch after a full one, none for an empty source', async () => {
    expect(await collect(4, 2)).toEqual([[0, 1], [2, 3]]);
    expect(await collect(0, 3)).toEqual([]);
  });

  test('a batch is handed out as soon as it is full, before the source is read further', async () => {
    let read = 0;
    async function* counted(): AsyncGenerator<number> {
      for (let i = 0; i < 6; i++) {
        read++;
        yield i;
      }
    }
    const batches = inBatches(counted(), 3);
    expect((await batches.next()).value).toEqual([0, 1, 2]);
    expect(read).toBe(3);
  });
});
