// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { disarm, failEvery, failNext, failed, nextFsyncBy, restoreFs } from '../unit/client/support/client-fs-faults';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient, downloadTree } from '../../src/client/index';
import { partialPathFor } from '../../src/client/staging-file';
import { startTestServer, type TestServer } from './real-server';
import { startTestServer as startServerWith } from '../helpers/server';
import { failureOf } from '../helpers/failure-of';

/**
 * Promise (README, "Downloads"): a download is reported saved only once its rename is durable. The
 * fsync of the folder it was renamed into, and for `get -r` of each folder it made, fails for real
 * here (support/client-fs-faults wraps node:fs under the client's own code, against the real server on
 * 127.0.0.1): the file in place is then reported NOT_DURABLE ("saved, … but a crash could still undo
 * that"), never success and never "not changed"; a folder whose entry cannot be synced gets no file.
 * Before, both were dropped in silence ("best effort").
 */

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;

describe('a download whose folder cannot be synced after the rename', () => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
    failed.length = 0;
  });
  afterEach(async () => {
    disarm();
    client.close();
    await server.close();
  });
  afterAll(restoreFs);

  test.each([
    ['small (held in memory)', 4 * KiB, 'fsyncSync'],
    ['mid-sized (a staging file)', 200 * KiB, 'fsync'],
    ['large (the resume file)', 2 * MiB, 'fsyncSync'],
  ] as const)('%s: NOT_DURABLE, the file in place and whole; the connection goes on', async (_label, size, pace) => {
    const data = randomBytes(size);
    await client.uploadBuffer('f.bin', data);
    const target = join(server.local, 'f.bin');
    writeFileSync(target, 'the previous version');
    nextFsyncBy(pace);
    failNext('folderSync', (path) => path === server.local);
    const err = await failureOf(client.download('f.bin', target));
    expect(failed).toEqual([{ call: 'folderSync', path: server.local }]);
    expect(err.code).toBe('NOT_DURABLE');
    expect(err.message).toBe(`${target} is saved, whole and verified, but its folder could not be synced (EIO injected failure): a crash of this machine could still undo that`);
    expect(sha256(readFileSync(target))).toBe(sha256(data));
    expect(readdirSync(server.local)).toEqual(['f.bin']);
    // The same file again: here, identical, and this time synced.
    expect(await client.download('f.bin', target)).toEqual({ size, digest: sha256(data) });
  });

  test("the resume file's name, free once renamed, taken by another download before the fsync failed: that one's bytes are not removed", async () => {
    const data = randomBytes(2 * MiB);
    await client.uploadBuffer('big.bin', data);
    const target = join(server.local, 'big.bin');
    const resumeFile = partialPathFor(target);
    nextFsyncBy('fsyncSync');
    // The fault strikes at the folder's fsync, after the rename and the lock's release: another download
    // of the same target (a second process) has just begun in the resume file's name.
    failNext('folderSync', (path) => {
      if (path !== server.local) return false;
      writeFileSync(resumeFile, 'bytes of another download');
      return true;
    });
    const err = await failureOf(client.download('big.bin', target));
    expect(err.code).toBe('NOT_DURABLE');
    expect(sha256(readFileSync(target))).toBe(sha256(data));
    expect(readFileSync(resumeFile, 'utf8')).toBe('bytes of another download');
  });

  test('a resume file replaced by another program before the commit: nothing renamed, and that file left alone', async () => {
    const data = randomBytes(2 * MiB);
    await client.uploadBuffer('big.bin', data);
    const target = join(server.local, 'big.bin');
    writeFileSync(target, 'the previous version');
    const resumeFile = partialPathFor(target);
    // At the commit's look at the resume file (the first while it holds bytes), another program has
    // just renamed a file of its own over it.
    failNext('lstatSync', (path) => {
      if (path !== resumeFile || !existsSync(path) || readFileSync(path).length === 0) return false;
      writeFileSync(`${resumeFile}.theirs`, 'their own file');
      renameSync(`${resumeFile}.theirs`, resumeFile);
      return false;
    });
    const err = await failureOf(client.download('big.bin', target));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`${resumeFile} was replaced or removed while the download ran (by another program); nothing was renamed; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('the previous version');
    expect(readFileSync(resumeFile, 'utf8')).toBe('their own file');
  });

  test('get -r: the file whose folder fsync failed is named NOT_DURABLE, "downloaded but not made durable"; the others are saved', async () => {
    const files = { 'a/one.txt': randomBytes(3 * KiB), 'b/two.txt': randomBytes(5 * KiB), 'c/three.txt': randomBytes(70 * KiB) };
    for (const [name, data] of Object.entries(files)) await client.uploadBuffer(`t/${name}`, data);
    const into = join(server.local, 'copy');
    await mkdir(join(into, 'b'), { recursive: true });
    await writeFile(join(into, 'b', 'two.txt'), 'old');
    nextFsyncBy('fsyncSync');
    // b is synced before the page's downloads (it may hold an earlier run's files), then after two.txt's
    // rename: that second one fails.
    const newTwo = files['b/two.txt'];
    failNext('folderSync', (path) => path === join(into, 'b') && readFileSync(join(into, 'b', 'two.txt')).equals(newTwo));
    const err = await failureOf(downloadTree(client, 't', into));
    expect(failed).toEqual([{ call: 'folderSync', path: join(into, 'b') }]);
    expect(err.code).toBe('NOT_DURABLE');
    expect(err.message).toBe(
      `1 of 3 files were downloaded but not made durable: ${join(into, 'b', 'two.txt')} is saved, whole and verified, but its folder could not be synced (EIO injected failure): a crash of this machine could still undo that`,
    );
    for (const [name, data] of Object.entries(files)) expect(sha256(readFileSync(join(into, name)))).toBe(sha256(data));
  });

  test.each([
    ['the target folder itself new: its parent', [], (local: string) => local],
    ['a new folder inside an existing target: the target', ['copy'], (local: string) => join(local, 'copy')],
    ['a new folder two deep: the one above it, also new', ['copy'], (local: string) => join(local, 'copy', 'n')],
  ])('get -r, %s cannot be synced after the mkdir: LOCAL_IO, and no file is put in it or below it', async (_label, existing, parentOf) => {
    await client.uploadBuffer('t/n/m/deep.txt', Buffer.from('deep'));
    await client.uploadBuffer('t/top.txt', Buffer.from('top'));
    for (const folder of existing) await mkdir(join(server.local, folder));
    const into = join(server.local, 'copy');
    const parent = parentOf(server.local);
    nextFsyncBy('fsyncSync');
    failNext('folderSync', (path) => path === parent);
    const err = await failureOf(downloadTree(client, 't', into));
    expect(failed).toEqual([{ call: 'folderSync', path: parent }]);
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot fsync the folder ${parent}: EIO injected failure; the copy stopped: files listed from there on were not downloaded`);
    // Nothing of the page was written: its files wait for the fsyncs of the folders it made.
    expect(existsSync(join(into, 'n', 'm', 'deep.txt'))).toBe(false);
    expect(existsSync(join(into, 'top.txt'))).toBe(false);
  });

  test('get -r into a new folder on a file system that cannot fsync folders (EINVAL): copied, no error', async () => {
    await client.uploadBuffer('t/n/f.txt', Buffer.from('f'));
    const into = join(server.local, 'copy');
    failNext('folderSync', (path) => path === server.local, 'EINVAL');
    expect(await downloadTree(client, 't', into)).toEqual({ files: 1, bytes: 1, skipped: 0 });
    expect(failed).toEqual([{ call: 'folderSync', path: server.local }]);
    expect(readFileSync(join(into, 'n', 'f.txt'), 'utf8')).toBe('f');
  });

  test('get -r into an existing target: a folder made in it has the target synced again (its new entry) before any file lands below', async () => {
    await client.uploadBuffer('t/n/m/deep.txt', Buffer.from('deep'));
    const into = join(server.local, 'copy');
    await mkdir(into);
    const synced: string[] = [];
    failNext('folderSync', (path) => {
      synced.push(`${path}: ${readdirSync(path).join(',')}`);
      return false;
    });
    await downloadTree(client, 't', into);
    // The target (existing: it may hold an earlier run's files) and its parent; then, n and m made, n and
    // the target again (m's and n's entries); then m after deep.txt's rename. The syncs of one step run
    // at once, in no fixed order (CI saw both): each step is compared as a set, the steps in order.
    const steps = [synced.slice(0, 2), synced.slice(2, 4), synced.slice(4)].map((step) => [...step].sort());
    expect(steps).toEqual([[`${server.local}: copy`, `${into}: `].sort(), [`${join(into, 'n')}: m`, `${into}: n`].sort(), [`${join(into, 'n', 'm')}: deep.txt`]]);
  });

  test('get -r into a one-letter relative target, made with its parent: ends (it looped for ever on ".")', async () => {
    await client.uploadBuffer('t/f.txt', Buffer.from('f'));
    const cwd = process.cwd();
    process.chdir(server.local);
    try {
      expect(await downloadTree(client, 't', 'x')).toEqual({ files: 1, bytes: 1, skipped: 0 });
      expect(await downloadTree(client, 't', 'y/z')).toEqual({ files: 1, bytes: 1, skipped: 0 });
    } finally {
      process.chdir(cwd);
    }
    expect(readFileSync(join(server.local, 'x', 'f.txt'), 'utf8')).toBe('f');
    expect(readFileSync(join(server.local, 'y', 'z', 'f.txt'), 'utf8')).toBe('f');
  });

  test('get -r into new folders: each is synced, and synced into its parent, before any file lands in it', async () => {
    await client.uploadBuffer('t/n/m/deep.txt', Buffer.from('deep'));
    const into = join(server.local, 'copy');
    const synced: string[] = [];
    // Records each folder fsync (either way it is made) with what the folder held then, and lets it through.
    failNext('folderSync', (path) => {
      synced.push(`${path}: ${readdirSync(path).join(',')}`);
      return false;
    });
    await downloadTree(client, 't', into);
    // The new target's parent first, then the folders above each new folder (not the new, empty, folder
    // itself: its files' renames sync it), then m after deep.txt's rename. n and the target are synced
    // at once, in no fixed order.
    const steps = [synced.slice(0, 1), synced.slice(1, 3), synced.slice(3)].map((step) => [...step].sort());
    expect(steps).toEqual([[`${server.local}: copy`], [`${join(into, 'n')}: m`, `${into}: n`].sort(), [`${join(into, 'n', 'm')}: deep.txt`]]);
    expect(readFileSync(join(into, 'n', 'm', 'deep.txt'), 'utf8')).toBe('deep');
  });

  test('get -r over two pages: files of page 1 NOT_DURABLE, then page 2 stops on a folder fsync: the stop names them too', async () => {
    const paged = await startServerWith({ config: { limits: { maxListEntries: 2 } } });
    const pagedClient = await RxferClient.connect({ host: '127.0.0.1', port: paged.port });
    try {
      // Listed two a page, depth first: [a/1.txt, a/2.txt], [b/3.txt].
      for (const name of ['p/a/1.txt', 'p/a/2.txt', 'p/b/3.txt']) await pagedClient.uploadBuffer(name, Buffer.from(name));
      const into = join(paged.scratch, 'p');
      const a = join(into, 'a');
      // a fails each time (it is new, so it is synced only after each of its files' renames: NOT_DURABLE
      // each, whichever lands first); p fails once page 2 made b in it (the stop).
      failEvery('folderSync', (path) => path === a || (path === into && readdirSync(into).includes('b')));
      const err = await failureOf(downloadTree(pagedClient, 'p', into));
      disarm();
      const notDurable = (name: string) => `${join(a, name)} is saved, whole and verified, but its folder could not be synced (EIO injected failure): a crash of this machine could still undo that`;
      expect(err.code).toBe('LOCAL_IO');
      expect(err.message).toBe(
        `cannot fsync the folder ${into}: EIO injected failure; the copy stopped: files listed from there on were not downloaded; also, 2 of 2 files were downloaded but not made durable: ${notDurable('1.txt')}; ${notDurable('2.txt')}`,
      );
      expect(err.detail).toEqual({ path: into, errno: 'EIO', failed: 2, files: 2 });
      expect(err.cause).toMatchObject({ code: 'LOCAL_IO', message: expect.stringMatching(/^cannot fsync the folder /) });
      expect(readFileSync(join(a, '1.txt'), 'utf8')).toBe('p/a/1.txt');
      expect(existsSync(join(into, 'b', '3.txt'))).toBe(false);
    } finally {
      pagedClient.close();
      await paged.close();
    }
  });
});
