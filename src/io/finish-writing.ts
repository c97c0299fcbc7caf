import type { Writable } from 'node:stream';

/**
 * Ends `sink` and resolves once everything handed to it is written; rejects with the error of any
 * write, the flush or the end. The end callback's argument is the answer, confirmed by `errored` and
 * `writableFinished`: a stream destroyed meanwhile calls it with ERR_STREAM_DESTROYED, and resolving
 * on the callback whatever it said, counting on an 'error' listener, once passed a lost write (issue 14).
 * `what` names the sink in the errors this function makes itself.
 */
export const finishWriting = (sink: Writable, what: string): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (sink.errored) return reject(sink.errored);
    if (sink.destroyed) return reject(new Error(`${what} was closed before its data was written`));
    sink.end((err?: Error | null) => {
      const failed = err ?? sink.errored;
      if (failed) return reject(failed);
      if (!sink.writableFinished) return reject(new Error(`${what} was ended before its data was written`));
      resolve();
    });
  });
