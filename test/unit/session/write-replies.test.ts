import './support/fail-fast';
import { Readable } from 'node:stream';
import { Subject } from 'rxjs';
import type { Socket } from 'node:net';
import type { RemoteName } from '../../../src/protocol/remote-name';
import type { ReplyEvent, SessionEvent } from '../../../src/session/session-event';
import { writeReplies } from '../../../src/session/write-replies';
import { captureLogs, fakeSession, recordingObserver } from './support/fake-session';
import { socketPair } from './support/socket-pair';

// Real sockets: more room than the unit default of fail-fast, still far below jest's 30 s.
jest.setTimeout(10_000);

const H = 'ef'.repeat(32);

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

const setup = async () => {
  const pair = await socketPair();
  const { observer, calls } = recordingObserver();
  const { logger, lines } = captureLogs();
  const ctx = fakeSession({ socket: pair.server, observer, logger });
  const received: Buffer[] = [];
  pair.client.on('data', (chunk: Buffer) => received.push(chunk));
  const input = new Subject<SessionEvent>();
  const state: { error?: unknown; completed: boolean } = { completed: false };
  input.pipe(writeReplies(pair.server as Socket, ctx)).subscribe({ error: (err) => (state.error = err), complete: () => (state.completed = true) });
  const text = () => Buffer.concat(received).toString('latin1');
  return { ...pair, ctx, calls, lines, input, state, text };
};

describe('writeReplies', () => {
  test('replies are written as lines, in order, each told to the observer; other events write nothing', async () => {
    const { input, text, calls, ctx, close } = await setup();
    try {
      input.next({ type: 'shutdown' });
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      input.next({ type: 'reply', reply: { kind: 'done', what: 'deleted' } });
      await until(() => text().includes('deleted'));
      expect(text()).toBe('OK file recv\nOK deleted\n');
      expect(calls).toEqual([
        ['replied', ctx, { kind: 'fileRecv' }, undefined],
        ['replied', ctx, { kind: 'done', what: 'deleted' }, undefined],
      ]);
    } finally {
      await close();
    }
  });

  test("a request's last reply ends the request once written", async () => {
    const { input, ctx, calls, close } = await setup();
    try {
      const transfer = ctx.beginTransfer({ verb: 'STAT' });
      input.next({ type: 'reply', reply: { kind: 'done', what: 'deleted' }, transfer });
      expect(calls).toContainEqual(['requestEnded', ctx, transfer, { reply: { kind: 'done', what: 'deleted' }, complete: true }]);
      expect(transfer.released).toBe(true);
    } finally {
      await close();
    }
  });

  test('completes after a closing reply; nothing after it is written', async () => {
    const { input, state, text, close } = await setup();
    try {
      input.next({ type: 'reply', reply: { kind: 'bye' }, closeAfter: true });
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      expect(state.completed).toBe(true);
      await until(() => text().length > 0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(text()).toBe('OK bye\n');
    } finally {
      await close();
    }
  });

  test('a reply the socket cannot take any more ends the stream without writing', async () => {
    const { input, state, server, calls, close } = await setup();
    try {
      server.end();
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      expect(state.completed).toBe(true);
      expect(calls).toEqual([]);
    } finally {
      await close();
    }
  });

  test('replies of one tick are corked together and uncorked on the next', async () => {
    const { input, server, close } = await setup();
    try {
      const cork = jest.spyOn(server, 'cork');
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      expect(cork).toHaveBeenCalledTimes(1);
      expect(server.writableCorked).toBe(1);
      await new Promise((resolve) => process.nextTick(resolve));
      expect(server.writableCorked).toBe(0);
    } finally {
      await close();
    }
  });

  test('a reply that finds the socket full holds input until it drains', async () => {
    const { input, server, ctx, close } = await setup();
    try {
      const write = server.write.bind(server);
      jest.spyOn(server, 'write').mockImplementation(((chunk: string) => (write(chunk), false)) as typeof server.write);
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      expect(ctx.flow.paused).toBe(true);
      server.emit('drain');
      expect(ctx.flow.paused).toBe(false);
    } finally {
      await close();
    }
  });

  test("a download's data follows its line; counted as sent data, logged, the request ended complete", async () => {
    const { input, ctx, calls, lines, text, close } = await setup();
    try {
      ctx.log.level = 'debug';
      const transfer = ctx.beginTransfer({ verb: 'DOWNLOAD' });
      transfer.name = 'f' as RemoteName;
      const reply: ReplyEvent = { type: 'reply', reply: { kind: 'downloadReady', size: 5, digest: H }, transfer, body: { stream: Readable.from([Buffer.from('hello')]), size: 5 } };
      input.next(reply);
      expect(ctx.midBody).toBe(true);
      await until(() => transfer.released);
      expect(ctx.midBody).toBe(false);
      await until(() => text().endsWith('hello'));
      expect(text()).toBe(`OK 5 ${H}\nhello`);
      expect(calls).toContainEqual(['dataSent', transfer, 5]);
      expect(calls).toContainEqual(['requestEnded', ctx, transfer, { reply: reply.reply, complete: true }]);
      expect(lines.some((line) => String(line.msg).startsWith('Sent f (5 bytes)'))).toBe(true);
    } finally {
      await close();
    }
  });

  test("a LIST's body is not file data: not counted, not logged as sent", async () => {
    const { input, ctx, calls, lines, close } = await setup();
    try {
      ctx.log.level = 'debug';
      const transfer = ctx.beginTransfer({ verb: 'LIST' });
      input.next({ type: 'reply', reply: { kind: 'listing', bytes: 2, count: 1 }, transfer, body: { stream: Readable.from([Buffer.from('a\n')]), size: 2 } });
      await until(() => transfer.released);
      expect(calls.filter(([name]) => name === 'dataSent')).toEqual([]);
      expect(lines.some((line) => String(line.msg).startsWith('Sent'))).toBe(false);
    } finally {
      await close();
    }
  });

  test('a body that fails: the stream errors, the request ends incomplete', async () => {
    const { input, ctx, calls, state, close } = await setup();
    try {
      const transfer = ctx.beginTransfer({ verb: 'DOWNLOAD' });
      input.next({ type: 'reply', reply: { kind: 'downloadReady', size: 5, digest: H }, transfer, body: { stream: Readable.from([Buffer.from('hel')]), size: 5 } });
      await until(() => state.error !== undefined);
      expect((state.error as { code: string }).code).toBe('STORAGE_FAILED');
      expect(calls).toContainEqual(['requestEnded', ctx, transfer, { reply: { kind: 'downloadReady', size: 5, digest: H }, complete: false }]);
      expect(ctx.midBody).toBe(true);
    } finally {
      await close();
    }
  });

  test('a body after which the connection closes: the close comes after the data', async () => {
    const { input, ctx, state, text, close } = await setup();
    try {
      const transfer = ctx.beginTransfer({ verb: 'LIST' });
      input.next({ type: 'reply', reply: { kind: 'listing', bytes: 2, count: 1 }, transfer, body: { stream: Readable.from([Buffer.from('a\n')]), size: 2 }, closeAfter: true });
      input.next({ type: 'reply', reply: { kind: 'fileRecv' } });
      await until(() => state.completed);
      await until(() => text().endsWith('a\n'));
      expect(text()).toBe('OK list 2 1\na\n');
    } finally {
      await close();
    }
  });
});
