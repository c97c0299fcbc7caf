import './support/fail-fast';
import { RxferError } from '../../../src/errors/rxfer-error';
import { isStorageHang, withinStorageDeadline } from '../../../src/session/storage-deadline';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const deferred = <T>() => {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
};

const outcome = async <T>(promise: Promise<T>) => {
  try {
    return { value: await promise };
  } catch (err) {
    return { error: err as RxferError };
  }
};

describe('withinStorageDeadline', () => {
  test('an answer in time is the answer, and the deadline timer is gone', async () => {
    const call = deferred<string>();
    const result = withinStorageDeadline(call.promise, 1000, 'open x');
    await jest.advanceTimersByTimeAsync(999);
    call.resolve('handle');
    expect(await result).toBe('handle');
    expect(jest.getTimerCount()).toBe(0);
  });

  test('a failure in time is the failure, and the deadline timer is gone', async () => {
    const call = deferred<string>();
    const boom = new Error('EIO');
    const result = outcome(withinStorageDeadline(call.promise, 1000, 'open x'));
    call.reject(boom);
    expect(await result).toEqual({ error: boom });
    expect(jest.getTimerCount()).toBe(0);
  });

  test('no answer within the deadline is STORAGE_FAILED, saying it may still take effect', async () => {
    const call = deferred<string>();
    const result = outcome(withinStorageDeadline(call.promise, 1000, 'rename a'));
    await jest.advanceTimersByTimeAsync(1000);
    const { error } = await result;
    expect(error).toBeInstanceOf(RxferError);
    expect(error!.code).toBe('STORAGE_FAILED');
    expect(error!.message).toBe('storage did not rename a within 1000 ms; it may still take effect, so check (STAT) before repeating');
    expect(error!.detail).toEqual({ storageHungMs: 1000 });
    expect(isStorageHang(error)).toBe(true);
  });

  test('what a hung call brings later goes to discardLate', async () => {
    const call = deferred<string>();
    const discarded: string[] = [];
    const result = outcome(withinStorageDeadline(call.promise, 1000, 'open x', (late) => discarded.push(late)));
    await jest.advanceTimersByTimeAsync(1000);
    await result;
    expect(discarded).toEqual([]);
    call.resolve('late handle');
    await jest.advanceTimersByTimeAsync(0);
    expect(discarded).toEqual(['late handle']);
  });

  test('an answer in time is not discarded', async () => {
    const discarded: string[] = [];
    await withinStorageDeadline(Promise.resolve('handle'), 1000, 'open x', (late) => discarded.push(late));
    await jest.advanceTimersByTimeAsync(2000);
    expect(discarded).toEqual([]);
  });

  test('a hung call that fails later, or whose discard fails, raises nothing', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failing = deferred<string>();
      const first = outcome(withinStorageDeadline(failing.promise, 1000, 'open x', () => undefined));
      const discardFails = deferred<string>();
      const second = outcome(withinStorageDeadline(discardFails.promise, 1000, 'open y', () => Promise.reject(new Error('close failed'))));
      const noDiscard = deferred<string>();
      const third = outcome(withinStorageDeadline(noDiscard.promise, 1000, 'open z'));
      await jest.advanceTimersByTimeAsync(1000);
      await Promise.all([first, second, third]);
      failing.reject(new Error('late EIO'));
      discardFails.resolve('h');
      noDiscard.resolve('h');
      jest.useRealTimers();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('the deadline timer does not keep the process alive', async () => {
    jest.useRealTimers();
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      const call = deferred<string>();
      const result = withinStorageDeadline(call.promise, 60_000, 'open x');
      const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      call.resolve('h');
      await result;
    } finally {
      spy.mockRestore();
    }
  });
});

describe('isStorageHang', () => {
  test.each<[string, unknown]>([
    ['a plain Error', new Error('x')],
    ['another storage failure', new RxferError('STORAGE_FAILED', 'x', { errno: 'EIO' })],
    ['a storage failure without detail', new RxferError('STORAGE_FAILED', 'x')],
    ['a lookalike that is no RxferError', { detail: { storageHungMs: 5 } }],
    ['nothing', undefined],
  ])('is false for %s', (_label, err) => {
    expect(isStorageHang(err)).toBe(false);
  });

  test('is true for a deadline error, whatever its code', () => {
    expect(isStorageHang(new RxferError('STORAGE_FAILED', 'x', { storageHungMs: 0 }))).toBe(true);
  });
});
