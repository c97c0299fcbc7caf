import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, symlink, writeFile, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type ListedFile, RawClient, batchRequest, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { type TestServer, startTestServer, type ServerOverrides } from '../helpers/server';
import { untilSettled } from '../helpers/settled';
import { makeUser, startSecureServer } from '../security/support/server';

/**
 * Hostile pass of 2026-12-06 (w, session 26), against a4dde5d and 787e98f: digest logs grown by
 * records the main thread makes (small files hashed on demand for a DOWNLOAD or STAT) now ask the
 * commit worker to compact them; logs are opened O_NONBLOCK and written only if regular files;
 * NameLocks indexed by path and folders above; pathOf by concatenation; no preallocated small
 * staged buffer; the client's BATCH as a corked writev. Attacked from outside, as a hostile client
 * and as a co-tenant process on the server machine, over real sockets and real files.
 *
 * Found:
 *   1. A FIFO put in place of a log after the main thread asked for its compaction (the STAT's
 *      append took the log past 64 KiB): the worker's compaction reads the log by path with a
 *      blocking open (forEachChunkOfLines: O_RDONLY | O_NOFOLLOW, no O_NONBLOCK), and is held
 *      there for good: every small upload afterwards, into any folder, is
 *      `ERR STORAGE_FAILED storage did not store e/x.txt within 5000 ms; …`, until somebody opens the
 *      FIFO for writing. The window is the worker's queue (here its start: no upload before).
 *
 *   2. The same window, with the log replaced by a 128 MiB sparse file of NUL bytes (no newline; no
 *      disk space): compactGrown trusts the size the asker saw (≤ 16 MiB) and never looks at what
 *      it opens; forEachChunkOfLines carries the unfinished line from chunk to chunk, copying it
 *      whole each time (quadratic: 64 GiB of copies for 128 MiB). The worker is busy for over a
 *      minute (measured: 32 MiB held small commits 2 s; 128 MiB > 60 s), and every small upload
 *      meanwhile is `ERR STORAGE_FAILED storage did not store e/x.txt within 10000 ms; …`.
 *
 * Fixed after this pass (both tests failed on 787e98f): the worker opens a log it is to compact
 * non-blocking, reads it only if the descriptor shows a regular file of at most 16 MiB
 * (openLogToCompact, small-commit.worker.js), and drops a line longer than any record as it reads
 * instead of carrying it from chunk to chunk.
 *
 * Held: see each describe.
 */

const KiB = 1024;
/** Failure guard for every reply (not a timing assertion). */
const REPLY_MS = 20_000;

const clients: RawClient[] = [];
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  destroyAll(clients);
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const serve = async (config?: ServerOverrides): Promise<TestServer & { real: string }> => {
  const server = await startTestServer({ config });
  cleanups.push(() => server.close());
  return { ...server, real: realpathSync(server.root) };
};

const connect = async (port: number): Promise<RawClient> => {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
};

const ask = async (client: RawClient, request: string | Buffer): Promise<string> => {
  await client.send(request);
  return client.readLine(REPLY_MS);
};

interface Downloaded {
  readonly name: string;
  readonly line: string;
  readonly body?: Buffer;
}

/** DOWNLOADs of `names`, pipelined on `client`; each answer with its bytes. */
const downloads = async (client: RawClient, names: readonly string[]): Promise<Downloaded[]> => {
  await client.send(Buffer.concat(names.map((name) => downloadRequest(name))));
  const out: Downloaded[] = [];
  for (const name of names) {
    const line = await client.readLine(REPLY_MS);
    const size = /^OK (\d+) /.exec(line);
    out.push(size ? { name, line, body: await client.readBytes(Number(size[1]), REPLY_MS) } : { name, line });
  }
  return out;
};

/** Every DOWNLOAD that sent bytes announced their digest; the others are only NOT FOUND. */
const checkDownloads = (got: readonly Downloaded[]): string[] =>
  got.flatMap(({ name, line, body }) => {
    if (body) return line === `OK ${body.length} ${sha256(body)}` ? [] : [`${name}: ${line} but sent ${sha256(body)}`];
    return line.startsWith('NOT FOUND') ? [] : [`${name}: ${line}`];
  });

/** A LIST answer as { name: its entry }. */
const list = async (client: RawClient, folder: string): Promise<Record<string, ListedFile>> =>
  Object.fromEntries((await client.list(folder, { timeoutMs: REPLY_MS })).files.map((file) => [file.name, file]));

/** Every digest LIST shows is the SHA-256 of the file's bytes on disk now (`prefix`: the user's folder). */
const untrueDigests = (listed: Record<string, ListedFile>, real: string, prefix = ''): string[] =>
  Object.entries(listed).flatMap(([name, { size, digest }]) => {
    const path = join(real, prefix, name);
    if (!existsSync(path)) return [`${name}: listed but gone`];
    const bytes = readFileSync(path);
    if (digest !== '-' && digest !== sha256(bytes)) return [`${name}: listed ${size} ${digest}, holds ${bytes.length} ${sha256(bytes)}`];
    return [];
  });

const logPath = (real: string, folder: string): string => join(real, '.rxfer', 'sums', 'folders', `${sha256(folder)}.log`);
const hasCompactionHeader = (real: string, folder: string): boolean =>
  existsSync(logPath(real, folder)) && /^\{"compacted": *\d+\}\n/.test(readFileSync(logPath(real, folder), 'latin1').slice(0, 40));

/** A file put in the storage by other means (a co-tenant), mtime a minute ago. */
const putByOtherMeans = async (real: string, name: string, data: Buffer): Promise<void> => {
  const path = join(real, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
  const t = Math.floor(Date.now() / 1000) - 60;
  await utimes(path, t, t);
};

/** Valid-looking log lines about names that do not exist, about `bytes` long in all. */
const junkLines = (bytes: number): string => {
  let out = '';
  for (let i = 0; out.length < bytes; i++) out += JSON.stringify({ n: `junk-${String(i).padStart(12, '0')}`, s: 1, m: 1, i: 1, h: 'sha256', d: 'a'.repeat(64) }) + '\n';
  return out;
};

/** Lets background records and compactions land (not a timing assertion). */
const settle = (ms = 300): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fresh server (its commit worker not started: no upload yet) with d/f.txt put there by other
 * means, settled, and d's log one record short of 64 KiB; a STAT of d/f.txt then appends its record
 * on the main thread, which asks the worker (starting) to compact the log.
 */
const askedCompaction = async (config?: ServerOverrides) => {
  const server = await serve(config);
  const data = randomBytes(300);
  await putByOtherMeans(server.real, 'd/f.txt', data);
  await writeFile(logPath(server.real, 'd'), junkLines(64 * KiB - 200));
  return {
    server,
    data,
    /** The STAT that asks for the compaction. */
    stat: async (client: RawClient) => expect(await ask(client, 'STAT\nd/f.txt\n')).toMatch(new RegExp(`^OK stat file 300 ${sha256(data)} `)),
  };
};

describe('hostile 2026-12-06w (1): the log replaced after the main thread asked for its compaction', () => {
  test('a FIFO: the commit worker is not held, a second client\'s small UPLOAD is still stored', async () => {
    const { server, stat } = await askedCompaction({ limits: { stallTimeoutMs: 5_000 } });
    await untilSettled();
    const a = await connect(server.port);
    await stat(a);
    const fifo = join(server.scratch, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await rename(fifo, logPath(server.real, 'd'));
    cleanups.push(() => {
      // Lets a reader held in its open go (a writer's open), so that the server can close.
      try { closeSync(openSync(logPath(server.real, 'd'), constants.O_WRONLY | constants.O_NONBLOCK)); } catch { /* no reader */ }
    });
    const b = await connect(server.port);
    const body = randomBytes(100);
    await b.send(uploadRequest('e/x.txt', body));
    expect(await b.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv 100 ${sha256(body)}`);
    expect(await readFile(join(server.real, 'e/x.txt'))).toEqual(body);
  }, 60_000);

  test('a 128 MiB sparse file with no newline (past the 16 MiB the asker checked): the commit worker is not held, a small UPLOAD is still stored', async () => {
    const { server, stat } = await askedCompaction({ limits: { stallTimeoutMs: 10_000 } });
    await untilSettled();
    const a = await connect(server.port);
    await stat(a);
    const planted = join(server.scratch, 'huge');
    // Sparse: no disk space, 128 MiB of NUL bytes to read.
    execFileSync('truncate', ['-s', String(128 * 1024 * KiB), planted]);
    await rename(planted, logPath(server.real, 'd'));
    // Cut short for the server's close, which waits for a compaction under way: a read of nothing ends it.
    cleanups.push(() => execFileSync('truncate', ['-s', '0', logPath(server.real, 'd')]));
    const b = await connect(server.port);
    const body = randomBytes(100);
    await b.send(uploadRequest('e/x.txt', body));
    expect(await b.readUploadOutcome(REPLY_MS + 10_000)).toBe(`OK file data recv 100 ${sha256(body)}`);
    expect(await readFile(join(server.real, 'e/x.txt'))).toEqual(body);
  }, 90_000);

  test('a regular file, a link to a file outside, a folder, 1 MiB of garbage with no newline, the logs\' folder a link: nothing outside changes, everyone is answered', async () => {
    const kinds = ['regular', 'link', 'folder', 'garbage', 'folders-link'] as const;
    const setups = await Promise.all(kinds.map(() => askedCompaction()));
    await untilSettled();
    for (const [k, kind] of kinds.entries()) {
      const { server, data, stat } = setups[k]!;
      const outside = join(server.scratch, 'outside');
      await mkdir(outside);
      const victim = join(outside, 'victim.txt');
      await writeFile(victim, 'victim\n');
      const a = await connect(server.port);
      await stat(a);
      const log = logPath(server.real, 'd');
      const planted = join(server.scratch, 'planted');
      if (kind === 'regular') await writeFile(planted, junkLines(70 * KiB));
      if (kind === 'link') await symlink(victim, planted);
      if (kind === 'folder') await mkdir(planted);
      if (kind === 'garbage') await writeFile(planted, Buffer.alloc(1024 * KiB, 0x41));
      if (kind === 'folders-link') {
        // The logs' folder moved away and a link to a folder outside put in its place (with a log of d there).
        await writeFile(join(outside, `${sha256('d')}.log`), junkLines(70 * KiB));
        await rename(dirname(log), join(server.scratch, 'folders-moved'));
        await symlink(outside, dirname(log));
      } else {
        // (A folder cannot be renamed over a file: the log goes first.)
        if (kind === 'folder') await rm(log);
        await rename(planted, log);
      }
      const outsideBefore = (await readdir(outside)).sort();
      const b = await connect(server.port);
      const body = randomBytes(100);
      await b.send(uploadRequest('e/x.txt', body));
      expect([kind, await b.readUploadOutcome(REPLY_MS)]).toEqual([kind, `OK file data recv 100 ${sha256(body)}`]);
      const got = await downloads(a, ['d/f.txt', 'e/x.txt']);
      expect([kind, checkDownloads(got), got.map(({ line }) => line.split(' ')[0])]).toEqual([kind, [], ['OK', 'OK']]);
      expect([kind, await ask(b, 'STAT\nd/f.txt\n')]).toEqual([kind, expect.stringMatching(new RegExp(`^OK stat file 300 (-|${sha256(data)}) `))]);
      await settle();
      expect([kind, untrueDigests(await list(b, ''), server.real)]).toEqual([kind, []]);
      expect([kind, readFileSync(victim, 'utf8'), (await readdir(outside)).sort()]).toEqual([kind, 'victim\n', outsideBefore]);
      if (kind === 'folders-link') {
        expect(readFileSync(join(outside, `${sha256('d')}.log`), 'utf8')).toBe(junkLines(70 * KiB));
      }
    }
  }, 90_000);
});

describe('hostile 2026-12-06w (2): compaction asked by downloads, under uploads, renames, deletes and a co-tenant', () => {
  test('every DOWNLOAD sends the bytes it announced; after it all, every LIST digest is of the file\'s bytes', async () => {
    const server = await serve();
    const real = server.real;
    const FILES = 520;
    const names = Array.from({ length: FILES }, (_, i) => `r/f${String(i).padStart(4, '0')}.txt`);
    for (const name of names) await putByOtherMeans(real, name, randomBytes(100 + (name.length * 7919 + names.indexOf(name) * 31) % 300));
    await untilSettled();
    const downloaders = await Promise.all(Array.from({ length: 6 }, () => connect(server.port)));
    const uploader = await connect(server.port);
    const mover = await connect(server.port);
    // Co-tenant: rewrites f0040..f0079 in place, several times (ordinary writes: mtime moves).
    let coTenantRuns = true;
    const coTenant = (async () => {
      for (let round = 0; coTenantRuns && round < 200; round++) {
        for (let i = 40; i < 80; i++) await writeFile(join(real, names[i]!), randomBytes(50 + ((round + i) % 5) * 60));
        await settle(5);
      }
    })();
    const batchOks: { name: string; data: Buffer }[] = [];
    const uploading = (async () => {
      for (let k = 0; k < 4; k++) {
        const files = Array.from({ length: 32 }, (_, j) => ({ name: `r/b${k}-${j}.txt`, data: randomBytes(200 + j) }));
        await uploader.send(batchRequest(files));
        for (const file of files) {
          const reply = await uploader.readLine(REPLY_MS);
          if (reply === `OK file data recv ${file.data.length} ${sha256(file.data)}`) batchOks.push(file);
          else throw new Error(`${file.name}: ${reply}`);
        }
      }
    })();
    const moving = (async () => {
      const requests: string[] = [];
      for (let i = 0; i < 20; i++) requests.push(`RENAME\n${names[i]}\nr/g${i}.txt\n`);
      for (let i = 20; i < 40; i++) requests.push(`DELETE\n${names[i]}\n`);
      await mover.send(requests.join(''));
      const replies = await mover.readLines(requests.length, REPLY_MS);
      expect(replies).toEqual([...Array(20).fill('OK renamed'), ...Array(20).fill('OK deleted')]);
    })();
    const downloading = Promise.all(downloaders.map((client, c) => downloads(client, names.filter((_, i) => i % downloaders.length === c))));
    const got = (await downloading).flat();
    await Promise.all([uploading, moving]);
    coTenantRuns = false;
    await coTenant;
    expect(checkDownloads(got)).toEqual([]);
    // Once the rewrites have settled, every file hashed again on demand (records of new versions).
    await untilSettled();
    const again = await downloads(downloaders[0]!, [...names.slice(40), ...Array.from({ length: 20 }, (_, i) => `r/g${i}.txt`)]);
    expect(checkDownloads(again)).toEqual([]);
    await settle();
    const listed = await list(uploader, 'r');
    expect(untrueDigests(listed, real)).toEqual([]);
    for (const { name, data } of batchOks) expect([name, sha256(readFileSync(join(real, name)))]).toEqual([name, sha256(data)]);
    // The main thread's records did take the log past 64 KiB: it was compacted at least once.
    expect(hasCompactionHeader(real, 'r')).toBe(true);
    // And LIST, from a fresh read of the compacted log by a new server on the same root, is still true.
    const second = await startTestServer({ config: { storage: { root: real } } });
    cleanups.push(() => second.stop());
    const c = await connect(second.port);
    expect(untrueDigests(await list(c, 'r'), real)).toEqual([]);
    expect(Object.values(await list(c, 'r')).filter(({ digest }) => digest !== '-').length).toBeGreaterThan(FILES / 2);
  }, 120_000);
});

describe('hostile 2026-12-06w (3): jailed users with same-named folders, both logs compacted', () => {
  test("each user's LIST shows the digests of their own files only", async () => {
    const alice = await makeUser('alice', 'write', 'home/alice');
    const bob = await makeUser('bob', 'write', 'home/bob');
    const server = await startSecureServer({ auth: { users: [alice.entry, bob.entry] } });
    cleanups.push(() => server.close());
    const real = realpathSync(server.root);
    const FILES = 480;
    const names = Array.from({ length: FILES }, (_, i) => `d/x${String(i).padStart(4, '0')}.bin`);
    for (const name of names) {
      await putByOtherMeans(real, `home/alice/${name}`, randomBytes(150));
      await putByOtherMeans(real, `home/bob/${name}`, randomBytes(150));
    }
    await untilSettled();
    const a = await connect(server.port);
    const b = await connect(server.port);
    expect(await ask(a, `AUTH ${alice.token}\n`)).toBe('OK auth alice write');
    expect(await ask(b, `AUTH ${bob.token}\n`)).toBe('OK auth bob write');
    const [ga, gb] = await Promise.all([downloads(a, names), downloads(b, names)]);
    expect(checkDownloads(ga)).toEqual([]);
    expect(checkDownloads(gb)).toEqual([]);
    // Uploads into both users' d: the worker's own appends too.
    const up = async (client: RawClient) => {
      const files = Array.from({ length: 16 }, (_, j) => ({ name: `d/u${j}.bin`, data: randomBytes(120) }));
      await client.send(batchRequest(files));
      for (const file of files) expect(await client.readLine(REPLY_MS)).toBe(`OK file data recv 120 ${sha256(file.data)}`);
    };
    await Promise.all([up(a), up(b)]);
    await settle();
    expect(hasCompactionHeader(real, 'home/alice/d')).toBe(true);
    expect(hasCompactionHeader(real, 'home/bob/d')).toBe(true);
    expect(existsSync(logPath(real, 'd'))).toBe(false);
    const la = await list(a, 'd');
    const lb = await list(b, 'd');
    expect(untrueDigests(la, real, 'home/alice')).toEqual([]);
    expect(untrueDigests(lb, real, 'home/bob')).toEqual([]);
    // Most of what the downloads recorded survived the compaction (a cache may lose some, not most).
    expect(Object.values(la).filter(({ digest }) => digest !== '-').length).toBeGreaterThan(FILES / 2);
    expect(Object.values(lb).filter(({ digest }) => digest !== '-').length).toBeGreaterThan(FILES / 2);
  }, 90_000);
});

/** Reads `count` reply lines of pipelined requests. */
const replies = (client: RawClient, count: number): Promise<string[]> => client.readLines(count, REPLY_MS);

describe('hostile 2026-12-06w (4): NameLocks, pipelined and across connections', () => {
  test('a BATCH into d while others RENAME d, MKDIR d, upload d/x and d/x/y, DELETE d: every OK file is where the order puts it, with its bytes', async () => {
    const server = await serve();
    const real = server.real;
    for (let round = 0; round < 6; round++) {
      const [a, b, c] = await Promise.all([connect(server.port), connect(server.port), connect(server.port)]);
      const d = `t${round}/d`;
      const e = `t${round}/e`;
      const files = Array.from({ length: 48 }, (_, j) => ({ name: `${d}/f${j}`, data: randomBytes(64 + j) }));
      const x = randomBytes(77);
      const y = randomBytes(88);
      // a: the batch. b: RENAME d e, MKDIR d, UPLOAD d/x. c: UPLOAD d/x/y, DELETE d.
      const sentA = a.send(batchRequest(files));
      const sentB = b.send(Buffer.concat([Buffer.from(`RENAME\n${d}\n${e}\nMKDIR\n${d}\n`), uploadRequest(`${d}/x`, x)]));
      const sentC = c.send(Buffer.concat([uploadRequest(`${d}/x/y`, y), Buffer.from(`DELETE\n${d}\n`)]));
      await Promise.all([sentA, sentB, sentC]);
      const ra = await replies(a, files.length);
      const [renamed, made] = await replies(b, 2);
      const upX = await b.readUploadOutcome(REPLY_MS);
      const upY = await c.readUploadOutcome(REPLY_MS);
      const deleted = await c.readLine(REPLY_MS);
      const evidence = { round, renamed, made, upX, upY, deleted, batch: [...new Set(ra.map((r) => r.replace(/ [0-9a-f]{64}$/, ' <digest>').replace(/recv \d+/, 'recv N')))] };
      // Every OK'd file of the batch is in d or e (the rename moved it or not) with its bytes.
      ra.forEach((reply, j) => {
        const file = files[j]!;
        if (!reply.startsWith('OK')) {
          expect([evidence, file.name, reply]).toEqual([evidence, file.name, expect.stringMatching(/^ERR (NAME_CONFLICT|NOT_FOUND)/)]);
          // Refused: not stored anywhere.
          expect([evidence, file.name, [join(real, file.name), join(real, e, `f${j}`)].filter((p) => existsSync(p) && readFileSync(p).equals(file.data))]).toEqual([evidence, file.name, []]);
          return;
        }
        expect(reply).toBe(`OK file data recv ${file.data.length} ${sha256(file.data)}`);
        const places = [join(real, file.name), join(real, e, `f${j}`)].filter((p) => existsSync(p) && readFileSync(p).equals(file.data));
        expect([evidence, file.name, places.length]).toEqual([evidence, file.name, 1]);
      });
      for (const [reply, name, data] of [[upX, `${d}/x`, x], [upY, `${d}/x/y`, y]] as const) {
        if (!reply.startsWith('OK')) continue;
        expect(reply).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
        const places = [join(real, name), join(real, name.replace(`${d}/`, `${e}/`))].filter((p) => existsSync(p) && readFileSync(p).equals(data));
        expect([evidence, name, places.length]).toEqual([evidence, name, 1]);
      }
      // d/x and d/x/y cannot both be files.
      expect([evidence, upX.startsWith('OK') && upY.startsWith('OK') && existsSync(join(real, d, 'x')) && existsSync(join(real, e, 'x'))]).toEqual([evidence, false]);
      destroyAll(clients);
    }
    // No leftovers in staging.
    const staging = join(real, '.rxfer', 'staging');
    if (existsSync(staging)) expect((await readdir(staging)).filter((n) => !n.startsWith('.'))).toEqual([]);
  }, 90_000);

  test('RENAME a b and RENAME b a at once, 40 times each on two connections: the bytes are never lost nor doubled', async () => {
    const server = await serve();
    const data = randomBytes(5000);
    const c0 = await connect(server.port);
    await c0.send(uploadRequest('p/a', data));
    expect(await c0.readUploadOutcome(REPLY_MS)).toBe(`OK file data recv 5000 ${sha256(data)}`);
    const [c1, c2, c3] = await Promise.all([connect(server.port), connect(server.port), connect(server.port)]);
    const N = 40;
    await Promise.all([
      c1.send('RENAME\np/a\np/b\n'.repeat(N)),
      c2.send('RENAME\np/b\np/a\n'.repeat(N)),
      // And a folder rename back and forth around them: p → q → p.
      c3.send('RENAME\np\nq\nRENAME\nq\np\n'.repeat(N / 4)),
    ]);
    const [r1, r2, r3] = await Promise.all([replies(c1, N), replies(c2, N), replies(c3, N / 2)]);
    const allowed = /^(OK renamed|NOT FOUND .*|ERR EXISTS .*|ERR NAME_CONFLICT .*)$/;
    expect([...r1, ...r2, ...r3].filter((r) => !allowed.test(r))).toEqual([]);
    const found = ['p/a', 'p/b', 'q/a', 'q/b'].filter((n) => existsSync(join(server.real, n)));
    expect(found.length).toBe(1);
    expect(sha256(readFileSync(join(server.real, found[0]!)))).toBe(sha256(data));
  }, 60_000);
});

describe('hostile 2026-12-06w (5): names (unicode NFC, spaces, dots, long, deep) land where LIST and DOWNLOAD say', () => {
  test('UPLOAD and BATCH of such names: on disk at root/name, listed by that name, downloaded whole; NFD refused', async () => {
    const server = await serve();
    const deep = Array.from({ length: 30 }, (_, i) => `l${i}`).join('/');
    const names = [
      'ü n i/café.txt',
      'a b/c d .e/f.g.h',
      'x/..y/z..w',
      `${deep}/leaf`,
      `long/${'é'.repeat(127)}`,
      '日本/語 ファイル.txt',
      'emoji/🦊 fox.bin',
      '-dash/ lead',
    ];
    const c = await connect(server.port);
    const datas = names.map((_, i) => randomBytes(100 + i));
    await c.send(Buffer.concat(names.slice(0, 4).map((n, i) => uploadRequest(n, datas[i]!))));
    const up: string[] = [];
    for (let i = 0; i < 4; i++) up.push(await c.readUploadOutcome(REPLY_MS));
    await c.send(batchRequest(names.slice(4).map((n, i) => ({ name: n, data: datas[i + 4]! }))));
    up.push(...(await replies(c, names.length - 4)));
    expect(up).toEqual(names.map((_, i) => `OK file data recv ${datas[i]!.length} ${sha256(datas[i]!)}`));
    for (const [i, name] of names.entries()) expect([name, readFileSync(join(server.real, name)).equals(datas[i]!)]).toEqual([name, true]);
    const listed = await list(c, '');
    expect(Object.keys(listed).sort()).toEqual([...names].sort());
    expect(untrueDigests(listed, server.real)).toEqual([]);
    expect(checkDownloads(await downloads(c, names))).toEqual([]);
    // NFD of an existing name: refused, not a second file.
    const nfd = 'ü n i/café.txt'.normalize('NFD');
    await c.send(uploadRequest(nfd, 'x'));
    expect(await c.readUploadOutcome(REPLY_MS)).toMatch(/^ERR NAME_INVALID/);
    expect((await readdir(join(server.real, 'ü n i'))).length).toBe(1);
    // Nothing beside the root but the root (nothing written outside it).
    expect((await readdir(dirname(server.root))).sort()).toEqual(['root', 'scratch']);
  }, 60_000);
});
