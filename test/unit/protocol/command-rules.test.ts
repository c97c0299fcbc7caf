import { RxferError } from '../../../src/errors/rxfer-error';
import { nameLines, parseCommand } from '../../../src/protocol/command';
import { formatReply } from '../../../src/protocol/reply';

/**
 * The command line's rules, pinned exactly (issue 18): every verb's accepted forms, and for each
 * refusal the reply line the client reads (`ERR BAD_COMMAND <message>`). A client shows that text
 * to its user, so a changed message is a changed interface. Written to kill what Stryker left alive
 * in command.ts (test/MUTATION.md); the mutants judged equivalent are listed in scripts/mutation/plan.js.
 */
const replyTo = (line: string): string => {
  try {
    parseCommand(line);
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    const { code, message } = err as RxferError;
    return formatReply({ kind: 'error', code, message }).trimEnd();
  }
  throw new Error(`${JSON.stringify(line)} was accepted`);
};

const digest = '0123456789abcdef'.repeat(4);
const EXPECTED_VERBS = 'expected UPLOAD, ADDFILE, BATCH, DOWNLOAD, RESUME, LIST, STAT, DELETE, RENAME, MKDIR, AUTH, HASH or QUIT';
const RESUME_FORM = 'a resumed transfer ends with FROM <offset> <digest of the first offset bytes>';
const LIST_FORM = 'ERR BAD_COMMAND LIST takes PAGED or AFTER, FOLDERS and SHALLOW, each at most once (the folder, and for AFTER the last name listed, go on the next lines)';

describe('UPLOAD and ADDFILE', () => {
  test.each([
    ['UPLOAD 5', { verb: 'UPLOAD', size: 5 }],
    ['uPlOaD 0', { verb: 'UPLOAD', size: 0 }],
    ['addFILE 9007199254740991', { verb: 'ADDFILE', size: 9007199254740991 }],
    [`UPLOAD 10 FROM 0 ${digest}`, { verb: 'UPLOAD', size: 10, resume: { offset: 0, digest } }],
    // An offset equal to the size is a finished file: nothing more follows, and it is still accepted.
    [`ADDFILE 10 fRoM 10 ${digest.toUpperCase()}`, { verb: 'ADDFILE', size: 10, resume: { offset: 10, digest } }],
  ])('%j is accepted', (line, command) => {
    expect(parseCommand(line)).toStrictEqual(command);
  });

  test.each([
    ['UPLOAD', 'ERR BAD_COMMAND UPLOAD takes the byte count: UPLOAD <size> [FROM <offset> <digest>]'],
    ['upload 1 2', 'ERR BAD_COMMAND UPLOAD takes the byte count: UPLOAD <size> [FROM <offset> <digest>]'],
    ['ADDFILE 10 FROM 4', 'ERR BAD_COMMAND ADDFILE takes the byte count: ADDFILE <size> [FROM <offset> <digest>]'],
    [`addfile 10 FROM 4 ${digest} x`, 'ERR BAD_COMMAND ADDFILE takes the byte count: ADDFILE <size> [FROM <offset> <digest>]'],
    ['UPLOAD five', 'ERR BAD_COMMAND UPLOAD: "five" is not a byte count'],
    ['ADDFILE 007', 'ERR BAD_COMMAND ADDFILE: "007" is not a byte count'],
    ['UPLOAD 9007199254740992', 'ERR BAD_COMMAND UPLOAD: "9007199254740992" is not a byte count'],
    // The echo is cut at 40 characters: the size field is the client's, not a place to store text.
    [`UPLOAD ${'x'.repeat(41)}`, `ERR BAD_COMMAND UPLOAD: "${'x'.repeat(40)}" is not a byte count`],
    // The size is judged before the resume point.
    [`UPLOAD -1 FROM 0 ${digest}`, 'ERR BAD_COMMAND UPLOAD: "-1" is not a byte count'],
    [`UPLOAD 10 FROM 11 ${digest}`, 'ERR BAD_COMMAND UPLOAD: cannot resume at 11, beyond the end of a 10-byte file'],
    [`ADDFILE 0 FROM 1 ${digest}`, 'ERR BAD_COMMAND ADDFILE: cannot resume at 1, beyond the end of a 0-byte file'],
    [`UPLOAD 10 FROM 4 ${digest.slice(1)}`, `ERR BAD_COMMAND UPLOAD: ${RESUME_FORM}`],
    [`UPLOAD 10 FROM 4 ${digest}0`, `ERR BAD_COMMAND UPLOAD: ${RESUME_FORM}`],
    [`UPLOAD 10 FROM 4 ${digest.slice(1)}g`, `ERR BAD_COMMAND UPLOAD: ${RESUME_FORM}`],
    [`addfile 10 AT 4 ${digest}`, `ERR BAD_COMMAND ADDFILE: ${RESUME_FORM}`],
    [`UPLOAD 10 FROM 04 ${digest}`, `ERR BAD_COMMAND UPLOAD: ${RESUME_FORM}`],
    [`UPLOAD 10 FROM x ${digest}`, `ERR BAD_COMMAND UPLOAD: ${RESUME_FORM}`],
  ])('%j is refused', (line, reply) => {
    expect(replyTo(line)).toBe(reply);
  });
});

describe('DOWNLOAD', () => {
  test.each([
    ['DOWNLOAD', { verb: 'DOWNLOAD' }],
    ['download', { verb: 'DOWNLOAD' }],
    [`Download from 12 ${digest.toUpperCase()}`, { verb: 'DOWNLOAD', resume: { offset: 12, digest } }],
    // No size on the line: an offset beyond the file is the server's to refuse, not the parser's.
    [`DOWNLOAD FROM 9007199254740991 ${digest}`, { verb: 'DOWNLOAD', resume: { offset: 9007199254740991, digest } }],
  ])('%j is accepted', (line, command) => {
    expect(parseCommand(line)).toStrictEqual(command);
  });

  test.each([
    'DOWNLOAD notes.txt',
    'DOWNLOAD FROM',
    'DOWNLOAD FROM 4',
    `DOWNLOAD 4 ${digest}`,
    `DOWNLOAD FROM 4 ${digest} x`,
    `DOWNLOAD FROM +4 ${digest}`,
    `DOWNLOAD FROM 4 ${'z'.repeat(64)}`,
  ])('%j is refused with the FROM form', (line) => {
    expect(replyTo(line)).toBe(`ERR BAD_COMMAND DOWNLOAD: ${RESUME_FORM}`);
  });
});

describe('AUTH and HASH', () => {
  test('AUTH keeps its token exactly as sent, case and all', () => {
    expect(parseCommand('auth Alice.SeCrEt')).toStrictEqual({ verb: 'AUTH', token: 'Alice.SeCrEt' });
  });

  test.each(['AUTH', 'AUTH alice secret'])('%j is refused', (line) => {
    expect(replyTo(line)).toBe('ERR BAD_COMMAND AUTH takes the token: AUTH <user>.<secret>');
  });

  test.each([
    ['HASH BLAKE3', 'blake3'],
    ['hash Sha256', 'sha256'],
    // ASCII case only: a Kelvin sign (U+212A) stays itself, so this never reads as blake3.
    ['HASH BLA\u212AE3', 'bla\u212Ae3'],
  ])('%j asks for %j', (line, algorithm) => {
    expect(parseCommand(line)).toStrictEqual({ verb: 'HASH', algorithm });
  });

  test.each(['HASH', 'HASH SHA256 BLAKE3'])('%j is refused', (line) => {
    expect(replyTo(line)).toBe('ERR BAD_COMMAND HASH takes the algorithm: HASH SHA256 or HASH BLAKE3');
  });
});

describe('LIST', () => {
  test.each([
    ['LIST', { verb: 'LIST' }],
    ['list folders', { verb: 'LIST', folders: true }],
    ['LIST SHALLOW', { verb: 'LIST', shallow: true }],
    ['LIST shallow Folders', { verb: 'LIST', folders: true, shallow: true }],
    ['LIST PAGED', { verb: 'LIST', paged: true, after: false }],
    ['list after', { verb: 'LIST', paged: true, after: true }],
    ['LIST FOLDERS PAGED', { verb: 'LIST', paged: true, after: false, folders: true }],
    ['LIST SHALLOW AFTER FOLDERS', { verb: 'LIST', paged: true, after: true, folders: true, shallow: true }],
    ['LIST AFTER SHALLOW', { verb: 'LIST', paged: true, after: true, shallow: true }],
  ])('%j is accepted', (line, command) => {
    expect(parseCommand(line)).toStrictEqual(command);
  });

  test.each([
    'LIST PAGED AFTER',
    'LIST AFTER PAGED',
    'LIST PAGED paged',
    'LIST AFTER AFTER',
    'LIST FOLDERS FOLDERS',
    'LIST SHALLOW FOLDERS shallow',
    'LIST FOLDER',
    'LIST docs',
    'LIST FOLDERS docs',
    'LIST PAGED 10',
  ])('%j is refused', (line) => {
    expect(replyTo(line)).toBe(LIST_FORM);
  });

  // The folder, and for AFTER the last name of the page before, come on lines of their own.
  test.each([
    ['LIST', 1],
    ['LIST FOLDERS SHALLOW', 1],
    ['LIST PAGED', 1],
    ['LIST PAGED FOLDERS', 1],
    ['LIST AFTER', 2],
    ['LIST SHALLOW AFTER', 2],
    ['UPLOAD 3', 1],
    [`DOWNLOAD FROM 1 ${digest}`, 1],
    ['RENAME', 2],
    ['QUIT', 0],
  ] as const)('%j is followed by %i name line(s)', (line, lines) => {
    expect(nameLines(parseCommand(line))).toBe(lines);
  });
});

describe('verbs with no arguments', () => {
  test.each(['STAT', 'RESUME', 'DELETE', 'MKDIR', 'RENAME', 'QUIT'])('%s, in any ASCII case', (verb) => {
    expect(parseCommand(verb.toLowerCase())).toStrictEqual({ verb });
    expect(replyTo(`${verb.toLowerCase()} x`)).toBe(`ERR BAD_COMMAND ${verb} takes no arguments (the name goes on the next line)`);
  });
});

describe('whitespace and unknown words', () => {
  test.each([
    [' \t\v\fUPLOAD   5\r\n', { verb: 'UPLOAD', size: 5 }],
    ['\r\nQUIT\t', { verb: 'QUIT' }],
    [`DOWNLOAD  FROM   3  ${digest} `, { verb: 'DOWNLOAD', resume: { offset: 3, digest } }],
  ])('ASCII whitespace at the ends, and runs of spaces between words: %j', (line, command) => {
    expect(parseCommand(line)).toStrictEqual(command);
  });

  test.each(['', '   ', '\t\r\n\v\f'])('%j is an empty command line', (line) => {
    expect(replyTo(line)).toBe('ERR BAD_COMMAND empty command line');
  });

  test.each([
    ['HELLO', 'HELLO'],
    ['hello world', 'hello'],
    ['Abcdefghijkl', 'Abcdefghijkl'],
  ])('%j is unknown, and its word (%s) is echoed', (line, word) => {
    expect(replyTo(line)).toBe(`ERR BAD_COMMAND unknown command "${word}"; ${EXPECTED_VERBS}`);
  });

  test.each([
    ['a tab is not a separator', 'UPLOAD\t5'],
    ['no-break space is not trimmed', '\u00a0QUIT'],
    ['ideographic space is not trimmed', 'QUIT\u3000'],
    ['a byte-order mark is not trimmed', '\ufeffQUIT'],
    ['long s does not upper-case to S', '\u017ftat'],
    ['the st ligature is not "ST"', '\ufb06at'],
    ['a word glued to its size', 'UPLOAD5'],
    ['a word of 13 letters', 'Abcdefghijklm'],
    ['a token after a tab', 'AUTH\talice.s3cret'],
  ])('%s: unknown, and the word is not echoed', (_why, line) => {
    expect(replyTo(line)).toBe(`ERR BAD_COMMAND unknown command; ${EXPECTED_VERBS}`);
  });
});
