import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, TestServerOptions, eventually, startTestServer, userFiles } from '../helpers/server';

/**
 * A session now builds its pipeline only on its first input event (buildOnFirstValue), and takes the
 * server's shutdown/abort signals with one subscription each. Attacked from outside: connections that
 * say nothing, half a line, everything at once, FIN or RST before the first byte.
 */
describe('hostile 2026-12-04: a session whose stages are built on its first event', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const sockets: Socket[] = [];

  const serve = async (options: TestServerOptions = {}) => {
    server = await startTestServer(options);
  };
  const connectRaw = async (options?: { allowHalfOpen?: boolean }) => {
    const client = await RawClient.connect(server.port, options);
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    destroyAll(clients);
    for (const socket of sockets.splice(0)) socket.destroy();
    await server.close();
  });

  test('with no grace (abort at once) a connection that never sent a byte is told SHUTTING_DOWN and closed', async () => {
    await serve({ config: { server: { shutdownGraceMs: 0 } } });
    const silent = await connectRaw();
    await server.stop();
    const rest = (await silent.waitClosed()).toString();
    expect(rest).toMatch(/^ERR SHUTTING_DOWN [^\n]*\n$/);
  });

  test('shutdown while the very first request is half a line: the session is told and closed, not left waiting for the rest', async () => {
    await serve({ config: { server: { shutdownGraceMs: 10_000 } } });
    const client = await connectRaw();
    await client.send('DOWNL');
    const stopped = server.stop();
    // The grace is for transfers under way; half a command line is not one, and must not hold the stop for 10 s.
    const rest = (await client.waitClosed(8000)).toString();
    if (rest !== '') expect(rest).toMatch(/^ERR SHUTTING_DOWN /);
    await stopped;
  });

  test('a first chunk that is half a line and then silence is cut by the stall guard', async () => {
    await serve({ config: { limits: { stallTimeoutMs: 500, minBytesPerSecond: 1024 } } });
    const client = await connectRaw();
    await client.send('UPLOAD 10\nhalf-a-na');
    const rest = (await client.waitClosed(10_000)).toString();
    expect(rest).toMatch(/^ERR STALLED /m);
  });

  test('a connection that sends nothing at all is closed by the idle timeout (no first event ever comes)', async () => {
    await serve({ config: { limits: { idleTimeoutMs: 1000 } } });
    const client = await connectRaw();
    const rest = (await client.waitClosed(10_000)).toString();
    expect(rest).toMatch(/^ERR IDLE_TIMEOUT /);
  });

  test('a first chunk holding many pipelined requests and their data: every reply, in order, and the files are right', async () => {
    await serve();
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `burst/f${i}.txt`, data: Buffer.from(`file ${i} `.repeat(i + 1)) }));
    const burst = Buffer.concat([
      ...files.map((file) => uploadRequest(file.name, file.data)),
      ...files.map((file) => downloadRequest(file.name)),
      Buffer.from('DOWNLOAD\nmissing.txt\n'),
    ]);
    const client = await connectRaw();
    await client.send(burst);
    for (const file of files) expect(await client.readUploadOutcome()).toBe(`OK file data recv ${file.data.length} ${sha256(file.data)}`);
    for (const file of files) {
      expect(await client.readLine()).toBe(`OK ${file.data.length} ${sha256(file.data)}`);
      expect((await client.readBytes(file.data.length)).equals(file.data)).toBe(true);
    }
    expect(await client.readLine()).toMatch(/^NOT FOUND /);
    for (const file of files) expect((await readFile(join(server.root, file.name))).equals(file.data)).toBe(true);
  });

  test('requests in the same packet as the handshake, with FIN right behind them: all answered, then closed', async () => {
    await serve();
    const data = Buffer.from('sent with the FIN');
    const socket = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
    sockets.push(socket);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    // Written before 'connect' and ended at once: the first bytes the server sees come with the FIN.
    socket.end(Buffer.concat([uploadRequest('fin.txt', data), downloadRequest('fin.txt')]));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const lines = Buffer.concat(received).toString();
    expect(lines).toContain(`OK file data recv ${data.length} ${sha256(data)}\nOK ${data.length} ${sha256(data)}\n${data.toString()}`);
    expect((await readFile(join(server.root, 'fin.txt'))).equals(data)).toBe(true);
  });

  test('FIN before the first byte, and RST right after connect, free the connection slot (slots are not leaked by sessions never built)', async () => {
    await serve({ config: { server: { maxConnectionsPerIp: 4 } } });
    for (let round = 0; round < 3; round++) {
      const half = await Promise.all([connectRaw({ allowHalfOpen: true }), connectRaw({ allowHalfOpen: true })]);
      for (const client of half) client.end();
      for (const client of half) await client.waitClosed();
      const reset = await Promise.all([connectRaw(), connectRaw()]);
      for (const client of reset) client.socket.resetAndDestroy();
    }
    // Every one of the 12 above is gone; four fresh ones must each be served.
    await eventually(async () => {
      const probe = await RawClient.connect(server.port);
      const ok = !probe.greeting.startsWith('ERR');
      probe.destroy();
      return ok;
    }, 8000, 'the slots to be given back');
    const fresh = await Promise.all(Array.from({ length: 4 }, () => connectRaw()));
    for (const client of fresh) expect(client.greeting).not.toMatch(/^ERR/);
    for (const client of fresh) await client.send(downloadRequest('nothing-here'));
    for (const client of fresh) expect(await client.readLine()).toMatch(/^NOT FOUND /);
  });

  test('many connections that each send one byte and go: the server still serves, and writes nothing', async () => {
    await serve({ config: { server: { maxConnections: 2000, maxConnectionsPerIp: 2000 } } });
    const count = 200;
    let closed = 0;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < count; i++) {
        const socket = connect({ host: '127.0.0.1', port: server.port });
        sockets.push(socket);
        socket.on('error', () => undefined);
        // Read (and drop) what the server says, or 'end', and so 'close', never comes.
        socket.resume();
        socket.once('connect', () => {
          socket.write(i % 2 === 0 ? 'U' : '\n');
          if (i % 3 === 0) socket.resetAndDestroy();
          else socket.end();
        });
        socket.once('close', () => {
          if (++closed === count) resolve();
        });
      }
    });
    const client = await connectRaw();
    await client.send(uploadRequest('after.txt', 'still here'));
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 10 /);
    expect(await userFiles(server.root)).toEqual(['after.txt']);
  });
});
