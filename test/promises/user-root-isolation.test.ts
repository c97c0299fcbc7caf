import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, snapshot, diffSnapshots, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, sha256 } from '../security/support/wire';
import { keptBytes } from './support/kept-uploads';

/**
 * Promise (PROTOCOL.md, AUTH): "every name the client uses is relative to the user's own folder on
 * the server; nothing outside it can be named" — for every file operation and for RESUME, whose
 * kept uploads are stored outside the users' folders (in .rxfer/partials, keyed by storage name).
 * Bob uses exactly the names Alice has; he must see, change and resume none of hers.
 */
const MiB = 1024 * 1024;
let alice: TestUser;
let bob: TestUser;

describe("a user's root is their whole world", () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const as = async (user: TestUser) => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toMatch(/^OK auth /);
    return wire;
  };
  const kept = randomBytes(MiB);

  beforeAll(async () => {
    [alice, bob] = await Promise.all([makeUser('alice', 'write', 'alice'), makeUser('bob', 'write', 'bob')]);
    server = await startSecureServer({ auth: { users: [alice.entry, bob.entry] } });
    await mkdir(join(server.root, 'alice', 'docs'), { recursive: true });
    await mkdir(join(server.root, 'bob'), { recursive: true });
    await writeFile(join(server.root, 'alice', 'secret.txt'), 'alice only\n');
    // Alice's interrupted 2 MiB upload, 1 MiB of it kept.
    const wire = await as(alice);
    await wire.send(`UPLOAD ${2 * MiB}\nbig.bin\n`);
    expect(await wire.line()).toBe('OK file recv');
    await wire.send(kept);
    const deadline = Date.now() + 10_000;
    while ((await keptBytes(server.root)) !== MiB && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    wire.destroy();
    // Released once RESUME answers for alice.
    for (;;) {
      const probe = await as(alice);
      await probe.send('RESUME\nbig.bin\n');
      const line = await probe.line();
      probe.destroy();
      if (line.startsWith('OK partial')) break;
      if (Date.now() > deadline) throw new Error(`alice's upload was not kept: ${line}`);
    }
  });
  afterEach(() => destroyAll(wires));
  afterAll(() => server.close());

  test.each([
    ['STAT', 'STAT\nsecret.txt\n', /^NOT FOUND /],
    ['DOWNLOAD', 'DOWNLOAD\nsecret.txt\n', /^NOT FOUND /],
    ['DELETE', 'DELETE\nsecret.txt\n', /^NOT FOUND /],
    ['RENAME', 'RENAME\nsecret.txt\nmine.txt\n', /^NOT FOUND /],
    ['DELETE of a kept upload', 'DELETE\nbig.bin\n', /^NOT FOUND /],
    ['RESUME', 'RESUME\nbig.bin\n', /^NOT FOUND /],
    ['LIST of a folder of hers', 'LIST\ndocs\n', /^OK list 0 0$/],
    ['LIST of everything', 'LIST\n\n', /^OK list 0 0$/],
  ])("bob's %s of alice's name: as if it were not there, and nothing of alice's changes", async (_what, request, expected) => {
    const before = await snapshot(join(server.root, 'alice'));
    const wire = await as(bob);
    await wire.send(request);
    expect(await wire.line()).toMatch(expected);
    expect(diffSnapshots(before, await snapshot(join(server.root, 'alice')))).toEqual([]);
    expect(await readFile(join(server.root, 'alice', 'secret.txt'), 'utf8')).toBe('alice only\n');
    expect(await keptBytes(server.root)).toBe(MiB);
  });

  test("bob's UPLOAD … FROM with alice's kept prefix (digest right): RESUME_MISMATCH, and alice's kept upload stays", async () => {
    const wire = await as(bob);
    await wire.send(Buffer.concat([Buffer.from(`UPLOAD ${2 * MiB} FROM ${MiB} ${sha256(kept)}\nbig.bin\n`), randomBytes(MiB), Buffer.from(`SHA256 ${sha256('x')}\n`)]));
    expect(await wire.line()).toMatch(/^ERR RESUME_MISMATCH cannot resume big\.bin at 1048576 bytes: no interrupted upload of it is kept/);
    expect(await keptBytes(server.root)).toBe(MiB);
  });

  test("bob's MKDIR, UPLOAD and RENAME of the same names land in bob's folder only", async () => {
    const wire = await as(bob);
    await wire.send('MKDIR\ndocs/sub\n');
    expect(await wire.line()).toBe('OK created');
    expect(await wire.upload('secret.txt', 'bob too\n')).toEqual(['OK file recv', `OK file data recv 8 ${sha256('bob too\n')}`]);
    await wire.send('RENAME\nsecret.txt\ndocs/secret.txt\n');
    expect(await wire.line()).toBe('OK renamed');
    expect(await readFile(join(server.root, 'bob', 'docs', 'secret.txt'), 'utf8')).toBe('bob too\n');
    expect(await readFile(join(server.root, 'alice', 'secret.txt'), 'utf8')).toBe('alice only\n');
    // Alice still resumes her own upload.
    const hers = await as(alice);
    await hers.send('RESUME\nbig.bin\n');
    expect(await hers.line()).toBe(`OK partial ${MiB} ${sha256(kept)}`);
  });
});
