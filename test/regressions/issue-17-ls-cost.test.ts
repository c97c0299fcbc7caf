import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RxferConfig } from '../../src/config/config.schema';
import { TOKENS } from '../../src/container/tokens';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import type { ListOptions, ListedFile } from '../../src/storage/storage-adapter';
import { ensureBuilt, rxfer } from '../helpers/cli';
import { CountingProxy } from '../helpers/counting-proxy';
import { startTestServer, type TestServer } from '../helpers/server';

/** The local adapter, counting the entries every LIST call hands back to the server. */
class CountingStorage extends LocalFsStorage {
  entriesListed = 0;

  override async list(prefix: string, options: ListOptions): Promise<ListedFile[]> {
    const listed = await super.list(prefix, options);
    this.entriesListed += listed.length;
    return listed;
  }
}

/**
 * Issue 17 (large trees), `rxfer ls` of one folder: it cost in proportion to everything *below*
 * the folder, because LIST is recursive and the CLI filtered the answer down to one level. With
 * LIST SHALLOW the server opens only the folder and sends only its entries. (The 12 s and 18 s
 * measured with scripts/large-trees.js were the harness: it kept the server's log piped into a
 * string it scanned again per chunk, so the server blocked writing its log.)
 * Counted, not timed: the entries the storage hands back, and the bytes the server sends.
 */
describe('issue 17: ls of one folder costs in proportion to that folder', () => {
  let server: TestServer;
  let storage: CountingStorage;
  let proxy: CountingProxy;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer({
      // Below the files under the folder: the old walk paged through them all (never TOO_LARGE).
      config: { limits: { maxListEntries: 250 } },
      customize: (container) => {
        container
          .rebind(TOKENS.Storage)
          .toResolvedValue((config: RxferConfig) => (storage = new CountingStorage(config.storage.root)), [TOKENS.Config])
          .inSingletonScope();
      },
    });
    // `top` holds 3 files and two subfolders with 600 files between them, and the root another 300.
    const add = (folder: string, count: number) => {
      mkdirSync(join(server.root, folder), { recursive: true });
      for (let i = 0; i < count; i++) writeFileSync(join(server.root, folder, `f${i}.bin`), 'x');
    };
    add('top', 3);
    add('top/big', 400);
    add('top/big/deeper', 200);
    add('elsewhere', 300);
    proxy = await CountingProxy.start(server.port);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  test('ls lists 3 files and 1 folder: the server lists 4 entries and sends a few hundred bytes', async () => {
    storage.entriesListed = 0;
    proxy.reset();
    const result = await rxfer(['ls', 'top', '-p', String(proxy.port)]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/).pop())).toEqual(['top/big/', 'top/f0.bin', 'top/f1.bin', 'top/f2.bin']);
    // Old: 603 entries walked and sent (≈ 40 KiB), in three pages.
    expect(storage.entriesListed).toBe(4);
    expect(proxy.bytes.down).toBeLessThan(2_000);
  }, 60_000);

  test('ls -r still shows everything below, through pages', async () => {
    storage.entriesListed = 0;
    const result = await rxfer(['ls', '-r', 'top', '--json', '-p', String(server.port)]);
    expect(result.code).toBe(0);
    const items = JSON.parse(result.stdout) as { name: string; type: string }[];
    expect(items.filter((item) => item.type === 'file')).toHaveLength(603);
    expect(items.filter((item) => item.type === 'folder').map((item) => item.name)).toEqual(['top/big', 'top/big/deeper']);
  }, 60_000);
});
