import { inUserTerms } from '../auth/user';
import { toRxferError } from '../errors/rxfer-error';
import type { SessionEvent } from '../session/session-event';
import type { Transfer } from '../session/transfer';

/**
 * A request refused: its error in the user's terms (storage names files with the user's root in
 * front), kept on the transfer so that data it is still owed is read and dropped, and the event
 * emit-ack answers it with.
 */
export const refusal = (transfer: Transfer, err: unknown): SessionEvent[] => {
  const error = inUserTerms(toRxferError(err), transfer.user);
  transfer.refusal = error;
  return [{ type: 'refused', transfer, error }];
};
