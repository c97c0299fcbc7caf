import { inject, injectable } from 'inversify';
import { TOKENS } from '../container/tokens';
import type { RxferError } from '../errors/rxfer-error';
import type { Reply } from '../protocol/reply';
import type { SessionContext } from '../session/session-context';
import type { RequestEnding, SessionObserver } from '../session/session-observer';
import type { Transfer } from '../session/transfer';
import { RxferMetrics } from './rxfer-metrics';

/** A request's outcome label: one of four, whatever the reply said. */
export const outcomeOf = (ending: RequestEnding): 'ok' | 'not_found' | 'error' | 'interrupted' => {
  if (!ending.complete || !ending.reply) return 'interrupted';
  if (ending.reply.kind === 'error') return 'error';
  if (ending.reply.kind === 'notFound') return 'not_found';
  return 'ok';
};

/**
 * Turns what sessions do into the rxfer_* metrics. Bytes are counted per chunk, as they move, so a
 * scrape during a long transfer sees it progress; requests and durations are counted once, when the
 * request is over.
 */
@injectable()
export class MetricsObserver implements SessionObserver {
  /** Bytes each upload in progress has added to rxfer_staging_bytes, given back when it ends. */
  private readonly staged = new WeakMap<Transfer, number>();

  constructor(@inject(TOKENS.Metrics) private readonly metrics: RxferMetrics) {}

  connectionOpened(): void {
    this.metrics.connectionsOpen.inc();
    this.metrics.connectionsTotal.inc();
  }

  connectionClosed(): void {
    this.metrics.connectionsOpen.dec();
  }

  dataReceived(transfer: Transfer, bytes: number): void {
    this.metrics.flow.received += bytes;
    this.metrics.flow.staging += bytes;
    this.staged.set(transfer, (this.staged.get(transfer) ?? 0) + bytes);
  }

  dataSent(_transfer: Transfer, bytes: number): void {
    this.metrics.flow.sent += bytes;
  }

  replied(_ctx: SessionContext, reply: Reply): void {
    if (reply.kind === 'error') this.metrics.errors.inc({ code: reply.code });
    // AUTH has no request state of its own (no Transfer): it is counted from its reply.
    if (reply.kind === 'authOk') this.metrics.requests.inc({ command: 'AUTH', outcome: 'ok' });
    if (reply.kind === 'error' && reply.code === 'AUTH_FAILED') {
      this.metrics.authFailures.inc();
      this.metrics.requests.inc({ command: 'AUTH', outcome: 'error' });
    }
  }

  requestEnded(_ctx: SessionContext, transfer: Transfer, ending: RequestEnding): void {
    const command = transfer.command.verb;
    this.metrics.requests.inc({ command, outcome: outcomeOf(ending) });
    this.metrics.transferDuration.observe({ command }, transfer.elapsedMs() / 1000);
    const staged = this.staged.get(transfer);
    if (staged !== undefined) {
      this.metrics.flow.staging -= staged;
      this.staged.delete(transfer);
    }
  }

  sessionFailed(_ctx: SessionContext, error: RxferError): void {
    this.metrics.errors.inc({ code: error.code });
  }
}
