import { RxferError } from '../../src/errors/rxfer-error';
import { Command, isFileOp, nameLines, owedBytes, parseCommand, parseTrailer, takesName } from '../../src/protocol/command';

/**
 * Framing promises of PROTOCOL.md that keep client and server in step: how many name lines follow
 * each verb, how many data bytes an upload still owes (a resume owes size − offset), and how each
 * malformed line is refused. A wrong count here desynchronises the whole connection (data read as
 * commands), so each verb is pinned. Written to kill what Stryker left alive in command.ts with the
 * unit tests alone (test/MUTATION.md).
 */
const refusal = (line: string): string => {
  try {
    parseCommand(line);
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    return `${(err as RxferError).code} ${(err as RxferError).message}`;
  }
  throw new Error(`${line} was accepted`);
};
const digest = 'ab'.repeat(32);

describe('command framing', () => {
  test.each([
    ['UPLOAD 5', 1, false],
    ['ADDFILE 5', 1, false],
    ['DOWNLOAD', 1, false],
    ['LIST', 1, false],
    ['STAT', 1, true],
    ['DELETE', 1, true],
    ['MKDIR', 1, true],
    ['RESUME', 1, true],
    ['RENAME', 2, true],
    ['AUTH alice.secret', 0, false],
    ['HASH BLAKE3', 0, false],
    ['QUIT', 0, false],
  ] as const)('%s: %i name line(s); file op: %s', (line, names, fileOp) => {
    const command = parseCommand(line);
    expect(nameLines(command)).toBe(names);
    expect(takesName(command)).toBe(names > 0);
    expect(isFileOp(command)).toBe(fileOp);
  });

  test('an upload owes its size; a resumed one owes size − offset', () => {
    expect(owedBytes(parseCommand('UPLOAD 100') as Extract<Command, { size: number }>)).toBe(100);
    expect(owedBytes(parseCommand(`UPLOAD 100 FROM 40 ${digest}`) as Extract<Command, { size: number }>)).toBe(60);
    expect(owedBytes(parseCommand(`ADDFILE 100 FROM 100 ${digest}`) as Extract<Command, { size: number }>)).toBe(0);
  });

  test('AUTH and HASH take exactly one argument; the token is kept as sent, the algorithm lower-cased', () => {
    expect(parseCommand('AUTH Alice.SeCrEt')).toEqual({ verb: 'AUTH', token: 'Alice.SeCrEt' });
    expect(parseCommand('hash BLAKE3')).toEqual({ verb: 'HASH', algorithm: 'blake3' });
    expect(refusal('AUTH')).toBe('BAD_COMMAND AUTH takes the token: AUTH <user>.<secret>');
    expect(refusal('AUTH a b')).toBe('BAD_COMMAND AUTH takes the token: AUTH <user>.<secret>');
    expect(refusal('HASH')).toBe('BAD_COMMAND HASH takes the algorithm: HASH SHA256 or HASH BLAKE3');
    expect(refusal('HASH a b')).toBe('BAD_COMMAND HASH takes the algorithm: HASH SHA256 or HASH BLAKE3');
  });

  test('ASCII white space around a line is ignored (\\t \\v \\f \\r and spaces), and runs of spaces split arguments', () => {
    expect(parseCommand('\t\v\f UPLOAD   7 \r')).toEqual({ verb: 'UPLOAD', size: 7 });
    expect(parseCommand('\v\vQUIT\v')).toEqual({ verb: 'QUIT' });
  });

  test.each([
    ['', 'BAD_COMMAND empty command line'],
    ['   ', 'BAD_COMMAND empty command line'],
    ['UPLOAD', 'BAD_COMMAND UPLOAD takes the byte count: UPLOAD <size> [FROM <offset> <digest>]'],
    ['UPLOAD x1', 'BAD_COMMAND UPLOAD: "x1" is not a byte count'],
    [`UPLOAD ${'9'.repeat(60)}`, `BAD_COMMAND UPLOAD: "${'9'.repeat(40)}" is not a byte count`],
    [`UPLOAD 10 FROM 11 ${digest}`, 'BAD_COMMAND UPLOAD: cannot resume at 11, beyond the end of a 10-byte file'],
    [`UPLOAD 10 TO 1 ${digest}`, 'BAD_COMMAND UPLOAD: a resumed transfer ends with FROM <offset> <digest of the first offset bytes>'],
    [`DOWNLOAD FROM 1 ${digest} extra`, 'BAD_COMMAND DOWNLOAD: a resumed transfer ends with FROM <offset> <digest of the first offset bytes>'],
    [`DOWNLOAD FROM 1`, 'BAD_COMMAND DOWNLOAD: a resumed transfer ends with FROM <offset> <digest of the first offset bytes>'],
    ['STAT x', 'BAD_COMMAND STAT takes no arguments (the name goes on the next line)'],
    ['NOPE x', 'BAD_COMMAND unknown command "NOPE"; expected UPLOAD, ADDFILE, BATCH, DOWNLOAD, RESUME, LIST, STAT, DELETE, RENAME, MKDIR, AUTH, HASH or QUIT'],
    [`NOPE${'x'.repeat(50)}`, `BAD_COMMAND unknown command; expected UPLOAD, ADDFILE, BATCH, DOWNLOAD, RESUME, LIST, STAT, DELETE, RENAME, MKDIR, AUTH, HASH or QUIT`],
  ])('%j is refused: %s', (line, expected) => {
    expect(refusal(line)).toBe(expected);
  });

  test('a bad trailer is refused with what it got (at most 80 characters of it)', () => {
    const line = 'MD5 ' + 'f'.repeat(100);
    expect(() => parseTrailer(line)).toThrow(`expected "SHA256 <64 hex digits>" (or BLAKE3 after HASH BLAKE3) after the data, got ${JSON.stringify(line.slice(0, 80))}`);
    expect(() => parseTrailer(`SHA1 ${digest}`)).toThrow(/^expected "SHA256/);
    expect(parseTrailer(`SHA256 ${digest.toUpperCase()}`)).toEqual({ hash: 'sha256', digest });
  });
});
