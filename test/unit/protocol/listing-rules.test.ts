import { RxferError } from '../../../src/errors/rxfer-error';
import { formatListingLine, listingCursor, parseListing } from '../../../src/protocol/listing';

/**
 * Each rule of a LIST body (src/protocol/listing.ts), one small case each: the line format both ways,
 * folder lines only when asked for, and every malformed line refused (a client acts on the names it
 * reads: get -r creates files by them).
 */

const H = '0123456789abcdef'.repeat(4);

const errorOf = (body: string | Buffer, folders?: boolean): RxferError => {
  try {
    parseListing(Buffer.isBuffer(body) ? body : Buffer.from(body), folders === undefined ? undefined : { folders });
  } catch (err) {
    if (err instanceof RxferError) return err;
    throw err;
  }
  throw new Error(`${JSON.stringify(String(body))} was accepted`);
};

describe('formatListingLine', () => {
  test('a file: size, digest or -, whole milliseconds, the name to the end of the line', () => {
    expect(formatListingLine({ name: 'a b.txt', size: 12, digest: H, mtimeMs: 99.9 })).toBe(`12 ${H} 99 a b.txt\n`);
    expect(formatListingLine({ name: 'x', size: 0, mtimeMs: 1 })).toBe('0 - 1 x\n');
  });

  test('a folder: `- - <mtime> <name>/`, whatever its size says', () => {
    expect(formatListingLine({ name: 'd', size: 7, mtimeMs: 3.5, folder: true })).toBe('- - 3 d/\n');
    expect(listingCursor({ name: 'd', size: 0, mtimeMs: 0, folder: true })).toBe('d/');
    expect(listingCursor({ name: 'd', size: 0, mtimeMs: 0 })).toBe('d');
  });
});

describe('parseListing', () => {
  test('lines back to entries: a digest only where one was given, names with spaces', () => {
    const body = `12 ${H} 99 a b.txt\n0 - 1 x\n1234567 - 1700000000000 dir/long name \n`;
    expect(parseListing(Buffer.from(body))).toStrictEqual([
      { name: 'a b.txt', size: 12, mtimeMs: 99, digest: H },
      { name: 'x', size: 0, mtimeMs: 1 },
      { name: 'dir/long name ', size: 1234567, mtimeMs: 1700000000000 },
    ]);
  });

  test('an empty body is no entries', () => {
    expect(parseListing(Buffer.alloc(0))).toEqual([]);
    expect(parseListing(Buffer.alloc(0), { folders: true })).toEqual([]);
  });

  test('folder lines only when folders were asked for', () => {
    const body = Buffer.from('- - 12 a b/\n3 - 5 a b/c\n');
    expect(parseListing(body, { folders: true })).toStrictEqual([
      { name: 'a b', size: 0, mtimeMs: 12, folder: true },
      { name: 'a b/c', size: 3, mtimeMs: 5 },
    ]);
    expect(errorOf(body).code).toBe('PROTOCOL_VIOLATION');
    expect(errorOf(body, false).code).toBe('PROTOCOL_VIOLATION');
  });

  test('a body that does not end with a newline', () => {
    const err = errorOf('0 - 1 x');
    expect(err.code).toBe('PROTOCOL_VIOLATION');
    expect(err.message).toBe('listing does not end with a newline');
  });

  test('a name that is not valid UTF-8 is NAME_INVALID, not a replaced character', () => {
    const err = errorOf(Buffer.concat([Buffer.from('0 - 1 a'), Buffer.from([0xff]), Buffer.from('\n')]));
    expect(err.code).toBe('NAME_INVALID');
    expect(err.message).toBe('the server listed a name that is not valid UTF-8');
  });

  test('a valid multi-byte name is kept as it is', () => {
    expect(parseListing(Buffer.from('1 - 2 é/ü\n'))).toStrictEqual([{ name: 'é/ü', size: 1, mtimeMs: 2 }]);
  });

  test.each([
    ['a junk prefix', 'x1 - 2 a'],
    ['a size that is not a byte count', '01 - 2 a'],
    ['a size beyond 2^53', '9007199254740993 - 2 a'],
    ['an upper-case digest', `1 ${H.toUpperCase()} 2 a`],
    ['a short digest', `1 ${H.slice(1)} 2 a`],
    ['a missing mtime', '1 - a'],
    ['a non-numeric mtime', '1 - x a'],
    ['an empty line', ''],
    ['a folder line without its slash', '- - 5 a/b'],
    ['a folder line with a prefix', 'x- - 5 a/'],
    ['a folder line with a bad mtime', '- - x a/'],
  ])('%s: PROTOCOL_VIOLATION quoting the line', (_label, line) => {
    const err = errorOf(`0 - 1 ok\n${line}\n`, true);
    expect(err.code).toBe('PROTOCOL_VIOLATION');
    expect(err.message).toBe(`bad listing line ${JSON.stringify(line)}`);
  });

  test('the quoted line is cut to 200 characters', () => {
    const line = `x ${'y'.repeat(300)}`;
    expect(errorOf(`${line}\n`).message).toBe(`bad listing line ${JSON.stringify(line.slice(0, 200))}`);
  });

  test('an empty name and a carriage return reach the caller as names (it refuses them as NAME_INVALID)', () => {
    expect(parseListing(Buffer.from('1 - 2 \n1 - 2 a\rb\n'))).toStrictEqual([
      { name: '', size: 1, mtimeMs: 2 },
      { name: 'a\rb', size: 1, mtimeMs: 2 },
    ]);
    expect(parseListing(Buffer.from('- - 2 a\r/\n'), { folders: true })).toStrictEqual([{ name: 'a\r', size: 0, mtimeMs: 2, folder: true }]);
  });
});
