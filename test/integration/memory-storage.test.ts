import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RxferClient, RxferError } from '../../src/client/index';
import { TOKENS } from '../../src/container/tokens';
import { MemoryStorage } from '../../src/storage/memory.storage';
import { RawClient, batchRequest, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, TestServerOptions, startTestServer, storageOf } from '../helpers/server';

const MiB = 1024 * 1024;

describe.each<[string, () => TestServerOptions]>([
  ['rebound in the container', () => ({ customize: (container) => container.rebind(TOKENS.Storage).toConstantValue(new MemoryStorage()) })],
  ['chosen by config (storage.kind: memory)', () => ({ config: { storage: { kind: 'memory' } } })],
])('the memory adapter, %s', (_label, options) => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer(options());
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  /** The whole temp folder of this server (root and scratch included), as it is on disk. */
  const everythingOnDisk = async () => (await readdir(dirname(server.root), { recursive: true })).sort();

  test('stores the files of a BATCH through its staged writes (no writeWhole), each verified on its own', async () => {
    const raw = await RawClient.connect(server.port);
    const files = [
      { name: 'batch/a', data: randomBytes(1000) },
      { name: 'batch/b', data: Buffer.from('declared otherwise'), sha256: sha256('something else') },
      { name: 'batch/c', data: randomBytes(70_000) },
    ];
    await raw.send(batchRequest(files));
    const replies = await raw.readLines(3);
    raw.destroy();
    expect(replies[0]).toBe(`OK file data recv 1000 ${sha256(files[0]!.data)}`);
    expect(replies[1]).toMatch(/^ERR CHECKSUM_MISMATCH /);
    expect(replies[2]).toBe(`OK file data recv 70000 ${sha256(files[2]!.data)}`);
    expect((await client.downloadBuffer('batch/c')).data.equals(files[2]!.data)).toBe(true);
    await expect(client.downloadBuffer('batch/b')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  test('is the storage the server uses', () => {
    expect(storageOf(server)).toBeInstanceOf(MemoryStorage);
  });

  test('round-trips files, keeps ADDFILE and NOT_FOUND semantics, and writes nothing to disk', async () => {
    const files = [
      { name: 'empty', data: Buffer.alloc(0) },
      { name: 'résumé 日本.txt', data: randomBytes(1) },
      { name: 'a/b/c.bin', data: randomBytes(2 * MiB) },
    ];
    for (const file of files) await expect(client.uploadBuffer(file.name, file.data)).resolves.toEqual({ size: file.data.length, digest: sha256(file.data) });
    for (const file of files) expect((await client.downloadBuffer(file.name)).data.equals(file.data)).toBe(true);

    await client.uploadBuffer('a/b/c.bin', Buffer.from('replaced'));
    expect((await client.downloadBuffer('a/b/c.bin')).data.toString()).toBe('replaced');

    const exists = await client.uploadBuffer('empty', Buffer.from('x'), { mode: 'create' }).catch((err: RxferError) => err);
    expect(exists).toMatchObject({ code: 'EXISTS' });
    expect((await client.downloadBuffer('empty')).data.length).toBe(0);
    const missing = await client.downloadBuffer('nope').catch((err: RxferError) => err);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });

    expect(await everythingOnDisk()).toEqual(['root', 'scratch']);
  });

  test('a wrong checksum and a dropped upload commit nothing', async () => {
    const raw = await RawClient.connect(server.port);
    try {
      await raw.send(Buffer.concat([uploadRequest('bad.txt', 'data', { sha256: sha256('other') }), downloadRequest('bad.txt')]));
      expect(await raw.readLines(3)).toEqual(['OK file recv', expect.stringMatching(/^ERR CHECKSUM_MISMATCH /), expect.stringMatching(/^NOT FOUND /)]);
      await raw.send('UPLOAD 100\ndropped.txt\nonly part of it');
      expect(await raw.readLine()).toBe('OK file recv');
    } finally {
      raw.destroy();
    }
    const missing = await client.downloadBuffer('dropped.txt').catch((err: RxferError) => err);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    expect(await everythingOnDisk()).toEqual(['root', 'scratch']);
  });
});
