import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
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

  test('a record is kept on disk and in memory, and neither is trusted once the file changed', async () => {
    const file = join(root, 'a.bin');
    await writeFile(file, 'first version');
    const before = await stat(file);
    await index.remember('a.bin', before, 'sha256', 'd1');
    expect(await readdir(sums())).toHaveLength(1);
    expect(await index.lookup('a.bin', before, 'sha256')).toBe('d1');

    // A fresh index (a restarted server) finds it on disk.
    expect(await new DigestIndex(root).lookup('a.bin', before, 'sha256')).toBe('d1');
    // This one answers from memory: the sidecar is not read again.
    await rm(sums(), { recursive: true });
    expect(await index.lookup('a.bin', before, 'sha256')).toBe('d1');

    // Changed behind the index's back (other size and mtime): no digest, from memory or disk.
    await writeFile(file, 'second, longer version');
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    expect(await index.lookup('a.bin', await stat(file), 'sha256')).toBeUndefined();
  });

  test('memory keeps a bounded number of records: the oldest must come from disk again', async () => {
    const files = Array.from({ length: 4100 }, (_, i) => `f${i}`);
    const stats = await stat(root);
    for (const name of files) await index.remember(name, stats, 'sha256', `digest-${name}`);
    await rm(sums(), { recursive: true });
    // The first few were pushed out of memory (and their sidecars are gone now); the last ones remain.
    expect(await index.lookup('f0', stats, 'sha256')).toBeUndefined();
    expect(await index.lookup('f4099', stats, 'sha256')).toBe('digest-f4099');
  });
});
