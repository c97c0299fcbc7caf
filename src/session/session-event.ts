import { Readable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import type { Trailer } from '../protocol/command';
import { Frame } from '../protocol/frame';
import { Reply } from '../protocol/reply';
import { StoredFile } from '../storage/storage-adapter';
import { Transfer } from './transfer';

/**
 * The actor's mailbox. Decoder frames come in; parse-command turns them into request-scoped events;
 * later stages add outcomes; emit-ack turns outcomes into replies, which the actor writes.
 */
export type SessionEvent =
  | Frame
  /** The server is stopping: finish the request in flight, then close. */
  | { readonly type: 'shutdown' }
  /** An AUTH request (its token is never logged). */
  | { readonly type: 'login'; readonly token: string }
  /** The request's name line (`raw`); RENAME's second name line is `raw2`. */
  | { readonly type: 'named'; readonly transfer: Transfer; readonly raw: Buffer; readonly raw2?: Buffer }
  | { readonly type: 'data'; readonly transfer: Transfer; readonly bytes: Buffer }
  /** One whole file of a BATCH (`transfer` is the file's own, see SessionContext.beginBatchFile). */
  | { readonly type: 'batchFile'; readonly transfer: Transfer; readonly raw: Buffer; readonly bytes: Buffer; readonly declared: Trailer }
  | { readonly type: 'dataEnd'; readonly transfer: Transfer; readonly trailer: Trailer }
  | { readonly type: 'accepted'; readonly transfer: Transfer }
  | { readonly type: 'refused'; readonly transfer: Transfer; readonly error: RxferError }
  | { readonly type: 'committed'; readonly transfer: Transfer; readonly file: StoredFile }
  /**
   * Work running in the background (a commit, a download's open); its outcome events are awaited
   * in request order by emit-ack.
   */
  | { readonly type: 'pending'; readonly transfer: Transfer; readonly outcome: Promise<readonly SessionEvent[]> }
  | ReplyEvent;

export interface ReplyEvent {
  readonly type: 'reply';
  readonly reply: Reply;
  /** Exactly `size` bytes to send after the line (a download's data). */
  readonly body?: { readonly stream: Readable; readonly size: number };
  /** Close the connection once this reply is written. */
  readonly closeAfter?: boolean;
  /** The request this reply completes, for logging. */
  readonly transfer?: Transfer;
}

export const replyEvent = (reply: Reply, extra: Omit<ReplyEvent, 'type' | 'reply'> = {}): ReplyEvent => ({ type: 'reply', reply, ...extra });

export const errorReply = (error: RxferError, extra: Omit<ReplyEvent, 'type' | 'reply'> = {}): ReplyEvent =>
  error.code === 'NOT_FOUND'
    ? replyEvent({ kind: 'notFound', message: error.message }, extra)
    : replyEvent({ kind: 'error', code: error.code, message: error.message }, { closeAfter: error.closesConnection, ...extra });
