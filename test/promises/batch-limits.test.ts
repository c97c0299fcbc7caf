import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, sha256 } from '../security/support/wire';
import { RawClient, batchRequest } from '../helpers/raw-client';
import { TestServer, startTestServer, stagingFiles, userFiles } from '../helpers/server';
import { Tmpfs, fillTo, tmpfsTest, unfill, withTmpfs } from '../helpers/tmpfs';

/**
 * What holds for an UPLOAD holds for each file of a BATCH (PROTOCOL.md): the user's permission, the
 * user's quota and the disk's space are checked per file, and a file refused for any of them leaves
 * nothing under its name while the files around it are stored.
 */

const KiB = 1024;
const stored = (data: Buffer) => `OK file data recv ${data.length} ${sha256(data)}`;

describe('BATCH and users', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  afterEach(async () => {
    destroyAll(wires);
    await server.close();
  });
  const open = async (user: TestUser) => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toMatch(/^OK auth /);
    return wire;
  };

  test('a read-only user is FORBIDDEN each file; nothing is stored', async () => {
    const reader = await makeUser('r', 'read', 'r');
    server = await startSecureServer({ auth: { users: [reader.entry] } });
    await mkdir(join(server.root, 'r'));
    const wire = await open(reader);
    await wire.send(batchRequest([{ name: 'a', data: 'x' }, { name: 'b', data: 'y' }]));
    expect([await wire.line(), await wire.line()]).toEqual(['ERR FORBIDDEN r (read) may not UPLOAD', 'ERR FORBIDDEN r (read) may not UPLOAD']);
    expect(await readdir(join(server.root, 'r'))).toEqual([]);
  });

  test('a quota is kept file by file: what does not fit is QUOTA_EXCEEDED, the rest is stored, and never more than the quota', async () => {
    const user = await makeUser('q', 'write', 'q', 100 * KiB);
    server = await startSecureServer({ auth: { users: [user.entry] } });
    const wire = await open(user);
    const files = [randomBytes(40 * KiB), randomBytes(40 * KiB), randomBytes(40 * KiB), randomBytes(10 * KiB)].map((data, i) => ({ name: `f${i}`, data }));
    await wire.send(batchRequest(files));
    const replies = [await wire.line(), await wire.line(), await wire.line(), await wire.line()];
    // Files on unrelated names are stored side by side (PROTOCOL.md), so which of the three 40 KiB files
    // does not fit is not theirs to choose: exactly one, whatever the order their reservations took.
    const refused = replies.filter((reply) => /^ERR QUOTA_EXCEEDED q uses \d+ of 102400 bytes; 40960 more do not fit$/.test(reply));
    expect(refused).toHaveLength(1);
    expect(replies.filter((reply, i) => reply === stored(files[i]!.data))).toHaveLength(3);
    // The small one fits in every order.
    expect(replies[3]).toBe(stored(files[3]!.data));
    const names = (await readdir(join(server.root, 'q'))).sort();
    expect(names).toEqual(files.filter((_, i) => replies[i]!.startsWith('OK ')).map((file) => file.name));
    const total = (await Promise.all(names.map((name) => stat(join(server.root, 'q', name))))).reduce((sum, s) => sum + s.size, 0);
    expect(total).toBe(90 * KiB);
  });

  test('replacing files in a batch needs only their growth, as UPLOAD does', async () => {
    const user = await makeUser('g', 'write', 'g', 100 * KiB);
    server = await startSecureServer({ auth: { users: [user.entry] } });
    const wire = await open(user);
    const first = randomBytes(60 * KiB);
    const second = randomBytes(61 * KiB);
    await wire.send(batchRequest([{ name: 'same', data: first }, { name: 'same', data: second }]));
    expect([await wire.line(), await wire.line()]).toEqual([stored(first), stored(second)]);
    expect((await readFile(join(server.root, 'g', 'same'))).equals(second)).toBe(true);
  });
});

describe('BATCH on a full disk', () => {
  let disk: Tmpfs;
  let server: TestServer | undefined;
  beforeAll(async () => {
    disk = await withTmpfs(8 * 1024 * KiB);
  });
  afterAll(async () => {
    await disk.cleanup();
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    if (disk.canMount) {
      await unfill(disk.dir);
      await rm(join(disk.dir, 'root'), { recursive: true, force: true });
    }
  });
  const onTmpfs = tmpfsTest(() => disk);

  onTmpfs('the files that do not fit are NO_SPACE, each alone; nothing half-written appears; those that fit are exact', async () => {
    const root = join(disk.dir, 'root');
    await mkdir(root);
    server = await startTestServer({ config: { storage: { root } } });
    const client = await RawClient.connect(server.port);
    // Room for about two of these files, with their staging copies.
    await fillTo(disk.dir, 150 * KiB);
    const files = Array.from({ length: 6 }, (_, i) => ({ name: `full/f${i}`, data: randomBytes(60 * KiB) }));
    await client.send(batchRequest(files));
    const replies = await client.readLines(6, 30_000);
    client.destroy();
    const ok = replies.filter((reply, i) => reply === stored(files[i]!.data));
    const refused = replies.filter((reply) => reply.startsWith('ERR NO_SPACE '));
    expect(ok.length + refused.length).toBe(6);
    expect(refused.length).toBeGreaterThan(0);
    // Each name holds exactly what was sent, or nothing.
    for (const [i, file] of files.entries()) {
      const there = await readFile(join(root, file.name)).catch(() => undefined);
      if (replies[i]!.startsWith('OK ')) expect(there?.equals(file.data)).toBe(true);
      else expect(there).toBeUndefined();
    }
    expect((await userFiles(root)).length).toBe(ok.length);
    expect(await stagingFiles(root)).toEqual([]);
  });
});
