import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient, downloadTree, uploadTree } from '../../src/client/index';
import { RxferError } from '../../src/errors/rxfer-error';
import { SERVED, fakePagingServer, listReply, sendServed } from '../helpers/fake-paging-server';
import { TestServer, startTestServer } from '../helpers/server';


/**
 * A fake paging server whose listing changes between `get -r`'s two passes: each `LIST PAGED` starts
 * the next of `passes` (the last one repeats). Any DOWNLOAD gets SERVED.
 */
const twoFacedServer = async (passes: readonly (readonly (readonly string[])[])[]) => {
  const requests: string[] = [];
  let pass = -1;
  const server = await fakePagingServer(() => {
    let served = 0;
    let pages: readonly (readonly string[])[] = [];
    return ({ verb, args }, socket) => {
      requests.push(`${verb} ${args.join(' ')}`.trim());
      if (verb.startsWith('LIST')) {
        if (verb === 'LIST PAGED') {
          pass = Math.min(pass + 1, passes.length - 1);
          pages = passes[pass]!;
          served = 0;
        }
        const names = pages[served++] ?? [];
        socket.write(listReply(names, served < pages.length));
      } else if (verb === 'DOWNLOAD') sendServed(socket);
    };
  });
  return { requests, ...server };
};

describe('hostile 2026-12-04: get -r against a server that lists other names the second time', () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-hostile-passes-'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const copy = async (passes: readonly (readonly (readonly string[])[])[]) => {
    const server = await twoFacedServer(passes);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const result = await downloadTree(client, 'dir', join(base, 'out', 'inner')).catch((err: unknown) => err);
      return { result, requests: server.requests };
    } finally {
      client.close();
      await server.close();
    }
  };
  const clean = [['dir/a0', 'dir/a1', 'dir/a2'], ['dir/b0', 'dir/b1']];
  const downloads = (requests: readonly string[]) => requests.filter((line) => line.startsWith('DOWNLOAD')).map((line) => line.slice('DOWNLOAD '.length));

  test.each([
    ['a name that climbs out', 'dir/b0/../../../escape', 'NAME_INVALID'],
    // '/etc/escape' sorts before the name the page was asked after: the page goes backwards, and the
    // paging check refuses it before its names are judged (the promise is the same: nothing written).
    ['an absolute name', '/etc/escape', 'PROTOCOL_VIOLATION'],
    ['a name outside the folder asked for', 'other/escape', 'NAME_INVALID'],
  ])('the second pass lists %s on a later page: refused, nothing of it requested or written, nothing outside the target', async (_what, hostile, code) => {
    const { result, requests } = await copy([clean, [clean[0]!, ['dir/b0', hostile]]]);
    expect(result).toBeInstanceOf(RxferError);
    expect((result as RxferError).code).toBe(code);
    // The first page of the second pass may have been copied; the page with the hostile name not at all.
    expect(downloads(requests).filter((name) => !clean[0]!.includes(name))).toEqual([]);
    expect(await readdir(base)).toEqual(['out']);
    expect(await readdir(join(base, 'out'))).toEqual(['inner']);
    expect((await readdir(join(base, 'out', 'inner'))).sort()).not.toContain('escape');
  });

  test('the second pass lists a file of its first page as a folder on a later page: refused, the file left a file', async () => {
    const { result, requests } = await copy([clean, [clean[0]!, ['dir/a0/below']]]);
    expect(result).toBeInstanceOf(RxferError);
    expect(downloads(requests)).not.toContain('dir/a0/below');
    const a0 = join(base, 'out', 'inner', 'a0');
    expect((await stat(a0)).isFile()).toBe(true);
    expect((await readFile(a0)).equals(SERVED)).toBe(true);
  });

  test('the second pass lists a name of its first page again on a later page: refused, not downloaded twice', async () => {
    const { result, requests } = await copy([clean, [clean[0]!, ['dir/a1']]]);
    expect((result as RxferError).code).toBe('PROTOCOL_VIOLATION');
    expect(downloads(requests).filter((name) => name === 'dir/a1').length).toBeLessThanOrEqual(1);
  });

  test('a first pass with a folder where the second has a file of that name (and the reverse): refused or copied, never a file under a file', async () => {
    const { result } = await copy([[['dir/a0/x'], ['dir/b0']], [['dir/a0'], ['dir/a0/x']]]);
    expect(result).toBeInstanceOf(RxferError);
    const a0 = join(base, 'out', 'inner', 'a0');
    expect((await stat(a0)).isFile()).toBe(true);
  });
});

describe('hostile 2026-12-04: put -r re-run skips only identical files, at page boundaries too', () => {
  const PAGE = 4;
  let server: TestServer;
  let client: RxferClient;
  beforeEach(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: PAGE } } });
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    await client.quit().catch(() => client.close());
    await server.close();
  });

  test('files changed (same size) on either side of each page boundary, in subfolders and under NFD names, are all sent again', async () => {
    const tree = join(server.scratch, 'tree');
    // Depth first by name: a/, a-b, a.txt, b/… interleave files and folders across pages of 4.
    const names = ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'a-b', 'a.txt', 'b/x/1', 'b/x/2', 'b/y', 'c', 'e\u0301.txt', 'f', 'g', 'z/\u00e9/q'];
    const contentOf = (name: string, round: number) => Buffer.from(`${name.normalize('NFC')} round ${round}`.padEnd(40, '.'));
    for (const name of names) {
      await mkdir(join(tree, name, '..'), { recursive: true });
      await writeFile(join(tree, name), contentOf(name, 0));
    }
    expect(await uploadTree(client, tree, 'up')).toMatchObject({ files: names.length, skipped: 0 });
    // Every other file changes, keeping its size: the listing's size alone cannot tell.
    const changed = names.filter((_, i) => i % 2 === 1);
    for (const name of changed) await writeFile(join(tree, name), contentOf(name, 1));
    const again = await uploadTree(client, tree, 'up');
    expect(again).toMatchObject({ files: changed.length, skipped: names.length - changed.length });
    for (const [i, name] of names.entries()) {
      expect((await readFile(join(server.root, 'up', name.normalize('NFC')))).equals(contentOf(name, i % 2))).toBe(true);
    }
  });
});
