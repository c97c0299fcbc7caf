import { unhandledRxErrors } from '../session/support/fail-fast';
import { EmitAckStage } from '../../../src/pipeline/stages/emit-ack.stage';
import type { RemoteName } from '../../../src/protocol/remote-name';
import type { SessionEvent } from '../../../src/session/session-event';
import { fakeSession } from '../session/support/fake-session';
import { runStage } from './support/run-stage';

/**
 * An event that gives no reply (a 'shutdown' on its way out, a name or data a stage before did not
 * take) ends here as nothing: an empty list, not an undefined one. flatMapSync iterates what the
 * switch gives back outside its try, so an undefined result is an error RxJS can only report from a
 * timer (unhandled: outside the tests, an uncaught exception). It is reported a macrotask later, so
 * the test waits one before fail-fast's afterEach looks.
 */
describe('EmitAckStage: events without a reply', () => {
  test('end here as nothing, with no error lost on the way, and the stream goes on', async () => {
    const ctx = fakeSession();
    const transfer = ctx.beginTransfer({ verb: 'STAT' });
    transfer.name = 'f' as RemoteName;
    const { input, out, state } = runStage(new EmitAckStage(), ctx);
    const dropped: SessionEvent[] = [{ type: 'shutdown' }, { type: 'named', transfer, raw: Buffer.from('f') }, { type: 'data', transfer, bytes: Buffer.from('x') }];
    for (const event of dropped) input.next(event);
    const bye: SessionEvent = { type: 'reply', reply: { kind: 'bye' } };
    input.next(bye);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandledRxErrors).toEqual([]);
    expect(out).toEqual([bye]);
    expect(state.error).toBeUndefined();
  });
});
