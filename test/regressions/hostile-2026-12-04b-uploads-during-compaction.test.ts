import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { digestLogPath, formatDigestLine } from '../../src/storage/small-commit-log';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile test of the compaction that now runs after the worker's reply: while it rewrites a
 * folder's ≈ 15 MiB log (seconds), four clients keep uploading small files into that folder, some
 * of them the same names. Every upload told OK is on disk whole, and LIST gives each file the
 * sha256 of its bytes (or none), never another version's. (Held when written.)
 */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('uploads into a folder while its big digest log is compacted', () => {
  let server: TestServer;
  const clients: RxferClient[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    const sums = join(server.root, '.rxfer', 'sums', 'folders');
    mkdirSync(join(server.root, 'big'));
    const lines: string[] = [];
    for (let i = 0; i < 110_000; i++) lines.push(formatDigestLine(`gone-${i}.bin`, 1024, 1_733_000_000_000 + i, 1_000_000 + i, 'sha256', 'cd'.repeat(32)));
    writeFileSync(digestLogPath(sums, 'big'), lines.join(''));
    for (let i = 0; i < 4; i++) clients.push(await RxferClient.connect({ host: server.host, port: server.port }));
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await server?.close();
  });

  test('every file told OK is whole and listed with its own digest', async () => {
    const last = new Map<string, Buffer>();
    await Promise.all(
      clients.map(async (client, c) => {
        for (let round = 0; round < 6; round++) {
          // Names shared by the clients too: the last one told OK per name is not known, so each is kept.
          const batch = Array.from({ length: 40 }, (_, i) => [round % 2 === 0 ? `big/c${c}-${round}-${i}` : `big/shared-${i}`, randomBytes(1 + ((c * 7 + i) % 900))] as const);
          await Promise.all(batch.map(([name, bytes]) => client.uploadBuffer(name, bytes).then(() => last.set(`${name}#${c}`, bytes))));
        }
      }),
    );
    const listed = await clients[0]!.list('big');
    for (const entry of listed) {
      const bytes = readFileSync(join(server.root, entry.name));
      if (entry.digest !== undefined) expect([entry.name, entry.digest]).toEqual([entry.name, sha256(bytes)]);
      if (entry.name.startsWith('big/shared-')) {
        // Whole: one of the versions some client was told OK for.
        const versions = [0, 1, 2, 3].map((c) => last.get(`${entry.name}#${c}`)).filter((v): v is Buffer => v !== undefined);
        expect(versions.some((v) => v.equals(bytes))).toBe(true);
      } else {
        const c = Number(/^big\/c(\d)/.exec(entry.name)![1]);
        expect(bytes.equals(last.get(`${entry.name}#${c}`)!)).toBe(true);
      }
    }
    expect(listed.filter((entry) => !entry.name.startsWith('big/shared-'))).toHaveLength(4 * 3 * 40);
    expect(listed.filter((entry) => entry.digest !== undefined).length).toBeGreaterThan(0);
  }, 60_000);
});
