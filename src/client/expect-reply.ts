import { RxferError } from '../errors/rxfer-error';
import type { Reply } from '../protocol/reply';
import type { Connection } from './connection';
import type { TransferResult } from './client-options';

/**
 * The error a reply stands for when it is not the one the request waits for. A server error keeps
 * its code; a well-formed reply that does not belong here means the session is out of step, so the
 * connection is closed.
 */
export const replyError = (conn: Connection, reply: Reply, request: string): RxferError => {
  if (reply.kind === 'error') return new RxferError(reply.code, reply.message);
  if (reply.kind === 'notFound') return new RxferError('NOT_FOUND', reply.message);
  const error = new RxferError('PROTOCOL_VIOLATION', `unexpected ${reply.kind} reply to ${request}`);
  conn.abandon(error);
  return error;
};

export const expectFileRecv = (conn: Connection, reply: Reply, request: string): void => {
  if (reply.kind !== 'fileRecv') throw replyError(conn, reply, request);
};

/** The server must confirm exactly the byte count and digest that were sent. */
export const expectStored = (conn: Connection, reply: Reply, request: string, sent: TransferResult): TransferResult => {
  if (reply.kind !== 'dataRecv') throw replyError(conn, reply, request);
  if (reply.size !== sent.size || reply.digest !== sent.digest) {
    const message =
      `${request}: the server confirmed ${reply.size} bytes digest ${reply.digest}, ` +
      `but ${sent.size} bytes digest ${sent.digest} were sent`;
    throw new RxferError('PROTOCOL_VIOLATION', message, { size: reply.size, sentSize: sent.size });
  }
  return { size: reply.size, digest: reply.digest };
};

export const expectDownloadReady = (conn: Connection, reply: Reply, request: string): TransferResult => {
  if (reply.kind !== 'downloadReady') throw replyError(conn, reply, request);
  return { size: reply.size, digest: reply.digest };
};
