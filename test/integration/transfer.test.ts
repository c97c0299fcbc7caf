import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient, RxferError } from '../../src/client/index';
import { RawClient, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, stagingFiles, startTestServer, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;

const failure = async (promise: Promise<unknown>): Promise<RxferError> => {
  const result = await promise.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
  expect(result).toBeInstanceOf(RxferError);
  return result as RxferError;
};

describe('transfers through the client library, checked on disk', () => {
  let server: TestServer;
  let client: RxferClient;
  const raws: RawClient[] = [];

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    // Whatever a test did, no staging file may be left behind.
    const staging = await stagingFiles(server.root);
    client.close();
    for (const raw of raws.splice(0)) raw.destroy();
    await server.close();
    expect(staging).toEqual([]);
  });

  /** Uploads through the library, checks the reply and the bytes on disk, and downloads it back both ways. */
  const roundTrip = async (name: string, data: Buffer) => {
    const expected = { size: data.length, digest: sha256(data) };
    await expect(client.uploadBuffer(name, data)).resolves.toEqual(expected);
    const onDisk = await readFile(join(server.root, ...name.split('/')));
    expect(onDisk.length).toBe(data.length);
    expect(sha256(onDisk)).toBe(expected.digest);

    const back = await client.downloadBuffer(name);
    expect({ size: back.size, digest: back.digest }).toEqual(expected);
    expect(back.data.equals(data)).toBe(true);

    const local = join(server.scratch, 'download.bin');
    await expect(client.download(name, local)).resolves.toEqual(expected);
    expect((await readFile(local)).equals(data)).toBe(true);
  };

  test.each([
    ['an empty file', 'empty.txt', 0],
    ['a 1-byte file', 'one.bin', 1],
    ['a file of awkward size', 'odd.bin', 65_537],
    ['an 8 MiB file', 'big/8mib.bin', 8 * MiB],
    ['a non-ASCII name with spaces', 'résumé 日本.txt', 1000],
    ['a nested name', 'a/b/c.bin', 4096],
  ])('%s round-trips byte-identical (%s, %i bytes)', async (_label, name, size) => {
    await roundTrip(name, randomBytes(size));
    expect(await userFiles(server.root)).toEqual([name]);
  });

  test('upload from a local file and download to a local file, 3 MiB', async () => {
    const data = randomBytes(3 * MiB + 5);
    const source = join(server.scratch, 'source.bin');
    await writeFile(source, data);
    await expect(client.upload(source, 'from-file.bin')).resolves.toEqual({ size: data.length, digest: sha256(data) });
    expect((await readFile(join(server.root, 'from-file.bin'))).equals(data)).toBe(true);
  });

  test('UPLOAD replaces an existing file', async () => {
    await client.uploadBuffer('doc.txt', Buffer.from('version 1'));
    await client.uploadBuffer('doc.txt', Buffer.from('version 2, longer'));
    expect(await readFile(join(server.root, 'doc.txt'), 'utf8')).toBe('version 2, longer');
    expect((await client.downloadBuffer('doc.txt')).data.toString()).toBe('version 2, longer');
    await client.uploadBuffer('doc.txt', Buffer.alloc(0));
    expect((await readFile(join(server.root, 'doc.txt'))).length).toBe(0);
  });

  test('ADDFILE twice: the second is EXISTS and the first content is untouched', async () => {
    const first = randomBytes(1000);
    await expect(client.uploadBuffer('once.bin', first, { mode: 'create' })).resolves.toEqual({ size: 1000, digest: sha256(first) });
    expect((await failure(client.uploadBuffer('once.bin', randomBytes(2000), { mode: 'create' }))).code).toBe('EXISTS');
    expect((await readFile(join(server.root, 'once.bin'))).equals(first)).toBe(true);
    expect((await client.downloadBuffer('once.bin')).data.equals(first)).toBe(true);
  });

  test('ADDFILE twice on the wire: EXISTS for the second, and the next request is served', async () => {
    const raw = await RawClient.connect(server.port);
    raws.push(raw);
    await raw.send(Buffer.concat([uploadRequest('x.txt', 'first', { verb: 'ADDFILE' }), uploadRequest('x.txt', 'second', { verb: 'ADDFILE' }), downloadRequest('x.txt')]));
    expect(await raw.readLines(4)).toEqual([
      'OK file recv',
      `OK file data recv 5 ${sha256('first')}`,
      expect.stringMatching(/^ERR EXISTS /),
      `OK 5 ${sha256('first')}`,
    ]);
    expect((await raw.readBytes(5)).toString()).toBe('first');
  });

  test('DOWNLOAD of a missing file: NOT FOUND on the wire, NOT_FOUND from the client, connection still usable', async () => {
    const raw = await RawClient.connect(server.port);
    raws.push(raw);
    await raw.send(downloadRequest('nope.txt'));
    expect(await raw.readLine()).toMatch(/^NOT FOUND \S/);
    await raw.send(downloadRequest('deeper/missing/nope.txt'));
    expect(await raw.readLine()).toMatch(/^NOT FOUND \S/);
    await raw.send(uploadRequest('now.txt', 'here'));
    expect(await raw.readLines(2)).toEqual(['OK file recv', `OK file data recv 4 ${sha256('here')}`]);

    expect((await failure(client.downloadBuffer('nope.txt'))).code).toBe('NOT_FOUND');
    await expect(client.uploadBuffer('after.txt', Buffer.from('ok'))).resolves.toMatchObject({ size: 2 });
  });

  test('a replace keeps the old file intact, for readers too, until the new one is committed', async () => {
    const oldData = randomBytes(MiB);
    const newData = randomBytes(2 * MiB);
    await client.uploadBuffer('report.bin', oldData);
    const target = join(server.root, 'report.bin');

    const raw = await RawClient.connect(server.port);
    raws.push(raw);
    await raw.send(`UPLOAD ${newData.length}\nreport.bin\n`);
    expect(await raw.readLine()).toBe('OK file recv');
    await raw.send(newData.subarray(0, MiB + 123));
    // The staging file is growing beside the target; neither the disk nor a reader sees it.
    await expect(stagingFilesEventually(server.root)).resolves.toHaveLength(1);
    expect((await readFile(target)).equals(oldData)).toBe(true);
    expect((await client.downloadBuffer('report.bin')).data.equals(oldData)).toBe(true);

    await raw.send(Buffer.concat([newData.subarray(MiB + 123), Buffer.from(`SHA256 ${sha256(newData)}\n`)]));
    expect(await raw.readLine()).toBe(`OK file data recv ${newData.length} ${sha256(newData)}`);
    expect((await readFile(target)).equals(newData)).toBe(true);
    expect((await client.downloadBuffer('report.bin')).data.equals(newData)).toBe(true);
  });

  test('the announced digest of a file put there by other means is computed from its bytes', async () => {
    const data = randomBytes(300_000);
    await writeFile(join(server.root, 'dropped-in.bin'), data);
    const back = await client.downloadBuffer('dropped-in.bin');
    expect(back.digest).toBe(sha256(data));
    expect(back.data.equals(data)).toBe(true);
  });

  test('a folder deleted by other means right after an upload into it is made again for the next one', async () => {
    // Folder checks are remembered for a second; a folder removed behind the server's back within it
    // must not fail the next uploads (small ones are committed by a worker, larger ones streamed).
    for (const size of [4096, 200 * 1024]) {
      const data = randomBytes(size);
      await client.uploadBuffer('gone/a.bin', data);
      await rm(join(server.root, 'gone'), { recursive: true });
      await expect(client.uploadBuffer('gone/b.bin', data)).resolves.toMatchObject({ size });
      expect((await readFile(join(server.root, 'gone', 'b.bin'))).equals(data)).toBe(true);
      await rm(join(server.root, 'gone'), { recursive: true });
    }
  });

  test('a folder deleted by other means right after a download from it: the next download is NOT_FOUND, the one after it finds the folder made again', async () => {
    // Downloads reuse the folder check for a second too; a folder gone within it must read as missing.
    const data = randomBytes(4096);
    await client.uploadBuffer('vanish/a.bin', data);
    expect((await client.downloadBuffer('vanish/a.bin')).data.equals(data)).toBe(true);
    await rm(join(server.root, 'vanish'), { recursive: true });
    expect((await failure(client.downloadBuffer('vanish/a.bin'))).code).toBe('NOT_FOUND');
    expect((await failure(client.downloadBuffer('vanish/big.bin'))).code).toBe('NOT_FOUND');
    await client.uploadBuffer('vanish/a.bin', data);
    expect((await client.downloadBuffer('vanish/a.bin')).data.equals(data)).toBe(true);
  });

  test('many files pipelined on one connection all land intact', async () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ name: `many/${i}.bin`, data: randomBytes(i * 101) }));
    await Promise.all(files.map((file) => client.uploadBuffer(file.name, file.data)));
    for (const [i, file] of files.entries()) expect((await readFile(join(server.root, 'many', `${i}.bin`))).equals(file.data)).toBe(true);
    expect(await userFiles(server.root)).toEqual(files.map((file) => file.name).sort());
  });
});

/** Polls until a staging file appears (the server creates it when it accepts the header). */
const stagingFilesEventually = async (root: string): Promise<string[]> => {
  for (let i = 0; i < 250; i++) {
    const found = await stagingFiles(root);
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return [];
};
