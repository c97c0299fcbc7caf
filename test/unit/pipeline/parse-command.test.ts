import '../session/support/fail-fast';
import { ParseCommandStage } from '../../../src/pipeline/stages/parse-command.stage';
import { RxferError } from '../../../src/errors/rxfer-error';
import { availableHashes } from '../../../src/integrity/hash-algorithm';
import type { Command, Trailer } from '../../../src/protocol/command';
import type { SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';
import { captureLogs, fakeSession } from '../session/support/fake-session';
import { runStage } from './support/run-stage';

const command = (c: Command): SessionEvent => ({ type: 'command', command: c });
const name = (text: string): SessionEvent => ({ type: 'name', raw: Buffer.from(text) });
const chunk = (text: string): SessionEvent => ({ type: 'chunk', bytes: Buffer.from(text) });
const trailer = { kind: 'end' } as unknown as Trailer;
const shuttingDown = { type: 'reply', reply: { kind: 'error', code: 'SHUTTING_DOWN', message: 'the server is stopping; try again later' }, closeAfter: true };

const setup = () => {
  const { logger, lines } = captureLogs();
  const ctx = fakeSession({ logger });
  return { ctx, lines, ...runStage(new ParseCommandStage(), ctx) };
};

/** The transfer of the n-th request event that came out. */
const transferOf = (event: SessionEvent | undefined): Transfer => (event as { transfer: Transfer }).transfer;

describe('ParseCommandStage', () => {
  test('a request opens a transfer; its name line becomes one named event, logged at debug', () => {
    const { input, out, lines } = setup();
    input.next(command({ verb: 'STAT' }));
    expect(out).toEqual([]);
    input.next(name('a.txt'));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: 'named', raw: Buffer.from('a.txt') });
    expect(out[0]).not.toHaveProperty('raw2');
    expect(transferOf(out[0]).command).toEqual({ verb: 'STAT' });
    expect(lines.find((line) => line.msg === 'Client command: STAT')).toMatchObject({ level: 20, command: 'STAT' });
  });

  test("RENAME's two name lines are one named event; the next request is on its own", () => {
    const { input, out } = setup();
    input.next(command({ verb: 'RENAME' }));
    input.next(name('old'));
    expect(out).toEqual([]);
    input.next(name('new'));
    expect(out[0]).toMatchObject({ type: 'named', raw: Buffer.from('old'), raw2: Buffer.from('new') });
    input.next(command({ verb: 'DELETE' }));
    input.next(name('gone'));
    expect(out[1]).toMatchObject({ type: 'named', raw: Buffer.from('gone') });
    expect(out[1]).not.toHaveProperty('raw2');
    expect(transferOf(out[1]).command.verb).toBe('DELETE');
  });

  test("an upload's chunks and trailer are tagged with its transfer; pipelined requests keep their own", () => {
    const { input, out } = setup();
    input.next(command({ verb: 'UPLOAD', size: 2 }));
    input.next(name('u'));
    input.next(chunk('ab'));
    input.next({ type: 'trailer', trailer });
    input.next(command({ verb: 'STAT' }));
    input.next(name('s'));
    expect(out.map((event) => event.type)).toEqual(['named', 'data', 'dataEnd', 'named']);
    const upload = transferOf(out[0]);
    expect(out[1]).toEqual({ type: 'data', transfer: upload, bytes: Buffer.from('ab') });
    expect(out[2]).toEqual({ type: 'dataEnd', transfer: upload, trailer });
    expect(transferOf(out[3])).not.toBe(upload);
    expect(transferOf(out[3]).id).toBe(upload.id + 1);
  });

  test('QUIT: bye, closing, and nothing after it takes effect', () => {
    const { input, out, ctx } = setup();
    input.next(command({ verb: 'QUIT' }));
    input.next(command({ verb: 'DELETE' }));
    input.next(name('x'));
    input.next({ type: 'shutdown' });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'bye' }, closeAfter: true }]);
    expect(ctx.budget.roomFor('LIST')).toBeUndefined();
  });

  test('AUTH becomes a login event with its token', () => {
    const { input, out } = setup();
    input.next(command({ verb: 'AUTH', token: 'alice.secret' }));
    expect(out).toEqual([{ type: 'login', token: 'alice.secret' }]);
  });

  test('HASH of an offered algorithm: chosen for the connection, logged', () => {
    const { input, out, ctx, lines } = setup();
    input.next(command({ verb: 'HASH', algorithm: 'sha256' }));
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'hashChosen', hash: 'sha256' } }]);
    expect(ctx.hash).toBe('sha256');
    expect(lines.find((line) => line.msg === 'Digests on this connection: SHA256')).toMatchObject({ level: 30, hash: 'sha256' });
  });

  test('HASH of an unknown algorithm: HASH_UNSUPPORTED naming what is offered; the connection keeps its hash', () => {
    const { input, out, ctx } = setup();
    const long = 'md5-' + 'x'.repeat(60);
    input.next(command({ verb: 'HASH', algorithm: long }));
    const offered = availableHashes().map((a) => a.toUpperCase()).join(', ');
    expect(out).toEqual([
      {
        type: 'reply',
        reply: { kind: 'error', code: 'HASH_UNSUPPORTED', message: `this server verifies with ${offered}; ${JSON.stringify(long.slice(0, 40))} is not offered, so the connection stays with SHA256` },
        closeAfter: false,
      },
    ]);
    expect(ctx.hash).toBe('sha256');
  });

  (availableHashes().includes('blake3') ? test.skip : test)('HASH of a known algorithm this server does not offer is refused too', () => {
    const { input, out, ctx } = setup();
    input.next(command({ verb: 'HASH', algorithm: 'blake3' }));
    expect(out[0]).toMatchObject({ reply: { code: 'HASH_UNSUPPORTED' } });
    expect(ctx.hash).toBe('sha256');
  });

  test('a shutdown between requests closes at once with SHUTTING_DOWN', () => {
    const { input, out } = setup();
    input.next(command({ verb: 'STAT' }));
    input.next(name('done'));
    input.next({ type: 'shutdown' });
    input.next(command({ verb: 'STAT' }));
    input.next(name('late'));
    expect(out.slice(1)).toEqual([shuttingDown]);
  });

  test('a shutdown mid-request lets that request finish (a file operation), then closes', () => {
    const { input, out } = setup();
    input.next(command({ verb: 'DELETE' }));
    input.next({ type: 'shutdown' });
    expect(out).toEqual([]);
    input.next(name('x'));
    expect(out.map((event) => event.type)).toEqual(['named', 'reply']);
    expect(out[1]).toEqual(shuttingDown);
    input.next(command({ verb: 'STAT' }));
    input.next(name('late'));
    expect(out).toHaveLength(2);
  });

  test('a shutdown mid-upload waits for its trailer', () => {
    const { input, out } = setup();
    input.next(command({ verb: 'UPLOAD', size: 1 }));
    input.next(name('u'));
    input.next({ type: 'shutdown' });
    input.next(chunk('a'));
    expect(out.map((event) => event.type)).toEqual(['named', 'data']);
    input.next({ type: 'trailer', trailer });
    expect(out.map((event) => event.type)).toEqual(['named', 'data', 'dataEnd', 'reply']);
    expect(out[3]).toEqual(shuttingDown);
  });

  test('a protocol error is passed on and ends the session', () => {
    const { input, out } = setup();
    const error: SessionEvent = { type: 'protocolError', error: new RxferError('LINE_TOO_LONG', 'x') };
    input.next(error);
    input.next(command({ verb: 'QUIT' }));
    expect(out).toEqual([error]);
  });

  test('other events pass', () => {
    const { input, out } = setup();
    const reply: SessionEvent = { type: 'reply', reply: { kind: 'bye' } };
    input.next(reply);
    expect(out).toEqual([reply]);
  });

  test('each subscription starts fresh', () => {
    const { ctx } = setup();
    const stage = new ParseCommandStage();
    const first = runStage(stage, ctx);
    first.input.next(command({ verb: 'QUIT' }));
    const second = runStage(stage, ctx);
    second.input.next(command({ verb: 'AUTH', token: 't' }));
    expect(second.out).toEqual([{ type: 'login', token: 't' }]);
  });
});
