import type { HashAlgorithm, RunningHash } from '../integrity/hash-algorithm';
import { close, constants, createWriteStream, fstat, fsync, ftruncate, lstatSync, open, openSync, promises as fsp, statSync, type Stats, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { RxferError } from '../errors/rxfer-error';
import { hashPrefix, readerOf } from '../integrity/hash-prefix';
import { FolderSync } from '../io/folder-sync';
import { writeBackEarly } from '../io/early-writeback';
import { stagingName } from '../io/staging-name';
import { localIo, removeQuietly } from './local-io';
import { ResumeLock } from './resume-lock';

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const fsyncFd = promisify(fsync);
const ftruncateFd = promisify(ftruncate);
const closeFd = promisify(close);

/**
 * Folder fsyncs shared by the downloads of this process: files committed into one folder at about
 * the same time (`get -r`, pipelined downloads) are made durable by one fsync of it, not one each.
 */
const folders = new FolderSync();

/** fs write streams below 256 KiB chunks cost throughput (TOOLCHAIN.md). */
const WRITE_BUFFER_BYTES = 1024 * 1024;

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

/** Where an interrupted download of `target` is kept for a resume: beside it, hidden, one per target. */
export const partialPathFor = (target: string): string => join(dirname(target), `.${shortened(basename(target))}.rxfer-resume`);

/**
 * A download is written to a staging file beside its target and renamed over it only once it is
 * complete, verified and on disk: readers never see half a file, and a failed download leaves the old
 * file as it was (unlike writing the real name with `w+` and unlinking on error, see STYLE.md).
 * We keep the descriptor ourselves (`autoClose: false`) so that we can fsync it before closing.
 * A resumable staging file has a fixed name (`partialPathFor`) and outlives an interrupted download.
 */
export class StagingFile {
  private closed = false;
  private failure: unknown;
  private sink: WriteStream | undefined;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    /** Fixed name, kept when a download is interrupted (see `resumable`). */
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
    if (offset < this.sizeAtOpen) await localIo('truncate', this.path, () => ftruncateFd(this.fd, offset));
    const stream = createWriteStream(this.path, { fd: this.fd, start: offset, autoClose: false, highWaterMark: WRITE_BUFFER_BYTES });
    stream.on('error', (err) => (this.failure ??= err));
    writeBackEarly(stream, this.fd);
    this.sink = stream;
    return stream;
  }

  get stream(): WriteStream {
    if (!this.sink) throw new RxferError('INTERNAL', 'the staging file was not started');
    return this.sink;
  }

  /** The error the stream hit, if any: tells a local write failure from a connection failure. */
  get writeError(): unknown {
    return this.failure;
  }

  /**
   * A staging file of its own, beside the target. Created synchronously (a few µs on a local file
   * system), as the resume file below is: it is made once the server has announced the body, and a
   * thread-pool round trip there is time the body waits (200 × 1 MiB pipelined: bench/findings.md).
   */
  static async create(target: string): Promise<StagingFile> {
    const folder = dirname(target);
    const path = join(folder, `.${shortened(basename(target))}${stagingName()}`);
    const fd = await localIo('create a staging file in', folder, async () => openSync(path, 'wx'));
    return new StagingFile(path, fd, false, undefined, 0);
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
      if (fresh !== undefined) return new StagingFile(path, fresh, true, undefined, 0, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
    const flags = constants.O_RDWR | constants.O_NOFOLLOW;
    const fd = await localIo('open a staging file in', folder, () => openFd(path, flags)).catch((err: unknown) => {
      lock.release();
      throw err;
    });
    try {
      const { size } = await localIo('stat', path, () => fstatFd(fd));
      const hash = size > 0 ? await localIo('read', path, () => hashPrefix(readerOf(fd), size, algorithm)) : undefined;
      return new StagingFile(path, fd, true, hash && { bytes: size, hash }, size, lock);
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      lock.release();
      throw err;
    }
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

  /** Flushes, fsyncs and renames over `target`, then fsyncs the folder so the rename is durable too. */
  async commit(target: string): Promise<void> {
    await localIo('write', this.path, async () => {
      await this.flush();
      await fsyncFd(this.fd);
    });
    await this.closeFd();
    try {
      await localIo('rename', `${this.path} to ${target}`, () => fsp.rename(this.path, target));
    } finally {
      this.lock?.release();
    }
    // Best effort: some platforms and file systems cannot fsync a folder, and the data is safe already.
    await folders.sync(dirname(target)).catch(() => undefined);
  }

  private async flush(): Promise<void> {
    const sink = this.stream;
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      sink.once('error', reject);
      sink.end(() => resolve());
    });
    if (this.failure) throw this.failure;
  }

  /** Removes the staging file; safe to call at any point, and more than once. */
  async discard(): Promise<void> {
    await this.stop();
    await removeQuietly(this.path);
    this.lock?.release();
  }

  /**
   * An interrupted download: what reached the file stays there for the next attempt (a resumable
   * staging file only; any other is removed). Nothing appears under the target's name.
   */
  async keep(): Promise<void> {
    if (!this.resumableFile) return this.discard();
    await (this.sink && !this.sink.destroyed ? this.flush().catch(() => undefined) : undefined);
    await this.stop();
    this.lock?.release();
  }

  private async stop(): Promise<void> {
    await this.closeFd().catch(() => undefined);
  }

  /**
   * Once a stream has the descriptor, only the stream closes it: `destroy()` closes it whatever
   * `autoClose` says, so closing it here as well could close a number another open() was handed
   * meanwhile. Waiting for 'close' also lets a write in flight finish first.
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
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > maxBytes) break;
    out += ch;
  }
  return out;
};
