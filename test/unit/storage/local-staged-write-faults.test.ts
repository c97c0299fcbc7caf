// fs-faults wraps node:fs before src/ takes its promisified functions: import it first.
import { failNext, failed, restoreFs } from '../../promises/support/fs-faults';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderSync } from '../../../src/io/folder-sync';
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
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const staging = () => join(root, '.rxfer', 'staging');
  const inRoot = <T>(work: (folder: string) => Promise<T>) => work(root);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-staged-faults-'));
    await mkdir(staging(), { recursive: true });
    const digests = new DigestIndex(root);
    await digests.init();
    partials = new PartialUploads(root);
    await partials.init();
    services = { digests, folders: new FolderSync(), locks: new NameLocks(), stagingFolder: staging() };
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
});
