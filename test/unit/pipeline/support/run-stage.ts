import { Subject } from 'rxjs';
import type { Stage } from '../../../../src/pipeline/stage';
import type { SessionContext } from '../../../../src/session/session-context';
import type { SessionEvent } from '../../../../src/session/session-event';
import type { User } from '../../../../src/auth/user';
import type { Command } from '../../../../src/protocol/command';
import type { Transfer } from '../../../../src/session/transfer';

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

/**
 * Requests as the stages after parse-command see them: a transfer opened for `command`, its user
 * set, and its name line (two for RENAME and LIST AFTER) pushed in as a 'named' event.
 */
export const namedRequests = (ctx: SessionContext, run: ReturnType<typeof runStage>) => {
  const request = (command: Command, raw: string, user: User, raw2?: string): Transfer => {
    const transfer = ctx.beginTransfer(command);
    transfer.user = user;
    run.input.next({ type: 'named', transfer, raw: Buffer.from(raw), ...(raw2 !== undefined && { raw2: Buffer.from(raw2) }) });
    return transfer;
  };
  /** The outcome events of the request's pending event, or the events that came out for it. */
  const outcomeOf = async (transfer: Transfer): Promise<readonly SessionEvent[]> => {
    await flush();
    const mine = run.out.filter((event) => 'transfer' in event && event.transfer === transfer);
    if (mine.length === 1 && mine[0]!.type === 'pending') return mine[0]!.outcome;
    return mine;
  };
  return { request, outcomeOf };
};
