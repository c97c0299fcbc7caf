import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import fsp = require('node:fs/promises');
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestIndex } from '../../../src/storage/digest-index';

/**
 * DigestIndex cases written for mutants that survived the digest-index group (test/MUTATION.md): the
 * init sweep of temporary files, the exact bound of the recent records, and the bookkeeping of
 * sidecar writes in flight. Real temp folders and files throughout.
 */
describe('DigestIndex (mutation survivors)', () => {
  let root: string;
  let index: DigestIndex;
  const sums = () => join(root, '.rxfer', 'sums');
  const logs = () => join(sums(), 'folders');
  const sidecar = (name: string) => join(sums(), createHash('sha256').update(name).digest('hex') + '.json');
  const exists = (path: string) => stat(path).then(() => true, () => false);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-digest-survivors-'));
    index = new DigestIndex(root);
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  /** What a killed server leaves: a sidecar's and a log compaction's temp files, beside real ones. */
  const leftovers = async () => {
    await mkdir(logs(), { recursive: true });
    const record = sidecar('big.bin');
    await writeFile(record, '{"name":"big.bin"}');
    await writeFile(`${record}.rxfer-part-0a1b2c3d4e5f-1a.tmp`, '{"name":"big.b');
    await writeFile(join(logs(), 'log-of-a'), '{"n":"x"}\n');
    await writeFile(join(logs(), 'log-of-a.1234-0.tmp'), '{"n":"x"');
    // Not temporary files, though their names hold ".tmp": kept.
    await writeFile(join(sums(), '.tmp-not-a-suffix'), 'keep');
    await writeFile(join(logs(), 'x.tmp.json'), 'keep');
    return record;
  };

  test('init deletes the temp files a crash left in sums/ and sums/folders/, and nothing else', async () => {
    const record = await leftovers();
    await index.init();
    expect((await readdir(sums())).sort()).toEqual(['.tmp-not-a-suffix', 'folders', record.slice(sums().length + 1)].sort());
    expect((await readdir(logs())).sort()).toEqual(['log-of-a', 'x.tmp.json']);
  });

  test('init: a folder that cannot be listed is skipped (the server still starts), the other is swept', async () => {
    await leftovers();
    jest.spyOn(fsp, 'readdir').mockRejectedValueOnce(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' }));
    await expect(index.init()).resolves.toBeUndefined();
    // sums/ was the one that failed: its temp file stays until the next start; folders/ was swept.
    expect((await readdir(sums())).filter((name) => name.endsWith('.tmp'))).toHaveLength(1);
    expect((await readdir(logs())).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  test('memory holds exactly 4,096 large files’ records: the 4,096th keeps the first, the 4,097th evicts the oldest', async () => {
    await index.init();
    // No sums folder: every sidecar write fails at once, so lookups can answer from memory only.
    await rm(sums(), { recursive: true });
    const stats = { ...(await stat(root)), size: 100_000 } as Stats;
    const remember = (name: string) => index.remember(name, stats, 'sha256', `digest-${name}`).catch(() => undefined);
    for (let i = 0; i < 4096; i++) await remember(`f${i}`);
    // 4,096 records: all still in memory (f0 is now the most recent, f1 the oldest).
    expect(await index.lookup('f0', stats, 'sha256')).toBe('digest-f0');
    await remember('f4096');
    expect(await index.lookup('f1', stats, 'sha256')).toBeUndefined();
    expect(await index.lookup('f0', stats, 'sha256')).toBe('digest-f0');
    expect(await index.lookup('f4096', stats, 'sha256')).toBe('digest-f4096');
  });

  test('forget waits for the newest write of a name even when an older write of it finished first', async () => {
    await index.init();
    await writeFile(join(root, 'big.bin'), Buffer.alloc(70_000, 1));
    const stats = await stat(join(root, 'big.bin'));
    // The second sidecar write is held until `release` (a slow disk), the first goes through.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const realWriteFile = fsp.writeFile;
    let calls = 0;
    jest.spyOn(fsp, 'writeFile').mockImplementation(async (...args: Parameters<typeof fsp.writeFile>) => {
      if (++calls === 2) await held;
      return realWriteFile(...args);
    });
    const first = index.remember('big.bin', stats, 'sha256', 'd1');
    const second = index.remember('big.bin', stats, 'sha256', 'd2');
    await first;
    // Let the first write's clean-up run (it must leave the second write's entry alone).
    await new Promise((resolve) => setImmediate(resolve));
    const forgetting = index.forget('big.bin');
    release();
    await second;
    await forgetting;
    // Forgotten after the second write landed: no sidecar comes back.
    expect(await exists(sidecar('big.bin'))).toBe(false);
  });

  test('a finished sidecar write leaves no entry behind (one per large-file name ever written would pile up)', async () => {
    await index.init();
    const stats = { ...(await stat(root)), size: 100_000 } as Stats;
    for (let i = 0; i < 20; i++) await index.remember(`f${i}`, stats, 'sha256', 'd');
    await new Promise((resolve) => setImmediate(resolve));
    // Private bookkeeping, read here because nothing else shows it: it must drain as writes finish.
    expect(index['writing'].size).toBe(0);
  });
});
