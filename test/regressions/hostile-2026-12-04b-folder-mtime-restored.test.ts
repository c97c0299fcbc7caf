import { mkdirSync, statSync, utimesSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile test of the sorted-entries cache of big folders (src/storage/sorted-folders.ts): it keeps
 * a folder's entries while the folder's inode and mtime are unchanged. An mtime is not a change
 * counter: `rsync -a`, `tar x`, `cp -a` and any utimes() set it back, and on kernels before 6.13
 * (coarse timestamps) two changes in one clock tick leave it equal. A file added in such a way
 * stayed out of every later LIST, not only of the listing in progress, until something else changed
 * the folder: a fresh `ls`, a `get -r`, minutes later, did not show a file that was there. (ctime,
 * which no caller can set, moves with every such change.)
 */
const BIG = 4200; // past the 4096 entries from which a folder's sorted entries are kept

describe('a big folder whose mtime is set back after a change', () => {
  let server: TestServer;
  let client: RxferClient;
  let folder: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: 1000 } } });
    folder = join(server.root, 'big');
    mkdirSync(folder);
    for (let i = 0; i < BIG; i++) writeFileSync(join(folder, `f-${String(i).padStart(5, '0')}`), 'x');
    // Whole seconds, as tar and rsync leave it (utimes() with a Date keeps milliseconds only).
    utimesSync(folder, new Date('2026-12-01T10:00:00Z'), new Date('2026-12-01T10:00:00Z'));
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  const names = async (): Promise<string[]> => (await client.list('big')).map((entry) => entry.name);

  test('a file added on disk (folder mtime restored, as rsync -a or tar would) is in the next LIST', async () => {
    expect(await names()).toHaveLength(BIG);
    const { atime, mtime } = statSync(folder);
    writeFileSync(join(folder, 'm-added-on-disk'), 'new');
    utimesSync(folder, atime, mtime);
    expect(await names()).toContain('big/m-added-on-disk');
  });

  test('a file renamed on disk (folder mtime restored) is listed under its new name', async () => {
    expect(await names()).toContain('big/f-00007');
    const { atime, mtime } = statSync(folder);
    renameSync(join(folder, 'f-00007'), join(folder, 'z-renamed'));
    utimesSync(folder, atime, mtime);
    const listed = await names();
    expect(listed).not.toContain('big/f-00007');
    expect(listed).toContain('big/z-renamed');
  });
});
