import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, openSync } from 'node:fs';
import { link, lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { writeBackEarly } from '../../src/io/early-writeback';
import { assertStagedSize, endStream } from '../../src/storage/local-staged-write';
import { RawClient, destroyAll, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer } from '../helpers/server';

/**
 * Issue 14: commits that reported success for data they did not store, and commits that could be
 * undone by a crash or a concurrent request. Each test reproduced the failure on the old code.
 */

/**
 * The real fs/promises, with a seam in link(): a test can run code right after a link() and before
 * the caller goes on, i.e. pause a RENAME between its link and its unlink. Everything else passes
 * through untouched.
 */
const afterLink: { hook?: (from: string, to: string) => Promise<void> } = {};
jest.mock('node:fs/promises', () => {
  const real = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return {
    ...real,
    link: async (from: string, to: string) => {
      // Read inside the call: the server links through its opened folders' /proc/self/fd/<n>/.
      const { realPathOf } = jest.requireActual<typeof import('../promises/support/fd-path')>('../promises/support/fd-path');
      const [fromPath, toPath] = [realPathOf(from), realPathOf(to)];
      await real.link(from, to);
      await afterLink.hook?.(fromPath, toPath);
    },
  };
});

const MIB = 1024 * 1024;
const partialsOf = (root: string) => join(root, '.rxfer', 'partials');
const partialId = (name: string) => createHash('sha256').update(name).digest('hex');

describe('issue 14: a write error is never a commit', () => {
  test('endStream rejects when a write fails, though end() calls back before the error event', async () => {
    const sink = new Writable({ write: (_chunk, _encoding, done) => setImmediate(() => done(Object.assign(new Error('no space'), { code: 'ENOSPC' }))) });
    sink.on('error', () => undefined);
    sink.write(Buffer.alloc(10));
    await expect(endStream(sink)).rejects.toMatchObject({ code: 'ENOSPC' });
    await expect(endStream(sink)).rejects.toMatchObject({ code: 'ENOSPC' });
  });

  test('endStream resolves when every write succeeded', async () => {
    const sink = new Writable({ write: (_chunk, _encoding, done) => setImmediate(done) });
    sink.write(Buffer.alloc(10));
    await expect(endStream(sink)).resolves.toBeUndefined();
  });

  test('a staging file shorter (or longer) than what was verified is refused before the rename', () => {
    expect(() => assertStagedSize(1000, 1000, 'a')).not.toThrow();
    expect(() => assertStagedSize(999, 1000, 'a')).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED' }));
    expect(() => assertStagedSize(1001, 1000, 'a')).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED' }));
  });

  test('a failed background writeback fails the stream (Linux reports it once, and the commit fsync could pass)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'rxfer-i14-wb-'));
    try {
      const fd = openSync(join(folder, 'f'), 'w');
      const sink = createWriteStream('', { fd, autoClose: false });
      const failing = ((_fd: number, done: (err: NodeJS.ErrnoException | null) => void) =>
        setImmediate(() => done(Object.assign(new Error('EIO'), { code: 'EIO' })))) as unknown as typeof import('node:fs').fdatasync;
      writeBackEarly(sink, fd, 1024, failing);
      sink.on('error', () => undefined);
      sink.write(Buffer.alloc(4096));
      await eventually(() => sink.errored !== null, 2000, 'the stream to fail');
      await expect(endStream(sink)).rejects.toMatchObject({ code: 'EIO' });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('issue 14: a crash inside a create-only commit', () => {
  let root: string;
  let server: TestServer | undefined;
  const clients: RawClient[] = [];
  afterEach(async () => {
    destroyAll(clients);
    await server?.close();
    server = undefined;
    await rm(root, { recursive: true, force: true });
  });

  /**
   * What a SIGKILL between `link(partial, name)` and `unlink(partial)` leaves: the committed file
   * and the partial's path are one inode, and the manifest is still there. Made by hand, exactly.
   */
  const leaveCrashedAddfile = async (name: string, content: Buffer): Promise<void> => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-i14-crash-'));
    await mkdir(partialsOf(root), { recursive: true });
    await writeFile(join(root, name), content);
    await link(join(root, name), join(partialsOf(root), partialId(name)));
    await writeFile(join(partialsOf(root), `${partialId(name)}.json`), JSON.stringify({ name, size: content.length, startedAt: new Date().toISOString() }));
  };

  test('restart drops the second link; a later upload of the name, cut or whole, never writes into the committed file', async () => {
    const committed = randomBytes(2 * MIB);
    await leaveCrashedAddfile('big.bin', committed);
    server = await startTestServer({ config: { storage: { root } } });
    expect((await lstat(join(root, 'big.bin'))).nlink).toBe(1);
    expect(await readdir(partialsOf(root))).toEqual([]);

    const probe = await RawClient.connect(server.port);
    clients.push(probe);
    await probe.send('RESUME\nbig.bin\n');
    expect(await probe.readLine()).toMatch(/^NOT FOUND/);

    // An upload of the name cut half-way: before, it truncated and overwrote the committed file.
    const next = randomBytes(2 * MIB);
    const cut = await RawClient.connect(server.port);
    await cut.send(uploadRequest('big.bin', next).subarray(0, MIB));
    await eventually(async () => (await readdir(partialsOf(root))).some((entry) => !entry.endsWith('.json')), 5000, 'the upload to be staged');
    cut.destroy();
    await eventually(async () => (await readFile(join(root, 'big.bin'))).equals(committed), 5000, 'the committed file to be intact');
    expect((await readFile(join(root, 'big.bin'))).equals(committed)).toBe(true);

    const whole = await RawClient.connect(server.port);
    clients.push(whole);
    await whole.send(uploadRequest('big.bin', next));
    expect(await whole.readUploadOutcome()).toMatch(/^OK file data recv/);
    expect((await readFile(join(root, 'big.bin'))).equals(next)).toBe(true);
  });

  test('a kept partial that is a second link to a committed file is not offered for resume while the server runs', async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-i14-crash-'));
    server = await startTestServer({ config: { storage: { root } } });
    const content = randomBytes(MIB + 5);
    const up = await RawClient.connect(server.port);
    clients.push(up);
    await up.send(uploadRequest('x.bin', content, { verb: 'ADDFILE' }));
    expect(await up.readUploadOutcome()).toMatch(/^OK file data recv/);
    // As a crash would have left it (a running server only meets this after a restart, or by hand).
    await link(join(root, 'x.bin'), join(partialsOf(root), partialId('x.bin')));
    await up.send('RESUME\nx.bin\n');
    expect(await up.readLine()).toMatch(/^NOT FOUND/);
    await up.send(`UPLOAD ${content.length} FROM ${MIB} ${createHash('sha256').update(content.subarray(0, MIB)).digest('hex')}\nx.bin\n`);
    expect(await up.readLine()).toMatch(/^ERR RESUME_MISMATCH/);
    await up.send(Buffer.concat([content.subarray(MIB), Buffer.from(`SHA256 ${createHash('sha256').update(content).digest('hex')}\n`)]));
    expect((await readFile(join(root, 'x.bin'))).equals(content)).toBe(true);
  });
});

describe('issue 14: RENAME racing an upload of its source', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  /**
   * Round after round, one connection replaces r/N while another renames r/N to r/M. Whatever the
   * order, an upload that was confirmed is stored under r/N or (renamed) r/M; before, the rename's
   * unlink of r/N deleted it after the fact (289 of 2,000 rounds).
   */
  const race = async (rounds: number, size: number) => {
    const uploader = await RawClient.connect(server.port);
    const renamer = await RawClient.connect(server.port);
    clients.push(uploader, renamer);
    const lost: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const old = randomBytes(size);
      const fresh = randomBytes(size);
      await uploader.send(uploadRequest(`r/${i}`, old));
      expect(await uploader.readUploadOutcome()).toMatch(/^OK file data recv/);
      // All of the upload but its trailer first, so that its commit and the RENAME start together.
      const request = uploadRequest(`r/${i}`, fresh);
      const trailerAt = request.length - 72;
      await uploader.send(request.subarray(0, trailerAt));
      expect(await uploader.readLine()).toBe('OK file recv');
      const [uploaded, renamed] = await Promise.all([
        uploader.send(request.subarray(trailerAt)).then(() => uploader.readLine()),
        renamer.send(`RENAME\nr/${i}\nm/${i}\n`).then(() => renamer.readLine()),
      ]);
      expect(uploaded).toMatch(/^OK file data recv/);
      expect(renamed).toBe('OK renamed');
      const atSource = await readFile(join(server.root, 'r', String(i))).catch(() => undefined);
      const atTarget = await readFile(join(server.root, 'm', String(i))).catch(() => undefined);
      if (!atSource?.equals(fresh) && !atTarget?.equals(fresh)) lost.push(i);
      // The renamed file is one of the two versions, whole.
      expect(atTarget?.equals(old) || atTarget?.equals(fresh)).toBe(true);
    }
    expect(lost).toEqual([]);
  };

  /**
   * The exact step, made to happen every time: the rename is paused between its link() and its
   * unlink(), and the upload's commit is started right there. Before the fix the commit landed in
   * the gap and the unlink deleted it; now the commit waits for the rename to finish (its lock),
   * so the pause ends by its timeout and the commit lands after.
   */
  const pausedBetweenLinkAndUnlink = async (size: number) => {
    const uploader = await RawClient.connect(server.port);
    const renamer = await RawClient.connect(server.port);
    clients.push(uploader, renamer);
    for (let i = 0; i < 3; i++) {
      const old = randomBytes(size);
      const fresh = randomBytes(size);
      await uploader.send(uploadRequest(`p/${i}`, old));
      expect(await uploader.readUploadOutcome()).toMatch(/^OK file data recv/);
      const request = uploadRequest(`p/${i}`, fresh);
      const trailerAt = request.length - 72;
      await uploader.send(request.subarray(0, trailerAt));
      expect(await uploader.readLine()).toBe('OK file recv');
      const source = join(server.root, 'p', String(i));
      let paused = false;
      afterLink.hook = async (from) => {
        if (from !== source) return;
        paused = true;
        await uploader.send(request.subarray(trailerAt));
        const committed = async () => (await readFile(source).catch(() => Buffer.alloc(0))).equals(fresh);
        await eventually(committed, 300).catch(() => undefined);
      };
      try {
        await renamer.send(`RENAME\np/${i}\nq/${i}\n`);
        expect(await renamer.readLine()).toBe('OK renamed');
        expect(await uploader.readLine()).toMatch(/^OK file data recv/);
      } finally {
        afterLink.hook = undefined;
      }
      expect(paused).toBe(true);
      expect((await readFile(join(server.root, 'q', String(i)))).equals(old)).toBe(true);
      expect((await readFile(source)).equals(fresh)).toBe(true);
    }
  };

  test('paused between link and unlink, small files: the confirmed upload is kept', () => pausedBetweenLinkAndUnlink(10 * 1024));
  test('paused between link and unlink, larger files: the confirmed upload is kept', () => pausedBetweenLinkAndUnlink(200 * 1024));
  test('small files (the group-commit worker): 150 rounds, no confirmed upload lost', () => race(150, 10 * 1024), 120_000);
  test('larger files (a staging file of their own): 60 rounds, no confirmed upload lost', () => race(60, 200 * 1024), 120_000);
});

describe('issue 14: a plain UPLOAD replaces a kept partial upload, whatever its size', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('a small upload of the name drops what was kept: RESUME finds nothing, no kept bytes stay on disk', async () => {
    const big = randomBytes(3 * MIB);
    const cut = await RawClient.connect(server.port);
    await cut.send(uploadRequest('p.bin', big).subarray(0, 2 * MIB));
    await eventually(async () => (await readdir(partialsOf(server.root))).some((e) => !e.endsWith('.json')), 5000, 'the upload to be staged');
    cut.destroy();
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await eventually(
      async () => {
        await client.send('RESUME\np.bin\n');
        return (await client.readLine()).startsWith('OK partial');
      },
      5000,
      'the cut upload to be kept',
    );
    await client.send(uploadRequest('p.bin', 'small now'));
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 9 /);
    await client.send('RESUME\np.bin\n');
    expect(await client.readLine()).toMatch(/^NOT FOUND/);
    expect(await readdir(partialsOf(server.root))).toEqual([]);
    expect(await readFile(join(server.root, 'p.bin'), 'utf8')).toBe('small now');
  });
});
