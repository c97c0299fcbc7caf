import './support/fail-fast';
import { REQUEST_BUDGET, RequestBudget } from '../../../src/session/request-budget';

/** Resolves true when `promise` settled before the microtask queue drained (no timers involved). */
const settledNow = async (promise: Promise<void> | undefined): Promise<boolean> => {
  if (promise === undefined) return true;
  let done = false;
  void promise.then(() => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

describe('RequestBudget', () => {
  test('the default limits are the documented ones', () => {
    expect(REQUEST_BUDGET).toEqual({ requests: 64, downloads: 32, lists: 1, batches: 4 });
  });

  test('requests fit until the request limit is used up, then wait', () => {
    const budget = new RequestBudget({ requests: 2, downloads: 9, lists: 9, batches: 4 });
    expect(budget.roomFor('STAT')).toBeUndefined();
    budget.take('STAT');
    expect(budget.roomFor('UPLOAD')).toBeUndefined();
    budget.take('UPLOAD');
    expect(budget.roomFor('STAT')).toBeInstanceOf(Promise);
  });

  test('the default budget admits 64 requests, the 65th waits', () => {
    const budget = new RequestBudget();
    for (let i = 0; i < 64; i++) {
      expect(budget.roomFor('DELETE')).toBeUndefined();
      budget.take('DELETE');
    }
    expect(budget.roomFor('DELETE')).toBeInstanceOf(Promise);
  });

  test('downloads have their own limit within the requests', () => {
    const budget = new RequestBudget({ requests: 10, downloads: 2, lists: 9, batches: 4 });
    budget.take('DOWNLOAD');
    expect(budget.roomFor('DOWNLOAD')).toBeUndefined();
    budget.take('DOWNLOAD');
    expect(budget.roomFor('DOWNLOAD')).toBeInstanceOf(Promise);
    // Other verbs still fit: the download limit is not theirs.
    expect(budget.roomFor('STAT')).toBeUndefined();
    expect(budget.roomFor('LIST')).toBeUndefined();
  });

  test('LISTs have their own limit within the requests', () => {
    const budget = new RequestBudget({ requests: 10, downloads: 9, lists: 1, batches: 4 });
    expect(budget.roomFor('LIST')).toBeUndefined();
    budget.take('LIST');
    expect(budget.roomFor('LIST')).toBeInstanceOf(Promise);
    expect(budget.roomFor('DOWNLOAD')).toBeUndefined();
  });

  test('BATCHes have their own limit within the requests (each holds up to 1 MiB of files)', () => {
    const budget = new RequestBudget();
    for (let i = 0; i < 4; i++) {
      expect(budget.roomFor('BATCH')).toBeUndefined();
      budget.take('BATCH');
    }
    expect(budget.roomFor('BATCH')).toBeInstanceOf(Promise);
    expect(budget.roomFor('UPLOAD')).toBeUndefined();
    expect(budget.roomFor('DOWNLOAD')).toBeUndefined();
  });

  test('a waiting BATCH is admitted once half the batches are given back', async () => {
    const budget = new RequestBudget();
    for (let i = 0; i < 4; i++) budget.take('BATCH');
    const waiting = budget.roomFor('BATCH');
    budget.give('BATCH');
    expect(await settledNow(waiting)).toBe(false);
    budget.give('BATCH');
    expect(await settledNow(waiting)).toBe(true);
  });

  test('other verbs count only against the request limit', () => {
    const budget = new RequestBudget({ requests: 10, downloads: 1, lists: 1, batches: 4 });
    for (const verb of ['UPLOAD', 'STAT', 'DELETE', 'RENAME', 'MKDIR', 'ADDFILE'] as const) budget.take(verb);
    expect(budget.roomFor('DOWNLOAD')).toBeUndefined();
    expect(budget.roomFor('LIST')).toBeUndefined();
  });

  test('a waiting request is admitted only once half the request budget is free', async () => {
    const budget = new RequestBudget({ requests: 4, downloads: 9, lists: 9, batches: 4 });
    for (let i = 0; i < 4; i++) budget.take('STAT');
    const admitted = budget.roomFor('STAT');
    budget.give('STAT'); // 3 used: more than half of 4
    expect(await settledNow(admitted)).toBe(false);
    budget.give('STAT'); // 2 used: half
    expect(await settledNow(admitted)).toBe(true);
  });

  test('with an odd limit, half is rounded down', async () => {
    const budget = new RequestBudget({ requests: 5, downloads: 9, lists: 9, batches: 4 });
    for (let i = 0; i < 5; i++) budget.take('STAT');
    const admitted = budget.roomFor('STAT');
    budget.give('STAT');
    budget.give('STAT'); // 3 used: above floor(5 / 2) = 2
    expect(await settledNow(admitted)).toBe(false);
    budget.give('STAT'); // 2 used
    expect(await settledNow(admitted)).toBe(true);
  });

  test('a waiting download is admitted once half the download budget is free', async () => {
    const budget = new RequestBudget({ requests: 100, downloads: 4, lists: 9, batches: 4 });
    for (let i = 0; i < 4; i++) budget.take('DOWNLOAD');
    const admitted = budget.roomFor('DOWNLOAD');
    budget.give('STAT'); // frees a request, not a download (an unbalanced give, only to show the kind matters)
    expect(await settledNow(admitted)).toBe(false);
    budget.give('DOWNLOAD');
    expect(await settledNow(admitted)).toBe(false);
    budget.give('DOWNLOAD');
    expect(await settledNow(admitted)).toBe(true);
  });

  test('a waiting LIST is admitted once the LIST before it is answered', async () => {
    const budget = new RequestBudget({ requests: 100, downloads: 9, lists: 1, batches: 4 });
    budget.take('LIST');
    const admitted = budget.roomFor('LIST');
    budget.give('DOWNLOAD');
    expect(await settledNow(admitted)).toBe(false);
    budget.give('LIST');
    expect(await settledNow(admitted)).toBe(true);
  });

  test('a request given back frees its room for the next one', () => {
    const budget = new RequestBudget({ requests: 1, downloads: 1, lists: 1, batches: 4 });
    budget.take('DOWNLOAD');
    budget.give('DOWNLOAD');
    expect(budget.roomFor('DOWNLOAD')).toBeUndefined();
    budget.take('LIST');
    budget.give('LIST');
    expect(budget.roomFor('LIST')).toBeUndefined();
  });

  test('a second waiter is admitted by the gives after the first one', async () => {
    const budget = new RequestBudget({ requests: 2, downloads: 9, lists: 9, batches: 4 });
    budget.take('STAT');
    budget.take('STAT');
    const first = budget.roomFor('STAT');
    budget.give('STAT');
    expect(await settledNow(first)).toBe(true);
    budget.take('STAT');
    const second = budget.roomFor('STAT');
    expect(await settledNow(second)).toBe(false);
    budget.give('STAT');
    expect(await settledNow(second)).toBe(true);
  });
});
