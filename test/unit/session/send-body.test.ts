import './support/fail-fast';
import { Readable } from 'node:stream';
import * as transient from '../../../src/io/transient-buffers';
import { RxferError } from '../../../src/errors/rxfer-error';
import { FlowControl } from '../../../src/session/flow-control';
import { InMemoryBody } from '../../../src/io/in-memory-body';
import { sendBody } from '../../../src/session/send-body';
import { socketPair } from './support/socket-pair';

// Real sockets: more room than the unit default of fail-fast, still far below jest's 30 s.
jest.setTimeout(10_000);

const limits = { stallTimeoutMs: 60_000, minBytesPerSecond: 1 };

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
};

const setup = async (sendLimits = limits) => {
  const pair = await socketPair();
  const flow = new FlowControl(pair.server);
  const received: Buffer[] = [];
  pair.client.on('data', (chunk: Buffer) => received.push(chunk));
  const got = () => Buffer.concat(received);
  const send = (stream: Readable, size: number, onSent?: (bytes: number) => void) => {
    const state: { error?: unknown; completed: boolean } = { completed: false };
    const subscription = sendBody(pair.server, flow, { stream, size }, sendLimits, onSent).subscribe({ error: (err) => (state.error = err), complete: () => (state.completed = true) });
    return { state, subscription };
  };
  return { ...pair, flow, got, send };
};

describe.each([
  ['a stream', (bytes: Buffer) => Readable.from(bytes.length ? [bytes.subarray(0, 3), bytes.subarray(3)] : [])],
  ['a body in memory', (bytes: Buffer) => new InMemoryBody(bytes)],
])('sendBody from %s', (_label, bodyOf) => {
  test('sends exactly the bytes, tells of each, notes them as transient, then completes', async () => {
    const noted = jest.spyOn(transient, 'noteTransientBytes');
    const { send, got, close } = await setup();
    try {
      const sent: number[] = [];
      const { state } = send(bodyOf(Buffer.from('hello')), 5, (bytes) => sent.push(bytes));
      await until(() => state.completed);
      await until(() => got().length === 5);
      expect(got().toString()).toBe('hello');
      expect(sent.reduce((a, b) => a + b, 0)).toBe(5);
      expect(noted.mock.calls.reduce((sum, [bytes]) => sum + bytes, 0)).toBe(5);
      expect(state.error).toBeUndefined();
    } finally {
      noted.mockRestore();
      await close();
    }
  });

  test('an empty body completes and tells of nothing', async () => {
    const { send, close } = await setup();
    try {
      const sent: number[] = [];
      const { state } = send(bodyOf(Buffer.alloc(0)), 0, (bytes) => sent.push(bytes));
      await until(() => state.completed);
      expect(sent).toEqual([]);
    } finally {
      await close();
    }
  });

  test('a socket already gone: the send fails as a reset connection', async () => {
    const { send, server, close } = await setup();
    try {
      server.destroy();
      const { state } = send(bodyOf(Buffer.from('hello')), 5);
      await until(() => state.error !== undefined);
      expect((state.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      expect((state.error as Error).message).toBe('the connection closed while data was being sent');
    } finally {
      await close();
    }
  });

  test('no input is read while it runs; input goes on after', async () => {
    const { send, flow, close } = await setup();
    try {
      const { state } = send(bodyOf(Buffer.from('hello')), 5);
      await until(() => state.completed);
      expect(flow.paused).toBe(false);
    } finally {
      await close();
    }
  });
});

describe('sendBody from a stream', () => {
  test('input is held while the file is sent', async () => {
    const { send, flow, close } = await setup();
    try {
      const stream = new Readable({ read() {} });
      const { state, subscription } = send(stream, 5);
      expect(flow.paused).toBe(true);
      stream.push('hello');
      stream.push(null);
      await until(() => state.completed);
      expect(flow.paused).toBe(false);
      subscription.unsubscribe();
    } finally {
      await close();
    }
  });

  test('a file shorter than announced breaks the framing: STORAGE_FAILED with the real numbers', async () => {
    const { send, close } = await setup();
    try {
      const { state } = send(Readable.from([Buffer.from('hel')]), 5);
      await until(() => state.error !== undefined);
      const error = state.error as RxferError;
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toBe('file changed while it was sent: 3 of 5 bytes');
      expect(error.detail).toEqual({ sent: 3, size: 5 });
    } finally {
      await close();
    }
  });

  test('a file that fails to read: STORAGE_FAILED with its reason; the file is closed, input resumed', async () => {
    const { send, flow, close } = await setup();
    try {
      const stream = new Readable({ read() {} });
      const { state } = send(stream, 5);
      stream.destroy(new Error('EIO: i/o error'));
      await until(() => state.error !== undefined);
      expect((state.error as RxferError).code).toBe('STORAGE_FAILED');
      expect((state.error as RxferError).message).toBe('reading the file failed: EIO: i/o error');
      expect(flow.paused).toBe(false);
    } finally {
      await close();
    }
  });

  test('the connection closing mid-file ends the send, and the file', async () => {
    const { send, server, close } = await setup();
    try {
      const stream = new Readable({ read() {} });
      const { state } = send(stream, 5);
      server.destroy();
      await until(() => state.error !== undefined);
      expect((state.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      expect(stream.destroyed).toBe(true);
    } finally {
      await close();
    }
  });

  test('unsubscribing removes its listeners and closes the file', async () => {
    const { send, server, close } = await setup();
    try {
      const before = { close: server.listenerCount('close'), drain: server.listenerCount('drain') };
      const stream = new Readable({ read() {} });
      const { subscription } = send(stream, 5);
      subscription.unsubscribe();
      expect(server.listenerCount('close')).toBe(before.close);
      expect(server.listenerCount('drain')).toBe(before.drain);
      expect(stream.listenerCount('data')).toBe(0);
      expect(stream.listenerCount('end')).toBe(0);
      expect(stream.listenerCount('error')).toBe(0);
      expect(stream.destroyed).toBe(true);
    } finally {
      await close();
    }
  });

  test('a peer that does not read: the file is paused when the socket is full, resumed when it drains', async () => {
    const { send, client, got, close } = await setup();
    try {
      client.pause();
      const size = 8 * 1024 * 1024;
      const chunk = Buffer.alloc(256 * 1024, 7);
      let pushed = 0;
      const stream = new Readable({
        read() {
          if (pushed === size) return void this.push(null);
          pushed += chunk.length;
          this.push(chunk);
        },
      });
      const { state } = send(stream, size);
      await until(() => stream.isPaused());
      // Paused well before the whole file is read into memory.
      expect(pushed).toBeLessThan(size);
      client.resume();
      await until(() => state.completed);
      await until(() => got().length === size);
    } finally {
      await close();
    }
  });
});

describe('sendBody from a body in memory', () => {
  test('a large body the peer does not read: done only once the socket drains, input held meanwhile', async () => {
    const { send, client, flow, got, close } = await setup();
    try {
      client.pause();
      const whole = Buffer.alloc(8 * 1024 * 1024, 1);
      const { state } = send(new InMemoryBody(whole), whole.length);
      expect(state.completed).toBe(false);
      expect(flow.paused).toBe(true);
      client.resume();
      await until(() => state.completed);
      expect(flow.paused).toBe(false);
      await until(() => got().length === whole.length);
    } finally {
      await close();
    }
  });

  test('the connection closing while it waits to drain ends the send', async () => {
    const { send, client, server, close } = await setup();
    try {
      client.pause();
      const whole = Buffer.alloc(8 * 1024 * 1024, 1);
      const { state } = send(new InMemoryBody(whole), whole.length);
      expect(state.completed).toBe(false);
      server.destroy();
      await until(() => state.error !== undefined);
      expect((state.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    } finally {
      await close();
    }
  });

  test('a body in memory of another size than announced goes the stream way and fails the size check', async () => {
    const { send, close } = await setup();
    try {
      const { state } = send(new InMemoryBody(Buffer.from('hel')), 5);
      await until(() => state.error !== undefined);
      expect((state.error as RxferError).message).toBe('file changed while it was sent: 3 of 5 bytes');
    } finally {
      await close();
    }
  });
});

/** 8 MiB: more than the loopback socket takes while the peer reads nothing (MAX_BACKLOG_BYTES is 256 KiB). */
const BIG = 8 * 1024 * 1024;

describe.each([
  ['a stream (one chunk)', (bytes: Buffer) => Readable.from([bytes])],
  ['a body in memory', (bytes: Buffer) => new InMemoryBody(bytes)],
])('sendBody from %s, to a peer that does not read', (_label, bodyOf) => {
  test('not done while more than the allowed backlog waits in the socket; unsubscribing then leaves no listener on it', async () => {
    const { send, client, server, close } = await setup();
    try {
      client.pause();
      const before = { close: server.listenerCount('close'), drain: server.listenerCount('drain') };
      const body = bodyOf(Buffer.alloc(BIG, 3));
      const { state, subscription } = send(body, BIG);
      // Every byte handed to the socket (a body in memory at once, a stream once it ended), most of them still in its buffer.
      await until(() => body instanceof InMemoryBody || body.readableEnded || body.destroyed || state.completed);
      await new Promise((resolve) => setImmediate(resolve));
      expect(server.writableLength).toBeGreaterThan(256 * 1024);
      expect(state.completed).toBe(false);
      subscription.unsubscribe();
      expect(server.listenerCount('close')).toBe(before.close);
      expect(server.listenerCount('drain')).toBe(before.drain);
    } finally {
      await close();
    }
  });

  test('done once the peer reads and the socket drains', async () => {
    const { send, client, got, close } = await setup();
    try {
      client.pause();
      const body = bodyOf(Buffer.alloc(BIG, 5));
      const { state } = send(body, BIG);
      await until(() => body instanceof InMemoryBody || body.readableEnded || body.destroyed || state.completed);
      expect(state.completed).toBe(false);
      client.resume();
      await until(() => state.completed || state.error !== undefined);
      expect(state.completed).toBe(true);
      await until(() => got().length === BIG);
    } finally {
      await close();
    }
  });

  test('a peer that stops reading is caught by the stall guard: STALLED', async () => {
    const { send, client, close } = await setup({ stallTimeoutMs: 100, minBytesPerSecond: 1024 * 1024 * 1024 });
    try {
      client.pause();
      const { state } = send(bodyOf(Buffer.alloc(BIG, 4)), BIG);
      await until(() => state.error !== undefined || state.completed);
      expect((state.error as RxferError).code).toBe('STALLED');
    } finally {
      await close();
    }
  });

  test('a socket closed for a while already (its close event long gone): the send fails as a reset connection', async () => {
    const { send, server, close } = await setup();
    try {
      server.destroy();
      await new Promise((resolve) => server.once('close', resolve));
      const { state } = send(bodyOf(Buffer.from('hello')), 5);
      await until(() => state.error !== undefined || state.completed);
      expect((state.error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    } finally {
      await close();
    }
  });
});
