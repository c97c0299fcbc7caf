import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { AddressInfo, Server, Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { batchLimitsOf } from '../../src/client/batch-queue';
import { RxferClient, RxferError, uploadTree } from '../../src/client/index';
import { availableHashes, hashOf, type HashAlgorithm } from '../../src/integrity/hash-algorithm';
import { startTestServer, type TestServer } from '../helpers/server';
import { type SecureServer, type TestUser, makeUser, startSecureServer } from '../security/support/server';

/**
 * BATCH from the client's side (issue 20): `uploadBatched` gathers small files into BATCH requests
 * against the real server on 127.0.0.1. What went on the wire is read through a proxy that keeps the
 * client's bytes (and can take BATCH out of the greeting, as an older server's); what a server
 * could answer wrongly is played by a scripted peer.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (data: Buffer) => hashOf('sha256', data);

interface Proxy {
  readonly port: number;
  /** The request lines the client sent that start a request (`BATCH 64`, `UPLOAD 5`, `DOWNLOAD`, …), in order. */
  requests(): string[];
  close(): Promise<void>;
}

/**
 * A TCP proxy to `target` that keeps every byte the client sent. With `olderServer`, the greeting
 * loses `batch` and its limits on the way. Test data is text without such lines, so a request line
 * is any line that starts like one.
 */
const recordingProxy = async (target: number, options: { olderServer?: boolean } = {}): Promise<Proxy> => {
  const sent: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    client.on('data', (chunk: Buffer) => {
      sent.push(chunk);
      upstream.write(chunk);
    });
    let greeting: Buffer | undefined = options.olderServer ? Buffer.alloc(0) : undefined;
    upstream.on('data', (chunk: Buffer) => {
      if (greeting === undefined) return void client.write(chunk);
      greeting = Buffer.concat([greeting, chunk]);
      const end = greeting.indexOf('\n');
      if (end < 0) return;
      const line = greeting
        .subarray(0, end)
        .toString('utf8')
        .replace(/ batch-(files|bytes)=\S+/g, '')
        .replace(/(caps=\S*),batch\b/, '$1');
      client.write(Buffer.concat([Buffer.from(line), greeting.subarray(end)]));
      greeting = undefined;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => Buffer.concat(sent).toString('latin1').match(/(?<=^|\n)(BATCH \d+|UPLOAD \d+|ADDFILE \d+|DOWNLOAD|DELETE|STAT|LIST[^\n]*|QUIT)(?=\n)/g) ?? [],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

/** `label`, padded to `bytes`, ending in a newline (so the request line after it starts a line). */
const text = (label: string, bytes = 0) => Buffer.from(`${`${label} `.padEnd(bytes - 1, '.')}\n`);

describe('uploadBatched against the real server', () => {
  let server: TestServer;
  let proxy: Proxy;
  let client: RxferClient;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });
  const connectThrough = async (options: { olderServer?: boolean; hash?: HashAlgorithm } = {}) => {
    proxy = await recordingProxy(server.port, options);
    client = await RxferClient.connect({ host: '127.0.0.1', port: proxy.port, hash: options.hash });
  };
  afterEach(async () => {
    if (!client.isClosed) await client.quit();
    await proxy.close();
    await rm(join(server.root, 'b'), { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  });
  const stored = (name: string) => readFileSync(join(server.root, 'b', name));

  test('the greeting offers BATCH, and the client takes its limits', async () => {
    await connectThrough();
    expect(client.batchLimits).toEqual({ files: 64, bytes: MiB });
  });

  test.each(availableHashes())('files added without awaiting go as one BATCH and land with their bytes (%s)', async (hash) => {
    await connectThrough({ hash });
    const files = Array.from({ length: 10 }, (_, i) => ({ name: `b/f${i}.txt`, data: text(`file ${i}`, i * 300) }));
    const results = await Promise.all(files.map((file) => client.uploadBatched(file.name, file.data)));
    expect(results).toEqual(files.map((file) => ({ size: file.data.length, digest: hashOf(hash, file.data) })));
    for (const [i, file] of files.entries()) expect(stored(`f${i}.txt`)).toEqual(file.data);
    expect(proxy.requests()).toEqual(['BATCH 10']);
  });

  test('an empty file, and a name sent in NFC, as UPLOAD would', async () => {
    await connectThrough();
    const decomposed = 'b/cafe\u0301.txt';
    await expect(Promise.all([client.uploadBatched('b/empty', Buffer.alloc(0)), client.uploadBatched(decomposed, text('café'))])).resolves.toEqual([
      { size: 0, digest: sha256(Buffer.alloc(0)) },
      { size: text('café').length, digest: sha256(text('café')) },
    ]);
    expect(stored('empty')).toEqual(Buffer.alloc(0));
    expect(stored('caf\u00e9.txt')).toEqual(text('café'));
  });

  test('a batch is sent once full: 130 files added in one turn are BATCH 64, 64 and 2', async () => {
    await connectThrough();
    const names = Array.from({ length: 130 }, (_, i) => `b/n${String(i).padStart(3, '0')}`);
    const results = await Promise.all(names.map((name) => client.uploadBatched(name, text(name))));
    expect(results.map((result) => result.size)).toEqual(names.map((name) => text(name).length));
    expect(proxy.requests()).toEqual(['BATCH 64', 'BATCH 64', 'BATCH 2']);
    expect(stored('n129')).toEqual(text('b/n129'));
  });

  test('a file that would take the batch over batch-bytes starts the next one; one of batch-bytes goes alone; a larger one as UPLOAD', async () => {
    await connectThrough();
    const sizes = [400 * KiB, 400 * KiB, 400 * KiB, MiB, MiB + 1, 10];
    const files = sizes.map((size, i) => ({ name: `b/s${i}`, data: text(`s${i}`, size) }));
    await expect(Promise.all(files.map((file) => client.uploadBatched(file.name, file.data)))).resolves.toEqual(
      files.map((file) => ({ size: file.data.length, digest: sha256(file.data) })),
    );
    // The UPLOAD goes after the open batch (files 2 and 3): a later request never overtakes it.
    expect(proxy.requests()).toEqual(['BATCH 2', 'BATCH 1', 'BATCH 1', `UPLOAD ${MiB + 1}`, 'BATCH 1']);
    for (const [i, file] of files.entries()) expect(stored(`s${i}`)).toEqual(file.data);
  });

  test('at the end of the turn, the open batch is sent: files added in two turns go in two batches', async () => {
    await connectThrough();
    const first = client.uploadBatched('b/t1', text('one'));
    await new Promise((resolve) => setImmediate(resolve));
    const second = client.uploadBatched('b/t2', text('two'));
    await expect(second).resolves.toMatchObject({ size: text('two').length });
    await expect(first).resolves.toMatchObject({ size: text('one').length });
    expect(proxy.requests()).toEqual(['BATCH 1', 'BATCH 1']);
  });

  test('a request made after a file was added goes after its batch: a download sees the new bytes, a delete removes the file', async () => {
    await connectThrough();
    await client.uploadBuffer('b/seen', text('old'));
    const upload = client.uploadBatched('b/seen', text('new'));
    const download = client.downloadBuffer('b/seen');
    const removed = client.uploadBatched('b/gone', text('gone'));
    const remove = client.remove('b/gone');
    await upload;
    await removed;
    await remove;
    expect((await download).data).toEqual(text('new'));
    await expect(client.stat('b/gone')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(proxy.requests()).toEqual([`UPLOAD ${text('old').length}`, 'BATCH 1', 'DOWNLOAD', 'BATCH 1', 'DELETE', 'STAT']);
  });

  test('a name refused here fails alone, with nothing sent for it; the batch goes on without it', async () => {
    await connectThrough();
    const settled = await Promise.allSettled([
      client.uploadBatched('b/ok1', text('ok1')),
      client.uploadBatched('b/bad.', text('bad')),
      client.uploadBatched('b/../escape', text('bad')),
      client.uploadBatched('b/ok2', text('ok2')),
    ]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as RxferError).code))).toEqual(['ok', 'NAME_INVALID', 'NAME_INVALID', 'ok']);
    expect(proxy.requests()).toEqual(['BATCH 2']);
    expect(stored('ok2')).toEqual(text('ok2'));
  });

  test('files the server refuses fail alone, with its code; the others in the batch are stored, and the connection goes on', async () => {
    mkdirSync(join(server.root, 'b', 'folder'), { recursive: true });
    writeFileSync(join(server.root, 'b', 'folder', 'inner'), 'inner');
    writeFileSync(join(server.root, 'b', 'plain'), 'a file, not a folder');
    await connectThrough();
    const settled = await Promise.allSettled([
      client.uploadBatched('b/a', text('a')),
      client.uploadBatched('b/folder', text('onto a folder')),
      client.uploadBatched('b/m', text('m')),
      client.uploadBatched('b/plain/under', text('under a file')),
      client.uploadBatched('b/z', text('z')),
    ]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as RxferError).code))).toEqual(['ok', 'NAME_CONFLICT', 'ok', 'NAME_CONFLICT', 'ok']);
    expect(proxy.requests()).toEqual(['BATCH 5']);
    for (const name of ['a', 'm', 'z']) expect(stored(name)).toEqual(text(name));
    expect(stored('folder/inner').toString()).toBe('inner');
    await expect(client.stat('b/z')).resolves.toMatchObject({ type: 'file', size: text('z').length });
  });

  test('a server whose greeting has no BATCH: each file goes as UPLOAD', async () => {
    await connectThrough({ olderServer: true });
    expect(client.batchLimits).toBeUndefined();
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `b/o${i}`, data: text(`old server ${i}`) }));
    await expect(Promise.all(files.map((file) => client.uploadBatched(file.name, file.data)))).resolves.toEqual(
      files.map((file) => ({ size: file.data.length, digest: sha256(file.data) })),
    );
    expect(proxy.requests()).toEqual(files.map((file) => `UPLOAD ${file.data.length}`));
    for (const [i, file] of files.entries()) expect(stored(`o${i}`)).toEqual(file.data);
  });

  test('put -r sends its small files in full batches, and larger ones as UPLOAD', async () => {
    await connectThrough();
    const local = mkdtempSync(join(server.scratch, 'tree-'));
    try {
      // The large file first, and no resume (no RESUME question to wait for): any request flushes
      // the open batch, and this one is made before the small files are read.
      writeFileSync(join(local, 'a-large'), text('large', MiB + 1));
      for (let i = 0; i < 130; i++) writeFileSync(join(local, `t${String(i).padStart(3, '0')}`), text(`tree ${i}`));
      await expect(uploadTree(client, local, 'b/tree', { skipIdentical: false, resume: false })).resolves.toMatchObject({ files: 131, skipped: 0 });
      expect(proxy.requests()).toEqual([`UPLOAD ${MiB + 1}`, 'BATCH 64', 'BATCH 64', 'BATCH 2']);
      expect(stored('tree/t129')).toEqual(text('tree 129'));
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  });

  test('the connection closed by the client before an open batch went out: its files fail with CONNECTION_LOST', async () => {
    await connectThrough();
    const pending = [client.uploadBatched('b/c1', text('c1')), client.uploadBatched('b/c2', text('c2'))];
    client.close();
    for (const outcome of pending) await expect(outcome).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
  });
});

describe('uploadBatched with users: a quota or a role refuses files one by one', () => {
  let server: SecureServer;
  let writer: TestUser;
  let reader: TestUser;
  beforeAll(async () => {
    writer = await makeUser('w', 'write', 'w', 10_000);
    reader = await makeUser('r', 'read', 'r');
    server = await startSecureServer({ auth: { users: [writer.entry, reader.entry] } });
  });
  afterAll(async () => {
    await server.close();
  });
  const codes = (settled: PromiseSettledResult<unknown>[]) => settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as RxferError).code));

  test('the file that would pass the quota fails alone (QUOTA_EXCEEDED); the smaller ones before and after it are stored', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: writer.token });
    try {
      // Larger than the quota alone: refused whatever the order the server reserves the three in (side by side).
      const sizes = [1000, 10_500, 1000];
      const settled = await Promise.allSettled(sizes.map((size, i) => client.uploadBatched(`q${i}`, text(`q${i}`, size))));
      expect(codes(settled)).toEqual(['ok', 'QUOTA_EXCEEDED', 'ok']);
      await expect(client.stat('q2')).resolves.toMatchObject({ size: 1000 });
      await expect(client.stat('q1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await client.quit();
    }
  });

  test('a user who may only read: every file of the batch is FORBIDDEN, and the connection goes on', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: reader.token });
    try {
      const settled = await Promise.allSettled([client.uploadBatched('r1', text('r1')), client.uploadBatched('r2', text('r2'))]);
      expect(codes(settled)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
      await expect(client.list('')).resolves.toEqual([]);
    } finally {
      await client.quit();
    }
  });
});

describe('uploadBatched and the server\'s max-line', () => {
  test('a name whose line is longer than max-line fails alone, here: sent, it would close the connection for the whole batch', async () => {
    const server = await startTestServer({ config: { limits: { maxLineBytes: 300 } } });
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const long = `b/${'x'.repeat(200)}/${'y'.repeat(97)}`;
      const settled = await Promise.allSettled([client.uploadBatched('b/ok1', text('ok1')), client.uploadBatched(long, text('long')), client.uploadBatched('b/ok2', text('ok2'))]);
      expect(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : `${(s.reason as RxferError).code}: ${(s.reason as RxferError).message}`))).toEqual([
        'ok',
        `NAME_INVALID: ${long}: its line is longer than the server's max-line of 300 bytes`,
        'ok',
      ]);
      // One byte less fits, and the connection is still open.
      await expect(client.uploadBatched(`b/${'x'.repeat(200)}/${'y'.repeat(96)}`, text('fits'))).resolves.toMatchObject({ size: text('fits').length });
      await client.quit();
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('the greeting decides: BATCH only with both of its limits', () => {
  test.each([
    [{ 'batch-files': '64', 'batch-bytes': '1048576' }, { files: 64, bytes: 1048576 }],
    [{ 'batch-files': '1', 'batch-bytes': '10', caps: 'upload' }, { files: 1, bytes: 10 }],
    [{}, undefined],
    [{ 'batch-files': '64' }, undefined],
    [{ 'batch-bytes': '1048576' }, undefined],
    [{ 'batch-files': '0', 'batch-bytes': '1048576' }, undefined],
    [{ 'batch-files': '64', 'batch-bytes': '-1' }, undefined],
    [{ 'batch-files': '6.4', 'batch-bytes': '1048576' }, undefined],
    [{ 'batch-files': '064', 'batch-bytes': '1048576' }, undefined],
    [{ 'batch-files': '', 'batch-bytes': '' }, undefined],
  ])('%j → %j', (caps, limits) => {
    expect(batchLimitsOf(caps)).toEqual(limits);
  });
});

describe('replies a server should not send (a scripted peer)', () => {
  /**
   * A peer that greets with BATCH and, once a BATCH line arrives, writes `answer` (its files' digests
   * given) and then, with `close`, ends the connection.
   */
  const scriptedPeer = async (answer: string, close: 'end' | 'stay') => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.write('OK rxfer/1 caps=upload,batch,quit hash=sha256 max-line=4096 batch-files=64 batch-bytes=1048576 auth=optional\n');
      let seen = '';
      socket.on('data', (chunk: Buffer) => {
        const before = seen;
        seen += chunk.toString('latin1');
        if (before.includes('BATCH ') || !seen.includes('BATCH ')) return;
        socket.write(answer);
        if (close === 'end') socket.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await RxferClient.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    return {
      client,
      close: async () => {
        client.close();
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  };
  const [one, two, three] = [text('one'), text('two'), text('three')];
  const outcomes = async (client: RxferClient) =>
    (await Promise.allSettled([one, two, three].map((data, i) => client.uploadBatched(`f${i}`, data)))).map((s) =>
      s.status === 'fulfilled' ? 'ok' : `${(s.reason as RxferError).code}: ${(s.reason as RxferError).message}`,
    );

  test('a size or digest other than what was sent: that file fails (PROTOCOL_VIOLATION), the others stand', async () => {
    const peer = await scriptedPeer(
      `OK file data recv ${one.length} ${sha256(one)}\nOK file data recv ${two.length} ${sha256(three)}\nOK file data recv ${three.length + 1} ${sha256(three)}\n`,
      'stay',
    );
    try {
      const result = await outcomes(peer.client);
      expect(result[0]).toBe('ok');
      expect(result[1]).toMatch(new RegExp(`^PROTOCOL_VIOLATION: BATCH file f1: the server confirmed ${two.length} bytes digest ${sha256(three)}, but ${two.length} bytes digest ${sha256(two)} were sent$`));
      expect(result[2]).toMatch(new RegExp(`^PROTOCOL_VIOLATION: BATCH file f2: the server confirmed ${three.length + 1} bytes `));
    } finally {
      await peer.close();
    }
  });

  test('an ERR that ends the session fails its file; the files after it are CONNECTION_LOST, saying why', async () => {
    // The peer does not close (the real server does): the client must not wait for it to.
    const peer = await scriptedPeer(`OK file data recv ${one.length} ${sha256(one)}\nERR BAD_COMMAND something was wrong\n`, 'stay');
    try {
      expect(await outcomes(peer.client)).toEqual(['ok', 'BAD_COMMAND: something was wrong', 'CONNECTION_LOST: the connection is closed after BAD_COMMAND']);
    } finally {
      await peer.close();
    }
  });

  test('a reply that is not a file`s (OK file recv): PROTOCOL_VIOLATION, and the files after it are CONNECTION_LOST', async () => {
    const peer = await scriptedPeer(`OK file recv\nOK file data recv ${two.length} ${sha256(two)}\n`, 'stay');
    try {
      const result = await outcomes(peer.client);
      expect(result[0]).toBe('PROTOCOL_VIOLATION: unexpected fileRecv reply to BATCH file f0');
      expect(result.slice(1)).toEqual(['CONNECTION_LOST: the connection is closed after PROTOCOL_VIOLATION', 'CONNECTION_LOST: the connection is closed after PROTOCOL_VIOLATION']);
    } finally {
      await peer.close();
    }
  });

  test('the connection lost mid-batch: the files answered stand, the others are CONNECTION_LOST', async () => {
    const peer = await scriptedPeer(`OK file data recv ${one.length} ${sha256(one)}\nERR NAME_INVALID not that one\n`, 'end');
    try {
      const result = await outcomes(peer.client);
      expect(result.slice(0, 2)).toEqual(['ok', 'NAME_INVALID: not that one']);
      expect(result[2]).toMatch(/^CONNECTION_LOST: /);
    } finally {
      await peer.close();
    }
  });
});
