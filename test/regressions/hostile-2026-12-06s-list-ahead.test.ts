import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { AddressInfo, Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient, uploadTree } from '../../src/client/index';
import { BIN, PROJECT, ensureBuilt, rxfer, spawnRxfer } from '../helpers/cli';
import { type LogLine, type TestServer, captureLogs, startTestServer, userFiles } from '../helpers/server';
import { type SecureServer, makeUser, startSecureServer } from '../security/support/server';

/**
 * Hostile pass of 2026-12-06 (s), against 7737871 + 8912f05: `put -r` asks for the server's listing
 * (LIST PAGED) before its first walk (the one that checks every name), and ListingCursor asks for each
 * next page (LIST AFTER) once half of the page in hand is found. Real server, real sockets, real files,
 * the built CLI and the client library.
 *
 * Tried: a first walk that fails with the LIST out (a bad name deep in the tree, NFC/NFD twins, a folder
 * the CLI cannot read, run as `nobody`), by the CLI and the library, then the same connection used again;
 * the CLI SIGKILLed as it starts, with the first page on its way during the first walk of 4,000 files in four pages (20,000 when the attack was made),
 * at its first BATCH, and at its first LIST AFTER of a re-run; remote folders of many pages (3 a page)
 * against identical, changed (same size, other size), interleaved and small local trees; another client
 * changing, deleting and adding remote files while a LIST AFTER is held; a remote folder that is missing,
 * that is a file, or that the user may only read.
 */

const PAGE = 3;

const writeTree = async (dir: string, files: Record<string, string | Buffer>): Promise<void> => {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
};

const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Every file under real names below `root`, with the digest of its content. */
const digests = async (root: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const name of await userFiles(root)) out[name] = sha(await readFile(join(root, name)));
  return out;
};

/** `files` as the server should hold them under `folder`. */
const expected = (folder: string, files: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(files).map(([name, content]) => [`${folder}/${name}`, sha(content)]));

/** Server log lines that are warnings or errors. */
const troubles = (lines: readonly LogLine[]): LogLine[] => lines.filter((line) => line.level >= 40);

const connect = (port: number, token?: string): Promise<RxferClient> => RxferClient.connect({ host: '127.0.0.1', port, ...(token !== undefined && { token }) });

/** Uploads `files` under `folder` through the library (so the server knows their digests). */
const seed = async (port: number, local: string, folder: string, files: Record<string, string>): Promise<void> => {
  await writeTree(local, files);
  const client = await connect(port);
  try {
    await uploadTree(client, local, folder);
  } finally {
    await client.quit();
  }
  await rm(local, { recursive: true, force: true });
};

/** put -r through the library: the result (or error) and exactly the remote names sent. */
const putTree = async (client: RxferClient, local: string, folder: string) => {
  const sent: string[] = [];
  const result = await uploadTree(client, local, folder, { onFile: (name) => sent.push(name) }).catch((err: unknown) => err);
  return { result, sent: sent.sort() };
};

/**
 * A TCP proxy on 127.0.0.1 that forwards both ways and calls `onUp(pattern)` the first time the
 * client's bytes hold one of `patterns` (a rolling tail: a pattern split across chunks is still seen).
 * If `onUp` returns a promise, nothing more goes up until it settles (the chunk with the pattern included).
 */
const watchingProxy = async (target: number, patterns: readonly string[], onUp: (pattern: string) => void | Promise<void>) => {
  const sockets = new Set<Socket>();
  const seen = new Set<string>();
  const server = createServer((client) => {
    const upstream = createConnection(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    let tail = '';
    let held: Promise<void> = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      tail = text.slice(-64);
      for (const pattern of patterns) {
        if (!seen.has(pattern) && text.includes(pattern)) {
          seen.add(pattern);
          const hold = onUp(pattern);
          if (hold) held = held.then(() => hold);
        }
      }
      held = held.then(() => void upstream.write(chunk));
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => void held.then(() => upstream.destroy()));
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
};

beforeAll(() => ensureBuilt(), 120_000);

describe('a first walk that fails while the listing is already asked for', () => {
  let server: TestServer;
  let logs: ReturnType<typeof captureLogs>;
  const remote: Record<string, string> = {};
  for (let i = 0; i < 10; i++) remote[`f${i}`] = `remote ${i}`;

  beforeEach(async () => {
    logs = captureLogs();
    server = await startTestServer({ config: { limits: { maxListEntries: PAGE } }, logger: logs.logger });
    await seed(server.port, join(server.scratch, 'seed'), 'up', remote);
  });
  afterEach(() => server.close());

  const localTree = (): Record<string, string> => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 10; i++) files[`f${i}`] = `local ${i}`;
    return files;
  };

  test('CLI: a name the server refuses, deep in the last folder: exit 1, one NAME_INVALID line, nothing stored, no server warning', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, { ...localTree(), 'z/deep/bad.': 'bad' });
    const before = await digests(server.root);
    const put = await rxfer(['put', '-r', local, 'up', '-p', String(server.port)]);
    expect(put).toEqual({
      code: 1,
      stdout: '',
      stderr: `rxfer: ERR NAME_INVALID ${join(local, 'z/deep/bad.')} cannot be sent: "up/z/deep/bad.": a segment ends in a dot or a space\n`,
    });
    expect(await digests(server.root)).toEqual(before);
    expect(troubles(logs.lines)).toEqual([]);
  });

  test('CLI: two names one only in Unicode normalization, deep: exit 1, NAME_CONFLICT naming both, nothing stored', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, { ...localTree(), 'y/deep/\u00e9.txt': 'nfc', 'y/deep/e\u0301.txt': 'nfd' });
    const before = await digests(server.root);
    const put = await rxfer(['put', '-r', local, 'up', '-p', String(server.port)]);
    expect(put.code).toBe(1);
    expect(put.stdout).toBe('');
    const [nfc, nfd] = [join(local, 'y/deep/\u00e9.txt'), join(local, 'y/deep/e\u0301.txt')];
    expect([`rxfer: ERR NAME_CONFLICT ${nfc} and ${nfd} are`, `rxfer: ERR NAME_CONFLICT ${nfd} and ${nfc} are`]).toContain(put.stderr.slice(0, put.stderr.indexOf(' are') + 4));
    expect(put.stderr).toMatch(/^rxfer: ERR NAME_CONFLICT .*y\/deep\/.* and .*y\/deep\/.* are one name on the server \(the same letters, written two ways in Unicode\): rename one of them\n$/);
    expect(await digests(server.root)).toEqual(before);
    expect(troubles(logs.lines)).toEqual([]);
  });

  // Failed before its fix (older than the change: walkFailure in src/client/upload-tree.ts named
  // `localDir`, not the folder that failed). Nothing was stored and the code was right, but the message
  // named the top folder, which is readable, instead of tree/z/locked:
  //   rxfer: ERR LOCAL_IO cannot read /tmp/rxfer-hostile-s-nobody-ALqFdK/tree: permission denied (EACCES)
  test('CLI run as nobody: a folder it cannot read, deep in the tree: exit 1, LOCAL_IO naming it, nothing stored', async () => {
    const base = await mkdtemp(join(tmpdir(), 'rxfer-hostile-s-nobody-'));
    try {
      await chmod(base, 0o755);
      const local = join(base, 'tree');
      await writeTree(local, { ...localTree(), 'z/locked/inside': 'hidden' });
      await mkdir(join(base, 'cache'));
      await chmod(join(base, 'cache'), 0o777);
      await chmod(join(local, 'z/locked'), 0o000);
      const before = await digests(server.root);
      const put = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, RXFER_CACHE_DIR: join(base, 'cache'), HOME: base };
        delete env['RXFER_HOST'];
        delete env['RXFER_PORT'];
        execFile(process.execPath, [BIN, 'put', '-r', local, 'up', '-p', String(server.port)], { cwd: PROJECT, env, uid: 65534, gid: 65534 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      expect(put.code).toBe(1);
      expect(put.stdout).toBe('');
      expect(put.stderr).toBe(`rxfer: ERR LOCAL_IO cannot read ${join(local, 'z', 'locked')}: permission denied (EACCES)\n`);
      expect(await digests(server.root)).toEqual(before);
      expect(troubles(logs.lines)).toEqual([]);
    } finally {
      await chmod(join(base, 'tree/z/locked'), 0o755).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    }
  });

  test('library: after the failed walk the same connection answers an upload, a LIST and a whole put -r in step', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, { ...localTree(), 'z/deep/bad.': 'bad' });
    const before = await digests(server.root);
    const client = await connect(server.port);
    try {
      const failed = await putTree(client, local, 'up');
      expect(failed.result).toMatchObject({ code: 'NAME_INVALID', message: `${join(local, 'z/deep/bad.')} cannot be sent: "up/z/deep/bad.": a segment ends in a dot or a space` });
      expect(failed.sent).toEqual([]);
      expect(await digests(server.root)).toEqual(before);
      // Once more on the same connection: a second LIST is out before the walk fails again.
      expect(await putTree(client, local, 'up')).toMatchObject({ result: { code: 'NAME_INVALID' }, sent: [] });

      await client.uploadBuffer('up/after', Buffer.from('after'));
      expect((await client.list('up')).map((entry) => entry.name)).toEqual(['up/after', ...Object.keys(remote).map((name) => `up/${name}`)]);
      await unlink(join(local, 'z/deep/bad.'));
      const good = await putTree(client, local, 'up');
      expect(good.result).toEqual({ files: 10, bytes: 70, skipped: 0 });
      expect(good.sent).toEqual(Object.keys(localTree()).map((name) => `up/${name}`));
      expect(await digests(server.root)).toEqual({ ...expected('up', localTree()), 'up/after': sha('after') });
      expect((await client.stat('up/f3')).size).toBe(7);
    } finally {
      await client.quit();
    }
    expect(troubles(logs.lines)).toEqual([]);
  });

  test('CLI: the connection cut while the first page is on its way (during the first walk): exit 1, CONNECTION_LOST, nothing stored', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, localTree());
    const before = await digests(server.root);
    const proxy = await watchingProxy(server.port, ['LIST PAGED'], () => {
      void proxy.close();
      return new Promise<void>(() => undefined);
    });
    const put = await rxfer(['put', '-r', local, 'up', '-p', String(proxy.port)]);
    await proxy.close().catch(() => undefined);
    expect(put.code).toBe(1);
    expect(put.stdout).toBe('');
    expect(put.stderr).toMatch(/^rxfer: ERR CONNECTION_LOST [^\n]+\n$/);
    expect(await digests(server.root)).toEqual(before);
  });

  test('library: a remote folder that is a file, or whose name is refused: a coded error, nothing stored, the connection in step', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, { a: 'a', 'b/c': 'c' });
    const before = await digests(server.root);
    const client = await connect(server.port);
    try {
      const onFile = await putTree(client, local, 'up/f1');
      expect(onFile.result).toMatchObject({ code: 'NAME_CONFLICT' });
      expect(onFile.sent).toEqual([]);
      const refused = await putTree(client, local, 'bad.');
      expect(refused.result).toMatchObject({ code: 'NAME_INVALID', message: `${join(local, 'a')} cannot be sent: "bad./a": a segment ends in a dot or a space` });
      // An empty local tree into a refused folder name: nothing to send, the LIST's refusal reported nowhere.
      await mkdir(join(server.scratch, 'empty'));
      expect(await putTree(client, join(server.scratch, 'empty'), 'bad.')).toEqual({ result: { files: 0, bytes: 0, skipped: 0 }, sent: [] });
      expect(await digests(server.root)).toEqual(before);
      // A folder not there: everything is sent.
      const fresh = await putTree(client, local, 'new/place');
      expect(fresh).toEqual({ result: { files: 2, bytes: 2, skipped: 0 }, sent: ['new/place/a', 'new/place/b/c'] });
      expect((await client.list('new')).map((entry) => entry.name)).toEqual(['new/place/a', 'new/place/b/c']);
    } finally {
      await client.quit();
    }
    expect(troubles(logs.lines)).toEqual([]);
  });
});

describe('a remote folder of many pages (3 names a page)', () => {
  let server: TestServer;
  let client: RxferClient;
  const remote: Record<string, string> = {};
  // 40 files over 14 pages, in folders, so page boundaries fall inside and between folders.
  for (let i = 0; i < 40; i++) remote[`${String.fromCharCode(97 + Math.floor(i / 7))}/f${String(i).padStart(2, '0')}`] = `content of ${i}`;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: PAGE } } });
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    await rm(join(server.root, 'up'), { recursive: true, force: true });
    await seed(server.port, join(server.scratch, 'seed'), 'up', remote);
    client = await connect(server.port);
  });
  afterEach(async () => {
    await client.quit().catch(() => client.close());
    await rm(join(server.scratch, 'tree'), { recursive: true, force: true });
  });

  const names = Object.keys(remote).sort();

  test('identical: nothing sent, every file skipped', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, remote);
    expect(await putTree(client, local, 'up')).toEqual({ result: { files: 0, bytes: 0, skipped: 40 }, sent: [] });
    expect(await digests(server.root)).toEqual(expected('up', remote));
  });

  test('files changed at every page boundary (same size) and in between (other size): exactly those sent', async () => {
    const local = join(server.scratch, 'tree');
    const changed: Record<string, string> = { ...remote };
    const picked = names.filter((_, i) => i % PAGE === 0 || i % PAGE === PAGE - 1 || i === 20);
    for (const name of picked) changed[name] = name === names[20] ? `${remote[name]!} and longer` : remote[name]!.replace('content', 'CONTENT');
    await writeTree(local, changed);
    const put = await putTree(client, local, 'up');
    expect(put.sent).toEqual(picked.map((name) => `up/${name}`).sort());
    expect(put.result).toMatchObject({ files: picked.length, skipped: 40 - picked.length });
    expect(await digests(server.root)).toEqual(expected('up', changed));
  });

  test('new local files before, between and after the remote pages (and in new folders): only they are sent', async () => {
    const local = join(server.scratch, 'tree');
    const added = { '0first': 'new 0', 'a/f00a': 'new a', 'b/f09x': 'new b', 'c/zz/deep': 'new deep', 'bb/x': 'between folders', 'zzz/last': 'new last' };
    await writeTree(local, { ...remote, ...added });
    const put = await putTree(client, local, 'up');
    expect(put.sent).toEqual(Object.keys(added).map((name) => `up/${name}`).sort());
    expect(put.result).toMatchObject({ files: 6, skipped: 40 });
    expect(await digests(server.root)).toEqual(expected('up', { ...remote, ...added }));
  });

  test('a small local tree into the big folder: the changed one sent wherever it is, the identical skipped', async () => {
    const local = join(server.scratch, 'tree');
    const small = { [names[0]!]: remote[names[0]!]!, [names[20]!]: 'changed!!!!!!', [names[39]!]: remote[names[39]!]!, 'f/zzz': 'new' };
    await writeTree(local, small);
    const put = await putTree(client, local, 'up');
    expect(put.sent).toEqual([`up/${names[20]!}`, 'up/f/zzz']);
    expect(put.result).toMatchObject({ files: 2, skipped: 2 });
    expect(await digests(server.root)).toEqual(expected('up', { ...remote, ...small }));
  });

  test('CLI re-run against many pages: a changed file sent, identical ones skipped, output says so', async () => {
    const local = join(server.scratch, 'tree');
    const changed = { ...remote, [names[38]!]: remote[names[38]!]!.replace('content', 'CONTENT') };
    await writeTree(local, changed);
    const put = await rxfer(['put', '-r', local, 'up', '-p', String(server.port), '--json']);
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ files: 1, skipped: 39 });
    expect(await digests(server.root)).toEqual(expected('up', changed));
  });
});

describe('another client changes the remote folder while a page is asked for ahead', () => {
  let server: TestServer;
  const remote: Record<string, string> = {};
  for (let i = 0; i < 30; i++) remote[`f${String(i).padStart(2, '0')}`] = `content of ${i}`;
  beforeEach(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: 10 } } });
    await seed(server.port, join(server.scratch, 'seed'), 'up', remote);
  });
  afterEach(() => server.close());

  test('files of later pages changed, deleted and added before their page is listed: the changed and deleted sent again, the added kept', async () => {
    const local = join(server.scratch, 'tree');
    await writeTree(local, remote);
    let afters = 0;
    const proxy = await watchingProxy(server.port, ['LIST AFTER'], async () => {
      afters++;
      // The first LIST AFTER (page 2, asked ahead) is held while another client, on its own
      // connection, changes files of pages 2 and 3.
      const other = await connect(server.port);
      try {
        await other.uploadBuffer('up/f12', Buffer.from('other 12 changed'));
        await other.uploadBuffer('up/f25', Buffer.from('other 25 XX'));
        await other.remove('up/f18');
        await other.remove('up/f29');
        await other.uploadBuffer('up/f15b', Buffer.from('added by the other'));
      } finally {
        await other.quit();
      }
    });
    const client = await connect(proxy.port);
    try {
      const put = await putTree(client, local, 'up');
      expect(afters).toBe(1);
      expect(put.sent).toEqual(['up/f12', 'up/f18', 'up/f25', 'up/f29']);
      expect(put.result).toEqual({ files: 4, bytes: expect.any(Number), skipped: 26 });
      expect(await digests(server.root)).toEqual({ ...expected('up', remote), 'up/f15b': sha('added by the other') });
      // The connection is still in step after the held page.
      expect((await client.list('up')).length).toBe(31);
    } finally {
      await client.quit();
      await proxy.close();
    }
  });
});

describe('the CLI killed (SIGKILL) at each step of a put -r of 4,000 files in pages of 1,000', () => {
  // Four pages, as 20,000 files in pages of 5,000 were when the attack was made: what the kills meet
  // is the number of pages asked for ahead, not the number of files (20,000 cost ≈ 45 s of CPU here).
  const FILES = 4_000;
  const PAGE = 1_000;
  let server: TestServer;
  let logs: ReturnType<typeof captureLogs>;
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[`d${String(i % 40).padStart(2, '0')}/f${String(i).padStart(5, '0')}`] = `content ${i}`;
  let local: string;

  beforeAll(async () => {
    logs = captureLogs();
    // Four pages: a re-run asks for three of them ahead of their turn.
    server = await startTestServer({ config: { limits: { maxListEntries: PAGE } }, logger: logs.logger });
    local = join(server.scratch, 'big');
    await writeTree(local, files);
  }, 60_000);
  afterAll(() => server.close());

  /** Runs put -r through a proxy and SIGKILLs the CLI once it has sent `pattern` ('' : as soon as it is spawned). */
  const killAt = async (pattern: string, folder: string) => {
    let child: ReturnType<typeof spawnRxfer> | undefined;
    let seen = false;
    const proxy = await watchingProxy(server.port, pattern === '' ? [] : [pattern], () => {
      seen = true;
      child!.kill('SIGKILL');
    });
    try {
      child = spawnRxfer(['put', '-r', local, folder, '-p', String(proxy.port)]);
      if (pattern === '') child.once('spawn', () => child!.kill('SIGKILL'));
      const exit = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child!.once('exit', (code, signal) => resolve([code, signal])));
      expect(exit).toEqual([null, 'SIGKILL']);
      if (pattern !== '') expect(seen).toBe(true);
    } finally {
      await proxy.close();
    }
  };

  /** Every file under a real name holds all of one version: the local one, or `old` (what was there before). */
  const wholeFiles = async (folder: string, old: (name: string) => string | undefined) => {
    const bad: string[] = [];
    for (const name of await userFiles(server.root)) {
      if (!name.startsWith(`${folder}/`)) continue;
      const key = name.slice(folder.length + 1);
      const got = await readFile(join(server.root, name), 'utf8');
      if (got !== files[key] && got !== old(key)) bad.push(`${name}: ${JSON.stringify(got)}`);
    }
    return bad;
  };

  /** Another client is served: an upload and a LIST on a fresh connection. */
  const stillServes = async (name: string) => {
    const other = await connect(server.port);
    try {
      await other.uploadBuffer(`others/${name}`, Buffer.from(name));
      expect((await other.list('others')).map((entry) => entry.name)).toContain(`others/${name}`);
    } finally {
      await other.quit();
    }
  };

  test('killed as it starts, with the first page (1,000 names) on its way during the first walk, at its first BATCH: whole files only, the server serves on', async () => {
    // A remote folder of FILES files (written in place: the server lists them without digests), so
    // that the first page the CLI asks for before its walk is a full one (PAGE names), on its way as it dies.
    const old = (key: string) => `old ${key}`;
    await writeTree(join(server.root, 'full'), Object.fromEntries(Object.keys(files).map((key) => [key, old(key)])));

    await killAt('', 'full');
    await stillServes('after-start');
    await killAt('LIST PAGED', 'full');
    await stillServes('after-first-walk');
    await killAt('BATCH', 'fresh');
    await stillServes('after-batch');
    expect(await wholeFiles('full', old)).toEqual([]);
    expect(await wholeFiles('fresh', () => undefined)).toEqual([]);
    expect(troubles(logs.lines)).toEqual([]);
  }, 120_000);

  test('a re-run killed at its first LIST AFTER (a page asked ahead): whole files only, then a full re-run sends only what is missing', async () => {
    const put = await rxfer(['put', '-r', local, 'fresh', '-p', String(server.port), '--json']);
    expect(put.code).toBe(0);
    // One file in 1,000 changed (same size) after the complete run, so the killed re-run has some to send.
    const changed: string[] = [];
    for (const key of Object.keys(files).filter((_, i) => i % 1000 === 7)) {
      files[key] = files[key]!.replace('content', 'CONTENT');
      await writeFile(join(local, key), files[key]!);
      changed.push(key);
    }
    await killAt('LIST AFTER', 'fresh');
    expect(await wholeFiles('fresh', (key) => (changed.includes(key) ? files[key]!.replace('CONTENT', 'content') : undefined))).toEqual([]);
    await stillServes('after-list-after');
    const rerun = await rxfer(['put', '-r', local, 'fresh', '-p', String(server.port), '--json']);
    expect(rerun.code).toBe(0);
    const summary = JSON.parse(rerun.stdout) as { files: number; skipped: number };
    expect(summary.files + summary.skipped).toBe(FILES);
    expect(summary.files).toBeLessThanOrEqual(changed.length);
    const onServer = await digests(join(server.root, 'fresh'));
    expect(Object.keys(onServer).length).toBe(FILES);
    const wrong = Object.entries(files).filter(([key, content]) => onServer[key] !== sha(content));
    expect(wrong).toEqual([]);
    expect(troubles(logs.lines)).toEqual([]);
  }, 120_000);
});

describe('a user who may only read', () => {
  let server: SecureServer;
  let token: string;
  beforeAll(async () => {
    const reader = await makeUser('reader', 'read', 'shared');
    const writer = await makeUser('writer', 'write', 'shared');
    token = reader.token;
    server = await startSecureServer({ auth: { users: [reader.entry, writer.entry] } });
    await mkdir(join(server.root, 'shared'), { recursive: true });
    const client = await connect(server.port, writer.token);
    try {
      for (let i = 0; i < 5; i++) await client.uploadBuffer(`up/f${i}`, Buffer.from(`remote ${i}`));
    } finally {
      await client.quit();
    }
  });
  afterAll(() => server.close());

  test('CLI put -r: the LIST is allowed, every upload refused: exit 1 with FORBIDDEN, nothing stored', async () => {
    const local = join(server.base, 'tree');
    await writeTree(local, { f0: 'remote 0', f1: 'changed', g: 'new' });
    const before = await digests(server.root);
    const put = await rxfer(['put', '-r', local, 'up', '-p', String(server.port)], { env: { RXFER_TOKEN: token } });
    expect(put.code).toBe(1);
    expect(put.stdout).toBe('');
    // f0 is identical (skipped by the listing read before the walk); f1 and g are refused.
    expect(put.stderr).toBe(`rxfer: ERR FORBIDDEN 2 of 2 files were not stored: ${local}/f1: reader (read) may not UPLOAD; ${local}/g: reader (read) may not UPLOAD\n`);
    expect(await digests(server.root)).toEqual(before);
  });
});
