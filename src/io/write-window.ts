import type { Writable } from 'node:stream';
import { transientTransferStarted } from './transient-buffers';

/** Bytes waiting to be written at which one transfer is held: two batches of 2 MiB, one being written. */
export const WRITE_WINDOW_HIGH_BYTES = 4 * 1024 * 1024;

/**
 * What all the windows of one process may let wait together, counted in bytes handed to their sinks
 * and not yet written. A lone transfer uses 4 MiB of it; 16 at once get ≈ 1 MiB each (4 MiB each had
 * raised the peak of 16 concurrent 256 MiB uploads from ≈ 150 to ≈ 250 MiB); uploads pipelined on one
 * connection count with the data of those before them still being written.
 */
export const WRITE_WINDOWS_TOTAL_BYTES = 16 * 1024 * 1024;

/** Bytes handed to sinks through windows and not yet written, in this process. */
let waitingBytes = 0;
/** Windows whose feeder still writes (not released, sink neither finished nor closed). */
let openWindows = 0;

/** Windows still open (a gauge for metrics and tests). */
export const openWriteWindows = (): number => openWindows;

/** Bytes waiting to be written through all windows of this process (a gauge for metrics and tests). */
export const bytesWaitingToBeWritten = (): number => waitingBytes;

/**
 * Backpressure for a file written from a socket, double-buffered. Node's `drain` comes only once a
 * stream's buffer is empty, so holding the socket from a full buffer until `drain` makes the writer
 * and the socket take turns: while the thread pool writes one batch, the main thread (receiving and
 * hashing the next) sits idle. Here the feeder is held at a high mark of buffered bytes and let go as
 * soon as no more than half of it is left, i.e. when the batch being written completes while the
 * next is already queued. Measured on 1 GiB to tmpfs: bench/findings.md ("Double-buffered writes").
 * It is also held while the process's windows together hold WRITE_WINDOWS_TOTAL_BYTES, and let go
 * once half a window of that total is free again.
 */
export class WriteWindow {
  /** Windows holding a feeder: room made by any window (its writes, its end) may let them go. */
  private static readonly holding = new Set<WriteWindow>();

  /** Room was made somewhere: every holding window that has room now lets its feeder go. */
  private static wakeHolding(): void {
    for (const window of [...WriteWindow.holding]) if (window.hasRoom()) window.wake();
  }

  private waiting: (() => void)[] = [];
  private open = true;
  /** This window's part of `waitingBytes`: its sink's buffered bytes when last looked at. */
  private counted = 0;
  /** Ends this window's place among the transfers that space out buffer collections. */
  private readonly stopMoving = transientTransferStarted();

  constructor(
    private readonly sink: Writable,
    private readonly high = WRITE_WINDOW_HIGH_BYTES,
  ) {
    openWindows++;
    // A sink that fails or closes takes no more: whoever waits for room must not wait forever.
    sink.once('error', this.done);
    sink.once('close', this.done);
    sink.once('finish', this.done);
  }

  /** Queues `chunk`; false when the feeder should stop until `onRoom` calls back. */
  write(chunk: Buffer): boolean {
    this.sink.write(chunk, this.afterWrite);
    this.recount();
    return this.sink.writableLength < this.high && waitingBytes < WRITE_WINDOWS_TOTAL_BYTES;
  }

  /** Calls `resume` once there is room again (at once if there is already). */
  onRoom(resume: () => void): void {
    if (this.hasRoom()) return resume();
    this.waiting.push(resume);
    WriteWindow.holding.add(this);
  }

  private hasRoom(): boolean {
    if (this.sink.destroyed || this.sink.writableFinished) return true;
    return this.sink.writableLength <= this.high / 2 && waitingBytes <= WRITE_WINDOWS_TOTAL_BYTES - this.high / 2;
  }

  /** Brings `waitingBytes` up to date with this sink (none once it finished or closed). */
  private recount(): void {
    const now = this.sink.destroyed || this.sink.writableFinished ? 0 : this.sink.writableLength;
    waitingBytes += now - this.counted;
    this.counted = now;
  }

  private readonly afterWrite = (): void => {
    this.recount();
    if (WriteWindow.holding.size > 0) WriteWindow.wakeHolding();
  };

  /**
   * The feeder is done with this window (all its data went to the sink, or it gave up). Its bytes
   * still count until they are written. Idempotent; the sink finishing or closing does it too.
   */
  release(): void {
    if (!this.open) return;
    this.open = false;
    openWindows--;
    this.stopMoving();
  }

  private readonly done = (): void => {
    this.release();
    this.recount();
    this.wake();
    WriteWindow.wakeHolding();
  };

  /** Lets this window's feeders go (room, or a sink that takes no more). */
  private wake(): void {
    WriteWindow.holding.delete(this);
    const waiting = this.waiting;
    this.waiting = [];
    for (const resume of waiting) resume();
  }
}
