import { FileWindow } from '../../../src/client/file-window';

/** A task that ends when `finish` is called. */
const task = () => {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { done, finish };
};

/** Whether `promise` settles within a few turns of the event loop. */
const settlesSoon = async (promise: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  void promise.then(() => (settled = true));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

describe('FileWindow', () => {
  test('at most `limit` tasks: the next waits until one ends', async () => {
    const window = new FileWindow(2);
    const [a, b] = [task(), task()];
    window.add(a.done);
    window.add(b.done);
    const next = window.free();
    expect(await settlesSoon(next)).toBe(false);
    a.finish();
    expect(await settlesSoon(next)).toBe(true);
  });

  test('a byte budget: a file that does not fit waits until enough bytes are done', async () => {
    const window = new FileWindow(64, 3 * 1024 * 1024);
    const [a, b] = [task(), task()];
    window.add(a.done, 2 * 1024 * 1024);
    window.add(b.done, 1024 * 1024);
    const next = window.free(1024 * 1024);
    expect(await settlesSoon(next)).toBe(false);
    b.finish();
    expect(await settlesSoon(next)).toBe(true);
  });

  test('a file larger than the whole budget still goes once nothing else is in flight', async () => {
    const window = new FileWindow(64, 1024);
    const a = task();
    window.add(a.done, 10);
    const big = window.free(1_000_000);
    expect(await settlesSoon(big)).toBe(false);
    a.finish();
    expect(await settlesSoon(big)).toBe(true);
  });

  test('drained waits for every task', async () => {
    const window = new FileWindow(4);
    const [a, b] = [task(), task()];
    window.add(a.done, 5);
    window.add(b.done, 5);
    const drained = window.drained();
    a.finish();
    expect(await settlesSoon(drained)).toBe(false);
    b.finish();
    expect(await settlesSoon(drained)).toBe(true);
  });
});
