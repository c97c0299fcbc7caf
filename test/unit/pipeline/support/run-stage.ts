import { Subject } from 'rxjs';
import type { Stage } from '../../../../src/pipeline/stage';
import type { SessionContext } from '../../../../src/session/session-context';
import type { SessionEvent } from '../../../../src/session/session-event';

/** A stage subscribed over a Subject: the test pushes events in and reads what came out. */
export const runStage = (stage: Stage, ctx: SessionContext) => {
  const input = new Subject<SessionEvent>();
  const out: SessionEvent[] = [];
  const state: { error?: unknown; completed: boolean } = { completed: false };
  const subscription = stage.apply(input, ctx).subscribe({
    next: (event) => out.push(event),
    error: (err) => (state.error = err),
    complete: () => (state.completed = true),
  });
  return { input, out, state, subscription };
};

/** Lets promise callbacks run (no timers). */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};
