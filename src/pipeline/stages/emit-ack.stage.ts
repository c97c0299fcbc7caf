import { Readable } from 'node:stream';
import { injectable } from 'inversify';
import { Observable } from 'rxjs';
import { flatMapSync } from '../../operators/flat-map-sync';
import { SessionContext } from '../../session/session-context';
import { ReplyEvent, SessionEvent, errorReply, replyEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import type { Reply } from '../../protocol/reply';
import { awaitInOrder } from '../await-in-order';
import { Stage } from '../stage';

/**
 * The last reply of a request: its outcome is final, so requests waiting on its name may go on,
 * while what it holds is freed only once the reply is written (writeReplies ends the transfer).
 */
const finalReply = (transfer: Transfer, reply: Reply, body?: ReplyEvent['body']): ReplyEvent => {
  transfer.settle();
  return replyEvent(reply, { transfer, ...(body && { body }) });
};

/**
 * ACK emit: turns outcomes into protocol replies — `OK file recv` when an upload's header is
 * accepted, `OK <size> <digest>` plus the data for a download, `OK file data recv` once committed,
 * `ERR`/`NOT FOUND` otherwise. A request's last reply carries its Transfer: the actor frees the
 * request once that reply has been written.
 */
@injectable()
export class EmitAckStage implements Stage {
  readonly name = 'emit-ack';

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(
      awaitInOrder(ctx.flow),
      flatMapSync((event): SessionEvent[] => {
        switch (event.type) {
          case 'accepted': {
            const { transfer } = event;
            if (transfer.opReply) return [finalReply(transfer, transfer.opReply)];
            const listing = transfer.listing;
            if (listing) {
              transfer.listing = undefined;
              const body = { stream: Readable.from(listing.body.length ? [listing.body] : []), size: listing.body.length };
              return [finalReply(transfer, { kind: 'listing', bytes: listing.body.length, count: listing.count, ...(listing.more && { more: true }) }, body)];
            }
            const download = transfer.download;
            if (!download) return [replyEvent({ kind: 'fileRecv' })];
            const { size, digest } = download.file;
            const { offset } = download;
            const reply = { kind: 'downloadReady', size, digest, ...(offset > 0 && { offset }) } as const;
            // The transfer keeps the open file: it is closed when the data is sent, or when the
            // connection ends with this reply still waiting to be written.
            return [finalReply(transfer, reply, { stream: download.stream, size: size - offset })];
          }
          case 'committed':
            ctx.logDone(event.transfer, 'Stored', event.file.size, event.file.digest);
            return [finalReply(event.transfer, { kind: 'dataRecv', size: event.file.size, digest: event.file.digest })];
          case 'refused':
            event.transfer.settle();
            ctx.log.info({ file: event.transfer.displayName, code: event.error.code }, `Refused ${event.transfer.command.verb}: ${event.error.code} ${event.error.message}`);
            return [errorReply(event.error, { transfer: event.transfer })];
          case 'protocolError':
            ctx.log.warn({ code: event.error.code }, `Protocol error: ${event.error.code} ${event.error.message}`);
            return [errorReply(event.error)];
          case 'reply':
            return [event];
          default:
            return [];
        }
      }),
    );
  }
}
