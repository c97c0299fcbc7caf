import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadTree } from '../../src/client/download-tree';
import { RxferClient } from '../../src/client/rxfer-client';
import { eventually, startTestServer, type TestServer } from '../helpers/server';
import { untilSettled } from '../helpers/settled';

/**
 * `get -r` run again over files put into the storage folder by other means (cp, rsync, a restore).
 * Before: no LIST ever had their digests (the server recorded a digest on a commit, a STAT, or a
 * large file's DOWNLOAD, not a small file's), so each re-run fetched every small file again, the
 * server reading and sending all of it. Now a DOWNLOAD records the digest it computed, for a version
 * whose last change (ctime) is two seconds old (a write in the same tick of the file system's clock
 * would leave size, mtime and inode as recorded: DigestIndex.rememberHashed), and the re-run compares.
 */

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const KiB = 1024;

describe('get -r run again over files put there by other means', () => {
  let server: TestServer;
  let client: RxferClient;
  let local: string;

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    local = mkdtempSync(join(tmpdir(), 'rxfer-rerun-other-means-'));
  });

  afterEach(async () => {
    client.close();
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });

  /** Writes `data` as `name` under the storage root, last changed `agoMs` ago. */
  const putByOtherMeans = (name: string, data: Buffer, agoMs: number): void => {
    const path = join(server.root, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, data);
    const when = new Date(Date.now() - agoMs);
    utimesSync(path, when, when);
  };

  const digestsListed = async (folder: string): Promise<Record<string, string | undefined>> =>
    Object.fromEntries((await client.list(folder)).map((entry) => [entry.name, entry.digest]));

  test('the first run records the digests it sent; the second fetches nothing it has, and a file changed since again', async () => {
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 40; i++) files.set(`t/s${i}.bin`, randomBytes(4 * KiB + i));
    files.set('t/sub/mid.bin', randomBytes(200 * KiB));
    files.set('t/sub/edge.bin', randomBytes(64 * KiB));
    for (const [name, data] of files) putByOtherMeans(name, data, 60_000);
    await untilSettled();
    expect(Object.values(await digestsListed('t')).filter((digest) => digest !== undefined)).toEqual([]);

    expect(await downloadTree(client, 't', local)).toEqual({ files: files.size, bytes: [...files.values()].reduce((sum, data) => sum + data.length, 0), skipped: 0 });
    // Recorded in the background, a moment after each reply.
    const expected = Object.fromEntries([...files].map(([name, data]) => [name, sha256(data)]));
    await eventually(async () => {
      const listed = await digestsListed('t');
      return Object.entries(expected).every(([name, digest]) => listed[name] === digest);
    }, 5000, 'the digests in the listing');
    expect(await digestsListed('t')).toEqual(expected);

    // Changed by other means, same size, an older time: a new version, no record; fetched again.
    const changed = randomBytes(files.get('t/s7.bin')!.length);
    putByOtherMeans('t/s7.bin', changed, 120_000);
    expect(await downloadTree(client, 't', local)).toEqual({ files: 1, bytes: changed.length, skipped: files.size - 1 });
    expect(readFileSync(join(local, 's7.bin'))).toEqual(changed);
    for (const [name, data] of files) if (name !== 't/s7.bin') expect(readFileSync(join(local, name.slice('t/'.length)))).toEqual(data);
  });

  test('a file changed in the last seconds is sent, never recorded: each run fetches it again until its time settles', async () => {
    const fresh = randomBytes(3 * KiB);
    const settled = randomBytes(3 * KiB);
    putByOtherMeans('f/settled.bin', settled, 60_000);
    await untilSettled();
    // Its mtime set a minute back, as a restore does: its ctime says it changed just now.
    putByOtherMeans('f/fresh.bin', fresh, 60_000);
    expect(await downloadTree(client, 'f', local)).toEqual({ files: 2, bytes: 6 * KiB, skipped: 0 });
    await eventually(async () => (await digestsListed('f'))['f/settled.bin'] === sha256(settled), 5000, 'the settled file’s digest');
    expect((await digestsListed('f'))['f/fresh.bin']).toBeUndefined();
    expect(await downloadTree(client, 'f', local)).toEqual({ files: 1, bytes: 3 * KiB, skipped: 1 });
    expect(readFileSync(join(local, 'fresh.bin'))).toEqual(fresh);
  });
});
