import { Observable, OperatorFunction } from 'rxjs';
import { FlowControl } from '../session/flow-control';

/**
 * concatMap for stages that sometimes await (a storage call) and mostly don't (a data chunk).
 * Synchronous results are emitted on the spot, with no inner subscription: this runs for every
 * 64 KiB chunk of every file, and RxJS's concatMap costs a subscription per value. While a promise
 * is pending the socket is paused, so the only values that can queue behind it are those already
 * decoded from the chunk in hand: the queue stays bounded by one socket read, not by the file.
 */
export const concatAsync =
  <T, R>(flow: FlowControl, handle: (value: T) => readonly R[] | Promise<readonly R[]>): OperatorFunction<T, R> =>
  (source) =>
    new Observable<R>((subscriber) => {
      const queue: T[] = [];
      let head = 0;
      let waiting = false;
      let sourceDone = false;

      const emitAll = (values: readonly R[]) => {
        for (const value of values) subscriber.next(value);
      };
      const run = () => {
        while (!waiting && head < queue.length && !subscriber.closed) {
          const value = queue[head]!;
          queue[head++] = undefined as T;
          let result: readonly R[] | Promise<readonly R[]>;
          try {
            result = handle(value);
          } catch (err) {
            // A bug in one stage ends this connection (as INTERNAL), never the process.
            subscriber.error(err);
            return;
          }
          if (result instanceof Promise) {
            waiting = true;
            const release = flow.hold();
            result.then(
              (values) => {
                release();
                waiting = false;
                emitAll(values);
                run();
              },
              (err: unknown) => {
                release();
                subscriber.error(err);
              },
            );
          } else {
            emitAll(result);
          }
        }
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (sourceDone && !waiting && queue.length === 0) subscriber.complete();
      };

      const subscription = source.subscribe({
        next: (value) => {
          queue.push(value);
          if (!waiting) run();
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          if (!waiting) run();
        },
      });
      return () => subscription.unsubscribe();
    });
