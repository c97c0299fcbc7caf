import { Readable } from 'node:stream';
import { injectable } from 'inversify';
import { Observable } from 'rxjs';
import { flatMapSync } from '../../operators/flat-map-sync';
import { SessionContext } from '../../session/session-context';
import { SessionEvent, errorReply, replyEvent } from '../../session/session-event';
import { awaitInOrder } from '../await-in-order';
import { Stage } from '../stage';

/**
 * ACK emit: turns outcomes into protocol replies — `OK file recv` when an upload's header is
 * accepted, `OK <size> <digest>` plus the data for a download, `OK file data recv` once committed,
 * `ERR`/`NOT FOUND` otherwise — and ends each request's bookkeeping with its last reply.
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
            if (transfer.opReply) {
              ctx.endTransfer(transfer);
              return [replyEvent(transfer.opReply)];
            }
            const listing = transfer.listing;
            if (listing) {
              transfer.listing = undefined;
              ctx.endTransfer(transfer);
              const body = { stream: Readable.from(listing.body.length ? [listing.body] : []), size: listing.body.length };
              return [replyEvent({ kind: 'listing', bytes: listing.body.length, count: listing.count }, { body })];
            }
            const download = transfer.download;
            if (!download) return [replyEvent({ kind: 'fileRecv' })];
            // The reply now owns the open file; the transfer must not close it under the writer.
            transfer.download = undefined;
            ctx.endTransfer(transfer);
            const { size, digest } = download.file;
            const { offset } = download;
            const reply = { kind: 'downloadReady', size, digest, ...(offset > 0 && { offset }) } as const;
            return [replyEvent(reply, { body: { stream: download.stream, size: size - offset }, transfer })];
          }
          case 'committed':
            ctx.endTransfer(event.transfer);
            ctx.logDone(event.transfer, 'Stored', event.file.size, event.file.digest);
            return [replyEvent({ kind: 'dataRecv', size: event.file.size, digest: event.file.digest })];
          case 'refused':
            ctx.endTransfer(event.transfer);
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
