import { RxferError } from '../../../src/errors/rxfer-error';
import { Reply, formatReply, parseReply } from '../../../src/protocol/reply';

const H = 'ab'.repeat(32);

describe('formatReply and parseReply', () => {
  test.each<[Reply, string]>([
    [{ kind: 'fileRecv' }, 'OK file recv'],
    [{ kind: 'dataRecv', size: 5, digest: H }, `OK file data recv 5 ${H}`],
    [{ kind: 'downloadReady', size: 5, digest: H }, `OK 5 ${H}`],
    [{ kind: 'downloadReady', size: 5, digest: H, offset: 3 }, `OK 5 ${H} from 3`],
    [{ kind: 'partial', bytes: 1048576, digest: H }, `OK partial 1048576 ${H}`],
    [{ kind: 'listing', bytes: 10, count: 1 }, 'OK list 10 1'],
    [{ kind: 'stat', type: 'file', size: 1, digest: H, mtimeMs: 7 }, `OK stat file 1 ${H} 7`],
    [{ kind: 'done', what: 'deleted' }, 'OK deleted'],
    [{ kind: 'error', code: 'RESUME_MISMATCH', message: 'start over' }, 'ERR RESUME_MISMATCH start over'],
    [{ kind: 'notFound', message: 'x does not exist' }, 'NOT FOUND x does not exist'],
    [{ kind: 'bye' }, 'OK bye'],
    [{ kind: 'hashChosen', hash: 'blake3' }, 'OK hash blake3'],
    [{ kind: 'error', code: 'HASH_UNSUPPORTED', message: 'not offered' }, 'ERR HASH_UNSUPPORTED not offered'],
  ])('%j is the line %j, and back', (reply, line) => {
    expect(formatReply(reply)).toBe(`${line}\n`);
    expect(parseReply(line)).toEqual(reply);
  });

  test.each([
    ['a resumed download beyond the end', `OK 5 ${H} from 6`],
    ['a resume offset that is not a number', `OK 5 ${H} from x`],
    ['a partial without its digest', 'OK partial 10'],
    ['a partial with a bad digest', 'OK partial 10 xyz'],
    ['an unknown error code', 'ERR NOPE what'],
    ['a HASH answer naming an algorithm rxfer does not know', 'OK hash md5'],
  ])('%s is a PROTOCOL_VIOLATION', (_label, line) => {
    expect(() => parseReply(line)).toThrow(RxferError);
    try {
      parseReply(line);
    } catch (err) {
      expect((err as RxferError).code).toBe('PROTOCOL_VIOLATION');
    }
  });
});
