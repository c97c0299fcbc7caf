import './support/fail-fast';
import { Observable, Subject, map } from 'rxjs';
import type { Socket } from 'node:net';
import { RxferError } from '../../../src/errors/rxfer-error';
import { availableHashes } from '../../../src/integrity/hash-algorithm';
import type { Stage } from '../../../src/pipeline/stage';
import { parseConfig } from '../../../src/config/load-config';
import { ConnectionActor } from '../../../src/session/connection-actor';
import { SessionContext } from '../../../src/session/session-context';
import { type SessionEvent, replyEvent } from '../../../src/session/session-event';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import { captureLogs, recordingObserver, settlesNow } from './support/fake-session';
import { socketPair } from './support/socket-pair';

// Real sockets: more room than the unit default of fail-fast, still far below jest's 30 s.
jest.setTimeout(10_000);

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * One stage standing in for the pipeline: it records what reaches it, and answers each command
 * line with what `answer` makes of it (QUIT: bye and close; others: as the test says).
 */
const stubStage = (answer: (event: SessionEvent, ctx: SessionContext) => SessionEvent) => {
  const seen: SessionEvent[] = [];
  const contexts: SessionContext[] = [];
  const stage: Stage = {
    name: 'stub',
    apply: (event$: Observable<SessionEvent>, ctx: SessionContext) => {
      contexts.push(ctx);
      return event$.pipe(
        map((event) => {
          seen.push(event);
          return answer(event, ctx);
        }),
      );
    },
  };
  return { stage, seen, contexts };
};

const quitOrEcho = (event: SessionEvent): SessionEvent => {
  if (event.type === 'command' && event.command.verb === 'QUIT') return replyEvent({ kind: 'bye' }, { closeAfter: true });
  if (event.type === 'command' && event.command.verb === 'STAT') throw new TypeError('stage bug');
  if (event.type === 'command' && event.command.verb === 'MKDIR') throw new RxferError('BAD_COMMAND', 'not here');
  if (event.type === 'command' && event.command.verb === 'DELETE') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  return replyEvent({ kind: 'fileRecv' });
};

const setup = async (options: { storage?: Partial<StorageAdapter>; anonymous?: 'none' | 'read'; answer?: (event: SessionEvent, ctx: SessionContext) => SessionEvent; idleTimeoutMs?: number; stallTimeoutMs?: number } = {}) => {
  const pair = await socketPair();
  const { logger, lines } = captureLogs();
  const { observer, calls } = recordingObserver();
  const config = parseConfig({
    storage: { kind: 'local', root: '/nonexistent-rxfer-unit' },
    limits: { maxLineBytes: 300, ...(options.idleTimeoutMs && { idleTimeoutMs: options.idleTimeoutMs }), ...(options.stallTimeoutMs && { stallTimeoutMs: options.stallTimeoutMs }) },
    auth: { anonymous: options.anonymous ?? 'read' },
  });
  const stub = stubStage(options.answer ?? quitOrEcho);
  const actor = new ConnectionActor([stub.stage], config, logger, (options.storage ?? {}) as StorageAdapter, observer);
  const shutdown$ = new Subject<void>();
  const abort$ = new Subject<void>();
  const state = { done: false, error: undefined as unknown };
  actor.run(pair.server as Socket, shutdown$, abort$).subscribe({ complete: () => (state.done = true), error: (err) => (state.error = err) });
  let text = '';
  let ended = false;
  pair.client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  pair.client.on('end', () => (ended = true));
  pair.client.on('close', () => (ended = true));
  return { ...pair, actor, lines, calls, stub, shutdown$, abort$, state, text: () => text, ended: () => ended };
};

describe('ConnectionActor', () => {
  test('greets first with the version and capabilities of this server', async () => {
    const { text, close } = await setup({ anonymous: 'none', storage: { resumableFromBytes: 1048576, listsInPages: true, listsFolders: true } });
    try {
      await until(() => text().includes('\n'));
      expect(text()).toBe(
        `OK rxfer/1 caps=upload,addfile,batch,download,resume,list,stat,delete,rename,mkdir,auth,hash,quit hash=${availableHashes().join(',')} max-line=300 batch-files=64 batch-bytes=1048576 auth=required resume-min=1048576 list=paged list-options=folders,shallow\n`,
      );
    } finally {
      await close();
    }
  });

  test('without resumable uploads, pages or folder listings, the greeting does not offer them', async () => {
    const { text, close } = await setup();
    try {
      await until(() => text().includes('\n'));
      expect(text()).toBe(`OK rxfer/1 caps=upload,addfile,batch,download,resume,list,stat,delete,rename,mkdir,auth,hash,quit hash=${availableHashes().join(',')} max-line=300 batch-files=64 batch-bytes=1048576 auth=optional\n`);
    } finally {
      await close();
    }
  });

  test('requests go through the stages, replies come back in order; a closing reply ends the session and our side', async () => {
    const { client, text, stub, state, ended, actor, close } = await setup();
    try {
      client.write('HASH sha256\nQUIT\nHASH sha256\n');
      await until(() => state.done);
      await until(ended);
      expect(text().split('\n').slice(1)).toEqual(['OK file recv', 'OK bye', '']);
      // After the closing reply the input is let go: whatever came behind QUIT may or may not have been read.
      expect(stub.seen.slice(0, 2).map((event) => event.type)).toEqual(['command', 'command']);
      await actor.released();
      expect(stub.contexts[0]!.signal.aborted).toBe(true);
    } finally {
      await close();
    }
  });

  test('the decoder works with the configured line limit', async () => {
    const { client, stub, close } = await setup();
    try {
      client.write(`HASH ${'x'.repeat(400)}\n`);
      await until(() => stub.seen.some((event) => event.type === 'protocolError'));
      const error = stub.seen.find((event) => event.type === 'protocolError') as { error: RxferError };
      expect(error.error.code).toBe('LINE_TOO_LONG');
    } finally {
      await close();
    }
  });

  test('a bug in a stage ends this session with ERR INTERNAL, logged as an error and told to the observer', async () => {
    const { client, text, lines, calls, state, close } = await setup({ answer: (event) => quitOrEcho(event) });
    try {
      client.write('STAT\n');
      await until(() => state.done);
      await until(() => text().includes('ERR'));
      expect(text().split('\n')[1]).toBe('ERR INTERNAL stage bug');
      expect(lines.find((line) => line.msg === 'Session failed: stage bug')).toMatchObject({ level: 50, err: { message: 'stage bug' } });
      expect(calls.some(([name, , error]) => name === 'sessionFailed' && (error as RxferError).code === 'INTERNAL')).toBe(true);
      expect(state.error).toBeUndefined();
    } finally {
      await close();
    }
  });

  test('an RxferError closing the session is replied and logged at info', async () => {
    const { client, text, lines, state, close } = await setup();
    try {
      client.write('MKDIR\n');
      await until(() => state.done);
      await until(() => text().includes('ERR'));
      expect(text().split('\n')[1]).toBe('ERR BAD_COMMAND not here');
      expect(lines.find((line) => line.msg === 'Closing session: BAD_COMMAND not here')).toMatchObject({ level: 30, code: 'BAD_COMMAND' });
    } finally {
      await close();
    }
  });

  test('a peer that is gone gets no reply and no error log', async () => {
    const { client, text, lines, calls, state, ended, close } = await setup();
    try {
      client.write('DELETE\n');
      await until(() => state.done);
      await until(ended); // everything we sent has arrived
      expect(text().split('\n').slice(1)).toEqual(['']);
      expect(lines.find((line) => line.msg === 'Client connection reset')).toMatchObject({ level: 20, errno: 'ECONNRESET' });
      expect(calls.filter(([name]) => name === 'sessionFailed')).toEqual([]);
    } finally {
      await close();
    }
  });

  test.each(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'])('a peer gone by %s gets no reply and no error log either', async (code) => {
    const { client, text, lines, calls, state, ended, close } = await setup({
      answer: (event) => {
        if (event.type === 'command') throw Object.assign(new Error(`write ${code}`), { code });
        return event;
      },
    });
    try {
      client.write('HASH sha256\n');
      await until(() => state.done);
      await until(ended); // everything we sent has arrived
      expect(text().split('\n').slice(1)).toEqual(['']);
      expect(lines.find((line) => line.msg === 'Client connection reset')).toMatchObject({ level: 20, errno: code });
      expect(calls.filter(([name]) => name === 'sessionFailed')).toEqual([]);
    } finally {
      await close();
    }
  });

  test('mid-download an error writes no reply line (it would be read as data) and cuts the connection', async () => {
    const { client, text, state, ended, close } = await setup({
      answer: (event, ctx) => {
        if (event.type === 'command') {
          ctx.midBody = true;
          throw new RxferError('STALLED', 'too slow');
        }
        return event;
      },
    });
    try {
      await until(() => text().includes('\n'));
      client.write('QUIT\n');
      await until(() => state.done);
      await until(ended);
      expect(text().split('\n').slice(1)).toEqual(['']);
    } finally {
      await close();
    }
  });

  test("the server's shutdown reaches the stages once, as an event", async () => {
    const { shutdown$, stub, client, text, close } = await setup();
    try {
      await until(() => text().includes('\n'));
      client.write('HASH sha256\n');
      await until(() => stub.seen.length === 1);
      shutdown$.next();
      shutdown$.next();
      client.write('HASH sha256\n');
      await until(() => stub.seen.length === 3);
      expect(stub.seen.map((event) => event.type)).toEqual(['command', 'shutdown', 'command']);
    } finally {
      await close();
    }
  });

  test('the server giving up on the session: ERR SHUTTING_DOWN, and the session ends', async () => {
    const { abort$, text, state, close } = await setup();
    try {
      await until(() => text().includes('\n'));
      abort$.next();
      await until(() => state.done);
      await until(() => text().includes('ERR'));
      expect(text().split('\n')[1]).toBe('ERR SHUTTING_DOWN the server stopped before this transfer finished; nothing was committed');
    } finally {
      await close();
    }
  });

  test("the server's signals stop with the peer's input: the session ends when the peer leaves", async () => {
    const { client, state, abort$, text, actor, close } = await setup();
    try {
      await until(() => text().includes('\n'));
      client.end();
      await until(() => state.done);
      abort$.next(); // too late: nothing to do
      await actor.released();
      expect(state.error).toBeUndefined();
    } finally {
      await close();
    }
  });

  test('released() waits for every ended session to give back what it held', async () => {
    let finish: () => void = () => undefined;
    const dispose = jest.spyOn(SessionContext.prototype, 'dispose').mockImplementationOnce(() => new Promise<void>((resolve) => (finish = resolve)));
    const { client, state, actor, close } = await setup();
    try {
      client.write('QUIT\n');
      await until(() => state.done);
      const released = actor.released();
      expect(await settlesNow(released)).toBe(false);
      // Given back on a later turn, as a real release (files closed, staging files deleted) is: the
      // wait must let the event loop run meanwhile.
      setImmediate(finish);
      await released;
    } finally {
      dispose.mockRestore();
      await close();
    }
  });

  test('a session that fails to give back what it held is logged, and released() still ends', async () => {
    const dispose = jest.spyOn(SessionContext.prototype, 'dispose').mockRejectedValueOnce(new Error('release boom'));
    const { client, state, actor, lines, close } = await setup();
    try {
      client.write('QUIT\n');
      await until(() => state.done);
      await actor.released();
      expect(lines.find((line) => line.msg === 'Releasing the session failed')).toMatchObject({ level: 40, err: { message: 'release boom' } });
    } finally {
      dispose.mockRestore();
      await close();
    }
  });

  test('an idle peer is closed with IDLE_TIMEOUT', async () => {
    const { text, state, close } = await setup({ idleTimeoutMs: 1000 });
    try {
      await until(() => state.done);
      await until(() => text().includes('ERR'));
      expect(text().split('\n')[1]).toBe('ERR IDLE_TIMEOUT no traffic for 1 s; closing');
    } finally {
      await close();
    }
  });

  // The stall guard asks the decoder whether a frame is under way: only then is a quiet window a stall.
  test('a peer that stops half-way through a request line is cut with STALLED', async () => {
    const { client, text, state, close } = await setup({ stallTimeoutMs: 500 });
    try {
      client.write('STAT half-a-na');
      await until(() => state.done);
      await until(() => text().includes('ERR'));
      expect(text().split('\n')[1]).toMatch(/^ERR STALLED an unfinished request moved \d+ bytes in 500 ms/);
    } finally {
      await close();
    }
  });

  test('a peer quiet between requests is not stalled (only the idle timeout applies there)', async () => {
    const { client, text, state, close } = await setup({ stallTimeoutMs: 500 });
    try {
      client.write('HASH sha256\n');
      await until(() => text().split('\n').length > 2);
      // Three stall windows with nothing under way.
      await new Promise((resolve) => setTimeout(resolve, 1600));
      expect(state.done).toBe(false);
      client.write('QUIT\n');
      await until(() => state.done && (text().includes('OK bye') || text().includes('ERR')));
      expect(text()).not.toContain('STALLED');
      expect(text()).toContain('OK bye');
    } finally {
      await close();
    }
  });
});
