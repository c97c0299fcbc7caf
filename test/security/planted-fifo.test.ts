import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { RawClient, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, startTestServer } from '../helpers/server';

/**
 * Small downloads are read synchronously (issue 20): open, fstat, read, close on the server's only
 * thread. A FIFO planted under a name (by someone with shell access to the storage) must be refused
 * at once, not block that thread until a writer comes: every other client would wait with it.
 */
describe('a FIFO planted in the storage', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    execFileSync('mkfifo', [join(server.root, 'pipe')]);
  });
  afterAll(() => server.close());

  test('DOWNLOAD of it is refused as not a file, and the server goes on serving', async () => {
    const raw = await RawClient.connect(server.port);
    try {
      await raw.send(downloadRequest('pipe'));
      expect(await raw.readLine()).toMatch(/^ERR NAME_CONFLICT /);
      // The same connection and a new one are still served.
      await raw.send(uploadRequest('after.txt', 'still here'));
      expect(await raw.readLines(2)).toEqual(['OK file recv', `OK file data recv 10 ${sha256('still here')}`]);
      const other = await RawClient.connect(server.port);
      try {
        await other.send(downloadRequest('after.txt'));
        expect(await other.readLine()).toBe(`OK 10 ${sha256('still here')}`);
        expect((await other.readBytes(10)).toString()).toBe('still here');
      } finally {
        other.destroy();
      }
    } finally {
      raw.destroy();
    }
  });
});
