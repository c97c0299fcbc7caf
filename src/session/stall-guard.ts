import { MonoTypeOperatorFunction, Observable } from 'rxjs';
import { RxferError } from '../errors/rxfer-error';
import { FlowControl } from './flow-control';

export interface StallLimits {
  readonly stallTimeoutMs: number;
  readonly minBytesPerSecond: number;
}

const stalled = (limits: StallLimits, what: string, moved: number): RxferError =>
  new RxferError(
    'STALLED',
    `${what} moved ${moved} bytes in ${limits.stallTimeoutMs} ms, below the minimum of ${limits.minBytesPerSecond} bytes/s; closing`,
    { moved, windowMs: limits.stallTimeoutMs },
  );

/**
 * Cuts a peer that starts a frame and then dribbles (slowloris: a half-sent line, or an upload at
 * 1 byte/s). Checked once a window: while a frame is in progress, fewer than the minimum bytes in a
 * window is a stall. Windows in which *we* paused the socket (backpressure, awaiting storage) do not
 * count: the slowness was ours. Between frames only the idle timeout applies.
 */
export const guardInputStalls =
  (limits: StallLimits, midFrame: () => boolean, flow: FlowControl): MonoTypeOperatorFunction<Buffer> =>
  (bytes$) =>
    new Observable<Buffer>((subscriber) => {
      const minBytes = (limits.minBytesPerSecond * limits.stallTimeoutMs) / 1000;
      let moved = 0;
      let holdsAtStart = flow.holdsTaken;
      const timer = setInterval(() => {
        const ourFault = flow.paused || flow.holdsTaken !== holdsAtStart;
        if (!ourFault && midFrame() && moved < minBytes) subscriber.error(stalled(limits, 'an unfinished request', moved));
        moved = 0;
        holdsAtStart = flow.holdsTaken;
      }, limits.stallTimeoutMs);
      timer.unref();
      const subscription = bytes$.subscribe({
        next: (chunk) => {
          moved += chunk.length;
          subscriber.next(chunk);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        clearInterval(timer);
        subscription.unsubscribe();
      };
    });

/**
 * The same rule for a download's data: a peer that stops reading (or reads at a trickle) leaves
 * the socket's buffer full; once the kernel has taken fewer than the minimum bytes in a window, the
 * session is cut instead of holding the file open forever.
 */
export const watchOutputStalls = (limits: StallLimits, bytesWritten: () => number, onStall: (error: RxferError) => void): (() => void) => {
  const minBytes = (limits.minBytesPerSecond * limits.stallTimeoutMs) / 1000;
  let last = bytesWritten();
  const timer = setInterval(() => {
    const now = bytesWritten();
    if (now - last < minBytes) onStall(stalled(limits, 'a download', now - last));
    last = now;
  }, limits.stallTimeoutMs);
  timer.unref();
  return () => clearInterval(timer);
};
