import { Observable, OperatorFunction } from 'rxjs';

/**
 * mergeMap for synchronous one-to-many mappings (a value to zero or more values). RxJS's mergeMap
 * subscribes to an inner observable per value; on the data path that is a subscription per 64 KiB
 * chunk, so the stages use this instead.
 */
export const flatMapSync =
  <T, R>(project: (value: T) => readonly R[]): OperatorFunction<T, R> =>
  (source) =>
    new Observable<R>((subscriber) =>
      source.subscribe({
        next: (value) => {
          let results: readonly R[];
          try {
            results = project(value);
          } catch (err) {
            // As RxJS's own operators do: a throwing project function becomes an error notification.
            subscriber.error(err);
            return;
          }
          for (const result of results) subscriber.next(result);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      }),
    );
