// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { failNext, failed, restoreFs } from './support/fs-faults';
import { randomBytes } from 'node:crypto';
import fs = require('node:fs');
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RxferConfig } from '../../src/config/config.schema';
import { TOKENS } from '../../src/container/tokens';
import type { RemoteName } from '../../src/protocol/remote-name';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import type { StagedWrite, WriteOptions } from '../../src/storage/storage-adapter';
import { RawClient, destroyAll, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';
import type { NameLocks } from '../../src/storage/name-locks';
import { parseRemoteName } from '../../src/protocol/remote-name';

/**
 * Promise (PROTOCOL.md, UPLOAD; storage-adapter.ts): a commit that fails leaves the name as it was
 * ("nothing stored"), answers ERR STORAGE_FAILED, and leaves no staging data behind, neither a
 * staging file nor a partial kept for RESUME. The reliability tests fail commit in a wrapper that
 * aborts the staged write itself; here the failure is met by the server's own commit code
 * (LocalStagedWrite), which must clean up alone: the real fsync, rename or link fails with EIO, or
 * the adapter is told a size the staging file does not have.
 */
const KiB = 1024;
const PREVIOUS = 'the previous version';

/** Staging data: a staging file, or a partial upload's data file. */
const isStagingData = (path: string): boolean => path.includes('/.rxfer/staging/') || /\/\.rxfer\/partials\/[0-9a-f]{64}$/.test(path);

/** The local adapter, rebound: it passes a size one byte off to the real commit when told to. */
class MisreportingStorage extends LocalFsStorage {
  misreportNext = false;
  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    const staged = await super.beginWrite(name, options);
    if (!this.misreportNext) return staged;
    this.misreportNext = false;
    return { sink: staged.sink, resumed: staged.resumed, abort: () => staged.abort(), suspend: () => staged.suspend(), commit: (verified) => staged.commit({ ...verified, size: verified.size + 1 }) };
  }
}

describe('a commit that fails stores nothing and leaves no staging data', () => {
  let server: TestServer;
  let storage: MisreportingStorage;
  const clients: RawClient[] = [];
  afterAll(restoreFs);
  beforeEach(async () => {
    server = await startTestServer({
      customize: (container) =>
        container
          .rebind(TOKENS.Storage)
          .toResolvedValue((config: RxferConfig) => (storage = new MisreportingStorage(config.storage.root)), [TOKENS.Config])
          .inSingletonScope(),
    });
    await writeFile(join(server.root, 'keep.bin'), PREVIOUS);
    failed.length = 0;
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };

  /** The name kept its content; no staging data, no kept partial; the connection and server serve. */
  const nothingCommitted = async (client: RawClient, reply: string, verb: 'UPLOAD' | 'ADDFILE') => {
    expect(reply).toMatch(/^ERR STORAGE_FAILED /);
    expect(reply).toMatch(/nothing stored|EIO/);
    expect(await userFiles(server.root)).toEqual(['keep.bin']);
    expect(await readFile(join(server.root, 'keep.bin'), 'utf8')).toBe(PREVIOUS);
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 5000, 'staging data to be gone');
    const partials = await readdir(join(server.root, '.rxfer', 'partials')).catch(() => []);
    expect(partials).toEqual([]);
    // Nothing kept for a resume: the failure was the storage's, not the network's.
    await client.send(`RESUME\n${verb === 'UPLOAD' ? 'keep.bin' : 'added.bin'}\n`);
    expect(await client.readLine()).toMatch(/^NOT FOUND/);
    // The same connection stores the next upload.
    const next = randomBytes(3000);
    await client.send(uploadRequest('next.bin', next));
    expect(await client.readUploadOutcome()).toBe(`OK file data recv 3000 ${sha256(next)}`);
  };

  test.each([
    ['fsync of the staging file', 'fsync', 'UPLOAD', 200 * KiB],
    ['fsync of the kept partial', 'fsync', 'UPLOAD', 1536 * KiB],
    ['rename over the name', 'rename', 'UPLOAD', 200 * KiB],
    ['rename of the kept partial over the name', 'rename', 'UPLOAD', 1536 * KiB],
    ['link (create-only)', 'link', 'ADDFILE', 200 * KiB],
    ['link of the kept partial (create-only)', 'link', 'ADDFILE', 1536 * KiB],
    ['close of the staging file (a write the file system deferred, NFS)', 'close', 'UPLOAD', 200 * KiB],
    ['close of the kept partial', 'close', 'UPLOAD', 1536 * KiB],
  ] as const)('%s fails with EIO: ERR STORAGE_FAILED, the name as it was, no staging data', async (_what, call, verb, size) => {
    const client = await connect();
    failNext(call, isStagingData);
    const name = verb === 'UPLOAD' ? 'keep.bin' : 'added.bin';
    await client.send(uploadRequest(name, randomBytes(size), { verb }));
    const reply = await client.readUploadOutcome(20_000);
    // The fault was met by the commit (not skipped by some other path).
    expect(failed.map((entry) => entry.call)).toEqual([call]);
    expect(reply).not.toContain(server.root);
    // What failed, in words: the store of that name, and the errno.
    expect(reply).toMatch(new RegExp(`^ERR STORAGE_FAILED cannot store ${name.replace('.', '\\.')}: EIO`));
    await nothingCommitted(client, reply, verb);
  });

  test.each([
    ['staging file', 200 * KiB],
    ['kept partial', 1536 * KiB],
  ])('the staged size is not the verified size (%s): refused before the name changes, staging data gone', async (_what, size) => {
    const client = await connect();
    storage.misreportNext = true;
    await client.send(uploadRequest('keep.bin', randomBytes(size)));
    const reply = await client.readUploadOutcome(20_000);
    expect(reply).toBe(`ERR STORAGE_FAILED keep.bin: ${size} bytes reached the disk of the ${size + 1} verified; nothing stored`);
    await nothingCommitted(client, reply, 'UPLOAD');
  });

  test('every commit closes its staging file: no descriptor left open after uploads of each kind', async () => {
    const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;
    const client = await connect();
    // One upload first, so that lazily opened things (the digest log, folders) are in the baseline.
    await client.send(uploadRequest('warm.bin', randomBytes(200 * KiB)));
    expect(await client.readUploadOutcome(20_000)).toMatch(/^OK file data recv /);
    const baseline = openDescriptors();
    for (const [verb, name, size] of [['UPLOAD', 'a.bin', 200 * KiB], ['UPLOAD', 'b.bin', 1536 * KiB], ['ADDFILE', 'c.bin', 200 * KiB], ['ADDFILE', 'd.bin', 1536 * KiB], ['UPLOAD', 'a.bin', 300 * KiB]] as const) {
      await client.send(uploadRequest(name, randomBytes(size), { verb }));
      expect(await client.readUploadOutcome(20_000)).toMatch(/^OK file data recv /);
    }
    await eventually(() => openDescriptors() <= baseline, 5000, `descriptors back to ${baseline} (now ${openDescriptors()})`);
  });

  test('a commit changes the name only under its lock: held by another request, the upload waits, and others go on', async () => {
    const internals = storage as unknown as { locks: NameLocks; paths: { pathOf(name: string): string } };
    const target = internals.paths.pathOf(parseRemoteName('held.bin'));
    let release!: () => void;
    const held = internals.locks.with([target], () => new Promise<void>((resolve) => (release = resolve)));
    const waiting = await connect();
    const data = randomBytes(200 * KiB);
    await waiting.send(uploadRequest('held.bin', data));
    expect(await waiting.readLine(20_000)).toBe('OK file recv');
    // Another upload, to another name, commits from start to end while the lock is held…
    const other = await connect();
    const otherData = randomBytes(200 * KiB);
    await other.send(uploadRequest('free.bin', otherData));
    expect(await other.readUploadOutcome(20_000)).toBe(`OK file data recv ${otherData.length} ${sha256(otherData)}`);
    // …and the held name has not changed meanwhile.
    expect(await userFiles(server.root)).toEqual(['free.bin', 'keep.bin']);
    release();
    await held;
    expect(await waiting.readLine(20_000)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect((await readFile(join(server.root, 'held.bin'))).equals(data)).toBe(true);
  });
});
