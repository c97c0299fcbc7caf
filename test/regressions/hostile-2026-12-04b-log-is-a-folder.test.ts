import { createHash, randomBytes } from 'node:crypto';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { digestLogPath } from '../../src/storage/small-commit-log';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile test of the reading side of digest logs (src/storage/digest-log.ts). Where a folder's log
 * should be there is a folder (or a symlink to one: a restore gone wrong, a hand-made mess in
 * `.rxfer`). The commit worker copes (its append fails, the commit stands, the digest is simply not
 * known), but DigestLog.folder() stat()s the path, sees a size, and reads it: EISDIR. That error went
 * up through LIST and STAT: the folder could no longer be listed, and no small file in it could be
 * STATed, although every file in it was fine. A log that cannot be read must count as no log (digests
 * unknown, `-`), as a missing one does.
 */
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe.each([
  ['a folder', (log: string) => mkdir(log)],
  ['a symlink to a folder', async (log: string) => { await mkdir(`${log}.dir`); await symlink(`${log}.dir`, log); }],
])('the digest log of a folder is %s', (_, plant) => {
  let server: TestServer;
  let client: RxferClient;

  beforeAll(async () => {
    server = await startTestServer();
    await plant(digestLogPath(join(server.root, '.rxfer', 'sums', 'folders'), 'big'));
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  test('uploads into it are told OK, and LIST and STAT of it still answer', async () => {
    const bytes = randomBytes(500);
    await client.uploadBuffer('big/one.bin', bytes);
    const stated = await client.stat('big/one.bin');
    expect(stated).toMatchObject({ type: 'file', size: 500 });
    if (stated.digest !== undefined) expect(stated.digest).toBe(sha256(bytes));
    const listed = await client.list('big');
    expect(listed.map((entry) => entry.name)).toEqual(['big/one.bin']);
  });
});
