import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import fsp = require('node:fs/promises');
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestIndex } from '../../../src/storage/digest-index';

/**
 * DigestIndex cases written for mutants that survived the digest-index group (test/MUTATION.md): the
 * init sweep of temporary files, the exact bound of the recent records, and sidecar writes (whole
 * when remember returns, none left half-written). Real temp folders and files throughout.
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

  test('a sidecar is whole on disk when remember returns, with no temporary file beside it', async () => {
    await index.init();
    await writeFile(join(root, 'big.bin'), Buffer.alloc(70_000, 1));
    const stats = await stat(join(root, 'big.bin'));
    const remembering = index.remember('big.bin', stats, 'sha256', 'd1');
    // Written before remember returned (synchronously): nothing is left in flight for a DELETE to race.
    expect(JSON.parse(await fsp.readFile(sidecar('big.bin'), 'utf8'))).toMatchObject({ name: 'big.bin', size: 70_000, ino: stats.ino, digests: { sha256: 'd1' } });
    await remembering;
    expect((await readdir(sums())).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    // Nor a descriptor left open on it (the temporary file's is closed before the rename).
    const open = await readdir('/proc/self/fd');
    const leading = await Promise.all(open.map((fd) => fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    expect(leading.filter((path) => path.startsWith(sums()))).toEqual([]);
  });

  test('forget right after remember, not awaited in between: the sidecar is gone and stays gone', async () => {
    await index.init();
    await writeFile(join(root, 'big.bin'), Buffer.alloc(70_000, 1));
    const stats = await stat(join(root, 'big.bin'));
    const remembering = index.remember('big.bin', stats, 'sha256', 'd1');
    const forgetting = index.forget('big.bin');
    await Promise.all([remembering, forgetting]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await exists(sidecar('big.bin'))).toBe(false);
    expect(await index.lookup('big.bin', stats, 'sha256')).toBeUndefined();
  });

  test('a sidecar write that fails (a folder holds its name) rejects and leaves no temporary file', async () => {
    await index.init();
    const stats = { ...(await stat(root)), size: 100_000 } as Stats;
    await rm(sums(), { recursive: true });
    await mkdir(sums());
    // The record's own name is a folder: the rename fails after the temporary file was written.
    await mkdir(sidecar('big.bin'));
    await writeFile(join(sidecar('big.bin'), 'x'), 'not empty');
    await expect(index.remember('big.bin', stats, 'sha256', 'd1')).rejects.toThrow();
    expect((await readdir(sums())).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});
