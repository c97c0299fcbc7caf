import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/index';
import { TestServer, startTestServer } from '../helpers/server';

const KiB = 1024;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Files read whole for upload (64 KiB < size ≤ 1 MiB) now share pooled read buffers, given back once
 * the server confirmed a file. Attacked: many such uploads at once, sizes shrinking so that a reused
 * buffer still holds the tail of a larger file, the same local file rewritten between uploads, and an
 * upload that fails. Every stored file must be exactly the local bytes, with the digest the client got.
 */
describe('hostile 2026-12-04: pooled read buffers for whole-file uploads', () => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    await client.quit().catch(() => client.close());
    await server.close();
  });

  const local = async (name: string, data: Buffer) => {
    const path = join(server.scratch, name);
    await writeFile(path, data);
    return path;
  };
  const stored = (name: string) => readFile(join(server.root, name));

  test('shrinking sizes one after the other: no file gets the tail of the one before', async () => {
    const sizes = [1024 * KiB, 900 * KiB, 65 * KiB, 1000 * KiB, 64 * KiB + 1, 512 * KiB];
    for (const [i, size] of sizes.entries()) {
      const data = Buffer.alloc(size, i + 1);
      const result = await client.upload(await local(`s${i}`, data), `s${i}`);
      expect(result).toMatchObject({ size, digest: sha(data) });
      expect((await stored(`s${i}`)).equals(data)).toBe(true);
    }
  });

  test('twenty uploads at once, each from its own pooled buffer: every file stored as it is here', async () => {
    const files = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, data: randomBytes(100 * KiB + i * 40 * KiB) }));
    const paths = await Promise.all(files.map((file) => local(file.name, file.data)));
    const results = await Promise.all(files.map((file, i) => client.upload(paths[i]!, file.name)));
    for (const [i, file] of files.entries()) {
      expect(results[i]).toMatchObject({ size: file.data.length, digest: sha(file.data) });
      expect((await stored(file.name)).equals(file.data)).toBe(true);
    }
  });

  test('one local file rewritten between uploads, in and out of a burst: each upload stores the version it read', async () => {
    const path = join(server.scratch, 'same');
    for (let round = 0; round < 4; round++) {
      const data = randomBytes(300 * KiB - round * 50 * KiB);
      await writeFile(path, data);
      const burst = Array.from({ length: 5 }, (_, i) => randomBytes(200 * KiB + i));
      const others = await Promise.all(burst.map((other, i) => local(`o${round}-${i}`, other)));
      await Promise.all([client.upload(path, `same-${round}`), ...others.map((other, i) => client.upload(other, `o${round}-${i}`))]);
      expect((await stored(`same-${round}`)).equals(data)).toBe(true);
      for (const [i, other] of burst.entries()) expect((await stored(`o${round}-${i}`)).equals(other)).toBe(true);
    }
  });

  test('an upload refused by the server does not leave its buffer to be shared: the next uploads are intact', async () => {
    const data = randomBytes(500 * KiB);
    await client.upload(await local('exists', data), 'exists');
    // ADDFILE of a name that exists is refused (EXISTS); its buffer was read and sent, never confirmed.
    const refused = await client.upload(await local('again', randomBytes(600 * KiB)), 'exists', { mode: 'create' }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'EXISTS' });
    const after = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const bytes = randomBytes(400 * KiB + i * KiB);
        await client.upload(await local(`after${i}`, bytes), `after${i}`);
        return bytes;
      }),
    );
    for (const [i, bytes] of after.entries()) expect((await stored(`after${i}`)).equals(bytes)).toBe(true);
    expect((await stored('exists')).equals(data)).toBe(true);
  });
});
