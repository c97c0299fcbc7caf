import { injectable } from 'inversify';
import { Observable } from 'rxjs';
import { isStorageRequest } from '../../protocol/command';
import { SessionContext } from '../../session/session-context';
import { SessionEvent } from '../../session/session-event';
import { concatAsync } from '../concat-async';
import { Stage } from '../stage';

/**
 * Admission: a request is read only while the connection's budget has room (RequestBudget), so a
 * client that pipelines thousands of requests and reads no reply holds a few dozen files or a few
 * MiB, not everything it asked for (it was 4,000 open files, or 240 MB, per connection: issue 16). When the budget is full this stage waits, and
 * concatAsync holds the socket meanwhile: the requests already decoded from the read in hand wait
 * here as frames (bytes of the socket read), the rest stay in the kernel's buffers, and the peer's
 * own sends stall, as TCP intends. It comes first, so every request waits before it takes anything.
 */
@injectable()
export class AdmitRequestsStage implements Stage {
  readonly name = 'admit-requests';

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(
      concatAsync(ctx.flow, (event: SessionEvent) => {
        if (event.type !== 'command' || !isStorageRequest(event.command)) return [event];
        // parse-command opens the request (taking its share of the budget) synchronously as the
        // event is passed on, so the next command is measured against the budget with this one in.
        const room = ctx.budget.roomFor(event.command.verb);
        return room ? room.then(() => [event]) : [event];
      }),
    );
  }
}
