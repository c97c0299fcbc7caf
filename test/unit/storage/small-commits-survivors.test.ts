import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { formatDigestLine } from '../../../src/storage/small-commit-log';
import { IDLE_MS, SmallCommits } from '../../../src/storage/small-commits';
import { type CommitFolder, makeCommitFolder } from '../../helpers/commit-folder';

/**
 * SmallCommits while its worker compacts a digest log (small-commit.worker.js compacts after
 * replying): close waits for the compaction, the worker is neither let go of (unref) nor given its
 * idle time while a compaction runs or a commit is pending, and a worker lost with commits both in
 * it and still queued fails the first and hands the others to a new worker.
 *
 * A compaction is provoked by a digest log grown past its threshold, written here: records of files
 * that are not in the folder, enough of them that the compaction takes a while (it is synchronous in
 * the worker: whatever is posted to it meanwhile waits, and its messages come in a known order).
 * Only setTimeout/clearTimeout are faked, so that the idle timer can be seen and run at once.
 */
describe('SmallCommits while a digest log is compacted', () => {
  let at: CommitFolder;
  let commits: SmallCommits;

  beforeEach(async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'hrtime', 'performance', 'Date', 'setInterval', 'clearInterval'] });
    at = await makeCommitFolder('survivors');
    commits = new SmallCommits(at.sums);
  });
  afterEach(async () => {
    await commits.close();
    jest.useRealTimers();
    await at.remove();
  });

  type Inside = { worker: Worker | undefined; pending: Map<number, unknown>; queue: unknown[]; compacting: number };
  const inside = () => commits as unknown as Inside;
  const STALE = 20_000;
  /** A log of STALE records whose files are not there (≈ 3 MB, past the 64 KiB threshold): all dropped by a compaction. */
  const bigStaleLog = async () => {
    let body = '';
    for (let i = 0; i < STALE; i++) body += formatDigestLine(`gone-${i}.bin`, 1024, 1_733_000_000_000 + i, 1_000_000 + i, 'sha256', 'cd'.repeat(32));
    await writeFile(at.log, body);
  };
  const compacted = async () => {
    const text = await readFile(at.log, 'utf8');
    return /^\{"compacted": *\d+\}\n/.test(text) && !text.includes('gone-');
  };
  const temporaries = async () => (await readdir(at.sums)).filter((name) => name.endsWith('.tmp'));
  /** A running worker, idle: started by a commit that has no digest (so it compacts nothing). */
  const warmWorker = async () => {
    await commits.commit(at.job('warm.bin', randomBytes(3), { name: undefined }));
    return inside().worker!;
  };
  /** Resolves with the worker's next message that reports compactions finished. */
  const compactionFinished = (worker: Worker) =>
    new Promise<void>((resolve) => {
      const seen = (message: { compactionsFinished: number }) => {
        if (message.compactionsFinished === 0) return;
        worker.off('message', seen);
        resolve();
      };
      worker.on('message', seen);
    });

  test('close waits for a compaction in progress although no commit is pending; it is counted while it runs', async () => {
    await bigStaleLog();
    await commits.commit(at.job('one.bin', randomBytes(10)));
    // Replied: the worker is compacting now, and SmallCommits knows it.
    expect(inside().pending.size).toBe(0);
    expect(inside().compacting).toBe(1);
    await commits.close();
    // Not cut short: the log is rewritten, and no temporary file is left behind.
    expect(await compacted()).toBe(true);
    expect(await temporaries()).toEqual([]);
    expect(inside().worker).toBeUndefined();
  });

  test('close called with the commit still pending waits for the compaction its reply announces', async () => {
    await bigStaleLog();
    let done = false;
    const committing = commits.commit(at.job('one.bin', randomBytes(10))).then(() => (done = true));
    await commits.close();
    expect(done).toBe(true);
    expect(await compacted()).toBe(true);
    expect(await temporaries()).toEqual([]);
    await committing;
  });

  /** What SmallCommits held each time it let the worker go (unref): the worker still unrefs for real. */
  const recordUnrefs = (worker: Worker) => {
    const unrefs: { pending: number; queued: number; compacting: number }[] = [];
    const unref = worker.unref.bind(worker);
    jest.spyOn(worker, 'unref').mockImplementation(() => {
      unrefs.push({ pending: inside().pending.size, queued: inside().queue.length, compacting: inside().compacting });
      unref();
    });
    return unrefs;
  };

  test('no idle time and no unref while a compaction runs; once it is finished the count is zero and the idle stop comes', async () => {
    await bigStaleLog();
    const worker = await warmWorker();
    const unrefs = recordUnrefs(worker);
    const finished = compactionFinished(worker);
    await commits.commit(at.job('one.bin', randomBytes(10)));
    expect(inside().compacting).toBe(1);
    // Replied, compacting: no idle timer, and the worker still keeps the process alive.
    expect(jest.getTimerCount()).toBe(0);
    expect(unrefs).toEqual([]);
    await finished;
    expect(inside().compacting).toBe(0);
    expect(unrefs).toEqual([{ pending: 0, queued: 0, compacting: 0 }]);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(IDLE_MS);
    expect(inside().worker).toBeUndefined();
    expect(await compacted()).toBe(true);
  });

  test('a commit pending when the compaction finishes keeps the worker: no unref, no idle time until it is done', async () => {
    await bigStaleLog();
    const worker = await warmWorker();
    const unrefs = recordUnrefs(worker);
    let second: Promise<unknown> | undefined;
    // After SmallCommits' own listener: at the reply that announces the compaction, a new commit,
    // posted while the worker compacts; its reply comes after the compaction's end.
    const onReply = (message: { compactionsStarted: number }) => {
      if (message.compactionsStarted > 0) second = commits.commit(at.job('two.bin', randomBytes(10), { name: undefined }));
    };
    worker.on('message', onReply);
    const finished = compactionFinished(worker);
    const timersAtFinish = new Promise<number>((resolve) => worker.once('message', () => worker.once('message', () => resolve(jest.getTimerCount()))));
    await commits.commit(at.job('one.bin', randomBytes(10)));
    await finished;
    expect(second).toBeDefined();
    // The compaction's end came with `two.bin` pending: the worker is still needed.
    expect(await timersAtFinish).toBe(0);
    await second;
    worker.off('message', onReply);
    expect(await readFile(join(at.folder, 'two.bin'))).toHaveLength(10);
    // Let go of once only, when nothing was pending, queued or compacting.
    expect(unrefs).toEqual([{ pending: 0, queued: 0, compacting: 0 }]);
    expect(jest.getTimerCount()).toBe(1);
  });

  test('close called while the worker compacts, with a commit posted meanwhile: close waits for that reply too, not only for the compaction', async () => {
    await bigStaleLog();
    const worker = await warmWorker();
    let settled: string | undefined;
    let closing: Promise<void> | undefined;
    // At the reply that announces the compaction: a second commit (its batch reaches the worker while it
    // compacts, so it is answered after the compaction's end, in a message of its own), then close().
    worker.once('message', () => {
      commits.commit(at.job('two.bin', randomBytes(10), { name: undefined })).then(
        () => (settled = 'committed'),
        (err: NodeJS.ErrnoException) => (settled = String(err.code)),
      );
      closing = commits.close();
    });
    await commits.commit(at.job('one.bin', randomBytes(10)));
    await closing;
    // Ended at the compaction's end, close would leave two.bin waiting for ever on a thread it terminated.
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe('committed');
    expect(await readFile(join(at.folder, 'two.bin'))).toHaveLength(10);
    expect(await compacted()).toBe(true);
  });

  test('a reply for a commit no longer waiting (failed when its thread was taken for lost) is let pass: nothing thrown, later commits answered', async () => {
    const worker = await warmWorker();
    // A thread's 'error' can reach this side before a reply it posted just before dying: lost() has
    // failed that commit by then. Such a late reply, for an id nobody waits on, is delivered here as the
    // worker's port would deliver it.
    const late = { replies: [{ id: 1_000_000 }, { id: 1_000_001, code: 'EIO', message: 'late failure' }], compactionsStarted: 0, compactionsFinished: 0 };
    expect(() => worker.emit('message', late)).not.toThrow();
    await expect(commits.commit(at.job('after.bin', randomBytes(5), { name: undefined }))).resolves.toMatchObject({ replacedBytes: 0 });
    expect(await readFile(join(at.folder, 'after.bin'))).toHaveLength(5);
  });

  test('a worker lost with commits in it and one still queued: those in it fail (EWORKER), the queued one goes to a new worker', async () => {
    await bigStaleLog();
    const worker = await warmWorker();
    const settled = new Map<number, string>();
    // At the reply that announces the compaction: five commits, posted while the worker compacts.
    worker.once('message', () => {
      for (let i = 0; i < 5; i++) {
        commits.commit(at.job(`in-${i}.bin`, randomBytes(10), { name: undefined })).then(
          () => settled.set(i, 'committed'),
          (err: NodeJS.ErrnoException) => settled.set(i, String(err.code)),
        );
      }
    });
    await commits.commit(at.job('one.bin', randomBytes(10)));
    await new Promise((resolve) => setImmediate(resolve)); // the five posted
    expect(inside().queue).toHaveLength(0);
    expect(inside().pending.size).toBe(5);
    let queued: Promise<unknown> | undefined;
    // Ahead of SmallCommits' own exit listener: this commit is in its queue when it learns of the exit.
    worker.prependOnceListener('exit', () => (queued = commits.commit(at.job('queued.bin', randomBytes(4), { name: undefined }))));
    await worker.terminate();
    await expect(queued).resolves.toMatchObject({ replacedBytes: 0 });
    expect(await readFile(join(at.folder, 'queued.bin'))).toHaveLength(4);
    // Each of the five is answered by now (failed as the worker was lost, or done if it got to them
    // first): none is left waiting for a thread that is gone.
    expect([...settled.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    for (const outcome of settled.values()) expect(['committed', 'EWORKER']).toContain(outcome);
  });
});
