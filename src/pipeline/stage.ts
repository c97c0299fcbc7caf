import { Observable } from 'rxjs';
import { SessionContext } from '../session/session-context';
import { SessionEvent } from '../session/session-event';

/**
 * One step of the per-connection pipeline. `apply` is called once per connection, so state a stage
 * keeps in the closure it builds there is that connection's alone. Events a stage does not handle
 * pass through unchanged.
 */
export interface Stage {
  readonly name: string;
  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent>;
}
