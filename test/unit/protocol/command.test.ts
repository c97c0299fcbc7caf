import { RxferError } from '../../../src/errors/rxfer-error';
import { carriesData, formatTrailer, parseCommand, parseTrailer, takesName } from '../../../src/protocol/command';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    return (err as RxferError).code;
  }
  throw new Error('did not throw');
};

describe('parseCommand', () => {
  test.each([
    ['UPLOAD 5', { verb: 'UPLOAD', size: 5 }],
    ['UPLOAD 0', { verb: 'UPLOAD', size: 0 }],
    ['upload 12', { verb: 'UPLOAD', size: 12 }],
    ['Addfile 7', { verb: 'ADDFILE', size: 7 }],
    ['ADDFILE 9007199254740991', { verb: 'ADDFILE', size: Number.MAX_SAFE_INTEGER }],
    ['DOWNLOAD', { verb: 'DOWNLOAD' }],
    ['download', { verb: 'DOWNLOAD' }],
    ['QUIT', { verb: 'QUIT' }],
    ['quit', { verb: 'QUIT' }],
    ['RESUME', { verb: 'RESUME' }],
    ['HASH BLAKE3', { verb: 'HASH', algorithm: 'blake3' }],
    ['hash sha256', { verb: 'HASH', algorithm: 'sha256' }],
    // Parsed, not judged: the server answers an algorithm it does not offer with HASH_UNSUPPORTED.
    ['HASH MD5', { verb: 'HASH', algorithm: 'md5' }],
    ['UPLOAD 10 FROM 4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', { verb: 'UPLOAD', size: 10, resume: { offset: 4, digest: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } }],
    ['addfile 10 from 10 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', { verb: 'ADDFILE', size: 10, resume: { offset: 10, digest: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } }],
    ['DOWNLOAD FROM 0 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', { verb: 'DOWNLOAD', resume: { offset: 0, digest: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' } }],
  ])('%j', (line, command) => {
    expect(parseCommand(line)).toEqual(command);
  });

  test.each([
    ['an empty line', ''],
    ['an unknown verb', 'DELETE x'],
    ['a verb glued to its size', 'UPLOAD5'],
    ['UPLOAD without a size', 'UPLOAD'],
    ['ADDFILE without a size', 'ADDFILE'],
    ['a negative size', 'UPLOAD -3'],
    ['a leading plus', 'UPLOAD +3'],
    ['a hex size', 'UPLOAD 0x1f'],
    ['an exponent', 'UPLOAD 1e3'],
    ['a fraction', 'UPLOAD 2.0'],
    ['a size beyond Number.MAX_SAFE_INTEGER', 'UPLOAD 9007199254740993'],
    ['a size of many digits', `UPLOAD ${'9'.repeat(40)}`],
    ['two sizes', 'UPLOAD 1 2'],
    ['the name on the command line', 'UPLOAD 5 notes.txt'],
    ['DOWNLOAD with an argument', 'DOWNLOAD notes.txt'],
    ['QUIT with an argument', 'QUIT please'],
    ['RESUME with an argument', 'RESUME x'],
    ['HASH without an algorithm', 'HASH'],
    ['HASH with two algorithms', 'HASH SHA256 BLAKE3'],
    ['a resume offset beyond the size', 'UPLOAD 10 FROM 11 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
    ['a resume without its digest', 'UPLOAD 10 FROM 4'],
    ['a resume digest too short', 'UPLOAD 10 FROM 4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
    ['a resume keyword misspelt', 'UPLOAD 10 FRM 4 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
    ['a negative resume offset', 'DOWNLOAD FROM -1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
    ['DOWNLOAD FROM without an offset', 'DOWNLOAD FROM aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ])('%s: BAD_COMMAND', (_label, line) => {
    expect(codeOf(() => parseCommand(line))).toBe('BAD_COMMAND');
  });

  // Verbs and keywords are ASCII: String#toUpperCase would fold these into STAT, QUIT, ADDFILE, FROM…
  test.each([
    ['a long s', '\u017Ftat'],
    ['the st ligature', '\uFB06at'],
    ['a dotless i', 'qu\u0131t'],
    ['the fi ligature', 'add\uFB01le 1'],
    ['a fullwidth verb', '\uFF33\uFF34\uFF21\uFF34'],
    ['an ideographic space after the verb', 'STAT\u3000'],
    ['a no-break space before the verb', '\u00A0STAT'],
    ['a byte-order mark before the verb', '\uFEFFSTAT'],
  ])('%s: BAD_COMMAND, not a verb by Unicode case folding', (_label, line) => {
    expect(codeOf(() => parseCommand(line))).toBe('BAD_COMMAND');
  });

  test('ASCII case and ASCII blanks around the line do not matter', () => {
    expect(parseCommand('sTaT')).toEqual({ verb: 'STAT' });
    expect(parseCommand(' \tdownload from 1 ' + 'a'.repeat(64) + ' \t')).toEqual({ verb: 'DOWNLOAD', resume: { offset: 1, digest: 'a'.repeat(64) } });
  });

  test('HASH lower-cases ASCII only: a Kelvin sign (K) does not make BLAKE3', () => {
    expect(parseCommand('HASH BLA\u212AE3')).toEqual({ verb: 'HASH', algorithm: 'bla\u212Ae3' });
    expect(parseCommand('HASH \u017Fha256')).toEqual({ verb: 'HASH', algorithm: '\u017Fha256' });
  });

  test('the BAD_COMMAND message quotes a long verb only in part', () => {
    try {
      parseCommand(`${'X'.repeat(5000)} 1`);
      throw new Error('accepted');
    } catch (err) {
      expect((err as RxferError).code).toBe('BAD_COMMAND');
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });

  test('which verbs take a name line and which carry data', () => {
    expect([parseCommand('UPLOAD 1'), parseCommand('ADDFILE 1'), parseCommand('DOWNLOAD'), parseCommand('QUIT'), parseCommand('HASH BLAKE3')].map((c) => [takesName(c), carriesData(c)])).toEqual([
      [true, true],
      [true, true],
      [true, false],
      [false, false],
      [false, false],
    ]);
  });
});

describe('parseTrailer', () => {
  const digest = 'ab'.repeat(32);

  test('returns the algorithm it names and the digest in lower case; upper-case hex is accepted', () => {
    expect(parseTrailer(`SHA256 ${digest}`)).toEqual({ hash: 'sha256', digest });
    expect(parseTrailer(`SHA256 ${digest.toUpperCase()}`)).toEqual({ hash: 'sha256', digest });
    expect(parseTrailer(`BLAKE3 ${digest}`)).toEqual({ hash: 'blake3', digest });
  });

  test('formatTrailer writes what parseTrailer reads', () => {
    expect(formatTrailer({ hash: 'blake3', digest })).toBe(`BLAKE3 ${digest}\n`);
    expect(parseTrailer(formatTrailer({ hash: 'sha256', digest }).trimEnd())).toEqual({ hash: 'sha256', digest });
  });

  test.each([
    ['empty', ''],
    ['no digest', 'SHA256'],
    ['63 digits', `SHA256 ${digest.slice(1)}`],
    ['65 digits', `SHA256 ${digest}0`],
    ['a non-hex digit', `SHA256 ${digest.slice(1)}g`],
    ['another algorithm', `MD5 ${'0'.repeat(32)}`],
    ['an algorithm rxfer does not know, with a 256-bit digest', `SHA3 ${digest}`],
    ['a lower-case algorithm name', `blake3 ${digest}`],
    ['a request line instead', 'QUIT'],
    ['a Kelvin sign in the algorithm', `BLA\u212AE3 ${digest}`],
    ['a no-break space after the digest', `SHA256 ${digest}\u00a0`],
    ['two digests', `SHA256 ${digest} ${digest}`],
  ])('%s: BAD_TRAILER', (_label, line) => {
    expect(codeOf(() => parseTrailer(line))).toBe('BAD_TRAILER');
  });
});
