import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient, downloadTree, uploadTree } from '../../src/client/index';
import { RxferError } from '../../src/errors/rxfer-error';
import { fakePagingServer, listReply, sendServed } from '../helpers/fake-paging-server';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Issue 17: `put -r` and `get -r` hold one page of the server's listing at a time, not the tree's
 * plan. With pages of PAGE entries and a tree of several pages, the order of requests shows it: the
 * old client listed every page before its first transfer; this one checks every name first (all
 * pages of a first pass, before any write), then transfers page by page, so transfers come before
 * the last page is asked for. No timing, no memory figures: the order alone fails a client that
 * went back to collecting the whole listing.
 */

const PAGE = 40;
const FOLDERS = 3;
const PER_FOLDER = 200;
const FILES = FOLDERS * PER_FOLDER;

const contentOf = (i: number, round = 0) => Buffer.from(`file ${i} round ${round}\n`);

/** What the client asked for, in order: `page <n>` for each listing page it received, `send`/`fetch <name>` for each transfer. */
const recordRequests = (client: RxferClient): string[] => {
  const log: string[] = [];
  const listPages = client.listPages.bind(client);
  client.listPages = async function* (folder, shape) {
    for await (const page of listPages(folder, shape)) {
      log.push(`page ${page.entries.length}`);
      yield page;
    }
  };
  // put -r sends small files by uploadBatched (one BATCH for many), larger ones by upload.
  const uploadBatched = client.uploadBatched.bind(client);
  client.uploadBatched = (name, data) => {
    log.push(`send ${name}`);
    return uploadBatched(name, data);
  };
  // get -r asks for small files in groups (downloadFiles), larger ones one by one (download).
  const download = client.download.bind(client);
  client.download = (name, path, options) => {
    log.push(`fetch ${name}`);
    return download(name, path, options);
  };
  const downloadFiles = client.downloadFiles.bind(client);
  client.downloadFiles = (items, options) => {
    for (const { remoteName } of items) log.push(`fetch ${remoteName}`);
    return downloadFiles(items, options);
  };
  return log;
};

const firstIndex = (log: readonly string[], prefix: string) => log.findIndex((line) => line.startsWith(prefix));
const lastIndex = (log: readonly string[], prefix: string) => log.length - 1 - [...log].reverse().findIndex((line) => line.startsWith(prefix));

describe('tree copies read the listing page by page (issue 17)', () => {
  let server: TestServer;
  let local: string;
  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: PAGE } } });
    local = join(server.scratch, 'tree');
    for (let i = 0; i < FILES; i++) {
      const folder = join(local, `d${Math.floor(i / PER_FOLDER)}`);
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, `f${String(i).padStart(3, '0')}.txt`), contentOf(i));
    }
  });
  afterAll(async () => {
    await server.close();
  });

  const connect = () => RxferClient.connect({ host: '127.0.0.1', port: server.port });

  test('put -r re-run: the server listing is read alongside the walk, and only changed files are sent', async () => {
    const first = await connect();
    await expect(uploadTree(first, local, 'up')).resolves.toMatchObject({ files: FILES, skipped: 0 });
    await first.quit();
    // One changed file near the start and one in the last folder: the second is found only on a later page.
    const changed = [1, FILES - 2];
    for (const i of changed) await writeFile(join(local, `d${Math.floor(i / PER_FOLDER)}`, `f${String(i).padStart(3, '0')}.txt`), contentOf(i, 1));
    const client = await connect();
    const log = recordRequests(client);
    try {
      await expect(uploadTree(client, local, 'up')).resolves.toMatchObject({ files: changed.length, skipped: FILES - changed.length });
    } finally {
      await client.quit();
    }
    expect(log.filter((line) => line.startsWith('page')).length).toBeGreaterThanOrEqual(Math.ceil(FILES / PAGE));
    expect(log.filter((line) => line.startsWith('send'))).toEqual(['send up/d0/f001.txt', `send up/d2/f${FILES - 2}.txt`]);
    // The first changed file went before the server's last page was asked for: not a whole listing first.
    expect(firstIndex(log, 'send')).toBeLessThan(lastIndex(log, 'page'));
    for (const i of changed) expect(await readFile(join(server.root, 'up', `d${Math.floor(i / PER_FOLDER)}`, `f${String(i).padStart(3, '0')}.txt`))).toEqual(contentOf(i, 1));
  });

  test('get -r: every page is checked before the first download, then downloads go page by page', async () => {
    const client = await connect();
    const log = recordRequests(client);
    const target = join(server.scratch, 'copy');
    try {
      await expect(downloadTree(client, 'up', target)).resolves.toMatchObject({ files: FILES, skipped: 0 });
    } finally {
      await client.quit();
    }
    const pages = Math.ceil(FILES / PAGE);
    const pageLines = log.map((line, at) => [line, at] as const).filter(([line]) => line.startsWith('page'));
    expect(pageLines.length).toBe(2 * pages);
    // First pass: every page, then the first download (names all checked before anything is written).
    expect(firstIndex(log, 'fetch')).toBeGreaterThan(pageLines[pages - 1]![1]);
    // Second pass: downloads of the first page before the last page is asked for.
    expect(firstIndex(log, 'fetch')).toBeLessThan(pageLines[2 * pages - 1]![1]);
    expect(log.filter((line) => line.startsWith('fetch')).length).toBe(FILES);
    for (const folder of await readdir(local)) {
      for (const name of await readdir(join(local, folder))) expect(await readFile(join(target, folder, name))).toEqual(await readFile(join(local, folder, name)));
    }
    await rm(target, { recursive: true, force: true });
  });

  test('put -r: a name the server would refuse, deep in the last folder, stops it before any file is sent', async () => {
    const bad = join(server.scratch, 'bad-tree');
    for (let i = 0; i < 2 * PAGE; i++) {
      await mkdir(join(bad, `d${i % 2}`), { recursive: true });
      await writeFile(join(bad, `d${i % 2}`, `f${i}.txt`), contentOf(i));
    }
    await writeFile(join(bad, 'd1', 'zz\\back.txt'), 'refused\n');
    const client = await connect();
    const log = recordRequests(client);
    try {
      const failure = await uploadTree(client, bad, 'bad').catch((err: unknown) => err);
      expect((failure as RxferError).code).toBe('NAME_INVALID');
    } finally {
      await client.quit();
    }
    // The listing's first page is asked for before the walk (built while the tree is walked); no file is sent.
    expect(log.filter((line) => !line.startsWith('page'))).toEqual([]);
    expect(log.length).toBeLessThanOrEqual(1);
    expect(await readdir(server.root)).not.toContain('bad');
  });
});

/**
 * A fake server that pages: `pages` are listed one after the other (LIST PAGED, then LIST AFTER),
 * and any DOWNLOAD gets SERVED. It records the requests it gets.
 */
const pagingServer = async (pages: readonly (readonly string[])[]) => {
  const requests: string[] = [];
  const server = await fakePagingServer(() => {
    let served = 0;
    return ({ verb }, socket) => {
      requests.push(verb);
      if (verb.startsWith('LIST')) {
        if (verb === 'LIST PAGED') served = 0;
        const names = pages[served++] ?? [];
        socket.write(listReply(names, served < pages.length));
      } else if (verb === 'DOWNLOAD') sendServed(socket);
    };
  });
  return { requests, ...server };
};

describe('get -r against a server that lists in pages', () => {
  let base: string;
  beforeEach(async () => {
    const { mkdtemp } = await import('node:fs/promises');
    base = await mkdtemp(join((await import('node:os')).tmpdir(), 'rxfer-tree-pages-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const copy = async (pages: readonly (readonly string[])[]) => {
    const server = await pagingServer(pages);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const result = await downloadTree(client, 'dir', join(base, 'out')).catch((err: unknown) => err);
      return { result, requests: server.requests };
    } finally {
      client.close();
      await server.close();
    }
  };

  const page = (from: number, count: number) => Array.from({ length: count }, (_, i) => `dir/f${String(from + i).padStart(4, '0')}`);

  test.each([
    ['a name that climbs out', 'dir/../escape', 'NAME_INVALID'],
    ['a name outside the folder asked for', 'other/x', 'NAME_INVALID'],
    ['a name from an earlier page again', 'dir/f0001', 'PROTOCOL_VIOLATION'],
    ['a file of an earlier page as a folder', 'dir/f0009/below', 'NAME_INVALID'],
  ])('the last page lists %s: refused before anything is written', async (_what, name, code) => {
    const { result, requests } = await copy([page(0, 5), page(5, 5), [...page(10, 3), name].sort()]);
    expect(result).toBeInstanceOf(RxferError);
    expect((result as RxferError).code).toBe(code);
    expect(requests.filter((verb) => verb.startsWith('LIST'))).toEqual(['LIST PAGED', 'LIST AFTER', 'LIST AFTER']);
    expect(requests).not.toContain('DOWNLOAD');
    expect(await readdir(base)).toEqual([]);
  });

  test('pages in either storage order are accepted; a listing in neither is refused', async () => {
    // Segment by segment (local storage): a/x before a-b. UTF-8 bytes (S3): a-b before a/x.
    const bySegments = await copy([['dir/a/x'], ['dir/a-b']]);
    expect(bySegments.result).toMatchObject({ files: 2 });
    await rm(join(base, 'out'), { recursive: true, force: true });
    const byBytes = await copy([['dir/a-b'], ['dir/a/x']]);
    expect(byBytes.result).toMatchObject({ files: 2 });
    await rm(join(base, 'out'), { recursive: true, force: true });
    const neither = await copy([['dir/b'], ['dir/a']]);
    expect((neither.result as RxferError).code).toBe('PROTOCOL_VIOLATION');
    expect(neither.requests).not.toContain('DOWNLOAD');
  });
});
