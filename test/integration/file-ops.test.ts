import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/index';
import { RxferError } from '../../src/errors/rxfer-error';
import { startTestServer, stagingFiles, type TestServer } from '../helpers/server';

const codeOf = (err: unknown): string | undefined => (err instanceof RxferError ? err.code : undefined);

describe('STAT, DELETE, RENAME, MKDIR over a real server', () => {
  let server: TestServer;
  let client: RxferClient;
  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  test('STAT reports files and folders; a missing name is NOT_FOUND', async () => {
    await client.uploadBuffer('docs/a.txt', Buffer.from('alpha\n'));
    const file = await client.stat('docs/a.txt');
    expect(file).toMatchObject({ type: 'file', size: 6 });
    expect(file.digest).toBe(createHash('sha256').update('alpha\n').digest('hex'));
    expect(file.mtimeMs).toBeCloseTo((await stat(join(server.root, 'docs', 'a.txt'))).mtimeMs, -1);
    expect(await client.stat('docs')).toMatchObject({ type: 'folder', size: 0 });
    expect(codeOf(await client.stat('nope').catch((err: unknown) => err))).toBe('NOT_FOUND');
  });

  test('STAT gives the SHA-256 of what is stored', async () => {
    const { digest } = await client.uploadBuffer('s.bin', Buffer.from('some bytes'));
    expect((await client.stat('s.bin')).digest).toBe(digest);
  });

  test('RENAME moves a file (creating folders) and never replaces an existing name', async () => {
    await client.uploadBuffer('from.txt', Buffer.from('moving\n'));
    await client.uploadBuffer('taken.txt', Buffer.from('keep me\n'));
    await client.rename('from.txt', 'new/place/to.txt');
    expect(await readFile(join(server.root, 'new', 'place', 'to.txt'), 'utf8')).toBe('moving\n');
    expect(codeOf(await client.stat('from.txt').catch((err: unknown) => err))).toBe('NOT_FOUND');
    expect(codeOf(await client.rename('new/place/to.txt', 'taken.txt').catch((err: unknown) => err))).toBe('EXISTS');
    expect(await readFile(join(server.root, 'taken.txt'), 'utf8')).toBe('keep me\n');
    expect(codeOf(await client.rename('new', 'new/inside').catch((err: unknown) => err))).toBe('NAME_CONFLICT');
    await client.rename('new', 'renamed');
    expect(await readFile(join(server.root, 'renamed', 'place', 'to.txt'), 'utf8')).toBe('moving\n');
  });

  test('DELETE removes files and empty folders only', async () => {
    await client.uploadBuffer('d/x.txt', Buffer.from('x'));
    expect(codeOf(await client.remove('d').catch((err: unknown) => err))).toBe('NAME_CONFLICT');
    await client.remove('d/x.txt');
    await client.remove('d');
    expect(codeOf(await client.remove('d').catch((err: unknown) => err))).toBe('NOT_FOUND');
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('MKDIR creates a folder and its parents; an existing name is EXISTS', async () => {
    await client.mkdir('m/n/o');
    expect((await stat(join(server.root, 'm', 'n', 'o'))).isDirectory()).toBe(true);
    expect(codeOf(await client.mkdir('m/n/o').catch((err: unknown) => err))).toBe('EXISTS');
  });

  test('pipelined requests take effect in order: upload, rename, stat, delete folder, upload into it again', async () => {
    const steps = [
      client.uploadBuffer('p/file.txt', Buffer.from('one\n')),
      client.rename('p/file.txt', 'q/file.txt'),
      client.stat('q/file.txt'),
      client.remove('p'),
      client.uploadBuffer('p/again.txt', Buffer.from('two\n')),
    ];
    const results = await Promise.all(steps);
    expect(results[2]).toMatchObject({ type: 'file', size: 4 });
    expect(await readFile(join(server.root, 'q', 'file.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(join(server.root, 'p', 'again.txt'), 'utf8')).toBe('two\n');
  });

  test('hostile names and links are refused by every operation', async () => {
    const outside = join(server.scratch, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'secret\n');
    await symlink(outside, join(server.root, 'link'));
    for (const attempt of [
      () => client.stat('link/secret.txt'),
      () => client.remove('link/secret.txt'),
      () => client.rename('link/secret.txt', 'mine.txt'),
      () => client.mkdir('link/new'),
      () => client.remove('link'),
    ]) {
      expect(codeOf(await attempt().catch((err: unknown) => err))).toBe('NAME_INVALID');
    }
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    // The client refuses these before sending; the server would too.
    expect(codeOf(await client.rename('ok.txt', '../x').catch((err: unknown) => err))).toBe('NAME_INVALID');
  });
});
