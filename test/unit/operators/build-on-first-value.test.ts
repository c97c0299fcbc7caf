import { Observable, Subject, map, toArray, firstValueFrom, of, throwError, EMPTY, concat } from 'rxjs';
import { buildOnFirstValue } from '../../../src/operators/build-on-first-value';

/** An operator factory that counts how often it is built and subscribed. */
const counted = () => {
  const counts = { built: 0, subscribed: 0, unsubscribed: 0 };
  const build = () => {
    counts.built++;
    return (source: Observable<number>) =>
      new Observable<string>((subscriber) => {
        counts.subscribed++;
        const inner = source.pipe(map((n) => `v${n}`)).subscribe(subscriber);
        return () => {
          counts.unsubscribed++;
          inner.unsubscribe();
        };
      });
  };
  return { counts, build };
};

describe('buildOnFirstValue', () => {
  test('builds nothing while the source is silent, then the chain once, on the first value', () => {
    const source = new Subject<number>();
    const { counts, build } = counted();
    const seen: string[] = [];
    const subscription = source.pipe(buildOnFirstValue(build)).subscribe((v) => seen.push(v));
    expect(counts).toEqual({ built: 0, subscribed: 0, unsubscribed: 0 });
    source.next(1);
    source.next(2);
    source.next(3);
    expect(seen).toEqual(['v1', 'v2', 'v3']);
    expect(counts.built).toBe(1);
    expect(counts.subscribed).toBe(1);
    subscription.unsubscribe();
    expect(counts.unsubscribed).toBe(1);
    expect(source.observed).toBe(false);
  });

  test('values emitted in one synchronous burst all pass, in order, the first included', async () => {
    const { build } = counted();
    expect(await firstValueFrom(of(1, 2, 3, 4).pipe(buildOnFirstValue(build), toArray()))).toEqual(['v1', 'v2', 'v3', 'v4']);
  });

  test('completion and errors after the first value reach the built chain, and through it the subscriber', async () => {
    const { build } = counted();
    await expect(firstValueFrom(concat(of(1), throwError(() => new Error('late'))).pipe(buildOnFirstValue(build), toArray()))).rejects.toThrow('late');
  });

  test('an empty source completes without building anything; an error before any value passes straight through', async () => {
    const empty = counted();
    expect(await firstValueFrom(EMPTY.pipe(buildOnFirstValue(empty.build), toArray()))).toEqual([]);
    expect(empty.counts.built).toBe(0);
    const failing = counted();
    await expect(firstValueFrom(throwError(() => new Error('early')).pipe(buildOnFirstValue(failing.build)))).rejects.toThrow('early');
    expect(failing.counts.built).toBe(0);
  });

  test('a factory that throws becomes an error notification, and the source is let go', () => {
    const source = new Subject<number>();
    const errors: unknown[] = [];
    source
      .pipe(
        buildOnFirstValue<number, number>(() => {
          throw new Error('bad stage');
        }),
      )
      .subscribe({ error: (err) => errors.push(err) });
    source.next(1);
    expect(errors).toEqual([new Error('bad stage')]);
    expect(source.observed).toBe(false);
  });

  test('unsubscribing before the first value lets the source go', () => {
    const source = new Subject<number>();
    const { counts, build } = counted();
    source.pipe(buildOnFirstValue(build)).subscribe().unsubscribe();
    expect(source.observed).toBe(false);
    expect(counts.built).toBe(0);
  });
});
