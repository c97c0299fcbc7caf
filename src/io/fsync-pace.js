// @ts-check
/**
 * When an fsync is made synchronously and when it goes to the thread pool: the rule shared by the
 * client's downloads (quick-fsync.ts) and the server's small-commit worker (small-commit.worker.js).
 * Plain JavaScript for the same reason as fd-paths.js: the worker loads it from src/ and dist/ alike.
 *
 * Synchronous while fsyncs return in microseconds (tmpfs, a device whose cache acknowledges at
 * once): a thread-pool round trip per fsync then costs more than the fsync. Through the pool once they
 * wait for a device, where fsyncs side by side are merged by the file system.
 *
 * Only a synchronous fsync is timed, because only its time is the device's: a pooled one's includes
 * the wait for its callback behind whatever the event loop was doing, which on a busy client is far
 * above the mark whatever the disk. The first rule timed both into one moving average, so one
 * fsync slowed by the scheduler sent every later one to the pool for good: a `get -r` of 2,000 × 4 KiB
 * on tmpfs made 1,599 of its 2,000 fsyncs through the pool (bench/findings.md, issue 20). Hence:
 * - to the pool only after SLOW_IN_A_ROW slow ones in a row (one preempted fsync is not a disk);
 * - back only when a probe says so: every `probeEvery`-th fsync in pool mode is made synchronously,
 *   and a quick one ends pool mode; a slow one doubles the interval, up to LAST_PROBE, so a slow
 *   disk pays for one synchronous fsync in a thousand.
 */
'use strict';

/** A synchronous fsync at least this long (µs) is slow: tmpfs takes ≈ 1 µs, a journaled disk milliseconds. */
const SLOW_FSYNC_US = 100;
/** Slow synchronous fsyncs in a row that send the next ones to the pool. */
const SLOW_IN_A_ROW = 3;
/** Pooled fsyncs between two probes, at first and at most. */
const FIRST_PROBE = 16;
const LAST_PROBE = 1024;

class FsyncPace {
  constructor() {
    /** Whether fsyncs go to the thread pool (but for probes). */
    this.pooled = false;
    this.slowInARow = 0;
    this.sinceProbe = 0;
    this.probeEvery = FIRST_PROBE;
  }

  /** Whether the next fsync is made synchronously (and its time then given to `tookSync`). */
  nextIsSync() {
    if (!this.pooled) return true;
    if (++this.sinceProbe < this.probeEvery) return false;
    this.sinceProbe = 0;
    return true;
  }

  /**
   * What a synchronous fsync took (µs), failed or not.
   * @param {number} us
   */
  tookSync(us) {
    const slow = us >= SLOW_FSYNC_US;
    if (this.pooled) {
      // A probe.
      if (slow) this.probeEvery = Math.min(this.probeEvery * 2, LAST_PROBE);
      else this.pooled = false;
      return;
    }
    this.slowInARow = slow ? this.slowInARow + 1 : 0;
    if (this.slowInARow < SLOW_IN_A_ROW) return;
    this.pooled = true;
    this.slowInARow = 0;
    this.sinceProbe = 0;
    this.probeEvery = FIRST_PROBE;
  }

  /**
   * Runs `fsync` synchronously, timed, and returns its error (undefined when it succeeded).
   * @param {() => void} fsync
   * @returns {unknown}
   */
  timedSync(fsync) {
    const started = process.hrtime.bigint();
    try {
      fsync();
      return undefined;
    } catch (err) {
      return err ?? new Error('fsync failed');
    } finally {
      this.tookSync(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
}

module.exports = { FsyncPace, SLOW_FSYNC_US, SLOW_IN_A_ROW, FIRST_PROBE, LAST_PROBE };
