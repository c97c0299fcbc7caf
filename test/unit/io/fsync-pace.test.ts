import { FIRST_PROBE, FsyncPace, LAST_PROBE, SLOW_FSYNC_US, SLOW_IN_A_ROW } from '../../../src/io/fsync-pace';

/**
 * FsyncPace (src/io/fsync-pace.js), the rule by itself: which fsyncs are synchronous, given how long
 * the synchronous ones took. QuickFsync's test (quick-fsync.test.ts) runs it on real files.
 */
describe('FsyncPace', () => {
  const QUICK = 1;
  const SLOW = SLOW_FSYNC_US;

  /** Runs `count` fsyncs, the synchronous ones taking `us`; the path of each ('sync' or 'pool'). */
  const run = (pace: FsyncPace, count: number, us: number): string[] =>
    Array.from({ length: count }, () => {
      if (!pace.nextIsSync()) return 'pool';
      pace.tookSync(us);
      return 'sync';
    });

  test('quick fsyncs are synchronous, and so are slow ones until SLOW_IN_A_ROW of them in a row', () => {
    const pace = new FsyncPace();
    expect(run(pace, 5, QUICK)).toEqual(Array(5).fill('sync'));
    // Slow ones with a quick one between: a thread preempted now and then, not a slow device.
    for (let i = 0; i < 4; i++) {
      expect(run(pace, SLOW_IN_A_ROW - 1, SLOW)).toEqual(Array(SLOW_IN_A_ROW - 1).fill('sync'));
      expect(run(pace, 1, SLOW - 1)).toEqual(['sync']);
    }
    expect(pace.pooled).toBe(false);
    expect(run(pace, SLOW_IN_A_ROW, SLOW)).toEqual(Array(SLOW_IN_A_ROW).fill('sync'));
    expect(pace.pooled).toBe(true);
    expect(run(pace, 3, QUICK)).toEqual(['pool', 'pool', 'pool']);
  });

  test('pooled, every FIRST_PROBE-th fsync is a synchronous probe; a quick probe ends pooling', () => {
    const pace = new FsyncPace();
    run(pace, SLOW_IN_A_ROW, SLOW);
    expect(run(pace, FIRST_PROBE, QUICK)).toEqual([...Array(FIRST_PROBE - 1).fill('pool'), 'sync']);
    expect(pace.pooled).toBe(false);
    expect(run(pace, 4, QUICK)).toEqual(Array(4).fill('sync'));
    // Back to pooling takes SLOW_IN_A_ROW slow ones again, from none.
    run(pace, SLOW_IN_A_ROW - 1, SLOW);
    expect(pace.pooled).toBe(false);
  });

  test('a slow probe doubles the interval, up to LAST_PROBE; a later pooling starts from FIRST_PROBE again', () => {
    const pace = new FsyncPace();
    run(pace, SLOW_IN_A_ROW, SLOW);
    let interval = FIRST_PROBE;
    const seen: number[] = [];
    while (seen.length < 10) {
      const paths = run(pace, interval, SLOW);
      expect(paths).toEqual([...Array(interval - 1).fill('pool'), 'sync']);
      seen.push(interval);
      interval = Math.min(interval * 2, LAST_PROBE);
    }
    expect(seen.slice(0, 3)).toEqual([FIRST_PROBE, FIRST_PROBE * 2, FIRST_PROBE * 4]);
    expect(seen[seen.length - 1]).toBe(LAST_PROBE);
    expect(pace.probeEvery).toBe(LAST_PROBE);
    // The device is quick again: the next probe (up to LAST_PROBE away) ends pooling.
    expect(run(pace, LAST_PROBE, QUICK).filter((path) => path === 'sync')).toEqual(['sync']);
    expect(pace.pooled).toBe(false);
    run(pace, SLOW_IN_A_ROW, SLOW);
    expect(pace.probeEvery).toBe(FIRST_PROBE);
    expect(run(pace, FIRST_PROBE, QUICK)[FIRST_PROBE - 1]).toBe('sync');
  });

  test('timedSync: runs the fsync, returns its error or undefined, and counts its time either way', () => {
    const pace = new FsyncPace();
    expect(pace.timedSync(() => undefined)).toBeUndefined();
    const failure = Object.assign(new Error('EIO'), { code: 'EIO' });
    const slowFailure = () => {
      const until = process.hrtime.bigint() + BigInt(SLOW * 2 * 1000);
      while (process.hrtime.bigint() < until);
      throw failure;
    };
    for (let i = 0; i < SLOW_IN_A_ROW; i++) expect(pace.timedSync(slowFailure)).toBe(failure);
    // Failed slow fsyncs are slow fsyncs: the device is slow whatever it answered.
    expect(pace.pooled).toBe(true);
  });
});
