import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, snapshot, diffSnapshots, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, sha256, uploadBytes } from '../security/support/wire';
import { listRequest, readListAnswer, replySource } from '../helpers/raw-client';

/**
 * Promise (PROTOCOL.md, AUTH and file operations): the `read` role may DOWNLOAD, LIST and STAT, and
 * nothing else: DELETE, RENAME, MKDIR, UPLOAD and ADDFILE are ERR FORBIDDEN and change nothing.
 * With those verbs let through for `read`, every test still passed. The same requests from a
 * `write` user succeed, so a server that forbade everything fails here too. Real sockets, real tokens.
 */
let reader: TestUser;
let writer: TestUser;
let admin: TestUser;

const REQUESTS: ReadonlyArray<readonly [string, string | Buffer]> = [
  ['DELETE', 'DELETE\nkeep.txt\n'],
  ['RENAME', 'RENAME\nkeep.txt\nmoved.txt\n'],
  ['MKDIR', 'MKDIR\nnew-folder\n'],
  ['UPLOAD', uploadBytes('keep.txt', 'overwritten\n')],
  ['ADDFILE', uploadBytes('added.txt', 'added\n', 'ADDFILE')],
];

describe('roles: read may only read', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const session = async (user: TestUser) => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toMatch(/^OK auth /);
    return wire;
  };

  beforeAll(async () => {
    [reader, writer, admin] = await Promise.all([makeUser('reader', 'read', 'shared'), makeUser('writer', 'write', 'shared'), makeUser('admin', 'admin', 'shared')]);
    server = await startSecureServer({ auth: { users: [reader.entry, writer.entry, admin.entry] } });
  });
  beforeEach(async () => {
    // A fresh folder each time: one test's effects never decide another's.
    await rm(join(server.root, 'shared'), { recursive: true, force: true });
    await mkdir(join(server.root, 'shared'), { recursive: true });
    await writeFile(join(server.root, 'shared', 'keep.txt'), 'kept\n');
  });
  afterEach(() => destroyAll(wires));
  afterAll(() => server.close());

  test.each(REQUESTS)('read: %s is ERR FORBIDDEN and changes nothing; the session goes on', async (verb, request) => {
    const before = await snapshot(server.root);
    const wire = await session(reader);
    await wire.send(request);
    expect(await wire.line()).toBe(`ERR FORBIDDEN reader (read) may not ${verb}`);
    // The session stays usable, and reading still works.
    const { reply, data } = await wire.download('keep.txt');
    expect(reply).toBe(`OK 5 ${sha256('kept\n')}`);
    expect(data?.toString()).toBe('kept\n');
    expect(diffSnapshots(before, await snapshot(server.root))).toEqual([]);
  });

  test('read: STAT and LIST are allowed', async () => {
    const wire = await session(reader);
    await wire.send('STAT\nkeep.txt\n');
    expect(await wire.line()).toMatch(/^OK stat file 5 /);
    await wire.send(listRequest(''));
    expect((await readListAnswer(replySource(wire))).files.map((file) => file.name)).toEqual(['keep.txt']);
  });

  test.each(['write', 'admin'])('%s: the same requests succeed (so the refusals above are about the role)', async (role) => {
    const wire = await session(role === 'write' ? writer : admin);
    await wire.send('MKDIR\nnew-folder\n');
    expect(await wire.line()).toBe('OK created');
    await wire.send('RENAME\nkeep.txt\nmoved.txt\n');
    expect(await wire.line()).toBe('OK renamed');
    await wire.send('DELETE\nmoved.txt\n');
    expect(await wire.line()).toBe('OK deleted');
    expect(await wire.upload('added.txt', 'added\n', 'ADDFILE')).toEqual(['OK file recv', `OK file data recv 6 ${sha256('added\n')}`]);
  });
});

describe('roles: anonymous read access is read-only too', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  beforeAll(async () => {
    server = await startSecureServer({ auth: { anonymous: 'read' } });
    await writeFile(join(server.root, 'keep.txt'), 'kept\n');
  });
  afterEach(() => destroyAll(wires));
  afterAll(() => server.close());

  test.each(REQUESTS)('anonymous read: %s is ERR FORBIDDEN', async (verb, request) => {
    const before = await snapshot(server.root);
    const wire = await Wire.open(server.port);
    wires.push(wire);
    await wire.send(request);
    expect(await wire.line()).toBe(`ERR FORBIDDEN anonymous (read) may not ${verb}`);
    expect(diffSnapshots(before, await snapshot(server.root))).toEqual([]);
  });
});
