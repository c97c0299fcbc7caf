import { inject, injectable } from 'inversify';
import { Observable, defer } from 'rxjs';
import { TOKENS } from '../../container/tokens';
import { RxferError } from '../../errors/rxfer-error';
import { UserDirectory } from '../../auth/user-directory';
import { allows } from '../../auth/user';
import { SessionContext } from '../../session/session-context';
import { ReplyEvent, SessionEvent, errorReply, replyEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import { concatAsync } from '../concat-async';
import { Stage } from '../stage';

/**
 * Authentication and authorisation, before anything touches storage: AUTH sets the session's user
 * (a wrong token ends the connection), and every request is checked against the user's role. A
 * refused request's data is still owed and is dropped downstream.
 *
 * Events behind an AUTH wait here, in order, while its token is checked (scrypt). After AUTH_FAILED
 * they are dropped: the connection closes once the replies before it are written, and until then
 * the requests behind it would otherwise run as the anonymous user, unanswered.
 */
@injectable()
export class AuthenticateStage implements Stage {
  readonly name = 'authenticate';

  constructor(@inject(TOKENS.UserDirectory) private readonly users: UserDirectory) {}

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return defer(() => {
      ctx.user = this.users.anonymous();
      let failed = false;
      return event$.pipe(
        concatAsync(ctx.flow, (event: SessionEvent) => {
          if (failed) return [];
          if (event.type === 'login') {
            return this.login(event.token, ctx).then((reply) => {
              failed = reply.closeAfter === true;
              return [reply];
            });
          }
          if (event.type === 'named' || event.type === 'batchFile') return [this.authorize(event.transfer, ctx) ?? event];
          return [event];
        }),
      );
    });
  }

  private async login(token: string, ctx: SessionContext): Promise<ReplyEvent> {
    const user = await this.users.authenticate(token);
    if (!user) {
      ctx.log.warn('Authentication failed');
      return errorReply(new RxferError('AUTH_FAILED', 'unknown user or wrong token'));
    }
    ctx.user = user;
    ctx.log = ctx.log.child({ user: user.name });
    ctx.log.info({ role: user.role }, `Authenticated as ${user.name} (${user.role})`);
    return replyEvent({ kind: 'authOk', user: user.name, role: user.role });
  }

  /** A `refused` event if the session may not do this, else undefined (and the transfer gets its user). */
  private authorize(transfer: Transfer, ctx: SessionContext): SessionEvent | undefined {
    const user = ctx.user;
    const verb = transfer.command.verb;
    let error: RxferError | undefined;
    if (!user) error = new RxferError('AUTH_REQUIRED', `${verb} needs AUTH first: this server has no anonymous access`);
    else if (!allows(user, verb === 'DOWNLOAD' || verb === 'LIST' || verb === 'STAT' ? 'read' : 'write')) error = new RxferError('FORBIDDEN', `${user.name} (${user.role}) may not ${verb}`);
    if (error) {
      transfer.refusal = error;
      return { type: 'refused', transfer, error };
    }
    transfer.user = user;
    return undefined;
  }
}
