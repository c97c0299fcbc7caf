import { statfsSync, type StatsFs } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Writable } from 'node:stream';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { DownloadOptions, TransferResult } from './client-options';
import type { Connection } from './connection';
import { expectDownloadReady } from './expect-reply';
import type { RequestTurn } from './request-lanes';
import { downloadHeader, wireName } from './request-header';
import { resolvedPath } from './local-target';
import { StagingFile, isUnfinishedDownloadName, refuseDirectory } from './staging-file';
import { type InMemorySink, SMALL_DOWNLOAD_MAX_BYTES, SmallStagingFile } from './small-staging-file';
import { RunningHash, startHash } from '../integrity/hash-algorithm';

/** A download that continues from a kept prefix: where it ends, and the hash state after it. */
export interface KeptPrefix {
  readonly bytes: number;
  readonly hash: RunningHash;
}

/** How a download receives its body: into a file to write through, or held in memory. */
export interface ReceiveOptions extends DownloadOptions {
  kept?: KeptPrefix;
  /** A file to write through (Writable), or one held in memory (InMemorySink: SmallStagingFile). */
  openSink: (announced: TransferResult, offset: number) => Promise<Writable | InMemorySink>;
}

/** The DOWNLOAD request for `remoteName`, with `FROM` when part of the file is kept. */
const requestFor = (remoteName: string, kept: KeptPrefix | undefined): string => downloadHeader(remoteName, kept && { offset: kept.bytes, digest: kept.hash.hex() });

/**
 * Sends DOWNLOAD (with `FROM` when part of the file is kept) and receives the announced body into
 * the sink `openSink` gives for the offset the server accepted (0 if it did not: the kept bytes did
 * not match its file), hashing every byte. The result holds what the server announced; the caller
 * compares it with `received` before trusting the bytes. Any failure while the body is owed to us
 * closes the connection: the rest of it would otherwise be read as replies.
 */
export const receiveDownload = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  options: ReceiveOptions,
): Promise<{ announced: TransferResult; received: TransferResult }> => {
  await conn.send(requestFor(remoteName, options.kept)).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  await turn.receiveTurn;
  return receiveReply(conn, remoteName, options);
};

/** receiveDownload once the request is sent and it is this download's turn to read. */
const receiveReply = async (conn: Connection, remoteName: string, options: ReceiveOptions): Promise<{ announced: TransferResult; received: TransferResult }> => {
  const { kept } = options;
  const request = `DOWNLOAD ${printableName(remoteName)}`;
  const reply = await conn.readReply();
  const announced = expectDownloadReady(conn, reply, request);
  const offset = reply.kind === 'downloadReady' ? (reply.offset ?? 0) : 0;
  if (offset !== 0 && offset !== kept?.bytes) {
    const error = new RxferError('PROTOCOL_VIOLATION', `${request}: the server resumed at ${offset}, which was not asked for`);
    conn.abandon(error);
    throw error;
  }
  const hash = offset > 0 ? kept!.hash : startHash(conn.hash);
  let done = offset;
  try {
    const sink = await options.openSink(announced, offset);
    if (offset > 0) {
      options.onResume?.(offset, announced.size);
      options.onProgress?.(done, announced.size);
    }
    const onChunk = (chunk: Buffer) => {
      hash.update(chunk);
      done += chunk.length;
      options.onProgress?.(done, announced.size);
    };
    if (sink instanceof Writable) await conn.readBody(announced.size - offset, sink, { onChunk });
    else {
      await conn.readBodyInMemory(announced.size - offset, (chunk) => {
        onChunk(chunk);
        sink.keep(chunk);
      });
    }
  } catch (err) {
    conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  }
  const received = { size: done, digest: hash.hex(), ...(offset > 0 && { resumedAt: offset }) };
  return { announced, received };
};

export const verifyDownload = (remoteName: string, announced: TransferResult, received: TransferResult): void => {
  if (received.digest === announced.digest && received.size === announced.size) return;
  const message =
    `${printableName(remoteName)}: received ${received.size} bytes with digest ${received.digest}, ` +
    `but the server announced ${announced.size} bytes with digest ${announced.digest}`;
  throw new RxferError('CHECKSUM_MISMATCH', message, { size: received.size, expectedSize: announced.size });
};

/**
 * Below this a download is not worth a free-space check: a full disk then fails the write itself
 * (LOCAL_IO, nothing committed), after a body that costs less than the check's round trip.
 */
const SPACE_CHECK_MIN_BYTES = 1024 * 1024;

/**
 * Fails early, before the body arrives, if the target's file system cannot hold it. Synchronous (one
 * quick system call): the body waits in the socket meanwhile, and pipelined downloads behind it too.
 */
const checkFreeSpace = (folder: string, size: number): void => {
  if (size < SPACE_CHECK_MIN_BYTES) return;
  let stats: StatsFs | undefined;
  try {
    stats = statfsSync(folder);
  } catch {
    return; // Not every file system answers; a full disk then fails the write itself (LOCAL_IO).
  }
  if (stats.bavail * stats.bsize >= size) return;
  const free = stats.bavail * stats.bsize;
  throw new RxferError('LOCAL_IO', `not enough space in ${folder}: ${size} bytes needed, ${free} free`, { size, free });
};

/**
 * A target named as this client names its unfinished downloads is refused: written, it would be taken
 * for the kept bytes of its neighbour's next download, and used up or renamed onto it (hostile pass g:
 * `rxfer get D/.big.rxfer-resume D/big LOCAL/` reported both while only big was left).
 */
const refuseUnfinishedName = (target: string): void => {
  if (!isUnfinishedDownloadName(basename(target))) return;
  const message = `cannot write ${target}: rxfer keeps interrupted downloads under names like this one (.NAME.rxfer-resume, its .lock, .NAME.rxfer-part-…); download it under another name`;
  throw new RxferError('LOCAL_IO', message, { path: target });
};

/**
 * Downloads this large stage in the target's resume file, kept when interrupted (and locked while
 * written, see ResumeLock). Smaller ones stage in a file of their own: fetching them again costs
 * less than the lock and the kept file's bookkeeping (2,000 × 4 KiB pipelined: bench/findings.md).
 */
const RESUMABLE_FROM_BYTES = 1024 * 1024;

/** One file of downloadFiles. */
export interface DownloadItem {
  readonly remoteName: string;
  readonly localPath: string;
  /** DownloadOptions.intoNewFolder and checkedFolder, for this file. */
  readonly intoNewFolder?: boolean;
  readonly checkedFolder?: string;
}

/** A download whose target was checked and whose kept bytes (if any) were found: ready to be sent. */
interface PreparedDownload {
  readonly remoteName: string;
  readonly target: string;
  readonly checkedFolder: string | undefined;
  readonly resumable: boolean;
  /** The staging file: the kept one of an interrupted download now, otherwise chosen once the size is known. */
  staging: StagingFile | SmallStagingFile | undefined;
}

/** The checks made before a download is sent (see downloadFile), and the bytes kept to resume from. */
const prepareDownload = async (conn: Connection, { remoteName, localPath, intoNewFolder, checkedFolder }: DownloadItem, options: DownloadOptions): Promise<PreparedDownload> => {
  // A name this client refuses (NAME_INVALID) fails before anything is taken: building the request
  // later cannot fail, and a group's other files go on (hostile pass o).
  wireName(remoteName);
  const target = resolvedPath(localPath);
  const looked = (intoNewFolder ?? options.intoNewFolder) !== true;
  if (looked) refuseDirectory(target);
  refuseUnfinishedName(target);
  const resumable = options.resume !== false;
  if (!resumable && looked) await StagingFile.forgetResumable(target);
  // Bytes kept from an interrupted download are offered to the server; otherwise the staging file is
  // chosen once the size is known.
  const staging = resumable && looked && StagingFile.hasKept(target) ? await StagingFile.resumable(target, conn.hash) : undefined;
  return { remoteName, target, checkedFolder: checkedFolder ?? options.checkedFolder, resumable, staging };
};

/** How a prepared download receives its body: its staging file, chosen once the size is known. */
const receiveOptionsOf = (conn: Connection, prepared: PreparedDownload, options: DownloadOptions): ReceiveOptions => ({
  ...options,
  kept: prepared.staging?.kept,
  openSink: async (announced, offset) => {
    const { target } = prepared;
    checkFreeSpace(dirname(target), announced.size - offset);
    // A small file is held in memory and written at commit (small-staging-file.ts, issue 20).
    prepared.staging ??=
      prepared.resumable && announced.size >= RESUMABLE_FROM_BYTES
        ? await StagingFile.resumable(target, conn.hash)
        : announced.size <= SMALL_DOWNLOAD_MAX_BYTES
          ? new SmallStagingFile(target)
          : await StagingFile.create(target);
    return prepared.staging.startAt(offset);
  },
});

/**
 * Verifies what arrived and commits it, or, when `outcome` is a failure (or verification fails), gives
 * the staging file up: interrupted, it keeps what arrived for the next attempt; wrong bytes, a refusal
 * or a failed write on this machine leave nothing to keep. A local failure is what the user must fix,
 * so it is the one reported (the connection it cut, or the body left unread, are its consequences).
 */
const finishDownload = async (prepared: PreparedDownload, outcome: { announced: TransferResult; received: TransferResult } | { error: unknown }): Promise<TransferResult> => {
  let verified = false;
  try {
    if ('error' in outcome) throw outcome.error;
    const { announced, received } = outcome;
    verifyDownload(prepared.remoteName, announced, received);
    verified = true;
    await prepared.staging!.commit(received.size, prepared.checkedFolder);
    return received;
  } catch (err) {
    // A commit cleans up after itself, and leaves alone what is no longer its own: a resume file
    // another program put under its name, or, after the rename (NOT_DURABLE), the name itself, which
    // may already be another download's resume file. Giving up would remove those.
    if (verified) throw toRxferError(err);
    const interrupted = !verified && err instanceof RxferError && INTERRUPTIONS.has(err.code);
    const localFailure = await prepared.staging?.giveUp(interrupted);
    if (localFailure && !(err instanceof RxferError && err.code === 'LOCAL_IO')) throw localFailure;
    throw toRxferError(err);
  }
};

/**
 * DOWNLOAD into `localPath` through a staging file in the same folder, verified (count and digest),
 * fsynced, checked to hold exactly the verified size, and renamed into place; whatever was at
 * `localPath` is untouched until then. With `resume` (the default) a download of 1 MiB or more stages
 * in a file with a fixed name that is kept if the download is interrupted, and the next download of
 * the same target sends its digest so that the server sends only the rest. Bytes that fail
 * verification, and a staging file a local write failed in (a full disk: LOCAL_IO), are never kept.
 */
export const downloadFile = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  localPath: string,
  options: DownloadOptions,
): Promise<TransferResult> => {
  const prepared = await prepareDownload(conn, { remoteName, localPath }, options);
  const outcome = await receiveDownload(conn, turn, remoteName, receiveOptionsOf(conn, prepared, options)).catch((error: unknown) => ({ error }));
  // Every reply of this request is read: the next one may read its own while this file is fsynced.
  turn.doneReceiving();
  return finishDownload(prepared, outcome);
};


/**
 * downloadFile for many files as one request of the client (`get -r`'s small files, issue 20): the
 * DOWNLOADs are sent in one write and their replies read in turn, each file checked, received,
 * verified and committed exactly as downloadFile does it, and each succeeding or failing on its own
 * (a refusal, NOT FOUND, a local failure). What it saves is the client's own per-request work:
 * a turn on the connection, a write, and the window's bookkeeping for each file. A failure that ends
 * the connection fails the files after it with that loss. Settles once every file has.
 */
export const downloadFiles = async (
  conn: Connection,
  turn: RequestTurn,
  items: readonly DownloadItem[],
  options: DownloadOptions,
): Promise<PromiseSettledResult<TransferResult>[]> => {
  const prepared = await Promise.allSettled(items.map((item) => prepareDownload(conn, item, options)));
  const ready = prepared.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
  const receiving = ready.map((p) => receiveOptionsOf(conn, p, options));
  const sent = ready.length === 0 ? Promise.resolve() : conn.send(ready.map((p, i) => requestFor(p.remoteName, receiving[i]!.kept)).join(''));
  const sending = await sent.then(
    () => undefined,
    (err: unknown) => conn.explainLoss(err, turn.receiveTurn).catch((lost: unknown) => lost),
  );
  turn.doneSending();
  await turn.receiveTurn;
  // Each file is committed as soon as it is verified, while the next one's reply is read.
  const finishing: Promise<TransferResult>[] = [];
  for (const [i, p] of ready.entries()) {
    const outcome = sending !== undefined ? { error: sending } : await receiveReply(conn, p.remoteName, receiving[i]!).catch((error: unknown) => ({ error }));
    finishing.push(finishDownload(p, outcome));
  }
  turn.doneReceiving();
  const finished = await Promise.allSettled(finishing);
  let next = 0;
  return prepared.map((p) => (p.status === 'rejected' ? { status: 'rejected', reason: toRxferError(p.reason) } : finished[next++]!));
};

/** Failures after which the bytes received so far are still good. */
const INTERRUPTIONS = new Set(['CONNECTION_LOST', 'SHUTTING_DOWN', 'STALLED', 'IDLE_TIMEOUT']);

/**
 * DOWNLOAD into a stream the caller owns (stdout, a pipe, a device), which is left open. Bytes are
 * written as they arrive and checked once all are in: a stream cannot be renamed into place, so a
 * mismatch is reported (CHECKSUM_MISMATCH) after the bytes went out, as curl or cat would have.
 */
export const downloadToStream = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
  sink: Writable,
  options: DownloadOptions,
): Promise<TransferResult> => {
  const { announced, received } = await receiveDownload(conn, turn, remoteName, { ...options, openSink: async () => sink });
  turn.doneReceiving();
  verifyDownload(remoteName, announced, received);
  return received;
};
