import type { HashAlgorithm, RunningHash } from '../integrity/hash-algorithm';
import { close, constants, createWriteStream, fstat, ftruncate, lstatSync, open, openSync, statSync, type Stats, type WriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, sep } from 'node:path';
import { promisify } from 'node:util';
import { RxferError } from '../errors/rxfer-error';
import { hashPrefix, readerOf } from '../integrity/hash-prefix';
import { clientFolders, clientFsync } from '../io/quick-fsync';
import { writeBackEarly } from '../io/early-writeback';
import { stagingName } from '../io/staging-name';
import { finishWriting } from '../io/finish-writing';
import { exactWrites } from '../io/exact-writes';
import { localIo, localIoError, removeQuietly, syncAfterDownload } from './local-io';
import { renameIntoFolder } from './checked-rename';
import { ResumeLock } from './resume-lock';

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const ftruncateFd = promisify(ftruncate);
const closeFd = promisify(close);

/** fs write streams below 256 KiB chunks cost throughput (TOOLCHAIN.md). */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * The last check before a name changes: the staging file holds exactly the bytes that were verified.
 * Any write whose failure was lost on the way (a callback's error dropped, a short write) shows here
 * as a short or long file, which is never renamed into place.
 */
export const assertStagedSize = (path: string, onDisk: number, verified: number, outcome: string): void => {
  if (onDisk === verified) return;
  const message = `${path} holds ${onDisk} bytes on disk, but ${verified} were received and verified; ${outcome}`;
  throw new RxferError('LOCAL_IO', message, { path, onDisk, verified });
};

/**
 * Refuses a target that is a directory before anything is fetched; a missing target is fine.
 * Synchronous (a few µs): it runs before the request is sent, and pipelined downloads wait for it in
 * turn, so a thread-pool round trip here delayed every download behind it.
 */
export const refuseDirectory = (target: string): void => {
  let stats: Stats | undefined;
  try {
    stats = statSync(target, { throwIfNoEntry: false });
  } catch {
    // Not reachable (a loop of links, no permission): the staging file's creation will say why.
  }
  if (stats?.isDirectory()) throw new RxferError('LOCAL_IO', `cannot write ${target}: it is a directory`, { path: target });
};

/** A fresh staging file's path beside `target`: hidden, unique, and under NAME_MAX whatever the target's name. */
export const stagingPathFor = (target: string): string => beside(target, `.${shortened(basename(target))}${stagingName()}`);

/**
 * Whether a file name is one this client gives its own unfinished downloads: a resume file
 * (`partialPathFor`), its lock (ResumeLock), a staging file (`stagingPathFor`). `put -r` does not send
 * such files and `get -r` does not write them: sent up from a folder where a download was cut, one
 * came back down beside its neighbour and was taken for that neighbour's kept bytes (hostile pass f).
 */
// `s`: "." matches any character, U+2028 and U+2029 included (names may hold them: hostile pass g).
export const isUnfinishedDownloadName = (name: string): boolean => /^\..+\.rxfer-(?:resume(?:\.lock)?|part-[0-9a-f]{12}-[0-9a-z]+)$/s.test(name);

/** Where an interrupted download of `target` is kept for a resume: beside it, hidden, one per target. */
export const partialPathFor = (target: string): string => beside(target, `.${keptName(basename(target))}.rxfer-resume`);

/**
 * A target's name as its resume file carries it: whole up to 160 bytes; a longer one cut to 147
 * and followed by `~` and 12 hex digits of its SHA-256, so that two long names that begin alike
 * never share one resume file (they did: the second download offered the first one's kept bytes,
 * and overwrote them; hostile pass g).
 */
const keptName = (name: string): string => {
  const whole = shortened(name);
  return whole === name ? name : `${shortened(name, 147)}~${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
};

/**
 * `join(dirname(target), name)` for a `name` without separators, without join's normalizing of the
 * whole path: `get -r` builds two such paths per file. The same file whatever `target` is; the same
 * string when `target` is resolved, as downloadFile's is.
 */
const beside = (target: string, name: string): string => {
  const folder = dirname(target);
  return folder === '.' ? name : folder.endsWith(sep) ? `${folder}${name}` : `${folder}${sep}${name}`;
};

/**
 * A download is written to a staging file beside its target and renamed over it only once it is
 * complete, verified, on disk and of the verified size: readers never see half a file, and a failed
 * download leaves the old file as it was (unlike writing the real name with `w+` and unlinking on
 * error, see STYLE.md). We keep the descriptor ourselves (`autoClose: false`) so that we can fsync it
 * before closing. A resumable staging file has a fixed name (`partialPathFor`) and outlives an
 * interrupted download; one that a write failed in does not (see `giveUp`).
 */
export class StagingFile {
  private closed = false;
  /** The first local failure (a write, the flush, the background writeback, the close). */
  private failure: unknown;
  private sink: WriteStream | undefined;

  private constructor(
    readonly path: string,
    /** What the staging file becomes: named in messages, renamed over by `commit`. */
    private readonly target: string,
    private readonly fd: number,
    /** Fixed name, kept when a download is interrupted (see `giveUp`). */
    private readonly resumableFile: boolean,
    /** Bytes kept from an earlier attempt, and their hash state (resumable staging files only). */
    readonly kept: { readonly bytes: number; readonly hash: RunningHash } | undefined,
    /** Bytes in the file when it was opened (kept or not): what `startAt` may have to cut off. */
    private readonly sizeAtOpen: number,
    /** A resumable staging file's lock, held until it is committed, kept or discarded. */
    private readonly lock?: ResumeLock,
  ) {}

  /** Where the body goes, from `offset` on (anything after it is cut off first). */
  async startAt(offset: number): Promise<WriteStream> {
    // Cut off what the server is about to send again (it did not match); nothing to cut otherwise.
    if (offset < this.sizeAtOpen) await localIo('truncate', this.path, () => ftruncateFd(this.fd, offset), this.unchanged);
    const stream = createWriteStream(this.path, { fd: this.fd, start: offset, autoClose: false, highWaterMark: WRITE_BUFFER_BYTES, fs: exactWrites });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // Our own destroy() fails the write it interrupts with this: a consequence, not a disk failure.
      if (err.code !== 'ERR_STREAM_DESTROYED') this.failure ??= err;
    });
    writeBackEarly(stream, this.fd);
    this.sink = stream;
    return stream;
  }

  get stream(): WriteStream {
    if (!this.sink) throw new RxferError('INTERNAL', 'the staging file was not started');
    return this.sink;
  }

  /** The local failure, if any, as the LOCAL_IO a user reads: the staging path, the cause, the target untouched. */
  get writeError(): RxferError | undefined {
    return this.failure === undefined ? undefined : localIoError(this.failure, 'write', this.path, this.unchanged);
  }

  private get unchanged(): string {
    return `${this.target} was not changed`;
  }

  /**
   * A staging file of its own, beside the target. Created synchronously (a few µs on a local file
   * system), as the resume file below is: it is made once the server has announced the body, and a
   * thread-pool round trip there is time the body waits (200 × 1 MiB pipelined: bench/findings.md).
   */
  static async create(target: string): Promise<StagingFile> {
    const folder = dirname(target);
    const path = stagingPathFor(target);
    const fd = await localIo('create a staging file in', folder, async () => openSync(path, 'wx'));
    return new StagingFile(path, target, fd, false, undefined, 0);
  }

  /**
   * The resumable staging file of `target`, with the bytes an interrupted download left in it (hashed
   * now, so a resume can prove them to the server). Never follows a link planted in its place. While
   * another download to the same target holds it (see ResumeLock), a staging file of its own instead.
   */
  static async resumable(target: string, algorithm: HashAlgorithm): Promise<StagingFile> {
    const path = partialPathFor(target);
    const folder = dirname(target);
    const lock = await localIo('lock a staging file in', folder, async () => ResumeLock.take(path));
    if (!lock) return StagingFile.create(target);
    try {
      // Usually there is none yet: created empty, nothing to stat or hash.
      const fresh = await localIo('open a staging file in', folder, async () => openExclusive(path));
      if (fresh !== undefined) return new StagingFile(path, target, fresh, true, undefined, 0, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
    const flags = constants.O_RDWR | constants.O_NOFOLLOW;
    // Something else may have the resume file's name (a folder, a link, a FIFO or a socket, as a tree
    // copied in may hold), or it cannot be opened: then it is left alone, and this download stages in a
    // file of its own, without a resume (a resume file that is no file is none).
    const fd = await openFd(path, flags).catch(() => undefined);
    if (fd !== undefined) {
      try {
        const kept = await localIo('stat', path, () => fstatFd(fd));
        if (kept.isFile()) {
          const { size } = kept;
          const hash = size > 0 ? await localIo('read', path, () => hashPrefix(readerOf(fd), size, algorithm)) : undefined;
          return new StagingFile(path, target, fd, true, hash && { bytes: size, hash }, size, lock);
        }
      } catch (err) {
        await closeFd(fd).catch(() => undefined);
        lock.release();
        throw err;
      }
      await closeFd(fd).catch(() => undefined);
    }
    lock.release();
    return StagingFile.create(target);
  }

  /** Whether an interrupted download of `target` left bytes to resume from (a look, no lock). */
  static hasKept(target: string): boolean {
    return lstatSync(partialPathFor(target), { throwIfNoEntry: false }) !== undefined;
  }

  /** `resume: false`: an interrupted download's kept bytes go, unless another download is writing them now. */
  static async forgetResumable(target: string): Promise<void> {
    const path = partialPathFor(target);
    let lock: ResumeLock | undefined;
    try {
      lock = ResumeLock.take(path);
    } catch {
      return;
    }
    if (!lock) return;
    await removeQuietly(path);
    lock.release();
  }

  /**
   * Flushes, fsyncs, checks that the file holds exactly the `verifiedSize` bytes that were received
   * and verified, renames it over the target, then fsyncs the folder so the rename is durable too.
   * Any failure removes the staging file at once (its content cannot be trusted for a resume either)
   * and renames nothing. `realFolder`: the target's folder as the caller checked it, which the rename
   * must go into (renameIntoFolder). A folder fsync that fails after the rename is NOT_DURABLE: the
   * file is in place, and the staging file (its name free again) is no longer this download's.
   */
  async commit(verifiedSize: number, realFolder?: string): Promise<void> {
    const outcome = this.unchanged;
    let staged: Stats;
    try {
      await localIo('write', this.path, () => this.flush(), outcome);
      await localIo('fsync', this.path, () => clientFsync.file(this.fd), outcome);
      staged = await localIo('stat', this.path, () => fstatFd(this.fd), outcome);
      assertStagedSize(this.path, staged.size, verifiedSize, `nothing was renamed; ${outcome}`);
      await this.closeFd();
      // A close can report a write the file system deferred (NFS): such a file is not committed.
      if (this.failure !== undefined) throw localIoError(this.failure, 'close', this.path, outcome);
    } catch (err) {
      await this.discard();
      throw err;
    }
    // What was verified is the file behind our descriptor; the rename moves whatever the path names now.
    // A resume file has a fixed name, and another program may have put a file of its own there meanwhile
    // (a `get` of a file named like it: hostile pass g): then nothing is renamed, and that file stays.
    // The look itself failing is LOCAL_IO too; the file is not ours to remove then, only the lock goes.
    const now = await localIo('stat', this.path, async () => lstatSync(this.path, { throwIfNoEntry: false }), outcome).catch((err: unknown) => {
      this.lock?.release();
      throw err;
    });
    if (now?.ino !== staged.ino || now.dev !== staged.dev) {
      this.lock?.release();
      const message = `${this.path} was replaced or removed while the download ran (by another program); nothing was renamed; ${outcome}`;
      throw new RxferError('LOCAL_IO', message, { path: this.path });
    }
    try {
      await localIo('rename', `${this.path} to ${this.target}`, async () => renameIntoFolder(this.path, this.target, realFolder), outcome);
    } catch (err) {
      await this.discard();
      throw err;
    }
    this.lock?.release();
    // The rename is made: a failure now is NOT_DURABLE, the file in place (syncAfterDownload).
    await syncAfterDownload(clientFolders.sync(dirname(this.target)), this.target);
  }

  /**
   * Every byte handed to the stream is written, or this rejects. A stream whose write fails (ENOSPC)
   * calls end()'s callback with the error *before* it emits 'error', and one destroyed by a failed
   * background writeback calls it with ERR_STREAM_DESTROYED: the callback's argument is the answer,
   * with `errored` and `writableFinished` to confirm it. We used to resolve on the callback whatever
   * it said and count on an 'error' listener having fired by then (issue 14).
   */
  private async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const sink = this.stream;
    try {
      await finishWriting(sink, 'the staging file');
    } catch (err) {
      throw (this.failure ??= err);
    }
    // A failure noted by the stream's 'error' listener only (the background writeback's) counts too.
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * After a failed download. An interrupted one (`interrupted`: the connection, not this machine)
   * leaves what reached a resumable staging file there for the next attempt, which hashes it again
   * before trusting a byte. Any other staging file goes at once, and so does one whose write failed:
   * its end is uncertain, and on a full disk the space matters more than a resume. Returns the local
   * failure, if any, so that the caller reports the disk rather than its consequences.
   */
  async giveUp(interrupted: boolean): Promise<RxferError | undefined> {
    if (interrupted && this.resumableFile && this.failure === undefined) {
      const flushed = this.sink === undefined || (await this.flush().then(() => true, () => false));
      if (flushed) {
        await this.stop();
        this.lock?.release();
        return undefined;
      }
    }
    await this.discard();
    return this.writeError;
  }

  /** Removes the staging file; safe to call at any point, and more than once. */
  async discard(): Promise<void> {
    await this.stop();
    await removeQuietly(this.path);
    this.lock?.release();
  }

  private async stop(): Promise<void> {
    await this.closeFd().catch(() => undefined);
  }

  /**
   * Once a stream has the descriptor, only the stream closes it: `destroy()` closes it whatever
   * `autoClose` says, so closing it here as well could close a number another open() was handed
   * meanwhile. Waiting for 'close' also lets a write in flight finish first. A failed close is an
   * 'error' (recorded in `failure`) before the 'close'.
   */
  private async closeFd(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sink = this.sink;
    if (!sink) return localIo('close', this.path, () => closeFd(this.fd));
    if (sink.closed) return;
    await new Promise<void>((resolve) => {
      sink.once('close', () => resolve());
      sink.destroy();
    });
  }
}

/** A new empty file at `path` (links not followed), or undefined if something is there already. */
const openExclusive = (path: string): number | undefined => {
  try {
    return openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
};

/** Keeps staging names under NAME_MAX (255 bytes) even for a target name at the limit. */
const shortened = (name: string, maxBytes = 160): string => {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most names need no counting.
  if (name.length * 3 <= maxBytes) return name;
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > maxBytes) break;
    out += ch;
  }
  return out;
};
