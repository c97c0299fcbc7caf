import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashOf } from '../../../src/integrity/hash-algorithm';
import { DigestIndex } from '../../../src/storage/digest-index';
import { LocalFsStorage } from '../../../src/storage/local-fs.storage';
import type { Worker } from 'node:worker_threads';
import { COMPACT_FROM_BYTES, COMPACT_UP_TO_BYTES, compactionHeader, digestLogPath, formatDigestLine } from '../../../src/storage/small-commit-log';
import { SmallCommits } from '../../../src/storage/small-commits';

/**
 * A folder's digest log grows by a line per version the server records. The commit worker compacts
 * what its own commits grew; records of files hashed on demand (a DOWNLOAD or STAT of a file put
 * there by other means) are appended on the main thread, and a folder nobody uploads to grew by a
 * line per new version for good. Now such an append that takes the log past COMPACT_FROM_BYTES asks
 * for a compaction (DigestIndex.onLogGrown), and LocalFsStorage has the worker do it.
 */
describe('digest logs grown by records made on demand', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-log-growth-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A version of `d/f.txt` that is not the file's: what a co-tenant's earlier rewrites left recorded. */
  const stale = (i: number) => ({ size: 5, mtimeMs: 1_600_000_000_000 + i, ino: 1_000_000 + i });

  test('DigestIndex: asks once the log passes COMPACT_FROM_BYTES, with the folder and the size, not before', async () => {
    const index = new DigestIndex(root);
    await index.init();
    const asked: { log: string; folderName: string; size: number }[] = [];
    index.onLogGrown = (log, folderName, size) => asked.push({ log, folderName, size });
    let i = 0;
    for (; asked.length === 0 && i < 10_000; i++) await index.remember('d/f.txt', stale(i), 'sha256', hashOf('sha256', Buffer.from(`v${i}`)));
    const [first] = asked;
    expect(first).toBeDefined();
    expect(first!.folderName).toBe('d');
    expect((await stat(first!.log)).size).toBe(first!.size);
    expect(first!.size).toBeGreaterThan(COMPACT_FROM_BYTES);
    // The append before it left the log at or below the threshold.
    expect(first!.size - (await readFile(first!.log, 'utf8')).split('\n').filter(Boolean).pop()!.length - 1).toBeLessThanOrEqual(COMPACT_FROM_BYTES);
    // Files at the top of the storage: the root's own log, folder ''.
    asked.length = 0;
    for (let j = 0; asked.length === 0 && j < 10_000; j++) await index.remember('top.txt', stale(j), 'sha256', hashOf('sha256', Buffer.from(`t${j}`)));
    expect(asked[0]?.folderName).toBe('');
  });

  describe('when an append asks for a compaction', () => {
    let index: DigestIndex;
    let asked: number[];
    let log: string;
    const digest = hashOf('sha256', Buffer.from('v'));
    const line = formatDigestLine('f.txt', stale(0).size, stale(0).mtimeMs, stale(0).ino, 'sha256', digest);

    beforeEach(async () => {
      index = new DigestIndex(root);
      await index.init();
      asked = [];
      index.onLogGrown = (_log, _folder, size) => asked.push(size);
      log = digestLogPath(index.logs.directory, 'd');
    });

    test('a log compacted to 100 KiB (its header says so) and grown to 110 KiB: not yet; past 200 KiB: asked', async () => {
      const base = 100 * 1024;
      await writeFile(log, compactionHeader(base) + 'x'.repeat(base - compactionHeader(base).length - 1) + '\n' + 'y'.repeat(10 * 1024) + '\n');
      await index.remember('d/f.txt', stale(0), 'sha256', digest);
      expect(asked).toEqual([]);
      await writeFile(log, compactionHeader(base) + 'x'.repeat(2 * base) + '\n');
      await index.remember('d/f.txt', stale(0), 'sha256', digest);
      expect(asked).toEqual([(await stat(log)).size]);
    });

    test('up to COMPACT_UP_TO_BYTES it is asked; beyond, never (a log too big to hold only grows)', async () => {
      // One append from exactly the limit.
      await writeFile(log, '');
      await truncate(log, COMPACT_UP_TO_BYTES - line.length);
      await index.remember('d/f.txt', stale(0), 'sha256', digest);
      expect(asked).toEqual([COMPACT_UP_TO_BYTES]);
      await index.remember('d/f.txt', stale(0), 'sha256', digest);
      expect(asked).toEqual([COMPACT_UP_TO_BYTES]);
    });

    test('a FIFO planted as the log: refused at once (never written into, never waited on), nothing asked', async () => {
      execFileSync('mkfifo', [log]);
      await expect(index.remember('d/f.txt', stale(0), 'sha256', digest)).rejects.toMatchObject({ code: 'EINVAL', message: `${log} is not a regular file` });
      expect(asked).toEqual([]);
    });
  });

  test('SmallCommits.compactLog: asked again before it is done, one compaction; close waits for it', async () => {
    const index = new DigestIndex(root);
    await index.init();
    let grown: { log: string; size: number } | undefined;
    index.onLogGrown = (log, _folder, size) => (grown ??= { log, size });
    for (let i = 0; grown === undefined; i++) await index.remember('gone.txt', stale(i), 'sha256', hashOf('sha256', Buffer.from(`g${i}`)));
    const commits = new SmallCommits(index.logs.directory);
    commits.compactLog(grown!.log, root, grown!.size);
    const worker = (commits as unknown as { worker: Worker }).worker;
    const posts = jest.spyOn(worker, 'postMessage');
    commits.compactLog(grown!.log, root, grown!.size);
    expect(posts).not.toHaveBeenCalled();
    await commits.close();
    // gone.txt is not in the folder: every record dropped, the header left.
    expect(await readFile(grown!.log, 'utf8')).toMatch(/^\{"compacted": *\d+\}\n$/);
  });

  test('a line far longer than any record (2 MiB of garbage) is dropped as it is read; the records around it are kept', async () => {
    await mkdir(join(root, 'g'));
    await writeFile(join(root, 'g', 'a.txt'), 'aaa');
    await writeFile(join(root, 'g', 'b.txt'), 'bbb');
    const [a, b] = [await stat(join(root, 'g', 'a.txt')), await stat(join(root, 'g', 'b.txt'))];
    const index = new DigestIndex(root);
    await index.init();
    const log = digestLogPath(index.logs.directory, 'g');
    const line = (name: string, version: { size: number; mtimeMs: number; ino: number }, text: string) => formatDigestLine(name, version.size, version.mtimeMs, version.ino, 'sha256', hashOf('sha256', Buffer.from(text)));
    const text = line('a.txt', a, 'aaa') + 'x'.repeat(2 * 1024 * 1024) + '\n' + line('b.txt', b, 'bbb');
    await writeFile(log, text);
    const commits = new SmallCommits(index.logs.directory);
    commits.compactLog(log, join(root, 'g'), text.length);
    await commits.close();
    const kept = (await readFile(log, 'utf8')).split('\n').filter((entry) => entry !== '' && !entry.startsWith('{"compacted"'));
    expect(kept.map((entry) => (JSON.parse(entry) as { n: string }).n).sort()).toEqual(['a.txt', 'b.txt']);
  });

  test('LocalFsStorage: the worker compacts such a log; only the record of the file as it is stays', async () => {
    await mkdir(join(root, 'd'));
    await writeFile(join(root, 'd', 'f.txt'), 'fresh');
    const now = await stat(join(root, 'd', 'f.txt'));
    const storage = new LocalFsStorage(root);
    await storage.init();
    const digests = (storage as unknown as { digests: DigestIndex }).digests;
    const logs = join(root, '.rxfer', 'sums', 'folders');
    const logSize = async () => {
      const [log] = await readdir(logs);
      return log === undefined ? 0 : (await stat(join(logs, log))).size;
    };
    try {
      // Versions a co-tenant's rewrites left recorded, each downloaded once, until the log is due...
      for (let i = 0; (await logSize()) <= COMPACT_FROM_BYTES; i++) await digests.remember('d/f.txt', stale(i), 'sha256', hashOf('sha256', Buffer.from(`v${i}`)));
      // ...and the current one.
      await digests.remember('d/f.txt', now, 'sha256', hashOf('sha256', Buffer.from('fresh')));
    } finally {
      // close() waits for the compaction the worker was asked for.
      await storage.close();
    }
    const [log] = await readdir(logs);
    const text = await readFile(join(logs, log!), 'utf8');
    expect(text).toMatch(/^\{"compacted": *\d+\}\n/);
    const records = text.split('\n').filter((line) => line !== '' && !line.startsWith('{"compacted"'));
    expect(records.map((line) => JSON.parse(line) as { n: string; s: number; i: number })).toEqual([expect.objectContaining({ n: 'f.txt', s: 5, i: now.ino })]);
    expect(await new DigestIndex(root).lookup('d/f.txt', now, 'sha256')).toBe(hashOf('sha256', Buffer.from('fresh')));
  });
});
