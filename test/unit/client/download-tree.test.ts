import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RxferClient } from '../../../src/client/rxfer-client';
import { downloadTree, refuseLinkBelow, treeFailure, type FileFailure } from '../../../src/client/download-tree';
import { uploadTree } from '../../../src/client/upload-tree';
import { RxferError } from '../../../src/errors/rxfer-error';
import { startTestServer, type TestServer } from '../../helpers/server';
import { listAnswer, scriptedServer, type ScriptedServer } from './support/scripted-server';
import { readTree, writeTree } from './support/tree-files';

/**
 * get -r (src/client/download-tree.ts): every name checked before anything is written, a listing of
 * one page asked for once, a file that fails not stopping the others, a second pass that lists
 * other names still checked; and treeFailure, the error a tree copy ends with when some files failed.
 * Against the real server on 127.0.0.1 where it can say it, a scripted one where a server must lie.
 */

const failure = (index: number, name: string, code: RxferError['code'], message: string): FileFailure => ({ index, name, error: new RxferError(code, message) });

describe('treeFailure: the first failure`s code, the first few named in tree order', () => {
  test('one file of one: its own error, as it is', () => {
    const only = failure(0, 'x', 'NOT_FOUND', 'no x');
    expect(treeFailure('downloaded', 1, [only])).toBe(only.error);
  });

  test('several: sorted by place in the tree, named unless the message already names them, other codes shown', () => {
    const error = treeFailure('stored', 5, [failure(3, 'f3', 'NO_SPACE', 'disk full'), failure(1, 'f1', 'NOT_FOUND', 'f1 is gone'), failure(2, 'f2', 'NOT_FOUND', 'vanished')]);
    expect(error).toMatchObject({ code: 'NOT_FOUND', detail: { failed: 3, files: 5 } });
    expect(error.message).toBe('3 of 5 files were not stored: f1 is gone; f2: vanished; f3: NO_SPACE disk full');
    expect(error.cause).toBeInstanceOf(RxferError);
    expect((error.cause as RxferError).message).toBe('f1 is gone');
  });

  test('beyond three, the rest are counted; files not sent are counted too', () => {
    const failures = [0, 1, 2, 3, 4].map((i) => failure(i, `f${i}`, 'NOT_FOUND', 'gone'));
    expect(treeFailure('downloaded', 9, failures).message).toBe('5 of 9 files were not downloaded: f0: gone; f1: gone; f2: gone; 2 more failed');
    expect(treeFailure('stored', 9, failures.slice(0, 3), 4).message).toBe('7 of 9 files were not stored: f0: gone; f1: gone; f2: gone; 4 not sent once the connection was lost');
    expect(treeFailure('stored', 9, failures.slice(0, 3), 4).detail).toEqual({ failed: 7, files: 9 });
  });

  test('NOT_DURABLE failures (stored, their folder not synced) are never called "not stored"', () => {
    const unsynced = (i: number) => failure(i, `f${i}`, 'NOT_DURABLE', `f${i} is stored, but its folder could not be synced`);
    expect(treeFailure('stored', 5, [unsynced(1), unsynced(2)]).message).toBe('2 of 5 files were stored but not made durable: f1 is stored, but its folder could not be synced; f2 is stored, but its folder could not be synced');
    expect(treeFailure('stored', 5, [unsynced(1), failure(2, 'f2', 'NO_SPACE', 'disk full')]).message).toBe('2 of 5 files failed (1 of them stored but not made durable): f1 is stored, but its folder could not be synced; f2: NO_SPACE disk full');
    expect(treeFailure('stored', 5, [unsynced(1)], 1).message).toBe('2 of 5 files failed (1 of them stored but not made durable): f1 is stored, but its folder could not be synced; 1 not sent once the connection was lost');
  });

  test('one file of one that failed while others were not sent: counted, not bare', () => {
    expect(treeFailure('stored', 1, [failure(0, 'x', 'CONNECTION_LOST', 'lost')], 2).message).toBe('3 of 1 files were not stored: x: lost; 2 not sent once the connection was lost');
  });
});

describe('refuseLinkBelow: a folder get -r writes into must not be, or lie under, a link inside the target', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rxfer-links-'));
    mkdirSync(join(dir, 'real', 'deeper'), { recursive: true });
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a link on the way, with the target anywhere above it, "/" included', () => {
    for (const root of [dir, '/', tmpdir()]) {
      expect(() => refuseLinkBelow(root, join(dir, 'link', 'deeper'))).toThrow(expect.objectContaining({ code: 'LOCAL_IO', detail: { path: join(dir, 'link') } }));
    }
  });

  test('real folders, missing ones, and a link that is the target itself or above it: fine', () => {
    expect(() => refuseLinkBelow(dir, join(dir, 'real', 'deeper', 'not', 'yet'))).not.toThrow();
    expect(() => refuseLinkBelow(join(dir, 'link'), join(dir, 'link', 'deeper'))).not.toThrow();
    expect(() => refuseLinkBelow(join(dir, 'link', 'deeper'), join(dir, 'link', 'deeper', 'x'))).not.toThrow();
  });
});

describe('downloadTree against the real server', () => {
  let server: TestServer;
  let client: RxferClient;
  let local: string;
  const TREE = { 'a.txt': 'aaa', 'sub/b.txt': 'bb', 'sub/deep/c.txt': 'c', 'z.txt': 'zzzz' };
  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: 3 } } });
    // Sent, not planted: the server then knows each file's digest, and lists it.
    const source = mkdtempSync(join(server.scratch, 'source-'));
    writeTree(source, TREE);
    const uploader = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    await uploadTree(uploader, source, 'tree');
    await uploader.quit();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(async () => {
    local = join(mkdtempSync(join(server.scratch, 'get-')), 'deep', 'target');
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    if (!client.isClosed) await client.quit();
  });

  test('every file lands under the target (made as needed), each told to onFile with its bytes', async () => {
    const told: [string, number][] = [];
    const result = await downloadTree(client, 'tree', local, { onFile: (entry, { size }) => told.push([entry.name, size]) });
    expect(result).toEqual({ files: 4, bytes: 10, skipped: 0 });
    expect(readTree(local)).toEqual(TREE);
    expect(told.sort()).toEqual([['tree/a.txt', 3], ['tree/sub/b.txt', 2], ['tree/sub/deep/c.txt', 1], ['tree/z.txt', 4]]);
  });

  test('a re-run skips the files already here; skipIdentical: false fetches them again; resume is passed on', async () => {
    await downloadTree(client, 'tree', local);
    writeFileSync(join(local, 'z.txt'), 'changed here');
    await expect(downloadTree(client, 'tree', local)).resolves.toEqual({ files: 1, bytes: 4, skipped: 3 });
    expect(readTree(local)).toEqual(TREE);
    const asked: unknown[] = [];
    const downloadFiles = client.downloadFiles.bind(client);
    client.downloadFiles = (items, options) => {
      for (const { intoNewFolder } of items) asked.push({ ...options, intoNewFolder });
      return downloadFiles(items, options);
    };
    await expect(downloadTree(client, 'tree', local, { skipIdentical: false, resume: false })).resolves.toEqual({ files: 4, bytes: 10, skipped: 0 });
    // The target and its folders were there before this copy: every file's name is looked at.
    expect(asked).toEqual(Array(4).fill({ resume: false, intoNewFolder: false }));
  });

  test('a folder swapped for a link mid-copy is not written through, for a file too large to be grouped as for a small one', async () => {
    const big = randomBytes(100 * 1024);
    await client.uploadBuffer('swap/sub/big.bin', big);
    await client.uploadBuffer('swap/sub/small.txt', Buffer.from('small'));
    const elsewhere = mkdtempSync(join(server.scratch, 'elsewhere-'));
    let swapped = false;
    // Another program, once get -r made and checked sub: mv sub sub.parked; ln -s elsewhere sub.
    const swap = () => {
      if (swapped) return;
      swapped = true;
      renameSync(join(local, 'sub'), join(local, 'sub.parked'));
      symlinkSync(elsewhere, join(local, 'sub'));
    };
    const download = client.download.bind(client);
    client.download = (name, path, options) => (swap(), download(name, path, options));
    const downloadFiles = client.downloadFiles.bind(client);
    client.downloadFiles = (items, options) => (swap(), downloadFiles(items, options));
    const error = await downloadTree(client, 'swap', local).then(() => undefined, (err: unknown) => err);
    expect(error).toMatchObject({ code: 'LOCAL_IO', detail: { failed: 2, files: 2 } });
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  test('files of folders this copy made skip the looks for what is under their names; those of folders already there do not', async () => {
    const asked = (into: string) => {
      const seen: [string, boolean | undefined][] = [];
      const downloadFiles = client.downloadFiles.bind(client);
      client.downloadFiles = (items, options) => {
        for (const { remoteName, intoNewFolder } of items) seen.push([remoteName, intoNewFolder]);
        return downloadFiles(items, options);
      };
      return downloadTree(client, 'tree', into).then((result) => ({ result, seen: seen.sort() }));
    };
    // A new target: all of it.
    const fresh = await asked(local);
    expect(fresh.result).toEqual({ files: 4, bytes: 10, skipped: 0 });
    expect(fresh.seen).toEqual([['tree/a.txt', true], ['tree/sub/b.txt', true], ['tree/sub/deep/c.txt', true], ['tree/z.txt', true]]);
    // The target there, sub/ gone: sub/ and sub/deep/ are made again, the target's own files are looked at.
    rmSync(join(local, 'sub'), { recursive: true });
    writeFileSync(join(local, 'a.txt'), 'changed here');
    client.downloadFiles = RxferClient.prototype.downloadFiles.bind(client);
    const again = await asked(local);
    expect(again.result).toEqual({ files: 3, bytes: 6, skipped: 1 });
    expect(again.seen).toEqual([['tree/a.txt', false], ['tree/sub/b.txt', true], ['tree/sub/deep/c.txt', true]]);
    expect(readTree(local)).toEqual(TREE);
  });

  test('a target that cannot be made: LOCAL_IO, nothing asked for but the listing', async () => {
    const file = join(server.scratch, 'a-file');
    writeFileSync(file, 'not a folder');
    await expect(downloadTree(client, 'tree', join(file, 'target'))).rejects.toMatchObject({ code: 'LOCAL_IO', message: expect.stringContaining(`cannot create the folder ${join(file, 'target')}`) });
  });

  test('files named as rxfer`s own unfinished downloads are left out: counted, the first named, their folders not made', async () => {
    await client.uploadBuffer('mixed/a.txt', Buffer.from('a'));
    for (const name of ['mixed/.a.txt.rxfer-resume', 'mixed/.a.txt.rxfer-resume.lock', 'mixed/only/.b.rxfer-part-0123456789ab-7', 'mixed/z/.c.rxfer-resume']) {
      await client.uploadBuffer(name, Buffer.from('not a file of the tree'));
    }
    const result = await downloadTree(client, 'mixed', local);
    expect(result).toEqual({ files: 1, bytes: 1, skipped: 0, unfinished: { count: 4, names: [join(local, '.a.txt.rxfer-resume'), join(local, '.a.txt.rxfer-resume.lock'), join(local, 'only', '.b.rxfer-part-0123456789ab-7')] } });
    expect(readTree(local)).toEqual({ 'a.txt': 'a' });
    expect(existsSync(join(local, 'only'))).toBe(false);
    // Already here: skipped, as before, the others still left out; none left out: no `unfinished` at all.
    await expect(downloadTree(client, 'mixed', local)).resolves.toMatchObject({ files: 0, skipped: 1, unfinished: { count: 4 } });
    await expect(downloadTree(client, 'tree', join(local, 'other'))).resolves.toEqual({ files: 4, bytes: 10, skipped: 0 });
  });

  test('a symbolic link to a folder inside the target: LOCAL_IO naming it, nothing written where it points, the link kept', async () => {
    const outside = mkdtempSync(join(server.scratch, 'outside-'));
    mkdirSync(local, { recursive: true });
    symlinkSync(outside, join(local, 'sub'));
    const error = await downloadTree(client, 'tree', local).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'LOCAL_IO', detail: { path: join(local, 'sub') }, message: `${join(local, 'sub')} is a symbolic link inside the target ${local}: get -r does not write through it (files listed below it would land where it points); remove it, or copy into another folder` });
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(local, 'sub')).isSymbolicLink()).toBe(true);
  });

  test('a link further down (sub/deep), and a dangling one: refused the same way', async () => {
    const outside = mkdtempSync(join(server.scratch, 'outside-'));
    mkdirSync(join(local, 'sub'), { recursive: true });
    symlinkSync(outside, join(local, 'sub', 'deep'));
    await expect(downloadTree(client, 'tree', local)).rejects.toMatchObject({ code: 'LOCAL_IO', detail: { path: join(local, 'sub', 'deep') } });
    expect(readdirSync(outside)).toEqual([]);
    rmSync(join(local, 'sub', 'deep'));
    symlinkSync(join(outside, 'missing'), join(local, 'sub', 'deep'));
    await expect(downloadTree(client, 'tree', local)).rejects.toMatchObject({ code: 'LOCAL_IO', detail: { path: join(local, 'sub', 'deep') } });
    expect(readdirSync(outside)).toEqual([]);
  });

  test('a target folder that is itself a link: written through, as cp does', async () => {
    const real = mkdtempSync(join(server.scratch, 'real-'));
    mkdirSync(dirname(local), { recursive: true });
    symlinkSync(real, local);
    await expect(downloadTree(client, 'tree', local)).resolves.toMatchObject({ files: 4 });
    expect(readTree(real)).toEqual(TREE);
  });

  test('a folder where a listed file`s folder must go: LOCAL_IO, naming that folder', async () => {
    writeTree(local, { sub: 'a file where the folder sub goes' });
    const error = await downloadTree(client, 'tree', local).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'LOCAL_IO', message: expect.stringContaining(`cannot create the folder ${join(local, 'sub')}`) });
  });
});

describe('downloadTree against a scripted server', () => {
  let server: ScriptedServer | undefined;
  let client: RxferClient | undefined;
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'rxfer-get-tree-'));
  });
  afterEach(async () => {
    client?.close();
    await server?.close();
    server = client = undefined;
    rmSync(base, { recursive: true, force: true });
  });

  const contentOf = (name: string) => Buffer.from(`content of ${name}\n`);
  const serve = (socket: Socket, name: string) => {
    const data = contentOf(name);
    socket.write(`OK ${data.length} ${createHash('sha256').update(data).digest('hex')}\n`);
    socket.write(data);
  };
  /**
   * `listings[k]`: the pages the k-th paged listing gives (the first pass is 0, the second 1; the
   * last one is given again after that; a null page is never answered). DOWNLOAD serves `content of <name>`, unless `download` answers.
   */
  const start = async (listings: readonly (readonly (readonly string[] | null)[])[], download?: (name: string, socket: Socket) => boolean) => {
    let listing = -1;
    let page = 0;
    server = await scriptedServer(' list=paged', (request, socket) => {
      const [verb, arg] = request.split('\n');
      if (verb === 'LIST PAGED') {
        listing = Math.min(listing + 1, listings.length - 1);
        page = 0;
      }
      if (verb!.startsWith('LIST')) {
        const pages = listings[listing]!;
        // A null page is never answered (a server gone quiet).
        const names = pages[page];
        if (names) socket.write(listAnswer(names, page < pages.length - 1));
        page++;
      } else if (verb === 'DOWNLOAD') {
        if (!download?.(arg!, socket)) serve(socket, arg!);
      } else socket.end('ERR BAD_COMMAND not in this test\n');
    });
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    return { server, client };
  };
  const verbs = () => server!.requests.map((request) => request.split('\n')[0]);

  test('a listing of one page is asked for once, not twice', async () => {
    const { client } = await start([[['d/a', 'd/b']]]);
    await expect(downloadTree(client, 'd', join(base, 't'))).resolves.toMatchObject({ files: 2 });
    expect(verbs()).toEqual(['LIST PAGED', 'DOWNLOAD', 'DOWNLOAD']);
    expect(readTree(join(base, 't'))).toEqual({ a: 'content of d/a\n', b: 'content of d/b\n' });
  });

  test('a listing of several pages is read twice: names first, then page by page with the downloads', async () => {
    const { client } = await start([[['d/a'], ['d/b']]]);
    await expect(downloadTree(client, 'd', join(base, 't'))).resolves.toMatchObject({ files: 2 });
    expect(verbs()).toEqual(['LIST PAGED', 'LIST AFTER', 'LIST PAGED', 'DOWNLOAD', 'LIST AFTER', 'DOWNLOAD']);
  });

  test('a hostile name on a later page: NAME_INVALID before anything is written, the target not even made', async () => {
    const { client } = await start([[['d/a'], ['d/z/../../../escape']]]);
    await expect(downloadTree(client, 'd', join(base, 't'))).rejects.toMatchObject({ code: 'NAME_INVALID' });
    expect(existsSync(join(base, 't'))).toBe(false);
    expect(verbs()).not.toContain('DOWNLOAD');
  });

  test('a file and a folder of one name on two pages: refused before anything is written', async () => {
    const { client } = await start([[['d/a'], ['d/a/b']]]);
    await expect(downloadTree(client, 'd', join(base, 't'))).rejects.toMatchObject({ code: 'NAME_INVALID' });
    expect(verbs()).not.toContain('DOWNLOAD');
  });

  test('a server that lists other names the second time: still checked, the copy stops there', async () => {
    const { client } = await start([
      [['d/a'], ['d/b']],
      [['d/a'], ['d/z/../../escape']],
    ]);
    await expect(downloadTree(client, 'd', join(base, 't'))).rejects.toMatchObject({ code: 'NAME_INVALID' });
    expect(existsSync(join(base, 'escape'))).toBe(false);
    expect(readTree(base)).toEqual({ 't/a': 'content of d/a\n' });
  });

  test('a file that fails does not stop the others; the error names it', async () => {
    const { client } = await start([[['d/a', 'd/b', 'd/c']]], (name, socket) => {
      if (name !== 'd/b') return false;
      socket.write('ERR NOT_FOUND gone meanwhile\n');
      return true;
    });
    const error = await downloadTree(client, 'd', join(base, 't')).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'NOT_FOUND', detail: { failed: 1, files: 3 } });
    expect((error as Error).message).toMatch(new RegExp(`^1 of 3 files were not downloaded: ${join(base, 't', 'b')}: `));
    expect(readTree(join(base, 't'))).toEqual({ a: 'content of d/a\n', c: 'content of d/c\n' });
  });

  test('the connection closed with downloads in flight and a page still due: the failed files are told, not the lost page', async () => {
    // Closed by the client (an abort) at the second pass's first download, left unanswered.
    const { client } = await start([[['d/a', 'd/b'], ['d/c']]], () => {
      if (verbs().filter((verb) => verb === 'LIST PAGED').length < 2) return false;
      client!.close();
      return true;
    });
    const error = await downloadTree(client, 'd', join(base, 't')).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST', detail: { files: 2 } });
    expect((error as Error).message).toMatch(/^2 of 2 files were not downloaded: /);
  });

  test('the server ending the connection at a download: the files not downloaded are told, not a bare loss', async () => {
    // The server's FIN (its side ended) at the second pass's first download, left unanswered.
    const { client } = await start([[['d/a', 'd/b'], ['d/c']]], (_, socket) => {
      if (verbs().filter((verb) => verb === 'LIST PAGED').length < 2) return false;
      socket.end();
      return true;
    });
    const error = await downloadTree(client, 'd', join(base, 't')).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((error as Error).message).toMatch(/^\d of \d files were not downloaded: /);
  });

  test('the connection closed with no download in flight and a page still due: the loss is the error, not a success', async () => {
    // The second pass's page 2 is never answered; the client is closed once d/a is in (an abort).
    const { client } = await start([[['d/a'], ['d/b']], [['d/a'], null]]);
    const error = await downloadTree(client, 'd', join(base, 't'), { onFile: () => client.close() }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect(readTree(join(base, 't'))).toEqual({ a: 'content of d/a\n' });
  });

  test('a listing that fails while the connection is up is the error, as it is', async () => {
    const { client } = await start([[['d/a'], ['d/a']]]);
    await expect(downloadTree(client, 'd', join(base, 't'))).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('a second pass whose page fails while the connection is up: that error, after the downloads cleaned up', async () => {
    const { client } = await start([
      [['d/a'], ['d/b']],
      [['d/a'], ['d/a']],
    ]);
    await expect(downloadTree(client, 'd', join(base, 't'))).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(readTree(base)).toEqual({ 't/a': 'content of d/a\n' });
  });
});
