import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { RawClient, sha256 } from '../helpers/raw-client';
import { TestServer, TestServerOptions, stagingFiles, startTestServer, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;

/** Resolves with the connect error code (or 'connected'). */
const tryConnect = (port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });

describe('stopping the server', () => {
  let server: TestServer;
  const clients: RawClient[] = [];

  const serve = async (options: TestServerOptions) => {
    server = await startTestServer(options);
  };
  const connectRaw = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await server.close();
  });

  test('an idle client gets SHUTTING_DOWN and is closed; new connections are refused', async () => {
    await serve({ config: { server: { shutdownGraceMs: 10_000 } } });
    const idle = await connectRaw();
    const stopped = server.stop();
    expect(await idle.readLine()).toMatch(/^ERR SHUTTING_DOWN /);
    expect((await idle.waitClosed()).toString()).toBe('');
    await stopped;
    expect(await tryConnect(server.port)).toBe('ECONNREFUSED');
  });

  test('with a long grace, an upload in flight finishes and commits; idle clients are closed at once', async () => {
    await serve({ config: { server: { shutdownGraceMs: 10_000 } } });
    const data = randomBytes(2 * MiB);
    const uploader = await connectRaw();
    const idle = await connectRaw();
    await uploader.send(`UPLOAD ${data.length}\nlate.bin\n`);
    expect(await uploader.readLine()).toBe('OK file recv');
    await uploader.send(data.subarray(0, MiB));

    const stopped = server.stop();
    // The idle client is told right away, while the upload is still owed half its data.
    expect(await idle.readLine()).toMatch(/^ERR SHUTTING_DOWN /);
    await idle.waitClosed();

    await uploader.send(Buffer.concat([data.subarray(MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await uploader.readLine()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    // Then the session ends at the request boundary.
    expect(await uploader.readLine()).toMatch(/^ERR SHUTTING_DOWN /);
    expect((await uploader.waitClosed()).toString()).toBe('');
    await stopped;
    expect((await readFile(join(server.root, 'late.bin'))).equals(data)).toBe(true);
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('with server.shutdownGraceMs: 200, a stalled upload is cut, nothing is committed, and what arrived is kept for a resume', async () => {
    await serve({ config: { server: { shutdownGraceMs: 200 } } });
    await writeFile(join(server.root, 'stalled.bin'), 'older');
    const uploader = await connectRaw();
    await uploader.send(`UPLOAD ${MiB}\nstalled.bin\n`);
    expect(await uploader.readLine()).toBe('OK file recv');
    await uploader.send(randomBytes(1000));

    await server.stop();
    const rest = (await uploader.waitClosed()).toString();
    // The peer is told why, if the line gets through before the cut.
    if (rest !== '') expect(rest).toMatch(/^ERR SHUTTING_DOWN [^\n]*\n$/);
    expect(await userFiles(server.root)).toEqual(['stalled.bin']);
    expect(await readFile(join(server.root, 'stalled.bin'), 'utf8')).toBe('older');
    // A 1 MiB upload is resumable: its 1000 bytes stay in the server's partial-upload folder.
    const [partial, ...others] = await stagingFiles(server.root);
    expect(others).toEqual([]);
    expect(partial).toMatch(/^\.rxfer\/partials\//);
    expect((await stat(join(server.root, partial!))).size).toBe(1000);
  });

  test('stop() with no clients returns promptly and refuses new connections', async () => {
    await serve({ config: { server: { shutdownGraceMs: 10_000 } } });
    await server.stop();
    expect(await tryConnect(server.port)).toBe('ECONNREFUSED');
  });
});
