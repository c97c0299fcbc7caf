import { randomBytes } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { Server, createServer } from 'node:net';
import { join } from 'node:path';
import { RxferClient } from '../../src/client';
import { RxferError } from '../../src/errors/rxfer-error';
import { hashOf } from '../../src/integrity/hash-algorithm';
import { RawClient, destroyAll, sha256 } from '../helpers/raw-client';
import { TestServer, TestServerOptions, eventually, startTestServer, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;
const blake3 = (data: Buffer | string): string => hashOf('blake3', Buffer.from(data));

/** UPLOAD header, data and the given trailer line, as one write. */
const upload = (name: string, data: Buffer, trailer: string): Buffer => Buffer.concat([Buffer.from(`UPLOAD ${data.length}\n${name}\n`), data, Buffer.from(`${trailer}\n`)]);

const codeOf = async (work: Promise<unknown>): Promise<string> => {
  try {
    await work;
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    return (err as RxferError).code;
  }
  throw new Error('did not fail');
};

describe.each<[string, TestServerOptions]>([
  ['local storage', {}],
  ['memory storage', { config: { storage: { kind: 'memory' } } }],
])('BLAKE3, negotiated with HASH (%s)', (_label, options) => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    server = await startTestServer(options);
  });

  afterEach(async () => {
    destroyAll(clients.splice(0));
    await server.close();
  });

  test('the greeting offers both, SHA-256 first (the default); HASH BLAKE3 switches the connection', async () => {
    const client = await connect();
    expect(client.greeting).toMatch(/ caps=\S*\bhash\b/);
    expect(client.greeting).toMatch(/ hash=sha256,blake3( |$)/);
    await client.send('HASH BLAKE3\n');
    expect(await client.readLine()).toBe('OK hash blake3');
    const data = Buffer.from('verified with BLAKE3\n');
    await client.send(Buffer.concat([upload('b3.txt', data, `BLAKE3 ${blake3(data)}`), Buffer.from('DOWNLOAD\nb3.txt\nSTAT\nb3.txt\n')]));
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv ${data.length} ${blake3(data)}`, `OK ${data.length} ${blake3(data)}`]);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);
    expect(await client.readLine()).toMatch(new RegExp(`^OK stat file ${data.length} ${blake3(data)} \\d+$`));
  });

  test('a wrong BLAKE3 digest stores nothing and the session goes on', async () => {
    const client = await connect();
    await client.send('HASH BLAKE3\n');
    expect(await client.readLine()).toBe('OK hash blake3');
    const data = Buffer.from('tampered on the way');
    await client.send(upload('bad.txt', data, `BLAKE3 ${blake3('something else')}`));
    expect(await client.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^ERR CHECKSUM_MISMATCH .*BLAKE3.*nothing stored$/)]);
    await client.send('STAT\nbad.txt\n');
    expect(await client.readLine()).toMatch(/^NOT FOUND/);
  });

  test('a trailer in the other algorithm than the connection chose is refused, nothing stored', async () => {
    const client = await connect();
    await client.send('HASH BLAKE3\n');
    expect(await client.readLine()).toBe('OK hash blake3');
    const data = Buffer.from('a SHA-256 trailer on a BLAKE3 connection');
    await client.send(upload('mixed.txt', data, `SHA256 ${sha256(data)}`));
    expect(await client.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^ERR CHECKSUM_MISMATCH .*SHA256 digest.*verifies with BLAKE3/)]);
    // And the other way round, on a connection left with SHA-256.
    const plain = await connect();
    await plain.send(upload('mixed.txt', data, `BLAKE3 ${blake3(data)}`));
    expect(await plain.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^ERR CHECKSUM_MISMATCH .*BLAKE3 digest.*verifies with SHA256/)]);
    await plain.send('STAT\nmixed.txt\n');
    expect(await plain.readLine()).toMatch(/^NOT FOUND/);
  });

  test('an algorithm the server does not offer is HASH_UNSUPPORTED, and the connection stays with SHA-256', async () => {
    const client = await connect();
    await client.send('HASH MD5\n');
    expect(await client.readLine()).toMatch(/^ERR HASH_UNSUPPORTED this server verifies with SHA256, BLAKE3; "md5" is not offered/);
    const data = Buffer.from('still SHA-256');
    await client.send(upload('still.txt', data, `SHA256 ${sha256(data)}`));
    expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);
  });

  test('HASH applies to the requests after it: one connection can switch back and forth', async () => {
    const client = await connect();
    const data = Buffer.from('same bytes, two digests');
    await client.send(Buffer.concat([upload('twice.txt', data, `SHA256 ${sha256(data)}`), Buffer.from('HASH BLAKE3\nDOWNLOAD\ntwice.txt\nHASH SHA256\nSTAT\ntwice.txt\n')]));
    expect(await client.readLines(4)).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`, 'OK hash blake3', `OK ${data.length} ${blake3(data)}`]);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);
    expect(await client.readLines(2)).toEqual(['OK hash sha256', expect.stringMatching(new RegExp(`^OK stat file ${data.length} ${sha256(data)} `))]);
  });

  test('the client library: a 3 MiB round trip with hash: blake3, checked against both digests', async () => {
    const data = randomBytes(3 * MiB + 5);
    const local = join(server.scratch, 'big.bin');
    await writeFile(local, data);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, hash: 'blake3' });
    expect(client.hash).toBe('blake3');
    await expect(client.upload(local, 'dir/big.bin')).resolves.toEqual({ size: data.length, digest: blake3(data) });
    const back = join(server.scratch, 'back.bin');
    await expect(client.download('dir/big.bin', back)).resolves.toEqual({ size: data.length, digest: blake3(data) });
    expect((await readFile(back)).equals(data)).toBe(true);
    await client.quit();
    // A SHA-256 client sees the same file with its own digest (computed once, then remembered beside the other).
    const plain = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    const fetched = await plain.downloadBuffer('dir/big.bin');
    expect(fetched).toMatchObject({ size: data.length, digest: sha256(data) });
    expect((await plain.stat('dir/big.bin')).digest).toBe(sha256(data));
    await plain.quit();
    const again = await RxferClient.connect({ host: '127.0.0.1', port: server.port, hash: 'blake3' });
    expect((await again.stat('dir/big.bin')).digest).toBe(blake3(data));
    expect(await again.list('dir')).toEqual([expect.objectContaining({ name: 'dir/big.bin', digest: blake3(data) })]);
    await again.quit();
  });

  test('many small files pipelined with BLAKE3 arrive exactly', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, hash: 'blake3' });
    const files = Array.from({ length: 50 }, (_, i) => randomBytes(i * 97));
    const results = await Promise.all(files.map((data, i) => client.uploadBuffer(`small/${i}`, data)));
    expect(results).toEqual(files.map((data) => ({ size: data.length, digest: blake3(data) })));
    for (const [i, data] of files.entries()) expect((await client.downloadBuffer(`small/${i}`)).data.equals(data)).toBe(true);
    await client.quit();
  });
});

describe('BLAKE3 resume, both ways (local storage)', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients.splice(0));
    await server.close();
  });

  test('a kept upload is proven with the digest of the connection asking, and resumed under BLAKE3', async () => {
    const data = randomBytes(2 * MiB + 333);
    const sent = MiB + 77;
    const first = await RawClient.connect(server.port);
    clients.push(first);
    await first.send(`HASH BLAKE3\nUPLOAD ${data.length}\nr.bin\n`);
    expect(await first.readLines(2)).toEqual(['OK hash blake3', 'OK file recv']);
    await first.send(data.subarray(0, sent));
    const partialsDir = join(server.root, '.rxfer', 'partials');
    await eventually(async () => {
      const kept = (await readdir(partialsDir).catch(() => [] as string[])).filter((name) => !name.endsWith('.json'));
      return kept.length === 1 && (await stat(join(partialsDir, kept[0]!))).size === sent;
    });
    first.socket.destroy();

    const second = await RawClient.connect(server.port);
    clients.push(second);
    // Asked under SHA-256 first, then under BLAKE3: the same kept bytes, each connection's digest.
    // (BUSY until the server has seen the first connection go.)
    let reply = 'ERR BUSY';
    while (reply.startsWith('ERR BUSY')) {
      await second.send('RESUME\nr.bin\n');
      reply = await second.readLine();
    }
    expect(reply).toBe(`OK partial ${sent} ${sha256(data.subarray(0, sent))}`);
    await second.send('HASH BLAKE3\nRESUME\nr.bin\n');
    expect(await second.readLines(2)).toEqual(['OK hash blake3', `OK partial ${sent} ${blake3(data.subarray(0, sent))}`]);
    await second.send(`UPLOAD ${data.length} FROM ${sent} ${blake3(data.subarray(0, sent))}\nr.bin\n`);
    expect(await second.readLine()).toBe('OK file recv');
    await second.send(Buffer.concat([data.subarray(sent), Buffer.from(`BLAKE3 ${blake3(data)}\n`)]));
    expect(await second.readLine()).toBe(`OK file data recv ${data.length} ${blake3(data)}`);
    expect((await readFile(join(server.root, 'r.bin'))).equals(data)).toBe(true);
    expect(await userFiles(server.root)).toEqual(['r.bin']);
  });

  test('DOWNLOAD FROM is proven with a BLAKE3 prefix digest; a SHA-256 one on that connection does not match', async () => {
    const data = randomBytes(3 * MiB + 9);
    await writeFile(join(server.root, 'd.bin'), data);
    const offset = 2 * MiB + 1;
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(`HASH BLAKE3\nDOWNLOAD FROM ${offset} ${blake3(data.subarray(0, offset))}\nd.bin\n`);
    expect(await client.readLines(2)).toEqual(['OK hash blake3', `OK ${data.length} ${blake3(data)} from ${offset}`]);
    expect((await client.readBytes(data.length - offset)).equals(data.subarray(offset))).toBe(true);
    // The right prefix in the wrong algorithm proves nothing: the whole file comes instead.
    await client.send(`DOWNLOAD FROM ${offset} ${sha256(data.subarray(0, offset))}\nd.bin\n`);
    expect(await client.readLine()).toBe(`OK ${data.length} ${blake3(data)}`);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);
  });
});

describe('BLAKE3 asked of a server that does not offer it', () => {
  let fake: Server;
  afterEach(() => new Promise<void>((resolve) => fake.close(() => resolve())));

  test('the client refuses before sending anything: HASH_UNSUPPORTED', async () => {
    const received: Buffer[] = [];
    fake = createServer((socket) => {
      socket.on('data', (chunk) => received.push(chunk));
      socket.write('OK rxfer/1 caps=upload,download,quit hash=sha256\n');
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const port = (fake.address() as { port: number }).port;
    expect(await codeOf(RxferClient.connect({ host: '127.0.0.1', port, hash: 'blake3' }))).toBe('HASH_UNSUPPORTED');
    expect(Buffer.concat(received).toString()).toBe('');
  });
});
