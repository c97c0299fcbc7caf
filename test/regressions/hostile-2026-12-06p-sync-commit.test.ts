// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { failNext, failed, restoreFs } from '../promises/support/fs-faults';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs = require('node:fs');
import { lstatSync, readdirSync, realpathSync, watch } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { type TestServer, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';
import { fillToSync, hookWrites } from '../helpers/tmpfs';
import { ServeProcess } from '../ops/ops-support';
import { serveWithDeadline, unmountHung } from './support/hung-mount';
import { startSwapper } from './support/link-attack';
import { makeUser, startSecureServer } from '../security/support/server';
import { type TinyTmpfs, cannotMountDeadFolder, giveBack, mountDeadFolder, mountTinyTmpfs, useUpInodes } from './support/sync-commit-attack';

/**
 * Hostile pass of 2026-12-06 (p), against 87d4fa3: a streamed upload's commit makes its metadata calls
 * (the staging file's open and close, the folder's open and /proc check, the rename or link + unlink,
 * the kept upload's manifest and its removal, the digest sidecar) synchronously on the main thread;
 * only the writes and the two fsyncs stay in the thread pool. DELETE, RENAME, MKDIR, STAT and folder
 * creation go through the same synchronous inOpenedFolder.
 *
 * Found (each now fixed, its test below passing; each says whether 87d4fa3 made it). The fix: calls
 * that reach a user's folder go through the thread pool again (inOpenedFolder, the header's look, a
 * small ADDFILE's look at its name); the server's own folders under .rxfer are opened and checked,
 * and their files made fresh (O_EXCL, O_NOFOLLOW) through that descriptor (inServerFolderSync);
 * suspend reports nothing kept once a close failed.
 *   - 87d4fa3: a folder inside the root on a mount that stopped answering freezes the whole server at
 *     an UPLOAD's commit into it (100 KiB) or a STAT (also DELETE, RENAME, MKDIR) of a name in it:
 *     no deadline fires, no other client is even greeted. Before, STORAGE_FAILED after the deadline.
 *   - 87d4fa3: a FIFO planted as `.rxfer/partials/<sha256 of the name>.json` freezes the whole server
 *     at the next upload of ≥ 1 MiB of that name (writeFileSync's open waits for a reader).
 *   - before 87d4fa3 (385da2a): the same dead mount freezes the server at an ADDFILE's (or ≥ 1 MiB
 *     upload's) header, whose look through the opened folder was synchronous already.
 *   - before 87d4fa3, in the rewritten code: the manifest is written through a planted link (a file
 *     outside the root overwritten with the manifest's JSON) and through .rxfer/partials swapped for
 *     a link; the digest sidecar through .rxfer/sums swapped for a link.
 *   - before 87d4fa3: a kept upload whose close fails as its connection is lost is deleted, but its
 *     bytes stay counted against the user's quota (suspend reports them kept).
 *
 * Held (passing tests): a full disk (inodes or blocks) at the staging open, the manifest, the data
 * writes and the sidecar (100 KiB to 3 MiB, UPLOAD and ADDFILE): NO_SPACE or a true OK, nothing left
 * behind, uploads work again once space is back; faults on command (folder fsync → NOT_DURABLE with
 * the file in place, close → STORAGE_FAILED, unlink after an ADDFILE's link → stored, nothing
 * resumable, the next upload of the name never writes the first file); two UPLOADs or two ADDFILEs
 * of one name at once; an UPLOAD racing a DELETE of the name and a RENAME of its folder; a folder
 * swapped for a link to outside in a loop during commits; pipelined uploads cut at each point; the
 * server SIGKILLed during 1.5 MiB uploads and started again.
 */

const KiB = 1024;

/**
 * README (Exhaustion): "Every storage call a request awaits (open, the commit's fsync and rename,
 * stat, …, unlink, rename, mkdir) … has a deadline of one stall window: storage that gives no answer
 * (a dead mount, a disk that stopped answering) fails that request with ERR STORAGE_FAILED …; the
 * connection goes on", and one connection's trouble leaves the others alone ("the server keeps
 * serving everyone else").
 *
 * Commit 87d4fa3 made the folder's open in inOpenedFolder (opened-paths.ts: openCheckedFolderSync), the
 * staging file's open, the rename/link and the kept upload's manifest and the digest sidecar writes
 * synchronous, on the server's only thread. A call the kernel never completes now freezes the whole
 * process: no deadline can fire, no other connection is read or even greeted. Before, the call
 * waited in a thread-pool thread and the deadline cut the request (the same class as
 * hostile-2026-12-04-dead-mount's small reads). Each case runs `rxfer serve` as its own process (a
 * frozen server in this process would freeze the test runner too).
 */
describe('hostile 2026-12-06p: a call that never returns, on the server\'s only thread', () => {
  /** Failure guard for the other client's greeting and replies (the deadline is 1 s). */
  const GUARD_MS = 5000;
  let tmp: string;
  let daemon: ChildProcess | undefined;
  let serve: ServeProcess | undefined;
  const own: RawClient[] = [];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-hostile-p-dead-'));
  });
  afterEach(async () => {
    destroyAll(own);
    // The file system first: its end fails every call hung on it, so the server can then be killed.
    await unmountHung(daemon, join(tmp, 'root', 'dead'));
    daemon = undefined;
    serve?.kill();
    if (serve) await serve.exited;
    serve = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  const connect = async (port: number): Promise<RawClient> => {
    const client = await RawClient.connect(port, { readGreeting: false });
    own.push(client);
    expect(await client.readLine(GUARD_MS)).toMatch(/^OK rxfer\//);
    return client;
  };

  /** A server process on tmp/root (holding ok.txt and an empty folder `dead`), a deadline of 1 s; its port. */
  const startServer = async (): Promise<number> => {
    const root = join(tmp, 'root');
    await mkdir(join(root, 'dead'), { recursive: true });
    await writeFile(join(root, 'ok.txt'), 'fine');
    let port: number;
    ({ serve, port } = await serveWithDeadline(root, tmp));
    return port;
  };

  /**
   * `request` sent by one client; then another client must be greeted and answered, and the first
   * one's reply must be `firstReply` (then, after `OK file recv`, `finalReply`).
   */
  const othersServed = async (port: number, request: Buffer, firstReply: RegExp, finalReply = /^ERR STORAGE_FAILED /): Promise<void> => {
    const stuck = await connect(port);
    await stuck.send(request);
    // A moment for the request to reach the dead call (no timing is asserted: it only makes the other
    // client come second).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const other = await connect(port);
    await other.send('STAT\nok.txt\n');
    expect(await other.readLine(GUARD_MS)).toMatch(/^OK stat file 4 /);
    const first = await stuck.readLine(GUARD_MS);
    expect(first).toMatch(firstReply);
    if (first === 'OK file recv') expect(await stuck.readLine(GUARD_MS)).toMatch(finalReply);
  };

  const body = randomBytes(100 * KiB);
  const deadMountCases: [string, Buffer, RegExp][] = [
    // Found (87d4fa3): the header is taken (the folder checked by realpath, which works there), the
    // staging file made in .rxfer/staging; the commit then opens the dead folder synchronously.
    ['UPLOAD of 100 KiB into it (its commit opens the folder)', uploadRequest('dead/x.bin', body), /^(OK file recv|ERR STORAGE_FAILED )/],
    // Found (87d4fa3): STAT (and DELETE, RENAME, MKDIR: LocalFileOps.through) open the checked folder
    // to act through it, now synchronously.
    ['STAT of a name in it (LocalFileOps opens the folder)', Buffer.from('STAT\ndead/x.bin\n'), /^(ERR STORAGE_FAILED |NOT FOUND )/],
    // Found (not the change's doing: beginWrite's look has been synchronous since 385da2a): an ADDFILE,
    // or an upload of ≥ 1 MiB, looks at its name through the opened folder at the header.
    ['ADDFILE of 100 KiB into it (the header\'s look, synchronous before 87d4fa3 already)', uploadRequest('dead/x.bin', body, { verb: 'ADDFILE' }), /^(OK file recv|ERR STORAGE_FAILED )/],
  ];

  /**
   * A folder inside the root on a mount that stopped answering (FUSE, as a dead NFS server gives): it
   * can be stat'ed (realpath works), but an open of it, or a change in it, is never answered.
   */
  (cannotMountDeadFolder() === undefined ? test.each(deadMountCases) : test.skip.each(deadMountCases))(
    'a dead mount inside the root, %s: that request fails with STORAGE_FAILED, and another client is greeted and served meanwhile',
    async (_what, request, firstReply) => {
      const port = await startServer();
      daemon = await mountDeadFolder(join(tmp, 'root', 'dead'), tmp);
      await othersServed(port, request, firstReply);
    },
    30_000,
  );

  /**
   * Found (87d4fa3; no mount, no privilege, no race needed). A kept upload's manifest is now written
   * with writeFileSync(<root>/.rxfer/partials/<sha256 of the name>.json): an open for writing, by
   * path, without O_NONBLOCK, on the main thread. A local user who can write in the root makes that
   * name a FIFO (`mkfifo`); the next upload of ≥ 1 MiB of the name opens it and waits for a reader
   * that never comes: the whole server is frozen (reproduced: the other client's greeting never
   * arrives). Before, writeFile waited in a thread-pool thread and only that upload was held.
   */
  test('a FIFO planted as a kept upload\'s manifest: a 1.5 MiB upload of that name fails or is stored, and another client is greeted and served meanwhile', async () => {
    const port = await startServer();
    execFileSync('mkfifo', [join(tmp, 'root', '.rxfer', 'partials', `${sha256('big.bin')}.json`)]);
    await othersServed(port, uploadRequest('big.bin', randomBytes(1536 * KiB)), /^(OK file recv|ERR [A-Z_]+ \S)/, /^(OK file data recv|ERR [A-Z_]+ \S)/);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// In-process servers: links under .rxfer, a full disk, faults on command, races, cuts

const MiB = 1024 * KiB;
/** Failure guard for every reply: a loaded 2-core box is slow. Not a timing assertion. */
const REPLY_MS = 20_000;

/** An upload's header and data, without its trailer (sent later, to choose when the commit runs). */
const headerAndData = (verb: 'UPLOAD' | 'ADDFILE', name: string, data: Buffer): Buffer => Buffer.concat([Buffer.from(`${verb} ${data.length}\n${name}\n`), data]);
const trailer = (data: Buffer): Buffer => Buffer.from(`SHA256 ${sha256(data)}\n`);
const storedReply = (data: Buffer): string => `OK file data recv ${data.length} ${sha256(data)}`;

const partialsOf = (root: string): string => join(root, '.rxfer', 'partials');
/** Everything in the kept uploads' folder (data files and manifests). */
const keptFiles = async (root: string): Promise<string[]> => (await readdir(partialsOf(root)).catch(() => [] as string[])).sort();
/** Digest sidecars' temporary files left in .rxfer/sums. */
const sidecarTemps = async (root: string): Promise<string[]> => (await readdir(join(root, '.rxfer', 'sums')).catch(() => [] as string[])).filter((name) => name.endsWith('.tmp'));
/** The largest staging data file now (a staging file or a kept upload's data), in bytes. */
const largestStaged = async (root: string): Promise<number> => {
  const paths = [
    ...(await readdir(join(root, '.rxfer', 'staging')).catch(() => [] as string[])).map((name) => join(root, '.rxfer', 'staging', name)),
    ...(await keptFiles(root)).filter((name) => !name.endsWith('.json')).map((name) => join(partialsOf(root), name)),
  ];
  const sizes = await Promise.all(paths.map(async (path) => (await stat(path).catch(() => undefined))?.size ?? 0));
  return Math.max(0, ...sizes);
};

const clients: RawClient[] = [];
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  destroyAll(clients);
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(restoreFs);

/** A server in this process (so that fs-faults and the write hooks reach it), on `root` if given; its real root. */
const serve = async (root?: string): Promise<{ server: TestServer; root: string }> => {
  if (root) await mkdir(root, { recursive: true });
  const server = await startTestServer(root ? { config: { storage: { root } } } : {});
  cleanups.push(() => server.close());
  return { server, root: realpathSync(root ?? server.root) };
};
const connectTo = async (port: number): Promise<RawClient> => {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
};

/** The name holds exactly `data` (DOWNLOAD: the announced digest and the bytes). */
const expectDownload = async (client: RawClient, name: string, data: Buffer): Promise<void> => {
  await client.send(downloadRequest(name));
  expect(await client.readLine(REPLY_MS)).toBe(`OK ${data.length} ${sha256(data)}`);
  expect(sha256(await client.readBytes(data.length, REPLY_MS))).toBe(sha256(data));
};

describe('hostile 2026-12-06p: the server\'s own files under .rxfer (now written synchronously) and links', () => {
  /**
   * Found by this pass (not the change's doing, but in the code it rewrote). A kept upload's manifest
   * is written with writeFileSync(<root>/.rxfer/partials/<sha256 of the name>.json) (partial-uploads.ts
   * writeManifest), which follows a link, as writeFile did before. The name is anyone's to compute:
   * a local user who can write in the root plants it as a link to any file the server may write, and
   * the next upload of ≥ 1 MiB of that name truncates that file and writes its JSON manifest into it
   * (reproduced: outside/victim.txt holds `{"name":"big.bin","size":1572864,"startedAt":…}`). The
   * README: "The server's own files under .rxfer/ are never written through a link".
   */
  test('a link planted as a kept upload\'s manifest: a 1.5 MiB upload of that name never writes the file it points at', async () => {
    const { server, root } = await serve();
    const victim = join(realpathSync(server.scratch), 'victim.txt');
    await writeFile(victim, 'do not touch');
    await symlink(victim, join(partialsOf(root), `${sha256('big.bin')}.json`));
    const data = randomBytes(1536 * KiB);
    const client = await connectTo(server.port);
    await client.send(uploadRequest('big.bin', data));
    expect(await client.readUploadOutcome(REPLY_MS)).toMatch(/^(OK file data recv|ERR [A-Z_]+ \S)/);
    expect(await readFile(victim, 'utf8')).toBe('do not touch');
  });

  /**
   * Found by this pass (not the change's doing). The kept uploads' folder swapped for a link to a
   * folder outside the root after the start: the data file is checked after its open
   * (assertOpenedAt), but the manifest is written first, by path, through the link: a file
   * `<sha256>.json` is made outside the root (and the data file is created there too before the
   * check removes it; seen with fs.watch: `rename <id>.json`, `change <id>.json`, `rename <id>`).
   */
  test('.rxfer/partials swapped for a link to outside the root: a 1.5 MiB upload never makes a file outside', async () => {
    const { server, root } = await serve();
    const outside = join(realpathSync(server.scratch), 'trap');
    await mkdir(outside);
    const seen: string[] = [];
    const watcher = watch(outside, (event, name) => seen.push(`${event} ${name}`));
    cleanups.push(() => watcher.close());
    await rename(partialsOf(root), `${partialsOf(root)}-real`);
    await symlink(outside, partialsOf(root));
    cleanups.push(async () => {
      await unlink(partialsOf(root));
      await rename(`${partialsOf(root)}-real`, partialsOf(root));
    });
    const client = await connectTo(server.port);
    await client.send(uploadRequest('big.bin', randomBytes(1536 * KiB)));
    expect(await client.readUploadOutcome(REPLY_MS)).toMatch(/^(OK file data recv|ERR [A-Z_]+ \S)/);
    // The watcher's events arrive on the event loop: give them a turn, then look.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readdirSync(outside)).toEqual([]);
    expect(seen).toEqual([]);
  });

  /**
   * Found by this pass (not the change's doing, but in the code it rewrote). A large file's digest
   * sidecar is written as <root>/.rxfer/sums/<sha256>.json<staging name>.tmp (O_EXCL|O_NOFOLLOW on the
   * last segment only), then renamed: with .rxfer/sums swapped for a link to a folder outside the
   * root, every upload of more than 64 KiB makes its sidecar there (reproduced: outside/<sha256>.json
   * holding {"name":"mid.bin","size":102400,…}).
   */
  test('.rxfer/sums swapped for a link to outside the root: a 100 KiB upload\'s digest sidecar is never made outside', async () => {
    const { server, root } = await serve();
    const sums = join(root, '.rxfer', 'sums');
    const outside = join(realpathSync(server.scratch), 'trap');
    await mkdir(join(outside, 'folders'), { recursive: true });
    const seen: string[] = [];
    const watcher = watch(outside, (event, name) => seen.push(`${event} ${name}`));
    cleanups.push(() => watcher.close());
    await rename(sums, `${sums}-real`);
    await symlink(outside, sums);
    cleanups.push(async () => {
      await unlink(sums);
      await rename(`${sums}-real`, sums);
    });
    const data = randomBytes(100 * KiB);
    const client = await connectTo(server.port);
    await client.send(uploadRequest('mid.bin', data));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readdirSync(outside)).toEqual(['folders']);
    expect(seen).toEqual([]);
  });
});

describe('hostile 2026-12-06p: a full disk meets the synchronous staging open, manifest and sidecar', () => {
  const sizes = [100 * KiB, 1536 * KiB, 3 * MiB];
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-hostile-p-disk-'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  /** A tmpfs of 16 MiB and 64 inodes holding the server's root; undefined (the test skips) if none can be mounted. */
  const tinyDisk = (): TinyTmpfs | undefined => {
    const disk = mountTinyTmpfs(base, 16 * MiB, 64);
    cleanups.unshift(() => disk.cleanup());
    if (disk.reason === undefined) return disk;
    console.warn(`skipped: ${disk.reason}`);
    return undefined;
  };

  /** Nothing of an upload is left: no file under a real name but `stored`, no staging data, no kept upload, no sidecar temp. */
  const nothingLeft = async (root: string, stored: string[] = []): Promise<void> => {
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await userFiles(root)).toEqual(stored);
    expect(await keptFiles(root)).toEqual([]);
    expect(await sidecarTemps(root)).toEqual([]);
  };

  test('every inode used: the staging open (100 KiB), the manifest and data file (1.5, 3 MiB), ADDFILE too, are NO_SPACE at once; nothing is left; the same uploads work once inodes are back', async () => {
    const disk = tinyDisk();
    if (!disk) return;
    const { server, root } = await serve(join(disk.dir, 'root'));
    const hog = join(disk.dir, 'hog');
    await mkdir(hog);
    const taken = useUpInodes(hog);
    cleanups.push(() => giveBack(taken));
    const client = await connectTo(server.port);
    const uploads = (['UPLOAD', 'ADDFILE'] as const).flatMap((verb) => sizes.map((size) => ({ verb, name: `${verb}-${size}.bin`, data: randomBytes(size) })));
    for (const { verb, name, data } of uploads) {
      await client.send(uploadRequest(name, data, { verb }));
      expect([name, await client.readUploadOutcome(REPLY_MS)]).toEqual([name, expect.stringMatching(/^ERR NO_SPACE /)]);
    }
    await nothingLeft(root);
    giveBack(taken);
    for (const { verb, name, data } of uploads) {
      await client.send(uploadRequest(name, data, { verb }));
      expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
      await expectDownload(client, name, data);
    }
    await nothingLeft(root, uploads.map(({ name }) => name).sort());
  });

  /**
   * The commit needs no new inode and no new block (fsync, rename); the digest sidecar written after
   * it does, and now synchronously: it fails, which costs only a re-hash. The upload is stored.
   */
  test.each([
    ['inodes', 100 * KiB],
    ['inodes', 1536 * KiB],
    ['blocks', 100 * KiB],
    ['blocks', 1536 * KiB],
  ] as const)('the disk\'s %s used up once a %d-byte upload\'s data is on disk: the sidecar cannot be written, the upload is stored exactly, no sidecar temp is left', async (what, size) => {
    const disk = tinyDisk();
    if (!disk) return;
    const { server, root } = await serve(join(disk.dir, 'root'));
    const hog = join(disk.dir, 'hog');
    await mkdir(hog);
    const data = randomBytes(size);
    const client = await connectTo(server.port);
    await client.send(headerAndData('UPLOAD', 'x.bin', data));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => (await largestStaged(root)) === size, 10_000, 'the data to reach the staging file');
    const taken: string[] = [];
    cleanups.push(() => giveBack(taken));
    if (what === 'inodes') taken.push(...useUpInodes(hog));
    else taken.push(fillToSync(disk.dir, 0));
    await client.send(trailer(data));
    expect(await client.readLine(REPLY_MS)).toBe(storedReply(data));
    expect(await sidecarTemps(root)).toEqual([]);
    giveBack(taken);
    await expectDownload(client, 'x.bin', data);
    await nothingLeft(root, ['x.bin']);
  });

  test.each(sizes)('the disk full before the first write of a %d-byte upload: NO_SPACE, nothing left, and the same upload works once space is back', async (size) => {
    const disk = tinyDisk();
    if (!disk) return;
    const { server, root } = await serve(join(disk.dir, 'root'));
    let filler = '';
    const hooks = hookWrites({ under: root, beforeFirst: () => (filler = fillToSync(disk.dir, 0)) });
    cleanups.push(() => hooks.restore());
    const data = randomBytes(size);
    const client = await connectTo(server.port);
    await client.send(uploadRequest('x.bin', data));
    expect(await client.readUploadOutcome(REPLY_MS)).toMatch(/^ERR NO_SPACE /);
    hooks.restore();
    await nothingLeft(root);
    await unlink(filler);
    await client.send(uploadRequest('x.bin', data));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
    await nothingLeft(root, ['x.bin']);
  });

  /**
   * PROTOCOL.md: an interrupted upload of ≥ 1 MiB can be resumed "unless its manifest could not be
   * written". The manifest (writeFileSync, at the header) meets a full disk, which is freed right
   * after (another upload's staging data deleted): the upload goes on and is stored; cut, it is not
   * kept, and neither its data file nor a manifest cut short is left in .rxfer/partials.
   */
  test('the manifest write meets a full disk (freed right after): the upload is stored; one cut mid-data is not kept, and nothing of it is left', async () => {
    const disk = tinyDisk();
    if (!disk) return;
    const { server, root } = await serve(join(disk.dir, 'root'));
    const realWriteFileSync = fs.writeFileSync;
    let met = 0;
    (fs as { writeFileSync: unknown }).writeFileSync = (path: unknown, ...rest: unknown[]) => {
      const call = () => (realWriteFileSync as (...args: unknown[]) => void)(path, ...rest);
      // Written through the descriptor of a manifest opened fresh in the checked folder (or by path).
      const where = typeof path === 'number' ? fs.readlinkSync(`/proc/self/fd/${path}`) : String(path);
      if (!where.startsWith(`${partialsOf(root)}/`) || !where.endsWith('.json')) return call();
      met++;
      const filler = fillToSync(disk.dir, 0);
      try {
        return call();
      } finally {
        fs.rmSync(filler);
      }
    };
    cleanups.push(() => ((fs as { writeFileSync: unknown }).writeFileSync = realWriteFileSync));
    const whole = randomBytes(1536 * KiB);
    const client = await connectTo(server.port);
    await client.send(uploadRequest('whole.bin', whole));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(whole));
    expect(await keptFiles(root)).toEqual([]);

    const cut = randomBytes(1536 * KiB);
    const cutting = await connectTo(server.port);
    await cutting.send(headerAndData('UPLOAD', 'cut.bin', cut).subarray(0, 800 * KiB));
    expect(await cutting.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => (await largestStaged(root)) > 512 * KiB, 10_000, 'data to reach the kept file');
    cutting.destroy();
    expect(met).toBe(2);
    await eventually(async () => (await keptFiles(root)).length === 0, 5000, 'the upload without a manifest to be dropped');
    await client.send('RESUME\ncut.bin\n');
    expect(await client.readLine(REPLY_MS)).toMatch(/^NOT FOUND /);
    expect(await userFiles(root)).toEqual(['whole.bin']);
  });
});

describe('hostile 2026-12-06p: faults on command in the synchronous commit calls', () => {
  beforeEach(() => {
    failed.length = 0;
  });

  /** No staging data, no kept upload (data or manifest), no sidecar temp; RESUME of `name` finds nothing. */
  const nothingStaged = async (client: RawClient, root: string, name: string): Promise<void> => {
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await keptFiles(root)).toEqual([]);
    expect(await sidecarTemps(root)).toEqual([]);
    await client.send(`RESUME\n${name}\n`);
    expect(await client.readLine(REPLY_MS)).toMatch(/^NOT FOUND /);
  };

  test.each([
    ['UPLOAD', 100 * KiB],
    ['UPLOAD', 1536 * KiB],
    ['ADDFILE', 100 * KiB],
    ['ADDFILE', 1536 * KiB],
  ] as const)('%s of %d bytes whose folder fsync (through the opened folder) fails: NOT_DURABLE, the file in place exactly, nothing staged', async (verb, size) => {
    const { server, root } = await serve();
    const data = randomBytes(size);
    const client = await connectTo(server.port);
    await client.send(headerAndData(verb, 'd/x.bin', data));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    failNext('folder-sync', (path) => path === join(root, 'd'));
    await client.send(trailer(data));
    expect(await client.readLine(REPLY_MS)).toMatch(/^ERR NOT_DURABLE d\/x\.bin is stored, but its folder could not be synced \(EIO/);
    expect(failed.map(({ call }) => call)).toEqual(['folder-sync']);
    await expectDownload(client, 'd/x.bin', data);
    await nothingStaged(client, root, 'd/x.bin');
    // The same connection goes on: an ADDFILE of the name is EXISTS (the change was made).
    await client.send(uploadRequest('d/x.bin', data, { verb: 'ADDFILE' }));
    expect(await client.readUploadOutcome(REPLY_MS)).toMatch(/^ERR EXISTS /);
  });

  test.each([100 * KiB, 1536 * KiB])('ADDFILE of %d bytes whose staging close (closeSync) reports an error: STORAGE_FAILED, nothing stored or staged, the name free for the next ADDFILE', async (size) => {
    const { server, root } = await serve();
    const data = randomBytes(size);
    const client = await connectTo(server.port);
    failNext('close', (path) => (path.includes('/.rxfer/staging/') || path.startsWith(`${partialsOf(root)}/`)) && !path.endsWith('.json'));
    await client.send(uploadRequest('a.bin', data, { verb: 'ADDFILE' }));
    expect(await client.readUploadOutcome(REPLY_MS)).toMatch(/^ERR STORAGE_FAILED cannot store a\.bin: EIO/);
    expect(failed.map(({ call }) => call)).toEqual(['close']);
    expect(await userFiles(root)).toEqual([]);
    await nothingStaged(client, root, 'a.bin');
    await client.send(uploadRequest('a.bin', data, { verb: 'ADDFILE' }));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
  });

  /**
   * An ADDFILE of ≥ 1 MiB links its kept data file to the name, then unlinks the data file
   * (unlinkSync now). That unlink failing leaves a second link (documented): the upload is stored all
   * the same, RESUME finds nothing to resume, and the next upload of the name never writes through
   * that link into the committed file.
   */
  test('ADDFILE of 1.5 MiB whose unlink of the kept data after its link fails: stored exactly; RESUME finds nothing; the next upload of the name leaves the first file untouched', async () => {
    const { server, root } = await serve();
    const first = randomBytes(1536 * KiB);
    const client = await connectTo(server.port);
    await client.send(headerAndData('ADDFILE', 'a.bin', first));
    expect(await client.readLine(REPLY_MS)).toBe('OK file recv');
    failNext('unlink', (path) => path.startsWith(`${partialsOf(root)}/`) && !path.endsWith('.json'));
    await client.send(trailer(first));
    expect(await client.readLine(REPLY_MS)).toBe(storedReply(first));
    expect(failed.map(({ call }) => call)).toEqual(['unlink']);
    await client.send('RESUME\na.bin\n');
    expect(await client.readLine(REPLY_MS)).toMatch(/^NOT FOUND /);
    // A new upload of the name under another name first (the first file must keep its bytes)…
    await client.send('RENAME\na.bin\nkeep.bin\n');
    expect(await client.readLine(REPLY_MS)).toBe('OK renamed');
    const second = randomBytes(1536 * KiB);
    await client.send(uploadRequest('a.bin', second));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(second));
    await expectDownload(client, 'keep.bin', first);
    await expectDownload(client, 'a.bin', second);
    expect(await keptFiles(root)).toEqual([]);
  });
});

describe('hostile 2026-12-06p: races on one name', () => {
  test.each([100 * KiB, 1536 * KiB])('two connections UPLOAD %d bytes to one name at once: both stored in turn, the name holds exactly one of them, nothing staged', async (size) => {
    const { server, root } = await serve();
    const [a, b] = [randomBytes(size), randomBytes(size)];
    const [one, two] = [await connectTo(server.port), await connectTo(server.port)];
    await Promise.all([one.send(headerAndData('UPLOAD', 'same.bin', a)), two.send(headerAndData('UPLOAD', 'same.bin', b))]);
    expect([await one.readLine(REPLY_MS), await two.readLine(REPLY_MS)]).toEqual(['OK file recv', 'OK file recv']);
    await Promise.all([one.send(trailer(a)), two.send(trailer(b))]);
    expect([await one.readLine(REPLY_MS), await two.readLine(REPLY_MS)]).toEqual([storedReply(a), storedReply(b)]);
    const held = sha256(await readFile(join(root, 'same.bin')));
    expect([sha256(a), sha256(b)]).toContain(held);
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await keptFiles(root)).toEqual([]);
  });

  test.each([100 * KiB, 1536 * KiB])('two connections ADDFILE %d bytes to one name at once: exactly one is stored, the other is EXISTS, nothing staged', async (size) => {
    const { server, root } = await serve();
    const [a, b] = [randomBytes(size), randomBytes(size)];
    const [one, two] = [await connectTo(server.port), await connectTo(server.port)];
    await Promise.all([one.send(headerAndData('ADDFILE', 'new.bin', a)), two.send(headerAndData('ADDFILE', 'new.bin', b))]);
    expect([await one.readLine(REPLY_MS), await two.readLine(REPLY_MS)]).toEqual(['OK file recv', 'OK file recv']);
    await Promise.all([one.send(trailer(a)), two.send(trailer(b))]);
    const replies = [await one.readLine(REPLY_MS), await two.readLine(REPLY_MS)];
    const winner = replies[0] === storedReply(a) ? a : b;
    expect(replies).toEqual(winner === a ? [storedReply(a), expect.stringMatching(/^ERR EXISTS /)] : [expect.stringMatching(/^ERR EXISTS /), storedReply(b)]);
    expect(sha256(await readFile(join(root, 'new.bin')))).toBe(sha256(winner));
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await keptFiles(root)).toEqual([]);
  });

  test('a 1.5 MiB UPLOAD whose trailer races a DELETE of the name and a RENAME of its folder from another connection: each outcome true, nothing staged', async () => {
    const { server, root } = await serve();
    const data = randomBytes(1536 * KiB);
    const [uploader, other] = [await connectTo(server.port), await connectTo(server.port)];
    await uploader.send(headerAndData('UPLOAD', 'd/x.bin', data));
    expect(await uploader.readLine(REPLY_MS)).toBe('OK file recv');
    await Promise.all([uploader.send(trailer(data)), other.send('DELETE\nd/x.bin\nRENAME\nd\ne\n')]);
    const [stored, deleted, renamed] = [await uploader.readLine(REPLY_MS), await other.readLine(REPLY_MS), await other.readLine(REPLY_MS)];
    expect(stored).toBe(storedReply(data));
    expect(deleted).toMatch(/^(OK deleted|NOT FOUND )/);
    expect(renamed).toBe('OK renamed');
    const files = await userFiles(root);
    if (deleted === 'OK deleted') expect(files).toEqual([]);
    else {
      // Committed after the DELETE: into d before the RENAME moved it, or into d made again after it.
      expect(files).toHaveLength(1);
      expect(['d/x.bin', 'e/x.bin']).toContain(files[0]);
      expect(sha256(await readFile(join(root, files[0]!)))).toBe(sha256(data));
    }
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await keptFiles(root)).toEqual([]);
  });

  /**
   * A local user swapping the upload's folder for a link to outside the root in a loop (by renames, a
   * process of its own), while clients pipeline 100 KiB and 1.5 MiB UPLOADs and ADDFILEs into it: the
   * synchronous open of the checked folder, and the rename or link through it, never lead outside.
   */
  test('a folder swapped for a link to outside in a loop during 100 KiB and 1.5 MiB commits: nothing made outside, every OK exact, nothing staged', async () => {
    const { server, root } = await serve();
    const outside = join(realpathSync(server.scratch), 'outside');
    await mkdir(outside);
    await mkdir(join(root, 'd'));
    const swapper = startSwapper(join(root, 'd'), outside, 2500);
    cleanups.push(() => swapper.child.kill('SIGKILL'));
    let running = true;
    const stop = () => {
      running = false;
    };
    swapper.done.then(stop, stop);
    const stored = new Map<string, string>();
    await Promise.all(
      [0, 1].map(async (c) => {
        const client = await connectTo(server.port);
        for (let i = 0; running; i++) {
          const batch = [
            { name: `d/s-${c}-${i}.bin`, data: randomBytes(100 * KiB), verb: 'UPLOAD' as const },
            { name: `d/l-${c}-${i}.bin`, data: randomBytes(1536 * KiB), verb: 'ADDFILE' as const },
            { name: `d/a-${c}-${i}.bin`, data: randomBytes(100 * KiB), verb: 'ADDFILE' as const },
          ];
          await client.send(Buffer.concat(batch.map(({ name, data, verb }) => uploadRequest(name, data, { verb }))));
          for (const { name, data } of batch) {
            const reply = await client.readUploadOutcome(REPLY_MS);
            // A refusal (the folder was a link, or missing, at that moment) is fine; a bug (INTERNAL) is not.
            expect(reply).toMatch(/^(OK file data recv|ERR (?!INTERNAL)[A-Z_]+ \S)/);
            if (reply === storedReply(data) || reply.startsWith('ERR NOT_DURABLE')) stored.set(basename(name), sha256(data));
          }
        }
      }),
    );
    await swapper.done;
    expect(readdirSync(outside)).toEqual([]);
    // Each file told stored is somewhere below the root (its folder may have been moved aside by the swapper), exact.
    const below = new Map<string, string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        if (entry === '.rxfer') continue;
        const path = join(dir, entry);
        if (lstatSync(path).isDirectory()) walk(path);
        else below.set(entry, sha256(fs.readFileSync(path)));
      }
    };
    walk(root);
    expect(stored.size).toBeGreaterThan(0);
    for (const [name, digest] of stored) expect([name, below.get(name)]).toEqual([name, digest]);
    await eventually(async () => (await stagingFiles(root)).length === 0, 5000, 'staging data to be gone');
    expect(await keptFiles(root)).toEqual([]);
  }, 30_000);
});

describe('hostile 2026-12-06p: pipelined uploads on one connection, cut at each point', () => {
  /**
   * Four uploads pipelined in one write (100 KiB, 1.5 MiB, ADDFILE 100 KiB, 1.5 MiB), the connection
   * ended after the first N bytes, for N in each part of each request. Whatever was carried out: each
   * name holds exactly its bytes or nothing; a kept upload is a true prefix (RESUME's digest is the
   * digest of that many bytes of the file) with its manifest; nothing else is staged; the server
   * goes on serving.
   */
  test('cut in the header, the data and the trailer of each request: each name exact or absent, kept uploads true prefixes, nothing else staged', async () => {
    const { server, root } = await serve();
    const plan = [
      { name: 'a.bin', verb: 'UPLOAD' as const, size: 100 * KiB },
      { name: 'b.bin', verb: 'UPLOAD' as const, size: 1536 * KiB },
      { name: 'c.bin', verb: 'ADDFILE' as const, size: 100 * KiB },
      { name: 'd.bin', verb: 'UPLOAD' as const, size: 1536 * KiB },
    ];
    // Cut points: the middle of each header, after 1/3 of each data, just before each trailer's end.
    const cutsOf = (requests: Buffer[]): number[] => {
      const cuts: number[] = [];
      let at = 0;
      for (const [i, request] of requests.entries()) {
        const header = Buffer.byteLength(`${plan[i]!.verb} ${plan[i]!.size}\n${plan[i]!.name}\n`);
        cuts.push(at + Math.floor(header / 2), at + header + Math.floor(plan[i]!.size / 3), at + request.length - 1);
        at += request.length;
      }
      return cuts;
    };
    const probe = await connectTo(server.port);
    let round = 0;
    let keptSeen = 0;
    for (const cut of cutsOf(plan.map(({ name, verb, size }) => uploadRequest(name, Buffer.alloc(size), { verb })))) {
      const prefix = `r${round++}`;
      const files = plan.map(({ name, verb, size }) => ({ name: `${prefix}/${name}`, verb, data: randomBytes(size) }));
      const stream = Buffer.concat(files.map(({ name, verb, data }) => uploadRequest(name, data, { verb })));
      const client = await RawClient.connect(server.port);
      clients.push(client);
      await client.send(stream.subarray(0, cut));
      client.end();
      const replies = (await client.waitClosed(REPLY_MS)).toString();
      // Settled: nothing in the staging area, no kept upload being written (RESUME is not BUSY).
      await eventually(async () => (await readdir(join(root, '.rxfer', 'staging'))).length === 0, 10_000, `round ${prefix}: the staging area to empty`);
      for (const { name, data } of files) {
        await eventually(
          async () => {
            await probe.send(`RESUME\n${name}\n`);
            const reply = await probe.readLine(REPLY_MS);
            if (reply.startsWith('ERR BUSY')) return false;
            const kept = /^OK partial (\d+) ([0-9a-f]{64})$/.exec(reply);
            if (kept) expect([name, kept[2], keptSeen++]).toEqual([name, sha256(data.subarray(0, Number(kept[1]))), expect.any(Number)]);
            else expect([name, reply]).toEqual([name, expect.stringMatching(/^NOT FOUND /)]);
            return true;
          },
          10_000,
          `${name} released`,
        );
        const held = await readFile(join(root, name)).catch(() => undefined);
        if (held !== undefined) expect([name, sha256(held)]).toEqual([name, sha256(data)]);
        if (replies.includes(`\n${storedReply(data)}\n`) || replies.startsWith(storedReply(data))) expect([name, held !== undefined]).toEqual([name, true]);
      }
      // Every kept data file has its manifest, and the other way round.
      const kept = await keptFiles(root);
      expect(kept.filter((entry) => entry.endsWith('.json')).map((entry) => entry.slice(0, -5))).toEqual(kept.filter((entry) => !entry.endsWith('.json')));
    }
    // The cuts did leave uploads to resume (the checks above were about something).
    expect(keptSeen).toBeGreaterThan(0);
    // The server goes on: a last upload is stored.
    const last = randomBytes(1536 * KiB);
    await probe.send(uploadRequest('last.bin', last));
    expect(await probe.readUploadOutcome(REPLY_MS)).toBe(storedReply(last));
  }, 40_000);
});

describe('hostile 2026-12-06p: the server SIGKILLed during 1.5 MiB uploads', () => {
  /**
   * A real `rxfer serve` process, three clients uploading 1.5 MiB files over three names in a loop
   * (UPLOAD and ADDFILE), killed with SIGKILL at a random moment, twice, and started again on the same
   * root. After each start: each name holds its first version or exactly one of the files sent to it
   * (never a mix, never partial); the staging area is empty; every kept upload has its manifest and is
   * a true prefix of a file sent to its name, and resuming it stores that file exactly.
   */
  test('after each restart: every name old or exactly a sent file, nothing staged, kept uploads true prefixes that resume', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'rxfer-hostile-p-kill-'));
    cleanups.push(() => rm(tmp, { recursive: true, force: true }));
    const root = join(tmp, 'root');
    await mkdir(root);
    const config = join(tmp, 'rxfer.json');
    await writeFile(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 }, storage: { root }, metrics: { host: '127.0.0.1', port: 0 } }));
    let serve = ServeProcess.start(['--config', config]);
    cleanups.push(() => serve.kill());
    let { port } = await serve.ports();
    const names = ['k0.bin', 'k1.bin', 'k2.bin'];
    /** Every content sent to each name, by digest. */
    const sent = new Map<string, Map<string, Buffer>>(names.map((name) => [name, new Map()]));
    const setup = await connectTo(port);
    for (const name of names) {
      const data = randomBytes(1536 * KiB);
      sent.get(name)!.set(sha256(data), data);
      await setup.send(uploadRequest(name, data));
      expect(await setup.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
    }
    let resumed = 0;
    for (let kill = 0; kill < 2; kill++) {
      let stopped = false;
      const workers = [0, 1, 2].map(async (c) => {
        const client = await RawClient.connect(port);
        clients.push(client);
        try {
          for (let i = 0; !stopped; i++) {
            const name = names[(c + i) % names.length]!;
            const data = randomBytes(1536 * KiB);
            sent.get(name)!.set(sha256(data), data);
            await client.send(uploadRequest(name, data, { verb: i % 4 === 3 ? 'ADDFILE' : 'UPLOAD' }));
            await client.readUploadOutcome(REPLY_MS);
          }
        } catch {
          // The server was killed under this client.
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 900));
      serve.kill();
      await serve.exited;
      stopped = true;
      await Promise.all(workers);
      serve = ServeProcess.start(['--config', config]);
      ({ port } = await serve.ports());
      expect(readdirSync(join(root, '.rxfer', 'staging'))).toEqual([]);
      const kept = readdirSync(partialsOf(root));
      for (const data of kept.filter((entry) => !entry.endsWith('.json'))) expect(kept).toContain(`${data}.json`);
      const client = await connectTo(port);
      for (const name of names) {
        const held = sha256(await readFile(join(root, name)));
        expect([name, sent.get(name)!.has(held)]).toEqual([name, true]);
        await client.send(`RESUME\n${name}\n`);
        const reply = await client.readLine(REPLY_MS);
        const partial = /^OK partial (\d+) ([0-9a-f]{64})$/.exec(reply);
        if (!partial) {
          expect([name, reply]).toEqual([name, expect.stringMatching(/^NOT FOUND /)]);
          continue;
        }
        const offset = Number(partial[1]);
        const source = [...sent.get(name)!.values()].find((data) => data.length >= offset && sha256(data.subarray(0, offset)) === partial[2]);
        expect([name, offset, source !== undefined]).toEqual([name, offset, true]);
        await client.send(Buffer.concat([Buffer.from(`UPLOAD ${source!.length} FROM ${offset} ${partial[2]}\n${name}\n`), source!.subarray(offset), trailer(source!)]));
        expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(source!));
        expect(sha256(await readFile(join(root, name)))).toBe(sha256(source!));
        resumed++;
      }
    }
    console.log(`kill rounds: ${resumed} kept uploads resumed`);
  }, 40_000);
});

describe('hostile 2026-12-06p: a kept upload whose close fails as the connection is lost', () => {
  test('a 1.5 MiB upload cut mid-data, its kept file\'s close (closeSync) reporting an error: either kept and resumable, or gone and not counted against the quota', async () => {
    const alice = await makeUser('alice', 'write', 'alice', 4 * MiB);
    const server = await startSecureServer({ auth: { users: [alice.entry] } });
    cleanups.push(() => server.close());
    const root = realpathSync(server.root);
    const login = async (): Promise<RawClient> => {
      const client = await connectTo(server.port);
      await client.send(`AUTH ${alice.token}\n`);
      expect(await client.readLine(REPLY_MS)).toMatch(/^OK auth alice /);
      return client;
    };
    const cut = await login();
    const data = randomBytes(1536 * KiB);
    await cut.send(headerAndData('UPLOAD', 'big.bin', data).subarray(0, 1100 * KiB));
    expect(await cut.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => (await largestStaged(root)) >= MiB, 10_000, 'a MiB to reach the kept file');
    failed.length = 0;
    failNext('close', (path) => path.startsWith(`${partialsOf(root)}/`) && !path.endsWith('.json'));
    cut.destroy();
    await eventually(() => failed.length === 1, 10_000, 'the kept file to be closed');
    const client = await login();
    let reply = '';
    await eventually(
      async () => {
        await client.send('RESUME\nbig.bin\n');
        reply = await client.readLine(REPLY_MS);
        return !reply.startsWith('ERR BUSY');
      },
      10_000,
      'the kept upload to be released',
    );
    const kept = /^OK partial (\d+) ([0-9a-f]{64})$/.exec(reply);
    if (kept) {
      expect(kept[2]).toBe(sha256(data.subarray(0, Number(kept[1]))));
      await client.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length} FROM ${kept[1]} ${kept[2]}\nbig.bin\n`), data.subarray(Number(kept[1])), trailer(data)]));
      expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(data));
      return;
    }
    // Nothing kept: nothing of it is counted. 3.5 MiB fit the 4 MiB quota of a user who stores nothing.
    expect(reply).toMatch(/^NOT FOUND /);
    expect(await keptFiles(root)).toEqual([]);
    const other = randomBytes(3584 * KiB);
    await client.send(uploadRequest('other.bin', other));
    expect(await client.readUploadOutcome(REPLY_MS)).toBe(storedReply(other));
  });
});
