import './support/fail-fast';
import * as transient from '../../../src/io/transient-buffers';
import { RxferError } from '../../../src/errors/rxfer-error';
import { socketSource } from '../../../src/session/socket-source';
import { socketPair } from './support/socket-pair';

// Real sockets: more room than the unit default of fail-fast, still far below jest's 30 s.
jest.setTimeout(10_000);

const EVENTS = ['data', 'end', 'error', 'close', 'timeout'] as const;

const listen = async (idleTimeoutMs = 60_000, allowHalfOpen = false) => {
  const pair = await socketPair({ allowHalfOpen });
  const before = Object.fromEntries(EVENTS.map((event) => [event, pair.server.listenerCount(event)]));
  const chunks: Buffer[] = [];
  const state: { error?: unknown; completed: boolean } = { completed: false };
  const subscription = socketSource(pair.server, idleTimeoutMs).subscribe({
    next: (chunk) => chunks.push(chunk),
    error: (err) => (state.error = err),
    complete: () => (state.completed = true),
  });
  return { ...pair, before, chunks, state, subscription };
};

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

describe('socketSource', () => {
  test("the peer's bytes come out as they arrive, each noted as a transient buffer; its FIN completes", async () => {
    const noted = jest.spyOn(transient, 'noteTransientBytes');
    const { client, chunks, state, close } = await listen();
    try {
      client.write('hello');
      await until(() => chunks.length > 0);
      expect(Buffer.concat(chunks).toString()).toBe('hello');
      expect(noted).toHaveBeenCalledWith(5);
      client.end();
      await until(() => state.completed);
      expect(state.error).toBeUndefined();
    } finally {
      noted.mockRestore();
      await close();
    }
  });

  test("the peer's FIN completes even while our side stays open (a half-open socket never closes by itself)", async () => {
    const { client, server, state, close } = await listen(60_000, true);
    try {
      client.end();
      await until(() => state.completed);
      expect(server.destroyed).toBe(false);
    } finally {
      await close();
    }
  });

  test('a socket closed without a FIN completes too', async () => {
    const { server, state, close } = await listen();
    try {
      server.destroy();
      await until(() => state.completed);
    } finally {
      await close();
    }
  });

  test("the socket's error is the stream's error", async () => {
    const { server, state, close } = await listen();
    try {
      const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      server.emit('error', reset);
      expect(state.error).toBe(reset);
    } finally {
      await close();
    }
  });

  test('the idle timeout is set on the socket, and its expiry is IDLE_TIMEOUT with the seconds rounded', async () => {
    const { server, state, close } = await listen(2500);
    try {
      expect(server.timeout).toBe(2500);
      server.emit('timeout');
      const error = state.error as RxferError;
      expect(error).toBeInstanceOf(RxferError);
      expect(error.code).toBe('IDLE_TIMEOUT');
      expect(error.message).toBe('no traffic for 3 s; closing');
      expect(error.detail).toEqual({ idleTimeoutMs: 2500 });
    } finally {
      await close();
    }
  });

  test('an idle socket times out for real', async () => {
    const { state, close } = await listen(50);
    try {
      await until(() => state.error !== undefined);
      expect((state.error as RxferError).code).toBe('IDLE_TIMEOUT');
    } finally {
      await close();
    }
  });

  test('unsubscribing removes every listener and the idle timeout', async () => {
    const { server, before, subscription, close } = await listen(1000);
    try {
      subscription.unsubscribe();
      for (const event of EVENTS) expect(server.listenerCount(event)).toBe(before[event]);
      expect(server.timeout).toBe(0);
    } finally {
      await close();
    }
  });
});
