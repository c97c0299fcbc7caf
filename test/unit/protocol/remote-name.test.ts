import { RxferError } from '../../../src/errors/rxfer-error';
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from '../../../src/protocol/protocol-limits';
import { parseRemoteName, printableName } from '../../../src/protocol/remote-name';

const refusal = (raw: string | Buffer): RxferError => {
  try {
    parseRemoteName(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    return err as RxferError;
  }
  throw new Error(`${JSON.stringify(raw.toString())} was accepted`);
};

/** A name of exactly `bytes` bytes: full-length segments joined by '/'. */
const nameOfBytes = (bytes: number): string => {
  const segments: string[] = [];
  let used = 0;
  for (;;) {
    const separator = segments.length > 0 ? 1 : 0;
    const left = bytes - used - separator;
    if (left <= MAX_SEGMENT_BYTES) {
      segments.push('s'.repeat(left));
      break;
    }
    segments.push('s'.repeat(200));
    used += separator + 200;
  }
  const name = segments.join('/');
  expect(Buffer.byteLength(name)).toBe(bytes);
  return name;
};

describe('parseRemoteName: accepted', () => {
  test.each([
    'a',
    'notes.txt',
    'résumé 日本.txt',
    '🦀 crab.bin',
    'with spaces/in every/segment.txt',
    'a/b/c.bin',
    'photos/2024/cat.jpg',
    '.hidden',
    'a..b',
    '..a',
    ' leading space',
    'rxfer.txt',
    'file.rxfer',
    'x.rxfer-part-1',
    'CONSOLE.txt',
    'con_x',
    'COM10',
    'LPT',
    'é'.repeat(127),
    '日'.repeat(85),
  ])('%j', (name) => {
    expect(parseRemoteName(name)).toBe(name);
    expect(parseRemoteName(Buffer.from(name))).toBe(name);
  });

  test(`a segment of exactly ${MAX_SEGMENT_BYTES} bytes and a name of exactly ${MAX_NAME_BYTES} bytes`, () => {
    const segment = 'x'.repeat(MAX_SEGMENT_BYTES);
    expect(parseRemoteName(segment)).toBe(segment);
    const name = nameOfBytes(MAX_NAME_BYTES);
    expect(parseRemoteName(name)).toBe(name);
  });
});

describe('parseRemoteName: NAME_INVALID', () => {
  const cases: Array<[string, string | Buffer]> = [
    ['empty', ''],
    ['".."', '..'],
    ['"." ', '.'],
    ['a ".." segment inside', 'a/../b'],
    ['a trailing ".." segment', 'a/..'],
    ['a leading "." segment', './a'],
    ['a trailing "." segment', 'a/.'],
    ['absolute', '/etc/passwd'],
    ['absolute, root only', '/'],
    ['a backslash', 'a\\b'],
    ['a Windows path', '..\\..\\windows\\win.ini'],
    ['a drive letter alone', 'C:'],
    ['a drive letter with a path', 'c:/windows/x'],
    ['a drive-relative path', 'D:file.txt'],
    ['NUL', 'a\0b'],
    ['a newline', 'a\nb'],
    ['a carriage return', 'a\rb'],
    ['a tab', 'a\tb'],
    ['ESC (an ANSI colour sequence)', '\u001b[31mred'],
    ['ESC (an ANSI title sequence)', 'x\u001b]0;pwned\u0007'],
    ['DEL', 'a\u007fb'],
    ['C1 NEL', 'a\u0085b'],
    ['C1 CSI', 'a\u009b31m'],
    ['invalid UTF-8: a lone 0xff', Buffer.from([0x61, 0xff, 0x62])],
    ['invalid UTF-8: a truncated sequence', Buffer.from([0x61, 0xc3])],
    ['invalid UTF-8: an overlong "/"', Buffer.from([0x61, 0xc0, 0xaf, 0x62])],
    ['invalid UTF-8: an encoded surrogate', Buffer.from([0x61, 0xed, 0xa0, 0x80])],
    ['invalid UTF-8: a continuation byte alone', Buffer.from([0x80])],
    ['CON', 'CON'],
    ['con (lower case)', 'con'],
    ['PRN', 'PRN'],
    ['AUX', 'aux'],
    ['NUL', 'NUL'],
    ['nul.txt', 'nul.txt'],
    ['COM1', 'COM1'],
    ['com9.log', 'com9.log'],
    ['LPT1', 'LPT1'],
    ['lpt9.tar.gz', 'lpt9.tar.gz'],
    ['a device name deeper down', 'docs/CON/readme'],
    ['a trailing dot', 'file.'],
    ['a trailing dot on a folder', 'dir./x'],
    ['a trailing space', 'file '],
    ['a trailing space on a folder', 'dir /x'],
    ['"..."', '...'],
    ['.rxfer', '.rxfer'],
    ['a staging-file name', '.rxfer-part-0123456789abcdef'],
    ['.rxfer in another case', '.RXFER-part-x'],
    ['a .rxfer folder', '.rxfer/sums/x.json'],
    ['a .rxfer segment deeper down', 'a/.rxferx'],
    ['an empty segment', 'a//b'],
    ['a trailing slash', 'a/'],
    ['only slashes', '//'],
    [`a segment of ${MAX_SEGMENT_BYTES + 1} bytes`, 'x'.repeat(MAX_SEGMENT_BYTES + 1)],
    ['a segment of 128 characters but 256 bytes', 'é'.repeat(128)],
    ['a segment of 86 characters but 258 bytes', '日'.repeat(86)],
  ];

  test.each(cases)('%s', (_label, raw) => {
    expect(refusal(raw).code).toBe('NAME_INVALID');
  });

  // One name, one spelling: only NFC is accepted, whatever the rest of the name.
  test.each([
    ['e + combining acute (NFD of é)', 'cafe\u0301.txt'],
    ['a decomposed folder', 'di\u0301r/x'],
    ['Hangul jamo (NFD of 한)', '\u1112\u1161\u11ab'],
    ['the Angstrom sign (NFC is Å, U+00C5)', '\u212B'],
    ['the Ohm sign (NFC is Ω, U+03A9)', '\u2126.txt'],
    ['combining marks out of canonical order', 'a\u0301\u0327'],
  ])('not NFC: %s, with a message saying to send NFC', (_label, raw) => {
    const error = refusal(raw);
    expect(error.code).toBe('NAME_INVALID');
    expect(error.message).toContain('NFC');
    expect(refusal(Buffer.from(raw)).code).toBe('NAME_INVALID');
  });

  test('NFC spellings are accepted as they are (compatibility forms are not NFC changes)', () => {
    for (const name of ['caf\u00e9.txt', '\ud55c', '\u00c5', '\u00e1\u0327', '\uff21\uff22', '\ufb01le']) {
      expect(name.normalize('NFC')).toBe(name);
      expect(parseRemoteName(name)).toBe(name);
    }
  });

  test(`a name of ${MAX_NAME_BYTES + 1} bytes`, () => {
    expect(refusal(nameOfBytes(MAX_NAME_BYTES + 1)).code).toBe('NAME_INVALID');
  });

  test('the message shows the name escaped (no raw control bytes) and says why', () => {
    const error = refusal('\u001b[2J');
    expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(error.detail).toEqual({ reason: expect.stringContaining('control') });
  });

  test('invalid UTF-8 is refused for the bytes, not after silently replacing them', () => {
    const raw = Buffer.from([0x66, 0xff]);
    expect(refusal(raw).detail).toEqual({ reason: expect.stringContaining('UTF-8') });
    // The same text with U+FFFD written out properly is a valid name.
    expect(parseRemoteName(Buffer.from('f\ufffd'))).toBe('f\ufffd');
  });
});

describe('printableName', () => {
  test('shows control characters as escapes and leaves the rest alone', () => {
    expect(printableName('a\u001b[31mb\u0000c\u009bé 日')).toBe('a\\x1b[31mb\\x00c\\x9bé 日');
  });
});
