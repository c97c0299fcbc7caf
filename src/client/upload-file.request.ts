import { close, closeSync, constants, createReadStream, fstatSync, openSync, read, readSync, type ReadStream } from 'node:fs';
import { promisify } from 'node:util';
import { RxferError } from '../errors/rxfer-error';
import { HashAlgorithm, RunningHash, startHash } from '../integrity/hash-algorithm';
import { hashPrefix, readerOf } from '../integrity/hash-prefix';
import { noteTransientBytes } from '../io/transient-buffers';
import { formatTrailer } from '../protocol/command';
import type { ResumePoint } from '../protocol/command';
import { printableName } from '../protocol/remote-name';
import type { Reply } from '../protocol/reply';
import type { KeptUpload, TransferResult, UploadOptions } from './client-options';
import type { Connection } from './connection';
import { expectFileRecv, expectStored, replyError } from './expect-reply';
import { FileVersion, changedWhileSent, localIo, localIoError, sameVersion, versionOf } from './local-io';
import { uploadBuffer } from './upload-buffer.request';
import { recycleWholeFileBuffer, wholeFileBuffer } from './whole-file-buffers';
import type { RequestTurn } from './request-lanes';
import { resumeQuery, uploadHeader } from './request-header';

/** 1 MiB reads: SHA-256 over big chunks runs at about twice the speed of 64 KiB ones (TOOLCHAIN.md). */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Files up to this size that are not worth a resume are read whole and sent as uploadBuffer sends:
 * header, data and trailer at once, without waiting for `OK file recv`. Files uploaded one after the
 * other on a connection then cost no round trip each (2,000 × 4 KiB by `upload()`: ≈ 1,400 files/s
 * when each waited, see bench/findings.md); a refused header costs at most this much sent in vain,
 * which the server reads and discards. Larger files stream.
 */
export const WHOLE_FILE_MAX_BYTES = 1024 * 1024;
/**
 * Files up to this size are read synchronously: ≈ 15 µs of the event loop for a file in the page
 * cache, against a thread-pool round trip per call. Larger reads go through the pool: a long read
 * must not stall the socket.
 */
export const SYNC_READ_MAX_BYTES = 64 * 1024;

/**
 * The file being sent, open. A plain descriptor, not a FileHandle: the data goes through an fs read
 * stream (FileHandle's own streams read through promises, ≈ 5 % slower for 1 GiB here) that is never
 * let close it (see `keepOpen`), so that it can be fstat'ed once the last byte is read. `open`: this
 * request still has to close it (false once it was read whole and closed).
 */
interface LocalSource {
  readonly size: number;
  readonly fd: number;
  /** The file as it was opened: if it is not so after the last byte was read, a write came between. */
  readonly version: FileVersion;
  open: boolean;
}

const readFd = promisify(read);
const closeFd = promisify(close);

/**
 * Opens first and takes the size from the open file, so size and bytes come from the same file even
 * if the path is replaced meanwhile. Synchronous: a few µs on a local file system, where the async
 * pair cost two thread-pool round trips, the larger part of a small file's time in the client.
 */
export const openSource = (localPath: string): LocalSource => {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO would otherwise block the event loop until a writer comes; it opens at once
    // and is refused below. Reads from a regular file are not affected.
    fd = openSync(localPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw localIoError(err, 'open for reading', localPath);
  }
  try {
    const stats = fstatSync(fd, { bigint: true });
    if (!stats.isFile()) throw new RxferError('LOCAL_IO', `cannot upload ${localPath}: not a regular file`, { path: localPath });
    return { size: Number(stats.size), fd, version: versionOf(stats), open: true };
  } catch (err) {
    closeSync(fd);
    throw localIoError(err, 'stat', localPath);
  }
};

/** The open file's version now. */
const versionNow = (source: LocalSource, localPath: string): FileVersion => {
  try {
    return versionOf(fstatSync(source.fd, { bigint: true }));
  } catch (err) {
    throw localIoError(err, 'stat', localPath);
  }
};

const grew = (localPath: string, size: number): RxferError =>
  new RxferError('LOCAL_IO', `${localPath} grew while it was being sent (announced ${size} bytes)`, { path: localPath, size });

const shrank = (localPath: string, size: number, read: number): RxferError =>
  new RxferError('LOCAL_IO', `${localPath} shrank while it was being sent (${read} of ${size} bytes read)`, { path: localPath, size, read });

/**
 * Reads of a file written to while being read, before giving up: a file saved now and then is read
 * whole on the second try; one rewritten all the time (a log) is refused rather than sent as a mix.
 */
const WHOLE_READ_ATTEMPTS = 3;

/**
 * The whole file as it was at one moment, then closed: read again (up to WHOLE_READ_ATTEMPTS times)
 * while its version after the read differs from the one before, as rsync does. One byte more is
 * asked for, so that a file that grew without a trace in its stats is refused as a streamed one is.
 * `readAs` is told the version the bytes returned were read in (put -r records their digest for it).
 */
export const readWhole = async (source: LocalSource, localPath: string, readAs?: (version: FileVersion) => void): Promise<Buffer> => {
  try {
    let before = source.version;
    for (let attempt = 1; ; attempt++) {
      const size = Number(before.size);
      const data = await readUpTo(source.fd, size, localPath);
      const after = versionNow(source, localPath);
      if (sameVersion(before, after) && (!changedLately(after) || (await readsAlike(source.fd, data, size, localPath)))) {
        if (data.length > size) throw grew(localPath, size);
        if (data.length < size) throw shrank(localPath, size, data.length);
        readAs?.(after);
        return data;
      }
      // Grown past what is read whole: sent again, it streams.
      if (attempt === WHOLE_READ_ATTEMPTS || Number(after.size) > WHOLE_FILE_MAX_BYTES) throw changedWhileSent(localPath, after);
      before = after;
    }
  } finally {
    source.open = false;
    closeSync(source.fd);
  }
};

/**
 * A write stamps the file's times when it starts, then copies its bytes: a read in the middle of the
 * copy sees part of the old bytes and part of the new, with the same version before and after it
 * (hostile pass n: a file rewritten in a loop was stored as a mix that never existed, and put -r
 * said it was stored). Such a write began moments ago, so a file changed that recently is read a
 * second time: the same bytes twice are the file as it was between the reads.
 */
const CHANGED_LATELY_NS = 2_000_000_000n;

const changedLately = (version: FileVersion): boolean => BigInt(Date.now()) * 1_000_000n - version.ctimeNs < CHANGED_LATELY_NS;

/** Whether a second read of the file gives exactly `data` (see CHANGED_LATELY_NS). */
const readsAlike = async (fd: number, data: Buffer, size: number, localPath: string): Promise<boolean> => {
  const again = await readUpTo(fd, size, localPath);
  const alike = again.equals(data);
  recycleWholeFileBuffer(again);
  return alike;
};

/** The file from its start: `size` bytes and one more if it has them (fewer if it ends sooner). */
const readUpTo = async (fd: number, size: number, localPath: string): Promise<Buffer> => {
  const data = wholeFileBuffer(size + 1, WHOLE_FILE_MAX_BYTES + 1);
  let filled = 0;
  try {
    for (;;) {
      const want = data.length - filled;
      const got = size <= SYNC_READ_MAX_BYTES ? readSync(fd, data, filled, want, filled) : (await readFd(fd, data, filled, want, filled)).bytesRead;
      filled += got;
      // A read of a regular file that returns less than asked has reached its end: no second read.
      if (got === 0 || filled === data.length || (got < want && filled >= size)) break;
    }
  } catch (err) {
    throw localIoError(err, 'read', localPath);
  }
  return data.subarray(0, filled);
};

/**
 * Node's fs for the read stream, except that it never closes our descriptor: a read stream closes
 * it when destroyed whatever `autoClose` says, and we fstat it after the last read.
 */
const keepOpen = { read, close: (_fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => callback(null) };

/** Resolves once the stream is closed, so no read of it is in flight on the descriptor. */
const closed = (stream: ReadStream): Promise<void> =>
  stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', () => resolve()));

/**
 * Sends the file from `start` to its announced end, hashing into `hash`; pauses while the socket is
 * full. `changed`: the file was written to after it was opened (its version differs once the last
 * byte is read), so the bytes sent may be a mix that never existed: the caller must not let the
 * server commit them.
 */
const sendFile = async (
  conn: Connection,
  localPath: string,
  source: LocalSource,
  start: number,
  hash: RunningHash,
  options: UploadOptions,
): Promise<{ digest: string; changed?: RxferError }> => {
  let sent = start;
  if (start > 0) options.onProgress?.(start, source.size);
  const stream = createReadStream('', { fd: source.fd, start, highWaterMark: READ_CHUNK_BYTES, fs: keepOpen });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      // Checked before the bytes go out: sending more than announced would corrupt the session.
      if (sent + chunk.length > source.size) throw grew(localPath, source.size);
      hash.update(chunk);
      sent += chunk.length;
      await conn.send(chunk);
      noteTransientBytes(chunk.length);
      options.onProgress?.(sent, source.size);
    }
  } catch (err) {
    throw err instanceof RxferError ? err : localIoError(err, 'read', localPath);
  } finally {
    stream.destroy();
    await closed(stream);
  }
  if (sent !== source.size) throw shrank(localPath, source.size, sent);
  const now = versionNow(source, localPath);
  return { digest: hash.hex(), ...(!sameVersion(source.version, now) && { changed: changedWhileSent(localPath, now) }) };
};

/**
 * A digest that cannot be the one of the bytes sent: the server then answers CHECKSUM_MISMATCH and
 * stores nothing, and the connection stays in step for the requests pipelined behind (closing it
 * instead would fail them all).
 */
const spoiled = (digest: string): string => digest.slice(0, -1) + (digest.endsWith('0') ? '1' : '0');

/**
 * The reply to a trailer spoiled because the file changed: a refusal, as the digest made sure, and
 * then our reason is the news, not the server's mismatch. Anything else is a server we cannot trust.
 */
const refusedAsChanged = (conn: Connection, reply: Reply, request: string, changed: RxferError): RxferError => {
  if (reply.kind === 'error') return changed;
  const error = new RxferError('PROTOCOL_VIOLATION', `${request}: the server did not refuse a digest made not to match (${changed.message})`);
  conn.abandon(error);
  return error;
};

/** Where to start: after the server's kept prefix if it hashes like ours, else at 0. */
interface StartingPoint {
  readonly resume?: ResumePoint;
  readonly hash: RunningHash;
}

const fromTheStart = (algorithm: HashAlgorithm): StartingPoint => ({ hash: startHash(algorithm) });

/** The reply to `RESUME`: what the server kept of this name, or null (nothing, or being written by another connection). */
const readKept = async (conn: Connection, turn: RequestTurn, remoteName: string): Promise<KeptUpload | null> => {
  await turn.receiveTurn;
  const reply = await conn.readReply();
  if (reply.kind === 'notFound' || (reply.kind === 'error' && reply.code === 'BUSY')) return null;
  if (reply.kind !== 'partial') throw replyError(conn, reply, `RESUME ${printableName(remoteName)}`);
  return { bytes: reply.bytes, digest: reply.digest };
};

/** RESUME as a request of its own: it lets the next request write at once and reads its reply in turn. */
export const askKept = async (conn: Connection, turn: RequestTurn, remoteName: string): Promise<KeptUpload | null> => {
  await conn.send(resumeQuery(remoteName)).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  return readKept(conn, turn, remoteName);
};

/**
 * Compares the digest of the server's kept prefix with the same prefix of the local file. The server
 * hashed the bytes it has on disk, so a damaged or tampered partial, or a local file changed since,
 * fails the comparison and the upload starts over.
 */
const startingPoint = async (kept: KeptUpload | null, source: LocalSource, algorithm: HashAlgorithm): Promise<StartingPoint> => {
  if (!kept || kept.bytes === 0 || kept.bytes > source.size) return fromTheStart(algorithm);
  const hash = await localIo('read', 'the local file', () => hashPrefix(readerOf(source.fd), kept.bytes, algorithm));
  if (!hash || hash.hex() !== kept.digest) return fromTheStart(algorithm);
  return { resume: { offset: kept.bytes, digest: kept.digest }, hash };
};

/**
 * UPLOAD/ADDFILE from a file. Up to WHOLE_FILE_MAX_BYTES (and below the server's resume size) it is
 * read whole and pipelined like an in-memory upload. Larger files stream, and unless `pipelined` they
 * wait for `OK file recv` first: a refused header then costs no data on the wire. The data is still
 * owed after a refusal, so the connection is closed instead (as it is after any failure once the
 * header went out).
 * With `resume` (the default) and a server that keeps interrupted uploads this large, it first asks
 * for the kept prefix and sends only the rest if the prefix is proven equal.
 */
export const uploadFile = async (
  conn: Connection,
  turn: RequestTurn,
  localPath: string,
  remoteName: string,
  options: UploadOptions & { resumableFromBytes?: number },
): Promise<TransferResult> => {
  const source = openSource(localPath);
  const resumable = options.resume !== false && options.resumableFromBytes !== undefined && source.size >= options.resumableFromBytes;
  if (!resumable && source.size <= WHOLE_FILE_MAX_BYTES) {
    const data = await readWhole(source, localPath);
    const stored = await uploadBuffer(conn, turn, remoteName, data, options.mode ?? 'replace');
    options.onProgress?.(data.length, data.length);
    return stored;
  }
  const request = `${options.mode === 'create' ? 'ADDFILE' : 'UPLOAD'} ${printableName(remoteName)}`;
  let owing = false;
  // A lost connection may have a reason the server sent just before closing; local errors do not.
  const explainLoss = (err: unknown): Promise<never> =>
    err instanceof RxferError && err.code === 'CONNECTION_LOST' ? conn.explainLoss(err, turn.receiveTurn) : Promise.reject(err);
  // Asked here (holding the send lane until the reply: the header depends on it) unless asked ahead.
  const askHere = async () => {
    await conn.send(resumeQuery(remoteName));
    return readKept(conn, turn, remoteName);
  };
  try {
    const kept = !resumable ? null : options.kept !== undefined ? options.kept : await askHere().catch(explainLoss);
    const start = await startingPoint(kept, source, conn.hash);
    const offset = start.resume?.offset ?? 0;
    if (offset > 0) options.onResume?.(offset, source.size);
    const header = uploadHeader(options.mode ?? 'replace', source.size, remoteName, start.resume);
    owing = true;
    await conn.send(header).catch(explainLoss);
    if (!options.pipelined) {
      await turn.receiveTurn;
      expectFileRecv(conn, await conn.readReply(), request);
    }
    const { digest, changed } = await sendFile(conn, localPath, source, offset, start.hash, options).catch(explainLoss);
    await conn.send(formatTrailer({ hash: conn.hash, digest: changed ? spoiled(digest) : digest })).catch(explainLoss);
    owing = false;
    turn.doneSending();
    if (options.pipelined) {
      // All of it is sent: a refused header's data is read and dropped, and the connection stays in step.
      await turn.receiveTurn;
      expectFileRecv(conn, await conn.readReply(), request);
    }
    const reply = await conn.readReply();
    if (changed) throw refusedAsChanged(conn, reply, request, changed);
    const stored = expectStored(conn, reply, request, { size: source.size, digest });
    return offset > 0 ? { ...stored, resumedAt: offset } : stored;
  } catch (err) {
    if (owing) conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  } finally {
    if (source.open) await closeFd(source.fd).catch(() => undefined);
  }
};
