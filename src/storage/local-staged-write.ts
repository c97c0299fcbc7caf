import { Stats, WriteStream, closeSync, constants, createWriteStream, fstatSync, fsync, openSync, unlinkSync } from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Writable } from 'node:stream';
import { basename, dirname, join } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { DigestIndex, SMALL_FILE_BYTES } from './digest-index';
import { NameLocks } from './name-locks';
import { writeBackEarly } from '../io/early-writeback';
import { exactWrites } from '../io/exact-writes';
import { finishWriting } from '../io/finish-writing';
import type { ClaimedPartial } from './partial-uploads';
import { CommittedFile, VerifiedContent, StagedWrite } from './storage-adapter';
import { storageError, syncAfterChange } from './storage-errors';
import { stagingName } from '../io/staging-name';
import { inOpenedFolder, inServerFolder, inServerFolderSync, quietly, sizeReplaced } from './opened-paths';

/** fs write buffer: ≥ 256 KiB so that 64 KiB socket chunks coalesce into few large writes. */
const WRITE_HIGH_WATER_MARK = 1024 * 1024;

const fsyncFd = promisify(fsync);

/**
 * Node's fs for the staging file's stream, except that its close is synchronous: a close never waits
 * for a device on a local file system, and the thread-pool round trip cost the main thread more than
 * the call (issue 20). An error it reports (a write the file system deferred, NFS) still reaches the
 * stream as an 'error' before its 'close'.
 */
const stagingWrites = {
  ...exactWrites,
  close: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void => {
    let failure: NodeJS.ErrnoException | null = null;
    try {
      closeSync(fd);
    } catch (err) {
      failure = err as NodeJS.ErrnoException;
    }
    process.nextTick(callback, failure);
  },
};

/**
 * Flushes and ends a staging file's write stream, failing if any write, the flush or the end failed
 * (finishWriting, which the client's staging file uses too). Not `stream.finished`: with autoClose
 * off (we fsync and close the handle ourselves) the stream never emits 'close', which `finished`
 * would wait for.
 */
export const endStream = (sink: Writable): Promise<void> => finishWriting(sink, 'the staging file');

/**
 * The last check before a name changes: the staging file holds exactly the bytes that were verified.
 * Costs nothing (the fstat is taken for the mtime anyway) and catches any write whose failure was
 * lost on the way: a short file is never renamed into place.
 */
export const assertStagedSize = (onDisk: number, verified: number, name: string): void => {
  if (onDisk === verified) return;
  throw new RxferError('STORAGE_FAILED', `${name}: ${onDisk} bytes reached the disk of the ${verified} verified; nothing stored`, { onDisk, verified });
};

/** A fresh staging file, never one found under the name (`wx`). */
const STAGING_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** Where an upload's bytes go until commit: an open file and what to do with it afterwards. */
interface StagingSpot {
  readonly path: string;
  /**
   * A plain fd, owned by the write stream from the start: `destroy()` closes it whatever `autoClose`
   * says (that only governs closing after 'finish'), so the stream is the one thing that closes it.
   * Closing it ourselves as well could close a number another open() has been handed meanwhile.
   */
  readonly fd: number;
  /** A kept partial upload (resumable), whose first `offset` bytes are already there. */
  readonly partial?: ClaimedPartial;
}

/** Runs work in a name's folder, made again (and checked) if it vanished meanwhile. */
export type InFolder = <T>(work: (folder: string) => Promise<T>) => Promise<T>;

/** What every staged write of one adapter shares. */
export interface StagingServices {
  readonly digests: DigestIndex;
  /** Held on the target while the name changes (see NameLocks: a RENAME must not interleave). */
  readonly locks: NameLocks;
  /** Where staging files are made (see staging-area.ts: never in the users' folders). */
  readonly stagingFolder: string;
}

/**
 * One upload's staging file. Commit = flush, fsync the file, check its size, rename (or link, for
 * create-only) over the real name, fsync the folder so the rename itself survives a crash. Large
 * uploads stage in a partial-upload file (see PartialUploads) that `suspend` keeps when the
 * connection is lost. A write that fails (disk full) deletes the staging data at once, not when the
 * client's last byte arrives; the commit then fails with that error.
 */
export class LocalStagedWrite implements StagedWrite {
  readonly sink: WriteStream;
  readonly resumed: StagedWrite['resumed'];
  private settled = false;
  private failure: Error | undefined;
  private discarded: Promise<void> | undefined;

  private constructor(
    private readonly name: RemoteName,
    private readonly target: string,
    private readonly spot: StagingSpot,
    private readonly createOnly: boolean,
    private readonly services: StagingServices,
    private readonly measureReplaced: boolean,
    /** Runs the rename in the target's folder, made again if it vanished meanwhile (RootPaths.inFolderFor). */
    private readonly inFolder: InFolder,
    /** WriteOptions.admitReplaced: under the name's lock, with the size about to be replaced; throwing stops the commit. */
    private readonly admitReplaced?: (replacedBytes: number) => void,
  ) {
    const start = spot.partial?.offset ?? 0;
    // exactWrites: Node 20 retries a short writev at the wrong offset (a hole of zeros, right size).
    this.sink = createWriteStream('', { fd: spot.fd, start, highWaterMark: WRITE_HIGH_WATER_MARK, autoClose: false, fs: stagingWrites });
    // Errors surface through commit(); an unhandled 'error' event would crash the process.
    this.sink.on('error', (err) => this.failedWrite(err));
    writeBackEarly(this.sink, spot.fd);
    this.resumed = spot.partial && start > 0 ? { offset: start, hash: spot.partial.hash } : undefined;
  }

  /**
   * A staging file with a fresh name in the staging folder, on the root's file system (so that the
   * final rename is atomic): the path for files too small to resume.
   */
  static async create(name: RemoteName, target: string, createOnly: boolean, services: StagingServices, measureReplaced: boolean, inFolder: InFolder, admitReplaced?: (replacedBytes: number) => void): Promise<LocalStagedWrite> {
    const path = join(services.stagingFolder, stagingName());
    // Made in the staging folder opened and shown to be it: one swapped for a link since the start
    // would have the upload's bytes written outside the root (hostile pass j). Synchronously: the
    // server's own folder, on the root's file system, and the socket waits for this open.
    let fd: number;
    try {
      fd = inServerFolderSync(services.stagingFolder, (inside) => openSync(join(inside, basename(path)), STAGING_FLAGS, 0o644));
    } catch (err) {
      throw storageError(err, 'stage', name);
    }
    const spot = { path, fd };
    return new LocalStagedWrite(name, target, spot, createOnly, services, measureReplaced, inFolder, admitReplaced);
  }

  /** Stages in a claimed partial upload (fresh or resumed), which outlives a lost connection. */
  static fromPartial(name: RemoteName, target: string, partial: ClaimedPartial, createOnly: boolean, services: StagingServices, measureReplaced: boolean, inFolder: InFolder, admitReplaced?: (replacedBytes: number) => void): LocalStagedWrite {
    const spot = { path: partial.path, fd: partial.fd, partial };
    return new LocalStagedWrite(name, target, spot, createOnly, services, measureReplaced, inFolder, admitReplaced);
  }

  async commit(verified: VerifiedContent): Promise<CommittedFile> {
    this.settled = true;
    const { spot } = this;
    let published: Stats | undefined;
    try {
      if (this.failure) throw this.failure;
      await endStream(this.sink);
      // The calls that may wait for a device, or reach a user's folder (publish), go to the thread pool;
      // those on the staging file alone are synchronous (an fstat, a close: see stagingWrites).
      await fsyncFd(spot.fd);
      // mtime and inode survive the rename: read them now instead of a stat() afterwards.
      const stats = fstatSync(spot.fd);
      assertStagedSize(stats.size, verified.size, this.name);
      await this.closeFile();
      // A close can report a write the file system deferred (NFS), as an 'error' before the 'close'
      // (failedWrite): such a file is not committed. The client's StagingFile.commit does the same.
      if (this.failure) throw this.failure;
      // The folder's fsync is inside the lock too: a RENAME of the folder waits for it, so the
      // fsync always finds the folder the file was renamed into.
      let replacedBytes = 0;
      await this.services.locks.with([this.target], () =>
        this.inFolder(async (folder) => {
          // The size of the file being replaced (for quotas, when asked), read under the name's lock: read
          // before it, another upload of the name could commit in between, and the quota ledger was told
          // the size of a file this commit did not replace (the hostile pass of 2026-12-05).
          if (!this.createOnly && (this.measureReplaced || this.admitReplaced)) {
            replacedBytes = await sizeReplaced(folder, this.target);
            this.admitReplaced?.(replacedBytes);
          }
          await this.publish(folder, async (syncFolder) => {
            // The file is in place from here: a failing fsync says so (NOT_DURABLE), never "nothing stored";
            // and inFolder must not take its ENOENT for a vanished folder and publish again.
            published = stats;
            await syncAfterChange(syncFolder, `${this.name} is stored`, { replacedBytes });
          });
        }),
      );
      await spot.partial?.forget();
      spot.partial?.release();
      this.rememberDigest(stats, verified);
      return { name: this.name, size: verified.size, digest: verified.digest, mtimeMs: stats.mtimeMs, replacedBytes };
    } catch (err) {
      // Once published, the staging path is gone: discarding only forgets the partial's record.
      await this.discard();
      if (published) this.rememberDigest(published, verified);
      throw storageError(err, 'store', this.name);
    }
  }

  /**
   * A cache: not awaited, a lost record only costs a re-hash on the next download. Small files are
   * committed by the worker, which writes their digests to the folder's log (see DigestIndex).
   */
  private rememberDigest(stats: Stats, verified: VerifiedContent): void {
    if (verified.size > SMALL_FILE_BYTES) this.services.digests.remember(this.name, stats, verified.hash, verified.digest).catch(() => undefined);
  }

  /**
   * The staging file takes the real name. A create-only commit links (link() fails if the name
   * exists: the atomic create-only that rename() cannot give) and then unlinks the staging path; a
   * crash between the two leaves a partial's path as a second link to the committed file, which
   * PartialUploads never writes through (it recreates, never truncates, and drops such links).
   * Resolves exactly when the file is in place: an unlink that fails after the link leaves that same
   * kind of second link (gone at the next start: the staging area is emptied, PartialUploads.init drops
   * such links, and a later claim of the name recreates its path), and must not make a stored file an error.
   * `folder` is the target's real folder (RootPaths.inFolderFor).
   */
  private async publish(folder: string, then: (syncFolder: () => Promise<void>) => Promise<void>): Promise<void> {
    // From the staging folder that was checked, into the folder that was checked, even if a link was
    // swapped in for either since (opened-paths.ts); `then` runs once the file is in place, with a
    // fsync of that very folder.
    await inServerFolder(dirname(this.spot.path), (staging) =>
      inOpenedFolder(folder, this.target, async (inside, syncFolder) => {
        const path = join(staging, basename(this.spot.path));
        const target = join(inside, basename(this.target));
        // Through the thread pool: the users' folder may be on a mount that stops answering (inOpenedFolder).
        if (this.createOnly) {
          await link(path, target);
          await unlink(path).catch(() => undefined);
        } else {
          await rename(path, target);
        }
        await then(syncFolder);
      }),
    );
  }

  async abort(): Promise<void> {
    if (this.settled) return this.discarded;
    this.settled = true;
    await this.discard();
  }

  /**
   * The connection was lost mid-data: a partial upload keeps what reached the disk for RESUME
   * (nothing is visible under the real name); any other staging file is discarded, and so is one
   * whose writes failed.
   */
  async suspend(): Promise<number> {
    const { partial } = this.spot;
    if (this.settled || !partial || this.failure) return this.abort().then(() => 0);
    this.settled = true;
    try {
      await endStream(this.sink);
      const { size } = fstatSync(this.spot.fd);
      await this.closeFile();
      // A close that reported an error (a write the file system deferred) has had what was staged
      // deleted (failedWrite): nothing is kept, so nothing may be counted (hostile pass p: a quota
      // then counted 1.1 MB that no longer existed). Without its manifest a partial could not be found.
      if (this.failure || size === 0 || !(await partial.recorded)) {
        await this.discard();
        return 0;
      }
      partial.release();
      return size;
    } catch {
      await this.discard();
      return 0;
    }
  }

  /** A write failed (disk full, I/O error): what was staged goes now, and the commit will fail. */
  private failedWrite(err: Error): void {
    this.failure ??= err;
    void this.discard();
  }

  /** Closes the descriptor through the stream (see StagingSpot), once any write in flight is done. */
  private closeFile(): Promise<void> {
    if (this.sink.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.sink.once('close', () => resolve());
      this.sink.destroy();
    });
  }

  /** Deletes the staging data and forgets the partial; once, however many ways out call it. */
  private discard(): Promise<void> {
    this.discarded ??= (async () => {
      await this.closeFile();
      // In the staging folder checked: through one swapped for a link, a file outside would go. Gone
      // already (renamed into place, or never made), or its folder not the one checked: nothing to do.
      quietly(() => inServerFolderSync(dirname(this.spot.path), (staging) => unlinkSync(join(staging, basename(this.spot.path)))));
      await this.spot.partial?.forget();
      this.spot.partial?.release();
    })();
    return this.discarded;
  }
}
