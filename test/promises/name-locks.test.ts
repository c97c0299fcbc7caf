import { NameLocks } from '../../src/storage/name-locks';

/**
 * Promise (issue 14, NameLocks): a commit, RENAME, DELETE or MKDIR on a name never interleaves with
 * another on the same name, or on a folder holding it, or on a name inside it. A lock that lets two
 * such requests overlap loses data (a file RENAMEd away while an upload commits to it is unlinked,
 * and both clients hear OK); a lock that never lets go hangs the server. Pure and in-process: each
 * case records which work runs while which other is still running; no timing.
 */

/** A piece of work that runs until the test lets it finish, and says when it started. */
interface Gate {
  readonly started: Promise<void>;
  readonly result: Promise<string>;
  finish(): void;
  fail(err: Error): void;
  readonly hasStarted: () => boolean;
}

const gated = (locks: NameLocks, paths: readonly string[], label: string): Gate => {
  let began = false;
  let markStarted!: () => void;
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const result = locks.with(paths, () => {
    began = true;
    markStarted();
    return new Promise<string>((resolve, reject) => {
      finish = () => resolve(label);
      fail = reject;
    });
  });
  result.catch(() => undefined);
  return { started, result, finish: () => finish(), fail: (err) => fail(err), hasStarted: () => began };
};

/** Lets every promise callback that is ready run (a few macrotask turns, no clock). */
const settle = async (): Promise<void> => {
  for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
};

describe('NameLocks: overlapping names take turns, others do not wait', () => {
  it.each([
    ['the same name', 'a/file.bin', 'a/file.bin'],
    ['the folder, then a name inside it', 'a', 'a/file.bin'],
    ['a name inside, then its folder', 'a/b/file.bin', 'a'],
    ['a deeper folder and its parent', 'a/b', 'a/b/c/d'],
  ])('%s: the second waits until the first is done', async (_case, first, second) => {
    const locks = new NameLocks();
    const one = gated(locks, [first], 'one');
    await one.started;
    const two = gated(locks, [second], 'two');
    await settle();
    expect(two.hasStarted()).toBe(false);
    expect(locks.size).toBe(2);
    one.finish();
    await expect(one.result).resolves.toBe('one');
    await two.started;
    two.finish();
    await expect(two.result).resolves.toBe('two');
    expect(locks.size).toBe(0);
  });

  it.each([
    ['two names in one folder', 'a/one.bin', 'a/two.bin'],
    ['a name that only starts like the other', 'a/file', 'a/file.bin'],
    ['a folder that only starts like the other', 'ab', 'a'],
    ['a folder that only starts like the other, the other way', 'a', 'ab/file.bin'],
    ['unrelated names', 'x.bin', 'y.bin'],
  ])('%s: both run at once', async (_case, first, second) => {
    const locks = new NameLocks();
    const one = gated(locks, [first], 'one');
    await one.started;
    const two = gated(locks, [second], 'two');
    await two.started;
    expect(one.hasStarted() && two.hasStarted()).toBe(true);
    two.finish();
    one.finish();
    await expect(Promise.all([one.result, two.result])).resolves.toEqual(['one', 'two']);
    expect(locks.size).toBe(0);
  });

  it('a request on two names (RENAME) waits for either, whichever of its names is held', async () => {
    const locks = new NameLocks();
    const commit = gated(locks, ['b/to.bin'], 'commit');
    await commit.started;
    const rename = gated(locks, ['a/from.bin', 'b/to.bin'], 'rename');
    await settle();
    expect(rename.hasStarted()).toBe(false);
    commit.finish();
    await rename.started;
    // And the other way: a commit to the RENAME's first name waits for the RENAME.
    const later = gated(locks, ['a/from.bin'], 'later');
    await settle();
    expect(later.hasStarted()).toBe(false);
    rename.finish();
    await later.started;
    later.finish();
    await expect(Promise.all([commit.result, rename.result, later.result])).resolves.toEqual(['commit', 'rename', 'later']);
    expect(locks.size).toBe(0);
  });

  it('waiting requests run in the order they were made, each after all the earlier ones', async () => {
    const locks = new NameLocks();
    const order: string[] = [];
    const first = gated(locks, ['f'], 'first');
    await first.started;
    const second = gated(locks, ['f'], 'second');
    const third = gated(locks, ['f'], 'third');
    second.started.then(() => order.push('second'));
    third.started.then(() => order.push('third'));
    first.finish();
    await second.started;
    await settle();
    // The third waits for the second too, not only for the first.
    expect(third.hasStarted()).toBe(false);
    second.finish();
    await third.started;
    third.finish();
    await Promise.all([first.result, second.result, third.result]);
    expect(order).toEqual(['second', 'third']);
  });

  it('work that fails lets go of its lock, and the failure reaches its caller', async () => {
    const locks = new NameLocks();
    const failing = gated(locks, ['n'], 'failing');
    await failing.started;
    const next = gated(locks, ['n'], 'next');
    failing.fail(new Error('EIO'));
    await expect(failing.result).rejects.toThrow('EIO');
    await next.started;
    next.finish();
    await expect(next.result).resolves.toBe('next');
    expect(locks.size).toBe(0);
    expect(locks.isEmpty).toBe(true);
  });

  it('work that throws at once lets go too', async () => {
    const locks = new NameLocks();
    await expect(locks.with(['n'], () => Promise.reject(new Error('at once')))).rejects.toThrow('at once');
    expect(locks.size).toBe(0);
    await expect(locks.with(['n'], async () => 'free')).resolves.toBe('free');
  });

  it('absolute paths, as the server locks them: a folder waits for its files, siblings and look-alikes do not', async () => {
    const locks = new NameLocks();
    const file = gated(locks, ['/srv/root/up/a/f.bin'], 'file');
    const sibling = gated(locks, ['/srv/root/up/a/g.bin'], 'sibling');
    const lookAlike = gated(locks, ['/srv/root/up/ab'], 'look-alike');
    await Promise.all([file.started, sibling.started, lookAlike.started]);
    const folder = gated(locks, ['/srv/root/up/a'], 'folder');
    const root = gated(locks, ['/srv/root'], 'root');
    await settle();
    expect(folder.hasStarted()).toBe(false);
    expect(root.hasStarted()).toBe(false);
    file.finish();
    lookAlike.finish();
    await settle();
    // Still one file inside it in progress.
    expect(folder.hasStarted()).toBe(false);
    sibling.finish();
    await folder.started;
    // The root waits for the folder as well as for everything below it.
    await settle();
    expect(root.hasStarted()).toBe(false);
    folder.finish();
    await root.started;
    root.finish();
    await Promise.all([file.result, sibling.result, lookAlike.result, folder.result, root.result]);
    expect(locks.size).toBe(0);
    expect(locks.isEmpty).toBe(true);
  });

  it('a folder waits for every request below it, not only the first one found', async () => {
    const locks = new NameLocks();
    const files = ['x/1', 'x/deep/2', 'x/deep/er/3'].map((name) => gated(locks, [name], name));
    await Promise.all(files.map((file) => file.started));
    const folder = gated(locks, ['x'], 'x');
    for (const file of files) {
      await settle();
      expect(folder.hasStarted()).toBe(false);
      file.finish();
    }
    await folder.started;
    folder.finish();
    await Promise.all([...files.map((file) => file.result), folder.result]);
    expect(locks.isEmpty).toBe(true);
  });

  it('hundreds in flight: unrelated names run at once, and every one lets go of what it held', async () => {
    const locks = new NameLocks();
    const files = Array.from({ length: 300 }, (_, i) => gated(locks, [`/root/d${i % 7}/f${i}`], `f${i}`));
    await Promise.all(files.map((file) => file.started));
    expect(locks.size).toBe(300);
    // A RENAME between two of the folders waits for the files of both, and nothing else.
    const rename = gated(locks, ['/root/d1', '/root/d2'], 'rename');
    for (const [i, file] of files.entries()) if (i % 7 !== 1 && i % 7 !== 2) file.finish();
    await settle();
    expect(rename.hasStarted()).toBe(false);
    for (const [i, file] of files.entries()) if (i % 7 === 1 || i % 7 === 2) file.finish();
    await rename.started;
    rename.finish();
    await Promise.all([...files.map((file) => file.result), rename.result]);
    expect(locks.size).toBe(0);
    expect(locks.isEmpty).toBe(true);
  });

  it('a request that started after the one before it finished is still seen by the next: one leaving does not hide another on its name', async () => {
    const locks = new NameLocks();
    const first = gated(locks, ['/r/x'], 'first');
    await first.started;
    const second = gated(locks, ['/r/x'], 'second');
    first.finish();
    await second.started;
    // Only the second holds /r/x now; a third must wait for it.
    const third = gated(locks, ['/r/x'], 'third');
    const inside = gated(locks, ['/r/x/y'], 'inside');
    await settle();
    expect(third.hasStarted()).toBe(false);
    expect(inside.hasStarted()).toBe(false);
    second.finish();
    await third.started;
    third.finish();
    await inside.started;
    inside.finish();
    await Promise.all([first.result, second.result, third.result, inside.result]);
    expect(locks.isEmpty).toBe(true);
  });

  it('isEmpty is false while anything is held: a name with no folder above it, and one with', async () => {
    const locks = new NameLocks();
    const flat = gated(locks, ['x'], 'flat');
    await flat.started;
    expect(locks.isEmpty).toBe(false);
    flat.finish();
    await flat.result;
    expect(locks.isEmpty).toBe(true);
    const deep = gated(locks, ['/a/b'], 'deep');
    await deep.started;
    expect(locks.isEmpty).toBe(false);
    deep.finish();
    await deep.result;
    expect(locks.isEmpty).toBe(true);
  });

  it('an uncontended lock runs its work and gives back its value', async () => {
    const locks = new NameLocks();
    await expect(locks.with(['a', 'b'], async () => 42)).resolves.toBe(42);
    expect(locks.size).toBe(0);
  });
});
