import './support/fail-fast';
import { socketPair } from './support/socket-pair';
import { Observable, Subject, map } from 'rxjs';
import { parseConfig } from '../../../src/config/load-config';
import type { Stage } from '../../../src/pipeline/stage';
import { ConnectionActor } from '../../../src/session/connection-actor';
import { type SessionEvent, replyEvent } from '../../../src/session/session-event';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import { captureLogs, recordingObserver } from './support/fake-session';

/**
 * How a session lets its connection go once it has ended: our side is ended after the last reply,
 * and a peer that does not let go in turn (it keeps its own side open, as a half-open client may)
 * is cut after a while instead of holding the socket for ever. Only setTimeout is faked, so the
 * while passes at once; the sockets are real.
 */
jest.setTimeout(10_000);

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

/** Answers QUIT with bye and the end of the session. */
const quitStage: Stage = {
  name: 'quit',
  apply: (event$: Observable<SessionEvent>) => event$.pipe(map(() => replyEvent({ kind: 'bye' }, { closeAfter: true }))),
};

describe('ConnectionActor, letting the connection go', () => {
  afterEach(() => jest.useRealTimers());

  test('a peer that keeps its side open after our last reply is cut after a while', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'hrtime', 'performance', 'Date', 'setInterval', 'clearInterval'] });
    // Half-open: our FIN does not make it end its side.
    const { server, client, close } = await socketPair({ clientAllowsHalfOpen: true });
    try {
      let text = '';
      let clientEnded = false;
      client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      client.on('end', () => (clientEnded = true));
      const config = parseConfig({ storage: { kind: 'local', root: '/nonexistent-rxfer-unit' }, auth: { anonymous: 'read' } });
      const { logger } = captureLogs();
      const actor = new ConnectionActor([quitStage], config, logger, {} as StorageAdapter, recordingObserver().observer);
      let done = false;
      actor.run(server, new Subject<void>()).subscribe({ complete: () => (done = true) });
      client.write('QUIT\n');
      await until(() => done && clientEnded);
      expect(text.split('\n')[1]).toBe('OK bye');
      // Our side is ended; theirs is not, so the socket is still there.
      expect(server.destroyed).toBe(false);
      jest.advanceTimersByTime(2000);
      expect(server.destroyed).toBe(true);
    } finally {
      await close();
    }
  });

  test('an error mid-download cuts the connection at once, even from a peer that keeps its side open', async () => {
    const { server, client, close } = await socketPair({ clientAllowsHalfOpen: true });
    try {
      const midDownload: Stage = {
        name: 'mid-download',
        apply: (event$, ctx) =>
          event$.pipe(
            map(() => {
              ctx.midBody = true;
              throw Object.assign(new Error('the file failed mid-send'), { code: 'EIO' });
            }),
          ),
      };
      const config = parseConfig({ storage: { kind: 'local', root: '/nonexistent-rxfer-unit' }, auth: { anonymous: 'read' } });
      const actor = new ConnectionActor([midDownload], config, captureLogs().logger, {} as StorageAdapter, recordingObserver().observer);
      let destroyedAtEnd: boolean | undefined;
      actor.run(server, new Subject<void>()).subscribe({ complete: () => (destroyedAtEnd = server.destroyed) });
      client.write('DOWNLOAD f\n');
      await until(() => destroyedAtEnd !== undefined);
      // Not left to the graceful end (which a half-open peer would hold for CLOSE_FLUSH_MS).
      expect(destroyedAtEnd).toBe(true);
    } finally {
      await close();
    }
  });
});
