import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { AddressInfo, createServer, Server, Socket, connect } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { RxferError } from '../../src/errors/rxfer-error';
import { ReplyReader } from '../../src/client/reply-reader';
import { WRITE_WINDOW_HIGH_BYTES } from '../../src/io/write-window';

const BODY = Buffer.from('he\nl\r\n', 'latin1'); // 6 bytes with a newline (and a \r before one) inside
const SHA = createHash('sha256').update(BODY).digest('hex');
const GREETING = 'OK rxfer/1 caps=upload,addfile,download,quit hash=sha256 max-line=4096';
/** A recorded server stream: greeting, upload ack, download header + body, then one more line. */
const RECORDED = Buffer.concat([
  Buffer.from(`${GREETING}\r\nOK file recv\nOK 6 ${SHA}\n`),
  BODY,
  Buffer.from('OK bye\n'),
]);
const EXPECTED = { lines: [GREETING, 'OK file recv', `OK 6 ${SHA}`, 'OK bye'], body: BODY };

class CollectingSink extends Writable {
  readonly chunks: Buffer[] = [];
  constructor(highWaterMark = 16 * 1024, private readonly delayMs = 0) {
    super({ highWaterMark });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this.chunks.push(chunk);
    if (this.delayMs > 0) setTimeout(done, this.delayMs);
    else done();
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * The reads a client makes over the recorded stream, in order; the body through a sink, or kept in
 * memory (readBodyInMemory, as small downloads and LIST pages are read).
 */
const readSession = async (reader: ReplyReader, inMemory = false) => {
  const lines = [await reader.readLine(4096), await reader.readLine(4096), await reader.readLine(4096)];
  const sink = new CollectingSink();
  if (inMemory) await reader.readBodyInMemory(6, (chunk) => sink.chunks.push(chunk));
  else await reader.readBody(6, sink);
  lines.push(await reader.readLine(4096));
  return { lines, body: sink.data };
};

const feed = async (chunks: Buffer[], inMemory = false) => {
  const source = new PassThrough();
  const reader = new ReplyReader(source);
  const session = readSession(reader, inMemory);
  for (const chunk of chunks) source.write(chunk);
  return session;
};

describe('ReplyReader', () => {
  test('gives the same lines and body for every split point of the recorded stream', async () => {
    for (let at = 0; at <= RECORDED.length; at++) {
      const result = await feed([RECORDED.subarray(0, at), RECORDED.subarray(at)]);
      expect({ at, ...result }).toEqual({ at, ...EXPECTED });
    }
  });

  test('gives the same lines and body when fed byte by byte', async () => {
    const bytes = [...RECORDED].map((byte) => Buffer.from([byte]));
    await expect(feed(bytes)).resolves.toEqual(EXPECTED);
  });

  test('a body kept in memory: the same lines and bytes for every split point, and byte by byte', async () => {
    for (let at = 0; at <= RECORDED.length; at++) {
      const result = await feed([RECORDED.subarray(0, at), RECORDED.subarray(at)], true);
      expect({ at, ...result }).toEqual({ at, ...EXPECTED });
    }
    await expect(feed([...RECORDED].map((byte) => Buffer.from([byte])), true)).resolves.toEqual(EXPECTED);
  });

  test('a body kept in memory whose reader throws: the read fails with that error, and the connection reads on', async () => {
    const source = new PassThrough();
    const reader = new ReplyReader(source);
    source.write('abcdefOK next\n');
    const broken = new Error('hash failed');
    await expect(
      reader.readBodyInMemory(6, () => {
        throw broken;
      }),
    ).rejects.toBe(broken);
    // The caller abandons such a connection (download-file.request.ts); the reader itself stays usable.
    await expect(reader.readLine(4096)).resolves.toBe('OK next');
  });

  test('carries leftovers when everything arrives before the first read', async () => {
    const source = new PassThrough();
    const reader = new ReplyReader(source);
    source.write(RECORDED);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(readSession(reader)).resolves.toEqual(EXPECTED);
  });

  describe('over a real socket pair', () => {
    let server: Server;
    let serverSide: Promise<Socket>;
    let client: Socket;

    beforeEach(async () => {
      server = createServer();
      serverSide = once(server, 'connection').then(([socket]) => socket as Socket);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    });
    afterEach(async () => {
      client.destroy();
      (await serverSide).destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    test('reads the recorded stream written in pieces with pauses between them', async () => {
      const reader = new ReplyReader(client);
      const session = readSession(reader);
      const peer = await serverSide;
      for (let at = 0; at < RECORDED.length; at += 7) {
        peer.write(RECORDED.subarray(at, at + 7));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await expect(session).resolves.toEqual(EXPECTED);
    });

    test('pauses the socket while the sink is full and delivers every byte', async () => {
      const reader = new ReplyReader(client);
      // Three times the write window: a sink this slow must fill it, and the socket must then wait.
      const body = Buffer.alloc(3 * WRITE_WINDOW_HIGH_BYTES);
      for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
      const peer = await serverSide;
      peer.write(Buffer.concat([body, Buffer.from('OK bye\n')]));
      const sink = new CollectingSink(64 * 1024, 1);
      let sawPause = false;
      let mostBuffered = 0;
      const watch = setInterval(() => {
        sawPause ||= client.isPaused();
        mostBuffered = Math.max(mostBuffered, sink.writableLength);
      }, 1);
      await reader.readBody(body.length, sink);
      clearInterval(watch);
      expect(sawPause).toBe(true);
      // Bounded by the window, give or take the socket read in hand when it filled.
      expect(mostBuffered).toBeLessThanOrEqual(WRITE_WINDOW_HIGH_BYTES + 256 * 1024);
      await expect(reader.readLine(4096)).resolves.toBe('OK bye');
      await new Promise((resolve) => sink.end(resolve));
      expect(sink.data.equals(body)).toBe(true);
    });

    test('rejects a body read with CONNECTION_LOST when the server closes mid-body', async () => {
      const reader = new ReplyReader(client);
      const peer = await serverSide;
      peer.end(Buffer.from('abc'));
      const error = await reader.readBody(10, new CollectingSink()).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RxferError);
      expect((error as RxferError).code).toBe('CONNECTION_LOST');
    });

    test('a body kept in memory: CONNECTION_LOST when the server closes mid-body, after the bytes that came', async () => {
      const reader = new ReplyReader(client);
      const peer = await serverSide;
      peer.end(Buffer.from('abc'));
      const kept: Buffer[] = [];
      const error = await reader.readBodyInMemory(10, (chunk) => kept.push(chunk)).catch((err: unknown) => err);
      expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
      expect(Buffer.concat(kept).toString()).toBe('abc');
    });

    test('still serves a line that was buffered before the server closed', async () => {
      const reader = new ReplyReader(client);
      (await serverSide).end('ERR TOO_MANY_CONNECTIONS the server is full\n');
      await once(client, 'close');
      await expect(reader.readLine(4096)).resolves.toBe('ERR TOO_MANY_CONNECTIONS the server is full');
      await expect(reader.readLine(4096)).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    });
  });

  test('rejects a line longer than the limit with PROTOCOL_VIOLATION', async () => {
    const source = new PassThrough();
    const reader = new ReplyReader(source);
    const line = reader.readLine(16);
    source.write('0123456789');
    source.write('0123456789\n');
    await expect(line).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('accepts a line of exactly the limit, newline included', async () => {
    const source = new PassThrough();
    const reader = new ReplyReader(source);
    source.write('012345678\nnext\n');
    await expect(reader.readLine(10)).resolves.toBe('012345678');
    await expect(reader.readLine(10)).resolves.toBe('next');
  });

  test('reads an empty body without waiting for data', async () => {
    const reader = new ReplyReader(new PassThrough());
    const sink = new CollectingSink();
    await reader.readBody(0, sink);
    expect(sink.chunks).toEqual([]);
    const kept: Buffer[] = [];
    await reader.readBodyInMemory(0, (chunk) => kept.push(chunk));
    expect(kept).toEqual([]);
  });
});
