import { Socket } from 'node:net';
import { Observable } from 'rxjs';
import { RxferError } from '../errors/rxfer-error';
import { noteTransientBytes } from '../io/transient-buffers';

/**
 * A socket's input as one Observable, subscribed once for the connection's whole life (re-subscribing
 * between stages loses the bytes that arrive in between). Completes on the peer's FIN; errors with
 * IDLE_TIMEOUT when nothing moved either way for `idleTimeoutMs`. Teardown removes every listener.
 */
export const socketSource = (socket: Socket, idleTimeoutMs: number): Observable<Buffer> =>
  new Observable<Buffer>((subscriber) => {
    const onData = (chunk: Buffer) => {
      subscriber.next(chunk);
      noteTransientBytes(chunk.length);
    };
    const onEnd = () => subscriber.complete();
    const onError = (err: Error) => subscriber.error(err);
    const onClose = () => subscriber.complete();
    const onTimeout = () =>
      subscriber.error(new RxferError('IDLE_TIMEOUT', `no traffic for ${Math.round(idleTimeoutMs / 1000)} s; closing`, { idleTimeoutMs }));

    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('timeout', onTimeout);
    socket.setTimeout(idleTimeoutMs);
    return () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('timeout', onTimeout);
      socket.setTimeout(0);
    };
  });
