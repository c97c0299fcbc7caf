import '../session/support/fail-fast';
import { PassThrough } from 'node:stream';
import { Subject } from 'rxjs';
import { awaitInOrder } from '../../../src/pipeline/await-in-order';
import { FlowControl } from '../../../src/session/flow-control';
import type { SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';

const transfer = {} as Transfer;
const shutdown = (): SessionEvent => ({ type: 'shutdown' });
const login = (token: string): SessionEvent => ({ type: 'login', token });

/** A `pending` event whose outcome the test settles. */
const pending = () => {
  let settle!: (events: readonly SessionEvent[]) => void;
  let fail!: (err: unknown) => void;
  const outcome = new Promise<readonly SessionEvent[]>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const event: SessionEvent = { type: 'pending', transfer, outcome };
  return { event, settle, fail };
};

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const setup = (maxQueued?: number) => {
  const flow = new FlowControl(new PassThrough());
  const input = new Subject<SessionEvent>();
  const seen: SessionEvent[] = [];
  let error: unknown;
  let completed = false;
  const subscription = input.pipe(maxQueued === undefined ? awaitInOrder(flow) : awaitInOrder(flow, maxQueued)).subscribe({
    next: (event) => seen.push(event),
    error: (err) => (error = err),
    complete: () => (completed = true),
  });
  return { flow, input, seen, subscription, error: () => error, completed: () => completed };
};

describe('awaitInOrder', () => {
  test('events that are not pending pass through at once', () => {
    const { input, seen } = setup();
    const a = login('a');
    input.next(a);
    expect(seen).toEqual([a]);
  });

  test('a pending event is replaced by its outcome events', async () => {
    const { input, seen } = setup();
    const p = pending();
    input.next(p.event);
    expect(seen).toEqual([]);
    p.settle([login('x'), login('y')]);
    await flush();
    expect(seen).toEqual([login('x'), login('y')]);
  });

  test('outcomes keep request order when they settle out of order, and later events wait behind them', async () => {
    const { input, seen } = setup();
    const first = pending();
    const second = pending();
    input.next(first.event);
    input.next(second.event);
    input.next(login('after'));
    second.settle([login('2')]);
    await flush();
    expect(seen).toEqual([]);
    first.settle([login('1')]);
    await flush();
    expect(seen).toEqual([login('1'), login('2'), login('after')]);
  });

  test('an outcome that fails ends the stream with its error', async () => {
    const { input, error } = setup();
    const p = pending();
    input.next(p.event);
    const boom = new Error('boom');
    p.fail(boom);
    await flush();
    expect(error()).toBe(boom);
  });

  test('completes after the last outcome', async () => {
    const { input, seen, completed } = setup();
    const p = pending();
    input.next(p.event);
    input.complete();
    expect(completed()).toBe(false);
    p.settle([shutdown()]);
    await flush();
    expect(seen).toEqual([shutdown()]);
    expect(completed()).toBe(true);
  });

  test('beyond maxQueued events waiting, the socket is held until the queue is down to half', async () => {
    const { input, flow } = setup(4);
    const blocker = pending();
    const behind = [pending(), pending(), pending()];
    input.next(blocker.event);
    for (const p of behind) input.next(p.event);
    expect(flow.paused).toBe(false); // 4 queued: not beyond 4
    const fifth = pending();
    input.next(fifth.event);
    expect(flow.paused).toBe(true);
    input.next(login('6th'));
    input.next(login('7th'));
    expect(flow.holdsTaken).toBe(1); // one hold however far beyond
    blocker.settle([]);
    behind[0]!.settle([]);
    behind[1]!.settle([]);
    await flush();
    // 4 left (behind[2], fifth, 6th, 7th): still more than half of 4.
    expect(flow.paused).toBe(true);
    behind[2]!.settle([]);
    await flush();
    // 3 left: fifth, 6th, 7th.
    expect(flow.paused).toBe(true);
    fifth.settle([]);
    await flush();
    // fifth, 6th and 7th done: 0 left, released on the way (at 2).
    expect(flow.paused).toBe(false);
  });

  test('released exactly when the queue reaches half of maxQueued', async () => {
    const { input, flow } = setup(4);
    const waits = [pending(), pending(), pending(), pending(), pending()];
    for (const p of waits) input.next(p.event);
    expect(flow.paused).toBe(true);
    waits[0]!.settle([]);
    waits[1]!.settle([]);
    await flush();
    expect(flow.paused).toBe(true); // 3 queued
    waits[2]!.settle([]);
    await flush();
    expect(flow.paused).toBe(false); // 2 queued = 4 / 2
  });

  test('after a release, a new overflow holds again', async () => {
    const { input, flow } = setup(2);
    const first = [pending(), pending(), pending()];
    for (const p of first) input.next(p.event);
    expect(flow.paused).toBe(true);
    for (const p of first) p.settle([]);
    await flush();
    expect(flow.paused).toBe(false);
    const second = [pending(), pending(), pending()];
    for (const p of second) input.next(p.event);
    expect(flow.paused).toBe(true);
    expect(flow.holdsTaken).toBe(2);
  });

  test('the default allows 64 queued events and holds at the 65th', () => {
    const { input, flow } = setup();
    const blocker = pending();
    input.next(blocker.event);
    for (let i = 1; i < 64; i++) input.next(login(String(i)));
    expect(flow.paused).toBe(false);
    input.next(login('65'));
    expect(flow.paused).toBe(true);
  });

  test('events passing through one at a time never hold', () => {
    const { input, flow } = setup(1);
    for (let i = 0; i < 5; i++) input.next(login(String(i)));
    expect(flow.holdsTaken).toBe(0);
  });
});
