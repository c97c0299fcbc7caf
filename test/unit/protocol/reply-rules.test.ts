import { RxferError } from '../../../src/errors/rxfer-error';
import { parseByteCount } from '../../../src/protocol/protocol-limits';
import { Reply, formatReply, parseReply } from '../../../src/protocol/reply';

/**
 * Each rule of a reply line (src/protocol/reply.ts, protocol-limits.ts), one small case each: what
 * formatReply writes, what parseReply accepts, and that every line one word off is refused as
 * PROTOCOL_VIOLATION (a client that guessed would act on a reply the server never sent).
 */

const H = 'ab'.repeat(32);
const UPPER = 'AB'.repeat(32);

const violationOf = (line: string): RxferError => {
  try {
    parseReply(line);
  } catch (err) {
    if (err instanceof RxferError) return err;
    throw err;
  }
  throw new Error(`${JSON.stringify(line)} was accepted`);
};

describe('formatReply', () => {
  test.each<[Reply, string]>([
    [{ kind: 'greeting', version: 'rxfer/1', caps: { hash: 'sha256,blake3', max: '5' } }, 'OK rxfer/1 hash=sha256,blake3 max=5'],
    [{ kind: 'greeting', version: 'rxfer/1', caps: {} }, 'OK rxfer/1'],
    [{ kind: 'authOk', user: 'alice', role: 'write' }, 'OK auth alice write'],
    [{ kind: 'stat', type: 'folder', size: 0, mtimeMs: 12.9 }, 'OK stat folder 0 - 12'],
    [{ kind: 'stat', type: 'file', size: 3, digest: H, mtimeMs: 5 }, `OK stat file 3 ${H} 5`],
    [{ kind: 'listing', bytes: 10, count: 1, more: false }, 'OK list 10 1'],
    [{ kind: 'listing', bytes: 10, count: 1, more: true }, 'OK list 10 1 more'],
    [{ kind: 'done', what: 'renamed' }, 'OK renamed'],
    [{ kind: 'done', what: 'created' }, 'OK created'],
    [{ kind: 'downloadReady', size: 5, digest: H, offset: 0 }, `OK 5 ${H} from 0`],
  ])('%j is %j', (reply, line) => {
    expect(formatReply(reply)).toBe(`${line}\n`);
  });

  test('messages are flattened to one line: each run of control characters is one space, the ends trimmed', () => {
    expect(formatReply({ kind: 'error', code: 'INTERNAL', message: '\n a\r\n\tb\u007f\u0085c \n' })).toBe('ERR INTERNAL a b c\n');
    expect(formatReply({ kind: 'notFound', message: 'x\u0000\u001fy' })).toBe('NOT FOUND x y\n');
    expect(formatReply({ kind: 'notFound', message: 'é~ ok' })).toBe('NOT FOUND é~ ok\n');
  });
});

describe('parseReply: accepted', () => {
  test.each<[string, Reply]>([
    ['OK rxfer/1 hash=sha256,blake3 max=5', { kind: 'greeting', version: 'rxfer/1', caps: { hash: 'sha256,blake3', max: '5' } }],
    ['OK rxfer/2 junk =x a=b=c', { kind: 'greeting', version: 'rxfer/2', caps: { a: 'b=c' } }],
    ['OK rxfer/1', { kind: 'greeting', version: 'rxfer/1', caps: {} }],
    ['OK rxfer/1=x', { kind: 'greeting', version: 'rxfer/1=x', caps: {} }],
    ['OK auth alice read', { kind: 'authOk', user: 'alice', role: 'read' }],
    ['OK renamed', { kind: 'done', what: 'renamed' }],
    ['OK created', { kind: 'done', what: 'created' }],
    ['NOT FOUND', { kind: 'notFound', message: '' }],
    ['NOT FOUND   a b  ', { kind: 'notFound', message: 'a b' }],
    ['ERR INTERNAL', { kind: 'error', code: 'INTERNAL', message: '' }],
    ['ERR INTERNAL a  b', { kind: 'error', code: 'INTERNAL', message: 'a  b' }],
    [`OK file data recv 0 ${UPPER}`, { kind: 'dataRecv', size: 0, digest: H }],
    ['OK stat folder 0 - 5', { kind: 'stat', type: 'folder', size: 0, mtimeMs: 5 }],
    [`OK stat file 12 ${UPPER} 1700000000000`, { kind: 'stat', type: 'file', size: 12, digest: H, mtimeMs: 1700000000000 }],
    ['OK list 0 0', { kind: 'listing', bytes: 0, count: 0 }],
    ['OK list 10 1 more', { kind: 'listing', bytes: 10, count: 1, more: true }],
    [`OK partial 7 ${UPPER}`, { kind: 'partial', bytes: 7, digest: H }],
    [`OK 9007199254740991 ${H}`, { kind: 'downloadReady', size: 9007199254740991, digest: H }],
    [`OK 5 ${UPPER} from 5`, { kind: 'downloadReady', size: 5, digest: H, offset: 5 }],
    [`OK 5 ${H} from 0`, { kind: 'downloadReady', size: 5, digest: H, offset: 0 }],
  ])('%j', (line, reply) => {
    expect(parseReply(line)).toStrictEqual(reply);
  });
});

describe('parseReply: one word off is a PROTOCOL_VIOLATION', () => {
  test.each([
    'OK',
    '',
    'ok bye',
    `XX 5 ${H}`,
    `OK 5 ${H} extra`,
    'ERR',
    'ERR nope',
    'OK hash sha256 extra',
    'OK hash',
    'OK auth alice',
    'OK auth alice read extra',
    `OK file data recv 5 ${H} extra`,
    `OK file data recv 5`,
    `OK x data recv 5 ${H}`,
    `OK file x recv 5 ${H}`,
    `OK file data x 5 ${H}`,
    `OK file data recv -1 ${H}`,
    `OK file data recv 5 ${H.slice(1)}`,
    'OK stat link 1 - 5',
    'OK stats file 1 - 5',
    'OK stat file x - 5',
    'OK stat file 1 xyz 5',
    'OK stat file 1 - soon',
    'OK stat file 1 - Infinity',
    'OK stat file 1 - 5 extra',
    'OK stat file 1 -',
    'OK list 10 1 more extra',
    'OK list 10 1 less',
    'OK list x 1',
    'OK list 10 x',
    'OK list 10',
    'OK lists 10 1',
    `OK partial 10 ${H} extra`,
    `OK partial x ${H}`,
    `OK partials 10 ${H}`,
    `OK 01 ${H}`,
    `OK 5 ${H} at 3`,
    `OK 5 ${H} from 3 extra`,
    `OK 5 ${H} from 6`,
    `OK 5 ${H} from -1`,
    `OK x ${H} from 0`,
    'OK deleted x',
  ])('%j', (line) => {
    expect(violationOf(line).code).toBe('PROTOCOL_VIOLATION');
  });

  test('the message quotes the line, cut to 200 characters', () => {
    expect(violationOf('OK what').message).toBe('unexpected reply from server: "OK what"');
    expect(violationOf(`XX ${'y'.repeat(300)}`).message).toBe(`unexpected reply from server: ${JSON.stringify(`XX ${'y'.repeat(197)}`)}`);
  });
});

describe('parseByteCount', () => {
  test.each([
    ['0', 0],
    ['7', 7],
    ['1234567890123456', 1234567890123456],
    ['9007199254740991', 9007199254740991],
  ])('%j is %d', (text, value) => {
    expect(parseByteCount(text)).toBe(value);
  });

  test.each(['', '01', '00', '-1', '+1', '1.0', '1e3', ' 1', '1 ', '0x10', 'x1', '1x', '9007199254740993', '12345678901234567'])('%j is not a byte count', (text) => {
    expect(parseByteCount(text)).toBeUndefined();
  });
});
