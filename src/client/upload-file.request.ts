import { createHash } from 'node:crypto';
import { createReadStream, fstat, open, type ReadStream } from 'node:fs';
import { promisify } from 'node:util';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { TransferResult, UploadOptions } from './client-options';
import type { Connection } from './connection';
import { expectFileRecv, expectStored } from './expect-reply';
import { localIo, localIoError } from './local-io';
import type { RequestTurn } from './request-lanes';
import { shaTrailer, uploadHeader } from './request-header';

/** 1 MiB reads: SHA-256 over big chunks runs at about twice the speed of 64 KiB ones (TOOLCHAIN.md). */
const READ_CHUNK_BYTES = 1024 * 1024;

interface LocalSource {
  readonly size: number;
  readonly stream: ReadStream;
}

/**
 * Opens first and takes the size from the open file, so size and bytes come from the same file even
 * if the path is replaced meanwhile. The stream owns the descriptor from here on.
 */
const openSource = async (localPath: string): Promise<LocalSource> => {
  const fd = await localIo('open for reading', localPath, () => promisify(open)(localPath, 'r'));
  const stream = createReadStream(localPath, { fd, highWaterMark: READ_CHUNK_BYTES });
  try {
    const stats = await localIo('stat', localPath, () => promisify(fstat)(fd));
    if (!stats.isFile()) throw new RxferError('LOCAL_IO', `cannot upload ${localPath}: not a regular file`, { path: localPath });
    return { size: stats.size, stream };
  } catch (err) {
    stream.destroy();
    throw err;
  }
};

/** Sends exactly `size` bytes, hashing as they go; pauses reading while the socket is saturated. */
const sendFile = async (conn: Connection, localPath: string, source: LocalSource, options: UploadOptions): Promise<string> => {
  const hash = createHash('sha256');
  let sent = 0;
  try {
    for await (const chunk of source.stream as AsyncIterable<Buffer>) {
      // Checked before the bytes go out: sending more than announced would corrupt the session.
      if (sent + chunk.length > source.size) {
        const message = `${localPath} grew while it was being sent (announced ${source.size} bytes)`;
        throw new RxferError('LOCAL_IO', message, { path: localPath, size: source.size });
      }
      hash.update(chunk);
      sent += chunk.length;
      await conn.send(chunk);
      options.onProgress?.(sent, source.size);
    }
  } catch (err) {
    throw err instanceof RxferError ? err : localIoError(err, 'read', localPath);
  }
  if (sent !== source.size) {
    const message = `${localPath} shrank while it was being sent (${sent} of ${source.size} bytes read)`;
    throw new RxferError('LOCAL_IO', message, { path: localPath, size: source.size, read: sent });
  }
  return hash.digest('hex');
};

/**
 * UPLOAD/ADDFILE from a file, streamed. Unlike the in-memory upload it waits for `OK file recv`: a
 * refused header then costs no data on the wire. The data is still owed after a refusal, so the
 * connection is closed instead (as it is after any failure once the header went out).
 */
export const uploadFile = async (
  conn: Connection,
  turn: RequestTurn,
  localPath: string,
  remoteName: string,
  options: UploadOptions,
): Promise<TransferResult> => {
  const source = await openSource(localPath);
  const request = `${options.mode === 'create' ? 'ADDFILE' : 'UPLOAD'} ${printableName(remoteName)}`;
  let owing = false;
  try {
    const header = uploadHeader(options.mode ?? 'replace', source.size, remoteName);
    owing = true;
    // A lost connection may have a reason the server sent just before closing; local errors do not.
    const explainLoss = (err: unknown): Promise<never> =>
      err instanceof RxferError && err.code === 'CONNECTION_LOST' ? conn.explainLoss(err, turn.receiveTurn) : Promise.reject(err);
    await conn.send(header).catch(explainLoss);
    await turn.receiveTurn;
    expectFileRecv(conn, await conn.readReply(), request);
    const sha256 = await sendFile(conn, localPath, source, options).catch(explainLoss);
    await conn.send(shaTrailer(sha256)).catch(explainLoss);
    owing = false;
    turn.doneSending();
    return expectStored(conn, await conn.readReply(), request, { size: source.size, sha256 });
  } catch (err) {
    if (owing) conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  } finally {
    source.stream.destroy();
  }
};
