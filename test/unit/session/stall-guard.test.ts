import './support/fail-fast';
import { PassThrough } from 'node:stream';
import { Subject } from 'rxjs';
import { RxferError } from '../../../src/errors/rxfer-error';
import { FlowControl } from '../../../src/session/flow-control';
import { guardInputStalls, watchOutputStalls } from '../../../src/session/stall-guard';

// 10 bytes/s over a 2 s window: a window needs 20 bytes.
const limits = { stallTimeoutMs: 2000, minBytesPerSecond: 10 };
const bytes = (n: number) => Buffer.alloc(n);

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const guarded = (midFrame = () => true) => {
  const flow = new FlowControl(new PassThrough());
  const input = new Subject<Buffer>();
  const seen: Buffer[] = [];
  const state: { error?: RxferError; completed: boolean } = { completed: false };
  const subscription = input.pipe(guardInputStalls(limits, midFrame, flow)).subscribe({
    next: (chunk) => seen.push(chunk),
    error: (err: RxferError) => (state.error = err),
    complete: () => (state.completed = true),
  });
  return { flow, input, seen, state, subscription };
};

describe('guardInputStalls', () => {
  test('chunks, completion and errors pass through', () => {
    const { input, seen, state } = guarded();
    const chunk = bytes(3);
    input.next(chunk);
    expect(seen).toEqual([chunk]);
    input.complete();
    expect(state.completed).toBe(true);
    const other = guarded();
    const boom = new Error('reset');
    other.input.error(boom);
    expect(other.state.error).toBe(boom);
  });

  test('mid-frame, fewer than the minimum bytes in a window is a stall, with the real numbers', () => {
    const { input, state } = guarded();
    input.next(bytes(19));
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeInstanceOf(RxferError);
    expect(state.error!.code).toBe('STALLED');
    expect(state.error!.message).toBe('an unfinished request moved 19 bytes in 2000 ms, below the minimum of 10 bytes/s; closing');
    expect(state.error!.detail).toEqual({ moved: 19, windowMs: 2000 });
  });

  test('the minimum in a window is enough', () => {
    const { input, state } = guarded();
    input.next(bytes(12));
    input.next(bytes(8));
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeUndefined();
  });

  test('the check comes once a window, not before', () => {
    const { state } = guarded();
    jest.advanceTimersByTime(1999);
    expect(state.error).toBeUndefined();
    jest.advanceTimersByTime(1);
    expect(state.error?.code).toBe('STALLED');
  });

  test('each window is counted on its own', () => {
    const { input, state } = guarded();
    input.next(bytes(40));
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeUndefined();
    input.next(bytes(5));
    jest.advanceTimersByTime(2000);
    expect(state.error?.detail).toEqual({ moved: 5, windowMs: 2000 });
  });

  test('between frames only the idle timeout applies', () => {
    let mid = false;
    const { state } = guarded(() => mid);
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeUndefined();
    mid = true;
    jest.advanceTimersByTime(2000);
    expect(state.error?.code).toBe('STALLED');
  });

  test('a window in which we held the socket does not count', () => {
    const { flow, state } = guarded();
    const release = flow.hold();
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeUndefined();
    release();
    // Released at the window's start: the peer had this whole window.
    jest.advanceTimersByTime(2000);
    expect(state.error?.code).toBe('STALLED');
  });

  test('a hold taken and released within a window excuses that window only', () => {
    const { flow, state } = guarded();
    flow.hold()();
    jest.advanceTimersByTime(2000);
    expect(state.error).toBeUndefined();
    jest.advanceTimersByTime(2000);
    expect(state.error?.code).toBe('STALLED');
  });

  test('unsubscribing stops the timer and lets go of the input', () => {
    const { input, subscription } = guarded();
    expect(jest.getTimerCount()).toBe(1);
    subscription.unsubscribe();
    expect(jest.getTimerCount()).toBe(0);
    expect(input.observed).toBe(false);
  });
});

describe('watchOutputStalls', () => {
  test('fewer than the minimum bytes taken by the peer in a window is a stall, with the real numbers', () => {
    let written = 100;
    const stalls: RxferError[] = [];
    watchOutputStalls(limits, () => written, (err) => stalls.push(err));
    written += 19;
    jest.advanceTimersByTime(1999);
    expect(stalls).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]!.code).toBe('STALLED');
    expect(stalls[0]!.message).toBe('a download moved 19 bytes in 2000 ms, below the minimum of 10 bytes/s; closing');
    expect(stalls[0]!.detail).toEqual({ moved: 19, windowMs: 2000 });
  });

  test('the minimum is enough, and each window counts from where the last ended', () => {
    let written = 0;
    const stalls: RxferError[] = [];
    watchOutputStalls(limits, () => written, (err) => stalls.push(err));
    written = 20;
    jest.advanceTimersByTime(2000);
    expect(stalls).toEqual([]);
    written = 41;
    jest.advanceTimersByTime(2000);
    expect(stalls).toEqual([]);
    written = 45;
    jest.advanceTimersByTime(2000);
    expect(stalls.map((err) => err.detail)).toEqual([{ moved: 4, windowMs: 2000 }]);
  });

  test('the returned function stops watching', () => {
    const stalls: RxferError[] = [];
    const stop = watchOutputStalls(limits, () => 0, (err) => stalls.push(err));
    stop();
    jest.advanceTimersByTime(10_000);
    expect(stalls).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('stall timers never keep the process alive', () => {
  test('both timers are unref’d', () => {
    jest.useRealTimers();
    const setIntervalSpy = jest.spyOn(global, 'setInterval');
    try {
      const input = new Subject<Buffer>();
      const subscription = input.pipe(guardInputStalls(limits, () => true, new FlowControl(new PassThrough()))).subscribe({ error: () => undefined });
      const stop = watchOutputStalls(limits, () => 0, () => undefined);
      const timers = setIntervalSpy.mock.results.map((result) => result.value as NodeJS.Timeout);
      expect(timers).toHaveLength(2);
      expect(timers.map((timer) => timer.hasRef())).toEqual([false, false]);
      subscription.unsubscribe();
      stop();
    } finally {
      setIntervalSpy.mockRestore();
    }
  });
});
