import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { IDLE_MS, SmallCommitJob, SmallCommits } from '../../../src/storage/small-commits';

/**
 * The idle stop of the commit worker (it gives its ≈ 10 MiB back after IDLE_MS without a commit).
 * Only setTimeout/clearTimeout are faked, so that the idle time passes at once; the worker, the file
 * system and setImmediate stay real.
 */
describe('SmallCommits, the idle worker', () => {
  let dir: string;
  let serial = 0;

  beforeEach(async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'hrtime', 'performance', 'Date', 'setInterval', 'clearInterval'] });
    dir = await mkdtemp(join(tmpdir(), 'rxfer-small-commits-idle-'));
  });
  afterEach(async () => {
    jest.useRealTimers();
    await rm(dir, { recursive: true, force: true });
  });

  const job = (name: string): SmallCommitJob => ({
    data: new Uint8Array(Buffer.from(name)),
    staging: join(dir, `.rxfer-part-idle-${serial++}`),
    target: join(dir, name),
    folder: dir,
    createOnly: false,
    measureReplaced: false,
  });
  const workerOf = (commits: SmallCommits) => (commits as unknown as { worker: Worker | undefined }).worker;

  test('an idle worker is stopped after the idle time; the next commit starts a new one', async () => {
    const commits = new SmallCommits();
    try {
      await commits.commit(job('one'));
      const first = workerOf(commits)!;
      const exited = new Promise((resolve) => first.once('exit', resolve));
      jest.advanceTimersByTime(IDLE_MS);
      expect(workerOf(commits)).toBeUndefined();
      await exited;
      await commits.commit(job('two'));
      expect(workerOf(commits)).not.toBe(first);
      expect(await readFile(join(dir, 'two'), 'utf8')).toBe('two');
    } finally {
      await commits.close();
    }
  });

  test('a commit keeps the worker: the idle time counts from the last commit done', async () => {
    const commits = new SmallCommits();
    try {
      await commits.commit(job('one'));
      const worker = workerOf(commits)!;
      jest.advanceTimersByTime(0.6 * IDLE_MS);
      await commits.commit(job('two'));
      // 1.2 idle times after the first commit, 0.6 after the second: not idle long enough.
      jest.advanceTimersByTime(0.6 * IDLE_MS);
      expect(workerOf(commits)).toBe(worker);
      jest.advanceTimersByTime(0.4 * IDLE_MS);
      expect(workerOf(commits)).toBeUndefined();
    } finally {
      await commits.close();
    }
  });

  test('a commit made just as the idle worker is stopped goes to a new worker and is done', async () => {
    const commits = new SmallCommits();
    try {
      await commits.commit(job('one'));
      const first = workerOf(commits)!;
      jest.advanceTimersByTime(IDLE_MS);
      // The old thread's exit usually comes after the new one has the commit; it must not fail it.
      const late = commits.commit(job('late'));
      await expect(late).resolves.toMatchObject({ replacedBytes: 0 });
      await new Promise((resolve) => (first.threadId === -1 ? resolve(undefined) : first.once('exit', resolve)));
      expect(workerOf(commits)).toBeDefined();
      expect(workerOf(commits)).not.toBe(first);
      await commits.commit(job('after'));
      expect(await readFile(join(dir, 'after'), 'utf8')).toBe('after');
    } finally {
      await commits.close();
    }
  });

  test('close waits for every batch in flight, and no longer: not for the idle time', async () => {
    const commits = new SmallCommits();
    await commits.commit(job('warm')); // a worker already running: it takes each batch as it comes
    let done = 0;
    // Many in the first, so that the worker is still at them when the second arrives: two replies.
    const first = Array.from({ length: 500 }, (_, i) => commits.commit(job(`a${i}`)).then(() => done++));
    // Posted at once, the two would be one batch: the second goes once the worker is at the first.
    while (done === 0 && !(await readdir(dir)).some((entry) => entry.startsWith('.rxfer-part-idle-'))) await new Promise((resolve) => setImmediate(resolve));
    const second = Array.from({ length: 20 }, (_, i) => commits.commit(job(`b${i}`)).then(() => done++));
    // Timers do not run here: a close that waited for the idle stop to end the worker would never end.
    await commits.close();
    expect(done).toBe(520);
    expect(workerOf(commits)).toBeUndefined();
    await Promise.all([...first, ...second]);
  });
});
