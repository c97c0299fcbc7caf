import type { Stats } from 'node:fs';
import { appendFile, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestLog } from '../../../src/storage/digest-log';
import { formatDigestLine } from '../../../src/storage/small-commit-log';

/**
 * The digest log cache's memory bound (100,000 records, least recently used folders first), apart
 * from digest-log.test.ts because each case writes logs of 50,000+ lines (1–2 s): mutation runs give
 * these only to the mutants of the counting and eviction code.
 */
describe('DigestLog memory bound', () => {
  let dir: string;
  let log: DigestLog;
  const stats = (size: number, mtimeMs: number, ino: number) => ({ size, mtimeMs, ino }) as Stats;
  const line = (name: string, digest: string, size = 5, mtimeMs = 1000, ino = 7, algorithm = 'sha256') => formatDigestLine(name, size, mtimeMs, ino, algorithm, digest);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-digest-log-'));
    log = new DigestLog(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Rewrites `path` in place (same inode, same size): a cache that trusts its size cannot see it. */
  const rewriteInPlace = async (path: string, text: string) => {
    const handle = await open(path, 'r+');
    try {
      await handle.write(text, 0);
    } finally {
      await handle.close();
    }
  };

  describe('memory bound (100,000 records, least recently used folders first)', () => {
    const many = (prefix: string, count: number, digest = 'aaaa') => {
      const lines: string[] = [];
      for (let i = 0; i < count; i++) lines.push(line(`${prefix}${i}`, digest));
      return lines.join('');
    };
    const digestOf = async (folder: string, name: string) => (await log.folder(folder)).get(name, stats(5, 1000, 7), 'sha256');

    test('two folders of 50,000 stay; one more record evicts the least recently used folder', async () => {
      await writeFile(log.pathOf('a'), many('a', 50_000));
      await writeFile(log.pathOf('b'), many('b', 50_000));
      await log.folder('a');
      await log.folder('b');
      await rewriteInPlace(log.pathOf('a'), line('a0', 'bbbb'));
      // Exactly at the bound: both still cached, the in-place change unseen.
      expect(await digestOf('a', 'a0')).toBe('aaaa');
      // One record more (known at once to b's cache), and b read most recently: a goes.
      log.lineFor('b/extra', stats(5, 1000, 7), 'sha256', 'dx');
      await log.folder('b');
      // b stayed cached; a is read again.
      await rewriteInPlace(log.pathOf('b'), line('b0', 'bbbb'));
      expect(await digestOf('b', 'b0')).toBe('aaaa');
      expect(await digestOf('a', 'a0')).toBe('bbbb');
    });

    test('a record added again for the same version counts once', async () => {
      await writeFile(log.pathOf('a'), many('a', 50_000));
      await writeFile(log.pathOf('b'), many('b', 50_000));
      await log.folder('a');
      await log.folder('b');
      log.lineFor('b/b1', stats(5, 1000, 7), 'blake3', 'other algorithm');
      await log.folder('b');
      await rewriteInPlace(log.pathOf('a'), line('a0', 'bbbb'));
      expect(await digestOf('a', 'a0')).toBe('aaaa');
    });

    test('a forgotten folder’s records no longer count', async () => {
      await writeFile(log.pathOf('a'), many('a', 50_000));
      await writeFile(log.pathOf('b'), many('b', 50_000));
      await writeFile(log.pathOf('c'), many('c', 10));
      await log.folder('a');
      await log.folder('b');
      await rm(log.pathOf('b'));
      await log.folder('b');
      // Changed in place now: a re-read (an eviction it should not have had) would show it.
      await rewriteInPlace(log.pathOf('a'), line('a0', 'bbbb'));
      await log.folder('c');
      expect(await digestOf('a', 'a0')).toBe('aaaa');
    });

    test('a folder grown past the bound on its own stays cached', async () => {
      await writeFile(log.pathOf('big'), many('x', 100_001));
      await log.folder('big');
      await rewriteInPlace(log.pathOf('big'), line('x0', 'bbbb'));
      expect(await digestOf('big', 'x0')).toBe('aaaa');
      expect(await digestOf('big', 'x0')).toBe('aaaa');
    });

    test('records read from a grown log count', async () => {
      await writeFile(log.pathOf('a'), many('a', 50_000));
      await writeFile(log.pathOf('b'), many('b', 10));
      await log.folder('a');
      await log.folder('b');
      await appendFile(log.pathOf('b'), many('c', 50_000));
      await log.folder('b');
      await rewriteInPlace(log.pathOf('a'), line('a0', 'bbbb'));
      expect(await digestOf('a', 'a0')).toBe('bbbb');
    });
  });
});
