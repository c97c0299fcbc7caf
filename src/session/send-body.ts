import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Observable } from 'rxjs';
import { RxferError } from '../errors/rxfer-error';
import { noteTransientBytes, transientTransferStarted } from '../io/transient-buffers';
import { FlowControl } from './flow-control';
import { StallLimits, watchOutputStalls } from './stall-guard';

/**
 * Streams exactly `size` bytes from `stream` into the socket, pausing the file when the socket's
 * buffer is full (a peer that stops reading costs no memory). While it runs, no new requests are
 * read: they would pile up behind it. A short or failed stream breaks the framing, so it errors and
 * the actor closes the connection.
 */
export const sendBody = (socket: Socket, flow: FlowControl, body: { stream: Readable; size: number }, limits: StallLimits): Observable<void> =>
  new Observable<void>((subscriber) => {
    const { stream, size } = body;
    const release = flow.hold();
    const stopMoving = transientTransferStarted();
    const stopWatching = watchOutputStalls(limits, () => socket.bytesWritten, (error) => subscriber.error(error));
    let sent = 0;
    const resume = () => stream.resume();
    const onData = (chunk: Buffer) => {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        stream.pause();
        socket.once('drain', resume);
      }
      noteTransientBytes(chunk.length);
    };
    const onEnd = () => {
      if (sent === size) subscriber.complete();
      else subscriber.error(new RxferError('STORAGE_FAILED', `file changed while it was sent: ${sent} of ${size} bytes`, { sent, size }));
    };
    const onError = (err: Error) => subscriber.error(new RxferError('STORAGE_FAILED', `reading the file failed: ${err.message}`));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    return () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      socket.off('drain', resume);
      stream.destroy();
      stopWatching();
      stopMoving();
      release();
    };
  });
