import '../session/support/fail-fast';
import { Observable, map, of, toArray, firstValueFrom } from 'rxjs';
import { composeStages } from '../../../src/pipeline/compose-stages';
import type { Stage } from '../../../src/pipeline/stage';
import type { SessionContext } from '../../../src/session/session-context';
import type { SessionEvent } from '../../../src/session/session-event';

/** A stage that appends its name to every login token, and records the context it got. */
const tagging = (name: string, seen: unknown[]): Stage => ({
  name,
  apply: (event$: Observable<SessionEvent>, ctx: SessionContext) => {
    seen.push(ctx);
    return event$.pipe(map((event) => (event.type === 'login' ? { ...event, token: `${event.token}>${name}` } : event)));
  },
});

describe('composeStages', () => {
  test('folds the stages over the stream in their order, each given the session', async () => {
    const seen: unknown[] = [];
    const ctx = { id: 1 } as unknown as SessionContext;
    const out = await firstValueFrom(of<SessionEvent>({ type: 'login', token: 't' }).pipe(composeStages([tagging('a', seen), tagging('b', seen), tagging('c', seen)], ctx), toArray()));
    expect(out).toEqual([{ type: 'login', token: 't>a>b>c' }]);
    expect(seen).toEqual([ctx, ctx, ctx]);
  });

  test('no stages: the stream unchanged', async () => {
    const event: SessionEvent = { type: 'shutdown' };
    expect(await firstValueFrom(of(event).pipe(composeStages([], {} as SessionContext), toArray()))).toEqual([event]);
  });
});
