import { RxferError, toRxferError } from '../errors/rxfer-error';
import { closesConnection } from '../errors/error-code';
import { hashOf } from '../integrity/hash-algorithm';
import { formatBatchEntry } from '../protocol/command';
import { printableName } from '../protocol/remote-name';
import type { TransferResult } from './client-options';
import type { Connection } from './connection';
import { expectStored } from './expect-reply';
import type { RequestTurn } from './request-lanes';
import { recycleWholeFileBuffer } from './whole-file-buffers';

/** One file of a BATCH: its name as it goes on the wire (already through wireName) and its bytes. */
export interface BatchFile {
  readonly name: string;
  readonly data: Buffer;
}

/** What became of one file of a batch: what the server confirmed, or why it is not stored. */
export type BatchOutcome = TransferResult | RxferError;

/** The request's parts in order (its line, then each file's line and bytes), and each file's digest. */
const batchRequest = (conn: Connection, files: readonly BatchFile[]): { parts: Buffer[]; digests: string[] } => {
  const digests = files.map((file) => hashOf(conn.hash, file.data));
  const parts: Buffer[] = [Buffer.from(`BATCH ${files.length}\n`)];
  for (const [i, file] of files.entries()) {
    parts.push(Buffer.from(`${formatBatchEntry(file.data.length, { hash: conn.hash, digest: digests[i]! })}${file.name}\n`), file.data);
  }
  return { parts, digests };
};

/**
 * BATCH: up to the greeting's `batch-files` small files in one request, so that the server pays its
 * per-request cost once for all of them (issue 20). It goes out as one write (with Nagle off, one
 * write per file was one TCP segment per file), pipelined like any request: the next one may write
 * while this one waits for its replies. The server answers each file on its own line, in order, and
 * a refusal (NAME_INVALID, QUOTA_EXCEEDED, …) fails that file alone, so this never rejects: every
 * file gets its outcome. After a reply that ends the session (BAD_COMMAND, SHUTTING_DOWN) or a lost
 * connection, the files still unanswered are CONNECTION_LOST.
 */
export const uploadBatch = async (conn: Connection, turn: RequestTurn, files: readonly BatchFile[]): Promise<BatchOutcome[]> => {
  const { parts, digests } = batchRequest(conn, files);
  const sending = conn.sendAll(parts).then(() => turn.doneSending());
  // Half a batch on the wire leaves the server waiting for bytes that never come: out of step.
  // Marked handled at once, as it may fail while we wait for our turn to read.
  sending.catch(() => conn.abandon());
  const outcomes: BatchOutcome[] = [];
  await turn.receiveTurn;
  for (const [i, file] of files.entries()) {
    const request = `BATCH file ${printableName(file.name)}`;
    let reply;
    try {
      reply = await conn.readReply();
    } catch (err) {
      // No reply is coming for this file or the ones after it: the reader ended, or the line made no
      // sense (and readReply closed the connection).
      const lost = err instanceof RxferError && err.code === 'CONNECTION_LOST' ? err : conn.closedError();
      outcomes.push(err instanceof RxferError ? err : lost, ...files.slice(i + 1).map(() => lost));
      return outcomes;
    }
    try {
      outcomes.push(expectStored(conn, reply, request, { size: file.data.length, digest: digests[i]! }));
      // Stored: the server has all of its bytes, so the socket has written them and holds them no more.
      recycleWholeFileBuffer(file.data);
    } catch (err) {
      const error = toRxferError(err);
      outcomes.push(error);
      // The server closes after such an ERR (BAD_COMMAND, SHUTTING_DOWN), and a reply of another kind
      // (not a file's) means we are out of step: no reply is coming for the other files. Not merely
      // "is the connection closed": replies the server sent before its FIN are still to be read.
      const endsSession = reply.kind === 'error' ? closesConnection(reply.code) : reply.kind !== 'dataRecv' && reply.kind !== 'notFound';
      if (endsSession) {
        conn.abandon(error);
        const lost = conn.closedError();
        outcomes.push(...files.slice(i + 1).map(() => lost));
        return outcomes;
      }
    }
  }
  return outcomes;
};
