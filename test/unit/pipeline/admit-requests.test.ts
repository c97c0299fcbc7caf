import '../session/support/fail-fast';
import { AdmitRequestsStage } from '../../../src/pipeline/stages/admit-requests.stage';
import type { SessionEvent } from '../../../src/session/session-event';
import { fakeSession } from '../session/support/fake-session';
import { flush, runStage } from './support/run-stage';

describe('AdmitRequestsStage', () => {
  const setup = () => {
    const ctx = fakeSession();
    return { ctx, ...runStage(new AdmitRequestsStage(), ctx) };
  };

  test('a request passes at once while the budget has room', () => {
    const { input, out } = setup();
    const stat: SessionEvent = { type: 'command', command: { verb: 'STAT' } };
    input.next(stat);
    expect(out).toEqual([stat]);
  });

  test('a request waits while the budget is full, with the socket held, and everything behind it waits too', async () => {
    const { ctx, input, out } = setup();
    const first = ctx.beginTransfer({ verb: 'LIST' }); // the only LIST allowed at a time
    const list: SessionEvent = { type: 'command', command: { verb: 'LIST' } };
    const after: SessionEvent = { type: 'name', raw: Buffer.from('x') };
    input.next(list);
    input.next(after);
    await flush();
    expect(out).toEqual([]);
    expect(ctx.flow.paused).toBe(true);
    ctx.endTransfer(first);
    await flush();
    expect(out).toEqual([list, after]);
    expect(ctx.flow.paused).toBe(false);
  });

  test.each<SessionEvent>([
    { type: 'command', command: { verb: 'QUIT' } },
    { type: 'command', command: { verb: 'AUTH', token: 't' } },
    { type: 'command', command: { verb: 'HASH', algorithm: 'sha256' } },
    { type: 'name', raw: Buffer.from('x') },
    { type: 'shutdown' },
  ])('%j takes no budget: it passes even when the budget is full', (event) => {
    const { ctx, input, out } = setup();
    ctx.beginTransfer({ verb: 'LIST' });
    for (let i = 0; i < 63; i++) ctx.beginTransfer({ verb: 'STAT' });
    input.next(event);
    expect(out).toEqual([event]);
  });
});
