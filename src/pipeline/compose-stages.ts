import { Observable } from 'rxjs';
import { SessionContext } from '../session/session-context';
import { SessionEvent } from '../session/session-event';
import { Stage } from './stage';

/** The pipeline is a fold of its stages over the event stream (after Marble.js). */
export const composeStages =
  (stages: readonly Stage[], ctx: SessionContext) =>
  (event$: Observable<SessionEvent>): Observable<SessionEvent> =>
    stages.reduce((stream$, stage) => stage.apply(stream$, ctx), event$);
