import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { digestLogPath } from '../../src/storage/small-commit-log';

/**
 * A FIFO planted as a folder's digest log (by someone with a shell on the storage, as the hostile
 * passes plant them as manifests and records): the server's threads that append to logs must never
 * wait on it. Each case runs in a child process from dist/ with a time limit, so that a thread held
 * by the FIFO fails the test instead of hanging the test run. A record is a cache: what is lost is
 * the digest only, never the reply. On 5bc77df the main thread's append (a file hashed on demand)
 * blocked for good in its open; the worker's append failed harmlessly (ESPIPE reading the header).
 */
describe('a FIFO planted as a digest log', () => {
  let root: string;
  const dist = resolve(__dirname, '../../dist/storage');

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-fifo-log-'));
    await mkdir(join(root, '.rxfer', 'sums', 'folders'), { recursive: true });
    await mkdir(join(root, 'p'));
    execFileSync('mkfifo', [digestLogPath(join(root, '.rxfer', 'sums', 'folders'), 'p')]);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const runChild = (script: string) => spawnSync(process.execPath, ['-e', script], { timeout: 30_000, encoding: 'utf8', env: { ...process.env, ROOT: root, DIST: dist } });

  test('records made on the main thread (files hashed on demand): 2,000 appends, none waits, none kept', async () => {
    const child = runChild(`
      const { DigestIndex } = require(process.env.DIST + '/digest-index.js');
      (async () => {
        const index = new DigestIndex(process.env.ROOT);
        await index.init();
        let failed = 0;
        for (let i = 0; i < 2000; i++) await index.remember('p/f' + i, { size: 5, mtimeMs: 1, ino: i + 1 }, 'sha256', 'a'.repeat(64)).catch(() => failed++);
        console.log(JSON.stringify({ failed }));
      })();`);
    expect(child.error).toBeUndefined();
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ failed: 2000 });
  });

  test('records the commit worker appends: 300 small files into the folder are all committed', async () => {
    const child = runChild(`
      const { SmallCommits } = require(process.env.DIST + '/small-commits.js');
      const { join } = require('node:path');
      (async () => {
        const root = process.env.ROOT;
        const commits = new SmallCommits(join(root, '.rxfer', 'sums', 'folders'));
        const done = await Promise.all(Array.from({ length: 300 }, (_, i) => commits.commit({
          data: new Uint8Array(Buffer.from('x'.repeat(200))), staging: join(root, '.rxfer', 'st' + i), target: join(root, 'p', 'f' + i), folder: join(root, 'p'),
          createOnly: false, measureReplaced: false, name: 'p/f' + i, hash: 'sha256', digest: 'b'.repeat(64),
        }).then(() => 1, (err) => err.code)));
        await commits.close();
        console.log(JSON.stringify(done.filter((d) => d !== 1)));
      })();`);
    expect(child.error).toBeUndefined();
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual([]);
    expect((await readdir(join(root, 'p'))).length).toBe(300);
  });
});
