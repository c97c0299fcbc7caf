import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../../src/client/rxfer-client';
import { uploadTree } from '../../../src/client/upload-tree';
import { DigestCache } from '../../../src/client/digest-cache';
import { startTestServer, type TestServer } from '../../helpers/server';
import { readTree, writeTree } from './support/tree-files';

/**
 * put -r with the client's digest cache (src/client/digest-cache.ts), against the real server on
 * 127.0.0.1 and real files: an identical re-run reads no local file (shown by a cache record that
 * lies: it is believed), a changed file is always sent, even with its size and mtime put back, and
 * `trustOld: false` (the CLI's --checksum) reads every file again. Racy margin shortened to 40 ms;
 * listing pages of 3 entries, so the cache is read alongside several pages.
 */

const MARGIN_MS = 40;
let server: TestServer;
let work: string;
let local: string;
let cacheDir: string;
let client: RxferClient;
beforeAll(async () => {
  server = await startTestServer({ config: { limits: { maxListEntries: 3 } } });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  work = mkdtempSync(join(server.scratch, 'put-cache-'));
  local = join(work, 'tree');
  cacheDir = join(work, 'cache');
  client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
});
afterEach(async () => {
  if (!client.isClosed) await client.quit();
  rmSync(work, { recursive: true, force: true });
  await rm(join(server.root, 'up'), { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const cache = (trustOld = true) => DigestCache.open(local, 'sha256', { dir: cacheDir, racyMarginMs: MARGIN_MS, trustOld })!;
const put = (trustOld = true) => uploadTree(client, local, 'up', { digestCache: cache(trustOld) });
const cachePath = () => join(cacheDir, 'digests', readdirSync(join(cacheDir, 'digests')).find((name) => !name.endsWith('.tmp'))!);
const recordOf = (name: string) => readFileSync(cachePath(), 'utf8').split('\n').find((line) => line.endsWith(` ${name}`));

const TREE = { 'a.txt': 'alpha', 'b/c.txt': 'gamma', 'b/d.txt': 'delta', 'e.txt': 'epsilon', 'f.txt': 'phi' };

/** The tree, written and aged past the margin, then put once: every file is sent and recorded. */
const firstRun = async () => {
  writeTree(local, TREE);
  await sleep(MARGIN_MS * 3);
  await expect(put()).resolves.toMatchObject({ files: 5, skipped: 0 });
};

test('the first put -r records every file it sent, with the digest of the bytes the server stored', async () => {
  await firstRun();
  for (const [name, content] of Object.entries(TREE)) expect(recordOf(name)?.split(' ')[0]).toBe(sha256(content));
  expect(readTree(join(server.root, 'up'))).toEqual(TREE);
});

test('an identical re-run reads no file: a record that lies about one is believed (and --checksum reads it, and sends it)', async () => {
  await firstRun();
  // e.txt changes (same size), and the cache is made to claim its new state still has the old digest.
  const old = recordOf('e.txt')!;
  writeFileSync(join(local, 'e.txt'), 'EPSILON');
  const now = lstatSync(join(local, 'e.txt'), { bigint: true });
  const lie = `${old.split(' ')[0]} ${now.size} ${now.mtimeNs} ${now.ctimeNs} ${now.ino} ${now.dev} e.txt`;
  writeFileSync(cachePath(), readFileSync(cachePath(), 'utf8').replace(old, lie));
  await expect(put()).resolves.toMatchObject({ files: 0, skipped: 5 });
  expect(readFileSync(join(server.root, 'up', 'e.txt'), 'utf8')).toBe('epsilon');
  await expect(put(false)).resolves.toMatchObject({ files: 1, skipped: 4 });
  expect(readFileSync(join(server.root, 'up', 'e.txt'), 'utf8')).toBe('EPSILON');
});

test('a file rewritten with its size and mtime put back (to the nanosecond) is sent again: ctime moved', async () => {
  await firstRun();
  const before = lstatSync(join(local, 'b/d.txt'), { bigint: true });
  writeFileSync(join(local, 'b/d.txt'), 'DELTA');
  const nanos = String(before.mtimeNs % 1_000_000_000n).padStart(9, '0');
  execFileSync('touch', ['-m', '-d', `@${before.mtimeNs / 1_000_000_000n}.${nanos}`, join(local, 'b/d.txt')]);
  expect(lstatSync(join(local, 'b/d.txt'), { bigint: true }).mtimeNs).toBe(before.mtimeNs);
  await expect(put()).resolves.toMatchObject({ files: 1, skipped: 4 });
  expect(readFileSync(join(server.root, 'up', 'b/d.txt'), 'utf8')).toBe('DELTA');
});

test('a file changed on the server is sent again although the cache knows the local one: the digests differ', async () => {
  await firstRun();
  writeFileSync(join(server.root, 'up', 'a.txt'), 'ALPHA');
  await expect(put()).resolves.toMatchObject({ files: 1, skipped: 4 });
  expect(readFileSync(join(server.root, 'up', 'a.txt'), 'utf8')).toBe('alpha');
});

test('files changed within the racy margin are not recorded, then are by the next run that reads them', async () => {
  writeTree(local, TREE);
  // No wait: every file is younger than the margin when it is seen.
  await expect(uploadTree(client, local, 'up', { digestCache: DigestCache.open(local, 'sha256', { dir: cacheDir, racyMarginMs: 60_000 })! })).resolves.toMatchObject({ files: 5 });
  expect(recordOf('a.txt')).toBeUndefined();
  await sleep(MARGIN_MS * 3);
  await expect(put()).resolves.toMatchObject({ files: 0, skipped: 5 });
  // Read and found identical: recorded now, with the server's digest.
  expect(recordOf('a.txt')?.split(' ')[0]).toBe(sha256('alpha'));
});

test('a file the server refuses leaves no record and the others keep theirs; a removed file drops out of the cache', async () => {
  await firstRun();
  rmSync(join(local, 'f.txt'));
  // g is refused: the server has a folder by that name.
  writeTree(join(server.root, 'up'), { 'g/inner': 'a folder where a file is sent' });
  writeFileSync(join(local, 'g'), 'new');
  await sleep(MARGIN_MS * 3);
  const error = await put().catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'NAME_CONFLICT' });
  expect(recordOf('g')).toBeUndefined();
  expect(recordOf('f.txt')).toBeUndefined();
  for (const name of ['a.txt', 'b/c.txt', 'b/d.txt', 'e.txt']) expect(recordOf(name)).toBeDefined();
});

test('the same tree to another remote folder with the cache warm: every file is sent (the cache knows the local files, not the server`s)', async () => {
  await firstRun();
  await expect(uploadTree(client, local, 'up/again', { digestCache: cache() })).resolves.toMatchObject({ files: 5, skipped: 0 });
  expect(readTree(join(server.root, 'up', 'again'))).toEqual(TREE);
});
