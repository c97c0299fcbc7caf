import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { type TestServer, eventually, startTestServer } from '../helpers/server';
import { ServeProcess } from '../ops/ops-support';
import { serveWithDeadline, unmountHung } from './support/hung-mount';
import { cannotMountDeadFolder, mountDeadFolder } from './support/sync-commit-attack';

/**
 * Hostile pass of 2026-12-06 (q), against a71ae5b: the server's own folders under .rxfer written
 * synchronously through the folder opened and checked (inServerFolderSync); calls that reach a user's
 * folder through the thread pool. Attacks: FIFOs, links and folders planted under the names the server
 * makes or reads in .rxfer; a dead mount under the root; the kept uploads' and staging folders swapped
 * for a link between an upload's data and its trailer, or before a RESUME.
 *
 * Found (against a71ae5b; all fixed since, their tests passing, but the last, a known limit kept as
 * `test.failing`: the thread pool used up by 16 calls the kernel never completes):
 *   - The staged data's path (`.rxfer/partials/<id>`, `.rxfer/staging/<name>`) is used by path in the
 *     commit's rename/link and in the discard's unlink (local-staged-write publish, discard), never
 *     through the folder opened and checked. That folder swapped for a link between the data and the
 *     trailer: the commit moves the file of that name outside the root in under the user's name and
 *     replies `OK file data recv <size> <digest of the uploaded bytes>` (untrue: the name holds the
 *     outside file); a wrong whole-file digest has the discard delete the outside file. Same for a
 *     resumed upload (UPLOAD … FROM).
 *   - DigestIndex.forget (DELETE or RENAME of a file > 64 KiB) unlinks `.rxfer/sums/<sha256>.json` by
 *     path: with .rxfer/sums swapped for a link, the file of that name outside the root is deleted.
 *   - FIFOs planted as digest records (`.rxfer/sums/<sha256(name)>.json`, read by DOWNLOAD of a large
 *     file) or as kept uploads' manifests (`.rxfer/partials/<id>.json`, read by DELETE, a mismatched
 *     resume, a ≥ 1 MiB upload, quotas) are read with readFile: a blocking open in a thread-pool thread
 *     that never returns. 20 such requests (serve's pool has 16 threads) and every other client's
 *     STAT fails with STORAGE_FAILED, for good. A dead mount does the same with 20 MKDIR/DELETEs in it.
 *   - LIST of a folder on a dead mount (or of any folder whose walk reaches it, the root included)
 *     opens it with openSync on the main thread (openFolderForWalk, since 1f4681b): the server freezes,
 *     no other client is even greeted.
 *
 * Held (passing tests): FIFOs and links planted as kept uploads' data files (RESUME, DELETE, resumed
 * and fresh 1.5 MiB UPLOADs), links and folders as digest records, RESUME and a mismatched resume
 * through .rxfer/partials swapped for a link, a dead mount under DELETE, RENAME, MKDIR, a small ADDFILE
 * (another small upload stored meanwhile) and DOWNLOAD, each alone.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
/** Failure guard for replies (not a timing assertion). */
const GUARD_MS = 5000;
const REPLY_MS = 20_000;
/** More requests than `rxfer serve`'s thread pool has threads (bin/rxfer.js: UV_THREADPOOL_SIZE 16). */
const HUNG = 20;

// ---------------------------------------------------------------------------------------------
// Server processes: anything that could hang a thread must not hang the test runner's.

describe('hostile 2026-12-06q: FIFOs under .rxfer and a dead mount, against a server process', () => {
  let tmp: string;
  let daemon: ChildProcess | undefined;
  let serve: ServeProcess | undefined;
  const own: RawClient[] = [];
  const fifos: string[] = [];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-hostile-q-'));
  });
  afterEach(async () => {
    destroyAll(own);
    await unmountHung(daemon, join(tmp, 'root', 'dead'));
    daemon = undefined;
    // A reader waiting in a FIFO's open gets it (and then EOF): the server's threads go on.
    for (const fifo of fifos.splice(0)) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // No reader there.
      }
    }
    serve?.kill();
    if (serve) await serve.exited;
    serve = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  const root = (): string => join(tmp, 'root');
  const mkfifo = (path: string): void => {
    execFileSync('mkfifo', [path]);
    fifos.push(path);
  };

  const connect = async (port: number): Promise<RawClient> => {
    const client = await RawClient.connect(port, { readGreeting: false });
    own.push(client);
    expect(await client.readLine(GUARD_MS).catch(() => 'no greeting within the guard')).toMatch(/^OK rxfer\//);
    return client;
  };

  /** A server process on tmp/root (ok.txt, an empty folder `dead`, .rxfer's folders), deadline 1 s. */
  const startServer = async (before: () => Promise<void> = async () => undefined): Promise<number> => {
    await mkdir(join(root(), 'dead'), { recursive: true });
    await mkdir(join(root(), '.rxfer', 'partials'), { recursive: true });
    await mkdir(join(root(), '.rxfer', 'sums', 'folders'), { recursive: true });
    await writeFile(join(root(), 'ok.txt'), 'fine');
    await before();
    let port: number;
    ({ serve, port } = await serveWithDeadline(root(), tmp));
    return port;
  };

  /** Another client is greeted and its STAT of ok.txt answered. */
  const anotherServed = async (port: number): Promise<void> => {
    const other = await connect(port);
    await other.send('STAT\nok.txt\n');
    expect(await other.readLine(GUARD_MS).catch(() => 'no reply within the guard')).toMatch(/^OK stat file 4 /);
  };

  /** Sends each request on its own connection (a moment apart, untimed), then asks another client to be served. */
  const sendAllThenOther = async (port: number, requests: Buffer[]): Promise<RawClient[]> => {
    const senders: RawClient[] = [];
    for (const request of requests) {
      const client = await connect(port);
      await client.send(request);
      senders.push(client);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await anotherServed(port);
    return senders;
  };

  /**
   * A FIFO planted as a large file's digest record (.rxfer/sums/<sha256 of the name>.json): a DOWNLOAD
   * of that file (not in the records kept in memory, e.g. put there by other means or after a restart)
   * reads the record with readFile, in the thread pool, by path, without O_NONBLOCK. The open waits for
   * a writer that never comes: that thread is gone for good, whatever the request's deadline does. Eight
   * such downloads (more than libuv's 4 threads) and no call of the thread pool ever runs again.
   */
  test('FIFOs planted as large files\' digest records: twenty DOWNLOADs of those files, and another client is still served', async () => {
    const names = Array.from({ length: HUNG }, (_, i) => `large-${i}.bin`);
    const port = await startServer(async () => {
      for (const name of names) {
        await writeFile(join(root(), name), randomBytes(100 * KiB));
        mkfifo(join(root(), '.rxfer', 'sums', `${sha256(name)}.json`));
      }
    });
    await sendAllThenOther(port, names.map((name) => downloadRequest(name)));
  }, 30_000);

  /**
   * A FIFO planted as a kept upload's manifest beside a kept data file: DELETE of the name asks whether
   * the kept bytes were counted (PartialUploads.counted: readFile of `<id>.json`, thread pool, by path,
   * blocking open). Each such DELETE takes a thread for good; eight of them, and the thread pool is gone.
   */
  test('FIFOs planted as kept uploads\' manifests: twenty DELETEs of those names, and another client is still served', async () => {
    const names = Array.from({ length: HUNG }, (_, i) => `kept-${i}.bin`);
    const port = await startServer(async () => {
      for (const name of names) {
        await writeFile(join(root(), '.rxfer', 'partials', sha256(name)), 'kept bytes');
        mkfifo(join(root(), '.rxfer', 'partials', `${sha256(name)}.json`));
      }
    });
    await sendAllThenOther(port, names.map((name) => Buffer.from(`DELETE\n${name}\n`)));
  }, 30_000);

  /** Held: the data file's own name as a FIFO is opened O_EXCL (an upload), O_NONBLOCK (the probe), lstat'ed (DELETE). */
  test('FIFOs planted as kept uploads\' data files: RESUME, DELETE, a 1.5 MiB UPLOAD and a resumed UPLOAD of those names; another client is served, the replies true', async () => {
    const port = await startServer(async () => {
      for (const name of ['r.bin', 'd.bin', 'u.bin', 'f.bin']) mkfifo(join(root(), '.rxfer', 'partials', sha256(name)));
    });
    const data = randomBytes(1536 * KiB);
    const client = await connect(port);
    await client.send('RESUME\nr.bin\n');
    expect(await client.readLine(GUARD_MS)).toMatch(/^NOT FOUND/);
    await anotherServed(port);
    await client.send('DELETE\nd.bin\n');
    expect(await client.readLine(GUARD_MS)).toMatch(/^(NOT FOUND|OK deleted|ERR [A-Z_]+ \S)/);
    await anotherServed(port);
    await client.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length} FROM 5 ${sha256('hello')}\nf.bin\n`)]));
    expect(await client.readLine(GUARD_MS)).toMatch(/^ERR RESUME_MISMATCH /);
    await client.send(data.subarray(5));
    await client.send(`SHA256 ${sha256(data)}\n`);
    await anotherServed(port);
    const uploader = await connect(port);
    await uploader.send(uploadRequest('u.bin', data));
    expect(await uploader.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect(sha256(await readFile(join(root(), 'u.bin')))).toBe(sha256(data));
    await anotherServed(port);
  }, 40_000);

  const deadCases: [string, Buffer][] = [
    ['DELETE of a name in it', Buffer.from('DELETE\ndead/a.txt\n')],
    ['RENAME within it', Buffer.from('RENAME\ndead/a.txt\ndead/b.txt\n')],
    ['MKDIR in it', Buffer.from('MKDIR\ndead/sub\n')],
    ['a small ADDFILE (1 KiB) into it', uploadRequest('dead/s.txt', randomBytes(KiB), { verb: 'ADDFILE' })],
    // Found and fixed (since 1f4681b, hostile pass j): LIST's walk opened each folder with openSync on
    // the main thread (openFolderForWalk), and the whole server froze.
    ['LIST of it', Buffer.from('LIST\ndead\n')],
    ['LIST of the root (the walk reaches it)', Buffer.from('LIST\n\n')],
    ['DOWNLOAD from it', downloadRequest('dead/a.txt')],
  ];
  const canMount = cannotMountDeadFolder() === undefined;

  /** Held or found, each alone: the request may fail, another client must be served meanwhile, and its reply come. */
  (canMount ? test.each(deadCases) : test.skip.each(deadCases))(
    'a dead mount inside the root, %s: another client is greeted and served meanwhile, and the request is answered',
    async (_what, request) => {
      const port = await startServer();
      daemon = await mountDeadFolder(join(root(), 'dead'), tmp);
      const [stuck] = await sendAllThenOther(port, [request]);
      expect(await stuck!.readLine(GUARD_MS)).toMatch(/^(OK|NOT FOUND|ERR [A-Z_]+ \S)/);
    },
    30_000,
  );

  /**
   * A small ADDFILE is committed by the one small-commit worker: stuck in the dead folder, does every
   * other small upload (into a live folder) wait behind it for good?
   */
  (canMount ? test : test.skip)('a dead mount inside the root, a small ADDFILE into it: another client\'s small UPLOAD elsewhere is stored meanwhile', async () => {
    const port = await startServer();
    daemon = await mountDeadFolder(join(root(), 'dead'), tmp);
    await sendAllThenOther(port, [uploadRequest('dead/s.txt', randomBytes(KiB), { verb: 'ADDFILE' })]);
    const other = await connect(port);
    const small = randomBytes(2 * KiB);
    await other.send(uploadRequest('live.txt', small));
    expect(await other.readUploadOutcome(GUARD_MS)).toBe(`OK file data recv ${small.length} ${sha256(small)}`);
  }, 30_000);

  /**
   * Each request into the dead mount leaves a thread-pool thread in a call the kernel never completes
   * (its deadline answers the client, the thread stays). Past the pool's 16 threads nothing of the
   * pool runs again. A KNOWN LIMIT, left open (README, Exhaustion): `test.failing` passes while it
   * holds and fails, to be made a plain test, once a fix (calls into a folder that stopped answering
   * refused up front, or run on threads of their own) lands.
   */
  (canMount ? test.failing : test.skip)('a dead mount inside the root, twenty requests into it: another client is still served', async () => {
    const port = await startServer();
    daemon = await mountDeadFolder(join(root(), 'dead'), tmp);
    await sendAllThenOther(
      port,
      Array.from({ length: HUNG }, (_, i) => Buffer.from(i % 2 === 0 ? `MKDIR\ndead/sub-${i}\n` : `DELETE\ndead/x-${i}\n`)),
    );
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// In-process servers: .rxfer/partials and .rxfer/staging swapped for a link mid-upload

describe('hostile 2026-12-06q: the kept uploads\' and staging folders swapped for a link mid-upload', () => {
  const clients: RawClient[] = [];
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    destroyAll(clients);
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const serve = async (): Promise<{ server: TestServer; root: string; outside: string }> => {
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const outside = join(realpathSync(server.scratch), 'outside');
    await mkdir(outside, { recursive: true });
    return { server, root: realpathSync(server.root), outside };
  };
  const connectTo = async (port: number): Promise<RawClient> => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };

  /** `<root>/.rxfer/<which>` moved aside and a link to `outside` put in its place; undone at cleanup. */
  const swapForLink = async (root: string, which: string, outside: string): Promise<void> => {
    const folder = join(root, '.rxfer', which);
    await rename(folder, `${folder}-away`);
    await symlink(outside, folder);
    cleanups.push(async () => {
      await rm(folder, { force: true });
      await rename(`${folder}-away`, folder).catch(() => undefined);
    });
  };

  const fileSize = async (path: string): Promise<number> => (await stat(path).catch(() => undefined))?.size ?? -1;

  /**
   * The staged data's path is `<root>/.rxfer/partials/<id>` (or `.rxfer/staging/<name>`) by path, and the
   * commit's rename (local-staged-write publish) and the discard's unlink use that path through the thread
   * pool, not the folder opened and checked. Swapped for a link to a folder holding a file of that name:
   * the commit moves the outside file in under the user's name (the reply tells the uploaded bytes'
   * digest); a failed upload's discard deletes the outside file.
   */
  const swapCases: [string, string, number, boolean][] = [
    ['kept uploads (1.5 MiB), a wrong whole-file digest (discard)', 'partials', 1536 * KiB, false],
    ['kept uploads (1.5 MiB), the right digest (commit)', 'partials', 1536 * KiB, true],
    ['staging (200 KiB), a wrong whole-file digest (discard)', 'staging', 200 * KiB, false],
    ['staging (200 KiB), the right digest (commit)', 'staging', 200 * KiB, true],
  ];
  test.each(swapCases)('%s: the folder swapped for a link before the trailer: nothing outside the root is moved or deleted, the reply true', async (_what, which, size, rightDigest) => {
    const { server, root, outside } = await serve();
    const data = randomBytes(size);
    const client = await connectTo(server.port);
    await client.send(Buffer.concat([Buffer.from(`UPLOAD ${size}\nbig.bin\n`), data]));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    const folder = join(root, '.rxfer', which);
    let staged = '';
    await eventually(
      async () => {
        for (const name of readdirSync(folder)) if (!name.endsWith('.json') && (await fileSize(join(folder, name))) === size) staged = name;
        return staged !== '';
      },
      REPLY_MS,
      'all the data staged',
    );
    await writeFile(join(outside, staged), 'outside the root: not the server\'s');
    await swapForLink(root, which, outside);
    await client.send(`SHA256 ${rightDigest ? sha256(data) : sha256('something else')}\n`);
    const reply = await client.readLine(REPLY_MS);
    expect(reply).toMatch(/^(OK file data recv|ERR [A-Z_]+ \S)/);
    if (reply.startsWith('OK')) {
      expect(reply).toBe(`OK file data recv ${size} ${sha256(data)}`);
      // The name holds the bytes the reply's digest is of, not the outside file.
      expect(await readFile(join(root, 'big.bin'), 'utf8').then((text) => (text.startsWith('outside') ? text : sha256(Buffer.from(text, 'latin1'))), () => 'nothing')).not.toBe('outside the root: not the server\'s');
      expect(sha256(await readFile(join(root, 'big.bin')))).toBe(sha256(data));
    }
    expect(await readFile(join(outside, staged), 'utf8').catch(() => 'gone')).toBe('outside the root: not the server\'s');
  });

  /** Kept bytes of an interrupted 1.5 MiB upload of big.bin (1 MiB of it); the whole file. */
  const keepOneMiB = async (server: TestServer, root: string): Promise<Buffer> => {
    const data = randomBytes(1536 * KiB);
    const client = await connectTo(server.port);
    await client.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nbig.bin\n`), data.subarray(0, MiB)]));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => (await fileSize(join(root, '.rxfer', 'partials', sha256('big.bin')))) === MiB, REPLY_MS, '1 MiB kept');
    client.destroy();
    await eventually(async () => {
      const probe = await connectTo(server.port);
      await probe.send('RESUME\nbig.bin\n');
      const line = await probe.readLine(REPLY_MS);
      probe.destroy();
      return line === `OK partial ${MiB} ${sha256(data.subarray(0, MiB))}`;
    }, REPLY_MS, 'the upload kept');
    return data;
  };

  /**
   * Held (a71ae5b): the probe opens through the folder opened and checked. Since c923a68 the reply names
   * the server's folder (it said NOT FOUND, untrue of the upload kept in the folder moved aside).
   */
  test('RESUME with the kept uploads\' folder swapped for a link to a folder holding a file of that id: STORAGE_FAILED naming the folder, never the outside file\'s digest', async () => {
    const { server, root, outside } = await serve();
    await keepOneMiB(server, root);
    await writeFile(join(outside, sha256('big.bin')), 'outside bytes');
    await swapForLink(root, 'partials', outside);
    const client = await connectTo(server.port);
    await client.send('RESUME\nbig.bin\n');
    expect(await client.readLine(REPLY_MS)).toBe("ERR STORAGE_FAILED cannot look for the kept upload of big.bin: the server's own folder .rxfer/partials cannot be used (it, or a folder above it, is a symbolic link now: ELOOP)");
  });

  /** Held: the resume's open is checked (assertOpenedAt), its removal goes through the checked folder. The reply names the folder (c923a68). */
  test('a resumed UPLOAD whose prefix is the outside file\'s, the folder swapped for a link: STORAGE_FAILED naming the folder, the outside file stays', async () => {
    const { server, root, outside } = await serve();
    const data = await keepOneMiB(server, root);
    await writeFile(join(outside, sha256('big.bin')), 'outside bytes');
    await swapForLink(root, 'partials', outside);
    const client = await connectTo(server.port);
    await client.send(`UPLOAD ${data.length} FROM 13 ${sha256('outside bytes')}\nbig.bin\n`);
    expect(await client.readLine(REPLY_MS)).toBe("ERR STORAGE_FAILED cannot resume big.bin: the server's own folder .rxfer/partials cannot be used (it, or a folder above it, is a symbolic link now: ELOOP)");
    expect(await readFile(join(outside, sha256('big.bin')), 'utf8')).toBe('outside bytes');
  });

  /**
   * A resumed upload (its data file reopened and checked) whose folder is swapped for a link before the
   * trailer: the commit renames the data file by path (as a fresh one's), through the link.
   */
  test('a resumed UPLOAD, the kept uploads\' folder swapped for a link before its trailer: the outside file stays, the reply true', async () => {
    const { server, root, outside } = await serve();
    const data = await keepOneMiB(server, root);
    const client = await connectTo(server.port);
    await client.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length} FROM ${MiB} ${sha256(data.subarray(0, MiB))}\nbig.bin\n`), data.subarray(MiB)]));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => (await fileSize(join(root, '.rxfer', 'partials', sha256('big.bin')))) === data.length, REPLY_MS, 'the rest staged');
    await writeFile(join(outside, sha256('big.bin')), 'outside bytes');
    await swapForLink(root, 'partials', outside);
    await client.send(`SHA256 ${sha256(data)}\n`);
    const reply = await client.readLine(REPLY_MS);
    expect(reply).toMatch(/^(OK file data recv|ERR [A-Z_]+ \S)/);
    if (reply.startsWith('OK')) expect(await readFile(join(root, 'big.bin')).then((bytes) => (bytes.toString() === 'outside bytes' ? 'outside bytes' : sha256(bytes)))).toBe(sha256(data));
    expect(await readFile(join(outside, sha256('big.bin')), 'utf8').catch(() => 'gone')).toBe('outside bytes');
  });

  /**
   * DigestIndex.forget (DELETE, RENAME of a file of more than 64 KiB) unlinks `.rxfer/sums/<sha256>.json`
   * by path, through the thread pool, not through the records' folder opened and checked (which
   * remember uses): with .rxfer/sums swapped for a link, it deletes that name outside the root.
   */
  test.each([['DELETE', (name: string) => `DELETE\n${name}\n`, /^OK deleted/], ['RENAME', (name: string) => `RENAME\n${name}\nmoved.bin\n`, /^OK renamed/]] as const)(
    'the digest records\' folder swapped for a link, then %s of a 300 KiB file: the file of the record\'s name outside the root stays',
    async (_verb, request, okReply) => {
      const { server, root, outside } = await serve();
      const data = randomBytes(300 * KiB);
      const client = await connectTo(server.port);
      await client.send(uploadRequest('big.bin', data));
      expect(await client.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
      const record = `${sha256('big.bin')}.json`;
      await writeFile(join(outside, record), 'outside the root');
      await swapForLink(root, 'sums', outside);
      await client.send(request('big.bin'));
      expect(await client.readLine(REPLY_MS)).toMatch(okReply);
      expect(await readFile(join(outside, record), 'utf8').catch(() => 'gone')).toBe('outside the root');
    },
  );

  /** Held: a link planted as a kept upload's data file is unlinked itself, never followed (O_EXCL|O_NOFOLLOW, lstat, unlink). */
  test('a link to a file outside the root planted as a kept upload\'s data file: a 1.5 MiB UPLOAD, RESUME and DELETE of that name leave the file alone', async () => {
    const { server, root, outside } = await serve();
    const victim = join(outside, 'victim.txt');
    await writeFile(victim, 'do not touch');
    const partials = join(root, '.rxfer', 'partials');
    const client = await connectTo(server.port);
    await symlink(victim, join(partials, sha256('r.bin')));
    await client.send('RESUME\nr.bin\n');
    expect(await client.readLine(REPLY_MS)).toMatch(/^NOT FOUND/);
    await symlink(victim, join(partials, sha256('d.bin')));
    await client.send('DELETE\nd.bin\n');
    expect(await client.readLine(REPLY_MS)).toMatch(/^(NOT FOUND|OK deleted|ERR [A-Z_]+ \S)/);
    await symlink(victim, join(partials, sha256('u.bin')));
    const data = randomBytes(1536 * KiB);
    await client.send(uploadRequest('u.bin', data));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect(sha256(await readFile(join(root, 'u.bin')))).toBe(sha256(data));
    expect(await readFile(victim, 'utf8')).toBe('do not touch');
  });

  /** A 300 KiB upload of `name`: its reply true, and a DOWNLOAD of it gives back exactly its bytes. */
  const storedAndServedBack = async (port: number, name: string): Promise<void> => {
    const data = randomBytes(300 * KiB);
    const client = await connectTo(port);
    await client.send(uploadRequest(name, data));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    await client.send(downloadRequest(name));
    expect(await client.readLine(REPLY_MS)).toBe(`OK ${data.length} ${sha256(data)}`);
    expect(sha256(await client.readBytes(data.length, REPLY_MS))).toBe(sha256(data));
  };

  /** Held: a link planted as a large file's digest record is replaced by the rename, never written through. */
  test('a link to a file outside the root planted as a large upload\'s digest record: the file stays, the upload and its DOWNLOAD true', async () => {
    const { server, root, outside } = await serve();
    const victim = join(outside, 'victim.txt');
    await writeFile(victim, 'do not touch');
    await symlink(victim, join(root, '.rxfer', 'sums', `${sha256('rec.bin')}.json`));
    await storedAndServedBack(server.port, 'rec.bin');
    expect(await readFile(victim, 'utf8')).toBe('do not touch');
  });

  /** Held: a folder planted as a large file's digest record (the rename over it fails, a cache): the upload stands, DOWNLOAD true. */
  test('a folder planted as a large upload\'s digest record: the upload is stored, its reply and DOWNLOAD true', async () => {
    const { server, root } = await serve();
    await mkdir(join(root, '.rxfer', 'sums', `${sha256('rec.bin')}.json`), { recursive: true });
    await storedAndServedBack(server.port, 'rec.bin');
  });
});
