import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { RxferClient, RxferError, uploadTree } from '../../src/client/index';
import { startTestServer, TestServer } from './real-server';
import { untilSettled } from '../helpers/settled';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

/** Resolves to the RxferError a promise rejects with (fails the test if it resolves). */
const failure = async (promise: Promise<unknown>): Promise<RxferError> => {
  const result = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(result).toBeInstanceOf(RxferError);
  return result as RxferError;
};

const stagingFiles = async (folder: string) => (await readdir(folder)).filter((name) => name.includes('.rxfer-part'));

describe('RxferClient against the real server', () => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  test.each([0, 1, 64 * 1024 + 1, MiB - 1, 3 * MiB + 17])('uploads a %i-byte file and downloads it byte-identical', async (size) => {
    const data = randomBytes(size);
    const source = join(server.local, 'source.bin');
    await writeFile(source, data);
    const progress: number[] = [];
    const stored = await client.upload(source, 'dir/sub/file.bin', { onProgress: (done) => progress.push(done) });
    expect(stored).toEqual({ size, digest: sha256(data) });
    if (size > 0) expect(progress.at(-1)).toBe(size);

    const target = join(server.local, 'copy.bin');
    await expect(client.download('dir/sub/file.bin', target)).resolves.toEqual(stored);
    expect((await readFile(target)).equals(data)).toBe(true);
    expect((await client.downloadBuffer('dir/sub/file.bin')).data.equals(data)).toBe(true);
    expect(await stagingFiles(server.local)).toEqual([]);
    await client.quit();
    expect(client.isClosed).toBe(true);
  });

  test('pipelines many in-memory uploads issued without waiting', async () => {
    const files = Array.from({ length: 200 }, (_, i) => ({ name: `small/${i}.txt`, data: randomBytes(i * 37) }));
    const results = await Promise.all(files.map((f) => client.uploadBuffer(f.name, f.data)));
    expect(results).toEqual(files.map((f) => ({ size: f.data.length, digest: sha256(f.data) })));
    const back = await Promise.all(files.map((f) => client.downloadBuffer(f.name)));
    back.forEach((b, i) => expect(b.data.equals(files[i]!.data)).toBe(true));
  });

  test('a refusal in the middle of a pipelined batch fails only its own request', async () => {
    const settled = await Promise.allSettled([
      client.uploadBuffer('p/a', Buffer.from('a'), { mode: 'create' }),
      client.uploadBuffer('p/a', Buffer.from('again'), { mode: 'create' }),
      client.uploadBuffer('p/.rxfer-x', Buffer.from('reserved')).catch((err: RxferError) => Promise.reject(err)),
      client.downloadBuffer('p/a'),
      client.uploadBuffer('p/b', Buffer.from('b')),
    ]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as RxferError).code))).toEqual([
      'ok',
      'EXISTS',
      'NAME_INVALID',
      'ok',
      'ok',
    ]);
    expect((settled[3] as PromiseFulfilledResult<{ data: Buffer }>).value.data.toString()).toBe('a');
  });

  test('a server that stops mid-upload fails the upload and commits nothing', async () => {
    const source = join(server.local, 'slow.bin');
    await writeFile(source, randomBytes(64 * MiB));
    let stopping: Promise<void> | undefined;
    const error = await failure(client.upload(source, 'slow.bin', { onProgress: () => void (stopping ??= server.close()) }));
    await stopping;
    expect(['SHUTTING_DOWN', 'CONNECTION_LOST']).toContain(error.code);
    expect(await readdir(server.root).catch(() => [])).not.toContain('slow.bin');
  });

  test('ADDFILE of an existing name: EXISTS; the in-memory request keeps the connection usable', async () => {
    await client.uploadBuffer('once.txt', Buffer.from('one'), { mode: 'create' });
    expect((await failure(client.uploadBuffer('once.txt', Buffer.from('two'), { mode: 'create' }))).code).toBe('EXISTS');
    expect((await client.downloadBuffer('once.txt')).data.toString()).toBe('one');
  });

  test('files up to 1 MiB uploaded from disk are pipelined: every byte goes out before any reply comes back', async () => {
    // Below, at and above the synchronous-read size, up to just under the resume size (1 MiB).
    const sizes = [0, 10, 4096, 64 * 1024, 64 * 1024 + 1, 300_000, MiB - 1, 7, 4096, 200_000];
    const files = sizes.map((size, i) => ({ path: join(server.local, `f${i}.bin`), name: `piped/f${i}.bin`, data: randomBytes(size) }));
    for (const file of files) await writeFile(file.path, file.data);
    // A proxy that lets the greeting through, then holds every reply until the client has sent at
    // least all the files' bytes: a client that waited for `OK file recv` before each file's data
    // would never get there, and this test would time out.
    const dataBytes = sizes.reduce((sum, size) => sum + size, 0);
    const proxy = createServer((fromClient) => {
      const toServer = new Socket().connect(server.port, server.host);
      let sent = 0;
      // Replies held back; undefined while they pass (the greeting, and all once the files are out).
      let held: Buffer[] | undefined;
      fromClient.on('data', (chunk: Buffer) => {
        toServer.write(chunk);
        if (sent === 0) held = [];
        sent += chunk.length;
        if (held && sent >= dataBytes) {
          for (const reply of held) fromClient.write(reply);
          held = undefined;
        }
      });
      toServer.on('data', (chunk: Buffer) => (held ? held.push(chunk) : fromClient.write(chunk)));
      fromClient.on('close', () => toServer.destroy());
      toServer.on('close', () => fromClient.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const piped = await RxferClient.connect({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port });
    try {
      const results = await Promise.all(files.map((file) => piped.upload(file.path, file.name)));
      expect(results).toEqual(files.map((file) => ({ size: file.data.length, digest: sha256(file.data) })));
    } finally {
      piped.close();
      proxy.close();
    }
    for (const file of files) expect((await readFile(join(server.root, file.name))).equals(file.data)).toBe(true);
  });

  test('put -r of files over 1 MiB pipelines them too: their RESUME questions go ahead and their data does not wait for OK file recv', async () => {
    const folder = join(server.local, 'tree');
    await mkdir(folder);
    const files = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.bin`, data: randomBytes(MiB + 500_000 + i) }));
    for (const file of files) await writeFile(join(folder, file.name), file.data);
    const dataBytes = files.reduce((sum, file) => sum + file.data.length, 0);
    // A proxy that holds back the replies from the first stored file's `OK file data recv` on, until
    // the client has sent at least all the files' bytes. A client that waited for `OK file recv`, or
    // asked RESUME inside each upload, would wait for a held reply and time out.
    const proxy = createServer((fromClient) => {
      const toServer = new Socket().connect(server.port, server.host);
      let sent = 0;
      let held: Buffer[] | undefined;
      let released = false;
      const release = () => {
        if (released || !held || sent < dataBytes) return;
        released = true;
        for (const reply of held) fromClient.write(reply);
        held = undefined;
      };
      fromClient.on('data', (chunk: Buffer) => {
        toServer.write(chunk);
        sent += chunk.length;
        release();
      });
      toServer.on('data', (chunk: Buffer) => {
        if (!released && !held && chunk.includes('OK file data recv')) held = [];
        if (held) held.push(chunk);
        else fromClient.write(chunk);
        release();
      });
      fromClient.on('close', () => toServer.destroy());
      toServer.on('close', () => fromClient.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const piped = await RxferClient.connect({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port });
    try {
      await expect(uploadTree(piped, folder, 'tree', { skipIdentical: false })).resolves.toMatchObject({ files: files.length, bytes: dataBytes });
    } finally {
      piped.close();
      proxy.close();
    }
    for (const file of files) expect((await readFile(join(server.root, 'tree', file.name))).equals(file.data)).toBe(true);
  }, 15_000);

  test('keptUpload asked ahead, then a pipelined upload: an interrupted upload continues after its proven prefix', async () => {
    const data = randomBytes(8 * MiB);
    const source = join(server.local, 'big.bin');
    await writeFile(source, data);
    expect((await failure(client.upload(source, 'big.bin', { onProgress: (done) => done >= 2 * MiB && client.close() }))).code).toBe('CONNECTION_LOST');
    client = await RxferClient.connect({ host: server.host, port: server.port });
    // The server keeps the partial once it has seen the connection go (until then it answers BUSY: null).
    let kept = await client.keptUpload('big.bin');
    for (let i = 0; i < 100 && kept === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      kept = await client.keptUpload('big.bin');
    }
    expect(kept).toEqual({ bytes: expect.any(Number), digest: sha256(data.subarray(0, kept!.bytes)) });
    expect(kept!.bytes).toBeGreaterThanOrEqual(MiB);
    const result = await client.upload(source, 'big.bin', { kept, pipelined: true });
    expect(result).toEqual({ size: data.length, digest: sha256(data), resumedAt: kept!.bytes });
    expect((await readFile(join(server.root, 'big.bin'))).equals(data)).toBe(true);
  });

  test('a pipelined upload whose header is refused: its data was read and dropped, and the connection stays usable', async () => {
    const source = join(server.local, 'two.bin');
    await writeFile(source, randomBytes(2 * MiB));
    await client.uploadBuffer('two.bin', Buffer.from('old'));
    expect((await failure(client.upload(source, 'two.bin', { mode: 'create', pipelined: true }))).code).toBe('EXISTS');
    expect(client.isClosed).toBe(false);
    expect((await client.downloadBuffer('two.bin')).data.toString()).toBe('old');
  });

  test('ADDFILE of an existing name from a small file: EXISTS; its data went with the header and the connection stays usable', async () => {
    const source = join(server.local, 'small.txt');
    await writeFile(source, 'new content');
    await client.uploadBuffer('small.txt', Buffer.from('old'));
    const [refused, next] = await Promise.allSettled([client.upload(source, 'small.txt', { mode: 'create' }), client.upload(source, 'other.txt', { mode: 'create' })]);
    expect(refused.status === 'rejected' && (refused.reason as RxferError).code).toBe('EXISTS');
    expect(next).toMatchObject({ status: 'fulfilled', value: { size: 11 } });
    expect(client.isClosed).toBe(false);
    expect((await client.downloadBuffer('small.txt')).data.toString()).toBe('old');
    expect((await client.downloadBuffer('other.txt')).data.toString()).toBe('new content');
  });

  test('ADDFILE of an existing name from a large file: EXISTS, and the owed data is not sent (connection closed)', async () => {
    const source = join(server.local, 'a.txt');
    await writeFile(source, randomBytes(2 * MiB));
    await client.uploadBuffer('a.txt', Buffer.from('old'));
    expect((await failure(client.upload(source, 'a.txt', { mode: 'create' }))).code).toBe('EXISTS');
    expect(client.isClosed).toBe(true);
    expect((await failure(client.downloadBuffer('a.txt'))).code).toBe('CONNECTION_LOST');
  });

  test('download of a missing file: NOT_FOUND, no staging file, connection still usable', async () => {
    const error = await failure(client.download('nope.txt', join(server.local, 'nope.txt')));
    expect(error.code).toBe('NOT_FOUND');
    expect(await readdir(server.local)).toEqual([]);
    await expect(client.uploadBuffer('x', Buffer.from('x'))).resolves.toMatchObject({ size: 1 });
  });

  test('refuses to download over a directory, and leaves it alone', async () => {
    await client.uploadBuffer('d', Buffer.from('data'));
    const folder = join(server.local, 'folder');
    await mkdir(folder);
    await writeFile(join(folder, 'keep'), 'keep');
    const error = await failure(client.download('d', folder));
    expect(error.code).toBe('LOCAL_IO');
    expect(await readdir(folder)).toEqual(['keep']);
    expect(await stagingFiles(server.local)).toEqual([]);
  });

  test.each([
    ['small (held in memory)', 4],
    ['large (streamed to a staging file)', 2 * MiB],
  ])('intoNewFolder (no looks first): a directory made under the name meanwhile still fails the %s download, and is left alone', async (_label, size) => {
    await client.uploadBuffer('d', randomBytes(size));
    const folder = join(server.local, 'made-meanwhile');
    await mkdir(folder);
    await writeFile(join(folder, 'keep'), 'keep');
    const error = await failure(client.download('d', folder, { intoNewFolder: true }));
    expect(error.code).toBe('LOCAL_IO');
    expect(await readdir(folder)).toEqual(['keep']);
    expect(await stagingFiles(server.local)).toEqual([]);
    await expect(client.downloadBuffer('d')).resolves.toMatchObject({ size });
  });

  test('a download that does not match the announced digest: CHECKSUM_MISMATCH, old target untouched', async () => {
    const data = randomBytes(2 * MiB);
    await client.uploadBuffer('victim.bin', data);
    // Pin an exact mtime (whole seconds survive utimes exactly), let the server re-hash and remember
    // the digest, then change the bytes in place and restore size, inode and mtime: the server keeps
    // announcing the old digest for content that no longer has it.
    const stored = join(server.root, 'victim.bin');
    const when = 1_700_000_000;
    await utimes(stored, when, when);
    // A digest hashed on demand is recorded once the file was left alone for two seconds (its ctime).
    await untilSettled();
    await client.downloadBuffer('victim.bin');
    const handle = await open(stored, 'r+');
    await handle.write(Buffer.from('CORRUPT'), 0, 7, MiB);
    await handle.close();
    await utimes(stored, when, when);

    const target = join(server.local, 'victim.bin');
    await writeFile(target, 'previous version');
    const error = await failure(client.download('victim.bin', target));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(await readFile(target, 'utf8')).toBe('previous version');
    expect(await readdir(server.local)).toEqual(['victim.bin']);
    // The whole body was read, so the session is still in step.
    expect((await failure(client.downloadBuffer('victim.bin'))).code).toBe('CHECKSUM_MISMATCH');
  });

  test('close() during a download aborts it, keeps what arrived beside the target, and the next download resumes there', async () => {
    const data = randomBytes(32 * MiB);
    await client.uploadBuffer('big.bin', data);
    const target = join(server.local, 'big.bin');
    const error = await failure(client.download('big.bin', target, { onProgress: (done) => done >= 4 * MiB && client.close() }));
    expect(error.code).toBe('CONNECTION_LOST');
    // Nothing under the target's name; the bytes received so far wait in the hidden partial file.
    expect(await readdir(server.local)).toEqual(['.big.bin.rxfer-resume']);
    const kept = (await stat(join(server.local, '.big.bin.rxfer-resume'))).size;
    expect(kept).toBeGreaterThanOrEqual(4 * MiB);

    client = await RxferClient.connect({ host: server.host, port: server.port });
    let resumedAt: number | undefined;
    const result = await client.download('big.bin', target, { onResume: (offset) => (resumedAt = offset) });
    expect(resumedAt).toBe(kept);
    expect(result).toEqual({ size: data.length, digest: sha256(data), resumedAt: kept });
    expect((await readFile(target)).equals(data)).toBe(true);
    expect(await readdir(server.local)).toEqual(['big.bin']);
  });

  test('two downloads to one target at once: both verified, the target is one of the two whole files, nothing is left behind', async () => {
    const [a, b] = [randomBytes(24 * MiB), randomBytes(24 * MiB)];
    await client.uploadBuffer('a.bin', a);
    await client.uploadBuffer('b.bin', b);
    const other = await RxferClient.connect({ host: server.host, port: server.port });
    const target = join(server.local, 'same.bin');
    try {
      // Both would write into the one resume file of the target without its lock.
      const results = await Promise.all([client.download('a.bin', target), other.download('b.bin', target)]);
      expect(results).toEqual([
        { size: a.length, digest: sha256(a) },
        { size: b.length, digest: sha256(b) },
      ]);
    } finally {
      other.close();
    }
    expect([sha256(a), sha256(b)]).toContain(sha256(await readFile(target)));
    expect(await readdir(server.local)).toEqual(['same.bin']);
  });

  test('a resume file locked by another running process is left alone; a lock whose process is gone is taken over', async () => {
    const data = randomBytes(3 * MiB);
    await client.uploadBuffer('locked.bin', data);
    const target = join(server.local, 'locked.bin');
    const resumeFile = join(server.local, '.locked.bin.rxfer-resume');
    const kept = randomBytes(MiB);
    await writeFile(resumeFile, kept);
    // The test runner's parent process is running: its download of this target is in progress.
    await writeFile(`${resumeFile}.lock`, `${process.ppid}\n`);
    await expect(client.download('locked.bin', target)).resolves.toEqual({ size: data.length, digest: sha256(data) });
    expect((await readFile(target)).equals(data)).toBe(true);
    expect((await readFile(resumeFile)).equals(kept)).toBe(true);
    expect(await readFile(`${resumeFile}.lock`, 'utf8')).toBe(`${process.ppid}\n`);
    await expect(client.download('locked.bin', target, { resume: false })).resolves.toMatchObject({ size: data.length });
    expect((await readFile(resumeFile)).equals(kept)).toBe(true);

    // Its owner gone (a process that has exited), the lock is stale: the kept prefix is used and then the lock goes.
    const gone = spawn(process.execPath, ['-e', '0']);
    await once(gone, 'exit');
    await writeFile(resumeFile, data.subarray(0, MiB));
    await writeFile(`${resumeFile}.lock`, `${gone.pid}\n`);
    await rm(target);
    await expect(client.download('locked.bin', target)).resolves.toEqual({ size: data.length, digest: sha256(data), resumedAt: MiB });
    expect((await readFile(target)).equals(data)).toBe(true);
    expect(await readdir(server.local)).toEqual(['locked.bin']);
  });

  test('an interrupted download under 1 MiB keeps nothing: it staged in a file of its own', async () => {
    // A server that announces 500,000 bytes, sends 1,000 and stalls.
    const stalling = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('OK rxfer/1 caps=download hash=sha256\n');
      socket.once('data', () => socket.write(Buffer.concat([Buffer.from(`OK 500000 ${'0'.repeat(64)}\n`), Buffer.alloc(1000)])));
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    const small = await RxferClient.connect({ host: '127.0.0.1', port: (stalling.address() as AddressInfo).port });
    try {
      const target = join(server.local, 'small.bin');
      const error = await failure(small.download('small.bin', target, { onProgress: (done) => done >= 1000 && small.close() }));
      expect(error.code).toBe('CONNECTION_LOST');
      expect(await readdir(server.local)).toEqual([]);
    } finally {
      small.close();
      stalling.close();
    }
  });

  test('close() during a download with resume: false removes the staging file', async () => {
    await client.uploadBuffer('big.bin', randomBytes(32 * MiB));
    const target = join(server.local, 'big.bin');
    const error = await failure(client.download('big.bin', target, { resume: false, onProgress: () => client.close() }));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(await readdir(server.local)).toEqual([]);
  });

  test('a local file that grows or shrinks while it is sent fails with LOCAL_IO and commits nothing', async () => {
    const source = join(server.local, 'moving.bin');
    for (const change of [() => appendFile(source, randomBytes(MiB)), () => truncate(source, MiB)]) {
      // Large enough that the change lands long before the reader could reach the end of the file.
      await writeFile(source, randomBytes(16 * MiB));
      let changed: Promise<void> | undefined;
      const error = await failure(client.upload(source, 'moving.bin', { onProgress: () => void (changed ??= change()) }));
      await changed;
      expect(error.code).toBe('LOCAL_IO');
      client = await RxferClient.connect({ host: server.host, port: server.port });
      expect((await failure(client.downloadBuffer('moving.bin'))).code).toBe('NOT_FOUND');
    }
  });

  test('local problems are LOCAL_IO with the path and errno; bad names are refused before sending', async () => {
    const missing = join(server.local, 'missing.txt');
    const error = await failure(client.upload(missing, 'm.txt'));
    expect(error).toMatchObject({ code: 'LOCAL_IO', detail: { path: missing, errno: 'ENOENT' } });
    expect(error.message).toContain(missing);
    expect((await failure(client.upload(server.local, 'dir'))).code).toBe('LOCAL_IO');
    // A FIFO is refused at once, without waiting for a writer (the open would otherwise block).
    const fifo = join(server.local, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(await failure(client.upload(fifo, 'pipe'))).toMatchObject({ code: 'LOCAL_IO', message: expect.stringContaining('not a regular file') });
    expect((await failure(client.uploadBuffer('a\nb', Buffer.from('x')))).code).toBe('NAME_INVALID');
    expect((await failure(client.downloadBuffer('../etc/passwd'))).code).toBe('NAME_INVALID');
    expect(client.isClosed).toBe(false);
    await expect(client.uploadBuffer('fine.txt', Buffer.from('ok'))).resolves.toMatchObject({ size: 2 });
  });

  test('a large file goes through with bounded memory', async () => {
    const source = join(server.local, 'large.bin');
    const handle = await open(source, 'w');
    const block = randomBytes(MiB);
    const hash = createHash('sha256');
    for (let i = 0; i < 256; i++) {
      await handle.write(block);
      hash.update(block);
    }
    await handle.close();
    const before = process.memoryUsage().rss;
    const stored = await client.upload(source, 'large.bin');
    expect(stored).toEqual({ size: 256 * MiB, digest: hash.digest('hex') });
    await client.download('large.bin', join(server.local, 'large.copy'));
    expect((await stat(join(server.local, 'large.copy'))).size).toBe(256 * MiB);
    // The server runs in this process too; neither side may hold the file in memory (garbage not yet
    // collected accounts for some growth, hence a bound of half the file rather than a tight one).
    expect(process.memoryUsage().rss - before).toBeLessThan(128 * MiB);
  });
});

describe('RxferClient.connect', () => {
  let fake: Server | undefined;
  const fakeSockets = new Set<Socket>();
  afterEach(async () => {
    for (const socket of fakeSockets) socket.destroy();
    fakeSockets.clear();
    if (fake) await new Promise((resolve) => fake!.close(resolve));
    fake = undefined;
  });

  /** A server that answers every connection with `greeting` (or says nothing), then `onData`. */
  const fakeServer = async (greeting?: string, onData?: (socket: Socket, received: number) => void) => {
    fake = createServer((socket) => {
      fakeSockets.add(socket);
      if (greeting !== undefined) socket.write(greeting);
      socket.on('error', () => undefined);
      let received = 0;
      socket.on('data', (chunk: Buffer) => onData?.(socket, (received += chunk.length)));
      // A clean-up, long enough that a busy machine finishes each test's exchange first.
      setTimeout(() => socket.destroy(), 10_000).unref();
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    return (fake.address() as AddressInfo).port;
  };

  test('nothing listening: CONNECTION_LOST', async () => {
    const port = await fakeServer();
    await new Promise((resolve) => fake!.close(resolve));
    fake = undefined;
    expect((await failure(RxferClient.connect({ host: '127.0.0.1', port }))).code).toBe('CONNECTION_LOST');
  });

  test('no greeting within the timeout: CONNECTION_LOST', async () => {
    const port = await fakeServer();
    const error = await failure(RxferClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 200 }));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.message).toContain('200 ms');
  });

  test('a server that is not rxfer/1: PROTOCOL_VIOLATION', async () => {
    const port = await fakeServer('SSH-2.0-OpenSSH_9.2\r\n');
    expect((await failure(RxferClient.connect({ host: '127.0.0.1', port }))).code).toBe('PROTOCOL_VIOLATION');
    const port2 = await (async () => {
      await new Promise((resolve) => fake!.close(resolve));
      return fakeServer('OK rxfer/2 caps=upload\n');
    })();
    expect((await failure(RxferClient.connect({ host: '127.0.0.1', port: port2 }))).code).toBe('PROTOCOL_VIOLATION');
  });

  test('a server that closes mid-upload with a reason: the client reports that reason', async () => {
    // The real server cannot be told to do this at a chosen byte; the client's side is what is tested.
    const port = await fakeServer('OK rxfer/1 caps=upload\n', (socket, received) => {
      if (received < 100) socket.write('OK file recv\n');
      else if (received > 2 * MiB && !socket.writableEnded) {
        socket.end('ERR SHUTTING_DOWN the server is stopping\n');
        // Then reset, as a stopping server does once its grace is over. Not after 20 ms: a reset
        // that reaches the client before it has read the line makes the kernel drop the line
        // (ECONNRESET), which a busy machine turned into CONNECTION_LOST, a flake, not a bug.
        setTimeout(() => socket.destroy(), 1000);
      }
    });
    // The file first: the fake server drops every connection 10 s after it opened.
    const big = join(await mkdtemp(join(tmpdir(), 'rxfer-fake-')), 'big.bin');
    await writeFile(big, Buffer.alloc(64 * MiB));
    const client = await RxferClient.connect({ host: '127.0.0.1', port });
    const error = await failure(client.upload(big, 'big.bin'));
    expect(error).toMatchObject({ code: 'SHUTTING_DOWN', message: 'the server is stopping' });
    await rm(dirname(big), { recursive: true });
  });

  test('a full server: TOO_MANY_CONNECTIONS', async () => {
    const server = await startTestServer({ maxConnections: 1 });
    try {
      const first = await RxferClient.connect({ host: server.host, port: server.port });
      const error = await failure(RxferClient.connect({ host: server.host, port: server.port }));
      expect(error.code).toBe('TOO_MANY_CONNECTIONS');
      first.close();
    } finally {
      await server.close();
    }
  });
});
