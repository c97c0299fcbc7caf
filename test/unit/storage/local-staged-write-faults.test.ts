// fs-faults wraps node:fs before src/ takes its promisified functions: import it first.
import { failNext, failed, restoreFs } from '../../promises/support/fs-faults';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { DigestIndex } from '../../../src/storage/digest-index';
import { LocalStagedWrite, StagingServices } from '../../../src/storage/local-staged-write';
import { NameLocks } from '../../../src/storage/name-locks';
import { PartialUploads } from '../../../src/storage/partial-uploads';

/**
 * A disk that fails under the commit (EIO from fsync, close, rename, link of the staging file), in
 * process: LocalStagedWrite must clean up by itself and leave the name as it was.
 * (test/promises/commit-fails.test.ts checks the same through a server; this runs in milliseconds.)
 */
describe('LocalStagedWrite on a failing disk', () => {
  let root: string;
  let services: StagingServices;
  let partials: PartialUploads;
  const sha = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
  const staging = () => join(root, '.rxfer', 'staging');
  const inRoot = <T>(work: (folder: string) => Promise<T>) => work(root);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-staged-faults-'));
    await mkdir(staging(), { recursive: true });
    const digests = new DigestIndex(root);
    await digests.init();
    partials = new PartialUploads(root);
    await partials.init();
    services = { digests, locks: new NameLocks(), stagingFolder: staging() };
    await writeFile(join(root, 'keep.bin'), 'previous');
    failed.length = 0;
  });
  afterEach(() => rm(root, { recursive: true, force: true }));
  afterAll(() => restoreFs());

  const cases: { call: 'fsync' | 'close' | 'rename' | 'link'; partial: boolean }[] = [
    { call: 'fsync', partial: false },
    { call: 'close', partial: false },
    { call: 'rename', partial: false },
    { call: 'link', partial: false },
    { call: 'close', partial: true },
    { call: 'fsync', partial: true },
  ];

  test.each(cases)('$call of the staging file fails (partial: $partial): nothing committed, nothing left', async ({ call, partial }) => {
    const createOnly = call === 'link';
    const target = createOnly ? 'new.bin' : 'keep.bin';
    const claimed = partial ? (await partials.claim(target, 1 << 20, 'sha256'))! : undefined;
    const write = claimed
      ? LocalStagedWrite.fromPartial(target as RemoteName, join(root, target), claimed, createOnly, services, false, inRoot)
      : await LocalStagedWrite.create(target as RemoteName, join(root, target), createOnly, services, false, inRoot);
    write.sink.write('replacement');
    failNext(call, (path) => path.startsWith(staging()) || path.startsWith(join(root, '.rxfer', 'partials')));
    await expect(write.commit({ size: 11, digest: sha('replacement'), hash: 'sha256' })).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: `cannot store ${target}: EIO (i/o error)` });
    expect(failed.map((fault) => fault.call)).toEqual([call]);
    expect(await readFile(join(root, 'keep.bin'), 'utf8')).toBe('previous');
    expect(await readdir(root)).toEqual(['.rxfer', 'keep.bin']);
    expect(await readdir(staging())).toEqual([]);
    expect(await readdir(join(root, '.rxfer', 'partials'))).toEqual([]);
    if (partial) expect(await partials.claim(target, 10, 'sha256')).toBeDefined();
  });

  /** A write of `data` to `target`, fresh or in a claimed partial, that reports the size it replaces. */
  const staged = async (target: string, partial: boolean, createOnly: boolean, data: Buffer) => {
    const claimed = partial ? (await partials.claim(target, data.length, 'sha256'))! : undefined;
    const write = claimed
      ? LocalStagedWrite.fromPartial(target as RemoteName, join(root, target), claimed, createOnly, services, true, inRoot)
      : await LocalStagedWrite.create(target as RemoteName, join(root, target), createOnly, services, true, inRoot);
    write.sink.write(data);
    return write;
  };

  const placed = [
    { partial: false, createOnly: false },
    { partial: true, createOnly: false },
    { partial: false, createOnly: true },
    { partial: true, createOnly: true },
  ];

  test.each(placed)('the folder fsync fails after the rename (partial: $partial, create-only: $createOnly): NOT_DURABLE, the file in place and known, no staging data', async ({ partial, createOnly }) => {
    const target = createOnly ? 'new.bin' : 'keep.bin';
    const data = randomBytes(100 * 1024);
    const write = await staged(target, partial, createOnly, data);
    failNext('folder-sync', (path) => path === root);
    await expect(write.commit({ size: data.length, digest: sha(data), hash: 'sha256' })).rejects.toMatchObject({
      code: 'NOT_DURABLE',
      message: `${target} is stored, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that`,
      detail: { errno: 'EIO', replacedBytes: createOnly ? 0 : 'previous'.length },
    });
    expect(failed).toEqual([{ call: 'folder-sync', path: root }]);
    expect(sha(await readFile(join(root, target)))).toBe(sha(data));
    expect(await readdir(staging())).toEqual([]);
    expect(await readdir(join(root, '.rxfer', 'partials'))).toEqual([]);
    // Its digest is remembered as any committed file's (in the background).
    const onDisk = await stat(join(root, target));
    for (let tries = 0; (await services.digests.lookup(target as RemoteName, onDisk, 'sha256')) === undefined && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await services.digests.lookup(target as RemoteName, onDisk, 'sha256')).toBe(sha(data));
    // The name is free for the next upload (the partial was released).
    if (partial) expect(await partials.claim(target, 10, 'sha256')).toBeDefined();
  });

  test.each(placed.filter((c) => c.createOnly))('create-only whose staging path cannot be unlinked after the link (partial: $partial): committed', async ({ partial, createOnly }) => {
    const data = randomBytes(100 * 1024);
    const write = await staged('new.bin', partial, createOnly, data);
    failNext('unlink', (path) => path.startsWith(join(root, '.rxfer')));
    await expect(write.commit({ size: data.length, digest: sha(data), hash: 'sha256' })).resolves.toMatchObject({ size: data.length, digest: sha(data), replacedBytes: 0 });
    expect(failed.map((fault) => fault.call)).toEqual(['unlink']);
    expect(sha(await readFile(join(root, 'new.bin')))).toBe(sha(data));
  });
});
