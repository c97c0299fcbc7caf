import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/index';
import { startTestServer, TestServer } from '../client/real-server';

/**
 * Small downloads (≤ 64 KiB) are staged in memory and written at commit (issue 20). Their staging
 * name once kept 160 UTF-16 units of the target's name, not 160 bytes: for a name of 85 three-byte
 * characters (255 bytes, the most a file system allows) the staging name passed NAME_MAX and the
 * download failed with LOCAL_IO, where the larger downloads' staging files (bytes) went through.
 */
describe('a small download of a file whose name is at the file-name limit', () => {
  let server: TestServer;
  let local: string;
  beforeEach(async () => {
    server = await startTestServer();
    local = await mkdtemp(join(tmpdir(), 'rxfer-longname-'));
  });
  afterEach(async () => {
    await server.close();
    await rm(local, { recursive: true, force: true });
  });

  test('255 bytes of three-byte characters: downloaded, verified, nothing left beside it', async () => {
    const name = '語'.repeat(85);
    expect(Buffer.byteLength(name)).toBe(255);
    const data = randomBytes(4096);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      await client.uploadBuffer(name, data);
      await client.download(name, join(local, name));
    } finally {
      await client.quit().catch(() => client.close());
    }
    expect((await readFile(join(local, name))).equals(data)).toBe(true);
    expect(await readdir(local)).toEqual([name]);
  });
});
