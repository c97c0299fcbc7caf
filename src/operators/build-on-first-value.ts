import { Observable, OperatorFunction, Subject } from 'rxjs';

/**
 * `source.pipe(build())`, but `build()` is called, and its operators subscribed, only when the first
 * value arrives. Until then nothing of the operator chain exists. A connection's pipeline is ~150
 * closures and ~20 subscribers (27 of the 33 KiB an idle connection cost the server, heap
 * snapshots diffed), and a server may hold a thousand connections that have sent nothing yet.
 *
 * The source is subscribed once, at once: values are handed on through a Subject to the chain built
 * on the first one, in order, the first included; an error or completion before any value passes
 * straight through (an empty source gives an empty result, as `build()` of it would for a chain
 * that emits only in answer to input, which is what this is for).
 */
export const buildOnFirstValue =
  <T, R>(build: () => OperatorFunction<T, R>): OperatorFunction<T, R> =>
  (source) =>
    new Observable<R>((subscriber) => {
      let rest: Subject<T> | undefined;
      const upstream = source.subscribe({
        next: (value) => {
          if (rest === undefined) {
            rest = new Subject<T>();
            let chain: OperatorFunction<T, R>;
            try {
              chain = build();
            } catch (err) {
              // As RxJS's own operators do: a throwing factory becomes an error notification.
              subscriber.error(err);
              return;
            }
            // The chain's subscription is added to the outer one, so unsubscribing tears both down.
            subscriber.add(rest.pipe(chain).subscribe(subscriber));
          }
          rest.next(value);
        },
        error: (err: unknown) => (rest ? rest.error(err) : subscriber.error(err)),
        complete: () => (rest ? rest.complete() : subscriber.complete()),
      });
      subscriber.add(upstream);
    });
