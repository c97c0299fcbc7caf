import { injectable } from 'inversify';
import { Observable, defer } from 'rxjs';
import { flatMapSync } from '../../operators/flat-map-sync';
import { RxferError } from '../../errors/rxfer-error';
import { availableHashes, isHashAlgorithm, hashLabel } from '../../integrity/hash-algorithm';
import { carriesData, nameLines } from '../../protocol/command';
import { SessionContext } from '../../session/session-context';
import { SessionEvent, errorReply, replyEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import { Stage } from '../stage';

/** HASH: later requests on this connection (not earlier ones still in flight) use the algorithm. */
const chooseHash = (algorithm: string, ctx: SessionContext): SessionEvent => {
  const offered = availableHashes();
  if (!isHashAlgorithm(algorithm) || !offered.includes(algorithm)) {
    const names = offered.map(hashLabel).join(', ');
    return errorReply(new RxferError('HASH_UNSUPPORTED', `this server verifies with ${names}; ${JSON.stringify(algorithm.slice(0, 40))} is not offered, so the connection stays with ${hashLabel(ctx.hash)}`));
  }
  ctx.hash = algorithm;
  ctx.log.info({ hash: algorithm }, `Digests on this connection: ${hashLabel(algorithm)}`);
  return replyEvent({ kind: 'hashChosen', hash: algorithm });
};

const shuttingDown = () => errorReply(new RxferError('SHUTTING_DOWN', 'the server is stopping; try again later'));

/**
 * Command parse: opens a Transfer for each request line and tags the frames that follow (name,
 * data, trailer) with it. It is the one stage that knows which request the bytes belong to, so the
 * stages after it can run behind, asynchronously, without mixing pipelined requests up. It also
 * answers QUIT and, when the server stops, closes the session at the next request boundary.
 *
 * After a reply that closes the connection (QUIT's, SHUTTING_DOWN, a protocol error) nothing more
 * may take effect: the stages behind this one start storage work as soon as a request reaches them,
 * long before the closing reply is written (it waits for the replies before it), so whatever comes
 * after it is dropped here, in request order, before any of it becomes a request.
 */
@injectable()
export class ParseCommandStage implements Stage {
  readonly name = 'parse-command';

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return defer(() => {
      let current: Transfer | undefined;
      let firstName: Buffer | undefined;
      let draining = false;
      let ended = false;
      const closing = (reply: SessionEvent): SessionEvent[] => {
        ended = true;
        return [reply];
      };
      const finishRequest = (): SessionEvent[] => {
        current = undefined;
        return draining ? closing(shuttingDown()) : [];
      };

      return event$.pipe(
        flatMapSync((event): SessionEvent[] => {
          if (ended) return [];
          switch (event.type) {
            case 'command': {
              // Debug, not info: the audit line of each finished request names its command already,
              // and a line per command was a third of the log a burst of small files wrote.
              ctx.log.debug({ command: event.command.verb }, `Client command: ${event.command.verb}`);
              if (event.command.verb === 'QUIT') return closing(replyEvent({ kind: 'bye' }, { closeAfter: true }));
              if (event.command.verb === 'AUTH') return [{ type: 'login', token: event.command.token }];
              if (event.command.verb === 'HASH') return [chooseHash(event.command.algorithm, ctx)];
              current = ctx.beginTransfer(event.command);
              return [];
            }
            case 'fileInBatch': {
              const batch = current!;
              const file = ctx.beginBatchFile(batch, event.size);
              const whole: SessionEvent = { type: 'batchFile', transfer: file, raw: event.raw, bytes: event.bytes, declared: event.declared };
              return batch.filesToCome > 0 ? [whole] : [whole, ...finishRequest()];
            }
            case 'name': {
              const transfer = current!;
              // RENAME's two name lines become one `named` event.
              if (nameLines(transfer.command) === 2 && firstName === undefined) {
                firstName = event.raw;
                return [];
              }
              const named: SessionEvent = firstName ? { type: 'named', transfer, raw: firstName, raw2: event.raw } : { type: 'named', transfer, raw: event.raw };
              firstName = undefined;
              return carriesData(transfer.command) ? [named] : [named, ...finishRequest()];
            }
            case 'chunk':
              return [{ type: 'data', transfer: current!, bytes: event.bytes }];
            case 'trailer':
              return [{ type: 'dataEnd', transfer: current!, trailer: event.trailer }, ...finishRequest()];
            case 'shutdown':
              if (current === undefined) return closing(shuttingDown());
              draining = true;
              return [];
            case 'protocolError':
              return closing(event);
            default:
              return [event];
          }
        }),
      );
    });
  }
}
