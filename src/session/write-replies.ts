import { Socket } from 'node:net';
import { Observable, OperatorFunction, concatMap, finalize, ignoreElements, map, of, takeWhile } from 'rxjs';
import { formatReply } from '../protocol/reply';
import { sendBody } from './send-body';
import { SessionContext } from './session-context';
import { ReplyEvent, SessionEvent } from './session-event';

/**
 * The write end of the actor: replies go out in order, a download's data right after its header
 * line. A reply the peer does not read (write() === false) pauses input until the socket drains, so
 * a client that pipelines requests but never reads answers cannot make us buffer without bound.
 * A request's last reply frees the request once it is written (its data sent, or failed to send);
 * replies still queued when the connection ends are freed by the session's dispose.
 * Completes after a reply marked closeAfter.
 */
export const writeReplies =
  (socket: Socket, ctx: SessionContext): OperatorFunction<SessionEvent, never> =>
  (event$) =>
    event$.pipe(
      concatMap((event): Observable<boolean> => {
        if (event.type !== 'reply') return of(false);
        if (!socket.writable) return of(true);
        // Replies produced in one tick (a burst of pipelined small files) leave in one segment.
        if (socket.writableCorked === 0) {
          socket.cork();
          process.nextTick(() => socket.uncork());
        }
        if (!socket.write(formatReply(event.reply))) ctx.flow.holdUntilDrained(socket);
        ctx.observer.replied(ctx, event.reply, event.transfer);
        const close = event.closeAfter === true;
        if (!event.body) {
          if (event.transfer) ctx.endTransfer(event.transfer, { reply: event.reply, complete: true });
          return of(close);
        }
        return sendData(socket, ctx, event, event.body).pipe(map(() => close));
      }),
      takeWhile((close) => !close),
      ignoreElements(),
    );

/** A reply's data; the request ends however the sending does (done, failed, or cut off). */
const sendData = (socket: Socket, ctx: SessionContext, event: ReplyEvent, body: NonNullable<ReplyEvent['body']>): Observable<void> => {
  ctx.midBody = true;
  let complete = false;
  // Only a download's bytes are file data (a LIST's body is not).
  const { transfer } = event;
  const onSent = transfer && event.reply.kind === 'downloadReady' ? (bytes: number) => ctx.observer.dataSent(transfer, bytes) : undefined;
  return new Observable<void>((subscriber) =>
    sendBody(socket, ctx.flow, body, ctx.config.limits, onSent).subscribe({
      complete: () => {
        complete = true;
        ctx.midBody = false;
        if (event.transfer && event.reply.kind === 'downloadReady') ctx.logDone(event.transfer, 'Sent', body.size);
        subscriber.next();
        subscriber.complete();
      },
      error: (err) => subscriber.error(err),
    }),
  ).pipe(
    finalize(() => {
      if (event.transfer) ctx.endTransfer(event.transfer, { reply: event.reply, complete });
    }),
  );
};
