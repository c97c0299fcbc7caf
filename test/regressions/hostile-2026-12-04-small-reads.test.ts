import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256 } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer } from '../helpers/server';

const KiB = 1024;

/**
 * Files of up to 64 KiB are now read synchronously (openSync O_NOFOLLOW|O_NONBLOCK, one readSync) and
 * sent in one write. Attacked by an operator's odd files under the storage root and by clients that
 * ask for small files in ways the stream path used to absorb.
 */
describe('hostile 2026-12-04: small files read whole and sent in one write', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  beforeEach(async () => {
    server = await startTestServer({ config: { limits: { stallTimeoutMs: 1000 } } });
  });
  afterEach(async () => {
    destroyAll(clients);
    for (const unix of servers.splice(0)) unix.close();
    for (const socket of sockets.splice(0)) socket.destroy();
    await server.close();
  });

  const connectRaw = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };
  const fromLine = (data: Buffer, offset: number) => `DOWNLOAD FROM ${offset} ${sha256(data.subarray(0, offset))}\n`;

  test('a FIFO, a socket file, a link and a link in a parent folder are refused, and the server goes on serving', async () => {
    execFileSync('mkfifo', [join(server.root, 'fifo')]);
    const unix = createServer();
    servers.push(unix);
    await new Promise<void>((resolve) => unix.listen(join(server.root, 'sock'), resolve));
    await writeFile(join(server.scratch, 'secret.txt'), 'outside the root');
    await symlink(join(server.scratch, 'secret.txt'), join(server.root, 'link.txt'));
    await symlink(server.scratch, join(server.root, 'linked-folder'));
    await mkdir(join(server.root, 'folder'));
    await writeFile(join(server.root, 'ok.txt'), 'fine');
    const client = await connectRaw();
    for (const name of ['fifo', 'sock', 'link.txt', 'linked-folder/secret.txt', 'folder']) {
      await client.send(downloadRequest(name));
      const reply = await client.readLine();
      expect(`${name}: ${reply}`).toMatch(/^[^:]+: (ERR [A-Z_]+|NOT FOUND) /);
      expect(reply).not.toMatch(/^OK /);
    }
    // The FIFO did not block the only thread, nor any other request: the connection still answers.
    await client.send(downloadRequest('ok.txt'));
    expect(await client.readLine()).toBe(`OK 4 ${sha256('fine')}`);
    expect((await client.readBytes(4)).toString()).toBe('fine');
  });

  test.each([0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1])('a file of %i bytes: the size, the digest and every byte are right', async (size) => {
    const data = randomBytes(size);
    await writeFile(join(server.root, 'f.bin'), data);
    const client = await connectRaw();
    await client.send(downloadRequest('f.bin'));
    expect(await client.readLine()).toBe(`OK ${size} ${sha256(data)}`);
    expect((await client.readBytes(size)).equals(data)).toBe(true);
    // Nothing more than the file: the next reply starts right after it.
    await client.send(downloadRequest('absent'));
    expect(await client.readLine()).toMatch(/^NOT FOUND /);
  });

  test.each([
    ['at 0', 0],
    ['in the middle', 1000],
    ['at the very end', 4096],
  ])('DOWNLOAD FROM %s of a small file gives the rest, and the whole file\'s size and digest', async (_what, offset) => {
    const data = randomBytes(4096);
    await writeFile(join(server.root, 'r.bin'), data);
    const client = await connectRaw();
    await client.send(fromLine(data, offset) + 'r.bin\n');
    const header = await client.readLine();
    expect(header).toBe(offset === 0 ? `OK 4096 ${sha256(data)}${header.includes(' from ') ? ' from 0' : ''}` : `OK 4096 ${sha256(data)} from ${offset}`);
    expect((await client.readBytes(4096 - offset)).equals(data.subarray(offset))).toBe(true);
    await client.send(downloadRequest('absent'));
    expect(await client.readLine()).toMatch(/^NOT FOUND /);
  });

  test('DOWNLOAD FROM with a prefix that does not match, or an offset past the end, gives the whole small file', async () => {
    const data = randomBytes(3000);
    await writeFile(join(server.root, 'm.bin'), data);
    const client = await connectRaw();
    await client.send(`DOWNLOAD FROM 1000 ${sha256('something else')}\nm.bin\n`);
    expect(await client.readLine()).toBe(`OK 3000 ${sha256(data)}`);
    expect((await client.readBytes(3000)).equals(data)).toBe(true);
    const longer = Buffer.concat([data, Buffer.from('tail')]);
    await client.send(`${fromLine(longer, longer.length)}m.bin\n`);
    expect(await client.readLine()).toBe(`OK 3000 ${sha256(data)}`);
    expect((await client.readBytes(3000)).equals(data)).toBe(true);
  });

  test('a small file replaced, grown and shrunk between downloads: each download is one consistent version', async () => {
    const client = await connectRaw();
    for (const size of [10, 60 * KiB, 70 * KiB, 5, 64 * KiB]) {
      const data = randomBytes(size);
      await writeFile(join(server.root, 'v.bin'), data);
      await client.send(downloadRequest('v.bin'));
      const header = await client.readLine();
      const [, length, digest] = /^OK (\d+) ([0-9a-f]{64})$/.exec(header) ?? [];
      const body = await client.readBytes(Number(length));
      expect(createHash('sha256').update(body).digest('hex')).toBe(digest);
      expect(body.equals(data)).toBe(true);
    }
  });

  test('a client that asks for thousands of small files and never reads: the server stops reading it, cuts it, and sent only a bounded amount', async () => {
    const data = randomBytes(60 * KiB);
    await writeFile(join(server.root, 'small.bin'), data);
    const count = 2000;
    const socket: Socket = connect({ host: '127.0.0.1', port: server.port });
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.pause();
    const requests = Buffer.concat(Array.from({ length: count }, () => downloadRequest('small.bin')));
    // Our own write may never finish if the server holds its input: don't wait for it.
    socket.write(requests);
    let closed = false;
    socket.once('close', () => (closed = true));
    // Unread, the connection is cut by the stall guard (ERR STALLED cannot be a line mid-data).
    await new Promise((resolve) => setTimeout(resolve, 4000));
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await eventually(() => closed, 20_000, 'the server to cut the connection that never reads');
    // Without the hold the server would have queued 2000 × 60 KiB = 117 MiB for this peer.
    expect(received).toBeLessThan(32 * 1024 * KiB);
    // And it still serves others.
    const other = await connectRaw();
    await other.send(downloadRequest('small.bin'));
    expect(await other.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
  }, 60_000);

  test('clients that disconnect in the middle of a burst of small downloads leave no open files behind', async () => {
    const data = randomBytes(30 * KiB);
    await writeFile(join(server.root, 'b.bin'), data);
    const openFds = async () => (await readdir('/proc/self/fd')).length;
    // Warm up (lazy fds of the first connection: the digest log, the worker) before the baseline.
    const warm = await connectRaw();
    await warm.send(downloadRequest('b.bin'));
    await warm.readLine();
    await warm.readBytes(data.length);
    const baseline = await openFds();
    for (let i = 0; i < 10; i++) {
      const client = await RawClient.connect(server.port);
      await client.send(Buffer.concat(Array.from({ length: 200 }, () => downloadRequest('b.bin'))));
      await client.readLine();
      client.socket.resetAndDestroy();
    }
    await eventually(async () => (await openFds()) <= baseline + 2, 10_000, 'the descriptors to come back');
  }, 60_000);
});
