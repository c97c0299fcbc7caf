import '../session/support/fail-fast';
import { createHash } from 'node:crypto';
import { AccumulateDataStage } from '../../../src/pipeline/stages/accumulate-data.stage';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { SessionEvent } from '../../../src/session/session-event';
import { fakeSession, recordingObserver } from '../session/support/fake-session';
import { runStage } from './support/run-stage';

describe('AccumulateDataStage', () => {
  const setup = () => {
    const { observer, calls } = recordingObserver();
    const ctx = fakeSession({ observer });
    const run = runStage(new AccumulateDataStage(), ctx);
    const transfer = ctx.beginTransfer({ verb: 'UPLOAD', size: 6 });
    return { ...run, ctx, calls, transfer };
  };

  test('counts and hashes each chunk in bytes, tells the observer, and passes it on', () => {
    const { input, out, calls, transfer } = setup();
    const first: SessionEvent = { type: 'data', transfer, bytes: Buffer.from('ab') };
    const second: SessionEvent = { type: 'data', transfer, bytes: Buffer.from('é€', 'utf8') }; // 2 characters, 5 bytes
    input.next(first);
    input.next(second);
    expect(out).toEqual([first, second]);
    expect(transfer.received).toBe(7);
    expect(transfer.hash!.hex()).toBe(createHash('sha256').update('abé€').digest('hex'));
    expect(calls).toEqual([
      ['dataReceived', transfer, 2],
      ['dataReceived', transfer, 5],
    ]);
  });

  test("a refused request's chunks are dropped, uncounted; its other events pass", () => {
    const { input, out, calls, transfer } = setup();
    transfer.refusal = new RxferError('FORBIDDEN', 'no');
    input.next({ type: 'data', transfer, bytes: Buffer.from('abc') });
    const end: SessionEvent = { type: 'dataEnd', transfer, trailer: { kind: 'end' } as never };
    input.next(end);
    expect(out).toEqual([end]);
    expect(transfer.received).toBe(0);
    expect(calls).toEqual([]);
  });

  test('events other than data pass untouched', () => {
    const { input, out, calls, transfer } = setup();
    const events: SessionEvent[] = [{ type: 'shutdown' }, { type: 'accepted', transfer }];
    for (const event of events) input.next(event);
    expect(out).toEqual(events);
    expect(transfer.received).toBe(0);
    expect(calls).toEqual([]);
  });
});
