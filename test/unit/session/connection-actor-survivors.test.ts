import './support/fail-fast';
import { socketPair } from './support/socket-pair';
import { Subject, map } from 'rxjs';
import { parseConfig } from '../../../src/config/load-config';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { Stage } from '../../../src/pipeline/stage';
import { ConnectionActor } from '../../../src/session/connection-actor';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import { captureLogs, recordingObserver } from './support/fake-session';

/**
 * The counterpart of connection-actor-close.test.ts's "an error mid-download cuts the connection at
 * once": outside a download, an error that ends the session is replied, and the connection is let go
 * gracefully like any other end (our side ended, the peer's left to it, cut only after
 * CLOSE_FLUSH_MS), not cut at once. Real sockets; the half-open client keeps its side open so the
 * difference shows.
 */
jest.setTimeout(10_000);

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

describe('ConnectionActor: an error outside a download', () => {
  test('is replied and our side is ended, not cut: a peer that keeps its side open still has the connection', async () => {
    const { server, client, close } = await socketPair({ clientAllowsHalfOpen: true });
    try {
      let text = '';
      let clientEnded = false;
      let clientError: unknown;
      client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      client.on('end', () => (clientEnded = true));
      client.on('error', (err) => (clientError = err));
      const refusing: Stage = {
        name: 'refusing',
        apply: (event$) =>
          event$.pipe(
            map(() => {
              throw new RxferError('BAD_COMMAND', 'not here');
            }),
          ),
      };
      const config = parseConfig({ storage: { kind: 'local', root: '/nonexistent-rxfer-unit' }, auth: { anonymous: 'read' } });
      const actor = new ConnectionActor([refusing], config, captureLogs().logger, {} as StorageAdapter, recordingObserver().observer);
      let destroyedAtEnd: boolean | undefined;
      actor.run(server, new Subject<void>()).subscribe({ complete: () => (destroyedAtEnd = server.destroyed) });
      client.write('MKDIR d\n');
      await until(() => destroyedAtEnd !== undefined && clientEnded);
      expect(text.split('\n')[1]).toBe('ERR BAD_COMMAND not here');
      // Ended (FIN sent after the reply), not destroyed: the half-open peer still holds a live socket.
      expect(destroyedAtEnd).toBe(false);
      expect(server.writableEnded).toBe(true);
      expect(server.destroyed).toBe(false);
      expect(clientError).toBeUndefined();
    } finally {
      await close();
    }
  });
});
