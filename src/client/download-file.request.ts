import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { DownloadOptions, TransferResult } from './client-options';
import type { Connection } from './connection';
import { expectDownloadReady } from './expect-reply';
import { localIoError } from './local-io';
import type { RequestTurn } from './request-lanes';
import { downloadHeader } from './request-header';
import { StagingFile, refuseDirectory } from './staging-file';

/**
 * Sends DOWNLOAD and receives the announced body into `sink`, hashing every byte. The result holds
 * what the server announced; the caller compares it with `received` before trusting the bytes.
 * Any failure while the body is owed to us closes the connection: the rest of it would otherwise be
 * read as replies.
 */
export const receiveDownload = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  sink: Writable,
  options: DownloadOptions & { beforeBody?: (announced: TransferResult) => Promise<void> },
): Promise<{ announced: TransferResult; received: TransferResult }> => {
  const header = downloadHeader(remoteName);
  await conn.send(header).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  await turn.receiveTurn;
  const announced = expectDownloadReady(conn, await conn.readReply(), `DOWNLOAD ${printableName(remoteName)}`);
  const hash = createHash('sha256');
  let done = 0;
  try {
    await options.beforeBody?.(announced);
    await conn.readBody(announced.size, sink, {
      onChunk: (chunk) => {
        hash.update(chunk);
        done += chunk.length;
        options.onProgress?.(done, announced.size);
      },
    });
  } catch (err) {
    conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  }
  return { announced, received: { size: done, sha256: hash.digest('hex') } };
};

export const verifyDownload = (remoteName: string, announced: TransferResult, received: TransferResult): void => {
  if (received.sha256 === announced.sha256 && received.size === announced.size) return;
  const message =
    `${printableName(remoteName)}: received ${received.size} bytes with sha256 ${received.sha256}, ` +
    `but the server announced ${announced.size} bytes with sha256 ${announced.sha256}`;
  throw new RxferError('CHECKSUM_MISMATCH', message, { size: received.size, expectedSize: announced.size });
};

/** Fails early, before the body arrives, if the target's file system cannot hold it. */
const checkFreeSpace = async (folder: string, size: number): Promise<void> => {
  const stats = await fsp.statfs(folder).catch(() => undefined);
  if (!stats || stats.bavail * stats.bsize >= size) return;
  const free = stats.bavail * stats.bsize;
  throw new RxferError('LOCAL_IO', `not enough space in ${folder}: ${size} bytes needed, ${free} free`, { size, free });
};

/**
 * DOWNLOAD into `localPath` through a staging file in the same folder, verified (count and SHA-256),
 * fsynced and renamed into place. On any failure the staging file is removed and whatever was at
 * `localPath` is untouched.
 */
export const downloadFile = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  localPath: string,
  options: DownloadOptions,
): Promise<TransferResult> => {
  const target = resolve(localPath);
  await refuseDirectory(target);
  const staging = await StagingFile.create(target);
  try {
    const beforeBody = (announced: TransferResult) => checkFreeSpace(dirname(target), announced.size);
    const { announced, received } = await receiveDownload(conn, turn, remoteName, staging.stream, {
      ...options,
      beforeBody,
    });
    // Every reply of this request is read: the next one may read its own while this file is fsynced.
    turn.doneReceiving();
    verifyDownload(remoteName, announced, received);
    await staging.commit(target);
    return received;
  } catch (err) {
    await staging.discard();
    if (staging.writeError !== undefined && !(err instanceof RxferError)) throw localIoError(err, 'write', staging.path);
    throw toRxferError(err);
  }
};
