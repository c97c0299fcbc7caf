import { inject, injectable } from 'inversify';
import type { Logger } from 'pino';
import { TOKENS } from '../container/tokens';
import type { RxferError } from '../errors/rxfer-error';
import type { Reply } from '../protocol/reply';
import type { SessionContext } from '../session/session-context';
import type { RequestEnding, SessionObserver } from '../session/session-observer';
import type { Transfer } from '../session/transfer';
import { outcomeOf } from '../metrics/metrics.observer';

/** Every field an audit line has, always present (null where it does not apply), so queries can rely on them. */
export interface AuditRecord {
  readonly audit: true;
  readonly user: string | null;
  readonly remote: string;
  readonly command: string;
  /** The file's name (not `name`: pino's own `name` field is in every line). */
  readonly file: string | null;
  /** File data moved by this request (for a resumed transfer, only what moved now). */
  readonly bytes: number;
  readonly durationMs: number;
  readonly bytesPerSecond: number;
  readonly digest: string | null;
  readonly outcome: 'ok' | 'not_found' | 'error' | 'interrupted';
  /** The error code when the outcome is not ok (NOT_FOUND, QUOTA_EXCEEDED, STALLED, …). */
  readonly code: string | null;
}

const digestOf = (reply: Reply | undefined): string | null =>
  reply && (reply.kind === 'dataRecv' || reply.kind === 'downloadReady') ? reply.digest : null;

const codeOf = (ending: RequestEnding, sessionError: RxferError | undefined): string | null => {
  if (ending.reply?.kind === 'error') return ending.reply.code;
  if (ending.reply?.kind === 'notFound') return 'NOT_FOUND';
  if (!ending.complete) return sessionError?.code ?? 'CONNECTION_LOST';
  return null;
};

const mibPerSecond = (bytesPerSecond: number): string => (bytesPerSecond / 1048576).toFixed(1);

/**
 * One `audit: true` line per finished request (and per AUTH): who, from where, what, how much, how
 * fast, with which digest, and how it ended. Tokens are never logged: AUTH lines name the user only.
 */
@injectable()
export class AuditLogObserver implements SessionObserver {
  private readonly moved = new WeakMap<Transfer, number>();
  private readonly sessionErrors = new WeakMap<SessionContext, RxferError>();
  private readonly log: Logger;

  constructor(@inject(TOKENS.Logger) logger: Logger) {
    this.log = logger.child({ component: 'audit' });
  }

  connectionOpened(): void {}
  connectionClosed(): void {}

  dataReceived(transfer: Transfer, bytes: number): void {
    this.moved.set(transfer, (this.moved.get(transfer) ?? 0) + bytes);
  }

  dataSent(transfer: Transfer, bytes: number): void {
    this.moved.set(transfer, (this.moved.get(transfer) ?? 0) + bytes);
  }

  replied(ctx: SessionContext, reply: Reply, transfer?: Transfer): void {
    if (transfer) return;
    const failed = reply.kind === 'error' && reply.code === 'AUTH_FAILED';
    if (reply.kind !== 'authOk' && !failed) return;
    const record: AuditRecord = {
      audit: true,
      user: reply.kind === 'authOk' ? reply.user : null,
      remote: ctx.remote,
      command: 'AUTH',
      file: null,
      bytes: 0,
      durationMs: 0,
      bytesPerSecond: 0,
      digest: null,
      outcome: failed ? 'error' : 'ok',
      code: failed ? 'AUTH_FAILED' : null,
    };
    this.log.info(record, failed ? `AUTH from ${ctx.remote}: AUTH_FAILED` : `AUTH ${record.user} from ${ctx.remote}: ok`);
  }

  requestEnded(ctx: SessionContext, transfer: Transfer, ending: RequestEnding): void {
    const bytes = this.moved.get(transfer) ?? 0;
    this.moved.delete(transfer);
    const ms = transfer.elapsedMs();
    const bytesPerSecond = ms > 0 ? Math.round(bytes / (ms / 1000)) : 0;
    const user = transfer.user?.name ?? ctx.user?.name ?? null;
    const record: AuditRecord = {
      audit: true,
      user,
      remote: ctx.remote,
      command: transfer.command.verb,
      file: transfer.name ?? null,
      bytes,
      durationMs: Math.round(ms * 1000) / 1000,
      bytesPerSecond,
      digest: digestOf(ending.reply),
      outcome: outcomeOf(ending),
      code: codeOf(ending, this.sessionErrors.get(ctx)),
    };
    const how = record.code ? `${record.outcome} ${record.code}` : record.outcome;
    this.log.info(
      { session: ctx.id, ...record },
      `${record.command} ${record.file ?? '-'} by ${user ?? '-'} from ${ctx.remote}: ${how}, ${bytes} bytes in ${ms.toFixed(0)} ms (${mibPerSecond(bytesPerSecond)} MiB/s)`,
    );
  }

  sessionFailed(ctx: SessionContext, error: RxferError): void {
    this.sessionErrors.set(ctx, error);
  }
}
