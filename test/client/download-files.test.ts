import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { RxferClient, RxferError } from '../../src/client/index';
import { startTestServer, type TestServer } from './real-server';
import { scriptedServer, type ScriptedServer } from '../unit/client/support/scripted-server';

/**
 * RxferClient.downloadFiles (src/client/download-file.request.ts): many downloads as one request of
 * the client, each file checked, received, verified and committed as `download` does it, and each
 * settling on its own. Against the real server on 127.0.0.1, and a scripted one where a server must lie
 * or cut the connection at a chosen byte.
 */

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;

/** The files a folder holds that a download stages in (small ones stage under `.NAME.rxfer-part-…`, large ones in `.NAME.rxfer-resume`). */
const staging = async (folder: string) => (await readdir(folder)).filter((name) => name.includes('.rxfer-'));

const reasonOf = (outcome: PromiseSettledResult<unknown>): RxferError => {
  expect(outcome.status).toBe('rejected');
  const { reason } = outcome as PromiseRejectedResult;
  expect(reason).toBeInstanceOf(RxferError);
  return reason as RxferError;
};

describe('downloadFiles against the real server', () => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  test('files of every size land byte-identical, each with its own result, in order', async () => {
    // In memory up to 64 KiB; above, a staging file; from 1 MiB, the resumable one.
    const sizes = [0, 1, 4 * KiB, 64 * KiB, 64 * KiB + 1, 2 * MiB + 3];
    const files = sizes.map((size, i) => ({ name: `g/f${i}`, data: randomBytes(size) }));
    for (const { name, data } of files) await client.uploadBuffer(name, data);
    const outcomes = await client.downloadFiles(files.map(({ name }, i) => ({ remoteName: name, localPath: join(server.local, `out${i}`) })));
    expect(outcomes).toEqual(files.map(({ data }) => ({ status: 'fulfilled', value: { size: data.length, digest: sha256(data) } })));
    for (const [i, { data }] of files.entries()) expect((await readFile(join(server.local, `out${i}`))).equals(data)).toBe(true);
    expect(await staging(server.local)).toEqual([]);
  });

  test('a file the server does not have fails alone; the files around it land, and the connection goes on', async () => {
    await client.uploadBuffer('a', Buffer.from('aaa'));
    await client.uploadBuffer('c', Buffer.from('ccc'));
    const outcomes = await client.downloadFiles(['a', 'missing', 'c'].map((name) => ({ remoteName: name, localPath: join(server.local, name) })));
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: { size: 3, digest: sha256(Buffer.from('aaa')) } });
    expect(reasonOf(outcomes[1]!).code).toBe('NOT_FOUND');
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled' });
    expect((await readdir(server.local)).sort()).toEqual(['a', 'c']);
    await expect(client.uploadBuffer('after', Buffer.from('x'))).resolves.toMatchObject({ size: 1 });
  });

  test('a target refused before sending (a directory, an unfinished download`s name) fails alone and is left as it was', async () => {
    for (const name of ['a', 'b', 'c']) await client.uploadBuffer(name, Buffer.from(name));
    const folder = join(server.local, 'is-a-folder');
    await mkdir(folder);
    await writeFile(join(folder, 'keep'), 'keep');
    const outcomes = await client.downloadFiles([
      { remoteName: 'a', localPath: join(server.local, 'a') },
      { remoteName: 'b', localPath: folder },
      { remoteName: 'c', localPath: join(server.local, '.x.rxfer-resume') },
      { remoteName: 'c', localPath: join(server.local, 'c') },
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(reasonOf(outcomes[1]!)).toMatchObject({ code: 'LOCAL_IO', message: expect.stringContaining('it is a directory') });
    expect(reasonOf(outcomes[2]!)).toMatchObject({ code: 'LOCAL_IO', message: expect.stringContaining('rxfer keeps interrupted downloads') });
    expect(await readdir(folder)).toEqual(['keep']);
    expect((await readdir(server.local)).sort()).toEqual(['a', 'c', 'is-a-folder']);
    await expect(client.uploadBuffer('after', Buffer.from('x'))).resolves.toMatchObject({ size: 1 });
  });

  test('intoNewFolder per file: a directory made under one name meanwhile fails that file only', async () => {
    for (const name of ['a', 'b']) await client.uploadBuffer(name, Buffer.from(name));
    const folder = join(server.local, 'made-meanwhile');
    await mkdir(folder);
    const outcomes = await client.downloadFiles([
      { remoteName: 'a', localPath: join(server.local, 'a'), intoNewFolder: true },
      { remoteName: 'b', localPath: folder, intoNewFolder: true },
    ]);
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled' });
    expect(reasonOf(outcomes[1]!).code).toBe('LOCAL_IO');
    expect(await readdir(folder)).toEqual([]);
    expect(await staging(server.local)).toEqual([]);
  });

  test('resume: false lets go of the kept bytes of an interrupted download, and fetches the whole file', async () => {
    const data = randomBytes(2 * MiB);
    await client.uploadBuffer('big', data);
    // What an interrupted download left: the first MiB, kept beside the target.
    await writeFile(join(server.local, '.big.rxfer-resume'), data.subarray(0, MiB));
    const [outcome] = await client.downloadFiles([{ remoteName: 'big', localPath: join(server.local, 'big') }], { resume: false });
    expect(outcome).toEqual({ status: 'fulfilled', value: { size: data.length, digest: sha256(data) } });
    expect(await readdir(server.local)).toEqual(['big']);
  });

  test('none to send: settles at once, and the connection is untouched', async () => {
    await expect(client.downloadFiles([])).resolves.toEqual([]);
    const folder = join(server.local, 'dir');
    await mkdir(folder);
    const outcomes = await client.downloadFiles([{ remoteName: 'x', localPath: folder }]);
    expect(reasonOf(outcomes[0]!).code).toBe('LOCAL_IO');
    await expect(client.uploadBuffer('after', Buffer.from('x'))).resolves.toMatchObject({ size: 1 });
  });
});

describe('downloadFiles against a server that lies or cuts', () => {
  const files = ['one', 'two', 'three'].map((name) => ({ name, data: Buffer.from(`${name} `.repeat(100)) }));
  const answerOf = ({ data }: { data: Buffer }, digest = sha256(data)) => Buffer.concat([Buffer.from(`OK ${data.length} ${digest}\n`), data]);
  let server: ScriptedServer;
  let local: string;

  beforeEach(async () => {
    local = join(tmpdir(), `rxfer-download-files-${process.pid}-${Date.now()}`);
    await mkdir(local, { recursive: true });
    for (const { name } of files) await writeFile(join(local, name), 'before');
  });
  afterEach(async () => {
    await server.close();
    await rm(local, { recursive: true, force: true });
  });

  const run = async (answer: (socket: Socket) => void) => {
    const sockets: Socket[] = [];
    // Answered once all three requests are in: a client that waited for a reply before sending the next would hang here.
    server = await scriptedServer('', (_request, socket, n) => {
      sockets.push(socket);
      if (n === files.length) answer(socket);
    });
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const outcomes = await client.downloadFiles(files.map(({ name }) => ({ remoteName: name, localPath: join(local, name) })));
      return { outcomes, requests: server.requests, closed: client.isClosed };
    } finally {
      client.close();
    }
  };

  test('all the requests leave before any reply is read; a wrong digest fails that file only, and leaves its target as it was', async () => {
    const { outcomes, requests, closed } = await run((socket) => socket.write(Buffer.concat([answerOf(files[0]!), answerOf(files[1]!, sha256(Buffer.from('other'))), answerOf(files[2]!)])));
    expect(requests).toEqual(files.map(({ name }) => `DOWNLOAD\n${name}\n`));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(reasonOf(outcomes[1]!).code).toBe('CHECKSUM_MISMATCH');
    expect(await readFile(join(local, 'one'))).toEqual(files[0]!.data);
    expect(await readFile(join(local, 'two'), 'utf8')).toBe('before');
    expect(await readFile(join(local, 'three'))).toEqual(files[2]!.data);
    expect(closed).toBe(false);
    expect(await staging(local)).toEqual([]);
  });

  test('cut in the middle of the second body: the first lands, the others fail with the loss and leave their targets as they were', async () => {
    const { outcomes } = await run((socket) => {
      const second = answerOf(files[1]!);
      socket.write(Buffer.concat([answerOf(files[0]!), second.subarray(0, second.length - 10)]), () => socket.destroy());
    });
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled' });
    expect(reasonOf(outcomes[1]!).code).toBe('CONNECTION_LOST');
    expect(reasonOf(outcomes[2]!).code).toBe('CONNECTION_LOST');
    expect(await readFile(join(local, 'one'))).toEqual(files[0]!.data);
    expect(await readFile(join(local, 'two'), 'utf8')).toBe('before');
    expect(await readFile(join(local, 'three'), 'utf8')).toBe('before');
    expect(await staging(local)).toEqual([]);
  });

  test('a resume nobody asked for ends the connection: that file and the ones after it fail, the ones before it stand', async () => {
    const { outcomes, closed } = await run((socket) => {
      const { data } = files[1]!;
      socket.write(Buffer.concat([answerOf(files[0]!), Buffer.from(`OK ${data.length} ${sha256(data)} from 3\n`), data.subarray(3), answerOf(files[2]!)]));
    });
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled' });
    expect(reasonOf(outcomes[1]!)).toMatchObject({ code: 'PROTOCOL_VIOLATION', message: expect.stringContaining('which was not asked for') });
    expect(reasonOf(outcomes[2]!).code).toBe('CONNECTION_LOST');
    expect(closed).toBe(true);
    expect(await readFile(join(local, 'two'), 'utf8')).toBe('before');
    expect(await readFile(join(local, 'three'), 'utf8')).toBe('before');
  });

  test('a large file cut mid-body keeps what arrived for the next attempt (its .rxfer-resume), and the files after it fail', async () => {
    const big = randomBytes(2 * MiB);
    const { outcomes } = await run((socket) => {
      socket.write(Buffer.concat([answerOf(files[0]!), Buffer.from(`OK ${big.length} ${sha256(big)}\n`), big.subarray(0, MiB + 5)]), () => socket.destroy());
    });
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled' });
    expect(reasonOf(outcomes[1]!).code).toBe('CONNECTION_LOST');
    expect(reasonOf(outcomes[2]!).code).toBe('CONNECTION_LOST');
    expect(await readFile(join(local, 'two'), 'utf8')).toBe('before');
    // Kept exactly as received, so that the next download of `two` offers them to the server.
    expect((await readFile(join(local, '.two.rxfer-resume'))).equals(big.subarray(0, MiB + 5))).toBe(true);
  });

  test('a reply out of the protocol ends the connection: the files after it fail, the ones before it stand', async () => {
    const { outcomes, closed } = await run((socket) => socket.write(Buffer.concat([answerOf(files[0]!), Buffer.from('WHAT is this\n')])));
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled' });
    expect(reasonOf(outcomes[1]!).code).toBe('PROTOCOL_VIOLATION');
    expect(reasonOf(outcomes[2]!).code).toBe('CONNECTION_LOST');
    expect(closed).toBe(true);
    expect(await readFile(join(local, 'three'), 'utf8')).toBe('before');
  });
});
