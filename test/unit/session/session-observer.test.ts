import './support/fail-fast';
import { NO_OBSERVER, fanOut } from '../../../src/session/session-observer';
import type { SessionContext } from '../../../src/session/session-context';
import type { Transfer } from '../../../src/session/transfer';
import { RxferError } from '../../../src/errors/rxfer-error';
import { recordingObserver } from './support/fake-session';

describe('fanOut', () => {
  test('one observer is used as it is', () => {
    const { observer } = recordingObserver();
    expect(fanOut([observer])).toBe(observer);
  });

  test('several: each call reaches each observer, in order, with its arguments', () => {
    const order: string[] = [];
    const first = recordingObserver();
    const second = recordingObserver();
    const tag = (label: string, obs: ReturnType<typeof recordingObserver>) =>
      Object.fromEntries(Object.entries(obs.observer).map(([key, fn]) => [key, (...args: unknown[]) => (order.push(`${label}.${key}`), (fn as (...a: unknown[]) => void)(...args))])) as unknown as typeof obs.observer;
    const both = fanOut([tag('1', first), tag('2', second)]);
    const ctx = {} as SessionContext;
    const transfer = {} as Transfer;
    const error = new RxferError('STALLED', 'x');
    both.connectionOpened('r');
    both.connectionClosed('r');
    both.dataReceived(transfer, 3);
    both.dataSent(transfer, 4);
    both.replied(ctx, { kind: 'bye' }, transfer);
    both.requestEnded(ctx, transfer, { complete: true });
    both.sessionFailed(ctx, error);
    const expected = [
      ['connectionOpened', 'r'],
      ['connectionClosed', 'r'],
      ['dataReceived', transfer, 3],
      ['dataSent', transfer, 4],
      ['replied', ctx, { kind: 'bye' }, transfer],
      ['requestEnded', ctx, transfer, { complete: true }],
      ['sessionFailed', ctx, error],
    ];
    expect(first.calls).toEqual(expected);
    expect(second.calls).toEqual(expected);
    expect(order.slice(0, 4)).toEqual(['1.connectionOpened', '2.connectionOpened', '1.connectionClosed', '2.connectionClosed']);
  });

  test('none: a no-op observer', () => {
    const none = fanOut([]);
    expect(() => none.connectionOpened('r')).not.toThrow();
  });

  test('NO_OBSERVER does nothing and returns nothing', () => {
    for (const fn of Object.values(NO_OBSERVER)) expect((fn as () => unknown)()).toBeUndefined();
  });
});
