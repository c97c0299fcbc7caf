import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient, batchRequest, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, captureLogs, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';

/**
 * BATCH (PROTOCOL.md): up to 64 small files in one request, each stored as its own UPLOAD would be
 * (verified, fsynced, renamed into place) and answered on its own line, in order. Over real sockets,
 * on real files: what each reply says is what the disk holds.
 */

const KiB = 1024;
const stored = (data: Buffer | string) => `OK file data recv ${Buffer.byteLength(data)} ${sha256(data)}`;
const readText = (server: TestServer, name: string) => readFile(join(server.root, name), 'utf8').catch(() => undefined);

describe('BATCH', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async (port = server.port) => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('the greeting offers it with its limits', async () => {
    const client = await connect();
    expect(client.greeting).toMatch(/ caps=\S*,batch,/);
    expect(client.greeting).toContain(' batch-files=64 batch-bytes=1048576');
  });

  test('stores each file, byte for byte, and answers each on its own line in order; LIST knows their digests', async () => {
    const files = Array.from({ length: 64 }, (_, i) => ({ name: `b/d${i % 5}/f${i}`, data: randomBytes(i * 100) }));
    const client = await connect();
    await client.send(batchRequest(files));
    expect(await client.readLines(64)).toEqual(files.map((f) => stored(f.data)));
    for (const f of files) expect((await readFile(join(server.root, f.name))).equals(f.data)).toBe(true);
    const listing = await client.list('b');
    expect(listing.count).toBe(64);
    for (const f of files) expect(listing.files).toContainEqual(expect.objectContaining({ size: f.data.length, digest: sha256(f.data) }));
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('a file whose bytes do not match its declared digest is refused alone; the file it would replace is untouched', async () => {
    await mkdir(join(server.root, 'x'));
    await writeFile(join(server.root, 'x/kept'), 'the old content');
    const client = await connect();
    await client.send(
      batchRequest([
        { name: 'x/one', data: 'first' },
        { name: 'x/kept', data: 'corrupted on the way', sha256: sha256('what was meant') },
        { name: 'x/three', data: 'third' },
      ]),
    );
    const [one, kept, three] = await client.readLines(3);
    expect(one).toBe(stored('first'));
    expect(kept).toMatch(/^ERR CHECKSUM_MISMATCH the 20 bytes received for x\/kept hash to [0-9a-f]{64}, not [0-9a-f]{64} as declared \(SHA256\); nothing stored$/);
    expect(three).toBe(stored('third'));
    expect(await readText(server, 'x/kept')).toBe('the old content');
    expect(await userFiles(server.root)).toEqual(['x/kept', 'x/one', 'x/three']);
  });

  test('a digest in another algorithm than the connection\'s is refused by name, never compared', async () => {
    const client = await connect();
    await client.send(batchRequest([{ name: 'algo', data: 'abc', entry: `3 BLAKE3 ${sha256('abc')}` }, { name: 'after', data: 'ok' }]));
    expect(await client.readLine()).toMatch(/^ERR CHECKSUM_MISMATCH the BATCH entry of algo gives a BLAKE3 digest, but this connection verifies with SHA256 \(send HASH BLAKE3 before the request\)/);
    expect(await client.readLine()).toBe(stored('ok'));
    expect(await readText(server, 'algo')).toBeUndefined();
  });

  test.each([
    ['../escape', 'NAME_INVALID'],
    ['/absolute', 'NAME_INVALID'],
    ['', 'NAME_INVALID'],
    ['a/./b', 'NAME_INVALID'],
  ])('a hostile name (%j) is refused alone with %s', async (name, code) => {
    const client = await connect();
    await client.send(batchRequest([{ name: 'before', data: '1' }, { name, data: 'evil' }, { name: 'after', data: '2' }]));
    const [before, refused, after] = await client.readLines(3);
    expect(before).toBe(stored('1'));
    expect(refused!.startsWith(`ERR ${code} `)).toBe(true);
    expect(after).toBe(stored('2'));
    expect(await userFiles(server.root)).toEqual(['after', 'before']);
  });

  test('its files take effect in request order with the requests around it, and with each other', async () => {
    const client = await connect();
    await client.send(
      Buffer.concat([
        uploadRequest('same', 'v1 by UPLOAD'),
        batchRequest([
          { name: 'same', data: 'v2 by the batch' },
          { name: 'same', data: 'v3 by the batch' },
          { name: 'dir', data: 'a file' },
          // "dir" is a file by now: a name below it cannot be stored.
          { name: 'dir/below', data: 'x' },
        ]),
        downloadRequest('same'),
        Buffer.from('DELETE\ndir\n'),
      ]),
    );
    expect(await client.readLines(2)).toEqual(['OK file recv', stored('v1 by UPLOAD')]);
    expect(await client.readLines(3)).toEqual([stored('v2 by the batch'), stored('v3 by the batch'), stored('a file')]);
    expect(await client.readLine()).toMatch(/^ERR NAME_CONFLICT /);
    expect(await client.readLine()).toBe(`OK ${Buffer.byteLength('v3 by the batch')} ${sha256('v3 by the batch')}`);
    expect((await client.readBytes(15)).toString()).toBe('v3 by the batch');
    expect(await client.readLine()).toBe('OK deleted');
    expect(await userFiles(server.root)).toEqual(['same']);
  });

  test('an empty file is a file', async () => {
    const client = await connect();
    await client.send(batchRequest([{ name: 'empty', data: '' }, { name: 'full', data: 'x' }]));
    expect(await client.readLines(2)).toEqual([stored(''), stored('x')]);
    expect(await readText(server, 'empty')).toBe('');
  });

  test.each([
    ['BATCH 0\n', /^ERR BAD_COMMAND BATCH takes the number of files, 1 to 64/],
    ['BATCH 65\n', /^ERR BAD_COMMAND BATCH takes the number of files, 1 to 64/],
    ['BATCH two\n', /^ERR BAD_COMMAND BATCH takes the number of files/],
    ['BATCH 1\n5 SHA256 nothex\nname\nhello', /^ERR BAD_COMMAND a BATCH file starts with "<size> SHA256 <64 hex digits>"/],
    ['BATCH 1\n-5 SHA256 ' + sha256('') + '\nname\n', /^ERR BAD_COMMAND a BATCH file starts with/],
  ])('a batch that cannot be followed (%j) is BAD_COMMAND, closes the connection, and nothing after it runs', async (bytes, reply) => {
    const client = await connect();
    await client.send(Buffer.concat([Buffer.from(bytes), uploadRequest('after', 'never')]));
    expect(await client.readLine()).toMatch(reply);
    await client.waitClosed();
    expect(await userFiles(server.root)).toEqual([]);
  });

  test('a batch over its byte limit is refused at the file that does not fit: those before it are stored, then the connection closes', async () => {
    const half = randomBytes(600 * KiB);
    const client = await connect();
    await client.send(Buffer.concat([batchRequest([{ name: 'fits', data: half }, { name: 'over', data: half }]), uploadRequest('after', 'never')]));
    expect(await client.readLine()).toBe(stored(half));
    expect(await client.readLine()).toMatch(/^ERR BAD_COMMAND a BATCH holds at most 1048576 bytes of files \(greeting batch-bytes\); this file of 614400 bytes does not fit in the 434176 left$/);
    await client.waitClosed();
    expect(await userFiles(server.root)).toEqual(['fits']);
  });

  test('a connection cut in the middle of a batch: the files that arrived whole may be stored, the cut one never appears, nothing is left staged', async () => {
    const client = await connect();
    const whole = randomBytes(10 * KiB);
    const request = batchRequest([
      { name: 'cut/whole', data: whole },
      { name: 'cut/half', data: randomBytes(100 * KiB) },
    ]);
    await client.send(request.subarray(0, request.length - 50 * KiB));
    await eventually(async () => (await readFile(join(server.root, 'cut/whole')).catch(() => undefined))?.equals(whole) === true, 5000, 'the whole file to be stored');
    client.destroy();
    const other = await connect();
    await other.send('STAT\ncut/half\n');
    expect(await other.readLine()).toMatch(/^NOT FOUND/);
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 5000, 'no staging file');
    expect(await userFiles(server.root)).toEqual(['cut/whole']);
  });

  test('QUIT after a batch: the batch is answered, then bye; what follows QUIT is not run', async () => {
    const client = await connect();
    await client.send(Buffer.concat([batchRequest([{ name: 'q1', data: '1' }, { name: 'q2', data: '2' }]), Buffer.from('QUIT\n'), batchRequest([{ name: 'q3', data: '3' }])]));
    expect(await client.readLines(3)).toEqual([stored('1'), stored('2'), 'OK bye']);
    await client.waitClosed();
    expect(await userFiles(server.root)).toEqual(['q1', 'q2']);
  });

  test('each file is one audited UPLOAD (and the batch one BATCH line)', async () => {
    await server.close();
    const logs = captureLogs();
    server = await startTestServer({ logger: logs.logger });
    const client = await connect();
    await client.send(batchRequest([{ name: 'l/a', data: 'aa' }, { name: '../bad', data: 'b' }]));
    await client.readLines(2);
    await eventually(() => logs.lines.filter((line) => line.audit === true).length >= 3, 5000, 'three audit lines');
    const audits = logs.lines.filter((line) => line.audit === true).map((line) => `${String(line.command)} ${String(line.file)} ${String(line.outcome)} ${String(line.code)}`);
    expect(audits.sort()).toEqual(['BATCH null error NAME_INVALID', 'UPLOAD l/a ok null', 'UPLOAD null error NAME_INVALID']);
  });
});

describe('BATCH under a size limit', () => {
  let server: TestServer;
  afterEach(async () => server.close());

  test('a file over limits.maxFileBytes is refused alone with TOO_LARGE', async () => {
    server = await startTestServer({ config: { limits: { maxFileBytes: 10 } } });
    const client = await RawClient.connect(server.port);
    await client.send(batchRequest([{ name: 'small', data: '0123456789' }, { name: 'big', data: '0123456789A' }]));
    expect(await client.readLine()).toBe(stored('0123456789'));
    expect(await client.readLine()).toBe('ERR TOO_LARGE big is 11 bytes; this server accepts at most 10');
    client.destroy();
    expect(await userFiles(server.root)).toEqual(['small']);
  });
});
