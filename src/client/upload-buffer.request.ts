import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { TransferResult, UploadMode } from './client-options';
import type { Connection } from './connection';
import { expectStored, replyError } from './expect-reply';
import type { RequestTurn } from './request-lanes';
import { hashOf } from '../integrity/hash-algorithm';
import { formatTrailer } from '../protocol/command';
import { uploadHeader } from './request-header';
import { recycleWholeFileBuffer } from './whole-file-buffers';

/** Files up to this size go out as a single write with their header and trailer. */
const COALESCE_MAX_BYTES = 64 * 1024;

/**
 * UPLOAD/ADDFILE from memory, pipelined as the protocol allows: header, data and trailer go out at
 * once, without waiting for `OK file recv`, and the next request may write while this one reads its
 * replies. After a refused header the server discards the owed data and sends no second reply.
 */
export const uploadBuffer = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  data: Buffer,
  mode: UploadMode,
): Promise<TransferResult> => {
  const digest = hashOf(conn.hash, data);
  const trailer = formatTrailer({ hash: conn.hash, digest });
  const header = uploadHeader(mode, data.length, remoteName);
  const request = `${mode === 'create' ? 'ADDFILE' : 'UPLOAD'} ${printableName(remoteName)}`;
  const sending = (async () => {
    if (data.length <= COALESCE_MAX_BYTES) {
      // One write, one TCP segment: with Nagle off, three writes would be three segments per file.
      await conn.send(Buffer.concat([Buffer.from(header), data, Buffer.from(trailer)]));
    } else {
      await conn.send(header);
      await conn.send(data);
      await conn.send(trailer);
    }
    turn.doneSending();
  })();
  // Read below, but it may fail while we wait for our turn to read: mark it handled now.
  sending.catch(() => undefined);
  try {
    await turn.receiveTurn;
    const first = await conn.readReply();
    if (first.kind !== 'fileRecv') {
      const refusal = replyError(conn, first, request);
      // The server discards the owed data; if it cannot all arrive, the session is out of step.
      await sending.catch(() => conn.abandon(refusal));
      throw refusal;
    }
    await sending;
    const stored = expectStored(conn, await conn.readReply(), request, { size: data.length, digest });
    // Stored: the socket has written every byte, so a read buffer can take the next file.
    recycleWholeFileBuffer(data);
    return stored;
  } catch (err) {
    if (err instanceof RxferError && err.code !== 'CONNECTION_LOST') throw err;
    // A send that stopped half-way leaves the session out of step; the server may have said why.
    await sending.catch(() => conn.abandon());
    return conn.explainLoss(err, turn.receiveTurn);
  }
};
