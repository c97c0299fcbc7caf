import '../session/support/fail-fast';
import { PassThrough } from 'node:stream';
import { Subject } from 'rxjs';
import { concatAsync } from '../../../src/pipeline/concat-async';
import { FlowControl } from '../../../src/session/flow-control';

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const deferred = () => {
  let resolve!: (values: readonly string[]) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<readonly string[]>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
};

/** Runs concatAsync with `handle` over a Subject; records what comes out. */
const setup = (handle: (value: number) => readonly string[] | Promise<readonly string[]>) => {
  const flow = new FlowControl(new PassThrough());
  const input = new Subject<number>();
  const seen: string[] = [];
  const state: { error?: unknown; completed: boolean } = { completed: false };
  const handled: number[] = [];
  const subscription = input
    .pipe(
      concatAsync(flow, (value: number) => {
        handled.push(value);
        return handle(value);
      }),
    )
    .subscribe({
      next: (value) => seen.push(value),
      error: (err) => (state.error = err),
      complete: () => (state.completed = true),
    });
  return { flow, input, seen, state, handled, subscription };
};

describe('concatAsync', () => {
  test('synchronous results are emitted on the spot, all of them, in order', () => {
    const { input, seen } = setup((n) => (n === 0 ? [] : [`${n}a`, `${n}b`]));
    input.next(1);
    expect(seen).toEqual(['1a', '1b']);
    input.next(0);
    input.next(2);
    expect(seen).toEqual(['1a', '1b', '2a', '2b']);
  });

  test('values queue behind a pending promise, the socket held meanwhile, and keep their order', async () => {
    const waits = new Map<number, ReturnType<typeof deferred>>();
    const { input, seen, flow, handled } = setup((n) => {
      if (n % 2 === 1) return [`${n}`];
      const d = deferred();
      waits.set(n, d);
      return d.promise;
    });
    input.next(1);
    input.next(2);
    input.next(3);
    input.next(4);
    input.next(5);
    expect(flow.paused).toBe(true);
    expect(handled).toEqual([1, 2]);
    expect(seen).toEqual(['1']);
    waits.get(2)!.resolve(['2']);
    await flush();
    expect(handled).toEqual([1, 2, 3, 4]);
    expect(seen).toEqual(['1', '2', '3']);
    expect(flow.paused).toBe(true);
    waits.get(4)!.resolve(['4a', '4b']);
    await flush();
    expect(seen).toEqual(['1', '2', '3', '4a', '4b', '5']);
    expect(flow.paused).toBe(false);
  });

  test('values arriving after the queue emptied are handled too', async () => {
    const waits: ReturnType<typeof deferred>[] = [];
    const { input, seen } = setup((n) => {
      if (n !== 1) return [`${n}`];
      const d = deferred();
      waits.push(d);
      return d.promise;
    });
    input.next(1);
    input.next(2);
    waits[0]!.resolve(['1']);
    await flush();
    input.next(3);
    input.next(4);
    expect(seen).toEqual(['1', '2', '3', '4']);
  });

  test('a handler that throws ends the stream with its error and handles nothing more', () => {
    const boom = new Error('stage bug');
    const { input, state, handled } = setup((n) => {
      if (n === 2) throw boom;
      return [`${n}`];
    });
    input.next(1);
    input.next(2);
    input.next(3);
    expect(state.error).toBe(boom);
    expect(handled).toEqual([1, 2]);
  });

  test('a rejected promise ends the stream with its error and lets go of the socket', async () => {
    const d = deferred();
    const { input, state, flow } = setup(() => d.promise);
    input.next(1);
    expect(flow.paused).toBe(true);
    const boom = new Error('storage');
    d.reject(boom);
    await flush();
    expect(state.error).toBe(boom);
    expect(flow.paused).toBe(false);
  });

  test('completes when the source does and nothing is pending', () => {
    const { input, state } = setup((n) => [`${n}`]);
    input.next(1);
    expect(state.completed).toBe(false);
    input.complete();
    expect(state.completed).toBe(true);
  });

  test('completes only after the pending promise and the values behind it', async () => {
    const d = deferred();
    const { input, state, seen } = setup((n) => (n === 1 ? d.promise : [`${n}`]));
    input.next(1);
    input.next(2);
    input.complete();
    expect(state.completed).toBe(false);
    d.resolve(['1']);
    await flush();
    expect(seen).toEqual(['1', '2']);
    expect(state.completed).toBe(true);
  });

  test("the source's error passes through", () => {
    const { input, state } = setup((n) => [`${n}`]);
    const boom = new Error('socket');
    input.error(boom);
    expect(state.error).toBe(boom);
  });

  test('once unsubscribed, queued values are not handled and the source is let go', async () => {
    const d = deferred();
    const { input, handled, subscription } = setup((n) => (n === 1 ? d.promise : [`${n}`]));
    input.next(1);
    input.next(2);
    subscription.unsubscribe();
    expect(input.observed).toBe(false);
    d.resolve(['1']);
    await flush();
    expect(handled).toEqual([1]);
  });

  test('a downstream that stops taking mid-batch stops the handling of the rest', async () => {
    const d = deferred();
    const flow = new FlowControl(new PassThrough());
    const input = new Subject<number>();
    const handled: number[] = [];
    const seen: string[] = [];
    const { take } = await import('rxjs');
    input
      .pipe(
        concatAsync(flow, (n: number) => {
          handled.push(n);
          return n === 1 ? d.promise : [`${n}`];
        }),
        take(2),
      )
      .subscribe((value) => seen.push(value));
    input.next(1);
    input.next(2);
    input.next(3);
    d.resolve(['1']);
    await flush();
    expect(seen).toEqual(['1', '2']);
    expect(handled).toEqual([1, 2]);
  });
});
