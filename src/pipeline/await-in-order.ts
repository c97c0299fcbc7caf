import { MonoTypeOperatorFunction, concatMap, defer, finalize, from, mergeAll, of, tap } from 'rxjs';
import { FlowControl } from '../session/flow-control';
import { SessionEvent } from '../session/session-event';

/**
 * Replaces each `committing` event by its outcome, keeping request order: replies must come in the
 * order of the requests even when commits finish out of order. Events queue behind an unfinished
 * commit; past `maxQueued` the socket is paused until the queue is down to half, so the queue (and
 * the open files of downloads waiting in it) stays bounded.
 */
export const awaitInOrder =
  (flow: FlowControl, maxQueued = 64): MonoTypeOperatorFunction<SessionEvent> =>
  (event$) =>
    defer(() => {
      let queued = 0;
      let release: (() => void) | undefined;
      const dequeued = () => {
        queued--;
        if (release && queued <= maxQueued / 2) {
          release();
          release = undefined;
        }
      };
      return event$.pipe(
        // Counted on arrival: concatMap calls its project function only when an event's turn comes.
        tap(() => {
          if (++queued > maxQueued && !release) release = flow.hold();
        }),
        concatMap((event) => {
          const outcome$ = event.type === 'pending' ? from(event.outcome).pipe(mergeAll()) : of(event);
          return outcome$.pipe(finalize(dequeued));
        }),
      );
    });
