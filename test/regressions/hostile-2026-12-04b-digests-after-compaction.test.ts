import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { digestLogPath } from '../../src/storage/small-commit-log';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile test of the digest-log compaction (small-commit.worker.js), which now runs after the
 * worker's reply and keeps only records whose file still has the recorded size, mtime and inode.
 * A folder's log is driven through compactions while its files are replaced many times over the
 * protocol, overwritten, renamed and deleted on disk, renamed and deleted over the protocol: every
 * digest LIST and STAT show must be the sha256 of the bytes on disk, and every file uploaded and
 * left alone must still have one. (Held when written: kept as a regression guard.)
 */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const name = (prefix: string, i: number): string => `d/${prefix}-${String(i).padStart(4, '0')}`;

describe('digests of a folder whose log was compacted under churn', () => {
  let server: TestServer;
  let client: RxferClient;

  beforeAll(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  const uploadAll = (names: string[]) => Promise.all(names.map((n) => client.uploadBuffer(n, randomBytes(1 + (n.length * 37) % 1500))));
  const onDisk = (n: string) => join(server.root, n);

  test('every digest listed or stated is the digest of the file as it is', async () => {
    // ≈ 600 records (≈ 80 KB): past the 64 KiB from which a log is compacted.
    await uploadAll(Array.from({ length: 600 }, (_, i) => name('f', i)));
    for (let round = 0; round < 10; round++) await uploadAll(Array.from({ length: 50 }, (_, i) => name('f', i)));
    // Other means: same size and another size overwritten, removed, renamed, all on disk.
    for (let i = 100; i < 110; i++) writeFileSync(onDisk(name('f', i)), randomBytes(readFileSync(onDisk(name('f', i))).length + (i % 2)));
    for (let i = 110; i < 120; i++) unlinkSync(onDisk(name('f', i)));
    for (let i = 120; i < 130; i++) renameSync(onDisk(name('f', i)), onDisk(name('g', i)));
    // And over the protocol.
    for (let i = 200; i < 210; i++) await client.remove(name('f', i));
    for (let i = 300; i < 310; i++) await client.rename(name('f', i), name('r', i));
    // Enough more to compact again (past twice the compacted size), names removed before coming back.
    await uploadAll([...Array.from({ length: 1200 }, (_, i) => name('n', i)), ...Array.from({ length: 10 }, (_, i) => name('f', 110 + i))]);
    for (let round = 0; round < 5; round++) await uploadAll(Array.from({ length: 50 }, (_, i) => name('f', 50 + i)));

    // The attack reached a compaction: its header is the first line of the log.
    const log = digestLogPath(join(server.root, '.rxfer', 'sums', 'folders'), 'd');
    expect((await readFile(log, 'utf8')).split('\n')[0]).toMatch(/^\{"compacted": *\d+\}$/);

    const listed = await client.list('d');
    expect(listed.map((entry) => entry.name).sort()).toEqual(readdirSync(join(server.root, 'd')).map((n) => `d/${n}`).sort());
    const changedOnDisk = new Set(Array.from({ length: 20 }, (_, i) => name(i < 10 ? 'f' : 'g', 100 + i + (i < 10 ? 0 : 10))));
    for (const entry of listed) {
      const actual = sha256(readFileSync(onDisk(entry.name)));
      if (entry.digest !== undefined) expect([entry.name, entry.digest]).toEqual([entry.name, actual]);
      else expect(changedOnDisk.has(entry.name) || entry.name.startsWith('d/r-') ? entry.name : `${entry.name} has no digest`).toBe(entry.name);
    }
    for (const n of [name('f', 0), name('f', 49), name('f', 60), name('f', 105), name('g', 125), name('r', 305), name('f', 115), name('n', 1199)]) {
      const stated = await client.stat(n);
      expect([n, stated.digest ?? sha256(readFileSync(onDisk(n)))]).toEqual([n, sha256(readFileSync(onDisk(n)))]);
    }
  }, 60_000);
});
