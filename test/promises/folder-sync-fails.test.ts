// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { failNext, failed, restoreFs } from './support/fs-faults';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, eventually, sha256 } from '../security/support/wire';
import { quotaProbes } from '../regressions/support/quota-probes';

/**
 * Promise (PROTOCOL.md, error table): a change that took effect but whose folder fsync failed is
 * answered `ERR NOT_DURABLE`, saying the change is there, never STORAGE_FAILED's "nothing stored".
 * Before, an upload renamed into place answered "cannot store a.bin: EIO" (a retried ADDFILE then met
 * EXISTS), and the quota ledger counted as not stored a file that was in place, so the user could
 * store that much past the quota; a DELETE left the ledger counting a file that was gone.
 * The same for an ADDFILE whose staging path cannot be unlinked after its link made the file: stored,
 * so answered as stored (the second link is left in the staging area, emptied at every start).
 * The folder's fsync fails for real (fs-faults wraps the handle's sync); small files (≤ 64 KiB) are
 * committed by the worker, whose own case is in test/unit/storage/small-commits-not-durable.test.ts.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const QUOTA = 8 * MiB;
const PREVIOUS = Buffer.from('the previous version');

describe('a folder fsync that fails after the change: ERR NOT_DURABLE, the change counted as made', () => {
  let server: SecureServer;
  let user: TestUser;
  const wires: Wire[] = [];
  const probes = quotaProbes(() => server, wires);
  afterAll(restoreFs);

  beforeEach(async () => {
    user = await makeUser('q', 'write', 'q', QUOTA);
    server = await startSecureServer({ auth: { users: [user.entry] } });
    await mkdir(join(server.root, 'q'), { recursive: true });
    await writeFile(join(server.root, 'q', 'keep.bin'), PREVIOUS);
    failed.length = 0;
  });
  afterEach(async () => {
    destroyAll(wires);
    await server.close();
  });

  const userFolder = () => join(server.root, 'q');
  /** Only the fsync of the user's folder fails (not the staging area's, nor a partial's folder). */
  const armUserFolder = () => failNext('folder-sync', (path) => path === userFolder());

  const noStagingData = async () => {
    await eventually(async () => (await readdir(join(server.root, '.rxfer', 'staging'))).length === 0, 'the staging folder to be empty');
    expect(await readdir(join(server.root, '.rxfer', 'partials')).catch(() => [])).toEqual([]);
  };

  test.each([
    ['UPLOAD over a file', 'UPLOAD', 'keep.bin', 200 * KiB],
    ['UPLOAD over a file, resumable size (a kept partial)', 'UPLOAD', 'keep.bin', 1.5 * MiB],
    ['ADDFILE', 'ADDFILE', 'added.bin', 200 * KiB],
    ['ADDFILE, resumable size', 'ADDFILE', 'added.bin', 1.5 * MiB],
  ] as const)('%s: the file is in place, the reply says so, the ledger counts it', async (_what, verb, name, size) => {
    const wire = await probes.open(user);
    const data = randomBytes(size);
    armUserFolder();
    const [header, outcome] = await wire.upload(name, data, verb);
    expect(header).toBe('OK file recv');
    // The fault was met, by the commit's folder fsync.
    expect(failed).toEqual([{ call: 'folder-sync', path: userFolder() }]);
    expect(outcome).toBe(`ERR NOT_DURABLE ${name} is stored, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that`);
    expect(outcome).not.toContain(server.root);
    // What the reply says: the file is there, whole.
    expect(sha256(await readFile(join(userFolder(), name)))).toBe(sha256(data));
    await noStagingData();
    // The server knows its digest (recorded as for any commit): STAT answers it.
    await wire.send(`STAT\n${name}\n`);
    expect(await wire.line()).toMatch(new RegExp(`^OK stat file ${size} ${sha256(data)} \\d+$`));
    // An ADDFILE sent again meets the file the first one put there.
    if (verb === 'ADDFILE') expect((await wire.upload(name, data, 'ADDFILE'))[0]).toMatch(/^ERR EXISTS /);
    await probes.expectLedgerMatchesDisk(user);
  });

  test.each([
    ['a fresh staging file', 200 * KiB],
    ['a kept partial', 1.5 * MiB],
  ])('ADDFILE whose staging path cannot be unlinked after the link (%s): stored, and answered as stored', async (_what, size) => {
    const wire = await probes.open(user);
    const data = randomBytes(size);
    await wire.send(`ADDFILE ${size}\nadded.bin\n`);
    expect(await wire.line()).toBe('OK file recv');
    // Armed once the staging data exists (a claim of a partial unlinks what it replaces first).
    failNext('unlink', (path) => path.startsWith(join(server.root, '.rxfer')));
    await wire.send(Buffer.concat([data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await wire.line()).toBe(`OK file data recv ${size} ${sha256(data)}`);
    expect(failed.map((entry) => entry.call)).toEqual(['unlink']);
    expect(sha256(await readFile(join(userFolder(), 'added.bin')))).toBe(sha256(data));
    await probes.expectLedgerMatchesDisk(user);
  });

  test('DELETE: the file is gone, the reply says so, the ledger no longer counts it', async () => {
    const big = randomBytes(3 * MiB);
    await writeFile(join(userFolder(), 'big.bin'), big);
    const wire = await probes.open(user);
    // The ledger's first measurement counts big.bin.
    await probes.expectLedgerMatchesDisk(user);
    armUserFolder();
    await wire.send('DELETE\nbig.bin\n');
    expect(await wire.line()).toBe('ERR NOT_DURABLE big.bin is deleted, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that');
    expect(failed.map((entry) => entry.call)).toEqual(['folder-sync']);
    await expect(stat(join(userFolder(), 'big.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
    await probes.expectLedgerMatchesDisk(user);
  });

  test('RENAME and MKDIR: done, and the reply says so', async () => {
    const wire = await probes.open(user);
    armUserFolder();
    await wire.send('RENAME\nkeep.bin\nmoved.bin\n');
    expect(await wire.line()).toBe('ERR NOT_DURABLE keep.bin is renamed to moved.bin, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that');
    expect(await readFile(join(userFolder(), 'moved.bin'))).toEqual(PREVIOUS);
    armUserFolder();
    await wire.send('MKDIR\nsub\n');
    expect(await wire.line()).toBe('ERR NOT_DURABLE the folder sub is created, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that');
    expect((await stat(join(userFolder(), 'sub'))).isDirectory()).toBe(true);
    expect(failed.map((entry) => entry.call)).toEqual(['folder-sync', 'folder-sync']);
  });
});
