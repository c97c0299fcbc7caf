import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, TestServerOptions, eventually, startTestServer, storageOf, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;

/** The data files of kept partial uploads under `root`. */
const partials = async (root: string): Promise<string[]> =>
  (await readdir(join(root, '.rxfer', 'partials')).catch(() => [] as string[])).filter((name) => !name.endsWith('.json'));

describe('resume over raw sockets (protocol v1)', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async (port = server.port) => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };
  const serve = async (options: TestServerOptions = {}) => {
    server = await startTestServer(options);
    return server;
  };

  afterEach(async () => {
    destroyAll(clients.splice(0));
    await server?.close();
  });

  /** Sends the first `sent` bytes of an UPLOAD of `data`; returns the connection once all are on disk. */
  const startUpload = async (name: string, data: Buffer, sent: number) => {
    const client = await connect();
    await client.send(`UPLOAD ${data.length}\n${name}\n`);
    expect(await client.readLine()).toBe('OK file recv');
    await client.send(data.subarray(0, sent));
    // The server has read them all once it is waiting for more: then a drop keeps exactly `sent`.
    await eventually(async () => {
      const [kept] = await partials(server.root);
      return kept !== undefined && (await stat(join(server.root, '.rxfer', 'partials', kept))).size === sent;
    }, 5000, 'the bytes sent to reach the partial upload');
    return client;
  };

  /** Sends `sent` bytes of an UPLOAD of `data` and drops the connection; waits until they are kept. */
  const interruptUpload = async (name: string, data: Buffer, sent: number) => {
    (await startUpload(name, data, sent)).destroy();
    await eventually(async () => (await resumeReply(name)).startsWith('OK partial'), 5000, 'the partial upload to be released');
  };

  const resumeReply = async (name: string): Promise<string> => {
    const client = await connect();
    await client.send(`RESUME\n${name}\n`);
    const line = await client.readLine();
    client.destroy();
    return line;
  };

  test('the greeting announces resume and the size from which uploads are kept', async () => {
    await serve();
    const client = await connect();
    expect(client.greeting).toMatch(/ caps=[a-z,]*\bresume\b/);
    expect(client.greeting).toMatch(/ resume-min=1048576( |$)/);
  });

  test('RESUME of a name with nothing kept: NOT FOUND', async () => {
    await serve();
    expect(await resumeReply('nothing.bin')).toMatch(/^NOT FOUND no interrupted upload of nothing\.bin is kept$/);
  });

  test('an interrupted upload is kept; RESUME proves the kept prefix by its SHA-256; UPLOAD … FROM completes it exactly', async () => {
    await serve();
    const data = randomBytes(3 * MiB);
    await interruptUpload('dir/big.bin', data, MiB + 7);
    expect(await userFiles(server.root)).toEqual([]);
    expect(await resumeReply('dir/big.bin')).toBe(`OK partial ${MiB + 7} ${sha256(data.subarray(0, MiB + 7))}`);

    const client = await connect();
    const offset = MiB + 7;
    await client.send(`UPLOAD ${data.length} FROM ${offset} ${sha256(data.subarray(0, offset))}\ndir/big.bin\n`);
    expect(await client.readLine()).toBe('OK file recv');
    await client.send(Buffer.concat([data.subarray(offset), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await client.readLine()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect((await readFile(join(server.root, 'dir', 'big.bin'))).equals(data)).toBe(true);
    expect(await partials(server.root)).toEqual([]);
    expect(await resumeReply('dir/big.bin')).toMatch(/^NOT FOUND /);
  });

  test('UPLOAD … FROM with a digest the kept bytes do not have: ERR RESUME_MISMATCH, the owed rest is dropped, the session goes on', async () => {
    await serve();
    const data = randomBytes(2 * MiB);
    await interruptUpload('x.bin', data, MiB);
    const client = await connect();
    const wrong = sha256(randomBytes(MiB));
    await client.send(
      Buffer.concat([
        Buffer.from(`UPLOAD ${data.length} FROM ${MiB} ${wrong}\nx.bin\n`),
        data.subarray(MiB),
        Buffer.from(`SHA256 ${sha256(data)}\n`),
        uploadRequest('after.txt', 'still in step'),
      ]),
    );
    expect(await client.readLine()).toMatch(/^ERR RESUME_MISMATCH cannot resume x\.bin at 1048576 bytes: the kept bytes do not match/);
    expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv 13 ${sha256('still in step')}`]);
    expect(await userFiles(server.root)).toEqual(['after.txt']);
    // A kept prefix that cannot be resumed is not worth keeping.
    expect(await partials(server.root)).toEqual([]);
  });

  test('a resumed upload whose whole-file SHA-256 is wrong: CHECKSUM_MISMATCH, nothing stored, nothing kept', async () => {
    await serve();
    const data = randomBytes(2 * MiB);
    await interruptUpload('y.bin', data, MiB);
    const client = await connect();
    await client.send(`UPLOAD ${data.length} FROM ${MiB} ${sha256(data.subarray(0, MiB))}\ny.bin\n`);
    expect(await client.readLine()).toBe('OK file recv');
    await client.send(Buffer.concat([randomBytes(MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await client.readLine()).toMatch(/^ERR CHECKSUM_MISMATCH /);
    expect(await userFiles(server.root)).toEqual([]);
    expect(await partials(server.root)).toEqual([]);
  });

  test('a resume offset beyond the declared size is a malformed command', async () => {
    await serve();
    const client = await connect();
    await client.send(`UPLOAD 10 FROM 11 ${sha256('')}\nz.bin\n`);
    expect(await client.readLine()).toMatch(/^ERR BAD_COMMAND UPLOAD: cannot resume at 11, beyond the end of a 10-byte file$/);
  });

  test('RESUME while another connection is writing that name: ERR BUSY (a fresh upload of it still works)', async () => {
    await serve();
    const writer = await connect();
    await writer.send(`UPLOAD ${2 * MiB}\nbusy.bin\n`);
    expect(await writer.readLine()).toBe('OK file recv');
    await writer.send(randomBytes(1000));
    expect(await resumeReply('busy.bin')).toMatch(/^ERR BUSY busy\.bin is being uploaded on another connection/);
    const other = await connect();
    await other.send(uploadRequest('busy.bin', randomBytes(2 * MiB)));
    expect(await other.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 2097152 /)]);
  });

  test('DOWNLOAD FROM: the rest only when the prefix matches the file, all of it otherwise', async () => {
    await serve();
    const data = randomBytes(3 * MiB + 5);
    const client = await connect();
    await client.send(uploadRequest('d.bin', data));
    expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);

    const offset = 2 * MiB + 1;
    await client.send(`DOWNLOAD FROM ${offset} ${sha256(data.subarray(0, offset))}\nd.bin\n`);
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)} from ${offset}`);
    expect((await client.readBytes(data.length - offset)).equals(data.subarray(offset))).toBe(true);

    await client.send(`DOWNLOAD FROM ${offset} ${sha256(randomBytes(10))}\nd.bin\n`);
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);

    // At the very end: nothing more to send. Beyond it: the whole file.
    await client.send(Buffer.concat([Buffer.from(`DOWNLOAD FROM ${data.length} ${sha256(data)}\nd.bin\n`), downloadRequest('d.bin')]));
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)} from ${data.length}`);
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);

    // Small files (read whole) resume the same way.
    await client.send(Buffer.concat([uploadRequest('s.txt', 'hello world'), Buffer.from(`DOWNLOAD FROM 6 ${sha256('hello ')}\ns.txt\n`)]));
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 11 ${sha256('hello world')}`, `OK 11 ${sha256('hello world')} from 6`]);
    expect((await client.readBytes(5)).toString()).toBe('world');
  });

  test('the expiry sweep (at start, then every partialExpiryMs / 4) deletes kept uploads untouched for partialExpiryMs, and only those', async () => {
    await serve({ config: { storage: { partialExpiryMs: 60_000 } } });
    await interruptUpload('old.bin', randomBytes(2 * MiB), MiB);
    await interruptUpload('new.bin', randomBytes(2 * MiB), MiB);
    // Age the partial of old.bin by two minutes: data and manifest.
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    const id = createHash('sha256').update('old.bin').digest('hex');
    for (const file of [id, `${id}.json`]) await utimes(join(server.root, '.rxfer', 'partials', file), twoMinutesAgo, twoMinutesAgo);

    expect(await storageOf(server).expirePartialUploads!(60_000)).toBe(MiB);
    expect(await resumeReply('old.bin')).toMatch(/^NOT FOUND /);
    expect(await resumeReply('new.bin')).toMatch(/^OK partial 1048576 /);
  });

  test('the manifest is written while the data flows: an upload whose manifest fails still commits, and is not kept when cut', async () => {
    await serve();
    // A folder where each name's manifest would go makes writing it fail (EISDIR), after the data file opened.
    const manifestOf = (name: string) => join(server.root, '.rxfer', 'partials', `${createHash('sha256').update(name).digest('hex')}.json`);
    await mkdir(manifestOf('whole.bin'), { recursive: true });
    await mkdir(manifestOf('cut.bin'), { recursive: true });

    const whole = randomBytes(2 * MiB);
    const client = await connect();
    await client.send(uploadRequest('whole.bin', whole));
    expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv ${whole.length} ${sha256(whole)}`]);
    expect((await readFile(join(server.root, 'whole.bin'))).equals(whole)).toBe(true);

    (await startUpload('cut.bin', randomBytes(2 * MiB), MiB)).destroy();
    // Without a manifest the kept bytes could never be found again: they are dropped, not orphaned.
    await eventually(async () => (await partials(server.root)).length === 0, 5000, 'the unrecorded partial to be discarded');
    expect(await resumeReply('cut.bin')).toMatch(/^NOT FOUND /);
    expect(await userFiles(server.root)).toEqual(['whole.bin']);
  });

  test('DELETE of the name discards its kept upload (so a user can free that quota at once)', async () => {
    await serve();
    await interruptUpload('drop.bin', randomBytes(2 * MiB), MiB);
    const client = await connect();
    await client.send('DELETE\ndrop.bin\nDELETE\ndrop.bin\n');
    expect(await client.readLines(2)).toEqual(['OK deleted', 'NOT FOUND drop.bin does not exist']);
    expect(await partials(server.root)).toEqual([]);
    expect(await resumeReply('drop.bin')).toMatch(/^NOT FOUND /);
  });
});
