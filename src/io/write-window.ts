import type { Writable } from 'node:stream';

/** Bytes waiting to be written at which the feeder is held: two batches of 2 MiB, one being written. */
export const WRITE_WINDOW_HIGH_BYTES = 4 * 1024 * 1024;

/**
 * Backpressure for a file written from a socket, double-buffered. Node's `drain` comes only once a
 * stream's buffer is empty, so holding the socket from a full buffer until `drain` makes the writer
 * and the socket take turns: while the thread pool writes one batch, the main thread (receiving and
 * hashing the next) sits idle. Here the feeder is held at `high` buffered bytes and let go as soon as
 * no more than `low` are left, i.e. when the batch being written completes while the next is already
 * queued. Measured on 1 GiB to tmpfs, SHA-256: bench/findings.md ("double-buffered writes").
 */
export class WriteWindow {
  private waiting: (() => void)[] = [];

  constructor(
    private readonly sink: Writable,
    private readonly high = WRITE_WINDOW_HIGH_BYTES,
    private readonly low = high / 2,
  ) {
    // A sink that fails or closes takes no more: whoever waits for room must not wait forever.
    sink.once('error', this.wake);
    sink.once('close', this.wake);
  }

  /** Queues `chunk`; false when the feeder should stop until `onRoom` calls back. */
  write(chunk: Buffer): boolean {
    this.sink.write(chunk, this.afterWrite);
    return this.sink.writableLength < this.high;
  }

  /** Calls `resume` once no more than `low` bytes wait (at once if that is already so). */
  onRoom(resume: () => void): void {
    if (this.sink.writableLength <= this.low || this.sink.destroyed) resume();
    else this.waiting.push(resume);
  }

  private readonly afterWrite = (): void => {
    if (this.waiting.length > 0 && (this.sink.writableLength <= this.low || this.sink.destroyed)) this.wake();
  };

  private readonly wake = (): void => {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  };
}
