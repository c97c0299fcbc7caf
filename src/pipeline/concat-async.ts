import { OperatorFunction, concatMap, finalize, from, mergeMap } from 'rxjs';
import { FlowControl } from '../session/flow-control';

/**
 * concatMap for stages that sometimes await (a storage call) and mostly don't (a data chunk).
 * Synchronous results pass straight on. While a promise is pending the socket is paused, so the
 * only events that can queue behind it are those already decoded from the chunk in hand: concatMap's
 * hidden buffer stays bounded by one socket read instead of absorbing the file.
 */
export const concatAsync = <T, R>(flow: FlowControl, handle: (value: T) => readonly R[] | Promise<readonly R[]>): OperatorFunction<T, R> =>
  concatMap((value: T) => {
    const result = handle(value);
    if (!(result instanceof Promise)) return result;
    const release = flow.hold();
    return from(result).pipe(
      mergeMap((events) => events),
      finalize(release),
    );
  });
