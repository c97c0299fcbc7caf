import type { Writable } from 'node:stream';

/** Bytes waiting to be written at which a lone transfer is held: two batches of 2 MiB, one being written. */
export const WRITE_WINDOW_HIGH_BYTES = 4 * 1024 * 1024;

/**
 * What the windows of one process may let wait together. Many transfers at once share it (16 at once
 * get 1 MiB each, as before double-buffering): the thread pool is then busy with all of them anyway,
 * and 4 MiB each had raised the peak of 16 concurrent 256 MiB uploads from ≈ 150 to ≈ 250 MiB.
 */
export const WRITE_WINDOWS_TOTAL_BYTES = 16 * 1024 * 1024;
const WRITE_WINDOW_MIN_BYTES = 1024 * 1024;

/** Windows not yet released (their feeder still writing, their sink neither finished nor closed), in this process. */
let openWindows = 0;

/** Windows still sharing the process's total (a gauge for metrics and tests). */
export const openWriteWindows = (): number => openWindows;

/** The high mark of each window while `open` windows share the process's total. */
export const sharedHighMark = (open: number): number =>
  Math.max(WRITE_WINDOW_MIN_BYTES, Math.min(WRITE_WINDOW_HIGH_BYTES, Math.floor(WRITE_WINDOWS_TOTAL_BYTES / Math.max(1, open))));

/**
 * Backpressure for a file written from a socket, double-buffered. Node's `drain` comes only once a
 * stream's buffer is empty, so holding the socket from a full buffer until `drain` makes the writer
 * and the socket take turns: while the thread pool writes one batch, the main thread (receiving and
 * hashing the next) sits idle. Here the feeder is held at a high mark of buffered bytes and let go as
 * soon as no more than half of it is left, i.e. when the batch being written completes while the
 * next is already queued. Measured on 1 GiB to tmpfs: bench/findings.md ("Double-buffered writes").
 * The high mark is 4 MiB for a lone transfer and shrinks as more share the process (sharedHighMark),
 * unless the caller fixes it.
 */
export class WriteWindow {
  private waiting: (() => void)[] = [];
  private open = true;

  constructor(
    private readonly sink: Writable,
    private readonly fixedHigh?: number,
  ) {
    openWindows++;
    // A sink that fails or closes takes no more: whoever waits for room must not wait forever.
    sink.once('error', this.done);
    sink.once('close', this.done);
    sink.once('finish', this.done);
  }

  private get high(): number {
    return this.fixedHigh ?? sharedHighMark(openWindows);
  }

  /** Queues `chunk`; false when the feeder should stop until `onRoom` calls back. */
  write(chunk: Buffer): boolean {
    this.sink.write(chunk, this.afterWrite);
    return this.sink.writableLength < this.high;
  }

  /** Calls `resume` once no more than half the high mark waits (at once if that is already so). */
  onRoom(resume: () => void): void {
    if (this.hasRoom()) resume();
    else this.waiting.push(resume);
  }

  private hasRoom(): boolean {
    return this.sink.writableLength <= this.high / 2 || this.sink.destroyed;
  }

  private readonly afterWrite = (): void => {
    if (this.waiting.length > 0 && this.hasRoom()) this.wake();
  };

  /**
   * The feeder is done with this window (all its data was written to the sink, or it gave up): its
   * share of the total goes back to the others. Idempotent; the sink finishing or closing does it too.
   */
  release(): void {
    if (!this.open) return;
    this.open = false;
    openWindows--;
  }

  private readonly done = (): void => {
    this.release();
    this.wake();
  };

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  }
}
