import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/index';
import { TOKENS } from '../../src/container/tokens';
import { toRxferError } from '../../src/errors/rxfer-error';
import type { RemoteName } from '../../src/protocol/remote-name';
import type { FileStatus, HashChoice, Jail, ListedFile, ReadHandle, ReadOptions, StagedWrite, WriteOptions } from '../../src/storage/storage-adapter';
import { MemoryStorage } from '../../src/storage/memory.storage';
import { RawClient, destroyAll, downloadRequest, readListAnswer, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer, userFiles } from '../helpers/server';
import { SecureServer, makeUser, startSecureServer } from '../security/support/server';

/**
 * Issue 14, the session's part: replies that were not true, and requests that took effect when they
 * must not. Each test failed on the code before the fix, except the guards of the class: the
 * protocol errors (the decoder already stopped at them) and a LIST that must not hold up other names.
 */

const MiB = 1024 * 1024;

describe('issue 14: nothing sent after a reply that closes the connection takes effect', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async (port = server.port) => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };
  /** keep must survive, and no `new` may appear; checked after a later round trip on a fresh connection. */
  const expectUntouched = async (root: string, port: number) => {
    const probe = await connect(port);
    await probe.send('STAT\nkeep\n');
    expect(await probe.readLine()).toMatch(/^OK stat file 8 /);
    expect(await readFile(join(root, 'keep'), 'utf8')).toBe('keep me\n');
    expect((await userFiles(root)).filter((name) => name.startsWith('new'))).toEqual([]);
  };

  beforeEach(async () => {
    server = await startTestServer();
    await writeFile(join(server.root, 'keep'), 'keep me\n');
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('QUIT: the DELETE and UPLOAD sent behind it are discarded; the STAT before it is answered', async () => {
    for (let round = 0; round < 5; round++) {
      const client = await connect();
      await client.send(Buffer.concat([Buffer.from('STAT\nx\nQUIT\nDELETE\nkeep\nHASH BLAKE3\n'), uploadRequest(`new${round}`, 'must not be stored\n')]));
      expect(await client.readLine()).toMatch(/^NOT FOUND /);
      expect(await client.readLine()).toBe('OK bye');
      expect((await client.waitClosed()).toString()).toBe('');
      await expectUntouched(server.root, server.port);
    }
  });

  test.each([
    ['BAD_COMMAND', Buffer.from('BOGUS\n')],
    ['LINE_TOO_LONG', Buffer.from(`STAT\n${'n'.repeat(5000)}\n`)],
    ['BAD_TRAILER', Buffer.from('UPLOAD 1\nt\nxSHA1 00\n')],
  ])('%s: the requests behind it are discarded, the ones before it answered in order', async (code, bad) => {
    const client = await connect();
    await client.send(Buffer.concat([Buffer.from('STAT\nx\n'), bad, Buffer.from('DELETE\nkeep\n'), uploadRequest('new', 'must not be stored\n')]));
    expect(await client.readLine()).toMatch(/^NOT FOUND /);
    if (code === 'BAD_TRAILER') expect(await client.readLine()).toBe('OK file recv');
    expect(await client.readLine()).toMatch(new RegExp(`^ERR ${code} `));
    expect((await client.waitClosed()).toString()).toBe('');
    await expectUntouched(server.root, server.port);
  });

  test('SHUTTING_DOWN at the end of the request in flight: what was sent behind it is discarded', async () => {
    const stopping = await startTestServer({ config: { server: { shutdownGraceMs: 10_000 } } });
    try {
      await writeFile(join(stopping.root, 'keep'), 'keep me\n');
      const data = randomBytes(MiB);
      const uploader = await connect(stopping.port);
      const idle = await connect(stopping.port);
      await uploader.send(`UPLOAD ${data.length}\nlate.bin\n`);
      expect(await uploader.readLine()).toBe('OK file recv');
      await uploader.send(data.subarray(0, MiB / 2));
      const stopped = stopping.stop();
      // The idle client hears at once: the uploader's session has been told too.
      expect(await idle.readLine()).toMatch(/^ERR SHUTTING_DOWN /);
      await uploader.send(Buffer.concat([data.subarray(MiB / 2), Buffer.from(`SHA256 ${sha256(data)}\nDELETE\nkeep\n`), uploadRequest('new', 'must not be stored\n')]));
      expect(await uploader.readLine()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
      expect(await uploader.readLine()).toMatch(/^ERR SHUTTING_DOWN /);
      expect((await uploader.waitClosed()).toString()).toBe('');
      await stopped;
      expect(await readFile(join(stopping.root, 'keep'), 'utf8')).toBe('keep me\n');
      expect(await userFiles(stopping.root)).toEqual(['keep', 'late.bin']);
    } finally {
      await stopping.close();
    }
  });
});

describe('issue 14: nothing sent after a failed AUTH takes effect', () => {
  let secure: SecureServer;
  const clients: RawClient[] = [];

  beforeAll(async () => {
    const alice = await makeUser('alice', 'write', 'alice');
    // Anonymous clients may write: a request that slipped past the failed AUTH would run as them.
    secure = await startSecureServer({ auth: { users: [alice.entry], anonymous: 'write' } });
  });
  afterEach(() => destroyAll(clients));
  afterAll(() => secure.close());

  test('behind a download in flight: the download is answered in full, then AUTH_FAILED, and the DELETE and UPLOAD never run', async () => {
    const big = randomBytes(4 * MiB);
    await writeFile(join(secure.root, 'big.bin'), big);
    for (let round = 0; round < 3; round++) {
      await writeFile(join(secure.root, 'keep'), 'keep me\n');
      const client = await RawClient.connect(secure.port);
      clients.push(client);
      const wrong = `AUTH alice.${'A'.repeat(43)}\n`;
      await client.send(Buffer.concat([downloadRequest('big.bin'), Buffer.from(`${wrong}DELETE\nkeep\n`), uploadRequest(`new${round}`, 'must not be stored\n')]));
      expect(await client.readLine()).toBe(`OK ${big.length} ${sha256(big)}`);
      expect((await client.readBytes(big.length, 20_000)).equals(big)).toBe(true);
      expect(await client.readLine(20_000)).toBe('ERR AUTH_FAILED unknown user or wrong token');
      expect((await client.waitClosed()).toString()).toBe('');
      await eventually(() => secure.connections() === 0, 5000, 'the session to end');
      expect(await readFile(join(secure.root, 'keep'), 'utf8')).toBe('keep me\n');
      expect((await readdir(secure.root)).filter((name) => name.startsWith('new'))).toEqual([]);
    }
  });
});

/** The memory adapter, failing every call on names under `broken` the way a raw fs call does. */
class FailingStorage extends MemoryStorage {
  private check(name: string): void {
    if (name === 'broken' || name.startsWith('broken/')) {
      // What fs throws: an errno code and a message with the server's own path in it.
      throw Object.assign(new Error(`EIO: i/o error, open '/srv/private/${name}'`), { code: 'EIO', errno: -5, syscall: 'open' });
    }
  }
  override async stat(name: RemoteName, options?: HashChoice): Promise<FileStatus> {
    this.check(name);
    return super.stat(name, options);
  }
  override async remove(name: RemoteName): Promise<number> {
    this.check(name);
    return super.remove(name);
  }
  override async openRead(name: RemoteName, options?: ReadOptions): Promise<ReadHandle> {
    this.check(name);
    return super.openRead(name, options);
  }
  override async list(prefix: string, options: Jail & HashChoice & { limit: number }): Promise<ListedFile[]> {
    this.check(prefix);
    return super.list(prefix, options);
  }
  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    this.check(name);
    return super.beginWrite(name, options);
  }
  /** As an adapter that wraps what it does not know with toRxferError: INTERNAL, the errno as its cause. */
  override async rename(from: RemoteName, to: RemoteName): Promise<void> {
    try {
      this.check(from);
    } catch (err) {
      throw toRxferError(err);
    }
    return super.rename(from, to);
  }
}

describe('issue 14: a storage failure is the request failing (STORAGE_FAILED), not INTERNAL closing the session', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    server = await startTestServer({ customize: (container) => container.rebind(TOKENS.Storage).toConstantValue(new FailingStorage()) });
  });
  afterEach(() => destroyAll(clients));
  afterAll(() => server.close());

  test('STAT, DELETE, RENAME, DOWNLOAD, LIST and UPLOAD each get STORAGE_FAILED without the path; the requests behind them are served', async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(
      Buffer.concat([
        Buffer.from('STAT\nbroken/a\nDELETE\nbroken/a\nRENAME\nbroken/a\nelsewhere\n'),
        downloadRequest('broken/a'),
        Buffer.from('LIST\nbroken\n'),
        uploadRequest('broken/b', 'data\n'),
        uploadRequest('fine', 'data\n'),
        Buffer.from('STAT\nfine\n'),
      ]),
    );
    const replies = await client.readLines(6);
    for (const reply of replies) {
      expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO \(i\/o error\)/);
      expect(reply).not.toContain('/srv/private');
    }
    expect(await client.readLines(3)).toEqual(['OK file recv', `OK file data recv 5 ${sha256('data\n')}`, expect.stringMatching(/^OK stat file 5 /)]);
    expect(client.serverClosed).toBe(false);
  });
});

describe('issue 14: a LIST sees the requests sent before it and none sent after it', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const ROUNDS = 20;
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test(`LIST lo then DELETE lo/old: the listing has old, ${ROUNDS} rounds`, async () => {
    server = await startTestServer();
    await mkdir(join(server.root, 'lo'));
    for (const name of ['a', 'b', 'c', 'd']) await writeFile(join(server.root, 'lo', name), `${name}\n`);
    const client = await RawClient.connect(server.port);
    clients.push(client);
    for (let round = 0; round < ROUNDS; round++) {
      await writeFile(join(server.root, 'lo', 'old'), 'old\n');
      await client.send('LIST\nlo\nDELETE\nlo/old\n');
      const names = (await readListAnswer(client)).files.map((file) => file.name);
      expect(names.sort()).toEqual(['lo/a', 'lo/b', 'lo/c', 'lo/d', 'lo/old']);
      expect(await client.readLine()).toBe('OK deleted');
    }
  });

  test(`an upload pipelined behind a LIST of everything does not push it over limits.maxListEntries, ${ROUNDS} rounds`, async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: 5 } } });
    for (const folder of ['p', 'q']) await mkdir(join(server.root, folder));
    for (const name of ['f', 'p/f', 'p/g', 'q/f', 'q/g']) await writeFile(join(server.root, name), `${name}\n`);
    const client = await RawClient.connect(server.port);
    clients.push(client);
    for (let round = 0; round < ROUNDS; round++) {
      const name = ['extra', 'p/extra', 'q/extra'][round % 3]!;
      await client.send(Buffer.concat([Buffer.from('LIST\n\n'), uploadRequest(name, 'one too many\n'), Buffer.from(`DELETE\n${name}\n`)]));
      expect((await readListAnswer(client)).count).toBe(5);
      expect(await client.readLines(3)).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /), 'OK deleted']);
    }
  });

  test('requests on other names than the listed folder still run (and a LIST after them sees them)', async () => {
    server = await startTestServer();
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(Buffer.concat([Buffer.from('LIST\nlo\n'), uploadRequest('elsewhere/x', 'x\n'), Buffer.from('LIST\n\n')]));
    expect(await client.readLine()).toBe('OK list 0 0');
    expect(await client.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
    expect((await readListAnswer(client)).files.map((file) => file.name)).toEqual(['elsewhere/x']);
  });
});

describe('issue 14: one name has one spelling (NFC); verbs and keywords are ASCII', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };
  const NFC = 'caf\u00e9.txt';
  const NFD = 'cafe\u0301.txt';

  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('the server refuses a name that is not NFC with NAME_INVALID, saying to send NFC; the NFC spelling is stored as sent', async () => {
    const client = await connect();
    await client.send(Buffer.concat([uploadRequest(NFD, 'decomposed\n'), uploadRequest(NFC, 'composed\n'), downloadRequest(NFD), Buffer.from(`STAT\n${NFD}\nLIST\nno\u0308\n`)]));
    const refusal = await client.readUploadOutcome();
    expect(refusal).toMatch(/^ERR NAME_INVALID .*NFC/);
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 9 /);
    for (const reply of await client.readLines(3)) expect(reply).toMatch(/^ERR NAME_INVALID .*NFC/);
    // Exactly the composed spelling on disk (toEqual compares code units, so NFD would not pass).
    expect(await userFiles(server.root)).toEqual([NFC]);
  });

  test('the client library sends every name in NFC: an NFD spelling reaches the one file', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      // "dír/café.txt" typed decomposed, as macOS spells it, then composed: one file, replaced.
      await client.uploadBuffer(`di\u0301r/${NFD}`, Buffer.from('one\n'));
      await client.uploadBuffer(`d\u00edr/${NFC}`, Buffer.from('two\n'));
      expect(await userFiles(server.root)).toEqual([`d\u00edr/${NFC}`]);
      expect((await client.downloadBuffer(`di\u0301r/${NFD}`)).data.toString()).toBe('two\n');
    } finally {
      client.close();
    }
  });

  test.each([
    ['\u017Ftat', 'long s: upper-cases to STAT'],
    ['\uFB06at', 'the st ligature: upper-cases to STAT'],
    ['qu\u0131t', 'dotless i: upper-cases to QUIT'],
    ['l\u0131st', 'dotless i: upper-cases to LIST'],
    ['STAT\u3000', 'an ideographic space after the verb'],
  ])('%j (%s) is BAD_COMMAND', async (verb) => {
    const client = await connect();
    await client.send(`${verb}\nx\n`);
    expect(await client.readLine()).toMatch(/^ERR BAD_COMMAND /);
    expect((await client.waitClosed()).toString()).toBe('');
  });

  test('lower- and mixed-case ASCII verbs are still accepted; a Kelvin sign in HASH BLAKE3 is not BLAKE3', async () => {
    await rm(join(server.root, 'x'), { force: true });
    const client = await connect();
    await client.send(`stat\nx\nStAt\nx\nHASH BLA\u212AE3\nhash blake3\n`);
    expect(await client.readLines(4)).toEqual([
      expect.stringMatching(/^NOT FOUND /),
      expect.stringMatching(/^NOT FOUND /),
      expect.stringMatching(/^ERR HASH_UNSUPPORTED /),
      expect.stringMatching(/^OK hash blake3$|^ERR HASH_UNSUPPORTED /),
    ]);
  });
});
