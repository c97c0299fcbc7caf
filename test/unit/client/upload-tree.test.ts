import fs = require('node:fs');
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../../src/client/rxfer-client';
import { uploadTree } from '../../../src/client/upload-tree';
import { FileWindow } from '../../../src/client/file-window';
import type { TransferResult } from '../../../src/client/client-options';
import { RxferError } from '../../../src/errors/rxfer-error';
import { startTestServer, type TestServer } from '../../helpers/server';
import { readTree, writeTree } from './support/tree-files';

/**
 * put -r (src/client/upload-tree.ts) against the real server on 127.0.0.1, on small real trees:
 * where each file lands, what a bad name or a missing folder stops before anything is sent, that one
 * failing file does not stop the others (and the error names it), which request each size goes
 * by, and how much is in flight at once. Listing pages of 3 entries, so a re-run reads several.
 */

const MiB = 1024 * 1024;
let server: TestServer;
let local: string;
let client: RxferClient;
beforeAll(async () => {
  server = await startTestServer({ config: { limits: { maxListEntries: 3 } } });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  local = mkdtempSync(join(server.scratch, 'put-'));
  client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
});
afterEach(async () => {
  if (!client.isClosed) await client.quit();
  rmSync(local, { recursive: true, force: true });
  // Retried: after a test that closes the connection, the server (in this process) may still be
  // committing a file there. Asynchronously: rmSync's retries block the event loop, so the server
  // could not finish, and each folder's retries added up to minutes.
  await rm(join(server.root, 'up'), { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  rmSync(join(server.root, 'top.txt'), { force: true });
});

const TREE = { 'a.txt': 'aaa', 'sub/b.txt': 'bb', 'sub/deep/c.txt': 'c', 'z.txt': 'zzzz' };

test('every file lands as folder/<relative path> (trailing slashes dropped), with its bytes, each told to onFile', async () => {
  writeTree(local, TREE);
  const told: [string, number][] = [];
  const result = await uploadTree(client, local, 'up//', { onFile: (name, { size }) => told.push([name, size]) });
  expect(result).toEqual({ files: 4, bytes: 10, skipped: 0 });
  expect(readTree(join(server.root, 'up'))).toEqual(TREE);
  expect(told.sort()).toEqual([['up/a.txt', 3], ['up/sub/b.txt', 2], ['up/sub/deep/c.txt', 1], ['up/z.txt', 4]]);
});

test('into a folder of a folder: the folder`s own slashes are kept, only trailing ones dropped', async () => {
  writeTree(local, { 'x.txt': 'x' });
  await expect(uploadTree(client, local, 'up/in/')).resolves.toMatchObject({ files: 1 });
  expect(readTree(join(server.root, 'up'))).toEqual({ 'in/x.txt': 'x' });
});

test('to the top of the store (folder ""), files keep their relative names', async () => {
  writeTree(local, { 'top.txt': 'top' });
  await expect(uploadTree(client, local, '')).resolves.toEqual({ files: 1, bytes: 3, skipped: 0 });
  expect(readTree(server.root)).toMatchObject({ 'top.txt': 'top' });
});

test('a re-run sends only what changed, reading the listing page by page; skipIdentical: false sends all', async () => {
  const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}/x.txt`, `file ${i}`]));
  writeTree(local, many);
  await uploadTree(client, local, 'up');
  writeTree(local, { 'f0/x.txt': 'changed 0', 'f8/x.txt': 'changed 8' });
  await expect(uploadTree(client, local, 'up')).resolves.toEqual({ files: 2, bytes: 18, skipped: 8 });
  expect(readTree(join(server.root, 'up'))).toMatchObject({ 'f0/x.txt': 'changed 0', 'f8/x.txt': 'changed 8', 'f5/x.txt': 'file 5' });
  await expect(uploadTree(client, local, 'up', { skipIdentical: false })).resolves.toMatchObject({ files: 10, skipped: 0 });
});

test('one name the server would refuse: NAME_INVALID naming the file, and nothing is sent', async () => {
  writeTree(local, { 'a.txt': 'a', 'sub/bad.': 'x', 'z.txt': 'z' });
  const error = await uploadTree(client, local, 'up').catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'NAME_INVALID', message: expect.stringContaining(`${join(local, 'sub', 'bad.')} cannot be sent: `) });
  expect(readTree(join(server.root, 'up'))).toEqual({});
  // The listing asked for before the walk was answered and read in its turn: the connection goes on in step.
  await client.uploadBuffer('up/after.txt', Buffer.from('after'));
  expect(readTree(join(server.root, 'up'))).toEqual({ 'after.txt': 'after' });
});

test('a folder that is not there: LOCAL_IO naming it', async () => {
  const missing = join(local, 'missing');
  await expect(uploadTree(client, missing, 'up')).rejects.toMatchObject({ code: 'LOCAL_IO', message: `cannot read ${missing}: no such file or folder (ENOENT)` });
});

test('a file with a bad name added between the two walks fails alone; the others are sent', async () => {
  writeTree(local, TREE);
  // batchLimits is read between the walks (to size the windows the second one fills), once.
  const limits = client.batchLimits;
  Object.defineProperty(client, 'batchLimits', {
    get: () => {
      writeFileSync(join(local, 'sub', 'late.'), 'late');
      return limits;
    },
  });
  const error = await uploadTree(client, local, 'up').catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'NAME_INVALID', detail: { failed: 1, files: 5 } });
  expect((error as Error).message).toMatch(/^1 of 5 files were not stored: .*late\. cannot be sent/);
  expect(readTree(join(server.root, 'up'))).toEqual(TREE);
});

test('a file gone before it could be looked at fails alone, as LOCAL_IO naming it', async () => {
  writeTree(local, TREE);
  const gone = join(local, 'sub', 'b.txt');
  const lstatSync = fs.lstatSync;
  const spy = jest.spyOn(fs, 'lstatSync').mockImplementation(((path: fs.PathLike, options?: fs.StatSyncOptions) => {
    if (String(path) === gone) throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${gone}'`), { code: 'ENOENT' });
    return lstatSync(path, options);
  }) as typeof fs.lstatSync);
  try {
    const error = await uploadTree(client, local, 'up', { skipIdentical: false }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'LOCAL_IO', detail: { failed: 1, files: 4 } });
    expect((error as Error).message).toBe(`1 of 4 files were not stored: cannot read ${gone}: no such file or folder (ENOENT)`);
  } finally {
    spy.mockRestore();
  }
  const { 'sub/b.txt': _, ...rest } = TREE;
  expect(readTree(join(server.root, 'up'))).toEqual(rest);
});

test('a file written to between its lstat and its read (no digest cache): the bytes read are sent, counted and told to onFile', async () => {
  // 70 files of 256 KiB: the window's 16 MiB holds the last six back until a first file is done (with
  // or without BATCH), so onFile's first call comes after every file's lstat (one group of checks)
  // and before those six are read.
  const names = Array.from({ length: 70 }, (_, i) => `f-${String(i).padStart(3, '0')}.txt`);
  const old = 'old'.padEnd(256 * 1024, '.');
  writeTree(local, Object.fromEntries(names.map((name) => [name, old])));
  const late = names.slice(64);
  const told: string[] = [];
  const result = await uploadTree(client, local, 'up', {
    onFile: (name) => {
      if (told.length === 0) for (const name of late) writeFileSync(join(local, name), 'new');
      told.push(name);
    },
  });
  expect(result).toEqual({ files: 70, bytes: 64 * old.length + 6 * 3, skipped: 0 });
  expect(told.sort()).toEqual(names.map((name) => `up/${name}`));
  const stored = readTree(join(server.root, 'up'));
  for (const name of late) expect(stored[name]).toBe('new');
});

test('a small file grown past 1 MiB between its lstat and its read is streamed from its path, not read into a buffer of its new size', async () => {
  // Hostile pass x: read whole, such a file took a buffer the size of whatever it had become (a log
  // grown to gigabytes, a file swapped for a big one). Grown here right after the walk looked at it.
  writeTree(local, TREE);
  const grows = join(local, 'sub', 'b.txt');
  const big = Buffer.alloc(3 * MiB, 'g');
  const lstatSync = fs.lstatSync;
  const spy = jest.spyOn(fs, 'lstatSync').mockImplementation(((path: fs.PathLike, options?: fs.StatSyncOptions) => {
    const seen = lstatSync(path, options);
    if (String(path) === grows) writeFileSync(grows, big);
    return seen;
  }) as typeof fs.lstatSync);
  const sent: string[] = [];
  const { upload, uploadBatched } = client;
  client.upload = (path, remote, options) => (sent.push(`upload ${remote} ${JSON.stringify(options)}`), upload.call(client, path, remote, options));
  client.uploadBatched = (remote, data) => (sent.push(`batched ${remote}`), uploadBatched.call(client, remote, data));
  try {
    await expect(uploadTree(client, local, 'up', { skipIdentical: false })).resolves.toEqual({ files: 4, bytes: 3 + 1 + 4 + big.length, skipped: 0 });
    // resume: false is passed on to the streamed upload as to any other.
    writeFileSync(grows, 'b');
    await expect(uploadTree(client, local, 'up2', { skipIdentical: false, resume: false })).resolves.toMatchObject({ files: 4 });
  } finally {
    spy.mockRestore();
  }
  expect(sent.filter((line) => line.includes('/sub/b.txt'))).toEqual(['upload up/sub/b.txt {"resume":true}', 'upload up2/sub/b.txt {"resume":false}']);
  await rm(join(server.root, 'up2'), { recursive: true, force: true });
  expect(readFileSync(join(server.root, 'up', 'sub', 'b.txt')).equals(big)).toBe(true);
  expect(readTree(join(server.root, 'up'))).toMatchObject({ 'a.txt': 'aaa', 'sub/deep/c.txt': 'c', 'z.txt': 'zzzz' });
});

describe('abandoned through options.signal (the CLI`s Ctrl-C, which also closes the connection)', () => {
  /** Counts the folders the walk reads (readdir, as local-tree-walk.ts calls it). */
  const countingFolderReads = () => {
    const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
    const readdir = fsp.readdir;
    const counter = { count: 0, restore: () => spy.mockRestore() };
    const spy = jest.spyOn(fsp, 'readdir').mockImplementation(((...args: Parameters<typeof readdir>) => (counter.count++, readdir(...args))) as typeof readdir);
    return counter;
  };
  // 2,000 files in 20 folders: more than the 256 small files in flight at once, so the walk waits for replies.
  const FILES = 2000;
  const twentyFolders = () => writeTree(local, Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`d${String(Math.floor(i / 100)).padStart(2, '0')}/f${String(i).padStart(4, '0')}`, `file ${i}`])));

  test('mid-way: the rest of the tree is not walked; the error says what was stored, and each stored file is whole', async () => {
    twentyFolders();
    const folderReads = countingFolderReads();
    const abandon = new AbortController();
    let error: unknown;
    try {
      const onFile = () => {
        abandon.abort();
        client.close();
      };
      error = await uploadTree(client, local, 'up', { skipIdentical: false, signal: abandon.signal, onFile }).catch((err: unknown) => err);
    } finally {
      folderReads.restore();
    }
    expect(error).toMatchObject({ code: 'CONNECTION_LOST', message: expect.stringMatching(/^put -r abandoned: \d+ files stored before it, each whole; the rest not sent$/) });
    const { stored } = (error as { detail: { stored: number } }).detail;
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(FILES);
    // Both walks read 21 folders each when they went to the end (the second only to count what it did not send).
    expect(folderReads.count).toBeLessThan(2 * 21);
    const landed = readTree(join(server.root, 'up'));
    expect(Object.keys(landed).length).toBeGreaterThanOrEqual(stored);
    for (const [name, text] of Object.entries(landed)) expect(text).toBe(`file ${Number(/f(\d+)$/.exec(name)![1])}`);
  });

  test('before anything is sent: abandoned at once, its first walk stopped at the first file, nothing stored', async () => {
    twentyFolders();
    const abandon = new AbortController();
    abandon.abort();
    const folderReads = countingFolderReads();
    try {
      await expect(uploadTree(client, local, 'up', { signal: abandon.signal })).rejects.toMatchObject({ code: 'CONNECTION_LOST', detail: { stored: 0, bytes: 0 } });
    } finally {
      folderReads.restore();
    }
    // The top folder and the first of its 20, to find the first file; none of the others.
    expect(folderReads.count).toBe(2);
    expect(readTree(join(server.root, 'up'))).toEqual({});
  });
});

test('a file the server refuses fails alone, with the server`s code; the others are stored', async () => {
  writeTree(join(server.root, 'up'), { 'x/inner': 'a folder on the server where a file is sent' });
  writeTree(local, { 'a.txt': 'a', x: 'x', 'z.txt': 'z' });
  const error = await uploadTree(client, local, 'up').catch((err: unknown) => err);
  expect(error).toMatchObject({ detail: { failed: 1, files: 3 }, message: expect.stringMatching(/^1 of 3 files were not stored: /) });
  expect(readTree(join(server.root, 'up'))).toEqual({ 'a.txt': 'a', 'x/inner': 'a folder on the server where a file is sent', 'z.txt': 'z' });
});

describe('which request each file goes by (the client`s upload calls recorded, nothing sent)', () => {
  type Call = readonly [string, string, unknown?];
  /** Replaces the upload calls of `client` with recorders that answer after a turn of the event loop. */
  const record = (resumableFromBytes: number | undefined) => {
    const calls: Call[] = [];
    let inFlight = 0;
    let most = 0;
    const answer = (size: number): Promise<TransferResult> => {
      most = Math.max(most, ++inFlight);
      return new Promise((resolve) =>
        setImmediate(() => {
          inFlight--;
          resolve({ size, digest: '' } as unknown as TransferResult);
        }),
      );
    };
    client.uploadBatched = (name, data) => {
      calls.push(['batched', name]);
      return answer(data.length);
    };
    client.uploadBuffer = (name, data) => {
      calls.push(['buffer', name]);
      return answer(data.length);
    };
    client.upload = (path, name, options) => {
      calls.push(['upload', name, options]);
      return answer(fs.statSync(path).size);
    };
    client.keptUpload = async (name) => {
      calls.push(['kept?', name]);
      return null;
    };
    Object.defineProperty(client, 'resumableFromBytes', { value: resumableFromBytes });
    return { calls, most: () => most };
  };
  const sized = (name: string, size: number) => {
    writeFileSync(join(local, name), '');
    truncateSync(join(local, name), size);
  };

  test('up to 64 KiB batched; up to 1 MiB read whole and pipelined; up to 64 MiB streamed pipelined, asking what was kept first when resumable; beyond, a plain upload', async () => {
    sized('0-batched', 64 * 1024);
    sized('a-whole', 64 * 1024 + 1);
    sized('a-whole-max', MiB);
    sized('b-pipelined', MiB + 1);
    sized('c-resumable', MiB + 2);
    sized('d-pipelined-max', 64 * MiB);
    sized('e-plain', 64 * MiB + 1);
    const { calls } = record(MiB + 2);
    await expect(uploadTree(client, local, 'up', { skipIdentical: false })).resolves.toEqual({ files: 7, bytes: 131 * MiB + 128 * 1024 + 5, skipped: 0 });
    // A file read whole is sent once read: its call may come after the others'.
    expect([...calls].sort(([a, x], [b, y]) => (x === y ? (a! < b! ? -1 : 1) : x! < y! ? -1 : 1))).toEqual([
      ['batched', 'up/0-batched'],
      ['buffer', 'up/a-whole'],
      ['buffer', 'up/a-whole-max'],
      ['upload', 'up/b-pipelined', { resume: true, kept: null, pipelined: true }],
      ['kept?', 'up/c-resumable'],
      ['upload', 'up/c-resumable', { resume: true, kept: null, pipelined: true }],
      ['kept?', 'up/d-pipelined-max'],
      ['upload', 'up/d-pipelined-max', { resume: true, kept: null, pipelined: true }],
      ['upload', 'up/e-plain', { resume: undefined }],
    ]);
  });

  test('resume: false is passed on, and nothing kept is asked for', async () => {
    sized('b-pipelined', MiB + 1);
    sized('e-plain', 64 * MiB + 1);
    const { calls } = record(0);
    await uploadTree(client, local, 'up', { skipIdentical: false, resume: false });
    expect(calls).toEqual([
      ['upload', 'up/b-pipelined', { resume: false, kept: null, pipelined: true }],
      ['upload', 'up/e-plain', { resume: false }],
    ]);
  });

  test('a file read whole is counted against the window at its size, a streamed one is not', async () => {
    sized('a-whole', MiB);
    sized('b-streamed', MiB + 1);
    record(undefined);
    const add = jest.spyOn(FileWindow.prototype, 'add');
    try {
      await uploadTree(client, local, 'up', { skipIdentical: false });
      expect(add.mock.calls.map(([, bytes]) => bytes)).toEqual([MiB, 0]);
    } finally {
      add.mockRestore();
    }
  });

  test('16 files of 1 MiB read whole may be in flight at once (the window holds 16 MiB)', async () => {
    for (let i = 0; i < 20; i++) sized(`whole-${String(i).padStart(2, '0')}`, MiB);
    // Each upload is held until 16 are in flight (or every file has started): a window smaller
    // than 16 MiB never gets there, and the test ends at its timeout.
    const held: (() => void)[] = [];
    let started = 0;
    client.uploadBatched = (_name, data) =>
      new Promise<TransferResult>((resolve) => {
        started++;
        held.push(() => resolve({ size: data.length } as unknown as TransferResult));
        if (held.length === 16 || started === 20) for (const release of held.splice(0)) release();
      });
    await expect(uploadTree(client, local, 'up', { skipIdentical: false })).resolves.toMatchObject({ files: 20, bytes: 20 * MiB });
  });

  test('with BATCH, four batches of small files may be in flight at once (a window of 4 × batch-files)', async () => {
    const { files } = client.batchLimits!;
    const count = 4 * files + 10;
    writeTree(local, Object.fromEntries(Array.from({ length: count }, (_, i) => [`small-${String(i).padStart(4, '0')}`, 'x'])));
    // As above: each upload is held until four batches' worth are in flight; a smaller window never gets there.
    const held: (() => void)[] = [];
    let started = 0;
    client.uploadBatched = (_name, data) =>
      new Promise<TransferResult>((resolve) => {
        started++;
        held.push(() => resolve({ size: data.length } as unknown as TransferResult));
        if (held.length === 4 * files || started === count) for (const release of held.splice(0)) release();
      });
    await expect(uploadTree(client, local, 'up', { skipIdentical: false })).resolves.toMatchObject({ files: count });
  });
});

test('the connection lost midway: the files in flight fail, the rest are counted as not sent', async () => {
  const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${String(i).padStart(3, '0')}`, `file ${i}`]));
  writeTree(local, many);
  let reported = 0;
  const onFile = () => {
    reported++;
    client.close();
  };
  const error = await uploadTree(client, local, 'up', { skipIdentical: false, onFile }).catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', detail: { files: 300 } });
  expect((error as Error).message).toMatch(/^\d+ of 300 files were not stored: (.*; )?\d+ not sent once the connection was lost$/);
  // Every file is told once: stored (onFile), failed in flight, or not sent (the second batch of 256 among them).
  const { failed } = (error as { detail: { failed: number } }).detail;
  expect(reported + failed).toBe(300);
  expect(Number(/(\d+) not sent once/.exec((error as Error).message)![1])).toBeGreaterThanOrEqual(44);
});

test('the connection lost with no request in flight: the files not sent are an error, not a success', async () => {
  // Found by these tests: put -r returned { files: 70 } with files never sent, when every request in
  // flight had been answered before the loss (no failure to report, only files left unsent).
  writeTree(local, Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`f${String(i).padStart(2, '0')}`, 'x'])));
  client.uploadBatched = async (_name, data) => {
    client.close();
    return { size: data.length } as unknown as TransferResult;
  };
  let reported = 0;
  const error = await uploadTree(client, local, 'up', { skipIdentical: false, onFile: () => reported++ }).catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', detail: { files: 70 } });
  expect((error as Error).message).toMatch(/^(\d+) of 70 files were not stored: \1 not sent once the connection was lost$/);
  expect(reported + (error as { detail: { failed: number } }).detail.failed).toBe(70);
});

describe('the server`s listing lost with the connection (listPages replaced: page 2 closes the client and fails)', () => {
  const LOST = () => new RxferError('CONNECTION_LOST', 'the listing page was lost');
  const names = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${String(i).padStart(3, '0')}`, 'x']));
  /** Page 1 holds `names` with more after them; asking for page 2 (ahead, once half of page 1 is found) closes the client and fails. */
  const losePage2 = (...names: string[]) => {
    client.listPages = async function* () {
      yield { entries: names.map((name) => ({ name, size: 5, mtimeMs: 0 })), more: true };
      client.close();
      throw LOST();
    };
  };

  test('before any file failed: the loss is the error, as it is', async () => {
    writeTree(local, names(5));
    losePage2('up/f001');
    await expect(uploadTree(client, local, 'up')).rejects.toMatchObject({ code: 'CONNECTION_LOST', message: 'the listing page was lost' });
  });

  test('after files failed: those failures are the error, the loss only ends the copy', async () => {
    // The first batch (256 files) is checked against page 1 alone and fails on the wire; the
    // second finds the rest of page 1 (so page 2 is asked for ahead) and then needs page 2.
    writeTree(local, names(300));
    losePage2('up/f255', 'up/f256', 'up/f257');
    client.uploadBatched = async () => {
      throw new RxferError('NO_SPACE', 'refused');
    };
    const error = await uploadTree(client, local, 'up').catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'NO_SPACE', detail: { failed: 256, files: 256 } });
  });
});

test('the connection lost while a re-run reads the listing: the later batches are counted as not sent, not read', async () => {
  const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${String(i).padStart(3, '0')}`, `file ${i}`]));
  writeTree(local, many);
  await uploadTree(client, local, 'up');
  // 128 KiB each: the window's 16 MiB holds the rest of the first group back until a file is done, so
  // the connection is lost before the second group (a window of 256 files would let the walk reach it).
  writeTree(local, Object.fromEntries(Object.keys(many).map((name) => [name, 'changed'.padEnd(128 * 1024, '.')])));
  // Listing pages of 3: the second group would read the pages after f255, on a closed connection.
  const error = await uploadTree(client, local, 'up', { onFile: () => client.close() }).catch((err: unknown) => err);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', detail: { files: 300 } });
});
