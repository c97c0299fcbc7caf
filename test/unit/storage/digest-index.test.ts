import type { Stats } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestIndex } from '../../../src/storage/digest-index';

describe('DigestIndex', () => {
  let root: string;
  let index: DigestIndex;
  const sums = () => join(root, '.rxfer', 'sums');

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-digests-'));
    index = new DigestIndex(root);
    await index.init();
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  test('a large file’s record is kept on disk and in memory, and neither is trusted once the file changed', async () => {
    const file = join(root, 'a.bin');
    await writeFile(file, Buffer.alloc(70_000, 1));
    const before = await stat(file);
    await index.remember('a.bin', before, 'sha256', 'd1');
    expect((await readdir(sums())).filter((name) => name.endsWith('.json'))).toHaveLength(1);
    expect(await index.lookup('a.bin', before, 'sha256')).toBe('d1');

    // A fresh index (a restarted server) finds it on disk.
    expect(await new DigestIndex(root).lookup('a.bin', before, 'sha256')).toBe('d1');
    // This one answers from memory: the sidecar is not read again.
    await rm(sums(), { recursive: true });
    expect(await index.lookup('a.bin', before, 'sha256')).toBe('d1');

    // Changed behind the index's back (other size and mtime): no digest, from memory or disk.
    await writeFile(file, Buffer.alloc(70_001, 2));
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(await index.lookup('a.bin', await stat(file), 'sha256')).toBeUndefined();
  });

  test('memory keeps a bounded number of large files’ records: the oldest must come from disk again', async () => {
    const files = Array.from({ length: 4100 }, (_, i) => `f${i}`);
    const stats = { ...(await stat(root)), size: 100_000 } as Stats;
    for (const name of files) await index.remember(name, stats, 'sha256', `digest-${name}`);
    await rm(sums(), { recursive: true });
    // The first few were pushed out of memory (and their sidecars are gone now); the last ones remain.
    expect(await index.lookup('f0', stats, 'sha256')).toBeUndefined();
    expect(await index.lookup('f4099', stats, 'sha256')).toBe('digest-f4099');
  });

  test('the logs’ folder swapped for a link to a folder outside: a small file’s digest is not recorded there (the append fails)', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'rxfer-digests-outside-'));
    try {
      await mkdir(join(root, 'dir'));
      await writeFile(join(root, 'dir', 's.txt'), 'small');
      const stats = await stat(join(root, 'dir', 's.txt'));
      const logs = join(sums(), 'folders');
      await rm(logs, { recursive: true });
      await symlink(outside, logs);
      await expect(index.remember('dir/s.txt', stats, 'sha256', 'd-sha')).rejects.toMatchObject({ code: 'ELOOP', serverFolder: '.rxfer/sums/folders' });
      expect(await readdir(outside)).toEqual([]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  test('small files’ digests go to their folder’s log: found again by a fresh index, not once the file changed', async () => {
    await mkdir(join(root, 'dir'));
    const file = join(root, 'dir', 's.txt');
    await writeFile(file, 'small');
    const before = await stat(file);
    await index.remember('dir/s.txt', before, 'sha256', 'd-sha');
    await index.remember('dir/s.txt', before, 'blake3', 'd-blake3');
    expect(await index.lookup('dir/s.txt', before, 'sha256')).toBe('d-sha');
    const fresh = new DigestIndex(root);
    expect(await fresh.lookup('dir/s.txt', before, 'blake3')).toBe('d-blake3');
    expect((await fresh.folderDigests('dir')).get('s.txt', before, 'sha256')).toBe('d-sha');
    // Another folder's file of the same name is another record.
    expect(await fresh.lookup('s.txt', before, 'sha256')).toBeUndefined();

    // A line cut short by a crash is skipped, and the lines after it still count.
    const log = fresh.logs.pathOf('dir');
    await appendFile(log, '{"n":"s.txt","s":5,');
    await appendFile(log, '\n');
    expect(await fresh.lookup('dir/s.txt', before, 'sha256')).toBe('d-sha');

    await writeFile(file, 'SMALL');
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const after = await stat(file);
    expect(await index.lookup('dir/s.txt', after, 'sha256')).toBeUndefined();
    expect(await fresh.lookup('dir/s.txt', after, 'sha256')).toBeUndefined();
  });
});
