import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RxferConfig } from '../../src/config/config.schema';
import { TOKENS } from '../../src/container/tokens';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import { RawClient, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, TestServerOptions, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;

describe('failures over raw sockets', () => {
  const servers: TestServer[] = [];
  const clients: RawClient[] = [];
  let server: TestServer;

  const serve = async (options: TestServerOptions = {}): Promise<TestServer> => {
    const started = await startTestServer(options);
    servers.push(started);
    return started;
  };
  const connect = async (port = server.port, options?: { readGreeting?: boolean }) => {
    const client = await RawClient.connect(port, options);
    clients.push(client);
    if (options?.readGreeting !== false) expect(client.greeting).toMatch(/^OK rxfer\/1 /);
    return client;
  };

  beforeEach(async () => {
    server = await serve();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  /** A fresh connection can still do a round trip: the server survived whatever the test did. */
  const stillServes = async (port = server.port) => {
    const client = await connect(port);
    await client.send(Buffer.concat([uploadRequest('health/check.txt', 'alive'), downloadRequest('health/check.txt')]));
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 5 ${sha256('alive')}`, `OK 5 ${sha256('alive')}`]);
    expect((await client.readBytes(5)).toString()).toBe('alive');
  };

  describe('a client that disconnects mid-upload', () => {
    const dropMidUpload = async (name: string, size: number) => {
      const client = await connect();
      await client.send(`UPLOAD ${size}\n${name}\n`);
      expect(await client.readLine()).toBe('OK file recv');
      await client.send(randomBytes(size / 2));
      client.destroy();
    };

    test('leaves nothing under the name, leaves an older file of that name untouched, and the server serves on', async () => {
      const older = randomBytes(1000);
      await writeFile(join(server.root, 'kept.bin'), older);
      await dropMidUpload('kept.bin', 2 * MiB);
      await dropMidUpload('fresh.bin', 2 * MiB);
      await stillServes();
      expect((await readFile(join(server.root, 'kept.bin'))).equals(older)).toBe(true);
      expect(await userFiles(server.root)).toEqual(['health/check.txt', 'kept.bin']);
    });

    test('has a small upload\'s staging file deleted', async () => {
      await dropMidUpload('gone.bin', 512 * 1024);
      await eventually(async () => (await stagingFiles(server.root)).length === 0, 1000, 'the staging file to be deleted');
    });

    test('keeps what arrived of a large upload for a resume, outside any real name', async () => {
      await dropMidUpload('kept-for-later.bin', 2 * MiB);
      await eventually(async () => (await stagingFiles(server.root)).length === 1, 2000, 'the partial upload to be kept');
      const [partial] = await stagingFiles(server.root);
      expect(partial).toMatch(/^\.rxfer\/partials\/[0-9a-f]{64}$/);
      expect((await stat(join(server.root, partial!))).size).toBeLessThanOrEqual(MiB);
      expect(await userFiles(server.root)).toEqual([]);
    });
  });

  test('a session cut while its staging file is being opened leaves no staging file', async () => {
    let opened!: () => void;
    let proceed!: () => void;
    const inBeginWrite = new Promise<void>((resolve) => (opened = resolve));
    const gate = new Promise<void>((resolve) => (proceed = resolve));
    class SlowStaging extends LocalFsStorage {
      override async beginWrite(...args: Parameters<LocalFsStorage['beginWrite']>) {
        const staged = await super.beginWrite(...args);
        opened();
        await gate;
        return staged;
      }
    }
    const slow = await serve({
      customize: (container) =>
        container
          .rebind(TOKENS.Storage)
          .toResolvedValue((config: RxferConfig) => new SlowStaging(config.storage.root), [TOKENS.Config])
          .inSingletonScope(),
    });
    const client = await connect(slow.port);
    // Above SMALL_FILE_BYTES: a small upload creates its staging file only at commit (SmallCommits).
    await client.send('UPLOAD 100000\nslow.bin\n01234');
    await eventually(async () => (await stagingFiles(slow.root)).length === 1, 3000, 'the staging file to be created');
    await inBeginWrite;
    // Grace 0: the session is cut while beginWrite is still pending.
    await slow.stop();
    proceed();
    await eventually(async () => (await stagingFiles(slow.root)).length === 0, 1000, 'the staging file to be deleted');
  });

  test('a wrong declared SHA-256: CHECKSUM_MISMATCH, nothing committed, the connection stays usable', async () => {
    await writeFile(join(server.root, 'existing.txt'), 'old');
    const client = await connect();
    const wrong = sha256('something else');
    await client.send(Buffer.concat([uploadRequest('existing.txt', 'new data', { sha256: wrong }), uploadRequest('new.txt', 'new data', { sha256: wrong.toUpperCase() })]));
    const replies = await client.readLines(4);
    expect(replies[0]).toBe('OK file recv');
    expect(replies[1]).toMatch(/^ERR CHECKSUM_MISMATCH /);
    expect(replies[2]).toBe('OK file recv');
    expect(replies[3]).toMatch(/^ERR CHECKSUM_MISMATCH /);
    expect(await readFile(join(server.root, 'existing.txt'), 'utf8')).toBe('old');
    expect(await userFiles(server.root)).toEqual(['existing.txt']);
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 2000, 'staging files to be deleted');

    await client.send(Buffer.concat([uploadRequest('new.txt', 'right'), downloadRequest('new.txt')]));
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 5 ${sha256('right')}`, `OK 5 ${sha256('right')}`]);
    expect((await client.readBytes(5)).toString()).toBe('right');
  });

  describe('a refused header gets exactly one reply; the owed data is read and dropped', () => {
    // Data that would be taken for requests if the server did not count it off.
    const owed = Buffer.from(`QUIT\nDOWNLOAD\nsecret.txt\nUPLOAD 3\nx\nabc\nSHA256 ${sha256('abc')}\n`);

    test.each([
      ['ADDFILE of an existing name', 'ADDFILE', 'taken.txt', /^ERR EXISTS /],
      ['a name with a ".." segment', 'UPLOAD', '../escape.txt', /^ERR NAME_INVALID /],
      ['an absolute name', 'UPLOAD', '/etc/passwd', /^ERR NAME_INVALID /],
      ['a reserved name', 'ADDFILE', '.rxfer-part-0000', /^ERR NAME_INVALID /],
      ['an ANSI escape in the name', 'UPLOAD', '\u001b[31mred', /^ERR NAME_INVALID /],
    ] as const)('%s', async (_label, verb, name, reply) => {
      await writeFile(join(server.root, 'taken.txt'), 'original');
      const client = await connect();
      await client.send(Buffer.concat([uploadRequest(name, owed, { verb }), downloadRequest('taken.txt'), uploadRequest('after.txt', 'after')]));
      const refusal = await client.readLine();
      expect(refusal).toMatch(reply);
      // The message may quote the name, but never a raw control character a terminal would obey.
      expect(refusal).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      expect(await client.readLine()).toBe(`OK 8 ${sha256('original')}`);
      expect((await client.readBytes(8)).toString()).toBe('original');
      expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv 5 ${sha256('after')}`]);
      expect(await userFiles(server.root)).toEqual(['after.txt', 'taken.txt']);
      expect(await readFile(join(server.root, 'taken.txt'), 'utf8')).toBe('original');
      expect(client.unread.length).toBe(0);
    });

    test('a name that is not valid UTF-8', async () => {
      const client = await connect();
      await client.send(Buffer.concat([uploadRequest(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]), owed), uploadRequest('after.txt', 'after')]));
      expect(await client.readLine()).toMatch(/^ERR NAME_INVALID /);
      expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv 5 ${sha256('after')}`]);
      expect(await userFiles(server.root)).toEqual(['after.txt']);
    });
  });

  describe('errors after which the stream cannot be trusted: one ERR line, then the server closes', () => {
    test.each([
      ['an unknown verb', 'DELETE x\n'],
      ['an empty line', '\n'],
      ['UPLOAD without a size', 'UPLOAD\nname\n'],
      ['a negative size', 'UPLOAD -5\nname\n'],
      ['DOWNLOAD with the name on its line', 'DOWNLOAD name.txt\n'],
    ])('%s: BAD_COMMAND', async (_label, input) => {
      const client = await connect();
      await client.send(input);
      expect(await client.readLine()).toMatch(/^ERR BAD_COMMAND /);
      expect((await client.waitClosed()).toString()).toBe('');
    });

    test('BAD_COMMAND after good requests still answers them first', async () => {
      const client = await connect();
      await client.send(Buffer.concat([uploadRequest('ok.txt', 'ok'), Buffer.from('FROB\n'), uploadRequest('never.txt', 'never')]));
      expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 2 ${sha256('ok')}`, expect.stringMatching(/^ERR BAD_COMMAND /)]);
      expect((await client.waitClosed()).toString()).toBe('');
      expect(await userFiles(server.root)).toEqual(['ok.txt']);
    });

    test('a line longer than max-line: LINE_TOO_LONG with the real byte count, then close', async () => {
      const client = await connect();
      const line = `DOWNLOAD${'x'.repeat(5000)}\n`;
      await client.send(line);
      const reply = await client.readLine();
      expect(reply).toMatch(/^ERR LINE_TOO_LONG /);
      const numbers = (reply.match(/\d+/g) ?? []).map(Number);
      expect(numbers).toContain(4096);
      expect(numbers.some((n) => n > 4096 && n <= line.length)).toBe(true);
      expect((await client.waitClosed()).toString()).toBe('');
    });

    test('a name line longer than max-line (counted in bytes): LINE_TOO_LONG, then close', async () => {
      const client = await connect();
      // 1400 characters, 4200 bytes.
      await client.send(`UPLOAD 1\n${'日'.repeat(1400)}\nx`);
      expect(await client.readLine()).toMatch(/^ERR LINE_TOO_LONG /);
      expect((await client.waitClosed()).toString()).toBe('');
    });

    test('a bad trailer: BAD_TRAILER, then close; nothing committed, the staging file deleted', async () => {
      const client = await connect();
      await client.send(`UPLOAD 4\nt.txt\ndataSHA256 not-a-digest\n`);
      expect(await client.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^ERR BAD_TRAILER /)]);
      expect((await client.waitClosed()).toString()).toBe('');
      expect(await userFiles(server.root)).toEqual([]);
      await eventually(async () => (await stagingFiles(server.root)).length === 0, 2000, 'the staging file to be deleted');
      await stillServes();
    });
  });

  test('UPLOAD over limits.maxFileBytes: TOO_LARGE (one reply, data dropped); exactly the limit is accepted', async () => {
    const limited = await serve({ config: { limits: { maxFileBytes: 10 } } });
    const client = await connect(limited.port);
    await client.send(Buffer.concat([uploadRequest('big.bin', Buffer.alloc(11, 'b')), uploadRequest('fits.bin', Buffer.alloc(10, 'f')), uploadRequest('empty.bin', '')]));
    expect(await client.readLines(5)).toEqual([
      expect.stringMatching(/^ERR TOO_LARGE /),
      'OK file recv',
      `OK file data recv 10 ${sha256(Buffer.alloc(10, 'f'))}`,
      'OK file recv',
      `OK file data recv 0 ${sha256('')}`,
    ]);
    expect(await userFiles(limited.root)).toEqual(['empty.bin', 'fits.bin']);
  });

  describe('a folder where the file would go, or a file where a folder is needed: NAME_CONFLICT', () => {
    test('UPLOAD, ADDFILE and DOWNLOAD of a name that is a folder; the folder is untouched', async () => {
      await mkdir(join(server.root, 'folder', 'inner'), { recursive: true });
      await writeFile(join(server.root, 'folder', 'inner', 'keep.txt'), 'keep');
      const client = await connect();
      await client.send(
        Buffer.concat([
          uploadRequest('folder', 'data'),
          uploadRequest('folder/inner', Buffer.alloc(2 * MiB)),
          uploadRequest('folder/inner', 'data', { verb: 'ADDFILE' }),
          downloadRequest('folder'),
          uploadRequest('ok.txt', 'ok'),
        ]),
      );
      for (let i = 0; i < 4; i++) expect(await client.readUploadOutcome()).toMatch(/^ERR NAME_CONFLICT /);
      expect(await client.readLines(2)).toEqual(['OK file recv', `OK file data recv 2 ${sha256('ok')}`]);
      expect(await userFiles(server.root)).toEqual(['folder/inner/keep.txt', 'ok.txt']);
      await eventually(async () => (await stagingFiles(server.root)).length === 0, 2000, 'staging files to be deleted');
    });

    test('DOWNLOAD below a name that is a file', async () => {
      await writeFile(join(server.root, 'plain'), 'plain');
      const client = await connect();
      await client.send(downloadRequest('plain/x'));
      expect(await client.readLine()).toMatch(/^ERR NAME_CONFLICT /);
    });

    test('UPLOAD below a name that is a file', async () => {
      await writeFile(join(server.root, 'plain'), 'plain');
      const client = await connect();
      await client.send(uploadRequest('plain/x', 'data'));
      expect(await client.readUploadOutcome()).toMatch(/^ERR NAME_CONFLICT /);
    });
  });

  describe('a symlink planted in the root that points outside it', () => {
    let outside: string;
    beforeEach(async () => {
      outside = join(server.scratch, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'secret.txt'), 'secret');
      await symlink(outside, join(server.root, 'evil'));
      await symlink(join(outside, 'secret.txt'), join(server.root, 'link.txt'));
    });
    const outsideFiles = () => readdir(outside, { recursive: true });

    test('UPLOAD, ADDFILE and DOWNLOAD through it are NAME_INVALID; nothing is written outside', async () => {
      const client = await connect();
      await client.send(
        Buffer.concat([uploadRequest('evil/x', 'pwned'), uploadRequest('evil/y', 'pwned', { verb: 'ADDFILE' }), downloadRequest('evil/secret.txt'), downloadRequest('evil/missing.txt')]),
      );
      for (let i = 0; i < 4; i++) expect(await client.readUploadOutcome()).toMatch(/^ERR NAME_INVALID /);
      expect(await outsideFiles()).toEqual(['secret.txt']);
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      await stillServes();
    });

    test('a DOWNLOAD of a symlinked file is refused; an UPLOAD to its name never writes through it', async () => {
      const client = await connect();
      await client.send(downloadRequest('link.txt'));
      expect(await client.readLine()).toMatch(/^ERR NAME_INVALID /);
      await client.send(uploadRequest('link.txt', 'overwrite'));
      expect(await client.readUploadOutcome()).toMatch(/^(OK file data recv|ERR NAME_INVALID) /);
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect(await outsideFiles()).toEqual(['secret.txt']);
    });

    test('ADDFILE through it of a name that exists outside is NAME_INVALID, not EXISTS', async () => {
      const client = await connect();
      await client.send(uploadRequest('evil/secret.txt', 'x', { verb: 'ADDFILE' }));
      expect(await client.readUploadOutcome()).toMatch(/^ERR NAME_INVALID /);
    });

    test('an UPLOAD through it into a new folder creates no folder outside', async () => {
      const client = await connect();
      await client.send(uploadRequest('evil/new-folder/x', 'pwned'));
      expect(await client.readUploadOutcome()).toMatch(/^ERR NAME_INVALID /);
      expect(await outsideFiles()).toEqual(['secret.txt']);
    });
  });

  test('limits.idleTimeoutMs: an idle client, and one that stopped mid-line, get IDLE_TIMEOUT and are closed', async () => {
    const idle = await serve({ config: { limits: { idleTimeoutMs: 1000 } } });
    const [quiet, halfLine] = await Promise.all([connect(idle.port), connect(idle.port)]);
    await halfLine.send('UPLO');
    const [a, b] = await Promise.all([quiet.readLine(), halfLine.readLine()]);
    expect(a).toMatch(/^ERR IDLE_TIMEOUT /);
    expect(b).toMatch(/^ERR IDLE_TIMEOUT /);
    expect((await quiet.waitClosed()).toString()).toBe('');
    expect((await halfLine.waitClosed()).toString()).toBe('');
  });

  describe('server.maxConnections: 2', () => {
    let limited: TestServer;
    beforeEach(async () => {
      limited = await serve({ config: { server: { maxConnections: 2 } } });
    });

    test('a third connection gets TOO_MANY_CONNECTIONS instead of the greeting; a freed slot is reused', async () => {
      const first = await connect(limited.port);
      await connect(limited.port);
      const third = await connect(limited.port, { readGreeting: false });
      expect(await third.readLine()).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
      expect((await third.waitClosed()).toString()).toBe('');

      await first.send('QUIT\n');
      expect(await first.readLine()).toBe('OK bye');
      await first.waitClosed();
      await eventually(async () => {
        const next = await connect(limited.port, { readGreeting: false });
        return (await next.readLine()).startsWith('OK rxfer/1 ');
      }, 3000, 'a connection to be accepted again');
    });

    test('a client that disconnects without QUIT frees its slot', async () => {
      const first = await connect(limited.port);
      await connect(limited.port);
      first.destroy();
      await eventually(async () => {
        const next = await connect(limited.port, { readGreeting: false });
        return (await next.readLine()).startsWith('OK rxfer/1 ');
      }, 1000, 'a connection to be accepted again');
    });
  });

  test('DOWNLOAD then UPLOAD then DOWNLOAD of one name in one write: each download sees the state in request order', async () => {
    await writeFile(join(server.root, 'order.txt'), 'before');
    const client = await connect();
    await client.send(Buffer.concat([downloadRequest('order.txt'), uploadRequest('order.txt', 'after!'), downloadRequest('order.txt')]));
    expect(await client.readLine()).toBe(`OK 6 ${sha256('before')}`);
    expect((await client.readBytes(6)).toString()).toBe('before');
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 6 ${sha256('after!')}`, `OK 6 ${sha256('after!')}`]);
    expect((await client.readBytes(6)).toString()).toBe('after!');
  });

  test('UPLOAD then DOWNLOAD of the same name in one write: the download sees the upload (read-your-writes)', async () => {
    await writeFile(join(server.root, 'rw.bin'), 'stale');
    const v1 = randomBytes(200_000);
    const v2 = randomBytes(1000);
    const client = await connect();
    await client.send(Buffer.concat([uploadRequest('rw.bin', v1), downloadRequest('rw.bin'), uploadRequest('rw.bin', v2), downloadRequest('rw.bin')]));
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv ${v1.length} ${sha256(v1)}`, `OK ${v1.length} ${sha256(v1)}`]);
    expect((await client.readBytes(v1.length)).equals(v1)).toBe(true);
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv ${v2.length} ${sha256(v2)}`, `OK ${v2.length} ${sha256(v2)}`]);
    expect((await client.readBytes(v2.length)).equals(v2)).toBe(true);
  });

  describe('a peer that sends everything and half-closes (nc -N)', () => {
    const script = Buffer.concat([uploadRequest('nc.txt', 'hello\n'), downloadRequest('nc.txt'), downloadRequest('missing.txt')]);

    test('still gets every reply', async () => {
      const client = await connect();
      await client.send(script);
      client.end();
      expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 6 ${sha256('hello\n')}`, `OK 6 ${sha256('hello\n')}`]);
      expect((await client.readBytes(6)).toString()).toBe('hello\n');
      expect(await client.readLine()).toMatch(/^NOT FOUND /);
      expect(await readFile(join(server.root, 'nc.txt'), 'utf8')).toBe('hello\n');
    });

    test('with QUIT at the end, gets every reply and then the server closes', async () => {
      const client = await connect();
      await client.send(Buffer.concat([script, Buffer.from('QUIT\n')]));
      client.end();
      expect(await client.readLines(3)).toHaveLength(3);
      await client.readBytes(6);
      expect(await client.readLine()).toMatch(/^NOT FOUND /);
      expect(await client.readLine()).toBe('OK bye');
      expect((await client.waitClosed()).toString()).toBe('');
    });

    test('without QUIT, the server closes its side once the last reply is sent', async () => {
      const client = await connect();
      await client.send(script);
      client.end();
      await client.readLines(3);
      await client.readBytes(6);
      await client.readLine();
      await client.waitClosed(1000);
    });
  });
});
