import { Socket } from 'node:net';
import { Observable, OperatorFunction, concatMap, ignoreElements, of, takeWhile } from 'rxjs';
import { formatReply } from '../protocol/reply';
import { sendBody } from './send-body';
import { SessionContext } from './session-context';
import { SessionEvent } from './session-event';

/**
 * The write end of the actor: replies go out in order, a download's data right after its header
 * line. A reply the peer does not read (write() === false) pauses input until the socket drains, so
 * a client that pipelines requests but never reads answers cannot make us buffer without bound.
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
        if (!event.body) return of(event.closeAfter === true);
        ctx.midBody = true;
        return new Observable<boolean>((subscriber) =>
          sendBody(socket, ctx.flow, event.body!, ctx.config.limits).subscribe({
            complete: () => {
              ctx.midBody = false;
              if (event.transfer) ctx.logDone(event.transfer, 'Sent', event.body!.size);
              subscriber.next(event.closeAfter === true);
              subscriber.complete();
            },
            error: (err) => subscriber.error(err),
          }),
        );
      }),
      takeWhile((close) => !close),
      ignoreElements(),
    );
