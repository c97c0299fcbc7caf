import { RxferError } from '../../src/errors/rxfer-error';
import { MAX_NAME_BYTES } from '../../src/protocol/protocol-limits';
import { parseRemoteName, printableName } from '../../src/protocol/remote-name';

/**
 * Every rule of PROTOCOL.md's *Names* refuses with its own reason. Several rules overlap (".." also
 * ends in a dot, "/abs" also has an empty segment), so a test that only expects NAME_INVALID
 * cannot tell a rule that works from one that was removed: mutation testing showed exactly that
 * (test/MUTATION.md). Here each name must be refused for the reason of the rule it breaks.
 */
const reasonFor = (raw: string | Buffer): string => {
  try {
    parseRemoteName(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    expect((err as RxferError).code).toBe('NAME_INVALID');
    return String((err as RxferError).detail?.reason);
  }
  throw new Error(`${String(raw)} was accepted`);
};

describe('each name rule refuses for its own reason', () => {
  test.each([
    ['', 'empty name'],
    [Buffer.from([0x61, 0xff]), 'not valid UTF-8'],
    ['a\u0001b', 'control characters are not allowed'],
    ['e\u0301', 'not in Unicode NFC; send the name normalised to NFC (String.prototype.normalize("NFC"))'],
    ['a\\b', 'backslashes are not allowed'],
    ['/etc/passwd', 'absolute paths are not allowed'],
    ['/', 'absolute paths are not allowed'],
    ['c:x', 'drive letters are not allowed'],
    ['a//b', 'empty path segment'],
    ['a/', 'empty path segment'],
    ['.', '"." segments are not allowed'],
    ['..', '".." segments are not allowed'],
    ['a/../b', '".." segments are not allowed'],
    ['a/./b', '"." segments are not allowed'],
    ['x/nul.txt', 'reserved device name'],
    ['x.', 'a segment ends in a dot or a space'],
    ['x ', 'a segment ends in a dot or a space'],
    ['.rxfer-part-1', 'segments starting with .rxfer are reserved'],
    ['d/.RXFER', 'segments starting with .rxfer are reserved'],
  ])('%j: %s', (raw, reason) => {
    expect(reasonFor(raw)).toBe(reason);
  });

  test(`a name over ${MAX_NAME_BYTES} bytes: its own reason, and the message quotes at most 300 characters of it`, () => {
    const long = 'a/'.repeat(MAX_NAME_BYTES);
    expect(reasonFor(long)).toBe(`longer than ${MAX_NAME_BYTES} bytes`);
    try {
      parseRemoteName(long);
    } catch (err) {
      expect((err as Error).message).toBe(`${JSON.stringify(long.slice(0, 300))}: longer than ${MAX_NAME_BYTES} bytes`);
    }
  });

  test('a string and its UTF-8 bytes are the same name', () => {
    expect(parseRemoteName('dir/é.txt')).toBe('dir/é.txt');
    expect(parseRemoteName(Buffer.from('dir/é.txt', 'utf8'))).toBe('dir/é.txt');
  });
});

describe('printableName escapes what could make a name look like another', () => {
  test.each([
    ['a\u0000b', 'a\\x00b'],
    ['a\u001bb', 'a\\x1bb'],
    ['a\u009fb', 'a\\x9fb'],
    ['evil\u202etxt.exe', 'evil\\u202etxt.exe'],
    ['a\u2028b', 'a\\u2028b'],
    ['a\u200eb', 'a\\u200eb'],
    ['plain é ✓', 'plain é ✓'],
  ])('%j → %s', (name, shown) => {
    expect(printableName(name)).toBe(shown);
  });
});
