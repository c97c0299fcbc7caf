import type { RxferError } from '../errors/rxfer-error';
import type { Reply } from '../protocol/reply';
import type { SessionContext } from './session-context';
import type { Transfer } from './transfer';

/** How a request ended: its last reply (absent if the connection ended first) and whether its data all went out. */
export interface RequestEnding {
  readonly reply?: Reply;
  /** False when the request was cut off: the connection ended, or a download's data could not all be sent. */
  readonly complete: boolean;
}

/**
 * What happens in sessions, told to whoever watches (metrics, the audit log), so that those concerns
 * are bound in the container and not written into the actor. Called synchronously on the hot path:
 * an observer must be cheap and must never throw.
 */
export interface SessionObserver {
  connectionOpened(remote: string): void;
  connectionClosed(remote: string): void;
  /** An upload's file data, as each chunk is read from the socket. */
  dataReceived(transfer: Transfer, bytes: number): void;
  /** A download's file data, as each chunk is handed to the socket. */
  dataSent(transfer: Transfer, bytes: number): void;
  /** A reply line was written (the request's last one when `transfer` is given). */
  replied(ctx: SessionContext, reply: Reply, transfer?: Transfer): void;
  /** A request is over; called once per request. */
  requestEnded(ctx: SessionContext, transfer: Transfer, ending: RequestEnding): void;
  /** The session ended on an error (stall, timeout, protocol violation, shutdown). */
  sessionFailed(ctx: SessionContext, error: RxferError): void;
}

const nothing = (): void => undefined;

export const NO_OBSERVER: SessionObserver = {
  connectionOpened: nothing,
  connectionClosed: nothing,
  dataReceived: nothing,
  dataSent: nothing,
  replied: nothing,
  requestEnded: nothing,
  sessionFailed: nothing,
};

/** One observer that tells each of `observers`, in order. */
export const fanOut = (observers: readonly SessionObserver[]): SessionObserver => {
  if (observers.length === 1) return observers[0]!;
  return {
    connectionOpened: (remote) => observers.forEach((o) => o.connectionOpened(remote)),
    connectionClosed: (remote) => observers.forEach((o) => o.connectionClosed(remote)),
    dataReceived: (transfer, bytes) => observers.forEach((o) => o.dataReceived(transfer, bytes)),
    dataSent: (transfer, bytes) => observers.forEach((o) => o.dataSent(transfer, bytes)),
    replied: (ctx, reply, transfer) => observers.forEach((o) => o.replied(ctx, reply, transfer)),
    requestEnded: (ctx, transfer, ending) => observers.forEach((o) => o.requestEnded(ctx, transfer, ending)),
    sessionFailed: (ctx, error) => observers.forEach((o) => o.sessionFailed(ctx, error)),
  };
};
