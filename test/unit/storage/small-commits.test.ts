import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmallCommitJob, SmallCommits } from '../../../src/storage/small-commits';

/** The group committer against a real temp folder: it is the file system's behaviour that matters. */
describe('SmallCommits', () => {
  let dir: string;
  const commits = new SmallCommits();
  let serial = 0;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-small-commits-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A job for `name` in `folder`, with its own ArrayBuffer as LocalSmallStagedWrite makes them. */
  const job = (folder: string, name: string, bytes: Buffer, extra: Partial<SmallCommitJob> = {}): SmallCommitJob => ({
    data: new Uint8Array(bytes),
    staging: join(folder, `.rxfer-part-test-${serial++}`),
    target: join(folder, name),
    folder,
    createOnly: false,
    measureReplaced: false,
    ...extra,
  });
  const leftovers = async (folder: string) => (await readdir(folder)).filter((entry) => entry.startsWith('.rxfer-part-'));
  const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  test('a burst of files into two folders: every one stored whole under its name, no staging file left', async () => {
    const folders = [join(dir, 'a'), join(dir, 'b')];
    await Promise.all(folders.map((folder) => mkdir(folder)));
    const files = Array.from({ length: 200 }, (_, i) => ({ folder: folders[i % 2]!, name: `f${i}`, bytes: randomBytes(i * 37) }));
    const results = await Promise.all(files.map((file) => commits.commit(job(file.folder, file.name, file.bytes))));
    for (const result of results) expect(result.mtimeMs).toBeGreaterThan(0);
    for (const file of files) expect(digest(await readFile(join(file.folder, file.name)))).toBe(digest(file.bytes));
    for (const folder of folders) expect(await leftovers(folder)).toEqual([]);
  });

  test('replaces an existing file and reports its size when asked', async () => {
    await writeFile(join(dir, 'old'), randomBytes(1234));
    const result = await commits.commit(job(dir, 'old', Buffer.from('new'), { measureReplaced: true }));
    expect(result.replacedBytes).toBe(1234);
    expect((await readFile(join(dir, 'old'))).toString()).toBe('new');
  });

  test('create-only onto an existing name fails with EEXIST; the file is untouched, the staging file gone', async () => {
    await writeFile(join(dir, 'taken'), 'first');
    await expect(commits.commit(job(dir, 'taken', Buffer.from('second'), { createOnly: true }))).rejects.toMatchObject({ code: 'EEXIST' });
    expect((await readFile(join(dir, 'taken'))).toString()).toBe('first');
    expect(await leftovers(dir)).toEqual([]);
  });

  test('a folder in the way of the name fails that file only; the others of the batch are stored', async () => {
    await mkdir(join(dir, 'folder'));
    const [blocked, fine] = await Promise.allSettled([
      commits.commit(job(dir, 'folder', Buffer.from('x'))),
      commits.commit(job(dir, 'fine', Buffer.from('y'))),
    ]);
    expect(blocked).toMatchObject({ status: 'rejected', reason: { code: 'EISDIR' } });
    expect(fine.status).toBe('fulfilled');
    expect((await readFile(join(dir, 'fine'))).toString()).toBe('y');
    expect(await leftovers(dir)).toEqual([]);
  });

  test('a folder that vanished fails with ENOENT', async () => {
    await expect(commits.commit(job(join(dir, 'missing'), 'f', Buffer.from('z')))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
